/* Object semantics shared by the handlers: validation, MicroTime
 * normalisation, selectors, merge patches and Status objects. */
#include "apiserver/objects.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const kle_apiserver__resource kle_apiserver__resources[] = {
    {"", "v1", "namespaces", "namespace", "Namespace", "NamespaceList", "ns", 0, 0},
    {"", "v1", "configmaps", "configmap", "ConfigMap", "ConfigMapList", "cm", 1, 0},
    {"", "v1", "endpoints", "endpoints", "Endpoints", "EndpointsList", "ep", 1, 0},
    {"", "v1", "events", "event", "Event", "EventList", "ev", 1, 0},
    {"coordination.k8s.io", "v1", "leases", "lease", "Lease", "LeaseList", NULL, 1, 0},
    {"events.k8s.io", "v1", "events", "event", "Event", "EventList", "ev", 1, 0},
    {"", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", "ServiceAccountList", "sa", 1,
     0},
    {"rbac.authorization.k8s.io", "v1", "roles", "role", "Role", "RoleList", NULL, 1, 0},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding", "RoleBinding",
     "RoleBindingList", NULL, 1, 0},
    {"rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole", "ClusterRole",
     "ClusterRoleList", NULL, 0, 0},
    {"rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
     "ClusterRoleBinding", "ClusterRoleBindingList", NULL, 0, 0},
    {"apps", "v1", "deployments", "deployment", "Deployment", "DeploymentList", "deploy", 1, 0},
    {"authorization.k8s.io", "v1", "selfsubjectaccessreviews", "selfsubjectaccessreview",
     "SelfSubjectAccessReview", "SelfSubjectAccessReviewList", NULL, 0, 1},
    {"authorization.k8s.io", "v1", "selfsubjectrulesreviews", "selfsubjectrulesreview",
     "SelfSubjectRulesReview", "SelfSubjectRulesReviewList", NULL, 0, 1},
    {"", "v1", "secrets", "secret", "Secret", "SecretList", NULL, 1, 0},
    /* Last: code elsewhere knows the indices above. */
    /* Coordinated leader election (KEP-4355): coordination.k8s.io/v1beta1 since 1.33. */
    {"coordination.k8s.io", "v1beta1", "leasecandidates", "leasecandidate", "LeaseCandidate",
     "LeaseCandidateList", NULL, 1, 0},
};
const size_t kle_apiserver__nresources =
    sizeof(kle_apiserver__resources) / sizeof(kle_apiserver__resources[0]);

int kle_apiserver__lease_candidates = 1;

int kle_apiserver__resource_served(size_t i)
{
    return i < kle_apiserver__nresources &&
           (i != KLE_RES_LEASECANDIDATES || kle_apiserver__lease_candidates);
}

void kle_apiserver__qualified(const kle_apiserver__resource *r, char *buf, size_t len)
{
    if (r->group[0])
        snprintf(buf, len, "%s.%s", r->plural, r->group);
    else
        snprintf(buf, len, "%s", r->plural);
}

void kle_apiserver__api_version(const kle_apiserver__resource *r, char *buf, size_t len)
{
    if (r->group[0])
        snprintf(buf, len, "%s/%s", r->group, r->version);
    else
        snprintf(buf, len, "%s", r->version);
}

json_object *kle_apiserver__status(int code, const char *reason, const char *message,
                                   const kle_apiserver__resource *r, const char *name,
                                   json_object *causes)
{
    json_object *st = json_object_new_object(), *details = NULL;
    json_object_object_add(st, "kind", json_object_new_string("Status"));
    json_object_object_add(st, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(st, "metadata", json_object_new_object());
    json_object_object_add(st, "status", json_object_new_string("Failure"));
    json_object_object_add(st, "message", json_object_new_string(message));
    json_object_object_add(st, "reason", json_object_new_string(reason));
    if (r || (name && *name) || causes) {
        details = json_object_new_object();
        if (name && *name)
            json_object_object_add(details, "name", json_object_new_string(name));
        if (r && r->group[0])
            json_object_object_add(details, "group", json_object_new_string(r->group));
        if (r)
            json_object_object_add(
                details, "kind",
                json_object_new_string(strcmp(reason, "Invalid") == 0 ? r->kind : r->plural));
        if (causes)
            json_object_object_add(details, "causes", causes);
        json_object_object_add(st, "details", details);
    }
    json_object_object_add(st, "code", json_object_new_int(code));
    return st;
}

const char *kle_apiserver__meta_str(json_object *obj, const char *field)
{
    json_object *meta, *v;
    if (!json_object_object_get_ex(obj, "metadata", &meta) ||
        !json_object_object_get_ex(meta, field, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

json_object *kle_apiserver__meta(json_object *obj)
{
    json_object *meta;
    if (!json_object_object_get_ex(obj, "metadata", &meta) ||
        !json_object_is_type(meta, json_type_object)) {
        meta = json_object_new_object();
        json_object_object_add(obj, "metadata", meta);
    }
    return meta;
}

/* ---- validation ---- */

static void add_cause(json_object *causes, const char *reason, const char *field,
                      const char *message)
{
    json_object *c = json_object_new_object();
    json_object_object_add(c, "reason", json_object_new_string(reason));
    json_object_object_add(c, "message", json_object_new_string(message));
    json_object_object_add(c, "field", json_object_new_string(field));
    json_object_array_add(causes, c);
}

static int is_dns_label(const char *s, size_t maxlen)
{
    size_t n = strlen(s);
    if (n == 0 || n > maxlen)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!(islower((unsigned char)ch) || isdigit((unsigned char)ch) || ch == '-'))
            return 0;
    }
    return s[0] != '-' && s[n - 1] != '-';
}

static int is_dns_subdomain(const char *s)
{
    size_t n = strlen(s);
    const char *p = s;
    if (n == 0 || n > 253)
        return 0;
    while (1) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        char part[254];
        if (l == 0 || l >= sizeof(part))
            return 0;
        memcpy(part, p, l);
        part[l] = '\0';
        if (!is_dns_label(part, 253))
            return 0;
        if (!dot)
            return 1;
        p = dot + 1;
    }
}

static const char SUBDOMAIN_MSG[] =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. "
    "'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
static const char LABEL_MSG[] =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/* Parses RFC 3339 with optional fraction and zone; returns 0 and fills
 * seconds since the epoch and microseconds. */
static int parse_time(const char *s, long long *secs, long *usec)
{
    struct tm tm;
    int y, mo, d, h, mi, sec, n = 0;
    const char *p;
    long us = 0;
    int digits = 0;
    long long off = 0;

    memset(&tm, 0, sizeof(tm));
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n == 0)
        return -1;
    p = s + n;
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (digits < 6) {
                us = us * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -1;
        while (digits < 6) {
            us *= 10;
            digits++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, m = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &m) != 2 || m != 5)
            return -1;
        off = (oh * 3600LL + om * 60LL) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    *secs = (long long)timegm(&tm) - off;
    *usec = us;
    return 0;
}

static int normalise_micro(json_object *spec, const char *field, char *err, size_t errlen)
{
    json_object *v;
    long long secs;
    long usec;
    char out[64];
    struct tm tm;
    time_t t;

    if (!json_object_object_get_ex(spec, field, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (!json_object_is_type(v, json_type_string) ||
        parse_time(json_object_get_string(v), &secs, &usec) != 0) {
        snprintf(err, errlen,
                 "Lease in version \"v1\" cannot be handled as a Lease: parsing spec.%s: "
                 "expected an RFC 3339 time, got %s",
                 field, json_object_to_json_string(v));
        return -1;
    }
    t = (time_t)secs;
    gmtime_r(&t, &tm);
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, usec);
    json_object_object_add(spec, field, json_object_new_string(out));
    return 0;
}

static int check_type(json_object *parent, const char *field, json_type want, const char *where,
                      const char *kind, char *err, size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(parent, field, &v) || json_object_is_type(v, json_type_null))
        return 0;
    if (json_object_is_type(v, want))
        return 0;
    snprintf(err, errlen,
             "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal %s into "
             "Go struct field %s.%s of type %s",
             kind, kind, json_type_to_name(json_object_get_type(v)), where, field,
             want == json_type_int      ? "int32"
             : want == json_type_string ? "string"
                                        : "object");
    return -1;
}

/* Where Go's base64.StdEncoding (what encoding/json uses for []byte) finds
 * s invalid: the byte offset, or -1 when it decodes. Line breaks are skipped,
 * padding is required. */
static long base64_error_at(const char *s, size_t len)
{
    size_t i = 0;
    for (;;) {
        size_t start = i, n = 0, pad = 0;
        while (n + pad < 4) {
            while (i < len && (s[i] == '\r' || s[i] == '\n'))
                i++;
            if (i == len)
                return n + pad == 0 ? -1 : (long)start;
            char c = s[i];
            if (c == '=') {
                if (n < 2)
                    return (long)i;
                pad++;
            } else if (pad || !(isalnum((unsigned char)c) || c == '+' || c == '/')) {
                return (long)i;
            } else {
                n++;
            }
            i++;
        }
        if (pad) {
            while (i < len && (s[i] == '\r' || s[i] == '\n'))
                i++;
            return i == len ? -1 : (long)i;
        }
    }
}

/* Checks the []byte map field of kind (ConfigMap.binaryData, Secret.data):
 * string values (or null) of valid base64, as kube-apiserver decodes them. */
static int check_bytes_map(json_object *obj, const char *field, const char *kind, char *err,
                           size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(obj, field, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_object)) {
        snprintf(err, errlen,
                 "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal %s into "
                 "Go struct field %s.%s of type map[string][]uint8",
                 kind, kind, json_type_to_name(json_object_get_type(v)), kind, field);
        return -1;
    }
    json_object_object_foreach(v, k, val)
    {
        if (!val)
            continue;
        if (!json_object_is_type(val, json_type_string)) {
            snprintf(err, errlen,
                     "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal %s "
                     "into Go struct field %s.%s of type []uint8 (key %s)",
                     kind, kind, json_type_to_name(json_object_get_type(val)), kind, field, k);
            return -1;
        }
        long at =
            base64_error_at(json_object_get_string(val), (size_t)json_object_get_string_len(val));
        if (at >= 0) {
            snprintf(err, errlen,
                     "%s in version \"v1\" cannot be handled as a %s: illegal base64 data at "
                     "input byte %ld",
                     kind, kind, at);
            return -1;
        }
    }
    return 0;
}

int kle_apiserver__decode_check(const kle_apiserver__resource *r, json_object *obj, char *err,
                                size_t errlen)
{
    json_object *meta, *v;
    if (json_object_object_get_ex(obj, "metadata", &meta) &&
        !json_object_is_type(meta, json_type_object) &&
        !json_object_is_type(meta, json_type_null)) {
        snprintf(err, errlen,
                 "%s in version \"v1\" cannot be handled as a %s: json: cannot unmarshal %s "
                 "into Go struct field %s.metadata of type v1.ObjectMeta",
                 r->kind, r->kind, json_type_to_name(json_object_get_type(meta)), r->kind);
        return -1;
    }
    if (json_object_is_type(meta, json_type_object)) {
        if (check_type(meta, "name", json_type_string, "ObjectMeta.metadata", r->kind, err,
                       errlen) ||
            check_type(meta, "namespace", json_type_string, "ObjectMeta.metadata", r->kind, err,
                       errlen) ||
            check_type(meta, "resourceVersion", json_type_string, "ObjectMeta.metadata", r->kind,
                       err, errlen) ||
            check_type(meta, "labels", json_type_object, "ObjectMeta.metadata", r->kind, err,
                       errlen) ||
            check_type(meta, "annotations", json_type_object, "ObjectMeta.metadata", r->kind, err,
                       errlen))
            return -1;
        for (int which = 0; which < 2; which++) {
            json_object *m;
            if (!json_object_object_get_ex(meta, which ? "annotations" : "labels", &m) ||
                !json_object_is_type(m, json_type_object))
                continue;
            json_object_object_foreach(m, k, val)
            {
                if (!json_object_is_type(val, json_type_string)) {
                    snprintf(err, errlen,
                             "%s in version \"v1\" cannot be handled as a %s: json: cannot "
                             "unmarshal %s into Go struct field ObjectMeta.metadata.%s of type "
                             "string (key %s)",
                             r->kind, r->kind, json_type_to_name(json_object_get_type(val)),
                             which ? "annotations" : "labels", k);
                    return -1;
                }
            }
        }
    }
    if (strcmp(r->plural, "leases") == 0 && json_object_object_get_ex(obj, "spec", &v) &&
        json_object_is_type(v, json_type_object)) {
        if (check_type(v, "holderIdentity", json_type_string, "LeaseSpec.spec", "Lease", err,
                       errlen) ||
            check_type(v, "leaseDurationSeconds", json_type_int, "LeaseSpec.spec", "Lease", err,
                       errlen) ||
            check_type(v, "leaseTransitions", json_type_int, "LeaseSpec.spec", "Lease", err,
                       errlen) ||
            normalise_micro(v, "acquireTime", err, errlen) ||
            normalise_micro(v, "renewTime", err, errlen))
            return -1;
    }
    if (strcmp(r->plural, "configmaps") == 0 &&
        check_type(obj, "data", json_type_object, "ConfigMap", "ConfigMap", err, errlen))
        return -1;
    if (strcmp(r->plural, "configmaps") == 0 && json_object_object_get_ex(obj, "data", &v) &&
        json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, val)
        {
            if (!json_object_is_type(val, json_type_string)) {
                snprintf(err, errlen,
                         "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: json: "
                         "cannot unmarshal %s into Go struct field ConfigMap.data of type "
                         "string (key %s)",
                         json_type_to_name(json_object_get_type(val)), k);
                return -1;
            }
        }
    }
    if (strcmp(r->plural, "configmaps") == 0 &&
        check_bytes_map(obj, "binaryData", "ConfigMap", err, errlen))
        return -1;
    if (strcmp(r->plural, "secrets") == 0 && check_bytes_map(obj, "data", "Secret", err, errlen))
        return -1;
    return 0;
}

static json_object *obj_at(json_object *o, const char *key)
{
    json_object *v;
    if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_object))
        return NULL;
    return v;
}

/* apps/v1 Deployment: the required fields kube-apiserver's validation
 * names (selector, template labels that match it, containers with a name
 * and an image, replicas >= 0, restartPolicy Always). */
static void validate_deployment(json_object *obj, json_object *causes)
{
    json_object *spec = obj_at(obj, "spec"), *sel, *ml, *tmpl, *tmeta, *labels, *pspec, *cs, *v;
    char msg[512];

    if (!spec) {
        add_cause(causes, "FieldValueRequired", "spec.selector", "Required value");
        add_cause(causes, "FieldValueRequired", "spec.template.spec.containers", "Required value");
        return;
    }
    if (json_object_object_get_ex(spec, "replicas", &v) && json_object_is_type(v, json_type_int) &&
        json_object_get_int64(v) < 0) {
        snprintf(msg, sizeof(msg), "Invalid value: %lld: must be greater than or equal to 0",
                 (long long)json_object_get_int64(v));
        add_cause(causes, "FieldValueInvalid", "spec.replicas", msg);
    }
    sel = obj_at(spec, "selector");
    ml = obj_at(sel, "matchLabels");
    tmpl = obj_at(spec, "template");
    tmeta = obj_at(tmpl, "metadata");
    labels = obj_at(tmeta, "labels");
    if (!sel) {
        add_cause(causes, "FieldValueRequired", "spec.selector", "Required value");
    } else {
        json_object *me;
        int exprs = json_object_object_get_ex(sel, "matchExpressions", &me) &&
                    json_object_is_type(me, json_type_array) && json_object_array_length(me) > 0;
        if ((!ml || json_object_object_length(ml) == 0) && !exprs) {
            add_cause(causes, "FieldValueInvalid", "spec.selector",
                      "Invalid value: \"null\": empty selector is invalid for deployment");
        } else if (ml) {
            int match = 1;
            json_object_object_foreach(ml, k, val)
            {
                json_object *lv;
                if (!labels || !json_object_object_get_ex(labels, k, &lv) ||
                    strcmp(json_object_get_string(lv), json_object_get_string(val)) != 0)
                    match = 0;
            }
            if (!match)
                add_cause(causes, "FieldValueInvalid", "spec.template.metadata.labels",
                          "Invalid value: map[string]string(nil): `selector` does not match "
                          "template `labels`");
        }
    }
    pspec = obj_at(tmpl, "spec");
    if (pspec && json_object_object_get_ex(pspec, "restartPolicy", &v) &&
        json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "Always")) {
        snprintf(msg, sizeof(msg), "Unsupported value: \"%.100s\": supported values: \"Always\"",
                 json_object_get_string(v));
        add_cause(causes, "FieldValueNotSupported", "spec.template.spec.restartPolicy", msg);
    }
    if (!pspec || !json_object_object_get_ex(pspec, "containers", &cs) ||
        !json_object_is_type(cs, json_type_array) || json_object_array_length(cs) == 0) {
        add_cause(causes, "FieldValueRequired", "spec.template.spec.containers", "Required value");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(cs); i++) {
        json_object *c = json_object_array_get_idx(cs, i);
        static const char *const req[] = {"name", "image"};
        for (int f = 0; f < 2; f++) {
            char field[128];
            if (json_object_is_type(c, json_type_object) &&
                json_object_object_get_ex(c, req[f], &v) &&
                json_object_is_type(v, json_type_string) && *json_object_get_string(v))
                continue;
            snprintf(field, sizeof(field), "spec.template.spec.containers[%zu].%s", i, req[f]);
            add_cause(causes, "FieldValueRequired", field, "Required value");
        }
    }
}

json_object *kle_apiserver__validate(const kle_apiserver__resource *r, json_object *obj)
{
    json_object *causes = json_object_new_array(), *v, *spec;
    const char *name = kle_apiserver__meta_str(obj, "name");
    char msg[1024];

    if (!name || !*name) {
        add_cause(causes, "FieldValueRequired", "metadata.name",
                  "Required value: name or generateName is required");
    } else if (r == &kle_apiserver__resources[KLE_RES_NAMESPACES] ? !is_dns_label(name, 63)
                                                                  : !is_dns_subdomain(name)) {
        snprintf(msg, sizeof(msg), "Invalid value: \"%.300s\": %s", name,
                 r == &kle_apiserver__resources[KLE_RES_NAMESPACES] ? LABEL_MSG : SUBDOMAIN_MSG);
        add_cause(causes, "FieldValueInvalid", "metadata.name", msg);
    }
    if (json_object_object_get_ex(kle_apiserver__meta(obj), "annotations", &v) &&
        json_object_is_type(v, json_type_object)) {
        size_t total = 0;
        json_object_object_foreach(v, k, val) total +=
            strlen(k) + strlen(json_object_get_string(val));
        if (total > 262144)
            add_cause(causes, "FieldValueTooLong", "metadata.annotations",
                      "Too long: must have at most 262144 bytes");
    }
    if (strcmp(r->plural, "leases") == 0 && json_object_object_get_ex(obj, "spec", &spec) &&
        json_object_is_type(spec, json_type_object)) {
        if (json_object_object_get_ex(spec, "leaseDurationSeconds", &v) &&
            json_object_is_type(v, json_type_int) && json_object_get_int64(v) <= 0) {
            snprintf(msg, sizeof(msg), "Invalid value: %lld: must be greater than 0",
                     (long long)json_object_get_int64(v));
            add_cause(causes, "FieldValueInvalid", "spec.leaseDurationSeconds", msg);
        }
        if (json_object_object_get_ex(spec, "leaseTransitions", &v) &&
            json_object_is_type(v, json_type_int) && json_object_get_int64(v) < 0) {
            snprintf(msg, sizeof(msg), "Invalid value: %lld: must be greater than or equal to 0",
                     (long long)json_object_get_int64(v));
            add_cause(causes, "FieldValueInvalid", "spec.leaseTransitions", msg);
        }
    }
    if (strcmp(r->kind, "Deployment") == 0)
        validate_deployment(obj, causes);
    if (json_object_array_length(causes) == 0) {
        json_object_put(causes);
        return NULL;
    }
    return causes;
}

json_object *kle_apiserver__invalid_status(const kle_apiserver__resource *r, const char *name,
                                           json_object *causes)
{
    kle_buf b = {0};
    char head[512];
    size_t n = json_object_array_length(causes);
    json_object *st;

    snprintf(head, sizeof(head), "%s%s%s \"%s\" is invalid: ", r->kind, r->group[0] ? "." : "",
             r->group, name ? name : "");
    kle_buf__appends(&b, head);
    if (n > 1)
        kle_buf__appends(&b, "[");
    for (size_t i = 0; i < n; i++) {
        json_object *c = json_object_array_get_idx(causes, i), *f, *m;
        json_object_object_get_ex(c, "field", &f);
        json_object_object_get_ex(c, "message", &m);
        if (i)
            kle_buf__appends(&b, ", ");
        kle_buf__appends(&b, json_object_get_string(f));
        kle_buf__appends(&b, ": ");
        kle_buf__appends(&b, json_object_get_string(m));
    }
    if (n > 1)
        kle_buf__appends(&b, "]");
    st = kle_apiserver__status(422, "Invalid", b.data, r, name, causes);
    kle_buf__free(&b);
    return st;
}

/* ---- selectors ---- */

/* Returns the value at a dotted path as a string ("" when missing). */
static void path_value(json_object *obj, const char *path, char *out, size_t len)
{
    char seg[256];
    json_object *cur = obj;
    const char *p = path;
    out[0] = '\0';
    while (cur) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (l >= sizeof(seg))
            return;
        memcpy(seg, p, l);
        seg[l] = '\0';
        if (!json_object_object_get_ex(cur, seg, &cur))
            return;
        if (!dot)
            break;
        p = dot + 1;
    }
    if (cur && !json_object_is_type(cur, json_type_null))
        snprintf(out, len, "%s", json_object_get_string(cur));
}

int kle_apiserver__selector_check(const char *sel, int labels, char *err, size_t errlen)
{
    char *copy, *tok, *save = NULL;
    int rc = 0;
    if (!sel || !*sel)
        return 0;
    copy = strdup(sel);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strstr(tok, " in ") || strstr(tok, " notin ") || strchr(tok, '(')) {
            snprintf(err, errlen,
                     "unable to parse requirement: set-based selectors are not "
                     "supported by kle-apiserver: %s",
                     tok);
            rc = -1;
            break;
        }
        if (!labels && !strchr(tok, '=')) {
            snprintf(err, errlen, "invalid selector: '%s'; can't understand '%s'", sel, tok);
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

static void trim(char *s)
{
    size_t n = strlen(s);
    char *p = s;
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    while (isspace((unsigned char)*p))
        p++;
    memmove(s, p, strlen(p) + 1);
}

int kle_apiserver__selector_match(json_object *obj, const char *sel, int labels)
{
    char *copy, *tok, *save = NULL;
    int ok = 1;
    json_object *lbls = NULL;

    if (!sel || !*sel)
        return 1;
    if (labels) {
        json_object *meta = NULL;
        json_object_object_get_ex(obj, "metadata", &meta);
        if (meta)
            json_object_object_get_ex(meta, "labels", &lbls);
    }
    copy = strdup(sel);
    for (tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        char *op = strstr(tok, "!=");
        int neg = 0, exists_only = 0;
        char key[256], want[256], have[1024];
        int present = 0;

        if (op) {
            neg = 1;
            *op = '\0';
            snprintf(want, sizeof(want), "%s", op + 2);
        } else if ((op = strstr(tok, "=="))) {
            *op = '\0';
            snprintf(want, sizeof(want), "%s", op + 2);
        } else if ((op = strchr(tok, '='))) {
            *op = '\0';
            snprintf(want, sizeof(want), "%s", op + 1);
        } else {
            exists_only = 1;
            want[0] = '\0';
        }
        snprintf(key, sizeof(key), "%s", tok);
        trim(key);
        trim(want);
        if (exists_only && key[0] == '!') {
            neg = 1;
            memmove(key, key + 1, strlen(key));
            trim(key);
        }
        if (labels) {
            json_object *v;
            have[0] = '\0';
            if (lbls && json_object_object_get_ex(lbls, key, &v)) {
                present = 1;
                snprintf(have, sizeof(have), "%s", json_object_get_string(v));
            }
            if (exists_only)
                ok = neg ? !present : present;
            else if (neg)
                ok = !present || strcmp(have, want) != 0;
            else
                ok = present && strcmp(have, want) == 0;
        } else {
            path_value(obj, key, have, sizeof(have));
            ok = neg ? strcmp(have, want) != 0 : strcmp(have, want) == 0;
        }
    }
    free(copy);
    return ok;
}

/* ---- patches ---- */

void kle_apiserver__merge_patch(json_object *target, json_object *patch, int strategic)
{
    json_object_object_foreach(patch, key, pv)
    {
        json_object *tv;
        if (strategic && key[0] == '$')
            continue;
        if (json_object_is_type(pv, json_type_null)) {
            json_object_object_del(target, key);
        } else if (json_object_is_type(pv, json_type_object)) {
            if (!json_object_object_get_ex(target, key, &tv) ||
                !json_object_is_type(tv, json_type_object)) {
                tv = json_object_new_object();
                json_object_object_add(target, key, tv);
            }
            kle_apiserver__merge_patch(tv, pv, strategic);
        } else {
            json_object *copy = NULL;
            json_object_deep_copy(pv, &copy, NULL);
            json_object_object_add(target, key, copy);
        }
    }
}

/* ---- events.k8s.io/v1 <-> core/v1 Event ---- */

/* Field names: core/v1 first, events.k8s.io/v1 second. */
static const char *const event_fields[][2] = {
    {"involvedObject", "regarding"},
    {"message", "note"},
    {"reportingComponent", "reportingController"},
    {"source", "deprecatedSource"},
    {"firstTimestamp", "deprecatedFirstTimestamp"},
    {"lastTimestamp", "deprecatedLastTimestamp"},
    {"count", "deprecatedCount"},
};

json_object *kle_apiserver__event_convert(json_object *src, int to_core)
{
    json_object *out = json_object_new_object();
    json_object_object_add(out, "kind", json_object_new_string("Event"));
    json_object_object_add(out, "apiVersion",
                           json_object_new_string(to_core ? "v1" : "events.k8s.io/v1"));
    json_object_object_foreach(src, key, val)
    {
        const char *name = key;
        json_object *copy = NULL;
        if (strcmp(key, "kind") == 0 || strcmp(key, "apiVersion") == 0)
            continue;
        for (size_t i = 0; i < sizeof(event_fields) / sizeof(event_fields[0]); i++) {
            if (strcmp(key, event_fields[i][to_core ? 1 : 0]) == 0) {
                name = event_fields[i][to_core ? 0 : 1];
                break;
            }
            if (strcmp(key, event_fields[i][to_core ? 0 : 1]) == 0) {
                name = NULL; /* Already in the target's naming: a stray field; drop it. */
                break;
            }
        }
        if (!name)
            continue;
        json_object_deep_copy(val, &copy, NULL);
        json_object_object_add(out, name, copy);
    }
    return out;
}
