/* Log lines of kle and libkle: klog's text layout or one JSON object a line. */
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int json_mode;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/* Keys of a JSON line that a structured field may not take over. */
static int reserved_key(const char *k)
{
    static const char *const keys[] = {"ts", "level", "v", "caller", "msg"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(k, keys[i]) == 0)
            return 1;
    return 0;
}

static void handler(const kle_log_entry *e, void *data)
{
    char buf[4096];
    (void)data;
    if (!json_mode) {
        /* The text layout shows the message: it says everything the fields do. */
        kle_log_format_klog(buf, sizeof(buf), e->severity, e->file, e->line, e->msg);
        pthread_mutex_lock(&out_lock);
        fprintf(stderr, "%s\n", buf);
        fflush(stderr);
        pthread_mutex_unlock(&out_lock);
        return;
    }
    struct tm tm;
    char ts[64], caller[256];
    time_t sec = (time_t)(e->time_ns / KLE_NS_PER_SEC);
    gmtime_r(&sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%06ldZ",
             (long)(e->time_ns % KLE_NS_PER_SEC / 1000));
    snprintf(caller, sizeof(caller), "%s:%d", e->file ? e->file : "?", e->line);
    json_object *o = json_object_new_object();
    if (!o)
        return;
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level",
                           json_object_new_string(e->severity == KLE_LOG_ERROR     ? "error"
                                                  : e->severity == KLE_LOG_WARNING ? "warning"
                                                                                   : "info"));
    if (e->severity == KLE_LOG_INFO)
        json_object_object_add(o, "v", json_object_new_int(e->v));
    json_object_object_add(o, "caller", json_object_new_string(caller));
    json_object_object_add(o, "msg", json_object_new_string(e->msg));
    for (size_t i = 0; i < e->nfields; i++) {
        const kle_log_field *f = &e->fields[i];
        if (!f->key || !*f->key || reserved_key(f->key))
            continue;
        json_object_object_add(o, f->key,
                               f->type == KLE_LOG_FIELD_INT
                                   ? json_object_new_int64(f->num)
                                   : json_object_new_string(f->str ? f->str : ""));
    }
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
    kle_log_set_entry_handler(handler, NULL);
}

static void vlog(kle_log_severity sev, int v, const char *file, int line,
                 const kle_log_field *fields, size_t nfields, const char *fmt, va_list ap)
    __attribute__((format(printf, 7, 0)));
static void vlog(kle_log_severity sev, int v, const char *file, int line,
                 const kle_log_field *fields, size_t nfields, const char *fmt, va_list ap)
{
    char msg[2048];
    if (sev == KLE_LOG_INFO && v > kle_log_verbosity())
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* Through libkle's queue: the handler runs on its drain thread, so a
     * blocked stderr never blocks the caller. */
    kle_log_write_fields(sev, v, file, line, fields, nfields, msg);
}

void cli_log(kle_log_severity sev, int v, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(sev, v, file, line, NULL, 0, fmt, ap);
    va_end(ap);
}

void cli_logf(kle_log_severity sev, int v, const char *file, int line, const kle_log_field *fields,
              size_t nfields, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(sev, v, file, line, fields, nfields, fmt, ap);
    va_end(ap);
}

void cli_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* Queued log lines first, so that the error is the last word. */
    kle_log_flush_ns(KLE_SEC(1));
    fprintf(stderr, "kle: %s\n", msg);
    fflush(stderr);
}

void cli_escape(char *out, size_t size, const char *in)
{
    kle_log_escape(out, size, in);
}
