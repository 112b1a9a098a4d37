#!/usr/bin/env bash
# Run one rota-bench mode against a fresh 3-node cluster of the given build
# tree (to compare two builds, or TLS against plain, close together):
#   bench/cluster.sh [--secure] BUILD_DIR e2e --jobs 20000 --workers 4
#   bench/cluster.sh [--secure] BUILD_DIR delayed --jobs 2000 --delay 2s
#   bench/cluster.sh --rss BUILD_DIR submit --jobs 300000 --batch 100 --concurrency 96
# (--rss: also print each node's peak RSS during the run, sampled every
# 100 ms, and the 429s the nodes answered: overload runs.)
# Starts rotad x3 on 127.0.0.1:9101-9103 (raft 9201-9203) in a temp dir,
# plain (--insecure) or, with --secure, with certificates made by that
# tree's rotactl (HTTPS API, mutual TLS raft); waits for a leader, runs
# rota-bench of that tree with --nodes set to all three, stops the nodes it
# started (by PID) and removes the dir. Prints the bench's JSON lines.
# BENCH_TMP sets where that dir is made (default /tmp; /dev/shm puts the
# raft logs and LMDB on tmpfs, so a commit waits for no disk).
set -euo pipefail
secure=0
rss=0
while [ "${1:-}" = "--secure" ] || [ "${1:-}" = "--rss" ]; do
    [ "$1" = "--secure" ] && secure=1
    [ "$1" = "--rss" ] && rss=1
    shift
done
B=$(cd "$1" && pwd)
shift
RUN=$(mktemp -d "${BENCH_TMP:-/tmp}/rota-bench.XXXXXX")
CLUSTER="1@127.0.0.1:9201,2@127.0.0.1:9202,3@127.0.0.1:9203"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$RUN"
}
trap cleanup EXIT
# Plain mode; a build from before secure-by-default has no --insecure.
mode=()
"$B/rotad" --help 2>&1 | grep -q -- --insecure && mode=(--insecure)
scheme=http
tls=()
if [ $secure = 1 ]; then
    "$B/ctl/rotactl" cert create-ca --certs-dir "$RUN/certs" >/dev/null
    "$B/ctl/rotactl" cert create-node --certs-dir "$RUN/certs" 127.0.0.1 >/dev/null
    mode=(--certs-dir "$RUN/certs")
    scheme=https
    tls=(--ca-file "$RUN/certs/ca.crt")
fi
for i in 1 2 3; do
    "$B/rotad" "${mode[@]}" --id "$i" --data-dir "$RUN/n$i" \
        --raft-addr "127.0.0.1:920$i" --http-addr "127.0.0.1:910$i" \
        --cluster "$CLUSTER" >"$RUN/n$i.log" 2>&1 &
    pids+=($!)
done
for _ in $(seq 1 60); do
    curl -s --max-time 1 ${tls[@]:+--cacert "$RUN/certs/ca.crt"} \
        "$scheme://127.0.0.1:9101/v1/cluster" | grep -q '"leader":{"id"' && break
    sleep 0.5
done
if [ $secure = 1 ]; then
    # Access control is on in secure mode: the bench (and the workers it
    # starts, through the environment) use the bootstrap admin token.
    # Bounded (a request that never gets its answer is retried), and the
    # token is used only once every node knows it: followers apply it a
    # heartbeat after the leader.
    ROTA_TOKEN=
    for _ in $(seq 1 10); do
        ROTA_TOKEN=$(curl -s --max-time 5 --cacert "$RUN/certs/ca.crt" -X POST \
            -H 'Content-Type: application/json' -d '{}' \
            https://127.0.0.1:9101/v1/acl/bootstrap |
            sed -n 's/.*"secret":"\([0-9a-f]*\)".*/\1/p') || true
        [ -n "$ROTA_TOKEN" ] && break
        sleep 0.5
    done
    [ -n "$ROTA_TOKEN" ] || { echo "cluster.sh: no bootstrap token" >&2; exit 1; }
    export ROTA_TOKEN
    for i in 1 2 3; do
        for _ in $(seq 1 50); do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
                --cacert "$RUN/certs/ca.crt" -H "Authorization: Bearer $ROTA_TOKEN" \
                "https://127.0.0.1:910$i/v1/jobs?limit=1") || true
            [ "$code" != 401 ] && [ "$code" != 000 ] && break
            sleep 0.1
        done
    done
fi
sampler=
if [ $rss = 1 ]; then
    (
        declare -A peak
        while :; do
            for p in "${pids[@]}"; do
                kb=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
                [ "${kb:-0}" -gt "${peak[$p]:-0}" ] && peak[$p]=$kb
            done
            for p in "${pids[@]}"; do echo "$p ${peak[$p]:-0}"; done >"$RUN/peak"
            sleep 0.1
        done
    ) &
    sampler=$!
fi
rc=0
# The bench's progress goes to stderr (callers keep or drop it).
"$B/bench/rota-bench" "$@" "${tls[@]}" \
    --nodes "$scheme://127.0.0.1:9101,$scheme://127.0.0.1:9102,$scheme://127.0.0.1:9103" || rc=$?
if [ -n "$sampler" ]; then
    kill "$sampler" 2>/dev/null || true
    wait "$sampler" 2>/dev/null || true
    i=1
    while read -r p kb; do
        busy=$(curl -s --max-time 2 ${tls[@]:+--cacert "$RUN/certs/ca.crt"} \
            "$scheme://127.0.0.1:910$i/metrics" | awk '/^rota_writes_refused_busy_total/ {print $2}')
        echo "{\"node\":$i,\"peak_rss_mb\":$((kb / 1024)),\"refused_429\":${busy:-0}}"
        i=$((i + 1))
    done <"$RUN/peak"
fi
exit $rc
