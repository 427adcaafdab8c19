/*
 * The client under a real cluster's transport faults, through a TCP fault
 * relay (tests/support/relay.h) before kle-apiserver, or before its HTTP/2
 * front when KLE_TEST_HTTP=2 (the test runs once per protocol):
 *
 * - a leader whose connection freezes renews over a fresh connection before
 *   its renew deadline and keeps leading;
 * - a follower whose connection freezes recovers and takes over a lease
 *   that expires;
 * - a request that timed out never leaves its connection for a later one
 *   to reuse, nor holds it past its timeout;
 * - sockets carry TCP_USER_TIMEOUT; idle connections are not reused past
 *   their idle age;
 * - a renewal does not wait behind a 10-second call on the same client;
 * - Warning headers are logged once per text.
 *
 * Timings: KLE_TRANSPORT_TIMINGS="LEASE/RENEW/RETRY" in ms (default
 * 4000/3000/1000). Lines starting with "FIGURE" are read by bench/transport,
 * which sets KLE_TRANSPORT_FIGURES_ONLY to run only the tests that print them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/rest.h"
#include "kle/locks.h"
#include "kube/kube.h"
#include "support/apiserver.h"
#include "support/relay.h"

static kle_test_apiserver srv;
static unsigned target_port; /* the server, or its HTTP/2 front */
static int64_t lease_ms = 4000, renew_ms = 3000, retry_ms = 1000;
static const char *proto;

/* Log capture (Warning lines and the absence of secrets). */
#include "support/log_capture.h"

static int count_in_log(const char *s)
{
    int n = 0;
    /* Lines reach the handler on the log's drain thread. */
    assert_int_equal(kle_log_flush_ns(KLE_MS(5000)), 0);
    pthread_mutex_lock(&log_mu);
    for (const char *p = log_text; p && (p = strstr(p, s)); p += strlen(s))
        n++;
    pthread_mutex_unlock(&log_mu);
    return n;
}

static int64_t mono_ms(void)
{
    return kle_test_relay_now_ns() / 1000000;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("KLE_TRANSPORT_TIMINGS");
    long long l, r, p;
    if (t && sscanf(t, "%lld/%lld/%lld", &l, &r, &p) == 3) {
        lease_ms = l;
        renew_ms = r;
        retry_ms = p;
    }
    proto = kle_test_http2() ? "HTTP/2" : "HTTP/1.1";
    kle_log_set_handler(capture_log, NULL);
    kle_log_set_verbosity(10);
    if (kle_test_apiserver_start(&srv, NULL) != 0)
        return -1;
    const char *colon = strrchr(srv.url, ':');
    target_port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kle_log_set_handler(NULL, NULL);
    kle_log_set_verbosity(0);
    int rc = kle_test_apiserver_stop(&srv);
    free(log_text);
    return rc == 0 ? 0 : -1;
}

/* A client of the test server through the relay r (NULL: direct). */
static kle_client *client_via(kle_test_relay *r, const char *name)
{
    char path[400], url[64], cmd[900];
    snprintf(path, sizeof(path), "%s/%s.kubeconfig", srv.dir, name);
    snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", srv.kubeconfig, path);
    assert_int_equal(system(cmd), 0);
    if (r) {
        snprintf(url, sizeof(url), "https://127.0.0.1:%u", kle_test_relay_port(r));
        assert_int_equal(kle_test_replace_in_file(path, srv.url, url), 0);
    }
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = path;
    kle_client *c = NULL;
    if (kle_client_new_from_kubeconfig(&c, &o) != 0)
        fail_msg("client %s: %s", name, kle_error_last()->message);
    return c;
}

static kle_test_relay *relay(void)
{
    kle_test_relay *r = NULL;
    assert_int_equal(kle_test_relay_start(&r, target_port), 0);
    return r;
}

/* ---- electors on threads ----------------------------------------------- */

struct candidate {
    kle_client *client;
    kle_elector *e;
    pthread_t thread;
    int rc;
};

static void lead_until_over(kle_leading *l, void *d)
{
    (void)d;
    kle_leading_wait_ns(l, -1);
}

static void stopped(void *d)
{
    (void)d;
}

static void *run_elector(void *arg)
{
    struct candidate *c = arg;
    c->rc = kle_elector_run(c->e);
    return NULL;
}

static void candidate_start(struct candidate *c, kle_client *client, const char *lock,
                            const char *identity)
{
    memset(c, 0, sizeof(*c));
    c->client = client;
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = lock;
    lo.identity = identity;
    lo.record_events = 0;
    kle_elector_config ec = KLE_ELECTOR_CONFIG_INIT;
    if (kle_lock_new_by_name(&ec.lock, "leases", client, &lo) != 0)
        fail_msg("lock: %s", kle_error_last()->message);
    /* Polls: the test counts the connections a frozen relay holds, and a
     * watch stream through it would be one more, dropped only at its deadline. */
    ec.follow = KLE_FOLLOW_POLL;
    ec.lease_duration_ns = KLE_MS(lease_ms);
    ec.renew_deadline_ns = KLE_MS(renew_ms);
    ec.retry_period_ns = KLE_MS(retry_ms);
    ec.callbacks.on_started_leading = lead_until_over;
    ec.callbacks.on_stopped_leading = stopped;
    if (kle_elector_new(&c->e, &ec) != 0)
        fail_msg("elector: %s", kle_error_last()->message);
    assert_int_equal(pthread_create(&c->thread, NULL, run_elector, c), 0);
}

static void candidate_stop(struct candidate *c)
{
    kle_elector_stop(c->e);
    pthread_join(c->thread, NULL);
    kle_elector_free(c->e);
    c->e = NULL;
}

static void wait_leader(struct candidate *c, int64_t within_ms, const char *what)
{
    int64_t end = mono_ms() + within_ms;
    while (!kle_elector_is_leader(c->e)) {
        if (mono_ms() > end)
            fail_msg("%s: not leading after %lld ms", what, (long long)within_ms);
        poll(NULL, 0, 10);
    }
}

/* spec.renewTime of the lease (wall ns), read directly; 0 when unknown. */
static int64_t renew_time(kle_client *direct, const char *lock)
{
    char path[256];
    json_object *o = NULL, *spec, *rt;
    int64_t ns = 0;
    kle_client_path(path, sizeof(path), "coordination.k8s.io/v1", "leases", "default", lock);
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 2000 * KLE_NS_PER_MS;
    if (kle_client_get(&o, direct, path, &ro) == 0 && json_object_object_get_ex(o, "spec", &spec) &&
        json_object_object_get_ex(spec, "renewTime", &rt))
        kle_kube__parse_time(json_object_get_string(rt), &ns);
    json_object_put(o);
    return ns;
}

/* Waits for a renewal written after wall time `after`; returns its time. */
static int64_t wait_renewal_after(kle_client *direct, const char *lock, int64_t after,
                                  int64_t within_ms)
{
    int64_t end = mono_ms() + within_ms;
    for (;;) {
        int64_t t = renew_time(direct, lock);
        if (t > after)
            return t;
        if (mono_ms() > end)
            return 0;
        poll(NULL, 0, 20);
    }
}

/* ---- a leader's connection freezes -------------------------------------- */

static void test_transport__frozen_leader_renews_over_a_fresh_connection(void **state)
{
    (void)state;
    kle_test_relay *r = relay();
    kle_client *direct = client_via(NULL, "direct-leader");
    kle_client *via = client_via(r, "frozen-leader");
    struct candidate a;
    candidate_start(&a, via, "frozen-leader", "a");
    wait_leader(&a, 10000, "a");
    /* Two renewals first, so that the connection is in steady use. */
    assert_true(wait_renewal_after(direct, "frozen-leader", wall_ns(), renew_ms + 2000) > 0);

    int64_t frozen_wall = wall_ns(), frozen_mono = kle_test_relay_now_ns();
    kle_test_relay_freeze(r);
    /* A renewal attempt that started after the freeze (renewTime is set
     * when an attempt starts) and was seen written: its write is the one
     * that got through. */
    int64_t renewed = wait_renewal_after(direct, "frozen-leader", frozen_wall, renew_ms + 3000);
    if (!renewed)
        fail_msg("%s: no renewal within %lld ms of freezing the leader's connection", proto,
                 (long long)(renew_ms + 3000));
    int64_t took_ms = (kle_test_relay_now_ns() - frozen_mono) / 1000000;
    printf("FIGURE %s %lld/%lld/%lld leader-freeze-to-renewal-ms %lld\n", proto,
           (long long)lease_ms, (long long)renew_ms, (long long)retry_ms, (long long)took_ms);
    if (took_ms >= renew_ms)
        fail_msg("%s: the renewal came %lld ms after the freeze (renew deadline %lld ms)", proto,
                 (long long)took_ms, (long long)renew_ms);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, a.e);
    assert_int_equal(st.losses, 0);
    assert_int_equal(kle_elector_is_leader(a.e), 1);

    /* The frozen connection was closed by the client, within the renew
     * deadline of the freeze: nothing holds it. */
    int64_t end = mono_ms() + renew_ms;
    while (kle_test_relay_stuck_open(r) > 0 && mono_ms() < end)
        poll(NULL, 0, 10);
    assert_int_equal(kle_test_relay_stuck_open(r), 0);
    int64_t closed_ms = (kle_test_relay_last_stuck_close(r) - frozen_mono) / 1000000;
    printf("FIGURE %s %lld/%lld/%lld leader-frozen-connection-closed-ms %lld\n", proto,
           (long long)lease_ms, (long long)renew_ms, (long long)retry_ms, (long long)closed_ms);
    assert_true(closed_ms < renew_ms);
    assert_true(kle_kube__client_discarded(via) >= 1);

    candidate_stop(&a);
    kle_client_free(via);
    kle_client_free(direct);
    kle_test_relay_stop(r);
}

/* ---- a follower's connection freezes ------------------------------------ */

static void test_transport__frozen_follower_recovers_and_takes_over(void **state)
{
    (void)state;
    kle_test_relay *r = relay();
    kle_client *direct = client_via(NULL, "direct-follower");
    kle_client *via = client_via(r, "frozen-follower");
    struct candidate a, b;
    candidate_start(&a, direct, "frozen-follower", "a");
    wait_leader(&a, 10000, "a");
    candidate_start(&b, via, "frozen-follower", "b");
    /* b has observed the lease over the relay. */
    int64_t end = mono_ms() + 10000;
    while (!kle_test_relay_first_reply_since(r, 0) && mono_ms() < end)
        poll(NULL, 0, 10);
    assert_true(kle_test_relay_first_reply_since(r, 0) > 0);
    poll(NULL, 0, (int)retry_ms);

    int64_t frozen = kle_test_relay_now_ns();
    kle_test_relay_freeze(r);
    /* The leader goes away without releasing: the lease expires. */
    candidate_stop(&a);
    int64_t leader_gone = kle_test_relay_now_ns();
    /* b recovers (a call timeout and a retry period), sees the record it
     * missed as changed, waits a lease duration from then, and tries
     * again within a retry period. */
    /* Within LD + RD + 3 RP (the bound this test shows), with 5 s of slack
     * for a loaded machine: a liveness bound, not a promise to the
     * millisecond. On failure b stops first, so that it does not run on
     * into the next test (and its log into the secrets check). */
    int64_t end_b = mono_ms() + lease_ms + renew_ms + 3 * retry_ms + 5000;
    while (!kle_elector_is_leader(b.e) && mono_ms() < end_b)
        poll(NULL, 0, 10);
    if (!kle_elector_is_leader(b.e)) {
        candidate_stop(&b);
        kle_client_free(via);
        kle_client_free(direct);
        kle_test_relay_stop(r);
        fail_msg("b after the lease expired: not leading after %lld ms",
                 (long long)(lease_ms + renew_ms + 3 * retry_ms + 5000));
    }
    int64_t took_over_ms = (kle_test_relay_now_ns() - leader_gone) / 1000000;
    int64_t recovered = kle_test_relay_first_reply_since(r, frozen);
    assert_true(recovered > 0);
    int64_t recovered_ms = (recovered - frozen) / 1000000;
    printf("FIGURE %s %lld/%lld/%lld follower-freeze-to-recovery-ms %lld\n", proto,
           (long long)lease_ms, (long long)renew_ms, (long long)retry_ms, (long long)recovered_ms);
    printf("FIGURE %s %lld/%lld/%lld follower-takeover-after-leader-gone-ms %lld\n", proto,
           (long long)lease_ms, (long long)renew_ms, (long long)retry_ms, (long long)took_over_ms);
    /* Recovery: the first try on the frozen connection times out (the
     * elector's call timeout), the next one uses a fresh connection. */
    assert_true(recovered_ms < renew_ms + 2 * retry_ms);
    candidate_stop(&b);
    kle_client_free(via);
    kle_client_free(direct);
    kle_test_relay_stop(r);
}

/* ---- no reuse of a connection after a timeout ---------------------------- */

static void test_transport__timed_out_connection_is_closed_not_reused(void **state)
{
    (void)state;
    kle_test_relay *r = relay();
    kle_client *c = client_via(r, "no-reuse");
    json_object *o = NULL;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 5000 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(o);
    assert_int_equal(kle_test_relay_accepted(r), 1);

    kle_test_relay_freeze(r);
    ro.timeout_ns = 300 * KLE_NS_PER_MS;
    int64_t start = mono_ms();
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), KLE_ETIMEOUT);
    int64_t returned = mono_ms();
    assert_true(returned - start < 300 + 200);
    /* The client closed the frozen connection when the request gave up. */
    while (kle_test_relay_stuck_open(r) > 0 && mono_ms() < returned + 500)
        poll(NULL, 0, 5);
    assert_int_equal(kle_test_relay_stuck_open(r), 0);
    assert_int_equal(kle_kube__client_discarded(c), 1);

    /* The next request opens a fresh connection and succeeds (its budget
     * leaves room for a TLS handshake on a loaded machine). */
    ro.timeout_ns = 3000 * KLE_NS_PER_MS;
    if (kle_client_get(&o, c, "/api/v1/namespaces/default", &ro) != 0)
        fail_msg("%s: the request after a timeout: %s", proto, kle_error_last()->message);
    json_object_put(o);
    assert_int_equal(kle_test_relay_accepted(r), 2);

    /* A reset connection is not reused either. */
    kle_test_relay_reset(r);
    ro.timeout_ns = 2000 * KLE_NS_PER_MS;
    int rc = kle_client_get(&o, c, "/api/v1/namespaces/default", &ro);
    json_object_put(o);
    o = NULL;
    /* libcurl notices a dead idle connection before using it, or the
     * request fails at the transport level; either way the one after it
     * works on a new connection. */
    if (rc != 0) {
        assert_int_equal(rc, KLE_ETRANSPORT);
        assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
        json_object_put(o);
    }
    assert_int_equal(kle_test_relay_accepted(r), 3);

    /* New connections refused, then black-holed: each call ends within
     * its budget. */
    kle_test_relay_set_mode(r, KLE_RELAY_BLACKHOLE);
    kle_test_relay_reset(r);
    ro.timeout_ns = 300 * KLE_NS_PER_MS;
    start = mono_ms();
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), KLE_ETIMEOUT);
    assert_true(mono_ms() - start < 300 + 200);
    kle_test_relay_set_mode(r, KLE_RELAY_REFUSE);
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), KLE_ETRANSPORT);
    kle_test_relay_set_mode(r, KLE_RELAY_PASS);
    /* Added latency is survived within the budget. */
    kle_test_relay_set_latency(r, 100);
    ro.timeout_ns = 5000 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(o);
    kle_client_free(c);
    kle_test_relay_stop(r);
}

/* ---- socket options and idle connections -------------------------------- */

/* TCP_USER_TIMEOUT of this process's socket connected to 127.0.0.1:port,
 * or -1 when there is none. */
static int user_timeout_of_socket_to(unsigned port)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;
    int found = -1;
    while (d && (de = readdir(d))) {
        int fd = atoi(de->d_name);
        struct sockaddr_in peer;
        socklen_t len = sizeof(peer);
        if (fd <= 2 || getpeername(fd, (struct sockaddr *)&peer, &len) != 0 ||
            peer.sin_family != AF_INET || ntohs(peer.sin_port) != port)
            continue;
        unsigned int v = 0;
        socklen_t vl = sizeof(v);
        if (getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &vl) == 0)
            found = (int)v;
    }
    if (d)
        closedir(d);
    return found;
}

static void test_transport__sockets_have_a_user_timeout_and_idle_ones_expire(void **state)
{
    (void)state;
    kle_test_relay *r = relay();
    kle_client *c = client_via(r, "sockopts");
    json_object *o = NULL;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 1500 * KLE_NS_PER_MS;
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(o);
    /* The idle connection's socket: unacknowledged data kills it after the
     * shortest request timeout seen (1.5 s). */
    assert_int_equal(user_timeout_of_socket_to(kle_test_relay_port(r)), 1500);

    /* Idle for longer than that: not reused, a new connection is opened. */
    assert_int_equal(kle_test_relay_accepted(r), 1);
    poll(NULL, 0, 2600);
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(o);
    assert_int_equal(kle_test_relay_accepted(r), 2);
    /* Used again at once: reused. */
    assert_int_equal(kle_client_get(&o, c, "/api/v1/namespaces/default", &ro), 0);
    json_object_put(o);
    assert_int_equal(kle_test_relay_accepted(r), 2);
    kle_client_free(c);
    kle_test_relay_stop(r);
}

/* ---- a renewal never waits behind a slow call ---------------------------- */

struct slow_call {
    kle_client *c;
    int rc;
    int64_t took_ms;
};

static void *slow_get(void *arg)
{
    struct slow_call *s = arg;
    json_object *o = NULL;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 20000 * KLE_NS_PER_MS;
    int64_t start = mono_ms();
    s->rc = kle_client_get(&o, s->c, "/api/v1/namespaces/default/configmaps/slow", &ro);
    s->took_ms = mono_ms() - start;
    json_object_put(o);
    return NULL;
}

static void test_transport__renewal_does_not_wait_behind_a_slow_call(void **state)
{
    (void)state;
    kle_client *c = client_via(NULL, "shared");
    kle_client *direct = client_via(NULL, "observer");
    struct candidate a;
    candidate_start(&a, c, "shared-client", "a");
    wait_leader(&a, 10000, "a");
    assert_int_equal(kle_test_apiserver_admin(&srv, "POST", "/faults",
                                              "{\"verb\":\"get\",\"resource\":\"configmaps\","
                                              "\"name\":\"slow\",\"latencyMs\":10000}",
                                              NULL, 0) /
                         100,
                     2);
    struct slow_call s = {c, 0, 0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_get, &s), 0);
    /* While the 10-second call runs on the same client, renewals go on. */
    int64_t last = wall_ns(), start = mono_ms();
    int renewals = 0;
    while (mono_ms() - start < 9000) {
        int64_t next = wait_renewal_after(direct, "shared-client", last, renew_ms);
        if (!next)
            fail_msg("%s: no renewal for %lld ms while a slow call runs on the same client", proto,
                     (long long)renew_ms);
        last = next;
        renewals++;
    }
    pthread_join(t, NULL);
    assert_int_equal(s.rc, KLE_ENOTFOUND);
    assert_true(s.took_ms >= 9900);
    assert_true(renewals >= (int)(9000 / retry_ms) - 2);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, a.e);
    assert_int_equal(st.losses, 0);
    assert_int_equal(kle_elector_is_leader(a.e), 1);
    assert_int_equal(kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0) / 100, 2);
    candidate_stop(&a);
    kle_client_free(c);
    kle_client_free(direct);
}

/* ---- Warning headers ---------------------------------------------------- */

/* A plain-HTTP server on loopback that answers every request with Warning
 * headers: one text on /a, that text and another on /b. */
struct warn_server {
    int fd;
    unsigned port;
    pthread_t t;
    int served;
};

static void *warn_serve(void *arg)
{
    struct warn_server *w = arg;
    for (;;) {
        int c = accept(w->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[4096];
        size_t got = 0;
        for (;;) {
            ssize_t n = read(c, req + got, sizeof(req) - 1 - got);
            if (n <= 0) {
                close(c);
                c = -1;
                break;
            }
            got += (size_t)n;
            req[got] = '\0';
            char *end = strstr(req, "\r\n\r\n");
            if (!end)
                continue;
            int b = strncmp(req, "GET /b", 6) == 0;
            char resp[512];
            int len = snprintf(resp, sizeof(resp),
                               "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               "Warning: 299 - \"v1 Endpoints is deprecated in v1.33+; use "
                               "discovery.k8s.io/v1 EndpointSlice\"\r\n%s"
                               "Content-Length: 2\r\n\r\n{}",
                               b ? "Warning: 299 - \"a second \\\"warning\\\"\"\r\n" : "");
            if (write(c, resp, (size_t)len) != len)
                break;
            w->served++;
            size_t used = (size_t)(end + 4 - req);
            memmove(req, end + 4, got - used);
            got -= used;
        }
        if (c >= 0)
            close(c);
    }
}

static void test_transport__warnings_logged_once_per_text(void **state)
{
    (void)state;
    struct warn_server w = {0};
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    w.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(w.fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(w.fd, 8), 0);
    assert_int_equal(getsockname(w.fd, (struct sockaddr *)&sa, &sl), 0);
    w.port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&w.t, NULL, warn_serve, &w), 0);

    char path[400];
    snprintf(path, sizeof(path), "%s/warn.kubeconfig", srv.dir);
    char text[600];
    snprintf(
        text, sizeof(text),
        "current-context: w\nclusters:\n- name: w\n  cluster: {server: 'http://127.0.0.1:%u'}\n"
        "users:\n- name: w\n  user: {}\n"
        "contexts:\n- name: w\n  context: {cluster: w, user: w}\n",
        w.port);
    assert_int_equal(kle_test_write_file(path, text), 0);
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = path;
    kle_client *c = NULL;
    if (kle_client_new_from_kubeconfig(&c, &co) != 0)
        fail_msg("%s", kle_error_last()->message);
    const char *paths[] = {"/a", "/a", "/b", "/a", "/b"};
    for (size_t i = 0; i < 5; i++) {
        json_object *o = NULL;
        if (kle_client_get(&o, c, paths[i], NULL) != 0)
            fail_msg("GET %s: %s", paths[i], kle_error_last()->message);
        json_object_put(o);
    }
    assert_int_equal(count_in_log("v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 "
                                  "EndpointSlice"),
                     1);
    assert_int_equal(count_in_log("a second \"warning\""), 1);
    /* A second client logs them again, once (client-go's per-client
     * handler). The server serves one connection at a time. */
    kle_client_free(c);
    kle_client *c2 = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&c2, &co), 0);
    json_object *o = NULL;
    assert_int_equal(kle_client_get(&o, c2, "/a", NULL), 0);
    json_object_put(o);
    assert_int_equal(count_in_log("EndpointSlice"), 2);
    kle_client_free(c2);
    shutdown(w.fd, SHUT_RDWR);
    close(w.fd);
    pthread_join(w.t, NULL);
}

/* ---- secrets ------------------------------------------------------------ */

static void test_transport__no_secret_in_logs(void **state)
{
    (void)state;
    /* Everything above ran at verbosity 10 over this protocol. */
    assert_true(count_in_log("GET ") > 0);
    assert_int_equal(count_in_log(srv.token), 0);
    assert_int_equal(count_in_log("Bearer ") - count_in_log("Bearer <redacted>"), 0);
}

int main(void)
{
    /* bench/transport runs only the two tests that print figures. */
    const struct CMUnitTest figures[] = {
        cmocka_unit_test(test_transport__frozen_leader_renews_over_a_fresh_connection),
        cmocka_unit_test(test_transport__frozen_follower_recovers_and_takes_over),
    };
    if (getenv("KLE_TRANSPORT_FIGURES_ONLY"))
        return cmocka_run_group_tests(figures, setup, teardown);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transport__timed_out_connection_is_closed_not_reused),
        cmocka_unit_test(test_transport__sockets_have_a_user_timeout_and_idle_ones_expire),
        cmocka_unit_test(test_transport__warnings_logged_once_per_text),
        cmocka_unit_test(test_transport__frozen_leader_renews_over_a_fresh_connection),
        cmocka_unit_test(test_transport__frozen_follower_recovers_and_takes_over),
        cmocka_unit_test(test_transport__renewal_does_not_wait_behind_a_slow_call),
        cmocka_unit_test(test_transport__no_secret_in_logs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
