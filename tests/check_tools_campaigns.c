/* check_tools_campaigns.c — klaviyo_get_campaign_performance against the real simulator,
 * compared with the simulator's ground truth (truth.h), never with the tool's own numbers.
 *
 * Processes: the simulator runs per TCase in the runner process (unchecked fixture); every
 * test resets it and builds its own service with a fresh store (toolfix.h).
 */
#include "json.h"
#include "reg.h"
#include "toolfix.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "klaviyo_get_campaign_performance"
#define REPORTS "POST /api/campaign-values-reports"
#define LOOKUPS "GET /api/campaigns/{id}"

static kmrange
range(const char *a, const char *b)
{
    kmrange r = { toolfix_parse_day(a), toolfix_parse_day(b) };

    return r;
}

static json_object *
row_of(json_object *data, const char *id)
{
    json_object *list = kmjson_get(data, "campaigns");
    json_object *found = NULL;

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        const char  *cid = kmjson_str(o, "campaign_id");

        if (cid && strcmp(cid, id) == 0) {
            ck_assert_msg(found == NULL, "campaign %s appears twice", id);
            found = o;
        }
    }
    return found;
}

/* Every campaign row equals truth over `days` (one row per campaign, no extra rows); when
 * `names` is 0 each campaign_name is the send channel. Returns the number of rows. */
static long
assert_equals_truth(json_object *env, const char *acct, kmrange days, const char *only,
                    int names)
{
    json_object         *data = kmjson_get(env, "data");
    struct simtruth_row *rows = NULL;
    long                 n = simtruth_campaign_values(toolfix_world(), acct, days, only, &rows);

    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "campaign_count")), n);
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "campaigns")), n);
    for (long i = 0; i < n; i++) {
        json_object *o = row_of(data, rows[i].entity_id);

        ck_assert_msg(o != NULL, "campaign %s missing", rows[i].entity_id);
        toolfix_assert_block(o, &rows[i].counts, rows[i].entity_id);
        if (!names)
            ck_assert_str_eq(kmjson_str(o, "campaign_name"),
                             simdata_channel_name(rows[i].channel));
    }
    free(rows);
    return n;
}

static const char *
period_field(json_object *env, const char *f)
{
    return kmjson_str(kmjson_path(env, "metadata", "period", NULL), f);
}

/* --- windows and numbers ----------------------------------------------------------------- */

START_TEST(an_explicit_window_gives_one_row_per_campaign_equal_to_truth)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                                        "\"end_date\":\"2025-03-31\"}");

    ck_assert_int_gt(assert_equals_truth(env, "acme", range("2025-03-01", "2025-03-31"), NULL,
                                         0),
                     1);
    ck_assert_str_eq(period_field(env, "start_date"), "2025-03-01");
    ck_assert_str_eq(period_field(env, "end_date"), "2025-03-31");
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "metadata"), "currency"), "USD");
    ck_assert(toolfix_has_warning(env, "attributed by event time"));
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 1);
    json_object_put(env);
}
END_TEST

START_TEST(last_month_is_the_accounts_previous_calendar_month_and_equals_truth)
{
    kmday        t0 = toolfix_today("acme"), t1;
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"timeframe\":\"last_month\"}");
    kmrange      want;
    int          y, m, d;

    t1 = toolfix_today("acme");
    kmdate_to_ymd(t1, &y, &m, &d);
    if (t0 != t1 && d == 1)
        kmdate_to_ymd(t0, &y, &m, &d);  /* the month turned during the call: the tool saw t0 */
    m -= 1;
    if (m == 0) {
        m = 12;
        y -= 1;
    }
    want.start = kmdate_from_ymd(y, m, 1);
    want.end = kmdate_from_ymd(y, m, kmdate_days_in_month(y, m));
    ck_assert_str_eq(period_field(env, "start_date"), toolfix_day(0, want.start));
    ck_assert_str_eq(period_field(env, "end_date"), toolfix_day(1, want.end));
    assert_equals_truth(env, "acme", want, NULL, 0);
    json_object_put(env);
}
END_TEST

START_TEST(the_whole_last_day_counts_up_to_its_final_hour)
{
    const simdata       *sd = toolfix_world();
    struct simtruth_row *late = NULL, *all = NULL, *cut = NULL;
    struct simcounts     a, c;
    kmday                d;
    long                 n = 0;
    char                 args[200];
    json_object         *env;

    /* a day whose last local hour (23:00-23:59) carries campaign activity */
    for (d = toolfix_parse_day("2025-03-01"); d < toolfix_parse_day("2025-12-31"); d++) {
        n = simtruth_campaign_values_hours(sd, "acme", simdata_hour(d, 23), simdata_hour(d, 23),
                                           NULL, &late);
        free(late);
        late = NULL;
        if (n > 0)
            break;
    }
    ck_assert_msg(n > 0, "no campaign activity at 23:00 in 2025");
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"start_date\":\"%s\",\"end_date\":\"%s\"}",
             toolfix_day(0, d - 6), toolfix_day(1, d));
    env = toolfix_ok(TOOL, args);
    assert_equals_truth(env, "acme", (kmrange){ d - 6, d }, NULL, 0);

    /* and the last hour matters: without it (or with only the first hour of the last day, as
     * the seed's end date gave) the numbers are different */
    n = simtruth_campaign_values(sd, "acme", (kmrange){ d - 6, d }, NULL, &all);
    simtruth_sum(all, (size_t)n, &a);
    n = simtruth_campaign_values_hours(sd, "acme", simdata_hour(d - 6, 0), simdata_hour(d, 22),
                                       NULL, &cut);
    simtruth_sum(cut, (size_t)n, &c);
    ck_assert(memcmp(&a, &c, sizeof(a)) != 0);
    free(all);
    free(cut);
    json_object_put(env);
}
END_TEST

START_TEST(a_range_across_leap_years_is_chunked_and_equals_truth_over_the_whole_range)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"start_date\":\"2023-06-01\","
                                        "\"end_date\":\"2025-06-15\"}");

    ck_assert_int_gt(assert_equals_truth(env, "acme", range("2023-06-01", "2025-06-15"), NULL,
                                         0),
                     10);
    /* 746 days: 365 + 365 + 16 */
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 3);
    ck_assert(toolfix_has_warning(env, "3 consecutive chunks"));
    ck_assert_str_eq(period_field(env, "start_date"), "2023-06-01");
    ck_assert_str_eq(period_field(env, "end_date"), "2025-06-15");
    json_object_put(env);
}
END_TEST

START_TEST(the_campaign_argument_narrows_to_that_campaign)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_campaign_values(toolfix_world(), "acme", range("2025-03-01", "2025-03-31"),
                                      NULL, &rows);
    char         args[300];
    json_object *env;

    ck_assert_int_gt(n, 1);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
             "\"end_date\":\"2025-03-31\",\"campaign\":\"%s\"}", rows[n - 1].entity_id);
    env = toolfix_ok(TOOL, args);
    ck_assert_int_eq(assert_equals_truth(env, "acme", range("2025-03-01", "2025-03-31"),
                                         rows[n - 1].entity_id, 0),
                     1);
    free(rows);
    json_object_put(env);
}
END_TEST

/* --- names ------------------------------------------------------------------------------- */

START_TEST(resolved_names_are_the_campaigns_names_one_lookup_per_campaign)
{
    const struct simacct *a = simdata_account_by_name(toolfix_world(), "acme");
    json_object          *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"start_date\":"
                                                 "\"2025-04-01\",\"end_date\":\"2025-04-30\","
                                                 "\"resolve_campaign_names\":true}");
    json_object          *list = kmjson_path(env, "data", "campaigns", NULL);
    long n = assert_equals_truth(env, "acme", range("2025-04-01", "2025-04-30"), NULL, 1);

    ck_assert_int_gt(n, 1);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object              *o = json_object_array_get_idx(list, i);
        const struct simcampaign *c = simdata_campaign(a, kmjson_str(o, "campaign_id"));

        ck_assert_ptr_nonnull(c);
        ck_assert_str_eq(kmjson_str(o, "campaign_name"), c->name);
    }
    ck_assert_int_eq(toolfix_sim_calls(LOOKUPS), (int)n);
    json_object_put(env);
}
END_TEST

START_TEST(a_failed_name_lookup_keeps_the_channel_and_the_metrics)
{
    const struct simacct *a = simdata_account_by_name(toolfix_world(), "acme");
    struct simtruth_row  *rows = NULL;
    long n = simtruth_campaign_values(toolfix_world(), "acme", range("2025-04-01", "2025-04-30"),
                                      NULL, &rows);
    char                  path[80];
    json_object          *env, *list;
    int                   fallback = 0;

    ck_assert_int_gt(n, 2);
    /* every attempt (first try and retries) at the first campaign's lookup fails */
    snprintf(path, sizeof(path), "/api/campaigns/%s", rows[0].entity_id);
    toolfix_fault("GET", path, 20, 500);
    env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"start_date\":\"2025-04-01\","
                           "\"end_date\":\"2025-04-30\",\"resolve_campaign_names\":true}");
    assert_equals_truth(env, "acme", range("2025-04-01", "2025-04-30"), NULL, 1);
    list = kmjson_path(env, "data", "campaigns", NULL);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object              *o = json_object_array_get_idx(list, i);
        const char               *id = kmjson_str(o, "campaign_id");
        const struct simcampaign *c = simdata_campaign(a, id);

        if (strcmp(id, rows[0].entity_id) == 0) {
            ck_assert_str_eq(kmjson_str(o, "campaign_name"), simdata_channel_name(c->channel));
            fallback++;
        } else {
            ck_assert_str_eq(kmjson_str(o, "campaign_name"), c->name);
        }
    }
    ck_assert_int_eq(fallback, 1);
    ck_assert(toolfix_has_warning(env, "campaign name lookups failed"));
    free(rows);
    json_object_put(env);
}
END_TEST

/* --- accounts ---------------------------------------------------------------------------- */

START_TEST(the_account_without_sms_has_only_email_rows_equal_to_truth)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"nosms\",\"start_date\":\"2025-01-01\","
                                        "\"end_date\":\"2025-03-31\"}");
    json_object *list = kmjson_path(env, "data", "campaigns", NULL);

    ck_assert_int_gt(assert_equals_truth(env, "nosms", range("2025-01-01", "2025-03-31"), NULL,
                                         0),
                     0);
    for (size_t i = 0; i < json_object_array_length(list); i++)
        ck_assert_str_eq(kmjson_str(json_object_array_get_idx(list, i), "campaign_name"),
                         "email");
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "metadata"), "currency"), "GBP");
    json_object_put(env);
}
END_TEST

START_TEST(last_30_days_ends_on_the_accounts_yesterday_far_from_utc)
{
    kmday        t0 = toolfix_today("kiwi"), t1, y;
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"kiwi\",\"timeframe\":\"last_30_days\","
                                        "\"resolve_campaign_names\":false}");

    t1 = toolfix_today("kiwi");
    y = toolfix_parse_day(period_field(env, "end_date"));
    ck_assert_msg(y == t0 - 1 || y == t1 - 1, "last_30_days ended on %s", toolfix_day(0, y));
    ck_assert_str_eq(period_field(env, "start_date"), toolfix_day(0, y - 29));
    ck_assert_int_gt(assert_equals_truth(env, "kiwi", (kmrange){ y - 29, y }, NULL, 0), 0);
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "metadata"), "currency"), "NZD");
    json_object_put(env);
}
END_TEST

/* --- invalid arguments ------------------------------------------------------------------- */

static const struct {
    const char *args, *needle;
} bad[] = {
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"start_date\":\"2025-01-01\","
      "\"end_date\":\"2025-01-31\"}", "not both" },
    { "{\"account\":\"acme\"}", "window is required" },
    { "{\"account\":\"acme\",\"start_date\":\"2025-01-01\"}", "end_date" },
    { "{\"account\":\"acme\",\"end_date\":\"2025-01-01\"}", "start_date" },
    { "{\"account\":\"acme\",\"start_date\":\"2025-02-30\",\"end_date\":\"2025-03-31\"}",
      "start_date" },
    { "{\"account\":\"acme\",\"start_date\":\"2025-1-01\",\"end_date\":\"2025-03-31\"}",
      "start_date" },
    { "{\"account\":\"acme\",\"start_date\":\"2025-03-31\",\"end_date\":\"2025-03-01\"}",
      "before" },
    { "{\"account\":\"acme\",\"start_date\":\"2019-01-01\",\"end_date\":\"2025-01-31\"}",
      "5 years" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"top\":5}", "top" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"limit\":-1}", "limit" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"limit\":10001}", "limit" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"sort_by\":\"revenue\"}",
      "sort_by" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_week\"}", "timeframe" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"campaign\":\"01KB-3RJ\"}",
      "campaign" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"resolve_campaign_names\":\"yes\"}",
      "resolve_campaign_names" },
    { "{\"account\":\"Acme!\",\"timeframe\":\"last_7_days\"}", "account" },
};

START_TEST(invalid_arguments_are_refused_before_any_report_call)
{
    json_object *env = toolfix_fail(TOOL, bad[_i].args, KM_INVALID_ARGUMENT, bad[_i].needle);

    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 0);
    json_object_put(env);
}
END_TEST

START_TEST(several_accounts_need_an_account_and_an_unknown_one_is_named)
{
    json_object *env = toolfix_fail(TOOL, "{\"timeframe\":\"last_7_days\"}",
                                    KM_INVALID_ARGUMENT, "account");

    json_object_put(env);
    env = toolfix_fail(TOOL, "{\"account\":\"nope\",\"timeframe\":\"last_7_days\"}",
                       KM_UNKNOWN_ACCOUNT, NULL);
    json_object_put(env);
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 0);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("tools_campaigns");
    TCase *tc;

    tc = tcase_create("windows and numbers");
    tcase_add_unchecked_fixture(tc, toolfix_sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, toolfix_up, toolfix_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, an_explicit_window_gives_one_row_per_campaign_equal_to_truth);
    tcase_add_test(tc, last_month_is_the_accounts_previous_calendar_month_and_equals_truth);
    tcase_add_test(tc, the_whole_last_day_counts_up_to_its_final_hour);
    tcase_add_test(tc, a_range_across_leap_years_is_chunked_and_equals_truth_over_the_whole_range);
    tcase_add_test(tc, the_campaign_argument_narrows_to_that_campaign);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_unchecked_fixture(tc, toolfix_sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, toolfix_up, toolfix_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, resolved_names_are_the_campaigns_names_one_lookup_per_campaign);
    tcase_add_test(tc, a_failed_name_lookup_keeps_the_channel_and_the_metrics);
    suite_add_tcase(s, tc);

    tc = tcase_create("accounts");
    tcase_add_unchecked_fixture(tc, toolfix_sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, toolfix_up, toolfix_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, the_account_without_sms_has_only_email_rows_equal_to_truth);
    tcase_add_test(tc, last_30_days_ends_on_the_accounts_yesterday_far_from_utc);
    suite_add_tcase(s, tc);

    tc = tcase_create("invalid arguments");
    tcase_add_unchecked_fixture(tc, toolfix_sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, toolfix_up, toolfix_down);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, invalid_arguments_are_refused_before_any_report_call, 0,
                        (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, several_accounts_need_an_account_and_an_unknown_one_is_named);
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
