/* Starts and stops a kle-apiserver for the client's integration tests. */
#ifndef KLE_TESTS_KUBE_SERVER_H
#define KLE_TESTS_KUBE_SERVER_H

#include <sys/types.h>

typedef struct kube_server {
    pid_t pid;
    char dir[256];        /* temporary directory, removed by kube_server_stop */
    char server[128];     /* https://127.0.0.1:PORT */
    char port[16];
    char admin[128];      /* http://127.0.0.1:PORT of the admin listener */
    char token[128];      /* admin token */
    char ca_data[4096];   /* base64 CA of the server */
    char kubeconfig[300]; /* admin kubeconfig written by the server */
} kube_server;

/* Starts a server on a free loopback port with the extra flags (NULL-
 * terminated; "@" in them is replaced by the server's directory). Files
 * the flags name can be written into dir first: pass a prepared dir. */
int kube_server_start(kube_server *s, const char *dir, const char *const *extra);
void kube_server_stop(kube_server *s);

/* Sends a request to the admin listener; returns the HTTP status. */
long kube_server_admin(const kube_server *s, const char *method, const char *path,
                       const char *body);

/* Writes a file (0600, or 0755 when exec) with printf-style content. */
void kube_write_file(const char *path, int exec, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
