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

/* Builds the record's JSON object with times of @p digits fraction digits. */
static json_object *record_object(const kle_record *r, int digits, const char *transitions_key)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;
    if (json_object_object_add(o, "holderIdentity", json_object_new_string(kle_record_holder(r))) <
            0 ||
        json_object_object_add(o, "leaseDurationSeconds",
                               json_object_new_int(r->lease_duration_seconds)) < 0 ||
        add_time(o, "acquireTime", r->acquire_time_ns, digits) < 0 ||
        add_time(o, "renewTime", r->renew_time_ns, digits) < 0 ||
        json_object_object_add(o, transitions_key, json_object_new_int(r->leader_transitions)) <
            0 ||
        (r->strategy &&
         json_object_object_add(o, "strategy", json_object_new_string(r->strategy)) < 0) ||
        (r->preferred_holder &&
         json_object_object_add(o, "preferredHolder", json_object_new_string(r->preferred_holder)) <
             0)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

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

int kle_locks__annotation_write(char **out, const kle_record *r)
{
    return to_text(out, NULL, record_object(r, 0, "leaderTransitions"));
}

int kle_locks__raw_record(char **out, size_t *out_len, const kle_record *r)
{
    return to_text(out, out_len, record_object(r, 6, "leaderTransitions"));
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

/* An integer, or a string of one (the Python client's duration). */
static int read_int(int *out, json_object *v, const char *field, const char *where, int allow_str)
{
    char shown[80];
    if (!v) {
        *out = 0;
        return 0;
    }
    if (json_object_is_type(v, json_type_int)) {
        int64_t n = json_object_get_int64(v);
        if (n >= 0 && n <= INT_MAX) {
            *out = (int)n;
            return 0;
        }
    } else if (allow_str && json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        char *end;
        errno = 0;
        long n = strtol(s, &end, 10);
        if (*s && *end == '\0' && errno == 0 && n >= 0 && n <= INT_MAX) {
            *out = (int)n;
            return 0;
        }
    }
    quote(shown, sizeof(shown), v);
    return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not a non-negative integer", where, field,
                         shown);
}

static int read_time(int64_t *out, json_object *v, const char *field, const char *where)
{
    char shown[80];
    *out = 0;
    if (!v)
        return 0;
    if (json_object_is_type(v, json_type_string)) {
        const char *s = json_object_get_string(v);
        if (*s == '\0' || kle_time_parse(out, s) == 0)
            return 0;
    }
    quote(shown, sizeof(shown), v);
    return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not a timestamp", where, field, shown);
}

static int read_string(char **out, json_object *v, const char *field, const char *where)
{
    char shown[80];
    if (!v)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        quote(shown, sizeof(shown), v);
        return kle_error_set(KLE_EBADRECORD, "%s: %s is %s, not a string", where, field, shown);
    }
    return kle_record_set_string(out, json_object_get_string(v));
}

static json_object *field(json_object *o, const char *key)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, key, &v);
    return v;
}

/* Reads the election fields of a record object (annotation or Lease spec). */
static int read_fields(kle_record *out, json_object *o, const char *transitions_key,
                       int lenient_numbers, const char *where)
{
    kle_record r = KLE_RECORD_INIT;
    int rc;
    if ((rc = read_string(&r.holder_identity, field(o, "holderIdentity"), "holderIdentity",
                          where)) < 0 ||
        (rc = read_int(&r.lease_duration_seconds, field(o, "leaseDurationSeconds"),
                       "leaseDurationSeconds", where, lenient_numbers)) < 0 ||
        (rc = read_time(&r.acquire_time_ns, field(o, "acquireTime"), "acquireTime", where)) < 0 ||
        (rc = read_time(&r.renew_time_ns, field(o, "renewTime"), "renewTime", where)) < 0 ||
        (rc = read_int(&r.leader_transitions, field(o, transitions_key), transitions_key, where,
                       lenient_numbers)) < 0 ||
        (rc = read_string(&r.strategy, field(o, "strategy"), "strategy", where)) < 0 ||
        (rc = read_string(&r.preferred_holder, field(o, "preferredHolder"), "preferredHolder",
                          where)) < 0) {
        kle_record_dispose(&r);
        return rc;
    }
    if (!r.holder_identity && kle_record_set_string(&r.holder_identity, "") < 0) {
        kle_record_dispose(&r);
        return KLE_ENOMEM;
    }
    *out = r;
    return 0;
}

int kle_locks__annotation_read(kle_record *out, const char *text, const char *where)
{
    kle_record_init(out);
    enum json_tokener_error jerr = json_tokener_success;
    json_object *o = json_tokener_parse_verbose(text, &jerr);
    if (jerr != json_tokener_success)
        return kle_error_set(KLE_EBADRECORD, "%s: not JSON (%s): \"%.60s%s\"", where,
                             json_tokener_error_desc(jerr), text, strlen(text) > 60 ? "..." : "");
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
    kle_record_init(out);
    if (!spec) {
        kle_record_set_string(&out->holder_identity, "");
        return 0;
    }
    if (!json_object_is_type(spec, json_type_object))
        return kle_error_set(KLE_EBADRECORD, "%s: spec is a JSON %s, not an object", where,
                             type_name(spec));
    return read_fields(out, spec, "leaseTransitions", 0, where);
}

int kle_locks__lease_spec_write(json_object *spec, const kle_record *r)
{
    static const char *keys[] = {"holderIdentity", "leaseDurationSeconds", "acquireTime",
                                 "renewTime",      "leaseTransitions",     "strategy",
                                 "preferredHolder"};
    json_object *fresh = record_object(r, 6, "leaseTransitions");
    if (!fresh)
        return kle_error_set(KLE_ENOMEM, "lease spec: out of memory");
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        json_object_object_del(spec, keys[i]);
    json_object_object_foreach(fresh, key, value)
    {
        /* A zero time is left out of the spec, as client-go's omitempty does. */
        if (value)
            json_object_object_add(spec, key, json_object_get(value));
    }
    json_object_put(fresh);
    return 0;
}
