/*
 * Records (include/kle/record.h): kle_record's init, copies, comparisons and
 * validation. Identities are identity.c's, RFC 3339 times base/time.c's.
 */
#include "kle/record.h"
#include "base/versioned.h"
#include "kle/sys/errors.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of a record of @p version; an unknown one counts as version 1, the
 * smallest. Version 1 is the whole current layout. */
static size_t record_size(unsigned int version)
{
    (void)version;
    return sizeof(kle_record);
}

static int check_version(const kle_record *rec, const char *fn)
{
    if (rec->version < 1 || rec->version > KLE_RECORD_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "%s: kle_record version %u is not supported (1..%d; initialise it "
                             "with KLE_RECORD_INIT)",
                             fn, rec->version, KLE_RECORD_VERSION);
    return 0;
}

int kle_record_init(kle_record *rec, unsigned int version)
{
    KLE__INIT_STRUCT("kle_record_init", rec, version, KLE_RECORD_VERSION, kle_record,
                     KLE_RECORD_INIT, record_size(version));
    return 0;
}

void kle_record_dispose(kle_record *rec)
{
    if (!rec)
        return;
    free(rec->holder_identity);
    free(rec->strategy);
    free(rec->preferred_holder);
    unsigned int version = rec->version;
    memset(rec, 0, record_size(version));
    rec->version = version;
}

int kle_record_set_string(char **member, const char *value)
{
    char *copy = NULL;

    if (value) {
        copy = strdup(value);
        if (!copy)
            return kle_error_set(KLE_ENOMEM, "record: out of memory");
    }
    free(*member);
    *member = copy;
    return 0;
}

int kle_record_set_bytes(char **member, size_t *member_len, const char *bytes, size_t len)
{
    char *copy = NULL;

    if (!member || !member_len || (!bytes && len))
        return kle_error_set(KLE_EINVAL, "record: set_bytes needs a member, its length and bytes");
    if (bytes) {
        if (len == SIZE_MAX || !(copy = malloc(len + 1)))
            return kle_error_set(KLE_ENOMEM, "record: out of memory");
        memcpy(copy, bytes, len);
        copy[len] = '\0';
    }
    free(*member);
    *member = copy;
    *member_len = len;
    return 0;
}

int kle_record_set_holder(kle_record *rec, const char *bytes, size_t len)
{
    if (!rec || !bytes)
        return kle_error_set(KLE_EINVAL, "record: set_holder needs a record and bytes");
    return kle_record_set_bytes(&rec->holder_identity, &rec->holder_identity_len, bytes, len);
}

size_t kle_record_string_len(const char *s, size_t len)
{
    if (!s)
        return 0;
    /* A length shorter than the C string cannot be right (a stale one): use the C string. */
    size_t n = strlen(s);
    return len > n ? len : n;
}

int kle_record_copy(kle_record *out, const kle_record *src)
{
    int rc;
    if (!out || !src)
        return kle_error_set(KLE_EINVAL, "kle_record_copy: out and src are required");
    if ((rc = check_version(out, "kle_record_copy: out")) < 0 ||
        (rc = check_version(src, "kle_record_copy: src")) < 0)
        return rc;
    /* Every version so far has the members below. */
    kle_record tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.version = out->version;
    tmp.lease_duration_seconds = src->lease_duration_seconds;
    tmp.acquire_time_ns = src->acquire_time_ns;
    tmp.renew_time_ns = src->renew_time_ns;
    tmp.leader_transitions = src->leader_transitions;
    if ((src->holder_identity &&
         kle_record_set_bytes(
             &tmp.holder_identity, &tmp.holder_identity_len, src->holder_identity,
             kle_record_string_len(src->holder_identity, src->holder_identity_len)) < 0) ||
        (src->strategy &&
         kle_record_set_bytes(&tmp.strategy, &tmp.strategy_len, src->strategy,
                              kle_record_string_len(src->strategy, src->strategy_len)) < 0) ||
        (src->preferred_holder &&
         kle_record_set_bytes(
             &tmp.preferred_holder, &tmp.preferred_holder_len, src->preferred_holder,
             kle_record_string_len(src->preferred_holder, src->preferred_holder_len)) < 0)) {
        kle_record_dispose(&tmp);
        kle_record_init(out, out->version);
        return KLE_ENOMEM;
    }
    memcpy(out, &tmp, record_size(out->version));
    return 0;
}

const char *kle_record_holder(const kle_record *rec)
{
    return rec && rec->holder_identity ? rec->holder_identity : "";
}

size_t kle_record_holder_len(const kle_record *rec)
{
    return rec ? kle_record_string_len(rec->holder_identity, rec->holder_identity_len) : 0;
}

static int bytes_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

int kle_record_holder_is(const kle_record *rec, const char *identity)
{
    const char *id = identity ? identity : "";
    return bytes_equal(kle_record_holder(rec), kle_record_holder_len(rec), id, strlen(id));
}

int kle_record_holder_equal(const kle_record *a, const kle_record *b)
{
    return bytes_equal(kle_record_holder(a), kle_record_holder_len(a), kle_record_holder(b),
                       kle_record_holder_len(b));
}

/* NULL and "" differ for the optional strings (absent vs. set to empty). */
static int str_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return bytes_equal(a, kle_record_string_len(a, alen), b, kle_record_string_len(b, blen));
}

int kle_record_equal(const kle_record *a, const kle_record *b)
{
    return kle_record_holder_equal(a, b) &&
           a->lease_duration_seconds == b->lease_duration_seconds &&
           a->acquire_time_ns == b->acquire_time_ns && a->renew_time_ns == b->renew_time_ns &&
           a->leader_transitions == b->leader_transitions &&
           str_equal(a->strategy, a->strategy_len, b->strategy, b->strategy_len) &&
           str_equal(a->preferred_holder, a->preferred_holder_len, b->preferred_holder,
                     b->preferred_holder_len);
}

int kle_record_validate(const kle_record *rec)
{
    int rc;
    if (!rec)
        return kle_error_set(KLE_EINVAL, "record: NULL record");
    if ((rc = check_version(rec, "record")) < 0)
        return rc;
    int64_t duration = rec->lease_duration_seconds;
    int64_t transitions = rec->leader_transitions;
    int64_t min_duration = kle_record_holder_len(rec) > 0 ? 1 : 0;
    if (duration < min_duration || duration > INT32_MAX)
        return kle_error_set(KLE_EINVAL,
                             "record: leaseDurationSeconds %lld is out of range (%lld..%ld%s)",
                             (long long)duration, (long long)min_duration, (long)INT32_MAX,
                             min_duration ? " for a held lock" : "");
    if (transitions < 0 || transitions > INT32_MAX)
        return kle_error_set(KLE_EINVAL, "record: leaderTransitions %lld is out of range (0..%ld)",
                             (long long)transitions, (long)INT32_MAX);
    return 0;
}
