/* check_buf.c — the capped growable buffer. */
#include "buf.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(appends_accumulate_and_stay_nul_terminated)
{
    kmbuf b;

    kmbuf_init(&b, 0);
    ck_assert_ptr_null(b.data);
    ck_assert_int_eq(kmbuf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(kmbuf_append(&b, "defXXX", 3), 0);
    ck_assert_uint_eq(b.len, 6);
    ck_assert_str_eq(b.data, "abcdef");
    ck_assert_int_eq(kmbuf_append(&b, NULL, 0), 0);
    ck_assert_str_eq(b.data, "abcdef");
    kmbuf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(binary_bytes_are_kept)
{
    kmbuf b;

    kmbuf_init(&b, 0);
    ck_assert_int_eq(kmbuf_append(&b, "a\0b", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert(memcmp(b.data, "a\0b", 4) == 0);
    kmbuf_free(&b);
}
END_TEST

START_TEST(the_buffer_grows_past_its_first_allocation)
{
    kmbuf b;
    char  chunk[1000];

    memset(chunk, 'z', sizeof(chunk));
    kmbuf_init(&b, 0);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(kmbuf_append(&b, chunk, sizeof(chunk)), 0);
    ck_assert_uint_eq(b.len, 100000);
    ck_assert_uint_gt(b.cap, b.len);
    ck_assert_int_eq(b.data[99999], 'z');
    ck_assert_int_eq(b.data[100000], '\0');
    kmbuf_free(&b);
}
END_TEST

START_TEST(appending_up_to_the_cap_succeeds)
{
    kmbuf b;

    kmbuf_init(&b, 8);
    ck_assert_int_eq(kmbuf_append(&b, "12345", 5), 0);
    ck_assert_int_eq(kmbuf_append(&b, "678", 3), 0);
    ck_assert_uint_eq(b.len, 8);
    ck_assert_str_eq(b.data, "12345678");
    ck_assert_int_eq(kmbuf_append(&b, "", 0), 0);
    kmbuf_free(&b);
}
END_TEST

START_TEST(passing_the_cap_fails_and_keeps_the_content)
{
    kmbuf b;

    kmbuf_init(&b, 8);
    ck_assert_int_eq(kmbuf_append(&b, "12345", 5), 0);
    ck_assert_int_eq(kmbuf_append(&b, "6789", 4), -1);
    ck_assert_uint_eq(b.len, 5);
    ck_assert_str_eq(b.data, "12345");
    ck_assert_int_eq(kmbuf_appendf(&b, "%s", "abcd"), -1);
    ck_assert_str_eq(b.data, "12345");
    /* a length that would overflow size_t arithmetic is refused, not wrapped */
    ck_assert_int_eq(kmbuf_append(&b, "x", (size_t)-1), -1);
    ck_assert_uint_eq(b.len, 5);
    kmbuf_free(&b);
}
END_TEST

START_TEST(appendf_formats_short_and_long_text)
{
    kmbuf b;
    char  big[600];

    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kmbuf_init(&b, 0);
    ck_assert_int_eq(kmbuf_appendf(&b, "%d-%s;", 42, "x"), 0);
    ck_assert_int_eq(kmbuf_appendf(&b, "[%s]", big), 0);
    ck_assert_uint_eq(b.len, 5 + 601);
    ck_assert(strncmp(b.data, "42-x;[qqq", 9) == 0);
    ck_assert_int_eq(b.data[b.len - 1], ']');
    kmbuf_free(&b);
}
END_TEST

START_TEST(reset_empties_but_keeps_the_allocation)
{
    kmbuf b;
    char *before;

    kmbuf_init(&b, 0);
    kmbuf_append(&b, "hello", 5);
    before = b.data;
    kmbuf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_ptr_eq(b.data, before);
    ck_assert_str_eq(b.data, "");
    kmbuf_append(&b, "x", 1);
    ck_assert_str_eq(b.data, "x");
    kmbuf_free(&b);
}
END_TEST

START_TEST(take_hands_the_data_over_and_empties_the_buffer)
{
    kmbuf  b;
    char  *p;
    size_t n = 99;

    kmbuf_init(&b, 100);
    kmbuf_append(&b, "payload", 7);
    p = kmbuf_take(&b, &n);
    ck_assert_str_eq(p, "payload");
    ck_assert_uint_eq(n, 7);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.max, 100);
    free(p);
    /* the buffer is usable again */
    ck_assert_int_eq(kmbuf_append(&b, "again", 5), 0);
    ck_assert_str_eq(b.data, "again");
    kmbuf_free(&b);
}
END_TEST

START_TEST(take_of_an_empty_buffer_gives_an_empty_string)
{
    kmbuf  b;
    char  *p;
    size_t n = 99;

    kmbuf_init(&b, 0);
    p = kmbuf_take(&b, &n);
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p, "");
    ck_assert_uint_eq(n, 0);
    free(p);
    kmbuf_free(&b);
}
END_TEST

static Suite *
buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc;

    tc = tcase_create("append");
    tcase_add_test(tc, appends_accumulate_and_stay_nul_terminated);
    tcase_add_test(tc, binary_bytes_are_kept);
    tcase_add_test(tc, the_buffer_grows_past_its_first_allocation);
    tcase_add_test(tc, appendf_formats_short_and_long_text);
    suite_add_tcase(s, tc);

    tc = tcase_create("cap");
    tcase_add_test(tc, appending_up_to_the_cap_succeeds);
    tcase_add_test(tc, passing_the_cap_fails_and_keeps_the_content);
    suite_add_tcase(s, tc);

    tc = tcase_create("ownership");
    tcase_add_test(tc, reset_empties_but_keeps_the_allocation);
    tcase_add_test(tc, take_hands_the_data_over_and_empties_the_buffer);
    tcase_add_test(tc, take_of_an_empty_buffer_gives_an_empty_string);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(buf_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
