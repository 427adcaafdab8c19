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
    assert_non_null(strstr(err, "--grace 6s must be shorter than --lease-duration 15s - "
                                "--renew-deadline 10s = 5s"));
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
