/*
 * libkle's log: lines go into a bounded in-memory queue and one drain
 * thread hands them to the handler, so a blocked log destination (a full
 * pipe, a stalled collector) never blocks the thread that logs, the elector
 * among them. When the queue is full a line is dropped and counted; the
 * drain thread says how many were dropped once it catches up.
 */
#include "base/log.h"
#include "base/now.h"

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
    int64_t time_ns;  /* CLOCK_REALTIME when logged */
    size_t bytes;     /* text counted against QUEUE_MAX_BYTES */
    size_t nfields;
    kle_log_field *fields; /* nfields, right after the struct; strings after them */
    char *msg;
} log_line;

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_more = PTHREAD_COND_INITIALIZER; /* a line was queued */
static pthread_cond_t log_empty; /* the queue was drained (CLOCK_MONOTONIC waits) */
/* Held by the drain thread while it runs the handler, so that a handler
 * being replaced is not running once kle_log_set_handler() returns. */
static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER;
static kle_log_fn log_fn;
static kle_log_entry_fn entry_fn; /* at most one of log_fn and entry_fn is set */
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
    entry_fn = NULL;
    log_data = data;
    pthread_mutex_unlock(&log_mu);
    pthread_mutex_unlock(&call_mu);
}

void kle_log_set_entry_handler(kle_log_entry_fn fn, void *data)
{
    kle_log_flush_ns(KLE_SEC(1));
    pthread_mutex_lock(&call_mu);
    pthread_mutex_lock(&log_mu);
    log_fn = NULL;
    entry_fn = fn;
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

static int64_t wall_now_ns(void)
{
    return kle_now__ns(CLOCK_REALTIME);
}

static int64_t mono_now_ns(void)
{
    return kle_now__ns(CLOCK_MONOTONIC);
}

/* Hands one line to the handler (or stderr); on the drain thread. */
static void deliver(kle_log_severity severity, int v, const char *file, int line, const char *msg,
                    int64_t time_ns, const kle_log_field *fields, size_t nfields)
{
    kle_log_fn fn;
    kle_log_entry_fn efn;
    void *data;
    pthread_mutex_lock(&call_mu);
    pthread_mutex_lock(&log_mu);
    fn = log_fn;
    efn = entry_fn;
    data = log_data;
    pthread_mutex_unlock(&log_mu);
    if (efn) {
        kle_log_entry e;
        memset(&e, 0, sizeof(e));
        e.version = KLE_LOG_ENTRY_VERSION;
        e.severity = severity;
        e.v = v;
        e.file = file;
        e.line = line;
        e.msg = msg;
        e.time_ns = time_ns;
        e.fields = nfields ? fields : NULL;
        e.nfields = nfields;
        efn(&e, data);
    } else if (fn) {
        fn(severity, v, file, line, msg, data);
    } else {
        char out[2400];
        kle_log_format_klog(out, sizeof(out), severity, file, line, msg);
        fprintf(stderr, "%s\n", out);
    }
    pthread_mutex_unlock(&call_mu);
}

static int64_t limits_next_due(void);

static void *drain_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&log_mu);
    for (;;) {
        while (!q_head && !dropped_since) {
            q_busy = 0;
            pthread_cond_broadcast(&log_empty);
            /* Sleep until a line comes, or a rate-limited line's summary is due. */
            int64_t due = limits_next_due();
            if (due == INT64_MAX) {
                pthread_cond_wait(&log_more, &log_mu);
                continue;
            }
            if (due > mono_now_ns()) {
                struct timespec at = {(time_t)(due / KLE_NS_PER_SEC), (long)(due % KLE_NS_PER_SEC)};
                pthread_cond_timedwait(&log_more, &log_mu, &at);
                continue;
            }
            pthread_mutex_unlock(&log_mu);
            kle_log__limits_flush_at(mono_now_ns()); /* queues the summaries */
            pthread_mutex_lock(&log_mu);
        }
        q_busy = 1;
        log_line *l = q_head;
        if (l) {
            q_head = l->next;
            if (!q_head)
                q_tail = NULL;
            q_lines--;
            q_bytes -= l->bytes;
            pthread_mutex_unlock(&log_mu);
            deliver(l->severity, l->v, l->file, l->line, l->msg, l->time_ns, l->fields, l->nfields);
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
        deliver(KLE_LOG_WARNING, 0, "log.c", __LINE__, msg, wall_now_ns(), NULL, 0);
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
    /* Nothing waits on or signals log_more before this once-only start. */
    pthread_cond_destroy(&log_more);
    pthread_cond_init(&log_more, &ca);
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

void kle_log_write_fields(kle_log_severity severity, int v, const char *file, int line,
                          const kle_log_field *fields, size_t nfields, const char *msg)
{
    int64_t now = wall_now_ns();
    const char *base = base_name(file ? file : "?");
    if (!msg)
        msg = "";
    if (!fields)
        nfields = 0;
    pthread_once(&drain_once, drain_start);
    if (!drain_ok) {
        /* No thread (out of resources at the first line): write directly. */
        deliver(severity, v, base, line, msg, now, fields, nfields);
        return;
    }
    /* One allocation: the line, its fields, then every string. */
    size_t len = strlen(msg), text = len + 1;
    for (size_t i = 0; i < nfields; i++) {
        text += strlen(fields[i].key ? fields[i].key : "") + 1;
        if (fields[i].type == KLE_LOG_FIELD_STRING)
            text += strlen(fields[i].str ? fields[i].str : "") + 1;
    }
    pthread_mutex_lock(&log_mu);
    if (q_lines >= QUEUE_MAX_LINES || q_bytes + text > QUEUE_MAX_BYTES) {
        dropped_since++;
        atomic_fetch_add(&dropped_total, 1);
        pthread_mutex_unlock(&log_mu);
        return;
    }
    pthread_mutex_unlock(&log_mu);
    log_line *l = malloc(sizeof(*l) + nfields * sizeof(kle_log_field) + text);
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
    l->time_ns = now;
    l->bytes = text;
    l->nfields = nfields;
    l->fields = (kle_log_field *)(l + 1);
    char *p = (char *)(l->fields + nfields);
    for (size_t i = 0; i < nfields; i++) {
        const char *k = fields[i].key ? fields[i].key : "";
        size_t kl = strlen(k) + 1;
        memcpy(p, k, kl);
        l->fields[i].key = p;
        p += kl;
        l->fields[i].type = fields[i].type;
        l->fields[i].num = fields[i].num;
        l->fields[i].str = NULL;
        if (fields[i].type == KLE_LOG_FIELD_STRING) {
            const char *sv = fields[i].str ? fields[i].str : "";
            size_t sl = strlen(sv) + 1;
            memcpy(p, sv, sl);
            l->fields[i].str = p;
            p += sl;
        }
    }
    memcpy(p, msg, len + 1);
    l->msg = p;
    if (q_tail)
        q_tail->next = l;
    else
        q_head = l;
    q_tail = l;
    q_lines++;
    q_bytes += text;
    pthread_cond_signal(&log_more);
    pthread_mutex_unlock(&log_mu);
}

void kle_log_write(kle_log_severity severity, int v, const char *file, int line, const char *msg)
{
    kle_log_write_fields(severity, v, file, line, NULL, 0, msg);
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

/* ---- Rate-limited lines (core/log.h) ---- */

typedef struct limit {
    const char *file; /* NULL: a free slot */
    int line;
    uint64_t hash; /* of the text */
    kle_log_severity severity;
    int v;
    int64_t window_start; /* when the last line of it (whole or summary) was written */
    uint64_t repeats;     /* since then */
    char *text;
} limit;

static pthread_mutex_t lim_mu = PTHREAD_MUTEX_INITIALIZER;
static limit limits[KLE_LOG__LIMITS];

static uint64_t fnv1a(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* A line to write once lim_mu is released (the queue takes log_mu, which
 * the drain thread holds while it asks limits_next_due()). */
typedef struct pending_line {
    kle_log_severity severity;
    int v, line;
    const char *file;
    char msg[400];
} pending_line;

static void summarize(pending_line *out, const limit *l)
{
    out->severity = l->severity;
    out->v = l->v;
    out->line = l->line;
    out->file = l->file;
    snprintf(out->msg, sizeof(out->msg), "repeated %llu times in the last minute: %.240s%s",
             (unsigned long long)l->repeats, l->text, strlen(l->text) > 240 ? "..." : "");
}

static void limit_free(limit *l)
{
    free(l->text);
    memset(l, 0, sizeof(*l));
}

/* When its minute is over: a summary of @p l's repeats into @p out
 * (returns 1), or forgets a line that did not repeat. lim_mu held. */
static int limit_expire(limit *l, int64_t now, pending_line *out)
{
    if (!l->file || now - l->window_start < KLE_LOG__LIMIT_WINDOW)
        return 0;
    if (!l->repeats) {
        limit_free(l);
        return 0;
    }
    summarize(out, l);
    l->repeats = 0;
    l->window_start = now;
    return 1;
}

void kle_log__limited_at(int64_t now, kle_log_severity severity, int v, const char *file, int line,
                         const char *msg)
{
    uint64_t h = fnv1a(msg);
    const char *base = base_name(file ? file : "?");
    limit *l = NULL, *oldest = NULL, *free_slot = NULL;
    pending_line summary;
    int have_summary = 0;
    pthread_mutex_lock(&lim_mu);
    for (size_t i = 0; i < KLE_LOG__LIMITS; i++) {
        limit *c = &limits[i];
        if (!c->file) {
            if (!free_slot)
                free_slot = c;
            continue;
        }
        if (c->line == line && c->hash == h && strcmp(c->file, base) == 0 &&
            strcmp(c->text, msg) == 0) {
            l = c;
            break;
        }
        if (!oldest || c->window_start < oldest->window_start)
            oldest = c;
    }
    if (l) {
        have_summary = limit_expire(l, now, &summary);
        if (l->file) {
            l->repeats++;
            pthread_mutex_unlock(&lim_mu);
            if (have_summary)
                kle_log_write(summary.severity, summary.v, summary.file, summary.line, summary.msg);
            return;
        }
        free_slot = l; /* forgotten just now: its slot is free */
    }
    /* New (or forgotten): the whole line, and its repeats counted from now. */
    l = free_slot ? free_slot : oldest;
    if (l->file) {
        if (l->repeats) {
            summarize(&summary, l);
            have_summary = 1;
        }
        limit_free(l);
    }
    char *copy = strdup(msg);
    if (copy) {
        l->file = base;
        l->line = line;
        l->hash = h;
        l->severity = severity;
        l->v = v;
        l->window_start = now;
        l->repeats = 0;
        l->text = copy;
    }
    pthread_mutex_unlock(&lim_mu);
    if (have_summary)
        kle_log_write(summary.severity, summary.v, summary.file, summary.line, summary.msg);
    kle_log_write(severity, v, file, line, msg);
}

void kle_log__write_limited(kle_log_severity severity, int v, const char *file, int line,
                            const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (severity == KLE_LOG_INFO && !kle_log__enabled(v))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    kle_log__limited_at(mono_now_ns(), severity, v, file, line, msg);
}

void kle_log__limits_flush_at(int64_t now)
{
    static pending_line due[KLE_LOG__LIMITS]; /* under flush_mu: off the caller's stack */
    static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
    size_t n = 0;
    pthread_mutex_lock(&flush_mu);
    pthread_mutex_lock(&lim_mu);
    for (size_t i = 0; i < KLE_LOG__LIMITS; i++)
        n += (size_t)limit_expire(&limits[i], now, &due[n]);
    pthread_mutex_unlock(&lim_mu);
    for (size_t i = 0; i < n; i++)
        kle_log_write(due[i].severity, due[i].v, due[i].file, due[i].line, due[i].msg);
    pthread_mutex_unlock(&flush_mu);
}

static int64_t limits_next_due(void)
{
    int64_t due = INT64_MAX;
    pthread_mutex_lock(&lim_mu);
    for (size_t i = 0; i < KLE_LOG__LIMITS; i++)
        if (limits[i].file && limits[i].window_start + KLE_LOG__LIMIT_WINDOW < due)
            due = limits[i].window_start + KLE_LOG__LIMIT_WINDOW;
    pthread_mutex_unlock(&lim_mu);
    return due;
}

void kle_log__limits_reset(void)
{
    pthread_mutex_lock(&lim_mu);
    for (size_t i = 0; i < KLE_LOG__LIMITS; i++)
        if (limits[i].file)
            limit_free(&limits[i]);
    pthread_mutex_unlock(&lim_mu);
}
