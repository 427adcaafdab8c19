#!/usr/bin/env bash
# At least 200 concurrent connections, most of them watches, served without
# loss: every watch sees every change, every request is answered; then a
# clean SIGTERM shutdown with the watches still open.
. "$(dirname "$0")/lib.sh"
kle_apiserver_start
W=$KLE_APISERVER_DIR
L=/apis/coordination.k8s.io/v1/namespaces/default/leases
NWATCH=200
NREQ=60
CHANGES=5

req POST $L '{"metadata":{"name":"hot"},"spec":{"holderIdentity":"h0"}}'
RV=$(jget 'd["metadata"]["resourceVersion"]' <<<"$BODY")

# One curl process holds all watches (parallel transfers), another all requests.
mkdir -p "$W/streams"
: >"$W/watch.cfg"
for i in $(seq $NWATCH); do
  printf 'url = "%s%s?watch=true&resourceVersion=%s&timeoutSeconds=60"\noutput = "%s/streams/w%d"\n' \
    "$SERVER" "$L" "$RV" "$W" "$i" >>"$W/watch.cfg"
done
curl -sS -N --parallel --parallel-max 300 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
  -K "$W/watch.cfg" 2>"$W/watch.err" &
WATCHERS=$!

open_conns() { ss -Htn state established "( sport = :${SERVER##*:} )" 2>/dev/null | grep -c '' || true; }
wait_until 30 "$NWATCH watch connections" bash -c "[ \$(ss -Htn state established '( sport = :${SERVER##*:} )' | grep -c '') -ge $NWATCH ]"
pass "$(open_conns) connections established"

# Plain requests in parallel while the watches are open.
: >"$W/req.cfg"
for i in $(seq $NREQ); do
  printf 'url = "%s%s/hot"\noutput = "%s/r%d"\n' "$SERVER" "$L" "$W" "$i" >>"$W/req.cfg"
done
curl -sS --parallel --parallel-max 100 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
  -K "$W/req.cfg" -w '%{http_code}\n' -o /dev/null >"$W/req.codes" 2>"$W/req.err" &
READERS=$!
for i in $(seq $CHANGES); do
  req PUT $L/hot "{\"metadata\":{\"name\":\"hot\"},\"spec\":{\"holderIdentity\":\"h$i\"}}"
done
wait "$READERS" || true
expect_eq "all $NREQ parallel requests answered 200" "$NREQ" "$(grep -c '^200$' "$W/req.codes" || true)"

all_seen() {
  local n=0 f
  for f in "$W"/streams/w*; do
    [ "$(grep -c MODIFIED "$f" 2>/dev/null || true)" -ge "$CHANGES" ] && n=$((n + 1))
  done
  [ "$n" -ge "$NWATCH" ]
}
wait_until 30 "every watch to see all $CHANGES changes" all_seen && pass "all $NWATCH watches saw all $CHANGES changes in order"
ORDER_OK=$(python3 -c 'import json,sys,glob
ok=all(" ".join(json.loads(l)["object"]["spec"]["holderIdentity"] for l in open(f)) == "h1 h2 h3 h4 h5"
       for f in glob.glob(sys.argv[1] + "/streams/w*"))
print(1 if ok else 0)' "$W")
expect_eq "events in order on every watch" 1 "$ORDER_OK"

# Watch clients that go away free their server threads promptly (no
# waiting for timeoutSeconds).
threads() { ls "/proc/$KLE_APISERVER_PID/task" | wc -l; }
: >"$W/gone.cfg"
for i in $(seq 50); do
  printf 'url = "%s%s?watch=true&resourceVersion=%s&timeoutSeconds=600"\noutput = "/dev/null"\n' \
    "$SERVER" "$L" "$RV" >>"$W/gone.cfg"
done
BEFORE=$(threads)
curl -sS -N --parallel --parallel-max 100 --cacert "$CA" -H "Authorization: Bearer $TOKEN" \
  -K "$W/gone.cfg" 2>/dev/null &
GONE=$!
wait_until 30 "50 more server threads" bash -c "[ \$(ls /proc/$KLE_APISERVER_PID/task | wc -l) -ge $((BEFORE + 50)) ]"
kill "$GONE"; wait "$GONE" 2>/dev/null || true
wait_until 15 "threads of vanished watchers to end" bash -c "[ \$(ls /proc/$KLE_APISERVER_PID/task | wc -l) -le $((BEFORE + 5)) ]" \
  && pass "threads of vanished watch clients released"

# SIGTERM with every watch still open: clean exit, streams end.
kle_apiserver_stop || fail "clean shutdown with $NWATCH open watches"
wait_until 20 "the watch client to finish" bash -c "! kill -0 $WATCHERS 2>/dev/null"
wait "$WATCHERS" 2>/dev/null || true
finish
