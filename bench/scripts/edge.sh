#!/usr/bin/env bash
# The edge agent's footprint (issue 15; docs/EDGE.md, "Footprint"): the published Fleet.Edge against a stand-in controller
# (bench/EdgeController) that authorises CLIENTS clients and gives PASSES temporary passes, then only answers heartbeats.
# The agent enforces them with real nftables in a network namespace (FIREWALL=memory: no nft, no root needed). Reports per
# build: RSS (as read, no collection forced: the agent has no hook for one, and the GC's heap limit keeps it honest),
# peak RSS, its parts (anonymous, file-backed, shared = the JIT's double-mapped code), threads, the CPU of start-up and of
# an IDLE-second idle window (the agent's own and its nft children's), wake-ups (context switches) in that window, and the
# package size.
#   bench/scripts/edge.sh               env: TARGETS ("linux-x64 linux-x64-aot") CLIENTS (300) PASSES (20) HB (30) IDLE (60)
#                                            FIREWALL (nftables) BUILD (1: deploy/openwrt/build.sh first) EXTRA ("": more
#                                            builds to measure, as name=dir, e.g. before=/tmp/edge-before)
source "$(dirname "$0")/lib.sh"
TARGETS="${TARGETS:-linux-x64 linux-x64-aot}"
CLIENTS="${CLIENTS:-300}"; PASSES="${PASSES:-20}"; HB="${HB:-30}"; IDLE="${IDLE:-60}"; FIREWALL="${FIREWALL:-nftables}"
EDGE_OUT="${EDGE_OUT:-$ROOT/out/edge}"
CTL_DLL="$ROOT/bench/EdgeController/bin/Release/net10.0/EdgeController.dll"
CTL_PORT="${CTL_PORT:-8090}"
NS=fleet-bench-edge
WORK=$(mktemp -d /tmp/fleet-bench-edge.XXXXXX)

if [[ "${BUILD:-1}" == 1 ]]; then
  log "building: stand-in controller, agent ($TARGETS)"
  dotnet build -c Release "$ROOT/bench/EdgeController" -v q -nologo >/dev/null
  # shellcheck disable=SC2086
  "$ROOT/deploy/openwrt/build.sh" $TARGETS >/dev/null
fi

in_ns=()
if [[ "$FIREWALL" == nftables ]]; then
  ip netns del "$NS" 2>/dev/null || true
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  in_ns=(ip netns exec "$NS")
fi
edge_cleanup() { cleanup; [[ ${#in_ns[@]} -gt 0 ]] && ip netns del "$NS" 2>/dev/null; [[ "${KEEP:-0}" == 1 ]] && log "logs kept in $WORK" || rm -rf "$WORK"; }
trap edge_cleanup EXIT

# context switches of each of the agent's threads, one "tid count" line each (each switch is a thread waking up)
switches() { for s in /proc/"$1"/task/*/status; do awk -v t="$(basename "$(dirname "$s")")" '/ctxt_switches/ {n+=$2} END {print t, n+0}' "$s" 2>/dev/null; done; }
# wake-ups between two `switches` samples: per thread, the difference (a thread born meanwhile counts from 0; one that
# ended meanwhile is not counted, so this is a lower bound)
woken() { awk 'NR==FNR {a[$1]=$2; next} {d+=$2-($1 in a ? a[$1] : 0)} END {print d+0}' "$1" "$2"; }
# utime+stime of the agent and of its waited-for children (nft), in seconds
cpu_all() { awk -v t="$CLK_TCK" '{ print ($14 + $15 + $16 + $17) / t }' "/proc/$1/stat"; }
field() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
nft_elements() { "${in_ns[@]}" nft -j list set inet fleet allow_0 2>/dev/null | jq '[.nftables[].set.elem? // empty | .[]] | length' 2>/dev/null || echo 0; }

measure() { # measure <name> <dir>
  local name=$1 dir=$2 bin="$2/Fleet.Edge"
  [[ -x "$bin" ]] || { log "$name: no binary at $bin"; return 1; }
  local state="$WORK/$name-state"; rm -rf "$state"
  cat >"$WORK/$name.json" <<EOF
{ "controller_url": "ws://127.0.0.1:$CTL_PORT/ws/wifidogx", "device_id": "bench-router",
  "device_info": { "ap_device_id": "bench-router", "ap_mac_address": "8c:de:f9:5e:f7:06", "location_id": "lab" },
  "gateways": [ { "gw_id": "gw-1", "gw_interface": "br-lan", "gw_address_v4": "10.231.1.1", "auth_mode": 1 } ],
  "heartbeat_interval_seconds": $HB, "firewall": { "backend": "$FIREWALL", "table": "fleet" },
  "state_directory": "$state", "release_file": "/etc/os-release" }
EOF
  "${in_ns[@]}" dotnet "$CTL_DLL" --urls "http://127.0.0.1:$CTL_PORT" --Clients "$CLIENTS" --Passes "$PASSES" >"$WORK/$name-ctl.log" 2>&1 &
  local ctl=$!; PIDS+=("$ctl")
  local stats=("${in_ns[@]}" curl -sf "http://127.0.0.1:$CTL_PORT/stats")
  for _ in $(seq 1 100); do "${stats[@]}" >/dev/null 2>&1 && break; sleep 0.1; done
  [[ "$FIREWALL" == nftables ]] && "${in_ns[@]}" nft delete table inet fleet 2>/dev/null || true
  local t0; t0=$(date +%s.%N)
  "${in_ns[@]}" "$bin" --config "$WORK/$name.json" >"$WORK/$name-agent.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  # Started: every client and pass applied (in the nft set, or for the memory backend, in the state file).
  local want=$((CLIENTS + PASSES)) have=0
  for _ in $(seq 1 600); do
    if [[ "$FIREWALL" == nftables ]]; then have=$(nft_elements)
    else have=$(jq '(.clients | length) + (.passes | length)' "$state/clients.json" 2>/dev/null || echo 0); fi
    (( have >= want )) && break
    kill -0 "$pid" 2>/dev/null || { log "$name: the agent exited"; tail -20 "$WORK/$name-agent.log" >&2; return 1; }
    sleep 0.1
  done
  local ready_s; ready_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  (( have >= want )) || { log "$name: only $have of $want applied"; return 1; }
  # Let start-up settle (a heartbeat goes out within HB), then the idle window.
  local hb0; hb0=$("${stats[@]}" | jq .heartbeats)
  for _ in $(seq 1 $((HB * 10 + 50))); do (( $("${stats[@]}" | jq .heartbeats) > hb0 )) && break; sleep 0.1; done
  local start_cpu c0 c1 rss hwm anon file shmem thr
  start_cpu=$(cpu_all "$pid"); c0=$start_cpu; switches "$pid" >"$WORK/$name-w0"; hb0=$("${stats[@]}" | jq .heartbeats)
  sleep "$IDLE"   # the measured window: the agent left alone, as on a router between logins
  c1=$(cpu_all "$pid"); switches "$pid" >"$WORK/$name-w1"
  local hbs=$(( $("${stats[@]}" | jq .heartbeats) - hb0 ))
  rss=$(field "$pid" VmRSS); hwm=$(field "$pid" VmHWM); anon=$(field "$pid" RssAnon); file=$(field "$pid" RssFile)
  shmem=$(field "$pid" RssShmem); thr=$(field "$pid" Threads)
  local bytes; bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  kill "$ctl" 2>/dev/null; wait "$ctl" 2>/dev/null || true
  local idle_cpu_ms wakeups
  idle_cpu_ms=$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.0f", (b-a)*1000}')
  wakeups=$(awk -v n="$(woken "$WORK/$name-w0" "$WORK/$name-w1")" -v s="$IDLE" 'BEGIN{printf "%.1f", n/s}')
  printf '%-16s rss %6.1f MB (peak %5.1f; anon %5.1f, file %5.1f, shared %5.1f)  threads %2d  start %4.1f s, cpu %5.2f s  idle %ss: cpu %s ms, %s wake-ups/s, %d heartbeats  package %5.1f MiB\n' \
    "$name" "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$(awk -v k="$hwm" 'BEGIN{print k/1024}')" \
    "$(awk -v k="$anon" 'BEGIN{print k/1024}')" "$(awk -v k="$file" 'BEGIN{print k/1024}')" "$(awk -v k="$shmem" 'BEGIN{print k/1024}')" \
    "$thr" "$ready_s" "$start_cpu" "$IDLE" "$idle_cpu_ms" "$wakeups" "$hbs" "$(awk -v b="$bytes" 'BEGIN{print b/1048576}')"
  result "$(jq -cn --arg b "edge" --arg n "$name" --arg fw "$FIREWALL" --argjson c "$CLIENTS" --argjson p "$PASSES" \
    --argjson rss "$rss" --argjson hwm "$hwm" --argjson anon "$anon" --argjson file "$file" --argjson shm "$shmem" \
    --argjson thr "$thr" --argjson ready "$ready_s" --argjson scpu "$start_cpu" --argjson idle "$IDLE" \
    --argjson icpu "$idle_cpu_ms" --argjson wk "$wakeups" --argjson hbs "$hbs" --argjson bytes "$bytes" \
    '{bench:$b, build:$n, clients:$c, passes:$p, firewall:$fw, rss_kb:$rss, peak_rss_kb:$hwm, anon_kb:$anon, file_kb:$file,
      shmem_kb:$shm, threads:$thr, ready_s:$ready, start_cpu_s:$scpu, idle_s:$idle, idle_cpu_ms:$icpu, wakeups_per_s:$wk,
      idle_heartbeats:$hbs, package_bytes:$bytes}')" >/dev/null
}

log "CLIENTS=$CLIENTS PASSES=$PASSES HB=${HB}s IDLE=${IDLE}s FIREWALL=$FIREWALL"
for t in $TARGETS; do measure "$t" "$EDGE_OUT/$t"; done
for e in ${EXTRA:-}; do measure "${e%%=*}" "${e#*=}"; done
