/*
 * Coordinated election and planned handover on the fake lock: what the
 * elector keeps of a record it does not own, when it refuses to take a
 * lease, and how a leader ends its term for a preferred holder.
 *
 * The decisions of one try run on the election's state machine, driven on
 * a manual fake clock (support/sm_driver.h) with a retry period of 1 ms, so
 * that a try can run at any instant 2.2 ms or more after the last (see
 * test_try_acquire.c); the ends of terms and the watch run through the
 * public elector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/fake_world.h"
#include "support/sm_driver.h"

#define SEC KLE_NS_PER_SEC
#define MS  KLE_NS_PER_MS
/* More than the longest wait after a failed try (1 ms + 1.2 ms of jitter). */
#define NEXT_TRY (3 * MS)

/* Sets preferredHolder (and a strategy) in the stored record, as kle transfer does. */
static void prefer(kle_fake_store *store, const char *preferred)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, store), 0);
    kle_record_set_string(&r.strategy, "OldestEmulationVersion");
    kle_record_set_string(&r.preferred_holder, preferred);
    assert_int_equal(kle_fake_store_put(store, &r), 0);
    kle_record_dispose(&r);
}

static kle_record stored(kle_fake_store *store)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, store), 0);
    return r;
}

static const char *str(const char *s)
{
    return s ? s : "(null)";
}

/* ---- One try at a time: the state machine ----------------------------------- */

static int setup_sm(void **state, int coordinated, int release_on_cancel)
{
    quiet_log_install();
    smd_opts o = SMD_OPTS_INIT;
    o.description = "default/coordinated";
    o.retry_period = KLE_MS(1);
    o.coordinated = coordinated;
    o.release_on_cancel = release_on_cancel;
    *state = smd_new(&o);
    return 0;
}

static int setup_plain(void **state)
{
    return setup_sm(state, 0, 0);
}

static int setup_releasing(void **state)
{
    return setup_sm(state, 0, 1);
}

static int setup_coordinated(void **state)
{
    return setup_sm(state, 1, 0);
}

static int teardown_sm(void **state)
{
    smd_free(*state);
    return 0;
}

static void sm_put(smd *d, const char *holder, int duration, const char *strategy,
                   const char *preferred)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = duration;
    r.leader_transitions = 4;
    r.renew_time_ns = smd_wall(d);
    /* A fresh lease, as a handover writes it (acquireTime = renewTime). */
    r.acquire_time_ns = r.renew_time_ns;
    kle_record_set_string(&r.strategy, strategy);
    kle_record_set_string(&r.preferred_holder, preferred);
    assert_int_equal(kle_fake_store_put(d->store, &r), 0);
    kle_record_dispose(&r);
}

/* A renewal writes back the strategy and preferred holder it read, fast path included. */
static void test_coordinated__renewal_keeps_strategy_and_preferred_holder(void **state)
{
    smd *d = *state;
    /* Named holder and preferred holder: a handover to us, so our own lease. */
    sm_put(d, "me", 15, "OldestEmulationVersion", "me");
    assert_true(smd_try(d)); /* slow path: read, then write */
    assert_int_equal(smd_stats(d).slowpath_total, 1);
    kle_record r = stored(d->store);
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_string_equal(str(r.preferred_holder), "me");
    kle_record_dispose(&r);
    smd_advance(d, 2 * SEC);
    unsigned gets = kle_fake_lock_calls(d->lock, KLE_FAKE_GET);
    assert_true(smd_try(d)); /* fast path: no read */
    assert_int_equal(kle_fake_lock_calls(d->lock, KLE_FAKE_GET), gets);
    r = stored(d->store);
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_string_equal(str(r.preferred_holder), "me");
    kle_record_dispose(&r);
    /* One term throughout: renewed, never handed over. */
    assert_int_equal(d->started, 1);
    assert_int_equal(d->ended, 0);
}

/* Taking over an expired lease keeps its strategy and ends the preference. */
static void test_coordinated__takeover_keeps_strategy_and_clears_preference(void **state)
{
    smd *d = *state;
    sm_put(d, "other", 15, "OldestEmulationVersion", "gone");
    assert_false(smd_try(d));
    smd_advance(d, 15 * SEC + 1);
    assert_true(smd_try(d));
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_true(!r.preferred_holder || r.preferred_holder[0] == '\0');
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
    assert_int_equal(d->started, 1);
}

/*
 * A lease with holder "" reserved for another identity stays theirs until
 * it expires. (With a 15 s lease it is not even a release: only holder ""
 * with a lease of at most 1 s is; either way it is not taken early.)
 */
static void test_coordinated__follower_never_jumps_a_preferred_holder(void **state)
{
    smd *d = *state;
    sm_put(d, "", 15, NULL, "next");
    assert_false(smd_try(d));
    smd_advance(d, 15 * SEC - 1);
    assert_false(smd_try(d));
    assert_int_equal(kle_fake_lock_calls(d->lock, KLE_FAKE_UPDATE), 0);
    /* The next try comes a retry period later (was: 2 ns later). */
    smd_advance(d, NEXT_TRY);
    assert_true(smd_try(d));
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
}

/* The identity a released lease (holder "", 1 s) is reserved for takes it at once. */
static void test_coordinated__preferred_holder_takes_a_released_lease_at_once(void **state)
{
    smd *d = *state;
    sm_put(d, "", 1, NULL, "me");
    assert_true(smd_try(d));
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
    assert_int_equal(d->started, 1);
}

/*
 * The same released lease reserved for another identity is not taken
 * while it is live (its second), and is once it has expired.
 */
static void test_coordinated__released_lease_reserved_for_another_waits_its_second(void **state)
{
    smd *d = *state;
    sm_put(d, "", 1, NULL, "next");
    assert_false(smd_try(d));
    smd_advance(d, SEC - 1);
    assert_false(smd_try(d));
    assert_int_equal(kle_fake_lock_calls(d->lock, KLE_FAKE_UPDATE), 0);
    smd_advance(d, NEXT_TRY);
    assert_true(smd_try(d));
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
}

/*
 * A release keeps the strategy it read, as every write does (docs/
 * coordinated.md: it never destroys what it does not own). The elector
 * before the state machine wrote its release record without one.
 */
static void test_coordinated__release_keeps_strategy(void **state)
{
    smd *d = *state;
    sm_put(d, "", 1, "OldestEmulationVersion", NULL);
    assert_true(smd_try(d));
    smd_stop(d);
    smd_work_done(d);
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "");
    assert_int_equal(r.lease_duration_seconds, 1);
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_true(!r.preferred_holder || r.preferred_holder[0] == '\0');
    kle_record_dispose(&r);
}

/*
 * Coordinated mode: no create, no takeover of a free or expired lease; renew what the server
 * gave. (Where this case tried twice at one instant, after a put, it now waits NEXT_TRY.)
 */
static void test_coordinated__coordinated_mode_never_self_acquires(void **state)
{
    smd *d = *state;
    kle_record none = KLE_RECORD_INIT;
    assert_false(smd_try(d));
    assert_int_equal(kle_fake_lock_calls(d->lock, KLE_FAKE_CREATE), 0);
    assert_int_equal(kle_fake_store_peek(&none, NULL, d->store), KLE_ENOTFOUND);
    sm_put(d, "", 1, "OldestEmulationVersion", NULL);
    smd_advance(d, NEXT_TRY);
    assert_false(smd_try(d));
    smd_advance(d, 5 * SEC);
    assert_false(smd_try(d));
    sm_put(d, "other", 5, "OldestEmulationVersion", NULL);
    smd_advance(d, NEXT_TRY);
    assert_false(smd_try(d));
    smd_advance(d, 60 * SEC);
    assert_false(smd_try(d));
    assert_int_equal(kle_fake_lock_calls(d->lock, KLE_FAKE_UPDATE), 0);
    assert_int_equal(d->started, 0);
    /* The server made us the holder: we renew, keeping its strategy. */
    sm_put(d, "me", 5, "OldestEmulationVersion", NULL);
    smd_advance(d, NEXT_TRY);
    assert_true(smd_try(d));
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    /* A new term, a new fencing token: the server does not count transitions. */
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
    assert_int_equal(d->started, 1);
    assert_int_equal(d->token, 5);
}

/*
 * A lease that is ours but reserved for another: handed over without
 * starting the work. The machine knows the record as its own write: it
 * created it in an earlier run, whose runtime then slept past the term's
 * deadline (no renewal went out), so that run ended with the lease still
 * live. Meanwhile another identity is named preferred holder in it.
 */
static void test_coordinated__reserved_lease_is_handed_over_without_leading(void **state)
{
    smd *d = *state;
    assert_true(smd_try(d)); /* Created: this machine's own record, and a term. */
    assert_int_equal(d->started, 1);
    smd_advance(d, 10 * SEC);
    smd_tick(d);
    assert_int_equal(d->ended, 1);
    smd_work_done(d);
    assert_int_equal(d->done, 1);
    assert_int_equal(d->rc, KLE_ETIMEOUT);
    prefer(d->store, "next");
    /* A new run: the lease is still ours (5 s left); it is renewed, then handed over. */
    assert_true(smd_try(d));
    assert_int_equal(d->done, 2);
    assert_int_equal(d->rc, 0);
    assert_int_equal(d->started, 1); /* No second term. */
    kle_record r = stored(d->store);
    assert_string_equal(kle_record_holder(&r), "next");
    assert_string_equal(str(r.preferred_holder), "next");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_int_equal(r.leader_transitions, 1);
    kle_record_dispose(&r);
}

/* ---- The end of a term: the public elector ------------------------------------ */

typedef struct fixture {
    kle_clock *clock;
    kle_fake_store *store;
    kle_lock *lock; /* Owned by the elector. */
    kle_elector *elector;
    kle_event *done;
    int run_rc;
    int started;
    int64_t t_started, t_ended;
    int64_t put_at; /* When the preferred holder was set. */
} fixture;

static void on_lead(kle_leading *l, void *d);
static void stopped(void *d)
{
    (void)d;
}

static int setup_loops(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    clock_and_store(&f->clock, &f->store, 1);
    assert_int_equal(kle_event_new(&f->done), 0);
    assert_int_equal(kle_fake_lock_new(&f->lock, f->store, "me", "default/coordinated"), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = f->lock;
    c.clock = f->clock;
    c.jitter_seed = 7;
    c.callbacks.on_started_leading = on_lead;
    c.callbacks.on_stopped_leading = stopped;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kle_elector_free(f->elector);
    kle_event_free(f->done);
    free_clock_and_store(f->clock, f->store, 1);
    free(f);
    return 0;
}

static void on_lead(kle_leading *l, void *d)
{
    fixture *f = d;
    f->started++;
    f->t_started = kle_clock_monotonic_ns(f->clock);
    /* Another writer (the server, kle transfer) names a preferred holder
     * in the leader's record, changing nothing else. */
    kle_clock_sleep(f->clock, 3 * SEC);
    f->put_at = kle_clock_monotonic_ns(f->clock);
    prefer(f->store, "next");
    /* Virtual time: a term that does not end fails here instead of hanging. */
    if (kle_leading_wait_ns(l, 20 * SEC) == 0)
        f->t_ended = kle_clock_monotonic_ns(f->clock);
    else
        kle_elector_stop(f->elector);
}

static void *run_main(void *p)
{
    fixture *f = p;
    f->run_rc = kle_elector_run(f->elector);
    kle_event_set(f->done);
    return NULL;
}

/*
 * A leader that sees another identity preferred ends its term (the handle
 * ends within one retry period) and, once its work has returned, writes the
 * preferred holder in as the holder, keeping the strategy.
 */
static void test_coordinated__leader_ends_term_and_hands_over_to_preferred_holder(void **state)
{
    fixture *f = *state;
    pthread_t t;
    assert_int_equal(kle_fake_clock_spawn(&t, f->clock, run_main, f), 0);
    assert_int_equal(kle_clock_wait(f->clock, f->done, INT64_MAX), 0);
    pthread_join(t, NULL);
    assert_int_equal(f->run_rc, 0);
    assert_int_equal(f->started, 1);
    assert_true(f->t_ended > 0);
    /* Seen at the next renewal (a Conflict, then a read): within 2 retry periods. */
    assert_true(f->t_ended - f->put_at <= 4 * SEC + 4 * SEC / 10);
    assert_false(kle_elector_is_leader(f->elector));
    kle_record r = stored(f->store);
    assert_string_equal(kle_record_holder(&r), "next");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    /* The preference names the new holder: the mark of a handover. */
    assert_string_equal(str(r.preferred_holder), "next");
    assert_int_equal(r.lease_duration_seconds, 15);
    assert_int_equal(r.leader_transitions, 1);
    kle_record_dispose(&r);
}

/* ---- Watch mode (the default): several replicas on one store ---------- */

typedef struct replica {
    struct wfix *w;
    const char *id;
    kle_lock *lock; /* Owned by the elector. */
    kle_elector *elector;
    kle_event *done;
    pthread_t thread;
    int started;
    int64_t t_started, t_ended; /* Of the last term's work. */
} replica;

typedef struct wfix {
    kle_clock *clock;
    kle_fake_store *store;
    replica r[3];
} wfix;

static void w_lead(kle_leading *l, void *d)
{
    replica *r = d;
    r->started++;
    r->t_started = kle_clock_monotonic_ns(r->w->clock);
    kle_leading_wait_ns(l, -1);
    r->t_ended = kle_clock_monotonic_ns(r->w->clock);
}

static void *w_run(void *p)
{
    replica *r = p;
    kle_elector_run(r->elector);
    kle_event_set(r->done);
    return NULL;
}

static int setup_watch(void **state)
{
    wfix *w = calloc(1, sizeof(*w));
    clock_and_store(&w->clock, &w->store, 1);
    *state = w;
    return 0;
}

/* Starts replica i as `id`, following the lock by watch (15 s / 10 s / 2 s). */
static replica *w_start(wfix *w, int i, const char *id)
{
    replica *r = &w->r[i];
    r->w = w;
    r->id = id;
    assert_int_equal(kle_event_new(&r->done), 0);
    assert_int_equal(kle_fake_lock_new(&r->lock, w->store, id, "default/coordinated"), 0);
    assert_int_equal(kle_fake_lock_set_watch(r->lock, 1), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = r->lock;
    c.clock = w->clock;
    c.jitter_seed = 11 + (uint64_t)i;
    c.follow = KLE_FOLLOW_WATCH;
    c.callbacks.on_started_leading = w_lead;
    c.callbacks.on_stopped_leading = stopped;
    c.callbacks.data = r;
    assert_int_equal(kle_elector_new(&r->elector, &c), 0);
    assert_int_equal(kle_fake_clock_spawn(&r->thread, w->clock, w_run, r), 0);
    return r;
}

/* Waits (virtual time, bounded) until the replica's stream is healthy. */
static void w_await_watching(replica *r)
{
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(kle_elector_get_stats(&st, r->elector), 0);
        if (st.watching)
            return;
        kle_clock_sleep(r->w->clock, MS);
    }
    fail_msg("%s never watched the lock", r->id);
}

/* Sleeps (virtual time) until *flag is set, at most `limit`. */
static void w_await(wfix *w, const int *flag, int64_t limit)
{
    int64_t end = kle_clock_monotonic_ns(w->clock) + limit;
    while (!*flag && kle_clock_monotonic_ns(w->clock) < end)
        kle_clock_sleep(w->clock, MS);
}

static int teardown_watch(void **state)
{
    wfix *w = *state;
    for (int i = 0; i < 3; i++)
        if (w->r[i].elector)
            kle_elector_stop(w->r[i].elector);
    for (int i = 0; i < 3; i++) {
        replica *r = &w->r[i];
        if (!r->elector)
            continue;
        kle_clock_wait(w->clock, r->done, INT64_MAX);
        pthread_join(r->thread, NULL);
        kle_elector_free(r->elector);
        kle_event_free(r->done);
    }
    free_clock_and_store(w->clock, w->store, 1);
    free(w);
    return 0;
}

/* A released record (holder "") of `seconds`, reserved for `who`. */
static void w_release_for(wfix *w, const char *who, int seconds)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_record_set_string(&r.holder_identity, ""), 0);
    r.lease_duration_seconds = seconds;
    r.leader_transitions = 4;
    r.renew_time_ns = r.acquire_time_ns = kle_clock_wall_ns(w->clock);
    assert_int_equal(kle_record_set_string(&r.preferred_holder, who), 0);
    assert_int_equal(kle_fake_store_put(w->store, &r), 0);
    kle_record_dispose(&r);
}

/* As kle transfer does: the stored record with only preferredHolder changed. */
static void w_prefer(wfix *w, const char *who)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, w->store), 0);
    assert_int_equal(kle_record_set_string(&r.preferred_holder, who), 0);
    assert_int_equal(kle_fake_store_put(w->store, &r), 0);
    kle_record_dispose(&r);
}

/*
 * Watch mode: a leader whose lease the stream shows preferring another
 * identity ends its term at once (not at its next renewal); once its work
 * has returned it writes the preferred holder in, and that follower, which
 * sees itself named on its stream, leads right away. The third replica
 * never leads, and no two terms overlap.
 */
static void test_coordinated__watch_leader_hands_over_at_once_to_named_follower(void **state)
{
    wfix *w = *state;
    replica *a = w_start(w, 0, "a");
    w_await(w, &a->started, 5 * SEC);
    assert_int_equal(a->started, 1);
    replica *b = w_start(w, 1, "b");
    replica *c = w_start(w, 2, "c");
    w_await_watching(b);
    w_await_watching(c);
    /* Half a retry period after a renewal: the next one is 1 s away. */
    kle_clock_sleep(w->clock, 3 * SEC + 500 * MS);
    int64_t put_at = kle_clock_monotonic_ns(w->clock);
    w_prefer(w, "b");
    w_await(w, &b->started, 20 * SEC);
    assert_int_equal(b->started, 1);
    assert_true(a->t_ended > 0);
    /* The term ended on the event: well before the next renewal (1 s). */
    assert_true(a->t_ended - put_at < 50 * MS);
    /* b led within one round trip (instant here) of a's work ending: no
     * safety read (7.5 s), no expiry. Never both at once. */
    assert_true(b->t_started >= a->t_ended);
    assert_true(b->t_started - a->t_ended < 50 * MS);
    kle_clock_sleep(w->clock, 20 * SEC);
    assert_int_equal(a->started, 1);
    assert_int_equal(c->started, 0);
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, w->store), 0);
    assert_string_equal(kle_record_holder(&r), "b");
    /* The handover's mark stays: holder and preferred holder agree. */
    assert_string_equal(r.preferred_holder ? r.preferred_holder : "(null)", "b");
    kle_record_dispose(&r);
}

/*
 * Watch mode: a released lease reserved for another identity is not taken
 * by a follower that sees the release on its stream; it waits until the
 * lease expires (here 5 s after the last release it saw).
 */
static void test_coordinated__watch_follower_never_jumps_a_preferred_holder(void **state)
{
    wfix *w = *state;
    int64_t t0 = kle_clock_monotonic_ns(w->clock);
    w_release_for(w, "next", 5);
    replica *c = w_start(w, 0, "c");
    w_await_watching(c);
    /* Released again at 2 s (its stream shows it: an attempt at once, refused). */
    kle_clock_sleep(w->clock, 2 * SEC);
    int64_t again = kle_clock_monotonic_ns(w->clock);
    w_release_for(w, "next", 5);
    w_await(w, &c->started, 20 * SEC);
    assert_int_equal(c->started, 1);
    assert_true(c->t_started - t0 >= 2 * SEC);
    assert_true(c->t_started >= again + 5 * SEC);
    /* ...and then at once: the expiry is scheduled, not polled for. */
    assert_true(c->t_started < again + 5 * SEC + 100 * MS);
}

int main(void)
{
#define SM(name) cmocka_unit_test_setup_teardown(name, setup_plain, teardown_sm)
    const struct CMUnitTest tests[] = {
        SM(test_coordinated__renewal_keeps_strategy_and_preferred_holder),
        SM(test_coordinated__takeover_keeps_strategy_and_clears_preference),
        SM(test_coordinated__follower_never_jumps_a_preferred_holder),
        SM(test_coordinated__preferred_holder_takes_a_released_lease_at_once),
        SM(test_coordinated__released_lease_reserved_for_another_waits_its_second),
        cmocka_unit_test_setup_teardown(test_coordinated__release_keeps_strategy, setup_releasing,
                                        teardown_sm),
        cmocka_unit_test_setup_teardown(test_coordinated__coordinated_mode_never_self_acquires,
                                        setup_coordinated, teardown_sm),
        SM(test_coordinated__reserved_lease_is_handed_over_without_leading),
        cmocka_unit_test_setup_teardown(
            test_coordinated__leader_ends_term_and_hands_over_to_preferred_holder, setup_loops,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinated__watch_leader_hands_over_at_once_to_named_follower, setup_watch,
            teardown_watch),
        cmocka_unit_test_setup_teardown(
            test_coordinated__watch_follower_never_jumps_a_preferred_holder, setup_watch,
            teardown_watch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
