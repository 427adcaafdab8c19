#!/usr/bin/env bash
# The library alone, as a consumer builds it: configured with
# -DKLE_BUILD_TOOLS=OFF -DKLE_BUILD_TESTS=OFF while libmicrohttpd, GnuTLS,
# protobuf-c and CMocka cannot be found (pkg-config sees every other .pc
# file of the system, and find_package is told not to look for them), it
# configures without looking for them or for protoc-c, builds, installs,
# and a program links against the installed library and runs.
set -euo pipefail
shopt -s nullglob
src="$KLE_SOURCE_DIR"
work="$KLE_BUILD_DIR/library-alone-test"
rm -rf "$work"
mkdir -p "$work/pc"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

hidden=(libmicrohttpd gnutls libprotobuf-c cmocka)
for d in $(pkg-config --variable pc_path pkg-config | tr ':' ' '); do
  for f in "$d"/*.pc; do
    n=$(basename "$f" .pc)
    case " ${hidden[*]} " in *" $n "*) continue ;; esac
    [ -e "$work/pc/$n.pc" ] || ln -s "$f" "$work/pc/$n.pc"
  done
done
export PKG_CONFIG_LIBDIR="$work/pc" PKG_CONFIG_PATH=
for m in "${hidden[@]}"; do
  ! pkg-config --exists "$m" || fail "pkg-config still finds $m"
done
pkg-config --exists libcurl json-c yaml-0.1 openssl || fail "pkg-config lost the library's own dependencies"

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DKLE_BUILD_TOOLS=OFF -DKLE_BUILD_TESTS=OFF \
  -DCMAKE_DISABLE_FIND_PACKAGE_MHD=ON -DCMAKE_DISABLE_FIND_PACKAGE_GnuTLS=ON \
  -DCMAKE_DISABLE_FIND_PACKAGE_Protobuf=ON -DCMAKE_DISABLE_FIND_PACKAGE_CMocka=ON \
  >"$work/configure.log" 2>&1 || { cat "$work/configure.log"; fail "the configuration failed"; }
cache="$work/build/CMakeCache.txt"
for v in KLE_BUILD_APISERVER KLE_MAN_PAGES; do
  ! grep -q "^$v:BOOL=ON" "$cache" || fail "$v is on without the tools"
done
# Nothing of the tools was looked for.
for v in PROTOC_C HELP2MAN MHD_FOUND GNUTLS_FOUND PROTOBUFC_FOUND CMOCKA_FOUND; do
  ! grep -q "^$v[:=]" "$cache" || fail "the library's configuration looked for $v"
done
cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 || { tail -30 "$work/build.log"; fail "the build failed"; }
for t in kle kle-apiserver kle-supervise; do
  [ ! -e "$work/build/$t" ] && [ ! -e "$work/build/src/cli/$t" ] && [ ! -e "$work/build/src/apiserver/$t" ] ||
    fail "$t was built with KLE_BUILD_TOOLS=OFF"
done
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
lib=$(dirname "$(find "$work/prefix" -name 'libkle.so.*' -type f | head -1)")
[ -d "$lib" ] || fail "libkle.so was not installed"
# The shared library needs none of the hidden libraries.
needed=$(readelf -d "$lib"/libkle.so.*.*)
for l in microhttpd gnutls protobuf-c cmocka; do
  ! grep -q "NEEDED.*$l" <<<"$needed" || fail "libkle.so needs $l"
done

# A program against the installed library, with pkg-config.
cat >"$work/prog.c" <<'EOF'
#include <kle/kle.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    kle_record r;
    if (kle_record_init(&r, KLE_RECORD_VERSION) != 0)
        return 1;
    int major = -1;
    const char *v = kle_version(&major, NULL, NULL);
    printf("libkle %s\n", v);
    return major == KLE_VERSION_MAJOR ? 0 : 2;
}
EOF
export PKG_CONFIG_LIBDIR="$work/pc:$lib/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/prog" "$work/prog.c" $(pkg-config --cflags --libs kle) -Wl,-rpath,"$lib" ||
  fail "a program does not build against the installed library"
out=$("$work/prog") || fail "the program failed: $out"
libs=$(ldd "$work/prog")
grep -q "$lib/libkle.so" <<<"$libs" || fail "the program is not linked against the installed libkle"
echo "ok: $out, built and installed without libmicrohttpd, GnuTLS, protobuf-c and CMocka"
echo "1 passed, 0 failed"
