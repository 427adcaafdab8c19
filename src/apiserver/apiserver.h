/* Internal interfaces of kle-apiserver, the local Kubernetes API server. */
#ifndef KLE_APISERVER_H
#define KLE_APISERVER_H

#include "base/buf.h"
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One served resource: its group/version, plural name and kind. */
typedef struct kle_apiserver__resource {
    const char *group; /* "" for the core group. */
    const char *version;
    const char *plural;
    const char *singular;
    const char *kind;
    const char *list_kind;
    const char *short_name; /* NULL when none. */
    int namespaced;
    int review; /* 1: create only, answered and never stored (access reviews). */
} kle_apiserver__resource;

extern const kle_apiserver__resource kle_apiserver__resources[];
extern const size_t kle_apiserver__nresources;
/* coordination.k8s.io/v1beta1 (LeaseCandidates) is served: 1 unless
 * --runtime-config coordination.k8s.io/v1beta1=false, as on a cluster
 * that has not enabled it. */
extern int kle_apiserver__lease_candidates;
/* 1 when kle_apiserver__resources[i] is served (discovery and routing). */
int kle_apiserver__resource_served(size_t i);

/* The coordinated-election controller (election.c): on with
 * --feature-gates=CoordinatedLeaderElection=true. */
extern int kle_apiserver__coordinated_election;
int kle_apiserver__election_start(void);
void kle_apiserver__election_stop(void);

/* Index of the namespaces resource in kle_apiserver__resources. */
#define KLE_RES_NAMESPACES 0
/* core/v1 events; events.k8s.io/v1 events are stored with them. */
#define KLE_RES_CORE_EVENTS         3
#define KLE_RES_LEASES              4
#define KLE_RES_EVENTS_V1           5
#define KLE_RES_SERVICEACCOUNTS     6
#define KLE_RES_ROLES               7
#define KLE_RES_ROLEBINDINGS        8
#define KLE_RES_CLUSTERROLES        9
#define KLE_RES_CLUSTERROLEBINDINGS 10
#define KLE_RES_DEPLOYMENTS         11
#define KLE_RES_SSAR                12
#define KLE_RES_SSRR                13
#define KLE_RES_SECRETS             14
#define KLE_RES_LEASECANDIDATES     15

/* A growing buffer: base/buf.h's kle_buf. */

/* ---- store.c: objects, the resourceVersion counter, history, persistence ---- */

typedef enum { KLE_EV_ADDED, KLE_EV_MODIFIED, KLE_EV_DELETED } kle_apiserver__evtype;

/* Opens the store; loads data_dir/state.json when data_dir is set. On error
 * writes a one-line message to err and returns -1. */
int kle_apiserver__store_init(const char *data_dir, size_t history, char *err, size_t errlen);
void kle_apiserver__store_free(void);

/* The store mutex guards every object, the counter and the history. */
void kle_apiserver__store_lock(void);
void kle_apiserver__store_unlock(void);
/* Waits on the store condition (held lock) until broadcast or deadline_ns
 * (CLOCK_MONOTONIC); returns 0 or ETIMEDOUT. */
int kle_apiserver__store_wait(int64_t deadline_ns);
void kle_apiserver__store_broadcast(void);

uint64_t kle_apiserver__store_rv(void);
/* Borrowed; NULL when missing. Lock held. */
json_object *kle_apiserver__store_get(int res, const char *ns, const char *name);
/* Calls fn for each object of res (ns NULL: all namespaces), in key order. */
void kle_apiserver__store_each(int res, const char *ns, void (*fn)(json_object *obj, void *arg),
                               void *arg);
/* Stores obj (taking ownership), assigns the next resourceVersion into it,
 * records the event and persists. Lock held. Returns 0 or -1 when persisting
 * failed (the change is then rolled back). */
int kle_apiserver__store_put(int res, const char *ns, const char *name, json_object *obj,
                             kle_apiserver__evtype type);
/* Removes the object, stamping the deletion resourceVersion on the event. */
int kle_apiserver__store_delete(int res, const char *ns, const char *name);

/* One history entry as a watcher sees it. */
typedef struct kle_apiserver__event {
    uint64_t rv;
    int res;
    kle_apiserver__evtype type;
    char *ns;
    char *name;
    json_object *obj;  /* Immutable snapshot. */
    json_object *prev; /* For MODIFIED: the object before; else NULL. */
} kle_apiserver__event;

/* Oldest resourceVersion a watch may resume from (lock held). */
uint64_t kle_apiserver__store_history_floor(void);
/* The event with resourceVersion rv, or NULL (lock held). */
const kle_apiserver__event *kle_apiserver__store_event(uint64_t rv);

/* ---- proto.c: application/vnd.kubernetes.protobuf ---- */

/* Decodes a protobuf body ("k8s\0" magic, runtime.Unknown envelope) into
 * JSON with kind and apiVersion from the envelope. NULL with err and *code
 * 400 (malformed) or 415 (a kind or encoding without protobuf support). */
json_object *kle_apiserver__proto_decode(const unsigned char *data, size_t len, int *code,
                                         char *err, size_t errlen);
/* Appends the protobuf encoding of obj (which names its kind and
 * apiVersion); -1 when the kind has none. */
int kle_apiserver__proto_encode(json_object *obj, kle_buf *out);
/* Appends one watch frame: a 4-byte big-endian length, then a
 * meta.k8s.io/v1 WatchEvent whose object is the enveloped obj. */
int kle_apiserver__proto_watch_frame(const char *type, json_object *obj, kle_buf *out);

/* ---- tls.c ---- */

typedef struct kle_apiserver__tls {
    char *ca_pem;
    char *cert_pem;
    char *key_pem;
} kle_apiserver__tls;

/* Generates a CA and a serving certificate for localhost, 127.0.0.1, ::1
 * and host (when it is another name or address). */
int kle_apiserver__tls_generate(kle_apiserver__tls *tls, const char *host, char *err,
                                size_t errlen);
void kle_apiserver__tls_free(kle_apiserver__tls *tls);
/* Reads a whole file into a NUL-terminated heap string. */
char *kle_apiserver__read_file(const char *path, size_t max, char *err, size_t errlen);
/* Parses a DER certificate: CN into user, O values comma-joined into groups. */
int kle_apiserver__cert_subject(const unsigned char *der, size_t len, char *user, size_t userlen,
                                char *groups, size_t groupslen);

/* ---- auth.c ---- */

typedef struct kle_apiserver__user {
    char name[256];
    char uid[128];
    char groups[512]; /* Comma-separated. */
} kle_apiserver__user;

/* ---- issue.c: short-lived credentials (--issue-credentials) ---- */

/* Loads DIR/client-ca.{crt,key} (dir may be NULL) or makes a new client CA
 * (and writes it there); *ca_pem gets its certificate (caller frees). */
int kle_apiserver__issuer_init(const char *dir, char **ca_pem, char *err, size_t errlen);
/* A certificate (CN=user, O=each comma-separated group) and key valid for
 * ttl seconds, PEM, signed by the client CA; the caller frees both. */
int kle_apiserver__issue_cert(const char *user, const char *groups, long ttl, char **cert_pem,
                              char **key_pem);
/* A bearer token for user valid for ttl seconds. */
int kle_apiserver__issue_token(const char *user, const char *groups, long ttl, char *out,
                               size_t outlen, time_t *expires);
/* 1 and u filled when tok is an issued token that has not expired. */
int kle_apiserver__issued_token_user(const char *tok, struct kle_apiserver__user *u);
/* The admin call POST /credentials; returns the HTTP status. */
int kle_apiserver__issue_request(const char *body, json_object **out, char *err, size_t errlen);
void kle_apiserver__issuer_free(void);

int kle_apiserver__auth_load_tokens(const char *path, char *err, size_t errlen);
void kle_apiserver__auth_add_token(const char *token, const char *user, const char *uid,
                                   const char *groups);
/* Returns 1 and fills u when the bearer token is known. */
int kle_apiserver__auth_token(const char *token, kle_apiserver__user *u);
/* Reads and checks the --authz-file rules (installed later by rbac.c). */
int kle_apiserver__authz_load(const char *path, char *err, size_t errlen);
/* The loaded --authz-file rules (borrowed), or NULL. */
json_object *kle_apiserver__authz_file_rules(void);
/* Issues a token that authenticates as system:serviceaccount:ns:name while
 * that service account (with that uid) exists, until expires (wall time). */
int kle_apiserver__sa_token_issue(const char *ns, const char *name, const char *uid, time_t expires,
                                  char *out, size_t outlen);
void kle_apiserver__auth_free(void);

/* ---- rbac.c: the authorizer ---- */

/* 1 once RBAC decides (--authz-file or --authorization-mode=RBAC); 0: every
 * authenticated user may do everything. */
extern int kle_apiserver__rbac_enabled;
/* 1 when u is in group g (everyone is in system:authenticated). */
int kle_apiserver__user_in_group(const kle_apiserver__user *u, const char *g);
/* Returns 1 when u may do verb on resource ("plural" or "plural/sub") of
 * group, in namespace ns (may be "") on object name (may be ""). Takes the
 * store lock: call without it. */
int kle_apiserver__authz_allowed(const kle_apiserver__user *u, const char *verb, const char *group,
                                 const char *resource, const char *ns, const char *name);
/* The PolicyRules that apply to u in ns, as a JSON array (new reference). */
json_object *kle_apiserver__rbac_rules(const kle_apiserver__user *u, const char *ns);
/* Enables RBAC and stores file_rules (the --authz-file format) as
 * ClusterRoles and bindings; NULL only enables nothing. Call after the
 * store is open. */
int kle_apiserver__authz_install(json_object *file_rules);

/* ---- faults.c: fault rules, pause, black holes, request counters ---- */

typedef struct kle_apiserver__fault_result {
    int latency_ms;
    int blackhole;
    int code;        /* 0: none; else 429/500/503/504. */
    int retry_after; /* Seconds, for 429. */
    int close_mid;
    char *body; /* A canned 200 answer (JSON text, malloc'd; the caller frees it), or NULL. */
} kle_apiserver__fault_result;

void kle_apiserver__faults_match(const char *verb, const char *resource, const char *ns,
                                 const char *name, kle_apiserver__fault_result *r);
void kle_apiserver__count(const char *verb, const char *resource, unsigned code);
/* Blocks while paused; returns -1 when shutting down. */
int kle_apiserver__wait_unpaused(void);
/* Blocks until the black-hole rules are cleared or shutdown. */
void kle_apiserver__blackhole_wait(void);
/* Sleeps ms unless shutdown comes first. */
void kle_apiserver__sleep_ms(int ms);
/* Adds a rule from its JSON; 201 with *out the rule, or 400/500 with err. */
int kle_apiserver__faults_add(const char *body, json_object **out, char *err, size_t errlen);
/* Every rule as a JSON array (a new reference). */
json_object *kle_apiserver__faults_list(void);
/* Removes every rule, releasing black-holed requests. */
void kle_apiserver__faults_clear(void);
/* Removes rule id; returns it as JSON, or NULL when there is none. */
json_object *kle_apiserver__faults_remove(long id);
/* Pauses (1) or resumes (0) the API listener. */
void kle_apiserver__set_paused(int on);
/* The request counters as JSON (a new reference). */
json_object *kle_apiserver__counters(void);
void kle_apiserver__counters_clear(void);
/* Wakes every waiter (black holes, pause) so it sees shutdown. */
void kle_apiserver__faults_release(void);
void kle_apiserver__faults_free(void);

/* ---- admin.c: the admin listener ---- */

int kle_apiserver__admin_start(const char *listen, char *url, size_t urllen, char *err,
                               size_t errlen);
void kle_apiserver__admin_stop(void);
void kle_apiserver__admin_free(void);

/* ---- util.c ---- */

/* Set once at shutdown; every wait checks it. */
extern atomic_int kle_apiserver__shutting_down;
/* Incremented by the admin API to end every watch stream. */
extern atomic_uint kle_apiserver__watch_generation;
extern int kle_apiserver__bookmark_interval;
extern int kle_apiserver__verbose;

int64_t kle_apiserver__now_ns(void);
/* RFC 3339 UTC timestamp with second precision. */
void kle_apiserver__timestamp(char *buf, size_t len);
void kle_apiserver__random_hex(char *out, size_t nbytes);
/* A random (version 4) UID; out holds 37 bytes. */
void kle_apiserver__new_uid(char *out);
/* A JSON array of the NULL-terminated strings v. */
json_object *kle_apiserver__str_array(const char *const *v);
/* Routes libmicrohttpd's messages to the log (verbosity 2). */
void kle_apiserver__mhd_log(void *cls, const char *fmt, va_list ap);

#endif
