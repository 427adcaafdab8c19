#include "core/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static kle_log_fn log_fn;
static void *log_data;
static atomic_int log_verbosity;

void kle_log_set_handler(kle_log_fn fn, void *data)
{
    pthread_mutex_lock(&log_mu);
    log_fn = fn;
    log_data = data;
    pthread_mutex_unlock(&log_mu);
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

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

void kle_log_format_klog(char *buf, size_t size, kle_log_severity severity, const char *file,
                         int line, const char *msg)
{
    static const char letters[] = {'I', 'W', 'E'};
    struct timeval tv;
    struct tm tm;

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    snprintf(buf, size, "%c%02d%02d %02d:%02d:%02d.%06ld %7ld %s:%d] %s",
             letters[(unsigned)severity % 3], tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
             tm.tm_sec, (long)tv.tv_usec, (long)getpid(), base_name(file), line, msg);
}

void kle_log__write(kle_log_severity severity, int v, const char *file, int line, const char *fmt,
                    ...)
{
    char msg[2048];
    va_list ap;
    kle_log_fn fn;
    void *data;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    pthread_mutex_lock(&log_mu);
    fn = log_fn;
    data = log_data;
    pthread_mutex_unlock(&log_mu);

    if (fn) {
        fn(severity, v, base_name(file), line, msg, data);
        return;
    }
    char out[2300];
    kle_log_format_klog(out, sizeof(out), severity, file, line, msg);
    fprintf(stderr, "%s\n", out);
}
