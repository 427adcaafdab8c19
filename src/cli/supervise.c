/*
 * The supervisor shim between kle and the command.
 *
 * kle forks, the child becomes a process-group leader, asks for SIGUSR1
 * when its parent dies (PR_SET_PDEATHSIG), checks getppid() to close the
 * race, and re-executes kle as "kle __supervise FD PPID -- COMMAND...": a fresh
 * single-threaded process. The shim starts COMMAND in its own process
 * group, waits, and writes the command's wait status to FD. kle signals the
 * whole group (shim and command) with SIGTERM, then SIGKILL. The shim
 * ignores SIGTERM itself (it must outlive the command to report it); when
 * kle dies, the shim SIGKILLs the group, itself included, so the command
 * never runs unsupervised.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

int cli_supervise_main(int argc, char **argv)
{
    sigset_t set, old;
    int fd;
    char *end;
    long v;
    pid_t child;

    long ppid;
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr,
                "kle __supervise: internal command; usage: kle __supervise FD PPID -- COMMAND\n");
        return CLI_EXIT_USAGE;
    }
    v = strtol(argv[0], &end, 10);
    int bad = *end != '\0';
    ppid = strtol(argv[1], &end, 10);
    if (bad || *end || v < 0 || v > 1000000 || ppid <= 0) {
        fprintf(stderr, "kle __supervise: bad arguments \"%s %s\"\n", argv[0], argv[1]);
        return CLI_EXIT_USAGE;
    }
    fd = (int)v;
    /* kle's sockets and pipes (API connections, HTTP listener) are not the
     * command's business: keep only stdio and the status pipe. */
    if (fd > 3)
        close_range(3, (unsigned int)fd - 1, 0);
    close_range((unsigned int)fd + 1, ~0U, 0);
    argv++; /* from here on argv[1] is "--" and argv[2] the command */

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, &old);
    /* Ask for SIGUSR1 when kle dies; if it died before that, the parent is
     * already someone else. */
    if (prctl(PR_SET_PDEATHSIG, SIGUSR1) < 0 || getppid() != (pid_t)ppid) {
        kill(0, SIGKILL);
        _exit(1);
    }

    child = fork();
    if (child < 0) {
        fprintf(stderr, "kle: cannot start %s: fork: %s\n", argv[2], strerror(errno));
        return 127;
    }
    if (child == 0) {
        /* Same process group as the shim, so kle's signals reach both. */
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        for (int s = 1; s < NSIG; s++)
            sigaction(s, &sa, NULL);
        sigemptyset(&old);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(fd);
        execvp(argv[2], argv + 2);
        fprintf(stderr, "kle: cannot run %s: %s\n", argv[2], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&set, &si);
        if (sig < 0)
            continue;
        if (sig == SIGUSR1) {
            /* kle is gone: nothing may keep running. */
            kill(0, SIGKILL);
            _exit(1);
        }
        if (sig == SIGCHLD) {
            int status;
            pid_t p;
            while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
                if (p == child) {
                    char line[32];
                    int n = snprintf(line, sizeof(line), "%d\n", status);
                    if (write(fd, line, (size_t)n) < 0) {
                        /* kle is gone; the group is killed below anyway. */
                    }
                    /* Leftover descendants in the group die with the shim. */
                    kill(0, SIGKILL);
                    _exit(0);
                }
            }
        }
        /* SIGTERM, SIGINT: meant for the command, which gets them too. */
    }
}
