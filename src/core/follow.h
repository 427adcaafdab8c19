/*
 * Watch mode of the elector (src/core/follow.c): a watcher thread follows
 * the lock object's stream, keeps the elector's observed record current,
 * schedules a follower's takeover attempt at the observed expiry (or at
 * once on a release), and ends a leader's term when the stream shows a
 * newer foreign holder. See docs/architecture.md, "Watch mode".
 */
#ifndef KLE_CORE_FOLLOW_H
#define KLE_CORE_FOLLOW_H

#include "core/elector_internal.h"

/* Makes e->follow when the config asks for watch mode and the lock can
 * watch; else leaves it NULL (poll mode). */
int kle_follow__new(kle_elector *e);
void kle_follow__free(kle_elector *e);

/* Starts and stops the watcher thread around one kle_elector_run(). */
void kle_follow__start(kle_elector *e);
void kle_follow__stop(kle_elector *e);

/* A follower's wait between attempts: until the next attempt is due (the
 * observed expiry plus jitter while the stream is healthy, else
 * poll_until), a release or deletion is seen, or the elector is stopped. */
void kle_follow__wait(kle_elector *e, int64_t poll_until);

/* After the elector's own GET; mu held. `changed`: the GET showed a record
 * the elector had not seen. */
void kle_follow__got(kle_elector *e, int changed);

/* 1 while a watch stream is healthy. */
int kle_follow__healthy(kle_elector *e);

/* Counters for kle_elector_get_stats; mu held. */
void kle_follow__stats(kle_elector *e, kle_elector_stats *s);

#endif
