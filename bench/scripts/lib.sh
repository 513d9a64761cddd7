#!/usr/bin/env bash
# Shared helpers for the bench scripts. Everything runs on 127.0.0.0/8 and is bounded in time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/bench/results}"
mkdir -p "$OUT"
CLK_TCK="$(getconf CLK_TCK)"
SIM_DLL="$ROOT/src/Fleet.Simulator/bin/Release/net10.0/Fleet.Simulator.dll"
ECHO_DLL="$ROOT/bench/EchoServer/bin/Release/net10.0/EchoServer.dll"
# NODE_DLL may name another build of the node (e.g. a worktree of an earlier commit) measured with these same load tools.
# By default the node is measured as it is deployed (deploy/Dockerfile): the plain Release build. R2R=1 measures it
# published with ReadyToRun images instead (docs/PERFORMANCE.md, "Where it stands now", the ReadyToRun item: no faster
# through a connect storm, more CPU per heartbeat).
R2R="${R2R:-0}"
if [[ "$R2R" == 1 ]]; then NODE_DLL="${NODE_DLL:-$ROOT/src/Fleet.Server/bin/publish-r2r/Fleet.Server.dll}"
else NODE_DLL="${NODE_DLL:-$ROOT/src/Fleet.Server/bin/Release/net10.0/Fleet.Server.dll}"; fi
LOAD_DLL="$ROOT/bench/CommandLoad/bin/Release/net10.0/CommandLoad.dll"
JOURNAL_DLL="$ROOT/bench/JournalBench/bin/Release/net10.0/JournalBench.dll"
PORT="${PORT:-8080}"
# Same GC for ours and the bare server: workstation, non-concurrent unless told otherwise.
export DOTNET_gcServer="${GC_SERVER:-0}"
export DOTNET_gcConcurrent="${GC_CONCURRENT:-0}"
# Every node a bench starts accepts this admin API key (the load tools and curl send it).
export FLEET_API_KEY="${FLEET_API_KEY:-bench-admin-key-00000000000000}"
export Fleet__Security__ApiKeys__0__Name=bench Fleet__Security__ApiKeys__0__Role=admin
export Fleet__Security__ApiKeys__0__Key="$FLEET_API_KEY"
AUTH="Authorization: Bearer $FLEET_API_KEY"
PIDS=()
SIM_PIDS=(); SIM_JSONS=()

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

build_all() {
  log "building (Release): simulator, echo server, load tools${1:+, node}"
  dotnet build -c Release "$ROOT/src/Fleet.Simulator" -v q -nologo >/dev/null
  dotnet build -c Release "$ROOT/bench/EchoServer" -v q -nologo >/dev/null
  dotnet build -c Release "$ROOT/bench/CommandLoad" -v q -nologo >/dev/null
  dotnet build -c Release "$ROOT/bench/JournalBench" -v q -nologo >/dev/null
  if [[ "${1:-}" == node ]]; then
    dotnet build -c Release "$ROOT/src/Fleet.Server" -v q -nologo >/dev/null
    if [[ "$R2R" == 1 ]]; then
      dotnet publish -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
        -o "$ROOT/src/Fleet.Server/bin/publish-r2r" "$ROOT/src/Fleet.Server" -v q -nologo >/dev/null
    fi
  fi
}

cleanup() {
  for p in "${PIDS[@]:-}"; do
    [[ -n "$p" ]] && kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [[ -n "$p" ]] && wait "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process, in seconds (fractional)
cpu_s() { awk -v t="$CLK_TCK" '{ print ($14 + $15) / t }' "/proc/$1/stat"; }
threads() { awk '/^Threads:/ {print $2}' "/proc/$1/status"; }

# start_server echo|node [db-connection-string] → sets SERVER_PID
start_server() {
  local kind="$1"
  if [[ "$kind" == echo ]]; then
    dotnet "$ECHO_DLL" --urls "http://127.0.0.1:$PORT" >"$OUT/server-echo.log" 2>&1 &
  else
    [[ -f "$NODE_DLL" ]] || { log "no node build at $NODE_DLL"; return 1; }
    local cs="${2:-Data Source=/tmp/fleet-bench-$$.db}"
    env Fleet__Persistence__ConnectionString="$cs" ${NODE_ENV:-} \
      dotnet "$NODE_DLL" --urls "http://127.0.0.1:$PORT" >"$OUT/server-node.log" 2>&1 &
  fi
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local ready="/stats"; [[ "$kind" == node ]] && ready="/healthz"
  for _ in $(seq 1 300); do
    if curl -sf "http://127.0.0.1:$PORT$ready" >/dev/null 2>&1; then
      [[ "$kind" == node ]] && for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
      log "$kind server up (pid $SERVER_PID, rss $(rss_kb "$SERVER_PID") kB)"; return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || { log "$kind server died"; tail -20 "$OUT/server-$kind.log" >&2; return 1; }
    sleep 0.1
  done
  log "$kind server not ready in 30 s"; return 1
}

# Full GC in the server if it offers one (echo: POST /debug/gc; node: same path if the lead adds it),
# else just let it settle. Prints RSS in kB.
# The same way for both servers: dotnet-gcdump (installed as a global dotnet tool) induces a full
# blocking GC of the target and, as a bonus, leaves a heap dump ($OUT/*.gcdump) to read by type.
GCDUMP="${GCDUMP:-$HOME/.dotnet/tools/dotnet-gcdump}"
settled_rss() {
  sleep 2
  if [[ -x "$GCDUMP" ]]; then
    "$GCDUMP" collect -p "$SERVER_PID" -o "$OUT/${1:-heap}.gcdump" >/dev/null 2>&1 || log "gcdump failed"
  elif ! curl -sf -XPOST "http://127.0.0.1:$PORT/debug/gc" >/dev/null 2>&1; then
    log "no dotnet-gcdump and no /debug/gc: RSS read without a forced GC"; sleep 3
  fi
  sleep 1
  rss_kb "$SERVER_PID"
}

# start_sims DEVICES HB_SECONDS RAMP DURATION WARMUP TAG [extra simulator args…] → SIM_PIDS, SIM_JSONS
# SIM_ARGS (env) goes to every simulator too, e.g. SIM_ARGS="--firmware 9" for routers of the current firmware.
# Splits the fleet over processes of at most SIM_PER_PROC devices (each process has 20,000 fds too),
# each on its own 127.0.0.x source addresses and its own device index range.
SIM_PER_PROC="${SIM_PER_PROC:-10000}"
start_sims() {
  local devices=$1 hb=$2 ramp=$3 duration=$4 warmup=$5 tag=$6; shift 6
  local procs=$(( (devices + SIM_PER_PROC - 1) / SIM_PER_PROC ))
  local per=$(( (devices + procs - 1) / procs ))
  local per_ramp; per_ramp=$(awk -v r="$ramp" -v p="$procs" 'BEGIN{print r/p}')
  SIM_PIDS=(); SIM_JSONS=()
  for i in $(seq 0 $((procs - 1))); do
    local n=$per; (( (i + 1) * per > devices )) && n=$(( devices - i * per ))
    local json="$OUT/sim-$tag-$i.json"; rm -f "$json"
    dotnet "$SIM_DLL" --url "ws://127.0.0.1:$PORT/ws/wifidogx" --devices "$n" --first-index $(( i * per )) \
      --heartbeat-seconds "$hb" --ramp "$per_ramp" --duration "$duration" --warmup "$warmup" \
      --source-addresses 1 --source-base $(( i + 2 )) --stats-seconds 5 --stats-json "$json" ${SIM_ARGS:-} "$@" \
      >"$OUT/sim-$tag-$i.log" 2>&1 &
    SIM_PIDS+=("$!"); SIM_JSONS+=("$json"); PIDS+=("$!")
  done
}

wait_sims() { for p in "${SIM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done; }

# sum of a numeric field over the simulator JSON files
sim_sum() { local f=$1; shift; local t=0; for j in "${SIM_JSONS[@]}"; do v=$(jq -r ".$f" "$j"); t=$(awk -v a="$t" -v b="$v" 'BEGIN{print a+b}'); done; echo "$t"; }
sim_max() { local f=$1; local m=0; for j in "${SIM_JSONS[@]}"; do v=$(jq -r ".$f" "$j"); m=$(awk -v a="$m" -v b="$v" 'BEGIN{print (b>a)?b:a}'); done; echo "$m"; }

# total connected devices right now, from the simulators' progress lines
sims_connected() {
  local t=0
  for i in $(seq 0 $(( ${#SIM_PIDS[@]} - 1 ))); do
    local c; c=$(grep -o 'connected=[0-9]*' "$OUT/sim-$1-$i.log" 2>/dev/null | tail -1 | cut -d= -f2)
    t=$(( t + ${c:-0} ))
  done
  echo "$t"
}

# Frames the simulated routers' readers lost and connections they wedged (they read like the firmware:
# one frame per read, < 1,024 bytes; FIRMWARE_FACTS.md A), summed over the current simulators: from their
# --stats-json once written, else from the last progress line of their log.
sim_losses() {
  local lost=0 wedged=0 l w j
  for j in "${SIM_JSONS[@]}"; do
    if [[ -s "$j" ]]; then l=$(jq -r '.lost_frames // 0' "$j"); w=$(jq -r '.wedged // 0' "$j")
    else
      l=$(grep -o 'lost=[0-9]*' "${j%.json}.log" 2>/dev/null | tail -1 | cut -d= -f2)
      w=$(grep -o 'wedged=[0-9]*' "${j%.json}.log" 2>/dev/null | tail -1 | cut -d= -f2)
    fi
    lost=$(( lost + ${l:-0} )); wedged=$(( wedged + ${w:-0} ))
  done
  echo "\"sim_lost_frames\":$lost,\"sim_wedged\":$wedged"
}

# one result line (JSON) to stdout and results.jsonl, stamped with the time and the 1-min load average
# (and, when simulators ran, what their routers lost)
result() {
  local line="${1%\}}"
  (( ${#SIM_JSONS[@]} > 0 )) && line="$line,$(sim_losses)"
  echo "$line,\"at\":\"$(date -u +%FT%TZ)\",\"loadavg_1m\":$(cut -d' ' -f1 /proc/loadavg)}" | tee -a "$OUT/results.jsonl"
}
