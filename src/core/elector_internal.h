/* Internal entry points of the elector, for unit tests of the decision logic. */
#ifndef KLE_CORE_ELECTOR_INTERNAL_H
#define KLE_CORE_ELECTOR_INTERNAL_H

#include "kle/elector.h"

/* One tryAcquireOrRenew attempt; lock calls bounded by deadline (INT64_MAX: call limit only). */
int kle_elector__try_acquire_or_renew(kle_elector *e, int64_t deadline);

/* The release step of release-on-cancel. */
void kle_elector__release(kle_elector *e);

/* Calls on_new_leader if the observed holder changed since the last report. */
void kle_elector__report_transition(kle_elector *e);

/* The label of the elector's metrics: config->name, else the lock's describe. */
const char *kle_elector__metrics_name(kle_elector *e);

#endif
