#!/usr/bin/env bash
# kle transfer with three kle run replicas following the lock by watch (the
# default) and publishing LeaseCandidates: the refusals; then four planned
# handovers, each to a named replica (the target rotates, so every replica
# is named), which must lead next, the old leader ending its term for it;
# no two workers ever at once. Prints how soon the named replica's command
# started after the old leader's command stopped (bench/transfer measures
# this over more rounds on a release build).
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
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

# LeaseCandidates are named LOCK.IDENTITY: one identity can be a candidate
# for two locks.
# (Its command is not a worker: the overlap check reads e2e's workers only.)
"$KLE" run --lock-name other --identity a "${TIMINGS[@]}" --candidate --binary-version 1.33.0 \
  -- sleep 60 >>"$T/other-a.log" 2>&1 &
KLE_PIDS+=("$!")
cands() {
  kle_curl -f "$SERVER/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates" |
    python3 -c 'import json,sys; print(" ".join(sorted(i["metadata"]["name"] + ":" + i["spec"]["leaseName"] for i in json.load(sys.stdin)["items"])))'
}
has_other_a() { grep -q "other.a:other" <<<"$(cands)"; }
wait_until 10 "a's LeaseCandidate for the second lock" has_other_a
for id in a b c; do
  grep -q "e2e.$id:e2e" <<<"$(cands)" || fail "no LeaseCandidate e2e.$id: $(cands)"
done
pass "LeaseCandidates: $(cands)"

# --force skips the ping, not the question whether the target is a
# replica: a typo is refused (or asked about on a terminal) unless --yes.
preferred() {
  kle_curl -f "$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases/e2e" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"].get("preferredHolder", ""))'
}
out=$("$KLE" transfer --lock-name e2e --to typo --force </dev/null 2>&1); rc=$?
[ "$rc" -eq 1 ] || fail "transfer --force to an unknown target: exit $rc ($out)"
grep -q 'no LeaseCandidate default/e2e.typo or default/typo.*add --yes' <<<"$out" ||
  fail "transfer --force to an unknown target said: $out"
# (After a handover the record names its holder as preferred holder too: the
# mark of a handover. A refused transfer must not name anyone else.)
p=$(preferred)
[ -z "$p" ] || [ "$p" = "$(holder)" ] || fail "preferredHolder set to $p by a refused transfer"
python3 - "$KLE" <<'PY' || fail "transfer --force on a terminal, answered no"
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "transfer", "--lock-name", "e2e", "--to", "typo", "--force"])
out = b""
while b"[y/N]" not in out:
    out += os.read(fd, 1024)
os.write(fd, b"n\n")
try:
    while True:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        out += chunk
except OSError:
    pass
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 1, (status, out)
assert b"not confirmed" in out, out
PY
p=$(preferred)
[ -z "$p" ] || [ "$p" = "$(holder)" ] || fail "preferredHolder set to $p by a transfer answered no"
pass "transfer --force to an unknown target: refused ($out), and asked on a terminal"

# A candidate published under the old name (the identity alone) is known.
kle_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' \
  "$SERVER/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates" --data-binary \
  '{"metadata":{"name":"old"},"spec":{"leaseName":"e2e","binaryVersion":"1.32.0","emulationVersion":"1.32.0","strategy":"OldestEmulationVersion"}}' ||
  fail "cannot create the old-style LeaseCandidate"
"$KLE" transfer --lock-name e2e --to old --force >/dev/null 2>"$T/old.err" || fail "transfer --force to old: $(cat "$T/old.err")"
# The leader hands over at once: old is preferred, then the holder.
to_old() { [ "$(preferred)" = old ] || holder_is old; }
wait_until 5 "the lease going to old" to_old
"$KLE" transfer --lock-name e2e --to someone-new --force --yes >/dev/null 2>"$T/yes.err" ||
  fail "transfer --force --yes: $(cat "$T/yes.err")"
pass "an old-style LeaseCandidate is known; --force --yes hands over to anyone"
