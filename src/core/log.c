/*
 * libkle's log: lines go into a bounded in-memory queue and one drain
 * thread hands them to the handler, so a blocked log destination (a full
 * pipe, a stalled collector) never blocks the thread that logs, the elector
 * among them. When the queue is full a line is dropped and counted; the
 * drain thread says how many were dropped once it catches up.
 */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Bounds of the queue: lines and bytes of message text. */
#define QUEUE_MAX_LINES 1024
#define QUEUE_MAX_BYTES (1024 * 1024)

typedef struct log_line {
    struct log_line *next;
    kle_log_severity severity;
    int v;
    int line;
    const char *file; /* a base name of __FILE__: static storage */
    char msg[];
} log_line;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_more = PTHREAD_COND_INITIALIZER; /* a line was queued */
static pthread_cond_t log_empty; /* the queue was drained (CLOCK_MONOTONIC waits) */
/* Held by the drain thread while it runs the handler, so that a handler
 * being replaced is not running once kle_log_set_handler() returns. */
static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static kle_log_fn log_fn;
static void *log_data;
static atomic_int log_verbosity;

static log_line *q_head, *q_tail;
static size_t q_lines, q_bytes;
static int q_busy;             /* the drain thread is handing a line over */
static uint64_t dropped_since; /* dropped since the last "dropped" line */
static atomic_uint_fast64_t dropped_total;
static pthread_once_t drain_once = PTHREAD_ONCE_INIT;
static int drain_ok;

void kle_log_set_handler(kle_log_fn fn, void *data)
{
    /* Lines queued for the old handler go to it first (bounded wait). */
    kle_log_flush_ns(KLE_SEC(1));
    pthread_mutex_lock(&call_mu);
    pthread_mutex_lock(&log_mu);
    log_fn = fn;
    log_data = data;
    pthread_mutex_unlock(&log_mu);
    pthread_mutex_unlock(&call_mu);
}

void kle_log_set_verbosity(int v)
{
    atomic_store(&log_verbosity, v);
}

int kle_log_verbosity(void)
{
    return atomic_load(&log_verbosity);
}

int kle_log__enabled(int v)
{
    return v <= atomic_load(&log_verbosity);
}

uint64_t kle_log_dropped(void)
{
    return (uint64_t)atomic_load(&dropped_total);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void kle_log_escape(char *out, size_t size, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t n = 0;
    if (!size)
        return;
    while (*p && n + 5 < size) {
        unsigned char c = *p;
        size_t len = 0;
        if (c >= 0x20 && c < 0x7f) {
            out[n++] = (char)c;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4;
        if (len) {
            size_t k = 1;
            while (k < len && (p[k] & 0xc0) == 0x80)
                k++;
            /* Whole sequences only, and not the C1 controls U+0080..U+009F. */
            if (k == len && !(c == 0xc2 && p[1] < 0xa0)) {
                if (n + len >= size)
                    break;
                memcpy(out + n, p, len);
                n += len;
                p += len;
                continue;
            }
        }
        out[n++] = '\\';
        if (c == '\n')
            out[n++] = 'n';
        else if (c == '\t')
            out[n++] = 't';
        else if (c == '\r')
            out[n++] = 'r';
        else {
            out[n++] = 'x';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
        p++;
    }
    out[n] = '\0';
}

void kle_log_format_klog(char *buf, size_t size, kle_log_severity severity, const char *file,
                         int line, const char *msg)
{
    static const char letters[] = {'I', 'W', 'E'};
    struct timeval tv;
    struct tm tm;
    char safe[2300];

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    kle_log_escape(safe, sizeof(safe), msg);
    snprintf(buf, size, "%c%02d%02d %02d:%02d:%02d.%06ld %7ld %s:%d] %s",
             letters[(unsigned)severity % 3], tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (long)tv.tv_usec, (long)getpid(), base_name(file), line, safe);
}

/* Hands one line to the handler (or stderr); on the drain thread. */
static void deliver(kle_log_severity severity, int v, const char *file, int line, const char *msg)
{
    kle_log_fn fn;
    void *data;
    pthread_mutex_lock(&call_mu);
    pthread_mutex_lock(&log_mu);
    fn = log_fn;
    data = log_data;
    pthread_mutex_unlock(&log_mu);
    if (fn) {
        fn(severity, v, file, line, msg, data);
    } else {
        char out[2400];
        kle_log_format_klog(out, sizeof(out), severity, file, line, msg);
        fprintf(stderr, "%s\n", out);
    }
    pthread_mutex_unlock(&call_mu);
}

static void *drain_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    for (;;) {
        while (!q_head && !dropped_since) {
            q_busy = 0;
            pthread_cond_broadcast(&log_empty);
            pthread_cond_wait(&log_more, &log_mu);
        }
        q_busy = 1;
        log_line *l = q_head;
        if (l) {
            q_head = l->next;
            if (!q_head)
                q_tail = NULL;
            q_lines--;
            q_bytes -= strlen(l->msg);
            pthread_mutex_unlock(&log_mu);
            deliver(l->severity, l->v, l->file, l->line, l->msg);
            free(l);
            pthread_mutex_lock(&log_mu);
            continue;
        }
        /* Caught up after dropping: say how many. */
        uint64_t n = dropped_since;
        dropped_since = 0;
        pthread_mutex_unlock(&log_mu);
        char msg[128];
        snprintf(msg, sizeof(msg),
                 "%llu log lines dropped: the log output was blocked and the queue full",
                 (unsigned long long)n);
        deliver(KLE_LOG_WARNING, 0, "log.c", __LINE__, msg);
        pthread_mutex_lock(&log_mu);
    }
    return NULL;
}

static void flush_at_exit(void)
{
    kle_log_flush_ns(KLE_SEC(2));
}

static void drain_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&log_empty, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The drain thread takes no signals: they belong to the program's threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    drain_ok = pthread_create(&t, &attr, drain_main, NULL) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (drain_ok)
        atexit(flush_at_exit);
}

void kle_log_write(kle_log_severity severity, int v, const char *file, int line, const char *msg)
{
    size_t len = strlen(msg);
    const char *base = base_name(file ? file : "?");
    pthread_once(&drain_once, drain_start);
    if (!drain_ok) {
        /* No thread (out of resources at the first line): write directly. */
        deliver(severity, v, base, line, msg);
        return;
    }
    pthread_mutex_lock(&log_mu);
    if (q_lines >= QUEUE_MAX_LINES || q_bytes + len > QUEUE_MAX_BYTES) {
        dropped_since++;
        atomic_fetch_add(&dropped_total, 1);
        pthread_mutex_unlock(&log_mu);
        return;
    }
    pthread_mutex_unlock(&log_mu);
    log_line *l = malloc(sizeof(*l) + len + 1);
    pthread_mutex_lock(&log_mu);
    if (!l) {
        dropped_since++;
        atomic_fetch_add(&dropped_total, 1);
        pthread_mutex_unlock(&log_mu);
        return;
    }
    l->next = NULL;
    l->severity = severity;
    l->v = v;
    l->line = line;
    l->file = base;
    memcpy(l->msg, msg, len + 1);
    if (q_tail)
        q_tail->next = l;
    else
        q_head = l;
    q_tail = l;
    q_lines++;
    q_bytes += len;
    pthread_cond_signal(&log_more);
    pthread_mutex_unlock(&log_mu);
}

int kle_log_flush_ns(int64_t timeout_ns)
{
    struct timespec end;
    int rc = 0;
    pthread_once(&drain_once, drain_start);
    if (!drain_ok)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &end);
    if (timeout_ns < 0)
        timeout_ns = 0;
    end.tv_sec += (time_t)(timeout_ns / KLE_NS_PER_SEC);
    end.tv_nsec += (long)(timeout_ns % KLE_NS_PER_SEC);
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&log_mu);
    while (q_head || q_busy || dropped_since) {
        if (pthread_cond_timedwait(&log_empty, &log_mu, &end) == ETIMEDOUT) {
            rc = q_head || q_busy || dropped_since ? -1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&log_mu);
    return rc;
}

void kle_log__write(kle_log_severity severity, int v, const char *file, int line, const char *fmt,
                    ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kle_log_write(severity, v, file, line, msg);
}
