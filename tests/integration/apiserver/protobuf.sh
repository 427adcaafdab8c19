#!/usr/bin/env bash
# application/vnd.kubernetes.protobuf for every kind the locks use: golden
# request bodies from an encoder of the test's own, create/get/update/list/
# watch in both encodings, content negotiation, malformed bodies.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start
OUT=$(python3 "$(dirname "$0")/protobuf.py" "$SERVER" "$TOKEN" "$CA" 2>&1) && RC=0 || RC=$?
echo "$OUT"
expect_eq "protobuf checks" 0 "$RC"
req GET /api/v1/namespaces; expect_eq "server still serving" 200 "$CODE"
finish
