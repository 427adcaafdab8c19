/* Status and error mapping: HTTP status codes and Kubernetes Status
 * objects to libkle error codes and messages. */
#include "kle/client.h"
#include "kle/rest.h"

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kle/sys/errors.h"
#include "kube/client_internal.h"

/* ---- errors ------------------------------------------------------------ */

static const char *reason_for_status(long status)
{
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 405:
        return "MethodNotAllowed";
    case 406:
        return "NotAcceptable";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 413:
        return "RequestEntityTooLarge";
    case 415:
        return "UnsupportedMediaType";
    case 422:
        return "Invalid";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalError";
    case 503:
        return "ServiceUnavailable";
    case 504:
        return "Timeout";
    default:
        return status >= 500 ? "InternalError" : "Unknown";
    }
}

static int code_for(long status, const char *reason)
{
    static const struct {
        const char *reason;
        int code;
    } by_reason[] = {
        {"NotFound", KLE_ENOTFOUND},
        {"AlreadyExists", KLE_EEXISTS},
        {"Conflict", KLE_ECONFLICT},
        {"Unauthorized", KLE_EUNAUTHORIZED},
        {"Forbidden", KLE_EFORBIDDEN},
        {"Invalid", KLE_EUNPROCESSABLE},
        {"TooManyRequests", KLE_ETOOMANYREQUESTS},
        {"Expired", KLE_EGONE},
        {"Gone", KLE_EGONE},
        {"BadRequest", KLE_EBADREQUEST},
        {"RequestEntityTooLarge", KLE_ETOOLARGE},
        {"InternalError", KLE_ESERVER},
        {"ServiceUnavailable", KLE_ESERVER},
        {"Timeout", KLE_ESERVER},
        {"ServerTimeout", KLE_ESERVER},
    };
    if (reason)
        for (size_t i = 0; i < sizeof(by_reason) / sizeof(by_reason[0]); i++)
            if (strcmp(reason, by_reason[i].reason) == 0)
                return by_reason[i].code;
    switch (status) {
    case 400:
        return KLE_EBADREQUEST;
    case 401:
        return KLE_EUNAUTHORIZED;
    case 403:
        return KLE_EFORBIDDEN;
    case 404:
        return KLE_ENOTFOUND;
    case 409:
        return KLE_ECONFLICT;
    case 410:
        return KLE_EGONE;
    case 413:
        return KLE_ETOOLARGE;
    case 422:
        return KLE_EUNPROCESSABLE;
    case 429:
        return KLE_ETOOMANYREQUESTS;
    default:
        return status >= 500 && status < 600 ? KLE_ESERVER : KLE_EAPI;
    }
}

json_object *kle_kube__parse_json(const char *s, size_t len)
{
    json_tokener *tok = json_tokener_new();
    if (!tok || len > INT32_MAX) {
        json_tokener_free(tok);
        return NULL;
    }
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    } else if (o && tok->char_offset < (int)len) {
        /* Only whitespace may follow. */
        for (size_t i = (size_t)tok->char_offset; i < len; i++)
            if (!strchr(" \t\r\n", s[i])) {
                json_object_put(o);
                o = NULL;
                break;
            }
    }
    json_tokener_free(tok);
    return o;
}

const char *kle_kube__jstr(json_object *o, const char *key)
{
    json_object *v;
    if (o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, key, &v) &&
        json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    return NULL;
}

/* Records an API error from a status code and a body that may be a Status. */
int kle_kube__api_error(const char *method, const char *path, long status, json_object *st,
                        const char *raw, size_t raw_len, int retry_after)
{
    const char *reason = NULL, *message = NULL;
    char causes[768] = "", text[256] = "";
    if (st && json_object_is_type(st, json_type_object)) {
        const char *kind = kle_kube__jstr(st, "kind");
        if (kind && strcmp(kind, "Status") == 0) {
            reason = kle_kube__jstr(st, "reason");
            message = kle_kube__jstr(st, "message");
            json_object *details, *cs;
            if (json_object_object_get_ex(st, "details", &details) &&
                json_object_object_get_ex(details, "causes", &cs) &&
                json_object_is_type(cs, json_type_array)) {
                size_t n = json_object_array_length(cs), off = 0, shown = 0;
                for (size_t i = 0; i < n && off < sizeof(causes) - 1; i++) {
                    json_object *cause = json_object_array_get_idx(cs, i);
                    const char *f = kle_kube__jstr(cause, "field"),
                               *m = kle_kube__jstr(cause, "message");
                    /* A cause the message already states is not repeated. */
                    if (m && *m && message && strstr(message, m))
                        continue;
                    int w = snprintf(causes + off, sizeof(causes) - off, "%s%s%s%s",
                                     shown++ ? "; " : " (", f ? f : "", f ? ": " : "", m ? m : "?");
                    if (w < 0)
                        break;
                    off += (size_t)w;
                }
                if (shown && off < sizeof(causes) - 1)
                    snprintf(causes + off, sizeof(causes) - off, ")");
            }
        }
    }
    if (reason && !*reason)
        reason = NULL;
    if (!message && raw && raw_len) {
        size_t k = 0;
        for (size_t i = 0; i < raw_len && k < 200; i++)
            text[k++] = raw[i] >= 0x20 && raw[i] < 0x7f ? raw[i] : ' ';
        text[k] = '\0';
        message = text;
    }
    if (!reason)
        reason = reason_for_status(status);
    int code = code_for(status, reason);
    char retry[48] = "";
    if (retry_after > 0)
        snprintf(retry, sizeof(retry), " (retry after %d s)", retry_after);
    return kle_error_set_api(code, (int)status, reason, KLE_SEC(retry_after),
                             "%s %s: %ld %s: %s%s%s", method, path, status, reason,
                             message && *message ? message : "", causes, retry);
}

int kle_kube__curl_error(const char *method, const char *path, CURLcode cc, const char *errbuf,
                         const struct xfer *x)
{
    if (x->too_large)
        return kle_error_set(KLE_ETOOLARGE,
                             "%s %s: the response is larger than the client's limit of %zu bytes",
                             method, path, x->max);
    const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(cc);
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return kle_error_set(KLE_ETIMEOUT, "%s %s: timed out: %s", method, path, detail);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return kle_error_set(KLE_ETRANSPORT,
                             "%s %s: the server's TLS certificate is not trusted (check the "
                             "cluster's certificate-authority): %s",
                             method, path, detail);
    default:
        return kle_error_set(KLE_ETRANSPORT, "%s %s: %s", method, path, detail);
    }
}
