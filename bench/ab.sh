#!/usr/bin/env bash
# A/B timing on the GPU machine: GPU and back-to-back ms of each shape for
# several builds of topk_benchmark, side by side in one run.
#   DIRS=".dist-a .dist" bench/ab.sh "B V K" ...
# An entry DIR@VAR=VALUE runs DIR's binary with that variable set.
# EXTRA="--sample" times the sampler instead.
for s in "$@"; do
    set -- $s
    line="$1x$2 k=$3:"
    for d in ${DIRS:-.dist-a .dist}; do
        env=()
        [[ $d == *@* ]] && env=("${d#*@}")
        t=$(env "${env[@]}" timeout 60 "${d%%@*}/topk_benchmark" --batch "$1" --vocab "$2" --top-k "$3" --iters 200 --json ${EXTRA:-} |
            python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print("%.4f/%.4f" % (d["gpu_ms"], d["gpu_b2b_ms"]))')
        line="$line $d $t"
    done
    echo "$line"
done
