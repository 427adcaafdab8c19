/*
 * MultiLock semantics on two fake objects: a primary (the old Endpoints or
 * ConfigMap lock) and a secondary (the Lease).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/errors.h"
#include "kle/locks.h"
#include "kle/testing.h"

typedef struct fixture {
    kle_fake_store *p, *s;
    kle_lock *multi;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    kle_lock *p, *s;
    kle_fake_store_new(&f->p, NULL);
    kle_fake_store_new(&f->s, NULL);
    kle_fake_lock_new(&p, f->p, "me", "default/primary");
    kle_fake_lock_new(&s, f->s, "me", "default/secondary");
    assert_int_equal(kle_multi_lock_new(&f->multi, p, s), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kle_lock_free(f->multi);
    kle_fake_store_free(f->p);
    kle_fake_store_free(f->s);
    free(f);
    return 0;
}

static void put(kle_fake_store *store, const char *holder, int transitions)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = 15;
    r.leader_transitions = transitions;
    kle_fake_store_put(store, &r);
    kle_record_dispose(&r);
}

/* The stored holder, copied into buf (64 bytes). */
static const char *holder_of(kle_fake_store *store, char *buf)
{
    kle_record r = KLE_RECORD_INIT;
    if (kle_fake_store_peek(&r, NULL, store) < 0)
        return "<missing>";
    snprintf(buf, 64, "%s", kle_record_holder(&r));
    kle_record_dispose(&r);
    return buf;
}

static kle_record mine(int transitions)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, "me");
    r.lease_duration_seconds = 15;
    r.leader_transitions = transitions;
    return r;
}

static void test_multi_lock__both_present_and_agreeing(void **state)
{
    fixture *f = *state;
    put(f->p, "x", 4);
    put(f->s, "x", 4);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "x");
    assert_int_equal(got.record.leader_transitions, 4);
    /* The raw record is primary "," secondary. */
    const char *comma = strstr(got.raw, "},{");
    assert_non_null(comma);
    assert_int_equal(strncmp(got.raw, comma + 2, (size_t)(comma + 1 - got.raw)), 0);
    assert_string_equal(kle_lock_identity(f->multi), "me");
    assert_string_equal(kle_lock_describe(f->multi), "default/primary");
    kle_lock_result_dispose(&got);
}

static void test_multi_lock__secondary_missing_reports_the_primary(void **state)
{
    fixture *f = *state;
    put(f->p, "legacy", 2);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "legacy");
    assert_null(strstr(got.raw, "},{"));
    kle_lock_result_dispose(&got);
}

static void test_multi_lock__secondary_missing_under_our_primary_creates_it(void **state)
{
    fixture *f = *state;
    char buf[64];
    put(f->p, "me", 2);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), KLE_ENOTFOUND);
    kle_record r = mine(2);
    assert_int_equal(kle_lock_create(f->multi, &r, NULL), 0);
    assert_string_equal(holder_of(f->p, buf), "me");
    assert_string_equal(holder_of(f->s, buf), "me");
    assert_int_equal(kle_fake_store_writes(f->p), 2); /* our put, then the update */
    kle_record_dispose(&r);
}

/* Holders equal as C strings but not byte for byte disagree. */
static void test_multi_lock__holders_compared_with_their_length(void **state)
{
    fixture *f = *state;
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_holder(&r, "x\0y", 3);
    r.lease_duration_seconds = 15;
    r.leader_transitions = 4;
    kle_fake_store_put(f->p, &r);
    kle_record_dispose(&r);
    put(f->s, "x", 4);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    assert_true(kle_record_holder_is(&got.record, KLE_UNKNOWN_LEADER));
    assert_int_equal(kle_record_holder_len(&got.record), strlen(KLE_UNKNOWN_LEADER));
    assert_non_null(strstr(got.raw, "\"holderIdentity\":\"x\""));
    kle_lock_result_dispose(&got);
    /* A primary held by "me\0" with no secondary is not ours: reported as held, not "missing". */
    kle_fake_store_put(f->s, NULL);
    r = (kle_record)KLE_RECORD_INIT;
    kle_record_set_holder(&r, "me\0", 3);
    r.lease_duration_seconds = 15;
    kle_fake_store_put(f->p, &r);
    kle_record_dispose(&r);
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    assert_int_equal(kle_record_holder_len(&got.record), 3);
    assert_false(kle_record_holder_is(&got.record, "me"));
    assert_non_null(strstr(got.raw, "\"holderIdentity\":\"me\\u0000\""));
    kle_lock_result_dispose(&got);
}

static void test_multi_lock__holders_disagreeing_make_an_unknown_leader(void **state)
{
    fixture *f = *state;
    put(f->p, "old-leader", 4);
    put(f->s, "new-leader", 4);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), KLE_UNKNOWN_LEADER);
    assert_non_null(strstr(got.raw, "\"holderIdentity\":\"" KLE_UNKNOWN_LEADER "\""));
    assert_non_null(strstr(got.raw, "\"holderIdentity\":\"new-leader\""));
    kle_lock_result_dispose(&got);
}

static void test_multi_lock__update_writes_primary_then_secondary(void **state)
{
    fixture *f = *state;
    char buf[64];
    put(f->p, "", 4);
    put(f->s, "", 4);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    kle_lock_result_dispose(&got);
    kle_record r = mine(5);
    assert_int_equal(kle_lock_update(f->multi, &r, NULL), 0);
    assert_string_equal(holder_of(f->p, buf), "me");
    assert_string_equal(holder_of(f->s, buf), "me");
    /* A renewal over what we wrote needs no read. */
    assert_int_equal(kle_lock_update(f->multi, &r, NULL), 0);
    kle_record_dispose(&r);
}

static void test_multi_lock__secondary_write_stays_conditional(void **state)
{
    fixture *f = *state;
    char buf[64];
    put(f->p, "", 4);
    put(f->s, "", 4);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), 0);
    kle_lock_result_dispose(&got);
    /* A Lease-only candidate takes the Lease in between. */
    kle_lock *lease_only;
    kle_fake_lock_new(&lease_only, f->s, "lease-only", NULL);
    assert_int_equal(kle_lock_get(&got, lease_only, NULL), 0);
    kle_lock_result_dispose(&got);
    kle_record theirs = KLE_RECORD_INIT;
    kle_record_set_string(&theirs.holder_identity, "lease-only");
    theirs.lease_duration_seconds = 15;
    assert_int_equal(kle_lock_update(lease_only, &theirs, NULL), 0);
    /* Our takeover must not overwrite it: only one of us may lead. */
    kle_record r = mine(5);
    assert_int_equal(kle_lock_update(f->multi, &r, NULL), KLE_ECONFLICT);
    assert_string_equal(holder_of(f->s, buf), "lease-only");
    kle_record_dispose(&r);
    kle_record_dispose(&theirs);
    kle_lock_free(lease_only);
}

static void test_multi_lock__losing_the_race_to_create_the_primary_fails(void **state)
{
    fixture *f = *state;
    char buf[64];
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, f->multi, NULL), KLE_ENOTFOUND);
    /* An old-style candidate creates the primary first. */
    put(f->p, "legacy", 0);
    kle_record r = mine(0);
    assert_int_equal(kle_lock_create(f->multi, &r, NULL), KLE_EEXISTS);
    assert_string_equal(holder_of(f->s, buf), "<missing>");
    assert_string_equal(holder_of(f->p, buf), "legacy");
    kle_record_dispose(&r);
}

static void test_multi_lock__events_go_to_both_and_identities_must_match(void **state)
{
    fixture *f = *state;
    assert_int_equal(kle_lock_record_event(f->multi, "became leader", NULL), 0);
    kle_lock *a, *b, *m = (kle_lock *)f;
    kle_fake_lock_new(&a, f->p, "a", NULL);
    kle_fake_lock_new(&b, f->s, "b", NULL);
    assert_int_equal(kle_multi_lock_new(&m, a, b), KLE_EINVAL);
    assert_null(m);
    assert_string_equal(kle_error_last()->message, "multi lock: primary and secondary have "
                                                   "different identities (\"a\" and \"b\")");
    kle_lock_free(a);
    kle_lock_free(b);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_multi_lock__both_present_and_agreeing),
        T(test_multi_lock__secondary_missing_reports_the_primary),
        T(test_multi_lock__secondary_missing_under_our_primary_creates_it),
        T(test_multi_lock__holders_disagreeing_make_an_unknown_leader),
        T(test_multi_lock__holders_compared_with_their_length),
        T(test_multi_lock__update_writes_primary_then_secondary),
        T(test_multi_lock__secondary_write_stays_conditional),
        T(test_multi_lock__losing_the_race_to_create_the_primary_fails),
        T(test_multi_lock__events_go_to_both_and_identities_must_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
