#!/usr/bin/env bash
# The skipped-migration-phase guard (docs/migration.md, "The phases"):
#  - an endpoints replica beside a leading leases replica refuses to lead,
#    logs one error naming the skipped phase, and costs one extra GET (of
#    the Lease) per attempt; the Lease leader makes no extra GET;
#  - the other direction: a leases replica beside a leading endpoints replica;
#  - released, the other family's record no longer blocks;
#  - --migration-guard=false turns it off (that replica becomes a second
#    leader: exactly what the guard prevents);
#  - a 403 on the extra GET (RBAC without endpoints) turns it off with one
#    log line, and the replica leads.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
LOCK=mg

# count RESOURCE VERB: requests answered, whatever the code.
count() {
  kle_admin GET /counters | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(sum(r["count"] for r in c["requests"] if r["resource"] == sys.argv[1] and r["verb"] == sys.argv[2]))' "$1" "$2"
}
ep_holder() {
  kle_curl "$SERVER/api/v1/namespaces/default/endpoints/mg" | python3 -c '
import json, sys
a = json.load(sys.stdin).get("metadata", {}).get("annotations", {})
print(json.loads(a.get("control-plane.alpha.kubernetes.io/leader", "{}")).get("holderIdentity", ""))' 2>/dev/null
}
ep_holder_is() { [ "$(ep_holder)" = "$1" ]; }
logged() { grep -q "$1" "$2"; }
MSG='skipped migration phase'

# 1. leases leader a; an endpoints replica b refuses to lead.
start_replica a --resource-lock leases
wait_until 20 "a leads the Lease" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
kle_admin DELETE /counters >/dev/null
sleep 1.5 # a few renewals of a, alone
[ "$(count endpoints get)" -eq 0 ] && [ "$(count configmaps get)" -eq 0 ] ||
  fail "the leader made extra GETs: endpoints $(count endpoints get), configmaps $(count configmaps get)"
pass "no extra GET while leading"
lease_gets0=$(count leases get)
start_replica b --resource-lock endpoints
wait_until 20 "b refuses" logged "$MSG" "$T/b.log"
sleep 3 # longer than the lease: b keeps refusing
[ "$(grep -c "$MSG" "$T/b.log")" -ge 1 ] || fail "no error"
grep -q 'docs/migration.md, "The phases"' "$T/b.log" || fail "the error does not name the doc section: $(grep "$MSG" "$T/b.log")"
[ "$(grep -c "E.*$MSG" "$T/b.log" | head -1)" -ge 1 ] || fail "not logged as an error"
[ -f "$T/running.b" ] && fail "b started its command beside a"
eg=$(count endpoints get) lg=$(($(count leases get) - lease_gets0))
# b: one GET of the Endpoints and one of the Lease per attempt; a renews
# every 0.3 s with a GET of its own (at most 2 per retry period).
[ "$eg" -ge 3 ] || fail "b made only $eg attempts"
[ "$(ep_holder)" = "" ] || fail "b wrote the Endpoints record: $(ep_holder)"
pass "endpoints replica b refused to lead beside the Lease leader ($eg attempts, $lg Lease GETs in all)"

# 2. a releases: the Lease no longer holds a live record, b leads. (The
# workers of the Lease and of the Endpoints are checked apart: their tokens
# are the transitions of two objects.)
kill -STOP "$PID_b"
kill -TERM "$PID_a"
wait "$PID_a" 2>/dev/null
mv "$T/all.work" "$T/lease.work"
kill -CONT "$PID_b"
wait_until 20 "b leads the Endpoints" ep_holder_is b
wait_until 10 "the worker of b" file_exists "$T/running.b"
pass "after a released, b leads"

# 3. The other direction: a leases replica c beside the endpoints leader b.
start_replica c --resource-lock leases
wait_until 20 "c refuses" logged "$MSG" "$T/c.log"
sleep 3
[ -f "$T/running.c" ] && fail "c started its command beside b"
[ "$(holder)" = "" ] || fail "c took the Lease: $(holder)"
pass "leases replica c refused to lead beside the Endpoints leader"
kill -TERM "$PID_c"
wait "$PID_c" 2>/dev/null

# 4. Turned off: d leads beside b (its command only touches a file, so the
# overlap check of the workers is not concerned).
"$KLE" run --lock-name mg --identity d "${TIMINGS[@]}" --resource-lock leases --migration-guard=false \
  -- sh -c ": >'$T/d.led'; exec sleep 60" >>"$T/d.log" 2>&1 &
PID_d=$!
KLE_PIDS+=("$PID_d")
wait_until 20 "d leads with the guard off" test -e "$T/d.led"
grep -q "$MSG" "$T/d.log" && fail "d logged the guard's error with the guard off"
pass "--migration-guard=false: d leads beside b (the second leader the guard prevents)"
kill -KILL "$PID_d" "$PID_b"
wait "$PID_d" "$PID_b" 2>/dev/null
sleep 0.3 # the supervisor has killed b's worker
mv "$T/all.work" "$T/endpoints.work"
kle_apiserver_stop >/dev/null 2>&1

# 5. A 403 on the extra GET: RBAC that grants leases (and events) only.
cat >"$T/tokens.csv" <<'CSV'
t-lease,lease-user,u9,""
CSV
kle_apiserver_start --authorization-mode RBAC --token-file "$T/tokens.csv" || fail "RBAC server"
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles" --data-binary \
  '{"metadata":{"name":"le"},"rules":[{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["get","list","watch","create","update"]},{"apiGroups":[""],"resources":["events"],"verbs":["create","patch"]}]}' ||
  fail "cannot create the Role"
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings" --data-binary \
  '{"metadata":{"name":"le"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"le"},"subjects":[{"kind":"User","name":"lease-user","apiGroup":"rbac.authorization.k8s.io"}]}' ||
  fail "cannot bind the Role"
sed "s/$TOKEN/t-lease/" "$KUBECONFIG" >"$T/lease-user.kubeconfig"
LOCK=mg403
# The line is at -v=1: with RBAC for the Lease alone no migration is under
# way, and a replica does not warn about one (incluster.sh checks that).
KUBECONFIG="$T/lease-user.kubeconfig" start_replica e --resource-lock leases -v 1
wait_until 20 "e leads" file_exists "$T/running.e"
n=$(grep -c "guard is off" "$T/e.log")
[ "$n" -eq 1 ] || fail "$n log lines about the guard turned off, 1 expected: $(cat "$T/e.log")"
grep -q "403" "$T/e.log" || fail "the line does not say 403"
pass "a 403 on the extra GET turns the guard off with one log line; e leads"
