/* check_json.c — strict parsing, borrowed lookups and number printing on json-c. */
#include "json.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static kmcode
parse(const char *text, json_object **out, kmerr *err)
{
    return kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, out, err);
}

/* Text of a value made by kmjson_double; freed with the object. */
static void
assert_prints(double v, const char *want)
{
    json_object *o = kmjson_double(v);

    ck_assert_str_eq(json_object_to_json_string(o), want);
    json_object_put(o);
}

/* --- parsing ----------------------------------------------------------------------- */

START_TEST(one_object_parses)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(parse("{\"a\":[1,2.5,true,null,\"x\"]}", &o, &err), KM_OK);
    ck_assert(json_object_is_type(o, json_type_object));
    ck_assert_uint_eq(json_object_array_length(kmjson_get(o, "a")), 5);
    json_object_put(o);
}
END_TEST

START_TEST(trailing_whitespace_after_the_value_is_accepted)
{
    json_object *o = NULL;

    ck_assert_int_eq(parse("  [1, 2]\r\n\t \n", &o, NULL), KM_OK);
    ck_assert_uint_eq(json_object_array_length(o), 2);
    json_object_put(o);
}
END_TEST

START_TEST(a_top_level_scalar_parses)
{
    json_object *o = NULL;

    /* json-c cannot tell a number is complete until it sees what follows it */
    ck_assert_int_eq(parse("42", &o, NULL), KM_OK);
    ck_assert(json_object_is_type(o, json_type_int));
    ck_assert_int_eq(json_object_get_int(o), 42);
    json_object_put(o);
    ck_assert_int_eq(parse("-2.5", &o, NULL), KM_OK);
    ck_assert(fabs(json_object_get_double(o) + 2.5) < 1e-12);
    json_object_put(o);
    ck_assert_int_eq(parse("true", &o, NULL), KM_OK);
    ck_assert(json_object_get_boolean(o));
    json_object_put(o);
    ck_assert_int_eq(parse("\"s\"", &o, NULL), KM_OK);
    ck_assert_str_eq(json_object_get_string(o), "s");
    json_object_put(o);
    ck_assert_int_eq(parse("7 ", &o, NULL), KM_OK);
    ck_assert_int_eq(json_object_get_int(o), 7);
    json_object_put(o);
}
END_TEST

START_TEST(only_len_bytes_are_read)
{
    json_object *o = NULL;
    const char  *text = "[1][garbage";

    ck_assert_int_eq(kmjson_parse(text, 3, KM_INVALID_ARGUMENT, &o, NULL), KM_OK);
    ck_assert_uint_eq(json_object_array_length(o), 1);
    json_object_put(o);
    ck_assert_int_eq(kmjson_parse("12345", 2, KM_INVALID_ARGUMENT, &o, NULL), KM_OK);
    ck_assert_int_eq(json_object_get_int(o), 12);
    json_object_put(o);
}
END_TEST

START_TEST(trailing_garbage_is_rejected_with_its_offset)
{
    json_object *o = (json_object *)1;
    kmerr        err = { 0 };

    ck_assert_int_eq(parse("{\"a\":1} x", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    ck_assert_int_eq(err.code, KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "offset 8"));
    kmerr_clear(&err);
    ck_assert_int_eq(parse("[1] [2]", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "offset 4"));
    kmerr_clear(&err);
    ck_assert_int_eq(parse("1 2", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "offset 2"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_syntax_error_reports_where_it_is)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(parse("[1,2,x]", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    ck_assert_ptr_nonnull(strstr(err.msg, "offset 5"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(truncated_input_is_rejected)
{
    static const char *cases[] = { "{\"a\":", "[1,2", "{\"a\":\"unterminated", "tru", "" };
    json_object       *o = NULL;
    kmerr              err = { 0 };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ck_assert_int_eq(parse(cases[i], &o, &err), KM_INVALID_ARGUMENT);
        ck_assert_ptr_null(o);
        ck_assert_msg(strstr(err.msg, "malformed JSON") != NULL, "%s: %s", cases[i], err.msg);
        kmerr_clear(&err);
    }
    ck_assert_int_eq(parse("   \n", &o, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_literal_null_is_refused)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(parse("null", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    kmerr_clear(&err);
    ck_assert_int_eq(parse("null \n", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    kmerr_clear(&err);
    ck_assert_int_eq(parse(" null", &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    kmerr_clear(&err);
}
END_TEST

static char *
nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);

    memset(s, '[', (size_t)depth);
    memset(s + depth, ']', (size_t)depth);
    s[depth * 2] = '\0';
    return s;
}

START_TEST(nesting_up_to_64_levels_is_accepted)
{
    char        *s = nested(64);
    json_object *o = NULL;

    ck_assert_int_eq(parse(s, &o, NULL), KM_OK);
    json_object_put(o);
    free(s);
}
END_TEST

START_TEST(nesting_deeper_than_64_levels_is_refused)
{
    char        *s = nested(65);
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(parse(s, &o, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    ck_assert_ptr_nonnull(strstr(err.msg, "too deep"));
    kmerr_clear(&err);
    free(s);
}
END_TEST

START_TEST(the_caller_chooses_the_failure_code)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(kmjson_parse("{", 1, KM_UPSTREAM_ERROR, &o, &err), KM_UPSTREAM_ERROR);
    ck_assert_int_eq(err.code, KM_UPSTREAM_ERROR);
    kmerr_clear(&err);
    ck_assert_int_eq(kmjson_parse("{} }", 4, KM_UPSTREAM_ERROR, &o, &err), KM_UPSTREAM_ERROR);
    kmerr_clear(&err);
}
END_TEST

/* --- lookups ----------------------------------------------------------------------- */

START_TEST(get_str_and_num_borrow_members_and_check_types)
{
    json_object *o = NULL;

    ck_assert_int_eq(parse("{\"s\":\"x\",\"i\":3,\"d\":2.5,\"b\":true,\"n\":null}", &o, NULL),
                     KM_OK);
    ck_assert_ptr_nonnull(kmjson_get(o, "s"));
    ck_assert_ptr_null(kmjson_get(o, "missing"));
    ck_assert_ptr_null(kmjson_get(kmjson_get(o, "s"), "x"));  /* not an object */
    ck_assert_ptr_null(kmjson_get(NULL, "s"));
    ck_assert_str_eq(kmjson_str(o, "s"), "x");
    ck_assert_ptr_null(kmjson_str(o, "i"));
    ck_assert_ptr_null(kmjson_str(o, "n"));
    ck_assert(kmjson_num(o, "i", -1) == 3.0);
    ck_assert(kmjson_num(o, "d", -1) == 2.5);
    ck_assert(kmjson_num(o, "s", -1) == -1.0);
    ck_assert(kmjson_num(o, "b", -1) == -1.0);
    ck_assert(kmjson_num(o, "n", -1) == -1.0);
    ck_assert(kmjson_num(o, "missing", 7.5) == 7.5);
    json_object_put(o);
}
END_TEST

START_TEST(path_walks_nested_objects_and_stops_at_a_gap)
{
    json_object *o = NULL;

    ck_assert_int_eq(parse("{\"data\":{\"attributes\":{\"results\":[1]}},\"x\":1}", &o, NULL),
                     KM_OK);
    ck_assert(json_object_is_type(kmjson_path(o, "data", "attributes", "results", NULL),
                                  json_type_array));
    ck_assert_ptr_eq(kmjson_path(o, NULL), o);
    ck_assert_ptr_null(kmjson_path(o, "data", "nope", "results", NULL));
    ck_assert_ptr_null(kmjson_path(o, "x", "y", NULL));
    ck_assert_ptr_null(kmjson_path(NULL, "data", NULL));
    json_object_put(o);
}
END_TEST

/* --- numbers ----------------------------------------------------------------------- */

START_TEST(an_integral_double_prints_with_a_decimal_point)
{
    assert_prints(12000.0, "12000.0");
    assert_prints(0.0, "0.0");
    assert_prints(1.0, "1.0");
    assert_prints(-2.0, "-2.0");
    assert_prints(11800.0, "11800.0");
    assert_prints(100000000.0, "100000000.0");
}
END_TEST

START_TEST(a_fraction_prints_in_its_shortest_form)
{
    assert_prints(0.3, "0.3");
    assert_prints(0.05, "0.05");
    assert_prints(0.0167, "0.0167");
    assert_prints(1234.5, "1234.5");
    assert_prints(0.1 + 0.2, "0.30000000000000004");
}
END_TEST

START_TEST(every_printed_double_reads_back_as_the_same_value)
{
    const double vals[] = { 1.0 / 3.0, 2.0 / 3.0, 1e-7, 123456.789, 1e300, -5e-324,
                            9007199254740993.0, 0.1 };

    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        json_object *o = kmjson_double(vals[i]);
        const char  *t = json_object_to_json_string(o);
        json_object *back = NULL;

        ck_assert_msg(strtod(t, NULL) == vals[i], "%s does not read back", t);
        /* and it is valid JSON */
        ck_assert_int_eq(parse(t, &back, NULL), KM_OK);
        ck_assert(json_object_get_double(back) == vals[i]);
        json_object_put(back);
        json_object_put(o);
    }
}
END_TEST

START_TEST(a_non_finite_double_prints_as_zero)
{
    assert_prints(NAN, "0.0");
    assert_prints(INFINITY, "0.0");
}
END_TEST

START_TEST(doubles_keep_their_form_inside_objects_and_copies)
{
    json_object *o = json_object_new_object();
    json_object *copy;

    json_object_object_add(o, "sent", kmjson_double(12000));
    json_object_object_add(o, "open_rate", kmjson_double(0.3));
    ck_assert_str_eq(kmjson_text(o), "{\"sent\":12000.0,\"open_rate\":0.3}");
    copy = kmjson_copy(o);
    json_object_put(o);
    ck_assert_str_eq(kmjson_text(copy), "{\"sent\":12000.0,\"open_rate\":0.3}");
    json_object_put(copy);
    ck_assert_ptr_null(kmjson_copy(NULL));
}
END_TEST

START_TEST(text_does_not_escape_slashes)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "url", json_object_new_string("https://a.klaviyo.com/api/"));
    ck_assert_str_eq(kmjson_text(o), "{\"url\":\"https://a.klaviyo.com/api/\"}");
    json_object_put(o);
}
END_TEST

START_TEST(round_keeps_the_requested_decimals_half_away_from_zero)
{
    ck_assert(kmjson_round(200.0 / 12000.0, 4) == 0.0167);
    ck_assert(kmjson_round(3540.0 / 11800.0, 4) == 0.3);
    ck_assert(kmjson_round(0.12345, 2) == 0.12);
    ck_assert(kmjson_round(2.5, 0) == 3.0);
    ck_assert(kmjson_round(-2.5, 0) == -3.0);
    ck_assert(kmjson_round(0.125, 2) == 0.13);
    ck_assert(kmjson_round(7.0, 4) == 7.0);
}
END_TEST

static Suite *
json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_add_test(tc, one_object_parses);
    tcase_add_test(tc, trailing_whitespace_after_the_value_is_accepted);
    tcase_add_test(tc, a_top_level_scalar_parses);
    tcase_add_test(tc, only_len_bytes_are_read);
    tcase_add_test(tc, trailing_garbage_is_rejected_with_its_offset);
    tcase_add_test(tc, a_syntax_error_reports_where_it_is);
    tcase_add_test(tc, truncated_input_is_rejected);
    tcase_add_test(tc, a_literal_null_is_refused);
    tcase_add_test(tc, nesting_up_to_64_levels_is_accepted);
    tcase_add_test(tc, nesting_deeper_than_64_levels_is_refused);
    tcase_add_test(tc, the_caller_chooses_the_failure_code);
    suite_add_tcase(s, tc);

    tc = tcase_create("lookup");
    tcase_add_test(tc, get_str_and_num_borrow_members_and_check_types);
    tcase_add_test(tc, path_walks_nested_objects_and_stops_at_a_gap);
    suite_add_tcase(s, tc);

    tc = tcase_create("numbers");
    tcase_add_test(tc, an_integral_double_prints_with_a_decimal_point);
    tcase_add_test(tc, a_fraction_prints_in_its_shortest_form);
    tcase_add_test(tc, every_printed_double_reads_back_as_the_same_value);
    tcase_add_test(tc, a_non_finite_double_prints_as_zero);
    tcase_add_test(tc, doubles_keep_their_form_inside_objects_and_copies);
    tcase_add_test(tc, text_does_not_escape_slashes);
    tcase_add_test(tc, round_keeps_the_requested_decimals_half_away_from_zero);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
