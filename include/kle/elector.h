/**
 * @file kle/elector.h
 * @brief The leader elector: client-go's LeaderElector in C.
 *
 * An elector campaigns for a lock (kle/lock.h) and, once it leads, renews
 * it until it is stopped or a renewal does not succeed in time:
 *
 * - acquire: try (tryAcquireOrRenew), then wait RetryPeriod plus up to
 *   1.2 × RetryPeriod of jitter, until it succeeds or is stopped;
 * - lead: on_started_leading runs on its own thread with a kle_leading
 *   handle; every RetryPeriod the elector renews, retrying every
 *   RetryPeriod, and gives up when RenewDeadline has passed since the last
 *   successful renewal was sent; giving up ends leadership;
 * - end: the handle is signalled, on_started_leading must return, then
 *   (with release_on_cancel) the lease is released, and on_stopped_leading
 *   runs. on_stopped_leading runs exactly once per kle_elector_run() call,
 *   whether or not the elector ever led.
 *
 * Safety rules beyond client-go: leadership ends renew_deadline after the
 * last successful write was *sent* (client-go gives up renew_deadline after
 * the failing round began, one retry period later), so the leader's work has
 * the whole lease_duration - renew_deadline to stop before anyone else may
 * lead; every lock call is bounded by the time left, so an in-flight renewal
 * can never extend leadership; and the lease is released only after
 * on_started_leading has returned. While on_started_leading is still running
 * after a stop, the elector keeps renewing, so its work stays covered.
 */
#ifndef KLE_ELECTOR_H
#define KLE_ELECTOR_H

#include "clock.h"
#include "lock.h"

KLE_BEGIN_DECLS

/** How a follower learns of changes to the lock (kle_elector_config.follow). */
typedef enum kle_follow_mode {
    /**
     * Watch the lock object (the default): takeover attempts at the observed
     * expiry, at once on a release; polls while no healthy stream exists, or
     * when the lock or the server cannot watch.
     */
    KLE_FOLLOW_WATCH = 0,
    /** Poll every retry period plus jitter, as client-go does. */
    KLE_FOLLOW_POLL = 1
} kle_follow_mode;

/** A leader elector (opaque): one candidate campaigning for one lock. */
typedef struct kle_elector kle_elector;

/**
 * Handed to on_started_leading; tells when leadership ends. It is
 * reference-counted: valid until on_started_leading returns, or, when the
 * callback took a reference with kle_leading_ref(), until the matching
 * kle_leading_unref() (even after the elector is freed). Once its term has
 * ended a handle stays over for good: kle_leading_is_over() returns 1,
 * kle_leading_wait_ns() returns 0 at once, kle_leading_fd() stays readable,
 * kle_leading_deadline_ns() returns the term's final deadline and
 * kle_leading_elector() returns NULL.
 */
typedef struct kle_leading kle_leading;

/** Callbacks. on_started_leading and on_stopped_leading are required. */
typedef struct kle_elector_callbacks {
    /**
     * Runs on its own thread when this elector becomes leader. It should do
     * the leader's work until @p leading signals the end (kle_leading_fd()
     * becomes readable, or kle_leading_wait_ns() returns 0), then return
     * promptly: the elector waits for it before releasing the lease and
     * before kle_elector_run() returns.
     */
    void (*on_started_leading)(kle_leading *leading, void *data);
    /** Runs on the kle_elector_run() thread each time kle_elector_run() ends. */
    void (*on_stopped_leading)(void *data);
    /**
     * Optional. Runs on the kle_elector_run() thread when the observed holder
     * changes, including the first observed holder; "" means the lease was
     * released. Must return quickly: renewals wait for it.
     */
    void (*on_new_leader)(const char *identity, void *data);
    /** Passed to every callback. */
    void *data;
} kle_elector_callbacks;

/**
 * Elector configuration; initialise with KLE_ELECTOR_CONFIG_INIT or
 * kle_elector_config_init(). Accepted at any version from 1 to
 * KLE_ELECTOR_CONFIG_VERSION; the library reads only that version's members.
 */
typedef struct kle_elector_config {
    /** KLE_ELECTOR_CONFIG_VERSION. */
    unsigned int version;
    /** The lock. kle_elector_new() takes ownership on success only. */
    kle_lock *lock;
    /** How long others wait, from when they saw the record change (default 15 s). */
    int64_t lease_duration_ns;
    /** How long the leader retries renewing before it gives up (default 10 s). */
    int64_t renew_deadline_ns;
    /** Wait between tries (default 2 s). */
    int64_t retry_period_ns;
    /** Release the lease when stopped while leading (default 0, as client-go). */
    int release_on_cancel;
    /**
     * The `name` label of this elector's metrics (kle_elector_metrics());
     * NULL: the lock's describe. Logs always name the lock by its describe
     * (namespace/name), as client-go does. Borrowed during new; copied.
     */
    const char *name;
    /** What to run when leadership starts, ends, or changes hands. */
    kle_elector_callbacks callbacks;
    /** Clock to use (borrowed; must outlive the elector). NULL: the real clock. */
    kle_clock *clock;
    /** Seed of the retry jitter; 0 picks a random seed. */
    uint64_t jitter_seed;
    /** Limit of one lock call when no deadline is nearer (default max(1 s, renew_deadline/2)). */
    int64_t call_timeout_ns;
    /**
     * Version 2. A kle_follow_mode: KLE_FOLLOW_WATCH (default; also what a
     * version-1 config gets) or KLE_FOLLOW_POLL.
     */
    int follow;
    /**
     * Version 2. Coordinated leader election (client-go's
     * LeaderElectionConfig.Coordinated, KEP-4355): the elector never creates
     * the lock nor takes a free or expired one; it leads only when the
     * coordinated election controller of the API server has made it the
     * holder, and renews while that lease is live. Publish a LeaseCandidate
     * (kle_candidate_start() in kle/coordinated.h) so that the controller
     * can pick this replica. Default 0. See docs/coordinated.md.
     */
    int coordinated;
} kle_elector_config;

/** Version of kle_elector_config this header describes. */
#define KLE_ELECTOR_CONFIG_VERSION 2
/** Initialiser with kube-controller-manager's defaults: 15 s / 10 s / 2 s. */
#define KLE_ELECTOR_CONFIG_INIT                                                                    \
    {                                                                                              \
        KLE_ELECTOR_CONFIG_VERSION, NULL, KLE_SEC(15), KLE_SEC(10), KLE_SEC(2), 0, NULL,           \
            {NULL, NULL, NULL, NULL}, NULL, 0, 0, KLE_FOLLOW_WATCH, 0                              \
    }

/** Version of kle_elector_stats this header describes. */
#define KLE_ELECTOR_STATS_VERSION 3

/**
 * Counters and state, for metrics. The caller sets version
 * (KLE_ELECTOR_STATS_INIT or kle_elector_stats_init()); the library writes
 * only the members that version has.
 */
typedef struct kle_elector_stats {
    unsigned int version; /**< KLE_ELECTOR_STATS_VERSION, set by the caller. */
    int leader;           /**< 1 while this elector leads (leader_election_master_status). */
    uint64_t
        slowpath_total; /**< Renewals that took the slow path (leader_election_slowpath_total). */
    uint64_t tries;     /**< tryAcquireOrRenew calls. */
    uint64_t failed_tries; /**< Of which did not succeed. */
    uint64_t acquisitions; /**< Times this elector became leader. */
    uint64_t losses;       /**< Times leadership ended because renewals did not succeed. */
    uint64_t releases;     /**< Successful releases. */
    /* Version 2. */
    /**
     * Nanoseconds (elector clock) since the election loop last made
     * progress: started, completed a tryAcquireOrRenew round (successful or
     * not), or completed a step between terms (leadership ended,
     * on_started_leading returned, the release finished); -1 when
     * kle_elector_run() is not running. A loop that works completes a round
     * at least every 2.2 × retry_period + 3 × call timeout (a jittered wait,
     * then at most three lock calls of at most the call timeout each; the
     * built-in MultiLocks and a lock's migration-guard read make two
     * requests in one call, each with the call timeout: count 6 × call
     * timeout for them);
     * between terms it also waits for on_started_leading to return and for
     * the release (at most renew_deadline). More than that means the loop
     * is wedged (a call that ignores its timeout, a blocked callback):
     * `kle run`'s /healthz fails on it.
     */
    int64_t round_age_ns;
    /**
     * 0 when the last lock call got an answer from the API server
     * (including NotFound, Conflict and AlreadyExists, which the election
     * expects), else that call's error code (KLE_ETIMEOUT, KLE_ETRANSPORT,
     * KLE_EFORBIDDEN, ...). `kle run`'s /readyz is 503 while it is not 0.
     */
    int last_call_error;
    /** Version 2. 1 while a watch stream of the lock is healthy (watch mode). */
    int watching;
    uint64_t watch_events;   /**< Version 2. Watch events received (bookmarks included). */
    uint64_t watch_restarts; /**< Version 2. Watch streams started after the first. */
    uint64_t stepdowns;      /**< Version 2. Terms ended at once on a newer foreign holder. */
    /**
     * Version 3. The fencing token (leaderTransitions) of this elector's
     * current term, or of its last one once it has ended (see leader);
     * meaningful once acquisitions > 0. kle_leading_transitions() gives the
     * same to the leader's code. (`kle_leader_fencing_token`.)
     */
    int64_t token;
    /**
     * Version 3. The renewTime this elector last wrote in a successful
     * acquisition or renewal: wall-clock (CLOCK_REALTIME, elector clock)
     * nanoseconds since the epoch; 0 before the first.
     * (`kle_leader_last_renewal_timestamp_seconds`.)
     */
    int64_t last_renew_wall_ns;
} kle_elector_stats;

/** Initialiser of kle_elector_stats at the current version. */
#define KLE_ELECTOR_STATS_INIT                                                                     \
    {                                                                                              \
        KLE_ELECTOR_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0                     \
    }

/**
 * Sets @p config to KLE_ELECTOR_CONFIG_INIT at @p version (1 to
 * KLE_ELECTOR_CONFIG_VERSION), for callers that cannot use the macro.
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_elector_config_init(kle_elector_config *config, unsigned int version);

/**
 * Zeroes @p stats and sets its version (1 to KLE_ELECTOR_STATS_VERSION).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_elector_stats_init(kle_elector_stats *stats, unsigned int version);

/**
 * Validates @p config exactly as client-go does and creates an elector:
 * lease_duration > renew_deadline; renew_deadline > 1.2 × retry_period; all
 * three > 0; lease_duration at least 1 s (the record carries whole seconds);
 * both required callbacks set; a complete lock with a non-empty identity.
 * @return 0; KLE_EINVAL with a message naming the rule that failed;
 *   KLE_EVERSION for an unknown config or lock version; KLE_ENOMEM;
 *   KLE_ESYSTEM. On failure the lock still belongs to the caller.
 */
KLE_EXTERN(int) kle_elector_new(kle_elector **out, const kle_elector_config *config);

/**
 * Runs the election on the calling thread until kle_elector_stop() is
 * called or leadership ends. May be called again after it returns, unless
 * stopped (a stop stays in effect).
 *
 * What the return means for a program that should keep campaigning:
 * - 0: stopped by kle_elector_stop(), or, without a stop, this elector
 *   ended its term to hand the lease over to a preferred holder
 *   (`kle transfer`, preferredHolder) or handed over a lease it won that
 *   was reserved for another: campaign again unless you stopped it;
 * - leadership lost, campaign again (kle_error_is_lost_leadership() is 1):
 *   KLE_ETIMEOUT when renewals did not succeed before the renew deadline
 *   (or the deadline passed before the leader's work could start);
 *   KLE_ECONFLICT when the watch showed another holder newer than this
 *   elector's last write (watch mode), or a read showed another holder;
 * - any other code is a failure, not a loss: KLE_EIDENTITY when another
 *   replica writes the lock under this elector's identity (it does not
 *   lead under it: give every replica its own identity); KLE_ESTATE if the
 *   elector is already running; KLE_ESYSTEM if a thread could not start.
 */
KLE_EXTERN(int) kle_elector_run(kle_elector *elector);

/**
 * 1 when @p rc, a return of kle_elector_run(), means that leadership was
 * lost (KLE_ETIMEOUT, KLE_ECONFLICT), so a program that should stay a
 * candidate campaigns again; 0 for anything else (0 included: see
 * kle_elector_run()).
 */
KLE_EXTERN(int) kle_error_is_lost_leadership(int rc);

/**
 * Asks kle_elector_run() to end. Safe from any thread and from a signal
 * handler (with the real clock); idempotent; stays in effect, so a later
 * kle_elector_run() returns at once.
 */
KLE_EXTERN(void) kle_elector_stop(kle_elector *elector);

/**
 * Returns 1 while this elector leads: it won the lease and less than
 * renew_deadline has passed since its last successful write was sent.
 */
KLE_EXTERN(int) kle_elector_is_leader(kle_elector *elector);

/**
 * Copies the identity of the last observed holder into a new string (""
 * when none was observed), which the caller frees with kle_free().
 * @return 0 or KLE_ENOMEM.
 */
KLE_EXTERN(int) kle_elector_leader(char **out, kle_elector *elector);

/**
 * Copies the last observed record into @p out, whose version the caller
 * set (KLE_RECORD_INIT), and its age on the elector's monotonic clock.
 * Dispose @p out with kle_record_dispose().
 * @return 0; KLE_EINVAL; KLE_EVERSION for an unset or unknown record
 *         version; KLE_ENOTFOUND when nothing was observed yet; KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_elector_observed(kle_record *out, int64_t *out_age_ns, kle_elector *elector);

/**
 * client-go's healthz Check: healthy unless this elector's last observed
 * record names it holder and that observation is older than
 * lease_duration + @p max_tolerable_expired_ns.
 * @return 0 when healthy, KLE_EUNHEALTHY with a message otherwise.
 */
KLE_EXTERN(int) kle_elector_check_ns(kle_elector *elector, int64_t max_tolerable_expired_ns);

/**
 * Copies the counters into @p out, whose version the caller set.
 * @return 0; KLE_EINVAL; KLE_EVERSION for an unset or unknown version.
 */
KLE_EXTERN(int) kle_elector_get_stats(kle_elector_stats *out, kle_elector *elector);

/**
 * Writes the metrics of electors in the Prometheus text exposition format
 * (version 0.0.4) into a new string, which the caller frees with
 * kle_free(): client-go's `leader_election_master_status{name=...}` gauge
 * and `leader_election_slowpath_total{name=...}` counter for each
 * elector; from stats of version 2, `kle_watch_stream_up{name=...}` (1
 * while the watch stream of the lock is healthy) and
 * `kle_watch_stream_restarts_total{name=...}`; from version 3,
 * `kle_leader_fencing_token{name=...}` (the token of the current or last
 * term, for electors that have led) and
 * `kle_leader_last_renewal_timestamp_seconds{name=...}` (when this
 * elector last renewed or acquired, seconds since the epoch: alert on
 * time() minus it while leader_election_master_status is 1); then
 * `kle_log_dropped_lines_total` (log lines libkle dropped because its log
 * output was blocked). `kle run` serves this on /metrics, with
 * kle_client_metrics() (kle/client.h).
 * Serve it from an HTTP handler, or append it to your own exposition.
 * @param out receives the text.
 * @param names the `name` label of each elector (escaped as the format requires).
 * @param stats each elector's counters (kle_elector_get_stats()), any version.
 * @param n how many; 0 writes only kle_log_dropped_lines_total.
 * @return 0; KLE_EINVAL when @p out is NULL, or a name or stats is NULL;
 *   KLE_EVERSION for a stats of unknown version; KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_metrics_format(char **out, const char *const *names, const kle_elector_stats *const *stats,
                   size_t n);

/**
 * kle_metrics_format() for one elector, labelled with its config's name
 * (the lock's describe when the config had none).
 * @return as kle_metrics_format(); KLE_EINVAL when @p elector is NULL.
 */
KLE_EXTERN(int) kle_elector_metrics(char **out, kle_elector *elector);

/** The identity of this elector's lock (borrowed). */
KLE_EXTERN(const char *) kle_elector_identity(kle_elector *elector);

/** Frees the elector and its lock. It must not be running. NULL is ignored. */
KLE_EXTERN(void) kle_elector_free(kle_elector *elector);

/**
 * A file descriptor that becomes readable (POLLIN) when leadership ends.
 * Owned by the handle; do not read or close it.
 */
KLE_EXTERN(int) kle_leading_fd(const kle_leading *leading);

/**
 * Waits until leadership ends or @p timeout_ns nanoseconds pass (negative:
 * forever; e.g. KLE_SEC(1)),
 * on the elector's clock.
 * @return 0 when leadership has ended, KLE_ETIMEOUT otherwise.
 */
KLE_EXTERN(int) kle_leading_wait_ns(kle_leading *leading, int64_t timeout_ns);

/** Returns 1 once leadership has ended. */
KLE_EXTERN(int) kle_leading_is_over(const kle_leading *leading);

/**
 * leaderTransitions of the record this elector wrote when it acquired: it
 * strictly increases with every change of leader, so it serves as a
 * fencing token.
 */
KLE_EXTERN(int) kle_leading_transitions(const kle_leading *leading);

/**
 * The end of leadership as it stands now, in the elector clock's monotonic
 * nanoseconds (CLOCK_BOOTTIME for the real clock, so another process on the
 * machine can enforce it): renew_deadline after the last successful write
 * was sent. Each successful renewal moves it later; once it passes without
 * one, leadership has ended, whatever the elector thread is doing. A guard
 * of its own (a watchdog thread or process) can stop the leader's work at
 * this time even if the elector is stuck, which is how `kle run`'s
 * supervisor works. Reading it acknowledges a change signalled on
 * kle_leading_deadline_fd().
 */
KLE_EXTERN(int64_t) kle_leading_deadline_ns(kle_leading *leading);

/**
 * A file descriptor that becomes readable (POLLIN) when the leadership
 * deadline moved, and stays readable until kle_leading_deadline_ns() is
 * next called. Made on the first call (a leader that never asks costs no
 * descriptor); -1 when no descriptor is left, and then the deadline can
 * still be read with kle_leading_deadline_ns() (a guard that cannot learn
 * of extensions stops the work at the deadline it knows: the safe side).
 * Owned by the handle; do not read or close it.
 */
KLE_EXTERN(int) kle_leading_deadline_fd(const kle_leading *leading);

/** The elector this handle belongs to; NULL once the handle's term has ended. */
KLE_EXTERN(kle_elector *) kle_leading_elector(kle_leading *leading);

/**
 * Takes a reference to @p leading, so that it stays valid after
 * on_started_leading returns (for example when the leader's work runs on
 * threads of its own). Thread-safe.
 * @return @p leading.
 */
KLE_EXTERN(kle_leading *) kle_leading_ref(kle_leading *leading);

/** Drops a reference taken with kle_leading_ref(). NULL is ignored. Thread-safe. */
KLE_EXTERN(void) kle_leading_unref(kle_leading *leading);

KLE_END_DECLS

#endif
