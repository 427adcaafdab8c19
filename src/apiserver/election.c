/*
 * The coordinated-election controller (KEP-4355), behind
 * --feature-gates=CoordinatedLeaderElection=true as in kube-apiserver.
 *
 * One pass every ELECTION_TICK over the LeaseCandidates grouped by
 * namespace and leaseName: kube-apiserver's reconcileElectionStep
 * (pkg/controlplane/controller/leaderelection/leaderelection_controller.go):
 * decide whether an election is needed, ping candidates whose renewTime is
 * older than the election duration and wait for their acks, then pick the
 * best acked candidate by the strategy and write it into the Lease (holder
 * of a missing, free or expired Lease; preferredHolder of a held one). And
 * leasecandidategc_controller.go: candidates not renewed for 30 minutes are
 * deleted. The candidate order and tie-breaks are election.go's
 * (pickBestLeaderOldestEmulationVersion, compare, pickBestStrategy).
 */
#include "apiserver/apiserver.h"

#include "kle/record.h"
#include "base/now.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS                       INT64_C(1000000000)
#define ELECTION_DURATION        (5 * NS)        /* electionDuration */
#define CANDIDATE_VALID          (1800 * NS)     /* leaseCandidateValidDuration: 30 min */
#define DEFAULT_LEASE_SECONDS    5               /* defaultLeaseDurationSeconds */
#define ELECTION_TICK_NS         (200 * 1000000) /* our stand-in for the work queue */
#define GC_EVERY_TICKS           5               /* expired candidates looked for every second */
#define OLDEST_EMULATION_VERSION "OldestEmulationVersion"

int kle_apiserver__coordinated_election;

static pthread_t thread;
static int running;
static volatile int stopping;

static int64_t wall_now(void)
{
    return kle_now__ns(CLOCK_REALTIME);
}

static const char *spec_str(json_object *o, const char *field)
{
    json_object *spec = NULL, *v = NULL;
    if (!json_object_object_get_ex(o, "spec", &spec) ||
        !json_object_object_get_ex(spec, field, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* A time field: 0 when missing (nil) or unreadable. */
static int64_t time_of(const char *s)
{
    int64_t ns = 0;
    if (!s || kle_time_parse(&ns, s) < 0)
        return 0;
    return ns;
}

static int64_t spec_time(json_object *o, const char *field)
{
    return time_of(spec_str(o, field));
}

static const char *meta_str(json_object *o, const char *field)
{
    json_object *m = NULL, *v = NULL;
    if (!json_object_object_get_ex(o, "metadata", &m) || !json_object_object_get_ex(m, field, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* blang/semver ParseTolerant: trims spaces and a leading "v", pads a short
 * MAJOR[.MINOR] with .0 (a short version may not carry -pre or +build). */
typedef struct semver {
    unsigned long long v[3];
    char pre[128]; /* without the '-'; "" when none */
} semver;

static int parse_tolerant(semver *out, const char *text)
{
    char buf[256];
    memset(out, 0, sizeof(*out));
    if (!text)
        return -1;
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    snprintf(buf, sizeof(buf), "%s", text);
    size_t n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\n'))
        buf[--n] = '\0';
    char *s = buf[0] == 'v' ? buf + 1 : buf;
    char *build = strchr(s, '+');
    if (build)
        *build = '\0';
    char *pre = strchr(s, '-');
    if (pre)
        *pre++ = '\0';
    int parts = 0;
    char *p = s;
    while (parts < 3) {
        char *end;
        if (*p < '0' || *p > '9')
            return -1;
        out->v[parts++] = strtoull(p, &end, 10);
        if (*end == '\0')
            break;
        if (*end != '.' || parts == 3)
            return -1;
        p = end + 1;
    }
    if (parts < 3 && (pre || build))
        return -1;
    if (pre) {
        if (!*pre)
            return -1;
        snprintf(out->pre, sizeof(out->pre), "%s", pre);
    }
    return 0;
}

static int is_num(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 0;
}

/* semver.Version.Compare: -1, 0, 1. */
static int semver_cmp(const semver *a, const semver *b)
{
    for (int i = 0; i < 3; i++)
        if (a->v[i] != b->v[i])
            return a->v[i] < b->v[i] ? -1 : 1;
    if (!a->pre[0] && !b->pre[0])
        return 0;
    if (!a->pre[0])
        return 1; /* a release is newer than its pre-releases */
    if (!b->pre[0])
        return -1;
    const char *x = a->pre, *y = b->pre;
    for (;;) {
        size_t xn = strcspn(x, "."), yn = strcspn(y, ".");
        int xnum = is_num(x, xn), ynum = is_num(y, yn);
        int c;
        if (xnum && ynum) {
            unsigned long long xv = strtoull(x, NULL, 10), yv = strtoull(y, NULL, 10);
            c = xv < yv ? -1 : xv > yv;
        } else if (xnum != ynum) {
            c = xnum ? -1 : 1; /* numeric identifiers sort first */
        } else {
            int m = strncmp(x, y, xn < yn ? xn : yn);
            c = m ? (m < 0 ? -1 : 1) : (xn < yn ? -1 : xn > yn);
        }
        if (c)
            return c;
        x += xn;
        y += yn;
        if (!*x && !*y)
            return 0;
        if (!*x)
            return -1;
        if (!*y)
            return 1;
        x++;
        y++;
    }
}

static semver version_or_zero(json_object *c, const char *field)
{
    semver v;
    if (parse_tolerant(&v, spec_str(c, field)) < 0)
        memset(&v, 0, sizeof(v));
    return v;
}

/* election.go compare: -1 lhs better, 1 rhs better. */
static int compare(json_object *lhs, json_object *rhs)
{
    semver l = version_or_zero(lhs, "emulationVersion"),
           r = version_or_zero(rhs, "emulationVersion");
    int result = semver_cmp(&l, &r);
    if (result == 0) {
        l = version_or_zero(lhs, "binaryVersion");
        r = version_or_zero(rhs, "binaryVersion");
        result = semver_cmp(&l, &r);
    }
    if (result == 0) {
        /* CreationTimestamp.After: whole seconds (metav1.Time). */
        int64_t lt = time_of(meta_str(lhs, "creationTimestamp")),
                rt = time_of(meta_str(rhs, "creationTimestamp"));
        return lt > rt ? 1 : -1;
    }
    return result;
}

static int valid_for_oldest(json_object *c)
{
    semver v;
    return parse_tolerant(&v, spec_str(c, "emulationVersion")) == 0 &&
           parse_tolerant(&v, spec_str(c, "binaryVersion")) == 0;
}

/* pickBestLeaderOldestEmulationVersion: the first best in list order. */
static json_object *pick_best(json_object **c, size_t n)
{
    json_object *electee = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!valid_for_oldest(c[i]))
            continue;
        if (!electee || compare(electee, c[i]) > 0)
            electee = c[i];
    }
    return electee;
}

/* pickBestStrategy: the strategy of the highest binary version; a tie with different strategies
 * is a conflict (NULL). */
static const char *pick_strategy(json_object **c, size_t n)
{
    if (n == 0)
        return NULL;
    const char *strategy = spec_str(c[0], "strategy");
    semver highest = version_or_zero(c[0], "binaryVersion");
    for (size_t i = 1; i < n; i++) {
        semver bv = version_or_zero(c[i], "binaryVersion");
        const char *s = spec_str(c[i], "strategy");
        int result = semver_cmp(&highest, &bv);
        if (result < 0) {
            strategy = s;
            highest = bv;
        } else if (result == 0 && strcmp(s ? s : "", strategy ? strategy : "") != 0) {
            return NULL;
        }
    }
    return strategy ? strategy : "";
}

static int lease_expired(json_object *lease, int64_t now)
{
    json_object *spec = NULL, *d = NULL;
    int64_t renew = spec_time(lease, "renewTime");
    if (!renew || !json_object_object_get_ex(lease, "spec", &spec) ||
        !json_object_object_get_ex(spec, "leaseDurationSeconds", &d) || !d)
        return 1;
    return renew + json_object_get_int64(d) * NS < now;
}

static void set_spec(json_object *o, const char *field, json_object *v)
{
    json_object *spec = NULL;
    if (!json_object_object_get_ex(o, "spec", &spec) ||
        !json_object_is_type(spec, json_type_object)) {
        spec = json_object_new_object();
        json_object_object_add(o, "spec", spec);
    }
    if (v)
        json_object_object_add(spec, field, v);
    else
        json_object_object_del(spec, field);
}

static json_object *micro(int64_t ns)
{
    char buf[40];
    kle_time_format(buf, sizeof(buf), ns, 6);
    return json_object_new_string(buf);
}

static json_object *copy_of(json_object *o)
{
    json_object *c = NULL;
    return json_object_deep_copy(o, &c, NULL) == 0 ? c : NULL;
}

static int put(int res, const char *ns, const char *name, json_object *obj, int added)
{
    return kle_apiserver__store_put(res, ns, name, obj, added ? KLE_EV_ADDED : KLE_EV_MODIFIED);
}

/* electionNeeded */
static int election_needed(json_object **c, size_t n, json_object *lease, int64_t now)
{
    if (!lease)
        return 1;
    const char *holder = spec_str(lease, "holderIdentity");
    if (lease_expired(lease, now) || !holder || !*holder)
        return 1;
    /* Every 15 minutes an election refreshes all candidates (the GC takes them at 30). */
    for (size_t i = 0; i < n; i++) {
        int64_t r = spec_time(c[i], "renewTime");
        if (r && r + CANDIDATE_VALID / 2 < now)
            return 1;
    }
    const char *strategy = pick_strategy(c, n);
    if (!strategy || strcmp(strategy, OLDEST_EMULATION_VERSION) != 0)
        return 0;
    json_object *electee = pick_best(c, n);
    if (!electee)
        return 0;
    const char *name = meta_str(electee, "name");
    return !(name && strcmp(name, holder) == 0);
}

/* reconcileElectionStep for one Lease; the store lock is held. */
static void reconcile(const char *ns, const char *lease_name, json_object **c, size_t n,
                      int64_t now)
{
    json_object *lease = kle_apiserver__store_get(KLE_RES_LEASES, ns, lease_name);
    if (!election_needed(c, n, lease, now))
        return;
    int can_vote = 1;
    for (size_t i = 0; i < n; i++) {
        int64_t ping = spec_time(c[i], "pingTime"), renew = spec_time(c[i], "renewTime");
        if (ping && ping + ELECTION_DURATION > now && renew && renew < ping) {
            can_vote = 0; /* waiting for its ack */
            continue;
        }
        if (renew && renew + ELECTION_DURATION > now)
            continue;
        /* Ping it; an outdated ping again only if it acked the last one. */
        if (!ping || (ping + ELECTION_DURATION < now && ping < renew)) {
            json_object *clone = copy_of(c[i]);
            const char *name = meta_str(c[i], "name");
            if (!clone || !name)
                return;
            char *key = strdup(name);
            set_spec(clone, "pingTime", micro(now));
            put(KLE_RES_LEASECANDIDATES, ns, key, clone, 0);
            free(key);
            c[i] = clone; /* the store owns it now */
            can_vote = 0;
        }
    }
    if (!can_vote)
        return;
    for (size_t i = 0; i < n; i++) {
        int64_t ping = spec_time(c[i], "pingTime"), renew = spec_time(c[i], "renewTime");
        if (!ping || (renew && ping < renew))
            continue;
        if (ping + ELECTION_DURATION > now)
            return; /* the election is still open */
    }
    json_object *acked[256];
    size_t na = 0;
    for (size_t i = 0; i < n && na < 256; i++)
        if (spec_time(c[i], "renewTime") + ELECTION_DURATION > now)
            acked[na++] = c[i];
    if (na == 0)
        return;
    const char *strategy = pick_strategy(acked, na);
    if (!strategy)
        return;
    json_object *electee = strcmp(strategy, OLDEST_EMULATION_VERSION) == 0
                               ? pick_best(acked, na)
                               : NULL; /* other strategies: some other controller's */
    const char *electee_name = electee ? meta_str(electee, "name") : NULL;
    char name[256];
    snprintf(name, sizeof(name), "%s", electee_name ? electee_name : "");
    if (!lease) {
        json_object *l = json_object_new_object(), *meta = json_object_new_object();
        json_object_object_add(l, "kind", json_object_new_string("Lease"));
        json_object_object_add(l, "apiVersion", json_object_new_string("coordination.k8s.io/v1"));
        json_object_object_add(meta, "name", json_object_new_string(lease_name));
        json_object_object_add(meta, "namespace", json_object_new_string(ns));
        char uid[64];
        kle_apiserver__new_uid(uid);
        json_object_object_add(meta, "uid", json_object_new_string(uid));
        char stamp[40];
        kle_time_format(stamp, sizeof(stamp), now, 0);
        json_object_object_add(meta, "creationTimestamp", json_object_new_string(stamp));
        json_object_object_add(l, "metadata", meta);
        set_spec(l, "strategy", json_object_new_string(strategy));
        set_spec(l, "leaseDurationSeconds", json_object_new_int(DEFAULT_LEASE_SECONDS));
        set_spec(l, "renewTime", micro(now));
        if (electee)
            set_spec(l, "holderIdentity", json_object_new_string(name));
        put(KLE_RES_LEASES, ns, lease_name, l, 1);
        fprintf(stderr, "kle-apiserver: election: created lease %s/%s for \"%s\"\n", ns, lease_name,
                name);
        return;
    }
    json_object *existing = copy_of(lease);
    if (!existing)
        return;
    const char *holder = spec_str(existing, "holderIdentity");
    const char *cur_strategy = spec_str(existing, "strategy");
    int expired = lease_expired(existing, now);
    int no_holder = !holder || !*holder;
    int expired_new_holder = expired && electee && strcmp(holder ? holder : "", name) != 0;
    int changed = 0;
    if (!cur_strategy || strcmp(cur_strategy, strategy) != 0) {
        set_spec(existing, "strategy", json_object_new_string(strategy));
        changed = 1;
    }
    if ((electee && no_holder) || expired_new_holder) {
        set_spec(existing, "preferredHolder", NULL);
        set_spec(existing, "holderIdentity", json_object_new_string(name));
        set_spec(existing, "renewTime", micro(now));
        set_spec(existing, "leaseDurationSeconds", json_object_new_int(DEFAULT_LEASE_SECONDS));
        set_spec(existing, "acquireTime", NULL);
        changed = 1;
        fprintf(stderr, "kle-apiserver: election: lease %s/%s %s, holder set to \"%s\"\n", ns,
                lease_name, no_holder ? "had no holder" : "expired", name);
    } else if (electee && strcmp(holder ? holder : "", name) != 0) {
        const char *pref = spec_str(existing, "preferredHolder");
        if (!pref || strcmp(pref, name) != 0) {
            set_spec(existing, "preferredHolder", json_object_new_string(name));
            changed = 1;
            fprintf(stderr, "kle-apiserver: election: lease %s/%s: preferredHolder \"%s\"\n", ns,
                    lease_name, name);
        }
    }
    if (changed)
        put(KLE_RES_LEASES, ns, lease_name, existing, 0);
    else
        json_object_put(existing);
}

typedef struct cand_list {
    json_object **items;
    size_t n, cap;
} cand_list;

static void collect(json_object *obj, void *arg)
{
    cand_list *l = arg;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        json_object **ni = realloc(l->items, nc * sizeof(*ni));
        if (!ni)
            return;
        l->items = ni;
        l->cap = nc;
    }
    l->items[l->n++] = obj;
}

static void pass(int64_t now, int gc)
{
    cand_list all = {0};
    kle_apiserver__store_lock();
    kle_apiserver__store_each(KLE_RES_LEASECANDIDATES, NULL, collect, &all);
    /* leasecandidategc_controller: expired candidates are deleted. */
    if (gc)
        for (size_t i = 0; i < all.n; i++) {
            int64_t r = spec_time(all.items[i], "renewTime");
            if (!r || r + CANDIDATE_VALID < now) {
                char ns[256], name[256];
                snprintf(ns, sizeof(ns), "%s", meta_str(all.items[i], "namespace") ?: "");
                snprintf(name, sizeof(name), "%s", meta_str(all.items[i], "name") ?: "");
                kle_apiserver__store_delete(KLE_RES_LEASECANDIDATES, ns, name);
                all.items[i] = NULL;
            }
        }
    /* listAdmissableCandidates, per (namespace, leaseName), in store order. */
    json_object **group = all.n ? calloc(all.n, sizeof(*group)) : NULL;
    for (size_t i = 0; group && i < all.n; i++) {
        if (!all.items[i])
            continue;
        char ns[256], lease[256];
        snprintf(ns, sizeof(ns), "%s", meta_str(all.items[i], "namespace") ?: "");
        snprintf(lease, sizeof(lease), "%s", spec_str(all.items[i], "leaseName") ?: "");
        size_t n = 0;
        for (size_t k = i; k < all.n; k++) {
            if (!all.items[k])
                continue;
            const char *kns = meta_str(all.items[k], "namespace"),
                       *kl = spec_str(all.items[k], "leaseName");
            if (strcmp(kns ? kns : "", ns) != 0 || strcmp(kl ? kl : "", lease) != 0)
                continue;
            int64_t r = spec_time(all.items[k], "renewTime");
            if (r && r + CANDIDATE_VALID >= now)
                group[n++] = all.items[k];
            all.items[k] = NULL;
        }
        if (n && lease[0])
            reconcile(ns, lease, group, n, now);
    }
    kle_apiserver__store_unlock();
    free(group);
    free(all.items);
}

static void *election_main(void *arg)
{
    (void)arg;
    int ticks = 0;
    while (!stopping) {
        pass(wall_now(), ticks++ % GC_EVERY_TICKS == 0);
        struct timespec ts = {0, ELECTION_TICK_NS};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int kle_apiserver__election_start(void)
{
    if (!kle_apiserver__coordinated_election || running)
        return 0;
    if (pthread_create(&thread, NULL, election_main, NULL) != 0)
        return -1;
    running = 1;
    return 0;
}

void kle_apiserver__election_stop(void)
{
    if (!running)
        return;
    stopping = 1;
    pthread_join(thread, NULL);
    running = 0;
}
