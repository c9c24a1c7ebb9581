/* check_tools_flows.c — klaviyo_get_flows, klaviyo_get_flow_performance and
 * klaviyo_get_flow_structure against the real simulator, compared with its ground truth
 * (truth.h), never with the tools' own numbers.
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

#define FLOWS "klaviyo_get_flows"
#define PERF "klaviyo_get_flow_performance"
#define STRUCTURE "klaviyo_get_flow_structure"
#define REPORTS "POST /api/flow-values-reports"
#define MSG_LOOKUPS "GET /api/flow-messages/{id}"
#define STEP_LOOKUPS "GET /api/flow-actions/{id}/flow-messages"

static kmrange
range(const char *a, const char *b)
{
    kmrange r = { toolfix_parse_day(a), toolfix_parse_day(b) };

    return r;
}

static const struct simacct *
acct(const char *name)
{
    const struct simacct *a = simdata_account_by_name(toolfix_world(), name);

    ck_assert_ptr_nonnull(a);
    return a;
}

/* o's `field` is the simulator's name, or null for an unnamed message (as the seed gives it,
 * never ""). */
static void
assert_name(json_object *o, const char *field, const char *name)
{
    json_object *v = kmjson_get(o, field);

    if (!name[0])
        ck_assert_msg(v == NULL, "%s: an unnamed message has null, not %s", field,
                      json_object_to_json_string(v));
    else
        ck_assert_str_eq(kmjson_str(o, field), name);
}

static const char *
period_field(json_object *env, const char *f)
{
    return kmjson_str(kmjson_path(env, "metadata", "period", NULL), f);
}

/* --- klaviyo_get_flows ------------------------------------------------------------------- */

/* The flows of `data` are exactly acme's flows that pass (status, archived: -1 = any), in
 * Klaviyo's order. Returns how many. */
static size_t
assert_catalogue(json_object *env, const char *status, int archived)
{
    const struct simacct *a = acct("acme");
    json_object          *list = kmjson_path(env, "data", "flows", NULL);
    size_t                k = 0;

    for (size_t i = 0; i < a->n_flows; i++) {
        const struct simflow *f = &a->flows[i];
        json_object          *o;

        if (status && strcmp(f->status, status) != 0)
            continue;
        if (archived >= 0 && f->archived != archived)
            continue;
        ck_assert_msg(k < json_object_array_length(list), "flow %s missing", f->id);
        o = json_object_array_get_idx(list, k++);
        ck_assert_str_eq(kmjson_str(o, "flow_id"), f->id);
        ck_assert_str_eq(kmjson_str(o, "name"), f->name);
        ck_assert_str_eq(kmjson_str(o, "status"), f->status);
        ck_assert_str_eq(kmjson_str(o, "trigger_type"), f->trigger_type);
        ck_assert_int_eq(json_object_get_boolean(kmjson_get(o, "archived")), f->archived);
        ck_assert_ptr_nonnull(kmjson_str(o, "created"));
        ck_assert_ptr_nonnull(kmjson_str(o, "updated"));
    }
    ck_assert_int_eq(json_object_array_length(list), k);
    ck_assert_int_eq(json_object_get_int(kmjson_path(env, "data", "flow_count", NULL)), (int)k);
    return k;
}

START_TEST(every_flow_is_listed_across_pages)
{
    json_object *env = toolfix_ok(FLOWS, "{\"account\":\"acme\"}");

    ck_assert_int_gt(assert_catalogue(env, NULL, -1), 50);
    ck_assert_int_ge(toolfix_sim_calls("GET /api/flows"), 2);
    ck_assert(kmjson_path(env, "metadata", "period", NULL) == NULL);
    json_object_put(env);
}
END_TEST

START_TEST(the_status_filter_keeps_only_live_flows)
{
    json_object *env = toolfix_ok(FLOWS, "{\"account\":\"acme\",\"status\":\"live\"}");

    ck_assert_int_gt(assert_catalogue(env, "live", -1), 0);
    json_object_put(env);
}
END_TEST

START_TEST(status_and_archived_filters_combine)
{
    json_object *env = toolfix_ok(FLOWS, "{\"account\":\"acme\",\"status\":\"draft\","
                                         "\"archived\":false}");

    assert_catalogue(env, "draft", 0);
    json_object_put(env);
    env = toolfix_ok(FLOWS, "{\"account\":\"acme\",\"archived\":true}");
    ck_assert_int_gt(assert_catalogue(env, NULL, 1), 0);
    json_object_put(env);
}
END_TEST

/* --- klaviyo_get_flow_performance -------------------------------------------------------- */

static json_object *
perf_row(json_object *data, const char *flow, const char *msg, const char *channel)
{
    json_object *list = kmjson_get(data, "flows");
    json_object *found = NULL;

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        const char  *m = kmjson_str(o, "flow_message_id");
        const char  *c = kmjson_str(o, "send_channel");

        if (strcmp(kmjson_str(o, "flow_id"), flow) != 0)
            continue;
        if ((msg && (!m || strcmp(m, msg) != 0)) || (!msg && m))
            continue;
        if ((channel && (!c || strcmp(c, channel) != 0)) || (!channel && c))
            continue;
        ck_assert_msg(found == NULL, "row %s/%s appears twice", flow, msg ? msg : "-");
        found = o;
    }
    return found;
}

/* Every (flow, message, channel) row equals truth over `days`; names must be null when
 * `names` is 0. Returns the number of rows. */
static long
assert_rows(json_object *env, const char *acctname, kmrange days, const char *only, int names)
{
    json_object         *data = kmjson_get(env, "data");
    struct simtruth_row *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), acctname, days, only, &rows);

    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "flow_count")), n);
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "flows")), n);
    for (long i = 0; i < n; i++) {
        json_object *o = perf_row(data, rows[i].entity_id, rows[i].message_id,
                                  simdata_channel_name(rows[i].channel));

        ck_assert_msg(o != NULL, "row %s/%s missing", rows[i].entity_id, rows[i].message_id);
        toolfix_assert_block(o, &rows[i].counts, rows[i].message_id);
        if (!names)
            ck_assert(kmjson_get(o, "flow_message_name") == NULL);
    }
    free(rows);
    return n;
}

START_TEST(rows_per_flow_message_and_channel_equal_truth)
{
    json_object *env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                                        "\"end_date\":\"2025-03-31\"}");
    json_object *list = kmjson_path(env, "data", "flows", NULL);
    int          sms = 0;

    ck_assert_int_gt(assert_rows(env, "acme", range("2025-03-01", "2025-03-31"), NULL, 0), 5);
    for (size_t i = 0; i < json_object_array_length(list); i++)
        sms += strcmp(kmjson_str(json_object_array_get_idx(list, i), "send_channel"), "sms") == 0;
    ck_assert_int_gt(sms, 0);
    ck_assert(toolfix_has_warning(env, "count by send date"));
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 1);
    ck_assert_int_eq(toolfix_sim_calls(MSG_LOOKUPS), 0);
    json_object_put(env);
}
END_TEST

START_TEST(rollup_sums_each_flow_into_one_row_and_skips_name_lookups)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2025-03-01", "2025-03-31"),
                                  NULL, &rows);
    json_object *env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                                        "\"end_date\":\"2025-03-31\",\"rollup\":true,"
                                        "\"resolve_message_names\":true}");
    json_object *data = kmjson_get(env, "data");
    size_t       flows = 0;

    ck_assert_int_gt(n, 1);
    for (long i = 0; i < n; i++) {
        struct simcounts sum;
        int              first = 1;

        for (long j = 0; j < i; j++)
            first &= strcmp(rows[j].entity_id, rows[i].entity_id) != 0;
        if (!first)
            continue;
        memset(&sum, 0, sizeof(sum));
        for (long j = i; j < n; j++) {
            if (strcmp(rows[j].entity_id, rows[i].entity_id) == 0)
                simstat_add(&sum, &rows[j].counts);
        }
        toolfix_assert_block(perf_row(data, rows[i].entity_id, NULL, NULL), &sum,
                             rows[i].entity_id);
        flows++;
    }
    ck_assert_int_lt(flows, (size_t)n);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "flow_count")), (int)flows);
    ck_assert_int_eq(json_object_array_length(kmjson_get(data, "flows")), flows);
    for (size_t i = 0; i < flows; i++) {
        json_object *o = json_object_array_get_idx(kmjson_get(data, "flows"), i);

        ck_assert(kmjson_get(o, "flow_message_name") == NULL);
        ck_assert(json_object_object_get_ex(o, "flow_message_id", NULL));
    }
    ck_assert_int_eq(toolfix_sim_calls(MSG_LOOKUPS), 0);
    free(rows);
    json_object_put(env);
}
END_TEST

START_TEST(message_names_are_resolved_once_per_message)
{
    const struct simacct *a = acct("acme");
    json_object          *env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":"
                                                 "\"2025-03-01\",\"end_date\":\"2025-03-31\","
                                                 "\"resolve_message_names\":true}");
    json_object          *list = kmjson_path(env, "data", "flows", NULL);
    long n = assert_rows(env, "acme", range("2025-03-01", "2025-03-31"), NULL, 1);
    int  unnamed = 0;

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object         *o = json_object_array_get_idx(list, i);
        const struct simmsg *m = simdata_msg(a, kmjson_str(o, "flow_message_id"));

        ck_assert_ptr_nonnull(m);
        assert_name(o, "flow_message_name", m->name);
        unnamed += !m->name[0];
    }
    /* the seed's contract: an unnamed message is null, and this window has some */
    ck_assert_int_gt(unnamed, 0);
    /* each row is one message here, so one lookup per row */
    ck_assert_int_eq(toolfix_sim_calls(MSG_LOOKUPS), (int)n);
    ck_assert(!toolfix_has_warning(env, "lookups failed"));
    json_object_put(env);
}
END_TEST

START_TEST(a_failed_message_lookup_leaves_that_name_null_and_the_metrics_intact)
{
    const struct simacct *a = acct("acme");
    struct simtruth_row  *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2025-03-01", "2025-03-31"),
                                  NULL, &rows);
    char                  path[80];
    json_object          *env, *list;
    int                   nulls = 0;

    ck_assert_int_gt(n, 2);
    snprintf(path, sizeof(path), "/api/flow-messages/%s", rows[1].message_id);
    toolfix_fault("GET", path, 20, 500);
    env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                           "\"end_date\":\"2025-03-31\",\"resolve_message_names\":true}");
    assert_rows(env, "acme", range("2025-03-01", "2025-03-31"), NULL, 1);
    list = kmjson_path(env, "data", "flows", NULL);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);
        const char  *mid = kmjson_str(o, "flow_message_id");

        if (strcmp(mid, rows[1].message_id) == 0) {
            ck_assert(kmjson_get(o, "flow_message_name") == NULL);
            nulls++;
        } else {
            assert_name(o, "flow_message_name", simdata_msg(a, mid)->name);
        }
    }
    ck_assert_int_eq(nulls, 1);
    ck_assert(toolfix_has_warning(env, "flow message name lookups failed"));
    free(rows);
    json_object_put(env);
}
END_TEST

START_TEST(the_flow_argument_narrows_to_that_flow)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2025-03-01", "2025-03-31"),
                                  NULL, &rows);
    char         args[200];
    json_object *env;

    ck_assert_int_gt(n, 1);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
             "\"end_date\":\"2025-03-31\",\"flow\":\"%s\"}", rows[n - 1].entity_id);
    env = toolfix_ok(PERF, args);
    ck_assert_int_gt(assert_rows(env, "acme", range("2025-03-01", "2025-03-31"),
                                 rows[n - 1].entity_id, 0),
                     0);
    ck_assert_int_lt(json_object_get_int(kmjson_path(env, "data", "flow_count", NULL)), n);
    free(rows);
    json_object_put(env);
}
END_TEST

START_TEST(a_range_across_leap_years_is_chunked_and_equals_truth)
{
    json_object *env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":\"2023-06-01\","
                                        "\"end_date\":\"2025-06-15\"}");

    ck_assert_int_gt(assert_rows(env, "acme", range("2023-06-01", "2025-06-15"), NULL, 0), 5);
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 3);
    ck_assert(toolfix_has_warning(env, "3 consecutive chunks"));
    json_object_put(env);
}
END_TEST

START_TEST(a_chunked_rollup_equals_truth_summed_per_flow)
{
    struct simtruth_row *rows = NULL;
    long n = simtruth_flow_values(toolfix_world(), "acme", range("2024-01-01", "2025-06-30"),
                                  NULL, &rows);
    json_object *env = toolfix_ok(PERF, "{\"account\":\"acme\",\"start_date\":\"2024-01-01\","
                                        "\"end_date\":\"2025-06-30\",\"rollup\":true}");
    json_object *data = kmjson_get(env, "data");

    ck_assert_int_gt(n, 1);
    for (long i = 0; i < n; i++) {
        struct simcounts sum;

        memset(&sum, 0, sizeof(sum));
        for (long j = 0; j < n; j++) {
            if (strcmp(rows[j].entity_id, rows[i].entity_id) == 0)
                simstat_add(&sum, &rows[j].counts);
        }
        toolfix_assert_block(perf_row(data, rows[i].entity_id, NULL, NULL), &sum,
                             rows[i].entity_id);
    }
    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 2);
    free(rows);
    json_object_put(env);
}
END_TEST

START_TEST(the_account_without_sms_has_no_sms_rows)
{
    json_object *env = toolfix_ok(PERF, "{\"account\":\"nosms\",\"start_date\":\"2025-05-01\","
                                        "\"end_date\":\"2025-05-31\"}");
    json_object *list = kmjson_path(env, "data", "flows", NULL);

    ck_assert_int_gt(assert_rows(env, "nosms", range("2025-05-01", "2025-05-31"), NULL, 0), 0);
    for (size_t i = 0; i < json_object_array_length(list); i++)
        ck_assert_str_eq(kmjson_str(json_object_array_get_idx(list, i), "send_channel"),
                         "email");
    json_object_put(env);
}
END_TEST

/* A window wholly after the account's today has no data: the answer says so. */
START_TEST(a_window_wholly_in_the_future_warns_and_one_reaching_today_does_not)
{
    kmday        t = toolfix_today("acme");
    char         args[160];
    json_object *env;

    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"start_date\":\"%s\","
             "\"end_date\":\"%s\",\"rollup\":true}", toolfix_day(0, t + 400),
             toolfix_day(1, t + 430));
    env = toolfix_ok(PERF, args);
    ck_assert(toolfix_has_warning(env, "lies wholly in the future"));
    json_object_put(env);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"start_date\":\"%s\","
             "\"end_date\":\"%s\",\"rollup\":true}", toolfix_day(0, t - 3),
             toolfix_day(1, t + 3));
    env = toolfix_ok(PERF, args);
    ck_assert(!toolfix_has_warning(env, "in the future"));
    json_object_put(env);
}
END_TEST

START_TEST(yesterday_is_the_accounts_yesterday_far_from_utc)
{
    kmday        t0 = toolfix_today("kiwi"), t1, y;
    json_object *env = toolfix_ok(PERF, "{\"account\":\"kiwi\",\"timeframe\":\"yesterday\"}");

    t1 = toolfix_today("kiwi");
    y = toolfix_parse_day(period_field(env, "start_date"));
    ck_assert_msg(y == t0 - 1 || y == t1 - 1, "yesterday resolved to %s", toolfix_day(0, y));
    ck_assert_str_eq(period_field(env, "end_date"), toolfix_day(0, y));
    ck_assert_int_gt(assert_rows(env, "kiwi", (kmrange){ y, y }, NULL, 0), 0);
    json_object_put(env);
}
END_TEST

/* --- klaviyo_get_flow_structure ---------------------------------------------------------- */

/* acme's flow with the most actions (it has sends and non-sends). */
static const struct simflow *
big_flow(void)
{
    const struct simacct *a = acct("acme");
    const struct simflow *best = NULL;

    for (size_t i = 0; i < a->n_flows; i++) {
        if (!best || a->flows[i].n_actions > best->n_actions)
            best = &a->flows[i];
    }
    ck_assert_ptr_nonnull(best);
    ck_assert_int_gt(best->n_actions, 3);
    return best;
}

/* Steps equal truth in order; the step of action `failed` (may be NULL) has null message
 * fields. */
static void
assert_structure(json_object *env, const struct simflow *f, const char *failed)
{
    const struct simacct   *a = acct("acme");
    const struct simaction *acts = NULL;
    long                    n = simtruth_flow_actions(a, f->id, &acts);
    json_object            *data = kmjson_get(env, "data");
    json_object            *steps = kmjson_get(data, "steps");
    json_object            *summary = kmjson_get(data, "summary");
    int                     sends = 0, counted = 0;

    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(kmjson_str(data, "flow_id"), f->id);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "action_count")), n);
    ck_assert_int_eq(json_object_array_length(steps), n);
    for (long i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(steps, i);
        int          same = 0;

        ck_assert_str_eq(kmjson_str(o, "action_id"), acts[i].id);
        ck_assert_str_eq(kmjson_str(o, "action_type"), acts[i].action_type);
        if (acts[i].message < 0 || (failed && strcmp(failed, acts[i].id) == 0)) {
            ck_assert(kmjson_get(o, "message_id") == NULL);
            ck_assert(kmjson_get(o, "message_name") == NULL);
            ck_assert(kmjson_get(o, "channel") == NULL);
        } else {
            const struct simmsg *m = &a->msgs[acts[i].message];

            ck_assert_str_eq(kmjson_str(o, "message_id"), m->id);
            assert_name(o, "message_name", m->name);
            ck_assert_str_eq(kmjson_str(o, "channel"), simdata_channel_name(m->channel));
            sends++;
        }
        for (long j = 0; j < n; j++)
            same += strcmp(acts[j].action_type, acts[i].action_type) == 0;
        ck_assert_int_eq(json_object_get_int(kmjson_get(summary, acts[i].action_type)), same);
    }
    json_object_object_foreach(summary, k, v) {
        (void)k;
        counted += json_object_get_int(v);
    }
    ck_assert_int_eq(counted, n);
    ck_assert_int_gt(sends, 0);
}

START_TEST(steps_come_in_klaviyos_order_with_their_messages_and_a_summary)
{
    const struct simflow *f = big_flow();
    char                  args[120];
    json_object          *env;

    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"flow_id\":\"%s\"}", f->id);
    env = toolfix_ok(STRUCTURE, args);
    assert_structure(env, f, NULL);
    json_object_put(env);
}
END_TEST

START_TEST(a_failed_message_lookup_nulls_only_that_steps_message_fields)
{
    const struct simflow   *f = big_flow();
    const struct simaction *acts = NULL;
    long                    n = simtruth_flow_actions(acct("acme"), f->id, &acts);
    const char             *victim = NULL;
    char                    args[120], path[120];
    json_object            *env;

    for (long i = 0; i < n && !victim; i++) {
        if (acts[i].message >= 0)
            victim = acts[i].id;
    }
    ck_assert_ptr_nonnull(victim);
    snprintf(path, sizeof(path), "/api/flow-actions/%s/flow-messages", victim);
    toolfix_fault("GET", path, 20, 500);
    snprintf(args, sizeof(args), "{\"account\":\"acme\",\"flow_id\":\"%s\"}", f->id);
    env = toolfix_ok(STRUCTURE, args);
    assert_structure(env, f, victim);
    ck_assert(toolfix_has_warning(env, "message lookups failed"));
    json_object_put(env);
}
END_TEST

START_TEST(an_unknown_flow_is_not_found)
{
    json_object *env = toolfix_fail(STRUCTURE, "{\"account\":\"acme\",\"flow_id\":\"ZZZZZ9\"}",
                                    KM_NOT_FOUND, "ZZZZZ9");

    json_object_put(env);
}
END_TEST

/* --- invalid arguments ------------------------------------------------------------------- */

static const struct {
    const char *tool, *args, *needle;
} bad[] = {
    { PERF, "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"start_date\":\"2025-01-01\","
      "\"end_date\":\"2025-01-31\"}", "not both" },
    { PERF, "{\"account\":\"acme\"}", "window is required" },
    { PERF, "{\"account\":\"acme\",\"end_date\":\"2025-01-31\"}", "start_date" },
    { PERF, "{\"account\":\"acme\",\"start_date\":\"2025-02-30\",\"end_date\":\"2025-03-31\"}",
      "start_date: '2025-02-30' is not a date: February 2025 has 28 days" },
    { PERF, "{\"account\":\"acme\",\"start_date\":\"2025-02-01\",\"end_date\":\"2025-3-31\"}",
      "end_date: '2025-3-31' does not match" },
    { PERF, "{\"account\":\"acme\",\"start_date\":\"2024-03-31\",\"end_date\":\"2024-03-01\"}",
      "before" },
    { PERF, "{\"account\":\"acme\",\"start_date\":\"2020-01-01\",\"end_date\":\"2025-06-30\"}",
      "5 years" },
    { PERF, "{\"account\":\"acme\",\"timeframe\":\"yesterday\",\"flows\":\"ABC123\"}", "flows" },
    { PERF, "{\"account\":\"acme\",\"timeframe\":\"tomorrow\"}", "timeframe" },
    { PERF, "{\"account\":\"acme\",\"timeframe\":\"yesterday\",\"flow\":\"AB_123\"}", "flow" },
    { PERF, "{\"account\":\"acme\",\"timeframe\":\"yesterday\",\"rollup\":1}", "rollup" },
    { FLOWS, "{\"account\":\"acme\",\"status\":\"paused\"}", "status" },
    { FLOWS, "{\"account\":\"acme\",\"archived\":\"yes\"}", "archived" },
    { FLOWS, "{\"account\":\"acme\",\"page\":2}", "page" },
    { STRUCTURE, "{\"account\":\"acme\"}", "flow_id" },
    { STRUCTURE, "{\"account\":\"acme\",\"flow_id\":\"../lists\"}", "flow_id" },
    { STRUCTURE, "{\"account\":\"acme\",\"flow_id\":\"\"}", "flow_id" },
};

START_TEST(invalid_arguments_are_refused_before_any_klaviyo_call_but_the_account)
{
    json_object *env = toolfix_fail(bad[_i].tool, bad[_i].args, KM_INVALID_ARGUMENT,
                                    bad[_i].needle);

    ck_assert_int_eq(toolfix_sim_calls(REPORTS), 0);
    ck_assert_int_eq(toolfix_sim_calls("GET /api/flows"), 0);
    ck_assert_int_eq(toolfix_sim_calls("GET /api/flows/{id}/flow-actions"), 0);
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
    Suite *s = suite_create("tools_flows");
    TCase *tc;

    tc = tcase("catalogue");
    tcase_add_test(tc, every_flow_is_listed_across_pages);
    tcase_add_test(tc, the_status_filter_keeps_only_live_flows);
    tcase_add_test(tc, status_and_archived_filters_combine);
    suite_add_tcase(s, tc);

    tc = tcase("performance");
    tcase_add_test(tc, rows_per_flow_message_and_channel_equal_truth);
    tcase_add_test(tc, rollup_sums_each_flow_into_one_row_and_skips_name_lookups);
    tcase_add_test(tc, the_flow_argument_narrows_to_that_flow);
    tcase_add_test(tc, a_range_across_leap_years_is_chunked_and_equals_truth);
    tcase_add_test(tc, a_chunked_rollup_equals_truth_summed_per_flow);
    tcase_add_test(tc, the_account_without_sms_has_no_sms_rows);
    tcase_add_test(tc, yesterday_is_the_accounts_yesterday_far_from_utc);
    tcase_add_test(tc, a_window_wholly_in_the_future_warns_and_one_reaching_today_does_not);
    suite_add_tcase(s, tc);

    tc = tcase("message names");
    tcase_add_test(tc, message_names_are_resolved_once_per_message);
    tcase_add_test(tc, a_failed_message_lookup_leaves_that_name_null_and_the_metrics_intact);
    suite_add_tcase(s, tc);

    tc = tcase("structure");
    tcase_add_test(tc, steps_come_in_klaviyos_order_with_their_messages_and_a_summary);
    tcase_add_test(tc, a_failed_message_lookup_nulls_only_that_steps_message_fields);
    tcase_add_test(tc, an_unknown_flow_is_not_found);
    suite_add_tcase(s, tc);

    tc = tcase("invalid arguments");
    tcase_add_loop_test(tc, invalid_arguments_are_refused_before_any_klaviyo_call_but_the_account,
                        0, (int)(sizeof(bad) / sizeof(bad[0])));
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
