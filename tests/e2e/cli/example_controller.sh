#!/usr/bin/env bash
# examples/controller.c against kle-apiserver, with its defaults (15 s /
# 10 s / 2 s): it leads under its default identity (kle_default_identity),
# campaigns again after every loss (a black-holed server, another holder
# written over its record) and after handing the lease over (kle transfer),
# and on SIGTERM stops its work, releases the lease and exits 0; a second
# replica then takes over at once.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
CONTROLLER="$KLE_BUILD_DIR/examples/example_controller"
LOCK=example

# start_controller ID [args]: logs in $T/ID.log; without POD_NAME the identity is hostname_UUID.
start_controller() {
  local id=$1
  shift
  env -u POD_NAME "$CONTROLLER" --kubeconfig "$KUBECONFIG" --lock-name "$LOCK" "$@" >>"$T/$id.log" 2>&1 &
  eval "PID_$id=$!"
  KLE_PIDS+=("$!")
}
log_has() { grep -q -- "$2" "$T/$1.log"; }

start_controller a --resource-lock leases --metrics-file "$T/a.prom"
wait_until 20 "a campaigns" log_has a "campaigning for leases/$LOCK as "
ida=$(sed -n "s/^controller: campaigning for leases\/$LOCK as //p" "$T/a.log")
[[ "$ida" =~ ^$(hostname)_[0-9a-f-]{36}$ ]] || fail "default identity: \"$ida\""
wait_until 20 "a leads" log_has a "$ida: leading (fencing token 0)"
holder_is "$ida" || fail "holder $(holder), want $ida"
pass "a leads as $ida (kle_default_identity)"

# --metrics-file: the elector's and the client's metrics, every 5 s.
has_token() { grep -q "^kle_leader_fencing_token{name=\"default/$LOCK\"} 0$" "$T/a.prom" 2>/dev/null; }
wait_until 15 "a's metrics with its fencing token" has_token
grep -q '^leader_election_master_status{name="default/'"$LOCK"'"} 1$' "$T/a.prom" || fail "a.prom: $(cat "$T/a.prom")"
grep -q '^kle_api_requests_total{verb="update",code="200"} ' "$T/a.prom" || fail "a.prom: $(cat "$T/a.prom")"
promtool check metrics <"$T/a.prom" || fail "promtool on a.prom: $(cat "$T/a.prom")"
pass "examples/controller.c exports its metrics: fencing token, last renewal, API requests"

start_controller b --identity b
wait_until 20 "b campaigns" log_has b "campaigning for leases/$LOCK as b"

# A black hole longer than the renew deadline: a loses, then leads again.
kle_admin POST /faults '{"resource":"leases","blackhole":true}' >/dev/null || fail "fault"
wait_until 30 "a loses" log_has a "$ida: stopped leading"
wait_until 10 "a campaigns again" log_has a "lost $LOCK; campaigning again"
kle_admin DELETE /faults >/dev/null || fail "clear faults"
wait_until 40 "a leader again" holder_not ""
pass "a lost the lease in the black hole, campaigned again; $(holder) leads"

# Another holder written over the leader's record: the leader sees it on
# its watch (kle_elector_run() returns KLE_ECONFLICT), a loss as well, so it
# campaigns again rather than exiting.
# The holder's record may still be a's from before the black hole: wait for
# a term begun after it (a "leading" line after a's "campaigning again").
leads_again() { awk -v h="$2: leading" '/campaigning again/ {c = 1} c && index($0, h) {f = 1} END {exit !f}' "$T/$1.log"; }
has_led_again() {
  local h
  h=$(holder)
  [ -n "$h" ] || return 1
  if [ "$h" = "$ida" ]; then leads_again a "$h"; else log_has b "$h: leading"; fi
}
wait_until 30 "the holder leads again" has_led_again
h=$(holder)
if [ "$h" = "$ida" ]; then leader=a; else leader=b; fi
eval "lpid=\$PID_$leader"
lost() { grep -c "lost $LOCK; campaigning again" "$T/$leader.log"; }
n=$(lost)
L="$SERVER/apis/coordination.k8s.io/v1/namespaces/default/leases/$LOCK"
# A read, then a write conditional on it: a renewal in between is a 409, so
# try again, as kubectl edit would.
write_intruder() {
kle_curl -f "$L" | python3 -c '
import json, sys, datetime
l = json.load(sys.stdin)
now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
l["spec"].update(holderIdentity="intruder", leaseDurationSeconds=1, renewTime=now, acquireTime=now,
                 leaseTransitions=l["spec"].get("leaseTransitions", 0) + 1)
print(json.dumps(l))' >"$T/intruder.json" || return 1
kle_curl -f -o /dev/null -X PUT -H 'Content-Type: application/json' "$L" --data-binary @"$T/intruder.json"
}
wait_until 10 "the intruder written over the leader's record" write_intruder
lost_more() { [ "$(lost)" -gt "$n" ]; } # counted at every try, not once
wait_until 10 "$leader sees the intruder and campaigns again" lost_more
kill -0 "$lpid" || fail "$leader exited when another holder took the lease"
wait_until 30 "a replica leads again" log_has "$leader" "stopped leading"
wait_until 30 "a replica leads again" holder_not intruder
pass "another holder over the leader's record: $leader campaigned again; $(holder) leads"

# A planned handover (kle transfer): kle_elector_run() returns 0 without a
# stop, and the old leader stays a candidate.
h=$(holder)
if [ "$h" = "$ida" ]; then leader=a to=b; else leader=b to=$ida; fi
wait_until 20 "$leader leads" log_has "$leader" "$h: leading"
eval "lpid=\$PID_$leader"
"$KLE" transfer --lock-name "$LOCK" --to "$to" --force --yes >/dev/null 2>"$T/transfer.err" ||
  fail "kle transfer: $(cat "$T/transfer.err")"
wait_until 20 "$to holds the lease" holder_is "$to"
wait_until 10 "$leader campaigns again" log_has "$leader" "handed over $LOCK; campaigning again"
kill -0 "$lpid" || fail "$leader exited after handing the lease over"
pass "a handover to $to: $leader campaigned again"

# SIGTERM to the leader: it stops, releases, exits 0; the other takes over.
h=$(holder)
if [ "$h" = "$ida" ]; then leader=a other=b; else leader=b other=a; fi
wait_until 20 "$leader leads" log_has "$leader" "$h: leading"
eval "lpid=\$PID_$leader"
t0=$(now_ms)
kill -TERM "$lpid"
wait "$lpid"; rc=$?
[ "$rc" -eq 0 ] || fail "$leader exited $rc after SIGTERM"
log_has "$leader" "controller: stopped" || fail "$leader did not say it stopped"
wait_until 10 "the other leads" holder_not "$h"
dt=$(( $(now_ms) - t0 ))
# Released: the other takes over at its next try (within 2.2 retry
# periods = 4.4 s), not after the 15 s lease.
[ "$dt" -lt 8000 ] || fail "takeover ${dt} ms after SIGTERM: not released?"
pass "SIGTERM: $leader released and exited 0; $(holder) took over in ${dt} ms"

eval "opid=\$PID_$other"
kill -TERM "$opid"
wait "$opid"; rc=$?
[ "$rc" -eq 0 ] || fail "$other exited $rc after SIGTERM"
holder_is "" || fail "holder after the last SIGTERM: $(holder)"
pass "the last replica released the lease on SIGTERM"
