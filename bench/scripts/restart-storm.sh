#!/usr/bin/env bash
# Restart storm (issue 12, goal 1; docs/PERFORMANCE.md): a node restarted under DEVICES routers it knows, the routers
# reconnecting at RAMP/s — what they see from their reconnect on (reply latency to connect and heartbeats), and
# commands offered meanwhile (504s). The bare server (echo) takes the same reconnecting fleet for the baseline.
#   bench/scripts/restart-storm.sh node|echo
#   env: DEVICES (19000) RAMP (2000/s) HB (30 s) MEASURE (60 s after the ramp) RATE (50 commands/s during the storm; 0: none)
#        FIRMWARE (2025; seed, 9) PG (a PostgreSQL connection string: the node on PostgreSQL instead of a SQLite file)
#        KNOWN_RAMP (1000/s: how fast the fleet first becomes known) FRESH (0; 1: a fresh node, the fleet new to it: no phase 1) TRACE (0; 1: dotnet-trace of the storm's first 20 s; perf: perf record of them; alloc: sampled allocations) BUILD (1)
# Phase 1 (node only): a fresh node, the fleet connects once (every device and its journal exist), the node is
# stopped with SIGTERM and started again — every entity must now recover. Phase 2: the fleet reconnects at RAMP/s
# with statistics from its first connect.
source "$(dirname "$0")/lib.sh"
TARGET="${1:-node}"; DEVICES="${DEVICES:-19000}"; RAMP="${RAMP:-2000}"; HB="${HB:-30}"; MEASURE="${MEASURE:-60}"
RATE="${RATE:-50}"; FIRMWARE="${FIRMWARE:-2025}"; KNOWN_RAMP="${KNOWN_RAMP:-1000}"
export SIM_ARGS="${SIM_ARGS:-} --firmware $FIRMWARE"
[[ "${BUILD:-1}" == 1 ]] && build_all "$([[ $TARGET == node ]] && echo node)"
CS=""
# W^X off: with it the JIT's code is double-mapped and perf cannot name the managed frames.
[[ "${TRACE:-0}" == perf ]] && export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0
if [[ "$TARGET" == node ]]; then
  if [[ -n "${PG:-}" ]]; then
    CS="$PG"; export NODE_ENV="Fleet__Persistence__Provider=PostgreSql akka__persistence__max-concurrent-recoveries=50 akka__persistence__journal__sql__parallelism=3"
  else
    CS="Data Source=/tmp/fleet-storm-$$.db"; rm -f "/tmp/fleet-storm-$$.db"*
  fi
  start_server node "$CS"
else
  start_server echo
fi
if [[ "$TARGET" == node && "${FRESH:-0}" != 1 ]]; then
  known_s=$(awk -v d="$DEVICES" -v r="$KNOWN_RAMP" 'BEGIN{print int(d/r)+1}')
  start_sims "$DEVICES" "$HB" "$KNOWN_RAMP" $(( known_s + 300 )) 0 "storm-known" --stats-seconds 1 --no-reconnect
  for _ in $(seq 1 $(( known_s * 4 + 120 ))); do (( $(sims_connected storm-known) >= DEVICES )) && break; sleep 1; done
  known=$(sims_connected storm-known)
  log "fleet known: $known of $DEVICES connected; settling 10 s"; sleep 10
  for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
  t0=$(date +%s.%N); kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  log "node stopped (SIGTERM) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s; starting it again"
  start_server node "$CS"
fi
ramp_s=$(awk -v d="$DEVICES" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
s0=$(cpu_s "$SERVER_PID")
start_sims "$DEVICES" "$HB" "$RAMP" $(( ramp_s + MEASURE )) 0 "storm-$TARGET" --stats-seconds 1
if [[ "${TRACE:-0}" == alloc ]]; then
  # Sampled allocations (an event per ~100 KB, with its stack) of the storm's first 20 s: what the storm allocates, by
  # type and call stack. Read with bench/AllocReport (dotnet run --project bench/AllocReport -- <file>).
  "$HOME/.dotnet/tools/dotnet-trace" collect -p "$SERVER_PID" --profile gc-verbose --duration 00:00:00:20 \
    -o "$OUT/storm-$TARGET-alloc.nettrace" >"$OUT/storm-trace.log" 2>&1 &
elif [[ "${TRACE:-0}" == 1 ]]; then
  # A CPU profile of the first 20 s of the storm (read it with: dotnet-trace report <file> topN --inclusive).
  "$HOME/.dotnet/tools/dotnet-trace" collect -p "$SERVER_PID" --duration 00:00:00:20 \
    -o "$OUT/storm-$TARGET.nettrace" >"$OUT/storm-trace.log" 2>&1 &
elif [[ "${TRACE:-0}" == perf ]]; then
  # On-CPU samples only (dotnet-trace also samples waiting threads): read with perf report -i <file> --no-children.
  perf record -F 499 -g -p "$SERVER_PID" -o "$OUT/storm-$TARGET.perf" -- sleep 20 >"$OUT/storm-trace.log" 2>&1 &
fi
load=""
if [[ "$TARGET" == node && "$RATE" != 0 ]]; then
  # Commands from the first second of the storm, for as long as the routers reconnect and a while after.
  dotnet "$LOAD_DLL" --base "http://127.0.0.1:$PORT" --rate "$RATE" --duration $(( ramp_s + 20 )) --warmup 0 \
    --devices "$DEVICES" --device-prefix sim --body '{"type":"get_firmware_info"}' --wait 5 --json "$OUT/storm-cmd.json" \
    >"$OUT/storm-cmd.log" 2>&1 &
  load=$!; PIDS+=("$load")
fi
peak_rss=0
while :; do
  alive=0; for p in "${SIM_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  (( alive )) || break
  r=$(rss_kb "$SERVER_PID" 2>/dev/null || echo 0); (( r > peak_rss )) && peak_rss=$r
  sleep 1
done
wait_sims
[[ -n "$load" ]] && wait "$load" 2>/dev/null || true
s1=$(cpu_s "$SERVER_PID")
cmd='null'
[[ -s "$OUT/storm-cmd.json" && -n "$load" ]] && cmd="{\"p50_ms\":$(jq .p50_ms "$OUT/storm-cmd.json"),\"p99_ms\":$(jq .p99_ms "$OUT/storm-cmd.json"),\"http\":$(jq -c .http "$OUT/storm-cmd.json"),\"command_status\":$(jq -c .command_status "$OUT/storm-cmd.json")}"
result "{\"bench\":\"$([[ "${FRESH:-0}" == 1 ]] && echo fresh-storm || echo restart-storm)\",\"target\":\"$TARGET\",\"store\":\"$([[ -n "${PG:-}" ]] && echo postgresql || echo sqlite)\",\"firmware\":\"$FIRMWARE\",\"devices\":$DEVICES,\"ramp_per_s\":$RAMP,\"heartbeat_s\":$HB,\"connects\":$(sim_sum connects),\"connect_failures\":$(sim_sum connect_failures),\"replies\":$(sim_sum replies_received),\"reply_p50_ms\":$(sim_max reply_p50_ms),\"reply_p99_ms\":$(sim_max reply_p99_ms),\"reply_max_ms\":$(sim_max reply_max_ms),\"server_cpu_s\":$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}'),\"peak_rss_kb\":$peak_rss,\"commands\":$cmd}"
