/*
 * Test support: a synchronous driver for the election's state machine
 * (src/election/sm.h), for unit tests of its decisions one try at a time.
 *
 * It holds one machine and one fake lock on a fake store, on a fake clock
 * in manual mode, so every time is exact and nothing runs unless the test
 * says so. It does what the elector's runtime does, on the test's thread:
 * it takes the machine's actions in order, carries out each lock call at
 * once on the fake lock (with the call's timeout: the lock's scripted
 * failures, delays and stalls apply, and a call that takes time moves the
 * clock by that much), and feeds the answer back with the time the call
 * was sent. While a call takes time the machine is woken at its own wake
 * times, as the runtime's timer would wake it, so a term still ends at its
 * deadline while a call is out. Terms, deadlines, observed leaders and
 * the end of a run are recorded for assertions.
 *
 *     smd *d = smd_new(NULL);           // "me" on "default/test": 15 s, 10 s, 2 s
 *     assert_true(smd_try(d));          // start: the first try wins an empty lock
 *     smd_advance(d, KLE_SEC(2));       // the clock moves; nothing runs
 *     assert_true(smd_try(d));          // the renewal that is due runs now
 *     smd_stop(d);                      // the term ends (d->ended)...
 *     smd_work_done(d);                 // ...the work returns: release, DONE
 *     smd_free(d);
 *
 * Failures of the driver itself (a try that is not due, an action it does
 * not carry out) fail the running cmocka test. Include after <cmocka.h>'s
 * prerequisites like any cmocka test file.
 */
#ifndef KLE_TESTS_SUPPORT_SM_DRIVER_H
#define KLE_TESTS_SUPPORT_SM_DRIVER_H

#include "election/sm.h"
#include "kle/sys/clock.h"
#include "kle/testing.h"

#include <stddef.h>
#include <stdint.h>

#define SMD_MAX_LEADERS 16

/* How the machine is configured; SMD_OPTS_INIT: the elector's defaults. */
typedef struct smd_opts {
    const char *identity;    /* The fake lock's identity ("me"). */
    const char *description; /* The lock's describe ("default/test"). */
    int64_t lease_duration, renew_deadline, retry_period;
    int release_on_cancel;
    int coordinated;
    uint64_t seed; /* Of the retry jitter. */
    int mutations; /* KLE_SM_MUT_* bits: rules switched off (the mutation check only). */
} smd_opts;

#define SMD_OPTS_INIT                                                                              \
    {                                                                                              \
        "me", "default/test", KLE_SEC(15), KLE_SEC(10), KLE_SEC(2), 0, 0, 7, 0                     \
    }

typedef struct smd {
    kle_clock *clock; /* Manual fake clock: time moves only when the test (or a call) moves it. */
    kle_fake_store *store;
    kle_lock *lock; /* The machine's fake lock on store (owned by the driver). */
    kle_sm *sm;

    /* What the machine did. */
    int started, extended, ended; /* TERM_START, TERM_EXTEND, TERM_END seen. */
    int token;                    /* Of the last TERM_START. */
    int64_t deadline;             /* Of the last TERM_START or TERM_EXTEND. */
    int64_t started_at, ended_at; /* When the last TERM_START, TERM_END came. */
    int done, rc;                 /* DONE seen, and its rc. */
    int n_leaders;                /* NEW_LEADER seen (the first SMD_MAX_LEADERS kept). */
    char leaders[SMD_MAX_LEADERS][64];
    size_t leader_len[SMD_MAX_LEADERS];

    /* The driver's own. */
    struct smd_clock {
        kle_clock base;
        kle_clock *fake;
    } call_clock; /* The store's clock: a call's wait moves the fake clock. */
    kle_sm_config config;
    int64_t input_now; /* The time of the input being handled. */
} smd;

/* A driver with @p opts (NULL: SMD_OPTS_INIT); fails the test if it cannot be made. */
smd *smd_new(const smd_opts *opts);
void smd_free(smd *d);

/*
 * Runs one try now: starts the run when none is in progress (a run tries
 * at once), else wakes the machine at the current time, and carries out
 * its calls until none is in flight. Returns 1 when the try won or renewed
 * the lease, 0 when it failed. Fails the test when the machine has no try
 * due now (it tries on its own schedule: each retry period plus jitter
 * while campaigning, a round one retry period after the last write while
 * leading).
 */
int smd_try(smd *d);
/* Wakes the machine at the current time and carries out what is due. */
void smd_tick(smd *d);
/* Moves the clock by @p ns; nothing runs (what falls due runs at the next input). */
void smd_advance(smd *d, int64_t ns);
/* Lets @p ns pass with the runtime awake: the machine is woken at each of its wake times. */
void smd_run_for(smd *d, int64_t ns);
/* kle_elector_stop: the machine is told to stop. */
void smd_stop(smd *d);
/* The leader's work (on_started_leading) returned. */
void smd_work_done(smd *d);

/* The fake clock's monotonic and wall time. */
int64_t smd_now(smd *d);
int64_t smd_wall(smd *d);
/* 1 while the machine says a term is live now. */
int smd_leading(smd *d);
/* The machine's counters. */
kle_sm_stats smd_stats(smd *d);

#endif
