/*
 * Saturating arithmetic (the design notes' rule: counters and deadlines
 * saturate, they never overflow).
 */
#ifndef KLE_BASE_SAT_H
#define KLE_BASE_SAT_H

#include <stdint.h>

/* a + b, clamped to INT64_MIN..INT64_MAX. */
static inline int64_t kle_sat__add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b)
        return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b)
        return INT64_MIN;
    return a + b;
}

#endif
