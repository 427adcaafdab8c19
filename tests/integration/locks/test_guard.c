/*
 * The skipped-migration-phase guard's rules (docs/migration.md, "The
 * skipped-phase guard"), driven call by call against a kle-apiserver this
 * test starts, and the one deadline of a lock call under a slow server:
 *  - the re-check after a winning write: whichever side did not see the
 *    other leads; both see each other; the yielding side's release fails;
 *  - a refusing lock refuses on its own record too, and sends nothing on
 *    update; a leader's renewals cost no extra read;
 *  - liveness by local observation: stale, far-future and hand-edited
 *    records, a deleted object, a MultiLock leader's two records;
 *  - a lock call (guard, MultiLock) returns within its timeout.
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
#include <time.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/rest.h"
#include "kle/locks.h"
#include "support/apiserver.h"
#include "support/lock_calls.h"
#include "support/quiet_log.h"

#define SEC KLE_NS_PER_SEC
#define MS  (SEC / 1000)

static kle_test_apiserver srv;
static kle_client *client;

static int group_setup(void **state)
{
    (void)state;
    quiet_log_install();
    if (kle_test_apiserver_with_client(&srv, &client) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    kle_client_free(client);
    return kle_test_apiserver_stop(&srv) == 0 ? 0 : -1;
}

static int64_t mono(void)
{
    return kle_clock_monotonic_ns(kle_clock_real());
}

static kle_lock *new_lock(const char *type, const char *name, const char *identity)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = name;
    o.identity = identity;
    o.record_events = 0;
    kle_lock *lock = NULL;
    if (kle_lock_new_by_name(&lock, type, client, &o) != 0)
        fail_msg("%s lock %s: %s", type, name, kle_error_last()->message);
    return lock;
}

/* A record of @p holder renewed now, as an elector writes it. */
static kle_record rec(const char *holder, int transitions)
{
    kle_record r = KLE_RECORD_INIT;
    int64_t now = kle_clock_wall_ns(kle_clock_real());
    kle_record_set_holder(&r, holder, strlen(holder));
    /* Holder "": a release, as every release writes it (a 1 s lease). */
    r.lease_duration_seconds = *holder ? 15 : 1;
    r.acquire_time_ns = now;
    r.renew_time_ns = now;
    r.leader_transitions = transitions;
    return r;
}

static int get_rc(kle_lock *l)
{
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&got, l, NULL);
    kle_lock_result_dispose(&got);
    return rc;
}

static int create_rc(kle_lock *l, const char *holder)
{
    kle_record r = rec(holder, 0);
    int rc = kle_lock_create(l, &r, NULL);
    kle_record_dispose(&r);
    return rc;
}

static int update_rc(kle_lock *l, const char *holder, int transitions)
{
    kle_record r = rec(holder, transitions);
    int rc = kle_lock_update(l, &r, NULL);
    kle_record_dispose(&r);
    return rc;
}

/* The holder of the @p type record of @p name, read with the guard off ("-" when missing). */
static void holder_of(char *out, size_t size, const char *type, const char *name)
{
    kle_lock *l = new_lock(type, name, "observer");
    assert_int_equal(kle_lock_set_migration_guard(l, 0), 0);
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&got, l, NULL);
    if (rc == KLE_ENOTFOUND)
        snprintf(out, size, "-");
    else if (rc == 0)
        snprintf(out, size, "%s", kle_record_holder(&got.record));
    else
        fail_msg("get %s %s: %s", type, name, kle_error_last()->message);
    kle_lock_result_dispose(&got);
    kle_lock_free(l);
}

static void assert_holder(const char *type, const char *name, const char *want)
{
    char h[256];
    holder_of(h, sizeof(h), type, name);
    if (strcmp(h, want) != 0)
        fail_msg("%s %s: holder \"%s\", expected \"%s\"", type, name, h, want);
}

static void assert_error_has(const char *want)
{
    const char *m = kle_error_last()->message;
    if (!strstr(m, want))
        fail_msg("error \"%s\" does not contain \"%s\"", m, want);
}

/* Requests the server answered for resource and verb, whatever the code. */
static long count(const char *resource, const char *verb)
{
    static char buf[1 << 16];
    assert_int_equal(kle_test_apiserver_admin(&srv, "GET", "/counters", NULL, buf, sizeof(buf)),
                     200);
    json_object *c = json_tokener_parse(buf), *reqs = NULL;
    assert_non_null(c);
    assert_true(json_object_object_get_ex(c, "requests", &reqs));
    long n = 0;
    for (size_t i = 0; i < json_object_array_length(reqs); i++) {
        json_object *r = json_object_array_get_idx(reqs, i), *v;
        if (json_object_object_get_ex(r, "resource", &v) &&
            strcmp(json_object_get_string(v), resource) == 0 &&
            json_object_object_get_ex(r, "verb", &v) &&
            strcmp(json_object_get_string(v), verb) == 0 &&
            json_object_object_get_ex(r, "count", &v))
            n += (long)json_object_get_int64(v);
    }
    json_object_put(c);
    return n;
}

static void add_fault(const char *json)
{
    assert_int_equal(kle_test_apiserver_admin(&srv, "POST", "/faults", json, NULL, 0), 201);
}

static void clear_faults(void)
{
    assert_int_equal(kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0), 200);
}

/* An Endpoints or ConfigMap object holding a hand-written record. */
static void put_annotation(const char *resource, const char *name, const char *holder,
                           const char *renew, long long duration)
{
    char path[256], record[512];
    snprintf(record, sizeof(record),
             "{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%lld,\"acquireTime\":\"%s\","
             "\"renewTime\":\"%s\",\"leaderTransitions\":0}",
             holder, duration, renew, renew);
    json_object *obj = json_object_new_object(), *meta = json_object_new_object(),
                *ann = json_object_new_object();
    json_object_object_add(ann, KLE_LEADER_ANNOTATION, json_object_new_string(record));
    json_object_object_add(meta, "name", json_object_new_string(name));
    json_object_object_add(meta, "annotations", ann);
    json_object_object_add(obj, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(
        obj, "kind",
        json_object_new_string(strcmp(resource, "endpoints") == 0 ? "Endpoints" : "ConfigMap"));
    json_object_object_add(obj, "metadata", meta);
    assert_int_equal(kle_client_path(path, sizeof(path), "v1", resource, "default", NULL), 0);
    if (kle_client_create(NULL, client, path, obj, NULL) != 0)
        fail_msg("POST %s: %s", path, kle_error_last()->message);
    json_object_put(obj);
}

/* A Lease holding a hand-written record (renew: a MicroTime). */
static void put_lease(const char *name, const char *holder, const char *renew, long long duration)
{
    char path[256], text[768];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\",\"metadata\":{\"name\":"
             "\"%s\"},\"spec\":{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%lld,"
             "\"acquireTime\":\"%s\",\"renewTime\":\"%s\",\"leaseTransitions\":0}}",
             name, holder, duration, renew, renew);
    json_object *obj = json_tokener_parse(text);
    assert_non_null(obj);
    assert_int_equal(
        kle_client_path(path, sizeof(path), "coordination.k8s.io/v1", "leases", "default", NULL),
        0);
    if (kle_client_create(NULL, client, path, obj, NULL) != 0)
        fail_msg("POST %s: %s", path, kle_error_last()->message);
    json_object_put(obj);
}

static void now_text(char *buf, size_t size, int64_t offset_ns, int digits)
{
    assert_true(
        kle_time_format(buf, size, kle_clock_wall_ns(kle_clock_real()) + offset_ns, digits) >= 0);
}

/* ---- the re-check after a winning write ---------------------------------- */

/*
 * The annotation replica's write and re-check come first: it sees no Lease
 * and leads; the Lease replica's re-check sees the live annotation record,
 * keeps its Lease unrenewed and refuses, on its own record too, until the
 * annotation record is released; then it leads on its next try. The
 * leader's renewals cost no extra read.
 */
static void only_the_lease_sees(const char *type, const char *name)
{
    kle_lock *a = new_lock(type, name, "old-1");
    kle_lock *l = new_lock("leases", name, "new-1");
    const char *other = strcmp(type, "endpoints") == 0 ? "endpoints" : "configmaps";
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    assert_int_equal(create_rc(a, "old-1"), 0);
    assert_int_equal(create_rc(l, "new-1"), KLE_ESTATE);
    assert_error_has("wrote the Lease, then found that");
    assert_error_has("held by \"old-1\"");
    assert_error_has("skipped migration phase");
    assert_holder("leases", name, "new-1"); /* kept, unrenewed */

    /* Refusing: get re-checks even its own record; update sends nothing. */
    assert_int_equal(get_rc(l), KLE_ESTATE);
    long puts = count("leases", "update");
    assert_int_equal(update_rc(l, "new-1", 0), KLE_ESTATE);
    assert_int_equal(count("leases", "update"), puts);

    /* The annotation leader renews without reading the Lease. */
    long lease_gets = count("leases", "get");
    for (int i = 0; i < 3; i++)
        assert_int_equal(update_rc(a, "old-1", 0), 0);
    assert_int_equal(count("leases", "get"), lease_gets);

    /* Released: the Lease replica leads on its next try. */
    assert_int_equal(update_rc(a, "", 0), 0);
    assert_int_equal(get_rc(l), 0);
    assert_int_equal(update_rc(l, "new-1", 0), 0);
    assert_holder(other, name, "");
    kle_lock_free(a);
    kle_lock_free(l);
}

static void test_guard__endpoints_leads_when_only_the_lease_sees_it(void **state)
{
    (void)state;
    only_the_lease_sees("endpoints", "one-sees-ep");
}

/* A Lease lock that found neither annotation object re-checks both. */
static void test_guard__configmap_leads_when_only_the_lease_sees_it(void **state)
{
    (void)state;
    only_the_lease_sees("configmaps", "one-sees-cm");
}

/*
 * The Lease's write and re-check come first: it leads; the annotation
 * replica's re-check sees the live Lease, gives its record back (released)
 * and refuses, on update without sending it.
 */
static void test_guard__lease_leads_when_only_the_annotation_sees_it(void **state)
{
    (void)state;
    kle_lock *a = new_lock("endpoints", "one-sees-l", "old-1");
    kle_lock *l = new_lock("leases", "one-sees-l", "new-1");
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    assert_int_equal(create_rc(l, "new-1"), 0);
    assert_int_equal(create_rc(a, "old-1"), KLE_ESTATE);
    assert_error_has("took the record, then found that the Lease");
    assert_error_has("gave the Endpoints record back, released");
    assert_holder("endpoints", "one-sees-l", "");
    assert_int_equal(get_rc(a), KLE_ESTATE);
    long puts = count("endpoints", "update");
    assert_int_equal(update_rc(a, "old-1", 1), KLE_ESTATE);
    assert_int_equal(count("endpoints", "update"), puts);

    long ep_gets = count("endpoints", "get"), cm_gets = count("configmaps", "get");
    for (int i = 0; i < 3; i++)
        assert_int_equal(update_rc(l, "new-1", 0), 0);
    assert_int_equal(count("endpoints", "get"), ep_gets);
    assert_int_equal(count("configmaps", "get"), cm_gets);
    kle_lock_free(a);
    kle_lock_free(l);
}

typedef struct racer {
    kle_lock *lock;
    const char *holder;
    int rc;
    char msg[1024];
} racer;

static void *race_create(void *p)
{
    racer *r = p;
    r->rc = create_rc(r->lock, r->holder);
    snprintf(r->msg, sizeof(r->msg), "%s", kle_error_last()->message);
    return NULL;
}

/*
 * Both writes land before either re-check reads (the reads are slowed by
 * 1.5 s, and so is the annotation replica's release, so that the Lease's
 * read sees its record live): both see each other. Neither leads; the
 * annotation record is given back, and the Lease leads on its next try.
 */
static void test_guard__both_see_each_other_and_the_lease_leads_next(void **state)
{
    (void)state;
    kle_lock *a = new_lock("endpoints", "both-see", "old-1");
    kle_lock *l = new_lock("leases", "both-see", "new-1");
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    add_fault("{\"verb\":\"get\",\"resource\":\"leases\",\"latencyMs\":1500}");
    add_fault("{\"verb\":\"get\",\"resource\":\"endpoints\",\"latencyMs\":1500}");
    add_fault("{\"verb\":\"update\",\"resource\":\"endpoints\",\"latencyMs\":1500}");
    racer ra = {a, "old-1", 0, ""}, rl = {l, "new-1", 0, ""};
    pthread_t ta, tl;
    assert_int_equal(pthread_create(&ta, NULL, race_create, &ra), 0);
    assert_int_equal(pthread_create(&tl, NULL, race_create, &rl), 0);
    pthread_join(ta, NULL);
    pthread_join(tl, NULL);
    clear_faults();
    if (ra.rc != KLE_ESTATE || rl.rc != KLE_ESTATE)
        fail_msg("endpoints: %d (%s); leases: %d (%s)", ra.rc, ra.msg, rl.rc, rl.msg);
    assert_non_null(strstr(ra.msg, "gave the Endpoints record back"));
    assert_non_null(strstr(rl.msg, "held by \"old-1\""));
    assert_holder("endpoints", "both-see", "");
    assert_holder("leases", "both-see", "new-1");
    /* Neither steps down for good: the Lease leads on its next try. */
    assert_int_equal(get_rc(l), 0);
    assert_int_equal(update_rc(l, "new-1", 0), 0);
    assert_int_equal(get_rc(a), KLE_ESTATE);
    kle_lock_free(a);
    kle_lock_free(l);
}

/*
 * The annotation replica cannot give its record back (503): its record
 * stays, naming it. It still refuses, also when get reads that record of
 * its own, until the Lease is released; then it leads.
 */
static void test_guard__a_failed_release_does_not_let_the_yielded_side_renew(void **state)
{
    (void)state;
    kle_lock *a = new_lock("endpoints", "no-release", "old-1");
    kle_lock *l = new_lock("leases", "no-release", "new-1");
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    assert_int_equal(create_rc(l, "new-1"), 0);
    add_fault("{\"verb\":\"update\",\"resource\":\"endpoints\",\"error\":503}");
    assert_int_equal(create_rc(a, "old-1"), KLE_ESTATE);
    clear_faults();
    assert_error_has("could not give the Endpoints record back");
    assert_holder("endpoints", "no-release", "old-1");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(get_rc(a), KLE_ESTATE); /* its own record, but refusing */
        assert_error_has("held by \"new-1\"");
        assert_int_equal(update_rc(a, "old-1", 0), KLE_ESTATE);
    }
    assert_int_equal(update_rc(l, "", 0), 0); /* the Lease leader releases */
    assert_int_equal(get_rc(a), 0);
    assert_int_equal(update_rc(a, "old-1", 0), 0);
    assert_holder("endpoints", "no-release", "old-1");
    kle_lock_free(a);
    kle_lock_free(l);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/*
 * Renewals need no re-check while they are answered within the lease of a
 * re-checked write, counted from when its record bytes were first sent
 * (others date a record by when its bytes last changed): writes of the
 * same bytes 1.2 s after the first, with a 1 s lease, are re-checked.
 */
static void test_guard__renewals_of_the_same_bytes_are_dated_by_the_first(void **state)
{
    (void)state;
    kle_lock *a = new_lock("endpoints", "same-bytes", "old-1");
    kle_record r = rec("old-1", 0);
    r.lease_duration_seconds = 1;
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    long g0 = count("leases", "get");
    assert_int_equal(kle_lock_create(a, &r, NULL), 0);
    long g1 = count("leases", "get");
    assert_int_equal(g1, g0 + 1); /* the re-check */
    sleep_ms(600);
    assert_int_equal(kle_lock_update(a, &r, NULL), 0);
    long g2 = count("leases", "get");
    sleep_ms(600);
    assert_int_equal(kle_lock_update(a, &r, NULL), 0);
    long g3 = count("leases", "get");
    assert_int_equal(g3, g2 + 1);
    /* New bytes (15 s lease): re-checked, as the lease of the old ones is
     * over; then renewals within it need no read. */
    kle_record r2 = rec("old-1", 0);
    r2.renew_time_ns += 2 * SEC;
    assert_int_equal(kle_lock_update(a, &r2, NULL), 0);
    assert_int_equal(count("leases", "get"), g3 + 1);
    r2.renew_time_ns += 2 * SEC;
    assert_int_equal(kle_lock_update(a, &r2, NULL), 0);
    assert_int_equal(kle_lock_update(a, &r2, NULL), 0);
    assert_int_equal(count("leases", "get"), g3 + 1);
    kle_record_dispose(&r);
    kle_record_dispose(&r2);
    kle_lock_free(a);
}

/* ---- liveness ---------------------------------------------------------- */

/* A record left over from long ago (renewed 2 h ago) does not block at all. */
static void test_guard__a_record_from_long_ago_does_not_block(void **state)
{
    (void)state;
    char renew[64];
    now_text(renew, sizeof(renew), -7200 * SEC, 0);
    put_annotation("endpoints", "long-ago", "gone-1", renew, 15);
    kle_lock *l = new_lock("leases", "long-ago", "new-1");
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    assert_int_equal(create_rc(l, "new-1"), 0);
    kle_lock_free(l);
}

/*
 * A Lease whose holder was emptied by hand, its lease kept (15 s), is no
 * release: the Lease family's leader may still work (its elector does not
 * take such a record for free either), so an Endpoints replica's check
 * refuses; a release (holder "", 1 s) does not block.
 */
static void test_guard__a_hand_emptied_holder_still_blocks(void **state)
{
    (void)state;
    char renew[64];
    now_text(renew, sizeof(renew), 0, 6);
    put_lease("emptied", "", renew, 15);
    kle_lock *l = new_lock("endpoints", "emptied", "new-1");
    assert_int_equal(get_rc(l), KLE_ESTATE);
    kle_lock_free(l);
    put_lease("released", "", renew, 1);
    l = new_lock("endpoints", "released", "new-1");
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    kle_lock_free(l);
}

/*
 * Records that never change block for one lease duration from when this
 * replica first saw them, and no longer: one renewed just now, one dated far
 * in the future. The wait is measured from before the first read.
 */
static void blocks_for_one_lease(const char *name, const char *renew)
{
    put_annotation("endpoints", name, "stuck-1", renew, 1);
    kle_lock *l = new_lock("leases", name, "new-1");
    int64_t t0 = mono();
    assert_int_equal(get_rc(l), KLE_ESTATE);
    int rc;
    while ((rc = get_rc(l)) == KLE_ESTATE && mono() - t0 < 20 * SEC) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    int64_t waited = mono() - t0;
    if (rc != KLE_ENOTFOUND)
        fail_msg("%s: still %d after %.1f s: %s", name, rc, (double)waited / SEC,
                 kle_error_last()->message);
    assert_true(waited >= 1 * SEC);
    assert_int_equal(create_rc(l, "new-1"), 0);
    kle_lock_free(l);
}

static void test_guard__an_unchanged_record_blocks_for_one_lease_duration(void **state)
{
    (void)state;
    char renew[64];
    now_text(renew, sizeof(renew), 0, 0);
    blocks_for_one_lease("unchanged", renew);
}

static void test_guard__a_record_from_the_future_blocks_for_one_lease_duration(void **state)
{
    (void)state;
    blocks_for_one_lease("future", "2262-04-11T23:47:16Z");
}

/* The limits of a record's times with leaseDurationSeconds 2147483647 (UBSan). */
static void test_guard__times_at_the_limits_do_not_overflow(void **state)
{
    (void)state;
    /* The earliest time a record can carry, with the longest lease: stale. */
    put_annotation("endpoints", "limit-past", "stuck-1", "1677-09-21T00:12:44Z", 2147483647LL);
    kle_lock *l = new_lock("leases", "limit-past", "new-1");
    assert_int_equal(get_rc(l), KLE_ENOTFOUND);
    assert_int_equal(create_rc(l, "new-1"), 0);
    kle_lock_free(l);
    /* The latest, with the longest lease: live (for as long as it says). */
    put_annotation("endpoints", "limit-future", "stuck-1", "2262-04-11T23:47:16Z", 2147483647LL);
    l = new_lock("leases", "limit-future", "new-1");
    assert_int_equal(get_rc(l), KLE_ESTATE);
    kle_lock_free(l);
    /* The same in a Lease, read by an annotation lock. */
    put_lease("limit-lease", "stuck-1", "2262-04-11T23:47:16.854775Z", 2147483647LL);
    kle_lock *a = new_lock("endpoints", "limit-lease", "old-1");
    assert_int_equal(get_rc(a), KLE_ESTATE);
    kle_lock_free(a);
    put_lease("limit-lease-past", "stuck-1", "1677-09-21T00:12:43.145225Z", 2147483647LL);
    a = new_lock("endpoints", "limit-lease-past", "old-1");
    assert_int_equal(get_rc(a), KLE_ENOTFOUND);
    kle_lock_free(a);
}

/* A deleted object does not end a live record seen in it: it expires first. */
static void test_guard__a_deletion_does_not_clear_a_live_record(void **state)
{
    (void)state;
    char renew[64], path[256];
    now_text(renew, sizeof(renew), 0, 0);
    put_annotation("endpoints", "deleted", "old-1", renew, 15);
    kle_lock *l = new_lock("leases", "deleted", "new-1");
    assert_int_equal(get_rc(l), KLE_ESTATE);
    assert_int_equal(kle_client_path(path, sizeof(path), "v1", "endpoints", "default", "deleted"),
                     0);
    assert_int_equal(kle_client_delete(NULL, client, path, NULL), 0);
    assert_int_equal(get_rc(l), KLE_ESTATE);
    assert_error_has("held by \"old-1\"");
    kle_lock_free(l);
}

/*
 * A MultiLock leader's two records name the same holder. A Lease replica
 * that takes over its Lease (after the migration phase) re-checks and finds
 * the Endpoints record of that same holder, still live by its observation:
 * not a skipped phase (it names the holder whose record we replaced).
 * Another holder there is.
 */
static void test_guard__the_twin_of_the_replaced_record_agrees(void **state)
{
    (void)state;
    char renew[64], micro[64];
    now_text(renew, sizeof(renew), 0, 0);
    now_text(micro, sizeof(micro), 0, 6);
    put_annotation("endpoints", "twin", "multi-1", renew, 15);
    put_lease("twin", "multi-1", micro, 15);
    kle_lock *l = new_lock("leases", "twin", "new-1");
    assert_int_equal(get_rc(l), 0);
    assert_int_equal(update_rc(l, "new-1", 1), 0);

    put_annotation("endpoints", "twin-other", "other-1", renew, 15);
    put_lease("twin-other", "multi-1", micro, 15);
    kle_lock *l2 = new_lock("leases", "twin-other", "new-1");
    assert_int_equal(get_rc(l2), KLE_ESTATE);
    assert_error_has("held by \"other-1\"");
    kle_lock_free(l);
    kle_lock_free(l2);
}

/* ---- one deadline for the whole call ----------------------------------- */

/*
 * @p call under faults that make its first request take 1.8 s and leave
 * the next one unanswered, with a 2 s timeout: it returns KLE_ETIMEOUT
 * within its budget (plus 1 s for a busy machine). Each request used to
 * get the whole timeout again (3.8 s here).
 */
static void within_budget(const char *what, int (*call)(kle_lock *, const kle_lock_ctx *),
                          kle_lock *lock, const char *first, const char *later)
{
    char rule[256];
    snprintf(rule, sizeof(rule), "{%s,\"latencyMs\":1800,\"count\":1}", first);
    add_fault(rule);
    snprintf(rule, sizeof(rule), "{%s,\"blackhole\":true}", later);
    add_fault(rule);
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    ctx.timeout_ns = 2 * SEC;
    int64_t t0 = mono();
    int rc = call(lock, &ctx);
    int64_t took = mono() - t0;
    clear_faults();
    if (rc != KLE_ETIMEOUT)
        fail_msg("%s: %d (%s), expected KLE_ETIMEOUT", what, rc, kle_error_last()->message);
    if (took > ctx.timeout_ns + SEC)
        fail_msg("%s took %.2f s with a %.1f s timeout", what, (double)took / SEC,
                 (double)ctx.timeout_ns / SEC);
}

static int call_get(kle_lock *l, const kle_lock_ctx *ctx)
{
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&got, l, ctx);
    kle_lock_result_dispose(&got);
    return rc;
}

static const char *budget_holder;

static int call_create(kle_lock *l, const kle_lock_ctx *ctx)
{
    kle_record r = rec(budget_holder, 0);
    int rc = kle_lock_create(l, &r, ctx);
    kle_record_dispose(&r);
    return rc;
}

static int call_update(kle_lock *l, const kle_lock_ctx *ctx)
{
    kle_record r = rec(budget_holder, 0);
    int rc = kle_lock_update(l, &r, ctx);
    kle_record_dispose(&r);
    return rc;
}

static void test_guard__a_lock_call_returns_within_its_timeout(void **state)
{
    (void)state;
    /* get: its own GET, then the guard's. */
    kle_lock *l = new_lock("leases", "budget", "new-1");
    within_budget("get (guard)", call_get, l,
                  "\"verb\":\"get\",\"resource\":\"leases\",\"name\":\"budget\"",
                  "\"verb\":\"get\",\"resource\":\"endpoints\"");
    /* create: the write, then the re-check. */
    budget_holder = "new-1";
    within_budget("create (re-check)", call_create, l,
                  "\"verb\":\"create\",\"resource\":\"leases\"",
                  "\"verb\":\"get\",\"resource\":\"endpoints\"");
    kle_lock_free(l);

    /* MultiLock: the primary, then the secondary. */
    kle_lock *m = new_lock("endpointsleases", "budget-multi", "multi-1");
    assert_int_equal(get_rc(m), KLE_ENOTFOUND);
    assert_int_equal(create_rc(m, "multi-1"), 0);
    assert_int_equal(get_rc(m), 0);
    within_budget("multi get", call_get, m, "\"verb\":\"get\",\"resource\":\"endpoints\"",
                  "\"verb\":\"get\",\"resource\":\"leases\"");
    assert_int_equal(get_rc(m), 0);
    budget_holder = "multi-1";
    within_budget("multi update", call_update, m, "\"verb\":\"update\",\"resource\":\"endpoints\"",
                  "\"verb\":\"update\",\"resource\":\"leases\"");
    kle_lock_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard__endpoints_leads_when_only_the_lease_sees_it),
        cmocka_unit_test(test_guard__configmap_leads_when_only_the_lease_sees_it),
        cmocka_unit_test(test_guard__lease_leads_when_only_the_annotation_sees_it),
        cmocka_unit_test(test_guard__both_see_each_other_and_the_lease_leads_next),
        cmocka_unit_test(test_guard__a_failed_release_does_not_let_the_yielded_side_renew),
        cmocka_unit_test(test_guard__renewals_of_the_same_bytes_are_dated_by_the_first),
        cmocka_unit_test(test_guard__a_record_from_long_ago_does_not_block),
        cmocka_unit_test(test_guard__a_hand_emptied_holder_still_blocks),
        cmocka_unit_test(test_guard__an_unchanged_record_blocks_for_one_lease_duration),
        cmocka_unit_test(test_guard__a_record_from_the_future_blocks_for_one_lease_duration),
        cmocka_unit_test(test_guard__times_at_the_limits_do_not_overflow),
        cmocka_unit_test(test_guard__a_deletion_does_not_clear_a_live_record),
        cmocka_unit_test(test_guard__the_twin_of_the_replaced_record_agrees),
        cmocka_unit_test(test_guard__a_lock_call_returns_within_its_timeout),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
