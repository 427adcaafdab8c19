#include "kube_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kube/kube.h"

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

int kube_server_start(kube_server *s, const char *dir, const char *const *extra)
{
    static char bufs[32][400];
    const char *args[33];
    int n = 0;

    memset(s, 0, sizeof(*s));
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    for (int i = 0; extra && extra[i] && n < 32; i++) {
        const char *at = strchr(extra[i], '@');
        if (at)
            snprintf(bufs[n], sizeof(bufs[n]), "%.*s%s%s", (int)(at - extra[i]), extra[i], dir,
                     at + 1);
        else
            snprintf(bufs[n], sizeof(bufs[n]), "%s", extra[i]);
        args[n] = bufs[n];
        n++;
    }
    args[n] = NULL;
    if (kle_test_apiserver_start(&s->h, args) != 0)
        return -1;
    snprintf(s->server, sizeof(s->server), "%s", s->h.url);
    snprintf(s->admin, sizeof(s->admin), "%s", s->h.admin_url);
    snprintf(s->token, sizeof(s->token), "%s", s->h.token);
    snprintf(s->kubeconfig, sizeof(s->kubeconfig), "%s", s->h.kubeconfig);
    const char *colon = strrchr(s->server, ':');
    snprintf(s->port, sizeof(s->port), "%s", colon ? colon + 1 : "");
    kle_buf pem = {0}, b64 = {0};
    if (kle_kube__read_file(&pem, s->h.ca_path, 1u << 20) != 0 ||
        kle_kube__base64_encode(&b64, (const unsigned char *)pem.data, pem.len) != 0 ||
        b64.len >= sizeof(s->ca_data)) {
        kle_buf__free(&pem);
        kle_buf__free(&b64);
        kube_server_stop(s);
        return -1;
    }
    memcpy(s->ca_data, b64.data, b64.len + 1);
    kle_buf__free(&pem);
    kle_buf__free(&b64);
    return 0;
}

void kube_server_stop(kube_server *s)
{
    if (s->h.pid > 0)
        kle_test_apiserver_stop(&s->h);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
    return size * n;
}

long kube_server_admin(const kube_server *s, const char *method, const char *path, const char *body)
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
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return code;
}
