#!/usr/bin/env bash
# Fuzzing the device protocol (docs/FUZZING.md), both targets of bench/Fuzz:
#   1. codec: CASES cases of seed SEED (mutated frames of every dialect and direction, and random bytes) through
#      every decoding entry point the node uses, in-process on THREADS threads;
#   2. connection: a fresh node (Release, SQLite in a temp file, its log as JSON lines), HEALTHY healthy routers of
#      every era heartbeating every HB s and taking a command every CMD_EVERY s, while SOCKETS sockets send mutated
#      frames at RATE frames/s each for DURATION s; then every healthy router must still hold its first connection,
#      every command must have succeeded, the directory must list a router connected afterwards, the node must be
#      ready, and its log must hold no exception.
#   bench/scripts/fuzz.sh
#   env: CASES (1000000) SEED (1) THREADS (2) DURATION (180) HEALTHY (30) SOCKETS (8) RATE (200) HB (5)
#        CMD_EVERY (1) DB (sqlite | postgres: a fresh database fleet_fuzz owned by the bench's own role, as journal.sh)
#        PORT (18490) CLUSTER_PORT (4463) BUILD (1) CODEC (1) CONNECTION (1) OUT (bench/results)
# One JSON line per target goes to $OUT/results.jsonl; the full figures, the node's log and any failing input to
# $OUT/fuzz-<time>/. Exits 1 if either target failed. Needs jq and curl.
PORT="${PORT:-18490}" # (before lib.sh, whose default is the other benches' 8080)
source "$(dirname "$0")/lib.sh"
CASES="${CASES:-1000000}"; SEED="${SEED:-1}"; THREADS="${THREADS:-2}"
DURATION="${DURATION:-180}"; HEALTHY="${HEALTHY:-30}"; SOCKETS="${SOCKETS:-8}"; RATE="${RATE:-200}"; HB="${HB:-5}"
CMD_EVERY="${CMD_EVERY:-1}"; CLUSTER_PORT="${CLUSTER_PORT:-4463}"; DB="${DB:-sqlite}"
FUZZ_DLL="$ROOT/bench/Fuzz/bin/Release/net10.0/Fuzz.dll"
RUN="$OUT/fuzz-$(date -u +%Y%m%dT%H%M%SZ)"; mkdir -p "$RUN"
if [[ "${BUILD:-1}" == 1 ]]; then
  log "building (Release): bench/Fuzz and the node"
  dotnet build -c Release "$ROOT/bench/Fuzz" -v q -nologo >/dev/null
  [[ "${CONNECTION:-1}" == 1 ]] && dotnet build -c Release "$ROOT/src/Fleet.Server" -v q -nologo >/dev/null
fi
failed=0

if [[ "${CODEC:-1}" == 1 ]]; then
  log "codec: $CASES cases of seed $SEED on $THREADS thread(s)"
  rc=0
  dotnet "$FUZZ_DLL" codec --cases "$CASES" --seed "$SEED" --threads "$THREADS" --json "$RUN/codec.json" --out "$RUN" \
    | tee "$RUN/codec.log" >&2 || rc=$?
  (( rc != 0 )) && failed=1
  result "$(jq -c '{bench:"fuzz-codec",seed,cases,seconds,cases_per_second,failures,first_failure_file}' "$RUN/codec.json")"
fi

if [[ "${CONNECTION:-1}" == 1 ]]; then
  # The frame budget (20/s per socket) is lifted: every mutated frame should reach the decoders, not the limiter.
  node_env="Fleet__Cluster__Port=$CLUSTER_PORT Logging__Console__FormatterName=json Fleet__WebSocket__MaxFramesPerSecond=0"
  if [[ "$DB" == postgres ]]; then
    # A role and database of the bench's own (as journal.sh): never the postgres role other tests may use.
    pg_lsclusters -h 2>/dev/null | grep -q online || pg_ctlcluster 15 main start
    su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='fleet_bench'\"" | grep -q 1 \
      || su postgres -c "psql -qc \"CREATE ROLE fleet_bench LOGIN CREATEDB PASSWORD 'fleet_bench'\"" >/dev/null
    su postgres -c "dropdb --if-exists fleet_fuzz && createdb -O fleet_bench fleet_fuzz"
    NODE_ENV="$node_env Fleet__Persistence__Provider=PostgreSql" \
      start_server node "Host=127.0.0.1;Username=fleet_bench;Password=fleet_bench;Database=fleet_fuzz"
  else
    NODE_ENV="$node_env" start_server node "Data Source=/tmp/fleet-fuzz-$$.db"
  fi
  log "connection: $HEALTHY healthy routers, $SOCKETS fuzzing sockets at $RATE frames/s each for $DURATION s"
  s0=$(cpu_s "$SERVER_PID")
  rc=0
  dotnet "$FUZZ_DLL" connection --base "http://127.0.0.1:$PORT" --seed "$SEED" --healthy "$HEALTHY" --fuzz-sockets "$SOCKETS" \
    --duration "$DURATION" --rate "$RATE" --heartbeat-seconds "$HB" --command-every "$CMD_EVERY" \
    --node-log "$OUT/server-node.log" --json "$RUN/connection.json" --out "$RUN" | tee "$RUN/connection.log" >&2 || rc=$?
  (( rc != 0 )) && failed=1
  s1=$(cpu_s "$SERVER_PID"); rss=$(rss_kb "$SERVER_PID")
  cleanup
  cp "$OUT/server-node.log" "$RUN/node.log"
  rm -f /tmp/fleet-fuzz-$$.db /tmp/fleet-fuzz-$$.db-shm /tmp/fleet-fuzz-$$.db-wal
  result "$(jq -c --argjson cpu "$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" --argjson rss "$rss" \
    --arg db "$DB" '{bench:"fuzz-connection",db:$db,seed,seconds,fuzz_frames_sent,fuzz_frames_per_second,fuzz_connections,probes_answered,probes_unanswered,
      fuzz_sockets_ended_by_node,close_frames_from_node,healthy_routers,healthy_connected_once,healthy_losses,commands_sent,
      command_outcomes,command_p99_ms,node_ready,log_errors:.node_log.log_errors,failures:(.failures|length),server_cpu_s:$cpu,server_rss_kb:$rss}' \
    "$RUN/connection.json")"
fi
log "done: $RUN"
exit "$failed"
