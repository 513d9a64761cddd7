#!/usr/bin/env bash
# The chaos run (issue 11; docs/CLUSTER.md, "Chaos run"), long version: tests/Fleet.Cluster.Tests' ChaosTests for
# SECONDS s of chaos (default 600) — three real nodes on PostgreSQL behind nginx, the simulator's routers of all three
# dialects reading like the real client, an open-loop operator load of every command type through nginx; every
# 20–60 s a random node SIGKILLed or SIGTERMed and restarted, every 10–25 s a third of the routers dropped — then the
# invariant checker's figures and violations. The test command (tests/run.sh) runs the same test for 120 s.
#   bench/scripts/chaos.sh
#   env: SECONDS_OF_CHAOS (600) DEVICES (30) RATE (3 commands/s) SEED (random) BUILD (1)
#        FLEET_TEST_POSTGRES (default: the local PostgreSQL as tests/run.sh sets it up) OUT (bench/results)
# The report goes to stdout and $OUT/chaos-<time>.txt (with the work directory holding the nodes' logs, the nginx
# logs and the device-side log device-log.jsonl). Exits 1 when the checker found a violation (or the run failed).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${OUT:-$ROOT/bench/results}"; mkdir -p "$OUT"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
export FLEET_CHAOS_SECONDS="${SECONDS_OF_CHAOS:-600}"
export FLEET_CHAOS_DEVICES="${DEVICES:-30}"
export FLEET_CHAOS_RATE="${RATE:-3}"
[[ -n "${SEED:-}" ]] && export FLEET_CHAOS_SEED="$SEED"
export FLEET_TEST_POSTGRES="${FLEET_TEST_POSTGRES:-Host=127.0.0.1;Port=5432;Username=fleet;Password=fleet;Database=postgres}"
REPORT="$OUT/chaos-$(date -u +%Y%m%dT%H%M%SZ).txt"
export FLEET_CHAOS_REPORT="$REPORT"
if [[ "${BUILD:-1}" == 1 ]]; then
  log "building (Release): tests/Fleet.Cluster.Tests (and the node, the simulator)"
  nice dotnet build "$ROOT/tests/Fleet.Cluster.Tests" -c Release -nologo -v q >/dev/null
fi
log "chaos run: ${FLEET_CHAOS_SECONDS} s, ${FLEET_CHAOS_DEVICES} routers, ${FLEET_CHAOS_RATE} commands/s"
rc=0
dotnet test "$ROOT/tests/Fleet.Cluster.Tests" -c Release --no-build --filter "FullyQualifiedName~Chaos.ChaosTests" \
  --logger "console;verbosity=normal" >"$REPORT.log" 2>&1 || rc=$?
if [[ -s "$REPORT" ]]; then
  cat "$REPORT"
else
  log "no report was written (the run failed before the check): see $REPORT.log"
  tail -40 "$REPORT.log" >&2
  exit 1
fi
log "report: $REPORT; test output: $REPORT.log"
exit "$rc"
