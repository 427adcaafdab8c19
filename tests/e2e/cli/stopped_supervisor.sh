#!/usr/bin/env bash
# kle's own fallback when the supervisor does not answer. The leader's
# supervisor (kle-supervise, kle's child) is stopped with SIGSTOP, its
# command ignores SIGTERM, and the leader's connection to the API server is
# cut, so that its lease ends while kle itself runs on. Only kle's fallback
# can stop the command then, and it must do so by the leadership deadline
# + grace (docs/cli.md, "Why the grace is bounded"): SIGKILL to the
# supervisor's descendants and its group, scheduled from the deadline, not
# from when kle noticed. At 4s/3s/1s with the default grace (0.5 s) the next
# leader may start 1 s after the deadline at the earliest; a fallback one
# second after the grace, counted from when kle noticed, overlapped it by
# about 450 ms. The overlap checker reads the workers' own LEAD/STOP logs.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 4s --renew-deadline 3s --retry-period 1s)
SHIM=
trap 'rc=$?; kill -CONT $SHIM 2>/dev/null; (exit $rc); cleanup' EXIT

# a reaches the server through a relay (tests/support/relay.py): SIGUSR1 to
# it freezes a's connections, and its renewals fail.
python3 "$KLE_SOURCE_DIR/tests/support/relay.py" "${SERVER##*:}" "$T/relay.port" &
RELAY=$!
KLE_PIDS+=("$RELAY")
wait_until 10 "the relay" file_exists "$T/relay.port"
sed "s#$SERVER#https://127.0.0.1:$(cat "$T/relay.port")#" "$KUBECONFIG" >"$T/relay.kubeconfig"
KUBECONFIG="$T/relay.kubeconfig" WORKER_IGNORE_TERM=1 start_replica a
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"

# The supervisor: kle a's child running __supervise, the worker's parent.
SHIM=$(ps -o pid=,args= --ppid "$PID_a" | awk '/__supervise/ {print $1; exit}')
[ -n "$SHIM" ] || fail "no supervisor among kle a's children: $(ps -o pid=,args= --ppid "$PID_a")"
wpid=$(cat "$T/running.a")
[ "$(ps -o ppid= -p "$wpid" | tr -d ' ')" = "$SHIM" ] || fail "the worker's parent is not the supervisor $SHIM"
kill -STOP "$SHIM"
sleep 1 # a renewal with the supervisor stopped: it does not need it to lead
holder_is a || fail "a lost the lease once its supervisor was stopped"
t0=$(now_ms)
kill -USR1 "$RELAY"
wait_until 10 "a's worker to be killed" pid_gone "$wpid"
dt=$(( $(now_ms) - t0 ))
wait_until 15 "b leads" holder_is b
wait_until 10 "the worker of b" file_exists "$T/running.b"
grep -q "did not stop within --grace" "$T/a.log" || fail "kle a did not say its command ignored SIGTERM"
check_overlap
pass "supervisor stopped, command deaf to SIGTERM, lease cut: kle killed the worker ${dt} ms after the cut (renew deadline 3 s + grace 0.5 s from the last renewal), before b's worker started"
