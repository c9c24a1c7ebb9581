/* check_tools_compare.c — klaviyo_compare_periods against the real simulator, compared with
 * its ground truth (truth.h): period totals, entity counts and every delta are computed here
 * from the truth's counts, never taken from the tool.
 *
 * Processes: the simulator runs per TCase in the runner process (unchecked fixture); every
 * test resets it and builds its own service with a fresh store (toolfix.h).
 */
#include "json.h"
#include "reg.h"
#include "toolfix.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOOL "klaviyo_compare_periods"
#define CAMPAIGN_REPORTS "POST /api/campaign-values-reports"
#define FLOW_REPORTS "POST /api/flow-values-reports"

static kmrange
range(const char *a, const char *b)
{
    kmrange r = { toolfix_parse_day(a), toolfix_parse_day(b) };

    return r;
}

/* The truth of one period: summed counts, the number of report rows (the seed's entity
 * count: campaign or flow message x channel) and of distinct entities with rows. */
struct expect {
    struct simcounts sum;
    int              entities;
    int              distinct;
};

static struct expect
truth_of(const char *entity, const char *acct, kmrange days, const char *only)
{
    struct simtruth_row *rows = NULL;
    struct expect        e;
    long                 n;

    memset(&e, 0, sizeof(e));
    if (strcmp(entity, "flow") == 0)
        n = simtruth_flow_values(toolfix_world(), acct, days, only, &rows);
    else
        n = simtruth_campaign_values(toolfix_world(), acct, days, only, &rows);
    ck_assert_int_ge(n, 0);
    simtruth_sum(rows, (size_t)n, &e.sum);
    e.entities = (int)n;
    for (long i = 0; i < n; i++) {
        int first = 1;

        for (long j = 0; j < i; j++)
            first &= strcmp(rows[j].entity_id, rows[i].entity_id) != 0;
        e.distinct += first;
    }
    free(rows);
    return e;
}

/* The metric block's 11 fields as the truth gives them; has[i] 0 for a null rate. */
#define NFIELDS 11
static const char *const fields[NFIELDS] = {
    "sent", "delivered", "opens", "open_rate", "clicks", "click_rate", "bounces", "bounce_rate",
    "unsubscribes", "conversions", "conversion_value",
};

static void
block_of(const struct simcounts *c, double *v, int *has)
{
    double sent = toolfix_stat(c, "recipients"), del = toolfix_stat(c, "delivered");
    double opens = toolfix_stat(c, "opens_unique"), clicks = toolfix_stat(c, "clicks_unique");
    double bounces = toolfix_stat(c, "bounced");

    for (int i = 0; i < NFIELDS; i++)
        has[i] = 1;
    v[0] = sent;
    v[1] = del;
    v[2] = opens;
    has[3] = del != 0;
    v[3] = has[3] ? kmjson_round(opens / del, 4) : 0;
    v[4] = clicks;
    has[5] = del != 0;
    v[5] = has[5] ? kmjson_round(clicks / del, 4) : 0;
    v[6] = bounces;
    has[7] = sent != 0;
    v[7] = has[7] ? kmjson_round(bounces / sent, 4) : 0;
    v[8] = toolfix_stat(c, "unsubscribes");
    v[9] = toolfix_stat(c, "conversions");
    v[10] = kmjson_round(toolfix_stat(c, "conversion_value"), 2);
}

/* data equals the truth of both periods: totals, counts, and every delta. */
static void
assert_compare(json_object *env, const char *entity, const struct expect *cur,
               const struct expect *pri)
{
    json_object *data = kmjson_get(env, "data");
    json_object *deltas = kmjson_get(data, "deltas");
    double       cv[NFIELDS], pv[NFIELDS];
    int          ch[NFIELDS], ph[NFIELDS];
    char         what[80];

    ck_assert_str_eq(kmjson_str(data, "entity"), entity);
    toolfix_assert_block(kmjson_get(data, "current_totals"), &cur->sum, "current_totals");
    toolfix_assert_block(kmjson_get(data, "prior_totals"), &pri->sum, "prior_totals");
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "current_entity_count")),
                     cur->entities);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "prior_entity_count")), pri->entities);
    snprintf(what, sizeof(what), "current_%s_count", entity);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, what)), cur->distinct);
    snprintf(what, sizeof(what), "prior_%s_count", entity);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, what)), pri->distinct);
    block_of(&cur->sum, cv, ch);
    block_of(&pri->sum, pv, ph);
    ck_assert_int_eq(json_object_object_length(deltas), NFIELDS);
    for (int i = 0; i < NFIELDS; i++) {
        json_object *d = kmjson_get(deltas, fields[i]);
        json_object *abs = kmjson_get(d, "absolute"), *pct = kmjson_get(d, "pct_change");

        ck_assert_msg(d != NULL, "no delta for %s", fields[i]);
        if (!ch[i] || !ph[i]) {
            ck_assert_msg(abs == NULL && pct == NULL, "%s: a null rate has null deltas",
                          fields[i]);
            continue;
        }
        snprintf(what, sizeof(what), "deltas.%s.absolute", fields[i]);
        toolfix_assert_num(abs, kmjson_round(cv[i] - pv[i], 4), what);
        snprintf(what, sizeof(what), "deltas.%s.pct_change", fields[i]);
        if (pv[i] == 0)
            ck_assert_msg(pct == NULL, "%s: prior 0 gives a null pct_change", what);
        else
            toolfix_assert_num(pct, kmjson_round((cv[i] - pv[i]) / pv[i], 4), what);
    }
}

static void
assert_period(json_object *env, const char *which, const char *start, const char *end)
{
    json_object *p = kmjson_path(env, "data", which, NULL);

    ck_assert_str_eq(kmjson_str(p, "start_date"), start);
    ck_assert_str_eq(kmjson_str(p, "end_date"), end);
}

/* --- comparisons ------------------------------------------------------------------------- */

START_TEST(campaigns_compare_with_the_equal_length_window_just_before)
{
    json_object  *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                         "\"start_date\":\"2025-03-01\","
                                         "\"end_date\":\"2025-03-31\"}");
    struct expect cur = truth_of("campaign", "acme", range("2025-03-01", "2025-03-31"), NULL);
    struct expect pri = truth_of("campaign", "acme", range("2025-01-29", "2025-02-28"), NULL);

    ck_assert_int_gt(cur.entities, 1);
    ck_assert_int_gt(pri.entities, 1);
    assert_period(env, "current_period", "2025-03-01", "2025-03-31");
    assert_period(env, "prior_period", "2025-01-29", "2025-02-28");
    assert_compare(env, "campaign", &cur, &pri);
    ck_assert_str_eq(kmjson_str(kmjson_path(env, "metadata", "period", NULL), "start_date"),
                     "2025-03-01");
    ck_assert_str_eq(kmjson_str(kmjson_path(env, "metadata", "period", NULL), "end_date"),
                     "2025-03-31");
    ck_assert(toolfix_has_warning(env, "count by send date"));
    ck_assert_int_eq(toolfix_sim_calls(CAMPAIGN_REPORTS), 2);
    json_object_put(env);
}
END_TEST

START_TEST(an_explicit_prior_window_is_used_as_given)
{
    json_object  *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                         "\"start_date\":\"2025-03-01\","
                                         "\"end_date\":\"2025-03-31\","
                                         "\"prior_start_date\":\"2024-02-01\","
                                         "\"prior_end_date\":\"2024-02-29\"}");
    struct expect cur = truth_of("campaign", "acme", range("2025-03-01", "2025-03-31"), NULL);
    struct expect pri = truth_of("campaign", "acme", range("2024-02-01", "2024-02-29"), NULL);

    assert_period(env, "prior_period", "2024-02-01", "2024-02-29");
    assert_compare(env, "campaign", &cur, &pri);
    json_object_put(env);
}
END_TEST

START_TEST(one_flow_is_compared_across_both_periods)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2025-05-01", "2025-05-31"),
                                  NULL, &rows);
    char                 args[300];
    json_object         *env;
    struct expect        cur, pri;

    ck_assert_int_gt(n, 0);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"flow\",\"entity_id\":\"%s\","
             "\"start_date\":\"2025-05-01\",\"end_date\":\"2025-05-31\"}", rows[0].entity_id);
    env = toolfix_ok(TOOL, args);
    cur = truth_of("flow", "acme", range("2025-05-01", "2025-05-31"), rows[0].entity_id);
    pri = truth_of("flow", "acme", range("2025-03-31", "2025-04-30"), rows[0].entity_id);
    /* the seed's entity count is report rows (message x channel): one flow, several rows */
    ck_assert_int_eq(cur.distinct, 1);
    ck_assert_int_gt(cur.entities, 1);
    assert_period(env, "prior_period", "2025-03-31", "2025-04-30");
    assert_compare(env, "flow", &cur, &pri);
    ck_assert_int_eq(toolfix_sim_calls(FLOW_REPORTS), 2);
    free(rows);
    json_object_put(env);
}
END_TEST

START_TEST(a_chunked_window_against_a_quiet_prior_has_null_percent_changes)
{
    /* campaigns start on 2023-06-01: the 746 days before are quiet */
    json_object  *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                         "\"start_date\":\"2023-06-01\","
                                         "\"end_date\":\"2025-06-15\"}");
    struct expect cur = truth_of("campaign", "acme", range("2023-06-01", "2025-06-15"), NULL);
    struct expect pri = truth_of("campaign", "acme", range("2021-05-16", "2023-05-31"), NULL);

    ck_assert_int_eq(pri.entities, 0);
    assert_period(env, "prior_period", "2021-05-16", "2023-05-31");
    assert_compare(env, "campaign", &cur, &pri);
    ck_assert(kmjson_path(env, "data", "deltas", "sent", "pct_change", NULL) == NULL);
    ck_assert(kmjson_path(env, "data", "prior_totals", "open_rate", NULL) == NULL);
    ck_assert_int_eq(toolfix_sim_calls(CAMPAIGN_REPORTS), 6);
    ck_assert(toolfix_has_warning(env, "3 consecutive chunks"));
    json_object_put(env);
}
END_TEST

START_TEST(the_account_without_sms_compares_its_flows_last_month)
{
    kmday         t0 = toolfix_today("nosms");
    json_object  *env = toolfix_ok(TOOL, "{\"account\":\"nosms\",\"entity\":\"flow\","
                                         "\"timeframe\":\"last_month\"}");
    json_object  *cp = kmjson_path(env, "data", "current_period", NULL);
    kmrange       c = range(kmjson_str(cp, "start_date"), kmjson_str(cp, "end_date"));
    kmrange       p = { c.start - kmdate_range_days(c), c.start - 1 };
    struct expect cur = truth_of("flow", "nosms", c, NULL);
    struct expect pri = truth_of("flow", "nosms", p, NULL);
    int           y, m, d;

    /* the previous calendar month of the account's today (or of the day after, at midnight) */
    kmdate_to_ymd(c.end + 1, &y, &m, &d);
    ck_assert_int_eq(d, 1);
    ck_assert(c.end + 1 <= toolfix_today("nosms") && c.end + 1 > t0 - 31);
    assert_period(env, "prior_period", toolfix_day(0, p.start), toolfix_day(1, p.end));
    ck_assert_int_gt(cur.entities, 0);
    assert_compare(env, "flow", &cur, &pri);
    json_object_put(env);
}
END_TEST

/* --- invalid arguments ------------------------------------------------------------------- */

static const struct {
    const char *args, *needle;
} bad[] = {
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_start_date\":\"2025-01-01\"}", "prior_end_date" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_end_date\":\"2025-01-31\"}", "prior_start_date" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_start_date\":\"2025-01-31\",\"prior_end_date\":\"2025-01-01\"}", "before" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_start_date\":\"2025-02-29\",\"prior_end_date\":\"2025-03-31\"}",
      "prior_start_date" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_start_date\":\"2025-02-01\",\"prior_end_date\":\"2025/03/31\"}",
      "prior_end_date" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\","
      "\"prior_start_date\":\"2015-02-01\",\"prior_end_date\":\"2025-03-31\"}", "5 years" },
    { "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}", "entity" },
    { "{\"account\":\"acme\",\"entity\":\"lists\",\"timeframe\":\"last_30_days\"}", "entity" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"entity_id\":\"a'b\"}", "entity_id" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"interval\":\"weekly\"}", "interval" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
      "\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}", "not both" },
    { "{\"account\":\"acme\",\"entity\":\"flow\"}", "window is required" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"end_date\":\"2025-01-31\"}", "start_date" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-04-31\","
      "\"end_date\":\"2025-05-31\"}", "start_date" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-05-31\","
      "\"end_date\":\"2025-05-01\"}", "before" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2017-05-31\","
      "\"end_date\":\"2025-05-01\"}", "5 years" },
};

START_TEST(invalid_arguments_are_refused_before_any_report_call)
{
    json_object *env = toolfix_fail(TOOL, bad[_i].args, KM_INVALID_ARGUMENT, bad[_i].needle);

    ck_assert_int_eq(toolfix_sim_calls(CAMPAIGN_REPORTS), 0);
    ck_assert_int_eq(toolfix_sim_calls(FLOW_REPORTS), 0);
    json_object_put(env);
}
END_TEST

static TCase *
tcase(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, toolfix_sim_up, toolfix_sim_down);
    tcase_add_checked_fixture(tc, toolfix_up, toolfix_down);
    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *
suite(void)
{
    Suite *s = suite_create("tools_compare");
    TCase *tc;

    tc = tcase("comparisons");
    tcase_add_test(tc, campaigns_compare_with_the_equal_length_window_just_before);
    tcase_add_test(tc, an_explicit_prior_window_is_used_as_given);
    tcase_add_test(tc, one_flow_is_compared_across_both_periods);
    tcase_add_test(tc, a_chunked_window_against_a_quiet_prior_has_null_percent_changes);
    tcase_add_test(tc, the_account_without_sms_compares_its_flows_last_month);
    suite_add_tcase(s, tc);

    tc = tcase("invalid arguments");
    tcase_add_loop_test(tc, invalid_arguments_are_refused_before_any_report_call, 0,
                        (int)(sizeof(bad) / sizeof(bad[0])));
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
