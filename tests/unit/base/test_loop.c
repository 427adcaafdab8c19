/* The event loop: timer order, handlers that re-arm and disarm, posts from
 * other threads, a wake from a signal handler, descriptors, dispatch
 * timeouts, the fake clock's virtual time, and deadlines that a stopped
 * process does not push later. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kle/errors.h"
#include "kle/sys/loop.h"
#include "kle/testing.h"

/* ---- helpers ------------------------------------------------------------- */

#define MAXLOG 2048

typedef struct trace {
    int order[MAXLOG];
    int n;
} trace;

typedef struct tagged_timer {
    kle_loop_timer t;
    trace *log;
    int id;
    /* What the handler does besides logging. */
    kle_loop_timer *disarm;
    int rearm_at_now;
    int64_t rearm_ns;
} tagged_timer;

static void on_timer(kle_loop *loop, kle_loop_timer *t, void *data)
{
    tagged_timer *tt = data;
    assert_ptr_equal(&tt->t, t);
    assert_int_equal(t->slot, 0); /* not armed while it runs */
    if (tt->log->n < MAXLOG)
        tt->log->order[tt->log->n++] = tt->id;
    if (tt->disarm)
        kle_loop_timer_disarm(loop, tt->disarm);
    if (tt->rearm_at_now) {
        tt->rearm_at_now--;
        kle_loop_timer_arm(loop, t, kle_clock_monotonic_ns(kle_loop_clock(loop)), on_timer, tt);
    }
    if (tt->rearm_ns) {
        int64_t at = kle_clock_monotonic_ns(kle_loop_clock(loop)) + tt->rearm_ns;
        tt->rearm_ns = 0;
        kle_loop_timer_arm(loop, t, at, on_timer, tt);
    }
}

static kle_clock *manual_clock(void)
{
    kle_clock *c = NULL;
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    assert_int_equal(kle_fake_clock_new(&c, &o), 0);
    return c;
}

static int64_t boot_ns(void)
{
    return kle_clock_monotonic_ns(kle_clock_real());
}

/* ---- timers -------------------------------------------------------------- */

static void test_loop__timers_run_by_due_time_then_arming_order(void **state)
{
    kle_clock *clock = manual_clock();
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    trace log = {{0}, 0};
    tagged_timer t[6];
    memset(t, 0, sizeof(t));
    int64_t now = kle_clock_monotonic_ns(clock);
    /* due at +2, +1, +1, +2, +3, +1 (ms), armed in this order */
    int64_t at[6] = {2, 1, 1, 2, 3, 1};
    for (int i = 0; i < 6; i++) {
        t[i].log = &log;
        t[i].id = i;
        assert_int_equal(
            kle_loop_timer_arm(loop, &t[i].t, now + at[i] * KLE_NS_PER_MS, on_timer, &t[i]), 0);
    }
    assert_int_equal(kle_loop_next_timer_ns(loop), now + KLE_NS_PER_MS);
    /* Nothing is due yet. */
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    /* Re-arming a timer moves it to the end of its tie. */
    assert_int_equal(kle_loop_timer_arm(loop, &t[1].t, now + KLE_NS_PER_MS, on_timer, &t[1]), 0);
    assert_int_equal(kle_fake_clock_advance(clock, 2 * KLE_NS_PER_MS), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 5);
    int want[] = {2, 5, 1, 0, 3};
    assert_int_equal(log.n, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(log.order[i], want[i]);
    assert_int_equal(kle_loop_next_timer_ns(loop), now + 3 * KLE_NS_PER_MS);
    kle_loop_timer_disarm(loop, &t[4].t);
    assert_int_equal(kle_loop_next_timer_ns(loop), INT64_MAX);
    assert_int_equal(kle_fake_clock_advance(clock, 5 * KLE_NS_PER_MS), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    kle_loop_free(loop);
    kle_clock_free(clock);
}

static void test_loop__handlers_rearm_and_disarm(void **state)
{
    kle_clock *clock = manual_clock();
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    trace log = {{0}, 0};
    tagged_timer a, b, c, d;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    memset(&d, 0, sizeof(d));
    a.log = b.log = c.log = d.log = &log;
    a.id = 1;
    b.id = 2;
    c.id = 3;
    d.id = 4;
    int64_t now = kle_clock_monotonic_ns(clock);
    /* a disarms b, due at the same time after it: b never runs. a re-arms
     * itself at "now" twice: each time it runs at the next dispatch, not
     * in the one that ran it. c re-arms itself 5 ms later. */
    a.disarm = &b.t;
    a.rearm_at_now = 2;
    c.rearm_ns = 5 * KLE_NS_PER_MS;
    assert_int_equal(kle_loop_timer_arm(loop, &a.t, now, on_timer, &a), 0);
    assert_int_equal(kle_loop_timer_arm(loop, &b.t, now, on_timer, &b), 0);
    assert_int_equal(kle_loop_timer_arm(loop, &c.t, now, on_timer, &c), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 2); /* a, c */
    assert_int_equal(b.t.slot, 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1); /* a again */
    assert_int_equal(kle_loop_dispatch(loop, 0), 1); /* and once more */
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    int want[] = {1, 3, 1, 1};
    assert_int_equal(log.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(log.order[i], want[i]);
    /* A handler that disarms a timer due later in the same batch, and one
     * that re-arms a timer of the same batch for later. */
    d.disarm = &c.t;
    assert_int_equal(kle_loop_timer_arm(loop, &d.t, now + KLE_NS_PER_MS, on_timer, &d), 0);
    assert_int_equal(kle_fake_clock_advance(clock, 10 * KLE_NS_PER_MS), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1); /* d ran, c (due at +5) was disarmed */
    assert_int_equal(log.order[log.n - 1], 4);
    assert_int_equal(kle_loop_next_timer_ns(loop), INT64_MAX);
    kle_loop_free(loop);
    kle_clock_free(clock);
}

/* Random due times, re-arms and disarms against a sorted model. */
static void test_loop__heap_order_matches_a_model(void **state)
{
    kle_clock *clock = manual_clock();
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    enum { N = 500 };
    static tagged_timer t[N];
    int64_t due[N] = {0};
    uint64_t seq[N] = {0}, next_seq = 0;
    int armed[N] = {0};
    trace log = {{0}, 0};
    memset(t, 0, sizeof(t));
    unsigned r = 12345;
    int64_t base = kle_clock_monotonic_ns(clock);
    for (int round = 0; round < 4 * N; round++) {
        r = r * 1103515245u + 12345u;
        int i = (int)((r >> 8) % N);
        r = r * 1103515245u + 12345u;
        if ((r >> 8) % 5 == 0) {
            kle_loop_timer_disarm(loop, &t[i].t);
            armed[i] = 0;
        } else {
            t[i].log = &log;
            t[i].id = i;
            due[i] = base + (int64_t)((r >> 12) % 50);
            seq[i] = next_seq++;
            armed[i] = 1;
            assert_int_equal(kle_loop_timer_arm(loop, &t[i].t, due[i], on_timer, &t[i]), 0);
        }
    }
    int want[N], n = 0;
    for (int i = 0; i < N; i++)
        if (armed[i])
            want[n++] = i;
    /* insertion sort of the model by (due, seq) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            int a = want[j - 1], b = want[j];
            if (due[a] < due[b] || (due[a] == due[b] && seq[a] < seq[b]))
                break;
            want[j - 1] = b;
            want[j] = a;
        }
    assert_int_equal(kle_fake_clock_advance(clock, 100), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), n);
    assert_int_equal(log.n, n);
    for (int i = 0; i < n; i++)
        assert_int_equal(log.order[i], want[i]);
    kle_loop_free(loop);
    kle_clock_free(clock);
}

/* ---- posts and wake ------------------------------------------------------ */

enum { POSTERS = 4, POSTS = 200 };

typedef struct poster {
    kle_loop *loop;
    kle_loop_post posts[POSTS];
    int ran[POSTS];
} poster;

static void on_post(kle_loop *loop, kle_loop_post *p, void *data)
{
    /* Out of the queue when it runs; its poster may already have posted it
     * again (then it runs once more, below), so p->queued is not read here:
     * from now on its members are the posting thread's. */
    (void)p;
    (*(int *)data)++;
}

/* For posts from the loop's own thread: out of the queue when it runs. */
static void on_post_alone(kle_loop *loop, kle_loop_post *p, void *data)
{
    (*(int *)data)++;
    assert_int_equal(p->queued, 0);
}

static void *post_all(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < POSTS; i++) {
        assert_int_equal(kle_loop_post_work(p->loop, &p->posts[i], on_post, &p->ran[i]), 0);
        /* A post that is still queued is not queued twice. */
        kle_loop_post_work(p->loop, &p->posts[i], on_post, &p->ran[i]);
    }
    return NULL;
}

static int all_ran(poster *ps)
{
    for (int k = 0; k < POSTERS; k++)
        for (int i = 0; i < POSTS; i++)
            if (ps[k].ran[i] == 0)
                return 0;
    return 1;
}

static void posts_from_threads(kle_clock *clock)
{
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    static poster ps[POSTERS];
    memset(ps, 0, sizeof(ps));
    pthread_t th[POSTERS];
    for (int k = 0; k < POSTERS; k++) {
        ps[k].loop = loop;
        assert_int_equal(pthread_create(&th[k], NULL, post_all, &ps[k]), 0);
    }
    int64_t give_up = boot_ns() + 30 * KLE_NS_PER_SEC;
    while (!all_ran(ps) && boot_ns() < give_up)
        assert_true(kle_loop_dispatch(loop, 100 * KLE_NS_PER_MS) >= 0);
    for (int k = 0; k < POSTERS; k++)
        pthread_join(th[k], NULL);
    kle_loop_dispatch(loop, 0);
    for (int k = 0; k < POSTERS; k++)
        for (int i = 0; i < POSTS; i++)
            assert_true(ps[k].ran[i] == 1 || ps[k].ran[i] == 2);
    /* Each post ran once per time it was queued: at most twice when its
     * second post came after the first had run. */
    kle_loop_free(loop);
}

static void test_loop__posts_from_other_threads(void **state)
{
    posts_from_threads(NULL);
}

static void test_loop__a_cancelled_post_does_not_run(void **state)
{
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, NULL), 0);
    kle_loop_post a, b, c;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&c, 0, sizeof(c));
    int ran_a = 0, ran_b = 0, ran_c = 0;
    assert_int_equal(kle_loop_post_work(loop, &a, on_post_alone, &ran_a), 0);
    assert_int_equal(kle_loop_post_work(loop, &b, on_post_alone, &ran_b), 0);
    assert_int_equal(kle_loop_post_work(loop, &c, on_post_alone, &ran_c), 0);
    /* The middle one, the last one; then one that is not queued. */
    kle_loop_post_cancel(loop, &b);
    assert_int_equal(b.queued, 0);
    kle_loop_post_cancel(loop, &c);
    kle_loop_post_cancel(loop, &c);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    assert_int_equal(ran_a, 1);
    assert_int_equal(ran_b + ran_c, 0);
    /* The queue still works after cancels at its tail. */
    assert_int_equal(kle_loop_post_work(loop, &c, on_post_alone, &ran_c), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    assert_int_equal(ran_c, 1);
    kle_loop_free(loop);
}

static void test_loop__posts_from_other_threads_on_a_fake_clock(void **state)
{
    kle_clock *clock = manual_clock();
    posts_from_threads(clock);
    kle_clock_free(clock);
}

static kle_loop *signal_loop;

static void on_usr1(int sig)
{
    (void)sig;
    kle_loop_wake(signal_loop);
}

static void *raise_usr1(void *arg)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    kle_clock_sleep(NULL, 50 * KLE_NS_PER_MS);
    pthread_kill(pthread_self(), SIGUSR1);
    return NULL;
}

static void test_loop__wake_from_a_signal_handler(void **state)
{
    assert_int_equal(kle_loop_new(&signal_loop, NULL), 0);
    assert_true(kle_loop_fd(signal_loop) >= 0);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, &old);
    /* The signal is handled on another thread: only the wake (a write to
     * the loop's eventfd from the handler) can end this dispatch early. */
    sigset_t s, olds;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &s, &olds);
    pthread_t t;
    int64_t start = boot_ns();
    assert_int_equal(pthread_create(&t, NULL, raise_usr1, NULL), 0);
    assert_int_equal(kle_loop_dispatch(signal_loop, 20 * KLE_NS_PER_SEC), 0);
    int64_t took = boot_ns() - start;
    pthread_join(t, NULL);
    assert_true(took >= 40 * KLE_NS_PER_MS);
    assert_true(took < 10 * KLE_NS_PER_SEC);
    pthread_sigmask(SIG_SETMASK, &olds, NULL);
    sigaction(SIGUSR1, &old, NULL);
    kle_loop_free(signal_loop);
}

/* ---- descriptors --------------------------------------------------------- */

typedef struct fd_seen {
    int calls;
    unsigned events;
    int fd;
    kle_loop *loop;
    int remove_fd; /* removed by the handler, -1: none */
} fd_seen;

static void on_fd(kle_loop *loop, int fd, unsigned events, void *data)
{
    fd_seen *s = data;
    s->calls++;
    s->events = events;
    s->fd = fd;
    if (s->remove_fd >= 0)
        assert_int_equal(kle_loop_watch_fd(loop, s->remove_fd, 0, NULL, NULL), 0);
}

static void test_loop__descriptors_with_pipes(void **state)
{
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, NULL), 0);
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    fd_seen s = {0, 0, -1, loop, -1};
    assert_int_equal(kle_loop_watch_fd(loop, p[0], KLE_LOOP_IN, on_fd, &s), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(kle_loop_dispatch(loop, 5 * KLE_NS_PER_SEC), 1);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.fd, p[0]);
    assert_int_equal(s.events, KLE_LOOP_IN);
    /* Level-triggered: still readable until read. */
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    /* The write end is writable; then the read end sees the hang-up. */
    fd_seen w = {0, 0, -1, loop, -1};
    assert_int_equal(kle_loop_watch_fd(loop, p[1], KLE_LOOP_OUT, on_fd, &w), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    assert_int_equal(w.events, KLE_LOOP_OUT);
    assert_int_equal(kle_loop_watch_fd(loop, p[1], 0, NULL, NULL), 0);
    close(p[1]);
    s.calls = 0;
    assert_int_equal(kle_loop_dispatch(loop, 5 * KLE_NS_PER_SEC), 1);
    assert_true(s.events & KLE_LOOP_ERR);
    assert_int_equal(kle_loop_watch_fd(loop, p[0], 0, NULL, NULL), 0);
    close(p[0]);
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);

    /* Two readable pipes whose handlers remove the other one: whichever
     * runs first, the other's event of the same batch is dropped. */
    int a[2], b[2];
    assert_int_equal(pipe2(a, O_CLOEXEC | O_NONBLOCK), 0);
    assert_int_equal(pipe2(b, O_CLOEXEC | O_NONBLOCK), 0);
    fd_seen sa = {0, 0, -1, loop, b[0]}, sb = {0, 0, -1, loop, a[0]};
    assert_int_equal(kle_loop_watch_fd(loop, a[0], KLE_LOOP_IN, on_fd, &sa), 0);
    assert_int_equal(kle_loop_watch_fd(loop, b[0], KLE_LOOP_IN, on_fd, &sb), 0);
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(kle_loop_dispatch(loop, 5 * KLE_NS_PER_SEC), 1);
    assert_int_equal(sa.calls + sb.calls, 1);
    /* The survivor is still watched; the removed one is not. */
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    assert_int_equal(sa.calls + sb.calls, 2);
    assert_true(sa.calls == 2 || sb.calls == 2);
    kle_loop_watch_fd(loop, a[0], 0, NULL, NULL);
    kle_loop_watch_fd(loop, b[0], 0, NULL, NULL);
    /* Watching a descriptor that was closed without being removed, after
     * its number was reused, works. */
    assert_int_equal(kle_loop_watch_fd(loop, a[1], KLE_LOOP_OUT, on_fd, &sa), 0);
    int num = a[1];
    close(a[1]);
    int again = dup(b[1]);
    if (again == num) {
        sa.calls = 0;
        sa.remove_fd = -1;
        assert_int_equal(kle_loop_watch_fd(loop, again, KLE_LOOP_OUT, on_fd, &sa), 0);
        assert_int_equal(kle_loop_dispatch(loop, 0), 1);
        assert_int_equal(sa.calls, 1);
    }
    kle_loop_watch_fd(loop, num, 0, NULL, NULL);
    close(again);
    close(a[0]);
    close(b[0]);
    close(b[1]);
    /* Bad arguments. */
    assert_int_equal(kle_loop_watch_fd(loop, -1, KLE_LOOP_IN, on_fd, &s), KLE_EINVAL);
    assert_int_equal(kle_loop_watch_fd(loop, 0, KLE_LOOP_IN, NULL, NULL), KLE_EINVAL);
    assert_int_equal(kle_loop_watch_fd(loop, 0, 8, on_fd, &s), KLE_EINVAL);
    kle_loop_free(loop);
}

/* ---- dispatch timeouts --------------------------------------------------- */

static void test_loop__dispatch_waits_at_most_its_timeout(void **state)
{
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, NULL), 0);
    int64_t start = boot_ns();
    assert_int_equal(kle_loop_dispatch(loop, 0), 0);
    assert_int_equal(kle_loop_dispatch(loop, 30 * KLE_NS_PER_MS), 0);
    assert_true(boot_ns() - start >= 30 * KLE_NS_PER_MS);
    /* A timer ends an unbounded wait at its due time. */
    trace log = {{0}, 0};
    tagged_timer t;
    memset(&t, 0, sizeof(t));
    t.log = &log;
    start = boot_ns();
    assert_int_equal(kle_loop_timer_arm(loop, &t.t, start + 40 * KLE_NS_PER_MS, on_timer, &t), 0);
    int ran = 0;
    while (!ran)
        ran = kle_loop_dispatch(loop, -1);
    assert_int_equal(ran, 1);
    assert_true(boot_ns() >= start + 40 * KLE_NS_PER_MS);
    /* A timer later than the timeout does not hold the dispatch. */
    assert_int_equal(kle_loop_timer_arm(loop, &t.t, boot_ns() + 60 * KLE_NS_PER_SEC, on_timer, &t),
                     0);
    start = boot_ns();
    assert_int_equal(kle_loop_dispatch(loop, 20 * KLE_NS_PER_MS), 0);
    assert_true(boot_ns() - start < 30 * KLE_NS_PER_SEC);
    /* The loop's descriptor is readable when a timer is due. */
    assert_int_equal(kle_loop_timer_arm(loop, &t.t, boot_ns(), on_timer, &t), 0);
    assert_int_equal(kle_loop_dispatch(loop, 0), 1);
    kle_loop_free(loop);
}

/* ---- the fake clock ------------------------------------------------------ */

static void *post_later(void *arg)
{
    static kle_loop_post p;
    static int ran;
    kle_loop *loop = arg;
    kle_clock_sleep(NULL, 20 * KLE_NS_PER_MS);
    kle_loop_post_work(loop, &p, on_post_alone, &ran);
    return NULL;
}

static void test_loop__fake_clock_virtual_time(void **state)
{
    kle_clock *clock = NULL;
    kle_fake_clock_opts o = KLE_FAKE_CLOCK_OPTS_INIT;
    o.auto_advance = 1;
    assert_int_equal(kle_fake_clock_new(&clock, &o), 0);
    assert_int_equal(kle_fake_clock_join(clock), 0);
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    assert_ptr_equal(kle_loop_clock(loop), clock);
    assert_int_equal(kle_loop_fd(loop), -1);
    assert_int_equal(kle_loop_watch_fd(loop, 0, KLE_LOOP_IN, on_fd, NULL), KLE_ESTATE);
    trace log = {{0}, 0};
    tagged_timer t;
    memset(&t, 0, sizeof(t));
    t.log = &log;
    int64_t start = kle_clock_monotonic_ns(clock), real = boot_ns();
    /* An hour of virtual time passes at once. */
    assert_int_equal(kle_loop_timer_arm(loop, &t.t, start + 3600 * KLE_NS_PER_SEC, on_timer, &t),
                     0);
    assert_int_equal(kle_loop_dispatch(loop, -1), 1);
    assert_int_equal(kle_clock_monotonic_ns(clock), start + 3600 * KLE_NS_PER_SEC);
    /* A dispatch timeout is virtual time too. */
    assert_int_equal(kle_loop_dispatch(loop, 5 * KLE_NS_PER_SEC), 0);
    assert_int_equal(kle_clock_monotonic_ns(clock), start + 3605 * KLE_NS_PER_SEC);
    assert_true(boot_ns() - real < 5 * KLE_NS_PER_SEC);
    kle_loop_free(loop);
    kle_fake_clock_leave(clock);
    kle_clock_free(clock);

    /* On a manual clock a dispatch with nothing due waits for a post. */
    clock = manual_clock();
    assert_int_equal(kle_loop_new(&loop, clock), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_later, loop), 0);
    int ran = 0;
    for (int i = 0; i < 100 && !ran; i++)
        ran = kle_loop_dispatch(loop, -1);
    assert_int_equal(ran, 1);
    pthread_join(th, NULL);
    kle_loop_free(loop);
    kle_clock_free(clock);
}

/* ---- absolute deadlines -------------------------------------------------- */

static void on_fire(kle_loop *loop, kle_loop_timer *t, void *data)
{
    *(int64_t *)data = boot_ns();
}

/*
 * A child arms a timer 800 ms ahead, is stopped after 100 ms and continued
 * at 1.3 s: the timer fires at once when the child runs again (its deadline
 * passed while it was stopped), not 800 ms after the continue as a relative
 * wait restarted after the stop would.
 */
static void test_loop__a_stopped_process_fires_timers_at_their_deadline(void **state)
{
    int up[2];
    assert_int_equal(pipe(up), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        kle_loop *loop = NULL;
        if (kle_loop_new(&loop, NULL) != 0)
            _exit(2);
        kle_loop_timer t = KLE_LOOP_TIMER_INIT;
        int64_t fired = 0, at = boot_ns() + 800 * KLE_NS_PER_MS;
        kle_loop_timer_arm(loop, &t, at, on_fire, &fired);
        int64_t msg[2] = {at, 0};
        if (write(up[1], msg, sizeof(msg)) != sizeof(msg))
            _exit(3);
        while (!fired)
            kle_loop_dispatch(loop, -1);
        msg[1] = fired;
        if (write(up[1], msg, sizeof(msg)) != sizeof(msg))
            _exit(3);
        kle_loop_free(loop);
        _exit(0);
    }
    int64_t msg[2];
    assert_int_equal(read(up[0], msg, sizeof(msg)), sizeof(msg));
    int64_t at = msg[0];
    kle_clock_sleep(NULL, 100 * KLE_NS_PER_MS);
    kill(pid, SIGSTOP);
    int st;
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    assert_true(WIFSTOPPED(st));
    kle_clock_wait(NULL, NULL, at + 500 * KLE_NS_PER_MS);
    int64_t cont = boot_ns();
    kill(pid, SIGCONT);
    assert_int_equal(read(up[0], msg, sizeof(msg)), sizeof(msg));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int64_t fired = msg[1];
    assert_true(fired >= at);
    assert_true(fired >= cont);
    if (fired - cont >= 500 * KLE_NS_PER_MS)
        fail_msg("the timer fired %lld ms after the continue, deadline %lld ms before it",
                 (long long)((fired - cont) / KLE_NS_PER_MS),
                 (long long)((cont - at) / KLE_NS_PER_MS));
    close(up[0]);
    close(up[1]);
}

static void test_loop__bad_arguments(void **state)
{
    assert_int_equal(kle_loop_new(NULL, NULL), KLE_EINVAL);
    kle_loop *loop = NULL;
    assert_int_equal(kle_loop_new(&loop, NULL), 0);
    kle_loop_timer t = KLE_LOOP_TIMER_INIT;
    kle_loop_post p;
    memset(&p, 0, sizeof(p));
    assert_int_equal(kle_loop_timer_arm(loop, &t, 0, NULL, NULL), KLE_EINVAL);
    assert_int_equal(kle_loop_post_work(loop, &p, NULL, NULL), KLE_EINVAL);
    assert_int_equal(kle_loop_dispatch(NULL, 0), KLE_EINVAL);
    kle_loop_timer_disarm(loop, &t); /* not armed: nothing happens */
    assert_ptr_equal(kle_loop_clock(loop), kle_clock_real());
    assert_int_equal(kle_loop_next_timer_ns(loop), INT64_MAX);
    kle_loop_wake(NULL);
    kle_loop_free(loop);
    kle_loop_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop__timers_run_by_due_time_then_arming_order),
        cmocka_unit_test(test_loop__handlers_rearm_and_disarm),
        cmocka_unit_test(test_loop__heap_order_matches_a_model),
        cmocka_unit_test(test_loop__posts_from_other_threads),
        cmocka_unit_test(test_loop__posts_from_other_threads_on_a_fake_clock),
        cmocka_unit_test(test_loop__a_cancelled_post_does_not_run),
        cmocka_unit_test(test_loop__wake_from_a_signal_handler),
        cmocka_unit_test(test_loop__descriptors_with_pipes),
        cmocka_unit_test(test_loop__dispatch_waits_at_most_its_timeout),
        cmocka_unit_test(test_loop__fake_clock_virtual_time),
        cmocka_unit_test(test_loop__a_stopped_process_fires_timers_at_their_deadline),
        cmocka_unit_test(test_loop__bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
