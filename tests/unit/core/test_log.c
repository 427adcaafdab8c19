/* Unit tests of libkle's log queue: a blocked handler never blocks the
 * thread that logs; lines are dropped and counted when the queue is full,
 * and a flush delivers everything else in order. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "kle/log.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int blocked;    /* the handler waits while set */
static int in_handler; /* the handler is waiting */
static int delivered;  /* lines handed over */
static int last_seq;   /* the sequence number of the last "seq N" line */
static int in_order = 1;
static char dropped_line[256];
static pthread_t drain_thread;

static void handler(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                    void *data)
{
    (void)sev, (void)v, (void)file, (void)line, (void)data;
    pthread_mutex_lock(&mu);
    drain_thread = pthread_self();
    in_handler = 1;
    pthread_cond_broadcast(&cv);
    while (blocked)
        pthread_cond_wait(&cv, &mu);
    in_handler = 0;
    delivered++;
    int seq;
    if (sscanf(msg, "seq %d", &seq) == 1) {
        if (seq <= last_seq)
            in_order = 0;
        last_seq = seq;
    }
    if (strstr(msg, "log lines dropped"))
        snprintf(dropped_line, sizeof(dropped_line), "%s", msg);
    pthread_mutex_unlock(&mu);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_log__blocked_handler_never_blocks_the_logger(void **state)
{
    (void)state;
    char msg[64];
    kle_log_set_handler(handler, NULL);
    uint64_t dropped0 = kle_log_dropped();

    /* The handler blocks on the first line, like a write to a full pipe. */
    pthread_mutex_lock(&mu);
    blocked = 1;
    pthread_mutex_unlock(&mu);
    kle_log_write(KLE_LOG_INFO, 0, __FILE__, __LINE__, "seq 1");
    pthread_mutex_lock(&mu);
    while (!in_handler)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);

    /* Many more lines than the queue holds: every call returns at once. */
    int64_t t0 = now_ms();
    for (int i = 2; i <= 5000; i++) {
        snprintf(msg, sizeof(msg), "seq %d", i);
        kle_log_write(KLE_LOG_INFO, 0, __FILE__, __LINE__, msg);
    }
    int64_t took = now_ms() - t0;
    assert_true(took < 2000);
    assert_false(pthread_equal(drain_thread, pthread_self()));
    uint64_t dropped = kle_log_dropped() - dropped0;
    /* 1 line in the handler, 1024 queued, the rest dropped. */
    assert_int_equal(dropped, 5000 - 1 - 1024);
    assert_int_equal(kle_log_flush_ns(KLE_MS(50)), -1); /* still blocked */

    pthread_mutex_lock(&mu);
    blocked = 0;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    assert_int_equal(kle_log_flush_ns(KLE_MS(5000)), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(delivered, 1 + 1024 + 1); /* the lines kept and the "dropped" warning */
    assert_true(in_order);
    assert_int_equal(last_seq, 1025);
    char want[64];
    snprintf(want, sizeof(want), "%llu log lines dropped", (unsigned long long)dropped);
    assert_non_null(strstr(dropped_line, want));
    pthread_mutex_unlock(&mu);
    kle_log_set_handler(NULL, NULL);
}

static void test_log__klog_layout_escapes_control_characters(void **state)
{
    char buf[512];
    (void)state;
    kle_log_format_klog(buf, sizeof(buf), KLE_LOG_WARNING, "src/x.c", 7,
                        "holder a\nI1121 forged] line\x1b[2J\xc2\x9b\x80 caf\xc3\xa9\\");
    assert_non_null(strstr(buf, " x.c:7] holder a\\nI1121 forged] line\\x1b[2J\\xc2\\x9b\\x80 "
                                "caf\xc3\xa9\\"));
    assert_null(strchr(buf, '\n'));
    assert_null(strchr(buf, '\x1b'));
    assert_int_equal(buf[0], 'W');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log__blocked_handler_never_blocks_the_logger),
        cmocka_unit_test(test_log__klog_layout_escapes_control_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
