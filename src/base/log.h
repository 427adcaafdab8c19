/* Internal logging macros; the public side is include/kle/log.h. */
#ifndef KLE_CORE_LOG_H
#define KLE_CORE_LOG_H

#include "kle/log.h"

void kle_log__write(kle_log_severity severity, int v, const char *file, int line, const char *fmt,
                    ...) KLE_PRINTF(5, 6);
int kle_log__enabled(int v);

#define KLE_LOG_V(v, ...)                                                                          \
    do {                                                                                           \
        if (kle_log__enabled(v))                                                                   \
            kle_log__write(KLE_LOG_INFO, (v), __FILE__, __LINE__, __VA_ARGS__);                    \
    } while (0)
#define KLE_LOG_I(...) KLE_LOG_V(0, __VA_ARGS__)
#define KLE_LOG_W(...) kle_log__write(KLE_LOG_WARNING, 0, __FILE__, __LINE__, __VA_ARGS__)
#define KLE_LOG_E(...) kle_log__write(KLE_LOG_ERROR, 0, __FILE__, __LINE__, __VA_ARGS__)

/*
 * Rate-limited lines, for a condition that repeats every try (a refused
 * read, a forbidden request): the first line from a place (file and line)
 * with a given text is logged; repeats of it within the next minute are
 * only counted, and once a minute, while it repeats, one line says
 * "repeated N times in the last minute: <text, shortened>". A repeat more
 * than a minute after the last line of its kind starts over with the whole
 * text. So the first line should say why and what to do (which flag), and
 * the rest stay short. At most KLE_LOG__LIMITS different lines are tracked
 * at once; beyond that the least recent is forgotten (and logged again in
 * full when it repeats).
 */
#define KLE_LOG__LIMITS       64
#define KLE_LOG__LIMIT_WINDOW (INT64_C(60) * KLE_NS_PER_SEC)

void kle_log__write_limited(kle_log_severity severity, int v, const char *file, int line,
                            const char *fmt, ...) KLE_PRINTF(5, 6);

#define KLE_LOG_W_LIMITED(...)                                                                     \
    kle_log__write_limited(KLE_LOG_WARNING, 0, __FILE__, __LINE__, __VA_ARGS__)
#define KLE_LOG_E_LIMITED(...)                                                                     \
    kle_log__write_limited(KLE_LOG_ERROR, 0, __FILE__, __LINE__, __VA_ARGS__)

/* For tests: kle_log__write_limited() of a formatted message at @p now_ns
 * (CLOCK_MONOTONIC); the summaries due at @p now_ns; forgetting every line. */
void kle_log__limited_at(int64_t now_ns, kle_log_severity severity, int v, const char *file,
                         int line, const char *msg);
void kle_log__limits_flush_at(int64_t now_ns);
void kle_log__limits_reset(void);

#endif
