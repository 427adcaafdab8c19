/*
 * The election as a deterministic state machine: client-go's
 * tryAcquireOrRenew and its acquire, renew and release loops, libkle's
 * watch mode and planned handover, and every rule of the safety argument
 * (docs/architecture.md, "Why two leaders cannot work at once": R1..R10,
 * named where they act). See sm.h for the interface.
 *
 * Phases of a run:
 *   CAMPAIGN  tries (get, then create or update) until one wins; between
 *             tries it waits a jittered retry period, or, watching, until
 *             the observed lease expires or the stream shows a release;
 *   LEADING   a term: renewal rounds one retry period after the last
 *             successful write was sent, each retrying until a write is
 *             answered before the deadline; the term ends at its
 *             deadline, on a stop, a handover, or a newer foreign holder;
 *   ENDING    the term has ended (or is ending on a stop or handover, and
 *             then renewals go on) until the leader's work has returned;
 *   CLOSING   after the work: the handover write or the release, then the
 *             "stopped leading" event;
 *   DONE      the run is over; a new kle_sm_start begins another.
 * One lock call at a time; a call carries its own timeout, and no decision
 * ever waits for an answer: the deadline ends a term whatever a call does.
 */
#include "election/sm.h"
#include "base/log.h"
#include "base/sat.h"
#include "kle/record.h"
#include "kle/sys/errors.h"

#include <stdlib.h>
#include <string.h>

#define JITTER_FACTOR 1.2
/* The coarsest time precision of any record (annotation records carry whole seconds). */
#define RECORD_PRECISION KLE_NS_PER_SEC
/* Largest random delay added to a watched takeover, against a thundering herd. */
#define TAKEOVER_JITTER_NS (25 * KLE_NS_PER_MS)
/* How long a stream may lag behind a GET that showed a change, at most. */
#define STREAM_LAG_NS KLE_SEC(1)
/* resourceVersions remembered to recognise a stale re-delivery. */
#define RECENT_RVS 8
/* Writes remembered, to date terms (R1) and recognise our own records (R8). */
#define OWN_WRITES 8
#define OWN_MICROS 16 /* renewTimes in microseconds of the latest writes (R8). */
/* Attempts of a release or handover, within a renew deadline. */
#define END_ATTEMPTS 5
/* Actions queued at once, at most (a few per input). */
#define MAX_ACTIONS 8
#define INT32_TOP   2147483647

/* A string the machine owns: grown when a longer one arrives, never shrunk. */
typedef struct buf {
    char *p;
    uint32_t len, cap;
} buf;

/*
 * A record the machine keeps: its numbers, and its three strings one after
 * the other in one buffer (holder, strategy, preferred holder, each ending
 * in a NUL); rec_view lends it out as a kle_record.
 */
typedef struct rec {
    char *s;
    uint32_t cap, hlen, slen, plen;
    int64_t acquire_time_ns, renew_time_ns;
    int32_t lease_duration_seconds, leader_transitions;
    uint8_t has_strategy, has_preferred;
} rec;

/*
 * A write of this elector (R1, R8), by its key: the fields a record of
 * whole seconds carries besides the holder (leaseDurationSeconds,
 * leaderTransitions, acquireTime and renewTime in seconds), as a 64-bit
 * hash.
 */
typedef struct own_write {
    uint64_t key;
    int64_t first_sent;
    uint32_t call_id; /* The call that first sent it. */
    uint8_t used;
    uint8_t landed; /* 0: in flight; 1: answered, or its outcome unknown (it may have landed). */
} own_write;

/* One queued action: what kle_sm_next hands out, without what the machine holds anyway. */
typedef struct queued {
    int64_t time;   /* TERM_START, TERM_EXTEND: the deadline; CALL: the timeout. */
    uint32_t value; /* TERM_START: the token; DONE: the rc; CALL: the call id. */
    uint8_t kind;   /* kle_sm_action_kind */
    uint8_t call;   /* CALL: kle_sm_call_kind */
    uint8_t flags;  /* CALL: Q_CANCELLABLE, Q_RECORD, Q_BECAME, Q_STOPPED */
} queued;

enum { Q_CANCELLABLE = 1, Q_RECORD = 2, Q_BECAME = 4, Q_STOPPED = 8 };

/* Counters of kle_sm_stats, saturating. */
typedef struct counters {
    uint32_t tries, failed_tries, acquisitions, losses, releases, slowpath_total;
    uint32_t watch_events, watch_restarts, stepdowns;
    int32_t last_call_error;
    int64_t last_progress, last_renew_wall;
} counters;

/* The configuration the machine keeps (kle_sm_config less the seed). */
typedef struct settings {
    const char *identity, *name;
    int64_t lease_duration, renew_deadline, retry_period, call_timeout;
    int32_t record_lease_seconds, mutations;
    uint8_t release_on_cancel, coordinated, watch;
} settings;

enum phase { P_IDLE, P_CAMPAIGN, P_LEADING, P_ENDING, P_CLOSING, P_DONE };
enum step {
    S_NONE,
    S_FAST,       /* fast-path update */
    S_GET,        /* the try's read */
    S_CREATE,     /* create after NotFound */
    S_UPDATE,     /* takeover or slow-path renewal */
    S_EVENT,      /* an event */
    S_REL_GET,    /* release: read */
    S_REL_UPDATE, /* release: write */
    S_HO_GET,     /* handover: read */
    S_HO_UPDATE   /* handover: write */
};
enum end_reason { END_NONE, END_STOP, END_HANDOVER, END_LOST, END_TAKEN, END_IDENTITY };

static const char *phase_names[] = {"idle", "campaign", "leading", "ending", "closing", "done"};

struct kle_sm {
    settings c;
    uint64_t rng;
    int64_t now; /* Time of the input being handled. */
    int64_t wall;

    /* The term. */
    int64_t lead_deadline;
    int32_t token; /* The term's fencing token. */
    int32_t rc;    /* What the run returns. */

    /* The call in flight. */
    uint32_t call_id, next_id;
    /* The calls of a try are cut at call_deadline (INT64_MAX: the call
     * limit only); those of a release or handover at end_by. */
    union {
        int64_t call_deadline;
        int64_t end_by;
    };
    rec wrec; /* The record being written. */

    /* Scheduling: when the next try starts (CAMPAIGN, polling) or the
     * renewal round retries (LEADING). */
    union {
        int64_t poll_until;
        int64_t round_next;
    };

    /* What was observed of the lock. */
    rec observed;
    buf raw, rv;
    int64_t observed_time;
    int64_t raw_changed_time;
    buf reported; /* Holder last reported (NEW_LEADER). */
    int32_t max_transitions;

    /* This elector's writes. */
    uint32_t write_seq, own_seq;
    int32_t writing_transitions, own_transitions;
    int32_t foreign_self; /* Distinct foreign records under our identity seen. */
    int64_t writing_renew, own_renew;
    int64_t last_sent, last_dated;
    int64_t max_renew_s; /* The latest renewTime second written. */
    own_write own[OWN_WRITES];
    /* R8: the microseconds of the latest writes' renewTimes within their
     * second, each tagged with its key's own[] slot (micro_tag). */
    uint32_t own_us[OWN_MICROS];
    uint32_t deletions;        /* Deletions seen of an object seen before (NotFound, DELETED). */
    uint32_t create_deletions; /* `deletions` when the last create was sent. */
    uint32_t unknown_create_deletions; /* ... and its create_deletions. */
    int64_t foreign_lease_until; /* R11: the latest live lease of another seen expires then. */
    int64_t lost_lease_until;    /* R11: the same, on objects seen deleted or lost since. */
    int64_t
        unknown_create_sent;  /* A create whose answer never came (0: none): it may have landed. */
    int64_t quarantine_until; /* R7: the term's work starts then (0: none pending). */

    /* Watch mode. */
    uint32_t stream_own;
    int32_t jitter; /* Of a watched takeover, below TAKEOVER_JITTER_NS. */
    int64_t last_stream, last_get;
    int64_t watch_restart_at;
    uint64_t awaited;   /* The resourceVersion the stream should show (its hash)... */
    int64_t awaited_by; /* ... by then. */
    /* What the stream showed: a hash of each resourceVersion with the bytes seen with it. */
    uint64_t recent[RECENT_RVS];

    counters stats;
    queued q[MAX_ACTIONS]; /* Queued actions. */

    /* Small state, packed together. */
    uint8_t phase;
    uint8_t stop;           /* Stop requested (sticky). */
    uint8_t end_reason;     /* Why the term is ending. */
    uint8_t term_over;      /* The term has ended: no extension, no revival. */
    uint8_t end_sent;       /* TERM_END was emitted for this term. */
    uint8_t work_running;   /* TERM_START emitted, work_done not yet. */
    uint8_t handover;       /* Another identity is preferred: end the term, then hand over. */
    uint8_t release_anyway; /* Release at the end even without release_on_cancel. */
    uint8_t impostor;       /* Another replica writes under our identity. */
    uint8_t became_event;   /* The "became leader" event is due. */
    uint8_t stopped_event;  /* The "stopped leading" event is due. */
    uint8_t step;
    uint8_t write_attempted; /* A write of this try was sent (its outcome may be unknown). */
    int8_t attempts;         /* Of a release or handover (-1: done with it). */
    uint8_t kick;            /* Try at once (a release, a handover, a deletion seen). */
    uint8_t round_active;    /* LEADING: a renewal round is retrying. */
    uint8_t late_retry;      /* CAMPAIGN: won too late, try again at once. */
    uint8_t has_observed;
    uint8_t observed_own;
    uint8_t saturation_logged;
    uint8_t seen_transitions;
    uint8_t reported_set;
    uint8_t own_next;
    uint8_t last_issued; /* own[] index of the write issued last. */
    uint8_t own_us_next;
    uint8_t seen_object;        /* The object was seen to exist (a record read or written). */
    uint8_t deletion_witnessed; /* The last one came as an event on the healthy stream of now. */
    uint8_t unknown_create_after_seen; /* ... and its create_after_seen. */
    uint8_t quarantined;       /* A term won by a create after a deletion: work not started. */
    uint8_t create_after_seen; /* The create in flight follows a deletion of an object seen. */
    uint8_t stream_active, healthy, suspect, unavailable;
    uint8_t has_awaited;
    uint8_t recent_next;
    uint8_t qhead, qlen;
};

/* The fixed part of a machine stays within 1 KB (docs/performance.md). */
_Static_assert(sizeof(struct kle_sm) <= 1024, "a state machine's fixed part exceeds 1 KB");

/* ---- small helpers ---------------------------------------------------- */

/* Room for @p need bytes in *p (capacity *cap), doubling from 32; its contents kept. */
static int grow(char **p, uint32_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    if (need > UINT32_MAX / 2)
        return KLE_ENOMEM;
    uint32_t c = *cap ? *cap : 32;
    while (c < need)
        c *= 2;
    char *q = realloc(*p, c);
    if (!q)
        return KLE_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int buf_set(buf *b, const char *s, size_t len)
{
    if (grow(&b->p, &b->cap, len + 1) < 0)
        return KLE_ENOMEM;
    if (len)
        memcpy(b->p, s, len);
    b->p[len] = '\0';
    b->len = (uint32_t)len;
    return 0;
}

static int buf_eq(const buf *b, const char *s, size_t len)
{
    return b->p && b->len == len && memcmp(b->p, s, len) == 0;
}

static void buf_free(buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* @p r as a kle_record: its strings are lent (valid until @p r changes). */
static kle_record rec_view(const rec *r)
{
    kle_record v = KLE_RECORD_INIT;
    v.holder_identity = r->s ? r->s : (char *)"";
    v.holder_identity_len = r->hlen;
    v.strategy = r->has_strategy ? r->s + r->hlen + 1 : NULL;
    v.strategy_len = r->has_strategy ? r->slen : 0;
    v.preferred_holder = r->has_preferred ? r->s + r->hlen + 1 + r->slen + 1 : NULL;
    v.preferred_holder_len = r->has_preferred ? r->plen : 0;
    v.lease_duration_seconds = r->lease_duration_seconds;
    v.acquire_time_ns = r->acquire_time_ns;
    v.renew_time_ns = r->renew_time_ns;
    v.leader_transitions = r->leader_transitions;
    return v;
}

/* rec_view as a pointer, to a copy that lives until the end of the enclosing block. */
#define VIEW(r) ((const kle_record[1]){rec_view(r)})

static const char *rec_holder(const rec *r)
{
    return r->s ? r->s : "";
}

static const char *rec_strategy(const rec *r)
{
    return r->has_strategy ? r->s + r->hlen + 1 : NULL;
}

static const char *rec_preferred(const rec *r)
{
    return r->has_preferred ? r->s + r->hlen + 1 + r->slen + 1 : NULL;
}

/* 1 when @p x points into @p r's buffer. */
static int inside(const char *x, const rec *r)
{
    uintptr_t u = (uintptr_t)x, b = (uintptr_t)r->s;
    return x && r->s && u >= b && u - b < r->cap;
}

/*
 * Sets @p r's strings: the holder, and the strategy and preferred holder
 * (NULL: absent). The sources may lie in @p r's own buffer. On failure
 * @p r is unchanged.
 */
static int rec_strings(rec *r, const char *h, size_t hl, const char *st, size_t sl, const char *pr,
                       size_t pl)
{
    size_t need = hl + 1 + (st ? sl : 0) + 1 + (pr ? pl : 0) + 1;
    if (need > UINT32_MAX / 2)
        return KLE_ENOMEM;
    int alias = inside(h, r) || inside(st, r) || inside(pr, r);
    char *p = r->s;
    uint32_t cap = r->cap;
    if (alias || need > cap) {
        /* A new buffer: the sources stay readable while it is filled. */
        p = NULL;
        cap = 0;
        if (grow(&p, &cap, need > r->cap ? need : r->cap) < 0)
            return KLE_ENOMEM;
    }
    char *q = p;
    memcpy(q, h, hl);
    q += hl;
    *q++ = '\0';
    if (st)
        memcpy(q, st, sl);
    q += st ? sl : 0;
    *q++ = '\0';
    if (pr)
        memcpy(q, pr, pl);
    q += pr ? pl : 0;
    *q = '\0';
    if (p != r->s) {
        free(r->s);
        r->s = p;
        r->cap = cap;
    }
    r->hlen = (uint32_t)hl;
    r->slen = st ? (uint32_t)sl : 0;
    r->plen = pr ? (uint32_t)pl : 0;
    r->has_strategy = st != NULL;
    r->has_preferred = pr != NULL;
    return 0;
}

/* Copies @p src into @p r; on failure @p r is unchanged. */
static int rec_copy(rec *r, const kle_record *src)
{
    if (rec_strings(r, kle_record_holder(src), kle_record_holder_len(src), src->strategy,
                    kle_record_string_len(src->strategy, src->strategy_len), src->preferred_holder,
                    kle_record_string_len(src->preferred_holder, src->preferred_holder_len)) < 0)
        return KLE_ENOMEM;
    r->lease_duration_seconds = src->lease_duration_seconds;
    r->acquire_time_ns = src->acquire_time_ns;
    r->renew_time_ns = src->renew_time_ns;
    r->leader_transitions = src->leader_transitions;
    return 0;
}

static void rec_free(rec *r)
{
    free(r->s);
    memset(r, 0, sizeof(*r));
}

static size_t rec_bytes(const rec *r)
{
    return r->cap;
}

/* 1 when @p r's holder is @p identity. */
static int rec_holder_is(const rec *r, const char *identity)
{
    size_t n = strlen(identity);
    return r->hlen == n && memcmp(rec_holder(r), identity, n) == 0;
}

static int mut(const kle_sm *sm, int bit)
{
    return (sm->c.mutations & bit) != 0;
}

/* splitmix64's finaliser: a bijection that mixes every bit into every bit. */
static uint64_t fmix(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* splitmix64 */
static uint64_t next_random(kle_sm *sm)
{
    return fmix(sm->rng += UINT64_C(0x9e3779b97f4a7c15));
}

static double random_unit(kle_sm *sm)
{
    return (double)(next_random(sm) >> 11) * (1.0 / 9007199254740992.0);
}

static int64_t whole_seconds(int64_t ns)
{
    return ns >= 0 ? ns / KLE_NS_PER_SEC : -((-(ns + 1)) / KLE_NS_PER_SEC) - 1;
}

static size_t preferred_len(const kle_record *r)
{
    return kle_record_string_len(r->preferred_holder, r->preferred_holder_len);
}

static int preferred_is(const kle_record *r, const char *identity)
{
    size_t len = preferred_len(r);
    return len > 0 && len == strlen(identity) && memcmp(r->preferred_holder, identity, len) == 0;
}

static int preferred_is_other(const kle_record *r, const char *identity)
{
    return preferred_len(r) > 0 && !preferred_is(r, identity);
}

/* The fencing token after @p base: one more, saturating at the int32 maximum (R9). */
static int next_token(int base)
{
    return base < INT32_TOP ? (base < 0 ? 0 : base + 1) : INT32_TOP;
}

/* R6: holder "" with a lease of at most one second, as every release writes it. */
static int released(const kle_sm *sm, const kle_record *r)
{
    if (mut(sm, KLE_SM_MUT_R6_RELEASED))
        return kle_record_holder_len(r) == 0;
    return kle_record_holder_len(r) == 0 && r->lease_duration_seconds <= 1;
}

/* ---- actions ---------------------------------------------------------- */

static queued *push(kle_sm *sm, kle_sm_action_kind kind)
{
    if (sm->qlen == MAX_ACTIONS) {
        /* Cannot happen: every input queues a few at most and the runtime
         * drains them after each. Keep the newest (they carry the state). */
        sm->qhead = (uint8_t)((sm->qhead + 1) % MAX_ACTIONS);
        sm->qlen--;
    }
    queued *a = &sm->q[(sm->qhead + sm->qlen++) % MAX_ACTIONS];
    memset(a, 0, sizeof(*a));
    a->kind = (uint8_t)kind;
    return a;
}

static void count(uint32_t *c)
{
    if (*c < UINT32_MAX)
        ++*c;
}

static void note_call(kle_sm *sm, int rc)
{
    int answered = rc == 0 || rc == KLE_ENOTFOUND || rc == KLE_ECONFLICT || rc == KLE_EEXISTS;
    sm->stats.last_call_error = answered ? 0 : rc;
}

static void progress(kle_sm *sm)
{
    sm->stats.last_progress = sm->now;
}

/* The time a call may take: the call limit, cut at @p deadline. */
static int64_t budget(kle_sm *sm, int64_t deadline)
{
    int64_t b = sm->c.call_timeout;
    if (deadline != INT64_MAX && deadline - sm->now < b)
        b = deadline - sm->now;
    return b;
}

/*
 * Starts a lock call: with Q_RECORD it writes the record in wrec; with
 * Q_BECAME or Q_STOPPED it is the event of that name.
 */
static void call(kle_sm *sm, int step, kle_sm_call_kind kind, int flags, int64_t timeout)
{
    sm->step = (uint8_t)step;
    if (++sm->next_id == 0)
        sm->next_id = 1; /* 0 is no call. */
    sm->call_id = sm->next_id;
    queued *a = push(sm, KLE_SM_CALL);
    a->value = sm->call_id;
    a->call = (uint8_t)kind;
    a->time = timeout;
    a->flags = (uint8_t)(flags | (sm->phase == P_CAMPAIGN ? Q_CANCELLABLE : 0));
}

static int lease_valid(const kle_sm *sm)
{
    return sm->has_observed &&
           kle_sat__add(sm->observed_time,
                        (int64_t)sm->observed.lease_duration_seconds * KLE_NS_PER_SEC) > sm->now;
}

/* Reports a change of the observed holder (on_new_leader). */
static void report_transition(kle_sm *sm)
{
    if (!sm->has_observed)
        return; /* Nothing seen yet: "" would mean a release. */
    const char *h = rec_holder(&sm->observed);
    size_t len = sm->observed.hlen;
    if (sm->reported_set && buf_eq(&sm->reported, h, len))
        return;
    if (buf_set(&sm->reported, h, len) < 0)
        return;
    sm->reported_set = 1;
    push(sm, KLE_SM_NEW_LEADER);
}

/* ---- own writes (R1, R8) --------------------------------------------- */

/* The key of an own write (own_write). */
static uint64_t key_of(int lease_seconds, int transitions, int64_t acquire_ns, int64_t renew_ns)
{
    uint64_t h = fmix((uint64_t)(uint32_t)lease_seconds << 32 | (uint32_t)transitions);
    h = fmix(h ^ (uint64_t)whole_seconds(acquire_ns));
    return fmix(h ^ (uint64_t)whole_seconds(renew_ns));
}

static uint64_t write_key(const kle_record *r)
{
    return key_of(r->lease_duration_seconds, r->leader_transitions, r->acquire_time_ns,
                  r->renew_time_ns);
}

static uint64_t rec_key(const rec *r)
{
    return key_of(r->lease_duration_seconds, r->leader_transitions, r->acquire_time_ns,
                  r->renew_time_ns);
}

static int same_key(const own_write *w, uint64_t key)
{
    return w->used && w->key == key;
}

/*
 * R8 at the microsecond: a renewTime's microseconds within its second
 * (below 2^20), tagged with the own[] slot of its write's key (whose hash
 * holds the second): together they stand for the whole renewTime.
 */
#define MICRO_FREE UINT32_MAX

static uint32_t micro_tag(int slot, int64_t renew_ns)
{
    int64_t us = renew_ns / 1000 - whole_seconds(renew_ns) * 1000000;
    if (renew_ns < 0 && renew_ns % 1000)
        us -= 1; /* renew_ns / 1000 rounded towards zero. */
    return (uint32_t)slot << 20 | (uint32_t)us;
}

static void note_micros(kle_sm *sm, int slot, int64_t renew_ns)
{
    sm->own_us[sm->own_us_next] = micro_tag(slot, renew_ns);
    sm->own_us_next = (uint8_t)((sm->own_us_next + 1) % OWN_MICROS);
}

static int is_own_write(const kle_sm *sm, const kle_record *r)
{
    if (!kle_record_holder_is(r, sm->c.identity))
        return 0;
    /* R8: a record that carries sub-second times (a Lease) is ours only at
     * the microsecond: another replica under our identity writing in the
     * same second is not taken for us. A record of whole seconds (an
     * annotation) can tell no more. */
    int sub = r->renew_time_ns % KLE_NS_PER_SEC != 0;
    uint64_t key = write_key(r);
    for (int i = 0; i < OWN_WRITES; i++) {
        if (!same_key(&sm->own[i], key))
            continue;
        if (!sub)
            return 1;
        uint32_t tag = micro_tag(i, r->renew_time_ns);
        for (int j = 0; j < OWN_MICROS; j++)
            if (sm->own_us[j] == tag)
                return 1;
    }
    return 0;
}

/*
 * R1: notes a write about to be sent at @p now; returns the time its
 * success dates the term from: the send of the first write with the same
 * key (at whole seconds, the coarsest precision a record carries), which
 * may have left the same bytes that another replica dated the lease from.
 */
static int64_t note_writing(kle_sm *sm, const kle_record *r, int64_t now)
{
    sm->write_seq++;
    sm->writing_renew = r->renew_time_ns;
    sm->writing_transitions = r->leader_transitions;
    int64_t rs = whole_seconds(r->renew_time_ns);
    if (rs > sm->max_renew_s)
        sm->max_renew_s = rs;
    uint64_t key = write_key(r);
    for (int i = 0; i < OWN_WRITES; i++)
        if (same_key(&sm->own[i], key)) {
            sm->last_issued = (uint8_t)i;
            note_micros(sm, i, r->renew_time_ns);
            return sm->own[i].first_sent < now ? sm->own[i].first_sent : now;
        }
    int slot = sm->own_next;
    sm->last_issued = (uint8_t)slot;
    own_write *w = &sm->own[slot];
    sm->own_next = (uint8_t)((slot + 1) % OWN_WRITES);
    /* The slot's earlier key goes, and the microseconds noted with it. */
    for (int j = 0; j < OWN_MICROS; j++)
        if (sm->own_us[j] != MICRO_FREE && (int)(sm->own_us[j] >> 20) == slot)
            sm->own_us[j] = MICRO_FREE;
    w->used = 1;
    w->landed = 0;
    w->call_id = sm->next_id + 1 ? sm->next_id + 1 : 1; /* The id call() gives it next. */
    w->key = key;
    w->first_sent = now;
    note_micros(sm, slot, r->renew_time_ns);
    return now;
}

/* R1: the time a successful write of @p r sent at @p sent dates the term from. */
static int64_t dated_from(const kle_sm *sm, const kle_record *r, int64_t sent)
{
    if (mut(sm, KLE_SM_MUT_R1_FIRST_SEND))
        return sent;
    uint64_t key = write_key(r);
    for (int i = 0; i < OWN_WRITES; i++)
        if (same_key(&sm->own[i], key) && sm->own[i].first_sent < sent)
            return sm->own[i].first_sent;
    return sent;
}

/*
 * A write's answer: a success, or an outcome that leaves it unknown
 * (timeout, transport, server error), may have landed; a refusal did not,
 * and the key its call put in own[] goes (a record of the same key written
 * by someone else is then not taken for ours).
 */
static void write_answered(kle_sm *sm, uint64_t id, int rc, const kle_record *r)
{
    int refused = rc == KLE_ECONFLICT || rc == KLE_EEXISTS || rc == KLE_ENOTFOUND ||
                  rc == KLE_EFORBIDDEN || rc == KLE_EUNAUTHORIZED || rc == KLE_EUNPROCESSABLE ||
                  rc == KLE_EBADREQUEST || rc == KLE_ETOOMANYREQUESTS || rc == KLE_EINVAL ||
                  rc == KLE_ESTATE;
    /* A conflict may follow an attempt of the same update that landed: the
     * client sends a request again after a 401 (new credentials) or on a
     * new connection, and the second attempt meets the first's write (409).
     * An update of microseconds (a Lease) keeps its key then: R8 tells it
     * from another's at the microsecond. A record of whole seconds cannot
     * be told apart, and a refused write's key would make a foreign record
     * of the same second ours (F4): it goes, as after any other refusal. */
    int kept = rc == KLE_ECONFLICT && r->renew_time_ns % KLE_NS_PER_SEC != 0;
    uint64_t key = write_key(r);
    for (int i = 0; i < OWN_WRITES; i++)
        if (same_key(&sm->own[i], key)) {
            if (!refused)
                sm->own[i].landed = 1;
            else if (!kept && !sm->own[i].landed && sm->own[i].call_id == (uint32_t)id)
                sm->own[i].used = 0;
        }
}

/*
 * R1 (with L2): a write never repeats the bytes of an earlier write of this
 * elector other than the one just before it (same-second renewals): a
 * follower that missed the writes in between would take the repeat for a
 * touch of what it saw long ago. A wall clock stepped back would do it;
 * the renewTime then moves past every renewTime written (it is
 * informational: nobody dates a lease by it).
 */
static void prepare_write(kle_sm *sm)
{
    rec *r = &sm->wrec;
    if (mut(sm, KLE_SM_MUT_R1_FIRST_SEND))
        return;
    int fresh = r->acquire_time_ns == r->renew_time_ns;
    int64_t rs = whole_seconds(r->renew_time_ns);
    if (sm->max_renew_s && rs < sm->max_renew_s)
        r->renew_time_ns += (sm->max_renew_s - rs) * KLE_NS_PER_SEC;
    /* A record under our name that another wrote (a handover to us, a
     * previous process's): its bytes were dated by the others when it was
     * written, so no write of ours may repeat them; the renewTime moves
     * past its second (and so does every later one, max_renew_s). */
    const rec *o = &sm->observed;
    kle_record ov = rec_view(o);
    if (sm->has_observed && rec_holder_is(o, sm->c.identity) && !is_own_write(sm, &ov)) {
        int64_t os = whole_seconds(o->renew_time_ns), ws = whole_seconds(r->renew_time_ns);
        if (ws <= os)
            r->renew_time_ns += (os + 1 - ws) * KLE_NS_PER_SEC;
    }
    for (int guard = 0; guard <= OWN_WRITES; guard++) {
        int clash = 0;
        /* Same bytes as the write just before are a same-second renewal,
         * unless that one was sent a second or more ago: then the wall clock
         * went back (it counts as a clash too). */
        uint64_t key = rec_key(r);
        for (int i = 0; i < OWN_WRITES; i++)
            if (same_key(&sm->own[i], key) &&
                (i != sm->last_issued ||
                 kle_sat__add(sm->own[i].first_sent, RECORD_PRECISION) <= sm->now))
                clash = 1;
        if (fresh)
            r->acquire_time_ns = r->renew_time_ns;
        if (!clash)
            break;
        r->renew_time_ns += KLE_NS_PER_SEC;
    }
    if (fresh)
        r->acquire_time_ns = r->renew_time_ns;
}

static void note_max(kle_sm *sm, int transitions)
{
    if (!sm->seen_transitions || transitions > sm->max_transitions) {
        sm->max_transitions = transitions;
        sm->seen_transitions = 1;
    }
}

/*
 * R8: whose the newly observed record is: our own write; a handover to us
 * (holder and preferred holder name us); the coordinated controller's
 * choice; or another replica's under our identity, which is a foreign
 * lease. A second distinct such record, or one seen while leading, means
 * another replica writes under our identity.
 */
static void classify(kle_sm *sm)
{
    const kle_record ov = rec_view(&sm->observed), *r = &ov;
    note_max(sm, r->leader_transitions);
    if (!kle_record_holder_is(r, sm->c.identity)) {
        sm->observed_own = 0;
        return;
    }
    /* A handover names its holder as preferred holder too, and is a fresh
     * lease (acquireTime = renewTime): once renewed it is the new holder's
     * own, and a replica that shares its identity must not take it. */
    int handed_over = preferred_is(r, sm->c.identity) && r->acquire_time_ns == r->renew_time_ns;
    if (mut(sm, KLE_SM_MUT_R8_OWN_IDENTITY) || sm->c.coordinated || is_own_write(sm, r) ||
        handed_over) {
        sm->observed_own = 1;
        return;
    }
    sm->observed_own = 0;
    if (++sm->foreign_self > 1 || sm->phase == P_LEADING)
        sm->impostor = 1;
}

/*
 * R11: when the latest live lease of another holder seen expires by our
 * observation. A release or a lease handed to us (or the coordinated
 * controller's choice) ends it; our own record, adopted from a read (a
 * create or update whose answer was lost), does not: the other holder may
 * still be working when that record landed, if the object was deleted or
 * lost under it unseen.
 */
static void note_foreign(kle_sm *sm)
{
    const kle_record ov = rec_view(&sm->observed), *r = &ov;
    if (released(sm, r))
        sm->foreign_lease_until = 0;
    else if (!sm->observed_own)
        sm->foreign_lease_until =
            kle_sat__add(sm->observed_time, (int64_t)r->lease_duration_seconds * KLE_NS_PER_SEC);
    else if (!is_own_write(sm, r))
        sm->foreign_lease_until = 0;
}

/*
 * R4, L1: what a read or a watch event showed at `now`: a raw record that
 * differs from the last one seen resets the observed time; a new
 * resourceVersion with the same raw record (a touch, or a renewal within
 * the record's precision) counts as a renewal for at most RECORD_PRECISION
 * after the record last changed. Returns 1 when the raw record changed.
 */
static int observe(kle_sm *sm, const kle_lock_result *got)
{
    int changed = !sm->has_observed || !sm->raw.p || !buf_eq(&sm->raw, got->raw, got->raw_len);
    int touched = !changed && got->resource_version &&
                  !buf_eq(&sm->rv, got->resource_version, strlen(got->resource_version));
    if (changed) {
        if (rec_copy(&sm->observed, &got->record) < 0 ||
            buf_set(&sm->raw, got->raw ? got->raw : "", got->raw_len) < 0)
            return 0; /* Out of memory: the last observation stands. */
        sm->has_observed = 1;
        sm->seen_object = 1;
        sm->observed_time = sm->now;
        sm->raw_changed_time = sm->now;
        if (mut(sm, KLE_SM_MUT_R4_OBSERVE_LOCAL)) {
            /* Dated by the record's own renewTime on our wall clock. */
            int64_t age = sm->wall - got->record.renew_time_ns;
            sm->observed_time = sm->now - (age > 0 ? age : 0);
        }
        classify(sm);
    } else if (touched) {
        int64_t cap = kle_sat__add(sm->raw_changed_time, RECORD_PRECISION);
        int64_t t = sm->now < cap || mut(sm, KLE_SM_MUT_L1_TOUCH_CAP) ? sm->now : cap;
        if (t > sm->observed_time)
            sm->observed_time = t;
    }
    if (changed || touched) {
        const char *rv = got->resource_version ? got->resource_version : "";
        buf_set(&sm->rv, rv, strlen(rv));
        note_foreign(sm);
    }
    return changed;
}

/* Our own write succeeded: sent at @p sent, dated from @p dated (R1). */
static void observe_own_write(kle_sm *sm, const kle_record *r, int64_t sent, int64_t dated)
{
    if (rec_copy(&sm->observed, r) < 0)
        return;
    sm->has_observed = 1;
    sm->seen_object = 1;
    /* R5: the raw bytes and resourceVersion seen before belong to another
     * record: forget them, so that the next read replaces this record and
     * never keeps it beside someone else's bytes (a late answer to this
     * write can come after the watch showed a newer foreign record). */
    if (!mut(sm, KLE_SM_MUT_R5_FORGET_RAW)) {
        free(sm->raw.p);
        sm->raw.p = NULL;
        sm->raw.len = sm->raw.cap = 0;
        buf_set(&sm->rv, "", 0);
    }
    sm->observed_time = dated;
    sm->raw_changed_time = dated;
    sm->observed_own = kle_record_holder_is(r, sm->c.identity);
    sm->foreign_self = 0;
    note_max(sm, r->leader_transitions);
    sm->last_sent = sent;
    sm->last_dated = dated;
    sm->own_seq = sm->write_seq;
    sm->own_renew = r->renew_time_ns;
    sm->own_transitions = r->leader_transitions;
}

/* ---- the watch's bookkeeping ---------------------------------------- */

/*
 * What the stream has shown: resourceVersions with a hash of the bytes
 * seen with each (DELETED_HASH for a deletion). An event is a duplicate or
 * a stale re-delivery only when both match: a server restored without its
 * data gives old resourceVersions to new records, and ignoring those would
 * hide the holder's renewals (a follower would then date the lease from
 * its last read and take it early).
 */
#define DELETED_HASH UINT64_C(0x9e3779b97f4a7c15)

static uint64_t bytes_hash(const char *p, size_t len)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)p[i]) * UINT64_C(1099511628211);
    return h ^ len;
}

/* A resourceVersion with the hash of the bytes seen with it, as one hash (never 0: a free slot). */
static uint64_t seen_key(const char *rv, uint64_t hash)
{
    uint64_t k = fmix(bytes_hash(rv, strlen(rv)) ^ fmix(hash));
    return k ? k : 1;
}

static int recent_has(const kle_sm *sm, const char *rv, uint64_t hash)
{
    uint64_t k = seen_key(rv, hash);
    for (int i = 0; i < RECENT_RVS; i++)
        if (sm->recent[i] == k)
            return 1;
    return 0;
}

static void recent_add(kle_sm *sm, const char *rv, uint64_t hash)
{
    if (!rv || !*rv || recent_has(sm, rv, hash))
        return;
    sm->recent[sm->recent_next] = seen_key(rv, hash);
    sm->recent_next = (uint8_t)((sm->recent_next + 1) % RECENT_RVS);
}

static void stream_start(kle_sm *sm)
{
    if (sm->stream_active)
        count(&sm->stats.watch_restarts);
    else if (sm->stats.watch_events || sm->stats.watch_restarts)
        count(&sm->stats.watch_restarts);
    sm->stream_active = 1;
    sm->healthy = 0;
    sm->stream_own = 0;
    sm->has_awaited = 0;
    sm->watch_restart_at = INT64_MAX;
    push(sm, KLE_SM_WATCH_START);
}

/* The stream missed a change: restart it, and poll until it shows an event of its own. */
static void restart_stream(kle_sm *sm)
{
    KLE_LOG_V(2, "the watch of %s missed a change: restarting it", sm->c.name);
    sm->has_awaited = 0;
    sm->healthy = 0;
    sm->suspect = 1;
    stream_start(sm);
}

/* After the try's own GET: `changed`, the GET showed a record not seen before. */
static void follow_got(kle_sm *sm, int changed)
{
    if (!sm->c.watch)
        return;
    sm->last_get = sm->now;
    const char *rv = sm->rv.p ? sm->rv.p : "";
    uint64_t hash = sm->raw.p ? bytes_hash(sm->raw.p, sm->raw.len) : 0;
    int on_stream = *rv && recent_has(sm, rv, hash);
    recent_add(sm, rv, hash);
    if (changed && sm->healthy && sm->phase == P_CAMPAIGN && !on_stream && !sm->has_awaited) {
        /* The stream has not shown this change yet: it may be a moment
         * behind the GET, or it missed it. */
        if (*rv) {
            sm->awaited = bytes_hash(rv, strlen(rv));
            sm->has_awaited = 1;
            sm->awaited_by = kle_sat__add(sm->last_get, STREAM_LAG_NS);
        } else {
            restart_stream(sm);
        }
    }
}

/* ---- terms -------------------------------------------------------------- */

/* Ends the term now (idempotent); the work is told to stop. */
static void end_term(kle_sm *sm, int reason)
{
    if (sm->phase != P_LEADING && sm->phase != P_ENDING)
        return;
    if (!sm->end_reason || reason == END_LOST || reason == END_TAKEN || reason == END_IDENTITY)
        if (!sm->end_reason || sm->end_reason == END_STOP || sm->end_reason == END_HANDOVER)
            sm->end_reason = reason;
    if (reason == END_LOST || reason == END_TAKEN || reason == END_IDENTITY)
        sm->term_over = 1;
    if (!sm->end_sent) {
        sm->end_sent = 1;
        push(sm, KLE_SM_TERM_END);
    }
    sm->phase = P_ENDING;
}

/*
 * D1: a leader whose read (or stream) shows the lock held by another, or
 * released by someone else, ends its term at once: that write came after
 * its own. Returns 1 when it did.
 */
static int step_down_on_read(kle_sm *sm)
{
    if (mut(sm, KLE_SM_MUT_D1_STEP_DOWN_READ))
        return 0;
    if ((sm->phase != P_LEADING && sm->phase != P_ENDING) || sm->term_over || sm->observed_own)
        return 0;
    count(&sm->stats.stepdowns);
    end_term(sm, sm->impostor ? END_IDENTITY : END_TAKEN);
    return 1;
}

static void begin_closing(kle_sm *sm);

/*
 * The object was seen deleted (a NotFound, a DELETED event): counted (R7);
 * the live lease of another seen on it is kept (R11): a release on a later
 * object is its creator's, not that holder's.
 */
static void note_deletion(kle_sm *sm)
{
    if (sm->seen_object)
        sm->deletions++;
    if (sm->foreign_lease_until > sm->lost_lease_until)
        sm->lost_lease_until = sm->foreign_lease_until;
}

/*
 * A healthy stream showed every change up to now, the last deletion among
 * them (not a stream started after it, listing nothing): no leader unseen.
 */
static int stream_saw_all(const kle_sm *sm)
{
    return sm->c.watch && sm->healthy && !sm->suspect && sm->deletion_witnessed;
}

/* The term's work starts. */
static void begin_work(kle_sm *sm)
{
    sm->quarantined = 0;
    sm->quarantine_until = 0;
    queued *a = push(sm, KLE_SM_TERM_START);
    a->time = sm->lead_deadline;
    a->value = (uint32_t)sm->token;
    sm->work_running = 1;
    sm->became_event = 1;
}

/* The lease is won (a write answered in time): a term begins. */
static void term_start(kle_sm *sm)
{
    sm->phase = P_LEADING;
    sm->term_over = 0;
    sm->end_sent = 0;
    sm->end_reason = END_NONE;
    sm->handover = kle_record_holder_is(VIEW(&sm->observed), sm->c.identity) &&
                   preferred_is_other(VIEW(&sm->observed), sm->c.identity);
    sm->lead_deadline = kle_sat__add(sm->last_dated, sm->c.renew_deadline);
    if (!sm->handover)
        count(&sm->stats.acquisitions); /* A lease handed on at once is no term. */
    sm->token = sm->observed.leader_transitions;
    sm->stats.last_renew_wall = sm->own_renew;
    sm->round_active = 0;
    sm->quarantined = 0;
    progress(sm);
    if (sm->handover) {
        /* Won a lease that prefers another holder: hand it over without starting the work. */
        KLE_LOG_I("lease %s prefers another holder: handing it over without leading", sm->c.name);
        sm->term_over = 1;
        sm->phase = P_ENDING;
        begin_closing(sm);
        return;
    }
    if (sm->now >= sm->lead_deadline && !mut(sm, KLE_SM_MUT_D4_NO_LATE_START)) {
        /* D4: the deadline passed before the work could start: never start it. */
        KLE_LOG_W("leadership of %s ended before the leader's work could start", sm->c.name);
        sm->term_over = 1;
        sm->rc = KLE_ETIMEOUT;
        sm->release_anyway = 1;
        sm->phase = P_ENDING;
        begin_closing(sm);
        return;
    }
    /* R11: whichever way the term was won, the latest live lease of another
     * holder seen is waited out (won over it only when the object was
     * deleted or lost unseen: an update needs it expired). */
    int64_t foreign = sm->foreign_lease_until > sm->lost_lease_until ? sm->foreign_lease_until
                                                                     : sm->lost_lease_until;
    if (foreign > sm->quarantine_until && !mut(sm, KLE_SM_MUT_R11_NOTFOUND_WAIT))
        sm->quarantine_until = foreign;
    /* R7 for a create whose answer never came and that landed (the term
     * was won over its record): counted from its send. */
    if (sm->unknown_create_sent && sm->observed_own && !mut(sm, KLE_SM_MUT_R7_QUARANTINE) &&
        (sm->unknown_create_after_seen ||
         (sm->deletions != sm->unknown_create_deletions && !stream_saw_all(sm)))) {
        int64_t until = kle_sat__add(sm->unknown_create_sent, sm->c.renew_deadline);
        if (until > sm->quarantine_until)
            sm->quarantine_until = until;
    }
    sm->unknown_create_sent = 0;
    if (sm->quarantine_until && sm->now < sm->quarantine_until) {
        KLE_LOG_I("lock %s was created after a deletion: the work starts in %lld ms, when no "
                  "earlier holder's term can still run",
                  sm->c.name, (long long)((sm->quarantine_until - sm->now) / KLE_NS_PER_MS));
        sm->quarantined = 1;
        return;
    }
    begin_work(sm);
}

/* ---- the try (tryAcquireOrRenew) ----------------------------------------- */

static int new_record(kle_sm *sm)
{
    rec *w = &sm->wrec;
    if (rec_strings(w, sm->c.identity, strlen(sm->c.identity), NULL, 0, NULL, 0) < 0)
        return KLE_ENOMEM;
    w->lease_duration_seconds = sm->c.record_lease_seconds;
    w->acquire_time_ns = sm->wall;
    w->renew_time_ns = sm->wall;
    w->leader_transitions = 0;
    return 0;
}

/*
 * The record being written (under our identity) carries the observed
 * record's strategy, and its preferredHolder when renewing (cleared when
 * taking over).
 */
static int carry_foreign(kle_sm *sm, int renewing)
{
    const rec *o = &sm->observed;
    const char *pr = rec_preferred(o);
    size_t pl = o->plen;
    if (pr && !renewing) {
        pr = "";
        pl = 0;
    }
    return rec_strings(&sm->wrec, sm->c.identity, strlen(sm->c.identity), rec_strategy(o), o->slen,
                       pr, pl);
}

static void try_get(kle_sm *sm)
{
    call(sm, S_GET, KLE_SM_GET, 0, budget(sm, sm->call_deadline));
}

static void try_start(kle_sm *sm, int64_t deadline)
{
    sm->call_deadline = deadline;
    sm->write_attempted = 0;
    count(&sm->stats.tries);
    if (new_record(sm) < 0) {
        count(&sm->stats.failed_tries);
        return;
    }
    /* 1. Fast path: the leader updates optimistically over what it last saw. */
    if (sm->observed_own && lease_valid(sm)) {
        sm->wrec.acquire_time_ns = sm->observed.acquire_time_ns;
        sm->wrec.leader_transitions = sm->observed.leader_transitions;
        if (carry_foreign(sm, 1) == 0) {
            sm->write_attempted = 1;
            prepare_write(sm);
            note_writing(sm, VIEW(&sm->wrec), sm->now);
            call(sm, S_FAST, KLE_SM_UPDATE, Q_RECORD, budget(sm, deadline));
            return;
        }
    }
    /* 2. Obtain the record. */
    try_get(sm);
}

static void try_done(kle_sm *sm, int ok);

static void write_record(kle_sm *sm, int step, kle_sm_call_kind kind)
{
    sm->write_attempted = 1;
    prepare_write(sm);
    /* Noted before it is sent: the watch may show it before its answer comes. */
    note_writing(sm, VIEW(&sm->wrec), sm->now);
    call(sm, step, kind, Q_RECORD, budget(sm, sm->call_deadline));
}

static void on_get(kle_sm *sm, int rc, const kle_lock_result *got)
{
    if (rc == KLE_ENOTFOUND) {
        if (sm->c.coordinated) {
            KLE_LOG_V(4, "lease lock not found: %s (the coordinated election controller makes it)",
                      sm->c.name);
            try_done(sm, 0);
            return;
        }
        if (!sm->c.watch || !sm->healthy || sm->suspect)
            sm->deletion_witnessed = 0;
        note_deletion(sm);
        /* The stream's witness of a deletion speaks for the read its event
         * prompted, once: a stream gone silent since (a frozen connection
         * looks healthy) would hide a create and a deletion after it. */
        int saw_all = stream_saw_all(sm);
        sm->deletion_witnessed = 0;
        /* R11: a deletion ends no live lease this elector saw: wait it out
         * (for a follower whose healthy stream showed every change up to
         * the deletion; the others have R7's quarantine too). */
        int live = sm->has_observed && !released(sm, VIEW(&sm->observed)) && !sm->observed_own &&
                   lease_valid(sm) && !mut(sm, KLE_SM_MUT_R11_NOTFOUND_WAIT);
        if (live) {
            KLE_LOG_V(4, "lock %s is deleted, but the lease last seen has not yet expired",
                      sm->c.name);
            try_done(sm, 0);
            return;
        }
        /* D5: a leader whose lock is gone ends its term: whoever created the
         * lock meanwhile (and had it deleted again) may lead once its own
         * quarantine is over, and this leader never saw it. It may lead
         * again only through a create under R7. */
        if ((sm->phase == P_LEADING || sm->phase == P_ENDING) && !sm->term_over &&
            !mut(sm, KLE_SM_MUT_D5_DELETED_ENDS)) {
            KLE_LOG_I("lock %s was deleted under this leader: stopping leading", sm->c.name);
            count(&sm->stats.stepdowns);
            end_term(sm, END_TAKEN);
            try_done(sm, 0);
            return;
        }
        if (new_record(sm) < 0) {
            try_done(sm, 0);
            return;
        }
        /* R9: a re-created lock goes on from the highest token seen. */
        sm->wrec.leader_transitions = sm->seen_transitions && !mut(sm, KLE_SM_MUT_R9_TOKENS)
                                          ? next_token(sm->max_transitions)
                                          : 0;
        /* A follower whose healthy stream showed every change up to the
         * deletion knows no leader it has not seen: no quarantine. */
        sm->create_after_seen = sm->seen_object && !saw_all;
        sm->create_deletions = sm->deletions;
        write_record(sm, S_CREATE, KLE_SM_CREATE);
        return;
    }
    if (rc < 0) {
        KLE_LOG_E_LIMITED("error retrieving resource lock %s: %s", sm->c.name,
                          kle_error_last()->message);
        try_done(sm, 0);
        return;
    }
    /* 3. Note when it changed, on our clock (R4, L1). */
    int changed = observe(sm, got);
    follow_got(sm, changed);
    const kle_record *o = VIEW(&sm->observed);
    if (sm->impostor) {
        if (sm->phase == P_LEADING || sm->phase == P_ENDING)
            end_term(sm, END_IDENTITY);
        try_done(sm, 0);
        return;
    }
    if (step_down_on_read(sm)) {
        KLE_LOG_I("lock %s is held by \"%s\" now, not by this leader: stopping leading", sm->c.name,
                  kle_record_holder(o));
        try_done(sm, 0);
        return;
    }
    if (!released(sm, o) && lease_valid(sm) && !sm->observed_own) {
        KLE_LOG_V(4, "lock is held by %s and has not yet expired", kle_record_holder(o));
        try_done(sm, 0);
        return;
    }
    /* D3: a live lease reserved for another is theirs; coordinated: only the server picks. */
    int valid = lease_valid(sm), mine = sm->observed_own, may;
    if (sm->c.coordinated)
        may = mine && valid;
    else if (mine)
        may = 1;
    else if (!released(sm, o) && valid)
        may = 0;
    else
        may = !(valid && preferred_is_other(o, sm->c.identity)) || mut(sm, KLE_SM_MUT_D3_PREFERRED);
    if (!may) {
        KLE_LOG_V(4, "lock %s is not ours to take (%s)", sm->c.name,
                  sm->c.coordinated ? "coordinated: the server picks the holder"
                                    : "reserved for its preferred holder until it expires");
        try_done(sm, 0);
        return;
    }
    if (mine && preferred_is_other(o, sm->c.identity) && !sm->handover) {
        KLE_LOG_I("lock %s prefers holder %.*s: ending this term to hand over", sm->c.name,
                  (int)preferred_len(o), o->preferred_holder);
        sm->handover = 1;
        if (sm->phase == P_LEADING)
            end_term(sm, END_HANDOVER);
    }
    /* 4. Take it over, or renew it the slow way. L2: a fresh renewTime for
     * every write; R9: a new term's token above every token seen. */
    if (!mut(sm, KLE_SM_MUT_L2_FRESH_RENEW)) {
        sm->wrec.renew_time_ns = sm->wall;
        sm->wrec.acquire_time_ns = sm->wall;
    }
    int old = o->leader_transitions;
    int top = old > sm->max_transitions && !mut(sm, KLE_SM_MUT_R9_TOKENS) ? old
              : mut(sm, KLE_SM_MUT_R9_TOKENS)                             ? old
                                                                          : sm->max_transitions;
    if (mine && sm->c.coordinated && sm->phase == P_CAMPAIGN) {
        /* The server made us the holder without counting a transition. */
        sm->wrec.leader_transitions = next_token(top);
    } else if (mine) {
        sm->wrec.acquire_time_ns = o->acquire_time_ns;
        sm->wrec.leader_transitions = old;
        count(&sm->stats.slowpath_total);
    } else {
        sm->wrec.leader_transitions = next_token(top);
        if (top == INT32_TOP && !sm->saturation_logged) {
            sm->saturation_logged = 1;
            KLE_LOG_W("lock %s: leaderTransitions is at its maximum (2147483647): the fencing "
                      "token stays there and no longer increases",
                      sm->c.name);
        }
    }
    if (carry_foreign(sm, mine) < 0) {
        try_done(sm, 0);
        return;
    }
    write_record(sm, S_UPDATE, KLE_SM_UPDATE);
}

/* ---- scheduling ------------------------------------------------------------ */

/* CAMPAIGN: when the next try is due. */
static int64_t campaign_next(kle_sm *sm)
{
    if (sm->kick || sm->late_retry)
        return sm->now;
    int64_t until = sm->poll_until;
    if (sm->c.watch && sm->healthy && sm->has_observed && !sm->observed_own) {
        int64_t at = kle_sat__add(
            kle_sat__add(sm->observed_time,
                         (int64_t)sm->observed.lease_duration_seconds * KLE_NS_PER_SEC),
            sm->jitter);
        /* An attempt at or after this expiry already failed: retry as a poll would. */
        if (at <= sm->last_get)
            at = sm->poll_until;
        /* The safety GET: never a lease duration without a sign of life or a read. */
        int64_t last = sm->last_stream > sm->last_get ? sm->last_stream : sm->last_get;
        int64_t safety = kle_sat__add(last, sm->c.lease_duration / 2);
        until = at < safety ? at : safety;
    }
    if (sm->has_awaited && sm->awaited_by < until)
        until = sm->awaited_by;
    return until;
}

static void schedule_after_failure(kle_sm *sm)
{
    int64_t wait = sm->c.retry_period +
                   (int64_t)(random_unit(sm) * JITTER_FACTOR * (double)sm->c.retry_period);
    sm->poll_until = kle_sat__add(sm->now, wait);
    sm->jitter = (int64_t)(next_random(sm) % (uint64_t)TAKEOVER_JITTER_NS);
}

/* After a try's last answer. */
static void try_done(kle_sm *sm, int ok)
{
    sm->step = S_NONE;
    sm->call_id = 0;
    progress(sm);
    report_transition(sm);
    if (!ok)
        count(&sm->stats.failed_tries);
    if (sm->phase == P_CAMPAIGN) {
        if (ok) {
            /* An acquisition answered renew_deadline or more after it was
             * sent was over before it was known (R2): the lease is ours, so
             * try again at once (the fast path) before leading. */
            if (sm->now >= kle_sat__add(sm->last_dated, sm->c.renew_deadline) &&
                !mut(sm, KLE_SM_MUT_R2_LATE_ANSWER)) {
                KLE_LOG_W("acquired lease %s, but the answer came after the renew deadline: "
                          "trying again before leading",
                          sm->c.name);
                sm->late_retry = 1;
                return;
            }
            sm->late_retry = 0;
            if (sm->stop) {
                /* Stopped while the winning write was in flight: do not lead. */
                sm->phase = P_ENDING;
                sm->release_anyway = sm->c.release_on_cancel;
                begin_closing(sm);
                return;
            }
            KLE_LOG_I("successfully acquired lease %s", sm->c.name);
            term_start(sm);
            return;
        }
        KLE_LOG_V(4, "failed to acquire lease %s", sm->c.name);
        schedule_after_failure(sm);
        return;
    }
    if (sm->phase == P_LEADING || sm->phase == P_ENDING) {
        if (ok) {
            /* R2: an answer at or after the deadline extends nothing; an
             * ended term is never revived. */
            if (sm->term_over ||
                (sm->now >= sm->lead_deadline && !mut(sm, KLE_SM_MUT_R2_LATE_ANSWER))) {
                if (!sm->term_over) {
                    KLE_LOG_I("renewal of %s was answered after the renew deadline", sm->c.name);
                    end_term(sm, END_LOST);
                }
                sm->round_active = 0;
                return;
            }
            int64_t d = kle_sat__add(sm->last_dated, sm->c.renew_deadline);
            sm->stats.last_renew_wall = sm->own_renew;
            if (d > sm->lead_deadline) {
                sm->lead_deadline = d;
                push(sm, KLE_SM_TERM_EXTEND)->time = d;
            }
            sm->round_active = 0;
            KLE_LOG_V(5, "successfully renewed lease %s", sm->c.name);
            return;
        }
        /* The round retries every retry period, cut at the deadline. */
        sm->round_next = kle_sat__add(sm->now, sm->c.retry_period);
    }
}

static void own_write_ok(kle_sm *sm, int64_t sent, int64_t dated)
{
    observe_own_write(sm, VIEW(&sm->wrec), sent, dated);
    try_done(sm, 1);
}

/* ---- release and handover ---------------------------------------------- */

static void begin_closing(kle_sm *sm)
{
    sm->phase = P_CLOSING;
    sm->attempts = 0;
    sm->end_by = kle_sat__add(sm->now, sm->c.renew_deadline);
    sm->step = S_NONE;
}

static void closing_next(kle_sm *sm);

static void finish(kle_sm *sm)
{
    sm->phase = P_DONE;
    if (sm->stream_active) {
        sm->stream_active = 0;
        sm->healthy = 0;
        push(sm, KLE_SM_WATCH_STOP);
    }
    push(sm, KLE_SM_DONE)->value = (uint32_t)sm->rc;
}

static int release_wanted(kle_sm *sm)
{
    return sm->release_anyway || (sm->c.release_on_cancel && sm->end_reason != END_NONE) ||
           (sm->c.release_on_cancel && sm->stop);
}

static void closing_next(kle_sm *sm)
{
    if (sm->step != S_NONE)
        return;
    int handing = sm->handover;
    int releasing = !handing && release_wanted(sm) && sm->observed_own;
    if ((handing || releasing) && sm->attempts < END_ATTEMPTS && sm->now < sm->end_by &&
        sm->attempts >= 0) {
        sm->attempts++;
        call(sm, handing ? S_HO_GET : S_REL_GET, KLE_SM_GET, 0, budget(sm, sm->end_by));
        return;
    }
    if ((handing || releasing) && sm->attempts >= END_ATTEMPTS)
        KLE_LOG_E("Failed to %s lock %s: gave up after repeated conflicts",
                  handing ? "hand over" : "release", sm->c.name);
    sm->attempts = -1; /* done with it */
    sm->handover = 0;
    sm->release_anyway = 0;
    if (sm->stopped_event) {
        sm->stopped_event = 0;
        call(sm, S_EVENT, KLE_SM_EVENT, Q_STOPPED,
             sm->c.call_timeout < KLE_NS_PER_SEC ? sm->c.call_timeout : KLE_NS_PER_SEC);
        return;
    }
    finish(sm);
}

static void on_end_get(kle_sm *sm, int rc, const kle_lock_result *got)
{
    int handing = sm->step == S_HO_GET;
    int lost = sm->end_reason == END_LOST;
    if (rc < 0) {
        if (handing)
            KLE_LOG_E("Failed to hand over lock %s: %s", sm->c.name, kle_error_last()->message);
        else
            kle_log__write(lost ? KLE_LOG_WARNING : KLE_LOG_ERROR, 0, __FILE__, __LINE__,
                           "Failed to release lock %s%s: %s", sm->c.name,
                           lost ? " (best effort: leadership was already lost)" : "",
                           kle_error_last()->message);
        sm->step = S_NONE;
        sm->attempts = -1;
        sm->handover = 0;
        sm->release_anyway = 0;
        closing_next(sm);
        return;
    }
    /* Observed like any read (the lock's next update is conditional on it),
     * and ours only if it is one of our writes: a record under our name that
     * another replica wrote is not ours to release or hand over (R8). */
    observe(sm, got);
    if (!kle_record_holder_is(&got->record, sm->c.identity) || !sm->observed_own) {
        KLE_LOG_V(2, "not %s %s: no longer the holder", handing ? "handing over" : "releasing",
                  sm->c.name);
        sm->step = S_NONE;
        sm->attempts = -1;
        sm->handover = 0;
        sm->release_anyway = 0;
        closing_next(sm);
        return;
    }
    rec *w = &sm->wrec;
    const kle_record *cur = &got->record;
    size_t plen = preferred_len(cur);
    const char *h = "", *pr = NULL;
    size_t hl = 0, pl = 0;
    if (handing && plen > 0) {
        /* The preferred holder in as holder, a fresh lease, one more
         * transition; the preference names it (the mark of a handover). */
        h = pr = cur->preferred_holder;
        hl = pl = plen;
    } else if (handing) {
        pr = "";
    }
    if (rec_strings(w, h, hl, cur->strategy,
                    kle_record_string_len(cur->strategy, cur->strategy_len), pr, pl) < 0)
        goto nomem;
    if (handing && plen > 0) {
        w->lease_duration_seconds = sm->c.record_lease_seconds;
        w->leader_transitions = next_token(cur->leader_transitions);
    } else {
        w->lease_duration_seconds = 1;
        w->leader_transitions = cur->leader_transitions;
    }
    w->acquire_time_ns = sm->wall;
    w->renew_time_ns = sm->wall;
    call(sm, handing ? S_HO_UPDATE : S_REL_UPDATE, KLE_SM_UPDATE, Q_RECORD, budget(sm, sm->end_by));
    return;
nomem:
    sm->step = S_NONE;
    sm->attempts = -1;
    sm->handover = 0;
    sm->release_anyway = 0;
    closing_next(sm);
}

static void on_end_update(kle_sm *sm, int rc, int64_t sent)
{
    int handing = sm->step == S_HO_UPDATE;
    int lost = sm->end_reason == END_LOST;
    sm->step = S_NONE;
    if (rc == 0) {
        observe_own_write(sm, VIEW(&sm->wrec), sent, sent);
        if (handing) {
            KLE_LOG_I("handed lease %s over to \"%s\"", sm->c.name,
                      kle_record_holder(VIEW(&sm->wrec)));
        } else {
            count(&sm->stats.releases);
            KLE_LOG_I("released lease %s", sm->c.name);
        }
        sm->attempts = -1;
        sm->handover = 0;
        sm->release_anyway = 0;
    } else if (rc == KLE_ECONFLICT) {
        KLE_LOG_V(2, "conflict %s %s, retrying", handing ? "handing over" : "releasing",
                  sm->c.name);
    } else {
        if (handing)
            KLE_LOG_E("Failed to hand over lock %s: %s", sm->c.name, kle_error_last()->message);
        else
            kle_log__write(lost ? KLE_LOG_WARNING : KLE_LOG_ERROR, 0, __FILE__, __LINE__,
                           "Failed to release lock %s%s: %s", sm->c.name,
                           lost ? " (best effort: leadership was already lost)" : "",
                           kle_error_last()->message);
        sm->attempts = -1;
        sm->handover = 0;
        sm->release_anyway = 0;
    }
    closing_next(sm);
}

/* ---- the driver ----------------------------------------------------------- */

static void drive(kle_sm *sm);

static void set_time(kle_sm *sm, int64_t now, int64_t wall)
{
    if (now > sm->now)
        sm->now = now;
    sm->wall = wall;
}

/* LEADING/ENDING: the term at the deadline, stop and handover, rounds. */
static void drive_term(kle_sm *sm)
{
    /* R3: the term ends at its deadline, whatever a call is doing. */
    if (!sm->term_over && sm->now >= sm->lead_deadline && !mut(sm, KLE_SM_MUT_R3_DEADLINE_END)) {
        KLE_LOG_I("failed to renew lease %s: timed out waiting for the condition", sm->c.name);
        end_term(sm, END_LOST);
    }
    if (sm->impostor && !sm->term_over)
        end_term(sm, END_IDENTITY);
    if ((sm->stop || sm->handover) && !sm->end_sent) {
        KLE_LOG_V(2, "%s while leading %s: waiting for the leader's work to end",
                  sm->stop ? "stop requested" : "end of term", sm->c.name);
        end_term(sm, sm->stop ? END_STOP : END_HANDOVER);
    }
    if (sm->quarantined && !sm->end_sent && !sm->term_over && sm->step == S_NONE &&
        sm->now >= sm->quarantine_until)
        begin_work(sm);
    int wait_work = (sm->work_running || (sm->quarantined && !sm->end_sent)) &&
                    !(mut(sm, KLE_SM_MUT_R10_WORK_FIRST) &&
                      (sm->end_reason == END_STOP || sm->end_reason == END_HANDOVER));
    if (wait_work || sm->step != S_NONE) {
        /* Renewals go on while the work winds down after a stop or a
         * handover (its work stays covered), not after a loss. */
        if (sm->step == S_NONE && !sm->term_over) {
            if (!sm->round_active && sm->now >= kle_sat__add(sm->last_sent, sm->c.retry_period)) {
                sm->round_active = 1;
                sm->round_next = sm->now;
            }
            if (sm->round_active && sm->now >= sm->round_next && sm->now < sm->lead_deadline)
                try_start(sm, sm->lead_deadline);
        }
        if (sm->step == S_NONE && sm->became_event && !sm->term_over && sm->work_running) {
            sm->became_event = 0;
            int64_t t = sm->c.call_timeout < KLE_NS_PER_SEC ? sm->c.call_timeout : KLE_NS_PER_SEC;
            if (t > sm->c.retry_period / 2)
                t = sm->c.retry_period / 2;
            call(sm, S_EVENT, KLE_SM_EVENT, Q_BECAME, t);
        }
        return;
    }
    /* The work has returned and no call is in flight: after the work, the
     * end of the term (R10). */
    if (sm->phase == P_LEADING) {
        /* Cannot be: the work ends only after TERM_END. */
        end_term(sm, END_STOP);
    }
    if (sm->end_reason == END_LOST && !sm->rc)
        sm->rc = KLE_ETIMEOUT;
    if (sm->end_reason == END_LOST)
        count(&sm->stats.losses);
    if (sm->end_reason == END_TAKEN && !sm->rc)
        sm->rc = KLE_ECONFLICT;
    if (sm->end_reason == END_IDENTITY)
        sm->rc = KLE_EIDENTITY;
    sm->stopped_event = !sm->quarantined;
    sm->quarantined = 0;
    sm->quarantine_until = 0;
    sm->term_over = 1;
    progress(sm);
    begin_closing(sm);
}

static void drive(kle_sm *sm)
{
    for (int guard = 0; guard < 16; guard++) {
        int phase = sm->phase, step = sm->step;
        switch (sm->phase) {
        case P_CAMPAIGN:
            if (sm->step != S_NONE)
                break;
            if (sm->impostor) {
                sm->rc = KLE_EIDENTITY;
                finish(sm);
                break;
            }
            if (sm->stop) {
                if (sm->write_attempted && sm->c.release_on_cancel) {
                    sm->phase = P_ENDING;
                    sm->release_anyway = 1;
                    sm->observed_own = sm->observed_own || is_own_write(sm, VIEW(&sm->wrec));
                    begin_closing(sm);
                } else {
                    finish(sm);
                }
                break;
            }
            if (sm->has_awaited && sm->now >= sm->awaited_by)
                restart_stream(sm);
            if (sm->now >= campaign_next(sm)) {
                sm->kick = 0;
                sm->late_retry = 0;
                if (sm->c.watch)
                    sm->last_get = sm->now; /* The attempt reads the lock. */
                try_start(sm, INT64_MAX);
            }
            break;
        case P_LEADING:
        case P_ENDING:
            drive_term(sm);
            break;
        case P_CLOSING:
            closing_next(sm);
            break;
        default:
            break;
        }
        /* The watch restarts after its back-off. */
        if (sm->c.watch && !sm->stream_active && !sm->unavailable && sm->phase != P_DONE &&
            sm->phase != P_IDLE && sm->now >= sm->watch_restart_at)
            stream_start(sm);
        if (sm->phase == phase && sm->step == step)
            break;
    }
}

/* ---- inputs ----------------------------------------------------------------- */

kle_sm *kle_sm_new(const kle_sm_config *config)
{
    kle_sm *sm = calloc(1, sizeof(*sm));
    if (!sm)
        return NULL;
    sm->c.identity = config->identity;
    sm->c.name = config->name;
    sm->c.lease_duration = config->lease_duration;
    sm->c.renew_deadline = config->renew_deadline;
    sm->c.retry_period = config->retry_period;
    sm->c.call_timeout = config->call_timeout;
    sm->c.record_lease_seconds = config->record_lease_seconds;
    sm->c.mutations = config->mutations;
    sm->c.release_on_cancel = config->release_on_cancel != 0;
    sm->c.coordinated = config->coordinated != 0;
    sm->c.watch = config->watch != 0;
    sm->rng = config->seed ? config->seed : 1;
    sm->phase = P_IDLE;
    sm->watch_restart_at = INT64_MAX;
    for (int i = 0; i < OWN_MICROS; i++)
        sm->own_us[i] = MICRO_FREE;
    return sm;
}

void kle_sm_free(kle_sm *sm)
{
    if (!sm)
        return;
    rec_free(&sm->observed);
    rec_free(&sm->wrec);
    buf_free(&sm->raw);
    buf_free(&sm->rv);
    buf_free(&sm->reported);
    free(sm);
}

size_t kle_sm_fixed_size(void)
{
    return sizeof(kle_sm);
}

size_t kle_sm_string_bytes(const kle_sm *sm)
{
    return rec_bytes(&sm->observed) + rec_bytes(&sm->wrec) + sm->raw.cap + sm->rv.cap +
           sm->reported.cap;
}

void kle_sm_start(kle_sm *sm, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    sm->qhead = sm->qlen = 0;
    sm->rc = 0;
    sm->impostor = 0;
    sm->foreign_self = 0;
    sm->kick = 0;
    sm->late_retry = 0;
    sm->step = S_NONE;
    sm->call_id = 0;
    sm->write_attempted = 0;
    sm->handover = 0;
    sm->release_anyway = 0;
    sm->term_over = 0;
    sm->end_reason = END_NONE;
    sm->work_running = 0;
    sm->poll_until = now;
    sm->jitter = 0;
    sm->has_awaited = 0;
    sm->healthy = 0;
    sm->suspect = 0;
    progress(sm);
    if (sm->stop) {
        sm->phase = P_CAMPAIGN;
        finish(sm);
        return;
    }
    sm->phase = P_CAMPAIGN;
    KLE_LOG_I("attempting to acquire leader lease %s...", sm->c.name);
    if (sm->c.watch && !sm->unavailable)
        stream_start(sm);
    drive(sm);
}

void kle_sm_stop(kle_sm *sm, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    sm->stop = 1;
    drive(sm);
}

void kle_sm_tick(kle_sm *sm, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    drive(sm);
}

void kle_sm_work_done(kle_sm *sm, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    sm->work_running = 0;
    if (sm->phase == P_LEADING)
        end_term(sm, END_STOP);
    progress(sm);
    drive(sm);
}

void kle_sm_answer(kle_sm *sm, uint64_t id, int rc, int64_t sent, const kle_lock_result *result,
                   int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    if (id == 0 || id != sm->call_id)
        return; /* Not the call in flight. */
    sm->call_id = 0;
    int step = sm->step;
    if (step != S_EVENT)
        note_call(sm, rc);
    switch (step) {
    case S_FAST:
        write_answered(sm, id, rc, VIEW(&sm->wrec));
        if (rc == 0) {
            own_write_ok(sm, sent, dated_from(sm, VIEW(&sm->wrec), sent));
            break;
        }
        KLE_LOG_E("Failed to update lock %s optimistically: %s, falling back to slow path",
                  sm->c.name, kle_error_last()->message);
        try_get(sm);
        break;
    case S_GET:
        on_get(sm, rc, rc == 0 ? result : NULL);
        break;
    case S_CREATE:
    case S_UPDATE: {
        write_answered(sm, id, rc, VIEW(&sm->wrec));
        if (rc == KLE_EEXISTS)
            sm->seen_object = 1; /* Lost the race to create it: it exists. */
        /* R7: a create after a deletion of an object this elector saw may
         * race a leader it never saw (a poll missed its record): whatever
         * that leader wrote landed before the deletion, before our read, so
         * its term ends within a renew deadline of our send. */
        if (rc == 0 && step == S_CREATE && (sm->phase == P_CAMPAIGN || sm->quarantined)) {
            /* Judged again at the answer: the create may have been sent
             * before this elector saw a deletion, and land after it. Counted
             * from this create: one before it may have been deleted under a
             * leader this elector never saw. (R11 is applied at the term's
             * start, for every way of winning it.) */
            if ((sm->create_after_seen ||
                 (sm->deletions != sm->create_deletions && !stream_saw_all(sm))) &&
                !mut(sm, KLE_SM_MUT_R7_QUARANTINE)) {
                int64_t until = kle_sat__add(sent, sm->c.renew_deadline);
                if (until > sm->quarantine_until)
                    sm->quarantine_until = until;
            }
        }
        if (step == S_CREATE && rc != 0 && rc != KLE_EEXISTS) {
            /* It may have landed: a term won over its record later starts
             * as this create's would have. */
            sm->unknown_create_sent = sent;
            sm->unknown_create_after_seen = sm->create_after_seen;
            sm->unknown_create_deletions = sm->create_deletions;
        }
        if (rc == 0) {
            own_write_ok(sm, sent, dated_from(sm, VIEW(&sm->wrec), sent));
            break;
        }
        if (step == S_CREATE && rc == KLE_EEXISTS)
            /* Another replica created it first: a normal race. */
            KLE_LOG_V(2, "lock %s was created by another replica first: %s", sm->c.name,
                      kle_error_last()->message);
        else if (step == S_CREATE)
            KLE_LOG_E("error initially creating leader election record %s: %s", sm->c.name,
                      kle_error_last()->message);
        else
            KLE_LOG_E("Failed to update lock %s: %s", sm->c.name, kle_error_last()->message);
        try_done(sm, 0);
        break;
    }
    case S_EVENT:
        sm->step = S_NONE;
        if (rc < 0)
            KLE_LOG_V(2, "could not record an event on %s: %s", sm->c.name,
                      kle_error_last()->message);
        break;
    case S_REL_GET:
    case S_HO_GET:
        on_end_get(sm, rc, rc == 0 ? result : NULL);
        break;
    case S_REL_UPDATE:
    case S_HO_UPDATE:
        on_end_update(sm, rc, sent);
        break;
    default:
        break;
    }
    drive(sm);
}

/* A foreign holder (or a deletion) on the stream after our last successful
 * write was seen on the same stream is newer than that write (D2). */
static int step_down_if_newer(kle_sm *sm)
{
    if ((sm->phase != P_LEADING && sm->phase != P_ENDING) || sm->term_over)
        return 0;
    if (!mut(sm, KLE_SM_MUT_D2_STREAM_ORDER) &&
        (sm->stream_own == 0 || sm->stream_own != sm->own_seq))
        return 0;
    count(&sm->stats.stepdowns);
    end_term(sm, END_TAKEN);
    return 1;
}

/* The same instant, at the precision the record carries (µs or whole seconds). */
static int same_time(int64_t seen, int64_t written)
{
    if (seen % KLE_NS_PER_SEC == 0 && written / KLE_NS_PER_SEC == seen / KLE_NS_PER_SEC)
        return 1;
    return seen / 1000 == written / 1000;
}

void kle_sm_watch_event(kle_sm *sm, const kle_lock_event *ev, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    if (!sm->stream_active || sm->phase == P_DONE || sm->phase == P_IDLE)
        return;
    int stepped = 0;
    count(&sm->stats.watch_events);
    sm->last_stream = sm->now;
    const char *rv = ev->resource_version;
    if (sm->has_awaited && rv && sm->awaited == bytes_hash(rv, strlen(rv)))
        sm->has_awaited = 0; /* The stream was only behind the GET. */
    if (!ev->listed)
        sm->suspect = 0;
    if (!sm->suspect && !sm->healthy)
        sm->healthy = 1;
    switch (ev->type) {
    case KLE_LOCK_EVENT_BOOKMARK:
        break; /* Proof of life only: it never touches the observed record or its expiry. */
    case KLE_LOCK_EVENT_ERROR:
        sm->kick = 1; /* An unreadable record: let a GET report it. */
        break;
    case KLE_LOCK_EVENT_DELETED:
        /* Witnessed as it happened, or found gone by a stream's listing. */
        if (sm->seen_object)
            sm->deletion_witnessed = !ev->listed && !sm->suspect;
        note_deletion(sm);
        stepped = step_down_if_newer(sm);
        /* R11: a deletion ends no live lease this elector saw. */
        if (!sm->has_observed || released(sm, VIEW(&sm->observed)) || sm->observed_own ||
            !lease_valid(sm) || mut(sm, KLE_SM_MUT_R11_NOTFOUND_WAIT))
            sm->kick = 1;
        break;
    case KLE_LOCK_EVENT_RECORD: {
        const kle_lock_result *r = ev->result;
        if (!r)
            break;
        /* The object exists again: the deletion witnessed is not the latest. */
        sm->deletion_witnessed = 0;
        if (rv && recent_has(sm, rv, bytes_hash(r->raw ? r->raw : "", r->raw_len))) {
            KLE_LOG_V(5, "watch of %s: ignoring resourceVersion %s, seen before", sm->c.name, rv);
            break; /* A duplicate, or a stale re-delivery of an older version. */
        }
        if (is_own_write(sm, &r->record)) {
            /* Our own write: note how far the stream has come. */
            if (r->record.leader_transitions == sm->writing_transitions &&
                same_time(r->record.renew_time_ns, sm->writing_renew))
                sm->stream_own = sm->write_seq;
            else if (r->record.leader_transitions == sm->own_transitions &&
                     same_time(r->record.renew_time_ns, sm->own_renew))
                sm->stream_own = sm->own_seq;
            if (sm->phase == P_LEADING && !sm->handover &&
                preferred_is_other(&r->record, sm->c.identity)) {
                /* Another identity is preferred: end the term now. */
                KLE_LOG_I("the watch of %s shows another preferred holder: ending this term to "
                          "hand over",
                          sm->c.name);
                sm->handover = 1;
                end_term(sm, END_HANDOVER);
            }
            break;
        }
        stepped = step_down_if_newer(sm);
        int changed = observe(sm, r);
        if (sm->impostor && (sm->phase == P_LEADING || sm->phase == P_ENDING) && !sm->term_over) {
            count(&sm->stats.stepdowns);
            end_term(sm, END_IDENTITY);
            stepped = 1;
        }
        if (changed) {
            if (released(sm, VIEW(&sm->observed)))
                sm->kick = 1; /* Released: try at once. */
            else if (sm->phase == P_CAMPAIGN && sm->observed_own)
                sm->kick = 1; /* Written in as holder (a handover, the election controller). */
            else if (sm->impostor)
                sm->kick = 1;
        }
        break;
    }
    }
    if (rv && ev->type != KLE_LOCK_EVENT_BOOKMARK && ev->type != KLE_LOCK_EVENT_ERROR)
        recent_add(sm, rv,
                   ev->type == KLE_LOCK_EVENT_DELETED || !ev->result
                       ? DELETED_HASH
                       : bytes_hash(ev->result->raw ? ev->result->raw : "", ev->result->raw_len));
    if (stepped)
        KLE_LOG_I("the watch of %s shows another holder after this leader's last write: "
                  "stopping leading now",
                  sm->c.name);
    report_transition(sm);
    drive(sm);
}

void kle_sm_watch_ended(kle_sm *sm, int rc, int64_t now, int64_t wall)
{
    set_time(sm, now, wall);
    if (!sm->stream_active)
        return;
    sm->stream_active = 0;
    sm->healthy = 0;
    sm->stream_own = 0;
    sm->deletion_witnessed = 0;
    if (rc == KLE_EFORBIDDEN || rc == KLE_ESTATE) {
        KLE_LOG_W("cannot watch lock %s: %s; following it by polling every retry period "
                  "(grant the watch verb: deploy/rbac.yaml)",
                  sm->c.name, kle_error_last()->message);
        sm->unavailable = 1;
    } else {
        KLE_LOG_V(2, "watch of %s ended (%s): polling until it is back", sm->c.name,
                  rc < 0 ? kle_error_last()->message : "no error");
        int64_t backoff = sm->c.retry_period < KLE_NS_PER_SEC ? sm->c.retry_period : KLE_NS_PER_SEC;
        sm->watch_restart_at = kle_sat__add(sm->now, backoff);
    }
    drive(sm);
}

/* ---- outputs and questions ------------------------------------------------ */

int kle_sm_next(kle_sm *sm, kle_sm_action *out)
{
    if (!sm->qlen) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    const queued *q = &sm->q[sm->qhead];
    memset(out, 0, sizeof(*out));
    out->kind = (kle_sm_action_kind)q->kind;
    switch (out->kind) {
    case KLE_SM_CALL:
        out->call.id = q->value;
        out->call.kind = (kle_sm_call_kind)q->call;
        out->call.has_record = (q->flags & Q_RECORD) != 0;
        if (out->call.has_record)
            out->call.record = rec_view(&sm->wrec);
        out->call.message = q->flags & Q_BECAME    ? "became leader"
                            : q->flags & Q_STOPPED ? "stopped leading"
                                                   : NULL;
        out->call.timeout = q->time;
        out->call.cancellable = (q->flags & Q_CANCELLABLE) != 0;
        break;
    case KLE_SM_TERM_START:
        out->token = (int)q->value;
        out->deadline = q->time;
        break;
    case KLE_SM_TERM_EXTEND:
        out->deadline = q->time;
        break;
    case KLE_SM_NEW_LEADER:
        out->holder = sm->reported.p ? sm->reported.p : "";
        out->holder_len = sm->reported.len;
        break;
    case KLE_SM_DONE:
        out->rc = (int)q->value;
        break;
    default:
        break;
    }
    sm->qhead = (uint8_t)((sm->qhead + 1) % MAX_ACTIONS);
    sm->qlen--;
    return 1;
}

int64_t kle_sm_wake_at(const kle_sm *sm)
{
    int64_t at = INT64_MAX;
#define EARLIER(t)                                                                                 \
    do {                                                                                           \
        int64_t t_ = (t);                                                                          \
        if (t_ < at)                                                                               \
            at = t_;                                                                               \
    } while (0)
    switch (sm->phase) {
    case P_CAMPAIGN:
        if (sm->step == S_NONE)
            EARLIER(campaign_next((kle_sm *)sm));
        break;
    case P_LEADING:
    case P_ENDING:
        if (!sm->term_over) {
            EARLIER(sm->lead_deadline);
            if (sm->quarantined)
                EARLIER(sm->quarantine_until);
            if (sm->step == S_NONE && (sm->work_running || sm->quarantined)) {
                if (sm->round_active)
                    EARLIER(sm->round_next < sm->lead_deadline ? sm->round_next
                                                               : sm->lead_deadline);
                else
                    EARLIER(kle_sat__add(sm->last_sent, sm->c.retry_period));
            }
        }
        break;
    default:
        break;
    }
    if (sm->c.watch && !sm->stream_active && !sm->unavailable && sm->phase != P_DONE &&
        sm->phase != P_IDLE)
        EARLIER(sm->watch_restart_at);
#undef EARLIER
    return at;
}

int kle_sm_running(const kle_sm *sm)
{
    return sm->phase != P_IDLE && sm->phase != P_DONE;
}

int kle_sm_leading(const kle_sm *sm, int64_t now)
{
    /* After a stop or a handover the work winds down under renewals: still leading. */
    return (sm->phase == P_LEADING || sm->phase == P_ENDING) && sm->work_running &&
           !sm->term_over && now < sm->lead_deadline;
}

int64_t kle_sm_deadline(const kle_sm *sm)
{
    return sm->lead_deadline;
}

int kle_sm_observed(const kle_sm *sm, kle_record *out, int64_t *observed_at)
{
    if (observed_at)
        *observed_at = sm->observed_time;
    if (out && sm->has_observed)
        *out = rec_view(&sm->observed);
    return sm->has_observed;
}

int kle_sm_observed_is_own(const kle_sm *sm)
{
    return sm->has_observed && sm->observed_own;
}

void kle_sm_get_stats(const kle_sm *sm, kle_sm_stats *out)
{
    const counters *c = &sm->stats;
    memset(out, 0, sizeof(*out));
    out->tries = c->tries;
    out->failed_tries = c->failed_tries;
    out->acquisitions = c->acquisitions;
    out->losses = c->losses;
    out->releases = c->releases;
    out->slowpath_total = c->slowpath_total;
    out->watch_events = c->watch_events;
    out->watch_restarts = c->watch_restarts;
    out->stepdowns = c->stepdowns;
    out->last_progress = c->last_progress;
    out->token = sm->token;
    out->last_renew_wall = c->last_renew_wall;
    out->last_call_error = c->last_call_error;
    out->watching = sm->healthy;
}

const char *kle_sm_phase_name(const kle_sm *sm)
{
    return phase_names[sm->phase];
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h;
}

static uint64_t mix_bytes(uint64_t h, const char *p, size_t len)
{
    return mix(h, bytes_hash(p, len));
}

/* A time relative to now, clamped so that far futures hash alike. */
static uint64_t rel(int64_t t, int64_t now)
{
    if (t == INT64_MAX || t == 0)
        return (uint64_t)t;
    int64_t d = t - now;
    if (d > KLE_SEC(3600))
        d = KLE_SEC(3600);
    if (d < -KLE_SEC(3600))
        d = -KLE_SEC(3600);
    return (uint64_t)d;
}

static uint64_t mix_buf(uint64_t h, const buf *b)
{
    return b->p ? mix_bytes(h, b->p, b->len) : mix(h, UINT64_C(0xb0f));
}

static uint64_t mix_rec(uint64_t h, const rec *r)
{
    h = r->s ? mix_bytes(h, r->s, r->hlen) : mix(h, UINT64_C(0xb0f));
    h = mix(h, (uint64_t)(r->has_strategy | r->has_preferred << 1));
    if (r->has_strategy)
        h = mix_bytes(h, rec_strategy(r), r->slen);
    if (r->has_preferred)
        h = mix_bytes(h, rec_preferred(r), r->plen);
    h = mix(h, (uint64_t)r->lease_duration_seconds);
    h = mix(h, (uint64_t)r->acquire_time_ns);
    h = mix(h, (uint64_t)r->renew_time_ns);
    return mix(h, (uint64_t)r->leader_transitions);
}

/* The rest of the state: what kle_sm_state_hash's first part leaves out. */
static uint64_t hash_rest(const kle_sm *sm, int64_t now, uint64_t h)
{
    h = mix(h, sm->rng);
    h = mix(h, (uint64_t)sm->rc);
    h = mix(h, (uint64_t)(sm->end_sent | sm->release_anyway << 1 | sm->became_event << 2 |
                          sm->stopped_event << 3 | sm->write_attempted << 4 |
                          sm->saturation_logged << 5 | sm->seen_transitions << 6 |
                          sm->reported_set << 7 | sm->suspect << 8 | sm->unavailable << 9 |
                          sm->has_awaited << 10));
    h = mix(h, (uint64_t)sm->foreign_self);
    h = mix(h, (uint64_t)(sm->seen_object | sm->create_after_seen << 1 | sm->quarantined << 2 |
                          sm->unknown_create_after_seen << 3 | sm->deletion_witnessed << 4));
    h = mix(h, sm->quarantine_until > now ? rel(sm->quarantine_until, now) : 0);
    h = mix(h, sm->foreign_lease_until > now ? rel(sm->foreign_lease_until, now) : 0);
    h = mix(h, sm->lost_lease_until > now ? rel(sm->lost_lease_until, now) : 0);
    h = mix(h, rel(sm->unknown_create_sent, now));
    /* The deletion counter only by how it relates to the creates'. */
    h = mix(h, (uint64_t)(sm->deletions - sm->create_deletions) << 32 |
                   (uint32_t)(sm->deletions - sm->unknown_create_deletions));
    h = mix(h, (uint64_t)sm->attempts);
    h = mix(h, rel(sm->end_by, now));
    h = mix(h, rel(sm->call_deadline, now));
    h = mix(h, rel(sm->last_stream, now));
    h = mix(h, rel(sm->last_get, now));
    h = mix(h, (uint64_t)sm->jitter);
    h = mix(h, rel(sm->watch_restart_at, now));
    h = mix(h, rel(sm->awaited_by, now));
    h = mix(h, (uint64_t)sm->writing_renew);
    h = mix(h, (uint64_t)sm->writing_transitions);
    h = mix(h, (uint64_t)sm->own_renew);
    h = mix(h, (uint64_t)sm->own_transitions);
    /* The write counters only by how they relate. */
    h = mix(h, (uint64_t)(sm->write_seq - sm->own_seq));
    h = mix(h, (uint64_t)(sm->stream_own == 0               ? 0
                          : sm->stream_own == sm->own_seq   ? 1
                          : sm->stream_own == sm->write_seq ? 2
                                                            : 3));
    h = mix(h, (uint64_t)sm->own_next);
    for (int i = 0; i < OWN_MICROS; i++)
        h = mix(h, (uint64_t)sm->own_us[(sm->own_us_next + i) % OWN_MICROS]);
    for (int i = 0; i < OWN_WRITES; i++) {
        const own_write *w = &sm->own[i];
        if (!w->used)
            continue;
        h = mix(h, (uint64_t)i | (uint64_t)w->landed << 8);
        h = mix(h, w->key);
        h = mix(h, rel(w->first_sent, now));
    }
    if (sm->has_observed)
        h = mix_rec(h, &sm->observed);
    h = mix_rec(h, &sm->wrec);
    h = mix_buf(h, &sm->rv);
    if (sm->reported_set)
        h = mix_buf(h, &sm->reported);
    if (sm->has_awaited)
        h = mix(h, sm->awaited);
    h = mix(h, (uint64_t)sm->recent_next);
    for (int i = 0; i < RECENT_RVS; i++)
        h = mix(h, sm->recent[i]);
    h = mix(h, (uint64_t)sm->qlen);
    return h;
}

uint64_t kle_sm_state_hash(const kle_sm *sm, int64_t now)
{
    uint64_t h = 0;
    h = mix(h, (uint64_t)sm->phase);
    h = mix(h, (uint64_t)sm->step);
    h = mix(h,
            (uint64_t)(sm->stop | sm->term_over << 1 | sm->end_sent << 2 | sm->work_running << 3 |
                       sm->handover << 4 | sm->impostor << 5 | sm->kick << 6 |
                       sm->round_active << 7 | sm->healthy << 8 | sm->stream_active << 9 |
                       sm->observed_own << 10 | sm->has_observed << 11 | sm->late_retry << 12));
    h = mix(h, (uint64_t)sm->end_reason);
    h = mix(h, rel(sm->lead_deadline, now));
    h = mix(h, rel(sm->observed_time, now));
    h = mix(h, rel(sm->raw_changed_time, now));
    h = mix(h, rel(sm->last_sent, now));
    h = mix(h, rel(sm->last_dated, now));
    h = mix(h, rel(sm->poll_until, now));
    h = mix(h, rel(sm->round_next, now));
    h = mix(h, (uint64_t)sm->max_transitions);
    h = mix(h, (uint64_t)sm->token);
    if (sm->has_observed) {
        h = mix_bytes(h, rec_holder(&sm->observed), sm->observed.hlen);
        h = mix(h, (uint64_t)sm->observed.leader_transitions);
        h = mix(h, (uint64_t)sm->observed.lease_duration_seconds);
        h = mix(h, (uint64_t)sm->observed.renew_time_ns);
    }
    if (sm->raw.p)
        h = mix_bytes(h, sm->raw.p, sm->raw.len);
    return hash_rest(sm, now, h);
}

static int clone_bytes(char **dst, const char *src, uint32_t cap)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = malloc(cap);
    if (!*dst)
        return KLE_ENOMEM;
    memcpy(*dst, src, cap);
    return 0;
}

kle_sm *kle_sm_clone(const kle_sm *src)
{
    kle_sm *sm = malloc(sizeof(*sm));
    if (!sm)
        return NULL;
    *sm = *src;
    char **dst[] = {&sm->observed.s, &sm->wrec.s, &sm->raw.p, &sm->rv.p, &sm->reported.p};
    const char *from[] = {src->observed.s, src->wrec.s, src->raw.p, src->rv.p, src->reported.p};
    const uint32_t caps[] = {src->observed.cap, src->wrec.cap, src->raw.cap, src->rv.cap,
                             src->reported.cap};
    int failed = 0;
    for (size_t i = 0; i < sizeof(dst) / sizeof(dst[0]); i++)
        failed |= clone_bytes(dst[i], from[i], caps[i]) < 0;
    if (failed) {
        kle_sm_free(sm);
        return NULL;
    }
    return sm;
}
