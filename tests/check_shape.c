/* check_shape.c — paging, sorting and top-N series over hand-built answers, with the
 * registry's own shaping metadata. */
#include "json.h"
#include "reg.h"
#include "shape.h"

#include <check.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static json_object *
parse(const char *text)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &o, &err), KM_OK);
    return o;
}

static const struct kmshape_spec *
spec_of(const char *tool)
{
    const struct kmtool *t = kmreg_find(tool);

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(t->shape);
    return t->shape;
}

/* n campaign rows; values repeat every 3 rows so every field has ties; "i" is the tool order */
static json_object *
campaigns(size_t n)
{
    json_object *data = json_object_new_object();
    json_object *rows = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();
        char         name[32];

        snprintf(name, sizeof(name), "Campaign %c", (int)('A' + (i % 3)));
        json_object_object_add(r, "i", json_object_new_int64((int64_t)i));
        json_object_object_add(r, "campaign_id", json_object_new_string(i % 2 ? "B1" : "A1"));
        json_object_object_add(r, "campaign_name", json_object_new_string(name));
        json_object_object_add(r, "sent", json_object_new_int64((int64_t)(100 * (i % 3))));
        json_object_object_add(r, "delivered", json_object_new_int64((int64_t)(90 * (i % 3))));
        json_object_object_add(r, "opens", json_object_new_int64((int64_t)(i % 4)));
        json_object_object_add(r, "open_rate",
                               i % 5 == 0 ? NULL : kmjson_double(0.1 * (double)(i % 2)));
        json_object_object_add(r, "clicks", json_object_new_int64((int64_t)(i % 2)));
        json_object_object_add(r, "click_rate", kmjson_double(0.05 * (double)(i % 3)));
        json_object_object_add(r, "bounces", json_object_new_int64(1));
        json_object_object_add(r, "bounce_rate", kmjson_double(0.01));
        json_object_object_add(r, "unsubscribes", json_object_new_int64((int64_t)(i % 2)));
        json_object_object_add(r, "conversions", json_object_new_int64((int64_t)(i % 3)));
        json_object_object_add(r, "conversion_value", kmjson_double(10.5 * (double)(i % 3)));
        json_object_array_add(rows, r);
    }
    json_object_object_add(data, "campaigns", rows);
    json_object_object_add(data, "campaign_count", json_object_new_int64((int64_t)n));
    return data;
}

static json_object *
limit_args(long limit)
{
    json_object *a = json_object_new_object();

    json_object_object_add(a, "limit", json_object_new_int64(limit));
    return a;
}

static void
shape_ok(const char *tool, json_object *args, kmshape_view view, json_object *data,
         struct kmshape_info *info)
{
    kmerr err = { 0 };

    ck_assert_msg(kmshape_apply(spec_of(tool), args, view, data, info, &err) == KM_OK, "%s",
                  err.msg);
}

#define CAMPAIGNS "klaviyo_get_campaign_performance"

/* --- edges ------------------------------------------------------------------------------ */

static void
edge(size_t rows, long limit, int truncated, size_t shown)
{
    json_object        *data = campaigns(rows), *args = limit_args(limit);
    struct kmshape_info info;

    shape_ok(CAMPAIGNS, args, KMSHAPE_REST, data, &info);
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(data, "truncated")), truncated);
    ck_assert_int_eq(json_object_get_int64(kmjson_get(data, "total_count")), (int64_t)rows);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "campaigns")), shown);
    /* the count keeps counting every row */
    ck_assert_int_eq(json_object_get_int64(kmjson_get(data, "campaign_count")), (int64_t)rows);
    ck_assert_uint_eq(info.total, rows);
    ck_assert_uint_eq(info.shown, shown);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}

START_TEST(zero_rows_are_not_truncated)
{
    edge(0, 5, 0, 0);
}
END_TEST

START_TEST(exactly_limit_rows_are_not_truncated)
{
    edge(5, 5, 0, 5);
}
END_TEST

START_TEST(limit_plus_one_rows_are_truncated)
{
    edge(6, 5, 1, 5);
}
END_TEST

START_TEST(limit_zero_returns_every_row)
{
    edge(40, 0, 0, 40);
}
END_TEST

START_TEST(offset_pages_and_past_the_end_is_empty)
{
    json_object        *data = campaigns(7), *args = parse("{\"limit\":3,\"offset\":6}");
    struct kmshape_info info;

    shape_ok(CAMPAIGNS, args, KMSHAPE_REST, data, &info);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "campaigns")), 1);
    ck_assert_int_eq(kmjson_num(json_object_array_get_idx(kmjson_get(data, "campaigns"), 0), "i",
                                -1), 6);
    ck_assert(json_object_get_boolean(kmjson_get(data, "truncated")));
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);

    data = campaigns(7);
    args = parse("{\"offset\":9}");
    shape_ok(CAMPAIGNS, args, KMSHAPE_REST, data, &info);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "campaigns")), 0);
    ck_assert(json_object_get_boolean(kmjson_get(data, "truncated")));
    ck_assert_int_eq(json_object_get_int64(kmjson_get(data, "total_count")), 7);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}
END_TEST

START_TEST(rest_without_paging_arguments_is_unchanged)
{
    json_object        *data = campaigns(60), *copy = kmjson_copy(data);
    json_object        *args = parse("{\"account\":\"acme\"}");
    struct kmshape_info info;

    shape_ok(CAMPAIGNS, args, KMSHAPE_REST, data, &info);
    ck_assert(json_object_equal(data, copy));
    ck_assert_int_eq(info.paged, 0);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(copy);
    json_object_put(data);
}
END_TEST

START_TEST(a_model_gets_the_default_limit_and_sort)
{
    json_object        *data = campaigns(60), *args = json_object_new_object();
    json_object        *rows;
    struct kmshape_info info;

    shape_ok(CAMPAIGNS, args, KMSHAPE_MODEL, data, &info);
    rows = kmjson_get(data, "campaigns");
    ck_assert_uint_eq(json_object_array_length(rows), KMSHAPE_MODEL_ROWS);
    ck_assert_str_eq(info.sort_by, "conversion_value");
    ck_assert_int_eq(info.desc, 1);
    ck_assert_int_eq(kmjson_num(json_object_array_get_idx(rows, 0), "conversion_value", -1), 21);
    /* a model that asks for everything gets it */
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
    data = campaigns(60);
    args = limit_args(0);
    shape_ok(CAMPAIGNS, args, KMSHAPE_MODEL, data, &info);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "campaigns")), 60);
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(data, "truncated")), 0);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}
END_TEST

START_TEST(totals_cover_every_row_whatever_the_limit)
{
    json_object *all = NULL;

    for (long limit = 0; limit <= 12; limit += 3) {
        json_object        *data = campaigns(11), *args = limit_args(limit);
        struct kmshape_info info;

        shape_ok(CAMPAIGNS, args, KMSHAPE_MODEL, data, &info);
        ck_assert_ptr_nonnull(info.totals);
        ck_assert_double_eq_tol(kmjson_num(info.totals, "sent", -1), 100.0 * (4 + 3 * 2), 1e-9);
        if (!all)
            all = json_object_get(info.totals);
        else
            ck_assert(json_object_equal(all, info.totals));
        kmshape_info_clear(&info);
        json_object_put(args);
        json_object_put(data);
    }
    json_object_put(all);
}
END_TEST

/* --- sorting ---------------------------------------------------------------------------- */

/* Rows with every sortable field of `spec` set from a few values (ties) and some nulls. */
static json_object *
rows_for(const struct kmshape_spec *spec, size_t n)
{
    json_object *data = json_object_new_object();
    json_object *rows = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();

        json_object_object_add(r, "i", json_object_new_int64((int64_t)i));
        for (size_t f = 0; spec->sortable[f]; f++) {
            const char *name = spec->sortable[f];
            size_t      v = (i * (f + 1) + f) % 4;      /* ties on purpose */
            json_object *val;

            if ((i + f) % 7 == 0)
                val = NULL;
            else if (strstr(name, "name") || strstr(name, "_id") || strcmp(name, "status") == 0 ||
                     strcmp(name, "trigger_type") == 0 || strcmp(name, "send_channel") == 0 ||
                     strcmp(name, "created") == 0 || strcmp(name, "updated") == 0) {
                char s[32];
                snprintf(s, sizeof(s), "%c-value", (int)("bBaA"[v]));
                val = json_object_new_string(s);
            } else {
                val = kmjson_double((double)v * 1.5);
            }
            json_object_object_add(r, name, val);
        }
        json_object_array_add(rows, r);
    }
    json_object_object_add(data, spec->rows, rows);
    return data;
}

static int
cmp_values(json_object *a, json_object *b)
{
    if (json_object_is_type(a, json_type_string))
        return strcasecmp(json_object_get_string(a), json_object_get_string(b));
    return json_object_get_double(a) < json_object_get_double(b) ? -1 :
           json_object_get_double(a) > json_object_get_double(b);
}

static void
check_sorted(const char *tool, const char *field, const char *order)
{
    const struct kmshape_spec *spec = spec_of(tool);
    json_object               *data = rows_for(spec, 23), *args = json_object_new_object();
    json_object               *rows;
    struct kmshape_info        info;
    int                        seen_null = 0;

    json_object_object_add(args, "sort_by", json_object_new_string(field));
    if (order)
        json_object_object_add(args, "sort_order", json_object_new_string(order));
    shape_ok(tool, args, KMSHAPE_REST, data, &info);
    rows = kmjson_get(data, spec->rows);
    ck_assert_uint_eq(json_object_array_length(rows), 23);
    for (size_t i = 0; i + 1 < 23; i++) {
        json_object *a = json_object_array_get_idx(rows, i);
        json_object *b = json_object_array_get_idx(rows, i + 1);
        json_object *va = kmjson_get(a, field), *vb = kmjson_get(b, field);
        int          c;

        if (!va) {
            seen_null = 1;
            ck_assert_msg(!vb, "%s %s: a value after a null", tool, field);
        }
        if (!va || !vb) {
            if (!va && !vb)
                ck_assert_int_lt(kmjson_num(a, "i", 0), kmjson_num(b, "i", 0));
            continue;
        }
        c = cmp_values(va, vb);
        if (info.desc)
            c = -c;
        ck_assert_msg(c <= 0, "%s sort_by %s: row %zu out of order", tool, field, i);
        if (c == 0)
            ck_assert_msg(kmjson_num(a, "i", 0) < kmjson_num(b, "i", 0),
                          "%s sort_by %s: a tie left the tool's order at row %zu", tool, field, i);
    }
    (void)seen_null;
    if (order)
        ck_assert_int_eq(info.desc, strcmp(order, "desc") == 0);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}

START_TEST(sort_by_every_allowed_field_keeps_ties_in_tool_order)
{
    size_t checked = 0;

    for (size_t t = 0; t < kmreg_count(); t++) {
        const struct kmtool *tool = kmreg_at(t);

        if (!tool->shape || tool->shape->series)
            continue;
        for (size_t f = 0; tool->shape->sortable[f]; f++) {
            check_sorted(tool->name, tool->shape->sortable[f], NULL);
            check_sorted(tool->name, tool->shape->sortable[f], "asc");
            check_sorted(tool->name, tool->shape->sortable[f], "desc");
            checked++;
        }
    }
    ck_assert_uint_ge(checked, 30);
}
END_TEST

START_TEST(the_input_schema_lists_exactly_the_sortable_fields)
{
    for (size_t t = 0; t < kmreg_count(); t++) {
        const struct kmtool *tool = kmreg_at(t);
        json_object         *en;
        size_t               n = 0;

        if (!tool->shape || tool->shape->series)
            continue;
        en = kmjson_path(tool->input, "properties", "sort_by", "enum", NULL);
        ck_assert_ptr_nonnull(en);
        while (tool->shape->sortable[n])
            n++;
        ck_assert_uint_eq(json_object_array_length(en), n);
        for (size_t i = 0; i < n; i++)
            ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(en, i)),
                             tool->shape->sortable[i]);
    }
}
END_TEST

START_TEST(limit_above_the_maximum_is_refused_by_the_schema)
{
    json_object *args = parse("{\"limit\":10001}");
    kmerr        err = { 0 };

    ck_assert_int_eq(kmreg_validate(kmreg_find(CAMPAIGNS), args, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "limit"));
    json_object_put(args);
    args = parse("{\"limit\":-1}");
    ck_assert_int_eq(kmreg_validate(kmreg_find(CAMPAIGNS), args, &err), KM_INVALID_ARGUMENT);
    json_object_put(args);
}
END_TEST

/* --- series ----------------------------------------------------------------------------- */

#define SERIES "klaviyo_get_performance_over_time"

/* n series over 4 buckets: conversion_value of series k is k+1 in each bucket (so the
 * largest are the last), opens 2k, with a null here and there; open_rate a ratio */
static json_object *
series(size_t n)
{
    json_object *data = json_object_new_object();
    json_object *list = json_object_new_array();
    json_object *dates = json_object_new_array();

    for (int b = 0; b < 4; b++) {
        char d[32];
        snprintf(d, sizeof(d), "2025-01-0%dT00:00:00", b + 1);
        json_object_array_add(dates, json_object_new_string(d));
    }
    for (size_t k = 0; k < n; k++) {
        json_object *s = json_object_new_object(), *g = json_object_new_object();
        json_object *st = json_object_new_object();
        json_object *cv = json_object_new_array(), *op = json_object_new_array();
        json_object *rate = json_object_new_array();

        json_object_object_add(g, "flow_id", json_object_new_string("F"));
        json_object_object_add(g, "flow_message_id", json_object_new_int64((int64_t)k));
        for (int b = 0; b < 4; b++) {
            json_object_array_add(cv, kmjson_double((double)k + 1));
            json_object_array_add(op, (k + (size_t)b) % 3 == 0 ? NULL :
                                  kmjson_double(2.0 * (double)k));
            json_object_array_add(rate, kmjson_double(0.25));
        }
        json_object_object_add(st, "conversion_value", cv);
        json_object_object_add(st, "opens", op);
        json_object_object_add(st, "open_rate", rate);
        json_object_object_add(s, "groupings", g);
        json_object_object_add(s, "statistics", st);
        json_object_array_add(list, s);
    }
    json_object_object_add(data, "entity", json_object_new_string("flow"));
    json_object_object_add(data, "interval", json_object_new_string("daily"));
    json_object_object_add(data, "date_times", dates);
    json_object_object_add(data, "series", list);
    return data;
}

START_TEST(other_series_is_the_sum_of_the_cut_series)
{
    json_object        *orig = series(7), *data = kmjson_copy(orig), *args = limit_args(3);
    json_object        *list, *other;
    struct kmshape_info info;

    shape_ok(SERIES, args, KMSHAPE_REST, data, &info);
    list = kmjson_get(data, "series");
    ck_assert_uint_eq(json_object_array_length(list), 4);
    ck_assert(json_object_get_boolean(kmjson_get(data, "truncated")));
    ck_assert_int_eq(json_object_get_int64(kmjson_get(data, "total_count")), 7);
    ck_assert_uint_eq(info.other, 4);
    /* the top 3 by conversion_value are series 6, 5, 4 */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(json_object_get_int(kmjson_path(json_object_array_get_idx(list, (size_t)i),
                                                         "groupings", "flow_message_id", NULL)),
                         6 - i);
    other = json_object_array_get_idx(list, 3);
    ck_assert(json_object_get_boolean(kmjson_path(other, "groupings", "other", NULL)));
    ck_assert_int_eq(json_object_get_int(kmjson_path(other, "groupings", "series_count", NULL)),
                     4);
    for (size_t b = 0; b < 4; b++) {
        double cv = 0, op = 0;
        int    any = 0;

        for (size_t k = 0; k < 4; k++) {        /* series 0..3 were cut */
            json_object *s = json_object_array_get_idx(kmjson_get(orig, "series"), k);
            json_object *v = json_object_array_get_idx(kmjson_path(s, "statistics", "opens", NULL),
                                                       b);
            cv += json_object_get_double(json_object_array_get_idx(
                kmjson_path(s, "statistics", "conversion_value", NULL), b));
            if (v) {
                op += json_object_get_double(v);
                any = 1;
            }
        }
        ck_assert_double_eq_tol(json_object_get_double(json_object_array_get_idx(
            kmjson_path(other, "statistics", "conversion_value", NULL), b)), cv, 1e-9);
        if (any)
            ck_assert_double_eq_tol(json_object_get_double(json_object_array_get_idx(
                kmjson_path(other, "statistics", "opens", NULL), b)), op, 1e-9);
        /* a sum of rates means nothing */
        ck_assert_ptr_null(json_object_array_get_idx(
            kmjson_path(other, "statistics", "open_rate", NULL), b));
    }
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
    json_object_put(orig);
}
END_TEST

START_TEST(series_at_the_limit_get_no_other)
{
    json_object        *data = series(3), *args = limit_args(3);
    struct kmshape_info info;

    shape_ok(SERIES, args, KMSHAPE_REST, data, &info);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "series")), 3);
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(data, "truncated")), 0);
    ck_assert_uint_eq(info.other, 0);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);

    data = series(0);
    args = limit_args(3);
    shape_ok(SERIES, args, KMSHAPE_MODEL, data, &info);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "series")), 0);
    ck_assert_int_eq(json_object_get_int(kmjson_get(data, "total_count")), 0);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}
END_TEST

START_TEST(series_rank_by_sort_by_and_sort_order)
{
    json_object        *data = series(5);
    json_object        *args = parse("{\"limit\":2,\"sort_by\":\"opens\",\"sort_order\":\"asc\"}");
    json_object        *list;
    struct kmshape_info info;

    shape_ok(SERIES, args, KMSHAPE_REST, data, &info);
    list = kmjson_get(data, "series");
    /* series 0 has opens 0 everywhere: the smallest */
    ck_assert_int_eq(json_object_get_int(kmjson_path(json_object_array_get_idx(list, 0),
                                                     "groupings", "flow_message_id", NULL)), 0);
    ck_assert_int_eq(json_object_get_int(kmjson_path(json_object_array_get_idx(list, 1),
                                                     "groupings", "flow_message_id", NULL)), 1);
    kmshape_info_clear(&info);
    json_object_put(args);
    json_object_put(data);
}
END_TEST

START_TEST(series_sort_by_a_statistic_not_carried_is_refused)
{
    json_object        *data = series(2), *copy = kmjson_copy(data);
    json_object        *args = parse("{\"sort_by\":\"clicks\"}");
    struct kmshape_info info;
    kmerr               err = { 0 };

    ck_assert_int_eq(kmshape_apply(spec_of(SERIES), args, KMSHAPE_REST, data, &info, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert(json_object_equal(data, copy));
    kmshape_info_clear(&info);
    json_object_put(args);
    args = parse("{\"sort_by\":\"clicks\",\"statistics\":[\"opens\"]}");
    ck_assert_int_eq(kmshape_check(spec_of(SERIES), args, &err), KM_INVALID_ARGUMENT);
    json_object_put(args);
    args = parse("{\"sort_by\":\"opens\",\"statistics\":[\"opens\"]}");
    ck_assert_int_eq(kmshape_check(spec_of(SERIES), args, &err), KM_OK);
    json_object_put(args);
    json_object_put(copy);
    json_object_put(data);
}
END_TEST

START_TEST(additive_statistics_exclude_ratios)
{
    ck_assert(kmshape_additive("opens_unique"));
    ck_assert(kmshape_additive("conversion_value"));
    ck_assert(!kmshape_additive("open_rate"));
    ck_assert(!kmshape_additive("average_order_value"));
    ck_assert(!kmshape_additive("revenue_per_recipient"));
    ck_assert(!kmshape_additive(NULL));
}
END_TEST

static Suite *
shape_suite(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("edges");

    tcase_add_test(tc, zero_rows_are_not_truncated);
    tcase_add_test(tc, exactly_limit_rows_are_not_truncated);
    tcase_add_test(tc, limit_plus_one_rows_are_truncated);
    tcase_add_test(tc, limit_zero_returns_every_row);
    tcase_add_test(tc, offset_pages_and_past_the_end_is_empty);
    tcase_add_test(tc, rest_without_paging_arguments_is_unchanged);
    tcase_add_test(tc, a_model_gets_the_default_limit_and_sort);
    tcase_add_test(tc, totals_cover_every_row_whatever_the_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("sorting");
    tcase_add_test(tc, sort_by_every_allowed_field_keeps_ties_in_tool_order);
    tcase_add_test(tc, the_input_schema_lists_exactly_the_sortable_fields);
    tcase_add_test(tc, limit_above_the_maximum_is_refused_by_the_schema);
    suite_add_tcase(s, tc);
    tc = tcase_create("series");
    tcase_add_test(tc, other_series_is_the_sum_of_the_cut_series);
    tcase_add_test(tc, series_at_the_limit_get_no_other);
    tcase_add_test(tc, series_rank_by_sort_by_and_sort_order);
    tcase_add_test(tc, series_sort_by_a_statistic_not_carried_is_refused);
    tcase_add_test(tc, additive_statistics_exclude_ratios);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int      failed;

    kmreg_init();
    sr = srunner_create(shape_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    kmreg_free();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
