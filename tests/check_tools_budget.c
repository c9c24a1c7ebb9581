/* check_tools_budget.c — klaviyo_get_budget against the real simulator: what it reports is
 * what the simulator counted, reading it never costs a slot or a Klaviyo call, and every
 * account is listed when none is named.
 *
 * Processes: the simulator runs per TCase in the runner process (unchecked fixture, limits on
 * at Klaviyo's real, unscaled windows); every test resets it and builds its own service with a
 * fresh store, the client at real limits too (toolfix.h).
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

#define TOOL "klaviyo_get_budget"
#define VALUES "POST /api/campaign-values-reports"

static const char *const tier_order[] = { "reports", "XS", "S", "M", "L" };

/* The budget of one account from an answer (borrowed), after checking the answer's schema. */
static json_object *
account_of(json_object *env, const char *name)
{
    json_object *list = kmjson_path(env, "data", "accounts", NULL);
    json_object *found = NULL;
    kmerr        err = { 0 };

    ck_assert_msg(kmschema_validate(kmreg_find(TOOL)->output, kmjson_get(env, "data"),
                                    "data", &err) == KM_OK, "%s", err.msg);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *o = json_object_array_get_idx(list, i);

        if (strcmp(kmjson_str(o, "account"), name) == 0)
            found = o;
    }
    ck_assert_msg(found != NULL, "no budget for %s", name);
    return found;
}

static double
next_free(json_object *acct, const char *tier)
{
    json_object *tiers = kmjson_get(acct, "tiers");

    for (size_t i = 0; i < json_object_array_length(tiers); i++) {
        json_object *t = json_object_array_get_idx(tiers, i);

        if (strcmp(kmjson_str(t, "tier"), tier) == 0)
            return kmjson_num(t, "next_free_slot_s", -1);
    }
    ck_abort_msg("no tier %s", tier);
    return -1;
}

static int
sim_total(const char *field)
{
    json_object *stats = NULL;
    int          v;

    ck_assert_int_eq(kmfix_http_json(toolfix_sim.url, "GET", "/__sim/stats", NULL, &stats), 200);
    v = json_object_get_int(kmjson_get(stats, field));
    json_object_put(stats);
    return v;
}

static void
up_real_limits(void)
{
    toolfix_rate_scale = "1";
    toolfix_up();
}

static void
sim_up_real(void)
{
    toolfix_sim_up_scaled("1");
}

START_TEST(a_fresh_account_has_its_whole_day_and_every_tier_free)
{
    json_object *env = toolfix_ok(TOOL, "{\"account\":\"acme\"}");
    json_object *a = account_of(env, "acme");
    json_object *tiers = kmjson_get(a, "tiers");

    ck_assert_int_eq((int)kmjson_num(a, "report_calls_used_today", -1), 0);
    ck_assert_int_eq((int)kmjson_num(a, "report_calls_left_today", -1), 225);
    ck_assert_int_eq((int)kmjson_num(a, "daily_report_cap", -1), 225);
    ck_assert_uint_eq(json_object_array_length(tiers), KMT_COUNT);
    for (size_t i = 0; i < KMT_COUNT; i++) {
        json_object *t = json_object_array_get_idx(tiers, i);

        ck_assert_str_eq(kmjson_str(t, "tier"), tier_order[i]);
        ck_assert_str_eq(kmjson_str(t, "tier"), kmtier_name((kmtier)i));
        ck_assert_double_eq(kmjson_num(t, "next_free_slot_s", -1), 0.0);
    }
    ck_assert_int_eq(json_object_array_length(kmjson_path(env, "data", "accounts", NULL)), 1);
    /* it asked Klaviyo nothing */
    ck_assert_int_eq(sim_total("total_calls"), 0);
    json_object_put(env);
}
END_TEST

START_TEST(a_report_call_shows_as_used_and_its_tier_busy_and_reading_costs_nothing)
{
    json_object *env, *a, *again;
    int          calls;

    env = toolfix_ok("klaviyo_get_campaign_performance",
                     "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                     "\"end_date\":\"2025-03-31\"}");
    json_object_put(env);
    ck_assert_int_eq(toolfix_sim_calls(VALUES), 1);
    calls = sim_total("total_calls");

    env = toolfix_ok(TOOL, "{\"account\":\"acme\"}");
    a = account_of(env, "acme");
    /* the simulator's count of report calls, and the one-a-second burst still closed (the
     * client charges each window 250 ms more than Klaviyo's second) */
    ck_assert_int_eq((int)kmjson_num(a, "report_calls_used_today", -1),
                     toolfix_sim_calls(VALUES));
    ck_assert_int_eq((int)kmjson_num(a, "report_calls_left_today", -1),
                     225 - toolfix_sim_calls(VALUES));
    ck_assert(next_free(a, "reports") > 0.0);
    /* at most about the charged second (1.25 s), never the minute: the steady window has a
     * slot left */
    ck_assert_msg(next_free(a, "reports") < 2.0, "reports: %f", next_free(a, "reports"));
    ck_assert_double_eq(next_free(a, "S"), 0.0);
    ck_assert_double_eq(next_free(a, "L"), 0.0);

    /* reading took no slot and made no Klaviyo call: a second look says the same */
    again = toolfix_ok(TOOL, "{\"account\":\"acme\"}");
    ck_assert_int_eq((int)kmjson_num(account_of(again, "acme"), "report_calls_left_today", -1),
                     224);
    ck_assert_int_eq(sim_total("total_calls"), calls);
    ck_assert_int_eq(json_object_get_int(kmjson_path(again, "metadata", "klaviyo_calls", NULL)),
                     0);
    json_object_put(again);
    json_object_put(env);
}
END_TEST

START_TEST(a_spent_day_shows_nothing_left_and_the_slot_a_day_away)
{
    kmlimit      daily = { 0 }, full;
    kmerr        err = { 0 };
    int64_t      wait = 0;
    json_object *env, *a;

    kmtier_limit(KMT_REPORTS, &full);
    daily.nwin = 1;
    daily.win[0] = full.win[2];
    for (int i = 0; i < 225; i++)
        ck_assert_int_eq(kmstore_take(kmsvc_store(toolfix_svc()), "acme:flow-values-reports",
                                      &daily, &wait, &err),
                         KM_OK);
    env = toolfix_ok(TOOL, "{\"account\":\"acme\"}");
    a = account_of(env, "acme");
    ck_assert_int_eq((int)kmjson_num(a, "report_calls_used_today", -1), 225);
    ck_assert_int_eq((int)kmjson_num(a, "report_calls_left_today", -1), 0);
    /* the oldest of the day's calls leaves the window in about a day */
    ck_assert(next_free(a, "reports") > 86000.0);
    ck_assert_double_eq(next_free(a, "M"), 0.0);
    kmerr_clear(&err);
    json_object_put(env);
}
END_TEST

START_TEST(without_an_account_every_account_is_listed_in_order)
{
    json_object *env = toolfix_ok(TOOL, "{}");
    json_object *list = kmjson_path(env, "data", "accounts", NULL);
    json_object *names = kmjson_path(toolfix_ok("klaviyo_list_accounts", "{}"), NULL);
    json_object *want = kmjson_path(names, "data", "accounts", NULL);

    ck_assert_uint_eq(json_object_array_length(list), json_object_array_length(want));
    ck_assert_uint_ge(json_object_array_length(list), 3);
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        ck_assert_str_eq(kmjson_str(json_object_array_get_idx(list, i), "account"),
                         kmjson_str(json_object_array_get_idx(want, i), "name"));
        (void)account_of(env, kmjson_str(json_object_array_get_idx(list, i), "account"));
    }
    json_object_put(names);
    json_object_put(env);
}
END_TEST

START_TEST(an_unknown_account_is_refused_with_the_available_ones)
{
    json_object *env = toolfix_fail(TOOL, "{\"account\":\"nobody\"}", KM_UNKNOWN_ACCOUNT,
                                    "nobody");

    ck_assert_int_eq(sim_total("total_calls"), 0);
    json_object_put(env);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("tools_budget");
    TCase *tc = tcase_create("real limits");

    tcase_add_unchecked_fixture(tc, sim_up_real, toolfix_sim_down);
    tcase_add_checked_fixture(tc, up_real_limits, toolfix_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_fresh_account_has_its_whole_day_and_every_tier_free);
    tcase_add_test(tc, a_report_call_shows_as_used_and_its_tier_busy_and_reading_costs_nothing);
    tcase_add_test(tc, a_spent_day_shows_nothing_left_and_the_slot_a_day_away);
    tcase_add_test(tc, without_an_account_every_account_is_listed_in_order);
    tcase_add_test(tc, an_unknown_account_is_refused_with_the_available_ones);
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
