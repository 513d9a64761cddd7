#!/usr/bin/env bash
# Does a connect storm trip the socket limits? A fresh node (SQLite in a temp file), then DEVICES simulated
# routers (--firmware mix) all launched at once; after HOLD seconds, the node's own figures: sockets dropped
# for no connect in time (closed_without_connect), frames refused over the rate, sockets dropped for the rate.
# Run once per connect deadline in DEADLINES (seconds): the smallest deadline no router trips shows the margin
# the default (10 s) has on this machine under this storm.
#
#   bench/scripts/connect-storm-limits.sh                 # DEVICES=10000 DEADLINES="10 2 1" HOLD=40
#
# At the open-file limit: NOFILE=N runs the node under `prlimit --nofile=N:N`, and WAVES=K starts K simulators
# with the same routers WAVE_GAP seconds apart (each wave's sockets replace the last one's, which reconnect in
# turn: a reconnect storm over sockets still being released). The figures then add whether the node lived, the
# most files it had open (sampled every second) and what it held of its budget (`sockets` on /api/v1/node).
#   NOFILE=4096 WAVES=2 DEVICES=3000 DEADLINES=10 bench/scripts/connect-storm-limits.sh
# Needs: a Release build of src/Fleet.Server and src/Fleet.Simulator, curl, jq.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICES="${DEVICES:-10000}"; DEADLINES="${DEADLINES:-10 2 1}"; HOLD="${HOLD:-40}"; PORT="${PORT:-18580}"
RAMP="${RAMP:-100000}"; FIRMWARE="${FIRMWARE:-mix}"
NOFILE="${NOFILE:-}"; WAVES="${WAVES:-1}"; WAVE_GAP="${WAVE_GAP:-10}"
limit=(); [ -n "$NOFILE" ] && limit=(prlimit "--nofile=$NOFILE:$NOFILE" --)
NODE_DLL="${NODE_DLL:-src/Fleet.Server/bin/Release/net10.0/Fleet.Server.dll}"
SIM_DLL="${SIM_DLL:-src/Fleet.Simulator/bin/Release/net10.0/Fleet.Simulator.dll}"
KEY="bench-viewer-key-000000000000001"
work=$(mktemp -d /tmp/fleet-storm-limits.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

for deadline in $DEADLINES; do
  "${limit[@]}" dotnet "$NODE_DLL" --urls "http://127.0.0.1:$PORT" --Fleet:Cluster:Port 0 \
    --Fleet:Persistence:ConnectionString "Data Source=$work/fleet-$deadline.db" \
    --Fleet:WebSocket:ConnectWithinSeconds "$deadline" \
    --Fleet:Security:ApiKeys:0:Name bench --Fleet:Security:ApiKeys:0:Key "$KEY" --Fleet:Security:ApiKeys:0:Role viewer \
    > "$work/node-$deadline.log" 2>&1 &
  node=$!; pids+=("$node")
  until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; do kill -0 "$node" || { tail "$work/node-$deadline.log"; exit 1; }; sleep 0.2; done
  sims=()
  for wave in $(seq 1 "$WAVES"); do
    [ "$wave" -gt 1 ] && sleep "$WAVE_GAP"
    dotnet "$SIM_DLL" --url "ws://127.0.0.1:$PORT/ws/wifidogx" --devices "$DEVICES" --ramp "$RAMP" --firmware "$FIRMWARE" \
      --heartbeat-seconds 60 --duration $((HOLD + (WAVES - wave) * WAVE_GAP + 20)) --stats-seconds 5 --stats-json "$work/sim-$deadline-$wave.json" \
      > "$work/sim-$deadline-$wave.log" 2>&1 &
    sims+=($!); pids+=($!)
  done
  peak=0; until_s=$((SECONDS + HOLD))
  while [ "$SECONDS" -lt "$until_s" ]; do
    n=$(ls "/proc/$node/fd" 2>/dev/null | wc -l); [ "$n" -gt "$peak" ] && peak=$n
    sleep 1
  done
  figures=$(curl -sf -m 10 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/api/v1/node" | jq -c '.connections
    | {active, accepted, rejected_at_cap, closed_without_connect, closed_for_frame_rate, rate_limited: (.refused.rate_limited // 0), refused}' || echo "no answer")
  sockets=$(curl -sf -m 10 -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT/api/v1/node" | jq -c '.sockets' || echo "no answer")
  alive=$(kill -0 "$node" 2>/dev/null && echo yes || echo "NO (see $work/node-$deadline.log)")
  for sim in "${sims[@]}"; do wait "$sim" || true; done
  connected=$(cat "$work"/sim-"$deadline"-*.log | grep -o 'connected=[0-9]*' | sort -t= -k2 -n | tail -1)
  echo "deadline ${deadline}s, $WAVES wave(s) of $DEVICES routers${NOFILE:+ under an open-file limit of $NOFILE}: node alive $alive, peak open files $peak; node $figures; sockets $sockets; simulator max $connected"
  kill "$node" 2>/dev/null; wait "$node" 2>/dev/null || true
done
echo "logs: $work"
