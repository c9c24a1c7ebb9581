/* dates.c — civil-day arithmetic (days from civil, H. Hinnant's public-domain algorithm,
 * re-derived here), timezone conversion through TZ, presets and chunking. */
#include "dates.h"
#include "tz.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const kmdate_preset_names[] = {
    "today",        "yesterday",     "last_7_days", "last_30_days", "last_90_days",
    "last_365_days", "this_month", "last_month",  "year_to_date", NULL
};

static const char *const interval_names[KMI_COUNT] = { "hourly", "daily", "weekly", "monthly" };

kmday
kmdate_from_ymd(int y, int m, int d)
{
    /* shift the year to start in March so the leap day is the year's last day */
    int      yy = m <= 2 ? y - 1 : y;
    int      era = (yy >= 0 ? yy : yy - 399) / 400;
    unsigned yoe = (unsigned)(yy - era * 400);
    unsigned doy = (153u * (unsigned)(m + (m > 2 ? -3 : 9)) + 2u) / 5u + (unsigned)d - 1u;
    unsigned doe = yoe * 365u + yoe / 4u - yoe / 100u + doy;

    return (kmday)(era * 146097 + (int)doe - 719468);
}

void
kmdate_to_ymd(kmday day, int *y, int *m, int *d)
{
    int      z = day + 719468;
    int      era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460u + doe / 36524u - doe / 146096u) / 365u;
    unsigned doy = doe - (365u * yoe + yoe / 4u - yoe / 100u);
    unsigned mp = (5u * doy + 2u) / 153u;
    int      mm = (int)(mp < 10 ? mp + 3 : mp - 9);

    *d = (int)(doy - (153u * mp + 2u) / 5u + 1u);
    *m = mm;
    *y = (int)yoe + era * 400 + (mm <= 2);
}

static int
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
kmdate_days_in_month(int y, int m)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (m == 2 && is_leap(y))
        return 29;
    return days[m - 1];
}

int
kmdate_weekday(kmday day)
{
    /* 1970-01-01 was a Thursday (3 when Monday is 0) */
    int w = (day + 3) % 7;

    return w < 0 ? w + 7 : w;
}

int
kmdate_parse(const char *s, kmday *out)
{
    int y, m, d;

    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
    }
    y = atoi(s);
    m = atoi(s + 5);
    d = atoi(s + 8);
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > kmdate_days_in_month(y, m))
        return -1;
    *out = kmdate_from_ymd(y, m, d);
    return 0;
}

void
kmdate_format(kmday day, char out[11])
{
    int y, m, d;

    char tmp[32];

    kmdate_to_ymd(day, &y, &m, &d);
    /* four digits: never wrap a year past 9999 (kmdate_window refuses such windows) */
    if (y > 9999) {
        y = 9999;
        m = 12;
        d = 31;
    } else if (y < 0) {
        y = 0;
        m = 1;
        d = 1;
    }
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02d", y, m, d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

int
kmdate_range_days(kmrange r)
{
    return r.end - r.start + 1;
}

/* --- timezones --------------------------------------------------------------------- */

/* Each zone is read once into a transition table (tz.h): no TZ, no tzset, no lock. */

int
kmdate_tz_valid(const char *tz)
{
    return kmtz_get(tz) != NULL;
}

static const kmtz *
zone(const char *tz, kmerr *err)
{
    const kmtz *z = kmtz_get(tz);

    if (!z)
        kmerr_set(err, KM_INVALID_ARGUMENT, "unknown timezone '%.64s'", tz ? tz : "");
    return z;
}

kmcode
kmdate_today(const char *tz, time_t now, kmday *out, kmerr *err)
{
    kmday day;
    int   sec;
    kmcode rc = kmdate_utc_to_local(tz, now, &day, &sec, err);

    if (rc == KM_OK)
        *out = day;
    return rc;
}

kmcode
kmdate_local_to_utc(const char *tz, kmday day, int sec_of_day, time_t *out, kmerr *err)
{
    const kmtz *z = zone(tz, err);

    if (!z)
        return KM_INVALID_ARGUMENT;
    /* a second of the day outside [0, 86400) counts on from the day's midnight (mktime's
     * normalisation); inside it, it is local wall-clock time: on a DST change day 86399 is
     * 23:59:59, not midnight plus 86399 elapsed seconds */
    *out = (time_t)kmtz_wall_to_utc(z, (int64_t)day * 86400 + sec_of_day);
    return KM_OK;
}

kmcode
kmdate_utc_to_local(const char *tz, time_t t, kmday *day, int *sec_of_day, kmerr *err)
{
    const kmtz *z = zone(tz, err);
    int64_t     wall;

    if (!z)
        return KM_INVALID_ARGUMENT;
    wall = kmtz_utc_to_wall(z, (int64_t)t);
    *day = (kmday)(wall / 86400 - (wall % 86400 < 0));
    *sec_of_day = (int)(wall - (int64_t)*day * 86400);
    return KM_OK;
}

/* --- presets and windows ------------------------------------------------------------ */

kmcode
kmdate_preset(const char *name, kmday today, kmrange *out, kmerr *err)
{
    int y, m, d;

    kmdate_to_ymd(today, &y, &m, &d);
    if (!name)
        goto bad;
    if (strcmp(name, "today") == 0) {
        out->start = out->end = today;
    } else if (strcmp(name, "yesterday") == 0) {
        out->start = out->end = today - 1;
    } else if (strncmp(name, "last_", 5) == 0 && strstr(name, "_days")) {
        int n = strcmp(name, "last_7_days") == 0    ? 7
                : strcmp(name, "last_30_days") == 0  ? 30
                : strcmp(name, "last_90_days") == 0  ? 90
                : strcmp(name, "last_365_days") == 0 ? 365
                                                     : 0;
        if (!n)
            goto bad;
        /* n complete days ending yesterday */
        out->end = today - 1;
        out->start = today - n;
    } else if (strcmp(name, "this_month") == 0) {
        out->start = kmdate_from_ymd(y, m, 1);
        out->end = today;
    } else if (strcmp(name, "last_month") == 0) {
        int py = m == 1 ? y - 1 : y, pm = m == 1 ? 12 : m - 1;
        out->start = kmdate_from_ymd(py, pm, 1);
        out->end = kmdate_from_ymd(py, pm, kmdate_days_in_month(py, pm));
    } else if (strcmp(name, "year_to_date") == 0) {
        out->start = kmdate_from_ymd(y, 1, 1);
        out->end = today;
    } else {
        goto bad;
    }
    return KM_OK;
bad:
    return kmerr_set(err, KM_INVALID_ARGUMENT,
                     "timeframe: '%.40s' is not a preset; use one of today, yesterday, "
                     "last_7_days, last_30_days, last_90_days, last_365_days, this_month, "
                     "last_month, year_to_date",
                     name ? name : "");
}

/* YYYY-MM-DD shape only (digits and dashes), whether or not the calendar has that day. */
static int
date_shaped(const char *s)
{
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    }
    return 1;
}

kmcode
kmdate_refuse(const char *field, const char *s, kmerr *err)
{
    static const char *const months[] = { "January", "February", "March", "April", "May",
                                           "June", "July", "August", "September", "October",
                                           "November", "December" };
    int y, m;

    if (!date_shaped(s))
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "%s: '%.20s' is not a date in YYYY-MM-DD form", field, s ? s : "");
    y = atoi(s);
    m = atoi(s + 5);
    if (y < 1900)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: '%s' is before 1900", field, s);
    if (m < 1 || m > 12)
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "%s: '%s' is not a date: there is no month %02d", field, s, m);
    return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: '%s' is not a date: %s %d has %d days",
                     field, s, months[m - 1], y, kmdate_days_in_month(y, m));
}

kmcode
kmdate_window(const char *timeframe, const char *start_date, const char *end_date,
              kmday today, kmrange *out, kmerr *err)
{
    kmrange r;

    if (timeframe && (start_date || end_date))
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "provide either timeframe or start_date+end_date, not both");
    if (timeframe)
        return kmdate_preset(timeframe, today, out, err);
    if (!start_date && !end_date)
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "a window is required: provide start_date+end_date or timeframe");
    if (!start_date || !end_date)
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "%s is required with %s (the window is start_date+end_date)",
                         start_date ? "end_date" : "start_date",
                         start_date ? "start_date" : "end_date");
    if (kmdate_parse(start_date, &r.start) != 0)
        return kmdate_refuse("start_date", start_date, err);
    if (kmdate_parse(end_date, &r.end) != 0)
        return kmdate_refuse("end_date", end_date, err);
    if (r.end < r.start)
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "end_date %s is before start_date %s", end_date, start_date);
    /* Klaviyo gets the window as [start, day after end): that day must still have a
     * four-digit year */
    if (r.end >= kmdate_from_ymd(9999, 12, 31))
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "end_date %s is past 9999-12-30, the last day Klaviyo can be asked "
                         "about", end_date);
    if (kmdate_range_days(r) > KMDATE_MAX_RANGE_DAYS)
        return kmerr_set(err, KM_INVALID_ARGUMENT,
                         "the window %s..%s spans %d days; the limit is %d days (about 5 "
                         "years)",
                         start_date, end_date, kmdate_range_days(r), KMDATE_MAX_RANGE_DAYS);
    *out = r;
    return KM_OK;
}

size_t
kmdate_split(kmrange r, int max_days, kmrange *out, size_t cap)
{
    size_t n = 0;
    kmday  s = r.start;

    if (max_days < 1 || r.end < r.start)
        return 0;
    while (s <= r.end) {
        kmday e = s + max_days - 1;
        if (e > r.end)
            e = r.end;
        if (out && n < cap) {
            out[n].start = s;
            out[n].end = e;
        }
        n++;
        s = e + 1;
    }
    return n;
}

/* --- intervals and buckets --------------------------------------------------------- */

int
kmdate_interval_parse(const char *name, kminterval *out)
{
    for (int i = 0; i < KMI_COUNT; i++) {
        if (name && strcmp(name, interval_names[i]) == 0) {
            *out = (kminterval)i;
            return 0;
        }
    }
    return -1;
}

const char *
kmdate_interval_name(kminterval iv)
{
    return (unsigned)iv < KMI_COUNT ? interval_names[iv] : "unknown";
}

int
kmdate_interval_max_days(kminterval iv)
{
    switch (iv) {
    case KMI_HOURLY:
        return 7;
    case KMI_DAILY:
        return 60;
    case KMI_WEEKLY:
    case KMI_MONTHLY:
        return 364;
    default:
        return 0;
    }
}

/* 1 when a bucket of a series starting at `start` begins on `day`: every day; every seventh
 * day from the start (the earlier implementation's 7-day buckets anchored at the window
 * start, not calendar weeks); the 1st of each month. */
static int
is_boundary(kmday start, kmday day, kminterval iv)
{
    int y, m, d;

    switch (iv) {
    case KMI_DAILY:
        return 1;
    case KMI_WEEKLY:
        return (day - start) % 7 == 0;
    case KMI_MONTHLY:
        kmdate_to_ymd(day, &y, &m, &d);
        return d == 1;
    default:
        return 0;
    }
}

size_t
kmdate_buckets(kmrange r, kminterval iv, kmday *out, size_t cap)
{
    size_t n = 0;

    if (iv == KMI_HOURLY || r.end < r.start)
        return 0;
    for (kmday day = r.start; day <= r.end; day++) {
        if (day == r.start || is_boundary(r.start, day, iv)) {
            if (out && n < cap)
                out[n] = day;
            n++;
        }
    }
    return n;
}

long
kmdate_bucket_of(kmrange r, kminterval iv, kmday day)
{
    long idx = -1;

    if (iv == KMI_HOURLY || day < r.start || day > r.end)
        return -1;
    for (kmday d = r.start; d <= day; d++) {
        if (d == r.start || is_boundary(r.start, d, iv))
            idx++;
    }
    return idx;
}
