/* State shared by kle run and its HTTP endpoints. */
#ifndef KLE_CLI_RUN_H
#define KLE_CLI_RUN_H

#include <pthread.h>

#include "cli.h"

typedef struct cli_run_state {
    const cli_opts *opts;
    pthread_mutex_t mu;
    kle_elector *elector;      /* the current campaign's, or NULL between campaigns */
    pthread_mutex_t leader_mu; /* guards leader and observed (never held across elector calls) */
    char *leader;              /* last observed holder ("" when none) */
    uint64_t slowpath_base;    /* slowpath_total of earlier campaigns */
    int observed;              /* some campaign has read the lock */
    int last_call_error;       /* the last lock call's error (0: answered), under mu */
    char lock_desc[512];       /* type/namespace/name, for messages */
} cli_run_state;

typedef struct cli_http cli_http;

/* Starts the HTTP server on opts->http_addr; writes the bound address to
 * opts->http_addr_file when set. Returns 0 or -1 (logged). */
int cli_http_start(cli_http **out, cli_run_state *st);
void cli_http_stop(cli_http *h);

#endif
