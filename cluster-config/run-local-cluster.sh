#!/usr/bin/env bash
# A three-node Fleet cluster on this machine, without Docker: PostgreSQL (Debian's package, started if
# needed), three Fleet.Server nodes (routers 8081-8083, admin API 9091-9093, Akka 4053-4055) and nginx
# with deploy/nginx/fleet.conf (routers on 8080, admin API on 9090). Ctrl-C stops everything this script started.
#
#   cluster-config/run-local-cluster.sh            # then: ws://127.0.0.1:8080/ws/wifidogx, http://127.0.0.1:9090/api/v1/devices
#   FLEET_LB_PORT=9080 FLEET_ADMIN_PORT=9180 cluster-config/run-local-cluster.sh
#
# Logs: data/cluster-local/node{1,2,3}.log and data/cluster-local/nginx/. Needs: dotnet, nginx, postgresql
# (apt-get install -y nginx postgresql).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work="$root/data/cluster-local"  # data/ is git-ignored
lb_port=${FLEET_LB_PORT:-8080}
admin_lb_port=${FLEET_ADMIN_PORT:-9090}
http_ports=(8081 8082 8083)
admin_ports=(9091 9092 9093)
akka_ports=(4053 4054 4055)
pg_conn=${FLEET_POSTGRES:-"Host=127.0.0.1;Port=5432;Username=fleet;Password=fleet;Database=fleet"}
mkdir -p "$work/nginx"
say() { printf '[cluster] %s\n' "$*" >&2; }

pids=()
cleanup() {
  say "stopping"
  # SIGTERM: each node hands its shards off and leaves; nginx stops its workers.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL --------------------------------------------------------------------------------
if [ -z "${FLEET_POSTGRES:-}" ]; then
  if command -v pg_lsclusters >/dev/null 2>&1; then
    read -r ver name _ status _ <<<"$(pg_lsclusters -h | head -1)"
    if [ "$status" != "online" ]; then say "starting PostgreSQL $ver/$name"; pg_ctlcluster "$ver" "$name" start; fi
    su postgres -c "psql -q -tc \"SELECT 1 FROM pg_roles WHERE rolname='fleet'\" | grep -q 1 || psql -q -c \"CREATE ROLE fleet LOGIN SUPERUSER PASSWORD 'fleet'\""
    su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='fleet'\" | grep -q 1 || psql -q -c \"CREATE DATABASE fleet OWNER fleet\""
  else
    say "PostgreSQL is not installed (apt-get install -y postgresql), or set FLEET_POSTGRES to a connection string"; exit 1
  fi
fi

# --- build -------------------------------------------------------------------------------------
say "building Fleet.Server (Release)"
dotnet build src/Fleet.Server -c Release -nologo -v q >/dev/null
dll="$root/src/Fleet.Server/bin/Release/net10.0/Fleet.Server.dll"

# --- nodes -------------------------------------------------------------------------------------
# With no Fleet:Security:ApiKeys configured, the fleet's first start generates an admin key into this file.
key_file="$work/admin.key"
seeds=()
for i in 0 1 2; do seeds+=("--Fleet:Cluster:SeedNodes:$i" "akka.tcp://fleet@127.0.0.1:${akka_ports[$i]}"); done
for i in 0 1 2; do
  dotnet "$dll" --urls "http://127.0.0.1:${http_ports[$i]}" --Fleet:Admin:Urls "http://127.0.0.1:${admin_ports[$i]}" \
    --config "$root/cluster-config/three-node.json" \
    --Fleet:Cluster:Port "${akka_ports[$i]}" --Fleet:Persistence:ConnectionString "$pg_conn" "${seeds[@]}" \
    --Fleet:Security:GeneratedKeyFile "$key_file" \
    > "$work/node$((i + 1)).log" 2>&1 &
  pids+=($!)
  say "node$((i + 1)): routers ${http_ports[$i]}, admin ${admin_ports[$i]}, akka ${akka_ports[$i]}, pid $!"
done
for i in 0 1 2; do
  until curl -fsS "http://127.0.0.1:${http_ports[$i]}/readyz" >/dev/null 2>&1; do
    kill -0 "${pids[$i]}" 2>/dev/null || { say "node$((i + 1)) exited; see $work/node$((i + 1)).log"; exit 1; }
    sleep 0.5
  done
done
auth=(); [ -r "$key_file" ] && auth=(-H "Authorization: Bearer $(cat "$key_file")")
say "cluster: $(curl -fsS "${auth[@]}" "http://127.0.0.1:${admin_ports[0]}/api/v1/node" | grep -o '"members":\[[^]]*\]')"
say "admin API key: $key_file (send it as 'Authorization: Bearer <key>')"

# --- nginx (deploy/nginx/fleet.conf with loopback ports) ----------------------------------------
sed -e "s/^\(\s*\)server node1:8080/\1server 127.0.0.1:${http_ports[0]}/" \
    -e "s/^\(\s*\)server node2:8080/\1server 127.0.0.1:${http_ports[1]}/" \
    -e "s/^\(\s*\)server node3:8080/\1server 127.0.0.1:${http_ports[2]}/" \
    -e "s/^\(\s*\)server node1:9090/\1server 127.0.0.1:${admin_ports[0]}/" \
    -e "s/^\(\s*\)server node2:9090/\1server 127.0.0.1:${admin_ports[1]}/" \
    -e "s/^\(\s*\)server node3:9090/\1server 127.0.0.1:${admin_ports[2]}/" \
    -e "s/^\(\s*\)listen 8080;/\1listen 127.0.0.1:$lb_port;/" \
    -e "s/^\(\s*\)listen 9090;/\1listen 127.0.0.1:$admin_lb_port;/" \
    -e "s|/var/log/nginx/|$work/nginx/|" deploy/nginx/fleet.conf > "$work/nginx/fleet.conf"
cat > "$work/nginx/nginx.conf" <<NGINX
daemon off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 16384; }
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $work/nginx/fleet.conf;
}
NGINX
nginx -e "$work/nginx/error.log" -p "$work/nginx/" -c "$work/nginx/nginx.conf" &
pids+=($!)
say "nginx (pid $!): routers ws://127.0.0.1:$lb_port/ws/wifidogx, admin http://127.0.0.1:$admin_lb_port/api/v1/devices"
say "simulator: dotnet src/Fleet.Simulator/bin/Release/net10.0/Fleet.Simulator.dll --url ws://127.0.0.1:$lb_port/ws/wifidogx --devices 100"
say "Ctrl-C stops the cluster"
wait
