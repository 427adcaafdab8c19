/*
 * What one elector on a built-in Kubernetes lock costs the process while it
 * leads, under the blocking API (kle_elector_run on the caller's thread):
 * at most two threads besides the caller's (the leading callback's and the
 * log drain's) and at most 10 descriptors in the whole process, watch mode
 * and poll mode, against a kle-apiserver this test starts. Watch mode goes
 * through an HTTP/2 front (nghttpx), as a real API server serves HTTP/2:
 * the watch and the calls share one connection there (over HTTP/1.1 the
 * watch holds a connection of its own, one descriptor more). The counts
 * are read from /proc after a few renewals, from the leading callback.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kle/kle.h"
#include "support/apiserver.h"

#define MAX_EXTRA_THREADS 2
#define MAX_DESCRIPTORS   10

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)))
        if (ent->d_name[0] != '.')
            n++;
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0); /* opendir's own descriptor */
}

/* Descriptors above 2 open now (the test harness's own are counted before). */
static int open_fds(void)
{
    return count_dir("/proc/self/fd") - 3;
}

typedef struct sample {
    kle_elector *e;
    int threads, fds, renewals_seen;
    char fd_list[1024];
} sample;

static void list_fds(char *out, size_t size)
{
    DIR *d = opendir("/proc/self/fd");
    size_t n = 0;
    out[0] = '\0';
    if (!d)
        return;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (ent->d_name[0] == '.' || atoi(ent->d_name) == dirfd(d))
            continue;
        char path[64], target[256];
        snprintf(path, sizeof(path), "/proc/self/fd/%s", ent->d_name);
        ssize_t len = readlink(path, target, sizeof(target) - 1);
        if (len < 0)
            continue;
        target[len] = '\0';
        n += (size_t)snprintf(out + n, n < size ? size - n : 0, "%s=%s ", ent->d_name, target);
        if (n >= size)
            break;
    }
    closedir(d);
}

static void lead(kle_leading *l, void *data)
{
    sample *s = data;
    /* A few renewals (retry period 300 ms) in steady state. */
    if (kle_leading_wait_ns(l, KLE_MS(1500)) == 0)
        return;
    s->threads = count_dir("/proc/self/task");
    s->fds = open_fds();
    list_fds(s->fd_list, sizeof(s->fd_list));
    kle_elector_stats st = KLE_ELECTOR_STATS_INIT;
    kle_elector_get_stats(&st, s->e);
    s->renewals_seen = (int)st.tries;
    kle_elector_stop(s->e);
    kle_leading_wait_ns(l, -1);
}

static void stopped(void *data)
{
    (void)data;
}

static void footprint(int follow)
{
    setenv("KLE_TEST_HTTP", follow == KLE_FOLLOW_WATCH ? "2" : "1", 1);
    kle_test_apiserver srv;
    assert_int_equal(kle_test_apiserver_start(&srv, NULL), 0);
    int fds_before = open_fds();
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = srv.kubeconfig;
    kle_client *client = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&client, &co), 0);
    kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
    lo.name = follow == KLE_FOLLOW_WATCH ? "footprint-watch" : "footprint-poll";
    lo.identity = "me";
    kle_lock *lock = NULL;
    assert_int_equal(kle_lock_new_by_name(&lock, "leases", client, &lo), 0);
    sample s;
    memset(&s, 0, sizeof(s));
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.lease_duration_ns = KLE_SEC(4);
    c.renew_deadline_ns = KLE_SEC(3);
    c.retry_period_ns = KLE_MS(300);
    c.follow = follow;
    c.callbacks.on_started_leading = lead;
    c.callbacks.on_stopped_leading = stopped;
    c.callbacks.data = &s;
    assert_int_equal(kle_elector_new(&s.e, &c), 0);
    assert_int_equal(kle_elector_run(s.e), 0);
    kle_elector_free(s.e);
    kle_client_free(client);
    assert_int_equal(kle_test_apiserver_stop(&srv), 0);

    /* The caller is this test's only thread of its own; a program's
     * descriptors are 0, 1 and 2 and what the library opens. */
    int extra_threads = s.threads - 1;
    int fds = 3 + s.fds - fds_before;
    print_message("%s mode: %d threads besides the caller's, %d descriptors in a process "
                  "(0-2 and the library's): %s\n",
                  follow == KLE_FOLLOW_WATCH ? "watch" : "poll", extra_threads, fds, s.fd_list);
    assert_true(s.renewals_seen >= 3);
    if (extra_threads > MAX_EXTRA_THREADS)
        fail_msg("%d threads besides the caller's while leading (at most %d)", extra_threads,
                 MAX_EXTRA_THREADS);
    if (fds > MAX_DESCRIPTORS)
        fail_msg("%d descriptors in the process while leading (at most %d): %s", fds,
                 MAX_DESCRIPTORS, s.fd_list);
}

static void test_footprint__watch_mode(void **state)
{
    (void)state;
    footprint(KLE_FOLLOW_WATCH);
}

static void test_footprint__poll_mode(void **state)
{
    (void)state;
    footprint(KLE_FOLLOW_POLL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_footprint__watch_mode),
        cmocka_unit_test(test_footprint__poll_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
