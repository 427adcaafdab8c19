#!/usr/bin/env bash
# Authentication (tokens from --token-file, client certificates from
# --client-ca, 401 otherwise) and authorization (--authz-file, 403 Status),
# plus the exit status and message of bad flags.
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/kle-auth-XXXXXX")
trap 'kle_apiserver_stop >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
BIN=$(kle_apiserver__bin)

cat >"$D/tokens.csv" <<'CSV'
# token,user,uid,"groups"
t-alice,alice,u1
t-bob,bob,u2,"electors,other"
t-carol,carol,u3,""
CSV
cat >"$D/authz.json" <<'JSON'
{"rules": [
  {"subjects": ["alice"], "verbs": ["get", "list", "watch"], "apiGroups": ["coordination.k8s.io"],
   "resources": ["leases"], "namespaces": ["default"]},
  {"subjects": ["group:electors"], "verbs": ["get", "update"], "apiGroups": ["coordination.k8s.io"],
   "resources": ["leases"], "resourceNames": ["lock"]},
  {"subjects": ["group:electors"], "verbs": ["create"], "apiGroups": ["coordination.k8s.io"],
   "resources": ["leases"]},
  {"subjects": ["user:certuser"], "verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}
]}
JSON

# A client CA, a client certificate it signed (CN user, O groups), and one
# from a CA the server does not trust.
mkcert() { # DIR-PREFIX SUBJECT CA-PREFIX
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
    -subj "$2" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -days 2 \
    -out "$1.crt" 2>/dev/null
}
for ca in ca other-ca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/$ca.key" \
    -subj "/CN=$ca" -days 2 -out "$D/$ca.crt" 2>/dev/null
done
mkcert "$D/client" "/CN=certuser/O=team-a/O=team-b" "$D/ca"
mkcert "$D/rogue" "/CN=rogue" "$D/other-ca"

kle_apiserver_start --token-file "$D/tokens.csv" --authz-file "$D/authz.json" --client-ca "$D/ca.crt"
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
req POST $L '{"metadata":{"name":"lock"},"spec":{}}'
expect_eq "admin token (system:masters) bypasses the rules" 201 "$CODE"

# as TOKEN METHOD PATH [BODY]: CODE and BODY as that token's user.
as() {
  local tok=$1 method=$2 path=$3 data=${4-} out
  out=$(mktemp)
  CODE=$(curl -sS --cacert "$CA" -o "$out" -w '%{http_code}' -H "Authorization: Bearer $tok" \
    -H 'Content-Type: application/json' -X "$method" ${data:+--data-binary "$data"} "$SERVER$path" || true)
  BODY=$(cat "$out"); rm -f "$out"
}

CODE=$(curl -sS --cacert "$CA" -o "$D/out" -w '%{http_code}' "$SERVER$L")
expect_eq "anonymous: 401" 401 "$CODE"
expect_eq "401 Status" '{"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}' "$(jget 'd' <"$D/out")"
as wrong-token GET $L; expect_eq "unknown token: 401" 401 "$CODE"
CODE=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' -H "Authorization: Basic YTpi" "$SERVER/api")
expect_eq "basic auth: 401" 401 "$CODE"
CODE=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$SERVER/version")
expect_eq "anonymous /version: 401" 401 "$CODE"

as t-alice GET $L/lock; expect_eq "alice may get" 200 "$CODE"
as t-alice GET "$L?watch=true&timeoutSeconds=1"; expect_eq "alice may watch" 200 "$CODE"
as t-alice PUT $L/lock '{"metadata":{"name":"lock"},"spec":{"holderIdentity":"alice"}}'
expect_eq "alice may not update: 403" "403 Forbidden" "$CODE $(jget 'd["reason"]' <<<"$BODY")"
expect_eq "403 message" 'leases.coordination.k8s.io "lock" is forbidden: User "alice" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "default"' "$(jget 'd["message"]' <<<"$BODY")"
expect_eq "403 details" '{"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}' "$(jget 'd["details"]' <<<"$BODY")"
as t-alice GET /apis/coordination.k8s.io/v1/namespaces/kube-system/leases
expect_eq "alice may not list kube-system" 'leases.coordination.k8s.io is forbidden: User "alice" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system"' "$(jget 'd["message"]' <<<"$BODY")"
as t-alice GET /apis/coordination.k8s.io/v1/leases
expect_match "cluster-scope message" 'cannot list resource "leases" in API group "coordination.k8s.io" at the cluster scope$' "$(jget 'd["message"]' <<<"$BODY")"

as t-bob PUT $L/lock '{"metadata":{"name":"lock"},"spec":{"holderIdentity":"bob"}}'
expect_eq "group rule with resourceNames allows bob to update lock" 200 "$CODE"
as t-bob POST $L '{"metadata":{"name":"other"},"spec":{}}'; expect_eq "bob may create" 201 "$CODE"
as t-bob PUT $L/other '{"metadata":{"name":"other"},"spec":{}}'
expect_eq "resourceNames limits bob's update" 403 "$CODE"
as t-bob DELETE $L/lock; expect_eq "bob may not delete" 403 "$CODE"
as t-carol GET /api/v1/namespaces/default/configmaps/x
expect_eq "core group 403 message" 'configmaps "x" is forbidden: User "carol" cannot get resource "configmaps" in API group "" in the namespace "default"' "$(jget 'd["message"]' <<<"$BODY")"
as t-carol GET /api; expect_eq "discovery for any authenticated user" 200 "$CODE"

# Client certificates.
CODE=$(curl -sS --cacert "$CA" --cert "$D/client.crt" --key "$D/client.key" -o "$D/out" -w '%{http_code}' \
  -H 'Content-Type: application/json' -X POST --data-binary '{"metadata":{"name":"bycert"}}' \
  "$SERVER/api/v1/namespaces/default/configmaps")
expect_eq "client certificate user may create configmaps" 201 "$CODE"
CODE=$(curl -sS --cacert "$CA" --cert "$D/client.crt" --key "$D/client.key" -o "$D/out" -w '%{http_code}' "$SERVER$L/lock")
expect_eq "CN is the user" '403 User "certuser"' "$CODE $(jget 'd["message"]' <"$D/out" | grep -o 'User "[a-z]*"')"
CODE=$(curl -sS --cacert "$CA" --cert "$D/rogue.crt" --key "$D/rogue.key" -o /dev/null -w '%{http_code}' "$SERVER/api" || echo failed)
expect_match "certificate from an untrusted CA is refused" '^(401|failed|000)' "$CODE"
kle_apiserver_stop || fail "clean shutdown"

# Groups from O: a rule for group team-b admits the certificate.
cat >"$D/authz2.json" <<'JSON'
{"rules": [{"subjects": ["group:team-b"], "verbs": ["get"], "apiGroups": ["coordination.k8s.io"], "resources": ["leases"]}]}
JSON
kle_apiserver_start --client-ca "$D/ca.crt" --authz-file "$D/authz2.json"
req POST $L '{"metadata":{"name":"lock"},"spec":{}}'
CODE=$(curl -sS --cacert "$CA" --cert "$D/client.crt" --key "$D/client.key" -o /dev/null -w '%{http_code}' "$SERVER$L/lock")
expect_eq "O values are groups" 200 "$CODE"
kle_apiserver_stop || fail "clean shutdown"

# A given serving certificate (--tls-cert/--tls-key), its CA in the kubeconfig.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/server.key" \
  -subj "/CN=kle-test-server" -out "$D/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$D/san.ext"
openssl x509 -req -in "$D/server.csr" -CA "$D/ca.crt" -CAkey "$D/ca.key" -CAcreateserial -days 2 \
  -extfile "$D/san.ext" -out "$D/server.crt" 2>/dev/null
kle_apiserver_start --tls-cert "$D/server.crt" --tls-key "$D/server.key" --tls-ca "$D/ca.crt"
CODE=$(curl -sS --cacert "$D/ca.crt" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$SERVER/api")
expect_eq "given serving certificate verifies against its CA" 200 "$CODE"
expect_eq "kubeconfig carries the given CA" "$(base64 -w0 <"$D/ca.crt")" \
  "$(sed -n 's/^ *certificate-authority-data: //p' "$KUBECONFIG")"
kle_apiserver_stop || fail "clean shutdown"

# --insecure-http only when asked; tokens are still required.
kle_apiserver_start --insecure-http
expect_match "insecure server URL" '^http://127\.0\.0\.1:[0-9]+$' "$SERVER"
expect_eq "plain HTTP with token" 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$SERVER/api")"
expect_eq "plain HTTP without token" 401 "$(curl -sS -o /dev/null -w '%{http_code}' "$SERVER/api")"
kle_apiserver_stop || fail "clean shutdown"

# IPv6 loopback.
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
  RC=0
  "$BIN" --listen '[::1]:0' --write-env "$D/env6" --write-ca "$D/ca6.crt" --write-kubeconfig "$D/kc6" >"$D/log6" 2>&1 &
  P6=$!
  wait_until 30 "IPv6 kubeconfig" test -f "$D/kc6"
  S6=$(sed -n 's/^SERVER=//p' "$D/env6"); T6=$(sed -n 's/^TOKEN=//p' "$D/env6")
  expect_match "IPv6 URL" '^https://\[::1\]:[0-9]+$' "$S6"
  expect_eq "IPv6 request" 200 "$(curl -sS --cacert "$D/ca6.crt" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T6" "$S6/api")"
  kill -TERM "$P6"; wait "$P6" || RC=$?
  expect_eq "IPv6 server exits cleanly" 0 "$RC"
fi

# Bad flags and inputs: exit 2 with one line naming what and where.
badflag() { # WHAT EXPECTED-REGEX ARGS...
  local what=$1 re=$2 rc=0 out
  shift 2
  out=$(timeout 20 "$BIN" --listen 127.0.0.1:0 "$@" 2>&1) || rc=$?
  expect_eq "$what: exit 2" 2 "$rc"
  expect_match "$what: message" "$re" "$out"
}
printf 't-only-token\n' >"$D/bad.csv"
printf '{"rules": [{"subjects": "alice"}]}' >"$D/bad.json"
badflag "unknown flag" 'unknown flag --frobnicate' --frobnicate
badflag "token file line" "--token-file $D/bad.csv:1: expected token,user,uid" --token-file "$D/bad.csv"
badflag "missing token file" "$D/nope.csv: No such file" --token-file "$D/nope.csv"
badflag "authz file" "--authz-file $D/bad.json: rules\\[0\\].subjects must be a list" --authz-file "$D/bad.json"
badflag "listen address" '--listen nowhere: expected HOST:PORT' --listen nowhere
badflag "admin listener not loopback" 'must be a loopback address' --admin-listen 0.0.0.0:0
printf 'short\n' >"$D/short-token"
badflag "admin token file" "--admin-token-file $D/short-token: expected one token" --admin-token-file "$D/short-token"
badflag "tls pair" '--tls-cert and --tls-key must be given together' --tls-cert "$D/ca.crt"

finish
