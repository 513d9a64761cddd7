#!/usr/bin/env bash
# Every benchmark in one run (a few minutes): bare echo server first, then the node if it is built.
#   bench/scripts/run-all.sh          results: bench/results/results.jsonl
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"
build_all node || log "node did not build: node runs will be skipped"
export BUILD=0
"$here/capacity.sh" echo
"$here/throughput.sh" echo
"$here/journal.sh" bare
if [[ -f "$NODE_DLL" ]]; then
  "$here/capacity.sh" node
  "$here/throughput.sh" node
  "$here/commands.sh"
  "$here/journal.sh" node
fi
