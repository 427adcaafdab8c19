#!/usr/bin/env bash
# kle run --follow watch (the default) and poll, and kle status -w: every
# change of the lock printed as it happens; a released lease taken by a
# watching replica within a round trip, not at its next poll.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 4s --renew-deadline 3s --retry-period 1s)

# kle status -w from before the lock exists.
"$KLE" status --lock-name e2e -w >"$T/watch.txt" 2>"$T/watch.err" &
WPID=$!
KLE_PIDS+=("$WPID")
"$KLE" status --lock-name e2e -o json -w >"$T/watch.json" 2>&1 &
JPID=$!
KLE_PIDS+=("$JPID")
wait_until 10 "status -w shows the missing lock" grep -q "(does not exist yet)" "$T/watch.txt"

start_replica a
wait_until 20 "a leads" holder_is a
start_replica b
start_replica c --follow poll
sleep 2
# The polling c is held still over the release (its next poll could come
# right then, by chance): the watching b must take it within a round trip.
kill -STOP "$PID_c"
kill -TERM "$PID_a"
wait_until 10 "b or c leads" holder_not a
h=$(holder)
kill -CONT "$PID_c"
[ "$h" = b ] || fail "$h took the released lease, not the watching b"
pass "the watching replica b took the released lease"

wait_until 10 "status -w shows b" grep -q " b " "$T/watch.txt"
kill -TERM "$PID_b"
wait_until 10 "c leads (polling)" holder_is c
wait_until 10 "status -w shows c" grep -q " c " "$T/watch.txt"
kill -TERM "$WPID" "$JPID"
wait "$WPID" || fail "status -w did not exit 0 on SIGTERM"
wait "$JPID" || fail "status -w -o json did not exit 0 on SIGTERM"
# One line per change of the record, in order: missing, a, released, b, released, c.
seq=$(awk 'NR > 1 {print substr($0, 26, 32)}' "$T/watch.txt" | sed 's/ *$//' | uniq | tr '\n' ',')
[ "$seq" = "(does not exist yet),a,(released),b,(released),c," ] || fail "status -w printed: $seq"
# Renewals change the record: a line each (a renewed about every second).
[ "$(grep -c ' a ' "$T/watch.txt")" -ge 3 ] || fail "status -w missed a's renewals"
python3 - "$T/watch.json" <<'PY' || fail "status -o json -w: $(head -3 "$T/watch.json")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
holders = [l.get("holderIdentity") for l in lines if l["exists"]]
assert lines[0]["exists"] is False and "a" in holders and "c" in holders, lines[:3]
PY
pass "kle status -w prints every change as it happens, as a table and as JSON lines"

# From the records: a's release (its renewTime) to b's takeover record (its
# acquireTime, taken when b decided): b tried when it saw the release.
took=$(python3 - "$T/watch.json" <<'PY'
import datetime, json, sys
def t(s): return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
lines = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["exists"]]
rel = next(l for l in lines if l["holderIdentity"] == "" and l["leaderTransitions"] == 0)
b = next(l for l in lines if l["holderIdentity"] == "b")
print(int((t(b["acquireTime"]) - t(rel["renewTime"])) * 1000))
PY
) || fail "no release and takeover in the JSON lines"
[ "$took" -lt 1000 ] || fail "b took the released lease $took ms after the release"
pass "b wrote its takeover $took ms after a's release"

