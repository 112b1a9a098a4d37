#!/usr/bin/env bash
# Rota against BullMQ on this machine, in one sitting (issue 13):
#
#   bench/compare.sh [BUILD_DIR]  (default build/; RUNS=1 JOBS=20000
#                                  SUBMIT_JOBS=100000 BULK_JOBS=300000)
#
# 1. rota-bench on fresh plain 3-node clusters of BUILD_DIR
#    (bench/cluster.sh): submit (one job per request, C=32, spread over the
#    nodes), bulk (100 jobs per request, spread), e2e (4 workers) and
#    delayed (2 s), each one JSON line, and the submit run's progress
#    (jobs/s every second).
# 2. If ../shared/peers is there: its BullMQ run and its Rota run
#    (run_bullmq.sh, run_rota.sh; same workloads, same client), RUNS times.
# 3. A table of the figures and the ratios Rota/BullMQ (bench/compare.py),
#    and PNG charts if gnuplot is installed (apt-get install gnuplot-nox).
#
# Everything goes to bench/results/<UTC time>/ (git-ignored): the JSON
# lines (rota-bench.jsonl, peers-bullmq.jsonl, peers-rota.jsonl),
# submit-progress.dat, summary.txt, *.png. Every run is bounded (rota-bench:
# N jobs or 120 s; the peers harness: its own watchdogs).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
RUNS=${RUNS:-1}
JOBS=${JOBS:-20000}
# Long enough for a curve: rota-bench reports its rate once a second.
SUBMIT_JOBS=${SUBMIT_JOBS:-100000}
# Bulk needs a few seconds to reach its pace (issue 13: >= 100,000 jobs/s).
BULK_JOBS=${BULK_JOBS:-300000}
OUT=bench/results/$(date -u +%Y%m%dT%H%M%SZ)
PEERS=../shared/peers
mkdir -p "$OUT"
[ -x "$B/rotad" ] || { echo "compare: no $B/rotad (build first)"; exit 2; }
echo "compare: results in $OUT"

echo "compare: rota-bench submit ($SUBMIT_JOBS jobs, C=32, spread)"
bench/cluster.sh "$B" submit --jobs "$SUBMIT_JOBS" --concurrency 32 --spread \
    >>"$OUT/rota-bench.jsonl" 2>"$OUT/submit-progress.log"
sed -n 's/^rota-bench: \([0-9]*\)s .* \([0-9]*\) jobs\/s$/\1 \2/p' \
    "$OUT/submit-progress.log" >"$OUT/submit-progress.dat"
echo "compare: rota-bench bulk ($BULK_JOBS jobs, 100 per request, C=32, spread)"
bench/cluster.sh "$B" submit --jobs "$BULK_JOBS" --concurrency 32 --batch 100 \
    --spread >>"$OUT/rota-bench.jsonl" 2>/dev/null
echo "compare: rota-bench e2e ($JOBS jobs, 4 workers)"
bench/cluster.sh "$B" e2e --jobs "$JOBS" --workers 4 \
    >>"$OUT/rota-bench.jsonl" 2>/dev/null
echo "compare: rota-bench delayed (2000 jobs, 2 s)"
bench/cluster.sh "$B" delayed --jobs 2000 --delay 2s \
    >>"$OUT/rota-bench.jsonl" 2>/dev/null

if [ -x "$PEERS/run_bullmq.sh" ] && [ -x "$PEERS/run_rota.sh" ]; then
    # run_rota.sh takes build/ of ROTA_ROOT.
    root=$PWD
    if [ "$(cd "$B" && pwd)" != "$root/build" ]; then
        echo "compare: the peers harness runs build/, not $B"
    fi
    echo "compare: peers harness, BullMQ (RUNS=$RUNS)"
    RUNS=$RUNS RES=$root/$OUT/peers-bullmq.jsonl "$PEERS/run_bullmq.sh" \
        >"$OUT/peers-bullmq.log" 2>&1
    echo "compare: peers harness, Rota (RUNS=$RUNS)"
    (cd "$root" && RUNS=$RUNS RES=$root/$OUT/peers-rota.jsonl \
        ROTA_ROOT=$root "$PEERS/run_rota.sh" >"$OUT/peers-rota.log" 2>&1)
else
    echo "compare: no $PEERS: Rota's own figures only"
fi

/usr/bin/python3 bench/compare.py "$OUT" | tee "$OUT/summary.txt"
