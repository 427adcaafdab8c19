/* Answers of the API listener: JSON bodies, Status errors as
 * kube-apiserver words them, and the libmicrohttpd response. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int kle_apiserver__want_pretty(struct MHD_Connection *c)
{
    const char *p = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pretty");
    return p && (strcmp(p, "true") == 0 || strcmp(p, "1") == 0);
}

/* 1 when the client asks for server-side printing (kubectl get). */
int kle_apiserver__want_table(struct MHD_Connection *c)
{
    const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    return acc && strstr(acc, "as=Table") != NULL;
}

char *kle_apiserver__to_text(json_object *o, int pretty)
{
    const char *s = json_object_to_json_string_ext(
        o, (pretty ? JSON_C_TO_STRING_PRETTY : JSON_C_TO_STRING_PLAIN) |
               JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t n = strlen(s);
    char *out = malloc(n + 2);
    if (!out)
        return NULL;
    memcpy(out, s, n);
    out[n] = '\n';
    out[n + 1] = '\0';
    return out;
}

void kle_apiserver__answer_json(answer *a, unsigned code, json_object *o, int pretty)
{
    a->code = code;
    if (a->proto) {
        kle_buf b = {0};
        if (kle_apiserver__proto_encode(o, &b) == 0) {
            a->body = b.data;
            a->body_len = b.len;
            a->is_proto = 1;
            return;
        }
        kle_buf__free(&b);
    }
    a->body = kle_apiserver__to_text(o, pretty);
}

/* One media range of an Accept header. */
typedef struct media {
    char type[128];
    double q;
    int table; /* as=Table (or another as=) was asked for. */
} media;

int kle_apiserver__negotiate(struct MHD_Connection *c, int *proto)
{
    const char *acc = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept");
    media m[16];
    size_t n = 0;
    const char *p = acc;

    *proto = 0;
    if (!acc || !*acc)
        return 0;
    while (*p && n < sizeof(m) / sizeof(m[0])) {
        const char *end = strchr(p, ','), *semi;
        size_t len = end ? (size_t)(end - p) : strlen(p), tl;
        char range[512];
        snprintf(range, sizeof(range), "%.*s", (int)(len < 511 ? len : 511), p);
        p += len + (end ? 1 : 0);
        memset(&m[n], 0, sizeof(m[n]));
        m[n].q = 1.0;
        {
            char *s = range;
            while (*s == ' ' || *s == '\t')
                s++;
            semi = strchr(s, ';');
            tl = semi ? (size_t)(semi - s) : strlen(s);
            while (tl && (s[tl - 1] == ' ' || s[tl - 1] == '\t'))
                tl--;
            snprintf(m[n].type, sizeof(m[n].type), "%.*s", (int)(tl < 127 ? tl : 127), s);
            while (semi) {
                const char *param = semi + 1;
                while (*param == ' ')
                    param++;
                if (strncmp(param, "q=", 2) == 0)
                    m[n].q = strtod(param + 2, NULL);
                else if (strncmp(param, "as=", 3) == 0)
                    m[n].table = 1;
                semi = strchr(param, ';');
            }
        }
        if (m[n].type[0] && m[n].q > 0)
            n++;
    }
    /* The most preferred first; equal weights keep the client's order. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && m[j].q > m[j - 1].q; j--) {
            media t = m[j];
            m[j] = m[j - 1];
            m[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(m[i].type, "application/json") == 0 || strcmp(m[i].type, "*/*") == 0 ||
            strcasecmp(m[i].type, "application/*") == 0)
            return 0;
        if (strcasecmp(m[i].type, KLE_MEDIA_PROTOBUF) == 0 && !m[i].table) {
            *proto = 1;
            return 0;
        }
    }
    return -1;
}

/* metadata.<field> of a stored object, "" when missing (hand-edited state). */
const char *kle_apiserver__meta_or_empty(json_object *obj, const char *field)
{
    const char *v = kle_apiserver__meta_str(obj, field);
    return v ? v : "";
}

/* The object as the route's API serves it (a new reference). */
json_object *kle_apiserver__served(const route *rt, json_object *stored)
{
    return rt->convert ? kle_apiserver__event_convert(stored, 0) : json_object_get(stored);
}

/* The object as it is stored (takes obj, returns a new reference). */
json_object *kle_apiserver__to_storage(const route *rt, json_object *obj)
{
    json_object *c;
    if (!rt->convert)
        return obj;
    c = kle_apiserver__event_convert(obj, 1);
    json_object_put(obj);
    return c;
}

void kle_apiserver__answer_obj(answer *a, unsigned code, const route *rt, json_object *stored,
                               int pretty)
{
    json_object *o = kle_apiserver__served(rt, stored);
    kle_apiserver__answer_json(a, code, o, pretty);
    json_object_put(o);
}

/* Answers with a Status; takes ownership of st. */
void kle_apiserver__answer_status(answer *a, json_object *st, int pretty)
{
    json_object *code;
    json_object_object_get_ex(st, "code", &code);
    kle_apiserver__answer_json(a, (unsigned)json_object_get_int(code), st, pretty);
    json_object_put(st);
}

void kle_apiserver__answer_error(answer *a, int code, const char *reason, const char *msg,
                                 const kle_apiserver__resource *r, const char *name, int pretty)
{
    kle_apiserver__answer_status(a, kle_apiserver__status(code, reason, msg, r, name, NULL),
                                 pretty);
}

void kle_apiserver__not_found(answer *a, const kle_apiserver__resource *r, const char *name,
                              int pretty)
{
    char q[256], msg[1024];
    kle_apiserver__qualified(r, q, sizeof(q));
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", q, name);
    kle_apiserver__answer_error(a, 404, "NotFound", msg, r, name, pretty);
}

void kle_apiserver__conflict(answer *a, const kle_apiserver__resource *r, const char *name,
                             const char *why, int pretty)
{
    char q[256], msg[1024];
    kle_apiserver__qualified(r, q, sizeof(q));
    snprintf(msg, sizeof(msg), "Operation cannot be fulfilled on %s \"%s\": %s", q, name,
             why ? why
                 : "the object has been modified; please apply your changes to the latest "
                   "version and try again");
    kle_apiserver__answer_error(a, 409, "Conflict", msg, r, name, pretty);
}

const char *kle_apiserver__arg(struct MHD_Connection *c, const char *key)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

int kle_apiserver__dry_run(struct MHD_Connection *c)
{
    const char *d = kle_apiserver__arg(c, "dryRun");
    return d && *d;
}

int kle_apiserver__check_selectors(struct MHD_Connection *c, answer *a, int pretty)
{
    char err[512];
    if (kle_apiserver__selector_check(kle_apiserver__arg(c, "fieldSelector"), 0, err,
                                      sizeof(err)) != 0 ||
        kle_apiserver__selector_check(kle_apiserver__arg(c, "labelSelector"), 1, err,
                                      sizeof(err)) != 0) {
        kle_apiserver__answer_error(a, 400, "BadRequest", err, NULL, NULL, pretty);
        return -1;
    }
    return 0;
}

/* A body cut after its first half. */
typedef struct half_body {
    size_t len;
    char *data;
} half_body;

static ssize_t close_mid_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const half_body *hb = cls;
    size_t half = hb->len / 2;
    size_t n;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = half - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, hb->data + pos, n);
    return (ssize_t)n;
}

static void close_mid_free(void *cls)
{
    half_body *hb = cls;
    free(hb->data);
    free(hb);
}

enum MHD_Result kle_apiserver__send_answer(struct MHD_Connection *c, answer *a)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    char ra[16];
    size_t len = a->body ? (a->is_proto ? a->body_len : strlen(a->body)) : 0;

    if (a->stream) {
        resp = a->stream;
    } else if (a->close_mid && a->body) {
        half_body *hb = malloc(sizeof(*hb));
        if (!hb)
            return MHD_NO;
        hb->len = len;
        hb->data = a->body;
        a->body = NULL;
        resp = MHD_create_response_from_callback(len, 4096, close_mid_read, hb, close_mid_free);
        if (!resp)
            close_mid_free(hb);
    } else {
        resp = MHD_create_response_from_buffer(len, a->body ? a->body : (void *)"",
                                               a->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        a->body = NULL;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type",
                            !a->is_proto ? "application/json"
                            : a->stream  ? KLE_MEDIA_PROTOBUF ";stream=watch"
                                         : KLE_MEDIA_PROTOBUF);
    MHD_add_response_header(resp, "Cache-Control", "no-cache, private");
    if (a->retry_after > 0) {
        snprintf(ra, sizeof(ra), "%d", a->retry_after);
        MHD_add_response_header(resp, "Retry-After", ra);
    }
    r = MHD_queue_response(c, a->code, resp);
    MHD_destroy_response(resp);
    return r;
}

void kle_apiserver__fault_answer(answer *a, int code, int retry_after, int pretty)
{
    switch (code) {
    case 429:
        a->retry_after = retry_after;
        kle_apiserver__answer_error(
            a, 429, "TooManyRequests",
            "Too many requests, please try again later. (injected by kle-apiserver)", NULL, NULL,
            pretty);
        break;
    case 500:
        kle_apiserver__answer_error(a, 500, "InternalError",
                                    "Internal error occurred: injected fault (kle-apiserver)", NULL,
                                    NULL, pretty);
        break;
    case 503:
        a->retry_after = retry_after;
        kle_apiserver__answer_error(
            a, 503, "ServiceUnavailable",
            "The server is currently unable to handle the request (injected by "
            "kle-apiserver)",
            NULL, NULL, pretty);
        break;
    default:
        kle_apiserver__answer_error(
            a, 504, "Timeout",
            "Timeout: request did not complete within the allotted timeout (injected "
            "by kle-apiserver)",
            NULL, NULL, pretty);
        break;
    }
}

void kle_apiserver__forbidden(answer *a, const kle_apiserver__user *u, const route *rt, int pretty)
{
    char q[256], msg[1536], scope[300], res[128];
    kle_apiserver__qualified(rt->r, q, sizeof(q));
    snprintf(res, sizeof(res), "%s%s%s", rt->r->plural, rt->subresource[0] ? "/" : "",
             rt->subresource);
    if (rt->r->namespaced && rt->ns[0])
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", rt->ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    if (rt->name[0])
        snprintf(msg, sizeof(msg),
                 "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                 "\"%s\" %s",
                 q, rt->name, u->name, rt->verb, res, rt->r->group, scope);
    else
        snprintf(msg, sizeof(msg),
                 "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s", q,
                 u->name, rt->verb, res, rt->r->group, scope);
    kle_apiserver__answer_error(a, 403, "Forbidden", msg, rt->r, rt->name, pretty);
}
