/* Log lines of kle and libkle: klog's text layout or one JSON object a line. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cli.h"

static int json_mode;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static void handler(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                    void *data)
{
    char buf[4096];
    (void)data;
    (void)v;
    if (!json_mode) {
        kle_log_format_klog(buf, sizeof(buf), sev, file, line, msg);
        pthread_mutex_lock(&out_lock);
        fprintf(stderr, "%s\n", buf);
        fflush(stderr);
        pthread_mutex_unlock(&out_lock);
        return;
    }
    struct timeval tv;
    struct tm tm;
    char ts[64], caller[256];
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%06ldZ", (long)tv.tv_usec);
    snprintf(caller, sizeof(caller), "%s:%d", file ? file : "?", line);
    json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level",
                           json_object_new_string(sev == KLE_LOG_ERROR     ? "error"
                                                  : sev == KLE_LOG_WARNING ? "warning"
                                                                           : "info"));
    if (sev == KLE_LOG_INFO)
        json_object_object_add(o, "v", json_object_new_int(v));
    json_object_object_add(o, "caller", json_object_new_string(caller));
    json_object_object_add(o, "msg", json_object_new_string(msg));
    pthread_mutex_lock(&out_lock);
    fprintf(
        stderr, "%s\n",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stderr);
    pthread_mutex_unlock(&out_lock);
    json_object_put(o);
}

void cli_log_setup(int json, int verbosity)
{
    json_mode = json;
    kle_log_set_verbosity(verbosity);
    kle_log_set_handler(handler, NULL);
}

void cli_log(kle_log_severity sev, int v, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    if (sev == KLE_LOG_INFO && v > kle_log_verbosity())
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Through libkle's queue: the handler runs on its drain thread, so a
     * blocked stderr never blocks the caller. */
    kle_log_write(sev, v, file, line, msg);
}

void cli_escape(char *out, size_t size, const char *in)
{
    kle_log_escape(out, size, in);
}
