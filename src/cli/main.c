/* kle: leader election for any program from the command line. */
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
        CLI_ERR("cannot connect: %s", kle_error_last()->message);
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
        CLI_ERR("cannot create the %s lock %s: %s", o->resource_lock, o->lock_name,
                kle_error_last()->message);
        return -1;
    }
    /* Only kle run acquires; kle status reads. Locks that are not single
     * objects (MultiLocks) have no guard to set. */
    if (!o->migration_guard || strcmp(identity, "kle-status") == 0)
        (void)kle_lock_set_migration_guard(*out, 0);
    return 0;
}

int main(int argc, char **argv)
{
    cli_opts o;
    char err[512];
    int rc;

    if (argc >= 2 && strcmp(argv[1], "__supervise") == 0)
        return cli_supervise_main(argc - 2, argv + 2);
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        /* The headers' version, and the library's actually loaded. */
        printf("kle %s (libkle %s)\n", KLE_VERSION, kle_version(NULL, NULL, NULL));
        return 0;
    }

    rc = cli_parse(&o, argc, argv, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return rc;
    }
    if (o.help) {
        cli_usage(o.command);
        return 0;
    }
    cli_log_setup(o.json_logs, o.verbosity);
    if (strcmp(o.command, "run") == 0)
        return cli_cmd_run(&o, "/proc/self/exe");
    if (strcmp(o.command, "transfer") == 0)
        return cli_cmd_transfer(&o);
    return cli_cmd_status(&o);
}
