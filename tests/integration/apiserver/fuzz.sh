#!/usr/bin/env bash
# Random odd requests never crash the server, never get a dropped
# connection or a 5xx, and the server still shuts down cleanly (under
# ASan: no leaks, no undefined behaviour) afterwards.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start
OUT=$(python3 "$(dirname "$0")/fuzz.py" "$SERVER" "$TOKEN" "$CA" 7 600 2>&1) && RC=0 || RC=$?
echo "$OUT"
expect_eq "600 random requests all answered without 5xx" 0 "$RC"
req GET /api/v1/namespaces; expect_eq "server still serving" 200 "$CODE"
finish
