#include "kle/sys/clock.h"
#include "kle/sys/errors.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct kle_event {
    atomic_int set;
    int fd;
    _Atomic(kle_clock *) watcher;
};

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
    *out = ev;
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
    if (atomic_exchange(&event->set, 1) == 0)
        event_signal_fd(event);
    kle_clock *watcher = atomic_load(&event->watcher);
    if (watcher && watcher->notify)
        watcher->notify(watcher, event);
}

int kle_event_is_set(const kle_event *event)
{
    return event && atomic_load(&((kle_event *)event)->set) != 0;
}

void kle_event_reset(kle_event *event)
{
    uint64_t value;

    if (!event)
        return;
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

/* The real clock. */

static int64_t timespec_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * KLE_NS_PER_SEC + ts->tv_nsec;
}

static int64_t real_monotonic_ns(kle_clock *self)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return timespec_ns(&ts);
}

static int64_t real_wall_ns(kle_clock *self)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return timespec_ns(&ts);
}

static int real_wait(kle_clock *self, kle_event *event, int64_t deadline_ns)
{
    for (;;) {
        if (event && kle_event_is_set(event))
            return 0;
        int64_t now = real_monotonic_ns(self);
        if (deadline_ns != INT64_MAX && now >= deadline_ns)
            return KLE_ETIMEOUT;
        struct timespec rel, *relp = NULL;
        if (deadline_ns != INT64_MAX) {
            int64_t left = deadline_ns - now;
            rel.tv_sec = (time_t)(left / KLE_NS_PER_SEC);
            rel.tv_nsec = (long)(left % KLE_NS_PER_SEC);
            relp = &rel;
        }
        if (event) {
            struct pollfd pfd = {.fd = event->fd, .events = POLLIN};
            int rc = ppoll(&pfd, 1, relp, NULL);
            if (rc > 0 && !kle_event_is_set(event)) {
                /* Readable but not set: a reset is draining the fd right now. */
                struct timespec nap = {0, 1000000};
                nanosleep(&nap, NULL);
            }
        } else if (relp) {
            struct timespec abs = {(time_t)(deadline_ns / KLE_NS_PER_SEC),
                                   (long)(deadline_ns % KLE_NS_PER_SEC)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
        } else {
            pause();
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
