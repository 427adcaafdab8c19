#!/usr/bin/env bash
# scripts/deps --demo is enough for scripts/demo and no more: configures the
# demo's build (its flags, read from scripts/demo), finds the Debian package
# of every library, pkg-config file and program that configuration and the
# demo use, and checks that each is among the --demo packages or their
# dependencies; and that none of the CI toolchain is.
set -euo pipefail
src="$KLE_SOURCE_DIR"
work="$KLE_BUILD_DIR/deps-demo-test"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
for tool in dpkg apt-cache; do
  command -v "$tool" >/dev/null || { echo "SKIP: not a Debian system ($tool missing)"; exit 77; }
done

"$src/scripts/deps" --print --demo >"$work/demo"
apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances $(cat "$work/demo") >"$work/depends"
grep -v '^ ' "$work/depends" | sed 's/:.*//' | sort -u >"$work/closure"
grep -qx cmake "$work/closure" || fail "apt-cache gave no dependency closure"

# The demo's configuration, with the flags scripts/demo passes.
flags=$(sed -n '/^cmake -S \. -B "\$BUILD_DIR"/,/>\/dev\/null/p' "$src/scripts/demo" |
  grep -oE -- '-D[A-Z_]+=[A-Za-z]+' | tr '\n' ' ')
grep -q KLE_BUILD_TESTS=OFF <<<"$flags" || fail "cannot read the demo's cmake flags from scripts/demo: $flags"
# shellcheck disable=SC2086
cmake -S "$src" -B "$work/build" $flags >"$work/configure.log" 2>&1 ||
  { cat "$work/configure.log"; fail "the demo's configuration failed"; }

# What it found: the libraries pkg-config named, their .pc files, the programs.
cache="$work/build/CMakeCache.txt"
files=()
while IFS= read -r f; do files+=("$f"); done < <(
  sed -n 's/^pkgcfg_lib_[^=]*=\(\/.*\)$/\1/p' "$cache"
  sed -n 's/^\(CMAKE_C_COMPILER\|CMAKE_MAKE_PROGRAM\|PKG_CONFIG_EXECUTABLE\|PROTOC_C\|CMAKE_AR\|CMAKE_LINKER\):[A-Z]*=\(\/.*\)$/\2/p' "$cache"
  for m in $(sed -n 's/^\([A-Z]*\)_MODULE_NAME:INTERNAL=\(.*\)$/\2/p' "$cache"); do
    PKG_CONFIG_PATH= pkg-config --path "$m" 2>/dev/null || true
  done
  # what scripts/demo runs besides kle: its relay (python3), and ps
  PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v python3 ps # the system's, as on a fresh machine
)
[ "${#files[@]}" -ge 15 ] || fail "found only ${#files[@]} files in the demo's configuration"
n=0
for f in "${files[@]}"; do
  owner=$(dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null ||
    dpkg -S "${f#/usr}" 2>/dev/null || dpkg -S "$(readlink -f "$f" | sed 's#^/usr##')" 2>/dev/null ||
    true)
  owner=${owner%%: *}
  owner=${owner%%:*}
  [ -n "$owner" ] || fail "no Debian package owns $f"
  grep -qx "$owner" "$work/closure" ||
    fail "$f is in $owner, which scripts/deps --demo does not install"
  n=$((n + 1))
done
echo "scripts/deps --demo: $(wc -l <"$work/demo") packages, $(wc -l <"$work/closure") with dependencies;"
echo "they provide all $n libraries, pkg-config files and programs of the demo's build"

# None of the CI toolchain.
for p in clang llvm libclang-rt-dev prometheus abigail-tools doxygen faketime nghttp2-proxy \
         tinyproxy python3-kubernetes valgrind lintian libcmocka-dev help2man; do
  ! grep -qx "$p" "$work/closure" || fail "scripts/deps --demo installs $p (a test tool)"
done
# And the test set is a superset of the demo set.
"$src/scripts/deps" --print --test >"$work/test"
missing=$(comm -23 <(sort -u "$work/demo") <(sort -u "$work/test"))
[ -z "$missing" ] || fail "scripts/deps --test lacks what --demo installs: $missing"
rm -rf "$work"
echo "2 passed, 0 failed"
