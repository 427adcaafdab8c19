/* kle transfer: planned handover of a Lease to a named replica. */
#include <stdio.h>

#include "cli.h"
#include "kle/coordinated.h"

int cli_cmd_transfer(cli_opts *o)
{
    kle_client *client = NULL;
    kle_transfer_opts t = KLE_TRANSFER_OPTS_INIT;
    if (cli_make_client(&client, o) < 0)
        return CLI_EXIT_FAILURE;
    t.lock_type = o->resource_lock;
    t.namespace_ = o->namespace_;
    t.lock_name = o->lock_name;
    t.to = o->transfer_to;
    t.force = o->force;
    int rc = kle_transfer(client, &t);
    if (rc < 0) {
        CLI_ERR("%s", kle_error_last()->message);
    } else {
        CLI_INFO("asked the leader of %s/%s to hand over to %s", kle_client_namespace(client),
                 o->lock_name, o->transfer_to);
        printf("preferredHolder of %s set to %s\n", o->lock_name, o->transfer_to);
    }
    kle_client_free(client);
    return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
