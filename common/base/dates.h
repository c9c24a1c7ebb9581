/* dates.h — calendar days, timezones, timeframe presets, chunking and series buckets.
 *
 * Owns:    nothing; every result is written into caller memory.
 * Threads: thread-safe. Timezone conversions read each zone's transition table (tz.h),
 *          built once; nothing reads or writes TZ, and no conversion takes a lock.
 * Fails:   KM_INVALID_ARGUMENT with a message naming the field and the rule.
 *
 * A kmday counts days since 1970-01-01 in the proleptic Gregorian calendar; a kmrange is a
 * window of whole days, both ends inclusive (the seed's start_date/end_date). Which day is
 * "today" depends on the account's timezone (REFERENCE.md §13, "Whose today").
 */
#ifndef KM_DATES_H
#define KM_DATES_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef int32_t kmday;

typedef struct kmrange {
    kmday start;  /* inclusive */
    kmday end;    /* inclusive */
} kmrange;

/* Klaviyo rejects a report window longer than a year: a chunk spans at most 365 whole days,
 * which from D1T00:00:00 to D2T23:59:59 is strictly under a year even across Feb 29. */
#define KMDATE_CHUNK_DAYS 365
/* The overall cap on a requested window: five years, leap days included (the seed's ~5y). */
#define KMDATE_MAX_RANGE_DAYS 1827

typedef enum { KMI_HOURLY = 0, KMI_DAILY, KMI_WEEKLY, KMI_MONTHLY, KMI_COUNT } kminterval;

kmday kmdate_from_ymd(int y, int m, int d);
void kmdate_to_ymd(kmday day, int *y, int *m, int *d);
int kmdate_days_in_month(int y, int m);
/* 0 = Monday … 6 = Sunday */
int kmdate_weekday(kmday day);

/* Strict "YYYY-MM-DD" (a real calendar day, years 1900–9999). 0 on success, -1 otherwise. */
int kmdate_parse(const char *s, kmday *out);

/* The INVALID_ARGUMENT for `field` holding `s`, which kmdate_parse refused: a value not in
 * YYYY-MM-DD form is called that; one in the form that is no calendar day says why
 * ("February 2025 has 28 days"). Returns KM_INVALID_ARGUMENT. */
kmcode kmdate_refuse(const char *field, const char *s, kmerr *err);
/* "YYYY-MM-DD" into out (11 bytes). */
void kmdate_format(kmday day, char out[11]);

/* Number of days in r (end - start + 1). */
int kmdate_range_days(kmrange r);

/* 1 when `tz` names a zone in the system's tz database (legacy aliases such as
 * "US/Eastern" included): a TZif file under $TZDIR or /usr/share/zoneinfo. */
int kmdate_tz_valid(const char *tz);

/* The calendar day it is in zone `tz` at instant `now`. */
kmcode kmdate_today(const char *tz, time_t now, kmday *out, kmerr *err);

/* The UTC instant of local time `day` + `sec_of_day` seconds in zone `tz`. The seconds are
 * wall-clock time: 86399 is 23:59:59 local even on a day that DST shortens or lengthens. */
kmcode kmdate_local_to_utc(const char *tz, kmday day, int sec_of_day, time_t *out, kmerr *err);

/* The local day and second of the day of UTC instant `t` in zone `tz`. */
kmcode kmdate_utc_to_local(const char *tz, time_t t, kmday *day, int *sec_of_day, kmerr *err);

/* Resolve a seed preset name (today, yesterday, last_7_days, last_30_days, last_90_days,
 * last_365_days, this_month, last_month, year_to_date) relative to `today`. */
kmcode kmdate_preset(const char *name, kmday today, kmrange *out, kmerr *err);

/* The preset names, NULL-terminated (for schemas and messages). */
extern const char *const kmdate_preset_names[];

/* The window of a date-scoped tool: exactly one of `timeframe` or the pair
 * `start_date`+`end_date` (NULL when absent). Checks order and the five-year cap. */
kmcode kmdate_window(const char *timeframe, const char *start_date, const char *end_date,
                     kmday today, kmrange *out, kmerr *err);

/* Split r into consecutive chunks of at most max_days days each, in order. Returns how many
 * chunks r needs; writes at most `cap` of them into out (out may be NULL to count). */
size_t kmdate_split(kmrange r, int max_days, kmrange *out, size_t cap);

/* Parse "hourly" / "daily" / "weekly" / "monthly". -1 when unknown. */
int kmdate_interval_parse(const char *name, kminterval *out);
const char *kmdate_interval_name(kminterval iv);
/* Longest window Klaviyo's flow-series report accepts for the interval, in days:
 * hourly 7, daily 60, weekly and monthly 52 weeks (364). */
int kmdate_interval_max_days(kminterval iv);

/* Bucket starts for a daily, weekly or monthly series over r: the first bucket starts at
 * r.start, later ones at each period boundary (every day; every 7 days from r.start, as the
 * earlier implementation anchored weeks at the window start; the 1st of each month).
 * Returns the number of buckets; writes at most cap bucket start days. An hourly series
 * has kmdate_range_days(r) * 24 buckets, one per local hour; this returns 0 for it. */
size_t kmdate_buckets(kmrange r, kminterval iv, kmday *out, size_t cap);

/* The bucket index (0-based) holding `day`, for the buckets kmdate_buckets gives for r;
 * -1 when day is outside r. Not for KMI_HOURLY. */
long kmdate_bucket_of(kmrange r, kminterval iv, kmday day);

#endif
