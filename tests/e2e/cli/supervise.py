#!/usr/bin/env python3
"""The supervisor shim on its own (kle __supervise STATUS_FD CTL_FD PPID
GRACE_MS [NOFILE] -- COMMAND), driven as kle drives it: the deadline (absolute
CLOCK_BOOTTIME ns, 8 bytes) in the control pipe, the report read from the
status pipe. Checks that a command is never started past its deadline,
that the deadline stops it (SIGTERM, SIGKILL at deadline + grace) when no
extension comes, that extensions keep it running, and that exec failures
are reported as such, and that the command does not outlive the shim
when both kle and the shim are killed (kill -9 of both, pkill -9 kle).
Both builds of the shim (kle-supervise, and kle itself) pass on to the
command no descriptor but stdio, and the descriptor limit NOFILE, also
descriptors above 1024 where close_range(2) fails (it is made to, by the
preloaded $KLE_NO_CLOSE_RANGE); and the shim never waits on a descendant
that a look at /proc missed: it looks again and kills it.
"""
import os
import resource
import struct
import subprocess
import sys
import tempfile
import time

KLE = os.path.join(os.environ["KLE_BUILD_DIR"], "src/cli/kle")
KLE_SUPERVISE = os.path.join(os.environ["KLE_BUILD_DIR"], "src/cli/kle-supervise")
BOOT = time.CLOCK_BOOTTIME
failed = False


# The command of cases 7 and 8: writes its descriptors, soft descriptor
# limit, parent's program and parent's first argument to argv[1], a line each.
FD_PROBE = ["python3", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "../../support/fd_probe.py")]


def boot_ns():
    return time.clock_gettime_ns(BOOT)


def fail(msg):
    global failed
    print("FAIL:", msg)
    failed = True


def ok(msg):
    if not failed:
        print("ok:", msg)


def start(deadline_ns, grace_ms, cmd, shim=KLE, extra=(), more_fds=(), env=None):
    st_r, st_w = os.pipe()
    ctl_r, ctl_w = os.pipe()
    os.write(ctl_w, struct.pack("=q", deadline_ns))
    p = subprocess.Popen([shim, "__supervise", str(st_w), str(ctl_r), str(os.getpid()),
                          str(grace_ms), *extra, "--"] + cmd,
                         pass_fds=(st_w, ctl_r, *more_fds), start_new_session=True, env=env)
    os.close(st_w)
    os.close(ctl_r)
    return p, st_r, ctl_w


def report(p, st_r, ctl_w, timeout=10):
    out = b""
    end = time.monotonic() + timeout
    os.set_blocking(st_r, False)
    while time.monotonic() < end:
        try:
            b = os.read(st_r, 64)
            if not b:
                break
            out += b
        except BlockingIOError:
            time.sleep(0.01)
    try:
        p.wait(timeout=5)
    except subprocess.TimeoutExpired:
        p.kill()  # hung: no report, which the case fails on
        p.wait()
    os.close(st_r)
    os.close(ctl_w)
    return out.decode().split()


# Case 11 shows the shim a /proc of the test's making (a mount namespace).
unshare_ok = subprocess.run(["unshare", "-m", "true"], stderr=subprocess.DEVNULL).returncode == 0

with tempfile.TemporaryDirectory() as t:
    # 1. A deadline already passed: the command never starts.
    p, s, c = start(boot_ns() - 1, 500, ["sh", "-c", f"touch {t}/ran"])
    r = report(p, s, c)
    if r != ["expired", "0"]:
        fail(f"past deadline: report {r}")
    if os.path.exists(f"{t}/ran"):
        fail("past deadline: the command ran")
    ok("a command past its deadline is never started")

    # 2. No extension: SIGTERM at the deadline.
    t0 = boot_ns()
    p, s, c = start(t0 + 1_500_000_000, 300,
                    ["sh", "-c", f"trap 'touch {t}/term; exit 0' TERM; while :; do sleep 0.02; done"])
    r = report(p, s, c)
    dt = (boot_ns() - t0) / 1e6
    if r[:1] != ["guard"] or not os.path.exists(f"{t}/term"):
        fail(f"deadline: report {r}, SIGTERM seen {os.path.exists(t + '/term')}")
    if not 1480 <= dt < 2500:
        fail(f"deadline 1500 ms: stopped after {dt:.0f} ms")
    ok(f"SIGTERM at the deadline (stopped {dt:.0f} ms after start, deadline 1500 ms)")

    # 3. SIGTERM ignored: SIGKILL at deadline + grace, daemonized child too.
    t0 = boot_ns()
    p, s, c = start(t0 + 1_200_000_000, 300,
                    ["sh", "-c", f"trap '' TERM; (setsid sh -c 'trap \"\" TERM; echo $$ > {t}/d; "
                     f"while :; do sleep 0.02; done' &); while :; do sleep 0.02; done"])
    r = report(p, s, c)
    dt = (boot_ns() - t0) / 1e6
    if r != ["guard", "9"]:
        fail(f"grace: report {r}, want guard 9 (SIGKILL)")
    if not 1480 <= dt < 2500:
        fail(f"deadline 1200 ms + grace 300 ms: killed after {dt:.0f} ms")
    d = int(open(f"{t}/d").read())
    try:
        os.kill(d, 0)
        fail(f"the daemonized child {d} survived")
    except ProcessLookupError:
        pass
    ok(f"SIGKILL at deadline + grace ({dt:.0f} ms, bound 1500 ms), daemon included")

    # 4. Extensions keep the command running past the first deadline.
    t0 = boot_ns()
    p, s, c = start(t0 + 1_500_000_000, 200, ["sh", "-c", "while :; do sleep 0.02; done"])
    for i in range(20):
        time.sleep(0.1)
        os.write(c, struct.pack("=q", boot_ns() + 1_000_000_000))
    if p.poll() is not None:
        fail("the command stopped although its deadline was extended")
    last = boot_ns()
    r = report(p, s, c)
    dt = (boot_ns() - last) / 1e6
    if r[:1] != ["guard"] or not 950 <= dt < 2000:
        fail(f"after the last extension: report {r} after {dt:.0f} ms (deadline 1000 ms)")
    ok(f"extensions kept it running; stopped {dt:.0f} ms after the last (deadline 1000 ms)")

    # 5. A command that cannot be executed.
    p, s, c = start(boot_ns() + 5_000_000_000, 200, [f"{t}/missing"])
    r = report(p, s, c)
    if r != ["exec", "2"]:
        fail(f"missing command: report {r}, want exec 2 (ENOENT)")
    ok("exec failure reported as such")

    # 6. The shim killed outright (SIGKILL: no chance to stop anything):
    # the command must not run on without a guard. Its parent-death signal
    # (SIGKILL) takes it down at once.
    p, s, c = start(boot_ns() + 30_000_000_000, 200,
                    ["sh", "-c", f"echo $$ > {t}/c.tmp; mv {t}/c.tmp {t}/c; "
                     "while :; do sleep 0.02; done"])
    end = time.monotonic() + 10
    while not os.path.exists(f"{t}/c") and time.monotonic() < end:
        time.sleep(0.01)
    cmd_pid = int(open(f"{t}/c").read())
    t0 = time.monotonic()
    p.kill()
    p.wait(timeout=5)

    def running(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False
    while running(cmd_pid) and time.monotonic() < t0 + 5:
        time.sleep(0.01)
    if running(cmd_pid):
        os.kill(cmd_pid, 9)
        fail(f"the command {cmd_pid} outlived its SIGKILLed shim")
    ok(f"the command died with its shim ({(time.monotonic() - t0) * 1000:.0f} ms)")
    os.close(s)
    os.close(c)

    for shim in (KLE_SUPERVISE, KLE):
        name = os.path.basename(shim)
        # 7. Inherited descriptors below the two pipes (kle's are
        # close-on-exec; a library's may not be): the command gets stdio
        # only. NOFILE sets its soft descriptor limit.
        below = [os.open("/dev/null", os.O_RDONLY) for _ in range(3)]
        p, s, c = start(boot_ns() + 10_000_000_000, 200,
                        [*FD_PROBE, f"{t}/probe.{name}"],
                        shim=shim, extra=["300"], more_fds=below)
        for fd in below:
            os.close(fd)
        r = report(p, s, c)
        lines = open(f"{t}/probe.{name}").read().split("\n")
        fds = sorted(lines[0].split(), key=int)
        if r != ["exit", "0"] or fds != ["0", "1", "2"]:
            fail(f"{name}: report {r}, the command's descriptors {fds}, want 0 1 2")
        nofile = lines[1].strip()
        if nofile != "300":
            fail(f"{name}: the command's descriptor limit is {nofile}, want 300 (NOFILE)")
        ok(f"{name}: the command gets stdio only, and the soft descriptor limit NOFILE")

        # 8. Descriptors on both sides of the pipes, numbered around them.
        lo = [os.open("/dev/null", os.O_RDONLY) for _ in range(2)]
        st_r, st_w = os.pipe()
        mid = os.open("/dev/null", os.O_RDONLY)
        ctl_r, ctl_w = os.pipe()
        hi = [os.open("/dev/null", os.O_RDONLY) for _ in range(2)]
        os.write(ctl_w, struct.pack("=q", boot_ns() + 10_000_000_000))
        keep = (*lo, st_w, mid, ctl_r, *hi)
        p = subprocess.Popen([shim, "__supervise", str(st_w), str(ctl_r), str(os.getpid()),
                              "200", "--", *FD_PROBE, f"{t}/probe2.{name}"],
                             pass_fds=keep, start_new_session=True)
        for fd in (*lo, st_w, mid, ctl_r, *hi):
            os.close(fd)
        r = report(p, st_r, ctl_w)
        fds = sorted(open(f"{t}/probe2.{name}").read().split("\n")[0].split(), key=int)
        if r != ["exit", "0"] or fds != ["0", "1", "2"]:
            fail(f"{name}: descriptors {keep} around the pipes: report {r}, "
                 f"the command's descriptors {fds}, want 0 1 2")
        ok(f"{name}: descriptors below, between and above the pipes are closed")

        # 10. close_range(2) unavailable: the fallback closes descriptors
        # far above 1024 too (kle raises its own limit to the hard one).
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard >= 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
            high = os.dup2(os.open("/dev/null", os.O_RDONLY), 3000)
            env = dict(os.environ, LD_PRELOAD=os.environ["KLE_NO_CLOSE_RANGE"],
                       ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                       ":verify_asan_link_order=0")
            p, s, c = start(boot_ns() + 10_000_000_000, 200, [*FD_PROBE, f"{t}/probe3.{name}"],
                            shim=shim, extra=["300"], more_fds=(high,), env=env)
            os.close(high)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
            r = report(p, s, c)
            fds = sorted(open(f"{t}/probe3.{name}").read().split("\n")[0].split(), key=int)
            if r != ["exit", "0"] or fds != ["0", "1", "2"]:
                fail(f"{name}: without close_range, descriptor 3000: report {r}, "
                     f"the command's descriptors {fds}, want 0 1 2")
            ok(f"{name}: without close_range, descriptors above 1024 are closed too")
        else:
            print(f"skip: {name}: hard descriptor limit {hard}, below 4096")

        # 11. A descendant that a look at /proc missed: the shim must not
        # wait on it, but look again. The shim runs in a mount namespace
        # whose /proc is a directory the test fills: it shows the command
        # (C), not its child (E, which ignores SIGTERM). At deadline + grace
        # the shim kills C, and E, reparented to it, is the one child left;
        # only when the test shows E too can the shim find and kill it.
        # A shim that waited for a child to end would wait the 100 s of E.
        if unshare_ok:
            fake, real = f"{t}/proc.{name}", f"{t}/realproc.{name}"
            os.mkdir(fake)
            os.mkdir(real)  # the real /proc, inside the namespace: what fake links to
            cmd = ["sh", "-c", f"trap '' TERM; sleep 100 & echo $! > {t}/E.{name}; "
                   f"echo $$ > {t}/C.{name}; wait"]
            st_r, st_w = os.pipe()
            ctl_r, ctl_w = os.pipe()
            t0 = boot_ns()
            os.write(ctl_w, struct.pack("=q", t0 + 1_000_000_000))
            p = subprocess.Popen(["unshare", "-m", "sh", "-c",
                                  f'mount --bind /proc {real} && mount --bind {fake} /proc && '
                                  'exec "$0" "$@"', shim,
                                  "__supervise", str(st_w), str(ctl_r), str(os.getpid()), "200",
                                  "--", *cmd], pass_fds=(st_w, ctl_r), start_new_session=True)
            os.close(st_w)
            os.close(ctl_r)
            end = time.monotonic() + 10
            while not (os.path.exists(f"{t}/C.{name}") and os.path.exists(f"{t}/E.{name}")) \
                    and time.monotonic() < end:
                time.sleep(0.01)
            cpid = int(open(f"{t}/C.{name}").read())
            epid = int(open(f"{t}/E.{name}").read())
            os.symlink(f"{real}/{cpid}", f"{fake}/{cpid}")
            # C is killed at deadline + grace (1.2 s); E lives on, unseen.
            while os.path.exists(f"/proc/{cpid}/stat") and time.monotonic() < end:
                time.sleep(0.01)
            time.sleep(0.3)
            if not os.path.exists(f"/proc/{epid}/stat"):
                fail(f"{name}: E {epid} died without being seen: the test shows nothing")
            os.symlink(f"{real}/{epid}", f"{fake}/{epid}")
            r = report(p, st_r, ctl_w, timeout=5)
            dt = (boot_ns() - t0) / 1e6
            if r != ["guard", "9"] or dt > 4000:
                fail(f"{name}: a descendant missed by one look: report {r} after {dt:.0f} ms, "
                     f"want guard 9 once it could be seen (about 1600 ms)")
            if os.path.exists(f"/proc/{epid}/stat") and \
                    open(f"/proc/{epid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                os.kill(epid, 9)
                fail(f"{name}: E {epid} survived")
            ok(f"{name}: a descendant that one look at /proc missed is found by the next "
               f"({dt:.0f} ms)")
        else:
            print(f"skip: {name}: no mount namespace (unshare -m) to show the shim another /proc")

        # 9. A NOFILE that is not a number is refused as a usage error.
        p, s, c = start(boot_ns() + 10_000_000_000, 200, ["true"], shim=shim, extra=["many"])
        r = report(p, s, c)
        if p.returncode != 2 or r:
            fail(f"{name}: NOFILE 'many': exit {p.returncode}, report {r}, want 2 and none")
        ok(f"{name}: a NOFILE that is not a number is a usage error")

sys.exit(1 if failed else 0)
