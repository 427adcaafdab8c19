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
 *
 * Logging never blocks the thread that logs (the elector's among them): a
 * line goes into a bounded in-memory queue (1024 lines, 1 MiB of text) and
 * one drain thread, started at the first line, hands the lines in order to
 * the handler. When the queue is full, because the handler or stderr is
 * blocked (a full pipe, a stalled log collector), new lines are dropped and
 * counted (kle_log_dropped()); when the drain thread catches up it logs a
 * warning "N log lines dropped". At exit the queue is flushed for at most
 * 2 s; kle_log_flush_ns() flushes it on demand.
 *
 * A line that a failing condition repeats every try (a read the migration
 * guard refuses, a LeaseCandidate the server forbids) is logged once in
 * full, then, while it repeats, once a minute as "repeated N times in the
 * last minute: ..." (shortened).
 *
 * Lines may carry structured fields (kle_log_field: lock, identity, token,
 * holder, err); an entry handler (kle_log_set_entry_handler()) gets them,
 * a kle_log_fn handler and the default stderr handler the message only.
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
 * Runs on libkle's log drain thread, one line at a time and in the order
 * the lines were logged, never on the thread that logged: a handler may
 * block without blocking the election (lines are dropped meanwhile once the
 * queue is full). It must not call kle_log_set_handler() or kle_log_flush_ns().
 */
typedef void (*kle_log_fn)(kle_log_severity severity, int v, const char *file, int line,
                           const char *msg, void *data);

/**
 * Installs a log handler; NULL restores the default stderr handler. Lines
 * already queued go to the previous handler first (waiting at most 1 s);
 * when this returns, the previous handler is no longer running and its
 * @p data may be freed. It replaces a handler installed with
 * kle_log_set_entry_handler(). This handler sees the message only, not
 * the structured fields of a line.
 */
KLE_EXTERN(void) kle_log_set_handler(kle_log_fn fn, void *data);

/** The type of a structured field's value (kle_log_field). */
typedef enum kle_log_field_type {
    KLE_LOG_FIELD_STRING = 0, /**< kle_log_field.str */
    KLE_LOG_FIELD_INT = 1     /**< kle_log_field.num */
} kle_log_field_type;

/**
 * A structured field of a log line: a key and a string or integer value.
 * The keys libkle and `kle` use: "lock" (the lock, as the message names
 * it), "identity" (this replica), "holder" (the holder a record names),
 * "token" (a fencing token: leaderTransitions, an integer) and "err" (the
 * error message of a failure). The message itself still says everything
 * in words; the fields are for machines (`kle --log-format json`).
 */
typedef struct kle_log_field {
    const char *key;         /**< The key (required). */
    kle_log_field_type type; /**< Which of str and num holds the value. */
    const char *str;         /**< KLE_LOG_FIELD_STRING: the value (NULL counts as ""). */
    int64_t num;             /**< KLE_LOG_FIELD_INT: the value. */
} kle_log_field;

/** A string field, for an initialiser: KLE_LOG_STR("lock", name). */
#define KLE_LOG_STR(key, value)                                                                    \
    {                                                                                              \
        (key), KLE_LOG_FIELD_STRING, (value), 0                                                    \
    }
/** An integer field, for an initialiser: KLE_LOG_INT("token", 3). */
#define KLE_LOG_INT(key, value)                                                                    \
    {                                                                                              \
        (key), KLE_LOG_FIELD_INT, NULL, (value)                                                    \
    }

/** Version of kle_log_entry this header describes. */
#define KLE_LOG_ENTRY_VERSION 1

/**
 * One log line as an entry handler (kle_log_set_entry_handler()) sees it.
 * The library fills it; members are only ever added at the end, and
 * @p version says which ones this line has (a handler built against an
 * older header reads the members it knows, which are always there).
 */
typedef struct kle_log_entry {
    unsigned int version;      /**< KLE_LOG_ENTRY_VERSION of the library that made it. */
    kle_log_severity severity; /**< The severity. */
    int v;                     /**< The verbosity of an INFO line (0 for others). */
    const char *file;          /**< The source file's base name. */
    int line;                  /**< The source line. */
    const char *msg;           /**< The message, without a trailing newline. */
    /**
     * When the line was logged, CLOCK_REALTIME nanoseconds (it reaches the
     * handler later, from the log's drain thread).
     */
    int64_t time_ns;
    const kle_log_field *fields; /**< The structured fields (nfields of them; may be NULL). */
    size_t nfields;              /**< How many fields. */
} kle_log_entry;

/**
 * An entry handler: as kle_log_fn (same thread, same order, same rules),
 * with the whole line: message, time and structured fields. @p entry and
 * everything it points to are valid during the call only.
 */
typedef void (*kle_log_entry_fn)(const kle_log_entry *entry, void *data);

/**
 * Installs an entry handler; NULL restores the default stderr handler.
 * As kle_log_set_handler() (which it replaces), but the handler receives
 * each line's structured fields too.
 */
KLE_EXTERN(void) kle_log_set_entry_handler(kle_log_entry_fn fn, void *data);

/** Sets the highest verbosity of INFO lines that are logged (default 0). */
KLE_EXTERN(void) kle_log_set_verbosity(int v);

/** Returns the current verbosity. */
KLE_EXTERN(int) kle_log_verbosity(void);

/**
 * Copies @p in into @p out (always terminated, cut to fit @p size) with
 * control characters (C0, DEL, C1) and bytes that are not UTF-8 written as
 * \\n, \\t, \\r or \\xNN, so that text from a record or a server
 * (a holder identity, an error message) printed in a text log or a
 * terminal cannot start a line or drive the terminal.
 */
KLE_EXTERN(void) kle_log_escape(char *out, size_t size, const char *in);

/**
 * Formats one line in klog's text layout into @p buf (always terminated,
 * no trailing newline). For handlers that want klog's layout elsewhere.
 * Control characters (newlines, terminal escapes, C1 controls) and bytes
 * that are not UTF-8 in @p msg are written as \\n, \\t, \\r or \\xNN, so
 * text from a record or a server cannot forge lines or drive a terminal.
 */
KLE_EXTERN(void)
kle_log_format_klog(char *buf, size_t size, kle_log_severity severity, const char *file, int line,
                    const char *msg);

/**
 * Logs one line (already formatted, no trailing newline) through the
 * queue, as libkle's own lines are: for programs that want their lines in
 * the same order and handler without ever blocking. @p file may be a path
 * (its base name is kept) and must stay valid for the program's lifetime
 * (a string literal such as __FILE__). Never blocks on the log output.
 */
KLE_EXTERN(void)
kle_log_write(kle_log_severity severity, int v, const char *file, int line, const char *msg);

/**
 * kle_log_write() with structured fields (copied; @p fields may be NULL
 * when @p nfields is 0). A kle_log_fn handler and the default stderr
 * handler show the message only; an entry handler gets the fields too.
 */
KLE_EXTERN(void)
kle_log_write_fields(kle_log_severity severity, int v, const char *file, int line,
                     const kle_log_field *fields, size_t nfields, const char *msg);

/**
 * Waits until every queued line has been handed to the handler, at most
 * @p timeout_ns nanoseconds. Returns 0 when the queue is empty, -1 when
 * the time ran out (the handler is blocked).
 */
KLE_EXTERN(int) kle_log_flush_ns(int64_t timeout_ns);

/** Returns the number of lines dropped so far because the queue was full. */
KLE_EXTERN(uint64_t) kle_log_dropped(void);

KLE_END_DECLS

#endif
