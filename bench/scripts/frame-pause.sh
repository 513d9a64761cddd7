#!/usr/bin/env bash
# How long Fleet:WebSocket:FramePauseMs must be so that the real client's reader (one frame per read;
# docs/FIRMWARE.md) loses no frame. Load: seed-era routers (auth is not answered, so a burst of auth
# commands to one router goes out separated only by the pause) that are busy W ms after each frame they
# handle (--device-work-ms), heartbeating every HB s (replies and commands interleave), and bursts of
# BURST auth commands (distinct client MACs) posted to every router at once, ROUNDS rounds
# (bench/CommandLoad --burst). Each case runs a fresh node (Release, SQLite in a temp file,
# --Fleet:WebSocket:FramePauseMs P) and fresh simulators; the simulators' lost-frame counters are read
# at the end and set against the frames the node wrote (every frame to a seed router is unanswered).
#   1. loopback: every P in PAUSES × every W in WORKS
#   2. a network: the simulators in a network namespace, the node→router direction delayed as by
#      `tc qdisc add dev <veth> root netem delay D J [loss L%]` for each of NET_SETTINGS, at W=NET_WORK,
#      every P in NET_PAUSES. LINK=auto uses netem on a veth pair when the kernel has it, else (or with
#      LINK=tun) the same per-packet delay, jitter and loss in userspace: two TUN devices (one in the
#      namespace) joined by a small python3 forwarder, so TCP itself sees the delay (RTT, reordering,
#      retransmits) as it would behind netem.
#   bench/scripts/frame-pause.sh
#   env: PAUSES ("0 10 25 50 100 250") WORKS ("0 20 100") DEVICES (40) BURST (5) ROUNDS (10) GAP (0.5)
#        HB (3) NET (1) NET_PAUSES ("25 50 100 250 500") NET_WORK (20)
#        NET_SETTINGS ("delay 20ms 10ms;delay 50ms 40ms;delay 50ms 40ms loss 1%") LINK (auto|netem|tun) PORT (18480)
#        CLUSTER_PORT (4453) BUILD (1) OUT (bench/results)
# Prints one JSON line per case (also appended to $OUT/results.jsonl) and, at the end, the tables of
# lost frames per 1,000 frames written. Needs root for the network part (ip netns, tc / TUN), jq, curl.
PORT="${PORT:-18480}" # (before lib.sh, whose default is the other benches' 8080)
source "$(dirname "$0")/lib.sh"
# (a list set empty skips that part: PAUSES="" runs only the network)
PAUSES="${PAUSES-0 10 25 50 100 250}"; WORKS="${WORKS-0 20 100}"
DEVICES="${DEVICES:-40}"; BURST="${BURST:-5}"; ROUNDS="${ROUNDS:-10}"; GAP="${GAP:-0.5}"; HB="${HB:-3}"
NET="${NET:-1}"; NET_PAUSES="${NET_PAUSES-25 50 100 250 500}"; NET_WORK="${NET_WORK:-20}"
NET_SETTINGS="${NET_SETTINGS:-delay 20ms 10ms;delay 50ms 40ms;delay 50ms 40ms loss 1%}"; LINK="${LINK:-auto}"
CLUSTER_PORT="${CLUSTER_PORT:-4453}"
NS="fleet-fp-$$"; ROOT_IP=10.77.0.1; NS_IP=10.77.0.2
VETH_R="fpr$$"; VETH_S="fps$$"; TUN_R="fptr$$"; TUN_S="fpts$$"
RUN="$OUT/frame-pause-$(date -u +%Y%m%dT%H%M%SZ)"; mkdir -p "$RUN"
CASES="$RUN/cases.jsonl"; : >"$CASES"
NODE_PID=""; EMU_PID=""; NET_UP=""; LINK_KIND=""
BODY='{"type":"auth","token":"t","client_ip":"192.168.1.{octet}","client_mac":"{mac}","gw_id":"gw-1"}'

# Processes first (lib.sh's cleanup: everything in PIDS), then the namespace, links and qdiscs.
net_down() {
  [[ -n "$EMU_PID" ]] && { kill "$EMU_PID" 2>/dev/null || true; wait "$EMU_PID" 2>/dev/null || true; EMU_PID=""; }
  [[ -z "$NET_UP" ]] && return 0
  tc qdisc del dev "$VETH_R" root 2>/dev/null || true
  ip link del "$VETH_R" 2>/dev/null || true
  ip link del "$TUN_R" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  NET_UP=""
}
on_exit() {
  cleanup
  net_down
  rm -f "$RUN"/node-*.db*
}
trap on_exit EXIT
trap 'exit 130' INT TERM

if [[ "${BUILD:-1}" == 1 ]]; then
  log "building (Release): node, simulator, CommandLoad"
  for p in src/Fleet.Server src/Fleet.Simulator bench/CommandLoad; do dotnet build -c Release "$ROOT/$p" -v q -nologo >/dev/null; done
fi

# ---------------------------------------------------------------- node and simulators

# start_node P URLS → NODE_PID (ready: /readyz answers)
start_node() {
  local p=$1 urls=$2 db="$RUN/node-$1.db"
  rm -f "$db"*
  env Fleet__Persistence__ConnectionString="Data Source=$db" \
    dotnet "$NODE_DLL" --urls "$urls" --Fleet:WebSocket:FramePauseMs "$p" --Fleet:Cluster:Port "$CLUSTER_PORT" \
    >"$RUN/node.log" 2>&1 &
  NODE_PID=$!; PIDS+=("$NODE_PID")
  for _ in $(seq 1 300); do
    curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$NODE_PID" 2>/dev/null || { log "node died"; tail -20 "$RUN/node.log" >&2; return 1; }
    sleep 0.1
  done
  log "node not ready in 30 s"; return 1
}

# Ends a process this script started (TERM, then KILL after 15 s) and forgets it, so that the exit trap
# never signals a pid the system has since given to another process.
stop_pid() {
  local pid=$1 keep=() q
  if kill -TERM "$pid" 2>/dev/null; then
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  for q in "${PIDS[@]}"; do [[ "$q" != "$pid" ]] && keep+=("$q"); done
  PIDS=("${keep[@]}")
}

frames_out() { curl -sf -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/node" | jq -r '.connections.frames_out'; }

# run_case LINK_NAME P W SIM_URL [netns] → one JSON line in $CASES
run_case() {
  local link=$1 p=$2 w=$3 url=$4 ns=${5:-} tag
  tag="$(echo "$1" | tr -c 'a-zA-Z0-9\n' '-' | tr -s '-')-p$2-w$3"
  local urls="http://127.0.0.1:$PORT"; [[ -n "$ns" ]] && urls="$urls;http://$ROOT_IP:$PORT"
  start_node "$p" "$urls"
  local json="$RUN/sim-$tag.json" slog="$RUN/sim-$tag.log"; rm -f "$json"
  SIM_JSONS=("$json")
  ${ns:+ip netns exec "$ns"} dotnet "$SIM_DLL" --url "$url" --devices "$DEVICES" --device-prefix fp --firmware seed \
    --device-work-ms "$w" --heartbeat-seconds "$HB" --ramp 200 --duration 600 --stats-seconds 1 --stats-json "$json" \
    >"$slog" 2>&1 &
  local sim=$!; SIM_PIDS=("$sim"); PIDS+=("$sim")
  local c=0
  for _ in $(seq 1 300); do
    c=$(grep -o 'connected=[0-9]*' "$slog" 2>/dev/null | tail -1 | cut -d= -f2 || true)
    (( ${c:-0} >= DEVICES )) && break
    kill -0 "$sim" 2>/dev/null || break
    sleep 0.1
  done
  (( ${c:-0} >= DEVICES )) || { log "$tag: only ${c:-0} of $DEVICES routers connected"; tail -5 "$slog" >&2; }
  # One round first, not counted: the fresh node's first commands (JIT, first writes) take CPU the routers'
  # readers share on this machine. Then the counters are read while nothing but heartbeats moves: the
  # routers' progress line (every second) and the node's frames written.
  local load="$RUN/load-$tag.json"
  dotnet "$LOAD_DLL" --base "http://127.0.0.1:$PORT" --burst "$BURST" --rounds 1 \
    --devices "$DEVICES" --device-prefix fp --wait 30 --body "$BODY" --json "$RUN/warmup-$tag.json" >"$RUN/warmup-$tag.log" 2>&1
  sleep 1.5
  local lost0 written0
  lost0=$(grep -o 'lost=[0-9]*' "$slog" | tail -1 | cut -d= -f2 || true); lost0=${lost0:-0}
  written0=$(frames_out)
  dotnet "$LOAD_DLL" --base "http://127.0.0.1:$PORT" --burst "$BURST" --rounds "$ROUNDS" --gap "$GAP" \
    --devices "$DEVICES" --device-prefix fp --wait 30 --body "$BODY" --json "$load" >"$RUN/load-$tag.log" 2>&1
  # The last frames are written; they reach the routers within the link's delay and their busy time.
  sleep 1.5
  local written1; written1=$(frames_out)
  stop_pid "$sim"
  stop_pid "$NODE_PID"; NODE_PID=""
  rm -f "$RUN/node-$p.db"*
  local line
  line=$(jq -cn --arg link "$link" --argjson p "$p" --argjson w "$w" --argjson written "$((written1 - written0))" \
    --argjson lost0 "$lost0" --slurpfile s "$json" --slurpfile l "$load" --argjson devices "$DEVICES" --argjson hb "$HB" '
    ($s[0].lost_frames - $lost0) as $lost |
    {bench:"frame-pause", link:$link, pause_ms:$p, work_ms:$w, devices:$devices, heartbeat_s:$hb, burst:$l[0].burst,
     rounds:$l[0].rounds, frames_written:$written, lost:$lost,
     lost_per_1000:(if $written > 0 then ($lost * 1000 / $written * 100 | round / 100) else null end),
     warmup_lost:$lost0, auth_delivered:($l[0].command_status.delivered // 0),
     misreads:$s[0].misreads, wedged:$s[0].wedged, reconnects:($s[0].connects - $devices),
     burst_p50_ms:$l[0].burst_p50_ms, burst_p99_ms:$l[0].burst_p99_ms, burst_max_ms:$l[0].burst_max_ms,
     command_status:$l[0].command_status, http:$l[0].http}')
  echo "$line" >>"$CASES"
  result "$line"
  SIM_JSONS=(); SIM_PIDS=()
}

# ---------------------------------------------------------------- the network

# The netem-like forwarder between two TUN devices: packets read from the root side (node → router) are
# written to the namespace side after delay ± jitter (uniform, as netem without a distribution table;
# reordering allowed, as netem's tfifo) or dropped with the loss probability; the other direction passes at once.
EMULATOR='
import ctypes, fcntl, heapq, os, random, select, signal, struct, sys, time
tun_r, tun_s, ns, delay, jitter, loss = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
libc = ctypes.CDLL(None, use_errno=True)
def attach(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", name.encode(), 0x0001 | 0x1000))  # TUNSETIFF, IFF_TUN|IFF_NO_PI
    return fd
def setns(fd):
    if libc.setns(fd, 0x40000000) != 0: raise OSError(ctypes.get_errno(), "setns")  # CLONE_NEWNET
r = attach(tun_r)
home = os.open("/proc/self/ns/net", os.O_RDONLY)
setns(os.open("/run/netns/" + ns, os.O_RDONLY)); s = attach(tun_s); setns(home)
rnd = random.Random(7); heap = []; seq = 0; passed = dropped = 0
def done(*_):
    print(f"emulator: {passed} packets delayed, {dropped} dropped", file=sys.stderr); sys.exit(0)
signal.signal(signal.SIGTERM, done)
print("ready", flush=True)
while True:
    timeout = max(0.0, heap[0][0] - time.monotonic()) if heap else None
    ready, _, _ = select.select([r, s], [], [], timeout)
    now = time.monotonic()
    if r in ready:
        while True:
            try: pkt = os.read(r, 65536)
            except BlockingIOError: break
            if loss > 0 and rnd.random() < loss: dropped += 1; continue
            heapq.heappush(heap, (now + (delay + rnd.uniform(-jitter, jitter)) / 1000, seq, pkt)); seq += 1
    if s in ready:
        while True:
            try: pkt = os.read(s, 65536)
            except BlockingIOError: break
            os.write(r, pkt)
    while heap and heap[0][0] <= time.monotonic():
        os.write(s, heapq.heappop(heap)[2]); passed += 1
'

# ms of "20ms" / "1.5ms" / "1s"
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /ms$/) print v+0; else if (v ~ /us$/) print (v+0)/1000; else if (v ~ /s$/) print (v+0)*1000; else print v+0 }'; }

# Namespace and link, once. auto: netem on a veth pair if this kernel has it, else the TUN forwarder.
net_up() {
  ip netns add "$NS"; NET_UP=1
  ip -n "$NS" link set lo up
  if [[ "$LINK" != tun ]]; then
    ip link add "$VETH_R" type veth peer name "$VETH_S"
    ip link set "$VETH_S" netns "$NS"
    ip addr add "$ROOT_IP/24" dev "$VETH_R"; ip link set "$VETH_R" up
    ip -n "$NS" addr add "$NS_IP/24" dev "$VETH_S"; ip -n "$NS" link set "$VETH_S" up
    local err
    if err=$(tc qdisc add dev "$VETH_R" root netem delay 1ms 2>&1); then
      LINK_KIND=netem; log "link: veth pair with netem"; return 0
    fi
    log "netem not available in this kernel ($(uname -r)): 'tc qdisc add dev $VETH_R root netem delay 1ms' says: $err"
    [[ "$LINK" == netem ]] && return 1
    ip link del "$VETH_R"
  fi
  ip tuntap add dev "$TUN_R" mode tun
  ip -n "$NS" tuntap add dev "$TUN_S" mode tun
  ip addr add "$ROOT_IP" peer "$NS_IP" dev "$TUN_R"; ip link set "$TUN_R" up
  ip -n "$NS" addr add "$NS_IP" peer "$ROOT_IP" dev "$TUN_S"; ip -n "$NS" link set "$TUN_S" up
  LINK_KIND=tun; log "link: two TUN devices joined by a userspace netem-like forwarder (python3)"
}

# net_set "delay 20ms 10ms [loss 1%]"
net_set() {
  local words=($1) delay=0 jitter=0 loss=0 i
  for ((i = 0; i < ${#words[@]}; i++)); do
    case "${words[$i]}" in
      delay) delay=$(to_ms "${words[$((i + 1))]}")
             [[ "${words[$((i + 2))]:-}" =~ ^[0-9.]+(ms|us|s)?$ ]] && jitter=$(to_ms "${words[$((i + 2))]}") ;;
      loss) loss=$(awk -v v="${words[$((i + 1))]}" 'BEGIN{print (v+0)/100}') ;;
    esac
  done
  if [[ "$LINK_KIND" == netem ]]; then
    tc qdisc replace dev "$VETH_R" root netem $1
  else
    [[ -n "$EMU_PID" ]] && { kill "$EMU_PID"; wait "$EMU_PID" 2>/dev/null || true; }
    rm -f "$RUN/emulator.out" # (the previous one's "ready" must not be read)
    # Real-time priority where allowed: netem runs in the kernel, a starved forwarder would bunch packets.
    $(command -v chrt >/dev/null && chrt -f 10 true 2>/dev/null && echo chrt -f 10) python3 -c "$EMULATOR" "$TUN_R" "$TUN_S" "$NS" "$delay" "$jitter" "$loss" >"$RUN/emulator.out" 2>>"$RUN/emulator.log" &
    EMU_PID=$!
    for _ in $(seq 1 100); do grep -q ready "$RUN/emulator.out" 2>/dev/null && break; sleep 0.05; done
    grep -q ready "$RUN/emulator.out" || { log "emulator did not start"; cat "$RUN/emulator.log" >&2; return 1; }
  fi
  ip netns exec "$NS" ping -c 5 -i 0.2 -q "$ROOT_IP" | tail -1 | sed 's/^/  ping: /' >&2 || true
}

# ---------------------------------------------------------------- the sweep

log "results: $RUN (cases.jsonl); $DEVICES seed routers, bursts of $BURST auth × $ROUNDS rounds, heartbeat ${HB}s"
for w in $WORKS; do
  for p in $PAUSES; do
    log "loopback P=${p}ms W=${w}ms"
    run_case loopback "$p" "$w" "ws://127.0.0.1:$PORT/ws/wifidogx"
  done
done

if [[ "$NET" == 1 ]]; then
  if [[ $EUID -ne 0 ]]; then log "not root: the network part is skipped"
  else
    net_up
    IFS=';' read -ra settings <<<"$NET_SETTINGS"
    for setting in "${settings[@]}"; do
      setting="$(echo "$setting" | xargs)"
      log "link: $LINK_KIND $setting"
      net_set "$setting"
      for p in $NET_PAUSES; do
        log "$setting P=${p}ms W=${NET_WORK}ms"
        run_case "$LINK_KIND $setting" "$p" "$NET_WORK" "ws://$ROOT_IP:$PORT/ws/wifidogx" "$NS"
      done
    done
    net_down
  fi
fi

# ---------------------------------------------------------------- tables

# table LISTS_OF_P ROW_KEY FILTER: one row per value of ROW_KEY among the cases FILTER selects, one column per P;
# a cell: lost per 1,000 frames written (lost/written, and what the uncounted warm-up round lost)
table() {
  jq -rs --arg pauses "$1" --arg key "$2" "map(select($3))"' as $c
    | ($pauses | split(" ") | map(select(length > 0) | tonumber)) as $ps
    | ($c | map(.[$key]) | unique) as $rows
    | "| \($key) \\ P | " + ($ps | map("\(.) ms") | join(" | ")) + " |",
      "|---|" + ($ps | map("---:") | join("|")) + "|",
      ($rows[] as $r | "| \($r) | " + ($ps | map(. as $p | ($c | map(select(.pause_ms == $p and .[$key] == $r)) | first
        | if . == null then "" else "\(.lost_per_1000) (\(.lost)/\(.frames_written), warm-up \(.warmup_lost))" end)) | join(" | ")) + " |")' "$CASES"
}
{
  if jq -se 'any(.[]; .link == "loopback")' "$CASES" >/dev/null 2>&1; then
    echo
    echo "loopback: lost frames per 1,000 frames written (work_ms = router busy per frame, P = FramePauseMs):"
    table "$PAUSES" work_ms '.link == "loopback"'
  fi
  if jq -se 'any(.[]; .link != "loopback")' "$CASES" >/dev/null 2>&1; then
    echo
    echo "over the link, W = $NET_WORK ms: lost frames per 1,000 frames written:"
    table "$NET_PAUSES" link '.link != "loopback"'
  fi
  echo
  echo "a router's burst of $BURST one-way commands, done after (ms, p50 / max over routers and rounds):"
  jq -rs '.[] | "  \(.link) P=\(.pause_ms) W=\(.work_ms): \(.burst_p50_ms) / \(.burst_max_ms)"' "$CASES"
} | tee "$RUN/tables.md"
