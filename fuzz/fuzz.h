/* Shared helpers of the libFuzzer targets (one target per file). */
#ifndef KLE_FUZZ_H
#define KLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kle/errors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stops the run with a message: libFuzzer reports it as a crash and keeps
 * the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A NUL-terminated heap copy of the input (the parsers take C strings). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* The last error must be one of libkle's codes with a readable message. */
static inline void fuzz_check_error(int rc)
{
    FUZZ_CHECK(rc <= KLE_ERROR && rc >= KLE_EAPI);
    const kle_error *e = kle_error_last();
    FUZZ_CHECK(e != NULL && e->code == rc && e->message != NULL);
    FUZZ_CHECK(strlen(e->message) < 65536);
}

#endif
