#!/usr/bin/env bash
# Every benchmark in one run (about 10 minutes): the bare echo server first, then the node if it
# builds, under the same loads. Results: bench/results/results.jsonl (one JSON line per figure).
# Needs jq; dotnet-gcdump (dotnet tool install -g dotnet-gcdump --version 10.0.750501) for the
# full GC before RSS is read; PostgreSQL 15 (apt-get install -y postgresql) for the PG journal rows.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
build_all node || log "node did not build: node runs will be skipped"
export BUILD=0
# 1. devices held and memory per device, at the per-process fd cap
DEVICES=19000 RAMP=1000 "$here/capacity.sh" echo
[[ -f "$NODE_DLL" ]] && DEVICES=19000 RAMP=500 "$here/capacity.sh" node
# 2. heartbeat throughput, like for like (entities warmed up before the window)
for t in echo node; do
  [[ $t == node && ! -f "$NODE_DLL" ]] && continue
  DEVICES=5000 RAMP=500 WARMUP=15 RATES="2500 5000" MEASURE=10 "$here/throughput.sh" "$t"
done
#    and the bare server's saturation
DEVICES=10000 RAMP=1000 RATES="10000 20000" MEASURE=10 "$here/throughput.sh" echo
# 3. admin command round trip at a full node, open loop
[[ -f "$NODE_DLL" ]] && DEVICES=19000 RATE=200 DURATION=20 "$here/commands.sh"
# 4. journal: bare INSERT loops, then the node on SQLite and PostgreSQL
SECONDS_BARE=6 "$here/journal.sh" bare
[[ -f "$NODE_DLL" ]] && RATE=200 DURATION=15 "$here/journal.sh" node
log "done: $OUT/results.jsonl"
