/*
 * The versioned structs' two patterns, once (libgit2's
 * GIT_ERROR_CHECK_VERSION and GIT_INIT_STRUCTURE_FROM_TEMPLATE): every
 * public struct starts with `unsigned int version`; its init function
 * fills a struct of a given version, and a function taking one checks its
 * version first.
 */
#ifndef KLE_BASE_VERSIONED_H
#define KLE_BASE_VERSIONED_H

#include "kle/sys/errors.h"

#include <string.h>

/*
 * Returns KLE_EVERSION from the calling function when @p version is not 1
 * to @p max: "WHAT version N is not supported".
 */
#define KLE__CHECK_VERSION(version, max, what)                                                     \
    do {                                                                                           \
        unsigned int kle_v_ = (version);                                                           \
        if (kle_v_ < 1 || kle_v_ > (unsigned int)(max))                                            \
            return kle_error_set(KLE_EVERSION, "%s version %u is not supported", (what), kle_v_);  \
    } while (0)

/*
 * The body of an init function: returns KLE_EINVAL for a NULL @p ptr and
 * KLE_EVERSION for a version outside 1 to @p max (naming @p fn), else
 * copies the first @p size bytes of the static initialiser @p tmpl (of
 * @p type: the size of @p version's layout, sizeof(type) when every
 * version has the whole layout) and sets the version.
 */
#define KLE__INIT_STRUCT(fn, ptr, version, max, type, tmpl, size)                                  \
    do {                                                                                           \
        if (!(ptr))                                                                                \
            return kle_error_set(KLE_EINVAL, "%s: %s is NULL", (fn), #ptr);                        \
        KLE__CHECK_VERSION(version, max, fn ":");                                                  \
        type kle_tmpl_ = tmpl;                                                                     \
        memcpy((ptr), &kle_tmpl_, (size));                                                         \
        (ptr)->version = (version);                                                                \
    } while (0)

#endif
