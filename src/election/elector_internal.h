/* What other units of the library need of the elector. */
#ifndef KLE_CORE_ELECTOR_INTERNAL_H
#define KLE_CORE_ELECTOR_INTERNAL_H

#include "kle/elector.h"

/* The label of the elector's metrics: config->name, else the lock's describe. */
const char *kle_elector__metrics_name(kle_elector *e);

#endif
