#!/usr/bin/env bash
# Publishes Fleet.Edge for routers, each target into out/edge/<target>/, and prints the size of each.
#   deploy/openwrt/build.sh                 every target below
#   deploy/openwrt/build.sh linux-x64 ...   only these
# Targets:
#   linux-musl-x64   OpenWrt x86_64 (musl): self-contained, fully trimmed, JIT. Built here, runs only on musl.
#   linux-arm64      glibc arm64 routers and boards: self-contained, fully trimmed, JIT. Built here, not run here.
#   linux-x64        the same build as linux-musl-x64 for glibc x86_64: what the tests and bench/scripts/edge.sh run
#                    here in place of the musl one (same IL, same trimming, same runtime settings).
#   linux-x64-aot    Native AOT for glibc x86_64 (ILCompiler is served here for linux-x64 and linux-arm64 hosts, not
#                    for musl): one native file, no JIT. Runs here.
#   linux-arm64-aot  Native AOT for glibc arm64: needs an arm64 cross linker and sysroot (clang, or aarch64-linux-gnu-gcc
#                    with libc6-dev-arm64-cross); skipped with a message when this machine has none.
# linux-musl-arm64 (most OpenWrt arm64 routers) is built the same way as linux-musl-x64 where the NuGet feed serves
# Microsoft.NETCore.App.Runtime.linux-musl-arm64; this machine's mirror does not (NU1101), so it is not a target here.
# Settings (trimming roots, GC, feature switches): src/Fleet.Edge/Fleet.Edge.csproj; figures: docs/EDGE.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out="${OUT:-$root/out/edge}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(linux-musl-x64 linux-arm64 linux-x64 linux-x64-aot linux-arm64-aot)

say() { printf '[edge-build] %s\n' "$*" >&2; }

publish() { # publish <target> <rid> [extra msbuild args…]
  local target=$1 rid=$2; shift 2
  rm -rf "${out:?}/$target"
  # The AOT compiler's incremental check misses a changed trimming descriptor (Hosting/AkkaRoots.xml): compile afresh.
  rm -rf "src/Fleet.Edge/obj/Release/net10.0/$rid/native"
  say "$target: dotnet publish -r $rid $*"
  dotnet publish src/Fleet.Edge -c Release -r "$rid" --self-contained -nologo -v q -o "$out/$target" "$@" \
    >"$out/$target.log" 2>&1 || { tail -30 "$out/$target.log" >&2; say "$target: publish failed (log: $out/$target.log)"; return 1; }
  # Debug symbols stay beside the package, not in it: a router has no debugger.
  mkdir -p "$out/$target.symbols"
  find "$out/$target" -maxdepth 1 \( -name '*.pdb' -o -name '*.dbg' \) -exec mv -t "$out/$target.symbols" {} +
}

size_line() { # size_line <target>
  local dir="$out/$1" bytes files gz
  bytes=$(find "$dir" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  files=$(find "$dir" -type f | wc -l)
  gz=$(tar -C "$dir" -czf - . | wc -c)
  printf '%s\t%d\t%.1f MiB\t%d files\t%.1f MiB as .tar.gz\n' "$1" "$bytes" "$(awk -v b="$bytes" 'BEGIN{print b/1048576}')" \
    "$files" "$(awk -v b="$gz" 'BEGIN{print b/1048576}')"
}

mkdir -p "$out"
built=(); failed=0
for target in "${targets[@]}"; do
  case "$target" in
    linux-musl-x64|linux-arm64|linux-x64) publish "$target" "$target" -p:PublishTrimmed=true && built+=("$target") || failed=1 ;;
    linux-x64-aot) publish "$target" linux-x64 -p:PublishAot=true && built+=("$target") || failed=1 ;;
    linux-arm64-aot)
      if command -v clang >/dev/null 2>&1 && [ -d /usr/aarch64-linux-gnu/lib ]; then
        publish "$target" linux-arm64 -p:PublishAot=true -p:SysRoot=/usr/aarch64-linux-gnu && built+=("$target") || failed=1
      else
        say "$target: skipped, no arm64 cross toolchain here (apt: clang lld libc6-dev-arm64-cross, then run again)"
      fi ;;
    *) say "unknown target $target"; exit 64 ;;
  esac
done

printf 'target\tbytes\tsize\tfiles\tcompressed\n' >"$out/sizes.tsv"
for target in "${built[@]}"; do size_line "$target" | tee -a "$out/sizes.tsv"; done
exit "$failed"
