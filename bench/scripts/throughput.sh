#!/usr/bin/env bash
# Heartbeat throughput and reply latency at a series of offered rates (devices × 1/HB), with the
# server's CPU per heartbeat and the simulators' own CPU (a run where they were the bottleneck is flagged).
#   bench/scripts/throughput.sh echo|node     env: DEVICES (10000) RATES ("5000 10000 20000 30000") MEASURE (15 s)
source "$(dirname "$0")/lib.sh"
TARGET="${1:-echo}"; DEVICES="${DEVICES:-10000}"; RATES="${RATES:-5000 10000 20000 30000}"; MEASURE="${MEASURE:-15}"
RAMP="${RAMP:-2000}"; WARMUP="${WARMUP:-3}"
[[ "${BUILD:-1}" == 1 ]] && build_all "$([[ $TARGET == node ]] && echo node)"
start_server "$TARGET"
ramp_s=$(awk -v d="$DEVICES" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
for rate in $RATES; do
  hb=$(awk -v d="$DEVICES" -v r="$rate" 'BEGIN{printf "%.4f", d/r}')
  tag="tp-$TARGET-$rate"
  start_sims "$DEVICES" "$hb" "$RAMP" $(( ramp_s + WARMUP + MEASURE + 2 )) "$WARMUP" "$tag"
  # wait for every simulator to start its measured window
  for i in $(seq 0 $(( ${#SIM_PIDS[@]} - 1 ))); do
    for _ in $(seq 1 600); do grep -q "measuring from" "$OUT/sim-$tag-$i.log" 2>/dev/null && break; sleep 0.1; done
  done
  s0=$(cpu_s "$SERVER_PID"); m0=0; for p in "${SIM_PIDS[@]}"; do m0=$(awk -v a="$m0" -v b="$(cpu_s "$p")" 'BEGIN{print a+b}'); done
  sleep "$MEASURE"
  s1=$(cpu_s "$SERVER_PID"); m1=0; for p in "${SIM_PIDS[@]}"; do m1=$(awk -v a="$m1" -v b="$(cpu_s "$p")" 'BEGIN{print a+b}'); done
  wait_sims
  got=$(sim_sum replies_per_s); sent=$(sim_sum heartbeats_per_s)
  p50=$(sim_max reply_p50_ms); p99=$(sim_max reply_p99_ms); p999=$(sim_max reply_p999_ms)
  conn=$(sim_sum connects); fails=$(sim_sum connect_failures)
  line=$(awk -v s0="$s0" -v s1="$s1" -v m0="$m0" -v m1="$m1" -v t="$MEASURE" -v got="$got" -v sent="$sent" -v offered="$rate" '
    BEGIN {
      scpu = (s1 - s0) / t * 100; mcpu = (m1 - m0) / t * 100;
      us = (got > 0) ? (s1 - s0) / (got * t) * 1e6 : 0;
      simus = (got > 0) ? (m1 - m0) / (got * t) * 1e6 : 0;
      bound = (sent < 0.95 * offered && mcpu >= scpu) ? "true" : "false";
      printf "\"server_cpu_percent\":%.1f,\"server_us_per_heartbeat\":%.1f,\"sim_cpu_percent\":%.1f,\"sim_us_per_heartbeat\":%.1f,\"simulator_bound\":%s", scpu, us, mcpu, simus, bound }')
  result "{\"bench\":\"throughput\",\"target\":\"$TARGET\",\"devices\":$DEVICES,\"offered_per_s\":$rate,\"sent_per_s\":$sent,\"replies_per_s\":$got,\"reply_p50_ms\":$p50,\"reply_p99_ms\":$p99,\"reply_p999_ms\":$p999,$line,\"connects\":$conn,\"connect_failures\":$fails}"
done
