#!/usr/bin/env bash
# Installs libkle into a prefix inside the build tree, links a program
# statically against libkle.a with pkg-config (kle-static) and with CMake
# (kle::kle_static), runs it, and checks that it neither needs nor loads
# libkle.so: no rpath, no LD_LIBRARY_PATH, and the prefix's libkle.so is
# not on the loader's path, so a dynamic link could not even start.
set -euo pipefail
build="$KLE_BUILD_DIR"
here="$KLE_SOURCE_DIR/tests/packaging/static"
work="$build/static-link-test"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
flags=()
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  flags=(-fsanitize=address,undefined)
fi
unset LD_LIBRARY_PATH

check() { # program, how it was built
  local prog="$1" how="$2"
  # (Whole outputs to files: grep -q would end a pipeline early under pipefail.)
  readelf -d "$prog" >"$work/dynamic"
  if grep NEEDED "$work/dynamic" | grep libkle; then
    echo "FAIL ($how): $prog needs libkle.so"; exit 1
  fi
  ldd "$prog" >"$work/ldd"
  if grep libkle "$work/ldd"; then
    echo "FAIL ($how): $prog loads libkle"; exit 1
  fi
  nm "$prog" >"$work/nm"
  grep -Eq ' [Tt] kle_client_new_from_kubeconfig$' "$work/nm" ||
    { echo "FAIL ($how): libkle's code is not in $prog"; exit 1; }
  "$prog" | tee "$work/out"
  grep -q "linked statically: holder ok, missing kubeconfig: KLE_EKUBECONFIG" "$work/out" ||
    { echo "FAIL ($how): unexpected output"; exit 1; }
}

# 1. pkg-config: kle-static names libkle.a itself, so -lkle cannot pick libkle.so.
export PKG_CONFIG_PATH="$prefix/${KLE_LIBDIR:-lib}/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror "${flags[@]}" -o "$work/static_pc" "$here/main.c" \
  $(pkg-config --cflags --libs kle-static)
check "$work/static_pc" pkg-config

# 2. CMake: kle::kle_static.
cmake -S "$here" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_FLAGS="${flags[*]}" -DCMAKE_EXE_LINKER_FLAGS="${flags[*]}" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
check "$work/cmake-build/static_main" CMake

rm -rf "$work"
echo "linked statically with pkg-config (kle-static) and CMake (kle::kle_static); libkle.so not loaded"
echo "2 passed, 0 failed"
