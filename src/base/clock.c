#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "base/clock_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

struct kle_event {
    atomic_int set;
    int fd;
    _Atomic(kle_clock *) watcher;
    /* A deadline event (kle_event__new_deadline) on the real clock: fd is a
     * CLOCK_BOOTTIME timerfd armed at `deadline`, so the kernel makes it
     * readable at the deadline whatever any thread is doing. */
    int timer;
    _Atomic int64_t deadline;
};

static int64_t real_monotonic_ns(kle_clock *self);

int kle_event_new(kle_event **out)
{
    kle_event *ev;

    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_event_new: out is NULL");
    *out = NULL;
    ev = calloc(1, sizeof(*ev));
    if (!ev)
        return kle_error_set(KLE_ENOMEM, "kle_event_new: out of memory");
    ev->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev->fd < 0) {
        int err = errno;
        free(ev);
        return kle_error_set(KLE_ESYSTEM, "kle_event_new: eventfd: %s", strerror(err));
    }
    atomic_init(&ev->set, 0);
    atomic_init(&ev->watcher, NULL);
    atomic_init(&ev->deadline, INT64_MAX);
    *out = ev;
    return 0;
}

static int arm_timer(int fd, int64_t at)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (at < 1)
        at = 1; /* zero would disarm it; 1 ns is long past */
    its.it_value.tv_sec = (time_t)(at / KLE_NS_PER_SEC);
    its.it_value.tv_nsec = (long)(at % KLE_NS_PER_SEC);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL);
}

int kle_event__new_deadline(kle_event **out, kle_clock *clock)
{
    if (clock && clock != kle_clock_real())
        return kle_event_new(out);
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_event__new_deadline: out is NULL");
    *out = NULL;
    kle_event *ev = calloc(1, sizeof(*ev));
    if (!ev)
        return kle_error_set(KLE_ENOMEM, "kle_event__new_deadline: out of memory");
    ev->fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ev->fd < 0) {
        int err = errno;
        free(ev);
        return kle_error_set(KLE_ESYSTEM, "kle_event__new_deadline: timerfd: %s", strerror(err));
    }
    ev->timer = 1;
    atomic_init(&ev->set, 0);
    atomic_init(&ev->watcher, NULL);
    atomic_init(&ev->deadline, INT64_MAX);
    *out = ev;
    return 0;
}

int kle_event__arm_deadline(kle_event *event, int64_t deadline)
{
    if (!event || !event->timer || atomic_load(&event->set))
        return 0;
    /* A deadline only moves later while the event is not set; should it
     * pass between the check and the re-arm, the timer fired at the old
     * deadline (a reader saw the end early: the safe side). */
    if (real_monotonic_ns(NULL) >= atomic_load(&event->deadline)) {
        kle_event_set(event);
        return KLE_ETIMEOUT;
    }
    atomic_store(&event->deadline, deadline);
    if (arm_timer(event->fd, deadline) < 0) {
        kle_event_set(event); /* Cannot guard it: end it now. */
        return KLE_ESYSTEM;
    }
    return 0;
}

void kle_event_free(kle_event *event)
{
    if (!event)
        return;
    close(event->fd);
    free(event);
}

static void event_signal_fd(kle_event *event)
{
    uint64_t one = 1;
    ssize_t n;

    do {
        n = write(event->fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already non-zero: still readable. */
}

/* Async-signal-safe for real-clock waiters: an atomic store and write(2). */
void kle_event_set(kle_event *event)
{
    if (!event)
        return;
    if (atomic_exchange(&event->set, 1) == 0) {
        if (event->timer)
            arm_timer(event->fd, 1); /* Readable now, and for good. */
        else
            event_signal_fd(event);
    }
    kle_clock *watcher = atomic_load(&event->watcher);
    if (watcher && watcher->notify)
        watcher->notify(watcher, event);
}

int kle_event_is_set(const kle_event *event)
{
    if (!event)
        return 0;
    kle_event *ev = (kle_event *)event;
    if (atomic_load(&ev->set))
        return 1;
    return ev->timer && real_monotonic_ns(NULL) >= atomic_load(&ev->deadline);
}

void kle_event_reset(kle_event *event)
{
    uint64_t value;

    if (!event || event->timer)
        return; /* A deadline event stays set for good. */
    atomic_store(&event->set, 0);
    while (read(event->fd, &value, sizeof(value)) > 0) {
    }
    /* A set() that raced with the drain above must stay visible on the fd. */
    if (atomic_load(&event->set))
        event_signal_fd(event);
}

int kle_event_fd(const kle_event *event)
{
    return event ? event->fd : -1;
}

void kle_event_watch(kle_event *event, kle_clock *clock)
{
    if (event)
        atomic_store(&event->watcher, clock);
}

/*
 * The real clock. Monotonic time is CLOCK_BOOTTIME: it keeps counting while
 * the machine is suspended, as the other replicas' clocks do, and every
 * process on the machine reads the same value, so a deadline can be handed
 * to another process (the kle run supervisor). Waits are absolute: a
 * thread-local timerfd armed with TFD_TIMER_ABSTIME, so a wait that is
 * frozen (SIGSTOP) and thawed ends at its deadline, not later, as a
 * restarted relative timeout would.
 */

static int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * KLE_NS_PER_SEC + ts->tv_nsec;
}

static int64_t real_monotonic_ns(kle_clock *self)
{
    struct timespec ts;
    (void)self;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return timespec_ns(&ts);
}

static int64_t real_wall_ns(kle_clock *self)
{
    struct timespec ts;
    (void)self;
    clock_gettime(CLOCK_REALTIME, &ts);
    return timespec_ns(&ts);
}

static pthread_key_t timer_key;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

static void timer_close(void *p)
{
    close((int)(intptr_t)p - 1);
}

static void timer_key_make(void)
{
    if (pthread_key_create(&timer_key, timer_close) != 0)
        timer_key = (pthread_key_t)-1;
}

/* This thread's absolute-deadline timer, or -1 when none can be had. */
static int thread_timer(void)
{
    pthread_once(&timer_once, timer_key_make);
    if (timer_key == (pthread_key_t)-1)
        return -1;
    intptr_t v = (intptr_t)pthread_getspecific(timer_key);
    if (v > 0)
        return (int)v - 1;
    int fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (pthread_setspecific(timer_key, (void *)(intptr_t)(fd + 1)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * Without a timer (no descriptor left) waits are cut into slices of at most
 * this much, so a freeze can delay the end of a wait by no more than one slice.
 */
#define WAIT_SLICE_NS (10 * KLE_NS_PER_MS)

static int real_wait(kle_clock *self, kle_event *event, int64_t deadline_ns)
{
    int timer = deadline_ns != INT64_MAX ? thread_timer() : -1;
    if (timer >= 0) {
        struct itimerspec its;
        memset(&its, 0, sizeof(its));
        its.it_value.tv_sec = (time_t)(deadline_ns / KLE_NS_PER_SEC);
        its.it_value.tv_nsec = (long)(deadline_ns % KLE_NS_PER_SEC);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
            its.it_value.tv_nsec = 1; /* zero would disarm it */
        if (timerfd_settime(timer, TFD_TIMER_ABSTIME, &its, NULL) < 0)
            timer = -1;
    }
    for (;;) {
        if (event && kle_event_is_set(event))
            return 0;
        int64_t now = real_monotonic_ns(self);
        if (deadline_ns != INT64_MAX && now >= deadline_ns)
            return KLE_ETIMEOUT;
        struct pollfd pfd[2];
        nfds_t n = 0;
        if (event)
            pfd[n++] = (struct pollfd){.fd = event->fd, .events = POLLIN};
        if (timer >= 0)
            pfd[n++] = (struct pollfd){.fd = timer, .events = POLLIN};
        struct timespec rel, *relp = NULL;
        if (deadline_ns != INT64_MAX && timer < 0) {
            int64_t left = deadline_ns - now;
            if (left > WAIT_SLICE_NS)
                left = WAIT_SLICE_NS;
            rel.tv_sec = (time_t)(left / KLE_NS_PER_SEC);
            rel.tv_nsec = (long)(left % KLE_NS_PER_SEC);
            relp = &rel;
        }
        int rc = ppoll(n ? pfd : NULL, n, relp, NULL);
        if (rc > 0 && event && (pfd[0].revents & POLLIN) && !kle_event_is_set(event)) {
            /* Readable but not set: a reset is draining the fd right now. */
            struct timespec nap = {0, 1000000};
            nanosleep(&nap, NULL);
        }
    }
}

static kle_clock real_clock = {
    KLE_CLOCK_VERSION, real_monotonic_ns, real_wall_ns, real_wait, NULL, NULL, NULL, NULL, NULL,
};

kle_clock *kle_clock_real(void)
{
    return &real_clock;
}

int64_t kle_clock_monotonic_ns(kle_clock *clock)
{
    clock = clock ? clock : &real_clock;
    return clock->monotonic_ns(clock);
}

int64_t kle_clock_wall_ns(kle_clock *clock)
{
    clock = clock ? clock : &real_clock;
    return clock->wall_ns(clock);
}

int kle_clock_wait(kle_clock *clock, kle_event *event, int64_t deadline_ns)
{
    clock = clock ? clock : &real_clock;
    return clock->wait(clock, event, deadline_ns);
}

void kle_clock_sleep(kle_clock *clock, int64_t ns)
{
    clock = clock ? clock : &real_clock;
    int64_t now = clock->monotonic_ns(clock);
    int64_t deadline = ns >= INT64_MAX - now ? INT64_MAX : now + ns;
    clock->wait(clock, NULL, deadline);
}

void kle_clock_free(kle_clock *clock)
{
    if (clock && clock != &real_clock && clock->free)
        clock->free(clock);
}
