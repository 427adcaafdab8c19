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
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "locks/record_json.h"

typedef struct multi_lock {
    kle_lock base;
    kle_lock *primary;
    kle_lock *secondary;
    int secondary_missing; /* The last read found no secondary: create it. */
    int primary_found;     /* The last read found the primary. */
} multi_lock;

/*
 * One deadline for the whole call: each sub-call gets what is left of the
 * caller's timeout, so the MultiLock returns by ctx->timeout_ns from its
 * start whatever its parts do.
 */
typedef struct multi_call {
    kle_lock_ctx ctx;
    int64_t deadline;
} multi_call;

static int64_t mono_now(void)
{
    return kle_clock_monotonic_ns(kle_clock_real());
}

static void call_start(multi_call *c, const kle_lock_ctx *ctx)
{
    int64_t now = mono_now(), t = ctx->timeout_ns > 0 ? ctx->timeout_ns : 0;
    c->ctx = *ctx;
    c->ctx.version = KLE_LOCK_CTX_VERSION;
    c->deadline = now > INT64_MAX - t ? INT64_MAX : now + t;
}

/* The context of the next sub-call: what is left (<= 0: the part times out at once). */
static const kle_lock_ctx *call_left(multi_call *c)
{
    c->ctx.timeout_ns = c->deadline - mono_now();
    if (c->ctx.timeout_ns <= 0)
        c->ctx.timeout_ns = -1;
    return &c->ctx;
}

static int ml_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    multi_lock *m = (multi_lock *)self;
    multi_call c;
    call_start(&c, ctx);
    kle_lock_result p = KLE_LOCK_RESULT_INIT, s = KLE_LOCK_RESULT_INIT;
    int rc = kle_lock_get(&p, m->primary, call_left(&c));
    m->primary_found = rc == 0;
    if (rc < 0)
        return rc;
    rc = kle_lock_get(&s, m->secondary, call_left(&c));
    m->secondary_missing = rc == KLE_ENOTFOUND;
    if (rc < 0) {
        /* The lock is still held through the old object only. */
        if (rc == KLE_ENOTFOUND &&
            !kle_record_holder_is(&p.record, kle_lock_identity(m->primary))) {
            *out = p;
            return 0;
        }
        kle_lock_result_dispose(&p);
        return rc;
    }
    char *praw = p.raw;
    size_t praw_len = p.raw_len;
    if (!kle_record_holder_equal(&p.record, &s.record)) {
        rc = kle_record_set_holder(&p.record, KLE_UNKNOWN_LEADER, strlen(KLE_UNKNOWN_LEADER));
        if (rc == 0)
            rc = kle_locks__raw_record(&praw, &praw_len, &p.record);
        if (rc < 0) {
            kle_lock_result_dispose(&p);
            kle_lock_result_dispose(&s);
            return rc;
        }
    }
    size_t len = praw_len + 1 + s.raw_len;
    size_t rvlen = (p.resource_version ? strlen(p.resource_version) : 0) +
                   (s.resource_version ? strlen(s.resource_version) : 0) + 2;
    out->raw = malloc(len + 1);
    out->resource_version = malloc(rvlen);
    if (out->raw && out->resource_version) {
        memcpy(out->raw, praw, praw_len);
        out->raw[praw_len] = ',';
        memcpy(out->raw + praw_len + 1, s.raw, s.raw_len);
        out->raw[len] = '\0';
        out->raw_len = len;
        snprintf(out->resource_version, rvlen, "%s,%s",
                 p.resource_version ? p.resource_version : "",
                 s.resource_version ? s.resource_version : "");
        out->record = p.record;
        kle_record_init(&p.record, KLE_RECORD_VERSION);
        rc = 0;
    } else {
        rc = kle_error_set(KLE_ENOMEM, "multi lock: out of memory");
    }
    if (praw != p.raw)
        free(praw);
    kle_lock_result_dispose(&p);
    kle_lock_result_dispose(&s);
    return rc;
}

/*
 * Called after get said "not found": either nothing exists, or the primary
 * names us and the secondary is missing. client-go v0.26 creates the primary
 * and ignores AlreadyExists, which lets a candidate that lost the race to
 * create the primary go on to create the secondary and lead as well. Here a
 * primary we read is updated (conditionally) instead, and AlreadyExists on
 * the primary is a failure.
 */
static int ml_create(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    multi_lock *m = (multi_lock *)self;
    multi_call c;
    call_start(&c, ctx);
    int rc = m->primary_found ? kle_lock_update(m->primary, record, call_left(&c))
                              : kle_lock_create(m->primary, record, call_left(&c));
    if (rc < 0)
        return rc;
    m->primary_found = 1;
    rc = kle_lock_create(m->secondary, record, call_left(&c));
    if (rc == 0)
        m->secondary_missing = 0;
    return rc;
}

/*
 * Writes the primary, then the secondary. Unlike client-go v0.26, which
 * re-reads the secondary just before writing it (making that write
 * unconditional), the secondary write stays conditional on what this lock
 * last read or wrote: otherwise a Lease-only candidate and a MultiLock
 * candidate could both win the same takeover while the two lock types run
 * side by side. A conflict on the secondary fails the update; the two
 * records then disagree and every candidate waits for them to expire.
 */
static int ml_update(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    multi_lock *m = (multi_lock *)self;
    multi_call c;
    call_start(&c, ctx);
    int rc = kle_lock_update(m->primary, record, call_left(&c));
    if (rc < 0)
        return rc;
    if (m->secondary_missing)
        rc = kle_lock_create(m->secondary, record, call_left(&c));
    else
        rc = kle_lock_update(m->secondary, record, call_left(&c));
    if (rc == 0)
        m->secondary_missing = 0;
    return rc;
}

static int ml_record_event(kle_lock *self, const char *message, const kle_lock_ctx *ctx)
{
    multi_lock *m = (multi_lock *)self;
    multi_call c;
    call_start(&c, ctx);
    int a = kle_lock_record_event(m->primary, message, call_left(&c));
    int b = kle_lock_record_event(m->secondary, message, call_left(&c));
    return a < 0 ? a : b;
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
    kle_lock_free(m->primary);
    kle_lock_free(m->secondary);
    free(m);
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
     * migration. See docs/architecture.md, "Watch mode". */
    m->base = (kle_lock){KLE_LOCK_VERSION,
                         ml_get,
                         ml_create,
                         ml_update,
                         ml_record_event,
                         ml_identity,
                         ml_describe,
                         ml_free,
                         NULL,
                         NULL,
                         NULL,
                         NULL,
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
    multi_call c;
    call_start(&c, ctx ? ctx : &default_ctx);
    *out_primary_rc = kle_lock_get(out_primary, m->primary, call_left(&c));
    *out_secondary_rc = kle_lock_get(out_secondary, m->secondary, call_left(&c));
    return 0;
}
