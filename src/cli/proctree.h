/* The process tree from /proc: libc only (kle-supervise links it). */
#ifndef KLE_CLI_PROCTREE_H
#define KLE_CLI_PROCTREE_H

#include <stddef.h>
#include <sys/types.h>

typedef struct cli_proc {
    pid_t pid, ppid, pgrp;
} cli_proc;

/*
 * Reads every process under @p proc_root ("/proc": its numeric entries'
 * "stat" files) into a new array (*out, freed by the caller), however many
 * there are. Entries that vanish or cannot be read meanwhile are skipped.
 * Returns 0, or -1 with errno set (the directory cannot be read, or no
 * memory).
 */
int cli_proc_scan(const char *proc_root, cli_proc **out, size_t *n);

/*
 * Sorts @p procs by pid and sets mark[i] to 1 for each process descending
 * from @p root (root itself excluded), 0 for the others. Returns how many
 * descend from it.
 */
size_t cli_proc_descendants(cli_proc *procs, size_t n, pid_t root, unsigned char *mark);

/*
 * Sends @p sig to every descendant of @p root found in /proc; with
 * @p outside_group_only, only to those outside process group @p group.
 * Returns the number of descendants found, or -1 when /proc could not be
 * read (nothing was signalled).
 */
int cli_signal_descendants(pid_t root, int sig, int outside_group_only, pid_t group);

#endif
