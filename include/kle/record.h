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
 *
 * **Strings are byte strings with a length.** A record read from the API
 * keeps every byte of its strings, NUL included (JSON `"a\u0000b"` is the
 * three bytes `a`, NUL, `b`), so two holders are equal only when their full
 * bytes are. Each string member has a `_len` member with its length in
 * bytes; a length of 0 means "the C string's own length" (strlen), which is
 * what a string set with kle_record_set_string() on a fresh record has.
 * Read strings with kle_record_holder_len() / kle_record_string_len(),
 * compare holders with kle_record_holder_is() / kle_record_holder_equal(),
 * and set them with kle_record_set_holder() / kle_record_set_bytes(), which
 * keep the length in step. The string itself is always NUL-terminated.
 *
 * **Ranges.** leaseDurationSeconds and leaderTransitions are int32 in the
 * API. A record that holds the lock (non-empty holder) needs
 * lease_duration_seconds in 1..2147483647; a released one (holder "") may
 * have 0. leader_transitions is 0..2147483647. Backends refuse to write a
 * record outside these ranges (kle_record_validate()) and read one as
 * KLE_EBADRECORD.
 *
 * **Version.** The caller sets version (KLE_RECORD_INIT or
 * kle_record_init()) on every record it hands to the library or has the
 * library write into (kle_record_copy(), kle_elector_observed(),
 * kle_fake_store_peek(); kle_lock_result_init() sets its record's). Any
 * version from 1 to KLE_RECORD_VERSION is accepted, and the library reads
 * and writes only the members that version has, so a program built against
 * older headers keeps working when the record grows. Lock backends
 * (kle/sys/lock.h) receive records of the library's own version, and must
 * copy them with kle_record_copy() into records of their own version.
 */
typedef struct kle_record {
    unsigned int version;        /**< KLE_RECORD_VERSION, set by the caller. */
    char *holder_identity;       /**< Holder; "" when released. NULL reads as "". */
    int lease_duration_seconds;  /**< How long others wait after seeing a change. */
    int64_t acquire_time_ns;     /**< When the holder acquired. */
    int64_t renew_time_ns;       /**< When the holder last renewed. */
    int leader_transitions;      /**< Incremented on every change of holder. */
    char *strategy;              /**< Coordinated election strategy, or NULL. */
    char *preferred_holder;      /**< Coordinated election preferred holder, or NULL. */
    size_t holder_identity_len;  /**< Bytes in holder_identity; 0: strlen(holder_identity). */
    size_t strategy_len;         /**< Bytes in strategy; 0: strlen(strategy). */
    size_t preferred_holder_len; /**< Bytes in preferred_holder; 0: strlen(preferred_holder). */
} kle_record;

/** Version of kle_record this header describes. */
#define KLE_RECORD_VERSION 1

/** Static initialiser for an empty record of the current version. */
#define KLE_RECORD_INIT                                                                            \
    {                                                                                              \
        KLE_RECORD_VERSION, NULL, 0, 0, 0, 0, NULL, NULL, 0, 0, 0                                  \
    }

/** The longest identity a lock accepts, in bytes (see kle_identity_check()). */
#define KLE_IDENTITY_MAX 1024

/**
 * Sets @p rec to an empty record of @p version (1 to KLE_RECORD_VERSION),
 * as KLE_RECORD_INIT does for the current version; pass KLE_RECORD_VERSION.
 * @return 0, KLE_EINVAL (NULL @p rec) or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_record_init(kle_record *rec, unsigned int version);

/** Frees the strings a record owns and empties it; its version stays. NULL is ignored. */
KLE_EXTERN(void) kle_record_dispose(kle_record *rec);

/**
 * Deep-copies @p src into @p out (which is overwritten, not disposed),
 * writing only the members @p out's version has: the caller sets that
 * version (KLE_RECORD_INIT or kle_record_init()), which stays.
 * @return 0; KLE_EINVAL (NULL argument); KLE_EVERSION when either record's
 *         version is unset or unknown; KLE_ENOMEM (then @p out is empty).
 */
KLE_EXTERN(int) kle_record_copy(kle_record *out, const kle_record *src);

/**
 * Replaces a string member (e.g. &rec->strategy) with a copy of the C string
 * @p value (NULL clears it). The member's `_len` must be 0 (as in a fresh or
 * disposed record), since this cannot reset it: to replace a string whose
 * length may be set, use kle_record_set_holder() or kle_record_set_bytes().
 * @return 0 or KLE_ENOMEM (then the member is unchanged).
 */
KLE_EXTERN(int) kle_record_set_string(char **member, const char *value);

/**
 * Replaces a string member and its length with a copy of @p len bytes at
 * @p bytes (which may contain NUL; a terminating NUL is added). NULL
 * @p bytes clears the member (then @p len must be 0).
 * @param member     e.g. &rec->preferred_holder
 * @param member_len its length member, e.g. &rec->preferred_holder_len
 * @param bytes      the new value (copied), or NULL to clear the member
 * @param len        the number of bytes at @p bytes
 * @return 0, KLE_EINVAL (NULL @p member / @p member_len, or NULL @p bytes
 *         with a length) or KLE_ENOMEM (then the member is unchanged).
 */
KLE_EXTERN(int)
kle_record_set_bytes(char **member, size_t *member_len, const char *bytes, size_t len);

/**
 * Sets the holder of @p rec to the @p len bytes at @p bytes (NUL allowed),
 * keeping holder_identity_len in step.
 * @return 0, KLE_EINVAL (NULL @p rec or @p bytes) or KLE_ENOMEM.
 */
KLE_EXTERN(int) kle_record_set_holder(kle_record *rec, const char *bytes, size_t len);

/**
 * Returns the holder, never NULL. It is NUL-terminated but may contain NUL
 * bytes of its own: its length is kle_record_holder_len(). Never compare it
 * with strcmp(); use kle_record_holder_is() / kle_record_holder_equal().
 */
KLE_EXTERN(const char *) kle_record_holder(const kle_record *rec);

/** Returns the holder's length in bytes (0 when released or NULL). */
KLE_EXTERN(size_t) kle_record_holder_len(const kle_record *rec);

/**
 * Returns the length in bytes of a string member given with its length
 * member (0 for NULL): @p len when it is not shorter than the C string,
 * else strlen(@p s).
 */
KLE_EXTERN(size_t) kle_record_string_len(const char *s, size_t len);

/**
 * Returns 1 when the holder of @p rec is exactly @p identity, compared with
 * the holder's full length (a holder read from a record may contain bytes a
 * C string cannot, such as NUL: a holder "a\0b" is not "a"), else 0. NULL
 * @p identity reads as "".
 */
KLE_EXTERN(int) kle_record_holder_is(const kle_record *rec, const char *identity);

/** Returns 1 when the two records have the same holder, compared with full lengths. */
KLE_EXTERN(int) kle_record_holder_equal(const kle_record *a, const kle_record *b);

/** Returns 1 when every field of the two records is equal (strings with their lengths). */
KLE_EXTERN(int) kle_record_equal(const kle_record *a, const kle_record *b);

/**
 * Checks that @p rec can be written: lease_duration_seconds in
 * 1..2147483647 when the holder is not empty (0..2147483647 when it is),
 * leader_transitions in 0..2147483647 (the API's int32 fields; nothing is
 * ever truncated to fit).
 * @return 0; KLE_EVERSION for an unset or unknown version; or KLE_EINVAL
 *         naming the field and its value.
 */
KLE_EXTERN(int) kle_record_validate(const kle_record *rec);

/**
 * Checks an identity the way a lock constructor does, so that the holder
 * written into a record reads back byte for byte and stays harmless in
 * logs. The rules: not NULL or empty; at most KLE_IDENTITY_MAX bytes; valid
 * UTF-8 (shortest forms, no surrogates: the API server's JSON encoder would
 * replace other bytes, and the holder would then never equal us again); no
 * control characters (U+0000..U+001F, U+007F..U+009F: they forge lines in
 * logs and terminals).
 * @return 0, or KLE_EINVAL with a message naming the rule that failed and
 *         the byte offset.
 */
KLE_EXTERN(int) kle_identity_check(const char *identity);

/**
 * A default holder identity, as `kle run` and client-go programs choose it:
 * $POD_NAME when set, else the hostname, an underscore and a random UUID
 * ("host_1b4e28ba-2fa1-4d2b-883f-0016d3cca427"), so that two processes on
 * one machine never share an identity. The caller frees @p *out with
 * kle_free().
 * @return 0; KLE_ENOMEM; KLE_ESYSTEM when no randomness is available.
 */
KLE_EXTERN(int) kle_default_identity(char **out);

/**
 * Formats wall time @p ns as RFC 3339 in UTC: with @p fraction_digits 0,
 * `2026-11-21T10:00:02Z` (metav1.Time); with 6,
 * `2026-11-21T10:00:02.123456Z` (metav1.MicroTime). Other digit counts
 * (1..9) are accepted. Every int64 @p ns can be formatted (years
 * 1677..2262). Returns the length written, or KLE_EINVAL when
 * @p size is too small (at least 31 bytes always suffice) or the digit
 * count is out of range.
 */
KLE_EXTERN(int) kle_time_format(char *buf, size_t size, int64_t ns, int fraction_digits);

/**
 * Parses a timestamp into wall nanoseconds. Accepts RFC 3339 with any
 * fraction (digits past nanoseconds are dropped) and `Z` or a numeric
 * offset, and Python's `str(datetime)` layout
 * `YYYY-MM-DD HH:MM:SS[.ffffff][+HH:MM]` (naive means UTC).
 *
 * Only dates and times that exist are accepted: month 01..12, a day that
 * the month has in that year (February 29 only in leap years of the
 * proleptic Gregorian calendar), hour 00..23, minute 00..59, second
 * 00..59, offset -23:59..+23:59. A leap second (`:60`) is refused, as Go's
 * time.Parse (and so the API server) refuses it. The instant must fit
 * int64 nanoseconds: 1677-09-21T00:12:43.145224192Z to
 * 2262-04-11T23:47:16.854775807Z.
 * @return 0, or KLE_EINVAL with a message quoting the text and naming
 *         what was wrong; then @p out_ns is unchanged.
 */
KLE_EXTERN(int) kle_time_parse(int64_t *out_ns, const char *text);

KLE_END_DECLS

#endif
