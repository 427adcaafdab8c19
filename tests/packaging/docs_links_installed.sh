#!/usr/bin/env bash
# Installs into a prefix inside the build tree and checks every relative
# link and anchor of the installed documents (share/doc/libkle/).
set -euo pipefail
build="$KLE_BUILD_DIR"
work="$build/docs-links-test"
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
docdir="$work/prefix/share/doc/libkle"
[ -f "$docdir/README.md" ] && [ -d "$docdir/docs" ] ||
  { echo "FAIL: README.md and docs/ are not installed in $docdir"; exit 1; }
python3 "$KLE_SOURCE_DIR/scripts/check-links" "$docdir"
# kle --help names the installed reference, and it is there.
"$work/prefix/bin/kle" --help >"$work/help"
doc=$(sed -n 's/^Documentation: \(\/[^ ,]*\)$/\1/p' "$work/help")
[ -n "$doc" ] && [ -f "$doc" ] ||
  { echo "FAIL: kle --help names no installed document:"; grep Documentation "$work/help"; exit 1; }
[ "$doc" -ef "$docdir/docs/cli.md" ] || { echo "FAIL: kle --help names $doc"; exit 1; }
echo "kle --help: Documentation: $doc"
rm -rf "$work"
