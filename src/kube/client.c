/* The API client: transport over a small pool of libcurl handles (one
 * connection each), credentials, error mapping, REST verbs and watch. */
#include "kle/client.h"
#include "kle/rest.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>

#include "core/log.h"
#include "kle/sys/errors.h"
#include "kle/version.h"
#include "kube/kube.h"

#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE       (16u << 20)
#define DEFAULT_TOKEN_REFRESH_MS   60000
#define DEFAULT_SA_DIR             "/var/run/secrets/kubernetes.io/serviceaccount"
#define POLL_SLICE_MS              50
#define EXPECT_CONTINUE_MIN        (1u << 20)
/* Longer timeouts are capped (a year), so that deadlines never overflow. */
#define MAX_TIMEOUT_MS (INT64_C(365) * 24 * 3600 * 1000)
/* Idle connections kept per client; more are closed when returned. */
#define MAX_IDLE_CONNS 4
/* Distinct Warning texts remembered (each is logged once). */
#define MAX_WARNINGS 64

/* What a credential file looked like when last read. */
struct file_state {
    int known;
    int retry; /* the last read was unusable: read again */
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

/* One request slot: an easy handle on a multi handle of its own, so that
 * its connection (HTTP/1.1 or HTTP/2) is used by one request at a time and
 * can be closed without touching any other request's. */
struct conn {
    CURL *easy;
    CURLM *multi;
    struct conn *next;
};

struct kle_client {
    pthread_mutex_t mu; /* protects idle, the counters and warnings; never held across I/O */
    struct conn *idle;  /* connections ready for the next request */
    int nidle;
    long connections;       /* connections opened by requests (not watches) */
    long discarded;         /* connections closed after a timeout, cancel or transport error */
    long http_version;      /* CURL_HTTP_VERSION_* of the last completed request */
    int64_t min_timeout_ms; /* shortest request timeout seen: the health-check base */
    char *warnings[MAX_WARNINGS];
    int nwarnings;
    kle_kube__config *cfg;
    char *ns;
    char *user_agent;
    char *url_base; /* scheme://host[:port][/prefix]; host is tls-server-name if set */
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO for tls-server-name; read-only */
    char *host_header;
    int server_is_loopback; /* never proxied from the environment, as in Go */
    int64_t default_timeout_ms, connect_timeout_ms, token_refresh_ms;
    size_t max_response;

    pthread_mutex_t cred_mu; /* protects what follows */
    kle_kube__buf file_token;
    int64_t file_token_read_ns;
    struct timespec file_token_mtime;
    kle_kube__exec_cred exec_cred;
    int exec_valid;
    int64_t exec_fetched_wall_ns; /* when exec_cred was obtained */
    /* The exec plugin runs on a thread of its own, outside every request's
     * budget; requests that need a credential wait on exec_cv (as long as
     * they may), requests that have one never wait. */
    pthread_cond_t exec_cv;
    pthread_t exec_thread;
    int exec_thread_started, exec_running;
    int exec_rc;          /* result of the last run that failed; 0 otherwise */
    char exec_msg[512];   /* its message */
    kle_event *exec_stop; /* stops a running plugin when the client is freed */
    struct file_state ca_state, cert_state, key_state;
};

/* ---- small helpers ----------------------------------------------------- */

/* Nanoseconds to milliseconds, rounded up (a budget under 1 ms is not 0,
 * which would mean "the default") and capped so deadlines never overflow. */
static int64_t ns_to_ms(int64_t ns)
{
    int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms > MAX_TIMEOUT_MS ? MAX_TIMEOUT_MS : ms;
}

static int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = deadline_ns - kle_kube__now_ns();
    return left <= 0 ? 0 : (left + 999999) / 1000000;
}

static void wipe_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next) {
        volatile char *s = p->data;
        while (*s)
            *s++ = 0;
    }
    curl_slist_free_all(l);
}

static char *str_printf(const char *fmt, ...) KLE_PRINTF(1, 2);

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static const char *os_name(void)
{
#if defined(__linux__)
    return "linux";
#elif defined(__APPLE__)
    return "darwin";
#elif defined(__FreeBSD__)
    return "freebsd";
#else
    return "unknown";
#endif
}

static const char *arch_name(void)
{
#if defined(__x86_64__)
    return "amd64";
#elif defined(__aarch64__)
    return "arm64";
#elif defined(__i386__)
    return "386";
#elif defined(__arm__)
    return "arm";
#elif defined(__s390x__)
    return "s390x";
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
    return "ppc64le";
#elif defined(__riscv) && __riscv_xlen == 64
    return "riscv64";
#else
    return "unknown";
#endif
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- construction ------------------------------------------------------ */

/* Splits the server URL so that tls-server-name can be used for SNI and
 * verification while connecting to the real host. */
static int setup_urls(kle_client *c)
{
    const char *server = c->cfg->server;
    if (!c->cfg->tls_server_name) {
        c->url_base = strdup(server);
        return c->url_base ? 0 : KLE_ENOMEM;
    }
    const char *hs = strstr(server, "://") + 3;
    const char *he = hs;
    if (*hs == '[') {
        he = strchr(hs, ']');
        if (!he)
            return kle_error_set(KLE_EKUBECONFIG,
                                 "%s: cluster \"%s\": server \"%s\" is not a valid URL",
                                 c->cfg->origin, c->cfg->cluster ? c->cfg->cluster : "", server);
        he++;
    } else {
        while (*he && *he != ':' && *he != '/')
            he++;
    }
    int https = strncmp(server, "https://", 8) == 0;
    char port[8];
    const char *rest = he;
    if (*he == ':') {
        const char *pe = he + 1;
        while (*pe >= '0' && *pe <= '9')
            pe++;
        snprintf(port, sizeof(port), "%.*s", (int)(pe - he - 1 > 5 ? 5 : pe - he - 1), he + 1);
        rest = pe;
    } else {
        snprintf(port, sizeof(port), "%s", https ? "443" : "80");
    }
    int hl = (int)(he - hs);
    c->url_base =
        str_printf("%s://%s:%s%s", https ? "https" : "http", c->cfg->tls_server_name, port, rest);
    char *entry = str_printf("%s:%s:%.*s:%s", c->cfg->tls_server_name, port, hl, hs, port);
    c->connect_to = entry ? curl_slist_append(NULL, entry) : NULL;
    free(entry);
    c->host_header =
        str_printf("Host: %.*s%s%s", hl, hs, *he == ':' ? ":" : "", *he == ':' ? port : "");
    return c->url_base && c->connect_to && c->host_header ? 0 : KLE_ENOMEM;
}

/* Whether the server's host is "localhost" or a loopback IP literal: Go's
 * ProxyFromEnvironment (kubectl, client-go) never proxies those. */
static int host_is_loopback(const char *server)
{
    const char *hs = strstr(server, "://");
    char host[256];
    size_t n = 0;
    if (!hs)
        return 0;
    hs += 3;
    if (*hs == '[') {
        const char *e = strchr(hs, ']');
        if (!e || (size_t)(e - hs - 1) >= sizeof(host))
            return 0;
        n = (size_t)(e - hs - 1);
        memcpy(host, hs + 1, n);
    } else {
        while (hs[n] && hs[n] != ':' && hs[n] != '/' && n < sizeof(host) - 1) {
            host[n] = hs[n];
            n++;
        }
    }
    host[n] = '\0';
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

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

static int check_opts(const kle_client_opts *opts)
{
    if (opts && (opts->version < 1 || opts->version > KLE_CLIENT_OPTS_VERSION))
        return kle_error_set(KLE_EVERSION, "kle_client_opts version %u is not supported (1..%d)",
                             opts->version, KLE_CLIENT_OPTS_VERSION);
    return 0;
}

static int client_new(kle_client **out, kle_kube__config *cfg, const kle_client_opts *opts)
{
    kle_client *c = calloc(1, sizeof(*c));
    if (!c) {
        kle_kube__config_free(cfg);
        return kle_error_set(KLE_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->cred_mu, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&c->exec_cv, &ca);
        pthread_condattr_destroy(&ca);
    }
    c->cfg = cfg;
    c->default_timeout_ms = opts && opts->default_timeout_ns > 0
                                ? ns_to_ms(opts->default_timeout_ns)
                                : DEFAULT_TIMEOUT_MS;
    c->connect_timeout_ms = opts && opts->connect_timeout_ns > 0
                                ? ns_to_ms(opts->connect_timeout_ns)
                                : DEFAULT_CONNECT_TIMEOUT_MS;
    c->max_response =
        opts && opts->max_response_bytes ? opts->max_response_bytes : DEFAULT_MAX_RESPONSE;
    c->token_refresh_ms = opts && opts->token_file_refresh_ns > 0
                              ? ns_to_ms(opts->token_file_refresh_ns)
                              : DEFAULT_TOKEN_REFRESH_MS;
    if (c->default_timeout_ms > MAX_TIMEOUT_MS)
        c->default_timeout_ms = MAX_TIMEOUT_MS;
    if (c->connect_timeout_ms > MAX_TIMEOUT_MS)
        c->connect_timeout_ms = MAX_TIMEOUT_MS;
    if (c->token_refresh_ms > MAX_TIMEOUT_MS)
        c->token_refresh_ms = MAX_TIMEOUT_MS;
    c->ns =
        strdup(opts && opts->namespace_ && *opts->namespace_ ? opts->namespace_ : cfg->namespace_);
    c->user_agent = str_printf("kle/%s (%s/%s)", KLE_VERSION, os_name(), arch_name());
    int rc = 0;
    if (!c->ns || !c->user_agent)
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    else if (setup_urls(c) != 0)
        rc = kle_error_last()->code == KLE_EKUBECONFIG ? KLE_EKUBECONFIG
                                                       : kle_error_set(KLE_ENOMEM, "out of memory");
    c->min_timeout_ms = c->default_timeout_ms;
    c->server_is_loopback = host_is_loopback(cfg->server);
    if (!rc && cfg->exec && kle_event_new(&c->exec_stop) != 0)
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    if (!rc) {
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK)
            rc = kle_error_set(KLE_ETRANSPORT, "libcurl could not be initialised");
    }
    if (rc) {
        kle_client_free(c);
        return rc;
    }
    KLE_LOG_V(2, "API client for %s (%s, context \"%s\", user \"%s\", namespace \"%s\")",
              cfg->server, cfg->origin, cfg->context ? cfg->context : "",
              cfg->user ? cfg->user : "", c->ns);
    *out = c;
    return 0;
}

int kle_client_new_from_kubeconfig(kle_client **out, const kle_client_opts *opts)
{
    kle_kube__config *cfg;
    int rc;
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_client_new_from_kubeconfig: out is NULL");
    *out = NULL;
    if ((rc = check_opts(opts)))
        return rc;
    rc = kle_kube__config_load(&cfg, opts ? opts->kubeconfig : NULL, getenv("KUBECONFIG"),
                               getenv("HOME"), opts ? opts->context : NULL);
    if (rc)
        return rc;
    return client_new(out, cfg, opts);
}

/* The service account directory: the option, else $KLE_SERVICEACCOUNT_DIR
 * (for tests that lay one out as a pod would see it), else the standard
 * one. */
static const char *sa_dir(const kle_client_opts *opts)
{
    const char *env = getenv("KLE_SERVICEACCOUNT_DIR");
    if (opts && opts->serviceaccount_dir)
        return opts->serviceaccount_dir;
    return env && *env ? env : DEFAULT_SA_DIR;
}

int kle_client_new_in_cluster(kle_client **out, const kle_client_opts *opts)
{
    kle_kube__config *cfg;
    int rc;
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_client_new_in_cluster: out is NULL");
    *out = NULL;
    if ((rc = check_opts(opts)))
        return rc;
    const char *dir = sa_dir(opts);
    rc = kle_kube__config_in_cluster(&cfg, getenv("KUBERNETES_SERVICE_HOST"),
                                     getenv("KUBERNETES_SERVICE_PORT"), dir);
    if (rc)
        return rc;
    /* As clientcmd's in-cluster config: $POD_NAMESPACE wins over the file. */
    const char *pod_ns = getenv("POD_NAMESPACE");
    if (pod_ns && *pod_ns) {
        char *ns = strdup(pod_ns);
        if (!ns) {
            kle_kube__config_free(cfg);
            return kle_error_set(KLE_ENOMEM, "out of memory");
        }
        free(cfg->namespace_);
        cfg->namespace_ = ns;
    }
    return client_new(out, cfg, opts);
}

int kle_client_new_default(kle_client **out, const kle_client_opts *opts)
{
    int rc;
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_client_new_default: out is NULL");
    *out = NULL;
    if ((rc = check_opts(opts)))
        return rc;
    const char *dir = sa_dir(opts);
    char token[4096];
    struct stat st;
    snprintf(token, sizeof(token), "%s/token", dir);
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (!(opts && opts->kubeconfig) && host && *host && stat(token, &st) == 0)
        return kle_client_new_in_cluster(out, opts);
    return kle_client_new_from_kubeconfig(out, opts);
}

static void conn_free(struct conn *k)
{
    if (!k)
        return;
    if (k->easy)
        curl_easy_cleanup(k->easy);
    if (k->multi)
        curl_multi_cleanup(k->multi);
    free(k);
}

void kle_client_free(kle_client *c)
{
    if (!c)
        return;
    /* A plugin still running is stopped (killed) before what it reads goes. */
    if (c->exec_thread_started) {
        kle_event_set(c->exec_stop);
        pthread_join(c->exec_thread, NULL);
    }
    while (c->idle) {
        struct conn *k = c->idle;
        c->idle = k->next;
        conn_free(k);
    }
    for (int i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    kle_kube__config_free(c->cfg);
    free(c->ns);
    free(c->user_agent);
    free(c->url_base);
    curl_slist_free_all(c->connect_to);
    free(c->host_header);
    kle_kube__buf_wipe(&c->file_token);
    kle_kube__exec_cred_clear(&c->exec_cred);
    kle_event_free(c->exec_stop);
    pthread_cond_destroy(&c->exec_cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->cred_mu);
    free(c);
}

long kle_kube__client_connections(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    long n = c->connections;
    pthread_mutex_unlock(&c->mu);
    return n;
}

long kle_kube__client_discarded(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    long n = c->discarded;
    pthread_mutex_unlock(&c->mu);
    return n;
}

long kle_kube__client_http_version(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    long v = c->http_version;
    pthread_mutex_unlock(&c->mu);
    return v;
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
        conn_free(k);
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
    conn_free(k);
}

const char *kle_client_namespace(const kle_client *c)
{
    return c ? c->ns : NULL;
}

const char *kle_client_server(const kle_client *c)
{
    return c ? c->cfg->server : NULL;
}

const char *kle_client_user_agent(const kle_client *c)
{
    return c ? c->user_agent : NULL;
}

/* Locks mu, giving up at the deadline (KLE_ETIMEOUT) or when cancel is
 * set (KLE_ECANCELED), checking every POLL_SLICE_MS. */
static int lock_until(pthread_mutex_t *mu, int64_t deadline_ns, kle_event *cancel)
{
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t slice = ms_left(deadline_ns);
        if (slice > POLL_SLICE_MS)
            slice = POLL_SLICE_MS;
        ts.tv_nsec += (long)(slice * 1000000);
        while (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_mutex_timedlock(mu, &ts) == 0)
            return 0;
        if (cancel && kle_event_is_set(cancel))
            return KLE_ECANCELED;
        if (ms_left(deadline_ns) == 0)
            return KLE_ETIMEOUT;
    }
}

/* ---- credentials ------------------------------------------------------- */

/* What one request authenticates with (and trusts). Secrets are wiped by
 * auth_clear. */
struct auth {
    char *header; /* "Authorization: ..." or NULL */
    kle_kube__buf ca, cert, key;
    int from_exec, from_file;
};

static void auth_clear(struct auth *a)
{
    if (a->header) {
        volatile char *s = a->header;
        while (*s)
            *s++ = 0;
        free(a->header);
        a->header = NULL;
    }
    kle_kube__buf_free(&a->ca);
    kle_kube__buf_free(&a->cert);
    kle_kube__buf_wipe(&a->key);
}

/* Whether path differs from what st says (and updates st). A file that
 * cannot be stat'ed counts as unchanged: the last good content stays. */
static int file_changed(const char *path, struct file_state *st)
{
    struct stat sb;
    if (!path || stat(path, &sb) != 0)
        return 0;
    int changed = !st->known || sb.st_mtim.tv_sec != st->mtime.tv_sec ||
                  sb.st_mtim.tv_nsec != st->mtime.tv_nsec || sb.st_size != st->size ||
                  sb.st_ino != st->ino;
    int first = !st->known, retry = st->retry;
    st->known = 1;
    st->retry = 0;
    st->mtime = sb.st_mtim;
    st->size = sb.st_size;
    st->ino = sb.st_ino;
    return (changed && !first) || retry;
}

/* Parses PEM: certificate (key 0) or private key (1). */
static EVP_PKEY *pem_key(const kle_kube__buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return k;
}

static X509 *pem_cert(const kle_kube__buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

/* Re-reads the CA, client certificate and key files when they changed on
 * disk (kubelet-style rotation), as client-go's transport does. A new pair
 * is taken only when the key matches the certificate, so a rotation caught
 * half-way keeps the old pair until the next request. Called with cred_mu
 * held; connections made with the old files are not reused (libcurl
 * matches connections on the credentials). */
static void refresh_tls_files(kle_client *c)
{
    kle_kube__config *cfg = c->cfg;
    /* A running exec plugin thread reads cfg->ca (provideClusterInfo): the
     * CA is re-read once it is done. */
    if (cfg->ca_file && !c->exec_running && file_changed(cfg->ca_file, &c->ca_state)) {
        kle_kube__buf b = {0};
        X509 *x = NULL;
        if (kle_kube__read_file(&b, cfg->ca_file, 1u << 20) == 0 && (x = pem_cert(&b))) {
            kle_kube__buf_free(&cfg->ca);
            cfg->ca = b;
            KLE_LOG_V(4, "re-read the certificate authority from %s", cfg->ca_file);
        } else {
            kle_kube__buf_free(&b);
            c->ca_state.retry = 1;
        }
        X509_free(x);
    }
    if (cfg->client_cert_file && cfg->client_key_file) {
        int cert_changed = file_changed(cfg->client_cert_file, &c->cert_state);
        int key_changed = file_changed(cfg->client_key_file, &c->key_state);
        if (cert_changed || key_changed) {
            kle_kube__buf cb = {0}, kb = {0};
            X509 *x = NULL;
            EVP_PKEY *k = NULL;
            if (kle_kube__read_file(&cb, cfg->client_cert_file, 1u << 20) == 0 &&
                kle_kube__read_file(&kb, cfg->client_key_file, 1u << 20) == 0 &&
                (x = pem_cert(&cb)) && (k = pem_key(&kb)) && X509_check_private_key(x, k) == 1) {
                kle_kube__buf_free(&cfg->client_cert);
                kle_kube__buf_wipe(&cfg->client_key);
                cfg->client_cert = cb;
                cfg->client_key = kb;
                KLE_LOG_V(4, "re-read the client certificate and key from %s and %s",
                          cfg->client_cert_file, cfg->client_key_file);
            } else {
                kle_kube__buf_free(&cb);
                kle_kube__buf_wipe(&kb);
                c->cert_state.retry = c->key_state.retry = 1;
            }
            X509_free(x);
            EVP_PKEY_free(k);
        }
    }
}

/* Re-reads the token file when it is older than the refresh period, or
 * (force) when its modification time changed. Keeps the last good token
 * when the file cannot be read. Called with cred_mu held. */
static int refresh_file_token(kle_client *c, int force)
{
    int64_t now = kle_kube__now_ns();
    struct stat st;
    int changed = 0;
    if (stat(c->cfg->token_file, &st) == 0)
        changed = st.st_mtim.tv_sec != c->file_token_mtime.tv_sec ||
                  st.st_mtim.tv_nsec != c->file_token_mtime.tv_nsec;
    if (c->file_token.data && !(force && changed) &&
        now - c->file_token_read_ns < c->token_refresh_ms * 1000000)
        return 0;
    kle_kube__buf t = {0};
    int e = kle_kube__read_file(&t, c->cfg->token_file, 1u << 20);
    if (e) {
        if (c->file_token.data) {
            KLE_LOG_W("token file %s: cannot read: %s; keeping the previous token",
                      c->cfg->token_file, strerror(-e));
            c->file_token_read_ns = now;
            return 0;
        }
        return kle_error_set(KLE_EAUTH, "%s: tokenFile %s: cannot read: %s", c->cfg->origin,
                             c->cfg->token_file, strerror(-e));
    }
    while (t.len && strchr(" \t\r\n", t.data[t.len - 1]))
        t.data[--t.len] = '\0';
    if (!t.len) {
        kle_kube__buf_free(&t);
        if (c->file_token.data)
            return 0;
        return kle_error_set(KLE_EAUTH, "%s: tokenFile %s is empty", c->cfg->origin,
                             c->cfg->token_file);
    }
    if (!c->file_token.data || strcmp(t.data, c->file_token.data) != 0)
        KLE_LOG_V(4, "read a new token from %s", c->cfg->token_file);
    kle_kube__buf_wipe(&c->file_token);
    c->file_token = t;
    c->file_token_read_ns = now;
    if (stat(c->cfg->token_file, &st) == 0)
        c->file_token_mtime = st.st_mtim;
    return 0;
}

/* Longest run of an exec plugin (it runs in the background, so this bounds
 * only how long a stuck plugin is waited for before it is killed). */
#define EXEC_RUN_MAX_NS (INT64_C(120) * 1000000000)

static void *exec_main(void *arg)
{
    kle_client *c = arg;
    kle_kube__exec_cred cred = {0};
    int rc = kle_kube__exec_run(&cred, c->cfg, kle_kube__now_ns() + EXEC_RUN_MAX_NS, c->exec_stop);
    pthread_mutex_lock(&c->cred_mu);
    if (rc == 0) {
        kle_kube__exec_cred_clear(&c->exec_cred);
        c->exec_cred = cred;
        c->exec_valid = 1;
        c->exec_fetched_wall_ns = kle_kube__wall_now_ns();
        c->exec_rc = 0;
    } else {
        c->exec_rc = rc;
        snprintf(c->exec_msg, sizeof(c->exec_msg), "%s", kle_error_last()->message);
    }
    c->exec_running = 0;
    pthread_cond_broadcast(&c->exec_cv);
    pthread_mutex_unlock(&c->cred_mu);
    return NULL;
}

/* Starts the plugin on its thread unless it runs already. cred_mu held. */
static int exec_start(kle_client *c)
{
    if (c->exec_running)
        return 0;
    if (c->exec_thread_started) {
        pthread_join(c->exec_thread, NULL); /* finished: exec_running is 0 */
        c->exec_thread_started = 0;
    }
    c->exec_rc = 0;
    c->exec_running = 1;
    if (pthread_create(&c->exec_thread, NULL, exec_main, c) != 0) {
        c->exec_running = 0;
        return kle_error_set(KLE_ESYSTEM, "exec plugin: cannot start a thread");
    }
    c->exec_thread_started = 1;
    return 0;
}

/* A usable exec credential in c->exec_cred, or an error. Starts a refresh
 * in the background at 80 % of the credential's lifetime without waiting
 * for it; waits (releasing cred_mu, as long as the call may) only when no
 * valid credential exists. cred_mu held. */
static int exec_credential(kle_client *c, int64_t deadline_ns, kle_event *cancel)
{
    const kle_kube__config *cfg = c->cfg;
    int64_t now = kle_kube__wall_now_ns();
    if (c->exec_valid && c->exec_cred.expires_wall_ns && now >= c->exec_cred.expires_wall_ns) {
        KLE_LOG_V(4, "exec credential for user \"%s\" expired", cfg->user ? cfg->user : "");
        c->exec_valid = 0;
    }
    if (c->exec_valid) {
        int64_t exp = c->exec_cred.expires_wall_ns, got = c->exec_fetched_wall_ns;
        if (exp && !c->exec_running && now >= got + (exp - got) / 10 * 8) {
            KLE_LOG_V(4,
                      "refreshing the exec credential of user \"%s\" in the background "
                      "(it expires in %lld ms)",
                      cfg->user ? cfg->user : "", (long long)((exp - now) / 1000000));
            exec_start(c); /* on failure the current credential is used */
        }
        return 0;
    }
    int rc = exec_start(c);
    if (rc)
        return rc;
    while (c->exec_running) {
        if (cancel && kle_event_is_set(cancel))
            return kle_error_set(KLE_ECANCELED, "cancelled while the exec plugin runs");
        int64_t left = deadline_ns - kle_kube__now_ns();
        if (left <= 0)
            return kle_error_set(KLE_ETIMEOUT,
                                 "timed out waiting for the exec plugin of user \"%s\" (it keeps "
                                 "running; later calls use its credential)",
                                 cfg->user ? cfg->user : "");
        int64_t until = kle_kube__now_ns() +
                        (left < POLL_SLICE_MS * 1000000 ? left : (int64_t)POLL_SLICE_MS * 1000000);
        struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
        pthread_cond_timedwait(&c->exec_cv, &c->cred_mu, &ts);
    }
    if (c->exec_valid)
        return 0;
    return kle_error_set(c->exec_rc ? c->exec_rc : KLE_EAUTH, "%s", c->exec_msg);
}

static int auth_get(kle_client *c, struct auth *a, int64_t deadline_ns, kle_event *cancel)
{
    kle_kube__config *cfg = c->cfg;
    int rc = 0;
    memset(a, 0, sizeof(*a));
    /* Another thread may be running the exec plugin: wait for it only as
     * long as this call may. */
    int e = lock_until(&c->cred_mu, deadline_ns, cancel);
    if (e == KLE_ECANCELED)
        return kle_error_set(KLE_ECANCELED, "cancelled while waiting for credentials");
    if (e == KLE_ETIMEOUT)
        return kle_error_set(KLE_ETIMEOUT, "timed out waiting for credentials");
    const char *token = NULL;
    refresh_tls_files(c);
    if (cfg->ca.len && kle_kube__buf_set(&a->ca, cfg->ca.data, cfg->ca.len))
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    if (!rc && cfg->exec) {
        a->from_exec = 1;
        rc = exec_credential(c, deadline_ns, cancel);
        if (!rc) {
            token = c->exec_cred.token.data;
            if (c->exec_cred.client_cert.data &&
                (kle_kube__buf_set(&a->cert, c->exec_cred.client_cert.data,
                                   c->exec_cred.client_cert.len) ||
                 kle_kube__buf_set(&a->key, c->exec_cred.client_key.data,
                                   c->exec_cred.client_key.len)))
                rc = kle_error_set(KLE_ENOMEM, "out of memory");
        }
    }
    if (!rc && !token && cfg->token_file) {
        a->from_file = 1;
        rc = refresh_file_token(c, 0);
        token = c->file_token.data;
    }
    if (!rc && !token && cfg->token.data)
        token = cfg->token.data;
    if (!rc && !a->cert.data && cfg->client_cert.data &&
        (kle_kube__buf_set(&a->cert, cfg->client_cert.data, cfg->client_cert.len) ||
         kle_kube__buf_set(&a->key, cfg->client_key.data, cfg->client_key.len)))
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    if (!rc && token) {
        if (!(a->header = str_printf("Authorization: Bearer %s", token)))
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
    } else if (!rc && cfg->username) {
        char *up = str_printf("%s:%s", cfg->username, cfg->password.data ? cfg->password.data : "");
        kle_kube__buf b64 = {0};
        if (!up || kle_kube__base64_encode(&b64, (const unsigned char *)up, strlen(up)) ||
            !(a->header = str_printf("Authorization: Basic %s", b64.data)))
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
        if (up) {
            volatile char *s = up;
            while (*s)
                *s++ = 0;
        }
        free(up);
        kle_kube__buf_wipe(&b64);
    }
    pthread_mutex_unlock(&c->cred_mu);
    if (rc)
        auth_clear(a);
    return rc;
}

/* After a 401: drops the cached exec credential or re-reads a changed token
 * file. Returns 1 when retrying may help. */
static int auth_invalidate(kle_client *c, const struct auth *used)
{
    int retry = 0;
    pthread_mutex_lock(&c->cred_mu);
    if (used->from_exec) {
        KLE_LOG_V(4, "401 Unauthorized: running the exec plugin again");
        c->exec_valid = 0;
        retry = 1;
    } else if (used->from_file) {
        char *old = c->file_token.data ? strdup(c->file_token.data) : NULL;
        if (refresh_file_token(c, 1) == 0 && old && c->file_token.data &&
            strcmp(old, c->file_token.data) != 0)
            retry = 1;
        if (old) {
            volatile char *s = old;
            while (*s)
                *s++ = 0;
        }
        free(old);
    }
    pthread_mutex_unlock(&c->cred_mu);
    return retry;
}

/* ---- one transfer ------------------------------------------------------ */

struct xfer {
    kle_client *c;
    kle_kube__buf body;
    size_t cap, max;
    int too_large;
    int retry_after;
    /* Watch streaming: called after each perform with new data. */
    int streaming;
};

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
static int setup_easy(kle_client *c, CURL *h, const char *method, const char *url,
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

enum drive_result { DRIVE_DONE, DRIVE_CANCELED, DRIVE_TIMEOUT, DRIVE_STOPPED, DRIVE_ERROR };

/* Drives one easy handle on a multi handle until it completes, the deadline
 * passes or cancel is set; on_data (may be NULL) runs after each perform and
 * may stop the transfer by returning non-zero. */
static enum drive_result drive(CURLM *m, CURL *h, int64_t deadline_ns, kle_event *cancel,
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

/* ---- errors ------------------------------------------------------------ */

static int curl_error(const char *method, const char *path, CURLcode cc, const char *errbuf,
                      const struct xfer *x)
{
    if (x->too_large)
        return kle_error_set(KLE_ETOOLARGE,
                             "%s %s: the response is larger than the client's limit of %zu bytes",
                             method, path, x->max);
    const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return kle_error_set(KLE_ETIMEOUT, "%s %s: timed out: %s", method, path, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return kle_error_set(KLE_ETRANSPORT,
                             "%s %s: the server's TLS certificate is not trusted (check the "
                             "cluster's certificate-authority): %s",
                             method, path, detail);
    default:
        return kle_error_set(KLE_ETRANSPORT, "%s %s: %s", method, path, detail);
    }
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
        if ((rc = auth_get(c, &a, deadline, cancel))) {
            kle_error_prefix("%s %s: ", method, path);
            break;
        }
        curl_easy_reset(k->easy);
        if ((rc = setup_easy(c, k->easy, method, url, &headers, &a, content_type, body, body_len,
                             ms_left(deadline), &x, errbuf))) {
            auth_clear(&a);
            break;
        }
        if (kle_log__enabled(8))
            KLE_LOG_V(8, "%s %s (Authorization: %s, user agent %s)", method, url,
                      a.header
                          ? (strstr(a.header, "Basic") ? "Basic <redacted>" : "Bearer <redacted>")
                          : "none",
                      c->user_agent);
        enum drive_result dr = drive(k->multi, k->easy, deadline, cancel, NULL, NULL, &cc);
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
            auth_clear(&a);
            rc = kle_error_set(KLE_ECANCELED, "%s %s: cancelled after %lld ms", method, path,
                               (long long)took);
            break;
        }
        if (dr == DRIVE_TIMEOUT) {
            auth_clear(&a);
            rc = kle_error_set(KLE_ETIMEOUT, "%s %s: no response within %lld ms", method, path,
                               (long long)timeout_ms);
            break;
        }
        if (dr != DRIVE_DONE) {
            auth_clear(&a);
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
            auth_clear(&a);
            rc = curl_error(method, path, cc, errbuf, &x);
            KLE_LOG_V(6, "%s %s failed in %lld ms: %s", method, url, (long long)took,
                      kle_error_last()->message);
            break;
        }
        KLE_LOG_V(6, "%s %s %ld in %lld ms (%zu bytes, %s%s)", method, url, status, (long long)took,
                  x.body.len, http_version_name(version), fresh ? ", new connection" : "");
        healthy = 1;
        if (early)
            healthy = 0;
        if (status == 401 && attempt == 0 && auth_invalidate(c, &a)) {
            auth_clear(&a);
            continue;
        }
        auth_clear(&a);
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

/* The verbs that return an object insist on getting one. */
static int want_object(int rc, json_object **out, const char *method, const char *path)
{
    if (rc || !out || (*out && json_object_is_type(*out, json_type_object)))
        return rc;
    json_object_put(*out);
    *out = NULL;
    return kle_error_set(KLE_EBADRESPONSE, "%s %s: the response is not a JSON object", method,
                         path);
}

static int body_request(kle_client *c, json_object **out, const char *method, const char *path,
                        const char *ctype, json_object *body, const kle_request_opts *opts)
{
    if (out)
        *out = NULL;
    if (!body)
        return kle_error_set(KLE_EINVAL, "%s %s: body is NULL", method, path ? path : "");
    size_t len;
    const char *s = json_object_to_json_string_length(
        body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!s)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    return want_object(kle_client_request(out, c, method, path, ctype, s, len, opts), out, method,
                       path);
}

int kle_client_get(json_object **out, kle_client *c, const char *path, const kle_request_opts *opts)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_client_get: out is NULL");
    return want_object(kle_client_request(out, c, "GET", path, NULL, NULL, 0, opts), out, "GET",
                       path);
}

int kle_client_create(json_object **out, kle_client *c, const char *path, json_object *body,
                      const kle_request_opts *opts)
{
    return body_request(c, out, "POST", path, "application/json", body, opts);
}

int kle_client_update(json_object **out, kle_client *c, const char *path, json_object *body,
                      const kle_request_opts *opts)
{
    return body_request(c, out, "PUT", path, "application/json", body, opts);
}

int kle_client_patch(json_object **out, kle_client *c, const char *path, kle_patch_type type,
                     json_object *patch, const kle_request_opts *opts)
{
    static const char *types[] = {"application/merge-patch+json",
                                  "application/strategic-merge-patch+json",
                                  "application/json-patch+json"};
    if (out)
        *out = NULL;
    if ((unsigned)type > 2)
        return kle_error_set(KLE_EINVAL, "PATCH %s: unknown patch type %d", path ? path : "",
                             (int)type);
    return body_request(c, out, "PATCH", path, types[type], patch, opts);
}

int kle_client_delete(json_object **out, kle_client *c, const char *path,
                      const kle_request_opts *opts)
{
    return kle_client_request(out, c, "DELETE", path, NULL, NULL, 0, opts);
}

static int append_escaped(char *buf, size_t size, size_t *off, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int w;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~:@", ch))
            w = snprintf(buf + *off, size - *off, "%c", ch);
        else
            w = snprintf(buf + *off, size - *off, "%%%02X", ch);
        if (w < 0 || (size_t)w >= size - *off)
            return -1;
        *off += (size_t)w;
    }
    return 0;
}

int kle_client_path(char *buf, size_t size, const char *gv, const char *resource, const char *ns,
                    const char *name)
{
    if (!buf || !size || !gv || !*gv || !resource || !*resource)
        return kle_error_set(KLE_EINVAL,
                             "kle_client_path: buf, group_version and resource must be set");
    if (strchr(resource, '/') || strchr(resource, '?') || (ns && strchr(ns, '/')) ||
        (name && strchr(name, '/')) || gv[0] == '/' || strchr(gv, '?') ||
        strchr(gv, '/') != strrchr(gv, '/'))
        return kle_error_set(KLE_EINVAL,
                             "kle_client_path: \"%s\", \"%s\", \"%s\", \"%s\" is not a valid "
                             "group/version, resource, namespace and name",
                             gv, resource, ns ? ns : "", name ? name : "");
    int core = !strchr(gv, '/');
    int w = snprintf(buf, size, "%s/%s", core ? "/api" : "/apis", gv);
    size_t off = w < 0 ? size : (size_t)w;
    int bad = off >= size;
    if (!bad && ns && *ns) {
        bad = (size_t)snprintf(buf + off, size - off, "/namespaces/") >= size - off;
        if (!bad) {
            off += strlen("/namespaces/");
            bad = append_escaped(buf, size, &off, ns) != 0;
        }
    }
    if (!bad) {
        w = snprintf(buf + off, size - off, "/%s", resource);
        bad = w < 0 || (size_t)w >= size - off;
        if (!bad)
            off += (size_t)w;
    }
    if (!bad && name && *name) {
        bad = off + 1 >= size;
        if (!bad) {
            buf[off++] = '/';
            buf[off] = '\0';
            bad = append_escaped(buf, size, &off, name) != 0;
        }
    }
    if (bad) {
        buf[0] = '\0';
        return kle_error_set(KLE_ETOOLARGE, "kle_client_path: a buffer of %zu bytes is too small",
                             size);
    }
    return 0;
}

/* ---- watch ------------------------------------------------------------- */

const char *kle_watch_event_type_name(kle_watch_event_type type)
{
    switch (type) {
    case KLE_WATCH_ADDED:
        return "ADDED";
    case KLE_WATCH_MODIFIED:
        return "MODIFIED";
    case KLE_WATCH_DELETED:
        return "DELETED";
    case KLE_WATCH_BOOKMARK:
        return "BOOKMARK";
    case KLE_WATCH_LISTED:
        return "LISTED";
    default:
        return "?";
    }
}

struct watch {
    kle_client *c;
    CURL *h;
    const char *path;
    kle_watch_fn fn;
    void *data;
    char rv[256];
    struct xfer x;
    size_t consumed; /* bytes of x.body already processed */
    long status;     /* HTTP status once known */
    int stop_rc;     /* callback's value when it stopped the watch */
    int stopped;
    int gone;     /* 410 seen in an ERROR event */
    int error_rc; /* other ERROR event: its code */
    int events;   /* events delivered on this stream */
};

static void set_rv_from(struct watch *w, json_object *obj)
{
    json_object *md;
    if (obj && json_object_object_get_ex(obj, "metadata", &md)) {
        const char *rv = kle_kube__jstr(md, "resourceVersion");
        if (rv && *rv)
            snprintf(w->rv, sizeof(w->rv), "%s", rv);
    }
}

/* Handles one line of the watch stream. Returns non-zero to end the stream. */
static int watch_line(void *ud, const char *line, size_t len)
{
    struct watch *w = ud;
    kle_kube__watch_event e;
    int rc = kle_kube__watch_event_decode(&e, line, len, w->path);
    if (rc == KLE_EGONE) {
        KLE_LOG_V(4, "watch %s: resourceVersion %s is too old; re-listing", w->path, w->rv);
        w->gone = 1;
        return 1;
    }
    if (rc < 0) {
        w->error_rc = rc;
        return 1;
    }
    if (rc > 0)
        return 0;
    set_rv_from(w, e.obj);
    w->events++;
    KLE_LOG_V(7, "watch %s: %s resourceVersion %s", w->path, kle_watch_event_type_name(e.type),
              w->rv);
    int r = w->fn(e.type, e.obj, w->data);
    json_object_put(e.ev);
    if (r) {
        w->stopped = 1;
        w->stop_rc = r < 0 ? r : 0;
        return 1;
    }
    return 0;
}

static int watch_on_data(void *ud)
{
    struct watch *w = ud;
    if (!w->status)
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status != 200)
        return 0; /* An error body is read whole. */
    return kle_kube__watch_feed(&w->x.body, &w->consumed, watch_line, w);
}

static int watch_list(struct watch *w, int64_t deadline, kle_event *cancel, const char *query)
{
    char *p = str_printf("%s%s%s", w->path, *query ? "?" : "", query);
    if (!p)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    int64_t left = deadline == INT64_MAX ? 0 : ms_left(deadline);
    if (deadline != INT64_MAX && left == 0) {
        free(p);
        return KLE_ETIMEOUT;
    }
    ro.timeout_ns = left * 1000000;
    ro.cancel = cancel;
    json_object *list = NULL;
    int rc = kle_client_get(&list, w->c, p, &ro);
    free(p);
    if (rc)
        return rc;
    set_rv_from(w, list);
    int r = w->fn(KLE_WATCH_LISTED, list, w->data);
    json_object_put(list);
    if (r) {
        w->stopped = 1;
        w->stop_rc = r < 0 ? r : 0;
    }
    return 0;
}

static int add_query(char *q, size_t size, const char *key, const char *value)
{
    size_t off = strlen(q);
    int n = snprintf(q + off, size - off, "%s%s=", off ? "&" : "", key);
    if (n < 0 || (size_t)n >= size - off)
        return -1;
    off += (size_t)n;
    for (const char *s = value; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch))
            n = snprintf(q + off, size - off, "%c", ch);
        else
            n = snprintf(q + off, size - off, "%%%02X", ch);
        if (n < 0 || (size_t)n >= size - off)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int check_watch_opts(const kle_watch_opts *o)
{
    if (o && (o->version < 1 || o->version > KLE_WATCH_OPTS_VERSION))
        return kle_error_set(KLE_EVERSION, "kle_watch_opts version %u is not supported (1..%d)",
                             o->version, KLE_WATCH_OPTS_VERSION);
    return 0;
}

/* Waits for a backoff period, or until cancel or the deadline. Returns
 * non-zero when the watch must end. */
static int backoff_wait(int64_t ms, int64_t deadline, kle_event *cancel)
{
    int64_t until = kle_kube__now_ns() + ms * 1000000;
    if (until > deadline)
        until = deadline;
    for (;;) {
        int64_t left = ms_left(until);
        if (cancel && kle_event_is_set(cancel))
            return 1;
        if (left == 0)
            return deadline <= kle_kube__now_ns();
        struct pollfd p = {cancel ? kle_event_fd(cancel) : -1, POLLIN, 0};
        poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    }
}

int kle_client_watch(kle_client *c, const char *path, const kle_watch_opts *opts, kle_watch_fn fn,
                     void *data)
{
    int rc;
    if (!c || !path || !fn || path[0] != '/')
        return kle_error_set(KLE_EINVAL,
                             "kle_client_watch: client, fn and an absolute path must be set");
    if ((rc = check_watch_opts(opts)))
        return rc;
    kle_event *cancel = opts ? opts->cancel : NULL;
    int64_t deadline = opts && opts->timeout_ns > 0
                           ? kle_kube__now_ns() + ns_to_ms(opts->timeout_ns) * 1000000
                           : INT64_MAX;
    int64_t stream_ns =
        opts && opts->stream_timeout_ns > 0 ? opts->stream_timeout_ns : KLE_SEC(300);
    if (stream_ns > KLE_SEC(86400))
        stream_ns = KLE_SEC(86400);
    int stream_secs = stream_ns < KLE_NS_PER_SEC ? 1 : (int)(stream_ns / KLE_NS_PER_SEC);
    char selectors[1024] = "";
    if ((opts && opts->field_selector && *opts->field_selector &&
         add_query(selectors, sizeof(selectors), "fieldSelector", opts->field_selector)) ||
        (opts && opts->label_selector && *opts->label_selector &&
         add_query(selectors, sizeof(selectors), "labelSelector", opts->label_selector)))
        return kle_error_set(KLE_EINVAL, "WATCH %s: selectors are too long", path);

    struct watch w = {0};
    w.c = c;
    w.path = path;
    w.fn = fn;
    w.data = data;
    w.h = curl_easy_init();
    CURLM *m = curl_multi_init();
    if (!w.h || !m) {
        curl_easy_cleanup(w.h);
        curl_multi_cleanup(m);
        return kle_error_set(KLE_ETRANSPORT, "WATCH %s: libcurl could not be initialised", path);
    }
    if (opts && opts->resource_version && *opts->resource_version)
        snprintf(w.rv, sizeof(w.rv), "%s", opts->resource_version);
    int need_list = !w.rv[0];
    int64_t backoff = 0;
    int auth_retried = 0;
    rc = 0;
    for (;;) {
        if (cancel && kle_event_is_set(cancel)) {
            rc = kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
            break;
        }
        if (deadline != INT64_MAX && ms_left(deadline) == 0) {
            rc = 0;
            break;
        }
        if (backoff && backoff_wait(backoff, deadline, cancel))
            continue; /* the checks above end the loop */
        if (need_list) {
            rc = watch_list(&w, deadline, cancel, selectors);
            if (w.stopped) {
                rc = w.stop_rc;
                break;
            }
            if (rc == KLE_ETOOMANYREQUESTS || rc == KLE_ESERVER || rc == KLE_ETRANSPORT ||
                rc == KLE_ETIMEOUT) {
                if (rc == KLE_ETIMEOUT && deadline != INT64_MAX && ms_left(deadline) == 0)
                    rc = 0;
                else {
                    KLE_LOG_V(4, "watch %s: list failed, retrying: %s", path,
                              kle_error_last()->message);
                    backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
                    continue;
                }
            }
            if (rc)
                break;
            need_list = 0;
        }

        char query[1600] = "watch=true&allowWatchBookmarks=true";
        char *url = NULL, *shown = NULL;
        size_t ql = strlen(query);
        snprintf(query + ql, sizeof(query) - ql, "&timeoutSeconds=%d", stream_secs);
        if (add_query(query, sizeof(query), "resourceVersion", w.rv) ||
            (*selectors && (ql = strlen(query)) < sizeof(query) - 1 &&
             snprintf(query + ql, sizeof(query) - ql, "&%s", selectors) >=
                 (int)(sizeof(query) - ql))) {
            rc = kle_error_set(KLE_EINVAL, "WATCH %s: the query is too long", path);
            break;
        }
        url = str_printf("%s%s?%s", c->url_base, path, query);
        shown = str_printf("%s?%s", path, query);
        if (!url || !shown) {
            free(url);
            free(shown);
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
            break;
        }
        int64_t stream_deadline = kle_kube__now_ns() + (int64_t)(stream_secs + 15) * 1000000000;
        if (stream_deadline > deadline)
            stream_deadline = deadline;
        struct auth a;
        if ((rc = auth_get(c, &a, stream_deadline, cancel))) {
            free(url);
            free(shown);
            if (rc == KLE_ETIMEOUT && deadline != INT64_MAX && ms_left(deadline) == 0) {
                rc = 0; /* the watch's own time is up */
                break;
            }
            kle_error_prefix("WATCH %s: ", path);
            break;
        }
        char errbuf[CURL_ERROR_SIZE];
        struct curl_slist *headers = NULL;
        kle_kube__buf_free(&w.x.body);
        memset(&w.x, 0, sizeof(w.x));
        w.x.c = c;
        w.x.max = c->max_response;
        w.consumed = 0;
        w.status = 0;
        w.gone = 0;
        w.error_rc = 0;
        w.events = 0;
        curl_easy_reset(w.h);
        if ((rc = setup_easy(c, w.h, "GET", url, &headers, &a, NULL, NULL, 0,
                             ms_left(stream_deadline), &w.x, errbuf))) {
            auth_clear(&a);
            free(url);
            free(shown);
            break;
        }
        KLE_LOG_V(6, "WATCH %s", shown);
        CURLcode cc;
        enum drive_result dr = drive(m, w.h, stream_deadline, cancel, watch_on_data, &w, &cc);
        curl_easy_setopt(w.h, CURLOPT_HTTPHEADER, NULL);
        wipe_slist(headers);
        if (!w.status)
            curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.status);
        if (dr == DRIVE_DONE && cc == CURLE_OK && w.status == 200)
            watch_on_data(&w); /* the last bytes */
        KLE_LOG_V(6, "WATCH %s ended: status %ld, %d events", shown, w.status, w.events);
        free(url);
        if (w.events)
            backoff = 0;
        if (w.stopped) {
            auth_clear(&a);
            free(shown);
            rc = w.stop_rc;
            break;
        }
        if (dr == DRIVE_CANCELED) {
            auth_clear(&a);
            free(shown);
            rc = kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
            break;
        }
        if (w.gone || w.status == 410) {
            auth_clear(&a);
            free(shown);
            need_list = 1;
            continue;
        }
        if (w.error_rc) {
            auth_clear(&a);
            free(shown);
            rc = w.error_rc;
            if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
                continue;
            }
            break;
        }
        if (dr == DRIVE_TIMEOUT || (dr == DRIVE_DONE && cc != CURLE_OK) || dr == DRIVE_ERROR) {
            /* A dropped or stalled stream: resume from the last version, on
             * a new connection (libcurl keeps an HTTP/2 connection whose
             * stream stalled, and would reuse it). */
            auth_clear(&a);
            CURLM *fresh = curl_multi_init();
            if (fresh) {
                curl_multi_cleanup(m);
                m = fresh;
            }
            if (dr == DRIVE_DONE && w.x.too_large) {
                rc = curl_error("WATCH", shown, cc, errbuf, &w.x);
                free(shown);
                break;
            }
            KLE_LOG_V(4, "WATCH %s: stream broke (%s); resuming from resourceVersion %s", shown,
                      dr == DRIVE_TIMEOUT ? "no data in time" : curl_easy_strerror(cc), w.rv);
            free(shown);
            if (!w.events)
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            continue;
        }
        if (w.status == 200) {
            /* The server ended the stream (timeoutSeconds): resume. A
             * server that ends streams at once without an event gets a
             * backoff, not a busy loop. */
            auth_clear(&a);
            free(shown);
            if (!w.events)
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            continue;
        }
        json_object *st = kle_kube__parse_json(w.x.body.data ? w.x.body.data : "", w.x.body.len);
        rc = kle_kube__api_error("WATCH", shown, w.status, st, w.x.body.data, w.x.body.len,
                                 w.x.retry_after);
        json_object_put(st);
        free(shown);
        if (w.status == 401 && !auth_retried && auth_invalidate(c, &a)) {
            auth_clear(&a);
            auth_retried = 1;
            continue;
        }
        auth_clear(&a);
        if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
            int64_t ra = w.x.retry_after > 0 ? (int64_t)w.x.retry_after * 1000 : 0;
            backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            if (ra > backoff)
                backoff = ra;
            continue;
        }
        break;
    }
    if (opts && opts->last_resource_version && opts->last_resource_version_size)
        snprintf(opts->last_resource_version, opts->last_resource_version_size, "%s", w.rv);
    kle_kube__buf_free(&w.x.body);
    curl_easy_cleanup(w.h);
    curl_multi_cleanup(m);
    return rc;
}
