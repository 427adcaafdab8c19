/*
 * The API error classifier: an error answer (HTTP status and body, a
 * Status or anything else) becomes one of libkle's codes with a message.
 * Input: two bytes of HTTP status (big endian, taken modulo 600), then the
 * body. Two different 409s must stay apart: AlreadyExists is never a
 * Conflict and a Conflict never AlreadyExists.
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "kube/kube.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    long status = ((long)data[0] << 8 | data[1]) % 600;
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    json_object *st = kle_kube__parse_json(body, len);
    kle_error_clear();
    int rc = kle_kube__api_error("GET", "/api/v1/namespaces/default/configmaps/x", status, st, body,
                                 len, (int)(status % 7));
    fuzz_check_error(rc);
    const kle_error *e = kle_error_last();
    FUZZ_CHECK(e->http_status == (int)status);
    FUZZ_CHECK(e->reason != NULL && *e->reason != '\0');
    /* The classification follows the Status reason when there is one. */
    const char *reason = NULL;
    const char *kind = kle_kube__jstr(st, "kind");
    if (kind && strcmp(kind, "Status") == 0)
        reason = kle_kube__jstr(st, "reason");
    if (reason && strcmp(reason, "AlreadyExists") == 0)
        FUZZ_CHECK(rc == KLE_EEXISTS);
    if (reason && strcmp(reason, "Conflict") == 0)
        FUZZ_CHECK(rc == KLE_ECONFLICT);
    if (rc == KLE_EEXISTS)
        FUZZ_CHECK(reason && strcmp(reason, "AlreadyExists") == 0);
    /* Control bytes of a body that is no Status never reach the message. */
    if (!kind || strcmp(kind, "Status") != 0)
        for (const char *p = e->message; *p; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20);
    json_object_put(st);
    return 0;
}
