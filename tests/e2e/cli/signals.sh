#!/usr/bin/env bash
# SIGHUP and SIGQUIT end kle like SIGTERM: grace for the command, release,
# exit 0. Untrusted text (a holder identity with a newline and terminal
# escapes) is escaped in text logs and in kle status; a renewTime ahead of
# this machine's clock is reported as a clock difference.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

start_replica a
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"
for sig in HUP QUIT; do
  cur=$(holder)
  eval "p=\$PID_$cur"
  wpid=$(cat "$T/running.$cur")
  kill -"$sig" "$p"
  wait "$p"; rc=$?
  [ "$rc" -eq 0 ] || fail "kle exited $rc after SIG$sig, want 0"
  pid_gone "$wpid" || fail "the worker survived SIG$sig of kle"
  grep -q "STOP $cur " "$T/all.work" || fail "the worker got no SIGTERM (no STOP line) on SIG$sig"
  grep -q "received SIG$sig: stopping" "$T/$cur.log" || fail "SIG$sig not logged"
  grep -q "released lease" "$T/$cur.log" || fail "no release on SIG$sig"
  [ "$cur" = a ] || break
  wait_until 10 "b takes over after a's release" holder_is b
  wait_until 10 "the worker of b" file_exists "$T/running.b"
done
pass "SIGHUP and SIGQUIT: the worker got SIGTERM, the lease was released, exit 0"
check_overlap

# A lease held by a forged identity, renewed 60 s "in the future".
LOCK=evil
future=$(date -u -d '+60 seconds' +%Y-%m-%dT%H:%M:%S.000000Z)
kle_curl -o /dev/null -f -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases" --data-binary @- <<EOF2 || fail "create the lease"
{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"evil"},
 "spec":{"holderIdentity":"x\nI1201 00:00:00.000000       1 run.c:1] forged\u001b[2J\u009b","leaseDurationSeconds":2,
 "acquireTime":"$future","renewTime":"$future","leaseTransitions":3}}
EOF2
out=$("$KLE" status --lock-name evil) || fail "kle status: $out"
printf '%s\n' "$out" >"$T/status.out"
[ "$(wc -l <"$T/status.out")" -eq 7 ] || fail "status printed $(wc -l <"$T/status.out") lines, want 7: $out"
grep -q '^HOLDER        x\\nI1201 00:00:00.000000       1 run.c:1\] forged\\x1b\[2J\\xc2\\x9b$' "$T/status.out" ||
  fail "holder not escaped: $(grep HOLDER "$T/status.out" | od -c | head)"
! grep -q $'\x1b' "$T/status.out" || fail "an escape character reached the terminal"
grep -q "^RENEWED .*s in the future: this machine's clock and the holder's differ)$" "$T/status.out" ||
  fail "no clock difference: $(grep RENEWED "$T/status.out")"
! grep -q 's ago)' <(grep RENEWED "$T/status.out") || fail "negative age"
pass "kle status escapes the holder and reports the clock difference"

# A follower logs the forged holder as one escaped line.
start_replica f
wait_until 10 "f reads the lock" grep -q "new leader of leases/default/evil: x" "$T/f.log"
! grep -q "^I1201 00:00:00.000000 *1 run.c:1\] forged" "$T/f.log" || fail "a forged log line"
! grep -q $'\x1b' "$T/f.log" || fail "an escape character in the log"
grep -q 'new leader of leases/default/evil: x\\nI1201 00:00:00.000000       1 run.c:1\] forged\\x1b\[2J\\xc2\\x9b$' "$T/f.log" ||
  fail "holder not escaped in the log: $(grep -a 'new leader' "$T/f.log" | od -c | head)"
pass "text logs escape the holder"
