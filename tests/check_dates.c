/* check_dates.c — calendar days, presets, windows, chunks, buckets and timezones. */
#include "dates.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A day from "YYYY-MM-DD" (asserts it parses). */
static kmday
day(const char *s)
{
    kmday d = 0;

    ck_assert_msg(kmdate_parse(s, &d) == 0, "'%s' should parse", s);
    return d;
}

/* "YYYY-MM-DD" of a day, in one of a few rotating static buffers (tests are one thread). */
static const char *
fmt(kmday d)
{
    static char bufs[4][11];
    static int  next;
    char       *b = bufs[next++ % 4];

    kmdate_format(d, b);
    return b;
}

/* --- civil arithmetic -------------------------------------------------------------- */

START_TEST(known_days_have_known_numbers)
{
    ck_assert_int_eq(kmdate_from_ymd(1970, 1, 1), 0);
    ck_assert_int_eq(kmdate_from_ymd(2024, 2, 29), 19782);
    ck_assert_int_eq(kmdate_from_ymd(1900, 1, 1), -25567);
    ck_assert_int_eq(kmdate_from_ymd(9999, 12, 31), 2932896);
    ck_assert_int_eq(kmdate_from_ymd(2024, 3, 1) - kmdate_from_ymd(2024, 2, 28), 2);
    ck_assert_int_eq(kmdate_from_ymd(2023, 3, 1) - kmdate_from_ymd(2023, 2, 28), 1);
}
END_TEST

/* Loops below check with `if` and fail with ck_abort_msg: every ck_assert records a mark
 * point with the parent process, which costs a write per assertion. */

START_TEST(ymd_round_trips_every_day_from_1900_to_2200)
{
    kmday first = kmdate_from_ymd(1900, 1, 1), last = kmdate_from_ymd(2200, 12, 31);
    int   py = 1899, pm = 12, pd = 31;

    for (kmday d = first; d <= last; d++) {
        int y, m, dd, follows;
        kmdate_to_ymd(d, &y, &m, &dd);
        if (kmdate_from_ymd(y, m, dd) != d)
            ck_abort_msg("day %d -> %04d-%02d-%02d -> %d", (int)d, y, m, dd,
                         (int)kmdate_from_ymd(y, m, dd));
        /* each day follows the previous one on the calendar */
        if (dd == 1)
            follows = pd == kmdate_days_in_month(py, pm) && m == (pm == 12 ? 1 : pm + 1) &&
                      y == (pm == 12 ? py + 1 : py);
        else
            follows = dd == pd + 1 && m == pm && y == py;
        if (!follows)
            ck_abort_msg("%04d-%02d-%02d does not follow %04d-%02d-%02d", y, m, dd, py, pm, pd);
        py = y;
        pm = m;
        pd = dd;
    }
    ck_assert_int_eq(py, 2200);
    ck_assert_int_eq(pm, 12);
    ck_assert_int_eq(pd, 31);
}
END_TEST

START_TEST(february_follows_the_gregorian_leap_rule)
{
    ck_assert_int_eq(kmdate_days_in_month(2024, 2), 29);
    ck_assert_int_eq(kmdate_days_in_month(2023, 2), 28);
    ck_assert_int_eq(kmdate_days_in_month(2000, 2), 29);
    ck_assert_int_eq(kmdate_days_in_month(1900, 2), 28);
    ck_assert_int_eq(kmdate_days_in_month(2100, 2), 28);
    ck_assert_int_eq(kmdate_days_in_month(2023, 4), 30);
    ck_assert_int_eq(kmdate_days_in_month(2023, 12), 31);
}
END_TEST

START_TEST(weekdays_of_known_dates)
{
    ck_assert_int_eq(kmdate_weekday(day("1970-01-01")), 3);  /* Thursday */
    ck_assert_int_eq(kmdate_weekday(day("2000-01-01")), 5);  /* Saturday */
    ck_assert_int_eq(kmdate_weekday(day("1900-01-01")), 0);  /* Monday, before the epoch */
    ck_assert_int_eq(kmdate_weekday(day("2024-02-29")), 3);
    ck_assert_int_eq(kmdate_weekday(day("2024-06-03")), 0);
    ck_assert_int_eq(kmdate_weekday(day("2023-12-31")), 6);  /* Sunday */
    ck_assert_int_eq(kmdate_weekday(day("1969-12-31")), 2);
}
END_TEST

START_TEST(parse_and_format_round_trip)
{
    static const char *dates[] = { "2024-02-29", "1900-01-01", "9999-12-31", "2023-12-31",
                                   "2000-02-29", "1970-01-01" };

    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++)
        ck_assert_str_eq(fmt(day(dates[i])), dates[i]);
}
END_TEST

START_TEST(parse_refuses_anything_but_a_real_yyyy_mm_dd_day)
{
    static const char *bad[] = {
        "2024-02-30", "2023-02-29", "1900-02-29", "2024-04-31", "2024-13-01", "2024-00-10",
        "2024-01-00", "2024-2-01",  "2024-02-1",  "20240201",   "",           "2024/02/01",
        " 2024-02-01", "2024-02-01 ", "2024-02-01T00:00:00", "1899-12-31", "+024-02-01",
        "2024-0a-01", "2024--2-01",
    };
    kmday d = 12345;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(kmdate_parse(bad[i], &d) == -1, "'%s' should not parse", bad[i]);
    ck_assert_int_eq(kmdate_parse(NULL, &d), -1);
    ck_assert_int_eq(d, 12345);
}
END_TEST

START_TEST(range_days_counts_both_ends)
{
    kmrange r = { day("2024-02-01"), day("2024-02-29") };

    ck_assert_int_eq(kmdate_range_days(r), 29);
    r.end = r.start;
    ck_assert_int_eq(kmdate_range_days(r), 1);
}
END_TEST

/* --- presets ----------------------------------------------------------------------- */

static const struct {
    const char *preset, *today, *start, *end;
} presets[] = {
    { "today", "2024-02-29", "2024-02-29", "2024-02-29" },
    { "today", "2024-01-01", "2024-01-01", "2024-01-01" },
    { "yesterday", "2024-03-01", "2024-02-29", "2024-02-29" },
    { "yesterday", "2023-03-01", "2023-02-28", "2023-02-28" },
    { "yesterday", "2024-01-01", "2023-12-31", "2023-12-31" },
    { "last_7_days", "2024-03-01", "2024-02-23", "2024-02-29" },
    { "last_7_days", "2024-01-01", "2023-12-25", "2023-12-31" },
    { "last_30_days", "2024-03-31", "2024-03-01", "2024-03-30" },
    { "last_30_days", "2024-03-01", "2024-01-31", "2024-02-29" },
    { "last_30_days", "2023-03-31", "2023-03-01", "2023-03-30" },
    { "last_90_days", "2024-12-31", "2024-10-02", "2024-12-30" },
    { "last_90_days", "2024-05-30", "2024-03-01", "2024-05-29" },
    { "last_365_days", "2024-03-01", "2023-03-02", "2024-02-29" },
    { "last_365_days", "2023-03-01", "2022-03-01", "2023-02-28" },
    { "last_365_days", "2025-01-01", "2024-01-02", "2024-12-31" },
    { "this_month", "2024-01-01", "2024-01-01", "2024-01-01" },
    { "this_month", "2024-02-29", "2024-02-01", "2024-02-29" },
    { "this_month", "2023-12-31", "2023-12-01", "2023-12-31" },
    { "last_month", "2024-03-31", "2024-02-01", "2024-02-29" },
    { "last_month", "2024-03-01", "2024-02-01", "2024-02-29" },
    { "last_month", "2023-03-31", "2023-02-01", "2023-02-28" },
    { "last_month", "2023-03-01", "2023-02-01", "2023-02-28" },
    { "last_month", "2024-01-01", "2023-12-01", "2023-12-31" },
    { "last_month", "2024-12-31", "2024-11-01", "2024-11-30" },
    { "last_month", "2024-05-31", "2024-04-01", "2024-04-30" },
    { "last_month", "2000-03-15", "2000-02-01", "2000-02-29" },
    { "last_month", "2100-03-15", "2100-02-01", "2100-02-28" },
    { "year_to_date", "2024-01-01", "2024-01-01", "2024-01-01" },
    { "year_to_date", "2024-02-29", "2024-01-01", "2024-02-29" },
    { "year_to_date", "2024-12-31", "2024-01-01", "2024-12-31" },
};

START_TEST(each_preset_resolves_on_fixed_dates)
{
    for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++) {
        kmrange r = { 0, 0 };
        kmerr   err = { 0 };

        if (kmdate_preset(presets[i].preset, day(presets[i].today), &r, &err) != KM_OK)
            ck_abort_msg("%s on %s: %s", presets[i].preset, presets[i].today, err.msg);
        if (strcmp(fmt(r.start), presets[i].start) != 0 ||
            strcmp(fmt(r.end), presets[i].end) != 0)
            ck_abort_msg("%s on %s gave %s..%s, want %s..%s", presets[i].preset,
                         presets[i].today, fmt(r.start), fmt(r.end), presets[i].start,
                         presets[i].end);
    }
}
END_TEST

START_TEST(trailing_presets_are_n_complete_days_ending_yesterday)
{
    static const struct {
        const char *name;
        int         n;
    } trailing[] = { { "last_7_days", 7 }, { "last_30_days", 30 }, { "last_90_days", 90 },
                     { "last_365_days", 365 } };
    kmday today = day("2024-02-29");

    for (size_t i = 0; i < 4; i++) {
        kmrange r;
        ck_assert_int_eq(kmdate_preset(trailing[i].name, today, &r, NULL), KM_OK);
        ck_assert_int_eq(kmdate_range_days(r), trailing[i].n);
        ck_assert_int_eq(r.end, today - 1);
    }
}
END_TEST

START_TEST(every_listed_preset_resolves_to_a_window_ending_by_today)
{
    kmday  today = day("2024-03-31");
    size_t n = 0;

    for (const char *const *p = kmdate_preset_names; *p; p++, n++) {
        kmrange r;
        ck_assert_int_eq(kmdate_preset(*p, today, &r, NULL), KM_OK);
        ck_assert_int_le(r.start, r.end);
        ck_assert_int_le(r.end, today);
        ck_assert_int_le(kmdate_range_days(r), 366);
    }
    ck_assert_uint_eq(n, 9);
}
END_TEST

START_TEST(an_unknown_preset_is_an_invalid_argument_listing_the_presets)
{
    static const char *bad[] = { "last_14_days", "Last_7_days", "last_7_days ", "", "lastmonth",
                                 "last_days", "last_7_days_x", "this_week" };
    kmrange            r = { 1, 2 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kmerr err = { 0 };
        ck_assert_int_eq(kmdate_preset(bad[i], day("2024-03-31"), &r, &err),
                         KM_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "timeframe"));
        ck_assert_ptr_nonnull(strstr(err.msg, "year_to_date"));
        kmerr_clear(&err);
    }
    ck_assert_int_eq(kmdate_preset(NULL, 0, &r, NULL), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(r.start, 1);
    ck_assert_int_eq(r.end, 2);
}
END_TEST

/* --- windows ----------------------------------------------------------------------- */

static kmcode
window(const char *tf, const char *s, const char *e, kmrange *r, kmerr *err)
{
    return kmdate_window(tf, s, e, day("2024-03-31"), r, err);
}

START_TEST(an_explicit_pair_is_the_window)
{
    kmrange r;

    ck_assert_int_eq(window(NULL, "2024-02-01", "2024-02-29", &r, NULL), KM_OK);
    ck_assert_str_eq(fmt(r.start), "2024-02-01");
    ck_assert_str_eq(fmt(r.end), "2024-02-29");
    ck_assert_int_eq(window(NULL, "2024-02-29", "2024-02-29", &r, NULL), KM_OK);
    ck_assert_int_eq(kmdate_range_days(r), 1);
}
END_TEST

/* The window goes to Klaviyo as [start, day after end): 9999-12-31 would send 10000-01-01,
 * which used to print as 0000-01-01 and turn Klaviyo's 400 into an empty 200. */
START_TEST(a_window_past_9999_12_30_is_refused_and_no_year_wraps)
{
    kmrange r;
    kmerr   e = { 0 };

    ck_assert_int_eq(window(NULL, "9999-12-01", "9999-12-30", &r, NULL), KM_OK);
    ck_assert_int_eq(window(NULL, "9999-12-01", "9999-12-31", &r, &e), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "9999-12-30"));
    kmerr_clear(&e);
    ck_assert_str_eq(fmt(kmdate_from_ymd(9999, 12, 31) + 1), "9999-12-31");
    ck_assert_str_eq(fmt(kmdate_from_ymd(9999, 12, 31)), "9999-12-31");
}
END_TEST

START_TEST(a_timeframe_alone_is_the_preset)
{
    kmrange r;

    ck_assert_int_eq(window("last_month", NULL, NULL, &r, NULL), KM_OK);
    ck_assert_str_eq(fmt(r.start), "2024-02-01");
    ck_assert_str_eq(fmt(r.end), "2024-02-29");
}
END_TEST

START_TEST(a_timeframe_with_any_date_is_refused)
{
    kmrange r;
    kmerr   err = { 0 };

    ck_assert_int_eq(window("last_month", "2024-01-01", "2024-01-31", &r, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "not both"));
    kmerr_clear(&err);
    ck_assert_int_eq(window("today", "2024-01-01", NULL, &r, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
    ck_assert_int_eq(window("today", NULL, "2024-01-01", &r, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
}
END_TEST

START_TEST(no_window_at_all_is_refused)
{
    kmrange r;
    kmerr   err = { 0 };

    ck_assert_int_eq(window(NULL, NULL, NULL, &r, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "timeframe"));
    ck_assert_ptr_nonnull(strstr(err.msg, "start_date"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(half_a_pair_names_the_missing_date)
{
    kmrange r;
    kmerr   err = { 0 };

    ck_assert_int_eq(window(NULL, "2024-01-01", NULL, &r, &err), KM_INVALID_ARGUMENT);
    ck_assert(strncmp(err.msg, "end_date is required", 20) == 0);
    kmerr_clear(&err);
    ck_assert_int_eq(window(NULL, NULL, "2024-01-01", &r, &err), KM_INVALID_ARGUMENT);
    ck_assert(strncmp(err.msg, "start_date is required", 22) == 0);
    kmerr_clear(&err);
}
END_TEST

START_TEST(an_end_before_the_start_is_refused)
{
    kmrange r;
    kmerr   err = { 0 };

    ck_assert_int_eq(window(NULL, "2024-03-01", "2024-02-29", &r, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "before"));
    kmerr_clear(&err);
}
END_TEST

/* a date in the form that the calendar does not have is told apart from a malformed one */
START_TEST(an_impossible_date_says_why_it_is_not_a_date)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        { "2025-02-30", "start_date: '2025-02-30' is not a date: February 2025 has 28 days" },
        { "2024-02-30", "start_date: '2024-02-30' is not a date: February 2024 has 29 days" },
        { "2025-04-31", "start_date: '2025-04-31' is not a date: April 2025 has 30 days" },
        { "2025-13-01", "start_date: '2025-13-01' is not a date: there is no month 13" },
        { "2025-00-10", "start_date: '2025-00-10' is not a date: there is no month 00" },
    };
    kmrange r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kmerr err = { 0 };
        ck_assert_int_eq(window(NULL, bad[i].in, "2026-03-01", &r, &err), KM_INVALID_ARGUMENT);
        ck_assert_str_eq(err.msg, bad[i].msg);
        kmerr_clear(&err);
    }
}
END_TEST

START_TEST(a_malformed_date_names_its_field)
{
    static const char *bad[] = { "2024-2-01", "20240201", "", "2024-02-01Z" };
    kmrange            r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kmerr err = { 0 };
        ck_assert_int_eq(window(NULL, bad[i], "2024-03-01", &r, &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strncmp(err.msg, "start_date:", 11) == 0, "%s", err.msg);
        ck_assert_ptr_nonnull(strstr(err.msg, "YYYY-MM-DD"));
        kmerr_clear(&err);
        ck_assert_int_eq(window(NULL, "2024-01-01", bad[i], &r, &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strncmp(err.msg, "end_date:", 9) == 0, "%s", err.msg);
        kmerr_clear(&err);
    }
}
END_TEST

START_TEST(a_window_of_1827_days_is_accepted)
{
    kmrange r;

    ck_assert_int_eq(window(NULL, "2020-01-01", "2024-12-31", &r, NULL), KM_OK);
    ck_assert_int_eq(kmdate_range_days(r), KMDATE_MAX_RANGE_DAYS);
    ck_assert_int_eq(KMDATE_MAX_RANGE_DAYS, 1827);
}
END_TEST

START_TEST(a_window_of_1828_days_is_refused)
{
    kmrange r = { 7, 7 };
    kmerr   err = { 0 };

    ck_assert_int_eq(window(NULL, "2020-01-01", "2025-01-01", &r, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "1828"));
    ck_assert_ptr_nonnull(strstr(err.msg, "1827"));
    ck_assert_int_eq(r.start, 7);
    kmerr_clear(&err);
}
END_TEST

/* --- chunks ------------------------------------------------------------------------ */

/* Chunks cover r in order, touch each other, and each is under one calendar year. */
static void
assert_chunks_tile(kmrange r, const kmrange *c, size_t n)
{
    if (n == 0 || c[0].start != r.start || c[n - 1].end != r.end)
        ck_abort_msg("chunks of %s..%s do not cover it", fmt(r.start), fmt(r.end));
    for (size_t i = 0; i < n; i++) {
        int y, m, d;
        if (c[i].start > c[i].end || kmdate_range_days(c[i]) > KMDATE_CHUNK_DAYS)
            ck_abort_msg("chunk %s..%s is empty or too long", fmt(c[i].start), fmt(c[i].end));
        if (i > 0 && c[i].start != c[i - 1].end + 1)
            ck_abort_msg("chunk %zu starts %s, not the day after %s", i, fmt(c[i].start),
                         fmt(c[i - 1].end));
        /* D1T00:00:00 .. D2T23:59:59 is under a year: D2 comes before D1's anniversary */
        kmdate_to_ymd(c[i].start, &y, &m, &d);
        if (c[i].end >= kmdate_from_ymd(y + 1, m, d))
            ck_abort_msg("chunk %s..%s spans a year", fmt(c[i].start), fmt(c[i].end));
    }
}

START_TEST(a_two_year_range_across_a_leap_day_splits_into_exact_chunks)
{
    kmrange r = { day("2023-06-01"), day("2025-06-01") };
    kmrange c[8];
    size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 8);

    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(fmt(c[0].start), "2023-06-01");
    ck_assert_str_eq(fmt(c[0].end), "2024-05-30");
    ck_assert_str_eq(fmt(c[1].start), "2024-05-31");
    ck_assert_str_eq(fmt(c[1].end), "2025-05-30");
    ck_assert_str_eq(fmt(c[2].start), "2025-05-31");
    ck_assert_str_eq(fmt(c[2].end), "2025-06-01");
    assert_chunks_tile(r, c, n);
}
END_TEST

START_TEST(two_non_leap_years_split_at_the_new_year)
{
    kmrange r = { day("2021-01-01"), day("2022-12-31") };
    kmrange c[4];
    size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 4);

    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(fmt(c[0].end), "2021-12-31");
    ck_assert_str_eq(fmt(c[1].start), "2022-01-01");
    assert_chunks_tile(r, c, n);
}
END_TEST

START_TEST(a_whole_leap_year_needs_two_chunks)
{
    kmrange r = { day("2024-01-01"), day("2024-12-31") };
    kmrange c[4];
    size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 4);

    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(fmt(c[0].end), "2024-12-30");
    ck_assert_str_eq(fmt(c[1].start), "2024-12-31");
    ck_assert_str_eq(fmt(c[1].end), "2024-12-31");
    assert_chunks_tile(r, c, n);
}
END_TEST

START_TEST(a_chunk_starting_on_feb_29_stays_under_a_year)
{
    kmrange r = { day("2024-02-29"), day("2025-03-05") };
    kmrange c[4];
    size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 4);

    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(fmt(c[0].end), "2025-02-27");
    assert_chunks_tile(r, c, n);
}
END_TEST

START_TEST(a_window_that_fits_is_one_chunk)
{
    kmrange r = { day("2023-01-01"), day("2023-12-31") };
    kmrange c[2];

    ck_assert_uint_eq(kmdate_split(r, KMDATE_CHUNK_DAYS, c, 2), 1);
    ck_assert_int_eq(c[0].start, r.start);
    ck_assert_int_eq(c[0].end, r.end);
    r.end = r.start;
    ck_assert_uint_eq(kmdate_split(r, KMDATE_CHUNK_DAYS, c, 2), 1);
    ck_assert_int_eq(c[0].end, r.start);
}
END_TEST

START_TEST(the_longest_window_splits_into_six_chunks)
{
    kmrange r = { day("2020-01-01"), day("2024-12-31") };
    kmrange c[8];
    size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 8);

    ck_assert_uint_eq(n, 6);
    ck_assert_int_eq(kmdate_range_days(c[5]), 1827 - 5 * 365);
    assert_chunks_tile(r, c, n);
}
END_TEST

START_TEST(every_start_day_of_a_leap_cycle_tiles_correctly)
{
    /* two years from each start day over four years: leap days land everywhere */
    kmrange c[4];

    for (kmday s = day("2023-01-01"); s <= day("2026-12-31"); s++) {
        kmrange r = { s, s + 800 };
        size_t  n = kmdate_split(r, KMDATE_CHUNK_DAYS, c, 4);
        if (n != 3)
            ck_abort_msg("%s + 800 days gave %zu chunks", fmt(s), n);
        assert_chunks_tile(r, c, n);
    }
}
END_TEST

START_TEST(split_counts_without_writing_and_respects_the_cap)
{
    kmrange r = { day("2020-01-01"), day("2024-12-31") };
    kmrange c[2] = { { -1, -1 }, { -1, -1 } };
    kmrange guard[1] = { { -7, -7 } };

    ck_assert_uint_eq(kmdate_split(r, KMDATE_CHUNK_DAYS, NULL, 0), 6);
    ck_assert_uint_eq(kmdate_split(r, KMDATE_CHUNK_DAYS, c, 1), 6);
    ck_assert_int_eq(c[0].start, r.start);
    ck_assert_int_eq(c[1].start, -1);
    ck_assert_int_eq(guard[0].start, -7);
}
END_TEST

START_TEST(split_of_an_empty_range_or_a_bad_size_is_nothing)
{
    kmrange r = { day("2024-02-02"), day("2024-02-01") };
    kmrange ok = { day("2024-02-01"), day("2024-02-02") };

    ck_assert_uint_eq(kmdate_split(r, KMDATE_CHUNK_DAYS, NULL, 0), 0);
    ck_assert_uint_eq(kmdate_split(ok, 0, NULL, 0), 0);
    ck_assert_uint_eq(kmdate_split(ok, -5, NULL, 0), 0);
    ck_assert_uint_eq(kmdate_split(ok, 1, NULL, 0), 2);
}
END_TEST

/* --- intervals and buckets --------------------------------------------------------- */

START_TEST(interval_names_parse_and_print)
{
    static const char *names[] = { "hourly", "daily", "weekly", "monthly" };
    kminterval         iv = KMI_COUNT;

    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(kmdate_interval_parse(names[i], &iv), 0);
        ck_assert_int_eq(iv, i);
        ck_assert_str_eq(kmdate_interval_name(iv), names[i]);
    }
    iv = KMI_DAILY;
    ck_assert_int_eq(kmdate_interval_parse("yearly", &iv), -1);
    ck_assert_int_eq(kmdate_interval_parse("day", &iv), -1);
    ck_assert_int_eq(kmdate_interval_parse("Daily", &iv), -1);
    ck_assert_int_eq(kmdate_interval_parse(NULL, &iv), -1);
    ck_assert_int_eq(iv, KMI_DAILY);
    ck_assert_str_eq(kmdate_interval_name(KMI_COUNT), "unknown");
}
END_TEST

START_TEST(interval_caps_are_klaviyos)
{
    ck_assert_int_eq(kmdate_interval_max_days(KMI_HOURLY), 7);
    ck_assert_int_eq(kmdate_interval_max_days(KMI_DAILY), 60);
    ck_assert_int_eq(kmdate_interval_max_days(KMI_WEEKLY), 52 * 7);
    ck_assert_int_eq(kmdate_interval_max_days(KMI_MONTHLY), 52 * 7);
    ck_assert_int_eq(kmdate_interval_max_days(KMI_COUNT), 0);
}
END_TEST

START_TEST(daily_buckets_start_every_day)
{
    kmrange r = { day("2024-02-27"), day("2024-03-02") };
    kmday   b[8];

    ck_assert_uint_eq(kmdate_buckets(r, KMI_DAILY, b, 8), 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(b[i], r.start + i);
        ck_assert_int_eq(kmdate_bucket_of(r, KMI_DAILY, r.start + i), i);
    }
    ck_assert_str_eq(fmt(b[2]), "2024-02-29");
}
END_TEST

START_TEST(weekly_buckets_are_seven_days_from_the_window_start)
{
    kmrange r = { day("2024-02-28"), day("2024-03-20") };  /* a Wednesday to a Wednesday */
    kmday   b[8];

    ck_assert_uint_eq(kmdate_buckets(r, KMI_WEEKLY, b, 8), 4);
    ck_assert_str_eq(fmt(b[0]), "2024-02-28");
    ck_assert_str_eq(fmt(b[1]), "2024-03-06");
    ck_assert_str_eq(fmt(b[2]), "2024-03-13");
    ck_assert_str_eq(fmt(b[3]), "2024-03-20");
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_WEEKLY, day("2024-03-05")), 0);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_WEEKLY, day("2024-03-06")), 1);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_WEEKLY, day("2024-03-20")), 3);
}
END_TEST

START_TEST(a_quarter_from_a_tuesday_has_thirteen_weekly_buckets)
{
    /* the seed's contract: 2025-04-01 (a Tuesday) to 2025-06-30 is 91 days, 13 weeks */
    kmrange r = { day("2025-04-01"), day("2025-06-30") };
    kmday   b[16];

    ck_assert_uint_eq(kmdate_buckets(r, KMI_WEEKLY, b, 16), 13);
    ck_assert_str_eq(fmt(b[0]), "2025-04-01");
    ck_assert_str_eq(fmt(b[1]), "2025-04-08");
    ck_assert_str_eq(fmt(b[12]), "2025-06-24");
}
END_TEST

START_TEST(weekly_buckets_from_a_monday_have_no_partial_week)
{
    kmrange r = { day("2024-03-04"), day("2024-03-17") };
    kmday   b[4];

    ck_assert_uint_eq(kmdate_buckets(r, KMI_WEEKLY, b, 4), 2);
    ck_assert_str_eq(fmt(b[0]), "2024-03-04");
    ck_assert_str_eq(fmt(b[1]), "2024-03-11");
}
END_TEST

START_TEST(monthly_buckets_start_on_the_first_after_a_partial_first_month)
{
    kmrange r = { day("2023-11-15"), day("2024-03-02") };
    kmday   b[8];

    ck_assert_uint_eq(kmdate_buckets(r, KMI_MONTHLY, b, 8), 5);
    ck_assert_str_eq(fmt(b[0]), "2023-11-15");
    ck_assert_str_eq(fmt(b[1]), "2023-12-01");
    ck_assert_str_eq(fmt(b[2]), "2024-01-01");
    ck_assert_str_eq(fmt(b[3]), "2024-02-01");
    ck_assert_str_eq(fmt(b[4]), "2024-03-01");
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_MONTHLY, day("2023-11-30")), 0);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_MONTHLY, day("2024-02-29")), 3);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_MONTHLY, day("2024-03-02")), 4);
}
END_TEST

START_TEST(a_day_outside_the_range_has_no_bucket)
{
    kmrange r = { day("2024-02-28"), day("2024-03-20") };

    ck_assert_int_eq(kmdate_bucket_of(r, KMI_WEEKLY, day("2024-02-27")), -1);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_WEEKLY, day("2024-03-21")), -1);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_DAILY, day("2023-03-01")), -1);
}
END_TEST

START_TEST(hourly_series_have_no_day_buckets)
{
    kmrange r = { day("2024-03-01"), day("2024-03-03") };

    ck_assert_uint_eq(kmdate_buckets(r, KMI_HOURLY, NULL, 0), 0);
    ck_assert_int_eq(kmdate_bucket_of(r, KMI_HOURLY, day("2024-03-02")), -1);
}
END_TEST

START_TEST(buckets_count_without_writing_and_respect_the_cap)
{
    kmrange r = { day("2024-01-01"), day("2024-12-31") };
    kmday   b[3] = { -1, -1, -1 };

    ck_assert_uint_eq(kmdate_buckets(r, KMI_MONTHLY, NULL, 0), 12);
    ck_assert_uint_eq(kmdate_buckets(r, KMI_DAILY, NULL, 0), 366);
    ck_assert_uint_eq(kmdate_buckets(r, KMI_MONTHLY, b, 2), 12);
    ck_assert_str_eq(fmt(b[1]), "2024-02-01");
    ck_assert_int_eq(b[2], -1);
}
END_TEST

START_TEST(bucket_of_agrees_with_the_bucket_starts_for_every_day)
{
    kmrange r = { day("2023-01-18"), day("2024-12-09") };
    kmday   b[800];

    for (int iv = KMI_DAILY; iv <= KMI_MONTHLY; iv++) {
        size_t n = kmdate_buckets(r, (kminterval)iv, b, 800);
        ck_assert_uint_le(n, 800);
        for (kmday d = r.start; d <= r.end; d++) {
            long i = kmdate_bucket_of(r, (kminterval)iv, d);
            if (i < 0 || i >= (long)n || b[i] > d || ((size_t)i + 1 < n && b[i + 1] <= d))
                ck_abort_msg("%s: %s is put in bucket %ld", kmdate_interval_name(iv), fmt(d),
                             i);
        }
    }
}
END_TEST

/* --- timezones --------------------------------------------------------------------- */

#define JAN_15_2024_1200Z ((time_t)1705320000)

START_TEST(new_york_and_auckland_are_on_different_days_at_the_same_instant)
{
    kmday ny = 0, akl = 0, utc = 0;

    ck_assert_int_eq(kmdate_today("America/New_York", JAN_15_2024_1200Z, &ny, NULL), KM_OK);
    ck_assert_int_eq(kmdate_today("Pacific/Auckland", JAN_15_2024_1200Z, &akl, NULL), KM_OK);
    ck_assert_int_eq(kmdate_today("UTC", JAN_15_2024_1200Z, &utc, NULL), KM_OK);
    ck_assert_str_eq(fmt(ny), "2024-01-15");
    ck_assert_str_eq(fmt(akl), "2024-01-16");
    ck_assert_str_eq(fmt(utc), "2024-01-15");
}
END_TEST

START_TEST(the_same_zone_gives_yesterday_just_before_local_midnight)
{
    kmday d;
    int   sec;

    /* 2024-01-15T04:59:59Z is 23:59:59 on the 14th in New York */
    ck_assert_int_eq(kmdate_utc_to_local("America/New_York", (time_t)1705294799, &d, &sec,
                                         NULL),
                     KM_OK);
    ck_assert_str_eq(fmt(d), "2024-01-14");
    ck_assert_int_eq(sec, 86399);
}
END_TEST

START_TEST(local_midnight_in_new_york_is_five_utc_in_winter_and_four_in_summer)
{
    time_t t = 0;

    ck_assert_int_eq(kmdate_local_to_utc("America/New_York", day("2024-01-15"), 0, &t, NULL),
                     KM_OK);
    ck_assert_int_eq((long long)t, 1705294800LL);  /* 2024-01-15T05:00:00Z */
    ck_assert_int_eq(kmdate_local_to_utc("America/New_York", day("2024-07-15"), 0, &t, NULL),
                     KM_OK);
    ck_assert_int_eq((long long)t, 1721016000LL);  /* 2024-07-15T04:00:00Z */
    /* the day DST starts: midnight is still standard time */
    ck_assert_int_eq(kmdate_local_to_utc("America/New_York", day("2024-03-10"), 0, &t, NULL),
                     KM_OK);
    ck_assert_int_eq((long long)t, 1710046800LL);
    /* and the end of that local day is 23:59:59 EDT */
    ck_assert_int_eq(kmdate_local_to_utc("America/New_York", day("2024-03-10"), 86399, &t,
                                         NULL),
                     KM_OK);
    ck_assert_int_eq((long long)t, 1710046800LL + 86400 - 3600 - 1);
}
END_TEST

START_TEST(utc_to_local_and_back_agree)
{
    time_t t = 0;
    kmday  d;
    int    sec;

    ck_assert_int_eq(kmdate_utc_to_local("Pacific/Auckland", JAN_15_2024_1200Z, &d, &sec, NULL),
                     KM_OK);
    ck_assert_str_eq(fmt(d), "2024-01-16");
    ck_assert_int_eq(sec, 3600);
    ck_assert_int_eq(kmdate_local_to_utc("Pacific/Auckland", d, sec, &t, NULL), KM_OK);
    ck_assert_int_eq((long long)t, (long long)JAN_15_2024_1200Z);
}
END_TEST

START_TEST(legacy_aliases_and_utc_are_valid_zones)
{
    kmday d;

    ck_assert(kmdate_tz_valid("US/Eastern"));
    ck_assert(kmdate_tz_valid("America/New_York"));
    ck_assert(kmdate_tz_valid("UTC"));
    ck_assert(kmdate_tz_valid("Etc/GMT+5"));
    ck_assert_int_eq(kmdate_today("US/Eastern", JAN_15_2024_1200Z, &d, NULL), KM_OK);
    ck_assert_str_eq(fmt(d), "2024-01-15");
}
END_TEST

START_TEST(made_up_or_path_like_zones_are_invalid)
{
    static const char *bad[] = { "Mars/Olympus", "../etc/passwd", "/etc/passwd",
                                 "America/../../etc/passwd", "America", "America/New York",
                                 "", "America/New_York\n", "EST5EDT,M3.2.0,M11.1.0" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!kmdate_tz_valid(bad[i]), "'%s' should be invalid", bad[i]);
    ck_assert(!kmdate_tz_valid(NULL));
}
END_TEST

START_TEST(an_invalid_zone_is_an_invalid_argument_naming_it)
{
    kmday  d = 77;
    time_t t = 77;
    int    sec;
    kmerr  err = { 0 };

    ck_assert_int_eq(kmdate_today("Mars/Olympus", JAN_15_2024_1200Z, &d, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "Mars/Olympus"));
    ck_assert_int_eq(d, 77);
    kmerr_clear(&err);
    ck_assert_int_eq(kmdate_local_to_utc("../etc/passwd", 0, 0, &t, &err), KM_INVALID_ARGUMENT);
    ck_assert_int_eq((long)t, 77);
    kmerr_clear(&err);
    ck_assert_int_eq(kmdate_utc_to_local(NULL, 0, &d, &sec, NULL), KM_INVALID_ARGUMENT);
}
END_TEST

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

START_TEST(a_file_in_the_zone_directory_that_is_not_tzif_data_is_not_a_zone)
{
    /* zoneinfo also holds text files (leapseconds, zone tables); they are not zones */
    char dir[] = "/tmp/check_dates.XXXXXX";
    char path[128];
    char tzif[44] = "TZif2";
    int  text, empty, zone, folder;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/Fake", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/Fake/Text", dir);
    write_file(path, "# not a zone\n", 13);
    snprintf(path, sizeof(path), "%s/Fake/Zone", dir);
    write_file(path, tzif, sizeof(tzif));
    snprintf(path, sizeof(path), "%s/Fake/Empty", dir);
    write_file(path, "", 0);
    setenv("TZDIR", dir, 1);
    text = kmdate_tz_valid("Fake/Text");
    empty = kmdate_tz_valid("Fake/Empty");
    zone = kmdate_tz_valid("Fake/Zone");
    folder = kmdate_tz_valid("Fake");
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);  /* before any check can end the test */
    ck_assert(!text);
    ck_assert(!empty);
    ck_assert(zone);
    ck_assert(!folder);
}
END_TEST

struct tz_job {
    const char *tz;
    const char *want;
    int         bad;
};

static void *
convert_many(void *arg)
{
    struct tz_job *job = arg;

    for (int i = 0; i < 300; i++) {
        kmday d;
        char  got[11];
        if (kmdate_today(job->tz, JAN_15_2024_1200Z, &d, NULL) != KM_OK) {
            job->bad++;
            continue;
        }
        kmdate_format(d, got);
        if (strcmp(got, job->want) != 0)
            job->bad++;
    }
    return NULL;
}

START_TEST(conversions_from_several_threads_do_not_mix_zones)
{
    struct tz_job jobs[4] = { { "America/New_York", "2024-01-15", 0 },
                              { "Pacific/Auckland", "2024-01-16", 0 },
                              { "Pacific/Kiritimati", "2024-01-16", 0 },
                              { "Pacific/Pago_Pago", "2024-01-15", 0 } };
    pthread_t     th[4];

    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, convert_many, &jobs[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(jobs[i].bad == 0, "%s: %d wrong answers", jobs[i].tz, jobs[i].bad);
    }
}
END_TEST

static Suite *
dates_suite(void)
{
    Suite *s = suite_create("dates");
    TCase *tc;

    tc = tcase_create("calendar");
    tcase_add_test(tc, known_days_have_known_numbers);
    tcase_add_test(tc, ymd_round_trips_every_day_from_1900_to_2200);
    tcase_add_test(tc, february_follows_the_gregorian_leap_rule);
    tcase_add_test(tc, weekdays_of_known_dates);
    tcase_add_test(tc, parse_and_format_round_trip);
    tcase_add_test(tc, parse_refuses_anything_but_a_real_yyyy_mm_dd_day);
    tcase_add_test(tc, range_days_counts_both_ends);
    suite_add_tcase(s, tc);

    tc = tcase_create("presets");
    tcase_add_test(tc, each_preset_resolves_on_fixed_dates);
    tcase_add_test(tc, trailing_presets_are_n_complete_days_ending_yesterday);
    tcase_add_test(tc, every_listed_preset_resolves_to_a_window_ending_by_today);
    tcase_add_test(tc, an_unknown_preset_is_an_invalid_argument_listing_the_presets);
    suite_add_tcase(s, tc);

    tc = tcase_create("window");
    tcase_add_test(tc, an_explicit_pair_is_the_window);
    tcase_add_test(tc, a_window_past_9999_12_30_is_refused_and_no_year_wraps);
    tcase_add_test(tc, a_timeframe_alone_is_the_preset);
    tcase_add_test(tc, a_timeframe_with_any_date_is_refused);
    tcase_add_test(tc, no_window_at_all_is_refused);
    tcase_add_test(tc, half_a_pair_names_the_missing_date);
    tcase_add_test(tc, an_end_before_the_start_is_refused);
    tcase_add_test(tc, a_malformed_date_names_its_field);
    tcase_add_test(tc, an_impossible_date_says_why_it_is_not_a_date);
    tcase_add_test(tc, a_window_of_1827_days_is_accepted);
    tcase_add_test(tc, a_window_of_1828_days_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("split");
    tcase_add_test(tc, a_two_year_range_across_a_leap_day_splits_into_exact_chunks);
    tcase_add_test(tc, two_non_leap_years_split_at_the_new_year);
    tcase_add_test(tc, a_whole_leap_year_needs_two_chunks);
    tcase_add_test(tc, a_chunk_starting_on_feb_29_stays_under_a_year);
    tcase_add_test(tc, a_window_that_fits_is_one_chunk);
    tcase_add_test(tc, the_longest_window_splits_into_six_chunks);
    tcase_add_test(tc, every_start_day_of_a_leap_cycle_tiles_correctly);
    tcase_add_test(tc, split_counts_without_writing_and_respects_the_cap);
    tcase_add_test(tc, split_of_an_empty_range_or_a_bad_size_is_nothing);
    suite_add_tcase(s, tc);

    tc = tcase_create("buckets");
    tcase_add_test(tc, interval_names_parse_and_print);
    tcase_add_test(tc, interval_caps_are_klaviyos);
    tcase_add_test(tc, daily_buckets_start_every_day);
    tcase_add_test(tc, weekly_buckets_are_seven_days_from_the_window_start);
    tcase_add_test(tc, a_quarter_from_a_tuesday_has_thirteen_weekly_buckets);
    tcase_add_test(tc, weekly_buckets_from_a_monday_have_no_partial_week);
    tcase_add_test(tc, monthly_buckets_start_on_the_first_after_a_partial_first_month);
    tcase_add_test(tc, a_day_outside_the_range_has_no_bucket);
    tcase_add_test(tc, hourly_series_have_no_day_buckets);
    tcase_add_test(tc, buckets_count_without_writing_and_respect_the_cap);
    tcase_add_test(tc, bucket_of_agrees_with_the_bucket_starts_for_every_day);
    suite_add_tcase(s, tc);

    tc = tcase_create("timezones");
    tcase_add_test(tc, new_york_and_auckland_are_on_different_days_at_the_same_instant);
    tcase_add_test(tc, the_same_zone_gives_yesterday_just_before_local_midnight);
    tcase_add_test(tc, local_midnight_in_new_york_is_five_utc_in_winter_and_four_in_summer);
    tcase_add_test(tc, utc_to_local_and_back_agree);
    tcase_add_test(tc, legacy_aliases_and_utc_are_valid_zones);
    tcase_add_test(tc, made_up_or_path_like_zones_are_invalid);
    tcase_add_test(tc, an_invalid_zone_is_an_invalid_argument_naming_it);
    tcase_add_test(tc, a_file_in_the_zone_directory_that_is_not_tzif_data_is_not_a_zone);
    tcase_add_test(tc, conversions_from_several_threads_do_not_mix_zones);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(dates_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
