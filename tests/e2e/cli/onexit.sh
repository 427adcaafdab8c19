#!/usr/bin/env bash
# --on-exit exit (the default), release and restart, the last two backing
# off while the command keeps exiting; SIGKILL after --grace for a worker
# that ignores SIGTERM; --release-on-cancel=false keeps the lease.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# exit: the worker's code becomes kle's, and the lease is released.
LOCK=ex
"$KLE" run --lock-name ex --identity x "${TIMINGS[@]}" --on-exit exit -- sh -c 'exit 7' >>"$T/x.log" 2>&1
rc=$?
[ "$rc" -eq 7 ] || fail "--on-exit=exit: kle exited $rc, want 7"
h=$(holder); [ -z "$h" ] || fail "--on-exit=exit did not release (holder \"$h\")"
"$KLE" run --lock-name ex --identity x "${TIMINGS[@]}" --on-exit=exit -- sh -c 'kill -KILL $$' >>"$T/x.log" 2>&1
rc=$?
[ "$rc" -eq 137 ] || fail "--on-exit=exit with a killed worker: kle exited $rc, want 137"
# The default: run once, as consul lock.
"$KLE" run --lock-name ex --identity x "${TIMINGS[@]}" -- sh -c 'exit 3' >>"$T/x.log" 2>&1
rc=$?
[ "$rc" -eq 3 ] || fail "default --on-exit: kle exited $rc, want the command's 3"
h=$(holder); [ -z "$h" ] || fail "the default --on-exit did not release (holder \"$h\")"
grep -q 'releasing the lease and exiting with code 3 (--on-exit=exit)' "$T/x.log" || fail "no exit line"
pass "--on-exit=exit (also the default): codes 7, 137 and 3, lease released"

# restart: the worker runs again and again under the same leadership.
LOCK=rs
WORKDIR=$T "$KLE" run --lock-name rs --identity r "${TIMINGS[@]}" --on-exit restart \
  -- sh -c 'echo "$KLE_LEADER_TRANSITIONS" >> "$WORKDIR/restarts"; exit 1' >>"$T/r.log" 2>&1 &
r=$!; KLE_PIDS+=("$r")
restarts() { [ -f "$T/restarts" ] && [ "$(wc -l <"$T/restarts")" -ge 3 ]; }
wait_until 15 "three starts" restarts
[ "$(sort -u "$T/restarts" | wc -l)" -eq 1 ] || fail "token changed across restarts: $(cat "$T/restarts")"
# A command that keeps exiting at once is started again after 1 s, then 2 s.
grep -q 'exited with code 1; restarting it in 1s (--on-exit=restart)' "$T/r.log" || fail "no 1s back-off"
grep -q 'exited with code 1; restarting it in 2s (--on-exit=restart)' "$T/r.log" || fail "no 2s back-off"
holder_is r || fail "r lost the lease while restarting"
kill -TERM "$r"; wait "$r"; rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: kle exited $rc"
pass "--on-exit=restart: $(wc -l <"$T/restarts") starts, one leadership"

# release: the worker ends, the lease is released, the other
# replica takes over and runs its worker; the first kle keeps campaigning.
LOCK=rl
WORKDIR=$T "$KLE" run --lock-name rl --identity p "${TIMINGS[@]}" --on-exit=release \
  -- sh -c 'echo p >> "$WORKDIR/rl"; WORKER_RUN_MS=1000 exec bash "$WORKER_SH" "$WORKDIR/rl.work"' >>"$T/p.log" 2>&1 &
p=$!; KLE_PIDS+=("$p")
wait_until 15 "p leads" holder_is p
WORKDIR=$T "$KLE" run --lock-name rl --identity q "${TIMINGS[@]}" --on-exit=release \
  -- sh -c 'echo q >> "$WORKDIR/rl"; exec bash "$WORKER_SH" "$WORKDIR/rl.work"' >>"$T/q.log" 2>&1 &
q=$!; KLE_PIDS+=("$q")
wait_until 15 "q takes over after p's worker ended" holder_is q
grep -qx q "$T/rl" || fail "q's worker did not start"
kill -0 "$p" || fail "kle p exited after its worker ended (should campaign again)"
grep -q 'releasing the lease (--on-exit=release)' "$T/p.log" || fail "p did not release"
grep -q 'campaigning again in 300ms' "$T/p.log" || fail "p did not wait a retry period"
check_overlap
pass "--on-exit=release: released, q took over, p campaigns again"

# A worker that ignores SIGTERM is killed --grace after it, and
# --release-on-cancel=false leaves the lease held.
LOCK=gr
WORKDIR=$T "$KLE" run --lock-name gr --identity g "${TIMINGS[@]}" --grace 300ms \
  --release-on-cancel=false \
  -- sh -c 'WORKER_IGNORE_TERM=1 WORKER_PIDFILE="$WORKDIR/g.pid" exec bash "$WORKER_SH" "$WORKDIR/gr.work"' >>"$T/g.log" 2>&1 &
g=$!; KLE_PIDS+=("$g")
wait_until 15 "g's worker" file_exists "$T/g.pid"
wpid=$(cat "$T/g.pid")
t0=$(now_ms)
kill -TERM "$g"; wait "$g"; rc=$?
dt=$(( $(now_ms) - t0 ))
[ "$rc" -eq 0 ] || fail "kle exited $rc"
wait_until 2 "the worker ignoring SIGTERM to die" pid_gone "$wpid"
[ "$dt" -ge 300 ] || fail "kle exited after $dt ms, before the grace"
grep -q 'sending SIGKILL' "$T/g.log" || fail "no SIGKILL logged"
holder_is g || fail "--release-on-cancel=false released the lease (holder \"$(holder)\")"
pass "SIGKILL after --grace ($dt ms); --release-on-cancel=false kept the lease"

# MultiLock: while leading an endpointsleases lock, kle status shows both
# records held by the leader and agreeing.
LOCK=ml
"$KLE" run --lock-name ml --identity m --resource-lock endpointsleases "${TIMINGS[@]}" \
  --on-exit exit -- sh -c '"$0" status --lock-name ml --resource-lock endpointsleases -o json' "$KLE" \
  >"$T/ml.json" 2>>"$T/m.log" || fail "kle run (endpointsleases) failed"
python3 - "$T/ml.json" <<'PY' || fail "multilock status: $(cat "$T/ml.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["agree"] is True and d["holderIdentity"] == "m", d
assert d["primary"]["holderIdentity"] == "m" and d["secondary"]["holderIdentity"] == "m", d
PY
"$KLE" status --lock-name ml --resource-lock endpointsleases | grep -q '^AGREE  *yes$' || fail "table AGREE"
pass "kle status on a MultiLock shows both records"

# The supervisor shim killed from outside (say, by the OOM killer): the
# worker goes too, and kle sees it as the command's end.
LOCK=sh
WORKDIR=$T "$KLE" run --lock-name sh --identity s "${TIMINGS[@]}" --on-exit exit \
  -- sh -c 'WORKER_PIDFILE="$WORKDIR/s.pid" exec bash "$WORKER_SH" "$WORKDIR/sh.work"' >>"$T/s.log" 2>&1 &
s=$!; KLE_PIDS+=("$s")
wait_until 15 "s's worker" file_exists "$T/s.pid"
wpid=$(cat "$T/s.pid")
shim=$(ps -o ppid= -p "$wpid" | tr -d ' ')
ps -o args= -p "$shim" | grep -q '__supervise' || fail "worker's parent $shim is not the shim"
kill -KILL "$shim"
wait "$s"; rc=$?
[ "$rc" -eq 137 ] || fail "kle exited $rc after its shim was killed, want 137"
wait_until 2 "the worker of a killed shim to die" pid_gone "$wpid"
pass "a killed shim takes its worker along"
