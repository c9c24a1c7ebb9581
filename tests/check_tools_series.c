/* check_tools_series.c — klaviyo_get_performance_over_time against the real simulator,
 * compared bucket by bucket with its ground truth (truth.h), never with the tool's own
 * numbers; and the planning of report calls against the account's budget.
 *
 * Processes: the simulator runs per TCase in the runner process (unchecked fixture); every
 * test resets it and builds its own service with a fresh store (toolfix.h).
 */
#include "json.h"
#include "kl.h"
#include "reg.h"
#include "store.h"
#include "toolfix.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "klaviyo_get_performance_over_time"
#define SERIES "POST /api/flow-series-reports"
#define VALUES "POST /api/campaign-values-reports"

static const char *const default_stats[] = {
    "recipients", "delivered", "opens_unique", "clicks_unique", "conversions", "conversion_value",
};
#define N_DEFAULT (sizeof(default_stats) / sizeof(default_stats[0]))

static kmrange
range(const char *a, const char *b)
{
    kmrange r = { toolfix_parse_day(a), toolfix_parse_day(b) };

    return r;
}

static json_object *
series_of(json_object *data, const char *k1, const char *v1, const char *k2, const char *v2,
          const char *k3, const char *v3)
{
    json_object *list = kmjson_get(data, "series");
    json_object *found = NULL;

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        json_object *g = kmjson_get(o, "groupings");
        const char  *a = kmjson_str(g, k1), *b = kmjson_str(g, k2);
        const char  *c = k3 ? kmjson_str(g, k3) : NULL;

        if (!a || strcmp(a, v1) != 0 || !b || strcmp(b, v2) != 0)
            continue;
        if (k3 && (!c || strcmp(c, v3) != 0))
            continue;
        ck_assert_msg(found == NULL, "series %s/%s appears twice", v1, v2);
        found = o;
    }
    return found;
}

/* A flow series equals truth: the same date_times, one series per truth row, and every
 * statistic of `stats` equal bucket by bucket. Returns the bucket count. */
static size_t
assert_flow_series(json_object *env, const char *acct, kmrange days, kminterval iv,
                   const char *only, const char *const *stats, size_t nstats)
{
    json_object           *data = kmjson_get(env, "data");
    json_object           *dts = kmjson_get(data, "date_times");
    struct simtruth_series s;
    char                   what[160];

    memset(&s, 0, sizeof(s));
    ck_assert_int_ge(simtruth_flow_series(toolfix_world(), acct, days, iv, only, &s), 0);
    ck_assert_str_eq(kmjson_str(data, "entity"), "flow");
    ck_assert_str_eq(kmjson_str(data, "interval"), kmdate_interval_name(iv));
    ck_assert_int_eq(json_object_array_length(dts), s.n_buckets);
    for (size_t k = 0; k < s.n_buckets; k++)
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dts, k)),
                         s.date_times[k]);
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "series")), s.n_rows);
    for (size_t i = 0; i < s.n_rows; i++) {
        const struct simtruth_series_row *row = &s.rows[i];
        json_object *o = series_of(data, "flow_id", row->flow_id, "flow_message_id",
                                   row->message_id, "send_channel",
                                   simdata_channel_name(row->channel));

        ck_assert_msg(o != NULL, "series of %s missing", row->message_id);
        for (size_t j = 0; j < nstats; j++) {
            json_object *arr = kmjson_path(o, "statistics", stats[j], NULL);

            ck_assert_int_eq(json_object_array_length(arr), s.n_buckets);
            for (size_t k = 0; k < s.n_buckets; k++) {
                snprintf(what, sizeof(what), "%s.%s[%zu]", row->message_id, stats[j], k);
                toolfix_assert_num(json_object_array_get_idx(arr, k),
                                   toolfix_stat(&row->buckets[k], stats[j]), what);
            }
        }
    }
    simtruth_series_free(&s);
    return json_object_array_length(dts);
}

/* --- flows: native series, chunked by the interval's limit ------------------------------- */

START_TEST(weekly_over_more_than_52_weeks_is_chunked_on_a_monday_and_equals_truth)
{
    /* 2024-03-06 is a Wednesday; 532 days need two weekly chunks */
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                        "\"interval\":\"weekly\",\"start_date\":\"2024-03-06\","
                                        "\"end_date\":\"2025-08-19\"}");

    ck_assert_int_eq(assert_flow_series(env, "acme", range("2024-03-06", "2025-08-19"),
                                        KMI_WEEKLY, NULL, default_stats, N_DEFAULT),
                     77);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 2);
    ck_assert(toolfix_has_warning(env, "2 consecutive chunks"));
    json_object_put(env);
}
END_TEST

START_TEST(daily_over_more_than_60_days_is_chunked_and_equals_truth)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                        "\"interval\":\"daily\",\"start_date\":\"2025-01-10\","
                                        "\"end_date\":\"2025-04-30\"}");

    ck_assert_int_eq(assert_flow_series(env, "acme", range("2025-01-10", "2025-04-30"),
                                        KMI_DAILY, NULL, default_stats, N_DEFAULT),
                     111);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 2);
    json_object_put(env);
}
END_TEST

START_TEST(monthly_over_a_year_is_chunked_on_the_first_and_equals_truth)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"nosms\",\"entity\":\"flow\","
                                        "\"interval\":\"monthly\",\"start_date\":\"2024-01-15\","
                                        "\"end_date\":\"2025-03-10\"}");

    ck_assert_int_eq(assert_flow_series(env, "nosms", range("2024-01-15", "2025-03-10"),
                                        KMI_MONTHLY, NULL, default_stats, N_DEFAULT),
                     15);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 2);
    json_object_put(env);
}
END_TEST

START_TEST(hourly_over_nine_days_is_chunked_by_seven_days_and_equals_truth)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"kiwi\",\"entity\":\"flow\","
                                        "\"interval\":\"hourly\",\"start_date\":\"2025-04-01\","
                                        "\"end_date\":\"2025-04-09\"}");

    /* Auckland leaves daylight saving on 2025-04-06: that day has 25 local hours, but the
     * simulator (like the truth) counts wall-clock hours, 24 a day */
    ck_assert_int_eq(assert_flow_series(env, "kiwi", range("2025-04-01", "2025-04-09"),
                                        KMI_HOURLY, NULL, default_stats, N_DEFAULT),
                     9 * 24);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 2);
    json_object_put(env);
}
END_TEST

START_TEST(the_default_interval_is_weekly_and_one_flow_with_rates_passes_through_verbatim)
{
    static const char *const stats[] = { "delivered", "open_rate", "click_rate",
                                         "conversion_value" };
    struct simtruth_row     *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2025-03-01", "2025-03-31"),
                                  NULL, &rows);
    char                     args[400];
    json_object             *env;

    ck_assert_int_gt(n, 0);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"flow\",\"entity_id\":\"%s\","
             "\"start_date\":\"2025-03-01\",\"end_date\":\"2025-03-31\",\"statistics\":"
             "[\"delivered\",\"open_rate\",\"click_rate\",\"conversion_value\"]}",
             rows[0].entity_id);
    env = toolfix_ok(TOOL, args);
    assert_flow_series(env, "acme", range("2025-03-01", "2025-03-31"), KMI_WEEKLY,
                       rows[0].entity_id, stats, 4);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 1);
    free(rows);
    json_object_put(env);
}
END_TEST

/* --- campaigns: one values report per bucket --------------------------------------------- */

/* A stitched campaign series equals truth: per bucket, the campaign-values truth over that
 * bucket's days. Returns the number of series. */
static size_t
assert_campaign_series(json_object *env, const char *acct, kmrange days, kminterval iv,
                       const char *only)
{
    json_object  *data = kmjson_get(env, "data");
    json_object  *dts = kmjson_get(data, "date_times");
    size_t        nb = kmdate_buckets(days, iv, NULL, 0), nseries = 0;
    kmday        *starts = km_xcalloc(nb, sizeof(*starts));
    json_object  *seen = json_object_new_object();
    char          what[160];

    kmdate_buckets(days, iv, starts, nb);
    ck_assert_str_eq(kmjson_str(data, "entity"), "campaign");
    ck_assert_int_eq(json_object_array_length(dts), nb);
    for (size_t b = 0; b < nb; b++) {
        char want[24];

        snprintf(want, sizeof(want), "%sT00:00:00", toolfix_day(0, starts[b]));
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dts, b)), want);
    }
    /* every campaign with activity in some bucket, with every bucket's truth */
    for (size_t b = 0; b < nb; b++) {
        kmrange              br = { starts[b], b + 1 < nb ? starts[b + 1] - 1 : days.end };
        struct simtruth_row *rows = NULL;
        long n = simtruth_campaign_values(toolfix_world(), acct, br, only, &rows);

        for (long i = 0; i < n; i++) {
            json_object *o = series_of(data, "campaign_id", rows[i].entity_id, "send_channel",
                                       simdata_channel_name(rows[i].channel), NULL, NULL);

            ck_assert_msg(o != NULL, "series of campaign %s missing", rows[i].entity_id);
            if (!kmjson_get(seen, rows[i].entity_id)) {
                json_object_object_add(seen, rows[i].entity_id, json_object_new_int(1));
                nseries++;
            }
            for (size_t j = 0; j < N_DEFAULT; j++) {
                json_object *arr = kmjson_path(o, "statistics", default_stats[j], NULL);

                ck_assert_int_eq(json_object_array_length(arr), nb);
                snprintf(what, sizeof(what), "%s.%s[%zu]", rows[i].entity_id, default_stats[j],
                         b);
                toolfix_assert_num(json_object_array_get_idx(arr, b),
                                   toolfix_stat(&rows[i].counts, default_stats[j]), what);
            }
        }
        /* a campaign without a row in this bucket has 0.0 there */
        for (size_t i = 0; i < json_object_array_length(kmjson_get(data, "series")); i++) {
            json_object *o = json_object_array_get_idx(kmjson_get(data, "series"), i);
            const char  *id = kmjson_str(kmjson_get(o, "groupings"), "campaign_id");
            int          has = 0;

            for (long k = 0; k < n; k++)
                has |= strcmp(rows[k].entity_id, id) == 0;
            if (!has) {
                json_object *arr = kmjson_path(o, "statistics", "recipients", NULL);

                snprintf(what, sizeof(what), "%s.recipients[%zu]", id, b);
                toolfix_assert_num(json_object_array_get_idx(arr, b), 0.0, what);
            }
        }
        free(rows);
    }
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "series")), nseries);
    json_object_put(seen);
    free(starts);
    return nseries;
}

struct progress {
    int reports, last_done, last_total;
};

static void
on_progress(void *arg, int done, int total)
{
    struct progress *p = arg;

    p->reports++;
    p->last_done = done;
    p->last_total = total;
}

START_TEST(a_monthly_campaign_trend_is_one_report_per_bucket_equal_to_truth)
{
    struct progress p = { 0 };
    int             status = 0;
    json_object    *env = toolfix_call_progress(TOOL, "{\"account\":\"acme\",\"entity\":"
                                                      "\"campaign\",\"interval\":\"monthly\","
                                                      "\"start_date\":\"2025-01-15\","
                                                      "\"end_date\":\"2025-04-10\"}",
                                                on_progress, &p, &status);
    kmerr           err = { 0 };

    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(kmreg_validate_schema(kmreg_find(TOOL)->output, kmjson_get(env, "data"),
                                           "data", &err),
                     KM_OK);
    ck_assert_int_gt(assert_campaign_series(env, "acme", range("2025-01-15", "2025-04-10"),
                                            KMI_MONTHLY, NULL),
                     2);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 4);
    ck_assert(toolfix_has_warning(env, "stitched"));
    ck_assert(toolfix_has_warning(env, "attributed by event time"));
    /* progress: call k of n, ending with n of n over at least the four report calls */
    ck_assert_int_ge(p.reports, 4);
    ck_assert_int_ge(p.last_total, 4);
    ck_assert_int_eq(p.last_done, p.last_total);
    kmerr_clear(&err);
    json_object_put(env);
}
END_TEST

START_TEST(a_weekly_trend_of_one_campaign_has_that_campaigns_series_only)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_campaign_values(toolfix_world(), "acme", range("2025-05-05", "2025-06-01"),
                                      NULL, &rows);
    char                 args[300];
    json_object         *env;

    ck_assert_int_gt(n, 0);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"campaign\",\"entity_id\":"
             "\"%s\",\"start_date\":\"2025-05-05\",\"end_date\":\"2025-06-01\"}",
             rows[0].entity_id);
    env = toolfix_ok(TOOL, args);
    ck_assert_int_eq(assert_campaign_series(env, "acme", range("2025-05-05", "2025-06-01"),
                                            KMI_WEEKLY, rows[0].entity_id),
                     1);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 4);
    free(rows);
    json_object_put(env);
}
END_TEST

/* --- invalid arguments ------------------------------------------------------------------- */

static const struct {
    const char *args, *needle;
} bad[] = {
    /* the campaign-trend rules */
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"interval\":\"daily\","
      "\"start_date\":\"2025-01-01\",\"end_date\":\"2025-02-23\"}", "54 buckets" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"interval\":\"hourly\","
      "\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-02\"}", "hourly" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"statistics\":[\"delivered\",\"open_rate\",\"click_rate\"]}", "open_rate, click_rate" },
    /* the schema */
    { "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}", "entity" },
    { "{\"account\":\"acme\",\"entity\":\"list\",\"timeframe\":\"last_30_days\"}", "entity" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"interval\":\"yearly\","
      "\"timeframe\":\"last_30_days\"}", "interval" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"statistics\":[\"revenue\"]}", "statistics" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"statistics\":[]}", "statistics" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"entity_id\":\"X Y\"}", "entity_id" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\",\"bucket\":1}",
      "bucket" },
    /* shaping (issue 11): a ranking statistic the series would not carry */
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"statistics\":[\"opens\"],\"sort_by\":\"clicks\"}", "sort_by" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\",\"limit\":-2}",
      "limit" },
    /* the window */
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_7_days\","
      "\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}", "not both" },
    { "{\"account\":\"acme\",\"entity\":\"flow\"}", "window is required" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-01-01\"}", "end_date" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-13-01\","
      "\"end_date\":\"2025-12-31\"}", "start_date" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-02-01\","
      "\"end_date\":\"2025-01-31\"}", "before" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2018-01-01\","
      "\"end_date\":\"2025-01-31\"}", "5 years" },
};

START_TEST(invalid_arguments_are_refused_before_any_report_call)
{
    json_object *env = toolfix_fail(TOOL, bad[_i].args, KM_INVALID_ARGUMENT, bad[_i].needle);

    ck_assert_int_eq(toolfix_sim_calls(SERIES), 0);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 0);
    json_object_put(env);
}
END_TEST

/* --- planning against the budget --------------------------------------------------------- */

/* The client's windows at their real length (RATE_LIMIT_SCALE 1): the plan is judged against
 * Klaviyo's real 2-a-minute, 225-a-day report limits. */
static void
up_real_limits(void)
{
    toolfix_rate_scale = "1";
    toolfix_up();
}

/* The simulator and the client scaled alike (a minute is 3 s). */
static void
sim_up_scaled(void)
{
    toolfix_sim_up_scaled("0.05");
}

static void
up_scaled(void)
{
    toolfix_rate_scale = "0.05";
    toolfix_up();
}

START_TEST(a_trend_needing_more_report_calls_than_remain_today_fails_at_once)
{
    kmlimit      daily = { 0 }, full;
    kmerr        err = { 0 };
    json_object *env, *e;
    int64_t      wait = 0;

    /* spend 223 of acme's 225 campaign-values reports today, straight in the shared store
     * (the client charges "<account>:<endpoint>"; only the daily window is recorded here so
     * the burst window does not pace the set-up) */
    kmkl_tier_limit(KMT_REPORTS, &full);
    daily.nwin = 1;
    daily.win[0] = full.win[2];
    for (int i = 0; i < 223; i++)
        ck_assert_int_eq(kmstore_take(kmsvc_store(toolfix_svc()), "acme:campaign-values-reports",
                                      &daily, &wait, &err),
                         KM_OK);

    env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\",\"interval\":"
                             "\"monthly\",\"start_date\":\"2025-01-01\","
                             "\"end_date\":\"2025-04-30\"}",
                       KM_RATE_LIMITED, "budget");
    e = kmjson_get(env, "error");
    ck_assert_int_eq(json_object_get_int(kmjson_path(e, "details", "calls_needed", NULL)), 4);
    ck_assert_int_gt(json_object_get_int(kmjson_get(e, "retry_after_s")), 0);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 0);
    kmerr_clear(&err);
    json_object_put(env);
}
END_TEST

START_TEST(a_trend_that_cannot_finish_before_the_deadline_fails_at_once)
{
    /* 40 weekly buckets at 2 reports a minute need about 20 minutes; the deadline is 10 */
    json_object *env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                          "\"interval\":\"weekly\",\"start_date\":"
                                          "\"2025-01-06\",\"end_date\":\"2025-10-12\"}",
                                    KM_RATE_LIMITED, "40");

    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "error", "details", "calls_needed",
                                                     NULL)),
                     40);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 0);
    json_object_put(env);
}
END_TEST

START_TEST(an_hourly_series_over_five_years_needs_more_than_a_days_budget)
{
    /* 1826 days in 7-day chunks: 261 series reports, more than the 225 of a day */
    json_object *env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                          "\"interval\":\"hourly\",\"start_date\":"
                                          "\"2021-01-01\",\"end_date\":\"2025-12-31\"}",
                                    KM_RATE_LIMITED, "in a day");

    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "error", "details", "calls_needed",
                                                     NULL)),
                     261);
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 0);
    json_object_put(env);
}
END_TEST

START_TEST(a_planned_trend_waits_for_its_slots_and_klaviyo_never_throttles_it)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                        "\"interval\":\"weekly\",\"start_date\":\"2025-03-03\","
                                        "\"end_date\":\"2025-03-30\"}");
    json_object *stats = NULL;

    assert_campaign_series(env, "acme", range("2025-03-03", "2025-03-30"), KMI_WEEKLY, NULL);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 4);
    ck_assert_int_eq(kmfix_http_json(toolfix_sim.url, "GET", "/__sim/stats", NULL, &stats), 200);
    ck_assert_int_eq(json_object_get_int(kmjson_get(stats, "total_throttled")), 0);
    json_object_put(stats);
    json_object_put(env);
}
END_TEST

static TCase *
tcase(const char *name, void (*sim_up)(void), void (*up)(void))
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, up, toolfix_down);
    tcase_set_timeout(tc, 180);
    return tc;
}

static Suite *
suite(void)
{
    Suite *s = suite_create("tools_series");
    TCase *tc;

    tc = tcase("flow series", toolfix_sim_up, toolfix_up);
    tcase_add_test(tc, weekly_over_more_than_52_weeks_is_chunked_on_a_monday_and_equals_truth);
    tcase_add_test(tc, daily_over_more_than_60_days_is_chunked_and_equals_truth);
    tcase_add_test(tc, monthly_over_a_year_is_chunked_on_the_first_and_equals_truth);
    tcase_add_test(tc, hourly_over_nine_days_is_chunked_by_seven_days_and_equals_truth);
    tcase_add_test(tc,
                   the_default_interval_is_weekly_and_one_flow_with_rates_passes_through_verbatim);
    suite_add_tcase(s, tc);

    tc = tcase("campaign trends", toolfix_sim_up, toolfix_up);
    tcase_add_test(tc, a_monthly_campaign_trend_is_one_report_per_bucket_equal_to_truth);
    tcase_add_test(tc, a_weekly_trend_of_one_campaign_has_that_campaigns_series_only);
    suite_add_tcase(s, tc);

    tc = tcase("invalid arguments", toolfix_sim_up, toolfix_up);
    tcase_add_loop_test(tc, invalid_arguments_are_refused_before_any_report_call, 0,
                        (int)(sizeof(bad) / sizeof(bad[0])));
    suite_add_tcase(s, tc);

    tc = tcase("planning", sim_up_scaled, up_real_limits);
    tcase_add_test(tc, a_trend_needing_more_report_calls_than_remain_today_fails_at_once);
    tcase_add_test(tc, a_trend_that_cannot_finish_before_the_deadline_fails_at_once);
    tcase_add_test(tc, an_hourly_series_over_five_years_needs_more_than_a_days_budget);
    suite_add_tcase(s, tc);

    tc = tcase("pacing", sim_up_scaled, up_scaled);
    tcase_add_test(tc, a_planned_trend_waits_for_its_slots_and_klaviyo_never_throttles_it);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
