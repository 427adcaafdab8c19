/* Internal entry points of the elector, for unit tests of the decision logic. */
#ifndef KLE_CORE_ELECTOR_INTERNAL_H
#define KLE_CORE_ELECTOR_INTERNAL_H

#include "kle/elector.h"

/* One tryAcquireOrRenew attempt; lock calls bounded by deadline (INT64_MAX: call limit only). */
int kle_elector__try_acquire_or_renew(kle_elector *e, int64_t deadline);

/* The release step of release-on-cancel. */
void kle_elector__release(kle_elector *e);

/* Calls on_new_leader if the observed holder changed since the last report. */
void kle_elector__report_transition(kle_elector *e);

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
 * @p valid says whether the lease is live on our clock. Coordinated: only a
 * live lease the server gave us. Otherwise: ours; or free or expired, except
 * a live lease whose preferredHolder names someone else.
 */
int kle_elector__may_take(const kle_record *observed, const char *identity, int valid,
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
