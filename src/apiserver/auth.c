/* Authentication: static bearer tokens (written once at start, then only
 * read) and service-account tokens from TokenRequest; the --authz-file
 * rules, which rbac.c installs as RBAC objects. */
#include "apiserver/apiserver.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct token {
    char *token;
    kle_apiserver__user user;
} token;

static token *tokens;

static int sa_token_user(const char *tok, kle_apiserver__user *u);
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
    if (kle_apiserver__issued_token_user(tok, u))
        return 1;
    return sa_token_user(tok, u);
}

/* ---- service-account tokens (TokenRequest) ---- */

typedef struct sa_token {
    char token[80];
    char ns[256];
    char name[256];
    char uid[64];
    time_t expires;
} sa_token;

static pthread_mutex_t sa_mu = PTHREAD_MUTEX_INITIALIZER;
static sa_token *sa_tokens;
static size_t nsa_tokens;

int kle_apiserver__sa_token_issue(const char *ns, const char *name, const char *uid, time_t expires,
                                  char *out, size_t outlen)
{
    sa_token t, *nt;
    char hex[65];
    time_t now = time(NULL);
    memset(&t, 0, sizeof(t));
    kle_apiserver__random_hex(hex, 32);
    snprintf(t.token, sizeof(t.token), "kle-sa.%s", hex);
    snprintf(t.ns, sizeof(t.ns), "%s", ns);
    snprintf(t.name, sizeof(t.name), "%s", name);
    snprintf(t.uid, sizeof(t.uid), "%s", uid);
    t.expires = expires;
    pthread_mutex_lock(&sa_mu);
    /* Expired tokens are dropped as new ones come. */
    for (size_t i = 0; i < nsa_tokens;) {
        if (sa_tokens[i].expires <= now) {
            OPENSSL_cleanse(&sa_tokens[i], sizeof(sa_tokens[i]));
            sa_tokens[i] = sa_tokens[--nsa_tokens];
        } else {
            i++;
        }
    }
    nt = realloc(sa_tokens, (nsa_tokens + 1) * sizeof(*nt));
    if (!nt) {
        pthread_mutex_unlock(&sa_mu);
        return -1;
    }
    sa_tokens = nt;
    sa_tokens[nsa_tokens++] = t;
    pthread_mutex_unlock(&sa_mu);
    snprintf(out, outlen, "%s", t.token);
    OPENSSL_cleanse(&t, sizeof(t));
    return 0;
}

/* 1 and u filled when tok is a live token of a service account that still
 * exists (the same object: its uid). */
static int sa_token_user(const char *tok, kle_apiserver__user *u)
{
    size_t tl = strlen(tok);
    sa_token t;
    int found = 0, ok = 0;
    pthread_mutex_lock(&sa_mu);
    for (size_t i = 0; i < nsa_tokens; i++) {
        if (strlen(sa_tokens[i].token) == tl && CRYPTO_memcmp(sa_tokens[i].token, tok, tl) == 0) {
            t = sa_tokens[i];
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&sa_mu);
    if (!found || t.expires <= time(NULL))
        return 0;
    kle_apiserver__store_lock();
    {
        json_object *sa = kle_apiserver__store_get(KLE_RES_SERVICEACCOUNTS, t.ns, t.name), *meta,
                    *v;
        ok = sa && json_object_object_get_ex(sa, "metadata", &meta) &&
             json_object_object_get_ex(meta, "uid", &v) &&
             strcmp(json_object_get_string(v), t.uid) == 0;
    }
    kle_apiserver__store_unlock();
    if (!ok)
        return 0;
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "system:serviceaccount:%.100s:%.100s", t.ns, t.name);
    snprintf(u->uid, sizeof(u->uid), "%s", t.uid);
    snprintf(u->groups, sizeof(u->groups), "system:serviceaccounts,system:serviceaccounts:%.200s",
             t.ns);
    OPENSSL_cleanse(&t, sizeof(t));
    return 1;
}

json_object *kle_apiserver__authz_file_rules(void)
{
    return rules;
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
    pthread_mutex_lock(&sa_mu);
    if (sa_tokens)
        OPENSSL_cleanse(sa_tokens, nsa_tokens * sizeof(*sa_tokens));
    free(sa_tokens);
    sa_tokens = NULL;
    nsa_tokens = 0;
    pthread_mutex_unlock(&sa_mu);
}
