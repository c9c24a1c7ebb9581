/* check_auth.c — the REST credential check: Bearer and X-API-Key against every token. */
#include "auth.h"
#include "secret.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static kmsecret *tokens[3];

static void
setup(void)
{
    tokens[0] = kmsecret_new("shared-rest-key-0001");
    tokens[1] = kmsecret_new("client-a-token-7f3e");
    tokens[2] = kmsecret_new("client-b-token-9c1d");
}

static void
teardown(void)
{
    for (int i = 0; i < 3; i++)
        kmsecret_free(tokens[i]);
}

static kmcode
check(const char *authorization, const char *x_api_key)
{
    kmerr  e = { 0 };
    kmcode rc = kmauth_check(tokens, 3, authorization, x_api_key, &e);

    ck_assert_int_eq(e.code, rc);
    /* the message never echoes what was presented */
    if (authorization)
        ck_assert_ptr_null(strstr(e.msg, "token-"));
    kmerr_clear(&e);
    return rc;
}

/* --- accepted ------------------------------------------------------------------------ */

START_TEST(a_bearer_token_matching_any_configured_token_is_accepted)
{
    ck_assert_int_eq(check("Bearer shared-rest-key-0001", NULL), KM_OK);
    ck_assert_int_eq(check("Bearer client-a-token-7f3e", NULL), KM_OK);
    ck_assert_int_eq(check("Bearer client-b-token-9c1d", NULL), KM_OK);
}
END_TEST

START_TEST(an_x_api_key_matching_a_token_is_accepted)
{
    ck_assert_int_eq(check(NULL, "client-b-token-9c1d"), KM_OK);
    ck_assert_int_eq(check(NULL, "shared-rest-key-0001"), KM_OK);
}
END_TEST

START_TEST(the_bearer_scheme_is_case_insensitive_and_spaces_are_trimmed)
{
    ck_assert_int_eq(check("bearer client-a-token-7f3e", NULL), KM_OK);
    ck_assert_int_eq(check("BEARER   client-a-token-7f3e  ", NULL), KM_OK);
    ck_assert_int_eq(check("  Bearer\tclient-a-token-7f3e", NULL), KM_OK);
    ck_assert_int_eq(check(NULL, "  client-a-token-7f3e "), KM_OK);
}
END_TEST

/* --- missing (401) ------------------------------------------------------------------- */

START_TEST(no_credential_at_all_is_missing)
{
    ck_assert_int_eq(check(NULL, NULL), KM_MISSING_API_KEY);
}
END_TEST

START_TEST(an_empty_bearer_or_empty_x_api_key_is_missing)
{
    ck_assert_int_eq(check("Bearer", NULL), KM_MISSING_API_KEY);
    ck_assert_int_eq(check("Bearer    ", NULL), KM_MISSING_API_KEY);
    ck_assert_int_eq(check(NULL, ""), KM_MISSING_API_KEY);
    ck_assert_int_eq(check(NULL, "   "), KM_MISSING_API_KEY);
}
END_TEST

START_TEST(another_authorization_scheme_counts_as_no_credential)
{
    ck_assert_int_eq(check("Basic dXNlcjpwYXNz", NULL), KM_MISSING_API_KEY);
    ck_assert_int_eq(check("Bearerclient-a-token-7f3e", NULL), KM_MISSING_API_KEY);
    /* ...but an X-API-Key sent alongside it is still used */
    ck_assert_int_eq(check("Basic dXNlcjpwYXNz", "client-a-token-7f3e"), KM_OK);
}
END_TEST

/* --- invalid (403) ------------------------------------------------------------------- */

START_TEST(a_wrong_token_is_invalid)
{
    ck_assert_int_eq(check("Bearer client-c-token-0000", NULL), KM_INVALID_API_KEY);
    ck_assert_int_eq(check(NULL, "client-c-token-0000"), KM_INVALID_API_KEY);
}
END_TEST

START_TEST(a_prefix_or_an_extension_of_a_token_is_invalid)
{
    ck_assert_int_eq(check("Bearer client-a-token-7f3", NULL), KM_INVALID_API_KEY);
    ck_assert_int_eq(check("Bearer client-a-token-7f3ee", NULL), KM_INVALID_API_KEY);
    ck_assert_int_eq(check("Bearer client-a-token-7f3eclient-a-token-7f3e", NULL),
                     KM_INVALID_API_KEY);
}
END_TEST

START_TEST(a_bearer_credential_wins_over_x_api_key)
{
    ck_assert_int_eq(check("Bearer wrong-token-000", "client-a-token-7f3e"), KM_INVALID_API_KEY);
    ck_assert_int_eq(check("Bearer client-a-token-7f3e", "wrong-token-000"), KM_OK);
}
END_TEST

START_TEST(with_no_token_configured_every_credential_is_invalid)
{
    kmerr e = { 0 };

    ck_assert_int_eq(kmauth_check(NULL, 0, "Bearer anything-at-all", NULL, &e),
                     KM_INVALID_API_KEY);
    kmerr_clear(&e);
    ck_assert_int_eq(kmauth_check(NULL, 0, NULL, NULL, &e), KM_MISSING_API_KEY);
    kmerr_clear(&e);
}
END_TEST

static Suite *
auth_suite(void)
{
    Suite *s = suite_create("auth");
    TCase *ok = tcase_create("accepted");
    TCase *missing = tcase_create("missing");
    TCase *invalid = tcase_create("invalid");

    tcase_add_checked_fixture(ok, setup, teardown);
    tcase_add_test(ok, a_bearer_token_matching_any_configured_token_is_accepted);
    tcase_add_test(ok, an_x_api_key_matching_a_token_is_accepted);
    tcase_add_test(ok, the_bearer_scheme_is_case_insensitive_and_spaces_are_trimmed);
    suite_add_tcase(s, ok);

    tcase_add_checked_fixture(missing, setup, teardown);
    tcase_add_test(missing, no_credential_at_all_is_missing);
    tcase_add_test(missing, an_empty_bearer_or_empty_x_api_key_is_missing);
    tcase_add_test(missing, another_authorization_scheme_counts_as_no_credential);
    suite_add_tcase(s, missing);

    tcase_add_checked_fixture(invalid, setup, teardown);
    tcase_add_test(invalid, a_wrong_token_is_invalid);
    tcase_add_test(invalid, a_prefix_or_an_extension_of_a_token_is_invalid);
    tcase_add_test(invalid, a_bearer_credential_wins_over_x_api_key);
    tcase_add_test(invalid, with_no_token_configured_every_credential_is_invalid);
    suite_add_tcase(s, invalid);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(auth_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
