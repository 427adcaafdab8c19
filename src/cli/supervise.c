/*
 * The supervisor shim between kle and the command.
 *
 * kle spawns (posix_spawn), as the leader of a new process group,
 * kle-supervise (this code linked with libc only, supervise_main.c; or kle
 * itself when it is missing) as "kle-supervise __supervise STATUS_FD CTL_FD
 * PPID GRACE_MS [NOFILE] -- COMMAND...": a fresh single-threaded process
 * that needs nothing from kle to stop the command. NOFILE is the soft
 * descriptor limit the command gets ("inf" for none), when kle raised its
 * own.
 *
 * - The deadline guard. CTL_FD carries the leadership deadline from kle:
 *   8-byte absolute CLOCK_BOOTTIME nanoseconds, one at start (written
 *   before the fork, so it is there to read) and one after every renewal.
 *   If the deadline has already passed, the command is never started.
 *   A timerfd (CLOCK_BOOTTIME, absolute) fires at the deadline: the shim
 *   sends SIGTERM to every descendant and SIGKILL at deadline + grace,
 *   whatever kle is doing (frozen by SIGSTOP, blocked, slow). kle's grace
 *   rule (grace < lease duration - renew deadline) keeps deadline + grace
 *   before the lease can expire for anyone else.
 * - A child subreaper (PR_SET_CHILD_SUBREAPER): a command that daemonizes
 *   (double fork, setsid) stays the shim's descendant; when the command ends
 *   or is stopped, every descendant found in /proc is killed, not only the
 *   process group.
 * - kle's death: PR_SET_PDEATHSIG (SIGUSR1) or end of file on CTL_FD make
 *   the shim SIGKILL every descendant and exit.
 * - The shim's own death: the command runs with PR_SET_PDEATHSIG (SIGKILL),
 *   so a SIGKILL of kle and the shim together (kill -9 of both, pkill -9
 *   kle) does not leave it running unguarded. Its own children are not
 *   covered: only a cgroup (a container's, a systemd unit's) kills them
 *   all then.
 * - kle stops the command by SIGTERM to the group: the shim forwards it to
 *   descendants outside the group and SIGKILLs everything grace later (or at
 *   once on SIGUSR2).
 * - It reports on STATUS_FD one line "KIND VALUE": "exit STATUS" (the
 *   command's wait status), "exec ERRNO" (the command could not be
 *   executed), "expired 0" (the deadline had passed before the start),
 *   "guard STATUS" (stopped by the deadline guard).
 *
 * Every wait is an absolute CLOCK_BOOTTIME time on a timerfd, so a freeze
 * (SIGSTOP of the whole group, a suspended machine) cannot restart a wait.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kle/common.h"
#include "supervise.h"
#include "proctree.h"
#include "base/now.h"
#include "base/sat.h"

static int64_t boot_ns(void)
{
    return kle_now__ns(CLOCK_BOOTTIME);
}

/* a + b for b >= 0, INT64_MAX when it would overflow (no deadline: kle run
 * --leader-elect=false sends INT64_MAX). */
static void arm_at(int tfd, int64_t at_ns)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (at_ns <= 0)
        at_ns = 1; /* 0 would disarm; 1 ns is long past */
    its.it_value.tv_sec = (time_t)(at_ns / KLE_NS_PER_SEC);
    its.it_value.tv_nsec = (long)(at_ns % KLE_NS_PER_SEC);
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * Sends @p sig to every descendant of this process (proctree.c: the whole
 * of /proc, however many processes there are); with @p outside_group_only,
 * only to those outside our process group (the group gets kle's signal
 * directly). Without /proc, the command itself at least.
 */
static void signal_descendants(pid_t child, int sig, int outside_group_only)
{
    if (cli_signal_descendants(getpid(), sig, outside_group_only, getpgrp()) < 0 &&
        !outside_group_only)
        kill(child, sig);
}

/*
 * SIGKILLs every descendant and reaps them all; records the command's
 * status if it ends here. Never blocks on a child: a descendant that a
 * scan missed (started after it, or not readable then) is found and
 * killed by the next scan, 100 ms later at most. Returns once no child is
 * left: an orphaned descendant is reparented to us (the subreaper), so no
 * child means no descendant.
 */
static void kill_all_and_reap(pid_t child, int *child_status, int *child_done)
{
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
            if (p == child && !*child_done) {
                *child_status = status;
                *child_done = 1;
            }
        }
        if (p < 0 && errno == ECHILD)
            return;
        if (p < 0 && errno == EINTR)
            continue;
        signal_descendants(child, SIGKILL, 0);
        /* SIGCHLD is blocked (and read from the signalfd elsewhere): wait
         * for one here, for at most 100 ms, then look again. */
        struct timespec ts = {0, 100 * 1000000L};
        sigtimedwait(&chld, NULL, &ts);
    }
}

static void report(int fd, const char *kind, int value)
{
    char line[48];
    int n = snprintf(line, sizeof(line), "%s %d\n", kind, value);
    if (write(fd, line, (size_t)n) < 0) {
        /* kle is gone; nothing is left running anyway. */
    }
}

/* Reads every deadline waiting on @p fd; returns the newest, or @p cur.
 * Sets *eof when kle closed its end. */
static int64_t read_deadlines(int fd, int64_t cur, int *eof)
{
    for (;;) {
        int64_t v;
        ssize_t n = read(fd, &v, sizeof(v));
        if (n == (ssize_t)sizeof(v)) {
            if (v > cur)
                cur = v;
            continue;
        }
        if (n == 0)
            *eof = 1;
        else if (n < 0 && errno == EINTR)
            continue;
        return cur;
    }
}

static int parse_long(long *out, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* "inf" or a number: a descriptor limit. */
static int parse_rlim(rlim_t *out, const char *s)
{
    char *end;
    if (strcmp(s, "inf") == 0) {
        *out = RLIM_INFINITY;
        return 0;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-')
        return -1;
    *out = (rlim_t)v;
    return 0;
}

/* Closes every descriptor from 3 up but @p a and @p b: close_range (Linux
 * 5.9) around them; where it fails, each descriptor /proc/self/fd lists;
 * without /proc, every number up to the descriptor limit (kle raises its
 * own, so its descriptors may lie far above 1024). */
static void close_all_but(int a, int b)
{
    int keep[2] = {a < b ? a : b, a < b ? b : a};
    int from = 3, ok = 1;
    for (int i = 0; i < 2 && ok; i++) {
        if (keep[i] < from)
            continue;
        if (keep[i] > from)
            ok = close_range((unsigned)from, (unsigned)keep[i] - 1, 0) == 0;
        from = keep[i] + 1;
    }
    if (ok && close_range((unsigned)from, ~0U, 0) == 0)
        return;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char *end;
            long fd = strtol(e->d_name, &end, 10);
            if (*end || e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd == a || fd == b ||
                fd == dirfd(d))
                continue;
            close((int)fd);
        }
        closedir(d);
        return;
    }
    struct rlimit rl;
    long max = 1 << 20;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t lim =
            rl.rlim_max != RLIM_INFINITY && rl.rlim_max > rl.rlim_cur ? rl.rlim_max : rl.rlim_cur;
        if (lim != RLIM_INFINITY && lim < (rlim_t)max)
            max = (long)lim;
    }
    for (long fd = 3; fd < max; fd++)
        if (fd != a && fd != b)
            close((int)fd);
}

int cli_supervise_main(int argc, char **argv)
{
    sigset_t set;
    long status_l, ctl_l, ppid, grace_l;
    int status_fd, ctl_fd, sfd, tfd, exec_pipe[2];
    pid_t child;
    int64_t deadline = 0, grace_ns, kill_at = 0;
    int eof = 0, child_status = 0, child_done = 0, exec_errno = 0;
    enum { RUNNING, STOPPING } state = RUNNING;
    int guard = 0;
    rlim_t nofile = 0;

    /* STATUS_FD CTL_FD PPID GRACE_MS [NOFILE] -- COMMAND... */
    int with_nofile = argc >= 7 && strcmp(argv[4], "--") != 0 && strcmp(argv[5], "--") == 0;
    int dashes = with_nofile ? 5 : 4;
    if (argc < dashes + 2 || strcmp(argv[dashes], "--") != 0 ||
        parse_long(&status_l, argv[0], 0, 1 << 20) || parse_long(&ctl_l, argv[1], 0, 1 << 20) ||
        parse_long(&ppid, argv[2], 1, 1L << 30) || parse_long(&grace_l, argv[3], 0, 1L << 40) ||
        (with_nofile && parse_rlim(&nofile, argv[4]))) {
        fprintf(stderr, "kle __supervise: internal command; usage: kle __supervise STATUS_FD "
                        "CTL_FD PPID GRACE_MS [NOFILE] -- COMMAND\n");
        return CLI_EXIT_USAGE;
    }
    status_fd = (int)status_l;
    ctl_fd = (int)ctl_l;
    grace_ns = (int64_t)grace_l * KLE_NS_PER_MS;
    argv += dashes + 1; /* the command */

    /* kle's sockets and pipes (API connections, HTTP listener) are not the
     * command's business: keep only stdio and our two pipes. */
    close_all_but(status_fd, ctl_fd);
    fcntl(status_fd, F_SETFD, FD_CLOEXEC);
    fcntl(ctl_fd, F_SETFD, FD_CLOEXEC);
    /* The descriptor limit kle was started with, for the command (kle
     * raised its own). */
    if (with_nofile) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (nofile <= rl.rlim_max)) {
            rl.rlim_cur = nofile;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }

    sigfillset(&set);
    sigdelset(&set, SIGSEGV);
    sigdelset(&set, SIGBUS);
    sigdelset(&set, SIGFPE);
    sigdelset(&set, SIGILL);
    sigdelset(&set, SIGABRT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    /* Ask for SIGUSR1 when kle dies; if it died before that, the parent is
     * already someone else. */
    if (prctl(PR_SET_PDEATHSIG, SIGUSR1) < 0 || getppid() != (pid_t)ppid) {
        kill(0, SIGKILL);
        _exit(1);
    }
    /* Orphaned descendants (a daemonizing command) are reparented to us. */
    prctl(PR_SET_CHILD_SUBREAPER, 1);

    /* The deadline kle wrote before forking, and any newer one. */
    fcntl(ctl_fd, F_SETFL, O_NONBLOCK);
    deadline = read_deadlines(ctl_fd, 0, &eof);
    if (deadline <= boot_ns()) {
        report(status_fd, "expired", 0);
        _exit(0);
    }
    sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    tfd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (sfd < 0 || tfd < 0 || pipe2(exec_pipe, O_CLOEXEC) < 0) {
        report(status_fd, "exec", errno ? errno : EMFILE);
        _exit(1);
    }
    arm_at(tfd, deadline);

    pid_t shim = getpid();
    child = fork();
    if (child < 0) {
        report(status_fd, "exec", errno);
        _exit(1);
    }
    if (child == 0) {
        /* Same process group as the shim, so kle's signals reach both. */
        struct sigaction sa;
        sigset_t none;
        int err;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            sigaction(s, &sa, NULL);
        prctl(PR_SET_CHILD_SUBREAPER, 0);
        /* The command dies with the shim. Were kle and the shim both
         * killed (kill -9 of both, pkill -9 kle), nothing would be left to
         * stop it at the deadline; a shim already gone means the same. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != shim)
            _exit(126);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        /* Told to the shim, which tells kle; nothing written to stderr,
         * which may be a full pipe. */
        err = errno;
        if (write(exec_pipe[1], &err, sizeof(err)) < 0) {
            /* the shim sees end of file and the exit code */
        }
        _exit(err == ENOENT ? 127 : 126);
    }
    close(exec_pipe[1]);

    struct pollfd pf[4] = {
        {sfd, POLLIN, 0}, {tfd, POLLIN, 0}, {ctl_fd, POLLIN, 0}, {exec_pipe[0], POLLIN, 0}};
    for (;;) {
        if (poll(pf, 4, -1) < 0)
            continue;
        if (pf[3].revents) {
            int err;
            ssize_t n = read(exec_pipe[0], &err, sizeof(err));
            if (n == (ssize_t)sizeof(err))
                exec_errno = err;
            close(exec_pipe[0]);
            pf[3].fd = -1;
        }
        if (pf[2].revents) {
            int64_t d = read_deadlines(ctl_fd, deadline, &eof);
            if (eof) {
                /* kle is gone (its end closed with it): nothing may run. */
                kill_all_and_reap(child, &child_status, &child_done);
                _exit(1);
            }
            if (state == RUNNING && d > deadline) {
                deadline = d;
                arm_at(tfd, deadline);
            }
        }
        if (pf[1].revents) {
            uint64_t ticks;
            if (read(tfd, &ticks, sizeof(ticks)) > 0 &&
                boot_ns() >= (state == RUNNING ? deadline : kill_at)) {
                if (state == RUNNING) {
                    /* Leadership ended and kle did not stop us: do it. */
                    guard = 1;
                    state = STOPPING;
                    kill_at = kle_sat__add(deadline, grace_ns);
                    kill(0, SIGTERM);
                    signal_descendants(child, SIGTERM, 1);
                    arm_at(tfd, kill_at);
                } else {
                    kill_all_and_reap(child, &child_status, &child_done);
                }
            }
        }
        if (pf[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                int sig = (int)si.ssi_signo;
                if (sig == SIGUSR1) {
                    /* kle is gone: nothing may keep running. */
                    kill_all_and_reap(child, &child_status, &child_done);
                    _exit(1);
                }
                if (sig == SIGUSR2) {
                    /* kle's grace is over. */
                    kill_all_and_reap(child, &child_status, &child_done);
                } else if (sig == SIGCHLD) {
                    int st;
                    pid_t p;
                    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
                        if (p == child) {
                            child_status = st;
                            child_done = 1;
                        }
                    }
                } else if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT) {
                    /* kle stops the command (the group got it too): the
                     * descendants outside the group get it from us, and
                     * everything is killed after the grace, and never
                     * later than the leadership deadline + grace. */
                    int64_t at = boot_ns() + grace_ns;
                    if (at > kle_sat__add(deadline, grace_ns))
                        at = kle_sat__add(deadline, grace_ns);
                    if (state == RUNNING)
                        signal_descendants(child, SIGTERM, 1);
                    if (state == RUNNING || at < kill_at) {
                        kill_at = at;
                        arm_at(tfd, kill_at);
                    }
                    state = STOPPING;
                }
            }
        }
        if (child_done) {
            /* The command ended: whatever it left behind goes too. */
            if (pf[3].fd >= 0) {
                int err;
                fcntl(exec_pipe[0], F_SETFL, O_NONBLOCK);
                if (read(exec_pipe[0], &err, sizeof(err)) == (ssize_t)sizeof(err))
                    exec_errno = err;
            }
            kill_all_and_reap(child, &child_status, &child_done);
            if (exec_errno)
                report(status_fd, "exec", exec_errno);
            else
                report(status_fd, guard ? "guard" : "exit", child_status);
            _exit(0);
        }
    }
}
