/* check_util.c — allocation wrappers and small string and time helpers. */
#include "util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(strlcpy_copies_whole_strings_that_fit)
{
    char dst[8];

    ck_assert_uint_eq(km_strlcpy(dst, "abc", sizeof(dst)), 3);
    ck_assert_str_eq(dst, "abc");
    ck_assert_uint_eq(km_strlcpy(dst, "1234567", sizeof(dst)), 7);
    ck_assert_str_eq(dst, "1234567");
}
END_TEST

START_TEST(strlcpy_truncates_and_reports_the_source_length)
{
    char dst[8];

    ck_assert_uint_eq(km_strlcpy(dst, "123456789", sizeof(dst)), 9);
    ck_assert_str_eq(dst, "1234567");
    dst[0] = 'x';
    ck_assert_uint_eq(km_strlcpy(dst, "abc", 0), 3);
    ck_assert_int_eq(dst[0], 'x');
    ck_assert_uint_eq(km_strlcpy(dst, "abc", 1), 3);
    ck_assert_str_eq(dst, "");
}
END_TEST

START_TEST(strdup_strndup_and_asprintf_make_new_strings)
{
    char *a = km_xstrdup("hello");
    char *b = km_xstrndup("hello", 3);
    char *c = km_xstrndup("hi", 10);
    char *d = km_xasprintf("%s-%d-%.2f", "x", 7, 0.5);

    ck_assert_str_eq(a, "hello");
    ck_assert_str_eq(b, "hel");
    ck_assert_str_eq(c, "hi");
    ck_assert_str_eq(d, "x-7-0.50");
    free(a);
    free(b);
    free(c);
    free(d);
}
END_TEST

START_TEST(zero_sized_allocations_return_usable_pointers)
{
    void *a = km_xmalloc(0);
    void *b = km_xcalloc(0, 0);
    char *c = km_xcalloc(4, 2);

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(c[i], 0);
    c = km_xrealloc(c, 0);
    ck_assert_ptr_nonnull(c);
    free(a);
    free(b);
    free(c);
}
END_TEST

START_TEST(alnum_ids_accept_letters_and_digits_only)
{
    ck_assert(km_is_alnum_id("01HXYZabc123", 64));
    ck_assert(km_is_alnum_id("Y", 1));
    ck_assert(!km_is_alnum_id("", 64));
    ck_assert(!km_is_alnum_id(NULL, 64));
    ck_assert(!km_is_alnum_id("abc/../x", 64));
    ck_assert(!km_is_alnum_id("abc?x=1", 64));
    ck_assert(!km_is_alnum_id("abc def", 64));
    ck_assert(!km_is_alnum_id("abc%2F", 64));
    ck_assert(!km_is_alnum_id("ab-c", 64));
    ck_assert(!km_is_alnum_id("ab_c", 64));
    ck_assert(!km_is_alnum_id("\xc3\xa9t\xc3\xa9", 64));
}
END_TEST

START_TEST(alnum_ids_longer_than_the_limit_are_refused)
{
    ck_assert(km_is_alnum_id("abcdef", 6));
    ck_assert(!km_is_alnum_id("abcdefg", 6));
}
END_TEST

START_TEST(clocks_are_positive_and_monotonic_does_not_go_back)
{
    int64_t a = km_now_ms();
    int64_t b = km_now_ms();

    ck_assert(a > 0);
    ck_assert(b >= a);
    /* wall clock is after 2020-01-01 */
    ck_assert(km_wall_ms() > INT64_C(1577836800000));
}
END_TEST

START_TEST(utf8_is_checked_as_rfc_3629_says)
{
    size_t            bad = 99;
    static const char good[] = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";

    ck_assert(km_utf8_valid(good, strlen(good), NULL));
    ck_assert(!km_utf8_valid("ab\xc0\xaf", 4, &bad));        /* overlong '/' */
    ck_assert_uint_eq(bad, 2);
    ck_assert(!km_utf8_valid("\xed\xa0\x80", 3, &bad));      /* a surrogate */
    ck_assert(!km_utf8_valid("\xf4\x90\x80\x80", 4, &bad)); /* past U+10FFFF */
    ck_assert(!km_utf8_valid("x\xe2\x82", 3, &bad));          /* cut short */
    ck_assert_uint_eq(bad, 1);
}
END_TEST

START_TEST(utf8_repair_drops_a_cut_character_and_marks_bad_bytes)
{
    char cut[] = "caf\xc3\xa9 cr\xc3";         /* "café cr" + half of an é */
    char bad[] = "a\xff\xfe b \xc3\xa9 \xc0\xaf c";
    char ok[] = "d\xc3\xa9j\xc3\xa0 vu";

    ck_assert_uint_eq(km_utf8_repair(cut), 0);
    ck_assert_str_eq(cut, "caf\xc3\xa9 cr");
    ck_assert_uint_eq(km_utf8_repair(bad), 4);
    ck_assert_str_eq(bad, "a?? b \xc3\xa9 ?? c");
    ck_assert_uint_eq(km_utf8_repair(ok), 0);
    ck_assert_str_eq(ok, "d\xc3\xa9j\xc3\xa0 vu");
}
END_TEST

static Suite *
util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc;

    tc = tcase_create("strings");
    tcase_add_test(tc, strlcpy_copies_whole_strings_that_fit);
    tcase_add_test(tc, strlcpy_truncates_and_reports_the_source_length);
    tcase_add_test(tc, strdup_strndup_and_asprintf_make_new_strings);
    tcase_add_test(tc, zero_sized_allocations_return_usable_pointers);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_add_test(tc, alnum_ids_accept_letters_and_digits_only);
    tcase_add_test(tc, alnum_ids_longer_than_the_limit_are_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("utf8");
    tcase_add_test(tc, utf8_is_checked_as_rfc_3629_says);
    tcase_add_test(tc, utf8_repair_drops_a_cut_character_and_marks_bad_bytes);
    suite_add_tcase(s, tc);

    tc = tcase_create("clocks");
    tcase_add_test(tc, clocks_are_positive_and_monotonic_does_not_go_back);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(util_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
