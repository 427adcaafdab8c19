#include "kle/record.h"
#include "kle/sys/errors.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void kle_record_init(kle_record *rec)
{
    if (rec)
        memset(rec, 0, sizeof(*rec));
}

void kle_record_dispose(kle_record *rec)
{
    if (!rec)
        return;
    free(rec->holder_identity);
    free(rec->strategy);
    free(rec->preferred_holder);
    memset(rec, 0, sizeof(*rec));
}

int kle_record_set_string(char **member, const char *value)
{
    char *copy = NULL;

    if (value) {
        copy = strdup(value);
        if (!copy)
            return kle_error_set(KLE_ENOMEM, "record: out of memory");
    }
    free(*member);
    *member = copy;
    return 0;
}

int kle_record_copy(kle_record *out, const kle_record *src)
{
    kle_record tmp = *src;

    tmp.holder_identity = NULL;
    tmp.strategy = NULL;
    tmp.preferred_holder = NULL;
    if (kle_record_set_string(&tmp.holder_identity, src->holder_identity) < 0 ||
        kle_record_set_string(&tmp.strategy, src->strategy) < 0 ||
        kle_record_set_string(&tmp.preferred_holder, src->preferred_holder) < 0) {
        kle_record_dispose(&tmp);
        kle_record_init(out);
        return KLE_ENOMEM;
    }
    *out = tmp;
    return 0;
}

const char *kle_record_holder(const kle_record *rec)
{
    return rec && rec->holder_identity ? rec->holder_identity : "";
}

int kle_record_holder_is(const kle_record *rec, const char *identity)
{
    return strcmp(kle_record_holder(rec), identity ? identity : "") == 0;
}

int kle_record_holder_equal(const kle_record *a, const kle_record *b)
{
    return strcmp(kle_record_holder(a), kle_record_holder(b)) == 0;
}

static int str_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

int kle_record_equal(const kle_record *a, const kle_record *b)
{
    return strcmp(kle_record_holder(a), kle_record_holder(b)) == 0 &&
           a->lease_duration_seconds == b->lease_duration_seconds &&
           a->acquire_time_ns == b->acquire_time_ns && a->renew_time_ns == b->renew_time_ns &&
           a->leader_transitions == b->leader_transitions && str_equal(a->strategy, b->strategy) &&
           str_equal(a->preferred_holder, b->preferred_holder);
}

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

int kle_time_parse(int64_t *out_ns, const char *text)
{
    const char *p = text;
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
        offset_sec = sign * (oh * 3600 + om * 60);
    } else if (*p != '\0') {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        goto bad;

    int64_t days = days_from_civil(year, mon, day);
    int64_t secs = days * 86400 + hour * 3600 + min * 60 + sec - offset_sec;
    *out_ns = secs * KLE_NS_PER_SEC + frac_ns;
    return 0;
bad:
    return kle_error_set(KLE_EINVAL, "\"%.64s\" is not an RFC 3339 timestamp", text);
}
