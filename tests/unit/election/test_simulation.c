/*
 * A seeded contention simulation: five real electors on one shared fake
 * object, on the auto-advancing fake clock, for 24 virtual hours, with
 * scripted faults (failed calls, conflicts, slow calls whose writes land but
 * whose answers are lost) and electors that crash without releasing or stop
 * with a release, and come back under a new identity.
 *
 * Timings run across the whole valid range (retry period up to
 * renew_deadline / 1.2), with the fault "write lands, answer delayed" and
 * stuck calls (answers later than any timeout, as from a frozen thread).
 *
 * Checked at every step of the scheduler (every instant at which anything
 * can change): no two electors believe they lead; no two leaders' work
 * (on_started_leading until its handle ends) runs at once; and no
 * leader's handle is still open after its leadership deadline. Checked at every
 * acquisition: the fencing token (leaderTransitions) never goes back and
 * grows with every change of leader. Checked in every quiet phase (faults
 * cleared, crashed electors restarted): some elector leads within
 * LeaseDuration + 2.2 × RetryPeriod, and one still leads at its end.
 *
 * In watch mode (the electors follow the object through the fake lock's
 * watch) the same invariants hold with watch faults mixed in: events
 * delayed, dropped, duplicated, re-delivered stale, 410 Gone re-lists,
 * streams ended, black-holed or failing to open, and bookmarks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

#define SEC    KLE_NS_PER_SEC
#define MS     KLE_NS_PER_MS
#define N_CAND 5

typedef struct sim sim;

typedef struct cand {
    sim *s;
    int idx;
    int incarnation;
    char id[32];
    kle_lock *lock; /* Owned by the elector. */
    kle_elector *e;
    pthread_t thread;
    int alive;
    int quit;
    kle_event *exited;
    kle_leading *working; /* Set while on_started_leading runs. */
} cand;

struct sim {
    kle_clock *clock;
    kle_fake_store *store;
    cand c[N_CAND];
    uint64_t rng;
    /* Results. */
    uint64_t steps;
    uint64_t violations;
    char violation[256];
    uint64_t acquisitions;
    uint64_t crashes;
    uint64_t faults;
    uint64_t token_errors;
    uint64_t late_ends;
    char late[256];
    uint64_t stalls;
    int64_t lease, renew, retry;
    int watch; /* The electors follow in watch mode, with watch faults. */
    uint64_t watch_faults;
    int last_token;
    char last_holder[32];
    /* Quiet phase tracking. */
    int in_quiet;
    int64_t quiet_start;
    int64_t quiet_first_leader;
    int64_t worst_quiet_wait;
    int quiet_phases;
    int quiet_failures;
};

static uint64_t rnd(sim *s)
{
    uint64_t z = (s->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static int64_t rnd_range(sim *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(s) % (uint64_t)(hi - lo));
}

/* Runs on whichever participant holds the turn, before it gives it up and after it gets it. */
static void step_hook(kle_clock *clock, void *data)
{
    sim *s = data;
    int leaders = 0;
    char who[128] = "";
    s->steps++;
    for (int i = 0; i < N_CAND; i++) {
        cand *c = &s->c[i];
        if (c->e && kle_elector_is_leader(c->e)) {
            leaders++;
            size_t n = strlen(who);
            snprintf(who + n, sizeof(who) - n, " %s", c->id);
        }
    }
    int64_t now = kle_clock_monotonic_ns(clock);
    if (leaders > 1) {
        if (!s->violations)
            snprintf(s->violation, sizeof(s->violation), "at %" PRId64 " ms:%s", now / MS, who);
        s->violations++;
    }
    int working = 0;
    for (int i = 0; i < N_CAND; i++) {
        cand *c = &s->c[i];
        if (!c->working || kle_leading_is_over(c->working))
            continue;
        working++;
        int64_t deadline = kle_leading_deadline_ns(c->working);
        if (now > deadline) {
            if (!s->late_ends)
                snprintf(s->late, sizeof(s->late),
                         "at %" PRId64 " ms: %s still working %" PRId64 " ms after its deadline",
                         now / MS, c->id, (now - deadline) / MS);
            s->late_ends++;
        }
    }
    if (working > 1) {
        if (!s->violations)
            snprintf(s->violation, sizeof(s->violation), "at %" PRId64 " ms: %d leaders working",
                     now / MS, working);
        s->violations++;
    }
    if (leaders >= 1 && s->in_quiet && s->quiet_first_leader < 0)
        s->quiet_first_leader = now;
}

static void on_started(kle_leading *l, void *data)
{
    cand *c = data;
    sim *s = c->s;
    int token = kle_leading_transitions(l);
    s->acquisitions++;
    if (token < s->last_token || (token == s->last_token && strcmp(c->id, s->last_holder) != 0))
        s->token_errors++;
    s->last_token = token;
    snprintf(s->last_holder, sizeof(s->last_holder), "%s", c->id);
    c->working = l;
    /* The leader works in slices until leadership ends. */
    while (kle_leading_wait_ns(l, KLE_MS(700)) != 0) {
    }
    c->working = NULL;
}

static void on_stopped(void *data)
{
}

static void *cand_main(void *p)
{
    cand *c = p;
    while (!c->quit) {
        kle_elector_run(c->e); /* After a loss, campaign again. */
    }
    kle_event_set(c->exited);
    return NULL;
}

static void start_cand(sim *s, cand *c)
{
    c->incarnation++;
    snprintf(c->id, sizeof(c->id), "node-%d_%d", c->idx, c->incarnation);
    assert_int_equal(kle_fake_lock_new(&c->lock, s->store, c->id, "default/sim"), 0);
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = c->lock;
    cfg.clock = s->clock;
    cfg.lease_duration_ns = KLE_MS(s->lease / MS);
    cfg.renew_deadline_ns = KLE_MS(s->renew / MS);
    cfg.retry_period_ns = KLE_MS(s->retry / MS);
    cfg.release_on_cancel = c->incarnation % 2; /* Half stop with a release, half crash. */
    cfg.jitter_seed = rnd(s) | 1;
    cfg.callbacks.on_started_leading = on_started;
    cfg.callbacks.on_stopped_leading = on_stopped;
    cfg.callbacks.data = c;
    cfg.follow = s->watch ? KLE_FOLLOW_WATCH : KLE_FOLLOW_POLL;
    if (s->watch)
        assert_int_equal(kle_fake_lock_set_watch(c->lock, 1), 0);
    assert_int_equal(kle_elector_new(&c->e, &cfg), 0);
    assert_int_equal(kle_event_new(&c->exited), 0);
    c->quit = 0;
    c->alive = 1;
    assert_int_equal(kle_fake_clock_spawn(&c->thread, s->clock, cand_main, c), 0);
}

static void stop_cand(sim *s, cand *c)
{
    c->quit = 1;
    kle_elector_stop(c->e);
    assert_int_equal(kle_clock_wait(s->clock, c->exited, INT64_MAX), 0);
    pthread_join(c->thread, NULL);
    kle_elector *e = c->e;
    c->e = NULL; /* The step hook no longer looks at it. */
    kle_elector_free(e);
    kle_event_free(c->exited);
    c->exited = NULL;
    c->lock = NULL;
    c->alive = 0;
    s->crashes++;
}

static int current_leader(sim *s)
{
    for (int i = 0; i < N_CAND; i++)
        if (s->c[i].e && kle_elector_is_leader(s->c[i].e))
            return i;
    return -1;
}

/* A fault of the watch stream of one elector. */
static void inject_watch_fault(sim *s, cand *c)
{
    s->watch_faults++;
    if (!c->alive)
        return;
    int count = (int)rnd_range(s, 1, 6);
    switch (rnd(s) % 9) {
    case 0:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_DROP, count);
        break;
    case 1:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_DUPLICATE, count);
        break;
    case 2:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_STALE, count);
        break;
    case 3:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_GONE, 1);
        break;
    case 4:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_END, 1);
        break;
    case 5:
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_SILENCE, 1);
        break;
    case 6:
        kle_fake_lock_fail_next(c->lock, KLE_FAKE_WATCH, count, KLE_ETRANSPORT);
        kle_fake_lock_watch_fault(c->lock, KLE_FAKE_WATCH_END, 1);
        break;
    case 7:
        kle_fake_lock_delay_next(c->lock, KLE_FAKE_WATCH, count, rnd_range(s, 1 * MS, s->retry));
        break;
    default:
        kle_fake_store_bookmark(s->store);
        break;
    }
}

static void inject_fault(sim *s)
{
    cand *c = &s->c[rnd(s) % N_CAND];
    unsigned kind = (unsigned)(rnd(s) % 100);
    s->faults++;
    if (s->watch && rnd(s) % 3 == 0) {
        inject_watch_fault(s, c);
        return;
    }
    if (kind < 8) {
        /* The leader is cut off: its calls hang to their timeouts or fail. */
        int l = current_leader(s);
        if (l >= 0)
            c = &s->c[l];
        kind = 0;
    }
    if (kind < 15 && c->alive) {
        /* A partition of this elector: every call fails fast, or hangs to its timeout. */
        int hang = (int)(rnd(s) % 2);
        int count = (int)rnd_range(s, 3, 12);
        for (int m = KLE_FAKE_GET; m <= KLE_FAKE_UPDATE; m++) {
            if (hang)
                kle_fake_lock_delay_next(c->lock, (kle_fake_method)m, count, 60 * SEC);
            else
                kle_fake_lock_fail_next(c->lock, (kle_fake_method)m, count, KLE_ETRANSPORT);
        }
    } else if (kind < 40 && c->alive) {
        static const int errors[] = {KLE_ETIMEOUT, KLE_ECONFLICT, KLE_ETRANSPORT, KLE_ESERVER,
                                     KLE_ETOOMANYREQUESTS};
        kle_fake_lock_fail_next(c->lock, (kle_fake_method)(rnd(s) % 3), (int)rnd_range(s, 1, 5),
                                errors[rnd(s) % 5]);
    } else if (kind < 58 && c->alive) {
        /* Writes land at once, answers come late (cut at the call's timeout). */
        kle_fake_lock_delay_next(c->lock, (kle_fake_method)(rnd(s) % 3), (int)rnd_range(s, 1, 4),
                                 rnd_range(s, 100 * MS, 2 * s->renew));
    } else if (kind < 65 && c->alive) {
        /* A stuck call: the answer comes later than any timeout. */
        s->stalls++;
        kle_fake_lock_stall_next(c->lock, (kle_fake_method)(rnd(s) % 3), 1,
                                 rnd_range(s, 100 * MS, 2 * s->renew));
    } else if (kind < 75) {
        int l = current_leader(s);
        if (l >= 0)
            stop_cand(s, &s->c[l]);
    } else if (kind < 85 && c->alive) {
        stop_cand(s, c);
    } else if (!c->alive) {
        start_cand(s, c);
    }
}

static void quiet_phase(sim *s, int64_t length)
{
    for (int i = 0; i < N_CAND; i++)
        if (s->c[i].alive)
            kle_fake_lock_clear_script(s->c[i].lock);
    /* Half the time the leader crashes as the faults stop; every crashed
     * elector comes back, and one more restarts, as in a rolling update. */
    int l = current_leader(s);
    if (l >= 0 && rnd(s) % 2)
        stop_cand(s, &s->c[l]);
    int extra = (int)(rnd(s) % N_CAND);
    if (s->c[extra].alive && extra != current_leader(s))
        stop_cand(s, &s->c[extra]);
    for (int i = 0; i < N_CAND; i++)
        if (!s->c[i].alive)
            start_cand(s, &s->c[i]);
    s->in_quiet = 1;
    s->quiet_start = kle_clock_monotonic_ns(s->clock);
    s->quiet_first_leader = current_leader(s) >= 0 ? s->quiet_start : -1;
    kle_clock_sleep(s->clock, length);
    s->in_quiet = 0;
    s->quiet_phases++;
    int64_t bound = s->lease + s->retry * 22 / 10;
    int64_t waited = s->quiet_first_leader < 0 ? INT64_MAX : s->quiet_first_leader - s->quiet_start;
    if (waited > s->worst_quiet_wait)
        s->worst_quiet_wait = waited;
    if (waited > bound || current_leader(s) < 0)
        s->quiet_failures++;
}

/* Runs the simulation for `duration` of virtual time; returns a digest of what happened. */
static uint64_t simulate_timed(sim *s, uint64_t seed, int64_t duration, int64_t lease,
                               int64_t renew, int64_t retry)
{
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = 1;
    int watch = s->watch;
    memset(s, 0, sizeof(*s));
    s->watch = watch;
    s->lease = lease;
    s->renew = renew;
    s->retry = retry;
    s->rng = seed;
    s->worst_quiet_wait = 0;
    s->last_token = -1;

    assert_int_equal(kle_fake_clock_new(&s->clock, &o), 0);
    assert_int_equal(kle_fake_store_new(&s->store, s->clock), 0);
    kle_fake_clock_set_step_hook(s->clock, step_hook, s);
    assert_int_equal(kle_fake_clock_join(s->clock), 0);
    int64_t start = kle_clock_monotonic_ns(s->clock);
    for (int i = 0; i < N_CAND; i++) {
        s->c[i].s = s;
        s->c[i].idx = i;
        start_cand(s, &s->c[i]);
    }
    while (kle_clock_monotonic_ns(s->clock) - start < duration) {
        /* 20 virtual minutes of faults, then 90 s without. */
        int64_t phase_end = kle_clock_monotonic_ns(s->clock) + 20 * 60 * SEC;
        while (kle_clock_monotonic_ns(s->clock) < phase_end) {
            kle_clock_sleep(s->clock, rnd_range(s, 200 * MS, 6 * SEC));
            inject_fault(s);
        }
        quiet_phase(s, 90 * SEC);
    }
    for (int i = 0; i < N_CAND; i++)
        if (s->c[i].alive)
            stop_cand(s, &s->c[i]);
    kle_fake_clock_set_step_hook(s->clock, NULL, NULL);
    kle_fake_clock_leave(s->clock);
    uint64_t digest = kle_fake_store_writes(s->store) * 1000003 + s->acquisitions * 101 + s->steps +
                      (uint64_t)s->last_token;
    kle_fake_store_free(s->store);
    kle_clock_free(s->clock);
    return digest;
}

static uint64_t simulate(sim *s, uint64_t seed, int64_t duration)
{
    return simulate_timed(s, seed, duration, 15 * SEC, 10 * SEC, 2 * SEC);
}

static void report(const char *name, sim *s, int64_t duration)
{
    print_message("%s (%" PRId64 "/%" PRId64 "/%" PRId64 " ms): %" PRId64 " virtual h, %" PRIu64
                  " steps, %" PRIu64 " acquisitions, %" PRIu64 " faults (%" PRIu64
                  " stuck calls), %" PRIu64 " stops/crashes, %d quiet phases, worst wait for a "
                  "leader after faults stop %" PRId64 " ms (bound %" PRId64 " ms)\n",
                  name, s->lease / MS, s->renew / MS, s->retry / MS, duration / (3600 * SEC),
                  s->steps, s->acquisitions, s->faults, s->stalls, s->crashes, s->quiet_phases,
                  s->worst_quiet_wait / MS, (s->lease + s->retry * 22 / 10) / MS);
}

static void assert_sim_ok(sim *s)
{
    if (s->violations)
        fail_msg("two leaders %" PRIu64 " times; first %s", s->violations, s->violation);
    if (s->late_ends)
        fail_msg("a leader's work outlived its deadline %" PRIu64 " times; first %s", s->late_ends,
                 s->late);
    assert_int_equal(s->token_errors, 0);
    assert_int_equal(s->quiet_failures, 0);
    assert_true(s->acquisitions > 0);
}

static void test_simulation__same_seed_replays_exactly(void **state)
{
    sim *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    int64_t hour = 3600 * SEC;
    uint64_t da = simulate(a, 7, hour);
    uint64_t db = simulate(b, 7, hour);
    assert_sim_ok(a);
    assert_true(da == db);
    assert_true(a->steps == b->steps && a->acquisitions == b->acquisitions);
    uint64_t dc = simulate(b, 8, hour);
    assert_true(dc != da);
    free(a);
    free(b);
}

/*
 * Under valgrind (KLE_UNDER_VALGRIND, set by the valgrind build) only the
 * replay and six virtual hours of the poll-mode run are made: the rest of
 * the day, the watch-mode runs and the runs across the valid timings repeat
 * those code paths for memory errors (test_follow covers watch mode's own
 * code under valgrind), and the simulation alone set the length of the
 * valgrind pass. The ASan+UBSan build runs them all in full.
 */
static int under_valgrind(void)
{
    const char *v = getenv("KLE_UNDER_VALGRIND");
    return v && *v == '1';
}

static void test_simulation__watch_mode_24_hours_of_faults(void **state)
{
    if (under_valgrind())
        skip();
    sim *s = calloc(1, sizeof(*s));
    int64_t day = 24 * 3600 * SEC;
    s->watch = 1;
    simulate(s, 20261202, day);
    report("simulation, watch mode", s, day);
    assert_sim_ok(s);
    assert_true(s->quiet_phases >= 60);
    assert_true(s->acquisitions > 100);
    assert_true(s->watch_faults > 1000);
    free(s);
}

static void test_simulation__watch_mode_short_timings(void **state)
{
    if (under_valgrind())
        skip();
    static const int64_t t[][3] = {{4 * SEC, 3 * SEC, 1 * SEC}, {4 * SEC, 3 * SEC, 2499 * MS}};
    sim *s = calloc(1, sizeof(*s));
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t hours = 3 * 3600 * SEC;
        s->watch = 1;
        simulate_timed(s, 2000 + i, hours, t[i][0], t[i][1], t[i][2]);
        report("timings, watch mode", s, hours);
        assert_sim_ok(s);
    }
    free(s);
}

static void test_simulation__five_electors_24_hours_of_faults(void **state)
{
    /* Under valgrind, a quarter of it: the same paths, for memory errors. */
    int64_t hours = under_valgrind() ? 6 : 24;
    sim *s = calloc(1, sizeof(*s));
    int64_t day = hours * 3600 * SEC;
    simulate(s, 20261121, day);
    report("simulation", s, day);
    assert_sim_ok(s);
    assert_true(s->quiet_phases >= 60 * hours / 24);
    assert_true(s->acquisitions > (uint64_t)(100 * hours / 24));
    free(s);
}

/*
 * The retry period across the whole valid range, up to renew_deadline / 1.2,
 * at kube-controller-manager's and at short timings.
 */
static void test_simulation__timings_across_the_valid_range(void **state)
{
    if (under_valgrind())
        skip();
    static const int64_t t[][3] = {
        {15 * SEC, 10 * SEC, 5 * SEC},   {15 * SEC, 10 * SEC, 8 * SEC},
        {15 * SEC, 10 * SEC, 8333 * MS}, {4 * SEC, 3 * SEC, 1 * SEC},
        {4 * SEC, 3 * SEC, 2 * SEC},     {4 * SEC, 3 * SEC, 2499 * MS},
        {2 * SEC, 1200 * MS, 999 * MS},
    };
    sim *s = calloc(1, sizeof(*s));
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t hours = 3 * 3600 * SEC;
        simulate_timed(s, 1000 + i, hours, t[i][0], t[i][1], t[i][2]);
        report("timings", s, hours);
        assert_sim_ok(s);
        assert_true(s->stalls > 0);
    }
    free(s);
}

int main(void)
{
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simulation__same_seed_replays_exactly),
        cmocka_unit_test(test_simulation__five_electors_24_hours_of_faults),
        cmocka_unit_test(test_simulation__timings_across_the_valid_range),
        cmocka_unit_test(test_simulation__watch_mode_24_hours_of_faults),
        cmocka_unit_test(test_simulation__watch_mode_short_timings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
