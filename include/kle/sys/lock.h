/**
 * @file kle/sys/lock.h
 * @brief The lock vtable, for people who write their own lock backend.
 *
 * A backend embeds struct kle_lock as its first member and fills in the
 * members. Outputs come first, then self, then inputs. Every member that can
 * fail returns 0 or a negative kle_error_code and records details with
 * kle_error_set(). Members must honour ctx->timeout_ns and ctx->cancel.
 *
 * Required: get, create, update, identity, describe, free.
 * Optional: record_event (NULL: no events); watch (version 2 and later;
 * NULL: the elector polls). A version-1 vtable ends at free and is polled.
 */
#ifndef KLE_SYS_LOCK_H
#define KLE_SYS_LOCK_H

#include "../lock.h"

KLE_BEGIN_DECLS

/** Version of struct kle_lock this header describes. */
#define KLE_LOCK_VERSION 2

/** The lock vtable; a backend embeds it as its first member. */
struct kle_lock {
    /** KLE_LOCK_VERSION. */
    unsigned int version;
    /**
     * Reads the record into @p out (record, raw bytes, resourceVersion when
     * known), which the caller disposes. Remembers what it read so that a
     * following update is conditional on it.
     */
    int (*get)(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx);
    /** Creates the object holding @p record; KLE_EEXISTS if it exists. */
    int (*create)(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx);
    /** Writes @p record over the object last read or written; KLE_ECONFLICT if stale. */
    int (*update)(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx);
    /** Records an event with @p message, prefixed by the identity. */
    int (*record_event)(kle_lock *self, const char *message, const kle_lock_ctx *ctx);
    /** The holder identity this lock writes (borrowed). */
    const char *(*identity)(kle_lock *self);
    /** "namespace/name" or similar (borrowed). */
    const char *(*describe)(kle_lock *self);
    /** Frees the backend. */
    void (*free)(kle_lock *self);
    /**
     * Version 2. Watches the lock object, as kle_lock_watch() describes:
     * a single-object watch from @p opts->resource_version (or a list
     * first), delivering each change, deletion and bookmark to @p fn on the
     * calling thread. It must not change what update is conditional on:
     * only get, create and update do. May be NULL.
     */
    int (*watch)(kle_lock *self, const kle_lock_watch_opts *opts, kle_lock_watch_fn fn, void *data);
};

KLE_END_DECLS

#endif
