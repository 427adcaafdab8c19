/* Short-lived credentials for tests that rotate them (--issue-credentials):
 * client certificates signed by the server's client CA and bearer tokens,
 * each with a lifetime; an expired one is refused (401) like any unknown
 * credential. Asked for on the admin listener (POST /credentials). */
#include "apiserver/apiserver.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static X509 *ca_cert;
static EVP_PKEY *ca_key;

typedef struct issued_token {
    char token[80];
    kle_apiserver__user user;
    time_t expires;
} issued_token;

static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;
static issued_token *toks;
static size_t ntoks;

static char *pem_string(int (*write)(BIO *, void *), void *obj)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long n;
    if (!b)
        return NULL;
    if (write(b, obj) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
        (out = malloc((size_t)n + 1))) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    BIO_free(b);
    return out;
}

static int write_x509(BIO *b, void *x)
{
    return PEM_write_bio_X509(b, x);
}

static int write_pkey(BIO *b, void *k)
{
    return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    X509_add_ext(cert, e, -1);
    X509_EXTENSION_free(e);
    return 0;
}

/* A certificate for key named cn (and O=each of the comma-separated
 * groups), valid from a minute ago for ttl seconds. */
static X509 *new_cert(EVP_PKEY *key, const char *cn, const char *groups, long ttl)
{
    X509 *x = X509_new();
    unsigned char serial[16];
    if (!x)
        return NULL;
    X509_set_version(x, 2);
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), ttl);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    if (groups) {
        char g[512];
        snprintf(g, sizeof(g), "%s", groups);
        for (char *save = NULL, *t = strtok_r(g, ",", &save); t; t = strtok_r(NULL, ",", &save))
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)t, -1, -1,
                                       0);
    }
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, ca_cert ? X509_get_subject_name(ca_cert) : name);
    return x;
}

static char *read_text(const char *path)
{
    char err[256];
    return kle_apiserver__read_file(path, 1u << 20, err, sizeof(err));
}

static int write_text(const char *path, const char *text)
{
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    chmod(tmp, 0600);
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

int kle_apiserver__issuer_init(const char *dir, char **ca_pem, char *err, size_t errlen)
{
    char crt[4096], key[4096];
    char *ct = NULL, *kt = NULL;
    *ca_pem = NULL;
    if (dir) {
        snprintf(crt, sizeof(crt), "%s/client-ca.crt", dir);
        snprintf(key, sizeof(key), "%s/client-ca.key", dir);
        if (access(crt, R_OK) == 0 && access(key, R_OK) == 0) {
            ct = read_text(crt);
            kt = read_text(key);
        }
    }
    if (ct && kt) {
        BIO *b = BIO_new_mem_buf(ct, -1);
        ca_cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        b = BIO_new_mem_buf(kt, -1);
        ca_key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
    } else {
        ca_key = EVP_EC_gen("P-256");
        ca_cert =
            ca_key ? new_cert(ca_key, "kle-apiserver-client-ca", NULL, 10L * 365 * 86400) : NULL;
        if (ca_cert && (ext(ca_cert, ca_cert, NID_basic_constraints, "critical,CA:TRUE") ||
                        ext(ca_cert, ca_cert, NID_key_usage, "critical,keyCertSign,cRLSign") ||
                        ext(ca_cert, ca_cert, NID_subject_key_identifier, "hash") ||
                        !X509_sign(ca_cert, ca_key, EVP_sha256()))) {
            X509_free(ca_cert);
            ca_cert = NULL;
        }
    }
    if (kt)
        OPENSSL_cleanse(kt, strlen(kt));
    free(ct);
    free(kt);
    if (!ca_cert || !ca_key) {
        snprintf(err, errlen, "--issue-credentials: cannot make the client CA: %s",
                 ERR_error_string(ERR_get_error(), NULL));
        return -1;
    }
    *ca_pem = pem_string(write_x509, ca_cert);
    if (dir && access(crt, R_OK) != 0) {
        char *k = pem_string(write_pkey, ca_key);
        int bad = !k || !*ca_pem || write_text(crt, *ca_pem) || write_text(key, k);
        if (k)
            OPENSSL_cleanse(k, strlen(k));
        free(k);
        if (bad) {
            snprintf(err, errlen, "--issue-credentials: cannot write %s: %s", crt, strerror(errno));
            return -1;
        }
    }
    return *ca_pem ? 0 : -1;
}

int kle_apiserver__issue_cert(const char *user, const char *groups, long ttl, char **cert_pem,
                              char **key_pem)
{
    *cert_pem = *key_pem = NULL;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = k ? new_cert(k, user, groups, ttl) : NULL;
    int rc = -1;
    if (x && !ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
        !ext(x, ca_cert, NID_key_usage, "critical,digitalSignature") &&
        !ext(x, ca_cert, NID_ext_key_usage, "clientAuth") &&
        !ext(x, ca_cert, NID_authority_key_identifier, "keyid:always") &&
        X509_sign(x, ca_key, EVP_sha256())) {
        *cert_pem = pem_string(write_x509, x);
        *key_pem = pem_string(write_pkey, k);
        rc = *cert_pem && *key_pem ? 0 : -1;
    }
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

int kle_apiserver__issue_token(const char *user, const char *groups, long ttl, char *out,
                               size_t outlen, time_t *expires)
{
    issued_token t, *nt;
    char hex[65];
    time_t now = time(NULL);
    memset(&t, 0, sizeof(t));
    kle_apiserver__random_hex(hex, 32);
    snprintf(t.token, sizeof(t.token), "kle-issued.%s", hex);
    snprintf(t.user.name, sizeof(t.user.name), "%s", user);
    snprintf(t.user.uid, sizeof(t.user.uid), "issued-%.32s", hex + 32);
    snprintf(t.user.groups, sizeof(t.user.groups), "%s", groups ? groups : "");
    t.expires = now + ttl;
    pthread_mutex_lock(&tok_mu);
    for (size_t i = 0; i < ntoks;) {
        if (toks[i].expires <= now) {
            OPENSSL_cleanse(&toks[i], sizeof(toks[i]));
            toks[i] = toks[--ntoks];
        } else {
            i++;
        }
    }
    nt = realloc(toks, (ntoks + 1) * sizeof(*nt));
    if (!nt) {
        pthread_mutex_unlock(&tok_mu);
        return -1;
    }
    toks = nt;
    toks[ntoks++] = t;
    pthread_mutex_unlock(&tok_mu);
    snprintf(out, outlen, "%s", t.token);
    *expires = t.expires;
    OPENSSL_cleanse(&t, sizeof(t));
    return 0;
}

int kle_apiserver__issued_token_user(const char *tok, kle_apiserver__user *u)
{
    size_t tl = strlen(tok);
    int ok = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&tok_mu);
    for (size_t i = 0; i < ntoks; i++) {
        if (strlen(toks[i].token) == tl && CRYPTO_memcmp(toks[i].token, tok, tl) == 0) {
            if (toks[i].expires > now) {
                *u = toks[i].user;
                ok = 1;
            }
            break;
        }
    }
    pthread_mutex_unlock(&tok_mu);
    return ok;
}

/* POST /credentials {"kind":"certificate"|"token","user":"u",
 * "groups":["g",...],"ttlSeconds":n}. */
int kle_apiserver__issue_request(const char *body, json_object **out, char *err, size_t errlen)
{
    json_object *req = body ? json_tokener_parse(body) : NULL, *v;
    const char *kind = NULL, *user = NULL;
    char groups[512] = "";
    long ttl = 0;
    int code = 400;
    *out = NULL;
    if (!ca_cert) {
        snprintf(err, errlen, "start kle-apiserver with --issue-credentials");
        json_object_put(req);
        return 404;
    }
    if (!req || !json_object_is_type(req, json_type_object)) {
        snprintf(err, errlen, "expected a JSON object");
        goto out;
    }
    if (json_object_object_get_ex(req, "kind", &v))
        kind = json_object_get_string(v);
    if (json_object_object_get_ex(req, "user", &v))
        user = json_object_get_string(v);
    if (json_object_object_get_ex(req, "ttlSeconds", &v))
        ttl = (long)json_object_get_int64(v);
    if (json_object_object_get_ex(req, "groups", &v) && json_object_is_type(v, json_type_array)) {
        size_t off = 0;
        for (size_t i = 0; i < json_object_array_length(v) && off < sizeof(groups); i++)
            off += (size_t)snprintf(groups + off, sizeof(groups) - off, "%s%s", i ? "," : "",
                                    json_object_get_string(json_object_array_get_idx(v, i)));
    }
    if (!kind || !user || !*user || ttl < 1 || ttl > 10L * 365 * 86400) {
        snprintf(err, errlen,
                 "expected kind (certificate or token), user and ttlSeconds (1 s to 10 years)");
        goto out;
    }
    time_t expires = time(NULL) + ttl;
    if (strcmp(kind, "certificate") == 0) {
        char *c, *k;
        if (kle_apiserver__issue_cert(user, groups, ttl, &c, &k) != 0) {
            snprintf(err, errlen, "cannot issue a certificate");
            free(c);
            free(k);
            code = 500;
            goto out;
        }
        *out = json_object_new_object();
        json_object_object_add(*out, "certificate", json_object_new_string(c));
        json_object_object_add(*out, "key", json_object_new_string(k));
        OPENSSL_cleanse(k, strlen(k));
        free(c);
        free(k);
    } else if (strcmp(kind, "token") == 0) {
        char tok[80];
        if (kle_apiserver__issue_token(user, groups, ttl, tok, sizeof(tok), &expires) != 0) {
            snprintf(err, errlen, "out of memory");
            code = 500;
            goto out;
        }
        *out = json_object_new_object();
        json_object_object_add(*out, "token", json_object_new_string(tok));
        OPENSSL_cleanse(tok, sizeof(tok));
    } else {
        snprintf(err, errlen, "kind must be certificate or token");
        goto out;
    }
    {
        char ts[40];
        struct tm tm;
        gmtime_r(&expires, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_object_add(*out, "expirationTimestamp", json_object_new_string(ts));
    }
    code = 201;
out:
    json_object_put(req);
    return code;
}

void kle_apiserver__issuer_free(void)
{
    X509_free(ca_cert);
    EVP_PKEY_free(ca_key);
    ca_cert = NULL;
    ca_key = NULL;
    pthread_mutex_lock(&tok_mu);
    if (toks)
        OPENSSL_cleanse(toks, ntoks * sizeof(*toks));
    free(toks);
    toks = NULL;
    ntoks = 0;
    pthread_mutex_unlock(&tok_mu);
}
