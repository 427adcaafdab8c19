# The workers' LEAD lines ("TIME_US LEAD IDENTITY TOKEN PID", written by
# tests/support/worker.sh) read as a work log grows, for the benchmarks.
# Nothing here forks (no grep, no sleep, no command substitution): on a
# 2-core machine a watch loop forking every few milliseconds takes CPU from
# the very handover it times. Source it; call from the main shell only (a
# subshell would read the log on its own and lose the lines it read).
#   leads_reset LOG   follow LOG (it may not exist yet) from its start
#   leads_scan        append the LEAD lines written since the last call to LEADS
#   leads_wait N SECS until LEADS holds N lines; the Nth in LEAD_LINE
#                     (returns 1 after SECS seconds without)
LEADS=() LEADS_FD='' LEADS_LOG='' LEADS_PART='' LEAD_LINE=''
LEADS_TICK=$(mktemp -u "${TMPDIR:-/tmp}/kle-leads-XXXXXX")
mkfifo "$LEADS_TICK"
exec {LEADS_TICK_FD}<>"$LEADS_TICK" # never written: read -t on it sleeps without a fork
rm -f "$LEADS_TICK"

leads_reset() {
  [ -z "$LEADS_FD" ] || exec {LEADS_FD}<&-
  LEADS=() LEADS_FD='' LEADS_LOG=$1 LEADS_PART=''
}

leads_scan() {
  local line
  if [ -z "$LEADS_FD" ]; then
    [ -f "$LEADS_LOG" ] || return 0
    exec {LEADS_FD}<"$LEADS_LOG"
  fi
  while :; do
    if IFS= read -r -u "$LEADS_FD" line; then
      line=$LEADS_PART$line LEADS_PART=''
      [[ $line != *" LEAD "* ]] || LEADS+=("$line")
    else
      LEADS_PART+=$line # a line being written: the next read completes it
      return 0
    fi
  done
}

leads_wait() {
  local t=$EPOCHREALTIME
  local end=$(( ${t/./} + $2 * 1000000 ))
  leads_scan
  while [ "${#LEADS[@]}" -lt "$1" ]; do
    t=$EPOCHREALTIME
    [ "${t/./}" -lt "$end" ] || return 1
    read -r -t 0.002 -u "$LEADS_TICK_FD" _ || true
    leads_scan
  done
  LEAD_LINE=${LEADS[$(( $1 - 1 ))]}
}
