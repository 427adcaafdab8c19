/*
 * Asynchronous requests and watches of the API client, on a kle_loop.
 *
 * An agent is one libcurl multi handle of one client driven by one loop
 * (curl_multi_socket_action: its sockets are watched by the loop, its timer
 * is a loop timer). Over HTTP/2 every request and watch of the agent shares
 * one connection (CURLPIPE_MULTIPLEX, CURLOPT_PIPEWAIT); over HTTP/1.1 they
 * use a small pool (KLE_KUBE_AGENT_CONNECTIONS). Requests and watches are
 * structs their users own and keep until they complete or are stopped;
 * nothing is allocated per request but libcurl's and json-c's own work
 * (easy handles and their buffers are pooled by the agent).
 *
 * Everything runs on the loop's thread: start, abandon, stop and every
 * callback. A callback may start, abandon or stop requests and watches of
 * the same agent, its own included, and may put its reference to the agent
 * as long as nothing else of its runs on it. Deadlines are absolute, on
 * the loop's clock (the real clock: CLOCK_BOOTTIME), so a frozen or
 * suspended process ends its requests at their deadline, not later.
 *
 * The synchronous kle_client_request() and kle_client_watch() run these on
 * a private loop and agent of their own until they complete.
 */
#ifndef KLE_KUBE_ASYNC_H
#define KLE_KUBE_ASYNC_H

#include <stddef.h>
#include <stdint.h>

#include "kle/client.h"
#include "kle/rest.h"
#include "kle/sys/loop.h"

struct json_object;
struct kle_kube__slot;

/* Connections an agent keeps to the server over HTTP/1.1 (HTTP/2: one). */
#define KLE_KUBE_AGENT_CONNECTIONS 6

/* One multi handle of a client on a loop (opaque). */
typedef struct kle_kube__agent kle_kube__agent;

/*
 * The agent of @p client on @p loop, made at the first call and shared by
 * later ones (one reference each; give it back with kle_kube__agent_put).
 * The loop must be on the real clock and must outlive the agent.
 * Errors: KLE_ESTATE (a loop on another clock), KLE_ENOMEM, KLE_ETRANSPORT.
 */
int kle_kube__agent_get(kle_kube__agent **out, kle_client *client, kle_loop *loop);

/* Gives a reference back; the last one frees the agent (and closes its
 * connections). Nothing may be running on it then. NULL is ignored. */
void kle_kube__agent_put(kle_kube__agent *agent);

/* The agent's loop and client (borrowed). */
kle_loop *kle_kube__agent_loop(kle_kube__agent *agent);
kle_client *kle_kube__agent_client(kle_kube__agent *agent);

/* Monotonic time of the agent's loop (CLOCK_BOOTTIME), in which deadlines are. */
int64_t kle_kube__agent_now(kle_kube__agent *agent);

/* Sockets the agent's connections hold open now (for tests and figures). */
int kle_kube__agent_sockets(kle_kube__agent *agent);

typedef struct kle_kube__request kle_kube__request;

/*
 * Completion of a request, on the loop's thread, once, never from within
 * kle_kube__request_start(). @p rc: 0, or the code the synchronous call
 * would have returned, with the error recorded (kle_error_last()).
 * @p obj (the caller's, may be NULL): the parsed body of a 2xx answer, or
 * the Status of an API error when the body was one.
 */
typedef void (*kle_kube__request_fn)(kle_kube__request *req, int rc, struct json_object *obj,
                                     void *data);

/*
 * Called with each complete line of a streamed 2xx body (stream != NULL),
 * on the loop's thread; non-zero stops the request at once (done is not
 * called). An error body is read whole and given to done.
 */
typedef int (*kle_kube__line_fn)(kle_kube__request *req, const char *line, size_t len, void *data);

struct kle_kube__request {
    /* Set by the caller; borrowed until done runs or the request is abandoned. */
    const char *method;       /* "GET", "PUT", ... */
    const char *path;         /* absolute, with its query; percent-encoded */
    const char *content_type; /* or NULL */
    const char *body;         /* or NULL */
    size_t body_len;
    int64_t deadline_ns;       /* absolute, on the loop's clock: done runs by then */
    kle_kube__request_fn done; /* required */
    kle_kube__line_fn stream;  /* NULL: the body is JSON, parsed whole */
    void *data;
    const char *verb; /* the method as messages show it ("WATCH"); NULL: method */
    int uncounted;    /* 1: not a request the client's connection counters count */

    /* Set by the agent; the caller may read them in done. */
    long status;     /* HTTP status of the answer, 0 without one */
    int healthy;     /* 0: the connection it used was closed because of it */
    int64_t sent_ns; /* when the (last) attempt's transfer started */

    /* The agent's while the request runs. */
    kle_kube__agent *agent;
    struct kle_kube__slot *slot;
    kle_kube__request *next; /* waiting for a credential */
    kle_loop_timer timer;
    int64_t start_ns;
    int state;
    int attempt;
    int counted;              /* this attempt is in the client's request counts */
    int auth_exec, auth_file; /* where the attempt's credential came from */
    uint64_t exec_runs;       /* runs of the exec plugin seen while waiting */
};

/* A request with nothing set, ready for its members. */
#define KLE_KUBE_REQUEST_INIT                                                                      \
    {                                                                                              \
        0                                                                                          \
    }

/*
 * Starts @p req on @p agent. Returns 0 (done runs later, once) or an error
 * (recorded; done never runs): KLE_EINVAL (method or path), KLE_ETIMEOUT
 * (the deadline has passed), KLE_ESTATE (already running), KLE_ENOMEM.
 * Authentication, the 401 retry, the error mapping, Retry-After, warnings
 * and the response size cap are those of kle_client_request().
 */
int kle_kube__request_start(kle_kube__agent *agent, kle_kube__request *req);

/* Gives a running request up: done never runs. What it did on the server stays done. */
void kle_kube__request_abandon(kle_kube__request *req);

/* 1 while @p req runs. */
int kle_kube__request_running(const kle_kube__request *req);

typedef struct kle_kube__watch kle_kube__watch;

/*
 * Each event of a watch, on the loop's thread: KLE_WATCH_LISTED with the
 * List (the first list and every re-list after 410 Gone), ADDED, MODIFIED,
 * DELETED and BOOKMARK with the object (borrowed). Non-zero stops the
 * watch (ended is not called).
 */
typedef int (*kle_kube__watch_fn)(kle_kube__watch *w, kle_watch_event_type type,
                                  struct json_object *obj, void *data);

/*
 * A watch as kle_client_watch() describes it, on a loop: list (unless a
 * resourceVersion is given), then streams from the last resourceVersion
 * seen, resumed when they end or break, re-listed after 410 Gone; 429, 5xx
 * and transport errors retried with a backoff of at most 1 s (at least a
 * Retry-After); any other error ends it.
 */
struct kle_kube__watch {
    /* Set by the caller; borrowed while the watch runs. */
    const char *path;           /* the collection */
    const char *field_selector; /* or NULL */
    const char *label_selector; /* or NULL */
    int64_t stream_timeout_ns;  /* server-side lifetime of each stream; 0: 300 s */
    kle_kube__watch_fn event;   /* required */
    /* The watch ended on its own with @p rc (recorded); never after a stop. */
    void (*ended)(kle_kube__watch *w, int rc, void *data);
    void *data;
    /* Resume after it ("": list first); the watch keeps it current. */
    char resource_version[256];

    /* The agent's while the watch runs. */
    kle_kube__agent *agent;
    kle_kube__request req;
    kle_loop_timer backoff;
    int state;
    int need_list;
    int events;                       /* events delivered on the current stream */
    int gone;                         /* the stream said 410 Gone */
    int error_rc;                     /* the stream carried another ERROR event */
    struct json_object *error_status; /* its Status */
    int in_event;                     /* an event callback runs */
    int stopping;                     /* stopped from within an event callback */
    int64_t backoff_ms;
    char *url_path; /* path?query of the current request */
};

/* Starts @p w; 0 or an error (recorded; nothing started): KLE_EINVAL, KLE_ENOMEM. */
int kle_kube__watch_start(kle_kube__agent *agent, kle_kube__watch *w);

/* Stops a watch: no callback runs for it afterwards (also from within its own event). */
void kle_kube__watch_stop(kle_kube__watch *w);

/* 1 while @p w runs. */
int kle_kube__watch_running(const kle_kube__watch *w);

#endif
