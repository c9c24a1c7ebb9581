/* check_tz.c — the TZif reader against the C library: for a set of zones chosen for their
 * oddities (half- and quarter-hour offsets, southern-hemisphere DST, Dublin's negative DST,
 * zones whose rules changed), every 3 hours from 1970 to 2070 the offset equals what
 * localtime_r says with TZ set (the test may touch TZ; the product never does), and local wall
 * times map back to the same instants as mktime outside the hours a shift skips or repeats. */
#include "tz.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const zones[] = {
    "UTC", "America/New_York", "Europe/London", "Europe/Dublin", "Australia/Sydney",
    "Pacific/Auckland", "Asia/Kolkata", "America/St_Johns", "Asia/Kathmandu",
    "Pacific/Chatham", "America/Sao_Paulo", "Africa/Casablanca", "Australia/Lord_Howe",
    "Asia/Tokyo", "America/Los_Angeles",
};

#define NZONES (sizeof(zones) / sizeof(zones[0]))
#define FROM   INT64_C(0)              /* 1970-01-01 */
#define TO     INT64_C(3155760000)     /* 2070-01-01 */
#define STEP   (3 * 3600)

static void
use_tz(const char *z)
{
    char spec[80];

    snprintf(spec, sizeof(spec), ":%s", z);
    setenv("TZ", spec, 1);
    tzset();
}

START_TEST(offsets_match_the_c_library_for_a_century)
{
    const char *name = zones[_i];
    const kmtz *z = kmtz_get(name);
    long        bad = 0;

    ck_assert_msg(z != NULL, "%s", name);
    use_tz(name);
    for (int64_t t = FROM; t < TO; t += STEP) {
        time_t    tt = (time_t)t;
        struct tm tm;

        localtime_r(&tt, &tm);
        if (kmtz_offset(z, t) != tm.tm_gmtoff && bad++ < 3)
            ck_abort_msg("%s at %lld: %d, the C library says %ld", name, (long long)t,
                         kmtz_offset(z, t), tm.tm_gmtoff);
    }
    ck_assert_int_eq(bad, 0);
}
END_TEST

START_TEST(wall_times_map_back_as_mktime_does_away_from_shifts)
{
    const char *name = zones[_i];
    const kmtz *z = kmtz_get(name);

    ck_assert_ptr_nonnull(z);
    use_tz(name);
    for (int64_t t = INT64_C(946684800); t < INT64_C(2208988800); t += STEP) {
        int64_t   wall = kmtz_utc_to_wall(z, t);
        time_t    tt = (time_t)t;
        struct tm tm;
        int       o1 = kmtz_offset(z, t - 86400), o2 = kmtz_offset(z, t + 86400);

        if (o1 != o2)
            continue;           /* a shift within a day: checked below, not against mktime */
        gmtime_r(&(time_t){ (time_t)wall }, &tm);
        tm.tm_isdst = -1;
        ck_assert_int_eq(kmtz_wall_to_utc(z, wall), (int64_t)mktime(&tm));
        ck_assert_int_eq(kmtz_wall_to_utc(z, wall), t);
        (void)tt;
    }
}
END_TEST

/* New York 2025: 02:30 on March 9 does not exist (read with EST: 07:30Z); 01:30 on November
 * 2 happens twice (the earlier, EDT: 05:30Z). */
START_TEST(skipped_and_repeated_wall_times)
{
    const kmtz *z = kmtz_get("America/New_York");
    int64_t     mar9 = INT64_C(1741478400);    /* 2025-03-09T00:00:00 as wall seconds */
    int64_t     nov2 = INT64_C(1762041600);    /* 2025-11-02T00:00:00 */

    ck_assert_ptr_nonnull(z);
    ck_assert_int_eq(kmtz_wall_to_utc(z, mar9 + 2 * 3600 + 1800), mar9 + 7 * 3600 + 1800);
    ck_assert_int_eq(kmtz_wall_to_utc(z, nov2 + 3600 + 1800), nov2 + 5 * 3600 + 1800);
    ck_assert_int_eq(kmtz_offset(z, mar9 + 7 * 3600), -4 * 3600);
    ck_assert_int_eq(kmtz_offset(z, mar9 + 7 * 3600 - 1), -5 * 3600);
}
END_TEST

START_TEST(unknown_and_unsafe_names_are_refused)
{
    static const char *const bad[] = { "", "Nowhere/Atlantis", "../etc/passwd", "/etc/passwd",
                                       "America/New York", "zone.tab", "America",
                                       "Europe/../Europe/London" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(kmtz_get(bad[i]) == NULL, "%s", bad[i]);
    ck_assert_ptr_null(kmtz_get(NULL));
    /* the same table every time */
    ck_assert_ptr_eq(kmtz_get("Asia/Tokyo"), kmtz_get("Asia/Tokyo"));
}
END_TEST

static Suite *
tz_suite(void)
{
    Suite *s = suite_create("tz");
    TCase *tc = tcase_create("zones");

    tcase_add_loop_test(tc, offsets_match_the_c_library_for_a_century, 0, (int)NZONES);
    tcase_add_loop_test(tc, wall_times_map_back_as_mktime_does_away_from_shifts, 0,
                        (int)NZONES);
    tcase_add_test(tc, skipped_and_repeated_wall_times);
    tcase_add_test(tc, unknown_and_unsafe_names_are_refused);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tz_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
