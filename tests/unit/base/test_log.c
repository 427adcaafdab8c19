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
#include "base/log.h"

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

/* Lines an entry handler saw: message, severity, fields as "k=v ...". */
static char seen_msg[16][512], seen_fields[16][256];
static kle_log_severity seen_sev[16];
static int64_t seen_time[16];
static unsigned int seen_version;
static int nseen;

static void entry_capture(const kle_log_entry *e, void *data)
{
    (void)data;
    pthread_mutex_lock(&mu);
    if (nseen < 16) {
        snprintf(seen_msg[nseen], sizeof(seen_msg[0]), "%s", e->msg);
        seen_sev[nseen] = e->severity;
        seen_time[nseen] = e->time_ns;
        seen_version = e->version;
        seen_fields[nseen][0] = '\0';
        for (size_t i = 0; i < e->nfields; i++) {
            size_t n = strlen(seen_fields[nseen]);
            if (e->fields[i].type == KLE_LOG_FIELD_INT)
                snprintf(seen_fields[nseen] + n, sizeof(seen_fields[0]) - n, "%s=%lld ",
                         e->fields[i].key, (long long)e->fields[i].num);
            else
                snprintf(seen_fields[nseen] + n, sizeof(seen_fields[0]) - n, "%s=%s ",
                         e->fields[i].key, e->fields[i].str);
        }
    }
    nseen++;
    pthread_mutex_unlock(&mu);
}

static void capture_reset(void)
{
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    pthread_mutex_lock(&mu);
    nseen = 0;
    pthread_mutex_unlock(&mu);
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * KLE_NS_PER_SEC + ts.tv_nsec;
}

/* An entry handler gets each line's structured fields (copied when the
 * line was queued), its time and the entry version; a kle_log_fn handler
 * keeps working beside it (the message only). */
static void test_log__entry_handler_gets_structured_fields(void **state)
{
    (void)state;
    kle_log_set_entry_handler(entry_capture, NULL);
    capture_reset();
    char holder[16] = "replica-2";
    kle_log_field f[] = {KLE_LOG_STR("lock", "leases/default/x"), KLE_LOG_STR("holder", holder),
                         KLE_LOG_INT("token", 42), KLE_LOG_STR("err", NULL)};
    int64_t before = wall_ns();
    kle_log_write_fields(KLE_LOG_WARNING, 0, "src/cli/run.c", 12, f, 4, "lost it");
    strcpy(holder, "changed"); /* the queue holds its own copy */
    kle_log_write(KLE_LOG_INFO, 0, "x.c", 1, "no fields");
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(nseen, 2);
    assert_int_equal(seen_version, KLE_LOG_ENTRY_VERSION);
    assert_string_equal(seen_msg[0], "lost it");
    assert_int_equal(seen_sev[0], KLE_LOG_WARNING);
    assert_string_equal(seen_fields[0], "lock=leases/default/x holder=replica-2 token=42 err= ");
    assert_true(seen_time[0] >= before && seen_time[0] <= wall_ns());
    assert_string_equal(seen_fields[1], "");
    pthread_mutex_unlock(&mu);

    /* The older handler replaces it, and sees the message alone. */
    delivered = 0;
    kle_log_set_handler(handler, NULL);
    kle_log_write_fields(KLE_LOG_INFO, 0, "x.c", 1, f, 4, "seq 1000000");
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(delivered, 1);
    assert_int_equal(nseen, 2);
    pthread_mutex_unlock(&mu);
    kle_log_set_handler(NULL, NULL);
}

static int count_containing(const char *text)
{
    int n = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nseen && i < 16; i++)
        n += strstr(seen_msg[i], text) != NULL;
    pthread_mutex_unlock(&mu);
    return n;
}

/*
 * A repeated line (same place, same text) is logged in full once, then
 * once a minute as a count while it repeats; after a quiet minute it is
 * forgotten and logged in full again. Other texts and places are not held
 * back by it. The times are given (the monotonic clock from now on), so
 * the minutes pass at once.
 */
static void test_log__repeats_are_logged_once_then_counted_each_minute(void **state)
{
    (void)state;
    const int64_t MIN = KLE_LOG__LIMIT_WINDOW;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t t0 = (int64_t)ts.tv_sec * KLE_NS_PER_SEC + ts.tv_nsec;
    char longmsg[400];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    memcpy(longmsg, "refused: ", 9);

    kle_log__limits_reset();
    kle_log_set_entry_handler(entry_capture, NULL);
    capture_reset();
    kle_log__limited_at(t0, KLE_LOG_ERROR, 0, "elector.c", 10, longmsg);
    for (int i = 1; i < 60; i++)
        kle_log__limited_at(t0 + KLE_SEC(i), KLE_LOG_ERROR, 0, "elector.c", 10, longmsg);
    /* Another text, and the same text from another place: their own lines. */
    kle_log__limited_at(t0 + KLE_SEC(2), KLE_LOG_ERROR, 0, "elector.c", 10, "other text");
    kle_log__limited_at(t0 + KLE_SEC(3), KLE_LOG_ERROR, 0, "candidate.c", 10, longmsg);
    kle_log__limits_flush_at(t0 + MIN - 1);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(nseen, 3);
    assert_string_equal(seen_msg[0], longmsg);
    assert_int_equal(seen_sev[0], KLE_LOG_ERROR);
    assert_string_equal(seen_msg[1], "other text");
    assert_string_equal(seen_msg[2], longmsg);

    /* The minute is over: one line counts the 59 repeats, shortened. */
    capture_reset();
    kle_log__limits_flush_at(t0 + MIN);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(nseen, 1);
    assert_non_null(strstr(seen_msg[0], "repeated 59 times in the last minute: refused: xxx"));
    assert_true(strlen(seen_msg[0]) < 320);
    assert_non_null(strstr(seen_msg[0], "..."));
    assert_int_equal(seen_sev[0], KLE_LOG_ERROR);

    /* It goes on repeating: the next count a minute later. */
    capture_reset();
    for (int i = 61; i < 120; i += 2)
        kle_log__limited_at(t0 + KLE_SEC(i), KLE_LOG_ERROR, 0, "elector.c", 10, longmsg);
    kle_log__limits_flush_at(t0 + 2 * MIN);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(nseen, 1);
    assert_non_null(strstr(seen_msg[0], "repeated 30 times in the last minute"));

    /* A quiet minute: nothing to say, and it is forgotten; when it comes
     * back, the whole line again. */
    capture_reset();
    kle_log__limits_flush_at(t0 + 3 * MIN);
    kle_log__limited_at(t0 + 3 * MIN + KLE_SEC(1), KLE_LOG_ERROR, 0, "elector.c", 10, longmsg);
    assert_int_equal(kle_log_flush_ns(KLE_SEC(5)), 0);
    assert_int_equal(nseen, 1);
    assert_string_equal(seen_msg[0], longmsg);
    assert_int_equal(count_containing("repeated"), 0);

    /* Unasked, the log's own thread writes a count when its minute is up
     * (here 200 ms from now). */
    kle_log__limits_reset();
    capture_reset();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t start = (int64_t)ts.tv_sec * KLE_NS_PER_SEC + ts.tv_nsec - MIN + KLE_MS(200);
    kle_log__limited_at(start, KLE_LOG_WARNING, 0, "candidate.c", 5, "forbidden");
    kle_log__limited_at(start + 1, KLE_LOG_WARNING, 0, "candidate.c", 5, "forbidden");
    int64_t end = now_ms() + 5000;
    while (count_containing("repeated 1 times") == 0 && now_ms() < end) {
        struct timespec nap = {0, 10 * 1000000L};
        nanosleep(&nap, NULL);
    }
    assert_int_equal(count_containing("repeated 1 times in the last minute: forbidden"), 1);
    kle_log__limits_reset();
    kle_log_set_handler(NULL, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log__blocked_handler_never_blocks_the_logger),
        cmocka_unit_test(test_log__klog_layout_escapes_control_characters),
        cmocka_unit_test(test_log__entry_handler_gets_structured_fields),
        cmocka_unit_test(test_log__repeats_are_logged_once_then_counted_each_minute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
