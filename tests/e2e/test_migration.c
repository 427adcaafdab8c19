/*
 * Rolling-upgrade simulation: three candidates on a kle-apiserver are
 * upgraded one at a time, old and new lock types side by side, through
 *   endpoints -> endpointsleases -> leases   (and the ConfigMap path),
 * while in every configuration the leader is killed (its process gone: no
 * release, no further write) and stopped (graceful, with a release). Every
 * leadership interval (from on_started_leading until the end signal) is
 * recorded on one monotonic clock; the test asserts that no two intervals
 * overlap and that leadership comes back after every kill and stop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/client.h"
#include "kle/locks.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "support/apiserver.h"
#include "support/quiet_log.h"

#define MS            KLE_NS_PER_MS
#define N_CAND        3
#define MAX_INTERVALS 256

/* Short timings so that a kill costs a few seconds: 2 s / 1.5 s / 0.3 s. */
static const int64_t LEASE_MS = 2000, RENEW_MS = 1500, RETRY_MS = 300;

typedef struct interval {
    int64_t start, end;
    char who[48];
    char phase[48];
} interval;

static struct {
    pthread_mutex_t mu;
    interval iv[MAX_INTERVALS];
    int n;
    char phase[48];
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* A lock that dies with its process: after kill, no call reaches the server. */
typedef struct killable {
    kle_lock base;
    kle_lock *inner;
    atomic_int dead;
} killable;

static int dead(killable *k)
{
    return atomic_load(&k->dead) ? kle_error_set(KLE_ECANCELED, "process killed") : 0;
}
static int k_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    killable *k = (killable *)self;
    return dead(k) ? dead(k) : kle_lock_get(out, k->inner, ctx);
}
static int k_create(kle_lock *self, const kle_record *r, const kle_lock_ctx *ctx)
{
    killable *k = (killable *)self;
    return dead(k) ? dead(k) : kle_lock_create(k->inner, r, ctx);
}
static int k_update(kle_lock *self, const kle_record *r, const kle_lock_ctx *ctx)
{
    killable *k = (killable *)self;
    return dead(k) ? dead(k) : kle_lock_update(k->inner, r, ctx);
}
static int k_event(kle_lock *self, const char *m, const kle_lock_ctx *ctx)
{
    killable *k = (killable *)self;
    return dead(k) ? dead(k) : kle_lock_record_event(k->inner, m, ctx);
}
static const char *k_identity(kle_lock *self)
{
    return kle_lock_identity(((killable *)self)->inner);
}
static const char *k_describe(kle_lock *self)
{
    return kle_lock_describe(((killable *)self)->inner);
}
static void k_free(kle_lock *self)
{
    kle_lock_free(((killable *)self)->inner);
    free(self);
}

typedef struct cand {
    int slot;
    int generation;
    char id[48];
    char type[24];
    kle_client *client;
    killable *lock;
    kle_elector *e;
    pthread_t thread;
    atomic_int quit;
    int running;
} cand;

static kle_test_apiserver srv;
static cand cands[N_CAND];
static const char *lock_name;

static void on_started(kle_leading *l, void *data)
{
    cand *c = data;
    int i;
    pthread_mutex_lock(&rec.mu);
    i = rec.n < MAX_INTERVALS ? rec.n++ : MAX_INTERVALS - 1;
    rec.iv[i].start = kle_clock_monotonic_ns(NULL);
    rec.iv[i].end = INT64_MAX;
    snprintf(rec.iv[i].who, sizeof(rec.iv[i].who), "%s", c->id);
    snprintf(rec.iv[i].phase, sizeof(rec.iv[i].phase), "%s", rec.phase);
    pthread_mutex_unlock(&rec.mu);
    kle_leading_wait_ns(l, -1);
    pthread_mutex_lock(&rec.mu);
    rec.iv[i].end = kle_clock_monotonic_ns(NULL);
    pthread_mutex_unlock(&rec.mu);
}

static void on_stopped(void *data)
{
}

static void *cand_main(void *p)
{
    cand *c = p;
    while (!atomic_load(&c->quit))
        kle_elector_run(c->e); /* After a loss, campaign again. */
    return NULL;
}

static void start_cand(cand *c, const char *type)
{
    c->generation++;
    snprintf(c->id, sizeof(c->id), "%s-%d_g%d", type, c->slot, c->generation);
    snprintf(c->type, sizeof(c->type), "%s", type);
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = srv.kubeconfig;
    if (kle_client_new_from_kubeconfig(&c->client, &co) != 0)
        fail_msg("client: %s", kle_error_last()->message);
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = lock_name;
    lo.identity = c->id;
    lo.record_events = 0;
    c->lock = calloc(1, sizeof(*c->lock));
    c->lock->base = (kle_lock){.version = 1, /* version 1: polled */
                               .get = k_get,
                               .create = k_create,
                               .update = k_update,
                               .record_event = k_event,
                               .identity = k_identity,
                               .describe = k_describe,
                               .free = k_free};
    if (kle_lock_new_by_name(&c->lock->inner, type, c->client, &lo) != 0)
        fail_msg("lock: %s", kle_error_last()->message);
    kle_elector_config ec = KLE_ELECTOR_CONFIG_INIT;
    ec.lock = &c->lock->base;
    ec.lease_duration_ns = KLE_MS(LEASE_MS);
    ec.renew_deadline_ns = KLE_MS(RENEW_MS);
    ec.retry_period_ns = KLE_MS(RETRY_MS);
    ec.release_on_cancel = 1;
    ec.callbacks.on_started_leading = on_started;
    ec.callbacks.on_stopped_leading = on_stopped;
    ec.callbacks.data = c;
    if (kle_elector_new(&c->e, &ec) != 0)
        fail_msg("elector: %s", kle_error_last()->message);
    atomic_store(&c->quit, 0);
    pthread_create(&c->thread, NULL, cand_main, c);
    c->running = 1;
}

/* Ends a candidate: killed (no release, no write) or stopped (release). */
static void end_cand(cand *c, int kill)
{
    if (kill)
        atomic_store(&c->lock->dead, 1);
    atomic_store(&c->quit, 1);
    kle_elector_stop(c->e);
    pthread_join(c->thread, NULL);
    kle_elector_free(c->e);
    kle_client_free(c->client);
    c->e = NULL;
    c->running = 0;
}

static int leader_slot(void)
{
    for (int i = 0; i < N_CAND; i++)
        if (cands[i].running && kle_elector_is_leader(cands[i].e))
            return i;
    return -1;
}

/* Waits, with a deadline, until some candidate leads; returns its slot. */
static int await_leader(const char *after)
{
    /* Bound: the lease must expire for a follower that saw it (up to one
     * retry after the event), then its next try: LD + 2 x 2.2 RP, plus
     * the calls' own time on a loaded machine. */
    int64_t deadline = kle_clock_monotonic_ns(NULL) + (LEASE_MS + 5 * RETRY_MS + 3000) * MS;
    int slot;
    while ((slot = leader_slot()) < 0 && kle_clock_monotonic_ns(NULL) < deadline)
        kle_clock_sleep(NULL, 10 * MS);
    if (slot < 0)
        fail_msg("no leader came back after %s (phase %s)", after, rec.phase);
    return slot;
}

static void set_phase(const char *types[N_CAND])
{
    pthread_mutex_lock(&rec.mu);
    snprintf(rec.phase, sizeof(rec.phase), "%s+%s+%s", types[0], types[1], types[2]);
    pthread_mutex_unlock(&rec.mu);
}

static uint64_t rng = 20261121;

static int64_t hold_ms(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return 600 + (int64_t)((rng >> 33) % 600);
}

/*
 * In the current configuration, three times: let the leader lead for a
 * while (renewing, watched by the others), then kill or stop it, restart
 * that candidate with the same lock type, and wait for a leader.
 */
static void churn(const char *types[N_CAND], int *kills, int *stops, int first_kill)
{
    for (int round = 0; round < 3; round++) {
        int kill = (round + first_kill) % 2 == 1;
        int slot = await_leader("the previous event");
        kle_clock_sleep(NULL, hold_ms() * MS); /* The scenario: a leader at work. */
        slot = await_leader("holding");
        end_cand(&cands[slot], kill);
        *kills += kill;
        *stops += !kill;
        start_cand(&cands[slot], types[slot]);
        await_leader(kill ? "a kill" : "a stop");
    }
}

static void assert_no_overlap(void)
{
    pthread_mutex_lock(&rec.mu);
    int n = rec.n;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            interval *a = &rec.iv[i], *b = &rec.iv[j];
            if (a->start < b->end && b->start < a->end)
                fail_msg("leadership overlap: %s [%lld, %lld] in %s and %s [%lld, %lld] in %s",
                         a->who, (long long)(a->start / MS), (long long)(a->end / MS), a->phase,
                         b->who, (long long)(b->start / MS), (long long)(b->end / MS), b->phase);
        }
    pthread_mutex_unlock(&rec.mu);
}

static void migrate(const char *old_type, const char *multi_type, const char *name)
{
    int kills = 0, stops = 0, configurations = 0;
    lock_name = name;
    rec.n = 0;
    const char *types[N_CAND] = {old_type, old_type, old_type};
    set_phase(types);
    for (int i = 0; i < N_CAND; i++) {
        cands[i].slot = i;
        cands[i].generation = 0;
        start_cand(&cands[i], old_type);
    }
    churn(types, &kills, &stops, 1);
    configurations++;
    /* Rolling update to the MultiLock, then to Leases, one candidate at a time. */
    const char *steps[2] = {multi_type, "leases"};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < N_CAND; i++) {
            types[i] = steps[s];
            set_phase(types);
            end_cand(&cands[i], 0); /* A rolling update stops the pod gracefully. */
            start_cand(&cands[i], types[i]);
            await_leader("an upgrade");
            churn(types, &kills, &stops, configurations % 2);
            configurations++;
        }
    for (int i = 0; i < N_CAND; i++)
        end_cand(&cands[i], 0);
    if (getenv("KLE_TEST_VERBOSE"))
        for (int i = 0; i < rec.n; i++)
            print_message("  %-28s %-40s %lld..%lld\n", rec.iv[i].who, rec.iv[i].phase,
                          (long long)(rec.iv[i].start / MS % 1000000),
                          (long long)(rec.iv[i].end / MS % 1000000));
    assert_no_overlap();
    print_message("migration %s -> %s -> leases: %d configurations, %d kills, %d stops, "
                  "%d leadership intervals, none overlapping\n",
                  old_type, multi_type, configurations, kills, stops, rec.n);
    assert_int_equal(configurations, 7);
    assert_true(rec.n >= kills + stops + 1);
}

static void test_migration__endpoints_to_leases(void **state)
{
    migrate("endpoints", "endpointsleases", "ep-migration");
}

static void test_migration__configmaps_to_leases(void **state)
{
    migrate("configmaps", "configmapsleases", "cm-migration");
}

/* After a failure mid-scenario: end whatever still runs, so the next test starts clean. */
static int end_all(void **state)
{
    for (int i = 0; i < N_CAND; i++)
        if (cands[i].running)
            end_cand(&cands[i], 1);
    return 0;
}

static int setup(void **state)
{
    quiet_log_install();
    return kle_test_apiserver_start(&srv, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    return kle_test_apiserver_stop(&srv) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_migration__endpoints_to_leases, end_all),
        cmocka_unit_test_teardown(test_migration__configmaps_to_leases, end_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
