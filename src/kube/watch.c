/* The watch stream: list, then watch from the listed resourceVersion,
 * resuming after a broken stream and re-listing after 410 Gone; as a state
 * machine of requests on an agent (async.h), and kle_client_watch(), which
 * runs it on a private loop until it ends. */
#include "kle/client.h"
#include "kle/rest.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kube/client_internal.h"

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

/* ---- the watch state machine ------------------------------------------- */

enum { W_IDLE = 0, W_LIST, W_STREAM, W_WAIT };

static int watch_go(kle_kube__watch *w);

static void set_rv_from(kle_kube__watch *w, json_object *obj)
{
    json_object *md;
    if (obj && json_object_object_get_ex(obj, "metadata", &md)) {
        const char *rv = kle_kube__jstr(md, "resourceVersion");
        if (rv && *rv)
            snprintf(w->resource_version, sizeof(w->resource_version), "%s", rv);
    }
}

static void forget_error(kle_kube__watch *w)
{
    json_object_put(w->error_status);
    w->error_status = NULL;
    w->error_rc = 0;
}

/* Goes idle and tells the owner, with @p rc recorded. */
static void end(kle_kube__watch *w, int rc)
{
    w->state = W_IDLE;
    forget_error(w);
    free(w->url_path);
    w->url_path = NULL;
    if (w->ended)
        w->ended(w, rc, w->data);
}

/* Runs the next step after @p ms (0: at the next dispatch, outside every callback). */
static void on_step(kle_loop *loop, kle_loop_timer *t, void *data)
{
    kle_kube__watch *w = data;
    int rc = watch_go(w);
    if (rc)
        end(w, rc);
}

static void next_after(kle_kube__watch *w, int64_t ms)
{
    w->state = W_WAIT;
    kle_loop_timer_arm(kle_kube__agent_loop(w->agent), &w->backoff,
                       kle_kube__agent_now(w->agent) + ms * KLE_NS_PER_MS, on_step, w);
}

static int64_t grow(int64_t backoff_ms)
{
    return backoff_ms ? (backoff_ms * 2 > 1000 ? 1000 : backoff_ms * 2) : 100;
}

/* Delivers one event; non-zero when the watch stops there. */
static int deliver(kle_kube__watch *w, kle_watch_event_type type, json_object *obj)
{
    w->in_event = 1;
    int r = w->event(w, type, obj, w->data);
    w->in_event = 0;
    if (r || w->stopping) {
        /* Its request (when this is a stream's event) ends when this returns. */
        w->stopping = 0;
        w->state = W_IDLE;
        forget_error(w);
        free(w->url_path);
        w->url_path = NULL;
        return 1;
    }
    return 0;
}

static void on_list_done(kle_kube__request *req, int rc, json_object *obj, void *data)
{
    kle_kube__watch *w = data;
    if (rc == 0 && (!obj || !json_object_is_type(obj, json_type_object)))
        rc = kle_error_set(KLE_EBADRESPONSE, "GET %s: the response is not a JSON object",
                           w->url_path);
    if (rc == 0) {
        set_rv_from(w, obj);
        int stop = deliver(w, KLE_WATCH_LISTED, obj);
        json_object_put(obj);
        if (stop)
            return;
        w->need_list = 0;
        next_after(w, 0);
        return;
    }
    json_object_put(obj);
    if (rc == KLE_ETOOMANYREQUESTS || rc == KLE_ESERVER || rc == KLE_ETRANSPORT ||
        rc == KLE_ETIMEOUT) {
        KLE_LOG_V(4, "watch %s: list failed, retrying: %s", w->path, kle_error_last()->message);
        w->backoff_ms = grow(w->backoff_ms);
        next_after(w, w->backoff_ms);
        return;
    }
    end(w, rc);
}

/* One line of the stream: non-zero ends the stream (the next step is then scheduled). */
static int on_line(kle_kube__request *req, const char *line, size_t len, void *data)
{
    kle_kube__watch *w = data;
    kle_kube__watch_event e;
    int rc = kle_kube__watch_event_decode(&e, line, len, w->path);
    if (rc == KLE_EGONE) {
        KLE_LOG_V(4, "watch %s: resourceVersion %s is too old; re-listing", w->path,
                  w->resource_version);
        w->need_list = 1;
        next_after(w, 0);
        return 1;
    }
    if (rc < 0) {
        /* Kept to be recorded again when the watch ends with it. */
        forget_error(w);
        w->error_rc = rc;
        json_object *ev = kle_kube__parse_json(line, len), *st = NULL;
        if (ev && json_object_object_get_ex(ev, "object", &st))
            w->error_status = json_object_get(st);
        json_object_put(ev);
        if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
            w->backoff_ms = grow(w->backoff_ms);
            next_after(w, w->backoff_ms);
        } else {
            next_after(w, 0);
        }
        return 1;
    }
    if (rc > 0)
        return 0;
    set_rv_from(w, e.obj);
    w->events++;
    KLE_LOG_V(7, "watch %s: %s resourceVersion %s", w->path, kle_watch_event_type_name(e.type),
              w->resource_version);
    int stop = deliver(w, e.type, e.obj);
    json_object_put(e.ev);
    return stop;
}

static void on_stream_done(kle_kube__request *req, int rc, json_object *obj, void *data)
{
    kle_kube__watch *w = data;
    json_object_put(obj);
    KLE_LOG_V(6, "WATCH %s ended: status %ld, %d events", w->url_path, req->status, w->events);
    if (w->events)
        w->backoff_ms = 0;
    if (req->status == 410 || rc == KLE_EGONE) {
        w->need_list = 1;
        next_after(w, 0);
        return;
    }
    if (rc == 0 || rc == KLE_ETIMEOUT || rc == KLE_ETRANSPORT) {
        /* The server ended the stream (timeoutSeconds), it broke or it
         * stalled: resume from the last version. A server that ends
         * streams at once without an event gets a backoff, not a busy
         * loop. */
        if (rc)
            KLE_LOG_V(4, "WATCH %s: stream broke (%s); resuming from resourceVersion %s",
                      w->url_path, kle_error_last()->message, w->resource_version);
        if (!w->events)
            w->backoff_ms = grow(w->backoff_ms);
        next_after(w, w->events ? 0 : w->backoff_ms);
        return;
    }
    if (rc == KLE_ESERVER || rc == KLE_ETOOMANYREQUESTS) {
        int64_t ra = kle_error_last()->retry_after_ns / KLE_NS_PER_MS;
        w->backoff_ms = grow(w->backoff_ms);
        if (ra > w->backoff_ms)
            w->backoff_ms = ra;
        next_after(w, w->backoff_ms);
        return;
    }
    end(w, rc);
}

/* Starts the list or the next stream. 0, or an error (recorded). */
static int watch_go(kle_kube__watch *w)
{
    kle_client *c = kle_kube__agent_client(w->agent);
    char sel[1100] = "";
    if ((w->field_selector && *w->field_selector &&
         add_query(sel, sizeof(sel), "fieldSelector", w->field_selector)) ||
        (w->label_selector && *w->label_selector &&
         add_query(sel, sizeof(sel), "labelSelector", w->label_selector)))
        return kle_error_set(KLE_EINVAL, "WATCH %s: selectors are too long", w->path);
    if (w->error_rc) {
        /* The stream carried an ERROR event: a retry after a backoff, or the end. */
        int rc = w->error_rc;
        if (rc != KLE_ESERVER && rc != KLE_ETOOMANYREQUESTS) {
            json_object *st = w->error_status;
            long code = 0;
            json_object *v;
            if (st && json_object_object_get_ex(st, "code", &v))
                code = json_object_get_int(v);
            if (rc != KLE_EBADRESPONSE)
                return kle_kube__api_error("WATCH", w->path, code ? code : 500, st, NULL, 0, 0);
            return kle_error_set(KLE_EBADRESPONSE,
                                 "WATCH %s: the server sent an event that is not a JSON watch "
                                 "event",
                                 w->path);
        }
        forget_error(w);
    }
    free(w->url_path);
    w->url_path = NULL;
    kle_kube__request init = KLE_KUBE_REQUEST_INIT;
    w->req = init;
    w->req.method = "GET";
    w->req.uncounted = 1;
    w->req.data = w;
    int64_t now = kle_kube__agent_now(w->agent);
    if (w->need_list) {
        w->url_path = str_printf("%s%s%s", w->path, *sel ? "?" : "", sel);
        w->req.done = on_list_done;
        w->req.deadline_ns = now + c->default_timeout_ms * KLE_NS_PER_MS;
        w->state = W_LIST;
    } else {
        int64_t stream_ns = w->stream_timeout_ns > 0 ? w->stream_timeout_ns : KLE_SEC(300);
        if (stream_ns > KLE_SEC(86400))
            stream_ns = KLE_SEC(86400);
        int secs = stream_ns < KLE_NS_PER_SEC ? 1 : (int)(stream_ns / KLE_NS_PER_SEC);
        char query[1600];
        snprintf(query, sizeof(query), "watch=true&allowWatchBookmarks=true&timeoutSeconds=%d",
                 secs);
        size_t ql = strlen(query);
        if (add_query(query, sizeof(query), "resourceVersion", w->resource_version) ||
            (*sel && (ql = strlen(query)) < sizeof(query) - 1 &&
             snprintf(query + ql, sizeof(query) - ql, "&%s", sel) >= (int)(sizeof(query) - ql)))
            return kle_error_set(KLE_EINVAL, "WATCH %s: the query is too long", w->path);
        w->url_path = str_printf("%s?%s", w->path, query);
        w->req.verb = "WATCH";
        w->req.stream = on_line;
        w->req.done = on_stream_done;
        /* A stream that sends nothing for its lifetime + 15 s is dead. */
        w->req.deadline_ns = now + (int64_t)(secs + 15) * KLE_NS_PER_SEC;
        w->events = 0;
        w->state = W_STREAM;
        if (w->url_path)
            KLE_LOG_V(6, "WATCH %s", w->url_path);
    }
    if (!w->url_path) {
        w->state = W_IDLE;
        return kle_error_set(KLE_ENOMEM, "out of memory");
    }
    w->req.path = w->url_path;
    int rc = kle_kube__request_start(w->agent, &w->req);
    if (rc) {
        w->state = W_IDLE;
        /* A failure to start counts as the attempt's: retried as one. */
        if (rc == KLE_ETRANSPORT || rc == KLE_ETIMEOUT) {
            w->backoff_ms = grow(w->backoff_ms);
            next_after(w, w->backoff_ms);
            return 0;
        }
    }
    return rc;
}

int kle_kube__watch_start(kle_kube__agent *agent, kle_kube__watch *w)
{
    if (!agent || !w || !w->path || w->path[0] != '/' || !w->event)
        return kle_error_set(KLE_EINVAL, "watch: agent, an absolute path and an event "
                                         "callback must be set");
    if (w->state != W_IDLE)
        return kle_error_set(KLE_ESTATE, "WATCH %s: the watch is already running", w->path);
    w->agent = agent;
    w->need_list = !w->resource_version[0];
    w->backoff_ms = 0;
    w->events = 0;
    w->in_event = 0;
    w->stopping = 0;
    w->error_rc = 0;
    w->error_status = NULL;
    w->url_path = NULL;
    kle_loop_timer init = KLE_LOOP_TIMER_INIT;
    w->backoff = init;
    int rc = watch_go(w);
    if (rc) {
        free(w->url_path);
        w->url_path = NULL;
        w->state = W_IDLE;
    }
    return rc;
}

void kle_kube__watch_stop(kle_kube__watch *w)
{
    if (!w || !w->agent)
        return;
    if (w->in_event) {
        w->stopping = 1; /* deliver() winds it down when the callback returns */
        return;
    }
    kle_kube__request_abandon(&w->req);
    kle_loop_timer_disarm(kle_kube__agent_loop(w->agent), &w->backoff);
    w->state = W_IDLE;
    forget_error(w);
    free(w->url_path);
    w->url_path = NULL;
}

int kle_kube__watch_running(const kle_kube__watch *w)
{
    return w && w->state != W_IDLE;
}

/* ---- kle_client_watch -------------------------------------------------- */

struct sync_watch {
    kle_kube__watch w;
    kle_watch_fn fn;
    void *data;
    int done;
    int rc;
    kle_loop_timer until;
};

static int sync_event(kle_kube__watch *w, kle_watch_event_type type, json_object *obj, void *data)
{
    struct sync_watch *s = data;
    int r = s->fn(type, obj, s->data);
    if (r) {
        s->done = 1;
        s->rc = r < 0 ? r : 0;
    }
    return r;
}

static void sync_ended(kle_kube__watch *w, int rc, void *data)
{
    struct sync_watch *s = data;
    s->done = 1;
    s->rc = rc;
}

/* The watch's own time is up: it returns 0. */
static void sync_until(kle_loop *loop, kle_loop_timer *t, void *data)
{
    struct sync_watch *s = data;
    kle_kube__watch_stop(&s->w);
    s->done = 1;
    s->rc = 0;
}

static void sync_cancel(void *arg)
{
    struct sync_watch *s = arg;
    kle_kube__watch_stop(&s->w);
    s->done = 1;
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
    if (cancel && kle_event_is_set(cancel)) {
        if (opts->last_resource_version && opts->last_resource_version_size)
            snprintf(opts->last_resource_version, opts->last_resource_version_size, "%s",
                     opts->resource_version ? opts->resource_version : "");
        return kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
    }
    /* A watch has a private loop and connection of its own (not a pooled
     * one): the callback may make requests on the same client meanwhile. */
    struct conn *k = kle_kube__conn_new(c);
    if (!k)
        return kle_error_prefix("WATCH %s: ", path);
    struct sync_watch s;
    memset(&s, 0, sizeof(s));
    s.fn = fn;
    s.data = data;
    s.w.path = path;
    s.w.field_selector = opts ? opts->field_selector : NULL;
    s.w.label_selector = opts ? opts->label_selector : NULL;
    s.w.stream_timeout_ns = opts ? opts->stream_timeout_ns : 0;
    s.w.event = sync_event;
    s.w.ended = sync_ended;
    s.w.data = &s;
    if (opts && opts->resource_version)
        snprintf(s.w.resource_version, sizeof(s.w.resource_version), "%s", opts->resource_version);
    if ((rc = kle_kube__watch_start(k->agent, &s.w))) {
        kle_kube__conn_free(k);
        return rc;
    }
    if (opts && opts->timeout_ns > 0)
        kle_loop_timer_arm(k->loop, &s.until,
                           kle_kube__agent_now(k->agent) +
                               ns_to_ms(opts->timeout_ns) * KLE_NS_PER_MS,
                           sync_until, &s);
    if (kle_kube__conn_wait(k, cancel, &s.done, sync_cancel, &s) == KLE_ECANCELED)
        s.rc = kle_error_set(KLE_ECANCELED, "WATCH %s: cancelled", path);
    kle_loop_timer_disarm(k->loop, &s.until);
    kle_kube__watch_stop(&s.w);
    if (opts && opts->last_resource_version && opts->last_resource_version_size)
        snprintf(opts->last_resource_version, opts->last_resource_version_size, "%s",
                 s.w.resource_version);
    int err = s.rc;
    kle_kube__conn_free(k);
    if (err == 0)
        kle_error_clear();
    return err;
}
