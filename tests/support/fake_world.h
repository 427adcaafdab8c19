/*
 * Test helper: a fake clock (the test thread joined when it auto-advances)
 * and a fake store on it, as the elector's unit tests set them up.
 * Include after <cmocka.h>.
 */
#ifndef KLE_TESTS_FAKE_WORLD_H
#define KLE_TESTS_FAKE_WORLD_H

#include "kle/testing.h"
#include "support/quiet_log.h"

static inline void clock_and_store(kle_clock **clock, kle_fake_store **store, int auto_clock)
{
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = auto_clock;
    quiet_log_install();
    assert_int_equal(kle_fake_clock_new(clock, &o), 0);
    assert_int_equal(kle_fake_store_new(store, *clock), 0);
    if (auto_clock)
        assert_int_equal(kle_fake_clock_join(*clock), 0);
}

static inline void free_clock_and_store(kle_clock *clock, kle_fake_store *store, int auto_clock)
{
    if (auto_clock)
        kle_fake_clock_leave(clock);
    kle_fake_store_free(store);
    kle_clock_free(clock);
}

#endif
