/*
 * The election as a deterministic state machine (etcd's raft library and
 * nghttp2 are built the same way): one per lock, with no threads, no I/O
 * and no clock of its own. It is fed the time, the answers to the lock
 * calls it asked for (with their send times), watch events and the
 * stream's state, and stop requests; it says which lock call to make next,
 * when to wake it, and when a term starts, moves its deadline and ends. It
 * owns all of the election's state and every safety rule of the argument
 * in docs/architecture.md ("Why two leaders cannot work at once"), each
 * named there and here by its number (R1, R2, ...). It allocates nothing in
 * steady state: its buffers grow only when a longer string arrives.
 *
 * Every input takes the current time: `now` (monotonic: every expiry and
 * deadline decision) and, where a record may be written, `wall` (only for
 * the timestamps written into records). The caller serialises the calls.
 *
 * Used by the elector's runtime (elector.c), by the deterministic
 * simulation and search (tests/unit/election/sim.c) and by bench/core.
 */
#ifndef KLE_CORE_SM_H
#define KLE_CORE_SM_H

#include "kle/elector.h"
#include "kle/lock.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kle_sm kle_sm;

/* What the state machine needs to know of its elector. */
typedef struct kle_sm_config {
    const char *identity; /* Borrowed for the machine's life. */
    const char *name;     /* The lock's describe, for log lines; borrowed. */
    int64_t lease_duration, renew_deadline, retry_period, call_timeout;
    int record_lease_seconds; /* leaseDurationSeconds this elector writes. */
    int release_on_cancel;
    int coordinated;
    int watch;     /* Follow the lock with a watch (the lock can watch). */
    uint64_t seed; /* Of the retry jitter; not 0. */
    int mutations; /* KLE_SM_MUT_* bits: rules switched off, for the mutation check only. */
} kle_sm_config;

/*
 * Rules that the mutation check (scripts/mutate) can switch off one at a
 * time, to show that the simulation's search catches each. Never set
 * outside tests. R1..R11 are the rules of the safety argument
 * (docs/architecture.md, "Why two leaders cannot work at once"): the
 * invariant fails without any one of them. D1..D4 are defence in depth
 * (stepping down earlier than the rules require, reserving a handed-over
 * lease, a check the others make redundant) and L1, L2 keep the election
 * live; switching those off must not break the invariant, which the check
 * shows too.
 */
enum {
    KLE_SM_MUT_R1_FIRST_SEND = 1 << 0,    /* A term dated from the first send of its bytes. */
    KLE_SM_MUT_R2_LATE_ANSWER = 1 << 1,   /* An answer at/after the deadline extends nothing. */
    KLE_SM_MUT_R3_DEADLINE_END = 1 << 2,  /* The term ends at its deadline. */
    KLE_SM_MUT_D4_NO_LATE_START = 1 << 3, /* No work starts once its deadline has passed. */
    KLE_SM_MUT_R4_OBSERVE_LOCAL = 1 << 4, /* Expiry from the local time a change was seen. */
    KLE_SM_MUT_R5_FORGET_RAW = 1 << 5,    /* An own write forgets the bytes seen before it. */
    KLE_SM_MUT_R6_RELEASED = 1 << 6,      /* Only a 1 s lease with holder "" is a release. */
    KLE_SM_MUT_R7_QUARANTINE = 1 << 7,    /* A create after a deletion starts work RD later. */
    KLE_SM_MUT_R8_OWN_IDENTITY = 1 << 8,  /* A record under our name we did not write is foreign. */
    KLE_SM_MUT_R9_TOKENS = 1 << 9,        /* A new term's token above every token seen. */
    KLE_SM_MUT_R10_WORK_FIRST = 1 << 10,  /* Release and handover only after the work returned. */
    KLE_SM_MUT_D1_STEP_DOWN_READ = 1 << 11, /* A read showing another holder ends the term. */
    KLE_SM_MUT_D2_STREAM_ORDER = 1 << 12, /* (Inverted) the stream step-down only when justified. */
    KLE_SM_MUT_D3_PREFERRED = 1 << 13,    /* A live lease reserved for another is not taken. */
    KLE_SM_MUT_L1_TOUCH_CAP = 1 << 14,    /* A touch counts at most 1 s after a change. */
    KLE_SM_MUT_L2_FRESH_RENEW = 1 << 15,  /* Every write takes a fresh renewTime. */
    KLE_SM_MUT_R11_NOTFOUND_WAIT = 1 << 16, /* A NotFound waits out a live foreign lease seen. */
    KLE_SM_MUT_D5_DELETED_ENDS = 1 << 17    /* A leader that reads NotFound ends its term. */
};

/* The lock calls the machine asks for. */
typedef enum kle_sm_call_kind {
    KLE_SM_GET = 0,
    KLE_SM_CREATE = 1,
    KLE_SM_UPDATE = 2,
    KLE_SM_EVENT = 3
} kle_sm_call_kind;

/* What the machine asks its runtime to do (kle_sm_next). */
typedef enum kle_sm_action_kind {
    KLE_SM_NONE = 0,
    /* Start lock call `call` (at most one at a time); answer it with kle_sm_answer. */
    KLE_SM_CALL,
    /* Start (or restart, after stopping the current one) the lock's watch, listing first. */
    KLE_SM_WATCH_START,
    /* Stop the lock's watch. */
    KLE_SM_WATCH_STOP,
    /* A term starts: start the leader's work with `token`; it ends by `deadline`. */
    KLE_SM_TERM_START,
    /* The term's deadline moved later, to `deadline`. */
    KLE_SM_TERM_EXTEND,
    /* The term ended: signal the leader's work to stop (it answers with kle_sm_work_done). */
    KLE_SM_TERM_END,
    /* The observed holder changed to `holder` (`holder_len` bytes; "" released). */
    KLE_SM_NEW_LEADER,
    /* The run is over with `rc` (0 stopped, KLE_ETIMEOUT, KLE_ECONFLICT, KLE_EIDENTITY). */
    KLE_SM_DONE
} kle_sm_action_kind;

typedef struct kle_sm_call {
    uint64_t id; /* Echoed in the answer; answers to other ids are ignored. */
    kle_sm_call_kind kind;
    int has_record;      /* CREATE, UPDATE: */
    kle_record record;   /* the record to write; its strings are lent until answered. */
    const char *message; /* EVENT: a static string. */
    int64_t timeout;     /* The time the call may take. */
    int cancellable;     /* A call of the campaign: a stop may cut it short. */
} kle_sm_call;

typedef struct kle_sm_action {
    kle_sm_action_kind kind;
    kle_sm_call call;   /* KLE_SM_CALL */
    int64_t deadline;   /* TERM_START, TERM_EXTEND */
    int token;          /* TERM_START */
    const char *holder; /* NEW_LEADER: valid until the next input */
    size_t holder_len;  /* NEW_LEADER */
    int rc;             /* DONE */
} kle_sm_action;

/* Counters and state for kle_elector_stats. */
typedef struct kle_sm_stats {
    uint64_t tries, failed_tries, acquisitions, losses, releases, slowpath_total;
    uint64_t watch_events, watch_restarts, stepdowns;
    int64_t last_progress;   /* When the loop last completed a round or a step between terms. */
    int64_t token;           /* The current (or last) term's fencing token. */
    int64_t last_renew_wall; /* renewTime of the last successful acquisition or renewal. */
    int last_call_error;
    int watching;
} kle_sm_stats;

/* ---- life ---- */

/* A machine for @p config (copied; strings borrowed). NULL when out of memory. */
kle_sm *kle_sm_new(const kle_sm_config *config);
void kle_sm_free(kle_sm *sm);
/* The fixed size of a machine (bytes), without the strings it keeps. */
size_t kle_sm_fixed_size(void);
/* The bytes of the strings it keeps now (identities, raw record, resourceVersions). */
size_t kle_sm_string_bytes(const kle_sm *sm);

/* ---- inputs ---- */

/* A run starts (kle_elector_run). */
void kle_sm_start(kle_sm *sm, int64_t now, int64_t wall);
/* Stop requested (kle_elector_stop): sticky. */
void kle_sm_stop(kle_sm *sm, int64_t now, int64_t wall);
/* The time is @p now: whatever is due happens (wake it at kle_sm_wake_at). */
void kle_sm_tick(kle_sm *sm, int64_t now, int64_t wall);
/*
 * The answer to call @p id, sent at @p sent: rc (0 or a KLE_E* code) and,
 * for a successful GET, @p result (the machine copies what it keeps; the
 * caller disposes it). @p now is when the answer arrived.
 */
void kle_sm_answer(kle_sm *sm, uint64_t id, int rc, int64_t sent, const kle_lock_result *result,
                   int64_t now, int64_t wall);
/* One event of the watch (the lock's kle_lock_event). */
void kle_sm_watch_event(kle_sm *sm, const kle_lock_event *event, int64_t now, int64_t wall);
/*
 * The watch ended with @p rc: KLE_EFORBIDDEN or KLE_ESTATE (the server or
 * the lock cannot watch: poll for good), anything else (restart later).
 */
void kle_sm_watch_ended(kle_sm *sm, int rc, int64_t now, int64_t wall);
/* The leader's work (on_started_leading) returned. */
void kle_sm_work_done(kle_sm *sm, int64_t now, int64_t wall);

/* ---- outputs ---- */

/* Takes the next action; returns 0 (out->kind KLE_SM_NONE) when there is none. */
int kle_sm_next(kle_sm *sm, kle_sm_action *out);
/* When the machine next needs kle_sm_tick (INT64_MAX: only on other inputs). */
int64_t kle_sm_wake_at(const kle_sm *sm);

/* ---- questions (pure reads) ---- */

/* 1 while a run is in progress (between kle_sm_start and DONE). */
int kle_sm_running(const kle_sm *sm);
/* 1 while a term is live at @p now: started, not ended, before its deadline. */
int kle_sm_leading(const kle_sm *sm, int64_t now);
/* The current term's deadline (its final one once it ended); 0 before any. */
int64_t kle_sm_deadline(const kle_sm *sm);
/*
 * The observed record into @p out (when not NULL; its strings are lent
 * until the next input) and when it was observed; 1 when there is one, 0
 * when none was observed yet.
 */
int kle_sm_observed(const kle_sm *sm, kle_record *out, int64_t *observed_at);
/* 1 when the observed record is this elector's own. */
int kle_sm_observed_is_own(const kle_sm *sm);
/* Counters. */
void kle_sm_get_stats(const kle_sm *sm, kle_sm_stats *out);
/* A description of the machine's state for traces: phase and step names. */
const char *kle_sm_phase_name(const kle_sm *sm);
/*
 * A hash of everything the machine's future depends on, times taken
 * relative to @p now (the exhaustive search explores each state once):
 * every field but the counters (stats) and the call ids.
 */
uint64_t kle_sm_state_hash(const kle_sm *sm, int64_t now);

/* ---- for the simulation's search ---- */

/*
 * A deep copy of @p sm (its strings copied, its queued actions pointing
 * into the copy); the config's borrowed strings stay shared. NULL when out
 * of memory. The exhaustive search explores from a state by copying it.
 */
kle_sm *kle_sm_clone(const kle_sm *sm);

#endif
