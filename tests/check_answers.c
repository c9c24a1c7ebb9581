/* check_answers.c — an envelope shared with the identical calls that waited for it
 * (kmans_share): the same text kmjson_text writes, with each call's own metadata. */
#include "answers.h"
#include "json.h"

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

START_TEST(a_shared_answer_is_the_envelope_with_the_followers_own_metadata)
{
    json_object *env = parse("{\"data\":{\"campaigns\":[{\"id\":\"a/b\",\"sent\":12.5}]},"
                             "\"metadata\":{\"account\":\"acme\",\"revision\":\"2025-04-15\","
                             "\"latency_ms\":812.3,\"report_budget_remaining\":98,"
                             "\"klaviyo_calls\":3,\"cache_hits\":2},"
                             "\"warnings\":[\"ünïcode \\\"quoted\\\"\"],\"summary\":\"Two.\"}");
    json_object *want = parse("{\"data\":{\"campaigns\":[{\"id\":\"a/b\",\"sent\":12.5}]},"
                              "\"metadata\":{\"account\":\"acme\",\"revision\":\"2025-04-15\","
                              "\"latency_ms\":40.1,\"report_budget_remaining\":98,"
                              "\"klaviyo_calls\":0,\"cache_hits\":5},"
                              "\"warnings\":[\"ünïcode \\\"quoted\\\"\"],\"summary\":\"Two.\"}");
    char        *before = strdup(kmjson_text(env));
    kmans_share *sh = kmans_share_new(env);
    size_t       len = 0;
    char        *text;

    /* byte for byte what the service writes, keys in place, the follower's latency */
    text = kmans_share_text(sh, 40.12, &len);
    ck_assert_str_eq(text, kmjson_text(want));
    ck_assert_uint_eq(len, strlen(text));
    free(text);
    /* each follower its own latency; the leader's envelope unchanged */
    text = kmans_share_text(sh, 1234.56, &len);
    ck_assert_ptr_nonnull(strstr(text, "\"latency_ms\":1234.6,"));
    ck_assert_ptr_null(strstr(text, "\"latency_ms\":40.1"));
    free(text);
    ck_assert_str_eq(kmjson_text(env), before);
    kmans_share_free(sh);
    free(before);
    json_object_put(want);
    json_object_put(env);
}
END_TEST

START_TEST(an_error_is_shared_as_it_is)
{
    json_object *env = parse("{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no flow 'X'\"}}");
    kmans_share *sh = kmans_share_new(env);
    size_t       len = 0;
    char        *text = kmans_share_text(sh, 5.0, &len);

    ck_assert_str_eq(text, kmjson_text(env));
    ck_assert_uint_eq(len, strlen(text));
    free(text);
    kmans_share_free(sh);
    kmans_share_free(NULL);
    json_object_put(env);
}
END_TEST

static Suite *
answers_suite(void)
{
    Suite *s = suite_create("answers");
    TCase *tc = tcase_create("share");

    tcase_add_test(tc, a_shared_answer_is_the_envelope_with_the_followers_own_metadata);
    tcase_add_test(tc, an_error_is_shared_as_it_is);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(answers_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
