/* Watch streams: the initial state, events from the store's history,
 * bookmarks, expiry, and the end of the stream. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct watcher {
    int res;     /* Store index watched. */
    int api_res; /* API resource served. */
    int convert; /* Events stored as core/v1, served as events.k8s.io/v1. */
    char *ns;    /* NULL: every namespace. */
    char *fsel;  /* NULL: none. */
    char *lsel;
    uint64_t pos; /* Last resourceVersion considered. */
    int64_t deadline;
    int bookmarks;
    int64_t next_bookmark;
    unsigned generation;
    int done;
    int pretty;
    int table;
    int proto; /* Protobuf frames instead of JSON lines. */
    int fd;    /* The client's socket, to notice when it goes away; -1 unknown. */
    kle_buf out;
    size_t off;
} watcher;

static void emit(watcher *w, const char *type, json_object *obj);

static json_object *as_served(const watcher *w, json_object *stored)
{
    return w->convert ? kle_apiserver__event_convert(stored, 0) : json_object_get(stored);
}

static int selected(const watcher *w, json_object *obj)
{
    return kle_apiserver__selector_match(obj, w->fsel, 0) &&
           kle_apiserver__selector_match(obj, w->lsel, 1);
}

/* Emits a stored object converted as served, when it passes the selectors.
 * For a MODIFIED event with its previous state, an object that starts to
 * match is ADDED and one that stops matching is DELETED (the previous
 * state at the new resourceVersion), as kube-apiserver's watch cache does. */
static void emit_stored(watcher *w, const char *type, json_object *stored, json_object *prev)
{
    json_object *obj = as_served(w, stored);
    int now = selected(w, obj);
    if (prev && strcmp(type, "MODIFIED") == 0 && (w->fsel || w->lsel)) {
        json_object *before = as_served(w, prev);
        int was = selected(w, before);
        if (now && !was) {
            emit(w, "ADDED", obj);
        } else if (!now && was) {
            json_object *gone = NULL;
            const char *rv = kle_apiserver__meta_str(obj, "resourceVersion");
            json_object_deep_copy(before, &gone, NULL);
            if (rv)
                json_object_object_add(kle_apiserver__meta(gone), "resourceVersion",
                                       json_object_new_string(rv));
            emit(w, "DELETED", gone);
            json_object_put(gone);
        } else if (now) {
            emit(w, type, obj);
        }
        json_object_put(before);
    } else if (now) {
        emit(w, type, obj);
    }
    json_object_put(obj);
}

static void emit(watcher *w, const char *type, json_object *obj)
{
    json_object *ev;
    char *text;
    if (w->proto) {
        kle_apiserver__proto_watch_frame(type, obj, &w->out);
        return;
    }
    ev = json_object_new_object();
    json_object_object_add(ev, "type", json_object_new_string(type));
    if (w->table &&
        strcmp(type, "ADDED") * strcmp(type, "MODIFIED") * strcmp(type, "DELETED") == 0) {
        json_object *items = json_object_new_array();
        json_object_array_add(items, json_object_get(obj));
        json_object_object_add(
            ev, "object", kle_apiserver__table(&kle_apiserver__resources[w->api_res], items, NULL));
        json_object_put(items);
    } else {
        json_object_object_add(ev, "object", json_object_get(obj));
    }
    text = kle_apiserver__to_text(ev, 0);
    if (text) {
        kle_buf__appends(&w->out, text);
        free(text);
    }
    json_object_put(ev);
}

static void emit_bookmark(watcher *w, int initial_end)
{
    const kle_apiserver__resource *r = &kle_apiserver__resources[w->api_res];
    json_object *o = json_object_new_object(), *meta = json_object_new_object();
    char av[256], num[32];
    kle_apiserver__api_version(r, av, sizeof(av));
    json_object_object_add(o, "kind", json_object_new_string(r->kind));
    json_object_object_add(o, "apiVersion", json_object_new_string(av));
    snprintf(num, sizeof(num), "%" PRIu64, w->pos);
    json_object_object_add(meta, "resourceVersion", json_object_new_string(num));
    json_object_object_add(meta, "creationTimestamp", NULL);
    if (initial_end) {
        json_object *ann = json_object_new_object();
        json_object_object_add(ann, "k8s.io/initial-events-end", json_object_new_string("true"));
        json_object_object_add(meta, "annotations", ann);
    }
    json_object_object_add(o, "metadata", meta);
    emit(w, "BOOKMARK", o);
    json_object_put(o);
}

static void emit_expired(watcher *w, uint64_t floor)
{
    char msg[128];
    json_object *st;
    snprintf(msg, sizeof(msg), "too old resource version: %" PRIu64 " (%" PRIu64 ")", w->pos,
             floor + 1);
    st = kle_apiserver__status(410, "Expired", msg, NULL, NULL, NULL);
    emit(w, "ERROR", st);
    json_object_put(st);
    w->done = 1;
}

static void initial_add(json_object *obj, void *arg)
{
    emit_stored(arg, "ADDED", obj, NULL);
}

/* 1 when the client closed its side of the connection. */
static int peer_gone(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    if (fd < 0)
        return 0;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Fills w->out with the next events, blocking until there are some or the
 * stream ends. Store lock held. */
static void watch_fill(watcher *w)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED"};
    while (w->out.len == 0 && !w->done) {
        uint64_t floor = kle_apiserver__store_history_floor();
        int64_t now = kle_apiserver__now_ns(), wake;
        if (atomic_load(&kle_apiserver__shutting_down) ||
            atomic_load(&kle_apiserver__watch_generation) != w->generation) {
            w->done = 1;
            break;
        }
        if (w->pos < floor) {
            emit_expired(w, floor);
            break;
        }
        while (w->pos < kle_apiserver__store_rv()) {
            const kle_apiserver__event *ev = kle_apiserver__store_event(w->pos + 1);
            w->pos++;
            if (ev && ev->res == w->res && (!w->ns || strcmp(w->ns, ev->ns) == 0))
                emit_stored(w, names[ev->type], ev->obj, ev->prev);
        }
        if (w->out.len)
            break;
        if (now >= w->deadline) {
            w->done = 1;
            break;
        }
        if (w->bookmarks && now >= w->next_bookmark) {
            emit_bookmark(w, 0);
            w->next_bookmark = now + (int64_t)kle_apiserver__bookmark_interval * 1000000000;
            break;
        }
        if (peer_gone(w->fd)) {
            w->done = 1;
            break;
        }
        wake = w->deadline;
        if (w->bookmarks && w->next_bookmark < wake)
            wake = w->next_bookmark;
        if (wake > now + 1000000000)
            wake = now + 1000000000;
        kle_apiserver__store_wait(wake);
    }
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    watcher *w = cls;
    size_t n;
    if (w->off >= w->out.len) {
        w->out.len = 0;
        w->off = 0;
        if (w->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        kle_apiserver__store_lock();
        watch_fill(w);
        kle_apiserver__store_unlock();
        if (w->out.len == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = w->out.len - w->off;
    if (n > max)
        n = max;
    memcpy(buf, w->out.data + w->off, n);
    w->off += n;
    return (ssize_t)n;
}

static void watch_free(void *cls)
{
    watcher *w = cls;
    free(w->ns);
    free(w->fsel);
    free(w->lsel);
    kle_buf__free(&w->out);
    free(w);
}

void kle_apiserver__do_watch(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    const char *rv = kle_apiserver__arg(c, "resourceVersion"),
               *t = kle_apiserver__arg(c, "timeoutSeconds");
    const char *bm = kle_apiserver__arg(c, "allowWatchBookmarks"),
               *sie = kle_apiserver__arg(c, "sendInitialEvents");
    const char *fs = kle_apiserver__arg(c, "fieldSelector"),
               *ls = kle_apiserver__arg(c, "labelSelector");
    watcher *w;
    long timeout = 1800;
    int initial = 0, initial_end = 0;

    if (kle_apiserver__check_selectors(c, a, pretty) != 0)
        return;
    if (t && *t) {
        char *end;
        timeout = strtol(t, &end, 10);
        if (*end || timeout < 0) {
            kle_apiserver__answer_error(a, 400, "BadRequest", "invalid timeoutSeconds", NULL, NULL,
                                        pretty);
            return;
        }
        if (timeout == 0)
            timeout = 1800;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        kle_apiserver__answer_error(a, 500, "InternalError", "out of memory", NULL, NULL, pretty);
        return;
    }
    w->res = rt->store;
    w->api_res = rt->res;
    w->convert = rt->convert;
    w->ns = rt->r->namespaced && rt->ns[0] ? strdup(rt->ns) : NULL;
    w->fsel = fs && *fs ? strdup(fs) : NULL;
    w->lsel = ls && *ls ? strdup(ls) : NULL;
    w->bookmarks = bm && strcmp(bm, "true") == 0;
    w->pretty = pretty;
    w->table = kle_apiserver__want_table(c);
    w->proto = a->proto;
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w->fd = ci ? ci->connect_fd : -1;
    }
    w->generation = atomic_load(&kle_apiserver__watch_generation);
    w->deadline = kle_apiserver__now_ns() + (int64_t)timeout * 1000000000;
    w->next_bookmark =
        kle_apiserver__now_ns() + (int64_t)kle_apiserver__bookmark_interval * 1000000000;
    if (sie && strcmp(sie, "true") == 0) {
        initial = 1;
        initial_end = w->bookmarks;
    } else if (!rv || !*rv || strcmp(rv, "0") == 0) {
        initial = 1;
    }
    kle_apiserver__store_lock();
    if (initial) {
        w->pos = kle_apiserver__store_rv();
        kle_apiserver__store_each(w->res, w->ns, initial_add, w);
        if (initial_end)
            emit_bookmark(w, 1);
    } else {
        char *end;
        w->pos = strtoull(rv, &end, 10);
        if (*end) {
            kle_apiserver__store_unlock();
            watch_free(w);
            kle_apiserver__answer_error(a, 400, "BadRequest", "invalid resourceVersion", NULL, NULL,
                                        pretty);
            return;
        }
        if (w->pos < kle_apiserver__store_history_floor())
            emit_expired(w, kle_apiserver__store_history_floor());
    }
    kle_apiserver__store_unlock();
    a->code = 200;
    a->is_proto = w->proto;
    a->stream =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, watch_read, w, watch_free);
    if (!a->stream)
        watch_free(w);
}

/* ---- the request handler ---- */
