/**
 * @file kle/log.h
 * @brief Where libkle's log lines go.
 *
 * libkle logs like klog: severities INFO, WARNING and ERROR, and INFO lines
 * carry a verbosity level V (0 is always shown, higher is chattier). By
 * default lines of verbosity <= kle_log_verbosity() are written to stderr
 * in klog's text layout:
 *
 *     I1121 10:00:00.605439   12345 elector.c:248] message
 *
 * Secrets (tokens, keys, passwords, Authorization headers) are never passed
 * to the log at any verbosity.
 */
#ifndef KLE_LOG_H
#define KLE_LOG_H

#include "common.h"

KLE_BEGIN_DECLS

/** Log severities, as klog's. */
typedef enum kle_log_severity {
    KLE_LOG_INFO = 0,
    KLE_LOG_WARNING = 1,
    KLE_LOG_ERROR = 2
} kle_log_severity;

/**
 * A log handler. @p v is the verbosity of INFO lines (0 for others),
 * @p file is the source file's base name, @p msg has no trailing newline.
 * Called from whichever thread logs; must be thread-safe.
 */
typedef void (*kle_log_fn)(kle_log_severity severity, int v, const char *file, int line,
                           const char *msg, void *data);

/** Installs a log handler; NULL restores the default stderr handler. */
KLE_EXTERN(void) kle_log_set_handler(kle_log_fn fn, void *data);

/** Sets the highest verbosity of INFO lines that are logged (default 0). */
KLE_EXTERN(void) kle_log_set_verbosity(int v);

/** Returns the current verbosity. */
KLE_EXTERN(int) kle_log_verbosity(void);

/**
 * Formats one line in klog's text layout into @p buf (always terminated,
 * no trailing newline). For handlers that want klog's layout elsewhere.
 */
KLE_EXTERN(void)
kle_log_format_klog(char *buf, size_t size, kle_log_severity severity, const char *file, int line,
                    const char *msg);

KLE_END_DECLS

#endif
