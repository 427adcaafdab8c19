/*
 * LeaseCandidate publishing (client-go's leasecandidate.go, polling instead
 * of an informer) and planned handover (kle transfer).
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "kle/coordinated.h"
#include "kle/record.h"
#include "kle/rest.h"
#include "base/versioned.h"
#include "kle/sys/errors.h"

#define CANDIDATES_GV "coordination.k8s.io/v1beta1"

struct kle_candidate {
    kle_client *client;
    char *ns, *name, *lease_name, *binary_version, *emulation_version, *strategy;
    int64_t poll_period, renew_interval;
    char path[512];
    char collection[512];
    kle_event *stop;
    pthread_t thread;
    int running;
};

static const char *str_at(json_object *o, const char *a, const char *b)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, a, &v) || (b && !json_object_object_get_ex(v, b, &v)) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A MicroTime field as wall ns; 0 when missing or unreadable. */
static int64_t time_at(json_object *obj, const char *field)
{
    int64_t ns = 0;
    const char *s = str_at(obj, "spec", field);
    if (!s || kle_time_parse(&ns, s) < 0) {
        kle_error_clear();
        return 0;
    }
    return ns;
}

static json_object *micro_time(int64_t ns)
{
    char buf[40];
    kle_time_format(buf, sizeof(buf), ns, 6);
    return json_object_new_string(buf);
}

static kle_request_opts call_opts(void)
{
    kle_request_opts o = KLE_REQUEST_OPTS_INIT;
    o.timeout_ns = KLE_SEC(5);
    return o;
}

/* client-go's ensureLease: create when missing, else renew. */
static int ensure(kle_candidate *c, int64_t *last_renew, int only_if_pinged)
{
    kle_request_opts o = call_opts();
    json_object *obj = NULL;
    int64_t now = kle_clock_wall_ns(NULL);
    int rc = kle_client_get(&obj, c->client, c->path, &o);
    if (rc == KLE_ENOTFOUND) {
        json_object *lc = json_object_new_object(), *meta = json_object_new_object(),
                    *spec = json_object_new_object();
        json_object_object_add(lc, "apiVersion", json_object_new_string(CANDIDATES_GV));
        json_object_object_add(lc, "kind", json_object_new_string("LeaseCandidate"));
        json_object_object_add(meta, "name", json_object_new_string(c->name));
        json_object_object_add(meta, "namespace", json_object_new_string(c->ns));
        json_object_object_add(lc, "metadata", meta);
        json_object_object_add(spec, "leaseName", json_object_new_string(c->lease_name));
        json_object_object_add(spec, "binaryVersion", json_object_new_string(c->binary_version));
        if (c->emulation_version)
            json_object_object_add(spec, "emulationVersion",
                                   json_object_new_string(c->emulation_version));
        json_object_object_add(spec, "strategy", json_object_new_string(c->strategy));
        json_object_object_add(spec, "renewTime", micro_time(now));
        json_object_object_add(lc, "spec", spec);
        rc = kle_client_create(NULL, c->client, c->collection, lc, &o);
        json_object_put(lc);
        if (rc == 0) {
            *last_renew = now;
            KLE_LOG_V(2, "created lease candidate %s/%s", c->ns, c->name);
        }
        return rc;
    }
    if (rc < 0)
        return rc;
    int64_t ping = time_at(obj, "pingTime"), renew = time_at(obj, "renewTime");
    int pinged = ping != 0 && ping > renew;
    if (only_if_pinged && !pinged) {
        json_object_put(obj);
        return 0;
    }
    json_object *spec = NULL;
    if (!json_object_object_get_ex(obj, "spec", &spec) ||
        !json_object_is_type(spec, json_type_object)) {
        spec = json_object_new_object();
        json_object_object_add(obj, "spec", spec);
    }
    json_object_object_add(spec, "renewTime", micro_time(now));
    rc = kle_client_update(NULL, c->client, c->path, obj, &o);
    json_object_put(obj);
    if (rc == 0)
        *last_renew = now;
    return rc;
}

/* Why a 404 can mean the API itself is missing: clusters serve
 * coordination.k8s.io/v1beta1 LeaseCandidates only when enabled. */
#define NOT_SERVED_WHY                                                                             \
    "the API server does not serve LeaseCandidates (coordination.k8s.io/v1beta1; a cluster "       \
    "serves them only with --runtime-config=coordination.k8s.io/v1beta1=true and "                 \
    "--feature-gates=CoordinatedLeaderElection=true, see docs/coordinated.md)"

/* 1 when the server lists leasecandidates in coordination.k8s.io/v1beta1,
 * 0 when it does not serve them (404, or not in the list), -1 when the
 * question could not be asked (error set). */
static int candidates_served(kle_client *client)
{
    kle_request_opts o = call_opts();
    json_object *list = NULL, *resources = NULL;
    int rc = kle_client_get(&list, client, "/apis/" CANDIDATES_GV, &o);
    if (rc == KLE_ENOTFOUND) {
        kle_error_clear();
        return 0;
    }
    if (rc < 0)
        return -1;
    int served = 0;
    if (json_object_object_get_ex(list, "resources", &resources) &&
        json_object_is_type(resources, json_type_array))
        for (size_t i = 0; i < json_object_array_length(resources); i++) {
            const char *name = str_at(json_object_array_get_idx(resources, i), "name", NULL);
            served |= name && strcmp(name, "leasecandidates") == 0;
        }
    json_object_put(list);
    return served;
}

static void *candidate_main(void *p)
{
    kle_candidate *c = p;
    kle_clock *clk = kle_clock_real();
    int64_t last_renew = 0, last_ok = INT64_MIN;
    int have = 0, unserved = 0;
    while (!kle_event_is_set(c->stop)) {
        int64_t mono = kle_clock_monotonic_ns(clk), wait = c->poll_period;
        int due = !have || mono - last_ok >= c->renew_interval;
        int rc = ensure(c, &last_renew, !due);
        if (rc == KLE_ENOTFOUND && candidates_served(c->client) == 0) {
            /* Said once; asked again every renew interval, quietly: the
             * API may be enabled later. */
            if (!unserved)
                KLE_LOG_W("lease candidate %s/%s is not published: " NOT_SERVED_WHY
                          "; trying again every %lld s",
                          c->ns, c->name, (long long)(c->renew_interval / KLE_SEC(1)));
            unserved = 1;
            wait = c->renew_interval;
        } else if (rc == 0 && due) {
            if (unserved)
                KLE_LOG_I("lease candidate %s/%s published: the API server serves "
                          "LeaseCandidates now",
                          c->ns, c->name);
            unserved = 0;
            have = 1;
            last_ok = mono;
        } else if (rc < 0) {
            /* Every poll fails alike: once in full (with what to do about
             * a 403), then a count a minute. */
            if (rc == KLE_EFORBIDDEN)
                KLE_LOG_W_LIMITED("lease candidate %s/%s: %s; this replica is not a candidate "
                                  "(kle transfer cannot pick it) until its account may get, "
                                  "create and update leasecandidates (coordination.k8s.io): "
                                  "grant them (deploy/rbac.yaml), or run it without --candidate",
                                  c->ns, c->name, kle_error_last()->message);
            else
                KLE_LOG_W_LIMITED("lease candidate %s/%s: %s", c->ns, c->name,
                                  kle_error_last()->message);
        }
        kle_clock_wait(clk, c->stop, kle_clock_monotonic_ns(clk) + wait);
    }
    return NULL;
}

int kle_candidate_opts_init(kle_candidate_opts *opts, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_candidate_opts_init", opts, version, KLE_CANDIDATE_OPTS_VERSION,
                     kle_candidate_opts, KLE_CANDIDATE_OPTS_INIT, sizeof(*opts));
    return 0;
}

static char *dup_or_null(const char *s, int *fail)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *fail = 1;
    return d;
}

static void candidate_dispose(kle_candidate *c)
{
    kle_event_free(c->stop);
    free(c->ns);
    free(c->name);
    free(c->lease_name);
    free(c->binary_version);
    free(c->emulation_version);
    free(c->strategy);
    free(c);
}

int kle_candidate_start(kle_candidate **out, kle_client *client, const kle_candidate_opts *o)
{
    if (!out || !client || !o)
        return kle_error_set(KLE_EINVAL, "kle_candidate_start: out, client and opts are required");
    *out = NULL;
    KLE__CHECK_VERSION(o->version, KLE_CANDIDATE_OPTS_VERSION, "kle_candidate_start: opts");
    const char *strategy = o->strategy ? o->strategy : KLE_STRATEGY_OLDEST_EMULATION_VERSION;
    if (!o->name || !*o->name || !o->lease_name || !*o->lease_name || !o->binary_version ||
        !*o->binary_version)
        return kle_error_set(KLE_EINVAL, "lease candidate: name, lease_name and binary_version "
                                         "are required");
    if ((!o->emulation_version || !*o->emulation_version) &&
        strcmp(strategy, KLE_STRATEGY_OLDEST_EMULATION_VERSION) == 0)
        return kle_error_set(KLE_EINVAL,
                             "lease candidate %s: emulation_version is required with "
                             "strategy OldestEmulationVersion",
                             o->name);
    kle_candidate *c = calloc(1, sizeof(*c));
    if (!c)
        return kle_error_set(KLE_ENOMEM, "lease candidate: out of memory");
    int fail = 0;
    c->client = client;
    c->ns = dup_or_null(
        o->namespace_ && *o->namespace_ ? o->namespace_ : kle_client_namespace(client), &fail);
    c->name = dup_or_null(o->name, &fail);
    c->lease_name = dup_or_null(o->lease_name, &fail);
    c->binary_version = dup_or_null(o->binary_version, &fail);
    c->emulation_version = dup_or_null(o->emulation_version, &fail);
    c->strategy = dup_or_null(strategy, &fail);
    c->poll_period = o->poll_period_ns > 0 ? o->poll_period_ns : KLE_SEC(1);
    c->renew_interval = o->renew_interval_ns > 0 ? o->renew_interval_ns : KLE_SEC(300);
    int rc = 0;
    if (fail) {
        rc = kle_error_set(KLE_ENOMEM, "lease candidate: out of memory");
    } else if ((rc = kle_client_path(c->path, sizeof(c->path), CANDIDATES_GV, "leasecandidates",
                                     c->ns, c->name)) < 0 ||
               (rc = kle_client_path(c->collection, sizeof(c->collection), CANDIDATES_GV,
                                     "leasecandidates", c->ns, NULL)) < 0) {
        kle_error_prefix("lease candidate %s: ", o->name);
    } else if ((rc = kle_event_new(&c->stop)) == 0) {
        int err = pthread_create(&c->thread, NULL, candidate_main, c);
        if (err)
            rc = kle_error_set(KLE_ESYSTEM, "lease candidate: cannot start a thread: %s",
                               strerror(err));
        else
            c->running = 1;
    }
    if (rc < 0) {
        candidate_dispose(c);
        return rc;
    }
    *out = c;
    return 0;
}

int kle_candidate_stop(kle_candidate *c, int delete_object)
{
    if (!c)
        return 0;
    if (c->running) {
        kle_event_set(c->stop);
        pthread_join(c->thread, NULL);
        c->running = 0;
    }
    if (!delete_object)
        return 0;
    kle_request_opts o = call_opts();
    int rc = kle_client_delete(NULL, c->client, c->path, &o);
    if (rc == KLE_ENOTFOUND) {
        kle_error_clear();
        return 0;
    }
    return rc;
}

void kle_candidate_free(kle_candidate *c)
{
    if (!c)
        return;
    kle_candidate_stop(c, 0);
    candidate_dispose(c);
}

int kle_transfer_opts_init(kle_transfer_opts *opts, unsigned int version)
{
    /* Every version has the whole layout. */
    KLE__INIT_STRUCT("kle_transfer_opts_init", opts, version, KLE_TRANSFER_OPTS_VERSION,
                     kle_transfer_opts, KLE_TRANSFER_OPTS_INIT, sizeof(*opts));
    return 0;
}

/*
 * The target's LeaseCandidate: LOCK.TO (kle run --candidate), else TO (the
 * name of a coordinated candidate, which the election controller writes in
 * as holder, and of candidates published by older kle), whichever exists
 * and names the lock as its leaseName. Returns 0 with its path in @p path
 * and the object in *out; KLE_ENOTFOUND when neither exists for the lock;
 * another error of the API.
 */
static int find_candidate(json_object **out, char *path, size_t size, kle_client *client,
                          const char *ns, const char *lock, const char *to)
{
    char names[2][600];
    kle_request_opts o = call_opts();
    int other_lease = 0;
    char other[256] = "";
    snprintf(names[0], sizeof(names[0]), "%s.%s", lock, to);
    snprintf(names[1], sizeof(names[1]), "%s", to);
    *out = NULL;
    for (int i = 0; i < 2; i++) {
        json_object *obj = NULL;
        if (kle_client_path(path, size, CANDIDATES_GV, "leasecandidates", ns, names[i]) < 0) {
            kle_error_clear();
            continue;
        }
        int rc = kle_client_get(&obj, client, path, &o);
        if (rc == KLE_ENOTFOUND || rc == KLE_EINVAL) {
            kle_error_clear();
            continue;
        }
        if (rc < 0)
            return kle_error_prefix("transfer to \"%s\": reading its LeaseCandidate: ", to);
        const char *lease = str_at(obj, "spec", "leaseName");
        if (lease && strcmp(lease, lock) == 0) {
            *out = obj;
            return 0;
        }
        other_lease = 1;
        snprintf(other, sizeof(other), "%.200s", lease ? lease : "");
        json_object_put(obj);
    }
    if (other_lease)
        return kle_error_set(KLE_ENOTFOUND,
                             "transfer to \"%s\": its LeaseCandidate is for lease \"%s\", not "
                             "%s, so it is not a candidate for %s",
                             to, other, lock, lock);
    return kle_error_set(KLE_ENOTFOUND,
                         "transfer to \"%s\": no LeaseCandidate %s/%s.%s or %s/%s, so it is not "
                         "a live candidate for %s (kle run publishes one with --candidate or "
                         "--coordinated; --force skips this check)",
                         to, ns, lock, to, ns, to, lock);
}

int kle_transfer_find_candidate(kle_client *client, const char *namespace_, const char *lock_name,
                                const char *to)
{
    if (!client || !lock_name || !*lock_name || !to || !*to)
        return kle_error_set(KLE_EINVAL, "kle_transfer_find_candidate: client, lock name and "
                                         "target are required");
    const char *ns = namespace_ && *namespace_ ? namespace_ : kle_client_namespace(client);
    char path[512];
    json_object *obj = NULL;
    int rc = find_candidate(&obj, path, sizeof(path), client, ns, lock_name, to);
    json_object_put(obj);
    return rc;
}

/*
 * The target's LeaseCandidate must exist, name the lock, and answer a ping:
 * pingTime set now, then renewTime after it within the timeout.
 */
static int check_live_candidate(kle_client *client, const char *ns, const char *lock,
                                const char *to, int64_t timeout)
{
    char path[512];
    json_object *obj = NULL;
    kle_request_opts o = call_opts();
    int rc = find_candidate(&obj, path, sizeof(path), client, ns, lock, to);
    char why[1024];
    snprintf(why, sizeof(why), "%s", rc < 0 ? kle_error_last()->message : "");
    if (rc == KLE_ENOTFOUND && candidates_served(client) == 0)
        return kle_error_set(KLE_ESTATE,
                             "transfer to \"%s\": " NOT_SERVED_WHY
                             ", so no replica can be a live candidate (--force skips this check)",
                             to);
    if (rc == KLE_ENOTFOUND) {
        /* candidates_served() made a request of its own: the message is find_candidate's. */
        return kle_error_set(KLE_ESTATE, "%s", why);
    }
    if (rc < 0)
        return rc;
    int64_t ping = kle_clock_wall_ns(NULL);
    json_object *spec = json_object_object_get(obj, "spec");
    json_object_object_add(spec, "pingTime", micro_time(ping));
    rc = kle_client_update(NULL, client, path, obj, &o);
    json_object_put(obj);
    if (rc < 0)
        return kle_error_prefix("transfer to \"%s\": pinging its LeaseCandidate: ", to);
    kle_clock *clk = kle_clock_real();
    int64_t end = kle_clock_monotonic_ns(clk) + timeout;
    while (kle_clock_monotonic_ns(clk) < end) {
        kle_clock_sleep(clk, KLE_MS(100));
        if ((rc = kle_client_get(&obj, client, path, &o)) < 0)
            return kle_error_prefix("transfer to \"%s\": reading its LeaseCandidate: ", to);
        int64_t renew = time_at(obj, "renewTime");
        json_object_put(obj);
        if (renew >= ping)
            return 0;
    }
    return kle_error_set(KLE_ESTATE,
                         "transfer to \"%s\": its LeaseCandidate did not answer a ping within "
                         "%lld ms, so it is not a live candidate (--force skips this check)",
                         to, (long long)(timeout / KLE_NS_PER_MS));
}

int kle_transfer(kle_client *client, const kle_transfer_opts *opts)
{
    if (!client || !opts)
        return kle_error_set(KLE_EINVAL, "kle_transfer: client and opts are required");
    KLE__CHECK_VERSION(opts->version, KLE_TRANSFER_OPTS_VERSION, "kle_transfer: opts");
    const char *type = opts->lock_type ? opts->lock_type : "leases";
    if (!opts->lock_name || !*opts->lock_name || !opts->to || !*opts->to)
        return kle_error_set(KLE_EINVAL, "transfer: a lock name and a target identity are "
                                         "required");
    if (strcmp(type, "leases") != 0)
        return kle_error_set(KLE_EINVAL,
                             "transfer: lock type %s has no preferredHolder that its replicas "
                             "read (client-go's annotation locks drop it): only leases can be "
                             "transferred; stop the leader with release-on-cancel instead, "
                             "see docs/coordinated.md",
                             type);
    if (kle_identity_check(opts->to) < 0)
        return kle_error_prefix("transfer: target: ");
    const char *ns =
        opts->namespace_ && *opts->namespace_ ? opts->namespace_ : kle_client_namespace(client);
    char path[512];
    int rc = kle_client_path(path, sizeof(path), "coordination.k8s.io/v1", "leases", ns,
                             opts->lock_name);
    if (rc < 0)
        return kle_error_prefix("transfer: ");
    for (int attempt = 0; attempt < 5; attempt++) {
        kle_request_opts o = call_opts();
        json_object *lease = NULL;
        if ((rc = kle_client_get(&lease, client, path, &o)) < 0)
            return kle_error_prefix("transfer: lease %s/%s: ", ns, opts->lock_name);
        const char *holder = str_at(lease, "spec", "holderIdentity");
        if (!holder || !*holder) {
            json_object_put(lease);
            return kle_error_set(KLE_ESTATE,
                                 "transfer: nobody holds lease %s/%s: nothing to hand "
                                 "over",
                                 ns, opts->lock_name);
        }
        if (strcmp(holder, opts->to) == 0) {
            json_object_put(lease);
            return kle_error_set(KLE_ESTATE, "transfer: \"%s\" already holds lease %s/%s", opts->to,
                                 ns, opts->lock_name);
        }
        if (attempt == 0 && !opts->force &&
            (rc = check_live_candidate(client, ns, opts->lock_name, opts->to,
                                       opts->ping_timeout_ns > 0 ? opts->ping_timeout_ns
                                                                 : KLE_SEC(5))) < 0) {
            json_object_put(lease);
            return rc;
        }
        json_object_object_add(json_object_object_get(lease, "spec"), "preferredHolder",
                               json_object_new_string(opts->to));
        rc = kle_client_update(NULL, client, path, lease, &o);
        json_object_put(lease);
        if (rc != KLE_ECONFLICT)
            return rc < 0 ? kle_error_prefix("transfer: lease %s/%s: ", ns, opts->lock_name) : 0;
    }
    return kle_error_set(KLE_ECONFLICT, "transfer: lease %s/%s changed under every attempt", ns,
                         opts->lock_name);
}
