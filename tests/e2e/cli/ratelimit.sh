#!/usr/bin/env bash
# Warnings that a condition repeats every try are logged once in full (why,
# and which flag or permission), then as a count once a minute (the minute
# itself: tests/unit/base/test_log.c); a fresh Lease-only deployment (RBAC
# for its Lease alone) warns about nothing at all.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# The skipped-phase guard refuses every try (retry 300 ms): a live Endpoints
# lock of the same name held by another.
now=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
rec="{\"holderIdentity\":\"x\",\"leaseDurationSeconds\":3600,\"acquireTime\":\"$now\",\"renewTime\":\"$now\",\"leaderTransitions\":0}"
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' "$SERVER/api/v1/namespaces/default/endpoints" \
  --data-binary "$(python3 -c 'import json,sys; print(json.dumps({"metadata":{"name":"g","annotations":{"control-plane.alpha.kubernetes.io/leader":sys.argv[1]}}}))' "$rec")" ||
  fail "cannot create the Endpoints lock"
LOCK=g
start_replica me
wait_until 10 "the first refusal" grep -q "skipped migration phase" "$T/me.log"
sleep 4 # a dozen tries more
n=$(grep -c "error retrieving resource lock" "$T/me.log")
[ "$n" -eq 1 ] || fail "$n lines for the guard's refusal in 4 s, want 1: $(grep -c . "$T/me.log") lines"
grep "error retrieving resource lock" "$T/me.log" | grep -q -- "--migration-guard=false" ||
  fail "the refusal does not name --migration-guard=false: $(grep -m1 'error retrieving' "$T/me.log")"
[ "$(grep -c "skipped migration phase" "$T/me.log")" -le 2 ] || fail "the refusal repeated"
[ ! -e "$T/running.me" ] || fail "me ran its worker beside x"
kill -TERM "$PID_me"
wait "$PID_me"
pass "the guard's refusal: one line in 4 s (of about 13 tries), naming --migration-guard=false"
kle_apiserver_stop >/dev/null 2>&1

# RBAC for the Lease and events only, as deploy/rbac.yaml grants.
cat >"$T/tokens.csv" <<'CSV'
t-lease,lease-user,u9,""
CSV
kle_apiserver_start --authorization-mode RBAC --token-file "$T/tokens.csv" || fail "RBAC server"
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles" --data-binary \
  '{"metadata":{"name":"le"},"rules":[{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["get","list","watch","create","update"]},{"apiGroups":[""],"resources":["events"],"verbs":["create","patch"]},{"apiGroups":["events.k8s.io"],"resources":["events"],"verbs":["create","patch"]}]}' ||
  fail "cannot create the Role"
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings" --data-binary \
  '{"metadata":{"name":"le"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"le"},"subjects":[{"kind":"User","name":"lease-user","apiGroup":"rbac.authorization.k8s.io"}]}' ||
  fail "cannot bind the Role"
sed "s/$TOKEN/t-lease/" "$KUBECONFIG" >"$T/lease-user.kubeconfig"
export KUBECONFIG="$T/lease-user.kubeconfig"

# A fresh Lease-only deployment: no warning at start (no migration ever
# happened, however the guard's read of the Endpoints is refused).
LOCK=fresh
start_replica f1
start_replica f2
wait_until 20 "a leader" holder_not ""
wait_until 10 "both read the lock" grep -q "new leader" "$T/f2.log"
wait_until 10 "both read the lock" grep -q "new leader" "$T/f1.log"
sleep 1
! grep -h '^[WE]' "$T/f1.log" "$T/f2.log" || fail "a fresh Lease-only deployment warned"
pass "a fresh Lease-only deployment with its RBAC: no warning"
kill -TERM "$PID_f1" "$PID_f2"
wait "$PID_f1" "$PID_f2"
mv "$T/all.work" "$T/fresh.work" # each lock's workers are checked on their own

# A replica publishing a LeaseCandidate without the permission: polled
# every second, refused every time; one warning saying what to grant.
LOCK=cand
start_replica c --candidate --binary-version 1.33.0
wait_until 10 "c leads" file_exists "$T/running.c"
wait_until 10 "the refusal" grep -q "lease candidate" "$T/c.log"
sleep 4
n=$(grep -c "lease candidate" "$T/c.log")
[ "$n" -eq 1 ] || fail "$n warnings about the LeaseCandidate in 4 s, want 1"
grep "lease candidate" "$T/c.log" | grep -q "leasecandidates (coordination.k8s.io).*deploy/rbac.yaml.*--candidate" ||
  fail "the warning does not say what to grant: $(grep 'lease candidate' "$T/c.log")"
pass "a forbidden LeaseCandidate: one warning in 4 s (of 5 polls), saying what to grant"
