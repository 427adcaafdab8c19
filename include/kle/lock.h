/**
 * @file kle/lock.h
 * @brief Resource locks: the object in which the election record lives.
 *
 * A kle_lock is client-go's resourcelock.Interface: it reads and writes one
 * leader election record in one Kubernetes object (a Lease, an annotation
 * on a ConfigMap or Endpoints, or two of them for migration). The elector
 * drives it; users only construct one and hand it to kle_elector_new(). The
 * functions below are checked wrappers around the backend's vtable
 * (kle/sys/lock.h) for callers who use a lock directly.
 */
#ifndef KLE_LOCK_H
#define KLE_LOCK_H

#include "clock.h"
#include "record.h"

KLE_BEGIN_DECLS

/** A resource lock: see kle/sys/lock.h for its vtable. */
typedef struct kle_lock kle_lock;

/** Per-call limits handed to every lock operation. */
typedef struct kle_lock_ctx {
    /** KLE_LOCK_CTX_VERSION. */
    unsigned int version;
    /** Time the call may take; it must return by then with KLE_ETIMEOUT. <= 0: no time left. */
    int64_t timeout_ns;
    /** When set, the call returns KLE_ECANCELED promptly. May be NULL. */
    kle_event *cancel;
} kle_lock_ctx;

/** Version of kle_lock_ctx this header describes. */
#define KLE_LOCK_CTX_VERSION 1
/** Initialiser: 10 s to complete, no cancel event. */
#define KLE_LOCK_CTX_INIT                                                                          \
    {                                                                                              \
        KLE_LOCK_CTX_VERSION, 10 * KLE_NS_PER_SEC, NULL                                            \
    }

/**
 * Sets @p ctx to KLE_LOCK_CTX_INIT at @p version (1 to KLE_LOCK_CTX_VERSION),
 * for callers that cannot use the macro.
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_lock_ctx_init(kle_lock_ctx *ctx, unsigned int version);

/** Version of kle_lock_result this header describes. */
#define KLE_LOCK_RESULT_VERSION 1

/**
 * What kle_lock_get() read. The caller sets version (KLE_LOCK_RESULT_INIT
 * or kle_lock_result_init()); the library writes only the members that
 * version has. Free with kle_lock_result_dispose(), which keeps version.
 */
typedef struct kle_lock_result {
    unsigned int version;   /**< KLE_LOCK_RESULT_VERSION, set by the caller. */
    kle_record record;      /**< The record. */
    char *raw;              /**< Its raw bytes, for change detection (NUL-terminated). */
    size_t raw_len;         /**< Length of raw, without the NUL. */
    char *resource_version; /**< The object's resourceVersion, or NULL if unknown. */
} kle_lock_result;

/** Initialiser of an empty kle_lock_result of the current version. */
#define KLE_LOCK_RESULT_INIT                                                                       \
    {                                                                                              \
        KLE_LOCK_RESULT_VERSION, KLE_RECORD_INIT, NULL, 0, NULL                                    \
    }

/**
 * Empties @p result and sets its version (1 to KLE_LOCK_RESULT_VERSION).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_lock_result_init(kle_lock_result *result, unsigned int version);

/** Frees what a result owns and empties it; its version stays. */
KLE_EXTERN(void) kle_lock_result_dispose(kle_lock_result *result);

/**
 * Reads the record.
 * @return 0; KLE_ENOTFOUND when the object (or its record) does not exist;
 *   KLE_EBADRECORD when a record exists but cannot be read (never a free
 *   lock); KLE_ETIMEOUT, KLE_ECANCELED, or another error of the backend.
 */
KLE_EXTERN(int) kle_lock_get(kle_lock_result *out, kle_lock *lock, const kle_lock_ctx *ctx);

/**
 * Creates the object with @p record.
 * @return 0; KLE_EEXISTS when it already exists; or a backend error.
 */
KLE_EXTERN(int) kle_lock_create(kle_lock *lock, const kle_record *record, const kle_lock_ctx *ctx);

/**
 * Replaces the record, conditional on the object not having changed since
 * this lock last read or wrote it.
 * @return 0; KLE_ECONFLICT when it changed; KLE_ESTATE when the lock has not
 *   read or written the object yet; or a backend error.
 */
KLE_EXTERN(int) kle_lock_update(kle_lock *lock, const kle_record *record, const kle_lock_ctx *ctx);

/**
 * Records an event ("became leader") on the lock object, best effort.
 * Backends without events return 0.
 */
KLE_EXTERN(int) kle_lock_record_event(kle_lock *lock, const char *message, const kle_lock_ctx *ctx);

/** The identity this lock writes as holder (borrowed, never NULL). */
KLE_EXTERN(const char *) kle_lock_identity(kle_lock *lock);

/** A description of the lock object, e.g. "default/my-lock" (borrowed). */
KLE_EXTERN(const char *) kle_lock_describe(kle_lock *lock);

/** What a lock's watch reports (kle_lock_event.type). */
typedef enum kle_lock_event_type {
    /** The object holds this record: result has the record, raw bytes and resourceVersion. */
    KLE_LOCK_EVENT_RECORD = 0,
    /** The object was deleted, or does not exist (at a list). */
    KLE_LOCK_EVENT_DELETED = 1,
    /** Progress only: the stream is alive at resource_version; nothing changed. */
    KLE_LOCK_EVENT_BOOKMARK = 2,
    /** The stream carried something unreadable (error holds the code); the watch goes on. */
    KLE_LOCK_EVENT_ERROR = 3
} kle_lock_event_type;

/** Version of kle_lock_event this header describes. */
#define KLE_LOCK_EVENT_VERSION 1

/** One event of a lock's watch, borrowed for the duration of the callback. */
typedef struct kle_lock_event {
    unsigned int version;     /**< KLE_LOCK_EVENT_VERSION. */
    kle_lock_event_type type; /**< What happened. */
    /**
     * 1 when the event is the result of a list (the start of a watch
     * without a resourceVersion, or the re-list after 410 Gone) rather than
     * a change seen on the stream.
     */
    int listed;
    /** KLE_LOCK_EVENT_RECORD: the record, its raw bytes and resourceVersion; else NULL. */
    const kle_lock_result *result;
    /** The resourceVersion of the event (all types but ERROR), or NULL when unknown. */
    const char *resource_version;
    /** KLE_LOCK_EVENT_ERROR: the error code (KLE_EBADRECORD, ...); else 0. */
    int error;
} kle_lock_event;

/**
 * Called for each event of kle_lock_watch(), on the watching thread.
 * Return 0 to go on; any other value ends the watch (a negative value is
 * returned by kle_lock_watch()).
 */
typedef int (*kle_lock_watch_fn)(const kle_lock_event *event, void *data);

/** Version of kle_lock_watch_opts this header describes. */
#define KLE_LOCK_WATCH_OPTS_VERSION 1

/** Options of kle_lock_watch(). Initialise with KLE_LOCK_WATCH_OPTS_INIT. */
typedef struct kle_lock_watch_opts {
    unsigned int version; /**< KLE_LOCK_WATCH_OPTS_VERSION. */
    /** Resume after this resourceVersion; NULL or "": list first (one listed event). */
    const char *resource_version;
    /** How long the watch runs; 0: until cancelled or the callback stops it. */
    int64_t timeout_ns;
    /**
     * Server-side lifetime of each stream (watch timeoutSeconds, whole
     * seconds, at least 1); 0: the backend's default. A stream that ends is
     * resumed from the last resourceVersion seen.
     */
    int64_t stream_timeout_ns;
    /** When set, the watch returns KLE_ECANCELED promptly. May be NULL. */
    kle_event *cancel;
} kle_lock_watch_opts;

/** Initialiser: list first, no time limit, the backend's stream lifetime, no cancel event. */
#define KLE_LOCK_WATCH_OPTS_INIT                                                                   \
    {                                                                                              \
        KLE_LOCK_WATCH_OPTS_VERSION, NULL, 0, 0, NULL                                              \
    }

/**
 * Sets @p opts to KLE_LOCK_WATCH_OPTS_INIT at @p version (1 to
 * KLE_LOCK_WATCH_OPTS_VERSION), for callers that cannot use the macro.
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_lock_watch_opts_init(kle_lock_watch_opts *opts, unsigned int version);

/**
 * Returns 1 when @p lock can watch its object (a vtable of version 2 or
 * later with a watch member), else 0. A lock that cannot watch is polled.
 */
KLE_EXTERN(int) kle_lock_can_watch(const kle_lock *lock);

/**
 * Watches the lock object and calls @p fn for each event until the
 * watch's time is up, @p opts->cancel is set, @p fn stops it, or an error
 * ends it. Streams that end are resumed from the last resourceVersion, and
 * a 410 Gone re-lists (a listed event). Blocks the calling thread.
 * @return 0 when the time was up or @p fn stopped the watch with a
 *   non-negative value; @p fn's negative value; KLE_ECANCELED;
 *   KLE_ESTATE when the lock cannot watch; KLE_EFORBIDDEN when the server
 *   forbids it; KLE_EINVAL; KLE_EVERSION; or another backend error.
 */
KLE_EXTERN(int)
kle_lock_watch(kle_lock *lock, const kle_lock_watch_opts *opts, kle_lock_watch_fn fn, void *data);

/**
 * Checks that @p lock is a complete vtable of a supported version.
 * @return 0, KLE_EINVAL (NULL or a required member missing) or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_lock_validate(const kle_lock *lock);

/** Frees a lock. NULL is ignored. */
KLE_EXTERN(void) kle_lock_free(kle_lock *lock);

KLE_END_DECLS

#endif
