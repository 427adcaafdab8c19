/* Routing: from method and URL path to a resource, namespace, name and
 * verb. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <stdio.h>
#include <string.h>

static int find_resource(const char *group, const char *version, const char *plural)
{
    for (size_t i = 0; i < kle_apiserver__nresources; i++) {
        const kle_apiserver__resource *r = &kle_apiserver__resources[i];
        if (!kle_apiserver__resource_served(i))
            continue;
        if (strcmp(r->group, group) == 0 && strcmp(r->version, version) == 0 &&
            strcmp(r->plural, plural) == 0)
            return (int)i;
    }
    return -1;
}

int kle_apiserver__split_path(const char *url, char parts[8][256])
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
int kle_apiserver__route_request(struct MHD_Connection *c, const char *method, const char *url,
                                 route *rt)
{
    char p[8][256];
    int n = kle_apiserver__split_path(url, p), off, collection;
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
                if (kle_apiserver__resource_served(i) &&
                    strcmp(kle_apiserver__resources[i].group, p[1]) == 0 &&
                    strcmp(kle_apiserver__resources[i].version, p[2]) == 0)
                    known = 1;
            if (!known) {
                rt->kind = ROUTE_NONE; /* 404, as kube-apiserver */
                return -1;
            }
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
        if (rt->res < 0 || !kle_apiserver__resources[rt->res].namespaced || n > 5)
            return -1;
        /* The one subresource served: serviceaccounts/{name}/token. */
        if (n == 5 && (rt->res != KLE_RES_SERVICEACCOUNTS || strcmp(p[off + 4], "token") != 0))
            return -1;
        snprintf(rt->ns, sizeof(rt->ns), "%s", p[off + 1]);
        if (n >= 4)
            snprintf(rt->name, sizeof(rt->name), "%s", p[off + 3]);
        if (n == 5)
            snprintf(rt->subresource, sizeof(rt->subresource), "%s", p[off + 4]);
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
    /* A subresource and an access review are only created. */
    if (rt->subresource[0] || rt->r->review)
        rt->verb = strcmp(method, "POST") == 0 ? "create" : NULL;
    /* The all-namespaces path of a namespaced resource only lists and watches. */
    if (rt->verb && rt->r->namespaced && !rt->ns[0] && strcmp(rt->verb, "list") != 0 &&
        strcmp(rt->verb, "watch") != 0)
        rt->verb = NULL;
    return 0;
}
