/**
 * @file kle/clock.h
 * @brief Clocks and events.
 *
 * libkle takes every expiry and deadline decision on a monotonic clock and
 * uses wall time only for the timestamps it writes into records. Both come
 * from a kle_clock, so that tests can replace real time with a fake clock
 * (kle/testing.h) and run hours of election in milliseconds.
 *
 * A kle_event is a one-shot, resettable flag that threads can wait for
 * through a clock, poll as a file descriptor, and set from any thread or
 * from a signal handler.
 */
#ifndef KLE_CLOCK_H
#define KLE_CLOCK_H

#include "common.h"

KLE_BEGIN_DECLS

/** A clock: monotonic and wall time, and waits (vtable in kle/sys/clock.h). */
typedef struct kle_clock kle_clock;
/** A one-shot, resettable flag with a pollable file descriptor (opaque). */
typedef struct kle_event kle_event;

/**
 * Returns the process-wide real clock: CLOCK_BOOTTIME for monotonic time
 * (it keeps counting while the machine is suspended, as other replicas'
 * clocks do, and is the same in every process of the machine) and
 * CLOCK_REALTIME for wall time. Its waits end at their absolute deadline
 * even when the process was frozen (SIGSTOP) in between. It is never freed;
 * kle_clock_free() on it does nothing.
 */
KLE_EXTERN(kle_clock *) kle_clock_real(void);

/** Monotonic time in nanoseconds (arbitrary origin). */
KLE_EXTERN(int64_t) kle_clock_monotonic_ns(kle_clock *clock);

/** Wall time in nanoseconds since the Unix epoch. */
KLE_EXTERN(int64_t) kle_clock_wall_ns(kle_clock *clock);

/**
 * Blocks until monotonic time reaches @p deadline_ns or @p event (may be
 * NULL) is set. Returns 0 when the event is set (also when it was already
 * set), KLE_ETIMEOUT when the deadline passed. INT64_MAX waits forever.
 */
KLE_EXTERN(int) kle_clock_wait(kle_clock *clock, kle_event *event, int64_t deadline_ns);

/** Sleeps @p ns of this clock's time; same as a wait with no event. */
KLE_EXTERN(void) kle_clock_sleep(kle_clock *clock, int64_t ns);

/** Frees a clock made by a constructor; NULL and the real clock are ignored. */
KLE_EXTERN(void) kle_clock_free(kle_clock *clock);

/**
 * Creates an unset event.
 * @return 0, KLE_ENOMEM, or KLE_ESYSTEM when no file descriptor is left.
 */
KLE_EXTERN(int) kle_event_new(kle_event **out);

/** Frees an event. Nobody may be waiting for it. NULL is ignored. */
KLE_EXTERN(void) kle_event_free(kle_event *event);

/**
 * Sets the event and wakes its waiters. Thread-safe; async-signal-safe when
 * the waiters use the real clock.
 */
KLE_EXTERN(void) kle_event_set(kle_event *event);

/** Returns 1 when the event is set, else 0. */
KLE_EXTERN(int) kle_event_is_set(const kle_event *event);

/** Clears the event. */
KLE_EXTERN(void) kle_event_reset(kle_event *event);

/**
 * A file descriptor that is readable (POLLIN) while the event is set, for
 * use in poll/epoll loops. Owned by the event; do not read or close it.
 */
KLE_EXTERN(int) kle_event_fd(const kle_event *event);

KLE_END_DECLS

#endif
