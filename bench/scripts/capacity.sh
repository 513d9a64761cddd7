#!/usr/bin/env bash
# Devices held by one server process and memory per device: ΔRSS/N as an operator sees it (no forced collection)
# and after a full GC; heartbeat reply p50/p99 in the steady state (from STEADY_AFTER s after the ramp, 15 by default).
#   bench/scripts/capacity.sh echo|node      env: DEVICES (19000) RAMP (1000/s) HB (60 s) HOLD (10 s)
source "$(dirname "$0")/lib.sh"
TARGET="${1:-echo}"; DEVICES="${DEVICES:-19000}"; RAMP="${RAMP:-1000}"; HB="${HB:-60}"; HOLD="${HOLD:-10}"
[[ "${BUILD:-1}" == 1 ]] && build_all "$([[ $TARGET == node ]] && echo node)"
start_server "$TARGET"
rss0=$(settled_rss "cap-$TARGET-idle")
ramp_s=$(awk -v d="$DEVICES" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
start_sims "$DEVICES" "$HB" "$RAMP" $(( ramp_s + HOLD + 120 )) $(( ramp_s + ${STEADY_AFTER:-15} )) "cap-$TARGET" --stats-seconds 1 --no-reconnect
best=0; still=0; t0=$(date +%s)
while :; do
  sleep 2
  kill -0 "$SERVER_PID" 2>/dev/null || { log "server died"; break; }
  c=$(sims_connected "cap-$TARGET")
  if (( c > best )); then best=$c; still=0; else still=$(( still + 2 )); fi
  log "connected $c (best $best), server rss $(rss_kb "$SERVER_PID") kB, cpu $(cpu_s "$SERVER_PID") s"
  (( c >= DEVICES )) && break
  (( $(date +%s) - t0 > ramp_s && still >= 10 )) && { log "plateau at $best"; break; }
done
log "holding $HOLD s"; sleep "$HOLD"
held=$(sims_connected "cap-$TARGET")
alive=1; kill -0 "$SERVER_PID" 2>/dev/null || alive=0
rss_seen=0; (( alive )) && rss_seen=$(rss_kb "$SERVER_PID")
rss1=0; (( alive )) && rss1=$(settled_rss "cap-$TARGET-full")
for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
per_device() { awk -v a="$rss0" -v b="$1" -v n="$held" 'BEGIN{ if (n>0 && b>0) printf "%.2f", (b-a)/n; else print "null" }'; }
per=$(per_device "$rss1"); per_seen=$(per_device "$rss_seen")
fail=$(sim_sum connect_failures)
result "{\"bench\":\"capacity\",\"target\":\"$TARGET\",\"offered\":$DEVICES,\"held\":$held,\"server_alive\":$alive,\"rss_idle_kb\":$rss0,\"rss_full_kb\":$rss1,\"kb_per_device\":$per,\"rss_seen_kb\":$rss_seen,\"kb_per_device_seen\":$per_seen,\"reply_p50_ms\":$(sim_max reply_p50_ms),\"reply_p99_ms\":$(sim_max reply_p99_ms),\"connect_failures\":$fail,\"heartbeat_s\":$HB,\"ramp_per_s\":$RAMP}"
