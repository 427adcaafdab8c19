#!/usr/bin/env bash
# The package lists that must build libkle without the rest of the test
# toolchain are enough, and scripts/deps --demo holds no test tool:
# - scripts/deps --demo, for scripts/demo's build (and its python3, ps);
# - deploy/Dockerfile's build stage, for the image's build.
# For each, configures the build with its flags (read from scripts/demo or
# the Dockerfile), finds the Debian package of every library, pkg-config
# file and program the configuration uses, and checks that each is among
# the listed packages or their dependencies.
set -euo pipefail
src="$KLE_SOURCE_DIR"
work="$KLE_BUILD_DIR/build-deps-test"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
for tool in dpkg apt-cache; do
  command -v "$tool" >/dev/null || { echo "SKIP: not a Debian system ($tool missing)"; exit 77; }
done

# check_build NAME PACKAGES-FILE "CMAKE FLAGS" [PROGRAMS...]
check_build() {
  local name=$1 pkgs=$2 flags=$3 dir="$work/$1" f owner n=0
  shift 3
  mkdir -p "$dir"
  # shellcheck disable=SC2046
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $(cat "$pkgs") >"$dir/depends"
  grep -v '^ ' "$dir/depends" | sed 's/:.*//' | sort -u >"$dir/closure"
  grep -qx cmake "$dir/closure" || fail "$name: apt-cache gave no dependency closure"
  # shellcheck disable=SC2086
  cmake -S "$src" -B "$dir/build" $flags >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log"; fail "$name: the configuration failed"; }
  # What it found: the libraries pkg-config named, their .pc files, the programs.
  local cache="$dir/build/CMakeCache.txt" files=()
  while IFS= read -r f; do files+=("$f"); done < <(
    sed -n 's/^pkgcfg_lib_[^=]*=\(\/.*\)$/\1/p' "$cache"
    sed -n 's/^\(CMAKE_C_COMPILER\|CMAKE_MAKE_PROGRAM\|PKG_CONFIG_EXECUTABLE\|PROTOC_C\|HELP2MAN\|CMAKE_AR\|CMAKE_LINKER\):[A-Z]*=\(\/.*\)$/\2/p' "$cache"
    for m in $(sed -n 's/^\([A-Z]*\)_MODULE_NAME:INTERNAL=\(.*\)$/\2/p' "$cache"); do
      PKG_CONFIG_PATH= pkg-config --path "$m" 2>/dev/null || true
    done
    # the system's programs, as on a fresh machine
    [ $# -eq 0 ] || PATH=/usr/sbin:/usr/bin:/sbin:/bin command -v "$@"
  )
  [ "${#files[@]}" -ge 15 ] || fail "$name: found only ${#files[@]} files in the configuration"
  for f in "${files[@]}"; do
    owner=$(dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null ||
      dpkg -S "${f#/usr}" 2>/dev/null || dpkg -S "$(readlink -f "$f" | sed 's#^/usr##')" 2>/dev/null ||
      true)
    owner=${owner%%: *}
    owner=${owner%%:*}
    [ -n "$owner" ] || fail "$name: no Debian package owns $f"
    grep -qx "$owner" "$dir/closure" || fail "$name: $f is in $owner, which it does not install"
    n=$((n + 1))
  done
  echo "ok: $name: $(wc -l <"$pkgs") packages, $(wc -l <"$dir/closure") with dependencies, provide all $n libraries, pkg-config files and programs of its build"
}

# 1. scripts/deps --demo and scripts/demo's cmake flags.
"$src/scripts/deps" --print --demo >"$work/demo.packages"
flags=$(sed -n '/^cmake -S \. -B "\$BUILD_DIR"/,/>\/dev\/null/p' "$src/scripts/demo" |
  grep -oE -- '-D[A-Z_]+=[A-Za-z]+' | tr '\n' ' ')
grep -q KLE_BUILD_TESTS=OFF <<<"$flags" || fail "cannot read the demo's cmake flags from scripts/demo: $flags"
check_build demo "$work/demo.packages" "$flags" python3 ps
# None of the CI toolchain.
for p in clang llvm libclang-rt-dev prometheus abigail-tools doxygen faketime nghttp2-proxy \
         tinyproxy python3-kubernetes valgrind lintian libcmocka-dev help2man g++; do
  ! grep -qx "$p" "$work/demo/closure" || fail "scripts/deps --demo installs $p (not needed by the demo)"
done
# And the test set is a superset of the demo set.
"$src/scripts/deps" --print --test >"$work/test.packages"
missing=$(comm -23 <(sort -u "$work/demo.packages") <(sort -u "$work/test.packages"))
[ -z "$missing" ] || fail "scripts/deps --test lacks what --demo installs: $missing"
echo "ok: scripts/deps --demo installs none of the test toolchain; --test includes it"

# 2. deploy/Dockerfile's build stage: its apt-get install and cmake flags.
sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$src/deploy/Dockerfile" | awk '/^FROM /{n++} n==1' >"$work/stage1"
grep '^RUN ' "$work/stage1" | sed 's/&&/\n/g' | grep 'apt-get install' | sed 's/.*apt-get install//' |
  tr ' ' '\n' | grep -v '^-' | grep . | sort -u >"$work/image.packages"
flags=$(grep '^RUN ' "$work/stage1" | sed 's/&&/\n/g' | grep 'cmake -S' | grep -oE -- '-D[A-Z_]+=[A-Za-z]+' |
  tr '\n' ' ')
grep -q KLE_BUILD_TESTS=OFF <<<"$flags" || fail "cannot read the cmake flags of deploy/Dockerfile: $flags"
check_build dockerfile "$work/image.packages" "$flags"
rm -rf "$work"
echo "3 passed, 0 failed"
