/*
 * kle-apiserver's units in-process, without HTTP (src/apiserver had only
 * process-level tests): the object store (resourceVersions, history,
 * deletion), the protobuf encoding (a Lease round trip, malformed bodies),
 * bearer tokens and groups.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apiserver/apiserver.h"

static json_object *lease(const char *name, const char *holder)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
             "\"metadata\":{\"name\":\"%s\",\"namespace\":\"default\"},"
             "\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":15,"
             "\"leaseTransitions\":3,\"renewTime\":\"2026-12-08T01:02:03.456789Z\"}}",
             name, holder);
    json_object *o = json_tokener_parse(text);
    assert_non_null(o);
    return o;
}

static const char *at(json_object *o, const char *a, const char *b)
{
    json_object *v;
    if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)))
        return NULL;
    return json_object_get_string(v);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    return kle_apiserver__store_init(NULL, 100, err, sizeof(err));
}

static int group_teardown(void **state)
{
    (void)state;
    kle_apiserver__store_free();
    kle_apiserver__auth_free();
    return 0;
}

static void test_apiserver_units__store_versions_history_and_deletion(void **state)
{
    (void)state;
    kle_apiserver__store_lock();
    uint64_t rv0 = kle_apiserver__store_rv();
    assert_int_equal(
        kle_apiserver__store_put(KLE_RES_LEASES, "default", "a", lease("a", "x"), KLE_EV_ADDED), 0);
    uint64_t rv1 = kle_apiserver__store_rv();
    assert_true(rv1 > rv0);
    json_object *got = kle_apiserver__store_get(KLE_RES_LEASES, "default", "a");
    assert_non_null(got);
    char want[32];
    snprintf(want, sizeof(want), "%llu", (unsigned long long)rv1);
    assert_string_equal(at(got, "metadata", "resourceVersion"), want);
    /* A change: a new resourceVersion, a MODIFIED event that keeps the old object. */
    assert_int_equal(
        kle_apiserver__store_put(KLE_RES_LEASES, "default", "a", lease("a", "y"), KLE_EV_MODIFIED),
        0);
    uint64_t rv2 = kle_apiserver__store_rv();
    assert_true(rv2 > rv1);
    const kle_apiserver__event *ev = kle_apiserver__store_event(rv2);
    assert_non_null(ev);
    assert_int_equal(ev->type, KLE_EV_MODIFIED);
    assert_string_equal(ev->name, "a");
    assert_non_null(ev->prev);
    assert_string_equal(at(ev->prev, "spec", "holderIdentity"), "x");
    assert_string_equal(at(ev->obj, "spec", "holderIdentity"), "y");
    assert_true(kle_apiserver__store_history_floor() <= rv1);
    /* Other namespaces and names are apart. */
    assert_null(kle_apiserver__store_get(KLE_RES_LEASES, "other", "a"));
    assert_null(kle_apiserver__store_get(KLE_RES_LEASES, "default", "b"));
    /* Deletion: gone, with a DELETED event of its own resourceVersion. */
    assert_int_equal(kle_apiserver__store_delete(KLE_RES_LEASES, "default", "a"), 0);
    assert_null(kle_apiserver__store_get(KLE_RES_LEASES, "default", "a"));
    uint64_t rv3 = kle_apiserver__store_rv();
    assert_true(rv3 > rv2);
    ev = kle_apiserver__store_event(rv3);
    assert_non_null(ev);
    assert_int_equal(ev->type, KLE_EV_DELETED);
    assert_int_not_equal(kle_apiserver__store_delete(KLE_RES_LEASES, "default", "a"), 0);
    kle_apiserver__store_unlock();
}

static void test_apiserver_units__protobuf_round_trip(void **state)
{
    (void)state;
    json_object *in = lease("p", "holder-p");
    kle_buf b = {0};
    assert_int_equal(kle_apiserver__proto_encode(in, &b), 0);
    assert_true(b.len > 4);
    assert_memory_equal(b.data, "k8s\0", 4);
    int code = 0;
    char err[256] = "";
    json_object *out =
        kle_apiserver__proto_decode((const unsigned char *)b.data, b.len, &code, err, sizeof(err));
    assert_non_null(out);
    assert_string_equal(at(out, "kind", NULL), "Lease");
    assert_string_equal(at(out, "apiVersion", NULL), "coordination.k8s.io/v1");
    assert_string_equal(at(out, "metadata", "name"), "p");
    assert_string_equal(at(out, "spec", "holderIdentity"), "holder-p");
    assert_string_equal(at(out, "spec", "leaseTransitions"), "3");
    assert_string_equal(at(out, "spec", "renewTime"), "2026-12-08T01:02:03.456789Z");
    json_object_put(out);
    /* Malformed: no magic, and a truncated body. */
    assert_null(
        kle_apiserver__proto_decode((const unsigned char *)"{}", 2, &code, err, sizeof(err)));
    assert_int_equal(code, 400);
    assert_true(err[0] != '\0');
    code = 0;
    assert_null(kle_apiserver__proto_decode((const unsigned char *)b.data, b.len / 2, &code, err,
                                            sizeof(err)));
    assert_int_equal(code, 400);
    kle_buf__free(&b);
    json_object_put(in);
}

static void test_apiserver_units__tokens_and_groups(void **state)
{
    (void)state;
    kle_apiserver__auth_add_token("t0ken-a", "alice", "uid-a", "ops,devs");
    kle_apiserver__user u;
    memset(&u, 0, sizeof(u));
    assert_int_equal(kle_apiserver__auth_token("t0ken-a", &u), 1);
    assert_string_equal(u.name, "alice");
    assert_string_equal(u.uid, "uid-a");
    assert_int_equal(kle_apiserver__user_in_group(&u, "ops"), 1);
    assert_int_equal(kle_apiserver__user_in_group(&u, "devs"), 1);
    assert_int_equal(kle_apiserver__user_in_group(&u, "system:authenticated"), 1);
    assert_int_equal(kle_apiserver__user_in_group(&u, "op"), 0);
    assert_int_equal(kle_apiserver__auth_token("t0ken-b", &u), 0);
    assert_int_equal(kle_apiserver__auth_token("t0ken-", &u), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apiserver_units__store_versions_history_and_deletion),
        cmocka_unit_test(test_apiserver_units__protobuf_round_trip),
        cmocka_unit_test(test_apiserver_units__tokens_and_groups),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
