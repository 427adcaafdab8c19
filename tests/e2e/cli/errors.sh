#!/usr/bin/env bash
# One error style for every command (docs/cli.md, "Errors"): what kle
# transfer and kle status refuse is one "kle: " line on stderr with the
# documented exit code, never a log line; a normal race to create the lock
# (409 AlreadyExists) is not logged as an error.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# one_line CODE PREFIX CMD...: exit CODE, one stderr line starting with
# PREFIX (left in $OUT). Not in a subshell: fail must end the test.
one_line() {
  local want=$1 prefix=$2 rc
  shift 2
  OUT=$("$@" 2>&1 >/dev/null); rc=$?
  [ "$rc" -eq "$want" ] || fail "$*: exit $rc, want $want (said: $OUT)"
  [ "$(wc -l <<<"$OUT")" -eq 1 ] || fail "$*: more than one line: $OUT"
  [[ "$OUT" == "$prefix"* ]] || fail "$*: \"$OUT\" does not start with \"$prefix\""
  ! grep -qE '^[IWE][0-9]{4} ' <<<"$OUT" || fail "$*: a log line: $OUT"
}

# Three replicas race to create a fresh lock (creates made slow, so that all
# three read NotFound first): two get 409 AlreadyExists, which is no error.
kle_admin POST /faults '{"verb":"create","resource":"leases","latencyMs":500}' >/dev/null || fail "fault"
for id in a b c; do start_replica "$id" -v 2; done
wait_until 20 "a leader" holder_not ""
wait_until 10 "the others read the lock" grep -q "new leader" "$T/b.log"
wait_until 10 "the others read the lock" grep -q "new leader" "$T/c.log"
kle_admin DELETE /faults >/dev/null
n=$(grep -l "was created by another replica first" "$T"/[abc].log | wc -l)
[ "$n" -ge 1 ] || fail "no replica lost the race to create (test did not race)"
! grep -h '^E' "$T"/[abc].log || fail "an error line in a normal create race"
pass "a create race ($n replicas got 409 AlreadyExists) logs no error"

lead=$(holder)
one_line 1 'kle: transfer to "nobody": no LeaseCandidate' "$KLE" transfer --lock-name e2e --to nobody
pass "transfer to a non-candidate: $OUT"
one_line 1 "kle: transfer: \"$lead\" already holds" "$KLE" transfer --lock-name e2e --to "$lead"
pass "transfer to the holder: $OUT"
one_line 2 'kle: transfer: --to IDENTITY is required' "$KLE" transfer --lock-name e2e
one_line 2 'kle: --to: identity contains' "$KLE" transfer --lock-name e2e --to $'a\tb'
one_line 3 'kle: leases/default/never does not exist yet' "$KLE" status --lock-name never
pass "status of a lock never created: $OUT"
kle_admin POST /faults '{"verb":"get","resource":"leases","name":"e2e","error":500,"count":1}' >/dev/null
one_line 1 'kle: status: cannot read leases/default/e2e: ' "$KLE" status --lock-name e2e
pass "status, an API error: $OUT"
