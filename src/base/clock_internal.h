/* Internal events of the clock module, for the elector's runtime. */
#ifndef KLE_CORE_CLOCK_INTERNAL_H
#define KLE_CORE_CLOCK_INTERNAL_H

#include "kle/clock.h"

/*
 * A deadline event: with the real clock (or @p clock NULL) its descriptor
 * is a CLOCK_BOOTTIME timerfd, so the event is set by the kernel at the
 * deadline armed with kle_event__arm_deadline(), whatever the process's
 * threads are doing, and kle_event_is_set() turns true then; with any other
 * clock it is a plain event that its owner sets at the deadline. It is
 * never reset.
 */
int kle_event__new_deadline(kle_event **out, kle_clock *clock);

/*
 * Moves a deadline event's deadline to @p deadline (monotonic, later than
 * the last); does nothing on a plain event. Returns KLE_ETIMEOUT (and sets
 * the event) when the old deadline had already passed.
 */
int kle_event__arm_deadline(kle_event *event, int64_t deadline);

#endif
