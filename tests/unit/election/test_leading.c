/* The kle_leading handle's lifetime: a handle kept past its term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <stdlib.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

static kle_leading *kept[2];
static int terms;

static void on_started(kle_leading *l, void *data)
{
    (void)data;
    kept[terms++] = kle_leading_ref(l);
    kle_elector_stop(kle_leading_elector(l));
    kle_leading_wait_ns(l, -1);
}

static void on_stopped(void *data)
{
    (void)data;
}

static void test_leading__kept_handle_outlives_its_term_and_elector(void **state)
{
    (void)state;
    kle_fake_clock_opts co = KLE_FAKE_CLOCK_OPTS_INIT;
    co.auto_advance = 1;
    kle_clock *clock;
    kle_fake_store *store;
    kle_lock *lock;
    assert_int_equal(kle_fake_clock_new(&clock, &co), 0);
    assert_int_equal(kle_fake_store_new(&store, clock), 0);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", "default/kept"), 0);
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = lock;
    cfg.clock = clock;
    cfg.release_on_cancel = 1;
    cfg.callbacks.on_started_leading = on_started;
    cfg.callbacks.on_stopped_leading = on_stopped;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &cfg), 0);
    assert_int_equal(kle_fake_clock_join(clock), 0);
    assert_int_equal(kle_elector_run(e), 0);
    kle_fake_clock_leave(clock);
    assert_int_equal(terms, 1);
    int64_t final = kle_leading_deadline_ns(kept[0]);
    kle_elector_free(e);
    kle_fake_store_free(store);
    kle_clock_free(clock);

    /* The elector, its lock and its clock are gone; the handle answers alone. */
    kle_leading *h = kept[0];
    assert_int_equal(kle_leading_is_over(h), 1);
    assert_int_equal(kle_leading_wait_ns(h, KLE_SEC(1)), 0);
    assert_null(kle_leading_elector(h));
    assert_int_equal(kle_leading_deadline_ns(h), final);
    assert_int_equal(kle_leading_transitions(h), 0);
    struct pollfd p = {kle_leading_fd(h), POLLIN, 0};
    assert_int_equal(poll(&p, 1, 0), 1);
    kle_leading_unref(h);
}

int main(void)
{
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leading__kept_handle_outlives_its_term_and_elector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
