/*
 * The elector: client-go's LeaderElector (tools/leaderelection) in C.
 *
 * try_acquire_or_renew() is client-go's tryAcquireOrRenew; acquire(),
 * renew() and release() are its loops. All expiry and deadline decisions use
 * the clock's monotonic time; the record's own timestamps are never trusted.
 *
 * Leadership bound. After a successful write sent at S this elector believes
 * it leads until
 *     lead_deadline = S + renew_deadline
 * Renewal rounds run as client-go's (one retry period after the last
 * success, retrying every retry period), but leadership ends renew_deadline
 * after the last write that succeeded was sent, not after the round began.
 * Every other candidate waits the lease duration from the moment it saw
 * that write (after S), and renew_deadline < lease_duration, so the two can
 * never overlap, and the leader's work has lease_duration - renew_deadline
 * to wind down before anyone else may lead. Every lock call is bounded by
 * the time left before lead_deadline, so an in-flight renewal cannot extend
 * leadership.
 */
#include "kle/elector.h"
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "core/elector_internal.h"
#include "core/follow.h"
#include "core/log.h"

#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define JITTER_FACTOR 1.2

/* The longest lease a record can carry: leaseDurationSeconds is an int32. */
#define MAX_LEASE_NS (INT64_C(2147483647) * KLE_NS_PER_SEC)

enum renew_outcome { RENEW_STOPPED, RENEW_LOST, RENEW_TAKEN };

static int lease_valid(kle_elector *e, int64_t now)
{
    return kle_elector__lease_valid(e, now);
}

static int observed_is_me(kle_elector *e)
{
    return kle_elector__observed_is_me(e);
}

static void join_after(kle_elector *e, atomic_int *done, pthread_t thread)
{
    kle_elector__join(e, done, thread);
}

static void report_transition(kle_elector *e)
{
    kle_elector__report_transition(e);
}

static int64_t now_ns(kle_elector *e)
{
    return kle_clock_monotonic_ns(e->clock);
}

static uint64_t next_random(kle_elector *e)
{
    /* splitmix64 */
    uint64_t z = (e->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A uniform double in [0, 1). */
static double random_unit(kle_elector *e)
{
    return (double)(next_random(e) >> 11) * (1.0 / 9007199254740992.0);
}

static int validate(const kle_elector_config *c)
{
    long long ld = (long long)c->lease_duration_ns, rd = (long long)c->renew_deadline_ns,
              rp = (long long)c->retry_period_ns;
    const char *p = "invalid elector config: ";

    if (c->lease_duration_ns <= c->renew_deadline_ns)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration must be greater than renewDeadline "
                             "(lease_duration_ns=%lld, renew_deadline_ns=%lld)",
                             p, ld, rd);
    if ((double)c->renew_deadline_ns <= JITTER_FACTOR * (double)c->retry_period_ns)
        return kle_error_set(KLE_EINVAL,
                             "%srenewDeadline must be greater than retryPeriod*JitterFactor "
                             "(renew_deadline_ns=%lld, retry_period_ns=%lld, JitterFactor=1.2)",
                             p, rd, rp);
    if (c->lease_duration_ns < 1)
        return kle_error_set(KLE_EINVAL, "%sleaseDuration must be greater than zero", p);
    if (c->renew_deadline_ns < 1)
        return kle_error_set(KLE_EINVAL, "%srenewDeadline must be greater than zero", p);
    if (c->retry_period_ns < 1)
        return kle_error_set(KLE_EINVAL, "%sretryPeriod must be greater than zero", p);
    if (c->lease_duration_ns < KLE_NS_PER_SEC)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration must be at least 1s: the record carries whole "
                             "seconds (lease_duration_ns=%lld)",
                             p, ld);
    if (c->lease_duration_ns > MAX_LEASE_NS)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration does not fit the record's leaseDurationSeconds "
                             "(lease_duration_ns=%lld, at most %lld: 2147483647 s)",
                             p, ld, (long long)MAX_LEASE_NS);
    if (c->lease_duration_ns / KLE_NS_PER_SEC * KLE_NS_PER_SEC <= c->renew_deadline_ns)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration as the record carries it, in whole seconds (%llds), "
                             "must be greater than renewDeadline (lease_duration_ns=%lld, "
                             "renew_deadline_ns=%lld)",
                             p, ld / KLE_NS_PER_SEC, ld, rd);
    if (c->call_timeout_ns < 0 || c->call_timeout_ns > MAX_LEASE_NS)
        return kle_error_set(KLE_EINVAL,
                             "%scall_timeout_ns must be between 0 and %lld (call_timeout_ns=%lld)",
                             p, (long long)MAX_LEASE_NS, (long long)c->call_timeout_ns);
    if (!c->callbacks.on_started_leading)
        return kle_error_set(KLE_EINVAL, "%sOnStartedLeading callback must not be nil", p);
    if (!c->callbacks.on_stopped_leading)
        return kle_error_set(KLE_EINVAL, "%sOnStoppedLeading callback must not be nil", p);
    if (!c->lock)
        return kle_error_set(KLE_EINVAL, "%sLock must not be nil", p);
    if (kle_lock_validate(c->lock) < 0)
        return kle_error_prefix("%s", p);
    if (kle_lock_identity(c->lock)[0] == '\0')
        return kle_error_set(KLE_EINVAL, "%sLock identity is empty", p);
    if (kle_identity_check(kle_lock_identity(c->lock)) < 0)
        return kle_error_prefix("%sLock identity: ", p);
    if (c->version >= 2 && c->follow != KLE_FOLLOW_WATCH && c->follow != KLE_FOLLOW_POLL)
        return kle_error_set(
            KLE_EINVAL, "%sfollow must be KLE_FOLLOW_WATCH or KLE_FOLLOW_POLL (%d)", p, c->follow);
    if (c->clock && (c->clock->version < 1 || c->clock->version > KLE_CLOCK_VERSION ||
                     !c->clock->monotonic_ns || !c->clock->wall_ns || !c->clock->wait))
        return kle_error_set(KLE_EVERSION, "%sclock is incomplete or of an unsupported version", p);
    return 0;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed) || seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return seed ? seed : 1;
}

static kle_leading *handle_new(kle_elector *e);
static int impostor(kle_elector *e);

int kle_elector_new(kle_elector **out, const kle_elector_config *config)
{
    if (!out || !config)
        return kle_error_set(KLE_EINVAL, "kle_elector_new: out and config are required");
    *out = NULL;
    if (config->version < 1 || config->version > KLE_ELECTOR_CONFIG_VERSION)
        return kle_error_set(KLE_EVERSION, "kle_elector_new: config version %u is not supported",
                             config->version);
    int rc = validate(config);
    if (rc < 0)
        return rc;
    if (!config->clock &&
        (config->retry_period_ns < KLE_MS(100) || config->renew_deadline_ns < KLE_SEC(1)))
        KLE_LOG_W("elector for %s: retry period %lld ms, renew deadline %lld ms: below 100 ms and "
                  "1 s a real API server is loaded with requests and terms are lost to one slow "
                  "answer (kle run refuses them)",
                  kle_lock_describe(config->lock),
                  (long long)(config->retry_period_ns / KLE_NS_PER_MS),
                  (long long)(config->renew_deadline_ns / KLE_NS_PER_MS));

    kle_elector *e = calloc(1, sizeof(*e));
    if (!e)
        return kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
    e->identity = strdup(kle_lock_identity(config->lock));
    e->name = strdup(kle_lock_describe(config->lock));
    e->metrics_name = strdup(config->name ? config->name : kle_lock_describe(config->lock));
    e->reported_leader = strdup("");
    if (!e->identity || !e->name || !e->metrics_name || !e->reported_leader)
        goto nomem;
    if (kle_event_new(&e->cancel) < 0 || kle_event_new(&e->wake) < 0) {
        rc = kle_error_last()->code;
        goto fail;
    }
    e->lock = config->lock;
    e->lease_duration = config->lease_duration_ns;
    e->renew_deadline = config->renew_deadline_ns;
    e->retry_period = config->retry_period_ns;
    e->call_timeout = config->call_timeout_ns                  ? config->call_timeout_ns
                      : e->renew_deadline / 2 > KLE_NS_PER_SEC ? e->renew_deadline / 2
                                                               : KLE_NS_PER_SEC;
    e->record_lease_seconds = (int)(config->lease_duration_ns / KLE_NS_PER_SEC);
    e->release_on_cancel = config->release_on_cancel != 0;
    e->coordinated = config->version >= 2 && config->coordinated != 0;
    e->cb = config->callbacks;
    e->clock = config->clock ? config->clock : kle_clock_real();
    e->rng = config->jitter_seed ? config->jitter_seed : random_seed();
    e->follow_mode = config->version >= 2 ? config->follow : KLE_FOLLOW_WATCH;
    pthread_mutex_init(&e->mu, NULL);
    if (kle_follow__new(e) < 0) {
        rc = kle_error_last()->code;
        pthread_mutex_destroy(&e->mu);
        goto fail;
    }
    /* The first term's handle now, and each next one when a term ends, so
     * that nothing needs a new descriptor after the lease is won. */
    if (!(e->next_handle = handle_new(e))) {
        pthread_mutex_destroy(&e->mu);
        rc = kle_error_set(KLE_ESYSTEM, "kle_elector_new: cannot make a leading handle");
        goto fail;
    }
    *out = e;
    return 0;
nomem:
    rc = kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
fail:
    kle_event_free(e->cancel);
    kle_event_free(e->wake);
    free(e->identity);
    free(e->name);
    free(e->metrics_name);
    free(e->reported_leader);
    free(e);
    return rc;
}

/* Time a lock call may take: the call limit, cut to what is left before deadline. */
static int64_t call_budget(kle_elector *e, int64_t deadline)
{
    int64_t budget = e->call_timeout;
    if (deadline != INT64_MAX) {
        int64_t left = deadline - now_ns(e);
        if (left < budget)
            budget = left;
    }
    return budget;
}

/*
 * Notes the outcome of a lock call for kle_elector_stats.last_call_error
 * (an answer such as NotFound or Conflict counts as answered); returns rc.
 */
static int note_call(kle_elector *e, int rc)
{
    int answered = rc == 0 || rc == KLE_ENOTFOUND || rc == KLE_ECONFLICT || rc == KLE_EEXISTS;
    pthread_mutex_lock(&e->mu);
    e->last_call_error = answered ? 0 : rc;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

/* The loop made progress: a round or a step between terms completed. */
static void mark_progress(kle_elector *e)
{
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    e->last_progress = now;
    pthread_mutex_unlock(&e->mu);
}

/* client-go's isLeaseValid; mu held. */
/* Records our own successful write, sent at `sent`. */
static void observe_own_write(kle_elector *e, kle_record *rec, int64_t sent, int64_t dated)
{
    int64_t returned = now_ns(e);
    pthread_mutex_lock(&e->mu);
    kle_record_dispose(&e->observed);
    e->observed = *rec; /* Takes the strings. */
    kle_record_init(rec, KLE_RECORD_VERSION);
    e->has_observed = 1;
    /* The raw record and resourceVersion seen before belong to another
     * record: forget them, so that the next read (or watch event) compares
     * with nothing and replaces this record, never keeps it beside someone
     * else's bytes (a late answer to this write can come after the watch
     * showed a newer foreign record). */
    free(e->observed_raw);
    e->observed_raw = NULL;
    e->observed_raw_len = 0;
    free(e->observed_rv);
    e->observed_rv = NULL;
    /* The send time, not the answer's (and of the first write of the same
     * record): our view of our own lease stays conservative. */
    e->observed_time = dated;
    e->raw_changed_time = dated;
    e->observed_own = kle_record_holder_is(&e->observed, e->identity);
    e->foreign_self = 0;
    if (e->observed.leader_transitions > e->max_transitions || !e->seen_transitions) {
        e->max_transitions = e->observed.leader_transitions;
        e->seen_transitions = 1;
    }
    e->last_sent = sent;
    e->last_dated = dated;
    e->last_return = returned;
    e->own_seq = e->write_seq;
    e->own_renew_ns = e->observed.renew_time_ns;
    e->own_transitions = e->observed.leader_transitions;
    pthread_mutex_unlock(&e->mu);
}

/*
 * Notes a write about to be sent, so that the watch can recognise it, and
 * returns the send time its success extends the term from: now, or the
 * send of an earlier write of the same record, which may have landed with
 * the same bytes (a lost answer): another replica may have dated the lease
 * from seeing those bytes the first time.
 */
static int64_t note_writing(kle_elector *e, const kle_record *rec, int64_t now)
{
    pthread_mutex_lock(&e->mu);
    e->write_seq++;
    e->writing_renew_ns = rec->renew_time_ns;
    e->writing_transitions = rec->leader_transitions;
    int64_t sent = kle_elector__note_own_write(e, rec, now);
    pthread_mutex_unlock(&e->mu);
    return sent;
}

/*
 * A leader whose read shows the lock held by another (or released by
 * someone else) ends its term at once: that write came after its own. mu
 * held; returns 1 when it did.
 */
static int step_down_on_read(kle_elector *e)
{
    if (!e->leading || e->expired || observed_is_me(e))
        return 0;
    e->expired = 1;
    atomic_store(&e->stepped_down, 1);
    if (e->handle)
        kle_event_set(e->handle->ended);
    kle_event_set(e->wake);
    return 1;
}

static int new_record(kle_elector *e, kle_record *rec, int64_t wall)
{
    kle_record_init(rec, KLE_RECORD_VERSION);
    if (kle_record_set_string(&rec->holder_identity, e->identity) < 0)
        return KLE_ENOMEM;
    rec->lease_duration_seconds = e->record_lease_seconds;
    rec->acquire_time_ns = wall;
    rec->renew_time_ns = wall;
    return 0;
}

/*
 * One attempt to acquire or renew; returns 1 on success. Lock calls are
 * bounded by `deadline` (INT64_MAX: only by the call limit) and by `cancel`.
 */
static int try_acquire_or_renew(kle_elector *e, int64_t deadline, kle_event *cancel)
{
    int64_t now = now_ns(e);
    kle_record rec;
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    int rc;

    ctx.cancel = cancel;
    if (new_record(e, &rec, kle_clock_wall_ns(e->clock)) < 0)
        return 0;

    /* 1. Fast path: the leader updates optimistically over what it last saw. */
    pthread_mutex_lock(&e->mu);
    int fast = observed_is_me(e) && lease_valid(e, now);
    if (fast) {
        rec.acquire_time_ns = e->observed.acquire_time_ns;
        rec.leader_transitions = e->observed.leader_transitions;
        if (kle_elector__carry_foreign(&rec, &e->observed, 1) < 0)
            fast = 0;
    }
    e->stats.tries++;
    pthread_mutex_unlock(&e->mu);
    if (fast) {
        ctx.timeout_ns = call_budget(e, deadline);
        int64_t sent = now_ns(e), dated = note_writing(e, &rec, sent);
        rc = note_call(e, kle_lock_update(e->lock, &rec, &ctx));
        if (rc == 0) {
            observe_own_write(e, &rec, sent, dated);
            return 1;
        }
        KLE_LOG_E("Failed to update lock %s optimistically: %s, falling back to slow path", e->name,
                  kle_error_last()->message);
        rec.leader_transitions = 0;
    }

    /* 2. Obtain or create the record. */
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    ctx.timeout_ns = call_budget(e, deadline);
    rc = note_call(e, kle_lock_get(&got, e->lock, &ctx));
    if (rc < 0) {
        if (rc != KLE_ENOTFOUND) {
            KLE_LOG_E_LIMITED("error retrieving resource lock %s: %s", e->name,
                              kle_error_last()->message);
            goto failed;
        }
        if (e->coordinated) {
            KLE_LOG_V(4, "lease lock not found: %s (the coordinated election controller makes it)",
                      e->name);
            goto failed;
        }
        /* A deletion does not end a live lease this elector saw (a NotFound
         * in either follow mode, docs/architecture.md): wait it out first.
         * A re-created lock goes on from the highest token seen. */
        pthread_mutex_lock(&e->mu);
        int live = e->has_observed && !kle_elector__released(&e->observed) && !observed_is_me(e) &&
                   lease_valid(e, now_ns(e));
        rec.leader_transitions =
            e->seen_transitions ? kle_elector__next_token(e->max_transitions) : 0;
        pthread_mutex_unlock(&e->mu);
        if (live) {
            KLE_LOG_V(4, "lock %s is deleted, but the lease last seen has not yet expired",
                      e->name);
            goto failed;
        }
        rec.renew_time_ns = rec.acquire_time_ns = kle_clock_wall_ns(e->clock);
        ctx.timeout_ns = call_budget(e, deadline);
        int64_t sent = now_ns(e), dated = note_writing(e, &rec, sent);
        rc = note_call(e, kle_lock_create(e->lock, &rec, &ctx));
        if (rc < 0) {
            if (rc == KLE_EEXISTS) /* another replica created it first: a normal race */
                KLE_LOG_V(2, "lock %s was created by another replica first: %s", e->name,
                          kle_error_last()->message);
            else
                KLE_LOG_E("error initially creating leader election record %s: %s", e->name,
                          kle_error_last()->message);
            goto failed;
        }
        observe_own_write(e, &rec, sent, dated);
        return 1;
    }

    /* 3. Record obtained: note when it changed, on our clock. A new
     * resourceVersion with the same record (a label touched by someone, or
     * a renewal within the record's time precision) counts as a renewal
     * for at most RECORD_PRECISION after the record last changed; see
     * docs/architecture.md. */
    int old_transitions = got.record.leader_transitions;
    int64_t old_acquire = got.record.acquire_time_ns;
    pthread_mutex_lock(&e->mu);
    int changed = 0;
    kle_elector__observe(e, &got, now_ns(e), &changed);
    kle_follow__got(e, changed);
    kle_lock_result_dispose(&got);
    const char *holder = kle_record_holder(&e->observed);
    if (e->impostor) {
        pthread_mutex_unlock(&e->mu);
        goto failed;
    }
    if (step_down_on_read(e)) {
        KLE_LOG_I("lock %s is held by \"%s\" now, not by this leader: stopping leading", e->name,
                  holder);
        pthread_mutex_unlock(&e->mu);
        goto failed;
    }
    if (!kle_elector__released(&e->observed) && lease_valid(e, now) && !observed_is_me(e)) {
        KLE_LOG_V(4, "lock is held by %s and has not yet expired", holder);
        pthread_mutex_unlock(&e->mu);
        goto failed;
    }
    if (!kle_elector__may_take(&e->observed, e->identity, observed_is_me(e), lease_valid(e, now),
                               e->coordinated)) {
        KLE_LOG_V(4, "lock %s is not ours to take (%s)", e->name,
                  e->coordinated ? "coordinated: the server picks the holder"
                                 : "reserved for its preferred holder until it expires");
        pthread_mutex_unlock(&e->mu);
        goto failed;
    }
    if (kle_elector__end_of_term(&e->observed, e->identity) && !e->handover) {
        KLE_LOG_I("lock %s prefers holder %.*s: ending this term to hand over", e->name,
                  (int)kle_record_string_len(e->observed.preferred_holder,
                                             e->observed.preferred_holder_len),
                  e->observed.preferred_holder);
        e->handover = 1;
    }
    if (kle_elector__carry_foreign(&rec, &e->observed, observed_is_me(e)) < 0) {
        pthread_mutex_unlock(&e->mu);
        goto failed;
    }

    /* 4. Take it over, or renew it the slow way. */
    /* A fresh renewTime for every write: a write after a lost answer must
     * not repeat the bytes that answer left. A new term carries a token
     * above every token seen (saturating at the int32 maximum). */
    rec.renew_time_ns = kle_clock_wall_ns(e->clock);
    rec.acquire_time_ns = rec.renew_time_ns;
    int top = old_transitions > e->max_transitions ? old_transitions : e->max_transitions;
    if (observed_is_me(e) && e->coordinated && !e->leading) {
        /* The server made us the holder without counting a transition: a
         * new term must carry a new fencing token. */
        rec.leader_transitions = kle_elector__next_token(top);
    } else if (observed_is_me(e)) {
        rec.acquire_time_ns = old_acquire;
        rec.leader_transitions = old_transitions;
        e->stats.slowpath_total++;
    } else {
        rec.leader_transitions = kle_elector__next_token(top);
        if (top == 2147483647 && !e->saturation_logged++)
            KLE_LOG_W("lock %s: leaderTransitions is at its maximum (2147483647): the fencing "
                      "token stays there and no longer increases",
                      e->name);
    }
    pthread_mutex_unlock(&e->mu);

    ctx.timeout_ns = call_budget(e, deadline);
    int64_t sent = now_ns(e), dated = note_writing(e, &rec, sent);
    rc = note_call(e, kle_lock_update(e->lock, &rec, &ctx));
    if (rc < 0) {
        KLE_LOG_E("Failed to update lock %s: %s", e->name, kle_error_last()->message);
        goto failed;
    }
    observe_own_write(e, &rec, sent, dated);
    return 1;

failed:
    kle_record_dispose(&rec);
    pthread_mutex_lock(&e->mu);
    e->stats.failed_tries++;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* Calls on_new_leader when the observed holder differs from the last reported one. */
/*
 * Best effort, bounded: an event never delays the election by more than
 * half a retry period (and never more than a call limit or a second).
 */
static void record_event(kle_elector *e, const char *message)
{
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    ctx.timeout_ns = e->call_timeout < KLE_NS_PER_SEC ? e->call_timeout : KLE_NS_PER_SEC;
    if (ctx.timeout_ns > e->retry_period / 2)
        ctx.timeout_ns = e->retry_period / 2;
    if (kle_lock_record_event(e->lock, message, &ctx) < 0)
        KLE_LOG_V(2, "could not record event \"%s\" on %s: %s", message, e->name,
                  kle_error_last()->message);
}

static int stop_requested(kle_elector *e)
{
    return atomic_load(&e->stop_requested) != 0;
}

/*
 * After a successful write: moves the leadership deadline to renew_deadline
 * after that write was sent. Refused (returns 0) when the answer came at or
 * after the deadline it would extend, or the guard has already ended the
 * term: a term that has ended is never revived, even by a write that landed.
 */
static int extend_leadership(kle_elector *e)
{
    pthread_mutex_lock(&e->mu);
    int ok = !e->expired && e->last_return < e->lead_deadline;
    if (ok) {
        e->lead_deadline = e->last_dated + e->renew_deadline;
        e->stats.last_renew_wall_ns = e->own_renew_ns;
        if (e->handle)
            kle_event_set(e->handle->extended);
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

/*
 * Campaigns until acquired (1) or stopped (0). An acquisition whose answer
 * came renew_deadline or more after it was sent does not count: by the
 * leadership bound it was over before it was known. The lease is still
 * ours, so the next try (the fast path) follows at once.
 */
static int acquire(kle_elector *e)
{
    KLE_LOG_I("attempting to acquire leader lease %s...", e->name);
    while (!stop_requested(e)) {
        int ok = try_acquire_or_renew(e, INT64_MAX, e->cancel);
        report_transition(e);
        mark_progress(e);
        if (impostor(e))
            return -1;
        if (ok) {
            pthread_mutex_lock(&e->mu);
            int late = e->last_return >= e->last_dated + e->renew_deadline;
            pthread_mutex_unlock(&e->mu);
            if (!late) {
                KLE_LOG_I("successfully acquired lease %s", e->name);
                return 1;
            }
            KLE_LOG_W("acquired lease %s, but the answer came after the renew deadline: "
                      "trying again before leading",
                      e->name);
            continue;
        }
        KLE_LOG_V(4, "failed to acquire lease %s", e->name);
        int64_t wait =
            e->retry_period + (int64_t)(random_unit(e) * JITTER_FACTOR * (double)e->retry_period);
        if (e->follow)
            kle_follow__wait(e, now_ns(e) + wait);
        else
            kle_clock_wait(e->clock, e->cancel, now_ns(e) + wait);
    }
    return 0;
}

/* Another replica renews the lock under this elector's identity. */
static int impostor(kle_elector *e)
{
    pthread_mutex_lock(&e->mu);
    int i = e->impostor;
    pthread_mutex_unlock(&e->mu);
    return i;
}

static int impostor_error(kle_elector *e)
{
    int rc = kle_error_set(KLE_EIDENTITY,
                           "lock %s is written by another replica under this elector's identity "
                           "\"%s\": identities must be unique; not leading under it",
                           e->name, e->identity);
    KLE_LOG_E("%s", kle_error_last()->message);
    return rc;
}

/* The guard saw the leadership deadline pass. */
static int term_expired(kle_elector *e)
{
    pthread_mutex_lock(&e->mu);
    int over = e->expired;
    pthread_mutex_unlock(&e->mu);
    return over;
}

/* A preferred holder other than us was seen while leading (coordinated.c). */
static int handover_pending(kle_elector *e)
{
    pthread_mutex_lock(&e->mu);
    int h = e->handover;
    pthread_mutex_unlock(&e->mu);
    return h;
}

/*
 * Waits until `until` on the wake event. On the first stop it signals the
 * end of leadership; returns 1 when the elector should end the renew loop
 * (stopped and on_started_leading has returned).
 */
static int renew_wait(kle_elector *e, kle_leading *h, int64_t until)
{
    for (;;) {
        kle_event_reset(e->wake);
        int ending = stop_requested(e) || handover_pending(e);
        if (ending && !kle_event_is_set(h->ended)) {
            KLE_LOG_V(2, "%s while leading %s: waiting for the leader's work to end",
                      stop_requested(e) ? "stop requested" : "end of term", e->name);
            kle_event_set(h->ended);
        }
        if (ending && atomic_load(&e->callback_done))
            return 1;
        if (atomic_load(&e->stepped_down))
            return 2;
        if (now_ns(e) >= until)
            return 0;
        kle_clock_wait(e->clock, e->wake, until);
    }
}

/*
 * Renews until stopped or leadership ends. A round starts one retry period
 * after the last successful write was *sent* (so an answer that takes a
 * while does not push the next write later by as much), and every wait is
 * cut at the leadership deadline. A round retries every retry period until
 * one write succeeds and is answered before the deadline, or the deadline
 * passes. With answers taking L, a leader keeps leading while
 * L < min(renew_deadline - retry_period, renew_deadline / 2).
 */
static enum renew_outcome renew(kle_elector *e, kle_leading *h)
{
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int64_t deadline = e->lead_deadline;
        int64_t next_round = e->last_sent + e->retry_period;
        pthread_mutex_unlock(&e->mu);
        int w = renew_wait(e, h, next_round < deadline ? next_round : deadline);
        if (w)
            return w == 2 ? RENEW_TAKEN : RENEW_STOPPED;
        int ok = 0;
        while (!term_expired(e) && now_ns(e) < deadline && !atomic_load(&e->stepped_down)) {
            ok = try_acquire_or_renew(e, deadline, NULL);
            report_transition(e);
            mark_progress(e);
            if (ok) {
                if (!extend_leadership(e)) {
                    /* Answered at or after the deadline: leadership already ended. */
                    KLE_LOG_I("renewal of %s was answered after the renew deadline", e->name);
                    ok = 0;
                }
                break;
            }
            int64_t next_try = now_ns(e) + e->retry_period;
            w = renew_wait(e, h, next_try < deadline ? next_try : deadline);
            if (w)
                return w == 2 ? RENEW_TAKEN : RENEW_STOPPED;
        }
        if (atomic_load(&e->stepped_down))
            return RENEW_TAKEN;
        if (!ok) {
            KLE_LOG_I("failed to renew lease %s: timed out waiting for the condition", e->name);
            return RENEW_LOST;
        }
        KLE_LOG_V(5, "successfully renewed lease %s", e->name);
    }
}

/*
 * Gives the lease up: Get, and if we still hold it, write the released
 * record. After a loss (@p lost) this is best effort on a lease that may
 * already be another's: a failure is a warning, not an error.
 */
static void release(kle_elector *e, int lost)
{
    kle_log_severity sev = lost ? KLE_LOG_WARNING : KLE_LOG_ERROR;
    const char *why = lost ? " (best effort: leadership was already lost)" : "";
    pthread_mutex_lock(&e->mu);
    int mine = observed_is_me(e);
    pthread_mutex_unlock(&e->mu);
    if (!mine)
        return;
    int64_t deadline = now_ns(e) + e->renew_deadline;
    for (int attempt = 0; attempt < 5 && now_ns(e) < deadline; attempt++) {
        kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
        kle_lock_result got = KLE_LOCK_RESULT_INIT;
        ctx.timeout_ns = call_budget(e, deadline);
        if (note_call(e, kle_lock_get(&got, e->lock, &ctx)) < 0) {
            kle_log__write(sev, 0, __FILE__, __LINE__, "Failed to release lock %s%s: %s", e->name,
                           why, kle_error_last()->message);
            return;
        }
        int held = kle_record_holder_is(&got.record, e->identity);
        int transitions = got.record.leader_transitions;
        kle_lock_result_dispose(&got);
        if (!held) {
            KLE_LOG_V(2, "not releasing %s: no longer the holder", e->name);
            return;
        }
        kle_record rec = KLE_RECORD_INIT;
        int64_t wall = kle_clock_wall_ns(e->clock);
        if (kle_record_set_string(&rec.holder_identity, "") < 0)
            return;
        rec.lease_duration_seconds = 1;
        rec.acquire_time_ns = wall;
        rec.renew_time_ns = wall;
        rec.leader_transitions = transitions;
        ctx.timeout_ns = call_budget(e, deadline);
        int64_t sent = now_ns(e);
        int rc = note_call(e, kle_lock_update(e->lock, &rec, &ctx));
        if (rc == 0) {
            observe_own_write(e, &rec, sent, sent);
            pthread_mutex_lock(&e->mu);
            e->stats.releases++;
            pthread_mutex_unlock(&e->mu);
            KLE_LOG_I("released lease %s", e->name);
            return;
        }
        kle_record_dispose(&rec);
        if (rc != KLE_ECONFLICT) {
            kle_log__write(sev, 0, __FILE__, __LINE__, "Failed to release lock %s%s: %s", e->name,
                           why, kle_error_last()->message);
            return;
        }
        KLE_LOG_V(2, "conflict releasing %s, retrying", e->name);
    }
    kle_log__write(sev, 0, __FILE__, __LINE__,
                   "Failed to release lock %s%s: gave up after repeated conflicts", e->name, why);
}

/*
 * The end of a term that another identity is preferred for, called only
 * after the leader's work has returned: Get, and if we still hold the lock,
 * write the preferred holder as the holder (docs/architecture.md, "Planned
 * handover"), or release when the preference is gone. Conditional, like
 * every write: a Conflict means the lock moved on, so we read again.
 */
static void hand_over(kle_elector *e)
{
    int64_t deadline = now_ns(e) + e->renew_deadline;
    for (int attempt = 0; attempt < 5 && now_ns(e) < deadline; attempt++) {
        kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
        kle_lock_result got = KLE_LOCK_RESULT_INIT;
        kle_record rec;
        ctx.timeout_ns = call_budget(e, deadline);
        if (note_call(e, kle_lock_get(&got, e->lock, &ctx)) < 0) {
            KLE_LOG_E("Failed to hand over lock %s: %s", e->name, kle_error_last()->message);
            return;
        }
        int held = kle_record_holder_is(&got.record, e->identity);
        int rc = held ? kle_elector__handover_record(&rec, &got.record, e->record_lease_seconds,
                                                     kle_clock_wall_ns(e->clock))
                      : 0;
        kle_lock_result_dispose(&got);
        if (!held) {
            KLE_LOG_V(2, "not handing over %s: no longer the holder", e->name);
            return;
        }
        if (rc < 0)
            return;
        ctx.timeout_ns = call_budget(e, deadline);
        int64_t sent = now_ns(e);
        rc = note_call(e, kle_lock_update(e->lock, &rec, &ctx));
        if (rc == 0) {
            KLE_LOG_I("handed lease %s over to \"%s\"", e->name, kle_record_holder(&rec));
            observe_own_write(e, &rec, sent, sent);
            return;
        }
        kle_record_dispose(&rec);
        if (rc != KLE_ECONFLICT) {
            KLE_LOG_E("Failed to hand over lock %s: %s", e->name, kle_error_last()->message);
            return;
        }
    }
    KLE_LOG_E("Failed to hand over lock %s: gave up after repeated conflicts", e->name);
}

/*
 * After the leader's work has ended: hand over when another is preferred,
 * else release when @p release_anyway (@p lost: the term ended by a loss).
 */
static void end_term(kle_elector *e, int release_anyway, int lost)
{
    if (handover_pending(e))
        hand_over(e);
    else if (release_anyway)
        release(e, lost);
}

typedef struct thread_arg {
    kle_elector *e;
    kle_leading *h;
    void *token;
} thread_arg;

static void *callback_main(void *p)
{
    thread_arg a = *(thread_arg *)p;
    free(p);
    kle_elector *e = a.e;
    if (e->clock->thread_attach)
        e->clock->thread_attach(e->clock, a.token);
    e->cb.on_started_leading(a.h, e->cb.data);
    atomic_store(&e->callback_done, 1);
    kle_event_set(e->wake);
    if (e->clock->thread_detach)
        e->clock->thread_detach(e->clock, a.token);
    return NULL;
}

/*
 * The leadership guard: ends the term at lead_deadline, whatever the
 * renewing thread is doing (stuck in a call, a log write, a callback), so
 * that the handle's end is never later than the bound. It leaves when the
 * term ends.
 */
static void *guard_main(void *p)
{
    thread_arg a = *(thread_arg *)p;
    free(p);
    kle_elector *e = a.e;
    if (e->clock->thread_attach)
        e->clock->thread_attach(e->clock, a.token);
    for (;;) {
        pthread_mutex_lock(&e->mu);
        int64_t deadline = e->lead_deadline;
        int expired = now_ns(e) >= deadline;
        if (expired)
            e->expired = 1;
        pthread_mutex_unlock(&e->mu);
        if (expired) {
            kle_event_set(a.h->ended);
            kle_event_set(e->wake);
            break;
        }
        if (kle_clock_wait(e->clock, a.h->ended, deadline) == 0)
            break; /* The term ended another way. */
    }
    atomic_store(&e->guard_done, 1);
    kle_event_set(e->wake);
    if (e->clock->thread_detach)
        e->clock->thread_detach(e->clock, a.token);
    return NULL;
}

static int start_thread(kle_elector *e, kle_leading *h, void *(*fn)(void *), pthread_t *thread)
{
    thread_arg *a = malloc(sizeof(*a));
    if (!a)
        return kle_error_set(KLE_ENOMEM, "elector: out of memory");
    a->e = e;
    a->h = h;
    a->token = e->clock->thread_register ? e->clock->thread_register(e->clock) : NULL;
    int err = pthread_create(thread, NULL, fn, a);
    if (err) {
        if (e->clock->thread_detach)
            e->clock->thread_detach(e->clock, a->token);
        free(a);
        return kle_error_set(KLE_ESYSTEM, "elector: cannot start a thread: %s", strerror(err));
    }
    return 0;
}

/*
 * Joins a thread of ours once it has said it is done: waiting on the clock
 * first lets a deterministic clock run the thread to its end.
 */
/*
 * Leads from a successful acquisition until the end; returns run()'s code.
 * A failure to start leading after the lease was won releases the lease
 * (nothing ran under it), so a replica that cannot lead never sits on it.
 */
static kle_leading *handle_new(kle_elector *e)
{
    kle_leading *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (kle_event_new(&h->ended) < 0 || kle_event_new(&h->extended) < 0) {
        kle_event_free(h->ended);
        free(h);
        return NULL;
    }
    atomic_init(&h->refs, 1);
    pthread_mutex_init(&h->mu, NULL);
    h->elector = e;
    h->clock = e->clock;
    return h;
}

/* Ends the handle's tie to the elector: from now on it answers alone. */
static void handle_detach(kle_elector *e, kle_leading *h)
{
    kle_event_set(h->ended);
    pthread_mutex_lock(&h->mu);
    pthread_mutex_lock(&e->mu);
    h->final_deadline = e->lead_deadline;
    pthread_mutex_unlock(&e->mu);
    h->elector = NULL;
    pthread_mutex_unlock(&h->mu);
}

static int lead_term(kle_elector *e, kle_leading *h)
{
    pthread_t guard, thread;
    int rc = 0;

    atomic_store(&e->callback_done, 0);
    atomic_store(&e->guard_done, 0);
    atomic_store(&e->stepped_down, 0);
    pthread_mutex_lock(&e->mu);
    e->expired = 0;
    e->leading = 1;
    e->handover = kle_elector__end_of_term(&e->observed, e->identity);
    e->lead_deadline = e->last_dated + e->renew_deadline;
    e->handle = h;
    e->stats.acquisitions++;
    h->transitions = e->observed.leader_transitions;
    e->stats.token = e->observed.leader_transitions;
    e->stats.last_renew_wall_ns = e->own_renew_ns;
    pthread_mutex_unlock(&e->mu);

    if (start_thread(e, h, guard_main, &guard) < 0) {
        rc = kle_error_last()->code;
        KLE_LOG_E("stepping down from %s and releasing it: %s", e->name, kle_error_last()->message);
        pthread_mutex_lock(&e->mu);
        e->leading = 0;
        e->handle = NULL;
        pthread_mutex_unlock(&e->mu);
        release(e, 0);
        return kle_error_set(rc, "cannot lead %s: could not start the leadership guard", e->name);
    }
    int started = 0;
    pthread_mutex_lock(&e->mu);
    int reserved = e->handover;
    pthread_mutex_unlock(&e->mu);
    if (reserved) {
        /* Won a lease that prefers another holder: hand it over without starting the work. */
        KLE_LOG_I("lease %s prefers another holder: handing it over without leading", e->name);
        kle_event_set(h->ended);
    } else if (now_ns(e) >= e->lead_deadline || kle_event_is_set(h->ended)) {
        /* The deadline passed before the work could start: never start it. */
        KLE_LOG_W("leadership of %s ended before the leader's work could start", e->name);
        kle_event_set(h->ended);
        rc = kle_error_set(KLE_ETIMEOUT, "leadership of %s ended before it could start", e->name);
    } else if (start_thread(e, h, callback_main, &thread) < 0) {
        rc = kle_error_last()->code;
        KLE_LOG_E("stepping down from %s and releasing it: %s", e->name, kle_error_last()->message);
        kle_event_set(h->ended);
    } else {
        started = 1;
    }
    if (!started) {
        join_after(e, &e->guard_done, guard);
        pthread_mutex_lock(&e->mu);
        e->leading = 0;
        e->handle = NULL;
        pthread_mutex_unlock(&e->mu);
        end_term(e, 1, 0);
        return rc;
    }
    record_event(e, "became leader");

    enum renew_outcome outcome = renew(e, h);
    pthread_mutex_lock(&e->mu);
    e->leading = 0;
    if (outcome == RENEW_LOST)
        e->stats.losses++;
    pthread_mutex_unlock(&e->mu);
    if (outcome == RENEW_LOST)
        rc = kle_error_set(KLE_ETIMEOUT, "leadership of %s lost: no renewal succeeded in time",
                           e->name);
    if (outcome == RENEW_TAKEN && impostor(e))
        rc = impostor_error(e);
    else if (outcome == RENEW_TAKEN)
        rc = kle_error_set(KLE_ECONFLICT,
                           "leadership of %s lost: the watch showed another holder after this "
                           "elector's last write",
                           e->name);

    kle_event_set(h->ended);
    mark_progress(e);
    join_after(e, &e->callback_done, thread);
    join_after(e, &e->guard_done, guard);
    pthread_mutex_lock(&e->mu);
    e->handle = NULL;
    pthread_mutex_unlock(&e->mu);
    mark_progress(e);

    end_term(e, e->release_on_cancel, outcome == RENEW_LOST);
    mark_progress(e);
    record_event(e, "stopped leading");
    return rc;
}

static int lead(kle_elector *e)
{
    kle_leading *hp = e->next_handle;
    e->next_handle = NULL;
    int rc = lead_term(e, hp);
    handle_detach(e, hp);
    kle_leading_unref(hp);
    e->next_handle = handle_new(e); /* Else kle_elector_run() tries again. */
    return rc;
}

int kle_elector_run(kle_elector *e)
{
    if (!e)
        return kle_error_set(KLE_EINVAL, "kle_elector_run: elector is NULL");
    if (atomic_exchange(&e->running, 1))
        return kle_error_set(KLE_ESTATE, "kle_elector_run: %s is already running", e->name);
    int rc = 0, won;
    mark_progress(e);
    pthread_mutex_lock(&e->mu);
    e->impostor = 0; /* Each run looks again. */
    e->foreign_self = 0;
    pthread_mutex_unlock(&e->mu);
    kle_follow__start(e);
    if (!e->next_handle && !(e->next_handle = handle_new(e))) {
        rc = kle_error_set(KLE_ESYSTEM, "kle_elector_run: %s: cannot make a leading handle",
                           e->name);
    } else if ((won = acquire(e)) < 0) {
        rc = impostor_error(e);
    } else if (won) {
        if (stop_requested(e)) {
            /* Stopped while the winning write was in flight: do not start leading. */
            if (e->release_on_cancel)
                release(e, 0);
        } else {
            rc = lead(e);
        }
    }
    kle_follow__stop(e);
    e->cb.on_stopped_leading(e->cb.data);
    atomic_store(&e->running, 0);
    return rc;
}

void kle_elector_stop(kle_elector *e)
{
    if (!e)
        return;
    atomic_store(&e->stop_requested, 1);
    kle_event_set(e->cancel);
    kle_event_set(e->wake);
}

int kle_elector_is_leader(kle_elector *e)
{
    if (!e)
        return 0;
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    int leader = e->leading && !e->expired && now < e->lead_deadline;
    pthread_mutex_unlock(&e->mu);
    return leader;
}

int kle_elector_leader(char **out, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_leader: out and elector are required");
    pthread_mutex_lock(&e->mu);
    *out = strdup(kle_record_holder(&e->observed));
    pthread_mutex_unlock(&e->mu);
    return *out ? 0 : kle_error_set(KLE_ENOMEM, "kle_elector_leader: out of memory");
}

int kle_elector_observed(kle_record *out, int64_t *out_age_ns, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_observed: out and elector are required");
    if (kle_record_init(out, out->version) < 0)
        return kle_error_prefix("kle_elector_observed: ");
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    int rc = e->has_observed ? kle_record_copy(out, &e->observed)
                             : kle_error_set(KLE_ENOTFOUND, "%s: no record observed yet", e->name);
    if (out_age_ns)
        *out_age_ns = e->has_observed ? now - e->observed_time : 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int kle_elector_check_ns(kle_elector *e, int64_t max_tolerable_expired_ns)
{
    if (!e)
        return kle_error_set(KLE_EINVAL, "kle_elector_check_ns: elector is NULL");
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    int mine = observed_is_me(e);
    int64_t age = now - e->observed_time;
    pthread_mutex_unlock(&e->mu);
    int64_t limit = max_tolerable_expired_ns > INT64_MAX - e->lease_duration
                        ? INT64_MAX
                        : e->lease_duration + max_tolerable_expired_ns;
    if (mine && age > limit)
        return kle_error_set(KLE_EUNHEALTHY, "failed election to renew leadership on lease %s",
                             e->name);
    return 0;
}

int kle_elector_config_init(kle_elector_config *config, unsigned int version)
{
    if (!config)
        return kle_error_set(KLE_EINVAL, "kle_elector_config_init: config is NULL");
    if (version < 1 || version > KLE_ELECTOR_CONFIG_VERSION)
        return kle_error_set(KLE_EVERSION, "kle_elector_config_init: version %u is not supported",
                             version);
    kle_elector_config init = KLE_ELECTOR_CONFIG_INIT;
    /* A version-1 struct ends before follow. */
    memcpy(config, &init,
           version == 1 ? offsetof(kle_elector_config, follow) : sizeof(kle_elector_config));
    config->version = version;
    return 0;
}

/* The size of kle_elector_stats at @p version: version 1 ends at releases, 2 at stepdowns. */
static size_t stats_size(unsigned int version)
{
    return version == 1   ? offsetof(kle_elector_stats, releases) + sizeof(uint64_t)
           : version == 2 ? offsetof(kle_elector_stats, stepdowns) + sizeof(uint64_t)
                          : sizeof(kle_elector_stats);
}

int kle_elector_stats_init(kle_elector_stats *stats, unsigned int version)
{
    if (!stats)
        return kle_error_set(KLE_EINVAL, "kle_elector_stats_init: stats is NULL");
    if (version < 1 || version > KLE_ELECTOR_STATS_VERSION)
        return kle_error_set(KLE_EVERSION, "kle_elector_stats_init: version %u is not supported",
                             version);
    memset(stats, 0, stats_size(version));
    stats->version = version;
    return 0;
}

int kle_elector_get_stats(kle_elector_stats *out, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_get_stats: out and elector are required");
    unsigned int version = out->version;
    if (version < 1 || version > KLE_ELECTOR_STATS_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "kle_elector_get_stats: stats version %u is not supported "
                             "(initialise it with KLE_ELECTOR_STATS_INIT)",
                             version);
    int leader = kle_elector_is_leader(e);
    int running = atomic_load(&e->running) != 0;
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    kle_elector_stats s = e->stats;
    s.round_age_ns = running ? now - e->last_progress : -1;
    s.last_call_error = e->last_call_error;
    kle_follow__stats(e, &s);
    pthread_mutex_unlock(&e->mu);
    s.leader = leader;
    s.version = version;
    /* Each version copies only the members it has. */
    memcpy(out, &s, stats_size(version));
    return 0;
}

const char *kle_elector_identity(kle_elector *e)
{
    return e ? e->identity : "";
}

void kle_elector_free(kle_elector *e)
{
    if (!e)
        return;
    kle_lock_free(e->lock);
    kle_event_free(e->cancel);
    kle_event_free(e->wake);
    kle_leading_unref(e->next_handle);
    kle_follow__free(e);
    kle_record_dispose(&e->observed);
    free(e->observed_raw);
    free(e->observed_rv);
    free(e->reported_leader);
    free(e->identity);
    free(e->name);
    free(e->metrics_name);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int kle_leading_fd(const kle_leading *h)
{
    return h ? kle_event_fd(h->ended) : -1;
}

int kle_leading_wait_ns(kle_leading *h, int64_t timeout_ns)
{
    if (!h)
        return kle_error_set(KLE_EINVAL, "kle_leading_wait_ns: handle is NULL");
    if (kle_event_is_set(h->ended))
        return 0; /* Also for a handle kept after its term: no clock needed. */
    kle_clock *clock = h->clock;
    int64_t now = kle_clock_monotonic_ns(clock);
    int64_t deadline =
        timeout_ns < 0 || timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    return kle_clock_wait(clock, h->ended, deadline);
}

int kle_leading_is_over(const kle_leading *h)
{
    return h && kle_event_is_set(h->ended);
}

int kle_leading_transitions(const kle_leading *h)
{
    return h ? h->transitions : 0;
}

int64_t kle_leading_deadline_ns(kle_leading *h)
{
    if (!h)
        return 0;
    kle_event_reset(h->extended);
    pthread_mutex_lock(&h->mu);
    int64_t deadline = h->final_deadline;
    if (h->elector) {
        pthread_mutex_lock(&h->elector->mu);
        deadline = h->elector->lead_deadline;
        pthread_mutex_unlock(&h->elector->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return deadline;
}

int kle_leading_deadline_fd(const kle_leading *h)
{
    return h ? kle_event_fd(h->extended) : -1;
}

kle_elector *kle_leading_elector(kle_leading *h)
{
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->mu);
    kle_elector *e = h->elector;
    pthread_mutex_unlock(&h->mu);
    return e;
}

kle_leading *kle_leading_ref(kle_leading *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
    return h;
}

void kle_leading_unref(kle_leading *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    kle_event_free(h->ended);
    kle_event_free(h->extended);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int kle_elector__try_acquire_or_renew(kle_elector *e, int64_t deadline)
{
    return try_acquire_or_renew(e, deadline, NULL);
}

void kle_elector__release(kle_elector *e)
{
    release(e, 0);
}

const char *kle_elector__metrics_name(kle_elector *e)
{
    return e->metrics_name;
}
