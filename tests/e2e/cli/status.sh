#!/usr/bin/env bash
# kle status: -w prints holder changes only on a terminal and every change
# elsewhere (--changes chooses), also for a MultiLock's two objects; "does
# not exist yet" before the lock is made, "(deleted)" after; JSON lines
# name type, namespace and name; the one-shot JSON keeps its documented
# fields; ages as kubectl prints them; exit codes 0, 3 and 4 (--is-leader).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 2s --renew-deadline 1.5s --retry-period 300ms)

# kle status -w on a terminal (a pty), until $T/stop-tty exists.
python3 - "$T/tty.txt" "$T/stop-tty" "$KLE" status --lock-name e2e -w <<'PY' &
import os, pty, select, signal, sys, time
out, stop, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
with open(out, "wb") as f:
    while True:
        if os.path.exists(stop):
            os.kill(pid, signal.SIGINT)
            stop = "/nonexistent"
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            f.write(data)
            f.flush()
os.waitpid(pid, 0)
PY
TTY=$!
"$KLE" status --lock-name e2e -w >"$T/all.txt" 2>"$T/all.err" &
ALL=$!
"$KLE" status --lock-name e2e -w --changes holder -o json >"$T/holder.json" 2>&1 &
JS=$!
KLE_PIDS+=("$TTY" "$ALL" "$JS")
wait_until 10 "the watchers see no lock yet" grep -q "(does not exist yet)" "$T/all.txt"
wait_until 10 "the terminal sees no lock yet" grep -q "(does not exist yet)" "$T/tty.txt"
start_replica a
wait_until 20 "a leads" holder_is a
sleep 1.5 # renewals
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"
kill -TERM "$PID_a"
wait "$PID_a"
wait_until 10 "b leads" holder_is b
sleep 1
touch "$T/stop-tty"
kill -INT "$ALL" "$JS"
wait "$ALL" || fail "status -w did not exit 0 on SIGINT"
wait "$JS" || fail "status -w -o json did not exit 0 on SIGINT"
wait "$TTY"
# Every change when not a terminal: a's renewals are lines of their own.
[ "$(grep -c '^[^ ]* a ' "$T/all.txt")" -ge 3 ] || fail "status -w (not a terminal) missed renewals: $(cat "$T/all.txt")"
# Holder changes only on a terminal: each holder once, in order.
seq=$(tr -d '\r' <"$T/tty.txt" | awk 'NR > 1 {print substr($0, 26, 32)}' | sed 's/ *$//' | tr '\n' ',')
[ "$seq" = "(does not exist yet),a,(released),b," ] || fail "status -w on a terminal printed: $seq"
python3 - "$T/holder.json" <<'PY' || fail "status -w --changes holder -o json: $(cat "$T/holder.json")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
seq = [l.get("holderIdentity") if l["exists"] else None for l in lines]
assert seq == [None, "a", "", "b"], seq
for l in lines:
    assert (l["type"], l["namespace"], l["name"], l["lock"]) == \
        ("leases", "default", "e2e", "leases/default/e2e"), l
    assert l["time"].endswith("Z"), l
assert lines[0]["existed"] is False, lines[0]
PY
pass "status -w: holder changes on a terminal (and --changes holder), every change otherwise; JSON lines name the lock"

# Exit codes a script can use, and the one-shot output.
"$KLE" status --lock-name e2e --is-leader b || fail "--is-leader b: exit $?, b leads"
"$KLE" status --lock-name e2e --is-leader a; rc=$?
[ "$rc" -eq 4 ] || fail "--is-leader a: exit $rc, want 4"
"$KLE" status --lock-name never --is-leader a 2>/dev/null; rc=$?
[ "$rc" -eq 3 ] || fail "--is-leader on a lock never made: exit $rc, want 3"
json=$("$KLE" status --lock-name e2e -o json) || fail "status -o json"
python3 - "$json" <<'PY' || fail "status -o json fields: $json"
import json, sys
d = json.loads(sys.argv[1])
want = {"holderIdentity", "acquireTime", "renewTime", "leaseDurationSeconds", "leaderTransitions",
        "expired", "renewedSecondsAgo", "lock", "type", "namespace", "name", "exists"}
assert set(d) == want, sorted(set(d) ^ want)
assert d["holderIdentity"] == "b" and d["exists"] is True and d["name"] == "e2e", d
PY
json=$("$KLE" status --lock-name never -o json 2>/dev/null)
[ "$json" = '{"type":"leases","namespace":"default","name":"never","lock":"leases/default/never","exists":false}' ] ||
  fail "status -o json of a lock never made: $json"
"$KLE" status --lock-name e2e >"$T/table.txt" || fail "status"
grep -Eq '^RENEWED +[0-9TZ:-]+ \([0-9]+s ago\)$' "$T/table.txt" || fail "not a kubectl age: $(grep RENEWED "$T/table.txt")"
pass "--is-leader 0 and 4, 3 for no lock; the JSON fields; $(grep RENEWED "$T/table.txt")"

# A deleted lock, as the watch sees it.
"$KLE" status --lock-name e2e -w --changes holder >"$T/del.txt" 2>&1 &
DEL=$!
KLE_PIDS+=("$DEL")
wait_until 10 "the watch shows b" grep -q " b " "$T/del.txt"
kill -TERM "$PID_b"
wait "$PID_b"
kle_curl -f -o /dev/null -X DELETE "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases/e2e" || fail "delete"
wait_until 10 "the watch shows the deletion" grep -q "(deleted)" "$T/del.txt"
kill -INT "$DEL"
wait "$DEL"
pass "a deleted lock: (deleted)"
mv "$T/all.work" "$T/e2e.work"

# A MultiLock: both objects followed, and whether their holders agree.
LOCK=ml
"$KLE" status --lock-name ml --resource-lock endpointsleases -w -o json >"$T/ml.json" 2>&1 &
ML=$!
KLE_PIDS+=("$ML")
start_replica m --resource-lock endpointsleases
wait_until 20 "m leads" file_exists "$T/running.m"
ml_agree() { python3 - "$T/ml.json" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
seen = {l["object"] for l in lines if l.get("holderIdentity") == "m"}
sys.exit(0 if seen == {"endpoints", "leases"} and lines[-1].get("agree") is True else 1)
PY
}
wait_until 10 "both objects held by m, agreeing" ml_agree
kill -INT "$ML"
wait "$ML" || fail "status -w on a MultiLock did not exit 0"
head -1 "$T/ml.json" | grep -q '"type":"endpointsleases"' || fail "MultiLock lines: $(head -1 "$T/ml.json")"
pass "status -w on a MultiLock follows both objects"
