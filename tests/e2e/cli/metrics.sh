#!/usr/bin/env bash
# kle run's /metrics: what an operator alerts on, with HELP text, valid by
# promtool: the command (running, starts, restarts, exits by code), the
# fencing token and the last renewal, the watch stream, API requests by
# verb and code, kle_build_info; and JSON logs with structured fields.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# a runs a command that exits 3 after 0.3 s, restarted (after 1 s, then 2 s).
WORKDIR=$T "$KLE" run --lock-name e2e --identity a "${TIMINGS[@]}" --on-exit restart --log-format json \
  --http-addr 127.0.0.1:0 --http-addr-file "$T/a.addr" \
  -- sh -c 'echo "$KLE_LEADER_TRANSITIONS" >>"$WORKDIR/a.starts"; sleep 0.3; exit 3' >>"$T/a.log" 2>&1 &
PID_a=$!
KLE_PIDS+=("$PID_a")
wait_until 20 "a leads" holder_is a
start_replica b
two_starts() { [ -f "$T/a.starts" ] && [ "$(wc -l <"$T/a.starts")" -ge 2 ]; }
wait_until 15 "a's command started twice" two_starts
wait_until 10 "b is up" file_exists "$T/b.addr"
sleep 0.5
curl -sS "http://$(cat "$T/a.addr")/metrics" >"$T/a.metrics" || fail "/metrics of a"
curl -sS "http://$(cat "$T/b.addr")/metrics" >"$T/b.metrics" || fail "/metrics of b"
promtool check metrics <"$T/a.metrics" || fail "promtool on a's /metrics: $(cat "$T/a.metrics")"
promtool check metrics <"$T/b.metrics" || fail "promtool on b's /metrics"
python3 - "$T/a.metrics" "$T/b.metrics" <<'PY' || fail "/metrics: $(cat "$T/a.metrics")"
import re, sys, time
def parse(path):
    samples, helps = {}, set()
    for line in open(path):
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.strip() and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples, helps
a, ha = parse(sys.argv[1])
b, hb = parse(sys.argv[2])
def one(s, prefix):
    hits = [v for k, v in s.items() if k.startswith(prefix)]
    assert hits, f"no {prefix}"
    return hits[0]
for fam in ("kle_command_running", "kle_command_starts_total", "kle_command_restarts_total",
            "kle_command_exits_total", "kle_leader_fencing_token",
            "kle_leader_last_renewal_timestamp_seconds", "kle_watch_stream_up",
            "kle_watch_stream_restarts_total", "kle_api_requests_total", "kle_build_info",
            "leader_election_master_status", "kle_log_dropped_lines_total"):
    assert fam in ha, f"no HELP for {fam}"
assert a['leader_election_master_status{name="e2e"}'] == 1
assert a["kle_command_starts_total"] >= 2 and a["kle_command_restarts_total"] >= 1, a
assert a['kle_command_exits_total{code="3"}'] >= 1, a
assert a['kle_leader_fencing_token{name="e2e"}'] == 0
age = time.time() - a['kle_leader_last_renewal_timestamp_seconds{name="e2e"}']
assert -1 < age < 3, f"last renewal {age:.1f} s ago"
assert a['kle_watch_stream_up{name="e2e"}'] in (0, 1)
assert one(a, 'kle_api_requests_total{verb="update",code="200"}') >= 1, a
assert one(a, 'kle_api_requests_total{verb="watch",code="200"}') >= 1, a
assert one(b, 'kle_api_requests_total{verb="get",code="200"}') >= 1, b
assert b['kle_watch_stream_up{name="e2e"}'] == 1, b
info = [k for k in a if k.startswith("kle_build_info")]
assert len(info) == 1 and a[info[0]] == 1, info
assert re.match(r'kle_build_info\{version="[0-9.]+",libkle_version="[0-9.]+"\}$', info[0]), info
# The follower: never led, so no token or renewal; its command never ran.
assert b['leader_election_master_status{name="e2e"}'] == 0
assert not any(k.startswith("kle_leader_fencing_token") for k in b), b
assert b["kle_command_running"] == 0 and b["kle_command_starts_total"] == 0, b
PY
pass "/metrics: the command's, the term's, the watch's and the API's metrics, promtool-clean"

# JSON logs carry the structured fields.
python3 - "$T/a.log" <<'PY' || fail "JSON log fields: $(grep leading "$T/a.log" | head -2)"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
lead = [l for l in lines if l["msg"].startswith("leading ")]
assert lead and lead[0]["lock"] == "leases/default/e2e" and lead[0]["identity"] == "a" \
    and lead[0]["token"] == 0, lead[:1]
new = [l for l in lines if l["msg"].startswith("new leader of ")]
assert new and new[0]["holder"] == "a" and new[0]["lock"] == "leases/default/e2e", new[:1]
PY
pass "JSON logs: lock, identity, token and holder as fields"
