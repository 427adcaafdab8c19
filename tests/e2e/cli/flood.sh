#!/usr/bin/env bash
# A connection flood on --http-addr must not starve the election of file
# descriptors: the HTTP server holds a bounded number of connections, so a
# follower under the flood (descriptor limit 256) takes over a released lease
# once and keeps it, instead of acquiring and stepping down in a loop with a
# climbing fencing token. And /healthz keeps answering during the flood.
source "$KLE_SOURCE_DIR/tests/support/apiserver.sh"
source "$KLE_SOURCE_DIR/tests/e2e/cli/lib.sh"
kle_apiserver_start || exit 1

start_replica a
wait_until 20 "a leads" holder_is a
wait_until 10 "the worker of a" file_exists "$T/running.a"
# b with a small descriptor limit (soft and hard), as in a tight container.
KLE_WRAPPER=(prlimit --nofile=256:256 --)
start_replica b
KLE_WRAPPER=()
wait_until 10 "b is up" file_exists "$T/b.addr"

# 600 connections held open on b's HTTP port, re-opened when closed.
python3 - "$(cat "$T/b.addr")" "$T" <<'PY' &
import os, resource, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
t = sys.argv[2]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
socks = []
def fill():
    while len(socks) < 600:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect((host, int(port)))
        except BlockingIOError:
            pass
        socks.append(s)
fill()
open(t + "/flooding", "w").write("1")
while not os.path.exists(t + "/stop-flood"):
    time.sleep(0.5)
    # Drop what the server closed, open anew.
    alive = []
    for s in socks:
        try:
            if s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                s.close()
                continue
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            s.close()
            continue
        alive.append(s)
    socks[:] = alive
    fill()
PY
KLE_PIDS+=("$!")
wait_until 10 "the flood" file_exists "$T/flooding"
sleep 1
# Probes from the flood's own address keep being answered (a liveness
# probe must not restart a healthy replica): 20, one second allowed each,
# as a kubelet's default timeoutSeconds.
baddr=$(cat "$T/b.addr")
slowest=0
for i in $(seq 20); do
  out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total}' --max-time 1 "http://$baddr/healthz" 2>&1) ||
    fail "probe $i of /healthz during the flood: $out"
  [ "${out% *}" = 200 ] || fail "probe $i of /healthz during the flood: $out"
  ms=$(awk -v t="${out#* }" 'BEGIN { printf "%d", t * 1000 }')
  [ "$ms" -gt "$slowest" ] && slowest=$ms
  sleep 0.1
done
pass "/healthz answered 20 probes of 20 during the flood (the slowest in $slowest ms)"
tok0=$(transitions)
kill -TERM "$PID_a"
wait "$PID_a"
wait_until 10 "b takes over under the flood" holder_is b
wait_until 10 "the worker of b" file_exists "$T/running.b"
# Several lease durations: b keeps the lease, its worker runs once.
end=$(( $(now_ms) + 5000 ))
while [ "$(now_ms)" -lt "$end" ]; do
  holder_is b || fail "b lost the lease under the flood (holder \"$(holder)\")"
  sleep 0.3
done
tok=$(transitions)
[ "$tok" -eq $((tok0 + 1)) ] || fail "fencing token $tok0 -> $tok under the flood (acquire/step-down loop)"
n=$(grep -c "successfully acquired" "$T/b.log")
[ "$n" -eq 1 ] || fail "b acquired $n times"
! grep -q "Too many open files" "$T/b.log" || fail "b ran out of descriptors: $(grep -m1 'Too many open files' "$T/b.log")"
touch "$T/stop-flood"
check_overlap --max-intervals 2
pass "under a flood of 600 connections b took over once (token $tok0 -> $tok) and kept leading"
