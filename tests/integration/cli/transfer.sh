#!/usr/bin/env bash
# kle transfer with three kle run replicas (polling electors) publishing
# LeaseCandidates: the refusals; then ten planned handovers, each to a named
# replica, which must lead next, with no two workers ever at once. Prints
# how soon the named replica's command started after the old leader's
# command stopped (median and spread).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/integration/cli/lib.sh"
kle_apiserver_start || exit 1
# Longer leases than the other e2e tests: a leader that loses its lease to a
# loaded machine mid-test would be a different test. Handover time depends
# on the retry period, not on these.
TIMINGS=(--lease-duration 8s --renew-deadline 6s --retry-period 300ms)

for id in a b c; do
  start_replica "$id" --candidate --binary-version 1.33.0
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

# Ten handovers, round robin over the two others.
for i in $(seq 1 10); do
  lead=$(holder)
  case "$lead" in a) to=b ;; b) to=c ;; *) to=a ;; esac
  "$KLE" transfer --lock-name e2e --to "$to" >/dev/null 2>>"$T/transfer.err" ||
    fail "transfer $i to $to: $(tail -1 "$T/transfer.err")"
  wait_until 10 "transfer $i: $to leads" holder_is "$to"
  wait_until 10 "transfer $i: the worker of $to" file_exists "$T/running.$to"
done
check_overlap
pass "ten transfers, each to the named replica, no overlap"

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
gaps = gaps[-10:]
print("handover, old command stopped -> named replica's command started: "
      "median %.1f ms, min %.1f ms, max %.1f ms (%d transfers, polling every 300ms+jitter)"
      % (statistics.median(gaps), min(gaps), max(gaps), len(gaps)))
assert len(gaps) >= 10, gaps
PY
[ $? -eq 0 ] || fail "fewer than ten handovers in the work log"
