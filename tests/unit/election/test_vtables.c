/*
 * KLE_LOCK_INIT and KLE_CLOCK_INIT, the static initialisers for backend
 * authors: the current version, every member NULL; kle_lock_validate()
 * names the first required member still missing, and a vtable with its
 * required members set is accepted and used.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"

static int get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    (void)out, (void)self, (void)ctx;
    return KLE_ENOTFOUND;
}

static int write_record(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    (void)self, (void)record, (void)ctx;
    return 0;
}

static const char *name(kle_lock *self)
{
    (void)self;
    return "vtable-test";
}

static void nothing(kle_lock *self)
{
    (void)self;
}

static void test_vtables__lock_init_is_current_and_empty(void **state)
{
    (void)state;
    kle_lock vt = KLE_LOCK_INIT;
    assert_int_equal(vt.version, KLE_LOCK_VERSION);
    assert_null(vt.get);
    assert_null(vt.start);
    assert_null(vt.watch_start);
    assert_int_equal(kle_lock_validate(&vt), KLE_EINVAL);
    assert_non_null(strstr(kle_error_last()->message, "member get is NULL"));
    vt.get = get;
    vt.create = write_record;
    vt.update = write_record;
    vt.identity = name;
    assert_int_equal(kle_lock_validate(&vt), KLE_EINVAL);
    assert_non_null(strstr(kle_error_last()->message, "member describe is NULL"));
    vt.describe = name;
    vt.free = nothing;
    assert_int_equal(kle_lock_validate(&vt), 0);
    assert_string_equal(kle_lock_identity(&vt), "vtable-test");
}

static int64_t fixed_ns(kle_clock *self)
{
    (void)self;
    return 42;
}

static int no_wait(kle_clock *self, kle_event *event, int64_t deadline_ns)
{
    (void)self, (void)event, (void)deadline_ns;
    return 0;
}

static void test_vtables__clock_init_is_current_and_empty(void **state)
{
    (void)state;
    kle_clock c = KLE_CLOCK_INIT;
    assert_int_equal(c.version, KLE_CLOCK_VERSION);
    assert_null(c.monotonic_ns);
    assert_null(c.wall_ns);
    assert_null(c.wait);
    c.monotonic_ns = fixed_ns;
    c.wall_ns = fixed_ns;
    c.wait = no_wait;
    assert_int_equal(kle_clock_monotonic_ns(&c), 42);
    assert_int_equal(kle_clock_wall_ns(&c), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vtables__lock_init_is_current_and_empty),
        cmocka_unit_test(test_vtables__clock_init_is_current_and_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
