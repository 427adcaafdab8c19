/* Object semantics: Status objects, validation, selectors, patches. */
#ifndef KLE_APISERVER_OBJECTS_H
#define KLE_APISERVER_OBJECTS_H

#include "apiserver/apiserver.h"

/* "leases.coordination.k8s.io" or "configmaps". */
void kle_apiserver__qualified(const kle_apiserver__resource *r, char *buf, size_t len);
/* "coordination.k8s.io/v1" or "v1". */
void kle_apiserver__api_version(const kle_apiserver__resource *r, char *buf, size_t len);
/* A Failure Status; takes ownership of causes (may be NULL). r and name may
 * be NULL when the error concerns no object. */
json_object *kle_apiserver__status(int code, const char *reason, const char *message,
                                   const kle_apiserver__resource *r, const char *name,
                                   json_object *causes);
json_object *kle_apiserver__invalid_status(const kle_apiserver__resource *r, const char *name,
                                           json_object *causes);
/* metadata.<field> when it is a string, else NULL (borrowed). */
const char *kle_apiserver__meta_str(json_object *obj, const char *field);
/* metadata, created when missing (borrowed). */
json_object *kle_apiserver__meta(json_object *obj);
/* Decoding checks (wrong JSON types) as kube's decoder reports them with a
 * 400; also normalises Lease times to MicroTime. 0 or -1 with err set. */
int kle_apiserver__decode_check(const kle_apiserver__resource *r, json_object *obj, char *err,
                                size_t errlen);
/* Validation as kube's 422: returns a causes array, or NULL when valid. */
json_object *kle_apiserver__validate(const kle_apiserver__resource *r, json_object *obj);
/* Checks a selector's syntax; 0 or -1 with err set. */
int kle_apiserver__selector_check(const char *sel, int labels, char *err, size_t errlen);
/* Returns 1 when obj matches the field (labels=0) or label selector. */
int kle_apiserver__selector_match(json_object *obj, const char *sel, int labels);
/* Applies an RFC 7386 merge patch (strategic: also drops $-directives). */
void kle_apiserver__merge_patch(json_object *target, json_object *patch, int strategic);

/* meta.k8s.io/v1 Table of items (an array of objects) with the columns
 * kube-apiserver prints for r; rv may be NULL. */
json_object *kle_apiserver__table(const kle_apiserver__resource *r, json_object *items,
                                  const char *rv);
json_object *kle_apiserver__table_columns(const kle_apiserver__resource *r);
json_object *kle_apiserver__table_row(const kle_apiserver__resource *r, json_object *obj);

/* Converts an Event between events.k8s.io/v1 (to_core=1: from it) and
 * core/v1 (to_core=0: into events.k8s.io/v1); returns a new object. Both
 * APIs serve the same stored events, as in kube-apiserver. */
json_object *kle_apiserver__event_convert(json_object *src, int to_core);

#endif
