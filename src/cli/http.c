/*
 * /healthz, /readyz, /metrics and /leader of kle run, on libmicrohttpd.
 *
 * kle accepts the connections itself (the front thread) and hands one to
 * libmicrohttpd only once its request has arrived whole; connections that
 * send nothing wait in a bounded table, and when it is full the oldest of
 * the client holding the most is closed. So a flood of idle connections
 * (from one address or many) can neither take the server's slots nor the
 * election's descriptors, and a probe, which sends its request at once,
 * is answered during the flood. Every answer closes its connection.
 */
#include "base/buf.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "run.h"
#include "base/now.h"

/* A connection whose request has not arrived whole yet. */
typedef struct pending {
    int fd;
    int64_t since_ms;      /* accepted (CLOCK_MONOTONIC) */
    uint64_t seq;          /* order of acceptance: many share a millisecond */
    int64_t next_check_ms; /* a partial request is looked at again then */
    struct sockaddr_storage addr;
    socklen_t addr_len;
} pending;

/* A request must arrive whole within this, as libmicrohttpd's idle limit. */
#define REQUEST_TIMEOUT_MS 5000
/* The longest request head kle looks for: beyond it, libmicrohttpd decides. */
#define MAX_HEAD 8192

struct cli_http {
    struct MHD_Daemon *d;
    cli_run_state *st;
    int lfd;
    kle_event *stop;
    pthread_t thread;
    pending *pend;
    size_t npend, cap;
    uint64_t accepted; /* connections accepted so far (pending.seq) */
};

static int64_t mono_ms(void)
{
    return kle_now__ns(CLOCK_MONOTONIC) / 1000000;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int code, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    /* No idle keep-alive connection holds a slot of the server. */
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* /metrics is built in a kle_buf (base/buf.h): a failure is kept in failed. */
#define put kle_buf__printf

static void put_label(kle_buf *t, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            put(t, "\\\\");
        else if (*v == '"')
            put(t, "\\\"");
        else if (*v == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *v);
    }
}

/* /metrics: the elector's (kle_metrics_format()), the command's, the API
 * client's (kle_client_metrics()) and kle_build_info. */
static char *metrics_text(cli_run_state *st)
{
    kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
    const kle_elector_stats *sp = &s;
    const char *name = st->opts->lock_name ? st->opts->lock_name : "";
    kle_buf t = {0};
    char *lib = NULL;

    pthread_mutex_lock(&st->mu);
    if (st->elector && kle_elector_get_stats(&s, st->elector) == 0) {
        if (s.acquisitions == 0) {
            /* No term in this campaign yet: an earlier one's token and renewal. */
            s.token = st->last.token;
            s.last_renew_wall_ns = st->last.last_renew_wall_ns;
            s.acquisitions = st->last.acquisitions;
        }
    } else {
        /* Between campaigns: the last one's, not leading, not watching. */
        s = st->last;
        s.leader = 0;
        s.watching = 0;
        s.slowpath_total = 0;
        s.watch_restarts = 0;
    }
    s.slowpath_total += st->slowpath_base;
    s.watch_restarts += st->watch_restarts_base;
    pthread_mutex_unlock(&st->mu);
    if (kle_metrics_format(&lib, &name, &sp, st->unelected ? 0 : 1) < 0)
        return NULL;
    put(&t, "%s", lib);
    kle_free(lib);

    cli_command_metrics m;
    pthread_mutex_lock(&st->metrics_mu);
    m = st->cmd;
    pthread_mutex_unlock(&st->metrics_mu);
    put(&t,
        "# HELP kle_command_running Whether the command of kle run is running (1) or not (0).\n"
        "# TYPE kle_command_running gauge\n"
        "kle_command_running %d\n",
        m.running);
    put(&t,
        "# HELP kle_command_starts_total Times kle run started the command.\n"
        "# TYPE kle_command_starts_total counter\n"
        "kle_command_starts_total %llu\n",
        (unsigned long long)m.starts);
    put(&t,
        "# HELP kle_command_restarts_total Times kle run started the command again after it "
        "exited, without a new election (--on-exit=restart).\n"
        "# TYPE kle_command_restarts_total counter\n"
        "kle_command_restarts_total %llu\n",
        (unsigned long long)m.restarts);
    put(&t, "# HELP kle_command_exits_total Times the command ended, by exit code (128 + N when "
            "killed by signal N, 126 and 127 when it could not be executed).\n"
            "# TYPE kle_command_exits_total counter\n");
    for (int code = 0; code < 256; code++)
        if (m.exits[code])
            put(&t, "kle_command_exits_total{code=\"%d\"} %llu\n", code,
                (unsigned long long)m.exits[code]);

    if (st->client) {
        char *api = NULL;
        if (kle_client_metrics(&api, st->client) == 0) {
            put(&t, "%s", api);
            kle_free(api);
        }
    }
    put(&t, "# HELP kle_build_info The versions of kle and of the libkle it runs on; always 1.\n"
            "# TYPE kle_build_info gauge\n"
            "kle_build_info{version=\"");
    put_label(&t, KLE_VERSION);
    put(&t, "\",libkle_version=\"");
    put_label(&t, kle_version(NULL, NULL, NULL));
    put(&t, "\"} 1\n");
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    cli_http *h = cls;
    cli_run_state *st = h->st;
    (void)version;
    (void)upload_data;
    (void)con_cls;
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(c, 405, "text/plain", "method not allowed\n");

    if (strcmp(url, "/healthz") == 0) {
        /* Fails when the election loop is wedged: no progress for longer
         * than the bound (docs/cli.md). Between campaigns there is no loop. */
        kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
        char msg[300];
        int64_t bound = cli_healthz_bound_ms(st->opts);
        pthread_mutex_lock(&st->mu);
        if (!st->elector || kle_elector_get_stats(&s, st->elector) < 0)
            s.round_age_ns = -1;
        pthread_mutex_unlock(&st->mu);
        if (s.round_age_ns > KLE_MS(bound)) {
            snprintf(msg, sizeof(msg),
                     "leaderElection: the election loop of %s is wedged: no progress for %lld ms "
                     "(bound %lld ms)\n",
                     st->lock_desc, (long long)(s.round_age_ns / KLE_NS_PER_MS), (long long)bound);
            return reply(c, 500, "text/plain", msg);
        }
        return reply(c, 200, "text/plain", "ok");
    }
    if (strcmp(url, "/readyz") == 0) {
        /* Ready once the lock was read and while the last request to the
         * API server got an answer; without an election, always. */
        kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
        int observed, err;
        char msg[300];
        if (st->unelected)
            return reply(c, 200, "text/plain", "ok");
        pthread_mutex_lock(&st->mu);
        err = st->last_call_error;
        /* A new campaign's elector knows of a request once one failed
         * or a round completed; until then the last campaign's answer holds. */
        if (st->elector && kle_elector_get_stats(&s, st->elector) == 0 &&
            (s.last_call_error || s.failed_tries || s.acquisitions))
            err = st->last_call_error = s.last_call_error;
        pthread_mutex_unlock(&st->mu);
        pthread_mutex_lock(&st->leader_mu);
        observed = st->observed;
        pthread_mutex_unlock(&st->leader_mu);
        if (err < 0) {
            snprintf(msg, sizeof(msg), "the last request to the API server failed: %s\n",
                     kle_strerror(err));
            return reply(c, 503, "text/plain", msg);
        }
        return observed ? reply(c, 200, "text/plain", "ok")
                        : reply(c, 503, "text/plain", "the lock has not been read yet\n");
    }
    if (strcmp(url, "/leader") == 0) {
        json_object *o = json_object_new_object();
        enum MHD_Result ret;
        if (!o)
            return MHD_NO;
        pthread_mutex_lock(&st->leader_mu);
        json_object_object_add(o, "name", json_object_new_string(st->leader ? st->leader : ""));
        pthread_mutex_unlock(&st->leader_mu);
        ret = reply(c, 200, "application/json",
                    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return ret;
    }
    if (strcmp(url, "/metrics") == 0) {
        char *body = metrics_text(st);
        enum MHD_Result ret;
        if (!body)
            return reply(c, 500, "text/plain", "out of memory\n");
        ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body);
        free(body);
        return ret;
    }
    return reply(c, 404, "text/plain", "not found: try /healthz, /readyz, /metrics, /leader\n");
}

static int same_client(const pending *a, const pending *b)
{
    if (a->addr.ss_family != b->addr.ss_family)
        return 0;
    if (a->addr.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->addr)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->addr)->sin_addr.s_addr;
    if (a->addr.ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)&a->addr)->sin6_addr,
                      &((const struct sockaddr_in6 *)&b->addr)->sin6_addr,
                      sizeof(struct in6_addr)) == 0;
    return 1;
}

static void drop(cli_http *h, size_t i)
{
    h->npend--;
    h->pend[i] = h->pend[h->npend];
}

/* The table is full: closes the oldest connection of the client that holds
 * the most, so that no client can crowd the others out. */
static void evict(cli_http *h)
{
    size_t victim = 0, most = 0;
    for (size_t i = 0; i < h->npend; i++) {
        size_t n = 0;
        for (size_t j = 0; j < h->npend; j++)
            n += same_client(&h->pend[i], &h->pend[j]);
        /* Oldest by order of acceptance: a flood accepts many in one
         * millisecond, and by time alone a tie went to the lowest index,
         * where drop() moves the newest (a probe was closed so). */
        if (n > most || (n == most && h->pend[i].seq < h->pend[victim].seq)) {
            most = n;
            victim = i;
        }
    }
    close(h->pend[victim].fd);
    drop(h, victim);
}

/* A pending connection has data, or hung up: hand it over once its request
 * head is there (or too long to wait for); 0 to keep it pending. */
static int ready(cli_http *h, size_t i, int64_t now)
{
    static char buf[MAX_HEAD];
    pending *p = &h->pend[i];
    ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 0;
    if (n <= 0) {
        close(p->fd);
        drop(h, i);
        return 1;
    }
    int whole = (size_t)n == sizeof(buf);
    for (ssize_t k = 3; k < n && !whole; k++)
        whole = buf[k] == '\n' && buf[k - 1] == '\r' && buf[k - 2] == '\n' && buf[k - 3] == '\r';
    if (!whole) {
        p->next_check_ms = now + 50; /* no busy loop on a slow request */
        return 0;
    }
    /* libmicrohttpd takes the socket (and closes it if it cannot serve it). */
    MHD_add_connection(h->d, p->fd, (const struct sockaddr *)&p->addr, p->addr_len);
    drop(h, i);
    return 1;
}

static void *front_main(void *arg)
{
    cli_http *h = arg;
    struct pollfd *pf = calloc(h->cap + 2, sizeof(*pf));
    size_t *idx = calloc(h->cap + 2, sizeof(*idx));
    int64_t accept_pause_until = 0;
    if (!pf || !idx) {
        free(pf);
        free(idx);
        return NULL;
    }
    for (;;) {
        int64_t now = mono_ms(), wake = now + REQUEST_TIMEOUT_MS;
        size_t n = 0;
        pf[n++] = (struct pollfd){kle_event_fd(h->stop), POLLIN, 0};
        int listening = now >= accept_pause_until;
        pf[n++] = (struct pollfd){listening ? h->lfd : -1, POLLIN, 0};
        if (!listening && accept_pause_until < wake)
            wake = accept_pause_until;
        for (size_t i = 0; i < h->npend; i++) {
            pending *p = &h->pend[i];
            if (p->since_ms + REQUEST_TIMEOUT_MS < wake)
                wake = p->since_ms + REQUEST_TIMEOUT_MS;
            if (p->next_check_ms > now) {
                if (p->next_check_ms < wake)
                    wake = p->next_check_ms;
                continue;
            }
            idx[n] = i;
            pf[n++] = (struct pollfd){p->fd, POLLIN, 0};
        }
        int r = poll(pf, (nfds_t)n, (int)(wake > now ? wake - now : 0));
        if (r < 0 && errno != EINTR)
            break;
        if (pf[0].revents)
            break;
        now = mono_ms();
        /* Handed over or closed, from the end so that indices hold. */
        for (size_t k = n; k-- > 2;)
            if (pf[k].revents)
                ready(h, idx[k], now);
        for (size_t i = h->npend; i-- > 0;)
            if (h->pend[i].since_ms + REQUEST_TIMEOUT_MS <= now) {
                close(h->pend[i].fd);
                drop(h, i);
            }
        for (size_t i = h->npend; i-- > 0;)
            if (h->pend[i].next_check_ms && h->pend[i].next_check_ms <= now)
                ready(h, i, now);
        if (!listening || !pf[1].revents)
            continue;
        /* At most half the table at a time: every connection gets looked
         * at (its request handed over) before a flood could evict it. */
        for (size_t k = 0; k < h->cap / 2 + 1; k++) {
            pending p;
            memset(&p, 0, sizeof(p));
            p.addr_len = sizeof(p.addr);
            p.fd = accept4(h->lfd, (struct sockaddr *)&p.addr, &p.addr_len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (p.fd < 0) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                    accept_pause_until = now + 100; /* the election's descriptors come first */
                break;
            }
            if (h->npend == h->cap)
                evict(h);
            p.since_ms = now;
            p.seq = ++h->accepted;
            h->pend[h->npend++] = p;
        }
    }
    for (size_t i = 0; i < h->npend; i++)
        close(h->pend[i].fd);
    h->npend = 0;
    free(pf);
    free(idx);
    return NULL;
}

/* Writes the bound address to --http-addr-file (a rename, so readers never
 * see half of it). */
static int write_addr_file(const char *path, const char *bound)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    int ok = f != NULL;
    if (f) {
        ok = fprintf(f, "%s\n", bound) > 0;
        ok = fclose(f) == 0 && ok;
    }
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

int cli_http_start(cli_http **out, cli_run_state *st)
{
    const char *addr = st->opts->http_addr;
    const char *colon = strrchr(addr, ':');
    char host[256], port[16], bound[300];
    struct addrinfo hints, *ai = NULL;
    cli_http *h;

    if (!colon || (size_t)(colon - addr) >= sizeof(host) || strlen(colon + 1) >= sizeof(port) ||
        !colon[1]) {
        cli_error("--http-addr \"%s\": expected HOST:PORT (e.g. 127.0.0.1:8080, :8080)", addr);
        return -1;
    }
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (gai != 0) {
        cli_error("--http-addr \"%s\": %s", addr, gai_strerror(gai));
        return -1;
    }
    /* A deep listen queue (it costs no descriptor): under a flood a probe's
     * connection waits in it for the front, rather than its SYN being
     * dropped and retried a second later. */
    int lfd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(lfd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(lfd, 1024) < 0) {
        int err = errno;
        cli_error("--http-addr \"%s\": cannot listen: %s", addr, strerror(err));
        if (lfd >= 0)
            close(lfd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    unsigned int p = 0;
    if (getsockname(lfd, (struct sockaddr *)&sa, &salen) == 0)
        p = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                           : ((struct sockaddr_in *)&sa)->sin_port);
    if (strchr(host, ':'))
        snprintf(bound, sizeof(bound), "[%s]:%u", host, p);
    else
        snprintf(bound, sizeof(bound), "%s:%u", host[0] ? host : "0.0.0.0", p);

    h = calloc(1, sizeof(*h));
    if (!h || kle_event_new(&h->stop) < 0) {
        cli_error("--http-addr \"%s\": out of memory", addr);
        free(h);
        close(lfd);
        return -1;
    }
    h->st = st;
    h->lfd = lfd;
    /* The election needs descriptors (API connections, eventfds, timers,
     * the supervisor's pipes): the HTTP server may hold at most an eighth
     * of the limit and 64 connections being answered, 16 from one
     * address, and as many waiting for their request. */
    struct rlimit rl;
    unsigned int limit = 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 8 < limit)
        limit = rl.rlim_cur / 8 > 4 ? (unsigned int)(rl.rlim_cur / 8) : 4;
    h->cap = limit;
    h->pend = calloc(h->cap, sizeof(*h->pend));
    h->d = h->pend ? MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                                          MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC,
                                      0, NULL, NULL, handle, h, MHD_OPTION_CONNECTION_TIMEOUT, 5u,
                                      MHD_OPTION_CONNECTION_LIMIT, limit,
                                      MHD_OPTION_PER_IP_CONNECTION_LIMIT, limit < 16 ? limit : 16u,
                                      MHD_OPTION_END)
                   : NULL;
    if (!h->d || pthread_create(&h->thread, NULL, front_main, h) != 0) {
        cli_error("--http-addr \"%s\": cannot start the HTTP server", addr);
        if (h->d)
            MHD_stop_daemon(h->d);
        kle_event_free(h->stop);
        free(h->pend);
        free(h);
        close(lfd);
        return -1;
    }
    if (st->opts->http_addr_file && write_addr_file(st->opts->http_addr_file, bound) < 0) {
        cli_error("--http-addr-file %s: cannot write it: %s", st->opts->http_addr_file,
                  strerror(errno));
        cli_http_stop(h);
        return -1;
    }
    CLI_INFO("serving /healthz, /readyz, /metrics and /leader on http://%s", bound);
    *out = h;
    return 0;
}

void cli_http_stop(cli_http *h)
{
    if (!h)
        return;
    kle_event_set(h->stop);
    pthread_join(h->thread, NULL);
    MHD_stop_daemon(h->d);
    close(h->lfd);
    kle_event_free(h->stop);
    free(h->pend);
    free(h);
}
