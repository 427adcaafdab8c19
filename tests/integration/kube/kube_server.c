#include "kube_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef KLE_APISERVER_BIN
#error KLE_APISERVER_BIN must name the kle-apiserver binary
#endif

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kube_write_file(const char *path, int exec, const char *fmt, ...)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "cannot write %s: %s\n", tmp, strerror(errno));
        abort();
    }
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fclose(f);
    chmod(tmp, exec ? 0755 : 0600);
    /* Atomic replacement, as Kubernetes rotates projected tokens. */
    if (rename(tmp, path) != 0)
        abort();
}

static void env_value(const char *text, const char *key, char *out, size_t size)
{
    char k[32];
    snprintf(k, sizeof(k), "%s=", key);
    const char *p = strstr(text, k);
    out[0] = '\0';
    if (!p)
        return;
    p += strlen(k);
    size_t n = strcspn(p, "\n");
    snprintf(out, size, "%.*s", (int)n, p);
}

int kube_server_start(kube_server *s, const char *dir, const char *const *extra)
{
    char env_path[400], *argv[64];
    char bufs[32][400];
    int n = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    snprintf(env_path, sizeof(env_path), "%s/server.env", dir);
    snprintf(s->kubeconfig, sizeof(s->kubeconfig), "%s/admin.kubeconfig", dir);
    unlink(env_path);
    unlink(s->kubeconfig);
    argv[n++] = (char *)KLE_APISERVER_BIN;
    argv[n++] = (char *)"--listen";
    argv[n++] = (char *)"127.0.0.1:0";
    argv[n++] = (char *)"--admin-listen";
    argv[n++] = (char *)"127.0.0.1:0";
    argv[n++] = (char *)"--write-env";
    argv[n++] = env_path;
    argv[n++] = (char *)"--write-kubeconfig";
    argv[n++] = s->kubeconfig;
    for (int i = 0; extra && extra[i] && n < 60; i++) {
        const char *at = strchr(extra[i], '@');
        if (at)
            snprintf(bufs[i], sizeof(bufs[i]), "%.*s%s%s", (int)(at - extra[i]), extra[i], dir,
                     at + 1);
        else
            snprintf(bufs[i], sizeof(bufs[i]), "%s", extra[i]);
        argv[n++] = bufs[i];
    }
    argv[n] = NULL;
    s->pid = fork();
    if (s->pid < 0)
        return -1;
    if (s->pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    /* The kubeconfig is written once the server accepts connections. */
    int64_t deadline = now_ms() + 20000;
    struct stat st;
    while (stat(s->kubeconfig, &st) != 0) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            fprintf(stderr, "kle-apiserver exited early\n");
            return -1;
        }
        if (now_ms() > deadline) {
            kube_server_stop(s);
            return -1;
        }
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    FILE *f = fopen(env_path, "r");
    if (!f)
        return -1;
    char text[8192];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    env_value(text, "SERVER", s->server, sizeof(s->server));
    env_value(text, "ADMIN", s->admin, sizeof(s->admin));
    env_value(text, "TOKEN", s->token, sizeof(s->token));
    env_value(text, "CA_DATA", s->ca_data, sizeof(s->ca_data));
    const char *colon = strrchr(s->server, ':');
    snprintf(s->port, sizeof(s->port), "%s", colon ? colon + 1 : "");
    return s->server[0] && s->token[0] ? 0 : -1;
}

void kube_server_stop(kube_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        int64_t deadline = now_ms() + 5000;
        for (;;) {
            int status;
            pid_t w = waitpid(s->pid, &status, WNOHANG);
            if (w == s->pid || (w < 0 && errno != EINTR))
                break;
            if (now_ms() > deadline) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &status, 0);
                break;
            }
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, NULL);
        }
        s->pid = 0;
    }
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    return size * n;
}

long kube_server_admin(const kube_server *s, const char *method, const char *path,
                       const char *body)
{
    char url[300];
    long code = 0;
    snprintf(url, sizeof(url), "%s%s", s->admin, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return code;
}
