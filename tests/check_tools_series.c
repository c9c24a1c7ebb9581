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
#include "schema.h"
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
#define LOOKUPS "GET /api/campaigns/{id}"

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

START_TEST(weekly_over_more_than_52_weeks_is_chunked_on_a_bucket_start_and_equals_truth)
{
    /* 2024-03-06 is a Wednesday; 532 days need two weekly chunks of whole 7-day buckets */
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                        "\"interval\":\"weekly\",\"start_date\":\"2024-03-06\","
                                        "\"end_date\":\"2025-08-19\"}");

    ck_assert_int_eq(assert_flow_series(env, "acme", range("2024-03-06", "2025-08-19"),
                                        KMI_WEEKLY, NULL, default_stats, N_DEFAULT),
                     76);
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

/* --- campaigns: one values report over the window, bucketed by send date ---------------- */

/* A campaign trend equals the stitched truth: per bucket, the campaign-values truth over that
 * bucket's days (what one report per bucket would give), with a flow series' date_times.
 * Returns the number of series. */
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

    struct simtruth_series fs;

    kmdate_buckets(days, iv, starts, nb);
    ck_assert_str_eq(kmjson_str(data, "entity"), "campaign");
    ck_assert_int_eq(json_object_array_length(dts), nb);
    /* the same date_times as a flow series over the same window and interval */
    memset(&fs, 0, sizeof(fs));
    ck_assert_int_ge(simtruth_flow_series(toolfix_world(), acct, days, iv, NULL, &fs), 0);
    ck_assert_uint_eq(fs.n_buckets, nb);
    for (size_t b = 0; b < nb; b++) {
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dts, b)),
                         fs.date_times[b]);
        ck_assert_int_eq(strncmp(fs.date_times[b], toolfix_day(0, starts[b]), 10), 0);
    }
    simtruth_series_free(&fs);
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

START_TEST(a_monthly_campaign_trend_is_one_report_equal_to_a_report_per_bucket)
{
    struct progress p = { 0 };
    int             status = 0;
    json_object    *env = toolfix_call_progress(TOOL, "{\"account\":\"acme\",\"entity\":"
                                                      "\"campaign\",\"interval\":\"monthly\","
                                                      "\"start_date\":\"2025-01-15\","
                                                      "\"end_date\":\"2025-04-10\"}",
                                                on_progress, &p, &status);
    kmerr           err = { 0 };
    size_t          n;

    ck_assert_int_eq(status, 200);
    ck_assert_int_eq(kmschema_validate(kmreg_find(TOOL)->output, kmjson_get(env, "data"),
                                       "data", &err),
                     KM_OK);
    n = assert_campaign_series(env, "acme", range("2025-01-15", "2025-04-10"), KMI_MONTHLY,
                               NULL);
    ck_assert_int_gt(n, 2);
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "data"), "basis"), "send_date");
    /* one report for the window, one send-time lookup per campaign */
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    ck_assert_int_eq(toolfix_sim_calls(LOOKUPS), (int)n);
    ck_assert(toolfix_has_warning(env, "by its send date"));
    ck_assert(toolfix_has_warning(env, "count by send date"));
    ck_assert(!toolfix_has_warning(env, "event time"));
    /* progress: call k of n, ending with n of n */
    ck_assert_int_ge(p.reports, 1 + (int)n);
    ck_assert_int_eq(p.last_done, p.last_total);
    kmerr_clear(&err);
    json_object_put(env);
}
END_TEST

/* Daily, weekly and monthly; windows starting mid-week and mid-month, across a year. */
static const struct {
    kminterval  iv;
    const char *start, *end;
} stitched[] = {
    { KMI_DAILY, "2024-12-18", "2025-01-24" },    /* a Wednesday, 38 days */
    { KMI_WEEKLY, "2024-11-13", "2025-02-18" },   /* a Wednesday, 14 weeks */
    { KMI_WEEKLY, "2025-04-01", "2025-06-30" },   /* the quarter: 13 buckets */
    { KMI_MONTHLY, "2024-10-15", "2025-03-10" },
};

START_TEST(a_trend_equals_one_report_per_bucket_for_every_interval)
{
    char         args[300];
    json_object *env;
    size_t       n;
    kmrange      r = range(stitched[_i].start, stitched[_i].end);

    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"campaign\","
             "\"interval\":\"%s\",\"start_date\":\"%s\",\"end_date\":\"%s\"}",
             kmdate_interval_name(stitched[_i].iv), stitched[_i].start, stitched[_i].end);
    env = toolfix_ok(TOOL, args);
    n = assert_campaign_series(env, "acme", r, stitched[_i].iv, NULL);
    ck_assert_int_gt(n, 1);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    ck_assert_int_eq(toolfix_sim_calls(LOOKUPS), (int)n);
    if (_i == 2)
        ck_assert_int_eq(json_object_array_length(kmjson_path(env, "data", "date_times", NULL)),
                         13);
    json_object_put(env);
}
END_TEST

START_TEST(a_campaign_trend_and_a_flow_series_share_their_date_times)
{
    json_object *c = toolfix_ok(TOOL, "{\"account\":\"kiwi\",\"entity\":\"campaign\","
                                      "\"start_date\":\"2025-03-04\","
                                      "\"end_date\":\"2025-05-20\"}");
    json_object *f = toolfix_ok(TOOL, "{\"account\":\"kiwi\",\"entity\":\"flow\","
                                      "\"start_date\":\"2025-03-04\","
                                      "\"end_date\":\"2025-05-20\"}");

    /* weekly by default; kiwi's offset changes in April (NZ daylight time ends) */
    ck_assert_str_eq(json_object_to_json_string(kmjson_path(c, "data", "date_times", NULL)),
                     json_object_to_json_string(kmjson_path(f, "data", "date_times", NULL)));
    ck_assert_int_eq(json_object_array_length(kmjson_path(c, "data", "date_times", NULL)), 12);
    json_object_put(c);
    json_object_put(f);
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
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    ck_assert_int_eq(toolfix_sim_calls(LOOKUPS), 1);
    free(rows);
    json_object_put(env);
}
END_TEST

/* --- campaigns by activity ------------------------------------------------------------------ */

/* An activity trend equals the simulator's event-time truth: per bucket, each campaign's
 * activity within the bucket's days, whenever it was sent. Returns the number of series. */
static size_t
assert_activity_series(json_object *env, const char *acct, kmrange days, kminterval iv,
                       const char *only)
{
    json_object *data = kmjson_get(env, "data");
    size_t       nb = kmdate_buckets(days, iv, NULL, 0);
    kmday       *starts = km_xcalloc(nb, sizeof(*starts));
    json_object *seen = json_object_new_object();
    size_t       nseries = 0;
    char         what[160];

    kmdate_buckets(days, iv, starts, nb);
    ck_assert_str_eq(kmjson_str(data, "basis"), "activity");
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "date_times")), nb);
    for (size_t b = 0; b < nb; b++) {
        kmrange              br = { starts[b], b + 1 < nb ? starts[b + 1] - 1 : days.end };
        struct simtruth_row *rows = NULL;
        long n = simtruth_campaign_activity(toolfix_world(), acct, br, only, &rows);

        for (long i = 0; i < n; i++) {
            json_object *o = series_of(data, "campaign_id", rows[i].entity_id, "send_channel",
                                       simdata_channel_name(rows[i].channel), NULL, NULL);

            ck_assert_msg(o != NULL, "activity series of campaign %s missing",
                          rows[i].entity_id);
            if (!kmjson_get(seen, rows[i].entity_id)) {
                json_object_object_add(seen, rows[i].entity_id, json_object_new_int(1));
                nseries++;
            }
            for (size_t j = 0; j < N_DEFAULT; j++) {
                snprintf(what, sizeof(what), "%s.%s[%zu]", rows[i].entity_id, default_stats[j],
                         b);
                toolfix_assert_num(json_object_array_get_idx(
                                       kmjson_path(o, "statistics", default_stats[j], NULL), b),
                                   toolfix_stat(&rows[i].counts, default_stats[j]), what);
            }
        }
        free(rows);
    }
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "series")), nseries);
    json_object_put(seen);
    free(starts);
    return nseries;
}

START_TEST(an_activity_trend_equals_the_event_time_truth_without_a_report_call)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\","
                                        "\"basis\":\"activity\",\"start_date\":"
                                        "\"2025-03-04\",\"end_date\":\"2025-04-28\"}");
    kmerr        err = { 0 };

    ck_assert_int_eq(kmschema_validate(kmreg_find(TOOL)->output, kmjson_get(env, "data"),
                                       "data", &err),
                     KM_OK);
    ck_assert_int_gt(assert_activity_series(env, "acme", range("2025-03-04", "2025-04-28"),
                                            KMI_WEEKLY, NULL),
                     3);
    /* no report budget: metric aggregates only */
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 0);
    ck_assert_int_gt(toolfix_sim_calls("POST /api/metric-aggregates"), 0);
    ck_assert(toolfix_has_warning(env, "will not match Klaviyo's campaign reports"));
    json_object_put(env);
}
END_TEST

START_TEST(a_campaign_sent_at_the_end_of_a_bucket_differs_by_basis)
{
    const struct simacct     *a = simdata_account_by_name(toolfix_world(), "acme");
    const struct simcampaign *c = NULL;
    char                      args[400], from[11], to[11];
    json_object              *send, *act;
    kmrange                   r;
    double                    s0, s1, a1;

    /* an email campaign sent in the evening: its opens go on into the next days */
    for (size_t i = 0; i < a->n_campaigns && !c; i++) {
        const struct simcampaign *x = &a->campaigns[i];

        if (x->active && x->channel == SIM_EMAIL && x->send_hour % 24 >= 18 &&
            x->send_hour / 24 > toolfix_parse_day("2024-06-01"))
            c = x;
    }
    ck_assert_ptr_nonnull(c);
    /* its send day is the last day of the first weekly bucket */
    r.start = (kmday)(c->send_hour / 24) - 6;
    r.end = r.start + 13;
    km_strlcpy(from, toolfix_day(0, r.start), sizeof(from));
    km_strlcpy(to, toolfix_day(1, r.end), sizeof(to));
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"campaign\","
             "\"entity_id\":\"%s\",\"start_date\":\"%s\",\"end_date\":\"%s\","
             "\"statistics\":[\"opens_unique\"]}", c->id, from, to);
    send = toolfix_ok(TOOL, args);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"entity\":\"campaign\","
             "\"entity_id\":\"%s\",\"start_date\":\"%s\",\"end_date\":\"%s\","
             "\"statistics\":[\"opens_unique\"],\"basis\":\"activity\"}", c->id, from, to);
    act = toolfix_ok(TOOL, args);
    s0 = json_object_get_double(json_object_array_get_idx(
        kmjson_path(json_object_array_get_idx(kmjson_path(send, "data", "series", NULL), 0),
                    "statistics", "opens_unique", NULL), 0));
    s1 = json_object_get_double(json_object_array_get_idx(
        kmjson_path(json_object_array_get_idx(kmjson_path(send, "data", "series", NULL), 0),
                    "statistics", "opens_unique", NULL), 1));
    a1 = json_object_get_double(json_object_array_get_idx(
        kmjson_path(json_object_array_get_idx(kmjson_path(act, "data", "series", NULL), 0),
                    "statistics", "opens_unique", NULL), 1));
    /* by send date everything sits in the send's bucket; by activity the later opens move on */
    ck_assert(s0 > 0);
    ck_assert_double_eq(s1, 0.0);
    ck_assert(a1 > 0);
    {
        kmrange              b1 = { r.start + 7, r.end };
        struct simtruth_row *rows = NULL;

        ck_assert_int_eq(simtruth_campaign_activity(toolfix_world(), "acme", b1, c->id, &rows),
                         1);
        ck_assert_double_eq(a1, (double)rows[0].counts.v[SIMC_OPENS_UNIQUE]);
        free(rows);
    }
    json_object_put(send);
    json_object_put(act);
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
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"basis\":\"activity\","
      "\"timeframe\":\"last_30_days\",\"statistics\":[\"delivered\",\"spam_complaints\"]}",
      "spam_complaints cannot be counted by activity" },
    { "{\"account\":\"acme\",\"entity\":\"flow\",\"basis\":\"activity\","
      "\"timeframe\":\"last_30_days\"}", "only for entity=campaign" },
    { "{\"account\":\"acme\",\"entity\":\"campaign\",\"basis\":\"events\","
      "\"timeframe\":\"last_30_days\"}", "basis" },
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

/* Spend what is left of acme's 225 campaign-values reports today, straight in the shared
 * store (the client charges "<account>:<endpoint>"; only the daily window is recorded here so
 * the burst window does not pace the set-up). */
static void
spend_the_days_reports(int already)
{
    kmlimit daily = { 0 }, full;
    kmerr   err = { 0 };
    int64_t wait = 0;

    kmtier_limit(KMT_REPORTS, &full);
    daily.nwin = 1;
    daily.win[0] = full.win[2];
    for (int i = already; i < full.win[2].max; i++)
        ck_assert_int_eq(kmstore_take(kmsvc_store(toolfix_svc()), "acme:campaign-values-reports",
                                      &daily, &wait, &err),
                         KM_OK);
    kmerr_clear(&err);
}

#define TWO_YEARS "{\"account\":\"acme\",\"entity\":\"campaign\",\"interval\":\"monthly\"," \
                  "\"start_date\":\"2023-07-01\",\"end_date\":\"2025-06-29\"}"

START_TEST(after_the_days_budget_a_cached_trend_is_answered_and_an_uncached_one_refused)
{
    json_object *env, *e;

    /* two chunks of 365 days: two report calls, planned at Klaviyo's real limits */
    env = toolfix_ok(TOOL, TWO_YEARS);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 2);
    json_object_put(env);
    spend_the_days_reports(2);

    /* the same question again: every call is cached, so the plan needs none */
    env = toolfix_ok(TOOL, TWO_YEARS);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 2);
    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "metadata", "klaviyo_calls", NULL)),
                     0);
    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "metadata",
                                                     "report_budget_remaining", NULL)),
                     0);
    json_object_put(env);

    /* a new window is not cached: refused at once, saying what would fit */
    env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\",\"interval\":"
                             "\"monthly\",\"start_date\":\"2023-08-01\","
                             "\"end_date\":\"2025-06-29\"}",
                       KM_RATE_LIMITED, "0 Klaviyo report calls left today");
    e = kmjson_get(env, "error");
    ck_assert_int_eq(json_object_get_int(kmjson_path(e, "details", "calls_needed", NULL)), 2);
    ck_assert_int_eq(json_object_get_int(kmjson_path(e, "details", "calls_that_fit", NULL)), 0);
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(e, "details"), "suggestion"),
                                 "activity"));
    ck_assert_int_gt(json_object_get_int(kmjson_get(e, "retry_after_s")), 0);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 2);
    json_object_put(env);
}
END_TEST

START_TEST(a_flow_series_that_can_never_finish_before_the_deadline_says_what_fits)
{
    /* 1826 days in 60-day daily chunks: 31 series reports at 2 a minute need 15 minutes with
     * idle windows; the deadline is 10 */
    json_object *env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                          "\"interval\":\"daily\",\"start_date\":"
                                          "\"2021-01-01\",\"end_date\":\"2025-12-31\"}",
                                    KM_INVALID_ARGUMENT, "no retry");
    json_object *e = kmjson_get(env, "error");
    int          fit = json_object_get_int(kmjson_path(e, "details", "calls_that_fit", NULL));

    ck_assert_int_eq(json_object_get_int(kmjson_path(e, "details", "calls_needed", NULL)), 31);
    ck_assert_int_gt(fit, 0);
    ck_assert_int_lt(fit, 31);
    /* what would fit: that many 60-day daily chunks, or a coarser interval */
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(e, "details"), "suggestion"),
                                 "coarser interval"));
    ck_assert_ptr_nonnull(strstr(kmjson_str(e, "message"), "Would fit"));
    ck_assert_ptr_null(kmjson_get(e, "retry_after_s"));
    ck_assert_int_eq(toolfix_sim_calls(SERIES), 0);
    json_object_put(env);
}
END_TEST

START_TEST(an_hourly_series_over_five_years_needs_more_than_a_days_budget)
{
    /* 1826 days in 7-day chunks: 261 series reports, more than the 225 of a day */
    json_object *env = toolfix_fail(TOOL, "{\"account\":\"acme\",\"entity\":\"flow\","
                                          "\"interval\":\"hourly\",\"start_date\":"
                                          "\"2021-01-01\",\"end_date\":\"2025-12-31\"}",
                                    KM_INVALID_ARGUMENT, "in a day");

    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "error", "details", "calls_needed",
                                                     NULL)),
                     261);
    /* what fits: at most the day's cap (here fewer: the deadline binds first) */
    ck_assert_int_le(json_object_get_int(kmjson_path(env, "error", "details", "calls_that_fit",
                                                     NULL)),
                     225);
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
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    ck_assert_int_eq(kmfix_http_json(toolfix_sim.url, "GET", "/__sim/stats", NULL, &stats), 200);
    ck_assert_int_eq(json_object_get_int(kmjson_get(stats, "total_throttled")), 0);
    json_object_put(stats);
    json_object_put(env);
}
END_TEST

/* Both at Klaviyo's real, unscaled limits: the simulator answers 429 past them. */
static void
sim_up_real(void)
{
    toolfix_sim_up_scaled("1");
}

START_TEST(weekly_trends_over_a_quarter_at_real_limits_are_never_throttled)
{
    json_object *send, *act, *stats = NULL;

    /* the quarter: 13 weekly buckets from a Tuesday */
    send = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\",\"start_date\":"
                            "\"2025-04-01\",\"end_date\":\"2025-06-30\"}");
    assert_campaign_series(send, "acme", range("2025-04-01", "2025-06-30"), KMI_WEEKLY, NULL);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    act = toolfix_ok(TOOL, "{\"account\":\"acme\",\"entity\":\"campaign\",\"basis\":"
                           "\"activity\",\"start_date\":\"2025-04-01\","
                           "\"end_date\":\"2025-06-30\"}");
    assert_activity_series(act, "acme", range("2025-04-01", "2025-06-30"), KMI_WEEKLY, NULL);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    ck_assert_int_eq(kmfix_http_json(toolfix_sim.url, "GET", "/__sim/stats", NULL, &stats), 200);
    ck_assert_int_eq(json_object_get_int(kmjson_get(stats, "total_throttled")), 0);
    json_object_put(stats);
    json_object_put(send);
    json_object_put(act);
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
    tcase_add_test(tc,
                   weekly_over_more_than_52_weeks_is_chunked_on_a_bucket_start_and_equals_truth);
    tcase_add_test(tc, daily_over_more_than_60_days_is_chunked_and_equals_truth);
    tcase_add_test(tc, monthly_over_a_year_is_chunked_on_the_first_and_equals_truth);
    tcase_add_test(tc, hourly_over_nine_days_is_chunked_by_seven_days_and_equals_truth);
    tcase_add_test(tc,
                   the_default_interval_is_weekly_and_one_flow_with_rates_passes_through_verbatim);
    suite_add_tcase(s, tc);

    tc = tcase("campaign trends", toolfix_sim_up, toolfix_up);
    tcase_add_test(tc, a_monthly_campaign_trend_is_one_report_equal_to_a_report_per_bucket);
    tcase_add_loop_test(tc, a_trend_equals_one_report_per_bucket_for_every_interval, 0,
                        (int)(sizeof(stitched) / sizeof(stitched[0])));
    tcase_add_test(tc, a_campaign_trend_and_a_flow_series_share_their_date_times);
    tcase_add_test(tc, a_weekly_trend_of_one_campaign_has_that_campaigns_series_only);
    tcase_add_test(tc, an_activity_trend_equals_the_event_time_truth_without_a_report_call);
    tcase_add_test(tc, a_campaign_sent_at_the_end_of_a_bucket_differs_by_basis);
    suite_add_tcase(s, tc);

    tc = tcase("invalid arguments", toolfix_sim_up, toolfix_up);
    tcase_add_loop_test(tc, invalid_arguments_are_refused_before_any_report_call, 0,
                        (int)(sizeof(bad) / sizeof(bad[0])));
    suite_add_tcase(s, tc);

    tc = tcase("planning", sim_up_scaled, up_real_limits);
    tcase_add_test(tc,
                   after_the_days_budget_a_cached_trend_is_answered_and_an_uncached_one_refused);
    tcase_add_test(tc, a_flow_series_that_can_never_finish_before_the_deadline_says_what_fits);
    tcase_add_test(tc, an_hourly_series_over_five_years_needs_more_than_a_days_budget);
    suite_add_tcase(s, tc);

    tc = tcase("real limits", sim_up_real, up_real_limits);
    tcase_add_test(tc, weekly_trends_over_a_quarter_at_real_limits_are_never_throttled);
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
