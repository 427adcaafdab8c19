#!/usr/bin/env bash
# The skipped-phase guard against a race (docs/migration.md, "The
# skipped-phase guard"): with slow creates on the server (500 ms, as with a
# slow etcd), an endpoints replica and a leases replica started together on
# a fresh lock name both read "the other family's lock does not exist" and
# both create. The re-check after a winning write must leave at most one of
# them leading. Several rounds, a fresh lock name each; the overlap checker
# reads each round's worker log on its own (tokens are per object).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
ROUNDS=${ROUNDS:-3}

kle_admin POST /faults '{"verb":"create","resource":"leases","latencyMs":500}' >/dev/null ||
  fail "cannot add the latency fault"
kle_admin POST /faults '{"verb":"create","resource":"endpoints","latencyMs":500}' >/dev/null ||
  fail "cannot add the latency fault"

leaders_now() { running_workers; }
some_leader() { [ "$(running_workers)" -ge 1 ]; }

for r in $(seq 1 "$ROUNDS"); do
  LOCK=race$r
  start_replica "e$r" --resource-lock endpoints
  start_replica "l$r" --resource-lock leases
  wait_until 20 "a leader in round $r" some_leader
  # Longer than a lease duration (2 s) and many retry periods: a second
  # leader, or a yielded one that renews its way back, would show.
  end=$(($(now_ms) + 3000))
  max=0
  while [ "$(now_ms)" -lt "$end" ]; do
    n=$(leaders_now)
    [ "$n" -gt "$max" ] && max=$n
    sleep 0.05
  done
  eval "pe=\$PID_e$r pl=\$PID_l$r"
  kill -TERM "$pe" "$pl"
  wait "$pe" "$pl" 2>/dev/null
  mv "$T/all.work" "$T/round$r.work"
  rm -f "$T"/running.*
  out=$(python3 "$OVERLAP_CHECK" "$T/round$r.work" 2>&1) ||
    fail "round $r: two leaders (both replicas' workers ran, at most $max at once): $out"
  [ "$max" -le 1 ] || fail "round $r: $max workers ran at once"
  who=$(awk '$2 == "LEAD" {print $3}' "$T/round$r.work" | sort -u | tr '\n' ' ')
  pass "round $r: one leader ($who), no overlap; $(grep -c 'skipped migration phase' "$T/e$r.log" "$T/l$r.log" | tr '\n' ' ')"
done
