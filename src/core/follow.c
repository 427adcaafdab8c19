/*
 * Watch mode of the elector. A watcher thread runs the lock's watch and
 * feeds every event into the elector's observed state under the elector's
 * mutex, through the same rule a GET uses (kle_elector__observe), so a
 * watched record expires exactly when a polled one would, only seen
 * sooner. What the stream decides:
 *
 * - a follower's next attempt: the observed expiry (observed time + the
 *   record's lease duration, on the local monotonic clock) plus up to
 *   TAKEOVER_JITTER_NS, or at once on a release or an unheld deletion;
 * - a leader's step-down, when the stream shows another holder after the
 *   leader's own last successful write (stream order; see
 *   docs/architecture.md, "Watch mode");
 * - a leader's end of term, when the stream shows its lease naming another
 *   preferred holder (docs/coordinated.md);
 * - a follower's attempt at once, when the stream shows a record naming it
 *   as holder that it did not write (a handover, or the coordinated
 *   election controller's choice).
 *
 * What it never decides: a takeover is still the elector's GET followed by
 * a conditional create or update, so a stale view costs a Conflict at most.
 * Bookmarks only prove the stream alive. A follower polls as in poll mode
 * while no stream is healthy; a GET that shows a change the stream has not
 * shown within STREAM_LAG_NS (it may only be behind the GET by a moment, as
 * after a release taken at once by another replica) restarts the stream.
 */
#include "core/follow.h"
#include "core/log.h"
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"

#include <stdlib.h>
#include <string.h>

/* Largest random delay added to a scheduled takeover, against a thundering herd. */
#define TAKEOVER_JITTER_NS (25 * KLE_NS_PER_MS)
/* Server-side lifetime of one watch stream (timeoutSeconds). */
#define STREAM_TIMEOUT_NS KLE_SEC(300)
/* How long a stream may lag behind a GET that showed a change, at most. */
#define STREAM_LAG_NS KLE_SEC(1)
/* resourceVersions remembered to recognise a stale re-delivery. */
#define RECENT_RVS 8

typedef struct kle_follow kle_follow;

struct kle_follow {
    kle_elector *e;
    kle_event *cancel; /* Ends the current watch call: a restart, or stop. */
    pthread_t thread;
    int started;
    void *token;
    atomic_int done;
    atomic_int stopping;
    atomic_int kick; /* Attempt now: a release or an unheld deletion was seen. */
    uint64_t rng;
    /* Guarded by e->mu. */
    int healthy;         /* A stream is open and trusted. */
    int suspect;         /* The stream missed a change: trust only its own events. */
    int unavailable;     /* The lock or the server cannot watch: poll for good. */
    uint64_t stream_own; /* write_seq of this elector's write last seen on the stream. */
    int64_t last_stream; /* Last event or bookmark. */
    int64_t last_get;    /* Last GET of the elector. */
    int64_t jitter;      /* Of the attempt being waited for. */
    char *awaited;       /* A change a GET showed, not yet on the stream. */
    int64_t awaited_by;  /* When the stream counts as having missed it. */
    char *recent[RECENT_RVS];
    int recent_next;
    uint64_t events, restarts, stepdowns;
};

static int64_t now_ns(kle_elector *e)
{
    return kle_clock_monotonic_ns(e->clock);
}

int kle_follow__new(kle_elector *e)
{
    e->follow = NULL;
    if (e->follow_mode != KLE_FOLLOW_WATCH)
        return 0;
    if (!kle_lock_can_watch(e->lock)) {
        KLE_LOG_I("lock %s cannot watch: following it by polling every retry period", e->name);
        return 0;
    }
    kle_follow *f = calloc(1, sizeof(*f));
    if (!f)
        return kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
    if (kle_event_new(&f->cancel) < 0) {
        free(f);
        return kle_error_last()->code;
    }
    f->e = e;
    f->rng = e->rng ^ UINT64_C(0x5851f42d4c957f2d);
    e->follow = f;
    return 0;
}

void kle_follow__free(kle_elector *e)
{
    kle_follow *f = e->follow;
    if (!f)
        return;
    kle_event_free(f->cancel);
    for (int i = 0; i < RECENT_RVS; i++)
        free(f->recent[i]);
    free(f->awaited);
    free(f);
    e->follow = NULL;
}

/* ---- recently seen resourceVersions (mu held) ---- */

static int recent_has(kle_follow *f, const char *rv)
{
    for (int i = 0; i < RECENT_RVS; i++)
        if (f->recent[i] && strcmp(f->recent[i], rv) == 0)
            return 1;
    return 0;
}

static void recent_add(kle_follow *f, const char *rv)
{
    if (!rv || !*rv || recent_has(f, rv))
        return;
    char *copy = strdup(rv);
    if (!copy)
        return;
    free(f->recent[f->recent_next]);
    f->recent[f->recent_next] = copy;
    f->recent_next = (f->recent_next + 1) % RECENT_RVS;
}

/* ---- events ---- */

/* The same instant, at the precision the record carries (µs or whole seconds). */
static int same_time(int64_t seen, int64_t written)
{
    if (seen % KLE_NS_PER_SEC == 0 && written / KLE_NS_PER_SEC == seen / KLE_NS_PER_SEC)
        return 1;
    return seen / 1000 == written / 1000;
}

static int copy_result(kle_lock_result *out, const kle_lock_result *in)
{
    kle_lock_result_init(out, KLE_LOCK_RESULT_VERSION);
    if (kle_record_copy(&out->record, &in->record) < 0)
        return KLE_ENOMEM;
    out->raw = malloc(in->raw_len + 1);
    if (!out->raw ||
        (in->resource_version && !(out->resource_version = strdup(in->resource_version)))) {
        kle_lock_result_dispose(out);
        return KLE_ENOMEM;
    }
    memcpy(out->raw, in->raw, in->raw_len);
    out->raw[in->raw_len] = '\0';
    out->raw_len = in->raw_len;
    return 0;
}

/*
 * A foreign holder (or a deletion) on the stream after this elector's last
 * successful write was seen on the same stream is newer than that write:
 * the stream delivers one object's changes in order. Ends the term at once.
 * mu held; returns 1 when it did.
 */
static int step_down_if_newer(kle_follow *f, kle_elector *e)
{
    if (!e->leading || e->expired || f->stream_own == 0 || f->stream_own != e->own_seq)
        return 0;
    e->expired = 1;
    atomic_store(&e->stepped_down, 1);
    if (e->handle)
        kle_event_set(e->handle->ended);
    f->stepdowns++;
    return 1;
}

static int on_event(const kle_lock_event *ev, void *data)
{
    kle_follow *f = data;
    kle_elector *e = f->e;
    if (atomic_load(&f->stopping))
        return 1;
    int kick = 0, wake = 0, stepped = 0, handover = 0;
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    f->events++;
    f->last_stream = now;
    if (f->awaited && ev->resource_version && strcmp(f->awaited, ev->resource_version) == 0) {
        free(f->awaited); /* The stream was only behind the GET. */
        f->awaited = NULL;
    }
    if (!ev->listed)
        f->suspect = 0;
    if (!f->suspect && !f->healthy) {
        f->healthy = 1;
        wake = 1;
    }
    switch (ev->type) {
    case KLE_LOCK_EVENT_BOOKMARK:
        /* Proof of life only: it never touches the observed record or its expiry. */
        break;
    case KLE_LOCK_EVENT_ERROR:
        kick = 1; /* An unreadable record: let a GET report it. */
        break;
    case KLE_LOCK_EVENT_DELETED:
        stepped = step_down_if_newer(f, e);
        /* A deletion ends no live lease this elector saw; see docs/architecture.md. */
        if (!e->has_observed || kle_elector__released(&e->observed) ||
            kle_elector__observed_is_me(e) || !kle_elector__lease_valid(e, now))
            kick = 1;
        break;
    case KLE_LOCK_EVENT_RECORD: {
        const kle_lock_result *r = ev->result;
        const char *rv = r ? r->resource_version : NULL;
        if (!r)
            break;
        if (rv && recent_has(f, rv)) {
            KLE_LOG_V(5, "watch of %s: ignoring resourceVersion %s, seen before", e->name, rv);
            break; /* A duplicate, or a stale re-delivery of an older version. */
        }
        if (kle_elector__is_own_write(e, &r->record)) {
            /* Our own write: note how far the stream has come; our view of
             * our own lease stays the one its send time gave. */
            if (r->record.leader_transitions == e->writing_transitions &&
                same_time(r->record.renew_time_ns, e->writing_renew_ns))
                f->stream_own = e->write_seq;
            else if (r->record.leader_transitions == e->own_transitions &&
                     same_time(r->record.renew_time_ns, e->own_renew_ns))
                f->stream_own = e->own_seq;
            if (e->leading && !e->handover && kle_elector__end_of_term(&r->record, e->identity)) {
                /* Another identity is preferred (kle transfer, the election
                 * controller): end the term now, not at the next renewal. */
                e->handover = 1;
                if (e->handle)
                    kle_event_set(e->handle->ended);
                handover = wake = 1;
            }
            break;
        }
        stepped = step_down_if_newer(f, e);
        kle_lock_result copy;
        if (copy_result(&copy, r) < 0)
            break;
        int changed = 0;
        kle_elector__observe(e, &copy, now, &changed);
        kle_lock_result_dispose(&copy);
        if (e->impostor && e->leading && !e->expired) {
            /* Another replica writes under this identity: stop at once. */
            e->expired = 1;
            atomic_store(&e->stepped_down, 1);
            if (e->handle)
                kle_event_set(e->handle->ended);
            f->stepdowns++;
            stepped = 1;
        }
        if (changed) {
            wake = 1;
            if (kle_elector__released(&e->observed))
                kick = 1; /* Released: try at once. */
            else if (!e->leading && kle_elector__observed_is_me(e))
                kick = 1; /* Written in as holder (a handover, the election controller). */
            else if (e->impostor)
                kick = 1; /* The elector's loop reports it. */
        }
        break;
    }
    }
    if (ev->resource_version)
        recent_add(f, ev->resource_version);
    pthread_mutex_unlock(&e->mu);
    if (stepped)
        KLE_LOG_I("the watch of %s shows another holder after this leader's last write: "
                  "stopping leading now",
                  e->name);
    if (handover)
        KLE_LOG_I("the watch of %s shows another preferred holder: ending this term to hand over",
                  e->name);
    if (kick)
        atomic_store(&f->kick, 1);
    if (kick || wake || stepped)
        kle_event_set(e->wake);
    return 0;
}

/* ---- the watcher thread ---- */

static void *watcher_main(void *p)
{
    kle_follow *f = p;
    kle_elector *e = f->e;
    if (e->clock->thread_attach)
        e->clock->thread_attach(e->clock, f->token);
    int first = 1;
    while (!atomic_load(&f->stopping)) {
        kle_event_reset(f->cancel);
        if (atomic_load(&f->stopping))
            break;
        pthread_mutex_lock(&e->mu);
        f->stream_own = 0; /* Stream order holds within one stream only. */
        free(f->awaited);
        f->awaited = NULL;
        if (!first)
            f->restarts++;
        pthread_mutex_unlock(&e->mu);
        first = 0;
        kle_lock_watch_opts o = KLE_LOCK_WATCH_OPTS_INIT;
        o.stream_timeout_ns = STREAM_TIMEOUT_NS;
        o.cancel = f->cancel;
        int rc = kle_lock_watch(e->lock, &o, on_event, f);
        pthread_mutex_lock(&e->mu);
        f->healthy = 0;
        f->stream_own = 0;
        pthread_mutex_unlock(&e->mu);
        kle_event_set(e->wake); /* A waiting follower falls back to polling. */
        if (atomic_load(&f->stopping))
            break;
        if (rc == KLE_EFORBIDDEN || rc == KLE_ESTATE) {
            KLE_LOG_W("cannot watch lock %s: %s; following it by polling every retry period "
                      "(grant the watch verb: deploy/rbac.yaml)",
                      e->name, kle_error_last()->message);
            pthread_mutex_lock(&e->mu);
            f->unavailable = 1;
            pthread_mutex_unlock(&e->mu);
            break;
        }
        if (rc == KLE_ECANCELED)
            continue; /* A restart was asked for. */
        KLE_LOG_V(2, "watch of %s ended (%s): polling until it is back", e->name,
                  rc < 0 ? kle_error_last()->message : "no error");
        int64_t backoff = e->retry_period < KLE_NS_PER_SEC ? e->retry_period : KLE_NS_PER_SEC;
        kle_clock_wait(e->clock, f->cancel, now_ns(e) + backoff);
    }
    atomic_store(&f->done, 1);
    kle_event_set(e->wake);
    if (e->clock->thread_detach)
        e->clock->thread_detach(e->clock, f->token);
    return NULL;
}

void kle_follow__start(kle_elector *e)
{
    kle_follow *f = e->follow;
    if (!f || f->started)
        return;
    pthread_mutex_lock(&e->mu);
    int unavailable = f->unavailable;
    f->healthy = 0;
    f->suspect = 0;
    pthread_mutex_unlock(&e->mu);
    if (unavailable)
        return;
    atomic_store(&f->stopping, 0);
    atomic_store(&f->done, 0);
    atomic_store(&f->kick, 0);
    kle_event_reset(f->cancel);
    f->token = e->clock->thread_register ? e->clock->thread_register(e->clock) : NULL;
    int err = pthread_create(&f->thread, NULL, watcher_main, f);
    if (err) {
        if (e->clock->thread_detach)
            e->clock->thread_detach(e->clock, f->token);
        KLE_LOG_W("cannot start the watcher of %s: %s; polling", e->name, strerror(err));
        return;
    }
    f->started = 1;
}

void kle_follow__stop(kle_elector *e)
{
    kle_follow *f = e->follow;
    if (!f || !f->started)
        return;
    atomic_store(&f->stopping, 1);
    kle_event_set(f->cancel);
    kle_elector__join(e, &f->done, f->thread);
    f->started = 0;
}

/* ---- the follower's schedule ---- */

/* The stream missed a change: restart it, and poll until it shows an event
 * of its own. mu held. */
static void restart_stream(kle_follow *f, kle_elector *e)
{
    KLE_LOG_V(2, "the watch of %s missed a change: restarting it", e->name);
    free(f->awaited);
    f->awaited = NULL;
    f->healthy = 0;
    f->suspect = 1;
    kle_event_set(f->cancel);
}

static uint64_t next_random(kle_follow *f)
{
    uint64_t z = (f->rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* When the next attempt is due; mu held. */
static int64_t next_attempt(kle_follow *f, kle_elector *e, int64_t poll_until)
{
    if (!f->healthy || !e->has_observed || kle_elector__observed_is_me(e))
        return poll_until;
    int64_t at =
        e->observed_time + (int64_t)e->observed.lease_duration_seconds * KLE_NS_PER_SEC + f->jitter;
    /* An attempt at or after this expiry already failed (an error, or a
     * deletion of a live lease): retry as a poll would. */
    if (at <= f->last_get)
        at = poll_until;
    /* The safety GET: never a lease duration without a sign of life or a read. */
    int64_t last = f->last_stream > f->last_get ? f->last_stream : f->last_get;
    int64_t safety = last + e->lease_duration / 2;
    return at < safety ? at : safety;
}

void kle_follow__wait(kle_elector *e, int64_t poll_until)
{
    kle_follow *f = e->follow;
    pthread_mutex_lock(&e->mu);
    f->jitter = (int64_t)(next_random(f) % (uint64_t)TAKEOVER_JITTER_NS);
    pthread_mutex_unlock(&e->mu);
    for (;;) {
        kle_event_reset(e->wake);
        if (atomic_load(&e->stop_requested))
            return;
        if (atomic_exchange(&f->kick, 0))
            return;
        kle_elector__report_transition(e);
        int64_t now = now_ns(e);
        pthread_mutex_lock(&e->mu);
        if (f->awaited && now >= f->awaited_by)
            restart_stream(f, e);
        int64_t until = next_attempt(f, e, poll_until);
        if (f->awaited && f->awaited_by < until)
            until = f->awaited_by;
        pthread_mutex_unlock(&e->mu);
        if (now >= until) {
            pthread_mutex_lock(&e->mu);
            f->last_get = now; /* The attempt reads the lock. */
            pthread_mutex_unlock(&e->mu);
            return;
        }
        kle_clock_wait(e->clock, e->wake, until);
    }
}

void kle_follow__got(kle_elector *e, int changed)
{
    kle_follow *f = e->follow;
    if (!f)
        return;
    f->last_get = now_ns(e);
    /* A version the stream delivered (one it kicked an attempt for, and
     * this elector did not observe) is no missed change. */
    int on_stream = e->observed_rv && recent_has(f, e->observed_rv);
    if (e->observed_rv)
        recent_add(f, e->observed_rv);
    if (changed && f->healthy && !e->leading && !on_stream && !f->awaited) {
        /* The stream has not shown this change yet: it may be a moment
         * behind the GET, or it missed it. */
        if (e->observed_rv && (f->awaited = strdup(e->observed_rv)) != NULL)
            f->awaited_by = f->last_get + STREAM_LAG_NS;
        else
            restart_stream(f, e);
    }
}

int kle_follow__healthy(kle_elector *e)
{
    if (!e->follow)
        return 0;
    pthread_mutex_lock(&e->mu);
    int h = e->follow->healthy;
    pthread_mutex_unlock(&e->mu);
    return h;
}

void kle_follow__stats(kle_elector *e, kle_elector_stats *s)
{
    kle_follow *f = e->follow;
    if (!f)
        return;
    s->watching = f->healthy;
    s->watch_events = f->events;
    s->watch_restarts = f->restarts;
    s->stepdowns = f->stepdowns;
}
