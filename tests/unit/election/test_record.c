/*
 * The record's strings with their lengths, identity rules, the int32
 * ranges, and the timestamp parser and formatter: dates that exist, instants
 * that fit, and a deterministic fuzz pass against an independent oracle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kle/errors.h"
#include "kle/record.h"

#define SEC KLE_NS_PER_SEC

static void test_record__holder_is_compared_with_its_length(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_record_set_holder(&r, "a\0b", 3), 0);
    assert_int_equal(kle_record_holder_len(&r), 3);
    assert_false(kle_record_holder_is(&r, "a"));
    assert_false(kle_record_holder_is(&r, "a\0b")); /* A C string cannot name it. */
    assert_false(kle_record_holder_is(&r, ""));

    kle_record a = KLE_RECORD_INIT;
    kle_record_set_string(&a.holder_identity, "a");
    assert_true(kle_record_holder_is(&a, "a"));
    assert_false(kle_record_holder_equal(&a, &r));
    assert_false(kle_record_holder_equal(&r, &a));
    assert_false(kle_record_equal(&a, &r));

    kle_record copy = KLE_RECORD_INIT;
    assert_int_equal(kle_record_copy(&copy, &r), 0);
    assert_int_equal(kle_record_holder_len(&copy), 3);
    assert_memory_equal(kle_record_holder(&copy), "a\0b", 4);
    assert_true(kle_record_holder_equal(&copy, &r));
    assert_true(kle_record_equal(&copy, &r));
    kle_record_set_holder(&copy, "a\0c", 3);
    assert_false(kle_record_holder_equal(&copy, &r));

    /* Released is "" whether NULL, set empty, or set with a length of 0. */
    kle_record empty = KLE_RECORD_INIT, set_empty = KLE_RECORD_INIT;
    kle_record_set_holder(&set_empty, "", 0);
    assert_true(kle_record_holder_is(&empty, NULL));
    assert_true(kle_record_holder_is(&set_empty, ""));
    assert_true(kle_record_holder_equal(&empty, &set_empty));
    assert_false(kle_record_holder_equal(&empty, &r));

    /* A length shorter than the C string (left over) never hides bytes. */
    kle_record stale = KLE_RECORD_INIT;
    kle_record_set_string(&stale.holder_identity, "abc");
    stale.holder_identity_len = 1;
    assert_false(kle_record_holder_is(&stale, "a"));
    assert_true(kle_record_holder_is(&stale, "abc"));

    kle_record_dispose(&r);
    kle_record_dispose(&a);
    kle_record_dispose(&copy);
    kle_record_dispose(&set_empty);
    kle_record_dispose(&stale);
    assert_null(r.holder_identity);
    assert_int_equal(r.holder_identity_len, 0);
}

static void test_record__optional_strings_are_compared_with_their_length(void **state)
{
    kle_record a = KLE_RECORD_INIT, b = KLE_RECORD_INIT;
    kle_record_set_holder(&a, "x", 1);
    kle_record_set_holder(&b, "x", 1);
    assert_int_equal(kle_record_set_bytes(&a.strategy, &a.strategy_len, "S\0one", 5), 0);
    assert_int_equal(kle_record_set_bytes(&b.strategy, &b.strategy_len, "S\0two", 5), 0);
    assert_false(kle_record_equal(&a, &b));
    kle_record_set_bytes(&b.strategy, &b.strategy_len, "S\0one", 5);
    assert_true(kle_record_equal(&a, &b));
    kle_record_set_bytes(&a.preferred_holder, &a.preferred_holder_len, "p\0q", 3);
    kle_record_set_bytes(&b.preferred_holder, &b.preferred_holder_len, "p", 1);
    assert_false(kle_record_equal(&a, &b));
    /* Absent and empty differ. */
    kle_record_set_bytes(&a.preferred_holder, &a.preferred_holder_len, NULL, 0);
    kle_record_set_bytes(&b.preferred_holder, &b.preferred_holder_len, "", 0);
    assert_false(kle_record_equal(&a, &b));
    assert_int_equal(kle_record_set_bytes(&a.strategy, &a.strategy_len, NULL, 2), KLE_EINVAL);
    assert_int_equal(kle_record_set_holder(&a, NULL, 0), KLE_EINVAL);
    kle_record c = KLE_RECORD_INIT;
    assert_int_equal(kle_record_copy(&c, &a), 0);
    assert_int_equal(c.strategy_len, 5);
    assert_memory_equal(c.strategy, "S\0one", 6);
    assert_null(c.preferred_holder);
    assert_true(kle_record_equal(&c, &a));
    kle_record_dispose(&a);
    kle_record_dispose(&b);
    kle_record_dispose(&c);
}

typedef struct {
    const char *id;
    const char *message;
} bad_identity;

static void test_record__identities_the_api_would_change_are_refused(void **state)
{
    const bad_identity bad[] = {
        {"", "an identity is required (it is empty)"},
        {"a\nb", "identity contains control character U+000A at byte 1: control characters are "
                 "not allowed"},
        {"\x1b[2J", "identity contains control character U+001B at byte 0: control characters are "
                    "not allowed"},
        {"a\x7f", "identity contains control character U+007F at byte 1: control characters are "
                  "not allowed"},
        {"ab\xc2\x9b", "identity contains control character U+009B at byte 2: control characters "
                       "are not allowed"},
        {"a\xff", "identity is not valid UTF-8 at byte 1 (0xff): the API server would store other "
                  "bytes"},
        {"\xc0\xaf", "identity is not valid UTF-8 at byte 0 (0xc0): the API server would store "
                     "other bytes"},
        {"x\xe0\x80\xaf", "identity is not valid UTF-8 at byte 1 (0xe0): the API server would "
                          "store other bytes"},
        {"\xed\xa0\x80", "identity is not valid UTF-8 at byte 0 (0xed): the API server would store "
                         "other bytes"},
        {"\xf4\x90\x80\x80", "identity is not valid UTF-8 at byte 0 (0xf4): the API server would "
                             "store other bytes"},
        {"abc\xe2\x82", "identity is not valid UTF-8 at byte 3 (0xe2): the API server would store "
                        "other bytes"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(kle_identity_check(bad[i].id), KLE_EINVAL);
        assert_string_equal(kle_error_last()->message, bad[i].message);
    }
    assert_int_equal(kle_identity_check(NULL), KLE_EINVAL);
    char id[KLE_IDENTITY_MAX + 2];
    memset(id, 'n', sizeof(id));
    id[KLE_IDENTITY_MAX] = '\0';
    assert_int_equal(kle_identity_check(id), 0);
    id[KLE_IDENTITY_MAX] = 'n';
    id[KLE_IDENTITY_MAX + 1] = '\0';
    assert_int_equal(kle_identity_check(id), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "identity of 1025 bytes is longer than the limit of 1024 bytes");
    assert_int_equal(kle_identity_check("node-a_5d1c"), 0);
    assert_int_equal(kle_identity_check("pod-7f9c.example.com_0f8e-uuid"), 0);
    assert_int_equal(kle_identity_check("n\xc3\xb6\xc3\xb0"
                                        "e \xe2\x82\xac \xf0\x9f\x90\xb3"),
                     0);
    assert_int_equal(kle_identity_check("\xc2\xa0"), 0); /* U+00A0, just past the C1 controls. */
}

static void test_record__int32_ranges_are_checked_never_truncated(void **state)
{
    kle_record r = KLE_RECORD_INIT;
    kle_record_set_holder(&r, "me", 2);
    r.lease_duration_seconds = 15;
    assert_int_equal(kle_record_validate(&r), 0);
    r.lease_duration_seconds = 2147483647;
    assert_int_equal(kle_record_validate(&r), 0);
    r.lease_duration_seconds = 0;
    assert_int_equal(kle_record_validate(&r), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "record: leaseDurationSeconds 0 is out of range (1..2147483647 for a held "
                        "lock)");
    r.lease_duration_seconds = -1;
    assert_int_equal(kle_record_validate(&r), KLE_EINVAL);
    /* Released: 0 is fine, negative is not. */
    kle_record_set_holder(&r, "", 0);
    r.lease_duration_seconds = 0;
    assert_int_equal(kle_record_validate(&r), 0);
    r.lease_duration_seconds = -5;
    assert_int_equal(kle_record_validate(&r), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "record: leaseDurationSeconds -5 is out of range (0..2147483647)");
    r.lease_duration_seconds = 1;
    r.leader_transitions = -1;
    assert_int_equal(kle_record_validate(&r), KLE_EINVAL);
    assert_string_equal(kle_error_last()->message,
                        "record: leaderTransitions -1 is out of range (0..2147483647)");
    kle_record_dispose(&r);
}

static int64_t parse_ok(const char *text)
{
    int64_t ns = 42;
    if (kle_time_parse(&ns, text) != 0)
        fail_msg("\"%s\" was refused: %s", text, kle_error_last()->message);
    return ns;
}

static void parse_bad(const char *text, const char *why)
{
    int64_t ns = 42;
    char want[256];
    assert_int_equal(kle_time_parse(&ns, text), KLE_EINVAL);
    assert_true(ns == 42);
    snprintf(want, sizeof(want), "\"%s\" is not a valid timestamp: %s", text, why);
    assert_string_equal(kle_error_last()->message, want);
}

static void test_record__time_parse_refuses_dates_that_do_not_exist(void **state)
{
    const char *no_day = "its day does not exist in that month";
    assert_true(parse_ok("2024-02-29T00:00:00Z") == INT64_C(1709164800) * SEC);
    assert_true(parse_ok("2000-02-29T00:00:00Z") == INT64_C(951782400) * SEC);
    parse_bad("2023-02-29T00:00:00Z", no_day);
    parse_bad("2100-02-29T00:00:00Z", no_day);
    parse_bad("1900-02-29T00:00:00Z", no_day);
    parse_bad("2026-02-31T00:00:00Z", no_day);
    parse_bad("2026-04-31T00:00:00Z", no_day);
    parse_bad("2026-11-00T00:00:00Z", no_day);
    parse_bad("2026-12-32T00:00:00Z", no_day);
    parse_bad("2026-00-10T00:00:00Z", "its month does not exist");
    parse_bad("2026-13-10T00:00:00Z", "its month does not exist");
    parse_bad("2026-11-21T24:00:00Z", "its time of day does not exist");
    parse_bad("2026-11-21T23:60:00Z", "its time of day does not exist");
    parse_bad("2016-12-31T23:59:60Z", "it is a leap second, which is not supported");
    parse_bad("2026-11-21T10:00:61Z", "its second does not exist");
    parse_bad("2026-11-21T10:00:00+24:00", "its UTC offset is out of range (-23:59..+23:59)");
    parse_bad("2026-11-21T10:00:00-05:60", "its UTC offset is out of range (-23:59..+23:59)");
    assert_true(parse_ok("2026-11-21T10:00:00+23:59") ==
                parse_ok("2026-11-21T10:01:00-00:00") - INT64_C(86400) * SEC);
    assert_true(parse_ok("2026-11-21 10:00:00.5") == INT64_C(1795255200) * SEC + SEC / 2);
    parse_bad("2026-11-21", "not an RFC 3339 timestamp");
    parse_bad("2026-11-21T10:00:00.Z", "not an RFC 3339 timestamp");
}

static void test_record__time_parse_refuses_instants_that_do_not_fit(void **state)
{
    const char *range = "it is out of range (1677-09-21T00:12:43.145224192Z .. "
                        "2262-04-11T23:47:16.854775807Z)";
    assert_true(parse_ok("2262-04-11T23:47:16.854775807Z") == INT64_MAX);
    assert_true(parse_ok("1677-09-21T00:12:43.145224192Z") == INT64_MIN);
    assert_true(parse_ok("2262-04-12T01:47:16.854775807+02:00") == INT64_MAX);
    parse_bad("2262-04-11T23:47:16.854775808Z", range);
    parse_bad("2262-04-11T23:47:17Z", range);
    parse_bad("2262-04-11T21:47:17-02:00", range);
    parse_bad("1677-09-21T00:12:43.145224191Z", range);
    parse_bad("1677-09-21T00:12:42Z", range);
    parse_bad("9999-12-31T23:59:59.999999999Z", range);
    parse_bad("0000-01-01T00:00:00Z", range);
    parse_bad("2300-01-01T00:00:00Z", range);
}

static void test_record__time_format_covers_every_int64(void **state)
{
    char buf[31];
    assert_int_equal(kle_time_format(buf, sizeof(buf), INT64_MAX, 9), 30);
    assert_string_equal(buf, "2262-04-11T23:47:16.854775807Z");
    assert_int_equal(kle_time_format(buf, sizeof(buf), INT64_MIN, 9), 30);
    assert_string_equal(buf, "1677-09-21T00:12:43.145224192Z");
    assert_int_equal(kle_time_format(buf, sizeof(buf), -1, 6), 27);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(kle_time_format(buf, 30, INT64_MAX, 9), KLE_EINVAL);
    assert_int_equal(kle_time_format(buf, sizeof(buf), 0, 10), KLE_EINVAL);
}

/* An independent oracle for "does this date exist": timegm normalises what does not. */
static int date_exists(int y, int m, int d)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = 12;
    time_t t = timegm(&tm);
    struct tm back;
    gmtime_r(&t, &back);
    return back.tm_year == y - 1900 && back.tm_mon == m - 1 && back.tm_mday == d;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_record__time_parse_agrees_with_timegm_on_every_day(void **state)
{
    /* Every day number 0..32 of every month of years 1678..2261. */
    for (int y = 1678; y <= 2261; y++)
        for (int m = 1; m <= 12; m++)
            for (int d = 0; d <= 32; d++) {
                char text[40];
                int64_t ns = 0;
                snprintf(text, sizeof(text), "%04d-%02d-%02dT12:00:00Z", y, m, d);
                int ok = kle_time_parse(&ns, text) == 0;
                int exists = d >= 1 && date_exists(y, m, d);
                if (ok != exists)
                    fail_msg("%s: parsed %d, exists %d", text, ok, exists);
                if (ok) {
                    struct tm tm = {0};
                    tm.tm_year = y - 1900;
                    tm.tm_mon = m - 1;
                    tm.tm_mday = d;
                    tm.tm_hour = 12;
                    assert_true(ns == (int64_t)timegm(&tm) * SEC);
                }
            }
}

/*
 * Deterministic fuzz: mutated timestamps never crash or overflow (UBSan
 * and ASan watch), and whatever is accepted formats back to the same
 * instant.
 */
static void test_record__time_parse_fuzz_round_trips(void **state)
{
    static const char *const seeds[] = {
        "2026-11-21T10:00:02.123456Z",    "2262-04-11T23:47:16.854775807Z",
        "1677-09-21T00:12:43.145224192Z", "2024-02-29 23:59:59.999999+23:59",
        "9999-12-31T23:59:59-23:59",      "0000-01-01T00:00:00.000000000000001Z",
    };
    static const char alphabet[] = "0123456789:-+.TtZz 9";
    int accepted = 0;
    for (int i = 0; i < 200000; i++) {
        char text[64];
        const char *seed = seeds[rnd() % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t len = strlen(seed);
        memcpy(text, seed, len + 1);
        int edits = 1 + (int)(rnd() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rnd() % len);
            switch (rnd() % 3) {
            case 0:
                text[at] = alphabet[rnd() % (sizeof(alphabet) - 1)];
                break;
            case 1: /* Truncate. */
                text[at] = '\0';
                len = at ? at : 1;
                break;
            default:
                text[at] = (char)(rnd() & 0xff);
                if (!text[at])
                    len = at ? at : 1;
                break;
            }
        }
        int64_t ns = 0;
        if (kle_time_parse(&ns, text) != 0)
            continue;
        accepted++;
        char back[40];
        int64_t again = 0;
        assert_true(kle_time_format(back, sizeof(back), ns, 9) > 0);
        if (kle_time_parse(&again, back) != 0 || again != ns)
            fail_msg("\"%s\" -> %lld -> \"%s\" does not read back", text, (long long)ns, back);
    }
    assert_true(accepted > 1000); /* The mutations do reach valid inputs. */
}

static void test_record__default_identity_is_host_and_uuid_or_pod_name(void **state)
{
    (void)state;
    unsetenv("POD_NAME");
    char host[256], *a, *b;
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    assert_int_equal(kle_default_identity(&a), 0);
    assert_int_equal(kle_default_identity(&b), 0);
    assert_string_not_equal(a, b); /* two processes on one host differ */
    assert_int_equal(strncmp(a, host, strlen(host)), 0);
    assert_int_equal(a[strlen(host)], '_');
    assert_int_equal(strlen(a), strlen(host) + 1 + 36);
    assert_int_equal(kle_identity_check(a), 0);
    kle_free(a);
    kle_free(b);
    setenv("POD_NAME", "web-0", 1);
    assert_int_equal(kle_default_identity(&a), 0);
    assert_string_equal(a, "web-0");
    kle_free(a);
    unsetenv("POD_NAME");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record__holder_is_compared_with_its_length),
        cmocka_unit_test(test_record__optional_strings_are_compared_with_their_length),
        cmocka_unit_test(test_record__identities_the_api_would_change_are_refused),
        cmocka_unit_test(test_record__int32_ranges_are_checked_never_truncated),
        cmocka_unit_test(test_record__time_parse_refuses_dates_that_do_not_exist),
        cmocka_unit_test(test_record__time_parse_refuses_instants_that_do_not_fit),
        cmocka_unit_test(test_record__time_format_covers_every_int64),
        cmocka_unit_test(test_record__time_parse_agrees_with_timegm_on_every_day),
        cmocka_unit_test(test_record__time_parse_fuzz_round_trips),
        cmocka_unit_test(test_record__default_identity_is_host_and_uuid_or_pod_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
