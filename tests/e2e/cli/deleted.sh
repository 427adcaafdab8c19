#!/usr/bin/env bash
# The lock deleted under its leader (kubectl delete lease), as the safety
# issue found it: the others must not create the lock and lead before the
# lease they saw has expired, and the leader whose lock is gone ends its
# term. Two replicas (--on-exit=release: a replica that lost its lock
# campaigns again), both polling, then both watching; the lease deleted
# twice in each run while a worker runs; then the overlap checker over the
# workers' own LEAD/STOP lines (and their fencing tokens, which go on
# increasing across the re-creations).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

leader() { # the holder, once its worker runs
  local h
  h=$(holder)
  [ -n "$h" ] && [ -s "$T/running.$h" ]
}

# One worker runs (the workers of the pair before this one are gone).
one_worker() { [ "$(running_workers)" -eq 1 ]; }
# sees ID HOLDER: replica ID's /leader names HOLDER (it read that record).
sees() { curl -sS "http://$(cat "$T/$1.addr")/leader" 2>/dev/null | grep -q "\"name\":\"$2\""; }
pair_gone() { pid_gone "$(eval echo "\$PID_a$1")" && pid_gone "$(eval echo "\$PID_b$1")"; }

for follow in poll watch; do
  LOCK="deleted-$follow"
  # a leads first and renews every 900 ms; b reads every 200 ms, so that
  # after the first deletion b reads NotFound before a does: the order in
  # which a follower that does not wait out the lease it saw (R11) would
  # lead beside a, and a leader that does not end its term on NotFound (D5)
  # would run on beside it.
  start_replica "a$follow" --follow "$follow" --on-exit=release --retry-period 900ms
  wait_until 20 "a$follow leads" leader
  start_replica "b$follow" --follow "$follow" --on-exit=release --retry-period 200ms
  for round in 1 2; do
    before=$(holder)
    # Both replicas have read the record (and its token) before it goes: a
    # deletion of a lock that a replica never read is the documented limit
    # of the tokens (docs/architecture.md, "What remains").
    other="b$follow"
    [ "$before" = "b$follow" ] && other="a$follow"
    wait_until 10 "$other to see $before" sees "$other" "$before"
    kle_curl -f -o /dev/null -X DELETE \
      "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases/$LOCK" ||
      fail "delete $LOCK"
    # Someone leads again, on a re-created lock, within a lease duration
    # of the last renewal seen plus the retry periods of the polls.
    wait_until 20 "a leader after deletion $round ($follow)" leader
    # The worker of a replica that lost its lock stops (its LEAD/STOP lines
    # are then all in the log): one worker of this pair runs.
    wait_until 10 "one worker of the $follow pair" one_worker
    pass "$follow: deleted under $before; $(holder) leads again (token $(transitions))"
  done
  kill -TERM "$(eval echo "\$PID_a$follow")" "$(eval echo "\$PID_b$follow")"
  wait_until 10 "the $follow pair to stop" pair_gone "$follow"
  mv "$T/all.work" "$T/$follow.work"
done
check_overlap
