/**
 * @file kle/locks.h
 * @brief The lock backends: Lease, ConfigMap, Endpoints and Multi.
 *
 * Each constructor returns a kle_lock (kle/lock.h) to hand to
 * kle_elector_new(). They mirror client-go's resourcelock package:
 *
 * | type name          | object(s)                                                  |
 * |--------------------|------------------------------------------------------------|
 * | `leases`           | a coordination.k8s.io/v1 Lease, record in its spec        |
 * | `configmaps`       | a ConfigMap, record in annotation KLE_LEADER_ANNOTATION    |
 * | `endpoints`        | an Endpoints object, record in the same annotation        |
 * | `configmapsleases` | Multi: ConfigMap primary, Lease secondary (migration)      |
 * | `endpointsleases`  | Multi: Endpoints primary, Lease secondary (migration)      |
 *
 * Annotation records are written in client-go v0.26's shape (five fields,
 * times in RFC 3339 with second precision, zero times as null) so that
 * legacy controllers read them; they are read tolerantly (client-go HEAD's
 * seven fields, the Python client's string duration and time layout). A
 * record that cannot be read is KLE_EBADRECORD, never a free lock.
 *
 * An update sends the resourceVersion the lock last read or wrote (a stale
 * one gives KLE_ECONFLICT) and changes nothing else on the object: other
 * annotations, labels, ConfigMap data and Endpoints subsets stay as they are.
 *
 * Locks borrow the client, which must outlive them. A lock is used by one
 * elector at a time; its calls are serialized internally.
 */
#ifndef KLE_LOCKS_H
#define KLE_LOCKS_H

#include "client.h"
#include "lock.h"

KLE_BEGIN_DECLS

/** The annotation that holds the record on ConfigMap and Endpoints locks. */
#define KLE_LEADER_ANNOTATION "control-plane.alpha.kubernetes.io/leader"

/** The holder a MultiLock reports when its two records disagree. */
#define KLE_UNKNOWN_LEADER "leaderelection.k8s.io/unknown"

/** Version of kle_resource_lock_opts this header describes. */
#define KLE_RESOURCE_LOCK_OPTS_VERSION 1

/** Options of a resource lock. Initialise with KLE_RESOURCE_LOCK_OPTS_INIT. */
typedef struct kle_resource_lock_opts {
    /** KLE_RESOURCE_LOCK_OPTS_VERSION. */
    unsigned int version;
    /** Namespace of the lock object; NULL: the client's namespace. */
    const char *namespace_;
    /** Name of the lock object (required; a DNS subdomain). */
    const char *name;
    /**
     * Identity written as holder (required): non-empty, at most
     * KLE_IDENTITY_MAX bytes of valid UTF-8 without control characters
     * (see kle_identity_check()).
     */
    const char *identity;
    /** Record Events ("<identity> became leader") on the lock object (default 1). */
    int record_events;
    /** `source.component` and `reportingComponent` of Events (default "kle"). */
    const char *event_component;
    /**
     * Labels the holder sets on a Lease when it creates or updates it
     * (client-go's NewWithLabels): "key", "value", ..., NULL. Ignored by
     * annotation locks. Other labels on the object are kept.
     */
    const char *const *lease_labels;
} kle_resource_lock_opts;

/** Initialiser: the client's namespace, events on, component "kle". */
#define KLE_RESOURCE_LOCK_OPTS_INIT                                                                \
    {                                                                                              \
        KLE_RESOURCE_LOCK_OPTS_VERSION, NULL, NULL, NULL, 1, NULL, NULL                            \
    }

/**
 * Sets @p ptr to KLE_RESOURCE_LOCK_OPTS_INIT at @p version (1 to KLE_RESOURCE_LOCK_OPTS_VERSION),
 * for callers that cannot use the macro (language bindings).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_resource_lock_opts_init(kle_resource_lock_opts *ptr, unsigned int version);

/**
 * Creates a Lease lock.
 *
 * Its get reads the Lease as described in docs/architecture.md ("Reading
 * and writing records"): an answer that is not a Lease named so (a Status,
 * another kind), a Lease whose spec is null, missing or not an object, or a
 * record field of the wrong type or out of its int32 range is
 * KLE_EBADRECORD, never a free lock; a spec {} is a free lock. Its create
 * and update refuse a record outside kle_record_validate()'s ranges with
 * KLE_EINVAL and take a wrong-kind answer as KLE_EBADRECORD.
 * @return 0; KLE_EINVAL (a missing name, or an identity that
 *   kle_identity_check() refuses, named in the message); KLE_EVERSION;
 *   KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_lease_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts);

/**
 * Creates a ConfigMap lock (record in the leader annotation). Reads and
 * returns as kle_lease_lock_new(); an object without the annotation is a
 * free lock, an annotation that is not a JSON record is KLE_EBADRECORD.
 */
KLE_EXTERN(int)
kle_configmap_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts);

/** Creates an Endpoints lock (record in the leader annotation). As kle_configmap_lock_new(). */
KLE_EXTERN(int)
kle_endpoints_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts);

/**
 * Creates a MultiLock from an old-style @p primary (Endpoints or ConfigMap)
 * and a Lease @p secondary, with client-go's semantics: read both, report
 * the primary's record (holder KLE_UNKNOWN_LEADER when the holders differ,
 * raw record "primary,secondary"); when the secondary does not exist yet
 * and someone else holds the primary, report the primary alone; write the
 * primary first, then the secondary (creating it when missing). Identity
 * and description come from the primary; events go to both.
 * Takes ownership of both locks on success only.
 * @return 0, KLE_EINVAL, KLE_ENOMEM.
 */
KLE_EXTERN(int) kle_multi_lock_new(kle_lock **out, kle_lock *primary, kle_lock *secondary);

/**
 * Creates a lock by type name (`leases`, `endpoints`, `configmaps`,
 * `endpointsleases`, `configmapsleases`).
 * @return 0; KLE_EINVAL for an unknown name (the message lists the valid
 *   ones) or bad options; KLE_ENOMEM.
 */
KLE_EXTERN(int)
kle_lock_new_by_name(kle_lock **out, const char *type, kle_client *client,
                     const kle_resource_lock_opts *opts);

/**
 * Turns the skipped-migration-phase guard of a Lease, ConfigMap or Endpoints
 * lock on or off (it is on by default; a MultiLock's parts from
 * kle_lock_new_by_name() have it off); its rules are in docs/migration.md,
 * "The skipped-phase guard". Before this replica may acquire (the record it
 * read is not its own), get reads the same-named lock of the other family
 * (a Lease for Endpoints and ConfigMap locks; the Endpoints or the ConfigMap
 * for a Lease lock) and fails with KLE_ESTATE, logging an error once, when
 * that holds a live record of a holder other than the one this lock's
 * record names. After a create or update that makes this replica the holder
 * (other than a renewal within the lease of a checked write), and before it
 * returns, it reads the other family again: when that holds a live record
 * of another holder, the call fails with KLE_ESTATE (an Endpoints or
 * ConfigMap lock first writes its record back released; a Lease lock keeps
 * its Lease unrenewed), and until a check passes get checks again on every
 * call, even over this replica's own record, and update and create of a
 * record naming it fail at once. Cost: one GET per acquire attempt, one (two
 * for a Lease lock that has found no record of the other families) per
 * acquisition, none per renewal. Liveness is judged by when this process
 * saw the record change, as the elector judges its own lock. A 403 on the
 * other family's GET turns the guard off with one warning.
 * @param lock a lock from kle_lease_lock_new(), kle_configmap_lock_new() or
 *   kle_endpoints_lock_new() (borrowed).
 * @param on 1 on, 0 off.
 * @return 0, or KLE_EINVAL when @p lock is not such a lock.
 */
KLE_EXTERN(int) kle_lock_set_migration_guard(kle_lock *lock, int on);

/** The valid type names, NULL-terminated. */
KLE_EXTERN(const char *const *) kle_lock_type_names(void);

/**
 * For a MultiLock, reads both records as they are (without merging), for
 * status displays. @p out_primary and @p out_secondary are disposed by the
 * caller; a missing object gives its code in @p out_*_rc (0 when read).
 * @return 0, or KLE_EINVAL when @p lock is not a MultiLock.
 */
KLE_EXTERN(int)
kle_multi_lock_get_both(kle_lock_result *out_primary, int *out_primary_rc,
                        kle_lock_result *out_secondary, int *out_secondary_rc, kle_lock *lock,
                        const kle_lock_ctx *ctx);

KLE_END_DECLS

#endif
