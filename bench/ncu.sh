#!/usr/bin/env bash
# Kernel durations under Nsight Compute, on the GPU machine (with .dist carried):
#   bench/ncu.sh "B,V,K[,TARGET_POOL]" ...      one line per shape
# Each shape runs topk_benchmark (bf16, 3 calls) with --profile so stage 1 and
# stage 2 also run as separate launches; prints each kernel launch's duration.
set -euo pipefail
cd "$(dirname "$0")/.."
for shape in "$@"; do
    IFS=, read -r b v k pool <<<"$shape"
    extra=()
    [ -n "${pool:-}" ] && extra=(--target-pool "$pool")
    echo "== batch=$b vocab=$v k=$k ${pool:+target_pool=$pool}"
    ncu --metrics gpu__time_duration.sum,sm__throughput.avg.pct_of_peak_sustained_elapsed,dram__throughput.avg.pct_of_peak_sustained_elapsed \
        --csv --print-units base \
        .dist/topk_benchmark --batch "$b" --vocab "$v" --top-k "$k" --iters 1 --warmup 1 --profile "${extra[@]}" 2>/dev/null |
        python3 -c '
import csv, sys
rows = [r for r in csv.reader(l for l in sys.stdin if l.startswith("\""))]
hdr, rows = rows[0], rows[1:]
ix = {h: i for i, h in enumerate(hdr)}
by = {}
for r in rows:
    key = (r[ix["ID"]], r[ix["Kernel Name"]], r[ix["Grid Size"]], r[ix["Block Size"]])
    by.setdefault(key, {})[r[ix["Metric Name"]]] = r[ix["Metric Value"]]
for (i, name, grid, block), m in by.items():
    print(f"  #{i:>3} {name:<10} grid {grid:<14} block {block:<12} {float(m[\"gpu__time_duration.sum\"])/1e3:8.2f} us  sm {float(m[\"sm__throughput.avg.pct_of_peak_sustained_elapsed\"]):5.1f}%  dram {float(m[\"dram__throughput.avg.pct_of_peak_sustained_elapsed\"]):5.1f}%")
'
done
