#!/usr/bin/env bash
# Builds the Debian packages (cpack) in a folder of the build tree, checks
# that each holds what it should where Debian wants it, and runs lintian on
# them: no error and no warning.
set -euo pipefail
build="$KLE_BUILD_DIR"
if [ "${KLE_SANITIZED:-0}" = 1 ]; then
  echo "SKIP: the packages come from the release build (scripts/test), not a sanitizer build"
  exit 77
fi
for tool in lintian dpkg-deb dpkg-architecture dpkg-parsechangelog; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (scripts/deps --test)"; exit 1; }
done
work="$build/lintian-test"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }

# The packages go to packages/ under the working directory (cpack in the
# build tree: build/*/packages); here, the test's own.
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; fail "cpack"; }
# CPack goes on after a failing post-build script: its errors fail here.
if grep -Ei "error|warning" "$work/cpack.log"; then fail "cpack reported the lines above"; fi

v="$KLE_VERSION" so="$KLE_SOVERSION"
arch=$(dpkg --print-architecture)
ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
deb() { echo "$work/packages/${1}_${v}_${arch}.deb"; }
for p in "libkle$so" "libkle-testing$so" libkle-dev kle-tools; do
  [ -f "$(deb "$p")" ] || { ls "$work/packages"; fail "no package $p"; }
  dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | sed 's#^\./#/#' >"$work/$p.files"
  dpkg-deb --ctrl-tarfile "$(deb "$p")" | tar -t | sed 's#^\./##' | grep . >"$work/$p.control" || true
  for f in "/usr/share/doc/$p/copyright" "/usr/share/doc/$p/changelog.gz"; do
    grep -qx "$f" "$work/$p.files" || fail "$p has no $f"
  done
done
has() { grep -qx "$2" "$work/$1.files" || fail "$1 does not contain $2"; }
lacks() { ! grep -q "$2" "$work/$1.files" || fail "$1 contains $2: $(grep "$2" "$work/$1.files" | head -1)"; }

# The runtime library, alone, in the multiarch directory, with its shlibs
# file and the ldconfig trigger rather than maintainer scripts.
has "libkle$so" "/usr/lib/$ma/libkle.so.$so"
lacks "libkle$so" "kle-testing"
has "libkle-testing$so" "/usr/lib/$ma/libkle-testing.so.$so"
for p in "libkle$so" "libkle-testing$so"; do
  grep -qx shlibs "$work/$p.control" || fail "$p has no shlibs file"
  grep -qx triggers "$work/$p.control" || fail "$p has no triggers file"
  ! grep -qxE "postinst|postrm" "$work/$p.control" || fail "$p has maintainer scripts"
  dpkg-deb --ctrl-tarfile "$(deb "$p")" | tar -xO ./triggers | grep -qx "activate-noawait ldconfig" ||
    fail "$p does not trigger ldconfig"
done
dpkg-deb --ctrl-tarfile "$(deb "libkle$so")" | tar -xO ./shlibs >"$work/shlibs"
grep -qx "libkle $so libkle$so (>= $v)" "$work/shlibs" || fail "libkle$so shlibs: $(cat "$work/shlibs")"
lacks "libkle$so" "^/usr/lib/libkle"
# -dev: the link-time files, in the multiarch directory too.
has libkle-dev "/usr/lib/$ma/libkle.so"
has libkle-dev "/usr/lib/$ma/libkle-testing.so"
has libkle-dev "/usr/lib/$ma/pkgconfig/kle.pc"
has libkle-dev "/usr/lib/$ma/cmake/kle/kleConfig.cmake"
has libkle-dev "/usr/include/kle/kle.h"
# The tools: a manual page for every program in /usr/bin, and completion.
for prog in $(grep '^/usr/bin/.' "$work/kle-tools.files" | sed 's#.*/##'); do
  has kle-tools "/usr/share/man/man1/$prog.1.gz"
done
for page in kle-run kle-status kle-transfer; do has kle-tools "/usr/share/man/man1/$page.1.gz"; done
has kle-tools /usr/share/bash-completion/completions/kle
has kle-tools /usr/share/zsh/vendor-completions/_kle
# The changelog's latest entry is this version.
clv=$(dpkg-parsechangelog -l "$KLE_SOURCE_DIR/cmake/debian/changelog" -S Version)
[ "$clv" = "$v" ] || fail "cmake/debian/changelog's latest entry is $clv, the packages are $v: add an entry"

# lintian: errors and warnings fail (info and pedantic tags are not checked).
rc=0
lintian --fail-on error,warning --tag-display-limit 0 "$work"/packages/*.deb >"$work/lintian.out" 2>&1 || rc=$?
grep -v "running with root privileges" "$work/lintian.out" >"$work/lintian.tags" || true
if [ "$rc" -ne 0 ] || grep -q '^[EW]:' "$work/lintian.tags"; then
  cat "$work/lintian.tags"
  fail "lintian (exit $rc): $(grep -c '^E:' "$work/lintian.tags" || true) errors, $(grep -c '^W:' "$work/lintian.tags" || true) warnings"
fi
echo "4 packages; files in place; lintian: 0 errors, 0 warnings"
rm -rf "$work"
echo "2 passed, 0 failed"
