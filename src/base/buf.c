/* The library's byte buffer (buf.h). */
#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for @p more bytes and a NUL. */
static int reserve(kle_buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (more > (size_t)-1 / 2 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int kle_buf__append(kle_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int kle_buf__appends(kle_buf *b, const char *s)
{
    return kle_buf__append(b, s, strlen(s));
}

int kle_buf__printf(kle_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return -1;
    }
    if (reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int kle_buf__set(kle_buf *b, const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (!copy)
        return -1;
    if (n)
        memcpy(copy, s, n);
    copy[n] = '\0';
    kle_buf__wipe(b);
    b->data = copy;
    b->len = n;
    b->cap = n + 1;
    return 0;
}

void kle_buf__free(kle_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void kle_buf__wipe(kle_buf *b)
{
    if (b->data) {
        /* The whole allocation where it is known; a buffer whose data was
         * handed in (cap 0) at least its bytes. */
        size_t n = b->cap > b->len ? b->cap : b->len;
        volatile char *p = b->data;
        for (size_t i = 0; i < n; i++)
            p[i] = 0;
    }
    kle_buf__free(b);
}
