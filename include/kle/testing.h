/**
 * @file kle/testing.h
 * @brief A fake clock and fake locks, for unit-testing leadership code.
 *
 * With these, a test runs real electors (kle_elector_run and all its
 * threads) against an in-memory lock object on virtual time: minutes of
 * election take milliseconds, and runs are deterministic.
 *
 * These functions are in libkle-testing, not libkle: link with pkg-config
 * `kle-testing` or CMake `kle::testing`.
 *
 * **Fake clock.** Virtual monotonic and wall time. In manual mode time moves
 * only when the test calls kle_fake_clock_advance(). In auto mode the clock
 * is also a cooperative scheduler: the threads that take part (the ones made
 * with kle_fake_clock_spawn() or that called kle_fake_clock_join(), and the
 * callback threads an elector starts) run one at a time, and when every one
 * of them is waiting on the clock, time jumps to the earliest deadline.
 * Ties are broken in a fixed order, so a seeded simulation replays exactly.
 * A participant must not block on anything but the clock (kle_clock_wait,
 * kle_leading_wait, …) for long, or time stands still.
 *
 * **Fake locks.** A kle_fake_store is one in-memory lock object with a
 * resourceVersion; any number of fake locks (one per elector, each with its
 * identity) share it, so electors contend as they would on a Lease. A fake
 * lock returns KLE_ENOTFOUND before the object exists, KLE_EEXISTS on a
 * second create and KLE_ECONFLICT on an update whose resourceVersion is
 * stale. Each lock counts its calls and can be scripted to fail its next N
 * calls of a method with a given error, or to make them take virtual time.
 *
 * **Fake watch.** After kle_fake_lock_set_watch(), a fake lock can watch
 * the store (kle_lock_watch()): every write to the store is delivered as an
 * event, in order, on the watching thread, and scripted faults delay, drop,
 * duplicate or re-deliver (stale) events, expire the stream's
 * resourceVersion (410 Gone: a re-list), end the stream or silence it (a
 * black hole), all on the fake clock.
 */
#ifndef KLE_TESTING_H
#define KLE_TESTING_H

#include <pthread.h>

#include "clock.h"
#include "lock.h"

KLE_BEGIN_DECLS

/* ---- Fake clock --------------------------------------------------------- */

/** Options of a fake clock. */
typedef struct kle_fake_clock_opts {
    /** KLE_FAKE_CLOCK_OPTS_VERSION. */
    unsigned int version;
    int64_t start_wall_ns; /**< Wall time at creation (default 2026-11-21T10:00:00Z). */
    int auto_advance;      /**< 1: jump to the next deadline when all participants wait. */
} kle_fake_clock_opts;

/** Version of kle_fake_clock_opts this header describes. */
#define KLE_FAKE_CLOCK_OPTS_VERSION 1
/** Initialiser: wall time 2026-11-21T10:00:00Z, manual mode. */
#define KLE_FAKE_CLOCK_OPTS_INIT                                                                   \
    {                                                                                              \
        KLE_FAKE_CLOCK_OPTS_VERSION, INT64_C(1795255200) * KLE_NS_PER_SEC, 0                       \
    }

/**
 * Sets @p ptr to KLE_FAKE_CLOCK_OPTS_INIT at @p version (1 to KLE_FAKE_CLOCK_OPTS_VERSION), for
 * callers that cannot use the macro (language bindings).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_fake_clock_opts_init(kle_fake_clock_opts *ptr, unsigned int version);

/**
 * Creates a fake clock; free it with kle_clock_free() once no thread uses it.
 * @param out receives the clock.
 * @param opts NULL for the defaults.
 * @return 0, KLE_ENOMEM or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_fake_clock_new(kle_clock **out, const kle_fake_clock_opts *opts);

/** Returns 1 when @p clock is a fake clock. */
KLE_EXTERN(int) kle_fake_clock_is_fake(kle_clock *clock);

/**
 * Moves virtual time forward by @p ns and wakes the waits that are due.
 * @return 0, or KLE_EINVAL if @p clock is not fake or @p ns is negative.
 */
KLE_EXTERN(int) kle_fake_clock_advance(kle_clock *clock, int64_t ns);

/**
 * Steps wall time alone by @p delta_ns (negative: back), as an NTP step or
 * an operator's `date -s` does; monotonic time and every wait are
 * unaffected. Wall time only ever reaches the timestamps written into
 * records.
 * @return 0, or KLE_EINVAL if @p clock is not fake or the step overflows.
 */
KLE_EXTERN(int) kle_fake_clock_step_wall(kle_clock *clock, int64_t delta_ns);

/** Number of threads currently blocked in a wait on this clock. */
KLE_EXTERN(int) kle_fake_clock_waiters(kle_clock *clock);

/**
 * Blocks (in real time, at most @p real_timeout_ns nanoseconds) until at least @p n
 * threads wait on the clock. For manual-mode tests that must know an
 * elector is idle before they advance time.
 * @return 0 or KLE_ETIMEOUT.
 */
KLE_EXTERN(int) kle_fake_clock_await_waiters_ns(kle_clock *clock, int n, int64_t real_timeout_ns);

/**
 * Makes the calling thread a participant of an auto-advancing clock; it
 * returns when it is this thread's turn. Pair with kle_fake_clock_leave().
 */
KLE_EXTERN(int) kle_fake_clock_join(kle_clock *clock);

/** Ends the calling thread's participation and passes the turn on. */
KLE_EXTERN(void) kle_fake_clock_leave(kle_clock *clock);

/**
 * Starts a participant thread running @p fn(@p arg); its turn order is fixed
 * at this call, so spawning is deterministic. Spawn from a participant (call
 * kle_fake_clock_join() first): otherwise time may move on between two
 * spawns. Join it with pthread_join() but not while holding the turn: leave
 * the clock first, or wait for an event the thread sets on its way out.
 * @return 0 or KLE_ESYSTEM.
 */
KLE_EXTERN(int)
kle_fake_clock_spawn(pthread_t *out, kle_clock *clock, void *(*fn)(void *), void *arg);

/**
 * Installs a hook that the running participant calls each time it is about
 * to give up its turn and each time it gets one: the instants at which the
 * state of a simulation can change. The hook may read the clock and query
 * electors, and must not wait. NULL removes it.
 */
KLE_EXTERN(void)
kle_fake_clock_set_step_hook(kle_clock *clock, void (*fn)(kle_clock *clock, void *data),
                             void *data);

/* ---- Fake locks --------------------------------------------------------- */

/** One in-memory lock object shared by fake locks (opaque). */
typedef struct kle_fake_store kle_fake_store;

/** The lock methods, for scripting and counting. */
typedef enum kle_fake_method {
    KLE_FAKE_GET = 0,
    KLE_FAKE_CREATE = 1,
    KLE_FAKE_UPDATE = 2,
    KLE_FAKE_RECORD_EVENT = 3,
    /**
     * Watch: kle_fake_lock_fail_next() fails the next watch calls at once;
     * kle_fake_lock_delay_next() delays the next events delivered (and the
     * ones behind them, as a slow stream would); kle_fake_lock_calls()
     * counts watch calls.
     */
    KLE_FAKE_WATCH = 4
} kle_fake_method;

/**
 * Creates an empty in-memory lock object. @p clock (borrowed, NULL for the
 * real clock) times scripted delays. The store is reference-counted: each
 * fake lock holds a reference, and kle_fake_store_free() drops the caller's.
 * @return 0 or KLE_ENOMEM.
 */
KLE_EXTERN(int) kle_fake_store_new(kle_fake_store **out, kle_clock *clock);

/** Drops the caller's reference. NULL is ignored. */
KLE_EXTERN(void) kle_fake_store_free(kle_fake_store *store);

/**
 * Copies the stored record into @p out (for assertions), whose version the
 * caller set (KLE_RECORD_INIT).
 * @return 0; KLE_EINVAL; KLE_EVERSION for an unset or unknown record
 *         version; KLE_ENOTFOUND when nothing was created yet; KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_fake_store_peek(kle_record *out, uint64_t *out_resource_version, kle_fake_store *store);

/**
 * Writes @p record into the store as if another client had (creating the
 * object if needed and bumping the resourceVersion). NULL deletes the object.
 */
KLE_EXTERN(int) kle_fake_store_put(kle_fake_store *store, const kle_record *record);

/**
 * Loses the store's state, as an API server restored without its data:
 * the object is gone (watches see a deletion, at resourceVersion
 * @p next_rv - 1) and resourceVersions start again: the next write gets
 * @p next_rv, which may be one the store gave before.
 * @return 0, or KLE_EINVAL if @p store is NULL or @p next_rv is 0.
 */
KLE_EXTERN(int) kle_fake_store_lose_state(kle_fake_store *store, uint64_t next_rv);

/**
 * Makes the fake locks' writes keep times at whole seconds (@p on 1), as
 * annotation records (ConfigMap, Endpoints) carry them, so that two writes
 * within one second leave the same bytes; 0: microseconds, as a Lease
 * (the default).
 * @return 0, or KLE_EINVAL if @p store is NULL.
 */
KLE_EXTERN(int) kle_fake_store_set_whole_seconds(kle_fake_store *store, int on);

/** Number of successful writes (creates and updates) the store has taken. */
KLE_EXTERN(uint64_t) kle_fake_store_writes(kle_fake_store *store);

/**
 * Creates a fake lock on @p store that writes as @p identity and describes
 * itself as @p description (NULL: "fake/lock"). Like the real locks, it
 * refuses an identity kle_identity_check() refuses, and its create and
 * update refuse a record outside kle_record_validate()'s ranges
 * (KLE_EINVAL). kle_fake_store_put() takes any record, so tests can script
 * what other writers might leave (strings with NUL bytes included: set them
 * with kle_record_set_holder()).
 * @return 0, KLE_EINVAL or KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_fake_lock_new(kle_lock **out, kle_fake_store *store, const char *identity,
                  const char *description);

/**
 * Makes the next @p count calls of @p method fail with @p error (a negative
 * code) without touching the store. Adds to what is already scripted.
 */
KLE_EXTERN(void)
kle_fake_lock_fail_next(kle_lock *lock, kle_fake_method method, int count, int error);

/**
 * Makes the next @p count calls of @p method take @p delay_ns of clock
 * time. A write is applied at once and only its answer is late, as with a
 * slow server; when the call's timeout comes first it returns KLE_ETIMEOUT
 * although the write took effect.
 */
KLE_EXTERN(void)
kle_fake_lock_delay_next(kle_lock *lock, kle_fake_method method, int count, int64_t delay_ns);

/**
 * Makes the next @p count calls of @p method take @p stall_ns of clock time
 * whatever their timeout and cancel event say, and then succeed: the
 * calling thread is stuck, as one frozen by SIGSTOP, descheduled, or
 * blocked on a full pipe would be. A write is applied at once. This is the
 * fault that the elector's leadership guard exists for: leadership must
 * still end at its deadline while the call is stuck.
 */
KLE_EXTERN(void)
kle_fake_lock_stall_next(kle_lock *lock, kle_fake_method method, int count, int64_t stall_ns);

/** Clears everything scripted on the lock, watch faults to come included. */
KLE_EXTERN(void) kle_fake_lock_clear_script(kle_lock *lock);

/** Number of calls of @p method made on this lock, failed ones included. */
KLE_EXTERN(unsigned int) kle_fake_lock_calls(kle_lock *lock, kle_fake_method method);

/**
 * Copies the message of the last event recorded through this lock into
 * @p buf ("" when none); returns the number of events recorded.
 */
KLE_EXTERN(unsigned int) kle_fake_lock_last_event(kle_lock *lock, char *buf, size_t size);

/**
 * Gives a fake lock a watch member (@p on 1) or takes it away (0: the
 * elector polls it). Set it before the lock is handed to an elector. One
 * watch at a time per lock.
 * @return 0, or KLE_EINVAL if @p lock is not a fake lock.
 */
KLE_EXTERN(int) kle_fake_lock_set_watch(kle_lock *lock, int on);

/** Faults of a fake lock's watch (kle_fake_lock_watch_fault()). */
typedef enum kle_fake_watch_fault {
    /** The next count events are lost. */
    KLE_FAKE_WATCH_DROP = 0,
    /** The next count events are delivered twice. */
    KLE_FAKE_WATCH_DUPLICATE = 1,
    /** Each of the next count events is followed by the version before it again (stale). */
    KLE_FAKE_WATCH_STALE = 2,
    /**
     * At each of the next count events the stream's resourceVersion is too
     * old (410 Gone): the events still queued are lost, and the watch
     * re-lists, delivering the current state as a listed event.
     */
    KLE_FAKE_WATCH_GONE = 3,
    /** The open stream ends now, and the watch returns KLE_ETRANSPORT (count ignored). */
    KLE_FAKE_WATCH_END = 4,
    /** The open stream stays open but delivers nothing more: a black hole (count ignored). */
    KLE_FAKE_WATCH_SILENCE = 5
} kle_fake_watch_fault;

/** Scripts a fault on the watch of @p lock (see kle_fake_watch_fault). */
KLE_EXTERN(void)
kle_fake_lock_watch_fault(kle_lock *lock, kle_fake_watch_fault fault, int count);

/** Returns 1 while a watch of @p lock is open, else 0. */
KLE_EXTERN(int) kle_fake_lock_watching(kle_lock *lock);

/**
 * Delivers a BOOKMARK (the current resourceVersion, no change) to every
 * open watch of the store that is not silenced.
 * @return 0.
 */
KLE_EXTERN(int) kle_fake_store_bookmark(kle_fake_store *store);

/** Returns 1 when @p lock is a fake lock. */
KLE_EXTERN(int) kle_fake_lock_is_fake(kle_lock *lock);

KLE_END_DECLS

#endif
