/* Flags, environment fallbacks, Go durations and the help texts of kle. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kle/record.h"

enum flag_kind {
    F_STRING,
    F_DURATION,
    F_BOOL,
    F_INT,
    F_ONEXIT,
    F_OUTPUT,
    F_LOGFMT,
    F_FOLLOW,
    F_CHANGES
};

#define CMD_RUN      1
#define CMD_STATUS   2
#define CMD_TRANSFER 4
#define CMD_ALL      7

typedef struct flag_def {
    const char *name;  /* long name without "--" */
    const char *alias; /* kube-controller-manager's name, or NULL */
    const char *env;   /* environment fallback, or NULL */
    enum flag_kind kind;
    int commands;
    size_t offset;
} flag_def;

#define OFF(m) offsetof(cli_opts, m)

static const flag_def flags[] = {
    {"kubeconfig", NULL, NULL, F_STRING, CMD_ALL, OFF(kubeconfig)},
    {"context", NULL, "KLE_CONTEXT", F_STRING, CMD_ALL, OFF(context)},
    {"namespace", "leader-elect-resource-namespace", "KLE_NAMESPACE", F_STRING, CMD_ALL,
     OFF(namespace_)},
    {"lock-name", "leader-elect-resource-name", "KLE_LOCK_NAME", F_STRING, CMD_ALL, OFF(lock_name)},
    {"resource-lock", "leader-elect-resource-lock", "KLE_RESOURCE_LOCK", F_STRING, CMD_ALL,
     OFF(resource_lock)},
    {"identity", NULL, "KLE_IDENTITY", F_STRING, CMD_RUN, OFF(identity)},
    {"lease-duration", "leader-elect-lease-duration", "KLE_LEASE_DURATION", F_DURATION, CMD_RUN,
     OFF(lease_duration_ms)},
    {"renew-deadline", "leader-elect-renew-deadline", "KLE_RENEW_DEADLINE", F_DURATION, CMD_RUN,
     OFF(renew_deadline_ms)},
    {"retry-period", "leader-elect-retry-period", "KLE_RETRY_PERIOD", F_DURATION, CMD_RUN,
     OFF(retry_period_ms)},
    {"log-format", NULL, "KLE_LOG_FORMAT", F_LOGFMT, CMD_ALL, OFF(json_logs)},
    {"v", NULL, "KLE_V", F_INT, CMD_ALL, OFF(verbosity)},
    {"http-addr", NULL, "KLE_HTTP_ADDR", F_STRING, CMD_RUN, OFF(http_addr)},
    {"http-addr-file", NULL, "KLE_HTTP_ADDR_FILE", F_STRING, CMD_RUN, OFF(http_addr_file)},
    {"healthz-timeout", NULL, "KLE_HEALTHZ_TIMEOUT", F_DURATION, CMD_RUN, OFF(healthz_timeout_ms)},
    {"call-timeout", NULL, "KLE_CALL_TIMEOUT", F_DURATION, CMD_RUN, OFF(call_timeout_ms)},
    {"grace", NULL, "KLE_GRACE", F_DURATION, CMD_RUN, OFF(grace_ms)},
    {"on-exit", NULL, "KLE_ON_EXIT", F_ONEXIT, CMD_RUN, OFF(on_exit)},
    {"release-on-cancel", NULL, "KLE_RELEASE_ON_CANCEL", F_BOOL, CMD_RUN, OFF(release_on_cancel)},
    {"migration-guard", NULL, "KLE_MIGRATION_GUARD", F_BOOL, CMD_RUN, OFF(migration_guard)},
    {"follow", NULL, "KLE_FOLLOW", F_FOLLOW, CMD_RUN, OFF(follow_poll)},
    {"timeout", NULL, "KLE_TIMEOUT", F_DURATION, CMD_RUN, OFF(timeout_ms)},
    {"leader-elect", NULL, "KLE_LEADER_ELECT", F_BOOL, CMD_RUN, OFF(leader_elect)},
    {"output", NULL, NULL, F_OUTPUT, CMD_STATUS, OFF(output_json)},
    {"watch", NULL, NULL, F_BOOL, CMD_STATUS, OFF(watch)},
    {"changes", NULL, NULL, F_CHANGES, CMD_STATUS, OFF(changes_all)},
    {"is-leader", NULL, NULL, F_STRING, CMD_STATUS, OFF(is_leader)},
    {"coordinated", NULL, "KLE_COORDINATED", F_BOOL, CMD_RUN, OFF(coordinated)},
    {"candidate", NULL, "KLE_CANDIDATE", F_BOOL, CMD_RUN, OFF(candidate)},
    {"binary-version", NULL, "KLE_BINARY_VERSION", F_STRING, CMD_RUN, OFF(binary_version)},
    {"emulation-version", NULL, "KLE_EMULATION_VERSION", F_STRING, CMD_RUN, OFF(emulation_version)},
    {"to", NULL, NULL, F_STRING, CMD_TRANSFER, OFF(transfer_to)},
    {"force", NULL, NULL, F_BOOL, CMD_TRANSFER, OFF(force)},
    {"yes", NULL, NULL, F_BOOL, CMD_TRANSFER, OFF(yes)},
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

static void fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(err, errlen, "kle: ");
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < errlen)
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int set_value(cli_opts *o, const flag_def *f, const char *shown, const char *value,
                     char *err, size_t errlen)
{
    void *field = (char *)o + f->offset;
    switch (f->kind) {
    case F_STRING:
        if (!*value && f->offset != OFF(context)) {
            fail(err, errlen, "%s: empty value", shown);
            return CLI_EXIT_USAGE;
        }
        *(const char **)field = value;
        return 0;
    case F_DURATION: {
        int64_t ms;
        if (cli_parse_duration(&ms, value) < 0) {
            fail(err, errlen, "%s: invalid duration \"%s\" (Go syntax, e.g. 15s, 1m30s, 500ms)",
                 shown, value);
            return CLI_EXIT_USAGE;
        }
        if (ms > CLI_MAX_DURATION_MS) {
            char d[32];
            cli_format_duration(d, sizeof(d), CLI_MAX_DURATION_MS);
            fail(err, errlen,
                 "%s %s: too long (at most %s: the lock record holds leaseDurationSeconds as a "
                 "32-bit integer, and every duration of kle has that bound)",
                 shown, value, d);
            return CLI_EXIT_USAGE;
        }
        *(int64_t *)field = ms;
        if (f->offset == OFF(grace_ms))
            o->grace_set = 1;
        return 0;
    }
    case F_BOOL:
        if (cli_parse_bool((int *)field, value) < 0) {
            fail(err, errlen, "%s: invalid boolean \"%s\" (true or false)", shown, value);
            return CLI_EXIT_USAGE;
        }
        return 0;
    case F_INT: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < 0 || v > 10) {
            fail(err, errlen, "%s: invalid level \"%s\" (0 to 10)", shown, value);
            return CLI_EXIT_USAGE;
        }
        *(int *)field = (int)v;
        return 0;
    }
    case F_ONEXIT:
        if (strcmp(value, "release") == 0)
            o->on_exit = CLI_ON_EXIT_RELEASE;
        else if (strcmp(value, "exit") == 0)
            o->on_exit = CLI_ON_EXIT_EXIT;
        else if (strcmp(value, "restart") == 0)
            o->on_exit = CLI_ON_EXIT_RESTART;
        else {
            fail(err, errlen, "%s: invalid value \"%s\" (release, exit or restart)", shown, value);
            return CLI_EXIT_USAGE;
        }
        return 0;
    case F_OUTPUT:
        if (strcmp(value, "json") == 0)
            o->output_json = 1;
        else if (strcmp(value, "table") == 0 || strcmp(value, "wide") == 0)
            o->output_json = 0;
        else {
            fail(err, errlen, "%s: invalid output format \"%s\" (table or json)", shown, value);
            return CLI_EXIT_USAGE;
        }
        return 0;
    case F_FOLLOW:
        if (strcmp(value, "watch") == 0)
            o->follow_poll = 0;
        else if (strcmp(value, "poll") == 0)
            o->follow_poll = 1;
        else {
            fail(err, errlen, "%s: invalid value \"%s\" (watch or poll)", shown, value);
            return CLI_EXIT_USAGE;
        }
        return 0;
    case F_CHANGES:
        if (strcmp(value, "all") == 0)
            o->changes_all = 1;
        else if (strcmp(value, "holder") == 0)
            o->changes_all = 0;
        else {
            fail(err, errlen, "%s: invalid value \"%s\" (holder or all)", shown, value);
            return CLI_EXIT_USAGE;
        }
        o->changes_set = 1;
        return 0;
    case F_LOGFMT:
        if (strcmp(value, "json") == 0)
            o->json_logs = 1;
        else if (strcmp(value, "text") == 0)
            o->json_logs = 0;
        else {
            fail(err, errlen, "%s: invalid log format \"%s\" (text or json)", shown, value);
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    return CLI_EXIT_USAGE;
}

static const flag_def *find_flag(const char *name, size_t len, int cmd)
{
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag_def *f = &flags[i];
        if (!(f->commands & cmd))
            continue;
        if ((strlen(f->name) == len && strncmp(f->name, name, len) == 0) ||
            (f->alias && strlen(f->alias) == len && strncmp(f->alias, name, len) == 0))
            return f;
        if (f->kind == F_OUTPUT && len == 1 && name[0] == 'o')
            return f;
        if (f->offset == OFF(watch) && len == 1 && name[0] == 'w')
            return f;
    }
    return NULL;
}

int cli_parse(cli_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    int cmd;
    unsigned char seen[NFLAGS];
    memset(o, 0, sizeof(*o));
    memset(seen, 0, sizeof(seen));
    o->resource_lock = "leases";
    o->lease_duration_ms = 15000;
    o->renew_deadline_ms = 10000;
    o->retry_period_ms = 2000;
    o->healthz_timeout_ms = 20000;
    o->grace_ms = 3000;
    o->on_exit = CLI_ON_EXIT_EXIT;
    o->leader_elect = 1;
    o->release_on_cancel = 1;
    o->migration_guard = 1;
    err[0] = '\0';

    if (argc < 2) {
        fail(err, errlen, "no command given (run, status, transfer, help); see kle --help");
        return CLI_EXIT_USAGE;
    }
    o->command = argv[1];
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        o->help = 1;
        o->command = argc > 2 ? argv[2] : NULL;
        if (o->command && strcmp(o->command, "run") != 0 && strcmp(o->command, "status") != 0 &&
            strcmp(o->command, "transfer") != 0) {
            fail(err, errlen, "help: unknown command \"%s\" (run, status, transfer)", o->command);
            return CLI_EXIT_USAGE;
        }
        return 0;
    }
    if (strcmp(argv[1], "run") == 0)
        cmd = CMD_RUN;
    else if (strcmp(argv[1], "status") == 0)
        cmd = CMD_STATUS;
    else if (strcmp(argv[1], "transfer") == 0)
        cmd = CMD_TRANSFER;
    else {
        fail(err, errlen, "unknown command \"%s\" (run, status, transfer, help)", argv[1]);
        return CLI_EXIT_USAGE;
    }

    int i;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            return 0;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (cmd == CMD_RUN)
                break; /* the command starts here (without "--") */
            fail(err, errlen, "%s: unexpected argument \"%s\"", argv[1], a);
            return CLI_EXIT_USAGE;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const flag_def *f = find_flag(name, len, cmd);
        /* Single-dash flags are the one-letter ones (-v, -o); --v=2 also works, as in klog. */
        if (!f || (a[1] != '-' && len != 1)) {
            fail(err, errlen, "%s: unknown flag \"%.*s\"; see kle %s --help", argv[1],
                 (int)(len + (size_t)(name - a)), a, argv[1]);
            return CLI_EXIT_USAGE;
        }
        const char *value;
        if (eq)
            value = eq + 1;
        else if (f->kind == F_BOOL) {
            /* A boolean takes no separate value: "--release-on-cancel false"
             * would run "false" as the command. */
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                int b;
                const char *suggest = cli_parse_bool(&b, argv[i + 1]) == 0 ? argv[i + 1] : "false";
                fail(err, errlen,
                     "%s takes no separate value, but \"%s\" follows it: write %s=%s (or "
                     "%s=true), and put -- before the command",
                     a, argv[i + 1], a, suggest, a);
                return CLI_EXIT_USAGE;
            }
            value = "true";
        } else if (i + 1 < argc)
            value = argv[++i];
        else {
            fail(err, errlen, "%s: flag needs a value", a);
            return CLI_EXIT_USAGE;
        }
        char shown[96];
        snprintf(shown, sizeof(shown), "%s%.*s", a[1] == '-' ? "--" : "-", (int)len, name);
        int rc = set_value(o, f, shown, value, err, errlen);
        if (rc)
            return rc;
        seen[f - flags] = 1;
    }
    /* Environment fallbacks for flags not given. */
    for (size_t k = 0; k < NFLAGS; k++) {
        const flag_def *f = &flags[k];
        const char *v;
        if (seen[k] || !f->env || !(f->commands & cmd))
            continue;
        v = getenv(f->env);
        if (!v || !*v)
            continue;
        char shown[96];
        snprintf(shown, sizeof(shown), "$%s", f->env);
        int rc = set_value(o, f, shown, v, err, errlen);
        if (rc)
            return rc;
    }
    if (cmd == CMD_RUN) {
        if (i >= argc) {
            fail(err, errlen, "run: no command given; usage: kle run [flags] -- COMMAND [ARGS...]");
            return CLI_EXIT_USAGE;
        }
        o->argv_child = argv + i;
    }
    if (!o->lock_name && !(cmd == CMD_RUN && !o->leader_elect)) {
        fail(err, errlen, "%s: --lock-name is required (or $KLE_LOCK_NAME)", argv[1]);
        return CLI_EXIT_USAGE;
    }
    /* Names the API server would refuse, refused here: before connecting. */
    if (o->lock_name && !cli_valid_name(o->lock_name, 0)) {
        fail(err, errlen,
             "--lock-name \"%s\": not a valid object name: a lowercase RFC 1123 subdomain "
             "(lower case letters, digits, '-' and '.', starting and ending with a letter or "
             "digit, at most 253 characters)",
             o->lock_name);
        return CLI_EXIT_USAGE;
    }
    if (o->namespace_ && !cli_valid_name(o->namespace_, 1)) {
        fail(err, errlen,
             "--namespace \"%s\": not a valid namespace: a lowercase RFC 1123 label (lower "
             "case letters, digits and '-', starting and ending with a letter or digit, at "
             "most 63 characters)",
             o->namespace_);
        return CLI_EXIT_USAGE;
    }
    if (o->identity && kle_identity_check(o->identity) < 0) {
        fail(err, errlen, "--identity: %s", kle_error_last()->message);
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_TRANSFER && (!o->transfer_to || !*o->transfer_to)) {
        fail(err, errlen, "transfer: --to IDENTITY is required");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_TRANSFER && kle_identity_check(o->transfer_to) < 0) {
        fail(err, errlen, "--to: %s", kle_error_last()->message);
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_TRANSFER && o->yes && !o->force) {
        fail(err, errlen,
             "transfer: --yes confirms --force; give both to transfer to a "
             "target that is not a known candidate");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_STATUS && o->is_leader && kle_identity_check(o->is_leader) < 0) {
        fail(err, errlen, "--is-leader: %s", kle_error_last()->message);
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_STATUS && o->is_leader && o->watch) {
        fail(err, errlen,
             "status: --is-leader answers once (by its exit code); it does not "
             "go with -w");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_STATUS && o->changes_set && !o->watch) {
        fail(err, errlen, "status: --changes chooses what -w prints; give -w too");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_RUN && (o->coordinated || o->candidate) && !o->binary_version) {
        fail(err, errlen, "run: --%s publishes a LeaseCandidate and needs --binary-version",
             o->coordinated ? "coordinated" : "candidate");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_RUN && !o->leader_elect) {
        /* No election: nothing to campaign for, publish or time out. */
        const char *with = o->coordinated  ? "--coordinated"
                           : o->candidate  ? "--candidate"
                           : o->timeout_ms ? "--timeout"
                                           : NULL;
        if (with) {
            fail(err, errlen, "run: %s needs an election; it does not go with --leader-elect=false",
                 with);
            return CLI_EXIT_USAGE;
        }
    }
    int known = 0;
    for (const char *const *t = kle_lock_type_names(); *t; t++)
        known |= strcmp(*t, o->resource_lock) == 0;
    if (!known) {
        fail(err, errlen,
             "--resource-lock: unknown lock type \"%s\" (leases, endpoints, configmaps, "
             "endpointsleases, configmapsleases)",
             o->resource_lock);
        return CLI_EXIT_USAGE;
    }
    if (o->lease_duration_ms < 1000) {
        fail(err, errlen, "--lease-duration must be at least 1s (the record holds whole seconds)");
        return CLI_EXIT_USAGE;
    }
    if (cmd == CMD_RUN && o->http_addr) {
        const char *colon = strrchr(o->http_addr, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : -1;
        if (!colon || !colon[1] || *end || port < 0 || port > 65535) {
            fail(err, errlen, "--http-addr \"%s\": expected HOST:PORT (127.0.0.1:8080, :8080)",
                 o->http_addr);
            return CLI_EXIT_USAGE;
        }
    }
    if (cmd == CMD_RUN) {
        char l[32], r[32], p[32], g[32], w[32], m[32];
        cli_format_duration(l, sizeof(l), o->lease_duration_ms);
        cli_format_duration(r, sizeof(r), o->renew_deadline_ms);
        cli_format_duration(p, sizeof(p), o->retry_period_ms);
        if (o->lease_duration_ms % 1000) {
            fail(err, errlen,
                 "--lease-duration %s: must be whole seconds (the record holds seconds)", l);
            return CLI_EXIT_USAGE;
        }
        if (o->retry_period_ms <= 0 || o->renew_deadline_ms <= 0) {
            fail(err, errlen, "--renew-deadline and --retry-period must be greater than 0");
            return CLI_EXIT_USAGE;
        }
        if (o->lease_duration_ms <= o->renew_deadline_ms) {
            fail(err, errlen, "--lease-duration %s must be greater than --renew-deadline %s", l, r);
            return CLI_EXIT_USAGE;
        }
        if (o->renew_deadline_ms * 10 <= o->retry_period_ms * 12) {
            fail(err, errlen, "--renew-deadline %s must be greater than 1.2 x --retry-period %s", r,
                 p);
            return CLI_EXIT_USAGE;
        }
        /* The floor (docs/cli.md, "Timings"). */
        if (o->retry_period_ms < CLI_MIN_RETRY_MS) {
            fail(err, errlen,
                 "--retry-period %s is below kle's floor of 100ms: every try is one to three "
                 "requests, so a shorter period loads the API server without electing faster",
                 p);
            return CLI_EXIT_USAGE;
        }
        if (o->renew_deadline_ms < CLI_MIN_RENEW_MS) {
            fail(err, errlen,
                 "--renew-deadline %s is below kle's floor of 1s: a leader that cannot wait one "
                 "slow answer of the API server loses its term to it",
                 r);
            return CLI_EXIT_USAGE;
        }
        int64_t window = o->lease_duration_ms - o->renew_deadline_ms;
        cli_format_duration(w, sizeof(w), window);
        if (window < CLI_MIN_WINDOW_MS) {
            fail(err, errlen,
                 "--lease-duration %s - --renew-deadline %s = %s is below kle's floor of 500ms: "
                 "the command must be stopped in that window, before the lease can pass to "
                 "another replica",
                 l, r, w);
            return CLI_EXIT_USAGE;
        }
        int64_t max_grace = window - CLI_GRACE_MARGIN_MS;
        cli_format_duration(m, sizeof(m), max_grace);
        if (!o->grace_set) {
            /* Default: 3 s, or half the window when 3 s does not fit. */
            if (o->grace_ms > max_grace)
                o->grace_ms = window / 2;
        } else if (o->grace_ms > max_grace) {
            cli_format_duration(g, sizeof(g), o->grace_ms);
            fail(err, errlen,
                 "--grace %s must be at most --lease-duration %s - --renew-deadline %s - 100ms "
                 "= %s: the command is killed at the leadership deadline + grace at the latest, "
                 "and that kill must take effect before the lease can pass to another replica",
                 g, l, r, m);
            return CLI_EXIT_USAGE;
        }
    }
    return 0;
}

/*
 * The longest a working election loop goes without progress (docs/cli.md,
 * /healthz): a jittered wait (2.2 x retry period) then at most three lock
 * calls of at most two requests each (a MultiLock's two objects, or a
 * lock's migration-guard read), each cut at the default call timeout,
 * max(1 s, renew deadline / 2); between terms, the command's stop (grace,
 * then 1 s after SIGKILL) or the release (at most the renew deadline);
 * plus --healthz-timeout.
 */
int64_t cli_healthz_bound_ms(const cli_opts *o)
{
    int64_t call = o->renew_deadline_ms / 2 > 1000 ? o->renew_deadline_ms / 2 : 1000;
    int64_t bound = o->retry_period_ms * 22 / 10 + 6 * call;
    if (o->grace_ms + 1000 > bound)
        bound = o->grace_ms + 1000;
    if (o->renew_deadline_ms > bound)
        bound = o->renew_deadline_ms;
    return bound + o->healthz_timeout_ms;
}

int cli_default_identity(char *buf, size_t size)
{
    char *id;
    if (kle_default_identity(&id) < 0)
        return -1;
    snprintf(buf, size, "%s", id);
    kle_free(id);
    return 0;
}

static const char common_help[] =
    "Connection and lock flags (environment fallback in brackets):\n"
    "  --kubeconfig PATH       kubeconfig file; default: the files of $KUBECONFIG,\n"
    "                          ~/.kube/config, or the in-cluster service account\n"
    "  --context NAME          kubeconfig context [$KLE_CONTEXT]\n"
    "  --namespace NS          namespace of the lock [$KLE_NAMESPACE]; default: the in-cluster\n"
    "                          namespace, else the context's, else \"default\"\n"
    "  --lock-name NAME        name of the lock object (required) [$KLE_LOCK_NAME]\n"
    "  --resource-lock TYPE    leases (default), endpoints, configmaps, endpointsleases,\n"
    "                          configmapsleases [$KLE_RESOURCE_LOCK]\n"
    "  --log-format FMT        text (klog layout, default) or json [$KLE_LOG_FORMAT]\n"
    "  -v N                    log verbosity 0..10 (default 0) [$KLE_V]\n"
    "  -h, --help              this help\n"
    "kube-controller-manager's names work too: --leader-elect-resource-namespace,\n"
    "--leader-elect-resource-name, --leader-elect-resource-lock.\n";

/* docs/cli.md as installed beside this kle (<prefix>/bin/kle ->
 * <prefix>/share/doc/libkle/docs/cli.md), in buf; NULL when not there
 * (a kle run from the build tree). */
static const char *installed_cli_doc(char *buf, size_t size)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    snprintf(path, sizeof(path), "%s/%s/docs/cli.md", exe, KLE_DOC_FROM_BIN);
    char *real = realpath(path, NULL);
    if (!real)
        return NULL;
    snprintf(buf, size, "%s", real);
    free(real);
    return buf;
}

void cli_usage(const char *command)
{
    if (!command) {
        char doc[PATH_MAX];
        fputs("kle: leader election for any program, on a Kubernetes lock.\n\n"
              "Usage:\n"
              "  kle run [flags] -- COMMAND [ARGS...]   run COMMAND only while leading\n"
              "  kle status [flags]                     show the lock's record\n"
              "  kle transfer --to ID [flags]           hand the lease over to replica ID\n"
              "  kle help [COMMAND]                     help of a command\n"
              "  kle completion bash|zsh                shell completion script\n"
              "  kle --version                          the versions of kle and libkle\n\n"
              "Exit codes: 0 success; 1 (status, transfer) failure; 2 bad flag or value;\n"
              "3 (status) no such lock; 4 (status --is-leader) not the leader;\n"
              "run: COMMAND's code, or 122 leadership lost, 124 --timeout, 125 kle failed,\n"
              "126 COMMAND cannot be executed, 127 COMMAND not found.\n",
              stdout);
        if (installed_cli_doc(doc, sizeof(doc)))
            printf("Documentation: %s\n", doc);
        else
            fputs("Documentation: docs/cli.md (installed as share/doc/libkle/docs/cli.md),\n"
                  "https://github.com/libkle/libkle/blob/main/docs/cli.md\n",
                  stdout);
        return;
    }
    if (strcmp(command, "run") == 0) {
        fputs("Usage: kle run [flags] -- COMMAND [ARGS...]\n\n"
              "Campaigns for the lock and runs COMMAND while this process leads, with\n"
              "KLE_IDENTITY, KLE_LOCK (type/namespace/name) and KLE_LEADER_TRANSITIONS (a\n"
              "fencing token that increases with every change of leader) in its environment.\n"
              "By default (--on-exit=exit) COMMAND runs once: when it exits, kle releases the\n"
              "lease and exits with COMMAND's code; when leadership is lost first, COMMAND and\n"
              "all its descendants get SIGTERM, then SIGKILL after --grace, and kle exits 122.\n"
              "A supervisor process enforces the leadership deadline on its own, even when\n"
              "kle is frozen. If kle dies, even by SIGKILL, the command is killed too.\n"
              "SIGTERM, SIGINT, SIGHUP, SIGQUIT: stop the command, release the lease, exit 0.\n\n"
              "Exit codes: COMMAND's code (128 + N when killed by signal N); 0 stopped by a\n"
              "signal; 2 bad flag or value (nothing started); 122 leadership lost while\n"
              "COMMAND ran; 124 --timeout passed before the lock was acquired; 125 kle\n"
              "failed (configuration, API, system); 126 COMMAND cannot be executed; 127\n"
              "COMMAND not found.\n\n"
              "Run flags:\n"
              "  --identity ID           holder identity [$KLE_IDENTITY]; default $POD_NAME, else\n"
              "                          hostname_UUID\n"
              "  --lease-duration D      lease duration, Go syntax (default 15s) "
              "[$KLE_LEASE_DURATION]\n"
              "  --renew-deadline D      how long the leader retries renewing (default 10s,\n"
              "                          at least 1s) [$KLE_RENEW_DEADLINE]\n"
              "  --retry-period D        wait between tries (default 2s, at least 100ms)\n"
              "                          [$KLE_RETRY_PERIOD]\n"
              "  --grace D               SIGTERM-to-SIGKILL time (default 3s, or half of\n"
              "                          lease-duration - renew-deadline when 3s does not fit);\n"
              "                          at most lease-duration - renew-deadline - 100ms\n"
              "                          [$KLE_GRACE]\n"
              "  --on-exit MODE          when COMMAND exits: exit (default; release the lease,\n"
              "                          exit with its code), release (release and campaign\n"
              "                          again), restart (run it again while leading); both\n"
              "                          back off when COMMAND keeps exiting [$KLE_ON_EXIT]\n"
              "  --timeout D             give up acquiring the lock after D and exit 124\n"
              "                          (default: wait forever) [$KLE_TIMEOUT]\n"
              "  --leader-elect B        false: run COMMAND without election, under the\n"
              "                          supervisor, with the HTTP endpoints (default true)\n"
              "                          [$KLE_LEADER_ELECT]\n"
              "  --release-on-cancel B   release the lease when stopping (default true)\n"
              "                          [$KLE_RELEASE_ON_CANCEL]\n"
              "  --migration-guard B     refuse to lead while the same-named lock of the other\n"
              "                          family (Lease vs Endpoints/ConfigMap) has another live\n"
              "                          holder: a skipped migration phase (default true)\n"
              "                          [$KLE_MIGRATION_GUARD]\n"
              "  --follow MODE           watch (default: watch the lock, take a released lease\n"
              "                          at once and an expired one when it expires) or poll\n"
              "                          (every retry period, as client-go) [$KLE_FOLLOW]\n"
              "  --http-addr HOST:PORT   serve /healthz, /readyz, /metrics, /leader\n"
              "                          [$KLE_HTTP_ADDR]; port 0 picks a free port\n"
              "  --http-addr-file PATH   write the bound address there [$KLE_HTTP_ADDR_FILE]\n"
              "  --call-timeout D        limit of one request to the API server (default\n"
              "                          max(1s, renew-deadline/2)) [$KLE_CALL_TIMEOUT]\n"
              "  --healthz-timeout D     margin over the longest a working election loop goes\n"
              "                          without progress, before /healthz fails (default 20s)\n"
              "                          [$KLE_HEALTHZ_TIMEOUT]; see docs/cli.md\n"
              "  --candidate             publish a LeaseCandidate (coordination.k8s.io/v1beta1)\n"
              "                          named LOCK.IDENTITY, so kle transfer can see this\n"
              "                          replica [$KLE_CANDIDATE]\n"
              "  --coordinated           coordinated election: the API server picks the holder;\n"
              "                          never creates or takes the lease (implies --candidate,\n"
              "                          named IDENTITY, which the server writes in as holder)\n"
              "                          [$KLE_COORDINATED]\n"
              "  --binary-version V      candidate's binary version, e.g. 1.33.0\n"
              "                          [$KLE_BINARY_VERSION]\n"
              "  --emulation-version V   candidate's emulation version (default: the binary\n"
              "                          version) [$KLE_EMULATION_VERSION]\n"
              "kube-controller-manager's --leader-elect-lease-duration,\n"
              "--leader-elect-renew-deadline and --leader-elect-retry-period work too.\n\n",
              stdout);
        fputs(common_help, stdout);
        return;
    }
    if (strcmp(command, "transfer") == 0) {
        fputs("Usage: kle transfer --lock-name NAME --to IDENTITY [flags]\n\n"
              "Planned handover: sets the Lease's preferredHolder to IDENTITY, so that the\n"
              "current leader stops its work and hands the lease over. IDENTITY must be a\n"
              "live candidate: its LeaseCandidate (LOCK.IDENTITY, or IDENTITY as published\n"
              "by --coordinated and older kle) must exist and answer a ping within 5s.\n"
              "Only leases can be transferred. See docs/coordinated.md.\n\n"
              "Exit codes: 0 asked; 1 refused or failed (the reason on stderr); 2 bad flag.\n\n"
              "Transfer flags:\n"
              "  --to IDENTITY           the replica to hand over to (required)\n"
              "  --force                 skip the ping: hand over to a known candidate that\n"
              "                          does not answer\n"
              "  --yes                   with --force: hand over even to a target that has no\n"
              "                          LeaseCandidate (on a terminal kle asks instead); a\n"
              "                          target that never takes it leaves the lock leaderless\n"
              "                          for a lease duration\n\n",
              stdout);
        fputs(common_help, stdout);
        return;
    }
    fputs("Usage: kle status [flags]\n\n"
          "Shows the lock's record: holder, acquired, renewed (ages as kubectl prints\n"
          "them), lease duration, transitions, and whether it has expired by this\n"
          "machine's clock; for the MultiLocks (endpointsleases, configmapsleases) both\n"
          "records and whether they agree.\n\n"
          "Exit codes: 0 the lock exists (with --is-leader: ID holds it); 1 failure;\n"
          "2 bad flag; 3 the lock does not exist (yet); 4 (--is-leader) ID does not hold\n"
          "it, or its lease has expired.\n\n"
          "Status flags:\n"
          "  -o, --output FMT        table (default) or json\n"
          "  -w, --watch             then print the lock's changes as they happen, until\n"
          "                          interrupted (MultiLocks: both objects)\n"
          "  --changes WHAT          with -w: holder (changes of holder only; the default\n"
          "                          on a terminal) or all (every change, renewals too; the\n"
          "                          default otherwise)\n"
          "  --is-leader ID          exit 0 when ID holds the lock and its lease has not\n"
          "                          expired, 4 otherwise\n\n",
          stdout);
    fputs(common_help, stdout);
}

void cli_each_flag(const char *command, cli_flag_fn fn, void *arg)
{
    int cmd = strcmp(command, "run") == 0        ? CMD_RUN
              : strcmp(command, "status") == 0   ? CMD_STATUS
              : strcmp(command, "transfer") == 0 ? CMD_TRANSFER
                                                 : 0;
    char lock_types[256] = "";
    for (const char *const *t = kle_lock_type_names(); *t; t++) {
        size_t n = strlen(lock_types);
        snprintf(lock_types + n, sizeof(lock_types) - n, "%s%s", n ? " " : "", *t);
    }
    for (size_t i = 0; i < NFLAGS; i++) {
        const flag_def *f = &flags[i];
        cli_flag_info fi = {f->name, f->alias, 0, 1, NULL};
        if (!(f->commands & cmd))
            continue;
        switch (f->kind) {
        case F_STRING:
            if (f->offset == OFF(resource_lock))
                fi.values = lock_types; /* what the parser accepts */
            break;
        case F_DURATION:
        case F_INT:
            break;
        case F_BOOL:
            fi.takes_value = 0; /* --flag, or --flag=false */
            fi.values = "true false";
            break;
        case F_ONEXIT:
            fi.values = "release exit restart";
            break;
        case F_OUTPUT:
            fi.short_name = 'o';
            fi.values = "table json";
            break;
        case F_LOGFMT:
            fi.values = "text json";
            break;
        case F_FOLLOW:
            fi.values = "watch poll";
            break;
        case F_CHANGES:
            fi.values = "holder all";
            break;
        }
        if (f->offset == OFF(watch))
            fi.short_name = 'w';
        fn(arg, &fi);
    }
}
