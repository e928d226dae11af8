#!/usr/bin/env bash
# One script for the GPU machine.
#   bench/gpu.sh bundle   (here, no GPU needed) build the release test binaries
#                         and topk_benchmark into .dist/
#   bench/gpu.sh run      (on the GPU machine, from the repository root, with
#                         .dist carried) run every GPU test (--include-ignored)
#                         and the torch comparisons (top-k, then sampling),
#                         then a decode loop; logs go to $OUT if set.
#   bench/gpu.sh tests    (on the GPU machine) only the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
bundle)
    rm -rf .dist && mkdir -p .dist/tests
    cargo build --release --bins
    cp target/release/topk_benchmark target/release/decode_loop .dist/
    cargo test --release --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["executable"])' | while read -r exe; do cp "$exe" .dist/tests/; done
    ls -la .dist .dist/tests
    ;;
run | tests)
    out=${OUT:-/tmp/streamtopk-out}
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv | tee "$out/gpu.txt"
    status=0
    export STREAMTOPK_BENCH_BIN=$PWD/.dist/topk_benchmark
    for t in .dist/tests/*; do
        echo "== $t"
        "$t" --include-ignored --test-threads=1 --nocapture 2>&1 | tee -a "$out/tests.log" || status=1
    done
    [ "$1" = tests ] && exit $status
    PYTHONUNBUFFERED=1 python3 bench/compare_torch.py --bin .dist/topk_benchmark --json-out "$out/compare.jsonl" "${@:2}" \
        2>&1 | tee "$out/compare.log" || status=1
    PYTHONUNBUFFERED=1 python3 bench/compare_torch.py --bin .dist/topk_benchmark --sample --json-out "$out/compare-sample.jsonl" \
        2>&1 | tee "$out/compare-sample.log" || status=1
    .dist/decode_loop --steps 20000 --quiet 2>&1 | tee "$out/decode.log" || status=1
    exit $status
    ;;
*)
    echo "usage: bench/gpu.sh bundle | run [compare_torch.py options] | tests" >&2
    exit 2
    ;;
esac
