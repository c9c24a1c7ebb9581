/* check_mcphttp.c — the /mcp endpoint's decisions (mcphttp.c) and its sessions (session.c),
 * on an LMDB store in a temporary directory: Host/Origin, credentials, Accept, media type,
 * body limit, parse errors, sessions (creation bound, token binding, DELETE), the stateless
 * revision's mirrored headers, and what a tool call hands to the worker. */
#include "json.h"
#include "jsonrpc.h"
#include "mcphttp.h"
#include "reg.h"
#include "secret.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_A "client-a-token-for-mcp-0001"
#define TOKEN_B "client-b-token-for-mcp-0002"
#define HEADERS_OK "application/json, text/event-stream"

static char      root[256];
static kmcfg     cfg;
static kmsecret *tokens[2];
static kmstore  *store;
static kmmcph   *ep;
static char      allowed_origins[] = "https://claude.example.org";
static char      allowed_hosts[] = "mcp.example.org";

static void
setup(void)
{
    kmstore_opts so = { 0 };
    kmerr        e = { 0 };

    snprintf(root, sizeof(root), "%s/check_mcphttp.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(root));
    so.dir = root;
    ck_assert_int_eq(kmstore_open(&so, &store, &e), KM_OK);
    memset(&cfg, 0, sizeof(cfg));
    tokens[0] = kmsecret_new(TOKEN_A);
    tokens[1] = kmsecret_new(TOKEN_B);
    cfg.rest_tokens = tokens;
    cfg.n_rest_tokens = 2;
    cfg.max_body_bytes = 2048;
    cfg.mcp_max_sessions = 3;
    cfg.mcp_session_idle_s = 60;
    cfg.mcp_allowed_origins = allowed_origins;
    cfg.mcp_allowed_hosts = allowed_hosts;
    kmreg_init();
    ep = kmmcph_new(&cfg, store);
}

static void
teardown(void)
{
    char cmd[300];

    kmmcph_free(ep);
    kmreg_free();
    kmstore_close(store);
    kmsecret_free(tokens[0]);
    kmsecret_free(tokens[1]);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    ck_assert_int_eq(system(cmd), 0);
}

/* A well-formed POST with token A; the caller adjusts. */
static struct kmmcph_in
post(const char *body)
{
    struct kmmcph_in in;

    memset(&in, 0, sizeof(in));
    in.method = "POST";
    in.host = "127.0.0.1:8080";
    in.accept = HEADERS_OK;
    in.content_type = "application/json";
    in.authorization = "Bearer " TOKEN_A;
    in.body = body;
    in.body_len = strlen(body);
    return in;
}

static int
code_of(const struct kmmcph_out *out)
{
    return (int)kmjson_num(kmjson_get(out->body, "error"), "code", 0);
}

static const char init_body[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\","
    "\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},"
    "\"clientInfo\":{\"name\":\"t\",\"version\":\"1\"}}}";
static const char ping_body[] = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}";

static void
start_session(char sid[KMSESS_ID_LEN + 1])
{
    struct kmmcph_in  in = post(init_body);
    struct kmmcph_out out;

    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 200);
    ck_assert_int_eq(kmsess_id_ok(out.session), 1);
    ck_assert_str_eq(kmjson_str(kmjson_get(out.body, "result"), "protocolVersion"), "2025-06-18");
    memcpy(sid, out.session, KMSESS_ID_LEN + 1);
    kmmcph_out_clear(&out);
}

START_TEST(foreign_hosts_and_origins_get_403_loopback_and_listed_ones_pass)
{
    const char *bad_origins[] = { "http://evil.example.com", "null", "http://localhost.evil.com",
                                  "file://", "http://127.0.0.1.evil.com:80" };
    struct kmmcph_in  in;
    struct kmmcph_out out;

    for (size_t i = 0; i < sizeof(bad_origins) / sizeof(bad_origins[0]); i++) {
        in = post(init_body);
        in.origin = bad_origins[i];
        kmmcph_handle(ep, &in, &out);
        ck_assert_msg(out.status == 403, "%s: %d", bad_origins[i], out.status);
        kmmcph_out_clear(&out);
    }
    in = post(init_body);
    in.host = "evil.example.com";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 403);
    kmmcph_out_clear(&out);
    in.host = "mcp.example.org:443";
    in.origin = "https://claude.example.org";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 200);
    kmmcph_out_clear(&out);
    in.host = "[::1]:8080";
    in.origin = "http://localhost:3000";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 200);
    kmmcph_out_clear(&out);
    /* the Unix socket has no Host to check, and needs no token */
    in = post(init_body);
    in.trusted = 1;
    in.host = NULL;
    in.authorization = NULL;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 200);
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(no_or_a_wrong_token_is_401_with_www_authenticate)
{
    struct kmmcph_in  in = post(init_body);
    struct kmmcph_out out;

    in.authorization = NULL;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 401);
    ck_assert_int_eq(out.unauthorized, 1);
    kmmcph_out_clear(&out);
    in.authorization = "Bearer guess";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 401);
    ck_assert_ptr_null(strstr(kmjson_text(out.body), "guess"));
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(transport_refusals_have_the_spec_statuses)
{
    char              big[4096];
    struct kmmcph_in  in = post(init_body);
    struct kmmcph_out out;

    in.accept = "application/json";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 406);
    kmmcph_out_clear(&out);
    in = post(init_body);
    in.content_type = "text/plain";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 415);
    kmmcph_out_clear(&out);
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    in = post(big);
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 413);
    kmmcph_out_clear(&out);
    in = post("{\"jsonrpc\":");
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 400);
    ck_assert_int_eq(code_of(&out), KMMCP_PARSE_ERROR);
    ck_assert_ptr_null(kmjson_get(out.body, "id"));
    kmmcph_out_clear(&out);
    in = post("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]");
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 400);
    kmmcph_out_clear(&out);
    in = post("");
    in.method = "GET";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 405);
    ck_assert_str_eq(out.allow, "POST, DELETE");
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(sessions_are_bound_to_their_token_and_end_with_delete)
{
    char              sid[KMSESS_ID_LEN + 1];
    struct kmmcph_in  in;
    struct kmmcph_out out;

    start_session(sid);
    in = post(ping_body);
    kmmcph_handle(ep, &in, &out);     /* no session */
    ck_assert_int_eq(out.status, 400);
    kmmcph_out_clear(&out);
    in.session = sid;
    in.version = "2025-06-18";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 200);
    ck_assert_ptr_nonnull(kmjson_get(out.body, "result"));
    kmmcph_out_clear(&out);
    in.version = "2025-11-25";        /* not this session's revision */
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 400);
    kmmcph_out_clear(&out);
    in.version = NULL;
    in.authorization = "Bearer " TOKEN_B;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 404);
    kmmcph_out_clear(&out);
    in = post("");
    in.method = "DELETE";
    in.session = sid;
    in.authorization = "Bearer " TOKEN_B;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 404);     /* not theirs to end */
    kmmcph_out_clear(&out);
    in.authorization = "Bearer " TOKEN_A;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 204);
    kmmcph_out_clear(&out);
    in = post(ping_body);
    in.session = sid;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 404);
    kmmcph_out_clear(&out);
    in.session = "../../etc";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 404);
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(session_creation_is_bounded)
{
    char              sid[KMSESS_ID_LEN + 1];
    struct kmmcph_in  in = post(init_body);
    struct kmmcph_out out;

    start_session(sid);
    start_session(sid);
    start_session(sid);
    kmmcph_handle(ep, &in, &out);      /* MCP_MAX_SESSIONS = 3 per idle period */
    ck_assert_int_eq(out.status, 503);
    ck_assert_str_eq(out.session, "");
    kmmcph_out_clear(&out);
}
END_TEST

/* However busy, a session ends max_age seconds after it began (real time): with creations
 * limited per idle period, that bounds how many are ever alive. */
START_TEST(a_session_ends_at_its_maximum_age_however_busy)
{
    char   sid[KMSESS_ID_LEN + 1], version[16];
    kmerr  e = { 0 };

    ck_assert_int_eq(kmsess_new(store, 100, 60, "2025-11-25", "tok", 3, sid, &e), KM_OK);
    ck_assert_int_eq(kmsess_use(store, 60, 2, sid, "tok", 3, version, sizeof(version), &e),
                     KM_OK);
    ck_assert_str_eq(version, "2025-11-25");
    nanosleep(&(struct timespec){ 1, 200000000 }, NULL);
    ck_assert_int_eq(kmsess_use(store, 60, 2, sid, "tok", 3, version, sizeof(version), &e),
                     KM_OK);        /* used, so not idle */
    nanosleep(&(struct timespec){ 1, 200000000 }, NULL);
    ck_assert_int_eq(kmsess_use(store, 60, 2, sid, "tok", 3, version, sizeof(version), &e),
                     KM_NOT_FOUND);
    kmerr_clear(&e);
    /* without an age limit the record itself is still there (the idle period is a minute) */
    ck_assert_int_eq(kmsess_use(store, 60, 0, sid, "tok", 3, version, sizeof(version), &e),
                     KM_OK);
}
END_TEST

START_TEST(a_stateless_call_must_mirror_its_body_in_headers)
{
    static const char call[] = "{\"jsonrpc\":\"2.0\",\"id\":\"c\",\"method\":\"tools/call\","
        "\"params\":{\"name\":\"klaviyo_get_flows\",\"arguments\":{\"account\":\"acme\"},"
        "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{},\"progressToken\":4}}}";
    struct kmmcph_in  in = post(call);
    struct kmmcph_out out;

    in.version = "2026-07-28";
    in.mcp_method = "tools/call";
    kmmcph_handle(ep, &in, &out);     /* no Mcp-Name */
    ck_assert_int_eq(out.status, 400);
    ck_assert_int_eq(code_of(&out), KMPROTO_HEADER_MISMATCH);
    kmmcph_out_clear(&out);
    in.mcp_name = "klaviyo_get_campaign_performance";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(code_of(&out), KMPROTO_HEADER_MISMATCH);
    kmmcph_out_clear(&out);
    in.mcp_name = "=?base64?a2xhdml5b19nZXRfZmxvd3M=?=";   /* klaviyo_get_flows */
    kmmcph_handle(ep, &in, &out);
    ck_assert_ptr_nonnull(out.tool);
    ck_assert_str_eq(out.tool->name, "klaviyo_get_flows");
    ck_assert_int_eq(out.stateless, 1);
    ck_assert_int_eq(json_object_get_int(out.token), 4);
    ck_assert_str_eq(kmjson_str(out.args, "account"), "acme");
    ck_assert_str_eq(json_object_get_string(out.id), "c");
    kmmcph_out_clear(&out);
    in.mcp_method = "tools/list";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(code_of(&out), KMPROTO_HEADER_MISMATCH);
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(unknown_tools_methods_and_versions_are_refused)
{
    static const char unknown_tool[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
        "\"params\":{\"name\":\"klaviyo_nope\",\"_meta\":{\"io.modelcontextprotocol/"
        "protocolVersion\":\"2026-07-28\",\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    static const char unknown_method[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/list\","
        "\"params\":{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
        "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    static const char future[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\","
        "\"params\":{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2099-01-01\","
        "\"io.modelcontextprotocol/clientCapabilities\":{}}}}";
    struct kmmcph_in  in = post(unknown_tool);
    struct kmmcph_out out;

    in.version = "2026-07-28";
    in.mcp_method = "tools/call";
    in.mcp_name = "klaviyo_nope";
    kmmcph_handle(ep, &in, &out);
    ck_assert_ptr_null(out.tool);
    ck_assert_int_eq(code_of(&out), KMMCP_INVALID_PARAMS);
    kmmcph_out_clear(&out);
    in = post(unknown_method);
    in.version = "2026-07-28";
    in.mcp_method = "prompts/list";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 404);
    ck_assert_int_eq(code_of(&out), KMMCP_METHOD_NOT_FOUND);
    kmmcph_out_clear(&out);
    in = post(future);
    in.version = "2099-01-01";
    in.mcp_method = "ping";
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 400);
    ck_assert_int_eq(code_of(&out), KMMCP_UNSUPPORTED_VERSION);
    kmmcph_out_clear(&out);
}
END_TEST

START_TEST(notifications_are_accepted_and_cancelled_names_its_call_in_its_session)
{
    char              sid[KMSESS_ID_LEN + 1];
    struct kmmcph_in  in = post("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                                "\"params\":{\"requestId\":7}}");
    struct kmmcph_out out;

    kmmcph_handle(ep, &in, &out);      /* no session: nothing can be named */
    ck_assert_int_eq(out.status, 202);
    ck_assert_ptr_null(out.body);
    ck_assert_ptr_null(out.cancel_id);
    kmmcph_out_clear(&out);
    start_session(sid);
    in.session = sid;
    kmmcph_handle(ep, &in, &out);
    ck_assert_int_eq(out.status, 202);
    ck_assert_int_eq(json_object_get_int(out.cancel_id), 7);
    ck_assert_str_eq(out.cancel_scope, sid);
    kmmcph_out_clear(&out);
    in.authorization = "Bearer " TOKEN_B;   /* another client cannot cancel it */
    kmmcph_handle(ep, &in, &out);
    ck_assert_ptr_null(out.cancel_id);
    kmmcph_out_clear(&out);
}
END_TEST

static Suite *
mcphttp_suite(void)
{
    Suite *s = suite_create("mcphttp");
    TCase *g = tcase_create("gates");
    TCase *p = tcase_create("protocol");

    tcase_add_checked_fixture(g, setup, teardown);
    tcase_add_checked_fixture(p, setup, teardown);
    tcase_add_test(g, foreign_hosts_and_origins_get_403_loopback_and_listed_ones_pass);
    tcase_add_test(g, no_or_a_wrong_token_is_401_with_www_authenticate);
    tcase_add_test(g, transport_refusals_have_the_spec_statuses);
    tcase_add_test(p, sessions_are_bound_to_their_token_and_end_with_delete);
    tcase_add_test(p, session_creation_is_bounded);
    tcase_add_test(p, a_session_ends_at_its_maximum_age_however_busy);
    tcase_add_test(p, a_stateless_call_must_mirror_its_body_in_headers);
    tcase_add_test(p, unknown_tools_methods_and_versions_are_refused);
    tcase_add_test(p, notifications_are_accepted_and_cancelled_names_its_call_in_its_session);
    suite_add_tcase(s, g);
    suite_add_tcase(s, p);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(mcphttp_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
