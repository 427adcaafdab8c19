/* Test support: a synchronous driver for the election's state machine (sm_driver.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/testing.h"
#include "support/sm_driver.h"

/* Inputs at one instant before the driver calls the machine stuck. */
#define MAX_STEPS_AT_ONCE 10000

/*
 * The store's clock: the fake clock's time, and a wait that moves the fake
 * clock to its deadline. Only the test's thread runs, so a lock call that
 * takes time (a scripted delay or stall) is time passing.
 */
static int64_t call_clock_monotonic(kle_clock *self)
{
    return kle_clock_monotonic_ns(((struct smd_clock *)self)->fake);
}

static int64_t call_clock_wall(kle_clock *self)
{
    return kle_clock_wall_ns(((struct smd_clock *)self)->fake);
}

static int call_clock_wait(kle_clock *self, kle_event *event, int64_t deadline)
{
    kle_clock *fake = ((struct smd_clock *)self)->fake;
    if (event && kle_event_is_set(event))
        return 0;
    int64_t now = kle_clock_monotonic_ns(fake);
    if (deadline <= now)
        return KLE_ETIMEOUT;
    if (deadline == INT64_MAX)
        fail_msg("sm_driver: a lock call waits without a deadline on the test's thread");
    kle_fake_clock_advance(fake, deadline - now);
    return KLE_ETIMEOUT;
}

smd *smd_new(const smd_opts *opts)
{
    static const smd_opts defaults = SMD_OPTS_INIT;
    if (!opts)
        opts = &defaults;
    smd *d = calloc(1, sizeof(*d));
    assert_non_null(d);
    assert_int_equal(kle_fake_clock_new(&d->clock, NULL), 0);
    d->call_clock.base.version = KLE_CLOCK_VERSION;
    d->call_clock.base.monotonic_ns = call_clock_monotonic;
    d->call_clock.base.wall_ns = call_clock_wall;
    d->call_clock.base.wait = call_clock_wait;
    d->call_clock.fake = d->clock;
    assert_int_equal(kle_fake_store_new(&d->store, &d->call_clock.base), 0);
    assert_int_equal(kle_fake_lock_new(&d->lock, d->store, opts->identity, opts->description), 0);
    kle_sm_config *c = &d->config;
    c->identity = kle_lock_identity(d->lock);
    c->name = kle_lock_describe(d->lock);
    c->lease_duration = opts->lease_duration;
    c->renew_deadline = opts->renew_deadline;
    c->retry_period = opts->retry_period;
    /* As the elector: half the renew deadline, at least a second. */
    c->call_timeout =
        opts->renew_deadline / 2 > KLE_NS_PER_SEC ? opts->renew_deadline / 2 : KLE_NS_PER_SEC;
    c->record_lease_seconds = (int)(opts->lease_duration / KLE_NS_PER_SEC);
    c->release_on_cancel = opts->release_on_cancel;
    c->coordinated = opts->coordinated;
    c->watch = 0;
    c->seed = opts->seed ? opts->seed : 1;
    c->mutations = opts->mutations;
    d->sm = kle_sm_new(c);
    assert_non_null(d->sm);
    return d;
}

void smd_free(smd *d)
{
    if (!d)
        return;
    kle_sm_free(d->sm);
    kle_lock_free(d->lock);
    kle_fake_store_free(d->store);
    kle_clock_free(d->clock);
    free(d);
}

int64_t smd_now(smd *d)
{
    return kle_clock_monotonic_ns(d->clock);
}

int64_t smd_wall(smd *d)
{
    return kle_clock_wall_ns(d->clock);
}

int smd_leading(smd *d)
{
    return kle_sm_leading(d->sm, smd_now(d));
}

kle_sm_stats smd_stats(smd *d)
{
    kle_sm_stats s;
    kle_sm_get_stats(d->sm, &s);
    return s;
}

/* The wall time at monotonic time @p t, which may be behind the clock's. */
static int64_t wall_at(smd *d, int64_t t)
{
    return smd_wall(d) - (smd_now(d) - t);
}

static void pump(smd *d);

/*
 * Carries out @p call on the fake lock, sent now. While it takes time, the
 * machine is woken at each of its wake times that the call outlasts (a
 * term's deadline); then the answer is fed back at the time it came.
 */
static void carry_out(smd *d, const kle_sm_call *call)
{
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    ctx.timeout_ns = call->timeout;
    int64_t sent = smd_now(d);
    int rc;
    switch (call->kind) {
    case KLE_SM_GET:
        rc = kle_lock_get(&got, d->lock, &ctx);
        break;
    case KLE_SM_CREATE:
        rc = kle_lock_create(d->lock, &call->record, &ctx);
        break;
    case KLE_SM_UPDATE:
        rc = kle_lock_update(d->lock, &call->record, &ctx);
        break;
    case KLE_SM_EVENT:
        rc = kle_lock_record_event(d->lock, call->message, &ctx);
        break;
    default:
        fail_msg("sm_driver: unknown call kind %d", (int)call->kind);
        return;
    }
    /* The answer's error message, which the machine may log, survives the ticks. */
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", rc < 0 ? kle_error_last()->message : "");
    int64_t answered = smd_now(d);
    for (int steps = 0;; steps++) {
        int64_t at = kle_sm_wake_at(d->sm);
        if (at >= answered)
            break;
        if (steps == MAX_STEPS_AT_ONCE)
            fail_msg("sm_driver: the machine wants waking at %lld again and again", (long long)at);
        d->input_now = at > sent ? at : sent;
        kle_sm_tick(d->sm, d->input_now, wall_at(d, d->input_now));
        pump(d);
    }
    if (rc < 0)
        kle_error_set(rc, "%s", msg);
    d->input_now = answered;
    kle_sm_answer(d->sm, call->id, rc, sent, rc == 0 ? &got : NULL, answered, smd_wall(d));
    kle_lock_result_dispose(&got);
}

static void record_leader(smd *d, const kle_sm_action *a)
{
    if (d->n_leaders < SMD_MAX_LEADERS) {
        size_t len =
            a->holder_len < sizeof(d->leaders[0]) - 1 ? a->holder_len : sizeof(d->leaders[0]) - 1;
        memcpy(d->leaders[d->n_leaders], a->holder ? a->holder : "", len);
        d->leaders[d->n_leaders][len] = '\0';
        d->leader_len[d->n_leaders] = a->holder_len;
    }
    d->n_leaders++;
}

/* Carries out every action the machine has queued, and what they lead to. */
static void pump(smd *d)
{
    kle_sm_action a;
    while (kle_sm_next(d->sm, &a)) {
        switch (a.kind) {
        case KLE_SM_CALL:
            carry_out(d, &a.call);
            break;
        case KLE_SM_TERM_START:
            d->started++;
            d->token = a.token;
            d->deadline = a.deadline;
            d->started_at = d->input_now;
            break;
        case KLE_SM_TERM_EXTEND:
            d->extended++;
            d->deadline = a.deadline;
            break;
        case KLE_SM_TERM_END:
            d->ended++;
            d->ended_at = d->input_now;
            break;
        case KLE_SM_NEW_LEADER:
            record_leader(d, &a);
            break;
        case KLE_SM_DONE:
            d->done++;
            d->rc = a.rc;
            break;
        default:
            fail_msg("sm_driver: action %d is not carried out (the driver does not watch)",
                     (int)a.kind);
        }
    }
}

int smd_try(smd *d)
{
    kle_sm_stats before = smd_stats(d);
    d->input_now = smd_now(d);
    if (!kle_sm_running(d->sm))
        kle_sm_start(d->sm, d->input_now, smd_wall(d));
    else
        kle_sm_tick(d->sm, d->input_now, smd_wall(d));
    pump(d);
    kle_sm_stats after = smd_stats(d);
    if (after.tries == before.tries)
        fail_msg("sm_driver: no try is due at %lld (the machine, %s, next wakes at %lld)",
                 (long long)d->input_now, kle_sm_phase_name(d->sm),
                 (long long)kle_sm_wake_at(d->sm));
    return after.failed_tries == before.failed_tries;
}

void smd_tick(smd *d)
{
    d->input_now = smd_now(d);
    kle_sm_tick(d->sm, d->input_now, smd_wall(d));
    pump(d);
}

void smd_advance(smd *d, int64_t ns)
{
    assert_int_equal(kle_fake_clock_advance(d->clock, ns), 0);
}

void smd_run_for(smd *d, int64_t ns)
{
    int64_t end = smd_now(d) + ns;
    int steps = 0;
    for (;;) {
        int64_t at = kle_sm_wake_at(d->sm);
        if (at > end)
            break;
        if (at > smd_now(d)) {
            smd_advance(d, at - smd_now(d));
            steps = 0;
        } else if (++steps == MAX_STEPS_AT_ONCE) {
            fail_msg("sm_driver: the machine wants waking at %lld again and again", (long long)at);
        }
        smd_tick(d);
    }
    smd_advance(d, end - smd_now(d));
    smd_tick(d);
}

void smd_stop(smd *d)
{
    d->input_now = smd_now(d);
    kle_sm_stop(d->sm, d->input_now, smd_wall(d));
    pump(d);
}

void smd_work_done(smd *d)
{
    d->input_now = smd_now(d);
    kle_sm_work_done(d->sm, d->input_now, smd_wall(d));
    pump(d);
}
