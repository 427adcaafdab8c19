/* The object store: one global resourceVersion counter, objects keyed by
 * (resource, namespace, name), a bounded history of change events for
 * watches, and atomic persistence of everything to data_dir/state.json. */
#include "apiserver/apiserver.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct entry {
    int res;
    char *ns;
    char *name;
    json_object *obj;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static entry *entries;
static size_t nentries, centries;
static uint64_t rv;
static char *state_path;
static char *state_tmp;
static char *state_dir;

static kle_apiserver__event *hist;
static size_t hist_cap, hist_head, hist_count;
static uint64_t hist_floor; /* Events after this rv are all in hist. */

void kle_apiserver__store_lock(void)
{
    pthread_mutex_lock(&mu);
}
void kle_apiserver__store_unlock(void)
{
    pthread_mutex_unlock(&mu);
}
void kle_apiserver__store_broadcast(void)
{
    pthread_cond_broadcast(&cond);
}
uint64_t kle_apiserver__store_rv(void)
{
    return rv;
}
uint64_t kle_apiserver__store_history_floor(void)
{
    return hist_floor;
}

int kle_apiserver__store_wait(int64_t deadline_ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    return pthread_cond_timedwait(&cond, &mu, &ts);
}

static int key_cmp(int res, const char *ns, const char *name, const entry *e)
{
    int c;
    if (res != e->res)
        return res < e->res ? -1 : 1;
    c = strcmp(ns, e->ns);
    if (c)
        return c;
    return strcmp(name, e->name);
}

/* Binary search; returns the index of the key or where it would go. */
static size_t find(int res, const char *ns, const char *name, int *found)
{
    size_t lo = 0, hi = nentries;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(res, ns, name, &entries[mid]);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

json_object *kle_apiserver__store_get(int res, const char *ns, const char *name)
{
    int found;
    size_t i = find(res, ns ? ns : "", name, &found);
    return found ? entries[i].obj : NULL;
}

void kle_apiserver__store_each(int res, const char *ns, void (*fn)(json_object *obj, void *arg),
                               void *arg)
{
    for (size_t i = 0; i < nentries; i++) {
        if (entries[i].res != res)
            continue;
        if (ns && strcmp(ns, entries[i].ns) != 0)
            continue;
        fn(entries[i].obj, arg);
    }
}

const kle_apiserver__event *kle_apiserver__store_event(uint64_t want)
{
    if (want <= hist_floor || want > hist_floor + hist_count)
        return NULL;
    return &hist[(hist_head + (size_t)(want - hist_floor - 1)) % hist_cap];
}

static void event_clear(kle_apiserver__event *ev)
{
    free(ev->ns);
    free(ev->name);
    json_object_put(ev->obj);
    json_object_put(ev->prev);
    memset(ev, 0, sizeof(*ev));
}

/* Records an event; takes ownership of prev (may be NULL). */
static void history_push(int res, const char *ns, const char *name, json_object *obj,
                         json_object *prev, kle_apiserver__evtype type)
{
    kle_apiserver__event *ev;
    if (hist_count == hist_cap) {
        event_clear(&hist[hist_head]);
        hist_head = (hist_head + 1) % hist_cap;
        hist_count--;
        hist_floor++;
    }
    ev = &hist[(hist_head + hist_count) % hist_cap];
    ev->rv = rv;
    ev->res = res;
    ev->type = type;
    ev->ns = strdup(ns);
    ev->name = strdup(name);
    ev->obj = NULL;
    json_object_deep_copy(obj, &ev->obj, NULL);
    ev->prev = prev;
    hist_count++;
}

static const char *res_key(int res, char *buf, size_t len)
{
    const kle_apiserver__resource *r = &kle_apiserver__resources[res];
    snprintf(buf, len, "%s/%s", r->group, r->plural);
    return buf;
}

/* Writes the state to a temporary file, syncs it and renames it over the
 * old one, so a crash leaves either the old or the new state. */
static int persist(void)
{
    json_object *root, *objs;
    const char *text;
    size_t len, off = 0;
    int fd, rc = -1;
    char num[32], key[128];

    if (!state_path)
        return 0;
    root = json_object_new_object();
    objs = json_object_new_array();
    snprintf(num, sizeof(num), "%" PRIu64, rv);
    json_object_object_add(root, "resourceVersion", json_object_new_string(num));
    for (size_t i = 0; i < nentries; i++) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "resource",
                               json_object_new_string(res_key(entries[i].res, key, sizeof(key))));
        json_object_object_add(o, "object", json_object_get(entries[i].obj));
        json_object_array_add(objs, o);
    }
    json_object_object_add(root, "objects", objs);
    text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    len = strlen(text);

    fd = open(state_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            close(fd);
            goto out;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0) {
        close(fd);
        goto out;
    }
    close(fd);
    if (rename(state_tmp, state_path) != 0)
        goto out;
    fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    rc = 0;
out:
    json_object_put(root);
    return rc;
}

static void set_rv(json_object *obj, uint64_t v)
{
    json_object *meta;
    char num[32];
    if (!json_object_object_get_ex(obj, "metadata", &meta)) {
        meta = json_object_new_object();
        json_object_object_add(obj, "metadata", meta);
    }
    snprintf(num, sizeof(num), "%" PRIu64, v);
    json_object_object_add(meta, "resourceVersion", json_object_new_string(num));
}

int kle_apiserver__store_put(int res, const char *ns, const char *name, json_object *obj,
                             kle_apiserver__evtype type)
{
    int found;
    size_t i;
    json_object *old = NULL;

    ns = ns ? ns : "";
    i = find(res, ns, name, &found);
    if (found) {
        old = entries[i].obj;
        entries[i].obj = obj;
    } else {
        if (nentries == centries) {
            size_t nc = centries ? centries * 2 : 64;
            entry *ne = realloc(entries, nc * sizeof(*ne));
            if (!ne) {
                json_object_put(obj);
                return -1;
            }
            entries = ne;
            centries = nc;
        }
        memmove(&entries[i + 1], &entries[i], (nentries - i) * sizeof(*entries));
        entries[i].res = res;
        entries[i].ns = strdup(ns);
        entries[i].name = strdup(name);
        entries[i].obj = obj;
        nentries++;
    }
    rv++;
    set_rv(obj, rv);
    if (persist() != 0) {
        rv--;
        if (found) {
            entries[i].obj = old;
        } else {
            free(entries[i].ns);
            free(entries[i].name);
            memmove(&entries[i], &entries[i + 1], (nentries - i - 1) * sizeof(*entries));
            nentries--;
        }
        json_object_put(obj);
        return -1;
    }
    /* The replaced object is no longer referenced by anyone: the history
     * keeps it as the event's previous state. */
    history_push(res, ns, name, obj, old, type);
    pthread_cond_broadcast(&cond);
    return 0;
}

int kle_apiserver__store_delete(int res, const char *ns, const char *name)
{
    int found;
    size_t i;
    entry e;

    ns = ns ? ns : "";
    i = find(res, ns, name, &found);
    if (!found)
        return -1;
    e = entries[i];
    memmove(&entries[i], &entries[i + 1], (nentries - i - 1) * sizeof(*entries));
    nentries--;
    rv++;
    if (persist() != 0) {
        rv--;
        memmove(&entries[i + 1], &entries[i], (nentries - i) * sizeof(*entries));
        entries[i] = e;
        nentries++;
        return -1;
    }
    set_rv(e.obj, rv);
    history_push(res, ns, name, e.obj, NULL, KLE_EV_DELETED);
    free(e.ns);
    free(e.name);
    json_object_put(e.obj);
    pthread_cond_broadcast(&cond);
    return 0;
}

static int res_from_key(const char *key)
{
    char buf[128];
    for (size_t i = 0; i < kle_apiserver__nresources; i++)
        if (strcmp(key, res_key((int)i, buf, sizeof(buf))) == 0)
            return (int)i;
    return -1;
}

static int load(const char *path, char *err, size_t errlen)
{
    char rerr[256];
    char *text = kle_apiserver__read_file(path, (size_t)1 << 31, rerr, sizeof(rerr));
    json_object *root, *v, *objs;
    enum json_tokener_error jerr;

    if (!text) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "%s", rerr);
        return -1;
    }
    root = json_tokener_parse_verbose(text, &jerr);
    free(text);
    if (!root || !json_object_object_get_ex(root, "resourceVersion", &v) ||
        !json_object_is_type(v, json_type_string) ||
        !json_object_object_get_ex(root, "objects", &objs) ||
        !json_object_is_type(objs, json_type_array)) {
        snprintf(err, errlen, "%s: not a kle-apiserver state file (%s)", path,
                 root ? "missing resourceVersion or objects" : json_tokener_error_desc(jerr));
        json_object_put(root);
        return -1;
    }
    rv = strtoull(json_object_get_string(v), NULL, 10);
    for (size_t i = 0; i < json_object_array_length(objs); i++) {
        json_object *o = json_object_array_get_idx(objs, i), *k, *obj, *meta, *n, *ns;
        int res;
        if (!json_object_object_get_ex(o, "resource", &k) ||
            !json_object_is_type(k, json_type_string) ||
            !json_object_object_get_ex(o, "object", &obj) ||
            !json_object_is_type(obj, json_type_object) ||
            (res = res_from_key(json_object_get_string(k))) < 0 ||
            !json_object_object_get_ex(obj, "metadata", &meta) ||
            !json_object_object_get_ex(meta, "name", &n) ||
            !json_object_is_type(n, json_type_string) ||
            (json_object_object_get_ex(meta, "namespace", &ns) &&
             !json_object_is_type(ns, json_type_string))) {
            snprintf(err, errlen, "%s: objects[%zu] is malformed", path, i);
            json_object_put(root);
            return -1;
        }
        if (!json_object_object_get_ex(meta, "namespace", &ns))
            ns = NULL;
        {
            int found;
            const char *nss = ns ? json_object_get_string(ns) : "";
            size_t at = find(res, nss, json_object_get_string(n), &found);
            if (nentries == centries) {
                size_t nc = centries ? centries * 2 : 64;
                entry *ne = realloc(entries, nc * sizeof(*ne));
                if (!ne) {
                    json_object_put(root);
                    return -1;
                }
                entries = ne;
                centries = nc;
            }
            if (found)
                continue;
            memmove(&entries[at + 1], &entries[at], (nentries - at) * sizeof(*entries));
            entries[at].res = res;
            entries[at].ns = strdup(nss);
            entries[at].name = strdup(json_object_get_string(n));
            entries[at].obj = json_object_get(obj);
            nentries++;
        }
    }
    json_object_put(root);
    return 0;
}

int kle_apiserver__store_init(const char *data_dir, size_t history, char *err, size_t errlen)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cond, &ca);
    pthread_condattr_destroy(&ca);

    hist_cap = history ? history : 1;
    hist = calloc(hist_cap, sizeof(*hist));
    if (!hist) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (data_dir) {
        size_t n = strlen(data_dir) + 32;
        struct stat st;
        if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
            snprintf(err, errlen, "--data-dir %s: %s", data_dir, strerror(errno));
            return -1;
        }
        if (stat(data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "--data-dir %s: not a directory", data_dir);
            return -1;
        }
        state_dir = strdup(data_dir);
        state_path = malloc(n);
        state_tmp = malloc(n);
        snprintf(state_path, n, "%s/state.json", data_dir);
        snprintf(state_tmp, n, "%s/state.json.tmp", data_dir);
        if (load(state_path, err, errlen) != 0)
            return -1;
        if (persist() != 0) {
            snprintf(err, errlen, "--data-dir %s: cannot write %s: %s", data_dir, state_path,
                     strerror(errno));
            return -1;
        }
    }
    hist_floor = rv;
    return 0;
}

void kle_apiserver__store_free(void)
{
    for (size_t i = 0; i < nentries; i++) {
        free(entries[i].ns);
        free(entries[i].name);
        json_object_put(entries[i].obj);
    }
    free(entries);
    entries = NULL;
    nentries = centries = 0;
    for (size_t i = 0; i < hist_count; i++)
        event_clear(&hist[(hist_head + i) % hist_cap]);
    free(hist);
    hist = NULL;
    free(state_path);
    free(state_tmp);
    free(state_dir);
    pthread_cond_destroy(&cond);
}
