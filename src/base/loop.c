/*
 * The event loop (kle/loop.h, kle/sys/loop.h).
 *
 * With the real clock: one epoll set (kle_loop_fd()), one CLOCK_BOOTTIME
 * timerfd armed at the absolute time of the earliest timer, and one eventfd
 * that posts and kle_loop_wake() write to. With any other clock: no epoll
 * set; dispatch waits on that clock for an internal event (set by posts and
 * wakes) until the next timer, so that virtual time works.
 *
 * Timers are the callers' structs in a binary heap ordered by (due time,
 * arming order). A dispatch runs the timers due when it looks at the clock,
 * in that order; a timer armed by a handler runs at a later dispatch, even
 * when it is already due, so a handler that re-arms itself cannot starve the
 * loop. Descriptors are kept in a table indexed by descriptor, each
 * registration with a generation that the epoll event carries, so that an
 * event of a registration removed by an earlier handler of the same batch
 * is dropped rather than delivered to a newer one.
 */
#include "kle/sys/errors.h"
#include "kle/sys/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* A timer's slot while it is in the list of timers a dispatch is running. */
#define SLOT_DUE (((size_t)-1 >> 1) + 1)
/* Epoll data of the loop's own descriptors (registrations carry fd | gen << 32). */
#define TAG_TIMER UINT64_MAX
#define TAG_WAKE  (UINT64_MAX - 1)
/* Events taken from epoll per wait. */
#define BATCH 64

struct fd_reg {
    kle_loop_fd_fn fn;
    void *data;
    unsigned events;
    uint32_t gen; /* 0: not registered */
};

struct kle_loop {
    kle_clock *clock;
    int real;
    int epfd, tfd, efd; /* -1 without the real clock */
    int64_t armed_at;   /* the timerfd's deadline; INT64_MAX: disarmed */
    kle_event *event;   /* without the real clock: set by posts and wakes */

    kle_loop_timer **heap;
    size_t nheap, heap_cap;
    kle_loop_timer **due; /* the timers the running dispatch runs */
    size_t ndue, due_cap;
    uint64_t seq;

    struct fd_reg *fds;
    size_t nfds;
    uint32_t gen;

    pthread_mutex_t mu; /* the post queue */
    kle_loop_post *head, *tail;
    atomic_int posted; /* posts queued (a hint read without mu) */
};

/* ---- construction --------------------------------------------------------- */

static int epoll_add(int epfd, int fd, uint64_t tag)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

int kle_loop_new(kle_loop **out, kle_clock *clock)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_loop_new: out is NULL");
    *out = NULL;
    kle_loop *loop = calloc(1, sizeof(*loop));
    if (!loop)
        return kle_error_set(KLE_ENOMEM, "kle_loop_new: out of memory");
    loop->clock = clock ? clock : kle_clock_real();
    loop->real = loop->clock == kle_clock_real();
    loop->epfd = loop->tfd = loop->efd = -1;
    loop->armed_at = INT64_MAX;
    pthread_mutex_init(&loop->mu, NULL);
    atomic_init(&loop->posted, 0);
    int rc = 0;
    if (loop->real) {
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop->epfd >= 0)
            loop->tfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
        if (loop->tfd >= 0)
            loop->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (loop->efd < 0 || epoll_add(loop->epfd, loop->tfd, TAG_TIMER) < 0 ||
            epoll_add(loop->epfd, loop->efd, TAG_WAKE) < 0)
            rc = kle_error_set(KLE_ESYSTEM, "kle_loop_new: %s", strerror(errno));
    } else {
        rc = kle_event_new(&loop->event);
    }
    if (rc < 0) {
        kle_loop_free(loop);
        return rc;
    }
    *out = loop;
    return 0;
}

void kle_loop_free(kle_loop *loop)
{
    if (!loop)
        return;
    /* Whatever is still registered is forgotten (its owner broke the
     * contract, but its structs must not point into freed memory). */
    for (size_t i = 0; i < loop->nheap; i++)
        loop->heap[i]->slot = 0;
    for (size_t i = 0; i < loop->ndue; i++)
        if (loop->due[i])
            loop->due[i]->slot = 0;
    for (kle_loop_post *p = loop->head; p; p = p->next)
        p->queued = 0;
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->tfd >= 0)
        close(loop->tfd);
    if (loop->efd >= 0)
        close(loop->efd);
    kle_event_free(loop->event);
    free(loop->heap);
    free(loop->due);
    free(loop->fds);
    pthread_mutex_destroy(&loop->mu);
    free(loop);
}

kle_clock *kle_loop_clock(kle_loop *loop)
{
    return loop ? loop->clock : NULL;
}

int kle_loop_fd(const kle_loop *loop)
{
    return loop ? loop->epfd : -1;
}

/* ---- timers --------------------------------------------------------------- */

static int before(const kle_loop_timer *a, const kle_loop_timer *b)
{
    return a->at_ns < b->at_ns || (a->at_ns == b->at_ns && a->seq < b->seq);
}

static void heap_set(kle_loop *loop, size_t i, kle_loop_timer *t)
{
    loop->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(kle_loop *loop, size_t i)
{
    kle_loop_timer *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void sift_down(kle_loop *loop, size_t i)
{
    kle_loop_timer *t = loop->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= loop->nheap)
            break;
        if (c + 1 < loop->nheap && before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!before(loop->heap[c], t))
            break;
        heap_set(loop, i, loop->heap[c]);
        i = c;
    }
    heap_set(loop, i, t);
}

static void heap_remove(kle_loop *loop, size_t i)
{
    kle_loop_timer *t = loop->heap[i];
    t->slot = 0;
    loop->nheap--;
    if (i == loop->nheap)
        return;
    heap_set(loop, i, loop->heap[loop->nheap]);
    if (i > 0 && before(loop->heap[i], loop->heap[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

/* Takes @p timer out of the heap or the running dispatch's list. */
static void unlink_timer(kle_loop *loop, kle_loop_timer *timer)
{
    if (timer->slot & SLOT_DUE) {
        size_t i = (timer->slot & ~SLOT_DUE) - 1;
        if (i < loop->ndue && loop->due[i] == timer)
            loop->due[i] = NULL;
        timer->slot = 0;
    } else if (timer->slot && timer->slot <= loop->nheap && loop->heap[timer->slot - 1] == timer) {
        heap_remove(loop, timer->slot - 1);
    } else {
        timer->slot = 0;
    }
}

int kle_loop_timer_arm(kle_loop *loop, kle_loop_timer *timer, int64_t at_ns, kle_loop_timer_fn fn,
                       void *data)
{
    if (!loop || !timer || !fn)
        return kle_error_set(KLE_EINVAL, "kle_loop_timer_arm: loop, timer and fn must be set");
    if (timer->slot)
        unlink_timer(loop, timer);
    if (loop->nheap == loop->heap_cap) {
        size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 16;
        kle_loop_timer **h = realloc(loop->heap, cap * sizeof(*h));
        if (!h)
            return kle_error_set(KLE_ENOMEM, "kle_loop_timer_arm: out of memory");
        loop->heap = h;
        loop->heap_cap = cap;
    }
    timer->at_ns = at_ns;
    timer->fn = fn;
    timer->data = data;
    timer->seq = loop->seq++;
    loop->heap[loop->nheap] = timer;
    sift_up(loop, loop->nheap++);
    return 0;
}

void kle_loop_timer_disarm(kle_loop *loop, kle_loop_timer *timer)
{
    if (loop && timer && timer->slot)
        unlink_timer(loop, timer);
}

int64_t kle_loop_next_timer_ns(kle_loop *loop)
{
    return loop && loop->nheap ? loop->heap[0]->at_ns : INT64_MAX;
}

/* Runs the timers due at @p now, in (due time, arming order). */
static int run_timers(kle_loop *loop, int64_t now)
{
    size_t n = 0;
    while (loop->nheap && loop->heap[0]->at_ns <= now) {
        if (n == loop->due_cap) {
            size_t cap = loop->due_cap ? loop->due_cap * 2 : 16;
            kle_loop_timer **d = realloc(loop->due, cap * sizeof(*d));
            if (!d)
                break; /* the rest run at the next dispatch */
            loop->due = d;
            loop->due_cap = cap;
        }
        kle_loop_timer *t = loop->heap[0];
        heap_remove(loop, 0);
        loop->due[n] = t;
        t->slot = SLOT_DUE | (n + 1);
        loop->ndue = ++n;
    }
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        kle_loop_timer *t = loop->due[i];
        if (!t)
            continue; /* disarmed or re-armed by an earlier handler */
        loop->due[i] = NULL;
        t->slot = 0;
        t->fn(loop, t, t->data);
        ran++;
    }
    loop->ndue = 0;
    return ran;
}

/* Arms the timerfd at the earliest timer, when that changed. */
static void arm_timerfd(kle_loop *loop)
{
    int64_t at = loop->nheap ? loop->heap[0]->at_ns : INT64_MAX;
    if (at == loop->armed_at)
        return;
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (at != INT64_MAX) {
        if (at < 1)
            at = 1; /* zero would disarm it */
        its.it_value.tv_sec = (time_t)(at / KLE_NS_PER_SEC);
        its.it_value.tv_nsec = (long)(at % KLE_NS_PER_SEC);
    }
    if (timerfd_settime(loop->tfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
        loop->armed_at = at;
    else
        loop->armed_at = INT64_MIN; /* try again; dispatch does not wait meanwhile */
}

/* ---- posts and wake ------------------------------------------------------- */

int kle_loop_post_work(kle_loop *loop, kle_loop_post *post, kle_loop_post_fn fn, void *data)
{
    if (!loop || !post || !fn)
        return kle_error_set(KLE_EINVAL, "kle_loop_post_work: loop, post and fn must be set");
    pthread_mutex_lock(&loop->mu);
    if (!post->queued) {
        post->fn = fn;
        post->data = data;
        post->next = NULL;
        post->queued = 1;
        if (loop->tail)
            loop->tail->next = post;
        else
            loop->head = post;
        loop->tail = post;
        atomic_fetch_add(&loop->posted, 1);
    }
    pthread_mutex_unlock(&loop->mu);
    kle_loop_wake(loop);
    return 0;
}

void kle_loop_post_cancel(kle_loop *loop, kle_loop_post *post)
{
    if (!loop || !post)
        return;
    pthread_mutex_lock(&loop->mu);
    if (post->queued) {
        kle_loop_post *prev = NULL;
        for (kle_loop_post *p = loop->head; p; prev = p, p = p->next)
            if (p == post) {
                if (prev)
                    prev->next = p->next;
                else
                    loop->head = p->next;
                if (loop->tail == p)
                    loop->tail = prev;
                atomic_fetch_sub(&loop->posted, 1);
                break;
            }
        post->queued = 0;
        post->next = NULL;
    }
    pthread_mutex_unlock(&loop->mu);
}

/* Async-signal-safe with the real clock: a write(2). */
void kle_loop_wake(kle_loop *loop)
{
    if (!loop)
        return;
    if (loop->efd >= 0) {
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(loop->efd, &one, sizeof(one));
        } while (n < 0 && errno == EINTR);
        /* EAGAIN: the counter is at its maximum, so the fd is readable. */
    } else {
        kle_event_set(loop->event);
    }
}

/* Runs the posts queued when it starts (one posted meanwhile waits for the next dispatch). */
static int run_posts(kle_loop *loop)
{
    int n = atomic_load(&loop->posted), ran = 0;
    while (ran < n) {
        pthread_mutex_lock(&loop->mu);
        kle_loop_post *p = loop->head;
        kle_loop_post_fn fn = NULL;
        void *data = NULL;
        if (p) {
            loop->head = p->next;
            if (!loop->head)
                loop->tail = NULL;
            p->next = NULL;
            p->queued = 0;
            /* Read under the lock: once it is out of the queue, another
             * thread may post it again (and set its members) before it runs. */
            fn = p->fn;
            data = p->data;
            atomic_fetch_sub(&loop->posted, 1);
        }
        pthread_mutex_unlock(&loop->mu);
        if (!p)
            break;
        fn(loop, p, data);
        ran++;
    }
    return ran;
}

/* ---- descriptors ---------------------------------------------------------- */

int kle_loop_watch_fd(kle_loop *loop, int fd, unsigned events, kle_loop_fd_fn fn, void *data)
{
    if (!loop || fd < 0 || (events && !fn) || (events & ~(KLE_LOOP_IN | KLE_LOOP_OUT)))
        return kle_error_set(KLE_EINVAL, "kle_loop_watch_fd: invalid arguments (fd %d)", fd);
    if (!loop->real)
        return kle_error_set(KLE_ESTATE, "kle_loop_watch_fd: a loop on a clock other than the "
                                         "real one has no descriptors");
    if ((size_t)fd >= loop->nfds) {
        if (!events)
            return 0;
        size_t n = loop->nfds ? loop->nfds : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct fd_reg *t = realloc(loop->fds, n * sizeof(*t));
        if (!t)
            return kle_error_set(KLE_ENOMEM, "kle_loop_watch_fd: out of memory");
        memset(t + loop->nfds, 0, (n - loop->nfds) * sizeof(*t));
        loop->fds = t;
        loop->nfds = n;
    }
    struct fd_reg *r = &loop->fds[fd];
    if (!events) {
        if (r->gen) {
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL); /* a closed fd is gone already */
            memset(r, 0, sizeof(*r));
        }
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = ((events & KLE_LOOP_IN) ? EPOLLIN : 0) | ((events & KLE_LOOP_OUT) ? EPOLLOUT : 0);
    uint32_t gen = r->gen;
    int op = EPOLL_CTL_MOD;
    if (!gen) {
        if (++loop->gen == 0)
            ++loop->gen;
        gen = loop->gen;
        op = EPOLL_CTL_ADD;
    }
    ev.data.u64 = (uint64_t)(uint32_t)fd | (uint64_t)gen << 32;
    int rc = epoll_ctl(loop->epfd, op, fd, &ev);
    /* The descriptor was closed and its number reused without a removal
     * (ADD: EEXIST), or the set lost it when it was closed (MOD: ENOENT). */
    if (rc < 0 && op == EPOLL_CTL_ADD && errno == EEXIST)
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
    else if (rc < 0 && op == EPOLL_CTL_MOD && errno == ENOENT)
        rc = epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0) {
        int err = errno;
        if (op == EPOLL_CTL_ADD)
            memset(r, 0, sizeof(*r));
        return kle_error_set(KLE_ESYSTEM, "kle_loop_watch_fd: epoll_ctl(%d): %s", fd,
                             strerror(err));
    }
    r->fn = fn;
    r->data = data;
    r->events = events;
    r->gen = gen;
    return 0;
}

/* ---- dispatch ------------------------------------------------------------- */

static int dispatch_real(kle_loop *loop, int64_t timeout_ns)
{
    int64_t now = kle_clock_monotonic_ns(loop->clock);
    int busy = atomic_load(&loop->posted) > 0 || (loop->nheap && loop->heap[0]->at_ns <= now);
    arm_timerfd(loop);
    int ms;
    if (busy || timeout_ns == 0 || loop->armed_at == INT64_MIN)
        ms = 0;
    else if (timeout_ns < 0)
        ms = -1;
    else {
        int64_t m = timeout_ns / KLE_NS_PER_MS + (timeout_ns % KLE_NS_PER_MS != 0);
        ms = m > INT32_MAX ? INT32_MAX : (int)m;
    }
    struct epoll_event evs[BATCH];
    int n = epoll_wait(loop->epfd, evs, BATCH, ms);
    if (n < 0 && errno != EINTR)
        return kle_error_set(KLE_ESYSTEM, "kle_loop_dispatch: epoll_wait: %s", strerror(errno));
    int ran = 0;
    for (int i = 0; i < n; i++) {
        uint64_t tag = evs[i].data.u64;
        uint64_t v;
        if (tag == TAG_TIMER) {
            while (read(loop->tfd, &v, sizeof(v)) > 0) {
            }
            loop->armed_at = INT64_MAX; /* it expired: the kernel disarmed it */
            continue;
        }
        if (tag == TAG_WAKE) {
            while (read(loop->efd, &v, sizeof(v)) > 0) {
            }
            continue;
        }
        int fd = (int)(uint32_t)tag;
        uint32_t gen = (uint32_t)(tag >> 32);
        if ((size_t)fd >= loop->nfds || loop->fds[fd].gen != gen)
            continue; /* removed by an earlier handler of this batch */
        struct fd_reg *r = &loop->fds[fd];
        unsigned got = ((evs[i].events & EPOLLIN) ? KLE_LOOP_IN : 0) |
                       ((evs[i].events & EPOLLOUT) ? KLE_LOOP_OUT : 0) |
                       ((evs[i].events & (EPOLLERR | EPOLLHUP)) ? KLE_LOOP_ERR : 0);
        r->fn(loop, fd, got, r->data);
        ran++;
    }
    ran += run_posts(loop);
    ran += run_timers(loop, kle_clock_monotonic_ns(loop->clock));
    return ran;
}

static int dispatch_clock(kle_loop *loop, int64_t timeout_ns)
{
    int64_t now = kle_clock_monotonic_ns(loop->clock);
    int64_t next = loop->nheap ? loop->heap[0]->at_ns : INT64_MAX;
    int busy = atomic_load(&loop->posted) > 0 || next <= now;
    if (!busy && timeout_ns != 0) {
        int64_t deadline = next;
        if (timeout_ns > 0 && timeout_ns < deadline - now)
            deadline = now + timeout_ns;
        kle_clock_wait(loop->clock, loop->event, deadline);
    }
    /* Posts made from here on set the event again and run at the next dispatch. */
    kle_event_reset(loop->event);
    int ran = run_posts(loop);
    ran += run_timers(loop, kle_clock_monotonic_ns(loop->clock));
    return ran;
}

int kle_loop_dispatch(kle_loop *loop, int64_t timeout_ns)
{
    if (!loop)
        return kle_error_set(KLE_EINVAL, "kle_loop_dispatch: loop is NULL");
    return loop->real ? dispatch_real(loop, timeout_ns) : dispatch_clock(loop, timeout_ns);
}
