#!/usr/bin/env bash
# --data-dir keeps objects and the resourceVersion counter across a clean
# restart and across SIGKILL right after an acknowledged write; without it
# everything is in memory.
. "$(dirname "$0")/lib.sh"
D=$(mktemp -d "${TMPDIR:-/tmp}/kle-data-XXXXXX")
trap 'kle_apiserver_stop >/dev/null 2>&1 || true; rm -rf "$D"' EXIT
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
CM=/api/v1/namespaces/default/configmaps

kle_apiserver_start --data-dir "$D/data"
req POST $L '{"metadata":{"name":"keep"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15}}'
UID1=$(jget 'd["metadata"]["uid"]' <<<"$BODY")
req PUT $L/keep '{"metadata":{"name":"keep"},"spec":{"holderIdentity":"b","leaseDurationSeconds":15}}'
RVKEEP=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
req POST $CM '{"metadata":{"name":"gone"},"data":{"a":"b"}}'
req DELETE $CM/gone
req POST /api/v1/namespaces '{"metadata":{"name":"team"}}'
expect_eq "create namespace" 201 "$CODE"
req GET $L; RV=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
expect_eq "state file written" yes "$([ -s "$D/data/state.json" ] && echo yes)"
kle_apiserver_stop || fail "clean shutdown"

kle_apiserver_start --data-dir "$D/data"
req GET $L/keep
expect_eq "object survives a restart" "200 b $RVKEEP $UID1" \
  "$CODE $(jget 'd["spec"]["holderIdentity"]+" "+d["metadata"]["resourceVersion"]+" "+d["metadata"]["uid"]' <<<"$BODY")"
req GET $CM/gone; expect_eq "deleted object stays deleted" 404 "$CODE"
req GET /api/v1/namespaces/team; expect_eq "created namespace survives" 200 "$CODE"
req GET $L; expect_eq "resourceVersion counter survives" "$RV" "$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")"
req POST $L '{"metadata":{"name":"after"},"spec":{}}'
expect_eq "next write continues the counter" $((RV + 1)) "$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")"
CODE=$(kle_curl -N -o "$KLE_APISERVER_DIR/w" -w '%{http_code}' "$SERVER$L?watch=true&resourceVersion=$RVKEEP&timeoutSeconds=5")
expect_match "watch from before the restart: 410 Expired" '"code":410' "$(head -1 "$KLE_APISERVER_DIR/w")"

# kle_apiserver_restart keeps the URL, token, CA and kubeconfig.
OLD="$SERVER $TOKEN $(cat "$CA")"
kle_apiserver_restart
expect_eq "restart keeps URL, token and CA" "$OLD" "$SERVER $TOKEN $(cat "$CA")"
req GET $L/after; expect_eq "served again after restart" 200 "$CODE"

# SIGKILL right after the server acknowledged a write: the write is kept.
req PUT $L/keep '{"metadata":{"name":"keep"},"spec":{"holderIdentity":"c","leaseDurationSeconds":15}}'
expect_eq "acknowledged update" 200 "$CODE"
kill -KILL "$KLE_APISERVER_PID"; wait "$KLE_APISERVER_PID" 2>/dev/null || true
KLE_APISERVER_PID=; kle_apiserver_stop
expect_eq "no temporary file left behind that replaces state" yes "$([ -s "$D/data/state.json" ] && echo yes)"
kle_apiserver_start --data-dir "$D/data"
req GET $L/keep
expect_eq "acknowledged write survives SIGKILL" "200 c" "$CODE $(jget 'd["spec"]["holderIdentity"]' <<<"$BODY")"
kle_apiserver_stop || fail "clean shutdown"

# A damaged state file is refused with the file named; exit 2.
printf '{"resourceVersion":' >"$D/data/state.json"
RC=0; OUT=$(timeout 20 "$(kle_apiserver__bin)" --listen 127.0.0.1:0 --data-dir "$D/data" 2>&1) || RC=$?
expect_eq "damaged state: exit 2" 2 "$RC"
expect_match "damaged state: message names the file" "$D/data/state.json: not a kle-apiserver state file" "$OUT"

# Without --data-dir nothing survives.
kle_apiserver_start
req POST $L '{"metadata":{"name":"mem"},"spec":{}}'
kle_apiserver_stop || fail "clean shutdown"
kle_apiserver_start
req GET $L/mem; expect_eq "in-memory server forgets" 404 "$CODE"

finish
