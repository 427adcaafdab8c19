#!/usr/bin/env bash
# A command that cannot be executed: kle says so, releases the lease and
# exits 127 (not found) or 126 (not executable) instead of acquiring,
# failing and acquiring again with a climbing fencing token.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
LOCK=ef

for mode in release restart; do
  t0=$(now_ms)
  timeout 20 "$KLE" run --lock-name ef --identity x "${TIMINGS[@]}" --on-exit "$mode" \
    -- "$T/no-such-command" arg >>"$T/x.log" 2>&1
  rc=$?
  [ "$rc" -eq 127 ] || fail "--on-exit=$mode, missing command: kle exited $rc, want 127"
  grep -q "cannot run $T/no-such-command: No such file or directory" "$T/x.log" || fail "no clear error"
  h=$(holder); [ -z "$h" ] || fail "the lease was not released (holder \"$h\")"
  pass "--on-exit=$mode: a missing command ends kle with 127 in $(( $(now_ms) - t0 )) ms"
done
tok=$(transitions)
[ "$tok" -le 1 ] || fail "fencing token climbed to $tok over two runs"

printf '#!/bin/sh\necho hi\n' >"$T/not-executable"
chmod 0644 "$T/not-executable"
timeout 20 "$KLE" run --lock-name ef --identity x "${TIMINGS[@]}" -- "$T/not-executable" >>"$T/x.log" 2>&1
rc=$?
[ "$rc" -eq 126 ] || fail "a command that is not executable: kle exited $rc, want 126"
grep -q "cannot run $T/not-executable: Permission denied" "$T/x.log" || fail "no clear error for 126"
pass "a command that is not executable ends kle with 126"

# A command that itself exits 127 is not an exec failure: with
# --on-exit=release kle keeps campaigning.
WORKDIR=$T "$KLE" run --lock-name ef --identity y "${TIMINGS[@]}" --on-exit=release \
  -- sh -c 'echo run >> "$WORKDIR/y.runs"; exit 127' >>"$T/y.log" 2>&1 &
y=$!; KLE_PIDS+=("$y")
two_runs() { [ -f "$T/y.runs" ] && [ "$(wc -l <"$T/y.runs")" -ge 2 ]; }
wait_until 15 "the command to run twice" two_runs
kill -0 "$y" || fail "kle exited on a command's own exit code 127"
pass "a command's own exit 127 is not taken for an exec failure"
