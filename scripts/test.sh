#!/usr/bin/env bash
# The whole test suite: unit and cluster tests (normal and ASan+UBSan
# builds, the deterministic simulation), 30 s of each fuzz target, the
# multi-process tests (both builds), the dashboard in headless Chromium, the
# Python and TypeScript client libraries, and the network-namespace fault
# suite. Prints "N passed, N failed" last and exits non-zero when anything
# failed.
set -uo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh || exit 1
scripts/build.sh --asan || { echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

# meson test: count from its summary lines.
run_meson() {
    local dir=$1 out
    out=$(meson test -C "$dir" --suite unit --suite cluster --print-errorlogs 2>&1)
    echo "$out" | grep -E "^ *[0-9]+/[0-9]+ " || true
    local ok fail to
    ok=$(echo "$out" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p')
    fail=$(echo "$out" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p')
    to=$(echo "$out" | sed -n 's/^Timeout: *\([0-9]*\).*/\1/p')
    if [ -z "$ok" ]; then
        echo "$out" | tail -20
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + ok))
    failed=$((failed + ${fail:-0} + ${to:-0}))
    if [ "${fail:-0}" != "0" ] || [ "${to:-0}" != "0" ]; then
        echo "$out" | grep -E "FAIL|TIMEOUT" | head -20
    fi
}

echo "== clang-tidy: no function over 150 lines or 8 parameters (scripts/tidy.sh)"
if scripts/tidy.sh build | tail -1 | grep -q "tidy: clean"; then
    echo "tidy: clean"
    passed=$((passed + 1))
else
    scripts/tidy.sh build | grep -E "readability-function-size" | head -10
    failed=$((failed + 1))
fi

echo "== unit and cluster tests (build/)"
run_meson build
echo "== unit and cluster tests under ASan+UBSan (build-asan/)"
run_meson build-asan


# pytest over tests/integration (or --path P) against the rotad of build
# dir $1; extra environment in the rest of the arguments.
run_pytest() {
    local dir=$1 path=tests/integration out rc p f
    shift
    if [ "${1:-}" = "--path" ]; then
        path=$2
        shift 2
    fi
    out=$(env "$@" ROTA_BUILD_DIR="$(pwd)/$dir" timeout 1500 \
          /usr/bin/python3 -m pytest -q -p no:cacheprovider "$path" 2>&1)
    rc=$?
    echo "$out" | tail -40
    p=$(echo "$out" | tail -1 | grep -oE "[0-9]+ passed" | grep -oE "[0-9]+" || true)
    f=$(echo "$out" | tail -1 | grep -oE "[0-9]+ (failed|error|errors)" | awk '{s += $1} END {print s + 0}')
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ] && [ "${f:-0}" = "0" ]; then
        # Collection errors, no tests (exit 5), a timeout: a failure all the same.
        failed=$((failed + 1))
    fi
}


# The dashboard in Debian's headless chromium (tests/browser): puppeteer-core
# from the committed package-lock.json, never a downloaded browser.
client_suites() {
echo "== browser tests (tests/browser)"
if (cd tests/browser && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund \
        --loglevel=error >/dev/null); then
    run_pytest build --path tests/browser
else
    echo "npm ci failed in tests/browser"
    failed=$((failed + 1))
fi

# The Python client library (clients/python) against real clusters.
echo "== Python client tests"
run_pytest build --path clients/python/tests

# The TypeScript client (clients/node) against real 3-node clusters of
# build/'s rotad: npm ci and build (quiet), then node's test runner; its
# summary ("# pass N", "# fail N", "# cancelled N") is counted.
run_node_tests() {
    local out rc p f c s
    if ! out=$(cd clients/node && npm ci --no-audit --no-fund --loglevel=error 2>&1 &&
               npm run --silent build 2>&1); then
        echo "$out" | tail -20
        failed=$((failed + 1))
        return
    fi
    out=$(cd clients/node && ROTA_BUILD_DIR="$(pwd)/../../build" timeout 300 node --test 2>&1)
    rc=$?
    p=$(echo "$out" | sed -n 's/^# pass \([0-9]*\)$/\1/p' | tail -1)
    f=$(echo "$out" | sed -n 's/^# fail \([0-9]*\)$/\1/p' | tail -1)
    c=$(echo "$out" | sed -n 's/^# cancelled \([0-9]*\)$/\1/p' | tail -1)
    s=$(echo "$out" | sed -n 's/^# skipped \([0-9]*\)$/\1/p' | tail -1)
    echo "node --test: ${p:-0} pass, ${f:-0} fail, ${c:-0} cancelled, ${s:-0} skipped"
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0} + ${c:-0}))
    if [ $rc -ne 0 ] || [ $((${f:-0} + ${c:-0})) -ne 0 ]; then
        echo "$out" | grep -vE "^# ts=" | tail -60
        if [ $((${f:-0} + ${c:-0})) -eq 0 ]; then
            failed=$((failed + 1)) # No summary, or a crash: a failure all the same.
        fi
    fi
}

echo "== TypeScript client tests (clients/node, node --test)"
run_node_tests
}


# Fault suite (network namespaces, needs root): every nemesis once.
# ROTA_FAULT=0 skips it (e.g. a quick local run).
fault_suite() {
    if [ "${ROTA_FAULT:-1}" = "0" ]; then
        return
    fi
    echo "== fault suite (tests/fault/run --short)"
    if [ "$(id -u)" -ne 0 ]; then
        echo "skipped: needs root for network namespaces"
        return
    fi
    local flog rc p f
    flog=$(mktemp /tmp/rota-fault-short.XXXXXX)
    # One line per run and per verdict as it goes; the whole output in $flog.
    timeout 1200 tests/fault/run --short 2>&1 | tee "$flog" |
        grep --line-buffered -E "VERDICT| run [0-9]+-|^[0-9]+ passed"
    rc=${PIPESTATUS[0]}
    p=$(tail -1 "$flog" | grep -oE "^[0-9]+ passed" | grep -oE "[0-9]+" || true)
    f=$(tail -1 "$flog" | grep -oE "[0-9]+ failed" | grep -oE "[0-9]+" || true)
    [ "$rc" -eq 0 ] && rm -f "$flog" || echo "fault suite output: $flog"
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ] && [ "${f:-0}" = "0" ]; then
        failed=$((failed + 1))
    fi
}

# The fault suite mostly waits on its faults (and libFuzzer, 30 s a target,
# runs at nice 19 one target at a time): both run in the background while
# the multi-process, browser and client tests run, which keeps the whole run
# well inside 30 minutes. Their output comes at the end; the fault suite's
# progress is in its log meanwhile.
bg_log=$(mktemp /tmp/rota-fault-bg.XXXXXX)
bg_counts=$(mktemp /tmp/rota-fault-n.XXXXXX)
echo "== fault suite and fuzzing: running in the background (progress: $bg_log)"
(
    passed=0
    failed=0
    fault_suite
    echo "$passed $failed" >"$bg_counts"
) >"$bg_log" 2>&1 &
bg_pid=$!
fuzz_log=$(mktemp /tmp/rota-fuzz.XXXXXX)
FUZZ_NICE=19 FUZZ_JOBS=1 nice -n 19 scripts/fuzz.sh 30 >"$fuzz_log" 2>&1 &
fuzz_pid=$!

echo "== multi-process tests (pytest)"
run_pytest build
client_suites
# The same against the ASan+UBSan rotad: memory errors and leaks in the
# server fail the run (rotad frees everything on SIGTERM; conftest.py fails a
# test whose node exits non-zero or logs a sanitizer report).
echo "== multi-process tests against the ASan+UBSan build"
# Files that test client tools and documents rather than rotad's own code
# (rotactl, the worker's executors, certificates, packaging, the OpenAPI
# schemas) run in the first pass only.
run_pytest build-asan ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    PYTEST_ADDOPTS="--ignore=tests/integration/test_packaging.py --ignore=tests/integration/test_openapi.py --ignore=tests/integration/test_rotactl.py --ignore=tests/integration/test_rotactl_live.py --ignore=tests/integration/test_exec_dir.py --ignore=tests/integration/test_cert.py" \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ROTA_WORKER_BIN="$(pwd)/build/worker/rota-worker"

wait "$bg_pid"
cat "$bg_log"
read -r bp bf <"$bg_counts" || true
if [ -z "${bp:-}" ]; then
    echo "the fault suite ended without its counts"
    failed=$((failed + 1))
fi
passed=$((passed + ${bp:-0}))
failed=$((failed + ${bf:-0}))
rm -f "$bg_log" "$bg_counts"

echo "== fuzzing (scripts/fuzz.sh 30, in the background)"
wait "$fuzz_pid"
fuzz_out=$(cat "$fuzz_log")
rm -f "$fuzz_log"
echo "$fuzz_out"
p=$(echo "$fuzz_out" | grep -cE "^fuzz_[a-z_]+: .* 0 crashes$" || true)
f=$(echo "$fuzz_out" | grep -cE "^fuzz_[a-z_]+: .* [1-9][0-9]* crashes$" || true)
passed=$((passed + p))
failed=$((failed + f))
if [ $((p + f)) -eq 0 ]; then
    failed=$((failed + 1)) # Did not build or run at all.
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
