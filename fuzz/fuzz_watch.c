/*
 * The watch stream decoder: newline-delimited watch events, arriving in
 * chunks of any size, framed and compacted as the client does
 * (kle_kube__watch_feed) and each line decoded (kle_kube__watch_event_decode).
 * Input: one byte of chunk size (1..256), then the stream.
 */
#include <json-c/json.h>

#include "fuzz.h"
#include "kube/kube.h"

struct state {
    int events;
    int ended;
};

static int on_line(void *ud, const char *line, size_t len)
{
    struct state *s = ud;
    FUZZ_CHECK(len > 0 && memchr(line, '\n', len) == NULL);
    kle_kube__watch_event e;
    int rc = kle_kube__watch_event_decode(&e, line, len, "/api/v1/namespaces/default/configmaps");
    if (rc < 0) {
        if (rc != KLE_EGONE)
            fuzz_check_error(rc);
        FUZZ_CHECK(e.ev == NULL);
        s->ended = 1;
        return 1;
    }
    if (rc > 0) {
        FUZZ_CHECK(rc == 1 && e.ev == NULL);
        return 0;
    }
    FUZZ_CHECK(e.ev != NULL && e.obj != NULL);
    FUZZ_CHECK(e.type == KLE_WATCH_ADDED || e.type == KLE_WATCH_MODIFIED ||
               e.type == KLE_WATCH_DELETED || e.type == KLE_WATCH_BOOKMARK);
    /* What a watch callback does: look at the object. */
    FUZZ_CHECK(json_object_to_json_string(e.obj) != NULL);
    if (e.resource_version)
        FUZZ_CHECK(strlen(e.resource_version) <= len);
    s->events++;
    json_object_put(e.ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] + 1;
    data++;
    size--;
    kle_buf body = {0};
    size_t consumed = 0;
    struct state s = {0};
    for (size_t off = 0; off < size && !s.ended;) {
        size_t n = size - off < chunk ? size - off : chunk;
        /* Appended as the client's write callback does: NUL-terminated. */
        char *grown = realloc(body.data, body.len + n + 1);
        if (!grown)
            abort();
        body.data = grown;
        memcpy(body.data + body.len, data + off, n);
        body.len += n;
        body.data[body.len] = '\0';
        off += n;
        if (kle_kube__watch_feed(&body, &consumed, on_line, &s))
            FUZZ_CHECK(s.ended);
        else
            FUZZ_CHECK(consumed == 0 && memchr(body.data, '\n', body.len) == NULL);
        FUZZ_CHECK(consumed <= body.len);
    }
    kle_buf__free(&body);
    return 0;
}
