/*
 * The record JSON parsers, all three record shapes: the spec of a Lease and
 * the leader annotation of a ConfigMap and of an Endpoints object, read from
 * the whole object as the locks' get reads it, and the annotation text on
 * its own (client-go and Python client shapes). Input: one byte choosing
 * the shape (modulo 4: Lease, ConfigMap, Endpoints, annotation text), then
 * the text. A record that reads writes back (as update writes it) and that
 * writing is stable: read(write(r)) writes the same again.
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "kle/lock.h"
#include "kle/record.h"
#include "locks/locks_internal.h"
#include "locks/record_json.h"

static json_object *parse(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    if (!tok)
        abort();
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

static void check_read(int rc, const kle_lock_result *res)
{
    if (rc < 0) {
        fuzz_check_error(rc);
        FUZZ_CHECK(rc == KLE_EBADRECORD || rc == KLE_ENOMEM);
        return;
    }
    FUZZ_CHECK(rc == 0);
    const kle_record *r = &res->record;
    FUZZ_CHECK(r->holder_identity != NULL);
    FUZZ_CHECK(kle_record_holder_len(r) == 0 || r->lease_duration_seconds >= 1);
    FUZZ_CHECK(r->lease_duration_seconds >= 0 && r->leader_transitions >= 0);
    FUZZ_CHECK(res->raw != NULL && strlen(res->raw) <= res->raw_len);
}

/* Writes r into a fresh object of the kind, reads it back and writes that:
 * the two writings must be the same text. */
static void check_roundtrip(int kind, const kle_record *r)
{
    json_object *o1 = json_object_new_object();
    int rc = kle_locks__object_write(o1, kind, r);
    if (rc < 0) {
        /* Only a record outside the ranges is refused. */
        FUZZ_CHECK(rc == KLE_EINVAL && kle_record_validate(r) < 0);
        json_object_put(o1);
        return;
    }
    static const char *const kinds[] = {"Lease", "ConfigMap", "Endpoints"};
    json_object_object_add(o1, "kind", json_object_new_string(kinds[kind]));
    kle_lock_result back = KLE_LOCK_RESULT_INIT;
    rc = kle_locks__object_read(&back, kind, "fuzz", o1);
    FUZZ_CHECK(rc == 0);
    /* What a lock writes it reads as the same holder and numbers. */
    FUZZ_CHECK(kle_record_holder_equal(r, &back.record));
    FUZZ_CHECK(back.record.lease_duration_seconds == r->lease_duration_seconds);
    FUZZ_CHECK(back.record.leader_transitions == r->leader_transitions);
    json_object *o2 = json_object_new_object();
    FUZZ_CHECK(kle_locks__object_write(o2, kind, &back.record) == 0);
    json_object_object_add(o2, "kind", json_object_new_string(kinds[kind]));
    FUZZ_CHECK(strcmp(json_object_to_json_string(o1), json_object_to_json_string(o2)) == 0);
    kle_lock_result_dispose(&back);
    json_object_put(o1);
    json_object_put(o2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    int kind = data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    kle_lock_result res = KLE_LOCK_RESULT_INIT;
    kle_error_clear();
    if (kind == 3) {
        /* The annotation's text as the API server hands it over. */
        char *copy = fuzz_strndup((const uint8_t *)text, len);
        int rc = kle_locks__annotation_read(&res.record, copy, len, "fuzz annotation");
        if (rc == 0 && !(res.raw = strdup("")))
            abort();
        check_read(rc, &res);
        if (rc == 0)
            check_roundtrip(1, &res.record);
        free(copy);
    } else {
        json_object *obj = parse(text, len);
        if (obj && json_object_is_type(obj, json_type_object)) {
            int rc = kle_locks__object_read(&res, kind, "fuzz", obj);
            check_read(rc, &res);
            if (rc == 0)
                check_roundtrip(kind, &res.record);
        }
        json_object_put(obj);
    }
    kle_lock_result_dispose(&res);
    return 0;
}
