/*
 * Credentials that change under a running elector. kle-apiserver issues
 * short-lived client certificates and tokens (--issue-credentials, POST
 * /credentials); an elector leads while they are rotated, and must keep
 * leading through every rotation: one started-leading and no
 * stopped-leading in its LEAD/STOP log. Each case runs STEPS rotations,
 * STEP_MS apart, of credentials that live TTL_S seconds, so every old one
 * expires while the elector leads; after each step the fault relay resets
 * the elector's connections (a load balancer's failover), so that new
 * connections are opened after the old credential expired:
 *
 * - cert:   a client certificate and key in one file, rotated as kubelet
 *           does: an atomic symlink swap, and a file renamed over it;
 * - token:  a token file, rewritten (renamed over);
 * - exec:   an exec plugin returning tokens with an expirationTimestamp;
 * - ca:     the CA file: old+new bundle, then the server's certificate
 *           (kle-apiserver's, or the HTTP/2 front's) switches to the new
 *           CA, then the bundle drops the old CA.
 *
 * Runs once over HTTP/1.1 and once over HTTP/2 (KLE_TEST_HTTP=2: an
 * nghttpx front of the test's own before kle-apiserver; for client
 * certificates it verifies them itself, at the handshake). The log runs at
 * verbosity 10 and must not contain any issued token or key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/locks.h"
#include "kube/kube.h"
#include "support/apiserver.h"
#include "support/relay.h"

#include "support/log_capture.h"

#define LEASE_MS 8000
#define RENEW_MS 6000
#define RETRY_MS 1000
#define TTL_S    3
#define STEP_MS  1500
#define STEPS    5

static kle_test_apiserver srv;
static int http2;
static const char *proto;
static char dir[256], certs[320];
static kle_test_h2front front, cert_front; /* HTTP/2 only */
static char secrets[64][256];
static int nsecrets;

static int64_t mono_ms(void)
{
    return kle_test_relay_now_ns() / 1000000;
}

static void remember_secret(const char *s)
{
    if (nsecrets < 64)
        snprintf(secrets[nsecrets++], sizeof(secrets[0]), "%s", s);
}

static unsigned port_of(const char *url)
{
    const char *colon = strrchr(url, ':');
    return colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
}

static int start_front(kle_test_h2front *f, const char *cert, const char *key, unsigned port,
                       int verify_client)
{
    char ca[400], verify_ca[400], auth[300];
    snprintf(ca, sizeof(ca), "%s/ca.crt", certs);
    snprintf(verify_ca, sizeof(verify_ca), "--verify-client-cacert=%s/client-ca.crt", certs);
    /* Client certificates end at the front, which then speaks to the
     * server as the admin. */
    snprintf(auth, sizeof(auth), "--add-request-header=Authorization: Bearer %s", srv.token);
    const char *extra[] = {"--verify-client", verify_ca, auth, NULL};
    kle_test_h2front_opts o = {cert, key, ca, dir, srv.port, port, verify_client ? extra : NULL};
    return kle_test_h2front_start_opts(f, &o);
}

static int setup(void **state)
{
    (void)state;
    http2 = kle_test_http2();
    proto = http2 ? "HTTP/2" : "HTTP/1.1";
    /* This test starts its own fronts. */
    unsetenv("KLE_TEST_HTTP");
    kle_log_set_handler(capture_log, NULL);
    kle_log_set_verbosity(10);
    if (kle_test_tempdir(dir, sizeof(dir)) != 0)
        return -1;
    char data[300];
    snprintf(data, sizeof(data), "%s/data", dir);
    const char *args[] = {"--issue-credentials", "--data-dir", data, NULL};
    if (kle_test_apiserver_start(&srv, args) != 0)
        return -1;
    snprintf(certs, sizeof(certs), "%s/certs", srv.dir);
    if (http2) {
        char crt[400], key[400];
        snprintf(crt, sizeof(crt), "%s/serving.crt", certs);
        snprintf(key, sizeof(key), "%s/serving.key", certs);
        if (start_front(&front, crt, key, 0, 0) != 0 || start_front(&cert_front, crt, key, 0, 1))
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kle_log_set_handler(NULL, NULL);
    kle_log_set_verbosity(0);
    kle_test_h2front_stop(&front);
    kle_test_h2front_stop(&cert_front);
    int rc = kle_test_apiserver_stop(&srv);
    kle_test_rmtree(dir);
    free(log_text);
    return rc == 0 ? 0 : -1;
}

/* ---- credentials -------------------------------------------------------- */

/* Asks kle-apiserver for a credential; returns the answer (caller puts). */
static json_object *issue(const char *kind, const char *user)
{
    char body[256], out[8192];
    snprintf(body, sizeof(body),
             "{\"kind\":\"%s\",\"user\":\"%s\",\"groups\":[\"system:masters\"],"
             "\"ttlSeconds\":%d}",
             kind, user, TTL_S);
    int code = kle_test_apiserver_admin(&srv, "POST", "/credentials", body, out, sizeof(out));
    if (code != 201)
        fail_msg("POST /credentials %s: %d %s", kind, code, out);
    json_object *o = json_tokener_parse(out);
    assert_non_null(o);
    return o;
}

static const char *field(json_object *o, const char *k)
{
    json_object *v;
    assert_true(json_object_object_get_ex(o, k, &v));
    return json_object_get_string(v);
}

static void write_atomic(const char *path, const char *text)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    assert_int_equal(kle_test_write_file(tmp, text), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if (system(cmd) != 0)
        fail_msg("failed: %s", cmd);
}

/* The second line of a PEM key: enough to recognise it in a log. */
static void remember_key(const char *pem)
{
    const char *nl = strchr(pem, '\n');
    char line[128];
    if (!nl)
        return;
    snprintf(line, sizeof(line), "%.40s", nl + 1);
    remember_secret(line);
}

/* cert: kubelet-style rotation of one file holding certificate and key.
 * Odd steps swap a symlink (current.pem -> client-N.pem) atomically, even
 * steps rename a new regular file over it. */
static void rotate_cert(int step)
{
    json_object *o = issue("certificate", "rotation-cert");
    char text[8192], path[400], link[400], tmp[400];
    snprintf(text, sizeof(text), "%s%s", field(o, "certificate"), field(o, "key"));
    remember_key(field(o, "key"));
    json_object_put(o);
    snprintf(link, sizeof(link), "%s/current.pem", dir);
    if (step % 2 == 0) {
        snprintf(path, sizeof(path), "%s/client-%d.pem", dir, step);
        assert_int_equal(kle_test_write_file(path, text), 0);
        snprintf(tmp, sizeof(tmp), "%s/current.pem.link", dir);
        unlink(tmp);
        assert_int_equal(symlink(path, tmp), 0);
        assert_int_equal(rename(tmp, link), 0);
    } else {
        write_atomic(link, text);
    }
}

static void rotate_token(int step)
{
    (void)step;
    json_object *o = issue("token", "rotation-token");
    char path[400];
    snprintf(path, sizeof(path), "%s/token", dir);
    remember_secret(field(o, "token"));
    write_atomic(path, field(o, "token"));
    json_object_put(o);
}

static char new_ca[400], ca_bundle[400];

/* ca: step 1 the bundle holds old and new CA; step 2 the server's
 * certificate switches to the new CA; step 3 the bundle drops the old. */
static void rotate_ca(int step)
{
    char old_ca[400];
    snprintf(old_ca, sizeof(old_ca), "%s/ca.crt", certs);
    if (step == 1) {
        sh("cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
           "-keyout ca2.key -out ca2.crt -days 2 -subj /CN=kle-test-ca-2 "
           "-addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null && "
           "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s2.key "
           "-out s2.csr -subj /CN=kle-apiserver 2>/dev/null && "
           "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=critical,"
           "CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > s2.ext && "
           "openssl x509 -req -in s2.csr -CA ca2.crt -CAkey ca2.key -CAcreateserial -days 2 "
           "-extfile s2.ext -out s2.crt 2>/dev/null && "
           "cat '%s' ca2.crt > bundle.new && mv bundle.new '%s'",
           dir, old_ca, ca_bundle);
        snprintf(new_ca, sizeof(new_ca), "%s/ca2.crt", dir);
    } else if (step == 2) {
        char crt[400], key[400];
        snprintf(crt, sizeof(crt), "%s/s2.crt", dir);
        snprintf(key, sizeof(key), "%s/s2.key", dir);
        if (http2) {
            unsigned port = front.port;
            kle_test_h2front_stop(&front);
            if (start_front(&front, crt, key, port, 0) != 0)
                fail_msg("the HTTP/2 front did not restart with the new certificate");
        } else {
            /* kle-apiserver restarts on its port with its objects
             * (--data-dir) and the new serving certificate. */
            sh("cp '%s/s2.crt' '%s/serving.crt' && cp '%s/s2.key' '%s/serving.key' && "
               "cp '%s/ca2.crt' '%s/ca.crt'",
               dir, certs, dir, certs, dir, certs);
            if (kle_test_apiserver_restart(&srv) != 0)
                fail_msg("kle-apiserver did not restart with the new certificate");
        }
    } else if (step == 3) {
        sh("cp '%s' '%s.new' && mv '%s.new' '%s'", new_ca, ca_bundle, ca_bundle, ca_bundle);
    }
}

/* ---- the elector --------------------------------------------------------- */

static pthread_mutex_t ev_mu = PTHREAD_MUTEX_INITIALIZER;
static int started, stopped_n;
static char events[4096];

static void note(const char *what)
{
    pthread_mutex_lock(&ev_mu);
    size_t l = strlen(events);
    snprintf(events + l, sizeof(events) - l, "%lld %s\n", (long long)mono_ms(), what);
    pthread_mutex_unlock(&ev_mu);
}

static void on_lead(kle_leading *l, void *d)
{
    (void)d;
    pthread_mutex_lock(&ev_mu);
    started++;
    pthread_mutex_unlock(&ev_mu);
    note("LEAD");
    kle_leading_wait_ns(l, -1);
}

static void on_stop(void *d)
{
    (void)d;
    pthread_mutex_lock(&ev_mu);
    stopped_n++;
    pthread_mutex_unlock(&ev_mu);
    note("STOP");
}

struct run {
    kle_elector *e;
    int rc;
};

static void *run_elector(void *arg)
{
    struct run *r = arg;
    r->rc = kle_elector_run(r->e);
    return NULL;
}

static int leading_counts(int *s, int *t)
{
    pthread_mutex_lock(&ev_mu);
    *s = started;
    *t = stopped_n;
    pthread_mutex_unlock(&ev_mu);
    return *s == 1 && *t == 0;
}

/* Writes a kubeconfig for server url with the CA file and the user
 * fragment (YAML lines under "user:"). */
static void write_kubeconfig(const char *path, const char *url, const char *ca, const char *user)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
             "    server: %s\n    certificate-authority: %s\n"
             "users:\n- name: u\n  user:\n%s"
             "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: default}\n"
             "current-context: x\n",
             url, ca, user);
    assert_int_equal(kle_test_write_file(path, text), 0);
}

/* Leads with the credentials of user_yaml while rotate(step) runs STEPS
 * times; the elector must keep leading throughout. */
static void lead_through(const char *name, unsigned target, const char *user_yaml,
                         void (*rotate)(int))
{
    char kc[400], ca[400], url[64], lock[64];
    kle_test_relay *r = NULL;
    assert_int_equal(kle_test_relay_start(&r, target), 0);
    snprintf(url, sizeof(url), "https://127.0.0.1:%u", kle_test_relay_port(r));
    snprintf(ca, sizeof(ca), "%s/ca-%s.pem", dir, name);
    snprintf(ca_bundle, sizeof(ca_bundle), "%s", ca);
    sh("cp '%s/ca.crt' '%s'", certs, ca);
    snprintf(kc, sizeof(kc), "%s/%s.kubeconfig", dir, name);
    write_kubeconfig(kc, url, ca, user_yaml);

    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = kc;
    kle_client *client = NULL;
    if (kle_client_new_from_kubeconfig(&client, &co) != 0)
        fail_msg("%s: client: %s", name, kle_error_last()->message);
    snprintf(lock, sizeof(lock), "rotation-%s", name);
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = lock;
    lo.identity = name;
    lo.record_events = 0;
    kle_elector_config ec = KLE_ELECTOR_CONFIG_INIT;
    if (kle_lock_new_by_name(&ec.lock, "leases", client, &lo) != 0)
        fail_msg("lock: %s", kle_error_last()->message);
    ec.lease_duration_ns = KLE_MS(LEASE_MS);
    ec.renew_deadline_ns = KLE_MS(RENEW_MS);
    ec.retry_period_ns = KLE_MS(RETRY_MS);
    ec.callbacks.on_started_leading = on_lead;
    ec.callbacks.on_stopped_leading = on_stop;
    pthread_mutex_lock(&ev_mu);
    started = stopped_n = 0;
    events[0] = '\0';
    pthread_mutex_unlock(&ev_mu);
    struct run run = {0};
    if (kle_elector_new(&run.e, &ec) != 0)
        fail_msg("elector: %s", kle_error_last()->message);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_elector, &run), 0);
    int64_t end = mono_ms() + 15000;
    int s = 0, t = 0, ok = 0;
    /* Leading, and on_started_leading has run. */
    while (!(ok = leading_counts(&s, &t) && kle_elector_is_leader(run.e)) && mono_ms() < end)
        poll(NULL, 0, 10);
    for (int step = 1; ok && step <= STEPS; step++) {
        if (rotate)
            rotate(step);
        note("ROTATED");
        int64_t until = mono_ms() + STEP_MS;
        while (ok && mono_ms() < until) {
            ok = leading_counts(&s, &t) && kle_elector_is_leader(run.e);
            poll(NULL, 0, 20);
        }
        /* A load balancer's failover: the next requests open new
         * connections, after the previous credential expired. */
        kle_test_relay_reset(r);
        note("RESET");
    }
    ok = ok && leading_counts(&s, &t) && kle_elector_is_leader(run.e);
    /* Connections the relay accepted (the watch's too: over HTTP/2 the
     * calls share whichever connection is open, the watch's included). */
    long version = kle_kube__client_http_version(client), conns = kle_test_relay_accepted(r);
    kle_elector_stop(run.e);
    pthread_join(th, NULL);
    kle_elector_free(run.e);
    kle_client_free(client);
    kle_test_relay_stop(r);
    leading_counts(&s, &t);
    if (!ok) {
        fprintf(stderr, "LEAD/STOP log (ms):\n%s", events);
        /* The library's last lines (verbosity 10: every request). */
        kle_log_flush_ns(KLE_MS(2000));
        pthread_mutex_lock(&log_mu);
        size_t from = log_len > 6000 ? log_len - 6000 : 0;
        fprintf(stderr, "the log's last lines:\n%s\n", log_text ? log_text + from : "");
        pthread_mutex_unlock(&log_mu);
        fail_msg("%s over %s: the elector did not keep leading through the rotations "
                 "(started %d, stopped %d)",
                 name, proto, s, t);
    }
    /* The protocol is the one asked for, and the rotations did open new
     * connections. */
    assert_int_equal(version, http2 ? CURL_HTTP_VERSION_2_0 : CURL_HTTP_VERSION_1_1);
    assert_true(conns >= 2);
    printf("%s over %s: led through %d rotations of %d-second credentials (%ld connections)\n",
           name, proto, STEPS, TTL_S, conns);
}

static unsigned plain_target(void)
{
    return http2 ? front.port : port_of(srv.direct_url[0] ? srv.direct_url : srv.url);
}

/* ---- cases --------------------------------------------------------------- */

/* Writes an issued token and certificate+key (ttl seconds) to dir/NAME.token
 * and dir/NAME.pem. */
static void issue_files(const char *name, int ttl)
{
    char body[256], out[8192], path[400];
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof(body), "{\"kind\":\"%s\",\"user\":\"%s\",\"ttlSeconds\":%d}",
                 i ? "certificate" : "token", name, ttl);
        assert_int_equal(
            kle_test_apiserver_admin(&srv, "POST", "/credentials", body, out, sizeof(out)), 201);
        json_object *o = json_tokener_parse(out);
        assert_non_null(o);
        if (i) {
            remember_key(field(o, "key"));
            snprintf(out, sizeof(out), "%s%s", field(o, "certificate"), field(o, "key"));
            snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
        } else {
            remember_secret(field(o, "token"));
            snprintf(out, sizeof(out), "%s", field(o, "token"));
            snprintf(path, sizeof(path), "%s/%s.token", dir, name);
        }
        json_object_put(o);
        assert_int_equal(kle_test_write_file(path, out), 0);
    }
}

/* 0 when the issued token and certificate NAME both get status code. */
static int both_answer(const char *name, const char *code)
{
    const char *url = srv.direct_url[0] ? srv.direct_url : srv.url;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "test \"$(curl -s -o /dev/null -w '%%{http_code}' --cacert '%s' -H "
             "\"Authorization: Bearer $(cat '%s/%s.token')\" "
             "%s/api/v1/namespaces/default/configmaps)\" = %s && "
             "test \"$(curl -s -o /dev/null -w '%%{http_code}' --cacert '%s' --cert '%s/%s.pem' "
             "%s/api/v1/namespaces/default/configmaps)\" = %s",
             srv.ca_path, dir, name, url, code, srv.ca_path, dir, name, url, code);
    return system(cmd);
}

static void test_rotation__issued_credentials_expire(void **state)
{
    (void)state;
    /* What the rotations rely on: issued tokens and certificates work,
     * and are refused with 401 once expired. */
    issue_files("long", 300);
    issue_files("short", 1);
    if (both_answer("long", "200") != 0)
        fail_msg("an issued token or certificate was refused before its expiry");
    poll(NULL, 0, 2100);
    if (both_answer("short", "401") != 0)
        fail_msg("an expired token or certificate was not refused with 401");
}

static void test_rotation__client_certificate(void **state)
{
    (void)state;
    char user[800];
    rotate_cert(0);
    snprintf(user, sizeof(user),
             "    client-certificate: %s/current.pem\n"
             "    client-key: %s/current.pem\n",
             dir, dir);
    lead_through("cert", http2 ? cert_front.port : plain_target(), user, rotate_cert);
}

static void test_rotation__token_file(void **state)
{
    (void)state;
    char user[800];
    rotate_token(0);
    snprintf(user, sizeof(user), "    tokenFile: %s/token\n", dir);
    lead_through("token", plain_target(), user, rotate_token);
}

static void test_rotation__exec_plugin(void **state)
{
    (void)state;
    char plugin[400], user[1200], text[2048];
    snprintf(plugin, sizeof(plugin), "%s/plugin.sh", dir);
    snprintf(
        text, sizeof(text),
        "#!/bin/sh\n"
        "r=$(curl -s -XPOST '%s/credentials' -d '{\"kind\":\"token\",\"user\":\"rotation-exec\","
        "\"groups\":[\"system:masters\"],\"ttlSeconds\":%d}')\n"
        "tok=$(printf '%%s' \"$r\" | sed -n 's/.*\"token\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
        "exp=$(printf '%%s' \"$r\" | sed -n "
        "'s/.*\"expirationTimestamp\": *\"\\([^\"]*\\)\".*/\\1/p')\n"
        "echo \"$tok\" >> '%s/exec-tokens'\n"
        "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
        "\"status\":{\"token\":\"%%s\",\"expirationTimestamp\":\"%%s\"}}\\n' \"$tok\" \"$exp\"\n",
        srv.admin_url, TTL_S, dir);
    assert_int_equal(kle_test_write_file(plugin, text), 0);
    assert_int_equal(chmod(plugin, 0700), 0);
    snprintf(user, sizeof(user),
             "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: %s\n      interactiveMode: Never\n",
             plugin);
    lead_through("exec", plain_target(), user, NULL);
    /* The plugin ran again and again as its tokens neared expiry. */
    char path[400], line[256];
    snprintf(path, sizeof(path), "%s/exec-tokens", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int runs = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        remember_secret(line);
        runs++;
    }
    fclose(f);
    if (runs < STEPS * STEP_MS / 1000 / TTL_S)
        fail_msg("the exec plugin ran %d times in %d ms of %d-second tokens", runs, STEPS * STEP_MS,
                 TTL_S);
}

static void test_rotation__ca_file(void **state)
{
    (void)state;
    char user[800];
    snprintf(user, sizeof(user), "    token: %s\n", srv.token);
    lead_through("ca", plain_target(), user, rotate_ca);
}

static void test_rotation__no_secret_in_logs(void **state)
{
    (void)state;
    assert_int_equal(kle_log_flush_ns(KLE_MS(5000)), 0);
    pthread_mutex_lock(&log_mu);
    assert_non_null(log_text);
    for (int i = 0; i < nsecrets; i++)
        if (strstr(log_text, secrets[i])) {
            pthread_mutex_unlock(&log_mu);
            fail_msg("a secret (%.12s...) is in the verbosity-10 log over %s", secrets[i], proto);
        }
    int redacted = strstr(log_text, "Bearer <redacted>") != NULL, bearer = 0, masked = 0;
    for (const char *p = log_text; (p = strstr(p, "Bearer ")); p += 7)
        bearer++;
    for (const char *p = log_text; (p = strstr(p, "Bearer <redacted>")); p += 7)
        masked++;
    int key = strstr(log_text, "PRIVATE KEY") != NULL;
    pthread_mutex_unlock(&log_mu);
    assert_int_equal(bearer, masked); /* no Authorization header in clear */
    assert_false(key);
    assert_true(redacted); /* the log did see the requests */
    assert_true(nsecrets > STEPS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rotation__issued_credentials_expire),
        cmocka_unit_test(test_rotation__client_certificate),
        cmocka_unit_test(test_rotation__token_file),
        cmocka_unit_test(test_rotation__exec_plugin),
        cmocka_unit_test(test_rotation__ca_file),
        cmocka_unit_test(test_rotation__no_secret_in_logs),
    };
    /* KLE_TEST_FILTER=test_rotation__exec* runs only matching cases. */
    if (getenv("KLE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KLE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
