/* Client and lock construction shared by kle run and kle status (a unit of
 * its own, so that the commands do not depend on main.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cli_make_client(kle_client **out, const cli_opts *o)
{
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = o->kubeconfig;
    co.context = o->context;
    co.namespace_ = o->namespace_;
    if (kle_client_new_default(out, &co) < 0) {
        /* A setup error, reported as flag errors are: one "kle: " line. */
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        cli_error("cannot connect: %s", why);
        return -1;
    }
    return 0;
}

int cli_make_lock(kle_lock **out, const cli_opts *o, kle_client *client, const char *identity)
{
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = o->lock_name;
    lo.identity = identity;
    lo.namespace_ = kle_client_namespace(client);
    lo.event_component = "kle";
    if (kle_lock_new_by_name(out, o->resource_lock, client, &lo) < 0) {
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        cli_error("cannot make the %s lock %s: %s", o->resource_lock, o->lock_name, why);
        return -1;
    }
    /* Only kle run acquires; kle status reads. Locks that are not single
     * objects (MultiLocks) have no guard to set. */
    if (!o->migration_guard || strcmp(identity, "kle-status") == 0)
        (void)kle_lock_set_migration_guard(*out, 0);
    return 0;
}
