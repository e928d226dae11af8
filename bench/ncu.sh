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
        python3 bench/ncu_table.py
done
