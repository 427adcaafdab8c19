/* Internal questions about a lock vtable, for the elector's runtime. */
#ifndef KLE_CORE_LOCK_INTERNAL_H
#define KLE_CORE_LOCK_INTERNAL_H

#include "kle/sys/lock.h"

/* 1 when @p lock offers asynchronous calls (a version-3 vtable with start). */
int kle_lock__async(const kle_lock *lock);

/* 1 when @p lock offers an asynchronous watch as well. */
int kle_lock__async_watch(const kle_lock *lock);

#endif
