/* check_route.c — REST over the registry: routes to tools, query strings coerced. */
#include "json.h"
#include "reg.h"
#include "route.h"

#include <check.h>
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

START_TEST(every_seed_route_maps_to_its_tool)
{
    static const struct {
        const char *method, *path, *tool;
    } routes[] = {
        { "GET", "/v1/accounts", "klaviyo_list_accounts" },
        { "GET", "/v1/budget", "klaviyo_get_budget" },
        { "POST", "/v1/campaigns/performance", "klaviyo_get_campaign_performance" },
        { "GET", "/v1/flows", "klaviyo_get_flows" },
        { "POST", "/v1/flows/performance", "klaviyo_get_flow_performance" },
        { "GET", "/v1/flows/PPF7K3/structure", "klaviyo_get_flow_structure" },
        { "POST", "/v1/performance/over-time", "klaviyo_get_performance_over_time" },
        { "POST", "/v1/performance/compare", "klaviyo_compare_periods" },
        { "GET", "/v1/lists/health", "klaviyo_get_list_health" },
        { "POST", "/v1/lists/growth", "klaviyo_get_list_growth" },
        { "POST", "/v1/lists/growth-by-list", "klaviyo_get_list_growth_by_list" },
        { "POST", "/v1/lists/breakdown", "klaviyo_get_list_breakdown" },
        { "GET", "/v1/accounts/", "klaviyo_list_accounts" },
    };

    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        json_object         *pargs = NULL;
        const struct kmtool *t = kmroute_find(routes[i].method, routes[i].path, &pargs, NULL);
        ck_assert_msg(t != NULL, "%s %s", routes[i].method, routes[i].path);
        ck_assert_str_eq(t->name, routes[i].tool);
        json_object_put(pargs);
    }
}
END_TEST

START_TEST(a_path_parameter_becomes_an_argument)
{
    json_object         *pargs = NULL;
    const struct kmtool *t = kmroute_find("GET", "/v1/flows/XVTP5Q/structure", &pargs, NULL);

    ck_assert_ptr_nonnull(t);
    ck_assert_ptr_nonnull(pargs);
    ck_assert_str_eq(kmjson_str(pargs, "flow_id"), "XVTP5Q");
    json_object_put(pargs);
}
END_TEST

START_TEST(a_known_path_with_the_wrong_method_reports_the_allowed_one)
{
    const char *allow = "unset";

    ck_assert_ptr_null(kmroute_find("POST", "/v1/accounts", NULL, &allow));
    ck_assert_str_eq(allow, "GET");
    ck_assert_ptr_null(kmroute_find("GET", "/v1/campaigns/performance", NULL, &allow));
    ck_assert_str_eq(allow, "POST");
    ck_assert_ptr_null(kmroute_find("GET", "/v1/nothing", NULL, &allow));
    ck_assert_ptr_null(allow);
    ck_assert_ptr_null(kmroute_find("GET", "/v1/flows//structure", NULL, &allow));
    ck_assert_ptr_null(kmroute_find("GET", "/v1/accountsx", NULL, &allow));
}
END_TEST

START_TEST(query_strings_are_coerced_by_the_input_schema)
{
    json_object *args = parse("{\"account\":\"acme\",\"archived\":\"true\",\"status\":\"live\"}");

    kmroute_coerce(kmreg_find("klaviyo_get_flows"), args);
    ck_assert(json_object_is_type(kmjson_get(args, "archived"), json_type_boolean));
    ck_assert(json_object_get_boolean(kmjson_get(args, "archived")));
    ck_assert(json_object_is_type(kmjson_get(args, "status"), json_type_string));
    json_object_put(args);

    args = parse("{\"entity\":\"flow\",\"statistics\":\"opens,clicks\"}");
    kmroute_coerce(kmreg_find("klaviyo_get_performance_over_time"), args);
    ck_assert(json_object_is_type(kmjson_get(args, "statistics"), json_type_array));
    ck_assert_uint_eq(json_object_array_length(kmjson_get(args, "statistics")), 2);
    json_object_put(args);

    /* a value that is not a boolean stays a string, and validation then names it */
    args = parse("{\"archived\":\"maybe\"}");
    kmroute_coerce(kmreg_find("klaviyo_get_flows"), args);
    ck_assert(json_object_is_type(kmjson_get(args, "archived"), json_type_string));
    json_object_put(args);
}
END_TEST

static Suite *
route_suite(void)
{
    Suite *s = suite_create("route");
    TCase *tc;

    tc = tcase_create("routing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_seed_route_maps_to_its_tool);
    tcase_add_test(tc, a_path_parameter_becomes_an_argument);
    tcase_add_test(tc, a_known_path_with_the_wrong_method_reports_the_allowed_one);
    tcase_add_test(tc, query_strings_are_coerced_by_the_input_schema);
    suite_add_tcase(s, tc);
    return s;
}


int
main(void)
{
    SRunner *sr = srunner_create(route_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
