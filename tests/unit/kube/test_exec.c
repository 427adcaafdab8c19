/* Exec credential plugins, run for real: small shell scripts written to a
 * temporary directory. Also base64, time parsing and API paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kle/errors.h"
#include "kube/kube.h"

static char tmpdir[256];

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kle-exec-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* Writes an executable script and a kubeconfig using it; loads it. */
static kle_kube__config *plugin_config(const char *script, const char *exec_extra)
{
    char path[512], kc[512];
    snprintf(path, sizeof(path), "%s/plugin.sh", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s", script);
    fclose(f);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(kc, sizeof(kc), "%s/config", tmpdir);
    f = fopen(kc, "w");
    assert_non_null(f);
    fprintf(f,
            "current-context: x\n"
            "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1', "
            "tls-server-name: api.example}\n"
            "users:\n- name: u\n  user:\n    exec:\n"
            "      apiVersion: client.authentication.k8s.io/v1\n"
            "      command: ./plugin.sh\n%s"
            "contexts:\n- name: x\n  context: {cluster: c, user: u}\n",
            exec_extra ? exec_extra : "");
    fclose(f);
    kle_kube__config *cfg = NULL;
    if (kle_kube__config_load(&cfg, kc, NULL, NULL, NULL) != 0)
        fail_msg("load: %s", kle_error_last()->message);
    return cfg;
}

static int64_t in_ms(int64_t ms)
{
    return kle_kube__now_ns() + ms * 1000000;
}

#define CRED(status)                                                                               \
    "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","       \
    "\"status\":" status "}'\n"

static void test_exec__token_with_expiry_args_env_and_exec_info(void **state)
{
    char script[1024];
    snprintf(script, sizeof(script),
             "printf '%%s' \"$KUBERNETES_EXEC_INFO\" > '%s/info.json'\n"
             "echo \"$1 $2 $GREETING\" > '%s/args'\n" CRED(
                 "{\"token\":\"tok-xyz\",\"expirationTimestamp\":\"2030-01-02T03:04:05Z\"}"),
             tmpdir, tmpdir);
    kle_kube__config *cfg = plugin_config(
        script, "      args: [one, two]\n      env: [{name: GREETING, value: hello}]\n"
                "      provideClusterInfo: true\n");
    kle_kube__exec_cred cred = {0};
    assert_int_equal(kle_kube__exec_run(&cred, cfg, in_ms(10000), NULL), 0);
    assert_string_equal(cred.token.data, "tok-xyz");
    assert_null(cred.client_cert.data);
    int64_t want;
    assert_int_equal(kle_kube__parse_time("2030-01-02T03:04:05Z", &want), 0);
    assert_true(cred.expires_wall_ns == want);

    char path[512];
    kle_buf b = {0};
    snprintf(path, sizeof(path), "%s/args", tmpdir);
    assert_int_equal(kle_kube__read_file(&b, path, 4096), 0);
    assert_string_equal(b.data, "one two hello\n");
    snprintf(path, sizeof(path), "%s/info.json", tmpdir);
    assert_int_equal(kle_kube__read_file(&b, path, 65536), 0);
    assert_non_null(strstr(b.data, "\"kind\":\"ExecCredential\""));
    assert_non_null(strstr(b.data, "\"apiVersion\":\"client.authentication.k8s.io/v1\""));
    assert_non_null(strstr(b.data, "\"interactive\":false"));
    assert_non_null(strstr(b.data, "\"server\":\"https://127.0.0.1:1\""));
    assert_non_null(strstr(b.data, "\"tls-server-name\":\"api.example\""));
    kle_buf__free(&b);
    kle_kube__exec_cred_clear(&cred);
    kle_kube__config_free(cfg);
}

static void test_exec__client_certificate(void **state)
{
    kle_kube__config *cfg =
        plugin_config(CRED("{\"clientCertificateData\":\"CERT\",\"clientKeyData\":\"KEY\"}"), NULL);
    kle_kube__exec_cred cred = {0};
    assert_int_equal(kle_kube__exec_run(&cred, cfg, in_ms(10000), NULL), 0);
    assert_string_equal(cred.client_cert.data, "CERT");
    assert_string_equal(cred.client_key.data, "KEY");
    assert_null(cred.token.data);
    assert_true(cred.expires_wall_ns == 0);
    kle_kube__exec_cred_clear(&cred);
    kle_kube__config_free(cfg);
}

struct bad_plugin {
    const char *script;
    const char *extra;
    int code;
    const char *suffix; /* the message ends with this */
};

static void test_exec__failures_have_their_own_errors(void **state)
{
    static const struct bad_plugin cases[] = {
        {"exit 3\n", NULL, KLE_EAUTH, "exited with status 3"},
        {"kill -9 $$\n", NULL, KLE_EAUTH, "was killed by signal 9"},
        {"echo not json\n", NULL, KLE_EAUTH,
         "printed invalid output: not a JSON ExecCredential object"},
        {"echo '{\"kind\":\"Pod\"}'\n", NULL, KLE_EAUTH,
         "printed invalid output: kind is not ExecCredential"},
        {"echo '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
         "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"t\"}}'\n",
         NULL, KLE_EAUTH,
         "printed invalid output: apiVersion \"client.authentication.k8s.io/v1beta1\" is not "
         "the configured \"client.authentication.k8s.io/v1\""},
        {CRED("{}"), NULL, KLE_EAUTH,
         "printed invalid output: status has neither token nor clientCertificateData and "
         "clientKeyData"},
        {CRED("{\"clientCertificateData\":\"C\"}"), NULL, KLE_EAUTH,
         "printed invalid output: clientCertificateData and clientKeyData must be given "
         "together"},
        {CRED("{\"token\":\"t\",\"expirationTimestamp\":\"tomorrow\"}"), NULL, KLE_EAUTH,
         "printed invalid output: expirationTimestamp \"tomorrow\" is not an RFC 3339 time"},
        {"exec sleep 30\n", NULL, KLE_ETIMEOUT, "did not finish within the request's timeout"},
        {"", "      interactiveMode: Always\n", KLE_EAUTH,
         "needs an interactive terminal (interactiveMode: Always), which libkle does not "
         "provide"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kle_kube__config *cfg = plugin_config(cases[i].script, cases[i].extra);
        kle_kube__exec_cred cred = {0};
        int64_t start = kle_kube__now_ns();
        int rc = kle_kube__exec_run(&cred, cfg, in_ms(500), NULL);
        const char *msg = kle_error_last()->message;
        size_t ml = strlen(msg), sl = strlen(cases[i].suffix);
        if (rc != cases[i].code || ml < sl || strcmp(msg + ml - sl, cases[i].suffix) != 0)
            fail_msg("case %zu: want %d \"...%s\", got %d \"%s\"", i, cases[i].code,
                     cases[i].suffix, rc, msg);
        char want_prefix[600];
        snprintf(want_prefix, sizeof(want_prefix),
                 "kubeconfig %s/config: user \"u\": exec plugin \"%s/./plugin.sh\" ", tmpdir,
                 tmpdir);
        assert_memory_equal(msg, want_prefix, strlen(want_prefix));
        assert_true(kle_kube__now_ns() - start < 3000 * INT64_C(1000000));
        assert_null(cred.token.data);
        kle_kube__config_free(cfg);
    }
}

static void test_exec__missing_command(void **state)
{
    char kc[512];
    snprintf(kc, sizeof(kc), "%s/config-missing", tmpdir);
    FILE *f = fopen(kc, "w");
    assert_non_null(f);
    fprintf(f, "current-context: x\n"
               "clusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
               "users:\n- name: u\n  user:\n    exec:\n"
               "      apiVersion: client.authentication.k8s.io/v1beta1\n"
               "      command: kle-no-such-plugin\n      installHint: install kle-no-such-plugin\n"
               "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
    fclose(f);
    kle_kube__config *cfg = NULL;
    assert_int_equal(kle_kube__config_load(&cfg, kc, NULL, NULL, NULL), 0);
    kle_kube__exec_cred cred = {0};
    assert_int_equal(kle_kube__exec_run(&cred, cfg, in_ms(5000), NULL), KLE_EAUTH);
    char want[700];
    snprintf(want, sizeof(want),
             "kubeconfig %s: user \"u\": exec plugin \"kle-no-such-plugin\" could not be "
             "started: No such file or directory. install kle-no-such-plugin",
             kc);
    assert_string_equal(kle_error_last()->message, want);
    kle_kube__config_free(cfg);
}

static void test_exec__cancel_stops_a_hanging_plugin(void **state)
{
    kle_kube__config *cfg = plugin_config("exec sleep 30\n", NULL);
    kle_event *ev;
    assert_int_equal(kle_event_new(&ev), 0);
    kle_event_set(ev);
    kle_kube__exec_cred cred = {0};
    int64_t start = kle_kube__now_ns();
    assert_int_equal(kle_kube__exec_run(&cred, cfg, in_ms(20000), ev), KLE_ECANCELED);
    assert_true(kle_kube__now_ns() - start < 1000 * INT64_C(1000000));
    kle_event_free(ev);
    kle_kube__config_free(cfg);
}

static void test_exec__time_parsing(void **state)
{
    int64_t t;
    assert_int_equal(kle_kube__parse_time("1970-01-01T00:00:01Z", &t), 0);
    assert_true(t == 1000000000);
    assert_int_equal(kle_kube__parse_time("2026-11-21T10:00:02.123456Z", &t), 0);
    assert_true(t == INT64_C(1795255202123456000));
    assert_int_equal(kle_kube__parse_time("2026-11-21T11:00:02+01:00", &t), 0);
    assert_true(t == INT64_C(1795255202000000000));
    assert_int_equal(kle_kube__parse_time("2026-11-21", &t), -1);
    assert_int_equal(kle_kube__parse_time("2026-13-21T10:00:02Z", &t), -1);
    assert_int_equal(kle_kube__parse_time("2026-11-21T10:00:02", &t), -1);
    assert_int_equal(kle_kube__parse_time("2026-11-21T10:00:02Zjunk", &t), -1);
}

static void test_exec__base64(void **state)
{
    kle_buf b = {0};
    assert_int_equal(kle_kube__base64_decode(&b, "aGVsbG8=", 8), 0);
    assert_string_equal(b.data, "hello");
    assert_int_equal(kle_kube__base64_decode(&b, "aGVs\nbG8", 8), 0);
    assert_string_equal(b.data, "hello");
    assert_int_equal(kle_kube__base64_decode(&b, "a", 1), -1);
    assert_int_equal(kle_kube__base64_decode(&b, "a*b=", 4), -1);
    assert_int_equal(kle_kube__base64_encode(&b, (const unsigned char *)"hi", 2), 0);
    assert_string_equal(b.data, "aGk=");
    kle_buf__free(&b);
}

static void test_exec__client_path(void **state)
{
    char buf[256];
    assert_int_equal(
        kle_client_path(buf, sizeof(buf), "coordination.k8s.io/v1", "leases", "default", "my-lock"),
        0);
    assert_string_equal(buf, "/apis/coordination.k8s.io/v1/namespaces/default/leases/my-lock");
    assert_int_equal(kle_client_path(buf, sizeof(buf), "v1", "configmaps", "kube-system", NULL), 0);
    assert_string_equal(buf, "/api/v1/namespaces/kube-system/configmaps");
    assert_int_equal(kle_client_path(buf, sizeof(buf), "v1", "events", "ns", "a b%"), 0);
    assert_string_equal(buf, "/api/v1/namespaces/ns/events/a%20b%25");
    assert_int_equal(kle_client_path(buf, sizeof(buf), "v1", "nodes", NULL, "n1"), 0);
    assert_string_equal(buf, "/api/v1/nodes/n1");
    assert_int_equal(kle_client_path(buf, 20, "coordination.k8s.io/v1", "leases", "d", "x"),
                     KLE_ETOOLARGE);
    assert_int_equal(kle_client_path(buf, sizeof(buf), "v1", "leases", "a/b", "x"), KLE_EINVAL);
    assert_int_equal(kle_client_path(buf, sizeof(buf), "v1", NULL, "a", "x"), KLE_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec__token_with_expiry_args_env_and_exec_info),
        cmocka_unit_test(test_exec__client_certificate),
        cmocka_unit_test(test_exec__failures_have_their_own_errors),
        cmocka_unit_test(test_exec__missing_command),
        cmocka_unit_test(test_exec__cancel_stops_a_hanging_plugin),
        cmocka_unit_test(test_exec__time_parsing),
        cmocka_unit_test(test_exec__base64),
        cmocka_unit_test(test_exec__client_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
