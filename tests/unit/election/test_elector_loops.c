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
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/sys/lock.h"
#include "kle/testing.h"
#include "support/fake_world.h"

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
    /* Timings; 0: kube-controller-manager's 15 s / 10 s / 2 s. */
    int64_t ld_ms, rd_ms, rp_ms;
    /* The leadership deadline when the leader's work started. */
    int64_t deadline_at_start;
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
    f->deadline_at_start = kle_leading_deadline_ns(l);
    trace(f, "started", "");
    struct pollfd p = {.fd = kle_leading_fd(l), .events = POLLIN};
    f->fd_before = poll(&p, 1, 0);
    f->rerun_rc = kle_elector_run(f->elector);
    if (f->on_lead)
        f->on_lead(f, l);
    assert_int_equal(kle_leading_wait_ns(l, -1), 0);
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
    clock_and_store(&f->clock, &f->store, 1);
    assert_int_equal(kle_event_new(&f->done), 0);
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
    if (f->ld_ms) {
        c.lease_duration_ns = KLE_MS(f->ld_ms);
        c.renew_deadline_ns = KLE_MS(f->rd_ms);
        c.retry_period_ns = KLE_MS(f->rp_ms);
    }
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
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
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

static void fail_writes_and_gets(fixture *f, kle_leading *l)
{
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_UPDATE, 1000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 1000, KLE_ETRANSPORT);
}

/*
 * A slow answer to the winning write, and a retry period above half the
 * renew deadline (allowed: 8 s < 10 s / 1.2): the first renewal round must
 * still start before the deadline, and leadership end exactly at it,
 * renew_deadline after the winning write was sent, not a retry period
 * after its answer (4.9 + 8 = 12.9 s).
 */
static void test_elector_loops__slow_winning_answer_still_ends_at_the_bound(void **state)
{
    fixture *f = *state;
    f->ld_ms = 15000, f->rd_ms = 10000, f->rp_ms = 8000;
    f->on_lead = fail_writes_and_gets;
    make_elector(f, 0, NULL);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_CREATE, 1, 4900 * KLE_NS_PER_MS);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
    assert_true(since_t0(f, f->t_started) == 4900 * KLE_NS_PER_MS);
    assert_true(since_t0(f, f->deadline_at_start) == 10 * SEC);
    assert_true(since_t0(f, f->t_ended) == 10 * SEC);
    /* The one renewal round ran at 8 s, within the deadline. */
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 1);
}

/*
 * The winning write's answer comes after the renew deadline (the thread
 * was stuck): that acquisition was over before it was known, so the work
 * does not start on it; the fast path renews at once and leads from there.
 */
static void test_elector_loops__acquisition_answered_too_late_does_not_lead(void **state)
{
    fixture *f = *state;
    f->on_lead = fail_writes_and_gets;
    make_elector(f, 0, NULL);
    kle_fake_lock_stall_next(f->lock, KLE_FAKE_CREATE, 1, 11 * SEC);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->started, 1);
    assert_true(since_t0(f, f->t_started) == 11 * SEC);
    assert_true(since_t0(f, f->deadline_at_start) == 21 * SEC);
    assert_true(since_t0(f, f->t_ended) == 21 * SEC);
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_int_equal(r.leader_transitions, 0); /* Renewed, not taken again. */
    kle_record_dispose(&r);
}

static void stall_next_renewal(fixture *f, kle_leading *l)
{
    kle_fake_lock_stall_next(f->lock, KLE_FAKE_UPDATE, 1, 30 * SEC);
}

/*
 * The renewing thread is stuck in a call that ignores its timeout (a
 * frozen or blocked thread): the leadership guard still ends the term at
 * the deadline, and the late success does not revive it.
 */
static void test_elector_loops__stuck_renewal_ends_leadership_at_the_deadline(void **state)
{
    fixture *f = *state;
    f->on_lead = stall_next_renewal;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_true(since_t0(f, f->t_ended) == 10 * SEC);
    assert_false(f->leader_at_end);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
    assert_int_equal(f->started, 1);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.losses, 1);
}

static void slow_answers_for_a_minute(fixture *f, kle_leading *l)
{
    /* Every write lands at once and is answered 1.45 s later. */
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_UPDATE, 1000, 1450 * KLE_NS_PER_MS);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_GET, 1000, 1450 * KLE_NS_PER_MS);
    if (kle_leading_wait_ns(l, KLE_MS(60000)) == 0)
        return; /* Leadership ended: the assertions below say so. */
    kle_elector_stop(f->elector);
}

/*
 * At 4 s / 3 s / 1 s a lone leader whose answers take 1.45 s (under
 * min(renew_deadline - retry_period, renew_deadline / 2) = 1.5 s) keeps
 * leading: rounds are timed from each write's send, not its answer.
 */
static void test_elector_loops__leader_keeps_leading_with_slow_answers(void **state)
{
    fixture *f = *state;
    f->ld_ms = 4000, f->rd_ms = 3000, f->rp_ms = 1000;
    f->on_lead = slow_answers_for_a_minute;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.losses, 0);
    assert_int_equal(st.acquisitions, 1);
    /* Stopped after a minute; the renewal then in flight is answered first. */
    assert_true(since_t0(f, f->t_ended) >= 60 * SEC);
    assert_true(since_t0(f, f->t_ended) <= 60 * SEC + 1450 * KLE_NS_PER_MS);
    /* A renewal about every 1.45 s: 41 in the minute. */
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE) >= 40);
}

static void deadline_moves_with_renewals(fixture *f, kle_leading *l)
{
    int64_t first = kle_leading_deadline_ns(l);
    struct pollfd p = {.fd = kle_leading_deadline_fd(l), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    assert_int_equal(kle_leading_wait_ns(l, KLE_MS(2500)), KLE_ETIMEOUT); /* One renewal at 2 s. */
    assert_int_equal(poll(&p, 1, 0), 1);
    int64_t second = kle_leading_deadline_ns(l);
    assert_true(second - first == 2 * SEC);
    assert_int_equal(poll(&p, 1, 0), 0); /* Reading it acknowledged the change. */
    kle_elector_stop(f->elector);
}

static void test_elector_loops__leading_deadline_follows_renewals(void **state)
{
    fixture *f = *state;
    f->on_lead = deadline_moves_with_renewals;
    make_elector(f, 0, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, 0);
    assert_true(since_t0(f, f->deadline_at_start) == 10 * SEC);
}

/*
 * No descriptor left once the elector exists (a connection flood used them
 * up): winning the lease must still start the leader's work, because
 * nothing the elector needs after winning takes a new descriptor.
 */
static void test_elector_loops__no_descriptor_needed_after_winning(void **state)
{
    fixture *f = *state;
    f->on_lead = fail_writes_and_gets;
    make_elector(f, 0, NULL);
    struct rlimit old, none;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    none = old;
    none.rlim_cur = 0;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &none), 0);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(f->started, 1);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
}

typedef struct toucher {
    fixture *f;
    kle_event *quit;
    int touches;
} toucher;

/* Writes the stored record again every 2 s for a minute, as `kubectl label --overwrite` does. */
static void *touch_main(void *p)
{
    toucher *t = p;
    for (int i = 0; i < 30; i++) {
        int64_t next = kle_clock_monotonic_ns(t->f->clock) + 2 * SEC;
        if (kle_clock_wait(t->f->clock, t->quit, next) == 0)
            break;
        kle_record r = KLE_RECORD_INIT;
        if (kle_fake_store_peek(&r, NULL, t->f->store) == 0) {
            if (!kle_record_holder_is(&r, "me")) {
                kle_fake_store_put(t->f->store, &r);
                t->touches++;
            }
            kle_record_dispose(&r);
        }
    }
    return NULL;
}

static void stop_at_once(fixture *f, kle_leading *l)
{
    kle_elector_stop(f->elector);
}

/*
 * The holder died; someone touches the lock object every 2 s. The follower
 * still takes over about when the lease expires: within LeaseDuration + 1 s
 * (the touch rule) + one acquire retry (2.2 × RetryPeriod).
 */
static void test_elector_loops__touching_the_object_does_not_hold_off_a_takeover(void **state)
{
    fixture *f = *state;
    put_other(f, 15, 3);
    toucher t = {f, NULL, 0};
    assert_int_equal(kle_event_new(&t.quit), 0);
    pthread_t tt;
    assert_int_equal(kle_fake_clock_spawn(&tt, f->clock, touch_main, &t), 0);
    f->on_lead = stop_at_once;
    make_elector(f, 0, NULL);
    pthread_t e = start(f);
    finish(f, e);
    kle_event_set(t.quit);
    kle_fake_clock_leave(f->clock);
    pthread_join(tt, NULL);
    assert_int_equal(kle_fake_clock_join(f->clock), 0);
    kle_event_free(t.quit);
    assert_int_equal(f->started, 1);
    assert_true(t.touches >= 7);
    assert_true(since_t0(f, f->t_started) >= 15 * SEC);
    assert_true(since_t0(f, f->t_started) <= 16 * SEC + 4400 * KLE_NS_PER_MS);
    assert_int_equal(f->transitions, 4);
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
    tl->base = (kle_lock){.version = 1, /* A version-1 lock: polled. */
                          .get = tl_get,
                          .create = tl_create,
                          .update = tl_update,
                          .identity = tl_identity,
                          .describe = tl_describe,
                          .free = tl_free};
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
    kle_record r = KLE_RECORD_INIT;
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
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_string_equal(kle_record_holder(&r), "");
    assert_int_equal(r.lease_duration_seconds, 1);
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
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
    kle_record r = KLE_RECORD_INIT;
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
    bad_config cases[13];
    for (int i = 0; i < 13; i++)
        cases[i].cfg = good;
    cases[0].cfg.renew_deadline_ns = KLE_MS(15000);
    cases[0].message = "invalid elector config: leaseDuration must be greater than renewDeadline "
                       "(lease_duration_ns=15000000000, renew_deadline_ns=15000000000)";
    cases[1].cfg.retry_period_ns = KLE_MS(8334);
    cases[1].message = "invalid elector config: renewDeadline must be greater than "
                       "retryPeriod*JitterFactor (renew_deadline_ns=10000000000, "
                       "retry_period_ns=8334000000, "
                       "JitterFactor=1.2)";
    cases[2].cfg.retry_period_ns = KLE_MS(0);
    cases[2].message = "invalid elector config: retryPeriod must be greater than zero";
    cases[3].cfg.lease_duration_ns = KLE_MS(900);
    cases[3].cfg.renew_deadline_ns = KLE_MS(500);
    cases[3].cfg.retry_period_ns = KLE_MS(100);
    cases[3].message = "invalid elector config: leaseDuration must be at least 1s: the record "
                       "carries whole seconds (lease_duration_ns=900000000)";
    cases[4].cfg.callbacks.on_started_leading = NULL;
    cases[4].message = "invalid elector config: OnStartedLeading callback must not be nil";
    cases[5].cfg.callbacks.on_stopped_leading = NULL;
    cases[5].message = "invalid elector config: OnStoppedLeading callback must not be nil";
    cases[6].cfg.lock = NULL;
    cases[6].message = "invalid elector config: Lock must not be nil";
    cases[7].cfg.lock = nameless;
    cases[7].message = "invalid elector config: Lock identity is empty";
    cases[8].cfg.renew_deadline_ns = KLE_MS(-5);
    cases[8].cfg.retry_period_ns = KLE_MS(-10);
    cases[8].message = "invalid elector config: renewDeadline must be greater than zero";
    cases[9].cfg.version = 99;
    cases[9].message = "kle_elector_new: config version 99 is not supported";
    /* 2^32 + 1 s: an int cast would write leaseDurationSeconds 1. */
    cases[10].cfg.lease_duration_ns = KLE_MS(INT64_C(4294967297) * 1000);
    cases[10].message = "invalid elector config: leaseDuration does not fit the record's "
                        "leaseDurationSeconds (lease_duration_ns=4294967297000000000, "
                        "at most 2147483647000000000: 2147483647 s)";
    /* 10.9 s is written as 10 s, not more than the renew deadline. */
    cases[11].cfg.lease_duration_ns = KLE_MS(10900);
    cases[11].message = "invalid elector config: leaseDuration as the record carries it, in whole "
                        "seconds (10s), must be greater than renewDeadline "
                        "(lease_duration_ns=10900000000, renew_deadline_ns=10000000000)";
    cases[12].cfg.call_timeout_ns = INT64_MAX;
    cases[12].message = "invalid elector config: call_timeout_ns must be between 0 and "
                        "2147483647000000000 (call_timeout_ns=9223372036854775807)";
    for (int i = 0; i < 13; i++) {
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

static kle_elector_stats stats_of(fixture *f)
{
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    assert_int_equal(kle_elector_get_stats(&st, f->elector), 0);
    return st;
}

/*
 * round_age_ns: -1 while not running; while following with answers that
 * come at once, it never exceeds one jittered wait (2.2 × retry period);
 * a call stuck past its timeout (a wedged loop) shows as an age beyond
 * 2.2 × retry_period + 3 × call timeout, the documented bound; once the
 * call returns the age drops again. last_call_error follows the last
 * lock call: the error of a failed one, 0 once one is answered.
 */
static void test_elector_loops__round_age_shows_a_wedged_loop(void **state)
{
    fixture *f = *state;
    put_other(f, 1000000, 0);
    make_elector(f, 0, NULL);
    assert_int_equal(stats_of(f).round_age_ns, -1);
    pthread_t t = start(f);
    int64_t max = 0;
    for (int i = 0; i < 1000; i++) {
        kle_clock_sleep(f->clock, 100 * KLE_NS_PER_MS);
        int64_t age = stats_of(f).round_age_ns;
        assert_true(age >= 0);
        max = age > max ? age : max;
    }
    assert_true(max <= 4400 * KLE_NS_PER_MS);
    assert_true(max > 2 * SEC);
    assert_int_equal(stats_of(f).last_call_error, 0);

    /* Failing calls: the loop still completes rounds; the error shows. */
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 3, KLE_ETRANSPORT);
    kle_clock_sleep(f->clock, 5 * SEC);
    assert_int_equal(stats_of(f).last_call_error, KLE_ETRANSPORT);
    assert_true(stats_of(f).round_age_ns <= 4400 * KLE_NS_PER_MS);
    kle_clock_sleep(f->clock, 20 * SEC);
    assert_int_equal(stats_of(f).last_call_error, 0);

    /* A call stuck for 60 s: the age passes the bound (4.4 s + 3 × 5 s). */
    kle_fake_lock_stall_next(f->lock, KLE_FAKE_GET, 1, 60 * SEC);
    int64_t bound = 4400 * KLE_NS_PER_MS + 3 * 5 * SEC;
    int wedged = 0;
    for (int i = 0; i < 700; i++) {
        kle_clock_sleep(f->clock, 100 * KLE_NS_PER_MS);
        if (stats_of(f).round_age_ns > bound)
            wedged = 1;
    }
    assert_true(wedged);
    assert_true(stats_of(f).round_age_ns <= 4400 * KLE_NS_PER_MS);
    kle_elector_stop(f->elector);
    finish(f, t);
    assert_int_equal(stats_of(f).round_age_ns, -1);
}

/* Log lines by severity, for the tests that check how a line is logged. */
static pthread_mutex_t sev_mu = PTHREAD_MUTEX_INITIALIZER;
static char sev_lines[64][512];
static kle_log_severity sev_of[64];
static int n_sev_lines;

static void sev_capture(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                        void *data)
{
    (void)v, (void)file, (void)line, (void)data;
    pthread_mutex_lock(&sev_mu);
    if (n_sev_lines < 64) {
        snprintf(sev_lines[n_sev_lines], sizeof(sev_lines[0]), "%s", msg);
        sev_of[n_sev_lines++] = sev;
    }
    pthread_mutex_unlock(&sev_mu);
}

/* The index of the first captured line containing @p text, or -1. */
static int find_line(const char *text)
{
    for (int i = 0; i < n_sev_lines; i++)
        if (strstr(sev_lines[i], text))
            return i;
    return -1;
}

/*
 * After leadership was lost, the release is best effort on a lease that may
 * be another's: its failure is a warning that says so, not an error.
 */
static void test_elector_loops__release_after_a_loss_is_a_warning(void **state)
{
    fixture *f = *state;
    n_sev_lines = 0;
    kle_log_set_handler(sev_capture, NULL);
    f->on_lead = fail_everything;
    make_elector(f, 1, NULL);
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(f->run_rc, KLE_ETIMEOUT);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    kle_log_set_handler(quiet_log_handler, NULL);
    int i = find_line("Failed to release lock");
    assert_true(i >= 0);
    assert_int_equal(sev_of[i], KLE_LOG_WARNING);
    assert_non_null(strstr(sev_lines[i], "leadership was already lost"));
}

/* Logs name the lock by its describe (namespace/name), not by config.name. */
static void test_elector_loops__logs_name_the_lock_by_its_describe(void **state)
{
    fixture *f = *state;
    n_sev_lines = 0;
    kle_log_set_handler(sev_capture, NULL);
    kle_lock *lock;
    assert_int_equal(kle_fake_lock_new(&lock, f->store, "me", "default/described"), 0);
    f->lock = lock;
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.clock = f->clock;
    c.name = "metrics-label";
    c.callbacks.on_started_leading = cb_started;
    c.callbacks.on_stopped_leading = cb_stopped;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
    f->on_lead = fail_everything;
    pthread_t t = start(f);
    finish(f, t);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    kle_log_set_handler(quiet_log_handler, NULL);
    assert_true(find_line("successfully acquired lease default/described") >= 0);
    assert_int_equal(find_line("metrics-label"), -1);
    /* The name labels the metrics. */
    char *text = NULL;
    assert_int_equal(kle_elector_metrics(&text, f->elector), 0);
    assert_non_null(strstr(text, "leader_election_master_status{name=\"metrics-label\"} 0\n"));
    kle_free(text);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_elector_loops__leadership_ends_at_renew_deadline_when_renewals_fail),
        T(test_elector_loops__round_age_shows_a_wedged_loop),
        T(test_elector_loops__release_after_a_loss_is_a_warning),
        T(test_elector_loops__logs_name_the_lock_by_its_describe),
        T(test_elector_loops__inflight_renewal_cannot_extend_leadership),
        T(test_elector_loops__acquire_retries_within_jitter_bounds),
        T(test_elector_loops__stop_during_acquire),
        T(test_elector_loops__stop_cancels_an_inflight_call),
        T(test_elector_loops__stop_while_leading_keeps_lease_without_release),
        T(test_elector_loops__stop_while_leading_releases_with_release_on_cancel),
        T(test_elector_loops__release_waits_for_on_started_leading),
        T(test_elector_loops__rival_cannot_take_over_a_renewed_lease),
        T(test_elector_loops__config_validation_names_the_rule),
        T(test_elector_loops__slow_winning_answer_still_ends_at_the_bound),
        T(test_elector_loops__acquisition_answered_too_late_does_not_lead),
        T(test_elector_loops__stuck_renewal_ends_leadership_at_the_deadline),
        T(test_elector_loops__leader_keeps_leading_with_slow_answers),
        T(test_elector_loops__leading_deadline_follows_renewals),
        T(test_elector_loops__no_descriptor_needed_after_winning),
        T(test_elector_loops__touching_the_object_does_not_hold_off_a_takeover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
