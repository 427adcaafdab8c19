/* The plain-HTTP loopback admin listener that controls fault injection,
 * pause, watches and counters (their state lives in faults.c). */
#include "apiserver/apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct MHD_Daemon *admin_daemon;

typedef struct admin_req {
    kle_buf body;
    int too_large;
} admin_req;

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, json_object *obj)
{
    const char *s =
        json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
    size_t len = strlen(s);
    char *copy = malloc(len + 2);
    struct MHD_Response *resp;
    enum MHD_Result r;
    memcpy(copy, s, len);
    copy[len] = '\n';
    copy[len + 1] = '\0';
    json_object_put(obj);
    resp = MHD_create_response_from_buffer(len + 1, copy, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    r = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    return r;
}

static json_object *error_obj(const char *msg)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static enum MHD_Result admin_handle(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_size, void **ctx)
{
    admin_req *rq = *ctx;
    char err[256];
    json_object *out = NULL;
    unsigned code = 200;

    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *ctx = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->body.len + *upload_size > (1u << 20))
            rq->too_large = 1;
        else
            kle_buf__append(&rq->body, upload_data, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_large)
        return reply(c, 413, error_obj("body too large"));

    if (strcmp(url, "/healthz") == 0 && strcmp(method, "GET") == 0) {
        out = json_object_new_string("ok");
    } else if (strcmp(url, "/faults") == 0 && strcmp(method, "GET") == 0) {
        out = kle_apiserver__faults_list();
    } else if (strcmp(url, "/faults") == 0 && strcmp(method, "POST") == 0) {
        code = (unsigned)kle_apiserver__faults_add(rq->body.data, &out, err, sizeof(err));
        if (code != 201)
            out = error_obj(err);
    } else if (strcmp(url, "/faults") == 0 && strcmp(method, "DELETE") == 0) {
        kle_apiserver__faults_clear();
        out = json_object_new_array();
    } else if (strncmp(url, "/faults/", 8) == 0 && strcmp(method, "DELETE") == 0) {
        char *end;
        long id = strtol(url + 8, &end, 10);
        out = *end == '\0' ? kle_apiserver__faults_remove(id) : NULL;
        if (!out) {
            code = 404;
            out = error_obj("no such fault");
        }
    } else if (strcmp(url, "/credentials") == 0 && strcmp(method, "POST") == 0) {
        code = (unsigned)kle_apiserver__issue_request(rq->body.data, &out, err, sizeof(err));
        if (code != 201)
            out = error_obj(err);
    } else if (strcmp(url, "/pause") == 0 && strcmp(method, "POST") == 0) {
        kle_apiserver__set_paused(1);
        out = json_object_new_object();
        json_object_object_add(out, "paused", json_object_new_boolean(1));
    } else if (strcmp(url, "/resume") == 0 && strcmp(method, "POST") == 0) {
        kle_apiserver__set_paused(0);
        out = json_object_new_object();
        json_object_object_add(out, "paused", json_object_new_boolean(0));
    } else if (strcmp(url, "/watches/close") == 0 && strcmp(method, "POST") == 0) {
        atomic_fetch_add(&kle_apiserver__watch_generation, 1);
        kle_apiserver__store_lock();
        kle_apiserver__store_broadcast();
        kle_apiserver__store_unlock();
        out = json_object_new_object();
        json_object_object_add(out, "closed", json_object_new_boolean(1));
    } else if (strcmp(url, "/counters") == 0 && strcmp(method, "GET") == 0) {
        out = kle_apiserver__counters();
    } else if (strcmp(url, "/counters") == 0 && strcmp(method, "DELETE") == 0) {
        kle_apiserver__counters_clear();
        out = kle_apiserver__counters();
    } else {
        code = 404;
        snprintf(err, sizeof(err), "no admin endpoint %s %s", method, url);
        out = error_obj(err);
    }
    return reply(c, code, out);
}

static void admin_done(void *cls, struct MHD_Connection *c, void **ctx,
                       enum MHD_RequestTerminationCode toe)
{
    admin_req *rq = *ctx;
    if (rq) {
        kle_buf__free(&rq->body);
        free(rq);
        *ctx = NULL;
    }
}

int kle_apiserver__admin_start(const char *listen, char *url, size_t urllen, char *err,
                               size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    struct addrinfo hints, *ai = NULL;
    const union MHD_DaemonInfo *info;
    int ipv6;

    kle_apiserver__faults_release();
    if (!colon || (size_t)(colon - listen) >= sizeof(host) || colon == listen) {
        snprintf(err, errlen, "--admin-listen %s: expected HOST:PORT", listen);
        return -1;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host));
        host[strlen(host) - 1] = '\0';
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
        snprintf(err, errlen, "--admin-listen %s: cannot resolve", listen);
        return -1;
    }
    ipv6 = ai->ai_family == AF_INET6;
    if ((ai->ai_family == AF_INET &&
         (ntohl(((struct sockaddr_in *)ai->ai_addr)->sin_addr.s_addr) >> 24) != 127) ||
        (ipv6 && !IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr))) {
        snprintf(err, errlen, "--admin-listen %s: the admin listener must be a loopback address",
                 listen);
        freeaddrinfo(ai);
        return -1;
    }
    admin_daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                             MHD_USE_POLL | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0),
                         0, NULL, NULL, admin_handle, NULL, MHD_OPTION_EXTERNAL_LOGGER,
                         kle_apiserver__mhd_log, NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                         MHD_OPTION_NOTIFY_COMPLETED, admin_done, NULL, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!admin_daemon) {
        snprintf(err, errlen, "--admin-listen %s: cannot listen: %s", listen, strerror(errno));
        return -1;
    }
    info = MHD_get_daemon_info(admin_daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(url, urllen, ipv6 ? "http://[%s]:%u" : "http://%s:%u", host,
             info ? (unsigned)info->port : 0u);
    return 0;
}

void kle_apiserver__admin_stop(void)
{
    kle_apiserver__faults_release();
    if (admin_daemon)
        MHD_stop_daemon(admin_daemon);
    admin_daemon = NULL;
}

void kle_apiserver__admin_free(void)
{
    kle_apiserver__faults_free();
}
