#include "base/versioned.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "election/lock_internal.h"

#include <stdlib.h>
#include <string.h>

void kle_lock_result_dispose(kle_lock_result *result)
{
    if (!result)
        return;
    kle_record_dispose(&result->record);
    free(result->raw);
    free(result->resource_version);
    unsigned int version = result->version, record_version = result->record.version;
    memset(result, 0, sizeof(*result));
    result->version = version;
    result->record.version = record_version;
}

int kle_lock_result_init(kle_lock_result *result, unsigned int version)
{
    if (!result)
        return kle_error_set(KLE_EINVAL, "kle_lock_result_init: result is NULL");
    KLE__CHECK_VERSION(version, KLE_LOCK_RESULT_VERSION, "kle_lock_result_init:");
    memset(result, 0, sizeof(*result)); /* Version 1 is the whole current layout. */
    result->version = version;
    result->record.version = 1; /* The record version that result version 1 holds. */
    return 0;
}

int kle_lock_ctx_init(kle_lock_ctx *ctx, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_lock_ctx_init", ctx, version, KLE_LOCK_CTX_VERSION, kle_lock_ctx,
                     KLE_LOCK_CTX_INIT, sizeof(*ctx));
    return 0;
}

int kle_lock_validate(const kle_lock *lock)
{
    if (!lock)
        return kle_error_set(KLE_EINVAL, "lock: lock is NULL");
    if (lock->version < 1 || lock->version > KLE_LOCK_VERSION)
        return kle_error_set(KLE_EVERSION, "lock: vtable version %u is not supported (1 to %d)",
                             lock->version, KLE_LOCK_VERSION);
    const char *missing = !lock->get        ? "get"
                          : !lock->create   ? "create"
                          : !lock->update   ? "update"
                          : !lock->identity ? "identity"
                          : !lock->describe ? "describe"
                          : !lock->free     ? "free"
                                            : NULL;
    if (missing)
        return kle_error_set(KLE_EINVAL, "lock: required vtable member %s is NULL", missing);
    if (lock->version >= 3) {
        int calls = !!lock->attach + !!lock->start + !!lock->abandon;
        if (calls != 0 && calls != 3)
            return kle_error_set(KLE_EINVAL, "lock: vtable members attach, start and abandon "
                                             "must be set together (version 3)");
        int watch = !!lock->watch_start + !!lock->watch_stop;
        if (watch == 1 || (watch == 2 && calls == 0))
            return kle_error_set(KLE_EINVAL, "lock: vtable members watch_start and watch_stop "
                                             "must be set together, with attach, start and "
                                             "abandon (version 3)");
    }
    return 0;
}

int kle_lock__async(const kle_lock *lock)
{
    return lock && lock->version >= 3 && lock->version <= KLE_LOCK_VERSION && lock->start != NULL;
}

int kle_lock__async_watch(const kle_lock *lock)
{
    return kle_lock__async(lock) && lock->watch_start != NULL;
}

static const kle_lock_ctx default_ctx = KLE_LOCK_CTX_INIT;

static int check_call(kle_lock *lock, const kle_lock_ctx **ctx, const char *what)
{
    int rc = kle_lock_validate(lock);
    if (rc < 0)
        return kle_error_prefix("%s: ", what);
    if (!*ctx)
        *ctx = &default_ctx;
    if ((*ctx)->version < 1 || (*ctx)->version > KLE_LOCK_CTX_VERSION)
        return kle_error_set(KLE_EVERSION, "%s: kle_lock_ctx version %u is not supported", what,
                             (*ctx)->version);
    return 0;
}

/* A backend that fails without recording details still gives a message. */
static int ensure_detail(int rc, kle_lock *lock, const char *what)
{
    if (rc < 0 && kle_error_last()->code != rc)
        kle_error_set(rc, "%s %s: %s", what, lock->describe(lock), kle_strerror(rc));
    return rc;
}

int kle_lock_get(kle_lock_result *out, kle_lock *lock, const kle_lock_ctx *ctx)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_lock_get: out is NULL");
    if (out->version < 1 || out->version > KLE_LOCK_RESULT_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "kle_lock_get: kle_lock_result version %u is not supported "
                             "(initialise it with KLE_LOCK_RESULT_INIT)",
                             out->version);
    kle_lock_result_init(out, out->version);
    int rc = check_call(lock, &ctx, "kle_lock_get");
    if (rc < 0)
        return rc;
    rc = ensure_detail(lock->get(out, lock, ctx), lock, "get");
    if (rc < 0) {
        kle_lock_result_dispose(out);
        return rc;
    }
    if (!out->raw) {
        kle_lock_result_dispose(out);
        return kle_error_set(KLE_EBADRECORD, "get %s: the backend returned no raw record",
                             lock->describe(lock));
    }
    return 0;
}

int kle_lock_create(kle_lock *lock, const kle_record *record, const kle_lock_ctx *ctx)
{
    if (!record)
        return kle_error_set(KLE_EINVAL, "kle_lock_create: record is NULL");
    KLE__CHECK_VERSION(record->version, KLE_RECORD_VERSION, "kle_lock_create: kle_record");
    int rc = check_call(lock, &ctx, "kle_lock_create");
    if (rc < 0)
        return rc;
    return ensure_detail(lock->create(lock, record, ctx), lock, "create");
}

int kle_lock_update(kle_lock *lock, const kle_record *record, const kle_lock_ctx *ctx)
{
    if (!record)
        return kle_error_set(KLE_EINVAL, "kle_lock_update: record is NULL");
    KLE__CHECK_VERSION(record->version, KLE_RECORD_VERSION, "kle_lock_update: kle_record");
    int rc = check_call(lock, &ctx, "kle_lock_update");
    if (rc < 0)
        return rc;
    return ensure_detail(lock->update(lock, record, ctx), lock, "update");
}

int kle_lock_record_event(kle_lock *lock, const char *message, const kle_lock_ctx *ctx)
{
    int rc = check_call(lock, &ctx, "kle_lock_record_event");
    if (rc < 0)
        return rc;
    if (!lock->record_event || !message)
        return 0;
    return ensure_detail(lock->record_event(lock, message, ctx), lock, "record event on");
}

const char *kle_lock_identity(kle_lock *lock)
{
    const char *id = lock && lock->identity ? lock->identity(lock) : NULL;
    return id ? id : "";
}

const char *kle_lock_describe(kle_lock *lock)
{
    const char *d = lock && lock->describe ? lock->describe(lock) : NULL;
    return d ? d : "";
}

void kle_lock_free(kle_lock *lock)
{
    if (lock && lock->free)
        lock->free(lock);
}

int kle_lock_watch_opts_init(kle_lock_watch_opts *opts, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_lock_watch_opts_init", opts, version, KLE_LOCK_WATCH_OPTS_VERSION,
                     kle_lock_watch_opts, KLE_LOCK_WATCH_OPTS_INIT, sizeof(*opts));
    return 0;
}

int kle_lock_can_watch(const kle_lock *lock)
{
    /* A version-1 vtable ends at free: its watch member must not be read. */
    return lock && lock->version >= 2 && lock->version <= KLE_LOCK_VERSION && lock->watch != NULL;
}

int kle_lock_watch(kle_lock *lock, const kle_lock_watch_opts *opts, kle_lock_watch_fn fn,
                   void *data)
{
    static const kle_lock_watch_opts defaults = KLE_LOCK_WATCH_OPTS_INIT;
    int rc = kle_lock_validate(lock);
    if (rc < 0)
        return kle_error_prefix("kle_lock_watch: ");
    if (!fn)
        return kle_error_set(KLE_EINVAL, "kle_lock_watch: fn is NULL");
    if (!opts)
        opts = &defaults;
    if (opts->version < 1 || opts->version > KLE_LOCK_WATCH_OPTS_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "kle_lock_watch: kle_lock_watch_opts version %u is not "
                             "supported",
                             opts->version);
    if (!kle_lock_can_watch(lock))
        return kle_error_set(KLE_ESTATE, "watch %s: this lock cannot watch (vtable version %u)",
                             lock->describe(lock), lock->version);
    return ensure_detail(lock->watch(lock, opts, fn, data), lock, "watch");
}
