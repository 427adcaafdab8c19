/*
 * sim_search: the deterministic simulation's search from the command line
 * (scripts/mutate runs it for each rule; docs/reliability.md shows how).
 *
 *   sim_search exhaustive [options]   the bounded exhaustive search
 *   sim_search swarm [options]        the swarm, seed after seed
 *   sim_search replay 'TRACE'         replays a trace (SIM_LOG=1: every step)
 *   sim_search shrink 'TRACE'         shrinks a failing trace
 *
 * Options: --n N (electors; swarm: 0 picks per run), --timings LD:RD:RP[:TO]
 * (seconds, e.g. 15:10:2), --whole-seconds, --watch MASK (bit i: elector i
 * watches), --faults LIST (sim_faults_parse: calls,pause,wall,delete,loss,
 * edit,transfer,stop,watch,touch,...; "all"; "-x" removes x), --max-faults K,
 * --depth D, --horizon S, --seconds S (CPU budget), --mut NAME|+NAME...
 * (R1..R11, D1..D3, L1, L2), --roc (release on cancel), --same-identity,
 * --slow-work, --seed N, --runs N, --rate-ppm P.
 * Environment: SIM_LOG=1 prints every step of a replay (SIM_LOG=2: and the
 * machines' own log lines, verbosity 5); SIM_KEEP_GOING=1
 * makes the swarm list every failing seed and go on (a survey: which
 * faults break what); SIM_NO_SHRINK=1 prints a swarm failure's trace as
 * recorded. Exit status: 0 nothing found, 1 a violation found (printed with
 * its trace), 2 usage.
 */
#include "sim.h"

#include "kle/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                  void *data)
{
    (void)sev, (void)v, (void)file, (void)line, (void)msg, (void)data;
}

static int usage(void)
{
    fprintf(stderr, "usage: sim_search exhaustive|swarm [options] | replay|shrink 'TRACE' "
                    "[--mut R1]\n");
    return 2;
}

static int parse_mut(const char *s)
{
    int bits = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save = NULL, *tok = strtok_r(buf, "+,", &save); tok;
         tok = strtok_r(NULL, "+,", &save)) {
        int b = sim_mutation_bit(tok);
        if (b < 0) {
            char *end;
            long v = strtol(tok, &end, 0);
            if (*end)
                return -1;
            b = (int)v;
        }
        bits |= b;
    }
    return bits;
}

static void print_result(const char *mode, const sim_result *r)
{
    if (!strcmp(mode, "exhaustive"))
        printf("exhaustive: %" PRIu64 " states, depth %d, %" PRIu64 " steps, %.2f s%s\n", r->states,
               r->depth, r->steps, r->seconds,
               r->found      ? ""
               : r->complete ? " (complete)"
                             : " (stopped at the time limit)");
    else
        printf("swarm: %" PRIu64 " runs, %" PRIu64 " steps, %.2f s; outside the rules, counted: "
               "%" PRIu64 " token repeats after unseen re-creations, %" PRIu64
               " overlaps after blind creates\n",
               r->runs, r->steps, r->seconds, r->token_notes, r->blind_notes);
    if (r->baseline) {
        printf("FAILS ON THE REAL RULES TOO (%" PRIu64 " traces): %s\n", r->baseline,
               r->baseline_message);
        printf("baseline trace: %s\n", r->baseline_trace ? r->baseline_trace : "(none)");
    }
    if (r->found) {
        printf("VIOLATION: %s\n", r->message);
        if (!strcmp(mode, "swarm"))
            printf("seed: %" PRIu64 "\n", r->seed);
        printf("trace: %s\n", r->trace ? r->trace : "(none)");
    }
}

int main(int argc, char **argv)
{
    const char *log = getenv("SIM_LOG");
    if (log && *log == '2') {
        kle_log_set_verbosity(5); /* The machines' own log lines too. */
    } else {
        kle_log_set_handler(quiet, NULL);
        kle_log_set_verbosity(-1);
    }
    if (argc < 2)
        return usage();
    const char *mode = argv[1];
    int mut = -1;
    if (!strcmp(mode, "replay") || !strcmp(mode, "shrink")) {
        if (argc < 3)
            return usage();
        for (int i = 3; i + 1 < argc; i += 2)
            if (!strcmp(argv[i], "--mut") && (mut = parse_mut(argv[i + 1])) < 0)
                return usage();
        if (!strcmp(mode, "shrink")) {
            char *t = sim_shrink(argv[2], mut);
            printf("%s\n", t ? t : "(malformed)");
            free(t);
            return t ? 0 : 2;
        }
        char msg[512];
        int rc = sim_replay(argv[2], mut, msg, sizeof(msg));
        printf("%s\n", rc == 1 ? msg : rc == 0 ? "no violation" : msg);
        return rc == 1 ? 1 : rc == 0 ? 0 : 2;
    }
    sim_config c;
    sim_config_default(&c);
    int depth = 20;
    double seconds = 0;
    uint64_t seed = 1, runs = UINT64_MAX;
    int swarm = !strcmp(mode, "swarm");
    if (swarm) {
        c.n = 0;
        c.lease = 0;
        c.whole_seconds = -1;
        c.watch_mask = ~0u;
        c.release_on_cancel = -1;
        c.same_identity = -1;
        c.slow_work = -1;
        c.faults = SIM_F_ALL & ~(SIM_F_DELETE | SIM_F_STATE_LOSS);
    } else if (strcmp(mode, "exhaustive")) {
        return usage();
    } else {
        c.faults = SIM_F_CALLS;
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--whole-seconds")) {
            c.whole_seconds = 1;
        } else if (!strcmp(a, "--micro-seconds")) {
            c.whole_seconds = 0;
        } else if (!strcmp(a, "--roc")) {
            c.release_on_cancel = 1;
        } else if (!strcmp(a, "--same-identity")) {
            c.same_identity = 1;
        } else if (!strcmp(a, "--no-roc")) {
            c.release_on_cancel = 0;
        } else if (!strcmp(a, "--no-same-identity")) {
            c.same_identity = 0;
        } else if (!strcmp(a, "--slow-work")) {
            c.slow_work = 1;
        } else if (!v) {
            return usage();
        } else if (!strcmp(a, "--n")) {
            c.n = atoi(v), i++;
        } else if (!strcmp(a, "--timings")) {
            double ld = 0, rd = 0, rp = 0, to = 0;
            if (sscanf(v, "%lf:%lf:%lf:%lf", &ld, &rd, &rp, &to) < 3)
                return usage();
            c.lease = (int64_t)(ld * 1e9);
            c.renew = (int64_t)(rd * 1e9);
            c.retry = (int64_t)(rp * 1e9);
            c.call_timeout = (int64_t)(to * 1e9);
            i++;
        } else if (!strcmp(a, "--watch")) {
            c.watch_mask = (unsigned)strtoul(v, NULL, 0), i++;
        } else if (!strcmp(a, "--faults")) {
            long f = sim_faults_parse(v);
            if (f < 0)
                return usage();
            c.faults = (unsigned)f, i++;
        } else if (!strcmp(a, "--max-faults")) {
            c.max_faults = atoi(v), i++;
        } else if (!strcmp(a, "--depth")) {
            depth = atoi(v), i++;
        } else if (!strcmp(a, "--horizon")) {
            c.horizon = (int64_t)(atof(v) * 1e9), i++;
        } else if (!strcmp(a, "--seconds")) {
            seconds = atof(v), i++;
        } else if (!strcmp(a, "--mut")) {
            if ((mut = parse_mut(v)) < 0)
                return usage();
            c.mutations = mut, i++;
        } else if (!strcmp(a, "--seed")) {
            seed = strtoull(v, NULL, 0), i++;
        } else if (!strcmp(a, "--runs")) {
            runs = strtoull(v, NULL, 0), i++;
        } else if (!strcmp(a, "--rate-ppm")) {
            c.rate_ppm = atoll(v), i++;
        } else {
            return usage();
        }
    }
    if (!swarm)
        c.seed = seed;
    sim_result r;
    int rc =
        swarm ? sim_swarm(&c, seed, runs, seconds, &r) : sim_exhaustive(&c, depth, seconds, &r);
    if (rc < 0) {
        fprintf(stderr, "sim_search: out of memory\n");
        return 2;
    }
    print_result(mode, &r);
    int found = r.found;
    sim_result_free(&r);
    return found ? 1 : 0;
}
