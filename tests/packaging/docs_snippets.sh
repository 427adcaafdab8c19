#!/usr/bin/env bash
# Commands the documents show work as shown:
# - docs/local-apiserver.md's first sh block starts a server, waits for its
#   kubeconfig and runs kubectl with it (in a directory of this test instead
#   of /tmp/kle); without its mkdir -p the server cannot write the
#   kubeconfig and says so;
# - docs/cli.md's "kle --version" example is what kle prints.
set -euo pipefail
build="$KLE_BUILD_DIR"
src="$KLE_SOURCE_DIR"
work="$build/docs-snippets-test"
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
export PATH="$build/src/apiserver:$build/src/cli:$PATH"
passed=0

# first_block FILE LANG: the first fenced block of that language.
first_block() {
  awk -v lang="$2" '$0 == "```" lang {on = 1; next} on && /^```/ {exit} on {print}' "$1"
}

# 1. docs/local-apiserver.md
first_block "$src/docs/local-apiserver.md" sh | sed "s#/tmp/kle#$work/kle#g" >"$work/snippet.sh"
grep -q "mkdir -p $work/kle" "$work/snippet.sh" || fail "the snippet no longer creates its directory"
if command -v kubectl >/dev/null; then
  run_snippet() { # the snippet, its background server stopped at the end
    timeout 60 bash -c 'trap "kill \$(jobs -p) 2>/dev/null" EXIT; set -e; source "$1"' _ "$1"
  }
  export KUBECACHEDIR="$work/kube-cache"
  run_snippet "$work/snippet.sh" >"$work/out" 2>&1 || { cat "$work/out"; fail "docs/local-apiserver.md's snippet"; }
  grep -q '^default ' "$work/out" || { cat "$work/out"; fail "kubectl get ns did not list default"; }
  echo "ok: docs/local-apiserver.md's commands start a server and kubectl lists its namespaces"
  # Without the mkdir: the server says it cannot write the kubeconfig.
  rm -rf "$work/kle"
  grep -v '^mkdir -p' "$work/snippet.sh" | sed 's#^while .*#wait; exit 1#' >"$work/nomkdir.sh"
  run_snippet "$work/nomkdir.sh" >"$work/out" 2>&1 && fail "kle-apiserver wrote into a missing directory"
  grep -q -- "--write-kubeconfig $work/kle/kubeconfig" "$work/out" ||
    { cat "$work/out"; fail "kle-apiserver does not name the kubeconfig it cannot write"; }
  echo "ok: without mkdir -p, kle-apiserver says it cannot write $work/kle/kubeconfig"
else
  echo "note: kubectl is not installed; docs/local-apiserver.md's snippet is not run"
fi
passed=$((passed + 1))

# 2. docs/cli.md: kle --version
want=$(kle --version)
grep -qF "(\`$want\`)" "$src/docs/cli.md" || fail "docs/cli.md does not show kle --version as it prints: $want"
echo "ok: docs/cli.md shows kle --version as \"$want\""
passed=$((passed + 1))
rm -rf "$work"
echo "$passed passed, 0 failed"
