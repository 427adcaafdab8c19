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
 * Reads an annotation record tolerantly: client-go v0.26 and HEAD shapes,
 * and the Python client's (duration as a string, str(datetime) times).
 * Anything else is KLE_EBADRECORD with a message "<where>: <what was found>".
 */
int kle_locks__annotation_read(kle_record *out, const char *text, const char *where);

/* Writes the record into a Lease spec (MicroTime times), replacing the election fields. */
int kle_locks__lease_spec_write(json_object *spec, const kle_record *r);

/* Reads a Lease spec; missing fields are zero. Unreadable values are KLE_EBADRECORD. */
int kle_locks__lease_spec_read(kle_record *out, json_object *spec, const char *where);

/* The raw record of a Lease for change detection: the record's JSON, microsecond times. */
int kle_locks__raw_record(char **out, size_t *out_len, const kle_record *r);

#endif
