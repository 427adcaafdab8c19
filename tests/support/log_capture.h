/* Test helper: keeps every line libkle logs in log_text (guarded by log_mu),
 * for tests that look for lines or for the absence of secrets. Install with
 * kle_log_set_handler(capture_log, NULL); lines arrive on the log's drain
 * thread, so call kle_log_flush() before reading. */
#ifndef KLE_TESTS_LOG_CAPTURE_H
#define KLE_TESTS_LOG_CAPTURE_H

#include "kle/log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_text;
static size_t log_len;

static void capture_log(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                        void *data)
{
    (void)sev, (void)v, (void)file, (void)line, (void)data;
    pthread_mutex_lock(&log_mu);
    size_t n = strlen(msg);
    char *t = realloc(log_text, log_len + n + 2);
    if (t) {
        memcpy(t + log_len, msg, n);
        t[log_len + n] = '\n';
        t[log_len + n + 1] = '\0';
        log_text = t;
        log_len += n + 1;
    }
    pthread_mutex_unlock(&log_mu);
}

#endif
