/* The watch stream: list, then watch from the listed resourceVersion,
 * resuming after a broken stream and re-listing after 410 Gone. */
#include "kle/client.h"
#include "kle/rest.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* ---- watch ------------------------------------------------------------- */

const char *kle_watch_event_type_name(kle_watch_event_type type)
{
    switch (type) {
    case KLE_WATCH_ADDED:
        return "ADDED";
    case KLE_WATCH_MODIFIED:
        return "MODIFIED";
    case KLE_WATCH_DELETED:
        return "DELETED";
    case KLE_WATCH_BOOKMARK:
        return "BOOKMARK";
    case KLE_WATCH_LISTED:
        return "LISTED";
    default:
        return "?";
    }
}

struct watch {
    kle_client *c;
    CURL *h;
    const char *path;
    kle_watch_fn fn;
    void *data;
    char rv[256];
    struct xfer x;
    size_t consumed; /* bytes of x.body already processed */
    long status;     /* HTTP status once known */
    int counted;     /* this stream is in the client's request counts */
    int stop_rc;     /* callback's value when it stopped the watch */
    int stopped;
    int gone;     /* 410 seen in an ERROR event */
    int error_rc; /* other ERROR event: its code */
    int events;   /* events delivered on this stream */
};

static void set_rv_from(struct watch *w, json_object *obj)
{
    json_object *md;
    if (obj && json_object_object_get_ex(obj, "metadata", &md)) {
        const char *rv = kle_kube__jstr(md, "resourceVersion");
        if (rv && *rv)
            snprintf(w->rv, sizeof(w->rv), "%s", rv);
    }
}

/* Handles one line of the watch stream. Returns non-zero to end the stream. */
static int watch_line(void *ud, const char *line, size_t len)
{
    struct watch *w = ud;
    kle_kube__watch_event e;
    int rc = kle_kube__watch_event_decode(&e, line, len, w->path);
    if (rc == KLE_EGONE) {
        KLE_LOG_V(4, "watch %s: resourceVersion %s is too old; re-listing", w->path, w->rv);
        w->gone = 1;
        return 1;
    }
    if (rc < 0) {
        w->error_rc = rc;
        return 1;
    }
    if (rc > 0)
        return 0;
    set_rv_from(w, e.obj);
    w->events++;
    KLE_LOG_V(7, "watch %s: %s resourceVersion %s", w->path, kle_watch_event_type_name(e.type),
              w->rv);
    int r = w->fn(e.type, e.obj, w->data);
    json_object_put(e.ev);
    if (r) {
        w->stopped = 1;
        w->stop_rc = r < 0 ? r : 0;
        return 1;
    }
    return 0;
}

static int watch_on_data(void *ud)
{
    struct watch *w = ud;
    if (!w->status)
        curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &w->status);
    if (w->status && !w->counted) {
        /* Counted as it starts, not when it ends (half an hour later). */
        kle_kube__count_request(w->c, "watch", "GET", w->path, w->status);
        w->counted = 1;
    }
    if (w->status != 200)
        return 0; /* An error body is read whole. */
    return kle_kube__watch_feed(&w->x.body, &w->consumed, watch_line, w);
}

static int watch_list(struct watch *w, int64_t deadline, kle_event *cancel, const char *query)
{
    char *p = str_printf("%s%s%s", w->path, *query ? "?" : "", query);
    if (!p)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    int64_t left = deadline == INT64_MAX ? 0 : ms_left(deadline);
    if (deadline != INT64_MAX && left == 0) {
        free(p);
        return KLE_ETIMEOUT;
    }
    ro.timeout_ns = left * 1000000;
    ro.cancel = cancel;
    json_object *list = NULL;
    int rc = kle_client_get(&list, w->c, p, &ro);
    free(p);
    if (rc)
        return rc;
    set_rv_from(w, list);
    int r = w->fn(KLE_WATCH_LISTED, list, w->data);
    json_object_put(list);
    if (r) {
        w->stopped = 1;
        w->stop_rc = r < 0 ? r : 0;
    }
    return 0;
}

static int add_query(char *q, size_t size, const char *key, const char *value)
{
    size_t off = strlen(q);
    int n = snprintf(q + off, size - off, "%s%s=", off ? "&" : "", key);
    if (n < 0 || (size_t)n >= size - off)
        return -1;
    off += (size_t)n;
    for (const char *s = value; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~", ch))
            n = snprintf(q + off, size - off, "%c", ch);
        else
            n = snprintf(q + off, size - off, "%%%02X", ch);
        if (n < 0 || (size_t)n >= size - off)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

static int check_watch_opts(const kle_watch_opts *o)
{
    if (o && (o->version < 1 || o->version > KLE_WATCH_OPTS_VERSION))
        return kle_error_set(KLE_EVERSION, "kle_watch_opts version %u is not supported (1..%d)",
                             o->version, KLE_WATCH_OPTS_VERSION);
    return 0;
}

/* Waits for a backoff period, or until cancel or the deadline. Returns
 * non-zero when the watch must end. */
static int backoff_wait(int64_t ms, int64_t deadline, kle_event *cancel)
{
    int64_t until = kle_kube__now_ns() + ms * 1000000;
    if (until > deadline)
        until = deadline;
    for (;;) {
        int64_t left = ms_left(until);
        if (cancel && kle_event_is_set(cancel))
            return 1;
        if (left == 0)
            return deadline <= kle_kube__now_ns();
        struct pollfd p = {cancel ? kle_event_fd(cancel) : -1, POLLIN, 0};
        poll(&p, 1, (int)(left > 1000 ? 1000 : left));
    }
}

int kle_client_watch(kle_client *c, const char *path, const kle_watch_opts *opts, kle_watch_fn fn,
                     void *data)
{
    int rc;
    if (!c || !path || !fn || path[0] != '/')
        return kle_error_set(KLE_EINVAL,
                             "kle_client_watch: client, fn and an absolute path must be set");
    if ((rc = check_watch_opts(opts)))
        return rc;
    kle_event *cancel = opts ? opts->cancel : NULL;
    int64_t deadline = opts && opts->timeout_ns > 0
                           ? kle_kube__now_ns() + ns_to_ms(opts->timeout_ns) * 1000000
                           : INT64_MAX;
    int64_t stream_ns =
        opts && opts->stream_timeout_ns > 0 ? opts->stream_timeout_ns : KLE_SEC(300);
    if (stream_ns > KLE_SEC(86400))
        stream_ns = KLE_SEC(86400);
    int stream_secs = stream_ns < KLE_NS_PER_SEC ? 1 : (int)(stream_ns / KLE_NS_PER_SEC);
    char selectors[1024] = "";
    if ((opts && opts->field_selector && *opts->field_selector &&
         add_query(selectors, sizeof(selectors), "fieldSelector", opts->field_selector)) ||
        (opts && opts->label_selector && *opts->label_selector &&
         add_query(selectors, sizeof(selectors), "labelSelector", opts->label_selector)))
        return kle_error_set(KLE_EINVAL, "WATCH %s: selectors are too long", path);

    struct watch w = {0};
    w.c = c;
    w.path = path;
    w.fn = fn;
    w.data = data;
    w.h = curl_easy_init();
    CURLM *m = curl_multi_init();
    if (!w.h || !m) {
        curl_easy_cleanup(w.h);
        curl_multi_cleanup(m);
        return kle_error_set(KLE_ETRANSPORT, "WATCH %s: libcurl could not be initialised", path);
    }
    if (opts && opts->resource_version && *opts->resource_version)
        snprintf(w.rv, sizeof(w.rv), "%s", opts->resource_version);
    int need_list = !w.rv[0];
    int64_t backoff = 0;
    int auth_retried = 0;
    rc = 0;
    for (;;) {
        if (cancel && kle_event_is_set(cancel)) {
            rc = kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
            break;
        }
        if (deadline != INT64_MAX && ms_left(deadline) == 0) {
            rc = 0;
            break;
        }
        if (backoff && backoff_wait(backoff, deadline, cancel))
            continue; /* the checks above end the loop */
        if (need_list) {
            rc = watch_list(&w, deadline, cancel, selectors);
            if (w.stopped) {
                rc = w.stop_rc;
                break;
            }
            if (rc == KLE_ETOOMANYREQUESTS || rc == KLE_ESERVER || rc == KLE_ETRANSPORT ||
                rc == KLE_ETIMEOUT) {
                if (rc == KLE_ETIMEOUT && deadline != INT64_MAX && ms_left(deadline) == 0)
                    rc = 0;
                else {
                    KLE_LOG_V(4, "watch %s: list failed, retrying: %s", path,
                              kle_error_last()->message);
                    backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
                    continue;
                }
            }
            if (rc)
                break;
            need_list = 0;
        }

        char query[1600] = "watch=true&allowWatchBookmarks=true";
        char *url = NULL, *shown = NULL;
        size_t ql = strlen(query);
        snprintf(query + ql, sizeof(query) - ql, "&timeoutSeconds=%d", stream_secs);
        if (add_query(query, sizeof(query), "resourceVersion", w.rv) ||
            (*selectors && (ql = strlen(query)) < sizeof(query) - 1 &&
             snprintf(query + ql, sizeof(query) - ql, "&%s", selectors) >=
                 (int)(sizeof(query) - ql))) {
            rc = kle_error_set(KLE_EINVAL, "WATCH %s: the query is too long", path);
            break;
        }
        url = str_printf("%s%s?%s", c->url_base, path, query);
        shown = str_printf("%s?%s", path, query);
        if (!url || !shown) {
            free(url);
            free(shown);
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
            break;
        }
        int64_t stream_deadline = kle_kube__now_ns() + (int64_t)(stream_secs + 15) * 1000000000;
        if (stream_deadline > deadline)
            stream_deadline = deadline;
        struct auth a;
        if ((rc = kle_kube__auth_get(c, &a, stream_deadline, cancel))) {
            free(url);
            free(shown);
            if (rc == KLE_ETIMEOUT && deadline != INT64_MAX && ms_left(deadline) == 0) {
                rc = 0; /* the watch's own time is up */
                break;
            }
            kle_error_prefix("WATCH %s: ", path);
            break;
        }
        char errbuf[CURL_ERROR_SIZE];
        struct curl_slist *headers = NULL;
        kle_kube__buf_free(&w.x.body);
        memset(&w.x, 0, sizeof(w.x));
        w.x.c = c;
        w.x.max = c->max_response;
        w.consumed = 0;
        w.status = 0;
        w.counted = 0;
        w.gone = 0;
        w.error_rc = 0;
        w.events = 0;
        curl_easy_reset(w.h);
        if ((rc = kle_kube__setup_easy(c, w.h, "GET", url, &headers, &a, NULL, NULL, 0,
                                       ms_left(stream_deadline), &w.x, errbuf))) {
            kle_kube__auth_clear(&a);
            free(url);
            free(shown);
            break;
        }
        KLE_LOG_V(6, "WATCH %s", shown);
        CURLcode cc;
        enum drive_result dr =
            kle_kube__drive(m, w.h, stream_deadline, cancel, watch_on_data, &w, &cc);
        curl_easy_setopt(w.h, CURLOPT_HTTPHEADER, NULL);
        wipe_slist(headers);
        if (!w.status)
            curl_easy_getinfo(w.h, CURLINFO_RESPONSE_CODE, &w.status);
        if (dr == DRIVE_DONE && cc == CURLE_OK && w.status == 200)
            watch_on_data(&w); /* the last bytes */
        KLE_LOG_V(6, "WATCH %s ended: status %ld, %d events", shown, w.status, w.events);
        if (dr != DRIVE_CANCELED && !w.counted)
            kle_kube__count_request(c, "watch", "GET", path, w.status ? w.status : -1);
        free(url);
        if (w.events)
            backoff = 0;
        if (w.stopped) {
            kle_kube__auth_clear(&a);
            free(shown);
            rc = w.stop_rc;
            break;
        }
        if (dr == DRIVE_CANCELED) {
            kle_kube__auth_clear(&a);
            free(shown);
            rc = kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
            break;
        }
        if (w.gone || w.status == 410) {
            kle_kube__auth_clear(&a);
            free(shown);
            need_list = 1;
            continue;
        }
        if (w.error_rc) {
            kle_kube__auth_clear(&a);
            free(shown);
            rc = w.error_rc;
            if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
                continue;
            }
            break;
        }
        if (dr == DRIVE_TIMEOUT || (dr == DRIVE_DONE && cc != CURLE_OK) || dr == DRIVE_ERROR) {
            /* A dropped or stalled stream: resume from the last version, on
             * a new connection (libcurl keeps an HTTP/2 connection whose
             * stream stalled, and would reuse it). */
            kle_kube__auth_clear(&a);
            CURLM *fresh = curl_multi_init();
            if (fresh) {
                curl_multi_cleanup(m);
                m = fresh;
            }
            if (dr == DRIVE_DONE && w.x.too_large) {
                rc = kle_kube__curl_error("WATCH", shown, cc, errbuf, &w.x);
                free(shown);
                break;
            }
            KLE_LOG_V(4, "WATCH %s: stream broke (%s); resuming from resourceVersion %s", shown,
                      dr == DRIVE_TIMEOUT ? "no data in time" : curl_easy_strerror(cc), w.rv);
            free(shown);
            if (!w.events)
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            continue;
        }
        if (w.status == 200) {
            /* The server ended the stream (timeoutSeconds): resume. A
             * server that ends streams at once without an event gets a
             * backoff, not a busy loop. */
            kle_kube__auth_clear(&a);
            free(shown);
            if (!w.events)
                backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            continue;
        }
        json_object *st = kle_kube__parse_json(w.x.body.data ? w.x.body.data : "", w.x.body.len);
        rc = kle_kube__api_error("WATCH", shown, w.status, st, w.x.body.data, w.x.body.len,
                                 w.x.retry_after);
        json_object_put(st);
        free(shown);
        if (w.status == 401 && !auth_retried && kle_kube__auth_invalidate(c, &a)) {
            kle_kube__auth_clear(&a);
            auth_retried = 1;
            continue;
        }
        kle_kube__auth_clear(&a);
        if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
            int64_t ra = w.x.retry_after > 0 ? (int64_t)w.x.retry_after * 1000 : 0;
            backoff = backoff ? (backoff * 2 > 1000 ? 1000 : backoff * 2) : 100;
            if (ra > backoff)
                backoff = ra;
            continue;
        }
        break;
    }
    if (opts && opts->last_resource_version && opts->last_resource_version_size)
        snprintf(opts->last_resource_version, opts->last_resource_version_size, "%s", w.rv);
    kle_kube__buf_free(&w.x.body);
    curl_easy_cleanup(w.h);
    curl_multi_cleanup(m);
    return rc;
}
