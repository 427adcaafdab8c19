/*
 * kle's values: booleans, Go durations ("1m30s"), the back-off between
 * runs, durations as kubectl prints ages ("5m47s"), and Kubernetes names
 * (cli.h declares them; opts.c reads the flags with them).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "kube/kube.h"

int cli_parse_bool(int *out, const char *t)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(t, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(t, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int cli_parse_duration(int64_t *out_ms, const char *text)
{
    /* Go's time.ParseDuration, restricted to non-negative values and kept
     * in nanoseconds until the end; the result is rounded down to ms. */
    const char *p = text;
    long double total_ns = 0;
    if (!text || !*text)
        return -1;
    if (*p == '+')
        p++;
    if (strcmp(p, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    if (!*p)
        return -1;
    while (*p) {
        long double v = 0, scale = 1, unit;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                v += (*p - '0') * scale;
                p++;
                digits++;
            }
        }
        if (digits == 0)
            return -1;
        if (strncmp(p, "ns", 2) == 0) {
            unit = 1;
            p += 2;
        } else if (strncmp(p, "us", 2) == 0) {
            unit = 1e3;
            p += 2;
        } else if (strncmp(p, "\xc2\xb5s", 3) == 0 || strncmp(p, "\xce\xbcs", 3) == 0) {
            unit = 1e3;
            p += 3;
        } else if (strncmp(p, "ms", 2) == 0) {
            unit = 1e6;
            p += 2;
        } else if (*p == 's') {
            unit = 1e9;
            p++;
        } else if (*p == 'm') {
            unit = 60e9;
            p++;
        } else if (*p == 'h') {
            unit = 3600e9;
            p++;
        } else {
            return -1; /* a missing or unknown unit */
        }
        total_ns += v * unit;
        if (total_ns > 9.2e18L)
            return -1;
    }
    *out_ms = (int64_t)(total_ns / 1e6L);
    return 0;
}

int64_t cli_backoff_ms(int64_t retry_ms, int failures)
{
    int64_t cap = retry_ms > CLI_BACKOFF_CAP_MS ? retry_ms : CLI_BACKOFF_CAP_MS, d = retry_ms;
    for (int i = 0; i < failures && d < cap; i++)
        d *= 2;
    return d < cap ? d : cap;
}

void cli_format_duration(char *buf, size_t size, int64_t ms)
{
    if (ms % 1000 == 0)
        snprintf(buf, size, "%llds", (long long)(ms / 1000));
    else if (ms >= 1000)
        snprintf(buf, size, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
    else
        snprintf(buf, size, "%lldms", (long long)ms);
    /* Trim trailing zeros of a fraction ("1.500s" -> "1.5s"). */
    char *dot = strchr(buf, '.');
    if (dot) {
        char *s = buf + strlen(buf) - 1; /* the 's' */
        char *e = s - 1;
        while (e > dot && *e == '0')
            e--;
        if (e == dot)
            e--;
        e[1] = 's';
        e[2] = '\0';
    }
}

void cli_human_duration(char *buf, size_t size, int64_t ms)
{
    /* k8s.io/apimachinery/pkg/util/duration.HumanDuration, as kubectl's AGE. */
    int64_t sec = ms / 1000; /* toward zero, as Go's int(d.Seconds()) */
    if (sec < -1) {
        snprintf(buf, size, "<invalid>");
        return;
    }
    if (sec < 0)
        sec = 0;
    if (sec < 120) {
        snprintf(buf, size, "%llds", (long long)sec);
        return;
    }
    int64_t min = sec / 60;
    if (min < 10) {
        if (sec % 60)
            snprintf(buf, size, "%lldm%llds", (long long)min, (long long)(sec % 60));
        else
            snprintf(buf, size, "%lldm", (long long)min);
        return;
    }
    if (min < 180) {
        snprintf(buf, size, "%lldm", (long long)min);
        return;
    }
    int64_t h = sec / 3600;
    if (h < 8) {
        if (min % 60)
            snprintf(buf, size, "%lldh%lldm", (long long)h, (long long)(min % 60));
        else
            snprintf(buf, size, "%lldh", (long long)h);
        return;
    }
    if (h < 48) {
        snprintf(buf, size, "%lldh", (long long)h);
        return;
    }
    if (h < 24 * 8) {
        if (h % 24)
            snprintf(buf, size, "%lldd%lldh", (long long)(h / 24), (long long)(h % 24));
        else
            snprintf(buf, size, "%lldd", (long long)(h / 24));
        return;
    }
    if (h < 24 * 365 * 2) {
        snprintf(buf, size, "%lldd", (long long)(h / 24));
        return;
    }
    if (h < 24 * 365 * 8) {
        int64_t dy = h / 24 % 365;
        if (dy)
            snprintf(buf, size, "%lldy%lldd", (long long)(h / 24 / 365), (long long)dy);
        else
            snprintf(buf, size, "%lldy", (long long)(h / 24 / 365));
        return;
    }
    snprintf(buf, size, "%lldy", (long long)(h / 24 / 365));
}

int cli_valid_name(const char *s, int label)
{
    return kle_kube__valid_name(s, label);
}
