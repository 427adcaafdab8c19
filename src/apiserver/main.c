/* kle-apiserver: a local Kubernetes API server for development and tests.
 * Parses flags, prepares TLS and credentials, starts the listeners, writes
 * the kubeconfig once connections are accepted, and stops on SIGTERM. */
#include "apiserver/server.h"

#include "base/log.h"
#include "kle/version.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct options {
    const char *listen;
    const char *tls_cert, *tls_key, *tls_ca;
    const char *token_file;
    const char *client_ca;
    int insecure;
    int issue_credentials;
    const char *kubeconfig;
    const char *env_file;
    const char *ca_file;
    const char *cert_dir;
    const char *admin_token_file;
    const char *authz_file;
    const char *authz_mode;
    const char *data_dir;
    const char *admin_listen;
    long history;
} options;

static void usage(FILE *f)
{
    fputs("usage: kle-apiserver [flags]\n"
          "  --listen HOST:PORT          API address (default 127.0.0.1:6443; port 0 picks one)\n"
          "  --tls-cert PATH --tls-key PATH\n"
          "                              serving certificate and key (default: generated)\n"
          "  --tls-ca PATH               CA written to the kubeconfig with --tls-cert\n"
          "  --cert-dir DIR              keep the generated CA and serving certificate in DIR\n"
          "                              and reuse them at the next start\n"
          "  --admin-token-file PATH     admin token: read from PATH, or generated and written\n"
          "                              there when PATH does not exist\n"
          "  --insecure-http             serve plain HTTP instead of HTTPS\n"
          "  --token-file PATH           static tokens: token,user,uid,\"group1,group2\"\n"
          "  --client-ca PATH            accept client certificates signed by this CA\n"
          "  --issue-credentials         issue short-lived client certificates and tokens\n"
          "                              on the admin listener (POST /credentials), for\n"
          "                              tests that rotate them; the client CA is kept in\n"
          "                              --cert-dir as client-ca.crt and client-ca.key\n"
          "  --authz-file PATH           rules installed as RBAC objects (implies RBAC)\n"
          "  --authorization-mode MODE   AlwaysAllow (default) or RBAC: Roles, ClusterRoles\n"
          "                              and bindings decide; system:masters may do anything\n"
          "  --data-dir DIR              keep objects across restarts (default: memory)\n"
          "  --write-kubeconfig PATH     write a kubeconfig once the server accepts connections\n"
          "  --write-env PATH            write SERVER=, ADMIN=, TOKEN=, CA_DATA= lines (before the "
          "kubeconfig)\n"
          "  --write-ca PATH             write the CA certificate (PEM) clients should trust\n"
          "  --admin-listen HOST:PORT    loopback listener for faults and counters\n"
          "  --watch-history N           change events kept for watch resume (default 10000)\n"
          "  --feature-gates CoordinatedLeaderElection=true\n"
          "                              run the coordinated leader election controller\n"
          "                              (LeaseCandidates pick the Lease holder; "
          "docs/coordinated.md)\n"
          "  --runtime-config coordination.k8s.io/v1beta1=false\n"
          "                              do not serve LeaseCandidates, as a cluster that has\n"
          "                              not enabled them (default true: served)\n"
          "  --bookmark-interval SECONDS interval of watch BOOKMARK events (default 60)\n"
          "  -v, --verbose               log every request and libmicrohttpd's messages\n"
          "  --version                   print the version and exit\n"
          "  -h, --help                  this help\n",
          f);
}

static int bad(const char *fmt, ...) KLE_PRINTF(1, 2);
static int bad(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kle-apiserver: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "coordination.k8s.io/v1beta1=false" (also .../leasecandidates, and
 * comma-separated lists of these): sets kle_apiserver__lease_candidates. */
static int parse_runtime_config(const char *v)
{
    char buf[512];
    if (!*v || strlen(v) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", v);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        const char *val = eq ? eq + 1 : "true";
        if (eq)
            *eq = '\0';
        if (strcmp(kv, "coordination.k8s.io/v1beta1") != 0 &&
            strcmp(kv, "coordination.k8s.io/v1beta1/leasecandidates") != 0)
            return -1;
        if (strcmp(val, "true") == 0)
            kle_apiserver__lease_candidates = 1;
        else if (strcmp(val, "false") == 0)
            kle_apiserver__lease_candidates = 0;
        else
            return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:6443";
    o->history = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("kle-apiserver %s (libkle %s)\n", KLE_VERSION, kle_version(NULL, NULL, NULL));
            exit(0);
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            kle_apiserver__verbose = 1;
            kle_log_set_verbosity(2);
            continue;
        } else if (strcmp(a, "--insecure-http") == 0) {
            o->insecure = 1;
            continue;
        } else if (strcmp(a, "--issue-credentials") == 0) {
            o->issue_credentials = 1;
            continue;
        } else if (strncmp(a, "--runtime-config", 16) == 0 && (a[16] == '=' || !a[16])) {
            /* kube-apiserver's --runtime-config, for the one API group
             * version that clusters serve only when enabled. */
            const char *v = a[16] == '=' ? a + 17 : (i + 1 < argc ? argv[++i] : "");
            if (parse_runtime_config(v) != 0)
                return bad("--runtime-config %s: only coordination.k8s.io/v1beta1=true|false is "
                           "known (LeaseCandidates)",
                           v);
            continue;
        } else if (strncmp(a, "--feature-gates", 15) == 0) {
            /* Only the one gate kle-apiserver knows:
             * --feature-gates=CoordinatedLeaderElection=true. */
            const char *v = a[15] == '=' ? a + 16 : (i + 1 < argc ? argv[++i] : "");
            if (strcmp(v, "CoordinatedLeaderElection=true") == 0)
                kle_apiserver__coordinated_election = 1;
            else if (strcmp(v, "CoordinatedLeaderElection=false") != 0)
                return bad("--feature-gates %s: only CoordinatedLeaderElection=true|false is known",
                           v);
            continue;
        }
#define FLAG(name, field) else if (strcmp(a, name) == 0) dst = &o->field
        FLAG("--listen", listen);
        FLAG("--tls-cert", tls_cert);
        FLAG("--tls-key", tls_key);
        FLAG("--tls-ca", tls_ca);
        FLAG("--token-file", token_file);
        FLAG("--client-ca", client_ca);
        FLAG("--write-kubeconfig", kubeconfig);
        FLAG("--write-env", env_file);
        FLAG("--write-ca", ca_file);
        FLAG("--cert-dir", cert_dir);
        FLAG("--admin-token-file", admin_token_file);
        FLAG("--authz-file", authz_file);
        FLAG("--authorization-mode", authz_mode);
        FLAG("--data-dir", data_dir);
        FLAG("--admin-listen", admin_listen);
#undef FLAG
        else if (strcmp(a, "--watch-history") == 0 || strcmp(a, "--bookmark-interval") == 0)
        {
            long v;
            if (i + 1 >= argc)
                return bad("%s needs a value", a);
            if (parse_long(argv[i + 1], 1, 100000000, &v) != 0)
                return bad("%s %s: expected a positive integer", a, argv[i + 1]);
            if (a[2] == 'w')
                o->history = v;
            else
                kle_apiserver__bookmark_interval = (int)v;
            i++;
            continue;
        }
        else
        {
            usage(stderr);
            return bad("unknown flag %s (see --help)", a);
        }
        if (i + 1 >= argc || argv[i + 1][0] == '\0')
            return bad("%s needs a value", a);
        *dst = argv[++i];
    }
    if (kle_apiserver__coordinated_election && !kle_apiserver__lease_candidates)
        return bad("--feature-gates CoordinatedLeaderElection=true needs the LeaseCandidates of "
                   "coordination.k8s.io/v1beta1: drop --runtime-config "
                   "coordination.k8s.io/v1beta1=false");
    if ((o->tls_cert != NULL) != (o->tls_key != NULL))
        return bad("--tls-cert and --tls-key must be given together");
    if (o->insecure && (o->tls_cert || o->client_ca || o->issue_credentials))
        return bad("--insecure-http cannot be combined with --tls-cert, --client-ca or "
                   "--issue-credentials");
    if (o->authz_mode && strcmp(o->authz_mode, "RBAC") != 0 &&
        strcmp(o->authz_mode, "AlwaysAllow") != 0)
        return bad("--authorization-mode %s: expected AlwaysAllow or RBAC", o->authz_mode);
    if (o->authz_file && o->authz_mode && strcmp(o->authz_mode, "AlwaysAllow") == 0)
        return bad("--authz-file needs --authorization-mode RBAC (its rules are RBAC objects)");
    return 0;
}

/* Splits HOST:PORT and resolves it; host gets the bare host. */
static int resolve(const char *flag, const char *hp, char *host, size_t hostlen,
                   struct addrinfo **ai)
{
    const char *colon = strrchr(hp, ':');
    struct addrinfo hints;
    long port;
    int rc;

    if (!colon || colon == hp || (size_t)(colon - hp) >= hostlen ||
        parse_long(colon + 1, 0, 65535, &port) != 0) {
        fprintf(stderr, "kle-apiserver: %s %s: expected HOST:PORT with a port in 0..65535\n", flag,
                hp);
        return -1;
    }
    snprintf(host, hostlen, "%.*s", (int)(colon - hp), hp);
    if (host[0] == '[') {
        size_t n = strlen(host);
        if (host[n - 1] != ']') {
            fprintf(stderr, "kle-apiserver: %s %s: unbalanced [ in the host\n", flag, hp);
            return -1;
        }
        memmove(host, host + 1, n - 2);
        host[n - 2] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, colon + 1, &hints, ai);
    if (rc != 0 || !*ai) {
        fprintf(stderr, "kle-apiserver: %s %s: cannot resolve %s: %s\n", flag, hp, host,
                gai_strerror(rc));
        return -1;
    }
    return 0;
}

static char *base64(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
    return out;
}

/* Writes text to path via a temporary file and rename, mode 0600. */
static int write_atomic(const char *path, const char *text)
{
    size_t n = strlen(path) + 16;
    char *tmp = malloc(n);
    FILE *f;
    int rc = -1;
    int fd;

    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0 && (f = fdopen(fd, "w")) != NULL) {
        if (fputs(text, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0)
            rc = 0;
        if (fclose(f) != 0)
            rc = -1;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -1;
    } else if (fd >= 0) {
        close(fd);
    }
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* 1 when path exists. */
static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The admin token: from the file when it exists, else generated (and
 * written to the file when one is named). */
static int admin_token(const char *path, char *token, size_t len, char *err, size_t errlen)
{
    char *text;
    size_t n;
    if (!path || !exists(path)) {
        kle_apiserver__random_hex(token, 32);
        if (path && write_atomic(path, token) != 0) {
            snprintf(err, errlen, "--admin-token-file %s: cannot write: %s", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    text = kle_apiserver__read_file(path, 4096, err, errlen);
    if (!text)
        return -1;
    n = strcspn(text, " \t\r\n");
    if (n < 16 || n >= len || text[n + strspn(text + n, " \t\r\n")] != '\0') {
        snprintf(err, errlen, "--admin-token-file %s: expected one token of 16 to %zu characters",
                 path, len - 1);
        free(text);
        return -1;
    }
    memcpy(token, text, n);
    token[n] = '\0';
    free(text);
    return 0;
}

/* Loads DIR/{ca.crt,serving.crt,serving.key} when all exist; else
 * generates them and writes them there. */
static int cert_dir_tls(const char *dir, const char *host, kle_apiserver__tls *tls, char *err,
                        size_t errlen)
{
    char ca[4096], crt[4096], key[4096];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    snprintf(crt, sizeof(crt), "%s/serving.crt", dir);
    snprintf(key, sizeof(key), "%s/serving.key", dir);
    if (exists(ca) && exists(crt) && exists(key)) {
        tls->ca_pem = kle_apiserver__read_file(ca, 1u << 20, err, errlen);
        tls->cert_pem = tls->ca_pem ? kle_apiserver__read_file(crt, 1u << 20, err, errlen) : NULL;
        tls->key_pem = tls->cert_pem ? kle_apiserver__read_file(key, 1u << 20, err, errlen) : NULL;
        return tls->key_pem ? 0 : -1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--cert-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    if (kle_apiserver__tls_generate(tls, host, err, errlen) != 0)
        return -1;
    if (write_atomic(ca, tls->ca_pem) != 0 || write_atomic(crt, tls->cert_pem) != 0 ||
        write_atomic(key, tls->key_pem) != 0) {
        snprintf(err, errlen, "--cert-dir %s: cannot write the certificates: %s", dir,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int create_namespace(const char *name)
{
    json_object *o, *meta, *spec, *status, *fin;
    char uid[40], ts[40];
    if (kle_apiserver__store_get(KLE_RES_NAMESPACES, "", name))
        return 0;
    o = json_object_new_object();
    json_object_object_add(o, "kind", json_object_new_string("Namespace"));
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    meta = json_object_new_object();
    json_object_object_add(meta, "name", json_object_new_string(name));
    kle_apiserver__random_hex(uid, 16);
    json_object_object_add(meta, "uid", json_object_new_string(uid));
    kle_apiserver__timestamp(ts, sizeof(ts));
    json_object_object_add(meta, "creationTimestamp", json_object_new_string(ts));
    json_object_object_add(o, "metadata", meta);
    spec = json_object_new_object();
    fin = json_object_new_array();
    json_object_array_add(fin, json_object_new_string("kubernetes"));
    json_object_object_add(spec, "finalizers", fin);
    json_object_object_add(o, "spec", spec);
    status = json_object_new_object();
    json_object_object_add(status, "phase", json_object_new_string("Active"));
    json_object_object_add(o, "status", status);
    return kle_apiserver__store_put(KLE_RES_NAMESPACES, "", name, o, KLE_EV_ADDED);
}

int main(int argc, char **argv)
{
    options o;
    char err[1024], host[256], url[320], admin_url[300] = "", addr[300], token[65];
    struct addrinfo *ai = NULL;
    kle_apiserver__tls tls = {0};
    char *client_ca = NULL, *ca_for_kubeconfig = NULL;
    struct MHD_Daemon *d = NULL;
    const union MHD_DaemonInfo *info;
    sigset_t set;
    int sig, rc = 1, ipv6;
    unsigned port;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc;
    rc = 2;
    if (resolve("--listen", o.listen, host, sizeof(host), &ai) != 0)
        return 2;
    ipv6 = ai->ai_family == AF_INET6;

    /* Credentials. */
    if (admin_token(o.admin_token_file, token, sizeof(token), err, sizeof(err)) != 0)
        goto fail;
    kle_apiserver__auth_add_token(token, "kle-admin", "kle-admin", "system:masters");
    if (o.token_file && kle_apiserver__auth_load_tokens(o.token_file, err, sizeof(err)) != 0)
        goto fail;
    if (o.authz_file && kle_apiserver__authz_load(o.authz_file, err, sizeof(err)) != 0)
        goto fail;
    if (o.client_ca) {
        client_ca = kle_apiserver__read_file(o.client_ca, 1u << 20, err, sizeof(err));
        if (!client_ca) {
            snprintf(err + strlen(err), sizeof(err) - strlen(err), " (--client-ca)");
            goto fail;
        }
    }
    if (!o.insecure) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, sizeof(err),
                     "this libmicrohttpd has no TLS support; use --insecure-http");
            rc = 1;
            goto fail;
        }
        if (o.tls_cert) {
            tls.cert_pem = kle_apiserver__read_file(o.tls_cert, 1u << 20, err, sizeof(err));
            if (!tls.cert_pem)
                goto fail;
            tls.key_pem = kle_apiserver__read_file(o.tls_key, 1u << 20, err, sizeof(err));
            if (!tls.key_pem)
                goto fail;
            tls.ca_pem = kle_apiserver__read_file(o.tls_ca ? o.tls_ca : o.tls_cert, 1u << 20, err,
                                                  sizeof(err));
            if (!tls.ca_pem)
                goto fail;
        } else if (o.cert_dir) {
            if (cert_dir_tls(o.cert_dir, host, &tls, err, sizeof(err)) != 0)
                goto fail;
        } else if (kle_apiserver__tls_generate(&tls, host, err, sizeof(err)) != 0) {
            rc = 1;
            goto fail;
        }
    }
    if (o.issue_credentials) {
        /* Issued certificates are trusted next to --client-ca's. */
        char *issuer_ca = NULL;
        if (kle_apiserver__issuer_init(o.cert_dir, &issuer_ca, err, sizeof(err)) != 0)
            goto fail;
        size_t l1 = client_ca ? strlen(client_ca) : 0, l2 = strlen(issuer_ca);
        char *both = malloc(l1 + l2 + 2);
        if (!both) {
            free(issuer_ca);
            snprintf(err, sizeof(err), "out of memory");
            goto fail;
        }
        snprintf(both, l1 + l2 + 2, "%s%s%s", client_ca ? client_ca : "",
                 l1 && client_ca[l1 - 1] != '\n' ? "\n" : "", issuer_ca);
        free(issuer_ca);
        free(client_ca);
        client_ca = both;
    }
    if (kle_apiserver__store_init(o.data_dir, (size_t)o.history, err, sizeof(err)) != 0)
        goto fail;
    kle_apiserver__store_lock();
    if (create_namespace("default") || create_namespace("kube-system") ||
        create_namespace("kube-public") || create_namespace("kube-node-lease")) {
        kle_apiserver__store_unlock();
        snprintf(err, sizeof(err), "cannot create the initial namespaces (--data-dir)");
        rc = 1;
        goto fail;
    }
    kle_apiserver__store_unlock();
    if (kle_apiserver__authz_install(kle_apiserver__authz_file_rules()) != 0) {
        snprintf(err, sizeof(err), "--authz-file: cannot store the rules as RBAC objects");
        rc = 1;
        goto fail;
    }
    if (o.authz_mode && strcmp(o.authz_mode, "RBAC") == 0)
        kle_apiserver__rbac_enabled = 1;

    /* Every thread started from here on inherits the blocked signals. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    rc = 1;
    if (o.admin_listen && kle_apiserver__admin_start(o.admin_listen, admin_url, sizeof(admin_url),
                                                     err, sizeof(err)) != 0) {
        rc = 2;
        goto fail;
    }
    d = kle_apiserver__http_start(ai->ai_addr, ipv6, o.insecure ? NULL : &tls, client_ca);
    if (!d) {
        snprintf(err, sizeof(err), "--listen %s: cannot listen: %s", o.listen, strerror(errno));
        goto fail;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? info->port : 0;
    snprintf(addr, sizeof(addr), ipv6 ? "[%s]:%u" : "%s:%u", host, port);
    snprintf(url, sizeof(url), "%s://%s", o.insecure ? "http" : "https", addr);
    kle_apiserver__set_options(client_ca != NULL, addr);
    KLE_LOG_I("kle-apiserver serving on %s%s%s", url, admin_url[0] ? ", admin on " : "", admin_url);

    ca_for_kubeconfig = tls.ca_pem ? base64(tls.ca_pem) : NULL;
    if (o.ca_file && tls.ca_pem && write_atomic(o.ca_file, tls.ca_pem) != 0) {
        snprintf(err, sizeof(err), "--write-ca %s: %s", o.ca_file, strerror(errno));
        goto fail;
    }
    if (o.env_file) {
        kle_buf b = {0};
        char line[1200];
        snprintf(line, sizeof(line), "SERVER=%s\nADMIN=%s\nTOKEN=%s\n", url, admin_url, token);
        kle_buf__appends(&b, line);
        if (tls.ca_pem) {
            snprintf(line, sizeof(line), "CA_DATA=%s\n", ca_for_kubeconfig);
            kle_buf__appends(&b, line);
        }
        if (write_atomic(o.env_file, b.data) != 0) {
            snprintf(err, sizeof(err), "--write-env %s: %s", o.env_file, strerror(errno));
            kle_buf__free(&b);
            goto fail;
        }
        kle_buf__free(&b);
    }
    if (o.kubeconfig) {
        kle_buf b = {0};
        char line[1200];
        kle_buf__appends(&b, "apiVersion: v1\nkind: Config\nclusters:\n"
                             "- name: kle-apiserver\n  cluster:\n");
        snprintf(line, sizeof(line), "    server: %s\n", url);
        kle_buf__appends(&b, line);
        if (ca_for_kubeconfig) {
            kle_buf__appends(&b, "    certificate-authority-data: ");
            kle_buf__appends(&b, ca_for_kubeconfig);
            kle_buf__appends(&b, "\n");
        }
        kle_buf__appends(&b, "contexts:\n- name: kle-apiserver\n  context:\n"
                             "    cluster: kle-apiserver\n    user: kle-admin\n"
                             "    namespace: default\n"
                             "current-context: kle-apiserver\n"
                             "users:\n- name: kle-admin\n  user:\n");
        snprintf(line, sizeof(line), "    token: %s\npreferences: {}\n", token);
        kle_buf__appends(&b, line);
        if (write_atomic(o.kubeconfig, b.data) != 0) {
            snprintf(err, sizeof(err), "--write-kubeconfig %s: %s", o.kubeconfig, strerror(errno));
            kle_buf__free(&b);
            goto fail;
        }
        kle_buf__free(&b);
    }

    if (kle_apiserver__election_start() != 0) {
        snprintf(err, sizeof(err), "cannot start the coordinated-election controller");
        goto fail;
    }
    for (;;) {
        if (sigwait(&set, &sig) == 0 && (sig == SIGTERM || sig == SIGINT))
            break;
    }
    KLE_LOG_I("kle-apiserver: signal %d, shutting down", sig);
    rc = 0;
    goto out;

fail:
    fprintf(stderr, "kle-apiserver: %s\n", err);
out:
    atomic_store(&kle_apiserver__shutting_down, 1);
    kle_apiserver__election_stop();
    kle_apiserver__admin_stop();
    kle_apiserver__store_lock();
    kle_apiserver__store_broadcast();
    kle_apiserver__store_unlock();
    if (d)
        MHD_stop_daemon(d);
    kle_apiserver__admin_free();
    kle_apiserver__store_free();
    kle_apiserver__auth_free();
    kle_apiserver__issuer_free();
    kle_apiserver__tls_free(&tls);
    free(client_ca);
    free(ca_for_kubeconfig);
    if (ai)
        freeaddrinfo(ai);
    return rc;
}
