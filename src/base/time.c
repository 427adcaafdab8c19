/*
 * RFC 3339 times as Kubernetes writes them (include/kle/record.h:
 * kle_time_format, kle_time_parse): the base layer's, used by the records
 * and by the API client.
 */
#include "kle/record.h"
#include "kle/sys/errors.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int kle_time_format(char *buf, size_t size, int64_t ns, int fraction_digits)
{
    struct tm tm;
    int64_t secs = ns / KLE_NS_PER_SEC;
    int64_t frac = ns % KLE_NS_PER_SEC;
    char fracbuf[24] = "";

    if (frac < 0) {
        frac += KLE_NS_PER_SEC;
        secs -= 1;
    }
    if (fraction_digits < 0 || fraction_digits > 9)
        return kle_error_set(KLE_EINVAL, "time format: %d fraction digits (0..9)", fraction_digits);
    time_t t = (time_t)secs;
    if (!gmtime_r(&t, &tm))
        return kle_error_set(KLE_EINVAL, "time format: %lld seconds is out of range",
                             (long long)secs);
    if (fraction_digits > 0) {
        int64_t scaled = frac;
        for (int i = fraction_digits; i < 9; i++)
            scaled /= 10;
        snprintf(fracbuf, sizeof(fracbuf), ".%0*lld", fraction_digits, (long long)scaled);
    }
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, fracbuf);
    if (n < 0 || (size_t)n >= size)
        return kle_error_set(KLE_EINVAL, "time format: buffer of %zu bytes is too small", size);
    return n;
}

/* Reads exactly n digits. */
static int read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

int kle_time_parse(int64_t *out_ns, const char *text)
{
    const char *p = text;
    const char *why = "not an RFC 3339 timestamp";
    int year, mon, day, hour, min, sec;
    int64_t frac_ns = 0;
    int64_t offset_sec = 0;

    if (!out_ns || !text)
        return kle_error_set(KLE_EINVAL, "time parse: NULL argument");
    if (read_digits(&p, 4, &year) < 0 || *p++ != '-' || read_digits(&p, 2, &mon) < 0 ||
        *p++ != '-' || read_digits(&p, 2, &day) < 0)
        goto bad;
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (read_digits(&p, 2, &hour) < 0 || *p++ != ':' || read_digits(&p, 2, &min) < 0 ||
        *p++ != ':' || read_digits(&p, 2, &sec) < 0)
        goto bad;
    if (*p == '.') {
        int64_t scale = KLE_NS_PER_SEC / 10;
        p++;
        if (!isdigit((unsigned char)*p))
            goto bad;
        /* Digits past nanoseconds are dropped (scale is then 0). */
        while (isdigit((unsigned char)*p)) {
            frac_ns += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (read_digits(&p, 2, &oh) < 0 || *p++ != ':' || read_digits(&p, 2, &om) < 0)
            goto bad;
        if (oh > 23 || om > 59) {
            why = "its UTC offset is out of range (-23:59..+23:59)";
            goto bad;
        }
        offset_sec = sign * (oh * 3600 + om * 60);
    } else if (*p != '\0') {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (mon < 1 || mon > 12) {
        why = "its month does not exist";
        goto bad;
    }
    if (day < 1 || day > days_in_month(year, mon)) {
        why = "its day does not exist in that month";
        goto bad;
    }
    if (hour > 23 || min > 59) {
        why = "its time of day does not exist";
        goto bad;
    }
    if (sec > 59) {
        why =
            sec == 60 ? "it is a leap second, which is not supported" : "its second does not exist";
        goto bad;
    }

    /* Years 0000..9999: seconds always fit; nanoseconds may not. */
    int64_t days = days_from_civil(year, mon, day);
    int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_sec;
    int64_t ns;
    if (secs < 0 && frac_ns > 0) {
        /* Keeps the product in range down to the earliest instant, INT64_MIN. */
        secs += 1;
        frac_ns -= KLE_NS_PER_SEC;
    }
    if (__builtin_mul_overflow(secs, KLE_NS_PER_SEC, &ns) ||
        __builtin_add_overflow(ns, frac_ns, &ns)) {
        why = "it is out of range (1677-09-21T00:12:43.145224192Z .. "
              "2262-04-11T23:47:16.854775807Z)";
        goto bad;
    }
    *out_ns = ns;
    return 0;
bad:
    return kle_error_set(KLE_EINVAL, "\"%.64s\" is not a valid timestamp: %s", text, why);
}
