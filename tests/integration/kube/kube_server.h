/* Starts and stops a kle-apiserver for the client's integration tests. */
#ifndef KLE_TESTS_KUBE_SERVER_H
#define KLE_TESTS_KUBE_SERVER_H

#include <sys/types.h>

#include "support/apiserver.h"

typedef struct kube_server {
    kle_test_apiserver h; /* the shared harness (tests/support/apiserver.c) */
    char dir[256];        /* the test's directory, for "@" in flags */
    char server[128];     /* https://127.0.0.1:PORT */
    char port[16];
    char admin[128];      /* http://127.0.0.1:PORT of the admin listener */
    char token[128];      /* admin token */
    char ca_data[4096];   /* base64 CA of the server */
    char kubeconfig[320]; /* admin kubeconfig written by the server */
} kube_server;

/* Starts a server on a free loopback port through the shared harness with
 * the extra flags (NULL-terminated; "@" in them is replaced by dir, where
 * the files they name were written first). */
int kube_server_start(kube_server *s, const char *dir, const char *const *extra);
void kube_server_stop(kube_server *s);

/* Sends a request to the admin listener; returns the HTTP status. */
long kube_server_admin(const kube_server *s, const char *method, const char *path,
                       const char *body);

/* Writes a file (0600, or 0755 when exec) with printf-style content. */
void kube_write_file(const char *path, int exec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
