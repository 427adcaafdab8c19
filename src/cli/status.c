/* kle status: the lock's record, as a table or as JSON. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * KLE_NS_PER_SEC + ts.tv_nsec;
}

/* Expired by this machine's clock: renewTime + leaseDuration is past. */
static int expired(const kle_record *r, int64_t now)
{
    if (!*kle_record_holder(r))
        return 1;
    return r->renew_time_ns + (int64_t)r->lease_duration_seconds * KLE_NS_PER_SEC < now;
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
    char t[64];
    if (!ns || kle_time_format(t, sizeof(t), ns, 0) < 0) {
        snprintf(buf, size, "-");
        return;
    }
    if (ns > now)
        /* The holder's clock runs ahead of ours (or ours behind): an age
         * would be negative, and expiry by this machine's clock is off. */
        snprintf(buf, size,
                 "%s (%.1fs in the future: this machine's clock and the holder's differ)", t,
                 (double)(ns - now) / 1e9);
    else
        snprintf(buf, size, "%s (%.1fs ago)", t, (double)(now - ns) / 1e9);
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

typedef struct watch_state {
    cli_opts *o;
    const char *desc;
    char *last_raw; /* Last record printed; NULL after a deletion or at start. */
    int printed;
} watch_state;

static void print_change(watch_state *w, const kle_record *r)
{
    int64_t now = wall_ns();
    char stamp[64], renewed[64] = "-", holder[1024];
    kle_time_format(stamp, sizeof(stamp), now, 3);
    if (w->o->output_json) {
        json_object *j = r ? record_json(r, now) : json_object_new_object();
        json_object_object_add(j, "lock", json_object_new_string(w->desc));
        json_object_object_add(j, "time", json_object_new_string(stamp));
        json_object_object_add(j, "exists", json_object_new_boolean(r != NULL));
        printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(j);
    } else {
        if (!w->printed)
            printf("%-24s %-32s %-24s %-8s %-11s %s\n", "TIME", "HOLDER", "RENEWED", "DURATION",
                   "TRANSITIONS", "EXPIRED");
        if (!r) {
            printf("%-24s %s\n", stamp, "(deleted)");
        } else {
            cli_escape(holder, sizeof(holder), kle_record_holder(r));
            if (r->renew_time_ns)
                kle_time_format(renewed, sizeof(renewed), r->renew_time_ns, 3);
            printf("%-24s %-32s %-24s %-8d %-11d %s\n", stamp, *holder ? holder : "(released)",
                   renewed, r->lease_duration_seconds, r->leader_transitions,
                   expired(r, now) ? "yes" : "no");
        }
    }
    w->printed = 1;
    fflush(stdout);
}

static int on_watch_event(const kle_lock_event *ev, void *data)
{
    watch_state *w = data;
    if (ev->type == KLE_LOCK_EVENT_BOOKMARK || ev->type == KLE_LOCK_EVENT_ERROR)
        return 0;
    if (ev->type == KLE_LOCK_EVENT_DELETED) {
        if (w->last_raw || !w->printed)
            print_change(w, NULL);
        free(w->last_raw);
        w->last_raw = NULL;
        return 0;
    }
    const kle_lock_result *r = ev->result;
    /* Print changes of the record only (a re-list or touch of the same record is none). */
    if (w->last_raw && strcmp(w->last_raw, r->raw) == 0)
        return 0;
    free(w->last_raw);
    w->last_raw = strdup(r->raw);
    print_change(w, &r->record);
    return 0;
}

static int status_watch(cli_opts *o, kle_lock *lock, const char *desc)
{
    if (!kle_lock_can_watch(lock)) {
        fprintf(stderr,
                "kle status: -w needs a single-object lock (leases, endpoints or "
                "configmaps), not %s\n",
                o->resource_lock);
        return CLI_EXIT_USAGE;
    }
    if (kle_event_new(&watch_stop) < 0)
        return CLI_EXIT_FAILURE;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    watch_state w = {o, desc, NULL, 0};
    kle_lock_watch_opts wo = KLE_LOCK_WATCH_OPTS_INIT;
    wo.cancel = watch_stop;
    int rc = kle_lock_watch(lock, &wo, on_watch_event, &w);
    free(w.last_raw);
    int exit_code = CLI_EXIT_OK;
    if (rc < 0 && rc != KLE_ECANCELED) {
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        fprintf(stderr, "kle status: cannot watch %s: %s\n", desc, why);
        exit_code = CLI_EXIT_FAILURE;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    kle_event_free(watch_stop);
    watch_stop = NULL;
    return exit_code;
}

int cli_cmd_status(cli_opts *o)
{
    kle_client *client = NULL;
    kle_lock *lock = NULL;
    kle_lock_ctx ctx = KLE_LOCK_CTX_INIT;
    char desc[512];
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
    snprintf(desc, sizeof(desc), "%s/%s/%s", o->resource_lock, kle_client_namespace(client),
             o->lock_name);
    if (o->watch) {
        exit_code = status_watch(o, lock, desc);
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
        if (o->output_json)
            printf("{\"lock\":\"%s\",\"exists\":false}\n", desc);
        fprintf(stderr, "kle status: %s does not exist (no one has campaigned for it yet)\n", desc);
        exit_code = CLI_EXIT_NOTFOUND;
        goto out;
    }
    if (rc < 0) {
        char why[1024];
        cli_escape(why, sizeof(why), kle_error_last()->message);
        fprintf(stderr, "kle status: cannot read %s: %s\n", desc, why);
        exit_code = CLI_EXIT_FAILURE;
        goto out;
    }

    const kle_record *main_rec = multi ? &prim.record : &res.record;
    int agree = 1;
    if (multi)
        agree = prc == 0 && src == 0 && kle_record_holder_equal(&prim.record, &sec.record);
    if (o->output_json) {
        json_object *j = record_json(main_rec, now);
        if (!j) {
            exit_code = CLI_EXIT_FAILURE;
            goto out;
        }
        json_object_object_add(j, "lock", json_object_new_string(desc));
        json_object_object_add(j, "type", json_object_new_string(o->resource_lock));
        json_object_object_add(j, "namespace",
                               json_object_new_string(kle_client_namespace(client)));
        json_object_object_add(j, "name", json_object_new_string(o->lock_name));
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
        printf("LOCK          %s\n", desc);
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
