/*
 * The library's byte buffer: grows as bytes are appended; its data is
 * NUL-terminated whenever it holds any. A failed growth is kept (failed),
 * and the appends after it do nothing, so that a caller building a text
 * with many appends checks once at the end.
 */
#ifndef KLE_BASE_BUF_H
#define KLE_BASE_BUF_H

#include <stddef.h>

typedef struct kle_buf {
    char *data;
    size_t len, cap;
    int failed; /* An append could not grow the buffer. */
} kle_buf;

/* Appends @p n bytes; 0, or -1 when out of memory (then failed is set). */
int kle_buf__append(kle_buf *b, const char *s, size_t n);
/* Appends a C string. */
int kle_buf__appends(kle_buf *b, const char *s);
/* Appends printf-formatted text. */
int kle_buf__printf(kle_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Replaces the contents with @p n bytes (the old ones wiped); 0 or -1. */
int kle_buf__set(kle_buf *b, const char *s, size_t n);
/* Frees the data; the buffer is empty and usable again. */
void kle_buf__free(kle_buf *b);
/* Overwrites the bytes with zeros, then frees them (secrets). */
void kle_buf__wipe(kle_buf *b);

#endif
