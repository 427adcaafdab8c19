#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "kle/sys/errors.h"

static void test_errors__codes_have_distinct_names_and_texts(void **state)
{
    assert_string_equal(kle_error_name(KLE_ENOTFOUND), "KLE_ENOTFOUND");
    assert_string_equal(kle_error_name(KLE_ECONFLICT), "KLE_ECONFLICT");
    assert_string_equal(kle_error_name(KLE_EEXISTS), "KLE_EEXISTS");
    assert_string_not_equal(kle_strerror(KLE_ECONFLICT), kle_strerror(KLE_EEXISTS));
    assert_string_equal(kle_strerror(-9999), "unknown error");
    assert_string_equal(kle_error_name(-9999), "KLE_E?");
}

static void test_errors__set_records_message_and_returns_code(void **state)
{
    kle_error_clear();
    assert_int_equal(kle_error_last()->code, KLE_OK);
    int rc = kle_error_set(KLE_EINVAL, "field %s must be %d", "x", 3);
    assert_int_equal(rc, KLE_EINVAL);
    assert_int_equal(kle_error_last()->code, KLE_EINVAL);
    assert_string_equal(kle_error_last()->message, "field x must be 3");
    assert_int_equal(kle_error_last()->http_status, 0);
    assert_string_equal(kle_error_last()->reason, "");
}

static void test_errors__api_error_keeps_status_reason_and_retry_after(void **state)
{
    kle_error_set_api(KLE_ETOOMANYREQUESTS, 429, "TooManyRequests", KLE_SEC(7), "slow down");
    const kle_error *e = kle_error_last();
    assert_int_equal(e->http_status, 429);
    assert_int_equal(e->retry_after_ns, KLE_SEC(7));
    assert_string_equal(e->reason, "TooManyRequests");
    assert_int_equal(kle_error_prefix("GET /x: "), KLE_ETOOMANYREQUESTS);
    assert_string_equal(kle_error_last()->message, "GET /x: slow down");
    assert_int_equal(kle_error_last()->http_status, 429);
    /* A plain error afterwards clears the API details. */
    kle_error_set(KLE_ETIMEOUT, "t");
    assert_int_equal(kle_error_last()->http_status, 0);
    assert_string_equal(kle_error_last()->reason, "");
}

static void test_errors__long_messages_are_truncated_not_overflowed(void **state)
{
    char big[5000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kle_error_set(KLE_ERROR, "%s", big);
    size_t n = strlen(kle_error_last()->message);
    assert_true(n > 1000 && n < sizeof(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors__codes_have_distinct_names_and_texts),
        cmocka_unit_test(test_errors__set_records_message_and_returns_code),
        cmocka_unit_test(test_errors__api_error_keeps_status_reason_and_retry_after),
        cmocka_unit_test(test_errors__long_messages_are_truncated_not_overflowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
