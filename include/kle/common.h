/**
 * @file kle/common.h
 * @brief Macros shared by every libkle header.
 */
#ifndef KLE_COMMON_H
#define KLE_COMMON_H

#include <stddef.h>
#include <stdint.h>

/** @def KLE_BEGIN_DECLS
 *  Opens a block of C declarations (extern "C" under C++). */
/** @def KLE_END_DECLS
 *  Closes a block opened by KLE_BEGIN_DECLS. */
#ifdef __cplusplus
#define KLE_BEGIN_DECLS extern "C" {
#define KLE_END_DECLS   }
#else
#define KLE_BEGIN_DECLS
#define KLE_END_DECLS
#endif

/** Marks a declaration as part of the exported public API. */
#if defined(__GNUC__) && __GNUC__ >= 4
#define KLE_EXTERN(type) extern __attribute__((visibility("default"))) type
#else
#define KLE_EXTERN(type) extern type
#endif

/** Declares a printf-like function so the compiler checks its arguments. */
#if defined(__GNUC__)
#define KLE_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define KLE_PRINTF(fmt, args)
#endif

/**
 * @defgroup kle_durations Durations
 * The one duration rule of libkle: every duration, timeout and point in
 * time in the public API is an int64_t count of nanoseconds, and every
 * field and parameter that holds one ends in `_ns` (client-go's
 * time.Duration is nanoseconds too). Write them with KLE_MS(), KLE_SEC()
 * and friends: `kle_leading_wait_ns(leading, KLE_SEC(1))` waits one second.
 * The one exception is the election record itself (kle_record), which
 * mirrors the wire format: its lease_duration_seconds is whole seconds, as
 * leaseDurationSeconds is in Kubernetes.
 * @{
 */

/** Nanoseconds in one microsecond. */
#define KLE_NS_PER_US INT64_C(1000)
/** Nanoseconds in one millisecond. */
#define KLE_NS_PER_MS INT64_C(1000000)
/** Nanoseconds in one second. */
#define KLE_NS_PER_SEC INT64_C(1000000000)
/** @p n microseconds, in nanoseconds. */
#define KLE_US(n) ((int64_t)(n)*KLE_NS_PER_US)
/** @p n milliseconds, in nanoseconds. */
#define KLE_MS(n) ((int64_t)(n)*KLE_NS_PER_MS)
/** @p n seconds, in nanoseconds. */
#define KLE_SEC(n) ((int64_t)(n)*KLE_NS_PER_SEC)
/** @p n minutes, in nanoseconds. */
#define KLE_MIN(n) ((int64_t)(n)*60 * KLE_NS_PER_SEC)
/** @} */

KLE_BEGIN_DECLS

/**
 * Frees memory the library handed to the caller (strings such as
 * kle_elector_leader()'s). Use it rather than free(), so that a program and
 * the library need not share one allocator. NULL is ignored.
 */
KLE_EXTERN(void) kle_free(void *ptr);

KLE_END_DECLS

#endif
