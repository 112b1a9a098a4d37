#!/usr/bin/env bash
# Issue 13's single-submit target measured in pairs: BullMQ's W1 and, right
# after it, rota-bench's single submits, PAIRS times in a row.
#
#   bench/pairs.sh [BUILD_DIR]  (default build/; PAIRS=6 SUBMIT_JOBS=100000)
#
# This machine's speed moves within minutes, so a ratio is only fair
# between runs made seconds apart (bench/README.md). Each pair is:
# 1. the peers harness's BullMQ W1 (20,000 jobs, one per call, 32 in flight)
#    with Redis's AOF fsynced every second, as the harness's table runs it,
#    and again with appendfsync always, the durability Rota gives every
#    acknowledged job (ALWAYS=1 of ../shared/peers/run_bullmq.sh, which
#    also runs its W1-bulk);
# 2. rota-bench submit on a fresh plain 3-node cluster of BUILD_DIR
#    (bench/cluster.sh): SUBMIT_JOBS jobs, one per request, C=32, spread
#    over the nodes.
# 3. with TMPFS=1, the same rota-bench run again with the three nodes' data
#    directories on tmpfs (/dev/shm): a commit then waits for no disk, which
#    measures what the durable commit costs the single-submit rate.
# Then a table of every pair with the ratios and their medians
# (bench/compare.py --pairs). Results go to bench/results/pairs-<UTC time>/
# (git-ignored): peers-bullmq.jsonl, rota-bench.jsonl, rota-bench-tmpfs.jsonl
# (TMPFS=1), summary.txt. Every
# run is bounded (rota-bench: N jobs or 120 s; the harness: its watchdogs).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
PAIRS=${PAIRS:-6}
SUBMIT_JOBS=${SUBMIT_JOBS:-100000}
TMPFS=${TMPFS:-0}
PEERS=../shared/peers
OUT=bench/results/pairs-$(date -u +%Y%m%dT%H%M%SZ)
[ -x "$B/rotad" ] || { echo "pairs: no $B/rotad (build first)"; exit 2; }
[ -x "$PEERS/run_bullmq.sh" ] || { echo "pairs: no $PEERS/run_bullmq.sh"; exit 2; }
mkdir -p "$OUT"
root=$PWD
echo "pairs: $PAIRS pairs, results in $OUT"
for i in $(seq 1 "$PAIRS"); do
    echo "pairs: $i/$PAIRS BullMQ W1 (AOF everysec, then always)"
    ALWAYS=1 RUNS=1 WORKLOADS=w1 RES=$root/$OUT/peers-bullmq.jsonl \
        "$PEERS/run_bullmq.sh" >>"$OUT/peers-bullmq.log" 2>&1
    echo "pairs: $i/$PAIRS rota-bench submit ($SUBMIT_JOBS jobs, C=32, spread)"
    bench/cluster.sh "$B" submit --jobs "$SUBMIT_JOBS" --concurrency 32 \
        --spread >>"$OUT/rota-bench.jsonl" 2>/dev/null
    if [ "$TMPFS" = 1 ]; then
        echo "pairs: $i/$PAIRS the same, data directories on tmpfs"
        BENCH_TMP=/dev/shm bench/cluster.sh "$B" submit --jobs "$SUBMIT_JOBS" \
            --concurrency 32 --spread >>"$OUT/rota-bench-tmpfs.jsonl" 2>/dev/null
    fi
done
/usr/bin/python3 bench/compare.py --pairs "$OUT" | tee "$OUT/summary.txt"
