/*
 * kle_metrics_format() and kle_elector_metrics(): client-go's metric names
 * in the Prometheus text format, checked by promtool (Debian's prometheus
 * package, scripts/deps).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

/* Runs `promtool check metrics` on @p text; returns its exit status. */
static int promtool_check(const char *text)
{
    char path[] = "/tmp/kle-metrics-XXXXXX", cmd[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    return rc;
}

static void test_metrics__format_is_client_go_names_and_passes_promtool(void **state)
{
    (void)state;
    kle_elector_stats a = KLE_ELECTOR_STATS_INIT, b = KLE_ELECTOR_STATS_INIT;
    a.leader = 1;
    a.slowpath_total = 3;
    b.slowpath_total = 12345678901234ULL;
    const char *names[] = {"my \"lock\"\\\nx", "other"};
    const kle_elector_stats *stats[] = {&a, &b};
    char *text = NULL;
    assert_int_equal(kle_metrics_format(&text, names, stats, 2), 0);
    char want[2048];
    snprintf(want, sizeof(want),
             "# HELP leader_election_master_status Gauge of if the reporting system is master of "
             "the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string "
             "used to identify the lease. Please make sure to group by name.\n"
             "# TYPE leader_election_master_status gauge\n"
             "leader_election_master_status{name=\"my \\\"lock\\\"\\\\\\nx\"} 1\n"
             "leader_election_master_status{name=\"other\"} 0\n"
             "# HELP leader_election_slowpath_total Total number of slow path exercised in "
             "renewing leader leases. 'name' is the string used to identify the lease. Please "
             "make sure to group by name.\n"
             "# TYPE leader_election_slowpath_total counter\n"
             "leader_election_slowpath_total{name=\"my \\\"lock\\\"\\\\\\nx\"} 3\n"
             "leader_election_slowpath_total{name=\"other\"} 12345678901234\n"
             "# HELP kle_log_dropped_lines_total Log lines dropped because the log output was "
             "blocked and the log queue full.\n"
             "# TYPE kle_log_dropped_lines_total counter\n"
             "kle_log_dropped_lines_total %llu\n",
             (unsigned long long)kle_log_dropped());
    assert_string_equal(text, want);
    assert_int_equal(promtool_check(text), 0);
    kle_free(text);

    /* No electors: the log counter alone, still valid. */
    assert_int_equal(kle_metrics_format(&text, NULL, NULL, 0), 0);
    assert_non_null(strstr(text, "kle_log_dropped_lines_total "));
    assert_null(strstr(text, "leader_election"));
    assert_int_equal(promtool_check(text), 0);
    kle_free(text);
}

/* The check itself works: promtool refuses a malformed exposition. */
static void test_metrics__promtool_refuses_a_broken_exposition(void **state)
{
    (void)state;
    assert_int_not_equal(promtool_check("# TYPE x counter\nx{name=\"a} 1\n"), 0);
}

static void test_metrics__arguments_are_checked(void **state)
{
    (void)state;
    kle_elector_stats s = KLE_ELECTOR_STATS_INIT;
    const kle_elector_stats *sp = &s;
    const char *name = "n", *none = NULL;
    char *text = NULL;
    assert_int_equal(kle_metrics_format(NULL, &name, &sp, 1), KLE_EINVAL);
    assert_int_equal(kle_metrics_format(&text, &none, &sp, 1), KLE_EINVAL);
    s.version = 0;
    assert_int_equal(kle_metrics_format(&text, &name, &sp, 1), KLE_EVERSION);
    assert_null(text);
    /* A version-1 stats (kle_elector_stats_init) is accepted. */
    assert_int_equal(kle_elector_stats_init(&s, 1), 0);
    assert_int_equal(kle_metrics_format(&text, &name, &sp, 1), 0);
    kle_free(text);
    assert_int_equal(kle_elector_metrics(&text, NULL), KLE_EINVAL);
}

static void started(kle_leading *l, void *d)
{
    (void)l, (void)d;
}
static void stopped(void *d)
{
    (void)d;
}

/* Without config.name, an elector's label is its lock's describe. */
static void test_metrics__elector_label_defaults_to_the_describe(void **state)
{
    (void)state;
    kle_fake_store *store;
    kle_lock *lock;
    kle_elector *e;
    assert_int_equal(kle_fake_store_new(&store, NULL), 0);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", "ns/lock-a"), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = lock;
    c.callbacks.on_started_leading = started;
    c.callbacks.on_stopped_leading = stopped;
    assert_int_equal(kle_elector_new(&e, &c), 0);
    char *text = NULL;
    assert_int_equal(kle_elector_metrics(&text, e), 0);
    assert_non_null(strstr(text, "\nleader_election_master_status{name=\"ns/lock-a\"} 0\n"));
    assert_non_null(strstr(text, "\nleader_election_slowpath_total{name=\"ns/lock-a\"} 0\n"));
    assert_int_equal(promtool_check(text), 0);
    kle_free(text);
    kle_elector_free(e);
    kle_fake_store_free(store);
}

int main(void)
{
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics__format_is_client_go_names_and_passes_promtool),
        cmocka_unit_test(test_metrics__promtool_refuses_a_broken_exposition),
        cmocka_unit_test(test_metrics__arguments_are_checked),
        cmocka_unit_test(test_metrics__elector_label_defaults_to_the_describe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
