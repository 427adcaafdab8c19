/* Unit tests of kle's flag parsing and Go durations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli.h"

static void test_opts__go_durations(void **state)
{
    int64_t ms;
    (void)state;
    assert_int_equal(cli_parse_duration(&ms, "15s"), 0);
    assert_int_equal(ms, 15000);
    assert_int_equal(cli_parse_duration(&ms, "1m30s"), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(cli_parse_duration(&ms, "1.5s"), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(cli_parse_duration(&ms, "300ms"), 0);
    assert_int_equal(ms, 300);
    assert_int_equal(cli_parse_duration(&ms, "1h"), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(cli_parse_duration(&ms, "2000000us"), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(cli_parse_duration(&ms, "0"), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(cli_parse_duration(&ms, ".5s"), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(cli_parse_duration(&ms, "15"), -1);
    assert_int_equal(cli_parse_duration(&ms, ""), -1);
    assert_int_equal(cli_parse_duration(&ms, "-1s"), -1);
    assert_int_equal(cli_parse_duration(&ms, "1d"), -1);
    assert_int_equal(cli_parse_duration(&ms, "s"), -1);
    assert_int_equal(cli_parse_duration(&ms, "1s "), -1);
}

static void test_opts__format_duration(void **state)
{
    char b[32];
    (void)state;
    cli_format_duration(b, sizeof(b), 15000);
    assert_string_equal(b, "15s");
    cli_format_duration(b, sizeof(b), 1500);
    assert_string_equal(b, "1.5s");
    cli_format_duration(b, sizeof(b), 250);
    assert_string_equal(b, "250ms");
    cli_format_duration(b, sizeof(b), 1001);
    assert_string_equal(b, "1.001s");
}

static int parse(cli_opts *o, char *err, size_t n, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, n);
    argv[argc++] = "kle";
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    static char *keep[32];
    memcpy(keep, argv, sizeof(keep));
    return cli_parse(o, argc, keep, err, n);
}

static void test_opts__run_defaults_and_aliases(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    unsetenv("KLE_GRACE");
    unsetenv("KLE_LEASE_DURATION");
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--", "true", NULL), 0);
    assert_int_equal(o.lease_duration_ms, 15000);
    assert_int_equal(o.renew_deadline_ms, 10000);
    assert_int_equal(o.retry_period_ms, 2000);
    assert_int_equal(o.grace_ms, 3000);
    assert_string_equal(o.resource_lock, "leases");
    assert_int_equal(o.release_on_cancel, 1);
    assert_string_equal(o.argv_child[0], "true");
    /* Run once, as consul lock: the command's exit ends kle. */
    assert_int_equal(o.on_exit, CLI_ON_EXIT_EXIT);
    assert_int_equal(o.leader_elect, 1);
    assert_int_equal(o.timeout_ms, 0);

    assert_int_equal(parse(&o, err, sizeof(err), "run", "--leader-elect-resource-name=y",
                           "--leader-elect-lease-duration", "4s", "--leader-elect-renew-deadline",
                           "3s", "--leader-elect-retry-period=1s", "--on-exit", "restart", "sleep",
                           "1", NULL),
                     0);
    assert_string_equal(o.lock_name, "y");
    assert_int_equal(o.lease_duration_ms, 4000);
    /* The default grace shrinks to half the 1 s window. */
    assert_int_equal(o.grace_ms, 500);
    assert_int_equal(o.on_exit, CLI_ON_EXIT_RESTART);
    assert_string_equal(o.argv_child[0], "sleep");
}

static void test_opts__follow_mode(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    unsetenv("KLE_FOLLOW");
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--", "true", NULL), 0);
    assert_int_equal(o.follow_poll, 0);
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--follow", "poll", "true", NULL),
        0);
    assert_int_equal(o.follow_poll, 1);
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--follow=watch", "true", NULL), 0);
    assert_int_equal(o.follow_poll, 0);
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--follow", "push", "true", NULL),
        CLI_EXIT_USAGE);
    assert_string_equal(err, "kle: --follow: invalid value \"push\" (watch or poll)");
    setenv("KLE_FOLLOW", "poll", 1);
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--", "true", NULL), 0);
    assert_int_equal(o.follow_poll, 1);
    unsetenv("KLE_FOLLOW");
}

static void test_opts__bad_values_are_usage_errors(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--grace", "6s", "--", "true", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--grace 6s must be at most --lease-duration 15s - "
                                "--renew-deadline 10s - 100ms = 4.9s"));
    /* The grace leaves 100 ms of the window for the kill to take effect. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--grace", "4.901s",
                           "--", "true", NULL),
                     CLI_EXIT_USAGE);
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--grace", "4.9s", "--",
                           "true", NULL),
                     0);
    assert_int_equal(o.grace_ms, 4900);
    assert_int_equal(parse(&o, err, sizeof(err), "status", "--lock-name", "x", "-o", "yaml", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "yaml"));
    assert_int_equal(parse(&o, err, sizeof(err), "status", "--identity", "x", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "unknown flag \"--identity\""));
    setenv("KLE_RETRY_PERIOD", "fast", 1);
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--", "true", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "$KLE_RETRY_PERIOD"));
    /* A flag wins over its environment variable. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--retry-period", "1s",
                           "--", "true", NULL),
                     0);
    assert_int_equal(o.retry_period_ms, 1000);
    unsetenv("KLE_RETRY_PERIOD");
}

static void test_opts__durations_have_an_upper_bound(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    /* 4294967297 s used to be written as leaseDurationSeconds: 1. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "4294967297s", "--", "true", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--lease-duration 4294967297s: too long (at most 2147483647s"));
    assert_non_null(strstr(err, "32-bit"));
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x",
                           "--leader-elect-lease-duration", "2147483648s", "--", "true", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--leader-elect-lease-duration 2147483648s: too long"));
    static const char *const flags[] = {"--renew-deadline", "--retry-period", "--grace",
                                        "--healthz-timeout", "--call-timeout"};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", flags[i], "600000h",
                               "--", "true", NULL),
                         CLI_EXIT_USAGE);
        assert_non_null(strstr(err, flags[i]));
        assert_non_null(strstr(err, "too long"));
    }
    /* The largest accepted lease fits the record. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "2147483647s", "--", "true", NULL),
                     0);
    assert_int_equal(o.lease_duration_ms / 1000, INT32_MAX);
}

static void test_opts__boolean_flags_take_no_separate_value(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    /* This used to run /bin/false as the command. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--release-on-cancel",
                           "false", "--", "./cmd", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--release-on-cancel takes no separate value"));
    assert_non_null(strstr(err, "--release-on-cancel=false"));
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--release-on-cancel",
                           "./cmd", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "put -- before the command"));
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x",
                           "--release-on-cancel=false", "--", "./cmd", NULL),
                     0);
    assert_int_equal(o.release_on_cancel, 0);
    assert_string_equal(o.argv_child[0], "./cmd");
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--release-on-cancel", "--lock-name", "x",
                           "--", "./cmd", NULL),
                     0);
    assert_int_equal(o.release_on_cancel, 1);
}

static void test_opts__backoff_doubles_up_to_a_cap(void **state)
{
    (void)state;
    assert_int_equal(cli_backoff_ms(300, 0), 300);
    assert_int_equal(cli_backoff_ms(300, 1), 600);
    assert_int_equal(cli_backoff_ms(300, 4), 4800);
    assert_int_equal(cli_backoff_ms(300, 7), 30000);
    assert_int_equal(cli_backoff_ms(300, 1000), 30000);
    assert_int_equal(cli_backoff_ms(2000, 3), 16000);
    /* A retry period above the cap is kept as it is. */
    assert_int_equal(cli_backoff_ms(60000, 5), 60000);
}

/* /healthz's bound (docs/cli.md): with the defaults 15s/10s/2s, grace 3s,
 * healthz-timeout 20s, B = max(4.4 + 6 x 5, 3 + 1, 10) + 20 = 54.4 s; the
 * grace term wins when it is the longest. */
static void test_opts__healthz_bound(void **state)
{
    (void)state;
    cli_opts o;
    char err[256];
    char *a[] = {"kle", "run", "--lock-name", "x", "--", "true"};
    assert_int_equal(cli_parse(&o, 6, a, err, sizeof(err)), 0);
    assert_int_equal(cli_healthz_bound_ms(&o), 54400);
    o.grace_ms = 40000;
    assert_int_equal(cli_healthz_bound_ms(&o), 61000);
    /* --call-timeout does not move it (a longer one lets /healthz catch hung requests). */
    o.call_timeout_ms = 600000;
    assert_int_equal(cli_healthz_bound_ms(&o), 61000);
}

/*
 * The floor of kle run's timings: a retry period of 100 ms, a renew
 * deadline of 1 s, 500 ms between renew deadline and lease; each refusal
 * names the flag, the floor and why. The library's own rules still hold.
 */
static void test_opts__timings_below_the_floor_are_refused(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "1s", "--renew-deadline", "3ms", "--retry-period", "2ms", "--", "true",
                           NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--retry-period 2ms is below kle's floor of 100ms"));
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "2s", "--renew-deadline", "900ms", "--retry-period", "100ms", "--",
                           "true", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--renew-deadline 900ms is below kle's floor of 1s"));
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "2s", "--renew-deadline", "1.6s", "--retry-period", "1s", "--", "true",
                           NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--lease-duration 2s - --renew-deadline 1.6s = 400ms is below "
                                "kle's floor of 500ms"));
    /* At the floor: accepted, with half the window as the default grace. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--lease-duration",
                           "2s", "--renew-deadline", "1.5s", "--retry-period", "100ms", "--",
                           "true", NULL),
                     0);
    assert_int_equal(o.grace_ms, 250);
    /* Without an election, no lock name is needed; election-only flags are refused. */
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--leader-elect=false", "--", "true", NULL),
                     0);
    assert_int_equal(o.leader_elect, 0);
    assert_int_equal(parse(&o, err, sizeof(err), "run", "--leader-elect=false", "--timeout", "5s",
                           "--", "true", NULL),
                     CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--timeout needs an election"));
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "x", "--timeout", "90s", "true", NULL),
        0);
    assert_int_equal(o.timeout_ms, 90000);
}

/* What the API server would refuse is refused before connecting. */
static void test_opts__names_are_checked_locally(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    assert_int_equal(
        parse(&o, err, sizeof(err), "run", "--lock-name", "Bad_Name", "--", "true", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--lock-name \"Bad_Name\": not a valid object name"));
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "--namespace", "a.b", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--namespace \"a.b\": not a valid namespace"));
    assert_int_equal(
        parse(&o, err, sizeof(err), "transfer", "--lock-name", "x", "--to", "a\nb", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--to: "));
    assert_int_equal(
        parse(&o, err, sizeof(err), "transfer", "--lock-name", "x", "--to", "b", "--yes", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--yes confirms --force"));
    assert_int_equal(parse(&o, err, sizeof(err), "transfer", "--lock-name", "x", "--to", "b",
                           "--force", "--yes", NULL),
                     0);
    assert_int_equal(o.yes, 1);
    assert_int_equal(o.force, 1);
    assert_int_equal(cli_valid_name("a-b.c-1", 0), 1);
    assert_int_equal(cli_valid_name("a--b", 0), 1);
    assert_int_equal(cli_valid_name("a.b", 1), 0);
    assert_int_equal(cli_valid_name("-a", 0), 0);
    assert_int_equal(cli_valid_name("a-", 0), 0);
    assert_int_equal(cli_valid_name("a.-b", 0), 0);
    assert_int_equal(cli_valid_name("a-.b", 0), 0);
    assert_int_equal(cli_valid_name("a..b", 0), 0);
    assert_int_equal(cli_valid_name("A", 0), 0);
    assert_int_equal(cli_valid_name("", 0), 0);
    char long_name[300];
    memset(long_name, 'a', sizeof(long_name));
    long_name[253] = '\0';
    assert_int_equal(cli_valid_name(long_name, 0), 1);
    long_name[253] = 'a';
    long_name[254] = '\0';
    assert_int_equal(cli_valid_name(long_name, 0), 0);
    long_name[63] = '\0';
    assert_int_equal(cli_valid_name(long_name, 1), 1);
    long_name[63] = 'a';
    long_name[64] = '\0';
    assert_int_equal(cli_valid_name(long_name, 1), 0);
}

/* kle status: --changes needs -w, --is-leader does not go with it. */
static void test_opts__status_flags(void **state)
{
    cli_opts o;
    char err[512];
    (void)state;
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "-w", "--changes", "all", NULL),
        0);
    assert_int_equal(o.changes_all, 1);
    assert_int_equal(o.changes_set, 1);
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "--changes", "holder", NULL),
        CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "give -w too"));
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "-w", "--changes", "some", NULL),
        CLI_EXIT_USAGE);
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "--is-leader", "me", NULL), 0);
    assert_string_equal(o.is_leader, "me");
    assert_int_equal(
        parse(&o, err, sizeof(err), "status", "--lock-name", "x", "--is-leader", "me", "-w", NULL),
        CLI_EXIT_USAGE);
    /* Bare kle names every command. */
    char *bare[] = {"kle", NULL};
    assert_int_equal(cli_parse(&o, 1, bare, err, sizeof(err)), CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "run, status, transfer, help"));
}

/* Ages as kubectl prints them (apimachinery's HumanDuration). */
static void test_opts__human_durations(void **state)
{
    char b[32];
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {{-3000, "<invalid>"},
                 {-1500, "0s"},
                 {0, "0s"},
                 {999, "0s"},
                 {59000, "59s"},
                 {119999, "119s"},
                 {120000, "2m"},
                 {347000, "5m47s"},
                 {599000, "9m59s"},
                 {600000, "10m"},
                 {10799000, "179m"},
                 {10800000, "3h"},
                 {11520000, "3h12m"},
                 {28800000, "8h"},
                 {172799000, "47h"},
                 {190800000, "2d5h"},
                 {691200000, "8d"},
                 {INT64_C(63072000000), "2y"},
                 {INT64_C(63158400000), "2y1d"},
                 {INT64_C(252288000000), "8y"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cli_human_duration(b, sizeof(b), cases[i].ms);
        assert_string_equal(b, cases[i].want);
    }
}

/* kle status has no --lease-duration: it reads the record's. */
static void test_opts__status_has_no_lease_duration(void **state)
{
    (void)state;
    cli_opts o;
    char err[256];
    char *a[] = {"kle", "status", "--lock-name", "x", "--lease-duration", "20s"};
    assert_int_equal(cli_parse(&o, 6, a, err, sizeof(err)), CLI_EXIT_USAGE);
    assert_non_null(strstr(err, "--lease-duration"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts__healthz_bound),
        cmocka_unit_test(test_opts__status_has_no_lease_duration),
        cmocka_unit_test(test_opts__go_durations),
        cmocka_unit_test(test_opts__format_duration),
        cmocka_unit_test(test_opts__run_defaults_and_aliases),
        cmocka_unit_test(test_opts__follow_mode),
        cmocka_unit_test(test_opts__bad_values_are_usage_errors),
        cmocka_unit_test(test_opts__durations_have_an_upper_bound),
        cmocka_unit_test(test_opts__boolean_flags_take_no_separate_value),
        cmocka_unit_test(test_opts__backoff_doubles_up_to_a_cap),
        cmocka_unit_test(test_opts__timings_below_the_floor_are_refused),
        cmocka_unit_test(test_opts__names_are_checked_locally),
        cmocka_unit_test(test_opts__status_flags),
        cmocka_unit_test(test_opts__human_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
