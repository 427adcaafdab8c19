#!/usr/bin/env bash
# Watch streams: ADDED/MODIFIED/DELETED in order, initial state, resume from
# a resourceVersion, 410 Expired beyond the kept history, BOOKMARK when
# asked, timeoutSeconds, selectors.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start --watch-history 30 --bookmark-interval 1
W=$KLE_APISERVER_DIR
L=/apis/coordination.k8s.io/v1/namespaces/default/leases

# watch_bg NAME QUERY: streams $L?QUERY into $W/NAME in the background.
watch_bg() {
  kle_curl -N "$SERVER$L?$2" >"$W/$1" 2>"$W/$1.err" &
  eval "PID_$1=$!"
}
lines() { local n; n=$(grep -c '' "$W/$1" 2>/dev/null) || true; echo "${n:-0}"; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
events() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    if l.strip():
        e=json.loads(l); o=e["object"]
        print(e["type"], o.get("metadata",{}).get("name",o.get("reason","")), o.get("metadata",{}).get("resourceVersion",o.get("code","")))' "$W/$1"; }

req POST $L '{"metadata":{"name":"before"},"spec":{"holderIdentity":"x"}}'
req GET $L; RV0=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")

# Watch from the list's resourceVersion, filtered to one name.
watch_bg named "watch=true&resourceVersion=$RV0&fieldSelector=metadata.name%3Dw1&timeoutSeconds=30"
# Watch without a resourceVersion: initial ADDED for what exists.
watch_bg all "watch=1&timeoutSeconds=30"
wait_until 10 "initial ADDED" has_lines all 1
req POST $L '{"metadata":{"name":"w1"},"spec":{"holderIdentity":"a"}}'; RVA=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
req POST $L '{"metadata":{"name":"w2"},"spec":{"holderIdentity":"a"}}'
req PUT $L/w1 '{"metadata":{"name":"w1"},"spec":{"holderIdentity":"b"}}'; RVB=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
req DELETE $L/w1; 
wait_until 10 "three events on the named watch" has_lines named 3
expect_eq "named watch: ADDED, MODIFIED, DELETED" "ADDED w1 $RVA
MODIFIED w1 $RVB
DELETED w1 $((RVB + 1))" "$(events named)"
wait_until 10 "five events on the full watch" has_lines all 5
expect_eq "full watch: initial state then changes" "ADDED before
ADDED w1
ADDED w2
MODIFIED w1
DELETED w1" "$(events all | cut -d' ' -f1,2)"
kill "$PID_named" "$PID_all" 2>/dev/null || true

# Resume from a resourceVersion inside the history: only later events.
watch_bg resume "watch=true&resourceVersion=$RVA&timeoutSeconds=30"
wait_until 10 "resumed events" has_lines resume 3
expect_eq "resume from $RVA" "ADDED w2
MODIFIED w1
DELETED w1" "$(events resume | cut -d' ' -f1,2)"
kill "$PID_resume" 2>/dev/null || true

# Labels.
watch_bg labelled "watch=true&resourceVersion=$((RVB + 1))&labelSelector=team%3Dred&timeoutSeconds=30"
req POST $L '{"metadata":{"name":"blue","labels":{"team":"blue"}},"spec":{}}'
req POST $L '{"metadata":{"name":"red","labels":{"team":"red"}},"spec":{}}'
wait_until 10 "labelled event" has_lines labelled 1
expect_eq "labelSelector watch" "ADDED red" "$(events labelled | cut -d' ' -f1,2)"
kill "$PID_labelled" 2>/dev/null || true
# Objects moving into and out of a selector: ADDED and DELETED.
watch_bg moving "watch=true&resourceVersion=$((RVB + 3))&labelSelector=team%3Dred&timeoutSeconds=30"
req PATCH $L/blue '{"metadata":{"labels":{"team":"red"}}}' application/merge-patch+json; RVIN=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
req PATCH $L/blue '{"spec":{"holderIdentity":"still-red"}}' application/merge-patch+json
req PATCH $L/blue '{"metadata":{"labels":{"team":"green"}}}' application/merge-patch+json; RVOUT=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
wait_until 10 "moving events" has_lines moving 3
expect_eq "into the selector: ADDED; out of it: DELETED at the new resourceVersion" "ADDED blue $RVIN
MODIFIED blue $((RVIN + 1))
DELETED blue $RVOUT" "$(events moving)"
expect_eq "DELETED carries the last matching state" red \
  "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[2])["object"]["metadata"]["labels"]["team"])' "$W/moving")"
kill "$PID_moving" 2>/dev/null || true
req GET $L; RVB=$(( $(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY") - 3 ))

# Bookmarks when asked, carrying a resourceVersion; none otherwise.
watch_bg bm "watch=true&allowWatchBookmarks=true&resourceVersion=$((RVB + 3))&timeoutSeconds=30"
watch_bg nobm "watch=true&resourceVersion=$((RVB + 3))&timeoutSeconds=3"
wait_until 10 "a BOOKMARK" grep -q BOOKMARK "$W/bm"
expect_match "BOOKMARK has the current resourceVersion" "^BOOKMARK .* $((RVB + 3))\$" "$(events bm | head -1)"
wait "$PID_nobm" 2>/dev/null || true
expect_eq "no BOOKMARK unless asked" 0 "$(grep -c BOOKMARK "$W/nobm" || true)"
kill "$PID_bm" 2>/dev/null || true

# sendInitialEvents ends the initial state with the annotated bookmark.
watch_bg sie "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan&timeoutSeconds=30"
wait_until 10 "initial-events-end bookmark" grep -q 'initial-events-end' "$W/sie"
kill "$PID_sie" 2>/dev/null || true

# events.k8s.io/v1 watchers see core/v1 events, converted.
kle_curl -N -o "$W/ev" "$SERVER/apis/events.k8s.io/v1/namespaces/default/events?watch=true&timeoutSeconds=30" &
EVW=$!
req POST /api/v1/namespaces/default/events '{"metadata":{"name":"e1"},"involvedObject":{"kind":"Lease","name":"red"},"reason":"LeaderElection","message":"x became leader","type":"Normal"}'
wait_until 10 "converted event" grep -qs ADDED "$W/ev"
expect_eq "watch through events.k8s.io/v1" "ADDED events.k8s.io/v1 red x became leader" \
  "$(python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); o=e["object"]; print(e["type"],o["apiVersion"],o["regarding"]["name"],o["note"])' "$W/ev")"
kill "$EVW" 2>/dev/null || true

# timeoutSeconds ends the stream on time.
START=$SECONDS
CODE=$(kle_curl -N -o "$W/timeout" -w '%{http_code}' "$SERVER$L?watch=true&timeoutSeconds=1&resourceVersion=$((RVB + 3))")
expect_eq "watch with timeoutSeconds=1 answers 200" 200 "$CODE"
if [ $((SECONDS - START)) -le 5 ]; then pass "stream ended after timeoutSeconds"; else fail "stream lasted $((SECONDS - START))s"; fi

# 410 Expired: more writes than the 30 kept events, then resume from the start.
for i in $(seq 1 35); do req PUT $L/before "{\"metadata\":{\"name\":\"before\"},\"spec\":{\"holderIdentity\":\"h$i\"}}"; done
CODE=$(kle_curl -N -o "$W/expired" -w '%{http_code}' "$SERVER$L?watch=true&resourceVersion=$RV0&timeoutSeconds=10")
expect_eq "too old resourceVersion: HTTP 200 stream" 200 "$CODE"
expect_eq "ERROR event with 410 Expired" "ERROR 410 Expired Status" \
  "$(python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); o=e["object"]; print(e["type"],o["code"],o["reason"],o["kind"])' "$W/expired")"
expect_match "Expired message" 'too old resource version: '"$RV0"' \([0-9]+\)' "$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["object"]["message"])' "$W/expired")"
req GET $L; RVNOW=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")
CODE=$(kle_curl -N -o "$W/fresh" -w '%{http_code}' "$SERVER$L?watch=true&resourceVersion=$RVNOW&timeoutSeconds=1")
expect_eq "re-list and watch from the new resourceVersion works" "200 0" "$CODE $(lines fresh)"

finish
