/* The client's argument checking, constructors' errors and option
 * versions; nothing is sent over the network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kle/errors.h"
#include "support/kubeconfig_fixture.h"

static void test_client_args__constructors(void **state)
{
    kle_client *c = fixture_client();
    assert_string_equal(kle_client_namespace(c), "team");
    assert_string_equal(kle_client_server(c), "https://127.0.0.1:1");
    kle_client_free(c);
    kle_client_free(NULL);

    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.version = 99;
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), KLE_EVERSION);
    assert_null(c);
    assert_int_equal(kle_client_new_from_kubeconfig(NULL, NULL), KLE_EINVAL);

    o = (kle_client_opts)KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = fixture_kubeconfig;
    o.context = "nope";
    assert_int_equal(kle_client_new_from_kubeconfig(&c, &o), KLE_EKUBECONFIG);
    assert_null(c);

    unsetenv("KUBERNETES_SERVICE_HOST");
    o = (kle_client_opts)KLE_CLIENT_OPTS_INIT;
    o.serviceaccount_dir = fixture_dir;
    assert_int_equal(kle_client_new_in_cluster(&c, &o), KLE_EKUBECONFIG);
    assert_string_equal(kle_error_last()->message,
                        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                        "must be set (not running in a pod?)");

    /* Default: no service account, so the kubeconfig given. */
    o.kubeconfig = fixture_kubeconfig;
    assert_int_equal(kle_client_new_default(&c, &o), 0);
    assert_string_equal(kle_client_namespace(c), "team");
    kle_client_free(c);
}

static int never(kle_watch_event_type t, json_object *o, void *d)
{
    return 0;
}

static void test_client_args__bad_arguments_are_refused(void **state)
{
    kle_client *c = fixture_client();
    json_object *out = (json_object *)1;
    assert_int_equal(kle_client_get(&out, c, "api/v1", NULL), KLE_EINVAL);
    assert_null(out);
    assert_int_equal(kle_client_get(&out, c, "/api/v1/x y", NULL), KLE_EINVAL);
    assert_int_equal(kle_client_get(&out, c, "/api/v1/x\r\nEvil: 1", NULL), KLE_EINVAL);
    assert_int_equal(kle_client_get(&out, c, NULL, NULL), KLE_EINVAL);
    assert_int_equal(kle_client_get(NULL, c, "/api", NULL), KLE_EINVAL);
    assert_int_equal(kle_client_get(&out, NULL, "/api", NULL), KLE_EINVAL);
    assert_int_equal(kle_client_create(&out, c, "/api/v1", NULL, NULL), KLE_EINVAL);
    assert_int_equal(kle_client_request(&out, c, "GE T", "/api", NULL, NULL, 0, NULL), KLE_EINVAL);
    json_object *p = json_object_new_object();
    assert_int_equal(kle_client_patch(&out, c, "/api/v1", (kle_patch_type)7, p, NULL), KLE_EINVAL);
    json_object_put(p);

    kle_request_opts ro = KLE_REQUEST_OPTS_INIT;
    ro.version = 0;
    assert_int_equal(kle_client_get(&out, c, "/api", &ro), KLE_EVERSION);
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.version = 42;
    assert_int_equal(kle_client_watch(c, "/api/v1/pods", &wo, never, NULL), KLE_EVERSION);
    assert_int_equal(kle_client_watch(c, "/api/v1/pods", NULL, NULL, NULL), KLE_EINVAL);
    kle_client_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_args__constructors),
        cmocka_unit_test(test_client_args__bad_arguments_are_refused),
    };
    return cmocka_run_group_tests(tests, kubeconfig_fixture_setup, kubeconfig_fixture_teardown);
}
