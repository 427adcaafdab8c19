/* Test harness: runs the lock calls of a test (kle_lock_get, _create,
 * _update, _record_event) through the asynchronous members of a version-3
 * lock (attach, start, done) on one loop, when the test is compiled with
 * KLE_TEST_LOCK_CALLS_ASYNC; otherwise it changes nothing.
 *
 * Include it after kle/lock.h in a test whose cases call those functions:
 * the same cases then run once through the synchronous members and once,
 * built again with the definition, through start and done. A call blocks
 * the test by dispatching its thread's loop until done runs; it is
 * abandoned when ctx->cancel is set. A lock is attached to the loop of the
 * thread that calls it (moved when another thread calls it next) and stays
 * attached until it is freed. The loops live until the process ends.
 */
#ifndef KLE_TESTS_SUPPORT_LOCK_CALLS_H
#define KLE_TESTS_SUPPORT_LOCK_CALLS_H

#ifdef KLE_TEST_LOCK_CALLS_ASYNC

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "kle/sys/loop.h"

/* One loop per thread (a loop runs on one thread); all of them kept here. */
static _Thread_local kle_loop *lock_calls_loop;
static kle_loop *lock_calls_loops[256];
static pthread_mutex_t lock_calls_mu = PTHREAD_MUTEX_INITIALIZER;

static inline kle_loop *lock_calls_thread_loop(void)
{
    if (lock_calls_loop)
        return lock_calls_loop;
    if (kle_loop_new(&lock_calls_loop, NULL) != 0)
        abort();
    pthread_mutex_lock(&lock_calls_mu);
    size_t i = 0;
    while (i < 256 && lock_calls_loops[i])
        i++;
    if (i == 256)
        abort();
    lock_calls_loops[i] = lock_calls_loop;
    pthread_mutex_unlock(&lock_calls_mu);
    return lock_calls_loop;
}

typedef struct lock_calls_done {
    int done;
    int rc;
} lock_calls_done;

static inline void lock_calls_on_done(kle_lock_call *call, int rc, void *data)
{
    lock_calls_done *d = data;
    if (d->done) {
        fprintf(stderr, "lock_calls: done ran twice\n");
        abort();
    }
    d->done = 1;
    d->rc = rc;
}

static inline int lock_calls_run(kle_lock *lock, kle_lock_call *call, const kle_lock_ctx *ctx)
{
    static const kle_lock_ctx defaults = KLE_LOCK_CTX_INIT;
    if (!ctx)
        ctx = &defaults;
    if (!lock || lock->version < 3 || !lock->start) {
        fprintf(stderr, "lock_calls: a lock without asynchronous calls\n");
        abort();
    }
    kle_loop *loop = lock_calls_thread_loop();
    int rc = lock->attach(lock, loop);
    if (rc == KLE_ESTATE && lock->attach(lock, NULL) == 0)
        rc = lock->attach(lock, loop); /* last called from another thread */
    if (rc)
        return rc;
    lock_calls_done d = {0, 0};
    call->version = KLE_LOCK_CALL_VERSION;
    call->timeout_ns = ctx->timeout_ns;
    call->done = lock_calls_on_done;
    call->data = &d;
    if ((rc = lock->start(lock, call)) != 0)
        return rc;
    /* done never runs from within start. */
    if (d.done) {
        fprintf(stderr, "lock_calls: done ran from within start\n");
        abort();
    }
    while (!d.done) {
        if (ctx->cancel && kle_event_is_set(ctx->cancel)) {
            lock->abandon(lock, call);
            return kle_error_set(KLE_ECANCELED, "%s: cancelled", lock->describe(lock));
        }
        kle_loop_dispatch(loop, ctx->cancel ? 10 * KLE_NS_PER_MS : -1);
    }
    return d.rc;
}

static inline int lock_calls_get(kle_lock_result *out, kle_lock *lock, const kle_lock_ctx *ctx)
{
    kle_lock_call call = {0};
    call.kind = KLE_LOCK_CALL_GET;
    call.result = out;
    int rc = lock_calls_run(lock, &call, ctx);
    if (rc == 0 && !out->raw) {
        fprintf(stderr, "lock_calls: get returned no raw record\n");
        abort();
    }
    return rc;
}

static inline int lock_calls_write(kle_lock *lock, kle_lock_call_kind kind,
                                   const kle_record *record, const kle_lock_ctx *ctx)
{
    kle_lock_call call = {0};
    call.kind = kind;
    call.record = record;
    return lock_calls_run(lock, &call, ctx);
}

static inline int lock_calls_event(kle_lock *lock, const char *message, const kle_lock_ctx *ctx)
{
    kle_lock_call call = {0};
    call.kind = KLE_LOCK_CALL_EVENT;
    call.message = message;
    return lock_calls_run(lock, &call, ctx);
}

#define kle_lock_get(out, lock, ctx) lock_calls_get((out), (lock), (ctx))
#define kle_lock_create(lock, record, ctx)                                                         \
    lock_calls_write((lock), KLE_LOCK_CALL_CREATE, (record), (ctx))
#define kle_lock_update(lock, record, ctx)                                                         \
    lock_calls_write((lock), KLE_LOCK_CALL_UPDATE, (record), (ctx))
#define kle_lock_record_event(lock, message, ctx) lock_calls_event((lock), (message), (ctx))

#endif

#endif
