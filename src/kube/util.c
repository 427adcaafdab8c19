/* Small helpers of the API client: files, base64, time. */
#include "kle/client.h"
#include "kle/rest.h"
#include "kle/record.h"
#include "base/versioned.h"
#include "kle/sys/errors.h"
#include "kube/kube.h"
#include "base/now.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int kle_kube__read_file(kle_buf *buf, const char *path, size_t max)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return -EISDIR;
    }
    size_t cap = 4096, len = 0;
    char *data = malloc(cap);
    if (!data) {
        close(fd);
        return -ENOMEM;
    }
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max + 1) {
                free(data);
                close(fd);
                return -EFBIG;
            }
            char *grown = realloc(data, cap * 2);
            if (!grown) {
                free(data);
                close(fd);
                return -ENOMEM;
            }
            data = grown;
            cap *= 2;
        }
        ssize_t n = read(fd, data + len, cap - len - 1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(data);
            close(fd);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            free(data);
            close(fd);
            return -EFBIG;
        }
    }
    close(fd);
    data[len] = '\0';
    kle_buf__wipe(buf);
    buf->data = data;
    buf->len = len;
    buf->cap = cap;
    return 0;
}

int kle_kube__base64_decode(kle_buf *out, const char *in, size_t len)
{
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    if (!ctx)
        return -1;
    /* EVP_DecodeUpdate ignores whitespace but wants the padding; a
     * trailing group without padding is accepted by adding it. */
    size_t sig = 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", in[i]))
            sig++;
    unsigned char *data = malloc(len + 8);
    if (!data) {
        EVP_ENCODE_CTX_free(ctx);
        return -1;
    }
    int outl = 0, total = 0, rc = 0;
    EVP_DecodeInit(ctx);
    if (len > INT32_MAX / 2)
        rc = -1;
    if (rc == 0 && EVP_DecodeUpdate(ctx, data, &outl, (const unsigned char *)in, (int)len) < 0)
        rc = -1;
    total = outl;
    if (rc == 0 && sig % 4 != 0) {
        static const char pad[] = "===";
        if (sig % 4 == 1) {
            rc = -1;
        } else if (EVP_DecodeUpdate(ctx, data + total, &outl, (const unsigned char *)pad,
                                    (int)(4 - sig % 4)) < 0) {
            rc = -1;
        } else {
            total += outl;
        }
    }
    if (rc == 0) {
        if (EVP_DecodeFinal(ctx, data + total, &outl) < 0)
            rc = -1;
        else
            total += outl;
    }
    EVP_ENCODE_CTX_free(ctx);
    if (rc == 0 && kle_buf__set(out, (const char *)data, (size_t)total) != 0)
        rc = -1;
    OPENSSL_cleanse(data, len + 8);
    free(data);
    return rc;
}

int kle_kube__base64_encode(kle_buf *out, const unsigned char *in, size_t len)
{
    if (len > INT32_MAX / 2)
        return -1;
    size_t cap = 4 * ((len + 2) / 3) + 1;
    unsigned char *data = malloc(cap);
    if (!data)
        return -1;
    int n = EVP_EncodeBlock(data, in, (int)len);
    int rc = kle_buf__set(out, (const char *)data, (size_t)n);
    OPENSSL_cleanse(data, cap);
    free(data);
    return rc;
}

/*
 * RFC 3339 with a zone required: an expiry without one is refused rather
 * than guessed. The parsing itself is libkle's kle_time_parse().
 */
int kle_kube__parse_time(const char *s, int64_t *out_ns)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 20)
        return -1;
    int zoned = s[n - 1] == 'Z' || s[n - 1] == 'z' ||
                ((s[n - 6] == '+' || s[n - 6] == '-') && s[n - 3] == ':');
    if (!zoned)
        return -1;
    return kle_time_parse(out_ns, s) == 0 ? 0 : -1;
}

int64_t kle_kube__now_ns(void)
{
    return kle_now__ns(CLOCK_MONOTONIC);
}

int64_t kle_kube__wall_now_ns(void)
{
    return kle_now__ns(CLOCK_REALTIME);
}

int kle_client_opts_init(kle_client_opts *ptr, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_client_opts_init", ptr, version, KLE_CLIENT_OPTS_VERSION, kle_client_opts,
                     KLE_CLIENT_OPTS_INIT, sizeof(*ptr));
    return 0;
}

int kle_request_opts_init(kle_request_opts *ptr, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_request_opts_init", ptr, version, KLE_REQUEST_OPTS_VERSION,
                     kle_request_opts, KLE_REQUEST_OPTS_INIT, sizeof(*ptr));
    return 0;
}

int kle_watch_opts_init(kle_watch_opts *ptr, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_watch_opts_init", ptr, version, KLE_WATCH_OPTS_VERSION, kle_watch_opts,
                     KLE_WATCH_OPTS_INIT, sizeof(*ptr));
    return 0;
}

int kle_kube__valid_name(const char *s, int label)
{
    /* The API server's rules (IsDNS1123Subdomain, IsDNS1123Label). */
    size_t n = strlen(s), max = label ? 63 : 253;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (alnum)
            continue;
        if (!(c == '-' || (!label && c == '.')) || i == 0 || i == n - 1)
            return 0;
        if (c == '.' && (s[i - 1] == '.' || s[i - 1] == '-' || s[i + 1] == '-'))
            return 0; /* Each dot-separated part is a label. */
    }
    return 1;
}
