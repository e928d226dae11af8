#!/usr/bin/env bash
# Run streamtopk's kernels under every compute-sanitizer tool (memcheck with
# leak check, racecheck, initcheck, synccheck) on the GPU machine, over the
# shapes of the `sanitizer_shapes` test (tests/reliability.rs: one chunk and
# many, both sorts, vocab not a multiple of the vector width, inputs at odd
# element offsets, all three dtypes). Needs .dist from `bench/gpu.sh bundle`.
# Every tool runs three times: default plans, with STREAMTOPK_CLUSTER=4,256
# (the cluster-per-row kernels wherever the shape fits them), and with
# STREAMTOPK_FILTER_ROUNDS=3 (every two-pass filter plan's appending blocks
# take three chunks each).
# Prints one line per tool and exits non-zero unless every tool reports 0
# errors on our kernels and, as a negative control, finds the bug planted in
# the matching kernel of the `sanitizer_control` test.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/streamtopk-out}
mkdir -p "$out"
bin=$(ls .dist/tests/reliability-* | head -n 1)
[ -x "$bin" ] || { echo "no reliability test binary in .dist/tests: run bench/gpu.sh bundle" >&2; exit 2; }
status=0
for setting in "" STREAMTOPK_CLUSTER=4,256 STREAMTOPK_FILTER_ROUNDS=3; do
    name=${setting%%=*}
    name=${name#STREAMTOPK_}
    for tool in memcheck racecheck initcheck synccheck; do
        extra=()
        [ "$tool" = memcheck ] && extra=(--leak-check full)
        log="$out/sanitize-$tool${name:+-${name,,}}.log"
        start=$(date +%s)
        env $setting timeout "${SANITIZE_TIMEOUT:-900}" compute-sanitizer --tool "$tool" "${extra[@]}" \
            --error-exitcode 99 "$bin" --include-ignored --exact sanitizer_shapes --test-threads=1 >"$log" 2>&1
        rc=$?
        summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -n 1)
        result=$(grep -E "^test result" "$log" | tail -n 1)
        echo "$tool${setting:+ ($setting)}: rc=$rc, $(( $(date +%s) - start )) s; ${summary:-no summary}; ${result:-no test result}"
        [ "$rc" = 0 ] || status=1
    done
done
for pair in memcheck:out_of_bounds racecheck:shared_race initcheck:uninitialized_read; do
    tool=${pair%%:*} fault=${pair#*:}
    log="$out/sanitize-control-$tool.log"
    STREAMTOPK_FAULT=$fault compute-sanitizer --tool "$tool" --error-exitcode 99 \
        "$bin" --include-ignored --exact sanitizer_control --test-threads=1 >"$log" 2>&1
    rc=$?
    summary=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$log" | tail -n 1)
    echo "control $tool on $fault: rc=$rc (99 = found); ${summary:-no summary}"
    [ "$rc" = 99 ] || status=1
done
exit $status
