/* Record formats: the annotation JSON and the Lease spec. Internal. */
#ifndef KLE_LOCKS_RECORD_JSON_H
#define KLE_LOCKS_RECORD_JSON_H

#include <json-c/json.h>

#include "kle/record.h"

/*
 * The record as client-go v0.26 writes it into an annotation: five fields in
 * its order, times RFC 3339 with second precision, zero times as null.
 * strategy and preferredHolder follow only when set. *out is malloc'd.
 */
int kle_locks__annotation_write(char **out, const kle_record *r);

/*
 * As kle_locks__annotation_write(), over the annotation's current text
 * @p old (@p old_len bytes; NULL when there is none): keys of the old JSON
 * object that are not record fields are kept (after the record's fields),
 * and so are its strategy and preferredHolder when the record leaves them
 * NULL. A record string set to "" removes that field. Old text that is not
 * a JSON object keeps nothing.
 */
int kle_locks__annotation_merge(char **out, const kle_record *r, const char *old, size_t old_len);

/*
 * Reads the @p len bytes of an annotation record tolerantly: client-go
 * v0.26 and HEAD shapes, and the Python client's (duration as a string,
 * str(datetime) times). Strings keep every byte (kle_record's _len members).
 * Anything else is KLE_EBADRECORD with a message "<where>: <what was
 * found>": not JSON (a NUL byte included), not an object, a field of the
 * wrong type, a number outside 0..2147483647, a time that does not parse,
 * or a held record (non-empty holder) without a leaseDurationSeconds >= 1.
 */
int kle_locks__annotation_read(kle_record *out, const char *text, size_t len, const char *where);

/*
 * Writes the record into a Lease spec (MicroTime times), replacing the
 * election fields and keeping every other field of @p spec. strategy and
 * preferredHolder are not ours: a record that leaves them NULL keeps the
 * spec's values, "" removes them, any other value replaces them. The
 * annotation writer and this refuse a record outside kle_record_validate()'s
 * ranges with KLE_EINVAL.
 */
int kle_locks__lease_spec_write(json_object *spec, const kle_record *r);

/*
 * Reads a Lease spec; missing fields are zero, so {} is a released lock. A
 * NULL (null or missing) spec, a spec that is not an object, and values as
 * for kle_locks__annotation_read() (numbers only, no strings) are
 * KLE_EBADRECORD.
 */
int kle_locks__lease_spec_read(kle_record *out, json_object *spec, const char *where);

/* The raw record of a Lease for change detection: the record's JSON, microsecond times. */
int kle_locks__raw_record(char **out, size_t *out_len, const kle_record *r);

#endif
