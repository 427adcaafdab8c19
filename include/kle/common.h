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

/** Nanoseconds in one millisecond. */
#define KLE_NS_PER_MS INT64_C(1000000)
/** Nanoseconds in one second. */
#define KLE_NS_PER_SEC INT64_C(1000000000)

#endif
