/*
 * Pure decoders of the watch stream (newline-delimited watch events). No
 * network: the fuzz targets (fuzz/) call them directly. The Status and JSON
 * decoders they use are in status.c.
 */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "kle/sys/errors.h"
#include "kube/kube.h"

int kle_kube__watch_event_decode(kle_kube__watch_event *out, const char *line, size_t len,
                                 const char *path)
{
    memset(out, 0, sizeof(*out));
    json_object *ev = kle_kube__parse_json(line, len);
    json_object *obj = NULL;
    const char *type = kle_kube__jstr(ev, "type");
    /* "object" must be an object: `"object": null` (get_ex gives NULL) or
     * a string is no event either (the fuzzer found the null). */
    if (!ev || !type || !json_object_object_get_ex(ev, "object", &obj) ||
        !json_object_is_type(obj, json_type_object)) {
        json_object_put(ev);
        return kle_error_set(KLE_EBADRESPONSE,
                             "WATCH %s: the server sent an event that is not "
                             "a JSON watch event",
                             path);
    }
    if (strcmp(type, "ADDED") == 0)
        out->type = KLE_WATCH_ADDED;
    else if (strcmp(type, "MODIFIED") == 0)
        out->type = KLE_WATCH_MODIFIED;
    else if (strcmp(type, "DELETED") == 0)
        out->type = KLE_WATCH_DELETED;
    else if (strcmp(type, "BOOKMARK") == 0)
        out->type = KLE_WATCH_BOOKMARK;
    else if (strcmp(type, "ERROR") == 0) {
        json_object *code;
        long st = json_object_object_get_ex(obj, "code", &code) ? json_object_get_int(code) : 0;
        const char *reason = kle_kube__jstr(obj, "reason");
        int rc;
        if (st == 410 ||
            (reason && (strcmp(reason, "Expired") == 0 || strcmp(reason, "Gone") == 0)))
            rc = KLE_EGONE;
        else
            rc = kle_kube__api_error("WATCH", path, st ? st : 500, obj, NULL, 0, 0);
        json_object_put(ev);
        return rc;
    } else {
        KLE_LOG_V(4, "watch %s: ignoring an event of type \"%.32s\"", path, type);
        json_object_put(ev);
        return 1;
    }
    out->ev = ev;
    out->obj = obj;
    json_object *md;
    if (json_object_object_get_ex(obj, "metadata", &md))
        out->resource_version = kle_kube__jstr(md, "resourceVersion");
    return 0;
}

int kle_kube__watch_feed(kle_buf *body, size_t *consumed,
                         int (*line_fn)(void *ud, const char *line, size_t len), void *ud)
{
    for (;;) {
        char *start = body->data ? body->data + *consumed : NULL;
        char *nl = start ? memchr(start, '\n', body->len - *consumed) : NULL;
        if (!nl)
            break;
        size_t len = (size_t)(nl - start);
        *consumed += len + 1;
        if (len && line_fn(ud, start, len))
            return 1;
    }
    /* Compact the buffer so a long watch does not grow it. */
    if (*consumed) {
        memmove(body->data, body->data + *consumed, body->len - *consumed);
        body->len -= *consumed;
        body->data[body->len] = '\0';
        *consumed = 0;
    }
    return 0;
}
