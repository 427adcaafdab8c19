/*
 * Regression tests of the ways to two leaders found by review and by fault
 * probes, through the public API only (kle_elector_run with its callbacks,
 * the fake lock and the fake clock), so that they hold for any elector
 * implementation. Each scenario runs several real electors on one fake
 * object on the auto-advancing fake clock; every time is virtual and exact.
 *
 * The check over every run: no two terms' work overlaps (a term's work runs
 * from on_started_leading until its handle signals the end), and fencing
 * tokens strictly increase from one term to the next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/kle.h"
#include "kle/testing.h"
#include "support/fake_world.h"

#define SEC       KLE_NS_PER_SEC
#define MS        KLE_NS_PER_MS
#define N_NODES   3
#define N_TERMS   16
#define INT32_TOP 2147483647

typedef struct world world;

typedef struct term {
    int node;
    int64_t start, end, deadline;
    int token;
} term;

typedef struct node {
    world *w;
    int idx;
    char id[32];
    kle_lock *lock; /* Owned by the elector. */
    kle_elector *e;
    pthread_t thread;
    int started;
    int quit;
    int once; /* Run kle_elector_run once only. */
    int runs;
    int last_rc;
    int rcs[8];
    kle_event *exited;
} node;

struct world {
    kle_clock *clock;
    kle_fake_store *store;
    node n[N_NODES];
    int64_t t0;
    int follow;
    int64_t ld, rd, rp;
    int release_on_cancel;
    term terms[N_TERMS];
    int n_terms;
};

static int64_t now(world *w)
{
    return kle_clock_monotonic_ns(w->clock) - w->t0;
}

static void on_started(kle_leading *l, void *data)
{
    node *n = data;
    world *w = n->w;
    int i = w->n_terms < N_TERMS ? w->n_terms++ : N_TERMS - 1;
    term *t = &w->terms[i];
    t->node = n->idx;
    t->start = now(w);
    t->token = kle_leading_transitions(l);
    t->end = -1;
    while (kle_leading_wait_ns(l, KLE_MS(500)) != 0) {
    }
    t->end = now(w);
    t->deadline = kle_leading_deadline_ns(l) - w->t0;
}

static void on_stopped(void *data)
{
    (void)data;
}

static void *node_main(void *p)
{
    node *n = p;
    while (!n->quit) {
        int rc = kle_elector_run(n->e);
        n->last_rc = rc;
        if (n->runs < 8)
            n->rcs[n->runs] = rc;
        n->runs++;
        if (n->once)
            break;
    }
    kle_event_set(n->exited);
    return NULL;
}

static int setup(void **state)
{
    world *w = calloc(1, sizeof(*w));
    clock_and_store(&w->clock, &w->store, 1);
    w->t0 = kle_clock_monotonic_ns(w->clock);
    w->ld = 15 * SEC, w->rd = 10 * SEC, w->rp = 2 * SEC;
    *state = w;
    return 0;
}

static void stop_all(world *w)
{
    for (int i = 0; i < N_NODES; i++) {
        node *n = &w->n[i];
        if (!n->started)
            continue;
        n->quit = 1;
        kle_elector_stop(n->e);
    }
    for (int i = 0; i < N_NODES; i++) {
        node *n = &w->n[i];
        if (!n->started)
            continue;
        assert_int_equal(kle_clock_wait(w->clock, n->exited, INT64_MAX), 0);
        pthread_join(n->thread, NULL);
        n->started = 0;
    }
}

static int teardown(void **state)
{
    world *w = *state;
    stop_all(w);
    kle_fake_clock_leave(w->clock);
    for (int i = 0; i < N_NODES; i++) {
        kle_elector_free(w->n[i].e);
        kle_event_free(w->n[i].exited);
    }
    kle_fake_store_free(w->store);
    kle_clock_free(w->clock);
    free(w);
    return 0;
}

/* Makes node @p i with @p identity (NULL: "node-i") and starts it campaigning. */
static node *start_node(world *w, int i, const char *identity, uint64_t seed)
{
    node *n = &w->n[i];
    n->w = w;
    n->idx = i;
    if (identity)
        snprintf(n->id, sizeof(n->id), "%s", identity);
    else
        snprintf(n->id, sizeof(n->id), "node-%d", i);
    assert_int_equal(kle_fake_lock_new(&n->lock, w->store, n->id, "default/safety"), 0);
    if (w->follow == KLE_FOLLOW_WATCH)
        assert_int_equal(kle_fake_lock_set_watch(n->lock, 1), 0);
    kle_elector_config c = KLE_ELECTOR_CONFIG_INIT;
    c.lock = n->lock;
    c.clock = w->clock;
    c.lease_duration_ns = w->ld;
    c.renew_deadline_ns = w->rd;
    c.retry_period_ns = w->rp;
    c.release_on_cancel = w->release_on_cancel;
    c.jitter_seed = seed;
    c.follow = w->follow;
    c.callbacks.on_started_leading = on_started;
    c.callbacks.on_stopped_leading = on_stopped;
    c.callbacks.data = n;
    assert_int_equal(kle_elector_new(&n->e, &c), 0);
    assert_int_equal(kle_event_new(&n->exited), 0);
    assert_int_equal(kle_fake_clock_spawn(&n->thread, w->clock, node_main, n), 0);
    n->started = 1;
    return n;
}

/* Lets virtual time run until @p t (since the world began). */
static void run_until(world *w, int64_t t)
{
    int64_t left = t - now(w);
    if (left > 0)
        kle_clock_sleep(w->clock, left);
}

/* Runs until @p node leads (or @p limit passes); returns 1 when it does. */
static int run_until_leads(world *w, int idx, int64_t limit)
{
    while (now(w) < limit) {
        if (kle_elector_is_leader(w->n[idx].e))
            return 1;
        kle_clock_sleep(w->clock, 10 * MS);
    }
    return 0;
}

/* No two terms' work overlapped; describes the first overlap in @p why. */
static int overlap(world *w, char *why, size_t size)
{
    for (int i = 0; i < w->n_terms; i++)
        for (int j = 0; j < w->n_terms; j++) {
            term *a = &w->terms[i], *b = &w->terms[j];
            if (i == j || a->node == b->node)
                continue;
            int64_t a_end = a->end < 0 ? INT64_MAX : a->end;
            if (a->start <= b->start && b->start < a_end) {
                snprintf(
                    why, size,
                    "%s works from %" PRId64 " ms to %" PRId64 " ms, %s starts at %" PRId64 " ms",
                    w->n[a->node].id, a->start / MS, a->end / MS, w->n[b->node].id, b->start / MS);
                return 1;
            }
        }
    return 0;
}

static void assert_no_overlap(world *w)
{
    char why[256];
    if (getenv("KLE_TEST_TRACE"))
        for (int i = 0; i < w->n_terms; i++)
            fprintf(stderr,
                    "term %d: %s %" PRId64 "..%" PRId64 " ms (deadline %" PRId64 ") token %d\n", i,
                    w->n[w->terms[i].node].id, w->terms[i].start / MS, w->terms[i].end / MS,
                    w->terms[i].deadline / MS, w->terms[i].token);
    if (overlap(w, why, sizeof(why)))
        fail_msg("two leaders: %s", why);
}

/* Fencing tokens strictly increase from one term to the next. */
static void assert_tokens_increase(world *w)
{
    for (int i = 1; i < w->n_terms; i++)
        if (w->terms[i].token <= w->terms[i - 1].token &&
            !(w->terms[i].token == INT32_TOP && w->terms[i - 1].token == INT32_TOP))
            fail_msg("term %d (%s) has token %d after term %d (%s) had %d", i,
                     w->n[w->terms[i].node].id, w->terms[i].token, i - 1,
                     w->n[w->terms[i - 1].node].id, w->terms[i - 1].token);
}

static int stored_transitions(world *w)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, w->store), 0);
    int t = r.leader_transitions;
    kle_record_dispose(&r);
    return t;
}

static const char *stored_holder(world *w, char *buf, size_t size)
{
    kle_record r = KLE_RECORD_INIT;
    if (kle_fake_store_peek(&r, NULL, w->store) < 0) {
        snprintf(buf, size, "(none)");
    } else {
        snprintf(buf, size, "%s", kle_record_holder(&r));
        kle_record_dispose(&r);
    }
    return buf;
}

static void put_record(world *w, const char *holder, int seconds, int transitions, int64_t renew)
{
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_record_set_string(&r.holder_identity, holder), 0);
    r.lease_duration_seconds = seconds;
    r.leader_transitions = transitions;
    r.acquire_time_ns = renew;
    r.renew_time_ns = renew;
    assert_int_equal(kle_fake_store_put(w->store, &r), 0);
    kle_record_dispose(&r);
}

static int terms_of(world *w, int idx)
{
    int k = 0;
    for (int i = 0; i < w->n_terms; i++)
        k += w->terms[i].node == idx;
    return k;
}

/* Cuts @p n off from the server: every call fails, its watch goes silent. */
static void cut_off(node *n)
{
    kle_fake_lock_fail_next(n->lock, KLE_FAKE_UPDATE, 1000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(n->lock, KLE_FAKE_GET, 1000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(n->lock, KLE_FAKE_CREATE, 1000, KLE_ETRANSPORT);
    kle_fake_lock_fail_next(n->lock, KLE_FAKE_WATCH, 1000, KLE_ETRANSPORT);
    if (n->w->follow == KLE_FOLLOW_WATCH)
        kle_fake_lock_watch_fault(n->lock, KLE_FAKE_WATCH_SILENCE, 1);
}

/*
 * 1. A lost answer, then a byte-identical rewrite. The leader's fast-path
 * renewal lands but its answer is lost (the call times out after 5 s); the
 * slow path reads the lock slowly and writes the record again. With the
 * record's renewTime taken once for the whole try, the rewrite is the same
 * bytes as the landed write, only a new resourceVersion: a follower that
 * saw those bytes when the first write landed counts the rewrite as a touch
 * (credited at most 1 s after the record changed), while the leader dates
 * its deadline from the later send. Then the leader is cut off. At
 * 15 s / 10 s / 2 s: the leader's renewal at 6 s lands, the answer is lost
 * at 11 s, the read takes until 13.9 s, the rewrite is answered at once.
 */
static void lost_answer_rewrite(world *w, uint64_t seed)
{
    node *a = start_node(w, 0, NULL, seed);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    start_node(w, 1, NULL, seed + 1);
    run_until(w, 5500 * MS);
    /* The renewal at 6 s lands and its answer is lost after the 5 s call timeout. */
    kle_fake_lock_delay_next(a->lock, KLE_FAKE_UPDATE, 1, 6 * SEC);
    /* The slow path's read is slow, but answered before the deadline (16 s). */
    kle_fake_lock_delay_next(a->lock, KLE_FAKE_GET, 1, 2900 * MS);
    run_until(w, 14 * SEC);
    /* Cut off from here on. */
    cut_off(a);
    run_until(w, 45 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 0) >= 1);
    assert_true(terms_of(w, 1) >= 1); /* The follower took over in the end. */
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

static void test_safety__lost_answer_rewrite_watch(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    lost_answer_rewrite(w, 7);
}

/* In poll mode the follower's view depends on when it polls: several seeds. */
static void test_safety__lost_answer_rewrite_poll(void **state)
{
    for (uint64_t seed = 1; seed <= 12; seed++) {
        world *w = *state;
        w->follow = KLE_FOLLOW_POLL;
        lost_answer_rewrite(w, seed * 7919);
        teardown(state);
        setup(state);
    }
}

/*
 * 2. The lock deleted under a leader (kubectl delete lease, or a server
 * that lost its state). A follower that has seen the live lease must not
 * create the object before that lease has expired by its own observation.
 */
static void deleted_under_leader(world *w)
{
    start_node(w, 0, NULL, 11);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    start_node(w, 1, NULL, 12);
    run_until(w, 9 * SEC); /* The follower has seen the lease. */
    node *a = &w->n[0];
    /* The leader is cut off, then the object deleted. */
    cut_off(a);
    assert_int_equal(kle_fake_store_put(w->store, NULL), 0);
    run_until(w, 45 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 1) >= 1);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

static void test_safety__deleted_under_poll_leader(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    deleted_under_leader(w);
}

static void test_safety__deleted_under_watch_leader(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    deleted_under_leader(w);
}

/*
 * 2b. A leader whose read shows another holder ends its term at once, not
 * at its renew deadline: the record is edited by hand to name someone else
 * (a forced takeover). Poll mode: the leader learns it from its renewal.
 */
static void test_safety__leader_reading_another_holder_steps_down(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    node *a = start_node(w, 0, NULL, 21);
    a->once = 1;
    assert_true(run_until_leads(w, 0, 1 * SEC));
    run_until(w, 4500 * MS); /* Renewed at 2 s and 4 s: the deadline is 14 s. */
    put_record(w, "intruder", 15, 9, kle_clock_wall_ns(w->clock));
    run_until(w, 30 * SEC);
    stop_all(w);
    assert_int_equal(w->n_terms, 1);
    /* The renewal at 6 s finds the intruder: the term ends then, not at 14 s. */
    assert_true(w->terms[0].end <= 6 * SEC + 100 * MS);
    assert_int_equal(a->last_rc, KLE_ECONFLICT);
}

/*
 * 2c (D5). A poll leader whose lock is deleted ends its term when its
 * renewal finds it gone, not at its deadline: whoever created the lock
 * meanwhile (and saw it deleted again) may lead once its quarantine is
 * over, unseen by this leader. It leads again only through a create
 * under R7: the work of that term starts a renew deadline after the
 * create was sent.
 */
static void test_safety__leader_whose_lock_is_deleted_steps_down(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    start_node(w, 0, NULL, 23);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    run_until(w, 4500 * MS); /* Renewed at 2 s and 4 s: the deadline is 14 s. */
    assert_int_equal(kle_fake_store_put(w->store, NULL), 0);
    run_until(w, 40 * SEC);
    stop_all(w);
    assert_true(w->n_terms >= 2);
    /* The renewal at 6 s finds the lock gone: the term ends then. */
    assert_true(w->terms[0].end >= 0 && w->terms[0].end <= 6 * SEC + 100 * MS);
    /* Its create at about 6 s wins; the work waits out a renew deadline. */
    assert_int_equal(w->terms[1].node, 0);
    assert_true(w->terms[1].start >= 16 * SEC);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

/*
 * 5. Fencing tokens never go back when the lock is re-created. A follower
 * that creates the lock after a deletion writes the highest token it saw
 * + 1; so does a leader re-creating its own lock; and a takeover of a lock
 * that someone re-created with a lower token.
 */
static void test_safety__tokens_survive_recreation(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    put_record(w, "", 1, 3, kle_clock_wall_ns(w->clock)); /* Released. */
    start_node(w, 0, NULL, 31);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    assert_int_equal(stored_transitions(w), 4);
    start_node(w, 1, NULL, 32);
    run_until(w, 9 * SEC);
    /* Deleted under the leader, which re-creates it at its next renewal. */
    assert_int_equal(kle_fake_store_put(w->store, NULL), 0);
    run_until(w, 13 * SEC);
    char h[64];
    assert_string_equal(stored_holder(w, h, sizeof(h)), "node-0");
    assert_true(stored_transitions(w) >= 5);
    int before = stored_transitions(w);
    /* Deleted again, the leader cut off: the follower creates it. */
    node *a = &w->n[0];
    cut_off(a);
    assert_int_equal(kle_fake_store_put(w->store, NULL), 0);
    run_until(w, 45 * SEC);
    assert_string_equal(stored_holder(w, h, sizeof(h)), "node-1");
    assert_true(stored_transitions(w) > before);
    stop_all(w);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

static void test_safety__takeover_after_recreation_with_a_lower_token(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    put_record(w, "", 1, 40, kle_clock_wall_ns(w->clock)); /* Released. */
    node *a = start_node(w, 0, NULL, 41);
    a->once = 1;
    assert_true(run_until_leads(w, 0, 1 * SEC));
    assert_int_equal(stored_transitions(w), 41);
    start_node(w, 1, NULL, 42); /* Sees token 41. */
    run_until(w, 1 * SEC);
    /* The leader is cut off; someone re-creates the object as a fresh lock
     * (client-go writes 0) and is gone. */
    cut_off(a);
    run_until(w, 1500 * MS);
    assert_int_equal(kle_fake_store_put(w->store, NULL), 0);
    put_record(w, "newcomer", 15, 0, kle_clock_wall_ns(w->clock));
    /* The next taker goes on from the highest token it has seen. */
    run_until(w, 60 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 1) >= 1);
    assert_true(w->terms[w->n_terms - 1].token > 41);
    assert_no_overlap(w);
}

/*
 * 6. leaderTransitions at the maximum: the takeover saturates (no signed
 * overflow, no record the lock refuses), so the lock stays usable; fencing
 * by token ends there.
 */
static void transitions_at_the_maximum(world *w)
{
    put_record(w, "", 1, INT32_TOP, kle_clock_wall_ns(w->clock)); /* Released. */
    node *a = start_node(w, 0, NULL, 51);
    assert_true(run_until_leads(w, 0, 5 * SEC));
    assert_int_equal(stored_transitions(w), INT32_TOP);
    start_node(w, 1, NULL, 52);
    run_until(w, 5 * SEC);
    /* The leader is cut off: the follower takes over at the maximum too. */
    cut_off(a);
    run_until(w, 40 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 1) >= 1);
    assert_int_equal(stored_transitions(w), INT32_TOP);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

static void test_safety__transitions_at_the_maximum_poll(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    transitions_at_the_maximum(w);
}

static void test_safety__transitions_at_the_maximum_watch(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    transitions_at_the_maximum(w);
}

/*
 * Two replicas with the same identity: the second sees a live record under
 * its own identity that it did not write. It must not lead beside the
 * first; it refuses to lead under that identity (kle_elector_run returns
 * KLE_EIDENTITY) once the record shows another replica renewing it.
 */
static void shared_identity(world *w)
{
    node *a = start_node(w, 0, "same", 61);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    node *b = start_node(w, 1, "same", 62);
    b->once = 1;
    run_until(w, 40 * SEC);
    assert_int_equal(terms_of(w, 1), 0);
    assert_true(kle_elector_is_leader(a->e));
    assert_int_equal(b->runs, 1);
    assert_int_equal(b->last_rc, KLE_EIDENTITY);
    stop_all(w);
    assert_no_overlap(w);
}

static void test_safety__shared_identity_poll(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    shared_identity(w);
}

static void test_safety__shared_identity_watch(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    shared_identity(w);
}

/*
 * A replica restarted under the same identity after a crash (a pod name
 * that survives a container restart): the record under its identity is not
 * renewed by anyone, so it takes the lock once that record has expired by
 * its own observation, not at once.
 */
static void test_safety__restart_under_the_same_identity_waits_for_expiry(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    put_record(w, "same", 15, 5, kle_clock_wall_ns(w->clock));
    node *b = start_node(w, 1, "same", 71);
    (void)b;
    run_until(w, 40 * SEC);
    stop_all(w);
    assert_int_equal(terms_of(w, 1), 1);
    assert_true(w->terms[0].start >= 15 * SEC);
    assert_int_equal(w->terms[0].token, 6);
}

/*
 * A holder emptied by hand (kubectl edit, holder ""), the lease duration
 * left as it was: not a release (a release writes a 1 s lease after the
 * holder's work has ended), so nobody takes it before it expires by their
 * own observation, while the leader, a poller, learns of it only at its
 * next renewal.
 */
static void test_safety__hand_emptied_holder_is_not_a_release(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    node *a = start_node(w, 0, NULL, 91);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    w->follow = KLE_FOLLOW_WATCH; /* The follower watches: it sees the edit at once. */
    start_node(w, 1, NULL, 92);
    run_until(w, 4500 * MS);
    kle_record r = KLE_RECORD_INIT;
    assert_int_equal(kle_fake_store_peek(&r, NULL, w->store), 0);
    assert_int_equal(kle_record_set_holder(&r, "", 0), 0);
    assert_int_equal(kle_fake_store_put(w->store, &r), 0);
    kle_record_dispose(&r);
    run_until(w, 40 * SEC);
    stop_all(w);
    (void)a;
    assert_true(terms_of(w, 1) + terms_of(w, 0) >= 2);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

/*
 * 1b. The same bytes written again later by the wall clock stepping back:
 * annotation records carry whole seconds, so after a step back of one
 * retry period a renewal repeats the previous renewal's bytes. A follower
 * credits that as a touch (at most 1 s after the bytes first changed); the
 * leader's term must be dated from the first send of those bytes. At
 * 4 s / 3.5 s / 2 s the margin (0.5 s) is less than the touch credit.
 */
static void test_safety__wall_step_back_repeats_bytes(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    w->ld = 4 * SEC, w->rd = 3500 * MS, w->rp = 2 * SEC;
    assert_int_equal(kle_fake_store_set_whole_seconds(w->store, 1), 0);
    node *a = start_node(w, 0, NULL, 101);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    start_node(w, 1, NULL, 102);
    run_until(w, 4100 * MS); /* Renewed at 2 s and 4 s. */
    /* The wall clock steps back 2 s: the renewal at 6 s writes the bytes of 4 s. */
    assert_int_equal(kle_fake_clock_step_wall(w->clock, -2 * SEC), 0);
    run_until(w, 6100 * MS);
    cut_off(a);
    run_until(w, 20 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 1) >= 1);
    assert_no_overlap(w);
}

/*
 * A server that loses its state, twice: resourceVersions start again, so
 * the leader's renewals after the first loss carry resourceVersions the
 * follower's stream showed before, with other bytes. They are renewals,
 * not stale re-deliveries: a follower that ignored them would date the
 * lease from its last look before the loss, and after the second loss
 * (the leader cut off) create the lock while the leader still works.
 */
static void test_safety__server_loses_state_twice(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_WATCH;
    node *a = start_node(w, 0, NULL, 111);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    start_node(w, 1, NULL, 112);
    run_until(w, 15 * SEC); /* Seven renewals: resourceVersions 1..8 seen. */
    assert_int_equal(kle_fake_store_lose_state(w->store, 2), 0);
    run_until(w, 22100 * MS); /* The leader re-created it and renews: 2, 3, 4, ... */
    cut_off(a);
    assert_int_equal(kle_fake_store_lose_state(w->store, 2), 0);
    run_until(w, 60 * SEC);
    stop_all(w);
    assert_true(terms_of(w, 1) >= 1);
    assert_no_overlap(w);
    assert_tokens_increase(w);
}

/* kle_elector_check_ns at the limits: saturating, no overflow. */
static void test_safety__check_at_the_limits(void **state)
{
    world *w = *state;
    w->follow = KLE_FOLLOW_POLL;
    node *a = start_node(w, 0, NULL, 81);
    assert_true(run_until_leads(w, 0, 1 * SEC));
    assert_int_equal(kle_elector_check_ns(a->e, INT64_MAX), 0);
    assert_int_equal(kle_elector_check_ns(a->e, 0), 0);
    assert_int_equal(kle_elector_check_ns(a->e, INT64_MIN), KLE_EUNHEALTHY);
    stop_all(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_safety__lost_answer_rewrite_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__lost_answer_rewrite_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__deleted_under_poll_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__deleted_under_watch_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__leader_whose_lock_is_deleted_steps_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_safety__leader_reading_another_holder_steps_down,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__tokens_survive_recreation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__takeover_after_recreation_with_a_lower_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__transitions_at_the_maximum_poll, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_safety__transitions_at_the_maximum_watch, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_safety__shared_identity_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__shared_identity_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_safety__restart_under_the_same_identity_waits_for_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__hand_emptied_holder_is_not_a_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_safety__wall_step_back_repeats_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__server_loses_state_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_safety__check_at_the_limits, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
