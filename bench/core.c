/*
 * bench/core: what the election's state machine (src/election/sm.c) costs,
 * driven directly against a small in-memory object (no threads, no I/O,
 * virtual time): CPU time per renewal and per takeover, its fixed size and
 * the bytes of the strings it keeps at realistic lengths, and the
 * allocations it makes in steady state (malloc, calloc and realloc are
 * counted through the linker's --wrap). It prints figures; it fails only
 * when the steady state allocates.
 *
 *   build/<dir>/bench/core [renewals [takeovers]]   (default 1000000 and 100000)
 */
#include "election/sm.h"
#include "kle/errors.h"
#include "kle/log.h"
#include "kle/record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- counting allocations ------------------------------------------------ */

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);

static unsigned long long allocations;

void *__wrap_malloc(size_t size)
{
    allocations++;
    return __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    allocations++;
    return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    allocations++;
    return __real_realloc(p, size);
}

/* ---- the object ------------------------------------------------------------ */

/* Realistic lengths: a pod name with a ReplicaSet hash, or hostname_uuid (63 bytes). */
static const char id_a[] = "kube-controller-manager-ip-10-0-12-34_6b2d8f0e-3c1a-4e5b-9f7d-2a";
static const char id_b[] = "kube-controller-manager-ip-10-0-56-78_1f4e8a2c-7d3b-4c6a-8e5f-9b";

typedef struct object {
    int exists;
    kle_record rec;
    char holder[128];
    uint64_t rv;
    char raw[512];
    size_t raw_len;
    char rvs[24];
    int dirty; /* raw and rvs are rendered when a read needs them */
    unsigned long renders;
} object;

static void render(object *o)
{
    o->dirty = 0;
    o->renders++;
    char at[40], rt[40];
    kle_time_format(at, sizeof(at), o->rec.acquire_time_ns, 6);
    kle_time_format(rt, sizeof(rt), o->rec.renew_time_ns, 6);
    o->raw_len = (size_t)snprintf(o->raw, sizeof(o->raw),
                                  "{\"holderIdentity\":\"%s\",\"leaseDurationSeconds\":%d,"
                                  "\"acquireTime\":\"%s\",\"renewTime\":\"%s\","
                                  "\"leaderTransitions\":%d}",
                                  o->holder, o->rec.lease_duration_seconds, at, rt,
                                  o->rec.leader_transitions);
    /* A resourceVersion as large as a busy cluster's (etcd revisions). */
    snprintf(o->rvs, sizeof(o->rvs), "%" PRIu64, UINT64_C(4000000000) + o->rv);
}

static void store(object *o, const kle_record *r)
{
    size_t n = kle_record_holder_len(r);
    memcpy(o->holder, kle_record_holder(r), n);
    o->holder[n] = '\0';
    o->rec = *r;
    o->rec.holder_identity = o->holder;
    o->rec.holder_identity_len = n;
    o->rec.strategy = o->rec.preferred_holder = NULL;
    o->rec.strategy_len = o->rec.preferred_holder_len = 0;
    o->rec.renew_time_ns -= o->rec.renew_time_ns % 1000;
    o->rec.acquire_time_ns -= o->rec.acquire_time_ns % 1000;
    o->exists = 1;
    o->rv++;
    o->dirty = 1;
}

/* One elector: its machine, its clock offset, the call it is waiting for. */
typedef struct elector {
    kle_sm *sm;
    int64_t off;
    kle_sm_call call;
    int has_call;
    int64_t call_at;
    int leading; /* 1 after TERM_START, 2 after TERM_END */
    int fail;    /* Its calls time out (a leader cut off from the server). */
    uint64_t rv; /* Its client's resourceVersion: updates are conditional on it. */
} elector;

#define WALL0   (INT64_C(1767225600) * KLE_NS_PER_SEC)
#define LATENCY KLE_MS(1)

static int64_t now_of(const elector *e, int64_t t)
{
    return e->off + t;
}

static void drain(elector *e, int64_t t)
{
    kle_sm_action a;
    while (kle_sm_next(e->sm, &a)) {
        switch (a.kind) {
        case KLE_SM_CALL:
            e->call = a.call;
            e->has_call = 1;
            e->call_at = t;
            break;
        case KLE_SM_TERM_START:
            e->leading = 1;
            break;
        case KLE_SM_TERM_END:
            e->leading = 2;
            /* The work stops at once. */
            kle_sm_work_done(e->sm, now_of(e, t), WALL0 + t);
            break;
        default:
            break;
        }
    }
}

/* When e's next input is due (its call's answer or timeout, or its wake time). */
static int64_t next_of(const elector *e)
{
    int64_t at = INT64_MAX;
    if (e->has_call)
        at = e->call_at + (e->fail ? e->call.timeout : LATENCY);
    int64_t w = kle_sm_wake_at(e->sm);
    if (w != INT64_MAX && w - e->off < at)
        at = w - e->off;
    return at;
}

/* Answers e's call at time t from the object (or lets it time out). */
static void answer(elector *e, object *o, int64_t t)
{
    e->has_call = 0;
    kle_sm_call c = e->call;
    int64_t now = now_of(e, t), wall = WALL0 + t, sent = now_of(e, e->call_at);
    if (e->fail) {
        kle_sm_answer(e->sm, c.id, KLE_ETIMEOUT, sent, NULL, now, wall);
        return;
    }
    int rc = 0;
    kle_lock_result res;
    memset(&res, 0, sizeof(res));
    res.version = KLE_LOCK_RESULT_VERSION;
    switch (c.kind) {
    case KLE_SM_GET:
        if (!o->exists) {
            rc = KLE_ENOTFOUND;
            break;
        }
        if (o->dirty)
            render(o);
        res.record = o->rec;
        res.raw = o->raw;
        res.raw_len = o->raw_len;
        res.resource_version = o->rvs;
        e->rv = o->rv;
        break;
    case KLE_SM_CREATE:
        if (o->exists) {
            rc = KLE_EEXISTS;
        } else {
            store(o, &c.record);
            e->rv = o->rv;
        }
        break;
    case KLE_SM_UPDATE:
        if (e->rv != o->rv) {
            rc = KLE_ECONFLICT;
        } else {
            store(o, &c.record);
            e->rv = o->rv;
        }
        break;
    default:
        break;
    }
    kle_sm_answer(e->sm, c.id, rc, sent, rc == 0 && c.kind == KLE_SM_GET ? &res : NULL, now, wall);
}

/* One input to whichever elector is due first; returns 0 when none is. */
static int step(elector **es, int n, object *o, int64_t *t)
{
    int best = -1;
    int64_t at = INT64_MAX;
    for (int i = 0; i < n; i++) {
        int64_t x = next_of(es[i]);
        if (x < at) {
            at = x;
            best = i;
        }
    }
    if (best < 0)
        return 0;
    elector *e = es[best];
    if (at > *t)
        *t = at;
    if (e->has_call && e->call_at + (e->fail ? e->call.timeout : LATENCY) <= *t)
        answer(e, o, *t);
    else
        kle_sm_tick(e->sm, now_of(e, *t), WALL0 + *t);
    drain(e, *t);
    if (!kle_sm_running(e->sm)) {
        /* The run is over (a lost term): it campaigns again, as kle run does. */
        e->has_call = 0;
        kle_sm_start(e->sm, now_of(e, *t), WALL0 + *t);
        drain(e, *t);
    }
    return 1;
}

static kle_sm *machine(const char *id, uint64_t seed)
{
    kle_sm_config c;
    memset(&c, 0, sizeof(c));
    c.identity = id;
    c.name = "kube-system/kube-controller-manager";
    c.lease_duration = KLE_SEC(15);
    c.renew_deadline = KLE_SEC(10);
    c.retry_period = KLE_SEC(2);
    c.call_timeout = KLE_SEC(5);
    c.record_lease_seconds = 15;
    c.seed = seed;
    return kle_sm_new(&c);
}

static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void discard(kle_log_severity s, int v, const char *f, int l, const char *m, void *d)
{
    (void)s, (void)v, (void)f, (void)l, (void)m, (void)d;
}

int main(int argc, char **argv)
{
    long renewals = argc > 1 ? atol(argv[1]) : 1000000;
    long takeovers = argc > 2 ? atol(argv[2]) : 100000;
    int rc = 0;
    kle_log_set_handler(discard, NULL);
    kle_log_set_verbosity(-1);

    /* ---- renewals: one leader ---- */
    object o;
    memset(&o, 0, sizeof(o));
    o.rec.version = KLE_RECORD_VERSION;
    elector a = {machine(id_a, 1), KLE_SEC(100), {0}, 0, 0, 0, 0, 0};
    elector b = {machine(id_b, 2), KLE_SEC(300), {0}, 0, 0, 0, 0, 0};
    elector *one[] = {&a}, *two[] = {&a, &b};
    int64_t t = 0;
    kle_sm_start(a.sm, now_of(&a, t), WALL0 + t);
    drain(&a, t);
    /* Win, then warm up: the buffers reach their sizes. */
    for (int i = 0; i < 400; i++)
        step(one, 1, &o, &t);
    if (a.leading != 1) {
        fprintf(stderr, "bench/core: the elector did not lead\n");
        rc = 2;
        goto out;
    }
    size_t strings = kle_sm_string_bytes(a.sm);
    kle_sm_stats st0, st1;
    kle_sm_get_stats(a.sm, &st0);
    unsigned long long before = allocations;
    double c0 = cpu();
    /* A renewal is a tick (the round starts, the update is sent) and its answer. */
    for (long i = 0; i < 2 * renewals; i++)
        step(one, 1, &o, &t);
    double c1 = cpu();
    unsigned long long steady = allocations - before;
    kle_sm_get_stats(a.sm, &st1);
    uint64_t renewed = st1.tries - st0.tries;
    if (a.leading != 1 || renewed == 0) {
        fprintf(stderr, "bench/core: the leader lost its lease while renewing\n");
        rc = 2;
        goto out;
    }

    /* ---- takeovers: the leader cut off in turn, the other takes over ---- */
    kle_sm_start(b.sm, now_of(&b, t), WALL0 + t);
    drain(&b, t);
    for (int i = 0; i < 100; i++)
        step(two, 2, &o, &t);
    elector *lead = &a, *follow = &b;
    long done = 0;
    uint64_t inputs = 0;
    unsigned long long tk_before = allocations;
    double c2 = cpu();
    while (done < takeovers) {
        lead->fail = 1;
        follow->leading = 0;
        int64_t limit = t + KLE_SEC(120);
        while (follow->leading != 1 && t < limit && step(two, 2, &o, &t))
            inputs++;
        if (follow->leading != 1) {
            fprintf(stderr, "bench/core: no takeover within two minutes\n");
            rc = 2;
            goto out;
        }
        lead->fail = 0;
        elector *x = lead;
        lead = follow;
        follow = x;
        done++;
    }
    double c3 = cpu();
    unsigned long long tk_allocs = allocations - tk_before;
    unsigned long renders = o.renders;
    /* What the object's rendering of its raw bytes costs (not the machine's). */
    double c4 = cpu();
    for (int i = 0; i < 100000; i++) {
        o.rec.renew_time_ns += KLE_MS(1);
        render(&o);
    }
    double per_render = (cpu() - c4) / 100000;

    printf("bench/core: the election's state machine (src/election/sm.c), driven directly\n");
    printf("  timings 15s/10s/2s; identities of %zu bytes, a raw record of %zu bytes, "
           "resourceVersions of %zu bytes\n",
           strlen(id_a), o.raw_len, strlen(o.rvs));
    printf("  renewal:  %.0f ns CPU each (%" PRIu64 " renewals: a tick and an answer each; "
           "%.2f s)\n",
           (c1 - c0) * 1e9 / (double)renewed, renewed, c1 - c0);
    double model = per_render * (double)renders / (double)takeovers;
    printf("  takeover: %.0f ns CPU each, both machines (%ld takeovers, %.1f inputs each: the "
           "leader's failing renewals to its deadline, the follower's polls until the lease "
           "expires, its read and its write; %.2f s), of which the object's rendering of the "
           "raw bytes for reads: %.0f ns\n",
           (c3 - c2) * 1e9 / (double)takeovers, takeovers, (double)inputs / (double)takeovers,
           c3 - c2, model * 1e9);
    printf("  fixed size: %zu bytes per lock (kle_sm_fixed_size)\n", kle_sm_fixed_size());
    printf("  strings kept: %zu bytes per lock (kle_sm_string_bytes: identities, raw record, "
           "resourceVersions, at the lengths above)\n",
           strings);
    printf("  allocations in steady state: %llu over %" PRIu64 " renewals\n", steady, renewed);
    printf("  allocations over the takeovers: %llu (%.2f per takeover)\n", tk_allocs,
           (double)tk_allocs / (double)takeovers);
    if (steady)
        rc = 1;
out:
    kle_sm_free(a.sm);
    kle_sm_free(b.sm);
    return rc;
}
