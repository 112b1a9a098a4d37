#!/usr/bin/env bash
# W1 (and W1-bulk) of ../shared/peers through the TypeScript client (clients/node), next to the
# raw-HTTP adapter in the same sitting: RUNS=3 bench/peers-ts.sh. Needs clients/node built
# (npm ci && npm run build) and build/rotad. Results: bench/results/peers-ts.jsonl + the table.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
[ -f "$PEERS/lib/common.sh" ] || { echo "no peers harness at $PEERS" >&2; exit 1; }
[ -f "$ROOT/clients/node/dist/index.js" ] || (cd "$ROOT/clients/node" && npm ci --silent && npm run build --silent)
ln -sf "$ROOT/bench/peers/rota-ts.js" "$PEERS/adapters/rota-ts.js"
trap 'rm -f "$PEERS/adapters/rota-ts.js"' EXIT
mkdir -p "$ROOT/bench/results"
export ROTA_ROOT=$ROOT RES=${RES:-$ROOT/bench/results/peers-ts.jsonl}
WORKLOADS=${WORKLOADS:-w1}
# The harness's own run for the raw-HTTP adapter, then the same cluster set-up for the client.
(cd "$ROOT" && WORKLOADS=$WORKLOADS "$PEERS/run_rota.sh" >/dev/null)
source "$PEERS/lib/common.sh"
ROTAD=$ROOT/build/rotad
for rep in $(seq 1 "${RUNS:-3}"); do
  for wl in $WORKLOADS; do
    d=$DATA_ROOT/rota-ts; rm -rf "$d"; mkdir -p "$d"; spec=""; pids=""; nodes=""
    for i in 1 2 3; do spec+="${spec:+,}$i@127.0.0.1:$((17000+i))"; done
    for i in 1 2 3; do
      "$ROTAD" --id "$i" --data-dir "$d/n$i" --raft-addr "127.0.0.1:$((17000+i))" \
        --http-addr "127.0.0.1:$((18000+i))" --cluster "$spec" --insecure >"$d/n$i.log" 2>&1 &
      STARTED_PIDS+=("$!"); pids+="${pids:+,}$!"; nodes+="${nodes:+,}http://127.0.0.1:$((18000+i))"
    done
    export ROTA_NODES=$nodes
    wait_until 30 sh -c "for p in 18001 18002 18003; do curl -sf http://127.0.0.1:\$p/readyz >/dev/null || exit 1; done"
    run_bench rota-ts "$wl" "rota 3 nodes, TypeScript client" "$rep" "$RES" SERVER_PIDS="$pids"
    stop_started
  done
done
rm -rf "$DATA_ROOT/rota-ts"
node "$PEERS/summarize.js" "$RES"
