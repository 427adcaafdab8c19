#include "locks/record_json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/sys/errors.h"

#define TO_STRING_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

static int add_time(json_object *obj, const char *key, int64_t ns, int digits)
{
    char buf[40];
    if (ns == 0)
        return json_object_object_add(obj, key, NULL);
    if (kle_time_format(buf, sizeof(buf), ns, digits) < 0)
        return -1;
    return json_object_object_add(obj, key, json_object_new_string(buf));
}

static int add_string(json_object *o, const char *key, const char *s, size_t len)
{
    json_object *v = json_object_new_string_len(s, (int)len);
    if (!v)
        return -1;
    return json_object_object_add(o, key, v);
}

/*
 * Builds the record's JSON object with times of @p digits fraction digits.
 * Strings are written with their full length. A record to be written that
 * is out of range is KLE_EINVAL (never truncated); the raw record of a read
 * one (@p for_writing 0) is rendered as it is.
 */
static int record_object(json_object **out, const kle_record *r, int digits,
                         const char *transitions_key, int for_writing)
{
    int rc;
    *out = NULL;
    if (for_writing && (rc = kle_record_validate(r)) < 0)
        return rc;
    size_t holder_len = kle_record_holder_len(r);
    size_t strategy_len = kle_record_string_len(r->strategy, r->strategy_len);
    size_t preferred_len = kle_record_string_len(r->preferred_holder, r->preferred_holder_len);
    if (holder_len > INT_MAX || strategy_len > INT_MAX || preferred_len > INT_MAX)
        return kle_error_set(KLE_EINVAL, "record: a string of the record is too long to write");
    json_object *o = json_object_new_object();
    if (!o || add_string(o, "holderIdentity", kle_record_holder(r), holder_len) < 0 ||
        json_object_object_add(o, "leaseDurationSeconds",
                               json_object_new_int(r->lease_duration_seconds)) < 0 ||
        add_time(o, "acquireTime", r->acquire_time_ns, digits) < 0 ||
        add_time(o, "renewTime", r->renew_time_ns, digits) < 0 ||
        json_object_object_add(o, transitions_key, json_object_new_int(r->leader_transitions)) <
            0 ||
        (r->strategy && add_string(o, "strategy", r->strategy, strategy_len) < 0) ||
        (r->preferred_holder &&
         add_string(o, "preferredHolder", r->preferred_holder, preferred_len) < 0)) {
        json_object_put(o);
        return kle_error_set(KLE_ENOMEM, "record: out of memory");
    }
    *out = o;
    return 0;
}

/* Takes @p o. */
static int to_text(char **out, size_t *out_len, json_object *o)
{
    size_t len = 0;
    const char *s = o ? json_object_to_json_string_length(o, TO_STRING_FLAGS, &len) : NULL;
    char *copy = s ? strdup(s) : NULL;
    json_object_put(o);
    if (!copy)
        return kle_error_set(KLE_ENOMEM, "record: out of memory");
    *out = copy;
    if (out_len)
        *out_len = len;
    return 0;
}

/* The record's keys: everything else in a record object belongs to someone else. */
static const char *const RECORD_KEYS[] = {
    "holderIdentity",    "leaseDurationSeconds", "acquireTime", "renewTime",
    "leaderTransitions", "leaseTransitions",     "strategy",    "preferredHolder"};

static int is_record_key(const char *key)
{
    for (size_t i = 0; i < sizeof(RECORD_KEYS) / sizeof(RECORD_KEYS[0]); i++)
        if (strcmp(key, RECORD_KEYS[i]) == 0)
            return 1;
    return 0;
}

/*
 * Keeps in @p fresh what the record does not say from @p old: a strategy or
 * preferredHolder the record leaves NULL, and (with @p unknown) every key
 * that is not a record key, in the old order after the record's fields.
 */
static int keep_foreign(json_object *fresh, json_object *old, const kle_record *r, int unknown)
{
    if (!old || !json_object_is_type(old, json_type_object))
        return 0;
    json_object *v;
    if (!r->strategy && json_object_object_get_ex(old, "strategy", &v) && v &&
        json_object_object_add(fresh, "strategy", json_object_get(v)) < 0)
        return -1;
    if (!r->preferred_holder && json_object_object_get_ex(old, "preferredHolder", &v) && v &&
        json_object_object_add(fresh, "preferredHolder", json_object_get(v)) < 0)
        return -1;
    if (!unknown)
        return 0;
    json_object_object_foreach(old, key, value)
    {
        if (!is_record_key(key) && json_object_object_add(fresh, key, json_object_get(value)) < 0)
            return -1;
    }
    return 0;
}

/* A string member set to "": the record asks for the field to be removed. */
static void drop_empty(json_object *o, const char *key, const char *s, size_t len)
{
    if (s && kle_record_string_len(s, len) == 0)
        json_object_object_del(o, key);
}

int kle_locks__annotation_write(char **out, const kle_record *r)
{
    return kle_locks__annotation_merge(out, r, NULL, 0);
}

int kle_locks__annotation_merge(char **out, const kle_record *r, const char *old, size_t old_len)
{
    json_object *o;
    int rc = record_object(&o, r, 0, "leaderTransitions", 1);
    if (rc < 0)
        return rc;
    json_object *prev = NULL;
    if (old && old_len > 0 && old_len <= INT_MAX && !memchr(old, '\0', old_len)) {
        json_tokener *tok = json_tokener_new();
        if (tok) {
            prev = json_tokener_parse_ex(tok, old, (int)old_len);
            json_tokener_free(tok);
        }
    }
    rc = keep_foreign(o, prev, r, 1);
    json_object_put(prev);
    if (rc < 0) {
        json_object_put(o);
        return kle_error_set(KLE_ENOMEM, "record: out of memory");
    }
    drop_empty(o, "strategy", r->strategy, r->strategy_len);
    drop_empty(o, "preferredHolder", r->preferred_holder, r->preferred_holder_len);
    return to_text(out, NULL, o);
}

int kle_locks__raw_record(char **out, size_t *out_len, const kle_record *r)
{
    json_object *o;
    int rc = record_object(&o, r, 6, "leaderTransitions", 0);
    return rc < 0 ? rc : to_text(out, out_len, o);
}

static const char *type_name(json_object *v)
{
    return v ? json_type_to_name(json_object_get_type(v)) : "null";
}

/* A copy of the value's JSON, shortened for messages. */
static void quote(char *buf, size_t size, json_object *v)
{
    const char *s = v ? json_object_to_json_string_ext(v, TO_STRING_FLAGS) : "null";
    snprintf(buf, size, "%.60s%s", s, strlen(s) > 60 ? "..." : "");
}

/*
 * An int32 in 0..INT32_MAX, or (with @p allow_str) a string of one, the
 * Python client's duration. Absent is 0. Nothing is ever truncated to fit.
 */
static int read_int(int *out, json_object *v, const char *field, const char *where, int allow_str)
{
    char shown[80];
    *out = 0;
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_int)) {
        /* json-c saturates numbers past int64 to INT64_MIN/MAX: out of range here too. */
        int64_t n = json_object_get_int64(v);
        if (n >= 0 && n <= INT32_MAX) {
            *out = (int)n;
            return 0;
        }
    } else if (allow_str && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        char *end;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (*s >= '0' && *s <= '9' && end == s + len && errno == 0 && n >= 0 && n <= INT32_MAX) {
            *out = (int)n;
            return 0;
        }
    }
    quote(shown, sizeof(shown), v);
    return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not an integer in 0..2147483647", where,
                         field, shown);
}

static int read_time(int64_t *out, json_object *v, const char *field, const char *where)
{
    char shown[80];
    *out = 0;
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        size_t len = (size_t)json_object_get_string_len(v);
        if (len == 0)
            return 0;
        if (strlen(s) == len && kle_time_parse(out, s) == 0)
            return 0;
    }
    quote(shown, sizeof(shown), v);
    return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not a timestamp", where, field, shown);
}

/* A string with every byte it has (NUL included). Absent leaves the member NULL. */
static int read_string(char **out, size_t *out_len, json_object *v, const char *field,
                       const char *where)
{
    char shown[80];
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        quote(shown, sizeof(shown), v);
        return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not a string", where, field, shown);
    }
    return kle_record_set_bytes(out, out_len, json_object_get_string(v),
                                (size_t)json_object_get_string_len(v));
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

/*
 * Reads the election fields of a record object (annotation or Lease spec).
 * A held record (non-empty holder) must say for how long: its
 * leaseDurationSeconds must be at least 1. A released one may leave it out.
 */
static int read_fields(kle_record *out, json_object *o, const char *transitions_key,
                       int lenient_numbers, const char *where)
{
    kle_record r = KLE_RECORD_INIT;
    int rc;
    if ((rc = read_string(&r.holder_identity, &r.holder_identity_len, field(o, "holderIdentity"),
                          "holderIdentity", where)) < 0 ||
        (rc = read_int(&r.lease_duration_seconds, field(o, "leaseDurationSeconds"),
                       "leaseDurationSeconds", where, lenient_numbers)) < 0 ||
        (rc = read_time(&r.acquire_time_ns, field(o, "acquireTime"), "acquireTime", where)) < 0 ||
        (rc = read_time(&r.renew_time_ns, field(o, "renewTime"), "renewTime", where)) < 0 ||
        (rc = read_int(&r.leader_transitions, field(o, transitions_key), transitions_key, where,
                       lenient_numbers)) < 0 ||
        (rc = read_string(&r.strategy, &r.strategy_len, field(o, "strategy"), "strategy", where)) <
            0 ||
        (rc = read_string(&r.preferred_holder, &r.preferred_holder_len, field(o, "preferredHolder"),
                          "preferredHolder", where)) < 0) {
        kle_record_dispose(&r);
        return rc;
    }
    if (kle_record_holder_len(&r) > 0 && r.lease_duration_seconds < 1) {
        char shown[80];
        quote(shown, sizeof(shown), field(o, "holderIdentity"));
        rc = kle_error_set(KLE_EBADRECORD,
                           "%s: leaseDurationSeconds is %s for holder %s; a held lock needs "
                           "1..2147483647",
                           where, field(o, "leaseDurationSeconds") ? "0" : "missing", shown);
        kle_record_dispose(&r);
        return rc;
    }
    if (!r.holder_identity && kle_record_set_holder(&r, "", 0) < 0) {
        kle_record_dispose(&r);
        return KLE_ENOMEM;
    }
    *out = r;
    return 0;
}

int kle_locks__annotation_read(kle_record *out, const char *text, size_t len, const char *where)
{
    kle_record_init(out, KLE_RECORD_VERSION);
    const char *nul = memchr(text, '\0', len);
    if (nul)
        return kle_error_set(KLE_EBADRECORD, "%s: not JSON (a NUL byte at offset %zu)", where,
                             (size_t)(nul - text));
    if (len > INT_MAX)
        return kle_error_set(KLE_EBADRECORD, "%s: %zu bytes is too long for a record", where, len);
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return kle_error_set(KLE_ENOMEM, "%s: out of memory", where);
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    if (!o && jerr == json_tokener_continue)
        jerr = json_tokener_error_parse_eof;
    else if (o) {
        /* Like Go's json.Unmarshal: trailing white space only. */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
            if (!strchr(" \t\r\n", text[i]))
                jerr = json_tokener_error_parse_unexpected;
    }
    json_tokener_free(tok);
    if (jerr != json_tokener_success) {
        json_object_put(o);
        char shown[80];
        size_t k = 0;
        /* Control bytes would forge lines in logs: show them as '?'. */
        for (size_t i = 0; i < len && k < 60; i++)
            shown[k++] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
        shown[k] = '\0';
        return kle_error_set(KLE_EBADRECORD, "%s: not JSON (%s): \"%s%s\"", where,
                             json_tokener_error_desc(jerr), shown, len > 60 ? "..." : "");
    }
    if (!json_object_is_type(o, json_type_object)) {
        int rc = kle_error_set(KLE_EBADRECORD, "%s: a JSON %s, not a leader election record", where,
                               type_name(o));
        json_object_put(o);
        return rc;
    }
    int rc = read_fields(out, o, "leaderTransitions", 1, where);
    json_object_put(o);
    return rc;
}

int kle_locks__lease_spec_read(kle_record *out, json_object *spec, const char *where)
{
    kle_record_init(out, KLE_RECORD_VERSION);
    /* The API server always sends a spec (maybe {}); without one this is no Lease. */
    if (!spec)
        return kle_error_set(KLE_EBADRECORD, "%s: spec is null or missing, not an object", where);
    if (!json_object_is_type(spec, json_type_object))
        return kle_error_set(KLE_EBADRECORD, "%s: spec is a JSON %s, not an object", where,
                             type_name(spec));
    return read_fields(out, spec, "leaseTransitions", 0, where);
}

int kle_locks__lease_spec_write(json_object *spec, const kle_record *r)
{
    json_object *fresh;
    int rc = record_object(&fresh, r, 6, "leaseTransitions", 1);
    if (rc < 0)
        return rc;
    /* The fields the record leaves NULL stay as they are; unknown ones are not touched. */
    if (keep_foreign(fresh, spec, r, 0) < 0) {
        json_object_put(fresh);
        return kle_error_set(KLE_ENOMEM, "record: out of memory");
    }
    drop_empty(fresh, "strategy", r->strategy, r->strategy_len);
    drop_empty(fresh, "preferredHolder", r->preferred_holder, r->preferred_holder_len);
    for (size_t i = 0; i < sizeof(RECORD_KEYS) / sizeof(RECORD_KEYS[0]); i++)
        if (strcmp(RECORD_KEYS[i], "leaderTransitions") != 0)
            json_object_object_del(spec, RECORD_KEYS[i]);
    json_object_object_foreach(fresh, key, value)
    {
        /* A zero time is left out of the spec, as client-go's omitempty does. */
        if (value)
            json_object_object_add(spec, key, json_object_get(value));
    }
    json_object_put(fresh);
    return 0;
}
