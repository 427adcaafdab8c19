/*
 * Fake locks on a shared in-memory object, for tests (kle/testing.h).
 * The store plays the API server: one object, one resourceVersion counter.
 * Each fake lock plays one client: it remembers the resourceVersion it last
 * read or wrote and its updates are conditional on it.
 */
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "kle/testing.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_METHODS 5

typedef struct fake_event fake_event;
typedef struct watch_session watch_session;

struct kle_fake_store {
    pthread_mutex_t mu;
    int refs;
    kle_clock *clock;
    int exists;
    kle_record record;
    uint64_t resource_version;
    uint64_t writes;
    /* The state before the last write, for stale re-deliveries. */
    int prev_exists;
    kle_record prev_record;
    uint64_t prev_rv;
    watch_session *sessions; /* Open watches. */
    uint64_t bookmarks;
    int whole_seconds; /* Writes keep times at whole seconds, as annotation records do. */
};

typedef struct script {
    int fail_count;
    int fail_error;
    int delay_count;
    int64_t delay_ns;
    int stall_count;
    int64_t stall_ns;
} script;

typedef struct fake_lock {
    kle_lock base;
    kle_fake_store *store;
    char *identity;
    char *description;
    pthread_mutex_t mu;
    script scripts[N_METHODS];
    unsigned int calls[N_METHODS];
    int has_rv;
    uint64_t last_rv;
    unsigned int events;
    char last_event[512];
    /* Watch: the member is set when on; faults guarded by the store's mu. */
    kle_event *watch_wake;
    kle_clock proxy; /* Forwards a set of the watch's cancel event to watch_wake. */
    int wf_drop, wf_dup, wf_stale, wf_gone;
    watch_session *session;
} fake_lock;

struct fake_event {
    fake_event *next;
    kle_lock_event_type type;
    int listed;
    kle_record record;
    uint64_t rv;
    int64_t due;
};

struct watch_session {
    watch_session *next;
    fake_lock *lock;
    fake_event *head, *tail;
    int silent;
    int end_rc;
};

static const char *method_names[N_METHODS] = {"get", "create", "update", "record event", "watch"};

int kle_fake_store_new(kle_fake_store **out, kle_clock *clock)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_fake_store_new: out is NULL");
    kle_fake_store *s = calloc(1, sizeof(*s));
    if (!s)
        return kle_error_set(KLE_ENOMEM, "kle_fake_store_new: out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->refs = 1;
    s->clock = clock ? clock : kle_clock_real();
    *out = s;
    return 0;
}

static void store_unref(kle_fake_store *s)
{
    pthread_mutex_lock(&s->mu);
    int left = --s->refs;
    pthread_mutex_unlock(&s->mu);
    if (left > 0)
        return;
    kle_record_dispose(&s->record);
    kle_record_dispose(&s->prev_record);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void kle_fake_store_free(kle_fake_store *store)
{
    if (store)
        store_unref(store);
}

int kle_fake_store_peek(kle_record *out, uint64_t *out_rv, kle_fake_store *s)
{
    int rc = 0;
    if (!out || !s)
        return kle_error_set(KLE_EINVAL, "kle_fake_store_peek: out and store are required");
    if (kle_record_init(out, out->version) < 0)
        return kle_error_prefix("kle_fake_store_peek: ");
    pthread_mutex_lock(&s->mu);
    if (!s->exists)
        rc = kle_error_set(KLE_ENOTFOUND, "fake store: the lock object does not exist");
    else
        rc = kle_record_copy(out, &s->record);
    if (out_rv)
        *out_rv = s->resource_version;
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- watch ---- */

/* Keeps the state before a write (store mu held). */
static void remember_prev(kle_fake_store *s)
{
    kle_record_dispose(&s->prev_record);
    s->prev_exists = s->exists;
    s->prev_rv = s->resource_version;
    if (!s->exists || kle_record_copy(&s->prev_record, &s->record) < 0)
        kle_record_init(&s->prev_record, KLE_RECORD_VERSION);
}

static void free_events(watch_session *w)
{
    while (w->head) {
        fake_event *ev = w->head;
        w->head = ev->next;
        kle_record_dispose(&ev->record);
        free(ev);
    }
    w->tail = NULL;
}

static void enqueue(watch_session *w, kle_lock_event_type type, int listed, int exists,
                    const kle_record *record, uint64_t rv, int64_t due)
{
    fake_event *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return;
    ev->type = type == KLE_LOCK_EVENT_RECORD && !exists ? KLE_LOCK_EVENT_DELETED : type;
    ev->listed = listed;
    ev->rv = rv;
    ev->due = due;
    kle_record_init(&ev->record, KLE_RECORD_VERSION);
    if (ev->type == KLE_LOCK_EVENT_RECORD && kle_record_copy(&ev->record, record) < 0) {
        free(ev);
        return;
    }
    /* A delayed event holds back the ones behind it, as a slow stream does. */
    if (w->tail && w->tail->due > ev->due)
        ev->due = w->tail->due;
    if (w->tail)
        w->tail->next = ev;
    else
        w->head = ev;
    w->tail = ev;
}

/* The time the next event of @p l takes to arrive (its scripted delay). */
static int64_t event_delay(fake_lock *l)
{
    int64_t d = 0;
    pthread_mutex_lock(&l->mu);
    script *sc = &l->scripts[KLE_FAKE_WATCH];
    if (sc->delay_count > 0) {
        sc->delay_count--;
        d = sc->delay_ns;
    }
    pthread_mutex_unlock(&l->mu);
    return d;
}

/* Delivers the store's current state to every open watch (store mu held). */
static void publish_type(kle_fake_store *s, kle_lock_event_type type)
{
    int64_t now = kle_clock_monotonic_ns(s->clock);
    for (watch_session *w = s->sessions; w; w = w->next) {
        fake_lock *l = w->lock;
        if (w->silent)
            continue;
        if (l->wf_drop > 0) {
            l->wf_drop--;
            continue;
        }
        if (l->wf_gone > 0) {
            l->wf_gone--;
            free_events(w);
            enqueue(w, KLE_LOCK_EVENT_RECORD, 1, s->exists, &s->record, s->resource_version, now);
        } else {
            int64_t due = now + event_delay(l);
            /* A bookmark carries the server's latest resourceVersion, which
             * moves on with writes to other objects: never the object's. */
            uint64_t rv = type == KLE_LOCK_EVENT_BOOKMARK
                              ? (UINT64_C(1) << 40) + s->resource_version * 1000 + ++s->bookmarks
                              : s->resource_version;
            enqueue(w, type, 0, type == KLE_LOCK_EVENT_BOOKMARK || s->exists, &s->record, rv, due);
            if (type != KLE_LOCK_EVENT_BOOKMARK && l->wf_dup > 0) {
                l->wf_dup--;
                enqueue(w, type, 0, s->exists, &s->record, s->resource_version, due);
            }
            if (type != KLE_LOCK_EVENT_BOOKMARK && l->wf_stale > 0 && s->prev_rv > 0) {
                l->wf_stale--;
                enqueue(w, KLE_LOCK_EVENT_RECORD, 0, s->prev_exists, &s->prev_record, s->prev_rv,
                        due);
            }
        }
        kle_event_set(l->watch_wake);
    }
}

static void publish(kle_fake_store *s)
{
    publish_type(s, KLE_LOCK_EVENT_RECORD);
}

int kle_fake_store_bookmark(kle_fake_store *s)
{
    if (!s)
        return kle_error_set(KLE_EINVAL, "kle_fake_store_bookmark: store is NULL");
    pthread_mutex_lock(&s->mu);
    publish_type(s, KLE_LOCK_EVENT_BOOKMARK);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int kle_fake_store_put(kle_fake_store *s, const kle_record *record)
{
    kle_record copy = KLE_RECORD_INIT;
    if (record && kle_record_copy(&copy, record) < 0)
        return KLE_ENOMEM;
    pthread_mutex_lock(&s->mu);
    remember_prev(s);
    kle_record_dispose(&s->record);
    s->exists = record != NULL;
    s->record = copy;
    s->resource_version++;
    s->writes++;
    publish(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int kle_fake_store_lose_state(kle_fake_store *s, uint64_t next_rv)
{
    if (!s || next_rv < 1)
        return kle_error_set(KLE_EINVAL,
                             "kle_fake_store_lose_state: a store and a resourceVersion >= 1");
    pthread_mutex_lock(&s->mu);
    remember_prev(s);
    kle_record_dispose(&s->record);
    s->exists = 0;
    s->resource_version = next_rv - 1; /* The deletion's; the next write's is next_rv. */
    publish(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

int kle_fake_store_set_whole_seconds(kle_fake_store *s, int on)
{
    if (!s)
        return kle_error_set(KLE_EINVAL, "kle_fake_store_set_whole_seconds: store is NULL");
    pthread_mutex_lock(&s->mu);
    s->whole_seconds = on != 0;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

uint64_t kle_fake_store_writes(kle_fake_store *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->writes;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* The raw record: the JSON of the record as a Lease lock would convert it. */
static int render_raw(char **out, size_t *out_len, const kle_record *r)
{
    char acquire[40] = "null", renew[40] = "null";
    char at[36], rt[36];
    if (r->acquire_time_ns && kle_time_format(at, sizeof(at), r->acquire_time_ns, 6) > 0)
        snprintf(acquire, sizeof(acquire), "\"%s\"", at);
    if (r->renew_time_ns && kle_time_format(rt, sizeof(rt), r->renew_time_ns, 6) > 0)
        snprintf(renew, sizeof(renew), "\"%s\"", rt);
    const char *holder = kle_record_holder(r);
    size_t holder_len = kle_record_holder_len(r);
    size_t cap = holder_len * 6 + 256;
    char *buf = malloc(cap);
    if (!buf)
        return kle_error_set(KLE_ENOMEM, "fake lock: out of memory");
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "{\"holderIdentity\":\"");
    /* Every byte of the holder, escaped as JSON. */
    for (size_t i = 0; i < holder_len; i++) {
        unsigned char c = (unsigned char)holder[i];
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    n += (size_t)snprintf(buf + n, cap - n,
                          "\",\"leaseDurationSeconds\":%d,\"acquireTime\":%s,\"renewTime\":%s,"
                          "\"leaderTransitions\":%d}",
                          r->lease_duration_seconds, acquire, renew, r->leader_transitions);
    *out = buf;
    *out_len = n;
    return 0;
}

/* Later updates are conditional on this resourceVersion. */
static void remember_version(fake_lock *l, uint64_t rv)
{
    pthread_mutex_lock(&l->mu);
    l->has_rv = 1;
    l->last_rv = rv;
    pthread_mutex_unlock(&l->mu);
}

/*
 * Takes the next scripted failure, delay or stall of a method. A stall is
 * returned as a negative delay: the call takes that long whatever its
 * timeout, as a thread that is stuck would.
 */
static int begin_call(fake_lock *l, kle_fake_method m, int64_t *delay)
{
    int fail = 0;
    pthread_mutex_lock(&l->mu);
    l->calls[m]++;
    script *s = &l->scripts[m];
    *delay = 0;
    if (s->fail_count > 0) {
        s->fail_count--;
        fail = s->fail_error;
    } else if (s->stall_count > 0) {
        s->stall_count--;
        *delay = -s->stall_ns;
    } else if (s->delay_count > 0) {
        s->delay_count--;
        *delay = s->delay_ns;
    }
    pthread_mutex_unlock(&l->mu);
    if (fail)
        return kle_error_set(fail, "fake lock %s: scripted %s failure: %s", l->description,
                             method_names[m], kle_strerror(fail));
    return 0;
}

/* Lets the call take its scripted time, bounded by its timeout and cancel. */
static int finish_call(fake_lock *l, kle_fake_method m, int64_t delay, const kle_lock_ctx *ctx)
{
    kle_clock *clock = l->store->clock;
    if (delay < 0) {
        /* A stall: the answer comes late, bounded by nothing. */
        kle_clock_sleep(clock, -delay);
        return 0;
    }
    if (delay == 0)
        return 0;
    int64_t now = kle_clock_monotonic_ns(clock);
    int64_t wait = delay < ctx->timeout_ns ? delay : ctx->timeout_ns;
    int rc = kle_clock_wait(clock, ctx->cancel, now + wait);
    if (rc == 0)
        return kle_error_set(KLE_ECANCELED, "fake lock %s: %s cancelled", l->description,
                             method_names[m]);
    if (delay > ctx->timeout_ns)
        return kle_error_set(KLE_ETIMEOUT, "fake lock %s: %s timed out after %lld ms",
                             l->description, method_names[m],
                             (long long)(ctx->timeout_ns / KLE_NS_PER_MS));
    return 0;
}

static int check_time_left(fake_lock *l, kle_fake_method m, const kle_lock_ctx *ctx)
{
    if (ctx->timeout_ns <= 0)
        return kle_error_set(KLE_ETIMEOUT, "fake lock %s: %s: no time left", l->description,
                             method_names[m]);
    if (ctx->cancel && kle_event_is_set(ctx->cancel))
        return kle_error_set(KLE_ECANCELED, "fake lock %s: %s cancelled", l->description,
                             method_names[m]);
    return 0;
}

static int fake_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    fake_lock *l = (fake_lock *)self;
    int64_t delay;
    int rc = begin_call(l, KLE_FAKE_GET, &delay);
    if (rc == 0)
        rc = check_time_left(l, KLE_FAKE_GET, ctx);
    if (rc < 0)
        return rc;

    kle_fake_store *s = l->store;
    uint64_t rv = 0;
    pthread_mutex_lock(&s->mu);
    if (!s->exists)
        rc = kle_error_set(KLE_ENOTFOUND, "fake lock %s: not found", l->description);
    else if ((rc = kle_record_copy(&out->record, &s->record)) == 0)
        rv = s->resource_version;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0)
        rc = render_raw(&out->raw, &out->raw_len, &out->record);
    if (rc == 0) {
        char rvbuf[24];
        snprintf(rvbuf, sizeof(rvbuf), "%llu", (unsigned long long)rv);
        out->resource_version = strdup(rvbuf);
        if (!out->resource_version)
            rc = kle_error_set(KLE_ENOMEM, "fake lock: out of memory");
    }
    /* A cancelled or timed-out call has no answer, whatever the store held. */
    int late = finish_call(l, KLE_FAKE_GET, delay, ctx);
    if (late < 0)
        rc = late;
    if (rc < 0) {
        kle_lock_result_dispose(out);
        return rc;
    }
    remember_version(l, rv);
    return 0;
}

static int fake_write(fake_lock *l, kle_fake_method m, const kle_record *record,
                      const kle_lock_ctx *ctx)
{
    int64_t delay;
    int rc = begin_call(l, m, &delay);
    if (rc == 0)
        rc = check_time_left(l, m, ctx);
    if (rc < 0)
        return rc;

    /* As the real backends: a record out of range is refused, never truncated. */
    if ((rc = kle_record_validate(record)) < 0)
        return kle_error_prefix("fake lock %s: %s: ", l->description, method_names[m]);
    kle_record copy = KLE_RECORD_INIT;
    if (kle_record_copy(&copy, record) < 0)
        return KLE_ENOMEM;
    pthread_mutex_lock(&l->mu);
    int has_rv = l->has_rv;
    uint64_t expected = l->last_rv;
    pthread_mutex_unlock(&l->mu);

    kle_fake_store *s = l->store;
    uint64_t rv = 0;
    pthread_mutex_lock(&s->mu);
    if (m == KLE_FAKE_CREATE && s->exists)
        rc = kle_error_set(KLE_EEXISTS, "fake lock %s: already exists", l->description);
    else if (m == KLE_FAKE_UPDATE && !has_rv)
        rc = kle_error_set(KLE_ESTATE, "fake lock %s: update before the object was read",
                           l->description);
    else if (m == KLE_FAKE_UPDATE && !s->exists)
        rc = kle_error_set(KLE_ENOTFOUND, "fake lock %s: not found", l->description);
    else if (m == KLE_FAKE_UPDATE && s->resource_version != expected)
        rc = kle_error_set(KLE_ECONFLICT,
                           "fake lock %s: the object has been modified (resourceVersion %llu, "
                           "expected %llu)",
                           l->description, (unsigned long long)s->resource_version,
                           (unsigned long long)expected);
    if (rc == 0) {
        if (s->whole_seconds) {
            copy.acquire_time_ns -= copy.acquire_time_ns % KLE_NS_PER_SEC;
            copy.renew_time_ns -= copy.renew_time_ns % KLE_NS_PER_SEC;
        }
        remember_prev(s);
        kle_record_dispose(&s->record);
        s->record = copy;
        s->exists = 1;
        rv = ++s->resource_version;
        s->writes++;
        publish(s);
    }
    pthread_mutex_unlock(&s->mu);
    if (rc < 0)
        kle_record_dispose(&copy);
    /* A late answer is lost whatever it was; a write still took effect. */
    int late = finish_call(l, m, delay, ctx);
    if (late < 0)
        return late;
    if (rc < 0)
        return rc;
    remember_version(l, rv);
    return 0;
}

static int fake_create(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    return fake_write((fake_lock *)self, KLE_FAKE_CREATE, record, ctx);
}

static int fake_update(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    return fake_write((fake_lock *)self, KLE_FAKE_UPDATE, record, ctx);
}

static int fake_record_event(kle_lock *self, const char *message, const kle_lock_ctx *ctx)
{
    fake_lock *l = (fake_lock *)self;
    int64_t delay;
    int rc = begin_call(l, KLE_FAKE_RECORD_EVENT, &delay);
    if (rc == 0)
        rc = check_time_left(l, KLE_FAKE_RECORD_EVENT, ctx);
    if (rc == 0)
        rc = finish_call(l, KLE_FAKE_RECORD_EVENT, delay, ctx);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&l->mu);
    l->events++;
    snprintf(l->last_event, sizeof(l->last_event), "%s %s", l->identity, message);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* Setting the watch's cancel event wakes the watching thread too. */
static void proxy_notify(kle_clock *self, kle_event *event)
{
    fake_lock *l = (fake_lock *)((char *)self - offsetof(fake_lock, proxy));
    (void)event;
    kle_event_set(l->watch_wake);
}

static int deliver(fake_lock *l, fake_event *ev, kle_lock_watch_fn fn, void *data)
{
    char rvbuf[24];
    snprintf(rvbuf, sizeof(rvbuf), "%llu", (unsigned long long)ev->rv);
    kle_lock_event out = {KLE_LOCK_EVENT_VERSION, ev->type, ev->listed, NULL, rvbuf, 0};
    kle_lock_result r = KLE_LOCK_RESULT_INIT;
    if (ev->type == KLE_LOCK_EVENT_RECORD) {
        r.record = ev->record;
        if (render_raw(&r.raw, &r.raw_len, &r.record) < 0)
            return kle_error_set(KLE_ENOMEM, "fake lock %s: out of memory", l->description);
        r.resource_version = rvbuf;
        out.result = &r;
    }
    int rc = fn(&out, data);
    free(r.raw);
    return rc;
}

static int fake_watch(kle_lock *self, const kle_lock_watch_opts *opts, kle_lock_watch_fn fn,
                      void *data)
{
    fake_lock *l = (fake_lock *)self;
    kle_fake_store *s = l->store;
    kle_clock *clock = s->clock;
    int fail = 0;
    pthread_mutex_lock(&l->mu);
    l->calls[KLE_FAKE_WATCH]++;
    if (l->scripts[KLE_FAKE_WATCH].fail_count > 0) {
        l->scripts[KLE_FAKE_WATCH].fail_count--;
        fail = l->scripts[KLE_FAKE_WATCH].fail_error;
    }
    pthread_mutex_unlock(&l->mu);
    if (fail)
        return kle_error_set(fail, "fake lock %s: scripted watch failure: %s", l->description,
                             kle_strerror(fail));
    watch_session *w = calloc(1, sizeof(*w));
    if (!w)
        return kle_error_set(KLE_ENOMEM, "fake lock %s: out of memory", l->description);
    w->lock = l;
    int64_t start = kle_clock_monotonic_ns(clock);
    pthread_mutex_lock(&s->mu);
    if (!opts->resource_version || !*opts->resource_version)
        enqueue(w, KLE_LOCK_EVENT_RECORD, 1, s->exists, &s->record, s->resource_version, start);
    w->next = s->sessions;
    s->sessions = w;
    l->session = w;
    pthread_mutex_unlock(&s->mu);
    if (opts->cancel)
        kle_event_watch(opts->cancel, &l->proxy);
    int64_t deadline = opts->timeout_ns > 0 ? start + opts->timeout_ns : INT64_MAX;
    int rc = 0;
    for (;;) {
        kle_event_reset(l->watch_wake);
        if (opts->cancel && kle_event_is_set(opts->cancel)) {
            rc = kle_error_set(KLE_ECANCELED, "fake lock %s: watch cancelled", l->description);
            break;
        }
        int64_t now = kle_clock_monotonic_ns(clock);
        if (now >= deadline)
            break;
        pthread_mutex_lock(&s->mu);
        if (w->end_rc) {
            rc = w->end_rc;
            pthread_mutex_unlock(&s->mu);
            kle_error_set(rc, "fake lock %s: the watch stream ended", l->description);
            break;
        }
        fake_event *ev = w->head;
        if (ev && ev->due <= now) {
            w->head = ev->next;
            if (!w->head)
                w->tail = NULL;
            pthread_mutex_unlock(&s->mu);
            int r = deliver(l, ev, fn, data);
            kle_record_dispose(&ev->record);
            free(ev);
            if (r) {
                rc = r < 0 ? r : 0;
                break;
            }
            continue;
        }
        int64_t until = ev && ev->due < deadline ? ev->due : deadline;
        pthread_mutex_unlock(&s->mu);
        kle_clock_wait(clock, l->watch_wake, until);
    }
    if (opts->cancel)
        kle_event_watch(opts->cancel, NULL);
    pthread_mutex_lock(&s->mu);
    for (watch_session **pp = &s->sessions; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    if (l->session == w)
        l->session = NULL;
    free_events(w);
    pthread_mutex_unlock(&s->mu);
    free(w);
    return rc;
}

static const char *fake_identity(kle_lock *self)
{
    return ((fake_lock *)self)->identity;
}

static const char *fake_describe(kle_lock *self)
{
    return ((fake_lock *)self)->description;
}

static void fake_free(kle_lock *self)
{
    fake_lock *l = (fake_lock *)self;
    store_unref(l->store);
    kle_event_free(l->watch_wake);
    pthread_mutex_destroy(&l->mu);
    free(l->identity);
    free(l->description);
    free(l);
}

int kle_fake_lock_new(kle_lock **out, kle_fake_store *store, const char *identity,
                      const char *description)
{
    if (!out || !store)
        return kle_error_set(KLE_EINVAL, "kle_fake_lock_new: out and store are required");
    *out = NULL;
    if (kle_identity_check(identity) < 0)
        return kle_error_prefix("kle_fake_lock_new: ");
    fake_lock *l = calloc(1, sizeof(*l));
    if (!l)
        return kle_error_set(KLE_ENOMEM, "kle_fake_lock_new: out of memory");
    l->identity = strdup(identity);
    l->description = strdup(description ? description : "fake/lock");
    if (!l->identity || !l->description) {
        free(l->identity);
        free(l->description);
        free(l);
        return kle_error_set(KLE_ENOMEM, "kle_fake_lock_new: out of memory");
    }
    /* Version 2: calls are synchronous (the runtime drives it on a worker
     * thread); no asynchronous members. */
    l->base.version = 2;
    l->base.get = fake_get;
    l->base.create = fake_create;
    l->base.update = fake_update;
    l->base.record_event = fake_record_event;
    l->base.identity = fake_identity;
    l->base.describe = fake_describe;
    l->base.free = fake_free;
    l->base.watch = NULL; /* kle_fake_lock_set_watch() */
    l->proxy.version = KLE_CLOCK_VERSION;
    l->proxy.notify = proxy_notify;
    if (kle_event_new(&l->watch_wake) < 0) {
        free(l->identity);
        free(l->description);
        free(l);
        return kle_error_last()->code;
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_lock(&store->mu);
    store->refs++;
    pthread_mutex_unlock(&store->mu);
    l->store = store;
    *out = &l->base;
    return 0;
}

int kle_fake_lock_set_watch(kle_lock *lock, int on)
{
    if (!kle_fake_lock_is_fake(lock))
        return kle_error_set(KLE_EINVAL, "kle_fake_lock_set_watch: not a fake lock");
    lock->watch = on ? fake_watch : NULL;
    return 0;
}

void kle_fake_lock_watch_fault(kle_lock *lock, kle_fake_watch_fault fault, int count)
{
    if (!kle_fake_lock_is_fake(lock) || count <= 0)
        return;
    fake_lock *l = (fake_lock *)lock;
    kle_fake_store *s = l->store;
    pthread_mutex_lock(&s->mu);
    switch (fault) {
    case KLE_FAKE_WATCH_DROP:
        l->wf_drop += count;
        break;
    case KLE_FAKE_WATCH_DUPLICATE:
        l->wf_dup += count;
        break;
    case KLE_FAKE_WATCH_STALE:
        l->wf_stale += count;
        break;
    case KLE_FAKE_WATCH_GONE:
        l->wf_gone += count;
        break;
    case KLE_FAKE_WATCH_END:
        if (l->session)
            l->session->end_rc = KLE_ETRANSPORT;
        break;
    case KLE_FAKE_WATCH_SILENCE:
        if (l->session) {
            l->session->silent = 1;
            free_events(l->session);
        }
        break;
    }
    kle_event_set(l->watch_wake);
    pthread_mutex_unlock(&s->mu);
}

int kle_fake_lock_watching(kle_lock *lock)
{
    if (!kle_fake_lock_is_fake(lock))
        return 0;
    fake_lock *l = (fake_lock *)lock;
    pthread_mutex_lock(&l->store->mu);
    int on = l->session != NULL;
    pthread_mutex_unlock(&l->store->mu);
    return on;
}

int kle_fake_lock_is_fake(kle_lock *lock)
{
    return lock && lock->get == fake_get;
}

static fake_lock *as_fake(kle_lock *lock, kle_fake_method m)
{
    if (!kle_fake_lock_is_fake(lock) || (unsigned)m >= N_METHODS)
        return NULL;
    return (fake_lock *)lock;
}

void kle_fake_lock_fail_next(kle_lock *lock, kle_fake_method method, int count, int error)
{
    fake_lock *l = as_fake(lock, method);
    if (!l || count <= 0 || error >= 0)
        return;
    pthread_mutex_lock(&l->mu);
    l->scripts[method].fail_count += count;
    l->scripts[method].fail_error = error;
    pthread_mutex_unlock(&l->mu);
}

void kle_fake_lock_delay_next(kle_lock *lock, kle_fake_method method, int count, int64_t delay_ns)
{
    fake_lock *l = as_fake(lock, method);
    if (!l || count <= 0 || delay_ns < 0)
        return;
    pthread_mutex_lock(&l->mu);
    l->scripts[method].delay_count += count;
    l->scripts[method].delay_ns = delay_ns;
    pthread_mutex_unlock(&l->mu);
}

void kle_fake_lock_stall_next(kle_lock *lock, kle_fake_method method, int count, int64_t stall_ns)
{
    fake_lock *l = as_fake(lock, method);
    if (!l || count <= 0 || stall_ns <= 0)
        return;
    pthread_mutex_lock(&l->mu);
    l->scripts[method].stall_count += count;
    l->scripts[method].stall_ns = stall_ns;
    pthread_mutex_unlock(&l->mu);
}

void kle_fake_lock_clear_script(kle_lock *lock)
{
    fake_lock *l = as_fake(lock, KLE_FAKE_GET);
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    memset(l->scripts, 0, sizeof(l->scripts));
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_lock(&l->store->mu);
    l->wf_drop = l->wf_dup = l->wf_stale = l->wf_gone = 0;
    pthread_mutex_unlock(&l->store->mu);
}

unsigned int kle_fake_lock_calls(kle_lock *lock, kle_fake_method method)
{
    fake_lock *l = as_fake(lock, method);
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    unsigned int n = l->calls[method];
    pthread_mutex_unlock(&l->mu);
    return n;
}

unsigned int kle_fake_lock_last_event(kle_lock *lock, char *buf, size_t size)
{
    fake_lock *l = as_fake(lock, KLE_FAKE_RECORD_EVENT);
    if (!l)
        return 0;
    pthread_mutex_lock(&l->mu);
    unsigned int n = l->events;
    if (buf && size)
        snprintf(buf, size, "%s", l->last_event);
    pthread_mutex_unlock(&l->mu);
    return n;
}
