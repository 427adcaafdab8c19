#!/usr/bin/env bash
# kubectl, unchanged, against a freshly started kle-apiserver (label e2e).
# Skips (exit 77) when kubectl is not installed.
. "$(dirname "$0")/lib.sh"
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubectl is not installed on this machine; install it to run this test"
  exit 77
fi
kle_apiserver_start
W=$KLE_APISERVER_DIR
export KUBECACHEDIR="$W/kube-cache"
k() { timeout 30 kubectl "$@"; }

cat >"$W/lease.yaml" <<'YAML'
apiVersion: coordination.k8s.io/v1
kind: Lease
metadata:
  name: demo
spec:
  holderIdentity: node-a
  leaseDurationSeconds: 15
YAML

expect_eq "apply creates" "lease.coordination.k8s.io/demo created" "$(k apply -f "$W/lease.yaml" 2>&1)"
expect_eq "apply again" "lease.coordination.k8s.io/demo unchanged" "$(k apply -f "$W/lease.yaml" 2>&1)"
sed -i 's/node-a/node-b/' "$W/lease.yaml"
expect_eq "apply a change" "lease.coordination.k8s.io/demo configured" "$(k apply -f "$W/lease.yaml" 2>&1)"
expect_eq "get -o jsonpath" "node-b 15" "$(k get lease demo -o jsonpath='{.spec.holderIdentity} {.spec.leaseDurationSeconds}' 2>&1)"

OUT=$(k describe lease demo 2>&1)
expect_match "describe lease" 'Holder Identity: +node-b' "$OUT"
expect_match "describe kind" 'Kind: +Lease' "$OUT"

expect_eq "create configmap" "configmap/c1 created" "$(k create configmap c1 --from-literal=a=b 2>&1)"
OUT=$(k create configmap c1 --from-literal=a=b 2>&1 || true)
expect_match "create configmap twice: AlreadyExists" 'configmaps "c1" already exists' "$OUT"
expect_eq "configmap data" "b" "$(k get configmap c1 -o jsonpath='{.data.a}' 2>&1)"

expect_eq "annotate" "lease.coordination.k8s.io/demo annotated" "$(k annotate lease demo team=infra 2>&1)"
expect_eq "label" "lease.coordination.k8s.io/demo labeled" "$(k label lease demo app=demo 2>&1)"
expect_eq "annotation and label stored" "infra demo" "$(k get lease demo -o jsonpath='{.metadata.annotations.team} {.metadata.labels.app}' 2>&1)"

k get lease demo -o yaml >"$W/stale.yaml"
k annotate lease demo team=platform --overwrite >/dev/null
OUT=$(k replace -f "$W/stale.yaml" 2>&1 || true)
expect_match "replace a stale object: Conflict" 'Error from server \(Conflict\).*the object has been modified' "$OUT"

# Watch: start it, wait until it has printed the initial ADDED, then modify.
k get lease demo -w --output-watch-events --request-timeout=20s >"$W/watch.out" 2>&1 &
WATCH=$!
wait_until "kubectl watch to list the lease" 20 grep -q '^ADDED' "$W/watch.out"
k annotate lease demo watched=yes >/dev/null
wait_until "kubectl watch to print MODIFIED" 20 grep -q '^MODIFIED *demo' "$W/watch.out" && pass "get -w --output-watch-events sees MODIFIED"
kill "$WATCH" 2>/dev/null || true
wait "$WATCH" 2>/dev/null || true

kle_curl -o /dev/null -X POST -H 'Content-Type: application/json' "$SERVER/api/v1/namespaces/kube-system/events" \
  --data-binary '{"metadata":{"name":"demo.1"},"involvedObject":{"kind":"Lease","name":"demo","namespace":"kube-system"},"reason":"LeaderElection","message":"node-b became leader","type":"Normal"}'
expect_match "get events -A" 'kube-system +.*LeaderElection.*node-b became leader' "$(k get events -A 2>&1)"
expect_match "get ns" 'default +Active' "$(k get ns 2>&1)"

expect_eq "delete" 'lease.coordination.k8s.io "demo" deleted' "$(k delete lease demo 2>&1)"
OUT=$(k get lease demo 2>&1 || true)
expect_match "deleted lease is NotFound" 'NotFound.*"demo" not found' "$OUT"

OUT=$(k --token=wrong get leases 2>&1 || true)
expect_match "wrong --token: Unauthorized" 'Unauthorized' "$OUT"

finish
