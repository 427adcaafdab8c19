/* Requests of a client by verb and status code, as Prometheus text. */
#include "kle/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* The Kubernetes verb of a GET: list for a collection, get otherwise.
 * Paths: /api/v1[/namespaces/NS]/RESOURCE[/NAME...] and
 * /apis/GROUP/VERSION[/namespaces/NS]/RESOURCE[/NAME...]. */
static const char *get_verb(const char *path)
{
    const char *seg[8];
    size_t len[8], n = 0;
    for (const char *p = path; *p && *p != '?' && n < 8;) {
        while (*p == '/')
            p++;
        if (!*p || *p == '?')
            break;
        const char *e = p;
        while (*e && *e != '/' && *e != '?')
            e++;
        seg[n] = p;
        len[n++] = (size_t)(e - p);
        p = e;
    }
    size_t first = n >= 1 && len[0] == 3 && strncmp(seg[0], "api", 3) == 0    ? 2
                   : n >= 1 && len[0] == 4 && strncmp(seg[0], "apis", 4) == 0 ? 3
                                                                              : n;
    if (first >= n)
        return "get";
    size_t rest = n - first;
    if (rest >= 3 && len[first] == 10 && strncmp(seg[first], "namespaces", 10) == 0)
        rest -= 2;
    return rest == 1 ? "list" : "get";
}

static const char *method_verb(const char *method, const char *path)
{
    if (strcmp(method, "GET") == 0)
        return get_verb(path);
    if (strcmp(method, "POST") == 0)
        return "create";
    if (strcmp(method, "PUT") == 0)
        return "update";
    if (strcmp(method, "PATCH") == 0)
        return "patch";
    if (strcmp(method, "DELETE") == 0)
        return "delete";
    return "other";
}

void kle_kube__count_request(kle_client *c, const char *verb, const char *method, const char *path,
                             long status)
{
    if (!verb)
        verb = method_verb(method, path);
    int code = status > 0 && status < 1000 ? (int)status : -1;
    pthread_mutex_lock(&c->mu);
    request_count *slot = NULL;
    for (size_t i = 0; i < MAX_REQUEST_COUNTS; i++) {
        request_count *r = &c->requests[i];
        if (r->verb && r->code == code && strcmp(r->verb, verb) == 0) {
            slot = r;
            break;
        }
        if (!r->verb && !slot)
            slot = r;
    }
    if (slot) {
        /* verb is a string literal: kept as is. */
        slot->verb = verb;
        slot->code = code;
        slot->n++;
    }
    pthread_mutex_unlock(&c->mu);
}

int kle_client_metrics(char **out, kle_client *c)
{
    if (!out || !c)
        return kle_error_set(KLE_EINVAL, "kle_client_metrics: out and client are required");
    *out = NULL;
    request_count r[MAX_REQUEST_COUNTS];
    pthread_mutex_lock(&c->mu);
    memcpy(r, c->requests, sizeof(r));
    pthread_mutex_unlock(&c->mu);
    static const char head[] =
        "# HELP kle_api_requests_total Requests to the Kubernetes API server, by verb and HTTP "
        "status code (code \"error\": no answer, a timeout or a transport failure).\n"
        "# TYPE kle_api_requests_total counter\n";
    size_t cap = sizeof(head) + MAX_REQUEST_COUNTS * 80, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return kle_error_set(KLE_ENOMEM, "kle_client_metrics: out of memory");
    len = (size_t)snprintf(buf, cap, "%s", head);
    for (size_t i = 0; i < MAX_REQUEST_COUNTS; i++) {
        if (!r[i].verb)
            continue;
        char code[16];
        if (r[i].code < 0)
            snprintf(code, sizeof(code), "error");
        else
            snprintf(code, sizeof(code), "%d", r[i].code);
        int n =
            snprintf(buf + len, cap - len, "kle_api_requests_total{verb=\"%s\",code=\"%s\"} %llu\n",
                     r[i].verb, code, (unsigned long long)r[i].n);
        if (n < 0 || (size_t)n >= cap - len) {
            free(buf);
            return kle_error_set(KLE_ENOMEM, "kle_client_metrics: out of memory");
        }
        len += (size_t)n;
    }
    *out = buf;
    return 0;
}
