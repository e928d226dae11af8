#!/usr/bin/env bash
# Plan sweep on the GPU machine (with .dist carried): GPU time of each shape
# under several plans.
#   bench/sweep.sh "B,V,K" ...    chunked body, by stage-2 target pool
#                                 (TARGETS="50 200 500 1000 2000" to change)
#   CLUSTERS="4,1024 8,512" bench/sweep.sh "B,V,K" ...
#                                 cluster body, by blocks per cluster and
#                                 threads per block ($STREAMTOPK_CLUSTER)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=${TARGETS:-"1 100 250 500 1000 2000 4000"}
echo "| batch | vocab | k | plan | blocks x len | threads | GPU ms | GPU back-to-back ms |"
echo "|---|---|---|---|---|---|---|---|"
for shape in "$@"; do
    IFS=, read -r b v k <<<"$shape"
    if [ -n "${CLUSTERS:-}" ]; then
        for c in $CLUSTERS; do
            STREAMTOPK_CLUSTER=$c .dist/topk_benchmark --batch "$b" --vocab "$v" --top-k "$k" --iters 200 --json |
                python3 bench/sweep_row.py "cluster $c"
        done
    else
        for t in $targets; do
            .dist/topk_benchmark --batch "$b" --vocab "$v" --top-k "$k" --iters 200 --target-pool "$t" --json |
                python3 bench/sweep_row.py "pool $t"
        done
    fi
done
