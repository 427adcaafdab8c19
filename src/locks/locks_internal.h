/* Internal helpers shared by the lock backends. */
#ifndef KLE_LOCKS_INTERNAL_H
#define KLE_LOCKS_INTERNAL_H

#include <json-c/json.h>

#include "kle/lock.h"
#include "kle/sys/lock.h"

/* 1 when the lock is a Lease, ConfigMap or Endpoints lock. */
int kle_locks__is_object_lock(kle_lock *lock);

/*
 * The record of an object of kind 0 (Lease), 1 (ConfigMap) or 2 (Endpoints)
 * named name, read as the lock's get reads it (out as kle_lock.get fills
 * it), and written as its update writes it. No client involved.
 */
int kle_locks__object_read(kle_lock_result *out, int kind, const char *name, json_object *obj);
int kle_locks__object_write(json_object *obj, int kind, const kle_record *r);

#endif
