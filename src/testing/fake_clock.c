/*
 * The fake clock. In auto mode it is a cooperative scheduler: exactly one
 * participant holds the turn; a participant that waits gives the turn up;
 * when nobody holds it, the next participant is picked from the ready ones
 * (in the order they became ready) or, if none is ready, time jumps to the
 * earliest deadline and those waiters become ready in (deadline, id) order.
 * Threads that are not participants wait on plain condition variables and
 * never hold time back.
 */
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/testing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum slot_state { SLOT_READY, SLOT_RUNNING, SLOT_WAITING };

typedef struct fc_slot {
    struct fc_slot *next;
    enum slot_state state;
    int granted;
    int64_t deadline;
    kle_event *event;
    uint64_t id;
    uint64_t stamp;
    pthread_cond_t cv;
} fc_slot;

typedef struct fake_clock {
    kle_clock base;
    pthread_mutex_t mu;
    pthread_cond_t tick;
    int64_t mono;
    int64_t wall_offset;
    int auto_advance;
    fc_slot *slots;
    fc_slot *running;
    uint64_t next_id;
    uint64_t next_stamp;
    int plain_waiters;
    void (*step_hook)(kle_clock *, void *);
    void *step_data;
} fake_clock;

static _Thread_local fake_clock *tls_clock;
static _Thread_local fc_slot *tls_slot;

static const int64_t MONO_START = 1000 * KLE_NS_PER_SEC;

static int64_t fc_monotonic(kle_clock *self)
{
    fake_clock *fc = (fake_clock *)self;
    pthread_mutex_lock(&fc->mu);
    int64_t now = fc->mono;
    pthread_mutex_unlock(&fc->mu);
    return now;
}

static int64_t fc_wall(kle_clock *self)
{
    fake_clock *fc = (fake_clock *)self;
    pthread_mutex_lock(&fc->mu);
    int64_t now = fc->mono + fc->wall_offset;
    pthread_mutex_unlock(&fc->mu);
    return now;
}

static void grant(fake_clock *fc, fc_slot *s)
{
    s->granted = 1;
    s->state = SLOT_RUNNING;
    fc->running = s;
    pthread_cond_signal(&s->cv);
}

static void make_ready(fake_clock *fc, fc_slot *s)
{
    s->state = SLOT_READY;
    s->stamp = fc->next_stamp++;
}

/* Marks every waiter that is due as ready, earliest deadline first. */
static void wake_due(fake_clock *fc)
{
    for (;;) {
        fc_slot *best = NULL;
        for (fc_slot *s = fc->slots; s; s = s->next)
            if (s->state == SLOT_WAITING && s->deadline <= fc->mono &&
                (!best || s->deadline < best->deadline ||
                 (s->deadline == best->deadline && s->id < best->id)))
                best = s;
        if (!best)
            return;
        make_ready(fc, best);
    }
}

/* Called with mu held when nobody holds the turn. */
static void schedule(fake_clock *fc)
{
    if (!fc->auto_advance || fc->running)
        return;
    for (int pass = 0; pass < 2; pass++) {
        fc_slot *best = NULL;
        for (fc_slot *s = fc->slots; s; s = s->next)
            if (s->state == SLOT_READY && !s->granted && (!best || s->stamp < best->stamp))
                best = s;
        if (best) {
            grant(fc, best);
            return;
        }
        if (pass == 1)
            return;
        int64_t earliest = INT64_MAX;
        for (fc_slot *s = fc->slots; s; s = s->next)
            if (s->state == SLOT_WAITING && s->deadline < earliest)
                earliest = s->deadline;
        if (earliest == INT64_MAX)
            return; /* Everyone waits for an event: idle until one is set. */
        if (earliest > fc->mono)
            fc->mono = earliest;
        wake_due(fc);
        pthread_cond_broadcast(&fc->tick);
    }
}

static void run_hook(fake_clock *fc)
{
    pthread_mutex_lock(&fc->mu);
    void (*hook)(kle_clock *, void *) = fc->step_hook;
    void *data = fc->step_data;
    pthread_mutex_unlock(&fc->mu);
    if (hook)
        hook(&fc->base, data);
}

static fc_slot *my_slot(fake_clock *fc)
{
    return tls_clock == fc ? tls_slot : NULL;
}

static int fc_wait(kle_clock *self, kle_event *event, int64_t deadline)
{
    fake_clock *fc = (fake_clock *)self;
    fc_slot *slot = my_slot(fc);
    int participant = slot && fc->auto_advance;

    if (event)
        kle_event_watch(event, self);
    if (participant)
        run_hook(fc);
    pthread_mutex_lock(&fc->mu);
    int rc;
    for (;;) {
        if (event && kle_event_is_set(event)) {
            rc = 0;
            break;
        }
        if (fc->mono >= deadline) {
            rc = KLE_ETIMEOUT;
            break;
        }
        if (participant) {
            slot->state = SLOT_WAITING;
            slot->deadline = deadline;
            slot->event = event;
            slot->granted = 0;
            if (fc->running == slot)
                fc->running = NULL;
            pthread_cond_broadcast(&fc->tick);
            schedule(fc);
            while (!slot->granted)
                pthread_cond_wait(&slot->cv, &fc->mu);
            slot->event = NULL;
        } else {
            fc->plain_waiters++;
            pthread_cond_broadcast(&fc->tick);
            pthread_cond_wait(&fc->tick, &fc->mu);
            fc->plain_waiters--;
        }
    }
    pthread_mutex_unlock(&fc->mu);
    if (participant)
        run_hook(fc);
    return rc;
}

static void fc_notify(kle_clock *self, kle_event *event)
{
    fake_clock *fc = (fake_clock *)self;
    pthread_mutex_lock(&fc->mu);
    for (fc_slot *s = fc->slots; s; s = s->next)
        if (s->state == SLOT_WAITING && s->event == event)
            make_ready(fc, s);
    pthread_cond_broadcast(&fc->tick);
    schedule(fc);
    pthread_mutex_unlock(&fc->mu);
}

static void *fc_register(kle_clock *self)
{
    fake_clock *fc = (fake_clock *)self;
    fc_slot *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_lock(&fc->mu);
    s->id = fc->next_id++;
    make_ready(fc, s);
    s->next = fc->slots;
    fc->slots = s;
    schedule(fc);
    pthread_mutex_unlock(&fc->mu);
    return s;
}

static void fc_attach(kle_clock *self, void *token)
{
    fake_clock *fc = (fake_clock *)self;
    fc_slot *s = token;
    if (!s)
        return;
    tls_clock = fc;
    tls_slot = s;
    pthread_mutex_lock(&fc->mu);
    if (fc->auto_advance)
        while (!s->granted)
            pthread_cond_wait(&s->cv, &fc->mu);
    s->state = SLOT_RUNNING;
    pthread_mutex_unlock(&fc->mu);
    if (fc->auto_advance)
        run_hook(fc);
}

static void fc_detach(kle_clock *self, void *token)
{
    fake_clock *fc = (fake_clock *)self;
    fc_slot *s = token;
    if (!s)
        return;
    if (fc->auto_advance)
        run_hook(fc);
    pthread_mutex_lock(&fc->mu);
    for (fc_slot **pp = &fc->slots; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (fc->running == s)
        fc->running = NULL;
    schedule(fc);
    pthread_cond_broadcast(&fc->tick);
    pthread_mutex_unlock(&fc->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    if (tls_slot == s) {
        tls_slot = NULL;
        tls_clock = NULL;
    }
}

static void fc_free(kle_clock *self)
{
    fake_clock *fc = (fake_clock *)self;
    pthread_mutex_destroy(&fc->mu);
    pthread_cond_destroy(&fc->tick);
    free(fc);
}

int kle_fake_clock_new(kle_clock **out, const kle_fake_clock_opts *opts)
{
    static const kle_fake_clock_opts defaults = KLE_FAKE_CLOCK_OPTS_INIT;

    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_new: out is NULL");
    *out = NULL;
    if (!opts)
        opts = &defaults;
    if (opts->version < 1 || opts->version > KLE_FAKE_CLOCK_OPTS_VERSION)
        return kle_error_set(KLE_EVERSION, "kle_fake_clock_new: options version %u unsupported",
                             opts->version);
    fake_clock *fc = calloc(1, sizeof(*fc));
    if (!fc)
        return kle_error_set(KLE_ENOMEM, "kle_fake_clock_new: out of memory");
    fc->base.version = KLE_CLOCK_VERSION;
    fc->base.monotonic_ns = fc_monotonic;
    fc->base.wall_ns = fc_wall;
    fc->base.wait = fc_wait;
    fc->base.notify = fc_notify;
    fc->base.thread_register = fc_register;
    fc->base.thread_attach = fc_attach;
    fc->base.thread_detach = fc_detach;
    fc->base.free = fc_free;
    pthread_mutex_init(&fc->mu, NULL);
    pthread_cond_init(&fc->tick, NULL);
    fc->mono = MONO_START;
    fc->wall_offset = opts->start_wall_ns - MONO_START;
    fc->auto_advance = opts->auto_advance != 0;
    *out = &fc->base;
    return 0;
}

int kle_fake_clock_is_fake(kle_clock *clock)
{
    return clock && clock->wait == fc_wait;
}

int kle_fake_clock_step_wall(kle_clock *clock, int64_t delta_ns)
{
    if (!kle_fake_clock_is_fake(clock))
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_step_wall: not a fake clock");
    fake_clock *fc = (fake_clock *)clock;
    pthread_mutex_lock(&fc->mu);
    if ((delta_ns > 0 && fc->wall_offset > INT64_MAX - delta_ns) ||
        (delta_ns < 0 && fc->wall_offset < INT64_MIN - delta_ns)) {
        pthread_mutex_unlock(&fc->mu);
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_step_wall: step out of range");
    }
    fc->wall_offset += delta_ns;
    pthread_mutex_unlock(&fc->mu);
    return 0;
}

int kle_fake_clock_advance(kle_clock *clock, int64_t ns)
{
    if (!kle_fake_clock_is_fake(clock))
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_advance: not a fake clock");
    if (ns < 0)
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_advance: negative duration %lld",
                             (long long)ns);
    fake_clock *fc = (fake_clock *)clock;
    pthread_mutex_lock(&fc->mu);
    fc->mono += ns;
    wake_due(fc);
    pthread_cond_broadcast(&fc->tick);
    schedule(fc);
    pthread_mutex_unlock(&fc->mu);
    return 0;
}

static int count_waiters(fake_clock *fc)
{
    int n = fc->plain_waiters;
    for (fc_slot *s = fc->slots; s; s = s->next)
        if (s->state == SLOT_WAITING)
            n++;
    return n;
}

int kle_fake_clock_waiters(kle_clock *clock)
{
    if (!kle_fake_clock_is_fake(clock))
        return 0;
    fake_clock *fc = (fake_clock *)clock;
    pthread_mutex_lock(&fc->mu);
    int n = count_waiters(fc);
    pthread_mutex_unlock(&fc->mu);
    return n;
}

int kle_fake_clock_await_waiters_ns(kle_clock *clock, int n, int64_t real_timeout_ns)
{
    if (!kle_fake_clock_is_fake(clock))
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_await_waiters_ns: not a fake clock");
    fake_clock *fc = (fake_clock *)clock;
    struct timespec abs;
    clock_gettime(CLOCK_REALTIME, &abs);
    int64_t ns = abs.tv_nsec + real_timeout_ns % KLE_NS_PER_SEC;
    abs.tv_sec += (time_t)(real_timeout_ns / KLE_NS_PER_SEC + ns / KLE_NS_PER_SEC);
    abs.tv_nsec = (long)(ns % KLE_NS_PER_SEC);
    int rc = 0;
    pthread_mutex_lock(&fc->mu);
    while (count_waiters(fc) < n) {
        if (pthread_cond_timedwait(&fc->tick, &fc->mu, &abs) == ETIMEDOUT) {
            if (count_waiters(fc) < n)
                rc = kle_error_set(KLE_ETIMEOUT, "fake clock: %d of %d waiters after %lld ms",
                                   count_waiters(fc), n,
                                   (long long)(real_timeout_ns / KLE_NS_PER_MS));
            break;
        }
    }
    pthread_mutex_unlock(&fc->mu);
    return rc;
}

int kle_fake_clock_join(kle_clock *clock)
{
    if (!kle_fake_clock_is_fake(clock))
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_join: not a fake clock");
    void *token = fc_register(clock);
    if (!token)
        return kle_error_set(KLE_ENOMEM, "kle_fake_clock_join: out of memory");
    fc_attach(clock, token);
    return 0;
}

void kle_fake_clock_leave(kle_clock *clock)
{
    if (kle_fake_clock_is_fake(clock) && tls_clock == (fake_clock *)clock)
        fc_detach(clock, tls_slot);
}

struct spawn_arg {
    kle_clock *clock;
    void *token;
    void *(*fn)(void *);
    void *arg;
};

static void *spawn_main(void *p)
{
    struct spawn_arg a = *(struct spawn_arg *)p;
    free(p);
    fc_attach(a.clock, a.token);
    void *ret = a.fn(a.arg);
    fc_detach(a.clock, a.token);
    return ret;
}

int kle_fake_clock_spawn(pthread_t *out, kle_clock *clock, void *(*fn)(void *), void *arg)
{
    if (!out || !fn || !kle_fake_clock_is_fake(clock))
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_spawn: bad argument");
    struct spawn_arg *a = malloc(sizeof(*a));
    if (!a)
        return kle_error_set(KLE_ENOMEM, "kle_fake_clock_spawn: out of memory");
    a->clock = clock;
    a->token = fc_register(clock);
    a->fn = fn;
    a->arg = arg;
    if (!a->token) {
        free(a);
        return kle_error_set(KLE_ENOMEM, "kle_fake_clock_spawn: out of memory");
    }
    int err = pthread_create(out, NULL, spawn_main, a);
    if (err) {
        fc_detach(clock, a->token);
        free(a);
        return kle_error_set(KLE_ESYSTEM, "kle_fake_clock_spawn: pthread_create: %s",
                             strerror(err));
    }
    return 0;
}

void kle_fake_clock_set_step_hook(kle_clock *clock, void (*fn)(kle_clock *, void *), void *data)
{
    if (!kle_fake_clock_is_fake(clock))
        return;
    fake_clock *fc = (fake_clock *)clock;
    pthread_mutex_lock(&fc->mu);
    fc->step_hook = fn;
    fc->step_data = data;
    pthread_mutex_unlock(&fc->mu);
}

int kle_fake_clock_opts_init(kle_fake_clock_opts *ptr, unsigned int version)
{
    if (!ptr)
        return kle_error_set(KLE_EINVAL, "kle_fake_clock_opts_init: pointer is NULL");
    if (version < 1 || version > KLE_FAKE_CLOCK_OPTS_VERSION)
        return kle_error_set(KLE_EVERSION, "kle_fake_clock_opts_init: version %u is not supported",
                             version);
    kle_fake_clock_opts init = KLE_FAKE_CLOCK_OPTS_INIT;
    *ptr = init; /* Version 1 is the whole current layout. */
    ptr->version = version;
    return 0;
}
