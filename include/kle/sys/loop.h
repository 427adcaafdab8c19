/**
 * @file kle/sys/loop.h
 * @brief Registering descriptors, timers and posted work on a kle_loop,
 * for people who write an asynchronous lock backend (kle/sys/lock.h,
 * version 3) and for libkle's own runtime.
 *
 * Every handler runs on the thread that calls kle_loop_dispatch(), one at
 * a time, and must not block. Registrations are owned by the caller (no
 * allocation per registration in steady state); a handler may add, change
 * or remove registrations, its own included.
 */
#ifndef KLE_SYS_LOOP_H
#define KLE_SYS_LOOP_H

#include "../loop.h"

KLE_BEGIN_DECLS

/** The descriptor is readable (kle_loop_watch_fd() events). */
#define KLE_LOOP_IN 1u
/** The descriptor is writable. */
#define KLE_LOOP_OUT 2u
/** The descriptor had an error or hang-up (reported, never asked for). */
#define KLE_LOOP_ERR 4u

/** Called when a watched descriptor is ready (@p events: KLE_LOOP_IN|OUT|ERR). */
typedef void (*kle_loop_fd_fn)(kle_loop *loop, int fd, unsigned events, void *data);

/**
 * Watches @p fd for @p events (KLE_LOOP_IN and/or KLE_LOOP_OUT); calling it
 * again for the same @p fd changes the events and handler, and @p events 0
 * stops watching it. Only on a loop of the real clock.
 * @return 0; KLE_EINVAL; KLE_ESTATE on a loop of another clock;
 *   KLE_ESYSTEM (epoll_ctl failed); KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_loop_watch_fd(kle_loop *loop, int fd, unsigned events, kle_loop_fd_fn fn, void *data);

/** A timer, owned and kept by its user; zero it (or KLE_LOOP_TIMER_INIT) before first use. */
typedef struct kle_loop_timer kle_loop_timer;

/** Called when a timer is due. */
typedef void (*kle_loop_timer_fn)(kle_loop *loop, kle_loop_timer *timer, void *data);

/** A timer's members are the loop's; only zero them before first use. */
struct kle_loop_timer {
    int64_t at_ns;        /**< Due time (monotonic), while armed. */
    kle_loop_timer_fn fn; /**< Handler. */
    void *data;           /**< Handler data. */
    size_t slot;          /**< Position in the loop's timer heap + 1 (or a mark while a
                               dispatch runs it); 0 when not armed. */
    uint64_t seq;         /**< Arming order: timers due at the same time run in it. */
};

/** Initialiser of an unarmed timer. */
#define KLE_LOOP_TIMER_INIT                                                                        \
    {                                                                                              \
        0, NULL, NULL, 0, 0                                                                        \
    }

/**
 * Arms (or re-arms) @p timer to run @p fn(@p data) once at monotonic time
 * @p at_ns (in the past: at the next dispatch).
 * @return 0; KLE_EINVAL; KLE_ENOMEM when the heap had to grow and could not.
 */
KLE_EXTERN(int)
kle_loop_timer_arm(kle_loop *loop, kle_loop_timer *timer, int64_t at_ns, kle_loop_timer_fn fn,
                   void *data);

/** Disarms @p timer; nothing happens when it is not armed. */
KLE_EXTERN(void) kle_loop_timer_disarm(kle_loop *loop, kle_loop_timer *timer);

/** Work posted to a loop from any thread, owned by the poster until it runs. */
typedef struct kle_loop_post kle_loop_post;

/** Called on the loop's thread for posted work. */
typedef void (*kle_loop_post_fn)(kle_loop *loop, kle_loop_post *post, void *data);

/** A post's members are the loop's while it is queued. */
struct kle_loop_post {
    kle_loop_post *next; /**< Queue link. */
    kle_loop_post_fn fn; /**< Handler. */
    void *data;          /**< Handler data. */
    int queued;          /**< 1 while queued. */
};

/**
 * Queues @p post to run @p fn(@p data) on the loop's thread at its next
 * dispatch, and wakes the loop. Thread-safe; not async-signal-safe (use
 * kle_loop_wake() from a signal handler). Posting a post that is still
 * queued does nothing.
 * @return 0 or KLE_EINVAL.
 */
KLE_EXTERN(int)
kle_loop_post_work(kle_loop *loop, kle_loop_post *post, kle_loop_post_fn fn, void *data);

/**
 * Takes @p post out of the queue if it is still queued (it will not run),
 * so that its owner may free it. Thread-safe; must not race with a
 * kle_loop_post_work() of the same post.
 */
KLE_EXTERN(void) kle_loop_post_cancel(kle_loop *loop, kle_loop_post *post);

KLE_END_DECLS

#endif
