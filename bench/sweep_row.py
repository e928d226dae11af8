#!/usr/bin/env python3
"""One markdown row of bench/sweep.sh from topk_benchmark --json on stdin; argv[1] = target pool."""
import json
import sys

d = json.load(sys.stdin)
print(f"| {d['batch']} | {d['vocab']} | {d['k']} | {sys.argv[1]} | {d['chunks']} x {d['chunk_len']} | {d['threads']} | {d['gpu_ms']:.4f} |")
