/* The REST verbs over kle_client_request, and API paths. */
#include "kle/client.h"
#include "kle/rest.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* The verbs that return an object insist on getting one. */
static int want_object(int rc, json_object **out, const char *method, const char *path)
{
    if (rc || !out || (*out && json_object_is_type(*out, json_type_object)))
        return rc;
    json_object_put(*out);
    *out = NULL;
    return kle_error_set(KLE_EBADRESPONSE, "%s %s: the response is not a JSON object", method,
                         path);
}

static int body_request(kle_client *c, json_object **out, const char *method, const char *path,
                        const char *ctype, json_object *body, const kle_request_opts *opts)
{
    if (out)
        *out = NULL;
    if (!body)
        return kle_error_set(KLE_EINVAL, "%s %s: body is NULL", method, path ? path : "");
    size_t len;
    const char *s = json_object_to_json_string_length(
        body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (!s)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    return want_object(kle_client_request(out, c, method, path, ctype, s, len, opts), out, method,
                       path);
}

int kle_client_get(json_object **out, kle_client *c, const char *path, const kle_request_opts *opts)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_client_get: out is NULL");
    return want_object(kle_client_request(out, c, "GET", path, NULL, NULL, 0, opts), out, "GET",
                       path);
}

int kle_client_create(json_object **out, kle_client *c, const char *path, json_object *body,
                      const kle_request_opts *opts)
{
    return body_request(c, out, "POST", path, "application/json", body, opts);
}

int kle_client_update(json_object **out, kle_client *c, const char *path, json_object *body,
                      const kle_request_opts *opts)
{
    return body_request(c, out, "PUT", path, "application/json", body, opts);
}

int kle_client_patch(json_object **out, kle_client *c, const char *path, kle_patch_type type,
                     json_object *patch, const kle_request_opts *opts)
{
    static const char *types[] = {"application/merge-patch+json",
                                  "application/strategic-merge-patch+json",
                                  "application/json-patch+json"};
    if (out)
        *out = NULL;
    if ((unsigned)type > 2)
        return kle_error_set(KLE_EINVAL, "PATCH %s: unknown patch type %d", path ? path : "",
                             (int)type);
    return body_request(c, out, "PATCH", path, types[type], patch, opts);
}

int kle_client_delete(json_object **out, kle_client *c, const char *path,
                      const kle_request_opts *opts)
{
    return kle_client_request(out, c, "DELETE", path, NULL, NULL, 0, opts);
}

static int append_escaped(char *buf, size_t size, size_t *off, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        int w;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-._~:@", ch))
            w = snprintf(buf + *off, size - *off, "%c", ch);
        else
            w = snprintf(buf + *off, size - *off, "%%%02X", ch);
        if (w < 0 || (size_t)w >= size - *off)
            return -1;
        *off += (size_t)w;
    }
    return 0;
}

int kle_client_path(char *buf, size_t size, const char *gv, const char *resource, const char *ns,
                    const char *name)
{
    if (!buf || !size || !gv || !*gv || !resource || !*resource)
        return kle_error_set(KLE_EINVAL,
                             "kle_client_path: buf, group_version and resource must be set");
    if (strchr(resource, '/') || strchr(resource, '?') || (ns && strchr(ns, '/')) ||
        (name && strchr(name, '/')) || gv[0] == '/' || strchr(gv, '?') ||
        strchr(gv, '/') != strrchr(gv, '/'))
        return kle_error_set(KLE_EINVAL,
                             "kle_client_path: \"%s\", \"%s\", \"%s\", \"%s\" is not a valid "
                             "group/version, resource, namespace and name",
                             gv, resource, ns ? ns : "", name ? name : "");
    int core = !strchr(gv, '/');
    int w = snprintf(buf, size, "%s/%s", core ? "/api" : "/apis", gv);
    size_t off = w < 0 ? size : (size_t)w;
    int bad = off >= size;
    if (!bad && ns && *ns) {
        bad = (size_t)snprintf(buf + off, size - off, "/namespaces/") >= size - off;
        if (!bad) {
            off += strlen("/namespaces/");
            bad = append_escaped(buf, size, &off, ns) != 0;
        }
    }
    if (!bad) {
        w = snprintf(buf + off, size - off, "/%s", resource);
        bad = w < 0 || (size_t)w >= size - off;
        if (!bad)
            off += (size_t)w;
    }
    if (!bad && name && *name) {
        bad = off + 1 >= size;
        if (!bad) {
            buf[off++] = '/';
            buf[off] = '\0';
            bad = append_escaped(buf, size, &off, name) != 0;
        }
    }
    if (bad) {
        buf[0] = '\0';
        return kle_error_set(KLE_ETOOLARGE, "kle_client_path: a buffer of %zu bytes is too small",
                             size);
    }
    return 0;
}
