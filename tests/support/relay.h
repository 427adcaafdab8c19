/* Test support: a TCP fault relay between a client and a server (or the
 * HTTP/2 front), in the test's own process, on a thread of its own.
 *
 * It listens on 127.0.0.1 (port 0) and passes every accepted connection to
 * 127.0.0.1:target_port, byte for byte, until told otherwise:
 *
 *   freeze   every open connection stops passing bytes; its sockets stay
 *            open (a silently dead connection behind a load balancer)
 *   reset    every open connection is closed with a TCP RST on both sides
 *   latency  every chunk is held that long before it is passed on
 *   new connections: passed, refused (accepted and reset at once) or
 *            black-holed (accepted, never connected on, never answered)
 *
 *     kle_test_relay *r;
 *     kle_test_relay_start(&r, port);        // then connect to kle_test_relay_port(r)
 *     kle_test_relay_freeze(r);
 *     kle_test_relay_stop(r);
 *
 * Only POSIX and libc; loopback only.
 */
#ifndef KLE_TESTS_SUPPORT_RELAY_H
#define KLE_TESTS_SUPPORT_RELAY_H

#include <stdint.h>

typedef struct kle_test_relay kle_test_relay;

/** What happens to connections accepted from now on. */
typedef enum kle_test_relay_mode {
    KLE_RELAY_PASS = 0,     /**< Connected to the target and passed. */
    KLE_RELAY_REFUSE = 1,   /**< Reset at once. */
    KLE_RELAY_BLACKHOLE = 2 /**< Held open, nothing passed either way. */
} kle_test_relay_mode;

/** Starts a relay to 127.0.0.1:@p target_port. Returns 0 or -1. */
int kle_test_relay_start(kle_test_relay **out, unsigned target_port);

/** The relay's own port on 127.0.0.1. */
unsigned kle_test_relay_port(const kle_test_relay *r);

/** Sets what happens to connections accepted from now on. */
void kle_test_relay_set_mode(kle_test_relay *r, kle_test_relay_mode mode);

/** Freezes every connection open now (new ones follow the mode). */
void kle_test_relay_freeze(kle_test_relay *r);

/** Resets (RST) every connection open now. */
void kle_test_relay_reset(kle_test_relay *r);

/** Holds every chunk @p ms milliseconds before passing it (0: none). */
void kle_test_relay_set_latency(kle_test_relay *r, int ms);

/** Connections accepted so far. */
long kle_test_relay_accepted(kle_test_relay *r);

/** Frozen or black-holed connections the client has not closed yet. */
long kle_test_relay_stuck_open(kle_test_relay *r);

/** Bytes the client sent on connections while they were frozen or
 *  black-holed (e.g. HTTP/2 PINGs, retransmitted requests). */
long kle_test_relay_stuck_bytes(kle_test_relay *r);

/**
 * CLOCK_MONOTONIC time (ns) of the first bytes passed from the server to
 * the client on a connection accepted at or after @p since_ns; 0 when none
 * yet. Tells when a client recovered over a fresh connection.
 */
int64_t kle_test_relay_first_reply_since(kle_test_relay *r, int64_t since_ns);

/** Latest CLOCK_MONOTONIC time (ns) a frozen connection was closed by the
 *  client; 0 when none was. */
int64_t kle_test_relay_last_stuck_close(kle_test_relay *r);

/** Stops the relay and closes every connection. NULL is ignored. */
void kle_test_relay_stop(kle_test_relay *r);

/** CLOCK_MONOTONIC now, in ns (the relay's clock). */
int64_t kle_test_relay_now_ns(void);

#endif
