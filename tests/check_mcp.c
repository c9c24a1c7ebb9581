/* check_mcp.c — the klaviyo-mcp binary itself over stdio: protocol-version negotiation (the
 * handshake revisions and the stateless 2026-07-28 one) and request ids, asserted in C so
 * that they are tested even where the node suite skips (no node_modules).
 *
 * Each case runs $KLAVIYO_MCP_BIN (set by `make check`) with its input lines on stdin and a
 * private HOME; the messages it writes are read back, one JSON object per line. None of these
 * requests reaches a service (KLAVIYO_RESTD is /bin/false: nothing is ever started).
 */
#include "json.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CAPS    "io.modelcontextprotocol/clientCapabilities"
#define STATELESS    "2026-07-28"
#define MAX_OUT      64

static char tmpdir[128];

static void
dir_up(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    if (strlen(base) > 60)
        base = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%.60s/check_mcp.XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
dir_down(void)
{
    char cmd[PATH_MAX];

    /* the directory holds only what this suite wrote there (no symlinks) */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_mcp: could not remove %s\n", tmpdir);
}

struct run {
    json_object *msg[MAX_OUT];  /* each line written to stdout, parsed (NULL: not JSON) */
    char        *line[MAX_OUT]; /* the same lines as written */
    int          n;
};

static void
run_free(struct run *r)
{
    for (int i = 0; i < r->n; i++) {
        json_object_put(r->msg[i]);
        free(r->line[i]);
    }
    memset(r, 0, sizeof(*r));
}

/* Run the shim with `input` on stdin (then end of input) and collect what it writes. */
static void
run_shim(const char *input, struct run *r)
{
    const char *bin = getenv("KLAVIYO_MCP_BIN");
    char        in_path[PATH_MAX], out_path[PATH_MAX], err_path[PATH_MAX], run_dir[PATH_MAX];
    char        env_home[PATH_MAX + 8], env_xdg[PATH_MAX + 24], env_rt[PATH_MAX + 24];
    char        env_sock[PATH_MAX + 32];
    FILE       *f;
    pid_t       pid;
    int         st = 0;
    char       *buf = NULL;
    size_t      cap = 0;
    ssize_t     len;

    memset(r, 0, sizeof(*r));
    ck_assert_msg(bin && *bin, "KLAVIYO_MCP_BIN is not set (run through make check)");
    snprintf(in_path, sizeof(in_path), "%s/in", tmpdir);
    snprintf(out_path, sizeof(out_path), "%s/out", tmpdir);
    snprintf(err_path, sizeof(err_path), "%s/err", tmpdir);
    snprintf(run_dir, sizeof(run_dir), "%s/run", tmpdir);
    mkdir(run_dir, 0700);
    f = fopen(in_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(input, f);
    fclose(f);
    snprintf(env_home, sizeof(env_home), "HOME=%s", tmpdir);
    snprintf(env_xdg, sizeof(env_xdg), "XDG_CONFIG_HOME=%s/xdg", tmpdir);
    snprintf(env_rt, sizeof(env_rt), "XDG_RUNTIME_DIR=%s", run_dir);
    snprintf(env_sock, sizeof(env_sock), "KLAVIYO_MCP_SOCKET=%s/restd.sock", run_dir);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *const argv[] = { (char *)(uintptr_t)bin, NULL };
        char *envp[12];
        int   k = 0;
        int   fi = open(in_path, O_RDONLY), fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC,
                                                      0600);
        int   fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fi < 0 || fo < 0 || fe < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
            _exit(127);
        envp[k++] = (char *)(uintptr_t)"PATH=/usr/bin:/bin";
        envp[k++] = env_home;
        envp[k++] = env_xdg;
        envp[k++] = env_rt;
        envp[k++] = env_sock;
        envp[k++] = (char *)(uintptr_t)"KLAVIYO_RESTD=/bin/false";
        if (getenv("ASAN_OPTIONS"))
            envp[k++] = km_xasprintf("ASAN_OPTIONS=%s", getenv("ASAN_OPTIONS"));
        envp[k] = NULL;
        execve(bin, argv, envp);
        _exit(127);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "klaviyo-mcp ended with %d", st);

    f = fopen(out_path, "r");
    ck_assert_ptr_nonnull(f);
    while ((len = getline(&buf, &cap, f)) > 0 && r->n < MAX_OUT) {
        json_object *o = NULL;

        while (len > 0 && buf[len - 1] == '\n')
            buf[--len] = '\0';
        if (kmjson_parse(buf, (size_t)len, KM_INVALID_ARGUMENT, &o, NULL) != KM_OK)
            o = NULL;
        r->msg[r->n] = o;
        r->line[r->n] = km_xstrdup(buf);
        r->n++;
    }
    free(buf);
    fclose(f);
}

static char *
initialize(const char *id, const char *version)
{
    return km_xasprintf("{\"jsonrpc\":\"2.0\",\"id\":%s,\"method\":\"initialize\",\"params\":"
                        "{\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":"
                        "{\"name\":\"check_mcp\",\"version\":\"1\"}}}\n", id, version);
}

/* The answer whose id is the integer `id`, or NULL. */
static json_object *
answer(const struct run *r, int id)
{
    for (int i = 0; i < r->n; i++) {
        json_object *v = kmjson_get(r->msg[i], "id");

        if (v && json_object_is_type(v, json_type_int) && json_object_get_int(v) == id)
            return r->msg[i];
    }
    return NULL;
}

static int
error_code(json_object *msg)
{
    return (int)kmjson_num(kmjson_get(msg, "error"), "code", 0);
}

/* --- the handshake revisions ------------------------------------------------------------- */

START_TEST(initialize_answers_the_clients_version_when_supported_else_the_newest)
{
    static const char *const cases[][2] = {
        { "2025-03-26", "2025-03-26" }, { "2025-06-18", "2025-06-18" },
        { "2025-11-25", "2025-11-25" }, { "2024-11-05", "2025-11-25" },
        { "2030-01-01", "2025-11-25" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char        *in = initialize("1", cases[i][0]);
        struct run   r;
        json_object *res;

        run_shim(in, &r);
        res = kmjson_get(answer(&r, 1), "result");
        ck_assert_msg(res, "%s: no result", cases[i][0]);
        ck_assert_str_eq(kmjson_str(res, "protocolVersion"), cases[i][1]);
        ck_assert_str_eq(kmjson_str(kmjson_get(res, "serverInfo"), "name"), "klaviyo-mcp");
        ck_assert(json_object_get_boolean(
                      kmjson_path(res, "capabilities", "tools", "listChanged", NULL)) == 0);
        /* handshake results carry no stateless fields */
        ck_assert_ptr_null(kmjson_get(res, "resultType"));
        run_free(&r);
        free(in);
    }
}
END_TEST

START_TEST(before_initialize_only_ping_is_served_and_initialize_happens_once)
{
    char      *init = initialize("3", "2025-06-18"), *in;
    struct run r;

    in = km_xasprintf("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n"
                      "%s"
                      "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"initialize\",\"params\":"
                      "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{}}}\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"initialize\"}\n", init);
    run_shim(in, &r);
    ck_assert_int_eq(error_code(answer(&r, 1)), -32600);
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(answer(&r, 1), "error"), "message"),
                                 "not initialized"));
    ck_assert(json_object_is_type(kmjson_get(answer(&r, 2), "result"), json_type_object));
    ck_assert_str_eq(kmjson_str(kmjson_get(answer(&r, 3), "result"), "protocolVersion"),
                     "2025-06-18");
    /* a second initialize is refused and names the revision in use */
    ck_assert_int_eq(error_code(answer(&r, 4)), -32600);
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(answer(&r, 4), "error"), "message"),
                                 "2025-06-18"));
    /* initialize without a protocolVersion is invalid params */
    ck_assert_int_eq(error_code(answer(&r, 5)), -32602);
    run_free(&r);
    free(in);
    free(init);
}
END_TEST

/* --- the stateless revision ------------------------------------------------------------- */

START_TEST(an_unknown_version_is_32022_and_a_retry_it_lists_is_served)
{
    struct run   r;
    json_object *e, *sup, *res;
    const char  *in =
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{\"_meta\":{\""
        META_VERSION "\":\"1999-01-01\",\"" META_CAPS "\":{}}}}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{\"_meta\":{\""
        META_VERSION "\":\"2025-11-25\",\"" META_CAPS "\":{}}}}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":{\"_meta\":{\""
        META_VERSION "\":\"" STATELESS "\",\"" META_CAPS "\":{}}}}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\",\"params\":{\"_meta\":{\""
        META_VERSION "\":\"" STATELESS "\"}}}\n";

    run_shim(in, &r);
    e = kmjson_get(answer(&r, 1), "error");
    ck_assert_int_eq((int)kmjson_num(e, "code", 0), -32022);
    ck_assert_str_eq(kmjson_str(kmjson_get(e, "data"), "requested"), "1999-01-01");
    sup = kmjson_get(kmjson_get(e, "data"), "supported");
    ck_assert(json_object_is_type(sup, json_type_array));
    /* before initialize only the stateless revision can be named in _meta */
    ck_assert_int_eq(json_object_array_length(sup), 1);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(sup, 0)), STATELESS);
    /* a handshake revision in _meta without initialize: the same refusal */
    ck_assert_int_eq(error_code(answer(&r, 2)), -32022);
    /* the retry with a listed version is served, and says it is complete */
    res = kmjson_get(answer(&r, 3), "result");
    ck_assert_ptr_nonnull(res);
    ck_assert_str_eq(kmjson_str(res, "resultType"), "complete");
    /* the stateless revision needs the client's capabilities */
    ck_assert_int_eq(error_code(answer(&r, 4)), -32602);
    run_free(&r);
}
END_TEST

START_TEST(after_initialize_the_negotiated_revision_may_be_named_in_meta)
{
    char      *init = initialize("1", "2025-06-18"), *in;
    struct run r;
    json_object *sup;

    in = km_xasprintf("%s"
                      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{\"_meta\":"
                      "{\"" META_VERSION "\":\"2025-06-18\"}}}\n"
                      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\",\"params\":{\"_meta\":"
                      "{\"" META_VERSION "\":\"2025-11-25\"}}}\n", init);
    run_shim(in, &r);
    ck_assert(json_object_is_type(kmjson_get(answer(&r, 2), "result"), json_type_object));
    ck_assert_int_eq(error_code(answer(&r, 3)), -32022);
    sup = kmjson_path(answer(&r, 3), "error", "data", "supported", NULL);
    ck_assert_int_eq(json_object_array_length(sup), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(sup, 0)), STATELESS);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(sup, 1)), "2025-06-18");
    run_free(&r);
    free(in);
    free(init);
}
END_TEST

/* --- request ids --------------------------------------------------------------------------- */

/* Issue 17 (11): an id of 10^30 was echoed as 18446744073709551615. An id is echoed exactly
 * or refused; the largest ids that fit are echoed digit for digit. */
START_TEST(ids_are_echoed_exactly_or_refused)
{
    struct run  r;
    const char *in =
        "{\"jsonrpc\":\"2.0\",\"id\":1000000000000000000000000000000,\"method\":\"ping\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":-1000000000000000000000000000000,\"method\":\"ping\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":18446744073709551614,\"method\":\"ping\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":-9223372036854775807,\"method\":\"ping\"}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":\"1000000000000000000000000000000\",\"method\":\"ping\"}\n";
    int refused = 0, big = 0, neg = 0, str = 0;

    run_shim(in, &r);
    ck_assert_int_eq(r.n, 5);
    for (int i = 0; i < r.n; i++) {
        ck_assert_ptr_null(strstr(r.line[i], "18446744073709551615"));
        ck_assert_ptr_null(strstr(r.line[i], "-9223372036854775808"));
        if (error_code(r.msg[i]) == -32600 && !kmjson_get(r.msg[i], "id"))
            refused++;
        big += strstr(r.line[i], "\"id\":18446744073709551614,\"result\"") != NULL;
        neg += strstr(r.line[i], "\"id\":-9223372036854775807,\"result\"") != NULL;
        str += strstr(r.line[i], "\"id\":\"1000000000000000000000000000000\",\"result\"") != NULL;
    }
    ck_assert_int_eq(refused, 2);
    ck_assert_int_eq(big, 1);
    ck_assert_int_eq(neg, 1);
    ck_assert_int_eq(str, 1);
    run_free(&r);
}
END_TEST

static Suite *
mcp_suite(void)
{
    Suite *s = suite_create("mcp");
    TCase *tc;

    tc = tcase_create("negotiation");
    tcase_add_checked_fixture(tc, dir_up, dir_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, initialize_answers_the_clients_version_when_supported_else_the_newest);
    tcase_add_test(tc, before_initialize_only_ping_is_served_and_initialize_happens_once);
    tcase_add_test(tc, an_unknown_version_is_32022_and_a_retry_it_lists_is_served);
    tcase_add_test(tc, after_initialize_the_negotiated_revision_may_be_named_in_meta);
    suite_add_tcase(s, tc);

    tc = tcase_create("ids");
    tcase_add_checked_fixture(tc, dir_up, dir_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ids_are_echoed_exactly_or_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(mcp_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
