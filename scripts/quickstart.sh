#!/usr/bin/env bash
# Install what is missing, build, and start a local 3-node Rota cluster on
# loopback (plus a worker once rota-worker exists).
#   scripts/quickstart.sh        start (or say it is running)
#   scripts/quickstart.sh stop   stop what this script started
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
RUN="$ROOT/.rota"
CLUSTER="1@127.0.0.1:7001,2@127.0.0.1:7002,3@127.0.0.1:7003"

stop() {
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
        fi
        rm -f "$f"
    done
    echo "stopped"
}

running() {
    for f in "$RUN"/*.pid; do
        [ -e "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && return 0
    done
    return 1
}

if [ "${1:-}" = "stop" ]; then
    stop
    exit 0
fi
if running; then
    echo "a cluster started by this script is already running (scripts/quickstart.sh stop)"
    exit 0
fi

scripts/deps.sh
echo "building..."
scripts/build.sh >/dev/null
mkdir -p "$RUN"
# Secure by default: a CA and a node certificate for loopback (made once,
# kept in .rota/certs); HTTPS API, mutual TLS between the nodes.
CERTS="$RUN/certs"
if [ ! -f "$CERTS/node.crt" ]; then
    build/ctl/rotactl cert create-ca --certs-dir "$CERTS" >/dev/null
    build/ctl/rotactl cert create-node --certs-dir "$CERTS" 127.0.0.1 localhost >/dev/null
    echo "certificates: $CERTS (CA, and one node certificate for 127.0.0.1)"
fi
CA="$CERTS/ca.crt"
for i in 1 2 3; do
    nohup build/rotad --id "$i" --data-dir "$RUN/node$i" \
        --raft-addr "127.0.0.1:700$i" --http-addr "127.0.0.1:800$i" \
        --cluster "$CLUSTER" --certs-dir "$CERTS" >"$RUN/node$i.log" 2>&1 &
    echo $! >"$RUN/node$i.pid"
done

leader=""
for _ in $(seq 1 60); do
    leader=$(curl -s --max-time 1 --cacert "$CA" https://127.0.0.1:8001/v1/cluster |
        sed -n 's/.*"leader":{"id":\([0-9]*\).*/\1/p' || true)
    [ -n "$leader" ] && break
    sleep 0.5
done
if [ -z "$leader" ]; then
    echo "no leader after 30 s; see $RUN/node*.log" >&2
    exit 1
fi
# Access control is on: the first start bootstraps the admin token
# (kept in .rota/token, 0600); the worker gets a worker token of its own.
TOKEN="$RUN/token"
if [ ! -s "$TOKEN" ]; then
    secret=$(curl -s --cacert "$CA" -X POST -H 'Content-Type: application/json' \
        -d '{}' https://127.0.0.1:800"$leader"/v1/acl/bootstrap |
        sed -n 's/.*"secret":"\([0-9a-f]*\)".*/\1/p')
    if [ -z "$secret" ]; then
        echo "ACL bootstrap failed (a cluster bootstrapped before? remove $RUN)" >&2
        exit 1
    fi
    (umask 077 && printf '%s\n' "$secret" >"$TOKEN")
fi
AUTH="Authorization: Bearer $(cat "$TOKEN")"
worker_token=$(curl -s --cacert "$CA" -X POST -H 'Content-Type: application/json' \
    -H "$AUTH" -d '{"name":"quickstart-worker","role":"worker"}' \
    https://127.0.0.1:800"$leader"/v1/acl/tokens |
    sed -n 's/.*"secret":"\([0-9a-f]*\)".*/\1/p')
if [ -x build/worker/rota-worker ]; then
    # --allow-shell: the demo job below is a shell job. A worker started
    # with it runs any command it is given, as this user.
    ROTA_TOKEN="$worker_token" nohup build/worker/rota-worker --allow-shell --ca-file "$CA" \
        --servers https://127.0.0.1:8001,https://127.0.0.1:8002,https://127.0.0.1:8003 \
        >"$RUN/worker.log" 2>&1 &
    echo $! >"$RUN/worker.pid"
fi

cat <<MSG
Rota is running (leader: node $leader), secure: HTTPS with the CA in $CA,
mutual TLS between the nodes, access control on.
  API:       https://127.0.0.1:8001  https://127.0.0.1:8002  https://127.0.0.1:8003
  Auth:      the admin token is in $TOKEN: send it as
             -H "Authorization: Bearer \$(cat $TOKEN)"  (rotactl reads .rota/ itself)
  Dashboard: https://127.0.0.1:8001/  (your browser: trust $CA, or accept the warning;
             sign in with the token in $TOKEN)
  Events:    https://127.0.0.1:8001/v1/events  (Server-Sent Events; rotactl watch)
  Metrics:   https://127.0.0.1:8001/metrics  (needs a token)
  Logs:      $RUN/node{1,2,3}.log
  Worker:    started with --allow-shell (it runs shell jobs: any command, as $(id -un))
Try:
  curl --cacert $CA -H "Authorization: Bearer \$(cat $TOKEN)" -X POST https://127.0.0.1:8002/v1/jobs \\
       -H 'Content-Type: application/json' -d '{"type":"shell","payload":{"cmd":"echo hi"}}'
  build/ctl/rotactl list --status completed
  build/ctl/rotactl cluster
Stop: scripts/quickstart.sh stop
MSG
