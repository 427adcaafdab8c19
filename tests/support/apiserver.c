/* Test harness for kle-apiserver; see apiserver.h. */
#include "support/apiserver.h"
#include "kle/client.h"
#include "kle/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  20000

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits a short while without a busy loop; callers re-check their condition. */
static void pause_ms(int ms)
{
    poll(NULL, 0, ms);
}

int kle_test_tempdir(char *out, size_t len)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(out, len, "%s/kle-test-XXXXXX", base && *base ? base : "/tmp");
    if (n < 0 || (size_t)n >= len)
        return -1;
    return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int kle_test_rmtree(const char *path)
{
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int kle_test_write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    size_t len = strlen(text), off = 0;
    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

static int find_binary(char *out, size_t len)
{
    const char *env = getenv("KLE_APISERVER");
    char exe[PATH_MAX];
    ssize_t n;

    if (env && *env) {
        snprintf(out, len, "%s", env);
        return access(out, X_OK);
    }
    env = getenv("KLE_BUILD_DIR");
    if (env && *env) {
        snprintf(out, len, "%s/src/apiserver/kle-apiserver", env);
        if (access(out, X_OK) == 0)
            return 0;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        /* Walk up from the test's folder to the build root. */
        for (int up = 0; up < 6; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash)
                break;
            *slash = '\0';
            snprintf(out, len, "%s/src/apiserver/kle-apiserver", exe);
            if (access(out, X_OK) == 0)
                return 0;
        }
    }
    return -1;
}

static void print_log(const kle_test_apiserver *srv)
{
    FILE *f = fopen(srv->log_path, "r");
    char line[1024];
    if (!f)
        return;
    fprintf(stderr, "--- kle-apiserver log (%s) ---\n", srv->log_path);
    while (fgets(line, sizeof(line), f))
        fputs(line, stderr);
    fclose(f);
}

/* Reads KEY=VALUE lines from the env file the server wrote. */
static int read_env(kle_test_apiserver *srv, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "SERVER=", 7) == 0)
            snprintf(srv->url, sizeof(srv->url), "%s", line + 7);
        else if (strncmp(line, "ADMIN=", 6) == 0)
            snprintf(srv->admin_url, sizeof(srv->admin_url), "%s", line + 6);
        else if (strncmp(line, "TOKEN=", 6) == 0)
            snprintf(srv->token, sizeof(srv->token), "%s", line + 6);
    }
    fclose(f);
    return srv->url[0] && srv->token[0] ? 0 : -1;
}

static void free_args(kle_test_apiserver *srv)
{
    for (size_t i = 0; i < sizeof(srv->args) / sizeof(srv->args[0]); i++) {
        free(srv->args[i]);
        srv->args[i] = NULL;
    }
}

/* Starts the process with the given --listen and waits for the kubeconfig;
 * on failure everything is stopped and cleaned up. */
static int launch(kle_test_apiserver *srv, const char *listen)
{
    char bin[PATH_MAX], env_path[320], certs[320], token_path[320];
    const char *argv[80];
    int argc = 0, status;
    long long deadline;

    if (find_binary(bin, sizeof(bin)) != 0) {
        fprintf(stderr, "kle_test_apiserver_start: kle-apiserver not found; set KLE_APISERVER\n");
        kle_test_apiserver_stop(srv);
        return -1;
    }
    snprintf(env_path, sizeof(env_path), "%s/env", srv->dir);
    snprintf(certs, sizeof(certs), "%s/certs", srv->dir);
    snprintf(token_path, sizeof(token_path), "%s/admin-token", srv->dir);
    unlink(srv->kubeconfig);
    unlink(env_path);

    {
        /* KLE_APISERVER_WRAPPER (e.g. a valgrind script) runs as WRAPPER BIN ARGS... */
        const char *wrapper = getenv("KLE_APISERVER_WRAPPER");
        if (wrapper && *wrapper)
            argv[argc++] = wrapper;
    }
    argv[argc++] = bin;
    argv[argc++] = "--listen";
    argv[argc++] = listen;
    argv[argc++] = "--admin-listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--cert-dir";
    argv[argc++] = certs;
    argv[argc++] = "--admin-token-file";
    argv[argc++] = token_path;
    argv[argc++] = "--write-ca";
    argv[argc++] = srv->ca_path;
    argv[argc++] = "--write-env";
    argv[argc++] = env_path;
    argv[argc++] = "--write-kubeconfig";
    argv[argc++] = srv->kubeconfig;
    for (size_t i = 0; srv->args[i] && argc < 79; i++)
        argv[argc++] = srv->args[i];
    argv[argc] = NULL;

    srv->pid = fork();
    if (srv->pid < 0) {
        fprintf(stderr, "kle_test_apiserver_start: fork: %s\n", strerror(errno));
        srv->pid = 0;
        kle_test_apiserver_stop(srv);
        return -1;
    }
    if (srv->pid == 0) {
        int fd = open(srv->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }

    deadline = now_ms() + START_TIMEOUT_MS;
    while (access(srv->kubeconfig, F_OK) != 0) {
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            fprintf(stderr, "kle_test_apiserver_start: kle-apiserver exited (status %d)\n",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
            print_log(srv);
            srv->pid = 0;
            kle_test_apiserver_stop(srv);
            return -1;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "kle_test_apiserver_start: no kubeconfig after %d ms\n",
                    START_TIMEOUT_MS);
            print_log(srv);
            kle_test_apiserver_stop(srv);
            return -1;
        }
        pause_ms(10);
    }
    if (read_env(srv, env_path) != 0) {
        fprintf(stderr, "kle_test_apiserver_start: %s is incomplete\n", env_path);
        kle_test_apiserver_stop(srv);
        return -1;
    }
    {
        const char *colon = strrchr(srv->url, ':');
        srv->port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    }
    snprintf(srv->direct_url, sizeof(srv->direct_url), "%s", srv->url);
    if (kle_test_http2()) {
        /* The front outlives a restart (same port); the kubeconfig the
         * server wrote again is pointed at it again. */
        if (!srv->front.pid && kle_test_h2front_start(&srv->front, certs, srv->dir, srv->port)) {
            kle_test_apiserver_stop(srv);
            return -1;
        }
        if (kle_test_replace_in_file(srv->kubeconfig, srv->direct_url, srv->front.url) != 0) {
            kle_test_apiserver_stop(srv);
            return -1;
        }
        snprintf(srv->url, sizeof(srv->url), "%s", srv->front.url);
    }
    return 0;
}

int kle_test_apiserver_start(kle_test_apiserver *srv, const char *const *extra_args)
{
    memset(srv, 0, sizeof(*srv));
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (i + 1 >= sizeof(srv->args) / sizeof(srv->args[0])) {
            fprintf(stderr, "kle_test_apiserver_start: too many extra arguments\n");
            free_args(srv);
            return -1;
        }
        srv->args[i] = strdup(extra_args[i]);
    }
    if (kle_test_tempdir(srv->dir, sizeof(srv->dir)) != 0) {
        fprintf(stderr, "kle_test_apiserver_start: mkdtemp: %s\n", strerror(errno));
        free_args(srv);
        return -1;
    }
    snprintf(srv->kubeconfig, sizeof(srv->kubeconfig), "%s/kubeconfig", srv->dir);
    snprintf(srv->ca_path, sizeof(srv->ca_path), "%s/ca.crt", srv->dir);
    snprintf(srv->log_path, sizeof(srv->log_path), "%s/apiserver.log", srv->dir);
    return launch(srv, "127.0.0.1:0");
}

/* SIGTERM and wait; returns the exit status or -1. */
static int terminate(kle_test_apiserver *srv)
{
    int status = 0, rc = -1;
    long long deadline;

    if (srv->pid <= 0)
        return -1;
    kill(srv->pid, SIGTERM);
    deadline = now_ms() + STOP_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(srv->pid, &status, WNOHANG);
        if (r == srv->pid)
            break;
        if (r < 0) {
            status = -1;
            break;
        }
        if (now_ms() > deadline) {
            fprintf(stderr, "kle_test_apiserver_stop: no exit after SIGTERM; killing\n");
            print_log(srv);
            kill(srv->pid, SIGKILL);
            waitpid(srv->pid, &status, 0);
            status = -1;
            break;
        }
        pause_ms(10);
    }
    if (status != -1 && WIFEXITED(status))
        rc = WEXITSTATUS(status);
    if (rc != 0)
        print_log(srv);
    srv->pid = 0;
    return rc;
}

int kle_test_apiserver_restart(kle_test_apiserver *srv)
{
    char listen[64];
    if (terminate(srv) != 0) {
        fprintf(stderr, "kle_test_apiserver_restart: the server did not stop cleanly\n");
        kle_test_apiserver_stop(srv);
        return -1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%u", srv->port);
    return launch(srv, listen);
}

int kle_test_apiserver_stop(kle_test_apiserver *srv)
{
    kle_test_h2front_stop(&srv->front);
    int rc = terminate(srv);
    if (srv->dir[0]) {
        kle_test_rmtree(srv->dir);
        srv->dir[0] = '\0';
    }
    free_args(srv);
    return rc;
}

int kle_test_apiserver_admin(const kle_test_apiserver *srv, const char *method, const char *path,
                             const char *body, char *out, size_t outlen)
{
    struct sockaddr_in sa;
    struct timeval tv = {10, 0};
    char head[1024], resp[65536];
    size_t blen = body ? strlen(body) : 0, got = 0;
    const char *port_s = strrchr(srv->admin_url, ':'), *p;
    int fd, code = -1, n;

    if (out && outlen)
        out[0] = '\0';
    if (!port_s || strncmp(srv->admin_url, "http://127.0.0.1:", 17) != 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)strtoul(port_s + 1, NULL, 10));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto out;
    n = snprintf(head, sizeof(head),
                 "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 method, path, blen);
    if (n < 0 || (size_t)n >= sizeof(head) || write(fd, head, (size_t)n) != n)
        goto out;
    if (blen && write(fd, body, blen) != (ssize_t)blen)
        goto out;
    while (got < sizeof(resp) - 1) {
        ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1)
        code = -1;
    p = strstr(resp, "\r\n\r\n");
    if (out && outlen && p)
        snprintf(out, outlen, "%s", p + 4);
out:
    close(fd);
    return code;
}

int kle_test_apiserver_with_client(kle_test_apiserver *srv, struct kle_client **client)
{
    if (kle_test_apiserver_start(srv, NULL) != 0)
        return -1;
    kle_client_opts o = KLE_CLIENT_OPTS_INIT;
    o.kubeconfig = srv->kubeconfig;
    if (kle_client_new_from_kubeconfig(client, &o) != 0) {
        fprintf(stderr, "client: %s\n", kle_error_last()->message);
        return -1;
    }
    return 0;
}
