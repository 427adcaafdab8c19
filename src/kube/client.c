/* The API client object: construction from kubeconfig or in-cluster
 * configuration, accessors and destruction. */
#include "kle/client.h"
#include "kle/rest.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kle/version.h"
#include "kube/client_internal.h"

#define DEFAULT_TIMEOUT_MS         30000
#define DEFAULT_CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_RESPONSE       (16u << 20)
#define DEFAULT_TOKEN_REFRESH_MS   60000
#define DEFAULT_SA_DIR             "/var/run/secrets/kubernetes.io/serviceaccount"

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

/* The service account directory: the option, else (in test builds only)
 * $KLE_SERVICEACCOUNT_DIR, for tests that lay one out as a pod would see
 * it, else the standard one. */
static const char *sa_dir(const kle_client_opts *opts)
{
    if (opts && opts->serviceaccount_dir)
        return opts->serviceaccount_dir;
#ifdef KLE_TEST_HOOKS
    const char *env = getenv("KLE_SERVICEACCOUNT_DIR");
    if (env && *env)
        return env;
#endif
    return DEFAULT_SA_DIR;
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
        kle_kube__conn_free(k);
    }
    for (int i = 0; i < c->nwarnings; i++)
        free(c->warnings[i]);
    kle_kube__config_free(c->cfg);
    free(c->ns);
    free(c->user_agent);
    free(c->url_base);
    curl_slist_free_all(c->connect_to);
    free(c->host_header);
    kle_buf__wipe(&c->file_token);
    kle_kube__exec_cred_clear(&c->exec_cred);
    kle_event_free(c->exec_stop);
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
