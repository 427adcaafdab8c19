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
    kle_record back;
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
    kle_record r;
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
    kle_record r;
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
    kle_record r;
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
        kle_record r;
        assert_int_equal(ann_read(&r, cases[i].text, "cm x"), KLE_EBADRECORD);
        assert_string_equal(kle_error_last()->message, cases[i].message);
        assert_null(r.holder_identity);
    }
}

static void test_record_json__lease_without_spec_fields_is_free(void **state)
{
    kle_record r;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
