#!/usr/bin/env bash
# The supervisor's deadline guard: kle frozen by SIGSTOP (its command not)
# renews nothing, and the supervisor stops the command on its own at the
# leadership deadline (SIGTERM), SIGKILL at deadline + grace, before another
# replica may lead. Lease 4 s, renew deadline 3 s, retry 0.5 s, grace 0.5 s:
# the last renewal was sent at most ~0.5 s before the freeze, so the command
# must be gone 3.5 s after it at the latest, and others may lead 4 s after
# that renewal at the earliest.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 4s --renew-deadline 3s --retry-period 500ms)

# A worker that ignores SIGTERM: only the SIGKILL at deadline + grace ends it.
WORKER_IGNORE_TERM=1 start_replica a --grace 500ms
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"
sleep 1 # a few renewals
wpid=$(cat "$T/running.a")

t0=$(now_ms)
kill -STOP "$PID_a"
wait_until 8 "a's worker to be stopped while kle a is frozen" pid_gone "$wpid"
dt=$(( $(now_ms) - t0 ))
[ "$dt" -lt 4000 ] || fail "the worker ran ${dt} ms into the freeze; the lease may expire for others after 3500-4000 ms"
[ "$dt" -ge 2400 ] || fail "the worker was stopped after only ${dt} ms: before the deadline?"
pass "kle frozen: the supervisor SIGKILLed the worker ${dt} ms into the freeze (bound 3500 ms)"

wait_until 15 "b leads" holder_is b
wait_until 10 "the worker of b" file_exists "$T/running.b"
check_overlap

# Thawed, a sees its leadership over and does not run its worker again
# beside b's.
kill -CONT "$PID_a"
wait_until 10 "a notices the end of its leadership" grep -q "leadership of .* ended\|deadline of .* passed" "$T/a.log"
sleep 1
[ "$(running_workers)" -eq 1 ] || fail "$(running_workers) workers after a thawed"
holder_is b || fail "b lost the lease after a thawed"
check_overlap --max-intervals 2
pass "after the thaw only b's worker runs"
