# Helpers of the kle end-to-end tests. Source after tests/support/apiserver.sh.
set -uo pipefail

KLE="$KLE_BUILD_DIR/src/cli/kle"
T=$(mktemp -d "${TMPDIR:-/tmp}/kle-e2e-XXXXXX")
KLE_PIDS=()
FAILED=0

# Short timings keep the suite quick: lease 2 s, renew 1.5 s, retry 0.3 s.
TIMINGS=(--lease-duration 2s --renew-deadline 1.5s --retry-period 300ms)
# The replicas of start_replica campaign again after a loss (a worker that
# runs until stopped, as in a Deployment that keeps its pods); tests of the
# default, run-once --on-exit=exit, set ONEXIT=().
ONEXIT=(--on-exit=release)

cleanup() {
  local p rc=$?
  for p in "${KLE_PIDS[@]}"; do
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  # Every e2e test ends with the overlap check of whatever workers ran
  # (also after a failure, to tell whether two leaders worked at once).
  if compgen -G "$T/*.work" >/dev/null; then
    sleep 0.2 # the last workers, killed with kle, have written their last line
    if ! python3 "$OVERLAP_CHECK" "$T"/*.work; then
      FAILED=1
      rc=1
    fi
  fi
  kle_apiserver_stop >/dev/null 2>&1
  if [ "$FAILED" -eq 0 ]; then rm -rf "$T"; else echo "kept $T" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

fail() {
  FAILED=1
  echo "FAIL: $*" >&2
  local f
  for f in "$T"/*.log; do
    [ -f "$f" ] || continue
    echo "--- $f" >&2
    tail -n 40 "$f" >&2
  done
  exit 1
}
pass() { echo "ok: $*"; }

now_ms() { date +%s%3N; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls every 50 ms.
wait_until() {
  local secs=$1 what=$2 end
  shift 2
  end=$(( $(now_ms) + secs * 1000 ))
  until "$@"; do
    [ "$(now_ms)" -lt "$end" ] || fail "timed out after ${secs}s waiting for: $what"
    sleep 0.05
  done
}

# The worker (tests/support/worker.sh): records its start (identity, token,
# pid) in $T/starts, its pid in $T/running.ID while it runs, and LEAD, BEAT
# and STOP lines in $T/all.work, which check_overlap reads.
WORKER_SH="$KLE_SOURCE_DIR/tests/support/worker.sh"
OVERLAP_CHECK="$KLE_SOURCE_DIR/tests/support/overlap_check.py"
export WORKER_SH
WORKER='echo "$KLE_IDENTITY $KLE_LEADER_TRANSITIONS $$" >> "$WORKDIR/starts"; WORKER_PIDFILE="$WORKDIR/running.$KLE_IDENTITY" exec bash "$WORKER_SH" "$WORKDIR/all.work"'

# check_overlap [overlap_check.py args]: no two workers of $T/*.work ever
# worked at once, fencing tokens in order. Also run at exit.
check_overlap() {
  local out
  out=$(python3 "$OVERLAP_CHECK" "$@" "$T"/*.work 2>&1) || fail "$out"
  echo "$out"
}

# start_replica ID [kle flags...]: kle run of the worker; log in $T/ID.log.
# KLE_WRAPPER (an array) runs kle through a wrapper (prlimit, ...).
start_replica() {
  local id=$1
  shift
  WORKDIR=$T ${KLE_WRAPPER[@]+"${KLE_WRAPPER[@]}"} "$KLE" run --lock-name "${LOCK:-e2e}" --identity "$id" "${TIMINGS[@]}" \
    ${ONEXIT[@]+"${ONEXIT[@]}"} --http-addr 127.0.0.1:0 --http-addr-file "$T/$id.addr" "$@" \
    -- sh -c "$WORKER" >>"$T/$id.log" 2>&1 &
  eval "PID_$id=$!"
  KLE_PIDS+=("$!")
}

# holder: the lock's holder per kle status -o json ("" when none).
holder() {
  "$KLE" status --lock-name "${LOCK:-e2e}" -o json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["holderIdentity"])' 2>/dev/null
}
holder_is() { [ "$(holder)" = "$1" ]; }
# holder_of LOCK: the holder of another lock ("" when none or no such lock).
holder_of() { LOCK=$1 holder; }
holder_not() { local h; h=$(holder); [ -n "$h" ] && [ "$h" != "$1" ]; }
transitions() {
  "$KLE" status --lock-name "${LOCK:-e2e}" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["leaderTransitions"])'
}
# Workers alive (a SIGKILLed worker leaves its running.ID file behind).
running_workers() {
  local n=0 f
  for f in "$T"/running.*; do
    [ -f "$f" ] && ! pid_gone "$(cat "$f" 2>/dev/null)" && n=$((n + 1))
  done
  echo "$n"
}
# Gone, or a zombie waiting for its new parent to reap it.
pid_gone() { ! kill -0 "$1" 2>/dev/null || ps -o stat= -p "$1" 2>/dev/null | grep -q Z; }
file_exists() { [ -s "$1" ]; }
