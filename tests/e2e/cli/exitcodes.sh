#!/usr/bin/env bash
# kle run's own exit codes, apart from those of common commands (docs/cli.md,
# "Exit codes"): 124 when --timeout passes before the lock is acquired, 122
# when leadership is lost while the command runs (--on-exit=exit, the
# default), 125 when kle itself fails (configuration, a busy --http-addr),
# 2 for a bad command line, found before anything connects.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# 124: a holds the lock; b gives up after --timeout 1s, its command never run.
start_replica a
wait_until 20 "a leads" holder_is a
t0=$(now_ms)
WORKDIR=$T "$KLE" run --lock-name e2e --identity b "${TIMINGS[@]}" --timeout 1s \
  -- sh -c 'touch "$WORKDIR/b.ran"' >>"$T/b.log" 2>&1
rc=$?
dt=$(( $(now_ms) - t0 ))
[ "$rc" -eq 124 ] || fail "--timeout 1s against a held lock: exit $rc, want 124"
[ ! -e "$T/b.ran" ] || fail "b ran its command without the lock"
[ "$dt" -ge 1000 ] && [ "$dt" -lt 8000 ] || fail "--timeout 1s: kle exited after $dt ms"
grep -q 'did not acquire leases/default/e2e within --timeout 1s: giving up' "$T/b.log" ||
  fail "no line saying why: $(tail -3 "$T/b.log")"
holder_is a || fail "a lost the lock to b's attempt"
pass "--timeout 1s: exit 124 after $dt ms, the command not run"
kill -TERM "$PID_a"
wait "$PID_a"
mv "$T/all.work" "$T/e2e.work" # each lock's workers are checked on their own

# Acquired in time: the timeout is over, the command's own code counts.
"$KLE" run --lock-name to --identity c "${TIMINGS[@]}" --timeout 2s -- sh -c 'sleep 2.5; exit 4' \
  >>"$T/c.log" 2>&1
rc=$?
[ "$rc" -eq 4 ] || fail "a command that outlives --timeout: exit $rc, want its 4"
pass "--timeout only bounds the wait for the lock: the command's 4"

# 122: run once (the default) and the API server stops answering: the
# renewals fail, the worker is stopped, kle exits 122.
LOCK=lost
ONEXIT=()
start_replica l
wait_until 20 "l leads" holder_is l
wait_until 10 "the worker of l" file_exists "$T/running.l"
wpid=$(cat "$T/running.l")
kle_admin POST /faults '{"resource":"leases","blackhole":true}' >/dev/null || fail "fault"
wait "$PID_l"
rc=$?
kle_admin DELETE /faults >/dev/null || fail "clear faults"
[ "$rc" -eq 122 ] || fail "leadership lost under --on-exit=exit: exit $rc, want 122"
pid_gone "$wpid" || fail "the worker of l outlived kle"
# The supervisor or kle, whichever sees the deadline pass first, stops it.
grep -q 'lost leadership of leases/default/lost (.*); exiting with code 122 (--on-exit=exit)' \
  "$T/l.log" || fail "no line saying why: $(tail -3 "$T/l.log")"
pass "leadership lost while the command ran: exit 122, worker stopped"

# 125: kle's own failure, one "kle: " line.
out=$(KUBECONFIG="$T/none" "$KLE" run --lock-name x -- true 2>&1); rc=$?
[ "$rc" -eq 125 ] || fail "no kubeconfig: exit $rc, want 125"
[ "$(wc -l <<<"$out")" -eq 1 ] && [[ "$out" == "kle: cannot connect: "* ]] || fail "no kubeconfig said: $out"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1])); time.sleep(30)' "$T/busy.port" &
BUSY=$!
KLE_PIDS+=("$BUSY")
wait_until 10 "a listener" file_exists "$T/busy.port"
out=$("$KLE" run --lock-name busy --http-addr "127.0.0.1:$(cat "$T/busy.port")" -- true 2>&1); rc=$?
[ "$rc" -eq 125 ] || fail "busy --http-addr: exit $rc, want 125"
[ "$out" = "kle: --http-addr \"127.0.0.1:$(cat "$T/busy.port")\": cannot listen: Address already in use" ] ||
  fail "busy --http-addr said: $out"
[ -z "$(holder_of busy)" ] || fail "kle campaigned although its --http-addr was busy"
pass "125 for kle's own failures: $out"

# 2: a bad lock name, refused before connecting (to a server that would
# never answer: nothing listens on port 9).
sed "s#$SERVER#https://127.0.0.1:9#" "$KUBECONFIG" >"$T/nowhere.kubeconfig"
t0=$(now_ms)
out=$(KUBECONFIG="$T/nowhere.kubeconfig" "$KLE" run --lock-name My_Lock -- true 2>&1); rc=$?
[ "$rc" -eq 2 ] || fail "a bad --lock-name: exit $rc, want 2"
[ "$(wc -l <<<"$out")" -eq 1 ] && [[ "$out" == 'kle: --lock-name "My_Lock": not a valid object name'* ]] ||
  fail "a bad --lock-name said: $out"
[ $(( $(now_ms) - t0 )) -lt 1000 ] || fail "a bad --lock-name took $(( $(now_ms) - t0 )) ms: connected first?"
pass "a bad --lock-name: exit 2 at once, one line"
