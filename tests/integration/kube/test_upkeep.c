/*
 * What libcurl's connection upkeep (curl_easy_upkeep, the only way libcurl
 * sends an HTTP/2 PING) reaches, measured against an HTTP/2 TLS front
 * (nghttpx) before kle-apiserver.
 *
 * Each case makes one HTTP/2 request through the fault relay
 * (tests/support/relay.h), leaves its connection idle in libcurl's cache,
 * freezes it (the relay counts every byte the client sends on a frozen
 * connection), calls curl_easy_upkeep() and counts what the client sent:
 * a PING is 17 bytes and more in a TLS record. The control: one more
 * request on the same handle, whose bytes the relay does count. The cases:
 *
 *   perform  the request ran in curl_easy_perform() (libcurl's internal
 *            multi handle): upkeep sends a PING;
 *   multi    the request ran on a multi handle of the application's own,
 *            as libkle drives every request (cancellable within 100 ms):
 *            upkeep after curl_multi_remove_handle(), and while the handle
 *            is still on the multi;
 *   share    a CURLSH with CURL_LOCK_DATA_CONNECT holds the connection
 *            (request on the application's multi, or in curl_easy_perform).
 *
 * libcurl before 8.10.0 looks only at curl_easy_perform()'s internal multi
 * handle (lib/easy.c, curl_easy_upkeep: "if(data->multi_easy) return
 * upkeep(&data->multi_easy->conn_cache, data);"). And in 7.88.1 even that
 * PING never leaves: http2_send_ping() calls nghttp2_session_send(), whose
 * send_callback() only appends frames under 1024 bytes to the connection's
 * output buffer (lib/http2.c, "if(blen < 1024 && ...) Curl_dyn_addn(
 * &ctx->outbuf, ...)"), flushed by the next transfer on that connection.
 * So with libcurl 7.88.1 no case sends a PING: that is asserted for that
 * version, and the findings are printed for every version (8.10.0 reaches
 * the share's and the multi's pools; 8.15.0 writes small frames at once).
 * No version of libcurl closes a connection whose PING is not answered (it
 * does not track the ACK).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "support/apiserver.h"
#include "support/relay.h"

static kle_test_apiserver srv;
static unsigned front_port;
static kle_test_relay *relay;

static int setup(void **state)
{
    (void)state;
    if (!kle_test_http2()) {
        fprintf(stderr, "test_upkeep needs KLE_TEST_HTTP=2 (an HTTP/2 front)\n");
        return -1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (kle_test_apiserver_start(&srv, NULL) != 0)
        return -1;
    const char *colon = strrchr(srv.url, ':');
    front_port = (unsigned)strtoul(colon + 1, NULL, 10);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = kle_test_apiserver_stop(&srv);
    curl_global_cleanup();
    return rc == 0 ? 0 : -1;
}

static curl_socket_t last_fd = CURL_SOCKET_BAD;

static int on_sockopt(void *ud, curl_socket_t fd, curlsocktype purpose)
{
    (void)ud;
    if (purpose == CURLSOCKTYPE_IPCXN)
        last_fd = fd;
    return CURL_SOCKOPT_OK;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

static CURL *easy(struct curl_slist *hl, CURLSH *share)
{
    CURL *h = curl_easy_init();
    assert_non_null(h);
    char url[256];
    snprintf(url, sizeof(url), "https://127.0.0.1:%u/version", kle_test_relay_port(relay));
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, srv.ca_path);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    curl_easy_setopt(h, CURLOPT_UPKEEP_INTERVAL_MS, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_MAXAGE_CONN, 600L);
    if (share)
        curl_easy_setopt(h, CURLOPT_SHARE, share);
    return h;
}

/* Freezes the idle connection of h, calls upkeep on it and counts the
 * bytes the client sends within 500 ms; then (the control) one more
 * request on the same handle and connection, which must be counted. */
static void control_request(CURL *h, CURLM *m)
{
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 500L);
    if (!m) {
        curl_easy_perform(h);
        return;
    }
    int running = 1;
    assert_int_equal(curl_multi_add_handle(m, h), CURLM_OK);
    for (int i = 0; running && i < 100; i++) {
        curl_multi_perform(m, &running);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    curl_multi_remove_handle(m, h);
}

static long upkeep_sent(CURL *h, CURLM *m, long *control)
{
    poll(NULL, 0, 100);
    kle_test_relay_freeze(relay);
    long before = kle_test_relay_stuck_bytes(relay);
    assert_int_equal(curl_easy_upkeep(h), CURLE_OK);
    poll(NULL, 0, 500);
    long sent = kle_test_relay_stuck_bytes(relay) - before;
    control_request(h, m);
    *control = kle_test_relay_stuck_bytes(relay) - before - sent;
    return sent;
}

static void run_multi(CURLM *m, CURL *h, int remove)
{
    int running = 1;
    assert_int_equal(curl_multi_add_handle(m, h), CURLM_OK);
    for (int i = 0; running && i < 1000; i++) {
        assert_int_equal(curl_multi_perform(m, &running), CURLM_OK);
        if (running)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    long v = 0, code = 0;
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &v);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    assert_int_equal(v, CURL_HTTP_VERSION_2_0);
    assert_int_equal(code, 200);
    if (remove)
        curl_multi_remove_handle(m, h);
    (void)last_fd;
}

static void perform(CURL *h)
{
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    long v = 0;
    curl_easy_getinfo(h, CURLINFO_HTTP_VERSION, &v);
    assert_int_equal(v, CURL_HTTP_VERSION_2_0);
}

enum { PERFORM, MULTI, MULTI_ADDED, SHARE_MULTI, SHARE_PERFORM, NCASES };
static const char *const case_name[NCASES] = {"curl_easy_perform", "own multi (removed)",
                                              "own multi (added)", "CURLSH+own multi",
                                              "CURLSH+curl_easy_perform"};

static void test_upkeep__what_libcurl_pings(void **state)
{
    (void)state;
    char auth[200];
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", srv.token);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    long sent[NCASES], control[NCASES];
    char line[1024];
    size_t off = 0;

    for (int i = 0; i < NCASES; i++) {
        assert_int_equal(kle_test_relay_start(&relay, front_port), 0);
        CURLSH *sh = NULL;
        if (i == SHARE_MULTI || i == SHARE_PERFORM) {
            sh = curl_share_init();
            curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        }
        CURLM *m = i == MULTI || i == MULTI_ADDED || i == SHARE_MULTI ? curl_multi_init() : NULL;
        CURL *h = easy(hl, sh);
        if (m)
            run_multi(m, h, i != MULTI_ADDED);
        else
            perform(h);
        if (i == MULTI_ADDED) {
            kle_test_relay_freeze(relay);
            long before = kle_test_relay_stuck_bytes(relay);
            assert_int_equal(curl_easy_upkeep(h), CURLE_OK);
            poll(NULL, 0, 500);
            sent[i] = kle_test_relay_stuck_bytes(relay) - before;
            curl_multi_remove_handle(m, h);
            control_request(h, m);
            control[i] = kle_test_relay_stuck_bytes(relay) - before - sent[i];
        } else {
            sent[i] = upkeep_sent(h, m, &control[i]);
        }
        curl_easy_cleanup(h);
        if (m)
            curl_multi_cleanup(m);
        if (sh)
            curl_share_cleanup(sh);
        kle_test_relay_stop(relay);
        relay = NULL;
        off += (size_t)snprintf(line + off, sizeof(line) - off, "%s%s %ld bytes (control %ld)",
                                i ? "; " : "", case_name[i], sent[i], control[i]);
    }
    curl_slist_free_all(hl);
    printf("FIGURE libcurl %s: bytes sent by curl_easy_upkeep() on an idle HTTP/2 connection "
           "of: %s\n",
           curl_version_info(CURLVERSION_NOW)->version, line);
    for (int i = 0; i < NCASES; i++) {
        /* The control shows that the relay counts what the client sends. */
        if (control[i] <= 0)
            fail_msg("%s: the control request sent nothing through the relay", case_name[i]);
        if (curl_version_info(CURLVERSION_NOW)->version_num == 0x075801 && sent[i] != 0)
            fail_msg("%s: libcurl 7.88.1 sent %ld bytes on upkeep", case_name[i], sent[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upkeep__what_libcurl_pings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
