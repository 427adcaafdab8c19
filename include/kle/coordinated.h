/**
 * @file kle/coordinated.h
 * @brief Coordinated leader election (KEP-4355): LeaseCandidate publishing
 *        and planned handover of a Lease.
 *
 * With coordinated election an API server controller picks the holder of a
 * Lease among the replicas that publish a LeaseCandidate
 * (coordination.k8s.io/v1beta1) for it. A replica runs a candidate
 * (kle_candidate_start()) beside an elector whose config sets
 * `coordinated` (kle/elector.h). kle_transfer() asks the current leader of
 * a Lease to hand over to a named replica by setting the Lease's
 * preferredHolder. See docs/coordinated.md.
 */
#ifndef KLE_COORDINATED_H
#define KLE_COORDINATED_H

#include "client.h"

KLE_BEGIN_DECLS

/** The strategy kube-apiserver's controller implements. */
#define KLE_STRATEGY_OLDEST_EMULATION_VERSION "OldestEmulationVersion"

/** A running LeaseCandidate publisher (opaque). */
typedef struct kle_candidate kle_candidate;

/** Version of kle_candidate_opts this header describes. */
#define KLE_CANDIDATE_OPTS_VERSION 1

/** Options of a candidate; initialise with KLE_CANDIDATE_OPTS_INIT. */
typedef struct kle_candidate_opts {
    /** KLE_CANDIDATE_OPTS_VERSION. */
    unsigned int version;
    /** Namespace of the LeaseCandidate and the Lease; NULL: the client's. */
    const char *namespace_;
    /**
     * Name of the LeaseCandidate (required, a valid object name). With
     * coordinated election the controller writes it into the Lease as
     * holder, so it must be the elector's identity. A candidate only for
     * planned handover (kle_transfer()) is best named LEASE.IDENTITY, so
     * that one identity can be a candidate for several leases: that is
     * what `kle run --candidate` publishes; kle_transfer() looks for both.
     */
    const char *name;
    /** The Lease this replica is a candidate for (required). */
    const char *lease_name;
    /** Binary version, semver without a leading v, e.g. "1.33.0" (required). */
    const char *binary_version;
    /** Emulation version (required for OldestEmulationVersion; at most binary_version). */
    const char *emulation_version;
    /** Strategy; NULL: KLE_STRATEGY_OLDEST_EMULATION_VERSION. */
    const char *strategy;
    /** How often to look for a ping from the controller (default 1 s). */
    int64_t poll_period_ns;
    /** Renewal without a ping (default 5 min, client-go's requeue interval). */
    int64_t renew_interval_ns;
} kle_candidate_opts;

/** Initialiser of kle_candidate_opts at the current version. */
#define KLE_CANDIDATE_OPTS_INIT                                                                    \
    {                                                                                              \
        KLE_CANDIDATE_OPTS_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0                       \
    }

/**
 * Sets @p opts to KLE_CANDIDATE_OPTS_INIT at @p version.
 * @return 0, KLE_EINVAL (NULL) or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_candidate_opts_init(kle_candidate_opts *opts, unsigned int version);

/**
 * Starts publishing a LeaseCandidate, as client-go's leasecandidate.go does:
 * creates it when missing (renewTime now), renews it (renewTime now) when
 * the controller pings it (pingTime after renewTime) and every
 * renew_interval_ns. Runs on its own thread until kle_candidate_stop().
 * Strings are copied. The client is borrowed and must outlive the candidate.
 * @return 0; KLE_EINVAL (a required option missing or invalid); KLE_EVERSION;
 *         KLE_ENOMEM; KLE_ESYSTEM (no thread).
 */
KLE_EXTERN(int)
kle_candidate_start(kle_candidate **out, kle_client *client, const kle_candidate_opts *opts);

/**
 * Stops the candidate's thread and, with @p delete_object, deletes its
 * LeaseCandidate (a clean exit: the controller stops considering it).
 * Safe to call once; NULL is ignored.
 * @return 0, or the error of the delete (KLE_ENOTFOUND counts as done: 0).
 */
KLE_EXTERN(int) kle_candidate_stop(kle_candidate *c, int delete_object);

/** Stops the candidate (without deleting its object) if running, and frees it. */
KLE_EXTERN(void) kle_candidate_free(kle_candidate *c);

/** Version of kle_transfer_opts this header describes. */
#define KLE_TRANSFER_OPTS_VERSION 1

/** Options of kle_transfer(); initialise with KLE_TRANSFER_OPTS_INIT. */
typedef struct kle_transfer_opts {
    /** KLE_TRANSFER_OPTS_VERSION. */
    unsigned int version;
    /** Lock type name as in kle/locks.h; NULL: "leases". Only Lease locks carry preferredHolder. */
    const char *lock_type;
    /** Namespace of the lock; NULL: the client's. */
    const char *namespace_;
    /** Name of the lock (required). */
    const char *lock_name;
    /** Identity to hand over to (required). */
    const char *to;
    /**
     * How long the target's LeaseCandidate has to answer a ping (default
     * 5 s, kube-apiserver's election duration).
     */
    int64_t ping_timeout_ns;
    /** Skip the liveness check (the target has no LeaseCandidate). Default 0. */
    int force;
} kle_transfer_opts;

/** Initialiser of kle_transfer_opts at the current version. */
#define KLE_TRANSFER_OPTS_INIT                                                                     \
    {                                                                                              \
        KLE_TRANSFER_OPTS_VERSION, NULL, NULL, NULL, NULL, 0, 0                                    \
    }

/**
 * Sets @p opts to KLE_TRANSFER_OPTS_INIT at @p version.
 * @return 0, KLE_EINVAL (NULL) or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_transfer_opts_init(kle_transfer_opts *opts, unsigned int version);

/**
 * Looks for the LeaseCandidate of @p to for the lease @p lock_name in
 * @p namespace_ (NULL: the client's): named LOCK.TO, else TO, with
 * leaseName the lock. It does not ping it.
 * @return 0 when it exists; KLE_ENOTFOUND (with a message naming both
 *   names) when it does not; KLE_EINVAL; API and transport errors.
 */
KLE_EXTERN(int)
kle_transfer_find_candidate(kle_client *client, const char *namespace_, const char *lock_name,
                            const char *to);

/**
 * Planned handover: sets the Lease's preferredHolder to @p opts->to so that
 * the current leader ends its term and hands the lock over (libkle replicas
 * write the preferred holder in as holder once their work has stopped;
 * client-go replicas in coordinated mode stop renewing). Before writing it
 * checks that the target is a live candidate: its LeaseCandidate (same
 * namespace, named LOCK.TO or TO, leaseName the lock; see
 * kle_transfer_find_candidate()) exists and answers a ping (renewTime after
 * the pingTime set now) within ping_timeout_ns.
 * The write is conditional (resourceVersion): a Conflict is retried.
 * @return 0; KLE_EINVAL (options, or a lock type without preferredHolder:
 *         ConfigMap and Endpoints records, see docs/coordinated.md);
 *         KLE_ENOTFOUND (no such Lease); KLE_ESTATE (nobody holds the lock,
 *         the target already holds it, or the target is not a live
 *         candidate); API and transport errors of kle/errors.h.
 */
KLE_EXTERN(int) kle_transfer(kle_client *client, const kle_transfer_opts *opts);

KLE_END_DECLS

#endif
