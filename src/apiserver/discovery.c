/* Discovery (/version, /api, /apis, group versions) and the minimal
 * OpenAPI v3 kubectl reads. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <stdio.h>
#include <string.h>

static char server_addr[128];

void kle_apiserver__discovery_set_address(const char *addr)
{
    snprintf(server_addr, sizeof(server_addr), "%s", addr);
}

/* The versions a group serves, preferred (v1) first. */
static json_object *group_json(const char *group)
{
    json_object *g = json_object_new_object(), *versions = json_object_new_array(), *gv;
    const char *seen[8];
    size_t n = 0;
    char buf[256];
    json_object_object_add(g, "name", json_object_new_string(group));
    for (size_t i = 0; i < kle_apiserver__nresources && n < 8; i++) {
        const kle_apiserver__resource *r = &kle_apiserver__resources[i];
        int dup = 0;
        if (strcmp(r->group, group) != 0 || !kle_apiserver__resource_served(i))
            continue;
        for (size_t k = 0; k < n; k++)
            dup |= strcmp(seen[k], r->version) == 0;
        if (dup)
            continue;
        seen[n++] = r->version;
        snprintf(buf, sizeof(buf), "%s/%s", group, r->version);
        gv = json_object_new_object();
        json_object_object_add(gv, "groupVersion", json_object_new_string(buf));
        json_object_object_add(gv, "version", json_object_new_string(r->version));
        json_object_array_add(versions, gv);
    }
    json_object_object_add(g, "versions", versions);
    snprintf(buf, sizeof(buf), "%s/v1", group);
    gv = json_object_new_object();
    json_object_object_add(gv, "groupVersion", json_object_new_string(buf));
    json_object_object_add(gv, "version", json_object_new_string("v1"));
    json_object_object_add(g, "preferredVersion", gv);
    return g;
}

const char *const kle_apiserver__served_groups[] = {"coordination.k8s.io",       "events.k8s.io",
                                                    "rbac.authorization.k8s.io", "apps",
                                                    "authorization.k8s.io",      NULL};

void kle_apiserver__discovery(answer *a, const char *url, int pretty)
{
    char p[8][256];
    int n = kle_apiserver__split_path(url, p);
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
        json_object_object_add(o, "versions", kle_apiserver__str_array(v));
        json_object_object_add(cidr, "clientCIDR", json_object_new_string("0.0.0.0/0"));
        json_object_object_add(cidr, "serverAddress", json_object_new_string(server_addr));
        json_object_array_add(cidrs, cidr);
        json_object_object_add(o, "serverAddressByClientCIDRs", cidrs);
    } else if (n == 1 && strcmp(p[0], "apis") == 0) {
        json_object *groups = json_object_new_array();
        json_object_object_add(o, "kind", json_object_new_string("APIGroupList"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        for (const char *const *g = kle_apiserver__served_groups; *g; g++)
            json_object_array_add(groups, group_json(*g));
        json_object_object_add(o, "groups", groups);
    } else if (n == 2 && strcmp(p[0], "apis") == 0) {
        int known = 0;
        for (const char *const *g = kle_apiserver__served_groups; *g; g++)
            known |= strcmp(*g, p[1]) == 0;
        json_object_put(o);
        if (!known) {
            kle_apiserver__answer_error(a, 404, "NotFound",
                                        "the server could not find the requested resource", NULL,
                                        NULL, pretty);
            return;
        }
        o = group_json(p[1]);
        json_object_object_add(o, "kind", json_object_new_string("APIGroup"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
    } else if (n == 2 && strcmp(p[0], "api") == 0 && strcmp(p[1], "v1") != 0) {
        json_object_put(o);
        kle_apiserver__answer_error(a, 404, "NotFound",
                                    "the server could not find the requested resource", NULL, NULL,
                                    pretty);
        return;
    } else {
        const char *group = strcmp(p[0], "api") == 0 ? "" : p[1];
        const char *version = strcmp(p[0], "api") == 0 ? p[1] : p[2];
        json_object *list = json_object_new_array();
        char gv[300];
        snprintf(gv, sizeof(gv), "%.255s%s%.20s", group, group[0] ? "/" : "", version);
        json_object_object_add(o, "kind", json_object_new_string("APIResourceList"));
        json_object_object_add(o, "apiVersion", json_object_new_string("v1"));
        json_object_object_add(o, "groupVersion", json_object_new_string(gv));
        for (size_t i = 0; i < kle_apiserver__nresources; i++) {
            const kle_apiserver__resource *r = &kle_apiserver__resources[i];
            json_object *e;
            if (strcmp(r->group, group) != 0 || strcmp(r->version, version) != 0 ||
                !kle_apiserver__resource_served(i))
                continue;
            e = json_object_new_object();
            json_object_object_add(e, "name", json_object_new_string(r->plural));
            json_object_object_add(e, "singularName", json_object_new_string(r->singular));
            json_object_object_add(e, "namespaced", json_object_new_boolean(r->namespaced));
            json_object_object_add(e, "kind", json_object_new_string(r->kind));
            if (r->review) {
                static const char *const create[] = {"create", NULL};
                json_object_object_add(e, "verbs", kle_apiserver__str_array(create));
            } else {
                json_object_object_add(e, "verbs", kle_apiserver__str_array(verbs));
            }
            if (r->short_name) {
                const char *sn[] = {r->short_name, NULL};
                json_object_object_add(e, "shortNames", kle_apiserver__str_array(sn));
            }
            json_object_array_add(list, e);
        }
        json_object_object_add(o, "resources", list);
    }
    kle_apiserver__answer_json(a, 200, o, pretty);
    json_object_put(o);
}

/* A minimal OpenAPI v3: the index, and per group version the item paths
 * with their PATCH operation, so kubectl sees that the server validates
 * fields (fieldValidation) and skips client-side schema validation. */
void kle_apiserver__openapi(answer *a, const char *url, int pretty)
{
    char p[8][256];
    int n = kle_apiserver__split_path(url, p);
    json_object *o = json_object_new_object(), *paths = json_object_new_object();
    const char *group = NULL;

    if (n == 2) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "serverRelativeURL",
                               json_object_new_string("/openapi/v3/api/v1?hash=kle1"));
        json_object_object_add(paths, "api/v1", e);
        for (const char *const *g = kle_apiserver__served_groups; *g; g++) {
            char key[256], rel[300];
            snprintf(key, sizeof(key), "apis/%s/v1", *g);
            snprintf(rel, sizeof(rel), "/openapi/v3/%s?hash=kle1", key);
            e = json_object_new_object();
            json_object_object_add(e, "serverRelativeURL", json_object_new_string(rel));
            json_object_object_add(paths, key, e);
        }
        json_object_object_add(o, "paths", paths);
        kle_apiserver__answer_json(a, 200, o, pretty);
        json_object_put(o);
        return;
    }
    if (n == 4 && strcmp(p[2], "api") == 0 && strcmp(p[3], "v1") == 0)
        group = "";
    else if (n == 5 && strcmp(p[2], "apis") == 0 && strcmp(p[4], "v1") == 0)
        for (const char *const *g = kle_apiserver__served_groups; *g; g++)
            if (strcmp(*g, p[3]) == 0)
                group = *g;
    if (!group) {
        json_object_put(o);
        json_object_put(paths);
        kle_apiserver__answer_error(a, 404, "NotFound",
                                    "the server could not find the requested resource", NULL, NULL,
                                    pretty);
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
    kle_apiserver__answer_json(a, 200, o, pretty);
    json_object_put(o);
}
