/* The process tree from /proc (proctree.h). libc only: kle-supervise links it. */
#include "proctree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_proc_scan(const char *proc_root, cli_proc **out, size_t *count)
{
    size_t n = 0, cap = 1024;
    cli_proc *procs = malloc(cap * sizeof(*procs));
    DIR *d;
    struct dirent *e;
    *out = NULL;
    *count = 0;
    if (!procs)
        return -1;
    if (!(d = opendir(proc_root))) {
        int err = errno;
        free(procs);
        errno = err;
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096], buf[512];
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 0 || e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "%s/%ld/stat", proc_root, pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        /* "pid (comm) state ppid pgrp ...": comm may hold spaces and ')'. */
        char *rp = strrchr(buf, ')');
        char state;
        long ppid, pgrp;
        if (!rp || sscanf(rp + 1, " %c %ld %ld", &state, &ppid, &pgrp) != 3)
            continue;
        if (n == cap) {
            cli_proc *more = cap < ((size_t)-1) / 2 / sizeof(*procs)
                                 ? realloc(procs, 2 * cap * sizeof(*procs))
                                 : NULL;
            if (!more) {
                closedir(d);
                free(procs);
                errno = ENOMEM;
                return -1;
            }
            procs = more;
            cap *= 2;
        }
        procs[n].pid = (pid_t)pid;
        procs[n].ppid = (pid_t)ppid;
        procs[n].pgrp = (pid_t)pgrp;
        n++;
    }
    closedir(d);
    *out = procs;
    *count = n;
    return 0;
}

static int by_pid(const void *a, const void *b)
{
    pid_t x = ((const cli_proc *)a)->pid, y = ((const cli_proc *)b)->pid;
    return (x > y) - (x < y);
}

static long find(const cli_proc *procs, size_t n, pid_t pid)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (procs[mid].pid == pid)
            return (long)mid;
        if (procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t cli_proc_descendants(cli_proc *procs, size_t n, pid_t root, unsigned char *mark)
{
    size_t found = 0;
    if (n)
        qsort(procs, n, sizeof(*procs), by_pid);
    memset(mark, 0, n);
    /* Passes until nothing new: a child usually has a higher pid than its
     * parent, so in pid order one pass marks most chains and the next
     * confirms; each pass is n binary searches, and needs no memory. */
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (mark[i] || procs[i].pid == root)
                continue;
            long parent = procs[i].ppid == root ? -2 : find(procs, n, procs[i].ppid);
            if (parent == -2 || (parent >= 0 && mark[parent])) {
                mark[i] = 1;
                found++;
                changed = 1;
            }
        }
    }
    return found;
}

int cli_signal_descendants(pid_t root, int sig, int outside_group_only, pid_t group)
{
    cli_proc *procs;
    size_t n;
    if (cli_proc_scan("/proc", &procs, &n) < 0)
        return -1;
    unsigned char *mark = malloc(n ? n : 1);
    if (!mark) {
        free(procs);
        return -1;
    }
    size_t found = cli_proc_descendants(procs, n, root, mark);
    for (size_t i = 0; i < n; i++)
        if (mark[i] && !(outside_group_only && procs[i].pgrp == group))
            kill(procs[i].pid, sig);
    free(mark);
    free(procs);
    return (int)found;
}
