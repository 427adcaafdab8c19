#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>

#include "kle/sys/clock.h"
#include "kle/errors.h"

static void test_clock__real_wait_times_out_at_deadline(void **state)
{
    kle_clock *c = kle_clock_real();
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    int64_t start = kle_clock_monotonic_ns(c);
    assert_int_equal(kle_clock_wait(c, ev, start + 20 * KLE_NS_PER_MS), KLE_ETIMEOUT);
    assert_true(kle_clock_monotonic_ns(c) - start >= 20 * KLE_NS_PER_MS);
    kle_event_free(ev);
}

static void test_clock__event_fd_is_readable_only_while_set(void **state)
{
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    struct pollfd pfd = {.fd = kle_event_fd(ev), .events = POLLIN};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_false(kle_event_is_set(ev));
    kle_event_set(ev);
    kle_event_set(ev);
    assert_true(kle_event_is_set(ev));
    assert_int_equal(poll(&pfd, 1, 0), 1);
    /* An already set event ends a wait at once. */
    assert_int_equal(kle_clock_wait(NULL, ev, INT64_MAX), 0);
    kle_event_reset(ev);
    assert_false(kle_event_is_set(ev));
    assert_int_equal(poll(&pfd, 1, 0), 0);
    kle_event_free(ev);
}

static void *set_later(void *arg)
{
    kle_clock_sleep(NULL, 10 * KLE_NS_PER_MS);
    kle_event_set(arg);
    return NULL;
}

static void test_clock__set_from_another_thread_wakes_a_waiter(void **state)
{
    kle_event *ev;
    pthread_t t;
    assert_int_equal(kle_event_new(&ev), 0);
    int64_t start = kle_clock_monotonic_ns(NULL);
    pthread_create(&t, NULL, set_later, ev);
    assert_int_equal(kle_clock_wait(NULL, ev, start + 10 * KLE_NS_PER_SEC), 0);
    assert_true(kle_clock_monotonic_ns(NULL) - start < 5 * KLE_NS_PER_SEC);
    pthread_join(t, NULL);
    kle_event_free(ev);
}

static void test_clock__wall_time_is_after_2020(void **state)
{
    assert_true(kle_clock_wall_ns(NULL) > INT64_C(1577836800) * KLE_NS_PER_SEC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clock__real_wait_times_out_at_deadline),
        cmocka_unit_test(test_clock__event_fd_is_readable_only_while_set),
        cmocka_unit_test(test_clock__set_from_another_thread_wakes_a_waiter),
        cmocka_unit_test(test_clock__wall_time_is_after_2020),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
