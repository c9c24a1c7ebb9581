/* check_kl.c — the Klaviyo client against the real simulator (and a canned server for what
 * the simulator cannot say): headers, pagination, every retry path, error mapping, the cache
 * on both store backends, coalescing across processes, the shared rate limits, fan-out,
 * cancellation, planning and the report budget.
 *
 * Processes: each TCase starts its simulator (and redis-server for the cache cases) in an
 * unchecked fixture, i.e. in the runner process, whose teardown runs even when a test fails;
 * every test resets the simulator and uses a fresh store. Nothing asserts on elapsed time
 * except lower bounds (a wait that must have happened).
 */
#include "fixtures.h"
#include "json.h"
#include "kl.h"
#include "log.h"
#include "secret.h"
#include "settings.h"
#include "store.h"
#include "util.h"

#include <check.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REPORT_PATH "/api/campaign-values-reports/"

/* --- per-TCase processes (runner process) ------------------------------------------------ */

static kmfix_proc sim;
static kmfix_proc redis;
static char      *tcdir;   /* stores of this TCase's tests live under it */

static void
tc_dir_up(void)
{
    tcdir = kmfix_tmpdir("kl");
    ck_assert_ptr_nonnull(tcdir);
}

static void
sim_up_args(const char *const *args)
{
    tc_dir_up();
    ck_assert_int_eq(kmfix_start_sim(&sim, args), 0);
}

static void
sim_up(void)
{
    static const char *const args[] = { "--no-limits", "--quiet", NULL };

    sim_up_args(args);
}

/* Limits on, time scaled by 0.02 (a minute is 1.2 s): for the shared-budget tests. */
static void
sim_up_scaled(void)
{
    static const char *const args[] = { "--time-scale", "0.02", "--quiet", NULL };

    sim_up_args(args);
}

static void
sim_and_redis_up(void)
{
    sim_up();
    ck_assert_int_eq(kmfix_start_redis(&redis), 0);
}

static void
all_down(void)
{
    kmfix_stop(&sim);
    kmfix_stop(&redis);
    kmfix_rmtree(tcdir);
    free(tcdir);
    tcdir = NULL;
}

/* --- per-test state (test process) ------------------------------------------------------- */

struct simacct {
    char name[32];
    char key[64];
    char limited_key[64];
    char metric[32];
};

static struct simacct accts[8];
static int            naccts;
static char           storedir[512];

static const struct simacct *
simacct(const char *name)
{
    for (int i = 0; i < naccts; i++) {
        if (strcmp(accts[i].name, name) == 0)
            return &accts[i];
    }
    ck_abort_msg("the simulator has no account %s", name);
    return NULL;
}

static void
load_accounts(void)
{
    json_object *doc = NULL, *list;
    long         st = kmfix_http_json(sim.url, "GET", "/__sim/accounts", NULL, &doc);

    ck_assert_int_eq(st, 200);
    list = kmjson_get(doc, "accounts");
    ck_assert(json_object_is_type(list, json_type_array));
    naccts = 0;
    for (size_t i = 0; i < json_object_array_length(list) && naccts < 8; i++) {
        json_object    *a = json_object_array_get_idx(list, i);
        struct simacct *s = &accts[naccts++];
        const char     *v;

        memset(s, 0, sizeof(*s));
        km_strlcpy(s->name, kmjson_str(a, "name"), sizeof(s->name));
        km_strlcpy(s->key, kmjson_str(a, "key"), sizeof(s->key));
        v = kmjson_str(a, "limited_key");
        if (v)
            km_strlcpy(s->limited_key, v, sizeof(s->limited_key));
        v = kmjson_str(a, "conversion_metric_id");
        if (v)
            km_strlcpy(s->metric, v, sizeof(s->metric));
    }
    json_object_put(doc);
    ck_assert_int_ge(naccts, 3);
}

/* The settings every test starts from, and a fresh store directory. */
static void
env_up(void)
{
    char *d;

    kmlog_set_level(KMLOG_OFF);
    d = km_xasprintf("%s/storeXXXXXX", tcdir);
    ck_assert_ptr_nonnull(mkdtemp(d));
    km_strlcpy(storedir, d, sizeof(storedir));
    free(d);
    setenv("KLAVIYO_BASE_URL", sim.url, 1);
    setenv("KLAVIYO_REVISION", "2025-04-15", 1);
    setenv("KLAVIYO_MAX_RETRIES", "3", 1);
    setenv("KLAVIYO_TIMEOUT_SECONDS", "10", 1);
    setenv("CACHE_TTL_SECONDS", "300", 1);
    setenv("STORE_DIR", storedir, 1);
    unsetenv("REDIS_URL");
    unsetenv("RATE_LIMIT_SCALE");
    unsetenv("STALE_GRACE_SECONDS");
}

static void
test_up(void)
{
    long st = kmfix_http(sim.url, "POST", "/__sim/reset", NULL, NULL);

    ck_assert(st == 200 || st == 204);
    if (redis.pid > 0)
        ck_assert_int_eq(kmfix_redis_flush(redis.url), 0);
    env_up();
    load_accounts();
}

/* Canned-server tests: no simulator, one made-up account. */
static void
wire_test_up(void)
{
    env_up();
    naccts = 1;
    memset(&accts[0], 0, sizeof(accts[0]));
    km_strlcpy(accts[0].name, "acme", sizeof(accts[0].name));
    km_strlcpy(accts[0].key, "pk_a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", sizeof(accts[0].key));
    km_strlcpy(accts[0].metric, "RESQ6t", sizeof(accts[0].metric));
}

static void
test_down(void)
{
}

/* --- a client ---------------------------------------------------------------------------- */

struct client {
    kmcfg            cfg;
    kmstore         *st;
    kmkl            *kl;
    struct kmaccount acct;
    kmkl_call        call;
};

/* backend 0: LMDB in the test's store dir; 1: the TCase's redis. `key` NULL: the account's. */
static void
client_open_key(struct client *c, int backend, const char *name, const char *key)
{
    const struct simacct *a = simacct(name);
    kmstore_opts          o = { 0 };
    kmerr                 err = { 0 };

    memset(c, 0, sizeof(*c));
    if (backend == 1)
        setenv("REDIS_URL", redis.url, 1);
    ck_assert_msg(kmcfg_load(&c->cfg, &err) == KM_OK, "%s", err.msg);
    o.redis_url = c->cfg.redis_url;
    o.dir = c->cfg.store_dir;
    o.max_bytes = (size_t)c->cfg.cache_max_mb << 20;
    o.stale_grace_s = c->cfg.stale_grace_s;
    ck_assert_msg(kmstore_open(&o, &c->st, &err) == KM_OK, "%s", err.msg);
    ck_assert_msg(kmkl_new(&c->cfg, c->st, &c->kl, &err) == KM_OK, "%s", err.msg);
    km_strlcpy(c->acct.name, a->name, sizeof(c->acct.name));
    c->acct.api_key = kmsecret_new(key ? key : a->key);
    c->acct.conversion_metric_id = km_xstrdup(a->metric);
    c->call.acct = &c->acct;
    c->call.warnings = json_object_new_array();
    kmerr_clear(&err);
}

static void
client_open(struct client *c, int backend, const char *name)
{
    client_open_key(c, backend, name, NULL);
}

static void
client_close(struct client *c)
{
    kmkl_free(c->kl);
    kmstore_close(c->st);
    kmsecret_free(c->acct.api_key);
    free(c->acct.conversion_metric_id);
    json_object_put(c->call.warnings);
    kmcfg_free(&c->cfg);
}

/* A fresh call context (warnings and counters reset) on the same client. */
static void
new_call(struct client *c)
{
    json_object_put(c->call.warnings);
    memset(&c->call, 0, sizeof(c->call));
    c->call.acct = &c->acct;
    c->call.warnings = json_object_new_array();
}

/* --- the simulator's side ---------------------------------------------------------------- */

static json_object *
sim_stats(void)
{
    json_object *doc = NULL;

    ck_assert_int_eq(kmfix_http_json(sim.url, "GET", "/__sim/stats", NULL, &doc), 200);
    ck_assert_ptr_nonnull(doc);
    return doc;
}

/* Calls the simulator counted for a route ("GET /api/flows"). */
static int
sim_calls(const char *route)
{
    json_object *doc = sim_stats();
    int          n = (int)kmjson_num(kmjson_get(doc, "calls"), route, 0);

    json_object_put(doc);
    return n;
}

static int
sim_total(const char *what)
{
    json_object *doc = sim_stats();
    int          n = (int)kmjson_num(doc, what, -1);

    json_object_put(doc);
    return n;
}

static void
sim_fault(const char *method, const char *path, int count, const char *mode, int status,
          int retry_after, int delay_ms)
{
    json_object *f = json_object_new_object();
    long         st;

    if (method)
        json_object_object_add(f, "method", json_object_new_string(method));
    json_object_object_add(f, "path", json_object_new_string(path));
    json_object_object_add(f, "count", json_object_new_int(count));
    json_object_object_add(f, "mode", json_object_new_string(mode));
    if (status)
        json_object_object_add(f, "status", json_object_new_int(status));
    if (retry_after)
        json_object_object_add(f, "retry_after", json_object_new_int(retry_after));
    if (delay_ms)
        json_object_object_add(f, "delay_ms", json_object_new_int(delay_ms));
    st = kmfix_http(sim.url, "POST", "/__sim/faults", kmjson_text(f), NULL);
    json_object_put(f);
    ck_assert_msg(st >= 200 && st < 300, "the simulator refused a fault (%ld)", st);
}

static json_object *
report_body(const char *metric, const char *stat)
{
    char         text[512];
    json_object *o = NULL;

    snprintf(text, sizeof(text),
             "{\"data\":{\"type\":\"campaign-values-report\",\"attributes\":{"
             "\"statistics\":[\"%s\"],\"timeframe\":{\"key\":\"last_30_days\"},"
             "\"conversion_metric_id\":\"%s\"}}}", stat, metric);
    ck_assert_int_eq(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &o, NULL), KM_OK);
    return o;
}

static int
has_warning(json_object *warnings, const char *part)
{
    int n = 0;

    for (size_t i = 0; i < json_object_array_length(warnings); i++) {
        const char *w = json_object_get_string(json_object_array_get_idx(warnings, i));

        if (w && strstr(w, part))
            n++;
    }
    return n;
}

/* ========================================================================================= */
/* tiers                                                                                      */

/* ========================================================================================= */
/* the wire: what the client sends (canned server)                                             */

#define OK_EMPTY                                                                              \
    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %LEN%\r\n"   \
    "Connection: close\r\n\r\n{\"data\":[],\"links\":{\"next\":null}}"

/* A client against a canned server instead of the simulator. */
static kmfix_canned *
canned_client(struct client *c, const char *const *resp, size_t n)
{
    kmfix_canned *srv = kmfix_canned_start(resp, n);

    ck_assert_ptr_nonnull(srv);
    setenv("KLAVIYO_BASE_URL", kmfix_canned_url(srv), 1);
    client_open(c, 0, "acme");
    return srv;
}

START_TEST(every_request_carries_the_key_revision_and_json_api_headers)
{
    static const char *const resp[] = { OK_EMPTY };
    struct client            c;
    kmfix_canned            *srv = canned_client(&c, resp, 1);
    json_object             *doc = NULL, *body;
    kmerr                    err = { 0 };
    char                    *req, *auth;

    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    req = kmfix_canned_request(srv, 0);
    ck_assert_ptr_nonnull(req);
    ck_assert_msg(strncmp(req, "GET /api/flows/ HTTP/1.1\r\n", 26) == 0, "%.60s", req);
    auth = km_xasprintf("\r\nAuthorization: Klaviyo-API-Key %s\r\n", simacct("acme")->key);
    ck_assert_ptr_nonnull(strstr(req, auth));
    ck_assert_ptr_nonnull(strstr(req, "\r\nrevision: 2025-04-15\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nAccept: application/vnd.api+json\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\nUser-Agent: klaviyo-mcp/"));
    ck_assert_ptr_nonnull(strcasestr(req, "\r\nAccept-Encoding: "));
    ck_assert_ptr_null(strcasestr(req, "\r\nContent-Type:"));
    free(req);

    body = report_body("RESQ6t", "recipients");
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err), KM_OK);
    json_object_put(doc);
    req = kmfix_canned_request(srv, 1);
    ck_assert_ptr_nonnull(req);
    ck_assert_msg(strncmp(req, "POST /api/campaign-values-reports/ HTTP/1.1\r\n", 45) == 0,
                  "%.60s", req);
    ck_assert_ptr_nonnull(strstr(req, auth));
    ck_assert_ptr_nonnull(strstr(req, "\r\nContent-Type: application/vnd.api+json\r\n"));
    ck_assert_ptr_nonnull(strstr(req, "\r\n\r\n{\"data\":{\"type\":\"campaign-values-report\""));
    ck_assert_int_eq(c.call.calls_done, 2);
    free(req);
    free(auth);
    json_object_put(body);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

START_TEST(an_html_error_page_is_mapped_without_its_markup)
{
    static const char *const resp[] = {
        "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\nContent-Length: %LEN%\r\n"
        "Connection: close\r\n\r\n<html><body>Attention Required!</body></html>\r\n\r\n",
    };
    struct client c;
    kmfix_canned *srv = canned_client(&c, resp, 1);
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_INVALID_API_KEY);
    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(strstr(err.msg, "'acme'"));
    ck_assert_ptr_null(strstr(err.msg, "<html>"));
    ck_assert_int_eq(kmfix_canned_count(srv), 1);
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

START_TEST(an_html_server_error_is_retried_then_upstream_error)
{
    static const char *const resp[] = {
        "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: %LEN%\r\n"
        "Connection: close\r\n\r\n<html>oops</html>\r\n\r\n",
    };
    struct client c;
    kmfix_canned *srv;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    srv = canned_client(&c, resp, 1);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_int_eq(kmfix_canned_count(srv), 2);
    ck_assert_int_eq(c.call.calls_done, 2);
    ck_assert_ptr_null(strstr(err.msg, "<html>"));
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

START_TEST(a_next_link_to_another_host_is_refused)
{
    static const char *const resp[] = {
        "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %LEN%\r\n"
        "Connection: close\r\n\r\n"
        "{\"data\":[{\"id\":\"A\"}],"
        "\"links\":{\"next\":\"https://evil.example/api/flows/?p=2\"}}",
    };
    struct client c;
    kmfix_canned *srv = canned_client(&c, resp, 1);
    json_object  *all = NULL;
    kmerr         err = { 0 };

    ck_assert_int_eq(kmkl_get_all(c.kl, &c.call, "/api/flows/", &all, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(all);
    ck_assert_int_eq(kmfix_canned_count(srv), 1);
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

START_TEST(an_answer_over_sixteen_megabytes_is_refused)
{
    size_t        big = ((size_t)16 << 20) + 4096;
    char         *resp = km_xmalloc(big + 256);
    const char   *list[1];
    int           n;
    struct client c;
    kmfix_canned *srv;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    n = snprintf(resp, 256, "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\n"
                 "Connection: close\r\n\r\n{\"data\":\"");
    memset(resp + n, 'a', big);
    strcpy(resp + n + big, "\"}");
    list[0] = resp;
    srv = canned_client(&c, list, 1);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(kmfix_canned_count(srv), 1);
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
    free(resp);
}
END_TEST

/* A 429 (resp[0]) then a success: the client waits at least the second the throttle names,
 * and makes exactly two requests. */
static void
throttle_then_success(const char *const resp[2])
{
    struct client c;
    kmfix_canned *srv = canned_client(&c, resp, 2);
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    int64_t       t0 = km_now_ms();

    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    ck_assert_int_ge(km_now_ms() - t0, 1000);
    ck_assert_int_eq(kmfix_canned_count(srv), 2);
    json_object_put(doc);
    client_close(&c);
    kmfix_canned_stop(srv);
}

START_TEST(a_throttle_without_retry_after_waits_for_ratelimit_reset)
{
    static const char *const resp[] = {
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/vnd.api+json\r\n"
        "RateLimit-Reset: 1\r\nContent-Length: %LEN%\r\nConnection: close\r\n\r\n{}",
        OK_EMPTY,
    };
    throttle_then_success(resp);
}
END_TEST

START_TEST(a_throttle_without_headers_waits_for_the_time_in_its_detail)
{
    static const char *const resp[] = {
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/vnd.api+json\r\n"
        "Content-Length: %LEN%\r\nConnection: close\r\n\r\n"
        "{\"errors\":[{\"id\":\"x\",\"status\":429,\"code\":\"throttled\",\"title\":\"Request was "
        "throttled.\",\"detail\":\"Request was throttled. Expected available in 1 second.\"}]}",
        OK_EMPTY,
    };
    throttle_then_success(resp);
}
END_TEST

/* Issue 17 (11): Retry-After: 99999999999999999999 once overflowed into about a second. A
 * server error that asks for more than a minute is not slept on and not retried at once. */
START_TEST(a_server_error_asking_for_an_overflowing_retry_after_is_not_retried_soon)
{
    static const char *const resp[] = {
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/vnd.api+json\r\n"
        "Retry-After: 99999999999999999999\r\nContent-Length: %LEN%\r\nConnection: close\r\n"
        "\r\n{}",
        OK_EMPTY,
    };
    struct client c;
    kmfix_canned *srv = canned_client(&c, resp, 2);
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(kmfix_canned_count(srv), 1);
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST


/* Klaviyo counts a request when it arrives; the client charges every window 250 ms more than
 * Klaviyo's so that delay variation never puts two requests in one of Klaviyo's windows.
 * /api/accounts is XS (1 a second): the second request leaves no sooner than 1.25 s after the
 * first (real limits, no RATE_LIMIT_SCALE). The windows are kept in wall-clock milliseconds and
 * this test reads the monotonic clock, so each reading may be up to 1 ms apart: 1248 ms is
 * allowed (without the margin it is about 1000). */
START_TEST(the_rate_windows_carry_the_transit_margin)
{
    static const char *const resp[] = { OK_EMPTY };
    struct client c;
    kmfix_canned *srv;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    int64_t       t0;

    setenv("CACHE_TTL_SECONDS", "0", 1);
    srv = canned_client(&c, resp, 1);
    t0 = km_now_ms();
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/accounts/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/accounts/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_ge(km_now_ms() - t0, 1248);
    ck_assert_int_eq(kmfix_canned_count(srv), 2);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

START_TEST(a_path_that_is_not_an_api_path_is_refused_before_any_request)
{
    static const char *const resp[] = { OK_EMPTY };
    struct client            c;
    kmfix_canned            *srv = canned_client(&c, resp, 1);
    json_object             *doc = NULL;
    kmerr                    err = { 0 };

    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/../../etc", &doc, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/ X", &doc, &err), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "http://evil.example/api/", &doc, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmfix_canned_count(srv), 0);
    ck_assert_int_eq(c.call.calls_done, 0);
    kmerr_clear(&err);
    client_close(&c);
    kmfix_canned_stop(srv);
}
END_TEST

/* ========================================================================================= */
/* the simulator: auth, revision, pagination, error mapping                                    */

START_TEST(a_request_with_the_right_key_returns_the_document)
{
    struct client c;
    json_object  *doc = NULL, *data;
    kmerr         err = { 0 };

    client_open(&c, 0, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/accounts/", &doc, &err) == KM_OK, "%s",
                  err.msg);
    data = kmjson_get(doc, "data");
    ck_assert(json_object_is_type(data, json_type_array));
    ck_assert_int_eq(json_object_array_length(data), 1);
    ck_assert_int_eq(c.call.calls_done, 1);
    ck_assert_int_eq(sim_calls("GET /api/accounts"), 1);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

START_TEST(a_wrong_key_is_invalid_api_key_and_the_message_has_no_key)
{
    const char   *bad = "pk_0123456789abcdefghijABCDEFGHIJklmn";
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    client_open_key(&c, 0, "acme", bad);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_INVALID_API_KEY);
    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(strstr(err.msg, "Klaviyo rejected the API key for account 'acme'"));
    ck_assert_int_eq(json_object_get_int(kmjson_get(err.details, "klaviyo_status")), 401);
    ck_assert_ptr_null(strstr(err.msg, bad));
    ck_assert_ptr_null(strstr(err.msg, "pk_"));
    ck_assert_int_eq(kmsecret_leaks(err.msg), 0);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);  /* not retried */
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_key_without_the_scope_is_invalid_api_key)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    ck_assert(simacct("acme")->limited_key[0]);
    client_open_key(&c, 0, "acme", simacct("acme")->limited_key);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_INVALID_API_KEY);
    ck_assert_msg(strstr(err.msg, "the API key of account 'acme' lacks a scope this needs") &&
                  strstr(err.msg, "flows:read"), "%s", err.msg);
    ck_assert_int_eq(json_object_get_int(kmjson_get(err.details, "klaviyo_status")), 403);
    ck_assert_ptr_null(strstr(err.msg, simacct("acme")->limited_key));
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(the_configured_revision_is_what_klaviyo_sees)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    /* a revision the simulator does not serve is refused: the header is really sent */
    setenv("KLAVIYO_REVISION", "2019-01-01", 1);
    client_open(&c, 0, "acme");
    ck_assert_int_ne(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    ck_assert_ptr_null(doc);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

static int progress_calls;
static int progress_last;

static void
count_progress(void *arg, int done, int total)
{
    (void)arg;
    /* every report has a total, never below what is done (no plan: "at least one more") */
    ck_assert_int_ge(total, done);
    ck_assert_int_eq(done, progress_last + 1);
    progress_last = done;
    progress_calls++;
}

START_TEST(get_all_follows_next_links_across_every_page)
{
    struct client c;
    json_object  *all = NULL;
    kmerr         err = { 0 };
    size_t        n;
    int           pages;

    client_open(&c, 0, "acme");
    progress_calls = progress_last = 0;
    c.call.progress = count_progress;
    ck_assert_msg(kmkl_get_all(c.kl, &c.call, "/api/lists/", &all, &err) == KM_OK, "%s",
                  err.msg);
    n = json_object_array_length(all);
    ck_assert_int_gt(n, 10);  /* more than one page of ten */
    pages = (int)((n + 9) / 10);
    ck_assert_int_eq(sim_calls("GET /api/lists"), pages);
    ck_assert_int_eq(c.call.calls_done, pages);
    ck_assert_int_eq(progress_calls, pages);
    /* every list once */
    for (size_t i = 0; i < n; i++) {
        const char *id = kmjson_str(json_object_array_get_idx(all, i), "id");

        ck_assert_ptr_nonnull(id);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(id, kmjson_str(json_object_array_get_idx(all, j), "id"));
    }
    json_object_put(all);
    client_close(&c);
}
END_TEST

START_TEST(a_bad_request_is_invalid_argument_with_klaviyos_detail_and_not_retried)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    client_open(&c, 0, "acme");
    /* campaigns need a messages.channel filter */
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/campaigns/", &doc, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(err.msg, "Klaviyo rejected the request: "));
    ck_assert_ptr_nonnull(strstr(err.msg, "filter"));
    ck_assert_int_eq(sim_calls("GET /api/campaigns"), 1);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(an_unknown_id_is_not_found)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/ZZZZZZ/", &doc, &err), KM_NOT_FOUND);
    ck_assert_int_eq(sim_calls("GET /api/flows/{id}"), 1);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */
/* retries                                                                                     */

START_TEST(two_server_errors_then_success_succeeds_after_three_calls)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 2, "status", 503, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert(json_object_is_type(kmjson_get(doc, "data"), json_type_array));
    ck_assert_int_eq(sim_calls("GET /api/flows"), 3);
    ck_assert_int_eq(c.call.calls_done, 3);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

START_TEST(server_errors_beyond_the_retry_budget_are_upstream_error)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("KLAVIYO_MAX_RETRIES", "2", 1);
    sim_fault("GET", "/api/flows", 3, "status", 503, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 3);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_throttle_is_retried_no_sooner_than_retry_after)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    int64_t       t0;

    sim_fault("GET", "/api/flows", 1, "status", 429, 1, 0);
    client_open(&c, 0, "acme");
    t0 = km_now_ms();
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert_int_ge(km_now_ms() - t0, 1000);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

START_TEST(throttles_beyond_the_retry_budget_are_rate_limited_with_retry_after)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    sim_fault("GET", "/api/flows", 5, "status", 429, 1, 0);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_RATE_LIMITED);
    ck_assert_int_ge(err.retry_after_s, 1);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_daily_cap_throttle_fails_at_once_saying_when)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 5, "status", 429, 7200, 0);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_RATE_LIMITED);
    ck_assert_int_ge(err.retry_after_s, 7200);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_throttle_whose_wait_passes_the_deadline_fails_at_once)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 5, "status", 429, 30, 0);
    client_open(&c, 0, "acme");
    c.call.deadline_ms = km_now_ms() + 5000;
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_RATE_LIMITED);
    ck_assert_int_ge(err.retry_after_s, 30);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_slow_answer_times_out_as_upstream_timeout_after_retries)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("KLAVIYO_TIMEOUT_SECONDS", "1", 1);
    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    sim_fault("GET", "/api/flows", 2, "delay", 0, 0, 2500);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_TIMEOUT);
    ck_assert_int_eq(c.call.calls_done, 2);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_dropped_connection_is_retried)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 1, "drop", 0, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert_int_eq(c.call.calls_done, 2);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

/* "could not reach Klaviyo" says why: here nothing listens on the port */
START_TEST(a_refused_connection_is_upstream_error_naming_the_cause)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    char          url[64];

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", kmfix_free_port());
    setenv("KLAVIYO_BASE_URL", url, 1);
    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(doc);
    ck_assert_msg(strstr(err.msg, "could not reach Klaviyo (1 attempt): connection refused"),
                  "%s", err.msg);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

/* Issue 17 (a): a 5xx's Retry-After is honoured. The simulator's 503 carries no detail to
 * fall back on, and backoff alone would come back within 500 ms. */
START_TEST(a_server_error_is_retried_no_sooner_than_its_retry_after)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    int64_t       t0;

    sim_fault("GET", "/api/flows", 1, "status", 503, 2, 0);
    client_open(&c, 0, "acme");
    t0 = km_now_ms();
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert_int_ge(km_now_ms() - t0, 2000);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

/* Issue 17 (10): a 200 that is not JSON, or is cut short, is retried like a 5xx. */
START_TEST(a_malformed_body_is_retried_then_upstream_error)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 1, "malformed", 0, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert(json_object_is_type(kmjson_get(doc, "data"), json_type_array));
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    json_object_put(doc);
    doc = NULL;
    /* malformed beyond the retry budget: an upstream error saying what was wrong */
    client_close(&c);
    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    setenv("CACHE_TTL_SECONDS", "0", 1);
    sim_fault("GET", "/api/flows", 2, "malformed", 0, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_ptr_null(doc);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a JSON document"));
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_truncated_body_is_retried)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    sim_fault("GET", "/api/flows", 1, "truncated", 0, 0, 0);
    client_open(&c, 0, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert(json_object_is_type(kmjson_get(doc, "data"), json_type_array));
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */
/* the cache, on both backends (loop index 0: LMDB, 1: Redis)                                  */

START_TEST(a_cache_hit_does_not_call_klaviyo)
{
    struct client c;
    json_object  *a = NULL, *b = NULL;
    kmerr         err = { 0 };

    client_open(&c, _i, "acme");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &a, &err) == KM_OK, "%s", err.msg);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &b, &err), KM_OK);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);
    ck_assert_int_eq(c.call.calls_done, 1);
    ck_assert_int_eq(c.call.cache_hits, 1);
    ck_assert(json_object_equal(a, b));
    json_object_put(a);
    json_object_put(b);
    client_close(&c);
}
END_TEST

START_TEST(posts_are_cached_by_body_and_accounts_never_share)
{
    struct client c, k;
    json_object  *body1, *body2, *doc = NULL;
    kmerr         err = { 0 };

    client_open(&c, _i, "acme");
    body1 = report_body(c.acct.conversion_metric_id, "recipients");
    body2 = report_body(c.acct.conversion_metric_id, "delivered");
    ck_assert_msg(kmkl_post(c.kl, &c.call, REPORT_PATH, body1, &doc, &err) == KM_OK, "%s",
                  err.msg);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body1, &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("POST /api/campaign-values-reports"), 1);
    ck_assert_int_eq(c.call.cache_hits, 1);
    /* another body is another question (the daily report tier lets two through a minute) */
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body2, &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("POST /api/campaign-values-reports"), 2);
    /* the same path for another account is not a hit */
    client_open(&k, _i, "kiwi");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_get(k.kl, &k.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    ck_assert_int_eq(k.call.cache_hits, 0);
    json_object_put(body1);
    json_object_put(body2);
    client_close(&k);
    client_close(&c);
}
END_TEST

START_TEST(errors_are_never_cached)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    sim_fault("GET", "/api/flows", 1, "status", 503, 0, 0);
    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_UPSTREAM_ERROR);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    /* the success was */
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(an_entry_expires_after_its_ttl)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("CACHE_TTL_SECONDS", "1", 1);
    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    usleep(2100 * 1000);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    ck_assert_int_eq(c.call.cache_hits, 0);
    client_close(&c);
}
END_TEST

START_TEST(a_refresh_fetches_again_what_is_older_than_its_window)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    usleep(400 * 1000);
    /* a call that refreshes with a 300 ms window does not use the 400 ms old response */
    c.call.max_age_ms = 300;
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    ck_assert_int_eq(c.call.cache_hits, 0);
    /* the response it fetched is young enough for it, and for every other call */
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    c.call.max_age_ms = 0;
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    ck_assert_int_eq(c.call.cache_hits, 2);
    client_close(&c);
}
END_TEST

/* The bytes a client parsed (what its calls' documents cost the allocator: the worker gives
 * memory back after a call that parsed much) count fetched documents and cache hits alike. */
START_TEST(the_client_counts_the_bytes_of_every_document_it_parses)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    size_t        fetched, text;

    client_open(&c, _i, "acme");
    ck_assert_uint_eq(kmkl_parsed_bytes(c.kl), 0);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    fetched = kmkl_parsed_bytes(c.kl);
    /* about the length of the document's text (as json-c writes it back: spacing and
     * escapes may differ a little) */
    text = strlen(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE));
    ck_assert_uint_ge(fetched, text * 9 / 10);
    ck_assert_uint_le(fetched, text * 11 / 10);
    json_object_put(doc);
    /* a cache hit parses the same text again */
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(c.call.cache_hits, 1);
    ck_assert_uint_eq(kmkl_parsed_bytes(c.kl), 2 * fetched);
    client_close(&c);
}
END_TEST

START_TEST(a_ttl_of_zero_disables_the_cache)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    setenv("CACHE_TTL_SECONDS", "0", 1);
    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
    ck_assert_int_eq(c.call.cache_hits, 0);
    client_close(&c);
}
END_TEST

START_TEST(an_expired_answer_is_served_with_a_warning_when_klaviyo_fails)
{
    struct client c;
    json_object  *first = NULL, *doc = NULL;
    kmerr         err = { 0 };

    setenv("CACHE_TTL_SECONDS", "1", 1);
    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &first, &err), KM_OK);
    ck_assert_int_eq(json_object_array_length(c.call.warnings), 0);
    usleep(2100 * 1000);
    sim_fault("GET", "/api/flows", 10, "status", 503, 0, 0);
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert(json_object_equal(first, doc));
    ck_assert_int_eq(has_warning(c.call.warnings, "Klaviyo is unavailable (UPSTREAM_ERROR); "
                                                  "this answer is from the cache and is "), 1);
    ck_assert_int_eq(has_warning(c.call.warnings, " seconds old."), 1);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 3);  /* one good, two failed attempts */
    json_object_put(first);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

/* An expired answer, then a failure made by `fault` (a function that arranges it): the
 * expired answer is served with a warning naming `code`. */
static void
stale_after(int backend, const char *code, void (*fault)(struct client *c))
{
    struct client c;
    json_object  *first = NULL, *doc = NULL;
    kmerr         err = { 0 };
    char          want[96];

    setenv("CACHE_TTL_SECONDS", "1", 1);
    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    setenv("KLAVIYO_TIMEOUT_SECONDS", "1", 1);
    client_open(&c, backend, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &first, &err), KM_OK);
    usleep(2100 * 1000);
    fault(&c);
    new_call(&c);
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert(json_object_equal(first, doc));
    snprintf(want, sizeof(want), "Klaviyo is unavailable (%s); this answer is from the cache",
             code);
    ck_assert_msg(has_warning(c.call.warnings, want), "%s",
                  json_object_to_json_string(c.call.warnings));
    json_object_put(first);
    json_object_put(doc);
    kmerr_clear(&err);
    client_close(&c);
}

static void
fault_malformed(struct client *c)
{
    (void)c;
    sim_fault("GET", "/api/flows", 5, "malformed", 0, 0, 0);
}

static void
fault_truncated(struct client *c)
{
    (void)c;
    sim_fault("GET", "/api/flows", 5, "truncated", 0, 0, 0);
}

static void
fault_throttled(struct client *c)
{
    (void)c;
    sim_fault("GET", "/api/flows", 5, "status", 429, 7200, 0);
}

static void
fault_slow(struct client *c)
{
    (void)c;
    sim_fault("GET", "/api/flows", 5, "delay", 0, 0, 2500);
}

/* The service's own limiter: the account's S window (60 a minute, real limits) is used up
 * before the request, so it is refused without reaching Klaviyo. */
static void
fault_own_limiter(struct client *c)
{
    kmlimit tier, lim = { 0 };
    int64_t wait = 0;
    kmerr   err = { 0 };
    char    bucket[96];
    int     taken = 0;

    /* the minute window alone, so that its 60 slots can be spent at once */
    kmtier_limit(KMT_S, &tier);
    lim.nwin = 1;
    lim.win[0] = tier.win[1];
    snprintf(bucket, sizeof(bucket), "%s:S", c->acct.name);
    while (taken < 200 && kmstore_take(c->st, bucket, &lim, &wait, &err) == KM_OK)
        taken++;
    ck_assert_int_ge(taken, 59);
    kmerr_clear(&err);
}

/* Issue 17 (10): a malformed or truncated 200 serves the expired answer, like a 5xx. */
START_TEST(an_expired_answer_is_served_when_klaviyo_answers_junk)
{
    stale_after(_i, "UPSTREAM_ERROR", fault_malformed);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 2);
}
END_TEST

START_TEST(an_expired_answer_is_served_when_klaviyo_cuts_its_answer_short)
{
    stale_after(_i, "UPSTREAM_ERROR", fault_truncated);
}
END_TEST

/* Issue 17 (b): a 429, a timeout and the service's own limiter serve the expired answer. */
START_TEST(an_expired_answer_is_served_when_klaviyo_throttles)
{
    stale_after(_i, "RATE_LIMITED", fault_throttled);
}
END_TEST

START_TEST(an_expired_answer_is_served_when_klaviyo_times_out)
{
    stale_after(_i, "UPSTREAM_TIMEOUT", fault_slow);
}
END_TEST

START_TEST(an_expired_answer_is_served_when_our_own_limiter_refuses)
{
    stale_after(_i, "RATE_LIMITED", fault_own_limiter);
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);  /* the refusal reached no one */
}
END_TEST

/* Issue 17 (9): identical failing calls in flight at once share the one failure. Four
 * processes ask for an unknown flow while the first request takes 4 s: one Klaviyo call,
 * four NOT_FOUND answers (before, each waiter fetched again after the previous one failed).
 * The 4 s gives slow machines (valgrind) time to have every process waiting. */
START_TEST(identical_failing_requests_share_one_klaviyo_call_and_its_failure)
{
    enum { K = 4 };
    int   gate[2];
    pid_t kids[K];

    sim_fault("GET", "/api/flows/ZZZZZZ", 1, "delay", 0, 0, 4000);
    ck_assert_int_eq(pipe(gate), 0);
    for (int k = 0; k < K; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            struct client c;
            json_object  *doc = NULL;
            kmerr         err = { 0 };
            char          ch;
            int           ok;

            close(gate[1]);
            client_open(&c, _i, "acme");
            if (read(gate[0], &ch, 1) < 0)
                _exit(3);
            ok = kmkl_get(c.kl, &c.call, "/api/flows/ZZZZZZ/", &doc, &err) == KM_NOT_FOUND &&
                 doc == NULL && strstr(err.msg, "no such resource") != NULL;
            kmerr_clear(&err);
            client_close(&c);
            _exit(ok ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]);
    for (int k = 0; k < K; k++) {
        int st = 0;

        ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (%d)", k, st);
    }
    ck_assert_int_eq(sim_calls("GET /api/flows/{id}"), 1);
}
END_TEST

/* A failure is shared only with those already waiting: the next call asks again. */
START_TEST(a_shared_failure_is_not_an_answer_for_later_calls)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };

    client_open(&c, _i, "acme");
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/ZZZZZZ/", &doc, &err), KM_NOT_FOUND);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/ZZZZZZ/", &doc, &err), KM_NOT_FOUND);
    ck_assert_int_eq(sim_calls("GET /api/flows/{id}"), 2);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

/* K processes, each with its own store and client, ask the same thing at once. */
START_TEST(identical_requests_from_four_processes_make_one_klaviyo_call)
{
    enum { K = 4 };
    int   gate[2];
    pid_t kids[K];

    /* the first fetch is slow, so every other process arrives while it is in flight */
    sim_fault("GET", "/api/flows", 1, "delay", 0, 0, 800);
    ck_assert_int_eq(pipe(gate), 0);
    for (int k = 0; k < K; k++) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (kids[k] == 0) {
            struct client c;
            json_object  *doc = NULL;
            kmerr         err = { 0 };
            char          ch;
            int           ok;

            close(gate[1]);
            client_open(&c, _i, "acme");
            if (read(gate[0], &ch, 1) < 0)
                _exit(3);
            ok = kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK &&
                 json_object_is_type(kmjson_get(doc, "data"), json_type_array);
            json_object_put(doc);
            client_close(&c);
            _exit(ok ? 0 : 1);
        }
    }
    close(gate[0]);
    close(gate[1]);  /* opens the gate: every child reads EOF at once */
    for (int k = 0; k < K; k++) {
        int st = 0;

        ck_assert_int_eq(waitpid(kids[k], &st, 0), kids[k]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d failed (%d)", k, st);
    }
    ck_assert_int_eq(sim_calls("GET /api/flows"), 1);
}
END_TEST

START_TEST(an_unreachable_redis_is_warned_about_once_per_call)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    char          url[64];

    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", kmfix_free_port());
    setenv("REDIS_URL", url, 1);
    client_open(&c, 0, "acme");
    ck_assert_str_eq(kmstore_backend(c.st), "redis");
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/lists/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(has_warning(c.call.warnings, "The shared store (Redis) is unreachable; "
                                                  "answering from fresh Klaviyo calls with a "
                                                  "local rate limiter."), 1);
    ck_assert_int_eq(json_object_array_length(c.call.warnings), 1);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */
/* shared rate limits (simulator time-scaled by 0.02, limits on)                               */

START_TEST(a_request_over_the_budget_fails_fast_without_reaching_klaviyo)
{
    struct client c;
    json_object  *body, *doc = NULL;
    kmerr         err = { 0 };

    /* real windows on the client: the report tier allows 2 a minute */
    setenv("CACHE_TTL_SECONDS", "0", 1);
    client_open(&c, 0, "acme");
    body = report_body(c.acct.conversion_metric_id, "recipients");
    ck_assert_msg(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err) == KM_OK, "%s",
                  err.msg);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err), KM_RATE_LIMITED);
    ck_assert_ptr_null(doc);
    ck_assert_int_ge(err.retry_after_s, 1);
    ck_assert_int_eq(sim_calls("POST /api/campaign-values-reports"), 2);
    ck_assert_int_eq(c.call.calls_done, 2);
    json_object_put(body);
    kmerr_clear(&err);
    client_close(&c);
}
END_TEST

START_TEST(a_slot_that_frees_within_the_wait_budget_is_waited_for)
{
    struct client c;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    int64_t       t0;

    /* /api/accounts is XS: 1 a second */
    setenv("CACHE_TTL_SECONDS", "0", 1);
    client_open(&c, 0, "acme");
    t0 = km_now_ms();
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/accounts/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/accounts/", &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_ge(km_now_ms() - t0, 1000);
    ck_assert_int_eq(sim_total("total_throttled"), 0);
    client_close(&c);
}
END_TEST

struct hammer_result {
    int ok, limited, other;
};

struct hammer_arg {
    kmstore             *st;
    const kmcfg         *cfg;
    struct kmaccount    *acct;
    int                  n;
    struct hammer_result r;
};

static void *
hammer_thread(void *p)
{
    struct hammer_arg *a = p;
    kmkl              *kl = NULL;
    kmerr              err = { 0 };
    json_object       *body;

    if (kmkl_new(a->cfg, a->st, &kl, &err) != KM_OK) {
        a->r.other = a->n;
        return NULL;
    }
    body = report_body(a->acct->conversion_metric_id, "recipients");
    for (int i = 0; i < a->n; i++) {
        kmkl_call    call = { 0 };
        json_object *doc = NULL;
        kmcode       rc;

        call.acct = a->acct;
        call.warnings = json_object_new_array();
        call.max_wait_ms = 300;  /* short: what does not fit is refused, not queued */
        rc = kmkl_post(kl, &call, REPORT_PATH, body, &doc, &err);
        if (rc == KM_OK)
            a->r.ok++;
        else if (rc == KM_RATE_LIMITED && err.retry_after_s >= 1)
            a->r.limited++;
        else
            a->r.other++;
        kmerr_clear(&err);
        json_object_put(doc);
        json_object_put(call.warnings);
    }
    json_object_put(body);
    kmkl_free(kl);
    return NULL;
}

START_TEST(processes_and_threads_hammering_the_report_tier_never_draw_a_429)
{
    enum { P = 3, T = 3, N = 6 };
    int                  fds[P][2];
    pid_t                kids[P];
    struct hammer_result total = { 0, 0, 0 };

    setenv("RATE_LIMIT_SCALE", "0.02", 1);
    setenv("CACHE_TTL_SECONDS", "0", 1);  /* every request is a real one */
    for (int p = 0; p < P; p++) {
        ck_assert_int_eq(pipe(fds[p]), 0);
        kids[p] = fork();
        ck_assert_int_ge(kids[p], 0);
        if (kids[p] == 0) {
            struct client        c;
            pthread_t            th[T];
            struct hammer_arg    args[T];
            struct hammer_result r = { 0, 0, 0 };

            close(fds[p][0]);
            client_open(&c, 0, "acme");
            for (int t = 0; t < T; t++) {
                memset(&args[t], 0, sizeof(args[t]));
                args[t].st = c.st;
                args[t].cfg = &c.cfg;
                args[t].acct = &c.acct;
                args[t].n = N;
                pthread_create(&th[t], NULL, hammer_thread, &args[t]);
            }
            for (int t = 0; t < T; t++) {
                pthread_join(th[t], NULL);
                r.ok += args[t].r.ok;
                r.limited += args[t].r.limited;
                r.other += args[t].r.other;
            }
            client_close(&c);
            if (write(fds[p][1], &r, sizeof(r)) != (ssize_t)sizeof(r))
                _exit(2);
            _exit(0);
        }
        close(fds[p][1]);
    }
    for (int p = 0; p < P; p++) {
        struct hammer_result r;
        int                  st = 0;

        ck_assert_int_eq(read(fds[p][0], &r, sizeof(r)), (ssize_t)sizeof(r));
        close(fds[p][0]);
        ck_assert_int_eq(waitpid(kids[p], &st, 0), kids[p]);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        total.ok += r.ok;
        total.limited += r.limited;
        total.other += r.other;
    }
    ck_assert_int_eq(total.ok + total.limited + total.other, P * T * N);
    ck_assert_int_eq(total.other, 0);
    ck_assert_int_ge(total.ok, 1);
    ck_assert_int_ge(total.limited, 1);
    /* the simulator never had to throttle, and saw exactly the requests that succeeded */
    ck_assert_int_eq(sim_total("total_throttled"), 0);
    ck_assert_int_eq(sim_calls("POST /api/campaign-values-reports"), total.ok);
}
END_TEST

/* ========================================================================================= */
/* fan-out                                                                                     */

static void
first_flow_ids(struct client *c, char ids[][16], int n)
{
    json_object *all = NULL;
    kmerr        err = { 0 };

    ck_assert_msg(kmkl_get(c->kl, &c->call, "/api/flows/?page%5Bsize%5D=5", &all, &err) == KM_OK,
                  "%s", err.msg);
    ck_assert_int_ge(json_object_array_length(kmjson_get(all, "data")), n);
    for (int i = 0; i < n; i++)
        km_strlcpy(ids[i], kmjson_str(json_object_array_get_idx(kmjson_get(all, "data"), i),
                                      "id"), 16);
    json_object_put(all);
}

START_TEST(get_many_returns_each_result_in_its_place)
{
    struct client c;
    char          ids[3][16];
    char         *paths[5];
    json_object  *outs[5];
    kmcode        codes[5];
    kmerr         errs[5], err = { 0 };

    client_open(&c, 0, "acme");
    first_flow_ids(&c, ids, 3);
    paths[0] = km_xasprintf("/api/flows/%s/", ids[0]);
    paths[1] = km_xasprintf("/api/flows/%s/", "ZZZZZZ");
    paths[2] = km_xasprintf("/api/flows/%s/", ids[1]);
    paths[3] = km_xasprintf("/api/flows/%s/", ids[2]);
    paths[4] = km_xasprintf("/api/flows/%s", "../x");
    memset(errs, 0, sizeof(errs));
    ck_assert_int_eq(kmkl_get_many(c.kl, &c.call, (const char *const *)paths, 5, outs, codes,
                                   errs, &err), KM_OK);
    ck_assert_int_eq(codes[0], KM_OK);
    ck_assert_int_eq(codes[1], KM_NOT_FOUND);
    ck_assert_int_eq(errs[1].code, KM_NOT_FOUND);
    ck_assert_int_eq(codes[2], KM_OK);
    ck_assert_int_eq(codes[3], KM_OK);
    ck_assert_int_eq(codes[4], KM_INVALID_ARGUMENT);
    ck_assert_str_eq(kmjson_str(kmjson_get(outs[0], "data"), "id"), ids[0]);
    ck_assert_ptr_null(outs[1]);
    ck_assert_str_eq(kmjson_str(kmjson_get(outs[2], "data"), "id"), ids[1]);
    ck_assert_str_eq(kmjson_str(kmjson_get(outs[3], "data"), "id"), ids[2]);
    ck_assert_int_eq(sim_calls("GET /api/flows/{id}"), 4);
    for (int i = 0; i < 5; i++) {
        json_object_put(outs[i]);
        kmerr_clear(&errs[i]);
        free(paths[i]);
    }
    client_close(&c);
}
END_TEST

START_TEST(one_failing_request_in_a_fan_out_does_not_hide_the_others)
{
    struct client c;
    char          ids[3][16];
    char         *paths[3], *faulted;
    json_object  *outs[3];
    kmcode        codes[3];
    kmerr         errs[3], err = { 0 };

    setenv("KLAVIYO_MAX_RETRIES", "1", 1);
    client_open(&c, 0, "acme");
    first_flow_ids(&c, ids, 3);
    for (int i = 0; i < 3; i++)
        paths[i] = km_xasprintf("/api/flows/%s/", ids[i]);
    faulted = km_xasprintf("/api/flows/%s", ids[1]);
    sim_fault("GET", faulted, 5, "status", 503, 0, 0);
    memset(errs, 0, sizeof(errs));
    ck_assert_int_eq(kmkl_get_many(c.kl, &c.call, (const char *const *)paths, 3, outs, codes,
                                   errs, &err), KM_OK);
    ck_assert_int_eq(codes[0], KM_OK);
    ck_assert_int_eq(codes[1], KM_UPSTREAM_ERROR);
    ck_assert_int_eq(codes[2], KM_OK);
    ck_assert_str_eq(kmjson_str(kmjson_get(outs[0], "data"), "id"), ids[0]);
    ck_assert_str_eq(kmjson_str(kmjson_get(outs[2], "data"), "id"), ids[2]);
    ck_assert_int_eq(sim_calls("GET /api/flows/{id}"), 4);  /* 1 + 2 attempts + 1 */
    for (int i = 0; i < 3; i++) {
        json_object_put(outs[i]);
        kmerr_clear(&errs[i]);
        free(paths[i]);
    }
    free(faulted);
    client_close(&c);
}
END_TEST

START_TEST(list_sizes_fan_out_within_the_profile_count_tier)
{
    struct client c;
    json_object  *all = NULL;
    kmerr         err = { 0 };
    size_t        n;
    char        **paths;
    json_object **outs;
    kmcode       *codes;

    setenv("RATE_LIMIT_SCALE", "0.05", 1);
    client_open(&c, 0, "acme");
    c.call.max_wait_ms = 30000;  /* planned calls may wait for their slots (as tools do) */
    ck_assert_int_eq(kmkl_get_all(c.kl, &c.call, "/api/lists/", &all, &err), KM_OK);
    n = json_object_array_length(all);
    if (n > 12)
        n = 12;  /* within 15 a (scaled) minute */
    paths = km_xcalloc(n, sizeof(*paths));
    outs = km_xcalloc(n, sizeof(*outs));
    codes = km_xcalloc(n, sizeof(*codes));
    for (size_t i = 0; i < n; i++)
        paths[i] = km_xasprintf("/api/lists/%s/?additional-fields%%5Blist%%5D=profile_count",
                                kmjson_str(json_object_array_get_idx(all, i), "id"));
    ck_assert_int_eq(kmkl_get_many(c.kl, &c.call, (const char *const *)paths, n, outs, codes,
                                   NULL, &err), KM_OK);
    for (size_t i = 0; i < n; i++) {
        json_object *attrs = kmjson_get(kmjson_get(outs[i], "data"), "attributes");

        ck_assert_int_eq(codes[i], KM_OK);
        ck_assert_str_eq(kmjson_str(kmjson_get(outs[i], "data"), "id"),
                         kmjson_str(json_object_array_get_idx(all, i), "id"));
        ck_assert_ptr_nonnull(kmjson_get(attrs, "profile_count"));
        json_object_put(outs[i]);
        free(paths[i]);
    }
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), (int)n);
    free(paths);
    free(outs);
    free(codes);
    json_object_put(all);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */
/* cancellation                                                                                */

START_TEST(a_cancelled_call_makes_no_request)
{
    struct client c;
    atomic_bool   cancel = true;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    const char   *paths[2] = { "/api/flows/", "/api/lists/" };
    json_object  *outs[2];
    kmcode        codes[2];

    client_open(&c, 0, "acme");
    c.call.cancelled = &cancel;
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_CANCELLED);
    ck_assert_int_eq(kmkl_get_many(c.kl, &c.call, paths, 2, outs, codes, NULL, &err),
                     KM_CANCELLED);
    ck_assert_int_eq(sim_total("total_calls"), 0);
    ck_assert_int_eq(c.call.calls_done, 0);
    client_close(&c);
}
END_TEST

static void *
cancel_soon(void *p)
{
    usleep(300 * 1000);
    atomic_store((atomic_bool *)p, true);
    return NULL;
}

START_TEST(cancelling_during_a_slow_request_ends_it_as_cancelled)
{
    struct client c;
    atomic_bool   cancel = false;
    json_object  *doc = NULL;
    kmerr         err = { 0 };
    pthread_t     th;

    sim_fault("GET", "/api/flows", 1, "delay", 0, 0, 5000);
    client_open(&c, 0, "acme");
    c.call.cancelled = &cancel;
    pthread_create(&th, NULL, cancel_soon, &cancel);
    ck_assert_int_eq(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err), KM_CANCELLED);
    ck_assert_ptr_null(doc);
    pthread_join(th, NULL);
    /* the marker was released: another request for the same key goes straight through */
    new_call(&c);
    ck_assert_msg(kmkl_get(c.kl, &c.call, "/api/flows/", &doc, &err) == KM_OK, "%s", err.msg);
    ck_assert_int_eq(c.call.calls_done, 1);
    json_object_put(doc);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */
/* planning and the report budget                                                              */

START_TEST(the_report_budget_counts_down_with_each_report)
{
    struct client c;
    json_object  *body, *doc = NULL;
    kmerr         err = { 0 };
    int           left = -1;
    int64_t       reset = -1;

    client_open(&c, 0, "acme");
    ck_assert_int_eq(kmkl_report_budget(c.kl, &c.acct, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 225);
    ck_assert_int_eq(reset, 0);
    body = report_body(c.acct.conversion_metric_id, "recipients");
    ck_assert_msg(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err) == KM_OK, "%s",
                  err.msg);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_report_budget(c.kl, &c.acct, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 224);
    ck_assert_int_gt(reset, 0);
    /* a cache hit costs nothing */
    ck_assert_int_eq(kmkl_post(c.kl, &c.call, REPORT_PATH, body, &doc, &err), KM_OK);
    json_object_put(doc);
    ck_assert_int_eq(kmkl_report_budget(c.kl, &c.acct, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 224);
    json_object_put(body);
    client_close(&c);
}
END_TEST

START_TEST(a_plan_beyond_the_daily_cap_is_refused)
{
    struct client c;
    kmerr         err = { 0 };

    client_open(&c, 0, "acme");
    /* no retry can answer it: an argument problem, not a rate limit, with what would fit */
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "POST", REPORT_PATH, 300, 0, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq(err.retry_after_s, 0);
    ck_assert_int_eq((int)kmjson_num(err.details, "calls_needed", 0), 300);
    ck_assert_int_eq((int)kmjson_num(err.details, "calls_that_fit", 0), 225);
    ck_assert_ptr_nonnull(strstr(err.msg, "no retry"));
    ck_assert_ptr_nonnull(kmjson_get(err.details, "estimated_seconds"));
    kmerr_clear(&err);
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "POST", REPORT_PATH, 200, 0, &err), KM_OK);
    ck_assert_int_eq(sim_total("total_calls"), 0);
    client_close(&c);
}
END_TEST

START_TEST(a_plan_that_cannot_finish_before_the_deadline_is_refused)
{
    struct client c;
    kmerr         err = { 0 };
    int64_t       soon = km_now_ms() + 5000;

    client_open(&c, 0, "acme");
    /* two reports fit a minute; six need about three */
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "POST", REPORT_PATH, 2, soon, &err), KM_OK);
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "POST", REPORT_PATH, 6, soon, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq((int)kmjson_num(err.details, "calls_needed", 0), 6);
    ck_assert_int_eq((int)kmjson_num(err.details, "calls_that_fit", 0), 2);
    ck_assert_int_ge((int)kmjson_num(err.details, "estimated_seconds", 0), 120);
    kmerr_clear(&err);
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "POST", REPORT_PATH, 6, 0, &err), KM_OK);
    /* list sizes: 15 a minute on the profile_count bucket */
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "GET",
                               "/api/lists/AAAAAA/?additional-fields%5Blist%5D=profile_count",
                               40, soon, &err), KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
    ck_assert_int_eq(kmkl_plan(c.kl, &c.acct, "GET", "/api/lists/AAAAAA/", 40, soon, &err),
                     KM_OK);
    client_close(&c);
}
END_TEST

/* ========================================================================================= */

static Suite *
kl_suite(void)
{
    Suite *s = suite_create("kl");
    TCase *tc;

    tc = tcase_create("wire");
    tcase_add_unchecked_fixture(tc, tc_dir_up, all_down);
    tcase_add_checked_fixture(tc, wire_test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_request_carries_the_key_revision_and_json_api_headers);
    tcase_add_test(tc, an_html_error_page_is_mapped_without_its_markup);
    tcase_add_test(tc, an_html_server_error_is_retried_then_upstream_error);
    tcase_add_test(tc, a_next_link_to_another_host_is_refused);
    tcase_add_test(tc, an_answer_over_sixteen_megabytes_is_refused);
    tcase_add_test(tc, a_throttle_without_retry_after_waits_for_ratelimit_reset);
    tcase_add_test(tc, a_throttle_without_headers_waits_for_the_time_in_its_detail);
    tcase_add_test(tc, a_path_that_is_not_an_api_path_is_refused_before_any_request);
    tcase_add_test(tc, a_server_error_asking_for_an_overflowing_retry_after_is_not_retried_soon);
    tcase_add_test(tc, the_rate_windows_carry_the_transit_margin);
    suite_add_tcase(s, tc);

    tc = tcase_create("requests");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_request_with_the_right_key_returns_the_document);
    tcase_add_test(tc, a_wrong_key_is_invalid_api_key_and_the_message_has_no_key);
    tcase_add_test(tc, a_key_without_the_scope_is_invalid_api_key);
    tcase_add_test(tc, the_configured_revision_is_what_klaviyo_sees);
    tcase_add_test(tc, get_all_follows_next_links_across_every_page);
    tcase_add_test(tc, a_bad_request_is_invalid_argument_with_klaviyos_detail_and_not_retried);
    tcase_add_test(tc, an_unknown_id_is_not_found);
    suite_add_tcase(s, tc);

    tc = tcase_create("retries");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, two_server_errors_then_success_succeeds_after_three_calls);
    tcase_add_test(tc, server_errors_beyond_the_retry_budget_are_upstream_error);
    tcase_add_test(tc, a_throttle_is_retried_no_sooner_than_retry_after);
    tcase_add_test(tc, throttles_beyond_the_retry_budget_are_rate_limited_with_retry_after);
    tcase_add_test(tc, a_daily_cap_throttle_fails_at_once_saying_when);
    tcase_add_test(tc, a_throttle_whose_wait_passes_the_deadline_fails_at_once);
    tcase_add_test(tc, a_slow_answer_times_out_as_upstream_timeout_after_retries);
    tcase_add_test(tc, a_dropped_connection_is_retried);
    tcase_add_test(tc, a_refused_connection_is_upstream_error_naming_the_cause);
    tcase_add_test(tc, a_server_error_is_retried_no_sooner_than_its_retry_after);
    tcase_add_test(tc, a_malformed_body_is_retried_then_upstream_error);
    tcase_add_test(tc, a_truncated_body_is_retried);
    suite_add_tcase(s, tc);

    tc = tcase_create("cache");
    tcase_add_unchecked_fixture(tc, sim_and_redis_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, a_cache_hit_does_not_call_klaviyo, 0, 2);
    tcase_add_loop_test(tc, posts_are_cached_by_body_and_accounts_never_share, 0, 2);
    tcase_add_loop_test(tc, errors_are_never_cached, 0, 2);
    tcase_add_loop_test(tc, an_entry_expires_after_its_ttl, 0, 2);
    tcase_add_loop_test(tc, a_refresh_fetches_again_what_is_older_than_its_window, 0, 2);
    tcase_add_loop_test(tc, the_client_counts_the_bytes_of_every_document_it_parses, 0, 2);
    tcase_add_loop_test(tc, a_ttl_of_zero_disables_the_cache, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_with_a_warning_when_klaviyo_fails, 0, 2);
    tcase_add_loop_test(tc, identical_requests_from_four_processes_make_one_klaviyo_call, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_when_klaviyo_answers_junk, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_when_klaviyo_cuts_its_answer_short, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_when_klaviyo_throttles, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_when_klaviyo_times_out, 0, 2);
    tcase_add_loop_test(tc, an_expired_answer_is_served_when_our_own_limiter_refuses, 0, 2);
    tcase_add_loop_test(tc, identical_failing_requests_share_one_klaviyo_call_and_its_failure,
                        0, 2);
    tcase_add_loop_test(tc, a_shared_failure_is_not_an_answer_for_later_calls, 0, 2);
    tcase_add_test(tc, an_unreachable_redis_is_warned_about_once_per_call);
    suite_add_tcase(s, tc);

    tc = tcase_create("rate");
    tcase_add_unchecked_fixture(tc, sim_up_scaled, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_request_over_the_budget_fails_fast_without_reaching_klaviyo);
    tcase_add_test(tc, a_slot_that_frees_within_the_wait_budget_is_waited_for);
    tcase_add_test(tc, processes_and_threads_hammering_the_report_tier_never_draw_a_429);
    suite_add_tcase(s, tc);

    tc = tcase_create("fanout");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, get_many_returns_each_result_in_its_place);
    tcase_add_test(tc, one_failing_request_in_a_fan_out_does_not_hide_the_others);
    tcase_add_test(tc, list_sizes_fan_out_within_the_profile_count_tier);
    suite_add_tcase(s, tc);

    tc = tcase_create("cancel");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_cancelled_call_makes_no_request);
    tcase_add_test(tc, cancelling_during_a_slow_request_ends_it_as_cancelled);
    suite_add_tcase(s, tc);

    tc = tcase_create("budget");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, the_report_budget_counts_down_with_each_report);
    tcase_add_test(tc, a_plan_beyond_the_daily_cap_is_refused);
    tcase_add_test(tc, a_plan_that_cannot_finish_before_the_deadline_is_refused);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    SRunner *sr;
    int      failed;

    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(kl_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
