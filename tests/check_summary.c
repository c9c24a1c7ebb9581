/* check_summary.c — the model's Markdown text over hand-built envelopes. */
#include "json.h"
#include "reg.h"
#include "shape.h"
#include "summary.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAMPAIGNS "klaviyo_get_campaign_performance"
#define SERIES "klaviyo_get_performance_over_time"

static json_object *
envelope(json_object *data, int nwarnings, size_t warning_len)
{
    json_object *env = json_object_new_object(), *meta = json_object_new_object();
    json_object *period = json_object_new_object(), *w = json_object_new_array();

    json_object_object_add(period, "start_date", json_object_new_string("2025-01-01"));
    json_object_object_add(period, "end_date", json_object_new_string("2026-06-30"));
    json_object_object_add(meta, "account", json_object_new_string("acme"));
    json_object_object_add(meta, "period", period);
    json_object_object_add(meta, "currency", json_object_new_string("USD"));
    for (int i = 0; i < nwarnings; i++) {
        char *s = malloc(warning_len + 1);
        memset(s, 'w', warning_len);
        s[warning_len] = '\0';
        json_object_array_add(w, json_object_new_string(s));
        free(s);
    }
    json_object_object_add(env, "data", data);
    json_object_object_add(env, "metadata", meta);
    json_object_object_add(env, "warnings", w);
    return env;
}

/* n campaigns; the name of the first holds a pipe and a multibyte character */
static json_object *
campaigns(size_t n, size_t name_len)
{
    json_object *data = json_object_new_object(), *rows = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();
        char        *name = malloc(name_len + 32);

        if (i == 0)
            snprintf(name, name_len + 32, "Spring | Sale \xc3\xa9t\xc3\xa9");
        else {
            memset(name, 'n', name_len);
            snprintf(name + name_len, 32, "%zu", i);
        }
        json_object_object_add(r, "campaign_id", json_object_new_string("C1"));
        json_object_object_add(r, "campaign_name", json_object_new_string(name));
        json_object_object_add(r, "sent", json_object_new_int64(1000 + (int64_t)i));
        json_object_object_add(r, "delivered", json_object_new_int64(990));
        json_object_object_add(r, "opens", json_object_new_int64(400));
        json_object_object_add(r, "open_rate", kmjson_double(0.404));
        json_object_object_add(r, "clicks", json_object_new_int64(40));
        json_object_object_add(r, "click_rate", kmjson_double(0.0404));
        json_object_object_add(r, "bounces", json_object_new_int64(10));
        json_object_object_add(r, "bounce_rate", kmjson_double(0.01));
        json_object_object_add(r, "unsubscribes", json_object_new_int64(1));
        json_object_object_add(r, "conversions", json_object_new_int64((int64_t)i));
        json_object_object_add(r, "conversion_value", kmjson_double(1234567.5 + (double)i));
        json_object_array_add(rows, r);
        free(name);
    }
    json_object_object_add(data, "campaigns", rows);
    json_object_object_add(data, "campaign_count", json_object_new_int64((int64_t)n));
    return data;
}

static char *
render_model(const char *tool, json_object *env, json_object *args)
{
    const struct kmtool *t = kmreg_find(tool);
    struct kmshape_info  info;
    kmerr                err = { 0 };
    char                *text;

    ck_assert_int_eq(kmshape_apply(t->shape, args, KMSHAPE_MODEL, kmjson_get(env, "data"), &info,
                                   &err), KM_OK);
    text = kmsummary_render(t, env, &info);
    kmshape_info_clear(&info);
    return text;
}

START_TEST(campaigns_show_window_totals_table_and_what_was_left_out)
{
    json_object *env = envelope(campaigns(60, 8), 1, 20), *args = json_object_new_object();
    char        *text = render_model(CAMPAIGNS, env, args);

    ck_assert_ptr_nonnull(strstr(text, "## Campaign performance - account `acme`, 2025-01-01 to "
                                       "2026-06-30"));
    ck_assert_ptr_nonnull(strstr(text, "Money in USD."));
    ck_assert_ptr_nonnull(strstr(text, "Totals over all 60 campaigns: sent 61,770"));
    ck_assert_ptr_nonnull(strstr(text, "| campaign_name | campaign_id | sent | open_rate |"));
    ck_assert_ptr_nonnull(strstr(text, "| 40.4% |"));
    ck_assert_ptr_nonnull(strstr(text, "| 1,234,626.50 |"));         /* the largest first */
    ck_assert_ptr_nonnull(strstr(text, "Showing 1-25 of 60 campaigns by conversion_value, "
                                       "highest first. 35 left out: pass offset=25"));
    ck_assert_ptr_nonnull(strstr(text, "- wwwwwwwwwwwwwwwwwwww\n"));
    free(text);
    json_object_put(args);
    json_object_put(env);
}
END_TEST

START_TEST(cells_escape_pipes_and_keep_characters_whole)
{
    json_object *env = envelope(campaigns(3, 200), 0, 0), *args = json_object_new_object();
    char        *text = render_model(CAMPAIGNS, env, args);

    ck_assert_ptr_nonnull(strstr(text, "Spring \\| Sale \xc3\xa9t\xc3\xa9"));
    ck_assert_ptr_nonnull(strstr(text, "nnn..."));           /* long names end in ... */
    ck_assert_ptr_null(strstr(text, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn"));
    ck_assert_ptr_nonnull(strstr(text, "All 3 campaigns shown by conversion_value"));
    free(text);
    json_object_put(args);
    json_object_put(env);
}
END_TEST

START_TEST(the_text_never_passes_its_cap)
{
    /* every row asked for, long names, and many long warnings */
    json_object *env = envelope(campaigns(3000, 40), 60, 500);
    json_object *args = json_object_new_object();
    char        *text;

    json_object_object_add(args, "limit", json_object_new_int(0));
    text = render_model(CAMPAIGNS, env, args);
    ck_assert_uint_le(strlen(text), KMSUMMARY_MAX_CHARS);
    ck_assert_ptr_nonnull(strstr(text, "(text cut to"));
    free(text);
    json_object_put(env);

    env = envelope(campaigns(3000, 40), 0, 0);
    text = render_model(CAMPAIGNS, env, args);
    ck_assert_uint_le(strlen(text), KMSUMMARY_MAX_CHARS);
    ck_assert_ptr_nonnull(strstr(text, "(table cut after"));
    ck_assert_ptr_nonnull(strstr(text, "All 3000 campaigns shown"));
    free(text);
    json_object_put(args);
    json_object_put(env);
}
END_TEST

static json_object *
series(size_t n, size_t nb)
{
    json_object *data = json_object_new_object(), *list = json_object_new_array();
    json_object *dates = json_object_new_array();

    for (size_t b = 0; b < nb; b++) {
        char d[32];
        snprintf(d, sizeof(d), "2025-%02zu-01T00:00:00", b % 12 + 1);
        json_object_array_add(dates, json_object_new_string(d));
    }
    for (size_t k = 0; k < n; k++) {
        json_object *s = json_object_new_object(), *g = json_object_new_object();
        json_object *st = json_object_new_object(), *cv = json_object_new_array();
        json_object *rate = json_object_new_array();

        json_object_object_add(g, "campaign_id", json_object_new_string("C"));
        json_object_object_add(g, "send_channel", json_object_new_string("email"));
        for (size_t b = 0; b < nb; b++) {
            json_object_array_add(cv, kmjson_double((double)k));
            json_object_array_add(rate, kmjson_double(0.5));
        }
        json_object_object_add(st, "conversion_value", cv);
        json_object_object_add(st, "open_rate", rate);
        json_object_object_add(s, "groupings", g);
        json_object_object_add(s, "statistics", st);
        json_object_array_add(list, s);
    }
    json_object_object_add(data, "entity", json_object_new_string("campaign"));
    json_object_object_add(data, "interval", json_object_new_string("weekly"));
    json_object_object_add(data, "date_times", dates);
    json_object_object_add(data, "series", list);
    return data;
}

START_TEST(series_show_top_series_other_and_bucket_totals)
{
    json_object *env = envelope(series(30, 26), 0, 0), *args = json_object_new_object();
    char        *text = render_model(SERIES, env, args);

    ck_assert_ptr_nonnull(strstr(text, "Entity campaign, weekly buckets: 26"));
    /* 0+1+...+29 = 435 per bucket, 26 buckets */
    ck_assert_ptr_nonnull(strstr(text, "Totals over all 30 series: conversion_value 11,310."));
    ck_assert_ptr_nonnull(strstr(text, "| series | conversion_value | open_rate (mean) |"));
    ck_assert_ptr_nonnull(strstr(text, "| other (20 series) | 4,940 | - |"));
    ck_assert_ptr_nonnull(strstr(text, "| 2025-01-01 | 435 |"));
    ck_assert_ptr_nonnull(strstr(text, "Showing the top 10 of 30 series by conversion_value; "
                                       "the other 20 are summed"));
    ck_assert_uint_le(strlen(text), KMSUMMARY_MAX_CHARS);
    free(text);
    json_object_put(args);
    json_object_put(env);
}
END_TEST

START_TEST(tools_without_rows_get_their_own_text)
{
    const struct kmtool *t = kmreg_find("klaviyo_get_list_growth");
    json_object         *data = NULL;
    json_object         *env;
    char                *text;
    kmerr                err = { 0 };
    static const char    growth[] = "{\"growth\":{\"list\":{\"subscribed\":12,\"unsubscribed\":2,"
                                    "\"net\":10},\"email\":{\"subscribed\":1500,\"unsubscribed\":"
                                    "null,\"net\":null},\"sms\":{\"subscribed\":0,"
                                    "\"unsubscribed\":0,\"net\":0}}}";

    ck_assert_int_eq(kmjson_parse(growth, strlen(growth), KM_INVALID_ARGUMENT, &data, &err),
                     KM_OK);
    env = envelope(data, 0, 0);
    text = kmsummary_render(t, env, NULL);
    ck_assert_ptr_nonnull(strstr(text, "| channel | subscribed | unsubscribed | net |"));
    ck_assert_ptr_nonnull(strstr(text, "| email | 1,500 | - | - |"));
    free(text);
    json_object_put(env);
}
END_TEST

static Suite *
summary_suite(void)
{
    Suite *s = suite_create("summary");
    TCase *tc = tcase_create("rows");

    tcase_add_test(tc, campaigns_show_window_totals_table_and_what_was_left_out);
    tcase_add_test(tc, cells_escape_pipes_and_keep_characters_whole);
    tcase_add_test(tc, the_text_never_passes_its_cap);
    suite_add_tcase(s, tc);
    tc = tcase_create("other");
    tcase_add_test(tc, series_show_top_series_other_and_bucket_totals);
    tcase_add_test(tc, tools_without_rows_get_their_own_text);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int      failed;

    kmreg_init();
    sr = srunner_create(summary_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    kmreg_free();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
