/*
 * What include/kle/common.h declares: kle_free(), for memory the library
 * hands to the caller.
 */
#include "kle/common.h"

#include <stdlib.h>

void kle_free(void *ptr)
{
    free(ptr);
}
