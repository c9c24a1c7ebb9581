/* check_secret.c — opaque secrets: constant-time comparison and redaction. */
#include "secret.h"

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY "pk_4f9a1c2b3d4e5f60718293a4b5c6d7e8f9"

/* The redacted form of `text`, compared with `want`; frees the copy. */
static void
assert_redacts_to(const char *text, const char *want)
{
    char *r = kmsecret_redact(text);

    ck_assert_str_eq(r, want);
    free(r);
}

/* The redacted form of `text` does not contain `part`. */
static void
assert_hidden(const char *text, const char *part)
{
    char *r = kmsecret_redact(text);

    ck_assert_msg(strstr(r, part) == NULL, "'%s' survived in '%s'", part, r);
    ck_assert_ptr_nonnull(strstr(r, "[REDACTED]"));
    ck_assert(kmsecret_leaks(text));
    ck_assert(!kmsecret_leaks(r));
    free(r);
}

/* --- comparison -------------------------------------------------------------------- */

START_TEST(equal_is_true_for_the_same_bytes)
{
    kmsecret *s = kmsecret_new("tok-123");

    ck_assert_int_eq(kmsecret_equal(s, "tok-123", 7), 1);
    kmsecret_free(s);
}
END_TEST

START_TEST(equal_is_false_for_a_different_value_of_the_same_length)
{
    kmsecret *s = kmsecret_new("tok-123");

    ck_assert_int_eq(kmsecret_equal(s, "tok-124", 7), 0);
    ck_assert_int_eq(kmsecret_equal(s, "Tok-123", 7), 0);
    kmsecret_free(s);
}
END_TEST

START_TEST(equal_is_false_when_the_lengths_differ)
{
    kmsecret *s = kmsecret_new("tok-123");

    /* a prefix, the secret twice over, and the secret with one byte more */
    ck_assert_int_eq(kmsecret_equal(s, "tok-12", 6), 0);
    ck_assert_int_eq(kmsecret_equal(s, "tok-123tok-123", 14), 0);
    ck_assert_int_eq(kmsecret_equal(s, "tok-1234", 8), 0);
    /* the length counts, not the NUL: the first 7 bytes of a longer buffer match */
    ck_assert_int_eq(kmsecret_equal(s, "tok-1234", 7), 1);
    kmsecret_free(s);
}
END_TEST

START_TEST(equal_is_false_for_an_empty_candidate_or_an_empty_secret)
{
    kmsecret *s = kmsecret_new("tok-123");
    kmsecret *empty = kmsecret_new("");

    ck_assert_int_eq(kmsecret_equal(s, "", 0), 0);
    ck_assert_int_eq(kmsecret_equal(empty, "", 0), 0);
    ck_assert_int_eq(kmsecret_equal(empty, "x", 1), 0);
    kmsecret_free(s);
    kmsecret_free(empty);
}
END_TEST

START_TEST(reveal_gives_the_value_back_unchanged)
{
    kmsecret *s = kmsecret_new(KEY);

    ck_assert_str_eq(kmsecret_reveal(s), KEY);
    kmsecret_free(s);
    kmsecret_free(NULL);
}
END_TEST

/* --- key-shaped patterns, never registered ----------------------------------------- */

START_TEST(a_klaviyo_key_in_a_url_query_is_redacted)
{
    assert_hidden("GET https://x/?api_key=" KEY "&page=2", "4f9a1c2b");
    assert_redacts_to("GET https://x/?api_key=" KEY "&page=2",
                      "GET https://x/?api_key=[REDACTED]&page=2");
}
END_TEST

START_TEST(a_klaviyo_key_in_an_authorization_header_is_redacted)
{
    assert_redacts_to("Authorization: Klaviyo-API-Key " KEY,
                      "Authorization: Klaviyo-API-Key [REDACTED]");
    assert_redacts_to("authorization: klaviyo-api-key  " KEY "\r\nrevision: 2025-04-15",
                      "authorization: klaviyo-api-key  [REDACTED]\r\nrevision: 2025-04-15");
}
END_TEST

START_TEST(a_bearer_token_is_redacted)
{
    assert_redacts_to("Authorization: Bearer tok", "Authorization: Bearer [REDACTED]");
    assert_redacts_to("authorization: bearer s3cr3t-Value_9 rest",
                      "authorization: bearer [REDACTED] rest");
}
END_TEST

START_TEST(an_x_api_key_header_is_redacted_with_or_without_a_space)
{
    assert_redacts_to("X-API-Key: tok", "X-API-Key: [REDACTED]");
    assert_redacts_to("x-api-key:tok2", "x-api-key:[REDACTED]");
    assert_redacts_to("?x-api-key=tok3&a=1", "?x-api-key=[REDACTED]&a=1");
}
END_TEST

START_TEST(a_key_inside_a_json_string_is_redacted)
{
    assert_hidden("{\"api_key\":\"" KEY "\",\"account\":\"acme\"}", "4f9a1c2b");
    assert_redacts_to("{\"k\":\"" KEY "\",\"account\":\"acme\"}",
                      "{\"k\":\"pk_[REDACTED]\",\"account\":\"acme\"}");
    assert_redacts_to("{\"h\":\"Bearer abc\"}", "{\"h\":\"Bearer [REDACTED]\"}");
}
END_TEST

START_TEST(a_key_in_an_error_text_is_redacted)
{
    assert_hidden("Klaviyo refused the key " KEY ": 401 not_authenticated", "4f9a1c2b");
    assert_hidden("curl: (6) https://a.klaviyo.com/api/x?api_key=abcdef failed", "abcdef");
}
END_TEST

START_TEST(text_without_secrets_is_left_alone)
{
    const char *plain = "GET /api/flows?page[size]=50 took 120 ms (pk_short, bearer)";

    assert_redacts_to(plain, plain);
    ck_assert(!kmsecret_leaks(plain));
    assert_redacts_to("", "");
}
END_TEST

/* --- registered secrets ------------------------------------------------------------ */

START_TEST(a_registered_secret_that_is_not_key_shaped_is_redacted_everywhere)
{
    kmsecret *s = kmsecret_new("correct-horse-battery");

    assert_redacts_to("correct-horse-battery", "[REDACTED]");
    assert_redacts_to("token=correct-horse-battery;", "token=[REDACTED];");
    assert_redacts_to("xxcorrect-horse-batteryyy and correct-horse-battery",
                      "xx[REDACTED]yy and [REDACTED]");
    assert_redacts_to("{\"correct-horse-battery\":1}", "{\"[REDACTED]\":1}");
    /* a near miss is not a match */
    assert_redacts_to("correct-horse-batter", "correct-horse-batter");
    kmsecret_free(s);
}
END_TEST

START_TEST(a_registered_secret_is_redacted_in_its_json_escaped_forms)
{
    kmsecret *s = kmsecret_new("ab\"cd\\ef/gh\n");

    assert_redacts_to("raw ab\"cd\\ef/gh\n.", "raw [REDACTED].");
    /* inside JSON text, with and without '/' escaped */
    assert_redacts_to("{\"t\":\"ab\\\"cd\\\\ef/gh\\n\"}", "{\"t\":\"[REDACTED]\"}");
    assert_redacts_to("{\"t\":\"ab\\\"cd\\\\ef\\/gh\\n\"}", "{\"t\":\"[REDACTED]\"}");
    kmsecret_free(s);
}
END_TEST

START_TEST(the_longest_registered_secret_wins_when_two_overlap)
{
    kmsecret *a = kmsecret_new("horse-battery");
    kmsecret *b = kmsecret_new("correct-horse-battery-staple");

    assert_redacts_to("<correct-horse-battery-staple>", "<[REDACTED]>");
    assert_redacts_to("<horse-battery>", "<[REDACTED]>");
    kmsecret_free(a);
    kmsecret_free(b);
}
END_TEST

START_TEST(a_freed_secret_is_no_longer_redacted)
{
    kmsecret *s = kmsecret_new("correct-horse-battery");

    ck_assert(kmsecret_leaks("x correct-horse-battery"));
    kmsecret_free(s);
    ck_assert(!kmsecret_leaks("x correct-horse-battery"));
}
END_TEST

START_TEST(a_secret_shorter_than_four_bytes_is_not_redacted_by_value)
{
    /* documented: a two- or three-letter value would blank out ordinary words */
    kmsecret *s = kmsecret_new("the");

    assert_redacts_to("the end", "the end");
    kmsecret_free(s);
}
END_TEST

static atomic_int redacting, readers_running;

/* Redact a line holding a long-lived secret, again and again, while secrets come and go;
 * returns non-NULL when every line came out redacted. */
static void *
redact_loop(void *arg)
{
    int leaked = 0, first = 1;

    (void)arg;
    while (atomic_load(&redacting)) {
        char *r = kmsecret_redact("token=steady-secret-value-123 and more");

        if (strstr(r, "steady-secret-value-123"))
            leaked = 1;
        free(r);
        if (first) {
            /* the churn starts once every reader is redacting */
            atomic_fetch_add(&readers_running, 1);
            first = 0;
        }
    }
    return leaked ? NULL : (void *)1;
}

/* Readers scan a snapshot while the registry changes under them: every line is redacted, and
 * (under ASan) no reader touches a freed secret. */
START_TEST(redaction_is_safe_while_secrets_are_added_and_freed)
{
    kmsecret *steady = kmsecret_new("steady-secret-value-123");
    pthread_t t[4];

    atomic_store(&redacting, 1);
    atomic_store(&readers_running, 0);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, redact_loop, NULL), 0);
    while (atomic_load(&readers_running) < 4)
        sched_yield();
    for (int i = 0; i < 2000; i++) {
        char      v[40];
        kmsecret *s;

        snprintf(v, sizeof(v), "churning-secret-%d", i);
        s = kmsecret_new(v);
        kmsecret_free(s);
    }
    atomic_store(&redacting, 0);
    for (int i = 0; i < 4; i++) {
        void *ok = NULL;

        ck_assert_int_eq(pthread_join(t[i], &ok), 0);
        ck_assert_ptr_nonnull(ok);
    }
    kmsecret_free(steady);
}
END_TEST

static Suite *
secret_suite(void)
{
    Suite *s = suite_create("secret");
    TCase *tc;

    tc = tcase_create("comparison");
    tcase_add_test(tc, equal_is_true_for_the_same_bytes);
    tcase_add_test(tc, equal_is_false_for_a_different_value_of_the_same_length);
    tcase_add_test(tc, equal_is_false_when_the_lengths_differ);
    tcase_add_test(tc, equal_is_false_for_an_empty_candidate_or_an_empty_secret);
    tcase_add_test(tc, reveal_gives_the_value_back_unchanged);
    suite_add_tcase(s, tc);

    tc = tcase_create("patterns");
    tcase_add_test(tc, a_klaviyo_key_in_a_url_query_is_redacted);
    tcase_add_test(tc, a_klaviyo_key_in_an_authorization_header_is_redacted);
    tcase_add_test(tc, a_bearer_token_is_redacted);
    tcase_add_test(tc, an_x_api_key_header_is_redacted_with_or_without_a_space);
    tcase_add_test(tc, a_key_inside_a_json_string_is_redacted);
    tcase_add_test(tc, a_key_in_an_error_text_is_redacted);
    tcase_add_test(tc, text_without_secrets_is_left_alone);
    suite_add_tcase(s, tc);

    tc = tcase_create("registered");
    tcase_add_test(tc, a_registered_secret_that_is_not_key_shaped_is_redacted_everywhere);
    tcase_add_test(tc, a_registered_secret_is_redacted_in_its_json_escaped_forms);
    tcase_add_test(tc, the_longest_registered_secret_wins_when_two_overlap);
    tcase_add_test(tc, a_freed_secret_is_no_longer_redacted);
    tcase_add_test(tc, a_secret_shorter_than_four_bytes_is_not_redacted_by_value);
    tcase_add_test(tc, redaction_is_safe_while_secrets_are_added_and_freed);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(secret_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
