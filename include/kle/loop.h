/**
 * @file kle/loop.h
 * @brief An event loop that drives lock calls without a thread of their own.
 *
 * A kle_loop runs what is ready: answers of asynchronous lock calls (the
 * built-in Kubernetes locks), watch events, timers, and work posted from
 * other threads. It never blocks in a lock call. kle_elector_run() makes
 * and drives one on the calling thread; a program with an event loop of its
 * own (poll, epoll, libuv, ...) drives one with kle_loop_fd() and
 * kle_loop_dispatch(), as libcurl's multi_socket or c-ares are driven.
 *
 * With the real clock the loop is an epoll set: its timers are one
 * CLOCK_BOOTTIME timerfd armed at an absolute time, so a process frozen by
 * SIGSTOP or a suspended machine ends its waits at their deadline, not
 * later. With another clock (the fake clock of kle/testing.h) it has no
 * descriptor and waits on that clock.
 */
#ifndef KLE_LOOP_H
#define KLE_LOOP_H

#include "clock.h"

KLE_BEGIN_DECLS

/** An event loop (opaque). */
typedef struct kle_loop kle_loop;

/**
 * Creates a loop on @p clock (borrowed; NULL: the real clock).
 * @return 0; KLE_EINVAL; KLE_ENOMEM; KLE_ESYSTEM when no descriptor is left.
 */
KLE_EXTERN(int) kle_loop_new(kle_loop **out, kle_clock *clock);

/**
 * Frees the loop. Nothing may still be registered on it (detach the locks
 * that use it first). NULL is ignored.
 */
KLE_EXTERN(void) kle_loop_free(kle_loop *loop);

/** The loop's clock (borrowed). */
KLE_EXTERN(kle_clock *) kle_loop_clock(kle_loop *loop);

/**
 * A descriptor that is readable (POLLIN) whenever kle_loop_dispatch() has
 * something to run; -1 for a loop on a clock other than the real one. Owned
 * by the loop: do not read or close it.
 */
KLE_EXTERN(int) kle_loop_fd(const kle_loop *loop);

/**
 * Runs everything that is ready, after waiting at most @p timeout_ns for
 * something to be (0: do not wait; negative: until something is). Call it
 * from one thread at a time.
 * @return the number of handlers run (0 when the wait ended without any);
 *   KLE_ESYSTEM when waiting failed.
 */
KLE_EXTERN(int) kle_loop_dispatch(kle_loop *loop, int64_t timeout_ns);

/**
 * The monotonic time of the loop's next timer (INT64_MAX: none), for
 * callers that compute their own poll timeout; with kle_loop_fd() in the
 * poll set it is not needed.
 */
KLE_EXTERN(int64_t) kle_loop_next_timer_ns(kle_loop *loop);

/**
 * Makes a kle_loop_dispatch() that is waiting return. Safe from any thread
 * and, with the real clock, from a signal handler.
 */
KLE_EXTERN(void) kle_loop_wake(kle_loop *loop);

KLE_END_DECLS

#endif
