/* check_result.c — the shim's success results: summary as text, envelope as
 * structuredContent, and the hard message cap. */
#include "json.h"
#include "result.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t
size_of(json_object *o)
{
    return strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* An envelope with n rows of about 200 bytes each and a summary. */
static json_object *
envelope(size_t n, const char *summary)
{
    json_object *env = json_object_new_object(), *data = json_object_new_object();
    json_object *rows = json_object_new_array(), *dates = json_object_new_array();

    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_new_object();
        char         name[200];

        memset(name, 'x', sizeof(name) - 1);
        name[sizeof(name) - 1] = '\0';
        json_object_object_add(r, "i", json_object_new_int64((int64_t)i));
        json_object_object_add(r, "name", json_object_new_string(name));
        json_object_array_add(rows, r);
    }
    json_object_array_add(dates, json_object_new_string("2025-01-01"));
    json_object_object_add(data, "campaigns", rows);
    json_object_object_add(data, "date_times", dates);
    json_object_object_add(data, "campaign_count", json_object_new_int64((int64_t)n));
    json_object_object_add(env, "data", data);
    json_object_object_add(env, "metadata", json_object_new_object());
    json_object_object_add(env, "warnings", json_object_new_array());
    if (summary)
        json_object_object_add(env, "summary", json_object_new_string(summary));
    return env;
}

static const char *
text_of(json_object *r)
{
    return kmjson_str(json_object_array_get_idx(kmjson_get(r, "content"), 0), "text");
}

START_TEST(the_summary_is_the_text_and_leaves_structured_content)
{
    json_object *env = envelope(3, "## Campaigns\n3 rows");
    json_object *want = kmjson_copy(kmjson_get(env, "data"));
    json_object *r = kmmcp_result_success(env, KMMCP_DEFAULT_MAX_MESSAGE);

    ck_assert_str_eq(text_of(r), "## Campaigns\n3 rows");
    ck_assert_ptr_null(kmjson_path(r, "structuredContent", "summary", NULL));
    ck_assert(json_object_equal(kmjson_path(r, "structuredContent", "data", NULL), want));
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(r, "isError")), 0);
    json_object_put(want);
    json_object_put(r);
}
END_TEST

START_TEST(without_a_summary_the_text_is_the_envelope)
{
    json_object *r = kmmcp_result_success(envelope(2, NULL), KMMCP_DEFAULT_MAX_MESSAGE);
    json_object *back = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(kmjson_parse(text_of(r), strlen(text_of(r)), KM_INVALID_ARGUMENT, &back,
                                  &err), KM_OK);
    ck_assert(json_object_equal(back, kmjson_get(r, "structuredContent")));
    json_object_put(back);
    json_object_put(r);
}
END_TEST

START_TEST(a_result_over_the_cap_is_cut_to_fit_and_says_so)
{
    size_t       cap = KMMCP_MIN_MAX_MESSAGE;
    json_object *r = kmmcp_result_success(envelope(2000, "summary"), cap);
    json_object *rows = kmjson_path(r, "structuredContent", "data", "campaigns", NULL);
    size_t       n = json_object_array_length(rows);

    ck_assert_uint_le(size_of(r) + KMMCP_FRAME_RESERVE, cap);
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(r, "isError")), 0);
    ck_assert_uint_gt(n, 100);                 /* cut, not emptied */
    ck_assert_uint_lt(n, 2000);
    /* the first rows stay, in order */
    ck_assert_int_eq(kmjson_num(json_object_array_get_idx(rows, n - 1), "i", -1), (double)(n - 1));
    ck_assert(json_object_get_boolean(kmjson_path(r, "structuredContent", "data", "truncated",
                                                  NULL)));
    ck_assert_int_eq(kmjson_num(kmjson_path(r, "structuredContent", "data", NULL),
                                "campaign_count", -1), 2000);
    ck_assert_ptr_nonnull(strstr(text_of(r), "data.campaigns holds the first"));
    ck_assert_ptr_nonnull(strstr(text_of(r), "of 2000 items"));
    ck_assert_uint_eq(json_object_array_length(kmjson_path(r, "structuredContent", "warnings",
                                                           NULL)), 1);
    /* arrays of strings are never cut (series date_times must stay aligned) */
    ck_assert_uint_eq(json_object_array_length(kmjson_path(r, "structuredContent", "data",
                                                           "date_times", NULL)), 1);
    json_object_put(r);
}
END_TEST

START_TEST(a_result_that_cannot_be_cut_is_an_error_not_a_broken_message)
{
    size_t cap = KMMCP_MIN_MAX_MESSAGE;
    char  *big = malloc(cap * 2);
    json_object *r;

    memset(big, 's', cap * 2 - 1);
    big[cap * 2 - 1] = '\0';
    r = kmmcp_result_success(envelope(0, big), cap);
    ck_assert_int_eq(json_object_get_boolean(kmjson_get(r, "isError")), 1);
    ck_assert_ptr_nonnull(strstr(text_of(r), "message cap"));
    ck_assert_uint_le(size_of(r), cap);
    json_object_put(r);
    free(big);
}
END_TEST

START_TEST(the_cap_is_parsed_and_bounded)
{
    size_t cap = 0;
    kmerr  err = { 0 };

    ck_assert_int_eq(kmmcp_result_cap_parse(NULL, &cap, &err), KM_OK);
    ck_assert_uint_eq(cap, KMMCP_DEFAULT_MAX_MESSAGE);
    ck_assert_int_eq(kmmcp_result_cap_parse("100000", &cap, &err), KM_OK);
    ck_assert_uint_eq(cap, 100000);
    ck_assert_int_eq(kmmcp_result_cap_parse("1000", &cap, &err), KM_CONFIG_ERROR);
    ck_assert_int_eq(kmmcp_result_cap_parse("99999999999", &cap, &err), KM_CONFIG_ERROR);
    ck_assert_int_eq(kmmcp_result_cap_parse("12k", &cap, &err), KM_CONFIG_ERROR);
    ck_assert_int_eq(kmmcp_result_cap_parse("-70000", &cap, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err.msg, "KLAVIYO_MCP_MAX_MESSAGE_BYTES"));
}
END_TEST

static Suite *
result_suite(void)
{
    Suite *s = suite_create("result");
    TCase *tc = tcase_create("results");

    tcase_add_test(tc, the_summary_is_the_text_and_leaves_structured_content);
    tcase_add_test(tc, without_a_summary_the_text_is_the_envelope);
    suite_add_tcase(s, tc);
    tc = tcase_create("cap");
    tcase_add_test(tc, a_result_over_the_cap_is_cut_to_fit_and_says_so);
    tcase_add_test(tc, a_result_that_cannot_be_cut_is_an_error_not_a_broken_message);
    tcase_add_test(tc, the_cap_is_parsed_and_bounded);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(result_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
