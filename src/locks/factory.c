/* Lock construction by type name, as client-go's resourcelock.New. */
#include <string.h>

#include "kle/locks.h"
#include "base/versioned.h"
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
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_resource_lock_opts_init", ptr, version, KLE_RESOURCE_LOCK_OPTS_VERSION,
                     kle_resource_lock_opts, KLE_RESOURCE_LOCK_OPTS_INIT, sizeof(*ptr));
    return 0;
}
