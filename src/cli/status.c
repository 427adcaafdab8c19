/* kle status: the lock's record, as a table or as JSON; -w follows it. */
#include <json-c/json.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "base/now.h"

static int64_t wall_ns(void)
{
    return kle_now__ns(CLOCK_REALTIME);
}

/* Expired by this machine's clock: renewTime + leaseDuration is past. */
static int expired(const kle_record *r, int64_t now)
{
    if (!*kle_record_holder(r))
        return 1;
    return r->renew_time_ns + (int64_t)r->lease_duration_seconds * KLE_NS_PER_SEC < now;
}

/* The lock's identity in every JSON object: type, namespace, name and the
 * three as one string. */
typedef struct lock_id {
    const char *type;
    const char *ns;
    const char *name;
    char desc[512];
} lock_id;

static void add_id(json_object *j, const lock_id *id)
{
    json_object_object_add(j, "type", json_object_new_string(id->type));
    json_object_object_add(j, "namespace", json_object_new_string(id->ns));
    json_object_object_add(j, "name", json_object_new_string(id->name));
    json_object_object_add(j, "lock", json_object_new_string(id->desc));
}

static json_object *record_json(const kle_record *r, int64_t now)
{
    json_object *o = json_object_new_object();
    char t[64];
    if (!o)
        return NULL;
    json_object_object_add(
        o, "holderIdentity",
        json_object_new_string_len(kle_record_holder(r), (int)kle_record_holder_len(r)));
    if (r->acquire_time_ns && kle_time_format(t, sizeof(t), r->acquire_time_ns, 6) > 0)
        json_object_object_add(o, "acquireTime", json_object_new_string(t));
    else
        json_object_object_add(o, "acquireTime", NULL);
    if (r->renew_time_ns && kle_time_format(t, sizeof(t), r->renew_time_ns, 6) > 0)
        json_object_object_add(o, "renewTime", json_object_new_string(t));
    else
        json_object_object_add(o, "renewTime", NULL);
    json_object_object_add(o, "leaseDurationSeconds",
                           json_object_new_int(r->lease_duration_seconds));
    json_object_object_add(o, "leaderTransitions", json_object_new_int(r->leader_transitions));
    json_object_object_add(o, "expired", json_object_new_boolean(expired(r, now)));
    if (r->renew_time_ns) {
        /* Milliseconds precision, never negative (a renewTime ahead of this
         * machine's clock counts as just now). */
        int64_t ms = now > r->renew_time_ns ? (now - r->renew_time_ns) / KLE_NS_PER_MS : 0;
        char text[32];
        snprintf(text, sizeof(text), "%lld.%03lld", (long long)(ms / 1000), (long long)(ms % 1000));
        json_object_object_add(o, "renewedSecondsAgo",
                               json_object_new_double_s((double)ms / 1000.0, text));
    }
    return o;
}

static void ago(char *buf, size_t size, int64_t ns, int64_t now)
{
    char t[64], age[32];
    if (!ns || kle_time_format(t, sizeof(t), ns, 0) < 0) {
        snprintf(buf, size, "-");
        return;
    }
    if (ns > now) {
        /* The holder's clock runs ahead of ours (or ours behind): an age
         * would be negative, and expiry by this machine's clock is off. */
        snprintf(buf, size,
                 "%s (%.1fs in the future: this machine's clock and the holder's differ)", t,
                 (double)(ns - now) / 1e9);
        return;
    }
    cli_human_duration(age, sizeof(age), (now - ns) / KLE_NS_PER_MS);
    snprintf(buf, size, "%s (%s ago)", t, age);
}

static void print_record(const char *title, const kle_record *r, int rc, int64_t now)
{
    char a[160], b[160], holder[1024];
    if (title)
        printf("%s\n", title);
    if (rc == KLE_ENOTFOUND) {
        printf("  (does not exist)\n");
        return;
    }
    if (rc < 0) {
        printf("  (unreadable: %s)\n", kle_strerror(rc));
        return;
    }
    ago(a, sizeof(a), r->acquire_time_ns, now);
    ago(b, sizeof(b), r->renew_time_ns, now);
    /* The holder is the server's text: escaped, so it cannot forge lines
     * or drive the terminal. */
    cli_escape(holder, sizeof(holder), kle_record_holder(r));
    printf("%sHOLDER        %s\n", title ? "  " : "", *holder ? holder : "(none: released)");
    printf("%sACQUIRED      %s\n", title ? "  " : "", a);
    printf("%sRENEWED       %s\n", title ? "  " : "", b);
    printf("%sDURATION      %ds\n", title ? "  " : "", r->lease_duration_seconds);
    printf("%sTRANSITIONS   %d\n", title ? "  " : "", r->leader_transitions);
    printf("%sEXPIRED       %s (by this machine's clock)\n", title ? "  " : "",
           expired(r, now) ? "yes" : "no");
}

/* ---- kle status -w ---- */

static kle_event *watch_stop;

static void on_signal(int sig)
{
    (void)sig;
    kle_event_set(watch_stop); /* async-signal-safe */
}

/* One watched object: the lock itself, or one of a MultiLock's two. */
enum { UNKNOWN, ABSENT, PRESENT };
typedef struct watched {
    struct watch_state *w;
    const char *object; /* MultiLock: "endpoints", "configmaps" or "leases"; else NULL */
    kle_lock *lock;
    int state;      /* UNKNOWN (nothing printed yet), ABSENT or PRESENT */
    int seen;       /* the object existed at some point of the watch */
    char *last_raw; /* the last record printed or passed over */
    char *holder;   /* its holder ("" when released); NULL while absent */
    int rc;         /* the watch's end */
    pthread_t thread;
} watched;

typedef struct watch_state {
    const cli_opts *o;
    const lock_id *id;
    int all;     /* every change, not only holder changes */
    int printed; /* the table header is out */
    watched obj[2];
    size_t nobj;
    pthread_mutex_t mu; /* serializes the two objects' lines */
} watch_state;

/* One line for @p x: its record @p r, or NULL when the object is absent. */
static void print_change(watched *x, const kle_record *r)
{
    watch_state *w = x->w;
    int64_t now = wall_ns();
    char stamp[64], renewed[64] = "-", holder[1024], dur[16] = "-", trans[16] = "-";
    const char *exp = "-";
    int multi = w->nobj == 2;
    /* Whether a MultiLock's two holders agree: known once both exist. */
    const char *agree = "-";
    int agree_known = multi && w->obj[0].holder && w->obj[1].holder;
    int agrees = agree_known && strcmp(w->obj[0].holder, w->obj[1].holder) == 0;
    if (agree_known)
        agree = agrees ? "yes" : "no";
    kle_time_format(stamp, sizeof(stamp), now, 3);
    if (w->o->output_json) {
        json_object *j = r ? record_json(r, now) : json_object_new_object();
        add_id(j, w->id);
        if (multi)
            json_object_object_add(j, "object", json_object_new_string(x->object));
        json_object_object_add(j, "time", json_object_new_string(stamp));
        json_object_object_add(j, "exists", json_object_new_boolean(r != NULL));
        if (!r)
            json_object_object_add(j, "existed", json_object_new_boolean(x->seen));
        if (agree_known)
            json_object_object_add(j, "agree", json_object_new_boolean(agrees));
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        if (!r) {
            snprintf(holder, sizeof(holder), "%s", x->seen ? "(deleted)" : "(does not exist yet)");
        } else {
            cli_escape(holder, sizeof(holder), kle_record_holder(r));
            if (!*holder)
                snprintf(holder, sizeof(holder), "(released)");
            if (r->renew_time_ns)
                kle_time_format(renewed, sizeof(renewed), r->renew_time_ns, 3);
            snprintf(dur, sizeof(dur), "%d", r->lease_duration_seconds);
            snprintf(trans, sizeof(trans), "%d", r->leader_transitions);
            exp = expired(r, now) ? "yes" : "no";
        }
        if (multi) {
            if (!w->printed)
                printf("%-24s %-10s %-32s %-24s %-8s %-11s %-7s %s\n", "TIME", "OBJECT", "HOLDER",
                       "RENEWED", "DURATION", "TRANSITIONS", "EXPIRED", "AGREE");
            printf("%-24s %-10s %-32s %-24s %-8s %-11s %-7s %s\n", stamp, x->object, holder,
                   renewed, dur, trans, exp, agree);
        } else {
            if (!w->printed)
                printf("%-24s %-32s %-24s %-8s %-11s %s\n", "TIME", "HOLDER", "RENEWED", "DURATION",
                       "TRANSITIONS", "EXPIRED");
            printf("%-24s %-32s %-24s %-8s %-11s %s\n", stamp, holder, renewed, dur, trans, exp);
        }
    }
    w->printed = 1;
    fflush(stdout);
}

static int on_watch_event(const kle_lock_event *ev, void *data)
{
    watched *x = data;
    watch_state *w = x->w;
    if (ev->type == KLE_LOCK_EVENT_BOOKMARK || ev->type == KLE_LOCK_EVENT_ERROR)
        return 0;
    pthread_mutex_lock(&w->mu);
    if (ev->type == KLE_LOCK_EVENT_DELETED) {
        free(x->last_raw);
        free(x->holder);
        x->last_raw = x->holder = NULL;
        if (x->state != ABSENT)
            print_change(x, NULL);
        x->state = ABSENT;
        pthread_mutex_unlock(&w->mu);
        return 0;
    }
    const kle_lock_result *r = ev->result;
    const char *h = kle_record_holder(&r->record);
    /* A re-list or touch of the same record is no change; with holder
     * changes only, neither is a renewal. */
    int same_raw = x->last_raw && strcmp(x->last_raw, r->raw) == 0;
    int same_holder = x->holder && strcmp(x->holder, h) == 0;
    char *raw = strdup(r->raw), *copy = strdup(h);
    if (raw && copy) {
        free(x->last_raw);
        free(x->holder);
        x->last_raw = raw;
        x->holder = copy;
    } else {
        free(raw);
        free(copy);
    }
    if (x->state != PRESENT || (!same_raw && (w->all || !same_holder)))
        print_change(x, &r->record);
    x->state = PRESENT;
    x->seen = 1;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

static void *watch_main(void *p)
{
    watched *x = p;
    kle_lock_watch_opts wo = KLE_LOCK_WATCH_OPTS_INIT;
    wo.cancel = watch_stop;
    x->rc = 0;
    int rc = kle_lock_watch(x->lock, &wo, on_watch_event, x);
    if (rc < 0 && rc != KLE_ECANCELED) {
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        cli_error("status: cannot watch %s%s%s: %s", x->w->id->desc, x->object ? " " : "",
                  x->object ? x->object : "", why);
        kle_event_set(watch_stop); /* the other object's watch ends too */
    }
    x->rc = rc < 0 && rc != KLE_ECANCELED ? rc : 0;
    return NULL;
}

static int status_watch(cli_opts *o, kle_client *client, kle_lock *lock, const lock_id *id,
                        int multi)
{
    watch_state w;
    memset(&w, 0, sizeof(w));
    w.o = o;
    w.id = id;
    /* Holder changes on a terminal (a person watching); every change
     * otherwise (a program reading the lines), unless --changes says. */
    w.all = o->changes_set ? o->changes_all : !isatty(STDOUT_FILENO);
    pthread_mutex_init(&w.mu, NULL);
    if (multi) {
        /* Both objects of the MultiLock, each watched on its own. */
        const char *primary =
            strncmp(o->resource_lock, "endpoints", 9) == 0 ? "endpoints" : "configmaps";
        const char *types[2] = {primary, "leases"};
        for (size_t i = 0; i < 2; i++) {
            kle_resource_lock_opts lo = KLE_RESOURCE_LOCK_OPTS_INIT;
            lo.name = o->lock_name;
            lo.identity = "kle-status";
            lo.namespace_ = kle_client_namespace(client);
            if (kle_lock_new_by_name(&w.obj[i].lock, types[i], client, &lo) < 0) {
                cli_error("status: %s", kle_error_last()->message);
                kle_lock_free(w.obj[0].lock);
                return CLI_EXIT_FAILURE;
            }
            (void)kle_lock_set_migration_guard(w.obj[i].lock, 0);
            w.obj[i].object = types[i];
        }
        w.nobj = 2;
    } else {
        if (!kle_lock_can_watch(lock)) {
            cli_error("status: -w needs a lock that can watch its object, not %s",
                      o->resource_lock);
            return CLI_EXIT_USAGE;
        }
        w.obj[0].lock = lock;
        w.nobj = 1;
    }
    if (kle_event_new(&watch_stop) < 0) {
        if (multi) {
            kle_lock_free(w.obj[0].lock);
            kle_lock_free(w.obj[1].lock);
        }
        return CLI_EXIT_FAILURE;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int exit_code = CLI_EXIT_OK;
    for (size_t i = 0; i < w.nobj; i++) {
        w.obj[i].w = &w;
        if (w.nobj == 1) {
            watch_main(&w.obj[i]);
        } else if (pthread_create(&w.obj[i].thread, NULL, watch_main, &w.obj[i]) != 0) {
            cli_error("status: cannot start a thread");
            kle_event_set(watch_stop);
            exit_code = CLI_EXIT_FAILURE;
            w.nobj = i;
        }
    }
    for (size_t i = 0; i < w.nobj; i++) {
        if (multi)
            pthread_join(w.obj[i].thread, NULL);
        if (w.obj[i].rc < 0)
            exit_code = CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < 2; i++) {
        free(w.obj[i].last_raw);
        free(w.obj[i].holder);
        if (multi)
            kle_lock_free(w.obj[i].lock);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    kle_event_free(watch_stop);
    watch_stop = NULL;
    pthread_mutex_destroy(&w.mu);
    return exit_code;
}

int cli_cmd_status(cli_opts *o)
{
    kle_client *client = NULL;
    kle_lock *lock = NULL;
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    lock_id id;
    int rc, exit_code = CLI_EXIT_OK;
    int multi = strcmp(o->resource_lock, "endpointsleases") == 0 ||
                strcmp(o->resource_lock, "configmapsleases") == 0;
    int64_t now;

    if (cli_make_client(&client, o) < 0)
        return CLI_EXIT_FAILURE;
    if (cli_make_lock(&lock, o, client, "kle-status") < 0) {
        kle_client_free(client);
        return CLI_EXIT_FAILURE;
    }
    id.type = o->resource_lock;
    id.ns = kle_client_namespace(client);
    id.name = o->lock_name;
    snprintf(id.desc, sizeof(id.desc), "%s/%s/%s", id.type, id.ns, id.name);
    if (o->watch) {
        exit_code = status_watch(o, client, lock, &id, multi);
        kle_lock_free(lock);
        kle_client_free(client);
        return exit_code;
    }

    kle_lock_result res = KLE_LOCK_RESULT_INIT, prim = KLE_LOCK_RESULT_INIT,
                    sec = KLE_LOCK_RESULT_INIT;
    int prc = 0, src = 0;
    if (multi) {
        rc = kle_multi_lock_get_both(&prim, &prc, &sec, &src, lock, &ctx);
        if (rc == 0 && prc == KLE_ENOTFOUND && src == KLE_ENOTFOUND)
            rc = KLE_ENOTFOUND;
        else if (rc == 0 && prc < 0 && prc != KLE_ENOTFOUND)
            rc = prc;
    } else {
        rc = kle_lock_get(&res, lock, &ctx);
    }
    now = wall_ns();
    if (rc == KLE_ENOTFOUND) {
        if (o->output_json && !o->is_leader) {
            json_object *j = json_object_new_object();
            add_id(j, &id);
            json_object_object_add(j, "exists", json_object_new_boolean(0));
            printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
            json_object_put(j);
        }
        cli_error("%s does not exist yet (no replica has campaigned for it)", id.desc);
        exit_code = CLI_EXIT_NOTFOUND;
        goto out;
    }
    if (rc < 0) {
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        cli_error("status: cannot read %s: %s", id.desc, why);
        exit_code = CLI_EXIT_FAILURE;
        goto out;
    }

    /* A MultiLock's primary (the old family) is the record its replicas
     * go by; the secondary follows it. */
    const kle_record *main_rec = multi ? (prc == 0 ? &prim.record : &sec.record) : &res.record;
    if (o->is_leader) {
        int leads = kle_record_holder_is(main_rec, o->is_leader) && !expired(main_rec, now);
        exit_code = leads ? CLI_EXIT_OK : CLI_EXIT_NOT_LEADER;
        goto out;
    }
    int agree = 1;
    if (multi)
        agree = prc == 0 && src == 0 && kle_record_holder_equal(&prim.record, &sec.record);
    if (o->output_json) {
        json_object *j = record_json(main_rec, now);
        if (!j) {
            exit_code = CLI_EXIT_FAILURE;
            goto out;
        }
        add_id(j, &id);
        json_object_object_add(j, "exists", json_object_new_boolean(1));
        if (multi) {
            json_object *p = prc == 0 ? record_json(&prim.record, now) : NULL;
            json_object *s = src == 0 ? record_json(&sec.record, now) : NULL;
            json_object_object_add(j, "primary", p);
            json_object_object_add(j, "secondary", s);
            json_object_object_add(j, "agree", json_object_new_boolean(agree));
        }
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        printf("LOCK          %s\n", id.desc);
        if (multi) {
            print_record(strncmp(o->resource_lock, "endpoints", 9) == 0 ? "PRIMARY (Endpoints)"
                                                                        : "PRIMARY (ConfigMap)",
                         &prim.record, prc, now);
            print_record("SECONDARY (Lease)", &sec.record, src, now);
            printf("AGREE         %s\n", agree ? "yes" : "no");
        } else {
            print_record(NULL, &res.record, 0, now);
        }
    }
out:
    kle_lock_result_dispose(&res);
    kle_lock_result_dispose(&prim);
    kle_lock_result_dispose(&sec);
    kle_lock_free(lock);
    kle_client_free(client);
    return exit_code;
}
