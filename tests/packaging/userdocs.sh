#!/usr/bin/env bash
# The manual pages and shell completion as installed by `cmake --install`:
# every page exists, renders without a groff warning, and names every flag
# its program's --help lists; the bash completion, loaded as bash-completion
# loads it (and sourced by hand), completes commands, flags and values, and
# offers exactly the flags --help lists; zsh finds its completion.
set -euo pipefail
build="$KLE_BUILD_DIR"
work="$build/userdocs-test"
rm -rf "$work"
mkdir -p "$work"
prefix="$work/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
kle="$prefix/bin/kle"
fail() { echo "FAIL: $*"; exit 1; }
passed=0

# The flags a help text names: --long-name and -x, wherever they appear.
flags_of() {
  grep -oE '(^|[^[:alnum:]_-])--?[[:alpha:]][[:alnum:]-]*' "$1" | sed -E 's/^[^-]*//' | sort -u
}
# The flags a help text defines: those that start its indented option
# lines ("  -o, --output FMT   ..."), not those its prose mentions.
flags_defined() {
  sed -nE 's/^[[:space:]]+((-[[:alpha:]], )?--?[[:alpha:]][[:alnum:]-]*).*/\1/p' "$1" |
    tr ',' '\n' | tr -d ' ' | grep . | sort -u
}

# 1. Manual pages: installed, warning-free, and naming every flag of --help.
man1="$prefix/share/man/man1"
for spec in kle: kle-run:run kle-status:status kle-transfer:transfer kle-apiserver:; do
  page=${spec%%:*} sub=${spec#*:}
  file="$man1/$page.1.gz"
  [ -f "$file" ] || fail "$page.1.gz is not installed in share/man/man1"
  zcat "$file" >"$work/$page.1"
  groff -man -Tutf8 -ww -z "$work/$page.1" 2>"$work/$page.warnings" ||
    fail "groff could not render $page.1"
  [ ! -s "$work/$page.warnings" ] || { cat "$work/$page.warnings"; fail "groff warns on $page.1"; }
  MANWIDTH=100 man -l "$file" >"$work/$page.man" 2>"$work/$page.man-err" || fail "man -l $page.1.gz"
  [ ! -s "$work/$page.man-err" ] || { cat "$work/$page.man-err"; fail "man -l warns on $page.1.gz"; }
  grep -q "^NAME" "$work/$page.man" || fail "$page.1 has no NAME section"
  # Plain text with very long lines: no hyphenation, no break inside a flag.
  groff -man -Tascii -rHY=0 -rLL=300n -P-cbou "$work/$page.1" >"$work/$page.txt" 2>/dev/null
  prog="$prefix/bin/${page%%-*}"
  [ "$page" = kle-apiserver ] && prog="$prefix/bin/kle-apiserver"
  if [ -n "$sub" ]; then "$prog" "$sub" --help >"$work/$page.help"; else "$prog" --help >"$work/$page.help"; fi
  n=0
  while read -r flag; do
    grep -qE -- "(^|[^[:alnum:]-])${flag}([^[:alnum:]-]|\$)" "$work/$page.txt" ||
      fail "$page.1 does not mention $flag, which --help lists"
    n=$((n + 1))
  done < <(flags_of "$work/$page.help")
  [ "$n" -ge 1 ] || fail "no flag found in the --help of $page"
  echo "$page.1: renders without warnings, names all $n flags of --help"
done
# The program's name in the page heading, and the pages point at each other.
grep -q '^KLE-RUN(1)' "$work/kle-run.man" || fail "kle-run.1's heading is not KLE-RUN(1)"
grep -q 'kle-run(1)' "$work/kle.man" || fail "kle.1 does not refer to kle-run(1)"
passed=$((passed + 1))

# 2. Completion files where bash-completion and zsh look for them.
bashc="$prefix/share/bash-completion/completions/kle"
zshc="$prefix/share/zsh/vendor-completions/_kle"
[ -f "$bashc" ] || fail "share/bash-completion/completions/kle is not installed"
[ -f "$zshc" ] || fail "share/zsh/vendor-completions/_kle is not installed"
cmp -s "$bashc" <("$kle" completion bash) || fail "installed bash completion differs from kle completion bash"
cmp -s "$zshc" <("$kle" completion zsh) || fail "installed zsh completion differs from kle completion zsh"

# 3. bash: simulate readline's words for a command line (split at blanks
# and around "=", as COMP_WORDBREAKS does) and print what _kle offers.
cat >"$work/complete.bash" <<'EOF'
complete_line() { # the command line, up to the cursor
  local line="$1" w
  COMP_WORDS=()
  for w in $line; do
    while [[ $w == *=* ]]; do
      [[ -n ${w%%=*} ]] && COMP_WORDS+=("${w%%=*}")
      COMP_WORDS+=("=")
      w=${w#*=}
    done
    [[ -n $w ]] && COMP_WORDS+=("$w")
  done
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE=$line COMP_POINT=${#line} COMP_TYPE=9 COMP_KEY=9
  COMPREPLY=()
  local spec fn
  spec=$(complete -p kle 2>/dev/null) || { echo "NO-COMPLETION-FOR-kle"; return; }
  fn=${spec#*-F }
  fn=${fn%% *}
  "$fn" kle "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort -u
}
EOF
expect() { # mode, command line, words that must be offered...
  local mode="$1" line="$2" out
  shift 2
  out=$(printf '%s\n' "$line" | bash_complete "$mode")
  for w in "$@"; do
    grep -qx -- "$w" <<<"$out" || fail "($mode) \"$line\" does not offer \"$w\"; it offers: $(echo $out)"
  done
}
refuse() { # mode, command line, a word that must not be offered
  local out
  out=$(printf '%s\n' "$2" | bash_complete "$1")
  ! grep -qx -- "$3" <<<"$out" || fail "($1) \"$2\" offers \"$3\""
}
bash_complete() { # mode: plain (sourced by hand) or loader (bash-completion); reads a line
  local line
  IFS= read -r line
  if [ "$1" = plain ]; then
    bash --norc --noprofile -c 'source "$1"; source "$2"; complete_line "$3"' _ \
      "$bashc" "$work/complete.bash" "$line"
  else
    # bash-completion finds the file itself, under $XDG_DATA_DIRS.
    XDG_DATA_DIRS="$prefix/share" BASH_COMPLETION_USER_DIR="$work/none" \
      bash --norc --noprofile -c 'source /usr/share/bash-completion/bash_completion
        __load_completion kle || echo "NOT-FOUND"; source "$1"; complete_line "$2"' _ \
      "$work/complete.bash" "$line"
  fi
}
modes=(plain)
if [ -f /usr/share/bash-completion/bash_completion ]; then
  modes+=(loader)
else
  echo "note: bash-completion is not installed; only the sourced completion is tested"
fi
for m in "${modes[@]}"; do
  expect "$m" "kle " run status transfer completion help
  expect "$m" "kle ru" run
  expect "$m" "kle run --lock-n" --lock-name
  expect "$m" "kle run --on-exit " release exit restart
  expect "$m" "kle run --on-exit=re" release restart
  refuse "$m" "kle run --on-exit=re" exit
  expect "$m" "kle status -o " table json
  expect "$m" "kle status --namespace ns --lock-name x -" -o -w --output --watch
  refuse "$m" "kle status -" --identity
  expect "$m" "kle completion " bash zsh
  refuse "$m" "kle run --lock-name " --lock-name
  expect "$m" "kle run --lock-name x -- ech" echo
  expect "$m" "kle run --lock-name x --candidate=true --binary-version 1.0 ech" echo
  expect "$m" "kle run --resource-lock " leases endpoints configmaps endpointsleases configmapsleases
  # Every flag --help defines is offered, and every flag offered is in --help
  # (kube-controller-manager's names are in its prose).
  for sub in run status transfer; do
    "$kle" "$sub" --help >"$work/help-$sub"
    flags_of "$work/help-$sub" >"$work/help-flags-$sub"
    # the option lines, and kube-controller-manager's names from the prose
    { flags_defined "$work/help-$sub"; grep -- '^--leader-elect-' "$work/help-flags-$sub" || true; } |
      sort -u >"$work/help-defined-$sub"
    [ "$(wc -l <"$work/help-defined-$sub")" -ge 8 ] || fail "kle $sub --help: found few option lines"
    printf '%s\n' "kle $sub -" | bash_complete "$m" >"$work/offered-$sub"
    missing=$(comm -23 "$work/help-defined-$sub" "$work/offered-$sub")
    [ -z "$missing" ] || fail "($m) kle $sub: --help defines, completion does not offer: $(echo $missing)"
    extra=$(comm -13 "$work/help-flags-$sub" "$work/offered-$sub")
    [ -z "$extra" ] || fail "($m) kle $sub: completion offers what --help does not name: $(echo $extra)"
  done
  echo "bash completion ($m): commands, flags, values; run, status and transfer offer the flags of --help"
done
passed=$((passed + 1))

# 4. zsh: the script parses, and compinit picks it up from vendor-completions.
if command -v zsh >/dev/null; then
  zsh -n "$zshc" || fail "zsh cannot parse _kle"
  out=$(zsh -f -c 'fpath=("$1" $fpath); autoload -Uz compinit; compinit -u -D
    print -r -- ${_comps[kle]:-none}' _ "$prefix/share/zsh/vendor-completions")
  [ "$out" = _kle ] || fail "zsh compinit does not use _kle for kle (got: $out)"
  echo "zsh completion: parses; compinit uses _kle for kle"
else
  echo "note: zsh is not installed; the zsh completion is not tested"
fi
passed=$((passed + 1))

# 5. Bad use of kle completion: a one-line error, exit 2.
rc=0
"$kle" completion fish >/dev/null 2>"$work/err" || rc=$?
[ "$rc" = 2 ] && grep -q '^kle: completion: unknown shell' "$work/err" ||
  fail "kle completion fish: exit $rc, $(cat "$work/err")"
passed=$((passed + 1))

rm -rf "$work"
echo "$passed passed, 0 failed"
