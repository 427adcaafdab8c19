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

#include "election/sm.h"
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

/* R5. An own write forgets the bytes seen before it (found by the swarm, a long run of every
 * fault kind: the shortest it found): without R5 an elector keeps its own record beside another
 * holder's bytes, and a later read of those bytes looks unchanged: its next term's token repeats
 * one it had seen. */
static void test_sim_rules__r5(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R5_FORGET_RAW, "C4",
          "n=4 ld=15000000000 rd=10000000000 rp=2000000000 to=5000000000 ws=0 watch=3 roc=1 sam"
          "e=0 mut=32 seed=78558 ppm=10000 step=5000000000 faults=201676 slow=0 fu=120000000000"
          " ru=193000000000 every=1000 pct=5 exh=0 maxf=2 hz=20000000000|e2.0.c1=apply=31198610"
          "40 ans=1854917638;e3.0.c1=apply=3542276433 ans=1271919804;@1000000.3=ans e1.0 c1;F1="
          "server-loses-state;F3=stream-410 e0;F4=delete;e1.0.c13=apply=13941313998 lost;F5=sto"
          "p e1;F8=server-loses-state;F10=server-loses-state;e1.1.c6=apply=4970508501 ans=20445"
          "50;F12=bookmark;F13=stop e1;e2.0.c5=apply=1533832321 ans=547438139;F18=stop e1;e1.2."
          "c4=apply=2606620521 ans=1589021184;F19=bookmark;F21=server-loses-state;F23=stop e3;e"
          "1.3.c4=apply=16562293952 lost;F27=pause e1 9128699837;F28=stop e2;F29=bookmark;F31=s"
          "top e3;F32=server-loses-state;F35=bookmark;F36=bookmark;F37=delete;F38=server-loses-"
          "state;F39=pause e3 8086043442;F40=bookmark;F42=bookmark;F44=delete;F46=bookmark;F48="
          "server-loses-state;F51=bookmark;F52=delete;e3.2.c23=apply=1208425993 ans=1384338607;"
          "F54=stream-410 e1;F55=stop e2;F57=stop e1;F58=bookmark;F59=delete;F61=server-loses-s"
          "tate;F63=stop e2;F66=server-loses-state;F67=stream-410 e1;F68=bookmark;F70=delete;F7"
          "2=stop e0;F73=stop e1;F74=server-loses-state;F76=server-loses-state;e0.1.c9=apply=48"
          "98758023 ans=7490272;e3.2.c34=apply=4823226710 ans=110226621;F82=bookmark;F83=stream"
          "-410 e0;e2.3.c19=apply=847023412 ans=3611406744;e0.1.c13=apply=22751225174 lost;F86="
          "delete;F87=pause e2 8150384113;F88=server-loses-state;F90=bookmark;@93132436500.2=an"
          "s e0.1 c17;F92=server-loses-state;e1.5.c6=apply=2351099769 ans=1773205738;F94=bookma"
          "rk;F96=bookmark;F98=delete;F101=stop e0;e1.5.c17=apply=21391676648 lost;F102=stop e1"
          ";F103=pause e2 3161645586;F105=bookmark;F106=server-loses-state;F108=pause e2 947620"
          "8388;F109=bookmark;e1.6.c2=apply=1096289680 ans=3433797363;F112=server-loses-state;F"
          "113=pause e0 5205719263;F114=pause e1 3865332371;@119608416180.1=quiet;@120000000000"
          ".0=wev e1.6 s23.914");
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

/* R11. A live lease of another holder seen is waited out, whichever way the lock is won: e2 leads
 * (token 1), its work slow to stop; the lock is deleted; without R11 e1, whose stream showed e2's
 * renewals and the deletion, creates the lock at once and starts while e2's work still runs. */
static void test_sim_rules__r11(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R11_NOTFOUND_WAIT, "C2",
          "n=4 ld=15000000000 rd=10000000000 rp=2000000000 to=1500000000 ws=1 watch=6 roc=0 sam"
          "e=0 mut=65536 seed=13 ppm=10000 step=5000000000 faults=3863882 slow=1 fu=12000000000"
          "0 ru=186000000000 every=6000 pct=2 exh=0 maxf=2 hz=20000000000|@2000000.7=req e1.0 c"
          "2;F0=stop e1;e2.0.t1=wind=4602117444;F6=delete");
}

/* D5. A leader whose lock is gone ends its term: the server loses its state twice under a poll
 * leader; without D5 the leader re-creates the lock within its term, and the next term's token
 * repeats one seen. (test_safety's leader_whose_lock_is_deleted_steps_down shows the overlap.) */
static void test_sim_rules__d5(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_D5_DELETED_ENDS, "C4",
          "n=4 ld=15000000000 rd=10000000000 rp=2000000000 to=1500000000 ws=1 watch=0 roc=0 sam"
          "e=0 mut=131072 seed=160 ppm=10000 step=5000000000 faults=998137 slow=0 fu=1050000000"
          "00 ru=171000000000 every=2000 pct=20 exh=0 maxf=2 hz=20000000000|F0=server-loses-sta"
          "te;F2=server-loses-state");
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

/* R9. A new term's token above every token seen: e1 leads with token 1; e0 stops and the lock is
 * deleted; e1 re-creates it: without R9 with token 0, below the token of its own last term. */
static void test_sim_rules__r9(void **state)
{
    (void)state;
    needs(KLE_SM_MUT_R9_TOKENS, "C4",
          "n=2 ld=8000000000 rd=6000000000 rp=1000000000 to=3000000000 ws=1 watch=3 roc=1 same="
          "0 mut=512 seed=1 ppm=10000 step=5000000000 faults=3357082 slow=0 fu=56000000000 ru=9"
          "5000000000 every=1000 pct=5 exh=0 maxf=2 hz=20000000000|F16=stop e0;F18=delete");
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
        cmocka_unit_test(test_sim_rules__r10), cmocka_unit_test(test_sim_rules__d5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
