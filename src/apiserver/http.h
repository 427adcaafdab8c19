/* Internal interface between the units of the API listener: per-request
 * state, routes, answers, and the handlers. */
#ifndef KLE_APISERVER_HTTP_H
#define KLE_APISERVER_HTTP_H

#include "apiserver/server.h"

/* ---- per-request state ---- */

typedef struct request {
    kle_buf body;
    const char *content_type; /* Borrowed from the connection. */
    int too_large;
    int started;
    kle_apiserver__user user; /* Who asks (after impersonation). */
} request;

typedef struct route {
    int kind;    /* ROUTE_* */
    int res;     /* For resource routes: the API resource. */
    int store;   /* Where its objects are stored. */
    int convert; /* 1: stored as core/v1 Events, served as events.k8s.io/v1. */
    const kle_apiserver__resource *r;
    char ns[256];
    char name[256];
    char subresource[32]; /* "" or "token". */
    const char *verb;
    char group[128];
} route;

enum { ROUTE_NONE, ROUTE_RESOURCE, ROUTE_DISCOVERY, ROUTE_HEALTH, ROUTE_OPENAPI };

/* What a handler answers. */
typedef struct answer {
    unsigned code;
    char *body; /* Heap; NULL for an empty body. */
    int retry_after;
    int close_mid;
    struct MHD_Response *stream; /* A watch stream instead of a body. */
    int proto;                   /* 1: the client prefers protobuf answers. */
    int is_proto;                /* 1: body (body_len bytes) or stream is protobuf. */
    size_t body_len;

} answer;

/* ---- answer.c ---- */

#define KLE_MEDIA_PROTOBUF "application/vnd.kubernetes.protobuf"

/* Picks the answer's encoding from the Accept header as kube-apiserver does
 * (by weight, then in the client's order): *proto is 1 for protobuf, 0 for
 * JSON. Returns -1 when nothing acceptable is offered (406). */
int kle_apiserver__negotiate(struct MHD_Connection *c, int *proto);

/* 1 for ?pretty=true. */
int kle_apiserver__want_pretty(struct MHD_Connection *c);
/* 1 when the client asks for server-side printing (kubectl get). */
int kle_apiserver__want_table(struct MHD_Connection *c);
/* JSON text with a trailing newline (heap), NULL on allocation failure. */
char *kle_apiserver__to_text(json_object *o, int pretty);
/* Answers o as JSON, or as protobuf when the client prefers it and o's
 * kind has a protobuf encoding. */
void kle_apiserver__answer_json(answer *a, unsigned code, json_object *o, int pretty);
/* metadata.<field> of a stored object, "" when missing (hand-edited state). */
const char *kle_apiserver__meta_or_empty(json_object *obj, const char *field);
/* The object as the route's API serves it (a new reference). */
json_object *kle_apiserver__served(const route *rt, json_object *stored);
/* The object as it is stored (takes obj, returns a new reference). */
json_object *kle_apiserver__to_storage(const route *rt, json_object *obj);
void kle_apiserver__answer_obj(answer *a, unsigned code, const route *rt, json_object *stored,
                               int pretty);
/* Answers with a Status; takes ownership of st. */
void kle_apiserver__answer_status(answer *a, json_object *st, int pretty);
void kle_apiserver__answer_error(answer *a, int code, const char *reason, const char *msg,
                                 const kle_apiserver__resource *r, const char *name, int pretty);
void kle_apiserver__not_found(answer *a, const kle_apiserver__resource *r, const char *name,
                              int pretty);
void kle_apiserver__conflict(answer *a, const kle_apiserver__resource *r, const char *name,
                             const char *why, int pretty);
/* A query argument, NULL when absent. */
const char *kle_apiserver__arg(struct MHD_Connection *c, const char *key);
int kle_apiserver__dry_run(struct MHD_Connection *c);
/* Checks fieldSelector and labelSelector; -1 with a 400 answer. */
int kle_apiserver__check_selectors(struct MHD_Connection *c, answer *a, int pretty);
enum MHD_Result kle_apiserver__send_answer(struct MHD_Connection *c, answer *a);
/* The Status of an injected fault (429, 500, 503 or 504). */
void kle_apiserver__fault_answer(answer *a, int code, int retry_after, int pretty);
void kle_apiserver__forbidden(answer *a, const kle_apiserver__user *u, const route *rt, int pretty);

/* ---- route.c ---- */

/* Splits a path into at most 8 segments; -1 when longer or too long. */
int kle_apiserver__split_path(const char *url, char parts[8][256]);
/* Fills rt from method and url; returns 0, or -1 for an unknown path. */
int kle_apiserver__route_request(struct MHD_Connection *c, const char *method, const char *url,
                                 route *rt);

/* ---- discovery.c ---- */

/* API groups other than the core group, NULL-terminated. */
extern const char *const kle_apiserver__served_groups[];
/* The address /api reports in serverAddressByClientCIDRs. */
void kle_apiserver__discovery_set_address(const char *addr);
void kle_apiserver__discovery(answer *a, const char *url, int pretty);
void kle_apiserver__openapi(answer *a, const char *url, int pretty);

/* ---- verbs.c, watch.c ---- */

/* Parses and checks a create/update body (JSON or protobuf) against the
 * route's kind; NULL with the answer filled on error. */
json_object *kle_apiserver__parse_body(const request *rq, const route *rt, answer *a, int pretty);
void kle_apiserver__do_list(struct MHD_Connection *c, const route *rt, answer *a, int pretty);
void kle_apiserver__do_get(struct MHD_Connection *c, const route *rt, answer *a, int pretty);
void kle_apiserver__do_create(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty);
void kle_apiserver__do_update(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty);
void kle_apiserver__do_patch(struct MHD_Connection *c, const request *rq, const route *rt,
                             answer *a, int pretty);
void kle_apiserver__do_delete(struct MHD_Connection *c, const request *rq, const route *rt,
                              answer *a, int pretty);
void kle_apiserver__do_watch(struct MHD_Connection *c, const route *rt, answer *a, int pretty);

/* ---- review.c: access reviews and service-account tokens ---- */

/* SelfSubjectAccessReview and SelfSubjectRulesReview for rq->user. */
void kle_apiserver__do_review(const request *rq, const route *rt, answer *a, int pretty);
/* TokenRequest: POST serviceaccounts/{name}/token. */
void kle_apiserver__do_token(const request *rq, const route *rt, answer *a, int pretty);

#endif
