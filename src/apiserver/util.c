/* Process-wide state and small helpers shared by every unit: the shutdown
 * flag, the watch generation, clocks, random identifiers, logging. */
#include "apiserver/apiserver.h"

#include "base/log.h"
#include "base/now.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

atomic_int kle_apiserver__shutting_down;
atomic_uint kle_apiserver__watch_generation;
int kle_apiserver__bookmark_interval = 60;
int kle_apiserver__verbose;

int64_t kle_apiserver__now_ns(void)
{
    return kle_now__ns(CLOCK_MONOTONIC);
}

void kle_apiserver__timestamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void kle_apiserver__random_hex(char *out, size_t nbytes)
{
    unsigned char raw[64];
    static const char hex[] = "0123456789abcdef";
    if (nbytes > sizeof(raw))
        nbytes = sizeof(raw);
    RAND_bytes(raw, (int)nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * nbytes] = '\0';
}

void kle_apiserver__new_uid(char *out)
{
    unsigned char r[16];
    RAND_bytes(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

json_object *kle_apiserver__str_array(const char *const *v)
{
    json_object *a = json_object_new_array();
    for (; *v; v++)
        json_object_array_add(a, json_object_new_string(*v));
    return a;
}

/* libmicrohttpd's own messages (client disconnects, TLS handshake
 * failures) go to the log at verbosity 2. */
void kle_apiserver__mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    KLE_LOG_V(2, "libmicrohttpd: %s", buf);
}
