/* Certificates: a CA and a serving certificate generated at start, and the
 * subject of client certificates. */
#include "apiserver/apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *kle_apiserver__read_file(const char *path, size_t max, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    kle_buf b = {0};
    char chunk[8192];
    size_t n;

    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (b.len + n > max || kle_buf__append(&b, chunk, n) != 0) {
            snprintf(err, errlen, "%s: file too large", path);
            fclose(f);
            kle_buf__free(&b);
            errno = EFBIG;
            return NULL;
        }
    }
    fclose(f);
    if (!b.data)
        return strdup("");
    return b.data;
}

static char *pem_of(int (*write)(BIO *, const void *), const void *obj)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out = NULL;
    long len;
    if (!bio)
        return NULL;
    if (write(bio, obj)) {
        len = BIO_get_mem_data(bio, &data);
        out = malloc((size_t)len + 1);
        if (out) {
            memcpy(out, data, (size_t)len);
            out[len] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

static int write_cert(BIO *b, const void *x)
{
    return PEM_write_bio_X509(b, (X509 *)x);
}
static int write_key(BIO *b, const void *k)
{
    return PEM_write_bio_PrivateKey(b, (EVP_PKEY *)k, NULL, NULL, 0, NULL, NULL);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!ext)
        return -1;
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return 0;
}

static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key)
{
    X509 *x = X509_new();
    unsigned char serial[16];
    BIGNUM *bn;
    X509_NAME *name;

    if (!x)
        return NULL;
    X509_set_version(x, 2);
    RAND_bytes(serial, sizeof(serial));
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    return x;
}

int kle_apiserver__tls_generate(kle_apiserver__tls *tls, const char *host, char *err, size_t errlen)
{
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *cert = NULL;
    char san[512];
    unsigned char addr[16];
    int rc = -1;

    memset(tls, 0, sizeof(*tls));
    cakey = EVP_EC_gen("P-256");
    key = EVP_EC_gen("P-256");
    if (!cakey || !key)
        goto out;
    ca = make_cert(cakey, "kle-apiserver-ca", NULL, NULL);
    if (!ca || add_ext(ca, ca, NID_basic_constraints, "critical,CA:TRUE") ||
        add_ext(ca, ca, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
        add_ext(ca, ca, NID_subject_key_identifier, "hash") || !X509_sign(ca, cakey, EVP_sha256()))
        goto out;
    cert = make_cert(key, "kle-apiserver", ca, cakey);
    if (host && strcmp(host, "localhost") && strcmp(host, "127.0.0.1") && strcmp(host, "::1")) {
        int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1,%s:%s", is_ip ? "IP" : "DNS",
                 host);
    } else {
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
    }
    if (!cert || add_ext(cert, ca, NID_basic_constraints, "critical,CA:FALSE") ||
        add_ext(cert, ca, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
        add_ext(cert, ca, NID_ext_key_usage, "serverAuth") ||
        add_ext(cert, ca, NID_subject_alt_name, san) ||
        add_ext(cert, ca, NID_authority_key_identifier, "keyid:always") ||
        !X509_sign(cert, cakey, EVP_sha256()))
        goto out;
    tls->ca_pem = pem_of(write_cert, ca);
    tls->cert_pem = pem_of(write_cert, cert);
    tls->key_pem = pem_of(write_key, key);
    if (tls->ca_pem && tls->cert_pem && tls->key_pem)
        rc = 0;
out:
    if (rc != 0) {
        snprintf(err, errlen, "generating the serving certificate failed: %s",
                 ERR_error_string(ERR_get_error(), NULL));
        kle_apiserver__tls_free(tls);
    }
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(cakey);
    EVP_PKEY_free(key);
    return rc;
}

void kle_apiserver__tls_free(kle_apiserver__tls *tls)
{
    if (tls->key_pem)
        OPENSSL_cleanse(tls->key_pem, strlen(tls->key_pem));
    free(tls->ca_pem);
    free(tls->cert_pem);
    free(tls->key_pem);
    memset(tls, 0, sizeof(*tls));
}

int kle_apiserver__cert_subject(const unsigned char *der, size_t len, char *user, size_t userlen,
                                char *groups, size_t groupslen)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    X509_NAME *name;
    int idx = -1;
    size_t glen = 0;

    if (!x)
        return -1;
    name = X509_get_subject_name(x);
    user[0] = '\0';
    groups[0] = '\0';
    X509_NAME_get_text_by_NID(name, NID_commonName, user, (int)userlen);
    while ((idx = X509_NAME_get_index_by_NID(name, NID_organizationName, idx)) >= 0) {
        ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
        int n = snprintf(groups + glen, groupslen - glen, "%s%.*s", glen ? "," : "",
                         ASN1_STRING_length(s), (const char *)ASN1_STRING_get0_data(s));
        if (n < 0 || (size_t)n >= groupslen - glen)
            break;
        glen += (size_t)n;
    }
    X509_free(x);
    return user[0] ? 0 : -1;
}
