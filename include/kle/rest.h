/**
 * @file kle/rest.h
 * @brief REST verbs and watch on a kle_client, with json-c objects.
 *
 * The only libkle header that exposes a third-party type: requests take a
 * path ("/api/v1/namespaces/default/configmaps/x") and return the server's
 * JSON as a json-c object (`struct json_object`) that the caller owns and
 * may read and modify. kle_client_path() builds paths from (group/version,
 * resource, namespace, name). Programs that include it link json-c too:
 * pkg-config `kle-rest` or CMake `kle::rest` declare that. Errors and
 * threading are as described in kle/client.h.
 */
#ifndef KLE_REST_H
#define KLE_REST_H

#include "client.h"

struct json_object;

KLE_BEGIN_DECLS

/** The current version of kle_request_opts. */
#define KLE_REQUEST_OPTS_VERSION 1

/** Per-request options. Initialise with KLE_REQUEST_OPTS_INIT. */
typedef struct kle_request_opts {
    unsigned int version; /**< KLE_REQUEST_OPTS_VERSION. */
    /**
     * Total time budget of the call in nanoseconds (like kle_lock_ctx's
     * timeout_ns), including connecting, waiting for credentials (an exec
     * plugin runs in the background: a call waits for it only when no
     * valid credential exists, and not past this budget) and a retry
     * after a 401; 0 uses the client's default, a
     * negative value fails at once with KLE_ETIMEOUT. The call never blocks
     * longer (plus scheduling).
     */
    int64_t timeout_ns;
    /** When set from any thread, the call returns KLE_ECANCELED within
     *  100 ms. May be NULL. */
    kle_event *cancel;
    /**
     * When non-NULL and the call fails with an API error whose body is a
     * Status object, receives that Status (caller frees with
     * json_object_put()); else set to NULL.
     */
    struct json_object **status;
} kle_request_opts;

/** Initialiser of kle_request_opts: the client's default timeout, no cancel event. */
#define KLE_REQUEST_OPTS_INIT                                                                      \
    {                                                                                              \
        KLE_REQUEST_OPTS_VERSION, 0, NULL, NULL                                                    \
    }

/**
 * Sets @p ptr to KLE_REQUEST_OPTS_INIT at @p version (1 to KLE_REQUEST_OPTS_VERSION), for callers
 * that cannot use the macro (language bindings).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_request_opts_init(kle_request_opts *ptr, unsigned int version);

/**
 * Builds an API path into @p buf: "/api/v1" for the core group
 * (@p group_version "v1") or "/apis/<group_version>", then
 * "/namespaces/<ns>" when @p ns is non-NULL and non-empty, then
 * "/<resource>" and "/<name>" when @p name is non-NULL and non-empty.
 * Namespace and name are percent-encoded.
 *
 * @return 0; KLE_EINVAL when an argument is NULL/empty where required or
 *         contains '/'; KLE_ETOOLARGE when @p size is too small.
 */
KLE_EXTERN(int)
kle_client_path(char *buf, size_t size, const char *group_version, const char *resource,
                const char *ns, const char *name);

/**
 * GET @p path. On success @p *out receives the parsed object (caller owns
 * it: json_object_put()). On failure @p *out is NULL.
 *
 * @param client the client.
 * @param out    receives the object.
 * @param path   absolute API path, may carry a query ("?labelSelector=...").
 * @param opts   per-request options, or NULL for the defaults.
 * @return 0 or an error of the table in this file's description;
 *         KLE_EINVAL for a NULL argument, a path not starting with '/' or
 *         containing spaces, control characters or '#'; KLE_EVERSION for an
 *         unknown opts version; KLE_EAUTH when credentials cannot be
 *         obtained (token file, exec plugin); KLE_EBADRESPONSE when the
 *         answer is not a JSON object.
 */
KLE_EXTERN(int)
kle_client_get(struct json_object **out, kle_client *client, const char *path,
               const kle_request_opts *opts);

/**
 * POST @p body to the collection @p path (creates an object). @p body is
 * borrowed. @p out may be NULL when the created object is not wanted.
 * A 409 AlreadyExists gives KLE_EEXISTS. Otherwise as kle_client_get().
 */
KLE_EXTERN(int)
kle_client_create(struct json_object **out, kle_client *client, const char *path,
                  struct json_object *body, const kle_request_opts *opts);

/**
 * PUT @p body to the object @p path (replaces it). @p body must carry
 * metadata.resourceVersion for optimistic concurrency: a stale one gives
 * KLE_ECONFLICT. @p out may be NULL. Otherwise as kle_client_get().
 */
KLE_EXTERN(int)
kle_client_update(struct json_object **out, kle_client *client, const char *path,
                  struct json_object *body, const kle_request_opts *opts);

/** Patch flavours, as the Content-Type of a PATCH. */
typedef enum kle_patch_type {
    KLE_PATCH_MERGE = 0,     /**< application/merge-patch+json (RFC 7386) */
    KLE_PATCH_STRATEGIC = 1, /**< application/strategic-merge-patch+json */
    KLE_PATCH_JSON = 2       /**< application/json-patch+json (RFC 6902) */
} kle_patch_type;

/**
 * PATCH the object @p path with @p patch (borrowed). @p out may be NULL.
 * KLE_EINVAL for an unknown @p type. Otherwise as kle_client_get().
 */
KLE_EXTERN(int)
kle_client_patch(struct json_object **out, kle_client *client, const char *path,
                 kle_patch_type type, struct json_object *patch, const kle_request_opts *opts);

/**
 * DELETE the object @p path. @p out (may be NULL) receives the server's
 * answer (the object or a Status). Otherwise as kle_client_get().
 */
KLE_EXTERN(int)
kle_client_delete(struct json_object **out, kle_client *client, const char *path,
                  const kle_request_opts *opts);

/**
 * Any request: @p method ("GET", "POST", ...), @p path, an optional body
 * (@p body, @p body_len bytes, with @p content_type; NULL for none). The
 * response must be JSON (or empty: @p out then receives NULL).
 * Errors as kle_client_get().
 */
KLE_EXTERN(int)
kle_client_request(struct json_object **out, kle_client *client, const char *method,
                   const char *path, const char *content_type, const char *body, size_t body_len,
                   const kle_request_opts *opts);

/** Watch event types. */
typedef enum kle_watch_event_type {
    KLE_WATCH_ADDED = 0,    /**< An object was created (or entered the selection). */
    KLE_WATCH_MODIFIED = 1, /**< An object changed. */
    KLE_WATCH_DELETED = 2,  /**< An object was deleted (or left the selection). */
    KLE_WATCH_BOOKMARK = 3, /**< Only metadata.resourceVersion: progress, no change. */
    /**
     * The result of a list (at the start when no resource_version was
     * given, and after the server said the resourceVersion is too old, 410):
     * the object is the List ("items" holds every current object). Anything
     * not in it no longer exists.
     */
    KLE_WATCH_LISTED = 4
} kle_watch_event_type;

/** Returns "ADDED", "MODIFIED", "DELETED", "BOOKMARK", "LISTED" or "?". */
KLE_EXTERN(const char *) kle_watch_event_type_name(kle_watch_event_type type);

/**
 * Called for each watch event, on the thread that called kle_client_watch().
 * @p object is borrowed for the duration of the call (json_object_get() it
 * to keep it). Return 0 to continue; any other value stops the watch, and
 * kle_client_watch() returns it when negative, else 0. The callback must not
 * call kle_client_watch() with the same options, but may make requests on
 * the same client.
 */
typedef int (*kle_watch_fn)(kle_watch_event_type type, struct json_object *object, void *data);

/** The current version of kle_watch_opts. */
#define KLE_WATCH_OPTS_VERSION 1

/** Watch options. Initialise with KLE_WATCH_OPTS_INIT. */
typedef struct kle_watch_opts {
    unsigned int version; /**< KLE_WATCH_OPTS_VERSION. */
    /** Start after this resourceVersion; NULL or "" lists first (one
     *  KLE_WATCH_LISTED event) and watches from the list's version. */
    const char *resource_version;
    /** fieldSelector, e.g. "metadata.name=my-lock"; NULL for none. */
    const char *field_selector;
    /** labelSelector; NULL for none. */
    const char *label_selector;
    /** Total duration of the watch in ns; 0 runs until cancelled or stopped
     *  by the callback. Reaching it returns 0. */
    int64_t timeout_ns;
    /** Server-side timeout of each stream in ns, sent as whole seconds
     *  (timeoutSeconds, at least 1); 0 means 300 s. When a stream ends the
     *  watch resumes from the last resourceVersion seen. */
    int64_t stream_timeout_ns;
    /** Stops the watch within 100 ms (KLE_ECANCELED). May be NULL. */
    kle_event *cancel;
    /**
     * Receives the last resourceVersion seen, when non-NULL: a buffer of
     * last_resource_version_size bytes, so that a later watch can resume.
     */
    char *last_resource_version;
    /** Size in bytes of the last_resource_version buffer. */
    size_t last_resource_version_size;
} kle_watch_opts;

/** Initialiser of kle_watch_opts: list first, no selectors, no time limit. */
#define KLE_WATCH_OPTS_INIT                                                                        \
    {                                                                                              \
        KLE_WATCH_OPTS_VERSION, NULL, NULL, NULL, 0, 0, NULL, NULL, 0                              \
    }

/**
 * Sets @p ptr to KLE_WATCH_OPTS_INIT at @p version (1 to KLE_WATCH_OPTS_VERSION), for callers that
 * cannot use the macro (language bindings).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_watch_opts_init(kle_watch_opts *ptr, unsigned int version);

/**
 * Watches the collection @p path ("/apis/coordination.k8s.io/v1/namespaces/
 * default/leases") and calls @p fn for each event as it arrives.
 *
 * A dropped or ended stream is resumed from the last resourceVersion seen
 * (events and bookmarks); a 410 Gone (as an HTTP status or an ERROR event)
 * re-lists and delivers a KLE_WATCH_LISTED event, then watches from the new
 * version. Transport failures, 429 and 5xx are retried with a short backoff
 * (up to 1 s) until the watch's timeout; other API errors (401, 403, 404,
 * ...) end the watch with their code.
 *
 * @return 0 when the timeout passed or the callback stopped the watch with a
 *         non-negative value; the callback's negative value; KLE_ECANCELED;
 *         KLE_EINVAL; KLE_EVERSION; or the error that ended the watch
 *         (see this file's description).
 */
KLE_EXTERN(int)
kle_client_watch(kle_client *client, const char *path, const kle_watch_opts *opts, kle_watch_fn fn,
                 void *data);

KLE_END_DECLS

#endif
