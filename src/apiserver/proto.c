/* The Kubernetes protobuf encoding (application/vnd.kubernetes.protobuf)
 * of the kinds kle-apiserver serves: the "k8s\0" magic, the runtime.Unknown
 * envelope, and length-prefixed watch frames. Messages are packed and
 * unpacked by protobuf-c from proto/k8s.proto; this unit converts between
 * them and the JSON objects the store holds, by walking protobuf-c's
 * descriptors, with the JSON names of the Kubernetes API as field names. */
#include "apiserver/apiserver.h"

#include "k8s.pb-c.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const unsigned char magic[4] = {'k', '8', 's', 0};

/* Where a message nests deeper than this, the body is refused. */
#define MAX_DEPTH 16

typedef struct kind_desc {
    const char *api_version;
    const char *kind;
    const ProtobufCMessageDescriptor *desc;
} kind_desc;

static const kind_desc kinds[] = {
    {"coordination.k8s.io/v1", "Lease", &k8s__lease__descriptor},
    {"coordination.k8s.io/v1", "LeaseList", &k8s__lease_list__descriptor},
    {"v1", "ConfigMap", &k8s__config_map__descriptor},
    {"v1", "ConfigMapList", &k8s__config_map_list__descriptor},
    {"v1", "Endpoints", &k8s__endpoints__descriptor},
    {"v1", "EndpointsList", &k8s__endpoints_list__descriptor},
    {"v1", "Event", &k8s__event__descriptor},
    {"v1", "EventList", &k8s__event_list__descriptor},
    {"v1", "Namespace", &k8s__namespace__descriptor},
    {"v1", "NamespaceList", &k8s__namespace_list__descriptor},
    {"events.k8s.io/v1", "Event", &k8s__events_v1_event__descriptor},
    {"events.k8s.io/v1", "EventList", &k8s__events_v1_event_list__descriptor},
    {"v1", "ServiceAccount", &k8s__service_account__descriptor},
    {"v1", "ServiceAccountList", &k8s__service_account_list__descriptor},
    {"authentication.k8s.io/v1", "TokenRequest", &k8s__token_request__descriptor},
    {"authorization.k8s.io/v1", "SelfSubjectAccessReview",
     &k8s__self_subject_access_review__descriptor},
    {"authorization.k8s.io/v1", "SelfSubjectRulesReview",
     &k8s__self_subject_rules_review__descriptor},
    {"rbac.authorization.k8s.io/v1", "Role", &k8s__role__descriptor},
    {"rbac.authorization.k8s.io/v1", "RoleList", &k8s__role_list__descriptor},
    {"rbac.authorization.k8s.io/v1", "ClusterRole", &k8s__cluster_role__descriptor},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleList", &k8s__cluster_role_list__descriptor},
    {"rbac.authorization.k8s.io/v1", "RoleBinding", &k8s__role_binding__descriptor},
    {"rbac.authorization.k8s.io/v1", "RoleBindingList", &k8s__role_binding_list__descriptor},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleBinding", &k8s__cluster_role_binding__descriptor},
    {"rbac.authorization.k8s.io/v1", "ClusterRoleBindingList",
     &k8s__cluster_role_binding_list__descriptor},
    {"v1", "Status", &k8s__status__descriptor},
    {"meta.k8s.io/v1", "Status", &k8s__status__descriptor},
    {"v1", "DeleteOptions", &k8s__delete_options__descriptor},
    {"meta.k8s.io/v1", "DeleteOptions", &k8s__delete_options__descriptor},
    {"coordination.k8s.io/v1", "DeleteOptions", &k8s__delete_options__descriptor},
    {"events.k8s.io/v1", "DeleteOptions", &k8s__delete_options__descriptor},
};

static const ProtobufCMessageDescriptor *find_kind(const char *api_version, const char *kind)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].api_version, api_version) == 0 && strcmp(kinds[i].kind, kind) == 0)
            return kinds[i].desc;
    return NULL;
}

/* ---- time ---- */

static int is_time(const ProtobufCMessageDescriptor *d)
{
    return d == &k8s__time__descriptor || d == &k8s__micro_time__descriptor;
}

/* Parses RFC 3339 ("2024-01-02T03:04:05Z", with fraction or offset). */
static int parse_time(const char *s, int64_t *sec, int32_t *nanos)
{
    struct tm tm;
    int y, mo, d, h, mi, se, n = 0;
    long frac = 0;
    int digits = 0;
    const char *p;
    int64_t off = 0;

    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &n) != 6 || n != 19)
        return -1;
    p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -1;
        while (digits < 9) {
            frac *= 10;
            digits++;
        }
    }
    if (*p == 'Z' && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2)
            return -1;
        off = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *sec = (int64_t)timegm(&tm) - off;
    *nanos = (int32_t)frac;
    return 0;
}

/* A Time or MicroTime as RFC 3339 (four-digit year, zero-padded like Go's
 * time.Format). Nanoseconds outside 0..999999999 carry into the seconds, as
 * Go's time.Unix does. NULL (the field is left out) outside years
 * 0000..9999, which Go's JSON encoding of a time refuses. */
static json_object *time_json(const ProtobufCMessage *m)
{
    const K8s__Time *t = (const K8s__Time *)m; /* Time and MicroTime share a layout. */
    char out[80];
    struct tm tm;
    int64_t secs = t->seconds, nanos = t->nanos;
    if (secs < -INT64_C(62167219200) - 86400 || secs > INT64_C(253402300799) + 86400)
        return NULL;
    secs += nanos / 1000000000;
    nanos %= 1000000000;
    if (nanos < 0) {
        nanos += 1000000000;
        secs--;
    }
    time_t tt = (time_t)secs;
    if (!gmtime_r(&tt, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
        return NULL;
    int n = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (m->descriptor == &k8s__micro_time__descriptor)
        snprintf(out + n, sizeof(out) - (size_t)n, ".%06dZ", (int)(nanos / 1000));
    else
        snprintf(out + n, sizeof(out) - (size_t)n, "Z");
    return json_object_new_string(out);
}

/* ---- base64 (binaryData) ---- */

static json_object *b64_json(const ProtobufCBinaryData *b)
{
    size_t n = 4 * ((b->len + 2) / 3) + 1;
    char *out = malloc(n);
    json_object *o;
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, b->data, (int)b->len);
    o = json_object_new_string(out);
    free(out);
    return o;
}

static int b64_decode(const char *s, ProtobufCBinaryData *b)
{
    size_t len = strlen(s), pad = 0;
    int n;
    if (len % 4 != 0 || len > (1u << 26))
        return -1;
    b->data = malloc(len / 4 * 3 + 1);
    if (!b->data)
        return -1;
    n = EVP_DecodeBlock(b->data, (const unsigned char *)s, (int)len);
    if (n < 0) {
        free(b->data);
        b->data = NULL;
        return -1;
    }
    if (len && s[len - 1] == '=')
        pad++;
    if (len > 1 && s[len - 2] == '=')
        pad++;
    b->len = (size_t)n - pad;
    return 0;
}

/* ---- message to JSON ---- */

/* Fields that are pointers in the Go types: written when set, even when
 * empty or zero. Every other field is omitted when empty, as the JSON
 * encoding's omitempty does. */
static int pointer_field(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f)
{
    if (d == &k8s__lease_spec__descriptor || d == &k8s__preconditions__descriptor)
        return 1;
    if (d == &k8s__config_map__descriptor)
        return strcmp(f->name, "immutable") == 0;
    if (d == &k8s__service_account__descriptor)
        return strcmp(f->name, "automountServiceAccountToken") == 0;
    if (d == &k8s__subject_access_review_status__descriptor)
        return strcmp(f->name, "allowed") == 0;
    if (d == &k8s__subject_rules_review_status__descriptor)
        return strcmp(f->name, "incomplete") == 0;
    if (d == &k8s__endpoint_address__descriptor)
        return strcmp(f->name, "nodeName") == 0;
    if (d == &k8s__endpoint_port__descriptor)
        return strcmp(f->name, "appProtocol") == 0;
    if (d == &k8s__object_meta__descriptor)
        return strcmp(f->name, "deletionGracePeriodSeconds") == 0;
    if (d == &k8s__delete_options__descriptor)
        return strcmp(f->name, "dryRun") != 0;
    if (d == &k8s__owner_reference__descriptor)
        return strcmp(f->name, "controller") == 0 || strcmp(f->name, "blockOwnerDeletion") == 0;
    return 0;
}

static int is_map(const ProtobufCFieldDescriptor *f)
{
    const ProtobufCMessageDescriptor *e = f->descriptor;
    size_t n;
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label != PROTOBUF_C_LABEL_REPEATED || !e)
        return 0;
    n = strlen(e->name);
    return n > 5 && strcmp(e->name + n - 5, "Entry") == 0 && e->n_fields == 2;
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
        return sizeof(int32_t);
    case PROTOBUF_C_TYPE_INT64:
        return sizeof(int64_t);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return sizeof(void *);
    }
}

static json_object *msg_json(const ProtobufCMessage *m);

/* One value of field f at p (an element, for repeated fields). */
static json_object *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return *(char *const *)p ? json_object_new_string(*(char *const *)p) : NULL;
    case PROTOBUF_C_TYPE_INT32:
        return json_object_new_int(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
        return json_object_new_int64(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_BYTES:
        return b64_json((const ProtobufCBinaryData *)p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub)
            return NULL;
        return is_time(sub->descriptor) ? time_json(sub) : msg_json(sub);
    }
    default:
        return NULL;
    }
}

static int empty_value(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return !*(char *const *)p || !**(char *const *)p;
    case PROTOBUF_C_TYPE_INT32:
        return *(const int32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
        return *(const int64_t *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (!sub)
            return 1;
        if (is_time(sub->descriptor))
            return ((const K8s__Time *)sub)->seconds == 0 && ((const K8s__Time *)sub)->nanos == 0;
        return 0;
    }
    default:
        return 0;
    }
}

static json_object *msg_json(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    json_object *o = json_object_new_object();
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m + f->offset;
        json_object *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            size_t esz = elem_size(f);
            const char *arr = *(const char *const *)base;
            if (n == 0)
                continue;
            if (is_map(f)) {
                const ProtobufCMessageDescriptor *ed = f->descriptor;
                const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
                v = json_object_new_object();
                for (size_t k = 0; k < n; k++) {
                    const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[k];
                    const char *key = *(char *const *)((const char *)e + kf->offset);
                    json_object *val = value_json(vf, (const char *)e + vf->offset);
                    json_object_object_add(v, key ? key : "",
                                           val ? val : json_object_new_string(""));
                }
            } else {
                v = json_object_new_array();
                for (size_t k = 0; k < n; k++) {
                    json_object *e = value_json(f, arr + k * esz);
                    json_object_array_add(v, e ? e : json_object_new_object());
                }
            }
        } else {
            if (f->quantifier_offset && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE &&
                !*(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset))
                continue;
            if (!pointer_field(d, f) && empty_value(f, base))
                continue;
            if (f->type == PROTOBUF_C_TYPE_STRING && !*(char *const *)base)
                continue;
            v = value_json(f, base);
            if (!v)
                continue;
        }
        json_object_object_add(o, f->name, v);
    }
    return o;
}

/* ---- JSON to message ---- */

static ProtobufCMessage *json_msg(const ProtobufCMessageDescriptor *d, json_object *o, int depth);

/* Sets one value of field f at p from JSON v; 0, or -1 when v does not fit
 * (the value is then left unset). */
static int set_value(const ProtobufCFieldDescriptor *f, void *p, json_object *v, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        if (!json_object_is_type(v, json_type_string))
            return -1;
        *(char **)p = strdup(json_object_get_string(v));
        return *(char **)p ? 0 : -1;
    case PROTOBUF_C_TYPE_INT32:
        if (!json_object_is_type(v, json_type_int))
            return -1;
        *(int32_t *)p = json_object_get_int(v);
        return 0;
    case PROTOBUF_C_TYPE_INT64:
        if (!json_object_is_type(v, json_type_int))
            return -1;
        *(int64_t *)p = json_object_get_int64(v);
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return -1;
        *(protobuf_c_boolean *)p = json_object_get_boolean(v);
        return 0;
    case PROTOBUF_C_TYPE_BYTES:
        if (!json_object_is_type(v, json_type_string))
            return -1;
        return b64_decode(json_object_get_string(v), p);
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        if (is_time(sd)) {
            K8s__Time *t;
            int64_t sec;
            int32_t nanos;
            if (!json_object_is_type(v, json_type_string) ||
                parse_time(json_object_get_string(v), &sec, &nanos) != 0)
                return -1;
            t = malloc(sd->sizeof_message);
            if (!t)
                return -1;
            protobuf_c_message_init(sd, t);
            t->has_seconds = 1;
            t->seconds = sec;
            t->has_nanos = nanos != 0;
            t->nanos = nanos;
            *(ProtobufCMessage **)p = (ProtobufCMessage *)t;
            return 0;
        }
        if (!json_object_is_type(v, json_type_object))
            return -1;
        *(ProtobufCMessage **)p = json_msg(sd, v, depth + 1);
        return *(ProtobufCMessage **)p ? 0 : -1;
    }
    default:
        return -1;
    }
}

static ProtobufCMessage *json_msg(const ProtobufCMessageDescriptor *d, json_object *o, int depth)
{
    ProtobufCMessage *m;
    if (depth > MAX_DEPTH)
        return NULL;
    m = calloc(1, d->sizeof_message);
    if (!m)
        return NULL;
    protobuf_c_message_init(d, m);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char *base = (char *)m + f->offset;
        json_object *v;
        if (!json_object_object_get_ex(o, f->name, &v) || !v)
            continue;
        if (is_map(f)) {
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            size_t n = 0, cap;
            ProtobufCMessage **arr;
            /* Length only of an object: json-c asserts on anything else. */
            if (!json_object_is_type(v, json_type_object) ||
                (cap = (size_t)json_object_object_length(v)) == 0)
                continue;
            arr = calloc(cap, sizeof(*arr));
            if (!arr)
                continue;
            json_object_object_foreach(v, key, val)
            {
                ProtobufCMessage *e = calloc(1, ed->sizeof_message);
                if (!e)
                    break;
                protobuf_c_message_init(ed, e);
                *(char **)((char *)e + ed->fields[0].offset) = strdup(key);
                /* A value that does not fit (bad base64) is left empty. */
                if (set_value(&ed->fields[1], (char *)e + ed->fields[1].offset, val, depth) == 0 &&
                    ed->fields[1].quantifier_offset)
                    *(protobuf_c_boolean *)((char *)e + ed->fields[1].quantifier_offset) = 1;
                arr[n++] = e;
            }
            *(ProtobufCMessage ***)base = arr;
            *(size_t *)((char *)m + f->quantifier_offset) = n;
        } else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 0, cap, esz = elem_size(f);
            char *arr;
            if (!json_object_is_type(v, json_type_array))
                continue;
            cap = json_object_array_length(v);
            if (cap == 0)
                continue;
            arr = calloc(cap, esz);
            if (!arr)
                continue;
            for (size_t k = 0; k < cap; k++)
                if (set_value(f, arr + n * esz, json_object_array_get_idx(v, k), depth) == 0)
                    n++;
            *(char **)base = arr;
            *(size_t *)((char *)m + f->quantifier_offset) = n;
        } else if (set_value(f, base, v, depth) == 0 && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) {
            *(protobuf_c_boolean *)((char *)m + f->quantifier_offset) = 1;
        }
    }
    return m;
}

/* ---- the envelope ---- */

json_object *kle_apiserver__proto_decode(const unsigned char *data, size_t len, int *code,
                                         char *err, size_t errlen)
{
    K8s__Unknown *u;
    const ProtobufCMessageDescriptor *d;
    ProtobufCMessage *m;
    json_object *obj;
    const char *apiv, *kind;

    *code = 400;
    if (len < sizeof(magic) || memcmp(data, magic, sizeof(magic)) != 0) {
        snprintf(err, errlen,
                 "provided data does not appear to be a protobuf message, expected prefix "
                 "[107 56 115 0]");
        return NULL;
    }
    u = k8s__unknown__unpack(NULL, len - sizeof(magic), data + sizeof(magic));
    if (!u) {
        snprintf(err, errlen,
                 "malformed protobuf body: the runtime.Unknown envelope does not "
                 "decode (truncated or corrupt)");
        return NULL;
    }
    apiv = u->typemeta && u->typemeta->apiversion ? u->typemeta->apiversion : "";
    kind = u->typemeta && u->typemeta->kind ? u->typemeta->kind : "";
    if (!kind[0]) {
        snprintf(err, errlen, "malformed protobuf body: the envelope names no kind");
        k8s__unknown__free_unpacked(u, NULL);
        return NULL;
    }
    d = find_kind(apiv, kind);
    if (!d) {
        *code = 415;
        snprintf(err, errlen,
                 "the protobuf encoding of %.100s (%.100s) is not supported by kle-apiserver; "
                 "send it as application/json",
                 kind, apiv[0] ? apiv : "no apiVersion");
        k8s__unknown__free_unpacked(u, NULL);
        return NULL;
    }
    if (u->contentencoding && u->contentencoding[0]) {
        *code = 415;
        snprintf(err, errlen, "protobuf content encoding %.100s is not supported",
                 u->contentencoding);
        k8s__unknown__free_unpacked(u, NULL);
        return NULL;
    }
    m = protobuf_c_message_unpack(d, NULL, u->has_raw ? u->raw.len : 0,
                                  u->has_raw ? u->raw.data : (const uint8_t *)"");
    if (!m) {
        snprintf(err, errlen, "malformed protobuf body: the %.100s in the envelope does not decode",
                 kind);
        k8s__unknown__free_unpacked(u, NULL);
        return NULL;
    }
    obj = json_object_new_object();
    json_object_object_add(obj, "kind", json_object_new_string(kind));
    json_object_object_add(obj, "apiVersion", json_object_new_string(apiv));
    {
        json_object *body = msg_json(m);
        json_object_object_foreach(body, key, val)
        {
            json_object_object_add(obj, key, json_object_get(val));
        }
        json_object_put(body);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    k8s__unknown__free_unpacked(u, NULL);
    return obj;
}

/* Appends the enveloped encoding of obj; -1 when its kind has none. */
static int encode(json_object *obj, kle_buf *out)
{
    json_object *k, *av;
    const ProtobufCMessageDescriptor *d;
    ProtobufCMessage *m;
    K8s__Unknown u = K8S__UNKNOWN__INIT;
    K8s__TypeMeta tm = K8S__TYPE_META__INIT;
    uint8_t *raw, *env;
    size_t rawlen, envlen;
    int rc = -1;

    if (!json_object_object_get_ex(obj, "kind", &k) ||
        !json_object_object_get_ex(obj, "apiVersion", &av))
        return -1;
    d = find_kind(json_object_get_string(av), json_object_get_string(k));
    if (!d)
        return -1;
    m = json_msg(d, obj, 0);
    if (!m)
        return -1;
    rawlen = protobuf_c_message_get_packed_size(m);
    raw = malloc(rawlen + 1);
    if (raw) {
        protobuf_c_message_pack(m, raw);
        tm.apiversion = (char *)json_object_get_string(av);
        tm.kind = (char *)json_object_get_string(k);
        u.typemeta = &tm;
        u.has_raw = 1;
        u.raw.data = raw;
        u.raw.len = rawlen;
        /* kube-apiserver writes these two empty strings too. */
        u.contentencoding = (char *)"";
        u.contenttype = (char *)"";
        envlen = k8s__unknown__get_packed_size(&u);
        env = malloc(envlen + 1);
        if (env) {
            k8s__unknown__pack(&u, env);
            if (kle_buf__append(out, (const char *)magic, sizeof(magic)) == 0 &&
                kle_buf__append(out, (const char *)env, envlen) == 0)
                rc = 0;
            free(env);
        }
        free(raw);
    }
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}

int kle_apiserver__proto_encode(json_object *obj, kle_buf *out)
{
    return encode(obj, out);
}

int kle_apiserver__proto_watch_frame(const char *type, json_object *obj, kle_buf *out)
{
    kle_buf inner = {0};
    K8s__WatchEvent ev = K8S__WATCH_EVENT__INIT;
    K8s__RawExtension re = K8S__RAW_EXTENSION__INIT;
    uint8_t *packed;
    unsigned char len[4];
    size_t n;
    int rc = -1;

    if (encode(obj, &inner) != 0) {
        kle_buf__free(&inner);
        return -1;
    }
    ev.type = (char *)type;
    re.has_raw = 1;
    re.raw.data = (uint8_t *)inner.data;
    re.raw.len = inner.len;
    ev.object = &re;
    n = k8s__watch_event__get_packed_size(&ev);
    packed = malloc(n + 1);
    if (packed && n <= 0xffffffffu) {
        k8s__watch_event__pack(&ev, packed);
        len[0] = (unsigned char)(n >> 24);
        len[1] = (unsigned char)(n >> 16);
        len[2] = (unsigned char)(n >> 8);
        len[3] = (unsigned char)n;
        if (kle_buf__append(out, (const char *)len, 4) == 0 &&
            kle_buf__append(out, (const char *)packed, n) == 0)
            rc = 0;
    }
    free(packed);
    kle_buf__free(&inner);
    return rc;
}
