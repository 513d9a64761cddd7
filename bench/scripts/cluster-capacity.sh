#!/usr/bin/env bash
# Routers held by THREE nodes on this machine: beyond one process's 20,000-file cap. Three Fleet.Server
# nodes (cluster-config/three-node.json, one fresh PostgreSQL database), each with its own simulators
# connected straight to it (a load balancer process would hit the same fd cap), entities sharded over
# all three. Reports routers held per node and in total, memory per router (ΣΔRSS / N after a full
# GC in every node) and that every router is online in the directory.
#   bench/scripts/cluster-capacity.sh      env: PER_NODE (18000) RAMP (150/s per node) HB (60 s) HOLD (20 s)
#   Uses the local PostgreSQL (Debian's package): started if down, role fleet/fleet made if missing.
source "$(dirname "$0")/lib.sh"
PER_NODE="${PER_NODE:-18000}"; RAMP="${RAMP:-150}"; HB="${HB:-60}"; HOLD="${HOLD:-20}"
HTTP_PORTS=(18081 18082 18083); AKKA_PORTS=(14053 14054 14055)
ADMIN="Host=127.0.0.1;Port=5432;Username=fleet;Password=fleet;Database=postgres"
DB="fleet_bench_cluster"
[[ "${BUILD:-1}" == 1 ]] && build_all node

# Local PostgreSQL (Debian's package) started and the fleet role made when missing, as tests/run.sh does.
if command -v pg_lsclusters >/dev/null; then
  read -r ver name _ status _ <<<"$(pg_lsclusters -h | head -1)"
  [[ "$status" == online ]] || pg_ctlcluster "$ver" "$name" start
  su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='fleet'\" | grep -q 1 || psql -q -c \"CREATE ROLE fleet LOGIN SUPERUSER PASSWORD 'fleet'\"" >/dev/null
fi
psql_admin() { PGPASSWORD=fleet psql -h 127.0.0.1 -U fleet -d postgres -qtAc "$1"; }
psql_admin "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql_admin "CREATE DATABASE $DB" >/dev/null
CS="${ADMIN/Database=postgres/Database=$DB};Maximum Pool Size=20"

# The instrument must not down what it measures: a forced full GC and heap dump (dotnet-gcdump) stops a
# node holding ~1 GB of heap for seconds, past the failure detector's 3 s, and the others would down it.
CONF="$OUT/cluster-capacity-node.json"
jq '.akka.cluster["failure-detector"]["acceptable-heartbeat-pause"] = "60s"' "$ROOT/cluster-config/three-node.json" > "$CONF"
NODE_PIDS=()
seeds=(); for i in 0 1 2; do seeds+=("--Fleet:Cluster:SeedNodes:$i" "akka.tcp://fleet@127.0.0.1:${AKKA_PORTS[$i]}"); done
for i in 0 1 2; do
  dotnet "$NODE_DLL" --urls "http://127.0.0.1:${HTTP_PORTS[$i]}" --config "$CONF" \
    --Fleet:Cluster:Port "${AKKA_PORTS[$i]}" --Fleet:Persistence:ConnectionString "$CS" "${seeds[@]}" \
    --Logging:LogLevel:Default Warning >"$OUT/cluster-node$((i + 1)).log" 2>&1 &
  NODE_PIDS+=("$!"); PIDS+=("$!")
done
for i in 0 1 2; do
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:${HTTP_PORTS[$i]}/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
  curl -sf "http://127.0.0.1:${HTTP_PORTS[$i]}/readyz" >/dev/null || { log "node$((i + 1)) not ready"; exit 1; }
done
log "cluster up: $(curl -sf -H "$AUTH" "http://127.0.0.1:${HTTP_PORTS[0]}/api/v1/node" | jq -c '.members')"

node_rss() { local t=0; for p in "${NODE_PIDS[@]}"; do t=$(( t + $(rss_kb "$p") )); done; echo "$t"; }
settle_all() {  # full GC in every node (dotnet-gcdump), then the summed RSS
  sleep 2
  for p in "${NODE_PIDS[@]}"; do
    if [[ -x "$GCDUMP" ]]; then "$GCDUMP" collect -p "$p" -o "$OUT/$1-$p.gcdump" >/dev/null 2>&1 || log "gcdump $p failed"; fi
  done
  sleep 1; node_rss
}
rss0=$(settle_all ccap-idle)

# Simulators: per node, processes of at most SIM_PER_PROC routers, device indexes disjoint across nodes.
ALL_SIMS=(); ALL_JSONS=(); TAGS=()
ramp_s=$(awk -v d="$PER_NODE" -v r="$RAMP" 'BEGIN{print int(d/r)+1}')
for i in 0 1 2; do
  PORT="${HTTP_PORTS[$i]}" start_sims "$PER_NODE" "$HB" "$RAMP" $(( ramp_s + HOLD + 300 )) 0 "ccap-n$i" \
    --stats-seconds 1 --no-reconnect --device-prefix "c$i"
  ALL_SIMS+=("${SIM_PIDS[@]}"); ALL_JSONS+=("${SIM_JSONS[@]}"); TAGS+=("ccap-n$i")
done
PROCS_PER_NODE=$(( ${#ALL_SIMS[@]} / 3 ))
# sims_connected reads one log per simulator process of the tag; SIM_PIDS only gives it the count.
connected_all() { local t=0; for i in 0 1 2; do SIM_PIDS=("${ALL_SIMS[@]:$(( i * PROCS_PER_NODE )):$PROCS_PER_NODE}"); t=$(( t + $(sims_connected "ccap-n$i") )); done; echo "$t"; }
TOTAL=$(( 3 * PER_NODE )); best=0; still=0; t0=$(date +%s)
while :; do
  sleep 5
  for p in "${NODE_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { log "a node died"; break 2; }; done
  c=$(connected_all)
  if (( c > best )); then best=$c; still=0; else still=$(( still + 5 )); fi
  log "connected $c of $TOTAL, nodes rss $(node_rss) kB, load $(cut -d' ' -f1 /proc/loadavg)"
  (( c >= TOTAL )) && break
  (( $(date +%s) - t0 > ramp_s && still >= 30 )) && { log "plateau at $best"; break; }
done
log "holding $HOLD s"; sleep "$HOLD"
held=$(connected_all)
per_node=(); for i in 0 1 2; do per_node+=("$(curl -sf -H "$AUTH" "http://127.0.0.1:${HTTP_PORTS[$i]}/api/v1/node" | jq '.connections.active')"); done
# Every router online in the directory (read through node 1, pages of 1000): how long after the last
# connect the directory shows them all, polled every 10 s for at most CONVERGE seconds.
count_online() {
  local n=0 cursor="" page
  for _ in $(seq 1 200); do
    page=$(curl -sf -m 30 -H "$AUTH" "http://127.0.0.1:${HTTP_PORTS[0]}/api/v1/devices?online=true&limit=1000${cursor:+&cursor=$cursor}") || break
    n=$(( n + $(jq '.items | length' <<<"$page") ))
    cursor=$(jq -r '.next_cursor // empty' <<<"$page"); [[ -z "$cursor" ]] && break
  done
  echo "$n"
}
CONVERGE="${CONVERGE:-300}"; t_all=$(date +%s); online=0
while :; do
  online=$(count_online); waited=$(( $(date +%s) - t_all ))
  log "directory: $online of $held online (+${waited} s after the hold)"
  (( online >= held || waited >= CONVERGE )) && break
  sleep 10
done
converged=null; (( online >= held )) && converged=$(( $(date +%s) - t_all + HOLD ))
alive=0; for p in "${NODE_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=$(( alive + 1 )); done
rss1=$(settle_all ccap-full)
SIM_PIDS=("${ALL_SIMS[@]}"); SIM_JSONS=("${ALL_JSONS[@]}")
for p in "${SIM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done; wait_sims
per=$(awk -v a="$rss0" -v b="$rss1" -v n="$held" 'BEGIN{ if (n>0) printf "%.2f", (b-a)/n; else print "null" }')
fail=$(sim_sum connect_failures)
result "{\"bench\":\"cluster_capacity\",\"nodes\":3,\"offered\":$TOTAL,\"held\":$held,\"per_node_active\":[${per_node[0]},${per_node[1]},${per_node[2]}],\"online_in_directory\":$online,\"directory_complete_after_s\":$converged,\"nodes_alive\":$alive,\"rss_idle_kb\":$rss0,\"rss_full_kb\":$rss1,\"kb_per_router\":$per,\"connect_failures\":$fail,\"heartbeat_s\":$HB,\"ramp_per_s_per_node\":$RAMP}"
