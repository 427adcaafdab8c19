/* The REST verbs over the store: list, get, create, update, patch,
 * delete. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <inttypes.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct list_ctx {
    json_object *items;
    const char *fsel, *lsel;
    const route *rt;
} list_ctx;

static void list_add(json_object *stored, void *arg)
{
    list_ctx *lc = arg;
    json_object *obj = kle_apiserver__served(lc->rt, stored);
    if (kle_apiserver__selector_match(obj, lc->fsel, 0) &&
        kle_apiserver__selector_match(obj, lc->lsel, 1))
        json_object_array_add(lc->items, obj);
    else
        json_object_put(obj);
}

void kle_apiserver__do_list(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    list_ctx lc;
    json_object *list, *meta;
    char av[256], num[32];

    if (kle_apiserver__check_selectors(c, a, pretty) != 0)
        return;
    lc.items = json_object_new_array();
    lc.fsel = kle_apiserver__arg(c, "fieldSelector");
    lc.lsel = kle_apiserver__arg(c, "labelSelector");
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
    if (kle_apiserver__want_table(c)) {
        json_object *t = kle_apiserver__table(rt->r, lc.items, num);
        kle_apiserver__answer_json(a, 200, t, pretty);
        json_object_put(t);
        json_object_put(lc.items);
    } else {
        json_object_object_add(list, "items", lc.items);
        kle_apiserver__answer_json(a, 200, list, pretty);
    }
    json_object_put(list);
    kle_apiserver__store_unlock();
}

void kle_apiserver__do_get(struct MHD_Connection *c, const route *rt, answer *a, int pretty)
{
    json_object *obj;
    kle_apiserver__store_lock();
    obj = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (obj && kle_apiserver__want_table(c)) {
        json_object *items = json_object_new_array(), *t;
        json_object_array_add(items, kle_apiserver__served(rt, obj));
        t = kle_apiserver__table(rt->r, items, NULL);
        kle_apiserver__answer_json(a, 200, t, pretty);
        json_object_put(t);
        json_object_put(items);
    } else if (obj) {
        kle_apiserver__answer_obj(a, 200, rt, obj, pretty);
    }
    kle_apiserver__store_unlock();
    if (!obj)
        kle_apiserver__not_found(a, rt->r, rt->name, pretty);
}

/* Parses and checks a request body for create/update; NULL with the answer
 * filled on error. */
json_object *kle_apiserver__parse_body(const request *rq, const route *rt, answer *a, int pretty)
{
    struct json_tokener *tok;
    json_object *obj, *v;
    char msg[1024], av[256];
    enum json_tokener_error jerr;

    {
        const char *ct = rq->content_type;
        if (ct && strncmp(ct, KLE_MEDIA_PROTOBUF, strlen(KLE_MEDIA_PROTOBUF)) == 0) {
            int code;
            obj = kle_apiserver__proto_decode((const unsigned char *)rq->body.data, rq->body.len,
                                              &code, msg, sizeof(msg));
            if (!obj) {
                kle_apiserver__answer_error(a, code,
                                            code == 415 ? "UnsupportedMediaType" : "BadRequest",
                                            msg, NULL, NULL, pretty);
                return NULL;
            }
            goto decoded;
        }
        if (ct && *ct && strncmp(ct, "application/json", 16) != 0) {
            kle_apiserver__answer_error(a, 415, "UnsupportedMediaType",
                                        "the body of the request was in an unknown format - "
                                        "accepted media types include: application/json, "
                                        "application/vnd.kubernetes.protobuf",
                                        NULL, NULL, pretty);
            return NULL;
        }
    }
    if (!rq->body.data || rq->body.len == 0) {
        kle_apiserver__answer_error(a, 400, "BadRequest", "the body of the request was empty", NULL,
                                    NULL, pretty);
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
            kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
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
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
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
            kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
            return NULL;
        }
    }
    if (json_object_object_get_ex(obj, "apiVersion", &v) && v &&
        strcmp(json_object_get_string(v), av) != 0) {
        snprintf(msg, sizeof(msg),
                 "the API version in the data (%s) does not match the expected API version (%s)",
                 json_object_get_string(v), av);
        json_object_put(obj);
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return NULL;
    }
    if (json_object_object_get_ex(obj, "kind", &v) && v &&
        strcmp(json_object_get_string(v), rt->r->kind) != 0) {
        snprintf(msg, sizeof(msg),
                 "the kind in the data (%s) does not match the expected kind (%s)",
                 json_object_get_string(v), rt->r->kind);
        json_object_put(obj);
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
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
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
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
        kle_apiserver__answer_error(
            a, 400, "BadRequest",
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
    kle_apiserver__not_found(a, &kle_apiserver__resources[KLE_RES_NAMESPACES], rt->ns, pretty);
    return -1;
}

static void persist_failed(answer *a, int pretty)
{
    kle_apiserver__answer_error(
        a, 500, "InternalError",
        "Internal error occurred: persisting the change to --data-dir failed", NULL, NULL, pretty);
}

void kle_apiserver__do_create(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty)
{
    json_object *obj = kle_apiserver__parse_body(rq, rt, a, pretty), *meta, *causes;
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
    kle_apiserver__new_uid(uid);
    json_object_object_add(meta, "uid", json_object_new_string(uid));
    kle_apiserver__timestamp(ts, sizeof(ts));
    json_object_object_add(meta, "creationTimestamp", json_object_new_string(ts));
    if (rt->res == KLE_RES_NAMESPACES) {
        json_object *spec = json_object_new_object(), *status = json_object_new_object();
        const char *fin[] = {"kubernetes", NULL};
        json_object_object_add(spec, "finalizers", kle_apiserver__str_array(fin));
        json_object_object_add(obj, "spec", spec);
        json_object_object_add(status, "phase", json_object_new_string("Active"));
        json_object_object_add(obj, "status", status);
    }
    causes = kle_apiserver__validate(rt->r, obj);
    if (causes) {
        kle_apiserver__answer_status(a, kle_apiserver__invalid_status(rt->r, name, causes), pretty);
        json_object_put(obj);
        return;
    }
    {
        char keep[300];
        snprintf(keep, sizeof(keep), "%s", name);
        obj = kle_apiserver__to_storage(rt, obj);
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
        kle_apiserver__answer_error(a, 409, "AlreadyExists", msg, rt->r, name, pretty);
        json_object_put(obj);
    } else if (kle_apiserver__dry_run(c)) {
        kle_apiserver__answer_obj(a, 201, rt, obj, pretty);
        json_object_put(obj);
    } else {
        char key[300];
        snprintf(key, sizeof(key), "%s", name);
        if (kle_apiserver__store_put(rt->store, rt->ns, key, obj, KLE_EV_ADDED) != 0)
            persist_failed(a, pretty);
        else
            kle_apiserver__answer_obj(a, 201, rt, obj, pretty);
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
        kle_apiserver__answer_status(a, kle_apiserver__invalid_status(rt->r, rt->name, causes),
                                     pretty);
        json_object_put(obj);
        return;
    }
    if (json_object_equal(obj, existing) || kle_apiserver__dry_run(c)) {
        kle_apiserver__answer_obj(a, 200, rt, kle_apiserver__dry_run(c) ? obj : existing, pretty);
        json_object_put(obj);
        return;
    }
    if (kle_apiserver__store_put(rt->store, rt->ns, rt->name, obj, KLE_EV_MODIFIED) != 0)
        persist_failed(a, pretty);
    else
        kle_apiserver__answer_obj(a, 200, rt, obj, pretty);
}

void kle_apiserver__do_update(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty)
{
    json_object *obj = kle_apiserver__parse_body(rq, rt, a, pretty), *existing;
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
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return;
    }
    if (fix_namespace(obj, rt, a, pretty) != 0) {
        json_object_put(obj);
        return;
    }
    obj = kle_apiserver__to_storage(rt, obj);
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    rv = kle_apiserver__meta_str(obj, "resourceVersion");
    if (!existing) {
        kle_apiserver__not_found(a, rt->r, rt->name, pretty);
        json_object_put(obj);
    } else if (rv && *rv &&
               strcmp(rv, kle_apiserver__meta_or_empty(existing, "resourceVersion")) != 0) {
        kle_apiserver__conflict(a, rt->r, rt->name, NULL, pretty);
        json_object_put(obj);
    } else if (kle_apiserver__meta_str(obj, "uid") && *kle_apiserver__meta_str(obj, "uid") &&
               strcmp(kle_apiserver__meta_str(obj, "uid"),
                      kle_apiserver__meta_or_empty(existing, "uid")) != 0) {
        snprintf(msg, sizeof(msg),
                 "Precondition failed: UID in precondition: %.100s, UID in object meta: %s",
                 kle_apiserver__meta_str(obj, "uid"),
                 kle_apiserver__meta_or_empty(existing, "uid"));
        kle_apiserver__conflict(a, rt->r, rt->name, msg, pretty);
        json_object_put(obj);
    } else {
        replace_locked(c, rt, existing, obj, a, pretty);
    }
    kle_apiserver__store_unlock();
}

void kle_apiserver__do_patch(struct MHD_Connection *c, const request *rq, const route *rt,
                             answer *a, int pretty)
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
        kle_apiserver__answer_error(a, 415, "UnsupportedMediaType", msg, NULL, NULL, pretty);
        return;
    }
    patch = json_tokener_parse_verbose(rq->body.data ? rq->body.data : "", &jerr);
    if (!patch || !json_object_is_type(patch, json_type_object)) {
        snprintf(msg, sizeof(msg), "error decoding patch: %s",
                 patch ? "the patch must be a JSON object" : json_tokener_error_desc(jerr));
        json_object_put(patch);
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        return;
    }
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (!existing) {
        kle_apiserver__not_found(a, rt->r, rt->name, pretty);
        goto out;
    }
    if (json_object_object_get_ex(patch, "metadata", &pmeta) &&
        json_object_object_get_ex(pmeta, "resourceVersion", &v) &&
        json_object_is_type(v, json_type_string) &&
        strcmp(json_object_get_string(v),
               kle_apiserver__meta_or_empty(existing, "resourceVersion")) != 0) {
        kle_apiserver__conflict(a, rt->r, rt->name, NULL, pretty);
        goto out;
    }
    if (rt->convert)
        obj = kle_apiserver__served(rt, existing);
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
        kle_apiserver__answer_error(a, 400, "BadRequest", msg, NULL, NULL, pretty);
        goto out;
    }
    obj = kle_apiserver__to_storage(rt, obj);
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

void kle_apiserver__do_delete(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty)
{
    json_object *existing, *opts = NULL, *pre, *v;
    char msg[1024];

    if (rq->body.len && rq->content_type &&
        strncmp(rq->content_type, KLE_MEDIA_PROTOBUF, strlen(KLE_MEDIA_PROTOBUF)) == 0) {
        int code;
        json_object *k;
        opts = kle_apiserver__proto_decode((const unsigned char *)rq->body.data, rq->body.len,
                                           &code, msg, sizeof(msg));
        if (!opts || !json_object_object_get_ex(opts, "kind", &k) ||
            strcmp(json_object_get_string(k), "DeleteOptions") != 0) {
            if (opts)
                snprintf(msg, sizeof(msg), "couldn't decode DeleteOptions: the body is a %s",
                         json_object_get_string(k));
            json_object_put(opts);
            kle_apiserver__answer_error(
                a, opts ? 400 : code, code == 415 && !opts ? "UnsupportedMediaType" : "BadRequest",
                msg, NULL, NULL, pretty);
            return;
        }
    } else if (rq->body.len) {
        opts = json_tokener_parse(rq->body.data);
        if (!opts || !json_object_is_type(opts, json_type_object)) {
            json_object_put(opts);
            kle_apiserver__answer_error(a, 400, "BadRequest", "couldn't decode DeleteOptions", NULL,
                                        NULL, pretty);
            return;
        }
    }
    if (rt->res == KLE_RES_NAMESPACES &&
        (strcmp(rt->name, "default") == 0 || strcmp(rt->name, "kube-system") == 0 ||
         strcmp(rt->name, "kube-public") == 0)) {
        snprintf(msg, sizeof(msg),
                 "namespaces \"%s\" is forbidden: this namespace may not be deleted", rt->name);
        kle_apiserver__answer_error(a, 403, "Forbidden", msg, rt->r, rt->name, pretty);
        json_object_put(opts);
        return;
    }
    kle_apiserver__store_lock();
    existing = kle_apiserver__store_get(rt->store, rt->ns, rt->name);
    if (!existing) {
        kle_apiserver__not_found(a, rt->r, rt->name, pretty);
        goto out;
    }
    if (opts && json_object_object_get_ex(opts, "preconditions", &pre)) {
        const char *cur_rv = kle_apiserver__meta_or_empty(existing, "resourceVersion");
        const char *cur_uid = kle_apiserver__meta_or_empty(existing, "uid");
        if (json_object_object_get_ex(pre, "resourceVersion", &v) &&
            json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), cur_rv) != 0) {
            snprintf(msg, sizeof(msg),
                     "the ResourceVersion in the precondition (%s) does not match the "
                     "ResourceVersion in record (%s). The object might have been modified",
                     json_object_get_string(v), cur_rv);
            kle_apiserver__conflict(a, rt->r, rt->name, msg, pretty);
            goto out;
        }
        if (json_object_object_get_ex(pre, "uid", &v) && json_object_is_type(v, json_type_string) &&
            strcmp(json_object_get_string(v), cur_uid) != 0) {
            snprintf(msg, sizeof(msg),
                     "Precondition failed: UID in precondition: %s, UID in object meta: %s",
                     json_object_get_string(v), cur_uid);
            kle_apiserver__conflict(a, rt->r, rt->name, msg, pretty);
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
        json_object_object_add(
            details, "uid", json_object_new_string(kle_apiserver__meta_or_empty(existing, "uid")));
        json_object_object_add(st, "details", details);
        if (!kle_apiserver__dry_run(c)) {
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
        kle_apiserver__answer_json(a, 200, st, pretty);
        json_object_put(st);
    }
out:
    kle_apiserver__store_unlock();
    json_object_put(opts);
}
