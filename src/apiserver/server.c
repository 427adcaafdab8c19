/* The HTTP front: authentication, authorization, faults, routing, and the
 * REST verbs over the store, including watch streams. */
#include "apiserver/server.h"

#include "apiserver/objects.h"
#include "core/log.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <inttypes.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BODY (3u * 1024 * 1024)

atomic_int kle_apiserver__shutting_down;
atomic_uint kle_apiserver__watch_generation;
int kle_apiserver__bookmark_interval = 60;
int kle_apiserver__verbose;
static int client_ca_set;
static char server_addr[128];

int64_t kle_apiserver__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void kle_apiserver__timestamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kle_apiserver__random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    static const char hex[] = "0123456789abcdef";
    if (nbytes > sizeof(raw))
        nbytes = sizeof(raw);
    RAND_bytes(raw, (int)nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

static void new_uid(char *out)
{
    unsigned char r[16];
    RAND_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

void kle_apiserver__set_options(int have_client_ca, const char *addr)
{
    client_ca_set = have_client_ca;
    snprintf(server_addr, sizeof(server_addr), "%s", addr);
}

/* ---- per-request state ---- */

typedef struct request {
    kle_apiserver__buf body;
    const char *content_type; /* Borrowed from the connection. */
    int too_large;
    int started;
} request;

typedef struct route {
    int kind;    /* ROUTE_* */
    int res;     /* For resource routes: the API resource. */
    int store;   /* Where its objects are stored. */
    int convert; /* 1: stored as core/v1 Events, served as events.k8s.io/v1. */
    const kle_apiserver__resource *r;
    char ns[256];
    char name[256];
    const char *verb;
    char group[128];
} route;

enum { ROUTE_NONE, ROUTE_RESOURCE, ROUTE_DISCOVERY, ROUTE_HEALTH, ROUTE_OPENAPI };

/* What a handler answers. */
typedef struct answer {
    unsigned code;
    char *body; /* Heap; NULL for an empty body. */
    int retry_after;
    int close_mid;
    struct MHD_Response *stream; /* A watch stream instead of a body. */
} answer;

static int want_pretty(struct MHD_Connection *c)
{
    const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pretty");
    return p && (strcmp(p, "true") == 0 || strcmp(p, "1") == 0);
}

/* 1 when the client asks for server-side printing (kubectl get). */
static int want_table(struct MHD_Connection *c)
{
    const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    return acc && strstr(acc, "as=Table") != NULL;
}

static char *to_text(json_object *o, int pretty)
{
    const char *s = json_object_to_json_string_ext(
        o, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

static void answer_json(answer *a, unsigned code, json_object *o, int pretty)
{
    a->code = code;
    a->body = to_text(o, pretty);
}

/* metadata.<field> of a stored object, "" when missing (hand-edited state). */
static const char *meta_or_empty(json_object *obj, const char *field)
{
    const char *v = kle_apiserver__meta_str(obj, field);
    return v ? v : "";
}

/* The object as the route's API serves it (a new reference). */
static json_object *served(const route *rt, json_object *stored)
{
    return rt->convert ? kle_apiserver__event_convert(stored, 0) : json_object_get(stored);
}

/* The object as it is stored (takes obj, returns a new reference). */
static json_object *to_storage(const route *rt, json_object *obj)
{
    json_object *c;
    if (!rt->convert)
        return obj;
    c = kle_apiserver__event_convert(obj, 1);
    json_object_put(obj);
    return c;
}

static void answer_obj(answer *a, unsigned code, const route *rt, json_object *stored, int pretty)
{
    json_object *o = served(rt, stored);
    answer_json(a, code, o, pretty);
    json_object_put(o);
}

/* Answers with a Status; takes ownership of st. */
static void answer_status(answer *a, json_object *st, int pretty)
{
    json_object *code;
    json_object_object_get_ex(st, "code", &code);
    answer_json(a, (unsigned)json_object_get_int(code), st, pretty);
    json_object_put(st);
}

static void answer_error(answer *a, int code, const char *reason, const char *msg,
                         const kle_apiserver__resource *r, const char *name, int pretty)
{
    answer_status(a, kle_apiserver__status(code, reason, msg, r, name, NULL), pretty);
}

static void not_found(answer *a, const kle_apiserver__resource *r, const char *name, int pretty)
{
    char q[256], msg[1024];
    kle_apiserver__qualified(r, q, sizeof(q));
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", q, name);
    answer_error(a, 404, "NotFound", msg, r, name, pretty);
}

static void conflict(answer *a, const kle_apiserver__resource *r, const char *name, const char *why,
                     int pretty)
{
    char q[256], msg[1024];
    kle_apiserver__qualified(r, q, sizeof(q));
    snprintf(msg, sizeof(msg), "Operation cannot be fulfilled on %s \"%s\": %s", q, name,
             why ? why
                 : "the object has been modified; please apply your changes to the latest "
                   "version and try again");
    answer_error(a, 409, "Conflict", msg, r, name, pretty);
}

/* ---- authentication ---- */

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

static int find_resource(const char *group, const char *version, const char *plural)
{
    for (size_t i = 0; i < kle_apiserver__nresources; i++) {
        const kle_apiserver__resource *r = &kle_apiserver__resources[i];
        if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
            strcmp(r->plural, plural) == 0)
            return (int)i;
    }
    return -1;
}

static int split(const char *url, char parts[8][256])
{
    int n = 0;
    const char *p = url;
    while (*p == '/')
        p++;
    while (*p && n < 8) {
        const char *s = strchr(p, '/');
        size_t l = s ? (size_t)(s - p) : strlen(p);
        if (l >= 256)
            return -1;
        memcpy(parts[n], p, l);
        parts[n][l] = '\0';
        n++;
        if (!s)
            break;
        p = s + 1;
        while (*p == '/')
            p++;
    }
    if (*p && n == 8)
        return -1;
    return n;
}

static int is_watch(struct MHD_Connection *c)
{
    const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "watch");
    return w && (strcmp(w, "true") == 0 || strcmp(w, "1") == 0);
}

/* Fills rt from method and url; returns 0, or -1 for an unknown path. */
static int route_request(struct MHD_Connection *c, const char *method, const char *url, route *rt)
{
    char p[8][256];
    int n = split(url, p), off, collection;
    const char *group, *version;

    memset(rt, 0, sizeof(*rt));
    rt->kind = ROUTE_NONE;
    if (n < 0)
        return -1;
    if (n == 1 && (strcmp(p[0], "healthz") == 0 || strcmp(p[0], "livez") == 0 ||
                   strcmp(p[0], "readyz") == 0)) {
        rt->kind = ROUTE_HEALTH;
        return 0;
    }
    if ((n == 1 &&
         (strcmp(p[0], "version") == 0 || strcmp(p[0], "api") == 0 || strcmp(p[0], "apis") == 0)) ||
        (n == 2 && (strcmp(p[0], "api") == 0 || strcmp(p[0], "apis") == 0)) ||
        (n == 3 && strcmp(p[0], "apis") == 0)) {
        rt->kind = ROUTE_DISCOVERY;
        if (n == 3 && find_resource(p[1], p[2], "") < 0) {
            /* Group versions are discovery only when the group is served. */
            int known = 0;
            for (size_t i = 0; i < kle_apiserver__nresources; i++)
                if (strcmp(kle_apiserver__resources[i].group, p[1]) == 0 &&
                    strcmp(kle_apiserver__resources[i].version, p[2]) == 0)
                    known = 1;
            if (!known)
                return -1;
        }
        return 0;
    }
    if (n >= 2 && strcmp(p[0], "openapi") == 0 && strcmp(p[1], "v3") == 0) {
        rt->kind = ROUTE_OPENAPI;
        return 0;
    }
    if (n >= 3 && strcmp(p[0], "api") == 0) {
        group = "";
        version = p[1];
        off = 2;
    } else if (n >= 4 && strcmp(p[0], "apis") == 0) {
        group = p[1];
        version = p[2];
        off = 3;
    } else {
        return -1;
    }
    snprintf(rt->group, sizeof(rt->group), "%.127s", group);
    n -= off;
    /* Forms: {res} | {res}/{name} (cluster-scoped) | namespaces/{ns}/{res}[/{name}] */
    if (n >= 3 && strcmp(p[off], "namespaces") == 0 && !(n == 2)) {
        rt->res = find_resource(group, version, p[off + 2]);
        if (rt->res < 0 || !kle_apiserver__resources[rt->res].namespaced || n > 4)
            return -1;
        snprintf(rt->ns, sizeof(rt->ns), "%s", p[off + 1]);
        if (n == 4)
            snprintf(rt->name, sizeof(rt->name), "%s", p[off + 3]);
        collection = n == 3;
    } else if (n == 1 || n == 2) {
        rt->res = find_resource(group, version, p[off]);
        if (rt->res < 0)
            return -1;
        if (n == 2) {
            if (kle_apiserver__resources[rt->res].namespaced)
                return -1;
            snprintf(rt->name, sizeof(rt->name), "%s", p[off + 1]);
        }
        collection = n == 1;
    } else {
        return -1;
    }
    rt->kind = ROUTE_RESOURCE;
    rt->r = &kle_apiserver__resources[rt->res];
    rt->store = rt->res == KLE_RES_EVENTS_V1 ? KLE_RES_CORE_EVENTS : rt->res;
    rt->convert = rt->store != rt->res;
    if (strcmp(method, "GET") == 0)
        rt->verb = collection ? (is_watch(c) ? "watch" : "list") : "get";
    else if (strcmp(method, "POST") == 0)
        rt->verb = collection ? "create" : NULL;
    else if (strcmp(method, "PUT") == 0)
        rt->verb = collection ? NULL : "update";
    else if (strcmp(method, "PATCH") == 0)
        rt->verb = collection ? NULL : "patch";
    else if (strcmp(method, "DELETE") == 0)
        rt->verb = collection ? "deletecollection" : "delete";
    else
        rt->verb = NULL;
    /* The all-namespaces path of a namespaced resource only lists and watches. */
    if (rt->verb && rt->r->namespaced && !rt->ns[0] && strcmp(rt->verb, "list") != 0 &&
        strcmp(rt->verb, "watch") != 0)
        rt->verb = NULL;
    return 0;
}

/* ---- discovery ---- */

static json_object *str_array(const char *const *v)
{
    json_object *a = json_object_new_array();
    for (; *v; v++)
        json_object_array_add(a, json_object_new_string(*v));
    return a;
}

static json_object *group_json(const char *group)
{
    json_object *g = json_object_new_object(), *versions = json_object_new_array(), *gv;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s/v1", group);
    json_object_object_add(g, "name", json_object_new_string(group));
    gv = json_object_new_object();
    json_object_object_add(gv, "groupVersion", json_object_new_string(buf));
    json_object_object_add(gv, "version", json_object_new_string("v1"));
    json_object_array_add(versions, gv);
    json_object_object_add(g, "versions", versions);
    gv = json_object_new_object();
    json_object_object_add(gv, "groupVersion", json_object_new_string(buf));
    json_object_object_add(gv, "version", json_object_new_string("v1"));
    json_object_object_add(g, "preferredVersion", gv);
    return g;
}

static const char *const served_groups[] = {"coordination.k8s.io", "events.k8s.io", NULL};

static void discovery(answer *a, const char *url, int pretty)
{
    char p[8][256];
    int n = split(url, p);
    json_object *o = json_object_new_object();
    static const char *const verbs[] = {"create", "delete", "get",   "list",
                                        "patch",  "update", "watch", NULL};

    if (n == 1 && strcmp(p[0], "version") == 0) {
        json_object_object_add(o, "major", json_object_new_string("1"));
        json_object_object_add(o, "minor", json_object_new_string("32"));
        json_object_object_add(o, "gitVersion", json_object_new_string("v1.32.0-kle"));
        json_object_object_add(o, "gitCommit", json_object_new_string("kle-apiserver"));
        json_object_object_add(o, "gitTreeState", json_object_new_string("clean"));
        json_object_object_add(o, "buildDate", json_object_new_string("2026-01-01T00:00:00Z"));
        json_object_object_add(o, "goVersion", json_object_new_string("none"));
        json_object_object_add(o, "compiler", json_object_new_string("gc"));
        json_object_object_add(o, "platform", json_object_new_string("linux/amd64"));
    } else if (n == 1 && strcmp(p[0], "api") == 0) {
        static const char *const v[] = {"v1", NULL};
        json_object *cidrs = json_object_new_array(), *cidr = json_object_new_object();
        json_object_object_add(o, "kind", json_object_new_string("APIVersions"));
        json_object_object_add(o, "versions", str_array(v));
        json_object_object_add(cidr, "clientCIDR", json_object_new_string("0.0.0.0/0"));
        json_object_object_add(cidr, "serverAddress", json_object_new_string(server_addr));
        json_object_array_add(cidrs, cidr);
        json_object_object_add(o, "serverAddressByClientCIDRs", cidrs);
    } else if (n == 1 && strcmp(p[0], "apis") == 0) {
        json_object *groups = json_object_new_array();
        json_object_object_add(o, "kind", json_object_new_string("APIGroupList"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        for (const char *const *g = served_groups; *g; g++)
            json_object_array_add(groups, group_json(*g));
        json_object_object_add(o, "groups", groups);
    } else if (n == 2 && strcmp(p[0], "apis") == 0) {
        int known = 0;
        for (const char *const *g = served_groups; *g; g++)
            known |= strcmp(*g, p[1]) == 0;
        json_object_put(o);
        if (!known) {
            answer_error(a, 404, "NotFound", "the server could not find the requested resource",
                         NULL, NULL, pretty);
            return;
        }
        o = group_json(p[1]);
        json_object_object_add(o, "kind", json_object_new_string("APIGroup"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    } else if (n == 2 && strcmp(p[0], "api") == 0 && strcmp(p[1], "v1") != 0) {
        json_object_put(o);
        answer_error(a, 404, "NotFound", "the server could not find the requested resource", NULL,
                     NULL, pretty);
        return;
    } else {
        const char *group = strcmp(p[0], "api") == 0 ? "" : p[1];
        json_object *list = json_object_new_array();
        char gv[300];
        snprintf(gv, sizeof(gv), "%.255s%sv1", group, group[0] ? "/" : "");
        json_object_object_add(o, "kind", json_object_new_string("APIResourceList"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "groupVersion", json_object_new_string(gv));
        for (size_t i = 0; i < kle_apiserver__nresources; i++) {
            const kle_apiserver__resource *r = &kle_apiserver__resources[i];
            json_object *e;
            if (strcmp(r->group, group) != 0)
                continue;
            e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(r->plural));
            json_object_object_add(e, "singularName", json_object_new_string(r->singular));
            json_object_object_add(e, "namespaced", json_object_new_boolean(r->namespaced));
            json_object_object_add(e, "kind", json_object_new_string(r->kind));
            json_object_object_add(e, "verbs", str_array(verbs));
            if (r->short_name) {
                const char *sn[] = {r->short_name, NULL};
                json_object_object_add(e, "shortNames", str_array(sn));
            }
            json_object_array_add(list, e);
        }
        json_object_object_add(o, "resources", list);
    }
    answer_json(a, 200, o, pretty);
    json_object_put(o);
}

/* A minimal OpenAPI v3: the index, and per group version the item paths
 * with their PATCH operation, so kubectl sees that the server validates
 * fields (fieldValidation) and skips client-side schema validation. */
static void openapi(answer *a, const char *url, int pretty)
{
    char p[8][256];
    int n = split(url, p);
    json_object *o = json_object_new_object(), *paths = json_object_new_object();
    const char *group = NULL;

    if (n == 2) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "serverRelativeURL",
                               json_object_new_string("/openapi/v3/api/v1?hash=kle1"));
        json_object_object_add(paths, "api/v1", e);
        for (const char *const *g = served_groups; *g; g++) {
            char key[256], rel[300];
            snprintf(key, sizeof(key), "apis/%s/v1", *g);
            snprintf(rel, sizeof(rel), "/openapi/v3/%s?hash=kle1", key);
            e = json_object_new_object();
            json_object_object_add(e, "serverRelativeURL", json_object_new_string(rel));
            json_object_object_add(paths, key, e);
        }
        json_object_object_add(o, "paths", paths);
        answer_json(a, 200, o, pretty);
        json_object_put(o);
        return;
    }
    if (n == 4 && strcmp(p[2], "api") == 0 && strcmp(p[3], "v1") == 0)
        group = "";
    else if (n == 5 && strcmp(p[2], "apis") == 0 && strcmp(p[4], "v1") == 0)
        for (const char *const *g = served_groups; *g; g++)
            if (strcmp(*g, p[3]) == 0)
                group = *g;
    if (!group) {
        json_object_put(o);
        json_object_put(paths);
        answer_error(a, 404, "NotFound", "the server could not find the requested resource", NULL,
                     NULL, pretty);
        return;
    }
    json_object_object_add(o, "openapi", json_object_new_string("3.0.0"));
    {
        json_object *info = json_object_new_object();
        json_object_object_add(info, "title", json_object_new_string("Kubernetes"));
        json_object_object_add(info, "version", json_object_new_string("v1.32.0-kle"));
        json_object_object_add(o, "info", info);
    }
    for (size_t i = 0; i < kle_apiserver__nresources; i++) {
        const kle_apiserver__resource *r = &kle_apiserver__resources[i];
        json_object *item, *patch, *gvk, *params, *param, *schema;
        char key[512];
        if (strcmp(r->group, group) != 0)
            continue;
        snprintf(key, sizeof(key), "/%s%s%s/v1/%s%s/{name}", group[0] ? "apis/" : "api", group,
                 group[0] ? "" : "", r->namespaced ? "namespaces/{namespace}/" : "", r->plural);
        gvk = json_object_new_object();
        json_object_object_add(gvk, "group", json_object_new_string(group));
        json_object_object_add(gvk, "version", json_object_new_string("v1"));
        json_object_object_add(gvk, "kind", json_object_new_string(r->kind));
        params = json_object_new_array();
        for (int k = 0; k < 3; k++) {
            static const char *const names[] = {"fieldValidation", "fieldManager", "dryRun"};
            param = json_object_new_object();
            json_object_object_add(param, "name", json_object_new_string(names[k]));
            json_object_object_add(param, "in", json_object_new_string("query"));
            schema = json_object_new_object();
            json_object_object_add(schema, "type", json_object_new_string("string"));
            json_object_object_add(param, "schema", schema);
            json_object_array_add(params, param);
        }
        patch = json_object_new_object();
        json_object_object_add(patch, "x-kubernetes-group-version-kind", gvk);
        json_object_object_add(patch, "parameters", params);
        item = json_object_new_object();
        json_object_object_add(item, "patch", patch);
        json_object_object_add(paths, key, item);
    }
    json_object_object_add(o, "paths", paths);
    answer_json(a, 200, o, pretty);
    json_object_put(o);
}

/* ---- verbs ---- */

typedef struct list_ctx {
    json_object *items;
    const char *fsel, *lsel;
    const route *rt;
} list_ctx;

static void list_add(json_object *stored, void *arg)
{
    list_ctx *lc = arg;
    json_object *obj = served(lc->rt, stored);
    if (kle_apiserver__selector_match(obj, lc->fsel, 0) &&
        kle_apiserver__selector_match(obj, lc->lsel, 1))
        json_object_array_add(lc->items, obj);
    else
        json_object_put(obj);
}

static const char *arg(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static int dry_run(struct MHD_Connection *c)
{
    const char *d = arg(c, "dryRun");
    return d && *d;
}

static int check_selectors(struct MHD_Connection *c, answer *a, int pretty)
{
    char err[512];
    if (kle_apiserver__selector_check(arg(c, "fieldSelector"), 0, err, sizeof(err)) != 0 ||
        kle_apiserver__selector_check(arg(c, "labelSelector"), 1, err, sizeof(err)) != 0) {
        answer_error(a, 400, "BadRequest", err, NULL, NULL, pretty);
        return -1;
    }
    return 0;
}

static void do_list(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    list_ctx lc;
    json_object *list, *meta;
    char av[256], num[32];

    if (check_selectors(c, a, pretty) != 0)
        return;
    lc.items = json_object_new_array();
    lc.fsel = arg(c, "fieldSelector");
    lc.lsel = arg(c, "labelSelector");
    lc.rt = rt;
    list = json_object_new_object();
    kle_apiserver__api_version(rt->r, av, sizeof(av));
    json_object_object_add(list, "kind", json_object_new_string(rt->r->list_kind));
    json_object_object_add(list, "apiVersion", json_object_new_string(av));
    meta = json_object_new_object();
    json_object_object_add(list, "metadata", meta);
    kle_apiserver__store_lock();
    snprintf(num, sizeof(num), "%" PRIu64, kle_apiserver__store_rv());
    json_object_object_add(meta, "resourceVersion", json_object_new_string(num));
    kle_apiserver__store_each(rt->store, rt->r->namespaced && rt->ns[0] ? rt->ns : NULL, list_add,
                              &lc);
    if (want_table(c)) {
        json_object *t = kle_apiserver__table(rt->r, lc.items, num);
        answer_json(a, 200, t, pretty);
        json_object_put(t);
        json_object_put(lc.items);
    } else {
        json_object_object_add(list, "items", lc.items);
        answer_json(a, 200, list, pretty);
    }
    json_object_put(list);
    kle_apiserver__store_unlock();
}

static void do_get(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    json_object *obj;
    kle_apiserver__store_lock();
    obj = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (obj && want_table(c)) {
        json_object *items = json_object_new_array(), *t;
        json_object_array_add(items, served(rt, obj));
        t = kle_apiserver__table(rt->r, items, NULL);
        answer_json(a, 200, t, pretty);
        json_object_put(t);
        json_object_put(items);
    } else if (obj) {
        answer_obj(a, 200, rt, obj, pretty);
    }
    kle_apiserver__store_unlock();
    if (!obj)
        not_found(a, rt->r, rt->name, pretty);
}

/* Parses and checks a request body for create/update; NULL with the answer
 * filled on error. */
static json_object *parse_body(const request *rq, const route *rt, answer *a, int pretty)
{
    struct json_tokener *tok;
    json_object *obj, *v;
    char msg[1024], av[256];
    enum json_tokener_error jerr;

    {
        const char *ct = rq->content_type;
        if (ct && strncmp(ct, "application/vnd.kubernetes.protobuf", 35) == 0) {
            obj = kle_apiserver__proto_decode((const unsigned char *)rq->body.data, rq->body.len,
                                              msg, sizeof(msg));
            if (!obj) {
                answer_error(a, 415, "UnsupportedMediaType", msg, NULL, NULL, pretty);
                return NULL;
            }
            goto decoded;
        }
        if (ct && *ct && strncmp(ct, "application/json", 16) != 0) {
            answer_error(a, 415, "UnsupportedMediaType",
                         "the body of the request was in an unknown format - accepted media "
                         "types include: application/json",
                         NULL, NULL, pretty);
            return NULL;
        }
    }
    if (!rq->body.data || rq->body.len == 0) {
        answer_error(a, 400, "BadRequest", "the body of the request was empty", NULL, NULL, pretty);
        return NULL;
    }
    tok = json_tokener_new();
    obj = json_tokener_parse_ex(tok, rq->body.data, (int)rq->body.len);
    jerr = json_tokener_get_error(tok);
    if (!obj || jerr != json_tokener_success || json_tokener_get_parse_end(tok) < rq->body.len) {
        size_t end = json_tokener_get_parse_end(tok);
        int trailing = obj && jerr == json_tokener_success;
        while (trailing && end < rq->body.len &&
               (rq->body.data[end] == ' ' || rq->body.data[end] == '\n' ||
                rq->body.data[end] == '\r' || rq->body.data[end] == '\t'))
            end++;
        if (!(trailing && end == rq->body.len)) {
            snprintf(msg, sizeof(msg),
                     "couldn't get version/kind; json parse error: %s at offset %zu",
                     trailing ? "invalid character after top-level value"
                              : json_tokener_error_desc(jerr == json_tokener_success ||
                                                                jerr == json_tokener_continue
                                                            ? json_tokener_error_parse_eof
                                                            : jerr),
                     json_tokener_get_parse_end(tok));
            json_tokener_free(tok);
            json_object_put(obj);
            answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
            return NULL;
        }
    }
    json_tokener_free(tok);
    if (!json_object_is_type(obj, json_type_object)) {
        snprintf(
            msg, sizeof(msg),
            "couldn't get version/kind; json parse error: json: cannot unmarshal %s into "
            "Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; "
            "Kind string \"json:\\\"kind,omitempty\\\"\" }",
            json_type_to_name(json_object_get_type(obj)));
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return NULL;
    }
decoded:
    kle_apiserver__api_version(rt->r, av, sizeof(av));
    for (int f = 0; f < 2; f++) {
        static const char *const names[] = {"apiVersion", "kind"};
        if (json_object_object_get_ex(obj, names[f], &v) && v &&
            !json_object_is_type(v, json_type_string)) {
            snprintf(msg, sizeof(msg),
                     "couldn't get version/kind; json parse error: json: cannot unmarshal %s "
                     "into Go struct field .%s of type string",
                     json_type_to_name(json_object_get_type(v)), names[f]);
            json_object_put(obj);
            answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
            return NULL;
        }
    }
    if (json_object_object_get_ex(obj, "apiVersion", &v) && v &&
        strcmp(json_object_get_string(v), av) != 0) {
        snprintf(msg, sizeof(msg),
                 "the API version in the data (%s) does not match the expected API version (%s)",
                 json_object_get_string(v), av);
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return NULL;
    }
    if (json_object_object_get_ex(obj, "kind", &v) && v &&
        strcmp(json_object_get_string(v), rt->r->kind) != 0) {
        snprintf(msg, sizeof(msg),
                 "the kind in the data (%s) does not match the expected kind (%s)",
                 json_object_get_string(v), rt->r->kind);
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return NULL;
    }
    {
        /* apiVersion and kind first, as kube-apiserver writes them. */
        json_object *ordered = json_object_new_object();
        json_object_object_add(ordered, "kind", json_object_new_string(rt->r->kind));
        json_object_object_add(ordered, "apiVersion", json_object_new_string(av));
        json_object_object_foreach(obj, key, val)
        {
            if (strcmp(key, "kind") != 0 && strcmp(key, "apiVersion") != 0)
                json_object_object_add(ordered, key, json_object_get(val));
        }
        json_object_put(obj);
        obj = ordered;
    }
    if (kle_apiserver__decode_check(rt->r, obj, msg, sizeof(msg)) != 0) {
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return NULL;
    }
    return obj;
}

/* Checks metadata.namespace against the URL; sets it. */
static int fix_namespace(json_object *obj, const route *rt, answer *a, int pretty)
{
    json_object *meta = kle_apiserver__meta(obj);
    const char *ns = kle_apiserver__meta_str(obj, "namespace");
    if (!rt->r->namespaced) {
        json_object_object_del(meta, "namespace");
        return 0;
    }
    if (ns && *ns && strcmp(ns, rt->ns) != 0) {
        answer_error(a, 400, "BadRequest",
                     "the namespace of the provided object does not match the namespace sent "
                     "on the request",
                     NULL, NULL, pretty);
        return -1;
    }
    json_object_object_add(meta, "namespace", json_object_new_string(rt->ns));
    return 0;
}

/* Lock held. 0 when the namespace of a namespaced route exists. */
static int namespace_exists(const route *rt, answer *a, int pretty)
{
    if (!rt->r->namespaced || kle_apiserver__store_get(KLE_RES_NAMESPACES, "", rt->ns) != NULL)
        return 0;
    not_found(a, &kle_apiserver__resources[KLE_RES_NAMESPACES], rt->ns, pretty);
    return -1;
}

static void persist_failed(answer *a, int pretty)
{
    answer_error(a, 500, "InternalError",
                 "Internal error occurred: persisting the change to --data-dir failed", NULL, NULL,
                 pretty);
}

static void do_create(struct MHD_Connection *c, const request *rq, const route *rt, answer *a,
                      int pretty)
{
    json_object *obj = parse_body(rq, rt, a, pretty), *meta, *causes;
    const char *name, *gen;
    char namebuf[300], uid[40], ts[40];

    if (!obj)
        return;
    if (fix_namespace(obj, rt, a, pretty) != 0) {
        json_object_put(obj);
        return;
    }
    meta = kle_apiserver__meta(obj);
    name = kle_apiserver__meta_str(obj, "name");
    gen = kle_apiserver__meta_str(obj, "generateName");
    if ((!name || !*name) && gen && *gen) {
        static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
        unsigned char r[5];
        char suffix[6];
        RAND_bytes(r, sizeof(r));
        for (int i = 0; i < 5; i++)
            suffix[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
        suffix[5] = '\0';
        snprintf(namebuf, sizeof(namebuf), "%.250s%s", gen, suffix);
        json_object_object_add(meta, "name", json_object_new_string(namebuf));
        name = kle_apiserver__meta_str(obj, "name");
    }
    /* Server-owned fields. */
    json_object_object_del(meta, "resourceVersion");
    json_object_object_del(meta, "deletionTimestamp");
    new_uid(uid);
    json_object_object_add(meta, "uid", json_object_new_string(uid));
    kle_apiserver__timestamp(ts, sizeof(ts));
    json_object_object_add(meta, "creationTimestamp", json_object_new_string(ts));
    if (rt->res == KLE_RES_NAMESPACES) {
        json_object *spec = json_object_new_object(), *status = json_object_new_object();
        const char *fin[] = {"kubernetes", NULL};
        json_object_object_add(spec, "finalizers", str_array(fin));
        json_object_object_add(obj, "spec", spec);
        json_object_object_add(status, "phase", json_object_new_string("Active"));
        json_object_object_add(obj, "status", status);
    }
    causes = kle_apiserver__validate(rt->r, obj);
    if (causes) {
        answer_status(a, kle_apiserver__invalid_status(rt->r, name, causes), pretty);
        json_object_put(obj);
        return;
    }
    {
        char keep[300];
        snprintf(keep, sizeof(keep), "%s", name);
        obj = to_storage(rt, obj);
        name = NULL;
        json_object_object_add(kle_apiserver__meta(obj), "name", json_object_new_string(keep));
        name = kle_apiserver__meta_str(obj, "name");
    }
    kle_apiserver__store_lock();
    if (namespace_exists(rt, a, pretty) != 0) {
        json_object_put(obj);
    } else if (kle_apiserver__store_get(rt->store, rt->ns, name)) {
        char q[256], msg[1024];
        kle_apiserver__qualified(rt->r, q, sizeof(q));
        snprintf(msg, sizeof(msg), "%s \"%s\" already exists", q, name);
        answer_error(a, 409, "AlreadyExists", msg, rt->r, name, pretty);
        json_object_put(obj);
    } else if (dry_run(c)) {
        answer_obj(a, 201, rt, obj, pretty);
        json_object_put(obj);
    } else {
        char key[300];
        snprintf(key, sizeof(key), "%s", name);
        if (kle_apiserver__store_put(rt->store, rt->ns, key, obj, KLE_EV_ADDED) != 0)
            persist_failed(a, pretty);
        else
            answer_obj(a, 201, rt, obj, pretty);
    }
    kle_apiserver__store_unlock();
}

/* Stores obj as the new version of existing (lock held; takes obj). The
 * server-owned metadata of existing is kept; a no-op write keeps the
 * resourceVersion, as kube-apiserver does. */
static void replace_locked(struct MHD_Connection *c, const route *rt, json_object *existing,
                           json_object *obj, answer *a, int pretty)
{
    json_object *meta = kle_apiserver__meta(obj), *causes;
    static const char *const owned[] = {"uid", "creationTimestamp", "resourceVersion", NULL};

    for (const char *const *f = owned; *f; f++) {
        const char *v = kle_apiserver__meta_str(existing, *f);
        if (v)
            json_object_object_add(meta, *f, json_object_new_string(v));
    }
    json_object_object_add(meta, "name", json_object_new_string(rt->name));
    if (rt->res == KLE_RES_NAMESPACES) {
        json_object *st;
        if (json_object_object_get_ex(existing, "status", &st))
            json_object_object_add(obj, "status", json_object_get(st));
    }
    causes = kle_apiserver__validate(rt->r, obj);
    if (causes) {
        answer_status(a, kle_apiserver__invalid_status(rt->r, rt->name, causes), pretty);
        json_object_put(obj);
        return;
    }
    if (json_object_equal(obj, existing) || dry_run(c)) {
        answer_obj(a, 200, rt, dry_run(c) ? obj : existing, pretty);
        json_object_put(obj);
        return;
    }
    if (kle_apiserver__store_put(rt->store, rt->ns, rt->name, obj, KLE_EV_MODIFIED) != 0)
        persist_failed(a, pretty);
    else
        answer_obj(a, 200, rt, obj, pretty);
}

static void do_update(struct MHD_Connection *c, const request *rq, const route *rt, answer *a,
                      int pretty)
{
    json_object *obj = parse_body(rq, rt, a, pretty), *existing;
    const char *name, *rv;
    char msg[1024];

    if (!obj)
        return;
    name = kle_apiserver__meta_str(obj, "name");
    if (name && *name && strcmp(name, rt->name) != 0) {
        snprintf(msg, sizeof(msg),
                 "the name of the object (%.250s) does not match the name on the URL (%s)", name,
                 rt->name);
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return;
    }
    if (fix_namespace(obj, rt, a, pretty) != 0) {
        json_object_put(obj);
        return;
    }
    obj = to_storage(rt, obj);
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    rv = kle_apiserver__meta_str(obj, "resourceVersion");
    if (!existing) {
        not_found(a, rt->r, rt->name, pretty);
        json_object_put(obj);
    } else if (rv && *rv && strcmp(rv, meta_or_empty(existing, "resourceVersion")) != 0) {
        conflict(a, rt->r, rt->name, NULL, pretty);
        json_object_put(obj);
    } else if (kle_apiserver__meta_str(obj, "uid") && *kle_apiserver__meta_str(obj, "uid") &&
               strcmp(kle_apiserver__meta_str(obj, "uid"), meta_or_empty(existing, "uid")) != 0) {
        snprintf(msg, sizeof(msg),
                 "Precondition failed: UID in precondition: %.100s, UID in object meta: %s",
                 kle_apiserver__meta_str(obj, "uid"), meta_or_empty(existing, "uid"));
        conflict(a, rt->r, rt->name, msg, pretty);
        json_object_put(obj);
    } else {
        replace_locked(c, rt, existing, obj, a, pretty);
    }
    kle_apiserver__store_unlock();
}

static void do_patch(struct MHD_Connection *c, const request *rq, const route *rt, answer *a,
                     int pretty)
{
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int strategic;
    json_object *patch, *existing, *obj = NULL, *pmeta, *v;
    enum json_tokener_error jerr;
    char msg[1024], av[256];

    if (ct && strncmp(ct, "application/merge-patch+json", 28) == 0)
        strategic = 0;
    else if (ct && strncmp(ct, "application/strategic-merge-patch+json", 38) == 0)
        strategic = 1;
    else {
        snprintf(msg, sizeof(msg),
                 "the body of the request was in an unknown format - accepted media types "
                 "include: application/merge-patch+json, application/strategic-merge-patch+json");
        answer_error(a, 415, "UnsupportedMediaType", msg, NULL, NULL, pretty);
        return;
    }
    patch = json_tokener_parse_verbose(rq->body.data ? rq->body.data : "", &jerr);
    if (!patch || !json_object_is_type(patch, json_type_object)) {
        snprintf(msg, sizeof(msg), "error decoding patch: %s",
                 patch ? "the patch must be a JSON object" : json_tokener_error_desc(jerr));
        json_object_put(patch);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return;
    }
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (!existing) {
        not_found(a, rt->r, rt->name, pretty);
        goto out;
    }
    if (json_object_object_get_ex(patch, "metadata", &pmeta) &&
        json_object_object_get_ex(pmeta, "resourceVersion", &v) &&
        json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v), meta_or_empty(existing, "resourceVersion")) != 0) {
        conflict(a, rt->r, rt->name, NULL, pretty);
        goto out;
    }
    if (rt->convert)
        obj = served(rt, existing);
    else
        json_object_deep_copy(existing, &obj, NULL);
    kle_apiserver__merge_patch(obj, patch, strategic);
    kle_apiserver__api_version(rt->r, av, sizeof(av));
    json_object_object_add(obj, "apiVersion", json_object_new_string(av));
    json_object_object_add(obj, "kind", json_object_new_string(rt->r->kind));
    if (rt->r->namespaced)
        json_object_object_add(kle_apiserver__meta(obj), "namespace",
                               json_object_new_string(rt->ns));
    if (kle_apiserver__decode_check(rt->r, obj, msg, sizeof(msg)) != 0) {
        json_object_put(obj);
        answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        goto out;
    }
    obj = to_storage(rt, obj);
    replace_locked(c, rt, existing, obj, a, pretty);
out:
    kle_apiserver__store_unlock();
    json_object_put(patch);
}

typedef struct ns_objs {
    int res;
    char **names;
    size_t n;
} ns_objs;

static void collect_name(json_object *obj, void *arg)
{
    ns_objs *no = arg;
    char **nn = realloc(no->names, (no->n + 1) * sizeof(*nn));
    if (!nn)
        return;
    no->names = nn;
    no->names[no->n++] = strdup(kle_apiserver__meta_str(obj, "name"));
}

static void do_delete(struct MHD_Connection *c, const request *rq, const route *rt, answer *a,
                      int pretty)
{
    json_object *existing, *opts = NULL, *pre, *v;
    char msg[1024];

    if (rq->body.len) {
        opts = json_tokener_parse(rq->body.data);
        if (!opts || !json_object_is_type(opts, json_type_object)) {
            json_object_put(opts);
            answer_error(a, 400, "BadRequest", "couldn't decode DeleteOptions", NULL, NULL, pretty);
            return;
        }
    }
    if (rt->res == KLE_RES_NAMESPACES &&
        (strcmp(rt->name, "default") == 0 || strcmp(rt->name, "kube-system") == 0 ||
         strcmp(rt->name, "kube-public") == 0)) {
        snprintf(msg, sizeof(msg),
                 "namespaces \"%s\" is forbidden: this namespace may not be deleted", rt->name);
        answer_error(a, 403, "Forbidden", msg, rt->r, rt->name, pretty);
        json_object_put(opts);
        return;
    }
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (!existing) {
        not_found(a, rt->r, rt->name, pretty);
        goto out;
    }
    if (opts && json_object_object_get_ex(opts, "preconditions", &pre)) {
        const char *cur_rv = meta_or_empty(existing, "resourceVersion");
        const char *cur_uid = meta_or_empty(existing, "uid");
        if (json_object_object_get_ex(pre, "resourceVersion", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), cur_rv) != 0) {
            snprintf(msg, sizeof(msg),
                     "the ResourceVersion in the precondition (%s) does not match the "
                     "ResourceVersion in record (%s). The object might have been modified",
                     json_object_get_string(v), cur_rv);
            conflict(a, rt->r, rt->name, msg, pretty);
            goto out;
        }
        if (json_object_object_get_ex(pre, "uid", &v) && json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), cur_uid) != 0) {
            snprintf(msg, sizeof(msg),
                     "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                     json_object_get_string(v), cur_uid);
            conflict(a, rt->r, rt->name, msg, pretty);
            goto out;
        }
    }
    {
        json_object *st = json_object_new_object(), *details = json_object_new_object();
        json_object_object_add(st, "kind", json_object_new_string("Status"));
        json_object_object_add(st, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(st, "metadata", json_object_new_object());
        json_object_object_add(st, "status", json_object_new_string("Success"));
        json_object_object_add(details, "name", json_object_new_string(rt->name));
        if (rt->r->group[0])
            json_object_object_add(details, "group", json_object_new_string(rt->r->group));
        json_object_object_add(details, "kind", json_object_new_string(rt->r->plural));
        json_object_object_add(details, "uid",
                               json_object_new_string(meta_or_empty(existing, "uid")));
        json_object_object_add(st, "details", details);
        if (!dry_run(c)) {
            if (rt->res == KLE_RES_NAMESPACES) {
                for (size_t r = 1; r < kle_apiserver__nresources; r++) {
                    ns_objs no = {(int)r, NULL, 0};
                    kle_apiserver__store_each((int)r, rt->name, collect_name, &no);
                    for (size_t i = 0; i < no.n; i++) {
                        kle_apiserver__store_delete((int)r, rt->name, no.names[i]);
                        free(no.names[i]);
                    }
                    free(no.names);
                }
            }
            if (kle_apiserver__store_delete(rt->store, rt->ns, rt->name) != 0) {
                json_object_put(st);
                persist_failed(a, pretty);
                goto out;
            }
        }
        answer_json(a, 200, st, pretty);
        json_object_put(st);
    }
out:
    kle_apiserver__store_unlock();
    json_object_put(opts);
}

/* ---- watch ---- */

typedef struct watcher {
    int res;     /* Store index watched. */
    int api_res; /* API resource served. */
    int convert; /* Events stored as core/v1, served as events.k8s.io/v1. */
    char *ns;    /* NULL: every namespace. */
    char *fsel;  /* NULL: none. */
    char *lsel;
    uint64_t pos; /* Last resourceVersion considered. */
    int64_t deadline;
    int bookmarks;
    int64_t next_bookmark;
    unsigned generation;
    int done;
    int pretty;
    int table;
    int fd; /* The client's socket, to notice when it goes away; -1 unknown. */
    kle_apiserver__buf out;
    size_t off;
} watcher;

static void emit(watcher *w, const char *type, json_object *obj);

static json_object *as_served(const watcher *w, json_object *stored)
{
    return w->convert ? kle_apiserver__event_convert(stored, 0) : json_object_get(stored);
}

static int selected(const watcher *w, json_object *obj)
{
    return kle_apiserver__selector_match(obj, w->fsel, 0) &&
           kle_apiserver__selector_match(obj, w->lsel, 1);
}

/* Emits a stored object converted as served, when it passes the selectors.
 * For a MODIFIED event with its previous state, an object that starts to
 * match is ADDED and one that stops matching is DELETED (the previous
 * state at the new resourceVersion), as kube-apiserver's watch cache does. */
static void emit_stored(watcher *w, const char *type, json_object *stored, json_object *prev)
{
    json_object *obj = as_served(w, stored);
    int now = selected(w, obj);
    if (prev && strcmp(type, "MODIFIED") == 0 && (w->fsel || w->lsel)) {
        json_object *before = as_served(w, prev);
        int was = selected(w, before);
        if (now && !was) {
            emit(w, "ADDED", obj);
        } else if (!now && was) {
            json_object *gone = NULL;
            const char *rv = kle_apiserver__meta_str(obj, "resourceVersion");
            json_object_deep_copy(before, &gone, NULL);
            if (rv)
                json_object_object_add(kle_apiserver__meta(gone), "resourceVersion",
                                       json_object_new_string(rv));
            emit(w, "DELETED", gone);
            json_object_put(gone);
        } else if (now) {
            emit(w, type, obj);
        }
        json_object_put(before);
    } else if (now) {
        emit(w, type, obj);
    }
    json_object_put(obj);
}

static void emit(watcher *w, const char *type, json_object *obj)
{
    json_object *ev = json_object_new_object();
    char *text;
    json_object_object_add(ev, "type", json_object_new_string(type));
    if (w->table &&
        strcmp(type, "ADDED") * strcmp(type, "MODIFIED") * strcmp(type, "DELETED") == 0) {
        json_object *items = json_object_new_array();
        json_object_array_add(items, json_object_get(obj));
        json_object_object_add(
            ev, "object", kle_apiserver__table(&kle_apiserver__resources[w->api_res], items, NULL));
        json_object_put(items);
    } else {
        json_object_object_add(ev, "object", json_object_get(obj));
    }
    text = to_text(ev, 0);
    if (text) {
        kle_apiserver__buf_appends(&w->out, text);
        free(text);
    }
    json_object_put(ev);
}

static void emit_bookmark(watcher *w, int initial_end)
{
    const kle_apiserver__resource *r = &kle_apiserver__resources[w->api_res];
    json_object *o = json_object_new_object(), *meta = json_object_new_object();
    char av[256], num[32];
    kle_apiserver__api_version(r, av, sizeof(av));
    json_object_object_add(o, "kind", json_object_new_string(r->kind));
    json_object_object_add(o, "apiVersion", json_object_new_string(av));
    snprintf(num, sizeof(num), "%" PRIu64, w->pos);
    json_object_object_add(meta, "resourceVersion", json_object_new_string(num));
    json_object_object_add(meta, "creationTimestamp", NULL);
    if (initial_end) {
        json_object *ann = json_object_new_object();
        json_object_object_add(ann, "k8s.io/initial-events-end", json_object_new_string("true"));
        json_object_object_add(meta, "annotations", ann);
    }
    json_object_object_add(o, "metadata", meta);
    emit(w, "BOOKMARK", o);
    json_object_put(o);
}

static void emit_expired(watcher *w, uint64_t floor)
{
    char msg[128];
    json_object *st;
    snprintf(msg, sizeof(msg), "too old resource version: %" PRIu64 " (%" PRIu64 ")", w->pos,
             floor + 1);
    st = kle_apiserver__status(410, "Expired", msg, NULL, NULL, NULL);
    emit(w, "ERROR", st);
    json_object_put(st);
    w->done = 1;
}

static void initial_add(json_object *obj, void *arg)
{
    emit_stored(arg, "ADDED", obj, NULL);
}

/* 1 when the client closed its side of the connection. */
static int peer_gone(int fd)
{
    struct pollfd p = {fd, POLLRDHUP, 0};
    if (fd < 0)
        return 0;
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Fills w->out with the next events, blocking until there are some or the
 * stream ends. Store lock held. */
static void watch_fill(watcher *w)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED"};
    while (w->out.len == 0 && !w->done) {
        uint64_t floor = kle_apiserver__store_history_floor();
        int64_t now = kle_apiserver__now_ns(), wake;
        if (atomic_load(&kle_apiserver__shutting_down) ||
            atomic_load(&kle_apiserver__watch_generation) != w->generation) {
            w->done = 1;
            break;
        }
        if (w->pos < floor) {
            emit_expired(w, floor);
            break;
        }
        while (w->pos < kle_apiserver__store_rv()) {
            const kle_apiserver__event *ev = kle_apiserver__store_event(w->pos + 1);
            w->pos++;
            if (ev && ev->res == w->res && (!w->ns || strcmp(w->ns, ev->ns) == 0))
                emit_stored(w, names[ev->type], ev->obj, ev->prev);
        }
        if (w->out.len)
            break;
        if (now >= w->deadline) {
            w->done = 1;
            break;
        }
        if (w->bookmarks && now >= w->next_bookmark) {
            emit_bookmark(w, 0);
            w->next_bookmark = now + (int64_t)kle_apiserver__bookmark_interval * 1000000000;
            break;
        }
        if (peer_gone(w->fd)) {
            w->done = 1;
            break;
        }
        wake = w->deadline;
        if (w->bookmarks && w->next_bookmark < wake)
            wake = w->next_bookmark;
        if (wake > now + 1000000000)
            wake = now + 1000000000;
        kle_apiserver__store_wait(wake);
    }
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    watcher *w = cls;
    size_t n;
    if (w->off >= w->out.len) {
        w->out.len = 0;
        w->off = 0;
        if (w->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        kle_apiserver__store_lock();
        watch_fill(w);
        kle_apiserver__store_unlock();
        if (w->out.len == 0)
            return MHD_CONTENT_READER_END_OF_STREAM;
    }
    n = w->out.len - w->off;
    if (n > max)
        n = max;
    memcpy(buf, w->out.data + w->off, n);
    w->off += n;
    return (ssize_t)n;
}

static void watch_free(void *cls)
{
    watcher *w = cls;
    free(w->ns);
    free(w->fsel);
    free(w->lsel);
    kle_apiserver__buf_free(&w->out);
    free(w);
}

static void do_watch(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    const char *rv = arg(c, "resourceVersion"), *t = arg(c, "timeoutSeconds");
    const char *bm = arg(c, "allowWatchBookmarks"), *sie = arg(c, "sendInitialEvents");
    const char *fs = arg(c, "fieldSelector"), *ls = arg(c, "labelSelector");
    watcher *w;
    long timeout = 1800;
    int initial = 0, initial_end = 0;

    if (check_selectors(c, a, pretty) != 0)
        return;
    if (t && *t) {
        char *end;
        timeout = strtol(t, &end, 10);
        if (*end || timeout < 0) {
            answer_error(a, 400, "BadRequest", "invalid timeoutSeconds", NULL, NULL, pretty);
            return;
        }
        if (timeout == 0)
            timeout = 1800;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        answer_error(a, 500, "InternalError", "out of memory", NULL, NULL, pretty);
        return;
    }
    w->res = rt->store;
    w->api_res = rt->res;
    w->convert = rt->convert;
    w->ns = rt->r->namespaced && rt->ns[0] ? strdup(rt->ns) : NULL;
    w->fsel = fs && *fs ? strdup(fs) : NULL;
    w->lsel = ls && *ls ? strdup(ls) : NULL;
    w->bookmarks = bm && strcmp(bm, "true") == 0;
    w->pretty = pretty;
    w->table = want_table(c);
    {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w->fd = ci ? ci->connect_fd : -1;
    }
    w->generation = atomic_load(&kle_apiserver__watch_generation);
    w->deadline = kle_apiserver__now_ns() + (int64_t)timeout * 1000000000;
    w->next_bookmark =
        kle_apiserver__now_ns() + (int64_t)kle_apiserver__bookmark_interval * 1000000000;
    if (sie && strcmp(sie, "true") == 0) {
        initial = 1;
        initial_end = w->bookmarks;
    } else if (!rv || !*rv || strcmp(rv, "0") == 0) {
        initial = 1;
    }
    kle_apiserver__store_lock();
    if (initial) {
        w->pos = kle_apiserver__store_rv();
        kle_apiserver__store_each(w->res, w->ns, initial_add, w);
        if (initial_end)
            emit_bookmark(w, 1);
    } else {
        char *end;
        w->pos = strtoull(rv, &end, 10);
        if (*end) {
            kle_apiserver__store_unlock();
            watch_free(w);
            answer_error(a, 400, "BadRequest", "invalid resourceVersion", NULL, NULL, pretty);
            return;
        }
        if (w->pos < kle_apiserver__store_history_floor())
            emit_expired(w, kle_apiserver__store_history_floor());
    }
    kle_apiserver__store_unlock();
    a->code = 200;
    a->stream =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, watch_read, w, watch_free);
    if (!a->stream)
        watch_free(w);
}

/* ---- the request handler ---- */

static ssize_t close_mid_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const char *body = cls;
    size_t half = strlen(body) / 2;
    size_t n;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = half - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

static enum MHD_Result send_answer(struct MHD_Connection *c, answer *a)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    char ra[16];

    if (a->stream) {
        resp = a->stream;
    } else if (a->close_mid && a->body) {
        resp =
            MHD_create_response_from_callback(strlen(a->body), 4096, close_mid_read, a->body, free);
        a->body = NULL;
    } else {
        size_t len = a->body ? strlen(a->body) : 0;
        resp = MHD_create_response_from_buffer(len, a->body ? a->body : (void *)"",
                                               a->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        a->body = NULL;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
    if (a->retry_after > 0) {
        snprintf(ra, sizeof(ra), "%d", a->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    r = MHD_queue_response(c, a->code, resp);
    MHD_destroy_response(resp);
    return r;
}

static void fault_answer(answer *a, int code, int retry_after, int pretty)
{
    switch (code) {
    case 429:
        a->retry_after = retry_after;
        answer_error(a, 429, "TooManyRequests",
                     "Too many requests, please try again later. (injected by kle-apiserver)", NULL,
                     NULL, pretty);
        break;
    case 500:
        answer_error(a, 500, "InternalError",
                     "Internal error occurred: injected fault (kle-apiserver)", NULL, NULL, pretty);
        break;
    case 503:
        a->retry_after = retry_after;
        answer_error(a, 503, "ServiceUnavailable",
                     "The server is currently unable to handle the request (injected by "
                     "kle-apiserver)",
                     NULL, NULL, pretty);
        break;
    default:
        answer_error(a, 504, "Timeout",
                     "Timeout: request did not complete within the allotted timeout (injected "
                     "by kle-apiserver)",
                     NULL, NULL, pretty);
        break;
    }
}

static void forbidden(answer *a, const kle_apiserver__user *u, const route *rt, int pretty)
{
    char q[256], msg[1536], scope[300];
    kle_apiserver__qualified(rt->r, q, sizeof(q));
    if (rt->r->namespaced && rt->ns[0])
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", rt->ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    if (rt->name[0])
        snprintf(msg, sizeof(msg),
                 "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                 "\"%s\" %s",
                 q, rt->name, u->name, rt->verb, rt->r->plural, rt->r->group, scope);
    else
        snprintf(msg, sizeof(msg),
                 "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s", q,
                 u->name, rt->verb, rt->r->plural, rt->r->group, scope);
    answer_error(a, 403, "Forbidden", msg, rt->r, rt->name, pretty);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **ctx)
{
    request *rq = *ctx;
    answer a;
    route rt;
    kle_apiserver__user user;
    int pretty = want_pretty(c);
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
        else if (kle_apiserver__buf_append(&rq->body, upload_data, *upload_size) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }

    rq->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    memset(&user, 0, sizeof(user));
    counted_verb = method;
    counted_res = "nonresource";
    if (route_request(c, method, url, &rt) == 0 && rt.kind == ROUTE_RESOURCE) {
        counted_verb = rt.verb ? rt.verb : method;
        counted_res = rt.r->plural;
    }

    if (rt.kind == ROUTE_HEALTH) {
        a.code = 200;
        a.body = strdup("ok");
    } else if (!authenticate(c, &user)) {
        answer_error(&a, 401, "Unauthorized", "Unauthorized", NULL, NULL, pretty);
    } else if (rq->too_large) {
        answer_error(&a, 413, "RequestEntityTooLarge", "Request entity too large: limit is 3145728",
                     NULL, NULL, pretty);
    } else if (rt.kind == ROUTE_DISCOVERY) {
        discovery(&a, url, pretty);
    } else if (rt.kind == ROUTE_OPENAPI) {
        openapi(&a, url, pretty);
    } else if (rt.kind != ROUTE_RESOURCE) {
        answer_error(&a, 404, "NotFound", "the server could not find the requested resource", NULL,
                     NULL, pretty);
    } else if (!rt.verb || strcmp(rt.verb, "deletecollection") == 0) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "the server does not allow this method on the requested resource");
        answer_error(&a, 405, "MethodNotAllowed", msg, NULL, NULL, pretty);
    } else {
        kle_apiserver__fault_result f;
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
            fault_answer(&a, f.code, f.retry_after, pretty);
        } else if (f.body) {
            /* A canned answer: whatever the rule says, as a 200. */
            a.code = 200;
            a.body = f.body;
        } else if (!kle_apiserver__authz_allowed(&user, rt.verb, rt.r->group, rt.r->plural, rt.ns,
                                                 rt.name)) {
            forbidden(&a, &user, &rt, pretty);
        } else if (strcmp(rt.verb, "get") == 0) {
            do_get(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "list") == 0) {
            do_list(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "watch") == 0) {
            do_watch(c, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "create") == 0) {
            do_create(c, rq, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "update") == 0) {
            do_update(c, rq, &rt, &a, pretty);
        } else if (strcmp(rt.verb, "patch") == 0) {
            do_patch(c, rq, &rt, &a, pretty);
        } else {
            do_delete(c, rq, &rt, &a, pretty);
        }
        a.close_mid = f.close_mid && !a.stream;
    }
    if (!a.body && !a.stream && a.code == 0)
        answer_error(&a, 500, "InternalError", "Internal error occurred: out of memory", NULL, NULL,
                     pretty);
    kle_apiserver__count(counted_verb, counted_res, a.code);
    if (kle_apiserver__verbose)
        KLE_LOG_I("%s %s -> %u (user %s)", method, url, a.code, user.name[0] ? user.name : "-");
    result = send_answer(c, &a);
    free(a.body);
    return result;
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx,
                      enum MHD_RequestTerminationCode toe)
{
    request *rq = *ctx;
    if (rq) {
        kle_apiserver__buf_free(&rq->body);
        free(rq);
        *ctx = NULL;
    }
}

/* libmicrohttpd's own messages (client disconnects, TLS handshake
 * failures) go to the log at verbosity 2. */
void kle_apiserver__mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    KLE_LOG_V(2, "libmicrohttpd: %s", buf);
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
