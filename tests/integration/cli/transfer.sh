#!/usr/bin/env bash
# kle transfer with three kle run replicas following the lock by watch (the
# default) and publishing LeaseCandidates: the refusals; then four planned
# handovers, each to a named replica (the target rotates, so every replica
# is named), which must lead next, the old leader ending its term for it;
# no two workers ever at once. Prints how soon the named replica's command
# started after the old leader's command stopped (bench/transfer measures
# this over more rounds on a release build).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/integration/cli/lib.sh"
kle_apiserver_start || exit 1
# A handover takes no expiry in watch mode: these timings only bound how
# long a loaded machine may stall a leader before it loses the lease.
TIMINGS=(--lease-duration 4s --renew-deadline 3s --retry-period 500ms)

for id in a b c; do
  start_replica "$id" --candidate --binary-version 1.33.0 --follow watch
done
wait_until 20 "a leader" holder_not ""
lead=$(holder)
wait_until 10 "the worker of $lead" file_exists "$T/running.$lead"

# Refusals, each with its reason.
out=$("$KLE" transfer --lock-name e2e --to nobody 2>&1) && fail "transfer to a non-candidate: $out"
grep -q "not a live candidate" <<<"$out" || fail "transfer to a non-candidate said: $out"
out=$("$KLE" transfer --lock-name e2e --to "$lead" 2>&1) && fail "transfer to the holder: $out"
grep -q "already holds" <<<"$out" || fail "transfer to the holder said: $out"
out=$("$KLE" transfer --lock-name e2e --to a --resource-lock configmaps 2>&1) &&
  fail "transfer of a configmap lock: $out"
grep -q "only leases can be transferred" <<<"$out" || fail "configmap transfer said: $out"
pass "transfer refuses a non-candidate, the holder and annotation locks"

# Four handovers, each to the replica after the holder.
for i in 1 2 3 4; do
  lead=$(holder)
  case "$lead" in a) to=b ;; b) to=c ;; *) to=a ;; esac
  ended=$(grep -c "ending this term to hand over" "$T/$lead.log")
  "$KLE" transfer --lock-name e2e --to "$to" >/dev/null 2>>"$T/transfer.err" ||
    fail "transfer $i to $to: $(tail -1 "$T/transfer.err")"
  wait_until 10 "transfer $i: $to leads" holder_is "$to"
  wait_until 10 "transfer $i: the worker of $to" file_exists "$T/running.$to"
  [ "$(grep -c "ending this term to hand over" "$T/$lead.log")" -gt "$ended" ] ||
    fail "transfer $i: $lead did not end its term for $to"
  grep -q "handed lease default/e2e over to \"$to\"" "$T/$lead.log" ||
    fail "transfer $i: $lead did not hand the lease over to $to"
done
check_overlap
pass "four transfers, each to the named replica, no overlap"

# From each STOP of a leader's worker to the next LEAD: the handover time.
python3 - "$T/all.work" <<'PY'
import statistics, sys
gaps, stop = [], None
for line in open(sys.argv[1]):
    t, ev, who, tok, pid = line.split()
    if ev == "STOP":
        stop = int(t)
    elif ev == "LEAD" and stop is not None:
        gaps.append((int(t) - stop) / 1000.0)
        stop = None
print("handover, old command stopped -> named replica's command started: "
      "median %.1f ms, min %.1f ms, max %.1f ms (%d transfers, watch mode)"
      % (statistics.median(gaps), min(gaps), max(gaps), len(gaps)))
assert len(gaps) >= 4, gaps
PY
[ $? -eq 0 ] || fail "fewer than four handovers in the work log"
