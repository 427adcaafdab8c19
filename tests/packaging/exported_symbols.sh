#!/usr/bin/env bash
# The shared library exports its public API and nothing else: every exported
# symbol starts with kle_ and none is an internal kle_<module>__<name>.
set -euo pipefail
lib="$1"
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  echo "SKIP: the sanitizer runtime adds its own symbols; checked in the non-sanitized build"
  exit 77
fi
[ -f "$lib" ] || { echo "FAIL: no library at $lib"; exit 1; }
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
[ "$soname" = "libkle.so.${KLE_SOVERSION}" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sort)
count=$(printf '%s\n' "$exported" | grep -c . || true)
bad=$(printf '%s\n' "$exported" | grep -v '^kle_' | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' || true)
internal=$(printf '%s\n' "$exported" | grep '__' | grep '^kle_' || true)
if [ -n "$bad" ] || [ -n "$internal" ]; then
  echo "FAIL: symbols exported beyond the public API:"
  printf '  %s\n' $bad $internal
  exit 1
fi
[ "$count" -ge 50 ] || { echo "FAIL: only $count symbols exported"; exit 1; }
for sym in kle_elector_new kle_elector_run kle_strerror kle_version kle_free; do
  grep -qx "$sym" <<<"$exported" || { echo "FAIL: $sym is not exported"; exit 1; }
done
if grep -q '^kle_fake_' <<<"$exported"; then
  echo "FAIL: test doubles exported from libkle (they belong to libkle-testing)"; exit 1
fi
# Every exported symbol has its line in abi/symbols-in-versions, and every
# line not marked removed names an exported symbol (of its library).
list="${KLE_SOURCE_DIR:-$(dirname "$0")/../..}/abi/symbols-in-versions"
check_listed() { # LIBRARY-NAME EXPORTED-SYMBOLS
  local name=$1 syms=$2 listed missing extra
  listed=$(awk -v l="$name" '!/^#/ && NF >= 3 && $2 == l && NF == 3 {print $1}' "$list" | sort)
  missing=$(comm -23 <(printf '%s\n' "$syms" | grep '^kle_') <(printf '%s\n' "$listed"))
  extra=$(comm -13 <(printf '%s\n' "$syms" | grep '^kle_') <(printf '%s\n' "$listed"))
  [ -z "$missing" ] || { echo "FAIL: $name exports symbols abi/symbols-in-versions does not list:"; printf '  %s\n' $missing; exit 1; }
  [ -z "$extra" ] || { echo "FAIL: abi/symbols-in-versions lists symbols $name does not export (mark them removed):"; printf '  %s\n' $extra; exit 1; }
}
check_listed libkle "$exported"
if [ -n "${2:-}" ]; then
  check_listed libkle-testing "$(nm -D --defined-only "$2" | awk '{print $3}' | sort)"
fi
bad_lines=$(awk '!/^#/ && NF > 0 && (NF < 3 || NF > 4 || $3 !~ /^[0-9]+\.[0-9]+\.[0-9]+$/)' "$list")
[ -z "$bad_lines" ] || { echo "FAIL: malformed lines in abi/symbols-in-versions:"; echo "$bad_lines"; exit 1; }
echo "exported symbols: $count, all public kle_ API, each listed with its version; SONAME $soname"
echo "1 passed, 0 failed"
