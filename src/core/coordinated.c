/*
 * Coordinated leader election and planned handover: the decisions the
 * elector takes about a record's strategy and preferredHolder (KEP-4355;
 * client-go's tryCoordinatedRenew and isLeaseEndOfTerm). They work on plain
 * records so that every elector mode (polling or watching) can call them;
 * elector.c calls them at the points named in elector_internal.h.
 */
#include "core/elector_internal.h"
#include "kle/sys/errors.h"

#include <string.h>

static size_t preferred_len(const kle_record *r)
{
    return kle_record_string_len(r->preferred_holder, r->preferred_holder_len);
}

int kle_elector__preferred_is_other(const kle_record *observed, const char *identity)
{
    size_t len = preferred_len(observed);
    if (len == 0)
        return 0;
    return len != strlen(identity) || memcmp(observed->preferred_holder, identity, len) != 0;
}

int kle_elector__end_of_term(const kle_record *observed, const char *identity)
{
    return kle_record_holder_is(observed, identity) &&
           kle_elector__preferred_is_other(observed, identity);
}

int kle_elector__may_take(const kle_record *observed, const char *identity, int mine, int valid,
                          int coordinated)
{
    if (coordinated)
        /* Only the server picks the holder; we renew what it gave us while it is live. */
        return mine && valid;
    if (mine)
        return 1;
    if (!kle_elector__released(observed) && valid)
        return 0;
    /* Released, or held but expired: still reserved for the preferred holder until it expires. */
    return !(valid && kle_elector__preferred_is_other(observed, identity));
}

int kle_elector__carry_foreign(kle_record *rec, const kle_record *observed, int renewing)
{
    size_t slen = kle_record_string_len(observed->strategy, observed->strategy_len);
    if (observed->strategy &&
        kle_record_set_bytes(&rec->strategy, &rec->strategy_len, observed->strategy, slen) < 0)
        return KLE_ENOMEM;
    if (renewing) {
        if (observed->preferred_holder &&
            kle_record_set_bytes(&rec->preferred_holder, &rec->preferred_holder_len,
                                 observed->preferred_holder, preferred_len(observed)) < 0)
            return KLE_ENOMEM;
    } else if (observed->preferred_holder &&
               kle_record_set_bytes(&rec->preferred_holder, &rec->preferred_holder_len, "", 0) <
                   0) {
        /* A takeover ends any preference: the preferred holder had its chance. */
        return KLE_ENOMEM;
    }
    return 0;
}

int kle_elector__handover_record(kle_record *out, const kle_record *current, int lease_seconds,
                                 int64_t wall_ns)
{
    kle_record_init(out, KLE_RECORD_VERSION);
    size_t len = preferred_len(current);
    int rc;
    if (len > 0)
        rc = kle_record_set_holder(out, current->preferred_holder, len);
    else
        rc = kle_record_set_holder(out, "", 0);
    /* Strategy kept. The preference names the new holder (the mark by
     * which it knows the record as a handover to it, not a record another
     * replica wrote under its identity), or is cleared on a release. */
    if (rc < 0 || kle_elector__carry_foreign(out, current, 0) < 0 ||
        kle_record_set_bytes(&out->preferred_holder, &out->preferred_holder_len,
                             len > 0 ? current->preferred_holder : "", len) < 0) {
        kle_record_dispose(out);
        return KLE_ENOMEM;
    }
    out->lease_duration_seconds = len > 0 ? lease_seconds : 1;
    out->acquire_time_ns = wall_ns;
    out->renew_time_ns = wall_ns;
    out->leader_transitions =
        current->leader_transitions + (len > 0 && current->leader_transitions < 2147483647 ? 1 : 0);
    return 0;
}
