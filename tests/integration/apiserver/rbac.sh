#!/usr/bin/env bash
# RBAC as the authorizer (--authorization-mode RBAC): Roles, ClusterRoles and
# their bindings to users, groups and service accounts; resourceNames;
# kube-apiserver's 403 wording; ServiceAccount tokens from TokenRequest
# (expiry, bound to the account's uid); SelfSubjectAccessReview and
# SelfSubjectRulesReview; impersonation.
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/kle-rbac-XXXXXX")
trap 'kle_apiserver_stop >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
cat >"$D/tokens.csv" <<'CSV'
t-dave,dave,u4,"devs"
CSV
kle_apiserver_start --authorization-mode RBAC --token-file "$D/tokens.csv"
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
RBAC=/apis/rbac.authorization.k8s.io/v1
SA_USER=system:serviceaccount:default:kle

# as TOKEN METHOD PATH [BODY [HEADER]]: like req, with another bearer token.
as() {
  local tok=$1 method=$2 path=$3 data=${4-} hdr=${5-} out
  out=$(mktemp)
  CODE=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $tok" ${hdr:+-H "$hdr"} \
    -H 'Content-Type: application/json' -o "$out" -w '%{http_code}' -X "$method" \
    ${data:+--data-binary "$data"} "$SERVER$path" || true)
  BODY=$(cat "$out")
  rm -f "$out"
}
msg() { jget 'd.get("message")' <<<"$BODY"; }

# ServiceAccount tokens.
req POST /api/v1/namespaces/default/serviceaccounts/kle/token '{"spec":{}}'
expect_eq "token for a missing service account: 404" "404 NotFound" \
  "$CODE $(jget 'd["reason"]' <<<"$BODY")"
req POST /api/v1/namespaces/default/serviceaccounts '{"metadata":{"name":"kle"}}'
expect_eq "create ServiceAccount" 201 "$CODE"
req POST /api/v1/namespaces/default/serviceaccounts/kle/token \
  '{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","spec":{"expirationSeconds":10}}'
expect_eq "token shorter than 10 minutes: 422" "422 spec.expirationSeconds" \
  "$CODE $(jget 'd["details"]["causes"][0]["field"]' <<<"$BODY")"
req POST /api/v1/namespaces/default/serviceaccounts/kle/token '{"spec":{"expirationSeconds":1200}}'
expect_eq "TokenRequest: 201 TokenRequest" "201 TokenRequest" "$CODE $(jget 'd["kind"]' <<<"$BODY")"
SA=$(jget 'd["status"]["token"]' <<<"$BODY")
EXP=$(jget 'd["status"]["expirationTimestamp"]' <<<"$BODY")
LEFT=$(($(date -u -d "$EXP" +%s) - $(date -u +%s)))
expect_eq "expirationTimestamp about 20 minutes ahead" 1 "$((LEFT > 1140 && LEFT <= 1200))"

# The token authenticates as the service account, which may do nothing yet.
as "$SA" GET /api/v1/namespaces/default/configmaps
expect_eq "service account without bindings: 403" 403 "$CODE"
expect_eq "403 worded as kube-apiserver" \
  "configmaps is forbidden: User \"$SA_USER\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\"" \
  "$(msg)"
as "nope" GET /api/v1/namespaces/default/configmaps
expect_eq "unknown token: 401" 401 "$CODE"

# deploy/rbac.yaml's Role and RoleBinding, as JSON.
req POST $RBAC/namespaces/default/roles '{"metadata":{"name":"kle-leader-election"},"rules":[
  {"apiGroups":["coordination.k8s.io"],"resources":["leases"],"resourceNames":["my-app"],"verbs":["get","update"]},
  {"apiGroups":["coordination.k8s.io"],"resources":["leases"],"verbs":["create"]},
  {"apiGroups":[""],"resources":["events"],"verbs":["create","patch"]}]}'
expect_eq "create Role" 201 "$CODE"
req POST $RBAC/namespaces/default/rolebindings '{"metadata":{"name":"kle-leader-election"},
  "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"kle-leader-election"},
  "subjects":[{"kind":"ServiceAccount","name":"kle","namespace":"default"}]}'
expect_eq "create RoleBinding" 201 "$CODE"

as "$SA" GET $L/my-app
expect_eq "get its own lease: allowed (404, not 403)" 404 "$CODE"
as "$SA" POST $L '{"metadata":{"name":"my-app"},"spec":{"holderIdentity":"a"}}'
expect_eq "create its lease" 201 "$CODE"
as "$SA" PUT $L/my-app '{"metadata":{"name":"my-app"},"spec":{"holderIdentity":"b"}}'
expect_eq "update its lease" 200 "$CODE"
req POST $L '{"metadata":{"name":"other"},"spec":{}}'
as "$SA" GET $L/other
expect_eq "get another lease: 403 (resourceNames)" 403 "$CODE"
expect_eq "403 names the object" \
  "leases.coordination.k8s.io \"other\" is forbidden: User \"$SA_USER\" cannot get resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\"" \
  "$(msg)"
as "$SA" PUT $L/other '{"metadata":{"name":"other"},"spec":{}}'
expect_eq "update another lease: 403" 403 "$CODE"
as "$SA" DELETE $L/my-app
expect_eq "delete its own lease: 403" 403 "$CODE"
as "$SA" GET $L
expect_eq "list leases: 403" 403 "$CODE"
as "$SA" GET /api/v1/namespaces/default/secrets
expect_eq "list secrets: 403" 403 "$CODE"
req POST $RBAC/namespaces/default/roles '{"metadata":{"name":"watch-own"},"rules":[{"apiGroups":["coordination.k8s.io"],"resources":["leases"],"resourceNames":["my-app"],"verbs":["list","watch"]}]}'
req POST $RBAC/namespaces/default/rolebindings '{"metadata":{"name":"watch-own"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"watch-own"},"subjects":[{"kind":"ServiceAccount","name":"kle","namespace":"default"}]}'
as "$SA" GET "$L?fieldSelector=metadata.name%3Dmy-app"
expect_eq "list by fieldSelector=metadata.name of a resourceNames rule: allowed" 200 "$CODE"
as "$SA" GET "$L?fieldSelector=metadata.name%3Dother"
expect_eq "... of another name: 403 naming it" \
  "403 leases.coordination.k8s.io \"other\" is forbidden: User \"$SA_USER\" cannot list resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"default\"" \
  "$CODE $(msg)"
as "$SA" GET "$L?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3D%3Dmy-app"
expect_eq "watch by metadata.name==: allowed" 200 "$CODE"
req DELETE $RBAC/namespaces/default/rolebindings/watch-own
as "$SA" GET /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/my-app
expect_eq "its lease name in another namespace: 403" 403 "$CODE"
as "$SA" POST /api/v1/namespaces/default/serviceaccounts/kle/token '{"spec":{}}'
expect_eq "create a token for itself: 403, subresource named" \
  "403 serviceaccounts \"kle\" is forbidden: User \"$SA_USER\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\"" \
  "$CODE $(msg)"
as "$SA" GET /apis/coordination.k8s.io/v1
expect_eq "discovery open to every authenticated user" 200 "$CODE"

# SelfSubjectAccessReview and SelfSubjectRulesReview.
ssar() { # VERB RESOURCE NAME
  as "$SA" POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews \
    "{\"apiVersion\":\"authorization.k8s.io/v1\",\"kind\":\"SelfSubjectAccessReview\",\"spec\":{\"resourceAttributes\":{\"namespace\":\"default\",\"verb\":\"$1\",\"group\":\"coordination.k8s.io\",\"resource\":\"$2\",\"name\":\"$3\"}}}"
  jget 'd["status"]["allowed"]' <<<"$BODY"
}
expect_eq "SSAR: update leases/my-app" True "$(ssar update leases my-app)"
expect_eq "SSAR: update leases/other" False "$(ssar update leases other)"
expect_eq "SSAR: delete leases/my-app" False "$(ssar delete leases my-app)"
as "$SA" POST /apis/authorization.k8s.io/v1/selfsubjectrulesreviews \
  '{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"default"}}'
expect_eq "SSRR: the Role's rules" '[["get", "update"], ["my-app"]]' \
  "$(jget '[[r["verbs"], r.get("resourceNames")] for r in d["status"]["resourceRules"] if r.get("resourceNames")][0]' <<<"$BODY")"
as "$SA" GET /apis/authorization.k8s.io/v1/selfsubjectaccessreviews
expect_eq "reviews are create-only: 405" 405 "$CODE"

# ClusterRole + ClusterRoleBinding to a group; a RoleBinding of a
# ClusterRole to a user.
req POST $RBAC/clusterroles '{"metadata":{"name":"cm-reader"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get","list"]}]}'
expect_eq "create ClusterRole" 201 "$CODE"
as t-dave GET /api/v1/namespaces/default/configmaps
expect_eq "user without bindings: 403" 403 "$CODE"
req POST $RBAC/clusterrolebindings '{"metadata":{"name":"sa-cm"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cm-reader"},"subjects":[{"kind":"Group","name":"system:serviceaccounts"}]}'
as "$SA" GET /api/v1/configmaps
expect_eq "ClusterRoleBinding to system:serviceaccounts: list everywhere" 200 "$CODE"
req POST $RBAC/namespaces/default/rolebindings '{"metadata":{"name":"dave-cm"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cm-reader"},"subjects":[{"kind":"Group","name":"devs"}]}'
as t-dave GET /api/v1/namespaces/default/configmaps
expect_eq "RoleBinding of a ClusterRole to a group: in its namespace" 200 "$CODE"
as t-dave GET /api/v1/namespaces/kube-system/configmaps
expect_eq "... and not in another" 403 "$CODE"
req DELETE $RBAC/namespaces/default/rolebindings/dave-cm
as t-dave GET /api/v1/namespaces/default/configmaps
expect_eq "binding deleted: 403 again" 403 "$CODE"

# Impersonation (kubectl --as): system:masters may; others may not.
as "$TOKEN" GET /api/v1/namespaces/default/secrets "" "Impersonate-User: $SA_USER"
expect_eq "admin as the service account: its 403" \
  "403 secrets is forbidden: User \"$SA_USER\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\"" \
  "$CODE $(msg)"
as "$SA" GET /api/v1/namespaces/default/secrets "" "Impersonate-User: kle-admin"
expect_eq "service account impersonating: 403" \
  "403 users \"kle-admin\" is forbidden: User \"$SA_USER\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope" \
  "$CODE $(msg)"

# The token dies with its service account, and stays dead for a new one of
# the same name (another uid).
req DELETE /api/v1/namespaces/default/serviceaccounts/kle
as "$SA" GET $L/my-app
expect_eq "service account deleted: its token gets 401" 401 "$CODE"
req POST /api/v1/namespaces/default/serviceaccounts '{"metadata":{"name":"kle"}}'
as "$SA" GET $L/my-app
expect_eq "same name recreated: the old token still gets 401" 401 "$CODE"
finish
