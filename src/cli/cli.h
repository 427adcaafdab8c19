/* Internal interface of the kle command-line tool. */
#ifndef KLE_CLI_H
#define KLE_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <kle/client.h>
#include <kle/kle.h>
#include <kle/locks.h>

#include "exitcodes.h"

/*
 * The floor of kle run's timings (docs/cli.md, "Timings"): below it a
 * replica churns terms and loads the API server without gaining anything.
 */
#define CLI_MIN_RETRY_MS  100  /* --retry-period */
#define CLI_MIN_RENEW_MS  1000 /* --renew-deadline */
#define CLI_MIN_WINDOW_MS 500  /* --lease-duration - --renew-deadline */
/* What --grace leaves of lease-duration - renew-deadline: room for the
 * SIGKILL at deadline + grace to take effect before the lease can pass. */
#define CLI_GRACE_MARGIN_MS 100

/* The longest duration any flag takes: leaseDurationSeconds is an int32. */
#define CLI_MAX_DURATION_MS (INT64_C(2147483647) * 1000)

typedef enum cli_on_exit { CLI_ON_EXIT_RELEASE, CLI_ON_EXIT_EXIT, CLI_ON_EXIT_RESTART } cli_on_exit;

/* Every option of every command; unset strings are NULL. */
typedef struct cli_opts {
    const char *command; /* "run", "status" or "transfer" */
    const char *kubeconfig;
    const char *context;
    const char *namespace_;
    const char *lock_name;
    const char *resource_lock;
    const char *identity;
    int64_t lease_duration_ms;
    int64_t renew_deadline_ms;
    int64_t retry_period_ms;
    int json_logs;
    int verbosity;
    /* run */
    const char *http_addr;
    const char *http_addr_file;
    int64_t healthz_timeout_ms;
    int64_t call_timeout_ms; /* 0: the library's default */
    int64_t grace_ms;
    int grace_set;
    cli_on_exit on_exit;
    int release_on_cancel;
    int migration_guard;
    int follow_poll;    /* --follow poll */
    int64_t timeout_ms; /* --timeout: give up acquiring after it; 0: never */
    int leader_elect;   /* --leader-elect (default 1); 0: run COMMAND without election */
    char **argv_child;  /* NULL-terminated, borrowed from argv */
    int coordinated;
    int candidate;
    const char *binary_version;
    const char *emulation_version;
    /* status */
    int output_json;
    int watch;             /* status -w */
    int changes_all;       /* status -w --changes all (else holder changes only) */
    int changes_set;       /* --changes was given */
    const char *is_leader; /* status --is-leader ID */
    /* transfer */
    const char *transfer_to;
    int force;
    int yes; /* transfer --yes: also to a target that is not a known candidate */
    int help;
} cli_opts;

/*
 * Parses argv[1..] (argv[1] is the command) into @p o. On a usage error
 * writes one line "kle: <reason>" into @p err and returns CLI_EXIT_USAGE;
 * returns 0 on success (o->help set when --help was given).
 */
int cli_parse(cli_opts *o, int argc, char **argv, char *err, size_t errlen);

/* Parses a Go duration ("1h2m3.5s", "300ms", "0") into milliseconds. */
int cli_parse_duration(int64_t *out_ms, const char *text);

/* The wait before campaigning again after @p failures campaigns in a row
 * failed to lead: retry_ms << failures, capped at CLI_BACKOFF_CAP_MS (or
 * retry_ms when that is longer). */
#define CLI_BACKOFF_CAP_MS 30000
int64_t cli_backoff_ms(int64_t retry_ms, int failures);

/* /healthz's bound in milliseconds: the longest a working election loop goes
 * without progress, plus --healthz-timeout (docs/cli.md). */
int64_t cli_healthz_bound_ms(const cli_opts *o);

/* Formats milliseconds as a Go duration ("15s", "1.5s", "300ms"). */
void cli_format_duration(char *buf, size_t size, int64_t ms);

/* Formats an age as kubectl does (apimachinery's HumanDuration): "45s",
 * "5m47s", "3h12m", "2d5h"; "<invalid>" more than a second in the future. */
void cli_human_duration(char *buf, size_t size, int64_t ms);

/* 1 when @p s is a valid object name: a DNS-1123 subdomain (at most 253
 * characters) or, with @p label, a DNS-1123 label (at most 63). */
int cli_valid_name(const char *s, int label);

/* Writes "kle: <message>" and a newline to stderr: the one error style of
 * every command for what is found before (or instead of) running. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parses a boolean as Go's strconv.ParseBool. */
int cli_parse_bool(int *out, const char *text);

/* Prints the help of @p command (NULL: top level) to stdout. */
void cli_usage(const char *command);

/* A flag as the parser knows it, for shell completion (completion.c). */
typedef struct cli_flag_info {
    const char *name;   /* long name without "--" ("lock-name"; "v" for -v) */
    const char *alias;  /* kube-controller-manager's name, or NULL */
    char short_name;    /* 'o' for -o, or 0 */
    int takes_value;    /* 1: --flag VALUE or --flag=VALUE; 0: --flag[=BOOL] */
    const char *values; /* the values it takes, space-separated, or NULL */
} cli_flag_info;
typedef void (*cli_flag_fn)(void *arg, const cli_flag_info *flag);
/* Calls @p fn for every flag of @p command ("run", "status", "transfer"). */
void cli_each_flag(const char *command, cli_flag_fn fn, void *arg);

/* kle completion bash|zsh: prints a completion script (argv after
 * "completion"); returns the exit code. */
int cli_completion_main(int argc, char **argv);

/* Installs the log handler (text in klog's layout, or JSON lines). */
void cli_log_setup(int json, int verbosity);
/* Logs a line of the tool itself through the same handler. */
void cli_log(kle_log_severity sev, int v, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same with structured fields (JSON logs show them as keys). */
void cli_logf(kle_log_severity sev, int v, const char *file, int line, const kle_log_field *fields,
              size_t nfields, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
#define CLI_INFO(...) cli_log(KLE_LOG_INFO, 0, __FILE__, __LINE__, __VA_ARGS__)
#define CLI_V(v, ...) cli_log(KLE_LOG_INFO, (v), __FILE__, __LINE__, __VA_ARGS__)
#define CLI_WARN(...) cli_log(KLE_LOG_WARNING, 0, __FILE__, __LINE__, __VA_ARGS__)
#define CLI_ERR(...)  cli_log(KLE_LOG_ERROR, 0, __FILE__, __LINE__, __VA_ARGS__)

/* Copies @p in with control characters and bytes that are not UTF-8
 * written as \n, \t, \r or \xNN: for untrusted text (holders, server
 * answers) in text output. */
void cli_escape(char *out, size_t size, const char *in);

/* The identity default: $POD_NAME, else hostname + "_" + a random UUID. */
int cli_default_identity(char *buf, size_t size);

/* Commands. */
int cli_cmd_run(cli_opts *o, const char *self_exe);
int cli_cmd_status(cli_opts *o);

/* kle transfer: sets the Lease's preferredHolder (kle_transfer()). */
int cli_cmd_transfer(cli_opts *o);

/* Client and lock construction shared by the commands. */
int cli_make_client(kle_client **out, const cli_opts *o);
int cli_make_lock(kle_lock **out, const cli_opts *o, kle_client *client, const char *identity);

#endif
