/* kle transfer: planned handover of a Lease to a named replica. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kle/coordinated.h"

/* On a terminal: asks whether to hand over to a target with no LeaseCandidate. */
static int confirm(const cli_opts *o, const char *ns, const char *why)
{
    char answer[16];
    fprintf(stderr,
            "kle: %s\n"
            "Hand lease %s/%s over to \"%s\" anyway? If no replica has that identity, the lock "
            "stays leaderless for a lease duration. [y/N] ",
            why, ns, o->lock_name, o->transfer_to);
    fflush(stderr);
    if (!fgets(answer, sizeof(answer), stdin))
        return 0;
    return answer[0] == 'y' || answer[0] == 'Y';
}

int cli_cmd_transfer(cli_opts *o)
{
    kle_client *client = NULL;
    kle_transfer_opts t = KLE_TRANSFER_OPTS_INIT;
    char why[1024];
    int rc;
    if (cli_make_client(&client, o) < 0)
        return CLI_EXIT_FAILURE;
    const char *ns = o->namespace_ ? o->namespace_ : kle_client_namespace(client);
    if (o->force && strcmp(o->resource_lock, "leases") == 0) {
        /* --force skips the ping, not the question whether the target is
         * a replica at all: a typo would leave the lock leaderless. */
        rc = kle_transfer_find_candidate(client, ns, o->lock_name, o->transfer_to);
        if (rc == KLE_ENOTFOUND && !o->yes) {
            cli_escape(why, sizeof(why), kle_error_last()->message);
            if (!(isatty(STDIN_FILENO) && isatty(STDERR_FILENO))) {
                cli_error("%s; --force hands over only to a known candidate: add --yes to hand "
                          "over to \"%s\" anyway",
                          why, o->transfer_to);
                kle_client_free(client);
                return CLI_EXIT_FAILURE;
            }
            if (!confirm(o, ns, why)) {
                cli_error("transfer: not confirmed; nothing changed");
                kle_client_free(client);
                return CLI_EXIT_FAILURE;
            }
        } else if (rc < 0 && rc != KLE_ENOTFOUND) {
            cli_escape(why, sizeof(why), kle_error_last()->message);
            cli_error("%s", why);
            kle_client_free(client);
            return CLI_EXIT_FAILURE;
        }
    }
    t.lock_type = o->resource_lock;
    t.namespace_ = ns;
    t.lock_name = o->lock_name;
    t.to = o->transfer_to;
    t.force = o->force;
    rc = kle_transfer(client, &t);
    if (rc < 0) {
        cli_escape(why, sizeof(why), kle_error_last()->message);
        cli_error("%s", why);
    } else {
        printf("preferredHolder of %s/%s set to %s\n", ns, o->lock_name, o->transfer_to);
    }
    kle_client_free(client);
    return rc < 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
