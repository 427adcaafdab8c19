#!/usr/bin/env bash
# A black-holed API server: the leader's renewals hang, so it must end its
# leadership and kill its worker before the lease could expire for anyone
# else (last renewal + lease duration). With lease 4 s, renew deadline 3 s,
# retry 0.5 s the last successful renewal was sent at most 0.5 s before the
# black hole started, so others could lead 3.5 s after it at the earliest.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 4s --renew-deadline 3s --retry-period 500ms)

start_replica a --grace 400ms
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"
sleep 1 # a few renewals
wpid=$(cat "$T/running.a")

# The black hole starts between t0 and t1 (the admin request is slow on a
# loaded machine): the last successful renewal was sent before t1.
t0=$(now_ms)
kle_admin POST /faults '{"resource":"leases","blackhole":true}' >/dev/null || fail "fault"
t1=$(now_ms)
wait_until 10 "a's worker to stop" pid_gone "$wpid"
dt=$(( $(now_ms) - t1 ))
dt0=$(( $(now_ms) - t0 ))
[ "$dt" -lt 3500 ] || fail "worker stopped ${dt} ms after the black hole; others could lead after 3500 ms"
[ "$dt0" -ge 2000 ] || fail "worker stopped after only ${dt0} ms: before the renew deadline?"
pass "leader killed its worker ${dt} ms into the black hole (limit 3500 ms)"
addr=$(cat "$T/a.addr")
grep -qx 'leader_election_master_status{name="e2e"} 0' <<<"$(curl -sS "http://$addr/metrics")" ||
  fail "a still reports master_status 1"
kill -0 "$PID_a" || fail "kle a exited instead of campaigning again"

# The server comes back: someone leads again and exactly one worker runs.
kle_admin DELETE /faults >/dev/null || fail "clear faults"
wait_until 20 "a leader again" holder_not ""
h=$(holder)
wait_until 10 "the worker of $h" file_exists "$T/running.$h"
[ "$(running_workers)" -eq 1 ] || fail "$(running_workers) workers after recovery"
pass "after recovery $h leads with one worker"
