/*
 * The elector's runtime: it drives the election's state machine (sm.c) on
 * the thread that calls kle_elector_run(), carries out what it asks, and
 * feeds it the time, the answers and the watch's events.
 *
 * - Lock calls: a lock with asynchronous calls (a version-3 vtable, the
 *   built-in Kubernetes locks) runs them on the run's loop, on this same
 *   thread; a synchronous lock runs them on one worker thread, whose
 *   answers are posted back to the loop. Either way the machine is never
 *   blocked by a call, so a term ends at its deadline whatever a call does.
 * - The watch: asynchronous on the loop, or kle_lock_watch() on a watcher
 *   thread posting its events, in order, to the loop.
 * - A term: on_started_leading runs on a thread of its own with a leading
 *   handle whose end is a deadline event: with the real clock a
 *   CLOCK_BOOTTIME timerfd armed at the term's deadline, so the kernel ends
 *   the term on time whatever this process's threads are doing.
 *
 * The machine is touched only under `mu`, by the run's thread, and read
 * under it by the getters (kle_elector_is_leader, stats, ...), which never
 * wait for anything but the machine's short steps. No user callback is
 * called with `mu` held.
 */
#include "kle/elector.h"
#include "kle/sys/clock.h"
#include "base/versioned.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "kle/sys/loop.h"
#include "base/clock_internal.h"
#include "election/elector_internal.h"
#include "election/lock_internal.h"
#include "base/log.h"
#include "election/sm.h"

#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define JITTER_FACTOR 1.2
/* The longest lease a record can carry: leaseDurationSeconds is an int32. */
#define MAX_LEASE_NS (INT64_C(2147483647) * KLE_NS_PER_SEC)
/* Server-side lifetime of one watch stream (timeoutSeconds). */
#define STREAM_TIMEOUT_NS KLE_SEC(300)

/*
 * One term's handle, reference-counted: the elector holds a reference for
 * the term and the user may take more (kle_leading_ref). It owns its
 * events, so a handle kept after its term stays "over" even while a later
 * term runs. It is made before the elector campaigns, so that nothing
 * needs a new descriptor after the lease is won.
 */
struct kle_leading {
    atomic_int refs;
    pthread_mutex_t mu;   /* Guards elector. */
    kle_elector *elector; /* NULL once the term has ended (detached). */
    kle_clock *clock;
    kle_event *ended;      /* A deadline event: set at the deadline or when the term ends. */
    kle_event *extended;   /* Set when the deadline moves; made on first use (guarded by mu). */
    int64_t deadline_read; /* The deadline kle_leading_deadline_ns() last returned. */
    int transitions;
    _Atomic int64_t deadline;
};

/* A synchronous call handed to the worker thread. */
typedef struct job {
    int kind; /* kle_sm_call_kind */
    uint64_t id;
    int64_t timeout;
    int cancellable;
    kle_record record; /* CREATE, UPDATE: a copy */
    char *message;
    /* The answer. */
    int rc;
    int64_t sent;
    kle_lock_result result;
    char errmsg[512];
} job;

/* One watch event copied from the watcher thread, queued for the loop. */
typedef struct wevent {
    struct wevent *next;
    kle_lock_event ev;
    kle_lock_result result;
    char *rv;
    int ended; /* 1: the watch ended with rc */
    int rc;
    char errmsg[256];
} wevent;

struct kle_elector {
    kle_lock *lock;
    char *identity;
    char *name;         /* The lock's describe (namespace/name), for logs and messages. */
    char *metrics_name; /* config->name, else name: the label of kle_elector_metrics(). */
    int64_t lease_duration;
    kle_elector_callbacks cb;
    kle_clock *clock;

    pthread_mutex_t mu; /* Guards sm. */
    kle_sm *sm;
    int async; /* The lock's calls run on the loop. */

    atomic_int running;
    atomic_int stop_requested;
    kle_loop *loop;
    kle_loop_timer timer;
    kle_loop_post answer_post, work_post, watch_post;
    int done;
    int run_rc;

    /* The worker thread (synchronous locks). */
    pthread_t worker;
    int worker_started;
    kle_event *worker_wake; /* A job is queued, or the worker should leave. */
    kle_event *cancel;      /* Cancels a cancellable job (stop while campaigning). */
    atomic_int worker_quit;
    atomic_int worker_done;
    pthread_mutex_t jmu; /* Guards the job slots. */
    job pending;         /* Queued for the worker. */
    int has_pending;
    job finished; /* Answered, for the loop. */
    int has_finished;
    int job_running;

    /* Asynchronous calls. */
    kle_lock_call acall;
    kle_record arecord; /* acall's record (its strings lent by the machine until answered). */
    kle_lock_result aresult;
    int64_t asent;
    uint64_t aid;
    int acall_running;
    int acall_cancellable;
    kle_lock_watch_call awatch;
    int awatch_running;

    /* The watcher thread (synchronous watch). */
    pthread_t watcher;
    int watcher_started;
    kle_event *watch_cancel;
    atomic_int watcher_done;
    pthread_mutex_t wmu; /* Guards the queue. */
    wevent *whead, *wtail;
    int watch_generation;

    /* The term. */
    kle_leading *handle;      /* The current term's, or NULL. */
    kle_leading *next_handle; /* Made before campaigning, for the next term. */
    pthread_t cb_thread;
    int cb_started;
    atomic_int callback_done;
    int work_failed_rc;
};

static int64_t now_ns(kle_elector *e)
{
    return kle_clock_monotonic_ns(e->clock);
}

static int64_t wall_ns(kle_elector *e)
{
    return kle_clock_wall_ns(e->clock);
}

static int validate(const kle_elector_config *c)
{
    long long ld = (long long)c->lease_duration_ns, rd = (long long)c->renew_deadline_ns,
              rp = (long long)c->retry_period_ns;
    const char *p = "invalid elector config: ";

    if (c->lease_duration_ns <= c->renew_deadline_ns)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration must be greater than renewDeadline "
                             "(lease_duration_ns=%lld, renew_deadline_ns=%lld)",
                             p, ld, rd);
    if ((double)c->renew_deadline_ns <= JITTER_FACTOR * (double)c->retry_period_ns)
        return kle_error_set(KLE_EINVAL,
                             "%srenewDeadline must be greater than retryPeriod*JitterFactor "
                             "(renew_deadline_ns=%lld, retry_period_ns=%lld, JitterFactor=1.2)",
                             p, rd, rp);
    if (c->lease_duration_ns < 1)
        return kle_error_set(KLE_EINVAL, "%sleaseDuration must be greater than zero", p);
    if (c->renew_deadline_ns < 1)
        return kle_error_set(KLE_EINVAL, "%srenewDeadline must be greater than zero", p);
    if (c->retry_period_ns < 1)
        return kle_error_set(KLE_EINVAL, "%sretryPeriod must be greater than zero", p);
    if (c->lease_duration_ns < KLE_NS_PER_SEC)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration must be at least 1s: the record carries whole "
                             "seconds (lease_duration_ns=%lld)",
                             p, ld);
    if (c->lease_duration_ns > MAX_LEASE_NS)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration does not fit the record's leaseDurationSeconds "
                             "(lease_duration_ns=%lld, at most %lld: 2147483647 s)",
                             p, ld, (long long)MAX_LEASE_NS);
    if (c->lease_duration_ns / KLE_NS_PER_SEC * KLE_NS_PER_SEC <= c->renew_deadline_ns)
        return kle_error_set(KLE_EINVAL,
                             "%sleaseDuration as the record carries it, in whole seconds (%llds), "
                             "must be greater than renewDeadline (lease_duration_ns=%lld, "
                             "renew_deadline_ns=%lld)",
                             p, ld / KLE_NS_PER_SEC, ld, rd);
    if (c->call_timeout_ns < 0 || c->call_timeout_ns > MAX_LEASE_NS)
        return kle_error_set(KLE_EINVAL,
                             "%scall_timeout_ns must be between 0 and %lld (call_timeout_ns=%lld)",
                             p, (long long)MAX_LEASE_NS, (long long)c->call_timeout_ns);
    if (!c->callbacks.on_started_leading)
        return kle_error_set(KLE_EINVAL, "%sOnStartedLeading callback must not be nil", p);
    if (!c->callbacks.on_stopped_leading)
        return kle_error_set(KLE_EINVAL, "%sOnStoppedLeading callback must not be nil", p);
    if (!c->lock)
        return kle_error_set(KLE_EINVAL, "%sLock must not be nil", p);
    if (kle_lock_validate(c->lock) < 0)
        return kle_error_prefix("%s", p);
    if (kle_lock_identity(c->lock)[0] == '\0')
        return kle_error_set(KLE_EINVAL, "%sLock identity is empty", p);
    if (kle_identity_check(kle_lock_identity(c->lock)) < 0)
        return kle_error_prefix("%sLock identity: ", p);
    if (c->version >= 2 && c->follow != KLE_FOLLOW_WATCH && c->follow != KLE_FOLLOW_POLL)
        return kle_error_set(
            KLE_EINVAL, "%sfollow must be KLE_FOLLOW_WATCH or KLE_FOLLOW_POLL (%d)", p, c->follow);
    if (c->clock && (c->clock->version < 1 || c->clock->version > KLE_CLOCK_VERSION ||
                     !c->clock->monotonic_ns || !c->clock->wall_ns || !c->clock->wait))
        return kle_error_set(KLE_EVERSION, "%sclock is incomplete or of an unsupported version", p);
    return 0;
}

static uint64_t random_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed) || seed == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
    }
    return seed ? seed : 1;
}

/* ---- leading handles ------------------------------------------------------ */

static kle_leading *handle_new(kle_elector *e)
{
    kle_leading *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    if (kle_event__new_deadline(&h->ended, e->clock) < 0) {
        free(h);
        return NULL;
    }
    atomic_init(&h->refs, 1);
    atomic_init(&h->deadline, 0);
    pthread_mutex_init(&h->mu, NULL);
    h->elector = e;
    h->clock = e->clock;
    return h;
}

/* Ends the handle's tie to the elector: from now on it answers alone. */
static void handle_detach(kle_leading *h)
{
    kle_event_set(h->ended);
    pthread_mutex_lock(&h->mu);
    h->elector = NULL;
    pthread_mutex_unlock(&h->mu);
}

/* ---- elector life ----------------------------------------------------------- */

static void worker_stop(kle_elector *e);

/* What kle_elector_new() made, freed (by a failed new and by free). */
static void free_parts(kle_elector *e)
{
    kle_sm_free(e->sm);
    kle_loop_free(e->loop);
    kle_event_free(e->worker_wake);
    kle_event_free(e->cancel);
    kle_event_free(e->watch_cancel);
    free(e->identity);
    free(e->name);
    free(e->metrics_name);
}

int kle_elector_new(kle_elector **out, const kle_elector_config *config)
{
    if (!out || !config)
        return kle_error_set(KLE_EINVAL, "kle_elector_new: out and config are required");
    *out = NULL;
    KLE__CHECK_VERSION(config->version, KLE_ELECTOR_CONFIG_VERSION, "kle_elector_new: config");
    int rc = validate(config);
    if (rc < 0)
        return rc;
    if (!config->clock &&
        (config->retry_period_ns < KLE_MS(100) || config->renew_deadline_ns < KLE_SEC(1)))
        KLE_LOG_W("elector for %s: retry period %lld ms, renew deadline %lld ms: below 100 ms and "
                  "1 s a real API server is loaded with requests and terms are lost to one slow "
                  "answer (kle run refuses them)",
                  kle_lock_describe(config->lock),
                  (long long)(config->retry_period_ns / KLE_NS_PER_MS),
                  (long long)(config->renew_deadline_ns / KLE_NS_PER_MS));

    kle_elector *e = calloc(1, sizeof(*e));
    if (!e)
        return kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
    e->clock = config->clock ? config->clock : kle_clock_real();
    e->identity = strdup(kle_lock_identity(config->lock));
    e->name = strdup(kle_lock_describe(config->lock));
    e->metrics_name = strdup(config->name ? config->name : kle_lock_describe(config->lock));
    if (!e->identity || !e->name || !e->metrics_name) {
        rc = kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
        goto fail;
    }
    e->async = kle_lock__async(config->lock);
    /* The worker's and the watcher's events only for a synchronous lock:
     * an asynchronous one needs no descriptor of the elector's own but the
     * loop's. */
    if ((rc = kle_loop_new(&e->loop, e->clock)) < 0 ||
        (!e->async &&
         ((rc = kle_event_new(&e->worker_wake)) < 0 || (rc = kle_event_new(&e->cancel)) < 0 ||
          (rc = kle_event_new(&e->watch_cancel)) < 0)))
        goto fail;
    e->lock = config->lock;
    e->lease_duration = config->lease_duration_ns;
    e->cb = config->callbacks;
    int follow = config->version >= 2 ? config->follow : KLE_FOLLOW_WATCH;
    int watch = follow == KLE_FOLLOW_WATCH &&
                (kle_lock__async_watch(config->lock) || kle_lock_can_watch(config->lock));
    if (follow == KLE_FOLLOW_WATCH && !watch)
        KLE_LOG_I("lock %s cannot watch: following it by polling every retry period", e->name);
    kle_sm_config sc;
    memset(&sc, 0, sizeof(sc));
    sc.identity = e->identity;
    sc.name = e->name;
    sc.lease_duration = config->lease_duration_ns;
    sc.renew_deadline = config->renew_deadline_ns;
    sc.retry_period = config->retry_period_ns;
    sc.call_timeout = config->call_timeout_ns ? config->call_timeout_ns
                      : config->renew_deadline_ns / 2 > KLE_NS_PER_SEC
                          ? config->renew_deadline_ns / 2
                          : KLE_NS_PER_SEC;
    sc.record_lease_seconds = (int)(config->lease_duration_ns / KLE_NS_PER_SEC);
    sc.release_on_cancel = config->release_on_cancel != 0;
    sc.coordinated = config->version >= 2 && config->coordinated != 0;
    sc.watch = watch;
    sc.seed = config->jitter_seed ? config->jitter_seed : random_seed();
#ifdef KLE_TEST_HOOKS
    /* The mutation check (scripts/mutate --unit): rules switched off by
     * number, in test builds only. */
    const char *mutations = getenv("KLE_SM_MUTATIONS");
    if (mutations)
        sc.mutations = (int)strtol(mutations, NULL, 0);
#endif
    if (!(e->sm = kle_sm_new(&sc))) {
        rc = kle_error_set(KLE_ENOMEM, "kle_elector_new: out of memory");
        goto fail;
    }
    pthread_mutex_init(&e->mu, NULL);
    pthread_mutex_init(&e->jmu, NULL);
    pthread_mutex_init(&e->wmu, NULL);
    kle_lock_result_init(&e->pending.result, KLE_LOCK_RESULT_VERSION);
    kle_lock_result_init(&e->finished.result, KLE_LOCK_RESULT_VERSION);
    kle_lock_result_init(&e->aresult, KLE_LOCK_RESULT_VERSION);
    /* The first term's handle now, and each next one when a term ends, so
     * that nothing needs a new descriptor after the lease is won. */
    if (!(e->next_handle = handle_new(e))) {
        rc = kle_error_set(KLE_ESYSTEM, "kle_elector_new: cannot make a leading handle");
        pthread_mutex_destroy(&e->mu);
        pthread_mutex_destroy(&e->jmu);
        pthread_mutex_destroy(&e->wmu);
        goto fail;
    }
    *out = e;
    return 0;
fail:
    free_parts(e);
    free(e);
    return rc;
}

/* ---- the worker thread (synchronous locks) ------------------------------------ */

static void *worker_main(void *p);
static void *watcher_main(void *p);

typedef struct thread_arg {
    kle_elector *e;
    kle_leading *h;
    void *token;
    void *(*fn)(void *);
} thread_arg;

/* Runs a thread's function between the clock's attach and detach. */
static void *thread_trampoline(void *p)
{
    thread_arg *a = p;
    kle_clock *clock = a->e->clock;
    void *token = a->token;
    if (clock->thread_attach)
        clock->thread_attach(clock, token);
    void *r = a->fn(a);
    free(a);
    if (clock->thread_detach)
        clock->thread_detach(clock, token);
    return r;
}

static int start_thread(kle_elector *e, kle_leading *h, void *(*fn)(void *), pthread_t *thread)
{
    thread_arg *a = malloc(sizeof(*a));
    if (!a)
        return kle_error_set(KLE_ENOMEM, "elector: out of memory");
    a->e = e;
    a->h = h;
    a->fn = fn;
    a->token = e->clock->thread_register ? e->clock->thread_register(e->clock) : NULL;
    int err = pthread_create(thread, NULL, thread_trampoline, a);
    if (err) {
        if (e->clock->thread_detach)
            e->clock->thread_detach(e->clock, a->token);
        free(a);
        return kle_error_set(KLE_ESYSTEM, "elector: cannot start a thread: %s", strerror(err));
    }
    return 0;
}

static void job_clear(job *j)
{
    kle_record_dispose(&j->record);
    free(j->message);
    j->message = NULL;
    kle_lock_result_dispose(&j->result);
}

static void on_answer_post(kle_loop *loop, kle_loop_post *post, void *data);

static void *worker_main(void *p)
{
    thread_arg *a = p;
    kle_elector *e = a->e;
    while (!atomic_load(&e->worker_quit)) {
        pthread_mutex_lock(&e->jmu);
        int has = e->has_pending;
        job j = e->pending;
        if (has) {
            e->has_pending = 0;
            kle_record_init(&e->pending.record, KLE_RECORD_VERSION);
            e->pending.message = NULL;
            kle_lock_result_init(&e->pending.result, KLE_LOCK_RESULT_VERSION);
            e->job_running = 1;
        }
        pthread_mutex_unlock(&e->jmu);
        if (!has) {
            kle_clock_wait(e->clock, e->worker_wake, INT64_MAX);
            kle_event_reset(e->worker_wake);
            continue;
        }
        kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
        ctx.timeout_ns = j.timeout;
        ctx.cancel = j.cancellable ? e->cancel : NULL;
        j.sent = now_ns(e);
        switch (j.kind) {
        case KLE_SM_GET:
            j.rc = kle_lock_get(&j.result, e->lock, &ctx);
            break;
        case KLE_SM_CREATE:
            j.rc = kle_lock_create(e->lock, &j.record, &ctx);
            break;
        case KLE_SM_UPDATE:
            j.rc = kle_lock_update(e->lock, &j.record, &ctx);
            break;
        default:
            j.rc = kle_lock_record_event(e->lock, j.message, &ctx);
            break;
        }
        snprintf(j.errmsg, sizeof(j.errmsg), "%s", j.rc < 0 ? kle_error_last()->message : "");
        pthread_mutex_lock(&e->jmu);
        job_clear(&e->finished);
        e->finished = j;
        e->has_finished = 1;
        e->job_running = 0;
        pthread_mutex_unlock(&e->jmu);
        kle_loop_post_work(e->loop, &e->answer_post, on_answer_post, e);
    }
    atomic_store(&e->worker_done, 1);
    kle_loop_wake(e->loop);
    return NULL;
}

static int worker_start(kle_elector *e)
{
    if (e->worker_started || e->async)
        return 0;
    atomic_store(&e->worker_quit, 0);
    atomic_store(&e->worker_done, 0);
    int rc = start_thread(e, NULL, worker_main, &e->worker);
    if (rc == 0)
        e->worker_started = 1;
    return rc;
}

static void worker_stop(kle_elector *e)
{
    if (!e->worker_started)
        return;
    atomic_store(&e->worker_quit, 1);
    kle_event_set(e->cancel);
    kle_event_set(e->worker_wake);
    kle_event *wake;
    /* Join through the loop's wake: the worker wakes it on its way out. */
    while (!atomic_load(&e->worker_done)) {
        wake = e->worker_wake;
        kle_event_set(wake);
        kle_loop_dispatch(e->loop, KLE_MS(10));
    }
    pthread_join(e->worker, NULL);
    e->worker_started = 0;
    kle_event_reset(e->cancel);
}

/* ---- carrying out the machine's actions ----------------------------------------- */

static void feed_answer(kle_elector *e, uint64_t id, int rc, int64_t sent, kle_lock_result *res,
                        const char *errmsg)
{
    if (rc < 0 && errmsg)
        kle_error_set(rc, "%s", errmsg);
    pthread_mutex_lock(&e->mu);
    kle_sm_answer(e->sm, id, rc, sent, res, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
}

static void on_answer_post(kle_loop *loop, kle_loop_post *post, void *data)
{
    (void)loop, (void)post;
    kle_elector *e = data;
    pthread_mutex_lock(&e->jmu);
    if (!e->has_finished) {
        pthread_mutex_unlock(&e->jmu);
        return;
    }
    job j = e->finished;
    e->has_finished = 0;
    kle_record_init(&e->finished.record, KLE_RECORD_VERSION);
    e->finished.message = NULL;
    kle_lock_result_init(&e->finished.result, KLE_LOCK_RESULT_VERSION);
    pthread_mutex_unlock(&e->jmu);
    feed_answer(e, j.id, j.rc, j.sent, &j.result, j.errmsg);
    job_clear(&j);
}

static void on_async_done(kle_lock_call *c, int rc, void *data)
{
    kle_elector *e = data;
    (void)c;
    e->acall_running = 0;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", rc < 0 ? kle_error_last()->message : "");
    feed_answer(e, e->aid, rc, e->asent, &e->aresult, msg);
    kle_lock_result_dispose(&e->aresult);
}

static void start_call(kle_elector *e, const kle_sm_call *c, int cancellable)
{
    if (e->async) {
        memset(&e->acall, 0, sizeof(e->acall));
        e->acall.version = KLE_LOCK_CALL_VERSION;
        e->acall.kind = c->kind == KLE_SM_GET      ? KLE_LOCK_CALL_GET
                        : c->kind == KLE_SM_CREATE ? KLE_LOCK_CALL_CREATE
                        : c->kind == KLE_SM_UPDATE ? KLE_LOCK_CALL_UPDATE
                                                   : KLE_LOCK_CALL_EVENT;
        e->arecord = c->record;
        e->acall.record = c->has_record ? &e->arecord : NULL;
        e->acall.message = c->message;
        e->acall.timeout_ns = c->timeout;
        kle_lock_result_dispose(&e->aresult);
        e->acall.result = &e->aresult;
        e->acall.done = on_async_done;
        e->acall.data = e;
        e->aid = c->id;
        e->acall_cancellable = cancellable;
        e->asent = now_ns(e);
        int rc = e->lock->start(e->lock, &e->acall);
        if (rc < 0) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", kle_error_last()->message);
            feed_answer(e, c->id, rc, e->asent, NULL, msg);
        } else {
            e->acall_running = 1;
        }
        return;
    }
    pthread_mutex_lock(&e->jmu);
    job_clear(&e->pending);
    job *j = &e->pending;
    j->kind = c->kind;
    j->id = c->id;
    j->timeout = c->timeout;
    j->cancellable = cancellable;
    kle_record_init(&j->record, KLE_RECORD_VERSION);
    int rc = 0;
    if (c->has_record)
        rc = kle_record_copy(&j->record, &c->record);
    if (c->message && !(j->message = strdup(c->message)))
        rc = KLE_ENOMEM;
    if (rc == 0)
        e->has_pending = 1;
    pthread_mutex_unlock(&e->jmu);
    if (rc < 0) {
        feed_answer(e, c->id, KLE_ENOMEM, now_ns(e), NULL, "elector: out of memory");
        return;
    }
    kle_event_set(e->worker_wake);
}

/* ---- the watch ---------------------------------------------------------------- */

static void on_watch_post(kle_loop *loop, kle_loop_post *post, void *data);

static void wevent_free(wevent *w)
{
    kle_lock_result_dispose(&w->result);
    free(w->rv);
    free(w);
}

static void queue_wevent(kle_elector *e, wevent *w)
{
    pthread_mutex_lock(&e->wmu);
    if (e->wtail)
        e->wtail->next = w;
    else
        e->whead = w;
    e->wtail = w;
    pthread_mutex_unlock(&e->wmu);
    kle_loop_post_work(e->loop, &e->watch_post, on_watch_post, e);
}

static wevent *copy_event(const kle_lock_event *ev)
{
    wevent *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->ev = *ev;
    kle_lock_result_init(&w->result, KLE_LOCK_RESULT_VERSION);
    if (ev->resource_version && !(w->rv = strdup(ev->resource_version)))
        goto nomem;
    w->ev.resource_version = w->rv;
    w->ev.result = NULL;
    if (ev->result) {
        const kle_lock_result *r = ev->result;
        if (kle_record_copy(&w->result.record, &r->record) < 0 ||
            !(w->result.raw = malloc(r->raw_len + 1)) ||
            (r->resource_version && !(w->result.resource_version = strdup(r->resource_version))))
            goto nomem;
        memcpy(w->result.raw, r->raw, r->raw_len);
        w->result.raw[r->raw_len] = '\0';
        w->result.raw_len = r->raw_len;
        w->ev.result = &w->result;
    }
    return w;
nomem:
    wevent_free(w);
    return NULL;
}

typedef struct watcher_ctx {
    kle_elector *e;
    int generation;
} watcher_ctx;

static int on_sync_event(const kle_lock_event *ev, void *data)
{
    kle_elector *e = data;
    wevent *w = copy_event(ev);
    if (w)
        queue_wevent(e, w);
    return 0;
}

static void *watcher_main(void *p)
{
    thread_arg *a = p;
    kle_elector *e = a->e;
    kle_lock_watch_opts o = KLE_LOCK_WATCH_OPTS_INIT;
    o.stream_timeout_ns = STREAM_TIMEOUT_NS;
    o.cancel = e->watch_cancel;
    int rc = kle_lock_watch(e->lock, &o, on_sync_event, e);
    if (rc != KLE_ECANCELED) {
        wevent *w = calloc(1, sizeof(*w));
        if (w) {
            kle_lock_result_init(&w->result, KLE_LOCK_RESULT_VERSION);
            w->ended = 1;
            w->rc = rc;
            snprintf(w->errmsg, sizeof(w->errmsg), "%s",
                     rc < 0 ? kle_error_last()->message : "no error");
            queue_wevent(e, w);
        }
    }
    atomic_store(&e->watcher_done, 1);
    kle_loop_wake(e->loop);
    return NULL;
}

static void watch_stop(kle_elector *e)
{
    if (e->async && e->awatch_running) {
        e->lock->watch_stop(e->lock, &e->awatch);
        e->awatch_running = 0;
    }
    if (e->watcher_started) {
        kle_event_set(e->watch_cancel);
        while (!atomic_load(&e->watcher_done))
            kle_loop_dispatch(e->loop, KLE_MS(10));
        pthread_join(e->watcher, NULL);
        e->watcher_started = 0;
        kle_event_reset(e->watch_cancel);
    }
    /* Events of the stopped watch are dropped. */
    pthread_mutex_lock(&e->wmu);
    wevent *w = e->whead;
    e->whead = e->wtail = NULL;
    e->watch_generation++;
    pthread_mutex_unlock(&e->wmu);
    while (w) {
        wevent *n = w->next;
        wevent_free(w);
        w = n;
    }
}

static int on_async_event(const kle_lock_event *ev, void *data)
{
    kle_elector *e = data;
    pthread_mutex_lock(&e->mu);
    kle_sm_watch_event(e->sm, ev, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
    return 0;
}

static void on_async_watch_ended(kle_lock_watch_call *w, int rc, void *data)
{
    kle_elector *e = data;
    (void)w;
    e->awatch_running = 0;
    pthread_mutex_lock(&e->mu);
    kle_sm_watch_ended(e->sm, rc, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
}

static void watch_start(kle_elector *e)
{
    watch_stop(e);
    if (e->async && kle_lock__async_watch(e->lock)) {
        memset(&e->awatch, 0, sizeof(e->awatch));
        e->awatch.version = KLE_LOCK_WATCH_CALL_VERSION;
        e->awatch.stream_timeout_ns = STREAM_TIMEOUT_NS;
        e->awatch.event = on_async_event;
        e->awatch.ended = on_async_watch_ended;
        e->awatch.data = e;
        int rc = e->lock->watch_start(e->lock, &e->awatch);
        if (rc < 0) {
            pthread_mutex_lock(&e->mu);
            kle_sm_watch_ended(e->sm, rc, now_ns(e), wall_ns(e));
            pthread_mutex_unlock(&e->mu);
        } else {
            e->awatch_running = 1;
        }
        return;
    }
    atomic_store(&e->watcher_done, 0);
    kle_event_reset(e->watch_cancel);
    int rc = start_thread(e, NULL, watcher_main, &e->watcher);
    if (rc < 0) {
        KLE_LOG_W("cannot start the watcher of %s: %s; polling", e->name,
                  kle_error_last()->message);
        pthread_mutex_lock(&e->mu);
        kle_sm_watch_ended(e->sm, KLE_ESTATE, now_ns(e), wall_ns(e));
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->watcher_started = 1;
}

static void on_watch_post(kle_loop *loop, kle_loop_post *post, void *data)
{
    (void)loop, (void)post;
    kle_elector *e = data;
    for (;;) {
        pthread_mutex_lock(&e->wmu);
        wevent *w = e->whead;
        if (w) {
            e->whead = w->next;
            if (!e->whead)
                e->wtail = NULL;
        }
        pthread_mutex_unlock(&e->wmu);
        if (!w)
            return;
        pthread_mutex_lock(&e->mu);
        if (w->ended) {
            kle_error_set(w->rc < 0 ? w->rc : KLE_ERROR, "%s", w->errmsg);
            kle_sm_watch_ended(e->sm, w->rc, now_ns(e), wall_ns(e));
        } else {
            kle_sm_watch_event(e->sm, &w->ev, now_ns(e), wall_ns(e));
        }
        pthread_mutex_unlock(&e->mu);
        wevent_free(w);
    }
}

/* ---- terms ------------------------------------------------------------------ */

static void on_work_post(kle_loop *loop, kle_loop_post *post, void *data)
{
    (void)loop, (void)post;
    kle_elector *e = data;
    if (!atomic_load(&e->callback_done) || !e->cb_started)
        return;
    pthread_join(e->cb_thread, NULL);
    e->cb_started = 0;
    pthread_mutex_lock(&e->mu);
    kle_sm_work_done(e->sm, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
}

static void *callback_main(void *p)
{
    thread_arg *a = p;
    kle_elector *e = a->e;
    kle_leading *h = a->h;
    e->cb.on_started_leading(h, e->cb.data);
    atomic_store(&e->callback_done, 1);
    kle_loop_post_work(e->loop, &e->work_post, on_work_post, e);
    return NULL;
}

static void term_start(kle_elector *e, int64_t deadline, int token)
{
    kle_leading *h = e->next_handle;
    e->next_handle = NULL;
    if (!h && !(h = handle_new(e))) {
        e->work_failed_rc =
            kle_error_set(KLE_ESYSTEM, "cannot lead %s: no leading handle", e->name);
        pthread_mutex_lock(&e->mu);
        kle_sm_work_done(e->sm, now_ns(e), wall_ns(e));
        pthread_mutex_unlock(&e->mu);
        return;
    }
    h->transitions = token;
    atomic_store(&h->deadline, deadline);
    kle_event__arm_deadline(h->ended, deadline);
    e->handle = h;
    atomic_store(&e->callback_done, 0);
    if (start_thread(e, h, callback_main, &e->cb_thread) < 0) {
        e->work_failed_rc = kle_error_last()->code;
        KLE_LOG_E("stepping down from %s and releasing it: %s", e->name, kle_error_last()->message);
        kle_event_set(h->ended);
        pthread_mutex_lock(&e->mu);
        kle_sm_work_done(e->sm, now_ns(e), wall_ns(e));
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->cb_started = 1;
}

static void term_extend(kle_elector *e, int64_t deadline)
{
    kle_leading *h = e->handle;
    if (!h)
        return;
    if (kle_event__arm_deadline(h->ended, deadline) == 0 && !kle_event_is_set(h->ended)) {
        atomic_store(&h->deadline, deadline);
        pthread_mutex_lock(&h->mu);
        if (h->extended)
            kle_event_set(h->extended);
        pthread_mutex_unlock(&h->mu);
    }
}

static void term_end(kle_elector *e)
{
    kle_leading *h = e->handle;
    if (!h)
        return;
    kle_event_set(h->ended);
}

/* After the work returned: the handle goes, the next one is made. */
static void term_release_handle(kle_elector *e)
{
    kle_leading *h = e->handle;
    if (!h)
        return;
    int64_t final = atomic_load(&h->deadline);
    (void) final;
    handle_detach(h);
    kle_leading_unref(h);
    e->handle = NULL;
    if (!e->next_handle)
        e->next_handle = handle_new(e); /* Else the next term makes one. */
}

/* Carries out everything the machine asks, until it asks nothing more. */
static void run_actions(kle_elector *e)
{
    for (;;) {
        kle_sm_action a;
        pthread_mutex_lock(&e->mu);
        int any = kle_sm_next(e->sm, &a);
        char *holder = NULL;
        if (any && a.kind == KLE_SM_NEW_LEADER) {
            /* The callback gets a C string: up to a NUL, if any. */
            holder = strdup(a.holder ? a.holder : "");
        }
        pthread_mutex_unlock(&e->mu);
        if (!any)
            return;
        switch (a.kind) {
        case KLE_SM_CALL:
            start_call(e, &a.call, a.call.cancellable);
            break;
        case KLE_SM_WATCH_START:
            watch_start(e);
            break;
        case KLE_SM_WATCH_STOP:
            watch_stop(e);
            break;
        case KLE_SM_TERM_START:
            term_start(e, a.deadline, a.token);
            break;
        case KLE_SM_TERM_EXTEND:
            term_extend(e, a.deadline);
            break;
        case KLE_SM_TERM_END:
            term_end(e);
            break;
        case KLE_SM_NEW_LEADER:
            if (holder && e->cb.on_new_leader)
                e->cb.on_new_leader(holder, e->cb.data);
            break;
        case KLE_SM_DONE:
            e->done = 1;
            e->run_rc = a.rc;
            break;
        default:
            break;
        }
        free(holder);
    }
}

static void on_timer(kle_loop *loop, kle_loop_timer *t, void *data)
{
    (void)loop, (void)t;
    kle_elector *e = data;
    pthread_mutex_lock(&e->mu);
    kle_sm_tick(e->sm, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
}

int kle_elector_run(kle_elector *e)
{
    if (!e)
        return kle_error_set(KLE_EINVAL, "kle_elector_run: elector is NULL");
    if (atomic_exchange(&e->running, 1))
        return kle_error_set(KLE_ESTATE, "kle_elector_run: %s is already running", e->name);
    int rc = 0;
    e->done = 0;
    e->run_rc = 0;
    e->work_failed_rc = 0;
    if (!e->next_handle && !(e->next_handle = handle_new(e))) {
        rc = kle_error_set(KLE_ESYSTEM, "kle_elector_run: %s: cannot make a leading handle",
                           e->name);
        goto out;
    }
    if (e->async && e->lock->attach(e->lock, e->loop) < 0) {
        rc = kle_error_prefix("kle_elector_run: %s: ", e->name);
        goto out;
    }
    if (worker_start(e) < 0) {
        rc = kle_error_prefix("kle_elector_run: %s: ", e->name);
        goto detach;
    }
    pthread_mutex_lock(&e->mu);
    kle_sm_start(e->sm, now_ns(e), wall_ns(e));
    if (atomic_load(&e->stop_requested))
        kle_sm_stop(e->sm, now_ns(e), wall_ns(e));
    pthread_mutex_unlock(&e->mu);
    int stopped = 0;
    for (;;) {
        run_actions(e);
        if (e->done)
            break;
        if (!stopped && atomic_load(&e->stop_requested)) {
            stopped = 1;
            if (e->cancel)
                kle_event_set(e->cancel); /* A call of the campaign returns at once. */
            if (e->async && e->acall_running && e->acall_cancellable) {
                /* The same for an asynchronous one: abandoned, answered as cancelled. */
                e->lock->abandon(e->lock, &e->acall);
                e->acall_running = 0;
                feed_answer(e, e->aid, KLE_ECANCELED, e->asent, NULL, "cancelled by a stop");
            }
            pthread_mutex_lock(&e->mu);
            kle_sm_stop(e->sm, now_ns(e), wall_ns(e));
            pthread_mutex_unlock(&e->mu);
            continue;
        }
        pthread_mutex_lock(&e->mu);
        int64_t at = kle_sm_wake_at(e->sm);
        pthread_mutex_unlock(&e->mu);
        if (at != INT64_MAX)
            kle_loop_timer_arm(e->loop, &e->timer, at, on_timer, e);
        else
            kle_loop_timer_disarm(e->loop, &e->timer);
        kle_loop_dispatch(e->loop, -1);
        if (e->handle && !e->cb_started && atomic_load(&e->callback_done))
            term_release_handle(e);
    }
    kle_loop_timer_disarm(e->loop, &e->timer);
    if (e->cb_started) {
        /* Cannot be: DONE comes after the work returned. */
        pthread_join(e->cb_thread, NULL);
        e->cb_started = 0;
    }
    term_release_handle(e);
    rc = e->work_failed_rc ? e->work_failed_rc : e->run_rc;
    if (rc == KLE_ETIMEOUT)
        kle_error_set(KLE_ETIMEOUT, "leadership of %s lost: no renewal succeeded in time", e->name);
    else if (rc == KLE_ECONFLICT)
        kle_error_set(KLE_ECONFLICT,
                      "leadership of %s lost: another holder wrote the lock after this "
                      "elector's last write",
                      e->name);
    else if (rc == KLE_EIDENTITY)
        KLE_LOG_E("%s", kle_error_set(KLE_EIDENTITY,
                                      "lock %s is written by another replica under this "
                                      "elector's identity \"%s\": identities must be unique; "
                                      "not leading under it",
                                      e->name, e->identity) < 0
                            ? kle_error_last()->message
                            : "");
    else if (rc < 0)
        kle_error_set(rc, "kle_elector_run: %s: %s", e->name, kle_strerror(rc));
    watch_stop(e);
    if (e->acall_running) {
        e->lock->abandon(e->lock, &e->acall);
        e->acall_running = 0;
    }
    worker_stop(e);
    /* Answers and events of this run that are still queued are dropped. */
    kle_loop_dispatch(e->loop, 0);
detach:
    if (e->async)
        e->lock->attach(e->lock, NULL);
out:
    e->cb.on_stopped_leading(e->cb.data);
    atomic_store(&e->running, 0);
    if (rc < 0 && kle_error_last()->code != rc)
        kle_error_set(rc, "kle_elector_run: %s: %s", e->name, kle_strerror(rc));
    return rc;
}

void kle_elector_stop(kle_elector *e)
{
    if (!e)
        return;
    atomic_store(&e->stop_requested, 1);
    kle_loop_wake(e->loop);
}

/* ---- questions ------------------------------------------------------------- */

int kle_elector_is_leader(kle_elector *e)
{
    if (!e)
        return 0;
    int64_t now = now_ns(e);
    pthread_mutex_lock(&e->mu);
    int leader = kle_sm_leading(e->sm, now);
    pthread_mutex_unlock(&e->mu);
    return leader;
}

int kle_elector_leader(char **out, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_leader: out and elector are required");
    pthread_mutex_lock(&e->mu);
    kle_record r;
    *out = strdup(kle_sm_observed(e->sm, &r, NULL) ? kle_record_holder(&r) : "");
    pthread_mutex_unlock(&e->mu);
    return *out ? 0 : kle_error_set(KLE_ENOMEM, "kle_elector_leader: out of memory");
}

int kle_elector_observed(kle_record *out, int64_t *out_age_ns, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_observed: out and elector are required");
    if (kle_record_init(out, out->version) < 0)
        return kle_error_prefix("kle_elector_observed: ");
    int64_t now = now_ns(e), at = 0;
    pthread_mutex_lock(&e->mu);
    kle_record r;
    int seen = kle_sm_observed(e->sm, &r, &at);
    int rc = seen ? kle_record_copy(out, &r)
                  : kle_error_set(KLE_ENOTFOUND, "%s: no record observed yet", e->name);
    if (out_age_ns)
        *out_age_ns = seen ? now - at : 0;
    pthread_mutex_unlock(&e->mu);
    return rc;
}

int kle_elector_check_ns(kle_elector *e, int64_t max_tolerable_expired_ns)
{
    if (!e)
        return kle_error_set(KLE_EINVAL, "kle_elector_check_ns: elector is NULL");
    int64_t now = now_ns(e), at = 0;
    pthread_mutex_lock(&e->mu);
    int mine = kle_sm_observed_is_own(e->sm);
    kle_sm_observed(e->sm, NULL, &at);
    pthread_mutex_unlock(&e->mu);
    int64_t limit = max_tolerable_expired_ns > INT64_MAX - e->lease_duration
                        ? INT64_MAX
                        : e->lease_duration + max_tolerable_expired_ns;
    if (mine && now - at > limit)
        return kle_error_set(KLE_EUNHEALTHY, "failed election to renew leadership on lease %s",
                             e->name);
    return 0;
}

int kle_elector_config_init(kle_elector_config *config, unsigned int version)
{
    /* A version-1 struct ends before follow. */
    KLE__INIT_STRUCT("kle_elector_config_init", config, version, KLE_ELECTOR_CONFIG_VERSION,
                     kle_elector_config, KLE_ELECTOR_CONFIG_INIT,
                     version == 1 ? offsetof(kle_elector_config, follow)
                                  : sizeof(kle_elector_config));
    return 0;
}

/* The size of kle_elector_stats at @p version: version 1 ends at releases. */
static size_t stats_size(unsigned int version)
{
    return version == 1   ? offsetof(kle_elector_stats, releases) + sizeof(uint64_t)
           : version == 2 ? offsetof(kle_elector_stats, stepdowns) + sizeof(uint64_t)
                          : sizeof(kle_elector_stats);
}

int kle_elector_stats_init(kle_elector_stats *stats, unsigned int version)
{
    KLE__INIT_STRUCT("kle_elector_stats_init", stats, version, KLE_ELECTOR_STATS_VERSION,
                     kle_elector_stats, KLE_ELECTOR_STATS_INIT, stats_size(version));
    return 0;
}

int kle_elector_get_stats(kle_elector_stats *out, kle_elector *e)
{
    if (!out || !e)
        return kle_error_set(KLE_EINVAL, "kle_elector_get_stats: out and elector are required");
    unsigned int version = out->version;
    if (version < 1 || version > KLE_ELECTOR_STATS_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "kle_elector_get_stats: stats version %u is not supported "
                             "(initialise it with KLE_ELECTOR_STATS_INIT)",
                             version);
    int running = atomic_load(&e->running) != 0;
    int64_t now = now_ns(e);
    kle_sm_stats ss;
    pthread_mutex_lock(&e->mu);
    kle_sm_get_stats(e->sm, &ss);
    int leader = kle_sm_leading(e->sm, now);
    pthread_mutex_unlock(&e->mu);
    kle_elector_stats s;
    memset(&s, 0, sizeof(s));
    s.leader = leader;
    s.slowpath_total = ss.slowpath_total;
    s.tries = ss.tries;
    s.failed_tries = ss.failed_tries;
    s.acquisitions = ss.acquisitions;
    s.losses = ss.losses;
    s.releases = ss.releases;
    s.round_age_ns = running ? now - ss.last_progress : -1;
    s.last_call_error = ss.last_call_error;
    s.watching = ss.watching;
    s.watch_events = ss.watch_events;
    s.watch_restarts = ss.watch_restarts;
    s.stepdowns = ss.stepdowns;
    s.token = ss.token;
    s.last_renew_wall_ns = ss.last_renew_wall;
    s.version = version;
    /* Each version copies only the members it has. */
    memcpy(out, &s, stats_size(version));
    return 0;
}

const char *kle_elector_identity(kle_elector *e)
{
    return e ? e->identity : "";
}

const char *kle_elector__metrics_name(kle_elector *e)
{
    return e->metrics_name;
}

void kle_elector_free(kle_elector *e)
{
    if (!e)
        return;
    kle_lock_free(e->lock);
    kle_leading_unref(e->next_handle);
    job_clear(&e->pending);
    job_clear(&e->finished);
    kle_lock_result_dispose(&e->aresult);
    free_parts(e);
    pthread_mutex_destroy(&e->mu);
    pthread_mutex_destroy(&e->jmu);
    pthread_mutex_destroy(&e->wmu);
    free(e);
}

/* ---- the leading handle --------------------------------------------------------- */

int kle_leading_fd(const kle_leading *h)
{
    return h ? kle_event_fd(h->ended) : -1;
}

int kle_leading_wait_ns(kle_leading *h, int64_t timeout_ns)
{
    if (!h)
        return kle_error_set(KLE_EINVAL, "kle_leading_wait_ns: handle is NULL");
    if (kle_event_is_set(h->ended))
        return 0; /* Also for a handle kept after its term: no clock needed. */
    kle_clock *clock = h->clock;
    int64_t now = kle_clock_monotonic_ns(clock);
    int64_t deadline =
        timeout_ns < 0 || timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
    if (clock != kle_clock_real())
        return kle_clock_wait(clock, h->ended, deadline);
    /* With the real clock the end is the handle's own timerfd, which the
     * kernel makes readable at the deadline: only the caller's timeout is
     * relative here, so no timer of the thread's own is needed. */
    for (;;) {
        if (kle_event_is_set(h->ended))
            return 0;
        now = kle_clock_monotonic_ns(clock);
        if (deadline != INT64_MAX && now >= deadline)
            return KLE_ETIMEOUT;
        struct pollfd p = {.fd = kle_event_fd(h->ended), .events = POLLIN};
        struct timespec rel, *relp = NULL;
        if (deadline != INT64_MAX) {
            rel.tv_sec = (time_t)((deadline - now) / KLE_NS_PER_SEC);
            rel.tv_nsec = (long)((deadline - now) % KLE_NS_PER_SEC);
            relp = &rel;
        }
        ppoll(&p, 1, relp, NULL);
    }
}

int kle_leading_is_over(const kle_leading *h)
{
    return h && kle_event_is_set(h->ended);
}

int kle_leading_transitions(const kle_leading *h)
{
    return h ? h->transitions : 0;
}

int64_t kle_leading_deadline_ns(kle_leading *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    if (h->extended)
        kle_event_reset(h->extended);
    int64_t d = atomic_load(&h->deadline);
    h->deadline_read = d;
    pthread_mutex_unlock(&h->mu);
    return d;
}

int kle_leading_deadline_fd(const kle_leading *ch)
{
    kle_leading *h = (kle_leading *)ch;
    if (!h)
        return -1;
    /* Made on first use: a leader that never asks costs no descriptor. */
    pthread_mutex_lock(&h->mu);
    if (!h->extended && kle_event_new(&h->extended) == 0 &&
        atomic_load(&h->deadline) != h->deadline_read)
        kle_event_set(h->extended); /* It moved since last read. */
    int fd = h->extended ? kle_event_fd(h->extended) : -1;
    pthread_mutex_unlock(&h->mu);
    return fd;
}

kle_elector *kle_leading_elector(kle_leading *h)
{
    if (!h)
        return NULL;
    pthread_mutex_lock(&h->mu);
    kle_elector *e = h->elector;
    pthread_mutex_unlock(&h->mu);
    return e;
}

kle_leading *kle_leading_ref(kle_leading *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
    return h;
}

void kle_leading_unref(kle_leading *h)
{
    if (!h || atomic_fetch_sub(&h->refs, 1) != 1)
        return;
    kle_event_free(h->ended);
    kle_event_free(h->extended); /* NULL when never asked for */
    pthread_mutex_destroy(&h->mu);
    free(h);
}
