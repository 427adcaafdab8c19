/*
 * bench/async: N concurrent lock calls on Leases over one client, driven
 * asynchronously on one loop and one thread (or, for comparison, by N
 * threads with the synchronous calls), against a kle-apiserver this
 * program starts (with KLE_TEST_HTTP=2 behind an nghttpx HTTP/2 front).
 * Prints figures; never fails on a time.
 *
 *   async_bench [-n N,...] [-t SECONDS] [-m async,sync]
 *
 * Each of N Lease locks (the migration guard off: one request per call)
 * repeats either get then update (a slow-path renewal: two requests) or
 * update alone (a fast-path renewal, what a leader sends every retry
 * period). For each: requests per second, and CPU per 1,000 requests of
 * this process (user + system, the client) and of the server processes
 * (kle-apiserver, and nghttpx when present), over the measured window.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/kle.h"
#include "kle/locks.h"
#include "kle/sys/lock.h"
#include "kle/sys/loop.h"
#include "kube/kube.h"
#include "support/apiserver.h"

#define SEC KLE_NS_PER_SEC

static kle_test_apiserver srv;
static kle_client *client;

static int64_t mono(void)
{
    return kle_clock_monotonic_ns(NULL);
}

static double cpu_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process, in seconds; 0 when it cannot be read. */
static double cpu_of(pid_t pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_server(void)
{
    return cpu_of(srv.pid) + cpu_of(srv.front.pid);
}

static kle_record record_of(const char *holder)
{
    kle_record r = KLE_RECORD_INIT;
    int64_t now = kle_clock_wall_ns(NULL);
    kle_record_set_holder(&r, holder, strlen(holder));
    r.lease_duration_seconds = 15;
    r.acquire_time_ns = now;
    r.renew_time_ns = now;
    return r;
}

static kle_lock *lease(int i)
{
    char name[64];
    snprintf(name, sizeof(name), "bench-%04d", i);
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.name = name;
    o.identity = "bench";
    o.record_events = 0;
    kle_lock *l = NULL;
    if (kle_lease_lock_new(&l, client, &o) != 0) {
        fprintf(stderr, "lock: %s\n", kle_error_last()->message);
        exit(1);
    }
    kle_lock_set_migration_guard(l, 0);
    /* The object exists and this lock has read it: updates may follow. */
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&got, l, NULL);
    kle_lock_result_dispose(&got);
    if (rc == KLE_ENOTFOUND) {
        kle_record r = record_of("bench");
        rc = kle_lock_create(l, &r, NULL);
        kle_record_dispose(&r);
    }
    if (rc != 0) {
        fprintf(stderr, "lease %s: %s\n", name, kle_error_last()->message);
        exit(1);
    }
    return l;
}

/* ---- asynchronous: N locks on one loop ---- */

typedef struct slot {
    kle_lock *lock;
    kle_lock_call call;
    kle_lock_result result;
    kle_record record;
    int get_next; /* the next call is a get */
    int busy;
} slot;

typedef struct run {
    kle_loop *loop;
    slot *slots;
    int n;
    int with_get;
    int64_t until;
    long requests;
    long failures;
    long conflicts;
    char error[256];
} run;

static run *R;

static void next_call(slot *s);

static void on_done(kle_lock_call *call, int rc, void *data)
{
    slot *s = data;
    s->busy = 0;
    R->requests++;
    R->conflicts += rc == KLE_ECONFLICT;
    if (rc && rc != KLE_ECONFLICT) {
        R->failures++;
        snprintf(R->error, sizeof(R->error), "%s", kle_error_last()->message);
    }
    kle_lock_result_dispose(&s->result);
    if (mono() < R->until)
        next_call(s);
}

static void next_call(slot *s)
{
    memset(&s->call, 0, sizeof(s->call));
    s->call.version = KLE_LOCK_CALL_VERSION;
    s->call.timeout_ns = 10 * SEC;
    s->call.done = on_done;
    s->call.data = s;
    if (R->with_get && s->get_next) {
        s->call.kind = KLE_LOCK_CALL_GET;
        kle_lock_result_init(&s->result, KLE_LOCK_RESULT_VERSION);
        s->call.result = &s->result;
    } else {
        s->record.renew_time_ns = kle_clock_wall_ns(NULL);
        s->call.kind = KLE_LOCK_CALL_UPDATE;
        s->call.record = &s->record;
    }
    s->get_next = !s->get_next;
    if (s->lock->start(s->lock, &s->call) != 0) {
        R->failures++;
        snprintf(R->error, sizeof(R->error), "%s", kle_error_last()->message);
        return;
    }
    s->busy = 1;
}

static void measure_async(kle_lock **locks, int n, int with_get, double seconds)
{
    run r;
    memset(&r, 0, sizeof(r));
    R = &r;
    if (kle_loop_new(&r.loop, NULL) != 0)
        exit(1);
    r.slots = calloc((size_t)n, sizeof(slot));
    r.n = n;
    r.with_get = with_get;
    for (int i = 0; i < n; i++) {
        r.slots[i].lock = locks[i];
        r.slots[i].record = record_of("bench");
        r.slots[i].get_next = 1;
        if (locks[i]->attach(locks[i], r.loop) != 0)
            exit(1);
    }
    /* Warm up: connections opened, pools filled. */
    r.until = mono() + SEC / 2;
    for (int i = 0; i < n; i++)
        next_call(&r.slots[i]);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < n; i++)
            busy |= r.slots[i].busy;
        if (!busy)
            break;
        kle_loop_dispatch(r.loop, 100 * KLE_NS_PER_MS);
    }
    r.requests = r.failures = r.conflicts = 0;
    long conns0 = kle_kube__client_connections(client);
    long discarded0 = kle_kube__client_discarded(client);
    double c0 = cpu_self(), s0 = cpu_server();
    int64_t t0 = mono();
    r.until = t0 + (int64_t)(seconds * SEC);
    for (int i = 0; i < n; i++)
        next_call(&r.slots[i]);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < n; i++)
            busy |= r.slots[i].busy;
        if (!busy)
            break;
        kle_loop_dispatch(r.loop, 100 * KLE_NS_PER_MS);
    }
    double wall = (double)(mono() - t0) / SEC;
    double cpu = cpu_self() - c0, scpu = cpu_server() - s0;
    long conns = kle_kube__client_connections(client) - conns0;
    long discarded = kle_kube__client_discarded(client) - discarded0;
    printf("FIGURE async %-8s %-8s N=%-4d %7.0f req/s  client %6.3f s CPU/1000 req  server "
           "%6.3f s CPU/1000 req  (%ld requests, %ld failed, %ld conflicts, %ld new "
           "connections, %ld closed after a failure)\n",
           srv.front.pid > 0 ? "HTTP/2" : "HTTP/1.1", with_get ? "get+put" : "put", n,
           (double)r.requests / wall, cpu * 1000 / (double)(r.requests ? r.requests : 1),
           scpu * 1000 / (double)(r.requests ? r.requests : 1), r.requests, r.failures, r.conflicts,
           conns, discarded);
    if (r.failures)
        printf("       last failure: %s\n", r.error);
    for (int i = 0; i < n; i++) {
        locks[i]->attach(locks[i], NULL);
        kle_record_dispose(&r.slots[i].record);
    }
    free(r.slots);
    kle_loop_free(r.loop);
    fflush(stdout);
}

/* ---- synchronous: N threads ---- */

typedef struct worker {
    pthread_t t;
    kle_lock *lock;
    int with_get;
    int64_t until;
    long requests, failures;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    kle_record r = record_of("bench");
    while (mono() < w->until) {
        int rc;
        if (w->with_get) {
            kle_lock_result got = KLE_LOCK_RESULT_INIT;
            rc = kle_lock_get(&got, w->lock, NULL);
            kle_lock_result_dispose(&got);
            w->requests++;
            if (rc)
                w->failures++;
        }
        r.renew_time_ns = kle_clock_wall_ns(NULL);
        rc = kle_lock_update(w->lock, &r, NULL);
        w->requests++;
        if (rc && rc != KLE_ECONFLICT)
            w->failures++;
    }
    kle_record_dispose(&r);
    return NULL;
}

static void measure_sync(kle_lock **locks, int n, int with_get, double seconds)
{
    worker *w = calloc((size_t)n, sizeof(*w));
    double c0 = cpu_self(), s0 = cpu_server();
    int64_t t0 = mono();
    for (int i = 0; i < n; i++) {
        w[i].lock = locks[i];
        w[i].with_get = with_get;
        w[i].until = t0 + (int64_t)(seconds * SEC);
        pthread_create(&w[i].t, NULL, work, &w[i]);
    }
    long req = 0, fail = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(w[i].t, NULL);
        req += w[i].requests;
        fail += w[i].failures;
    }
    double wall = (double)(mono() - t0) / SEC;
    double cpu = cpu_self() - c0, scpu = cpu_server() - s0;
    printf("FIGURE sync  %-8s %-8s N=%-4d %7.0f req/s  client %6.3f s CPU/1000 req  server "
           "%6.3f s CPU/1000 req  (%ld requests, %ld failed; %d threads)\n",
           srv.front.pid > 0 ? "HTTP/2" : "HTTP/1.1", with_get ? "get+put" : "put", n,
           (double)req / wall, cpu * 1000 / (double)(req ? req : 1),
           scpu * 1000 / (double)(req ? req : 1), req, fail, n);
    free(w);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int ns[16] = {1, 16, 128}, nn = 3;
    double seconds = 3;
    int do_async = 1, do_sync = 1;
    int opt;
    while ((opt = getopt(argc, argv, "n:t:m:")) != -1) {
        switch (opt) {
        case 'n': {
            nn = 0;
            for (char *p = strtok(optarg, ","); p && nn < 16; p = strtok(NULL, ","))
                ns[nn++] = atoi(p);
            break;
        }
        case 't':
            seconds = atof(optarg);
            break;
        case 'm':
            do_async = do_sync = 0;
            for (char *p = strtok(optarg, ","); p; p = strtok(NULL, ",")) {
                do_async |= strcmp(p, "async") == 0;
                do_sync |= strcmp(p, "sync") == 0;
            }
            break;
        default:
            fprintf(stderr, "usage: async_bench [-n N,...] [-t SECONDS] [-m async,sync]\n");
            return 2;
        }
    }
    if (kle_test_apiserver_start(&srv, NULL) != 0)
        return 1;
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = srv.kubeconfig;
    if (kle_client_new_from_kubeconfig(&client, &o) != 0) {
        fprintf(stderr, "client: %s\n", kle_error_last()->message);
        kle_test_apiserver_stop(&srv);
        return 1;
    }
    int max = 0;
    for (int i = 0; i < nn; i++)
        if (ns[i] > max)
            max = ns[i];
    kle_lock **locks = calloc((size_t)max, sizeof(*locks));
    for (int i = 0; i < max; i++)
        locks[i] = lease(i);
    for (int i = 0; i < nn; i++)
        for (int with_get = 1; with_get >= 0; with_get--) {
            if (do_async)
                measure_async(locks, ns[i], with_get, seconds);
            if (do_sync)
                measure_sync(locks, ns[i], with_get, seconds);
        }
    for (int i = 0; i < max; i++)
        kle_lock_free(locks[i]);
    free(locks);
    kle_client_free(client);
    kle_test_apiserver_stop(&srv);
    return 0;
}
