/* State shared by kle run and its HTTP endpoints. */
#ifndef KLE_CLI_RUN_H
#define KLE_CLI_RUN_H

#include <pthread.h>

#include "cli.h"

/* What kle run knows of its command, for /metrics; guarded by metrics_mu. */
typedef struct cli_command_metrics {
    int running;         /* 1 while COMMAND runs */
    uint64_t starts;     /* COMMAND started */
    uint64_t restarts;   /* of which started again in the same term (--on-exit=restart) */
    uint64_t exits[256]; /* COMMAND ended, by exit code (128 + N: killed by signal N) */
} cli_command_metrics;

typedef struct cli_run_state {
    const cli_opts *opts;
    kle_client *client; /* NULL with --leader-elect=false */
    pthread_mutex_t mu;
    kle_elector *elector;         /* the current campaign's, or NULL between campaigns */
    kle_event *stop;              /* set on a stop signal or --timeout: wakes every wait */
    int unelected;                /* --leader-elect=false */
    int led_once;                 /* some campaign started leading (ends --timeout); under mu */
    int timed_out;                /* --timeout passed first; under mu */
    pthread_mutex_t leader_mu;    /* guards leader and observed (never held across elector calls) */
    char *leader;                 /* last observed holder ("" when none) */
    uint64_t slowpath_base;       /* slowpath_total of earlier campaigns */
    uint64_t watch_restarts_base; /* watch_restarts of earlier campaigns */
    kle_elector_stats last;       /* the last finished campaign's stats (v3) */
    int observed;                 /* some campaign has read the lock */
    int last_call_error;          /* the last lock call's error (0: answered), under mu */
    char lock_desc[512];          /* type/namespace/name, for messages */
    pthread_mutex_t metrics_mu;
    cli_command_metrics cmd;
} cli_run_state;

typedef struct cli_http cli_http;

/* Starts the HTTP server on opts->http_addr; writes the bound address to
 * opts->http_addr_file when set. Returns 0, or -1 after one "kle: " line
 * naming the problem (the address, the errno). */
int cli_http_start(cli_http **out, cli_run_state *st);
void cli_http_stop(cli_http *h);

#endif
