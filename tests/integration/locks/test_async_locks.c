/*
 * The built-in locks' asynchronous members on a loop, against a
 * kle-apiserver (and, registered a second time, through an HTTP/2 front):
 * the watch (records, deletions, bookmarks, a stop from its callback or
 * from outside, an error that ends it), many locks on one loop sharing
 * one client and one connection, a call's deadline that never blocks the
 * loop, abandon and detach, events, and a call that ends within start.
 * The call-by-call rules (guard, conflicts, records) run through the
 * asynchronous members in test_locks_async_integration and
 * test_guard_async_integration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/client.h"
#include "kle/kle.h"
#include "kle/locks.h"
#include "kle/rest.h"
#include "kle/sys/lock.h"
#include "kle/sys/loop.h"
#include "kube/kube.h"
#include "support/apiserver.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC
#define MS  KLE_NS_PER_MS

static kle_test_apiserver srv;
static kle_client *client;
static kle_loop *loop;
static char tmp[256];

static int64_t mono(void)
{
    return kle_clock_monotonic_ns(NULL);
}

static int group_setup(void **state)
{
    quiet_log_install();
    if (kle_test_tempdir(tmp, sizeof(tmp)) != 0)
        return -1;
    char tokens[320], authz[320];
    snprintf(tokens, sizeof(tokens), "%s/tokens.csv", tmp);
    snprintf(authz, sizeof(authz), "%s/authz.json", tmp);
    /* A user that may read leases but not watch them. */
    if (kle_test_write_file(tokens, "reader-token-0123456789,reader,uid-reader\n") != 0 ||
        kle_test_write_file(authz,
                            "{\"rules\":[{\"subjects\":[\"user:reader\"],\"verbs\":[\"get\"],"
                            "\"apiGroups\":[\"coordination.k8s.io\"],\"resources\":[\"leases\"]}]}"
                            "\n") != 0)
        return -1;
    const char *const args[] = {
        "--token-file", tokens, "--authz-file", authz, "--bookmark-interval", "1", NULL};
    if (kle_test_apiserver_start(&srv, args) != 0)
        return -1;
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = srv.kubeconfig;
    if (kle_client_new_from_kubeconfig(&client, &o) != 0 || kle_loop_new(&loop, NULL) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    kle_client_free(client);
    kle_loop_free(loop);
    int rc = kle_test_apiserver_stop(&srv);
    kle_test_rmtree(tmp);
    return rc == 0 ? 0 : -1;
}

static kle_lock *lock_on(kle_client *c, const char *type, const char *name, const char *identity,
                         int events)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = name;
    o.identity = identity;
    o.record_events = events;
    kle_lock *lock = NULL;
    if (kle_lock_new_by_name(&lock, type, c, &o) != 0)
        fail_msg("%s lock %s: %s", type, name, kle_error_last()->message);
    assert_int_equal(lock->version, 3);
    assert_non_null(lock->start);
    assert_int_equal(lock->attach(lock, loop), 0);
    return lock;
}

static kle_record rec(const char *holder, int transitions)
{
    kle_record r = KLE_RECORD_INIT;
    int64_t now = kle_clock_wall_ns(NULL);
    assert_int_equal(kle_record_set_holder(&r, holder, strlen(holder)), 0);
    r.lease_duration_seconds = 15;
    r.acquire_time_ns = now;
    r.renew_time_ns = now;
    r.leader_transitions = transitions;
    return r;
}

/* ---- calls ------------------------------------------------------------------ */

typedef struct call {
    kle_lock_call c;
    kle_lock_result result;
    kle_record record;
    int done;
    int rc;
    int64_t done_at;
    char msg[1024];
} call;

static void on_done(kle_lock_call *c, int rc, void *data)
{
    call *k = data;
    assert_false(k->done);
    k->done = 1;
    k->rc = rc;
    k->done_at = mono();
    snprintf(k->msg, sizeof(k->msg), "%s", rc ? kle_error_last()->message : "");
}

/* Starts a call; 0 or start's error. */
static int start(kle_lock *lock, call *k, kle_lock_call_kind kind, const char *holder,
                 int64_t timeout_ns)
{
    kle_record_dispose(&k->record);
    kle_lock_result_dispose(&k->result);
    memset(k, 0, sizeof(*k));
    kle_lock_result_init(&k->result, KLE_LOCK_RESULT_VERSION);
    kle_record_init(&k->record, KLE_RECORD_VERSION);
    k->c.version = KLE_LOCK_CALL_VERSION;
    k->c.kind = kind;
    if (holder) {
        k->record = rec(holder, 0);
        k->c.record = &k->record;
    }
    k->c.message = kind == KLE_LOCK_CALL_EVENT ? "became leader" : NULL;
    k->c.result = &k->result;
    k->c.timeout_ns = timeout_ns;
    k->c.done = on_done;
    k->c.data = k;
    int rc = lock->start(lock, &k->c);
    assert_false(k->done); /* never from within start */
    return rc;
}

static void run_until(const int *flag, int64_t limit_ns)
{
    int64_t end = mono() + limit_ns;
    while (!*flag && mono() < end)
        assert_true(kle_loop_dispatch(loop, 100 * MS) >= 0);
    if (!*flag)
        fail_msg("nothing happened within %.1f s", (double)limit_ns / SEC);
}

static void run_for(int64_t ns)
{
    int64_t end = mono() + ns;
    while (mono() < end)
        kle_loop_dispatch(loop, end - mono());
}

/* One call to its end. */
static int call_rc(kle_lock *lock, kle_lock_call_kind kind, const char *holder)
{
    call k;
    memset(&k, 0, sizeof(k));
    int rc = start(lock, &k, kind, holder, 10 * SEC);
    if (rc == 0) {
        run_until(&k.done, 15 * SEC);
        rc = k.rc;
    }
    kle_record_dispose(&k.record);
    kle_lock_result_dispose(&k.result);
    return rc;
}

static void fault(const char *json)
{
    if (kle_test_apiserver_admin(&srv, "POST", "/faults", json, NULL, 0) / 100 != 2)
        fail_msg("fault %s was refused", json);
}

/* ---- the watch -------------------------------------------------------------- */

typedef struct seen {
    kle_lock_watch_call w;
    int records, deleted, listed, bookmarks, errors;
    char holder[64];
    int ended;
    int ended_rc;
    char ended_msg[512];
    int stop_at_bookmark; /* return non-zero at the first bookmark */
    kle_lock *stop_lock;  /* watch_stop from within the callback */
} seen;

static int on_event(const kle_lock_event *ev, void *data)
{
    seen *s = data;
    switch (ev->type) {
    case KLE_LOCK_EVENT_RECORD:
        s->records++;
        snprintf(s->holder, sizeof(s->holder), "%.*s",
                 (int)kle_record_holder_len(&ev->result->record),
                 kle_record_holder(&ev->result->record));
        break;
    case KLE_LOCK_EVENT_DELETED:
        s->deleted++;
        break;
    case KLE_LOCK_EVENT_BOOKMARK:
        s->bookmarks++;
        if (s->stop_lock) {
            s->stop_lock->watch_stop(s->stop_lock, &s->w);
            return 0;
        }
        if (s->stop_at_bookmark)
            return 1;
        break;
    case KLE_LOCK_EVENT_ERROR:
        s->errors++;
        break;
    }
    if (ev->listed)
        s->listed++;
    return 0;
}

static void on_ended(kle_lock_watch_call *w, int rc, void *data)
{
    seen *s = data;
    s->ended = 1;
    s->ended_rc = rc;
    snprintf(s->ended_msg, sizeof(s->ended_msg), "%s", kle_error_last()->message);
}

static void watch(kle_lock *lock, seen *s)
{
    memset(s, 0, sizeof(*s));
    s->w.version = KLE_LOCK_WATCH_CALL_VERSION;
    s->w.event = on_event;
    s->w.ended = on_ended;
    s->w.data = s;
    if (lock->watch_start(lock, &s->w) != 0)
        fail_msg("watch: %s", kle_error_last()->message);
}

static void wait_holder(seen *s, const char *holder)
{
    int64_t end = mono() + 10 * SEC;
    while (strcmp(s->holder, holder) != 0 && mono() < end)
        kle_loop_dispatch(loop, 100 * MS);
    assert_string_equal(s->holder, holder);
}

static void test_async_locks__watch_on_a_loop(void **state)
{
    kle_lock *w = lock_on(client, "leases", "async-watched", "watcher", 0);
    kle_lock *a = lock_on(client, "leases", "async-watched", "node-a", 0);
    seen s;
    watch(w, &s);
    /* A watch already running is refused. */
    kle_lock_watch_call second = s.w;
    assert_int_equal(w->watch_start(w, &second), KLE_ESTATE);
    /* The list shows no object. */
    run_until(&s.deleted, 10 * SEC);
    assert_int_equal(s.listed, 1);
    /* Another lock's calls on the same loop show on the stream. */
    assert_int_equal(call_rc(a, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    assert_int_equal(call_rc(a, KLE_LOCK_CALL_CREATE, "node-a"), 0);
    wait_holder(&s, "node-a");
    int records = s.records;
    assert_int_equal(call_rc(a, KLE_LOCK_CALL_UPDATE, ""), 0);
    int64_t end = mono() + 10 * SEC;
    while (s.records == records && mono() < end)
        kle_loop_dispatch(loop, 100 * MS);
    assert_string_equal(s.holder, "");
    /* Bookmarks come once a second. */
    end = mono() + 5 * SEC;
    while (s.bookmarks < 1 && mono() < end)
        kle_loop_dispatch(loop, 100 * MS);
    assert_true(s.bookmarks >= 1);
    /* A deletion. */
    char path[256];
    assert_int_equal(kle_client_path(path, sizeof(path), "coordination.k8s.io/v1", "leases",
                                     "default", "async-watched"),
                     0);
    int deleted = s.deleted;
    assert_int_equal(kle_client_delete(NULL, client, path, NULL), 0);
    end = mono() + 10 * SEC;
    while (s.deleted == deleted && mono() < end)
        kle_loop_dispatch(loop, 100 * MS);
    assert_int_equal(s.deleted, deleted + 1);
    assert_int_equal(s.listed, 1);
    assert_int_equal(s.errors, 0);
    /* Detaching while the watch runs is refused; stopped, nothing more comes. */
    assert_int_equal(w->attach(w, NULL), KLE_ESTATE);
    w->watch_stop(w, &s.w);
    int events = s.records + s.deleted + s.bookmarks;
    assert_int_equal(call_rc(a, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    assert_int_equal(call_rc(a, KLE_LOCK_CALL_CREATE, "node-a"), 0);
    run_for(1500 * MS);
    assert_int_equal(s.records + s.deleted + s.bookmarks, events);
    assert_false(s.ended);
    assert_int_equal(w->attach(w, NULL), 0);

    /* Stopped by its callback's return value, and by watch_stop from
     * within the callback: no more events, no end. */
    assert_int_equal(w->attach(w, loop), 0);
    for (int how = 0; how < 2; how++) {
        watch(w, &s);
        if (how == 0)
            s.stop_at_bookmark = 1;
        else
            s.stop_lock = w;
        end = mono() + 5 * SEC;
        while (!s.bookmarks && mono() < end)
            kle_loop_dispatch(loop, 100 * MS);
        assert_int_equal(s.bookmarks, 1);
        run_for(1500 * MS);
        assert_int_equal(s.bookmarks, 1);
        assert_false(s.ended);
    }
    kle_lock_free(w);
    kle_lock_free(a);
}

static void test_async_locks__a_watch_ends_with_an_error_the_caller_sees(void **state)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/reader.kubeconfig", tmp);
    char text[8192];
    /* The admin kubeconfig, with the reader's token. */
    FILE *f = fopen(srv.kubeconfig, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *tok = strstr(text, srv.token);
    assert_non_null(tok);
    char out[8192];
    snprintf(out, sizeof(out), "%.*sreader-token-0123456789%s", (int)(tok - text), text,
             tok + strlen(srv.token));
    assert_int_equal(kle_test_write_file(path, out), 0);
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = path;
    kle_client *reader = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&reader, &o), 0);
    kle_lock *l = lock_on(reader, "leases", "forbidden-watch", "reader", 0);
    seen s;
    watch(l, &s);
    run_until(&s.ended, 10 * SEC);
    assert_int_equal(s.ended_rc, KLE_EFORBIDDEN);
    assert_non_null(strstr(s.ended_msg, "watch leases default/forbidden-watch: "));
    /* Ended: it may be started again, and detached. */
    assert_int_equal(l->attach(l, NULL), 0);
    kle_lock_free(l);
    kle_client_free(reader);
}

/* ---- many locks, one loop --------------------------------------------------- */

static void test_async_locks__many_locks_share_one_loop_and_connection(void **state)
{
    enum { N = 50 };
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = srv.kubeconfig;
    kle_client *c = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), 0);
    static kle_lock *locks[N];
    static call k[N];
    memset(k, 0, sizeof(k));
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many-%02d", i);
        locks[i] = lock_on(c, "leases", name, "node-many", 0);
        /* The migration guard reads the other family too; here only the leases count. */
        assert_int_equal(kle_lock_set_migration_guard(locks[i], 0), 0);
    }
    kle_lock_call_kind kinds[3] = {KLE_LOCK_CALL_GET, KLE_LOCK_CALL_CREATE, KLE_LOCK_CALL_UPDATE};
    int want[3] = {KLE_ENOTFOUND, 0, 0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++)
            assert_int_equal(
                start(locks[i], &k[i], kinds[round], round ? "node-many" : NULL, 10 * SEC), 0);
        for (int i = 0; i < N; i++) {
            run_until(&k[i].done, 15 * SEC);
            if (k[i].rc != want[round])
                fail_msg("round %d lock %d: %d %s", round, i, k[i].rc, k[i].msg);
        }
    }
    long conns = kle_kube__client_connections(c);
    printf("FIGURE %d locks on one loop over %s: %ld connection(s) for %d calls\n", N,
           kle_test_http2() ? "HTTP/2" : "HTTP/1.1", conns, 3 * N);
    if (kle_test_http2())
        assert_int_equal(conns, 1);
    else
        assert_true(conns >= 1 && conns <= 6);
    for (int i = 0; i < N; i++) {
        kle_record_dispose(&k[i].record);
        kle_lock_result_dispose(&k[i].result);
        kle_lock_free(locks[i]);
    }
    kle_client_free(c);
}

/* ---- deadlines, abandon, detach ---------------------------------------------- */

typedef struct ticker {
    kle_loop_timer t;
    int ticks;
} ticker;

static void on_tick(kle_loop *l, kle_loop_timer *t, void *data)
{
    ticker *k = data;
    k->ticks++;
    kle_loop_timer_arm(l, t, mono() + 20 * MS, on_tick, k);
}

static void test_async_locks__a_call_ends_at_its_deadline_and_the_loop_goes_on(void **state)
{
    kle_lock *l = lock_on(client, "leases", "async-hole", "node-a", 0);
    assert_int_equal(call_rc(l, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    fault("{\"name\":\"async-hole\",\"blackhole\":true}");
    ticker tk = {KLE_LOOP_TIMER_INIT, 0};
    kle_loop_timer_arm(loop, &tk.t, mono(), on_tick, &tk);
    call k;
    memset(&k, 0, sizeof(k));
    int64_t t0 = mono();
    assert_int_equal(start(l, &k, KLE_LOCK_CALL_GET, NULL, 500 * MS), 0);
    run_until(&k.done, 5 * SEC);
    kle_loop_timer_disarm(loop, &tk.t);
    kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0);
    assert_int_equal(k.rc, KLE_ETIMEOUT);
    assert_true(k.done_at - t0 >= 500 * MS);
    if (k.done_at - t0 > 500 * MS + 300 * MS)
        fail_msg("done ran %.0f ms after start", (double)(k.done_at - t0) / MS);
    assert_true(tk.ticks >= 10);
    /* The next call works. */
    assert_int_equal(call_rc(l, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    kle_record_dispose(&k.record);
    kle_lock_result_dispose(&k.result);
    kle_lock_free(l);
}

static void test_async_locks__abandon_and_detach(void **state)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = "async-abandon";
    o.identity = "node-a";
    o.record_events = 0;
    kle_lock *l = NULL;
    assert_int_equal(kle_lease_lock_new(&l, client, &o), 0);
    call k;
    memset(&k, 0, sizeof(k));
    /* Not attached: no asynchronous call. */
    assert_int_equal(start(l, &k, KLE_LOCK_CALL_GET, NULL, SEC), KLE_ESTATE);
    assert_int_equal(l->attach(l, loop), 0);
    assert_int_equal(l->attach(l, loop), 0); /* again: nothing changes */
    kle_loop *other = NULL;
    assert_int_equal(kle_loop_new(&other, NULL), 0);
    assert_int_equal(l->attach(l, other), KLE_ESTATE);
    kle_loop_free(other);

    fault("{\"name\":\"async-abandon\",\"latencyMs\":400}");
    assert_int_equal(start(l, &k, KLE_LOCK_CALL_GET, NULL, 5 * SEC), 0);
    /* One call at a time; no detach while it runs. */
    call k2;
    memset(&k2, 0, sizeof(k2));
    assert_int_equal(start(l, &k2, KLE_LOCK_CALL_GET, NULL, SEC), KLE_ESTATE);
    assert_int_equal(l->attach(l, NULL), KLE_ESTATE);
    run_for(50 * MS);
    l->abandon(l, &k.c);
    l->abandon(l, &k.c); /* twice: nothing happens */
    /* The next call may start at once; the abandoned one never completes. */
    assert_int_equal(start(l, &k2, KLE_LOCK_CALL_GET, NULL, 5 * SEC), 0);
    run_until(&k2.done, 5 * SEC);
    assert_int_equal(k2.rc, KLE_ENOTFOUND);
    run_for(600 * MS);
    assert_false(k.done);
    kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0);
    assert_int_equal(l->attach(l, NULL), 0);
    /* The synchronous members work whether attached or not. */
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), KLE_ENOTFOUND);
    kle_record_dispose(&k.record);
    kle_lock_result_dispose(&k.result);
    kle_record_dispose(&k2.record);
    kle_lock_result_dispose(&k2.result);
    kle_lock_free(l);
}

/* ---- events and a call that ends within start -------------------------------- */

static void test_async_locks__events(void **state)
{
    kle_lock *quiet = lock_on(client, "leases", "async-events", "node-q", 0);
    call k;
    memset(&k, 0, sizeof(k));
    /* Without events there is nothing to send: done runs at the next dispatch. */
    assert_int_equal(start(quiet, &k, KLE_LOCK_CALL_EVENT, NULL, SEC), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0) >= 1, 1);
    assert_true(k.done);
    assert_int_equal(k.rc, 0);
    kle_lock_free(quiet);

    kle_lock *l = lock_on(client, "leases", "async-events", "node-e", 1);
    assert_int_equal(call_rc(l, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    assert_int_equal(call_rc(l, KLE_LOCK_CALL_CREATE, "node-e"), 0);
    assert_int_equal(call_rc(l, KLE_LOCK_CALL_EVENT, NULL), 0);
    json_object *list = NULL;
    assert_int_equal(kle_client_get(&list, client, "/api/v1/namespaces/default/events", NULL), 0);
    int found = 0;
    json_object *items = json_object_object_get(list, "items");
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        const char *m = json_object_get_string(
            json_object_object_get(json_object_array_get_idx(items, i), "message"));
        found += m && strcmp(m, "node-e became leader") == 0;
    }
    json_object_put(list);
    assert_int_equal(found, 1);
    kle_lock_free(l);
}

/* The MultiLock: its parts' calls in sequence on the loop; no watch. */
static void test_async_locks__multi_lock(void **state)
{
    kle_lock *m = lock_on(client, "endpointsleases", "async-multi", "node-m", 0);
    assert_null(m->watch_start);
    assert_int_equal(call_rc(m, KLE_LOCK_CALL_GET, NULL), KLE_ENOTFOUND);
    assert_int_equal(call_rc(m, KLE_LOCK_CALL_CREATE, "node-m"), 0);
    call k;
    memset(&k, 0, sizeof(k));
    assert_int_equal(start(m, &k, KLE_LOCK_CALL_GET, NULL, 10 * SEC), 0);
    run_until(&k.done, 15 * SEC);
    assert_int_equal(k.rc, 0);
    assert_string_equal(kle_record_holder(&k.result.record), "node-m");
    /* The raw record and resourceVersion are made of both parts. */
    assert_non_null(strchr(k.result.resource_version, ','));
    assert_int_equal(call_rc(m, KLE_LOCK_CALL_UPDATE, "node-m"), 0);
    /* Both parts hold the record. */
    kle_lock *lease = lock_on(client, "leases", "async-multi", "reader", 0);
    kle_lock *ep = lock_on(client, "endpoints", "async-multi", "reader", 0);
    kle_lock_set_migration_guard(lease, 0);
    kle_lock_set_migration_guard(ep, 0);
    for (int i = 0; i < 2; i++) {
        call g;
        memset(&g, 0, sizeof(g));
        assert_int_equal(start(i ? ep : lease, &g, KLE_LOCK_CALL_GET, NULL, 10 * SEC), 0);
        run_until(&g.done, 15 * SEC);
        assert_int_equal(g.rc, 0);
        assert_string_equal(kle_record_holder(&g.result.record), "node-m");
        kle_record_dispose(&g.record);
        kle_lock_result_dispose(&g.result);
    }
    kle_record_dispose(&k.record);
    kle_lock_result_dispose(&k.result);
    kle_lock_free(lease);
    kle_lock_free(ep);
    kle_lock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_async_locks__watch_on_a_loop),
        cmocka_unit_test(test_async_locks__a_watch_ends_with_an_error_the_caller_sees),
        cmocka_unit_test(test_async_locks__many_locks_share_one_loop_and_connection),
        cmocka_unit_test(test_async_locks__a_call_ends_at_its_deadline_and_the_loop_goes_on),
        cmocka_unit_test(test_async_locks__abandon_and_detach),
        cmocka_unit_test(test_async_locks__events),
        cmocka_unit_test(test_async_locks__multi_lock),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
