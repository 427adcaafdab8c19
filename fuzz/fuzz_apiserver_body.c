/*
 * kle-apiserver's request bodies: a create or update body in JSON or in
 * protobuf (the "k8s\0" runtime.Unknown envelope) decoded and checked
 * against the route's kind (kle_apiserver__parse_body), then validated,
 * converted for storage and answered as the server does. A body that
 * decodes and has a protobuf encoding encodes, decodes again, and is then
 * a fixed point of encoding and decoding.
 * Input: one byte choosing the resource (low 7 bits, modulo the served
 * resources) and the media type (high bit: protobuf), then the body.
 */
#include <json-c/json.h>

#include "apiserver/apiserver.h"
#include "apiserver/http.h"
#include "apiserver/objects.h"
#include "fuzz.h"

static void free_answer(answer *a)
{
    free(a->body);
    memset(a, 0, sizeof(*a));
}

/* Encodes obj as protobuf and decodes it; NULL when its kind has no
 * protobuf encoding. A failure to decode what was encoded stops the run. */
static json_object *proto_roundtrip(json_object *obj)
{
    kle_buf b = {0};
    if (kle_apiserver__proto_encode(obj, &b) != 0) {
        kle_buf__free(&b);
        return NULL;
    }
    int code = 0;
    char err[512];
    json_object *back =
        kle_apiserver__proto_decode((const unsigned char *)b.data, b.len, &code, err, sizeof(err));
    if (!back)
        fprintf(stderr, "decoding what was encoded failed: %s\n", err);
    FUZZ_CHECK(back != NULL);
    kle_buf__free(&b);
    return back;
}

/* The protobuf codec is stable as clients see it: once through, an object
 * comes through again unchanged (the first pass may drop what protobuf
 * cannot carry: unknown fields, empty values). */
static void check_proto_roundtrip(json_object *obj)
{
    json_object *j1 = proto_roundtrip(obj);
    if (!j1)
        return;
    json_object *j2 = proto_roundtrip(j1);
    FUZZ_CHECK(j2 != NULL);
    const char *s1 = json_object_to_json_string_ext(j1, JSON_C_TO_STRING_PLAIN);
    const char *s2 = json_object_to_json_string_ext(j2, JSON_C_TO_STRING_PLAIN);
    if (strcmp(s1, s2) != 0)
        fprintf(stderr, "first pass:  %s\nsecond pass: %s\n", s1, s2);
    FUZZ_CHECK(strcmp(s1, s2) == 0);
    json_object_put(j1);
    json_object_put(j2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 16)
        return 0;
    int res = (int)((data[0] & 0x7f) % kle_apiserver__nresources);
    int proto = data[0] >> 7;
    request rq;
    memset(&rq, 0, sizeof(rq));
    rq.content_type = proto ? KLE_MEDIA_PROTOBUF : "application/json";
    if (size > 1 && kle_buf__append(&rq.body, (const char *)data + 1, size - 1) != 0)
        abort();
    route rt;
    memset(&rt, 0, sizeof(rt));
    rt.kind = ROUTE_RESOURCE;
    rt.res = res;
    rt.store = res == KLE_RES_EVENTS_V1 ? KLE_RES_CORE_EVENTS : res;
    rt.convert = res == KLE_RES_EVENTS_V1;
    rt.r = &kle_apiserver__resources[res];
    snprintf(rt.ns, sizeof(rt.ns), "%s", rt.r->namespaced ? "default" : "");
    rt.verb = "create";
    answer a;
    memset(&a, 0, sizeof(a));

    json_object *obj = kle_apiserver__parse_body(&rq, &rt, &a, 0);
    if (!obj) {
        /* Refused with a Status answer. */
        FUZZ_CHECK(a.body != NULL);
        FUZZ_CHECK(a.code == 400 || a.code == 415);
        json_object *st = json_tokener_parse(a.body);
        FUZZ_CHECK(st != NULL);
        json_object_put(st);
    } else {
        FUZZ_CHECK(a.body == NULL);
        FUZZ_CHECK(json_object_is_type(obj, json_type_object));
        json_object *causes = kle_apiserver__validate(rt.r, obj);
        if (causes) {
            json_object *st = kle_apiserver__invalid_status(
                rt.r, kle_apiserver__meta_or_empty(obj, "name"), causes);
            FUZZ_CHECK(st != NULL);
            kle_apiserver__answer_status(&a, st, 1);
            FUZZ_CHECK(a.body != NULL && a.code == 422);
            free_answer(&a);
        }
        check_proto_roundtrip(obj);
        json_object *stored = kle_apiserver__to_storage(&rt, json_object_get(obj));
        if (stored) {
            a.proto = proto;
            kle_apiserver__answer_obj(&a, 201, &rt, stored, 0);
            FUZZ_CHECK(a.body != NULL);
            free_answer(&a);
            json_object_put(stored);
        }
        json_object_put(obj);
    }
    free_answer(&a);
    kle_buf__free(&rq.body);
    return 0;
}
