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

/* Prometheus label values escape backslash, quote and newline. */
static void label_escape(char *out, size_t size, const char *in)
{
    size_t n = 0;
    for (; *in && n + 3 < size; in++) {
        if (*in == '\\' || *in == '"') {
            out[n++] = '\\';
            out[n++] = *in;
        } else if (*in == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *in;
        }
    }
    out[n] = '\0';
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
        char msg[600];
        int rc = 0;
        pthread_mutex_lock(&st->mu);
        if (st->elector)
            rc = kle_elector_check_ns(st->elector, KLE_MS(st->opts->healthz_timeout_ms));
        if (rc < 0)
            snprintf(msg, sizeof(msg), "leaderElection: %s\n", kle_error_last()->message);
        pthread_mutex_unlock(&st->mu);
        return rc < 0 ? reply(c, 500, "text/plain", msg) : reply(c, 200, "text/plain", "ok");
    }
    if (strcmp(url, "/readyz") == 0) {
        int ready;
        pthread_mutex_lock(&st->leader_mu);
        ready = st->observed;
        pthread_mutex_unlock(&st->leader_mu);
        return ready ? reply(c, 200, "text/plain", "ok")
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
        char name[512], body[2048];
        pthread_mutex_lock(&st->mu);
        if (st->elector)
            kle_elector_get_stats(&s, st->elector);
        s.slowpath_total += st->slowpath_base;
        pthread_mutex_unlock(&st->mu);
        label_escape(name, sizeof(name), st->opts->lock_name);
        snprintf(body, sizeof(body),
                 "# HELP leader_election_master_status Gauge of if the reporting system is master "
                 "of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the "
                 "string used to identify the lease. Please make sure to group by name.\n"
                 "# TYPE leader_election_master_status gauge\n"
                 "leader_election_master_status{name=\"%s\"} %d\n"
                 "# HELP leader_election_slowpath_total Total number of slow path exercised in "
                 "renewing leader leases. 'name' is the string used to identify the lease. Please "
                 "make sure to group by name.\n"
                 "# TYPE leader_election_slowpath_total counter\n"
                 "leader_election_slowpath_total{name=\"%s\"} %llu\n"
                 "# HELP kle_log_dropped_lines_total Log lines dropped because the log output "
                 "was blocked and the log queue full.\n"
                 "# TYPE kle_log_dropped_lines_total counter\n"
                 "kle_log_dropped_lines_total %llu\n",
                 name, s.leader ? 1 : 0, name, (unsigned long long)s.slowpath_total,
                 (unsigned long long)kle_log_dropped());
        return reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", body);
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
