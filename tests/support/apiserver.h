/* Test harness: starts a private kle-apiserver for one test and stops it.
 *
 * Compile tests/support/apiserver.c into the test program (list it in
 * SOURCES) and set KLE_APISERVER=$<TARGET_FILE:kle-apiserver> in the test's
 * ENVIRONMENT. Only POSIX and libc are used.
 *
 *     kle_test_apiserver srv;
 *     assert_int_equal(kle_test_apiserver_start(&srv, NULL), 0);
 *     ... use srv.url, srv.token, srv.ca_path, srv.kubeconfig, srv.admin_url ...
 *     assert_int_equal(kle_test_apiserver_stop(&srv), 0);
 */
#ifndef KLE_TESTS_SUPPORT_APISERVER_H
#define KLE_TESTS_SUPPORT_APISERVER_H

#include <stddef.h>
#include <sys/types.h>

#include "support/h2front.h"

typedef struct kle_test_apiserver {
    pid_t pid;              /**< The server process; 0 when not running. */
    char dir[256];          /**< Private temp dir, removed by stop. */
    char kubeconfig[320];   /**< dir/kubeconfig: server, CA data, admin token, namespace default. */
    char ca_path[320];      /**< dir/ca.crt: the CA (PEM) that signed the serving certificate. */
    char log_path[320];     /**< dir/apiserver.log: the server's stdout and stderr. */
    char url[128];          /**< "https://127.0.0.1:PORT". */
    char admin_url[128];    /**< "http://127.0.0.1:PORT" of the fault/counter listener. */
    char token[128];        /**< Admin bearer token (group system:masters). */
    unsigned port;          /**< The API port; kept by kle_test_apiserver_restart. */
    char *args[48];         /**< Internal: copies of the extra arguments. */
    char direct_url[128];   /**< The server itself, also when url is an HTTP/2 front's. */
    kle_test_h2front front; /**< With KLE_TEST_HTTP=2: nghttpx before the server (h2front.h). */
} kle_test_apiserver;

/**
 * Starts kle-apiserver on 127.0.0.1 port 0 with a fresh temp dir,
 * --write-kubeconfig, --write-ca, --cert-dir and --admin-token-file in that
 * dir, and an admin listener on 127.0.0.1:0,
 * plus extra_args (a NULL-terminated list, or NULL), e.g.
 * {"--token-file", path, "--authz-file", path, "--data-dir", dir, NULL}.
 * Waits up to 30 s for the kubeconfig to appear (the server writes it once
 * it accepts connections). Returns 0, or -1 with a message on stderr (the
 * server log is printed when the server died) and nothing left running.
 * The binary is $KLE_APISERVER, else $KLE_BUILD_DIR/src/apiserver/kle-apiserver,
 * else found relative to the test executable in the build tree. When
 * KLE_APISERVER_WRAPPER names an executable, it runs as WRAPPER BINARY ARGS
 * (e.g. a script that execs valgrind "$@"). With KLE_TEST_HTTP=2 an HTTP/2
 * TLS front (h2front.h) is started before the server: url and the
 * kubeconfig name the front, direct_url the server.
 */
int kle_test_apiserver_start(kle_test_apiserver *srv, const char *const *extra_args);

/**
 * Stops the server (SIGTERM, must exit 0) and starts it again with the same
 * arguments on the same port, keeping the temp dir: URL, token, CA and
 * kubeconfig stay valid, and with --data-dir so do the objects. Returns 0,
 * or -1 (the server is then stopped and cleaned up as by stop).
 */
int kle_test_apiserver_restart(kle_test_apiserver *srv);

/**
 * Sends SIGTERM, waits up to 20 s for exit (then SIGKILL), removes the temp
 * dir. Returns the server's exit status (0 for a clean shutdown), or -1 when
 * it did not exit cleanly (killed by a signal, or not running). Safe to
 * call twice.
 */
int kle_test_apiserver_stop(kle_test_apiserver *srv);

struct kle_client;
/**
 * Starts the server (no extra arguments) and a client of it from its
 * kubeconfig, as most integration tests' group setup does. Returns 0, or -1
 * with the reason on stderr.
 */
int kle_test_apiserver_with_client(kle_test_apiserver *srv, struct kle_client **client);

/**
 * One request to the admin listener (plain HTTP on loopback), e.g.
 *   kle_test_apiserver_admin(&srv, "POST", "/faults",
 *       "{\"verb\":\"update\",\"resource\":\"leases\",\"error\":503,\"count\":2}", NULL, 0);
 *   kle_test_apiserver_admin(&srv, "DELETE", "/faults", NULL, NULL, 0);
 *   kle_test_apiserver_admin(&srv, "GET", "/counters", NULL, buf, sizeof(buf));
 * body may be NULL. The response body (NUL-terminated, truncated to fit)
 * goes to out when out is not NULL. Returns the HTTP status, or -1 on a
 * transport error. Times out after 10 s.
 */
int kle_test_apiserver_admin(const kle_test_apiserver *srv, const char *method, const char *path,
                             const char *body, char *out, size_t outlen);

/** Creates a fresh temp dir (for --data-dir, token files, ...) into out. */
int kle_test_tempdir(char *out, size_t len);

/** Removes a directory tree; returns 0 or -1. */
int kle_test_rmtree(const char *path);

/** Writes text to path (mode 0600); returns 0 or -1. */
int kle_test_write_file(const char *path, const char *text);

#endif
