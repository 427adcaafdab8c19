#!/usr/bin/env bash
# Installs libkle into a temporary prefix, builds the examples out of tree
# against it with pkg-config and with find_package, and runs them.
set -euo pipefail
build="$KLE_BUILD_DIR"
src="$KLE_SOURCE_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix with space"
lib="${KLE_LIBDIR:-lib}" # lib/<multiarch> on Debian

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kle/kle.h include/kle/version.h include/kle/sys/lock.h include/kle/testing.h \
         "$lib/pkgconfig/kle.pc" "$lib/cmake/kle/kleConfig.cmake" "$lib/libkle.a" \
         libexec/kle/kle-supervise; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
[ -L "$prefix/$lib/libkle.so" ] && [ -L "$prefix/$lib/libkle.so.1" ] ||
  { echo "FAIL: libkle.so symlinks missing"; ls -l "$prefix/$lib"; exit 1; }

# The installed tree must not depend on where it was installed: move it.
moved="$tmp/moved"
mv "$prefix" "$moved"
flags=()
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  flags=(-fsanitize=address,undefined)
fi

# 1. pkg-config
export PKG_CONFIG_PATH="$moved/$lib/pkgconfig"
[ "$(pkg-config --modversion kle)" = "$KLE_VERSION" ] || { echo "FAIL: pkg-config version"; exit 1; }
# shellcheck disable=SC2046
cc -std=c11 "${flags[@]}" -o "$tmp/controller_test_pc" "$src/examples/controller_test.c" \
  $(pkg-config --cflags --libs kle-testing) -Wl,-rpath,"$moved/$lib" -lpthread
"$tmp/controller_test_pc" | tee "$tmp/out_pc"
grep -q "1 passed, 0 failed" "$tmp/out_pc"
# Captured first: under pipefail, grep -q leaving at its match could end
# ldd with SIGPIPE while it still writes, and fail the pipeline.
libs=$(ldd "$tmp/controller_test_pc")
grep -q "$moved/$lib/libkle.so.1" <<<"$libs" ||
  { echo "FAIL: not linked against the installed libkle.so"; exit 1; }

# 2. CMake find_package
cmake -S "$src/examples" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$moved" \
  -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" \
  -DCMAKE_BUILD_RPATH="$moved/$lib" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
out=$("$tmp/cmake-build/controller_test")
grep -q "1 passed, 0 failed" <<<"$out"

# 3. find_package(kle 0.2 ...): before 1.0 the same minor version only.
mkdir -p "$tmp/version"
cat >"$tmp/version/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(version_check LANGUAGES C)
find_package(kle ${WANT} CONFIG REQUIRED)
EOF
major_minor="${KLE_VERSION%.*}"
minor="${major_minor#*.}"
for want in "$major_minor" "$KLE_VERSION"; do
  cmake -S "$tmp/version" -B "$tmp/version-build" -DWANT="$want" -DCMAKE_PREFIX_PATH="$moved" \
    >"$tmp/version.log" 2>&1 || { cat "$tmp/version.log"; echo "FAIL: find_package(kle $want)"; exit 1; }
  rm -rf "$tmp/version-build"
done
older=none
if [ "${KLE_VERSION%%.*}" = 0 ] && [ "$minor" -gt 0 ]; then
  older="0.$((minor - 1))" # what 0.(N-1) programs ask for: 0.N may have broken it
  if cmake -S "$tmp/version" -B "$tmp/version-build" -DWANT="$older" \
    -DCMAKE_PREFIX_PATH="$moved" >"$tmp/version.log" 2>&1; then
    echo "FAIL: find_package(kle $older) accepted $KLE_VERSION (0.x: minor versions may break)"
    exit 1
  fi
fi
echo "installed, relocated, and built the examples with pkg-config and with find_package;"
echo "find_package(kle $major_minor) finds $KLE_VERSION, find_package(kle $older) does not"
echo "3 passed, 0 failed"
