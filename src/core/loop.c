/*
 * kle_loop, clock-driven: waits with kle_clock_wait on the loop's clock
 * (absolute deadlines on CLOCK_BOOTTIME with the real clock, virtual time
 * with the fake clock); timers in an array kept in due order; work posted
 * from other threads in a FIFO queue. Descriptors cannot be watched.
 */
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/sys/loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct kle_loop {
    kle_clock *clock;
    kle_event *wake;
    pthread_mutex_t mu; /* Guards the post queue. */
    kle_loop_post *head, *tail;
    kle_loop_timer **timers; /* Armed timers, due order. */
    size_t ntimers, cap;
    uint64_t seq;
};

int kle_loop_new(kle_loop **out, kle_clock *clock)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_loop_new: out is NULL");
    *out = NULL;
    kle_loop *l = calloc(1, sizeof(*l));
    if (!l)
        return kle_error_set(KLE_ENOMEM, "kle_loop_new: out of memory");
    int rc = kle_event_new(&l->wake);
    if (rc < 0) {
        free(l);
        return rc;
    }
    l->clock = clock ? clock : kle_clock_real();
    pthread_mutex_init(&l->mu, NULL);
    *out = l;
    return 0;
}

void kle_loop_free(kle_loop *l)
{
    if (!l)
        return;
    kle_event_free(l->wake);
    pthread_mutex_destroy(&l->mu);
    free(l->timers);
    free(l);
}

kle_clock *kle_loop_clock(kle_loop *l)
{
    return l ? l->clock : NULL;
}

int kle_loop_fd(const kle_loop *l)
{
    (void)l;
    return -1;
}

int kle_loop_watch_fd(kle_loop *l, int fd, unsigned events, kle_loop_fd_fn fn, void *data)
{
    (void)fd, (void)events, (void)fn, (void)data;
    if (!l)
        return kle_error_set(KLE_EINVAL, "kle_loop_watch_fd: loop is NULL");
    return kle_error_set(KLE_ESTATE, "kle_loop_watch_fd: this loop cannot watch descriptors");
}

static int before(const kle_loop_timer *a, const kle_loop_timer *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

void kle_loop_timer_disarm(kle_loop *l, kle_loop_timer *t)
{
    if (!l || !t || !t->slot)
        return;
    size_t i = t->slot - 1;
    memmove(&l->timers[i], &l->timers[i + 1], (l->ntimers - i - 1) * sizeof(*l->timers));
    l->ntimers--;
    for (size_t j = i; j < l->ntimers; j++)
        l->timers[j]->slot = j + 1;
    t->slot = 0;
}

int kle_loop_timer_arm(kle_loop *l, kle_loop_timer *t, int64_t at_ns, kle_loop_timer_fn fn,
                       void *data)
{
    if (!l || !t || !fn)
        return kle_error_set(KLE_EINVAL, "kle_loop_timer_arm: loop, timer and fn are required");
    kle_loop_timer_disarm(l, t);
    if (l->ntimers == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        kle_loop_timer **p = realloc(l->timers, cap * sizeof(*p));
        if (!p)
            return kle_error_set(KLE_ENOMEM, "kle_loop_timer_arm: out of memory");
        l->timers = p;
        l->cap = cap;
    }
    t->at_ns = at_ns;
    t->fn = fn;
    t->data = data;
    t->seq = ++l->seq;
    size_t i = l->ntimers;
    while (i > 0 && before(t, l->timers[i - 1]))
        i--;
    memmove(&l->timers[i + 1], &l->timers[i], (l->ntimers - i) * sizeof(*l->timers));
    l->timers[i] = t;
    l->ntimers++;
    for (size_t j = i; j < l->ntimers; j++)
        l->timers[j]->slot = j + 1;
    return 0;
}

int kle_loop_post_work(kle_loop *l, kle_loop_post *p, kle_loop_post_fn fn, void *data)
{
    if (!l || !p || !fn)
        return kle_error_set(KLE_EINVAL, "kle_loop_post_work: loop, post and fn are required");
    pthread_mutex_lock(&l->mu);
    if (!p->queued) {
        p->fn = fn;
        p->data = data;
        p->next = NULL;
        p->queued = 1;
        if (l->tail)
            l->tail->next = p;
        else
            l->head = p;
        l->tail = p;
    }
    pthread_mutex_unlock(&l->mu);
    kle_event_set(l->wake);
    return 0;
}

void kle_loop_wake(kle_loop *l)
{
    if (l)
        kle_event_set(l->wake);
}

int64_t kle_loop_next_timer_ns(kle_loop *l)
{
    return l && l->ntimers ? l->timers[0]->at_ns : INT64_MAX;
}

int kle_loop_dispatch(kle_loop *l, int64_t timeout_ns)
{
    if (!l)
        return kle_error_set(KLE_EINVAL, "kle_loop_dispatch: loop is NULL");
    int64_t now = kle_clock_monotonic_ns(l->clock);
    int64_t until = timeout_ns < 0                 ? INT64_MAX
                    : timeout_ns > INT64_MAX - now ? INT64_MAX
                                                   : now + timeout_ns;
    int64_t next = kle_loop_next_timer_ns(l);
    if (next < until)
        until = next;
    pthread_mutex_lock(&l->mu);
    int posted = l->head != NULL;
    pthread_mutex_unlock(&l->mu);
    if (!posted && until > now)
        kle_clock_wait(l->clock, l->wake, until);
    kle_event_reset(l->wake);
    int ran = 0;
    /* Timers due now, in due order; a handler may arm more. */
    now = kle_clock_monotonic_ns(l->clock);
    while (l->ntimers && l->timers[0]->at_ns <= now) {
        kle_loop_timer *t = l->timers[0];
        kle_loop_timer_disarm(l, t);
        t->fn(l, t, t->data);
        ran++;
    }
    /* Posted work, in posting order. */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        kle_loop_post *p = l->head;
        if (p) {
            l->head = p->next;
            if (!l->head)
                l->tail = NULL;
            p->queued = 0;
            p->next = NULL;
        }
        pthread_mutex_unlock(&l->mu);
        if (!p)
            break;
        p->fn(l, p, p->data);
        ran++;
    }
    return ran;
}
