#!/usr/bin/env bash
# kle status and kle run against a server whose 200 answers are not the
# lock's object (a Status, another kind, a Lease without spec, a duration
# that does not fit int32) or whose Lease is held by "a\u0000b": status
# fails naming what it found, run never takes the lock nor writes it. With
# the server answering normally again, run leads (so the setup could).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# count VERB CODE: requests on leases with that verb and status code.
count() {
  kle_admin GET /counters | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(sum(r["count"] for r in c["requests"]
          if r["resource"] == "leases" and r["verb"] == sys.argv[1]
          and (sys.argv[2] == "*" or r["code"] == int(sys.argv[2]))))' "$1" "$2"
}
at_least() { [ "$(count "$1" "$2")" -ge "$3" ]; }
# Five reads answered, or (a failure, checked after) a write or a start:
# one counters request and one python per poll, for loaded machines.
read_five_or_acted() {
  [ -s "$T/starts" ] && return 0
  kle_admin GET /counters | python3 -c '
import json, sys
n = {}
for r in json.load(sys.stdin)["requests"]:
    if r["resource"] == "leases":
        k = r["verb"] + ("200" if r["verb"] == "get" and r["code"] == 200 else "")
        n[k] = n.get(k, 0) + r["count"]
sys.exit(0 if n.get("get200", 0) >= 5 or n.get("create", 0) or n.get("update", 0) else 1)'
}

LEASE='"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"odd","namespace":"default","resourceVersion":"1"}'
declare -A BODIES=(
  [status]='{"kind":"Status","apiVersion":"v1","status":"Success","metadata":{}}'
  [configmap]='{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"odd"},"data":{}}'
  [null-spec]="{$LEASE,\"spec\":null}"
  [no-spec]="{$LEASE}"
  [huge-duration]="{$LEASE,\"spec\":{\"holderIdentity\":\"z\",\"leaseDurationSeconds\":4294967297}}"
  [held-no-duration]="{$LEASE,\"spec\":{\"holderIdentity\":\"z\"}}"
)
declare -A FOUND=(
  [status]='the answer is a Status'
  [configmap]='the answer is a ConfigMap, not a Lease object'
  [null-spec]='spec is null or missing, not an object'
  [no-spec]='spec is null or missing, not an object'
  [huge-duration]='leaseDurationSeconds is 4294967297, not an integer in 0..2147483647'
  [held-no-duration]='leaseDurationSeconds is missing for holder "z"'
)

LOCK=odd
for k in status configmap null-spec no-spec huge-duration held-no-duration; do
  kle_admin DELETE /counters >/dev/null
  kle_admin POST /faults "{\"verb\":\"get\",\"resource\":\"leases\",\"name\":\"odd\",\"body\":${BODIES[$k]}}" >/dev/null ||
    fail "cannot add the $k fault"
  out=$("$KLE" status --lock-name odd 2>&1) && fail "kle status exited 0 on a $k answer: $out"
  grep -qF "${FOUND[$k]}" <<<"$out" || fail "kle status on a $k answer does not say what it found: $out"
  "$KLE" status --lock-name odd -o json >/dev/null 2>&1 && fail "kle status -o json exited 0 on a $k answer"

  : >"$T/starts"
  : >"$T/a.log"
  start_replica a
  # Five reads answered so (well past the 2 s lease a free lock would need: none).
  wait_until 90 "five reads of the $k answer" read_five_or_acted
  [ -s "$T/starts" ] && fail "kle run started its command on a $k answer: $(cat "$T/starts")"
  [ "$(count create '*')" -eq 0 ] && [ "$(count update '*')" -eq 0 ] ||
    fail "kle run wrote the lock on a $k answer"
  grep -qF "${FOUND[$k]}" "$T/a.log" || fail "kle run does not log what it found in the $k answer"
  kill -TERM "$PID_a"
  wait "$PID_a" 2>/dev/null
  kle_admin DELETE /faults >/dev/null
  pass "a $k answer is unreadable: status fails, run neither leads nor writes"
done

# A live Lease held by "a\u0000b": kle run --identity a must not take it.
renew=$(date -u +%Y-%m-%dT%H:%M:%S.000000Z)
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases" --data-binary \
  "{\"metadata\":{\"name\":\"nul\"},\"spec\":{\"holderIdentity\":\"a\\u0000b\",\"leaseDurationSeconds\":3600,\"renewTime\":\"$renew\",\"leaseTransitions\":7}}" ||
  fail "cannot create the nul Lease"
LOCK=nul
kle_admin DELETE /counters >/dev/null
: >"$T/starts"
start_replica a
wait_until 90 "five reads of the nul Lease" read_five_or_acted
[ -s "$T/starts" ] && fail "kle run --identity a took the lease of \"a\\u0000b\": $(cat "$T/starts")"
[ "$(count update '*')" -eq 0 ] || fail "kle run --identity a wrote the lease of \"a\\u0000b\""
kle_curl "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases/nul" |
  python3 -c 'import json,sys; s=json.load(sys.stdin)["spec"]; sys.exit(s["holderIdentity"] != "a\u0000b" or s["leaseTransitions"] != 7)' ||
  fail "the nul Lease changed"
kill -TERM "$PID_a"
wait "$PID_a" 2>/dev/null
"$KLE" status --lock-name nul -o json | python3 -c 'import json,sys; sys.exit(json.load(sys.stdin)["holderIdentity"] != "a\u0000b")' ||
  fail "kle status -o json does not show the holder's every byte"
pass "a live lease of \"a\\u0000b\" is not taken by a"

# Identities the API would not give back are refused before anything runs.
for id in $'a\nb' $'a\e[31m' $'\xff' ''; do
  out=$(timeout 20 "$KLE" run --lock-name odd --identity "$id" "${TIMINGS[@]}" -- sh -c 'echo ran >"$0"' "$T/ran" 2>&1) &&
    fail "kle run accepted the identity $(printf %q "$id")"
  grep -qE "identity (contains control character|is not valid UTF-8)|an identity is required|--identity: empty" <<<"$out" ||
    fail "kle run --identity $(printf %q "$id") does not name the rule: $out"
  [ -e "$T/ran" ] && fail "kle run ran its command with identity $(printf %q "$id")"
done
pass "identities with control characters, invalid UTF-8 or empty are refused"

# The positive control: answered normally, the same replica leads.
LOCK=odd
start_replica a
wait_until 60 "a leads once the answers are normal" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
pass "answered normally, a leads"
