#!/usr/bin/env bash
# Journal events/s: a bare batched INSERT loop on SQLite (WAL) and PostgreSQL, and — when the node
# is built — the node's own journal growth under a command load that persists events
# (auth commands, open loop), sampled by counting rows of its journal table.
#   bench/scripts/journal.sh [bare|node|all]   env: SECONDS_BARE (10) BATCH (100) RATE (1000) DURATION (15)
source "$(dirname "$0")/lib.sh"
WHAT="${1:-all}"; SECS="${SECONDS_BARE:-10}"; BATCH="${BATCH:-100}"; RATE="${RATE:-1000}"; DURATION="${DURATION:-15}"
# A role and databases of the bench's own: never touches the postgres role other tests may use.
PG_CS="${PG_CS:-Host=127.0.0.1;Username=fleet_bench;Password=fleet_bench;Database=fleet_bench}"
[[ "${BUILD:-1}" == 1 ]] && build_all "$([[ $WHAT != bare ]] && echo node)"

pg_ready() {
  command -v pg_ctlcluster >/dev/null || return 1
  pg_lsclusters -h 2>/dev/null | grep -q online || pg_ctlcluster 15 main start || return 1
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='fleet_bench'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE fleet_bench LOGIN CREATEDB PASSWORD 'fleet_bench'\"" >/dev/null
  su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='fleet_bench'\"" | grep -q 1 \
    || su postgres -c "createdb -O fleet_bench fleet_bench"
  su postgres -c "psql -qc \"ALTER DATABASE fleet_bench OWNER TO fleet_bench\"" >/dev/null
}

if [[ "$WHAT" != node ]]; then
  for multi in 0 1; do
    db="/tmp/fleet-bare-$$.db"
    r=$(MULTI_ROW=$multi dotnet "$JOURNAL_DLL" insert sqlite "Data Source=$db" "$SECS" "$BATCH"); rm -f "$db"*
    result "{\"bench\":\"journal_bare\",$(echo "$r" | sed 's/^{//')"
    if pg_ready; then
      r=$(MULTI_ROW=$multi dotnet "$JOURNAL_DLL" insert pg "$PG_CS" "$SECS" "$BATCH")
      result "{\"bench\":\"journal_bare\",$(echo "$r" | sed 's/^{//')"
    else log "PostgreSQL not available: skipped"; fi
  done
fi

node_run() { # provider connection-string count-db
  local provider=$1 cs=$2 countdb=$3 devices=1000
  NODE_ENV="Fleet__Persistence__Provider=$provider" start_server node "$cs"
  start_sims "$devices" 60 1000 $(( DURATION + 60 )) 0 "jn-$provider" --stats-seconds 1
  for _ in $(seq 1 60); do (( $(sims_connected "jn-$provider") >= devices )) && break; sleep 1; done
  r0=$(dotnet "$JOURNAL_DLL" count "$countdb" "$cs"); t0=$(date +%s.%N)
  dotnet "$LOAD_DLL" --base "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" --warmup 0 --devices "$devices" \
    --body '{"type":"auth","token":"t","client_ip":"192.168.1.23","client_mac":"aa:bb:cc:dd:ee:01","gw_id":"gw-1"}' --wait 0 \
    --json "$OUT/jn-$provider.json" >&2
  r1=$(dotnet "$JOURNAL_DLL" count "$countdb" "$cs"); t1=$(date +%s.%N)
  for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  result "{\"bench\":\"journal_node\",\"db\":\"$provider\",\"offered_commands_per_s\":$RATE,\"rows\":$(( r1 - r0 )),\"rows_per_s\":$(awk -v a="$r0" -v b="$r1" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.0f", (b-a)/(t1-t0)}'),\"http\":$(jq -c .http "$OUT/jn-$provider.json")}"
}

if [[ "$WHAT" != bare ]]; then
  db="/tmp/fleet-node-$$.db"
  node_run Sqlite "Data Source=$db" sqlite; rm -f "$db"*
  if pg_ready; then
    su postgres -c "dropdb --if-exists fleet_node_bench && createdb -O fleet_bench fleet_node_bench"
    node_run PostgreSql "Host=127.0.0.1;Username=fleet_bench;Password=fleet_bench;Database=fleet_node_bench" pg
  fi
fi
