/* check_reply.c — reading Klaviyo's answers: header seconds, error documents, the wait before
 * a retry, and the messages of final failures. */
#include "reply.h"

#include "json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* (moved from check_kl) */
START_TEST(retry_after_values_are_read_without_overflow)
{
    ck_assert(kmreply_header_seconds(" 2", 2) == 2.0);
    ck_assert(kmreply_header_seconds("0.25", 4) == 0.25);
    ck_assert(kmreply_header_seconds("99999999999999999999", 20) >= 1e6);
    ck_assert(kmreply_header_seconds("1e400", 5) >= 1e6);
    ck_assert(kmreply_header_seconds("-1", 2) < 0);
    ck_assert(kmreply_header_seconds("soon", 4) < 0);
    ck_assert(kmreply_header_seconds("nan", 3) < 0);
    ck_assert(kmreply_header_seconds("", 0) < 0);
    /* an HTTP date is not a number of seconds: unread, so backoff applies */
    ck_assert(kmreply_header_seconds("Wed, 21 Oct 2015 07:28:00 GMT", 29) < 0);
}
END_TEST

START_TEST(an_error_document_gives_its_detail_and_the_expected_wait)
{
    static const char doc[] =
        "{\"errors\":[{\"status\":429,\"detail\":\"Request was throttled. Expected "
        "available in 3 seconds.\",\"source\":{\"pointer\":\"/data\"}}]}";
    char   out[256];
    double s = 0;

    kmreply_error_detail(doc, strlen(doc), out, sizeof(out), &s);
    ck_assert_str_eq(out, "Request was throttled. Expected available in 3 seconds. (at /data)");
    ck_assert(s == 3.0);
    kmreply_error_detail("<html>502</html>", 16, out, sizeof(out), &s);
    ck_assert_str_eq(out, "");
    ck_assert(s < 0);
}
END_TEST

START_TEST(klaviyos_word_sets_the_wait_else_backoff_stays_under_its_ceiling)
{
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    int      told = 0;
    int64_t  w;

    w = kmreply_retry_wait(2.0, -1, -1, KMR_SERVER, 1, &rng, &told);
    ck_assert_int_eq(told, 1);
    ck_assert_int_ge(w, 2000);
    ck_assert_int_le(w, 2200);
    /* RateLimit-Reset and the detail count for a 429 only */
    w = kmreply_retry_wait(-1, 4.0, -1, KMR_THROTTLED, 1, &rng, &told);
    ck_assert_int_eq(told, 1);
    ck_assert_int_ge(w, 4000);
    w = kmreply_retry_wait(-1, 4.0, 5.0, KMR_SERVER, 1, &rng, &told);
    ck_assert_int_eq(told, 0);
    ck_assert_int_le(w, 500);
    for (int i = 0; i < 100; i++) {
        w = kmreply_retry_wait(-1, -1, -1, KMR_TIMEOUT, 9, &rng, &told);
        ck_assert_int_ge(w, 0);
        ck_assert_int_le(w, 30000);
    }
}
END_TEST

START_TEST(final_answers_map_to_envelope_codes)
{
    kmerr e = { 0 };

    ck_assert_int_eq(kmreply_http_error(&e, 401, "acme", ""), KM_INVALID_API_KEY);
    ck_assert_int_eq((int)kmjson_num(e.details, "klaviyo_status", 0), 401);
    kmerr_clear(&e);
    ck_assert_int_eq(kmreply_http_error(&e, 403, "acme", "no scope"), KM_INVALID_API_KEY);
    ck_assert_ptr_nonnull(strstr(e.msg, "lacks a scope"));
    kmerr_clear(&e);
    ck_assert_int_eq(kmreply_http_error(&e, 404, "acme", ""), KM_NOT_FOUND);
    kmerr_clear(&e);
    ck_assert_int_eq(kmreply_http_error(&e, 400, "acme", ""), KM_INVALID_ARGUMENT);
    ck_assert_str_eq(e.msg, "Klaviyo rejected the request: no reason given");
    kmerr_clear(&e);
    ck_assert_int_eq(kmreply_final_error(&e, KMR_THROTTLED, 3, "acme", 30, "", 2500,
                                         CURLE_OK), KM_RATE_LIMITED);
    ck_assert_int_eq(e.retry_after_s, 3);
    kmerr_clear(&e);
    ck_assert_int_eq(kmreply_final_error(&e, KMR_TRANSPORT, 1, "acme", 30, "", 0,
                                         CURLE_COULDNT_CONNECT), KM_UPSTREAM_ERROR);
    ck_assert_ptr_nonnull(strstr(e.msg, "connection refused"));
    kmerr_clear(&e);
}
END_TEST

static Suite *
reply_suite(void)
{
    Suite *s = suite_create("reply");
    TCase *tc;

    tc = tcase_create("headers");
    tcase_add_test(tc, retry_after_values_are_read_without_overflow);
    suite_add_tcase(s, tc);

    tc = tcase_create("answers");
    tcase_add_test(tc, an_error_document_gives_its_detail_and_the_expected_wait);
    tcase_add_test(tc, klaviyos_word_sets_the_wait_else_backoff_stays_under_its_ceiling);
    tcase_add_test(tc, final_answers_map_to_envelope_codes);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(reply_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
