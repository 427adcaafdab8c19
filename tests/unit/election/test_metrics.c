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
    /* Version 1: client-go's families only. */
    kle_elector_stats a, b;
    assert_int_equal(kle_elector_stats_init(&a, 1), 0);
    assert_int_equal(kle_elector_stats_init(&b, 1), 0);
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

/*
 * Stats of versions 2 and 3 add what the elector knows: the watch
 * stream's state and restarts, and for an elector that has led its fencing
 * token and last renewal time; a mix of versions stays a valid exposition
 * (each family once, samples only for the electors that have the member).
 */
static void test_metrics__versions_2_and_3_add_watch_token_and_renewal(void **state)
{
    (void)state;
    kle_elector_stats v3 = KLE_ELECTOR_STATS_INIT, never = KLE_ELECTOR_STATS_INIT, v1, v2;
    assert_int_equal(kle_elector_stats_init(&v1, 1), 0);
    assert_int_equal(kle_elector_stats_init(&v2, 2), 0);
    v3.leader = 1;
    v3.acquisitions = 2;
    v3.token = 7;
    v3.last_renew_wall_ns = INT64_C(1767225600123456789);
    v3.watching = 1;
    v3.watch_restarts = 4;
    v2.watch_restarts = 1;
    const char *names[] = {"a", "b", "c", "d"};
    const kle_elector_stats *stats[] = {&v3, &never, &v1, &v2};
    char *text = NULL;
    assert_int_equal(kle_metrics_format(&text, names, stats, 4), 0);
    assert_non_null(strstr(text, "\n# TYPE kle_watch_stream_up gauge\n"
                                 "kle_watch_stream_up{name=\"a\"} 1\n"
                                 "kle_watch_stream_up{name=\"b\"} 0\n"
                                 "kle_watch_stream_up{name=\"d\"} 0\n"));
    assert_non_null(strstr(text, "\n# TYPE kle_watch_stream_restarts_total counter\n"
                                 "kle_watch_stream_restarts_total{name=\"a\"} 4\n"
                                 "kle_watch_stream_restarts_total{name=\"b\"} 0\n"
                                 "kle_watch_stream_restarts_total{name=\"d\"} 1\n"));
    /* Only an elector that has led has a token and a renewal time. */
    assert_non_null(strstr(text, "\n# TYPE kle_leader_fencing_token gauge\n"
                                 "kle_leader_fencing_token{name=\"a\"} 7\n#"));
    assert_non_null(
        strstr(text, "\n# TYPE kle_leader_last_renewal_timestamp_seconds gauge\n"
                     "kle_leader_last_renewal_timestamp_seconds{name=\"a\"} 1767225600.123\n#"));
    assert_non_null(strstr(text, "# HELP kle_leader_fencing_token "));
    assert_int_equal(promtool_check(text), 0);
    kle_free(text);

    /* None has led: no token family at all (not an empty one). */
    const kle_elector_stats *one[] = {&never};
    assert_int_equal(kle_metrics_format(&text, names, one, 1), 0);
    assert_null(strstr(text, "kle_leader_fencing_token"));
    assert_null(strstr(text, "kle_leader_last_renewal"));
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

/* Inside the term: the leader's own view of its stats, a few renewals in. */
static kle_elector_stats in_term;
static int64_t wall_in_term;

static void lead_a_while(kle_leading *l, void *d)
{
    kle_clock *clock = d;
    kle_elector *e = kle_leading_elector(l);
    /* Five seconds of the fake clock: two renewals at 2 s and 4 s. */
    assert_int_equal(kle_leading_wait_ns(l, KLE_SEC(5)), KLE_ETIMEOUT);
    in_term.version = KLE_ELECTOR_STATS_VERSION;
    assert_int_equal(kle_elector_get_stats(&in_term, e), 0);
    wall_in_term = kle_clock_wall_ns(clock);
    kle_elector_stop(e);
}

/*
 * Stats version 3: the fencing token of the term (the takeover of a record
 * at 4 transitions writes 5) and the renewTime of the last renewal; both
 * stay after the term, with leader 0. A version-2 caller gets neither.
 */
static void test_metrics__stats_carry_token_and_last_renewal(void **state)
{
    (void)state;
    kle_fake_clock_opts co = KLE_FAKE_CLOCK_OPTS_INIT;
    co.auto_advance = 1;
    kle_clock *clock;
    kle_fake_store *store;
    kle_lock *lock;
    assert_int_equal(kle_fake_clock_new(&clock, &co), 0);
    assert_int_equal(kle_fake_store_new(&store, clock), 0);
    kle_record old = KLE_RECORD_INIT;
    assert_int_equal(kle_record_set_holder(&old, "gone", 4), 0);
    old.lease_duration_seconds = 1;
    old.leader_transitions = 4;
    old.acquire_time_ns = old.renew_time_ns = kle_clock_wall_ns(clock) - KLE_SEC(60);
    assert_int_equal(kle_fake_store_put(store, &old), 0);
    kle_record_dispose(&old);
    assert_int_equal(kle_fake_lock_new(&lock, store, "me", "default/token"), 0);
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = lock;
    cfg.clock = clock;
    cfg.callbacks.on_started_leading = lead_a_while;
    cfg.callbacks.on_stopped_leading = stopped;
    cfg.callbacks.data = clock;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &cfg), 0);
    kle_elector_stats before = KLE_ELECTOR_STATS_INIT;
    assert_int_equal(kle_elector_get_stats(&before, e), 0);
    assert_int_equal(before.acquisitions, 0);
    assert_int_equal(before.last_renew_wall_ns, 0);
    assert_int_equal(kle_fake_clock_join(clock), 0);
    assert_int_equal(kle_elector_run(e), 0);
    kle_fake_clock_leave(clock);

    assert_int_equal(in_term.leader, 1);
    assert_int_equal(in_term.token, 5);
    /* The last renewal was at most a retry period (2 s) before. */
    assert_true(in_term.last_renew_wall_ns > wall_in_term - KLE_SEC(2) - KLE_MS(1));
    assert_true(in_term.last_renew_wall_ns <= wall_in_term);
    kle_record stored = KLE_RECORD_INIT;
    kle_elector_stats after = KLE_ELECTOR_STATS_INIT;
    assert_int_equal(kle_elector_get_stats(&after, e), 0);
    assert_int_equal(after.leader, 0);
    assert_int_equal(after.token, 5);
    assert_true(after.last_renew_wall_ns >= in_term.last_renew_wall_ns);
    assert_int_equal(kle_fake_store_peek(&stored, NULL, store), 0);
    assert_int_equal(stored.leader_transitions, 5);
    kle_record_dispose(&stored);
    /* The metrics say the same. */
    char *text = NULL, want[128];
    assert_int_equal(kle_elector_metrics(&text, e), 0);
    assert_non_null(strstr(text, "\nkle_leader_fencing_token{name=\"default/token\"} 5\n"));
    snprintf(want, sizeof(want),
             "\nkle_leader_last_renewal_timestamp_seconds{name=\"default/token\"} %lld.",
             (long long)(after.last_renew_wall_ns / KLE_NS_PER_SEC));
    assert_non_null(strstr(text, want));
    assert_int_equal(promtool_check(text), 0);
    kle_free(text);
    /* A version-2 caller's struct ends before them: nothing written there. */
    struct {
        kle_elector_stats s;
        char guard[16];
    } v2;
    memset(&v2, 0x5a, sizeof(v2));
    assert_int_equal(kle_elector_stats_init(&v2.s, 2), 0);
    assert_int_equal(kle_elector_get_stats(&v2.s, e), 0);
    assert_int_equal(v2.s.acquisitions, 1);
    const unsigned char *tail = (const unsigned char *)&v2.s.token;
    for (size_t i = 0; i < sizeof(v2) - offsetof(kle_elector_stats, token); i++)
        assert_int_equal(tail[i], 0x5a);
    kle_elector_free(e);
    kle_fake_store_free(store);
    kle_clock_free(clock);
}

int main(void)
{
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics__format_is_client_go_names_and_passes_promtool),
        cmocka_unit_test(test_metrics__versions_2_and_3_add_watch_token_and_renewal),
        cmocka_unit_test(test_metrics__promtool_refuses_a_broken_exposition),
        cmocka_unit_test(test_metrics__arguments_are_checked),
        cmocka_unit_test(test_metrics__elector_label_defaults_to_the_describe),
        cmocka_unit_test(test_metrics__stats_carry_token_and_last_renewal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
