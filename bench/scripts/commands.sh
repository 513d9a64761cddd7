#!/usr/bin/env bash
# Admin command round trip at a fixed offered rate (open loop) under background heartbeat load:
# the node filled with DEVICES simulated routers, CommandLoad posting get_firmware_info?wait=5.
#   bench/scripts/commands.sh     env: DEVICES (19000) HB (60) RATE (200) DURATION (20)
source "$(dirname "$0")/lib.sh"
DEVICES="${DEVICES:-19000}"; HB="${HB:-60}"; RATE="${RATE:-200}"; DURATION="${DURATION:-20}"; RAMP="${RAMP:-500}"
BODY="${BODY:-{\"type\":\"get_firmware_info\"\}}"
[[ "${BUILD:-1}" == 1 ]] && build_all node
start_server node
ramp_s=$(awk -v d="$DEVICES" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
start_sims "$DEVICES" "$HB" "$RAMP" $(( ramp_s + DURATION + ${SETTLE:-20} + 90 )) 0 "cmd" --stats-seconds 1
for _ in $(seq 1 $(( ramp_s * 2 + 60 ))); do (( $(sims_connected cmd) >= DEVICES )) && break; sleep 1; done
log "connected $(sims_connected cmd) of $DEVICES; settling ${SETTLE:-20} s"; sleep "${SETTLE:-20}"
log "connected $(sims_connected cmd) of $DEVICES; offering $RATE commands/s for $DURATION s"
s0=$(cpu_s "$SERVER_PID")
dotnet "$LOAD_DLL" --base "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" --warmup 3 \
  --devices "$DEVICES" --device-prefix sim --body "$BODY" --wait 5 --json "$OUT/cmd.json" | tee "$OUT/cmd.log" >&2
s1=$(cpu_s "$SERVER_PID")
held=$(sims_connected cmd)
for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
result "{\"bench\":\"commands\",\"devices\":$DEVICES,\"held\":$held,\"heartbeat_s\":$HB,\"offered_per_s\":$RATE,\"p50_ms\":$(jq .p50_ms "$OUT/cmd.json"),\"p99_ms\":$(jq .p99_ms "$OUT/cmd.json"),\"p999_ms\":$(jq .p999_ms "$OUT/cmd.json"),\"http\":$(jq -c .http "$OUT/cmd.json"),\"command_status\":$(jq -c .command_status "$OUT/cmd.json"),\"server_cpu_s\":$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')}"
