#!/usr/bin/env bash
# A command that daemonizes (double fork + setsid, so it leaves kle's
# process group and its parent) is still stopped: the supervisor is a child
# subreaper and kills every descendant, when kle is SIGKILLed and when
# leadership ends.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

# The command starts the worker as a daemon in its own session and then
# waits; the daemon's work is logged to all.work for the overlap check.
DAEMONIZE='( WORKER_PIDFILE="$WORKDIR/daemon.$KLE_IDENTITY" setsid bash "$WORKER_SH" "$WORKDIR/all.work" </dev/null >/dev/null 2>&1 & ); echo $$ > "$WORKDIR/main.$KLE_IDENTITY"; while :; do sleep 0.05; done'
start_daemonizing() { # ID [kle flags]
  local id=$1
  shift
  WORKDIR=$T "$KLE" run --lock-name dm --identity "$id" "${TIMINGS[@]}" "$@" \
    -- sh -c "$DAEMONIZE" >>"$T/$id.log" 2>&1 &
  eval "PID_$id=$!"
  KLE_PIDS+=("$!")
}
LOCK=dm

start_daemonizing a
wait_until 20 "a's daemon" file_exists "$T/daemon.a"
d=$(cat "$T/daemon.a")
m=$(cat "$T/main.a")
# The daemon really escaped: another session, another group, not the
# command's child.
[ "$(ps -o sid= -p "$d" | tr -d ' ')" != "$(ps -o sid= -p "$m" | tr -d ' ')" ] || fail "the daemon did not setsid"
[ "$(ps -o ppid= -p "$d" | tr -d ' ')" != "$m" ] || fail "the daemon is still the command's child"
kill -KILL "$PID_a"
wait_until 5 "a's daemon $d to die with kle" pid_gone "$d"
pass "SIGKILL of kle: the daemonized worker died too"

start_daemonizing b
wait_until 20 "b's daemon" file_exists "$T/daemon.b"
d=$(cat "$T/daemon.b")
start_replica c
wait_until 10 "c is up" file_exists "$T/c.addr"
kill -TERM "$PID_b"
wait "$PID_b"; rc=$?
[ "$rc" -eq 0 ] || fail "kle b exited $rc after SIGTERM"
pid_gone "$d" || fail "b's daemonized worker $d survived the end of b's leadership"
pass "end of leadership (SIGTERM): the daemonized worker was stopped before kle exited"
wait_until 10 "c leads" holder_is c
wait_until 10 "the worker of c" file_exists "$T/running.c"
check_overlap
