/* Answers of the API listener: JSON bodies, Status errors as
 * kube-apiserver words them, and the libmicrohttpd response. */
#include "apiserver/http.h"

#include "apiserver/objects.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    a->body = kle_apiserver__to_text(o, pretty);
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

void kle_apiserver__answer_obj(answer *a, unsigned code, const route *rt, json_object *stored, int pretty)
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
    kle_apiserver__answer_status(a, kle_apiserver__status(code, reason, msg, r, name, NULL), pretty);
}

void kle_apiserver__not_found(answer *a, const kle_apiserver__resource *r, const char *name, int pretty)
{
    char q[256], msg[1024];
    kle_apiserver__qualified(r, q, sizeof(q));
    snprintf(msg, sizeof(msg), "%s \"%s\" not found", q, name);
    kle_apiserver__answer_error(a, 404, "NotFound", msg, r, name, pretty);
}

void kle_apiserver__conflict(answer *a, const kle_apiserver__resource *r, const char *name, const char *why,
                     int pretty)
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
    if (kle_apiserver__selector_check(kle_apiserver__arg(c, "fieldSelector"), 0, err, sizeof(err)) != 0 ||
        kle_apiserver__selector_check(kle_apiserver__arg(c, "labelSelector"), 1, err, sizeof(err)) != 0) {
        kle_apiserver__answer_error(a, 400, "BadRequest", err, NULL, NULL, pretty);
        return -1;
    }
    return 0;
}

static ssize_t close_mid_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    const char *body = cls;
    size_t half = strlen(body) / 2;
    size_t n;
    if (pos >= half)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = half - (size_t)pos;
    if (n > max)
        n = max;
    memcpy(buf, body + pos, n);
    return (ssize_t)n;
}

enum MHD_Result kle_apiserver__send_answer(struct MHD_Connection *c, answer *a)
{
    struct MHD_Response *resp;
    enum MHD_Result r;
    char ra[16];

    if (a->stream) {
        resp = a->stream;
    } else if (a->close_mid && a->body) {
        resp =
            MHD_create_response_from_callback(strlen(a->body), 4096, close_mid_read, a->body, free);
        a->body = NULL;
    } else {
        size_t len = a->body ? strlen(a->body) : 0;
        resp = MHD_create_response_from_buffer(len, a->body ? a->body : (void *)"",
                                               a->body ? MHD_RESPMEM_MUST_FREE
                                                       : MHD_RESPMEM_PERSISTENT);
        a->body = NULL;
    }
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
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
        kle_apiserver__answer_error(a, 429, "TooManyRequests",
                     "Too many requests, please try again later. (injected by kle-apiserver)", NULL,
                     NULL, pretty);
        break;
    case 500:
        kle_apiserver__answer_error(a, 500, "InternalError",
                     "Internal error occurred: injected fault (kle-apiserver)", NULL, NULL, pretty);
        break;
    case 503:
        a->retry_after = retry_after;
        kle_apiserver__answer_error(a, 503, "ServiceUnavailable",
                     "The server is currently unable to handle the request (injected by "
                     "kle-apiserver)",
                     NULL, NULL, pretty);
        break;
    default:
        kle_apiserver__answer_error(a, 504, "Timeout",
                     "Timeout: request did not complete within the allotted timeout (injected "
                     "by kle-apiserver)",
                     NULL, NULL, pretty);
        break;
    }
}

void kle_apiserver__forbidden(answer *a, const kle_apiserver__user *u, const route *rt, int pretty)
{
    char q[256], msg[1536], scope[300];
    kle_apiserver__qualified(rt->r, q, sizeof(q));
    if (rt->r->namespaced && rt->ns[0])
        snprintf(scope, sizeof(scope), "in the namespace \"%s\"", rt->ns);
    else
        snprintf(scope, sizeof(scope), "at the cluster scope");
    if (rt->name[0])
        snprintf(msg, sizeof(msg),
                 "%s \"%s\" is forbidden: User \"%s\" cannot %s resource \"%s\" in API group "
                 "\"%s\" %s",
                 q, rt->name, u->name, rt->verb, rt->r->plural, rt->r->group, scope);
    else
        snprintf(msg, sizeof(msg),
                 "%s is forbidden: User \"%s\" cannot %s resource \"%s\" in API group \"%s\" %s", q,
                 u->name, rt->verb, rt->r->plural, rt->r->group, scope);
    kle_apiserver__answer_error(a, 403, "Forbidden", msg, rt->r, rt->name, pretty);
}
