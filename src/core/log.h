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

#endif
