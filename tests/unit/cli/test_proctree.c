/*
 * The supervisor's process tree (src/cli/proctree.c) on a /proc laid out
 * in a temporary directory: every entry is read, however many there are
 * (the supervisor once stopped at 8,192 and left the rest of a command's
 * descendants unkilled), and the descendants of a process are found
 * through chains in any pid order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cli/proctree.h"

static char root[64];

static void entry(long pid, const char *comm, long ppid, long pgrp)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%ld", root, pid);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/%ld/stat", root, pid);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%ld (%s) S %ld %ld 0 0 -1 4194304 0 0 0 0\n", pid, comm, ppid, pgrp);
    fclose(f);
}

static void remove_tree(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

static void test_proctree__reads_every_entry_and_finds_every_descendant(void **state)
{
    (void)state;
    /* In memory where there is a tmpfs: 9,000 directories on a busy disk are slow. */
    snprintf(root, sizeof(root), "%s/kle-proc-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    assert_non_null(mkdtemp(root));
    /* 9,000 processes that are not ours, more than the old limit. */
    enum { OTHERS = 9000 };
    for (long pid = 2; pid < 2 + OTHERS; pid++)
        entry(pid, "other", 1, pid);
    /* The supervisor 50000 and its descendants: a chain, a command that
     * daemonized (its own group), and a parent with a higher pid than its
     * child (pids wrap around). A comm with spaces and ')' is read right. */
    entry(50000, "kle-supervise", 40000, 50000);
    entry(60000, "sh", 50000, 50000);
    entry(60001, "worker) (x", 60000, 50000);
    entry(60002, "sleep", 60001, 50000);
    entry(70000, "daemon", 50000, 70000);
    entry(9500, "wrapped", 70000, 70000);
    entry(9400, "grandchild", 9500, 70000);
    /* Not a process, not readable, or not a number: skipped. */
    char path[128];
    snprintf(path, sizeof(path), "%s/self", root);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/12345", root);
    assert_int_equal(mkdir(path, 0700), 0); /* no stat file: vanished meanwhile */
    snprintf(path, sizeof(path), "%s/sys", root);
    assert_int_equal(mkdir(path, 0700), 0);

    cli_proc *procs = NULL;
    size_t n = 0;
    assert_int_equal(cli_proc_scan(root, &procs, &n), 0);
    assert_int_equal(n, OTHERS + 7);
    unsigned char *mark = malloc(n);
    assert_non_null(mark);
    assert_int_equal(cli_proc_descendants(procs, n, 50000, mark), 6);
    long want[] = {60000, 60001, 60002, 70000, 9500, 9400};
    for (size_t i = 0; i < n; i++) {
        int expected = 0;
        for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++)
            expected |= procs[i].pid == want[k];
        assert_int_equal(mark[i], expected);
        if (procs[i].pid == 60001) {
            assert_int_equal(procs[i].ppid, 60000);
            assert_int_equal(procs[i].pgrp, 50000);
        }
    }
    /* Sorted by pid. */
    for (size_t i = 1; i < n; i++)
        assert_true(procs[i - 1].pid < procs[i].pid);
    /* A process of the chain's middle: only what is below it. */
    assert_int_equal(cli_proc_descendants(procs, n, 60000, mark), 2);
    free(mark);
    free(procs);
    remove_tree();
    /* No /proc: an error, nothing made up. */
    assert_int_equal(cli_proc_scan(root, &procs, &n), -1);
    assert_null(procs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proctree__reads_every_entry_and_finds_every_descendant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
