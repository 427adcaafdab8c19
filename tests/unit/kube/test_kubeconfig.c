/* kubeconfig loading and merging: a table of good files and of bad files
 * with the exact error each must give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kle/errors.h"
#include "kube/kube.h"

#define CERT_PEM                                                                                   \
    "-----BEGIN CERTIFICATE-----\n"                                                                \
    "MIIBfDCCASOgAwIBAgIUMCTnnrkLzBookc7rAUcQ86AW8Q0wCgYIKoZIzj0EAwIw\n"                           \
    "EzERMA8GA1UEAwwIa2xlLXRlc3QwIBcNMjYxMTIxMTg1ODI2WhgPMjEyNjEwMjgx\n"                           \
    "ODU4MjZaMBMxETAPBgNVBAMMCGtsZS10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"                           \
    "AQcDQgAEJPzznL0+k8oawuzSaK3P/WyOtaUlEPlqzocuE0sYaA1wva/galGUxiLE\n"                           \
    "HGJWMuL18E9vub3culHm8OAmEUv1lKNTMFEwHQYDVR0OBBYEFNcvZVbu9K+85NYn\n"                           \
    "O+U8f1fJfZ4CMB8GA1UdIwQYMBaAFNcvZVbu9K+85NYnO+U8f1fJfZ4CMA8GA1Ud\n"                           \
    "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgVVv6SAN1CVM3flYT2ahktSHp\n"                           \
    "H+uFibzKE6hMOp/XVGcCIEWDq2Sr7Tozfs0cgeyRKa8bH7CA9pHC/QFDksnUKhfB\n"                           \
    "-----END CERTIFICATE-----\n"
#define KEY_PEM                                                                                    \
    "-----BEGIN PRIVATE KEY-----\n"                                                                \
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgwYI9buFnb0tnzsP/\n"                           \
    "7MTZQ09IDShL4R/6lcL39jY2nqahRANCAAQk/POcvT6TyhrC7NJorc/9bI61pSUQ\n"                           \
    "+WrOhy4TSxhoDXC9r+BqUZTGIsQcYlYy4vXwT2+5vdy6Uebw4CYRS/WU\n"                                   \
    "-----END PRIVATE KEY-----\n"

static char tmpdir[256];
static char *cert_b64, *key_b64;

/* Replaces every '@' of s with the temporary directory, and "%CERT%" /
 * "%KEY%" with the base64 of the test certificate and key. */
static char *expand(const char *s)
{
    size_t cap = strlen(s) * 2 + 8192, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (const char *p = s; *p;) {
        const char *add = NULL;
        size_t skip = 1;
        if (*p == '@') {
            add = tmpdir;
        } else if (strncmp(p, "%CERT%", 6) == 0) {
            add = cert_b64;
            skip = 6;
        } else if (strncmp(p, "%KEY%", 5) == 0) {
            add = key_b64;
            skip = 5;
        }
        if (add) {
            size_t l = strlen(add);
            assert_true(n + l + 1 < cap);
            memcpy(out + n, add, l);
            n += l;
        } else {
            assert_true(n + 2 < cap);
            out[n++] = *p;
        }
        p += skip;
    }
    out[n] = '\0';
    return out;
}

static void write_file(const char *rel, const char *content)
{
    char path[512], *text = expand(content);
    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
    assert_int_equal(system(cmd), 0);
    *slash = '/';
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(text);
}

struct file {
    const char *path, *content;
};

struct kcase {
    const char *name;
    struct file files[4];
    const char *explicit_path; /* '@' expanded */
    const char *env;           /* $KUBECONFIG, '@' expanded */
    const char *home;          /* $HOME, '@' expanded */
    const char *context;
    const char *error; /* exact message for bad cases, '@' expanded */
    int code;
    void (*check)(const kle_kube__config *cfg);
};

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/kle-kubeconfig-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    kle_buf b = {0};
    assert_int_equal(kle_kube__base64_encode(&b, (const unsigned char *)CERT_PEM, strlen(CERT_PEM)),
                     0);
    cert_b64 = b.data;
    b.data = NULL;
    assert_int_equal(kle_kube__base64_encode(&b, (const unsigned char *)KEY_PEM, strlen(KEY_PEM)),
                     0);
    key_b64 = b.data;
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    free(cert_b64);
    free(key_b64);
    return 0;
}

static void run_case(const struct kcase *c)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", tmpdir);
    assert_int_equal(system(cmd), 0);
    for (int i = 0; i < 4 && c->files[i].path; i++)
        write_file(c->files[i].path, c->files[i].content);
    char *ep = c->explicit_path ? expand(c->explicit_path) : NULL;
    char *env = c->env ? expand(c->env) : NULL;
    char *home = c->home ? expand(c->home) : NULL;
    kle_kube__config *cfg = NULL;
    kle_error_clear();
    int rc = kle_kube__config_load(&cfg, ep, env, home, c->context);
    if (c->error) {
        char *want = expand(c->error);
        if (rc == 0 || strcmp(kle_error_last()->message, want) != 0)
            fail_msg("case %s: want error \"%s\", got %d \"%s\"", c->name, want, rc,
                     kle_error_last()->message);
        assert_int_equal(rc, c->code ? c->code : KLE_EKUBECONFIG);
        assert_null(cfg);
        free(want);
    } else {
        if (rc != 0)
            fail_msg("case %s: unexpected error %d \"%s\"", c->name, rc, kle_error_last()->message);
        assert_non_null(cfg);
        if (c->check)
            c->check(cfg);
        kle_kube__config_free(cfg);
    }
    free(ep);
    free(env);
    free(home);
}

/* ---- good files -------------------------------------------------------- */

static void check_all_cluster_fields(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->server, "https://10.1.2.3:6443");
    assert_string_equal(cfg->tls_server_name, "api.example");
    assert_string_equal(cfg->proxy_url, "socks5://127.0.0.1:1080");
    assert_string_equal(cfg->ca.data, CERT_PEM);
    assert_int_equal(cfg->insecure, 0);
    assert_string_equal(cfg->token.data, "tok-123");
    assert_string_equal(cfg->namespace_, "team-a");
    assert_string_equal(cfg->context, "dev");
    assert_string_equal(cfg->cluster, "c1");
    assert_string_equal(cfg->user, "u1");
    assert_null(cfg->exec);
    assert_null(cfg->username);
}

static void check_data_fields(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->ca.data, CERT_PEM);
    assert_string_equal(cfg->client_cert.data, CERT_PEM);
    assert_string_equal(cfg->client_key.data, KEY_PEM);
    assert_string_equal(cfg->username, "admin");
    assert_string_equal(cfg->password.data, "s3cret");
    assert_string_equal(cfg->namespace_, "default");
}

static void check_relative_paths(const kle_kube__config *cfg)
{
    char want[512];
    snprintf(want, sizeof(want), "%s/sub/tokens/t", tmpdir);
    assert_string_equal(cfg->token_file, want);
    assert_string_equal(cfg->client_cert.data, CERT_PEM);
    assert_string_equal(cfg->client_key.data, KEY_PEM);
    assert_string_equal(cfg->ca.data, CERT_PEM);
}

static void check_exec(const kle_kube__config *cfg)
{
    char want[512];
    assert_non_null(cfg->exec);
    snprintf(want, sizeof(want), "%s/bin/./plugin.sh", tmpdir);
    assert_string_equal(cfg->exec->command, want);
    assert_string_equal(cfg->exec->api_version, "client.authentication.k8s.io/v1beta1");
    assert_string_equal(cfg->exec->args[0], "get-token");
    assert_string_equal(cfg->exec->args[1], "--cluster=x");
    assert_null(cfg->exec->args[2]);
    assert_string_equal(cfg->exec->env[0], "A=1");
    assert_string_equal(cfg->exec->env[1], "B=");
    assert_null(cfg->exec->env[2]);
    assert_int_equal(cfg->exec->provide_cluster_info, 1);
    assert_string_equal(cfg->exec->install_hint, "install it");
}

static void check_exec_path_lookup(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->exec->command, "aws");
    assert_null(cfg->exec->args[0]);
    assert_int_equal(cfg->exec->provide_cluster_info, 0);
}

static void check_merge(const kle_kube__config *cfg)
{
    /* Cluster "c" from a wins over b; context and user only in b. */
    assert_string_equal(cfg->server, "https://a.example");
    assert_string_equal(cfg->context, "ctx-b");
    assert_string_equal(cfg->token.data, "from-b");
    char want[512];
    snprintf(want, sizeof(want), "kubeconfig %s/b.yaml", tmpdir);
    assert_string_equal(cfg->origin, want);
}

static void check_merge_current_context_first(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->context, "ctx-a");
    assert_string_equal(cfg->server, "https://a.example");
}

static void check_override(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->context, "other");
    assert_string_equal(cfg->server, "https://other.example:8443/prefix");
    assert_string_equal(cfg->namespace_, "ns-other");
    assert_null(cfg->user);
}

static void check_insecure(const kle_kube__config *cfg)
{
    assert_int_equal(cfg->insecure, 1);
    assert_null(cfg->ca.data);
}

static void check_home(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->server, "https://home.example");
}

static void check_json(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->server, "https://json.example");
    assert_string_equal(cfg->token.data, "j");
}

static void check_anchors(const kle_kube__config *cfg)
{
    assert_string_equal(cfg->server, "https://anchor.example");
    assert_string_equal(cfg->cluster, "d");
    assert_string_equal(cfg->user, "u");
    assert_string_equal(cfg->token.data, "t");
}

#define SIMPLE(server)                                                                             \
    "apiVersion: v1\nkind: Config\ncurrent-context: x\n"                                           \
    "contexts:\n- name: x\n  context:\n    cluster: c\n"                                           \
    "clusters:\n- name: c\n  cluster:\n    server: " server "\n"

/* Fields: name, files, --kubeconfig, $KUBECONFIG, $HOME, context, error, code, check. */
/* clang-format off */
static const struct kcase good[] = {
    {"every cluster field, CA relative to the file",
     {{"ca.crt", CERT_PEM},
      {"config", "apiVersion: v1\nkind: Config\ncurrent-context: dev\npreferences: {}\n"
                 "clusters:\n- name: c1\n  cluster:\n    server: https://10.1.2.3:6443/\n"
                 "    certificate-authority: ca.crt\n    tls-server-name: api.example\n"
                 "    proxy-url: socks5://127.0.0.1:1080\n"
                 "    insecure-skip-tls-verify: false\n"
                 "users:\n- name: u1\n  user:\n    token: tok-123\n"
                 "contexts:\n- name: dev\n  context:\n    cluster: c1\n    user: u1\n"
                 "    namespace: team-a\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_all_cluster_fields},
    {"data fields (base64) and basic auth; -data wins over the file",
     {{"config", "current-context: x\n"
                 "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                 "    certificate-authority: does-not-exist.crt\n"
                 "    certificate-authority-data: %CERT%\n"
                 "users:\n- name: u\n  user:\n    client-certificate-data: %CERT%\n"
                 "    client-key-data: %KEY%\n    username: admin\n    password: s3cret\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_data_fields},
    {"paths are relative to the file that names them",
     {{"sub/tokens/t", "tok\n"},
      {"sub/pki/c.pem", CERT_PEM},
      {"sub/pki/k.pem", KEY_PEM},
      {"sub/config", "current-context: x\n"
                     "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                     "    certificate-authority: pki/c.pem\n"
                     "users:\n- name: u\n  user:\n    tokenFile: tokens/t\n"
                     "    client-certificate: pki/c.pem\n    client-key: ./pki/k.pem\n"
                     "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"}},
     NULL, "@/sub/config", NULL, NULL, NULL, 0, check_relative_paths},
    {"exec plugin fields",
     {{"config", "current-context: x\n"
                 "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                 "users:\n- name: u\n  user:\n    exec:\n"
                 "      apiVersion: client.authentication.k8s.io/v1beta1\n"
                 "      command: bin/./plugin.sh\n      args: [get-token, --cluster=x]\n"
                 "      env:\n      - {name: A, value: '1'}\n      - name: B\n"
                 "        value: ''\n      provideClusterInfo: true\n"
                 "      installHint: install it\n      interactiveMode: Never\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_exec},
    {"exec command without a slash is looked up in PATH",
     {{"config", "current-context: x\n"
                 "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                 "users:\n- name: u\n  user:\n    exec:\n"
                 "      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n"
                 "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_exec_path_lookup},
    {"$KUBECONFIG merged first-wins, missing files skipped",
     {{"a.yaml", "clusters:\n- name: c\n  cluster:\n    server: https://a.example\n"},
      {"b.yaml", "current-context: ctx-b\n"
                 "clusters:\n- name: c\n  cluster:\n    server: https://b.example\n"
                 "users:\n- name: u\n  user: {token: from-b}\n"
                 "contexts:\n- name: ctx-b\n  context: {cluster: c, user: u}\n"}},
     NULL, "@/missing.yaml:@/a.yaml:@/b.yaml", NULL, NULL, NULL, 0, check_merge},
    {"$KUBECONFIG: the first current-context wins",
     {{"a.yaml", "current-context: ctx-a\n"
                 "clusters:\n- name: c\n  cluster:\n    server: https://a.example\n"
                 "contexts:\n- name: ctx-a\n  context: {cluster: c}\n"},
      {"b.yaml", "current-context: ctx-b\n"
                 "contexts:\n- name: ctx-b\n  context: {cluster: c}\n"}},
     NULL, "@/a.yaml:@/b.yaml", NULL, NULL, NULL, 0, check_merge_current_context_first},
    {"context override",
     {{"config", SIMPLE("https://h") "- name: o\n  cluster:\n"
                                     "    server: https://other.example:8443/prefix/\n"
                                     "contexts:\n- name: other\n  context:\n    cluster: o\n"
                                     "    namespace: ns-other\n"
                                     "- name: x\n  context: {cluster: c}\n"}},
     "@/config", NULL, NULL, "other", NULL, 0, check_override},
    {"insecure-skip-tls-verify",
     {{"config", SIMPLE("https://h") "    insecure-skip-tls-verify: true\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_insecure},
    {"~/.kube/config when nothing else is given",
     {{"home/.kube/config", SIMPLE("https://home.example")}},
     NULL, NULL, "@/home", NULL, NULL, 0, check_home},
    {"--kubeconfig beats $KUBECONFIG",
     {{"home/.kube/config", SIMPLE("https://home.example")},
      {"other", SIMPLE("https://other.example")}},
     "@/home/.kube/config", "@/other", NULL, NULL, NULL, 0, check_home},
    {"anchors and aliases: a node, a scalar value, a key",
     {{"config", "preferences: {&k cluster: unused}\ncurrent-context: x\n"
                 "clusters:\n- name: c\n  cluster: &cl\n    server: https://anchor.example\n"
                 "- name: d\n  cluster: *cl\n"
                 "users:\n- name: &un u\n  user: {token: t}\n"
                 "contexts:\n- name: x\n  context: {*k : d, user: *un}\n"}},
     "@/config", NULL, NULL, NULL, NULL, 0, check_anchors},
    {"a kubeconfig in JSON",
     {{"config.json", "{\"current-context\":\"x\",\"clusters\":[{\"name\":\"c\",\"cluster\":"
                      "{\"server\":\"https://json.example\"}}],\"users\":[{\"name\":\"u\","
                      "\"user\":{\"token\":\"j\"}}],\"contexts\":[{\"name\":\"x\",\"context\":"
                      "{\"cluster\":\"c\",\"user\":\"u\"}}]}"}},
     "@/config.json", NULL, NULL, NULL, NULL, 0, check_json},
};
/* clang-format on */

/* ---- bad files --------------------------------------------------------- */

#define CTX_U                                                                                      \
    "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c, user: dev}\n"               \
    "clusters:\n- name: c\n  cluster: {server: 'https://h'}\n"

/* clang-format off */
static const struct kcase bad[] = {
    {"explicit file missing", {{NULL, NULL}}, "@/nope", NULL, NULL, NULL,
     "kubeconfig @/nope: cannot read: No such file or directory"},
    {"no file in $KUBECONFIG exists", {{NULL, NULL}}, NULL, "@/a:@/b", NULL, NULL,
     "no kubeconfig found: none of the files in $KUBECONFIG (@/a:@/b) exists"},
    {"no ~/.kube/config", {{NULL, NULL}}, NULL, NULL, "@", NULL,
     "no kubeconfig found: @/.kube/config does not exist and $KUBECONFIG is not set"},
    {"not YAML", {{"config", "clusters: [\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: line 2 column 1: did not find expected node content while parsing a "
     "flow node"},
    {"not a mapping", {{"config", "- a\n- b\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: not a kubeconfig: the document is not a mapping"},
    {"clusters is not a list", {{"config", "clusters: yes\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: clusters must be a list"},
    {"entry without a name", {{"config", "users:\n- user: {token: x}\n"}}, "@/config", NULL, NULL,
     NULL, "kubeconfig @/config: users[0] has no name"},
    {"no current-context", {{"config", "clusters: []\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: current-context is not set and no context was given; set "
     "current-context or choose a context"},
    {"unknown current-context", {{"config", "current-context: ghost\n"}}, "@/config", NULL, NULL,
     NULL,
     "kubeconfig @/config: current-context \"ghost\" names a context that does not exist"},
    {"unknown context override", {{"config", SIMPLE("https://h")}}, "@/config", NULL, NULL,
     "ghost", "kubeconfig @/config: context \"ghost\" does not exist"},
    {"context without cluster",
     {{"config", "current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n"}},
     "@/config", NULL, NULL, NULL, "kubeconfig @/config: context \"x\": cluster is not set"},
    {"context names a missing cluster",
     {{"config", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: context \"x\": cluster \"c\" does not exist"},
    {"context names a missing user", {{"config", CTX_U}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: context \"x\": user \"dev\" does not exist"},
    {"server missing",
     {{"config", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\n"
                 "clusters:\n- name: c\n  cluster: {certificate-authority-data: ''}\n"}},
     "@/config", NULL, NULL, NULL, "kubeconfig @/config: cluster \"c\": server is not set"},
    {"server not http(s)", {{"config", SIMPLE("ftp://h")}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"ftp://h\" is not an http:// or https:// URL"},
    {"certificate-authority-data not base64",
     {{"config", SIMPLE("https://h") "    certificate-authority-data: '!!notbase64'\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": certificate-authority-data is not valid base64"},
    {"certificate-authority-data not PEM",
     {{"config", SIMPLE("https://h") "    certificate-authority-data: aGVsbG8=\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": certificate-authority does not contain a PEM "
     "certificate"},
    {"certificate-authority file missing",
     {{"d/config", SIMPLE("https://h") "    certificate-authority: ../ca.crt\n"}},
     "@/d/config", NULL, NULL, NULL,
     "kubeconfig @/d/config: cluster \"c\": certificate-authority @/d/../ca.crt: cannot read: "
     "No such file or directory"},
    {"insecure with a CA",
     {{"config", SIMPLE("https://h") "    insecure-skip-tls-verify: true\n"
                                     "    certificate-authority-data: %CERT%\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": insecure-skip-tls-verify cannot be combined with "
     "certificate-authority; remove one of them"},
    {"insecure not a boolean",
     {{"config", SIMPLE("https://h") "    insecure-skip-tls-verify: sometimes\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": insecure-skip-tls-verify must be true or false, not "
     "\"sometimes\""},
    {"client-key-data not base64",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    client-certificate-data: %CERT%\n"
                       "    client-key-data: 'not base64!'\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": client-key-data is not valid base64"},
    {"client certificate without key",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    client-certificate-data: %CERT%\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": client-certificate is set but client-key is not; set "
     "both"},
    {"client key is not a key",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    client-certificate-data: %CERT%\n"
                       "    client-key-data: %CERT%\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": client-key does not contain a PEM private key"},
    {"tokenFile missing",
     {{"config", CTX_U "users:\n- name: dev\n  user: {tokenFile: t}\n"}}, "@/config", NULL, NULL,
     NULL,
     "kubeconfig @/config: user \"dev\": tokenFile @/t: cannot read: No such file or directory"},
    {"token and basic auth",
     {{"config", CTX_U "users:\n- name: dev\n  user: {token: a, username: b, password: c}\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": more than one authentication method: token and "
     "username/password; keep one of them"},
    {"auth-provider",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    auth-provider: {name: gcp}\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": auth-provider \"gcp\" is not supported; use an exec "
     "credential plugin"},
    {"exec without command",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    exec:\n"
                       "      apiVersion: client.authentication.k8s.io/v1\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": exec: command is not set"},
    {"exec with an unknown apiVersion",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    exec:\n"
                       "      apiVersion: client.authentication.k8s.io/v1alpha1\n"
                       "      command: x\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": exec: apiVersion "
     "\"client.authentication.k8s.io/v1alpha1\" is not supported (use "
     "client.authentication.k8s.io/v1 or v1beta1)"},
    {"exec env entry without name",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    exec:\n"
                       "      apiVersion: client.authentication.k8s.io/v1\n"
                       "      command: x\n      env: [{value: v}]\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: user \"dev\": exec: env[0] has no valid name"},
    {"token is not a string",
     {{"config", CTX_U "users:\n- name: dev\n  user:\n    token: [a, b]\n"}}, "@/config", NULL,
     NULL, NULL, "kubeconfig @/config: user \"dev\": token must be a string"},
    {"recursive alias", {{"config", "a: &x [*x]\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: line 1 column 8: alias *x is inside the node it names (a recursive "
     "alias)"},
    {"undefined alias", {{"config", "a: b\nc: *nope\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: line 2 column 4: alias *nope names no anchor defined before it"},
    {"a collection as a key", {{"config", "? [a]\n: b\n"}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: line 1 column 3: a mapping key is not a string"},
    {"server port out of range", {{"config", SIMPLE("https://127.0.0.1:99999")}}, "@/config",
     NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://127.0.0.1:99999\" is not a valid URL: "
     "its port is not a number from 1 to 65535"},
    {"server port 0", {{"config", SIMPLE("https://h:0")}}, "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://h:0\" is not a valid URL: its port "
     "is 0; use a port from 1 to 65535"},
    {"server port not a number", {{"config", SIMPLE("https://h:64x")}}, "@/config", NULL, NULL,
     NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://h:64x\" is not a valid URL: its "
     "port is not a number from 1 to 65535"},
    {"server IPv6 bracket not closed", {{"config", SIMPLE("'https://[::1'")}}, "@/config", NULL,
     NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://[::1\" is not a valid URL: its IPv6 "
     "address is malformed or its bracket is not closed (write https://[fd00::1]:6443)"},
    {"server IPv6 address malformed", {{"config", SIMPLE("'https://[fd00::zz]:443'")}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://[fd00::zz]:443\" is not a valid URL: "
     "its IPv6 address is malformed or its bracket is not closed (write "
     "https://[fd00::1]:6443)"},
    {"server without a host", {{"config", SIMPLE("https://:443")}}, "@/config", NULL, NULL,
     NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://:443\" is not a valid URL: it has no "
     "host"},
    {"server host with a bracket", {{"config", SIMPLE("'https://h]:1'")}}, "@/config", NULL,
     NULL, NULL,
     "kubeconfig @/config: cluster \"c\": server \"https://h]:1\" is not a valid URL: its host "
     "name contains characters a host name cannot have"},
    {"alias bomb",
     {{"config", "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                 "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                 "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"}},
     "@/config", NULL, NULL, NULL,
     "kubeconfig @/config: line 6 column 8: more than 200000 nodes (alias expansion?)"},
    {"error names the file that defined the user (merge)",
     {{"a.yaml", CTX_U},
      {"b.yaml", "users:\n- name: dev\n  user: {client-key-data: '%%%'}\n"}},
     NULL, "@/a.yaml:@/b.yaml", NULL, NULL,
     "kubeconfig @/b.yaml: user \"dev\": client-key-data is not valid base64"},
};
/* clang-format on */

static void test_kubeconfig__good_files(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        run_case(&good[i]);
}

static void test_kubeconfig__bad_files_give_exact_errors(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        run_case(&bad[i]);
}

/* Loads @p text from a file; returns the error code (0: loaded) and the message. */
static int load_text(const char *text, char *msg, size_t size)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/deep.yaml", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    kle_kube__config *cfg = NULL;
    int rc = kle_kube__config_load(&cfg, path, NULL, NULL, NULL);
    kle_kube__config_free(cfg);
    snprintf(msg, size, "%s", rc ? kle_error_last()->message : "");
    return rc;
}

static void assert_nesting_error(const char *text, int line, int column, const char *extra)
{
    char msg[1024], want[1024];
    assert_int_equal(load_text(text, msg, sizeof(msg)), KLE_EKUBECONFIG);
    snprintf(want, sizeof(want),
             "kubeconfig %s/deep.yaml: line %d column %d: nested more than 64 levels deep%s",
             tmpdir, line, column, extra);
    assert_string_equal(msg, want);
}

/*
 * The nesting limit (64 levels, the root included) in flow and block
 * collections and through an alias, and a document exactly at the limit
 * (not a kubeconfig, but not refused for its nesting).
 */
static void test_kubeconfig__nesting_is_limited_to_64_levels(void **state)
{
    char text[8192], msg[1024];
    size_t n = 0;
    /* Flow: the root mapping and 63 sequences is 64 levels; one more is refused. */
    n = (size_t)snprintf(text, sizeof(text), "a: ");
    for (int i = 0; i < 63; i++)
        text[n++] = '[';
    for (int i = 0; i < 63; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    assert_int_equal(load_text(text, msg, sizeof(msg)), KLE_EKUBECONFIG);
    assert_null(strstr(msg, "levels"));
    n = (size_t)snprintf(text, sizeof(text), "a: ");
    for (int i = 0; i < 64; i++)
        text[n++] = '[';
    for (int i = 0; i < 64; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    assert_nesting_error(text, 1, 67, "");

    /* Block mappings: 64 levels of keys, then one more. */
    n = 0;
    for (int i = 0; i < 64; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "%*sk%d:\n", i, "", i);
    assert_int_equal(load_text(text, msg, sizeof(msg)), KLE_EKUBECONFIG);
    assert_null(strstr(msg, "levels"));
    n += (size_t)snprintf(text + n, sizeof(text) - n, "%*sdeep: x\n", 64, "");
    assert_nesting_error(text, 65, 65, "");

    /* An alias of 40 levels used 30 levels down. */
    n = (size_t)snprintf(text, sizeof(text), "a: &deep ");
    for (int i = 0; i < 40; i++)
        text[n++] = '[';
    for (int i = 0; i < 40; i++)
        text[n++] = ']';
    n += (size_t)snprintf(text + n, sizeof(text) - n, "\nb: ");
    for (int i = 0; i < 30; i++)
        text[n++] = '[';
    n += (size_t)snprintf(text + n, sizeof(text) - n, "*deep");
    for (int i = 0; i < 30; i++)
        text[n++] = ']';
    text[n++] = '\n';
    text[n] = '\0';
    assert_nesting_error(text, 2, 34, " (through alias *deep)");
}

/*
 * A 16 MiB file of brackets (the file limit) is refused as soon as the
 * limit is passed: libyaml's scanner costs time quadratic in the nesting of
 * flow collections (50,000 brackets used to take 8 s, 100,000 43 s; this
 * file, hours). The alarm ends a parser that does not stop; the bound is
 * generous for a busy machine (and valgrind).
 */
static void test_kubeconfig__a_file_of_brackets_is_refused_at_once(void **state)
{
    size_t size = (16u << 20) - 16;
    char *text = malloc(size + 1), msg[1024], want[1024];
    assert_non_null(text);
    memcpy(text, "a: ", 3);
    memset(text + 3, '[', size - 3);
    text[size] = '\0';
    alarm(getenv("KLE_UNDER_VALGRIND") ? 600 : 60);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = load_text(text, msg, sizeof(msg));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    alarm(0);
    free(text);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal(rc, KLE_EKUBECONFIG);
    snprintf(want, sizeof(want),
             "kubeconfig %s/deep.yaml: line 1 column 67: nested more than 64 levels deep", tmpdir);
    assert_string_equal(msg, want);
    if (took > (getenv("KLE_UNDER_VALGRIND") ? 60.0 : 5.0))
        fail_msg("refusing the file took %.1f s", took);
}

static void test_kubeconfig__garbage_never_crashes(void **state)
{
    /* Mutations of a valid file: truncated at every length. */
    const char *base = "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h',"
                       " certificate-authority-data: %CERT%}\nusers:\n- name: u\n  user: "
                       "{token: t, client-key-data: %KEY%}\ncontexts:\n- name: x\n  context: "
                       "{cluster: c, user: u, namespace: n}\n";
    char *full = expand(base);
    size_t n = strlen(full);
    for (size_t cut = 0; cut < n; cut += 3) {
        char path[512];
        snprintf(path, sizeof(path), "%s/g", tmpdir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fwrite(full, 1, cut, f);
        fclose(f);
        kle_kube__config *cfg = NULL;
        int rc = kle_kube__config_load(&cfg, path, NULL, NULL, NULL);
        if (rc == 0)
            kle_kube__config_free(cfg);
        else
            assert_true(strstr(kle_error_last()->message, path) != NULL);
    }
    free(full);
}

static void test_kubeconfig__random_mutations_never_crash(void **state)
{
    const char *base = "current-context: x\nclusters:\n- name: c\n  cluster: {server: 'https://h',"
                       " insecure-skip-tls-verify: true}\nusers:\n- name: u\n  user:\n"
                       "    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
                       "args: [a], env: [{name: A, value: b}]}\ncontexts:\n- name: x\n"
                       "  context: {cluster: c, user: u, namespace: n}\n";
    static const char alphabet[] = "-:[]{}&*!|>'\"#%@,?\n\t x\\\x01\xff";
    size_t n = strlen(base);
    char *text = malloc(n + 1), path[512];
    assert_non_null(text);
    snprintf(path, sizeof(path), "%s/m", tmpdir);
    unsigned seed = 12345;
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(text, base, n + 1);
        for (int k = 0; k < 1 + iter % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % n;
            seed = seed * 1103515245u + 12345u;
            text[pos] = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
        }
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fwrite(text, 1, n, f);
        fclose(f);
        kle_kube__config *cfg = NULL;
        int rc = kle_kube__config_load(&cfg, path, NULL, NULL, NULL);
        if (rc == 0) {
            assert_non_null(cfg->server);
            kle_kube__config_free(cfg);
        } else {
            assert_non_null(strstr(kle_error_last()->message, path));
        }
    }
    free(text);
}

static void test_kubeconfig__in_cluster(void **state)
{
    char sa[512];
    snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
    write_file("sa/token", "tok\n");
    write_file("sa/ca.crt", CERT_PEM);
    write_file("sa/namespace", "kube-system\n");
    kle_kube__config *cfg = NULL;
    assert_int_equal(kle_kube__config_in_cluster(&cfg, "fd00::1", "443", sa), 0);
    assert_string_equal(cfg->server, "https://[fd00::1]:443");
    assert_string_equal(cfg->namespace_, "kube-system");
    assert_string_equal(cfg->ca.data, CERT_PEM);
    assert_non_null(strstr(cfg->token_file, "/sa/token"));
    kle_kube__config_free(cfg);

    assert_int_equal(kle_kube__config_in_cluster(&cfg, NULL, "443", sa), KLE_EKUBECONFIG);
    assert_string_equal(kle_error_last()->message,
                        "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                        "must be set (not running in a pod?)");
    char tok[600];
    snprintf(tok, sizeof(tok), "%s/token", sa);
    unlink(tok);
    assert_int_equal(kle_kube__config_in_cluster(&cfg, "10.0.0.1", "443", sa), KLE_EKUBECONFIG);
    char want[700];
    snprintf(want, sizeof(want),
             "in-cluster config: token %s: cannot read: No such file or directory", tok);
    assert_string_equal(kle_error_last()->message, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubeconfig__good_files),
        cmocka_unit_test(test_kubeconfig__bad_files_give_exact_errors),
        cmocka_unit_test(test_kubeconfig__nesting_is_limited_to_64_levels),
        cmocka_unit_test(test_kubeconfig__a_file_of_brackets_is_refused_at_once),
        cmocka_unit_test(test_kubeconfig__garbage_never_crashes),
        cmocka_unit_test(test_kubeconfig__random_mutations_never_crash),
        cmocka_unit_test(test_kubeconfig__in_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
