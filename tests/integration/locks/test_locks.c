/*
 * The lock backends against a kle-apiserver this test starts: create, get,
 * update, Conflict on a stale update, what else on the object survives, the
 * exact JSON written, records written by other clients, MultiLock states,
 * lock selection by name, and Events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/rest.h"
#include "kle/locks.h"
#include "support/apiserver.h"
#include "support/lock_calls.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC
static const int64_t T0 = INT64_C(1795255200) * SEC;

static kle_test_apiserver srv;
static kle_client *client;

static int group_setup(void **state)
{
    quiet_log_install();
    if (kle_test_apiserver_with_client(&srv, &client) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    kle_client_free(client);
    return kle_test_apiserver_stop(&srv) == 0 ? 0 : -1;
}

static kle_lock *new_lock(const char *type, const char *name, const char *identity)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = name;
    o.identity = identity;
    kle_lock *lock = NULL;
    if (kle_lock_new_by_name(&lock, type, client, &o) != 0)
        fail_msg("%s lock %s: %s", type, name, kle_error_last()->message);
    return lock;
}

static kle_record record_of(const char *holder, int transitions, int64_t renew)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_string(&r.holder_identity, holder);
    r.lease_duration_seconds = 15;
    r.acquire_time_ns = T0;
    r.renew_time_ns = renew;
    r.leader_transitions = transitions;
    return r;
}

static json_object *get_object(const char *gv, const char *resource, const char *name)
{
    char path[256];
    json_object *obj = NULL;
    assert_int_equal(kle_client_path(path, sizeof(path), gv, resource, "default", name), 0);
    if (kle_client_get(&obj, client, path, NULL) != 0)
        fail_msg("GET %s: %s", path, kle_error_last()->message);
    return obj;
}

static const char *at(json_object *obj, const char *a, const char *b, const char *c)
{
    json_object *v = obj;
    const char *keys[] = {a, b, c};
    for (int i = 0; i < 3 && keys[i]; i++)
        if (!json_object_object_get_ex(v, keys[i], &v))
            return NULL;
    return json_object_get_string(v);
}

static void create_object(const char *gv, const char *resource, const char *json)
{
    char path[256];
    json_object *body = json_tokener_parse(json);
    assert_non_null(body);
    assert_int_equal(kle_client_path(path, sizeof(path), gv, resource, "default", NULL), 0);
    if (kle_client_create(NULL, client, path, body, NULL) != 0)
        fail_msg("POST %s: %s", path, kle_error_last()->message);
    json_object_put(body);
}

/* create, get, update, and Conflict for a stale writer, on one lock type. */
static void lifecycle(const char *type, const char *name)
{
    kle_lock *a = new_lock(type, name, "node-a");
    kle_lock *b = new_lock(type, name, "node-b");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, a, NULL), KLE_ENOTFOUND);
    kle_record r = record_of("node-a", 0, T0);
    assert_int_equal(kle_lock_create(a, &r, NULL), 0);
    assert_int_equal(kle_lock_create(b, &r, NULL), KLE_EEXISTS);

    assert_int_equal(kle_lock_get(&got, b, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "node-a");
    assert_int_equal(got.record.lease_duration_seconds, 15);
    assert_true(got.record.acquire_time_ns == T0);
    assert_non_null(got.resource_version);
    char *raw1 = strdup(got.raw);
    kle_lock_result_dispose(&got);

    /* a renews; b's view is now stale. */
    kle_record r2 = record_of("node-a", 0, T0 + 2 * SEC);
    assert_int_equal(kle_lock_update(a, &r2, NULL), 0);
    kle_record takeover = record_of("node-b", 1, T0 + 20 * SEC);
    assert_int_equal(kle_lock_update(b, &takeover, NULL), KLE_ECONFLICT);
    assert_int_equal(kle_error_last()->http_status, 409);
    assert_string_equal(kle_error_last()->reason, "Conflict");

    /* After reading again b may write, and the raw record shows the change. */
    assert_int_equal(kle_lock_get(&got, b, NULL), 0);
    assert_true(got.record.renew_time_ns == T0 + 2 * SEC);
    assert_string_not_equal(got.raw, raw1);
    kle_lock_result_dispose(&got);
    assert_int_equal(kle_lock_update(b, &takeover, NULL), 0);
    assert_int_equal(kle_lock_get(&got, a, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "node-b");
    assert_int_equal(got.record.leader_transitions, 1);
    kle_lock_result_dispose(&got);

    free(raw1);
    kle_record_dispose(&r);
    kle_record_dispose(&r2);
    kle_record_dispose(&takeover);
    kle_lock_free(a);
    kle_lock_free(b);
}

static void test_locks__lease_lifecycle(void **state)
{
    lifecycle("leases", "life-lease");
}

static void test_locks__configmap_lifecycle(void **state)
{
    lifecycle("configmaps", "life-cm");
}

static void test_locks__endpoints_lifecycle(void **state)
{
    lifecycle("endpoints", "life-ep");
}

static void test_locks__multi_lifecycle(void **state)
{
    lifecycle("endpointsleases", "life-epl");
    lifecycle("configmapsleases", "life-cml");
}

static void test_locks__configmap_update_keeps_data_labels_and_annotations(void **state)
{
    create_object("v1", "configmaps",
                  "{\"metadata\":{\"name\":\"shared-cm\",\"labels\":{\"app\":\"web\"},"
                  "\"annotations\":{\"team\":\"infra\"}},\"data\":{\"config.yaml\":\"a: 1\"}}");
    kle_lock *l = new_lock("configmaps", "shared-cm", "node-a");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), ""); /* no record yet: free */
    kle_lock_result_dispose(&got);
    kle_record r = record_of("node-a", 3, T0 + 2 * SEC);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);

    json_object *cm = get_object("v1", "configmaps", "shared-cm");
    assert_string_equal(at(cm, "data", "config.yaml", NULL), "a: 1");
    assert_string_equal(at(cm, "metadata", "labels", "app"), "web");
    assert_string_equal(at(cm, "metadata", "annotations", "team"), "infra");
    /* The record is exactly what client-go v0.26 writes. */
    assert_string_equal(at(cm, "metadata", "annotations", KLE_LEADER_ANNOTATION),
                        "{\"holderIdentity\":\"node-a\",\"leaseDurationSeconds\":15,"
                        "\"acquireTime\":\"2026-11-21T10:00:00Z\",\"renewTime\":"
                        "\"2026-11-21T10:00:02Z\",\"leaderTransitions\":3}");
    json_object_put(cm);
    kle_record_dispose(&r);
    kle_lock_free(l);
}

static void test_locks__endpoints_update_keeps_subsets(void **state)
{
    create_object("v1", "endpoints",
                  "{\"metadata\":{\"name\":\"shared-ep\",\"annotations\":{\"x\":\"y\"}},"
                  "\"subsets\":[{\"addresses\":[{\"ip\":\"10.0.0.7\"}],"
                  "\"ports\":[{\"port\":8080,\"protocol\":\"TCP\"}]}]}");
    kle_lock *l = new_lock("endpoints", "shared-ep", "node-a");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    kle_lock_result_dispose(&got);
    kle_record r = record_of("node-a", 1, T0);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);
    json_object *ep = get_object("v1", "endpoints", "shared-ep");
    json_object *subsets = json_object_object_get(ep, "subsets");
    assert_int_equal(json_object_array_length(subsets), 1);
    json_object *addr = json_object_array_get_idx(
        json_object_object_get(json_object_array_get_idx(subsets, 0), "addresses"), 0);
    assert_string_equal(at(addr, "ip", NULL, NULL), "10.0.0.7");
    assert_string_equal(at(ep, "metadata", "annotations", "x"), "y");
    assert_non_null(at(ep, "metadata", "annotations", KLE_LEADER_ANNOTATION));
    json_object_put(ep);
    kle_record_dispose(&r);
    kle_lock_free(l);
}

/* The three constructors of kle/locks.h, called directly: each keeps its
 * record in its own kind of object, as kle_lock_new_by_name's names do. */
static void test_locks__direct_constructors(void **state)
{
    (void)state;
    typedef int (*ctor)(kle_lock **, kle_client *, const kle_resource_lock_opts *);
    const struct {
        ctor make;
        const char *name, *gv, *resource;
    } kinds[] = {
        {kle_lease_lock_new, "direct-lease", "coordination.k8s.io/v1", "leases"},
        {kle_configmap_lock_new, "direct-cm", "v1", "configmaps"},
        {kle_endpoints_lock_new, "direct-ep", "v1", "endpoints"},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
        o.name = kinds[i].name;
        o.identity = "node-a";
        kle_lock *l = NULL;
        assert_int_equal(kinds[i].make(&l, client, &o), 0);
        assert_string_equal(kle_lock_identity(l), "node-a");
        assert_non_null(strstr(kle_lock_describe(l), kinds[i].name));
        kle_lock_result got = KLE_LOCK_RESULT_INIT;
        assert_int_equal(kle_lock_get(&got, l, NULL), KLE_ENOTFOUND);
        kle_record r = record_of("node-a", 0, T0);
        assert_int_equal(kle_lock_create(l, &r, NULL), 0);
        json_object *obj = get_object(kinds[i].gv, kinds[i].resource, kinds[i].name);
        assert_non_null(obj);
        json_object_put(obj);
        assert_int_equal(kle_lock_get(&got, l, NULL), 0);
        assert_string_equal(kle_record_holder(&got.record), "node-a");
        kle_lock_result_dispose(&got);
        kle_record_dispose(&r);
        kle_lock_free(l);
        /* A name is required. */
        o.name = NULL;
        assert_int_equal(kinds[i].make(&l, client, &o), KLE_EINVAL);
    }
}

static void test_locks__lease_spec_and_labels(void **state)
{
    create_object("coordination.k8s.io/v1", "leases",
                  "{\"metadata\":{\"name\":\"labelled\",\"labels\":{\"owner\":\"ops\"}},"
                  "\"spec\":{}}");
    static const char *const labels[] = {"app.kubernetes.io/name", "my-controller", NULL};
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = "labelled";
    o.identity = "node-a";
    o.lease_labels = labels;
    kle_lock *l;
    assert_int_equal(kle_lease_lock_new(&l, client, &o), 0);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "");
    kle_lock_result_dispose(&got);
    kle_record r = record_of("node-a", 2, T0 + 2 * SEC + 123456789);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);
    json_object *lease = get_object("coordination.k8s.io/v1", "leases", "labelled");
    assert_string_equal(at(lease, "metadata", "labels", "owner"), "ops");
    assert_string_equal(at(lease, "metadata", "labels", "app.kubernetes.io/name"), "my-controller");
    assert_string_equal(at(lease, "spec", "holderIdentity", NULL), "node-a");
    assert_string_equal(at(lease, "spec", "renewTime", NULL), "2026-11-21T10:00:02.123456Z");
    assert_string_equal(at(lease, "spec", "acquireTime", NULL), "2026-11-21T10:00:00.000000Z");
    assert_string_equal(at(lease, "spec", "leaseTransitions", NULL), "2");
    assert_string_equal(at(lease, "spec", "leaseDurationSeconds", NULL), "15");
    json_object_put(lease);
    kle_record_dispose(&r);
    kle_lock_free(l);
}

static void read_foreign(const char *name, const char *annotation, kle_record *out)
{
    json_object *cm = json_object_new_object();
    json_object *meta = json_object_new_object();
    json_object *ann = json_object_new_object();
    json_object_object_add(ann, KLE_LEADER_ANNOTATION, json_object_new_string(annotation));
    json_object_object_add(meta, "name", json_object_new_string(name));
    json_object_object_add(meta, "annotations", ann);
    json_object_object_add(cm, "metadata", meta);
    create_object("v1", "configmaps", json_object_to_json_string(cm));
    json_object_put(cm);
    kle_lock *l = new_lock("configmaps", name, "me");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&got, l, NULL);
    if (rc == 0) {
        *out = got.record;
        kle_record_init(&got.record, KLE_RECORD_VERSION);
        kle_lock_result_dispose(&got);
    } else {
        kle_record_init(out, KLE_RECORD_VERSION);
        out->leader_transitions = rc;
    }
    kle_lock_free(l);
}

static void test_locks__reads_records_of_other_clients(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    read_foreign("by-client-go-v026",
                 "{\"holderIdentity\":\"node-a_5d1c\",\"leaseDurationSeconds\":15,"
                 "\"acquireTime\":\"2026-11-21T10:00:00Z\",\"renewTime\":\"2026-11-21T10:00:02Z\","
                 "\"leaderTransitions\":3}",
                 &r);
    assert_string_equal(r.holder_identity, "node-a_5d1c");
    assert_int_equal(r.leader_transitions, 3);
    kle_record_dispose(&r);
    read_foreign("by-client-go-head",
                 "{\"holderIdentity\":\"b\",\"leaseDurationSeconds\":60,\"acquireTime\":null,"
                 "\"renewTime\":\"2026-11-21T10:00:02.5Z\",\"leaderTransitions\":9,"
                 "\"strategy\":\"OldestEmulationVersion\",\"preferredHolder\":\"c\"}",
                 &r);
    assert_string_equal(r.holder_identity, "b");
    assert_string_equal(r.preferred_holder, "c");
    assert_true(r.renew_time_ns == T0 + 2 * SEC + SEC / 2);
    kle_record_dispose(&r);
    read_foreign("by-python",
                 "{\"holderIdentity\": \"py-1\", \"leaseDurationSeconds\": \"15\", "
                 "\"acquireTime\": \"2026-11-21 10:00:00.123456\", "
                 "\"renewTime\": \"2026-11-21 10:00:02.123456\"}",
                 &r);
    assert_string_equal(r.holder_identity, "py-1");
    assert_int_equal(r.lease_duration_seconds, 15);
    kle_record_dispose(&r);
}

/* A Lease and a ConfigMap written by another client (raw JSON, as curl or
 * kubectl would send it) keep what libkle does not own across our writes. */
static void test_locks__writes_keep_fields_they_do_not_own(void **state)
{
    create_object("coordination.k8s.io/v1", "leases",
                  "{\"metadata\":{\"name\":\"coordinated\",\"labels\":{\"team\":\"x\"}},"
                  "\"spec\":{\"holderIdentity\":\"me\",\"leaseDurationSeconds\":15,"
                  "\"leaseTransitions\":2,\"strategy\":\"OldestEmulationVersion\","
                  "\"preferredHolder\":\"other\"}}");
    kle_lock *l = new_lock("leases", "coordinated", "me");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    kle_record r = record_of("me", 3, T0);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);
    kle_lock_result_dispose(&got);
    kle_record_dispose(&r);
    json_object *obj = get_object("coordination.k8s.io/v1", "leases", "coordinated");
    json_object *spec = json_object_object_get(obj, "spec");
    assert_string_equal(json_object_get_string(json_object_object_get(spec, "strategy")),
                        "OldestEmulationVersion");
    assert_string_equal(json_object_get_string(json_object_object_get(spec, "preferredHolder")),
                        "other");
    assert_int_equal(json_object_get_int(json_object_object_get(spec, "leaseTransitions")), 3);
    json_object *labels = json_object_object_get(json_object_object_get(obj, "metadata"), "labels");
    assert_string_equal(json_object_get_string(json_object_object_get(labels, "team")), "x");
    json_object_put(obj);
    kle_lock_free(l);

    json_object *cm =
        json_tokener_parse("{\"metadata\":{\"name\":\"annotated\",\"annotations\":{}}}");
    json_object_object_add(
        json_object_object_get(json_object_object_get(cm, "metadata"), "annotations"),
        KLE_LEADER_ANNOTATION,
        json_object_new_string("{\"holderIdentity\":\"me\",\"leaseDurationSeconds\":15,"
                               "\"leaderTransitions\":1,\"preferredHolder\":\"other\","
                               "\"acquirerHost\":\"h1\"}"));
    create_object("v1", "configmaps", json_object_to_json_string(cm));
    json_object_put(cm);
    l = new_lock("configmaps", "annotated", "me");
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    kle_lock_result_dispose(&got);
    r = record_of("me", 1, T0);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);
    kle_record_dispose(&r);
    obj = get_object("v1", "configmaps", "annotated");
    json_object *ann =
        json_object_object_get(json_object_object_get(obj, "metadata"), "annotations");
    const char *text = json_object_get_string(json_object_object_get(ann, KLE_LEADER_ANNOTATION));
    assert_non_null(strstr(text, "\"acquirerHost\":\"h1\""));
    assert_non_null(strstr(text, "\"preferredHolder\":\"other\""));
    json_object_put(obj);
    kle_lock_free(l);
}

static void never_started(kle_leading *l, void *d)
{
    fail_msg("an unreadable record was taken as a free lock");
}
static void stopped_cb(void *d)
{
}

static void *run_elector(void *e)
{
    kle_elector_run(e);
    return NULL;
}

static void test_locks__unreadable_record_is_never_a_free_lock(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    read_foreign("garbled", "{\"holderIdentity\": 42}", &r);
    assert_int_equal(r.leader_transitions, KLE_EBADRECORD);
    assert_string_equal(kle_error_last()->message,
                        "configmaps default/garbled: annotation "
                        "control-plane.alpha.kubernetes.io/leader: holderIdentity is 42, not a "
                        "string");
    kle_record_dispose(&r);
    /* An elector on it keeps trying and never leads; the object is untouched. */
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = new_lock("configmaps", "garbled", "me");
    c.lease_duration_ns = KLE_MS(2000);
    c.renew_deadline_ns = KLE_MS(1500);
    c.retry_period_ns = KLE_MS(100);
    c.callbacks.on_started_leading = never_started;
    c.callbacks.on_stopped_leading = stopped_cb;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &c), 0);
    pthread_t t;
    pthread_create(&t, NULL, run_elector, e);
    /* Wait, with a deadline, for five failed tries: well past any lease duration it read. */
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    int64_t deadline = kle_clock_monotonic_ns(NULL) + 30 * SEC;
    do {
        kle_clock_sleep(NULL, 20 * KLE_NS_PER_MS);
        kle_elector_get_stats(&st, e);
    } while (st.failed_tries < 5 && kle_clock_monotonic_ns(NULL) < deadline);
    kle_elector_stop(e);
    pthread_join(t, NULL);
    assert_true(st.failed_tries >= 5);
    assert_int_equal(st.acquisitions, 0);
    kle_elector_free(e);
    json_object *cm = get_object("v1", "configmaps", "garbled");
    assert_string_equal(at(cm, "metadata", "annotations", KLE_LEADER_ANNOTATION),
                        "{\"holderIdentity\": 42}");
    json_object_put(cm);
}

static void test_locks__multi_lock_states(void **state)
{
    /* Secondary missing, primary held by a legacy controller: report the primary. */
    create_object(
        "v1", "endpoints",
        "{\"metadata\":{\"name\":\"mig\",\"annotations\":{\"" KLE_LEADER_ANNOTATION
        "\":\"{\\\"holderIdentity\\\":\\\"legacy\\\",\\\"leaseDurationSeconds\\\":15,"
        "\\\"acquireTime\\\":null,\\\"renewTime\\\":null,\\\"leaderTransitions\\\":4}\"}}}");
    kle_lock *m = new_lock("endpointsleases", "mig", "node-new");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, m, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "legacy");
    assert_int_equal(got.record.leader_transitions, 4);
    kle_lock_result_dispose(&got);

    /* Both present and agreeing after a takeover through the MultiLock. */
    kle_record r = record_of("node-new", 5, T0);
    assert_int_equal(kle_lock_update(m, &r, NULL), 0);
    json_object *lease = get_object("coordination.k8s.io/v1", "leases", "mig");
    assert_string_equal(at(lease, "spec", "holderIdentity", NULL), "node-new");
    json_object_put(lease);
    assert_int_equal(kle_lock_get(&got, m, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), "node-new");
    assert_non_null(strchr(got.raw, ','));
    kle_lock_result_dispose(&got);

    /* Holders disagreeing: a Lease-only candidate took the Lease. */
    kle_lock *lease_only = new_lock("leases", "mig", "node-lease");
    assert_int_equal(kle_lock_get(&got, lease_only, NULL), 0);
    kle_lock_result_dispose(&got);
    kle_record theirs = record_of("node-lease", 6, T0);
    assert_int_equal(kle_lock_update(lease_only, &theirs, NULL), 0);
    assert_int_equal(kle_lock_get(&got, m, NULL), 0);
    assert_string_equal(kle_record_holder(&got.record), KLE_UNKNOWN_LEADER);
    kle_lock_result_dispose(&got);

    /* kle_multi_lock_get_both shows each record as it is. */
    kle_lock_result p = KLE_LOCK_RESULT_INIT, s = KLE_LOCK_RESULT_INIT;
    int prc, src;
    assert_int_equal(kle_multi_lock_get_both(&p, &prc, &s, &src, m, NULL), 0);
    assert_int_equal(prc, 0);
    assert_int_equal(src, 0);
    assert_string_equal(kle_record_holder(&p.record), "node-new");
    assert_string_equal(kle_record_holder(&s.record), "node-lease");
    kle_lock_result_dispose(&p);
    kle_lock_result_dispose(&s);
    kle_record_dispose(&r);
    kle_record_dispose(&theirs);
    kle_lock_free(m);
    kle_lock_free(lease_only);
}

static void test_locks__selection_by_name(void **state)
{
    const char *const *names = kle_lock_type_names();
    int n = 0;
    for (; names[n]; n++) {
        char name[64];
        snprintf(name, sizeof(name), "by-name-%d", n);
        kle_lock *l = new_lock(names[n], name, "node-a");
        kle_record r = record_of("node-a", 0, T0);
        assert_int_equal(kle_lock_create(l, &r, NULL), 0);
        kle_lock_result got = KLE_LOCK_RESULT_INIT;
        assert_int_equal(kle_lock_get(&got, l, NULL), 0);
        assert_string_equal(kle_record_holder(&got.record), "node-a");
        kle_lock_result_dispose(&got);
        kle_record_dispose(&r);
        kle_lock_free(l);
    }
    assert_int_equal(n, 5);
    /* Each name made the objects it should. */
    json_object *o = get_object("coordination.k8s.io/v1", "leases", "by-name-0");
    json_object_put(o);
    o = get_object("v1", "endpoints", "by-name-1");
    json_object_put(o);
    o = get_object("v1", "configmaps", "by-name-2");
    json_object_put(o);
    o = get_object("v1", "endpoints", "by-name-3");
    json_object_put(o);
    o = get_object("coordination.k8s.io/v1", "leases", "by-name-3");
    json_object_put(o);
    o = get_object("v1", "configmaps", "by-name-4");
    json_object_put(o);
    o = get_object("coordination.k8s.io/v1", "leases", "by-name-4");
    json_object_put(o);

    kle_resource_lock_opts ro = KLE_RESOURCE_LOCK_OPTS_INIT;
    ro.name = "x";
    ro.identity = "y";
    kle_lock *l = (kle_lock *)&ro;
    assert_int_equal(kle_lock_new_by_name(&l, "lease", client, &ro), KLE_EINVAL);
    assert_null(l);
    assert_string_equal(kle_error_last()->message,
                        "unknown resource lock type \"lease\": valid types are leases, endpoints, "
                        "configmaps, endpointsleases, configmapsleases");
    ro.identity = "";
    assert_int_equal(kle_lock_new_by_name(&l, "leases", client, &ro), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "Lease lock x: an identity is required (it is empty)");
}

/* The holder of the Lease `name` as the server stores it, with its length. */
static size_t stored_holder(const char *name, char *buf, size_t size)
{
    json_object *lease = get_object("coordination.k8s.io/v1", "leases", name);
    json_object *spec = json_object_object_get(lease, "spec");
    json_object *h = json_object_object_get(spec, "holderIdentity");
    assert_non_null(h);
    size_t len = (size_t)json_object_get_string_len(h);
    assert_true(len < size);
    memcpy(buf, json_object_get_string(h), len);
    json_object_put(lease);
    return len;
}

static void test_locks__holder_with_nul_is_compared_with_its_length(void **state)
{
    char renew[40], spec[256], held[16];
    kle_time_format(renew, sizeof(renew), kle_clock_wall_ns(NULL), 6);
    snprintf(spec, sizeof(spec),
             "{\"metadata\":{\"name\":\"nul-holder\"},\"spec\":{\"holderIdentity\":\"a\\u0000b\","
             "\"leaseDurationSeconds\":15,\"renewTime\":\"%s\",\"leaseTransitions\":4}}",
             renew);
    create_object("coordination.k8s.io/v1", "leases", spec);
    assert_int_equal(stored_holder("nul-holder", held, sizeof(held)), 3);

    /* Read with every byte: not "a". */
    kle_lock *l = new_lock("leases", "nul-holder", "a");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    assert_int_equal(kle_record_holder_len(&got.record), 3);
    assert_memory_equal(kle_record_holder(&got.record), "a\0b", 3);
    assert_false(kle_record_holder_is(&got.record, "a"));
    kle_lock_result_dispose(&got);
    kle_lock_free(l);

    /* An elector "a" does not take the live lease over: no renewal of "its" lease. */
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = new_lock("leases", "nul-holder", "a");
    c.lease_duration_ns = KLE_MS(10000);
    c.renew_deadline_ns = KLE_MS(5000);
    c.retry_period_ns = KLE_MS(100);
    c.follow = KLE_FOLLOW_POLL; /* Counts the polled tries. */
    c.callbacks.on_started_leading = never_started;
    c.callbacks.on_stopped_leading = stopped_cb;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &c), 0);
    pthread_t t;
    pthread_create(&t, NULL, run_elector, e);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    int64_t deadline = kle_clock_monotonic_ns(NULL) + 8 * SEC;
    do {
        kle_clock_sleep(NULL, 20 * KLE_NS_PER_MS);
        kle_elector_get_stats(&st, e);
    } while (st.failed_tries < 5 && st.acquisitions == 0 &&
             kle_clock_monotonic_ns(NULL) < deadline);
    kle_elector_stop(e);
    pthread_join(t, NULL);
    assert_int_equal(st.acquisitions, 0);
    assert_true(st.failed_tries >= 5);
    kle_elector_free(e);
    assert_int_equal(stored_holder("nul-holder", held, sizeof(held)), 3);
    assert_memory_equal(held, "a\0b", 3);

    /* Written back with every byte, on a Lease and in an annotation. */
    l = new_lock("leases", "nul-holder", "a");
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    kle_record r = record_of("x", 5, T0);
    assert_int_equal(kle_record_set_holder(&r, "x\0y\0", 4), 0);
    assert_int_equal(kle_lock_update(l, &r, NULL), 0);
    assert_int_equal(stored_holder("nul-holder", held, sizeof(held)), 4);
    assert_memory_equal(held, "x\0y\0", 4);
    kle_lock_result_dispose(&got);
    kle_lock_free(l);
    l = new_lock("configmaps", "nul-holder-cm", "a");
    assert_int_equal(kle_lock_create(l, &r, NULL), 0);
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    assert_true(kle_record_holder_equal(&got.record, &r));
    assert_int_equal(kle_record_holder_len(&got.record), 4);
    kle_lock_result_dispose(&got);
    kle_lock_free(l);
    kle_record_dispose(&r);
}

static void test_locks__identities_the_api_would_change_are_refused(void **state)
{
    static const char *const bad[] = {"", "a\nb", "a\x1b[31mb", "\xff", "a\xc2\x85", "\x7f"};
    char long_id[KLE_IDENTITY_MAX + 2];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = "ids";
    for (size_t i = 0; i <= sizeof(bad) / sizeof(bad[0]); i++) {
        o.identity = i < sizeof(bad) / sizeof(bad[0]) ? bad[i] : long_id;
        const char *types[] = {"leases", "configmaps", "endpointsleases"};
        for (size_t k = 0; k < 3; k++) {
            kle_lock *l = (kle_lock *)&o;
            assert_int_equal(kle_lock_new_by_name(&l, types[k], client, &o), KLE_EINVAL);
            assert_null(l);
            assert_non_null(strstr(kle_error_last()->message, "identit"));
        }
    }
    o.identity = "node-\xc3\xa9_\xf0\x9f\x90\xb3"; /* UTF-8 beyond ASCII is fine. */
    kle_lock *l = NULL;
    assert_int_equal(kle_lock_new_by_name(&l, "leases", client, &o), 0);
    kle_lock_free(l);
}

/* A canned 200 answer for `verb` on `resource`/`name` until the faults are cleared. */
static void answer_with(const char *verb, const char *resource, const char *name, const char *body)
{
    char rule[1024];
    snprintf(rule, sizeof(rule),
             "{\"verb\":\"%s\",\"resource\":\"%s\",\"name\":\"%s\",\"body\":%s}", verb, resource,
             name, body);
    assert_int_equal(kle_test_apiserver_admin(&srv, "POST", "/faults", rule, NULL, 0), 201);
}

static void clear_faults(void)
{
    assert_int_equal(kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0), 200);
}

typedef struct {
    const char *type;
    const char *body;
    const char *message;
} wrong_answer;

static void test_locks__wrong_kind_answers_are_never_a_free_lock(void **state)
{
    const wrong_answer cases[] = {
        {"leases", "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}",
         "get leases default/wrong: the answer is a Status (reason none: no message), not a "
         "Lease object"},
        {"leases",
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"reason\":"
         "\"NotFound\",\"message\":\"gone\",\"code\":404}",
         "get leases default/wrong: the answer is a Status (reason NotFound: gone), not a Lease "
         "object"},
        {"leases",
         "{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"wrong\"}}",
         "get leases default/wrong: the answer is a ConfigMap, not a Lease object"},
        {"leases", "{\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":\"wrong\"}}",
         "get leases default/wrong: the answer has no kind; expected a Lease object"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"other\"},\"spec\":{}}",
         "get leases default/wrong: the answer is another object (metadata.name \"other\")"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":null}",
         "lease default/wrong: spec is null or missing, not an object"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"}}",
         "lease default/wrong: spec is null or missing, not an object"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":\"free\"}",
         "lease default/wrong: spec is a JSON string, not an object"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":{\"holderIdentity\":\"z\"}}",
         "lease default/wrong: leaseDurationSeconds is missing for holder \"z\"; a held lock "
         "needs 1..2147483647"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":{\"holderIdentity\":\"z\",\"leaseDurationSeconds\":4294967297}}",
         "lease default/wrong: leaseDurationSeconds is 4294967297, not an integer in "
         "0..2147483647"},
        {"leases",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":{\"holderIdentity\":[\"z\"],\"leaseDurationSeconds\":15}}",
         "lease default/wrong: holderIdentity is [\"z\"], not a string"},
        {"configmaps",
         "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{\"name\":"
         "\"wrong\"},\"spec\":{}}",
         "get configmaps default/wrong: the answer is a Lease, not a ConfigMap object"},
        {"configmaps", "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}",
         "get configmaps default/wrong: the answer is a Status (reason none: no message), not a "
         "ConfigMap object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        answer_with("get", cases[i].type, "wrong", cases[i].body);
        kle_lock *l = new_lock(cases[i].type, "wrong", "me");
        kle_lock_result got = KLE_LOCK_RESULT_INIT;
        int rc = kle_lock_get(&got, l, NULL);
        if (rc == 0)
            fail_msg("case %zu was read as held by \"%s\"", i, kle_record_holder(&got.record));
        assert_int_equal(rc, KLE_EBADRECORD);
        assert_string_equal(kle_error_last()->message, cases[i].message);
        kle_lock_free(l);
        clear_faults();
    }

    /* A Lease with an empty spec is a Lease nobody holds (what client-go reads too). */
    answer_with("get", "leases", "wrong",
                "{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":"
                "{\"name\":\"wrong\"},\"spec\":{}}");
    kle_lock *l = new_lock("leases", "wrong", "me");
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    assert_int_equal(kle_lock_get(&got, l, NULL), 0);
    assert_int_equal(kle_record_holder_len(&got.record), 0);
    kle_lock_result_dispose(&got);
    kle_lock_free(l);
    clear_faults();

    /* An update answered with a Status is not a successful write. */
    l = new_lock("leases", "wrong-update", "me");
    kle_record r = record_of("me", 0, T0);
    assert_int_equal(kle_lock_create(l, &r, NULL), 0);
    answer_with("update", "leases", "wrong-update",
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}");
    assert_int_equal(kle_lock_update(l, &r, NULL), KLE_EBADRECORD);
    clear_faults();
    kle_record_dispose(&r);
    kle_lock_free(l);

    /* An elector never takes a lock answered with a Status, and writes nothing. */
    answer_with("get", "leases", "status-only",
                "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Success\"}");
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = new_lock("leases", "status-only", "me");
    c.lease_duration_ns = KLE_MS(2000);
    c.renew_deadline_ns = KLE_MS(1500);
    c.retry_period_ns = KLE_MS(100);
    c.callbacks.on_started_leading = never_started;
    c.callbacks.on_stopped_leading = stopped_cb;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &c), 0);
    pthread_t t;
    pthread_create(&t, NULL, run_elector, e);
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    int64_t deadline = kle_clock_monotonic_ns(NULL) + 30 * SEC;
    do {
        kle_clock_sleep(NULL, 20 * KLE_NS_PER_MS);
        kle_elector_get_stats(&st, e);
    } while (st.failed_tries < 5 && kle_clock_monotonic_ns(NULL) < deadline);
    kle_elector_stop(e);
    pthread_join(t, NULL);
    assert_true(st.failed_tries >= 5);
    assert_int_equal(st.acquisitions, 0);
    kle_elector_free(e);
    clear_faults();
    char path[256];
    json_object *obj = NULL;
    assert_int_equal(kle_client_path(path, sizeof(path), "coordination.k8s.io/v1", "leases",
                                     "default", "status-only"),
                     0);
    assert_int_equal(kle_client_get(&obj, client, path, NULL), KLE_ENOTFOUND);
}

static void started_then_wait(kle_leading *l, void *d)
{
    kle_elector_stop(kle_leading_elector(l));
    kle_leading_wait_ns(l, -1);
}

static void test_locks__elector_records_events_and_releases(void **state)
{
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = new_lock("leases", "evented", "node-ev");
    c.release_on_cancel = 1;
    c.callbacks.on_started_leading = started_then_wait;
    c.callbacks.on_stopped_leading = stopped_cb;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &c), 0);
    assert_int_equal(kle_elector_run(e), 0);
    kle_elector_free(e);

    json_object *lease = get_object("coordination.k8s.io/v1", "leases", "evented");
    assert_string_equal(at(lease, "spec", "holderIdentity", NULL), "");
    assert_string_equal(at(lease, "spec", "leaseDurationSeconds", NULL), "1");
    const char *uid = at(lease, "metadata", "uid", NULL);
    json_object *events = get_object("v1", "events", NULL);
    json_object *items = json_object_object_get(events, "items");
    int became = 0, stopped = 0;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *ev = json_object_array_get_idx(items, i);
        if (strcmp(at(ev, "involvedObject", "name", NULL), "evented") != 0)
            continue;
        assert_string_equal(at(ev, "involvedObject", "kind", NULL), "Lease");
        assert_string_equal(at(ev, "involvedObject", "apiVersion", NULL), "coordination.k8s.io/v1");
        assert_string_equal(at(ev, "involvedObject", "uid", NULL), uid);
        assert_string_equal(at(ev, "reason", NULL, NULL), "LeaderElection");
        assert_string_equal(at(ev, "type", NULL, NULL), "Normal");
        const char *msg = at(ev, "message", NULL, NULL);
        became += strcmp(msg, "node-ev became leader") == 0;
        stopped += strcmp(msg, "node-ev stopped leading") == 0;
    }
    assert_int_equal(became, 1);
    assert_int_equal(stopped, 1);
    json_object_put(events);
    json_object_put(lease);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locks__lease_lifecycle),
        cmocka_unit_test(test_locks__configmap_lifecycle),
        cmocka_unit_test(test_locks__endpoints_lifecycle),
        cmocka_unit_test(test_locks__multi_lifecycle),
        cmocka_unit_test(test_locks__configmap_update_keeps_data_labels_and_annotations),
        cmocka_unit_test(test_locks__endpoints_update_keeps_subsets),
        cmocka_unit_test(test_locks__direct_constructors),
        cmocka_unit_test(test_locks__lease_spec_and_labels),
        cmocka_unit_test(test_locks__reads_records_of_other_clients),
        cmocka_unit_test(test_locks__unreadable_record_is_never_a_free_lock),
        cmocka_unit_test(test_locks__multi_lock_states),
        cmocka_unit_test(test_locks__selection_by_name),
        cmocka_unit_test(test_locks__elector_records_events_and_releases),
        cmocka_unit_test(test_locks__holder_with_nul_is_compared_with_its_length),
        cmocka_unit_test(test_locks__identities_the_api_would_change_are_refused),
        cmocka_unit_test(test_locks__wrong_kind_answers_are_never_a_free_lock),
        cmocka_unit_test(test_locks__writes_keep_fields_they_do_not_own),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
