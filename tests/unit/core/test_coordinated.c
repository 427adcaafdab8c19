/*
 * Coordinated election and planned handover on the fake lock: what the
 * elector keeps of a record it does not own, when it refuses to take a
 * lease, and how a leader ends its term for a preferred holder.
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

#include "core/elector_internal.h"
#include "kle/kle.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC

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
    int auto_clock;
} fixture;

static void on_lead(kle_leading *l, void *d);
static void stopped(void *d)
{
    (void)d;
}

static fixture *make(int auto_clock, int coordinated)
{
    fixture *f = calloc(1, sizeof(*f));
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = auto_clock;
    f->auto_clock = auto_clock;
    quiet_log_install();
    assert_int_equal(kle_fake_clock_new(&f->clock, &o), 0);
    assert_int_equal(kle_fake_store_new(&f->store, f->clock), 0);
    assert_int_equal(kle_event_new(&f->done), 0);
    if (auto_clock)
        assert_int_equal(kle_fake_clock_join(f->clock), 0);
    assert_int_equal(kle_fake_lock_new(&f->lock, f->store, "me", "default/coordinated"), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = f->lock;
    c.clock = f->clock;
    c.jitter_seed = 7;
    c.coordinated = coordinated;
    c.callbacks.on_started_leading = on_lead;
    c.callbacks.on_stopped_leading = stopped;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
    return f;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->auto_clock)
        kle_fake_clock_leave(f->clock);
    kle_elector_free(f->elector);
    kle_fake_store_free(f->store);
    kle_event_free(f->done);
    kle_clock_free(f->clock);
    free(f);
    return 0;
}

static int setup_plain(void **state)
{
    *state = make(0, 0);
    return 0;
}

static int setup_coordinated(void **state)
{
    *state = make(0, 1);
    return 0;
}

static int setup_loops(void **state)
{
    *state = make(1, 0);
    return 0;
}

static int try_now(fixture *f)
{
    return kle_elector__try_acquire_or_renew(f->elector, INT64_MAX);
}

static void put(fixture *f, const char *holder, int duration, const char *strategy,
                const char *preferred)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = duration;
    r.leader_transitions = 4;
    r.renew_time_ns = kle_clock_wall_ns(f->clock);
    kle_record_set_string(&r.strategy, strategy);
    kle_record_set_string(&r.preferred_holder, preferred);
    assert_int_equal(kle_fake_store_put(f->store, &r), 0);
    kle_record_dispose(&r);
}

static kle_record stored(fixture *f)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    return r;
}

static const char *str(const char *s)
{
    return s ? s : "(null)";
}

/* A renewal writes back the strategy and preferred holder it read, fast path included. */
static void test_coordinated__renewal_keeps_strategy_and_preferred_holder(void **state)
{
    fixture *f = *state;
    put(f, "me", 15, "OldestEmulationVersion", "me");
    assert_true(try_now(f)); /* slow path: read, then write */
    kle_record r = stored(f);
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_string_equal(str(r.preferred_holder), "me");
    kle_record_dispose(&r);
    kle_fake_clock_advance(f->clock, 2 * SEC);
    unsigned gets = kle_fake_lock_calls(f->lock, KLE_FAKE_GET);
    assert_true(try_now(f)); /* fast path: no read */
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), gets);
    r = stored(f);
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_string_equal(str(r.preferred_holder), "me");
    kle_record_dispose(&r);
}

/* Taking over an expired lease keeps its strategy and ends the preference. */
static void test_coordinated__takeover_keeps_strategy_and_clears_preference(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, "OldestEmulationVersion", "gone");
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 15 * SEC + 1);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_true(!r.preferred_holder || r.preferred_holder[0] == '\0');
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
}

/* A released lease reserved for another identity stays theirs until it expires. */
static void test_coordinated__follower_never_jumps_a_preferred_holder(void **state)
{
    fixture *f = *state;
    put(f, "", 15, NULL, "next");
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 15 * SEC - 1);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    kle_fake_clock_advance(f->clock, 2);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
}

/* The identity a released lease is reserved for takes it at once. */
static void test_coordinated__preferred_holder_takes_a_released_lease_at_once(void **state)
{
    fixture *f = *state;
    put(f, "", 15, NULL, "me");
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    kle_record_dispose(&r);
}

/* Coordinated mode: no create, no takeover of a free or expired lease; renew what the server gave.
 */
static void test_coordinated__coordinated_mode_never_self_acquires(void **state)
{
    fixture *f = *state;
    kle_record none = KLE_RECORD_INIT;
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_CREATE), 0);
    assert_int_equal(kle_fake_store_peek(&none, NULL, f->store), KLE_ENOTFOUND);
    put(f, "", 1, "OldestEmulationVersion", NULL);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 5 * SEC);
    assert_false(try_now(f));
    put(f, "other", 5, "OldestEmulationVersion", NULL);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 60 * SEC);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    /* The server made us the holder: we renew, keeping its strategy. */
    put(f, "me", 5, "OldestEmulationVersion", NULL);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    /* A new term, a new fencing token: the server does not count transitions. */
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
}

static void on_lead(kle_leading *l, void *d)
{
    fixture *f = d;
    f->started++;
    f->t_started = kle_clock_monotonic_ns(f->clock);
    /* Another writer (the server, kle transfer) names a preferred holder. */
    kle_clock_sleep(f->clock, 3 * SEC);
    f->put_at = kle_clock_monotonic_ns(f->clock);
    put(f, "me", 15, "OldestEmulationVersion", "next");
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
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "next");
    assert_string_equal(str(r.strategy), "OldestEmulationVersion");
    assert_true(!r.preferred_holder || r.preferred_holder[0] == '\0');
    assert_int_equal(r.lease_duration_seconds, 15);
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
}

/* A lease that is ours but reserved for another: handed over without starting the work. */
static void test_coordinated__reserved_lease_is_handed_over_without_leading(void **state)
{
    fixture *f = *state;
    put(f, "me", 15, NULL, "next");
    pthread_t t;
    assert_int_equal(kle_fake_clock_spawn(&t, f->clock, run_main, f), 0);
    assert_int_equal(kle_clock_wait(f->clock, f->done, INT64_MAX), 0);
    pthread_join(t, NULL);
    assert_int_equal(f->run_rc, 0);
    assert_int_equal(f->started, 0);
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "next");
    kle_record_dispose(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_coordinated__renewal_keeps_strategy_and_preferred_holder, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinated__takeover_keeps_strategy_and_clears_preference, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_coordinated__follower_never_jumps_a_preferred_holder,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinated__preferred_holder_takes_a_released_lease_at_once, setup_plain,
            teardown),
        cmocka_unit_test_setup_teardown(test_coordinated__coordinated_mode_never_self_acquires,
                                        setup_coordinated, teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinated__leader_ends_term_and_hands_over_to_preferred_holder, setup_loops,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_coordinated__reserved_lease_is_handed_over_without_leading, setup_loops, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
