/* check_schema.c — the JSON Schema validator: the tools' arguments and answers, patterns, the
 * built-in schema files. */
#include "json.h"
#include "reg.h"
#include "schema.h"
#include "schemas.h"

#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *
parse(const char *text)
{
    json_object *o = NULL;
    kmerr        err = { 0 };

    ck_assert_int_eq(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &o, &err), KM_OK);
    return o;
}

/* Validate `value` (JSON text) against `schema` (JSON text). */
static kmcode
check_value(const char *schema, const char *value, kmerr *err)
{
    json_object *sc = parse(schema);
    json_object *v = parse(value);
    kmcode       rc = kmschema_validate(sc, v, "v", err);

    json_object_put(v);
    json_object_put(sc);
    return rc;
}

static kmcode
check_args(const char *tool, const char *args, kmerr *err)
{
    json_object *a = parse(args);
    kmcode       rc = kmreg_validate(kmreg_find(tool), a, err);

    json_object_put(a);
    return rc;
}

static void
setup(void)
{
    kmreg_init();
}

static void
teardown(void)
{
    kmreg_free();
}

START_TEST(valid_arguments_pass)
{
    kmerr err = { 0 };

    ck_assert_int_eq(check_args("klaviyo_list_accounts", "{}", &err), KM_OK);
    ck_assert_int_eq(check_args("klaviyo_get_campaign_performance",
                                "{\"account\":\"acme\",\"start_date\":\"2025-01-01\","
                                "\"end_date\":\"2025-01-31\",\"resolve_campaign_names\":true}",
                                &err),
                     KM_OK);
    ck_assert_int_eq(check_args("klaviyo_get_performance_over_time",
                                "{\"entity\":\"flow\",\"timeframe\":\"last_30_days\","
                                "\"interval\":\"daily\",\"statistics\":[\"opens\",\"open_rate\"]}",
                                &err),
                     KM_OK);
    ck_assert_int_eq(check_args("klaviyo_get_flow_structure", "{\"flow_id\":\"XVTP5Q\"}", &err),
                     KM_OK);
}
END_TEST

/* A NUL inside a string must not hide what follows it from the checks: the pattern of
 * `account` matched "northwind" and the call was served for that account. */
START_TEST(a_string_holding_a_nul_is_refused)
{
    static const char *const cases[][2] = {
        { "klaviyo_get_flows", "{\"account\":\"acme\\u0000xyz\"}" },
        { "klaviyo_get_flow_structure", "{\"flow_id\":\"XVTP5Q\\u0000../\"}" },
        { "klaviyo_get_flows", "{\"account\":\"acme\",\"status\":\"live\\u0000\"}" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kmerr err = { 0 };

        ck_assert_int_eq(check_args(cases[i][0], cases[i][1], &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strstr(err.msg, "NUL") != NULL, "%s: %s", cases[i][1], err.msg);
        kmerr_clear(&err);
    }
}
END_TEST

START_TEST(each_schema_violation_names_the_field_and_the_rule)
{
    static const struct {
        const char *tool, *args, *needle;
    } cases[] = {
        { "klaviyo_list_accounts", "{\"verbose\":true}", "verbose: unknown field" },
        { "klaviyo_get_flows", "{\"archived\":\"yes\"}", "archived: must be boolean" },
        { "klaviyo_get_flows", "{\"status\":\"paused\"}", "status: 'paused' is not one of" },
        { "klaviyo_get_flows", "{\"account\":\"ac/me\"}", "account: 'ac/me' does not match" },
        { "klaviyo_get_flow_structure", "{}", "flow_id is required" },
        { "klaviyo_get_flow_structure", "{\"flow_id\":\"../x\"}", "flow_id: '../x' does not match" },
        { "klaviyo_get_campaign_performance", "{\"start_date\":\"2025/01/01\"}",
          "start_date: '2025/01/01' does not match" },
        { "klaviyo_get_campaign_performance", "{\"timeframe\":\"last_week\"}",
          "timeframe: 'last_week' is not one of" },
        { "klaviyo_get_campaign_performance", "{\"campaign\":5}", "campaign: must be string" },
        { "klaviyo_get_performance_over_time", "{\"timeframe\":\"today\"}", "entity is required" },
        { "klaviyo_get_performance_over_time",
          "{\"entity\":\"flow\",\"statistics\":[\"revenue\"]}",
          "statistics[0]: 'revenue' is not one of" },
        { "klaviyo_get_performance_over_time", "{\"entity\":\"flow\",\"statistics\":[]}",
          "statistics: needs at least 1 item" },
        { "klaviyo_get_performance_over_time",
          "{\"entity\":\"flow\",\"statistics\":[\"opens\",\"opens\"]}",
          "statistics[1]: duplicate item" },
        { "klaviyo_compare_periods", "{\"entity\":\"list\"}", "entity: 'list' is not one of" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        kmerr err = { 0 };
        ck_assert_int_eq(check_args(cases[i].tool, cases[i].args, &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strstr(err.msg, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
                      err.msg, cases[i].needle);
    }
}
END_TEST

START_TEST(arguments_that_are_not_an_object_are_refused)
{
    kmerr        err = { 0 };
    json_object *arr = parse("[1,2]");

    ck_assert_int_eq(kmreg_validate(kmreg_find("klaviyo_get_flows"), arr, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "must be a JSON object"));
    ck_assert_int_eq(kmreg_validate(kmreg_find("klaviyo_get_flows"), NULL, &err),
                     KM_INVALID_ARGUMENT);
    json_object_put(arr);
}
END_TEST

/* Found by fuzz_rest: an integer argument of 8.9e73 was converted to long long (undefined). */
START_TEST(a_huge_or_fractional_number_is_not_an_integer)
{
    static const char *const bad[] = { "8.9e73", "-1e300", "1e19", "2.5" };
    kmerr                    err = { 0 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char         text[256];
        json_object *args;

        snprintf(text, sizeof(text), "{\"account\":\"acme\",\"entity\":\"flow\",\"timeframe\":"
                 "\"last_30_days\",\"interval\":\"weekly\",\"limit\":%s}", bad[i]);
        args = parse(text);
        ck_assert_int_eq(kmreg_validate(kmreg_find("klaviyo_get_performance_over_time"), args,
                                        &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strstr(err.msg, "limit"), "%s: %s", bad[i], err.msg);
        json_object_put(args);
        kmerr_clear(&err);
    }
}
END_TEST

START_TEST(output_schemas_accept_the_seed_examples_and_reject_wrong_shapes)
{
    kmerr        err = { 0 };
    json_object *ok = parse("{\"accounts\":[{\"name\":\"acme\",\"label\":\"Acme Storefront\"}]}");
    json_object *bad = parse("{\"accounts\":[{\"name\":\"acme\"}]}");
    json_object *growth = parse(
        "{\"growth\":{\"list\":{\"subscribed\":4630,\"unsubscribed\":51,\"net\":4579},"
        "\"email\":{\"subscribed\":2952,\"unsubscribed\":327,\"net\":2625},"
        "\"sms\":{\"subscribed\":null,\"unsubscribed\":null,\"net\":null}}}");
    json_object *rates = parse(
        "{\"campaigns\":[{\"campaign_id\":\"01AB\",\"campaign_name\":\"email\",\"sent\":0.0,"
        "\"delivered\":0.0,\"opens\":0.0,\"open_rate\":null,\"clicks\":0.0,\"click_rate\":null,"
        "\"bounces\":0.0,\"bounce_rate\":null,\"unsubscribes\":0.0,\"conversions\":0.0,"
        "\"conversion_value\":0.0}],\"campaign_count\":1}");

    ck_assert_int_eq(kmschema_validate(kmreg_find("klaviyo_list_accounts")->output, ok, "data",
                                       &err),
                     KM_OK);
    ck_assert_int_eq(kmschema_validate(kmreg_find("klaviyo_list_accounts")->output, bad, "data",
                                       &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "data.accounts[0].label is required"));
    ck_assert_int_eq(kmschema_validate(kmreg_find("klaviyo_get_list_growth")->output, growth,
                                       "data", &err),
                     KM_OK);
    ck_assert_int_eq(kmschema_validate(kmreg_find("klaviyo_get_campaign_performance")->output,
                                       rates, "data", &err),
                     KM_OK);
    json_object_put(ok);
    json_object_put(bad);
    json_object_put(growth);
    json_object_put(rates);
}
END_TEST


START_TEST(a_pattern_gives_the_same_verdict_every_time_it_is_used)
{
    static const char schema[] = "{\"type\":\"string\",\"pattern\":\"^[a-z]{2,4}$\"}";

    for (int round = 0; round < 3; round++) {
        kmerr err = { 0 };

        ck_assert_int_eq(check_value(schema, "\"abc\"", &err), KM_OK);
        ck_assert_int_eq(check_value(schema, "\"abcde\"", &err), KM_INVALID_ARGUMENT);
        ck_assert_ptr_nonnull(strstr(err.msg, "v: 'abcde' does not match ^[a-z]{2,4}$"));
        ck_assert_int_eq(check_args("klaviyo_get_flow_structure", "{\"flow_id\":\"XVTP5Q\"}",
                                    &err), KM_OK);
        ck_assert_int_eq(check_args("klaviyo_get_flow_structure", "{\"flow_id\":\"../x\"}",
                                    &err), KM_INVALID_ARGUMENT);
    }
}
END_TEST

START_TEST(a_pattern_that_does_not_compile_is_an_internal_error_every_time)
{
    for (int round = 0; round < 2; round++) {
        kmerr err = { 0 };

        ck_assert_int_eq(check_value("{\"type\":\"string\",\"pattern\":\"a(b\"}", "\"ab\"",
                                     &err), KM_INTERNAL_ERROR);
        ck_assert_ptr_nonnull(strstr(err.msg, "v: bad schema pattern"));
    }
}
END_TEST

/* Each thread validates against a pattern no registry schema has (compiled on first use,
 * racing the others) and a registry one; returns the number of wrong verdicts. */
static void *
validate_many(void *arg)
{
    static const char schema[] = "{\"type\":\"string\",\"pattern\":\"^x[0-9]+y$\"}";
    size_t            wrong = 0;

    (void)arg;
    for (int i = 0; i < 200; i++) {
        kmerr err = { 0 };

        wrong += check_value(schema, "\"x42y\"", &err) != KM_OK;
        wrong += check_value(schema, "\"x42\"", &err) != KM_INVALID_ARGUMENT;
        wrong += check_args("klaviyo_get_campaign_performance",
                            "{\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}",
                            &err) != KM_OK;
        wrong += check_args("klaviyo_get_campaign_performance",
                            "{\"start_date\":\"2025/01/01\"}", &err) != KM_INVALID_ARGUMENT;
    }
    return (void *)wrong;
}

START_TEST(patterns_validate_correctly_from_many_threads_at_once)
{
    pthread_t th[4];

    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, validate_many, NULL), 0);
    for (size_t i = 0; i < 4; i++) {
        void *wrong = NULL;

        ck_assert_int_eq(pthread_join(th[i], &wrong), 0);
        ck_assert_uint_eq((size_t)wrong, 0);
    }
}
END_TEST

/* --- the built-in schema files ---------------------------------------------------------- */

/* A whole file as a new NUL-terminated string (free()); fails the test when unreadable. */
static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *text;
    long  n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    text = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return text;
}

static const char *
embedded(const char *name)
{
    for (size_t i = 0; i < kmschemas_count; i++) {
        if (strcmp(kmschemas_files[i].name, name) == 0)
            return kmschemas_files[i].text;
    }
    return NULL;
}

START_TEST(every_schema_file_parses_and_uses_only_keywords_the_validator_implements)
{
    for (size_t i = 0; i < kmschemas_count; i++) {
        const struct kmschemas_file *f = &kmschemas_files[i];
        json_object                 *schema = NULL;
        kmerr                        err = { 0 };

        ck_assert_msg(kmjson_parse(f->text, strlen(f->text), KM_INVALID_ARGUMENT, &schema,
                                   &err) == KM_OK, "%s: %s", f->name, err.msg);
        ck_assert_msg(json_object_is_type(schema, json_type_object), "%s", f->name);
        ck_assert_msg(kmschema_prepare(schema, f->name, &err) == KM_OK, "%s", err.msg);
        json_object_put(schema);
    }
}
END_TEST

START_TEST(each_tool_has_an_input_and_an_output_schema_file_and_no_file_is_stray)
{
    for (size_t i = 0; i < kmreg_count(); i++) {
        char name[128];

        snprintf(name, sizeof(name), "%s.input", kmreg_at(i)->name);
        ck_assert_msg(embedded(name) != NULL, "no %s.json", name);
        snprintf(name, sizeof(name), "%s.output", kmreg_at(i)->name);
        ck_assert_msg(embedded(name) != NULL, "no %s.json", name);
    }
    ck_assert_ptr_nonnull(embedded("envelope"));
    /* and nothing else: every file is one of those */
    ck_assert_uint_eq(kmschemas_count, 2 * kmreg_count() + 1);
}
END_TEST

/* The program embeds exactly the files of the source tree, byte for byte: a file added to
 * common/service/schemas/ but not to its include.am would not be. */
START_TEST(the_program_embeds_every_schema_file_as_it_is)
{
    const char    *dir_path = KM_TOP_SRCDIR "/common/service/schemas";
    DIR           *dir = opendir(dir_path);
    struct dirent *de;
    size_t         files = 0;

    ck_assert_msg(dir != NULL, "cannot open %s", dir_path);
    while ((de = readdir(dir)) != NULL) {
        size_t      n = strlen(de->d_name), len;
        char        path[512], name[256];
        char       *text;
        const char *in;

        if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(n - 5), de->d_name);
        snprintf(path, sizeof(path), "%s/%s", dir_path, de->d_name);
        in = embedded(name);
        ck_assert_msg(in != NULL, "%s is not embedded (common/service/include.am)", path);
        text = read_file(path, &len);
        ck_assert_msg(strlen(in) == len && memcmp(in, text, len) == 0, "%s differs", path);
        free(text);
        files++;
    }
    closedir(dir);
    ck_assert_uint_eq(files, kmschemas_count);
}
END_TEST

START_TEST(a_schema_asking_for_what_the_validator_does_not_implement_is_refused)
{
    static const struct {
        const char *schema, *needle;
    } cases[] = {
        { "{\"$ref\":\"#/$defs/a\"}", "s: unsupported keyword '$ref'" },
        { "{\"properties\":{\"a\":{\"format\":\"date\"}}}",
          "s.properties.a: unsupported keyword 'format'" },
        { "{\"items\":{\"allOf\":[{}]}}", "s.items: unsupported keyword 'allOf'" },
        { "{\"properties\":{\"a\":true}}", "s.properties.a: a schema must be an object" },
        { "{\"type\":\"float\"}", "s.type: not a value this keyword takes" },
        { "{\"minLength\":-1}", "s.minLength: not a value this keyword takes" },
        { "{\"pattern\":\"a(b\"}", "s.pattern: 'a(b' is not a POSIX extended regular" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *sc = parse(cases[i].schema);
        kmerr        err = { 0 };

        ck_assert_int_eq(kmschema_prepare(sc, "s", &err), KM_INVALID_ARGUMENT);
        ck_assert_msg(strstr(err.msg, cases[i].needle) != NULL, "%s: '%s' lacks '%s'",
                      cases[i].schema, err.msg, cases[i].needle);
        json_object_put(sc);
    }
}
END_TEST

START_TEST(annotations_and_false_additional_properties_are_accepted)
{
    json_object *sc = parse("{\"$schema\":\"x\",\"$comment\":\"c\",\"title\":\"t\","
                            "\"description\":\"d\",\"default\":1,\"examples\":[1],"
                            "\"additionalProperties\":false,\"properties\":{\"a\":{}}}");
    kmerr        err = { 0 };

    ck_assert_int_eq(kmschema_prepare(sc, "s", &err), KM_OK);
    json_object_put(sc);
}
END_TEST

static Suite *
schema_suite(void)
{
    Suite *s = suite_create("schema");
    TCase *tc;

    tc = tcase_create("validation");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_arguments_pass);
    tcase_add_test(tc, a_string_holding_a_nul_is_refused);
    tcase_add_test(tc, each_schema_violation_names_the_field_and_the_rule);
    tcase_add_test(tc, arguments_that_are_not_an_object_are_refused);
    tcase_add_test(tc, a_huge_or_fractional_number_is_not_an_integer);
    tcase_add_test(tc, output_schemas_accept_the_seed_examples_and_reject_wrong_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("patterns");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_pattern_gives_the_same_verdict_every_time_it_is_used);
    tcase_add_test(tc, a_pattern_that_does_not_compile_is_an_internal_error_every_time);
    tcase_add_test(tc, patterns_validate_correctly_from_many_threads_at_once);
    suite_add_tcase(s, tc);

    tc = tcase_create("schema files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_schema_file_parses_and_uses_only_keywords_the_validator_implements);
    tcase_add_test(tc, each_tool_has_an_input_and_an_output_schema_file_and_no_file_is_stray);
    tcase_add_test(tc, the_program_embeds_every_schema_file_as_it_is);
    tcase_add_test(tc, a_schema_asking_for_what_the_validator_does_not_implement_is_refused);
    tcase_add_test(tc, annotations_and_false_additional_properties_are_accepted);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(schema_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
