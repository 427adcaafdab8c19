/* The client's transport: connection policy (proxies, keepalive, TLS
 * options), agents (a libcurl multi handle of a client driven by a loop,
 * async.h) and the request state machine: credentials, the transfer, the
 * 401 retry and the error mapping, once for every request and watch. */
#include "kle/client.h"
#include "kle/rest.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* The server's host name, without brackets; "" when not found. */
static void server_host(const char *server, char *host, size_t size)
{
    const char *hs = strstr(server, "://");
    size_t n = 0;
    host[0] = '\0';
    if (!hs)
        return;
    hs += 3;
    if (*hs == '[')
        hs++;
    while (hs[n] && !strchr(":/]", hs[n]) && n < size - 1) {
        host[n] = hs[n];
        n++;
    }
    host[n] = '\0';
}

/* Whether $no_proxy / $NO_PROXY (lower case first, as libcurl) names host:
 * "*", the host itself, or a domain it is in ("example.com" or
 * ".example.com" for a.example.com). */
static int no_proxy_matches(const char *host)
{
    const char *env = getenv("no_proxy");
    if (!env || !*env)
        env = getenv("NO_PROXY");
    if (!env || !*env)
        return 0;
    size_t hl = strlen(host);
    for (const char *p = env; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ')
            e++;
        size_t n = (size_t)(e - p);
        const char *d = p;
        if (n && *d == '.') {
            d++;
            n--;
        }
        if ((n == 1 && *d == '*') || (n && n <= hl && strncasecmp(host + hl - n, d, n) == 0 &&
                                      (n == hl || host[hl - n - 1] == '.')))
            return 1;
        p = e;
    }
    return 0;
}

/* ---- agents: a multi handle of a client on a loop ----------------------- */

/* A pooled easy handle with its response buffer. */
struct kle_kube__slot {
    CURL *easy;
    kle_kube__agent *agent;
    kle_kube__request *req; /* NULL once given up */
    struct xfer x;
    size_t consumed; /* bytes of a streamed body already handed out */
    struct curl_slist *headers;
    char *url;
    size_t url_cap;
    char errbuf[CURL_ERROR_SIZE];
    char local_ip[64]; /* the connection the transfer got (local_port 0: none yet) */
    long local_port;
    int dirty;                         /* new streamed bytes to hand out */
    int in_feed;                       /* handing them out */
    int stop;                          /* given up while handing them out */
    struct kle_kube__slot *next;       /* the free list */
    struct kle_kube__slot *next_dirty; /* the dirty list */
};

struct kle_kube__agent {
    kle_client *c;
    kle_loop *loop;
    int refs;
    int busy; /* handlers of the agent on the stack: a free waits for them */
    CURLM *multi;
    kle_loop_timer timer; /* libcurl's timeout */
    struct kle_kube__slot *free_slots;
    struct kle_kube__slot *dirty;
    kle_kube__request *waiting, *waiting_tail; /* for a credential */
    int nwaiting;
    struct cred_waiter cred; /* told when a run of the exec plugin ends */
    int *socks;              /* the sockets its connections hold */
    int nsocks, socks_cap;
    kle_kube__agent *next; /* the client's agents */
};

enum { REQ_IDLE = 0, REQ_AUTH, REQ_XFER };

static void process(kle_kube__agent *a);
static void agent_free(kle_kube__agent *a);

static int64_t loop_now(kle_kube__agent *a)
{
    return kle_clock_monotonic_ns(kle_loop_clock(a->loop));
}

static void hold(kle_kube__agent *a)
{
    a->busy++;
}

static void release(kle_kube__agent *a)
{
    if (--a->busy == 0 && a->refs == 0)
        agent_free(a);
}

/* ---- libcurl's sockets and timer on the loop ---- */

static void on_sock_ready(kle_loop *loop, int fd, unsigned events, void *data)
{
    kle_kube__agent *a = data;
    int mask = ((events & KLE_LOOP_IN) ? CURL_CSELECT_IN : 0) |
               ((events & KLE_LOOP_OUT) ? CURL_CSELECT_OUT : 0) |
               ((events & KLE_LOOP_ERR) ? CURL_CSELECT_ERR : 0);
    int running;
    hold(a);
    curl_multi_socket_action(a->multi, fd, mask, &running);
    process(a);
    release(a);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    kle_kube__agent *a = userp;
    unsigned ev = what == CURL_POLL_IN      ? KLE_LOOP_IN
                  : what == CURL_POLL_OUT   ? KLE_LOOP_OUT
                  : what == CURL_POLL_INOUT ? KLE_LOOP_IN | KLE_LOOP_OUT
                                            : 0;
    if (kle_loop_watch_fd(a->loop, fd, ev, on_sock_ready, a) < 0 && ev)
        KLE_LOG_E("API client: cannot watch a connection's socket: %s", kle_error_last()->message);
    return 0;
}

static void on_curl_due(kle_loop *loop, kle_loop_timer *t, void *data)
{
    kle_kube__agent *a = data;
    int running;
    hold(a);
    curl_multi_socket_action(a->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    process(a);
    release(a);
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    kle_kube__agent *a = userp;
    if (ms < 0)
        kle_loop_timer_disarm(a->loop, &a->timer);
    else
        kle_loop_timer_arm(a->loop, &a->timer, loop_now(a) + (int64_t)ms * KLE_NS_PER_MS,
                           on_curl_due, a);
    return 0;
}

/* ---- the sockets of the agent's connections ---- */

static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    kle_kube__agent *a = clientp;
    if (a->nsocks == a->socks_cap) {
        int cap = a->socks_cap ? a->socks_cap * 2 : 4;
        int *s = realloc(a->socks, (size_t)cap * sizeof(*s));
        if (!s)
            return CURL_SOCKET_BAD;
        a->socks = s;
        a->socks_cap = cap;
    }
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd >= 0)
        a->socks[a->nsocks++] = fd;
    return fd >= 0 ? fd : CURL_SOCKET_BAD;
}

static int close_socket(void *clientp, curl_socket_t fd)
{
    kle_kube__agent *a = clientp;
    for (int i = 0; i < a->nsocks; i++)
        if (a->socks[i] == fd) {
            a->socks[i] = a->socks[--a->nsocks];
            break;
        }
    return close(fd);
}

static int on_prereq(void *clientp, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    struct kle_kube__slot *s = clientp;
    snprintf(s->local_ip, sizeof(s->local_ip), "%s", local_ip ? local_ip : "");
    s->local_port = local_port;
    return CURL_PREREQFUNC_OK;
}

/*
 * Closes the connection @p s's transfer used, for every transfer on it:
 * libcurl would keep an HTTP/2 connection whose stream timed out and hand
 * it to the next request, frozen or not. The socket is shut down, not
 * closed: libcurl still owns it, sees it dead and closes it (a transfer on
 * it that got no answer yet is retried on a new connection by libcurl).
 */
static void kill_connection(kle_kube__agent *a, struct kle_kube__slot *s)
{
    if (!s->local_port)
        return;
    for (int i = 0; i < a->nsocks; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        char ip[64] = "";
        int port = 0;
        if (getsockname(a->socks[i], (struct sockaddr *)&ss, &len) != 0)
            continue;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
            port = ntohs(sin->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
            port = ntohs(sin6->sin6_port);
        }
        if (port == s->local_port && strcmp(ip, s->local_ip) == 0) {
            shutdown(a->socks[i], SHUT_RDWR);
            KLE_LOG_V(6, "closing a connection after a failed request; the next request opens a "
                         "new one");
            return;
        }
    }
}

int kle_kube__agent_sockets(kle_kube__agent *a)
{
    return a ? a->nsocks : 0;
}

/* ---- slots ---- */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct kle_kube__slot *s = ud;
    struct xfer *x = &s->x;
    size_t n = size * nmemb;
    if (x->body.len + n > x->max) {
        x->too_large = 1;
        return 0;
    }
    if (x->body.len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->body.len + n + 1)
            cap *= 2;
        char *d = realloc(x->body.data, cap);
        if (!d)
            return 0;
        x->body.data = d;
        x->cap = cap;
    }
    memcpy(x->body.data + x->body.len, ptr, n);
    x->body.len += n;
    x->body.data[x->body.len] = '\0';
    if (s->req && s->req->stream && !s->dirty) {
        s->dirty = 1;
        s->next_dirty = s->agent->dirty;
        s->agent->dirty = s;
    }
    return n;
}

static struct kle_kube__slot *slot_take(kle_kube__agent *a)
{
    struct kle_kube__slot *s = a->free_slots;
    if (s) {
        a->free_slots = s->next;
        s->next = NULL;
        return s;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->easy = curl_easy_init())) {
        free(s);
        return NULL;
    }
    s->agent = a;
    s->x.c = a->c;
    return s;
}

static void slot_free(struct kle_kube__slot *s)
{
    curl_easy_cleanup(s->easy);
    wipe_slist(s->headers);
    kle_buf__free(&s->x.body);
    free(s->url);
    free(s);
}

/* Ends @p s's transfer (if it is on the multi handle) and pools it. */
static void slot_release(kle_kube__agent *a, struct kle_kube__slot *s, int attached)
{
    if (attached)
        curl_multi_remove_handle(a->multi, s->easy);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
    wipe_slist(s->headers);
    s->headers = NULL;
    if (s->dirty) {
        for (struct kle_kube__slot **p = &a->dirty; *p; p = &(*p)->next_dirty)
            if (*p == s) {
                *p = s->next_dirty;
                break;
            }
        s->dirty = 0;
        s->next_dirty = NULL;
    }
    /* A large body's buffer is not kept. */
    if (s->x.cap > 65536) {
        kle_buf__free(&s->x.body);
        s->x.cap = 0;
    }
    s->x.body.len = 0;
    if (s->x.body.data)
        s->x.body.data[0] = '\0';
    s->x.too_large = 0;
    s->x.retry_after = 0;
    s->consumed = 0;
    s->local_port = 0;
    s->local_ip[0] = '\0';
    s->req = NULL;
    s->stop = 0;
    s->next = a->free_slots;
    a->free_slots = s;
}

/* ---- one transfer ------------------------------------------------------ */

static const char *http_version_name(long v)
{
    switch (v) {
    case CURL_HTTP_VERSION_1_0:
        return "HTTP/1.0";
    case CURL_HTTP_VERSION_1_1:
        return "HTTP/1.1";
    case CURL_HTTP_VERSION_2_0:
        return "HTTP/2";
    case CURL_HTTP_VERSION_3:
        return "HTTP/3";
    default:
        return "HTTP/?";
    }
}

/* Logs a server's Warning header (RFC 7234: code agent "text" [date]) once
 * per distinct text, as client-go's warning handler does. */
static void on_warning(kle_client *c, const char *v, size_t n)
{
    char text[512];
    size_t k = 0;
    const char *q = memchr(v, '"', n);
    if (q) {
        /* The quoted text, unescaping \" and \\. */
        for (const char *p = q + 1; p < v + n && *p != '"' && k < sizeof(text) - 1; p++) {
            if (*p == '\\' && p + 1 < v + n)
                p++;
            text[k++] = *p;
        }
    } else {
        for (; k < n && k < sizeof(text) - 1; k++)
            text[k] = v[k];
    }
    while (k && strchr(" \t\r\n", text[k - 1]))
        k--;
    text[k] = '\0';
    for (size_t i = 0; i < k; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            text[i] = ' ';
    if (!k)
        return;
    pthread_mutex_lock(&c->mu);
    int seen = 0;
    for (int i = 0; i < c->nwarnings && !seen; i++)
        seen = strcmp(c->warnings[i], text) == 0;
    if (!seen && c->nwarnings < MAX_WARNINGS) {
        c->warnings[c->nwarnings] = strdup(text);
        if (c->warnings[c->nwarnings])
            c->nwarnings++;
    }
    pthread_mutex_unlock(&c->mu);
    if (!seen)
        KLE_LOG_W("the API server warns: %s", text);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
    size_t n = size * nmemb;
    if (n > 8 && strncasecmp(ptr, "Warning:", 8) == 0 && x->c)
        on_warning(x->c, ptr + 8, n - 8);
    if (n > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
        char v[32];
        size_t l = n - 12 < sizeof(v) - 1 ? n - 12 : sizeof(v) - 1;
        memcpy(v, ptr + 12, l);
        v[l] = '\0';
        char *end;
        long s = strtol(v, &end, 10);
        if (end != v && s >= 0 && s < 86400)
            x->retry_after = (int)s;
    }
    return n;
}

/* Transport health of every socket of the client, from the shortest
 * request timeout seen (the elector's per-call timeout, renew_deadline/2):
 * TCP_USER_TIMEOUT closes a connection whose sent data stays unacknowledged
 * that long, and keepalive probes an idle one after half of it. */
static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    kle_client *c = ud;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKOPT_OK;
    pthread_mutex_lock(&c->mu);
    int64_t base = c->min_timeout_ms;
    pthread_mutex_unlock(&c->mu);
    if (base < 1000)
        base = 1000;
    if (base > 30000)
        base = 30000;
#ifdef TCP_USER_TIMEOUT
    unsigned int uto = (unsigned int)base;
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
#endif
    return CURL_SOCKOPT_OK;
}

/* Sets every option of @p r's transfer on @p s's easy handle (reset first). */
static int setup_easy(kle_kube__agent *ag, struct kle_kube__slot *s, const kle_kube__request *r,
                      const struct auth *a)
{
    kle_client *c = ag->c;
    kle_kube__config *cfg = c->cfg;
    CURL *h = s->easy;
    const char *method = r->method, *ctype = r->content_type, *body = r->body;
    size_t body_len = r->body_len;
    int64_t timeout_ms = ns_to_ms(r->deadline_ns - loop_now(ag));
    size_t need = strlen(c->url_base) + strlen(r->path) + 1;
    if (need > s->url_cap) {
        char *u = realloc(s->url, need);
        if (!u)
            return kle_error_set(KLE_ENOMEM, "out of memory");
        s->url = u;
        s->url_cap = need;
    }
    snprintf(s->url, s->url_cap, "%s%s", c->url_base, r->path);
    s->x.max = c->max_response;
    curl_easy_reset(h);
    struct curl_slist *hl = NULL, *t;
#define ADD_HEADER(s)                                                                              \
    do {                                                                                           \
        if (!(t = curl_slist_append(hl, (s)))) {                                                   \
            wipe_slist(hl);                                                                        \
            return kle_error_set(KLE_ENOMEM, "out of memory");                                     \
        }                                                                                          \
        hl = t;                                                                                    \
    } while (0)
    ADD_HEADER("Accept: application/json");
    /* Large bodies ask first (Expect: 100-continue), so that a server that
     * refuses them (413) can say so before the upload breaks the
     * connection; small ones are sent at once. */
    if (body_len <= EXPECT_CONTINUE_MIN)
        ADD_HEADER("Expect:");
    if (ctype) {
        char ct[128];
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        ADD_HEADER(ct);
    }
    if (c->host_header)
        ADD_HEADER(c->host_header);
    if (a->header)
        ADD_HEADER(a->header);
#undef ADD_HEADER
    s->headers = hl;

    s->errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_PRIVATE, s);
    curl_easy_setopt(h, CURLOPT_URL, s->url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over HTTP/2 a request waits for the connection being opened rather
     * than opening another: every request of the agent shares one. */
    curl_easy_setopt(h, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, ag);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
    curl_easy_setopt(h, CURLOPT_CLOSESOCKETDATA, ag);
    curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(h, CURLOPT_PREREQDATA, s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    {
        pthread_mutex_lock(&c->mu);
        int64_t base = c->min_timeout_ms;
        pthread_mutex_unlock(&c->mu);
        /* Idle connections: probed after half the base, and not reused
         * after being idle longer than the base (a connection that sat
         * idle through a load balancer's failover is never trusted). */
        long idle_s = (long)(base / 2000);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, idle_s > 0 ? idle_s : 1L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 1L);
        long age_s = (long)(base / 1000);
        curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, age_s > 0 ? age_s : 1L);
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
        curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, c);
    }
    /* No TLS session resumption, as client-go (Go's default client has no
     * session cache): a new connection always does a full handshake. */
    curl_easy_setopt(h, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &s->x);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
    long cto = (long)(c->connect_timeout_ms < timeout_ms || timeout_ms <= 0 ? c->connect_timeout_ms
                                                                            : timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cto > 0 ? cto : 1L);
    /* No CURLOPT_TIMEOUT_MS: the request's deadline is a loop timer at an
     * absolute time (kle_kube__request.timer). */
    if (cfg->insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (a->ca.len) {
        struct curl_blob blob = {a->ca.data, a->ca.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
    }
    if (a->cert.data) {
        struct curl_blob cb = {a->cert.data, a->cert.len, CURL_BLOB_COPY};
        struct curl_blob kb = {a->key.data, a->key.len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (c->connect_to)
        curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
    if (cfg->proxy_url) {
        /* An explicit proxy-url applies to every request, as in client-go;
         * otherwise libcurl follows https_proxy/no_proxy like Go does. */
        curl_easy_setopt(h, CURLOPT_PROXY, cfg->proxy_url);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    } else if (c->server_is_loopback) {
        /* HTTPS_PROXY and friends never apply to a loopback server, as in
         * kubectl (Go's ProxyFromEnvironment). */
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    } else if (c->connect_to) {
        /* With tls-server-name the URL names that name; NO_PROXY is about
         * the server's own host, so decide here. */
        char host[256];
        server_host(cfg->server, host, sizeof(host));
        curl_easy_setopt(h, CURLOPT_NOPROXY, no_proxy_matches(host) ? "*" : "");
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    } else {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    return 0;
}

/* ---- requests ---------------------------------------------------------- */

/* The method as messages show it. */
#define VERB(r) ((r)->verb ? (r)->verb : (r)->method)

/* Counts the attempt for kle_client_metrics(), once: a watch as "watch"
 * when its stream starts (not when it ends, half an hour later). */
static void count_attempt(kle_kube__request *r, kle_client *c, long status)
{
    if (r->counted)
        return;
    r->counted = 1;
    kle_kube__count_request(c, r->stream ? "watch" : NULL, r->method, r->path, status);
}

int kle_kube__request_check(const char *method, const char *path)
{
    if (path[0] != '/')
        return kle_error_set(KLE_EINVAL, "%s %s: the path must start with '/'", method, path);
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
            return kle_error_set(KLE_EINVAL,
                                 "%s %s: the path contains a space, control character or '#' "
                                 "(percent-encode it)",
                                 method, path);
    for (const char *p = method; *p; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            return kle_error_set(KLE_EINVAL, "kle_client_request: \"%s\" is not an HTTP method",
                                 method);
    if (!*method)
        return kle_error_set(KLE_EINVAL, "kle_client_request: the HTTP method is empty");
    return 0;
}

/* Runs done: the error is recorded just before (nothing in between may record another). */
static void complete(kle_kube__request *r, int rc, json_object *obj)
{
    kle_loop_timer_disarm(r->agent->loop, &r->timer);
    r->state = REQ_IDLE;
    r->slot = NULL;
    r->done(r, rc, obj, r->data);
}

static void unlink_waiting(kle_kube__agent *a, kle_kube__request *r)
{
    kle_kube__request *prev = NULL;
    for (kle_kube__request *p = a->waiting; p; prev = p, p = p->next)
        if (p == r) {
            if (prev)
                prev->next = r->next;
            else
                a->waiting = r->next;
            if (a->waiting_tail == r)
                a->waiting_tail = prev;
            a->nwaiting--;
            break;
        }
    r->next = NULL;
}

/*
 * One attempt: credentials (or a wait for them), the transfer set up and
 * added. 0: under way (done runs later); an error: nothing under way.
 */
static int attempt(kle_kube__request *r)
{
    kle_kube__agent *a = r->agent;
    kle_client *c = a->c;
    r->counted = 0;
    struct auth au;
    int rc = kle_kube__auth_try(c, &au, &a->cred, &r->exec_runs);
    if (rc == AUTH_PENDING) {
        r->state = REQ_AUTH;
        r->next = NULL;
        if (a->waiting_tail)
            a->waiting_tail->next = r;
        else
            a->waiting = r;
        a->waiting_tail = r;
        a->nwaiting++;
        return 0;
    }
    if (rc)
        return kle_error_prefix("%s %s: ", VERB(r), r->path);
    r->auth_exec = au.from_exec;
    r->auth_file = au.from_file;
    struct kle_kube__slot *s = slot_take(a);
    if (!s) {
        kle_kube__auth_clear(&au);
        return kle_error_set(KLE_ENOMEM, "%s %s: libcurl could not be initialised", VERB(r),
                             r->path);
    }
    rc = setup_easy(a, s, r, &au);
    if (rc == 0 && kle_log__enabled(8))
        KLE_LOG_V(8, "%s %s (Authorization: %s, user agent %s)", VERB(r), s->url,
                  au.header
                      ? (strstr(au.header, "Basic") ? "Basic <redacted>" : "Bearer <redacted>")
                      : "none",
                  c->user_agent);
    kle_kube__auth_clear(&au);
    if (rc) {
        slot_release(a, s, 0);
        return rc;
    }
    s->req = r;
    r->slot = s;
    r->state = REQ_XFER;
    r->sent_ns = loop_now(a);
    if (curl_multi_add_handle(a->multi, s->easy) != CURLM_OK) {
        r->slot = NULL;
        r->state = REQ_IDLE;
        slot_release(a, s, 0);
        return kle_error_set(KLE_ETRANSPORT, "%s %s: libcurl multi interface failed", VERB(r),
                             r->path);
    }
    return 0;
}

static void count_discarded(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    c->discarded++;
    pthread_mutex_unlock(&c->mu);
}

static void on_deadline(kle_loop *loop, kle_loop_timer *t, void *data)
{
    kle_kube__request *r = data;
    kle_kube__agent *a = r->agent;
    int rc;
    hold(a);
    if (r->state == REQ_AUTH) {
        unlink_waiting(a, r);
        rc = kle_kube__auth_wait_timeout(a->c, VERB(r), r->path);
        complete(r, rc, NULL);
    } else if (r->state == REQ_XFER) {
        struct kle_kube__slot *s = r->slot;
        if (s->in_feed) {
            /* Its own line callback runs: it gives up once that returns. */
            s->stop = 1;
            s->req = NULL;
        } else {
            kill_connection(a, s);
            slot_release(a, s, 1);
        }
        count_discarded(a->c);
        count_attempt(r, a->c, -1);
        r->healthy = 0;
        rc = kle_error_set(KLE_ETIMEOUT, "%s %s: no response within %lld ms", VERB(r), r->path,
                           (long long)ns_to_ms(r->deadline_ns - r->start_ns));
        KLE_LOG_V(6, "%s %s failed: %s", VERB(r), r->path, kle_error_last()->message);
        complete(r, rc, NULL);
    }
    release(a);
}

int kle_kube__request_start(kle_kube__agent *a, kle_kube__request *r)
{
    if (!a || !r || !r->done || !r->method || !r->path)
        return kle_error_set(KLE_EINVAL,
                             "request: agent, method, path and a completion must be set");
    if (r->state != REQ_IDLE)
        return kle_error_set(KLE_ESTATE, "%s %s: the request is already running", VERB(r), r->path);
    int rc = kle_kube__request_check(VERB(r), r->path);
    if (rc)
        return rc;
    int64_t now = loop_now(a);
    if (r->deadline_ns <= now)
        return kle_error_set(KLE_ETIMEOUT, "%s %s: the time budget was already spent", VERB(r),
                             r->path);
    r->agent = a;
    r->slot = NULL;
    r->next = NULL;
    r->status = 0;
    r->healthy = 1;
    r->attempt = 0;
    r->start_ns = now;
    r->sent_ns = 0;
    r->exec_runs = 0;
    int64_t timeout_ms = ns_to_ms(r->deadline_ns - now);
    pthread_mutex_lock(&a->c->mu);
    if (timeout_ms < a->c->min_timeout_ms)
        a->c->min_timeout_ms = timeout_ms;
    pthread_mutex_unlock(&a->c->mu);
    if ((rc = kle_loop_timer_arm(a->loop, &r->timer, r->deadline_ns, on_deadline, r)))
        return rc;
    if ((rc = attempt(r))) {
        kle_loop_timer_disarm(a->loop, &r->timer);
        r->state = REQ_IDLE;
        return rc;
    }
    return 0;
}

void kle_kube__request_abandon(kle_kube__request *r)
{
    if (!r || r->state == REQ_IDLE)
        return;
    kle_kube__agent *a = r->agent;
    kle_loop_timer_disarm(a->loop, &r->timer);
    if (r->state == REQ_AUTH) {
        unlink_waiting(a, r);
    } else {
        struct kle_kube__slot *s = r->slot;
        if (s->in_feed) {
            s->stop = 1;
            s->req = NULL;
        } else {
            slot_release(a, s, 1);
        }
    }
    r->state = REQ_IDLE;
    r->slot = NULL;
}

int kle_kube__request_running(const kle_kube__request *r)
{
    return r && r->state != REQ_IDLE;
}

static int feed_line(void *ud, const char *line, size_t len)
{
    struct kle_kube__slot *s = ud;
    kle_kube__request *r = s->req;
    return !r || s->stop || r->stream(r, line, len, r->data) || s->stop;
}

/*
 * Hands the complete lines of a streamed 2xx body to the request's line
 * callback. Returns 1 when the request was given up or stopped there (its
 * slot is back in the pool and done must not run), else 0.
 */
static int feed(kle_kube__agent *a, struct kle_kube__slot *s)
{
    kle_kube__request *r = s->req;
    long status = 0;
    if (!r || !r->stream)
        return 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300)
        return 0; /* an error body is read whole */
    count_attempt(r, a->c, status);
    s->in_feed = 1;
    int stopped = kle_kube__watch_feed(&s->x.body, &s->consumed, feed_line, s);
    s->in_feed = 0;
    if (!stopped && !s->stop)
        return 0;
    /* Stopped by its callback, or given up (abandoned, timed out) meanwhile. */
    r = s->req;
    if (r) {
        kle_loop_timer_disarm(a->loop, &r->timer);
        r->state = REQ_IDLE;
        r->slot = NULL;
    }
    slot_release(a, s, 1);
    return 1;
}

static void transfer_done(kle_kube__agent *a, struct kle_kube__slot *s, CURLcode cc)
{
    kle_kube__request *r = s->req;
    kle_client *c = a->c;
    long status = 0, fresh = 0, version = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &fresh);
    curl_easy_getinfo(s->easy, CURLINFO_HTTP_VERSION, &version);
    r->status = status;
    if (!r->uncounted) {
        pthread_mutex_lock(&c->mu);
        c->connections += fresh;
        if (cc == CURLE_OK)
            c->http_version = version;
        pthread_mutex_unlock(&c->mu);
    }
    int64_t took = (loop_now(a) - r->start_ns) / KLE_NS_PER_MS;
    /* A server may answer early (413 while the body is still being sent)
     * and close, or reset the HTTP/2 stream: its answer counts, not the
     * broken upload (the connection is not kept). */
    int early = 0;
    if (cc != CURLE_OK && status >= 400 && !s->x.too_large &&
        (cc == CURLE_SEND_ERROR || cc == CURLE_HTTP2_STREAM || cc == CURLE_HTTP2)) {
        cc = CURLE_OK;
        early = 1;
    }
    if (cc != CURLE_OK) {
        if (cc == CURLE_OPERATION_TIMEDOUT)
            kill_connection(a, s);
        count_discarded(c);
        count_attempt(r, c, -1);
        r->healthy = 0;
        int rc = kle_kube__curl_error(VERB(r), r->path, cc, s->errbuf, &s->x);
        KLE_LOG_V(6, "%s %s failed in %lld ms: %s", VERB(r), s->url, (long long)took,
                  kle_error_last()->message);
        slot_release(a, s, 1);
        complete(r, rc, NULL);
        return;
    }
    KLE_LOG_V(6, "%s %s %ld in %lld ms (%zu bytes, %s%s)", VERB(r), s->url, status, (long long)took,
              s->x.body.len, http_version_name(version), fresh ? ", new connection" : "");
    count_attempt(r, c, status);
    if (early) {
        kill_connection(a, s);
        count_discarded(c);
        r->healthy = 0;
    }
    if (status == 401 && r->attempt == 0 &&
        kle_kube__auth_invalidate(c, r->auth_exec, r->auth_file)) {
        slot_release(a, s, 1);
        r->slot = NULL;
        r->attempt = 1;
        int rc = attempt(r);
        if (rc)
            complete(r, rc, NULL);
        return;
    }
    if (r->stream && status >= 200 && status < 300) {
        if (feed(a, s))
            return;
        slot_release(a, s, 1);
        kle_error_clear();
        complete(r, 0, NULL);
        return;
    }
    json_object *obj = NULL;
    int rc = 0;
    if (s->x.body.len) {
        obj = kle_kube__parse_json(s->x.body.data, s->x.body.len);
        if (!obj && status >= 200 && status < 300)
            rc = kle_error_set(KLE_EBADRESPONSE, "%s %s: %ld response is not JSON", VERB(r),
                               r->path, status);
    }
    if (!rc && (status < 200 || status >= 300)) {
        rc = kle_kube__api_error(VERB(r), r->path, status, obj, s->x.body.data, s->x.body.len,
                                 s->x.retry_after);
        const char *kind = kle_kube__jstr(obj, "kind");
        if (!kind || strcmp(kind, "Status") != 0) {
            json_object_put(obj);
            obj = NULL;
        }
    }
    slot_release(a, s, 1);
    if (rc == 0)
        kle_error_clear();
    complete(r, rc, obj);
}

/* What libcurl did in one socket action: streamed bytes first, then completions. */
static void process(kle_kube__agent *a)
{
    struct kle_kube__slot *s;
    while ((s = a->dirty)) {
        a->dirty = s->next_dirty;
        s->next_dirty = NULL;
        s->dirty = 0;
        feed(a, s);
    }
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(a->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode cc = m->data.result;
        char *p = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
        s = (struct kle_kube__slot *)(void *)p;
        if (s && s->req)
            transfer_done(a, s, cc);
    }
}

/* ---- credentials that arrive later ---- */

static void on_credentials(kle_loop *loop, kle_loop_post *p, void *data)
{
    kle_kube__agent *a = data;
    hold(a);
    /* The requests waiting now; one that has to wait again goes to the back. */
    for (int n = a->nwaiting; n > 0 && a->waiting; n--) {
        kle_kube__request *r = a->waiting;
        unlink_waiting(a, r);
        r->state = REQ_IDLE;
        int rc = attempt(r);
        if (rc)
            complete(r, rc, NULL);
    }
    release(a);
}

/* ---- agents ------------------------------------------------------------ */

int kle_kube__agent_get(kle_kube__agent **out, kle_client *c, kle_loop *loop)
{
    if (!out || !c || !loop)
        return kle_error_set(KLE_EINVAL, "API client: an agent needs a client and a loop");
    *out = NULL;
    if (kle_loop_fd(loop) < 0)
        return kle_error_set(KLE_ESTATE, "API client: requests need a loop on the real clock");
    pthread_mutex_lock(&c->mu);
    kle_kube__agent *a = c->agents;
    while (a && a->loop != loop)
        a = a->next;
    if (a)
        a->refs++;
    pthread_mutex_unlock(&c->mu);
    if (a) {
        *out = a;
        return 0;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    a->c = c;
    a->loop = loop;
    a->refs = 1;
    atomic_init(&a->cred.waiting, 0);
    a->cred.loop = loop;
    a->cred.fn = on_credentials;
    a->cred.data = a;
    a->multi = curl_multi_init();
    if (!a->multi) {
        free(a);
        return kle_error_set(KLE_ETRANSPORT, "libcurl could not be initialised");
    }
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(a->multi, CURLMOPT_SOCKETDATA, a);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(a->multi, CURLMOPT_TIMERDATA, a);
    curl_multi_setopt(a->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(a->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)KLE_KUBE_AGENT_CONNECTIONS);
    curl_multi_setopt(a->multi, CURLMOPT_MAXCONNECTS, (long)KLE_KUBE_AGENT_CONNECTIONS);
    curl_multi_setopt(a->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
    pthread_mutex_lock(&c->mu);
    a->next = c->agents;
    c->agents = a;
    pthread_mutex_unlock(&c->mu);
    kle_kube__cred_waiter_add(c, &a->cred);
    *out = a;
    return 0;
}

static void agent_free(kle_kube__agent *a)
{
    kle_loop_timer_disarm(a->loop, &a->timer);
    kle_kube__cred_waiter_remove(a->c, &a->cred);
    while (a->free_slots) {
        struct kle_kube__slot *s = a->free_slots;
        a->free_slots = s->next;
        slot_free(s);
    }
    /* Closes the connections (close_socket untracks them). */
    curl_multi_cleanup(a->multi);
    kle_loop_timer_disarm(a->loop, &a->timer);
    free(a->socks);
    free(a);
}

void kle_kube__agent_put(kle_kube__agent *a)
{
    if (!a)
        return;
    kle_client *c = a->c;
    pthread_mutex_lock(&c->mu);
    int last = --a->refs == 0;
    if (last)
        for (kle_kube__agent **p = &c->agents; *p; p = &(*p)->next)
            if (*p == a) {
                *p = a->next;
                break;
            }
    pthread_mutex_unlock(&c->mu);
    if (last && a->busy == 0)
        agent_free(a);
}

kle_loop *kle_kube__agent_loop(kle_kube__agent *a)
{
    return a ? a->loop : NULL;
}

kle_client *kle_kube__agent_client(kle_kube__agent *a)
{
    return a ? a->c : NULL;
}

int64_t kle_kube__agent_now(kle_kube__agent *a)
{
    return loop_now(a);
}
