#!/usr/bin/env bash
# LeaseCandidates on and off.
# 1. kle-apiserver --runtime-config coordination.k8s.io/v1beta1=false serves
#    no LeaseCandidates, as a cluster that has not enabled them: discovery
#    and the resource answer 404. kle run --candidate there keeps electing
#    (a leads, hands over to b on SIGTERM) and says once, per replica, why
#    its candidate is not published; kle transfer says why it cannot check.
# 2. With them served and RBAC on, deploy/rbac.yaml with its LeaseCandidate
#    rules uncommented is enough for kle run --candidate: the candidate is
#    published and deleted at exit, and nothing is refused (needs kubectl
#    for apply and create token; skipped without it).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
LC=/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates
code() { kle_curl -o /dev/null -w '%{http_code}' "$SERVER$1" || true; }

# --- 1. A server without LeaseCandidates.
kle_apiserver_start --runtime-config coordination.k8s.io/v1beta1=false || exit 1
[ "$(code /apis/coordination.k8s.io/v1beta1)" = 404 ] || fail "v1beta1 discovery is served"
[ "$(code "$LC")" = 404 ] || fail "leasecandidates are served"
[ "$(code /apis/coordination.k8s.io/v1/namespaces/default/leases)" = 200 ] || fail "leases are not served"
groups=$(kle_curl "$SERVER/apis/coordination.k8s.io")
grep -q v1beta1 <<<"$groups" && fail "the coordination.k8s.io group lists v1beta1: $groups"
pass "--runtime-config coordination.k8s.io/v1beta1=false: no LeaseCandidates in discovery or routes"

started=$(now_ms)
start_replica a --candidate --binary-version 1.33.0
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b --candidate --binary-version 1.33.0
wait_until 10 "b serves HTTP" file_exists "$T/b.addr"
out=$("$KLE" transfer --lock-name e2e --to b 2>&1) && fail "kle transfer succeeded: $out"
grep -q "does not serve LeaseCandidates" <<<"$out" || fail "kle transfer does not say why: $out"
pass "kle transfer: $(cut -c1-120 <<<"$out")..."
kill -TERM "$PID_a"
wait "$PID_a" || fail "kle a exited $? after SIGTERM"
wait_until 10 "b takes over" holder_is b
wait_until 10 "the worker of b" file_exists "$T/running.b"
pass "kle run --candidate elects without LeaseCandidates: a led, b took over"
# b has polled its candidate several times by now (once a second while
# served): the reason is still said once, and nothing else about it.
while [ $(( $(now_ms) - started )) -lt 4000 ]; do sleep 0.2; done
for id in a b; do
  n=$(grep -c "does not serve LeaseCandidates" "$T/$id.log" || true)
  [ "$n" = 1 ] || fail "$id says $n times that LeaseCandidates are not served"
  other=$(grep "lease candidate" "$T/$id.log" | grep -vc "does not serve LeaseCandidates" || true)
  [ "$other" = 0 ] || fail "$id logs more about its candidate: $(grep "lease candidate" "$T/$id.log" | head -3)"
  grep -q -- "--runtime-config=coordination.k8s.io/v1beta1=true" "$T/$id.log" ||
    fail "$id does not say how a cluster serves them"
done
pass "each replica says once why its candidate is off (--runtime-config, the feature gate)"
kill -TERM "$PID_b"
wait "$PID_b" || fail "kle b exited $? after SIGTERM"
check_overlap >/dev/null
# Part 2 is a new server, with tokens from 0 again: its own work log.
mv "$T/all.work" "$T/part1.worklog"
kle_apiserver_stop >/dev/null

# --- 2. deploy/rbac.yaml's LeaseCandidate rules, uncommented.
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP (part 2): kubectl is not installed; deploy/rbac.yaml's LeaseCandidate rules untested"
  echo "leasecandidates: all passed"
  exit 0
fi
# The commented rule block, from its heading to the end of the Role.
sed -E '/^  # For kle run --candidate/,/^---/ s/^  # (-|  )/  \1/' "$KLE_SOURCE_DIR/deploy/rbac.yaml" >"$T/rbac.yaml"
grep -q '^    resources: \["leasecandidates"\]' "$T/rbac.yaml" ||
  fail "no LeaseCandidate rule to uncomment in deploy/rbac.yaml"
kle_apiserver_start --authorization-mode RBAC || exit 1
ADMIN_KC=$KUBECONFIG
export KUBECACHEDIR="$T/kube-cache"
k() { timeout 30 kubectl --kubeconfig "$ADMIN_KC" "$@"; }
k apply -f "$T/rbac.yaml" >"$T/apply.log" 2>&1 || fail "kubectl apply: $(cat "$T/apply.log")"
token=$(k create token kle --duration=1h 2>"$T/token.log") || fail "create token: $(cat "$T/token.log")"
sed "s#^    token: .*#    token: $token#" "$ADMIN_KC" >"$T/sa.kubeconfig"
export KUBECONFIG="$T/sa.kubeconfig"
LOCK=my-app
start_replica c --candidate --binary-version 1.33.0
wait_until 20 "c leads" holder_is c
candidate_published() { [ "$(code "$LC/my-app.c")" = 200 ]; } # asked at every try, not once
wait_until 10 "c's LeaseCandidate" candidate_published
pass "with deploy/rbac.yaml's LeaseCandidate rules, c publishes its candidate"
kill -TERM "$PID_c"
wait "$PID_c" || fail "kle c exited $? after SIGTERM"
[ "$(code "$LC/my-app.c")" = 404 ] || fail "c's LeaseCandidate is left behind"
refused=$(grep -hiw -e forbidden -e 403 "$T/c.log" | grep -v 'the skipped-migration-phase guard is off' || true)
[ -z "$refused" ] || fail "c was refused something: $(head -3 <<<"$refused")"
pass "c deleted its candidate at exit; nothing was refused"
check_overlap >/dev/null
echo "leasecandidates: all passed"
