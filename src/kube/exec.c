/* Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1). */
#include "kube/kube.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "kle/sys/errors.h"

#define EXEC_OUTPUT_MAX (1u << 20)

extern char **environ;

void kle_kube__exec_cred_clear(kle_kube__exec_cred *cred)
{
    kle_buf__wipe(&cred->token);
    kle_buf__free(&cred->client_cert);
    kle_buf__wipe(&cred->client_key);
    cred->expires_wall_ns = 0;
}

static char *exec_info(const kle_kube__config *cfg)
{
    json_object *root = json_object_new_object(), *spec = json_object_new_object();
    json_object_object_add(root, "apiVersion", json_object_new_string(cfg->exec->api_version));
    json_object_object_add(root, "kind", json_object_new_string("ExecCredential"));
    json_object_object_add(spec, "interactive", json_object_new_boolean(0));
    if (cfg->exec->provide_cluster_info) {
        json_object *cl = json_object_new_object();
        json_object_object_add(cl, "server", json_object_new_string(cfg->server));
        if (cfg->tls_server_name)
            json_object_object_add(cl, "tls-server-name",
                                   json_object_new_string(cfg->tls_server_name));
        if (cfg->insecure)
            json_object_object_add(cl, "insecure-skip-tls-verify", json_object_new_boolean(1));
        if (cfg->ca.len) {
            kle_buf b64 = {0};
            if (kle_kube__base64_encode(&b64, (const unsigned char *)cfg->ca.data, cfg->ca.len) ==
                0)
                json_object_object_add(cl, "certificate-authority-data",
                                       json_object_new_string(b64.data));
            kle_buf__free(&b64);
        }
        if (cfg->proxy_url)
            json_object_object_add(cl, "proxy-url", json_object_new_string(cfg->proxy_url));
        json_object_object_add(spec, "cluster", cl);
    }
    json_object_object_add(root, "spec", spec);
    char *s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
    return s;
}

/* environ, minus what the plugin config overrides, plus its env and
 * KUBERNETES_EXEC_INFO. */
static char **build_env(const kle_kube__config *cfg, char *info_var)
{
    size_t n = 0, ne = 0;
    while (environ && environ[n])
        n++;
    while (cfg->exec->env[ne])
        ne++;
    char **env = calloc(n + ne + 2, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        int skip = nl == strlen("KUBERNETES_EXEC_INFO") &&
                   strncmp(environ[i], "KUBERNETES_EXEC_INFO", nl) == 0;
        for (size_t j = 0; j < ne && !skip; j++)
            skip = strncmp(cfg->exec->env[j], environ[i], nl) == 0 && cfg->exec->env[j][nl] == '=';
        if (!skip)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < ne; j++)
        env[k++] = cfg->exec->env[j];
    env[k++] = info_var;
    env[k] = NULL;
    return env;
}

static int plugin_error(const kle_kube__config *cfg, int code, const char *what)
{
    return kle_error_set(code, "%s: user \"%s\": exec plugin \"%s\" %s", cfg->origin,
                         cfg->user ? cfg->user : "", cfg->exec->command, what);
}

int kle_kube__exec_parse(kle_kube__exec_cred *out, const kle_kube__config *cfg, const char *text,
                         size_t len)
{
    char what[512];
    json_tokener *tok = json_tokener_new();
    if (!tok)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    json_object *root = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error jerr = json_tokener_get_error(tok);
    json_tokener_free(tok);
    int rc = 0;
    json_object *v, *status = NULL;
    if (!root || jerr != json_tokener_success || !json_object_is_type(root, json_type_object)) {
        rc = plugin_error(cfg, KLE_EAUTH,
                          "printed invalid output: not a JSON ExecCredential object");
        goto done;
    }
    const char *kind =
        json_object_object_get_ex(root, "kind", &v) ? json_object_get_string(v) : NULL;
    const char *api =
        json_object_object_get_ex(root, "apiVersion", &v) ? json_object_get_string(v) : NULL;
    if (!kind || strcmp(kind, "ExecCredential") != 0) {
        rc = plugin_error(cfg, KLE_EAUTH, "printed invalid output: kind is not ExecCredential");
        goto done;
    }
    if (!api || strcmp(api, cfg->exec->api_version) != 0) {
        snprintf(what, sizeof(what),
                 "printed invalid output: apiVersion \"%.100s\" is not the configured \"%s\"",
                 api ? api : "", cfg->exec->api_version);
        rc = plugin_error(cfg, KLE_EAUTH, what);
        goto done;
    }
    if (!json_object_object_get_ex(root, "status", &status) ||
        !json_object_is_type(status, json_type_object)) {
        rc = plugin_error(cfg, KLE_EAUTH, "printed invalid output: status is missing");
        goto done;
    }
    const char *token = NULL, *cert = NULL, *key = NULL, *exp = NULL;
    if (json_object_object_get_ex(status, "token", &v) && json_object_is_type(v, json_type_string))
        token = json_object_get_string(v);
    if (json_object_object_get_ex(status, "clientCertificateData", &v) &&
        json_object_is_type(v, json_type_string))
        cert = json_object_get_string(v);
    if (json_object_object_get_ex(status, "clientKeyData", &v) &&
        json_object_is_type(v, json_type_string))
        key = json_object_get_string(v);
    if (json_object_object_get_ex(status, "expirationTimestamp", &v) &&
        json_object_is_type(v, json_type_string))
        exp = json_object_get_string(v);
    if (token && !*token)
        token = NULL;
    if ((cert && *cert) != (key && *key)) {
        rc = plugin_error(cfg, KLE_EAUTH,
                          "printed invalid output: clientCertificateData and clientKeyData "
                          "must be given together");
        goto done;
    }
    if (!token && !(cert && *cert)) {
        rc = plugin_error(cfg, KLE_EAUTH,
                          "printed invalid output: status has neither token nor "
                          "clientCertificateData and clientKeyData");
        goto done;
    }
    kle_kube__exec_cred_clear(out);
    if (exp && kle_kube__parse_time(exp, &out->expires_wall_ns) != 0) {
        snprintf(what, sizeof(what),
                 "printed invalid output: expirationTimestamp \"%.64s\" is not an RFC 3339 time",
                 exp);
        rc = plugin_error(cfg, KLE_EAUTH, what);
        goto done;
    }
    if ((token && kle_buf__set(&out->token, token, strlen(token))) ||
        (cert && *cert && kle_buf__set(&out->client_cert, cert, strlen(cert))) ||
        (key && *key && kle_buf__set(&out->client_key, key, strlen(key))))
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
done:
    if (rc)
        kle_kube__exec_cred_clear(out);
    json_object_put(root);
    return rc;
}

/* Finds the program as execvp would (a name with '/' as is, else each
 * directory of PATH). Returns 0 with the path in buf, or an errno. */
static int find_program(const char *cmd, char *buf, size_t size)
{
    if (strchr(cmd, '/')) {
        if ((size_t)snprintf(buf, size, "%s", cmd) >= size)
            return ENAMETOOLONG;
        return access(buf, X_OK) == 0 ? 0 : errno;
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    for (const char *p = path; *p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        int n = snprintf(buf, size, "%.*s%s%s", (int)len, p, len ? "/" : "", cmd);
        if (n > 0 && (size_t)n < size) {
            if (access(buf, X_OK) == 0)
                return 0;
            if (errno == EACCES)
                err = EACCES;
        }
        if (!colon)
            break;
        p = colon + 1;
    }
    return err;
}

static int64_t remaining_ms(int64_t deadline_ns)
{
    int64_t left = deadline_ns - kle_kube__now_ns();
    return left <= 0 ? 0 : left / 1000000 + 1;
}

int kle_kube__exec_run(kle_kube__exec_cred *out, const kle_kube__config *cfg, int64_t deadline_ns,
                       kle_event *cancel)
{
    const kle_kube__exec *x = cfg->exec;
    char what[600];
    int rc = 0, fds[2] = {-1, -1};
    pid_t pid = -1;
    char *info = NULL, *info_var = NULL, **env = NULL, **argv = NULL;
    kle_buf output = {0};
    size_t cap = 0;
    posix_spawn_file_actions_t fa;
    int fa_init = 0;

    if (x->interactive_always)
        return plugin_error(cfg, KLE_EAUTH,
                            "needs an interactive terminal (interactiveMode: Always), which "
                            "libkle does not provide");
    info = exec_info(cfg);
    size_t n = info ? strlen(info) + 32 : 0;
    info_var = info ? malloc(n) : NULL;
    if (!info_var) {
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(info_var, n, "KUBERNETES_EXEC_INFO=%s", info);
    env = build_env(cfg, info_var);
    size_t na = 0;
    while (x->args[na])
        na++;
    argv = calloc(na + 2, sizeof(char *));
    if (!env || !argv) {
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
        goto done;
    }
    argv[0] = x->command;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = x->args[i];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        rc = kle_error_set(KLE_ESYSTEM, "exec plugin: pipe: %s", strerror(errno));
        goto done;
    }
    posix_spawn_file_actions_init(&fa);
    fa_init = 1;
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    /* The plugin gets stdin, stdout and stderr only, none of our sockets. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    KLE_LOG_V(4, "running exec credential plugin \"%s\" for user \"%s\"", x->command,
              cfg->user ? cfg->user : "");
    char program[4096];
    int e = find_program(x->command, program, sizeof(program));
    if (e == 0)
        e = posix_spawn(&pid, program, &fa, NULL, argv, env);
    close(fds[1]);
    fds[1] = -1;
    if (e != 0) {
        pid = -1;
        snprintf(what, sizeof(what), "could not be started: %s%s%s", strerror(e),
                 x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
        rc = plugin_error(cfg, KLE_EAUTH, what);
        goto done;
    }

    for (;;) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {cancel ? kle_event_fd(cancel) : -1, POLLIN, 0}};
        int64_t ms = remaining_ms(deadline_ns);
        if (ms == 0) {
            rc = plugin_error(cfg, KLE_ETIMEOUT, "did not finish within the request's timeout");
            goto done;
        }
        int pr = poll(p, 2, ms > 100 ? 100 : (int)ms);
        if (pr < 0 && errno != EINTR) {
            rc = kle_error_set(KLE_ESYSTEM, "exec plugin: poll: %s", strerror(errno));
            goto done;
        }
        if (cancel && kle_event_is_set(cancel)) {
            rc = plugin_error(cfg, KLE_ECANCELED, "was cancelled");
            goto done;
        }
        if (pr <= 0)
            continue;
        if (output.len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *d = realloc(output.data, ncap);
            if (!d) {
                rc = kle_error_set(KLE_ENOMEM, "out of memory");
                goto done;
            }
            output.data = d;
            cap = ncap;
        }
        ssize_t r = read(fds[0], output.data + output.len, cap - output.len - 1);
        if (r < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (r <= 0)
            break;
        output.len += (size_t)r;
        if (output.len > EXEC_OUTPUT_MAX) {
            rc = plugin_error(cfg, KLE_EAUTH, "printed more than 1 MiB");
            goto done;
        }
    }
    /* stdout is closed; wait for the exit status within the deadline. */
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            rc = kle_error_set(KLE_ESYSTEM, "exec plugin: waitpid: %s", strerror(errno));
            goto done;
        }
        if (remaining_ms(deadline_ns) == 0) {
            rc = plugin_error(cfg, KLE_ETIMEOUT, "did not finish within the request's timeout");
            goto done;
        }
        if (cancel && kle_event_is_set(cancel)) {
            rc = plugin_error(cfg, KLE_ECANCELED, "was cancelled");
            goto done;
        }
        poll(NULL, 0, 2);
    }
    pid = -1;
    if (WIFSIGNALED(status)) {
        snprintf(what, sizeof(what), "was killed by signal %d", WTERMSIG(status));
        rc = plugin_error(cfg, KLE_EAUTH, what);
    } else if (WEXITSTATUS(status) == 127) {
        snprintf(what, sizeof(what), "was not found or could not be run (exit status 127)%s%s",
                 x->install_hint ? ". " : "", x->install_hint ? x->install_hint : "");
        rc = plugin_error(cfg, KLE_EAUTH, what);
    } else if (WEXITSTATUS(status) != 0) {
        snprintf(what, sizeof(what), "exited with status %d", WEXITSTATUS(status));
        rc = plugin_error(cfg, KLE_EAUTH, what);
    } else {
        rc = kle_kube__exec_parse(out, cfg, output.data ? output.data : "", output.len);
    }
done:
    if (pid > 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (fds[0] >= 0)
        close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    if (output.data)
        output.len = cap;
    kle_buf__wipe(&output);
    free(info);
    free(info_var);
    free(env);
    free(argv);
    return rc;
}
