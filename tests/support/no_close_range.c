/*
 * LD_PRELOAD for the supervisor tests: close_range(2) fails with ENOSYS,
 * as on kernels before 5.9 or under a seccomp filter that refuses it, so
 * that the supervisor's fallback for closing inherited descriptors runs.
 */
#include <errno.h>

int close_range(unsigned int first, unsigned int last, int flags);

int close_range(unsigned int first, unsigned int last, int flags)
{
    (void)first;
    (void)last;
    (void)flags;
    errno = ENOSYS;
    return -1;
}
