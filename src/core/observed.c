/* What the elector observed of the lock: the rule that turns a read or a
 * watch event into the observed record and its time, and the questions
 * asked of it. Used by the elector (elector.c) and its watch mode
 * (follow.c), so neither depends on the other for them. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kle/clock.h"
#include "kle/record.h"
#include "core/elector_internal.h"

/*
 * The coarsest time precision of any record (annotation records carry whole
 * seconds): a holder's renewals can leave the raw record unchanged for at
 * most this long. See the "touched lock object" rule in try_acquire_or_renew.
 */
#define RECORD_PRECISION KLE_NS_PER_SEC

/*
 * Records what a read showed at `seen` (mu held): a raw record that differs
 * from the last one seen resets the observed time; a new resourceVersion
 * with the same record (a label touched by someone, or a renewal within the
 * record's time precision) counts as a renewal for at most RECORD_PRECISION
 * after the record last changed; see docs/architecture.md. Takes what it
 * keeps out of `got`.
 */
static int64_t whole_seconds(int64_t ns)
{
    return ns >= 0 ? ns / KLE_NS_PER_SEC : -((-(ns + 1)) / KLE_NS_PER_SEC) - 1;
}

static int same_key(const kle_own_write *w, const kle_record *r)
{
    return w->used && w->lease_seconds == r->lease_duration_seconds &&
           w->transitions == r->leader_transitions &&
           w->acquire_s == whole_seconds(r->acquire_time_ns) &&
           w->renew_s == whole_seconds(r->renew_time_ns);
}

int kle_elector__is_own_write(kle_elector *e, const kle_record *r)
{
    if (!kle_record_holder_is(r, e->identity))
        return 0;
    for (int i = 0; i < KLE_OWN_WRITES; i++)
        if (same_key(&e->own[i], r))
            return 1;
    return 0;
}

int64_t kle_elector__note_own_write(kle_elector *e, const kle_record *r, int64_t now)
{
    for (int i = 0; i < KLE_OWN_WRITES; i++)
        if (same_key(&e->own[i], r))
            return e->own[i].first_sent < now ? e->own[i].first_sent : now;
    kle_own_write *w = &e->own[e->own_next];
    e->own_next = (e->own_next + 1) % KLE_OWN_WRITES;
    w->used = 1;
    w->lease_seconds = r->lease_duration_seconds;
    w->transitions = r->leader_transitions;
    w->acquire_s = whole_seconds(r->acquire_time_ns);
    w->renew_s = whole_seconds(r->renew_time_ns);
    w->first_sent = now;
    return now;
}

int kle_elector__next_token(int base)
{
    return base < 2147483647 ? (base < 0 ? 0 : base + 1) : 2147483647;
}

int kle_elector__released(const kle_record *r)
{
    return kle_record_holder_len(r) == 0 && r->lease_duration_seconds <= 1;
}

static int preferred_is(const kle_record *r, const char *identity)
{
    size_t len = kle_record_string_len(r->preferred_holder, r->preferred_holder_len);
    return len > 0 && len == strlen(identity) && memcmp(r->preferred_holder, identity, len) == 0;
}

/*
 * Whose the newly observed record is (mu held): this elector's own write; a
 * handover to it (the previous holder names it both holder and preferred
 * holder, docs/architecture.md "Planned handover"); the coordinated
 * election controller's choice; or, naming this identity but none of these,
 * another replica's under the same identity, which is a foreign lease. A
 * second distinct such record means that replica renews it: an impostor.
 */
static void classify(kle_elector *e)
{
    const kle_record *r = &e->observed;
    if (r->leader_transitions > e->max_transitions || !e->seen_transitions) {
        e->max_transitions = r->leader_transitions;
        e->seen_transitions = 1;
    }
    if (!kle_record_holder_is(r, e->identity)) {
        e->observed_own = 0;
        return;
    }
    if (e->coordinated || kle_elector__is_own_write(e, r) || preferred_is(r, e->identity)) {
        e->observed_own = 1;
        return;
    }
    e->observed_own = 0;
    /* A leader that sees one knows another replica wrote under its name. */
    if (++e->foreign_self > 1 || e->leading)
        e->impostor = 1;
}

void kle_elector__observe(kle_elector *e, kle_lock_result *got, int64_t seen, int *out_changed)
{
    int changed = !e->observed_raw || e->observed_raw_len != got->raw_len ||
                  memcmp(e->observed_raw, got->raw, got->raw_len) != 0;
    int touched = !changed && got->resource_version &&
                  (!e->observed_rv || strcmp(got->resource_version, e->observed_rv) != 0);
    if (changed) {
        kle_record_dispose(&e->observed);
        e->observed = got->record;
        kle_record_init(&got->record, KLE_RECORD_VERSION);
        free(e->observed_raw);
        e->observed_raw = got->raw;
        e->observed_raw_len = got->raw_len;
        got->raw = NULL;
        e->has_observed = 1;
        e->observed_time = seen;
        e->raw_changed_time = seen;
        classify(e);
    } else if (touched) {
        int64_t cap = e->raw_changed_time + RECORD_PRECISION;
        int64_t t = seen < cap ? seen : cap;
        if (t > e->observed_time)
            e->observed_time = t;
    }
    if (changed || touched) {
        free(e->observed_rv);
        e->observed_rv = got->resource_version;
        got->resource_version = NULL;
    }
    *out_changed = changed;
}

int kle_elector__lease_valid(kle_elector *e, int64_t now)
{
    return e->has_observed &&
           e->observed_time + (int64_t)e->observed.lease_duration_seconds * KLE_NS_PER_SEC > now;
}

int kle_elector__observed_is_me(kle_elector *e)
{
    return e->has_observed && e->observed_own;
}

void kle_elector__join(kle_elector *e, atomic_int *done, pthread_t thread)
{
    while (!atomic_load(done)) {
        kle_event_reset(e->wake);
        if (atomic_load(done))
            break;
        kle_clock_wait(e->clock, e->wake, INT64_MAX);
    }
    pthread_join(thread, NULL);
}

void kle_elector__report_transition(kle_elector *e)
{
    char *copy = NULL;
    pthread_mutex_lock(&e->mu);
    const char *holder = kle_record_holder(&e->observed);
    size_t len = kle_record_holder_len(&e->observed);
    if (len != e->reported_len || memcmp(holder, e->reported_leader, len) != 0) {
        char *dup = malloc(len + 1);
        copy = strdup(holder); /* The callback gets a C string: up to a NUL, if any. */
        if (dup && copy) {
            memcpy(dup, holder, len);
            dup[len] = '\0';
            free(e->reported_leader);
            e->reported_leader = dup;
            e->reported_len = len;
        } else {
            free(dup);
            free(copy);
            copy = NULL;
        }
    }
    pthread_mutex_unlock(&e->mu);
    if (copy && e->cb.on_new_leader)
        e->cb.on_new_leader(copy, e->cb.data);
    free(copy);
}
