/* check_err.c — the error model: code table, error record, error envelope. */
#include "err.h"
#include "json.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* TRD §8, row by row, plus the codes the service adds (err.h). */
static const struct {
    kmcode      code;
    const char *name;
    int         status;
} table[] = {
    { KM_INVALID_ARGUMENT, "INVALID_ARGUMENT", 400 },
    { KM_MISSING_API_KEY, "MISSING_API_KEY", 401 },
    { KM_INVALID_API_KEY, "INVALID_API_KEY", 403 },
    { KM_UNKNOWN_ACCOUNT, "UNKNOWN_ACCOUNT", 404 },
    { KM_NOT_FOUND, "NOT_FOUND", 404 },
    { KM_RATE_LIMITED, "RATE_LIMITED", 429 },
    { KM_UPSTREAM_ERROR, "UPSTREAM_ERROR", 502 },
    { KM_UPSTREAM_TIMEOUT, "UPSTREAM_TIMEOUT", 504 },
    { KM_UNKNOWN_TOOL, "UNKNOWN_TOOL", 404 },
    { KM_CONFIG_ERROR, "CONFIG_ERROR", 500 },
    { KM_INTERNAL_ERROR, "INTERNAL_ERROR", 500 },
    { KM_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405 },
    { KM_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", 413 },
    { KM_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", 415 },
    { KM_CANCELLED, "CANCELLED", 499 },
    { KM_SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE", 503 },
    { KM_STORE_UNREACHABLE, "STORE_UNREACHABLE", 503 },
};
#define TABLE_LEN ((int)(sizeof(table) / sizeof(table[0])))

/* --- table ------------------------------------------------------------------------- */

START_TEST(each_code_has_the_seed_name_and_http_status)
{
    for (int i = 0; i < TABLE_LEN; i++) {
        if (strcmp(kmerr_name(table[i].code), table[i].name) != 0 ||
            kmerr_http_status(table[i].code) != table[i].status)
            ck_abort_msg("%s: got %s %d", table[i].name, kmerr_name(table[i].code),
                         kmerr_http_status(table[i].code));
    }
}
END_TEST

START_TEST(every_code_but_ok_is_in_the_table_exactly_once)
{
    /* KM_OK plus one row per error code: a new code without a row fails here */
    ck_assert_int_eq(TABLE_LEN + 1, KM_CODE_COUNT);
    for (int i = 0; i < TABLE_LEN; i++) {
        for (int j = i + 1; j < TABLE_LEN; j++)
            ck_assert_int_ne(table[i].code, table[j].code);
    }
}
END_TEST

START_TEST(every_name_parses_back_to_its_code)
{
    for (int c = 0; c < KM_CODE_COUNT; c++)
        ck_assert_int_eq(kmerr_from_name(kmerr_name((kmcode)c)), c);
}
END_TEST

START_TEST(an_unknown_name_parses_to_code_count)
{
    ck_assert_int_eq(kmerr_from_name("NO_SUCH_CODE"), KM_CODE_COUNT);
    ck_assert_int_eq(kmerr_from_name("invalid_argument"), KM_CODE_COUNT);
    ck_assert_int_eq(kmerr_from_name(""), KM_CODE_COUNT);
    ck_assert_int_eq(kmerr_from_name(NULL), KM_CODE_COUNT);
}
END_TEST

START_TEST(an_out_of_range_code_reads_as_internal_error_500)
{
    ck_assert_str_eq(kmerr_name(KM_CODE_COUNT), "INTERNAL_ERROR");
    ck_assert_int_eq(kmerr_http_status(KM_CODE_COUNT), 500);
    ck_assert_str_eq(kmerr_name((kmcode)-1), "INTERNAL_ERROR");
    ck_assert_int_eq(kmerr_http_status((kmcode)-1), 500);
}
END_TEST

START_TEST(config_errors_exit_with_sysexits_ex_config)
{
    ck_assert_int_eq(KM_EXIT_CONFIG, 78);
}
END_TEST

/* --- the record -------------------------------------------------------------------- */

START_TEST(set_records_the_code_and_formats_the_message)
{
    kmerr e = { 0 };

    ck_assert_int_eq(kmerr_set(&e, KM_NOT_FOUND, "flow %s not found (%d)", "AbC123", 7),
                     KM_NOT_FOUND);
    ck_assert_int_eq(e.code, KM_NOT_FOUND);
    ck_assert_str_eq(e.msg, "flow AbC123 not found (7)");
    kmerr_clear(&e);
}
END_TEST

START_TEST(set_with_a_null_record_still_returns_the_code)
{
    ck_assert_int_eq(kmerr_set(NULL, KM_UPSTREAM_ERROR, "x"), KM_UPSTREAM_ERROR);
    /* and a detail for a NULL record is released, not leaked (ASan checks) */
    kmerr_detail(NULL, "k", json_object_new_string("v"));
    kmerr_clear(NULL);
}
END_TEST

START_TEST(a_long_message_is_truncated_to_the_buffer_and_terminated)
{
    kmerr e = { 0 };
    char  longer[1000];

    memset(longer, 'm', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    kmerr_set(&e, KM_INVALID_ARGUMENT, "start:%s:end", longer);
    ck_assert_uint_eq(strlen(e.msg), sizeof(e.msg) - 1);
    ck_assert(strncmp(e.msg, "start:mmm", 9) == 0);
    ck_assert_ptr_null(strstr(e.msg, ":end"));
    kmerr_clear(&e);
}
END_TEST

START_TEST(clear_resets_code_message_retry_and_details)
{
    kmerr e = { 0 };

    kmerr_set(&e, KM_RATE_LIMITED, "slow down");
    e.retry_after_s = 30;
    kmerr_detail(&e, "k", json_object_new_int(1));
    kmerr_clear(&e);
    ck_assert_int_eq(e.code, KM_OK);
    ck_assert_int_eq(e.retry_after_s, 0);
    ck_assert_str_eq(e.msg, "");
    ck_assert_ptr_null(e.details);
}
END_TEST

START_TEST(details_attached_before_set_are_kept)
{
    kmerr e = { 0 };

    kmerr_detail(&e, "field", json_object_new_string("start_date"));
    kmerr_set(&e, KM_INVALID_ARGUMENT, "bad");
    ck_assert_str_eq(kmjson_str(e.details, "field"), "start_date");
    kmerr_clear(&e);
}
END_TEST

START_TEST(copy_shares_details_and_survives_clearing_the_source)
{
    kmerr a = { 0 }, b = { 0 };

    kmerr_set(&a, KM_UNKNOWN_ACCOUNT, "unknown account 'x'");
    kmerr_detail(&a, "available_accounts", json_object_new_array());
    kmerr_set(&b, KM_NOT_FOUND, "old");
    kmerr_detail(&b, "old", json_object_new_int(1));
    kmerr_copy(&b, &a);
    kmerr_clear(&a);
    ck_assert_int_eq(b.code, KM_UNKNOWN_ACCOUNT);
    ck_assert_str_eq(b.msg, "unknown account 'x'");
    ck_assert_ptr_nonnull(kmjson_get(b.details, "available_accounts"));
    ck_assert_ptr_null(kmjson_get(b.details, "old"));
    kmerr_clear(&b);
}
END_TEST

/* --- the envelope ------------------------------------------------------------------ */

START_TEST(the_envelope_has_code_and_message_only_by_default)
{
    kmerr        e = { 0 };
    json_object *env, *error;

    kmerr_set(&e, KM_INVALID_ARGUMENT, "end_date is before start_date");
    env = kmerr_envelope(&e);
    ck_assert_int_eq(json_object_object_length(env), 1);
    error = kmjson_get(env, "error");
    ck_assert_int_eq(json_object_object_length(error), 2);
    ck_assert_str_eq(kmjson_str(error, "code"), "INVALID_ARGUMENT");
    ck_assert_str_eq(kmjson_str(error, "message"), "end_date is before start_date");
    ck_assert_ptr_null(kmjson_get(error, "retry_after_s"));
    ck_assert_ptr_null(kmjson_get(error, "details"));
    json_object_put(env);
    kmerr_clear(&e);
}
END_TEST

START_TEST(the_envelope_carries_details_as_an_object)
{
    kmerr        e = { 0 };
    json_object *env, *names, *avail;

    kmerr_set(&e, KM_UNKNOWN_ACCOUNT, "unknown account 'foo'");
    names = json_object_new_array();
    json_object_array_add(names, json_object_new_string("acme"));
    json_object_array_add(names, json_object_new_string("beta"));
    kmerr_detail(&e, "available_accounts", names);
    env = kmerr_envelope(&e);
    kmerr_clear(&e);  /* the envelope holds its own reference */
    avail = kmjson_path(env, "error", "details", "available_accounts", NULL);
    ck_assert_ptr_nonnull(avail);
    ck_assert_uint_eq(json_object_array_length(avail), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(avail, 1)), "beta");
    ck_assert_str_eq(kmjson_text(env),
                     "{\"error\":{\"code\":\"UNKNOWN_ACCOUNT\",\"message\":\"unknown account "
                     "'foo'\",\"details\":{\"available_accounts\":[\"acme\",\"beta\"]}}}");
    json_object_put(env);
}
END_TEST

START_TEST(a_rate_limited_envelope_says_when_to_retry)
{
    kmerr        e = { 0 };
    json_object *env, *r;

    kmerr_set(&e, KM_RATE_LIMITED, "Klaviyo rate limit");
    e.retry_after_s = 42;
    env = kmerr_envelope(&e);
    r = kmjson_path(env, "error", "retry_after_s", NULL);
    ck_assert_ptr_nonnull(r);
    ck_assert(json_object_is_type(r, json_type_int));
    ck_assert_int_eq(json_object_get_int(r), 42);
    json_object_put(env);
    kmerr_clear(&e);
}
END_TEST

START_TEST(retry_after_is_left_out_for_other_codes)
{
    kmerr        e = { 0 };
    json_object *env;

    kmerr_set(&e, KM_UPSTREAM_ERROR, "Klaviyo answered 503");
    e.retry_after_s = 9;
    env = kmerr_envelope(&e);
    ck_assert_ptr_null(kmjson_path(env, "error", "retry_after_s", NULL));
    json_object_put(env);
    kmerr_clear(&e);
}
END_TEST

START_TEST(an_envelope_for_ok_or_an_empty_message_is_still_an_error)
{
    kmerr        e = { 0 };
    json_object *env;

    env = kmerr_envelope(&e);
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "error"), "code"), "INTERNAL_ERROR");
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "error"), "message"), "INTERNAL_ERROR");
    json_object_put(env);

    e.code = KM_NOT_FOUND;
    env = kmerr_envelope(&e);
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "error"), "code"), "NOT_FOUND");
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "error"), "message"), "NOT_FOUND");
    json_object_put(env);
}
END_TEST

static Suite *
err_suite(void)
{
    Suite *s = suite_create("err");
    TCase *tc;

    tc = tcase_create("table");
    tcase_add_test(tc, each_code_has_the_seed_name_and_http_status);
    tcase_add_test(tc, every_code_but_ok_is_in_the_table_exactly_once);
    tcase_add_test(tc, every_name_parses_back_to_its_code);
    tcase_add_test(tc, an_unknown_name_parses_to_code_count);
    tcase_add_test(tc, an_out_of_range_code_reads_as_internal_error_500);
    tcase_add_test(tc, config_errors_exit_with_sysexits_ex_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("record");
    tcase_add_test(tc, set_records_the_code_and_formats_the_message);
    tcase_add_test(tc, set_with_a_null_record_still_returns_the_code);
    tcase_add_test(tc, a_long_message_is_truncated_to_the_buffer_and_terminated);
    tcase_add_test(tc, clear_resets_code_message_retry_and_details);
    tcase_add_test(tc, details_attached_before_set_are_kept);
    tcase_add_test(tc, copy_shares_details_and_survives_clearing_the_source);
    suite_add_tcase(s, tc);

    tc = tcase_create("envelope");
    tcase_add_test(tc, the_envelope_has_code_and_message_only_by_default);
    tcase_add_test(tc, the_envelope_carries_details_as_an_object);
    tcase_add_test(tc, a_rate_limited_envelope_says_when_to_retry);
    tcase_add_test(tc, retry_after_is_left_out_for_other_codes);
    tcase_add_test(tc, an_envelope_for_ok_or_an_empty_message_is_still_an_error);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(err_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
