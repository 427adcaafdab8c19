/* A small decoder for the Kubernetes protobuf encoding of request bodies
 * (kubectl create configmap/namespace send protobuf): the "k8s\0" magic and
 * runtime.Unknown envelope around a ConfigMap or Namespace. Only the
 * fields those objects carry are decoded; the rest is skipped. */
#include "apiserver/apiserver.h"

#include <stdio.h>
#include <string.h>

typedef struct pb {
    const unsigned char *p, *end;
} pb;

static int varint(pb *b, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end)
            return -1;
        unsigned char c = *b->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Reads the next field: number, wire type, and for length-delimited ones
 * the bytes in sub; varints in *v. */
static int next(pb *b, unsigned *field, unsigned *wt, pb *sub, uint64_t *v)
{
    uint64_t tag, len;
    if (varint(b, &tag) != 0)
        return -1;
    *field = (unsigned)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    switch (*wt) {
    case 0:
        return varint(b, v);
    case 1:
        if (b->end - b->p < 8)
            return -1;
        b->p += 8;
        return 0;
    case 5:
        if (b->end - b->p < 4)
            return -1;
        b->p += 4;
        return 0;
    case 2:
        if (varint(b, &len) != 0 || len > (uint64_t)(b->end - b->p))
            return -1;
        sub->p = b->p;
        sub->end = b->p + len;
        b->p += len;
        return 0;
    default:
        return -1;
    }
}

static json_object *str(pb s)
{
    return json_object_new_string_len((const char *)s.p, (int)(s.end - s.p));
}

/* A map<string,string> entry into obj. */
static int map_entry(pb e, json_object *obj)
{
    unsigned f, wt;
    pb sub, k = {NULL, NULL}, val = {NULL, NULL};
    uint64_t v;
    while (e.p < e.end) {
        if (next(&e, &f, &wt, &sub, &v) != 0)
            return -1;
        if (wt == 2 && f == 1)
            k = sub;
        else if (wt == 2 && f == 2)
            val = sub;
    }
    if (!k.p)
        return -1;
    {
        char key[512];
        size_t kl = (size_t)(k.end - k.p);
        if (kl >= sizeof(key))
            return -1;
        memcpy(key, k.p, kl);
        key[kl] = '\0';
        json_object_object_add(obj, key, val.p ? str(val) : json_object_new_string(""));
    }
    return 0;
}

static json_object *object_meta(pb m)
{
    json_object *meta = json_object_new_object(), *labels = NULL, *ann = NULL;
    unsigned f, wt;
    pb sub;
    uint64_t v;
    static const char *const names[] = {NULL, "name", "generateName",   "namespace",
                                        NULL, NULL,   "resourceVersion"};
    while (m.p < m.end) {
        if (next(&m, &f, &wt, &sub, &v) != 0)
            goto bad;
        if (wt != 2)
            continue;
        if (f < 7 && names[f] && sub.end > sub.p)
            json_object_object_add(meta, names[f], str(sub));
        else if (f == 11 || f == 12) {
            json_object **dst = f == 11 ? &labels : &ann;
            if (!*dst) {
                *dst = json_object_new_object();
                json_object_object_add(meta, f == 11 ? "labels" : "annotations", *dst);
            }
            if (map_entry(sub, *dst) != 0)
                goto bad;
        }
    }
    return meta;
bad:
    json_object_put(meta);
    return NULL;
}

json_object *kle_apiserver__proto_decode(const unsigned char *data, size_t len, char *err,
                                         size_t errlen)
{
    pb b = {data + 4, data + len}, sub, raw = {NULL, NULL}, tm = {NULL, NULL};
    unsigned f, wt;
    uint64_t v;
    char kind[64] = "", apiv[64] = "";
    json_object *obj;

    if (len < 4 || memcmp(data, "k8s\0", 4) != 0) {
        snprintf(err, errlen, "protobuf body does not start with the k8s magic");
        return NULL;
    }
    while (b.p < b.end) {
        if (next(&b, &f, &wt, &sub, &v) != 0)
            goto malformed;
        if (wt == 2 && f == 1)
            tm = sub;
        else if (wt == 2 && f == 2)
            raw = sub;
    }
    while (tm.p && tm.p < tm.end) {
        if (next(&tm, &f, &wt, &sub, &v) != 0)
            goto malformed;
        if (wt == 2 && (f == 1 || f == 2)) {
            char *dst = f == 1 ? apiv : kind;
            size_t n = (size_t)(sub.end - sub.p);
            if (n >= 64)
                goto malformed;
            memcpy(dst, sub.p, n);
            dst[n] = '\0';
        }
    }
    if (!raw.p || (strcmp(kind, "ConfigMap") != 0 && strcmp(kind, "Namespace") != 0)) {
        snprintf(err, errlen,
                 "the protobuf encoding of %s is not supported by kle-apiserver; send JSON",
                 kind[0] ? kind : "this object");
        return NULL;
    }
    obj = json_object_new_object();
    json_object_object_add(obj, "kind", json_object_new_string(kind));
    json_object_object_add(obj, "apiVersion", json_object_new_string(apiv));
    while (raw.p < raw.end) {
        json_object *data_obj;
        if (next(&raw, &f, &wt, &sub, &v) != 0) {
            json_object_put(obj);
            goto malformed;
        }
        if (wt == 2 && f == 1) {
            json_object *meta = object_meta(sub);
            if (!meta) {
                json_object_put(obj);
                goto malformed;
            }
            json_object_object_add(obj, "metadata", meta);
        } else if (wt == 2 && f == 2 && strcmp(kind, "ConfigMap") == 0) {
            if (!json_object_object_get_ex(obj, "data", &data_obj)) {
                data_obj = json_object_new_object();
                json_object_object_add(obj, "data", data_obj);
            }
            if (map_entry(sub, data_obj) != 0) {
                json_object_put(obj);
                goto malformed;
            }
        } else if (wt == 0 && f == 4 && strcmp(kind, "ConfigMap") == 0) {
            json_object_object_add(obj, "immutable", json_object_new_boolean(v != 0));
        }
    }
    return obj;
malformed:
    snprintf(err, errlen, "malformed protobuf body");
    return NULL;
}
