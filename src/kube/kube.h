/* Internal interfaces of the Kubernetes API client. */
#ifndef KLE_KUBE_KUBE_H
#define KLE_KUBE_KUBE_H

#include <stddef.h>
#include <stdint.h>

#include "kle/clock.h"
#include "kle/rest.h"

#include "base/buf.h"

struct json_object;

/* Exec credential plugin configuration (users[].user.exec). */
typedef struct kle_kube__exec {
    char *api_version;
    char *command;
    char **args; /* NULL-terminated */
    char **env;  /* NULL-terminated "NAME=value" */
    char *install_hint;
    int provide_cluster_info;
    int interactive_always; /* interactiveMode: Always */
} kle_kube__exec;

/* A resolved connection configuration: one cluster, one user. */
typedef struct kle_kube__config {
    char *origin;     /* "kubeconfig /path" or "in-cluster config" for messages */
    char *context;    /* context name, or NULL */
    char *cluster;    /* cluster name, or NULL */
    char *user;       /* user name, or NULL */
    char *server;     /* without trailing '/' */
    char *namespace_; /* never NULL after loading */
    kle_buf ca;       /* PEM; empty when system CAs are used */
    int insecure;
    char *tls_server_name;
    char *proxy_url;
    kle_buf token;
    char *token_file;
    kle_buf client_cert; /* PEM */
    kle_buf client_key;  /* PEM */
    /* Files the three above were read from (re-read when they change), or NULL. */
    char *ca_file, *client_cert_file, *client_key_file;
    char *username;
    kle_buf password;
    kle_kube__exec *exec;
} kle_kube__config;

void kle_kube__config_free(kle_kube__config *cfg);

/*
 * Loads kubeconfig following the loading rules. explicit_path: --kubeconfig
 * or NULL; kubeconfig_env: value of $KUBECONFIG or NULL; home: $HOME or
 * NULL; context: override or NULL. Returns 0 or KLE_EKUBECONFIG/KLE_EAUTH/
 * KLE_ENOMEM with the error recorded.
 */
int kle_kube__config_load(kle_kube__config **out, const char *explicit_path,
                          const char *kubeconfig_env, const char *home, const char *context);

/* Loads in-cluster configuration from the environment and sa_dir. */
int kle_kube__config_in_cluster(kle_kube__config **out, const char *host, const char *port,
                                const char *sa_dir);

/* Reads a whole file (at most max bytes) into buf. Returns 0 or a negative
 * errno-like value: -ENOENT, -EFBIG, ... */
int kle_kube__read_file(kle_buf *buf, const char *path, size_t max);

/* Base64 decoding (standard alphabet, padding optional, whitespace
 * ignored) and encoding. Return 0, or -1 for invalid input / no memory. */
int kle_kube__base64_decode(kle_buf *out, const char *in, size_t len);
/* 1 when @p s is a valid object name: a DNS-1123 subdomain (at most 253
 * characters, dot-separated labels), or with @p label a DNS-1123 label (at
 * most 63, no dots; namespaces). */
int kle_kube__valid_name(const char *s, int label);
int kle_kube__base64_encode(kle_buf *out, const unsigned char *in, size_t len);

/* Exec plugin results. */
typedef struct kle_kube__exec_cred {
    kle_buf token;
    kle_buf client_cert;
    kle_buf client_key;
    int64_t expires_wall_ns; /* 0 = no expiry */
} kle_kube__exec_cred;

void kle_kube__exec_cred_clear(kle_kube__exec_cred *cred);

/* Parses the len bytes an exec plugin printed (an ExecCredential of
 * cfg->exec->api_version) into out. Errors: KLE_EAUTH, KLE_ENOMEM. */
int kle_kube__exec_parse(kle_kube__exec_cred *out, const kle_kube__config *cfg, const char *text,
                         size_t len);

/*
 * Runs the exec plugin of cfg and parses its ExecCredential. Waits at most
 * until deadline_ns (CLOCK_MONOTONIC) and returns KLE_ECANCELED when cancel
 * is set. Errors: KLE_EAUTH (missing command, non-zero exit, bad output),
 * KLE_ETIMEOUT, KLE_ECANCELED.
 */
int kle_kube__exec_run(kle_kube__exec_cred *out, const kle_kube__config *cfg, int64_t deadline_ns,
                       kle_event *cancel);

/* Parses an RFC 3339 time into nanoseconds since the epoch. */
int kle_kube__parse_time(const char *s, int64_t *out_ns);

struct kle_client;
/* Connections the client's request handle has opened so far (keep-alive
 * check for tests). */
long kle_kube__client_connections(struct kle_client *c);
/* Connections closed because their request timed out, was cancelled or
 * failed at the transport level (never reused). */
long kle_kube__client_discarded(struct kle_client *c);
/* CURL_HTTP_VERSION_* negotiated by the last completed request; 0 before. */
long kle_kube__client_http_version(struct kle_client *c);

int64_t kle_kube__now_ns(void);      /* CLOCK_MONOTONIC */
int64_t kle_kube__wall_now_ns(void); /* CLOCK_REALTIME */

/* ---- decode.c: pure decoders of the API server's answers ---- */

/* Parses len bytes of JSON; only whitespace may follow the value. NULL when
 * the text is not JSON. */
struct json_object *kle_kube__parse_json(const char *s, size_t len);
/* The string member key of object o, or NULL. */
const char *kle_kube__jstr(struct json_object *o, const char *key);
/*
 * Records the error of an answer with HTTP status and a body (st: the parsed
 * body, NULL when not JSON; raw: its text, shown when it is no Status) and
 * returns its code: by the Status reason first, then by the status code.
 */
int kle_kube__api_error(const char *method, const char *path, long status, struct json_object *st,
                        const char *raw, size_t raw_len, int retry_after);

/* One decoded watch event: ev owns the event, obj is its object (borrowed
 * from ev), resource_version the object's (borrowed, or NULL). */
typedef struct kle_kube__watch_event {
    kle_watch_event_type type;
    struct json_object *ev;
    struct json_object *obj;
    const char *resource_version;
} kle_kube__watch_event;

/*
 * Decodes one line of a watch stream. Returns 0 with an event to deliver
 * (the caller puts out->ev), 1 for an event type to ignore, KLE_EGONE for an
 * ERROR event of an expired resourceVersion, or the recorded error:
 * KLE_EBADRESPONSE for a line that is no watch event, the classified error
 * of any other ERROR event.
 */
int kle_kube__watch_event_decode(kle_kube__watch_event *out, const char *line, size_t len,
                                 const char *path);
/*
 * Hands every complete, non-empty line of body after *consumed to line_fn
 * and compacts the buffer (an incomplete last line stays). Returns 1 when
 * line_fn returned non-zero (the stream ends there), else 0.
 */
int kle_kube__watch_feed(kle_buf *body, size_t *consumed,
                         int (*line_fn)(void *ud, const char *line, size_t len), void *ud);

#endif
