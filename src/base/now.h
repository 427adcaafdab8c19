/*
 * The time of a kernel clock in nanoseconds, for code that reads one
 * directly rather than through a kle_clock. Which clock is whose:
 * - CLOCK_BOOTTIME: every election deadline and expiry (the real
 *   kle_clock's monotonic time, its timerfds, kle run and its supervisor):
 *   it keeps counting while the machine is suspended, so a lease that
 *   expired meanwhile is seen expired;
 * - CLOCK_MONOTONIC: durations that end with the process (the API client's
 *   request timing and connection ages, libcurl's own timeouts, the log's
 *   waits, kle-apiserver's);
 * - CLOCK_REALTIME: timestamps written or shown (records, log lines).
 * Header-only, so that the libc-only kle-supervise can use it.
 */
#ifndef KLE_BASE_NOW_H
#define KLE_BASE_NOW_H

#include <stdint.h>
#include <time.h>

static inline int64_t kle_now__ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
