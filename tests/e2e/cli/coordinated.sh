#!/usr/bin/env bash
# Coordinated election on kle-apiserver with its controller on: three
# kle run --coordinated replicas with different emulation versions. The
# oldest leads; a newer one never does while the oldest lives; kill the
# leader and the next-oldest leads; start an older one and it takes over at
# the end of the current term. No two workers ever at once.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start --feature-gates=CoordinatedLeaderElection=true || exit 1
# Short leases: the kill below waits one expiry. The server's own terms
# (a holder it picks) are 5 s until that holder renews with these.
TIMINGS=(--lease-duration 2s --renew-deadline 1.5s --retry-period 500ms)

# The server picks: nobody creates or takes the lease by itself.
# The oldest first, so that the first election already sees it (an
# election with only newer candidates would rightly pick one of them, and
# hand over once v131 appears).
start_replica v131 --coordinated --binary-version 1.33.0 --emulation-version 1.31.0
wait_until 20 "the oldest (1.31) leads" holder_is v131
start_replica v133 --coordinated --binary-version 1.33.0 --emulation-version 1.33.0
start_replica v132 --coordinated --binary-version 1.33.0 --emulation-version 1.32.0
wait_until 10 "the worker of v131" file_exists "$T/running.v131"
pass "the oldest emulation version leads"

# A newer one never leads while the oldest lives: watched for 6 s, longer
# than the server's election duration (5 s), which covers the new
# candidates' registration, the pings and the elections they cause.
end=$(( $(now_ms) + 6000 ))
while [ "$(now_ms)" -lt "$end" ]; do
  holder_is v131 || fail "$(holder) leads while v131 lives"
  sleep 0.2
done
grep -q "leading" "$T/v132.log" && fail "v132 led while v131 lived"
grep -q "leading" "$T/v133.log" && fail "v133 led while v131 lived"
pass "no newer replica leads while the oldest lives"

# Kill the leader: the next-oldest (1.32) leads after the lease expires.
kill -KILL "$PID_v131"
wait_until 30 "the next-oldest (1.32) leads" holder_is v132
wait_until 10 "the worker of v132" file_exists "$T/running.v132"
grep -q "leading" "$T/v133.log" && fail "v133 led instead of v132"
pass "the next-oldest leads after the leader is killed"

# An older one (1.30) appears: it takes over at the end of v132's term.
start_replica v130 --coordinated --binary-version 1.33.0 --emulation-version 1.30.0
wait_until 30 "the older v130 takes over" holder_is v130
wait_until 10 "the worker of v130" file_exists "$T/running.v130"
grep -q "ending this term to hand over" "$T/v132.log" || fail "v132 did not end its term"
pass "an older replica takes over at the end of the current term"
check_overlap
