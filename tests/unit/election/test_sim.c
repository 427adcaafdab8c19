/*
 * The deterministic simulation itself (sim.c): the same choices replay the
 * same run step for step, a copied world goes on independently, traces
 * round-trip and a malformed or impossible one is refused, the bounded
 * exhaustive search is deterministic, and the lost-answer split brain of
 * the safety issue stays closed: its traces pass on the real rules and
 * fail with the rules that close it switched off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "election/sm.h"
#include "kle/log.h"
#include "sim.h"

static void quiet(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                  void *data)
{
    (void)sev, (void)v, (void)file, (void)line, (void)msg, (void)data;
}

/* A swarm-like config: every fault kind of the profile every rule keeps. */
static void busy_config(sim_config *c, uint64_t seed)
{
    sim_config_default(c);
    c->n = 3;
    c->seed = seed;
    c->watch_mask = 2;
    c->slow_work = 1;
    c->faults = SIM_F_CALLS | SIM_F_PAUSE | SIM_F_STOP | SIM_F_WATCH | SIM_F_TOUCH;
    c->fault_until = KLE_SEC(30);
    c->run_until = KLE_SEC(45);
    c->fault_every_ms = 700;
}

/* Drives @p w with choices from @p rng; returns the hashes after each step. */
static size_t drive(sim *w, uint64_t rng, uint64_t *hashes, size_t max)
{
    size_t n = 0;
    sim_option o[96];
    while (n < max) {
        int k = sim_options(w, o, 96, NULL, 0);
        if (k == 0)
            break;
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        /* Mostly the default, sometimes another option. */
        int pick = (rng >> 33) % 4 == 0 ? (int)((rng >> 40) % (uint64_t)k) : 0;
        if (sim_apply(w, pick) != 0)
            break;
        hashes[n++] = sim_hash(w);
    }
    return n;
}

static void test_sim__the_same_choices_replay_the_same_run(void **state)
{
    (void)state;
    sim_config c;
    busy_config(&c, 7);
    enum { MAX = 20000 };
    uint64_t *a = calloc(MAX, sizeof(uint64_t)), *b = calloc(MAX, sizeof(uint64_t));
    sim *x = sim_new(&c), *y = sim_new(&c);
    size_t na = drive(x, 99, a, MAX), nb = drive(y, 99, b, MAX);
    assert_true(na > 300);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(uint64_t));
    assert_int_equal(sim_steps(x), sim_steps(y));
    assert_true(sim_now(x) == sim_now(y));
    sim_free(x);
    sim_free(y);
    /* Another seed (clocks, jitter) is another run. */
    busy_config(&c, 8);
    x = sim_new(&c);
    nb = drive(x, 99, b, MAX);
    assert_true(nb < 10 || memcmp(a + 9, b + 9, sizeof(uint64_t)) != 0);
    sim_free(x);
    free(a);
    free(b);
}

static void test_sim__a_copy_goes_on_alone(void **state)
{
    (void)state;
    sim_config c;
    busy_config(&c, 11);
    sim *w = sim_new(&c);
    uint64_t h[400];
    drive(w, 5, h, 200);
    sim *copy = sim_clone(w);
    assert_non_null(copy);
    assert_true(sim_hash(copy) == sim_hash(w));
    /* The same choices from both: the same states. */
    uint64_t a[300], b[300];
    size_t na = drive(w, 123, a, 300), nb = drive(copy, 123, b, 300);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na * sizeof(uint64_t));
    /* Different choices: the copy is not disturbed by the original. */
    sim *again = sim_clone(copy);
    drive(w, 77, a, 300);
    drive(copy, 1, a, 100);
    drive(again, 1, b, 100);
    assert_true(sim_hash(copy) == sim_hash(again));
    sim_free(w);
    sim_free(copy);
    sim_free(again);
}

static void test_sim__traces_round_trip_and_bad_ones_are_refused(void **state)
{
    (void)state;
    sim_config c, d;
    busy_config(&c, 3);
    c.mutations = KLE_SM_MUT_R1_FIRST_SEND;
    char head[1024];
    sim_config_format(head, sizeof(head), &c);
    assert_int_equal(sim_config_parse(&d, head), 0);
    assert_memory_equal(&c, &d, sizeof(c));
    assert_int_equal(sim_config_parse(&d, "n=2 ld=4"), -1);

    char msg[512];
    assert_int_equal(sim_replay("no config here", -1, msg, sizeof(msg)), -1);
    /* A choice that cannot be taken where its key comes is refused, not skipped. */
    char t[1200];
    snprintf(t, sizeof(t), "%s|e0.0.c1=apply=nonsense", head);
    assert_int_equal(sim_replay(t, -1, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "cannot be taken"));
    /* No choices at all: the default run, clean on the real rules. */
    snprintf(t, sizeof(t), "%s|", head);
    assert_int_equal(sim_replay(t, 0, msg, sizeof(msg)), 0);

    assert_int_equal(sim_mutation_bit("R10"), KLE_SM_MUT_R10_WORK_FIRST);
    assert_string_equal(sim_mutation_name(KLE_SM_MUT_L2_FRESH_RENEW), "L2");
    assert_int_equal(sim_mutation_bit("R12"), -1);
    assert_int_equal(sim_faults_parse("calls,pause"), SIM_F_CALLS | SIM_F_PAUSE);
    assert_int_equal(sim_faults_parse("all,-watch"), SIM_F_ALL & ~SIM_F_WATCH);
    assert_int_equal(sim_faults_parse("calls,nonsense"), -1);
}

static void test_sim__the_exhaustive_search_is_deterministic(void **state)
{
    (void)state;
    sim_config c;
    sim_config_default(&c);
    c.faults = SIM_F_CALLS;
    c.max_faults = 1;
    sim_result a, b;
    assert_int_equal(sim_exhaustive(&c, 10, 0, &a), 0);
    assert_int_equal(sim_exhaustive(&c, 10, 0, &b), 0);
    assert_false(a.found);
    assert_true(a.complete);
    assert_true(a.states > 100);
    assert_int_equal(a.depth, 10);
    assert_int_equal(a.states, b.states);
    assert_int_equal(a.steps, b.steps);
    /* Deeper is more. */
    sim_result d;
    assert_int_equal(sim_exhaustive(&c, 14, 0, &d), 0);
    assert_true(d.states > a.states);
    sim_result_free(&a);
    sim_result_free(&b);
    sim_result_free(&d);
}

/*
 * The lost-answer split brain of the safety issue (defect 1), as the
 * exhaustive search found it with its two fixes undone (15s/10s/2s, e1
 * watching): e0's write lands at 15.004 s but its answer is lost (e0 is
 * paused); its slow path reads and writes the record again at 30.006 s.
 * Without L2 the rewrite keeps the renewTime taken when the try started:
 * the same bytes, so e1, which saw them at 15.005 s, counts it as a touch
 * (capped at 16.005 s) and takes over at 31.06 s; without R1 e0 dates its
 * term from the rewrite's send and leads until 40 s. Either rule alone
 * closes it; both off, two leaders.
 */
static const char lost_answer_trace[] =
    "n=2 ld=15000000000 rd=10000000000 rp=2000000000 to=5000000000 ws=0 watch=2 roc=0 same=0 "
    "mut=0 seed=1 ppm=10000 step=5000000000 faults=70 slow=0 fu=60000000000 ru=90000000000 "
    "every=1000 pct=10 exh=1 maxf=3 hz=40000000000|@2000000.1=pause e0 15001000000;"
    "@2000000.2=pause e1 15001000000;@3000000.0=ans e0.0 c2;@15003000000.1=to e1.0 c1;"
    "@15003000000.3=pause e0 15001000000;@22529175372.0=to e0.0 c3";

static void test_sim__the_lost_answer_split_brain_stays_closed(void **state)
{
    (void)state;
    char msg[512];
    assert_int_equal(sim_replay(lost_answer_trace, 0, msg, sizeof(msg)), 0);
    assert_int_equal(sim_replay(lost_answer_trace, KLE_SM_MUT_R1_FIRST_SEND, msg, sizeof(msg)), 0);
    assert_int_equal(sim_replay(lost_answer_trace, KLE_SM_MUT_L2_FRESH_RENEW, msg, sizeof(msg)), 0);
    assert_int_equal(sim_replay(lost_answer_trace,
                                KLE_SM_MUT_R1_FIRST_SEND | KLE_SM_MUT_L2_FRESH_RENEW, msg,
                                sizeof(msg)),
                     1);
    assert_non_null(strstr(msg, "C1: two works run at once"));
}

/*
 * R1 alone (found by the swarm, shrunk): with whole-second records and wall
 * steps on e0 (an NTP step back of 4.8 s at 30.5 s among them), e0's writes
 * come back to bytes it wrote before; dated from their later sends, without
 * R1, e0's term outlasts what e2 credits it with, and e2 takes over at
 * 32.07 s while e0 leads. With R1 (a term dated from the first send of its
 * bytes) the run stays clean.
 */
static const char r1_trace[] =
    "n=3 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=1 watch=0 roc=0 same=0 "
    "mut=0 seed=673 ppm=10000 step=5000000000 faults=137 slow=0 fu=36000000000 "
    "ru=64000000000 every=1000 pct=5 exh=0 maxf=2 hz=20000000000|F3=wall e0 2559951341;"
    "F6=wall e0 -4902049350;e1.0.c7=never;F10=wall e0 -3265346380;F12=wall e0 3716604385;"
    "e0.0.c16=apply=8185206660 lost;F13=wall e0 -3181130324;F16=wall e0 -1103986809;"
    "e2.0.c14=never;F21=wall e0 -142638339;e1.0.c15=never;e2.0.c18=never;e1.0.c17=never;"
    "F31=wall e0 -4810380355";

static void test_sim__r1_alone_is_needed(void **state)
{
    (void)state;
    char msg[512];
    assert_int_equal(sim_replay(r1_trace, 0, msg, sizeof(msg)), 0);
    assert_int_equal(sim_replay(r1_trace, KLE_SM_MUT_R1_FIRST_SEND, msg, sizeof(msg)), 1);
    assert_non_null(strstr(msg, "C1: two works run at once"));
}

int main(void)
{
    kle_log_set_handler(quiet, NULL);
    kle_log_set_verbosity(-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim__the_same_choices_replay_the_same_run),
        cmocka_unit_test(test_sim__a_copy_goes_on_alone),
        cmocka_unit_test(test_sim__traces_round_trip_and_bad_ones_are_refused),
        cmocka_unit_test(test_sim__the_exhaustive_search_is_deterministic),
        cmocka_unit_test(test_sim__the_lost_answer_split_brain_stays_closed),
        cmocka_unit_test(test_sim__r1_alone_is_needed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
