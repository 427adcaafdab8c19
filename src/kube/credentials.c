/* The client's credentials: bearer token files, client certificate, key
 * and CA files re-read when they change, and the exec credential plugin
 * run in the background. */
#include "kle/client.h"

#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* ---- credentials ------------------------------------------------------- */

void kle_kube__auth_clear(struct auth *a)
{
    if (a->header) {
        volatile char *s = a->header;
        while (*s)
            *s++ = 0;
        free(a->header);
        a->header = NULL;
    }
    kle_buf__free(&a->ca);
    kle_buf__free(&a->cert);
    kle_buf__wipe(&a->key);
}

/* Whether path differs from what st says (and updates st). A file that
 * cannot be stat'ed counts as unchanged: the last good content stays. */
static int file_changed(const char *path, struct file_state *st)
{
    struct stat sb;
    if (!path || stat(path, &sb) != 0)
        return 0;
    int changed = !st->known || sb.st_mtim.tv_sec != st->mtime.tv_sec ||
                  sb.st_mtim.tv_nsec != st->mtime.tv_nsec || sb.st_size != st->size ||
                  sb.st_ino != st->ino;
    int first = !st->known, retry = st->retry;
    st->known = 1;
    st->retry = 0;
    st->mtime = sb.st_mtim;
    st->size = sb.st_size;
    st->ino = sb.st_ino;
    return (changed && !first) || retry;
}

/* Parses PEM: certificate (key 0) or private key (1). */
static EVP_PKEY *pem_key(const kle_buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return k;
}

static X509 *pem_cert(const kle_buf *b)
{
    BIO *bio = BIO_new_mem_buf(b->data, (int)b->len);
    X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    return x;
}

/* Re-reads the CA, client certificate and key files when they changed on
 * disk (kubelet-style rotation), as client-go's transport does. A new pair
 * is taken only when the key matches the certificate, so a rotation caught
 * half-way keeps the old pair until the next request. Called with cred_mu
 * held; connections made with the old files are not reused (libcurl
 * matches connections on the credentials). */
static void refresh_tls_files(kle_client *c)
{
    kle_kube__config *cfg = c->cfg;
    /* A running exec plugin thread reads cfg->ca (provideClusterInfo): the
     * CA is re-read once it is done. */
    if (cfg->ca_file && !c->exec_running && file_changed(cfg->ca_file, &c->ca_state)) {
        kle_buf b = {0};
        X509 *x = NULL;
        if (kle_kube__read_file(&b, cfg->ca_file, 1u << 20) == 0 && (x = pem_cert(&b))) {
            kle_buf__free(&cfg->ca);
            cfg->ca = b;
            KLE_LOG_V(4, "re-read the certificate authority from %s", cfg->ca_file);
        } else {
            kle_buf__free(&b);
            c->ca_state.retry = 1;
        }
        X509_free(x);
    }
    if (cfg->client_cert_file && cfg->client_key_file) {
        int cert_changed = file_changed(cfg->client_cert_file, &c->cert_state);
        int key_changed = file_changed(cfg->client_key_file, &c->key_state);
        if (cert_changed || key_changed) {
            kle_buf cb = {0}, kb = {0};
            X509 *x = NULL;
            EVP_PKEY *k = NULL;
            if (kle_kube__read_file(&cb, cfg->client_cert_file, 1u << 20) == 0 &&
                kle_kube__read_file(&kb, cfg->client_key_file, 1u << 20) == 0 &&
                (x = pem_cert(&cb)) && (k = pem_key(&kb)) && X509_check_private_key(x, k) == 1) {
                kle_buf__free(&cfg->client_cert);
                kle_buf__wipe(&cfg->client_key);
                cfg->client_cert = cb;
                cfg->client_key = kb;
                KLE_LOG_V(4, "re-read the client certificate and key from %s and %s",
                          cfg->client_cert_file, cfg->client_key_file);
            } else {
                kle_buf__free(&cb);
                kle_buf__wipe(&kb);
                c->cert_state.retry = c->key_state.retry = 1;
            }
            X509_free(x);
            EVP_PKEY_free(k);
        }
    }
}

/* Re-reads the token file when it is older than the refresh period, or
 * (force) when its modification time changed. Keeps the last good token
 * when the file cannot be read. Called with cred_mu held. */
static int refresh_file_token(kle_client *c, int force)
{
    int64_t now = kle_kube__now_ns();
    struct stat st;
    int changed = 0;
    if (stat(c->cfg->token_file, &st) == 0)
        changed = st.st_mtim.tv_sec != c->file_token_mtime.tv_sec ||
                  st.st_mtim.tv_nsec != c->file_token_mtime.tv_nsec;
    if (c->file_token.data && !(force && changed) &&
        now - c->file_token_read_ns < c->token_refresh_ms * 1000000)
        return 0;
    kle_buf t = {0};
    int e = kle_kube__read_file(&t, c->cfg->token_file, 1u << 20);
    if (e) {
        if (c->file_token.data) {
            KLE_LOG_W("token file %s: cannot read: %s; keeping the previous token",
                      c->cfg->token_file, strerror(-e));
            c->file_token_read_ns = now;
            return 0;
        }
        return kle_error_set(KLE_EAUTH, "%s: tokenFile %s: cannot read: %s", c->cfg->origin,
                             c->cfg->token_file, strerror(-e));
    }
    while (t.len && strchr(" \t\r\n", t.data[t.len - 1]))
        t.data[--t.len] = '\0';
    if (!t.len) {
        kle_buf__free(&t);
        if (c->file_token.data)
            return 0;
        return kle_error_set(KLE_EAUTH, "%s: tokenFile %s is empty", c->cfg->origin,
                             c->cfg->token_file);
    }
    if (!c->file_token.data || strcmp(t.data, c->file_token.data) != 0)
        KLE_LOG_V(4, "read a new token from %s", c->cfg->token_file);
    kle_buf__wipe(&c->file_token);
    c->file_token = t;
    c->file_token_read_ns = now;
    if (stat(c->cfg->token_file, &st) == 0)
        c->file_token_mtime = st.st_mtim;
    return 0;
}

/* Longest run of an exec plugin (it runs in the background, so this bounds
 * only how long a stuck plugin is waited for before it is killed). */
#define EXEC_RUN_MAX_NS (INT64_C(120) * 1000000000)

static void *exec_main(void *arg)
{
    kle_client *c = arg;
    kle_kube__exec_cred cred = {0};
    int rc = kle_kube__exec_run(&cred, c->cfg, kle_kube__now_ns() + EXEC_RUN_MAX_NS, c->exec_stop);
    pthread_mutex_lock(&c->cred_mu);
    if (rc == 0) {
        kle_kube__exec_cred_clear(&c->exec_cred);
        c->exec_cred = cred;
        c->exec_valid = 1;
        c->exec_fetched_wall_ns = kle_kube__wall_now_ns();
        c->exec_rc = 0;
    } else {
        c->exec_rc = rc;
        snprintf(c->exec_msg, sizeof(c->exec_msg), "%s", kle_error_last()->message);
    }
    c->exec_running = 0;
    c->exec_runs++;
    pthread_mutex_unlock(&c->cred_mu);
    /* The requests that wait for this run go on, on their loops. */
    pthread_mutex_lock(&c->mu);
    for (struct cred_waiter *w = c->waiters; w; w = w->next)
        if (atomic_exchange(&w->waiting, 0))
            kle_loop_post_work(w->loop, &w->post, w->fn, w->data);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* Starts the plugin on its thread unless it runs already. cred_mu held. */
static int exec_start(kle_client *c)
{
    if (c->exec_running)
        return 0;
    if (c->exec_thread_started) {
        pthread_join(c->exec_thread, NULL); /* finished: exec_running is 0 */
        c->exec_thread_started = 0;
    }
    c->exec_rc = 0;
    c->exec_running = 1;
    if (pthread_create(&c->exec_thread, NULL, exec_main, c) != 0) {
        c->exec_running = 0;
        return kle_error_set(KLE_ESYSTEM, "exec plugin: cannot start a thread");
    }
    c->exec_thread_started = 1;
    return 0;
}

/* A usable exec credential in c->exec_cred, 0; AUTH_PENDING while the
 * plugin runs for it; or the error of the run the request waited past.
 * Starts a refresh in the background at 80 % of the credential's lifetime
 * without waiting for it. cred_mu held. */
void kle_kube__cred_waiter_add(kle_client *c, struct cred_waiter *w)
{
    pthread_mutex_lock(&c->mu);
    w->next = c->waiters;
    c->waiters = w;
    pthread_mutex_unlock(&c->mu);
}

void kle_kube__cred_waiter_remove(kle_client *c, struct cred_waiter *w)
{
    pthread_mutex_lock(&c->mu);
    for (struct cred_waiter **p = &c->waiters; *p; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    kle_loop_post_cancel(w->loop, &w->post);
}

static int exec_credential(kle_client *c, struct cred_waiter *waiter, uint64_t *runs)
{
    const kle_kube__config *cfg = c->cfg;
    /* A request that waited for a run gets what that run produced (as
     * when it waited on the thread), even a credential that is already
     * expired by our clock: the server decides. */
    if (*runs && c->exec_runs >= *runs && !c->exec_running) {
        *runs = 0;
        if (c->exec_rc)
            return kle_error_set(c->exec_rc, "%s", c->exec_msg);
        if (c->exec_cred.token.data || c->exec_cred.client_cert.data)
            return 0;
    }
    int64_t now = kle_kube__wall_now_ns();
    if (c->exec_valid && c->exec_cred.expires_wall_ns && now >= c->exec_cred.expires_wall_ns) {
        KLE_LOG_V(4, "exec credential for user \"%s\" expired", cfg->user ? cfg->user : "");
        c->exec_valid = 0;
    }
    if (c->exec_valid) {
        int64_t exp = c->exec_cred.expires_wall_ns, got = c->exec_fetched_wall_ns;
        if (exp && !c->exec_running && now >= got + (exp - got) / 10 * 8) {
            KLE_LOG_V(4,
                      "refreshing the exec credential of user \"%s\" in the background "
                      "(it expires in %lld ms)",
                      cfg->user ? cfg->user : "", (long long)((exp - now) / 1000000));
            exec_start(c); /* on failure the current credential is used */
        }
        return 0;
    }
    int rc = exec_start(c);
    if (rc)
        return rc;
    *runs = c->exec_runs + 1;
    atomic_store(&waiter->waiting, 1);
    return AUTH_PENDING;
}

int kle_kube__auth_wait_timeout(kle_client *c, const char *method, const char *path)
{
    const char *user = c->cfg->user ? c->cfg->user : "";
    return kle_error_set(KLE_ETIMEOUT,
                         "%s %s: timed out waiting for the exec plugin of user \"%s\" (it keeps "
                         "running; later calls use its credential)",
                         method, path, user);
}

int kle_kube__auth_try(kle_client *c, struct auth *a, struct cred_waiter *waiter, uint64_t *runs)
{
    kle_kube__config *cfg = c->cfg;
    int rc = 0;
    memset(a, 0, sizeof(*a));
    /* Held briefly: never across a plugin run. */
    pthread_mutex_lock(&c->cred_mu);
    const char *token = NULL;
    refresh_tls_files(c);
    if (cfg->ca.len && kle_buf__set(&a->ca, cfg->ca.data, cfg->ca.len))
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    if (!rc && cfg->exec) {
        a->from_exec = 1;
        rc = exec_credential(c, waiter, runs);
        if (!rc) {
            token = c->exec_cred.token.data;
            if (c->exec_cred.client_cert.data &&
                (kle_buf__set(&a->cert, c->exec_cred.client_cert.data,
                              c->exec_cred.client_cert.len) ||
                 kle_buf__set(&a->key, c->exec_cred.client_key.data, c->exec_cred.client_key.len)))
                rc = kle_error_set(KLE_ENOMEM, "out of memory");
        }
    }
    if (!rc && !token && cfg->token_file) {
        a->from_file = 1;
        rc = refresh_file_token(c, 0);
        token = c->file_token.data;
    }
    if (!rc && !token && cfg->token.data)
        token = cfg->token.data;
    if (!rc && !a->cert.data && cfg->client_cert.data &&
        (kle_buf__set(&a->cert, cfg->client_cert.data, cfg->client_cert.len) ||
         kle_buf__set(&a->key, cfg->client_key.data, cfg->client_key.len)))
        rc = kle_error_set(KLE_ENOMEM, "out of memory");
    if (!rc && token) {
        if (!(a->header = str_printf("Authorization: Bearer %s", token)))
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
    } else if (!rc && cfg->username) {
        char *up = str_printf("%s:%s", cfg->username, cfg->password.data ? cfg->password.data : "");
        kle_buf b64 = {0};
        if (!up || kle_kube__base64_encode(&b64, (const unsigned char *)up, strlen(up)) ||
            !(a->header = str_printf("Authorization: Basic %s", b64.data)))
            rc = kle_error_set(KLE_ENOMEM, "out of memory");
        if (up) {
            volatile char *s = up;
            while (*s)
                *s++ = 0;
        }
        free(up);
        kle_buf__wipe(&b64);
    }
    pthread_mutex_unlock(&c->cred_mu);
    if (rc)
        kle_kube__auth_clear(a);
    return rc;
}

/* After a 401: drops the cached exec credential or re-reads a changed token
 * file. Returns 1 when retrying may help. */
int kle_kube__auth_invalidate(kle_client *c, int from_exec, int from_file)
{
    int retry = 0;
    pthread_mutex_lock(&c->cred_mu);
    if (from_exec) {
        KLE_LOG_V(4, "401 Unauthorized: running the exec plugin again");
        c->exec_valid = 0;
        retry = 1;
    } else if (from_file) {
        char *old = c->file_token.data ? strdup(c->file_token.data) : NULL;
        if (refresh_file_token(c, 1) == 0 && old && c->file_token.data &&
            strcmp(old, c->file_token.data) != 0)
            retry = 1;
        if (old) {
            volatile char *s = old;
            while (*s)
                *s++ = 0;
        }
        free(old);
    }
    pthread_mutex_unlock(&c->cred_mu);
    return retry;
}
