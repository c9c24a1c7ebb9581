/* check_proto.c — the MCP protocol module shared by the shim and /mcp: the revision gate,
 * initialize and discover results, tool-call params, result shaping and progress. */
#include "json.h"
#include "jsonrpc.h"
#include "proto.h"
#include "result.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static json_object *
parse(const char *text)
{
    json_object *o = NULL;
    kmerr        e = { 0 };

    ck_assert_int_eq(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &o, &e), KM_OK);
    return o;
}

static int
error_code(json_object *msg)
{
    return (int)kmjson_num(kmjson_get(msg, "error"), "code", 0);
}

START_TEST(initialize_chooses_the_asked_revision_or_the_newest)
{
    ck_assert_str_eq(kmproto_choose("2025-06-18"), "2025-06-18");
    ck_assert_str_eq(kmproto_choose("2025-03-26"), "2025-03-26");
    ck_assert_str_eq(kmproto_choose("2024-11-05"), "2025-11-25");
    ck_assert_str_eq(kmproto_choose(KMPROTO_STATELESS), "2025-11-25");
    ck_assert_int_eq(kmproto_is_stateless(KMPROTO_STATELESS), 1);
    ck_assert_int_eq(kmproto_is_handshake(KMPROTO_STATELESS), 0);
}
END_TEST

START_TEST(the_gate_refuses_unknown_methods_and_requests_before_initialize)
{
    json_object *id = json_object_new_int(7), *m;
    int          stateless = -1;

    m = kmproto_gate(id, "prompts/list", NULL, NULL, &stateless);
    ck_assert_int_eq(error_code(m), KMMCP_METHOD_NOT_FOUND);
    ck_assert_int_eq((int)kmjson_num(m, "id", 0), 7);
    json_object_put(m);
    m = kmproto_gate(id, "tools/list", NULL, NULL, &stateless);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_REQUEST);
    json_object_put(m);
    /* ping needs no initialize; after initialize everything passes */
    ck_assert_ptr_null(kmproto_gate(id, "ping", NULL, NULL, &stateless));
    ck_assert_ptr_null(kmproto_gate(id, "tools/list", NULL, "2025-06-18", &stateless));
    ck_assert_int_eq(stateless, 0);
    /* server/discover is stateless only */
    m = kmproto_gate(id, "server/discover", NULL, "2025-06-18", &stateless);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    json_object_put(m);
    json_object_put(id);
}
END_TEST

START_TEST(the_gate_serves_stateless_requests_and_names_supported_versions)
{
    json_object *ok = parse("{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                            "\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}");
    json_object *nocaps = parse("{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                                "\"2026-07-28\"}}");
    json_object *future = parse("{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":"
                                "\"2099-01-01\",\"io.modelcontextprotocol/clientCapabilities\":{}}}");
    json_object *m, *supported;
    int          stateless = 0;

    ck_assert_ptr_null(kmproto_gate(NULL, "server/discover", ok, NULL, &stateless));
    ck_assert_int_eq(stateless, 1);
    m = kmproto_gate(NULL, "tools/list", nocaps, NULL, &stateless);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    json_object_put(m);
    m = kmproto_gate(NULL, "tools/list", future, "2025-06-18", &stateless);
    ck_assert_int_eq(error_code(m), KMMCP_UNSUPPORTED_VERSION);
    supported = kmjson_path(m, "error", "data", "supported", NULL);
    ck_assert_int_eq((int)json_object_array_length(supported), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(supported, 0)),
                     KMPROTO_STATELESS);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(supported, 1)),
                     "2025-06-18");
    ck_assert_str_eq(kmjson_str(kmjson_path(m, "error", "data", NULL), "requested"),
                     "2099-01-01");
    json_object_put(m);
    json_object_put(ok);
    json_object_put(nocaps);
    json_object_put(future);
}
END_TEST

START_TEST(stateless_results_carry_result_type_and_server_info)
{
    json_object *d = kmproto_discover_result(NULL);
    json_object *r = kmproto_finish(0, json_object_new_object());

    ck_assert_str_eq(kmjson_str(d, "resultType"), "complete");
    ck_assert_str_eq(kmjson_str(kmjson_path(d, "_meta", KMPROTO_META_SERVER, NULL), "name"),
                     "klaviyo-mcp");
    ck_assert_int_eq((int)kmjson_num(d, "ttlMs", 0), KMPROTO_LIST_TTL_MS);
    ck_assert_ptr_null(kmjson_get(r, "resultType"));
    json_object_put(d);
    json_object_put(r);
}
END_TEST

START_TEST(a_setup_problem_is_appended_to_the_instructions)
{
    kmerr        e = { 0 };
    json_object *r;

    kmerr_set(&e, KM_CONFIG_ERROR, "no accounts.toml found");
    r = kmproto_initialize_result("2025-06-18", &e);
    ck_assert_ptr_nonnull(strstr(kmjson_str(r, "instructions"), "SETUP PROBLEM"));
    ck_assert_ptr_nonnull(strstr(kmjson_str(r, "instructions"), "no accounts.toml found"));
    json_object_put(r);
    r = kmproto_initialize_result("2025-06-18", NULL);
    ck_assert_ptr_null(strstr(kmjson_str(r, "instructions"), "SETUP PROBLEM"));
    json_object_put(r);
    kmerr_clear(&e);
}
END_TEST

START_TEST(tools_call_params_are_checked)
{
    struct kmproto_call c;
    json_object        *p, *m;

    p = parse("{\"name\":\"klaviyo_get_flows\",\"arguments\":{\"account\":\"acme\"},"
              "\"_meta\":{\"progressToken\":\"t\"}}");
    ck_assert_ptr_null(kmproto_check_call(NULL, p, &c));
    ck_assert_str_eq(c.name, "klaviyo_get_flows");
    ck_assert_str_eq(json_object_get_string(c.token), "t");
    json_object_put(p);
    p = parse("{\"name\":\"x\",\"arguments\":[1]}");
    m = kmproto_check_call(NULL, p, &c);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    json_object_put(m);
    json_object_put(p);
    p = parse("{\"name\":\"x\",\"_meta\":{\"progressToken\":1.5}}");
    m = kmproto_check_call(NULL, p, &c);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    json_object_put(m);
    json_object_put(p);
    m = kmproto_check_call(NULL, NULL, &c);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    json_object_put(m);
    m = kmproto_unknown_tool(NULL, "../health");
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(m, "error"), "message"),
                                 "(not a tool name)"));
    json_object_put(m);
}
END_TEST

START_TEST(a_success_is_structured_content_and_the_same_json_as_text)
{
    json_object *id = json_object_new_string("a");
    json_object *m = kmproto_call_answer(id, 1, parse("{\"data\":{\"n\":1},\"metadata\":{}}"),
                                         KMMCP_DEFAULT_MAX_MESSAGE);
    json_object *res = kmjson_get(m, "result"), *text;

    ck_assert_int_eq(json_object_get_boolean(kmjson_get(res, "isError")), 0);
    ck_assert_int_eq((int)kmjson_num(kmjson_path(res, "structuredContent", "data", NULL), "n", 0),
                     1);
    text = parse(kmjson_str(json_object_array_get_idx(kmjson_get(res, "content"), 0), "text"));
    ck_assert_int_eq(json_object_equal(text, kmjson_get(res, "structuredContent")), 1);
    ck_assert_str_eq(kmjson_str(res, "resultType"), "complete");
    json_object_put(text);
    json_object_put(m);
    json_object_put(id);
}
END_TEST

/* The service's summary (a model's view) is the text block, and not in structuredContent. */
START_TEST(a_summary_is_the_text_block_and_leaves_structured_content)
{
    json_object *m = kmproto_call_answer(NULL, 0, parse("{\"data\":{\"n\":1},\"metadata\":{},"
                                                        "\"summary\":\"## One row\"}"),
                                         KMMCP_DEFAULT_MAX_MESSAGE);
    json_object *res = kmjson_get(m, "result");

    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(kmjson_get(res, "content"), 0), "text"),
                     "## One row");
    ck_assert_ptr_null(kmjson_get(kmjson_get(res, "structuredContent"), "summary"));
    ck_assert_int_eq((int)kmjson_num(kmjson_path(res, "structuredContent", "data", NULL), "n", 0),
                     1);
    json_object_put(m);
}
END_TEST

START_TEST(a_tool_error_is_is_error_text_and_unknown_tool_is_a_protocol_error)
{
    json_object *m = kmproto_call_answer(NULL, 0, parse(
        "{\"error\":{\"code\":\"UNKNOWN_ACCOUNT\",\"message\":\"unknown account 'x'\","
        "\"details\":{\"available_accounts\":[\"acme\"]}}}"), KMMCP_DEFAULT_MAX_MESSAGE);
    json_object *res = kmjson_get(m, "result");

    ck_assert_int_eq(json_object_get_boolean(kmjson_get(res, "isError")), 1);
    ck_assert_ptr_null(kmjson_get(res, "structuredContent"));
    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(kmjson_get(res, "content"), 0), "text"),
                     "UNKNOWN_ACCOUNT: unknown account 'x'\n"
                     "details: {\"available_accounts\":[\"acme\"]}");
    json_object_put(m);
    m = kmproto_call_answer(NULL, 0, parse("{\"error\":{\"code\":\"UNKNOWN_TOOL\","
                                           "\"message\":\"unknown tool\"}}"),
                            KMMCP_DEFAULT_MAX_MESSAGE);
    ck_assert_int_eq(error_code(m), KMMCP_INVALID_PARAMS);
    ck_assert_ptr_null(kmjson_get(m, "result"));
    json_object_put(m);
}
END_TEST

START_TEST(the_tool_list_is_mcp_shaped_and_read_only)
{
    json_object *raw = parse("[{\"name\":\"t\",\"title\":\"T\",\"method\":\"GET\",\"route\":"
                             "\"/v1/t\",\"inputSchema\":{\"type\":\"object\"},\"outputSchema\":"
                             "{\"type\":\"object\"}},{\"title\":\"no name\"}]");
    json_object *list = kmproto_tools(raw);
    json_object *t = json_object_array_get_idx(list, 0);

    ck_assert_int_eq((int)json_object_array_length(list), 1);
    ck_assert_ptr_null(kmjson_get(t, "route"));
    ck_assert_ptr_null(kmjson_get(t, "method"));
    ck_assert_int_eq(json_object_get_boolean(kmjson_path(t, "annotations", "readOnlyHint", NULL)),
                     1);
    json_object_put(list);
    json_object_put(raw);
}
END_TEST

START_TEST(progress_values_increase_through_keep_alives)
{
    json_object     *token = json_object_new_int(3);
    kmproto_progress p = { .token = token };
    double           last = 0;
    long             steps[][3] = { { 1, 3, 0 }, { 1, 3, 1 }, { 1, 3, 1 }, { 2, 3, 0 },
                                    { 2, 3, 0 }, { 2, 3, 1 }, { 3, 3, 0 } };
    int              sent = 0;
    kmproto_progress none = { 0 };

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        json_object *m = kmproto_progress_note(&p, steps[i][0], steps[i][1], (int)steps[i][2]);
        double       v;

        if (!m)
            continue;
        sent++;
        v = json_object_get_double(kmjson_path(m, "params", "progress", NULL));
        ck_assert(v > last);
        ck_assert(v <= kmjson_num(kmjson_get(m, "params"), "total", 0));
        last = v;
        json_object_put(m);
    }
    ck_assert_int_eq(sent, 6);    /* the repeated "2 of 3" says nothing new */
    ck_assert_ptr_null(kmproto_progress_note(&none, 1, 2, 0));
    json_object_put(token);
}
END_TEST

static Suite *
proto_suite(void)
{
    Suite *s = suite_create("proto");
    TCase *v = tcase_create("revisions");
    TCase *t = tcase_create("tools");

    tcase_add_test(v, initialize_chooses_the_asked_revision_or_the_newest);
    tcase_add_test(v, the_gate_refuses_unknown_methods_and_requests_before_initialize);
    tcase_add_test(v, the_gate_serves_stateless_requests_and_names_supported_versions);
    tcase_add_test(v, stateless_results_carry_result_type_and_server_info);
    tcase_add_test(v, a_setup_problem_is_appended_to_the_instructions);
    tcase_add_test(t, tools_call_params_are_checked);
    tcase_add_test(t, a_success_is_structured_content_and_the_same_json_as_text);
    tcase_add_test(t, a_summary_is_the_text_block_and_leaves_structured_content);
    tcase_add_test(t, a_tool_error_is_is_error_text_and_unknown_tool_is_a_protocol_error);
    tcase_add_test(t, the_tool_list_is_mcp_shaped_and_read_only);
    tcase_add_test(t, progress_values_increase_through_keep_alives);
    suite_add_tcase(s, v);
    suite_add_tcase(s, t);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proto_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
