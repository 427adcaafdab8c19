/* The API client's asynchronous requests and watches on a kle_loop,
 * against a kle-apiserver (and, registered a second time, through an
 * HTTP/2 front): the error mapping, deadlines that never block the loop,
 * the 401 retry with a rotated token file, 429 with Retry-After, the
 * response cap, an exec plugin waited for on the loop, abandoned requests,
 * watches with events, bookmarks, resumed streams and re-lists after 410,
 * and what one client costs: connections and descriptors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/errors.h"
#include "kle/rest.h"
#include "kle/sys/loop.h"
#include "kube/async.h"
#include "kube/kube.h"
#include "kube_server.h"

static kube_server srv;
static char dir[256];
static kle_loop *loop;

#define CM "/api/v1/namespaces/default/configmaps"

static int64_t now_ms(void)
{
    return kle_clock_monotonic_ns(NULL) / KLE_NS_PER_MS;
}

/* ---- helpers ------------------------------------------------------------- */

typedef struct call {
    kle_kube__request req;
    int done;
    int rc;
    json_object *obj;
    char msg[1024];
    int64_t retry_after_ns;
    int64_t done_ms;
} call;

static void on_done(kle_kube__request *r, int rc, json_object *obj, void *data)
{
    call *c = data;
    assert_false(c->done);
    c->done = 1;
    c->rc = rc;
    c->obj = obj;
    c->done_ms = now_ms();
    c->retry_after_ns = kle_error_last()->retry_after_ns;
    snprintf(c->msg, sizeof(c->msg), "%s", rc ? kle_error_last()->message : "");
}

static void start(kle_kube__agent *a, call *c, const char *method, const char *path,
                  const char *body, int64_t timeout_ms)
{
    memset(c, 0, sizeof(*c));
    c->req.method = method;
    c->req.path = path;
    c->req.body = body;
    c->req.body_len = body ? strlen(body) : 0;
    c->req.content_type = body ? "application/json" : NULL;
    c->req.deadline_ns = kle_kube__agent_now(a) + timeout_ms * KLE_NS_PER_MS;
    c->req.done = on_done;
    c->req.data = c;
    if (kle_kube__request_start(a, &c->req) != 0)
        fail_msg("%s %s: %s", method, path, kle_error_last()->message);
}

/* Runs the loop until *flag, failing after limit_ms. */
static void run_until(const int *flag, int64_t limit_ms)
{
    int64_t end = now_ms() + limit_ms;
    while (!*flag && now_ms() < end)
        assert_true(kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS) >= 0);
    if (!*flag)
        fail_msg("nothing happened within %lld ms", (long long)limit_ms);
}

static void run_for(int64_t ms)
{
    int64_t end = now_ms() + ms;
    while (now_ms() < end)
        kle_loop_dispatch(loop, (end - now_ms()) * KLE_NS_PER_MS);
}

static kle_client *client_from(const char *kubeconfig, size_t max_response)
{
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = kubeconfig;
    o.max_response_bytes = max_response;
    kle_client *c = NULL;
    if (kle_client_new_from_kubeconfig(&c, &o) != 0)
        fail_msg("client: %s", kle_error_last()->message);
    return c;
}

static kle_client *admin_client(void)
{
    return client_from(srv.kubeconfig, 0);
}

/* A kubeconfig for the server with the given user fields (YAML, indented 4). */
static void kubeconfig(const char *name, const char *user_yaml)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    kube_write_file(path, 0,
                    "apiVersion: v1\nkind: Config\ncurrent-context: t\n"
                    "clusters:\n- name: c\n  cluster:\n    server: %s\n"
                    "    certificate-authority-data: %s\n"
                    "users:\n- name: u\n  user:\n%s"
                    "contexts:\n- name: t\n  context: {cluster: c, user: u, namespace: default}\n",
                    srv.server, srv.ca_data, user_yaml);
}

static kle_client *client_for(const char *name)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return client_from(path, 0);
}

static kle_kube__agent *agent_of(kle_client *c)
{
    kle_kube__agent *a = NULL;
    if (kle_kube__agent_get(&a, c, loop) != 0)
        fail_msg("agent: %s", kle_error_last()->message);
    return a;
}

static const char *rv_of(json_object *o)
{
    json_object *md, *rv;
    if (json_object_object_get_ex(o, "metadata", &md) &&
        json_object_object_get_ex(md, "resourceVersion", &rv))
        return json_object_get_string(rv);
    return NULL;
}

static char *configmap(const char *name, const char *value, const char *rv)
{
    char *s = NULL;
    if (asprintf(
            &s,
            "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\"%s%s%s},"
            "\"data\":{\"v\":\"%s\"}}",
            name, rv ? ",\"resourceVersion\":\"" : "", rv ? rv : "", rv ? "\"" : "", value) < 0)
        abort();
    return s;
}

/* A synchronous call through the async path: the loop runs until it is done. */
static int sync_call(kle_kube__agent *a, const char *method, const char *path, const char *body,
                     json_object **out)
{
    call c;
    start(a, &c, method, path, body, 10000);
    run_until(&c.done, 15000);
    if (out)
        *out = c.obj;
    else
        json_object_put(c.obj);
    return c.rc;
}

static int is_http2(void)
{
    return kle_test_http2();
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/kle-async-it-XXXXXX");
    assert_non_null(mkdtemp(dir));
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
                                        "--watch-history",
                                        "8",
                                        "--bookmark-interval",
                                        "1",
                                        NULL};
    if (kube_server_start(&srv, dir, flags) != 0)
        fail_msg("kle-apiserver did not start");
    assert_int_equal(kle_loop_new(&loop, NULL), 0);
    return 0;
}

static int teardown(void **state)
{
    kle_loop_free(loop);
    kube_server_stop(&srv);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

static void test_async__verbs_and_error_mapping(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    kle_kube__agent *again = agent_of(c);
    assert_ptr_equal(a, again); /* one agent per (client, loop) */
    kle_kube__agent_put(again);

    char *body = configmap("async-crud", "one", NULL);
    json_object *obj = NULL;
    assert_int_equal(sync_call(a, "POST", CM, body, &obj), 0);
    char rv[64];
    snprintf(rv, sizeof(rv), "%s", rv_of(obj));
    json_object_put(obj);

    /* AlreadyExists, with the Status handed to the completion. */
    call k;
    start(a, &k, "POST", CM, body, 10000);
    run_until(&k.done, 15000);
    assert_int_equal(k.rc, KLE_EEXISTS);
    assert_int_equal(k.req.status, 409);
    assert_non_null(k.obj);
    assert_string_equal(json_object_get_string(json_object_object_get(k.obj, "reason")),
                        "AlreadyExists");
    json_object_put(k.obj);
    free(body);

    /* A stale resourceVersion: Conflict. */
    body = configmap("async-crud", "two", rv);
    assert_int_equal(sync_call(a, "PUT", CM "/async-crud", body, NULL), 0);
    assert_int_equal(sync_call(a, "PUT", CM "/async-crud", body, NULL), KLE_ECONFLICT);
    free(body);

    /* NotFound, with the message of the synchronous call. */
    start(a, &k, "GET", CM "/missing", NULL, 10000);
    run_until(&k.done, 15000);
    assert_int_equal(k.rc, KLE_ENOTFOUND);
    assert_string_equal(k.msg,
                        "GET " CM "/missing: 404 NotFound: configmaps \"missing\" not found");
    json_object_put(k.obj);

    /* Bad arguments and a spent budget never start. */
    kle_kube__request r = KLE_KUBE_REQUEST_INIT;
    r.method = "GET";
    r.path = "no-slash";
    r.done = on_done;
    r.deadline_ns = kle_kube__agent_now(a) + KLE_SEC(1);
    assert_int_equal(kle_kube__request_start(a, &r), KLE_EINVAL);
    r.path = CM;
    r.deadline_ns = kle_kube__agent_now(a) - 1;
    assert_int_equal(kle_kube__request_start(a, &r), KLE_ETIMEOUT);
    assert_false(kle_kube__request_running(&r));
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* N concurrent calls on one client: one connection over HTTP/2, a small
 * pool over HTTP/1.1. */
static void test_async__concurrent_calls_share_connections(void **state)
{
    enum { N = 40 };
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    static call k[N];
    for (int i = 0; i < N; i++)
        start(a, &k[i], "GET", "/api/v1/namespaces/default", NULL, 20000);
    int open_max = 0;
    for (int i = 0; i < N; i++) {
        while (!k[i].done) {
            kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS);
            if (kle_kube__agent_sockets(a) > open_max)
                open_max = kle_kube__agent_sockets(a);
        }
        if (k[i].rc)
            fail_msg("call %d: %s", i, k[i].msg);
        json_object_put(k[i].obj);
    }
    long conns = kle_kube__client_connections(c);
    printf("FIGURE %d concurrent calls over %s: %ld connection(s), at most %d sockets open\n", N,
           is_http2() ? "HTTP/2" : "HTTP/1.1", conns, open_max);
    if (is_http2()) {
        assert_int_equal(conns, 1);
        assert_int_equal(open_max, 1);
        assert_int_equal(kle_kube__client_http_version(c), CURL_HTTP_VERSION_2_0);
    } else {
        assert_true(conns >= 1 && conns <= KLE_KUBE_AGENT_CONNECTIONS);
        assert_true(open_max <= KLE_KUBE_AGENT_CONNECTIONS);
    }
    /* Sequential calls keep using the connections there are. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(sync_call(a, "GET", "/api/v1/namespaces/default", NULL, NULL), 0);
    assert_int_equal(kle_kube__client_connections(c), conns);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* ---- descriptors --------------------------------------------------------- */

typedef struct fd_kinds {
    int epoll, timerfd, eventfd, tcp, unix_, other;
} fd_kinds;

static int fd_open(int fd, const int *before, int nbefore)
{
    for (int i = 0; i < nbefore; i++)
        if (before[i] == fd)
            return 1;
    return 0;
}

static int list_fds(int *fds, int max)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.' && n < max)
            fds[n++] = atoi(de->d_name);
    int self = d ? dirfd(d) : -1;
    if (d)
        closedir(d);
    for (int i = 0; i < n; i++)
        if (fds[i] == self)
            fds[i] = fds[--n];
    return n;
}

/* Threads of this process. */
static int threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* The kinds of the descriptors open now that were not open before. */
static fd_kinds new_fds(const int *before, int nbefore)
{
    fd_kinds k = {0, 0, 0, 0, 0, 0};
    int fds[512];
    int n = list_fds(fds, 512);
    for (int i = 0; i < n; i++) {
        if (fd_open(fds[i], before, nbefore))
            continue;
        char link[64], target[256] = "";
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
        ssize_t l = readlink(link, target, sizeof(target) - 1);
        if (l > 0)
            target[l] = '\0';
        int domain = 0;
        socklen_t dl = sizeof(domain);
        if (strstr(target, "eventpoll"))
            k.epoll++;
        else if (strstr(target, "timerfd"))
            k.timerfd++;
        else if (strstr(target, "eventfd"))
            k.eventfd++;
        else if (strncmp(target, "socket:", 7) == 0 &&
                 getsockopt(fds[i], SOL_SOCKET, SO_DOMAIN, &domain, &dl) == 0) {
            if (domain == AF_UNIX)
                k.unix_++;
            else
                k.tcp++;
        } else
            k.other++;
    }
    return k;
}

typedef struct watched {
    kle_kube__watch w;
    int listed, added, modified, deleted, bookmarks;
    int ended;
    int ended_rc;
    char ended_msg[512];
    char last_value[64];
    int stop_after_bookmarks; /* 0: never */
} watched;

static int on_event(kle_kube__watch *w, kle_watch_event_type type, json_object *obj, void *data)
{
    watched *x = data;
    switch (type) {
    case KLE_WATCH_LISTED:
        x->listed++;
        break;
    case KLE_WATCH_ADDED:
        x->added++;
        break;
    case KLE_WATCH_MODIFIED: {
        x->modified++;
        json_object *d, *v;
        if (json_object_object_get_ex(obj, "data", &d) && json_object_object_get_ex(d, "v", &v))
            snprintf(x->last_value, sizeof(x->last_value), "%s", json_object_get_string(v));
        break;
    }
    case KLE_WATCH_DELETED:
        x->deleted++;
        break;
    case KLE_WATCH_BOOKMARK:
        x->bookmarks++;
        assert_non_null(rv_of(obj));
        if (x->stop_after_bookmarks && x->bookmarks >= x->stop_after_bookmarks)
            return 1;
        break;
    }
    return 0;
}

static void on_ended(kle_kube__watch *w, int rc, void *data)
{
    watched *x = data;
    x->ended = 1;
    x->ended_rc = rc;
    snprintf(x->ended_msg, sizeof(x->ended_msg), "%s", kle_error_last()->message);
}

static void watch_start(kle_kube__agent *a, watched *x, const char *name, const char *rv)
{
    memset(x, 0, sizeof(*x));
    static char sel[64][128];
    static int nsel;
    char *s = sel[nsel++ % 64];
    snprintf(s, 128, "metadata.name=%s", name);
    x->w.path = CM;
    x->w.field_selector = s;
    x->w.event = on_event;
    x->w.ended = on_ended;
    x->w.data = x;
    if (rv)
        snprintf(x->w.resource_version, sizeof(x->w.resource_version), "%s", rv);
    if (kle_kube__watch_start(a, &x->w) != 0)
        fail_msg("watch: %s", kle_error_last()->message);
}

/* One client with a watch and a call in flight: the loop's epoll set,
 * timerfd and eventfd, libcurl's multi handle (its wake-up socketpair,
 * made by curl_multi_init), and the connections: one over HTTP/2. */
static void test_async__descriptors_of_one_client(void **state)
{
    int before[512];
    int nbefore = list_fds(before, 512);
    int nthreads = threads();
    kle_loop *own = NULL;
    assert_int_equal(kle_loop_new(&own, NULL), 0);
    kle_loop *saved = loop;
    loop = own;
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    char *body = configmap("fd-watched", "v0", NULL);
    assert_int_equal(sync_call(a, "POST", CM, body, NULL), 0);
    free(body);
    watched x;
    watch_start(a, &x, "fd-watched", NULL);
    run_until(&x.listed, 10000);
    /* A call held in flight by the server for 2 s. */
    assert_true(kube_server_admin(&srv, "POST", "/faults",
                                  "{\"verb\":\"get\",\"resource\":\"namespaces\",\"latencyMs\":"
                                  "2000,\"count\":1}") /
                    100 ==
                2);
    call k;
    start(a, &k, "GET", "/api/v1/namespaces/default", NULL, 10000);
    run_for(500);
    assert_false(k.done);
    fd_kinds f = new_fds(before, nbefore);
    printf("FIGURE descriptors over %s with a watch and a call in flight: epoll %d, timerfd %d, "
           "eventfd %d, TCP %d, libcurl's socketpair %d, other %d\n",
           is_http2() ? "HTTP/2" : "HTTP/1.1", f.epoll, f.timerfd, f.eventfd, f.tcp, f.unix_,
           f.other);
    assert_int_equal(f.epoll, 1);
    assert_int_equal(f.timerfd, 1);
    assert_int_equal(f.eventfd, 1);
    assert_int_equal(f.unix_, 2);
    assert_int_equal(f.other, 0);
    assert_int_equal(f.tcp, is_http2() ? 1 : 2);
    assert_int_equal(kle_kube__agent_sockets(a), f.tcp);
    /* And no thread: everything runs on this one. */
    printf("FIGURE threads with a watch and a call in flight: %d (%d before)\n", threads(),
           nthreads);
    assert_int_equal(threads(), nthreads);
    run_until(&k.done, 10000);
    assert_int_equal(k.rc, 0);
    json_object_put(k.obj);
    kle_kube__watch_stop(&x.w);
    kle_kube__agent_put(a);
    kle_client_free(c);
    loop = saved;
    kle_loop_free(own);
    f = new_fds(before, nbefore);
    assert_int_equal(f.epoll + f.timerfd + f.eventfd + f.tcp + f.unix_ + f.other, 0);
}

/* ---- deadlines ----------------------------------------------------------- */

typedef struct ticker {
    kle_loop_timer t;
    int ticks;
    int64_t every_ms;
} ticker;

static void on_tick(kle_loop *l, kle_loop_timer *t, void *data)
{
    ticker *k = data;
    k->ticks++;
    kle_loop_timer_arm(l, t, kle_clock_monotonic_ns(NULL) + k->every_ms * KLE_NS_PER_MS, on_tick,
                       k);
}

static void test_async__a_deadline_never_blocks_the_loop(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    /* A warm connection first, then one the server never answers on. */
    assert_int_equal(sync_call(a, "GET", CM, NULL, NULL), 0);
    assert_true(
        kube_server_admin(&srv, "POST", "/faults", "{\"name\":\"hole\",\"blackhole\":true}") /
            100 ==
        2);
    ticker tk = {KLE_LOOP_TIMER_INIT, 0, 20};
    kle_loop_timer_arm(loop, &tk.t, kle_clock_monotonic_ns(NULL), on_tick, &tk);
    call k;
    int64_t t0 = now_ms();
    start(a, &k, "GET", CM "/hole", NULL, 400);
    run_until(&k.done, 5000);
    kle_loop_timer_disarm(loop, &tk.t);
    assert_int_equal(k.rc, KLE_ETIMEOUT);
    assert_non_null(strstr(k.msg, "no response within 400 ms"));
    assert_true(k.done_ms - t0 >= 400);
    if (k.done_ms - t0 > 400 + 300)
        fail_msg("the call ended %lld ms after its start", (long long)(k.done_ms - t0));
    /* The loop went on meanwhile. */
    assert_true(tk.ticks >= 5);
    assert_false(k.req.healthy);
    assert_int_equal(kle_kube__client_discarded(c), 1);
    kube_server_admin(&srv, "DELETE", "/faults", NULL);
    /* The next call works, on a new connection. */
    long conns = kle_kube__client_connections(c);
    assert_int_equal(sync_call(a, "GET", CM, NULL, NULL), 0);
    assert_int_equal(kle_kube__client_connections(c), conns + 1);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* An abandoned call never completes; the agent goes on. */
static void test_async__abandon(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    assert_true(kube_server_admin(&srv, "POST", "/faults",
                                  "{\"name\":\"slow\",\"latencyMs\":300,\"count\":1}") /
                    100 ==
                2);
    call k;
    start(a, &k, "GET", CM "/slow", NULL, 5000);
    run_for(50);
    assert_true(kle_kube__request_running(&k.req));
    kle_kube__request_abandon(&k.req);
    assert_false(kle_kube__request_running(&k.req));
    run_for(600);
    assert_false(k.done);
    kle_kube__request_abandon(&k.req); /* twice: nothing happens */
    assert_int_equal(sync_call(a, "GET", CM, NULL, NULL), 0);
    kube_server_admin(&srv, "DELETE", "/faults", NULL);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* ---- authentication ------------------------------------------------------ */

static void test_async__401_retry_with_a_rotated_token_file(void **state)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/rotating-token", dir);
    kube_write_file(p, 0, "bad-token-0123456789");
    char user[600];
    snprintf(user, sizeof(user), "    tokenFile: %s\n", p);
    kubeconfig("token-file.kubeconfig", user);
    kle_client *c = client_for("token-file.kubeconfig");
    kle_kube__agent *a = agent_of(c);
    /* The file's token is refused, and the file has not changed: no retry. */
    assert_int_equal(sync_call(a, "GET", CM, NULL, NULL), KLE_EUNAUTHORIZED);
    /* Rotated: the 401 re-reads the file (it changed) and the call is retried. */
    kube_write_file(p, 0, "ok-token-0123456789");
    call k;
    start(a, &k, "GET", CM, NULL, 10000);
    run_until(&k.done, 15000);
    if (k.rc)
        fail_msg("after the rotation: %s", k.msg);
    assert_int_equal(k.req.status, 200);
    json_object_put(k.obj);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

static void test_async__exec_plugin_waited_for_on_the_loop(void **state)
{
    char p[400];
    snprintf(p, sizeof(p), "%s/slow-plugin.sh", dir);
    kube_write_file(
        p, 1,
        "#!/bin/sh\nsleep 1\necho '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
        "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"ok-token-0123456789\"}}'\n");
    char user[700];
    snprintf(user, sizeof(user),
             "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: %s\n",
             p);
    kubeconfig("slow-plugin.kubeconfig", user);
    kle_client *c = client_for("slow-plugin.kubeconfig");
    kle_kube__agent *a = agent_of(c);
    ticker tk = {KLE_LOOP_TIMER_INIT, 0, 20};
    kle_loop_timer_arm(loop, &tk.t, kle_clock_monotonic_ns(NULL), on_tick, &tk);
    /* One call may wait for the plugin, one may not. */
    call patient, hasty;
    int64_t t0 = now_ms();
    start(a, &patient, "GET", CM, NULL, 10000);
    start(a, &hasty, "GET", "/api/v1/namespaces/default", NULL, 200);
    run_until(&hasty.done, 5000);
    assert_int_equal(hasty.rc, KLE_ETIMEOUT);
    assert_non_null(strstr(hasty.msg, "keeps running"));
    assert_true(hasty.done_ms - t0 < 200 + 300);
    assert_false(patient.done);
    run_until(&patient.done, 10000);
    kle_loop_timer_disarm(loop, &tk.t);
    if (patient.rc)
        fail_msg("after the plugin: %s", patient.msg);
    json_object_put(patient.obj);
    assert_true(patient.done_ms - t0 >= 1000);
    /* The loop ran all along (a tick every 20 ms over about a second). */
    assert_true(tk.ticks >= 20);
    /* The credential is cached: no wait now. */
    t0 = now_ms();
    assert_int_equal(sync_call(a, "GET", CM, NULL, NULL), 0);
    assert_true(now_ms() - t0 < 1000);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* ---- server errors and limits -------------------------------------------- */

static void test_async__429_with_retry_after(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    assert_true(kube_server_admin(&srv, "POST", "/faults",
                                  "{\"verb\":\"get\",\"resource\":\"configmaps\",\"name\":"
                                  "\"busy\",\"error\":429,\"retryAfterSeconds\":3,\"count\":1}") /
                    100 ==
                2);
    call k;
    start(a, &k, "GET", CM "/busy", NULL, 10000);
    run_until(&k.done, 15000);
    assert_int_equal(k.rc, KLE_ETOOMANYREQUESTS);
    assert_int_equal(k.req.status, 429);
    assert_int_equal(k.retry_after_ns, 3 * KLE_NS_PER_SEC);
    assert_non_null(strstr(k.msg, "retry after 3 s"));
    json_object_put(k.obj);
    kube_server_admin(&srv, "DELETE", "/faults", NULL);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

static void test_async__response_cap(void **state)
{
    kle_client *big = admin_client();
    kle_kube__agent *ab = agent_of(big);
    char value[20001];
    memset(value, 'x', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    char *body = configmap("large", value, NULL);
    assert_int_equal(sync_call(ab, "POST", CM, body, NULL), 0);
    free(body);
    kle_kube__agent_put(ab);
    kle_client_free(big);

    kle_client *c = client_from(srv.kubeconfig, 8192);
    kle_kube__agent *a = agent_of(c);
    call k;
    start(a, &k, "GET", CM "/large", NULL, 10000);
    run_until(&k.done, 15000);
    assert_int_equal(k.rc, KLE_ETOOLARGE);
    assert_non_null(strstr(k.msg, "8192 bytes"));
    /* A small answer on the same agent still works. */
    assert_int_equal(sync_call(a, "GET", "/api/v1/namespaces/default", NULL, NULL), 0);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

/* ---- watches ------------------------------------------------------------- */

static void update_value(kle_kube__agent *a, const char *name, const char *value)
{
    json_object *obj = NULL;
    char path[256];
    snprintf(path, sizeof(path), CM "/%s", name);
    assert_int_equal(sync_call(a, "GET", path, NULL, &obj), 0);
    char *body = configmap(name, value, rv_of(obj));
    json_object_put(obj);
    assert_int_equal(sync_call(a, "PUT", path, body, NULL), 0);
    free(body);
}

static void wait_value(watched *x, const char *value)
{
    int64_t end = now_ms() + 10000;
    while (strcmp(x->last_value, value) != 0 && now_ms() < end)
        kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS);
    assert_string_equal(x->last_value, value);
}

static void test_async__watch_events_resume_and_bookmarks(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    char *body = configmap("async-watched", "v0", NULL);
    assert_int_equal(sync_call(a, "POST", CM, body, NULL), 0);
    free(body);
    watched x;
    watch_start(a, &x, "async-watched", NULL);
    assert_true(kle_kube__watch_running(&x.w));
    run_until(&x.listed, 10000);
    update_value(a, "async-watched", "v1");
    wait_value(&x, "v1");
    /* The server ends every stream; a change made meanwhile is seen on the
     * resumed stream (from the last resourceVersion, no re-list). */
    assert_true(kube_server_admin(&srv, "POST", "/watches/close", NULL) / 100 == 2);
    update_value(a, "async-watched", "v2");
    wait_value(&x, "v2");
    assert_int_equal(x.listed, 1);
    /* Bookmarks (one a second from this server) keep the version current. */
    int64_t end = now_ms() + 5000;
    while (x.bookmarks < 2 && now_ms() < end)
        kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS);
    assert_true(x.bookmarks >= 2);
    assert_true(x.w.resource_version[0] != '\0');
    assert_false(x.ended);
    kle_kube__watch_stop(&x.w);
    assert_false(kle_kube__watch_running(&x.w));
    /* After a stop nothing more is delivered. */
    int events = x.modified + x.bookmarks;
    update_value(a, "async-watched", "v3");
    run_for(1500);
    assert_int_equal(x.modified + x.bookmarks, events);

    /* A callback that stops the watch: no more events, no end. */
    watch_start(a, &x, "async-watched", NULL);
    x.stop_after_bookmarks = 1;
    end = now_ms() + 5000;
    while (!x.bookmarks && now_ms() < end)
        kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS);
    assert_int_equal(x.bookmarks, 1);
    assert_false(kle_kube__watch_running(&x.w));
    run_for(1500);
    assert_int_equal(x.bookmarks, 1);
    assert_false(x.ended);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

static void test_async__watch_relists_after_410(void **state)
{
    kle_client *c = admin_client();
    kle_kube__agent *a = agent_of(c);
    char *body = configmap("async-old", "v0", NULL);
    json_object *obj = NULL;
    assert_int_equal(sync_call(a, "POST", CM, body, &obj), 0);
    free(body);
    char old_rv[64];
    snprintf(old_rv, sizeof(old_rv), "%s", rv_of(obj));
    json_object_put(obj);
    /* More changes than the server keeps (--watch-history 8). */
    for (int i = 1; i <= 12; i++) {
        char v[16];
        snprintf(v, sizeof(v), "v%d", i);
        update_value(a, "async-old", v);
    }
    watched x;
    watch_start(a, &x, "async-old", old_rv);
    run_until(&x.listed, 10000);
    assert_int_equal(x.listed, 1);
    assert_int_equal(x.modified, 0);
    assert_string_not_equal(x.w.resource_version, old_rv);
    /* Watching goes on from the list. */
    update_value(a, "async-old", "v13");
    run_until(&x.modified, 10000);
    assert_string_equal(x.last_value, "v13");
    kle_kube__watch_stop(&x.w);
    kle_kube__agent_put(a);
    kle_client_free(c);
}

static void test_async__watch_ends_with_an_error_the_caller_sees(void **state)
{
    kubeconfig("limited.kubeconfig", "    token: limited-token-0123456789\n");
    kle_client *c = client_for("limited.kubeconfig");
    kle_kube__agent *a = agent_of(c);
    watched x;
    watch_start(a, &x, "anything", "1");
    run_until(&x.ended, 10000);
    assert_int_equal(x.ended_rc, KLE_EFORBIDDEN);
    assert_non_null(strstr(x.ended_msg, "WATCH " CM "?watch=true"));
    assert_false(kle_kube__watch_running(&x.w));
    /* The list is forbidden too (no list verb). */
    watch_start(a, &x, "anything", NULL);
    run_until(&x.ended, 10000);
    assert_int_equal(x.ended_rc, KLE_EFORBIDDEN);
    assert_non_null(strstr(x.ended_msg, "GET " CM "?fieldSelector="));
    kle_kube__agent_put(a);
    kle_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async__verbs_and_error_mapping),
        cmocka_unit_test(test_async__concurrent_calls_share_connections),
        cmocka_unit_test(test_async__descriptors_of_one_client),
        cmocka_unit_test(test_async__a_deadline_never_blocks_the_loop),
        cmocka_unit_test(test_async__abandon),
        cmocka_unit_test(test_async__401_retry_with_a_rotated_token_file),
        cmocka_unit_test(test_async__exec_plugin_waited_for_on_the_loop),
        cmocka_unit_test(test_async__429_with_retry_after),
        cmocka_unit_test(test_async__response_cap),
        cmocka_unit_test(test_async__watch_events_resume_and_bookmarks),
        cmocka_unit_test(test_async__watch_relists_after_410),
        cmocka_unit_test(test_async__watch_ends_with_an_error_the_caller_sees),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
