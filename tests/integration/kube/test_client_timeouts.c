/* Timeouts without a kle-apiserver: a refused connection, a TLS handshake
 * that never completes, huge and cancelled budgets. Loopback only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kle/errors.h"
#include "support/kubeconfig_fixture.h"

static int never(kle_watch_event_type t, json_object *o, void *d)
{
    return 0;
}

static void test_client_timeouts__huge_timeouts_and_unreachable_server(void **state)
{
    kle_client *c = fixture_client();
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    json_object *out = NULL;
    ro.timeout_ns = INT64_MAX;
    /* Port 1 on loopback refuses at once; no overflow on the deadline. */
    assert_int_equal(kle_client_get(&out, c, "/api", &ro), KLE_ETRANSPORT);
    assert_non_null(strstr(kle_error_last()->message, "GET /api: "));

    /* A spent budget fails at once. */
    ro.timeout_ns = -1;
    assert_int_equal(kle_client_get(&out, c, "/api", &ro), KLE_ETIMEOUT);
    assert_string_equal(kle_error_last()->message, "GET /api: the time budget was already spent");

    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.timeout_ns = 300 * KLE_NS_PER_MS;
    wo.stream_timeout_ns = INT64_MAX;
    assert_int_equal(kle_client_watch(c, "/api/v1/pods", &wo, never, NULL), 0);
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    kle_event_set(ev);
    wo.timeout_ns = INT64_MAX;
    wo.cancel = ev;
    assert_int_equal(kle_client_watch(c, "/api/v1/pods", &wo, never, NULL), KLE_ECANCELED);
    kle_event_free(ev);
    kle_client_free(c);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A loopback listener that never accepts: TCP connects (the backlog), the
 * TLS handshake never completes. */
static void test_client_timeouts__stalled_handshake_honours_timeouts(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 8), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char path[400];
    snprintf(path, sizeof(path), "%s/stalled", fixture_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "current-context: x\nclusters:\n- name: c\n  cluster: {server: "
            "'https://127.0.0.1:%d'}\ncontexts:\n- name: x\n  context: {cluster: c}\n",
            ntohs(sa.sin_port));
    fclose(f);

    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = path;
    o.connect_timeout_ns = 200 * KLE_NS_PER_MS;
    kle_client *c = NULL;
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), 0);
    json_object *out = NULL;
    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.timeout_ns = 5000 * KLE_NS_PER_MS;
    /* The connect timeout ends it first. */
    int64_t start = now_ms();
    assert_int_equal(kle_client_get(&out, c, "/api", &ro), KLE_ETIMEOUT);
    int64_t took = now_ms() - start;
    /* Well before the request's own 5 s: the connect timeout ended it (the
     * upper bound leaves room for a loaded machine). */
    if (!(took >= 190 && took < 200 + 2500))
        fail_msg("took %lld", (long long)took);
    assert_non_null(strstr(kle_error_last()->message, "GET /api: timed out: "));
    /* A total budget shorter than the connect timeout wins. */
    ro.timeout_ns = 100 * KLE_NS_PER_MS;
    start = now_ms();
    assert_int_equal(kle_client_get(&out, c, "/api", &ro), KLE_ETIMEOUT);
    took = now_ms() - start;
    if (!(took >= 95 && took < 100 + 300))
        fail_msg("took %lld", (long long)took);
    kle_client_free(c);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_timeouts__huge_timeouts_and_unreachable_server),
        cmocka_unit_test(test_client_timeouts__stalled_handshake_honours_timeouts),
    };
    return cmocka_run_group_tests(tests, kubeconfig_fixture_setup, kubeconfig_fixture_teardown);
}
