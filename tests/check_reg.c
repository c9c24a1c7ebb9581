/* check_reg.c — the tool registry: its table and the listing of it. */
#include "json.h"
#include "reg.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

START_TEST(the_registry_holds_the_eleven_seed_tools_in_order_then_the_budget)
{
    static const char *names[] = {
        "klaviyo_list_accounts",           "klaviyo_get_campaign_performance",
        "klaviyo_get_flows",               "klaviyo_get_flow_performance",
        "klaviyo_get_flow_structure",      "klaviyo_get_performance_over_time",
        "klaviyo_compare_periods",         "klaviyo_get_list_health",
        "klaviyo_get_list_growth",         "klaviyo_get_list_growth_by_list",
        "klaviyo_get_list_breakdown",      "klaviyo_get_budget",
    };

    ck_assert_uint_eq(kmreg_count(), 12);
    for (size_t i = 0; i < 12; i++) {
        ck_assert_str_eq(kmreg_at(i)->name, names[i]);
        ck_assert_ptr_eq(kmreg_find(names[i]), kmreg_at(i));
        ck_assert_ptr_nonnull(kmreg_at(i)->input);
        ck_assert_ptr_nonnull(kmreg_at(i)->output);
        ck_assert_ptr_nonnull(kmreg_at(i)->run);
    }
    ck_assert_ptr_null(kmreg_find("klaviyo_nope"));
    ck_assert_ptr_null(kmreg_find(NULL));
}
END_TEST

START_TEST(the_tool_listing_carries_schemas_and_read_only_annotations)
{
    json_object *list = kmreg_list_json();
    json_object *tools = kmjson_get(list, "tools");

    ck_assert_uint_eq(json_object_array_length(tools), kmreg_count());
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        json_object *out = kmjson_get(t, "outputSchema");
        ck_assert_str_eq(kmjson_str(t, "name"), kmreg_at(i)->name);
        ck_assert_ptr_nonnull(kmjson_str(t, "title"));
        ck_assert_uint_gt(strlen(kmjson_str(t, "description")), 60);
        ck_assert_str_eq(kmjson_str(kmjson_get(t, "inputSchema"), "type"), "object");
        /* MCP structuredContent is the whole envelope, so the output schema wraps data */
        ck_assert_ptr_nonnull(kmjson_path(out, "properties", "data", NULL));
        ck_assert_ptr_nonnull(kmjson_path(out, "properties", "metadata", NULL));
        ck_assert(json_object_get_boolean(kmjson_path(t, "annotations", "readOnlyHint", NULL)));
        ck_assert(json_object_get_boolean(kmjson_path(t, "annotations", "openWorldHint", NULL)));
    }
    json_object_put(list);
}
END_TEST

static Suite *
reg_suite(void)
{
    Suite *s = suite_create("reg");
    TCase *tc;

    tc = tcase_create("table");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_registry_holds_the_eleven_seed_tools_in_order_then_the_budget);
    tcase_add_test(tc, the_tool_listing_carries_schemas_and_read_only_annotations);
    suite_add_tcase(s, tc);
    return s;
}


int
main(void)
{
    SRunner *sr = srunner_create(reg_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
