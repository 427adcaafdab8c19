/*
 * Every versioned struct's init function: at each version from 1 to the
 * current one it sets the version (and the defaults); version 0, the next
 * version and NULL are refused with KLE_EVERSION and KLE_EINVAL. And the
 * small accessors no other test reaches: kle_elector_identity(),
 * kle_watch_event_type_name().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/rest.h"
#include "kle/sys/errors.h"
#include "kle/testing.h"

#define CHECK_INIT(type, fn, current)                                                              \
    do {                                                                                           \
        for (unsigned int v = 1; v <= (current); v++) {                                            \
            type s;                                                                                \
            memset(&s, 0xA5, sizeof(s));                                                           \
            assert_int_equal(fn(&s, v), 0);                                                        \
            assert_int_equal(s.version, v);                                                        \
        }                                                                                          \
        type s;                                                                                    \
        assert_int_equal(fn(&s, 0), KLE_EVERSION);                                                 \
        assert_int_equal(fn(&s, (current) + 1), KLE_EVERSION);                                     \
        assert_non_null(strstr(kle_error_last()->message, #fn));                                   \
        assert_int_equal(fn(NULL, (current)), KLE_EINVAL);                                         \
    } while (0)

static void test_init__every_init_function(void **state)
{
    (void)state;
    CHECK_INIT(kle_record, kle_record_init, KLE_RECORD_VERSION);
    CHECK_INIT(kle_elector_config, kle_elector_config_init, KLE_ELECTOR_CONFIG_VERSION);
    CHECK_INIT(kle_elector_stats, kle_elector_stats_init, KLE_ELECTOR_STATS_VERSION);
    CHECK_INIT(kle_lock_result, kle_lock_result_init, KLE_LOCK_RESULT_VERSION);
    CHECK_INIT(kle_lock_ctx, kle_lock_ctx_init, KLE_LOCK_CTX_VERSION);
    CHECK_INIT(kle_lock_watch_opts, kle_lock_watch_opts_init, KLE_LOCK_WATCH_OPTS_VERSION);
    CHECK_INIT(kle_candidate_opts, kle_candidate_opts_init, KLE_CANDIDATE_OPTS_VERSION);
    CHECK_INIT(kle_transfer_opts, kle_transfer_opts_init, KLE_TRANSFER_OPTS_VERSION);
    CHECK_INIT(kle_client_opts, kle_client_opts_init, KLE_CLIENT_OPTS_VERSION);
    CHECK_INIT(kle_request_opts, kle_request_opts_init, KLE_REQUEST_OPTS_VERSION);
    CHECK_INIT(kle_watch_opts, kle_watch_opts_init, KLE_WATCH_OPTS_VERSION);
    CHECK_INIT(kle_resource_lock_opts, kle_resource_lock_opts_init, KLE_RESOURCE_LOCK_OPTS_VERSION);
    CHECK_INIT(kle_fake_clock_opts, kle_fake_clock_opts_init, KLE_FAKE_CLOCK_OPTS_VERSION);
}

static void test_init__defaults_are_the_static_initialisers(void **state)
{
    (void)state;
    kle_elector_config c, want = KLE_ELECTOR_CONFIG_INIT;
    memset(&c, 0xA5, sizeof(c));
    assert_int_equal(kle_elector_config_init(&c, KLE_ELECTOR_CONFIG_VERSION), 0);
    assert_true(c.lease_duration_ns == want.lease_duration_ns);
    assert_true(c.renew_deadline_ns == want.renew_deadline_ns);
    assert_true(c.retry_period_ns == want.retry_period_ns);
    assert_int_equal(c.follow, want.follow);
    kle_record r;
    memset(&r, 0xA5, sizeof(r));
    assert_int_equal(kle_record_init(&r, KLE_RECORD_VERSION), 0);
    assert_null(r.holder_identity);
    assert_int_equal(r.leader_transitions, 0);
}

static void lead(kle_leading *l, void *data)
{
    (void)l, (void)data;
}

static void stopped(void *data)
{
    (void)data;
}

static void test_init__accessors(void **state)
{
    (void)state;
    assert_string_equal(kle_watch_event_type_name(KLE_WATCH_ADDED), "ADDED");
    assert_string_equal(kle_watch_event_type_name(KLE_WATCH_MODIFIED), "MODIFIED");
    assert_string_equal(kle_watch_event_type_name(KLE_WATCH_DELETED), "DELETED");
    assert_string_equal(kle_watch_event_type_name(KLE_WATCH_BOOKMARK), "BOOKMARK");
    assert_string_equal(kle_watch_event_type_name(KLE_WATCH_LISTED), "LISTED");
    assert_string_equal(kle_watch_event_type_name((kle_watch_event_type)99), "?");

    kle_fake_store *store = NULL;
    assert_int_equal(kle_fake_store_new(&store, NULL), 0);
    kle_lock *lock = NULL;
    assert_int_equal(kle_fake_lock_new(&lock, store, "replica-7", "fake/lock"), 0);
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = lock;
    cfg.callbacks.on_started_leading = lead;
    cfg.callbacks.on_stopped_leading = stopped;
    kle_elector *e = NULL;
    assert_int_equal(kle_elector_new(&e, &cfg), 0);
    assert_string_equal(kle_elector_identity(e), "replica-7");
    kle_elector_free(e);
    kle_fake_store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init__every_init_function),
        cmocka_unit_test(test_init__defaults_are_the_static_initialisers),
        cmocka_unit_test(test_init__accessors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
