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
 *
 * Version 3 adds asynchronous calls (attach, start, abandon; all three or
 * none) and an asynchronous watch (watch_start, watch_stop; both or
 * neither), run on a kle_loop (kle/loop.h, kle/sys/loop.h) instead of a
 * thread: the elector drives such a lock from the thread that runs the
 * loop and needs no thread of its own for it. A lock without them is
 * driven synchronously on a worker thread, as before.
 */
#ifndef KLE_SYS_LOCK_H
#define KLE_SYS_LOCK_H

#include "../lock.h"
#include "loop.h"

KLE_BEGIN_DECLS

/** Version of struct kle_lock this header describes. */
#define KLE_LOCK_VERSION 3

/**
 * Static initialiser of a backend's vtable (C99 and later): the current
 * version, every member NULL. A backend then sets what it implements,
 * `kle_lock vt = KLE_LOCK_INIT; vt.get = my_get; ...`, and
 * kle_lock_validate() names any required member still missing. (In C++,
 * value-initialise the struct and set version to KLE_LOCK_VERSION.)
 */
#define KLE_LOCK_INIT                                                                              \
    {                                                                                              \
        .version = KLE_LOCK_VERSION                                                                \
    }

/** What an asynchronous lock call does (kle_lock_call.kind). */
typedef enum kle_lock_call_kind {
    KLE_LOCK_CALL_GET = 0,    /**< As get: fills result. */
    KLE_LOCK_CALL_CREATE = 1, /**< As create, with record. */
    KLE_LOCK_CALL_UPDATE = 2, /**< As update, with record. */
    KLE_LOCK_CALL_EVENT = 3   /**< As record_event, with message. */
} kle_lock_call_kind;

/** Version of kle_lock_call this header describes. */
#define KLE_LOCK_CALL_VERSION 1

/** An asynchronous lock call (version 3 vtables). */
typedef struct kle_lock_call kle_lock_call;

/**
 * Called once when a started call completes, on the loop's thread, never
 * from within start: @p rc is what the synchronous member would have
 * returned (0, KLE_ENOTFOUND, KLE_ECONFLICT, KLE_ETIMEOUT, ...), with its
 * details in kle_error_last() while done runs.
 */
typedef void (*kle_lock_call_fn)(kle_lock_call *call, int rc, void *data);

/** One asynchronous call, owned by the caller until done runs or it is abandoned. */
struct kle_lock_call {
    unsigned int version;     /**< KLE_LOCK_CALL_VERSION. */
    kle_lock_call_kind kind;  /**< What to do. */
    const kle_record *record; /**< CREATE, UPDATE: the record (borrowed until done). */
    const char *message;      /**< EVENT: the message (borrowed until done). */
    /** The time the call may take from start; it completes by then, with KLE_ETIMEOUT at worst. */
    int64_t timeout_ns;
    kle_lock_result *result; /**< GET: filled in (the caller set its version). */
    kle_lock_call_fn done;   /**< Completion. */
    void *data;              /**< Passed to done. */
    void *priv[4];           /**< The backend's while the call runs. */
};

/** Version of kle_lock_watch_call this header describes. */
#define KLE_LOCK_WATCH_CALL_VERSION 1

/** An asynchronous watch (version 3 vtables). */
typedef struct kle_lock_watch_call kle_lock_watch_call;

/**
 * An asynchronous watch, owned by the caller until it ended or was stopped.
 * Its semantics are kle_lock_watch()'s: a single-object watch from
 * resource_version (or a list first), streams that end are resumed from
 * the last resourceVersion seen, a 410 Gone re-lists (a listed event).
 */
struct kle_lock_watch_call {
    unsigned int version;         /**< KLE_LOCK_WATCH_CALL_VERSION. */
    const char *resource_version; /**< Resume after it; NULL or "": list first. */
    int64_t stream_timeout_ns;    /**< Server-side lifetime of each stream; 0: the backend's. */
    /** Each event, on the loop's thread; a non-zero return stops the watch (ended is not called).
     */
    kle_lock_watch_fn event;
    /**
     * The watch ended on its own (an error, KLE_EFORBIDDEN, or the server
     * refusing it), on the loop's thread; never after watch_stop.
     */
    void (*ended)(kle_lock_watch_call *watch, int rc, void *data);
    void *data;    /**< Passed to event and ended. */
    void *priv[4]; /**< The backend's while the watch runs. */
};

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
    /**
     * Version 3. Attaches the lock to @p loop, on which its asynchronous
     * calls and watch run (NULL detaches; nothing may be running then). The
     * synchronous members keep working while attached, from other threads,
     * but a synchronous call must not overlap an asynchronous one (calls of
     * one lock share what the lock last read or wrote).
     */
    int (*attach)(kle_lock *self, kle_loop *loop);
    /**
     * Version 3. Starts @p call on the attached loop, with the semantics of
     * the synchronous member of its kind (an update is conditional on what
     * this lock last read or wrote, asynchronously or not). One call at a
     * time per lock. Returns 0 (call->done runs later, once) or an error
     * (done never runs).
     */
    int (*start)(kle_lock *self, kle_lock_call *call);
    /**
     * Version 3. Gives up a started call: done never runs for it, the
     * backend releases what it used, and the next call may start at once.
     * What the call may already have done on the server stays done.
     */
    void (*abandon)(kle_lock *self, kle_lock_call *call);
    /** Version 3. Starts @p watch on the attached loop; 0, or an error (nothing started). */
    int (*watch_start)(kle_lock *self, kle_lock_watch_call *watch);
    /** Version 3. Stops a watch: no callback runs for it afterwards. */
    void (*watch_stop)(kle_lock *self, kle_lock_watch_call *watch);
};

KLE_END_DECLS

#endif
