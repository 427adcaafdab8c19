#!/usr/bin/env bash
# Two replicas started with the same identity: the second must not lead
# beside the first. It sees a live record under its own identity that it
# did not write, waits as for any lease, sees that record renewed by
# someone else, and exits with an error naming the cause. Once with a
# watching and once with a polling second replica.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

start_replica x
wait_until 20 "x leads" holder_is x
wait_until 10 "the worker of x" file_exists "$T/running.x"

for follow in watch poll; do
  log="$T/dup-$follow.log"
  WORKDIR=$T "$KLE" run --lock-name "${LOCK:-e2e}" --identity x "${TIMINGS[@]}" --follow "$follow" \
    -- sh -c "$WORKER" >>"$log" 2>&1 &
  dup=$!
  KLE_PIDS+=("$dup")
  wait_until 20 "the second x ($follow) to exit" pid_gone "$dup"
  wait "$dup"
  rc=$?
  [ "$rc" -ne 0 ] || fail "the second x exited with 0"
  grep -q "another replica under this elector's identity" "$log" ||
    fail "the second x did not name the cause: $(tail -n 5 "$log")"
  [ "$(grep -c '^x ' "$T/starts")" -eq 1 ] || fail "the worker of x started $(grep -c '^x ' "$T/starts") times"
  holder_is x || fail "x lost the lease"
  pass "a second replica with identity x ($follow) refused to lead and exited with $rc"
done
check_overlap --max-intervals 1
