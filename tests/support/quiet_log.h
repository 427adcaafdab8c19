/* Test helper: silences libkle's log, counting lines by severity. */
#ifndef KLE_TESTS_QUIET_LOG_H
#define KLE_TESTS_QUIET_LOG_H

#include "kle/log.h"

#include <stdatomic.h>

static atomic_int quiet_log_lines[3];

static void quiet_log_handler(kle_log_severity sev, int v, const char *file, int line,
                              const char *msg, void *data)
{
    (void)v, (void)file, (void)line, (void)msg, (void)data;
    atomic_fetch_add(&quiet_log_lines[(unsigned)sev % 3], 1);
}

static inline void quiet_log_install(void)
{
    kle_log_set_handler(quiet_log_handler, NULL);
}

#endif
