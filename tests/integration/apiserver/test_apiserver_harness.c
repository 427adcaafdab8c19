/* The C harness starts a server that answers HTTPS with its token, and
 * stops it cleanly; exercises Conflict through libcurl as a client would. */
#include "support/apiserver.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct body {
    char data[65536];
    size_t len;
} body;

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    body *b = arg;
    size_t len = size * n;
    if (b->len + len >= sizeof(b->data))
        len = sizeof(b->data) - b->len - 1;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return size * n;
}

static long request(const kle_test_apiserver *srv, const char *method, const char *path,
                    const char *json, const char *token, body *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[512], auth[256];
    long code = 0;

    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s%s", srv->url, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, srv->ca_path);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return code;
}

static void test_apiserver_harness__start_serves_https_with_token(void **state)
{
    kle_test_apiserver srv;
    body b;
    char dir[256];

    assert_int_equal(kle_test_apiserver_start(&srv, NULL), 0);
    snprintf(dir, sizeof(dir), "%s", srv.dir);
    assert_true(strncmp(srv.url, "https://127.0.0.1:", 18) == 0);
    assert_true(strncmp(srv.admin_url, "http://127.0.0.1:", 17) == 0);
    assert_true(strlen(srv.token) >= 32);
    assert_int_equal(access(srv.kubeconfig, R_OK), 0);
    assert_int_equal(access(srv.ca_path, R_OK), 0);

    assert_int_equal(request(&srv, "GET", "/api", NULL, srv.token, &b), 200);
    assert_non_null(strstr(b.data, "APIVersions"));
    assert_int_equal(request(&srv, "GET", "/api", NULL, NULL, &b), 401);
    assert_int_equal(request(&srv, "GET", "/api", NULL, "wrong", &b), 401);

    assert_int_equal(kle_test_apiserver_stop(&srv), 0);
    assert_int_equal(access(dir, F_OK), -1);
    assert_int_equal(kle_test_apiserver_stop(&srv), -1);
}

static void test_apiserver_harness__conflict_and_already_exists(void **state)
{
    kle_test_apiserver srv;
    body b;
    const char *path = "/apis/coordination.k8s.io/v1/namespaces/default/leases";

    assert_int_equal(kle_test_apiserver_start(&srv, NULL), 0);
    assert_int_equal(request(&srv, "POST", path,
                             "{\"metadata\":{\"name\":\"l\"},\"spec\":{\"holderIdentity\":\"a\"}}",
                             srv.token, &b),
                     201);
    assert_int_equal(request(&srv, "POST", path, "{\"metadata\":{\"name\":\"l\"}}", srv.token, &b),
                     409);
    assert_non_null(strstr(b.data, "\"reason\":\"AlreadyExists\""));
    assert_int_equal(
        request(&srv, "PUT", "/apis/coordination.k8s.io/v1/namespaces/default/leases/l",
                "{\"metadata\":{\"name\":\"l\",\"resourceVersion\":\"1\"},\"spec\":{}}", srv.token,
                &b),
        409);
    assert_non_null(strstr(b.data, "\"reason\":\"Conflict\""));
    assert_int_equal(kle_test_apiserver_stop(&srv), 0);
}

static void test_apiserver_harness__extra_args_and_bad_flags(void **state)
{
    kle_test_apiserver srv;
    const char *bad[] = {"--no-such-flag", NULL};
    char dir[256], path[300];
    body b;

    /* A server that refuses its flags is reported, not waited for. */
    assert_int_equal(kle_test_apiserver_start(&srv, bad), -1);
    assert_int_equal(srv.pid, 0);

    assert_int_equal(kle_test_tempdir(dir, sizeof(dir)), 0);
    snprintf(path, sizeof(path), "%s/tokens.csv", dir);
    assert_int_equal(kle_test_write_file(path, "t-alice,alice,1,\"devs,ops\"\n"), 0);
    {
        const char *args[] = {"--token-file", path, NULL};
        assert_int_equal(kle_test_apiserver_start(&srv, args), 0);
    }
    assert_int_equal(request(&srv, "GET", "/api/v1/namespaces", NULL, "t-alice", &b), 200);
    assert_int_equal(kle_test_apiserver_stop(&srv), 0);
    assert_int_equal(kle_test_rmtree(dir), 0);
}

static void test_apiserver_harness__admin_injects_faults_and_counts(void **state)
{
    kle_test_apiserver srv;
    body b;
    char out[4096];
    const char *path = "/api/v1/namespaces/default/configmaps/c";

    assert_int_equal(kle_test_apiserver_start(&srv, NULL), 0);
    assert_int_equal(kle_test_apiserver_admin(&srv, "POST", "/faults",
                                              "{\"verb\":\"get\",\"resource\":\"configmaps\","
                                              "\"error\":503,\"count\":1}",
                                              out, sizeof(out)),
                     201);
    assert_non_null(strstr(out, "\"error\": 503"));
    assert_int_equal(request(&srv, "GET", path, NULL, srv.token, &b), 503);
    assert_non_null(strstr(b.data, "\"reason\":\"ServiceUnavailable\""));
    assert_int_equal(request(&srv, "GET", path, NULL, srv.token, &b), 404);
    assert_int_equal(kle_test_apiserver_admin(&srv, "GET", "/counters", NULL, out, sizeof(out)),
                     200);
    assert_non_null(strstr(out, "\"code\": 503"));
    assert_non_null(strstr(out, "\"code\": 404"));
    assert_int_equal(kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0), 200);
    assert_int_equal(kle_test_apiserver_admin(&srv, "GET", "/nope", NULL, NULL, 0), 404);
    assert_int_equal(kle_test_apiserver_stop(&srv), 0);
}

static void read_small(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    size_t n = 0;
    out[0] = '\0';
    if (f) {
        n = fread(out, 1, len - 1, f);
        fclose(f);
    }
    out[n] = '\0';
}

static void test_apiserver_harness__restart_keeps_url_token_ca_and_data(void **state)
{
    kle_test_apiserver srv;
    body b;
    char dir[256], data[300], url[128], token[128], ca[8192], ca2[8192];
    const char *path = "/api/v1/namespaces/default/configmaps";

    assert_int_equal(kle_test_tempdir(dir, sizeof(dir)), 0);
    snprintf(data, sizeof(data), "%s/data", dir);
    {
        const char *args[] = {"--data-dir", data, NULL};
        assert_int_equal(kle_test_apiserver_start(&srv, args), 0);
    }
    snprintf(url, sizeof(url), "%s", srv.url);
    snprintf(token, sizeof(token), "%s", srv.token);
    read_small(srv.ca_path, ca, sizeof(ca));
    assert_int_equal(
        request(&srv, "POST", path, "{\"metadata\":{\"name\":\"kept\"}}", srv.token, &b), 201);
    assert_int_equal(kle_test_apiserver_restart(&srv), 0);
    assert_string_equal(srv.url, url);
    assert_string_equal(srv.token, token);
    read_small(srv.ca_path, ca2, sizeof(ca2));
    assert_true(strlen(ca) > 100);
    assert_string_equal(ca, ca2);
    /* The old CA file, token and URL still work, and the object is there. */
    assert_int_equal(
        request(&srv, "GET", "/api/v1/namespaces/default/configmaps/kept", NULL, token, &b), 200);
    assert_int_equal(kle_test_apiserver_stop(&srv), 0);
    assert_int_equal(kle_test_rmtree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apiserver_harness__start_serves_https_with_token),
        cmocka_unit_test(test_apiserver_harness__conflict_and_already_exists),
        cmocka_unit_test(test_apiserver_harness__extra_args_and_bad_flags),
        cmocka_unit_test(test_apiserver_harness__admin_injects_faults_and_counts),
        cmocka_unit_test(test_apiserver_harness__restart_keeps_url_token_ca_and_data),
    };
    int rc;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
