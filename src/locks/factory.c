/* Lock construction by type name, as client-go's resourcelock.New. */
#include <string.h>

#include "kle/locks.h"
#include "kle/sys/errors.h"

static const char *const type_names[] = {"leases",          "endpoints",        "configmaps",
                                         "endpointsleases", "configmapsleases", NULL};

const char *const *kle_lock_type_names(void)
{
    return type_names;
}

typedef int (*ctor)(kle_lock **, kle_client *, const kle_resource_lock_opts *);

static int multi(kle_lock **out, ctor primary_ctor, kle_client *client,
                 const kle_resource_lock_opts *opts)
{
    kle_lock *primary = NULL, *secondary = NULL;
    int rc = primary_ctor(&primary, client, opts);
    if (rc == 0)
        rc = kle_lease_lock_new(&secondary, client, opts);
    /* A MultiLock reads both families itself: no guard in its parts. */
    if (rc == 0 && (rc = kle_lock_set_migration_guard(primary, 0)) == 0)
        rc = kle_lock_set_migration_guard(secondary, 0);
    if (rc == 0)
        rc = kle_multi_lock_new(out, primary, secondary);
    if (rc < 0) {
        kle_lock_free(primary);
        kle_lock_free(secondary);
    }
    return rc;
}

int kle_lock_new_by_name(kle_lock **out, const char *type, kle_client *client,
                         const kle_resource_lock_opts *opts)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "resource lock: out is NULL");
    *out = NULL;
    if (!type)
        type = "";
    if (strcmp(type, "leases") == 0)
        return kle_lease_lock_new(out, client, opts);
    if (strcmp(type, "endpoints") == 0)
        return kle_endpoints_lock_new(out, client, opts);
    if (strcmp(type, "configmaps") == 0)
        return kle_configmap_lock_new(out, client, opts);
    if (strcmp(type, "endpointsleases") == 0)
        return multi(out, kle_endpoints_lock_new, client, opts);
    if (strcmp(type, "configmapsleases") == 0)
        return multi(out, kle_configmap_lock_new, client, opts);
    return kle_error_set(KLE_EINVAL,
                         "unknown resource lock type \"%s\": valid types are leases, endpoints, "
                         "configmaps, endpointsleases, configmapsleases",
                         type);
}

int kle_resource_lock_opts_init(kle_resource_lock_opts *ptr, unsigned int version)
{
    if (!ptr)
        return kle_error_set(KLE_EINVAL, "kle_resource_lock_opts_init: pointer is NULL");
    if (version < 1 || version > KLE_RESOURCE_LOCK_OPTS_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "kle_resource_lock_opts_init: version %u is not supported", version);
    kle_resource_lock_opts init = KLE_RESOURCE_LOCK_OPTS_INIT;
    *ptr = init; /* Version 1 is the whole current layout. */
    ptr->version = version;
    return 0;
}
