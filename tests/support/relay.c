/* Test support: a TCP fault relay; see relay.h. */
#include "support/relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 128
#define BUF_SIZE  65536

enum conn_state { C_FREE = 0, C_PASS, C_STUCK };

struct relay_conn {
    enum conn_state state;
    int fd[2];    /* 0: client side, 1: server side (-1 when black-holed) */
    char *buf[2]; /* buf[d]: bytes read from fd[d], to be written to fd[!d] */
    size_t len[2], off[2];
    int64_t ready_at[2]; /* when buf[d] may be passed on (latency) */
    int64_t accepted_ns;
    int64_t first_reply_ns;
};

struct kle_test_relay {
    pthread_t thread;
    pthread_mutex_t mu;
    int listen_fd, wake[2];
    unsigned port, target_port;
    int stop;
    kle_test_relay_mode mode;
    int latency_ms;
    int freeze_req, reset_req;
    long accepted, stuck_bytes;
    int64_t last_stuck_close;
    struct {
        int64_t accepted_ns, first_reply_ns;
    } replies[256]; /* first reply of each connection, newest last (a ring) */
    unsigned nreplies;
    struct relay_conn conns[MAX_CONNS];
};

int64_t kle_test_relay_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void wake(kle_test_relay *r)
{
    char b = 1;
    ssize_t w = write(r->wake[1], &b, 1);
    (void)w;
}

static void close_fd(int fd, int rst)
{
    if (fd < 0)
        return;
    if (rst) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(fd);
}

/* mu held. */
static void conn_close(kle_test_relay *r, struct relay_conn *c, int rst)
{
    if (c->state == C_STUCK)
        r->last_stuck_close = kle_test_relay_now_ns();
    close_fd(c->fd[0], rst);
    close_fd(c->fd[1], rst);
    free(c->buf[0]);
    free(c->buf[1]);
    memset(c, 0, sizeof(*c));
    c->fd[0] = c->fd[1] = -1;
}

static int connect_target(unsigned port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

/* mu held. */
static void on_accept(kle_test_relay *r)
{
    int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return;
    r->accepted++;
    struct relay_conn *c = NULL;
    for (int i = 0; i < MAX_CONNS && !c; i++)
        if (r->conns[i].state == C_FREE)
            c = &r->conns[i];
    if (!c || r->mode == KLE_RELAY_REFUSE) {
        close_fd(fd, 1);
        return;
    }
    memset(c, 0, sizeof(*c));
    c->fd[0] = fd;
    c->fd[1] = -1;
    c->accepted_ns = kle_test_relay_now_ns();
    if (r->mode == KLE_RELAY_BLACKHOLE) {
        c->state = C_STUCK;
        return;
    }
    c->fd[1] = connect_target(r->target_port);
    c->buf[0] = malloc(BUF_SIZE);
    c->buf[1] = malloc(BUF_SIZE);
    if (c->fd[1] < 0 || !c->buf[0] || !c->buf[1]) {
        c->state = C_PASS;
        conn_close(r, c, 1);
        return;
    }
    c->state = C_PASS;
}

static void *relay_main(void *arg)
{
    kle_test_relay *r = arg;
    struct pollfd pfd[2 + 2 * MAX_CONNS];
    int owner[2 + 2 * MAX_CONNS], side[2 + 2 * MAX_CONNS];
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        int64_t now = kle_test_relay_now_ns();
        if (r->freeze_req || r->reset_req) {
            for (int i = 0; i < MAX_CONNS; i++) {
                struct relay_conn *c = &r->conns[i];
                if (c->state == C_FREE)
                    continue;
                if (r->reset_req)
                    conn_close(r, c, 1);
                else if (c->state == C_PASS)
                    c->state = C_STUCK;
            }
            r->freeze_req = r->reset_req = 0;
        }
        int n = 0, timeout = 1000;
        pfd[n] = (struct pollfd){r->listen_fd, POLLIN, 0};
        owner[n++] = -1;
        pfd[n] = (struct pollfd){r->wake[0], POLLIN, 0};
        owner[n++] = -2;
        for (int i = 0; i < MAX_CONNS; i++) {
            struct relay_conn *c = &r->conns[i];
            if (c->state == C_FREE)
                continue;
            for (int s = 0; s < 2; s++) {
                if (c->fd[s] < 0)
                    continue;
                short ev = POLLRDHUP;
                if (c->state == C_STUCK) {
                    /* Only notice a close; read what the client sends to
                     * count it, as a dead network would swallow it. */
                    if (s == 0)
                        ev |= POLLIN;
                } else {
                    int d = s, o = !s; /* read fd[d] into buf[d]; write buf[o] to fd[s] */
                    if (c->len[d] == 0)
                        ev |= POLLIN;
                    if (c->len[o]) {
                        if (now >= c->ready_at[o])
                            ev |= POLLOUT;
                        else {
                            int64_t ms = (c->ready_at[o] - now) / 1000000 + 1;
                            if (ms < timeout)
                                timeout = (int)ms;
                        }
                    }
                }
                pfd[n] = (struct pollfd){c->fd[s], ev, 0};
                owner[n] = i;
                side[n++] = s;
            }
        }
        pthread_mutex_unlock(&r->mu);
        poll(pfd, (nfds_t)n, timeout);
        pthread_mutex_lock(&r->mu);
        now = kle_test_relay_now_ns();
        for (int k = 0; k < n; k++) {
            if (!pfd[k].revents)
                continue;
            if (owner[k] == -1) {
                on_accept(r);
                continue;
            }
            if (owner[k] == -2) {
                char b[64];
                ssize_t rd = read(r->wake[0], b, sizeof(b));
                (void)rd;
                continue;
            }
            struct relay_conn *c = &r->conns[owner[k]];
            int s = side[k];
            if (c->state == C_FREE || c->fd[s] != pfd[k].fd)
                continue;
            if (c->state == C_STUCK) {
                if (pfd[k].revents & POLLIN) {
                    char b[4096];
                    ssize_t rd = read(c->fd[s], b, sizeof(b));
                    if (rd > 0) {
                        r->stuck_bytes += rd;
                        continue;
                    }
                }
                if (pfd[k].revents & (POLLRDHUP | POLLHUP | POLLERR))
                    conn_close(r, c, 0);
                continue;
            }
            if (pfd[k].revents & POLLIN) {
                ssize_t rd = read(c->fd[s], c->buf[s], BUF_SIZE);
                if (rd <= 0 && !(rd < 0 && errno == EAGAIN)) {
                    conn_close(r, c, 0);
                    continue;
                }
                if (rd > 0) {
                    c->len[s] = (size_t)rd;
                    c->off[s] = 0;
                    c->ready_at[s] = now + (int64_t)r->latency_ms * 1000000;
                }
            } else if (pfd[k].revents & (POLLHUP | POLLERR)) {
                conn_close(r, c, 0);
                continue;
            }
            if (pfd[k].revents & POLLOUT) {
                int o = !s;
                ssize_t w =
                    send(c->fd[s], c->buf[o] + c->off[o], c->len[o] - c->off[o], MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    conn_close(r, c, 0);
                    continue;
                }
                if (w > 0) {
                    if (s == 0 && !c->first_reply_ns) {
                        c->first_reply_ns = now;
                        unsigned slot = r->nreplies++ % 256;
                        r->replies[slot].accepted_ns = c->accepted_ns;
                        r->replies[slot].first_reply_ns = now;
                    }
                    c->off[o] += (size_t)w;
                    if (c->off[o] == c->len[o])
                        c->len[o] = c->off[o] = 0;
                }
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (r->conns[i].state != C_FREE)
            conn_close(r, &r->conns[i], 0);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int kle_test_relay_start(kle_test_relay **out, unsigned target_port)
{
    kle_test_relay *r = calloc(1, sizeof(*r));
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    *out = NULL;
    if (!r)
        return -1;
    for (int i = 0; i < MAX_CONNS; i++)
        r->conns[i].fd[0] = r->conns[i].fd[1] = -1;
    r->target_port = target_port;
    pthread_mutex_init(&r->mu, NULL);
    r->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (r->listen_fd < 0 || bind(r->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(r->listen_fd, 64) != 0 ||
        getsockname(r->listen_fd, (struct sockaddr *)&sa, &len) != 0 ||
        pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        if (r->listen_fd >= 0)
            close(r->listen_fd);
        free(r);
        return -1;
    }
    r->port = ntohs(sa.sin_port);
    if (pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        close(r->listen_fd);
        close(r->wake[0]);
        close(r->wake[1]);
        free(r);
        return -1;
    }
    *out = r;
    return 0;
}

unsigned kle_test_relay_port(const kle_test_relay *r)
{
    return r->port;
}

#define SET_AND_WAKE(stmt)                                                                         \
    do {                                                                                           \
        pthread_mutex_lock(&r->mu);                                                                \
        stmt;                                                                                      \
        pthread_mutex_unlock(&r->mu);                                                              \
        wake(r);                                                                                   \
    } while (0)

void kle_test_relay_set_mode(kle_test_relay *r, kle_test_relay_mode mode)
{
    SET_AND_WAKE(r->mode = mode);
}

/* Waits until the relay thread has applied a freeze or reset. */
static void wait_applied(kle_test_relay *r)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        int pending = r->freeze_req || r->reset_req;
        pthread_mutex_unlock(&r->mu);
        if (!pending)
            return;
        poll(NULL, 0, 1);
    }
}

void kle_test_relay_freeze(kle_test_relay *r)
{
    SET_AND_WAKE(r->freeze_req = 1);
    wait_applied(r);
}

void kle_test_relay_reset(kle_test_relay *r)
{
    SET_AND_WAKE(r->reset_req = 1);
    wait_applied(r);
}

void kle_test_relay_set_latency(kle_test_relay *r, int ms)
{
    SET_AND_WAKE(r->latency_ms = ms);
}

#define READ_LOCKED(type, expr)                                                                    \
    pthread_mutex_lock(&r->mu);                                                                    \
    type v_ = (expr);                                                                              \
    pthread_mutex_unlock(&r->mu);                                                                  \
    return v_

long kle_test_relay_accepted(kle_test_relay *r)
{
    READ_LOCKED(long, r->accepted);
}

long kle_test_relay_stuck_bytes(kle_test_relay *r)
{
    READ_LOCKED(long, r->stuck_bytes);
}

int64_t kle_test_relay_last_stuck_close(kle_test_relay *r)
{
    READ_LOCKED(int64_t, r->last_stuck_close);
}

long kle_test_relay_stuck_open(kle_test_relay *r)
{
    long n = 0;
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < MAX_CONNS; i++)
        n += r->conns[i].state == C_STUCK;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int64_t kle_test_relay_first_reply_since(kle_test_relay *r, int64_t since_ns)
{
    int64_t best = 0;
    pthread_mutex_lock(&r->mu);
    unsigned n = r->nreplies < 256 ? r->nreplies : 256;
    for (unsigned i = 0; i < n; i++)
        if (r->replies[i].accepted_ns >= since_ns && (!best || r->replies[i].first_reply_ns < best))
            best = r->replies[i].first_reply_ns;
    pthread_mutex_unlock(&r->mu);
    return best;
}

void kle_test_relay_stop(kle_test_relay *r)
{
    if (!r)
        return;
    SET_AND_WAKE(r->stop = 1);
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
    close(r->wake[0]);
    close(r->wake[1]);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
