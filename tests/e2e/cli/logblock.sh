#!/usr/bin/env bash
# A blocked log output never blocks the election: kle -v=5 writes its log
# into a FIFO that nobody reads any more (a stalled log collector). kle must
# keep renewing (the lease's renewTime keeps moving, no one else takes
# over) and count the lines it drops.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1
TIMINGS=(--lease-duration 3s --renew-deadline 2s --retry-period 300ms)

# The log collector: drains the FIFO until $T/stall exists, then fills the
# pipe to the brim and holds it full.
mkfifo "$T/err.fifo"
python3 - "$T" <<'PY' &
import errno, fcntl, os, sys, time
t = sys.argv[1]
fd = os.open(t + "/err.fifo", os.O_RDWR | os.O_NONBLOCK)
open(t + "/fifo.open", "w").write("1")
while not os.path.exists(t + "/stall"):
    try:
        os.read(fd, 65536)
    except BlockingIOError:
        time.sleep(0.02)
n = 0
while True:
    try:
        n += os.write(fd, b"x" * 4096)
    except BlockingIOError:
        try:
            n += os.write(fd, b"x")
        except BlockingIOError:
            break
open(t + "/fifo.full", "w").write(str(n))
while not os.path.exists(t + "/drain"):
    time.sleep(0.05)
fl = fcntl.fcntl(fd, fcntl.F_GETFL)
fcntl.fcntl(fd, fcntl.F_SETFL, fl & ~os.O_NONBLOCK)
out = open(t + "/drained.log", "wb")
while True:
    b = os.read(fd, 65536)
    if not b:
        break
    out.write(b)
    out.flush()
PY
KLE_PIDS+=("$!")
wait_until 30 "the log collector" file_exists "$T/fifo.open"

WORKDIR=$T "$KLE" run --lock-name e2e --identity a "${TIMINGS[@]}" -v=5 \
  --http-addr 127.0.0.1:0 --http-addr-file "$T/a.addr" \
  -- sh -c "$WORKER" >>"$T/a.out" 2>"$T/err.fifo" &
PID_a=$!; KLE_PIDS+=("$!")
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
start_replica b
wait_until 10 "b is up" file_exists "$T/b.addr"

renew_time() {
  "$KLE" status --lock-name e2e -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["renewTime"])'
}
tok0=$(transitions)
touch "$T/stall"
wait_until 10 "the log pipe is full" file_exists "$T/fifo.full"
r0=$(renew_time)
# Longer than the lease: every renewal in it logged at -v=5 into the full pipe.
end=$(( $(now_ms) + 5000 ))
while [ "$(now_ms)" -lt "$end" ]; do
  holder_is a || fail "a lost the lease while its log was blocked (holder \"$(holder)\")"
  [ "$(running_workers)" -eq 1 ] || fail "$(running_workers) workers running"
  sleep 0.3
done
r1=$(renew_time)
[ "$r1" != "$r0" ] || fail "renewTime stayed at $r0 for 5 s"
[ "$(transitions)" -eq "$tok0" ] || fail "the fencing token moved: $tok0 -> $(transitions)"
m=$(curl -sS "http://$(cat "$T/a.addr")/metrics")
dropped=$(sed -n 's/^kle_log_dropped_lines_total \([0-9]*\)$/\1/p' <<<"$m")
[ -n "$dropped" ] || fail "no kle_log_dropped_lines_total in /metrics: $m"
pass "log blocked for 5 s: a kept leading, renewTime $r0 -> $r1, $dropped lines dropped so far"

# The collector drains again: the log resumes, with the count of lost lines
# when there were any.
touch "$T/drain"
if [ "$dropped" -gt 0 ]; then
  wait_until 10 "the dropped-lines warning" grep -q "log lines dropped" "$T/drained.log"
fi
wait_until 10 "new log lines" grep -q "successfully renewed lease" "$T/drained.log"
check_overlap --max-intervals 1
pass "log output resumed after the stall"
