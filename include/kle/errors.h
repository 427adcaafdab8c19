/**
 * @file kle/errors.h
 * @brief Error codes, their descriptions and the per-thread last error.
 *
 * Every libkle function that can fail returns 0 on success or one of the
 * negative codes below. The values are stable and never reused. When a
 * function fails it also records details (a message naming what was wrong
 * and where, and for API errors the HTTP status and the Status reason) in a
 * thread-local slot that kle_error_last() returns.
 */
#ifndef KLE_ERRORS_H
#define KLE_ERRORS_H

#include "common.h"

KLE_BEGIN_DECLS

/** Error codes. Values are part of the ABI and never change. */
typedef enum kle_error_code {
    KLE_OK = 0,
    KLE_ERROR = -1,             /**< Generic failure; see the message. */
    KLE_EINVAL = -2,            /**< Invalid argument or configuration. */
    KLE_ENOMEM = -3,            /**< Out of memory. */
    KLE_ENOTFOUND = -4,         /**< The object does not exist (404 NotFound). */
    KLE_ECONFLICT = -5,         /**< Stale resourceVersion (409 Conflict). */
    KLE_EEXISTS = -6,           /**< The object already exists (409 AlreadyExists). */
    KLE_EUNAUTHORIZED = -7,     /**< Credentials missing or rejected (401). */
    KLE_EFORBIDDEN = -8,        /**< Authenticated but not allowed (403). */
    KLE_EUNPROCESSABLE = -9,    /**< The server rejected the object (422 Invalid). */
    KLE_ETOOMANYREQUESTS = -10, /**< Throttled (429); see retry_after_ns. */
    KLE_ESERVER = -11,          /**< Server-side failure (5xx). */
    KLE_ETRANSPORT = -12,       /**< Connection, TLS or protocol failure. */
    KLE_ETIMEOUT = -13,         /**< The operation did not finish in its time. */
    KLE_ECANCELED = -14,        /**< The operation was cancelled. */
    KLE_EBADRECORD = -15,       /**< A lock record could not be read; never a free lock. */
    KLE_EBADRESPONSE = -16,     /**< The server's answer was malformed. */
    KLE_ETOOLARGE = -17,        /**< A body exceeded its size limit (413, or the response cap). */
    KLE_EKUBECONFIG = -18,      /**< A kubeconfig or in-cluster configuration is unusable. */
    KLE_EAUTH = -19,            /**< Credentials could not be obtained (files, exec plugin). */
    KLE_EBADREQUEST = -20,      /**< The server rejected the request (400). */
    KLE_EGONE = -21,            /**< A watch resourceVersion is too old (410 Expired). */
    KLE_ESTATE = -22,           /**< The call is not valid in the object's current state. */
    KLE_EVERSION = -23,         /**< A struct or vtable carries an unsupported version. */
    KLE_ESYSTEM = -24,          /**< An operating system call failed; see the message. */
    KLE_EUNHEALTHY = -25,       /**< A health check failed (kle_elector_check). */
    KLE_EAPI = -26,             /**< Any other API error; see http_status and reason. */
    /**
     * Another replica writes the lock under this elector's identity:
     * identities must be unique (kle_elector_run).
     */
    KLE_EIDENTITY = -27
} kle_error_code;

/** Details of the last error on the calling thread. */
typedef struct kle_error {
    int code;               /**< One of kle_error_code. */
    int http_status;        /**< HTTP status for API errors, else 0. */
    int64_t retry_after_ns; /**< From Retry-After on 429/503 (whole seconds, in ns), else 0. */
    const char *reason;     /**< Kubernetes Status reason ("Conflict", ...), or "". */
    const char *message;    /**< Human-readable message naming what and where. */
} kle_error;

/**
 * Returns a short static description of an error code ("not found", ...).
 * Never returns NULL; unknown codes give "unknown error".
 */
KLE_EXTERN(const char *) kle_strerror(int code);

/**
 * Returns the name of an error code ("KLE_ENOTFOUND"), or "KLE_E?" for an
 * unknown one. Never returns NULL.
 */
KLE_EXTERN(const char *) kle_error_name(int code);

/**
 * Returns the details of the last error recorded on the calling thread.
 * The pointer stays valid until the next libkle call on this thread. When no
 * error has been recorded, code is KLE_OK and message is "".
 */
KLE_EXTERN(const kle_error *) kle_error_last(void);

/** Clears the calling thread's last error. */
KLE_EXTERN(void) kle_error_clear(void);

KLE_END_DECLS

#endif
