/*
 * Callers built against version 1 of every versioned struct, run against
 * the current library. Each struct below is a frozen copy of its version-1
 * layout (do not edit them when the headers grow: add a _v2 copy instead).
 * Each instance sits at the very end of a page followed by an inaccessible
 * page, so a library that reads or writes past the version-1 size crashes
 * the test instead of silently touching the caller's neighbouring memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kle/kle.h"
#include "kle/rest.h"
#include "kle/sys/clock.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "kle/testing.h"
#include "support/quiet_log.h"

/* ---- frozen version-1 layouts ---------------------------------------- */

typedef struct elector_config_v1 {
    unsigned int version;
    kle_lock *lock;
    int64_t lease_duration_ns;
    int64_t renew_deadline_ns;
    int64_t retry_period_ns;
    int release_on_cancel;
    const char *name;
    struct {
        void (*on_started_leading)(kle_leading *leading, void *data);
        void (*on_stopped_leading)(void *data);
        void (*on_new_leader)(const char *identity, void *data);
        void *data;
    } callbacks;
    kle_clock *clock;
    uint64_t jitter_seed;
    int64_t call_timeout_ns;
} elector_config_v1;

typedef struct elector_stats_v1 {
    unsigned int version;
    int leader;
    uint64_t slowpath_total;
    uint64_t tries;
    uint64_t failed_tries;
    uint64_t acquisitions;
    uint64_t losses;
    uint64_t releases;
} elector_stats_v1;

typedef struct lock_ctx_v1 {
    unsigned int version;
    int64_t timeout_ns;
    kle_event *cancel;
} lock_ctx_v1;

typedef struct record_v1 {
    unsigned int version;
    char *holder_identity;
    int lease_duration_seconds;
    int64_t acquire_time_ns;
    int64_t renew_time_ns;
    int leader_transitions;
    char *strategy;
    char *preferred_holder;
    size_t holder_identity_len;
    size_t strategy_len;
    size_t preferred_holder_len;
} record_v1;

typedef struct lock_result_v1 {
    unsigned int version;
    record_v1 record;
    char *raw;
    size_t raw_len;
    char *resource_version;
} lock_result_v1;

typedef struct fake_clock_opts_v1 {
    unsigned int version;
    int64_t start_wall_ns;
    int auto_advance;
} fake_clock_opts_v1;

typedef struct resource_lock_opts_v1 {
    unsigned int version;
    const char *namespace_;
    const char *name;
    const char *identity;
    int record_events;
    const char *event_component;
    const char *const *lease_labels;
} resource_lock_opts_v1;

typedef struct client_opts_v1 {
    unsigned int version;
    const char *kubeconfig;
    const char *context;
    const char *namespace_;
    const char *serviceaccount_dir;
    int64_t default_timeout_ns;
    int64_t connect_timeout_ns;
    size_t max_response_bytes;
    int64_t token_file_refresh_ns;
} client_opts_v1;

typedef struct request_opts_v1 {
    unsigned int version;
    int64_t timeout_ns;
    kle_event *cancel;
    struct json_object **status;
} request_opts_v1;

typedef struct watch_opts_v1 {
    unsigned int version;
    const char *resource_version;
    const char *field_selector;
    const char *label_selector;
    int64_t timeout_ns;
    int64_t stream_timeout_ns;
    kle_event *cancel;
    char *last_resource_version;
    size_t last_resource_version_size;
} watch_opts_v1;

/* A lock backend (kle/sys/lock.h) built against version 1. */
typedef struct lock_v1 {
    unsigned int version;
    int (*get)(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx);
    int (*create)(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx);
    int (*update)(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx);
    int (*record_event)(kle_lock *self, const char *message, const kle_lock_ctx *ctx);
    const char *(*identity)(kle_lock *self);
    const char *(*describe)(kle_lock *self);
    void (*free)(kle_lock *self);
} lock_v1;

/* A clock (kle/sys/clock.h) built against version 1. */
typedef struct clock_v1 {
    unsigned int version;
    int64_t (*monotonic_ns)(kle_clock *self);
    int64_t (*wall_ns)(kle_clock *self);
    int (*wait)(kle_clock *self, kle_event *event, int64_t deadline_ns);
    void (*notify)(kle_clock *self, kle_event *event);
    void *(*thread_register)(kle_clock *self);
    void (*thread_attach)(kle_clock *self, void *token);
    void (*thread_detach)(kle_clock *self, void *token);
    void (*free)(kle_clock *self);
} clock_v1;

/* The current headers must start with the frozen members, in order. */
#define SAME_PREFIX(cur, v1, member)                                                               \
    _Static_assert(offsetof(cur, member) == offsetof(v1, member), #cur "." #member " moved")
SAME_PREFIX(kle_elector_config, elector_config_v1, call_timeout_ns);
SAME_PREFIX(kle_elector_config, elector_config_v1, callbacks);
SAME_PREFIX(kle_elector_stats, elector_stats_v1, releases);
SAME_PREFIX(kle_lock_ctx, lock_ctx_v1, cancel);
SAME_PREFIX(kle_lock_result, lock_result_v1, resource_version);
SAME_PREFIX(kle_record, record_v1, preferred_holder_len);
SAME_PREFIX(kle_fake_clock_opts, fake_clock_opts_v1, auto_advance);
SAME_PREFIX(kle_resource_lock_opts, resource_lock_opts_v1, lease_labels);
SAME_PREFIX(kle_client_opts, client_opts_v1, token_file_refresh_ns);
SAME_PREFIX(kle_request_opts, request_opts_v1, status);
SAME_PREFIX(kle_watch_opts, watch_opts_v1, last_resource_version_size);
SAME_PREFIX(struct kle_lock, lock_v1, free);
SAME_PREFIX(struct kle_clock, clock_v1, free);

/* ---- guarded allocation ---------------------------------------------- */

static long page;

/* @p size bytes ending exactly at an inaccessible page. */
static void *guarded(size_t size)
{
    uint8_t *p =
        mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    assert_int_equal(mprotect(p + page, (size_t)page, PROT_NONE), 0);
    uint8_t *obj = p + page - size;
    memset(obj, 0, size);
    return obj;
}

static void unguard(void *obj, size_t size)
{
    munmap((uint8_t *)obj + size - page, (size_t)page * 2);
}

static void on_started(kle_leading *l, void *data)
{
    (void)data;
    kle_elector_stop(kle_leading_elector(l));
    kle_leading_wait_ns(l, -1);
}

static void on_stopped(void *data)
{
    (*(int *)data)++;
}

static void test_abi_v1__elector_config_stats_ctx_and_result_at_version_1(void **state)
{
    (void)state;
    fake_clock_opts_v1 *co = guarded(sizeof(*co));
    co->version = 1;
    co->start_wall_ns = KLE_SEC(1795255200);
    co->auto_advance = 1;
    kle_clock *clock;
    assert_int_equal(kle_fake_clock_new(&clock, (const kle_fake_clock_opts *)co), 0);
    assert_int_equal(kle_fake_clock_opts_init((kle_fake_clock_opts *)co, 1), 0);
    assert_int_equal(co->version, 1);

    kle_fake_store *store;
    kle_lock *lock;
    assert_int_equal(kle_fake_store_new(&store, clock), 0);
    assert_int_equal(kle_fake_lock_new(&lock, store, "v1-caller", "default/v1"), 0);

    int stopped = 0;
    elector_config_v1 *cfg = guarded(sizeof(*cfg));
    assert_int_equal(kle_elector_config_init((kle_elector_config *)cfg, 1), 0);
    assert_int_equal(cfg->version, 1);
    assert_int_equal(cfg->lease_duration_ns, KLE_SEC(15));
    cfg->lock = lock;
    cfg->clock = clock;
    cfg->callbacks.on_started_leading = on_started;
    cfg->callbacks.on_stopped_leading = on_stopped;
    cfg->callbacks.data = &stopped;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, (const kle_elector_config *)cfg), 0);
    assert_int_equal(kle_fake_clock_join(clock), 0);
    assert_int_equal(kle_elector_run(e), 0);
    kle_fake_clock_leave(clock);
    assert_int_equal(stopped, 1);

    elector_stats_v1 *st = guarded(sizeof(*st));
    assert_int_equal(kle_elector_get_stats((kle_elector_stats *)st, e), KLE_EVERSION);
    assert_int_equal(kle_elector_stats_init((kle_elector_stats *)st, 1), 0);
    assert_int_equal(kle_elector_get_stats((kle_elector_stats *)st, e), 0);
    assert_int_equal(st->version, 1);
    assert_int_equal(st->acquisitions, 1);

    record_v1 *obs = guarded(sizeof(*obs));
    int64_t age;
    assert_int_equal(kle_elector_observed((kle_record *)obs, &age, e), KLE_EVERSION);
    assert_int_equal(kle_record_init((kle_record *)obs, 1), 0);
    assert_int_equal(kle_elector_observed((kle_record *)obs, &age, e), 0);
    assert_int_equal(obs->version, 1);
    assert_string_equal(obs->holder_identity, "v1-caller");
    kle_record_dispose((kle_record *)obs);
    assert_int_equal(obs->version, 1);
    assert_int_equal(kle_fake_store_peek((kle_record *)obs, NULL, store), 0);
    assert_int_equal(obs->version, 1);
    assert_string_equal(obs->holder_identity, "v1-caller");
    kle_record_dispose((kle_record *)obs);
    unguard(obs, sizeof(*obs));

    kle_lock *reader;
    assert_int_equal(kle_fake_lock_new(&reader, store, "reader", "default/v1"), 0);
    lock_ctx_v1 *ctx = guarded(sizeof(*ctx));
    assert_int_equal(kle_lock_ctx_init((kle_lock_ctx *)ctx, 1), 0);
    lock_result_v1 *res = guarded(sizeof(*res));
    res->version = 1;
    assert_int_equal(kle_lock_get((kle_lock_result *)res, reader, (const kle_lock_ctx *)ctx), 0);
    assert_int_equal(res->version, 1);
    assert_int_equal(res->record.version, 1);
    assert_string_equal(res->record.holder_identity, "v1-caller");
    kle_lock_result_dispose((kle_lock_result *)res);
    assert_int_equal(res->version, 1);
    assert_int_equal(res->record.version, 1);
    assert_null(res->raw);

    kle_lock_free(reader);
    kle_elector_free(e);
    kle_fake_store_free(store);
    kle_clock_free(clock);
    unguard(res, sizeof(*res));
    unguard(ctx, sizeof(*ctx));
    unguard(st, sizeof(*st));
    unguard(cfg, sizeof(*cfg));
    unguard(co, sizeof(*co));
}

static void test_abi_v1__record_at_version_1(void **state)
{
    (void)state;
    record_v1 *r = guarded(sizeof(*r));
    assert_int_equal(kle_record_init((kle_record *)r, KLE_RECORD_VERSION + 1), KLE_EVERSION);
    assert_int_equal(kle_record_init((kle_record *)r, 0), KLE_EVERSION);
    assert_int_equal(kle_record_init((kle_record *)r, 1), 0);
    assert_int_equal(r->version, 1);
    assert_int_equal(kle_record_set_holder((kle_record *)r, "a\0b", 3), 0);
    r->lease_duration_seconds = 15;
    r->leader_transitions = 2;
    assert_int_equal(kle_record_validate((const kle_record *)r), 0);

    /* The library writes into a record only at the version its caller set. */
    record_v1 *c = guarded(sizeof(*c));
    assert_int_equal(kle_record_copy((kle_record *)c, (const kle_record *)r), KLE_EVERSION);
    c->version = 1;
    assert_int_equal(kle_record_copy((kle_record *)c, (const kle_record *)r), 0);
    assert_int_equal(c->version, 1);
    assert_int_equal(c->holder_identity_len, 3);
    assert_int_equal(c->leader_transitions, 2);
    assert_true(kle_record_equal((const kle_record *)c, (const kle_record *)r));
    kle_record_dispose((kle_record *)c);
    assert_int_equal(c->version, 1);
    assert_null(c->holder_identity);

    r->version = KLE_RECORD_VERSION + 1;
    assert_int_equal(kle_record_validate((const kle_record *)r), KLE_EVERSION);
    r->version = 1;
    kle_record_dispose((kle_record *)r);
    unguard(c, sizeof(*c));
    unguard(r, sizeof(*r));
}

/* A version-1 lock backend: it keeps the record in a version-1 layout of
 * its own, copying what the library hands it with kle_record_copy(). */
static struct {
    int exists;
    record_v1 *rec;
    unsigned int creates, updates;
} v1;

static int v1_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    (void)self;
    (void)ctx;
    if (!v1.exists)
        return kle_error_set(KLE_ENOTFOUND, "v1 lock: not found");
    int rc = kle_record_copy(&out->record, (const kle_record *)v1.rec);
    if (rc < 0)
        return rc;
    char raw[256];
    snprintf(raw, sizeof(raw), "%s/%lld/%d", v1.rec->holder_identity,
             (long long)v1.rec->renew_time_ns, v1.rec->leader_transitions);
    out->raw = strdup(raw);
    out->raw_len = strlen(raw);
    return out->raw ? 0 : KLE_ENOMEM;
}

static int v1_write(const kle_record *record, int create)
{
    if (create && v1.exists)
        return kle_error_set(KLE_EEXISTS, "v1 lock: exists");
    if (!create && !v1.exists)
        return kle_error_set(KLE_ENOTFOUND, "v1 lock: not found");
    kle_record_dispose((kle_record *)v1.rec);
    int rc = kle_record_copy((kle_record *)v1.rec, record);
    if (rc == 0)
        v1.exists = 1;
    return rc;
}

static int v1_create(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    (void)self;
    (void)ctx;
    v1.creates++;
    return v1_write(record, 1);
}

static int v1_update(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    (void)self;
    (void)ctx;
    v1.updates++;
    return v1_write(record, 0);
}

static int v1_event(kle_lock *self, const char *message, const kle_lock_ctx *ctx)
{
    (void)self;
    (void)message;
    (void)ctx;
    return 0;
}

static const char *v1_identity(kle_lock *self)
{
    (void)self;
    return "v1-backend";
}

static const char *v1_describe(kle_lock *self)
{
    (void)self;
    return "default/v1-backend";
}

static void v1_free(kle_lock *self)
{
    (void)self;
}

/* A version-1 clock that delegates to the real one. */
static int64_t v1_mono(kle_clock *self)
{
    (void)self;
    return kle_clock_monotonic_ns(kle_clock_real());
}

static int64_t v1_wall(kle_clock *self)
{
    (void)self;
    return kle_clock_wall_ns(kle_clock_real());
}

static int v1_wait(kle_clock *self, kle_event *event, int64_t deadline_ns)
{
    (void)self;
    return kle_clock_wait(kle_clock_real(), event, deadline_ns);
}

static void test_abi_v1__lock_and_clock_vtables_at_version_1(void **state)
{
    (void)state;
    memset(&v1, 0, sizeof(v1));
    v1.rec = guarded(sizeof(*v1.rec));
    assert_int_equal(kle_record_init((kle_record *)v1.rec, 1), 0);
    lock_v1 *lock = guarded(sizeof(*lock));
    *lock = (lock_v1){1, v1_get, v1_create, v1_update, v1_event, v1_identity, v1_describe, v1_free};
    clock_v1 *clock = guarded(sizeof(*clock));
    *clock = (clock_v1){1, v1_mono, v1_wall, v1_wait, NULL, NULL, NULL, NULL, NULL};
    assert_int_equal(kle_lock_validate((const kle_lock *)lock), 0);

    int stopped = 0;
    kle_elector_config cfg = KLE_ELECTOR_CONFIG_INIT;
    cfg.lock = (kle_lock *)lock;
    cfg.clock = (kle_clock *)clock;
    cfg.callbacks.on_started_leading = on_started;
    cfg.callbacks.on_stopped_leading = on_stopped;
    cfg.callbacks.data = &stopped;
    kle_elector *e;
    assert_int_equal(kle_elector_new(&e, &cfg), 0);
    assert_int_equal(kle_elector_run(e), 0);
    assert_int_equal(stopped, 1);
    assert_int_equal(v1.creates, 1);
    assert_int_equal(v1.rec->version, 1);
    assert_string_equal(v1.rec->holder_identity, "v1-backend");

    lock_result_v1 *res = guarded(sizeof(*res));
    res->version = 1;
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    assert_int_equal(kle_lock_get((kle_lock_result *)res, (kle_lock *)lock, &ctx), 0);
    assert_string_equal(res->record.holder_identity, "v1-backend");
    /* A record of an unknown version is refused before it reaches the backend. */
    record_v1 *bad = guarded(sizeof(*bad));
    assert_int_equal(kle_record_copy((kle_record *)bad, (const kle_record *)&res->record),
                     KLE_EVERSION);
    bad->version = KLE_RECORD_VERSION + 1;
    unsigned int updates = v1.updates;
    assert_int_equal(kle_lock_update((kle_lock *)lock, (const kle_record *)bad, &ctx),
                     KLE_EVERSION);
    assert_int_equal(v1.updates, updates);
    kle_lock_result_dispose((kle_lock_result *)res);

    kle_elector_free(e);
    kle_record_dispose((kle_record *)v1.rec);
    unguard(bad, sizeof(*bad));
    unguard(res, sizeof(*res));
    unguard(clock, sizeof(*clock));
    unguard(lock, sizeof(*lock));
    unguard(v1.rec, sizeof(*v1.rec));
}

static int watch_fn(kle_watch_event_type type, struct json_object *object, void *data)
{
    (void)type;
    (void)object;
    (void)data;
    return 1;
}

static void test_abi_v1__client_and_lock_options_at_version_1(void **state)
{
    (void)state;
    char dir[] = "/tmp/kle-abi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/config", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n"
          "    server: http://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: k\n"
          "    user: u\n    namespace: ns\nusers:\n- name: u\n  user: {}\n",
          f);
    fclose(f);

    client_opts_v1 *co = guarded(sizeof(*co));
    assert_int_equal(kle_client_opts_init((kle_client_opts *)co, 1), 0);
    co->kubeconfig = path;
    kle_client *client;
    assert_int_equal(kle_client_new_from_kubeconfig(&client, (const kle_client_opts *)co), 0);
    assert_string_equal(kle_client_namespace(client), "ns");

    resource_lock_opts_v1 *lo = guarded(sizeof(*lo));
    assert_int_equal(kle_resource_lock_opts_init((kle_resource_lock_opts *)lo, 1), 0);
    assert_int_equal(lo->record_events, 1);
    lo->name = "v1-lock";
    lo->identity = "v1-caller";
    kle_lock *lock;
    assert_int_equal(kle_lease_lock_new(&lock, client, (const kle_resource_lock_opts *)lo), 0);
    assert_string_equal(kle_lock_identity(lock), "v1-caller");
    kle_lock_free(lock);

    /* Request and watch options at version 1: nothing listens on port 1. */
    request_opts_v1 *ro = guarded(sizeof(*ro));
    assert_int_equal(kle_request_opts_init((kle_request_opts *)ro, 1), 0);
    struct json_object *status = (struct json_object *)&status, *obj = NULL;
    ro->timeout_ns = KLE_SEC(10);
    ro->status = &status;
    assert_int_equal(kle_client_get(&obj, client, "/api/v1/namespaces/ns/configmaps/x",
                                    (const kle_request_opts *)ro),
                     KLE_ETRANSPORT);
    assert_null(status);
    assert_null(obj);
    watch_opts_v1 *wo = guarded(sizeof(*wo));
    assert_int_equal(kle_watch_opts_init((kle_watch_opts *)wo, 1), 0);
    char last[32] = "";
    kle_event *cancel;
    assert_int_equal(kle_event_new(&cancel), 0);
    kle_event_set(cancel);
    wo->resource_version = "7";
    wo->cancel = cancel;
    wo->last_resource_version = last;
    wo->last_resource_version_size = sizeof(last);
    assert_int_equal(kle_client_watch(client, "/api/v1/namespaces/ns/configmaps",
                                      (const kle_watch_opts *)wo, watch_fn, NULL),
                     KLE_ECANCELED);
    assert_string_equal(last, "7");
    kle_event_free(cancel);
    unguard(wo, sizeof(*wo));
    unguard(ro, sizeof(*ro));

    /* Versions past the current one are refused, not guessed at. */
    lo->version = KLE_RESOURCE_LOCK_OPTS_VERSION + 1;
    assert_int_equal(kle_lease_lock_new(&lock, client, (const kle_resource_lock_opts *)lo),
                     KLE_EVERSION);
    lo->version = 0;
    assert_int_equal(kle_lease_lock_new(&lock, client, (const kle_resource_lock_opts *)lo),
                     KLE_EVERSION);

    kle_client_free(client);
    unguard(lo, sizeof(*lo));
    unguard(co, sizeof(*co));
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    page = sysconf(_SC_PAGESIZE);
    quiet_log_install();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abi_v1__elector_config_stats_ctx_and_result_at_version_1),
        cmocka_unit_test(test_abi_v1__client_and_lock_options_at_version_1),
        cmocka_unit_test(test_abi_v1__record_at_version_1),
        cmocka_unit_test(test_abi_v1__lock_and_clock_vtables_at_version_1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
