/* Requests that are answered, not stored: SelfSubjectAccessReview and
 * SelfSubjectRulesReview (kubectl auth can-i), and TokenRequest
 * (kubectl create token). */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *str_at(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return "";
    return json_object_get_string(v);
}

/* The non-resource URLs every authenticated user may get (kube's
 * system:discovery and system:public-info-viewer). */
static const char *const discovery_urls[] = {"/api",      "/api/*",   "/apis",      "/apis/*",
                                             "/healthz",  "/livez",   "/readyz",    "/version",
                                             "/version/", "/openapi", "/openapi/*", NULL};

static int discovery_url(const char *path)
{
    for (const char *const *u = discovery_urls; *u; u++) {
        size_t n = strlen(*u);
        if ((*u)[n - 1] == '*' ? strncmp(path, *u, n - 1) == 0 : strcmp(path, *u) == 0)
            return 1;
    }
    return 0;
}

void kle_apiserver__do_review(const request *rq, const route *rt, answer *a, int pretty)
{
    json_object *obj = kle_apiserver__parse_body(rq, rt, a, pretty), *spec, *status, *meta;

    if (!obj)
        return;
    if (!json_object_object_get_ex(obj, "spec", &spec) ||
        !json_object_is_type(spec, json_type_object)) {
        spec = json_object_new_object();
        json_object_object_add(obj, "spec", spec);
    }
    status = json_object_new_object();
    if (rt->res == KLE_RES_SSAR) {
        json_object *ra, *nra;
        int allowed = 0;
        if (json_object_object_get_ex(spec, "resourceAttributes", &ra) &&
            json_object_is_type(ra, json_type_object)) {
            char res[300];
            const char *sub = str_at(ra, "subresource");
            snprintf(res, sizeof(res), "%.200s%s%.60s", str_at(ra, "resource"), *sub ? "/" : "",
                     sub);
            allowed =
                kle_apiserver__authz_allowed(&rq->user, str_at(ra, "verb"), str_at(ra, "group"),
                                             res, str_at(ra, "namespace"), str_at(ra, "name"));
        } else if (json_object_object_get_ex(spec, "nonResourceAttributes", &nra) &&
                   json_object_is_type(nra, json_type_object)) {
            allowed =
                !kle_apiserver__rbac_enabled ||
                kle_apiserver__user_in_group(&rq->user, "system:masters") ||
                (strcmp(str_at(nra, "verb"), "get") == 0 && discovery_url(str_at(nra, "path")));
        } else {
            json_object_put(status);
            json_object_put(obj);
            kle_apiserver__answer_status(
                a,
                kle_apiserver__invalid_status(
                    rt->r, "",
                    json_tokener_parse("[{\"reason\":\"FieldValueInvalid\",\"message\":\"Invalid "
                                       "value: null: exactly one of nonResourceAttributes or "
                                       "resourceAttributes must be specified\",\"field\":\"spec."
                                       "resourceAttributes\"}]")),
                pretty);
            return;
        }
        json_object_object_add(status, "allowed", json_object_new_boolean(allowed));
        if (!kle_apiserver__rbac_enabled)
            json_object_object_add(status, "reason",
                                   json_object_new_string("kle-apiserver allows every "
                                                          "authenticated user (AlwaysAllow)"));
    } else {
        json_object *nr = json_object_new_array(), *rule = json_object_new_object();
        static const char *const get[] = {"get", NULL};
        json_object_object_add(status, "resourceRules",
                               kle_apiserver__rbac_rules(&rq->user, str_at(spec, "namespace")));
        json_object_object_add(rule, "verbs", kle_apiserver__str_array(get));
        json_object_object_add(rule, "nonResourceURLs", kle_apiserver__str_array(discovery_urls));
        json_object_array_add(nr, rule);
        json_object_object_add(status, "nonResourceRules", nr);
        json_object_object_add(status, "incomplete", json_object_new_boolean(0));
    }
    json_object_object_add(obj, "status", status);
    meta = kle_apiserver__meta(obj);
    json_object_object_add(meta, "creationTimestamp", NULL);
    kle_apiserver__answer_json(a, 201, obj, pretty);
    json_object_put(obj);
}

/* TokenRequest is authentication.k8s.io/v1 though posted to core/v1. */
static const kle_apiserver__resource token_request = {
    "authentication.k8s.io", "v1", "token", "token", "TokenRequest",
    "TokenRequestList",      NULL, 1,       1};

void kle_apiserver__do_token(const request *rq, const route *rt, answer *a, int pretty)
{
    route trt = *rt;
    json_object *obj, *spec, *v, *status, *sa;
    int64_t seconds = 3600;
    char uid[64] = "", token[128], ts[40];
    time_t expires;
    struct tm tm;

    trt.r = &token_request;
    obj = kle_apiserver__parse_body(rq, &trt, a, pretty);
    if (!obj)
        return;
    if (json_object_object_get_ex(obj, "spec", &spec) &&
        json_object_object_get_ex(spec, "expirationSeconds", &v) && v) {
        if (!json_object_is_type(v, json_type_int)) {
            json_object_put(obj);
            kle_apiserver__answer_error(a, 400, "BadRequest",
                                        "spec.expirationSeconds must be an integer", NULL, NULL,
                                        pretty);
            return;
        }
        seconds = json_object_get_int64(v);
    }
    if (seconds < 600 || seconds > (int64_t)1 << 32) {
        char msg[300];
        json_object *causes = json_object_new_array(), *c = json_object_new_object();
        snprintf(msg, sizeof(msg), "Invalid value: %lld: %s", (long long)seconds,
                 seconds < 600 ? "may not specify a duration less than 10 minutes"
                               : "may not specify a duration larger than 2^32 seconds");
        json_object_object_add(c, "reason", json_object_new_string("FieldValueInvalid"));
        json_object_object_add(c, "message", json_object_new_string(msg));
        json_object_object_add(c, "field", json_object_new_string("spec.expirationSeconds"));
        json_object_array_add(causes, c);
        json_object_put(obj);
        kle_apiserver__answer_status(a, kle_apiserver__invalid_status(&token_request, "", causes),
                                     pretty);
        return;
    }
    kle_apiserver__store_lock();
    sa = kle_apiserver__store_get(KLE_RES_SERVICEACCOUNTS, rt->ns, rt->name);
    if (sa)
        snprintf(uid, sizeof(uid), "%s", kle_apiserver__meta_or_empty(sa, "uid"));
    kle_apiserver__store_unlock();
    if (!sa) {
        json_object_put(obj);
        kle_apiserver__not_found(a, rt->r, rt->name, pretty);
        return;
    }
    expires = time(NULL) + (time_t)seconds;
    if (kle_apiserver__sa_token_issue(rt->ns, rt->name, uid, expires, token, sizeof(token)) != 0) {
        json_object_put(obj);
        kle_apiserver__answer_error(a, 500, "InternalError",
                                    "Internal error occurred: out of memory", NULL, NULL, pretty);
        return;
    }
    gmtime_r(&expires, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!json_object_object_get_ex(obj, "spec", &spec) ||
        !json_object_is_type(spec, json_type_object)) {
        spec = json_object_new_object();
        json_object_object_add(obj, "spec", spec);
    }
    json_object_object_add(spec, "expirationSeconds", json_object_new_int64(seconds));
    status = json_object_new_object();
    json_object_object_add(status, "token", json_object_new_string(token));
    json_object_object_add(status, "expirationTimestamp", json_object_new_string(ts));
    json_object_object_add(obj, "status", status);
    {
        json_object *meta = kle_apiserver__meta(obj);
        json_object_object_add(meta, "name", json_object_new_string(rt->name));
        json_object_object_add(meta, "namespace", json_object_new_string(rt->ns));
        json_object_object_add(meta, "creationTimestamp", NULL);
    }
    kle_apiserver__answer_json(a, 201, obj, pretty);
    json_object_put(obj);
}
