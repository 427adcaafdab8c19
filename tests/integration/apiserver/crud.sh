#!/usr/bin/env bash
# Object semantics over HTTPS with a token: create/get/list/update/patch/
# delete, Conflict, AlreadyExists, NotFound, Invalid causes, 413, 400.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start

L=/apis/coordination.k8s.io/v1/namespaces/default/leases
CM=/api/v1/namespaces/default/configmaps

# Discovery and health.
req GET /version; expect_eq "/version" 200 "$CODE"
req GET /api; expect_eq "/api lists v1" '["v1"]' "$(jget 'd["versions"]' <<<"$BODY")"
req GET /apis; expect_eq "/apis groups" '["coordination.k8s.io", "events.k8s.io", "rbac.authorization.k8s.io", "apps", "authorization.k8s.io"]' \
  "$(jget '[g["name"] for g in d["groups"]]' <<<"$BODY")"
req GET /apis/coordination.k8s.io/v1
expect_eq "leases discovered" True "$(jget '[r for r in d["resources"] if r["name"]=="leases"][0]["namespaced"]' <<<"$BODY")"
req GET /api/v1; expect_match "core resources" 'configmaps.*endpoints.*events' "$(jget '[r["name"] for r in d["resources"]]' <<<"$BODY")"
expect_eq "/healthz" ok "$(curl -sS --cacert "$CA" "$SERVER/healthz")"
req GET /api/v1/namespaces
expect_eq "initial namespaces" '["default", "kube-node-lease", "kube-public", "kube-system"]' \
  "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"

# Create: server-set fields, MicroTime normalisation.
req POST $L '{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"lock"},"spec":{"holderIdentity":"a","leaseDurationSeconds":15,"acquireTime":"2026-11-21T10:00:00Z","renewTime":"2026-11-21T12:00:02.1234567+02:00","leaseTransitions":0}}'
expect_eq "create lease" 201 "$CODE"
RV1=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
expect_match "resourceVersion is decimal" '^[0-9]+$' "$RV1"
expect_match "uid set" '^[0-9a-f-]{36}$' "$(jget 'd["metadata"]["uid"]' <<<"$BODY")"
expect_match "creationTimestamp set" '^20[0-9-]+T[0-9:]+Z$' "$(jget 'd["metadata"]["creationTimestamp"]' <<<"$BODY")"
expect_eq "acquireTime as MicroTime" "2026-11-21T10:00:00.000000Z" "$(jget 'd["spec"]["acquireTime"]' <<<"$BODY")"
expect_eq "renewTime normalised to UTC micros" "2026-11-21T10:00:02.123456Z" "$(jget 'd["spec"]["renewTime"]' <<<"$BODY")"
expect_eq "namespace from URL" default "$(jget 'd["metadata"]["namespace"]' <<<"$BODY")"

# AlreadyExists.
req POST $L '{"metadata":{"name":"lock"},"spec":{}}'
expect_eq "create twice: 409" 409 "$CODE"
expect_eq "AlreadyExists reason" AlreadyExists "$(jget 'd["reason"]' <<<"$BODY")"
expect_eq "AlreadyExists message" 'leases.coordination.k8s.io "lock" already exists' "$(jget 'd["message"]' <<<"$BODY")"
expect_eq "AlreadyExists details" '{"name": "lock", "group": "coordination.k8s.io", "kind": "leases"}' "$(jget 'd["details"]' <<<"$BODY")"
expect_eq "Status shape" 'Status v1 Failure 409 {}' "$(jget '" ".join(str(x) for x in [d["kind"],d["apiVersion"],d["status"],d["code"],d["metadata"]])' <<<"$BODY")"

# Get, NotFound (named group and core group).
req GET $L/lock; expect_eq "get" 200 "$CODE"; expect_eq "get rv" "$RV1" "$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")"
req GET $L/missing; expect_eq "get missing: 404" 404 "$CODE"
expect_eq "NotFound message" 'leases.coordination.k8s.io "missing" not found' "$(jget 'd["message"]' <<<"$BODY")"
req GET $CM/missing
expect_eq "core NotFound omits group" '{"name": "missing", "kind": "configmaps"} configmaps "missing" not found' \
  "$(jget 'json.dumps(d["details"])+" "+d["message"]' <<<"$BODY")"
req POST /api/v1/namespaces/nope/configmaps '{"metadata":{"name":"x"}}'
expect_eq "create in missing namespace: 404" '404 namespaces "nope" not found' "$CODE $(jget 'd["message"]' <<<"$BODY")"

# Update: conditional and unconditional; stale rv -> Conflict.
req PUT $L/lock "{\"metadata\":{\"name\":\"lock\",\"resourceVersion\":\"$RV1\"},\"spec\":{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":15}}"
expect_eq "update with current rv" 200 "$CODE"
RV2=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
expect_eq "rv grows by one" $((RV1 + 1)) "$RV2"
req PUT $L/lock "{\"metadata\":{\"name\":\"lock\",\"resourceVersion\":\"$RV1\"},\"spec\":{\"holderIdentity\":\"c\"}}"
expect_eq "update with stale rv: 409" 409 "$CODE"
expect_eq "Conflict reason" Conflict "$(jget 'd["reason"]' <<<"$BODY")"
expect_eq "Conflict message" 'Operation cannot be fulfilled on leases.coordination.k8s.io "lock": the object has been modified; please apply your changes to the latest version and try again' "$(jget 'd["message"]' <<<"$BODY")"
req GET $L/lock; expect_eq "conflicting write not applied" b "$(jget 'd["spec"]["holderIdentity"]' <<<"$BODY")"
req PUT $L/lock '{"metadata":{"name":"lock"},"spec":{"holderIdentity":"d","leaseDurationSeconds":15}}'
expect_eq "unconditional update" "200 d" "$CODE $(jget 'd["spec"]["holderIdentity"]' <<<"$BODY")"
RV3=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
req PUT $L/lock '{"metadata":{"name":"lock"},"spec":{"holderIdentity":"d","leaseDurationSeconds":15}}'
expect_eq "no-op update keeps the resourceVersion" "$RV3" "$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")"
req PUT $L/lock '{"metadata":{"name":"lock","uid":"00000000-0000-4000-8000-000000000000"},"spec":{}}'
expect_match "update of a recreated object (uid differs): 409" '^409 Conflict .*Precondition failed: UID in precondition' "$CODE $(jget 'd["reason"]+" "+d["message"]' <<<"$BODY")"
req PUT $L/other '{"metadata":{"name":"other"},"spec":{}}'
expect_eq "update of a missing object: 404" 404 "$CODE"
req PUT $L/lock '{"metadata":{"name":"else"},"spec":{}}'
expect_eq "name mismatch: 400" 400 "$CODE"

# Validation: causes with field, reason, message.
req POST $L '{"metadata":{"name":"Bad_Name"},"spec":{"leaseDurationSeconds":0,"leaseTransitions":-1}}'
expect_eq "invalid: 422" 422 "$CODE"
expect_eq "Invalid reason and kind" "Invalid Lease" "$(jget 'd["reason"]+" "+d["details"]["kind"]' <<<"$BODY")"
expect_eq "causes fields" '["metadata.name", "spec.leaseDurationSeconds", "spec.leaseTransitions"]' "$(jget '[c["field"] for c in d["details"]["causes"]]' <<<"$BODY")"
expect_eq "causes reasons" '["FieldValueInvalid", "FieldValueInvalid", "FieldValueInvalid"]' "$(jget '[c["reason"] for c in d["details"]["causes"]]' <<<"$BODY")"
expect_match "invalid message" '^Lease.coordination.k8s.io "Bad_Name" is invalid: \[metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' "$(jget 'd["message"]' <<<"$BODY")"
req POST $L '{"metadata":{},"spec":{}}'
expect_eq "missing name" "422 FieldValueRequired" "$CODE $(jget 'd["details"]["causes"][0]["reason"]' <<<"$BODY")"
BIG=$(python3 -c 'print("x"*262100)')
req POST $CM "{\"metadata\":{\"name\":\"big\",\"annotations\":{\"a\":\"$BIG\",\"b\":\"$BIG\"}}}"
expect_eq "annotations over 256 KiB" "422 metadata.annotations FieldValueTooLong" "$CODE $(jget 'd["details"]["causes"][0]["field"]+" "+d["details"]["causes"][0]["reason"]' <<<"$BODY")"
req POST $CM "{\"metadata\":{\"name\":\"big\",\"annotations\":{\"a\":\"$BIG\"}}}"
expect_eq "annotations under 256 KiB" 201 "$CODE"
req POST $L '{"metadata":{"name":"typed"},"spec":{"leaseDurationSeconds":"15"}}'
expect_eq "wrong field type: 400" "400 BadRequest" "$CODE $(jget 'd["reason"]' <<<"$BODY")"
req POST $L '{"metadata":{"name":"t"},"spec":{"renewTime":"yesterday"}}'
expect_eq "bad time: 400" 400 "$CODE"
# []byte fields are base64, decoded as kube-apiserver decodes them.
req POST $CM '{"metadata":{"name":"bin"},"binaryData":{"b":"AAECn"}}'
expect_eq "binaryData not base64: 400" '400 ConfigMap in version "v1" cannot be handled as a ConfigMap: illegal base64 data at input byte 4' \
  "$CODE $(jget 'd["message"]' <<<"$BODY")"
req POST $CM '{"metadata":{"name":"bin"},"binaryData":{"b":"AA=A"}}'
expect_eq "binaryData with inner padding: 400" 400 "$CODE"
req POST $CM '{"metadata":{"name":"bin"},"binaryData":{"b":7}}'
expect_eq "binaryData not a string: 400" 400 "$CODE"
req POST $CM '{"metadata":{"name":"bin"},"binaryData":"acquireTime"}'
expect_eq "binaryData not a map: 400" '400 ConfigMap in version "v1" cannot be handled as a ConfigMap: json: cannot unmarshal string into Go struct field ConfigMap.binaryData of type map[string][]uint8' \
  "$CODE $(jget 'd["message"]' <<<"$BODY")"
req POST $CM '{"metadata":{"name":"bin"},"data":["k"]}'
expect_eq "data not a map: 400" 400 "$CODE"
req POST /api/v1/namespaces/default/secrets '{"metadata":{"name":"s"},"data":{"k":"c2VjcmV0!"}}'
expect_eq "Secret data not base64: 400" '400 illegal base64 data at input byte 8' \
  "$CODE $(jget 'd["message"].split(": ",1)[1]' <<<"$BODY")"
req POST $CM '{"metadata":{"name":"bin"},"binaryData":{"b":"AAH/","e":"","n":"AA\nEC"}}'
expect_eq "binaryData base64 (line breaks skipped)" 201 "$CODE"

# generateName.
req POST $CM '{"metadata":{"generateName":"gen-"},"data":{"k":"v"}}'
expect_match "generateName" '^201 gen-[a-z0-9]{5}$' "$CODE $(jget 'd["metadata"]["name"]' <<<"$BODY")"

# List with selectors.
req POST $CM '{"metadata":{"name":"one","labels":{"app":"x","tier":"a"}},"data":{"k":"1"}}'
req POST $CM '{"metadata":{"name":"two","labels":{"app":"x","tier":"b"}},"data":{"k":"2"}}'
req GET "$CM?labelSelector=app%3Dx"
expect_eq "labelSelector =" '["one", "two"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"
expect_eq "list kind" ConfigMapList "$(jget 'd["kind"]' <<<"$BODY")"
expect_match "list resourceVersion" '^[0-9]+$' "$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")"
req GET "$CM?labelSelector=app%3D%3Dx,tier!%3Da"
expect_eq "labelSelector == and !=" '["two"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"
req GET "$CM?fieldSelector=metadata.name%3Done"
expect_eq "fieldSelector metadata.name" '["one"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"
req GET "/api/v1/configmaps?fieldSelector=metadata.namespace%3Ddefault&labelSelector=tier%3Db"
expect_eq "cluster-wide list" '["two"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"

# Patch: merge and strategic merge; rv precondition.
req PATCH $CM/one '{"metadata":{"annotations":{"note":"hi"},"labels":{"tier":null}},"data":{"k2":"v2"}}' application/merge-patch+json
expect_eq "merge patch" '200 {"note": "hi"} {"app": "x"} {"k": "1", "k2": "v2"}' \
  "$CODE $(jget 'json.dumps(d["metadata"]["annotations"])+" "+json.dumps(d["metadata"]["labels"])+" "+json.dumps(d["data"])' <<<"$BODY")"
req PATCH $CM/one '{"metadata":{"labels":{"new":"1"}}}' application/strategic-merge-patch+json
expect_eq "strategic merge patch" '200 {"app": "x", "new": "1"}' "$CODE $(jget 'json.dumps(d["metadata"]["labels"])' <<<"$BODY")"
req PATCH $CM/one '{"metadata":{"resourceVersion":"1"},"data":{"k":"z"}}' application/merge-patch+json
expect_eq "patch with stale rv: 409" "409 Conflict" "$CODE $(jget 'd["reason"]' <<<"$BODY")"
req PATCH $CM/one '[{"op":"add"}]' application/json-patch+json
expect_eq "json patch unsupported: 415" 415 "$CODE"
req PATCH $CM/nothere '{"data":{}}' application/merge-patch+json
expect_eq "patch missing: 404" 404 "$CODE"

# dryRun leaves nothing behind.
req POST "$CM?dryRun=All&fieldManager=kubectl&fieldValidation=Strict&pretty=true" '{"metadata":{"name":"dry"}}'
expect_eq "dryRun create" 201 "$CODE"
req GET $CM/dry; expect_eq "dryRun stored nothing" 404 "$CODE"

# Robustness: malformed JSON, wrong kind/apiVersion, 413, unknown paths.
req POST $L '{"metadata":{"name":'
expect_eq "malformed JSON: 400" "400 BadRequest" "$CODE $(jget 'd["reason"]' <<<"$BODY")"
expect_match "parser message" 'json parse error: ' "$(jget 'd["message"]' <<<"$BODY")"
req POST $L '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}'
expect_eq "wrong apiVersion: 400" 400 "$CODE"
req POST $L '{"apiVersion":"coordination.k8s.io/v1","kind":"ConfigMap","metadata":{"name":"x"}}'
expect_eq "wrong kind: 400" 400 "$CODE"
python3 -c 'print("{\"metadata\":{\"name\":\"huge\"},\"data\":{\"k\":\"" + "x"*(3*1024*1024) + "\"}}")' >"$KLE_APISERVER_DIR/huge.json"
CODE=$(kle_curl -o "$KLE_APISERVER_DIR/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  --data-binary "@$KLE_APISERVER_DIR/huge.json" "$SERVER$CM" || true)
expect_eq "body over 3 MiB: 413" 413 "$CODE"
CODE=$(kle_curl -o "$KLE_APISERVER_DIR/out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  -H 'Transfer-Encoding: chunked' --data-binary "@$KLE_APISERVER_DIR/huge.json" "$SERVER$CM" || true)
expect_eq "chunked body over 3 MiB: 413" 413 "$CODE"
req GET /api/v1/namespaces/default/pods
expect_eq "unknown resource: 404 Status" "404 Status NotFound" "$CODE $(jget 'd["kind"]+" "+d["reason"]' <<<"$BODY")"
req GET /nowhere; expect_eq "unknown path: 404" 404 "$CODE"
req POST /api/v1/configmaps '{"metadata":{"name":"x","namespace":"default"}}'
expect_eq "create through the all-namespaces path: 405" "405 MethodNotAllowed" "$CODE $(jget 'd["reason"]' <<<"$BODY")"
req DELETE $CM; expect_eq "deletecollection: 405" 405 "$CODE"

# Nulls and wrong types anywhere get an answer (never a dropped connection).
ODD=0
for b in '{"apiVersion":null}' '{"kind":null,"metadata":{"name":"n1"}}' '{"apiVersion":5}' '{"metadata":null}' \
  '{"metadata":{"name":null}}' '{"metadata":{"name":5}}' '{"metadata":{"generateName":5}}' \
  '{"metadata":{"name":"n2","labels":null,"annotations":{"a":null}}}' '{"metadata":{"name":"n3","namespace":null}}' \
  '{"metadata":{"name":"n4","resourceVersion":null},"spec":null}' '{"metadata":{"name":"n5"},"spec":{"renewTime":null,"acquireTime":5}}' \
  '[]' '"s"' 'null' '{}'; do
  req POST $L "$b"
  case "$CODE" in 2??|4??) ;; *) ODD=$((ODD + 1)); echo "odd answer $CODE to $b" >&2 ;; esac
done
for b in '{"metadata":null}' '{"metadata":{"resourceVersion":null,"name":null}}' '{"spec":{"renewTime":5}}' 'null'; do
  req PATCH $L/n4 "$b" application/merge-patch+json
  case "$CODE" in 2??|4??) ;; *) ODD=$((ODD + 1)); echo "odd answer $CODE to patch $b" >&2 ;; esac
done
for b in '{"preconditions":null}' '{"preconditions":{"uid":null,"resourceVersion":5}}' 'null' '[1]'; do
  req DELETE $L/n4 "$b"
  case "$CODE" in 2??|4??) ;; *) ODD=$((ODD + 1)); echo "odd answer $CODE to delete $b" >&2 ;; esac
done
expect_eq "every odd body answered with a status" 0 "$ODD"

# Delete: Status Success, then NotFound; preconditions.
req DELETE $CM/two '{"preconditions":{"resourceVersion":"1"}}'
expect_eq "delete with stale precondition: 409" 409 "$CODE"
req DELETE $L/lock
expect_eq "delete" "200 Success" "$CODE $(jget 'd["status"]' <<<"$BODY")"
req GET $L/lock; expect_eq "deleted" 404 "$CODE"
req DELETE $L/lock; expect_eq "delete twice: 404" 404 "$CODE"
req DELETE /api/v1/namespaces/default; expect_eq "default namespace is protected" 403 "$CODE"

# Events in both groups, and endpoints.
req POST /api/v1/namespaces/default/events '{"metadata":{"name":"ev1"},"involvedObject":{"kind":"Lease","name":"lock","namespace":"default"},"reason":"LeaderElection","message":"a became leader","type":"Normal"}'
expect_eq "core event" 201 "$CODE"
req POST /apis/events.k8s.io/v1/namespaces/default/events '{"metadata":{"name":"ev2"},"regarding":{"kind":"Lease","name":"lock"},"reason":"LeaderElection","note":"a became leader","type":"Normal","action":"x","eventTime":"2026-11-21T10:00:00.000000Z","reportingController":"kle","reportingInstance":"a"}'
expect_eq "events.k8s.io event" 201 "$CODE"
req POST /api/v1/namespaces/default/endpoints '{"metadata":{"name":"ep"},"subsets":[]}'
expect_eq "endpoints" 201 "$CODE"
req GET "/api/v1/events?fieldSelector=involvedObject.name%3Dlock"
expect_eq "events of both APIs by involvedObject" '["ev1", "ev2"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"
req GET /api/v1/namespaces/default/events/ev2
expect_eq "events.k8s.io event read through core/v1" "v1 Lease a became leader kle" \
  "$(jget 'd["apiVersion"]+" "+d["involvedObject"]["kind"]+" "+d["message"]+" "+d["reportingComponent"]' <<<"$BODY")"
req GET /apis/events.k8s.io/v1/namespaces/default/events/ev1
expect_eq "core event read through events.k8s.io/v1" "events.k8s.io/v1 lock a became leader False" \
  "$(jget 'd["apiVersion"]+" "+d["regarding"]["name"]+" "+d["note"]+" "+str("message" in d)' <<<"$BODY")"
req PATCH /apis/events.k8s.io/v1/namespaces/default/events/ev1 '{"note":"patched"}' application/merge-patch+json
expect_eq "patch through events.k8s.io/v1" "200 patched" "$CODE $(jget 'd["note"]' <<<"$BODY")"
req GET /api/v1/namespaces/default/events/ev1
expect_eq "patched note is the core message" patched "$(jget 'd["message"]' <<<"$BODY")"
req GET "/apis/events.k8s.io/v1/events?fieldSelector=regarding.name%3Dlock"
expect_eq "events.k8s.io list selects on its own field names" '["ev1", "ev2"]' "$(jget '[i["metadata"]["name"] for i in d["items"]]' <<<"$BODY")"

finish
