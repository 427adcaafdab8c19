/*
 * How to unit-test a controller's leadership handling with libkle's fakes.
 *
 * The "controller" below reconciles once per second, but only while it
 * leads. The test runs two replicas of it against one fake lock object on a
 * fake clock, crashes the leader's connection to the API server, and checks
 * that the other replica takes over, that the old one stopped working before
 * the new one started, and that the fencing token went up. Ten virtual
 * minutes run in a few milliseconds, the same way every time.
 *
 * Build: cc controller_test.c $(pkg-config --cflags --libs kle) -lpthread
 */
#include <kle/kle.h>
#include <kle/testing.h>

#include <assert.h>
#include <stdio.h>
#include <string.h>

/* ---- The code under test: a controller that works while it leads. ---- */

typedef struct controller {
    const char *name;
    kle_clock *clock;
    int reconciles;          /* Work done. */
    int64_t last_reconcile;  /* Monotonic time of the last piece of work. */
    int64_t first_reconcile; /* ... and of the first, in the current term. */
    int token;               /* Fencing token of the current term. */
} controller;

static void controller_lead(kle_leading *leading, void *data)
{
    controller *c = data;
    c->token = kle_leading_transitions(leading);
    c->first_reconcile = kle_clock_monotonic_ns(c->clock);
    /* Reconcile every second until leadership ends. */
    while (kle_leading_wait_ns(leading, KLE_SEC(1)) != 0) {
        c->reconciles++;
        c->last_reconcile = kle_clock_monotonic_ns(c->clock);
    }
}

static void controller_stopped(void *data)
{
}

/* Tests usually silence or capture libkle's log; here, keep it quiet. */
static void drop_log(kle_log_severity severity, int v, const char *file, int line, const char *msg,
                     void *data)
{
}

/* ---- The test. ---- */

typedef struct replica {
    controller ctl;
    kle_lock *lock; /* Owned by the elector; kept to script faults. */
    kle_elector *elector;
    pthread_t thread;
} replica;

static void *replica_main(void *p)
{
    replica *r = p;
    while (kle_elector_run(r->elector) == KLE_ETIMEOUT) {
        /* Lost leadership: campaign again, as a long-running controller does. */
    }
    return NULL;
}

static void start_replica(replica *r, const char *name, kle_fake_store *store, kle_clock *clock)
{
    memset(r, 0, sizeof(*r));
    r->ctl.name = name;
    r->ctl.clock = clock;
    int rc = kle_fake_lock_new(&r->lock, store, name, "default/my-controller");
    assert(rc == 0);
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT; /* 15 s / 10 s / 2 s */
    cfg.lock = r->lock;
    cfg.clock = clock;
    cfg.callbacks.on_started_leading = controller_lead;
    cfg.callbacks.on_stopped_leading = controller_stopped;
    cfg.callbacks.data = &r->ctl;
    cfg.jitter_seed = (uint64_t)name[8]; /* A fixed seed makes every run the same. */
    rc = kle_elector_new(&r->elector, &cfg);
    assert(rc == 0);
    rc = kle_fake_clock_spawn(&r->thread, clock, replica_main, r);
    assert(rc == 0);
}

int main(void)
{
    kle_log_set_handler(drop_log, NULL);
    kle_clock *clock;
    kle_fake_clock_opts opts = KLE_FAKE_CLOCK_OPTS_INIT;
    opts.auto_advance = 1; /* Jump to the next deadline whenever every replica waits. */
    int rc = kle_fake_clock_new(&clock, &opts);
    assert(rc == 0);
    kle_fake_store *store;
    rc = kle_fake_store_new(&store, clock);
    assert(rc == 0);

    /* This thread takes part too, so that it can sleep on virtual time. */
    rc = kle_fake_clock_join(clock);
    assert(rc == 0);
    replica a, b;
    start_replica(&a, "replica-a", store, clock);
    kle_clock_sleep(clock, 1000 * KLE_NS_PER_MS);
    start_replica(&b, "replica-b", store, clock);

    /* A leads, B waits. */
    kle_clock_sleep(clock, 60 * KLE_NS_PER_SEC);
    assert(kle_elector_is_leader(a.elector) && !kle_elector_is_leader(b.elector));
    assert(a.ctl.reconciles >= 59 && b.ctl.reconciles == 0);

    /* A loses the API server: every call fails from now on. */
    kle_fake_lock_fail_next(a.lock, KLE_FAKE_GET, 1000000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(a.lock, KLE_FAKE_UPDATE, 1000000, KLE_ETRANSPORT);
    int64_t cut = kle_clock_monotonic_ns(clock);
    kle_clock_sleep(clock, 60 * KLE_NS_PER_SEC);

    /* B took over; A stopped working before B started; the token went up. */
    assert(kle_elector_is_leader(b.elector) && !kle_elector_is_leader(a.elector));
    assert(a.ctl.last_reconcile < b.ctl.first_reconcile);
    assert(b.ctl.token == a.ctl.token + 1);
    int64_t gap = b.ctl.first_reconcile - cut;
    printf("controller_test: B took over %.1f s after A was cut off; A stopped %.1f s before B "
           "started\n",
           (double)gap / 1e9, (double)(b.ctl.first_reconcile - a.ctl.last_reconcile) / 1e9);

    kle_elector_stop(a.elector);
    kle_elector_stop(b.elector);
    kle_fake_clock_leave(clock);
    pthread_join(a.thread, NULL);
    pthread_join(b.thread, NULL);
    kle_elector_free(a.elector);
    kle_elector_free(b.elector);
    kle_fake_store_free(store);
    kle_clock_free(clock);
    printf("controller_test: 1 passed, 0 failed\n");
    return 0;
}
