/* check_tier.c — Klaviyo's rate tiers: which tier a request is, the windows of each tier
 * under RATE_LIMIT_SCALE, the one transit margin, and the buckets a request is charged to. */
#include "tier.h"

#include "util.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* (moved from check_kl) */
START_TEST(every_endpoint_maps_to_its_klaviyo_tier)
{
    ck_assert_int_eq(kmtier_of("POST", "/api/campaign-values-reports/"), KMT_REPORTS);
    ck_assert_int_eq(kmtier_of("POST", "/api/flow-values-reports/"), KMT_REPORTS);
    ck_assert_int_eq(kmtier_of("POST", "/api/flow-series-reports/?page_cursor=x"), KMT_REPORTS);
    ck_assert_int_eq(kmtier_of("POST", "/api/metric-aggregates/"), KMT_S);
    ck_assert_int_eq(kmtier_of("GET", "/api/flows/?page%5Bsize%5D=5"), KMT_S);
    ck_assert_int_eq(kmtier_of("GET", "/api/flows/XVTP5Q/flow-actions/"), KMT_S);
    ck_assert_int_eq(kmtier_of("GET", "/api/flow-actions/87316675/flow-messages/"), KMT_S);
    ck_assert_int_eq(kmtier_of("GET", "/api/flow-messages/RpiBBj/"), KMT_S);
    ck_assert_int_eq(kmtier_of("GET", "/api/campaigns/?filter=x"), KMT_M);
    ck_assert_int_eq(kmtier_of("GET", "/api/metrics/"), KMT_M);
    ck_assert_int_eq(kmtier_of("GET", "/api/lists/"), KMT_L);
    ck_assert_int_eq(kmtier_of("GET", "/api/lists/Y6nRLr/"), KMT_L);
    ck_assert_int_eq(kmtier_of("GET",
                               "/api/lists/Y6nRLr/?additional-fields%5Blist%5D=profile_count"),
                     KMT_XS);
    ck_assert_int_eq(kmtier_of("GET", "/api/lists/Y6nRLr?additional-fields[list]=profile_count"),
                     KMT_XS);
    ck_assert_int_eq(kmtier_of("GET", "/api/accounts/"), KMT_XS);
    ck_assert_str_eq(kmtier_name(KMT_REPORTS), "reports");
    ck_assert_str_eq(kmtier_name(KMT_L), "L");
}
END_TEST

START_TEST(rate_limit_scale_shrinks_every_window)
{
    kmlimit l;

    unsetenv("RATE_LIMIT_SCALE");
    kmtier_limit(KMT_REPORTS, &l);
    ck_assert_int_eq(l.nwin, 3);
    ck_assert_int_eq(l.win[0].window_ms, 1000);
    ck_assert_int_eq(l.win[0].max, 1);
    ck_assert_int_eq(l.win[1].window_ms, 60000);
    ck_assert_int_eq(l.win[1].max, 2);
    ck_assert_int_eq(l.win[2].window_ms, 86400000);
    ck_assert_int_eq(l.win[2].max, 225);
    setenv("RATE_LIMIT_SCALE", "0.5", 1);
    kmtier_limit(KMT_XS, &l);
    ck_assert_int_eq(l.nwin, 2);
    ck_assert_int_eq(l.win[0].window_ms, 500);
    ck_assert_int_eq(l.win[1].window_ms, 30000);
    ck_assert_int_eq(l.win[1].max, 15);
    setenv("RATE_LIMIT_SCALE", "7", 1);  /* out of range: ignored */
    kmtier_limit(KMT_L, &l);
    ck_assert_int_eq(l.win[1].window_ms, 60000);
    ck_assert_int_eq(l.win[1].max, 700);
    unsetenv("RATE_LIMIT_SCALE");
}
END_TEST

/* The one margin (tier.h): every charged window is Klaviyo's plus 250 ms, for every tier and
 * window — 1.25 s for the per-second windows (what check_kl's
 * the_rate_windows_carry_the_transit_margin measures on the wire), 60.25 s for a minute, and
 * a day plus 250 ms for the 225/day report cap (not a day plus 1%, 24 h 14 min). The store
 * adds nothing (check_store). */
START_TEST(every_charged_window_is_klaviyos_plus_the_one_transit_margin)
{
    kmlimit pub, ch;

    ck_assert_int_eq(KMTIER_TRANSIT_MS, 250);
    unsetenv("RATE_LIMIT_SCALE");
    for (int t = 0; t < KMT_COUNT; t++) {
        kmtier_limit((kmtier)t, &pub);
        kmtier_charged((kmtier)t, 1.0, &ch);
        ck_assert_int_eq(ch.nwin, pub.nwin);
        for (int w = 0; w < ch.nwin; w++) {
            ck_assert_int_eq(ch.win[w].window_ms, pub.win[w].window_ms + 250);
            ck_assert_int_eq(ch.win[w].max, pub.win[w].max);
        }
        ck_assert_int_eq(ch.win[0].window_ms, 1250);
        ck_assert_int_eq(ch.win[1].window_ms, 60250);
    }
    kmtier_charged(KMT_REPORTS, 1.0, &ch);
    ck_assert_int_eq(ch.win[2].window_ms, 86400000 + 250);
    ck_assert_int_eq(ch.win[2].max, 225);
}
END_TEST

/* Network delays do not shrink with RATE_LIMIT_SCALE: the margin is added after scaling. */
START_TEST(the_margin_is_not_scaled)
{
    kmlimit ch;

    kmtier_charged(KMT_XS, 0.01, &ch);
    ck_assert_int_eq(ch.win[0].window_ms, 10 + 250);
    ck_assert_int_eq(ch.win[1].window_ms, 600 + 250);
}
END_TEST

START_TEST(a_request_is_charged_to_its_buckets_with_the_charged_windows)
{
    struct kmtier_bucket b[2];

    ck_assert_int_eq(kmtier_buckets(1.0, "acme", "POST", "/api/flow-values-reports/", b), 1);
    ck_assert_str_eq(b[0].name, "acme:flow-values-reports");
    ck_assert_int_eq(b[0].lim.nwin, 3);
    ck_assert_int_eq(b[0].lim.win[2].window_ms, 86400250);
    ck_assert_int_eq(kmtier_buckets(1.0, "acme", "GET", "/api/flows/", b), 1);
    ck_assert_str_eq(b[0].name, "acme:S");
    ck_assert_int_eq(b[0].lim.win[0].max, 3);
    /* a list size: the lists bucket first, then its own XS bucket */
    ck_assert_int_eq(kmtier_buckets(1.0, "acme", "GET",
                                    "/api/lists/AB12/?additional-fields%5blist%5d=profile_count",
                                    b), 2);
    ck_assert_str_eq(b[0].name, "acme:L");
    ck_assert_int_eq(b[0].lim.win[0].max, 75);
    ck_assert_str_eq(b[1].name, "acme:profile_count");
    ck_assert_int_eq(b[1].lim.win[0].max, 1);
    ck_assert_int_eq(b[1].lim.win[0].window_ms, 1250);
}
END_TEST

START_TEST(waits_are_told_in_whole_seconds_rounded_up)
{
    ck_assert_int_eq(kmtier_secs_up(0), 1);
    ck_assert_int_eq(kmtier_secs_up(1), 1);
    ck_assert_int_eq(kmtier_secs_up(1000), 1);
    ck_assert_int_eq(kmtier_secs_up(1001), 2);
    ck_assert_int_eq(kmtier_secs_up(INT64_MAX), INT32_MAX);
}
END_TEST

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Plans and budgets read the charged windows of a store and take nothing. */
START_TEST(plans_and_budgets_read_the_windows_without_taking)
{
    const char          *tmp = getenv("TMPDIR");
    char                 dir[256];
    kmstore_opts         o = { 0 };
    kmstore             *st = NULL;
    kmerr                err = { 0 };
    struct kmtier_bucket b[2];
    kmtier_budget        bud;
    int                  left = -1;
    int64_t              reset = -1, wait = 0;

    snprintf(dir, sizeof(dir), "%s/check_tier.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    o.dir = dir;
    ck_assert_int_eq(kmstore_open(&o, &st, &err), KM_OK);
    ck_assert_int_eq(kmtier_report_budget(st, 1.0, "acme", &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 225);
    ck_assert_int_eq(kmtier_buckets(1.0, "acme", "POST", "/api/flow-values-reports/", b), 1);
    ck_assert_int_eq(kmstore_take(st, b[0].name, &b[0].lim, &wait, &err), KM_OK);
    ck_assert_int_eq(kmtier_report_budget(st, 1.0, "acme", &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 224);
    ck_assert_int_gt(reset, 86400000 - 1000);
    ck_assert_int_le(reset, 86400250);
    ck_assert_int_eq(kmtier_budget_read(st, 1.0, "acme", &bud, &err), KM_OK);
    ck_assert_int_eq(bud.report_calls_used, 1);
    ck_assert_int_eq(bud.daily_report_cap, 225);
    /* one of two a minute is used on that endpoint: the tier is not free before 60.25 s */
    ck_assert_int_gt(bud.next_free_ms[KMT_REPORTS], 0);
    ck_assert_int_le(bud.next_free_ms[KMT_REPORTS], 1250);
    ck_assert_int_eq(bud.next_free_ms[KMT_L], 0);
    /* more than the daily cap can never fit; 224 still do, and planning took nothing */
    ck_assert_int_eq(kmtier_plan(st, 1.0, "acme", "POST", "/api/flow-values-reports/", 300, 0,
                                 &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
    ck_assert_int_eq(kmtier_plan(st, 1.0, "acme", "POST", "/api/flow-values-reports/", 224, 0,
                                 &err), KM_OK);
    ck_assert_int_eq(kmtier_report_budget(st, 1.0, "acme", &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 224);
    kmstore_close(st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
END_TEST

static Suite *
tier_suite(void)
{
    Suite *s = suite_create("tier");
    TCase *tc;

    tc = tcase_create("tiers");
    tcase_add_test(tc, every_endpoint_maps_to_its_klaviyo_tier);
    tcase_add_test(tc, rate_limit_scale_shrinks_every_window);
    suite_add_tcase(s, tc);

    tc = tcase_create("margin");
    tcase_add_test(tc, every_charged_window_is_klaviyos_plus_the_one_transit_margin);
    tcase_add_test(tc, the_margin_is_not_scaled);
    tcase_add_test(tc, a_request_is_charged_to_its_buckets_with_the_charged_windows);
    tcase_add_test(tc, waits_are_told_in_whole_seconds_rounded_up);
    suite_add_tcase(s, tc);

    tc = tcase_create("windows");
    tcase_add_test(tc, plans_and_budgets_read_the_windows_without_taking);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tier_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
