/**
 * @file kle/client.h
 * @brief The Kubernetes API client: kubeconfig, in-cluster config, credentials.
 *
 * A kle_client talks to one Kubernetes API server with the credentials of
 * one kubeconfig context (or of the pod's service account). It connects
 * wherever kubectl connects: the same kubeconfig loading rules, the same
 * cluster and user fields, exec credential plugins included.
 *
 * This header exposes no third-party type: a client is all a lock
 * constructor (kle/locks.h) needs. The REST verbs and the watch, which hand
 * out json-c objects, are in kle/rest.h, the one header that depends on
 * json-c (pkg-config `kle-rest`, CMake `kle::rest`).
 *
 * Errors: every call returns 0 or a negative kle_error_code; the details
 * (message naming verb, path and the server's message; HTTP status; Status
 * reason; Retry-After) are in kle_error_last(). API errors are classified
 * by the Status `reason` first and the HTTP status second:
 *
 * | HTTP | reason            | code                  |
 * |------|-------------------|-----------------------|
 * | 400  | BadRequest        | KLE_EBADREQUEST       |
 * | 401  | Unauthorized      | KLE_EUNAUTHORIZED     |
 * | 403  | Forbidden         | KLE_EFORBIDDEN        |
 * | 404  | NotFound          | KLE_ENOTFOUND         |
 * | 409  | AlreadyExists     | KLE_EEXISTS           |
 * | 409  | Conflict (other)  | KLE_ECONFLICT         |
 * | 410  | Expired / Gone    | KLE_EGONE             |
 * | 413  | RequestEntityTooLarge | KLE_ETOOLARGE     |
 * | 422  | Invalid           | KLE_EUNPROCESSABLE          |
 * | 429  | TooManyRequests   | KLE_ETOOMANYREQUESTS  |
 * | 5xx  | InternalError, ServiceUnavailable, Timeout | KLE_ESERVER |
 * | other|                   | KLE_EAPI              |
 *
 * Connection, TLS and protocol failures give KLE_ETRANSPORT; a request that
 * does not finish within its timeout gives KLE_ETIMEOUT; a cancelled one
 * KLE_ECANCELED; a response larger than the client's cap KLE_ETOOLARGE; a
 * response that is not the JSON expected KLE_EBADRESPONSE.
 *
 * Thread-safety: a client may be shared by threads. Requests on one client
 * run concurrently, each on a connection of its own taken from a small pool
 * of idle ones (kept alive and reused; HTTP/2 where the server offers it),
 * so a slow call never delays another one, such as an elector's renewal.
 * A watch also uses a connection of its own. kle_client_free() must not
 * race with calls on the same client.
 *
 * Connections: a request that times out, is cancelled or fails at the
 * transport level closes its connection when it returns; no later request
 * uses it (with HTTP/2, libcurl would otherwise keep a connection whose
 * stream timed out). Sockets get TCP_USER_TIMEOUT and TCP keepalive, and an
 * idle connection is not reused after a while, all derived from the
 * shortest request timeout the client has seen (an elector's per-call
 * timeout). A server's `Warning:` headers are logged once per distinct text.
 *
 * Durations are in nanoseconds, as everywhere in libkle (see kle/common.h).
 *
 * Secrets (tokens, passwords, keys, the Authorization header, exec plugin
 * output) never appear in log lines at any verbosity.
 */
#ifndef KLE_CLIENT_H
#define KLE_CLIENT_H

#include "clock.h"
#include "common.h"

KLE_BEGIN_DECLS

/** A connection to one Kubernetes API server. Opaque. */
typedef struct kle_client kle_client;

/** The current version of kle_client_opts. */
#define KLE_CLIENT_OPTS_VERSION 1

/** Options for the client constructors. Initialise with KLE_CLIENT_OPTS_INIT. */
typedef struct kle_client_opts {
    unsigned int version; /**< KLE_CLIENT_OPTS_VERSION. */
    /**
     * kubeconfig file to use alone (kubectl's --kubeconfig). NULL applies the
     * loading rules: every file of $KUBECONFIG (':'-separated, merged so
     * that the first file to define a name wins), else ~/.kube/config.
     */
    const char *kubeconfig;
    /** Context to use instead of the kubeconfig's current-context (--context). */
    const char *context;
    /** Namespace to use instead of the context's (or the service account's). */
    const char *namespace_;
    /** Directory of the service account files; NULL for
     *  $KLE_SERVICEACCOUNT_DIR when set (meant for tests), else
     *  /var/run/secrets/kubernetes.io/serviceaccount. */
    const char *serviceaccount_dir;
    /** Timeout (ns) of a request whose kle_request_opts has none; 0 means 30 s. */
    int64_t default_timeout_ns;
    /** Connect timeout (TCP + TLS, ns) cap per request; 0 means 10 s. */
    int64_t connect_timeout_ns;
    /** Largest response body accepted; 0 means 16 MiB. */
    size_t max_response_bytes;
    /** How often (ns) a tokenFile is re-read; 0 means 60 s (as client-go).
     *  A 401 also re-reads a token file that changed, then retries once. */
    int64_t token_file_refresh_ns;
} kle_client_opts;

/** Initialiser of kle_client_opts: current version, every option at its default. */
#define KLE_CLIENT_OPTS_INIT                                                                       \
    {                                                                                              \
        KLE_CLIENT_OPTS_VERSION, NULL, NULL, NULL, NULL, 0, 0, 0, 0                                \
    }

/**
 * Sets @p ptr to KLE_CLIENT_OPTS_INIT at @p version (1 to KLE_CLIENT_OPTS_VERSION), for callers
 * that cannot use the macro (language bindings).
 * @return 0, KLE_EINVAL or KLE_EVERSION.
 */
KLE_EXTERN(int) kle_client_opts_init(kle_client_opts *ptr, unsigned int version);

/**
 * Creates a client from kubeconfig files (see kle_client_opts.kubeconfig and
 * .context). Certificates and keys are handed to libcurl in memory; nothing
 * is written to disk.
 *
 * @param out  receives the client on success (free with kle_client_free()).
 * @param opts options, or NULL for the defaults.
 * @return 0; KLE_EKUBECONFIG when no kubeconfig is found or it is unusable,
 *         including a credential file it names that cannot be read (the
 *         message names the file, the context/cluster/user and the field);
 *         KLE_EINVAL when @p out is NULL; KLE_EVERSION for an unknown opts
 *         version; KLE_ENOMEM; KLE_ETRANSPORT when libcurl cannot be set up.
 *         Exec plugins are not run here but on the first request.
 */
KLE_EXTERN(int) kle_client_new_from_kubeconfig(kle_client **out, const kle_client_opts *opts);

/**
 * Creates a client from the pod environment: KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT, and the service account's token (re-read as it
 * rotates), ca.crt and namespace ($POD_NAMESPACE, when set, wins over the
 * namespace file, as in kubectl).
 *
 * @return 0; KLE_EKUBECONFIG when the environment variables are missing or
 *         the files cannot be read (the message names which); KLE_EVERSION;
 *         KLE_ENOMEM; KLE_ETRANSPORT.
 */
KLE_EXTERN(int) kle_client_new_in_cluster(kle_client **out, const kle_client_opts *opts);

/**
 * Creates a client the way most programs want: in-cluster when
 * KUBERNETES_SERVICE_HOST is set and the service account token exists and
 * no explicit kubeconfig was given, else from kubeconfig.
 *
 * @return as kle_client_new_in_cluster() or kle_client_new_from_kubeconfig().
 */
KLE_EXTERN(int) kle_client_new_default(kle_client **out, const kle_client_opts *opts);

/** Frees a client and closes its connections; an exec plugin still running
 *  for it is killed. NULL is ignored. */
KLE_EXTERN(void) kle_client_free(kle_client *client);

/**
 * The namespace of the client: the override, else the context's namespace
 * (or the service account's), else "default". Borrowed; valid until the
 * client is freed.
 */
KLE_EXTERN(const char *) kle_client_namespace(const kle_client *client);

/** The server URL ("https://10.0.0.1:6443"). Borrowed. */
KLE_EXTERN(const char *) kle_client_server(const kle_client *client);

/** The User-Agent the client sends: "kle/<version> (<os>/<arch>)". Borrowed. */
KLE_EXTERN(const char *) kle_client_user_agent(const kle_client *client);

/**
 * Writes the client's request counts in the Prometheus text exposition
 * format (0.0.4) into a new string, which the caller frees with
 * kle_free(): `kle_api_requests_total{verb, code}`, a counter of the
 * requests this client sent to the API server by Kubernetes verb (get,
 * list, watch, create, update, patch, delete) and HTTP status code ("error"
 * when no answer came: a timeout or a transport failure). Each watch
 * stream counts once, with the code it was answered with, when the first
 * bytes of its answer arrive (or when it ends without any). Append it to
 * kle_metrics_format()'s output for your own /metrics; `kle run` does.
 * @return 0; KLE_EINVAL (NULL argument); KLE_ENOMEM.
 */
KLE_EXTERN(int) kle_client_metrics(char **out, kle_client *client);

KLE_END_DECLS

#endif
