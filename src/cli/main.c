/* kle: leader election for any program from the command line. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "supervise.h"

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

    if (argc >= 2 && strcmp(argv[1], "completion") == 0)
        return cli_completion_main(argc - 2, argv + 2);
    if (argc == 3 && strcmp(argv[1], "help") == 0 && strcmp(argv[2], "completion") == 0) {
        char *h[] = {"--help", NULL};
        return cli_completion_main(1, h);
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
