/* The authorizer: rbac.authorization.k8s.io/v1 Roles, ClusterRoles and
 * their bindings from the store, evaluated as kube-apiserver's RBAC
 * authorizer does. Without RBAC (no --authz-file and no
 * --authorization-mode=RBAC) every authenticated user may do everything. */
#include "apiserver/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kle_apiserver__rbac_enabled;

int kle_apiserver__user_in_group(const kle_apiserver__user *u, const char *g)
{
    size_t gl = strlen(g);
    const char *p = u->groups;
    if (strcmp(g, "system:authenticated") == 0)
        return 1;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l == gl && strncmp(p, g, l) == 0)
            return 1;
        if (!c)
            break;
        p = c + 1;
    }
    return 0;
}

static const char *str_field(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* 1 when the string list o[key] holds value or "*" (empty: when optional). */
static int has(json_object *o, const char *key, const char *value, int empty_matches)
{
    json_object *arr;
    size_t n;
    if (!json_object_object_get_ex(o, key, &arr) || !json_object_is_type(arr, json_type_array) ||
        (n = json_object_array_length(arr)) == 0)
        return empty_matches;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        if (s && (strcmp(s, "*") == 0 || (value && strcmp(s, value) == 0)))
            return 1;
    }
    return 0;
}

/* One PolicyRule against a request; resource is "plural" or "plural/sub". */
static int rule_allows(json_object *rule, const char *verb, const char *group, const char *resource,
                       const char *name)
{
    json_object *names;
    if (!has(rule, "verbs", verb, 0) || !has(rule, "apiGroups", group, 0) ||
        !has(rule, "resources", resource, 0))
        return 0;
    if (json_object_object_get_ex(rule, "resourceNames", &names) &&
        json_object_is_type(names, json_type_array) && json_object_array_length(names) > 0)
        return name && *name && has(rule, "resourceNames", name, 0);
    return 1;
}

static int role_allows(json_object *role, const char *verb, const char *group, const char *resource,
                       const char *name)
{
    json_object *rules;
    if (!role || !json_object_object_get_ex(role, "rules", &rules) ||
        !json_object_is_type(rules, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(rules); i++)
        if (rule_allows(json_object_array_get_idx(rules, i), verb, group, resource, name))
            return 1;
    return 0;
}

/* 1 when one of the binding's subjects is u. */

static int binds(json_object *binding, const kle_apiserver__user *u)
{
    json_object *subjects;
    const char *bns = kle_apiserver__meta_str(binding, "namespace");
    if (!json_object_object_get_ex(binding, "subjects", &subjects) ||
        !json_object_is_type(subjects, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(subjects); i++) {
        json_object *s = json_object_array_get_idx(subjects, i);
        const char *kind = str_field(s, "kind"), *name = str_field(s, "name");
        if (!kind || !name)
            continue;
        if (strcmp(kind, "User") == 0 && strcmp(name, u->name) == 0)
            return 1;
        if (strcmp(kind, "Group") == 0 && kle_apiserver__user_in_group(u, name))
            return 1;
        if (strcmp(kind, "ServiceAccount") == 0) {
            const char *ns = str_field(s, "namespace");
            char want[600];
            snprintf(want, sizeof(want), "system:serviceaccount:%s:%s",
                     ns && *ns ? ns
                     : bns     ? bns
                               : "",
                     name);
            if (strcmp(want, u->name) == 0)
                return 1;
        }
    }
    return 0;
}

/* The role a binding refers to (borrowed), or NULL. Lock held. */
static json_object *role_of(json_object *binding, const char *ns)
{
    json_object *ref;
    const char *kind, *name;
    if (!json_object_object_get_ex(binding, "roleRef", &ref))
        return NULL;
    kind = str_field(ref, "kind");
    name = str_field(ref, "name");
    if (!kind || !name)
        return NULL;
    if (strcmp(kind, "ClusterRole") == 0)
        return kle_apiserver__store_get(KLE_RES_CLUSTERROLES, "", name);
    if (strcmp(kind, "Role") == 0 && ns)
        return kle_apiserver__store_get(KLE_RES_ROLES, ns, name);
    return NULL;
}

typedef struct walk {
    const kle_apiserver__user *u;
    const char *ns; /* The bindings' namespace; NULL for cluster bindings. */
    /* Either a request to decide... */
    const char *verb, *group, *resource, *name;
    int allowed;
    /* ...or the rules to collect (SelfSubjectRulesReview). */
    json_object *rules;
} walk;

static void visit(json_object *binding, void *arg)
{
    walk *w = arg;
    json_object *role;
    if (w->allowed || !binds(binding, w->u))
        return;
    role = role_of(binding, w->ns);
    if (w->rules) {
        json_object *rules;
        if (role && json_object_object_get_ex(role, "rules", &rules) &&
            json_object_is_type(rules, json_type_array))
            for (size_t i = 0; i < json_object_array_length(rules); i++)
                json_object_array_add(w->rules,
                                      json_object_get(json_object_array_get_idx(rules, i)));
        return;
    }
    if (role_allows(role, w->verb, w->group, w->resource, w->name))
        w->allowed = 1;
}

int kle_apiserver__authz_allowed(const kle_apiserver__user *u, const char *verb, const char *group,
                                 const char *resource, const char *ns, const char *name)
{
    walk w;
    if (!kle_apiserver__rbac_enabled || kle_apiserver__user_in_group(u, "system:masters"))
        return 1;
    memset(&w, 0, sizeof(w));
    w.u = u;
    w.verb = verb;
    w.group = group;
    w.resource = resource;
    w.name = name;
    kle_apiserver__store_lock();
    kle_apiserver__store_each(KLE_RES_CLUSTERROLEBINDINGS, NULL, visit, &w);
    if (!w.allowed && ns && *ns) {
        w.ns = ns;
        kle_apiserver__store_each(KLE_RES_ROLEBINDINGS, ns, visit, &w);
    }
    kle_apiserver__store_unlock();
    return w.allowed;
}

static json_object *strings(const char *const *v)
{
    return kle_apiserver__str_array(v);
}

json_object *kle_apiserver__rbac_rules(const kle_apiserver__user *u, const char *ns)
{
    walk w;
    json_object *rules = json_object_new_array(), *r;
    static const char *const create[] = {"create", NULL},
                             *const authz[] = {"authorization.k8s.io", NULL},
                             *const reviews[] = {"selfsubjectaccessreviews",
                                                 "selfsubjectrulesreviews", NULL},
                             *const any[] = {"*", NULL};

    if (!kle_apiserver__rbac_enabled || kle_apiserver__user_in_group(u, "system:masters")) {
        r = json_object_new_object();
        json_object_object_add(r, "verbs", strings(any));
        json_object_object_add(r, "apiGroups", strings(any));
        json_object_object_add(r, "resources", strings(any));
        json_object_array_add(rules, r);
    }
    /* What every authenticated user may do (kube's system:basic-user). */
    r = json_object_new_object();
    json_object_object_add(r, "verbs", strings(create));
    json_object_object_add(r, "apiGroups", strings(authz));
    json_object_object_add(r, "resources", strings(reviews));
    json_object_array_add(rules, r);
    if (!kle_apiserver__rbac_enabled)
        return rules;
    memset(&w, 0, sizeof(w));
    w.u = u;
    w.rules = rules;
    kle_apiserver__store_lock();
    kle_apiserver__store_each(KLE_RES_CLUSTERROLEBINDINGS, NULL, visit, &w);
    if (ns && *ns) {
        w.ns = ns;
        kle_apiserver__store_each(KLE_RES_ROLEBINDINGS, ns, visit, &w);
    }
    kle_apiserver__store_unlock();
    return rules;
}

/* ---- --authz-file rules as RBAC objects ---- */

static json_object *new_obj(const char *kind, const char *name, const char *ns)
{
    json_object *o = json_object_new_object(), *meta = json_object_new_object();
    char uid[40], ts[40];
    json_object_object_add(o, "kind", json_object_new_string(kind));
    json_object_object_add(o, "apiVersion", json_object_new_string("rbac.authorization.k8s.io/v1"));
    json_object_object_add(meta, "name", json_object_new_string(name));
    if (ns)
        json_object_object_add(meta, "namespace", json_object_new_string(ns));
    kle_apiserver__new_uid(uid);
    json_object_object_add(meta, "uid", json_object_new_string(uid));
    kle_apiserver__timestamp(ts, sizeof(ts));
    json_object_object_add(meta, "creationTimestamp", json_object_new_string(ts));
    json_object_object_add(o, "metadata", meta);
    return o;
}

static json_object *subjects_of(json_object *rule)
{
    json_object *out = json_object_new_array(), *arr;
    json_object_object_get_ex(rule, "subjects", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        json_object *subj = json_object_new_object();
        const char *kind = "User", *name = s;
        if (strcmp(s, "*") == 0) {
            kind = "Group";
            name = "system:authenticated";
        } else if (strncmp(s, "group:", 6) == 0) {
            kind = "Group";
            name = s + 6;
        } else if (strncmp(s, "user:", 5) == 0) {
            name = s + 5;
        }
        json_object_object_add(subj, "kind", json_object_new_string(kind));
        json_object_object_add(subj, "apiGroup",
                               json_object_new_string("rbac.authorization.k8s.io"));
        json_object_object_add(subj, "name", json_object_new_string(name));
        json_object_array_add(out, subj);
    }
    return out;
}

/* The binding of ClusterRole @p name to the subjects of authorization-file
 * rule @p fr: a RoleBinding in @p ns, or a ClusterRoleBinding (NULL). */
static int put_binding(json_object *fr, const char *name, const char *ns)
{
    json_object *b = new_obj(ns ? "RoleBinding" : "ClusterRoleBinding", name, ns),
                *ref = json_object_new_object();
    json_object_object_add(b, "subjects", subjects_of(fr));
    json_object_object_add(ref, "apiGroup", json_object_new_string("rbac.authorization.k8s.io"));
    json_object_object_add(ref, "kind", json_object_new_string("ClusterRole"));
    json_object_object_add(ref, "name", json_object_new_string(name));
    json_object_object_add(b, "roleRef", ref);
    return kle_apiserver__store_put(ns ? KLE_RES_ROLEBINDINGS : KLE_RES_CLUSTERROLEBINDINGS,
                                    ns ? ns : "", name, b, KLE_EV_ADDED);
}

int kle_apiserver__authz_install(json_object *file_rules)
{
    json_object *arr;
    if (!file_rules)
        return 0;
    kle_apiserver__rbac_enabled = 1;
    if (!json_object_object_get_ex(file_rules, "rules", &arr))
        return 0;
    kle_apiserver__store_lock();
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *fr = json_object_array_get_idx(arr, i), *role, *rules, *rule, *v, *nss;
        char name[64];
        static const char *const keys[] = {"verbs", "apiGroups", "resources", "resourceNames"};
        snprintf(name, sizeof(name), "kle:authz-file:%zu", i);
        role = new_obj("ClusterRole", name, NULL);
        rule = json_object_new_object();
        for (size_t k = 0; k < 4; k++)
            if (json_object_object_get_ex(fr, keys[k], &v))
                json_object_object_add(rule, keys[k], json_object_get(v));
        rules = json_object_new_array();
        json_object_array_add(rules, rule);
        json_object_object_add(role, "rules", rules);
        if (kle_apiserver__store_put(KLE_RES_CLUSTERROLES, "", name, role, KLE_EV_ADDED) != 0) {
            kle_apiserver__store_unlock();
            return -1;
        }
        if (json_object_object_get_ex(fr, "namespaces", &nss) &&
            json_object_array_length(nss) > 0 && !has(fr, "namespaces", NULL, 0)) {
            for (size_t n = 0; n < json_object_array_length(nss); n++) {
                const char *ns = json_object_get_string(json_object_array_get_idx(nss, n));
                if (put_binding(fr, name, ns) != 0) {
                    kle_apiserver__store_unlock();
                    return -1;
                }
            }
        } else if (put_binding(fr, name, NULL) != 0) {
            kle_apiserver__store_unlock();
            return -1;
        }
    }
    kle_apiserver__store_unlock();
    return 0;
}
