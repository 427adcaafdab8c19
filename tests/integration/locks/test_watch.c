/*
 * Watch mode against a kle-apiserver this test starts: the locks' watch
 * (events, deletion, the first list), and electors in watch mode while the
 * server's fault API ends, delays and black-holes watch streams. Real
 * time, 4 s / 3 s / 1 s; every wait has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/locks.h"
#include "kle/rest.h"
#include "support/apiserver.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC
#define MS  KLE_NS_PER_MS

static kle_test_apiserver srv;
static kle_client *client;

static int group_setup(void **state)
{
    (void)state;
    quiet_log_install();
    if (kle_test_apiserver_with_client(&srv, &client) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kle_client_free(client);
    return kle_test_apiserver_stop(&srv) == 0 ? 0 : -1;
}

static int64_t now(void)
{
    return kle_clock_monotonic_ns(NULL);
}

static kle_lock *new_lock(const char *type, const char *name, const char *identity)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = name;
    o.identity = identity;
    o.record_events = 0;
    kle_lock *lock = NULL;
    if (kle_lock_new_by_name(&lock, type, client, &o) != 0)
        fail_msg("%s lock %s: %s", type, name, kle_error_last()->message);
    return lock;
}

/* ---- the locks' watch ---- */

typedef struct seen {
    int n;
    kle_lock_event_type type[16];
    int listed[16];
    char holder[16][32];
    kle_event *cancel;
    int want;
} seen;

static int on_event(const kle_lock_event *ev, void *data)
{
    seen *s = data;
    if (s->n < 16) {
        s->type[s->n] = ev->type;
        s->listed[s->n] = ev->listed;
        snprintf(s->holder[s->n], sizeof(s->holder[0]), "%s",
                 ev->result ? kle_record_holder(&ev->result->record) : "");
        s->n++;
    }
    return s->n >= s->want ? 1 : 0;
}

typedef struct watch_run {
    kle_lock *lock;
    seen s;
    int rc;
} watch_run;

static void *watch_main(void *p)
{
    watch_run *w = p;
    kle_lock_watch_opts o = KLE_LOCK_WATCH_OPTS_INIT;
    o.timeout_ns = 20 * SEC;
    o.cancel = w->s.cancel;
    w->rc = kle_lock_watch(w->lock, &o, on_event, &w->s);
    return NULL;
}

static kle_record record_of(const char *holder)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = 15;
    r.acquire_time_ns = kle_clock_wall_ns(NULL);
    r.renew_time_ns = r.acquire_time_ns;
    return r;
}

static void wait_for_events(watch_run *w, int n)
{
    int64_t deadline = now() + 10 * SEC;
    while (w->s.n < n && now() < deadline)
        kle_clock_sleep(NULL, 10 * MS);
    assert_true(w->s.n >= n);
}

static void watch_one_kind(const char *type, const char *resource)
{
    char name[64];
    snprintf(name, sizeof(name), "watched-%s", type);
    kle_lock *writer = new_lock(type, name, "writer");
    watch_run w = {0};
    w.lock = new_lock(type, name, "watcher");
    w.s.want = 4;
    assert_true(kle_lock_can_watch(w.lock));
    pthread_t t;
    pthread_create(&t, NULL, watch_main, &w);
    /* The first list: nothing there yet. */
    wait_for_events(&w, 1);
    assert_int_equal(w.s.type[0], KLE_LOCK_EVENT_DELETED);
    assert_int_equal(w.s.listed[0], 1);
    kle_record r = record_of("writer");
    assert_int_equal(kle_lock_create(writer, &r, NULL), 0);
    wait_for_events(&w, 2);
    assert_int_equal(w.s.type[1], KLE_LOCK_EVENT_RECORD);
    assert_int_equal(w.s.listed[1], 0);
    assert_string_equal(w.s.holder[1], "writer");
    /* Another object of the kind is not watched. */
    kle_lock *other = new_lock(type, "not-watched", "writer");
    assert_int_equal(kle_lock_create(other, &r, NULL), 0);
    kle_record_dispose(&r);
    r = record_of("second");
    assert_int_equal(kle_lock_update(writer, &r, NULL), 0);
    kle_record_dispose(&r);
    wait_for_events(&w, 3);
    assert_string_equal(w.s.holder[2], "second");
    char path[256];
    assert_int_equal(
        kle_client_path(path, sizeof(path),
                        strcmp(resource, "leases") == 0 ? "coordination.k8s.io/v1" : "v1", resource,
                        "default", name),
        0);
    assert_int_equal(kle_client_delete(NULL, client, path, NULL), 0);
    wait_for_events(&w, 4);
    assert_int_equal(w.s.type[3], KLE_LOCK_EVENT_DELETED);
    assert_int_equal(w.s.listed[3], 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    kle_lock_free(w.lock);
    kle_lock_free(writer);
    kle_lock_free(other);
}

static void test_watch__locks_watch_their_object(void **state)
{
    (void)state;
    watch_one_kind("leases", "leases");
    watch_one_kind("configmaps", "configmaps");
    watch_one_kind("endpoints", "endpoints");
    /* The MultiLock is polled. */
    kle_lock *m = new_lock("configmapsleases", "multi", "x");
    assert_false(kle_lock_can_watch(m));
    kle_lock_free(m);
}

/* ---- electors in watch mode ---- */

typedef struct cand {
    kle_elector *e;
    pthread_t thread;
    int joined;             /* The run's thread was joined. */
    atomic_llong t_started; /* monotonic ns when it started leading; 0: never */
    atomic_int leading;
    int rc;
} cand;

/* Static, not on a test's stack: a failed assertion leaves the test at
 * once, and the teardown stops what is still running (cands_teardown). */
static cand pool[2];

static void started(kle_leading *l, void *d)
{
    cand *c = d;
    atomic_store(&c->t_started, (long long)now());
    atomic_store(&c->leading, 1);
    kle_leading_wait_ns(l, -1);
    atomic_store(&c->leading, 0);
}

static void stopped(void *d)
{
    (void)d;
}

static void *cand_main(void *p)
{
    cand *c = p;
    c->rc = kle_elector_run(c->e);
    return NULL;
}

static void cand_start(cand *c, const char *lock_name, const char *id, int release)
{
    memset(c, 0, sizeof(*c));
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = new_lock("leases", lock_name, id);
    cfg.lease_duration_ns = 4 * SEC;
    cfg.renew_deadline_ns = 3 * SEC;
    cfg.retry_period_ns = 1 * SEC;
    cfg.release_on_cancel = release;
    cfg.callbacks.on_started_leading = started;
    cfg.callbacks.on_stopped_leading = stopped;
    cfg.callbacks.data = c;
    assert_int_equal(kle_elector_new(&c->e, &cfg), 0);
    pthread_create(&c->thread, NULL, cand_main, c);
}

/* Stops @p c's run and waits for it; the elector stays. */
static void cand_halt(cand *c)
{
    kle_elector_stop(c->e);
    if (!c->joined)
        pthread_join(c->thread, NULL);
    c->joined = 1;
}

static void cand_stop(cand *c)
{
    cand_halt(c);
    kle_elector_free(c->e);
    c->e = NULL;
}

static kle_elector_stats stats_of(cand *c)
{
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    assert_int_equal(kle_elector_get_stats(&st, c->e), 0);
    return st;
}

static void await_leading(cand *c, int64_t timeout)
{
    int64_t deadline = now() + timeout;
    while (!atomic_load(&c->leading) && now() < deadline)
        kle_clock_sleep(NULL, 5 * MS);
    assert_true(atomic_load(&c->leading));
}

static void await_watching(cand *c, int want, int64_t timeout)
{
    int64_t deadline = now() + timeout;
    while (stats_of(c).watching != want && now() < deadline)
        kle_clock_sleep(NULL, 10 * MS);
    assert_int_equal(stats_of(c).watching, want);
}

/* Overlap check: never both leading. */
static void assert_one_leader(cand *a, cand *b)
{
    assert_false(kle_elector_is_leader(a->e) && kle_elector_is_leader(b->e));
}

static void test_watch__release_is_taken_in_a_round_trip(void **state)
{
    (void)state;
    cand *a = &pool[0], *b = &pool[1];
    cand_start(a, "release", "a", 1);
    await_leading(a, 5 * SEC);
    cand_start(b, "release", "b", 0);
    await_watching(b, 1, 5 * SEC);
    kle_clock_sleep(NULL, 1500 * MS);
    assert_false(atomic_load(&b->leading));
    int64_t t = now();
    cand_stop(a); /* releases */
    await_leading(b, 2 * SEC);
    int64_t took = atomic_load(&b->t_started) - t;
    /* A release and one GET + PUT on loopback: at once, not at the lease's
     * expiry (4 s); below a retry period even on a loaded machine. */
    assert_true(took < 1000 * MS);
    cand_stop(b);
}

static void post_fault(const char *json)
{
    assert_int_equal(kle_test_apiserver_admin(&srv, "POST", "/faults", json, NULL, 0), 201);
}

static void clear_faults(void)
{
    assert_int_equal(kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0), 200);
}

static void close_watches(void)
{
    int st = kle_test_apiserver_admin(&srv, "POST", "/watches/close", NULL, NULL, 0);
    assert_true(st >= 200 && st < 300);
}

static void test_watch__ended_streams_resume(void **state)
{
    (void)state;
    cand *a = &pool[0], *b = &pool[1];
    cand_start(a, "ended", "a", 1);
    await_leading(a, 5 * SEC);
    cand_start(b, "ended", "b", 0);
    await_watching(b, 1, 5 * SEC);
    /* Streams end three times; b never takes a live lease meanwhile. */
    for (int i = 0; i < 3; i++) {
        close_watches();
        kle_clock_sleep(NULL, 1200 * MS);
        assert_one_leader(a, b);
        assert_false(atomic_load(&b->leading));
    }
    /* ... and still sees a release at once. */
    int64_t t = now();
    cand_stop(a);
    await_leading(b, 2 * SEC);
    assert_true(atomic_load(&b->t_started) - t < 1000 * MS);
    cand_stop(b);
}

static void test_watch__delayed_streams_never_cost_safety(void **state)
{
    (void)state;
    cand *a = &pool[0], *b = &pool[1];
    cand_start(a, "delayed", "a", 0);
    await_leading(a, 5 * SEC);
    cand_start(b, "delayed", "b", 0);
    await_watching(b, 1, 5 * SEC);
    /* Every new watch request waits 2 s before it is answered. */
    post_fault("{\"verb\":\"watch\",\"resource\":\"leases\",\"latencyMs\":2000}");
    close_watches();
    for (int i = 0; i < 10; i++) {
        kle_clock_sleep(NULL, 300 * MS);
        assert_one_leader(a, b);
        assert_false(atomic_load(&b->leading));
    }
    /* a crashes (stops without releasing): b leads within a lease duration
     * and a retry period, and never while a leads. */
    int64_t t = now();
    cand_halt(a);
    assert_false(kle_elector_is_leader(a->e));
    await_leading(b, 8 * SEC);
    /* LD + RP + the takeover jitter; 1 s of slack for a loaded machine
     * (the bound is liveness, not a promise to the millisecond). */
    assert_true(atomic_load(&b->t_started) - t <= 4 * SEC + 1 * SEC + 200 * MS + 1000 * MS);
    clear_faults();
    cand_stop(a);
    cand_stop(b);
}

static void test_watch__black_holed_streams_fall_back_to_polling(void **state)
{
    (void)state;
    cand *a = &pool[0], *b = &pool[1];
    cand_start(a, "blackhole", "a", 0);
    await_leading(a, 5 * SEC);
    cand_start(b, "blackhole", "b", 0);
    await_watching(b, 1, 5 * SEC);
    post_fault("{\"verb\":\"watch\",\"resource\":\"leases\",\"blackhole\":true}");
    post_fault("{\"verb\":\"list\",\"resource\":\"leases\",\"blackhole\":true}");
    close_watches();
    /* The safety read (half a lease after the last sign of life) sees the
     * renewals the silent stream missed: b stops trusting it and polls. */
    int64_t t = now();
    await_watching(b, 0, 4 * SEC);
    assert_true(now() - t < 4 * SEC);
    assert_false(atomic_load(&b->leading));
    /* a crashes: the polling follower takes over within LD + RP (+ jitter). */
    t = now();
    cand_halt(a);
    await_leading(b, 7 * SEC);
    /* LD + the longest jittered poll (2.2 RP); 1 s of slack for a loaded
     * machine (the bound is liveness, not a promise to the millisecond). */
    assert_true(atomic_load(&b->t_started) - t <= 4 * SEC + 2200 * MS + 1000 * MS);
    /* The stream comes back. */
    clear_faults();
    await_watching(b, 1, 10 * SEC);
    cand_stop(a);
    cand_stop(b);
}

/* After each elector test, passed or failed: whatever still runs stops and
 * is freed before the next test (or the group's teardown frees the client
 * under it), and the server's faults go. */
static int cands_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(pool) / sizeof(pool[0]); i++)
        if (pool[i].e)
            cand_stop(&pool[i]);
    kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch__locks_watch_their_object),
        cmocka_unit_test_teardown(test_watch__release_is_taken_in_a_round_trip, cands_teardown),
        cmocka_unit_test_teardown(test_watch__ended_streams_resume, cands_teardown),
        cmocka_unit_test_teardown(test_watch__delayed_streams_never_cost_safety, cands_teardown),
        cmocka_unit_test_teardown(test_watch__black_holed_streams_fall_back_to_polling,
                                  cands_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
