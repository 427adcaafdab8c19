#!/usr/bin/env bash
# The admin listener: latency, 429/500/503/504 (with a fraction and a
# count), black-hole until cleared, connections closed mid-response,
# pause/resume, ending watch streams, and request counters.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start
W=$KLE_APISERVER_DIR
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
CM=/api/v1/namespaces/default/configmaps
admin() { curl -sS -o "$W/admin.out" -w '%{http_code}' -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$ADMIN$2"; }
fault() { expect_eq "install fault $1" 201 "$(admin POST /faults "$1")"; }
clear_faults() { expect_eq "clear faults" 200 "$(admin DELETE /faults)"; }
ms_of() { python3 -c 'import sys; print(int(float(sys.argv[1])*1000))' "$1"; }

for n in slow fast cut bh p; do req POST $L "{\"metadata\":{\"name\":\"$n\"},\"spec\":{}}"; done
req POST $CM '{"metadata":{"name":"c"}}'
req POST /api/v1/namespaces/default/endpoints '{"metadata":{"name":"e"}}'

expect_eq "bad fault rejected" 400 "$(admin POST /faults '{"error":418}')"
expect_match "bad fault message" 'error must be one of' "$(cat "$W/admin.out")"

# Latency on one name only.
fault '{"verb":"get","resource":"leases","name":"slow","latencyMs":700}'
T=$(kle_curl -o /dev/null -w '%{time_total}' "$SERVER$L/slow")
if [ "$(ms_of "$T")" -ge 700 ]; then pass "latency added ($T s)"; else fail "latency: took $T s"; fi
T=$(kle_curl -o /dev/null -w '%{time_total}' "$SERVER$L/fast")
if [ "$(ms_of "$T")" -lt 600 ]; then pass "other names unaffected ($T s)"; else fail "unmatched request took $T s"; fi
admin GET /faults >/dev/null
expect_eq "fault listing counts matches" "1 slow" "$(jget 'str(d[0]["matched"])+" "+d[0]["name"]' <"$W/admin.out")"
clear_faults

# Error codes, Status reasons, Retry-After.
for spec in "429 TooManyRequests" "500 InternalError" "503 ServiceUnavailable" "504 Timeout"; do
  set -- $spec
  fault "{\"verb\":\"get\",\"resource\":\"configmaps\",\"error\":$1,\"retryAfterSeconds\":3}"
  CODE=$(kle_curl -D "$W/h" -o "$W/b" -w '%{http_code}' "$SERVER$CM/c")
  expect_eq "injected $1" "$1 $2 Status" "$CODE $(jget 'd["reason"]+" "+d["kind"]' <"$W/b")"
  if [ "$1" = 429 ]; then
    expect_eq "429 has Retry-After" "3" "$(tr -d '\r' <"$W/h" | sed -n 's/^[Rr]etry-[Aa]fter: //p')"
  fi
  clear_faults
done
req GET $CM/c; expect_eq "cleared faults no longer apply" 200 "$CODE"

# A fraction fails exactly that share; a count stops after n requests.
fault '{"resource":"endpoints","error":500,"fraction":0.5}'
FAILED=0
for i in $(seq 10); do req GET /api/v1/namespaces/default/endpoints/e; [ "$CODE" = 500 ] && FAILED=$((FAILED + 1)); done
expect_eq "fraction 0.5 fails 5 of 10" 5 "$FAILED"
clear_faults
fault '{"verb":"list","resource":"leases","error":503,"count":2}'
CODES=""
for i in 1 2 3; do req GET $L; CODES="$CODES$CODE "; done
expect_eq "count 2 fails the first two" "503 503 200 " "$CODES"
clear_faults

# Close mid-response: the write happens, the answer is cut.
fault '{"verb":"update","name":"cut","closeMidResponse":true}'
RC=0; kle_curl -o "$W/cut" -X PUT -H 'Content-Type: application/json' \
  --data-binary '{"metadata":{"name":"cut"},"spec":{"holderIdentity":"written"}}' "$SERVER$L/cut" 2>/dev/null || RC=$?
if [ "$RC" -ne 0 ]; then pass "connection closed mid-response (curl exit $RC)"; else fail "response was complete"; fi
if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$W/cut" 2>/dev/null; then fail "body was complete JSON"; else pass "body truncated"; fi
clear_faults
req GET $L/cut; expect_eq "the cut update was applied" written "$(jget 'd["spec"]["holderIdentity"]' <<<"$BODY")"

# Black-hole until cleared; others are still served meanwhile.
fault '{"verb":"get","name":"bh","blackhole":true}'
RC=0; kle_curl -o /dev/null --max-time 1 "$SERVER$L/bh" 2>/dev/null || RC=$?
expect_eq "black-holed request gets no answer (curl timeout)" 28 "$RC"
kle_curl -o "$W/bh.out" -w '%{http_code}' "$SERVER$L/bh" >"$W/bh.code" 2>/dev/null &
BH=$!
req GET $L/fast; expect_eq "other requests served during a black-hole" 200 "$CODE"
clear_faults
wait_until 10 "the held request to end after clearing" bash -c "! kill -0 $BH 2>/dev/null"
wait "$BH" 2>/dev/null || true
expect_eq "held request closed without an answer" 000 "$(cat "$W/bh.code")"
req GET $L/bh; expect_eq "after clearing, answered again" 200 "$CODE"

# Pause: nothing is answered until resume; then the waiting request completes.
expect_eq "pause" 200 "$(admin POST /pause)"
RC=0; kle_curl -o /dev/null --max-time 1 "$SERVER$L/p" 2>/dev/null || RC=$?
expect_eq "paused: no answer" 28 "$RC"
kle_curl -o /dev/null -w '%{http_code}' "$SERVER$L/p" >"$W/p.code" 2>/dev/null &
PW=$!
expect_eq "resume" 200 "$(admin POST /resume)"
wait_until 10 "the paused request to complete" bash -c "! kill -0 $PW 2>/dev/null"
wait "$PW" 2>/dev/null || true
expect_eq "request made during the pause answered after resume" 200 "$(cat "$W/p.code")"

# End all watch streams.
kle_curl -N -o "$W/w1" "$SERVER$L?watch=true&timeoutSeconds=120" &
W1=$!
kle_curl -N -o "$W/w2" "$SERVER$CM?watch=true&timeoutSeconds=120" &
W2=$!
wait_until 10 "watches to start" grep -qs ADDED "$W/w1"
wait_until 10 "watches to start" grep -qs ADDED "$W/w2"
expect_eq "close watches" 200 "$(admin POST /watches/close)"
wait_until 10 "both watch streams to end" bash -c "! kill -0 $W1 2>/dev/null && ! kill -0 $W2 2>/dev/null"
wait "$W1" "$W2" 2>/dev/null || true
req GET "$L?watch=true&timeoutSeconds=1"; expect_eq "new watches still work" 200 "$CODE"

# Counters by verb, resource and code.
expect_eq "reset counters" 200 "$(admin DELETE /counters)"
for i in 1 2 3; do req GET $L/fast; done
req GET $L/none
req PUT $L/fast '{"metadata":{"name":"fast"},"spec":{"holderIdentity":"z"}}'
CODE=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' "$SERVER$L/fast")
admin GET /counters >/dev/null
count() { jget "sum(c['count'] for c in d['requests'] if c['verb']=='$1' and c['resource']=='$2' and c['code']==$3)" <"$W/admin.out"; }
expect_eq "get leases 200" 3 "$(count get leases 200)"
expect_eq "get leases 404" 1 "$(count get leases 404)"
expect_eq "update leases 200" 1 "$(count update leases 200)"
expect_eq "unauthenticated get leases 401" 1 "$(count get leases 401)"
expect_eq "total" 6 "$(jget 'd["total"]' <"$W/admin.out")"
expect_eq "unknown admin path" 404 "$(admin GET /nope)"
expect_match "kle_admin helper" '"paused": true' "$(kle_admin POST /pause)"
kle_admin POST /resume >/dev/null
if kle_admin POST /faults '{"error":1}' >/dev/null 2>&1; then fail "kle_admin must fail on 400"; else pass "kle_admin fails on 400"; fi

finish
