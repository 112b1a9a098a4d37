#!/usr/bin/env bash
# The standard measurements against one node (give the leader's URL).
# Starts nothing; prints one JSON line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=${1:-http://127.0.0.1:8001}
B=build/bench/rota-bench
$B submit --nodes "$NODE" --jobs 20000 --concurrency 32
$B submit --nodes "$NODE" --jobs 200000 --concurrency 32 --batch 100
