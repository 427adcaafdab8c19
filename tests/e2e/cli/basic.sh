#!/usr/bin/env bash
# kle run with three replicas: the worker runs only where kle leads, the
# HTTP endpoints and kle status name the true leader, the fencing token
# increases across leaders, SIGKILL of kle kills its worker, SIGTERM
# releases the lease and another replica takes over at its next try.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

start_replica a
wait_until 20 "a leads" holder_is a
start_replica b
start_replica c --log-format json
wait_until 10 "the worker of a" file_exists "$T/running.a"
wait_until 10 "b and c serve HTTP" file_exists "$T/c.addr"

# Only the leader's worker runs, observed over 3 s (several renewals).
end=$(( $(now_ms) + 3000 ))
while [ "$(now_ms)" -lt "$end" ]; do
  n=$(running_workers)
  [ "$n" -eq 1 ] || fail "$n workers running at once"
  [ -f "$T/running.a" ] || fail "a leads but its worker is not running"
  sleep 0.1
done
pass "only the leader's worker runs"

# Every replica's /leader and status agree on the true leader.
for id in a b c; do
  addr=$(cat "$T/$id.addr")
  got=$(curl -sS "http://$addr/leader")
  [ "$got" = '{"name":"a"}' ] || fail "/leader of $id says $got"
  curl -sS -o /dev/null -w '%{http_code}' "http://$addr/healthz" | grep -qx 200 || fail "/healthz of $id"
  m=$(curl -sS "http://$addr/metrics")
  want=0; [ "$id" = a ] && want=1
  grep -qx "leader_election_master_status{name=\"e2e\"} $want" <<<"$m" ||
    fail "/metrics of $id: $m"
  grep -q '^# TYPE leader_election_master_status gauge$' <<<"$m" || fail "no TYPE line: $m"
  grep -q '^leader_election_slowpath_total{name="e2e"} [0-9]*$' <<<"$m" || fail "no slowpath: $m"
done
json=$("$KLE" status --lock-name e2e -o json)
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["holderIdentity"]=="a" and d["expired"] is False and d["leaseDurationSeconds"]==2, d' "$json" ||
  fail "status -o json: $json"
"$KLE" status --lock-name e2e | grep -q '^HOLDER  *a$' || fail "status table"
pass "/leader, /healthz, /metrics and status report a"

# SIGKILL the leader: its worker dies with it; another replica takes over.
tok_a=$(transitions)
wpid=$(cat "$T/running.a")
kill -KILL "$PID_a"
wait_until 5 "a's worker $wpid to die with kle" pid_gone "$wpid"
pass "SIGKILL of kle killed its worker"
wait_until 15 "a new leader" holder_not a
new=$(holder)
wait_until 10 "the worker of $new" file_exists "$T/running.$new"
tok_new=$(transitions)
[ "$tok_new" -gt "$tok_a" ] || fail "fencing token did not increase: $tok_a -> $tok_new"
grep -q "^$new $tok_new " "$T/starts" || fail "worker of $new did not get KLE_LEADER_TRANSITIONS=$tok_new: $(cat "$T/starts")"
addr=$(cat "$T/$new.addr")
[ "$(curl -sS "http://$addr/leader")" = "{\"name\":\"$new\"}" ] || fail "/leader after failover"
pass "failover to $new, fencing token $tok_a -> $tok_new"

# SIGTERM the new leader: it stops its worker, releases, exits 0; the last
# replica takes over at its next try (well before the 2 s lease expires).
eval "p=\$PID_$new"
t0=$(now_ms)
kill -TERM "$p"
wait "$p"; rc=$?
[ "$rc" -eq 0 ] || fail "kle exited $rc after SIGTERM"
[ ! -f "$T/running.$new" ] || fail "worker of $new still running after kle exited"
last=b; [ "$new" = b ] && last=c
wait_until 5 "$last takes over" holder_is "$last"
wait_until 5 "the worker of $last" file_exists "$T/running.$last"
# From the release to the acquisition, by the two kle logs' timestamps (the
# kle status polls above are slow on a loaded machine).
dt=$(python3 - "$T/$new.log" "$T/$last.log" <<'PY'
import json, re, sys
def when(path, what):
    t = None
    for line in open(path):
        if what not in line:
            continue
        if line.startswith("{"):
            ts = json.loads(line)["ts"]  # 2026-12-01T22:09:30.629805Z
            h, m, sec = ts[11:-1].split(":")
        else:
            h, m, sec = re.match(r"^[IWE]\d{4} (\d+):(\d+):([\d.]+)", line).groups()
        t = int(h) * 3600 + int(m) * 60 + float(sec)
    return t
rel = when(sys.argv[1], "released lease")
acq = when(sys.argv[2], "successfully acquired lease")
print(int((acq - rel) * 1000) if rel is not None and acq is not None else 99999)
PY
)
# Retry period 0.3 s with jitter: at most 0.66 s after the release, plus
# one request; a lease expiry would take 2 s.
[ "$dt" -lt 1500 ] || fail "takeover after release took $dt ms (lease expiry, not release?)"
tok_last=$(transitions)
[ "$tok_last" -gt "$tok_new" ] || fail "fencing token did not increase: $tok_new -> $tok_last"
pass "SIGTERM released the lease; $last took over in $dt ms, token $tok_new -> $tok_last"

# Logs: c wrote JSON lines; nobody logged the bearer token.
python3 - "$T/c.log" <<'PY' || fail "c.log is not JSON lines"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines
for l in lines:
    o = json.loads(l)
    assert o["level"] in ("info", "warning", "error") and o["msg"] and o["ts"].endswith("Z"), o
PY
grep -q '^I[0-9]\{4\} [0-9:.]* *[0-9]* [a-z_]*\.c:[0-9]*\] ' "$T/b.log" || fail "b.log is not in klog's layout"
! grep -qF "$TOKEN" "$T"/*.log || fail "a log contains the bearer token"
pass "JSON and klog logs, no token"
