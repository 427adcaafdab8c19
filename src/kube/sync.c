/* The synchronous calls: kle_client_request() runs the request state
 * machine (transport.c) on a private loop and agent until it completes.
 * Private loops are pooled per client, so that sequential calls reuse
 * their connections, and each concurrent call has its own: a slow call
 * never delays another on the same client. */
#include "kle/client.h"
#include "kle/rest.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kube/client_internal.h"

void kle_kube__conn_free(struct conn *k)
{
    if (!k)
        return;
    kle_kube__agent_put(k->agent);
    kle_loop_free(k->loop);
    free(k);
}

struct conn *kle_kube__conn_get(kle_client *c)
{
    pthread_mutex_lock(&c->mu);
    struct conn *k = c->idle;
    if (k) {
        c->idle = k->next;
        c->nidle--;
    }
    pthread_mutex_unlock(&c->mu);
    return k ? k : kle_kube__conn_new(c);
}

struct conn *kle_kube__conn_new(kle_client *c)
{
    struct conn *k = calloc(1, sizeof(*k));
    if (!k) {
        kle_error_set(KLE_ENOMEM, "out of memory");
        return NULL;
    }
    if (kle_loop_new(&k->loop, NULL) < 0 || kle_kube__agent_get(&k->agent, c, k->loop) < 0) {
        kle_kube__conn_free(k);
        return NULL;
    }
    return k;
}

/* A private loop whose call failed at the transport level, timed out or
 * was cancelled is freed, with its connections. */
void kle_kube__conn_put(kle_client *c, struct conn *k, int healthy)
{
    if (!k)
        return;
    pthread_mutex_lock(&c->mu);
    if (healthy && c->nidle < MAX_IDLE_CONNS) {
        k->next = c->idle;
        c->idle = k;
        c->nidle++;
        k = NULL;
    }
    pthread_mutex_unlock(&c->mu);
    kle_kube__conn_free(k);
}

static void on_cancel_fd(kle_loop *loop, int fd, unsigned events, void *data)
{
    /* Nothing to do here: the wait below looks at the event. */
}

int kle_kube__conn_wait(struct conn *k, kle_event *cancel, const int *done,
                        void (*on_cancel)(void *arg), void *arg)
{
    int watched = 0;
    if (cancel)
        watched =
            kle_loop_watch_fd(k->loop, kle_event_fd(cancel), KLE_LOOP_IN, on_cancel_fd, NULL) == 0;
    int rc = 0;
    while (!*done) {
        if (cancel && kle_event_is_set(cancel)) {
            on_cancel(arg);
            rc = KLE_ECANCELED;
            break;
        }
        /* Without the event's descriptor in the set, look at it every 50 ms. */
        if (kle_loop_dispatch(k->loop, cancel && !watched ? 50 * KLE_NS_PER_MS : -1) < 0)
            kle_loop_dispatch(k->loop, 10 * KLE_NS_PER_MS); /* epoll failed: do not spin */
    }
    if (watched)
        kle_loop_watch_fd(k->loop, kle_event_fd(cancel), 0, NULL, NULL);
    return rc;
}

/* ---- kle_client_request ------------------------------------------------ */

struct sync_call {
    kle_kube__request req;
    int done;
    int rc;
    json_object *obj;
};

static void sync_done(kle_kube__request *r, int rc, json_object *obj, void *data)
{
    struct sync_call *s = data;
    s->done = 1;
    s->rc = rc;
    s->obj = obj;
}

static void sync_cancel(void *arg)
{
    struct sync_call *s = arg;
    kle_kube__request_abandon(&s->req);
    s->done = 1;
}

static int check_req_opts(const kle_request_opts *o)
{
    if (o && (o->version < 1 || o->version > KLE_REQUEST_OPTS_VERSION))
        return kle_error_set(KLE_EVERSION, "kle_request_opts version %u is not supported (1..%d)",
                             o->version, KLE_REQUEST_OPTS_VERSION);
    return 0;
}

int kle_client_request(json_object **out, kle_client *c, const char *method, const char *path,
                       const char *content_type, const char *body, size_t body_len,
                       const kle_request_opts *opts)
{
    int rc;
    if (out)
        *out = NULL;
    if (opts && opts->version >= 1 && opts->status)
        *opts->status = NULL;
    if (!c || !method || !path)
        return kle_error_set(KLE_EINVAL, "kle_client_request: client, method and path must be set");
    if ((rc = kle_kube__request_check(method, path)))
        return rc;
    if ((rc = check_req_opts(opts)))
        return rc;
    if (opts && opts->timeout_ns < 0)
        return kle_error_set(KLE_ETIMEOUT, "%s %s: the time budget was already spent", method,
                             path);
    int64_t timeout_ms =
        opts && opts->timeout_ns > 0 ? ns_to_ms(opts->timeout_ns) : c->default_timeout_ms;
    if (timeout_ms > MAX_TIMEOUT_MS)
        timeout_ms = MAX_TIMEOUT_MS;
    kle_event *cancel = opts ? opts->cancel : NULL;
    if (cancel && kle_event_is_set(cancel))
        return kle_error_set(KLE_ECANCELED, "%s %s: cancelled", method, path);

    struct conn *k = kle_kube__conn_get(c);
    if (!k)
        return kle_error_prefix("%s %s: ", method, path);
    struct sync_call s;
    memset(&s, 0, sizeof(s));
    s.req.method = method;
    s.req.path = path;
    s.req.content_type = content_type;
    s.req.body = body;
    s.req.body_len = body_len;
    int64_t start = kle_kube__agent_now(k->agent);
    s.req.deadline_ns = start + timeout_ms * KLE_NS_PER_MS;
    s.req.done = sync_done;
    s.req.data = &s;
    if ((rc = kle_kube__request_start(k->agent, &s.req))) {
        kle_kube__conn_put(c, k, 1);
        return rc;
    }
    if (kle_kube__conn_wait(k, cancel, &s.done, sync_cancel, &s) == KLE_ECANCELED) {
        /* Its connection goes with the private loop. */
        pthread_mutex_lock(&c->mu);
        c->discarded++;
        pthread_mutex_unlock(&c->mu);
        int64_t took = (kle_kube__agent_now(k->agent) - start) / KLE_NS_PER_MS;
        kle_kube__conn_put(c, k, 0);
        return kle_error_set(KLE_ECANCELED, "%s %s: cancelled after %lld ms", method, path,
                             (long long)took);
    }
    kle_kube__conn_put(c, k, s.req.healthy);
    if (s.rc) {
        if (s.obj && opts && opts->status)
            *opts->status = s.obj;
        else
            json_object_put(s.obj);
        return s.rc;
    }
    if (out)
        *out = s.obj;
    else
        json_object_put(s.obj);
    return 0;
}
