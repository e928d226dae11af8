#!/usr/bin/env python3
"""Reads `ncu --csv --print-units base` from stdin; prints one line per kernel launch."""
import csv
import sys

rows = list(csv.reader(line for line in sys.stdin if line.startswith('"')))
if not rows:
    sys.exit("no ncu rows")
hdr, rows = rows[0], rows[1:]
ix = {h: i for i, h in enumerate(hdr)}
launches = {}
for r in rows:
    key = (r[ix["ID"]], r[ix["Kernel Name"]], r[ix["Grid Size"]], r[ix["Block Size"]])
    launches.setdefault(key, {})[r[ix["Metric Name"]]] = float(r[ix["Metric Value"]].replace(",", ""))
for (i, name, grid, block), m in launches.items():
    us = m["gpu__time_duration.sum"] / 1e3
    sm = m["sm__throughput.avg.pct_of_peak_sustained_elapsed"]
    dram = m["dram__throughput.avg.pct_of_peak_sustained_elapsed"]
    print(f"  #{i:>3} {name:<10} grid {grid:<14} block {block:<12} {us:8.2f} us  sm {sm:5.1f}%  dram {dram:5.1f}%")
