/*
 * Identities (include/kle/record.h): kle_identity_check(), the rules a
 * holder identity follows, and kle_default_identity(), client-go's default
 * (the pod's name, else the host name and a random UUID).
 */
#include "kle/record.h"
#include "kle/sys/errors.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/*
 * Length of the UTF-8 sequence at s (1..4), or 0 when it is not valid
 * UTF-8: overlong forms, surrogates and code points past U+10FFFF are not.
 * Sets *cp to the code point.
 */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t n;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

int kle_identity_check(const char *identity)
{
    if (!identity || !*identity)
        return kle_error_set(KLE_EINVAL, "an identity is required (it is empty)");
    size_t len = strlen(identity);
    if (len > KLE_IDENTITY_MAX)
        return kle_error_set(KLE_EINVAL,
                             "identity of %zu bytes is longer than the limit of %d bytes", len,
                             KLE_IDENTITY_MAX);
    const unsigned char *s = (const unsigned char *)identity;
    for (size_t i = 0; i < len;) {
        uint32_t cp = 0;
        size_t n = utf8_next(s + i, &cp);
        if (n == 0)
            return kle_error_set(KLE_EINVAL,
                                 "identity is not valid UTF-8 at byte %zu (0x%02x): the API "
                                 "server would store other bytes",
                                 i, s[i]);
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return kle_error_set(KLE_EINVAL,
                                 "identity contains control character U+%04X at byte %zu: "
                                 "control characters are not allowed",
                                 (unsigned)cp, i);
        i += n;
    }
    return 0;
}

int kle_default_identity(char **out)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "kle_default_identity: out is NULL");
    *out = NULL;
    const char *pod = getenv("POD_NAME");
    char buf[512];
    if (pod && *pod) {
        snprintf(buf, sizeof(buf), "%s", pod);
    } else {
        char host[256];
        unsigned char r[16];
        if (gethostname(host, sizeof(host)) < 0 || !host[0])
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
            return kle_error_set(KLE_ESYSTEM, "kle_default_identity: no randomness available");
        r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* UUID version 4 */
        r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
        snprintf(buf, sizeof(buf),
                 "%s_%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", host,
                 r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
                 r[13], r[14], r[15]);
    }
    if (!(*out = strdup(buf)))
        return kle_error_set(KLE_ENOMEM, "kle_default_identity: out of memory");
    return 0;
}
