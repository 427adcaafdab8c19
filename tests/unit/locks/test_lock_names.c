/* Lock names and namespaces are checked at construction, as the API server would. */
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
#include "support/quiet_log.h"

static char dir[] = "/tmp/kle-names-XXXXXX";
static char path[256];
static kle_client *client;

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof(path), "%s/config", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
          "    server: http://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n"
          "    user: u\nusers:\n- name: u\n  user: {}\n",
          f);
    fclose(f);
    kle_client_opts co = KLE_CLIENT_OPTS_INIT;
    co.kubeconfig = path;
    return kle_client_new_from_kubeconfig(&client, &co);
}

static int teardown(void **state)
{
    (void)state;
    kle_client_free(client);
    unlink(path);
    rmdir(dir);
    return 0;
}

static int make(const char *type, const char *ns, const char *name)
{
    kle_resource_lock_opts o = KLE_RESOURCE_LOCK_OPTS_INIT;
    o.namespace_ = ns;
    o.name = name;
    o.identity = "me";
    kle_lock *l = NULL;
    int rc = kle_lock_new_by_name(&l, type, client, &o);
    kle_lock_free(l);
    return rc;
}

static void test_lock_names__valid_names_are_accepted(void **state)
{
    (void)state;
    const char *good[] = {"a", "my-app", "kube-controller-manager", "a.b-c.d", "0abc", NULL};
    for (int i = 0; good[i]; i++) {
        assert_int_equal(make("leases", NULL, good[i]), 0);
        assert_int_equal(make("configmapsleases", "kube-system", good[i]), 0);
    }
    char longest[254];
    memset(longest, 'a', 253);
    longest[253] = '\0';
    assert_int_equal(make("leases", NULL, longest), 0);
}

static void test_lock_names__invalid_names_fail_naming_the_rule_once(void **state)
{
    (void)state;
    const char *bad[] = {"Bad_Name", "UPPER", "-a", "a-", "a..b", "a.-b", "a b", ".a", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(make("leases", NULL, bad[i]), KLE_EINVAL);
        const char *msg = kle_error_last()->message;
        assert_non_null(strstr(msg, "RFC 1123 subdomain"));
        assert_non_null(strstr(msg, bad[i]));
        /* The cause is given once. */
        const char *first = strstr(msg, "RFC 1123");
        assert_null(strstr(first + 1, "RFC 1123"));
        assert_int_equal(make("endpoints", NULL, bad[i]), KLE_EINVAL);
    }
    char toolong[255];
    memset(toolong, 'a', 254);
    toolong[254] = '\0';
    assert_int_equal(make("leases", NULL, toolong), KLE_EINVAL);
    assert_int_equal(make("leases", "Bad_NS", "ok"), KLE_EINVAL);
    assert_non_null(strstr(kle_error_last()->message, "RFC 1123 label"));
}

int main(void)
{
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_names__valid_names_are_accepted),
        cmocka_unit_test(test_lock_names__invalid_names_fail_naming_the_rule_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
