/* The API client against a real kle-apiserver over HTTPS: every auth
 * method, TLS verification, each error mapping, watch with resume and
 * re-list, timeouts under a black-holed server, cancellation, and that no
 * secret reaches the log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kle/errors.h"
#include "kle/log.h"
#include "kube/kube.h"
#include "kube_server.h"

static kube_server srv;
static char dir[256];

/* Everything logged, at the highest verbosity, for the secrets test. */
#include "support/log_capture.h"

static int64_t now_ms(void)
{
    return kle_kube__now_ns() / 1000000;
}

static char *slurp(const char *path)
{
    kle_buf b = {0};
    if (kle_kube__read_file(&b, path, 1u << 20) != 0)
        return NULL;
    return b.data;
}

static void run(const char *cmd)
{
    if (system(cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* A kubeconfig for the test server with the given user fields (YAML,
 * indented 4) and extra cluster fields; ca NULL uses the server's CA. */
static void kubeconfig(const char *name, const char *user_yaml, const char *cluster_yaml,
                       const char *ca_b64)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    kube_write_file(path, 0,
                    "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                    "clusters:\n- name: c\n  cluster:\n    server: %s\n%s%s%s%s"
                    "users:\n- name: u\n  user:\n%s"
                    "contexts:\n- name: t\n  context: {cluster: c, user: u, namespace: default}\n",
                    srv.server, ca_b64 && !*ca_b64 ? "" : "    certificate-authority-data: ",
                    ca_b64 && !*ca_b64 ? "" : (ca_b64 ? ca_b64 : srv.ca_data),
                    ca_b64 && !*ca_b64 ? "" : "\n", cluster_yaml ? cluster_yaml : "",
                    user_yaml ? user_yaml : "    {}\n");
}

static kle_client *client_for(const char *name, const kle_client_opts *base)
{
    char path[400];
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    if (base)
        o = *base;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    o.kubeconfig = path;
    kle_client *c = NULL;
    if (kle_client_new_from_kubeconfig(&c, &o) != 0)
        fail_msg("client %s: %s", name, kle_error_last()->message);
    return c;
}

static json_object *configmap(const char *name, const char *value)
{
    json_object *o = json_object_new_object(), *md = json_object_new_object(),
                *d = json_object_new_object();
    json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(o, "kind", json_object_new_string("ConfigMap"));
    json_object_object_add(md, "name", json_object_new_string(name));
    json_object_object_add(o, "metadata", md);
    json_object_object_add(d, "v", json_object_new_string(value));
    json_object_object_add(o, "data", d);
    return o;
}

static const char *rv_of(json_object *o)
{
    json_object *md, *rv;
    if (json_object_object_get_ex(o, "metadata", &md) &&
        json_object_object_get_ex(md, "resourceVersion", &rv))
        return json_object_get_string(rv);
    return NULL;
}

static const char *data_v(json_object *o)
{
    json_object *d, *v;
    if (json_object_object_get_ex(o, "data", &d) && json_object_object_get_ex(d, "v", &v))
        return json_object_get_string(v);
    return NULL;
}

#define CM "/api/v1/namespaces/default/configmaps"

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/kle-client-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout cca.key -out cca.crt -days 2 -subj /CN=kle-test-client-ca 2>/dev/null && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout user.key -out user.csr -subj '/CN=cert-user/O=system:masters' "
             "2>/dev/null && "
             "printf 'extendedKeyUsage=clientAuth\\nkeyUsage=digitalSignature\\n' > ext && "
             "openssl x509 -req -in user.csr -CA cca.crt -CAkey cca.key -CAcreateserial "
             "-out user.crt -days 2 -extfile ext 2>/dev/null && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout wrong.key -out wrong.crt -days 2 -subj /CN=wrong-ca 2>/dev/null",
             dir);
    run(cmd);
    char p[400];
    snprintf(p, sizeof(p), "%s/tokens.csv", dir);
    kube_write_file(p, 0,
                    "ok-token-0123456789,ok-user,uid-ok,\"system:masters\"\n"
                    "limited-token-0123456789,limited-user,uid-limited\n");
    snprintf(p, sizeof(p), "%s/authz.json", dir);
    kube_write_file(p, 0,
                    "{\"rules\":[{\"subjects\":[\"user:limited-user\"],\"verbs\":[\"get\"],"
                    "\"apiGroups\":[\"\"],\"resources\":[\"configmaps\"]}]}\n");
    static const char *const flags[] = {"--token-file",
                                        "@/tokens.csv",
                                        "--authz-file",
                                        "@/authz.json",
                                        "--client-ca",
                                        "@/cca.crt",
                                        "--watch-history",
                                        "8",
                                        NULL};
    if (kube_server_start(&srv, dir, flags) != 0)
        fail_msg("kle-apiserver did not start");
    kle_log_set_handler(capture_log, NULL);
    kle_log_set_verbosity(10);
    return 0;
}

static int teardown(void **state)
{
    kle_log_set_handler(NULL, NULL);
    kle_log_set_verbosity(0);
    kube_server_stop(&srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    run(cmd);
    free(log_text);
    return 0;
}

/* ---- REST verbs and the error mapping ---------------------------------- */

static void test_client__crud_with_token(void **state)
{
    kubeconfig("token.kubeconfig", "    token: ok-token-0123456789\n", NULL, NULL);
    kle_client *c = client_for("token.kubeconfig", NULL);
    assert_string_equal(kle_client_namespace(c), "default");
    assert_string_equal(kle_client_server(c), srv.server);
    assert_non_null(strstr(kle_client_user_agent(c), "kle/"));
    assert_non_null(strstr(kle_client_user_agent(c), " (linux/"));

    json_object *body = configmap("crud", "one"), *out = NULL;
    assert_int_equal(kle_client_create(&out, c, CM, body, NULL), 0);
    assert_string_equal(data_v(out), "one");
    char rv1[64];
    snprintf(rv1, sizeof(rv1), "%s", rv_of(out));
    json_object_put(out);

    /* AlreadyExists is its own code, not Conflict. */
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    json_object *status = NULL;
    ro.status = &status;
    assert_int_equal(kle_client_create(&out, c, CM, body, &ro), KLE_EEXISTS);
    assert_null(out);
    assert_int_equal(kle_error_last()->http_status, 409);
    assert_string_equal(kle_error_last()->reason, "AlreadyExists");
    assert_string_equal(kle_error_last()->message,
                        "POST " CM ": 409 AlreadyExists: configmaps \"crud\" already exists");
    assert_non_null(status);
    json_object *code;
    assert_true(json_object_object_get_ex(status, "code", &code));
    assert_int_equal(json_object_get_int(code), 409);
    json_object_put(status);
    json_object_put(body);

    /* Update with the current resourceVersion, then with a stale one. */
    assert_int_equal(kle_client_get(&out, c, CM "/crud", NULL), 0);
    json_object *d;
    json_object_object_get_ex(out, "data", &d);
    json_object_object_add(d, "v", json_object_new_string("two"));
    json_object *updated = NULL;
    assert_int_equal(kle_client_update(&updated, c, CM "/crud", out, NULL), 0);
    assert_string_equal(data_v(updated), "two");
    assert_string_not_equal(rv_of(updated), rv1);
    json_object_put(updated);
    assert_int_equal(kle_client_update(NULL, c, CM "/crud", out, NULL), KLE_ECONFLICT);
    assert_string_equal(kle_error_last()->reason, "Conflict");
    assert_int_equal(kle_error_last()->http_status, 409);
    assert_non_null(strstr(kle_error_last()->message, "PUT " CM "/crud: 409 Conflict: "));
    assert_non_null(strstr(kle_error_last()->message, "the object has been modified"));
    json_object_put(out);

    /* Patch (merge and strategic merge). */
    json_object *patch = json_tokener_parse("{\"data\":{\"v\":\"three\"}}");
    assert_int_equal(kle_client_patch(&out, c, CM "/crud", KLE_PATCH_MERGE, patch, NULL), 0);
    assert_string_equal(data_v(out), "three");
    json_object_put(out);
    json_object_put(patch);
    patch = json_tokener_parse("{\"data\":{\"w\":\"x\"}}");
    assert_int_equal(kle_client_patch(NULL, c, CM "/crud", KLE_PATCH_STRATEGIC, patch, NULL), 0);
    json_object_put(patch);

    /* Delete, then NotFound. */
    assert_int_equal(kle_client_delete(NULL, c, CM "/crud", NULL), 0);
    assert_int_equal(kle_client_get(&out, c, CM "/crud", NULL), KLE_ENOTFOUND);
    assert_null(out);
    assert_string_equal(kle_error_last()->message,
                        "GET " CM "/crud: 404 NotFound: configmaps \"crud\" not found");
    assert_int_equal(kle_client_delete(NULL, c, CM "/crud", NULL), KLE_ENOTFOUND);

    /* Every request above (several verbs, errors included) went over one
     * kept-alive connection. */
    assert_int_equal(kle_kube__client_connections(c), 1);
    kle_client_free(c);
}

static void test_client__error_mapping(void **state)
{
    kubeconfig("bad-token.kubeconfig", "    token: not-a-valid-token\n", NULL, NULL);
    kubeconfig("limited.kubeconfig", "    token: limited-token-0123456789\n", NULL, NULL);
    kle_client *bad = client_for("bad-token.kubeconfig", NULL);
    kle_client *lim = client_for("limited.kubeconfig", NULL);
    kle_client *c = client_for("token.kubeconfig", NULL);
    json_object *out = NULL;

    assert_int_equal(kle_client_get(&out, bad, CM, NULL), KLE_EUNAUTHORIZED);
    assert_int_equal(kle_error_last()->http_status, 401);
    assert_string_equal(kle_error_last()->message, "GET " CM ": 401 Unauthorized: Unauthorized");

    json_object *body = configmap("forbidden", "x");
    assert_int_equal(kle_client_create(NULL, lim, CM, body, NULL), KLE_EFORBIDDEN);
    assert_int_equal(kle_error_last()->http_status, 403);
    assert_string_equal(kle_error_last()->reason, "Forbidden");
    assert_non_null(strstr(kle_error_last()->message, "POST " CM ": 403 Forbidden: "));
    assert_non_null(strstr(kle_error_last()->message, "limited-user"));
    json_object_put(body);

    /* 422 Invalid carries the causes. */
    body = configmap("Not_A_Valid_Name", "x");
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), KLE_EUNPROCESSABLE);
    assert_int_equal(kle_error_last()->http_status, 422);
    assert_string_equal(kle_error_last()->reason, "Invalid");
    /* The cause once: the Status message already names it, so the
     * details.causes list adds nothing. */
    {
        const char *m = kle_error_last()->message, *p = strstr(m, "metadata.name: Invalid value");
        assert_non_null(p);
        assert_null(strstr(p + 1, "metadata.name: Invalid value"));
        assert_non_null(strstr(m, "a lowercase RFC 1123 subdomain"));
        assert_null(strstr(strstr(m, "a lowercase RFC 1123 subdomain") + 1,
                           "a lowercase RFC 1123 subdomain"));
    }
    json_object_put(body);

    /* 413: a body over the server's limit. (Through the HTTP/2 front the
     * server's early answer becomes a reset stream, KLE_ETRANSPORT: nghttpx
     * does not forward a response that arrives before the upload ended.) */
    size_t big = kle_test_http2() ? 0 : 4u << 20;
    char *text = malloc(big + 200);
    assert_non_null(text);
    int n = snprintf(text, 200, "{\"metadata\":{\"name\":\"big\"},\"data\":{\"v\":\"");
    memset(text + n, 'a', big);
    snprintf(text + n + big, 10, "\"}}");
    int rc413 =
        big ? kle_client_request(NULL, c, "POST", CM, "application/json", text, strlen(text), NULL)
            : KLE_ETOOLARGE;
    if (rc413 != KLE_ETOOLARGE)
        fail_msg("413: got %d %s", rc413, kle_error_last()->message);
    if (big) {
        assert_int_equal(
            kle_client_request(NULL, c, "POST", CM, "application/json", text, strlen(text), NULL),
            KLE_ETOOLARGE);
        assert_string_equal(kle_error_last()->reason, "RequestEntityTooLarge");
        assert_int_equal(kle_error_last()->http_status, 413);
    }
    free(text);

    /* Injected 429 with Retry-After, then the 5xx family. */
    assert_true(kube_server_admin(&srv, "POST", "/faults",
                                  "{\"verb\":\"get\",\"resource\":\"configmaps\","
                                  "\"name\":\"throttled\",\"error\":429,"
                                  "\"retryAfterSeconds\":7}") /
                    100 ==
                2);
    assert_int_equal(kle_client_get(&out, c, CM "/throttled", NULL), KLE_ETOOMANYREQUESTS);
    assert_int_equal(kle_error_last()->http_status, 429);
    assert_int_equal(kle_error_last()->retry_after_ns, KLE_SEC(7));
    assert_string_equal(kle_error_last()->reason, "TooManyRequests");
    static const int codes[] = {500, 503, 504};
    static const char *reasons[] = {"InternalError", "ServiceUnavailable", "Timeout"};
    for (int i = 0; i < 3; i++) {
        char f[200], path[100];
        snprintf(f, sizeof(f),
                 "{\"verb\":\"get\",\"resource\":\"configmaps\",\"name\":\"e%d\",\"error\":%d}",
                 codes[i], codes[i]);
        assert_true(kube_server_admin(&srv, "POST", "/faults", f) / 100 == 2);
        snprintf(path, sizeof(path), CM "/e%d", codes[i]);
        assert_int_equal(kle_client_get(&out, c, path, NULL), KLE_ESERVER);
        assert_int_equal(kle_error_last()->http_status, codes[i]);
        assert_string_equal(kle_error_last()->reason, reasons[i]);
        assert_non_null(strstr(kle_error_last()->message, path));
    }
    /* A response cut off in the middle is a transport error. */
    body = configmap("cut", "x");
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), 0);
    json_object_put(body);
    assert_true(kube_server_admin(&srv, "POST", "/faults",
                                  "{\"verb\":\"get\",\"name\":\"cut\",\"closeMidResponse\":true}") /
                    100 ==
                2);
    assert_int_equal(kle_client_get(&out, c, CM "/cut", NULL), KLE_ETRANSPORT);
    assert_non_null(strstr(kle_error_last()->message, "GET " CM "/cut: "));
    assert_null(out);
    assert_true(kube_server_admin(&srv, "DELETE", "/faults", NULL) / 100 == 2);
    assert_int_equal(kle_client_delete(NULL, c, CM "/cut", NULL), 0);

    /* A connection refused is a transport error naming the request. */
    char refused[400];
    snprintf(refused, sizeof(refused), "%s/refused.kubeconfig", dir);
    kube_write_file(refused, 0,
                    "current-context: t\nclusters:\n- name: c\n  cluster:\n"
                    "    server: https://127.0.0.1:1\ncontexts:\n- name: t\n"
                    "  context: {cluster: c}\n");
    kle_client *rc = client_for("refused.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, rc, CM, NULL), KLE_ETRANSPORT);
    assert_non_null(strstr(kle_error_last()->message, "GET " CM ": "));
    kle_client_free(rc);

    kle_client_free(bad);
    kle_client_free(lim);
    kle_client_free(c);
}

static void test_client__response_cap(void **state)
{
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.max_response_bytes = 2048;
    kle_client *c = client_for("token.kubeconfig", NULL);
    kle_client *small = client_for("token.kubeconfig", &o);
    char value[4096];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    json_object *body = configmap("large", value);
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), 0);
    json_object_put(body);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, small, CM "/large", NULL), KLE_ETOOLARGE);
    assert_string_equal(kle_error_last()->message,
                        "GET " CM "/large: the response is larger than the client's limit of "
                        "2048 bytes");
    assert_null(out);
    /* The handle stays usable. */
    assert_int_equal(kle_client_get(&out, small, "/api/v1/namespaces/default", NULL), 0);
    json_object_put(out);
    assert_int_equal(kle_client_delete(NULL, c, CM "/large", NULL), 0);
    kle_client_free(small);
    kle_client_free(c);
}

/* ---- authentication ---------------------------------------------------- */

static void test_client__token_file_rotated_while_running(void **state)
{
    char tf[400];
    snprintf(tf, sizeof(tf), "%s/sa-token", dir);
    kube_write_file(tf, 0, "limited-token-0123456789\n");
    kubeconfig("tokenfile.kubeconfig", "    tokenFile: sa-token\n", NULL, NULL);
    kle_client *c = client_for("tokenfile.kubeconfig", NULL);
    json_object *body = configmap("rotated", "x"), *out = NULL;

    /* The limited user may not create. */
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), KLE_EFORBIDDEN);
    /* Rotated to a more powerful token: within the refresh period (60 s)
     * the cached token is still used, as client-go does. */
    kube_write_file(tf, 0, "ok-token-0123456789\n");
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), KLE_EFORBIDDEN);
    kle_client_free(c);

    /* With a short refresh period the new token is picked up. */
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.token_file_refresh_ns = 100 * KLE_NS_PER_MS;
    kube_write_file(tf, 0, "limited-token-0123456789\n");
    c = client_for("tokenfile.kubeconfig", &o);
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), KLE_EFORBIDDEN);
    kube_write_file(tf, 0, "ok-token-0123456789\n");
    int64_t deadline = now_ms() + 5000;
    int rc;
    while ((rc = kle_client_create(NULL, c, CM, body, NULL)) == KLE_EFORBIDDEN &&
           now_ms() < deadline) {
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(kle_client_delete(NULL, c, CM "/rotated", NULL), 0);
    kle_client_free(c);

    /* A revoked token (401) makes the client re-read a changed file at
     * once and retry. */
    kube_write_file(tf, 0, "revoked-token\n");
    c = client_for("tokenfile.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EUNAUTHORIZED);
    kube_write_file(tf, 0, "ok-token-0123456789\n");
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    json_object_put(body);
}

static void test_client__client_certificate(void **state)
{
    if (kle_test_http2()) {
        /* The HTTP/2 front ends TLS: client certificates never reach the server. */
        skip();
    }
    /* From files, relative to the kubeconfig. */
    kubeconfig("cert-files.kubeconfig",
               "    client-certificate: user.crt\n    client-key: user.key\n", NULL, NULL);
    kle_client *c = client_for("cert-files.kubeconfig", NULL);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);

    /* From data. */
    char cmd[600];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && printf '    client-certificate-data: %%s\\n    client-key-data: %%s\\n' "
             "$(base64 -w0 user.crt) $(base64 -w0 user.key) > cert-data.user",
             dir);
    run(cmd);
    char p[400];
    snprintf(p, sizeof(p), "%s/cert-data.user", dir);
    char *user = slurp(p);
    assert_non_null(user);
    kubeconfig("cert-data.kubeconfig", user, NULL, NULL);
    free(user);
    c = client_for("cert-data.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);

    /* Without a certificate or token: 401. */
    kubeconfig("anonymous.kubeconfig", NULL, NULL, NULL);
    c = client_for("anonymous.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EUNAUTHORIZED);
    kle_client_free(c);
}

static void write_timestamp(const char *name, int64_t offset_s)
{
    char p[400], ts[64];
    time_t t = time(NULL) + offset_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    kube_write_file(p, 0, "%s", ts);
}

static int plugin_runs(void)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/plugin-runs", dir);
    char *s = slurp(p);
    int n = s ? (int)strlen(s) : 0;
    free(s);
    return n;
}

/* The exec plugin runs outside every request's budget: a plugin slower than
 * the call still yields the credential later calls use, and a credential
 * near its expiry (80 % of its lifetime) is refreshed in the background
 * while calls go on with the current one. */
static void test_client__exec_plugin_in_the_background(void **state)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/bg-plugin.sh", dir);
    /* Takes 1.5 s; the credential it prints lasts 10 s (9 to 10 s: the
     * timestamp has whole seconds). */
    kube_write_file(p, 1,
                    "#!/bin/sh\nd=$(dirname \"$0\")\nsleep 1.5\nprintf x >> \"$d/bg-runs\"\n"
                    "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                    "\"kind\":\"ExecCredential\",\"status\":{\"token\":"
                    "\"ok-token-0123456789\",\"expirationTimestamp\":\"%%s\"}}' "
                    "\"$(date -u -d '+10 seconds' +%%Y-%%m-%%dT%%H:%%M:%%SZ)\"\n");
    kubeconfig("bg-plugin.kubeconfig",
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./bg-plugin.sh\n",
               NULL, NULL);
    snprintf(p, sizeof(p), "%s/bg-runs", dir);
    kle_client *c = client_for("bg-plugin.kubeconfig", NULL);
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 300 * KLE_NS_PER_MS;
    json_object *out = NULL;
    /* The first call cannot wait 1.5 s: it times out, the plugin goes on. */
    int64_t start = now_ms();
    assert_int_equal(kle_client_get(&out, c, CM, &ro), KLE_ETIMEOUT);
    assert_true(now_ms() - start < 300 + 150);
    assert_non_null(strstr(kle_error_last()->message, "keeps running"));
    /* A later call uses what that run produced: one run in all. */
    int64_t end = now_ms() + 10000;
    int rc;
    while ((rc = kle_client_get(&out, c, CM, &ro)) == KLE_ETIMEOUT && now_ms() < end)
        ;
    if (rc != 0)
        fail_msg("after the plugin finished: %d %s", rc, kle_error_last()->message);
    json_object_put(out);
    char *runs = slurp(p);
    assert_non_null(runs);
    assert_string_equal(runs, "x");
    free(runs);

    /* Past 80 % of the lifetime (7.2 to 8 s), a call starts a refresh and
     * none waits for it: each returns well within its 300 ms while the
     * plugin takes 1.5 s, and the new credential arrives before the old
     * one expires. */
    struct timespec pause = {6, 0};
    nanosleep(&pause, NULL);
    end = now_ms() + 6000;
    int calls = 0;
    while (now_ms() < end) {
        start = now_ms();
        if (kle_client_get(&out, c, CM, &ro) != 0)
            fail_msg("call %d during the background refresh: %s", calls, kle_error_last()->message);
        json_object_put(out);
        assert_true(now_ms() - start < 300);
        calls++;
        runs = slurp(p);
        int n = runs ? (int)strlen(runs) : 0;
        free(runs);
        if (n == 2)
            break;
        struct timespec gap = {0, 50 * 1000000};
        nanosleep(&gap, NULL);
    }
    runs = slurp(p);
    assert_string_equal(runs, "xx");
    free(runs);
    assert_true(calls >= 5);
    kle_client_free(c);
}

/* Client certificate, key and CA files are re-read when they change, as
 * kubelet rotates them: the next request uses the new ones. */
static void test_client__tls_files_rotated_while_running(void **state)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && cp user.crt rot.crt && cp user.key rot.key && cp '%s' rot-ca.crt", dir,
             srv.h.ca_path);
    run(cmd);
    kubeconfig("rotating.kubeconfig",
               kle_test_http2() ? "    token: ok-token-0123456789\n"
                                : "    client-certificate: rot.crt\n    client-key: rot.key\n",
               "    certificate-authority: rot-ca.crt\n", "");
    kle_client *c = client_for("rotating.kubeconfig", NULL);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);

    /* The CA file now names a CA that did not sign the server's
     * certificate: the next request does not trust the server. */
    snprintf(cmd, sizeof(cmd),
             "cd '%s' && cp wrong.crt rot-ca.crt.new && mv rot-ca.crt.new rot-ca.crt", dir);
    run(cmd);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_ETRANSPORT);
    assert_non_null(strstr(kle_error_last()->message, "not trusted"));
    snprintf(cmd, sizeof(cmd),
             "cp '%s' '%s/rot-ca.crt.new' && mv '%s/rot-ca.crt.new' '%s/rot-ca.crt'", srv.h.ca_path,
             dir, dir, dir);
    run(cmd);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);

    if (!kle_test_http2()) {
        /* A client certificate the server does not accept: 401. */
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && cp wrong.crt rot.crt.new && cp wrong.key rot.key.new && "
                 "mv rot.key.new rot.key && mv rot.crt.new rot.crt",
                 dir);
        run(cmd);
        assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EUNAUTHORIZED);
        /* Half a rotation (a new certificate, the old key): the pair in
         * use stays until the key matches. */
        snprintf(cmd, sizeof(cmd), "cd '%s' && cp user.crt rot.crt.new && mv rot.crt.new rot.crt",
                 dir);
        run(cmd);
        assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EUNAUTHORIZED);
        snprintf(cmd, sizeof(cmd), "cd '%s' && cp user.key rot.key.new && mv rot.key.new rot.key",
                 dir);
        run(cmd);
        assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
        json_object_put(out);
    }
    kle_client_free(c);
}

static void test_client__exec_plugin(void **state)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/plugin.sh", dir);
    /* Counts its runs, records its environment, prints the token and
     * expiry held in two files. */
    kube_write_file(p, 1,
                    "#!/bin/sh\nd=$(dirname \"$0\")\nprintf x >> \"$d/plugin-runs\"\n"
                    "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > \"$d/plugin-info\"\n"
                    "echo \"$1 $PLUGIN_GREETING\" > \"$d/plugin-args\"\n"
                    "printf '{\"apiVersion\":\"%%s\",\"kind\":\"ExecCredential\","
                    "\"status\":{\"token\":\"%%s\",\"expirationTimestamp\":\"%%s\"}}' "
                    "\"$2\" \"$(cat \"$d/plugin-token\")\" \"$(cat \"$d/plugin-exp\")\"\n");
    snprintf(p, sizeof(p), "%s/plugin-token", dir);
    kube_write_file(p, 0, "ok-token-0123456789");
    write_timestamp("plugin-exp", 3600);
    kubeconfig("exec.kubeconfig",
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./plugin.sh\n"
               "      args: [hello, client.authentication.k8s.io/v1]\n"
               "      env: [{name: PLUGIN_GREETING, value: world}]\n"
               "      provideClusterInfo: true\n      interactiveMode: Never\n",
               NULL, NULL);
    kle_client *c = client_for("exec.kubeconfig", NULL);
    json_object *out = NULL;
    int before = plugin_runs();
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    assert_int_equal(plugin_runs(), before + 1);
    /* Cached until expiry. */
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    assert_int_equal(plugin_runs(), before + 1);

    snprintf(p, sizeof(p), "%s/plugin-args", dir);
    char *args = slurp(p);
    assert_string_equal(args, "hello world\n");
    free(args);
    snprintf(p, sizeof(p), "%s/plugin-info", dir);
    char *info = slurp(p);
    json_object *ec = json_tokener_parse(info), *spec, *cluster, *v;
    assert_non_null(ec);
    assert_true(json_object_object_get_ex(ec, "spec", &spec));
    assert_true(json_object_object_get_ex(spec, "cluster", &cluster));
    assert_true(json_object_object_get_ex(cluster, "server", &v));
    assert_string_equal(json_object_get_string(v), srv.server);
    assert_true(json_object_object_get_ex(cluster, "certificate-authority-data", &v));
    assert_string_equal(json_object_get_string(v), srv.ca_data);
    json_object_put(ec);
    free(info);

    /* The server revokes the token (here: the plugin now hands out a bad
     * one and the cached one is replaced by it after a 401). */
    kle_client_free(c);
    snprintf(p, sizeof(p), "%s/plugin-token", dir);
    kube_write_file(p, 0, "revoked-token");
    c = client_for("exec.kubeconfig", NULL);
    before = plugin_runs();
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EUNAUTHORIZED);
    /* First run, then one re-run after the 401. */
    assert_int_equal(plugin_runs(), before + 2);
    kube_write_file(p, 0, "ok-token-0123456789");
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    assert_int_equal(plugin_runs(), before + 3);

    /* An expired credential is fetched again before the request. */
    kle_client_free(c);
    write_timestamp("plugin-exp", -10);
    c = client_for("exec.kubeconfig", NULL);
    before = plugin_runs();
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    assert_int_equal(plugin_runs(), before + 2);
    kle_client_free(c);

    /* A plugin that hands out a client certificate instead of a token. */
    snprintf(p, sizeof(p), "%s/cert-plugin.sh", dir);
    kube_write_file(p, 1,
                    "#!/bin/sh\ncd \"$(dirname \"$0\")\"\nexec python3 -c '"
                    "import json; print(json.dumps({\"apiVersion\": "
                    "\"client.authentication.k8s.io/v1beta1\", \"kind\": \"ExecCredential\", "
                    "\"status\": {\"clientCertificateData\": open(\"user.crt\").read(), "
                    "\"clientKeyData\": open(\"user.key\").read()}}))'\n");
    kubeconfig("cert-plugin.kubeconfig",
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
               "      command: ./cert-plugin.sh\n",
               NULL, NULL);
    c = client_for("cert-plugin.kubeconfig", NULL);
    out = NULL;
    /* Client certificates end at an HTTP/2 front; only the direct run checks them. */
    if (!kle_test_http2() && kle_client_get(&out, c, CM, NULL) != 0)
        fail_msg("exec client certificate: %s", kle_error_last()->message);
    json_object_put(out);
    out = NULL;
    kle_client_free(c);

    /* A plugin that fails: the request fails with its error. */
    snprintf(p, sizeof(p), "%s/failing.sh", dir);
    kube_write_file(p, 1, "#!/bin/sh\nexit 4\n");
    kubeconfig("failing.kubeconfig",
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
               "      command: ./failing.sh\n",
               NULL, NULL);
    c = client_for("failing.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_EAUTH);
    assert_non_null(strstr(kle_error_last()->message, "GET " CM ": "));
    assert_non_null(strstr(kle_error_last()->message, "failing.sh\" exited with status 4"));
    kle_client_free(c);
}

struct canceller {
    kle_event *ev;
    int delay_ms;
    int64_t set_at_ms;
};

static void *cancel_later(void *arg)
{
    struct canceller *k = arg;
    struct timespec ts = {k->delay_ms / 1000, (long)(k->delay_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
    k->set_at_ms = now_ms();
    kle_event_set(k->ev);
    return NULL;
}

struct slow_get {
    kle_client *c;
    int rc;
};

static void *slow_get(void *arg)
{
    struct slow_get *g = arg;
    json_object *out = NULL;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 10000 * KLE_NS_PER_MS;
    g->rc = kle_client_get(&out, g->c, CM, &ro);
    json_object_put(out);
    return NULL;
}

static int never_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    return 0;
}

static void test_client__cancel_while_a_plugin_runs_elsewhere(void **state)
{
    /* One thread's request runs a slow exec plugin; a watch and a request
     * on other threads wait for the credential, yet their cancel and
     * timeout still hold. */
    char p[400];
    snprintf(p, sizeof(p), "%s/slow-plugin.sh", dir);
    kube_write_file(
        p, 1,
        "#!/bin/sh\nsleep 2\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
        "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"ok-token-0123456789\"}}'\n");
    kubeconfig("slow-plugin.kubeconfig",
               "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
               "      command: ./slow-plugin.sh\n",
               NULL, NULL);
    kle_client *c = client_for("slow-plugin.kubeconfig", NULL);
    struct slow_get g = {c, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_get, &g), 0);
    /* Give the first thread a head start so that it is likely the one
     * running the plugin; every assertion below holds in any order. */
    struct timespec pause = {0, 100 * 1000000};
    nanosleep(&pause, NULL);

    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    struct canceller k = {ev, 200, 0};
    pthread_t ct;
    assert_int_equal(pthread_create(&ct, NULL, cancel_later, &k), 0);
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.cancel = ev;
    assert_int_equal(kle_client_watch(c, CM, &wo, never_cb, NULL), KLE_ECANCELED);
    int64_t after = now_ms() - k.set_at_ms;
    pthread_join(ct, NULL);
    if (after > 100)
        fail_msg("watch returned %lld ms after cancel", (long long)after);

    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 200 * KLE_NS_PER_MS;
    json_object *out = NULL;
    int64_t start = now_ms();
    int rc = kle_client_get(&out, c, "/api/v1/namespaces/default", &ro);
    int64_t took = now_ms() - start;
    pthread_join(t, NULL);
    /* Whether it waited for the plugin or for the connection, its own
     * budget held. */
    if (rc != KLE_ETIMEOUT || took > 200 + 150)
        fail_msg("GET behind the plugin: %d after %lld ms: %s", rc, (long long)took,
                 kle_error_last()->message);
    assert_int_equal(g.rc, 0);
    kle_event_free(ev);
    kle_client_free(c);
}

static void test_client__tls_verification(void **state)
{
    json_object *out = NULL;
    char cmd[600], p[400];
    /* A CA that did not sign the server's certificate. */
    snprintf(cmd, sizeof(cmd), "cd '%s' && base64 -w0 wrong.crt > wrong.b64", dir);
    run(cmd);
    snprintf(p, sizeof(p), "%s/wrong.b64", dir);
    char *wrong = slurp(p);
    kubeconfig("wrong-ca.kubeconfig", "    token: ok-token-0123456789\n", NULL, wrong);
    free(wrong);
    kle_client *c = client_for("wrong-ca.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_ETRANSPORT);
    assert_non_null(strstr(kle_error_last()->message, "TLS certificate is not trusted"));
    kle_client_free(c);

    /* tls-server-name: verified against that name. */
    kubeconfig("sni-ok.kubeconfig", "    token: ok-token-0123456789\n",
               "    tls-server-name: localhost\n", NULL);
    c = client_for("sni-ok.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    kubeconfig("sni-bad.kubeconfig", "    token: ok-token-0123456789\n",
               "    tls-server-name: not-the-server.example\n", NULL);
    c = client_for("sni-bad.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_ETRANSPORT);
    kle_client_free(c);

    /* insecure-skip-tls-verify only when the kubeconfig says so. */
    kubeconfig("insecure.kubeconfig", "    token: ok-token-0123456789\n",
               "    insecure-skip-tls-verify: true\n", "");
    c = client_for("insecure.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    kubeconfig("system-ca.kubeconfig", "    token: ok-token-0123456789\n", NULL, "");
    c = client_for("system-ca.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), KLE_ETRANSPORT);
    kle_client_free(c);
}

static void test_client__in_cluster_and_default(void **state)
{
    char sa[400], p[500], cmd[8192];
    snprintf(sa, sizeof(sa), "%s/serviceaccount", dir);
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cd '%s' && echo '%s' | base64 -d > ca.crt", sa, sa,
             srv.ca_data);
    run(cmd);
    snprintf(p, sizeof(p), "%s/token", sa);
    kube_write_file(p, 0, "ok-token-0123456789\n");
    snprintf(p, sizeof(p), "%s/namespace", sa);
    kube_write_file(p, 0, "kube-system");
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", srv.port, 1);
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.serviceaccount_dir = sa;
    kle_client *c = NULL;
    assert_int_equal(kle_client_new_default(&c, &o), 0);
    assert_string_equal(kle_client_namespace(c), "kube-system");
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, "/api/v1/namespaces/kube-system/configmaps", NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    setenv("POD_NAMESPACE", "from-env", 1);
    assert_int_equal(kle_client_new_in_cluster(&c, &o), 0);
    assert_string_equal(kle_client_namespace(c), "from-env");
    kle_client_free(c);
    unsetenv("POD_NAMESPACE");
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");

    /* Not in a pod: the default is the kubeconfig; namespace override. */
    char kc[400];
    snprintf(kc, sizeof(kc), "%s/token.kubeconfig", dir);
    setenv("KUBECONFIG", kc, 1);
    o.namespace_ = "other";
    assert_int_equal(kle_client_new_default(&c, &o), 0);
    assert_string_equal(kle_client_namespace(c), "other");
    kle_client_free(c);
    unsetenv("KUBECONFIG");
}

/* ---- proxies, as kubectl: a real forward proxy (tinyproxy) ------------ */

static pid_t tinyproxy_pid;
static char tinyproxy_log[400];

static int tinyproxy_connects(const char *target)
{
    char want[200];
    snprintf(want, sizeof(want), "CONNECT %s ", target);
    char *log = slurp(tinyproxy_log);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, want)); p += strlen(want))
        n++;
    free(log);
    return n;
}

static unsigned start_tinyproxy(void)
{
    char tdir[400], conf[500];
    snprintf(tdir, sizeof(tdir), "%s/tinyproxy", dir);
    mkdir(tdir, 0777);
    chmod(tdir, 0777); /* tinyproxy may drop its privileges */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    unsigned port = ntohs(sa.sin_port);
    snprintf(tinyproxy_log, sizeof(tinyproxy_log), "%s/tinyproxy.log", tdir);
    snprintf(conf, sizeof(conf), "%s/tinyproxy.conf", tdir);
    kube_write_file(conf, 0,
                    "Port %u\nListen 127.0.0.1\nTimeout 60\nLogFile \"%s\"\nLogLevel Info\n"
                    "MaxClients 20\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
                    port, tinyproxy_log);
    chmod(conf, 0644);
    tinyproxy_pid = fork();
    assert_true(tinyproxy_pid >= 0);
    if (tinyproxy_pid == 0) {
        execlp("tinyproxy", "tinyproxy", "-d", "-c", conf, (char *)NULL);
        _exit(127);
    }
    int64_t end = now_ms() + 10000;
    for (;;) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        sa.sin_port = htons((unsigned short)port);
        int ok = connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(c);
        if (ok)
            break;
        if (now_ms() > end || waitpid(tinyproxy_pid, NULL, WNOHANG) == tinyproxy_pid)
            fail_msg("tinyproxy did not start (is it installed?)");
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return port;
}

/* HTTPS_PROXY/https_proxy, NO_PROXY/no_proxy and proxy-url behave as in
 * kubectl, through a real forward proxy: proxy-url always applies; the
 * environment applies unless NO_PROXY matches, and never to a loopback
 * server address (Go's rule); tls-server-name and an IPv6 loopback server
 * work through the proxy. */
static void test_client__proxies_as_kubectl(void **state)
{
    unsigned tp = start_tinyproxy();
    char proxy[64], target[160], yaml[300];
    snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%u", tp);
    const char *port = strrchr(srv.server, ':') + 1;
    json_object *out = NULL;

    /* proxy-url: used, for a loopback server too. */
    snprintf(yaml, sizeof(yaml), "    proxy-url: %s\n", proxy);
    kubeconfig("tp-url.kubeconfig", "    token: ok-token-0123456789\n", yaml, NULL);
    kle_client *c = client_for("tp-url.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    snprintf(target, sizeof(target), "127.0.0.1:%s", port);
    assert_int_equal(tinyproxy_connects(target), 1);

    /* HTTPS_PROXY with a loopback server: not proxied (as kubectl). */
    setenv("HTTPS_PROXY", proxy, 1);
    kubeconfig("tp-env.kubeconfig", "    token: ok-token-0123456789\n", NULL, NULL);
    c = client_for("tp-env.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    assert_int_equal(tinyproxy_connects(target), 1);

    /* A server named by a host name (this machine's, resolving to
     * loopback, which Go does not look up): proxied, the proxy resolves
     * it; tls-server-name verifies the certificate against "localhost". */
    char host[128], named[300];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    snprintf(named, sizeof(named), "%s/tp-named.kubeconfig", dir);
    snprintf(yaml, sizeof(yaml), "    tls-server-name: localhost\n");
    kubeconfig("tp-named.kubeconfig", "    token: ok-token-0123456789\n", yaml, NULL);
    char from[160], to[300];
    snprintf(from, sizeof(from), "server: %s", srv.server);
    snprintf(to, sizeof(to), "server: https://%s:%s", host, port);
    assert_int_equal(kle_test_replace_in_file(named, from, to), 0);
    c = client_for("tp-named.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    snprintf(target, sizeof(target), "%s:%s", host, port);
    assert_int_equal(tinyproxy_connects(target), 1);
    /* https_proxy (lower case) too, and NO_PROXY naming the host: direct. */
    unsetenv("HTTPS_PROXY");
    setenv("https_proxy", proxy, 1);
    c = client_for("tp-named.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    assert_int_equal(tinyproxy_connects(target), 2);
    setenv("NO_PROXY", host, 1);
    c = client_for("tp-named.kubeconfig", NULL);
    assert_int_equal(kle_client_get(&out, c, CM, NULL), 0);
    json_object_put(out);
    kle_client_free(c);
    assert_int_equal(tinyproxy_connects(target), 2);
    unsetenv("NO_PROXY");
    unsetenv("https_proxy");

    /* An IPv6 loopback server through proxy-url (the direct run only: the
     * HTTP/2 front listens on IPv4). */
    if (!kle_test_http2()) {
        kube_server v6;
        static const char *const flags[] = {"--listen", "[::1]:0", NULL};
        if (kube_server_start(&v6, dir, flags) != 0)
            fail_msg("kle-apiserver on [::1] did not start");
        assert_non_null(strstr(v6.server, "https://[::1]:"));
        char v6kc[400];
        snprintf(v6kc, sizeof(v6kc), "%s/tp-v6.kubeconfig", dir);
        kube_write_file(v6kc, 0,
                        "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                        "clusters:\n- name: c\n  cluster:\n    server: %s\n"
                        "    certificate-authority-data: %s\n    proxy-url: %s\n"
                        "users:\n- name: u\n  user:\n    token: %s\n"
                        "contexts:\n- name: t\n  context: {cluster: c, user: u}\n",
                        v6.server, v6.ca_data, proxy, v6.token);
        c = client_for("tp-v6.kubeconfig", NULL);
        assert_int_equal(kle_client_get(&out, c, "/api/v1/namespaces/default", NULL), 0);
        json_object_put(out);
        kle_client_free(c);
        snprintf(target, sizeof(target), "[::1]:%s", strrchr(v6.server, ':') + 1);
        assert_int_equal(tinyproxy_connects(target), 1);
        kube_server_stop(&v6);
    }
    kill(tinyproxy_pid, SIGTERM);
    waitpid(tinyproxy_pid, NULL, 0);
}

/* One plain-HTTP exchange on a loopback socket, recording the request. */
struct capture {
    int fd;
    char request[8192];
};

static void *capture_one(void *arg)
{
    struct capture *cap = arg;
    int conn = accept(cap->fd, NULL, NULL);
    if (conn < 0)
        return NULL;
    size_t n = 0;
    while (n < sizeof(cap->request) - 1 && !strstr(cap->request, "\r\n\r\n")) {
        ssize_t r = read(conn, cap->request + n, sizeof(cap->request) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        cap->request[n] = '\0';
    }
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 "Content-Length: 10\r\nConnection: close\r\n\r\n{\"a\":\"b\"}\n";
    ssize_t w = write(conn, answer, sizeof(answer) - 1);
    (void)w;
    close(conn);
    return NULL;
}

static void test_client__basic_auth_and_headers_on_the_wire(void **state)
{
    struct capture cap = {socket(AF_INET, SOCK_STREAM, 0), ""};
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(cap.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(cap.fd, 1), 0);
    assert_int_equal(getsockname(cap.fd, (struct sockaddr *)&sa, &sl), 0);
    char p[400];
    snprintf(p, sizeof(p), "%s/basic.kubeconfig", dir);
    kube_write_file(p, 0,
                    "current-context: t\nclusters:\n- name: c\n  cluster:\n"
                    "    server: http://127.0.0.1:%d/prefix\n"
                    "users:\n- name: u\n  user: {username: admin, password: s3cret-pw}\n"
                    "contexts:\n- name: t\n  context: {cluster: c, user: u}\n",
                    ntohs(sa.sin_port));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, capture_one, &cap), 0);
    kle_client *c = client_for("basic.kubeconfig", NULL);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, "/api/v1/namespaces", NULL), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(out, "a")), "b");
    json_object_put(out);
    pthread_join(t, NULL);
    close(cap.fd);
    assert_memory_equal(cap.request, "GET /prefix/api/v1/namespaces HTTP/1.1\r\n", 40);
    /* base64("admin:s3cret-pw") */
    assert_non_null(strstr(cap.request, "\r\nAuthorization: Basic YWRtaW46czNjcmV0LXB3\r\n"));
    assert_non_null(strstr(cap.request, "\r\nAccept: application/json\r\n"));
    char ua[128];
    snprintf(ua, sizeof(ua), "\r\nUser-Agent: %s\r\n", kle_client_user_agent(c));
    assert_non_null(strstr(cap.request, ua));
    assert_non_null(strstr(kle_client_user_agent(c), "kle/0."));
    kle_client_free(c);
    assert_int_equal(kle_log_flush_ns(KLE_MS(5000)),
                     0); /* lines reach the handler on the drain thread */
    pthread_mutex_lock(&log_mu);
    assert_null(strstr(log_text, "YWRtaW46czNjcmV0LXB3"));
    assert_null(strstr(log_text, "s3cret-pw"));
    pthread_mutex_unlock(&log_mu);
}

static void test_client__proxy_url(void **state)
{
    char port_file[400], log_file[400], script[600];
    snprintf(port_file, sizeof(port_file), "%s/proxy.port", dir);
    snprintf(log_file, sizeof(log_file), "%s/proxy.log", dir);
    snprintf(script, sizeof(script), "%s/connect_proxy.py", KLE_KUBE_TEST_DIR);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("python3", "python3", script, port_file, log_file, (char *)NULL);
        _exit(127);
    }
    struct stat st;
    int64_t deadline = now_ms() + 10000;
    while (stat(port_file, &st) != 0 && now_ms() < deadline) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    char *port = slurp(port_file);
    assert_non_null(port);
    char proxy[200];
    snprintf(proxy, sizeof(proxy), "    proxy-url: http://127.0.0.1:%s\n", port);
    free(port);
    kubeconfig("proxy.kubeconfig", "    token: ok-token-0123456789\n", proxy, NULL);
    kle_client *c = client_for("proxy.kubeconfig", NULL);
    json_object *out = NULL;
    int rc = kle_client_get(&out, c, CM, NULL);
    json_object_put(out);
    kle_client_free(c);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (rc != 0)
        fail_msg("GET through the proxy: %s", kle_error_last()->message);
    char *log = slurp(log_file);
    assert_non_null(log);
    char want[64];
    snprintf(want, sizeof(want), "127.0.0.1:%s\n", srv.port);
    assert_string_equal(log, want);
    free(log);
}

/* ---- watch ------------------------------------------------------------- */

struct watch_state {
    kle_client *c;
    int listed, modified, added;
    int step;
    char last_v[64];
    json_object *last_list;
};

static void update_v(kle_client *c, const char *name, const char *v)
{
    char path[200];
    snprintf(path, sizeof(path), CM "/%s", name);
    json_object *patch = json_object_new_object(), *d = json_object_new_object();
    json_object_object_add(d, "v", json_object_new_string(v));
    json_object_object_add(patch, "data", d);
    if (kle_client_patch(NULL, c, path, KLE_PATCH_MERGE, patch, NULL) != 0)
        fail_msg("patch %s: %s", path, kle_error_last()->message);
    json_object_put(patch);
}

static int resume_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    struct watch_state *w = data;
    if (type == KLE_WATCH_LISTED) {
        w->listed++;
        update_v(w->c, "watched", "v1");
        return 0;
    }
    if (type == KLE_WATCH_BOOKMARK)
        return 0;
    w->modified += type == KLE_WATCH_MODIFIED;
    snprintf(w->last_v, sizeof(w->last_v), "%s", data_v(obj) ? data_v(obj) : "");
    if (strcmp(w->last_v, "v1") == 0) {
        /* Drop the stream, then change the object while no stream is open:
         * the watch must resume from v1's resourceVersion and see v2. */
        assert_true(kube_server_admin(&srv, "POST", "/watches/close", NULL) / 100 == 2);
        update_v(w->c, "watched", "v2");
        return 0;
    }
    return strcmp(w->last_v, "v2") == 0 ? 1 : 0;
}

static void test_client__watch_resumes_after_a_dropped_stream(void **state)
{
    kle_client *c = client_for("token.kubeconfig", NULL);
    json_object *body = configmap("watched", "v0");
    assert_int_equal(kle_client_create(NULL, c, CM, body, NULL), 0);
    json_object_put(body);
    struct watch_state w = {.c = c};
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.field_selector = "metadata.name=watched";
    wo.timeout_ns = 15000 * KLE_NS_PER_MS;
    char last[64] = "";
    wo.last_resource_version = last;
    wo.last_resource_version_size = sizeof(last);
    int64_t start = now_ms();
    assert_int_equal(kle_client_watch(c, CM, &wo, resume_cb, &w), 0);
    assert_true(now_ms() - start < 10000);
    assert_int_equal(w.listed, 1);
    assert_string_equal(w.last_v, "v2");
    assert_int_equal(w.modified, 2);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, CM "/watched", NULL), 0);
    assert_string_equal(last, rv_of(out));
    json_object_put(out);
    kle_client_free(c);
}

static int relist_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    struct watch_state *w = data;
    if (type == KLE_WATCH_LISTED) {
        w->listed++;
        json_object_put(w->last_list);
        w->last_list = json_object_get(obj);
        return 1;
    }
    if (type == KLE_WATCH_ADDED || type == KLE_WATCH_MODIFIED)
        w->modified++;
    return 0;
}

static void test_client__watch_relists_after_410(void **state)
{
    kle_client *c = client_for("token.kubeconfig", NULL);
    json_object *body = configmap("old-rv", "v0"), *out = NULL;
    assert_int_equal(kle_client_create(&out, c, CM, body, NULL), 0);
    char old_rv[64];
    snprintf(old_rv, sizeof(old_rv), "%s", rv_of(out));
    json_object_put(out);
    json_object_put(body);
    /* More changes than the server keeps (--watch-history 8). */
    for (int i = 1; i <= 12; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        update_v(c, "old-rv", v);
    }
    struct watch_state w = {.c = c};
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.resource_version = old_rv;
    wo.field_selector = "metadata.name=old-rv";
    wo.timeout_ns = 10000 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_watch(c, CM, &wo, relist_cb, &w), 0);
    assert_int_equal(w.listed, 1);
    assert_int_equal(w.modified, 0);
    json_object *items;
    assert_true(json_object_object_get_ex(w.last_list, "items", &items));
    assert_int_equal(json_object_array_length(items), 1);
    assert_string_equal(data_v(json_object_array_get_idx(items, 0)), "v12");
    json_object_put(w.last_list);
    kle_client_free(c);
}

static int error_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    return 0;
}

static int negative_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    return type == KLE_WATCH_LISTED ? -77 : 0;
}

struct hammer {
    kle_client *c;
    int failures;
};

static void *hammer_gets(void *arg)
{
    struct hammer *h = arg;
    for (int i = 0; i < 25; i++) {
        json_object *out = NULL;
        if (kle_client_get(&out, h->c, "/api/v1/namespaces/default", NULL) != 0)
            h->failures++;
        json_object_put(out);
    }
    return NULL;
}

static void test_client__shared_by_threads(void **state)
{
    kle_client *c = client_for("token.kubeconfig", NULL);
    struct hammer h[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){c, 0};
        assert_int_equal(pthread_create(&t[i], NULL, hammer_gets, &h[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(h[i].failures, 0);
    }
    /* 100 requests from 4 threads run concurrently, each on a connection
     * of its own, and the connections are reused: at most one per thread. */
    long conns = kle_kube__client_connections(c);
    assert_true(conns >= 1 && conns <= 4);
    /* Sequential requests keep reusing an idle connection. */
    for (int i = 0; i < 5; i++) {
        json_object *o = NULL;
        assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", NULL), 0);
        json_object_put(o);
    }
    assert_int_equal(kle_kube__client_connections(c), conns);

    /* A callback's negative value ends the watch and is returned. */
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.timeout_ns = 5000 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_watch(c, CM, &wo, negative_cb, NULL), -77);
    kle_client_free(c);
}

static int bookmark_cb(kle_watch_event_type type, json_object *obj, void *data)
{
    int *bookmarks = data;
    if (type != KLE_WATCH_BOOKMARK)
        return 0;
    assert_non_null(rv_of(obj));
    return ++*bookmarks == 2;
}

static void test_client__watch_bookmarks(void **state)
{
    /* A server of its own that sends a BOOKMARK every second. */
    kube_server bs;
    static const char *const flags[] = {"--bookmark-interval", "1", NULL};
    if (kube_server_start(&bs, dir, flags) != 0)
        fail_msg("kle-apiserver did not start");
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = bs.kubeconfig;
    kle_client *c = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), 0);
    int bookmarks = 0;
    char last[64] = "";
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.timeout_ns = 10000 * KLE_NS_PER_MS;
    wo.last_resource_version = last;
    wo.last_resource_version_size = sizeof(last);
    assert_int_equal(kle_client_watch(c, CM, &wo, bookmark_cb, &bookmarks), 0);
    assert_int_equal(bookmarks, 2);
    assert_true(last[0] != '\0');
    kle_client_free(c);
    kube_server_stop(&bs);
}

static void test_client__watch_errors_end_the_watch(void **state)
{
    kle_client *lim = client_for("limited.kubeconfig", NULL);
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.timeout_ns = 5000 * KLE_NS_PER_MS;
    wo.resource_version = "1";
    assert_int_equal(kle_client_watch(lim, CM, &wo, error_cb, NULL), KLE_EFORBIDDEN);
    assert_non_null(strstr(kle_error_last()->message, "WATCH " CM "?watch=true"));
    kle_client_free(lim);
}

/* ---- timeouts and cancellation under a black hole ---------------------- */

struct bg_req {
    kle_client *c;
    int rc;
    char msg[512];
};

static void *stuck_get(void *arg)
{
    struct bg_req *b = arg;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    json_object *out = NULL;
    ro.timeout_ns = 1000 * KLE_NS_PER_MS;
    b->rc = kle_client_get(&out, b->c, CM "/x", &ro);
    snprintf(b->msg, sizeof(b->msg), "%s", kle_error_last()->message);
    json_object_put(out);
    return NULL;
}

static void test_client__blackhole_never_blocks_past_timeout(void **state)
{
    kle_client *c = client_for("token.kubeconfig", NULL);
    json_object *out = NULL;
    assert_true(kube_server_admin(&srv, "POST", "/faults", "{\"blackhole\":true}") / 100 == 2);

    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 300 * KLE_NS_PER_MS;
    for (int i = 0; i < 3; i++) {
        int64_t start = now_ms();
        json_object *body = configmap("bh", "x");
        int rc = i == 0   ? kle_client_get(&out, c, CM "/x", &ro)
                 : i == 1 ? kle_client_create(NULL, c, CM, body, &ro)
                          : kle_client_update(NULL, c, CM "/bh", body, &ro);
        json_object_put(body);
        int64_t took = now_ms() - start;
        if (rc != KLE_ETIMEOUT)
            fail_msg("call %d: %d %s", i, rc, kle_error_last()->message);
        assert_true(took >= 290);
        if (took > 300 + 150)
            fail_msg("call %d took %lld ms with a 300 ms timeout", i, (long long)took);
    }
    assert_non_null(strstr(kle_error_last()->message, "PUT " CM "/bh: "));

    /* A watch: the total timeout ends it (0), no matter how streams hang. */
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.timeout_ns = 400 * KLE_NS_PER_MS;
    int64_t start = now_ms();
    assert_int_equal(kle_client_watch(c, CM, &wo, error_cb, NULL), 0);
    assert_true(now_ms() - start < 400 + 150);

    /* Cancellation from another thread returns within 100 ms. */
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    struct canceller k = {ev, 200, 0};
    pthread_t t;
    ro.timeout_ns = 10000 * KLE_NS_PER_MS;
    ro.cancel = ev;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    assert_int_equal(kle_client_get(&out, c, CM "/x", &ro), KLE_ECANCELED);
    int64_t after = now_ms() - k.set_at_ms;
    pthread_join(t, NULL);
    if (after > 100)
        fail_msg("GET returned %lld ms after cancel", (long long)after);

    kle_event_reset(ev);
    wo.timeout_ns = 0 * KLE_NS_PER_MS;
    wo.cancel = ev;
    assert_int_equal(pthread_create(&t, NULL, cancel_later, &k), 0);
    assert_int_equal(kle_client_watch(c, CM, &wo, error_cb, NULL), KLE_ECANCELED);
    after = now_ms() - k.set_at_ms;
    pthread_join(t, NULL);
    if (after > 100)
        fail_msg("watch returned %lld ms after cancel", (long long)after);

    /* A request waiting behind a stuck one on the same client keeps its
     * own timeout (whichever of the two gets the connection first). */
    struct bg_req bg = {c, 0, ""};
    pthread_t stuck;
    assert_int_equal(pthread_create(&stuck, NULL, stuck_get, &bg), 0);
    ro.cancel = NULL;
    ro.timeout_ns = 300 * KLE_NS_PER_MS;
    start = now_ms();
    int qrc = kle_client_get(&out, c, CM "/y", &ro);
    if (qrc != KLE_ETIMEOUT)
        fail_msg("queued GET: %d %s", qrc, kle_error_last()->message);
    if (now_ms() - start > 300 + 150)
        fail_msg("a queued GET took %lld ms with a 300 ms timeout", (long long)(now_ms() - start));
    pthread_join(stuck, NULL);
    if (bg.rc != KLE_ETIMEOUT)
        fail_msg("stuck GET: %d %s", bg.rc, bg.msg);
    kle_event_free(ev);

    assert_true(kube_server_admin(&srv, "DELETE", "/faults", NULL) / 100 == 2);
    /* The client works again once the fault is gone. */
    ro.cancel = NULL;
    ro.timeout_ns = 5000 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_get(&out, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(out);
    kle_client_free(c);
}

/* ---- the protocol ------------------------------------------------------- */

/* The run with KLE_TEST_HTTP=2 really speaks HTTP/2 (negotiated by ALPN
 * with the nghttpx front); the direct run HTTP/1.1 (kle-apiserver). */
static void test_client__negotiated_http_version(void **state)
{
    kle_client *c = client_for("token.kubeconfig", NULL);
    assert_int_equal(kle_kube__client_http_version(c), 0);
    json_object *out = NULL;
    assert_int_equal(kle_client_get(&out, c, "/api/v1/namespaces/default", NULL), 0);
    json_object_put(out);
    long want = kle_test_http2() ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_1_1;
    assert_int_equal(kle_kube__client_http_version(c), want);
    /* The verbosity-6 request line names it too. */
    pthread_mutex_lock(&log_mu);
    const char *line = strstr(log_text, "/api/v1/namespaces/default 200 in");
    assert_non_null(line);
    const char *eol = strchr(line, '\n');
    char copy[512];
    snprintf(copy, sizeof(copy), "%.*s", (int)(eol - line), line);
    pthread_mutex_unlock(&log_mu);
    assert_non_null(strstr(copy, kle_test_http2() ? "HTTP/2" : "HTTP/1.1"));
    kle_client_free(c);
}

/* ---- secrets ----------------------------------------------------------- */

static void test_client__no_secret_in_logs(void **state)
{
    /* Every test above ran with verbosity 10 and a capturing handler. */
    assert_int_equal(kle_log_flush_ns(KLE_MS(5000)), 0);
    pthread_mutex_lock(&log_mu);
    assert_non_null(log_text);
    assert_non_null(strstr(log_text, "GET "));
    static const char *secrets[] = {"ok-token-0123456789",
                                    "limited-token-0123456789",
                                    "revoked-token",
                                    "not-a-valid-token",
                                    "PRIVATE KEY",
                                    "Bearer ok",
                                    "Bearer l",
                                    "Bearer r",
                                    "Bearer n"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(log_text, secrets[i]))
            fail_msg("the log contains \"%s\"", secrets[i]);
    /* Key material: any 24-character run of the client key's base64. */
    char p[400];
    snprintf(p, sizeof(p), "%s/user.key", dir);
    char *key = slurp(p);
    assert_non_null(key);
    char *line = strstr(key, "\n") + 1;
    for (int off = 0; off + 24 < 60 && line[off + 24]; off += 8) {
        char run_[25];
        memcpy(run_, line + off, 24);
        run_[24] = '\0';
        if (strstr(log_text, run_))
            fail_msg("the log contains client key material");
    }
    if (strstr(log_text, srv.token))
        fail_msg("the log contains the admin token");
    free(key);
    pthread_mutex_unlock(&log_mu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client__crud_with_token),
        cmocka_unit_test(test_client__error_mapping),
        cmocka_unit_test(test_client__response_cap),
        cmocka_unit_test(test_client__token_file_rotated_while_running),
        cmocka_unit_test(test_client__client_certificate),
        cmocka_unit_test(test_client__tls_files_rotated_while_running),
        cmocka_unit_test(test_client__exec_plugin),
        cmocka_unit_test(test_client__exec_plugin_in_the_background),
        cmocka_unit_test(test_client__cancel_while_a_plugin_runs_elsewhere),
        cmocka_unit_test(test_client__tls_verification),
        cmocka_unit_test(test_client__in_cluster_and_default),
        cmocka_unit_test(test_client__basic_auth_and_headers_on_the_wire),
        cmocka_unit_test(test_client__proxy_url),
        cmocka_unit_test(test_client__proxies_as_kubectl),
        cmocka_unit_test(test_client__watch_resumes_after_a_dropped_stream),
        cmocka_unit_test(test_client__watch_relists_after_410),
        cmocka_unit_test(test_client__watch_errors_end_the_watch),
        cmocka_unit_test(test_client__watch_bookmarks),
        cmocka_unit_test(test_client__shared_by_threads),
        cmocka_unit_test(test_client__blackhole_never_blocks_past_timeout),
        cmocka_unit_test(test_client__negotiated_http_version),
        cmocka_unit_test(test_client__no_secret_in_logs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
