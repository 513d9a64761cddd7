#!/usr/bin/env bash
# Does a connect storm trip the socket limits? A fresh node (SQLite in a temp file), then DEVICES simulated
# routers (--firmware mix) all launched at once; after HOLD seconds, the node's own figures: sockets dropped
# for no connect in time (closed_without_connect), frames refused over the rate, sockets dropped for the rate.
# Run once per connect deadline in DEADLINES (seconds): the smallest deadline no router trips shows the margin
# the default (10 s) has on this machine under this storm.
#
#   bench/scripts/connect-storm-limits.sh                 # DEVICES=10000 DEADLINES="10 2 1" HOLD=40
# Needs: a Release build of src/Fleet.Server and src/Fleet.Simulator, curl, jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICES="${DEVICES:-10000}"; DEADLINES="${DEADLINES:-10 2 1}"; HOLD="${HOLD:-40}"; PORT="${PORT:-18580}"
RAMP="${RAMP:-100000}"; FIRMWARE="${FIRMWARE:-mix}"
NODE_DLL="${NODE_DLL:-src/Fleet.Server/bin/Release/net10.0/Fleet.Server.dll}"
SIM_DLL="${SIM_DLL:-src/Fleet.Simulator/bin/Release/net10.0/Fleet.Simulator.dll}"
KEY="bench-viewer-key-000000000000001"
work=$(mktemp -d /tmp/fleet-storm-limits.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

for deadline in $DEADLINES; do
  dotnet "$NODE_DLL" --urls "http://127.0.0.1:$PORT" --Fleet:Cluster:Port 0 \
    --Fleet:Persistence:ConnectionString "Data Source=$work/fleet-$deadline.db" \
    --Fleet:WebSocket:ConnectWithinSeconds "$deadline" \
    --Fleet:Security:ApiKeys:0:Name bench --Fleet:Security:ApiKeys:0:Key "$KEY" --Fleet:Security:ApiKeys:0:Role viewer \
    > "$work/node-$deadline.log" 2>&1 &
  node=$!; pids+=("$node")
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do kill -0 "$node" || { tail "$work/node-$deadline.log"; exit 1; }; sleep 0.2; done
  dotnet "$SIM_DLL" --url "ws://127.0.0.1:$PORT/ws/wifidogx" --devices "$DEVICES" --ramp "$RAMP" --firmware "$FIRMWARE" \
    --heartbeat-seconds 60 --duration $((HOLD + 5)) --stats-seconds 5 --stats-json "$work/sim-$deadline.json" \
    > "$work/sim-$deadline.log" 2>&1 &
  sim=$!; pids+=("$sim")
  sleep "$HOLD"
  figures=$(curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/api/v1/node" | jq -c '.connections
    | {active, accepted, closed_without_connect, closed_for_frame_rate, rate_limited: (.refused.rate_limited // 0), refused}')
  wait "$sim" || true
  connected=$(grep -o 'connected=[0-9]*' "$work/sim-$deadline.log" | sort -t= -k2 -n | tail -1)
  echo "deadline ${deadline}s, $DEVICES routers at once: node $figures; simulator max $connected"
  kill "$node"; wait "$node" 2>/dev/null || true
done
echo "logs: $work"
