/*
 * MultiLock: an old-style primary (Endpoints or ConfigMap) and a Lease
 * secondary, for migrating between lock types one release at a time.
 * Semantics as client-go v0.26's MultiLock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/clock.h"
#include "kle/locks.h"
#include "base/versioned.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "locks/record_json.h"

typedef struct ml_op ml_op;

typedef struct multi_lock {
    kle_lock base;
    kle_lock *primary;
    kle_lock *secondary;
    int secondary_missing; /* The last read found no secondary: create it. */
    int primary_found;     /* The last read found the primary. */
    /* Asynchronous calls (both parts asynchronous): one sub-call at a time. */
    kle_loop *loop;
    kle_lock_call *call; /* the call running, or NULL */
    ml_op *aop;          /* its state machine */
    kle_lock_call sub;   /* the part's call running */
    kle_loop_timer defer;
} multi_lock;

static int64_t mono_now(void)
{
    return kle_clock_monotonic_ns(kle_clock_real());
}

/*
 * ---- Calls as state machines of sub-calls ----
 *
 * Every call is a sequence of calls of its parts: ml_begin() and
 * ml_answer() name the next one (SUB: op->target, op->sub_kind, ...) or
 * end the call (DONE: op->rc, with the error recorded). One deadline for
 * the whole call: each part gets what is left of the caller's timeout, so
 * the MultiLock returns by its timeout whatever its parts do. The
 * synchronous members run the parts' synchronous members; the asynchronous
 * ones start the parts' asynchronous calls on the loop, in sequence.
 */

enum { ML_DONE = 0, ML_SUB = 1 };

enum ml_step {
    M_GET_P,
    M_GET_S,
    M_CREATE_P,
    M_CREATE_S,
    M_UPDATE_P,
    M_UPDATE_S,
    M_EVENT_P,
    M_EVENT_S
};

struct ml_op {
    kle_lock_call_kind kind;
    enum ml_step step;
    int64_t deadline;
    const kle_record *record;
    const char *message;
    kle_lock_result *out;
    kle_lock_result p, s; /* GET: the parts' records */
    int event_rc;         /* EVENT: the primary's */
    int rc;
    /* The sub-call to make. */
    kle_lock *target;
    kle_lock_call_kind sub_kind;
    const kle_record *sub_record;
    kle_lock_result *sub_out;
};

static void ml_op_init(ml_op *op, kle_lock_call_kind kind, int64_t timeout_ns)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    int64_t now = mono_now(), t = timeout_ns > 0 ? timeout_ns : 0;
    op->deadline = now > INT64_MAX - t ? INT64_MAX : now + t;
    kle_lock_result_init(&op->p, KLE_LOCK_RESULT_VERSION);
    kle_lock_result_init(&op->s, KLE_LOCK_RESULT_VERSION);
}

/* What is left of the call's time for the next part (<= 0: it times out at once). */
static int64_t ml_left(const ml_op *op)
{
    int64_t left = op->deadline - mono_now();
    return left <= 0 ? -1 : left;
}

static int ml_done(ml_op *op, int rc)
{
    op->rc = rc;
    kle_lock_result_dispose(&op->p);
    kle_lock_result_dispose(&op->s);
    return ML_DONE;
}

static int ml_sub(ml_op *op, enum ml_step step, kle_lock *target, kle_lock_call_kind kind,
                  const kle_record *record, kle_lock_result *out)
{
    op->step = step;
    op->target = target;
    op->sub_kind = kind;
    op->sub_record = record;
    op->sub_out = out;
    return ML_SUB;
}

/* The record of both parts: the primary's, its holder unknown when the
 * secondary disagrees; raw record and resourceVersion made of both. */
static int ml_combine(kle_lock_result *out, kle_lock_result *p, kle_lock_result *s)
{
    int rc;
    char *praw = p->raw;
    size_t praw_len = p->raw_len;
    if (!kle_record_holder_equal(&p->record, &s->record)) {
        rc = kle_record_set_holder(&p->record, KLE_UNKNOWN_LEADER, strlen(KLE_UNKNOWN_LEADER));
        if (rc == 0)
            rc = kle_locks__raw_record(&praw, &praw_len, &p->record);
        if (rc < 0)
            return rc;
    }
    size_t len = praw_len + 1 + s->raw_len;
    size_t rvlen = (p->resource_version ? strlen(p->resource_version) : 0) +
                   (s->resource_version ? strlen(s->resource_version) : 0) + 2;
    out->raw = malloc(len + 1);
    out->resource_version = malloc(rvlen);
    if (out->raw && out->resource_version) {
        memcpy(out->raw, praw, praw_len);
        out->raw[praw_len] = ',';
        memcpy(out->raw + praw_len + 1, s->raw, s->raw_len);
        out->raw[len] = '\0';
        out->raw_len = len;
        snprintf(out->resource_version, rvlen, "%s,%s",
                 p->resource_version ? p->resource_version : "",
                 s->resource_version ? s->resource_version : "");
        out->record = p->record;
        kle_record_init(&p->record, KLE_RECORD_VERSION);
        rc = 0;
    } else {
        rc = kle_error_set(KLE_ENOMEM, "multi lock: out of memory");
    }
    if (praw != p->raw)
        free(praw);
    return rc;
}

static int ml_begin(multi_lock *m, ml_op *op)
{
    switch (op->kind) {
    case KLE_LOCK_CALL_GET:
        return ml_sub(op, M_GET_P, m->primary, KLE_LOCK_CALL_GET, NULL, &op->p);
    case KLE_LOCK_CALL_CREATE:
        /*
         * Called after get said "not found": either nothing exists, or the
         * primary names us and the secondary is missing. client-go v0.26
         * creates the primary and ignores AlreadyExists, which lets a
         * candidate that lost the race to create the primary go on to
         * create the secondary and lead as well. Here a primary we read is
         * updated (conditionally) instead, and AlreadyExists on the primary
         * is a failure.
         */
        return ml_sub(op, M_CREATE_P, m->primary,
                      m->primary_found ? KLE_LOCK_CALL_UPDATE : KLE_LOCK_CALL_CREATE, op->record,
                      NULL);
    case KLE_LOCK_CALL_UPDATE:
        /*
         * Writes the primary, then the secondary. Unlike client-go v0.26,
         * which re-reads the secondary just before writing it (making that
         * write unconditional), the secondary write stays conditional on
         * what this lock last read or wrote: otherwise a Lease-only
         * candidate and a MultiLock candidate could both win the same
         * takeover while the two lock types run side by side. A conflict
         * on the secondary fails the update; the two records then disagree
         * and every candidate waits for them to expire.
         */
        return ml_sub(op, M_UPDATE_P, m->primary, KLE_LOCK_CALL_UPDATE, op->record, NULL);
    case KLE_LOCK_CALL_EVENT:
    default:
        return ml_sub(op, M_EVENT_P, m->primary, KLE_LOCK_CALL_EVENT, NULL, NULL);
    }
}

/* The answer @p rc of the part's call ml_begin or ml_answer asked for. */
static int ml_answer(multi_lock *m, ml_op *op, int rc)
{
    switch (op->step) {
    case M_GET_P:
        m->primary_found = rc == 0;
        if (rc < 0)
            return ml_done(op, rc);
        return ml_sub(op, M_GET_S, m->secondary, KLE_LOCK_CALL_GET, NULL, &op->s);
    case M_GET_S:
        m->secondary_missing = rc == KLE_ENOTFOUND;
        if (rc < 0) {
            /* The lock is still held through the old object only. */
            if (rc == KLE_ENOTFOUND &&
                !kle_record_holder_is(&op->p.record, kle_lock_identity(m->primary))) {
                *op->out = op->p;
                kle_lock_result_init(&op->p, KLE_LOCK_RESULT_VERSION);
                return ml_done(op, 0);
            }
            return ml_done(op, rc);
        }
        return ml_done(op, ml_combine(op->out, &op->p, &op->s));
    case M_CREATE_P:
        if (rc < 0)
            return ml_done(op, rc);
        m->primary_found = 1;
        return ml_sub(op, M_CREATE_S, m->secondary, KLE_LOCK_CALL_CREATE, op->record, NULL);
    case M_UPDATE_P:
        if (rc < 0)
            return ml_done(op, rc);
        return ml_sub(op, M_UPDATE_S, m->secondary,
                      m->secondary_missing ? KLE_LOCK_CALL_CREATE : KLE_LOCK_CALL_UPDATE,
                      op->record, NULL);
    case M_CREATE_S:
    case M_UPDATE_S:
        if (rc == 0)
            m->secondary_missing = 0;
        return ml_done(op, rc);
    case M_EVENT_P:
        op->event_rc = rc;
        return ml_sub(op, M_EVENT_S, m->secondary, KLE_LOCK_CALL_EVENT, NULL, NULL);
    case M_EVENT_S:
    default:
        return ml_done(op, op->event_rc < 0 ? op->event_rc : rc);
    }
}

/* ---- the synchronous members: the parts' synchronous members in turn ---- */

static int ml_run_sync(multi_lock *m, ml_op *op, const kle_lock_ctx *ctx)
{
    int r = ml_begin(m, op);
    while (r == ML_SUB) {
        kle_lock_ctx sub = *ctx;
        sub.version = KLE_LOCK_CTX_VERSION;
        sub.timeout_ns = ml_left(op);
        int rc;
        switch (op->sub_kind) {
        case KLE_LOCK_CALL_GET:
            rc = kle_lock_get(op->sub_out, op->target, &sub);
            break;
        case KLE_LOCK_CALL_CREATE:
            rc = kle_lock_create(op->target, op->sub_record, &sub);
            break;
        case KLE_LOCK_CALL_UPDATE:
            rc = kle_lock_update(op->target, op->sub_record, &sub);
            break;
        case KLE_LOCK_CALL_EVENT:
        default:
            rc = kle_lock_record_event(op->target, op->message, &sub);
            break;
        }
        r = ml_answer(m, op, rc);
    }
    return op->rc;
}

static int ml_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    ml_op op;
    ml_op_init(&op, KLE_LOCK_CALL_GET, ctx->timeout_ns);
    op.out = out;
    return ml_run_sync((multi_lock *)self, &op, ctx);
}

static int ml_create(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    ml_op op;
    ml_op_init(&op, KLE_LOCK_CALL_CREATE, ctx->timeout_ns);
    op.record = record;
    return ml_run_sync((multi_lock *)self, &op, ctx);
}

static int ml_update(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    ml_op op;
    ml_op_init(&op, KLE_LOCK_CALL_UPDATE, ctx->timeout_ns);
    op.record = record;
    return ml_run_sync((multi_lock *)self, &op, ctx);
}

static int ml_record_event(kle_lock *self, const char *message, const kle_lock_ctx *ctx)
{
    ml_op op;
    ml_op_init(&op, KLE_LOCK_CALL_EVENT, ctx->timeout_ns);
    op.message = message;
    return ml_run_sync((multi_lock *)self, &op, ctx);
}

/* ---- the asynchronous members: the parts' asynchronous calls in turn ---- */

static void ml_sub_done(kle_lock_call *sub, int rc, void *data);

/* Starts the parts' calls the machine asks for until one is under way (1)
 * or the call is over (0, op->rc). */
static int ml_run_async(multi_lock *m, int r)
{
    ml_op *op = m->aop;
    while (r == ML_SUB) {
        kle_lock_call init = {
            KLE_LOCK_CALL_VERSION,   KLE_LOCK_CALL_GET, NULL, NULL, 0, NULL, NULL, NULL,
            {NULL, NULL, NULL, NULL}};
        m->sub = init;
        m->sub.kind = op->sub_kind;
        m->sub.record = op->sub_record;
        m->sub.message = op->message;
        m->sub.timeout_ns = ml_left(op);
        m->sub.result = op->sub_out;
        m->sub.done = ml_sub_done;
        m->sub.data = m;
        int rc = op->target->start(op->target, &m->sub);
        if (rc == 0)
            return 1;
        r = ml_answer(m, op, rc);
    }
    return 0;
}

static void ml_finish(multi_lock *m, int rc)
{
    kle_lock_call *call = m->call;
    m->call = NULL;
    if (rc < 0 && call->kind == KLE_LOCK_CALL_GET)
        kle_lock_result_dispose(call->result);
    call->done(call, rc, call->data);
}

static void ml_sub_done(kle_lock_call *sub, int rc, void *data)
{
    multi_lock *m = data;
    if (ml_run_async(m, ml_answer(m, m->aop, rc)))
        return;
    ml_finish(m, m->aop->rc);
}

static void ml_deferred(kle_loop *loop, kle_loop_timer *t, void *data)
{
    ml_finish(data, 0);
}

static int ml_attach(kle_lock *self, kle_loop *loop)
{
    multi_lock *m = (multi_lock *)self;
    if (!loop) {
        if (m->call)
            return kle_error_set(KLE_ESTATE, "multi lock %s: a call still runs on its loop",
                                 kle_lock_describe(m->primary));
        int a = m->primary->attach(m->primary, NULL);
        int b = m->secondary->attach(m->secondary, NULL);
        m->loop = NULL;
        return a < 0 ? a : b;
    }
    if (m->loop)
        return m->loop == loop
                   ? 0
                   : kle_error_set(KLE_ESTATE, "multi lock %s: already attached to another loop",
                                   kle_lock_describe(m->primary));
    if (!m->aop && !(m->aop = calloc(1, sizeof(*m->aop))))
        return kle_error_set(KLE_ENOMEM, "multi lock: out of memory");
    int rc = m->primary->attach(m->primary, loop);
    if (rc < 0)
        return kle_error_prefix("multi lock: primary: ");
    rc = m->secondary->attach(m->secondary, loop);
    if (rc < 0) {
        kle_error_prefix("multi lock: secondary: ");
        m->primary->attach(m->primary, NULL);
        return rc;
    }
    m->loop = loop;
    return 0;
}

static int ml_start(kle_lock *self, kle_lock_call *call)
{
    multi_lock *m = (multi_lock *)self;
    if (!call || !call->done)
        return kle_error_set(KLE_EINVAL, "multi lock: a call needs a completion");
    KLE__CHECK_VERSION(call->version, KLE_LOCK_CALL_VERSION, "multi lock: kle_lock_call");
    if (!m->loop)
        return kle_error_set(KLE_ESTATE, "multi lock %s: not attached to a loop",
                             kle_lock_describe(m->primary));
    if (m->call)
        return kle_error_set(KLE_ESTATE, "multi lock %s: a call is already running",
                             kle_lock_describe(m->primary));
    if (call->kind == KLE_LOCK_CALL_GET &&
        (!call->result || kle_lock_result_init(call->result, call->result->version) < 0))
        return kle_error_set(KLE_EINVAL, "multi lock: get needs a result of a known version");
    if ((call->kind == KLE_LOCK_CALL_CREATE || call->kind == KLE_LOCK_CALL_UPDATE) && !call->record)
        return kle_error_set(KLE_EINVAL, "multi lock: the call needs a record");
    if ((unsigned)call->kind > KLE_LOCK_CALL_EVENT)
        return kle_error_set(KLE_EINVAL, "multi lock: unknown call kind %d", (int)call->kind);
    ml_op *op = m->aop;
    ml_op_init(op, call->kind, call->timeout_ns);
    op->record = call->record;
    op->message = call->message;
    op->out = call->result;
    m->call = call;
    int r = call->kind == KLE_LOCK_CALL_EVENT && !call->message ? ml_done(op, 0) : ml_begin(m, op);
    if (ml_run_async(m, r))
        return 0;
    if (op->rc < 0) {
        m->call = NULL;
        if (call->kind == KLE_LOCK_CALL_GET)
            kle_lock_result_dispose(call->result);
        return op->rc;
    }
    int rc = kle_loop_timer_arm(m->loop, &m->defer, kle_clock_monotonic_ns(kle_loop_clock(m->loop)),
                                ml_deferred, m);
    if (rc < 0)
        m->call = NULL;
    return rc;
}

static void ml_abandon(kle_lock *self, kle_lock_call *call)
{
    multi_lock *m = (multi_lock *)self;
    if (!call || m->call != call)
        return;
    if (m->aop->target)
        m->aop->target->abandon(m->aop->target, &m->sub);
    kle_loop_timer_disarm(m->loop, &m->defer);
    ml_done(m->aop, 0);
    if (call->kind == KLE_LOCK_CALL_GET)
        kle_lock_result_dispose(call->result);
    m->call = NULL;
}

static const char *ml_identity(kle_lock *self)
{
    return kle_lock_identity(((multi_lock *)self)->primary);
}

static const char *ml_describe(kle_lock *self)
{
    return kle_lock_describe(((multi_lock *)self)->primary);
}

static void ml_free(kle_lock *self)
{
    multi_lock *m = (multi_lock *)self;
    if (m->loop) {
        if (m->call)
            ml_abandon(self, m->call);
        ml_attach(self, NULL);
    }
    free(m->aop);
    kle_lock_free(m->primary);
    kle_lock_free(m->secondary);
    free(m);
}

/* 1 when @p lock offers asynchronous calls (a version-3 vtable with start). */
static int parts_async(const kle_lock *lock)
{
    return lock->version >= 3 && lock->version <= KLE_LOCK_VERSION && lock->start != NULL;
}

int kle_multi_lock_new(kle_lock **out, kle_lock *primary, kle_lock *secondary)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "multi lock: out is NULL");
    *out = NULL;
    if (kle_lock_validate(primary) < 0)
        return kle_error_prefix("multi lock: primary: ");
    if (kle_lock_validate(secondary) < 0)
        return kle_error_prefix("multi lock: secondary: ");
    if (kle_identity_check(kle_lock_identity(primary)) < 0)
        return kle_error_prefix("multi lock: primary: ");
    if (strcmp(kle_lock_identity(primary), kle_lock_identity(secondary)) != 0)
        return kle_error_set(KLE_EINVAL,
                             "multi lock: primary and secondary have different identities "
                             "(\"%s\" and \"%s\")",
                             kle_lock_identity(primary), kle_lock_identity(secondary));
    multi_lock *m = calloc(1, sizeof(*m));
    if (!m)
        return kle_error_set(KLE_ENOMEM, "multi lock: out of memory");
    /* No watch member: the MultiLock is polled. Its record is decided by
     * two objects (the primary's holder, unless the secondary disagrees,
     * and a raw record and resourceVersion made of both), which no single
     * stream shows in order; and it exists only for the few releases of a
     * migration. See docs/architecture.md, "Watch mode". Its calls are
     * asynchronous when both parts' are. */
    int async = parts_async(primary) && parts_async(secondary);
    m->base = (kle_lock){KLE_LOCK_VERSION,
                         ml_get,
                         ml_create,
                         ml_update,
                         ml_record_event,
                         ml_identity,
                         ml_describe,
                         ml_free,
                         NULL,
                         async ? ml_attach : NULL,
                         async ? ml_start : NULL,
                         async ? ml_abandon : NULL,
                         NULL,
                         NULL};
    m->primary = primary;
    m->secondary = secondary;
    *out = &m->base;
    return 0;
}

static const kle_lock_ctx default_ctx = KLE_LOCK_CTX_INIT;

int kle_multi_lock_get_both(kle_lock_result *out_primary, int *out_primary_rc,
                            kle_lock_result *out_secondary, int *out_secondary_rc, kle_lock *lock,
                            const kle_lock_ctx *ctx)
{
    if (!lock || lock->get != ml_get || !out_primary || !out_secondary || !out_primary_rc ||
        !out_secondary_rc)
        return kle_error_set(KLE_EINVAL, "kle_multi_lock_get_both: not a multi lock");
    multi_lock *m = (multi_lock *)lock;
    ctx = ctx ? ctx : &default_ctx;
    ml_op op; /* for its deadline: one for both reads */
    ml_op_init(&op, KLE_LOCK_CALL_GET, ctx->timeout_ns);
    kle_lock_ctx sub = *ctx;
    sub.version = KLE_LOCK_CTX_VERSION;
    sub.timeout_ns = ml_left(&op);
    *out_primary_rc = kle_lock_get(out_primary, m->primary, &sub);
    sub.timeout_ns = ml_left(&op);
    *out_secondary_rc = kle_lock_get(out_secondary, m->secondary, &sub);
    ml_done(&op, 0);
    return 0;
}
