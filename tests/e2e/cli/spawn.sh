#!/usr/bin/env bash
# kle run starts its command through the supervisor shim: kle-supervise
# beside kle (or in its libexec folder), else kle itself ("kle
# __supervise"). Either way the command's parent is the shim, the command
# gets stdio and no other descriptor, and it gets the soft descriptor limit
# kle was started with, not the one kle raised for itself.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
[ "$hard" -gt 300 ] || { echo "skip: hard descriptor limit $hard, need more than 300"; exit 77; }

# The command: tests/support/fd_probe.py (its descriptors, soft limit,
# parent's program and parent's first argument, a line each).
PROBE=$KLE_SOURCE_DIR/tests/support/fd_probe.py

# run_probe ID KLE_PROGRAM: one kle run of the probe (--on-exit exit) with
# the soft descriptor limit 300; its report in $T/ID.probe.
run_probe() {
  local id=$1 bin=$2 rc
  prlimit --nofile="300:$hard" -- "$bin" run --lock-name "spawn-$id" --identity "$id" \
    "${TIMINGS[@]}" --on-exit exit -- python3 "$PROBE" "$T/$id.probe" >>"$T/$id.log" 2>&1 &
  local pid=$!
  KLE_PIDS+=("$pid")
  wait_until 30 "the probe of $id" file_exists "$T/$id.probe"
  wait "$pid"; rc=$?
  [ "$rc" -eq 0 ] || fail "kle run of $id exited $rc, want 0 (the probe's code)"
}

# check ID WANT_EXE: the report of run_probe ID.
check() {
  local id=$1 want_exe=$2 fds limit exe arg
  { read -r fds; read -r limit; read -r exe; read -r arg; } <"$T/$id.probe"
  [ "$fds" = "0 1 2" ] || fail "$id: the command's descriptors are '$fds', want '0 1 2'"
  [ "$limit" = 300 ] || fail "$id: the command's soft descriptor limit is $limit, want 300 (kle's own was raised to $hard)"
  [ "$exe" = "$(readlink -f "$want_exe")" ] || fail "$id: the command's parent is $exe, want $want_exe"
  [ "$arg" = __supervise ] || fail "$id: the parent's first argument is '$arg', want __supervise"
}

# 1. kle-supervise beside kle.
[ -x "$KLE_BUILD_DIR/src/cli/kle-supervise" ] || fail "no kle-supervise beside kle in the build tree"
run_probe a "$KLE"
check a "$KLE_BUILD_DIR/src/cli/kle-supervise"
pass "the command runs under kle-supervise with stdio only and kle's original descriptor limit"

# 2. kle alone (no kle-supervise beside it, none installed): kle is the shim.
mkdir -p "$T/bin"
cp "$KLE" "$T/bin/kle"
run_probe b "$T/bin/kle"
check b "$T/bin/kle"
pass "without kle-supervise, kle runs the shim itself, with the same result"
