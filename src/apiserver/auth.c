/* Authentication (static bearer tokens) and authorization (RBAC-like rules
 * from --authz-file). Both tables are written once at start, then only read. */
#include "apiserver/apiserver.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct token {
    char *token;
    kle_apiserver__user user;
} token;

static token *tokens;
static size_t ntokens;
static json_object *rules; /* NULL: every authenticated user may do everything. */

void kle_apiserver__auth_add_token(const char *tok, const char *user, const char *uid,
                                   const char *groups)
{
    token *nt = realloc(tokens, (ntokens + 1) * sizeof(*nt));
    if (!nt)
        abort();
    tokens = nt;
    memset(&tokens[ntokens], 0, sizeof(tokens[ntokens]));
    tokens[ntokens].token = strdup(tok);
    snprintf(tokens[ntokens].user.name, sizeof(tokens[ntokens].user.name), "%s", user);
    snprintf(tokens[ntokens].user.uid, sizeof(tokens[ntokens].user.uid), "%s", uid);
    snprintf(tokens[ntokens].user.groups, sizeof(tokens[ntokens].user.groups), "%s", groups);
    ntokens++;
}

/* Splits one CSV line into at most max fields (double quotes group commas). */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *out = p;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"')
                    p++;
                *out++ = *p++;
            }
            if (*p != '"')
                return -1;
            p++;
            if (*p && *p != ',')
                return -1;
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        if (*p == ',') {
            *out = '\0';
            p++;
            continue;
        }
        *out = '\0';
        break;
    }
    return n;
}

int kle_apiserver__auth_load_tokens(const char *path, char *err, size_t errlen)
{
    char *text = kle_apiserver__read_file(path, 16u << 20, err, errlen);
    char *line, *save = NULL;
    int lineno = 0, count = 0;

    if (!text)
        return -1;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[5];
        int n;
        size_t len = strlen(line);
        lineno++;
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        n = csv_split(line, f, 5);
        if (n < 3 || !f[0][0] || !f[1][0]) {
            snprintf(err, errlen, "--token-file %s:%d: expected token,user,uid[,\"group1,group2\"]",
                     path, lineno);
            free(text);
            return -1;
        }
        kle_apiserver__auth_add_token(f[0], f[1], f[2], n > 3 ? f[3] : "");
        count++;
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    if (count == 0) {
        snprintf(err, errlen, "--token-file %s: no tokens", path);
        return -1;
    }
    return 0;
}

int kle_apiserver__auth_token(const char *tok, kle_apiserver__user *u)
{
    size_t tl = strlen(tok);
    for (size_t i = 0; i < ntokens; i++) {
        if (strlen(tokens[i].token) == tl && CRYPTO_memcmp(tokens[i].token, tok, tl) == 0) {
            *u = tokens[i].user;
            return 1;
        }
    }
    return 0;
}

static int in_groups(const char *groups, const char *g)
{
    size_t gl = strlen(g);
    const char *p = groups;
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

/* A missing list matches anything when optional; "*" matches anything. */
static int list_has(json_object *rule, const char *field, const char *value, int optional)
{
    json_object *arr;
    if (!json_object_object_get_ex(rule, field, &arr))
        return optional;
    if (json_object_array_length(arr) == 0)
        return optional;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        if (strcmp(s, "*") == 0 || (value && strcmp(s, value) == 0))
            return 1;
    }
    return 0;
}

static int subject_matches(json_object *rule, const kle_apiserver__user *u)
{
    json_object *arr;
    if (!json_object_object_get_ex(rule, "subjects", &arr))
        return 0;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(arr, i));
        if (strcmp(s, "*") == 0)
            return 1;
        if (strncmp(s, "group:", 6) == 0) {
            if (in_groups(u->groups, s + 6))
                return 1;
        } else if (strncmp(s, "user:", 5) == 0) {
            if (strcmp(u->name, s + 5) == 0)
                return 1;
        } else if (strcmp(u->name, s) == 0) {
            return 1;
        }
    }
    return 0;
}

int kle_apiserver__authz_allowed(const kle_apiserver__user *u, const char *verb, const char *group,
                                 const char *resource, const char *ns, const char *name)
{
    json_object *arr;
    if (!rules || in_groups(u->groups, "system:masters"))
        return 1;
    json_object_object_get_ex(rules, "rules", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *r = json_object_array_get_idx(arr, i);
        if (subject_matches(r, u) && list_has(r, "verbs", verb, 0) &&
            list_has(r, "apiGroups", group, 0) && list_has(r, "resources", resource, 0) &&
            list_has(r, "resourceNames", name && *name ? name : NULL, 1) &&
            list_has(r, "namespaces", ns && *ns ? ns : NULL, 1))
            return 1;
    }
    return 0;
}

static int check_strings(json_object *r, const char *field, int required, const char *path,
                         size_t idx, char *err, size_t errlen)
{
    json_object *arr;
    if (!json_object_object_get_ex(r, field, &arr)) {
        if (!required)
            return 0;
        snprintf(err, errlen, "--authz-file %s: rules[%zu].%s is required", path, idx, field);
        return -1;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "--authz-file %s: rules[%zu].%s must be a list of strings", path, idx,
                 field);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        if (!json_object_is_type(json_object_array_get_idx(arr, i), json_type_string)) {
            snprintf(err, errlen, "--authz-file %s: rules[%zu].%s[%zu] must be a string", path, idx,
                     field, i);
            return -1;
        }
    }
    return 0;
}

int kle_apiserver__authz_load(const char *path, char *err, size_t errlen)
{
    char *text = kle_apiserver__read_file(path, 16u << 20, err, errlen);
    enum json_tokener_error jerr;
    json_object *root, *arr;
    static const char *const fields[] = {"subjects", "verbs", "apiGroups", "resources"};

    if (!text)
        return -1;
    root = json_tokener_parse_verbose(text, &jerr);
    free(text);
    if (!root) {
        snprintf(err, errlen, "--authz-file %s: invalid JSON: %s", path,
                 json_tokener_error_desc(jerr));
        return -1;
    }
    if (!json_object_object_get_ex(root, "rules", &arr) ||
        !json_object_is_type(arr, json_type_array)) {
        snprintf(err, errlen, "--authz-file %s: expected {\"rules\": [...]}", path);
        json_object_put(root);
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *r = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(r, json_type_object)) {
            snprintf(err, errlen, "--authz-file %s: rules[%zu] must be an object", path, i);
            json_object_put(root);
            return -1;
        }
        for (size_t f = 0; f < 4; f++)
            if (check_strings(r, fields[f], 1, path, i, err, errlen) != 0) {
                json_object_put(root);
                return -1;
            }
        if (check_strings(r, "resourceNames", 0, path, i, err, errlen) != 0 ||
            check_strings(r, "namespaces", 0, path, i, err, errlen) != 0) {
            json_object_put(root);
            return -1;
        }
    }
    rules = root;
    return 0;
}

void kle_apiserver__auth_free(void)
{
    for (size_t i = 0; i < ntokens; i++) {
        OPENSSL_cleanse(tokens[i].token, strlen(tokens[i].token));
        free(tokens[i].token);
    }
    free(tokens);
    tokens = NULL;
    ntokens = 0;
    json_object_put(rules);
    rules = NULL;
}
