/* Internal helpers shared by the lock backends. */
#ifndef KLE_LOCKS_INTERNAL_H
#define KLE_LOCKS_INTERNAL_H

#include "kle/lock.h"

/* 1 when the lock is a Lease, ConfigMap or Endpoints lock. */
int kle_locks__is_object_lock(kle_lock *lock);

#endif
