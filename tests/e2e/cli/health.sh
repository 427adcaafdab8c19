#!/usr/bin/env bash
# kle run's /healthz and /readyz (docs/cli.md). With --call-timeout 30s, a
# black-holed API server holds a follower's request for 30 s: the election
# loop makes no progress, and /healthz must fail once the bound has passed
# and not before. With lease 2 s, renew deadline 1.5 s, retry 0.3 s, grace
# 0.25 s and --healthz-timeout 0.5s the bound is
#   max(2.2 x 0.3 + 6 x max(1, 1.5 / 2), 0.25 + 1, 1.5) + 0.5 = 7.16 s.
# /readyz is 503 while the last request failed. When the black hole ends,
# both recover.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

code() { curl -sS -o "$T/body" -w '%{http_code}' "http://$addr$1"; }
code_is() { [ "$(code "$1")" = "$2" ]; }

start_replica a --call-timeout 30s --healthz-timeout 500ms
wait_until 20 "a leads" holder_is a
addr=$(cat "$T/a.addr")
wait_until 10 "/readyz 200" code_is /readyz 200
code_is /healthz 200 || fail "/healthz of a working leader: $(code /healthz) $(cat "$T/body")"
pass "a leads; /healthz and /readyz 200"
# /metrics (kle_metrics_format()) is a valid exposition.
curl -sS "http://$addr/metrics" >"$T/metrics" || fail "/metrics"
grep -qx 'leader_election_master_status{name="e2e"} 1' "$T/metrics" || fail "/metrics: $(cat "$T/metrics")"
promtool check metrics <"$T/metrics" || fail "promtool check metrics on /metrics: $(cat "$T/metrics")"
pass "/metrics passes promtool check metrics"

t0=$(now_ms)
kle_admin POST /faults '{"resource":"leases","blackhole":true}' >/dev/null || fail "fault"
wait_until 40 "/healthz 500" code_is /healthz 500
dt=$(( $(now_ms) - t0 ))
grep -q "election loop of leases/default/e2e is wedged: no progress for" "$T/body" ||
  fail "/healthz body: $(cat "$T/body")"
[ "$dt" -ge 7100 ] || fail "/healthz failed ${dt} ms into the black hole, before the bound (7160 ms)"
pass "/healthz 500 ${dt} ms into the black hole: $(cat "$T/body")"
code_is /readyz 503 || fail "/readyz during the black hole: $(code /readyz) $(cat "$T/body")"
grep -q "the last request to the API server failed" "$T/body" || fail "/readyz body: $(cat "$T/body")"
pass "/readyz 503: $(cat "$T/body")"

kle_admin DELETE /faults >/dev/null || fail "clear faults"
wait_until 20 "/healthz 200 again" code_is /healthz 200
wait_until 20 "/readyz 200 again" code_is /readyz 200
wait_until 20 "a leads again" holder_is a
pass "after the black hole: /healthz and /readyz 200, a leads"
