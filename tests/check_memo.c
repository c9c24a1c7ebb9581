/* check_memo.c — the worker's memo of recent answers: keys, pieces, expiry, bounds. */
#include "memo.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_object *
parse(const char *text)
{
    json_object *o = json_tokener_parse(text);

    ck_assert_ptr_nonnull(o);
    return o;
}

static char *
key_of(const char *tool, const char *args)
{
    json_object *o = parse(args);
    char        *k = kmmemo_key(tool, o);

    json_object_put(o);
    return k;
}

/* The answer kept for `key`, reassembled around `lat`, or NULL. New string. */
static char *
answer(kmmemo *m, const char *key, int64_t now, const char *lat)
{
    const char *a, *b;
    size_t      na, nb;
    char       *out;

    if (!kmmemo_get(m, key, now, &a, &na, &b, &nb))
        return NULL;
    out = malloc(na + strlen(lat) + nb + 1);
    memcpy(out, a, na);
    memcpy(out + na, lat, strlen(lat));
    memcpy(out + na + strlen(lat), b, nb);
    out[na + strlen(lat) + nb] = '\0';
    return out;
}

/* --- keys ------------------------------------------------------------------------------ */

START_TEST(the_key_does_not_depend_on_the_order_of_the_arguments)
{
    char *a = key_of("klaviyo_get_flows", "{\"account\":\"acme\",\"status\":\"live\"}");
    char *b = key_of("klaviyo_get_flows", "{\"status\":\"live\",\"account\":\"acme\"}");

    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    /* nested objects are sorted too */
    a = key_of("t", "{\"x\":{\"b\":1,\"a\":[2,{\"d\":1,\"c\":0}]}}");
    b = key_of("t", "{\"x\":{\"a\":[2,{\"c\":0,\"d\":1}],\"b\":1}}");
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
}
END_TEST

START_TEST(different_tools_values_or_types_give_different_keys)
{
    char *a = key_of("klaviyo_get_flows", "{\"account\":\"acme\"}");
    char *b = key_of("klaviyo_get_list_health", "{\"account\":\"acme\"}");
    char *c = key_of("klaviyo_get_flows", "{\"account\":\"kiwi\"}");
    char *d = key_of("t", "{\"archived\":false}");
    char *e = key_of("t", "{\"archived\":\"false\"}");
    char *f = key_of("t", "{\"a\":[1,2]}");
    char *g = key_of("t", "{\"a\":[2,1]}");

    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_str_ne(d, e);
    ck_assert_str_ne(f, g);     /* array order is meaningful */
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
    free(f);
    free(g);
}
END_TEST

/* --- answers --------------------------------------------------------------------------- */

START_TEST(a_kept_answer_comes_back_with_a_new_latency)
{
    kmmemo     *m = kmmemo_new(16, 1 << 20);
    const char *text = "{\"data\":{},\"metadata\":{\"latency_ms\":1e+300,\"x\":1},\"warnings\":[]}";
    const char *mark = strstr(text, "1e+300");
    char       *got;

    kmmemo_put(m, "k", text, strlen(text), (size_t)(mark - text), 6, 1000, 2000);
    got = answer(m, "k", 1500, "0.0");
    ck_assert_str_eq(got,
                     "{\"data\":{},\"metadata\":{\"latency_ms\":0.0,\"x\":1},\"warnings\":[]}");
    free(got);
    ck_assert_ptr_null(answer(m, "other", 1500, "0.0"));
    ck_assert_uint_eq(kmmemo_count(m), 1);
    kmmemo_free(m);
}
END_TEST

START_TEST(an_answer_is_gone_once_it_expires)
{
    kmmemo *m = kmmemo_new(16, 1 << 20);
    char   *got;

    kmmemo_put(m, "k", "[1]", 3, 1, 1, 1000, 2000);
    got = answer(m, "k", 1999, "7");
    ck_assert_str_eq(got, "[7]");
    free(got);
    ck_assert_ptr_null(answer(m, "k", 2000, "7"));
    ck_assert_uint_eq(kmmemo_count(m), 0);
    /* an answer that would already be expired is not kept at all */
    kmmemo_put(m, "k", "[1]", 3, 1, 1, 3000, 3000);
    ck_assert_uint_eq(kmmemo_count(m), 0);
    kmmemo_free(m);
}
END_TEST

START_TEST(a_new_answer_replaces_the_old_one_for_the_same_key)
{
    kmmemo *m = kmmemo_new(16, 1 << 20);
    char   *got;

    kmmemo_put(m, "k", "[1]", 3, 1, 1, 1000, 5000);
    kmmemo_put(m, "k", "[2,1]", 5, 3, 1, 1000, 5000);
    ck_assert_uint_eq(kmmemo_count(m), 1);
    got = answer(m, "k", 1001, "9");
    ck_assert_str_eq(got, "[2,9]");
    free(got);
    kmmemo_free(m);
}
END_TEST

START_TEST(a_full_memo_sweeps_expired_answers_and_otherwise_keeps_nothing_more)
{
    kmmemo *m = kmmemo_new(2, 1 << 20);
    char   *got;

    kmmemo_put(m, "a", "[1]", 3, 1, 1, 1000, 1500);
    kmmemo_put(m, "b", "[1]", 3, 1, 1, 1000, 5000);
    kmmemo_put(m, "c", "[1]", 3, 1, 1, 1000, 5000);   /* full: not kept */
    ck_assert_uint_eq(kmmemo_count(m), 2);
    ck_assert_ptr_null(answer(m, "c", 1100, "0"));
    /* once "a" has expired there is room again */
    kmmemo_put(m, "c", "[1]", 3, 1, 1, 1600, 5000);
    got = answer(m, "c", 1700, "0");
    ck_assert_ptr_nonnull(got);
    free(got);
    ck_assert_ptr_null(answer(m, "a", 1700, "0"));
    kmmemo_free(m);
}
END_TEST

START_TEST(the_byte_bound_is_respected)
{
    kmmemo *m = kmmemo_new(100, 64);
    char    big[100];

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    kmmemo_put(m, "k", big, strlen(big), 1, 1, 1000, 5000);
    ck_assert_uint_eq(kmmemo_count(m), 0);
    kmmemo_put(m, "k", "[1]", 3, 1, 1, 1000, 5000);
    ck_assert_uint_eq(kmmemo_count(m), 1);
    kmmemo_free(m);
}
END_TEST

static Suite *
memo_suite(void)
{
    Suite *s = suite_create("memo");
    TCase *keys = tcase_create("keys");
    TCase *answers = tcase_create("answers");

    tcase_add_test(keys, the_key_does_not_depend_on_the_order_of_the_arguments);
    tcase_add_test(keys, different_tools_values_or_types_give_different_keys);
    suite_add_tcase(s, keys);
    tcase_add_test(answers, a_kept_answer_comes_back_with_a_new_latency);
    tcase_add_test(answers, an_answer_is_gone_once_it_expires);
    tcase_add_test(answers, a_new_answer_replaces_the_old_one_for_the_same_key);
    tcase_add_test(answers, a_full_memo_sweeps_expired_answers_and_otherwise_keeps_nothing_more);
    tcase_add_test(answers, the_byte_bound_is_respected);
    suite_add_tcase(s, answers);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(memo_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
