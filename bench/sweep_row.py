#!/usr/bin/env python3
"""One markdown row of bench/sweep.sh from topk_benchmark --json on stdin; argv[1] = the plan asked for."""
import json
import sys

d = json.load(sys.stdin)
body = "cluster" if d.get("cluster") else "chunked"
print(f"| {d['batch']} | {d['vocab']} | {d['k']} | {sys.argv[1]} ({body}) | {d['chunks']} x {d['chunk_len']} | {d['threads']} | {d['gpu_ms']:.4f} | {d['gpu_b2b_ms']:.4f} |")
