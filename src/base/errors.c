#include "kle/elector.h"
#include "kle/sys/errors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/* The last error of each thread. Fixed-size storage, so nothing is
 * allocated per thread and nothing leaks when a thread exits. */
static _Thread_local struct {
    kle_error pub;
    char reason[64];
    char message[2048];
} last_error = {{0, 0, 0, "", ""}, "", ""};

static const struct {
    int code;
    const char *name;
    const char *text;
} error_table[] = {
    {KLE_OK, "KLE_OK", "success"},
    {KLE_ERROR, "KLE_ERROR", "error"},
    {KLE_EINVAL, "KLE_EINVAL", "invalid argument"},
    {KLE_ENOMEM, "KLE_ENOMEM", "out of memory"},
    {KLE_ENOTFOUND, "KLE_ENOTFOUND", "not found"},
    {KLE_ECONFLICT, "KLE_ECONFLICT", "conflict: the object has been modified"},
    {KLE_EEXISTS, "KLE_EEXISTS", "already exists"},
    {KLE_EUNAUTHORIZED, "KLE_EUNAUTHORIZED", "unauthorized"},
    {KLE_EFORBIDDEN, "KLE_EFORBIDDEN", "forbidden"},
    {KLE_EUNPROCESSABLE, "KLE_EUNPROCESSABLE", "invalid object"},
    {KLE_ETOOMANYREQUESTS, "KLE_ETOOMANYREQUESTS", "too many requests"},
    {KLE_ESERVER, "KLE_ESERVER", "server error"},
    {KLE_ETRANSPORT, "KLE_ETRANSPORT", "transport error"},
    {KLE_ETIMEOUT, "KLE_ETIMEOUT", "timed out"},
    {KLE_ECANCELED, "KLE_ECANCELED", "cancelled"},
    {KLE_EBADRECORD, "KLE_EBADRECORD", "unreadable leader election record"},
    {KLE_EBADRESPONSE, "KLE_EBADRESPONSE", "malformed response"},
    {KLE_ETOOLARGE, "KLE_ETOOLARGE", "too large"},
    {KLE_EKUBECONFIG, "KLE_EKUBECONFIG", "invalid kubeconfig"},
    {KLE_EAUTH, "KLE_EAUTH", "credentials unavailable"},
    {KLE_EBADREQUEST, "KLE_EBADREQUEST", "bad request"},
    {KLE_EGONE, "KLE_EGONE", "resource version too old"},
    {KLE_ESTATE, "KLE_ESTATE", "invalid state for this call"},
    {KLE_EVERSION, "KLE_EVERSION", "unsupported version"},
    {KLE_ESYSTEM, "KLE_ESYSTEM", "system call failed"},
    {KLE_EUNHEALTHY, "KLE_EUNHEALTHY", "unhealthy"},
    {KLE_EAPI, "KLE_EAPI", "API error"},
    {KLE_EIDENTITY, "KLE_EIDENTITY", "identity in use by another replica"},
};

const char *kle_strerror(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == code)
            return error_table[i].text;
    return "unknown error";
}

const char *kle_error_name(int code)
{
    for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]); i++)
        if (error_table[i].code == code)
            return error_table[i].name;
    return "KLE_E?";
}

const kle_error *kle_error_last(void)
{
    last_error.pub.reason = last_error.reason;
    last_error.pub.message = last_error.message;
    return &last_error.pub;
}

void kle_error_clear(void)
{
    last_error.pub.code = KLE_OK;
    last_error.pub.http_status = 0;
    last_error.pub.retry_after_ns = 0;
    last_error.reason[0] = '\0';
    last_error.message[0] = '\0';
}

static void set_message(const char *fmt, va_list ap)
{
    vsnprintf(last_error.message, sizeof(last_error.message), fmt, ap);
}

int kle_error_set(int code, const char *fmt, ...)
{
    va_list ap;

    last_error.pub.code = code;
    last_error.pub.http_status = 0;
    last_error.pub.retry_after_ns = 0;
    last_error.reason[0] = '\0';
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return code;
}

int kle_error_set_api(int code, int http_status, const char *reason, int64_t retry_after_ns,
                      const char *fmt, ...)
{
    va_list ap;

    last_error.pub.code = code;
    last_error.pub.http_status = http_status;
    last_error.pub.retry_after_ns = retry_after_ns;
    snprintf(last_error.reason, sizeof(last_error.reason), "%s", reason ? reason : "");
    va_start(ap, fmt);
    set_message(fmt, ap);
    va_end(ap);
    return code;
}

int kle_error_prefix(const char *fmt, ...)
{
    char prefix[512];
    char old[sizeof(last_error.message)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, last_error.message, sizeof(old));
    /* Truncation of an over-long message is intended. */
    size_t cap = sizeof(last_error.message) - 1;
    size_t plen = strnlen(prefix, cap);
    size_t olen = strnlen(old, cap - plen);
    memcpy(last_error.message, prefix, plen);
    memcpy(last_error.message + plen, old, olen);
    last_error.message[plen + olen] = '\0';
    return last_error.pub.code;
}

int kle_error_is_lost_leadership(int rc)
{
    return rc == KLE_ETIMEOUT || rc == KLE_ECONFLICT;
}
