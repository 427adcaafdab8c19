#!/usr/bin/env bash
# Installs libkle into a temporary prefix, builds the examples out of tree
# against it with pkg-config and with find_package, and runs them.
set -euo pipefail
build="$KLE_BUILD_DIR"
src="$KLE_SOURCE_DIR"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix with space"

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in include/kle/kle.h include/kle/version.h include/kle/sys/lock.h include/kle/testing.h \
         lib/pkgconfig/kle.pc lib/cmake/kle/kleConfig.cmake lib/libkle.a libexec/kle/kle-supervise; do
  [ -e "$prefix/$f" ] || { echo "FAIL: $f was not installed"; exit 1; }
done
[ -L "$prefix/lib/libkle.so" ] && [ -L "$prefix/lib/libkle.so.1" ] ||
  { echo "FAIL: libkle.so symlinks missing"; ls -l "$prefix/lib"; exit 1; }

# The installed tree must not depend on where it was installed: move it.
moved="$tmp/moved"
mv "$prefix" "$moved"
flags=()
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  flags=(-fsanitize=address,undefined)
fi

# 1. pkg-config
export PKG_CONFIG_PATH="$moved/lib/pkgconfig"
[ "$(pkg-config --modversion kle)" = "$KLE_VERSION" ] || { echo "FAIL: pkg-config version"; exit 1; }
# shellcheck disable=SC2046
cc -std=c11 "${flags[@]}" -o "$tmp/controller_test_pc" "$src/examples/controller_test.c" \
  $(pkg-config --cflags --libs kle-testing) -Wl,-rpath,"$moved/lib" -lpthread
"$tmp/controller_test_pc" | tee "$tmp/out_pc"
grep -q "1 passed, 0 failed" "$tmp/out_pc"
# Captured first: under pipefail, grep -q leaving at its match could end
# ldd with SIGPIPE while it still writes, and fail the pipeline.
libs=$(ldd "$tmp/controller_test_pc")
grep -q "$moved/lib/libkle.so.1" <<<"$libs" ||
  { echo "FAIL: not linked against the installed libkle.so"; exit 1; }

# 2. CMake find_package
cmake -S "$src/examples" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$moved" \
  -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" \
  -DCMAKE_BUILD_RPATH="$moved/lib" >/dev/null
cmake --build "$tmp/cmake-build" >/dev/null
out=$("$tmp/cmake-build/controller_test")
grep -q "1 passed, 0 failed" <<<"$out"
echo "installed, relocated, and built the examples with pkg-config and with find_package"
echo "2 passed, 0 failed"
