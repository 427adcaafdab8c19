/*
 * kle run: campaign for the lock and run a command only while leading.
 *
 * Threads: the main thread runs one elector per campaign (kle_elector_run);
 * the elector runs on_started_leading on its own thread, which starts the
 * command through the supervisor shim (supervise.c) and polls the leading
 * fd and the shim's status pipe; a signal thread turns SIGTERM and SIGINT
 * into kle_elector_stop(); libmicrohttpd serves the HTTP endpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "run.h"

extern char **environ;

typedef struct campaign {
    cli_run_state *st;
    const char *identity;
    const char *self_exe;
    char lock_desc[512];
    kle_elector *elector;
    int child_done; /* the command exited on its own (on-exit release/exit) */
    int child_code; /* its exit code (128 + signal when killed) */
} campaign;

static volatile sig_atomic_t shutting_down;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* environ without our three variables, plus their new values. */
static char **child_env(const campaign *c, int transitions)
{
    size_t n = 0, k = 0;
    char **env;
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
    char *a = malloc(strlen(c->identity) + 16), *b = malloc(strlen(c->lock_desc) + 16),
         *t = malloc(48);
    if (!a || !b || !t) {
        free(a);
        free(b);
        free(t);
        free(env);
        return NULL;
    }
    snprintf(a, strlen(c->identity) + 16, "KLE_IDENTITY=%s", c->identity);
    snprintf(b, strlen(c->lock_desc) + 16, "KLE_LOCK=%s", c->lock_desc);
    snprintf(t, 48, "KLE_LEADER_TRANSITIONS=%d", transitions);
    env[k++] = a;
    env[k++] = b;
    env[k++] = t;
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    size_t n = 0;
    if (!env)
        return;
    while (env[n])
        n++;
    /* The last three are ours. */
    for (size_t i = n >= 3 ? n - 3 : 0; i < n; i++)
        free(env[i]);
    free(env);
}

/* Starts the shim; returns its pid (the process group) and the status pipe. */
static pid_t start_child(campaign *c, int transitions, int *out_fd)
{
    const cli_opts *o = c->st->opts;
    int p[2];
    size_t argc = 0;
    char fdbuf[16], ppidbuf[24];
    char **argv, **env;
    pid_t pid;

    while (o->argv_child[argc])
        argc++;
    if (pipe2(p, O_CLOEXEC) < 0) {
        CLI_ERR("cannot start %s: pipe: %s", o->argv_child[0], strerror(errno));
        return -1;
    }
    argv = calloc(argc + 6, sizeof(*argv));
    env = child_env(c, transitions);
    if (!argv || !env) {
        free(argv);
        free_env(env);
        close(p[0]);
        close(p[1]);
        CLI_ERR("cannot start %s: out of memory", o->argv_child[0]);
        return -1;
    }
    snprintf(fdbuf, sizeof(fdbuf), "%d", p[1]);
    snprintf(ppidbuf, sizeof(ppidbuf), "%ld", (long)getpid());
    argv[0] = "kle";
    argv[1] = "__supervise";
    argv[2] = fdbuf;
    argv[3] = ppidbuf;
    argv[4] = "--";
    for (size_t i = 0; i < argc; i++)
        argv[5 + i] = o->argv_child[i];
    pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls until exec. */
        setpgid(0, 0);
        fcntl(p[1], F_SETFD, 0);
        execve(c->self_exe, argv, env);
        _exit(127);
    }
    free(argv);
    free_env(env);
    close(p[1]);
    if (pid < 0) {
        CLI_ERR("cannot start %s: fork: %s", o->argv_child[0], strerror(errno));
        close(p[0]);
        return -1;
    }
    setpgid(pid, pid); /* as the child does; whichever runs first */
    *out_fd = p[0];
    return pid;
}

/* Reads the command's wait status from the shim and reaps the shim. */
static int collect(pid_t pid, int fd)
{
    char buf[32];
    ssize_t n;
    int status = -1, shim;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        buf[n] = '\0';
        status = (int)strtol(buf, NULL, 10);
    }
    close(fd);
    /* Whatever is left in the group goes, also when the shim itself was
     * killed (OOM killer) before it could clean up. The shim is not reaped
     * yet, so its pid, the group's id, cannot have been reused. */
    kill(-pid, SIGKILL);
    while (waitpid(pid, &shim, 0) < 0 && errno == EINTR)
        ;
    if (status == -1)
        status = shim; /* the shim itself failed (exec) */
    return status;
}

/* SIGTERM to the group, SIGKILL after the grace; returns the wait status. */
static int terminate(const campaign *c, pid_t pid, int fd)
{
    struct pollfd pf = {fd, POLLIN, 0};
    int64_t deadline = now_ms() + c->st->opts->grace_ms;
    kill(-pid, SIGTERM);
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        int r = poll(&pf, 1, (int)left);
        if (r > 0)
            return collect(pid, fd);
    }
    CLI_WARN("%s did not stop within --grace; sending SIGKILL to its process group",
             c->st->opts->argv_child[0]);
    kill(-pid, SIGKILL);
    return collect(pid, fd);
}

static void on_started_leading(kle_leading *leading, void *data)
{
    campaign *c = data;
    const cli_opts *o = c->st->opts;
    int transitions = kle_leading_transitions(leading);
    char desc[64];

    pthread_mutex_lock(&c->st->leader_mu);
    c->st->observed = 1;
    char *me = strdup(c->identity);
    if (me) {
        free(c->st->leader);
        c->st->leader = me;
    }
    pthread_mutex_unlock(&c->st->leader_mu);
    for (;;) {
        int fd = -1, status;
        int64_t started = now_ms();
        pid_t pid = start_child(c, transitions, &fd);
        if (pid < 0) {
            status = 127 << 8;
        } else {
            CLI_INFO("leading %s as %s (fencing token %d): started %s, pid %ld", c->lock_desc,
                     c->identity, transitions, o->argv_child[0], (long)pid);
            struct pollfd pf[2] = {{kle_leading_fd(leading), POLLIN, 0}, {fd, POLLIN, 0}};
            for (;;) {
                if (poll(pf, 2, -1) < 0)
                    continue;
                if (pf[0].revents) {
                    int64_t t0 = now_ms();
                    status = terminate(c, pid, fd);
                    describe_status(desc, sizeof(desc), status);
                    CLI_INFO("leadership of %s ended: stopped %s (%s) in %lld ms", c->lock_desc,
                             o->argv_child[0], desc, (long long)(now_ms() - t0));
                    return;
                }
                if (pf[1].revents) {
                    status = collect(pid, fd);
                    break;
                }
            }
        }
        describe_status(desc, sizeof(desc), status);
        if (o->on_exit == CLI_ON_EXIT_RESTART) {
            CLI_INFO("%s %s; restarting it (--on-exit=restart)", o->argv_child[0], desc);
            /* At most one start a second, and not after leadership ended. */
            int64_t wait = 1000 - (now_ms() - started);
            if (wait > 0 && kle_leading_wait(leading, wait) == 0)
                return;
            if (kle_leading_is_over(leading))
                return;
            continue;
        }
        CLI_INFO("%s %s; releasing the lease (--on-exit=%s)", o->argv_child[0], desc,
                 o->on_exit == CLI_ON_EXIT_EXIT ? "exit" : "release");
        c->child_done = 1;
        c->child_code = exit_code_of(status);
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
    if (*identity)
        CLI_INFO("new leader of %s: %s", c->lock_desc, identity);
    else
        CLI_INFO("%s was released", c->lock_desc);
}

static void *signal_thread(void *arg)
{
    cli_run_state *st = arg;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    for (;;) {
        int sig;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (!shutting_down)
            CLI_INFO("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        shutting_down = 1;
        pthread_mutex_lock(&st->mu);
        if (st->elector)
            kle_elector_stop(st->elector);
        pthread_mutex_unlock(&st->mu);
    }
    return NULL;
}

/* Sleeps up to ms, returning early on shutdown. */
static void pause_ms(int64_t ms)
{
    int64_t end = now_ms() + ms;
    while (!shutting_down && now_ms() < end) {
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

int cli_cmd_run(cli_opts *o, const char *self_exe)
{
    /* Static: the detached signal thread may still look at it while the
     * process exits. */
    static cli_run_state st;
    campaign c;
    kle_client *client = NULL;
    cli_http *http = NULL;
    char idbuf[512];
    sigset_t set;
    pthread_t sig_tid;
    int exit_code = CLI_EXIT_OK;

    memset(&st, 0, sizeof(st));
    memset(&c, 0, sizeof(c));
    st.opts = o;
    pthread_mutex_init(&st.mu, NULL);
    pthread_mutex_init(&st.leader_mu, NULL);

    /* Every thread inherits this mask; only the signal thread takes them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_create(&sig_tid, NULL, signal_thread, &st) != 0) {
        CLI_ERR("cannot start the signal thread");
        return CLI_EXIT_FAILURE;
    }
    pthread_detach(sig_tid);

    if (!o->identity) {
        if (cli_default_identity(idbuf, sizeof(idbuf)) < 0) {
            CLI_ERR("cannot make an identity (no /proc/sys/kernel/random/uuid); pass --identity");
            return CLI_EXIT_FAILURE;
        }
        o->identity = idbuf;
    }
    if (cli_make_client(&client, o) < 0)
        return CLI_EXIT_FAILURE;
    c.st = &st;
    c.identity = o->identity;
    c.self_exe = self_exe;
    snprintf(c.lock_desc, sizeof(c.lock_desc), "%s/%s/%s", o->resource_lock,
             kle_client_namespace(client), o->lock_name);
    if (o->http_addr && cli_http_start(&http, &st) < 0) {
        kle_client_free(client);
        return CLI_EXIT_FAILURE;
    }
    {
        char l[32], r[32], p[32], g[32];
        cli_format_duration(l, sizeof(l), o->lease_duration_ms);
        cli_format_duration(r, sizeof(r), o->renew_deadline_ms);
        cli_format_duration(p, sizeof(p), o->retry_period_ms);
        cli_format_duration(g, sizeof(g), o->grace_ms);
        CLI_INFO("campaigning for %s on %s as %s (lease %s, renew deadline %s, retry %s, grace %s)",
                 c.lock_desc, kle_client_server(client), o->identity, l, r, p, g);
    }

    while (!shutting_down) {
        kle_lock *lock = NULL;
        kle_elector *e = NULL;
        kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
        kle_elector_stats s;
        int rc;

        if (cli_make_lock(&lock, o, client, o->identity) < 0) {
            exit_code = CLI_EXIT_FAILURE;
            break;
        }
        cfg.lock = lock;
        cfg.lease_duration_ms = o->lease_duration_ms;
        cfg.renew_deadline_ms = o->renew_deadline_ms;
        cfg.retry_period_ms = o->retry_period_ms;
        cfg.release_on_cancel = o->release_on_cancel;
        cfg.name = o->lock_name;
        cfg.callbacks.on_started_leading = on_started_leading;
        cfg.callbacks.on_stopped_leading = on_stopped_leading;
        cfg.callbacks.on_new_leader = on_new_leader;
        cfg.callbacks.data = &c;
        if (kle_elector_new(&e, &cfg) < 0) {
            CLI_ERR("%s", kle_error_last()->message);
            kle_lock_free(lock);
            exit_code = CLI_EXIT_FAILURE;
            break;
        }
        c.elector = e;
        c.child_done = 0;
        pthread_mutex_lock(&st.mu);
        st.elector = e;
        if (shutting_down)
            kle_elector_stop(e);
        pthread_mutex_unlock(&st.mu);

        rc = kle_elector_run(e);

        kle_elector_get_stats(&s, e);
        pthread_mutex_lock(&st.mu);
        st.slowpath_base += s.slowpath_total;
        st.elector = NULL;
        pthread_mutex_unlock(&st.mu);
        kle_elector_free(e);
        c.elector = NULL;

        if (c.child_done) {
            if (o->on_exit == CLI_ON_EXIT_EXIT) {
                exit_code = c.child_code;
                break;
            }
            /* Give the other replicas one retry period to take over. */
            pause_ms(o->retry_period_ms);
            continue;
        }
        if (shutting_down)
            break;
        if (rc == KLE_ETIMEOUT) {
            CLI_WARN("lost leadership of %s (renewals failed); campaigning again", c.lock_desc);
            continue;
        }
        if (rc < 0) {
            CLI_ERR("election stopped: %s; campaigning again in %lld ms", kle_error_last()->message,
                    (long long)o->retry_period_ms);
            pause_ms(o->retry_period_ms);
        }
    }
    cli_http_stop(http);
    kle_client_free(client);
    free(st.leader);
    CLI_INFO("exiting with code %d", exit_code);
    return exit_code;
}
