/* Test harness: an HTTP/2 TLS front (Debian's nghttpx) in front of a
 * kle-apiserver, as a real cluster's API server or load balancer speaks.
 *
 * The front terminates TLS with kle-apiserver's own serving certificate
 * (signed by its CA, so the kubeconfig's CA data stays valid), offers h2
 * and http/1.1 by ALPN, and forwards to the server over TLS, verified with
 * the server's CA. Watch streams pass through unbuffered. Client
 * certificates end at the front (the server only sees the front's request),
 * so tests of client-certificate authentication run without it.
 *
 * With KLE_TEST_HTTP=2 in the environment, kle_test_apiserver_start() (and
 * tests/support/apiserver.sh) put a front before every server they start
 * and point the kubeconfig and url at it; tests registered twice by
 * kle_add_http_tests() run once over HTTP/1.1 and once over HTTP/2.
 */
#ifndef KLE_TESTS_SUPPORT_H2FRONT_H
#define KLE_TESTS_SUPPORT_H2FRONT_H

#include <stddef.h>
#include <sys/types.h>

typedef struct kle_test_h2front {
    pid_t pid;          /**< nghttpx; 0 when not running. */
    unsigned port;      /**< The front's port on 127.0.0.1. */
    char url[128];      /**< "https://127.0.0.1:PORT". */
    char log_path[320]; /**< nghttpx's error log. */
} kle_test_h2front;

/** 1 when KLE_TEST_HTTP=2: servers started by the harness get a front. */
int kle_test_http2(void);

/**
 * Starts nghttpx on a free 127.0.0.1 port, forwarding to
 * https://127.0.0.1:@p backend_port. @p cert_dir holds kle-apiserver's
 * ca.crt, serving.crt and serving.key (its --cert-dir); the log goes to
 * @p log_dir/nghttpx.log. Waits (10 s at most) until it accepts
 * connections. Returns 0, or -1 with a message on stderr and nothing left
 * running. The binary is $KLE_NGHTTPX, else nghttpx from PATH or /usr/sbin.
 */
int kle_test_h2front_start(kle_test_h2front *f, const char *cert_dir, const char *log_dir,
                           unsigned backend_port);

/** What kle_test_h2front_start_opts() starts. */
typedef struct kle_test_h2front_opts {
    const char *cert;              /**< The front's serving certificate (PEM file). */
    const char *key;               /**< Its key. */
    const char *backend_ca;        /**< CA file the backend's certificate is verified with. */
    const char *log_dir;           /**< nghttpx.log goes there. */
    unsigned backend_port;         /**< https://127.0.0.1:PORT behind the front. */
    unsigned port;                 /**< The front's port; 0: a free one. */
    const char *const *extra_args; /**< More nghttpx options (NULL-terminated), or NULL, e.g.
                                        "--verify-client". */
} kle_test_h2front_opts;

/** As kle_test_h2front_start(), with the certificates, the port and extra
 *  nghttpx options chosen (a front restarted on the same port with a new
 *  serving certificate, one that verifies client certificates). */
int kle_test_h2front_start_opts(kle_test_h2front *f, const kle_test_h2front_opts *o);

/** Stops the front (SIGTERM, then SIGKILL after 5 s). Safe to call twice. */
void kle_test_h2front_stop(kle_test_h2front *f);

/** Replaces every occurrence of @p from by @p to in the file @p path
 *  (atomically). Returns 0 or -1. */
int kle_test_replace_in_file(const char *path, const char *from, const char *to);

#endif
