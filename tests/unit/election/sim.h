/*
 * The deterministic simulation of the election and its search (sim.c):
 * N state machines (src/election/sm.h) against one in-memory model of the API
 * server's object, per-elector clocks, one scheduler, one seed. No threads,
 * no sleeps: a run is a sequence of steps, each a choice among the options
 * the world offers at that point, so the same choices replay the same run
 * step for step. Three choosers drive it: the exhaustive search (every
 * option, states hashed), the swarm (random options from a per-run fault
 * mix) and replay (the choices of a trace string).
 *
 * See sim.c's header comment for the model, the delay classes, the
 * invariants and the liveness bound.
 */
#ifndef KLE_TESTS_SIM_H
#define KLE_TESTS_SIM_H

#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_ELECTORS 5

/* Fault kinds (sim_config.faults). */
enum {
    SIM_F_REQ_LOST = 1 << 0,       /* A request never reaches the server: the caller times out. */
    SIM_F_ANS_LOST = 1 << 1,       /* Applied, the answer lost: the caller times out. */
    SIM_F_ANS_LATE = 1 << 2,       /* Applied and answered just before the call's timeout. */
    SIM_F_APPLY_LATE = 1 << 3,     /* Applied after the caller's timeout (past T, RD, LD). */
    SIM_F_REFUSE = 1 << 4,         /* Refused: 409, 5xx, 429, 403, 404. */
    SIM_F_ERR_APPLIED = 1 << 5,    /* Applied, answered with a 5xx (a timeout after commit). */
    SIM_F_PAUSE = 1 << 6,          /* An elector's inputs and work held (GC, SIGSTOP). */
    SIM_F_WALL_STEP = 1 << 7,      /* An elector's wall clock steps. */
    SIM_F_DELETE = 1 << 8,         /* The object deleted (kubectl delete). */
    SIM_F_STATE_LOSS = 1 << 9,     /* The server loses its state: object gone, rv restart. */
    SIM_F_EDIT = 1 << 10,          /* Hand-edited records. */
    SIM_F_TRANSFER = 1 << 11,      /* preferredHolder set to another elector (kle transfer). */
    SIM_F_STOP = 1 << 12,          /* An elector stopped, and restarted as a new process. */
    SIM_F_WATCH_DELAY = 1 << 13,   /* Stream events delayed. */
    SIM_F_WATCH_SILENCE = 1 << 14, /* A stream silenced while open. */
    SIM_F_WATCH_END = 1 << 15,     /* A stream ended. */
    SIM_F_WATCH_GONE = 1 << 16,    /* 410 Gone: the stream re-lists. */
    SIM_F_BOOKMARK = 1 << 17,      /* Bookmarks. */
    SIM_F_WATCH_DUP = 1 << 18,     /* Duplicated events. */
    SIM_F_WATCH_STALE = 1 << 19,   /* Stale re-deliveries of the previous version. */
    SIM_F_TOUCH = 1 << 20,         /* A new resourceVersion over the same record (a label). */
    SIM_F_EVENT_SLOW = 1 << 21,    /* Event calls (became leader) time out. */
    SIM_F_ALL = (1 << 22) - 1
};

/* The faults of lock calls alone. */
#define SIM_F_CALLS                                                                                \
    (SIM_F_REQ_LOST | SIM_F_ANS_LOST | SIM_F_ANS_LATE | SIM_F_APPLY_LATE | SIM_F_REFUSE |          \
     SIM_F_ERR_APPLIED)
/* The faults of watch streams. */
#define SIM_F_WATCH                                                                                \
    (SIM_F_WATCH_DELAY | SIM_F_WATCH_SILENCE | SIM_F_WATCH_END | SIM_F_WATCH_GONE |                \
     SIM_F_BOOKMARK | SIM_F_WATCH_DUP | SIM_F_WATCH_STALE)

typedef struct sim_config {
    int n;                                     /* Electors, 2..SIM_MAX_ELECTORS. */
    int64_t lease, renew, retry, call_timeout; /* ns; call_timeout 0: the runtime's default. */
    int whole_seconds;   /* Records at whole seconds (an annotation record), else µs (Lease). */
    unsigned watch_mask; /* Electors that follow with a watch (bit i: elector i). */
    int release_on_cancel;
    int same_identity; /* Electors 0 and 1 share one identity (two replicas, one name). */
    int mutations;     /* KLE_SM_MUT_* */
    uint64_t seed;     /* Clocks, the machines' jitter, the swarm's choices. */
    int64_t rate_ppm;  /* Bound on each monotonic clock's rate error, in ppm. */
    int64_t wall_step; /* Bound on a wall step (either way), ns. */
    unsigned faults;   /* SIM_F_* kinds that may happen. */
    int slow_work;     /* Works may take a while to stop once told. */
    /* Swarm: */
    int64_t fault_until; /* Faults stop here (global ns); then the quiet phase. */
    int64_t run_until;   /* The run ends here. */
    int fault_every_ms;  /* Mean gap between injected faults. */
    int call_fault_pct;  /* Share of calls that get a fault. */
    /* Exhaustive: */
    int exhaustive;  /* Options from the delay classes; faults as step options. */
    int max_faults;  /* Injected faults per path (pauses, steps, edits, ...). */
    int64_t horizon; /* A path ends at this global time. */
} sim_config;

/* Defaults: 4s/3s/1s, 2 electors, polling, µs records, seed 1, no faults. */
void sim_config_default(sim_config *c);

typedef struct sim sim;

/* One option of a step: label (for traces) and whether it is the default. */
typedef struct sim_option {
    char label[64];
    int benign;
} sim_option;

sim *sim_new(const sim_config *c);
sim *sim_clone(const sim *w);
void sim_free(sim *w);

/*
 * The options at this point (at most @p max, written to @p out when not
 * NULL); 0 when the run is over (horizon or run_until reached).
 * @p key receives the decision's key (stable across runs of one config).
 */
int sim_options(sim *w, sim_option *out, int max, char *key, size_t key_size);
/* Takes option @p k. Returns 1 when an invariant broke (sim_violation). */
int sim_apply(sim *w, int k);
/* Takes the option written as @p label at this point; -1 when it cannot be taken. */
int sim_apply_label(sim *w, const char *label);
uint64_t sim_hash(const sim *w);
const char *sim_violation(const sim *w); /* NULL while every invariant holds. */
int64_t sim_now(const sim *w);
uint64_t sim_steps(const sim *w);

/* What a run did. */
typedef struct sim_stats {
    uint64_t steps, terms, calls, faults, quiet_phases, max_quiet_wait_ms;
    uint64_t token_limit_notes;  /* Token repeats the rules document as outside them. */
    uint64_t blind_create_notes; /* Overlaps after a blind create, outside the rules too. */
    uint64_t stale_wakes;        /* Ticks that left a machine's past wake time in place. */
} sim_stats;
void sim_get_stats(const sim *w, sim_stats *out);

/* ---- traces ---- */

/* The config as a trace header ("n=2 ld=4000 ..."). */
int sim_config_format(char *buf, size_t size, const sim_config *c);
/* Parses a trace header; -1 on a malformed one. */
int sim_config_parse(sim_config *c, const char *text);

/*
 * Runs a trace: "<config>|key=label;key=label;...", the choices that were
 * not the default (every other decision takes its default). @p mutations
 * >= 0 overrides the trace's own; under other rules than it was recorded
 * with the run may take another course, so a choice whose point never
 * comes is skipped (with its own rules, such a choice is an error).
 * Returns 1 when an invariant broke (its message in @p msg), 0 when the
 * run ended clean, -1 on a malformed trace or a choice that cannot be taken.
 */
int sim_replay(const char *trace, int mutations, char *msg, size_t msg_size);

/* ---- search ---- */

typedef struct sim_result {
    int found;         /* An invariant broke. */
    char message[512]; /* Which, and where. */
    char *trace;       /* The shortest trace found (malloc'd; sim_result_free). */
    uint64_t seed;     /* Swarm: the failing run's seed. */
    uint64_t states;   /* Exhaustive: distinct states explored. */
    int depth;         /* Exhaustive: deepest choice depth reached. */
    uint64_t runs;     /* Swarm: runs made. */
    uint64_t steps;
    uint64_t token_notes; /* Swarm: sim_stats.token_limit_notes, summed. */
    uint64_t blind_notes; /* Swarm: sim_stats.blind_create_notes, summed. */
    double seconds;
    int complete; /* Exhaustive: the space up to the depth was explored. */
    /*
     * With mutations: a violation counts as the mutant caught only when its
     * trace passes with every rule on. The others break the real rules too:
     * counted here, the first kept (a finding about the rules themselves).
     */
    uint64_t baseline;
    char baseline_message[512];
    char *baseline_trace;
} sim_result;
void sim_result_free(sim_result *r);

/*
 * The bounded exhaustive search from @p c (c->exhaustive set): every
 * option of every step up to @p depth choices, each state once (by
 * sim_hash), within @p seconds of CPU time (0: no limit). Stops at the
 * first violation, shrinks its trace.
 */
int sim_exhaustive(const sim_config *c, int depth, double seconds, sim_result *out);

/*
 * The swarm: runs from seeds first_seed, first_seed + 1, ... until @p runs
 * runs or @p seconds of CPU time; each run picks its fault kinds and rates
 * from its seed (within @p c->faults). Stops at the first violation and
 * shrinks its trace.
 */
int sim_swarm(const sim_config *c, uint64_t first_seed, uint64_t runs, double seconds,
              sim_result *out);

/* Shrinks a failing trace (fewer non-default choices, then an earlier end). */
char *sim_shrink(const char *trace, int mutations);

/* "R1".."R11", "D1".."D3", "L1", "L2" and their KLE_SM_MUT_* bits; -1 / NULL if unknown. */
int sim_mutation_bit(const char *name);
const char *sim_mutation_name(int bit);
/* A comma-separated list of fault kinds ("calls,pause,watch", "all") as SIM_F_* bits; -1 on an
 * unknown name. */
long sim_faults_parse(const char *list);

/* CPU seconds used by this process. */
double sim_cpu_seconds(void);

#endif
