#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kle/sys/clock.h"
#include "kle/errors.h"
#include "kle/testing.h"

#define SEC KLE_NS_PER_SEC

static kle_clock *new_clock(int auto_advance)
{
    kle_clock *c;
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = auto_advance;
    assert_int_equal(kle_fake_clock_new(&c, &o), 0);
    return c;
}

static void test_fake_clock__wall_starts_at_the_configured_time(void **state)
{
    kle_clock *c = new_clock(0);
    assert_true(kle_fake_clock_is_fake(c));
    assert_false(kle_fake_clock_is_fake(kle_clock_real()));
    assert_true(kle_clock_wall_ns(c) == INT64_C(1795255200) * SEC);
    int64_t m = kle_clock_monotonic_ns(c);
    assert_int_equal(kle_fake_clock_advance(c, 5 * SEC), 0);
    assert_true(kle_clock_monotonic_ns(c) - m == 5 * SEC);
    assert_true(kle_clock_wall_ns(c) == INT64_C(1795255205) * SEC);
    assert_int_equal(kle_fake_clock_advance(c, -1), KLE_EINVAL);
    assert_int_equal(kle_fake_clock_advance(kle_clock_real(), 1), KLE_EINVAL);
    kle_clock_free(c);
}

struct sleeper {
    kle_clock *clock;
    kle_event *ev;
    int64_t deadline;
    int rc;
    int64_t woke_at;
};

static void *sleeper_main(void *p)
{
    struct sleeper *s = p;
    s->rc = kle_clock_wait(s->clock, s->ev, s->deadline);
    s->woke_at = kle_clock_monotonic_ns(s->clock);
    return NULL;
}

static void test_fake_clock__manual_advance_wakes_due_waiters(void **state)
{
    kle_clock *c = new_clock(0);
    struct sleeper s = {c, NULL, kle_clock_monotonic_ns(c) + 10 * SEC, 1, 0};
    pthread_t t;
    pthread_create(&t, NULL, sleeper_main, &s);
    assert_int_equal(kle_fake_clock_await_waiters_ns(c, 1, KLE_MS(5000)), 0);
    kle_fake_clock_advance(c, 9 * SEC);
    /* Not yet due: still waiting. */
    assert_int_equal(kle_fake_clock_await_waiters_ns(c, 1, KLE_MS(5000)), 0);
    kle_fake_clock_advance(c, 1 * SEC);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, KLE_ETIMEOUT);
    assert_true(s.woke_at == s.deadline);
    assert_int_equal(kle_fake_clock_waiters(c), 0);
    /* Nobody waits: await gives up after its real timeout. */
    assert_int_equal(kle_fake_clock_await_waiters_ns(c, 1, KLE_MS(20)), KLE_ETIMEOUT);
    kle_clock_free(c);
}

static void test_fake_clock__event_ends_a_wait_without_time_passing(void **state)
{
    kle_clock *c = new_clock(0);
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    struct sleeper s = {c, ev, INT64_MAX, 1, 0};
    pthread_t t;
    int64_t start = kle_clock_monotonic_ns(c);
    pthread_create(&t, NULL, sleeper_main, &s);
    assert_int_equal(kle_fake_clock_await_waiters_ns(c, 1, KLE_MS(5000)), 0);
    kle_event_set(ev);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    assert_true(s.woke_at == start);
    kle_event_free(ev);
    kle_clock_free(c);
}

struct order {
    kle_clock *clock;
    char log[256];
    pthread_mutex_t mu;
};

struct worker {
    struct order *o;
    char name;
    int64_t period;
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    for (int i = 0; i < 3; i++) {
        kle_clock_sleep(w->o->clock, w->period);
        pthread_mutex_lock(&w->o->mu);
        size_t n = strlen(w->o->log);
        snprintf(w->o->log + n, sizeof(w->o->log) - n, "%c%lld ", w->name,
                 (long long)((kle_clock_monotonic_ns(w->o->clock) - 1000 * SEC) / SEC));
        pthread_mutex_unlock(&w->o->mu);
    }
    return NULL;
}

static void run_workers(struct order *o)
{
    struct worker ws[3] = {{o, 'a', 3 * SEC}, {o, 'b', 2 * SEC}, {o, 'c', 3 * SEC}};
    pthread_t t[3];
    o->clock = new_clock(1);
    o->log[0] = '\0';
    pthread_mutex_init(&o->mu, NULL);
    /* Spawn as a participant, so that time cannot move until all are started. */
    assert_int_equal(kle_fake_clock_join(o->clock), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kle_fake_clock_spawn(&t[i], o->clock, worker_main, &ws[i]), 0);
    kle_fake_clock_leave(o->clock);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    pthread_mutex_destroy(&o->mu);
    kle_clock_free(o->clock);
}

static void test_fake_clock__auto_mode_runs_participants_in_a_fixed_order(void **state)
{
    struct order o1, o2;
    run_workers(&o1);
    /* Time jumps from deadline to deadline; equal deadlines go in spawn order. */
    assert_string_equal(o1.log, "b2 a3 c3 b4 a6 b6 c6 a9 c9 ");
    for (int i = 0; i < 20; i++) {
        run_workers(&o2);
        assert_string_equal(o1.log, o2.log);
    }
}

static int hook_calls;
static void count_hook(kle_clock *c, void *d)
{
    hook_calls++;
}

static void test_fake_clock__joined_thread_drives_time_and_hook_sees_steps(void **state)
{
    kle_clock *c = new_clock(1);
    hook_calls = 0;
    kle_fake_clock_set_step_hook(c, count_hook, NULL);
    assert_int_equal(kle_fake_clock_join(c), 0);
    int64_t start = kle_clock_monotonic_ns(c);
    kle_clock_sleep(c, 3600 * SEC); /* An hour, at once. */
    assert_true(kle_clock_monotonic_ns(c) - start == 3600 * SEC);
    assert_true(hook_calls >= 2);
    kle_fake_clock_leave(c);
    kle_fake_clock_set_step_hook(c, NULL, NULL);
    kle_clock_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_clock__wall_starts_at_the_configured_time),
        cmocka_unit_test(test_fake_clock__manual_advance_wakes_due_waiters),
        cmocka_unit_test(test_fake_clock__event_ends_a_wait_without_time_passing),
        cmocka_unit_test(test_fake_clock__auto_mode_runs_participants_in_a_fixed_order),
        cmocka_unit_test(test_fake_clock__joined_thread_drives_time_and_hook_sees_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
