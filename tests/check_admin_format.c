/* check_admin_format — klaviyo-mcp-admin's rendering: rows from answers, the aligned table,
 * RFC 4180 CSV. */
#include "format.h"
#include "json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_object *
parse(const char *text)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_msg(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &o, &err) == KM_OK, "%s",
                  err.msg);
    return o;
}

static char *
render(const char *envelope, kmadm_format f)
{
    json_object *env = parse(envelope);
    kmbuf        out;

    kmbuf_init(&out, 0);
    kmadm_render(env, f, &out);
    json_object_put(env);
    return kmbuf_take(&out, NULL);
}

START_TEST(csv_fields_are_quoted_only_when_rfc_4180_needs_it)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "plain", "plain" },
        { "a,b", "\"a,b\"" },
        { "say \"hi\"", "\"say \"\"hi\"\"\"" },
        { "two\nlines", "\"two\nlines\"" },
        { "cr\rhere", "\"cr\rhere\"" },
        { "", "" },
        { "Café ☕", "Café ☕" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kmbuf b;
        kmbuf_init(&b, 0);
        kmadm_csv_field(&b, cases[i].in);
        ck_assert_str_eq(b.data ? b.data : "", cases[i].out);
        kmbuf_free(&b);
    }
}
END_TEST

START_TEST(the_first_array_of_objects_gives_the_rows_with_dotted_columns)
{
    json_object      *data = parse("{\"flow_count\":2,\"flows\":[{\"a\":1,\"b\":{\"c\":2}},"
                                   "{\"a\":3,\"d\":\"x\",\"e\":[1,2]}],\"other\":[{\"z\":1}]}");
    struct kmadm_rows r;

    kmadm_rows_from_data(data, &r);
    ck_assert_uint_eq(r.ncols, 4);
    ck_assert_str_eq(r.cols[0], "a");
    ck_assert_str_eq(r.cols[1], "b.c");
    ck_assert_str_eq(r.cols[2], "d");
    ck_assert_str_eq(r.cols[3], "e");
    ck_assert_uint_eq(json_object_array_length(r.rows), 2);
    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(r.rows, 1), "e"), "[1,2]");
    kmadm_rows_free(&r);
    json_object_put(data);
}
END_TEST

START_TEST(a_series_is_one_row_per_series_and_date)
{
    json_object *data = parse("{\"entity\":\"flow\",\"interval\":\"weekly\",\"date_times\":"
                              "[\"2025-01-06\",\"2025-01-13\"],\"series\":[{\"groupings\":"
                              "{\"flow_id\":\"F1\"},\"statistics\":{\"opens\":[5,7]}},"
                              "{\"groupings\":{\"flow_id\":\"F2\"},\"statistics\":"
                              "{\"opens\":[1,null]}}]}");
    struct kmadm_rows r;
    json_object      *last;

    kmadm_rows_from_data(data, &r);
    ck_assert_uint_eq(json_object_array_length(r.rows), 4);
    ck_assert_uint_eq(r.ncols, 3);
    ck_assert_str_eq(r.cols[0], "date_time");
    ck_assert_str_eq(r.cols[1], "flow_id");
    ck_assert_str_eq(r.cols[2], "opens");
    last = json_object_array_get_idx(r.rows, 3);
    ck_assert_str_eq(kmjson_str(last, "date_time"), "2025-01-13");
    ck_assert_str_eq(kmjson_str(last, "flow_id"), "F2");
    ck_assert(json_object_is_type(kmjson_get(last, "opens"), json_type_null));
    kmadm_rows_free(&r);
    json_object_put(data);
}
END_TEST

START_TEST(an_answer_without_a_list_is_one_row)
{
    json_object      *data = parse("{\"growth\":{\"email\":{\"net\":4}},\"n\":1}");
    struct kmadm_rows r;

    kmadm_rows_from_data(data, &r);
    ck_assert_uint_eq(json_object_array_length(r.rows), 1);
    ck_assert_uint_eq(r.ncols, 2);
    ck_assert_str_eq(r.cols[0], "growth.email.net");
    kmadm_rows_free(&r);
    json_object_put(data);
}
END_TEST

START_TEST(the_table_aligns_numbers_right_and_shows_rates_money_and_nulls)
{
    char *t = render("{\"data\":{\"campaigns\":[{\"name\":\"Spring\",\"sent\":1200,"
                     "\"open_rate\":0.4104,\"conversion_value\":213.875},{\"name\":\"Fall sale\","
                     "\"sent\":35,\"open_rate\":null,\"conversion_value\":0}]},"
                     "\"metadata\":{\"currency\":\"USD\"},\"warnings\":[\"a note\"]}",
                     KMADM_TABLE);

    ck_assert_str_eq(t, "name       sent  open_rate  conversion_value\n"
                        "Spring     1200     41.04%        213.88 USD\n"
                        "Fall sale    35          -          0.00 USD\n"
                        "warning: a note\n");
    free(t);
}
END_TEST

START_TEST(one_wide_row_is_shown_on_its_side)
{
    char *t = render("{\"data\":{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,"
                     "\"click_rate\":0.5,\"h\":\"x\"},\"metadata\":{},\"warnings\":[]}",
                     KMADM_TABLE);

    ck_assert_ptr_nonnull(strstr(t, "a           1\n"));
    ck_assert_ptr_nonnull(strstr(t, "click_rate  50.00%\n"));
    ck_assert_ptr_nonnull(strstr(t, "h           x\n"));
    free(t);
}
END_TEST

START_TEST(csv_has_a_header_crlf_lines_and_values_as_json_has_them)
{
    char *t = render("{\"data\":{\"lists\":[{\"name\":\"VIP, gold\",\"count\":13.0,"
                     "\"rate\":0.1538,\"ok\":true,\"gone\":null},{\"name\":\"say \\\"hi\\\"\","
                     "\"count\":2,\"rate\":0.1,\"ok\":false,\"gone\":null}]},\"metadata\":{},"
                     "\"warnings\":[\"not in csv\"]}",
                     KMADM_CSV);

    ck_assert_str_eq(t, "name,count,rate,ok,gone\r\n"
                        "\"VIP, gold\",13,0.1538,true,\r\n"
                        "\"say \"\"hi\"\"\",2,0.1,false,\r\n");
    free(t);
}
END_TEST

START_TEST(json_is_the_envelope)
{
    char        *t = render("{\"data\":{\"x\":[1]},\"metadata\":{\"account\":\"acme\"},"
                            "\"warnings\":[]}", KMADM_JSON);
    json_object *back = parse(t), *want = parse("{\"data\":{\"x\":[1]},\"metadata\":"
                                                "{\"account\":\"acme\"},\"warnings\":[]}");

    ck_assert(json_object_equal(back, want));
    json_object_put(back);
    json_object_put(want);
    free(t);
}
END_TEST

START_TEST(formats_parse_by_name)
{
    kmadm_format f;

    ck_assert_int_eq(kmadm_format_parse("csv", &f), 0);
    ck_assert_int_eq(f, KMADM_CSV);
    ck_assert_int_eq(kmadm_format_parse("table", &f), 0);
    ck_assert_int_eq(f, KMADM_TABLE);
    ck_assert_int_eq(kmadm_format_parse("json", &f), 0);
    ck_assert_int_eq(f, KMADM_JSON);
    ck_assert_int_eq(kmadm_format_parse("xml", &f), -1);
    ck_assert_int_eq(kmadm_format_parse(NULL, &f), -1);
}
END_TEST

static Suite *
suite(void)
{
    Suite *s = suite_create("admin_format");
    TCase *tc = tcase_create("rows");

    tcase_add_test(tc, the_first_array_of_objects_gives_the_rows_with_dotted_columns);
    tcase_add_test(tc, a_series_is_one_row_per_series_and_date);
    tcase_add_test(tc, an_answer_without_a_list_is_one_row);
    suite_add_tcase(s, tc);
    tc = tcase_create("render");
    tcase_add_test(tc, csv_fields_are_quoted_only_when_rfc_4180_needs_it);
    tcase_add_test(tc, the_table_aligns_numbers_right_and_shows_rates_money_and_nulls);
    tcase_add_test(tc, one_wide_row_is_shown_on_its_side);
    tcase_add_test(tc, csv_has_a_header_crlf_lines_and_values_as_json_has_them);
    tcase_add_test(tc, json_is_the_envelope);
    tcase_add_test(tc, formats_parse_by_name);
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
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
