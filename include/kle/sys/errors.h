/**
 * @file kle/sys/errors.h
 * @brief Setting the thread-local error, for lock backend and clock authors.
 */
#ifndef KLE_SYS_ERRORS_H
#define KLE_SYS_ERRORS_H

#include "../errors.h"

KLE_BEGIN_DECLS

/**
 * Records an error on the calling thread and returns @p code, so that a
 * backend can write `return kle_error_set(KLE_EINVAL, "...", ...);`.
 * HTTP status, retry-after and reason are cleared.
 */
KLE_EXTERN(int) kle_error_set(int code, const char *fmt, ...) KLE_PRINTF(2, 3);

/**
 * Records an API error with its HTTP status, Status reason (may be NULL)
 * and Retry-After seconds (0 when absent); returns @p code.
 */
KLE_EXTERN(int)
kle_error_set_api(int code, int http_status, const char *reason, int64_t retry_after_ns,
                  const char *fmt, ...) KLE_PRINTF(5, 6);

/**
 * Prefixes the current message with a context string ("lease default/x: "),
 * keeping code, status and reason; returns the current code.
 */
KLE_EXTERN(int) kle_error_prefix(const char *fmt, ...) KLE_PRINTF(1, 2);

KLE_END_DECLS

#endif
