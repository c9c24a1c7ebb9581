/* check_path.c — Klaviyo API paths: validation, the query builder, id segments, next-page
 * links and cursors. */
#include "path.h"

#include "json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_object *
doc_of(const char *text)
{
    json_object *d = json_tokener_parse(text);

    ck_assert_ptr_nonnull(d);
    return d;
}

START_TEST(a_query_is_built_in_order_with_every_value_encoded)
{
    static const char *const p[] = { "filter", "and(equals(status,'live'),equals(archived,false))",
                                      "page[size]", "50", NULL };
    static const char *const skip[] = { "filter", NULL, "page[size]", "50", NULL };
    char  *out = NULL;
    kmerr  err = { 0 };

    ck_assert_int_eq(kmpath_query("/api/flows/", p, &out, &err), KM_OK);
    ck_assert_str_eq(out, "/api/flows/?filter=and%28equals%28status%2c%27live%27%29%2cequals"
                          "%28archived%2cfalse%29%29&page%5bsize%5d=50");
    ck_assert(kmpath_ok(out));
    free(out);
    /* a NULL value leaves its pair out; no pair, no query */
    ck_assert_int_eq(kmpath_query("/api/flows/", skip, &out, &err), KM_OK);
    ck_assert_str_eq(out, "/api/flows/?page%5bsize%5d=50");
    free(out);
    ck_assert_int_eq(kmpath_query("/api/lists/", NULL, &out, &err), KM_OK);
    ck_assert_str_eq(out, "/api/lists/");
    free(out);
    /* a value cannot smuggle in another parameter or a fragment */
    static const char *const evil[] = { "filter", "x&page_cursor=y#z", NULL };
    ck_assert_int_eq(kmpath_query("/api/campaigns/", evil, &out, &err), KM_OK);
    ck_assert_str_eq(out, "/api/campaigns/?filter=x%26page_cursor%3dy%23z");
    free(out);
}
END_TEST

START_TEST(a_path_that_is_not_ours_is_refused_by_the_builder)
{
    char *out = (char *)1;
    kmerr err = { 0 };

    ck_assert_int_eq(kmpath_query("/v1/flows/", NULL, &out, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(kmpath_query("/api/flows/?x=1", NULL, &out, &err), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmpath_query("/api/../admin", NULL, &out, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
}
END_TEST

START_TEST(ids_are_validated_before_they_go_into_a_path)
{
    char *out = NULL;
    kmerr err = { 0 };

    ck_assert_int_eq(kmpath_id("/api/flows/", "XVTP5Q", 64, "/flow-actions/", &out, &err), KM_OK);
    ck_assert_str_eq(out, "/api/flows/XVTP5Q/flow-actions/");
    free(out);
    ck_assert_int_eq(kmpath_id("/api/flows/", "../x", 64, "/", &out, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(kmpath_id("/api/flows/", "", 64, "/", &out, &err), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmpath_id("/api/flows/", "abc", 2, "/", &out, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
}
END_TEST

START_TEST(the_next_link_is_a_path_under_the_base_or_refused)
{
    json_object *d = doc_of("{\"data\":[],\"links\":{\"next\":"
                            "\"https://a.klaviyo.com/api/flows/?page%5Bcursor%5D=abc\"}}");
    json_object *last = doc_of("{\"data\":[],\"links\":{\"next\":null}}");
    json_object *away = doc_of("{\"data\":[],\"links\":{\"next\":\"https://evil.example/api/x\"}}");
    int          bad = 0;
    char        *p = kmpath_next("https://a.klaviyo.com", d, &bad);

    ck_assert_str_eq(p, "/api/flows/?page%5Bcursor%5D=abc");
    ck_assert_int_eq(bad, 0);
    free(p);
    ck_assert_ptr_null(kmpath_next("https://a.klaviyo.com", last, &bad));
    ck_assert_int_eq(bad, 0);
    ck_assert_ptr_null(kmpath_next("https://a.klaviyo.com", away, &bad));
    ck_assert_int_eq(bad, 1);
    json_object_put(d);
    json_object_put(last);
    json_object_put(away);
}
END_TEST

START_TEST(the_cursor_is_read_from_data_links_or_links_and_decoded)
{
    json_object *in_data = doc_of("{\"data\":{\"links\":{\"next\":\"https://a.klaviyo.com/api/"
                                  "metric-aggregates/?x=1&page_cursor=a%2Bb%3D&y=2\"}}}");
    json_object *top = doc_of("{\"data\":{},\"links\":{\"next\":\"/api/metric-aggregates/"
                              "?page_cursor=c1\"}}");
    json_object *none = doc_of("{\"data\":{},\"links\":{\"next\":\"https://a.klaviyo.com/api/"
                               "metric-aggregates/?page_size=5\"}}");
    json_object *empty = doc_of("{\"data\":{},\"links\":{\"next\":\"https://a.klaviyo.com/api/"
                                "x/?page_cursor=\"}}");
    char        *c;

    c = kmpath_cursor(in_data);
    ck_assert_str_eq(c, "a+b=");
    free(c);
    c = kmpath_cursor(top);
    ck_assert_str_eq(c, "c1");
    free(c);
    ck_assert_ptr_null(kmpath_cursor(none));
    ck_assert_ptr_null(kmpath_cursor(empty));
    json_object_put(in_data);
    json_object_put(top);
    json_object_put(none);
    json_object_put(empty);
}
END_TEST

static Suite *
path_suite(void)
{
    Suite *s = suite_create("path");
    TCase *tc;

    tc = tcase_create("build");
    tcase_add_test(tc, a_query_is_built_in_order_with_every_value_encoded);
    tcase_add_test(tc, a_path_that_is_not_ours_is_refused_by_the_builder);
    tcase_add_test(tc, ids_are_validated_before_they_go_into_a_path);
    suite_add_tcase(s, tc);

    tc = tcase_create("pages");
    tcase_add_test(tc, the_next_link_is_a_path_under_the_base_or_refused);
    tcase_add_test(tc, the_cursor_is_read_from_data_links_or_links_and_decoded);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(path_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
