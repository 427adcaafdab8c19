/*
 * The elector's loops, run for real (kle_elector_run and its threads) on an
 * auto-advancing fake clock: every time below is virtual and exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/sys/lock.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC

typedef struct fixture fixture;
struct fixture {
    kle_clock *clock;
    kle_fake_store *store;
    kle_lock *lock; /* Owned by the elector once created. */
    kle_elector *elector;
    kle_event *done;
    int run_rc;
    int64_t t0;
    /* What the callbacks saw. */
    char trace[16][48];
    int n_trace;
    int started, stopped;
    int64_t t_started, t_ended, t_callback_done;
    int64_t wall_callback_done;
    int leader_at_end, leader_after_cleanup, transitions, rerun_rc;
    int fd_before, fd_after;
    /* What the leader does while leading. */
    void (*on_lead)(fixture *f, kle_leading *l);
    int64_t cleanup_ns;
};

static void trace(fixture *f, const char *what, const char *arg)
{
    if (f->n_trace < 16)
        snprintf(f->trace[f->n_trace++], 48, "%s%s", what, arg);
}

static void cb_started(kle_leading *l, void *d)
{
    fixture *f = d;
    f->started++;
    f->t_started = kle_clock_monotonic_ns(f->clock);
    f->transitions = kle_leading_transitions(l);
    trace(f, "started", "");
    struct pollfd p = {.fd = kle_leading_fd(l), .events = POLLIN};
    f->fd_before = poll(&p, 1, 0);
    f->rerun_rc = kle_elector_run(f->elector);
    if (f->on_lead)
        f->on_lead(f, l);
    assert_int_equal(kle_leading_wait(l, -1), 0);
    assert_true(kle_leading_is_over(l));
    f->fd_after = poll(&p, 1, 0);
    f->t_ended = kle_clock_monotonic_ns(f->clock);
    f->leader_at_end = kle_elector_is_leader(f->elector);
    trace(f, "ended", "");
    if (f->cleanup_ns) {
        kle_clock_sleep(f->clock, f->cleanup_ns);
        f->leader_after_cleanup = kle_elector_is_leader(f->elector);
    }
    f->t_callback_done = kle_clock_monotonic_ns(f->clock);
    f->wall_callback_done = kle_clock_wall_ns(f->clock);
}

static void cb_stopped(void *d)
{
    fixture *f = d;
    f->stopped++;
    trace(f, "stopped", "");
}

static void cb_new_leader(const char *id, void *d)
{
    trace(d, "new:", id);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = 1;
    quiet_log_install();
    assert_int_equal(kle_fake_clock_new(&f->clock, &o), 0);
    assert_int_equal(kle_fake_store_new(&f->store, f->clock), 0);
    assert_int_equal(kle_event_new(&f->done), 0);
    assert_int_equal(kle_fake_clock_join(f->clock), 0);
    f->t0 = kle_clock_monotonic_ns(f->clock);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kle_fake_clock_leave(f->clock);
    kle_elector_free(f->elector);
    kle_fake_store_free(f->store);
    kle_event_free(f->done);
    kle_clock_free(f->clock);
    free(f);
    return 0;
}

static void make_elector(fixture *f, int release_on_cancel, kle_lock *lock)
{
    if (!lock)
        assert_int_equal(kle_fake_lock_new(&lock, f->store, "me", "default/loops"), 0);
    f->lock = lock;
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.clock = f->clock;
    c.release_on_cancel = release_on_cancel;
    c.jitter_seed = 42;
    c.callbacks.on_started_leading = cb_started;
    c.callbacks.on_stopped_leading = cb_stopped;
    c.callbacks.on_new_leader = cb_new_leader;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
}

static void *run_main(void *p)
{
    fixture *f = p;
    f->run_rc = kle_elector_run(f->elector);
    kle_event_set(f->done);
    return NULL;
}

/* Starts the elector on a participant thread. */
static pthread_t start(fixture *f)
{
    pthread_t t;
    assert_int_equal(kle_fake_clock_spawn(&t, f->clock, run_main, f), 0);
    return t;
}

/* Waits (on virtual time) for run to return, then joins its thread. */
static void finish(fixture *f, pthread_t t)
{
    assert_int_equal(kle_clock_wait(f->clock, f->done, INT64_MAX), 0);
    pthread_join(t, NULL);
}

static int64_t since_t0(fixture *f, int64_t t)
{
    return t - f->t0;
}

static void put_other(fixture *f, int duration, int transitions)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, "other");
    r.lease_duration_seconds = duration;
    r.leader_transitions = transitions;
    kle_fake_store_put(f->store, &r);
    kle_record_dispose(&r);
}

static void fail_everything(fixture *f, kle_leading *l)
{
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_UPDATE, 1000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 1000, KLE_ETRANSPORT);
}

static void test_elector_loops__leadership_ends_at_renew_deadline_when_renewals_fail(void **state)
{
    fixture *f = *state;
    f->on_lead = fail_everything;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
    assert_int_equal(since_t0(f, f->t_started), 0);
    /* Leadership ends renew_deadline after the last successful write was
     * sent (client-go would give up one retry period later). */
    assert_true(f->t_ended - f->t_started == 10 * SEC);
    assert_false(f->leader_at_end);
    assert_false(kle_elector_is_leader(f->elector));
    assert_int_equal(f->started, 1);
    assert_int_equal(f->stopped, 1);
    kle_elector_stats st;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.losses, 1);
    assert_int_equal(st.acquisitions, 1);
    /* Retries every retry period until then: at +2, +4, +6, +8. */
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 4);
    char ev[128];
    assert_int_equal(kle_fake_lock_last_event(f->lock, ev, sizeof(ev)), 2);
    assert_string_equal(ev, "me stopped leading");
}

static void slow_writes(fixture *f, kle_leading *l)
{
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_UPDATE, 1000, 60 * SEC);
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 1000, KLE_ETRANSPORT);
}

static void test_elector_loops__inflight_renewal_cannot_extend_leadership(void **state)
{
    fixture *f = *state;
    f->on_lead = slow_writes;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
    /* Writes that would take 60 s are cut at the deadline: leadership still
     * ends exactly 10 s after it began, although the writes took effect. */
    assert_true(f->t_ended - f->t_started == 10 * SEC);
    assert_false(f->leader_at_end);
    assert_true(kle_fake_store_writes(f->store) >= 2);
}

/* A lock that records when each get starts, around a fake lock. */
typedef struct timing_lock {
    kle_lock base;
    kle_lock *inner;
    kle_clock *clock;
    int64_t times[1024];
    int n;
} timing_lock;

static int tl_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    timing_lock *t = (timing_lock *)self;
    if (t->n < 1024)
        t->times[t->n++] = kle_clock_monotonic_ns(t->clock);
    return t->inner->get(out, t->inner, ctx);
}
static int tl_create(kle_lock *self, const kle_record *r, const kle_lock_ctx *ctx)
{
    timing_lock *t = (timing_lock *)self;
    return t->inner->create(t->inner, r, ctx);
}
static int tl_update(kle_lock *self, const kle_record *r, const kle_lock_ctx *ctx)
{
    timing_lock *t = (timing_lock *)self;
    return t->inner->update(t->inner, r, ctx);
}
static const char *tl_identity(kle_lock *self)
{
    return kle_lock_identity(((timing_lock *)self)->inner);
}
static const char *tl_describe(kle_lock *self)
{
    return kle_lock_describe(((timing_lock *)self)->inner);
}
static void tl_free(kle_lock *self)
{
    timing_lock *t = (timing_lock *)self;
    kle_lock_free(t->inner);
    free(t);
}

static void test_elector_loops__acquire_retries_within_jitter_bounds(void **state)
{
    fixture *f = *state;
    put_other(f, 1000000, 0);
    timing_lock *tl = calloc(1, sizeof(*tl));
    tl->base = (kle_lock){KLE_LOCK_VERSION, tl_get,      tl_create, tl_update, NULL,
                          tl_identity,      tl_describe, tl_free};
    tl->clock = f->clock;
    assert_int_equal(kle_fake_lock_new(&tl->inner, f->store, "me", "default/jitter"), 0);
    make_elector(f, 0, &tl->base);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 1000 * SEC);
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    assert_int_equal(f->started, 0);
    assert_int_equal(f->stopped, 1);

    int64_t lo = INT64_MAX, hi = 0, sum = 0;
    assert_true(tl->n > 200);
    for (int i = 1; i < tl->n; i++) {
        int64_t d = tl->times[i] - tl->times[i - 1];
        assert_true(d >= 2 * SEC);
        assert_true(d < 4400 * KLE_NS_PER_MS);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += d;
    }
    /* Uniform jitter over [2 s, 4.4 s): it spans the range and averages 3.2 s. */
    int64_t mean = sum / (tl->n - 1);
    assert_true(lo < 2200 * KLE_NS_PER_MS);
    assert_true(hi > 4200 * KLE_NS_PER_MS);
    assert_true(mean > 3000 * KLE_NS_PER_MS && mean < 3400 * KLE_NS_PER_MS);
}

static void test_elector_loops__stop_during_acquire(void **state)
{
    fixture *f = *state;
    put_other(f, 15, 0);
    make_elector(f, 1, NULL);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 7 * SEC);
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    assert_true(since_t0(f, kle_clock_monotonic_ns(f->clock)) == 7 * SEC);
    assert_int_equal(f->started, 0);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    /* Stop stays in effect: another run returns at once, stopping once more. */
    assert_int_equal(kle_elector_run(f->elector), 0);
    assert_int_equal(f->stopped, 2);
}

static void test_elector_loops__stop_cancels_an_inflight_call(void **state)
{
    fixture *f = *state;
    make_elector(f, 0, NULL);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_GET, 1, 60 * SEC);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 1 * SEC);
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_true(since_t0(f, kle_clock_monotonic_ns(f->clock)) == 1 * SEC);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_CREATE), 0);
    assert_int_equal(f->started, 0);
    assert_int_equal(f->stopped, 1);
}

static void test_elector_loops__stop_while_leading_keeps_lease_without_release(void **state)
{
    fixture *f = *state;
    put_other(f, 15, 4);
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 30 * SEC);
    assert_true(kle_elector_is_leader(f->elector));
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    const char *expected[] = {"new:other", "new:me", "started", "ended", "stopped"};
    assert_int_equal(f->n_trace, 5);
    for (int i = 0; i < 5; i++)
        assert_string_equal(f->trace[i], expected[i]);
    assert_int_equal(f->transitions, 5);
    assert_int_equal(f->fd_before, 0);
    assert_int_equal(f->fd_after, 1);
    assert_int_equal(f->rerun_rc, KLE_ESTATE);
    kle_record r;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
    assert_false(kle_elector_is_leader(f->elector));
}

static void test_elector_loops__stop_while_leading_releases_with_release_on_cancel(void **state)
{
    fixture *f = *state;
    put_other(f, 15, 4);
    make_elector(f, 1, NULL);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 30 * SEC);
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    kle_record r;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_string_equal(kle_record_holder(&r), "");
    assert_int_equal(r.lease_duration_seconds, 1);
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
    kle_elector_stats st;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.releases, 1);
}

static void test_elector_loops__release_waits_for_on_started_leading(void **state)
{
    fixture *f = *state;
    f->cleanup_ns = 40 * SEC; /* Longer than the lease itself. */
    make_elector(f, 1, NULL);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 5 * SEC);
    uint64_t writes_at_stop = kle_fake_store_writes(f->store);
    kle_elector_stop(f->elector);
    finish(f, t);
    /* The leader's work went on for 40 s after the stop, covered by renewals. */
    assert_true(f->t_callback_done - f->t_ended == 40 * SEC);
    assert_true(f->leader_at_end);
    assert_true(f->leader_after_cleanup);
    assert_true(kle_fake_store_writes(f->store) - writes_at_stop >= 20);
    kle_record r;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_string_equal(kle_record_holder(&r), "");
    assert_true(r.renew_time_ns >= f->wall_callback_done);
    kle_record_dispose(&r);
}

static void test_elector_loops__rival_cannot_take_over_a_renewed_lease(void **state)
{
    fixture *f = *state;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    kle_clock_sleep(f->clock, 1 * SEC);
    /* A rival polls the same object for a long time; the leader keeps it. */
    kle_lock *rival_lock;
    assert_int_equal(kle_fake_lock_new(&rival_lock, f->store, "rival", "default/loops"), 0);
    kle_elector *rival;
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = rival_lock;
    c.clock = f->clock;
    c.callbacks.on_started_leading = cb_started;
    c.callbacks.on_stopped_leading = cb_stopped;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&rival, &c), 0);
    for (int i = 0; i < 60; i++) {
        kle_clock_sleep(f->clock, 5 * SEC);
        assert_true(kle_elector_is_leader(f->elector));
    }
    kle_elector_stop(f->elector);
    finish(f, t);
    kle_elector_free(rival);
}

typedef struct {
    kle_elector_config cfg;
    const char *message;
} bad_config;

static const char *empty_identity(kle_lock *self)
{
    (void)self;
    return "";
}

static void test_elector_loops__config_validation_names_the_rule(void **state)
{
    fixture *f = *state;
    kle_lock *lock;
    assert_int_equal(kle_fake_lock_new(&lock, f->store, "me", NULL), 0);
    /* Lock constructors refuse an empty identity; a lock of one's own may not. */
    kle_lock nameless_lock = *lock;
    nameless_lock.identity = empty_identity;
    kle_lock *nameless = &nameless_lock;
    kle_elector_config good = KLE_ELECTOR_CONFIG_INIT;
    good.lock = lock;
    good.callbacks.on_started_leading = cb_started;
    good.callbacks.on_stopped_leading = cb_stopped;
    bad_config cases[10];
    for (int i = 0; i < 10; i++)
        cases[i].cfg = good;
    cases[0].cfg.renew_deadline_ms = 15000;
    cases[0].message = "invalid elector config: leaseDuration must be greater than renewDeadline "
                       "(lease_duration_ms=15000, renew_deadline_ms=15000)";
    cases[1].cfg.retry_period_ms = 8334;
    cases[1].message = "invalid elector config: renewDeadline must be greater than "
                       "retryPeriod*JitterFactor (renew_deadline_ms=10000, retry_period_ms=8334, "
                       "JitterFactor=1.2)";
    cases[2].cfg.retry_period_ms = 0;
    cases[2].message = "invalid elector config: retryPeriod must be greater than zero";
    cases[3].cfg.lease_duration_ms = 900;
    cases[3].cfg.renew_deadline_ms = 500;
    cases[3].cfg.retry_period_ms = 100;
    cases[3].message = "invalid elector config: leaseDuration must be at least 1s: the record "
                       "carries whole seconds (lease_duration_ms=900)";
    cases[4].cfg.callbacks.on_started_leading = NULL;
    cases[4].message = "invalid elector config: OnStartedLeading callback must not be nil";
    cases[5].cfg.callbacks.on_stopped_leading = NULL;
    cases[5].message = "invalid elector config: OnStoppedLeading callback must not be nil";
    cases[6].cfg.lock = NULL;
    cases[6].message = "invalid elector config: Lock must not be nil";
    cases[7].cfg.lock = nameless;
    cases[7].message = "invalid elector config: Lock identity is empty";
    cases[8].cfg.renew_deadline_ms = -5;
    cases[8].cfg.retry_period_ms = -10;
    cases[8].message = "invalid elector config: renewDeadline must be greater than zero";
    cases[9].cfg.version = 99;
    cases[9].message = "kle_elector_new: config version 99 is not supported";
    for (int i = 0; i < 10; i++) {
        kle_elector *e = (kle_elector *)&cases[i];
        int rc = kle_elector_new(&e, &cases[i].cfg);
        assert_true(rc == KLE_EINVAL || rc == KLE_EVERSION);
        assert_null(e);
        assert_string_equal(kle_error_last()->message, cases[i].message);
    }
    /* An incomplete lock vtable is rejected with the member it lacks. */
    kle_lock broken = *lock;
    broken.update = NULL;
    kle_elector_config c = good;
    c.lock = &broken;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &c), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "invalid elector config: lock: required vtable member update is NULL");
    broken.version = 7;
    assert_int_equal(kle_elector_new(&e, &c), KLE_EVERSION);
    /* client-go's defaults are accepted, and the lock then belongs to the elector. */
    assert_int_equal(kle_elector_new(&e, &good), 0);
    kle_elector_free(e);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_elector_loops__leadership_ends_at_renew_deadline_when_renewals_fail),
        T(test_elector_loops__inflight_renewal_cannot_extend_leadership),
        T(test_elector_loops__acquire_retries_within_jitter_bounds),
        T(test_elector_loops__stop_during_acquire),
        T(test_elector_loops__stop_cancels_an_inflight_call),
        T(test_elector_loops__stop_while_leading_keeps_lease_without_release),
        T(test_elector_loops__stop_while_leading_releases_with_release_on_cancel),
        T(test_elector_loops__release_waits_for_on_started_leading),
        T(test_elector_loops__rival_cannot_take_over_a_renewed_lease),
        T(test_elector_loops__config_validation_names_the_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
