#include "kle/version.h"

const char *kle_version(int *major, int *minor, int *patch)
{
    if (major)
        *major = KLE_VERSION_MAJOR;
    if (minor)
        *minor = KLE_VERSION_MINOR;
    if (patch)
        *patch = KLE_VERSION_PATCH;
    return KLE_VERSION;
}
