/* Fault injection rules, the pause switch, black holes and request
 * counters: the state the admin API controls and the API listener reads. */
#include "apiserver/apiserver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fault {
    int id;
    char verb[32];
    char resource[64];
    char ns[64];
    char name[256];
    int latency_ms;
    int code;
    double fraction;
    int retry_after;
    int blackhole;
    int close_mid;
    char *body;     /* Canned 200 answer (JSON text), or NULL. */
    long remaining; /* Requests it still applies to; -1 unlimited. */
    uint64_t seen;
    uint64_t hits;
} fault;

typedef struct counter {
    char verb[32];
    char resource[64];
    unsigned code;
    uint64_t count;
} counter;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static int cond_ready;
static fault *faults;
static size_t nfaults;
static int next_id = 1;
static unsigned blackhole_epoch;
static int paused;
static counter *counters;
static size_t ncounters;

static void ensure_cond(void)
{
    if (!cond_ready) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cond, &ca);
        pthread_condattr_destroy(&ca);
        cond_ready = 1;
    }
}

static int timed_wait(int64_t deadline_ns)
{
    struct timespec ts = {(time_t)(deadline_ns / 1000000000), (long)(deadline_ns % 1000000000)};
    return pthread_cond_timedwait(&cond, &mu, &ts);
}

static int field_matches(const char *want, const char *have)
{
    return !want[0] || strcmp(want, "*") == 0 || (have && strcmp(want, have) == 0);
}

void kle_apiserver__faults_match(const char *verb, const char *resource, const char *ns,
                                 const char *name, kle_apiserver__fault_result *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nfaults; i++) {
        fault *f = &faults[i];
        if (f->remaining == 0 || !field_matches(f->verb, verb) ||
            !field_matches(f->resource, resource) || !field_matches(f->ns, ns) ||
            !field_matches(f->name, name))
            continue;
        /* Deterministic fraction: the n-th match fails when floor(n*f) grows. */
        f->seen++;
        if ((uint64_t)((double)f->seen * f->fraction) ==
            (uint64_t)((double)(f->seen - 1) * f->fraction))
            continue;
        f->hits++;
        if (f->remaining > 0)
            f->remaining--;
        r->latency_ms += f->latency_ms;
        if (f->blackhole)
            r->blackhole = 1;
        if (f->code && !r->code) {
            r->code = f->code;
            r->retry_after = f->retry_after;
        }
        if (f->close_mid)
            r->close_mid = 1;
        if (f->body && !r->body)
            r->body = strdup(f->body);
    }
    pthread_mutex_unlock(&mu);
}

void kle_apiserver__count(const char *verb, const char *resource, unsigned code)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < ncounters; i++) {
        if (counters[i].code == code && strcmp(counters[i].verb, verb) == 0 &&
            strcmp(counters[i].resource, resource) == 0) {
            counters[i].count++;
            pthread_mutex_unlock(&mu);
            return;
        }
    }
    {
        counter *nc = realloc(counters, (ncounters + 1) * sizeof(*nc));
        if (nc) {
            counters = nc;
            memset(&counters[ncounters], 0, sizeof(counter));
            snprintf(counters[ncounters].verb, sizeof(counters[ncounters].verb), "%s", verb);
            snprintf(counters[ncounters].resource, sizeof(counters[ncounters].resource), "%s",
                     resource);
            counters[ncounters].code = code;
            counters[ncounters].count = 1;
            ncounters++;
        }
    }
    pthread_mutex_unlock(&mu);
}

int kle_apiserver__wait_unpaused(void)
{
    int rc = 0;
    pthread_mutex_lock(&mu);
    ensure_cond();
    while (paused && !atomic_load(&kle_apiserver__shutting_down))
        timed_wait(kle_apiserver__now_ns() + 1000000000);
    if (atomic_load(&kle_apiserver__shutting_down))
        rc = -1;
    pthread_mutex_unlock(&mu);
    return rc;
}

void kle_apiserver__blackhole_wait(void)
{
    pthread_mutex_lock(&mu);
    ensure_cond();
    unsigned epoch = blackhole_epoch;
    while (epoch == blackhole_epoch && !atomic_load(&kle_apiserver__shutting_down))
        timed_wait(kle_apiserver__now_ns() + 1000000000);
    pthread_mutex_unlock(&mu);
}

void kle_apiserver__sleep_ms(int ms)
{
    int64_t deadline = kle_apiserver__now_ns() + (int64_t)ms * 1000000;
    pthread_mutex_lock(&mu);
    ensure_cond();
    while (!atomic_load(&kle_apiserver__shutting_down) && kle_apiserver__now_ns() < deadline)
        timed_wait(deadline);
    pthread_mutex_unlock(&mu);
}

/* ---- the admin HTTP API ---- */

static json_object *fault_json(const fault *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_int(f->id));
    json_object_object_add(o, "verb", json_object_new_string(f->verb));
    json_object_object_add(o, "resource", json_object_new_string(f->resource));
    json_object_object_add(o, "namespace", json_object_new_string(f->ns));
    json_object_object_add(o, "name", json_object_new_string(f->name));
    json_object_object_add(o, "latencyMs", json_object_new_int(f->latency_ms));
    json_object_object_add(o, "error", json_object_new_int(f->code));
    json_object_object_add(o, "fraction", json_object_new_double(f->fraction));
    json_object_object_add(o, "retryAfterSeconds", json_object_new_int(f->retry_after));
    json_object_object_add(o, "blackhole", json_object_new_boolean(f->blackhole));
    json_object_object_add(o, "closeMidResponse", json_object_new_boolean(f->close_mid));
    if (f->body)
        json_object_object_add(o, "body", json_tokener_parse(f->body));
    json_object_object_add(o, "count", json_object_new_int64(f->remaining));
    json_object_object_add(o, "matched", json_object_new_int64((int64_t)f->hits));
    return o;
}

static int copy_str(json_object *o, const char *key, char *dst, size_t len, char *err,
                    size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_string) || strlen(json_object_get_string(v)) >= len) {
        snprintf(err, errlen, "field %s must be a string shorter than %zu bytes", key, len);
        return -1;
    }
    snprintf(dst, len, "%s", json_object_get_string(v));
    return 0;
}

static int get_int(json_object *o, const char *key, int *dst, int lo, int hi, char *err,
                   size_t errlen)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        return 0;
    if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo ||
        json_object_get_int64(v) > hi) {
        snprintf(err, errlen, "field %s must be an integer in [%d, %d]", key, lo, hi);
        return -1;
    }
    *dst = (int)json_object_get_int64(v);
    return 0;
}

static int parse_fault(const char *body, fault *f, char *err, size_t errlen)
{
    enum json_tokener_error jerr;
    json_object *o = json_tokener_parse_verbose(body ? body : "", &jerr), *v;
    int rc = -1, count = -1;

    memset(f, 0, sizeof(*f));
    f->fraction = 1.0;
    f->retry_after = 1;
    if (!o || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "body must be a JSON object: %s",
                 o || jerr == json_tokener_success ? "not an object"
                                                   : json_tokener_error_desc(jerr));
        goto out;
    }
    if (copy_str(o, "verb", f->verb, sizeof(f->verb), err, errlen) ||
        copy_str(o, "resource", f->resource, sizeof(f->resource), err, errlen) ||
        copy_str(o, "namespace", f->ns, sizeof(f->ns), err, errlen) ||
        copy_str(o, "name", f->name, sizeof(f->name), err, errlen) ||
        get_int(o, "latencyMs", &f->latency_ms, 0, 600000, err, errlen) ||
        get_int(o, "error", &f->code, 0, 599, err, errlen) ||
        get_int(o, "retryAfterSeconds", &f->retry_after, 0, 3600, err, errlen) ||
        get_int(o, "count", &count, -1, 1000000000, err, errlen))
        goto out;
    f->remaining = count;
    if (f->code && f->code != 429 && f->code != 500 && f->code != 503 && f->code != 504) {
        snprintf(err, errlen, "field error must be one of 429, 500, 503, 504");
        goto out;
    }
    if (json_object_object_get_ex(o, "fraction", &v)) {
        if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) {
            snprintf(err, errlen, "field fraction must be a number in [0, 1]");
            goto out;
        }
        f->fraction = json_object_get_double(v);
        if (f->fraction < 0 || f->fraction > 1) {
            snprintf(err, errlen, "field fraction must be a number in [0, 1]");
            goto out;
        }
    }
    if (json_object_object_get_ex(o, "blackhole", &v))
        f->blackhole = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "closeMidResponse", &v))
        f->close_mid = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "body", &v)) {
        if (!json_object_is_type(v, json_type_object)) {
            snprintf(err, errlen, "field body must be a JSON object");
            goto out;
        }
        f->body = strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
        if (!f->body) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    if (!f->latency_ms && !f->code && !f->blackhole && !f->close_mid && !f->body) {
        snprintf(err, errlen,
                 "a fault needs latencyMs, error, blackhole, closeMidResponse or body");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0) {
        free(f->body);
        f->body = NULL;
    }
    json_object_put(o);
    return rc;
}

static json_object *counters_json(void)
{
    json_object *o = json_object_new_object(), *arr = json_object_new_array();
    uint64_t total = 0;
    for (size_t i = 0; i < ncounters; i++) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "verb", json_object_new_string(counters[i].verb));
        json_object_object_add(c, "resource", json_object_new_string(counters[i].resource));
        json_object_object_add(c, "code", json_object_new_int((int)counters[i].code));
        json_object_object_add(c, "count", json_object_new_int64((int64_t)counters[i].count));
        json_object_array_add(arr, c);
        total += counters[i].count;
    }
    json_object_object_add(o, "total", json_object_new_int64((int64_t)total));
    json_object_object_add(o, "requests", arr);
    return o;
}

static void clear_faults_locked(void)
{
    for (size_t i = 0; i < nfaults; i++)
        free(faults[i].body);
    free(faults);
    faults = NULL;
    nfaults = 0;
    blackhole_epoch++;
    pthread_cond_broadcast(&cond);
}

int kle_apiserver__faults_add(const char *body, json_object **out, char *err, size_t errlen)
{
    fault f, *nf;
    int code = 201;
    if (parse_fault(body, &f, err, errlen) != 0)
        return 400;
    pthread_mutex_lock(&mu);
    nf = realloc(faults, (nfaults + 1) * sizeof(*nf));
    if (!nf) {
        free(f.body);
        snprintf(err, errlen, "out of memory");
        code = 500;
    } else {
        faults = nf;
        f.id = next_id++;
        faults[nfaults++] = f;
        *out = fault_json(&f);
    }
    pthread_mutex_unlock(&mu);
    return code;
}

json_object *kle_apiserver__faults_list(void)
{
    json_object *out = json_object_new_array();
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < nfaults; i++)
        json_object_array_add(out, fault_json(&faults[i]));
    pthread_mutex_unlock(&mu);
    return out;
}

void kle_apiserver__faults_clear(void)
{
    pthread_mutex_lock(&mu);
    ensure_cond();
    clear_faults_locked();
    pthread_mutex_unlock(&mu);
}

json_object *kle_apiserver__faults_remove(long id)
{
    json_object *out = NULL;
    size_t i;
    pthread_mutex_lock(&mu);
    ensure_cond();
    for (i = 0; i < nfaults; i++)
        if (faults[i].id == id)
            break;
    if (i < nfaults) {
        out = fault_json(&faults[i]);
        if (faults[i].blackhole)
            blackhole_epoch++;
        free(faults[i].body);
        memmove(&faults[i], &faults[i + 1], (nfaults - i - 1) * sizeof(*faults));
        nfaults--;
        pthread_cond_broadcast(&cond);
    }
    pthread_mutex_unlock(&mu);
    return out;
}

void kle_apiserver__set_paused(int on)
{
    pthread_mutex_lock(&mu);
    ensure_cond();
    paused = on;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

json_object *kle_apiserver__counters(void)
{
    json_object *o;
    pthread_mutex_lock(&mu);
    o = counters_json();
    pthread_mutex_unlock(&mu);
    return o;
}

void kle_apiserver__counters_clear(void)
{
    pthread_mutex_lock(&mu);
    free(counters);
    counters = NULL;
    ncounters = 0;
    pthread_mutex_unlock(&mu);
}

void kle_apiserver__faults_release(void)
{
    pthread_mutex_lock(&mu);
    ensure_cond();
    blackhole_epoch++;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

void kle_apiserver__faults_free(void)
{
    for (size_t i = 0; i < nfaults; i++)
        free(faults[i].body);
    free(faults);
    faults = NULL;
    nfaults = 0;
    free(counters);
    counters = NULL;
    ncounters = 0;
}
