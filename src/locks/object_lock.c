/*
 * Lease, ConfigMap and Endpoints locks: one implementation, three kinds.
 * A lock caches the object it last read or wrote; update writes the record
 * into a copy of that object and PUTs it, so the resourceVersion it carries
 * makes the write conditional and every other field survives.
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "kle/clock.h"
#include "kle/locks.h"
#include "kle/rest.h"
#include "kle/sys/errors.h"
#include "kle/sys/lock.h"
#include "kube/async.h"
#include "kube/kube.h"
#include "locks/locks_internal.h"
#include "locks/record_json.h"
#include "base/sat.h"

#define NS_PER_SEC INT64_C(1000000000)

typedef struct lock_kind {
    const char *kind;          /* "Lease" */
    const char *api_version;   /* "coordination.k8s.io/v1" */
    const char *group_version; /* for the path */
    const char *resource;      /* "leases" */
    int annotation;            /* record in the leader annotation, else in spec */
} lock_kind;

static const lock_kind LEASE = {"Lease", "coordination.k8s.io/v1", "coordination.k8s.io/v1",
                                "leases", 0};
static const lock_kind CONFIGMAP = {"ConfigMap", "v1", "v1", "configmaps", 1};
static const lock_kind ENDPOINTS = {"Endpoints", "v1", "v1", "endpoints", 1};

/*
 * What the migration guard saw of one object of the other family, dated on
 * this process's monotonic clock as the elector dates what it observes.
 */
typedef struct guard_seen {
    kle_lock_result res; /* the record last read (res.raw empty: none yet) */
    int64_t changed;     /* when its raw record last changed */
    int64_t observed;    /* when it was last renewed, as far as we can tell */
    int have;
} guard_seen;

typedef struct object_lock {
    kle_lock base;
    const lock_kind *kind;
    kle_client *client;
    char *ns;
    char *name;
    char *identity;
    char *description;
    char *event_component;
    char **labels; /* key, value, ..., NULL */
    int record_events;
    char path[512];
    char collection[512];
    char events_path[256];
    pthread_mutex_t mu;
    json_object *cached;
    /* The skipped-migration-phase guard (docs/migration.md, "The
     * skipped-phase guard"): on (1) or off (0); the other family's objects
     * (a Lease lock has two: the Endpoints and the ConfigMap; it reads the
     * one that holds a record once it has found one, else both or in turn). */
    int guard;
    int guard_next;    /* index into guard_paths of the pre-check's next read */
    int guard_found;   /* guard_next holds a record: read only that one */
    int guard_blocked; /* logged the refusal already */
    /* A check saw a live record of another holder in the other family:
     * until a check of that family passes, get and update refuse, also on
     * this lock's own record. */
    int refusing;
    int refusing_kind;
    /* Monotonic time until which a write naming us needs no re-check (0:
     * re-check the next one). Other replicas date a record by when its
     * bytes last changed: the bytes of our last re-checked write (or of a
     * write answered before this time after one) were first sent at T, so
     * until T + its lease duration no replica of the other family can
     * judge our record expired. */
    int64_t verified_until;
    char *own_raw; /* the record bytes our last write naming us put */
    size_t own_raw_len;
    int64_t own_first_send; /* when the first write of those bytes was sent */
    const lock_kind *guard_kinds[2];
    char guard_paths[2][512];
    guard_seen seen[2];
    /* Asynchronous calls and watch, on the attached loop's agent. */
    kle_kube__agent *agent;
    kle_lock_call *call; /* the call running, or NULL */
    struct ol_op *aop;   /* its state machine */
    kle_kube__request req;
    kle_loop_timer defer; /* a call that succeeded within start */
    kle_lock_watch_call *wcall;
    kle_kube__watch kw;
    char selector[300]; /* metadata.name=<name> */
} object_lock;

/*
 * A record of the other family whose renewTime is more than its lease
 * duration plus this much behind our wall clock is stale at once, whatever
 * we have observed of it: the guard assumes clocks that differ by less
 * (docs/migration.md, "What the guard assumes").
 */
#define GUARD_CLOCK_SKEW_NS (60 * NS_PER_SEC)
/* As the elector: a new resourceVersion with the same record counts as a
 * renewal for at most this long after the record last changed. */
#define GUARD_RECORD_PRECISION_NS NS_PER_SEC

static int64_t lease_ns(const kle_record *r)
{
    return r->lease_duration_seconds > 0 ? (int64_t)r->lease_duration_seconds * NS_PER_SEC : 0;
}

static int64_t mono_now(void)
{
    return kle_clock_monotonic_ns(kle_clock_real());
}

static json_object *metadata_of(json_object *obj)
{
    json_object *m = NULL;
    if (!json_object_object_get_ex(obj, "metadata", &m) ||
        !json_object_is_type(m, json_type_object))
        return NULL;
    return m;
}

static const char *string_at(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (!obj || !json_object_object_get_ex(obj, key, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* The child object at key, created when missing. */
static json_object *child(json_object *obj, const char *key)
{
    json_object *v = NULL;
    if (json_object_object_get_ex(obj, key, &v) && json_object_is_type(v, json_type_object))
        return v;
    v = json_object_new_object();
    json_object_object_add(obj, key, v);
    return v;
}

/*
 * Checks that an answer is an object of the lock's kind (a Status or any
 * other kind in a 200 answer is unreadable, never a free lock) and, when it
 * names itself, the lock's object.
 */
static int check_kind(object_lock *l, json_object *obj, const char *verb)
{
    json_object *kind = NULL;
    const char *expect = l->kind->kind;
    if (!json_object_object_get_ex(obj, "kind", &kind) || !kind)
        return kle_error_set(KLE_EBADRECORD,
                             "%s %s %s: the answer has no kind; expected a %s object", verb,
                             l->kind->resource, l->description, expect);
    if (!json_object_is_type(kind, json_type_string))
        return kle_error_set(KLE_EBADRECORD, "%s %s %s: the answer's kind is a JSON %s, not \"%s\"",
                             verb, l->kind->resource, l->description,
                             json_type_to_name(json_object_get_type(kind)), expect);
    const char *k = json_object_get_string(kind);
    size_t klen = (size_t)json_object_get_string_len(kind);
    if (klen != strlen(expect) || memcmp(k, expect, klen) != 0) {
        char shown[80];
        size_t n = 0;
        for (size_t i = 0; i < klen && n < 64; i++)
            shown[n++] = (unsigned char)k[i] < 0x20 || k[i] == 0x7f ? '?' : k[i];
        shown[n] = '\0';
        if (klen == 6 && memcmp(k, "Status", 6) == 0) {
            const char *msg = string_at(obj, "message");
            const char *reason = string_at(obj, "reason");
            return kle_error_set(KLE_EBADRECORD,
                                 "%s %s %s: the answer is a Status (reason %.40s: %.120s), not a "
                                 "%s object",
                                 verb, l->kind->resource, l->description,
                                 reason && *reason ? reason : "none", msg ? msg : "no message",
                                 expect);
        }
        return kle_error_set(KLE_EBADRECORD, "%s %s %s: the answer is a %s, not a %s object", verb,
                             l->kind->resource, l->description, shown, expect);
    }
    json_object *name = NULL;
    json_object *meta = metadata_of(obj);
    if (meta && json_object_object_get_ex(meta, "name", &name) && name &&
        (!json_object_is_type(name, json_type_string) ||
         (size_t)json_object_get_string_len(name) != strlen(l->name) ||
         memcmp(json_object_get_string(name), l->name, strlen(l->name)) != 0))
        return kle_error_set(KLE_EBADRECORD,
                             "%s %s %s: the answer is another object (metadata.name %.64s)", verb,
                             l->kind->resource, l->description,
                             json_object_to_json_string_ext(name, JSON_C_TO_STRING_PLAIN));
    return 0;
}

/* Reads the record out of an object of the lock's kind. */
static int read_record(kle_lock_result *out, object_lock *l, json_object *obj)
{
    char where[400];
    int rc;
    if ((rc = check_kind(l, obj, "get")) < 0)
        return rc;
    if (l->kind->annotation) {
        json_object *ann = NULL, *v = NULL;
        json_object *anns = json_object_object_get(metadata_of(obj), "annotations");
        snprintf(where, sizeof(where), "%s %s: annotation %s", l->kind->resource, l->description,
                 KLE_LEADER_ANNOTATION);
        if (anns && !json_object_is_type(anns, json_type_object))
            return kle_error_set(KLE_EBADRECORD, "%s %s: metadata.annotations is a JSON %s",
                                 l->kind->resource, l->description,
                                 json_type_to_name(json_object_get_type(anns)));
        if (anns && json_object_object_get_ex(anns, KLE_LEADER_ANNOTATION, &ann))
            v = ann;
        if (!v) {
            /* An object without the annotation holds no record: nobody holds it. */
            kle_record_init(&out->record, KLE_RECORD_VERSION);
            if (kle_record_set_holder(&out->record, "", 0) < 0 || !(out->raw = strdup("")))
                return kle_error_set(KLE_ENOMEM, "lock: out of memory");
            out->raw_len = 0;
        } else if (!json_object_is_type(v, json_type_string)) {
            return kle_error_set(KLE_EBADRECORD, "%s: a JSON %s, not a string", where,
                                 json_type_to_name(json_object_get_type(v)));
        } else {
            const char *text = json_object_get_string(v);
            size_t len = (size_t)json_object_get_string_len(v);
            if ((rc = kle_locks__annotation_read(&out->record, text, len, where)) < 0)
                return rc;
            if (!(out->raw = malloc(len + 1)))
                return kle_error_set(KLE_ENOMEM, "lock: out of memory");
            memcpy(out->raw, text, len + 1);
            out->raw_len = len;
        }
    } else {
        snprintf(where, sizeof(where), "lease %s", l->description);
        if ((rc = kle_locks__lease_spec_read(&out->record, json_object_object_get(obj, "spec"),
                                             where)) < 0)
            return rc;
        if ((rc = kle_locks__raw_record(&out->raw, &out->raw_len, &out->record)) < 0)
            return rc;
    }
    const char *rv = string_at(metadata_of(obj), "resourceVersion");
    if (rv && !(out->resource_version = strdup(rv)))
        return kle_error_set(KLE_ENOMEM, "lock: out of memory");
    return 0;
}

/* Puts the record into an object (creating metadata/spec as needed). */
static int write_record(object_lock *l, json_object *obj, const kle_record *r)
{
    if (l->kind->annotation) {
        char *text;
        json_object *ann = child(child(obj, "metadata"), "annotations");
        json_object *old = NULL;
        /* Keys of the record we do not know are someone else's: keep them. */
        int have = json_object_object_get_ex(ann, KLE_LEADER_ANNOTATION, &old) &&
                   json_object_is_type(old, json_type_string);
        int rc = kle_locks__annotation_merge(&text, r, have ? json_object_get_string(old) : NULL,
                                             have ? (size_t)json_object_get_string_len(old) : 0);
        if (rc < 0)
            return rc;
        json_object_object_add(ann, KLE_LEADER_ANNOTATION, json_object_new_string(text));
        free(text);
        return 0;
    }
    if (l->labels) {
        json_object *labels = child(child(obj, "metadata"), "labels");
        for (char **p = l->labels; p[0] && p[1]; p += 2)
            json_object_object_add(labels, p[0], json_object_new_string(p[1]));
    }
    return kle_locks__lease_spec_write(child(obj, "spec"), r);
}

static void set_cache(object_lock *l, json_object *obj)
{
    pthread_mutex_lock(&l->mu);
    json_object_put(l->cached);
    l->cached = obj;
    pthread_mutex_unlock(&l->mu);
}

static int holder_is(const kle_record *r, const char *id)
{
    const char *h = r->holder_identity ? r->holder_identity : "";
    size_t len = r->holder_identity_len ? r->holder_identity_len : strlen(h);
    return len == strlen(id) && memcmp(h, id, len) == 0;
}

/* The holder of @p r for a message: at most 200 bytes, control characters as '?'. */
static const char *shown_holder(char *buf, size_t size, const kle_record *r)
{
    const char *h = kle_record_holder(r);
    size_t len = kle_record_holder_len(r), n = 0;
    for (size_t i = 0; i < len && n + 1 < size && n < 200; i++)
        buf[n++] = (unsigned char)h[i] < 0x20 || h[i] == 0x7f ? '?' : h[i];
    buf[n] = '\0';
    return buf;
}

/*
 * ---- The skipped-migration-phase guard (docs/migration.md) ----
 *
 * Pre-check: before this replica may acquire (the record get read is not
 * its own, or there is none), one GET of the same-named lock of the other
 * family; a live record there of another holder than the one our record
 * names makes get fail with KLE_ESTATE (a MultiLock leader's two records
 * name the same holder: that agrees).
 *
 * Re-check: after a write that makes this replica the holder and is not a
 * renewal within the lease of a re-checked write (a create, a takeover, a
 * first write after a refusal), and before the call returns success, the
 * other family again. Both families write their own object, then read the
 * other's: of two such replicas at least one sees the other's write. The
 * Lease wins the tie: an Endpoints or ConfigMap lock that sees a live Lease
 * of another holder gives its record back (released) and fails; a Lease
 * lock that sees a live annotation record of another holder keeps its Lease
 * unrenewed and fails. Either then refuses (get re-checks even its own
 * record, update refuses at once) until a check of that family passes.
 *
 * Liveness is judged as the elector judges its own lock: by when this
 * process saw the record change (seen_update), plus a wall-clock cut-off
 * for records left over from long ago (seen_live).
 */

static void seen_forget(guard_seen *s)
{
    kle_lock_result_dispose(&s->res);
    s->have = 0;
}

/*
 * Notes what a read of the other family showed at @p now, by the elector's
 * rule (core/observed.c): a changed raw record was renewed now; a new
 * resourceVersion with the same record at most GUARD_RECORD_PRECISION_NS
 * after it last changed. Takes what it keeps out of @p got.
 */
static void seen_update(guard_seen *s, kle_lock_result *got, int64_t now)
{
    int changed = !s->have || s->res.raw_len != got->raw_len ||
                  memcmp(s->res.raw, got->raw, got->raw_len) != 0;
    int touched =
        !changed && got->resource_version &&
        (!s->res.resource_version || strcmp(got->resource_version, s->res.resource_version) != 0);
    if (changed) {
        kle_lock_result_dispose(&s->res);
        s->res = *got;
        kle_lock_result_init(got, KLE_LOCK_RESULT_VERSION);
        s->changed = now;
        s->observed = now;
        s->have = 1;
    } else if (touched) {
        int64_t cap = kle_sat__add(s->changed, GUARD_RECORD_PRECISION_NS);
        int64_t t = now < cap ? now : cap;
        if (t > s->observed)
            s->observed = t;
        free(s->res.resource_version);
        s->res.resource_version = got->resource_version;
        got->resource_version = NULL;
    }
}

/*
 * Whether the record last seen is a live record of another holder: held,
 * not ours, renewed less than its lease duration ago by our own
 * observation, and not stale by its renewTime on our wall clock (more than
 * its lease duration plus GUARD_CLOCK_SKEW_NS old). Saturating: any times
 * and durations a record can carry.
 */
static int seen_live(const object_lock *l, const guard_seen *s, int64_t now, int64_t wall)
{
    if (!s->have)
        return 0;
    const kle_record *r = &s->res.record;
    /* A release (holder "", at most 1 s, as every release writes it) is
     * free; a holder emptied by hand keeps its lease and is live until it
     * expires by observation, as the elector judges it (R6 in
     * docs/architecture.md): else the other family's leader would still
     * work while this one took over. */
    if (kle_record_holder_len(r) == 0 && r->lease_duration_seconds <= 1)
        return 0;
    if (holder_is(r, l->identity))
        return 0;
    int64_t d = lease_ns(r);
    if (kle_sat__add(kle_sat__add(r->renew_time_ns, d), GUARD_CLOCK_SKEW_NS) < wall)
        return 0;
    return kle_sat__add(s->observed, d) > now;
}

/*
 * Notes one read of the other family's object @p i (its answer: @p rc and
 * @p obj, taken) in seen[i]. Returns 1 when the record seen there (or, when
 * the object is gone, the record last seen of it, until that expires) is a
 * live record of another holder than @p agree names, 0 when not, or an
 * error. *has_record: the object exists and holds a record. A 403 turns
 * the guard off (0).
 */
static int guard_read_done(object_lock *l, int i, int rc, json_object *obj, const kle_record *agree,
                           int *has_record)
{
    *has_record = 0;
    int64_t now = mono_now();
    if (rc == KLE_EFORBIDDEN) {
        l->guard = 0;
        /* Expected where no migration is under way (deploy/rbac.yaml grants
         * only the Lease): no warning about a migration that never happened. */
        KLE_LOG_V(1,
                  "lock %s: cannot read %s %s (403 Forbidden): the skipped-migration-phase "
                  "guard is off (docs/migration.md, \"The phases\")",
                  l->description, l->guard_kinds[i]->resource, l->description);
        kle_error_clear();
        return 0;
    }
    if (rc < 0 && rc != KLE_ENOTFOUND)
        return kle_error_prefix("lock %s: migration guard: ", l->description);
    if (rc == 0) {
        object_lock other;
        memset(&other, 0, sizeof(other));
        other.kind = l->guard_kinds[i];
        other.name = l->name;
        other.description = l->description;
        kle_lock_result theirs = KLE_LOCK_RESULT_INIT;
        rc = read_record(&theirs, &other, obj);
        json_object_put(obj);
        if (rc < 0) {
            /* Not a lock record: no replica of that family leads on it. */
            kle_lock_result_dispose(&theirs);
            kle_error_clear();
            seen_forget(&l->seen[i]);
            return 0;
        }
        *has_record = theirs.raw_len > 0;
        seen_update(&l->seen[i], &theirs, now);
        kle_lock_result_dispose(&theirs);
    } else {
        kle_error_clear();
    }
    if (!seen_live(l, &l->seen[i], now, kle_clock_wall_ns(kle_clock_real())))
        return 0;
    if (agree && kle_record_holder_len(agree) > 0 &&
        kle_record_holder_equal(agree, &l->seen[i].res.record))
        return 0;
    return 1;
}

/* Refuses: KLE_ESTATE naming the live record of family @p i, logged once. */
static int guard_refuse(object_lock *l, int i, const char *lead, const char *tail)
{
    char who[208];
    l->refusing = 1;
    l->refusing_kind = i;
    l->verified_until = 0;
    int rc = kle_error_set(
        KLE_ESTATE,
        "lock %s: %sthe %s of the same name is held by \"%s\" (a live record): replicas on %s "
        "and on %s locks run at once, a skipped migration phase%s; move through the MultiLock "
        "phase (endpointsleases or configmapsleases) first, see docs/migration.md, \"The "
        "phases\" (or turn the migration guard off: kle run --migration-guard=false, "
        "kle_lock_set_migration_guard())",
        l->description, lead, l->guard_kinds[i]->kind,
        shown_holder(who, sizeof(who), &l->seen[i].res.record), l->kind->resource,
        l->guard_kinds[i]->resource, tail);
    if (!l->guard_blocked)
        KLE_LOG_E("%s", kle_error_last()->message);
    l->guard_blocked = 1;
    return rc;
}

static void guard_clear(object_lock *l)
{
    l->refusing = 0;
    l->guard_blocked = 0;
}

/* A write naming this replica while it refuses: refused at once, nothing sent. */
static int still_refusing(object_lock *l, const char *verb)
{
    char who[208];
    const lock_kind *k = l->guard_kinds[l->refusing_kind];
    return kle_error_set(KLE_ESTATE,
                         "%s %s %s: refused: the %s of the same name was last seen held by \"%s\" "
                         "(a live record; a skipped migration phase, see docs/migration.md, \"The "
                         "phases\"); the next get checks it again",
                         verb, l->kind->resource, l->description, k->kind,
                         shown_holder(who, sizeof(who), &l->seen[l->refusing_kind].res.record));
}

/*
 * Before a write naming us is sent: notes the record bytes it puts (as
 * other replicas will read them from @p obj) and, when they differ from the
 * last ones, that they are first sent now.
 */
static void note_own_bytes(object_lock *l, json_object *obj, const kle_record *record)
{
    kle_lock_result r = KLE_LOCK_RESULT_INIT;
    int64_t now = mono_now();
    if (!holder_is(record, l->identity))
        return;
    if (read_record(&r, l, obj) < 0) {
        kle_error_clear();
        free(l->own_raw);
        l->own_raw = NULL;
        l->own_raw_len = 0;
        l->own_first_send = now;
    } else if (!l->own_raw || l->own_raw_len != r.raw_len ||
               memcmp(l->own_raw, r.raw, r.raw_len) != 0) {
        free(l->own_raw);
        l->own_raw = r.raw;
        l->own_raw_len = r.raw_len;
        r.raw = NULL;
        l->own_first_send = now;
    }
    kle_lock_result_dispose(&r);
}

/*
 * ---- Lock calls as state machines of requests ----
 *
 * Every call (get, create, update, record_event) is one small state
 * machine: op_begin() and op_answer() say which request to make next
 * (OP_REQUEST: op->method, op->path, op->body) or that the call is over
 * (OP_DONE: op->rc, with the error recorded). The synchronous members run
 * it with kle_client_request() (op_run_sync); the asynchronous ones on the
 * attached loop with the API client's agent (op_run_async). The rules (the
 * guard's pre-check and re-check, its refusal and one deadline per call)
 * are written once, here.
 */

enum { OP_DONE = 0, OP_REQUEST = 1 };

enum op_step {
    S_GET,       /* GET the lock object */
    S_PRE,       /* the pre-check's read of the other family */
    S_CREATE,    /* POST the lock object */
    S_UPDATE,    /* PUT over the cached object */
    S_AFTER,     /* the re-check's read of the other family */
    S_GIVE_BACK, /* PUT a released record after a re-check that failed */
    S_EVENT      /* POST an Event */
};

typedef struct ol_op {
    kle_lock_call_kind kind;
    enum op_step step;
    int64_t deadline;         /* one for the whole call */
    const kle_record *record; /* CREATE, UPDATE (borrowed) */
    const char *message;      /* EVENT (borrowed) */
    kle_lock_result *out;     /* GET (the caller's) */
    int mine;                 /* the record written names this replica */
    int notfound;             /* GET: the lock object does not exist */
    const kle_record *agree;  /* the record the guard's read may agree with */
    int guard_i;              /* the other family's object being read */
    int after_scan;           /* the re-check reads the Endpoints, then the ConfigMap */
    kle_lock_result replaced; /* UPDATE: the record the write replaced */
    kle_record rel;           /* S_GIVE_BACK: the released record */
    int after_kind;           /* the family the re-check found live */
    /* The request to make. */
    const char *method;
    const char *path;
    const char *verb; /* for "no time left": "get", "create", "update", ... */
    int want_object;  /* the answer must be a JSON object */
    json_object *body;
    int rc;
} ol_op;

static void op_init(ol_op *op, kle_lock_call_kind kind, int64_t timeout_ns)
{
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->deadline = kle_sat__add(mono_now(), timeout_ns > 0 ? timeout_ns : 0);
    kle_lock_result_init(&op->replaced, KLE_LOCK_RESULT_VERSION);
    kle_record_init(&op->rel, KLE_RECORD_VERSION);
}

static void op_dispose(ol_op *op)
{
    json_object_put(op->body);
    op->body = NULL;
    kle_lock_result_dispose(&op->replaced);
    kle_record_dispose(&op->rel);
}

/* The call's time is up: recorded as request_opts did before any request. */
static int no_time(object_lock *l, const char *verb)
{
    return kle_error_set(KLE_ETIMEOUT, "%s %s %s: no time left", verb, l->kind->resource,
                         l->description);
}

static int done(ol_op *op, int rc)
{
    op->rc = rc;
    op_dispose(op);
    return OP_DONE;
}

static int request(ol_op *op, enum op_step step, const char *method, const char *path,
                   const char *verb, int want_object, json_object *body)
{
    op->step = step;
    op->method = method;
    op->path = path;
    op->verb = verb;
    op->want_object = want_object;
    op->body = body;
    return OP_REQUEST;
}

/* The guard's read of family @p i (the pre-check or the re-check). */
static int guard_request(object_lock *l, ol_op *op, enum op_step step, int i,
                         const kle_record *agree)
{
    op->guard_i = i;
    op->agree = agree;
    return request(op, step, "GET", l->guard_paths[i], "get", 1, NULL);
}

/* The pre-check, before this replica may acquire (@p mine: the record get
 * read, NULL when none): one read of the other family, or none needed. */
static int pre_check(object_lock *l, ol_op *op, const kle_record *mine)
{
    if (!l->guard || (mine && holder_is(mine, l->identity) && !l->refusing))
        return done(op, 0);
    int i = l->refusing ? l->refusing_kind : l->guard_next;
    return guard_request(l, op, S_PRE, i, mine);
}

static int pre_check_answered(object_lock *l, ol_op *op, int rc, json_object *obj)
{
    int i = op->guard_i, has;
    rc = guard_read_done(l, i, rc, obj, op->agree, &has);
    if (rc < 0)
        return done(op, rc);
    if (has) {
        l->guard_found = 1;
        l->guard_next = i;
    } else if (!l->guard_found && l->guard_kinds[1] && !l->refusing) {
        l->guard_next = 1 - i; /* A Lease lock looks at the other family next time. */
    }
    if (rc == 1)
        return done(op, guard_refuse(l, i, "", ""));
    guard_clear(l);
    if (op->notfound)
        return done(
            op, kle_error_set(KLE_ENOTFOUND, "%s %s not found", l->kind->resource, l->description));
    return done(op, 0);
}

/*
 * Prepares the write of @p record over the cached object (conditional on
 * its resourceVersion): 0 with *out the object to PUT, or an error.
 * @p replaced (may be NULL) gets the record it held.
 */
static int write_prepare(object_lock *l, ol_op *op, const kle_record *record,
                         kle_lock_result *replaced, json_object **out)
{
    *out = NULL;
    if (op->deadline <= mono_now())
        return no_time(l, "update");
    json_object *copy = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->cached && json_object_deep_copy(l->cached, &copy, NULL) < 0)
        copy = NULL;
    int have = l->cached != NULL;
    pthread_mutex_unlock(&l->mu);
    if (!have)
        return kle_error_set(KLE_ESTATE, "update %s %s: not read yet; get or create it first",
                             l->kind->resource, l->description);
    if (!copy)
        return kle_error_set(KLE_ENOMEM, "update %s %s: out of memory", l->kind->resource,
                             l->description);
    if (replaced && read_record(replaced, l, copy) < 0) {
        kle_lock_result_dispose(replaced);
        kle_error_clear();
    }
    int rc = write_record(l, copy, record);
    if (rc < 0) {
        json_object_put(copy);
        return rc;
    }
    note_own_bytes(l, copy, record);
    *out = copy;
    return 0;
}

/* The answer to a write: an object of the lock's kind becomes the cache. */
static int write_answered(object_lock *l, int rc, json_object *obj, const char *verb)
{
    /* An unreadable answer: the write may have landed, but it is not ours to count. */
    if (rc == 0 && (rc = check_kind(l, obj, verb)) < 0)
        json_object_put(obj);
    if (rc < 0)
        return rc;
    set_cache(l, obj);
    return 0;
}

/* The refusal after a re-check of an annotation lock, once its record was
 * given back (@p urc: how that went). */
static int gave_back(object_lock *l, ol_op *op, int urc)
{
    char tail[600];
    if (urc == 0)
        snprintf(tail, sizeof(tail), " (gave the %s record back, released)", l->kind->kind);
    else
        snprintf(tail, sizeof(tail),
                 " (could not give the %s record back: %.400s; it expires unrenewed)",
                 l->kind->kind, kle_error_last()->message);
    return done(op, guard_refuse(l, op->after_kind, "took the record, then found that ", tail));
}

/*
 * After a write naming this replica (@p op->record) over @p op->replaced
 * (none: created): the re-check. The Lease for an annotation lock; for a
 * Lease lock the annotation object that holds a record once one was
 * found, else the Endpoints and, when that holds none, the ConfigMap.
 */
static int after_win(object_lock *l, ol_op *op)
{
    const kle_record *replaced = op->kind == KLE_LOCK_CALL_UPDATE ? &op->replaced.record : NULL;
    if (!l->guard_kinds[1] || l->guard_found) {
        op->after_scan = 0;
        return guard_request(l, op, S_AFTER, l->guard_kinds[1] ? l->guard_next : 0, replaced);
    }
    op->after_scan = 1;
    return guard_request(l, op, S_AFTER, 0, replaced);
}

/* The re-check found no live record of another holder: the write stands,
 * and writes naming us need none until its bytes were first sent + the
 * record's lease duration. */
static int after_win_clear(object_lock *l, ol_op *op)
{
    l->verified_until = kle_sat__add(l->own_first_send, lease_ns(op->record));
    guard_clear(l);
    return done(op, 0);
}

static int after_win_answered(object_lock *l, ol_op *op, int rc, json_object *obj)
{
    int i = op->guard_i, has;
    rc = guard_read_done(l, i, rc, obj, op->agree, &has);
    if (op->after_scan && rc == 0 && l->guard) {
        if (has) {
            l->guard_found = 1;
            l->guard_next = i;
        } else if (i == 0) {
            return guard_request(l, op, S_AFTER, 1, op->agree);
        }
    }
    if (rc < 0)
        return done(op, kle_error_prefix("lock %s: wrote the record, but could not read the "
                                         "other family's lock again before leading: ",
                                         l->description));
    if (rc == 0)
        return after_win_clear(l, op);
    if (!l->kind->annotation)
        return done(op, guard_refuse(l, i, "wrote the Lease, then found that ",
                                     " (keeping the Lease unrenewed and not leading while that "
                                     "record is live)"));
    /* Give the record back: released, conditional on the version just written. */
    op->after_kind = i;
    int64_t wall = kle_clock_wall_ns(kle_clock_real());
    json_object *body = NULL;
    rc = kle_record_set_holder(&op->rel, "", 0);
    if (rc == 0) {
        op->rel.lease_duration_seconds = 1;
        op->rel.acquire_time_ns = wall;
        op->rel.renew_time_ns = wall;
        op->rel.leader_transitions = op->record->leader_transitions;
        rc = write_prepare(l, op, &op->rel, NULL, &body);
    }
    if (rc == 0)
        return request(op, S_GIVE_BACK, "PUT", l->path, "update", 1, body);
    return gave_back(l, op, rc);
}

/* An Event as client-go's recorder makes it, on the lock object. */
static json_object *event_object(object_lock *l, const char *message)
{
    char uid[128] = "", rv[64] = "";
    pthread_mutex_lock(&l->mu);
    json_object *meta = metadata_of(l->cached);
    snprintf(uid, sizeof(uid), "%s", string_at(meta, "uid") ? string_at(meta, "uid") : "");
    snprintf(rv, sizeof(rv), "%s",
             string_at(meta, "resourceVersion") ? string_at(meta, "resourceVersion") : "");
    pthread_mutex_unlock(&l->mu);

    int64_t now = kle_clock_wall_ns(NULL);
    char stamp[40], name[320], text[1024], host[256] = "";
    kle_time_format(stamp, sizeof(stamp), now, 0);
    snprintf(name, sizeof(name), "%s.%llx", l->name, (unsigned long long)now);
    snprintf(text, sizeof(text), "%s %s", l->identity, message);
    gethostname(host, sizeof(host) - 1);

    json_object *ev = json_object_new_object();
    json_object_object_add(ev, "apiVersion", json_object_new_string("v1"));
    json_object_object_add(ev, "kind", json_object_new_string("Event"));
    json_object *m = child(ev, "metadata");
    json_object_object_add(m, "name", json_object_new_string(name));
    json_object_object_add(m, "namespace", json_object_new_string(l->ns));
    json_object *io = child(ev, "involvedObject");
    json_object_object_add(io, "kind", json_object_new_string(l->kind->kind));
    json_object_object_add(io, "namespace", json_object_new_string(l->ns));
    json_object_object_add(io, "name", json_object_new_string(l->name));
    if (uid[0])
        json_object_object_add(io, "uid", json_object_new_string(uid));
    json_object_object_add(io, "apiVersion", json_object_new_string(l->kind->api_version));
    if (rv[0])
        json_object_object_add(io, "resourceVersion", json_object_new_string(rv));
    json_object_object_add(ev, "reason", json_object_new_string("LeaderElection"));
    json_object_object_add(ev, "message", json_object_new_string(text));
    json_object *src = child(ev, "source");
    json_object_object_add(src, "component", json_object_new_string(l->event_component));
    if (host[0])
        json_object_object_add(src, "host", json_object_new_string(host));
    json_object_object_add(ev, "firstTimestamp", json_object_new_string(stamp));
    json_object_object_add(ev, "lastTimestamp", json_object_new_string(stamp));
    json_object_object_add(ev, "count", json_object_new_int(1));
    json_object_object_add(ev, "type", json_object_new_string("Normal"));
    json_object_object_add(ev, "reportingComponent", json_object_new_string(l->event_component));
    json_object_object_add(ev, "reportingInstance", json_object_new_string(l->identity));
    return ev;
}

/* The first step of a call. */
static int op_begin(object_lock *l, ol_op *op)
{
    json_object *body = NULL;
    int rc;
    switch (op->kind) {
    case KLE_LOCK_CALL_GET:
        return request(op, S_GET, "GET", l->path, "get", 1, NULL);
    case KLE_LOCK_CALL_CREATE:
        op->mine = holder_is(op->record, l->identity);
        if (l->guard && op->mine && l->refusing)
            return done(op, still_refusing(l, "create"));
        if (op->deadline <= mono_now())
            return done(op, no_time(l, "create"));
        body = json_object_new_object();
        json_object_object_add(body, "apiVersion", json_object_new_string(l->kind->api_version));
        json_object_object_add(body, "kind", json_object_new_string(l->kind->kind));
        json_object *meta = child(body, "metadata");
        json_object_object_add(meta, "name", json_object_new_string(l->name));
        json_object_object_add(meta, "namespace", json_object_new_string(l->ns));
        l->verified_until = 0;
        if ((rc = write_record(l, body, op->record)) < 0) {
            json_object_put(body);
            return done(op, rc);
        }
        note_own_bytes(l, body, op->record);
        return request(op, S_CREATE, "POST", l->collection, "create", 1, body);
    case KLE_LOCK_CALL_UPDATE:
        op->mine = holder_is(op->record, l->identity);
        if (l->guard && op->mine && l->refusing)
            return done(op, still_refusing(l, "update"));
        if ((rc = write_prepare(l, op, op->record, &op->replaced, &body)) < 0)
            return done(op, rc);
        return request(op, S_UPDATE, "PUT", l->path, "update", 1, body);
    case KLE_LOCK_CALL_EVENT:
    default:
        if (!l->record_events)
            return done(op, 0);
        if (op->deadline <= mono_now())
            return done(op, no_time(l, "record event on"));
        return request(op, S_EVENT, "POST", l->events_path, "record event on", 0,
                       event_object(l, op->message));
    }
}

/* The answer to the request op_begin or op_answer asked for: @p rc, and
 * @p obj (taken; the parsed body of a 2xx answer). */
static int op_answer(object_lock *l, ol_op *op, int rc, json_object *obj)
{
    json_object_put(op->body);
    op->body = NULL;
    if (rc < 0) {
        json_object_put(obj);
        obj = NULL;
    } else if (op->want_object && (!obj || !json_object_is_type(obj, json_type_object))) {
        json_object_put(obj);
        obj = NULL;
        rc = kle_error_set(KLE_EBADRESPONSE, "%s %s: the response is not a JSON object", op->method,
                           op->path);
    }
    switch (op->step) {
    case S_GET:
        if (rc == KLE_ENOTFOUND) {
            l->verified_until = 0;
            if (l->guard) {
                /* No lock yet: this replica would create it. */
                op->notfound = 1;
                return pre_check(l, op, NULL);
            }
        }
        if (rc < 0)
            return done(op, rc);
        if ((rc = read_record(op->out, l, obj)) < 0) {
            json_object_put(obj);
            return done(op, rc);
        }
        set_cache(l, obj);
        if (!holder_is(&op->out->record, l->identity))
            l->verified_until = 0;
        return pre_check(l, op, &op->out->record);
    case S_PRE:
        return pre_check_answered(l, op, rc, obj);
    case S_CREATE:
        if ((rc = write_answered(l, rc, obj, "create")) < 0)
            return done(op, rc);
        if (!l->guard || !op->mine)
            return done(op, 0);
        return after_win(l, op);
    case S_UPDATE: {
        int64_t returned = mono_now();
        if ((rc = write_answered(l, rc, obj, "update")) < 0)
            return done(op, rc);
        if (!op->mine)
            l->verified_until = 0;
        if (!op->mine || !l->guard)
            return done(op, 0);
        if (l->verified_until && returned < l->verified_until) {
            /* A renewal answered within the lease of a re-checked write. */
            l->verified_until = kle_sat__add(l->own_first_send, lease_ns(op->record));
            return done(op, 0);
        }
        return after_win(l, op);
    }
    case S_AFTER:
        return after_win_answered(l, op, rc, obj);
    case S_GIVE_BACK:
        return gave_back(l, op, write_answered(l, rc, obj, "update"));
    case S_EVENT:
    default:
        json_object_put(obj);
        return done(op, rc);
    }
}

/* ---- the synchronous members: the machine run with kle_client_request ---- */

static int op_run_sync(object_lock *l, ol_op *op, const kle_lock_ctx *ctx)
{
    int r = op_begin(l, op);
    while (r == OP_REQUEST) {
        json_object *obj = NULL;
        int rc;
        int64_t left = op->deadline - mono_now();
        if (left <= 0) {
            rc = no_time(l, op->verb);
        } else {
            kle_request_opts o = KLE_REQUEST_OPTS_INIT;
            o.timeout_ns = left;
            o.cancel = ctx->cancel;
            size_t len = 0;
            const char *body =
                op->body
                    ? json_object_to_json_string_length(
                          op->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
                    : NULL;
            rc = kle_client_request(&obj, l->client, op->method, op->path,
                                    body ? "application/json" : NULL, body, len, &o);
        }
        r = op_answer(l, op, rc, obj);
    }
    return op->rc;
}

static int ol_get(kle_lock_result *out, kle_lock *self, const kle_lock_ctx *ctx)
{
    object_lock *l = (object_lock *)self;
    ol_op op;
    op_init(&op, KLE_LOCK_CALL_GET, ctx->timeout_ns);
    op.out = out;
    return op_run_sync(l, &op, ctx);
}

static int ol_create(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    object_lock *l = (object_lock *)self;
    ol_op op;
    op_init(&op, KLE_LOCK_CALL_CREATE, ctx->timeout_ns);
    op.record = record;
    return op_run_sync(l, &op, ctx);
}

static int ol_update(kle_lock *self, const kle_record *record, const kle_lock_ctx *ctx)
{
    object_lock *l = (object_lock *)self;
    ol_op op;
    op_init(&op, KLE_LOCK_CALL_UPDATE, ctx->timeout_ns);
    op.record = record;
    return op_run_sync(l, &op, ctx);
}

static int ol_record_event(kle_lock *self, const char *message, const kle_lock_ctx *ctx)
{
    object_lock *l = (object_lock *)self;
    ol_op op;
    op_init(&op, KLE_LOCK_CALL_EVENT, ctx->timeout_ns);
    op.message = message;
    return op_run_sync(l, &op, ctx);
}

/* ---- the asynchronous members: the machine run on the attached loop ---- */

static void call_finish(object_lock *l, int rc)
{
    kle_lock_call *call = l->call;
    l->call = NULL;
    if (rc < 0 && call->kind == KLE_LOCK_CALL_GET)
        kle_lock_result_dispose(call->result);
    call->done(call, rc, call->data);
}

static void on_request_done(kle_kube__request *req, int rc, json_object *obj, void *data);

/* Starts the requests the machine asks for until one is under way (1) or
 * the call is over (0, op->rc). */
static int op_run_async(object_lock *l, int r)
{
    ol_op *op = l->aop;
    while (r == OP_REQUEST) {
        int rc;
        if (op->deadline - mono_now() <= 0) {
            rc = no_time(l, op->verb);
        } else {
            kle_kube__request init = KLE_KUBE_REQUEST_INIT;
            l->req = init;
            l->req.method = op->method;
            l->req.path = op->path;
            if (op->body) {
                l->req.body = json_object_to_json_string_length(
                    op->body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                    &l->req.body_len);
                l->req.content_type = "application/json";
            }
            l->req.deadline_ns = op->deadline;
            l->req.done = on_request_done;
            l->req.data = l;
            if ((rc = kle_kube__request_start(l->agent, &l->req)) == 0)
                return 1;
        }
        r = op_answer(l, op, rc, NULL);
    }
    return 0;
}

static void on_request_done(kle_kube__request *req, int rc, json_object *obj, void *data)
{
    object_lock *l = data;
    if (op_run_async(l, op_answer(l, l->aop, rc, obj)))
        return;
    call_finish(l, l->aop->rc);
}

/* A call that succeeded without a request completes at the next dispatch. */
static void on_deferred(kle_loop *loop, kle_loop_timer *t, void *data)
{
    call_finish(data, 0);
}

static int ol_attach(kle_lock *self, kle_loop *loop)
{
    object_lock *l = (object_lock *)self;
    if (!loop) {
        if (l->call || l->wcall)
            return kle_error_set(KLE_ESTATE, "lock %s: a call or watch still runs on its loop",
                                 l->description);
        kle_kube__agent_put(l->agent);
        l->agent = NULL;
        return 0;
    }
    if (l->agent)
        return kle_kube__agent_loop(l->agent) == loop
                   ? 0
                   : kle_error_set(KLE_ESTATE, "lock %s: already attached to another loop",
                                   l->description);
    if (!l->aop && !(l->aop = calloc(1, sizeof(*l->aop))))
        return kle_error_set(KLE_ENOMEM, "lock %s: out of memory", l->description);
    if (kle_kube__agent_get(&l->agent, l->client, loop) < 0)
        return kle_error_prefix("lock %s: ", l->description);
    return 0;
}

static int ol_start(kle_lock *self, kle_lock_call *call)
{
    object_lock *l = (object_lock *)self;
    if (!call || !call->done)
        return kle_error_set(KLE_EINVAL, "lock %s: a call needs a completion", l->description);
    if (call->version < 1 || call->version > KLE_LOCK_CALL_VERSION)
        return kle_error_set(KLE_EVERSION, "lock %s: kle_lock_call version %u is not supported",
                             l->description, call->version);
    if (!l->agent)
        return kle_error_set(KLE_ESTATE, "lock %s: not attached to a loop", l->description);
    if (l->call)
        return kle_error_set(KLE_ESTATE, "lock %s: a call is already running", l->description);
    ol_op *op = l->aop;
    switch (call->kind) {
    case KLE_LOCK_CALL_GET:
        if (!call->result || kle_lock_result_init(call->result, call->result->version) < 0)
            return kle_error_set(KLE_EINVAL, "get %s: the call needs a result of a known version",
                                 l->description);
        break;
    case KLE_LOCK_CALL_CREATE:
    case KLE_LOCK_CALL_UPDATE:
        if (!call->record || call->record->version < 1 ||
            call->record->version > KLE_RECORD_VERSION)
            return kle_error_set(KLE_EINVAL, "lock %s: the call needs a record of a known version",
                                 l->description);
        break;
    case KLE_LOCK_CALL_EVENT:
        break;
    default:
        return kle_error_set(KLE_EINVAL, "lock %s: unknown call kind %d", l->description,
                             (int)call->kind);
    }
    op_init(op, call->kind, call->timeout_ns);
    op->record = call->record;
    op->message = call->message ? call->message : "";
    op->out = call->result;
    l->call = call;
    int r = call->kind == KLE_LOCK_CALL_EVENT && !call->message ? done(op, 0) : op_begin(l, op);
    if (op_run_async(l, r))
        return 0;
    if (op->rc < 0) {
        l->call = NULL;
        if (call->kind == KLE_LOCK_CALL_GET)
            kle_lock_result_dispose(call->result);
        return op->rc;
    }
    int rc = kle_loop_timer_arm(kle_kube__agent_loop(l->agent), &l->defer,
                                kle_kube__agent_now(l->agent), on_deferred, l);
    if (rc < 0)
        l->call = NULL;
    return rc;
}

static void ol_abandon(kle_lock *self, kle_lock_call *call)
{
    object_lock *l = (object_lock *)self;
    if (!call || l->call != call)
        return;
    kle_kube__request_abandon(&l->req);
    kle_loop_timer_disarm(kle_kube__agent_loop(l->agent), &l->defer);
    op_dispose(l->aop);
    if (call->kind == KLE_LOCK_CALL_GET)
        kle_lock_result_dispose(call->result);
    l->call = NULL;
}

/* ---- watch: a single-object watch of the lock object ---- */

typedef struct ol_watch {
    object_lock *l;
    kle_lock_watch_fn fn;
    void *data;
} ol_watch;

static int deliver_object(ol_watch *w, json_object *obj, int listed)
{
    kle_lock_result got = KLE_LOCK_RESULT_INIT;
    kle_lock_event ev = {KLE_LOCK_EVENT_VERSION, KLE_LOCK_EVENT_RECORD, listed, NULL, NULL, 0};
    json_object *kind = NULL;
    /* List items carry no kind; an event's object does. */
    if (!json_object_object_get_ex(obj, "kind", &kind))
        json_object_object_add(obj, "kind", json_object_new_string(w->l->kind->kind));
    int rc = read_record(&got, w->l, obj);
    if (rc < 0) {
        ev.type = KLE_LOCK_EVENT_ERROR;
        ev.error = rc;
        ev.resource_version = string_at(metadata_of(obj), "resourceVersion");
    } else {
        ev.result = &got;
        ev.resource_version = got.resource_version;
    }
    rc = w->fn(&ev, w->data);
    kle_lock_result_dispose(&got);
    return rc;
}

static int ol_watch_event(kle_watch_event_type type, json_object *obj, void *data)
{
    ol_watch *w = data;
    object_lock *l = w->l;
    kle_lock_event ev = {KLE_LOCK_EVENT_VERSION, KLE_LOCK_EVENT_BOOKMARK, 0, NULL, NULL, 0};
    switch (type) {
    case KLE_WATCH_LISTED: {
        json_object *items = NULL;
        if (json_object_object_get_ex(obj, "items", &items) &&
            json_object_is_type(items, json_type_array)) {
            size_t n = json_object_array_length(items);
            for (size_t i = 0; i < n; i++) {
                json_object *it = json_object_array_get_idx(items, i);
                const char *name = string_at(metadata_of(it), "name");
                if (name && strcmp(name, l->name) == 0)
                    return deliver_object(w, it, 1);
            }
        }
        ev.type = KLE_LOCK_EVENT_DELETED;
        ev.listed = 1;
        ev.resource_version = string_at(metadata_of(obj), "resourceVersion");
        return w->fn(&ev, w->data);
    }
    case KLE_WATCH_ADDED:
    case KLE_WATCH_MODIFIED:
        return deliver_object(w, obj, 0);
    case KLE_WATCH_DELETED:
        ev.type = KLE_LOCK_EVENT_DELETED;
        ev.resource_version = string_at(metadata_of(obj), "resourceVersion");
        return w->fn(&ev, w->data);
    case KLE_WATCH_BOOKMARK:
    default:
        ev.resource_version = string_at(metadata_of(obj), "resourceVersion");
        return w->fn(&ev, w->data);
    }
}

/*
 * A watch of the lock object alone (fieldSelector=metadata.name=<name>) on
 * its collection, with bookmarks, resumed from the last resourceVersion and
 * re-listed after 410 Gone by the client. It never touches the cached
 * object that update is conditional on.
 */
static int ol_watch_fn(kle_lock *self, const kle_lock_watch_opts *opts, kle_lock_watch_fn fn,
                       void *data)
{
    object_lock *l = (object_lock *)self;
    kle_watch_opts wo = KLE_WATCH_OPTS_INIT;
    wo.resource_version = opts->resource_version;
    wo.field_selector = l->selector;
    wo.timeout_ns = opts->timeout_ns;
    wo.stream_timeout_ns = opts->stream_timeout_ns;
    wo.cancel = opts->cancel;
    ol_watch w = {l, fn, data};
    int rc = kle_client_watch(l->client, l->collection, &wo, ol_watch_event, &w);
    if (rc < 0 && rc != KLE_ECANCELED)
        return kle_error_prefix("watch %s %s: ", l->kind->resource, l->description);
    return rc;
}

/* The same watch on the attached loop. */
static int ol_kw_event(kle_kube__watch *kw, kle_watch_event_type type, json_object *obj, void *data)
{
    object_lock *l = data;
    kle_lock_watch_call *wc = l->wcall;
    if (!wc)
        return 1;
    ol_watch w = {l, wc->event, wc->data};
    int r = ol_watch_event(type, obj, &w);
    if (r && l->wcall == wc)
        l->wcall = NULL; /* the callback stopped it: no end */
    return r;
}

static void ol_kw_ended(kle_kube__watch *kw, int rc, void *data)
{
    object_lock *l = data;
    kle_lock_watch_call *wc = l->wcall;
    l->wcall = NULL;
    if (!wc)
        return;
    kle_error_prefix("watch %s %s: ", l->kind->resource, l->description);
    if (wc->ended)
        wc->ended(wc, rc, wc->data);
}

static int ol_watch_start(kle_lock *self, kle_lock_watch_call *wc)
{
    object_lock *l = (object_lock *)self;
    if (!wc || !wc->event)
        return kle_error_set(KLE_EINVAL, "watch %s: a watch needs an event callback",
                             l->description);
    if (wc->version < 1 || wc->version > KLE_LOCK_WATCH_CALL_VERSION)
        return kle_error_set(KLE_EVERSION,
                             "watch %s: kle_lock_watch_call version %u is not supported",
                             l->description, wc->version);
    if (!l->agent)
        return kle_error_set(KLE_ESTATE, "watch %s: not attached to a loop", l->description);
    if (l->wcall || kle_kube__watch_running(&l->kw))
        return kle_error_set(KLE_ESTATE, "watch %s: a watch is already running", l->description);
    l->kw.path = l->collection;
    l->kw.field_selector = l->selector;
    l->kw.label_selector = NULL;
    l->kw.stream_timeout_ns = wc->stream_timeout_ns;
    l->kw.event = ol_kw_event;
    l->kw.ended = ol_kw_ended;
    l->kw.data = l;
    snprintf(l->kw.resource_version, sizeof(l->kw.resource_version), "%s",
             wc->resource_version ? wc->resource_version : "");
    l->wcall = wc;
    if (kle_kube__watch_start(l->agent, &l->kw) < 0) {
        l->wcall = NULL;
        return kle_error_prefix("watch %s %s: ", l->kind->resource, l->description);
    }
    return 0;
}

static void ol_watch_stop(kle_lock *self, kle_lock_watch_call *wc)
{
    object_lock *l = (object_lock *)self;
    if (!wc || l->wcall != wc)
        return;
    l->wcall = NULL;
    kle_kube__watch_stop(&l->kw);
}

static const char *ol_identity(kle_lock *self)
{
    return ((object_lock *)self)->identity;
}

static const char *ol_describe(kle_lock *self)
{
    return ((object_lock *)self)->description;
}

static void ol_free(kle_lock *self)
{
    object_lock *l = (object_lock *)self;
    /* Still attached: what runs is given up first. */
    if (l->agent) {
        if (l->call)
            ol_abandon(self, l->call);
        if (l->wcall)
            ol_watch_stop(self, l->wcall);
        kle_kube__watch_stop(&l->kw);
        kle_kube__agent_put(l->agent);
    }
    free(l->aop);
    json_object_put(l->cached);
    seen_forget(&l->seen[0]);
    seen_forget(&l->seen[1]);
    free(l->own_raw);
    if (l->labels)
        for (char **p = l->labels; *p; p++)
            free(*p);
    free(l->labels);
    free(l->ns);
    free(l->name);
    free(l->identity);
    free(l->description);
    free(l->event_component);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int kle_locks__is_object_lock(kle_lock *lock)
{
    return lock && lock->get == ol_get;
}

int kle_lock_set_migration_guard(kle_lock *lock, int on)
{
    if (!kle_locks__is_object_lock(lock))
        return kle_error_set(KLE_EINVAL, "migration guard: not a Lease, ConfigMap or "
                                         "Endpoints lock");
    ((object_lock *)lock)->guard = on != 0;
    return 0;
}

static int copy_labels(object_lock *l, const char *const *labels)
{
    size_t n = 0;
    if (!labels)
        return 0;
    while (labels[n])
        n++;
    if (n % 2)
        return kle_error_set(KLE_EINVAL, "lock %s: lease_labels must be key, value pairs",
                             l->description);
    l->labels = calloc(n + 1, sizeof(char *));
    if (!l->labels)
        return KLE_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!(l->labels[i] = strdup(labels[i])))
            return KLE_ENOMEM;
    return 0;
}

static int object_lock_new(kle_lock **out, const lock_kind *kind, kle_client *client,
                           const kle_resource_lock_opts *opts)
{
    if (!out)
        return kle_error_set(KLE_EINVAL, "%s lock: out is NULL", kind->kind);
    *out = NULL;
    if (!opts || !client)
        return kle_error_set(KLE_EINVAL, "%s lock: client and options are required", kind->kind);
    if (opts->version < 1 || opts->version > KLE_RESOURCE_LOCK_OPTS_VERSION)
        return kle_error_set(KLE_EVERSION, "%s lock: options version %u is not supported",
                             kind->kind, opts->version);
    if (!opts->name || !*opts->name)
        return kle_error_set(KLE_EINVAL, "%s lock: a lock name is required", kind->kind);
    if (!kle_kube__valid_name(opts->name, 0))
        return kle_error_set(KLE_EINVAL,
                             "%s lock: name \"%s\" is not a valid %s name: a lowercase RFC 1123 "
                             "subdomain must consist of lower case alphanumeric characters, '-' or "
                             "'.', and must start and end with an alphanumeric character (at most "
                             "253 characters)",
                             kind->kind, opts->name, kind->kind);
    if (kle_identity_check(opts->identity) < 0)
        return kle_error_prefix("%s lock %s: ", kind->kind, opts->name);
    const char *ns =
        opts->namespace_ && *opts->namespace_ ? opts->namespace_ : kle_client_namespace(client);
    if (!kle_kube__valid_name(ns, 1))
        return kle_error_set(KLE_EINVAL,
                             "%s lock %s: namespace \"%s\" is not valid: a lowercase RFC 1123 "
                             "label must consist of lower case alphanumeric characters or '-', and "
                             "must start and end with an alphanumeric character (at most 63 "
                             "characters)",
                             kind->kind, opts->name, ns);
    object_lock *l = calloc(1, sizeof(*l));
    if (!l)
        return kle_error_set(KLE_ENOMEM, "lock: out of memory");
    pthread_mutex_init(&l->mu, NULL);
    for (int i = 0; i < 2; i++)
        kle_lock_result_init(&l->seen[i].res, KLE_LOCK_RESULT_VERSION);
    l->base =
        (kle_lock){KLE_LOCK_VERSION, ol_get,      ol_create,      ol_update,    ol_record_event,
                   ol_identity,      ol_describe, ol_free,        ol_watch_fn,  ol_attach,
                   ol_start,         ol_abandon,  ol_watch_start, ol_watch_stop};
    l->kind = kind;
    l->client = client;
    l->record_events = opts->record_events;
    size_t dlen = strlen(ns) + strlen(opts->name) + 2;
    l->ns = strdup(ns);
    l->name = strdup(opts->name);
    l->identity = strdup(opts->identity);
    l->event_component = strdup(opts->event_component ? opts->event_component : "kle");
    l->description = malloc(dlen);
    int rc = 0;
    if (!l->ns || !l->name || !l->identity || !l->event_component || !l->description) {
        rc = kle_error_set(KLE_ENOMEM, "lock: out of memory");
        goto fail;
    }
    snprintf(l->description, dlen, "%s/%s", ns, opts->name);
    snprintf(l->selector, sizeof(l->selector), "metadata.name=%s", opts->name);
    l->guard = 1;
    l->guard_kinds[0] = kind == &LEASE ? &ENDPOINTS : &LEASE;
    l->guard_kinds[1] = kind == &LEASE ? &CONFIGMAP : NULL;
    for (int i = 0; i < 2 && l->guard_kinds[i]; i++)
        if ((rc = kle_client_path(l->guard_paths[i], sizeof(l->guard_paths[i]),
                                  l->guard_kinds[i]->group_version, l->guard_kinds[i]->resource, ns,
                                  opts->name)) < 0) {
            kle_error_prefix("%s lock %s: ", kind->kind, l->description);
            goto fail;
        }
    if ((rc = copy_labels(l, opts->lease_labels)) < 0)
        goto fail;
    if ((rc = kle_client_path(l->path, sizeof(l->path), kind->group_version, kind->resource, ns,
                              opts->name)) < 0 ||
        (rc = kle_client_path(l->collection, sizeof(l->collection), kind->group_version,
                              kind->resource, ns, NULL)) < 0 ||
        (rc = kle_client_path(l->events_path, sizeof(l->events_path), "v1", "events", ns, NULL)) <
            0) {
        kle_error_prefix("%s lock %s: ", kind->kind, l->description);
        goto fail;
    }
    *out = &l->base;
    return 0;
fail:
    ol_free(&l->base);
    return rc;
}

int kle_lease_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts)
{
    return object_lock_new(out, &LEASE, client, opts);
}

int kle_configmap_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts)
{
    return object_lock_new(out, &CONFIGMAP, client, opts);
}

int kle_endpoints_lock_new(kle_lock **out, kle_client *client, const kle_resource_lock_opts *opts)
{
    return object_lock_new(out, &ENDPOINTS, client, opts);
}

/* The record codecs of the three kinds without a client (locks_internal.h). */
static void codec_lock(object_lock *l, int kind, const char *name)
{
    static const lock_kind *const kinds[] = {&LEASE, &CONFIGMAP, &ENDPOINTS};
    memset(l, 0, sizeof(*l));
    l->kind = kinds[kind >= 0 && kind < 3 ? kind : 0];
    l->name = (char *)name;
    l->description = (char *)name;
}

int kle_locks__object_read(kle_lock_result *out, int kind, const char *name, json_object *obj)
{
    object_lock l;
    codec_lock(&l, kind, name);
    return read_record(out, &l, obj);
}

int kle_locks__object_write(json_object *obj, int kind, const kle_record *r)
{
    object_lock l;
    codec_lock(&l, kind, "");
    return write_record(&l, obj, r);
}
