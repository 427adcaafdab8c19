/*
 * The deterministic simulation of the election, and its search.
 *
 * WHAT IT MODELS
 *
 * N state machines (src/election/sm.h, 2 to 5) each with its own clocks, one
 * model of the API server's object, the network between them, the leader's
 * work, and faults. One scheduler, one seed, no threads, no sleeps: a run
 * is a sequence of steps and every step is a choice among the options the
 * world offers at that point (which event comes next, what happens to a
 * call, how a stream delays an event, which fault strikes). The same
 * choices give the same run, step for step.
 *
 * - The server: one object (a record, its raw bytes, a resourceVersion
 *   counter) with create / get / update-conditional-on-resourceVersion /
 *   delete as the fake lock (src/testing/fake_lock.c) and the API have them:
 *   create of an existing object is AlreadyExists, an update without a
 *   read is refused, an update of a missing object is NotFound, of a
 *   changed one Conflict; a record out of range is refused. Times are
 *   stored at the record's precision (µs for a Lease, whole seconds for
 *   an annotation record) and the raw bytes are the fake lock's JSON
 *   rendering at that precision. Each elector's client remembers the
 *   resourceVersion of its last successful read or write; its updates are
 *   conditional on it (taken when the request is sent). Deletion gives a
 *   new resourceVersion; a server that loses its state forgets the object
 *   and restarts its counter (old resourceVersions come back), and ends
 *   every stream.
 * - Watch streams: one per watching elector, FIFO; WATCH_START lists the
 *   current state first (listed), then every change is queued with its
 *   resourceVersion. Faults: events delayed (a delayed event holds back
 *   the ones behind it), the stream silenced while open, ended (transport
 *   error, or 403: poll for good), 410 Gone (re-list), bookmarks (the
 *   server's rv, never the object's), duplicates, stale re-deliveries of
 *   the previous version.
 * - Clocks: elector i's monotonic time is off_i + t × (1 + r_i) with
 *   |r_i| ≤ rate_ppm (default 10,000 ppm = 1 %, 20× the 500 ppm NTP lets
 *   a clock drift), t the global time; its wall time is an epoch + t +
 *   skew_i (|skew| ≤ 500 ms) + the wall steps it has had (each at most
 *   wall_step, default 5 s, either way). The monotonic clocks never step.
 * - Calls: a CALL action sends a request at the elector's local time;
 *   its fate is a choice: applied (or read) after a delay and answered
 *   after another, applied with the answer lost, applied and answered
 *   5xx, refused (409, 5xx, 429, 403, 404), applied after the caller's
 *   timeout, or never delivered. The caller sees the answer if it comes
 *   before the call's timeout, else a timeout at the timeout; a late
 *   answer is dropped (as the runtime's transports do).
 * - The work: TERM_START starts it; TERM_END tells it to stop; it returns
 *   (kle_sm_work_done) after its wind-down (prompt: 1 ms; slow: a chosen
 *   time), but never later than the term's deadline (the leading handle
 *   ends there: the work honours it once told). A work that is never told
 *   runs on: the machine must say TERM_END by the deadline.
 * - A paused elector (GC, SIGSTOP) gets none of its inputs (answers,
 *   events, ticks, the work's return) until the pause ends, and its work
 *   is frozen with it; what was due is then delivered in any order (the
 *   runtime's loop finds the timer and the sockets ready together). A
 *   whole machine paused WITH its clock (a VM whose monotonic clock does
 *   not count the pause) is out of scope: such a process resumes believing
 *   no time passed, which no rule of a single elector can detect; the
 *   fencing token (kle_leading_transitions) is what protects the resource
 *   then, and docs/architecture.md says so.
 * - Stops: kle_sm_stop, the run ends, a new process (a fresh machine, the
 *   same identity) starts after a delay. A run that ends otherwise
 *   campaigns again with the same machine (as `kle run` does), except
 *   after KLE_EIDENTITY (it exits).
 * - Hand edits (kubectl edit): holder "" keeping the lease (not a
 *   release), holder another identity, holder another elector's identity,
 *   leaderTransitions 2147483647, times far in the past and in the future,
 *   a touch (new resourceVersion, same record), preferredHolder set to
 *   another elector (kle transfer). Not modelled: a hand-written release
 *   (holder "" and a lease of 1 s, by someone who is not the holder) or
 *   handover (holder and preferredHolder both naming another elector):
 *   each is byte for byte what the real one writes, so a follower may
 *   take over at once while the holder still leads; no rule of an elector
 *   can tell them apart.
 * - Coordinated mode is left out: there the server's coordinated-election
 *   controller picks the holder, and this model has no controller.
 *   Its liveness bound is the controller's: a holder is picked when the
 *   lease expires (LeaseDuration after the holder's last renewal, as the
 *   controller sees it) plus the controller's reconcile, and the picked
 *   elector leads within one RetryPeriod + 2.2 × RetryPeriod of seeing
 *   its name (a read, or at once on its stream).
 *
 * THE INVARIANTS, checked after every step
 *
 * C1  At most one elector's term is live: its work started (TERM_START)
 *     and not yet told to end (TERM_END), at a time before its deadline.
 * C2  Stronger: at most one work runs at all (started, not returned: a
 *     work winding down counts) before its deadline.
 * C3  No term's work runs past its own deadline: the machine says
 *     TERM_END by the deadline (checked once global time is past it and
 *     past the end of any pause of that elector); a work never starts at
 *     or after its deadline (TERM_START), and a deadline that has passed
 *     never moves (TERM_EXTEND after it is a revival).
 * C4  Fencing tokens strictly increase at every change of holder: a new
 *     term's token is above the last term's, equal only when the same
 *     identity wins its own lease again (leaderTransitions counts changes
 *     of holder, as client-go's does) or at 2147483647 (the counter
 *     saturates). Outside the rules, and counted, not failed: a lock
 *     re-created (after a deletion or a lost server) by an elector that
 *     never saw the last token.
 * C5  Liveness (swarm runs, after the faults stop): some elector leads by
 *
 *       B = min over electors e that may lead of
 *           G_e( max(o_e + L_e, q_e) ) + (2.2 × RP) × (1 + ρ/(1 − ρ)) + 4λ + J
 *
 *     where o_e is when e (by its monotonic clock) first saw the record it
 *     holds as last observed and L_e that record's leaseDurationSeconds
 *     (the LeaseDuration of the last record it saw), q_e = e's clock at
 *     the start of the quiet phase + the call timeout (a call sent before
 *     may still take its whole timeout), G_e maps e's clock to global
 *     time, ρ the rate bound, λ one network leg (1 ms), J the 25 ms
 *     takeover jitter of a watching follower. Derivation: once faults
 *     stop, the record e last saw either is the server's record, or e's
 *     next read shows a newer one (someone wrote: it renewed, took over,
 *     released or handed over, and a write that won leads). A follower
 *     tries again at most RP × (1 + 1.2 × rand) < 2.2 × RP after a failed
 *     try (polling), or at the observed expiry + J (watching, healthy
 *     stream; else it polls); the first try at or after o_e + L_e reads
 *     (2λ) the same record, finds it expired and writes (2λ), and wins
 *     unless another elector won first. A record e holds itself and that
 *     is still valid is renewed on its next try, earlier. Local durations
 *     become global ones at most × 1/(1 − ρ). If e has not yet seen the
 *     server's record (or there is none), o_e + L_e is replaced by the
 *     time of its next read q_e + 2.2 × RP plus that record's lease.
 *
 * THE SEARCH
 *
 * (a) Exhaustive (sim_exhaustive): a depth-first search over every option
 * at every step, up to a depth of choice points (steps with more than one
 * option) and a budget of faulty choices per path, states hashed
 * (kle_sm_state_hash of each machine, the server, the clients, the
 * pending messages, the works, the clocks, the time) so that each state is
 * expanded once at its shallowest depth. Time moves only from one event
 * to the next; every delay a choice sets is one of a few classes, measured
 * from the request's send:
 *
 *   prompt       1 ms: well within the call timeout;
 *   > 1 s        1 s + 1 ms, when that is still within the timeout: past
 *                the record's coarsest precision and the touch cap (a
 *                rewrite more than a second after its first send, the
 *                lost-answer scenario);
 *   before T     the call's timeout T − 2 ms (answered just before it);
 *   after T      T + 1 ms (applied after the caller gave up);
 *   past RD      RenewDeadline + 1 ms after the send (after the writer's
 *                term is over);
 *   past LD      LeaseDuration + 1 ms after the send (after a follower
 *                may have taken over).
 *
 * Why these are enough: a machine compares times only with its own
 * thresholds, and those are the call's timeout (the budget cut at the
 * term's deadline included: an answer is in time or it is not), one
 * second (RECORD_PRECISION: the touch cap and whole-second records), the
 * renew deadline (a term's end, a late acquisition) and the lease (an
 * expiry). The server and the other electors see only the order in which
 * requests land. A delay between two thresholds is equivalent, for every
 * rule, to any other delay between the same thresholds, except for the
 * order in which it lands among other electors' events; those orders the
 * classes reach only in part (a landing "between a competitor's read and
 * its write" is reached when one of the classes falls there), which is
 * what the swarm's continuous delays cover.
 *
 * (b) Swarm (sim_swarm): each run derives its own config and fault mix
 * from its seed (timings, electors, poll/watch, record precision, which
 * fault kinds and how often), then takes random options. A failure prints
 * the seed and the shortest trace the shrinker finds.
 *
 * Traces: "<config>|key=label;key=label;..." lists the choices that were
 * not the default; every other decision takes its default (the earliest
 * event, the prompt answer, no fault). sim_replay runs one.
 */
#include "sim.h"

#include "election/sm.h"
#include "kle/errors.h"
#include "kle/lock.h"
#include "kle/record.h"
#include "kle/sys/errors.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LAMBDA          KLE_MS(1)
#define MAX_ITEMS       256
#define MAX_WORKS       12
#define MAX_DEC         24
#define MAX_OPTS        96
#define STRN            32
#define WALL_EPOCH      (INT64_C(1767225600) * KLE_NS_PER_SEC) /* 2026-01-01T00:00:00Z */
#define INT32_TOP       2147483647
#define TAKEOVER_JITTER KLE_MS(25)
#define MAX_SKEW        KLE_MS(500)
#define SAME_TIME_STEPS 20000
/* C6: more calls than a try, its fallback, a release's attempts and an event in a window. */
#define STORM_CALLS  16
#define STORM_WINDOW KLE_MS(100)

static const char *const ids[SIM_MAX_ELECTORS] = {"e0", "e1", "e2", "e3", "e4"};
static const char lock_name[] = "sim/lock";

/* ---- the model's state (plain data: a world is copied with memcpy) ---- */

typedef struct srec {
    char holder[STRN];
    char preferred[STRN];
    uint8_t holder_len, preferred_len, has_preferred;
    int32_t lease_s, transitions;
    int64_t acquire, renew;
} srec;

typedef struct server {
    int exists;
    srec rec;
    uint64_t rv;
    uint32_t epoch;
    int prev_exists;
    srec prev;
    uint64_t prev_rv;
    uint64_t bookmarks;
    int64_t changed_at;   /* global time of the last change */
    uint32_t incarnation; /* creates applied so far: which object this is */
    int32_t inc_base;     /* the highest token its creator had seen when it sent the create (-1) */
    int inc_creator;      /* who created it */
    int inc_blind;        /* its creator knew of no object then (no record, no EEXISTS, no 409) */
} server;

enum item_kind {
    IT_REQ = 1, /* a request on its way to the server */
    IT_ANS,     /* an answer on its way back */
    IT_TO,      /* a call's timeout */
    IT_WEV,     /* a stream's event */
    IT_WEND,    /* a stream's end */
    IT_WD,      /* a work returns */
    IT_RERUN,   /* the same machine campaigns again */
    IT_RESTART, /* a stopped elector's new process starts */
    IT_FAULTGEN,
    IT_QUIET
};
static const char *const item_names[] = {"?",  "req",   "ans",     "to",       "wev",  "wend!",
                                         "wd", "rerun", "restart", "faultgen", "quiet"};

enum outcome { OUT_ANSWER = 0, OUT_LOST, OUT_ERR, OUT_REFUSE };

typedef struct item {
    uint8_t kind, e, ckind, outcome, type, listed, exists, has_exp;
    int32_t rc;
    uint32_t inc, gen;
    uint64_t call, seq, rv, exp_rv;
    int64_t due, orig, sent, ans_delay;
    int32_t work;
    uint32_t
        uid; /* IT_REQ: the object an update is for (its metadata.uid); IT_ANS: the one written */
    int32_t base;  /* IT_REQ: the highest token its sender had seen when it sent it (-1: none) */
    int32_t blind; /* IT_REQ: its sender knew of no object when it sent it (knew_object) */
    srec rec;
} item;

enum status { ST_RUN = 0, ST_WAIT, ST_GONE };

typedef struct elector {
    kle_sm *sm;
    const char *id;
    uint32_t inc;
    int status;
    int stopping;
    int64_t off, ppm, skew, step;
    int64_t pause_until, resumed;
    /* the client */
    int has_rv;
    uint64_t rv;
    uint32_t uid,
        exp_uid; /* the cached object's metadata.uid (server.incarnation), and the call's */
    /* the call in flight */
    uint64_t call;
    int ckind;
    int64_t sent, timeout;
    srec crec;
    int has_crec;
    int has_exp;
    uint64_t exp;
    /* the stream */
    int watch, open, silent;
    uint32_t gen;
    uint64_t wseq;
    int64_t last_wdue;
    /* the term */
    int work; /* slot in wk, -1 */
    uint64_t terms;
    int max_seen, seen_any;
    int max_other, seen_other; /* the same over records it did not write itself */
    uint32_t applied_inc;      /* the object its last applied write went to, and that object's */
    int32_t applied_base;      /* creator's knowledge (server.inc_base) */
    int applied_blind;         /* that object is its own blind create (server.inc_blind) */
    int knew_object;  /* Since its start: saw a record, or was told one exists (EEXISTS, 409). */
    int knew_foreign; /* Since its start: saw another's record, or was told of one (EEXISTS, 409).
                       */
    uint64_t jitter_seed;
    int64_t ticked_wake, ticked_at; /* the last tick: the wake time it answered, and when */
    int64_t burst_start;            /* C6: calls since then */
    int burst;
} elector;

typedef struct work {
    int used;
    uint8_t e;
    uint32_t inc;
    int id;
    int told;
    int64_t deadline, wind, told_g, started_g;
    int token;
    int blind;    /* Its term was won by a blind create (outside the rules, see C1). */
    uint32_t obj; /* The object incarnation its term was won on (applied_inc). */
    int excused;  /* Counted once in blind_create_notes. */
} work;

enum dec_kind { D_FATE = 1, D_WORK, D_WEV, D_FAULTGEN };

typedef struct decision {
    int kind;
    int e;
    uint32_t inc;
    uint64_t ref; /* call id, term number, item seq, fault number */
    uint32_t gen;
} decision;

/* One option. */
enum opt_kind { O_PICK = 1, O_FATE, O_WORK, O_WEV, O_FAULT, O_NOFAULT };
enum fault_kind {
    FK_PAUSE = 1,
    FK_WALL,
    FK_DELETE,
    FK_LOSS,
    FK_EDIT,
    FK_TOUCH,
    FK_TRANSFER,
    FK_STOP,
    FK_WEND,
    FK_WSILENCE,
    FK_WGONE,
    FK_BOOKMARK,
    FK_WDUP,
    FK_WSTALE
};
enum edit_kind { ED_EMPTY = 0, ED_OTHER, ED_ELECTOR, ED_TOP, ED_PAST, ED_FUTURE, ED_N };

typedef struct opt {
    int kind;
    int e;
    int sub; /* PICK: item index, -1 tick; FATE: outcome; FAULT: fault kind */
    int arg; /* FAULT: edit kind, target elector */
    int64_t a, b;
    int rc;
    int benign;
} opt;

struct sim {
    sim_config c;
    int64_t t;
    uint64_t steps, seq;
    int64_t wall0;
    server s;
    elector e[SIM_MAX_ELECTORS];
    item it[MAX_ITEMS];
    int nit;
    work wk[MAX_WORKS];
    int next_work_id;
    decision d[MAX_DEC];
    int nd;
    int64_t key_t;
    int key_k;
    int faults_used;
    uint64_t fault_no;
    uint64_t rng;
    /* checks */
    int has_token, last_token;
    const char *last_token_id;
    uint32_t last_token_inc; /* the object the last term was on (server.incarnation) */
    int violated;
    char msg[512];
    int quiet;
    int64_t quiet_start;
    int quiet_led;
    int same_time;
    int64_t same_time_t;
    sim_stats st;
    FILE *log;
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t hash64(uint64_t a, uint64_t b)
{
    uint64_t s = a * UINT64_C(0x9e3779b97f4a7c15) ^ b;
    return splitmix(&s);
}

static int64_t rnd_range(uint64_t *s, int64_t lo, int64_t hi)
{
    if (hi <= lo)
        return lo;
    return lo + (int64_t)(splitmix(s) % (uint64_t)(hi - lo));
}

static uint64_t mixh(uint64_t h, uint64_t v)
{
    return h ^ (v + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2));
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t x = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        x = (x ^ b[i]) * UINT64_C(1099511628211);
    return mixh(h, x);
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

double sim_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- clocks ------------------------------------------------------------ */

static int64_t mono_of(const elector *e, int64_t t)
{
    return e->off + t + (int64_t)(((__int128)t * e->ppm) / 1000000);
}

/* The first global time at which e's monotonic clock reads @p m. */
static int64_t g_of(const elector *e, int64_t m)
{
    if (m >= INT64_MAX / 4)
        return INT64_MAX;
    if (m <= e->off)
        return 0;
    int64_t t = (int64_t)(((__int128)(m - e->off) * 1000000) / (1000000 + e->ppm));
    if (t < 0)
        t = 0;
    while (mono_of(e, t) < m)
        t++;
    while (t > 0 && mono_of(e, t - 1) >= m)
        t--;
    return t;
}

static int64_t wall_of(const sim *w, const elector *e, int64_t t)
{
    return w->wall0 + t + e->skew + e->step;
}

static int64_t now_of(const sim *w, int i)
{
    return mono_of(&w->e[i], w->t);
}

/* ---- records ------------------------------------------------------------ */

static void srec_set_holder(srec *r, const char *s, size_t len)
{
    if (len >= STRN)
        len = STRN - 1;
    memcpy(r->holder, s, len);
    r->holder[len] = '\0';
    r->holder_len = (uint8_t)len;
}

static void srec_set_preferred(srec *r, const char *s, size_t len)
{
    if (!s) {
        r->has_preferred = 0;
        r->preferred_len = 0;
        r->preferred[0] = '\0';
        return;
    }
    if (len >= STRN)
        len = STRN - 1;
    memcpy(r->preferred, s, len);
    r->preferred[len] = '\0';
    r->preferred_len = (uint8_t)len;
    r->has_preferred = 1;
}

static void srec_from(srec *r, const kle_record *k)
{
    memset(r, 0, sizeof(*r));
    srec_set_holder(r, kle_record_holder(k), kle_record_holder_len(k));
    if (k->preferred_holder)
        srec_set_preferred(r, k->preferred_holder,
                           kle_record_string_len(k->preferred_holder, k->preferred_holder_len));
    r->lease_s = k->lease_duration_seconds;
    r->transitions = k->leader_transitions;
    r->acquire = k->acquire_time_ns;
    r->renew = k->renew_time_ns;
}

static void srec_view(const srec *r, kle_record *k)
{
    memset(k, 0, sizeof(*k));
    k->version = KLE_RECORD_VERSION;
    k->holder_identity = (char *)r->holder;
    k->holder_identity_len = r->holder_len;
    k->lease_duration_seconds = r->lease_s;
    k->acquire_time_ns = r->acquire;
    k->renew_time_ns = r->renew;
    k->leader_transitions = r->transitions;
    k->preferred_holder = r->has_preferred ? (char *)r->preferred : NULL;
    k->preferred_holder_len = r->has_preferred ? r->preferred_len : 0;
}

static int srec_is(const srec *r, const char *id)
{
    size_t n = strlen(id);
    return r->holder_len == n && memcmp(r->holder, id, n) == 0;
}

/* The raw bytes as the fake lock renders them, at the record's precision. */
static size_t render_raw(char *buf, size_t cap, const srec *r, int digits)
{
    char acquire[48] = "null", renew[48] = "null", at[40], rt[40];
    if (r->acquire && kle_time_format(at, sizeof(at), r->acquire, digits) > 0)
        snprintf(acquire, sizeof(acquire), "\"%s\"", at);
    if (r->renew && kle_time_format(rt, sizeof(rt), r->renew, digits) > 0)
        snprintf(renew, sizeof(renew), "\"%s\"", rt);
    size_t n = (size_t)snprintf(buf, cap, "{\"holderIdentity\":\"");
    for (size_t i = 0; i < r->holder_len && n + 8 < cap; i++) {
        unsigned char ch = (unsigned char)r->holder[i];
        if (ch == '"' || ch == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", ch);
        } else {
            buf[n++] = (char)ch;
        }
    }
    n += (size_t)snprintf(buf + n, cap - n,
                          "\",\"leaseDurationSeconds\":%d,\"acquireTime\":%s,\"renewTime\":%s,"
                          "\"leaderTransitions\":%d}",
                          r->lease_s, acquire, renew, r->transitions);
    return n < cap ? n : cap - 1;
}

static int64_t truncate_time(const sim *w, int64_t ns)
{
    int64_t unit = w->c.whole_seconds ? KLE_NS_PER_SEC : KLE_NS_PER_US;
    return ns - ns % unit;
}

/* ---- items ---------------------------------------------------------------- */

static item *item_add(sim *w, int kind, int e, int64_t due)
{
    if (w->nit == MAX_ITEMS) {
        if (!w->violated) {
            w->violated = 1;
            snprintf(w->msg, sizeof(w->msg), "model: more than %d pending messages", MAX_ITEMS);
        }
        return &w->it[MAX_ITEMS - 1];
    }
    item *it = &w->it[w->nit++];
    memset(it, 0, sizeof(*it));
    it->kind = (uint8_t)kind;
    it->e = (uint8_t)e;
    it->inc = e >= 0 ? w->e[e].inc : 0;
    it->due = due < w->t ? w->t : due;
    it->orig = it->due;
    it->seq = ++w->seq;
    it->work = -1;
    return it;
}

static void item_del(sim *w, int i)
{
    w->it[i] = w->it[--w->nit];
}

static int item_find_seq(const sim *w, uint64_t seq)
{
    for (int i = 0; i < w->nit; i++)
        if (w->it[i].seq == seq)
            return i;
    return -1;
}

/* Items addressed to an elector wait while it is paused. */
static int64_t eff_due(const sim *w, const item *it)
{
    switch (it->kind) {
    case IT_ANS:
    case IT_TO:
    case IT_WEV:
    case IT_WEND:
    case IT_WD:
    case IT_RERUN: {
        int64_t p = w->e[it->e].pause_until;
        return it->due > p ? it->due : p;
    }
    default:
        return it->due;
    }
}

static void drop_stream_items(sim *w, int e)
{
    for (int i = w->nit - 1; i >= 0; i--)
        if ((w->it[i].kind == IT_WEV || w->it[i].kind == IT_WEND) && w->it[i].e == e)
            item_del(w, i);
}

/* ---- decisions -------------------------------------------------------------- */

static void decide(sim *w, int kind, int e, uint64_t ref, uint32_t gen)
{
    if (w->nd == MAX_DEC) {
        if (!w->violated) {
            w->violated = 1;
            snprintf(w->msg, sizeof(w->msg), "model: more than %d pending decisions", MAX_DEC);
        }
        return;
    }
    decision *d = &w->d[w->nd++];
    d->kind = kind;
    d->e = e;
    d->inc = e >= 0 ? w->e[e].inc : 0;
    d->ref = ref;
    d->gen = gen;
}

static void decision_pop(sim *w)
{
    memmove(&w->d[0], &w->d[1], (size_t)(w->nd - 1) * sizeof(w->d[0]));
    w->nd--;
}

/* ---- violations -------------------------------------------------------------- */

static void violate(sim *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violate(sim *w, const char *fmt, ...)
{
    if (w->violated)
        return;
    w->violated = 1;
    va_list ap;
    char body[400];
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(w->msg, sizeof(w->msg), "%s (at %.3f s, step %" PRIu64 ")", body, (double)w->t / 1e9,
             w->steps);
}

static void logf_(sim *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(sim *w, const char *fmt, ...)
{
    if (!w->log)
        return;
    va_list ap;
    fprintf(w->log, "%10.3f ms  ", ms(w->t));
    va_start(ap, fmt);
    vfprintf(w->log, fmt, ap);
    va_end(ap);
    fputc('\n', w->log);
}

/* ---- the server ------------------------------------------------------------------ */

static void publish(sim *w, int type);

static void remember_prev(sim *w)
{
    w->s.changed_at = w->t;
    w->s.prev_exists = w->s.exists;
    w->s.prev = w->s.rec;
    w->s.prev_rv = w->s.rv;
}

static void note_seen(sim *w, int e, int transitions, const srec *r, int stream)
{
    elector *el = &w->e[e];
    if (r && !(r->holder_len == strlen(el->id) && memcmp(r->holder, el->id, r->holder_len) == 0))
        el->knew_foreign = 1;
    if (!el->seen_any || transitions > el->max_seen)
        el->max_seen = transitions;
    el->seen_any = 1;
    el->knew_object = 1;
    /* Its own write in flight, shown by its stream (the machine takes it for
     * its own and learns no token from it; an answer or a read it does). */
    int own =
        stream && r &&
        (el->has_crec && r->holder_len == strlen(el->id) &&
         memcmp(r->holder, el->id, r->holder_len) == 0 && r->transitions == el->crec.transitions &&
         r->renew / 1000000000 == el->crec.renew / 1000000000 &&
         (r->renew % 1000000000 == 0 || r->renew / 1000 == el->crec.renew / 1000));
    if (!own && (!el->seen_other || transitions > el->max_other)) {
        el->max_other = transitions;
        el->seen_other = 1;
    }
}

/* Applies request @p it; returns the rc and fills @p out (GET) or @p rv (writes). */
static int server_apply(sim *w, const item *it, srec *out, uint64_t *rv)
{
    server *s = &w->s;
    *rv = 0;
    if (it->ckind == KLE_SM_GET) {
        if (!s->exists)
            return KLE_ENOTFOUND;
        *out = s->rec;
        *rv = s->rv;
        return 0;
    }
    if (it->ckind == KLE_SM_CREATE && s->exists)
        return KLE_EEXISTS;
    if (it->ckind == KLE_SM_UPDATE) {
        if (!it->has_exp)
            return KLE_ESTATE;
        if (!s->exists)
            return KLE_ENOTFOUND;
        if (s->rv != it->exp_rv)
            return KLE_ECONFLICT;
        /* The update carries the cached object's metadata.uid: the API
         * server refuses it for another object of the same name, even one
         * whose resourceVersion happens to match (a server that lost its
         * state counts resourceVersions again from the start). */
        if (s->incarnation != it->uid)
            return KLE_ECONFLICT;
    }
    kle_record k;
    srec_view(&it->rec, &k);
    if (kle_record_validate(&k) < 0)
        return KLE_EINVAL;
    remember_prev(w);
    s->rec = it->rec;
    s->rec.acquire = truncate_time(w, s->rec.acquire);
    s->rec.renew = truncate_time(w, s->rec.renew);
    s->exists = 1;
    if (it->ckind == KLE_SM_CREATE) {
        s->incarnation++;
        s->inc_base = it->base;
        s->inc_creator = it->e;
        s->inc_blind = it->blind;
    }
    w->e[it->e].applied_inc = s->incarnation;
    w->e[it->e].applied_base = s->inc_base;
    w->e[it->e].applied_blind = s->inc_blind && s->inc_creator == it->e;
    *rv = ++s->rv;
    publish(w, KLE_LOCK_EVENT_RECORD);
    return 0;
}

/* ---- streams ------------------------------------------------------------------------ */

static item *stream_push(sim *w, int e, int type, int listed, int64_t delay)
{
    elector *el = &w->e[e];
    int64_t due = w->t + delay;
    if (due < el->last_wdue)
        due = el->last_wdue; /* a delayed event holds back the ones behind it */
    el->last_wdue = due;
    item *it = item_add(w, IT_WEV, e, due);
    it->gen = el->gen;
    it->type = (uint8_t)type;
    it->listed = (uint8_t)listed;
    it->exists = (uint8_t)w->s.exists;
    if (type == KLE_LOCK_EVENT_RECORD && !w->s.exists)
        it->type = KLE_LOCK_EVENT_DELETED;
    if (type != KLE_LOCK_EVENT_BOOKMARK) {
        it->rec = w->s.rec;
        it->rv = w->s.rv;
    }
    el->wseq++;
    return it;
}

static int want_wev_decision(const sim *w)
{
    return !w->c.exhaustive || (w->c.faults & SIM_F_WATCH_DELAY);
}

static void publish(sim *w, int type)
{
    for (int i = 0; i < w->c.n; i++) {
        elector *el = &w->e[i];
        if (el->status != ST_RUN || !el->open || el->silent)
            continue;
        item *it = stream_push(w, i, type, 0, LAMBDA);
        if (type == KLE_LOCK_EVENT_BOOKMARK)
            it->rv = (UINT64_C(1) << 40) + w->s.rv * 1000 + ++w->s.bookmarks;
        if (want_wev_decision(w))
            decide(w, D_WEV, i, it->seq, el->gen);
    }
}

static void stream_open(sim *w, int e)
{
    elector *el = &w->e[e];
    drop_stream_items(w, e);
    el->open = 1;
    el->silent = 0;
    el->gen++;
    el->wseq = 0;
    el->last_wdue = 0;
    item *it = stream_push(w, e, KLE_LOCK_EVENT_RECORD, 1, LAMBDA);
    if (want_wev_decision(w))
        decide(w, D_WEV, e, it->seq, el->gen);
}

static void stream_close(sim *w, int e)
{
    drop_stream_items(w, e);
    w->e[e].open = 0;
}

/* ---- works ------------------------------------------------------------------------- */

static int work_find_wd(const sim *w, int slot)
{
    for (int i = 0; i < w->nit; i++)
        if (w->it[i].kind == IT_WD && w->it[i].work == slot)
            return i;
    return -1;
}

/* A told work returns after its wind-down, by its deadline at the latest. */
static void work_schedule(sim *w, int slot)
{
    work *k = &w->wk[slot];
    int64_t dl = g_of(&w->e[k->e], k->deadline);
    int64_t due = k->told_g + k->wind;
    if (dl < due)
        due = dl;
    if (due < w->t)
        due = w->t;
    int i = work_find_wd(w, slot);
    item *it = i >= 0 ? &w->it[i] : item_add(w, IT_WD, k->e, due);
    it->due = it->orig = due;
    it->work = slot;
    it->inc = k->inc;
}

/* ---- the checks ------------------------------------------------------------------ */

static int paused(const sim *w, int e)
{
    return w->t < w->e[e].pause_until;
}

static void check(sim *w)
{
    if (w->violated)
        return;
    int covered = 0, a = -1, b = -1;
    int cov[MAX_WORKS];
    for (int i = 0; i < MAX_WORKS; i++) {
        const work *k = &w->wk[i];
        if (!k->used)
            continue;
        const elector *el = &w->e[k->e];
        int64_t dl = g_of(el, k->deadline);
        if (!k->told && !paused(w, k->e) && w->t > dl && w->t > el->resumed) {
            violate(w,
                    "C3: the work of e%d (token %d) runs past its deadline by %.3f ms without "
                    "TERM_END",
                    k->e, k->token, ms(w->t - dl));
            return;
        }
        if (w->t >= dl)
            continue;
        cov[covered++] = i;
    }
    /* A pair of works at once, unless one's term was won by a blind create
     * (outside the rules: counted, not failed): the later one, or the
     * earlier one when the later's term is on another object (won before
     * the blind create, its work started later, after a quarantine, its
     * object gone unseen). A term won over the blind creator's object had
     * to respect its lease: no excuse. */
    for (int i = 0; i < covered && b < 0; i++)
        for (int j = i + 1; j < covered && b < 0; j++) {
            work *x = &w->wk[cov[i]], *y = &w->wk[cov[j]];
            work *later = x->id > y->id ? x : y, *earlier = later == x ? y : x;
            work *blind = later->blind                                   ? later
                          : earlier->blind && later->obj != earlier->obj ? earlier
                                                                         : NULL;
            if (blind) {
                if (!blind->excused) {
                    blind->excused = 1;
                    w->st.blind_create_notes++;
                }
                continue;
            }
            a = cov[i];
            b = cov[j];
        }
    if (b >= 0) {
        const work *x = &w->wk[a], *y = &w->wk[b];
        int live = !x->told && !y->told;
        violate(w,
                "%s: two works run at once: e%d (token %d, %s, deadline in %.3f ms) and e%d "
                "(token %d, %s, deadline in %.3f ms)",
                live ? "C1" : "C2", x->e, x->token, x->told ? "told to end" : "live",
                ms(g_of(&w->e[x->e], x->deadline) - w->t), y->e, y->token,
                y->told ? "told to end" : "live", ms(g_of(&w->e[y->e], y->deadline) - w->t));
        return;
    }
    if (w->quiet && !w->quiet_led) {
        if (covered) {
            for (int i = 0; i < MAX_WORKS; i++)
                if (w->wk[i].used && !w->wk[i].told &&
                    w->t < g_of(&w->e[w->wk[i].e], w->wk[i].deadline)) {
                    w->quiet_led = 1;
                    uint64_t wait = (uint64_t)((w->t - w->quiet_start) / KLE_NS_PER_MS);
                    if (wait > w->st.max_quiet_wait_ms)
                        w->st.max_quiet_wait_ms = wait;
                }
        }
        if (!w->quiet_led) {
            /* C5: the bound, from what the electors last saw. */
            const sim_config *c = &w->c;
            double rho = (double)c->rate_ppm / 1e6;
            int64_t slack = (int64_t)((double)(22 * c->retry / 10) * (1.0 + rho / (1.0 - rho))) +
                            4 * LAMBDA + TAKEOVER_JITTER;
            int64_t best = INT64_MAX;
            int any = 0;
            for (int i = 0; i < c->n; i++) {
                const elector *el = &w->e[i];
                if (el->status == ST_GONE)
                    continue;
                any = 1;
                int64_t q = mono_of(el, w->quiet_start) + c->call_timeout;
                int64_t from;
                int64_t seen_at = 0;
                kle_record ov;
                const kle_record *o =
                    el->status == ST_RUN && el->sm && kle_sm_observed(el->sm, &ov, &seen_at) ? &ov
                                                                                             : NULL;
                int same = 0;
                if (o) {
                    srec r;
                    srec_from(&r, o);
                    same = !w->s.exists || (r.holder_len == w->s.rec.holder_len &&
                                            memcmp(r.holder, w->s.rec.holder, r.holder_len) == 0 &&
                                            w->s.rec.transitions == r.transitions &&
                                            w->s.rec.lease_s == r.lease_s &&
                                            w->s.rec.renew == truncate_time(w, r.renew));
                }
                int64_t restart = 0;
                if (el->status == ST_WAIT)
                    restart = 3 * c->retry; /* the longest restart delay */
                if (o && same) {
                    from = seen_at + (int64_t)o->lease_duration_seconds * KLE_NS_PER_SEC;
                    if (from < q)
                        from = q;
                } else {
                    /* It reads the server's record on its next try. */
                    int64_t l = w->s.exists ? (int64_t)w->s.rec.lease_s * KLE_NS_PER_SEC : 0;
                    int64_t changed = mono_of(el, w->s.changed_at);
                    from =
                        (q > changed ? q : changed) + restart + 22 * c->retry / 10 + 2 * LAMBDA + l;
                }
                int64_t g = g_of(el, from);
                if (g < INT64_MAX - slack && g + slack < best)
                    best = g + slack;
            }
            if (any && w->t > best)
                violate(w,
                        "C5: no elector leads %.3f ms after the faults stopped (bound %.3f ms "
                        "after them)",
                        ms(w->t - w->quiet_start), ms(best - w->quiet_start));
        }
    }
}

/* C3, C4 at the start of a term. */
static void check_term_start(sim *w, int e, int64_t deadline, int token)
{
    elector *el = &w->e[e];
    int64_t now = now_of(w, e);
    if (deadline <= now)
        violate(w, "C3: e%d starts its work %.3f ms after its deadline", e, ms(now - deadline));
    if (w->has_token) {
        int same = w->last_token_id && strcmp(w->last_token_id, el->id) == 0;
        int ok = token > w->last_token || (token == w->last_token && token == INT32_TOP) ||
                 (same && token >= w->last_token);
        if (!ok) {
            /* Outside the rules: the term is on an object re-created by an
             * elector that had not seen the last term's token when it sent
             * the create (a blind create, or one sent before that term). */
            if (el->applied_inc != w->last_token_inc && el->applied_base < w->last_token) {
                w->st.token_limit_notes++;
            } else {
                violate(w, "C4: e%d's term has token %d after a term of \"%s\" with token %d", e,
                        token, w->last_token_id ? w->last_token_id : "?", w->last_token);
            }
        }
    }
    w->has_token = 1;
    w->last_token = token;
    w->last_token_id = el->id;
    w->last_token_inc = el->applied_inc;
}

/* ---- the machines' actions --------------------------------------------------------------- */

static void machine_new(sim *w, int e)
{
    elector *el = &w->e[e];
    kle_sm_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.identity = el->id;
    sc.name = lock_name;
    sc.lease_duration = w->c.lease;
    sc.renew_deadline = w->c.renew;
    sc.retry_period = w->c.retry;
    sc.call_timeout = w->c.call_timeout;
    sc.record_lease_seconds = (int)(w->c.lease / KLE_NS_PER_SEC);
    sc.release_on_cancel = w->c.release_on_cancel;
    sc.coordinated = 0;
    sc.watch = el->watch;
    sc.seed = hash64(el->jitter_seed, el->inc) | 1;
    sc.mutations = w->c.mutations;
    el->sm = kle_sm_new(&sc);
    el->has_rv = 0;
    el->call = 0;
    el->open = 0;
    el->work = -1;
    el->seen_any = 0;
    el->knew_object = 0;
    el->knew_foreign = 0;
    el->max_seen = 0;
    el->max_other = 0;
    el->seen_other = 0;
}

static void term_start(sim *w, int e, int64_t deadline, int token)
{
    elector *el = &w->e[e];
    check_term_start(w, e, deadline, token);
    int slot = -1;
    for (int i = 0; i < MAX_WORKS; i++)
        if (!w->wk[i].used) {
            slot = i;
            break;
        }
    if (slot < 0) {
        violate(w, "model: more than %d works at once", MAX_WORKS);
        return;
    }
    work *k = &w->wk[slot];
    memset(k, 0, sizeof(*k));
    k->used = 1;
    k->e = (uint8_t)e;
    k->inc = el->inc;
    k->id = ++w->next_work_id;
    k->deadline = deadline;
    k->token = token;
    k->started_g = w->t;
    /* Blind only if it still knew no other holder when the work started:
     * an answer that came after it saw one leaves it no excuse. */
    k->blind = el->applied_blind && !el->knew_foreign;
    k->obj = el->applied_inc;
    k->wind = LAMBDA;
    el->work = slot;
    el->terms++;
    w->st.terms++;
    if (w->c.slow_work)
        decide(w, D_WORK, e, el->terms, 0);
}

static void handle_actions(sim *w, int e)
{
    elector *el = &w->e[e];
    kle_sm_action a;
    while (kle_sm_next(el->sm, &a)) {
        switch (a.kind) {
        case KLE_SM_CALL:
            /* C6: a machine must not loop on the server. */
            if (w->t - el->burst_start > STORM_WINDOW) {
                el->burst_start = w->t;
                el->burst = 0;
            }
            if (++el->burst > STORM_CALLS)
                violate(w, "C6: e%d sends more than %d calls within %.0f ms (a busy loop)", e,
                        STORM_CALLS, ms(STORM_WINDOW));
            el->call = a.call.id;
            el->ckind = a.call.kind;
            el->sent = now_of(w, e);
            el->timeout = a.call.timeout;
            el->has_crec = a.call.has_record;
            if (a.call.has_record)
                srec_from(&el->crec, &a.call.record);
            el->has_exp = el->has_rv;
            el->exp = el->rv;
            el->exp_uid = el->uid;
            w->st.calls++;
            decide(w, D_FATE, e, a.call.id, 0);
            logf_(w, "e%d.%u calls %s #%" PRIu64 " (timeout %.3f ms)", (int)(el - w->e), el->inc,
                  a.call.kind == KLE_SM_GET      ? "GET"
                  : a.call.kind == KLE_SM_CREATE ? "CREATE"
                  : a.call.kind == KLE_SM_UPDATE ? "UPDATE"
                                                 : "EVENT",
                  a.call.id, ms(a.call.timeout));
            break;
        case KLE_SM_WATCH_START:
            stream_open(w, e);
            logf_(w, "e%d.%u starts its watch (stream %u)", (int)(el - w->e), el->inc, el->gen);
            break;
        case KLE_SM_WATCH_STOP:
            stream_close(w, e);
            break;
        case KLE_SM_TERM_START:
            logf_(w, "e%d.%u TERM_START token %d, deadline in %.3f ms", (int)(el - w->e), el->inc,
                  a.token, ms(a.deadline - now_of(w, e)));
            term_start(w, e, a.deadline, a.token);
            break;
        case KLE_SM_TERM_EXTEND:
            if (el->work >= 0) {
                work *k = &w->wk[el->work];
                int64_t now = now_of(w, e);
                if (now >= k->deadline)
                    violate(w, "C3: e%d's term is extended %.3f ms after its deadline passed", e,
                            ms(now - k->deadline));
                k->deadline = a.deadline;
                if (k->told)
                    work_schedule(w, el->work);
            }
            break;
        case KLE_SM_TERM_END:
            logf_(w, "e%d.%u TERM_END", (int)(el - w->e), el->inc);
            if (el->work >= 0 && !w->wk[el->work].told) {
                work *k = &w->wk[el->work];
                k->told = 1;
                k->told_g = w->t;
                work_schedule(w, el->work);
            }
            break;
        case KLE_SM_NEW_LEADER:
            break;
        case KLE_SM_DONE:
            logf_(w, "e%d.%u DONE rc %d", (int)(el - w->e), el->inc, a.rc);
            if (el->open)
                stream_close(w, e);
            el->work = -1; /* a work still winding down goes on alone */
            if (el->stopping) {
                el->status = ST_WAIT;
                int64_t delay =
                    w->c.exhaustive ? LAMBDA : rnd_range(&w->rng, LAMBDA, 3 * w->c.retry);
                item_add(w, IT_RESTART, e, w->t + delay);
            } else if (a.rc == KLE_EIDENTITY) {
                el->status = ST_GONE;
            } else {
                el->status = ST_WAIT;
                item_add(w, IT_RERUN, e, w->t + LAMBDA);
            }
            break;
        default:
            break;
        }
    }
}

/* ---- inputs --------------------------------------------------------------------------------- */

static void deliver_answer(sim *w, int e, int rc, const srec *rec, uint64_t rv, uint32_t uid)
{
    elector *el = &w->e[e];
    uint64_t id = el->call;
    int kind = el->ckind;
    el->call = 0;
    kle_lock_result res;
    char raw[512], rvs[32];
    kle_lock_result *rp = NULL;
    if (rc == 0 && kind != KLE_SM_EVENT) {
        el->has_rv = 1;
        el->rv = rv;
        el->uid = uid;
    }
    if (rc == 0 && kind == KLE_SM_GET) {
        memset(&res, 0, sizeof(res));
        res.version = KLE_LOCK_RESULT_VERSION;
        srec_view(rec, &res.record);
        res.raw_len = render_raw(raw, sizeof(raw), rec, w->c.whole_seconds ? 0 : 6);
        res.raw = raw;
        snprintf(rvs, sizeof(rvs), "%" PRIu64, rv);
        res.resource_version = rvs;
        rp = &res;
        note_seen(w, e, rec->transitions, rec, 0);
    }
    if (rc == 0 && (kind == KLE_SM_CREATE || kind == KLE_SM_UPDATE)) {
        note_seen(w, e, el->crec.transitions, NULL, 0);
    }
    if (rc == KLE_EEXISTS || rc == KLE_ECONFLICT)
        el->knew_object = el->knew_foreign = 1;
    if (rc < 0)
        kle_error_set(rc, "sim: %s", kle_strerror(rc));
    kle_sm_answer(el->sm, id, rc, el->sent, rp, now_of(w, e), wall_of(w, el, w->t));
    handle_actions(w, e);
}

static void process_item(sim *w, int i)
{
    item it = w->it[i];
    item_del(w, i);
    elector *el = &w->e[it.e < SIM_MAX_ELECTORS ? it.e : 0];
    /* Messages for a process that is gone, or between runs, are dropped. */
    int alive = el->inc == it.inc && el->status == ST_RUN;
    switch (it.kind) {
    case IT_REQ: {
        srec out;
        uint64_t rv = 0;
        int rc;
        if (it.outcome == OUT_REFUSE) {
            rc = it.rc;
        } else {
            rc = server_apply(w, &it, &out, &rv);
            logf_(w, "server applies e%d.%u's %s #%" PRIu64 ": rc %d, rv %" PRIu64, it.e, it.inc,
                  it.ckind == KLE_SM_GET      ? "GET"
                  : it.ckind == KLE_SM_CREATE ? "CREATE"
                                              : "UPDATE",
                  it.call, rc, w->s.rv);
        }
        if (it.outcome == OUT_LOST)
            break;
        item *a = item_add(w, IT_ANS, it.e, w->t + it.ans_delay);
        a->inc = it.inc;
        a->call = it.call;
        a->ckind = it.ckind;
        a->rc = it.outcome == OUT_ERR ? KLE_ESERVER : rc;
        a->rv = rv;
        a->uid = w->s.incarnation;
        if (rc == 0 && it.ckind == KLE_SM_GET)
            a->rec = out;
        break;
    }
    case IT_ANS:
        if (alive && el->call == it.call) {
            for (int j = w->nit - 1; j >= 0; j--)
                if (w->it[j].kind == IT_TO && w->it[j].e == it.e && w->it[j].call == it.call)
                    item_del(w, j);
            logf_(w, "e%d.%u gets the answer to #%" PRIu64 ": rc %d", (int)(el - w->e), el->inc,
                  it.call, it.rc);
            deliver_answer(w, it.e, it.rc, &it.rec, it.rv, it.uid);
        }
        break;
    case IT_TO:
        if (alive && el->call == it.call) {
            for (int j = w->nit - 1; j >= 0; j--)
                if (w->it[j].kind == IT_ANS && w->it[j].e == it.e && w->it[j].call == it.call)
                    item_del(w, j);
            logf_(w, "e%d.%u: #%" PRIu64 " timed out", it.e, el->inc, it.call);
            deliver_answer(w, it.e, KLE_ETIMEOUT, NULL, 0, 0);
        }
        break;
    case IT_WEV:
        if (alive && el->open && el->gen == it.gen) {
            kle_lock_event ev;
            kle_lock_result res;
            char raw[512], rvs[32];
            memset(&ev, 0, sizeof(ev));
            ev.version = KLE_LOCK_EVENT_VERSION;
            ev.type = (kle_lock_event_type)it.type;
            ev.listed = it.listed;
            snprintf(rvs, sizeof(rvs), "%" PRIu64, it.rv);
            ev.resource_version = rvs;
            if (it.type == KLE_LOCK_EVENT_RECORD) {
                memset(&res, 0, sizeof(res));
                res.version = KLE_LOCK_RESULT_VERSION;
                srec_view(&it.rec, &res.record);
                res.raw_len = render_raw(raw, sizeof(raw), &it.rec, w->c.whole_seconds ? 0 : 6);
                res.raw = raw;
                res.resource_version = rvs;
                ev.result = &res;
                note_seen(w, it.e, it.rec.transitions, &it.rec, 1);
            }
            logf_(w, "e%d.%u stream event %s%s rv %" PRIu64 " holder \"%s\"", (int)(el - w->e),
                  el->inc,
                  it.type == KLE_LOCK_EVENT_RECORD    ? "RECORD"
                  : it.type == KLE_LOCK_EVENT_DELETED ? "DELETED"
                                                      : "BOOKMARK",
                  it.listed ? " (listed)" : "", it.rv,
                  it.type == KLE_LOCK_EVENT_RECORD ? it.rec.holder : "");
            kle_sm_watch_event(el->sm, &ev, now_of(w, it.e), wall_of(w, el, w->t));
            handle_actions(w, it.e);
        }
        break;
    case IT_WEND:
        if (alive && el->open && el->gen == it.gen) {
            stream_close(w, it.e);
            kle_error_set(it.rc, "sim: the stream ended");
            kle_sm_watch_ended(el->sm, it.rc, now_of(w, it.e), wall_of(w, el, w->t));
            handle_actions(w, it.e);
        }
        break;
    case IT_WD: {
        work *k = &w->wk[it.work];
        if (!k->used)
            break;
        int current = el->inc == k->inc && el->work == it.work && el->status == ST_RUN;
        logf_(w, "e%d.%u work (token %d) returns", (int)(el - w->e), k->inc, k->token);
        k->used = 0;
        if (current) {
            el->work = -1;
            kle_sm_work_done(el->sm, now_of(w, it.e), wall_of(w, el, w->t));
            handle_actions(w, it.e);
        }
        break;
    }
    case IT_RERUN:
        if (el->inc == it.inc && el->status == ST_WAIT) {
            el->status = ST_RUN;
            logf_(w, "e%d.%u campaigns again", (int)(el - w->e), el->inc);
            kle_sm_start(el->sm, now_of(w, it.e), wall_of(w, el, w->t));
            handle_actions(w, it.e);
        }
        break;
    case IT_RESTART:
        if (el->status == ST_WAIT) {
            kle_sm_free(el->sm);
            el->inc++;
            el->stopping = 0;
            el->status = ST_RUN;
            machine_new(w, it.e);
            logf_(w, "e%d.%u starts (a new process)", (int)(el - w->e), el->inc);
            kle_sm_start(el->sm, now_of(w, it.e), wall_of(w, el, w->t));
            handle_actions(w, it.e);
        }
        break;
    case IT_FAULTGEN: {
        decide(w, D_FAULTGEN, -1, w->fault_no, 0);
        w->fault_no++;
        int64_t gap = (int64_t)w->c.fault_every_ms * KLE_NS_PER_MS;
        int64_t next =
            w->t + gap / 2 + (int64_t)(hash64(w->c.seed, w->fault_no) % (uint64_t)(gap + 1));
        if (next < w->c.fault_until)
            item_add(w, IT_FAULTGEN, -1, next);
        break;
    }
    case IT_QUIET:
        w->quiet = 1;
        w->quiet_start = w->t;
        w->st.quiet_phases++;
        logf_(w, "faults stop");
        break;
    default:
        break;
    }
}

static void tick(sim *w, int e)
{
    elector *el = &w->e[e];
    int64_t at = kle_sm_wake_at(el->sm);
    kle_sm_tick(el->sm, now_of(w, e), wall_of(w, el, w->t));
    handle_actions(w, e);
    if (el->status == ST_RUN && kle_sm_wake_at(el->sm) == at && at <= now_of(w, e)) {
        el->ticked_wake = at;
        el->ticked_at = w->t;
        w->st.stale_wakes++;
    } else {
        el->ticked_wake = 0;
    }
}

/* ---- faults ---------------------------------------------------------------------------------- */

static void edit(sim *w, int kind, int arg)
{
    server *s = &w->s;
    if (!s->exists)
        return;
    remember_prev(w);
    int64_t wall = w->wall0 + w->t;
    switch (kind) {
    case ED_EMPTY:
        srec_set_holder(&s->rec, "", 0);
        break;
    case ED_OTHER:
        srec_set_holder(&s->rec, "admin", 5);
        s->rec.renew = truncate_time(w, wall);
        break;
    case ED_ELECTOR:
        srec_set_holder(&s->rec, w->e[arg].id, strlen(w->e[arg].id));
        s->rec.renew = truncate_time(w, wall);
        /* Not a forged handover: that names the holder as preferred too. */
        if (s->rec.has_preferred && s->rec.preferred_len == s->rec.holder_len &&
            memcmp(s->rec.preferred, s->rec.holder, s->rec.holder_len) == 0)
            srec_set_preferred(&s->rec, NULL, 0);
        break;
    case ED_TOP:
        s->rec.transitions = INT32_TOP;
        break;
    case ED_PAST:
        s->rec.acquire = s->rec.renew = KLE_SEC(1);
        break;
    case ED_FUTURE:
        s->rec.acquire = s->rec.renew = INT64_C(7258118400) * KLE_NS_PER_SEC; /* 2200 */
        break;
    default:
        break;
    }
    s->rv++;
    publish(w, KLE_LOCK_EVENT_RECORD);
}

static void fault_label(const opt *o, char *buf, size_t size)
{
    static const char *const edits[] = {"holder-empty",    "holder-other", "holder-elector",
                                        "transitions-max", "times-past",   "times-future"};
    switch (o->sub) {
    case FK_PAUSE:
        snprintf(buf, size, "pause e%d %" PRId64, o->e, o->a);
        break;
    case FK_WALL:
        snprintf(buf, size, "wall e%d %" PRId64, o->e, o->a);
        break;
    case FK_DELETE:
        snprintf(buf, size, "delete");
        break;
    case FK_LOSS:
        snprintf(buf, size, "server-loses-state");
        break;
    case FK_EDIT:
        if (o->arg == ED_ELECTOR)
            snprintf(buf, size, "edit %s e%d", edits[o->arg], o->e);
        else
            snprintf(buf, size, "edit %s", edits[o->arg % ED_N]);
        break;
    case FK_TOUCH:
        snprintf(buf, size, "touch");
        break;
    case FK_TRANSFER:
        snprintf(buf, size, "transfer e%d", o->e);
        break;
    case FK_STOP:
        snprintf(buf, size, "stop e%d", o->e);
        break;
    case FK_WEND:
        snprintf(buf, size, "stream-end e%d %d", o->e, o->rc);
        break;
    case FK_WSILENCE:
        snprintf(buf, size, "stream-silence e%d", o->e);
        break;
    case FK_WGONE:
        snprintf(buf, size, "stream-410 e%d", o->e);
        break;
    case FK_BOOKMARK:
        snprintf(buf, size, "bookmark");
        break;
    case FK_WDUP:
        snprintf(buf, size, "stream-dup e%d", o->e);
        break;
    case FK_WSTALE:
        snprintf(buf, size, "stream-stale e%d", o->e);
        break;
    default:
        snprintf(buf, size, "?");
    }
}

static int fault_parse(const char *l, opt *o)
{
    static const char *const edits[] = {"holder-empty",    "holder-other", "holder-elector",
                                        "transitions-max", "times-past",   "times-future"};
    memset(o, 0, sizeof(*o));
    o->kind = O_FAULT;
    char word[32];
    long long v = 0;
    int e = 0, rc = 0;
    if (sscanf(l, "pause e%d %lld", &e, &v) == 2) {
        o->sub = FK_PAUSE, o->e = e, o->a = v;
    } else if (sscanf(l, "wall e%d %lld", &e, &v) == 2) {
        o->sub = FK_WALL, o->e = e, o->a = v;
    } else if (!strcmp(l, "delete")) {
        o->sub = FK_DELETE;
    } else if (!strcmp(l, "server-loses-state")) {
        o->sub = FK_LOSS;
    } else if (sscanf(l, "edit %31s e%d", word, &e) >= 1) {
        o->sub = FK_EDIT;
        o->e = e;
        o->arg = -1;
        for (int i = 0; i < ED_N; i++)
            if (!strcmp(word, edits[i]))
                o->arg = i;
        if (o->arg < 0)
            return -1;
    } else if (!strcmp(l, "touch")) {
        o->sub = FK_TOUCH;
    } else if (sscanf(l, "transfer e%d", &e) == 1) {
        o->sub = FK_TRANSFER, o->e = e;
    } else if (sscanf(l, "stop e%d", &e) == 1) {
        o->sub = FK_STOP, o->e = e;
    } else if (sscanf(l, "stream-end e%d %d", &e, &rc) == 2) {
        o->sub = FK_WEND, o->e = e, o->rc = rc;
    } else if (sscanf(l, "stream-silence e%d", &e) == 1) {
        o->sub = FK_WSILENCE, o->e = e;
    } else if (sscanf(l, "stream-410 e%d", &e) == 1) {
        o->sub = FK_WGONE, o->e = e;
    } else if (!strcmp(l, "bookmark")) {
        o->sub = FK_BOOKMARK;
    } else if (sscanf(l, "stream-dup e%d", &e) == 1) {
        o->sub = FK_WDUP, o->e = e;
    } else if (sscanf(l, "stream-stale e%d", &e) == 1) {
        o->sub = FK_WSTALE, o->e = e;
    } else {
        return -1;
    }
    return 0;
}

/* Whether fault @p o can strike now (the world is in a state it applies to). */
static int fault_valid(const sim *w, const opt *o)
{
    if (o->e < 0 || o->e >= w->c.n)
        return 0;
    const elector *el = &w->e[o->e];
    switch (o->sub) {
    case FK_PAUSE:
    case FK_STOP:
        return el->status == ST_RUN && !paused(w, o->e) && !el->stopping;
    case FK_WALL:
        return 1;
    case FK_DELETE:
    case FK_TOUCH:
        return w->s.exists;
    case FK_LOSS:
        return w->s.exists || w->s.rv > 0;
    case FK_EDIT:
        if (!w->s.exists)
            return 0;
        if (o->arg == ED_ELECTOR)
            return !srec_is(&w->s.rec, el->id);
        if (o->arg == ED_EMPTY)
            return w->s.rec.holder_len > 0;
        return 1;
    case FK_TRANSFER:
        return w->s.exists && w->s.rec.holder_len > 0 && !srec_is(&w->s.rec, el->id) &&
               !(w->s.rec.has_preferred && w->s.rec.preferred_len == strlen(el->id) &&
                 memcmp(w->s.rec.preferred, el->id, w->s.rec.preferred_len) == 0);
    case FK_WEND:
    case FK_WSILENCE:
    case FK_WGONE:
    case FK_WDUP:
    case FK_WSTALE:
        return el->status == ST_RUN && el->open && !el->silent;
    case FK_BOOKMARK:
        return 1;
    default:
        return 0;
    }
}

static void apply_fault(sim *w, const opt *o)
{
    char label[64];
    fault_label(o, label, sizeof(label));
    logf_(w, "FAULT %s", label);
    w->st.faults++;
    elector *el = o->e >= 0 && o->e < w->c.n ? &w->e[o->e] : NULL;
    switch (o->sub) {
    case FK_PAUSE:
        el->pause_until = w->t + o->a;
        el->resumed = el->pause_until;
        break;
    case FK_WALL:
        el->step += o->a;
        break;
    case FK_DELETE:
        remember_prev(w);
        w->s.exists = 0;
        w->s.rv++;
        publish(w, KLE_LOCK_EVENT_RECORD);
        break;
    case FK_LOSS:
        w->s.exists = 0;
        w->s.rv = 0;
        w->s.epoch++;
        w->s.changed_at = w->t;
        w->s.prev_rv = 0;
        w->s.prev_exists = 0;
        for (int i = 0; i < w->c.n; i++)
            if (w->e[i].status == ST_RUN && w->e[i].open) {
                drop_stream_items(w, i);
                item *it = item_add(w, IT_WEND, i, w->t + LAMBDA);
                it->gen = w->e[i].gen;
                it->rc = KLE_ETRANSPORT;
            }
        break;
    case FK_EDIT:
        edit(w, o->arg, o->e);
        break;
    case FK_TOUCH:
        remember_prev(w);
        w->s.rv++;
        publish(w, KLE_LOCK_EVENT_RECORD);
        break;
    case FK_TRANSFER:
        remember_prev(w);
        srec_set_preferred(&w->s.rec, el->id, strlen(el->id));
        w->s.rv++;
        publish(w, KLE_LOCK_EVENT_RECORD);
        break;
    case FK_STOP:
        el->stopping = 1;
        kle_sm_stop(el->sm, now_of(w, o->e), wall_of(w, el, w->t));
        handle_actions(w, o->e);
        break;
    case FK_WEND: {
        drop_stream_items(w, o->e);
        item *it = item_add(w, IT_WEND, o->e, w->t + LAMBDA);
        it->gen = el->gen;
        it->rc = o->rc;
        break;
    }
    case FK_WSILENCE:
        drop_stream_items(w, o->e);
        el->silent = 1;
        break;
    case FK_WGONE: {
        drop_stream_items(w, o->e);
        el->last_wdue = 0;
        stream_push(w, o->e, KLE_LOCK_EVENT_RECORD, 1, LAMBDA);
        break;
    }
    case FK_BOOKMARK:
        publish(w, KLE_LOCK_EVENT_BOOKMARK);
        break;
    case FK_WDUP:
        stream_push(w, o->e, KLE_LOCK_EVENT_RECORD, 0, LAMBDA);
        break;
    case FK_WSTALE:
        if (w->s.prev_rv > 0) {
            item *it = stream_push(w, o->e, KLE_LOCK_EVENT_RECORD, 0, LAMBDA);
            it->rec = w->s.prev;
            it->rv = w->s.prev_rv;
            it->type = w->s.prev_exists ? KLE_LOCK_EVENT_RECORD : KLE_LOCK_EVENT_DELETED;
        }
        break;
    default:
        break;
    }
}

/* ---- options --------------------------------------------------------------------------------- */

static void item_label(const sim *w, const item *it, char *buf, size_t size)
{
    switch (it->kind) {
    case IT_REQ:
    case IT_ANS:
    case IT_TO:
        snprintf(buf, size, "%s e%d.%u c%" PRIu64, item_names[it->kind], it->e, it->inc, it->call);
        break;
    case IT_WEV:
        snprintf(buf, size, "wev e%d.%u s%u.%" PRIu64, it->e, it->inc, it->gen, it->seq);
        break;
    case IT_WEND:
        snprintf(buf, size, "wend! e%d.%u s%u", it->e, it->inc, it->gen);
        break;
    case IT_WD:
        snprintf(buf, size, "wd e%d w%d", it->e, w->wk[it->work].id);
        break;
    case IT_FAULTGEN:
    case IT_QUIET:
        snprintf(buf, size, "%s", item_names[it->kind]);
        break;
    default:
        snprintf(buf, size, "%s e%d.%u", item_names[it->kind], it->e, it->inc);
    }
}

static void opt_label(const sim *w, const opt *o, char *buf, size_t size)
{
    switch (o->kind) {
    case O_PICK:
        if (o->sub < 0)
            snprintf(buf, size, "tick e%d.%u", o->e, w->e[o->e].inc);
        else
            item_label(w, &w->it[o->sub], buf, size);
        break;
    case O_FATE:
        if (o->benign)
            snprintf(buf, size, "ok");
        else if (o->a < 0)
            snprintf(buf, size, "never");
        else if (o->sub == OUT_REFUSE)
            snprintf(buf, size, "refuse=%d after=%" PRId64, o->rc, o->b);
        else if (o->sub == OUT_LOST)
            snprintf(buf, size, "apply=%" PRId64 " lost", o->a);
        else if (o->sub == OUT_ERR)
            snprintf(buf, size, "apply=%" PRId64 " err", o->a);
        else
            snprintf(buf, size, "apply=%" PRId64 " ans=%" PRId64, o->a, o->b);
        break;
    case O_WORK:
        if (o->benign)
            snprintf(buf, size, "prompt");
        else
            snprintf(buf, size, "wind=%" PRId64, o->a);
        break;
    case O_WEV:
        if (o->benign)
            snprintf(buf, size, "prompt");
        else
            snprintf(buf, size, "delay=%" PRId64, o->a);
        break;
    case O_FAULT:
        fault_label(o, buf, size);
        break;
    case O_NOFAULT:
        snprintf(buf, size, "-");
        break;
    default:
        snprintf(buf, size, "?");
    }
}

/* The candidates of a step: the earliest events (ties: all of them). */
typedef struct cand {
    int item; /* -1: tick */
    int e;
    int64_t due, orig;
    uint64_t seq;
} cand;

static int cand_cmp(const void *pa, const void *pb)
{
    const cand *a = pa, *b = pb;
    if (a->due != b->due)
        return a->due < b->due ? -1 : 1;
    if (a->orig != b->orig)
        return a->orig < b->orig ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int64_t limit_of(const sim *w)
{
    return w->c.exhaustive ? w->c.horizon : w->c.run_until;
}

static int candidates(const sim *w, cand *out, int max)
{
    int64_t best = INT64_MAX;
    int n = 0;
    cand all[MAX_ITEMS + SIM_MAX_ELECTORS];
    for (int i = 0; i < w->nit; i++) {
        const item *it = &w->it[i];
        if (it->kind == IT_WEV) {
            /* Only the head of its stream. */
            int head = 1;
            for (int j = 0; j < w->nit && head; j++)
                if (j != i && w->it[j].kind == IT_WEV && w->it[j].e == it->e &&
                    w->it[j].gen == it->gen && w->it[j].seq < it->seq)
                    head = 0;
            if (!head)
                continue;
        }
        cand c = {i, it->e, eff_due(w, it), it->orig, it->seq};
        all[n++] = c;
    }
    for (int i = 0; i < w->c.n; i++) {
        const elector *el = &w->e[i];
        if (el->status != ST_RUN || !el->sm)
            continue;
        int64_t at = kle_sm_wake_at(el->sm);
        if (at == INT64_MAX)
            continue;
        /* A wake time already answered by a tick that left it in place
         * (the machine would spin): not again until something changes. */
        if (at == el->ticked_wake && mono_of(el, el->ticked_at) >= at)
            continue;
        int64_t g = g_of(el, at);
        if (g < w->t)
            g = w->t;
        int64_t eff = g > el->pause_until ? g : el->pause_until;
        cand c = {-1, i, eff, g, (uint64_t)i};
        all[n++] = c;
    }
    for (int i = 0; i < n; i++)
        if (all[i].due < best)
            best = all[i].due;
    if (best == INT64_MAX || best > limit_of(w))
        return 0;
    int m = 0;
    for (int i = 0; i < n && m < max; i++)
        if (all[i].due == best)
            out[m++] = all[i];
    qsort(out, (size_t)m, sizeof(out[0]), cand_cmp);
    return m;
}

/* The delay classes of a call's fate (the header comment says why these). */
static int fate_options(const sim *w, const decision *d, opt *o, int max)
{
    const elector *el = &w->e[d->e];
    int n = 0;
    unsigned f = w->c.faults;
    int64_t to = g_of(el, el->sent + (el->timeout > 0 ? el->timeout : 0)) - w->t;
    int64_t rd = g_of(el, el->sent + w->c.renew) - w->t;
    int64_t ld = g_of(el, el->sent + w->c.lease) - w->t;
#define ADD(kind_, a_, b_, out_, rc_, benign_)                                                     \
    do {                                                                                           \
        if (n < max) {                                                                             \
            opt x_ = {O_FATE, d->e, (out_), 0, (a_), (b_), (rc_), (benign_)};                      \
            o[n++] = x_;                                                                           \
        }                                                                                          \
    } while (0)
    ADD(O_FATE, LAMBDA, LAMBDA, OUT_ANSWER, 0, 1);
    if (el->ckind == KLE_SM_EVENT) {
        if (f & SIM_F_EVENT_SLOW)
            ADD(O_FATE, -1, 0, OUT_ANSWER, 0, 0);
        return n;
    }
    int write = el->ckind != KLE_SM_GET;
    if ((f & SIM_F_ANS_LATE) && KLE_SEC(1) + LAMBDA < to - 3 * LAMBDA)
        ADD(O_FATE, KLE_SEC(1) + LAMBDA, LAMBDA, OUT_ANSWER, 0, 0);
    if ((f & SIM_F_ANS_LATE) && to > 3 * LAMBDA)
        ADD(O_FATE, to - 2 * LAMBDA, LAMBDA, OUT_ANSWER, 0, 0);
    if (write && (f & SIM_F_ANS_LOST))
        ADD(O_FATE, LAMBDA, 0, OUT_LOST, 0, 0);
    if (write && (f & SIM_F_ANS_LOST) && KLE_SEC(1) + LAMBDA < to - 3 * LAMBDA)
        ADD(O_FATE, KLE_SEC(1) + LAMBDA, 0, OUT_LOST, 0, 0);
    if (write && (f & SIM_F_ERR_APPLIED))
        ADD(O_FATE, LAMBDA, LAMBDA, OUT_ERR, 0, 0);
    if (f & SIM_F_REFUSE) {
        ADD(O_FATE, LAMBDA, LAMBDA, OUT_REFUSE, KLE_ESERVER, 0);
        if (!write)
            ADD(O_FATE, LAMBDA, LAMBDA, OUT_REFUSE, KLE_ENOTFOUND, 0);
    }
    if (write && (f & SIM_F_APPLY_LATE)) {
        ADD(O_FATE, to + LAMBDA, 0, OUT_LOST, 0, 0);
        if (rd > to + LAMBDA)
            ADD(O_FATE, rd + LAMBDA, 0, OUT_LOST, 0, 0);
        ADD(O_FATE, ld + LAMBDA, 0, OUT_LOST, 0, 0);
    }
    if (f & SIM_F_REQ_LOST)
        ADD(O_FATE, -1, 0, OUT_ANSWER, 0, 0);
#undef ADD
    return n;
}

/* Faults the exhaustive search may inject at a step (within its budget). */
static int fault_options(const sim *w, opt *o, int max)
{
    int n = 0;
    unsigned f = w->c.faults;
    const sim_config *c = &w->c;
#define ADDF(sub_, e_, arg_, a_, rc_)                                                              \
    do {                                                                                           \
        opt x_ = {O_FAULT, (e_), (sub_), (arg_), (a_), 0, (rc_), 0};                               \
        if (n < max && fault_valid(w, &x_))                                                        \
            o[n++] = x_;                                                                           \
    } while (0)
    for (int i = 0; i < c->n; i++) {
        if (f & SIM_F_PAUSE) {
            ADDF(FK_PAUSE, i, 0, c->renew + LAMBDA, 0);
            ADDF(FK_PAUSE, i, 0, c->lease + LAMBDA, 0);
        }
        if (f & SIM_F_WALL_STEP) {
            ADDF(FK_WALL, i, 0, -c->wall_step, 0);
            ADDF(FK_WALL, i, 0, c->wall_step, 0);
        }
        if (f & SIM_F_STOP)
            ADDF(FK_STOP, i, 0, 0, 0);
        if (f & SIM_F_TRANSFER)
            ADDF(FK_TRANSFER, i, 0, 0, 0);
        if (f & SIM_F_EDIT)
            ADDF(FK_EDIT, i, ED_ELECTOR, 0, 0);
        if (f & SIM_F_WATCH_END) {
            ADDF(FK_WEND, i, 0, 0, KLE_ETRANSPORT);
            ADDF(FK_WEND, i, 0, 0, KLE_EFORBIDDEN);
        }
        if (f & SIM_F_WATCH_SILENCE)
            ADDF(FK_WSILENCE, i, 0, 0, 0);
        if (f & SIM_F_WATCH_GONE)
            ADDF(FK_WGONE, i, 0, 0, 0);
        if (f & SIM_F_WATCH_DUP)
            ADDF(FK_WDUP, i, 0, 0, 0);
        if (f & SIM_F_WATCH_STALE)
            ADDF(FK_WSTALE, i, 0, 0, 0);
    }
    if (f & SIM_F_DELETE)
        ADDF(FK_DELETE, 0, 0, 0, 0);
    if (f & SIM_F_STATE_LOSS)
        ADDF(FK_LOSS, 0, 0, 0, 0);
    if (f & SIM_F_TOUCH)
        ADDF(FK_TOUCH, 0, 0, 0, 0);
    if (f & SIM_F_BOOKMARK)
        ADDF(FK_BOOKMARK, 0, 0, 0, 0);
    if (f & SIM_F_EDIT)
        for (int k = 0; k < ED_N; k++)
            if (k != ED_ELECTOR)
                ADDF(FK_EDIT, 0, k, 0, 0);
#undef ADDF
    return n;
}

/* The key of the current decision point. */
static void current_key(sim *w, char *key, size_t size)
{
    if (w->nd) {
        const decision *d = &w->d[0];
        switch (d->kind) {
        case D_FATE:
            snprintf(key, size, "e%d.%u.c%" PRIu64, d->e, d->inc, d->ref);
            return;
        case D_WORK:
            snprintf(key, size, "e%d.%u.t%" PRIu64, d->e, d->inc, d->ref);
            return;
        case D_WEV:
            snprintf(key, size, "e%d.%u.s%u.%" PRIu64, d->e, d->inc, d->gen, d->ref);
            return;
        case D_FAULTGEN:
            snprintf(key, size, "F%" PRIu64, d->ref);
            return;
        }
    }
    snprintf(key, size, "@%" PRId64 ".%d", w->t, w->t == w->key_t ? w->key_k : 0);
}

/* Enumerates the options at this point (exhaustive classes; the swarm draws its own). */
static int enum_options(sim *w, opt *o, int max)
{
    if (w->violated)
        return 0;
    if (w->nd) {
        const decision *d = &w->d[0];
        switch (d->kind) {
        case D_FATE:
            return fate_options(w, d, o, max);
        case D_WORK: {
            opt p = {O_WORK, d->e, 0, 0, LAMBDA, 0, 0, 1};
            o[0] = p;
            opt q = {O_WORK, d->e, 0, 0, w->c.renew / 2, 0, 0, 0};
            o[1] = q;
            return 2;
        }
        case D_WEV: {
            opt p = {O_WEV, d->e, 0, 0, LAMBDA, 0, 0, 1};
            o[0] = p;
            int n = 1;
            if (w->c.faults & SIM_F_WATCH_DELAY) {
                opt q = {O_WEV, d->e, 0, 0, KLE_SEC(1) + LAMBDA, 0, 0, 0};
                o[n++] = q;
                opt r = {O_WEV, d->e, 0, 0, w->c.renew + LAMBDA, 0, 0, 0};
                o[n++] = r;
            }
            return n;
        }
        case D_FAULTGEN: {
            opt p = {O_NOFAULT, -1, 0, 0, 0, 0, 0, 1};
            o[0] = p;
            return 1 + fault_options(w, o + 1, max - 1);
        }
        }
        return 0;
    }
    cand cs[MAX_ITEMS + SIM_MAX_ELECTORS];
    int nc = candidates(w, cs, MAX_ITEMS + SIM_MAX_ELECTORS);
    if (nc == 0)
        return 0;
    int n = 0;
    for (int i = 0; i < nc && n < max; i++) {
        opt p = {O_PICK, cs[i].e, cs[i].item, 0, cs[i].due, 0, 0, i == 0};
        o[n++] = p;
    }
    if (w->c.exhaustive && w->faults_used < w->c.max_faults && n < max)
        n += fault_options(w, o + n, max - n);
    return n;
}

/* ---- taking an option -------------------------------------------------------------------------
 */

static void resolve_fate(sim *w, const decision *d, const opt *o)
{
    elector *el = &w->e[d->e];
    if (el->inc != d->inc || el->call != d->ref)
        return;
    int64_t to_due = g_of(el, el->sent + (el->timeout > 0 ? el->timeout : 0));
    item *to = item_add(w, IT_TO, d->e, to_due);
    to->call = d->ref;
    if (o->a < 0 || el->timeout <= 0)
        return; /* never delivered */
    if (el->ckind == KLE_SM_EVENT) {
        item *a = item_add(w, IT_ANS, d->e, w->t + o->a + o->b);
        a->call = d->ref;
        a->ckind = KLE_SM_EVENT;
        return;
    }
    item *r = item_add(w, IT_REQ, d->e, w->t + o->a);
    r->call = d->ref;
    r->ckind = (uint8_t)el->ckind;
    r->outcome = (uint8_t)o->sub;
    r->rc = o->rc;
    r->ans_delay = o->b;
    r->has_exp = (uint8_t)el->has_exp;
    r->exp_rv = el->exp;
    r->uid = el->exp_uid;
    if (el->has_crec)
        r->rec = el->crec;
    r->base = el->seen_other ? el->max_other : -1;
    r->blind = !el->knew_object;
}

static int apply_opt(sim *w, const opt *o)
{
    w->steps++;
    w->st.steps++;
    if (w->nd) {
        decision d = w->d[0];
        decision_pop(w);
        switch (d.kind) {
        case D_FATE:
            resolve_fate(w, &d, o);
            break;
        case D_WORK:
            for (int i = 0; i < MAX_WORKS; i++)
                if (w->wk[i].used && w->wk[i].e == d.e && w->wk[i].inc == d.inc &&
                    w->e[d.e].work == i && w->e[d.e].terms == d.ref)
                    w->wk[i].wind = o->a;
            break;
        case D_WEV: {
            int i = item_find_seq(w, d.ref);
            if (i >= 0) {
                elector *el = &w->e[d.e];
                int64_t due = w->t + o->a;
                /* Later events of the stream keep their order behind it. */
                if (due > w->it[i].due) {
                    w->it[i].due = w->it[i].orig = due;
                    if (due > el->last_wdue)
                        el->last_wdue = due;
                    for (int j = 0; j < w->nit; j++)
                        if (w->it[j].kind == IT_WEV && w->it[j].e == d.e && w->it[j].gen == d.gen &&
                            w->it[j].seq > d.ref && w->it[j].due < due)
                            w->it[j].due = w->it[j].orig = due;
                }
            }
            break;
        }
        case D_FAULTGEN:
            if (o->kind == O_FAULT && fault_valid(w, o))
                apply_fault(w, o);
            break;
        }
    } else if (o->kind == O_FAULT) {
        w->faults_used++;
        if (fault_valid(w, o))
            apply_fault(w, o);
    } else if (o->kind == O_PICK) {
        if (o->a > w->t)
            w->t = o->a;
        if (w->t == w->same_time_t) {
            if (++w->same_time > SAME_TIME_STEPS)
                violate(w, "model: %d steps without time moving (a machine that never rests)",
                        SAME_TIME_STEPS);
        } else {
            w->same_time_t = w->t;
            w->same_time = 0;
        }
        if (o->sub < 0)
            tick(w, o->e);
        else
            process_item(w, o->sub);
    }
    if (w->t != w->key_t) {
        w->key_t = w->t;
        w->key_k = 0;
    } else {
        w->key_k++;
    }
    check(w);
    return w->violated;
}

/* ---- life
 * ------------------------------------------------------------------------------------------ */

void sim_config_default(sim_config *c)
{
    memset(c, 0, sizeof(*c));
    c->n = 2;
    c->lease = KLE_SEC(4);
    c->renew = KLE_SEC(3);
    c->retry = KLE_SEC(1);
    c->seed = 1;
    c->rate_ppm = 10000;
    c->wall_step = KLE_SEC(5);
    c->fault_until = KLE_SEC(60);
    c->run_until = KLE_SEC(90);
    c->fault_every_ms = 1000;
    c->call_fault_pct = 10;
    c->max_faults = 2;
    c->horizon = KLE_SEC(20);
}

static int64_t default_timeout(const sim_config *c)
{
    if (c->call_timeout)
        return c->call_timeout;
    return c->renew / 2 > KLE_NS_PER_SEC ? c->renew / 2 : KLE_NS_PER_SEC;
}

sim *sim_new(const sim_config *cfg)
{
    sim *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->c = *cfg;
    w->c.call_timeout = default_timeout(cfg);
    if (w->c.n < 1)
        w->c.n = 2;
    if (w->c.n > SIM_MAX_ELECTORS)
        w->c.n = SIM_MAX_ELECTORS;
    uint64_t s = cfg->seed * 7919 + 17;
    w->rng = hash64(cfg->seed, 99);
    w->wall0 = WALL_EPOCH + rnd_range(&s, 0, KLE_NS_PER_SEC);
    w->key_t = 0;
    w->same_time_t = -1;
    for (int i = 0; i < w->c.n; i++) {
        elector *el = &w->e[i];
        el->id = ids[(cfg->same_identity && i == 1) ? 0 : i];
        el->off = rnd_range(&s, KLE_SEC(1), KLE_SEC(1000));
        el->ppm = cfg->rate_ppm ? rnd_range(&s, -cfg->rate_ppm, cfg->rate_ppm + 1) : 0;
        el->skew = rnd_range(&s, -MAX_SKEW, MAX_SKEW + 1);
        el->watch = (cfg->watch_mask >> i) & 1;
        el->jitter_seed = splitmix(&s);
        el->work = -1;
        machine_new(w, i);
    }
    for (int i = 0; i < w->c.n; i++) {
        elector *el = &w->e[i];
        kle_sm_start(el->sm, now_of(w, i), wall_of(w, el, 0));
        handle_actions(w, i);
    }
    if (!cfg->exhaustive) {
        int64_t gap = (int64_t)w->c.fault_every_ms * KLE_NS_PER_MS;
        if (gap > 0 && w->c.fault_until > 0 && w->c.faults)
            item_add(w, IT_FAULTGEN, -1,
                     gap / 2 + (int64_t)(hash64(cfg->seed, 0) % (uint64_t)(gap + 1)));
        if (w->c.fault_until > 0 && w->c.fault_until < w->c.run_until)
            item_add(w, IT_QUIET, -1, w->c.fault_until);
    }
    return w;
}

sim *sim_clone(const sim *src)
{
    sim *w = malloc(sizeof(*w));
    if (!w)
        return NULL;
    memcpy(w, src, sizeof(*w));
    for (int i = 0; i < src->c.n; i++) {
        w->e[i].sm = src->e[i].sm ? kle_sm_clone(src->e[i].sm) : NULL;
        if (src->e[i].sm && !w->e[i].sm) {
            for (int j = 0; j < i; j++)
                kle_sm_free(w->e[j].sm);
            free(w);
            return NULL;
        }
    }
    return w;
}

void sim_free(sim *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->c.n; i++)
        kle_sm_free(w->e[i].sm);
    free(w);
}

int sim_options(sim *w, sim_option *out, int max, char *key, size_t key_size)
{
    opt o[MAX_OPTS];
    int n = enum_options(w, o, MAX_OPTS);
    if (key && key_size)
        current_key(w, key, key_size);
    for (int i = 0; out && i < n && i < max; i++) {
        opt_label(w, &o[i], out[i].label, sizeof(out[i].label));
        out[i].benign = o[i].benign;
    }
    return n;
}

int sim_apply(sim *w, int k)
{
    opt o[MAX_OPTS];
    int n = enum_options(w, o, MAX_OPTS);
    if (k < 0 || k >= n)
        return -1;
    return apply_opt(w, &o[k]);
}

/* Parses @p label into an option valid at this point; -1 when it is not one. */
static int parse_option(sim *w, const char *label, opt *out)
{
    opt o[MAX_OPTS];
    int n = enum_options(w, o, MAX_OPTS);
    char buf[64];
    for (int i = 0; i < n; i++) {
        opt_label(w, &o[i], buf, sizeof(buf));
        if (!strcmp(buf, label)) {
            *out = o[i];
            return 0;
        }
    }
    if (n == 0)
        return -1;
    /* Options with parameters outside the enumerated classes. */
    if (w->nd) {
        const decision *d = &w->d[0];
        long long a = 0, b = 0;
        int rc = 0;
        memset(out, 0, sizeof(*out));
        out->e = d->e;
        switch (d->kind) {
        case D_FATE:
            out->kind = O_FATE;
            if (!strcmp(label, "never")) {
                out->a = -1;
            } else if (sscanf(label, "refuse=%d after=%lld", &rc, &a) == 2) {
                out->sub = OUT_REFUSE, out->rc = rc, out->a = a, out->b = a;
            } else if (sscanf(label, "apply=%lld ans=%lld", &a, &b) == 2) {
                out->sub = OUT_ANSWER, out->a = a, out->b = b;
            } else if (sscanf(label, "apply=%lld lost", &a) == 1 && strstr(label, "lost")) {
                out->sub = OUT_LOST, out->a = a;
            } else if (sscanf(label, "apply=%lld err", &a) == 1 && strstr(label, "err")) {
                out->sub = OUT_ERR, out->a = a, out->b = LAMBDA;
            } else {
                return -1;
            }
            if (out->sub == OUT_REFUSE)
                out->a = LAMBDA, out->b = a;
            return 0;
        case D_WORK:
            out->kind = O_WORK;
            if (sscanf(label, "wind=%lld", &a) != 1 || a < 0)
                return -1;
            out->a = a;
            return 0;
        case D_WEV:
            out->kind = O_WEV;
            if (sscanf(label, "delay=%lld", &a) != 1 || a < 0)
                return -1;
            out->a = a;
            return 0;
        case D_FAULTGEN:
            if (fault_parse(label, out) < 0 || !fault_valid(w, out))
                return -1;
            return 0;
        }
        return -1;
    }
    if (fault_parse(label, out) == 0 && fault_valid(w, out))
        return 0;
    return -1;
}

int sim_apply_label(sim *w, const char *label)
{
    opt o;
    if (parse_option(w, label, &o) < 0)
        return -1;
    return apply_opt(w, &o);
}

static uint64_t hash_srec(uint64_t h, const srec *r)
{
    h = mix_bytes(h, r->holder, r->holder_len);
    h = mixh(h, r->has_preferred ? r->preferred_len + 1u : 0);
    if (r->has_preferred)
        h = mix_bytes(h, r->preferred, r->preferred_len);
    h = mixh(h, (uint64_t)r->lease_s);
    h = mixh(h, (uint64_t)r->transitions);
    h = mixh(h, (uint64_t)r->acquire);
    return mixh(h, (uint64_t)r->renew);
}

uint64_t sim_hash(const sim *w)
{
    uint64_t h = mixh(0, (uint64_t)w->t);
    h = mixh(h, (uint64_t)w->faults_used);
    h = mixh(h, (uint64_t)(w->s.exists | w->s.epoch << 1));
    h = mixh(h, w->s.rv);
    h = mixh(h, (uint64_t)w->s.incarnation << 32 | (uint32_t)w->s.inc_base);
    h = mixh(h, (uint64_t)w->s.inc_creator << 1 | (uint64_t)w->s.inc_blind);
    h = hash_srec(h, &w->s.rec);
    h = mixh(h, w->s.prev_rv);
    if (w->s.prev_rv)
        h = hash_srec(h, &w->s.prev);
    h = mixh(h, (uint64_t)w->has_token << 32 ^ (uint64_t)(uint32_t)w->last_token);
    for (int i = 0; i < w->c.n; i++) {
        const elector *el = &w->e[i];
        h = mixh(h, el->sm ? kle_sm_state_hash(el->sm, now_of(w, i)) : 0);
        h = mixh(h, (uint64_t)(el->status | el->stopping << 2 | el->has_rv << 3 | el->open << 4 |
                               el->silent << 5 | el->has_exp << 6));
        h = mixh(h, el->inc);
        h = mixh(h, el->rv);
        h = mixh(h, el->exp);
        h = mixh(h, (uint64_t)el->uid << 32 | el->exp_uid);
        h = mixh(h, el->gen);
        h = mixh(h, (uint64_t)el->step);
        h = mixh(h, (uint64_t)(el->pause_until > w->t ? el->pause_until - w->t : 0));
        h = mixh(h, el->call);
        h = mixh(h, (uint64_t)el->max_seen);
        h = mixh(h, (uint64_t)el->max_other << 1 | (uint64_t)el->seen_other);
        h = mixh(h, (uint64_t)el->knew_object << 32 | (uint64_t)el->knew_foreign << 33 |
                        el->applied_inc);
        h = mixh(h, (uint64_t)(uint32_t)el->applied_base << 1 | (uint64_t)el->applied_blind);
    }
    /* Pending messages, as a multiset (order-free sum), and works. */
    uint64_t sum = 0;
    for (int i = 0; i < w->nit; i++) {
        const item *it = &w->it[i];
        uint64_t x = mixh(it->kind, it->e);
        x = mixh(x, it->inc);
        x = mixh(x, it->call);
        x = mixh(x, (uint64_t)(it->due - w->t));
        x = mixh(x, (uint64_t)it->rc);
        x = mixh(x, (uint64_t)(it->outcome | it->type << 8 | it->listed << 16 | it->exists << 17));
        x = mixh(x, it->rv);
        x = mixh(x, it->exp_rv);
        x = mixh(x, it->uid);
        x = mixh(x, (uint64_t)it->ans_delay);
        x = mixh(x, it->gen);
        if (it->kind == IT_WEV) {
            uint64_t rank = 0;
            for (int j = 0; j < w->nit; j++)
                if (w->it[j].kind == IT_WEV && w->it[j].e == it->e && w->it[j].seq < it->seq)
                    rank++;
            x = mixh(x, rank);
        }
        if (it->kind == IT_REQ || it->kind == IT_ANS || it->kind == IT_WEV)
            x = hash_srec(x, &it->rec);
        sum += splitmix(&x);
    }
    h = mixh(h, sum);
    sum = 0;
    for (int i = 0; i < MAX_WORKS; i++) {
        const work *k = &w->wk[i];
        if (!k->used)
            continue;
        uint64_t x = mixh(k->e, k->inc);
        x = mixh(x, (uint64_t)(k->told | k->token << 1));
        x = mixh(x, (uint64_t)k->deadline);
        x = mixh(x, (uint64_t)k->wind);
        sum += splitmix(&x);
    }
    h = mixh(h, sum);
    for (int i = 0; i < w->nd; i++) {
        h = mixh(h, (uint64_t)w->d[i].kind);
        h = mixh(h, (uint64_t)w->d[i].e);
        h = mixh(h, w->d[i].ref);
    }
    return h;
}

const char *sim_violation(const sim *w)
{
    return w->violated ? w->msg : NULL;
}

int64_t sim_now(const sim *w)
{
    return w->t;
}

uint64_t sim_steps(const sim *w)
{
    return w->steps;
}

void sim_get_stats(const sim *w, sim_stats *out)
{
    *out = w->st;
}

/* ---- configs as text
 * -------------------------------------------------------------------------------- */

int sim_config_format(char *buf, size_t size, const sim_config *c)
{
    return snprintf(buf, size,
                    "n=%d ld=%" PRId64 " rd=%" PRId64 " rp=%" PRId64 " to=%" PRId64
                    " ws=%d watch=%u roc=%d same=%d mut=%d seed=%" PRIu64 " ppm=%" PRId64
                    " step=%" PRId64 " faults=%u slow=%d fu=%" PRId64 " ru=%" PRId64
                    " every=%d pct=%d exh=%d maxf=%d hz=%" PRId64,
                    c->n, c->lease, c->renew, c->retry, c->call_timeout, c->whole_seconds,
                    c->watch_mask, c->release_on_cancel, c->same_identity, c->mutations, c->seed,
                    c->rate_ppm, c->wall_step, c->faults, c->slow_work, c->fault_until,
                    c->run_until, c->fault_every_ms, c->call_fault_pct, c->exhaustive,
                    c->max_faults, c->horizon);
}

int sim_config_parse(sim_config *c, const char *text)
{
    sim_config_default(c);
    long long v[22];
    unsigned long long seed = 0;
    int k =
        sscanf(text,
               "n=%lld ld=%lld rd=%lld rp=%lld to=%lld ws=%lld watch=%lld roc=%lld "
               "same=%lld mut=%lld seed=%llu ppm=%lld step=%lld faults=%lld slow=%lld "
               "fu=%lld ru=%lld every=%lld pct=%lld exh=%lld maxf=%lld hz=%lld",
               &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &seed, &v[11],
               &v[12], &v[13], &v[14], &v[15], &v[16], &v[17], &v[18], &v[19], &v[20], &v[21]);
    if (k != 22)
        return -1;
    c->n = (int)v[0];
    c->lease = v[1];
    c->renew = v[2];
    c->retry = v[3];
    c->call_timeout = v[4];
    c->whole_seconds = (int)v[5];
    c->watch_mask = (unsigned)v[6];
    c->release_on_cancel = (int)v[7];
    c->same_identity = (int)v[8];
    c->mutations = (int)v[9];
    c->seed = seed;
    c->rate_ppm = v[11];
    c->wall_step = v[12];
    c->faults = (unsigned)v[13];
    c->slow_work = (int)v[14];
    c->fault_until = v[15];
    c->run_until = v[16];
    c->fault_every_ms = (int)v[17];
    c->call_fault_pct = (int)v[18];
    c->exhaustive = (int)v[19];
    c->max_faults = (int)v[20];
    c->horizon = v[21];
    if (c->n < 2 || c->n > SIM_MAX_ELECTORS || c->lease <= 0 || c->renew <= 0 || c->retry <= 0)
        return -1;
    return 0;
}

/* ---- traces
 * ------------------------------------------------------------------------------------------- */

typedef struct choice {
    char key[48];
    char label[64];
} choice;

typedef struct trace {
    sim_config c;
    choice *v;
    int n, cap;
} trace;

static void trace_free(trace *t)
{
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

static int trace_add(trace *t, const char *key, const char *label)
{
    if (t->n == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        choice *v = realloc(t->v, (size_t)cap * sizeof(*v));
        if (!v)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    snprintf(t->v[t->n].key, sizeof(t->v[t->n].key), "%s", key);
    snprintf(t->v[t->n].label, sizeof(t->v[t->n].label), "%s", label);
    t->n++;
    return 0;
}

static const char *trace_get(const trace *t, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (t->v[i].key[0] && !strcmp(t->v[i].key, key))
            return t->v[i].label;
    return NULL;
}

static char *trace_format(const trace *t)
{
    size_t cap = 1024 + (size_t)t->n * 120;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t n = (size_t)sim_config_format(s, cap, &t->c);
    s[n++] = '|';
    s[n] = '\0';
    for (int i = 0; i < t->n; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%s=%s", i ? ";" : "", t->v[i].key, t->v[i].label);
    return s;
}

static int trace_parse(trace *t, const char *text)
{
    memset(t, 0, sizeof(*t));
    const char *bar = strchr(text, '|');
    if (!bar)
        return -1;
    char head[1024];
    size_t hl = (size_t)(bar - text);
    if (hl >= sizeof(head))
        return -1;
    memcpy(head, text, hl);
    head[hl] = '\0';
    if (sim_config_parse(&t->c, head) < 0)
        return -1;
    const char *p = bar + 1;
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char part[160];
        if (len >= sizeof(part)) {
            trace_free(t);
            return -1;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        char *eq = strchr(part, '=');
        if (!eq) {
            trace_free(t);
            return -1;
        }
        *eq = '\0';
        if (trace_add(t, part, eq + 1) < 0) {
            trace_free(t);
            return -1;
        }
        p += len;
        if (*p == ';')
            p++;
    }
    return 0;
}

/*
 * Runs @p w to its end following @p in (lenient: an entry that cannot be
 * taken falls back to the default), recording the non-default choices made
 * in @p out. Returns 1 on a violation, 0 at the end, -1 when strict and a
 * choice could not be taken.
 */
static int run_trace(sim *w, const trace *in, int lenient, trace *out)
{
    opt o[MAX_OPTS];
    char key[48], label[64];
    for (;;) {
        int n = enum_options(w, o, MAX_OPTS);
        if (n == 0)
            return w->violated ? 1 : 0;
        current_key(w, key, sizeof(key));
        const char *want = in ? trace_get(in, key) : NULL;
        opt chosen = o[0];
        if (want) {
            if (parse_option(w, want, &chosen) < 0) {
                if (!lenient) {
                    snprintf(w->msg, sizeof(w->msg), "trace: %s=%s cannot be taken here", key,
                             want);
                    return -1;
                }
                chosen = o[0];
            }
        }
        if (out && !chosen.benign) {
            opt_label(w, &chosen, label, sizeof(label));
            trace_add(out, key, label);
        }
        if (apply_opt(w, &chosen))
            return 1;
    }
}

int sim_replay(const char *text, int mutations, char *msg, size_t msg_size)
{
    trace t;
    if (trace_parse(&t, text) < 0) {
        if (msg && msg_size)
            snprintf(msg, msg_size, "malformed trace");
        return -1;
    }
    /* Under other rules than it was recorded with, the run may take another
     * course: the choices whose points come are taken, the defaults elsewhere. */
    int lenient = mutations >= 0 && mutations != t.c.mutations;
    if (mutations >= 0)
        t.c.mutations = mutations;
    sim *w = sim_new(&t.c);
    if (!w) {
        trace_free(&t);
        return -1;
    }
    const char *log = getenv("SIM_LOG");
    if (log && (*log == '1' || *log == '2'))
        w->log = stderr;
    int rc = run_trace(w, &t, lenient, NULL);
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", rc != 0 ? w->msg : "");
    sim_free(w);
    trace_free(&t);
    return rc;
}

/*
 * 1 when the choices of @p t, taken with every rule on, break an invariant.
 * The run may take another course than the mutant's (a choice whose point
 * never comes falls back to the default): it is still a run of the model.
 * Its exact trace goes to @p rec (when not NULL) and its message to @p msg.
 */
static int fails_on_real_rules(const trace *t, trace *rec, char *msg, size_t msg_size)
{
    trace u = *t;
    u.c.mutations = 0;
    sim *w = sim_new(&u.c);
    if (!w)
        return 0;
    if (rec) {
        memset(rec, 0, sizeof(*rec));
        rec->c = u.c;
    }
    int rc = run_trace(w, &u, 1, rec);
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", w->msg);
    sim_free(w);
    return rc == 1;
}

/* A mutant's violation that the real rules have too: a finding, kept once. */
static int baseline_hit(sim_result *out, const trace *t)
{
    trace rec;
    char msg[512];
    if (!fails_on_real_rules(t, &rec, msg, sizeof(msg))) {
        trace_free(&rec);
        return 0;
    }
    if (!out->baseline++) {
        snprintf(out->baseline_message, sizeof(out->baseline_message), "%s", msg);
        out->baseline_trace = trace_format(&rec);
    }
    trace_free(&rec);
    return 1;
}

/* A lenient run of @p t; 1 when it breaks an invariant of the same class as @p cls. */
static int still_fails(const trace *t, const char *cls, trace *rec)
{
    sim *w = sim_new(&t->c);
    if (!w)
        return 0;
    if (rec) {
        trace_free(rec);
        rec->c = t->c;
    }
    int rc = run_trace(w, t, 1, rec);
    int same = rc == 1 && strncmp(w->msg, cls, 2) == 0;
    sim_free(w);
    /* A mutant's trace must pass on the real rules. */
    if (same && rec && t->c.mutations && fails_on_real_rules(rec, NULL, NULL, 0))
        same = 0;
    return same;
}

static char *shrink_trace(trace *t)
{
    trace rec;
    memset(&rec, 0, sizeof(rec));
    rec.c = t->c;
    sim *w = sim_new(&t->c);
    if (!w)
        return NULL;
    int rc = run_trace(w, t, 1, &rec);
    char cls[3] = {w->msg[0], w->msg[1], 0};
    sim_free(w);
    if (rc != 1) {
        trace_free(&rec);
        return trace_format(t);
    }
    /* Remove chunks of choices (ddmin), as long as the failure stays. */
    trace cur = rec;
    memset(&rec, 0, sizeof(rec));
    for (int chunk = cur.n / 2 > 0 ? cur.n / 2 : 1; chunk >= 1; chunk /= 2) {
        int changed = 1;
        while (changed) {
            changed = 0;
            for (int start = 0; start < cur.n; start += chunk) {
                trace trial;
                memset(&trial, 0, sizeof(trial));
                trial.c = cur.c;
                for (int i = 0; i < cur.n; i++)
                    if (i < start || i >= start + chunk)
                        trace_add(&trial, cur.v[i].key, cur.v[i].label);
                trace got;
                memset(&got, 0, sizeof(got));
                if (still_fails(&trial, cls, &got)) {
                    trace_free(&cur);
                    cur = got;
                    changed = 1;
                    trace_free(&trial);
                    break;
                }
                trace_free(&got);
                trace_free(&trial);
            }
        }
        if (chunk == 1)
            break;
    }
    char *s = trace_format(&cur);
    trace_free(&cur);
    return s;
}

char *sim_shrink(const char *text, int mutations)
{
    trace t;
    if (trace_parse(&t, text) < 0)
        return NULL;
    if (mutations >= 0)
        t.c.mutations = mutations;
    char *s = shrink_trace(&t);
    trace_free(&t);
    return s;
}

void sim_result_free(sim_result *r)
{
    free(r->trace);
    r->trace = NULL;
    free(r->baseline_trace);
    r->baseline_trace = NULL;
}

/* ---- the exhaustive search
 * ------------------------------------------------------------------------ */

typedef struct visited {
    uint64_t *keys;
    uint8_t *depth;
    size_t cap, used;
} visited;

static int visited_init(visited *v, size_t cap)
{
    v->cap = cap;
    v->used = 0;
    v->keys = calloc(cap, sizeof(uint64_t));
    v->depth = calloc(cap, 1);
    return v->keys && v->depth ? 0 : -1;
}

static void visited_free(visited *v)
{
    free(v->keys);
    free(v->depth);
}

static int visited_grow(visited *v)
{
    visited n;
    if (visited_init(&n, v->cap * 2) < 0)
        return -1;
    for (size_t i = 0; i < v->cap; i++) {
        if (!v->keys[i])
            continue;
        size_t j = v->keys[i] & (n.cap - 1);
        while (n.keys[j])
            j = (j + 1) & (n.cap - 1);
        n.keys[j] = v->keys[i];
        n.depth[j] = v->depth[i];
        n.used++;
    }
    visited_free(v);
    *v = n;
    return 0;
}

/* 1 when @p key was seen at a depth no deeper than @p depth; else records it. */
static int visited_check(visited *v, uint64_t key, int depth)
{
    if (!key)
        key = 1;
    if (v->used * 2 > v->cap && visited_grow(v) < 0)
        return 0;
    size_t i = key & (v->cap - 1);
    while (v->keys[i]) {
        if (v->keys[i] == key) {
            if (v->depth[i] <= depth)
                return 1;
            v->depth[i] = (uint8_t)depth;
            return 0;
        }
        i = (i + 1) & (v->cap - 1);
    }
    v->keys[i] = key;
    v->depth[i] = (uint8_t)depth;
    v->used++;
    return 0;
}

typedef struct xsearch {
    int max_depth;
    double deadline;
    visited seen;
    uint64_t states, steps;
    int depth_reached;
    int stopped;
    trace path;
    char msg[512];
    int hit;
    sim_result *out;
} xsearch;

/* A violation on the path: the mutant caught, or (failing on the real rules too) a finding. */
static int dfs_hit(xsearch *x, const sim *w)
{
    if (w->c.mutations && baseline_hit(x->out, &x->path))
        return 0;
    x->hit = 1;
    snprintf(x->msg, sizeof(x->msg), "%s", w->msg);
    return 1;
}

static int dfs(xsearch *x, sim *w, int depth)
{
    opt o[MAX_OPTS];
    char key[48], label[64];
    int n;
    /* Steps with a single option need no copy. */
    for (;;) {
        n = enum_options(w, o, MAX_OPTS);
        if (n == 0)
            return 0;
        if (n > 1)
            break;
        x->steps++;
        if (apply_opt(w, &o[0]))
            return dfs_hit(x, w);
    }
    if (depth >= x->max_depth)
        return 0;
    if ((x->states & 1023) == 0 && x->deadline > 0 && sim_cpu_seconds() > x->deadline) {
        x->stopped = 1;
        return 0;
    }
    if (visited_check(&x->seen, sim_hash(w), depth))
        return 0;
    x->states++;
    if (depth + 1 > x->depth_reached)
        x->depth_reached = depth + 1;
    current_key(w, key, sizeof(key));
    for (int k = 0; k < n && !x->hit && !x->stopped; k++) {
        /* A faulty choice (any but the default, except the order of ties)
         * spends the path's fault budget. */
        int faulty = !o[k].benign && o[k].kind != O_PICK;
        if (faulty && w->faults_used + 1 > w->c.max_faults)
            continue;
        sim *child = sim_clone(w);
        if (!child) {
            x->stopped = 1;
            break;
        }
        if (faulty && o[k].kind != O_FAULT)
            child->faults_used++;
        int recorded = !o[k].benign;
        if (recorded) {
            opt_label(w, &o[k], label, sizeof(label));
            trace_add(&x->path, key, label);
        }
        x->steps++;
        if (apply_opt(child, &o[k]))
            dfs_hit(x, child);
        else
            dfs(x, child, depth + 1);
        sim_free(child);
        if (recorded && !x->hit)
            x->path.n--;
    }
    return x->hit;
}

int sim_exhaustive(const sim_config *c, int depth, double seconds, sim_result *out)
{
    memset(out, 0, sizeof(*out));
    double start = sim_cpu_seconds();
    xsearch x;
    memset(&x, 0, sizeof(x));
    x.out = out;
    x.max_depth = depth > 250 ? 250 : depth;
    x.deadline = seconds > 0 ? start + seconds : 0;
    if (visited_init(&x.seen, 1 << 16) < 0)
        return -1;
    sim_config cc = *c;
    cc.exhaustive = 1;
    cc.call_timeout = default_timeout(c);
    x.path.c = cc;
    sim *w = sim_new(&cc);
    if (!w) {
        visited_free(&x.seen);
        return -1;
    }
    dfs(&x, w, 0);
    sim_free(w);
    out->states = x.states;
    out->depth = x.depth_reached;
    out->steps = x.steps;
    out->complete = !x.stopped && !x.hit;
    if (x.hit) {
        out->found = 1;
        snprintf(out->message, sizeof(out->message), "%s", x.msg);
        out->trace = shrink_trace(&x.path);
    }
    trace_free(&x.path);
    visited_free(&x.seen);
    out->seconds = sim_cpu_seconds() - start;
    return 0;
}

/* ---- the swarm
 * --------------------------------------------------------------------------------------- */

static const int64_t swarm_timings[][4] = {
    {KLE_SEC(4), KLE_SEC(3), KLE_SEC(1), 0},
    {KLE_SEC(15), KLE_SEC(10), KLE_SEC(2), 0},
    {KLE_SEC(8), KLE_SEC(6), KLE_SEC(1), 0},
    {KLE_SEC(2), KLE_MS(1200), KLE_MS(900), 0},
    {KLE_SEC(4), KLE_SEC(3), KLE_MS(2400), KLE_MS(700)},
    {KLE_SEC(15), KLE_SEC(10), KLE_SEC(2), KLE_MS(1500)},
};

/* A run's own config and fault mix, from its seed, within @p base. */
static void swarm_config(const sim_config *base, uint64_t seed, sim_config *c)
{
    uint64_t s = hash64(seed, 0x5eed);
    *c = *base;
    c->exhaustive = 0;
    c->seed = seed;
    if (base->n == 0)
        c->n = 2 + (int)(splitmix(&s) % 4);
    const int64_t *t =
        swarm_timings[splitmix(&s) % (sizeof(swarm_timings) / sizeof(swarm_timings[0]))];
    if (base->lease == 0) {
        c->lease = t[0];
        c->renew = t[1];
        c->retry = t[2];
        c->call_timeout = t[3];
    }
    if (base->whole_seconds < 0)
        c->whole_seconds = (int)(splitmix(&s) & 1);
    if (base->watch_mask == ~0u)
        c->watch_mask = (unsigned)(splitmix(&s) % (1u << c->n));
    else
        c->watch_mask &= (1u << c->n) - 1;
    if (base->release_on_cancel < 0)
        c->release_on_cancel = (int)(splitmix(&s) & 1);
    if (base->same_identity < 0)
        c->same_identity = splitmix(&s) % 8 == 0;
    if (base->slow_work < 0)
        c->slow_work = (int)(splitmix(&s) & 1);
    /* Each kind on with probability one half; at least one. */
    unsigned kinds = 0;
    while (!kinds && base->faults) {
        for (int b = 0; b < 22; b++)
            if ((base->faults >> b & 1) && (splitmix(&s) & 1))
                kinds |= 1u << b;
    }
    c->faults = kinds;
    static const int pcts[] = {2, 5, 10, 20, 40};
    c->call_fault_pct = pcts[splitmix(&s) % 5];
    static const int every[] = {2, 5, 10, 30};
    c->fault_every_ms = (int)(c->retry / KLE_NS_PER_MS * every[splitmix(&s) % 4] / 10);
    if (c->fault_every_ms < 50)
        c->fault_every_ms = 50;
    int64_t faults_for = 6 * c->lease + (int64_t)(splitmix(&s) % 4) * c->lease;
    c->fault_until = faults_for;
    int64_t to = default_timeout(c);
    c->run_until = faults_for + 2 * (to + 5 * c->retry + c->lease + 3 * c->retry) + KLE_SEC(1);
}

/* A random option for the decision at hand (the swarm's chooser). */
static void swarm_choose(sim *w, uint64_t *s, opt *o, const opt *enumerated, int n)
{
    const sim_config *c = &w->c;
    unsigned f = c->faults;
    if (!w->nd) {
        /* Ties: any order. */
        int k = (int)(splitmix(s) % (uint64_t)n);
        *o = enumerated[k];
        return;
    }
    const decision *d = &w->d[0];
    *o = enumerated[0];
    if (w->quiet)
        return; /* the faults have stopped */
    switch (d->kind) {
    case D_FATE: {
        const elector *el = &w->e[d->e];
        if ((int)(splitmix(s) % 100) >= c->call_fault_pct)
            return;
        int64_t to = g_of(el, el->sent + (el->timeout > 0 ? el->timeout : 0)) - w->t;
        if (to < 4 * LAMBDA)
            to = 4 * LAMBDA;
        int write = el->ckind == KLE_SM_CREATE || el->ckind == KLE_SM_UPDATE;
        unsigned pool[8];
        int np = 0;
        if (el->ckind == KLE_SM_EVENT) {
            if (f & SIM_F_EVENT_SLOW)
                pool[np++] = SIM_F_EVENT_SLOW;
        } else {
            if (f & SIM_F_REQ_LOST)
                pool[np++] = SIM_F_REQ_LOST;
            if (f & SIM_F_ANS_LATE)
                pool[np++] = SIM_F_ANS_LATE;
            if (f & SIM_F_REFUSE)
                pool[np++] = SIM_F_REFUSE;
            if (write && (f & SIM_F_ANS_LOST))
                pool[np++] = SIM_F_ANS_LOST;
            if (write && (f & SIM_F_APPLY_LATE))
                pool[np++] = SIM_F_APPLY_LATE;
            if (write && (f & SIM_F_ERR_APPLIED))
                pool[np++] = SIM_F_ERR_APPLIED;
        }
        if (!np)
            return;
        unsigned kind = pool[splitmix(s) % (uint64_t)np];
        memset(o, 0, sizeof(*o));
        o->kind = O_FATE;
        o->e = d->e;
        switch (kind) {
        case SIM_F_EVENT_SLOW:
        case SIM_F_REQ_LOST:
            o->a = -1;
            break;
        case SIM_F_ANS_LATE:
            o->a = rnd_range(s, LAMBDA, to - 2 * LAMBDA);
            o->b = rnd_range(s, LAMBDA, to - o->a);
            break;
        case SIM_F_REFUSE: {
            static const int rcs[] = {KLE_ECONFLICT, KLE_ESERVER, KLE_ETOOMANYREQUESTS,
                                      KLE_EFORBIDDEN, KLE_ENOTFOUND};
            o->sub = OUT_REFUSE;
            o->rc = rcs[splitmix(s) % 5];
            if (o->rc == KLE_ECONFLICT && el->ckind == KLE_SM_GET)
                o->rc = KLE_ESERVER;
            if (o->rc == KLE_ECONFLICT && el->ckind == KLE_SM_CREATE)
                o->rc = KLE_EEXISTS;
            o->a = LAMBDA;
            o->b = rnd_range(s, LAMBDA, to / 2);
            break;
        }
        case SIM_F_ANS_LOST:
            o->sub = OUT_LOST;
            o->a = rnd_range(s, LAMBDA, to);
            break;
        case SIM_F_APPLY_LATE:
            o->sub = OUT_LOST;
            o->a = to + rnd_range(s, LAMBDA, c->lease + c->renew);
            break;
        case SIM_F_ERR_APPLIED:
            o->sub = OUT_ERR;
            o->a = rnd_range(s, LAMBDA, to / 2);
            o->b = LAMBDA;
            break;
        }
        return;
    }
    case D_WORK:
        if (splitmix(s) & 1) {
            o->benign = 0;
            o->a = rnd_range(s, LAMBDA, c->renew);
        }
        return;
    case D_WEV:
        if ((f & SIM_F_WATCH_DELAY) && (int)(splitmix(s) % 100) < c->call_fault_pct) {
            o->benign = 0;
            o->a = rnd_range(s, LAMBDA, splitmix(s) & 1 ? KLE_SEC(2) : c->lease);
        }
        return;
    case D_FAULTGEN: {
        /* One fault of a kind this run has (not the call and stream-delay ones). */
        static const struct {
            unsigned flag;
            int fk;
        } kinds[] = {{SIM_F_PAUSE, FK_PAUSE},       {SIM_F_WALL_STEP, FK_WALL},
                     {SIM_F_DELETE, FK_DELETE},     {SIM_F_STATE_LOSS, FK_LOSS},
                     {SIM_F_EDIT, FK_EDIT},         {SIM_F_TOUCH, FK_TOUCH},
                     {SIM_F_TRANSFER, FK_TRANSFER}, {SIM_F_STOP, FK_STOP},
                     {SIM_F_WATCH_END, FK_WEND},    {SIM_F_WATCH_SILENCE, FK_WSILENCE},
                     {SIM_F_WATCH_GONE, FK_WGONE},  {SIM_F_BOOKMARK, FK_BOOKMARK},
                     {SIM_F_WATCH_DUP, FK_WDUP},    {SIM_F_WATCH_STALE, FK_WSTALE}};
        int pool[16], np = 0;
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (f & kinds[i].flag)
                pool[np++] = kinds[i].fk;
        if (!np)
            return;
        opt x;
        memset(&x, 0, sizeof(x));
        x.kind = O_FAULT;
        x.sub = pool[splitmix(s) % (uint64_t)np];
        x.e = (int)(splitmix(s) % (uint64_t)c->n);
        switch (x.sub) {
        case FK_PAUSE: {
            int64_t caps[] = {c->retry, c->renew, c->lease, c->lease + c->renew};
            x.a = rnd_range(s, LAMBDA, caps[splitmix(s) % 4] + LAMBDA);
            if (w->t + x.a > c->fault_until)
                x.a = c->fault_until - w->t > LAMBDA ? c->fault_until - w->t : LAMBDA;
            break;
        }
        case FK_WALL:
            x.a = rnd_range(s, -c->wall_step, c->wall_step + 1);
            break;
        case FK_EDIT:
            x.arg = (int)(splitmix(s) % ED_N);
            break;
        case FK_WEND:
            x.rc = splitmix(s) % 8 == 0 ? KLE_EFORBIDDEN : KLE_ETRANSPORT;
            break;
        default:
            break;
        }
        if (fault_valid(w, &x))
            *o = x;
        return;
    }
    }
}

int sim_swarm(const sim_config *base, uint64_t first_seed, uint64_t runs, double seconds,
              sim_result *out)
{
    memset(out, 0, sizeof(*out));
    double start = sim_cpu_seconds();
    opt o[MAX_OPTS];
    char key[48], label[64];
    for (uint64_t r = 0; r < runs; r++) {
        if (seconds > 0 && sim_cpu_seconds() - start > seconds)
            break;
        uint64_t seed = first_seed + r;
        sim_config c;
        swarm_config(base, seed, &c);
        sim *w = sim_new(&c);
        if (!w)
            return -1;
        trace rec;
        memset(&rec, 0, sizeof(rec));
        rec.c = w->c;
        uint64_t s = hash64(seed, 0xc40);
        int rc = 0;
        for (;;) {
            int n = enum_options(w, o, MAX_OPTS);
            if (n == 0)
                break;
            current_key(w, key, sizeof(key));
            opt chosen;
            swarm_choose(w, &s, &chosen, o, n);
            if (!chosen.benign) {
                opt_label(w, &chosen, label, sizeof(label));
                trace_add(&rec, key, label);
            }
            if (apply_opt(w, &chosen)) {
                rc = 1;
                break;
            }
        }
        out->runs++;
        out->steps += w->steps;
        out->token_notes += w->st.token_limit_notes;
        out->blind_notes += w->st.blind_create_notes;
        const char *kg = getenv("SIM_KEEP_GOING");
        if (rc && kg && *kg == '1') {
            /* Survey mode: every failing seed, unshrunk. */
            printf("seed %" PRIu64 ": %s\n", seed, w->msg);
            fflush(stdout);
            rc = 0;
        }
        if (rc && c.mutations && baseline_hit(out, &rec))
            rc = 0;
        if (rc) {
            out->found = 1;
            out->seed = seed;
            snprintf(out->message, sizeof(out->message), "%s", w->msg);
            sim_free(w);
            const char *ns = getenv("SIM_NO_SHRINK");
            out->trace = ns && *ns == '1' ? trace_format(&rec) : shrink_trace(&rec);
            trace_free(&rec);
            break;
        }
        sim_free(w);
        trace_free(&rec);
    }
    out->seconds = sim_cpu_seconds() - start;
    return 0;
}

/* ---- names
 * ------------------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int bit;
} mutation_names[] = {
    {"R1", KLE_SM_MUT_R1_FIRST_SEND},      {"R2", KLE_SM_MUT_R2_LATE_ANSWER},
    {"R3", KLE_SM_MUT_R3_DEADLINE_END},    {"R4", KLE_SM_MUT_R4_OBSERVE_LOCAL},
    {"R5", KLE_SM_MUT_R5_FORGET_RAW},      {"R6", KLE_SM_MUT_R6_RELEASED},
    {"R7", KLE_SM_MUT_R7_QUARANTINE},      {"R8", KLE_SM_MUT_R8_OWN_IDENTITY},
    {"R9", KLE_SM_MUT_R9_TOKENS},          {"R10", KLE_SM_MUT_R10_WORK_FIRST},
    {"R11", KLE_SM_MUT_R11_NOTFOUND_WAIT}, {"D1", KLE_SM_MUT_D1_STEP_DOWN_READ},
    {"D2", KLE_SM_MUT_D2_STREAM_ORDER},    {"D3", KLE_SM_MUT_D3_PREFERRED},
    {"D4", KLE_SM_MUT_D4_NO_LATE_START},   {"D5", KLE_SM_MUT_D5_DELETED_ENDS},
    {"L1", KLE_SM_MUT_L1_TOUCH_CAP},       {"L2", KLE_SM_MUT_L2_FRESH_RENEW},
};

int sim_mutation_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(mutation_names) / sizeof(mutation_names[0]); i++)
        if (!strcmp(name, mutation_names[i].name))
            return mutation_names[i].bit;
    return -1;
}

const char *sim_mutation_name(int bit)
{
    for (size_t i = 0; i < sizeof(mutation_names) / sizeof(mutation_names[0]); i++)
        if (mutation_names[i].bit == bit)
            return mutation_names[i].name;
    return NULL;
}

static const struct {
    const char *name;
    long bits;
} fault_names[] = {
    {"req-lost", SIM_F_REQ_LOST},
    {"ans-lost", SIM_F_ANS_LOST},
    {"ans-late", SIM_F_ANS_LATE},
    {"apply-late", SIM_F_APPLY_LATE},
    {"refuse", SIM_F_REFUSE},
    {"err-applied", SIM_F_ERR_APPLIED},
    {"pause", SIM_F_PAUSE},
    {"wall", SIM_F_WALL_STEP},
    {"delete", SIM_F_DELETE},
    {"loss", SIM_F_STATE_LOSS},
    {"edit", SIM_F_EDIT},
    {"transfer", SIM_F_TRANSFER},
    {"stop", SIM_F_STOP},
    {"watch-delay", SIM_F_WATCH_DELAY},
    {"silence", SIM_F_WATCH_SILENCE},
    {"stream-end", SIM_F_WATCH_END},
    {"gone", SIM_F_WATCH_GONE},
    {"bookmark", SIM_F_BOOKMARK},
    {"dup", SIM_F_WATCH_DUP},
    {"stale", SIM_F_WATCH_STALE},
    {"touch", SIM_F_TOUCH},
    {"event-slow", SIM_F_EVENT_SLOW},
    {"calls", SIM_F_CALLS},
    {"watch", SIM_F_WATCH},
    {"all", SIM_F_ALL},
    {"none", 0},
};

long sim_faults_parse(const char *list)
{
    long bits = 0;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        int neg = tok[0] == '-';
        long b = -1;
        for (size_t i = 0; i < sizeof(fault_names) / sizeof(fault_names[0]); i++)
            if (!strcmp(tok + neg, fault_names[i].name))
                b = fault_names[i].bits;
        if (b < 0)
            return -1;
        if (neg)
            bits &= ~b;
        else
            bits |= b;
    }
    return bits;
}
