#!/usr/bin/env bash
# kle run --leader-elect=false (kube-controller-manager's spelling): the
# command runs at once, with no lock and no API server to reach, still
# under the supervisor and with the HTTP endpoints; --on-exit as with an
# election; SIGTERM stops it and exits 0.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
export KUBECONFIG="$T/none" # nothing to connect to, and nothing tries

# The worker logs to solo.events (no fencing token: not for overlap_check).
WORKDIR=$T "$KLE" run --leader-elect=false --identity solo --http-addr 127.0.0.1:0 \
  --http-addr-file "$T/solo.addr" \
  -- sh -c 'env >"$WORKDIR/solo.env"; WORKER_PIDFILE="$WORKDIR/solo.pid" exec bash "$WORKER_SH" "$WORKDIR/solo.events"' \
  >>"$T/solo.log" 2>&1 &
PID=$!
KLE_PIDS+=("$PID")
wait_until 10 "the worker" file_exists "$T/solo.pid"
wait_until 10 "the endpoints" file_exists "$T/solo.addr"
wpid=$(cat "$T/solo.pid")
shim=$(ps -o ppid= -p "$wpid" | tr -d ' ')
ps -o args= -p "$shim" | grep -q __supervise || fail "the worker does not run under the supervisor"
grep -qx 'KLE_IDENTITY=solo' "$T/solo.env" || fail "no KLE_IDENTITY"
! grep -q '^KLE_LOCK=\|^KLE_LEADER_TRANSITIONS=' "$T/solo.env" || fail "a lock or token without an election"
addr=$(cat "$T/solo.addr")
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://$addr/healthz")" = 200 ] || fail "/healthz"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ] || fail "/readyz"
curl -sS "http://$addr/metrics" >"$T/metrics" || fail "/metrics"
promtool check metrics <"$T/metrics" || fail "promtool: $(cat "$T/metrics")"
grep -qx 'kle_command_running 1' "$T/metrics" || fail "/metrics: $(cat "$T/metrics")"
! grep -q '^leader_election_master_status' "$T/metrics" || fail "/metrics has an election"
kill -TERM "$PID"
wait "$PID"
rc=$?
[ "$rc" -eq 0 ] || fail "SIGTERM: exit $rc"
pid_gone "$wpid" || fail "the worker outlived kle"
grep -q " STOP solo " "$T/solo.events" || fail "the worker got no SIGTERM"
pass "--leader-elect=false: the worker ran at once under the supervisor, endpoints up, stopped on SIGTERM"

"$KLE" run --leader-elect=false -- sh -c 'exit 5' >>"$T/once.log" 2>&1
rc=$?
[ "$rc" -eq 5 ] || fail "--leader-elect=false, a command exiting 5: exit $rc"
WORKDIR=$T "$KLE" run --leader-elect=false --on-exit restart -- sh -c 'echo x >>"$WORKDIR/runs"; exit 1' \
  >>"$T/again.log" 2>&1 &
PID=$!
KLE_PIDS+=("$PID")
two_runs() { [ -f "$T/runs" ] && [ "$(wc -l <"$T/runs")" -ge 2 ]; }
wait_until 10 "the command started again" two_runs
kill -TERM "$PID"
wait "$PID" || fail "--on-exit restart, SIGTERM: exit $?"
pass "--leader-elect=false with --on-exit: the command's 5; restart"
