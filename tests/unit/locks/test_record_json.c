/* The record formats: golden JSON written, and what is read from whom. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "kle/record.h"
#include "kle/errors.h"
#include "locks/record_json.h"

#define SEC KLE_NS_PER_SEC
static const int64_t T0 = INT64_C(1795255200) * SEC; /* 2026-11-21T10:00:00Z */

static int ann_read(kle_record *out, const char *text, const char *where)
{
    return kle_locks__annotation_read(out, text, strlen(text), where);
}

static kle_record sample(void)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, "node-a_5d1c");
    r.lease_duration_seconds = 15;
    r.acquire_time_ns = T0;
    r.renew_time_ns = T0 + 2 * SEC + 123456789;
    r.leader_transitions = 3;
    return r;
}

static void test_record_json__annotation_is_client_go_v026_shape(void **state)
{
    kle_record r = sample();
    char *text;
    assert_int_equal(kle_locks__annotation_write(&text, &r), 0);
    assert_string_equal(text, "{\"holderIdentity\":\"node-a_5d1c\",\"leaseDurationSeconds\":15,"
                              "\"acquireTime\":\"2026-11-21T10:00:00Z\",\"renewTime\":"
                              "\"2026-11-21T10:00:02Z\",\"leaderTransitions\":3}");
    free(text);
    /* Released: empty holder, zero times written as null. */
    kle_record_set_string(&r.holder_identity, "");
    r.acquire_time_ns = 0;
    r.renew_time_ns = 0;
    assert_int_equal(kle_locks__annotation_write(&text, &r), 0);
    assert_string_equal(text, "{\"holderIdentity\":\"\",\"leaseDurationSeconds\":15,"
                              "\"acquireTime\":null,\"renewTime\":null,\"leaderTransitions\":3}");
    free(text);
    kle_record_dispose(&r);
}

static void test_record_json__lease_spec_has_microtime_and_lease_transitions(void **state)
{
    kle_record r = sample();
    json_object *spec = json_tokener_parse("{\"holderIdentity\":\"old\",\"other\":1}");
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), 0);
    assert_string_equal(json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PLAIN),
                        "{\"other\":1,\"holderIdentity\":\"node-a_5d1c\","
                        "\"leaseDurationSeconds\":15,\"acquireTime\":"
                        "\"2026-11-21T10:00:00.000000Z\",\"renewTime\":"
                        "\"2026-11-21T10:00:02.123456Z\",\"leaseTransitions\":3}");
    kle_record back = KLE_RECORD_INIT;
    assert_int_equal(kle_locks__lease_spec_read(&back, spec, "lease x"), 0);
    assert_string_equal(back.holder_identity, "node-a_5d1c");
    assert_int_equal(back.leader_transitions, 3);
    assert_true(back.renew_time_ns == T0 + 2 * SEC + 123456000);
    kle_record_dispose(&back);
    json_object_put(spec);
    kle_record_dispose(&r);
}

static void test_record_json__reads_client_go_v026_record(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(ann_read(&r,
                              "{\"holderIdentity\":\"node-a_5d1c\",\"leaseDurationSeconds\":15,"
                              "\"acquireTime\":\"2026-11-21T10:00:00Z\",\"renewTime\":"
                              "\"2026-11-21T10:00:02Z\",\"leaderTransitions\":3}",
                              "cm"),
                     0);
    assert_string_equal(r.holder_identity, "node-a_5d1c");
    assert_int_equal(r.lease_duration_seconds, 15);
    assert_true(r.acquire_time_ns == T0);
    assert_true(r.renew_time_ns == T0 + 2 * SEC);
    assert_int_equal(r.leader_transitions, 3);
    assert_null(r.strategy);
    kle_record_dispose(&r);
}

static void test_record_json__reads_client_go_head_record(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(ann_read(&r,
                              "{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":60,"
                              "\"acquireTime\":\"2026-11-21T10:00:00.500000Z\",\"renewTime\":null,"
                              "\"leaderTransitions\":0,\"strategy\":\"OldestEmulationVersion\","
                              "\"preferredHolder\":\"c\"}",
                              "cm"),
                     0);
    assert_string_equal(r.strategy, "OldestEmulationVersion");
    assert_string_equal(r.preferred_holder, "c");
    assert_true(r.acquire_time_ns == T0 + SEC / 2);
    assert_true(r.renew_time_ns == 0);
    kle_record_dispose(&r);
}

static void test_record_json__reads_python_client_record(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(ann_read(&r,
                              "{\"holderIdentity\": \"py-1\", \"leaseDurationSeconds\": \"15\", "
                              "\"acquireTime\": \"2026-11-21 10:00:00.123456\", "
                              "\"renewTime\": \"2026-11-21 10:00:02.123456\"}",
                              "cm"),
                     0);
    assert_string_equal(r.holder_identity, "py-1");
    assert_int_equal(r.lease_duration_seconds, 15);
    assert_true(r.acquire_time_ns == T0 + 123456000);
    assert_true(r.renew_time_ns == T0 + 2 * SEC + 123456000);
    assert_int_equal(r.leader_transitions, 0);
    kle_record_dispose(&r);
}

typedef struct {
    const char *text;
    const char *message;
} bad;

static void test_record_json__unreadable_record_is_an_error_naming_what_was_found(void **state)
{
    const bad cases[] = {
        {"<html>", "cm x: not JSON (unexpected character): \"<html>\""},
        {"[1,2]", "cm x: a JSON array, not a leader election record"},
        {"{\"holderIdentity\":5}", "cm x: holderIdentity is 5, not a string"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":\"soon\"}",
         "cm x: leaseDurationSeconds is \"soon\", not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":-5}",
         "cm x: leaseDurationSeconds is -5, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"renewTime\":\"yesterday\"}",
         "cm x: renewTime is \"yesterday\", not a timestamp"},
        {"{\"holderIdentity\":\"a\",\"leaderTransitions\":1.5}",
         "cm x: leaderTransitions is 1.5, not an integer in 0..2147483647"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kle_record r = KLE_RECORD_INIT;
        assert_int_equal(ann_read(&r, cases[i].text, "cm x"), KLE_EBADRECORD);
        assert_string_equal(kle_error_last()->message, cases[i].message);
        assert_null(r.holder_identity);
    }
}

static void test_record_json__lease_without_spec_fields_is_free(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    json_object *spec = json_tokener_parse("{}");
    assert_int_equal(kle_locks__lease_spec_read(&r, spec, "lease x"), 0);
    assert_string_equal(r.holder_identity, "");
    assert_int_equal(r.lease_duration_seconds, 0);
    kle_record_dispose(&r);
    json_object_put(spec);
    spec = json_tokener_parse("{\"leaseDurationSeconds\":\"15\"}");
    assert_int_equal(kle_locks__lease_spec_read(&r, spec, "lease x"), KLE_EBADRECORD);
    json_object_put(spec);
}

static void test_record_json__strings_keep_every_byte(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(ann_read(&r,
                              "{\"holderIdentity\":\"a\\u0000b\",\"leaseDurationSeconds\":15,"
                              "\"strategy\":\"s\\u0000\",\"preferredHolder\":\"\\u0000\"}",
                              "cm"),
                     0);
    assert_int_equal(kle_record_holder_len(&r), 3);
    assert_memory_equal(kle_record_holder(&r), "a\0b", 3);
    assert_false(kle_record_holder_is(&r, "a"));
    assert_int_equal(r.strategy_len, 2);
    assert_int_equal(r.preferred_holder_len, 1);
    char *text;
    assert_int_equal(kle_locks__annotation_write(&text, &r), 0);
    assert_string_equal(text, "{\"holderIdentity\":\"a\\u0000b\",\"leaseDurationSeconds\":15,"
                              "\"acquireTime\":null,\"renewTime\":null,\"leaderTransitions\":0,"
                              "\"strategy\":\"s\\u0000\",\"preferredHolder\":\"\\u0000\"}");
    free(text);
    json_object *spec = json_object_new_object();
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), 0);
    kle_record back = KLE_RECORD_INIT;
    assert_int_equal(kle_locks__lease_spec_read(&back, spec, "lease x"), 0);
    assert_true(kle_record_equal(&back, &r));
    assert_int_equal(kle_record_holder_len(&back), 3);
    json_object_put(spec);
    kle_record_dispose(&back);
    kle_record_dispose(&r);
    /* A NUL in the annotation text itself is not JSON. */
    assert_int_equal(kle_locks__annotation_read(&r, "{\"holderIdentity\":\"a\"}\0x", 24, "cm"),
                     KLE_EBADRECORD);
    assert_string_equal(kle_error_last()->message, "cm: not JSON (a NUL byte at offset 22)");
}

static void test_record_json__lease_durations_are_int32_and_held_records_need_one(void **state)
{
    const bad cases[] = {
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":4294967297}",
         "cm x: leaseDurationSeconds is 4294967297, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":2147483648}",
         "cm x: leaseDurationSeconds is 2147483648, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":\"4294967297\"}",
         "cm x: leaseDurationSeconds is \"4294967297\", not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":99999999999999999999}",
         "cm x: leaseDurationSeconds is 18446744073709551615, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":\"15 \"}",
         "cm x: leaseDurationSeconds is \"15 \", not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":\" 15\"}",
         "cm x: leaseDurationSeconds is \" 15\", not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":15.0}",
         "cm x: leaseDurationSeconds is 15.0, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":null}",
         "cm x: leaseDurationSeconds is missing for holder \"a\"; a held lock needs 1..2147483647"},
        {"{\"holderIdentity\":\"a\"}",
         "cm x: leaseDurationSeconds is missing for holder \"a\"; a held lock needs 1..2147483647"},
        {"{\"holderIdentity\":\"a\\n\",\"leaseDurationSeconds\":0}",
         "cm x: leaseDurationSeconds is 0 for holder \"a\\n\"; a held lock needs 1..2147483647"},
        {"{\"holderIdentity\":\"\",\"leaseDurationSeconds\":-1}",
         "cm x: leaseDurationSeconds is -1, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":1,\"leaderTransitions\":2147483648}",
         "cm x: leaderTransitions is 2147483648, not an integer in 0..2147483647"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":1,\"renewTime\":"
         "\"2026-02-30T10:00:00Z\"}",
         "cm x: renewTime is \"2026-02-30T10:00:00Z\", not a timestamp"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":1,\"renewTime\":"
         "\"2300-01-01T00:00:00Z\"}",
         "cm x: renewTime is \"2300-01-01T00:00:00Z\", not a timestamp"},
        {"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":1} x",
         "cm x: not JSON (unexpected character): "
         "\"{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":1} "
         "x\""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kle_record r = KLE_RECORD_INIT;
        assert_int_equal(ann_read(&r, cases[i].text, "cm x"), KLE_EBADRECORD);
        assert_string_equal(kle_error_last()->message, cases[i].message);
        assert_null(r.holder_identity);
    }
    /* The widest values that fit, and released records without a duration. */
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(ann_read(&r,
                              "{\"holderIdentity\":\"a\",\"leaseDurationSeconds\":2147483647,"
                              "\"leaderTransitions\":\"2147483647\"} \n",
                              "cm"),
                     0);
    assert_int_equal(r.lease_duration_seconds, 2147483647);
    assert_int_equal(r.leader_transitions, 2147483647);
    kle_record_dispose(&r);
    assert_int_equal(ann_read(&r, "{\"holderIdentity\":\"\",\"leaseDurationSeconds\":0}", "cm"), 0);
    kle_record_dispose(&r);
    assert_int_equal(ann_read(&r, "{}", "cm"), 0);
    assert_int_equal(kle_record_holder_len(&r), 0);
    kle_record_dispose(&r);

    /* Writing refuses what does not fit; nothing is truncated. */
    r = sample();
    r.lease_duration_seconds = 0;
    char *text = NULL;
    assert_int_equal(kle_locks__annotation_write(&text, &r), KLE_EINVAL);
    assert_null(text);
    json_object *spec = json_object_new_object();
    r.lease_duration_seconds = -3;
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "record: leaseDurationSeconds -3 is out of range (1..2147483647 for a held "
                        "lock)");
    assert_int_equal(json_object_object_length(spec), 0);
    r.lease_duration_seconds = 2147483647;
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), 0);
    assert_int_equal(json_object_get_int64(json_object_object_get(spec, "leaseDurationSeconds")),
                     2147483647);
    json_object_put(spec);
    kle_record_dispose(&r);
}

static void test_record_json__lease_spec_null_is_unreadable(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_locks__lease_spec_read(&r, NULL, "lease x"), KLE_EBADRECORD);
    assert_string_equal(kle_error_last()->message,
                        "lease x: spec is null or missing, not an object");
    assert_null(r.holder_identity);
    json_object *spec = json_tokener_parse("[]");
    assert_int_equal(kle_locks__lease_spec_read(&r, spec, "lease x"), KLE_EBADRECORD);
    assert_string_equal(kle_error_last()->message, "lease x: spec is a JSON array, not an object");
    json_object_put(spec);
}

/* Lease spec fields libkle does not own survive a write: unknown ones and, when
 * the record leaves them NULL, strategy and preferredHolder. */
static void test_record_json__lease_spec_write_keeps_fields_it_does_not_own(void **state)
{
    (void)state;
    json_object *spec = json_tokener_parse(
        "{\"holderIdentity\":\"old\",\"strategy\":\"OldestEmulationVersion\","
        "\"preferredHolder\":\"c\",\"futureField\":{\"a\":[1,2]},\"leaseTransitions\":1}");
    kle_record r = sample();
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), 0);
    kle_record back;
    assert_int_equal(kle_locks__lease_spec_read(&back, spec, "t"), 0);
    assert_string_equal(back.holder_identity, "node-a_5d1c");
    assert_int_equal(back.leader_transitions, 3);
    assert_string_equal(back.strategy, "OldestEmulationVersion");
    assert_string_equal(back.preferred_holder, "c");
    json_object *v = NULL;
    assert_true(json_object_object_get_ex(spec, "futureField", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), "{\"a\":[1,2]}");
    kle_record_dispose(&back);
    /* A value replaces; "" removes. */
    kle_record_set_string(&r.strategy, "Other");
    kle_record_set_string(&r.preferred_holder, "");
    assert_int_equal(kle_locks__lease_spec_write(spec, &r), 0);
    assert_int_equal(kle_locks__lease_spec_read(&back, spec, "t"), 0);
    assert_string_equal(back.strategy, "Other");
    assert_null(back.preferred_holder);
    assert_true(json_object_object_get_ex(spec, "futureField", NULL));
    kle_record_dispose(&back);
    kle_record_dispose(&r);
    json_object_put(spec);
}

/* Annotation records keep keys they do not know, and strategy/preferredHolder
 * the record leaves NULL. */
static void test_record_json__annotation_merge_keeps_unknown_keys(void **state)
{
    (void)state;
    const char *old = "{\"holderIdentity\":\"old\",\"leaseDurationSeconds\":15,"
                      "\"preferredHolder\":\"c\",\"acquirer\":{\"pid\":7},\"zone\":\"eu\"}";
    kle_record r = sample();
    char *text = NULL;
    assert_int_equal(kle_locks__annotation_merge(&text, &r, old, strlen(old)), 0);
    assert_string_equal(text, "{\"holderIdentity\":\"node-a_5d1c\",\"leaseDurationSeconds\":15,"
                              "\"acquireTime\":\"2026-11-21T10:00:00Z\",\"renewTime\":"
                              "\"2026-11-21T10:00:02Z\",\"leaderTransitions\":3,"
                              "\"preferredHolder\":\"c\",\"acquirer\":{\"pid\":7},"
                              "\"zone\":\"eu\"}");
    free(text);
    /* Not an object: nothing to keep. */
    assert_int_equal(kle_locks__annotation_merge(&text, &r, "[1]", 3), 0);
    assert_null(strstr(text, "zone"));
    free(text);
    kle_record_dispose(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_json__annotation_is_client_go_v026_shape),
        cmocka_unit_test(test_record_json__lease_spec_has_microtime_and_lease_transitions),
        cmocka_unit_test(test_record_json__reads_client_go_v026_record),
        cmocka_unit_test(test_record_json__reads_client_go_head_record),
        cmocka_unit_test(test_record_json__reads_python_client_record),
        cmocka_unit_test(test_record_json__unreadable_record_is_an_error_naming_what_was_found),
        cmocka_unit_test(test_record_json__lease_without_spec_fields_is_free),
        cmocka_unit_test(test_record_json__strings_keep_every_byte),
        cmocka_unit_test(test_record_json__lease_durations_are_int32_and_held_records_need_one),
        cmocka_unit_test(test_record_json__lease_spec_null_is_unreadable),
        cmocka_unit_test(test_record_json__lease_spec_write_keeps_fields_it_does_not_own),
        cmocka_unit_test(test_record_json__annotation_merge_keeps_unknown_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
