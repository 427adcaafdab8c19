/* kubeconfig loading (the rules of client-go's clientcmd) and in-cluster
 * configuration. */
#include "kube/kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "kle/sys/errors.h"

#define KUBECONFIG_MAX_BYTES (16u << 20)
#define CRED_FILE_MAX_BYTES  (1u << 20)
#define YAML_MAX_DEPTH       64
#define YAML_MAX_NODES       200000

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ---- YAML to json-c ---------------------------------------------------- */

/*
 * The document is converted from libyaml's event stream, not from a loaded
 * document: the depth limit stops the parser at the first event past it
 * (libyaml's scanner costs time quadratic in the nesting of flow
 * collections, so a file of brackets must be refused as it is read), and
 * the node limit counts alias expansions as the nodes they copy.
 */

struct anchor {
    char *name;
    json_object *value; /* the node (NULL: a null scalar or still open) */
    char *scalar;       /* a scalar's text, for use as a mapping key; else NULL */
    size_t nodes;       /* nodes it holds, itself included */
    int height;         /* levels of nesting below it */
    int complete;       /* 0 while its collection is still open */
};

struct frame {
    json_object *container;
    int is_map;
    char *key;       /* a mapping's pending key */
    size_t anchor;   /* index + 1 into anchors, 0: none */
    size_t nodes_at; /* nodes counted when it opened */
    int height;      /* of its deepest child so far */
};

struct conv {
    const char *file;
    struct frame stack[YAML_MAX_DEPTH + 1];
    int depth;
    struct anchor *anchors;
    size_t nanchors, cap;
    size_t nodes;
    json_object *root;
    int have_root;
};

static int is_null_scalar(const yaml_event_t *ev)
{
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static int conv_error(struct conv *c, const yaml_event_t *ev, const char *fmt, ...)
    KLE_PRINTF(3, 4);

static int conv_error(struct conv *c, const yaml_event_t *ev, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: line %zu column %zu: %s", c->file,
                         ev->start_mark.line + 1, ev->start_mark.column + 1, what);
}

static int count_nodes(struct conv *c, const yaml_event_t *ev, size_t n)
{
    if (n > YAML_MAX_NODES || c->nodes > YAML_MAX_NODES - n)
        return conv_error(c, ev, "more than %d nodes (alias expansion?)", YAML_MAX_NODES);
    c->nodes += n;
    return 0;
}

/* Registers an anchor (complete or not); returns its index + 1, or 0 when none. */
static int add_anchor(struct conv *c, const yaml_char_t *name, size_t *out)
{
    *out = 0;
    if (!name)
        return 0;
    if (c->nanchors == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 8;
        struct anchor *a = realloc(c->anchors, cap * sizeof(*a));
        if (!a)
            return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
        c->anchors = a;
        c->cap = cap;
    }
    struct anchor *a = &c->anchors[c->nanchors];
    memset(a, 0, sizeof(*a));
    if (!(a->name = strdup((const char *)name)))
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    *out = ++c->nanchors;
    return 0;
}

/* The latest anchor of that name (YAML lets a name be defined again), or NULL. */
static struct anchor *find_anchor(struct conv *c, const yaml_char_t *name)
{
    for (size_t i = c->nanchors; i > 0; i--)
        if (strcmp(c->anchors[i - 1].name, (const char *)name) == 0)
            return &c->anchors[i - 1];
    return NULL;
}

/* Puts a finished node (taking @p v) where the open collection wants it. */
static int place(struct conv *c, const yaml_event_t *ev, json_object *v, int height)
{
    if (c->depth == 0) {
        c->root = v;
        c->have_root = 1;
        return 0;
    }
    struct frame *f = &c->stack[c->depth - 1];
    if (height + 1 > f->height)
        f->height = height + 1;
    if (!f->is_map) {
        if (json_object_array_add(f->container, v) != 0) {
            json_object_put(v);
            return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
        }
        return 0;
    }
    if (!f->key) {
        json_object_put(v);
        return conv_error(c, ev, "a mapping key is not a string");
    }
    int rc = json_object_object_add(f->container, f->key, v);
    free(f->key);
    f->key = NULL;
    if (rc != 0) {
        json_object_put(v);
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    }
    return 0;
}

/* A scalar's text as a mapping key, when the open collection waits for one. */
static int take_key(struct conv *c, const yaml_event_t *ev, const char *text, size_t len,
                    int *taken)
{
    *taken = 0;
    if (c->depth == 0)
        return 0;
    struct frame *f = &c->stack[c->depth - 1];
    if (!f->is_map || f->key)
        return 0;
    if (memchr(text, '\0', len))
        return conv_error(c, ev, "a key contains a NUL character");
    if (!(f->key = strndup(text, len)))
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    *taken = 1;
    return 0;
}

static int on_scalar(struct conv *c, const yaml_event_t *ev)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    int taken, rc;
    size_t ai;
    if ((rc = add_anchor(c, ev->data.scalar.anchor, &ai)) < 0)
        return rc;
    if (ai) {
        struct anchor *a = &c->anchors[ai - 1];
        if (!(a->scalar = strndup(text, len)))
            return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
        a->nodes = 1;
        a->complete = 1;
    }
    if ((rc = take_key(c, ev, text, len, &taken)) < 0 || taken)
        return rc;
    if ((rc = count_nodes(c, ev, 1)) < 0)
        return rc;
    json_object *v = NULL;
    if (!is_null_scalar(ev)) {
        if (memchr(text, '\0', len))
            return conv_error(c, ev, "a value contains a NUL character");
        if (!(v = json_object_new_string_len(text, (int)len)))
            return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    }
    if (ai && v)
        c->anchors[ai - 1].value = json_object_get(v);
    return place(c, ev, v, 0);
}

static int on_alias(struct conv *c, const yaml_event_t *ev)
{
    struct anchor *a = find_anchor(c, ev->data.alias.anchor);
    int taken, rc;
    if (!a)
        return conv_error(c, ev, "alias *%.64s names no anchor defined before it",
                          (const char *)ev->data.alias.anchor);
    if (!a->complete)
        return conv_error(c, ev, "alias *%.64s is inside the node it names (a recursive alias)",
                          a->name);
    if (a->scalar && (rc = take_key(c, ev, a->scalar, strlen(a->scalar), &taken)) < 0)
        return rc;
    if (a->scalar && taken)
        return 0;
    if (c->depth + a->height > YAML_MAX_DEPTH)
        return conv_error(c, ev, "nested more than %d levels deep (through alias *%.64s)",
                          YAML_MAX_DEPTH, a->name);
    if ((rc = count_nodes(c, ev, a->nodes)) < 0)
        return rc;
    json_object *v = NULL;
    if (a->value && json_object_deep_copy(a->value, &v, NULL) != 0)
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    return place(c, ev, v, a->height);
}

static int on_start(struct conv *c, const yaml_event_t *ev, int is_map)
{
    int rc;
    if (c->depth >= YAML_MAX_DEPTH)
        return conv_error(c, ev, "nested more than %d levels deep", YAML_MAX_DEPTH);
    if (c->depth > 0) {
        struct frame *p = &c->stack[c->depth - 1];
        if (p->is_map && !p->key)
            return conv_error(c, ev, "a mapping key is not a string");
    }
    if ((rc = count_nodes(c, ev, 1)) < 0)
        return rc;
    struct frame *f = &c->stack[c->depth];
    memset(f, 0, sizeof(*f));
    f->is_map = is_map;
    f->nodes_at = c->nodes - 1;
    f->container = is_map ? json_object_new_object() : json_object_new_array();
    if (!f->container)
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", c->file);
    c->depth++;
    const yaml_char_t *anchor =
        is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    return add_anchor(c, anchor, &f->anchor);
}

static int on_end(struct conv *c, const yaml_event_t *ev)
{
    struct frame *f = &c->stack[--c->depth];
    json_object *v = f->container;
    f->container = NULL;
    free(f->key);
    f->key = NULL;
    if (f->anchor) {
        struct anchor *a = &c->anchors[f->anchor - 1];
        a->value = json_object_get(v);
        a->nodes = c->nodes - f->nodes_at;
        a->height = f->height;
        a->complete = 1;
    }
    return place(c, ev, v, f->height);
}

static void conv_free(struct conv *c)
{
    while (c->depth > 0) {
        struct frame *f = &c->stack[--c->depth];
        json_object_put(f->container);
        free(f->key);
    }
    for (size_t i = 0; i < c->nanchors; i++) {
        free(c->anchors[i].name);
        free(c->anchors[i].scalar);
        json_object_put(c->anchors[i].value);
    }
    free(c->anchors);
}

/* Parses YAML text (its first document) into json-c; on error records
 * KLE_EKUBECONFIG naming the file and the line. An empty document gives
 * *out == NULL. */
static int parse_yaml(json_object **out, const char *file, const char *text, size_t len)
{
    yaml_parser_t parser;
    struct conv c;
    int rc = 0, done = 0;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.file = file;
    if (!yaml_parser_initialize(&parser))
        return kle_error_set(KLE_ENOMEM, "kubeconfig %s: out of memory", file);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!done && rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: line %zu column %zu: %s%s%s", file,
                               parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "invalid YAML",
                               parser.context ? " " : "", parser.context ? parser.context : "");
            break;
        }
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            rc = on_scalar(&c, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(&c, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(&c, &ev, 0);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(&c, &ev, 1);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            rc = on_end(&c, &ev);
            break;
        case YAML_DOCUMENT_END_EVENT: /* Only the first document counts. */
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    if (rc == 0)
        *out = c.root;
    else
        json_object_put(c.root);
    conv_free(&c);
    return rc;
}

/* ---- loaded files and merged entries ----------------------------------- */

struct kfile {
    char *path;
    char *dir;
    json_object *root;
};

struct entry {
    const char *name;
    json_object *body; /* the "cluster"/"user"/"context" mapping, may be NULL */
    const struct kfile *file;
};

struct entries {
    struct entry *v;
    size_t n, cap;
};

struct loader {
    struct kfile *files;
    size_t nfiles;
    struct entries clusters, users, contexts;
    const char *current_context;
    const struct kfile *current_context_file;
    char *all_paths; /* "a:b" for messages about the merged whole */
};

static const struct entry *entries_find(const struct entries *es, const char *name)
{
    for (size_t i = 0; i < es->n; i++)
        if (strcmp(es->v[i].name, name) == 0)
            return &es->v[i];
    return NULL;
}

static int entries_add(struct entries *es, const char *name, json_object *body,
                       const struct kfile *f)
{
    if (entries_find(es, name))
        return 0; /* The first file to define a name wins. */
    if (es->n == es->cap) {
        size_t cap = es->cap ? es->cap * 2 : 8;
        struct entry *v = realloc(es->v, cap * sizeof(*v));
        if (!v)
            return kle_error_set(KLE_ENOMEM, "out of memory");
        es->v = v;
        es->cap = cap;
    }
    es->v[es->n++] = (struct entry){name, body, f};
    return 0;
}

static const char *str_field(json_object *obj, const char *key)
{
    json_object *v;
    if (!obj || !json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v) || !v)
        return NULL;
    return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static int load_list(struct loader *l, const struct kfile *f, const char *list, const char *item,
                     struct entries *es)
{
    json_object *arr;
    if (!json_object_object_get_ex(f->root, list, &arr) || !arr)
        return 0;
    if (!json_object_is_type(arr, json_type_array))
        return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: %s must be a list", f->path, list);
    size_t n = json_object_array_length(arr);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        if (!e || !json_object_is_type(e, json_type_object))
            return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: %s[%zu] must be a mapping",
                                 f->path, list, i);
        const char *name = str_field(e, "name");
        if (!name || !*name)
            return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: %s[%zu] has no name", f->path,
                                 list, i);
        json_object *body = NULL;
        if (json_object_object_get_ex(e, item, &body) && body &&
            !json_object_is_type(body, json_type_object))
            return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: %s \"%s\": %s must be a mapping",
                                 f->path, item, name, item);
        int rc = entries_add(es, name, body, f);
        if (rc)
            return rc;
    }
    return 0;
}

static int load_file(struct loader *l, const char *path, int missing_ok)
{
    kle_buf text = {0};
    int e = kle_kube__read_file(&text, path, KUBECONFIG_MAX_BYTES);
    if (e == -ENOENT && missing_ok)
        return 0;
    if (e == -EFBIG)
        return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: larger than %u bytes", path,
                             KUBECONFIG_MAX_BYTES);
    if (e)
        return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: cannot read: %s", path, strerror(-e));
    json_object *root = NULL;
    int rc = parse_yaml(&root, path, text.data, text.len);
    kle_buf__wipe(&text);
    if (rc)
        return rc;
    if (root && !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return kle_error_set(KLE_EKUBECONFIG,
                             "kubeconfig %s: not a kubeconfig: the document is not a mapping",
                             path);
    }
    struct kfile *files = realloc(l->files, (l->nfiles + 1) * sizeof(*files));
    if (!files) {
        json_object_put(root);
        return kle_error_set(KLE_ENOMEM, "out of memory");
    }
    l->files = files;
    struct kfile *f = &l->files[l->nfiles];
    f->path = strdup(path);
    const char *slash = strrchr(path, '/');
    f->dir = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : strdup(".");
    f->root = root;
    l->nfiles++;
    if (!f->path || !f->dir)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    return 0;
}

static int merge_files(struct loader *l)
{
    /* Entries point into files[], so merge after every file is loaded. */
    for (size_t i = 0; i < l->nfiles; i++) {
        const struct kfile *f = &l->files[i];
        if (!f->root)
            continue;
        int rc;
        if ((rc = load_list(l, f, "clusters", "cluster", &l->clusters)) ||
            (rc = load_list(l, f, "users", "user", &l->users)) ||
            (rc = load_list(l, f, "contexts", "context", &l->contexts)))
            return rc;
        json_object *cc;
        if (!l->current_context && json_object_object_get_ex(f->root, "current-context", &cc) &&
            cc) {
            if (!json_object_is_type(cc, json_type_string))
                return kle_error_set(KLE_EKUBECONFIG,
                                     "kubeconfig %s: current-context must be a string", f->path);
            if (*json_object_get_string(cc)) {
                l->current_context = json_object_get_string(cc);
                l->current_context_file = f;
            }
        }
    }
    return 0;
}

static void loader_free(struct loader *l)
{
    for (size_t i = 0; i < l->nfiles; i++) {
        free(l->files[i].path);
        free(l->files[i].dir);
        json_object_put(l->files[i].root);
    }
    free(l->files);
    free(l->clusters.v);
    free(l->users.v);
    free(l->contexts.v);
    free(l->all_paths);
}

/* ---- resolving one context --------------------------------------------- */

struct where {
    const char *file;
    const char *kind; /* "cluster", "user", "context" */
    const char *name;
};

static int cfg_error(const struct where *w, int code, const char *fmt, ...) KLE_PRINTF(3, 4);

static int cfg_error(const struct where *w, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kle_error_set(code, "kubeconfig %s: %s \"%s\": %s", w->file, w->kind, w->name, msg);
}

/* Reads an optional string field; a non-string value is an error. */
static int get_str(const struct where *w, json_object *body, const char *key, const char **out)
{
    json_object *v;
    *out = NULL;
    if (!body || !json_object_object_get_ex(body, key, &v) || !v)
        return 0;
    if (!json_object_is_type(v, json_type_string))
        return cfg_error(w, KLE_EKUBECONFIG, "%s must be a string", key);
    *out = json_object_get_string(v);
    if (!**out)
        *out = NULL;
    return 0;
}

static int get_bool(const struct where *w, json_object *body, const char *key, int *out)
{
    const char *s;
    int rc = get_str(w, body, key, &s);
    *out = 0;
    if (rc || !s)
        return rc;
    static const char *yes[] = {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"};
    static const char *no[] = {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return cfg_error(w, KLE_EKUBECONFIG, "%s must be true or false, not \"%s\"", key, s);
}

static char *resolve_path(const char *dir, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, p);
    return out;
}

/* Reads file-or-data credential fields: "<key>" (a path relative to the
 * file) or "<key>-data" (base64). */
static int get_blob(const struct where *w, const char *dir, json_object *body, const char *key,
                    kle_buf *out, int *present, char **file_out)
{
    char data_key[128];
    const char *path, *data;
    int rc;

    snprintf(data_key, sizeof(data_key), "%s-data", key);
    *present = 0;
    if ((rc = get_str(w, body, key, &path)) || (rc = get_str(w, body, data_key, &data)))
        return rc;
    if (data) {
        /* client-go: data takes precedence over the file. */
        if (kle_kube__base64_decode(out, data, strlen(data)) != 0)
            return cfg_error(w, KLE_EKUBECONFIG, "%s is not valid base64", data_key);
        *present = 1;
        return 0;
    }
    if (path) {
        char *full = resolve_path(dir, path);
        if (!full)
            return kle_error_set(KLE_ENOMEM, "out of memory");
        int e = kle_kube__read_file(out, full, CRED_FILE_MAX_BYTES);
        if (e) {
            rc = cfg_error(w, KLE_EKUBECONFIG, "%s %s: cannot read: %s", key, full,
                           e == -EFBIG ? "file is too large" : strerror(-e));
            free(full);
            return rc;
        }
        /* Kept so that the client re-reads the file when it changes. */
        free(*file_out);
        *file_out = full;
        *present = 1;
    }
    return 0;
}

static int check_pem(const struct where *w, const kle_buf *b, const char *field, int key)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    int ok = 0;
    if (!bio)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    if (key) {
        EVP_PKEY *pk = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        ok = pk != NULL;
        EVP_PKEY_free(pk);
    } else {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        ok = x != NULL;
        X509_free(x);
    }
    BIO_free(bio);
    if (!ok)
        return cfg_error(w, KLE_EKUBECONFIG, "%s does not contain a PEM %s", field,
                         key ? "private key" : "certificate");
    return 0;
}

/*
 * What is wrong with a server URL as libcurl, which will connect to it,
 * parses it (a port out of 1-65535, an unclosed or malformed IPv6 address in
 * brackets, no host, a host name it refuses), or NULL when nothing is.
 * Such a URL used to be retried for ever instead of refused at load.
 */
static const char *server_url_problem(const char *server)
{
    CURLU *u = curl_url();
    if (!u)
        return "out of memory";
    const char *why = NULL;
    char *port = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, server, 0);
    switch (uc) {
    case CURLUE_OK:
        if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK && port &&
            strtol(port, NULL, 10) == 0)
            why = "its port is 0; use a port from 1 to 65535";
        break;
    case CURLUE_BAD_PORT_NUMBER:
        why = "its port is not a number from 1 to 65535";
        break;
    case CURLUE_BAD_IPV6:
        why = "its IPv6 address is malformed or its bracket is not closed (write "
              "https://[fd00::1]:6443)";
        break;
    case CURLUE_NO_HOST:
        why = "it has no host";
        break;
    case CURLUE_BAD_HOSTNAME:
        why = "its host name contains characters a host name cannot have";
        break;
    default:
        why = curl_url_strerror(uc);
        break;
    }
    curl_free(port);
    curl_url_cleanup(u);
    return why;
}

static int resolve_cluster(kle_kube__config *cfg, const struct entry *e)
{
    struct where w = {e->file->path, "cluster", e->name};
    const char *server, *tsn, *proxy;
    int rc, present;

    if ((rc = get_str(&w, e->body, "server", &server)) ||
        (rc = get_str(&w, e->body, "tls-server-name", &tsn)) ||
        (rc = get_str(&w, e->body, "proxy-url", &proxy)) ||
        (rc = get_bool(&w, e->body, "insecure-skip-tls-verify", &cfg->insecure)))
        return rc;
    if (!server)
        return cfg_error(&w, KLE_EKUBECONFIG, "server is not set");
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return cfg_error(&w, KLE_EKUBECONFIG, "server \"%s\" is not an http:// or https:// URL",
                         server);
    const char *host = strstr(server, "://") + 3;
    if (!*host || *host == '/' || strpbrk(server, " \t\r\n?#"))
        return cfg_error(&w, KLE_EKUBECONFIG, "server \"%s\" is not a valid URL", server);
    const char *why = server_url_problem(server);
    if (why)
        return cfg_error(&w, KLE_EKUBECONFIG, "server \"%s\" is not a valid URL: %s", server, why);
    cfg->server = strdup(server);
    if (!cfg->server)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    size_t n = strlen(cfg->server);
    while (n > 0 && cfg->server[n - 1] == '/')
        cfg->server[--n] = '\0';
    if (tsn && !(cfg->tls_server_name = strdup(tsn)))
        return kle_error_set(KLE_ENOMEM, "out of memory");
    if (proxy) {
        if (!strstr(proxy, "://"))
            return cfg_error(&w, KLE_EKUBECONFIG,
                             "proxy-url \"%s\" has no scheme (http://, https://, socks5://)",
                             proxy);
        if (!(cfg->proxy_url = strdup(proxy)))
            return kle_error_set(KLE_ENOMEM, "out of memory");
    }
    if ((rc = get_blob(&w, e->file->dir, e->body, "certificate-authority", &cfg->ca, &present,
                       &cfg->ca_file)))
        return rc;
    if (present) {
        if (cfg->insecure)
            return cfg_error(&w, KLE_EKUBECONFIG,
                             "insecure-skip-tls-verify cannot be combined with "
                             "certificate-authority; remove one of them");
        if ((rc = check_pem(&w, &cfg->ca, "certificate-authority", 0)))
            return rc;
    }
    return 0;
}

static int resolve_exec(kle_kube__config *cfg, const struct where *w, const char *dir,
                        json_object *ex)
{
    if (!json_object_is_type(ex, json_type_object))
        return cfg_error(w, KLE_EKUBECONFIG, "exec must be a mapping");
    kle_kube__exec *x = calloc(1, sizeof(*x));
    if (!x)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    cfg->exec = x;
    const char *api, *cmd, *hint, *mode;
    int rc;
    if ((rc = get_str(w, ex, "apiVersion", &api)) || (rc = get_str(w, ex, "command", &cmd)) ||
        (rc = get_str(w, ex, "installHint", &hint)) ||
        (rc = get_str(w, ex, "interactiveMode", &mode)) ||
        (rc = get_bool(w, ex, "provideClusterInfo", &x->provide_cluster_info)))
        return rc;
    if (!cmd)
        return cfg_error(w, KLE_EKUBECONFIG, "exec: command is not set");
    if (!api)
        return cfg_error(w, KLE_EKUBECONFIG, "exec: apiVersion is not set");
    if (strcmp(api, "client.authentication.k8s.io/v1") != 0 &&
        strcmp(api, "client.authentication.k8s.io/v1beta1") != 0)
        return cfg_error(w, KLE_EKUBECONFIG,
                         "exec: apiVersion \"%s\" is not supported (use "
                         "client.authentication.k8s.io/v1 or v1beta1)",
                         api);
    if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0 &&
        strcmp(mode, "Always") != 0)
        return cfg_error(w, KLE_EKUBECONFIG,
                         "exec: interactiveMode \"%s\" is not Never, IfAvailable or Always", mode);
    x->interactive_always = mode && strcmp(mode, "Always") == 0;
    /* A command with a '/' is relative to the kubeconfig; a bare name is
     * looked up in PATH. */
    x->command = strchr(cmd, '/') ? resolve_path(dir, cmd) : strdup(cmd);
    x->api_version = strdup(api);
    x->install_hint = xstrdup(hint);
    if (!x->command || !x->api_version || (hint && !x->install_hint))
        return kle_error_set(KLE_ENOMEM, "out of memory");

    json_object *args = NULL, *env = NULL;
    json_object_object_get_ex(ex, "args", &args);
    json_object_object_get_ex(ex, "env", &env);
    if (args && !json_object_is_type(args, json_type_array))
        return cfg_error(w, KLE_EKUBECONFIG, "exec: args must be a list");
    if (env && !json_object_is_type(env, json_type_array))
        return cfg_error(w, KLE_EKUBECONFIG, "exec: env must be a list");
    size_t na = args ? json_object_array_length(args) : 0;
    size_t ne = env ? json_object_array_length(env) : 0;
    x->args = calloc(na + 1, sizeof(char *));
    x->env = calloc(ne + 1, sizeof(char *));
    if (!x->args || !x->env)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    for (size_t i = 0; i < na; i++) {
        json_object *a = json_object_array_get_idx(args, i);
        if (!a || !json_object_is_type(a, json_type_string))
            return cfg_error(w, KLE_EKUBECONFIG, "exec: args[%zu] must be a string", i);
        if (!(x->args[i] = strdup(json_object_get_string(a))))
            return kle_error_set(KLE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ne; i++) {
        json_object *ev = json_object_array_get_idx(env, i);
        const char *name = str_field(ev, "name"), *value = str_field(ev, "value");
        if (!name || !*name || strchr(name, '='))
            return cfg_error(w, KLE_EKUBECONFIG, "exec: env[%zu] has no valid name", i);
        if (!value)
            value = "";
        size_t n = strlen(name) + strlen(value) + 2;
        if (!(x->env[i] = malloc(n)))
            return kle_error_set(KLE_ENOMEM, "out of memory");
        snprintf(x->env[i], n, "%s=%s", name, value);
    }
    return 0;
}

static int resolve_user(kle_kube__config *cfg, const struct entry *e)
{
    struct where w = {e->file->path, "user", e->name};
    const char *token, *token_file, *username, *password;
    int rc, has_cert, has_key;
    json_object *v;

    if (e->body && json_object_object_get_ex(e->body, "auth-provider", &v) && v) {
        const char *name = str_field(v, "name");
        return cfg_error(&w, KLE_EKUBECONFIG,
                         "auth-provider \"%s\" is not supported; use an exec credential plugin",
                         name ? name : "?");
    }
    if ((rc = get_str(&w, e->body, "token", &token)) ||
        (rc = get_str(&w, e->body, "tokenFile", &token_file)) ||
        (rc = get_str(&w, e->body, "username", &username)) ||
        (rc = get_str(&w, e->body, "password", &password)))
        return rc;
    if ((token || token_file) && (username || password))
        return cfg_error(&w, KLE_EKUBECONFIG,
                         "more than one authentication method: token and username/password; "
                         "keep one of them");
    if (password && !username)
        return cfg_error(&w, KLE_EKUBECONFIG, "password is set but username is not");
    if (token && kle_buf__set(&cfg->token, token, strlen(token)))
        return kle_error_set(KLE_ENOMEM, "out of memory");
    if (token_file) {
        if (!(cfg->token_file = resolve_path(e->file->dir, token_file)))
            return kle_error_set(KLE_ENOMEM, "out of memory");
        kle_buf t = {0};
        int err = kle_kube__read_file(&t, cfg->token_file, CRED_FILE_MAX_BYTES);
        kle_buf__wipe(&t);
        if (err)
            return cfg_error(&w, KLE_EKUBECONFIG, "tokenFile %s: cannot read: %s", cfg->token_file,
                             err == -EFBIG ? "file is too large" : strerror(-err));
    }
    if (username && !(cfg->username = strdup(username)))
        return kle_error_set(KLE_ENOMEM, "out of memory");
    if (password && kle_buf__set(&cfg->password, password, strlen(password)))
        return kle_error_set(KLE_ENOMEM, "out of memory");
    if ((rc = get_blob(&w, e->file->dir, e->body, "client-certificate", &cfg->client_cert,
                       &has_cert, &cfg->client_cert_file)) ||
        (rc = get_blob(&w, e->file->dir, e->body, "client-key", &cfg->client_key, &has_key,
                       &cfg->client_key_file)))
        return rc;
    if (has_cert && !has_key)
        return cfg_error(&w, KLE_EKUBECONFIG,
                         "client-certificate is set but client-key is not; set both");
    if (has_key && !has_cert)
        return cfg_error(&w, KLE_EKUBECONFIG,
                         "client-key is set but client-certificate is not; set both");
    if (has_cert && ((rc = check_pem(&w, &cfg->client_cert, "client-certificate", 0)) ||
                     (rc = check_pem(&w, &cfg->client_key, "client-key", 1))))
        return rc;
    if (e->body && json_object_object_get_ex(e->body, "exec", &v) && v)
        return resolve_exec(cfg, &w, e->file->dir, v);
    return 0;
}

static int resolve(kle_kube__config *cfg, struct loader *l, const char *override)
{
    const char *name = override && *override ? override : l->current_context;
    const char *where = override && *override     ? l->all_paths
                        : l->current_context_file ? l->current_context_file->path
                                                  : l->all_paths;
    if (!name)
        return kle_error_set(KLE_EKUBECONFIG,
                             "kubeconfig %s: current-context is not set and no context was "
                             "given; set current-context or choose a context",
                             where);
    const struct entry *ctx = entries_find(&l->contexts, name);
    if (!ctx) {
        if (override && *override)
            return kle_error_set(KLE_EKUBECONFIG, "kubeconfig %s: context \"%s\" does not exist",
                                 where, name);
        return kle_error_set(KLE_EKUBECONFIG,
                             "kubeconfig %s: current-context \"%s\" names a context that does "
                             "not exist",
                             where, name);
    }
    struct where w = {ctx->file->path, "context", ctx->name};
    const char *cluster, *user, *ns;
    int rc;
    if ((rc = get_str(&w, ctx->body, "cluster", &cluster)) ||
        (rc = get_str(&w, ctx->body, "user", &user)) ||
        (rc = get_str(&w, ctx->body, "namespace", &ns)))
        return rc;
    if (!cluster)
        return cfg_error(&w, KLE_EKUBECONFIG, "cluster is not set");
    const struct entry *ce = entries_find(&l->clusters, cluster);
    if (!ce)
        return cfg_error(&w, KLE_EKUBECONFIG, "cluster \"%s\" does not exist", cluster);
    const struct entry *ue = NULL;
    if (user && !(ue = entries_find(&l->users, user)))
        return cfg_error(&w, KLE_EKUBECONFIG, "user \"%s\" does not exist", user);
    cfg->context = strdup(name);
    cfg->cluster = strdup(cluster);
    cfg->user = xstrdup(user);
    cfg->namespace_ = strdup(ns ? ns : "default");
    size_t n = strlen(ctx->file->path) + 16;
    cfg->origin = malloc(n);
    if (!cfg->context || !cfg->cluster || (user && !cfg->user) || !cfg->namespace_ || !cfg->origin)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    snprintf(cfg->origin, n, "kubeconfig %s", ctx->file->path);
    if ((rc = resolve_cluster(cfg, ce)))
        return rc;
    if (ue && (rc = resolve_user(cfg, ue)))
        return rc;
    return 0;
}

static int append_path(char **all, const char *p)
{
    size_t old = *all ? strlen(*all) : 0;
    char *s = realloc(*all, old + strlen(p) + 2);
    if (!s)
        return -1;
    if (old)
        s[old++] = ':';
    memcpy(s + old, p, strlen(p) + 1);
    *all = s;
    return 0;
}

int kle_kube__config_load(kle_kube__config **out, const char *explicit_path,
                          const char *kubeconfig_env, const char *home, const char *context)
{
    struct loader l = {0};
    kle_kube__config *cfg = NULL;
    int rc = 0;

    *out = NULL;
    if (explicit_path && *explicit_path) {
        rc = load_file(&l, explicit_path, 0);
        if (!rc && append_path(&l.all_paths, explicit_path))
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
    } else if (kubeconfig_env && *kubeconfig_env) {
        char *list = strdup(kubeconfig_env), *save = NULL;
        if (!list)
            return kle_error_set(KLE_ENOMEM, "out of memory");
        for (char *p = strtok_r(list, ":", &save); p && !rc; p = strtok_r(NULL, ":", &save)) {
            int dup = 0;
            for (size_t i = 0; i < l.nfiles; i++)
                dup |= strcmp(l.files[i].path, p) == 0;
            if (dup)
                continue;
            rc = load_file(&l, p, 1);
            if (!rc && append_path(&l.all_paths, p))
                rc = kle_error_set(KLE_ENOMEM, "out of memory");
        }
        free(list);
        if (!rc && l.nfiles == 0)
            rc = kle_error_set(KLE_EKUBECONFIG,
                               "no kubeconfig found: none of the files in $KUBECONFIG (%s) exists",
                               kubeconfig_env);
    } else {
        if (!home || !*home) {
            rc = kle_error_set(KLE_EKUBECONFIG,
                               "no kubeconfig found: $KUBECONFIG and $HOME are not set");
        } else {
            char path[4096];
            snprintf(path, sizeof(path), "%s/.kube/config", home);
            rc = load_file(&l, path, 1);
            if (!rc && l.nfiles == 0)
                rc = kle_error_set(KLE_EKUBECONFIG,
                                   "no kubeconfig found: %s does not exist and $KUBECONFIG is "
                                   "not set",
                                   path);
            if (!rc && append_path(&l.all_paths, path))
                rc = kle_error_set(KLE_ENOMEM, "out of memory");
        }
    }
    if (!rc)
        rc = merge_files(&l);
    if (!rc) {
        cfg = calloc(1, sizeof(*cfg));
        if (!cfg)
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
        else
            rc = resolve(cfg, &l, context);
    }
    loader_free(&l);
    if (rc) {
        kle_kube__config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

static char *trim_dup(const char *s, size_t len)
{
    while (len && strchr(" \t\r\n", s[len - 1]))
        len--;
    while (len && strchr(" \t\r\n", *s)) {
        s++;
        len--;
    }
    return strndup(s, len);
}

int kle_kube__config_in_cluster(kle_kube__config **out, const char *host, const char *port,
                                const char *sa_dir)
{
    char path[4096];
    kle_buf b = {0};
    int e;

    *out = NULL;
    if (!host || !*host || !port || !*port)
        return kle_error_set(KLE_EKUBECONFIG,
                             "in-cluster config: KUBERNETES_SERVICE_HOST and "
                             "KUBERNETES_SERVICE_PORT must be set (not running in a pod?)");
    if (strspn(port, "0123456789") != strlen(port) || strlen(port) > 5 ||
        strtol(port, NULL, 10) < 1 || strtol(port, NULL, 10) > 65535)
        return kle_error_set(KLE_EKUBECONFIG,
                             "in-cluster config: KUBERNETES_SERVICE_PORT \"%s\" is not a port "
                             "(1-65535)",
                             port);
    kle_kube__config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg)
        return kle_error_set(KLE_ENOMEM, "out of memory");
    cfg->origin = strdup("in-cluster config");
    size_t n = strlen(host) + strlen(port) + 16;
    cfg->server = malloc(n);
    if (!cfg->origin || !cfg->server)
        goto oom;
    /* IPv6 literals need brackets in a URL. */
    if (strchr(host, ':') && host[0] != '[')
        snprintf(cfg->server, n, "https://[%s]:%s", host, port);
    else
        snprintf(cfg->server, n, "https://%s:%s", host, port);
    const char *why = server_url_problem(cfg->server);
    if (why) {
        kle_error_set(KLE_EKUBECONFIG,
                      "in-cluster config: KUBERNETES_SERVICE_HOST \"%s\" makes the URL \"%s\", "
                      "which is not valid: %s",
                      host, cfg->server, why);
        kle_kube__config_free(cfg);
        return KLE_EKUBECONFIG;
    }

    snprintf(path, sizeof(path), "%s/token", sa_dir);
    if ((e = kle_kube__read_file(&b, path, CRED_FILE_MAX_BYTES))) {
        kle_kube__config_free(cfg);
        return kle_error_set(KLE_EKUBECONFIG, "in-cluster config: token %s: cannot read: %s", path,
                             strerror(-e));
    }
    kle_buf__wipe(&b);
    if (!(cfg->token_file = strdup(path)))
        goto oom;
    snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
    if (!(cfg->ca_file = strdup(path)))
        goto oom;
    if ((e = kle_kube__read_file(&cfg->ca, path, CRED_FILE_MAX_BYTES))) {
        kle_kube__config_free(cfg);
        return kle_error_set(KLE_EKUBECONFIG, "in-cluster config: CA %s: cannot read: %s", path,
                             strerror(-e));
    }
    snprintf(path, sizeof(path), "%s/namespace", sa_dir);
    if (kle_kube__read_file(&b, path, 4096) == 0) {
        cfg->namespace_ = trim_dup(b.data, b.len);
        kle_buf__free(&b);
        if (cfg->namespace_ && !*cfg->namespace_) {
            free(cfg->namespace_);
            cfg->namespace_ = NULL;
        }
    }
    if (!cfg->namespace_ && !(cfg->namespace_ = strdup("default")))
        goto oom;
    *out = cfg;
    return 0;
oom:
    kle_kube__config_free(cfg);
    return kle_error_set(KLE_ENOMEM, "out of memory");
}

void kle_kube__config_free(kle_kube__config *cfg)
{
    if (!cfg)
        return;
    free(cfg->origin);
    free(cfg->context);
    free(cfg->cluster);
    free(cfg->user);
    free(cfg->server);
    free(cfg->namespace_);
    kle_buf__free(&cfg->ca);
    free(cfg->ca_file);
    free(cfg->client_cert_file);
    free(cfg->client_key_file);
    free(cfg->tls_server_name);
    free(cfg->proxy_url);
    kle_buf__wipe(&cfg->token);
    free(cfg->token_file);
    kle_buf__free(&cfg->client_cert);
    kle_buf__wipe(&cfg->client_key);
    free(cfg->username);
    kle_buf__wipe(&cfg->password);
    if (cfg->exec) {
        kle_kube__exec *x = cfg->exec;
        free(x->api_version);
        free(x->command);
        for (char **p = x->args; p && *p; p++)
            free(*p);
        free(x->args);
        for (char **p = x->env; p && *p; p++)
            free(*p);
        free(x->env);
        free(x->install_hint);
        free(x);
    }
    free(cfg);
}
