#!/usr/bin/env bash
# What a new user sees: help, kle status -o json, setup errors, versions.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"

# kle status takes no timings: its help does not offer --lease-duration.
out=$("$KLE" status --help) || fail "kle status --help: exit $?"
grep -q -- '--lease-duration' <<<"$out" && fail "kle status --help lists --lease-duration"
# Captured first: grep -q would stop reading, and kle, writing a help longer
# than one stdio buffer, end on SIGPIPE under pipefail.
out=$("$KLE" run --help) || fail "kle run --help: exit $?"
grep -q -- '--lease-duration D' <<<"$out" || fail "kle run --help lacks --lease-duration"
pass "kle status --help has no --lease-duration; kle run --help has it"

# kle-apiserver --version: one line, exit 0.
out=$("$KLE_BUILD_DIR/src/apiserver/kle-apiserver" --version) || fail "kle-apiserver --version: exit $?"
[[ "$out" =~ ^kle-apiserver\ [0-9]+\.[0-9]+\.[0-9]+\ \(libkle\ [0-9.]+\)$ ]] || fail "kle-apiserver --version: $out"
pass "$out"

# A missing kubeconfig: one "kle: " line (as for a bad flag), exit 1.
out=$("$KLE" status --kubeconfig "$T/nonexistent" --lock-name x 2>&1 >/dev/null); rc=$?
[ "$rc" -eq 1 ] || fail "missing kubeconfig: exit $rc"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "missing kubeconfig: more than one line: $out"
[[ "$out" == "kle: cannot connect: kubeconfig $T/nonexistent: cannot read: No such file or directory" ]] ||
  fail "missing kubeconfig: $out"
# kle run: 125, kle's own failure, which no common command exits with.
out=$(KUBECONFIG="$T/nonexistent" "$KLE" run --lock-name x -- true 2>&1 >/dev/null); rc=$?
[ "$rc" -eq 125 ] || fail "kle run, missing kubeconfig: exit $rc"
[ "$(wc -l <<<"$out")" -eq 1 ] || fail "kle run, missing kubeconfig: more than one line: $out"
grep -q '^kle: cannot connect: ' <<<"$out" || fail "kle run, missing kubeconfig: $out"
pass "missing kubeconfig: $out"

# kle status -o json: renewedSecondsAgo in seconds with milliseconds
# precision, never negative (a renewTime ahead of this machine's clock).
kle_apiserver_start || exit 1
lease() { # lease NAME RENEWTIME
  curl -sS --fail-with-body --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -X POST "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases" \
    --data-binary "{\"metadata\":{\"name\":\"$1\"},\"spec\":{\"holderIdentity\":\"h\",\"leaseDurationSeconds\":15,\"acquireTime\":\"$2\",\"renewTime\":\"$2\",\"leaseTransitions\":0}}" >/dev/null ||
    fail "create lease $1"
}
lease past "$(date -u -d "@$(python3 -c 'import time; print(time.time() - 2.5)')" +%Y-%m-%dT%H:%M:%S.%6NZ)"
lease future "$(date -u -d '60 seconds' +%Y-%m-%dT%H:%M:%S.%6NZ)"
past=$("$KLE" status --lock-name past -o json) || fail "status past"
future=$("$KLE" status --lock-name future -o json) || fail "status future"
grep -Eq '"renewedSecondsAgo":[0-9]+\.[0-9]{3},$' <<<"$past" || fail "renewedSecondsAgo of past: $past"
python3 - "$past" "$future" <<'PY' || fail "renewedSecondsAgo: $past $future"
import json, sys
p, f = (json.loads(a)["renewedSecondsAgo"] for a in sys.argv[1:])
assert 2.5 <= p < 30, p
assert f == 0, f
PY
grep -Eq '"renewedSecondsAgo":0\.000,$' <<<"$future" || fail "renewedSecondsAgo of future: $future"
pass "renewedSecondsAgo: $(grep renewedSecondsAgo <<<"$past") and, ahead of our clock, $(grep renewedSecondsAgo <<<"$future")"
