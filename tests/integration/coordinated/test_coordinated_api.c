/*
 * include/kle/coordinated.h through its C API, against a kle-apiserver this
 * test starts (until now only kle run --candidate and kle transfer's shell
 * tests reached it): a candidate publishes its LeaseCandidate and deletes it
 * on a clean stop; kle_transfer_find_candidate() finds both names;
 * kle_transfer() hands a held Lease to a live candidate, refuses a target
 * that is not one (unless forced), a lock nobody holds, and its holder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/rest.h"
#include "support/apiserver.h"
#include "support/quiet_log.h"

#define LEASES     "/apis/coordination.k8s.io/v1/namespaces/default/leases"
#define CANDIDATES "/apis/coordination.k8s.io/v1beta1/namespaces/default/leasecandidates"

static kle_test_apiserver srv;
static kle_client *client;

static int group_setup(void **state)
{
    (void)state;
    quiet_log_install();
    return kle_test_apiserver_with_client(&srv, &client);
}

static int group_teardown(void **state)
{
    (void)state;
    kle_client_free(client);
    return kle_test_apiserver_stop(&srv) == 0 ? 0 : -1;
}

/* A Lease held by @p holder (NULL: released), renewed now. */
static void make_lease(const char *name, const char *holder)
{
    char now[64], body[1024];
    assert_true(kle_time_format(now, sizeof(now), kle_clock_wall_ns(NULL), 6) > 0);
    snprintf(body, sizeof(body),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
             "\"metadata\":{\"name\":\"%s\"},\"spec\":{\"holderIdentity\":\"%s\","
             "\"leaseDurationSeconds\":15,\"acquireTime\":\"%s\",\"renewTime\":\"%s\","
             "\"leaseTransitions\":1}}",
             name, holder ? holder : "", now, now);
    json_object *o = json_tokener_parse(body), *out = NULL;
    assert_non_null(o);
    assert_int_equal(kle_client_create(&out, client, LEASES, o, NULL), 0);
    json_object_put(o);
    json_object_put(out);
}

/* spec.FIELD of object PATH as a string ("" when absent), into @p buf. */
static int spec_field(const char *path, const char *field, char *buf, size_t size)
{
    json_object *o = NULL, *spec, *v;
    int rc = kle_client_get(&o, client, path, NULL);
    buf[0] = '\0';
    if (rc == 0 && json_object_object_get_ex(o, "spec", &spec) &&
        json_object_object_get_ex(spec, field, &v) && json_object_is_type(v, json_type_string))
        snprintf(buf, size, "%s", json_object_get_string(v));
    json_object_put(o);
    return rc;
}

static kle_candidate *candidate(const char *name, const char *lease)
{
    kle_candidate_opts o = KLE_CANDIDATE_OPTS_INIT;
    o.name = name;
    o.lease_name = lease;
    o.binary_version = "1.33.0";
    o.emulation_version = "1.33.0";
    o.poll_period_ns = 100 * KLE_NS_PER_MS;
    kle_candidate *c = NULL;
    assert_int_equal(kle_candidate_start(&c, client, &o), 0);
    return c;
}

/* Waits (with a deadline) until the LeaseCandidate NAME exists. */
static void await_candidate(const char *name)
{
    char path[256], lease[128];
    snprintf(path, sizeof(path), CANDIDATES "/%s", name);
    int64_t end = kle_clock_monotonic_ns(NULL) + 10 * KLE_NS_PER_SEC;
    while (spec_field(path, "leaseName", lease, sizeof(lease)) != 0 &&
           kle_clock_monotonic_ns(NULL) < end)
        kle_clock_sleep(NULL, 20 * KLE_NS_PER_MS);
    assert_int_equal(spec_field(path, "leaseName", lease, sizeof(lease)), 0);
}

static void test_coordinated_api__candidate_publishes_and_deletes_its_object(void **state)
{
    (void)state;
    kle_candidate *c = candidate("pub.b", "pub");
    await_candidate("pub.b");
    char v[128];
    assert_int_equal(spec_field(CANDIDATES "/pub.b", "leaseName", v, sizeof(v)), 0);
    assert_string_equal(v, "pub");
    assert_int_equal(spec_field(CANDIDATES "/pub.b", "binaryVersion", v, sizeof(v)), 0);
    assert_string_equal(v, "1.33.0");
    assert_int_equal(spec_field(CANDIDATES "/pub.b", "renewTime", v, sizeof(v)), 0);
    assert_true(v[0] != '\0');
    /* A clean stop deletes it; the controller stops considering it. */
    assert_int_equal(kle_candidate_stop(c, 1), 0);
    assert_int_equal(spec_field(CANDIDATES "/pub.b", "leaseName", v, sizeof(v)), KLE_ENOTFOUND);
    kle_candidate_free(c);
}

static void test_coordinated_api__bad_options_are_refused(void **state)
{
    (void)state;
    kle_candidate *c = NULL;
    kle_candidate_opts o = KLE_CANDIDATE_OPTS_INIT;
    o.lease_name = "x";
    o.binary_version = "1.33.0";
    assert_int_equal(kle_candidate_start(&c, client, &o), KLE_EINVAL); /* no name */
    assert_null(c);
    kle_transfer_opts t = KLE_TRANSFER_OPTS_INIT;
    t.lock_name = "x";
    assert_int_equal(kle_transfer(client, &t), KLE_EINVAL); /* no target */
    t.to = "y";
    t.lock_type = "configmaps"; /* no preferredHolder in an annotation record */
    assert_int_equal(kle_transfer(client, &t), KLE_EINVAL);
    t.version = 99;
    assert_int_equal(kle_transfer(client, &t), KLE_EVERSION);
}

static void test_coordinated_api__find_candidate_by_either_name(void **state)
{
    (void)state;
    kle_candidate *qualified = candidate("find.b", "find");
    kle_candidate *plain = candidate("c", "find");
    await_candidate("find.b");
    await_candidate("c");
    assert_int_equal(kle_transfer_find_candidate(client, NULL, "find", "b"), 0);
    assert_int_equal(kle_transfer_find_candidate(client, NULL, "find", "c"), 0);
    assert_int_equal(kle_transfer_find_candidate(client, NULL, "find", "nobody"), KLE_ENOTFOUND);
    /* A candidate of another lease is not one of this lease. */
    assert_int_equal(kle_transfer_find_candidate(client, NULL, "other", "c"), KLE_ENOTFOUND);
    assert_int_equal(kle_candidate_stop(qualified, 1), 0);
    assert_int_equal(kle_candidate_stop(plain, 1), 0);
    kle_candidate_free(qualified);
    kle_candidate_free(plain);
}

static void test_coordinated_api__transfer_hands_over_to_a_live_candidate(void **state)
{
    (void)state;
    make_lease("handover", "a");
    kle_candidate *b = candidate("handover.b", "handover");
    await_candidate("handover.b");
    kle_transfer_opts t = KLE_TRANSFER_OPTS_INIT;
    t.lock_name = "handover";
    t.to = "b";
    assert_int_equal(kle_transfer(client, &t), 0);
    char v[128];
    assert_int_equal(spec_field(LEASES "/handover", "preferredHolder", v, sizeof(v)), 0);
    assert_string_equal(v, "b");
    /* The holder is still a: handing over is the leader's to do. */
    assert_int_equal(spec_field(LEASES "/handover", "holderIdentity", v, sizeof(v)), 0);
    assert_string_equal(v, "a");
    assert_int_equal(kle_candidate_stop(b, 1), 0);
    kle_candidate_free(b);
}

static void test_coordinated_api__transfer_refuses_what_it_cannot_do(void **state)
{
    (void)state;
    char v[128];
    kle_transfer_opts t = KLE_TRANSFER_OPTS_INIT;
    /* No such Lease. */
    t.lock_name = "missing";
    t.to = "b";
    assert_int_equal(kle_transfer(client, &t), KLE_ENOTFOUND);
    /* Nobody holds it. */
    make_lease("released", NULL);
    t.lock_name = "released";
    assert_int_equal(kle_transfer(client, &t), KLE_ESTATE);
    /* A target that is not a candidate leaves the lock as it was... */
    make_lease("typo", "a");
    t.lock_name = "typo";
    t.to = "bb";
    t.ping_timeout_ns = 500 * KLE_NS_PER_MS;
    assert_int_equal(kle_transfer(client, &t), KLE_ESTATE);
    assert_int_equal(spec_field(LEASES "/typo", "preferredHolder", v, sizeof(v)), 0);
    assert_string_equal(v, "");
    /* ... unless forced. */
    t.force = 1;
    assert_int_equal(kle_transfer(client, &t), 0);
    assert_int_equal(spec_field(LEASES "/typo", "preferredHolder", v, sizeof(v)), 0);
    assert_string_equal(v, "bb");
    /* The holder itself. */
    t.to = "a";
    assert_int_equal(kle_transfer(client, &t), KLE_ESTATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coordinated_api__candidate_publishes_and_deletes_its_object),
        cmocka_unit_test(test_coordinated_api__bad_options_are_refused),
        cmocka_unit_test(test_coordinated_api__find_candidate_by_either_name),
        cmocka_unit_test(test_coordinated_api__transfer_hands_over_to_a_live_candidate),
        cmocka_unit_test(test_coordinated_api__transfer_refuses_what_it_cannot_do),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
