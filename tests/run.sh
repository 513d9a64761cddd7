#!/usr/bin/env bash
# Runs every test of Fleet: installs what the tests need (nftables, iproute2, nginx, PostgreSQL) when
# missing, starts what they need, runs every test project, cleans up, and ends with one line
# "N passed, M failed" (totals over all test projects, from their TRX results). Exit code 0 only if
# everything was built and every test passed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
results="$root/.test-results"
rm -rf "$results"; mkdir -p "$results"

say() { printf '[tests] %s\n' "$*" >&2; }

# --- what the tests need -----------------------------------------------------------------------
need=()
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ping >/dev/null 2>&1 || need+=(iputils-ping)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium) # the dashboard's browser tests (Playwright drives it)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null \
      || { say "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }
    # Debian starts nginx and PostgreSQL on install; the tests start their own instances.
    systemctl stop nginx >/dev/null 2>&1 || nginx -s stop >/dev/null 2>&1 || true
  else
    say "missing ${need[*]} and not root: the tests that need them will fail"
  fi
fi

# --- services ----------------------------------------------------------------------------------
started_pg=""
cleanup() {
  # Cluster tests kill their nodes and nginx themselves; should a test host die first, its children
  # are found by the pid files it left (checked to still be that program before they are killed).
  for f in "${TMPDIR:-/tmp}"/fleet-cluster-tests/*/node*.pid "${TMPDIR:-/tmp}"/fleet-cluster-tests/*/nginx/nginx.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    if [ -n "$pid" ] && grep -qa 'Fleet.Server.dll' "/proc/$pid/cmdline" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    if [ -n "$pid" ] && grep -qa 'nginx' "/proc/$pid/cmdline" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
    rm -f "$f"
  done
  if [ -n "$started_pg" ]; then pg_ctlcluster "$started_pg" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
# Logs of cluster test runs older than a day go (a failed run's logs stay for a day to read).
find "${TMPDIR:-/tmp}/fleet-cluster-tests" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} + 2>/dev/null || true

if command -v pg_lsclusters >/dev/null 2>&1; then
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2" "$4}')
  if [ -n "$cluster" ]; then
    set -- $cluster
    if [ "$3" != "online" ]; then
      pg_ctlcluster "$1" "$2" start && started_pg="$1 $2" || say "PostgreSQL did not start"
    fi
    port=$(pg_conftool "$1" "$2" show port 2>/dev/null | awk -F= '{gsub(/[ \x27]/,"",$2); print $2}')
    port=${port:-5432}
    # A role and database of the tests' own; the password is only for loopback.
    su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='fleet'\" | grep -q 1 || psql -q -p $port -c \"CREATE ROLE fleet LOGIN SUPERUSER PASSWORD 'fleet'\"" >/dev/null 2>&1 || true
    export FLEET_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=fleet;Password=fleet;Database=postgres"
  fi
fi

# --- build and run -----------------------------------------------------------------------------
say "building"
if ! dotnet build Fleet.sln -c Release -nologo -v q > "$results/build.log" 2>&1; then
  tail -40 "$results/build.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

# The edge agent as it ships (deploy/openwrt/build.sh: every router target, with its size): the Edge tests run the
# two that run here (linux-x64 trimmed, linux-x64-aot) as child processes (PublishedAgentTests).
say "publishing the edge agent"
if ! deploy/openwrt/build.sh > "$results/edge-build.log" 2>&1; then
  tail -40 "$results/edge-build.log" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
cat "$root/out/edge/sizes.tsv" >&2

# The dashboard tests save screenshots of its pages under $FLEET_TEST_RESULTS/screenshots.
export FLEET_TEST_RESULTS="$results"
status=0
for proj in tests/*/*.Tests.csproj; do
  name=$(basename "$proj" .csproj)
  say "running $name"
  dotnet test "$proj" -c Release --no-build -nologo \
    --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" \
    --results-directory "$results" || status=1
done

passed=0; failed=0; trx=0
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  trx=$((trx + 1))
  counters=$(grep -o '<Counters [^>]*>' "$f" | head -1)
  count() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  p=$(count passed); f2=$(count failed); e=$(count error); t=$(count timeout); a=$(count aborted); x=$(count executed)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f2:-0} + ${e:-0} + ${t:-0} + ${a:-0}))
  # A project that ran no test at all is a failure (a broken filter or discovery), never a silent pass.
  if [ "${x:-0}" -eq 0 ]; then say "$(basename "$f" .trx) executed no test"; failed=$((failed + 1)); fi
done
expected=$(ls tests/*/*.Tests.csproj | wc -l)
if [ "$trx" -lt "$expected" ]; then
  say "only $trx of $expected test projects produced results"
  failed=$((failed + expected - trx))
fi
# The closing line and the exit code always agree: a run that failed (a crashed test host, a non-zero
# dotnet test) with no failed test in its results counts as one failure.
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  say "a test run failed without a failed test in its results"
  failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
