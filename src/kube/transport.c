/* The client's transport: a small pool of libcurl handles (one connection
 * each), connection policy (proxies, keepalive, TLS options) and the
 * request loop. */
#include "kle/client.h"
#include "kle/rest.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log.h"
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

void kle_kube__conn_free(struct conn *k)
{
    if (!k)
        return;
    if (k->easy)
        curl_easy_cleanup(k->easy);
    if (k->multi)
        curl_multi_cleanup(k->multi);
    free(k);
}

/* Takes an idle connection, or makes a new slot (its connection is opened
 * by the request). Returns NULL when out of memory. */
static struct conn *conn_get(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    struct conn *k = c->idle;
    if (k) {
        c->idle = k->next;
        c->nidle--;
    }
    pthread_mutex_unlock(&c->mu);
    if (k)
        return k;
    k = calloc(1, sizeof(*k));
    if (!k || !(k->easy = curl_easy_init()) || !(k->multi = curl_multi_init())) {
        kle_kube__conn_free(k);
        return NULL;
    }
    return k;
}

/* Returns a slot after a request. A slot whose request failed at the
 * transport level, timed out or was cancelled is closed, with its
 * connection: libcurl would otherwise keep an HTTP/2 connection whose
 * stream timed out and reuse it, frozen or not. */
static void conn_put(kle_client *c, struct conn *k, int healthy)
{
    if (!k)
        return;
    pthread_mutex_lock(&c->mu);
    if (!healthy)
        c->discarded++;
    if (healthy && c->nidle < MAX_IDLE_CONNS) {
        k->next = c->idle;
        c->idle = k;
        c->nidle++;
        k = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    if (k && !healthy)
        KLE_LOG_V(6,
                  "closing a connection after a failed request; the next request opens a new one");
    kle_kube__conn_free(k);
}

/* ---- one transfer ------------------------------------------------------ */
static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct xfer *x = ud;
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
    return n;
}

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

/* Sets every option of a request on an easy handle (after a reset). */
int kle_kube__setup_easy(kle_client *c, CURL *h, const char *method, const char *url,
                         struct curl_slist **headers, const struct auth *a, const char *ctype,
                         const char *body, size_t body_len, int64_t timeout_ms, struct xfer *x,
                         char *errbuf)
{
    kle_kube__config *cfg = c->cfg;
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
    *headers = hl;

    errbuf[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
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
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 1000L);
    long cto = (long)(c->connect_timeout_ms < timeout_ms || timeout_ms <= 0 ? c->connect_timeout_ms
                                                                            : timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, cto > 0 ? cto : 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? (long)timeout_ms : 0L);
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

/* Drives one easy handle on a multi handle until it completes, the deadline
 * passes or cancel is set; on_data (may be NULL) runs after each perform and
 * may stop the transfer by returning non-zero. */
enum drive_result kle_kube__drive(CURLM *m, CURL *h, int64_t deadline_ns, kle_event *cancel,
                                  int (*on_data)(void *), void *ud, CURLcode *result)
{
    int running = 1;
    *result = CURLE_OK;
    if (curl_multi_add_handle(m, h) != CURLM_OK)
        return DRIVE_ERROR;
    enum drive_result dr = DRIVE_DONE;
    for (;;) {
        if (cancel && kle_event_is_set(cancel)) {
            dr = DRIVE_CANCELED;
            break;
        }
        if (curl_multi_perform(m, &running) != CURLM_OK) {
            dr = DRIVE_ERROR;
            break;
        }
        if (on_data && on_data(ud)) {
            dr = DRIVE_STOPPED;
            break;
        }
        int msgs;
        CURLMsg *msg;
        int done = 0;
        while ((msg = curl_multi_info_read(m, &msgs))) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) {
                *result = msg->data.result;
                done = 1;
            }
        }
        if (done)
            break;
        int64_t left = deadline_ns == INT64_MAX ? POLL_SLICE_MS * 20 : ms_left(deadline_ns);
        if (left == 0) {
            dr = DRIVE_TIMEOUT;
            break;
        }
        struct curl_waitfd extra = {cancel ? kle_event_fd(cancel) : -1, CURL_WAIT_POLLIN, 0};
        curl_multi_poll(m, cancel ? &extra : NULL, cancel ? 1 : 0, (int)(left > 1000 ? 1000 : left),
                        NULL);
    }
    curl_multi_remove_handle(m, h);
    return dr;
}

/* ---- requests ---------------------------------------------------------- */

static int check_req_opts(const kle_request_opts *o)
{
    if (o && (o->version < 1 || o->version > KLE_REQUEST_OPTS_VERSION))
        return kle_error_set(KLE_EVERSION, "kle_request_opts version %u is not supported (1..%d)",
                             o->version, KLE_REQUEST_OPTS_VERSION);
    return 0;
}

int kle_client_request(json_object **out, kle_client *c, const char *method, const char *path,
                       const char *content_type, const char *body, size_t body_len,
                       const kle_request_opts *opts)
{
    int rc;
    if (out)
        *out = NULL;
    if (opts && opts->version >= 1 && opts->status)
        *opts->status = NULL;
    if (!c || !method || !path)
        return kle_error_set(KLE_EINVAL, "kle_client_request: client, method and path must be set");
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
    if ((rc = check_req_opts(opts)))
        return rc;
    if (opts && opts->timeout_ns < 0)
        return kle_error_set(KLE_ETIMEOUT, "%s %s: the time budget was already spent", method,
                             path);
    int64_t timeout_ms =
        opts && opts->timeout_ns > 0 ? ns_to_ms(opts->timeout_ns) : c->default_timeout_ms;
    if (timeout_ms > MAX_TIMEOUT_MS)
        timeout_ms = MAX_TIMEOUT_MS;
    kle_event *cancel = opts ? opts->cancel : NULL;
    int64_t start = kle_kube__now_ns();
    int64_t deadline = start + timeout_ms * 1000000;

    char *url = str_printf("%s%s", c->url_base, path);
    if (!url)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    pthread_mutex_lock(&c->mu);
    if (timeout_ms < c->min_timeout_ms)
        c->min_timeout_ms = timeout_ms;
    pthread_mutex_unlock(&c->mu);
    /* Requests on one client run concurrently, each on a connection of its
     * own: a renewal never waits behind a slow call. */
    struct conn *k = conn_get(c);
    if (!k) {
        free(url);
        return kle_error_set(KLE_ENOMEM, "%s %s: libcurl could not be initialised", method, path);
    }
    int healthy = 0;
    struct xfer x = {0};
    long status = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        struct auth a;
        char errbuf[CURL_ERROR_SIZE];
        struct curl_slist *headers = NULL;
        CURLcode cc;

        healthy = 0;
        kle_kube__buf_free(&x.body);
        memset(&x, 0, sizeof(x));
        x.c = c;
        x.max = c->max_response;
        if (cancel && kle_event_is_set(cancel)) {
            rc = kle_error_set(KLE_ECANCELED, "%s %s: cancelled", method, path);
            break;
        }
        if ((rc = kle_kube__auth_get(c, &a, deadline, cancel))) {
            kle_error_prefix("%s %s: ", method, path);
            break;
        }
        curl_easy_reset(k->easy);
        if ((rc = kle_kube__setup_easy(c, k->easy, method, url, &headers, &a, content_type, body,
                                       body_len, ms_left(deadline), &x, errbuf))) {
            kle_kube__auth_clear(&a);
            break;
        }
        if (kle_log__enabled(8))
            KLE_LOG_V(8, "%s %s (Authorization: %s, user agent %s)", method, url,
                      a.header
                          ? (strstr(a.header, "Basic") ? "Basic <redacted>" : "Bearer <redacted>")
                          : "none",
                      c->user_agent);
        enum drive_result dr =
            kle_kube__drive(k->multi, k->easy, deadline, cancel, NULL, NULL, &cc);
        curl_easy_setopt(k->easy, CURLOPT_HTTPHEADER, NULL);
        wipe_slist(headers);
        curl_easy_getinfo(k->easy, CURLINFO_RESPONSE_CODE, &status);
        long fresh = 0, version = 0;
        curl_easy_getinfo(k->easy, CURLINFO_NUM_CONNECTS, &fresh);
        curl_easy_getinfo(k->easy, CURLINFO_HTTP_VERSION, &version);
        pthread_mutex_lock(&c->mu);
        c->connections += fresh;
        if (dr == DRIVE_DONE && cc == CURLE_OK)
            c->http_version = version;
        pthread_mutex_unlock(&c->mu);
        int64_t took = (kle_kube__now_ns() - start) / 1000000;
        if (dr == DRIVE_CANCELED) {
            kle_kube__auth_clear(&a);
            rc = kle_error_set(KLE_ECANCELED, "%s %s: cancelled after %lld ms", method, path,
                               (long long)took);
            break;
        }
        if (dr == DRIVE_TIMEOUT) {
            kle_kube__count_request(c, NULL, method, path, -1);
            kle_kube__auth_clear(&a);
            rc = kle_error_set(KLE_ETIMEOUT, "%s %s: no response within %lld ms", method, path,
                               (long long)timeout_ms);
            break;
        }
        if (dr != DRIVE_DONE) {
            kle_kube__count_request(c, NULL, method, path, -1);
            kle_kube__auth_clear(&a);
            rc = kle_error_set(KLE_ETRANSPORT, "%s %s: libcurl multi interface failed", method,
                               path);
            break;
        }
        /* A server may answer early (413 while the body is still being
         * sent) and close, or reset the HTTP/2 stream: its answer counts,
         * not the broken upload (the connection is not kept). */
        int early = 0;
        if (cc != CURLE_OK && status >= 400 && !x.too_large &&
            (cc == CURLE_SEND_ERROR || cc == CURLE_HTTP2_STREAM || cc == CURLE_HTTP2)) {
            cc = CURLE_OK;
            early = 1;
        }
        if (cc != CURLE_OK) {
            kle_kube__count_request(c, NULL, method, path, -1);
            kle_kube__auth_clear(&a);
            rc = kle_kube__curl_error(method, path, cc, errbuf, &x);
            KLE_LOG_V(6, "%s %s failed in %lld ms: %s", method, url, (long long)took,
                      kle_error_last()->message);
            break;
        }
        KLE_LOG_V(6, "%s %s %ld in %lld ms (%zu bytes, %s%s)", method, url, status, (long long)took,
                  x.body.len, http_version_name(version), fresh ? ", new connection" : "");
        kle_kube__count_request(c, NULL, method, path, status);
        healthy = 1;
        if (early)
            healthy = 0;
        if (status == 401 && attempt == 0 && kle_kube__auth_invalidate(c, &a)) {
            kle_kube__auth_clear(&a);
            continue;
        }
        kle_kube__auth_clear(&a);
        rc = 0;
        break;
    }
    conn_put(c, k, healthy);
    free(url);
    if (rc) {
        kle_kube__buf_free(&x.body);
        return rc;
    }

    json_object *obj = NULL;
    if (x.body.len) {
        obj = kle_kube__parse_json(x.body.data, x.body.len);
        if (!obj && status >= 200 && status < 300) {
            kle_kube__buf_free(&x.body);
            return kle_error_set(KLE_EBADRESPONSE, "%s %s: %ld response is not JSON", method, path,
                                 status);
        }
    }
    if (status < 200 || status >= 300) {
        rc = kle_kube__api_error(method, path, status, obj, x.body.data, x.body.len, x.retry_after);
        kle_kube__buf_free(&x.body);
        if (obj && opts && opts->status && kle_kube__jstr(obj, "kind") &&
            strcmp(kle_kube__jstr(obj, "kind"), "Status") == 0)
            *opts->status = obj;
        else
            json_object_put(obj);
        return rc;
    }
    kle_kube__buf_free(&x.body);
    if (out)
        *out = obj;
    else
        json_object_put(obj);
    return 0;
}
