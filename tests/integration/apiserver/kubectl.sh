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
wait_until 20 "kubectl watch to list the lease" grep -q '^ADDED' "$W/watch.out"
k annotate lease demo watched=yes >/dev/null
wait_until 20 "kubectl watch to print MODIFIED" grep -q '^MODIFIED *demo' "$W/watch.out" && pass "get -w --output-watch-events sees MODIFIED"
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

# deploy/ as a whole on a server that enforces RBAC: apply, create token,
# auth can-i (also --list, also as the token itself), required fields.
kle_apiserver_stop || fail "server did not shut down cleanly"
kle_apiserver_start --authorization-mode RBAC
W=$KLE_APISERVER_DIR
export KUBECACHEDIR="$W/kube-cache"
OUT=$(k apply -f "$KLE_SOURCE_DIR/deploy/" 2>&1)
expect_eq "apply -f deploy/" "deployment.apps/my-app created
serviceaccount/kle created
role.rbac.authorization.k8s.io/kle-leader-election created
rolebinding.rbac.authorization.k8s.io/kle-leader-election created" "$OUT"
OUT=$(k apply -f "$KLE_SOURCE_DIR/deploy/" 2>&1)
expect_eq "apply -f deploy/ again: all unchanged" 4 "$(grep -c ' unchanged$' <<<"$OUT")"
expect_eq "get deployment" "3 kle" "$(k get deploy my-app -o jsonpath='{.spec.replicas} {.spec.template.spec.serviceAccountName}' 2>&1)"
SA_TOKEN=$(k create token kle --duration=15m 2>&1)
expect_match "create token" '^kle-sa\.[0-9a-f]{64}$' "$SA_TOKEN"
AS=--as=system:serviceaccount:default:kle
can() { k auth can-i "$@" 2>/dev/null || true; }
expect_eq "can-i update leases/my-app (as)" yes "$(can update leases/my-app $AS)"
expect_eq "can-i update leases/my-app (token)" yes "$(can update leases/my-app --token="$SA_TOKEN")"
expect_eq "can-i get leases/other" no "$(can get leases/other $AS)"
expect_eq "can-i delete leases/my-app" no "$(can delete leases/my-app $AS)"
expect_eq "can-i get secrets" no "$(can get secrets $AS)"
expect_eq "can-i create events" yes "$(can create events $AS)"
expect_eq "admin can-i anything" yes "$(can delete secrets)"
LIST=$(k auth can-i --list $AS 2>&1 | grep -v -e '^Resources' -e '^ ' | sed -E 's/ +\[\] +/ /; s/ +/ /g; s/ $//' | sort)
expect_eq "can-i --list: exactly deploy/rbac.yaml plus self reviews" "events [] [create patch]
events.events.k8s.io [] [create patch]
leases.coordination.k8s.io [] [create]
leases.coordination.k8s.io [my-app] [get update list watch]
selfsubjectaccessreviews.authorization.k8s.io [] [create]
selfsubjectrulesreviews.authorization.k8s.io [] [create]" "$LIST"
OUT=$(k --token="$SA_TOKEN" get lease other 2>&1 || true)
expect_eq "the token's 403 as kube-apiserver words it" 'Error from server (Forbidden): leases.coordination.k8s.io "other" is forbidden: User "system:serviceaccount:default:kle" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "default"' "$OUT"
sed -e 's/name: my-app$/name: broken/' -e '/image:/d' "$KLE_SOURCE_DIR/deploy/deployment.yaml" >"$W/broken.yaml"
OUT=$(k apply -f "$W/broken.yaml" 2>&1 || true)
expect_match "Deployment without an image: 422 naming the field" 'is invalid: spec.template.spec.containers\[0\].image: Required value' "$OUT"

finish
