#!/usr/bin/env bash
# The e2e worker: stands for the leader's work. Appends to the log file $1
# one line per event, "TIME_US EVENT IDENTITY TOKEN PID", TIME_US being
# CLOCK_REALTIME microseconds (bash's $EPOCHREALTIME, no fork):
#   LEAD  when it starts, BEAT every 50 ms while it works, STOP on SIGTERM.
# The identity and token come from kle (KLE_IDENTITY, KLE_LEADER_TRANSITIONS).
# tests/support/overlap_check.py reads these logs.
#   WORKER_IGNORE_TERM=1  ignore SIGTERM (only SIGKILL ends it)
#   WORKER_IGNORE_TERM_FILE=PATH  ignore SIGTERM while PATH exists (bench/chaos
#                         turns it on for one replica during a fault)
#   WORKER_RUN_MS=N       exit 0 by itself after N ms
#   WORKER_PIDFILE=PATH   write the pid there (removed on STOP)
log=$1
id=${KLE_IDENTITY:-?}
tok=${KLE_LEADER_TRANSITIONS:-?}
exec 2>/dev/null
# No command substitution (a fork, which can fail or stall under load).
event() {
  local t=$EPOCHREALTIME
  printf '%s %s %s %s %s\n' "${t/./}" "$1" "$id" "$tok" "$$" >>"$log"
}
event LEAD
[ -n "${WORKER_PIDFILE:-}" ] && echo "$$" >"$WORKER_PIDFILE"
if [ "${WORKER_IGNORE_TERM:-0}" = 1 ]; then
  trap '' TERM
else
  on_term() {
    [ -n "${WORKER_IGNORE_TERM_FILE:-}" ] && [ -e "$WORKER_IGNORE_TERM_FILE" ] && return
    event STOP
    [ -n "${WORKER_PIDFILE:-}" ] && rm -f "$WORKER_PIDFILE"
    exit 0
  }
  trap on_term TERM
fi
start=$EPOCHREALTIME
start=${start/./}
while :; do
  event BEAT
  now=$EPOCHREALTIME
  now=${now/./}
  if [ -n "${WORKER_RUN_MS:-}" ] && [ $(( (now - start) / 1000 )) -ge "$WORKER_RUN_MS" ]; then
    event STOP
    [ -n "${WORKER_PIDFILE:-}" ] && rm -f "$WORKER_PIDFILE"
    exit 0
  fi
  sleep 0.05
done
