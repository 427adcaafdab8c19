#!/usr/bin/env bash
# deploy/: every manifest parses (kubectl, offline) and says what the docs
# promise; the Dockerfile is multi-stage and runs as non-root.
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
trap 'rm -rf "$T"' EXIT
D="$KLE_SOURCE_DIR/deploy"
if ! command -v kubectl >/dev/null 2>&1; then
  echo "SKIP: kubectl is not installed on this machine; install it to check deploy/"
  exit 77
fi

KUBECONFIG=/nonexistent kubectl annotate --local -f "$D/rbac.yaml" -f "$D/deployment.yaml" \
  kle-check=1 -o json >"$T/all.json" 2>"$T/kubectl.log" || { cat "$T/kubectl.log"; fail "kubectl rejects deploy/"; }
python3 - "$T/all.json" <<'PY' || fail "manifest contents"
import json, sys
text = open(sys.argv[1]).read()
dec = json.JSONDecoder(); objs = []; i = 0
while i < len(text):
    while i < len(text) and text[i].isspace(): i += 1
    if i >= len(text): break
    o, i = dec.raw_decode(text, i)
    objs.extend(o["items"] if o.get("kind") == "List" else [o])
by = {o["kind"]: o for o in objs}
assert set(by) == {"ServiceAccount", "Role", "RoleBinding", "Deployment"}, set(by)
rules = by["Role"]["rules"]
def has(group, res, verbs, names=None):
    return any(group in r["apiGroups"] and res in r["resources"] and set(verbs) <= set(r["verbs"])
               and (names is None or r.get("resourceNames") == names) for r in rules)
assert has("coordination.k8s.io", "leases", ["get", "update"], ["my-app"]), rules
assert has("coordination.k8s.io", "leases", ["create"]), rules
assert has("", "events", ["create", "patch"]), rules
assert not any("*" in r["verbs"] or "delete" in r["verbs"] for r in rules), rules
assert by["RoleBinding"]["subjects"][0]["name"] == by["ServiceAccount"]["metadata"]["name"]
d = by["Deployment"]["spec"]
assert d["replicas"] == 3
pod = d["template"]["spec"]
assert pod["serviceAccountName"] == "kle"
assert pod["securityContext"]["runAsNonRoot"] is True
c = pod["containers"][0]
assert "--lock-name=my-app" in c["args"]
env = {e["name"]: e for e in c["env"]}
assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
assert any(a.startswith("--http-addr=") for a in c["args"])
PY
pass "rbac.yaml and deployment.yaml parse and hold what the docs say"

[ "$(grep -c '^FROM ' "$D/Dockerfile")" -ge 2 ] || fail "Dockerfile is not multi-stage"
grep -q '^FROM debian' "$D/Dockerfile" || fail "Dockerfile not on Debian"
user=$(grep '^USER ' "$D/Dockerfile" | tail -n 1 | awk '{print $2}')
[ -n "$user" ] && [ "${user%%:*}" != root ] && [ "${user%%:*}" != 0 ] || fail "Dockerfile runs as root ($user)"
pass "Dockerfile: multi-stage Debian, USER $user"
