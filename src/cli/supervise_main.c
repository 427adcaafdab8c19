/*
 * kle-supervise: the supervisor shim of kle run (supervise.c) as a program
 * of its own. It links libc only, so it starts in a fraction of the time kle
 * takes to load libcurl, OpenSSL, GnuTLS and their dependencies: that start
 * is on the path from winning the lease to the command running. kle run
 * executes it as "kle-supervise __supervise STATUS_FD CTL_FD PPID GRACE_MS
 * [NOFILE] -- COMMAND..." (the arguments of "kle __supervise", which stays the
 * fallback when this program is not installed beside kle).
 */
#include <stdio.h>
#include <string.h>

#include "supervise.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "__supervise") == 0)
        return cli_supervise_main(argc - 2, argv + 2);
    fprintf(stderr, "kle-supervise: internal program of kle run, not run by hand "
                    "(usage: kle-supervise __supervise STATUS_FD CTL_FD PPID GRACE_MS "
                    "[NOFILE] -- COMMAND)\n");
    return CLI_EXIT_USAGE;
}
