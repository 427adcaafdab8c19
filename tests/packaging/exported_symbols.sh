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
echo "exported symbols: $count, all public kle_ API; SONAME $soname"
echo "1 passed, 0 failed"
