/* /healthz, /readyz, /metrics and /leader of kle run, on libmicrohttpd. */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "run.h"

struct cli_http {
    struct MHD_Daemon *d;
    cli_run_state *st;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int code, const char *type,
                             const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
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
         * API server got an answer. */
        kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
        int observed, err;
        char msg[300];
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
        kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
        const kle_elector_stats *sp = &s;
        const char *name = st->opts->lock_name;
        char *body = NULL;
        enum MHD_Result ret;
        pthread_mutex_lock(&st->mu);
        if (st->elector)
            kle_elector_get_stats(&s, st->elector);
        s.slowpath_total += st->slowpath_base;
        pthread_mutex_unlock(&st->mu);
        if (kle_metrics_format(&body, &name, &sp, 1) < 0)
            return reply(c, 500, "text/plain", "out of memory\n");
        ret = reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body);
        kle_free(body);
        return ret;
    }
    return reply(c, 404, "text/plain", "not found: try /healthz, /readyz, /metrics, /leader\n");
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
        CLI_ERR("--http-addr \"%s\": expected HOST:PORT (e.g. 127.0.0.1:8080, :8080)", addr);
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
        CLI_ERR("--http-addr \"%s\": %s", addr, gai_strerror(gai));
        return -1;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        freeaddrinfo(ai);
        return -1;
    }
    h->st = st;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The election needs descriptors (API connections, eventfds, timers,
     * the supervisor's pipes): the HTTP server may hold at most an eighth
     * of the limit and 64 connections, 16 from one address, each closed
     * after 5 s of silence. Connections beyond that wait in the listen
     * backlog, which costs no descriptor. */
    struct rlimit rl;
    unsigned int limit = 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 8 < limit)
        limit = rl.rlim_cur / 8 > 4 ? (unsigned int)(rl.rlim_cur / 8) : 4;
    h->d = MHD_start_daemon(flags, 0, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, limit < 16 ? limit : 16u,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 64u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        CLI_ERR("--http-addr \"%s\": cannot listen (address in use or not local?)", addr);
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned int p = info ? info->port : 0;
    if (strchr(host, ':'))
        snprintf(bound, sizeof(bound), "[%s]:%u", host, p);
    else
        snprintf(bound, sizeof(bound), "%s:%u", host[0] ? host : "0.0.0.0", p);
    CLI_INFO("serving /healthz, /readyz, /metrics and /leader on http://%s", bound);
    if (st->opts->http_addr_file) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", st->opts->http_addr_file);
        FILE *f = fopen(tmp, "w");
        int ok = f != NULL;
        if (f) {
            ok = fprintf(f, "%s\n", bound) > 0;
            ok = fclose(f) == 0 && ok;
        }
        if (!ok || rename(tmp, st->opts->http_addr_file) < 0) {
            CLI_ERR("--http-addr-file %s: cannot write it", st->opts->http_addr_file);
            MHD_stop_daemon(h->d);
            free(h);
            return -1;
        }
    }
    *out = h;
    return 0;
}

void cli_http_stop(cli_http *h)
{
    if (!h)
        return;
    MHD_stop_daemon(h->d);
    free(h);
}
