/*
 * The elector on the real clock: stop from a signal handler, and the leading
 * handle's file descriptor in a poll loop. Waits are bounded by deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

static kle_elector *the_elector;
static atomic_int fd_fired;
static atomic_int leading;

static void on_signal(int sig)
{
    kle_elector_stop(the_elector);
}

static void started(kle_leading *l, void *d)
{
    atomic_store(&leading, 1);
    struct pollfd p = {.fd = kle_leading_fd(l), .events = POLLIN};
    /* A program's own event loop: wake on the fd, at most 30 s. */
    int rc = poll(&p, 1, 30000);
    if (rc == 1 && (p.revents & POLLIN))
        atomic_store(&fd_fired, 1);
}

static void stopped(void *d)
{
}

static void *raise_when_leading(void *p)
{
    int64_t deadline = kle_clock_monotonic_ns(NULL) + 30 * KLE_NS_PER_SEC;
    while (!atomic_load(&leading) && kle_clock_monotonic_ns(NULL) < deadline)
        kle_clock_sleep(NULL, 1000000);
    pthread_kill(*(pthread_t *)p, SIGUSR1);
    return NULL;
}

static void test_elector_real_clock__stop_from_signal_handler_releases(void **state)
{
    kle_fake_store *store;
    kle_lock *lock;
    quiet_log_install();
    assert_int_equal(kle_fake_store_new(&store, NULL), 0);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", NULL), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.release_on_cancel = 1;
    c.callbacks.on_started_leading = started;
    c.callbacks.on_stopped_leading = stopped;
    assert_int_equal(kle_elector_new(&the_elector, &c), 0);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGUSR1, &sa, NULL);
    pthread_t self = pthread_self(), t;
    pthread_create(&t, NULL, raise_when_leading, &self);
    int64_t start = kle_clock_monotonic_ns(NULL);
    assert_int_equal(kle_elector_run(the_elector), 0);
    int64_t took = kle_clock_monotonic_ns(NULL) - start;
    pthread_join(t, NULL);
    signal(SIGUSR1, SIG_DFL);

    assert_true(atomic_load(&fd_fired));
    assert_true(took < 10 * KLE_NS_PER_SEC);
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, store), 0);
    assert_string_equal(kle_record_holder(&r), "");
    kle_record_dispose(&r);
    kle_elector_free(the_elector);
    kle_fake_store_free(store);
}

/*
 * Timings client-go accepts but a real API server cannot sustain (a retry
 * period under 100 ms, a renew deadline under 1 s) are still accepted, with
 * one warning naming them; sound timings get none.
 */
static void test_elector_real_clock__timings_below_the_floor_warn(void **state)
{
    (void)state;
    kle_fake_store *store;
    kle_lock *lock;
    kle_elector *e;
    quiet_log_install();
    assert_int_equal(kle_fake_store_new(&store, NULL), 0);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    int before = atomic_load(&quiet_log_lines[KLE_LOG_WARNING]);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", NULL), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.callbacks.on_started_leading = started;
    c.callbacks.on_stopped_leading = stopped;
    c.lease_duration_ns = KLE_SEC(1);
    c.renew_deadline_ns = KLE_MS(3);
    c.retry_period_ns = KLE_MS(2);
    assert_int_equal(kle_elector_new(&e, &c), 0);
    kle_elector_free(e);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(atomic_load(&quiet_log_lines[KLE_LOG_WARNING]) - before, 1);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", NULL), 0);
    kle_elector_config ok = KLE_ELECTOR_CONFIG_INIT;
    ok.lock = lock;
    ok.callbacks.on_started_leading = started;
    ok.callbacks.on_stopped_leading = stopped;
    assert_int_equal(kle_elector_new(&e, &ok), 0);
    kle_elector_free(e);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(atomic_load(&quiet_log_lines[KLE_LOG_WARNING]) - before, 1);
    kle_fake_store_free(store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elector_real_clock__stop_from_signal_handler_releases),
        cmocka_unit_test(test_elector_real_clock__timings_below_the_floor_warn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
