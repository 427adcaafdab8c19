/* Internal entry points of the elector, for unit tests of the decision logic. */
#ifndef KLE_CORE_ELECTOR_INTERNAL_H
#define KLE_CORE_ELECTOR_INTERNAL_H

#include "kle/elector.h"
#include "kle/sys/lock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/*
 * One term's handle, reference-counted: the elector holds a reference for
 * the term and the user may take more (kle_leading_ref). It owns its events,
 * so a handle kept after its term stays "over" even while a later term runs.
 * It is made before the elector campaigns, so that nothing needs a new
 * descriptor after the lease is won.
 */
struct kle_leading {
    atomic_int refs;
    pthread_mutex_t mu;   /* Guards elector and final_deadline. */
    kle_elector *elector; /* NULL once the term has ended (detached). */
    kle_clock *clock;
    kle_event *ended;    /* Set when leadership ends; never reset. */
    kle_event *extended; /* Set when lead_deadline moves. */
    int transitions;
    int64_t final_deadline; /* lead_deadline when the term ended. */
};

/*
 * A write this elector attempted, as its key at whole-second precision (the
 * coarsest any record carries: two writes with equal keys may leave the
 * same bytes) and the send time of the first write with that key. Used to
 * date a term's deadline (rule "same bytes, first send") and to recognise
 * this elector's own records among those that name its identity.
 */
typedef struct kle_own_write {
    int used;
    int lease_seconds;
    int transitions;
    int64_t acquire_s, renew_s;
    int64_t first_sent;
} kle_own_write;

#define KLE_OWN_WRITES 8

struct kle_elector {
    kle_lock *lock;
    char *identity;
    char *name;         /* The lock's describe (namespace/name), for logs and messages. */
    char *metrics_name; /* config->name, else name: the label of kle_elector_metrics(). */
    int64_t lease_duration;
    int64_t renew_deadline;
    int64_t retry_period;
    int64_t call_timeout;
    int record_lease_seconds;
    int release_on_cancel;
    int coordinated; /* Coordinated election: never create or take the lease (coordinated.c). */
    kle_elector_callbacks cb;
    kle_clock *clock;
    uint64_t rng;

    pthread_mutex_t mu;
    /* Observed state, guarded by mu. */
    int has_observed;
    kle_record observed;
    char *observed_raw;
    size_t observed_raw_len;
    char *observed_rv;
    int64_t observed_time;
    int64_t
        raw_changed_time;  /* When the raw record last changed (observed_time without touches). */
    char *reported_leader; /* Holder last reported to on_new_leader, reported_len bytes. */
    size_t reported_len;
    /* Leadership, guarded by mu. */
    int leading;
    int64_t lead_deadline;
    kle_leading *handle;      /* The current term's handle, or NULL. */
    kle_leading *next_handle; /* Made before campaigning, for the next term. */
    int64_t last_sent;        /* Send time of the last successful write: rounds start from it. */
    int64_t last_dated;       /* What that write's term is dated from (note_own_write). */
    int64_t last_return;
    kle_elector_stats stats;
    int64_t last_progress; /* When the loop last completed a round or a step between terms. */
    int last_call_error;   /* 0 when the last lock call was answered, else its code. */

    atomic_int running;
    atomic_int stop_requested;
    atomic_int callback_done;
    atomic_int guard_done;
    kle_event *cancel; /* Set by stop; sticky. Cancels lock calls while campaigning. */
    kle_event *wake;   /* Set by stop and when on_started_leading returns. */
    int expired;       /* The guard saw lead_deadline pass: no extension any more. Guarded by mu. */
    int handover; /* Another identity is preferred: end the term, then hand over. Guarded by mu. */

    /* Watch mode (src/core/follow.c): NULL when polling. */
    int follow_mode;
    struct kle_follow *follow;
    atomic_int stepped_down; /* The watch showed a newer foreign holder: the term ends now. */
    /* This elector's writes, for the step-down rule; guarded by mu. */
    uint64_t write_seq;       /* Writes attempted. */
    uint64_t own_seq;         /* write_seq of the last successful write. */
    int64_t writing_renew_ns; /* renewTime and leaderTransitions of write write_seq. */
    int writing_transitions;
    int64_t own_renew_ns; /* The same, of the last successful write. */
    int own_transitions;
    /* Writes attempted, newest at own_next - 1; guarded by mu. */
    kle_own_write own[KLE_OWN_WRITES];
    int own_next;
    /*
     * The observed record is this elector's: it names this identity and is
     * one of its writes, a handover to it, or (coordinated) the server's
     * choice. A record naming this identity that is none of these was
     * written by another replica under the same identity: it is treated as
     * a foreign lease. Guarded by mu.
     */
    int observed_own;
    int foreign_self;      /* Foreign records under this identity observed (distinct). */
    int impostor;          /* Another replica renews under this identity: refuse to lead. */
    int max_transitions;   /* The highest leaderTransitions observed or written. */
    int saturation_logged; /* The token reached the int32 maximum: logged once. */
    int seen_transitions;  /* max_transitions is set. */
};

struct kle_follow;

/* One tryAcquireOrRenew attempt; lock calls bounded by deadline (INT64_MAX: call limit only). */
int kle_elector__try_acquire_or_renew(kle_elector *e, int64_t deadline);

/* The release step of release-on-cancel. */
void kle_elector__release(kle_elector *e);

/* Calls on_new_leader if the observed holder changed since the last report. */
void kle_elector__report_transition(kle_elector *e);

/* The label of the elector's metrics: config->name, else the lock's describe. */
const char *kle_elector__metrics_name(kle_elector *e);

/* Records what a GET (or a watch event, from_watch 1) showed at `seen`;
 * mu held. Sets *changed when the raw record differs from the last seen. */
void kle_elector__observe(kle_elector *e, kle_lock_result *got, int64_t seen, int *changed);

/* client-go's isLeaseValid on the observed record; mu held. */
int kle_elector__lease_valid(kle_elector *e, int64_t now);

/* 1 when the observed record is this elector's own (observed_own); mu held. */
int kle_elector__observed_is_me(kle_elector *e);

/* 1 when @p r is one of this elector's recent writes (by key); mu held. */
int kle_elector__is_own_write(kle_elector *e, const kle_record *r);

/*
 * Notes a write of @p r about to be sent at @p now (mu held); returns the
 * time its deadline is dated from: the send of the first write with the
 * same key, which may have left the same bytes (docs/architecture.md,
 * "Why two leaders cannot work at once").
 */
int64_t kle_elector__note_own_write(kle_elector *e, const kle_record *r, int64_t now);

/* The fencing token after @p base: one more, saturating at the int32 maximum. */
int kle_elector__next_token(int base);

/*
 * 1 when @p r is released and free at once: holder "" with a lease of at
 * most one second, as every release writes it. A record whose holder was
 * emptied by hand keeps its lease duration and expires like any lease.
 */
int kle_elector__released(const kle_record *r);

/* Joins a thread of the elector's clock once *done is set (it sets e->wake then). */
void kle_elector__join(kle_elector *e, atomic_int *done, pthread_t thread);

/*
 * Coordinated election and planned handover (coordinated.c): decisions on
 * plain records, shared by every elector mode.
 */

/* 1 when @p observed names a preferred holder other than @p identity. */
int kle_elector__preferred_is_other(const kle_record *observed, const char *identity);

/* 1 when @p identity holds @p observed and another identity is preferred: end the term. */
int kle_elector__end_of_term(const kle_record *observed, const char *identity);

/*
 * 1 when @p identity may write @p observed as its own (take it or renew it);
 * @p mine says whether it is this elector's own record (observed_own);
 * @p valid whether the lease is live on our clock. Coordinated: only a
 * live lease the server gave us. Otherwise: ours; or free or expired, except
 * a live lease whose preferredHolder names someone else.
 */
int kle_elector__may_take(const kle_record *observed, const char *identity, int mine, int valid,
                          int coordinated);

/*
 * Copies into @p rec what the elector does not own from @p observed:
 * strategy always; preferredHolder when @p renewing, else clears it ("").
 */
int kle_elector__carry_foreign(kle_record *rec, const kle_record *observed, int renewing);

/*
 * The record a leader at the end of its term writes over @p current: the
 * preferred holder as holder (a fresh lease of @p lease_seconds) with the
 * preference cleared and one more transition, or, with no preferred holder,
 * a released record (holder "", 1 s), as release writes.
 */
int kle_elector__handover_record(kle_record *out, const kle_record *current, int lease_seconds,
                                 int64_t wall_ns);

#endif
