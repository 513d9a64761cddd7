#!/usr/bin/env bash
# A bulk job over a whole fleet (issue 14; docs/PERFORMANCE.md, "What a job costs"): the node filled with DEVICES simulated
# routers, one job sending get_firmware_info to every one of them at RATE per minute. Reports how long the job took against
# the time its rate allows, the node's CPU during it, RSS before and after (as read and after a full GC), and how long
# GET /api/v1/jobs/{id} (the job actor answering with its counts) and GET /api/v1/jobs (the table) take while it runs.
#   bench/scripts/jobs.sh     env: DEVICES (10000) HB (60) RATE (60000 per minute) RAMP (500/s) BUILD (1)
source "$(dirname "$0")/lib.sh"
DEVICES="${DEVICES:-10000}"; HB="${HB:-60}"; RATE="${RATE:-60000}"; RAMP="${RAMP:-500}"
[[ "${BUILD:-1}" == 1 ]] && build_all node
start_server node
ramp_s=$(awk -v d="$DEVICES" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
job_s=$(awk -v d="$DEVICES" -v r="$RATE" 'BEGIN{print int(d*60/r)+1}')
start_sims "$DEVICES" "$HB" "$RAMP" $(( ramp_s + job_s * 4 + 240 )) 0 "jobs" --stats-seconds 1
for _ in $(seq 1 $(( ramp_s * 2 + 60 ))); do (( $(sims_connected jobs) >= DEVICES )) && break; sleep 1; done
log "connected $(sims_connected jobs) of $DEVICES; waiting for the directory to list them"
for _ in $(seq 1 120); do
  n=$(curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/devices?online=true&count=true&limit=1" | jq .count)
  (( n >= DEVICES )) && break; sleep 1
done
sleep 5
rss0=$(rss_kb "$SERVER_PID")
s0=$(cpu_s "$SERVER_PID")
t0=$(date +%s.%N)
job=$(curl -sf -H "$AUTH" -H 'content-type: application/json' "http://127.0.0.1:$PORT/api/v1/jobs" \
  -d "{\"name\":\"bench\",\"selection\":{\"all\":true},\"command\":{\"type\":\"get_firmware_info\"},\"rate_per_minute\":$RATE}")
id=$(jq -r .job_id <<<"$job")
created_ms=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", (b-a)*1000}')
log "job $id over $(jq .total <<<"$job") devices created in $created_ms ms; at most $RATE per minute (${job_s} s)"
get_max=0; list_max=0; status=running
while [[ "$status" == running ]]; do
  sleep 1
  a=$(date +%s.%N); view=$(curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/jobs/$id"); b=$(date +%s.%N)
  curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/jobs?limit=20" >/dev/null; c=$(date +%s.%N)
  get_max=$(awk -v m="$get_max" -v a="$a" -v b="$b" 'BEGIN{v=(b-a)*1000; print (v>m)?v:m}')
  list_max=$(awk -v m="$list_max" -v a="$b" -v b="$c" 'BEGIN{v=(b-a)*1000; print (v>m)?v:m}')
  status=$(jq -r .status <<<"$view")
  (( $(awk -v a="$t0" -v b="$(date +%s)" 'BEGIN{print (b-a > 900)}') )) && { log "not finished in 900 s"; break; }
done
t1=$(date +%s.%N); s1=$(cpu_s "$SERVER_PID"); rss1=$(rss_kb "$SERVER_PID")
log "job $status: $(jq -c .counts <<<"$view")"
rss_gc=$(settled_rss jobs)
for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
result "{\"bench\":\"jobs\",\"devices\":$DEVICES,\"heartbeat_s\":$HB,\"rate_per_minute\":$RATE,\"status\":\"$status\",\"counts\":$(jq -c .counts <<<"$view"),\"create_ms\":$created_ms,\"job_s\":$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}'),\"rate_allows_s\":$(awk -v d="$DEVICES" -v r="$RATE" 'BEGIN{printf "%.1f", d*60/r}'),\"server_cpu_s\":$(awk -v a="$s0" -v b="$s1" 'BEGIN{printf "%.1f", b-a}'),\"rss_before_mb\":$((rss0/1024)),\"rss_after_mb\":$((rss1/1024)),\"rss_after_gc_mb\":$((rss_gc/1024)),\"get_job_max_ms\":$get_max,\"list_jobs_max_ms\":$list_max}"
