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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <time.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kube/kube.h"

#define POLL_SLICE_MS       50
#define EXPECT_CONTINUE_MIN (1u << 20)
/* Longer timeouts are capped (a year), so that deadlines never overflow. */
#define MAX_TIMEOUT_MS (INT64_C(365) * 24 * 3600 * 1000)
/* Idle connections kept per client; more are closed when returned. */
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

/* One request slot: an easy handle on a multi handle of its own, so that
 * its connection (HTTP/1.1 or HTTP/2) is used by one request at a time and
 * can be closed without touching any other request's. */
struct conn {
    CURL *easy;
    CURLM *multi;
    struct conn *next;
};

/* Requests by verb and status code (kle_client_metrics()); code -1: no answer. */
#define MAX_REQUEST_COUNTS 64
typedef struct request_count {
    const char *verb; /* NULL: a free slot */
    int code;
    uint64_t n;
} request_count;

struct kle_client {
    pthread_mutex_t mu; /* protects idle, the counters and warnings; never held across I/O */
    request_count requests[MAX_REQUEST_COUNTS];
    struct conn *idle; /* connections ready for the next request */
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
    kle_kube__buf file_token;
    int64_t file_token_read_ns;
    struct timespec file_token_mtime;
    kle_kube__exec_cred exec_cred;
    int exec_valid;
    int64_t exec_fetched_wall_ns; /* when exec_cred was obtained */
    /* The exec plugin runs on a thread of its own, outside every request's
     * budget; requests that need a credential wait on exec_cv (as long as
     * they may), requests that have one never wait. */
    pthread_cond_t exec_cv;
    pthread_t exec_thread;
    int exec_thread_started, exec_running;
    int exec_rc;          /* result of the last run that failed; 0 otherwise */
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

static inline int64_t ms_left(int64_t deadline_ns)
{
    int64_t left = deadline_ns - kle_kube__now_ns();
    return left <= 0 ? 0 : (left + 999999) / 1000000;
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
    kle_kube__buf body;
    size_t cap, max;
    int too_large;
    int retry_after;
    /* Watch streaming: called after each perform with new data. */
    int streaming;
};

struct auth;

enum drive_result { DRIVE_DONE, DRIVE_CANCELED, DRIVE_TIMEOUT, DRIVE_STOPPED, DRIVE_ERROR };

void kle_kube__conn_free(struct conn *k);

/* Sets every option of a request on an easy handle (after a reset). */
int kle_kube__setup_easy(kle_client *c, CURL *h, const char *method, const char *url,
                         struct curl_slist **headers, const struct auth *a, const char *ctype,
                         const char *body, size_t body_len, int64_t timeout_ms, struct xfer *x,
                         char *errbuf);

/* Drives one easy handle on a multi handle until it completes, the deadline
 * passes or cancel is set; on_data (may be NULL) runs after each perform and
 * may stop the transfer by returning non-zero. */
enum drive_result kle_kube__drive(CURLM *m, CURL *h, int64_t deadline_ns, kle_event *cancel,
                                  int (*on_data)(void *), void *ud, CURLcode *result);

/* ---- credentials (credentials.c) --------------------------------------- */

/* What one request authenticates with (and trusts). Secrets are wiped by
 * kle_kube__auth_clear. */
struct auth {
    char *header; /* "Authorization: ..." or NULL */
    kle_kube__buf ca, cert, key;
    int from_exec, from_file;
};

void kle_kube__auth_clear(struct auth *a);
/* The credentials for one request, waiting for them at most until
 * deadline_ns. Returns 0 or an error (recorded). */
int kle_kube__auth_get(kle_client *c, struct auth *a, int64_t deadline_ns, kle_event *cancel);
/* After a 401: drops the cached exec credential or re-reads a changed token
 * file. Returns 1 when retrying may help. */
int kle_kube__auth_invalidate(kle_client *c, const struct auth *used);

/* ---- Status and errors (status.c) -------------------------------------- */

/* Parses one JSON value (only whitespace may follow); NULL when invalid. */
json_object *kle_kube__parse_json(const char *s, size_t len);
/* The string member key of object o, or NULL. */
const char *kle_kube__jstr(json_object *o, const char *key);
/* Records an API error from a status code and a body that may be a Status. */
/* Counts a request for kle_client_metrics(): @p method and @p path give
 * the verb (a GET of a collection is a list), @p status the code (-1: no
 * answer: a timeout or a transport failure). @p verb overrides the method's. */
void kle_kube__count_request(kle_client *c, const char *verb, const char *method, const char *path,
                             long status);

int kle_kube__api_error(const char *method, const char *path, long status, json_object *st,
                        const char *raw, size_t raw_len, int retry_after);
/* Records a transport error of a request. */
int kle_kube__curl_error(const char *method, const char *path, CURLcode cc, const char *errbuf,
                         const struct xfer *x);

#endif
