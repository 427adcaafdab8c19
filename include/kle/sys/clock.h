/**
 * @file kle/sys/clock.h
 * @brief The clock vtable, for people who write their own clock.
 *
 * A clock gives monotonic time (for every expiry and deadline decision),
 * wall time (only for timestamps written into records) and a wait that an
 * event can cut short. The real clock and the fake clock of kle/testing.h
 * are both built on this vtable.
 */
#ifndef KLE_SYS_CLOCK_H
#define KLE_SYS_CLOCK_H

#include "../clock.h"

KLE_BEGIN_DECLS

/** Version of struct kle_clock that this header describes. */
#define KLE_CLOCK_VERSION 1

/**
 * Static initialiser of a clock's vtable (C99 and later): the current
 * version, every member NULL; set monotonic_ns, wall_ns and wait. (In C++,
 * value-initialise the struct and set version to KLE_CLOCK_VERSION.)
 */
#define KLE_CLOCK_INIT                                                                             \
    {                                                                                              \
        .version = KLE_CLOCK_VERSION                                                               \
    }

/**
 * The clock vtable. Required: monotonic_ns, wall_ns, wait. The thread_*
 * members let a deterministic clock know which threads take part in a
 * simulation; libkle calls them around every thread it starts (NULL: none).
 */
struct kle_clock {
    /** KLE_CLOCK_VERSION. */
    unsigned int version;
    /** Monotonic time in nanoseconds, for every deadline and expiry. */
    int64_t (*monotonic_ns)(kle_clock *self);
    /** Wall time in nanoseconds since the Unix epoch, for record timestamps. */
    int64_t (*wall_ns)(kle_clock *self);
    /** As kle_clock_wait(). */
    int (*wait)(kle_clock *self, kle_event *event, int64_t deadline_ns);
    /** Called by kle_event_set() for events this clock waits for (may be NULL). */
    void (*notify)(kle_clock *self, kle_event *event);
    /** Called by the thread that is about to create a thread; returns a token. */
    void *(*thread_register)(kle_clock *self);
    /** Called first thing by the new thread with the token. */
    void (*thread_attach)(kle_clock *self, void *token);
    /** Called last thing by the new thread. */
    void (*thread_detach)(kle_clock *self, void *token);
    /** Frees the clock (may be NULL for static clocks). */
    void (*free)(kle_clock *self);
};

/**
 * Makes kle_event_set() on @p event call @p clock's notify member. A clock
 * whose waits do not poll the event's file descriptor calls this before it
 * starts waiting.
 */
KLE_EXTERN(void) kle_event_watch(kle_event *event, kle_clock *clock);

KLE_END_DECLS

#endif
