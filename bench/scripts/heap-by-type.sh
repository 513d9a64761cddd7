#!/usr/bin/env bash
# Sums a gcdump's objects by type (dotnet-gcdump report lists them in size buckets), optionally
# per device and minus a baseline dump (e.g. the bare echo server holding as many devices).
#   bench/scripts/heap-by-type.sh ours.gcdump [top N] [devices] [baseline.gcdump]
set -euo pipefail
GCDUMP="${GCDUMP:-$HOME/.dotnet/tools/dotnet-gcdump}"
sum_by_type() { # the first column is the size of one object (an average within a size bucket)
  "$GCDUMP" report "$1" | awk '
    NR <= 2 { next }
    /^ +[0-9,]+ +[0-9,]+ +/ {
      b = $1; c = $2; gsub(",", "", b); gsub(",", "", c)
      $1 = ""; $2 = ""; t = $0; sub(/ \(Bytes > [0-9KM]+\)/, "", t); sub(/ +\[[^]]*\]$/, "", t); sub(/^ +/, "", t)
      bytes[t] += b * c; count[t] += c
    }
    END { for (t in bytes) printf "%d\t%d\t%s\n", bytes[t], count[t], t }'
}
top="${2:-25}"; n="${3:-0}"
"$GCDUMP" report "$1" | sed -n 1p
if [[ -n "${4:-}" ]]; then
  "$GCDUMP" report "$4" | sed -n 1p | sed 's/$/ (baseline)/'
  echo "  Δbytes  Δcount  Δ/device  type   (ours − baseline)"
  awk -F'\t' -v n="$n" 'NR == FNR { b[$3] = $1; c[$3] = $2; next }
    { d = $1 - b[$3]; printf "%d\t%d\t%s\t%s\n", d, $2 - c[$3], (n > 0 ? sprintf("%.0f B", d / n) : ""), $3 }' \
    <(sum_by_type "$4") <(sum_by_type "$1") | sort -t$'\t' -k1,1nr | head -n "$top"
else
  echo "   bytes   count  /device  type"
  sum_by_type "$1" | awk -F'\t' -v n="$n" '{ printf "%d\t%d\t%s\t%s\n", $1, $2, (n > 0 ? sprintf("%.0f B", $1 / n) : ""), $3 }' \
    | sort -t$'\t' -k1,1nr | head -n "$top"
fi
