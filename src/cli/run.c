/*
 * kle run: campaign for the lock and run a command only while leading.
 *
 * Threads: the main thread runs one elector per campaign (kle_elector_run);
 * the elector runs on_started_leading on its own thread, which starts the
 * command through the supervisor shim (supervise.c) and polls the leading
 * fd and the shim's status pipe; a signal thread turns SIGTERM and SIGINT
 * into kle_elector_stop(); with --timeout, a thread stops the campaign when
 * it has not led in time; the HTTP server has a thread of its own (http.c).
 * With --leader-elect=false the main thread runs the command itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proctree.h"
#include "run.h"
#include "base/now.h"

extern char **environ;

typedef struct campaign {
    cli_run_state *st;
    const char *identity;
    const char *self_exe;
    char supervisor[4096]; /* kle-supervise, or "" to run self_exe __supervise */
    char lock_desc[512];
    kle_elector *elector;
    int child_done;       /* the command exited on its own (on-exit release/exit) */
    int child_code;       /* its exit code (128 + signal when killed) */
    int exec_failed;      /* the command could not be executed: kle exits with this code */
    int start_failed;     /* the shim could not be started (resources): back off */
    int led;              /* on_started_leading ran in this campaign */
    int lost;             /* the supervisor saw the deadline pass: leadership was lost */
    int quick_exits;      /* runs in a row shorter than CLI_BACKOFF_CAP_MS: the back-off's n */
    int64_t release_wait; /* --on-exit=release: the wait before campaigning again */
} campaign;

/* What the shim reported (supervise.c). */
typedef enum child_kind { CHILD_EXIT, CHILD_EXEC, CHILD_EXPIRED, CHILD_GUARD } child_kind;

typedef struct child_result {
    child_kind kind;
    int status; /* wait status (EXIT, GUARD) or errno (EXEC) */
} child_result;

typedef struct child_proc {
    pid_t pid;  /* the shim: also the process group */
    int status; /* status pipe, read end */
    int ctl;    /* deadline pipe, write end (non-blocking) */
} child_proc;

static volatile sig_atomic_t shutting_down;
/* RLIMIT_NOFILE as kle found it: restored for the command. */
static struct rlimit nofile_orig;
static int nofile_raised;

/* Every wait of kle run is on CLOCK_BOOTTIME, which keeps counting while
 * the machine is suspended (as the other replicas' clocks do), and absolute
 * (a timerfd with TFD_TIMER_ABSTIME), so a freeze cannot restart a wait. */
static int64_t now_ms(void)
{
    return kle_now__ns(CLOCK_BOOTTIME) / 1000000;
}

/* A timerfd that becomes readable at @p at_ms (CLOCK_BOOTTIME), or -1. */
static int timer_at(int64_t at_ms)
{
    struct itimerspec its;
    int fd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
    if (fd < 0)
        return -1;
    memset(&its, 0, sizeof(its));
    if (at_ms <= 0)
        at_ms = 1;
    its.it_value.tv_sec = (time_t)(at_ms / 1000);
    its.it_value.tv_nsec = (long)(at_ms % 1000) * 1000000L;
    if (timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits until @p fd is readable or CLOCK_BOOTTIME reaches @p at_ms.
 * Returns 1 when readable, 0 at the time. Without a timerfd (no
 * descriptors left) it falls back to short polls against the clock. */
static int wait_fd_until(int fd, int64_t at_ms)
{
    int tfd = timer_at(at_ms);
    for (;;) {
        struct pollfd pf[2] = {{fd, POLLIN, 0}, {tfd, POLLIN, 0}};
        int64_t left = at_ms - now_ms();
        if (left <= 0) {
            if (tfd >= 0)
                close(tfd);
            return 0;
        }
        int r = poll(pf, tfd >= 0 ? 2 : 1, tfd >= 0 ? -1 : (int)(left < 50 ? left : 50));
        if (r > 0 && pf[0].revents) {
            if (tfd >= 0)
                close(tfd);
            return 1;
        }
    }
}

static int exit_code_of(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 1;
}

static void describe_status(char *buf, size_t size, int status)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, size, "exited with code %d", exit_code_of(status));
}

/* environ without our three variables, plus their new values (the strings
 * kle allocated also in @p own, for free_env); without an election
 * (transitions < 0) KLE_IDENTITY only. */
static char **child_env(const campaign *c, int transitions, char *own[3])
{
    size_t n = 0, k = 0;
    char **env;
    own[0] = own[1] = own[2] = NULL;
    while (environ[n])
        n++;
    env = calloc(n + 4, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "KLE_IDENTITY=", 13) == 0 ||
            strncmp(environ[i], "KLE_LOCK=", 9) == 0 ||
            strncmp(environ[i], "KLE_LEADER_TRANSITIONS=", 23) == 0)
            continue;
        env[k++] = environ[i];
    }
    size_t la = strlen(c->identity) + 16, lb = strlen(c->lock_desc) + 16;
    own[0] = malloc(la);
    if (transitions >= 0) {
        own[1] = malloc(lb);
        own[2] = malloc(48);
    }
    if (!own[0] || (transitions >= 0 && (!own[1] || !own[2]))) {
        for (int i = 0; i < 3; i++)
            free(own[i]);
        free(env);
        return NULL;
    }
    snprintf(own[0], la, "KLE_IDENTITY=%s", c->identity);
    env[k++] = own[0];
    if (transitions >= 0) {
        snprintf(own[1], lb, "KLE_LOCK=%s", c->lock_desc);
        snprintf(own[2], 48, "KLE_LEADER_TRANSITIONS=%d", transitions);
        env[k++] = own[1];
        env[k++] = own[2];
    }
    env[k] = NULL;
    return env;
}

static void free_env(char **env, char *own[3])
{
    for (int i = 0; i < 3; i++)
        free(own[i]);
    free(env);
}

/*
 * Spawns @p path with @p keep_a and @p keep_b inherited (their close-on-exec
 * flag cleared in the child only) as the leader of a new process group.
 * posix_spawn, not fork: glibc starts the child with CLONE_VM|CLONE_VFORK,
 * so kle's page tables are not copied and its other threads (the elector
 * renewing, the watcher) keep running at full speed while the child
 * executes. Returns 0 or an errno value (exec failures included).
 */
static int spawn_shim(pid_t *pid, const char *path, char **argv, char **env, int keep_a, int keep_b)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    int err = posix_spawn_file_actions_init(&fa);
    if (err)
        return err;
    if ((err = posix_spawnattr_init(&attr))) {
        posix_spawn_file_actions_destroy(&fa);
        return err;
    }
    /* dup2 onto itself clears FD_CLOEXEC in the child (POSIX.1-2024, glibc). */
    if (!(err = posix_spawn_file_actions_adddup2(&fa, keep_a, keep_a)) &&
        !(err = posix_spawn_file_actions_adddup2(&fa, keep_b, keep_b)) &&
        !(err = posix_spawnattr_setpgroup(&attr, 0)) &&
        !(err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP)))
        err = posix_spawn(pid, path, &fa, &attr, argv, env);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return err;
}

/* Starts the shim with the leadership deadline @p deadline_ns (CLOCK_BOOTTIME)
 * already in its control pipe. Returns 0, or -1 (logged). */
static int start_child(campaign *c, int transitions, int64_t deadline_ns, child_proc *out)
{
    const cli_opts *o = c->st->opts;
    int p[2], q[2];
    size_t argc = 0;
    char fdbuf[16], ctlbuf[16], ppidbuf[24], gracebuf[24], nofilebuf[24];
    char **argv, **env, *own[3];
    pid_t pid = -1;
    int err = ENOENT;

    while (o->argv_child[argc])
        argc++;
    if (pipe2(p, O_CLOEXEC) < 0) {
        CLI_ERR("cannot start %s: pipe: %s", o->argv_child[0], strerror(errno));
        return -1;
    }
    if (pipe2(q, O_CLOEXEC) < 0) {
        CLI_ERR("cannot start %s: pipe: %s", o->argv_child[0], strerror(errno));
        close(p[0]);
        close(p[1]);
        return -1;
    }
    /* kle never blocks on the shim: a full pipe drops an extension (the
     * shim then stops the command early, the safe side). */
    fcntl(q[1], F_SETFL, O_NONBLOCK);
    if (write(q[1], &deadline_ns, sizeof(deadline_ns)) != (ssize_t)sizeof(deadline_ns)) {
        /* An empty pipe takes 8 bytes; the shim sees no deadline and refuses. */
    }
    argv = calloc(argc + 9, sizeof(*argv));
    env = child_env(c, transitions, own);
    if (!argv || !env) {
        free(argv);
        if (env)
            free_env(env, own);
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
        CLI_ERR("cannot start %s: out of memory", o->argv_child[0]);
        return -1;
    }
    snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
    snprintf(ctlbuf, sizeof(ctlbuf), "%d", q[0]);
    snprintf(ppidbuf, sizeof(ppidbuf), "%ld", (long)getpid());
    snprintf(gracebuf, sizeof(gracebuf), "%lld", (long long)o->grace_ms);
    size_t k = 0;
    argv[k++] = c->supervisor[0] ? "kle-supervise" : "kle";
    argv[k++] = "__supervise";
    argv[k++] = fdbuf;
    argv[k++] = ctlbuf;
    argv[k++] = ppidbuf;
    argv[k++] = gracebuf;
    if (nofile_raised) {
        /* The command gets the descriptor limit kle was started with. */
        if (nofile_orig.rlim_cur == RLIM_INFINITY)
            snprintf(nofilebuf, sizeof(nofilebuf), "inf");
        else
            snprintf(nofilebuf, sizeof(nofilebuf), "%llu",
                     (unsigned long long)nofile_orig.rlim_cur);
        argv[k++] = nofilebuf;
    }
    argv[k++] = "--";
    for (size_t i = 0; i < argc; i++)
        argv[k++] = o->argv_child[i];
    if (c->supervisor[0])
        err = spawn_shim(&pid, c->supervisor, argv, env, p[1], q[0]);
    if (!c->supervisor[0] || err) {
        argv[0] = "kle";
        err = spawn_shim(&pid, c->self_exe, argv, env, p[1], q[0]);
    }
    free(argv);
    free_env(env, own);
    close(p[1]);
    close(q[0]);
    if (err) {
        CLI_ERR("cannot start %s: cannot start the supervisor: %s", o->argv_child[0],
                strerror(err));
        close(p[0]);
        close(q[1]);
        return -1;
    }
    out->pid = pid;
    out->status = p[0];
    out->ctl = q[1];
    return 0;
}

/*
 * The supervisor program: kle-supervise beside kle (the build tree) or in
 * KLE_LIBEXEC_FROM_BIN relative to kle's folder (installed); "" when there is
 * none, and kle runs itself as "kle __supervise". The shim is the same code
 * either way; kle-supervise only starts faster (libc only), which shortens
 * the path from winning the lease to the command running.
 */
static void find_supervisor(char *out, size_t size, const char *self_exe)
{
    char exe[4096];
    ssize_t n = readlink(self_exe, exe, sizeof(exe) - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return;
    *slash = '\0';
    const char *rel[] = {".", KLE_LIBEXEC_FROM_BIN};
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        int len = snprintf(out, size, "%s/%s/kle-supervise", exe, rel[i]);
        if (len > 0 && (size_t)len < size && access(out, X_OK) == 0)
            return;
    }
    out[0] = '\0';
}

/* Reads the shim's report, reaps the shim and closes the pipes. */
static child_result collect(child_proc *ch)
{
    char buf[64], kind[16];
    ssize_t n;
    int shim, value = 0;
    child_result r = {CHILD_EXIT, -1};
    do
        n = read(ch->status, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf[n] = '\0';
        if (sscanf(buf, "%15s %d", kind, &value) == 2) {
            r.status = value;
            if (strcmp(kind, "exec") == 0)
                r.kind = CHILD_EXEC;
            else if (strcmp(kind, "expired") == 0)
                r.kind = CHILD_EXPIRED;
            else if (strcmp(kind, "guard") == 0)
                r.kind = CHILD_GUARD;
        }
    }
    close(ch->status);
    close(ch->ctl);
    /* Whatever is left in the group goes, also when the shim itself was
     * killed (OOM killer) before it could clean up. The shim is not reaped
     * yet, so its pid, the group's id, cannot have been reused. */
    kill(-ch->pid, SIGKILL);
    while (waitpid(ch->pid, &shim, 0) < 0 && errno == EINTR)
        ;
    if (r.status == -1) {
        r.kind = CHILD_EXIT;
        r.status = shim; /* the shim itself failed or was killed */
    }
    return r;
}

/*
 * Stops the command: SIGTERM to the group at once; SIGKILL, by the shim
 * (SIGUSR2: every descendant), after --grace; and if the shim does not
 * report, kle's own SIGKILL to the shim's descendants and its group. Every
 * kill is scheduled no later than @p deadline_ms + grace, @p deadline_ms
 * being the term's leadership deadline (CLOCK_BOOTTIME ms; INT64_MAX when
 * there is none): the bound the supervisor enforces too, so that a stopped
 * or starved supervisor cannot make the command outlive it. Every wait is
 * absolute on CLOCK_BOOTTIME.
 */
static child_result terminate(const campaign *c, child_proc *ch, int64_t deadline_ms)
{
    int64_t grace = c->st->opts->grace_ms;
    int64_t bound = deadline_ms < INT64_MAX - grace ? deadline_ms + grace : INT64_MAX;
    int64_t soft = now_ms() + grace;
    kill(-ch->pid, SIGTERM);
    if (wait_fd_until(ch->status, soft < bound ? soft : bound))
        return collect(ch);
    CLI_WARN("%s did not stop within --grace; sending SIGKILL to it and its descendants",
             c->st->opts->argv_child[0]);
    kill(ch->pid, SIGUSR2);
    /* The shim gets a second to report, unless the bound comes first. */
    if (soft < bound && wait_fd_until(ch->status, soft + 1000 < bound ? soft + 1000 : bound))
        return collect(ch);
    /* The shim did not answer (stopped, starved): kill everything below it
     * ourselves, descendants outside the group first (the shim, their
     * subreaper, must still be alive for them to be found), then the group. */
    cli_signal_descendants(ch->pid, SIGKILL, 0, 0);
    kill(-ch->pid, SIGKILL);
    return collect(ch);
}

static void metrics_started(cli_run_state *st, int restart)
{
    pthread_mutex_lock(&st->metrics_mu);
    st->cmd.running = 1;
    st->cmd.starts++;
    if (restart)
        st->cmd.restarts++;
    pthread_mutex_unlock(&st->metrics_mu);
}

static void metrics_ended(cli_run_state *st, int code)
{
    pthread_mutex_lock(&st->metrics_mu);
    st->cmd.running = 0;
    st->cmd.exits[code & 255]++;
    pthread_mutex_unlock(&st->metrics_mu);
}

/* The code kle reports for a child's end: the exec failure's, else its status's. */
static int result_code(const child_result *r)
{
    if (r->kind == CHILD_EXEC)
        return r->status == ENOENT ? CLI_EXIT_NO_COMMAND : CLI_EXIT_CANNOT_RUN;
    if (r->kind == CHILD_EXPIRED)
        return 0;
    return exit_code_of(r->status);
}

/*
 * The wait before starting the command again after it exited (restart),
 * or before campaigning again after it exited (release): @p base_ms doubled
 * for each run in a row that lasted less than CLI_BACKOFF_CAP_MS, capped
 * (cli_backoff_ms()); a run that lasted longer resets it.
 */
static int64_t exit_backoff(campaign *c, int64_t base_ms, int64_t ran_ms)
{
    if (ran_ms >= CLI_BACKOFF_CAP_MS)
        c->quick_exits = 0;
    return cli_backoff_ms(base_ms, c->quick_exits++);
}

static void on_started_leading(kle_leading *leading, void *data)
{
    campaign *c = data;
    cli_run_state *st = c->st;
    const cli_opts *o = st->opts;
    int transitions = kle_leading_transitions(leading);
    char desc[64];
    int restart = 0;

    /* --timeout and leadership decide under one lock: the first wins. */
    pthread_mutex_lock(&st->mu);
    int timed_out = st->timed_out;
    if (!timed_out)
        st->led_once = 1;
    pthread_mutex_unlock(&st->mu);
    if (timed_out) {
        kle_elector_stop(c->elector);
        return;
    }
    c->led = 1;
    pthread_mutex_lock(&st->leader_mu);
    st->observed = 1;
    char *me = strdup(c->identity);
    if (me) {
        free(st->leader);
        st->leader = me;
    }
    pthread_mutex_unlock(&st->leader_mu);
    for (;;) {
        child_proc ch;
        child_result res;
        int64_t started = now_ms();
        /* The deadline as it stands (this also acknowledges the deadline
         * fd); the shim refuses to start the command once it has passed. */
        int64_t deadline = kle_leading_deadline_ns(leading);
        if (start_child(c, transitions, deadline, &ch) < 0) {
            /* No descriptors, processes or memory: release and back off. */
            c->start_failed = 1;
            kle_elector_stop(c->elector);
            return;
        }
        metrics_started(st, restart);
        {
            kle_log_field f[] = {KLE_LOG_STR("lock", c->lock_desc),
                                 KLE_LOG_STR("identity", c->identity),
                                 KLE_LOG_INT("token", transitions)};
            cli_logf(KLE_LOG_INFO, 0, __FILE__, __LINE__, f, 3,
                     "leading %s as %s (fencing token %d): started %s, pid %ld", c->lock_desc,
                     c->identity, transitions, o->argv_child[0], (long)ch.pid);
        }
        struct pollfd pf[3] = {{kle_leading_fd(leading), POLLIN, 0},
                               {ch.status, POLLIN, 0},
                               {kle_leading_deadline_fd(leading), POLLIN, 0}};
        for (;;) {
            if (poll(pf, 3, -1) < 0)
                continue;
            if (pf[0].revents) {
                int64_t t0 = now_ms();
                /* The term's deadline: the kills are scheduled from it. */
                int64_t end = kle_leading_deadline_ns(leading) / KLE_NS_PER_MS;
                res = terminate(c, &ch, end);
                metrics_ended(st, result_code(&res));
                describe_status(desc, sizeof(desc), res.status);
                kle_log_field f[] = {KLE_LOG_STR("lock", c->lock_desc),
                                     KLE_LOG_STR("identity", c->identity),
                                     KLE_LOG_INT("token", transitions)};
                cli_logf(KLE_LOG_INFO, 0, __FILE__, __LINE__, f, 3,
                         "leadership of %s ended: stopped %s (%s) in %lld ms", c->lock_desc,
                         o->argv_child[0], desc, (long long)(now_ms() - t0));
                return;
            }
            if (pf[1].revents) {
                res = collect(&ch);
                break;
            }
            if (pf[2].revents) {
                /* A renewal moved the deadline: tell the shim (never blocks). */
                int64_t d = kle_leading_deadline_ns(leading);
                if (write(ch.ctl, &d, sizeof(d)) < 0) {
                    /* Pipe full: the shim is not reading; it stops early. */
                }
            }
        }
        metrics_ended(st, result_code(&res));
        if (res.kind == CHILD_EXEC) {
            c->exec_failed = result_code(&res);
            CLI_ERR("cannot run %s: %s; releasing %s and exiting with code %d", o->argv_child[0],
                    strerror(res.status), c->lock_desc, c->exec_failed);
            kle_elector_stop(c->elector);
            return;
        }
        if (res.kind == CHILD_EXPIRED || res.kind == CHILD_GUARD) {
            if (res.kind == CHILD_EXPIRED) {
                CLI_WARN("leadership of %s expired before %s could start; not starting it",
                         c->lock_desc, o->argv_child[0]);
            } else {
                describe_status(desc, sizeof(desc), res.status);
                CLI_WARN("the leadership deadline of %s passed without a renewal: the supervisor "
                         "stopped %s (%s)",
                         c->lock_desc, o->argv_child[0], desc);
            }
            if (o->on_exit == CLI_ON_EXIT_EXIT) {
                /* Run once: the command did not finish, leadership did. */
                c->lost = 1;
                kle_elector_stop(c->elector);
                return;
            }
            /* The elector ends leadership by that deadline too; should a
             * renewal have landed meanwhile, start again (at most once a
             * second). */
            int64_t wait = 1000 - (now_ms() - started);
            if (wait > 0 && kle_leading_wait_ns(leading, KLE_MS(wait)) == 0)
                return;
            if (kle_leading_is_over(leading))
                return;
            restart = 1;
            continue;
        }
        describe_status(desc, sizeof(desc), res.status);
        int64_t ran = now_ms() - started;
        if (o->on_exit == CLI_ON_EXIT_RESTART) {
            /* Not after leadership ended; backing off while it keeps exiting. */
            int64_t wait = exit_backoff(c, 1000, ran);
            char d[32];
            cli_format_duration(d, sizeof(d), wait);
            CLI_INFO("%s %s; restarting it in %s (--on-exit=restart)", o->argv_child[0], desc, d);
            if (kle_leading_wait_ns(leading, KLE_MS(wait)) == 0)
                return;
            if (kle_leading_is_over(leading))
                return;
            restart = 1;
            continue;
        }
        c->child_done = 1;
        c->child_code = exit_code_of(res.status);
        if (o->on_exit == CLI_ON_EXIT_EXIT)
            CLI_INFO("%s %s; releasing the lease and exiting with code %d (--on-exit=exit)",
                     o->argv_child[0], desc, c->child_code);
        else
            CLI_INFO("%s %s; releasing the lease (--on-exit=release)", o->argv_child[0], desc);
        c->release_wait = exit_backoff(c, o->retry_period_ms, ran);
        kle_elector_stop(c->elector);
        return;
    }
}

static void on_stopped_leading(void *data)
{
    (void)data;
}

static void on_new_leader(const char *identity, void *data)
{
    campaign *c = data;
    pthread_mutex_lock(&c->st->leader_mu);
    char *copy = strdup(identity);
    if (copy) {
        free(c->st->leader);
        c->st->leader = copy;
    }
    c->st->observed = 1;
    pthread_mutex_unlock(&c->st->leader_mu);
    kle_log_field f[] = {KLE_LOG_STR("lock", c->lock_desc), KLE_LOG_STR("holder", identity)};
    if (*identity)
        cli_logf(KLE_LOG_INFO, 0, __FILE__, __LINE__, f, 2, "new leader of %s: %s", c->lock_desc,
                 identity);
    else
        cli_logf(KLE_LOG_INFO, 0, __FILE__, __LINE__, f, 2, "%s was released", c->lock_desc);
}

/* Signals that would end kle: each one stops the command with its grace
 * and releases the lease, as SIGTERM does. */
static const struct {
    int sig;
    const char *name;
} stop_signals[] = {{SIGTERM, "SIGTERM"}, {SIGINT, "SIGINT"},       {SIGHUP, "SIGHUP"},
                    {SIGQUIT, "SIGQUIT"}, {SIGUSR1, "SIGUSR1"},     {SIGUSR2, "SIGUSR2"},
                    {SIGALRM, "SIGALRM"}, {SIGVTALRM, "SIGVTALRM"}, {SIGXCPU, "SIGXCPU"},
                    {SIGXFSZ, "SIGXFSZ"}, {SIGPWR, "SIGPWR"}};
#define N_STOP_SIGNALS (sizeof(stop_signals) / sizeof(stop_signals[0]))

static void stop_signal_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < N_STOP_SIGNALS; i++)
        sigaddset(set, stop_signals[i].sig);
}

static void *signal_thread(void *arg)
{
    cli_run_state *st = arg;
    sigset_t set;
    stop_signal_set(&set);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        const char *name = "a signal";
        for (size_t i = 0; i < N_STOP_SIGNALS; i++)
            if (stop_signals[i].sig == sig)
                name = stop_signals[i].name;
        if (!shutting_down)
            CLI_INFO("received %s: stopping", name);
        shutting_down = 1;
        kle_event_set(st->stop);
        pthread_mutex_lock(&st->mu);
        if (st->elector)
            kle_elector_stop(st->elector);
        pthread_mutex_unlock(&st->mu);
    }
    return NULL;
}

/* A stop signal came, or --timeout passed before leading. */
static int stopping(cli_run_state *st)
{
    if (shutting_down)
        return 1;
    pthread_mutex_lock(&st->mu);
    int t = st->timed_out;
    pthread_mutex_unlock(&st->mu);
    return t;
}

/* Sleeps up to ms, returning early on a stop (signal or --timeout). */
static void pause_ms(cli_run_state *st, int64_t ms)
{
    if (!stopping(st))
        wait_fd_until(kle_event_fd(st->stop), now_ms() + ms);
}

/* --timeout: stops the campaign if it has not led by then. */
typedef struct timeout_arg {
    cli_run_state *st;
    int64_t at_ms;   /* CLOCK_BOOTTIME */
    kle_event *done; /* set when kle run ends */
} timeout_arg;

static void *timeout_thread(void *p)
{
    timeout_arg *a = p;
    cli_run_state *st = a->st;
    if (wait_fd_until(kle_event_fd(a->done), a->at_ms))
        return NULL;
    pthread_mutex_lock(&st->mu);
    if (!st->led_once) {
        st->timed_out = 1;
        if (st->elector)
            kle_elector_stop(st->elector);
    }
    int timed_out = st->timed_out;
    pthread_mutex_unlock(&st->mu);
    if (timed_out) {
        char d[32];
        cli_format_duration(d, sizeof(d), st->opts->timeout_ms);
        CLI_WARN("did not acquire %s within --timeout %s: giving up", st->lock_desc, d);
        kle_event_set(st->stop);
    }
    return NULL;
}

/*
 * --leader-elect=false: the command runs at once, with no lock, under the
 * supervisor (with no deadline); --on-exit as with an election, release
 * behaving as restart (there is no lease to hand to another replica).
 */
static int run_unelected(campaign *c)
{
    cli_run_state *st = c->st;
    const cli_opts *o = st->opts;
    int restart = 0;
    CLI_INFO("--leader-elect=false: running %s without leader election, as %s", o->argv_child[0],
             c->identity);
    while (!stopping(st)) {
        child_proc ch;
        child_result res;
        char desc[64];
        int64_t started = now_ms();
        if (start_child(c, -1, INT64_MAX, &ch) < 0) {
            int64_t delay = cli_backoff_ms(o->retry_period_ms, c->quick_exits++);
            pause_ms(st, delay);
            continue;
        }
        metrics_started(st, restart);
        CLI_INFO("started %s, pid %ld", o->argv_child[0], (long)ch.pid);
        struct pollfd pf[2] = {{kle_event_fd(st->stop), POLLIN, 0}, {ch.status, POLLIN, 0}};
        for (;;) {
            if (poll(pf, 2, -1) < 0)
                continue;
            if (pf[1].revents) {
                res = collect(&ch);
                break;
            }
            if (pf[0].revents) {
                res = terminate(c, &ch, INT64_MAX);
                metrics_ended(st, result_code(&res));
                describe_status(desc, sizeof(desc), res.status);
                CLI_INFO("stopped %s (%s)", o->argv_child[0], desc);
                return CLI_EXIT_OK;
            }
        }
        int code = result_code(&res);
        metrics_ended(st, code);
        if (res.kind == CHILD_EXEC) {
            CLI_ERR("cannot run %s: %s; exiting with code %d", o->argv_child[0],
                    strerror(res.status), code);
            return code;
        }
        describe_status(desc, sizeof(desc), res.status);
        if (o->on_exit == CLI_ON_EXIT_EXIT) {
            CLI_INFO("%s %s; exiting with code %d (--on-exit=exit)", o->argv_child[0], desc, code);
            return code;
        }
        int64_t wait = exit_backoff(c, 1000, now_ms() - started);
        char d[32];
        cli_format_duration(d, sizeof(d), wait);
        CLI_INFO("%s %s; starting it again in %s (--on-exit=%s)", o->argv_child[0], desc, d,
                 o->on_exit == CLI_ON_EXIT_RESTART ? "restart" : "release");
        pause_ms(st, wait);
        restart = 1;
    }
    return CLI_EXIT_OK;
}

/* The LeaseCandidate's name: LOCK.IDENTITY, so that one identity can be a
 * candidate for several locks; coordinated, the identity itself, which the
 * election controller writes into the Lease as holder. */
static void candidate_name(char *buf, size_t size, const cli_opts *o)
{
    if (o->coordinated)
        snprintf(buf, size, "%s", o->identity);
    else
        snprintf(buf, size, "%s.%s", o->lock_name, o->identity);
}

int cli_cmd_run(cli_opts *o, const char *self_exe)
{
    /* Static: the detached signal thread may still look at it while the
     * process exits. */
    static cli_run_state st;
    campaign c;
    kle_client *client = NULL;
    cli_http *http = NULL;
    kle_candidate *candidate = NULL;
    char idbuf[512];
    sigset_t set;
    pthread_t sig_tid, timeout_tid;
    timeout_arg targ = {&st, 0, NULL};
    int timeout_started = 0;
    int exit_code = CLI_EXIT_OK;
    int failures = 0; /* campaigns in a row that failed to lead */

    memset(&st, 0, sizeof(st));
    memset(&c, 0, sizeof(c));
    st.opts = o;
    st.unelected = !o->leader_elect;
    kle_elector_stats_init(&st.last, KLE_ELECTOR_STATS_VERSION);
    pthread_mutex_init(&st.mu, NULL);
    pthread_mutex_init(&st.leader_mu, NULL);
    pthread_mutex_init(&st.metrics_mu, NULL);
    if (kle_event_new(&st.stop) < 0) {
        cli_error("cannot start: %s", kle_error_last()->message);
        return CLI_EXIT_RUN_FAILED;
    }

    /* Every thread inherits this mask; only the signal thread takes them. */
    stop_signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&sig_tid, NULL, signal_thread, &st) != 0) {
        cli_error("cannot start the signal thread");
        return CLI_EXIT_RUN_FAILED;
    }
    pthread_detach(sig_tid);

    /* Descriptors for the election: the soft limit up to the hard one (the
     * HTTP server stays far below it, see http.c); the command gets the
     * limit kle was started with. */
    if (getrlimit(RLIMIT_NOFILE, &nofile_orig) == 0 &&
        nofile_orig.rlim_cur < nofile_orig.rlim_max) {
        struct rlimit raised = nofile_orig;
        raised.rlim_cur = raised.rlim_max;
        nofile_raised = setrlimit(RLIMIT_NOFILE, &raised) == 0;
    }

    /* Everything that can fail at setup fails here, as one "kle: " line,
     * before the first log line: exit 2 for what the command line got
     * wrong, 125 for the rest. */
    if (!o->identity) {
        if (cli_default_identity(idbuf, sizeof(idbuf)) < 0) {
            cli_error("cannot make an identity (no /proc/sys/kernel/random/uuid); pass --identity");
            return CLI_EXIT_RUN_FAILED;
        }
        o->identity = idbuf;
    }
    if (o->coordinated || o->candidate) {
        char name[1200];
        candidate_name(name, sizeof(name), o);
        if (!cli_valid_name(name, 0)) {
            cli_error("--%s: the LeaseCandidate's name \"%s\" (%s) is not a valid object name "
                      "(a lowercase RFC 1123 subdomain, at most 253 characters); pass an "
                      "--identity that makes one, such as the pod name",
                      o->coordinated ? "coordinated" : "candidate", name,
                      o->coordinated ? "the identity" : "LOCK.IDENTITY");
            return CLI_EXIT_USAGE;
        }
    }
    c.st = &st;
    c.identity = o->identity;
    c.self_exe = self_exe;
    find_supervisor(c.supervisor, sizeof(c.supervisor), self_exe);
    if (st.unelected) {
        snprintf(st.lock_desc, sizeof(st.lock_desc), "(no lock: --leader-elect=false)");
        if (o->http_addr && cli_http_start(&http, &st) < 0)
            return CLI_EXIT_RUN_FAILED;
        exit_code = run_unelected(&c);
        cli_http_stop(http);
        CLI_INFO("exiting with code %d", exit_code);
        return exit_code;
    }
    if (cli_make_client(&client, o) < 0)
        return CLI_EXIT_RUN_FAILED;
    st.client = client;
    snprintf(c.lock_desc, sizeof(c.lock_desc), "%s/%s/%s", o->resource_lock,
             kle_client_namespace(client), o->lock_name);
    snprintf(st.lock_desc, sizeof(st.lock_desc), "%s", c.lock_desc);
    {
        /* The lock as every campaign makes it: its errors, now. */
        kle_lock *probe = NULL;
        if (cli_make_lock(&probe, o, client, o->identity) < 0) {
            kle_client_free(client);
            return CLI_EXIT_RUN_FAILED;
        }
        kle_lock_free(probe);
    }
    if (o->http_addr && cli_http_start(&http, &st) < 0) {
        kle_client_free(client);
        return CLI_EXIT_RUN_FAILED;
    }
    if (o->coordinated || o->candidate) {
        char name[1200];
        kle_candidate_opts co = KLE_CANDIDATE_OPTS_INIT;
        candidate_name(name, sizeof(name), o);
        co.namespace_ = o->namespace_;
        co.name = name;
        co.lease_name = o->lock_name;
        co.binary_version = o->binary_version;
        co.emulation_version = o->emulation_version ? o->emulation_version : o->binary_version;
        if (kle_candidate_start(&candidate, client, &co) < 0) {
            char why[1024];
            cli_escape(why, sizeof(why), kle_error_last()->message);
            cli_error("%s", why);
            cli_http_stop(http);
            kle_client_free(client);
            return CLI_EXIT_RUN_FAILED;
        }
    }
    {
        char l[32], r[32], p[32], g[32];
        cli_format_duration(l, sizeof(l), o->lease_duration_ms);
        cli_format_duration(r, sizeof(r), o->renew_deadline_ms);
        cli_format_duration(p, sizeof(p), o->retry_period_ms);
        cli_format_duration(g, sizeof(g), o->grace_ms);
        kle_log_field f[] = {KLE_LOG_STR("lock", c.lock_desc), KLE_LOG_STR("identity", c.identity)};
        cli_logf(KLE_LOG_INFO, 0, __FILE__, __LINE__, f, 2,
                 "campaigning for %s on %s as %s (lease %s, renew deadline %s, retry %s, grace %s)",
                 c.lock_desc, kle_client_server(client), o->identity, l, r, p, g);
    }
    if (o->timeout_ms > 0) {
        targ.at_ms = now_ms() + o->timeout_ms;
        if (kle_event_new(&targ.done) == 0 &&
            pthread_create(&timeout_tid, NULL, timeout_thread, &targ) == 0)
            timeout_started = 1;
        else {
            CLI_ERR("cannot start the --timeout thread");
            exit_code = CLI_EXIT_RUN_FAILED;
            goto out;
        }
    }

    /* One elector for as long as it is not stopped: campaigning again after
     * a loss, it still knows its own records and the highest fencing token
     * it has seen (a new one would take its own last record for another
     * replica's and wait for it to expire). */
    kle_elector *e = NULL;
    while (!stopping(&st)) {
        kle_lock *lock = NULL;
        kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
        kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
        int rc;

        if (e)
            goto run;
        if (cli_make_lock(&lock, o, client, o->identity) < 0) {
            exit_code = CLI_EXIT_RUN_FAILED;
            break;
        }
        cfg.lock = lock;
        cfg.lease_duration_ns = KLE_MS(o->lease_duration_ms);
        cfg.renew_deadline_ns = KLE_MS(o->renew_deadline_ms);
        cfg.retry_period_ns = KLE_MS(o->retry_period_ms);
        cfg.follow = o->follow_poll ? KLE_FOLLOW_POLL : KLE_FOLLOW_WATCH;
        cfg.release_on_cancel = o->release_on_cancel;
        cfg.call_timeout_ns = KLE_MS(o->call_timeout_ms);
        cfg.coordinated = o->coordinated;
        cfg.name = o->lock_name;
        cfg.callbacks.on_started_leading = on_started_leading;
        cfg.callbacks.on_stopped_leading = on_stopped_leading;
        cfg.callbacks.on_new_leader = on_new_leader;
        cfg.callbacks.data = &c;
        if (kle_elector_new(&e, &cfg) < 0) {
            CLI_ERR("%s", kle_error_last()->message);
            kle_lock_free(lock);
            exit_code = CLI_EXIT_RUN_FAILED;
            break;
        }
    run:
        c.elector = e;
        c.child_done = 0;
        c.exec_failed = 0;
        c.start_failed = 0;
        c.led = 0;
        c.lost = 0;
        pthread_mutex_lock(&st.mu);
        st.elector = e;
        if (shutting_down || st.timed_out)
            kle_elector_stop(e);
        pthread_mutex_unlock(&st.mu);

        rc = kle_elector_run(e);
        char why[1024];
        snprintf(why, sizeof(why), "%s", rc < 0 ? kle_error_last()->message : "");

        /* A stopped elector stays stopped: the next campaign needs a new one. */
        int stopped =
            c.child_done || c.exec_failed || c.start_failed || shutting_down || rc == KLE_EIDENTITY;
        kle_elector_get_stats(&s, e);
        pthread_mutex_lock(&st.mu);
        if (stopped) {
            /* Its counters go with it: keep them. */
            st.slowpath_base += s.slowpath_total;
            st.watch_restarts_base += s.watch_restarts;
        }
        if (s.acquisitions == 0) {
            /* Keep what an earlier campaign's term left. */
            s.token = st.last.token;
            s.last_renew_wall_ns = st.last.last_renew_wall_ns;
            s.acquisitions = st.last.acquisitions;
        }
        st.last = s;
        st.last_call_error = s.last_call_error;
        st.elector = NULL;
        pthread_mutex_unlock(&st.mu);
        if (stopped) {
            kle_elector_free(e);
            e = NULL;
        }
        c.elector = NULL;

        if (c.exec_failed) {
            exit_code = c.exec_failed;
            break;
        }
        if (c.led && !c.start_failed)
            failures = 0;
        if (c.child_done) {
            if (o->on_exit == CLI_ON_EXIT_EXIT) {
                exit_code = c.child_code;
                break;
            }
            /* Give the other replicas time to take over: one retry period,
             * longer while the command keeps exiting soon after its start. */
            char d[32];
            cli_format_duration(d, sizeof(d), c.release_wait);
            CLI_INFO("campaigning again in %s", d);
            pause_ms(&st, c.release_wait);
            continue;
        }
        if (shutting_down)
            break;
        if (rc == KLE_EIDENTITY) {
            /* Another replica writes the lock under our identity: leading
             * beside it would run the command twice. */
            kle_log_field f[] = {KLE_LOG_STR("lock", c.lock_desc),
                                 KLE_LOG_STR("identity", c.identity), KLE_LOG_STR("err", why)};
            cli_logf(KLE_LOG_ERROR, 0, __FILE__, __LINE__, f, 3,
                     "%s; exiting with code %d (give every replica its own --identity)", why,
                     CLI_EXIT_RUN_FAILED);
            exit_code = CLI_EXIT_RUN_FAILED;
            break;
        }
        pthread_mutex_lock(&st.mu);
        int timed_out = st.timed_out;
        pthread_mutex_unlock(&st.mu);
        if (timed_out) {
            exit_code = CLI_EXIT_TIMEOUT;
            break;
        }
        int lost = c.lost || rc == KLE_ETIMEOUT || rc == KLE_ECONFLICT;
        if (lost && c.led && !c.start_failed) {
            kle_log_field f[] = {KLE_LOG_STR("lock", c.lock_desc),
                                 KLE_LOG_STR("identity", c.identity), KLE_LOG_STR("err", why)};
            const char *how = rc == KLE_ECONFLICT ? "another holder wrote the lock"
                              : c.lost            ? "the leadership deadline passed"
                                                  : "renewals failed";
            if (o->on_exit == CLI_ON_EXIT_EXIT) {
                cli_logf(KLE_LOG_WARNING, 0, __FILE__, __LINE__, f, 3,
                         "lost leadership of %s (%s); exiting with code %d (--on-exit=exit)",
                         c.lock_desc, how, CLI_EXIT_LOST);
                exit_code = CLI_EXIT_LOST;
                break;
            }
            cli_logf(KLE_LOG_WARNING, 0, __FILE__, __LINE__, f, 3,
                     "lost leadership of %s (%s); campaigning again", c.lock_desc, how);
            continue;
        }
        if (rc == 0 && !c.start_failed)
            continue; /* handed the lease over to a preferred holder: campaign again */
        if (rc < 0 || c.start_failed || !c.led) {
            /* A failure to lead or to start the command (no descriptors,
             * processes, memory): back off exponentially instead of
             * acquiring and stepping down in a loop. */
            int64_t delay = cli_backoff_ms(o->retry_period_ms, failures++);
            char d[32];
            cli_format_duration(d, sizeof(d), delay);
            kle_log_field f[] = {KLE_LOG_STR("lock", c.lock_desc), KLE_LOG_STR("err", why)};
            if (c.start_failed)
                cli_logf(KLE_LOG_ERROR, 0, __FILE__, __LINE__, f, 2,
                         "could not start the command; campaigning again in %s", d);
            else
                cli_logf(KLE_LOG_ERROR, 0, __FILE__, __LINE__, f, 2,
                         "election stopped: %s; campaigning again in %s",
                         rc < 0 ? why : "leadership ended at once", d);
            pause_ms(&st, delay);
        }
    }
    kle_elector_free(e);
    if (exit_code == CLI_EXIT_OK) {
        pthread_mutex_lock(&st.mu);
        if (st.timed_out)
            exit_code = CLI_EXIT_TIMEOUT;
        pthread_mutex_unlock(&st.mu);
    }
out:
    if (timeout_started) {
        kle_event_set(targ.done);
        pthread_join(timeout_tid, NULL);
    }
    kle_event_free(targ.done);
    /* A clean exit deletes the LeaseCandidate: the controller stops considering us. */
    if (candidate && kle_candidate_stop(candidate, 1) < 0)
        CLI_WARN("could not delete the LeaseCandidate: %s", kle_error_last()->message);
    kle_candidate_free(candidate);
    cli_http_stop(http);
    st.client = NULL;
    kle_client_free(client);
    free(st.leader);
    CLI_INFO("exiting with code %d", exit_code);
    return exit_code;
}
