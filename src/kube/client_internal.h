/* Internal interfaces shared by the API client's units: client.c (the
 * client object), transport.c (libcurl handles, connection policy and the
 * request loop), credentials.c (token file, TLS file re-reads, exec
 * plugin), status.c (Status and error mapping), verbs.c (REST verbs) and
 * watch.c (the watch stream). */
#ifndef KLE_KUBE_CLIENT_INTERNAL_H
#define KLE_KUBE_CLIENT_INTERNAL_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kube/async.h"
#include "kube/kube.h"

#define EXPECT_CONTINUE_MIN (1u << 20)
/* Longer timeouts are capped (a year), so that deadlines never overflow. */
#define MAX_TIMEOUT_MS (INT64_C(365) * 24 * 3600 * 1000)
/* Idle private loops and agents kept per client for synchronous calls. */
#define MAX_IDLE_CONNS 4
/* Distinct Warning texts remembered (each is logged once). */
#define MAX_WARNINGS 64

/* What a credential file looked like when last read. */
struct file_state {
    int known;
    int retry; /* the last read was unusable: read again */
    struct timespec mtime;
    off_t size;
    ino_t ino;
};

/* A private loop and agent for one synchronous call at a time: its
 * connections (HTTP/1.1 or HTTP/2) are used by that call alone and can be
 * closed without touching any other call's. */
struct conn {
    kle_loop *loop;
    kle_kube__agent *agent;
    struct conn *next;
};

/* Requests by verb and status code (kle_client_metrics()); code -1: no answer. */
#define MAX_REQUEST_COUNTS 64
typedef struct request_count {
    const char *verb; /* NULL: a free slot */
    int code;
    uint64_t n;
} request_count;

/* Counts a request for kle_client_metrics(): @p method and @p path give
 * the verb (a GET of a collection is a list), @p status the code (-1: no
 * answer: a timeout or a transport failure). @p verb overrides the method's. */
void kle_kube__count_request(kle_client *c, const char *verb, const char *method, const char *path,
                             long status);

struct kle_client {
    pthread_mutex_t
        mu; /* protects idle, agents, the counters and warnings; never held across I/O */
    request_count requests[MAX_REQUEST_COUNTS];
    struct conn *idle;           /* private loops ready for the next synchronous call */
    kle_kube__agent *agents;     /* every agent of the client (transport.c) */
    struct cred_waiter *waiters; /* credentials.c */
    int nidle;
    long connections;       /* connections opened by requests (not watches) */
    long discarded;         /* connections closed after a timeout, cancel or transport error */
    long http_version;      /* CURL_HTTP_VERSION_* of the last completed request */
    int64_t min_timeout_ms; /* shortest request timeout seen: the health-check base */
    char *warnings[MAX_WARNINGS];
    int nwarnings;
    kle_kube__config *cfg;
    char *ns;
    char *user_agent;
    char *url_base; /* scheme://host[:port][/prefix]; host is tls-server-name if set */
    struct curl_slist *connect_to; /* CURLOPT_CONNECT_TO for tls-server-name; read-only */
    char *host_header;
    int server_is_loopback; /* never proxied from the environment, as in Go */
    int64_t default_timeout_ms, connect_timeout_ms, token_refresh_ms;
    size_t max_response;

    pthread_mutex_t cred_mu; /* protects what follows */
    kle_buf file_token;
    int64_t file_token_read_ns;
    struct timespec file_token_mtime;
    kle_kube__exec_cred exec_cred;
    int exec_valid;
    int64_t exec_fetched_wall_ns; /* when exec_cred was obtained */
    /* The exec plugin runs on a thread of its own, outside every request's
     * budget; a request that needs a credential waits for it on its loop
     * (as long as its deadline allows: the thread posts to the agents that
     * wait when a run ends); requests that have one never wait. */
    pthread_t exec_thread;
    int exec_thread_started, exec_running;
    int exec_rc;          /* result of the last run that failed; 0 otherwise */
    uint64_t exec_runs;   /* runs of the plugin that ended */
    char exec_msg[512];   /* its message */
    kle_event *exec_stop; /* stops a running plugin when the client is freed */
    struct file_state ca_state, cert_state, key_state;
};

/* ---- small helpers ----------------------------------------------------- */

/* Nanoseconds to milliseconds, rounded up (a budget under 1 ms is not 0,
 * which would mean "the default") and capped so deadlines never overflow. */
static inline int64_t ns_to_ms(int64_t ns)
{
    int64_t ms = ns / 1000000 + (ns % 1000000 != 0);
    return ms > MAX_TIMEOUT_MS ? MAX_TIMEOUT_MS : ms;
}

static inline void wipe_slist(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next) {
        volatile char *s = p->data;
        while (*s)
            *s++ = 0;
    }
    curl_slist_free_all(l);
}

static inline char *str_printf(const char *fmt, ...) KLE_PRINTF(1, 2);

static inline char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* ---- transport (transport.c) ------------------------------------------- */

/* One transfer's response body and headers. */
struct xfer {
    kle_client *c;
    kle_buf body;
    size_t cap, max;
    int too_large;
    int retry_after;
};

/* Checks a method and path as kle_client_request() does (error recorded). */
int kle_kube__request_check(const char *method, const char *path);

/* A private loop and agent for a synchronous call (from the idle ones, or
 * new), and giving it back: unhealthy ones are freed with their
 * connections. NULL (error recorded) when none can be made. */
struct conn *kle_kube__conn_get(kle_client *c);
/* A new private loop and agent, not from the idle ones. */
struct conn *kle_kube__conn_new(kle_client *c);
void kle_kube__conn_put(kle_client *c, struct conn *k, int healthy);
void kle_kube__conn_free(struct conn *k);

/*
 * Runs @p k's loop until *done is set; when @p cancel is set first, calls
 * @p on_cancel(@p arg) (which must set *done) and returns KLE_ECANCELED.
 */
int kle_kube__conn_wait(struct conn *k, kle_event *cancel, const int *done,
                        void (*on_cancel)(void *arg), void *arg);

/* ---- credentials (credentials.c) --------------------------------------- */

/* What one request authenticates with (and trusts). Secrets are wiped by
 * kle_kube__auth_clear. */
struct auth {
    char *header; /* "Authorization: ..." or NULL */
    kle_buf ca, cert, key;
    int from_exec, from_file;
};

/* kle_kube__auth_try's "a credential is on its way". */
#define AUTH_PENDING 1

/* Someone (an agent) whose requests may wait for the exec plugin: when a
 * run ends, its post runs fn(data) on its loop if it was waiting. */
struct cred_waiter {
    atomic_int waiting;
    kle_loop *loop;
    kle_loop_post post;
    kle_loop_post_fn fn;
    void *data;
    struct cred_waiter *next;
};

/* Registers a waiter with the client, and removes it (its post will not run). */
void kle_kube__cred_waiter_add(kle_client *c, struct cred_waiter *w);
void kle_kube__cred_waiter_remove(kle_client *c, struct cred_waiter *w);

void kle_kube__auth_clear(struct auth *a);
/*
 * The credentials for one request, without waiting: 0 (in *a), an error
 * (recorded), or AUTH_PENDING when the exec plugin is running for it: the
 * waiter @p w is told when the run ends,
 * *exec_runs is the count of runs to wait past. A request that waited
 * past a run that failed gets that run's error instead of another run.
 */
int kle_kube__auth_try(kle_client *c, struct auth *a, struct cred_waiter *w, uint64_t *exec_runs);
/* After a 401: drops the cached exec credential or re-reads a changed token
 * file. Returns 1 when retrying may help. */
int kle_kube__auth_invalidate(kle_client *c, int from_exec, int from_file);
/* The message of a request that timed out waiting for the exec plugin. */
int kle_kube__auth_wait_timeout(kle_client *c, const char *method, const char *path);

/* ---- Status and errors (status.c) -------------------------------------- */

/* Parses one JSON value (only whitespace may follow); NULL when invalid. */
json_object *kle_kube__parse_json(const char *s, size_t len);
/* The string member key of object o, or NULL. */
const char *kle_kube__jstr(json_object *o, const char *key);
/* Records an API error from a status code and a body that may be a Status. */
int kle_kube__api_error(const char *method, const char *path, long status, json_object *st,
                        const char *raw, size_t raw_len, int retry_after);
/* Records a transport error of a request. */
int kle_kube__curl_error(const char *method, const char *path, CURLcode cc, const char *errbuf,
                         const struct xfer *x);

#endif
