/*
 * The elector's watch mode (src/election/sm.c, its runtime) on the fake lock's watch and
 * an auto-advancing fake clock: every time below is virtual and exact. The
 * test thread plays another replica ("other") writing the store directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/sys/lock.h"
#include "kle/testing.h"
#include "support/fake_world.h"

#define SEC KLE_NS_PER_SEC
#define MS  KLE_NS_PER_MS
/* The takeover jitter's bound (src/election/sm.c). */
#define JITTER (25 * MS)

typedef struct fixture {
    kle_clock *clock;
    kle_fake_store *store;
    kle_lock *lock; /* Owned by the elector. */
    kle_elector *elector;
    kle_event *done;
    int run_rc;
    int64_t t0;
    int started;
    int64_t t_started, t_ended;
    int stay; /* The leader's work runs until stopped. */
    int follow;
} fixture;

static void cb_started(kle_leading *l, void *d)
{
    fixture *f = d;
    f->started++;
    f->t_started = kle_clock_monotonic_ns(f->clock) - f->t0;
    kle_leading_wait_ns(l, -1);
    f->t_ended = kle_clock_monotonic_ns(f->clock) - f->t0;
}

static void cb_stopped(void *d)
{
    (void)d;
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

static void *run_main(void *p)
{
    fixture *f = p;
    f->run_rc = kle_elector_run(f->elector);
    kle_event_set(f->done);
    return NULL;
}

/* Starts elector "me" (15 s / 10 s / 2 s) in watch mode on a participant thread. */
static pthread_t start(fixture *f)
{
    assert_int_equal(kle_fake_lock_new(&f->lock, f->store, "me", "default/follow"), 0);
    assert_int_equal(kle_fake_lock_set_watch(f->lock, 1), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = f->lock;
    c.clock = f->clock;
    c.jitter_seed = 7;
    c.follow = f->follow;
    c.callbacks.on_started_leading = cb_started;
    c.callbacks.on_stopped_leading = cb_stopped;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
    pthread_t t;
    assert_int_equal(kle_fake_clock_spawn(&t, f->clock, run_main, f), 0);
    return t;
}

static void finish(fixture *f, pthread_t t)
{
    kle_elector_stop(f->elector);
    assert_int_equal(kle_clock_wait(f->clock, f->done, INT64_MAX), 0);
    pthread_join(t, NULL);
}

static int64_t now_rel(fixture *f)
{
    return kle_clock_monotonic_ns(f->clock) - f->t0;
}

/* Sleeps until t (relative to t0). */
static void at(fixture *f, int64_t t)
{
    int64_t d = t - now_rel(f);
    if (d > 0)
        kle_clock_sleep(f->clock, d);
}

static void put(fixture *f, const char *holder, int duration)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = duration;
    r.renew_time_ns = kle_clock_wall_ns(f->clock);
    r.acquire_time_ns = r.renew_time_ns;
    kle_fake_store_put(f->store, &r);
    kle_record_dispose(&r);
}

/* "other" renews its 15 s lease every 2 s from `from` to `to` (seconds), then crashes. */
static void other_leads(fixture *f, int from, int to)
{
    for (int s = from; s <= to; s += 2) {
        at(f, s * SEC);
        put(f, "other", 15);
    }
}

static kle_elector_stats stats(fixture *f)
{
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    assert_int_equal(kle_elector_get_stats(&st, f->elector), 0);
    return st;
}

/* Waits (virtual time, bounded) until the elector's stream is healthy. */
static void await_watching(fixture *f)
{
    for (int i = 0; i < 1000 && !stats(f).watching; i++)
        kle_clock_sleep(f->clock, MS);
    assert_int_equal(stats(f).watching, 1);
}

static void test_follow__expiry_is_scheduled_exactly(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 10);
    at(f, 40 * SEC);
    /* The takeover attempt runs when the last renewal seen (t=10 s) expires,
     * plus a jitter of milliseconds; not at a poll. */
    assert_int_equal(f->started, 1);
    assert_true(f->t_started >= 25 * SEC);
    assert_true(f->t_started < 25 * SEC + JITTER);
    /* A first read, one safety read half a lease after the stream went
     * quiet, and the takeover's own read: no polling. */
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) <= 3);
    finish(f, t);
}

static void test_follow__poll_mode_polls(void **state)
{
    fixture *f = *state;
    f->follow = KLE_FOLLOW_POLL;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 10);
    at(f, 40 * SEC);
    assert_int_equal(f->started, 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_WATCH), 0);
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) > 5);
    finish(f, t);
}

static void test_follow__release_is_taken_at_once(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 4);
    at(f, 5 * SEC);
    put(f, "", 1); /* other releases */
    at(f, 6 * SEC);
    assert_int_equal(f->started, 1);
    assert_int_equal(f->t_started, 5 * SEC);
    finish(f, t);
}

static void test_follow__deletion_of_a_released_lock_is_taken_at_once(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 4);
    /* The attempt the release causes fails (a transient error)... */
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_UPDATE, 1, KLE_ETRANSPORT);
    at(f, 5 * SEC);
    put(f, "", 1);
    /* ...and the deletion that follows is taken at once. */
    at(f, 5 * SEC + 500 * MS);
    kle_fake_store_put(f->store, NULL);
    at(f, 7 * SEC);
    assert_int_equal(f->started, 1);
    assert_int_equal(f->t_started, 5 * SEC + 500 * MS);
    finish(f, t);
}

static void test_follow__deletion_does_not_end_a_live_lease(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 4);
    at(f, 5 * SEC);
    kle_fake_store_put(f->store, NULL); /* other may still lead until 4 s + 10 s */
    at(f, 40 * SEC);
    assert_int_equal(f->started, 1);
    /* Created only once the lease last seen (renewed at 4 s) expired, and
     * its work starts a renew deadline after the create (R7): the reads
     * while waiting found NotFound, and the stream's witness of the
     * deletion speaks for one read only (a silent stream looks healthy
     * too, and would hide a create and a deletion after it). */
    assert_true(f->t_started >= 29 * SEC);
    assert_true(f->t_started < 29 * SEC + JITTER);
    finish(f, t);
}

static void test_follow__bookmarks_do_not_reset_expiry(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 10);
    for (int s = 11; s < 30; s++) {
        at(f, s * SEC);
        kle_fake_store_bookmark(f->store);
    }
    assert_int_equal(f->started, 1);
    assert_true(f->t_started >= 25 * SEC);
    assert_true(f->t_started < 25 * SEC + JITTER);
    /* Bookmarks kept the stream alive: no safety read was needed. */
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) <= 2);
    finish(f, t);
}

static void test_follow__relist_after_410_resets_expiry_only_on_change(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    other_leads(f, 0, 8);
    /* The renewal at 10 s is lost on the stream; a 410 at 11 s re-lists it. */
    at(f, 10 * SEC);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_DROP, 1);
    put(f, "other", 15);
    at(f, 11 * SEC);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_GONE, 1);
    kle_fake_store_bookmark(f->store);
    /* Another 410 at 13 s re-lists the same record: no reset. */
    at(f, 13 * SEC);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_GONE, 1);
    kle_fake_store_bookmark(f->store);
    at(f, 40 * SEC);
    assert_int_equal(f->started, 1);
    /* Expiry from when the re-list showed the renewal (11 s), not 13 s. */
    assert_true(f->t_started >= 26 * SEC);
    assert_true(f->t_started < 26 * SEC + JITTER);
    finish(f, t);
}

static void test_follow__stale_and_duplicate_events_change_nothing(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_STALE, 100);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_DUPLICATE, 100);
    other_leads(f, 0, 10);
    at(f, 40 * SEC);
    /* Re-delivered older renewals neither postpone the takeover nor make the
     * stream look broken. */
    assert_int_equal(f->started, 1);
    assert_true(f->t_started >= 25 * SEC);
    assert_true(f->t_started < 25 * SEC + JITTER);
    /* Once leading, stale copies of the other's records (older than our
     * write) do not end the term. */
    at(f, 60 * SEC);
    assert_true(kle_elector_is_leader(f->elector));
    assert_int_equal(stats(f).stepdowns, 0);
    finish(f, t);
}

static void test_follow__stale_release_only_costs_a_read(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    other_leads(f, 0, 4);
    /* other releases and "third" takes it in the same instant; the stream
     * shows the release first. */
    at(f, 5 * SEC);
    put(f, "", 1);
    put(f, "third", 15);
    uint64_t writes = kle_fake_store_writes(f->store);
    at(f, 8 * SEC);
    /* The attempt the release caused read the store and wrote nothing. */
    assert_int_equal(f->started, 0);
    assert_int_equal(kle_fake_store_writes(f->store), writes);
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    assert_true(kle_record_holder_is(&r, "third"));
    kle_record_dispose(&r);
    finish(f, t);
}

static void test_follow__get_ahead_of_the_stream_does_not_restart_it(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    other_leads(f, 0, 4);
    uint64_t restarts = stats(f).watch_restarts;
    unsigned watches = kle_fake_lock_calls(f->lock, KLE_FAKE_WATCH);
    /* other releases at 5 s (on the stream at 5.05 s) and "third" takes it
     * at 5.02 s (on the stream at 5.2 s): the attempt the release causes
     * reads third's record before the stream shows it. */
    at(f, 5 * SEC);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_WATCH, 1, 50 * MS);
    put(f, "", 1);
    at(f, 5 * SEC + 20 * MS);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_WATCH, 1, 180 * MS);
    put(f, "third", 15);
    at(f, 8 * SEC);
    assert_int_equal(f->started, 0);
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) >= 2);
    /* The stream was only behind: it is neither restarted nor re-listed. */
    assert_int_equal(stats(f).watch_restarts, restarts);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_WATCH), watches);
    assert_int_equal(stats(f).watching, 1);
    finish(f, t);
}

static void test_follow__get_ahead_of_a_silent_stream_restarts_it(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    other_leads(f, 0, 4);
    uint64_t restarts = stats(f).watch_restarts;
    /* The release reaches the stream; third's takeover never does. */
    at(f, 5 * SEC);
    kle_fake_lock_delay_next(f->lock, KLE_FAKE_WATCH, 1, 50 * MS);
    put(f, "", 1);
    at(f, 5 * SEC + 20 * MS);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_DROP, 1);
    put(f, "third", 15);
    /* Restarted once the stream has lagged the GET (at 5.05 s) by a second. */
    at(f, 6 * SEC);
    assert_int_equal(stats(f).watch_restarts, restarts);
    at(f, 6 * SEC + 100 * MS);
    assert_int_equal(stats(f).watch_restarts, restarts + 1);
    assert_int_equal(f->started, 0);
    finish(f, t);
}

static void test_follow__stream_loss_polls_until_the_stream_is_back(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    /* The stream ends and cannot be re-opened for a while. */
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_WATCH, 20, KLE_ETRANSPORT);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_END, 1);
    unsigned gets = kle_fake_lock_calls(f->lock, KLE_FAKE_GET);
    for (int s = 0; s <= 10; s += 2) {
        at(f, s * SEC + 500 * MS);
        assert_int_equal(stats(f).watching, 0);
        put(f, "other", 15);
    }
    /* Polled meanwhile: a read every retry period or so. */
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) >= gets + 3);
    /* The stream is back (20 failed re-opens, one a second): no more polling. */
    at(f, 25 * SEC);
    assert_int_equal(stats(f).watching, 1);
    gets = kle_fake_lock_calls(f->lock, KLE_FAKE_GET);
    for (int s = 26; s <= 40; s += 2) {
        at(f, s * SEC);
        put(f, "other", 15);
    }
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), gets);
    assert_int_equal(f->started, 0);
    finish(f, t);
}

static void test_follow__silent_stream_is_detected_within_the_lease(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t = start(f);
    await_watching(f);
    uint64_t restarts = stats(f).watch_restarts;
    at(f, 1 * SEC);
    kle_fake_lock_watch_fault(f->lock, KLE_FAKE_WATCH_SILENCE, 1); /* a black hole */
    int64_t detected = 0;
    for (int s = 2; s <= 20; s += 2) {
        at(f, s * SEC);
        put(f, "other", 15);
        if (!detected && stats(f).watch_restarts > restarts)
            detected = now_rel(f);
    }
    /* The safety read half a lease after the last sign of life saw the
     * renewals the stream missed, and the stream was restarted. */
    assert_true(detected > 0);
    assert_true(detected <= 1 * SEC + 15 * SEC / 2 + 2 * SEC);
    assert_int_equal(stats(f).watching, 1);
    assert_int_equal(f->started, 0);
    finish(f, t);
}

static void test_follow__forbidden_watch_polls(void **state)
{
    fixture *f = *state;
    put(f, "other", 15);
    pthread_t t;
    int warnings;
    {
        /* start() with the first watch call answered 403. The log is
         * written by its own thread: flush it before counting. */
        assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
        warnings = atomic_load(&quiet_log_lines[KLE_LOG_WARNING]);
        assert_int_equal(kle_fake_lock_new(&f->lock, f->store, "me", "default/follow"), 0);
        assert_int_equal(kle_fake_lock_set_watch(f->lock, 1), 0);
        kle_fake_lock_fail_next(f->lock, KLE_FAKE_WATCH, 1, KLE_EFORBIDDEN);
        kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
        c.lock = f->lock;
        c.clock = f->clock;
        c.callbacks.on_started_leading = cb_started;
        c.callbacks.on_stopped_leading = cb_stopped;
        c.callbacks.data = f;
        assert_int_equal(kle_elector_new(&f->elector, &c), 0);
        assert_int_equal(kle_fake_clock_spawn(&t, f->clock, run_main, f), 0);
    }
    other_leads(f, 0, 20);
    /* One watch call, logged once, then polling as in poll mode. */
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_WATCH), 1);
    assert_true(kle_fake_lock_calls(f->lock, KLE_FAKE_GET) >= 5);
    assert_int_equal(stats(f).watching, 0);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(atomic_load(&quiet_log_lines[KLE_LOG_WARNING]) - warnings, 1);
    finish(f, t);
}

static void test_follow__leader_steps_down_on_a_newer_foreign_holder(void **state)
{
    fixture *f = *state;
    pthread_t t = start(f);
    at(f, 1 * SEC);
    assert_int_equal(f->started, 1);
    assert_true(kle_elector_is_leader(f->elector));
    /* Someone forces the lease over at 5 s (after our renewal at 4 s). */
    at(f, 5 * SEC);
    put(f, "other", 15);
    at(f, 5 * SEC + 1 * MS);
    assert_false(kle_elector_is_leader(f->elector));
    assert_int_equal(f->t_ended, 5 * SEC);
    assert_int_equal(stats(f).stepdowns, 1);
    assert_int_equal(kle_clock_wait(f->clock, f->done, INT64_MAX), 0);
    pthread_join(t, NULL);
    assert_int_equal(f->run_rc, KLE_ECONFLICT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_follow__expiry_is_scheduled_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__poll_mode_polls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__release_is_taken_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__deletion_of_a_released_lock_is_taken_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__deletion_does_not_end_a_live_lease, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follow__bookmarks_do_not_reset_expiry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follow__relist_after_410_resets_expiry_only_on_change,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__stale_and_duplicate_events_change_nothing,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__stale_release_only_costs_a_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follow__get_ahead_of_the_stream_does_not_restart_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__get_ahead_of_a_silent_stream_restarts_it,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__stream_loss_polls_until_the_stream_is_back,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__silent_stream_is_detected_within_the_lease,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__forbidden_watch_polls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follow__leader_steps_down_on_a_newer_foreign_holder,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
