/* The HTTP front: authentication, authorization, faults, and dispatch
 * of each request to its handler. */
#include "apiserver/http.h"

#include "apiserver/objects.h"
#include "base/log.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_BODY (3u * 1024 * 1024)

static int client_ca_set;

void kle_apiserver__set_options(int have_client_ca, const char *addr)
{
    client_ca_set = have_client_ca;
    kle_apiserver__discovery_set_address(addr);
}

/* ---- authentication ---- */

typedef struct groups_ctx {
    char groups[512];
} groups_ctx;

static enum MHD_Result collect_group(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    groups_ctx *g = cls;
    size_t n = strlen(g->groups);
    if (strcasecmp(key, "Impersonate-Group") == 0 && value && *value)
        snprintf(g->groups + n, sizeof(g->groups) - n, "%s%s", n ? "," : "", value);
    return MHD_YES;
}

/* The Impersonate-User and Impersonate-Group headers (kubectl --as,
 * --as-group): u becomes that user when it may impersonate them; else a
 * 403 answer and -1. */
static int impersonate(struct MHD_Connection *c, kle_apiserver__user *u, answer *a, int pretty)
{
    const char *as = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Impersonate-User");
    groups_ctx g;
    char ns[256] = "", name[256] = "", msg[1024];
    const char *res = "users", *target;
    int ok;

    if (!as || !*as)
        return 0;
    memset(&g, 0, sizeof(g));
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_group, &g);
    if (strncmp(as, "system:serviceaccount:", 22) == 0 && strchr(as + 22, ':')) {
        const char *colon = strchr(as + 22, ':');
        snprintf(ns, sizeof(ns), "%.*s", (int)(colon - (as + 22)), as + 22);
        snprintf(name, sizeof(name), "%s", colon + 1);
        res = "serviceaccounts";
        target = name;
        ok = kle_apiserver__authz_allowed(u, "impersonate", "", res, ns, name);
    } else {
        target = as;
        ok = kle_apiserver__authz_allowed(u, "impersonate", "", res, "", as);
    }
    if (ok && g.groups[0]) {
        char copy[512], *save = NULL;
        snprintf(copy, sizeof(copy), "%s", g.groups);
        for (char *t = strtok_r(copy, ",", &save); t && ok; t = strtok_r(NULL, ",", &save))
            if (!kle_apiserver__authz_allowed(u, "impersonate", "", "groups", "", t)) {
                ok = 0;
                res = "groups";
                target = as;
            }
    }
    if (!ok) {
        char scope[300] = "at the cluster scope";
        if (ns[0] && strcmp(res, "serviceaccounts") == 0)
            snprintf(scope, sizeof(scope), "in the namespace \"%s\"", ns);
        snprintf(msg, sizeof(msg),
                 "%s \"%.200s\" is forbidden: User \"%s\" cannot impersonate resource \"%s\" in "
                 "API group \"\" %s",
                 res, target, u->name, res, scope);
        kle_apiserver__answer_error(a, 403, "Forbidden", msg, NULL, NULL, pretty);
        return -1;
    }
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", as);
    if (g.groups[0])
        snprintf(u->groups, sizeof(u->groups), "%s", g.groups);
    else if (ns[0])
        snprintf(u->groups, sizeof(u->groups),
                 "system:serviceaccounts,system:serviceaccounts:%.200s", ns);
    return 0;
}

static int authenticate(struct MHD_Connection *c, kle_apiserver__user *u)
{
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        while (*t == ' ')
            t++;
        return kle_apiserver__auth_token(t, u);
    }
    if (client_ca_set) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        gnutls_session_t s;
        unsigned int status = 0, n = 0;
        const gnutls_datum_t *certs;
        if (!ci || !ci->tls_session)
            return 0;
        s = (gnutls_session_t)ci->tls_session;
        certs = gnutls_certificate_get_peers(s, &n);
        if (!certs || n == 0)
            return 0;
        if (gnutls_certificate_verify_peers2(s, &status) != GNUTLS_E_SUCCESS || status != 0)
            return 0;
        memset(u, 0, sizeof(*u));
        return kle_apiserver__cert_subject(certs[0].data, certs[0].size, u->name, sizeof(u->name),
                                           u->groups, sizeof(u->groups)) == 0;
    }
    return 0;
}

/* ---- routing ---- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **ctx)
{
    request *rq = *ctx;
    answer a;
    route rt;
    kle_apiserver__user user;
    int pretty = kle_apiserver__want_pretty(c), acceptable;
    const char *counted_verb, *counted_res;
    enum MHD_Result result;

    memset(&a, 0, sizeof(a));
    if (!rq) {
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        *ctx = rq;
        if (kle_apiserver__wait_unpaused() != 0)
            return MHD_NO;
        if (cl && strtoull(cl, NULL, 10) > MAX_BODY)
            rq->too_large = 1;
        else
            return MHD_YES;
    }
    if (*upload_size) {
        if (rq->body.len + *upload_size > MAX_BODY)
            rq->too_large = 1;
        else if (kle_buf__append(&rq->body, upload_data, *upload_size) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }

    rq->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    acceptable = kle_apiserver__negotiate(c, &a.proto) == 0;
    memset(&user, 0, sizeof(user));
    counted_verb = method;
    counted_res = "nonresource";
    if (kle_apiserver__route_request(c, method, url, &rt) == 0 && rt.kind == ROUTE_RESOURCE) {
        counted_verb = rt.verb ? rt.verb : method;
        counted_res = rt.r->plural;
    }

    if (rt.kind == ROUTE_HEALTH) {
        a.code = 200;
        a.body = strdup("ok");
    } else if (!authenticate(c, &user)) {
        kle_apiserver__answer_error(&a, 401, "Unauthorized", "Unauthorized", NULL, NULL, pretty);
    } else if (impersonate(c, &user, &a, pretty) != 0) {
        /* Answered: 403. */
    } else if (rq->too_large) {
        kle_apiserver__answer_error(&a, 413, "RequestEntityTooLarge",
                                    "Request entity too large: limit is 3145728", NULL, NULL,
                                    pretty);
    } else if (rt.kind == ROUTE_DISCOVERY) {
        kle_apiserver__discovery(&a, url, pretty);
    } else if (rt.kind == ROUTE_OPENAPI) {
        kle_apiserver__openapi(&a, url, pretty);
    } else if (rt.kind != ROUTE_RESOURCE) {
        kle_apiserver__answer_error(&a, 404, "NotFound",
                                    "the server could not find the requested resource", NULL, NULL,
                                    pretty);
    } else if (!rt.verb || strcmp(rt.verb, "deletecollection") == 0) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "the server does not allow this method on the requested resource");
        kle_apiserver__answer_error(&a, 405, "MethodNotAllowed", msg, NULL, NULL, pretty);
    } else if (!acceptable) {
        kle_apiserver__answer_error(&a, 406, "NotAcceptable",
                                    "only the following media types are accepted: "
                                    "application/json, " KLE_MEDIA_PROTOBUF,
                                    NULL, NULL, pretty);
    } else {
        kle_apiserver__fault_result f;
        route authz_rt;
        char authz_res[128];
        snprintf(authz_res, sizeof(authz_res), "%s%s%s", rt.r->plural, rt.subresource[0] ? "/" : "",
                 rt.subresource);
        rq->user = user;
        authz_rt = rt;
        /* As kube-apiserver, a list or watch of one object by
         * fieldSelector=metadata.name=X is authorized for the name X (so
         * resourceNames rules apply to it). */
        if (!rt.name[0] && (strcmp(rt.verb, "list") == 0 || strcmp(rt.verb, "watch") == 0)) {
            const char *fs = kle_apiserver__arg(c, "fieldSelector");
            const char *v = NULL;
            if (fs && strncmp(fs, "metadata.name==", 15) == 0)
                v = fs + 15;
            else if (fs && strncmp(fs, "metadata.name=", 14) == 0)
                v = fs + 14;
            if (v && *v && !strchr(v, ',') && strlen(v) < sizeof(authz_rt.name))
                snprintf(authz_rt.name, sizeof(authz_rt.name), "%s", v);
        }
        kle_apiserver__faults_match(rt.verb, rt.r->plural, rt.ns, rt.name, &f);
        if (f.latency_ms)
            kle_apiserver__sleep_ms(f.latency_ms);
        if (f.blackhole) {
            free(f.body);
            kle_apiserver__blackhole_wait();
            kle_apiserver__count(counted_verb, counted_res, 0);
            return MHD_NO;
        }
        if (atomic_load(&kle_apiserver__shutting_down)) {
            free(f.body);
            return MHD_NO;
        }
        if (f.code) {
            free(f.body);
            kle_apiserver__fault_answer(&a, f.code, f.retry_after, pretty);
        } else if (f.body) {
            /* A canned answer: whatever the rule says, as a 200. */
            a.code = 200;
            a.body = f.body;
        } else if (rt.r->review) {
            /* Every authenticated user may ask what it may do. */
            kle_apiserver__do_review(rq, &rt, &a, pretty);
        } else if (!kle_apiserver__authz_allowed(&user, rt.verb, rt.r->group, authz_res, rt.ns,
                                                 authz_rt.name)) {
            kle_apiserver__forbidden(&a, &user, &authz_rt, pretty);
        } else if (rt.subresource[0]) {
            kle_apiserver__do_token(rq, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "get") == 0) {
            kle_apiserver__do_get(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "list") == 0) {
            kle_apiserver__do_list(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "watch") == 0) {
            kle_apiserver__do_watch(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "create") == 0) {
            kle_apiserver__do_create(c, rq, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "update") == 0) {
            kle_apiserver__do_update(c, rq, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "patch") == 0) {
            kle_apiserver__do_patch(c, rq, &rt, &a, pretty);
        } else {
            kle_apiserver__do_delete(c, rq, &rt, &a, pretty);
        }
        a.close_mid = f.close_mid && !a.stream;
    }
    if (!a.body && !a.stream && a.code == 0)
        kle_apiserver__answer_error(&a, 500, "InternalError",
                                    "Internal error occurred: out of memory", NULL, NULL, pretty);
    kle_apiserver__count(counted_verb, counted_res, a.code);
    if (kle_apiserver__verbose)
        KLE_LOG_I("%s %s -> %u (user %s)", method, url, a.code, user.name[0] ? user.name : "-");
    result = kle_apiserver__send_answer(c, &a);
    free(a.body);
    return result;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    request *rq = *ctx;
    if (rq) {
        kle_buf__free(&rq->body);
        free(rq);
        *ctx = NULL;
    }
}

struct MHD_Daemon *kle_apiserver__http_start(const struct sockaddr *addr, int ipv6,
                                             const kle_apiserver__tls *tls,
                                             const char *client_ca_pem)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_OptionItem opts[10];
    int n = 0;

    memset(opts, 0, sizeof(opts));
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)kle_apiserver__mhd_log, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, (void *)addr};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)completed, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, 4000, NULL};
    if (tls) {
        flags |= MHD_USE_TLS;
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, tls->key_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, tls->cert_pem};
        if (client_ca_pem)
            opts[n++] =
                (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)client_ca_pem};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}
