/**
 * @file kle/record.h
 * @brief The leader election record and the time formats it travels in.
 */
#ifndef KLE_RECORD_H
#define KLE_RECORD_H

#include "common.h"

KLE_BEGIN_DECLS

/**
 * client-go's LeaderElectionRecord. Times are wall-clock nanoseconds since
 * the Unix epoch, 0 when unset (written as null). They are informational:
 * expiry is decided on the reader's monotonic clock, never from these.
 * Strings are owned by the record (malloc'd) and freed by kle_record_dispose().
 */
typedef struct kle_record {
    char *holder_identity;      /**< Holder; "" when released. NULL reads as "". */
    int lease_duration_seconds; /**< How long others wait after seeing a change. */
    int64_t acquire_time_ns;    /**< When the holder acquired. */
    int64_t renew_time_ns;      /**< When the holder last renewed. */
    int leader_transitions;     /**< Incremented on every change of holder. */
    char *strategy;             /**< Coordinated election strategy, or NULL. */
    char *preferred_holder;     /**< Coordinated election preferred holder, or NULL. */
} kle_record;

/** Static initialiser for an empty record. */
#define KLE_RECORD_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0, 0, 0, NULL, NULL                                                               \
    }

/** Initialises @p rec to an empty record. */
KLE_EXTERN(void) kle_record_init(kle_record *rec);

/** Frees the strings a record owns and empties it. NULL is ignored. */
KLE_EXTERN(void) kle_record_dispose(kle_record *rec);

/**
 * Deep-copies @p src into @p out (which is overwritten, not disposed).
 * @return 0 or KLE_ENOMEM (then @p out is empty).
 */
KLE_EXTERN(int) kle_record_copy(kle_record *out, const kle_record *src);

/** Replaces a string member (e.g. &rec->holder_identity) with a copy of @p value. */
KLE_EXTERN(int) kle_record_set_string(char **member, const char *value);

/** Returns the holder, never NULL. */
KLE_EXTERN(const char *) kle_record_holder(const kle_record *rec);

/**
 * Returns 1 when the holder of @p rec is exactly @p identity, compared with
 * the holder's full length (a holder read from a record may contain bytes a
 * C string cannot, such as NUL), else 0. NULL @p identity reads as "".
 */
KLE_EXTERN(int) kle_record_holder_is(const kle_record *rec, const char *identity);

/** Returns 1 when the two records have the same holder, compared with full lengths. */
KLE_EXTERN(int) kle_record_holder_equal(const kle_record *a, const kle_record *b);

/** Returns 1 when every field of the two records is equal. */
KLE_EXTERN(int) kle_record_equal(const kle_record *a, const kle_record *b);

/**
 * Formats wall time @p ns as RFC 3339 in UTC: with @p fraction_digits 0,
 * `2026-11-21T10:00:02Z` (metav1.Time); with 6,
 * `2026-11-21T10:00:02.123456Z` (metav1.MicroTime). Other digit counts
 * (1..9) are accepted. Returns the length written, or KLE_EINVAL when
 * @p size is too small (at least 31 bytes always suffice).
 */
KLE_EXTERN(int) kle_time_format(char *buf, size_t size, int64_t ns, int fraction_digits);

/**
 * Parses a timestamp into wall nanoseconds. Accepts RFC 3339 with any
 * fraction and `Z` or a numeric offset, and Python's `str(datetime)`
 * layout `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]` (naive means UTC).
 * @return 0, or KLE_EINVAL with a message quoting the text.
 */
KLE_EXTERN(int) kle_time_parse(int64_t *out_ns, const char *text);

KLE_END_DECLS

#endif
