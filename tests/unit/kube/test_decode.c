/* The pure decoders of API answers (src/kube/decode.c): the Status
 * classifier, watch stream framing and watch events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "kle/errors.h"
#include "kube/kube.h"

static int classify(long status, const char *body)
{
    json_object *st = kle_kube__parse_json(body, strlen(body));
    int rc = kle_kube__api_error("PUT", "/x", status, st, body, strlen(body), 0);
    json_object_put(st);
    return rc;
}

static void test_decode__status_reason_decides_over_code(void **state)
{
    assert_int_equal(classify(409, "{\"kind\":\"Status\",\"reason\":\"AlreadyExists\"}"),
                     KLE_EEXISTS);
    assert_int_equal(classify(409, "{\"kind\":\"Status\",\"reason\":\"Conflict\"}"), KLE_ECONFLICT);
    assert_int_equal(classify(409, "not json"), KLE_ECONFLICT);
    /* A reason in something that is no Status is not trusted. */
    assert_int_equal(classify(409, "{\"kind\":\"Lease\",\"reason\":\"AlreadyExists\"}"),
                     KLE_ECONFLICT);
    assert_int_equal(classify(500, "{\"kind\":\"Status\",\"reason\":\"NotFound\"}"), KLE_ENOTFOUND);
    assert_int_equal(classify(418, ""), KLE_EAPI);
    assert_string_equal(kle_error_last()->reason, "Unknown");
}

static void test_decode__raw_body_control_bytes_become_spaces(void **state)
{
    assert_int_equal(classify(502, "<html>\r\nBad\x01Gateway</html>"), KLE_ESERVER);
    assert_non_null(strstr(kle_error_last()->message, "<html>  Bad Gateway</html>"));
}

struct lines {
    char got[8][64];
    int n;
    int stop_at;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct lines *l = ud;
    assert_true(l->n < 8 && len < 64);
    memcpy(l->got[l->n], line, len);
    l->got[l->n][len] = '\0';
    return ++l->n == l->stop_at;
}

static void feed(kle_buf *b, size_t *consumed, struct lines *l, const char *chunk, int want)
{
    size_t n = strlen(chunk);
    b->data = realloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, chunk, n + 1);
    b->len += n;
    assert_int_equal(kle_kube__watch_feed(b, consumed, on_line, l), want);
}

static void test_decode__watch_feed_frames_lines_across_chunks(void **state)
{
    kle_buf b = {0};
    size_t consumed = 0;
    struct lines l = {.stop_at = 0};
    feed(&b, &consumed, &l, "ab", 0);
    assert_int_equal(l.n, 0);
    feed(&b, &consumed, &l, "c\n\nde", 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.got[0], "abc");
    /* Compacted: only the incomplete line is left. */
    assert_int_equal(consumed, 0);
    assert_int_equal(b.len, 2);
    assert_string_equal(b.data, "de");
    feed(&b, &consumed, &l, "f\ng\n", 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.got[1], "def");
    assert_string_equal(l.got[2], "g");
    assert_int_equal(b.len, 0);
    /* A callback that stops the stream leaves the rest unread. */
    l.stop_at = 4;
    feed(&b, &consumed, &l, "h\ni\n", 1);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.got[3], "h");
    kle_buf__free(&b);
}

static int decode(kle_kube__watch_event *e, const char *line)
{
    return kle_kube__watch_event_decode(e, line, strlen(line), "/w");
}

static void test_decode__watch_events(void **state)
{
    kle_kube__watch_event e;
    assert_int_equal(
        decode(&e, "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"resourceVersion\":\"7\"}}}"),
        0);
    assert_int_equal(e.type, KLE_WATCH_MODIFIED);
    assert_string_equal(e.resource_version, "7");
    json_object_put(e.ev);
    assert_int_equal(decode(&e, "{\"type\":\"SYNC\",\"object\":{}}"), 1);
    assert_null(e.ev);
    assert_int_equal(decode(&e, "{\"type\":\"ERROR\",\"object\":{\"code\":410}}"), KLE_EGONE);
    assert_int_equal(
        decode(&e, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"reason\":\"Expired\"}}"),
        KLE_EGONE);
    assert_int_equal(decode(&e, "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
                                "\"reason\":\"InternalError\",\"message\":\"etcd\"}}"),
                     KLE_ESERVER);
    assert_non_null(strstr(kle_error_last()->message, "WATCH /w: 500 InternalError: etcd"));
    assert_int_equal(decode(&e, "{\"type\":\"ADDED\"}"), KLE_EBADRESPONSE);
    assert_int_equal(decode(&e, "{\"type\":\"ADDED\",\"object\":null}"), KLE_EBADRESPONSE);
    assert_null(e.ev);
    assert_int_equal(decode(&e, "{\"type\":\"MODIFIED\",\"object\":\"x\"}"), KLE_EBADRESPONSE);
    assert_int_equal(decode(&e, "{\"type\":\"ADDED\",\"object\":{}} x"), KLE_EBADRESPONSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode__status_reason_decides_over_code),
        cmocka_unit_test(test_decode__raw_body_control_bytes_become_spaces),
        cmocka_unit_test(test_decode__watch_feed_frames_lines_across_chunks),
        cmocka_unit_test(test_decode__watch_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
