/*
 * Every branch of tryAcquireOrRenew and of release, one call at a time, on a
 * manual fake clock and a fake lock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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
    char new_leaders[8][64];
    int n_new_leaders;
} fixture;

static void started(kle_leading *l, void *d)
{
}
static void stopped(void *d)
{
}
static void new_leader(const char *id, void *d)
{
    fixture *f = d;
    if (f->n_new_leaders < 8)
        snprintf(f->new_leaders[f->n_new_leaders++], 64, "%s", id);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    quiet_log_install();
    assert_int_equal(kle_fake_clock_new(&f->clock, NULL), 0);
    assert_int_equal(kle_fake_store_new(&f->store, f->clock), 0);
    assert_int_equal(kle_fake_lock_new(&f->lock, f->store, "me", "default/test"), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = f->lock;
    c.clock = f->clock;
    c.callbacks.on_started_leading = started;
    c.callbacks.on_stopped_leading = stopped;
    c.callbacks.on_new_leader = new_leader;
    c.callbacks.data = f;
    assert_int_equal(kle_elector_new(&f->elector, &c), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kle_elector_free(f->elector);
    kle_fake_store_free(f->store);
    kle_clock_free(f->clock);
    free(f);
    return 0;
}

static int try_now(fixture *f)
{
    return kle_elector__try_acquire_or_renew(f->elector, INT64_MAX);
}

static kle_record held_by(const char *holder, int duration, int transitions, int64_t time_ns)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = duration;
    r.leader_transitions = transitions;
    r.acquire_time_ns = time_ns;
    r.renew_time_ns = time_ns;
    return r;
}

static void put(fixture *f, const char *holder, int duration, int transitions)
{
    kle_record r = held_by(holder, duration, transitions, kle_clock_wall_ns(f->clock));
    assert_int_equal(kle_fake_store_put(f->store, &r), 0);
    kle_record_dispose(&r);
}

static kle_record stored(fixture *f)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, f->store), 0);
    return r;
}

static void test_try_acquire__no_object_creates_and_leads(void **state)
{
    fixture *f = *state;
    int64_t wall = kle_clock_wall_ns(f->clock);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_int_equal(r.lease_duration_seconds, 15);
    assert_int_equal(r.leader_transitions, 0);
    assert_true(r.acquire_time_ns == wall && r.renew_time_ns == wall);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_CREATE), 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    kle_record_dispose(&r);
}

static void test_try_acquire__create_failure_does_not_lead(void **state)
{
    fixture *f = *state;
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_CREATE, 1, KLE_EEXISTS);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_store_peek(&(kle_record)KLE_RECORD_INIT, NULL, f->store),
                     KLE_ENOTFOUND);
}

static void test_try_acquire__held_and_unexpired_is_not_acquired(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, 4);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 14 * SEC + 999999999);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "other");
    kle_record_dispose(&r);
}

/*
 * A live lease held by "me\0x" (as JSON "me\u0000x" reads) is someone else's:
 * "me" neither renews it nor takes it before it expires.
 */
static void test_try_acquire__holder_with_nul_is_not_us(void **state)
{
    fixture *f = *state;
    kle_record r = held_by("", 15, 4, kle_clock_wall_ns(f->clock));
    assert_int_equal(kle_record_set_holder(&r, "me\0x", 4), 0);
    assert_int_equal(kle_fake_store_put(f->store, &r), 0);
    kle_record_dispose(&r);
    assert_false(try_now(f));
    assert_false(kle_elector_is_leader(f->elector));
    kle_fake_clock_advance(f->clock, 14 * SEC + 999999999);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    r = stored(f);
    assert_int_equal(kle_record_holder_len(&r), 4);
    assert_memory_equal(kle_record_holder(&r), "me\0x", 4);
    kle_record_dispose(&r);
    /* Expired: taken over like any other holder's, as a change of holder. */
    kle_fake_clock_advance(f->clock, 1);
    assert_true(try_now(f));
    r = stored(f);
    assert_true(kle_record_holder_is(&r, "me"));
    assert_int_equal(kle_record_holder_len(&r), 2);
    assert_int_equal(r.leader_transitions, 5);
    kle_record_dispose(&r);
}

static void test_try_acquire__expired_is_acquired_with_transitions_plus_one(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, 4);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 15 * SEC);
    int64_t wall = kle_clock_wall_ns(f->clock);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_int_equal(r.leader_transitions, 5);
    assert_true(r.acquire_time_ns == wall && r.renew_time_ns == wall);
    assert_int_equal(r.lease_duration_seconds, 15);
    kle_record_dispose(&r);
}

static void test_try_acquire__record_timestamps_never_decide_expiry(void **state)
{
    fixture *f = *state;
    /* Renewed "long ago" by a clock that is far behind: still held until we
     * have watched it unchanged for the lease duration ourselves. */
    kle_record r = held_by("other", 15, 1, INT64_C(946684800) * SEC);
    kle_fake_store_put(f->store, &r);
    kle_record_dispose(&r);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 10 * SEC);
    assert_false(try_now(f));
    /* And one from a clock far ahead expires all the same. */
    r = held_by("other", 15, 1, INT64_C(4102444800) * SEC);
    kle_fake_store_put(f->store, &r);
    kle_record_dispose(&r);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 15 * SEC);
    assert_true(try_now(f));
}

/*
 * A new resourceVersion over the same record bytes: a renewal within the
 * record's time precision (whole seconds for annotation locks), or someone
 * touching the object (a label). It counts as a renewal, but never for more
 * than a second after the record itself last changed, so touching the lock
 * object cannot hold off a takeover.
 */
static void test_try_acquire__touch_counts_for_at_most_record_precision(void **state)
{
    fixture *f = *state;
    kle_record r = held_by("other", 15, 1, kle_clock_wall_ns(f->clock));
    kle_fake_store_put(f->store, &r);
    assert_false(try_now(f)); /* Seen at 0 s. */
    kle_fake_clock_advance(f->clock, SEC / 2);
    kle_fake_store_put(f->store, &r); /* Same bytes, new resourceVersion, at 0.5 s. */
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, SEC * 19 / 2);
    kle_fake_store_put(f->store, &r); /* Touched again at 10 s. */
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, SEC * 52 / 10);
    /* 15.2 s: the touch at 0.5 s may have been the holder's renewal. */
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, SEC * 13 / 10);
    /* 16.5 s: past 1 s + 15 s; the touch at 10 s does not count. */
    kle_fake_store_put(f->store, &r); /* And a touch right now changes nothing. */
    assert_true(try_now(f));
    kle_record_dispose(&r);
}

static void test_try_acquire__own_lease_is_renewed_keeping_acquire_time(void **state)
{
    fixture *f = *state;
    int64_t acquired = kle_clock_wall_ns(f->clock);
    assert_true(try_now(f));
    kle_fake_clock_advance(f->clock, 2 * SEC);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_true(r.acquire_time_ns == acquired);
    assert_true(r.renew_time_ns == acquired + 2 * SEC);
    assert_int_equal(r.leader_transitions, 0);
    kle_record_dispose(&r);
    /* The fast path: no Get for the renewal. */
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), 1);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 1);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.slowpath_total, 0);
}

static void test_try_acquire__fast_path_conflict_falls_back_to_slow_path(void **state)
{
    fixture *f = *state;
    assert_true(try_now(f));
    kle_record mine = stored(f);
    /* Someone else touched the object: our cached resourceVersion is stale. */
    kle_fake_store_put(f->store, &mine);
    kle_fake_clock_advance(f->clock, 2 * SEC);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_true(r.acquire_time_ns == mine.acquire_time_ns);
    assert_int_equal(r.leader_transitions, mine.leader_transitions);
    assert_true(r.renew_time_ns == mine.renew_time_ns + 2 * SEC);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 2);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_GET), 2);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, f->elector);
    assert_int_equal(st.slowpath_total, 1);
    kle_record_dispose(&r);
    kle_record_dispose(&mine);
}

static void test_try_acquire__get_error_other_than_not_found_is_not_acquired(void **state)
{
    fixture *f = *state;
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 1, KLE_ETRANSPORT);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_CREATE), 0);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    /* An unreadable record is never a free lock either. */
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_GET, 1, KLE_EBADRECORD);
    assert_false(try_now(f));
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_CREATE), 0);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
}

static void test_try_acquire__released_lease_is_acquired_at_once(void **state)
{
    fixture *f = *state;
    put(f, "", 1, 7);
    assert_true(try_now(f));
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "me");
    assert_int_equal(r.leader_transitions, 8);
    kle_record_dispose(&r);
}

static void test_try_acquire__update_conflict_on_takeover_is_not_acquired(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, 2);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 16 * SEC);
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_UPDATE, 1, KLE_ECONFLICT);
    assert_false(try_now(f));
    assert_false(kle_elector_is_leader(f->elector));
}

static void test_try_acquire__release_writes_the_exact_release_record(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, 2);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 15 * SEC);
    assert_true(try_now(f));
    kle_fake_clock_advance(f->clock, 3 * SEC);
    int64_t wall = kle_clock_wall_ns(f->clock);
    kle_elector__release(f->elector);
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "");
    assert_int_equal(r.lease_duration_seconds, 1);
    assert_true(r.acquire_time_ns == wall && r.renew_time_ns == wall);
    assert_int_equal(r.leader_transitions, 3);
    assert_null(r.strategy);
    kle_record_dispose(&r);
    char *leader;
    assert_int_equal(kle_elector_leader(&leader, f->elector), 0);
    assert_string_equal(leader, "");
    kle_free(leader);
}

static void test_try_acquire__release_retries_on_conflict(void **state)
{
    fixture *f = *state;
    assert_true(try_now(f));
    kle_fake_lock_fail_next(f->lock, KLE_FAKE_UPDATE, 2, KLE_ECONFLICT);
    kle_elector__release(f->elector);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 3);
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "");
    kle_record_dispose(&r);
}

static void test_try_acquire__release_leaves_someone_elses_lease_alone(void **state)
{
    fixture *f = *state;
    assert_true(try_now(f));
    put(f, "other", 15, 1);
    kle_elector__release(f->elector);
    assert_int_equal(kle_fake_lock_calls(f->lock, KLE_FAKE_UPDATE), 0);
    kle_record r = stored(f);
    assert_string_equal(kle_record_holder(&r), "other");
    kle_record_dispose(&r);
}

static void test_try_acquire__new_leader_reported_once_per_change(void **state)
{
    fixture *f = *state;
    put(f, "other", 15, 0);
    assert_false(try_now(f));
    kle_elector__report_transition(f->elector);
    assert_false(try_now(f));
    kle_elector__report_transition(f->elector);
    kle_fake_clock_advance(f->clock, 15 * SEC);
    assert_true(try_now(f));
    kle_elector__report_transition(f->elector);
    assert_int_equal(f->n_new_leaders, 2);
    assert_string_equal(f->new_leaders[0], "other");
    assert_string_equal(f->new_leaders[1], "me");
}

static void test_try_acquire__check_reports_a_stale_leader_unhealthy(void **state)
{
    fixture *f = *state;
    assert_true(try_now(f));
    assert_int_equal(kle_elector_check_ns(f->elector, KLE_MS(5000)), 0);
    kle_fake_clock_advance(f->clock, 20 * SEC);
    assert_int_equal(kle_elector_check_ns(f->elector, KLE_MS(5000)), 0);
    kle_fake_clock_advance(f->clock, 1);
    assert_int_equal(kle_elector_check_ns(f->elector, KLE_MS(5000)), KLE_EUNHEALTHY);
    assert_string_equal(kle_error_last()->message,
                        "failed election to renew leadership on lease default/test");
    /* A follower is never unhealthy. */
    put(f, "other", 15, 1);
    assert_false(try_now(f));
    kle_fake_clock_advance(f->clock, 60 * SEC);
    assert_int_equal(kle_elector_check_ns(f->elector, KLE_MS(0)), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_try_acquire__holder_with_nul_is_not_us),
        T(test_try_acquire__no_object_creates_and_leads),
        T(test_try_acquire__create_failure_does_not_lead),
        T(test_try_acquire__held_and_unexpired_is_not_acquired),
        T(test_try_acquire__expired_is_acquired_with_transitions_plus_one),
        T(test_try_acquire__record_timestamps_never_decide_expiry),
        T(test_try_acquire__touch_counts_for_at_most_record_precision),
        T(test_try_acquire__own_lease_is_renewed_keeping_acquire_time),
        T(test_try_acquire__fast_path_conflict_falls_back_to_slow_path),
        T(test_try_acquire__get_error_other_than_not_found_is_not_acquired),
        T(test_try_acquire__released_lease_is_acquired_at_once),
        T(test_try_acquire__update_conflict_on_takeover_is_not_acquired),
        T(test_try_acquire__release_writes_the_exact_release_record),
        T(test_try_acquire__release_retries_on_conflict),
        T(test_try_acquire__release_leaves_someone_elses_lease_alone),
        T(test_try_acquire__new_leader_reported_once_per_change),
        T(test_try_acquire__check_reports_a_stale_leader_unhealthy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
