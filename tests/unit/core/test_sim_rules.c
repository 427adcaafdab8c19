/*
 * Each safety rule of the state machine (R1..R11 of the argument; see sm.h)
 * with a run the search found: the run keeps every invariant with all the
 * rules on, and breaks one with that rule switched off (the mutation
 * check's shortest traces, scripts/mutate). R1 and the lost-answer split
 * brain are in test_sim.c. D4 has none: it is reached only with R2 off
 * (R2's check of an acquisition's answer tests the same condition first),
 * and with both off R2's other half (the late renewal answer) breaks C3
 * first.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/sm.h"
#include "kle/log.h"
#include "sim.h"

static void quiet(kle_log_severity sev, int v, const char *file, int line, const char *msg,
                  void *data)
{
    (void)sev, (void)v, (void)file, (void)line, (void)msg, (void)data;
}

/* The run passes with every rule on and breaks @p invariant without @p bit. */
static void needs(int bit, const char *invariant, const char *trace)
{
    char msg[512];
    int rc = sim_replay(trace, 0, msg, sizeof(msg));
    if (rc != 0)
        print_message("with every rule on: %s\n", msg);
    assert_int_equal(rc, 0);
    rc = sim_replay(trace, bit, msg, sizeof(msg));
    print_message("without it: %s\n", msg);
    assert_int_equal(rc, 1);
    assert_memory_equal(msg, invariant, 2);
}

/* R2. An answer at or after the deadline extends nothing: e0, leading, is paused for 3.001 s (past
 * its renew deadline) with its renewal answered meanwhile; at the pause's end the answer is taken
 * before the timer: without R2 the term is extended after its deadline passed (revived). */
static void test_sim_rules__r2(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R2_LATE_ANSWER, "C3",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=0 s"
          "ame=0 mut=2 seed=1 ppm=10000 step=5000000000 faults=127 slow=0 fu=60000000000 ru"
          "=90000000000 every=1000 pct=10 exh=1 maxf=2 hz=20000000000|@2008790980.1=pause e"
          "0 3001000000");
}

/* R3. The term ends at its deadline: e0's renewal lands with its answer lost, the next is refused
 * (503); without R3 its work runs past the deadline. */
static void test_sim_rules__r3(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R3_DEADLINE_END, "C3",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=0 s"
          "ame=0 mut=4 seed=1 ppm=10000 step=5000000000 faults=63 slow=0 fu=60000000000 ru="
          "90000000000 every=1000 pct=10 exh=1 maxf=2 hz=20000000000|e0.0.c12=apply=1000000"
          " lost;e0.0.c13=refuse=-11 after=1000000");
}

/* R4. Expiry from the local time a change was seen: e1's wall clock steps 5 s ahead; dating e0's
 * record by its renewTime on that clock, e1 takes over while e0 leads. */
static void test_sim_rules__r4(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R4_OBSERVE_LOCAL, "C1",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=0 s"
          "ame=0 mut=16 seed=1 ppm=10000 step=5000000000 faults=128 slow=0 fu=60000000000 r"
          "u=90000000000 every=1000 pct=10 exh=1 maxf=1 hz=20000000000|@3082926333.0=wall e"
          "1 5000000000");
}

/* R5. An own write forgets the bytes seen before it (found by the swarm, four watching electors):
 * without R5 a late answer to an own write leaves the elector its own record beside another
 * holder's bytes, and it renews over that holder. */
static void test_sim_rules__r5(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R5_FORGET_RAW, "C1",
          "n=4 ld=15000000000 rd=10000000000 rp=2000000000 to=1500000000 ws=0 watch=15 roc="
          "0 same=0 mut=32 seed=446 ppm=10000 step=5000000000 faults=872334 slow=0 fu=13500"
          "0000000 ru=201000000000 every=400 pct=5 exh=0 maxf=2 hz=20000000000|e1.0.c1=appl"
          "y=1092701631 ans=203046293;@2000000.5=req e2.0 c2;@3000000.6=ans e2.0 c2;F6=tran"
          "sfer e0;e2.0.c8=apply=17248277106 lost;F7=delete;F11=stream-silence e2;F12=trans"
          "fer e3;F14=stream-silence e3;F29=server-loses-state;F45=delete");
}

/* R6. Only a 1 s lease with holder "" is a release: the record is hand-edited to holder "" keeping
 * its 4 s lease; without R6 e1 takes it at once while e0 leads. */
static void test_sim_rules__r6(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R6_RELEASED, "C1",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=0 s"
          "ame=0 mut=64 seed=1 ppm=10000 step=5000000000 faults=1049600 slow=0 fu=600000000"
          "00 ru=90000000000 every=1000 pct=10 exh=1 maxf=1 hz=20000000000|@3081926333.1=ed"
          "it holder-empty");
}

/* R11. A NotFound waits out a live foreign lease seen: the server loses its state while e0 leads;
 * without R11 e1, which saw e0's lease, creates the lock at once. */
static void test_sim_rules__r11(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R11_NOTFOUND_WAIT, "C1",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=3 roc=0 s"
          "ame=0 mut=65536 seed=1 ppm=10000 step=5000000000 faults=768 slow=0 fu=60000000000 "
          "ru=90000000000 every=1000 pct=10 exh=1 maxf=1 hz=20000000000|@1006395490.0=wev e"
          "1.0 s1.25;@1007395490.0=ans e0.0 c4;@2009790980.0=wev e1.0 s1.30;@2010790980.0=a"
          "ns e0.0 c5;@2010790980.1=server-loses-state");
}

/* R8. A record under our name we did not write is foreign: two replicas share the identity "e0", no
 * fault at all; without R8 the second renews the first's record as its own and both lead. */
static void test_sim_rules__r8(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R8_OWN_IDENTITY, "C1",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=0 s"
          "ame=1 mut=256 seed=1 ppm=10000 step=5000000000 faults=63 slow=0 fu=60000000000 r"
          "u=90000000000 every=1000 pct=10 exh=1 maxf=1 hz=20000000000|");
}

/* R9. A new term's token above every token seen: the lock is deleted while e0 leads with token 0;
 * e1 waits out the lease and re-creates it: without R9 with token 0 again. */
static void test_sim_rules__r9(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R9_TOKENS, "C4",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=3 roc=0 s"
          "ame=0 mut=512 seed=1 ppm=10000 step=5000000000 faults=768 slow=0 fu=60000000000 "
          "ru=90000000000 every=1000 pct=10 exh=1 maxf=1 hz=20000000000|@3013308923.1=delet"
          "e");
}

/* R10. Release and handover only after the work returned: kle transfer e1 while e0 leads, e0's work
 * takes 1.5 s to stop; without R10 e0 hands over at once and e1 starts while e0's work runs. */
static void test_sim_rules__r10(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R10_WORK_FIRST, "C2",
          "n=2 ld=4000000000 rd=3000000000 rp=1000000000 to=1500000000 ws=0 watch=0 roc=1 s"
          "ame=0 mut=1024 seed=1 ppm=10000 step=5000000000 faults=6144 slow=1 fu=6000000000"
          "0 ru=90000000000 every=1000 pct=10 exh=1 maxf=2 hz=20000000000|e0.0.t1=wind=1500"
          "000000;@3081926333.1=transfer e1");
}

int main(void)
{
    kle_log_set_handler(quiet, NULL);
    kle_log_set_verbosity(-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_rules__r2),  cmocka_unit_test(test_sim_rules__r3),
        cmocka_unit_test(test_sim_rules__r4),  cmocka_unit_test(test_sim_rules__r5),
        cmocka_unit_test(test_sim_rules__r6),  cmocka_unit_test(test_sim_rules__r11),
        cmocka_unit_test(test_sim_rules__r8),  cmocka_unit_test(test_sim_rules__r9),
        cmocka_unit_test(test_sim_rules__r10),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
