/* check_schema.c — the JSON Schema validator: the tools' arguments and answers, patterns, the
 * built-in schema files, and the official JSON-Schema-Test-Suite for the keywords it claims. */
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

/* Found by the official suite: enum was checked on strings only, lengths counted bytes and
 * uniqueItems told 1 from 1.0. */
START_TEST(enum_compares_any_value_as_json_does)
{
    static const char schema[] = "{\"enum\":[1,null,{\"a\":[1,\"x\"]},\"on\"]}";
    static const char *const ok[] = { "1", "1.0", "{\"a\":[1.0,\"x\"]}", "\"on\"" };
    static const char *const bad[] = { "2", "true", "{\"a\":[1]}", "[1]", "\"off\"" };
    kmerr                    err = { 0 };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(check_value(schema, ok[i], &err) == KM_OK, "%s: %s", ok[i], err.msg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(check_value(schema, bad[i], &err) == KM_INVALID_ARGUMENT, "%s", bad[i]);
    ck_assert_int_eq(check_value(schema, "2", &err), KM_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "v: 2 is not one of 1, null, {\"a\":[1,\"x\"]}, on");
    ck_assert_int_eq(check_value(schema, "\"off\"", &err), KM_INVALID_ARGUMENT);
    ck_assert_str_eq(err.msg, "v: 'off' is not one of 1, null, {\"a\":[1,\"x\"]}, on");
}
END_TEST

START_TEST(string_lengths_count_characters_not_bytes)
{
    static const char schema[] = "{\"minLength\":2,\"maxLength\":2}";
    kmerr             err = { 0 };

    ck_assert_int_eq(check_value(schema, "\"\\u00e9\\u20ac\"", &err), KM_OK);   /* 5 bytes */
    ck_assert_int_eq(check_value(schema, "\"\\ud83d\\udca9\"", &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "v: too short"));
    ck_assert_int_eq(check_value(schema, "\"abc\"", &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "v: too long"));
}
END_TEST

START_TEST(unique_items_compare_numbers_by_value)
{
    kmerr err = { 0 };

    ck_assert_int_eq(check_value("{\"uniqueItems\":true}", "[1,1.0]", &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "v[1]: duplicate item"));
    ck_assert_int_eq(check_value("{\"uniqueItems\":true}",
                                 "[{\"a\":1,\"b\":2},{\"b\":2,\"a\":1.0}]", &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq(check_value("{\"uniqueItems\":true}", "[1,true,\"1\",[1],{\"a\":1}]", &err),
                     KM_OK);
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

/* --- the official JSON-Schema-Test-Suite -------------------------------------------------- */

/* tests/jsonschema/: the suite's draft 2020-12 files for the keywords schema.h implements,
 * with how many of their cases run and how many are skipped because their schema needs
 * something the validator does not implement (kmschema_prepare refuses it: $ref, $defs,
 * prefixItems, patternProperties, allOf, boolean schemas, ...). Both counts are asserted, so
 * a change that quietly skips more cases fails here. */
static const struct {
    const char *file;
    int         run, skipped, excluded;
} suite_files[] = {
    { "type.json", 80, 0, 0 },
    { "enum.json", 50, 0, 1 },
    { "required.json", 18, 0, 0 },
    { "properties.json", 16, 12, 0 },
    { "additionalProperties.json", 7, 14, 0 },
    { "minimum.json", 11, 0, 0 },
    { "maximum.json", 8, 0, 0 },
    { "minLength.json", 7, 0, 0 },
    { "maxLength.json", 7, 0, 0 },
    { "pattern.json", 9, 3, 0 },
    { "items.json", 8, 21, 0 },
    { "minItems.json", 6, 0, 0 },
    { "maxItems.json", 6, 0, 0 },
    { "uniqueItems.json", 43, 26, 0 },
    { "default.json", 7, 0, 0 },
};

/* Cases where the validator differs from JSON Schema on purpose (schema.h, README). */
static const struct {
    const char *file, *group, *test, *why;
} excluded[] = {
    /* JSON Schema lets a string hold U+0000; the service hands strings to C code that would
     * stop at it, so the validator refuses any string holding one (schema.h). */
    { "enum.json", "nul characters in strings", "match string with nul",
      "a string holding NUL is refused whatever the schema" },
    { NULL, NULL, NULL, NULL },
};

static const char *
exclusion(const char *file, const char *group, const char *test)
{
    for (size_t i = 0; excluded[i].file; i++) {
        if (strcmp(excluded[i].file, file) == 0 && strcmp(excluded[i].group, group) == 0 &&
            strcmp(excluded[i].test, test) == 0)
            return excluded[i].why;
    }
    return NULL;
}

START_TEST(the_official_suite_agrees_with_the_validator)
{
    const char  *file = suite_files[_i].file;
    char         path[512];
    char        *text;
    size_t       len;
    json_object *groups = NULL;
    kmerr        err = { 0 };
    int          run = 0, skipped = 0, excl = 0, wrong = 0;

    snprintf(path, sizeof(path), "%s/tests/jsonschema/%s", KM_TOP_SRCDIR, file);
    text = read_file(path, &len);
    ck_assert_msg(kmjson_parse(text, len, KM_INVALID_ARGUMENT, &groups, &err) == KM_OK,
                  "%s: %s", path, err.msg);
    free(text);
    for (size_t g = 0; g < json_object_array_length(groups); g++) {
        json_object *group = json_object_array_get_idx(groups, g);
        json_object *schema = kmjson_get(group, "schema");
        json_object *tests = kmjson_get(group, "tests");
        const char  *gdesc = kmjson_str(group, "description");
        kmerr        why = { 0 };

        if (kmschema_prepare(schema, "schema", &why) != KM_OK) {
            skipped += (int)json_object_array_length(tests);
            printf("%s: skipped \"%s\": %s\n", file, gdesc, why.msg);
            continue;
        }
        for (size_t t = 0; t < json_object_array_length(tests); t++) {
            json_object *test = json_object_array_get_idx(tests, t);
            const char  *tdesc = kmjson_str(test, "description");
            int          valid = json_object_get_boolean(kmjson_get(test, "valid"));
            kmerr        verdict = { 0 };
            kmcode       rc = kmschema_validate(schema, kmjson_get(test, "data"), "data",
                                                &verdict);
            const char  *reason = exclusion(file, gdesc, tdesc);

            if (reason) {
                excl++;
                printf("%s: excluded \"%s\" / \"%s\": %s\n", file, gdesc, tdesc, reason);
                continue;
            }
            run++;
            if ((rc == KM_OK) != valid) {
                wrong++;
                printf("%s: WRONG \"%s\" / \"%s\": expected %s, got %s\n", file, gdesc, tdesc,
                       valid ? "valid" : "invalid", rc == KM_OK ? "valid" : verdict.msg);
            }
        }
    }
    json_object_put(groups);
    printf("%s: %d cases run, %d skipped, %d excluded, %d wrong\n", file, run, skipped, excl,
           wrong);
    ck_assert_msg(wrong == 0, "%s: %d case(s) got the wrong verdict", file, wrong);
    ck_assert_int_eq(run, suite_files[_i].run);
    ck_assert_int_eq(skipped, suite_files[_i].skipped);
    ck_assert_int_eq(excl, suite_files[_i].excluded);
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

    tc = tcase_create("keywords");
    tcase_add_checked_fixture(tc, NULL, kmschema_forget);
    tcase_add_test(tc, enum_compares_any_value_as_json_does);
    tcase_add_test(tc, string_lengths_count_characters_not_bytes);
    tcase_add_test(tc, unique_items_compare_numbers_by_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("schema files");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_schema_file_parses_and_uses_only_keywords_the_validator_implements);
    tcase_add_test(tc, each_tool_has_an_input_and_an_output_schema_file_and_no_file_is_stray);
    tcase_add_test(tc, the_program_embeds_every_schema_file_as_it_is);
    tcase_add_test(tc, a_schema_asking_for_what_the_validator_does_not_implement_is_refused);
    tcase_add_test(tc, annotations_and_false_additional_properties_are_accepted);
    suite_add_tcase(s, tc);

    tc = tcase_create("official suite");
    tcase_add_checked_fixture(tc, NULL, kmschema_forget);
    tcase_add_loop_test(tc, the_official_suite_agrees_with_the_validator, 0,
                        (int)(sizeof(suite_files) / sizeof(suite_files[0])));
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(schema_suite());
    int      failed;

    /* the official suite's report lines reach the log even from a test that fails */
    setvbuf(stdout, NULL, _IOLBF, 0);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
