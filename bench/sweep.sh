#!/usr/bin/env bash
# Plan sweep on the GPU machine (with .dist carried): GPU time of each shape
# under several stage-2 target pools (which set the chunks per row).
#   bench/sweep.sh "B,V,K" ...        (TARGETS="50 200 500 1000 2000" to change)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${TARGETS:-"1 100 250 500 1000 2000 4000"}
echo "| batch | vocab | k | target pool | chunks x len | threads | GPU ms |"
echo "|---|---|---|---|---|---|---|"
for shape in "$@"; do
    IFS=, read -r b v k <<<"$shape"
    for t in $targets; do
        .dist/topk_benchmark --batch "$b" --vocab "$v" --top-k "$k" --iters 200 --target-pool "$t" --json |
            python3 bench/sweep_row.py "$t"
    done
done
