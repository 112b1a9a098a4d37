#!/usr/bin/env bash
# Run every libFuzzer target (tests/fuzz/fuzz_*.c) for SECONDS each
# (default 30) under ASan+UBSan, one line per target:
#
#   fuzz_codec: 1234567 runs, 41152 execs/s, cpu 30.1s, corpus 412, 0 crashes
#
# and exit non-zero if any target crashed (a crash, a leak, a sanitizer
# report, a timeout of 25 s on one input or running out of memory).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   e.g. scripts/fuzz.sh 60 cron lease
#   scripts/fuzz.sh --seeds                 regenerate the encoder-made seeds
#
# The build is build-fuzz/ (clang, -Dfuzz=true, every library instrumented
# with -fsanitize=fuzzer-no-link). Each target starts from its seed corpus
# tests/fuzz/corpus/<name>/ (read only; crashing inputs found once live
# there too, so every run replays them) and from what earlier runs found,
# kept in build-fuzz/fuzz-corpus/<name>/. A crashing input is written to
# build-fuzz/fuzz-artifacts/<name>-crash-...; the log of the last run of a
# target is build-fuzz/fuzz-logs/<name>.log. FUZZ_NICE=19 runs the
# fuzzers at that niceness; FUZZ_JOBS=N runs N targets at a time (default:
# one per CPU).
set -uo pipefail
cd "$(dirname "$0")/.."

B=build-fuzz
ALL=(job_json routes codec snapshot cron lease)

if [ ! -f "$B/build.ninja" ]; then
    # The project's -Werror stays off here: clang warns about code gcc
    # builds cleanly (the normal build keeps it).
    CC=clang meson setup "$B" -Dfuzz=true -Dwerror=false \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all" \
        >/dev/null || { echo "fuzz: meson setup failed"; exit 2; }
fi

if [ "${1:-}" = "--seeds" ]; then
    ninja -C "$B" tests/fuzz/fuzz_mkcorpus >/dev/null || exit 2
    "$B/tests/fuzz/fuzz_mkcorpus" tests/fuzz/corpus || exit 2
    echo "fuzz: seeds written to tests/fuzz/corpus/{codec,snapshot}"
    exit 0
fi

SECS=${1:-30}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")

bins=()
for t in "${TARGETS[@]}"; do
    bins+=("tests/fuzz/fuzz_$t")
done
if ! ninja -C "$B" "${bins[@]}" >"$B/fuzz-build.log" 2>&1; then
    tail -20 "$B/fuzz-build.log"
    echo "fuzz: build failed"
    exit 2
fi

mkdir -p "$B/fuzz-logs" "$B/fuzz-artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# One target: its summary line into fuzz-logs/<t>.line, the first error
# line and the log's path after it if it crashed.
run_one() {
    local t=$1 work="$B/fuzz-corpus/$1" seeds="tests/fuzz/corpus/$1"
    local log="$B/fuzz-logs/$1.log" tfile="$B/fuzz-logs/$1.time" maxlen=4096
    local before after crashes rc runs eps cpu corpus
    mkdir -p "$work"
    before=$(ls "$B/fuzz-artifacts" | grep -c "^$t-" || true)
    [ "$t" = snapshot ] && maxlen=16384
    /usr/bin/time -f "%U %S" -o "$tfile" \
        nice -n "${FUZZ_NICE:-0}" "$B/tests/fuzz/fuzz_$t" \
        -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2048 \
        -max_len="$maxlen" -print_final_stats=1 \
        -artifact_prefix="$B/fuzz-artifacts/$t-" "$work" "$seeds" \
        >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    cpu=$(tail -1 "$tfile" 2>/dev/null | awk '{printf "%.1f", $1 + $2}')
    corpus=$(ls "$work" | wc -l)
    after=$(ls "$B/fuzz-artifacts" | grep -c "^$t-" || true)
    crashes=$((after - before))
    if [ $rc -ne 0 ] && [ $crashes -eq 0 ]; then
        crashes=1 # Died without an artifact (e.g. in startup).
    fi
    {
        echo "fuzz_$t: ${runs:-0} runs, ${eps:-0} execs/s, cpu ${cpu:-?}s," \
             "corpus $corpus, $crashes crashes"
        if [ $crashes -ne 0 ]; then
            grep -m1 -E "ERROR: |runtime error|SUMMARY" "$log" | sed 's/^/    /'
            echo "    log: $log"
        fi
    } >"$B/fuzz-logs/$t.line"
}

# FUZZ_JOBS targets at a time (default: one per CPU), lines in order.
jobs_max=${FUZZ_JOBS:-$(nproc)}
pids=()
for t in "${TARGETS[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n
    done
    run_one "$t" &
    pids+=($!)
done
wait "${pids[@]}"
failed=0
for t in "${TARGETS[@]}"; do
    cat "$B/fuzz-logs/$t.line"
    grep -q " 0 crashes$" "$B/fuzz-logs/$t.line" || failed=$((failed + 1))
done
[ $failed -eq 0 ]
