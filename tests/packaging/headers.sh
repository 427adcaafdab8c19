#!/usr/bin/env bash
# Every public header compiles alone, first in a translation unit, as C99
# with -pedantic and as C++11 (libgit2's tests/headertest): users include
# them from either language, in any order.
#   headers.sh SOURCE_DIR BUILD_DIR   (BUILD_DIR holds the generated kle/version.h)
set -euo pipefail
src=$1 build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# kle/rest.h declares json-c types.
read -r -a jsonc <<<"$(pkg-config --cflags json-c)"
cc=${CC:-cc} cxx=${CXX:-c++}
command -v "$cxx" >/dev/null || { echo "FAIL: no C++ compiler ($cxx; Debian: g++)"; exit 1; }
n=0 failed=0
while IFS= read -r h; do
  rel=${h#"$src/include/"}
  rel=${rel#"$build/include/"}
  printf '#include <%s>\n' "$rel" >"$work/t.c"
  printf '#include <%s>\nint main() { return 0; }\n' "$rel" >"$work/t.cpp"
  if ! "$cc" -std=c99 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$src/include" \
    -I"$build/include" "${jsonc[@]}" "$work/t.c" 2>"$work/err"; then
    echo "FAIL: $rel does not compile alone as C99 -pedantic:"
    cat "$work/err"
    failed=$((failed + 1))
  fi
  if ! "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I"$src/include" \
    -I"$build/include" "${jsonc[@]}" "$work/t.cpp" 2>"$work/err"; then
    echo "FAIL: $rel does not compile alone as C++11 -pedantic:"
    cat "$work/err"
    failed=$((failed + 1))
  fi
  n=$((n + 1))
done < <(find "$src/include/kle" "$build/include/kle" -name '*.h' | sort)
[ "$n" -ge 18 ] || { echo "FAIL: found only $n headers"; exit 1; }
echo "$((2 * n - failed)) passed, $failed failed ($n headers, as C99 and as C++11)"
[ "$failed" -eq 0 ]
