/* check_tools_lists.c — the four list tools (klaviyo_get_list_health, klaviyo_get_list_growth,
 * klaviyo_get_list_growth_by_list, klaviyo_get_list_breakdown) through the service, against
 * the real simulator, compared with the simulator's ground truth (truth.h) — never with
 * numbers a tool produced.
 *
 * Processes: each TCase starts its simulator in an unchecked fixture (the runner process,
 * whose teardown runs even when a test fails), with --write-config into the TCase's
 * directory; every test resets the simulator and opens the service on a fresh store. One
 * TCase serves a canned server instead, for what the simulator never answers (a second page
 * of metric aggregates). Nothing asserts on elapsed time.
 */
#include "env.h"
#include "fixtures.h"
#include "json.h"
#include "log.h"
#include "reg.h"
#include "schema.h"
#include "settings.h"
#include "svc.h"
#include "truth.h"
#include "util.h"

#include <check.h>
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH "klaviyo_get_list_health"
#define GROWTH "klaviyo_get_list_growth"
#define BY_LIST "klaviyo_get_list_growth_by_list"
#define BREAKDOWN "klaviyo_get_list_breakdown"

#define SUB_LIST "Subscribed to List"
#define UNSUB_LIST "Unsubscribed from List"

/* The simulator runs with its default seed; the truth is built from the same one. */
#define SIM_SEED 1

/* --- per-TCase processes (runner process) ------------------------------------------------ */

static kmfix_proc sim;
static char      *tcdir;   /* the written config and every test's store live under it */

static void
sim_up_with(const char *scale)
{
    const char *args[8];
    int         n = 0;
    char        path[600];
    kmerr       err = { 0 };

    tcdir = kmfix_tmpdir("tools_lists");
    ck_assert_ptr_nonnull(tcdir);
    if (scale) {
        args[n++] = "--time-scale";
        args[n++] = scale;
    } else {
        args[n++] = "--no-limits";
    }
    args[n++] = "--quiet";
    args[n++] = "--write-config";
    args[n++] = tcdir;
    args[n] = NULL;
    ck_assert_int_eq(kmfix_start_sim(&sim, args), 0);
    /* the demo configuration the simulator wrote: keys into the environment (inherited by
     * every test process), the manifest through ACCOUNTS_FILE */
    snprintf(path, sizeof(path), "%s/.env", tcdir);
    ck_assert_msg(kmenv_load_file(path, &err) == KM_OK, "%s", err.msg);
    snprintf(path, sizeof(path), "%s/accounts.toml", tcdir);
    setenv("ACCOUNTS_FILE", path, 1);
}

static void
sim_up(void)
{
    sim_up_with(NULL);
}

/* Limits on, every window 50 times shorter (a minute is 1.2 s). */
static void
sim_up_scaled(void)
{
    sim_up_with("0.02");
}

static void
canned_dir_up(void)
{
    tcdir = kmfix_tmpdir("tools_lists");
    ck_assert_ptr_nonnull(tcdir);
}

static void
all_down(void)
{
    kmfix_stop(&sim);
    kmfix_rmtree(tcdir);
    free(tcdir);
    tcdir = NULL;
}

/* --- per-test state (test process) ------------------------------------------------------- */

static kmcfg         cfg;
static kmaccounts   *accounts;
static kmsvc        *svc;
static kmsvc_thread *th;
static simdata      *sd;
static int           last_status;
static int           progress_done, progress_total;

static void
env_defaults(void)
{
    char *d;

    kmlog_set_level(KMLOG_OFF);
    d = km_xasprintf("%s/storeXXXXXX", tcdir);
    ck_assert_ptr_nonnull(mkdtemp(d));
    setenv("STORE_DIR", d, 1);
    free(d);
    if (sim.pid > 0)
        setenv("KLAVIYO_BASE_URL", sim.url, 1);
    setenv("KLAVIYO_REVISION", "2025-04-15", 1);
    setenv("KLAVIYO_MAX_RETRIES", "3", 1);
    setenv("KLAVIYO_TIMEOUT_SECONDS", "10", 1);
    setenv("CACHE_TTL_SECONDS", "300", 1);
    unsetenv("REQUEST_DEADLINE_SECONDS");
    unsetenv("REDIS_URL");
    /* the client keeps Klaviyo's real windows (23 size lookups at 15 a minute take over a
     * minute); tests that are not about limits run them 100 times faster */
    setenv("RATE_LIMIT_SCALE", "0.01", 1);
    unsetenv("KLAVIYO_DEMO");
}

static void
test_up(void)
{
    long st = kmfix_http(sim.url, "POST", "/__sim/reset", NULL, NULL);

    ck_assert(st == 200 || st == 204);
    env_defaults();
    sd = simdata_new(SIM_SEED);
}

static void
canned_test_up(void)
{
    env_defaults();
}

static void
test_down(void)
{
    kmsvc_thread_free(th);
    kmsvc_close(svc);
    kmacct_free(accounts);
    kmcfg_free(&cfg);
    kmreg_free();
    simdata_free(sd);
    th = NULL;
    svc = NULL;
    accounts = NULL;
    sd = NULL;
}

/* Open the service from the environment as it is now (tests adjust settings first). */
static void
service_up(void)
{
    kmerr err = { 0 };

    curl_global_init(CURL_GLOBAL_DEFAULT);
    ck_assert_msg(kmcfg_load(&cfg, &err) == KM_OK, "%s", err.msg);
    ck_assert_msg(kmacct_load(cfg.accounts_file, &accounts, &err) == KM_OK, "%s", err.msg);
    kmreg_init();
    ck_assert_msg(kmsvc_open(&cfg, accounts, &svc, &err) == KM_OK, "%s", err.msg);
    ck_assert_msg(kmsvc_thread_new(svc, &th, &err) == KM_OK, "%s", err.msg);
}

static void
on_progress(void *arg, int done, int total)
{
    (void)arg;
    progress_done = done;
    progress_total = total;
}

/* Run `tool` with printf-built JSON arguments; the envelope is the caller's. */
static json_object *
call(const char *tool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_object *
call(const char *tool, const char *fmt, ...)
{
    va_list      ap;
    char         text[1024];
    json_object *args = NULL, *env;
    kmerr        err = { 0 };

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    ck_assert_msg(kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, &args, &err) == KM_OK,
                  "test arguments are not JSON: %s", text);
    ck_assert_ptr_nonnull(kmreg_find(tool));
    progress_done = progress_total = -1;
    env = kmsvc_call(th, kmreg_find(tool), args, NULL, on_progress, NULL, &last_status);
    json_object_put(args);
    ck_assert_ptr_nonnull(env);
    return env;
}

/* The envelope's data after asserting success, validated against the tool's output schema. */
static json_object *
data_of(const char *tool, json_object *env)
{
    json_object *data = kmjson_get(env, "data");
    kmerr        err = { 0 };

    ck_assert_msg(last_status == 200, "%s failed (%d): %s", tool, last_status,
                  kmjson_text(env));
    ck_assert_ptr_nonnull(data);
    ck_assert_msg(kmschema_validate(kmreg_find(tool)->output, data, "data", &err) == KM_OK,
                  "%s data breaks its output schema: %s", tool, err.msg);
    kmerr_clear(&err);
    return data;
}

static const char *
error_code(json_object *env)
{
    return kmjson_str(kmjson_get(env, "error"), "code");
}

static int
has_warning(json_object *env, const char *part)
{
    json_object *w = kmjson_get(env, "warnings");

    for (size_t i = 0; w && i < json_object_array_length(w); i++) {
        if (strstr(json_object_get_string(json_object_array_get_idx(w, i)), part))
            return 1;
    }
    return 0;
}

/* An integer member equal to `want` (never null). */
static void
assert_int(json_object *o, const char *key, int64_t want, const char *what)
{
    json_object *v = kmjson_get(o, key);

    ck_assert_msg(v && json_object_is_type(v, json_type_int), "%s.%s is %s, want %lld", what,
                  key, v ? json_object_to_json_string(v) : "null/absent", (long long)want);
    ck_assert_msg(json_object_get_int64(v) == want, "%s.%s is %lld, want %lld", what, key,
                  (long long)json_object_get_int64(v), (long long)want);
}

static void
assert_null(json_object *o, const char *key, const char *what)
{
    ck_assert_msg(json_object_object_get_ex(o, key, NULL), "%s.%s is missing", what, key);
    ck_assert_msg(kmjson_get(o, key) == NULL, "%s.%s is %s, want null", what, key,
                  json_object_to_json_string(kmjson_get(o, key)));
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

/* Calls the simulator counted for a route ("GET /api/lists/{id}"). */
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

/* The next `count` requests whose path starts with `path` get HTTP `status`. */
static void
sim_fail(const char *method, const char *path, int count, int status)
{
    char body[512];
    long st;

    snprintf(body, sizeof(body),
             "{\"method\":\"%s\",\"path\":\"%s\",\"count\":%d,\"mode\":\"status\","
             "\"status\":%d}",
             method, path, count, status);
    st = kmfix_http(sim.url, "POST", "/__sim/faults", body, NULL);
    ck_assert_msg(st >= 200 && st < 300, "the simulator refused a fault (%ld)", st);
}

/* --- ground truth -------------------------------------------------------------------------- */

static const struct simacct *
acct(const char *name)
{
    const struct simacct *a = simdata_account_by_name(sd, name);

    ck_assert_ptr_nonnull(a);
    return a;
}

static kmrange
days(const char *from, const char *to)
{
    kmrange r;

    ck_assert_int_eq(kmdate_parse(from, &r.start), 0);
    ck_assert_int_eq(kmdate_parse(to, &r.end), 0);
    return r;
}

/* Events of the metric the tools must pick for `metric` (Klaviyo's own when names repeat)
 * over r in timezone tz; -1 when the account has no such metric. */
static int64_t
truth_events(const char *account, const char *metric, kmrange r, const char *tz)
{
    const struct simmetric *m = simdata_metric_by_name(acct(account), metric);
    struct simevents        ev;

    if (!m)
        return -1;
    ck_assert_int_eq(simtruth_metric_events(sd, account, m->id, r, tz, NULL, &ev), 0);
    return ev.count;
}

/* Per-list-name events of `metric` over r in the account's timezone. */
static long
truth_by_list(const char *account, const char *metric, kmrange r,
              struct simtruth_named **out)
{
    const struct simacct   *a = acct(account);
    const struct simmetric *m = simdata_metric_by_name(a, metric);
    long                    n;

    ck_assert_ptr_nonnull(m);
    n = simtruth_metric_by_list(sd, account, m->id, r, a->tz, out);
    ck_assert_int_ge(n, 0);
    return n;
}

static int64_t
named_count(const struct simtruth_named *t, long n, const char *name)
{
    for (long i = 0; i < n; i++) {
        if (strcmp(t[i].name, name) == 0)
            return t[i].events.count;
    }
    return 0;
}

static const struct simlist *
first_list_named(const struct simacct *a, const char *name)
{
    for (size_t i = 0; i < a->n_lists; i++) {
        if (strcmp(a->lists[i].name, name) == 0)
            return &a->lists[i];
    }
    return NULL;
}

/* The three channels as the tool names them, with their metric pairs. */
static const struct {
    const char *key, *sub, *unsub;
} channels[] = {
    { "list", SUB_LIST, UNSUB_LIST },
    { "email", "Subscribed to Email Marketing", "Unsubscribed from Email Marketing" },
    { "sms", "Subscribed to SMS Marketing", "Unsubscribed from SMS Marketing" },
};

/* ========================================================================================= */
/* klaviyo_get_list_health                                                                     */

START_TEST(every_list_across_pages_carries_its_true_size_in_klaviyos_order)
{
    const struct simacct *a;
    json_object          *env, *data, *rows;
    int64_t               total = 0;

    service_up();
    a = acct("acme");
    ck_assert_uint_gt(a->n_lists, 10);   /* more than one page of /api/lists */
    env = call(HEALTH, "{\"account\":\"acme\"}");
    data = data_of(HEALTH, env);
    rows = kmjson_get(data, "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    assert_int(data, "list_count", (int64_t)a->n_lists, "data");
    for (size_t i = 0; i < a->n_lists; i++) {
        json_object          *row = json_object_array_get_idx(rows, i);
        const struct simlist *l = &a->lists[i];

        ck_assert_str_eq(kmjson_str(row, "list_id"), l->id);
        ck_assert_str_eq(kmjson_str(row, "name"), l->name);
        ck_assert_str_eq(kmjson_str(row, "opt_in_process"), l->opt_in_process);
        ck_assert_ptr_nonnull(kmjson_str(row, "created"));
        ck_assert_ptr_nonnull(kmjson_str(row, "updated"));
        assert_int(row, "profile_count", l->profile_count, l->id);
        total += l->profile_count;
    }
    assert_int(data, "total_profiles", total, "data");
    ck_assert(has_warning(env, "not a deduplicated audience size"));
    /* one size lookup per list, and pages of 10 */
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), (int)a->n_lists);
    ck_assert_int_eq(sim_calls("GET /api/lists"), (int)(a->n_lists + 9) / 10);
    /* progress: the sizes were planned, and the last report is call n of n */
    ck_assert_int_eq(progress_total, (int)(a->n_lists + (a->n_lists + 9) / 10));
    ck_assert_int_eq(progress_done, progress_total);
    json_object_put(env);
}
END_TEST

START_TEST(one_list_by_id_is_fetched_alone)
{
    const struct simlist *l;
    json_object          *env, *data, *row;

    service_up();
    l = &acct("acme")->lists[4];
    env = call(HEALTH, "{\"account\":\"acme\",\"list_id\":\"%s\"}", l->id);
    data = data_of(HEALTH, env);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(data, "lists")), 1);
    row = json_object_array_get_idx(kmjson_get(data, "lists"), 0);
    ck_assert_str_eq(kmjson_str(row, "list_id"), l->id);
    ck_assert_str_eq(kmjson_str(row, "name"), l->name);
    assert_int(row, "profile_count", l->profile_count, l->id);
    assert_int(data, "list_count", 1, "data");
    assert_int(data, "total_profiles", l->profile_count, "data");
    ck_assert_int_eq(sim_calls("GET /api/lists"), 0);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), 1);
    json_object_put(env);
}
END_TEST

START_TEST(an_unknown_list_id_is_not_found)
{
    json_object *env;

    service_up();
    ck_assert_ptr_null(simdata_list(acct("acme"), "ZZZZZZ"));
    env = call(HEALTH, "{\"account\":\"acme\",\"list_id\":\"ZZZZZZ\"}");
    ck_assert_int_eq(last_status, 404);
    ck_assert_str_eq(error_code(env), "NOT_FOUND");
    ck_assert(strstr(kmjson_str(kmjson_get(env, "error"), "message"), "ZZZZZZ"));
    json_object_put(env);
}
END_TEST

START_TEST(a_failed_size_lookup_leaves_that_list_null_and_keeps_the_others)
{
    const struct simacct *a;
    json_object          *env, *data, *rows;
    char                  path[64];
    int64_t               total = 0;
    size_t                bad = 6;

    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    service_up();
    a = acct("acme");
    snprintf(path, sizeof(path), "/api/lists/%s", a->lists[bad].id);
    sim_fail("GET", path, 1, 500);
    env = call(HEALTH, "{\"account\":\"acme\"}");
    data = data_of(HEALTH, env);
    rows = kmjson_get(data, "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    for (size_t i = 0; i < a->n_lists; i++) {
        json_object *row = json_object_array_get_idx(rows, i);

        ck_assert_str_eq(kmjson_str(row, "list_id"), a->lists[i].id);
        if (i == bad) {
            assert_null(row, "profile_count", a->lists[i].id);
            ck_assert_str_eq(kmjson_str(row, "name"), a->lists[i].name);
            continue;
        }
        assert_int(row, "profile_count", a->lists[i].profile_count, a->lists[i].id);
        total += a->lists[i].profile_count;
    }
    assert_int(data, "list_count", (int64_t)a->n_lists, "data");
    assert_int(data, "total_profiles", total, "data");
    ck_assert(has_warning(env, "could not be fetched"));
    json_object_put(env);
}
END_TEST

START_TEST(a_repeat_takes_every_size_from_the_cache)
{
    const struct simacct *a;
    json_object          *env;

    service_up();
    a = acct("acme");
    env = call(HEALTH, "{\"account\":\"acme\"}");
    data_of(HEALTH, env);
    json_object_put(env);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), (int)a->n_lists);
    env = call(HEALTH, "{\"account\":\"acme\"}");
    data_of(HEALTH, env);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), (int)a->n_lists);
    ck_assert_int_eq((int)kmjson_num(kmjson_get(env, "metadata"), "klaviyo_calls", -1), 0);
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* klaviyo_get_list_growth                                                                     */

/* Every channel of `data` equals the truth over r in tz (null where the metric is absent). */
static void
assert_growth(json_object *data, const char *account, kmrange r, const char *tz)
{
    for (size_t c = 0; c < sizeof(channels) / sizeof(channels[0]); c++) {
        json_object *g = kmjson_path(data, "growth", channels[c].key, NULL);
        int64_t      sub = truth_events(account, channels[c].sub, r, tz);
        int64_t      unsub = truth_events(account, channels[c].unsub, r, tz);

        ck_assert_ptr_nonnull(g);
        if (sub < 0)
            assert_null(g, "subscribed", channels[c].key);
        else
            assert_int(g, "subscribed", sub, channels[c].key);
        if (unsub < 0)
            assert_null(g, "unsubscribed", channels[c].key);
        else
            assert_int(g, "unsubscribed", unsub, channels[c].key);
        if (sub < 0 || unsub < 0)
            assert_null(g, "net", channels[c].key);
        else
            assert_int(g, "net", sub - unsub, channels[c].key);
    }
}

START_TEST(growth_per_channel_equals_the_simulator_over_an_explicit_window)
{
    json_object *env, *data;
    kmrange      r = days("2025-03-01", "2025-05-31");

    service_up();
    env = call(GROWTH, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                       "\"end_date\":\"2025-05-31\"}");
    data = data_of(GROWTH, env);
    assert_growth(data, "acme", r, acct("acme")->tz);
    /* every acme metric exists: something was counted on each side */
    ck_assert_int_gt(json_object_get_int64(kmjson_path(data, "growth", "sms", "subscribed",
                                                       NULL)), 0);
    ck_assert_str_eq(kmjson_str(kmjson_path(env, "metadata", "period", NULL), "start_date"),
                     "2025-03-01");
    ck_assert_str_eq(kmjson_str(kmjson_path(env, "metadata", "period", NULL), "end_date"),
                     "2025-05-31");
    ck_assert_int_eq(sim_calls("POST /api/metric-aggregates"), 6);
    ck_assert_uint_eq(json_object_array_length(kmjson_get(env, "warnings")), 0);
    json_object_put(env);
}
END_TEST

START_TEST(kiwi_growth_is_counted_in_the_accounts_timezone_not_utc)
{
    const struct simacct *a;
    json_object          *env, *data;
    kmrange               r = days("2025-01-01", "2025-01-31");
    int                   differs = 0;

    service_up();
    a = acct("kiwi");
    ck_assert_str_eq(a->tz, "Pacific/Auckland");
    env = call(GROWTH, "{\"account\":\"kiwi\",\"start_date\":\"2025-01-01\","
                       "\"end_date\":\"2025-01-31\"}");
    data = data_of(GROWTH, env);
    assert_growth(data, "kiwi", r, a->tz);
    /* the seed's UTC window gives other numbers: the trap is real and avoided */
    for (size_t c = 0; c < sizeof(channels) / sizeof(channels[0]); c++) {
        json_object *g = kmjson_path(data, "growth", channels[c].key, NULL);
        int64_t      utc_sub = truth_events("kiwi", channels[c].sub, r, "UTC");
        int64_t      utc_unsub = truth_events("kiwi", channels[c].unsub, r, "UTC");

        differs |= utc_sub != json_object_get_int64(kmjson_get(g, "subscribed"));
        differs |= utc_unsub != json_object_get_int64(kmjson_get(g, "unsubscribed"));
    }
    ck_assert_msg(differs, "a UTC window would have given the same counts: no proof");
    json_object_put(env);
}
END_TEST

START_TEST(a_repeated_metric_name_resolves_to_klaviyos_own_metric)
{
    const struct simacct   *a;
    const struct simmetric *api = NULL;
    struct simevents        ev;
    json_object            *env, *data;
    kmrange                 r = days("2025-01-01", "2025-01-31");
    int64_t                 got;

    service_up();
    a = acct("kiwi");
    for (size_t i = 0; i < a->n_metrics; i++) {
        if (strcmp(a->metrics[i].name, SUB_LIST) == 0 &&
            strcmp(a->metrics[i].integration_name, "Klaviyo") != 0)
            api = &a->metrics[i];
    }
    ck_assert_ptr_nonnull(api);   /* kiwi lists an API duplicate of "Subscribed to List" */
    ck_assert_int_eq(simtruth_metric_events(sd, "kiwi", api->id, r, a->tz, NULL, &ev), 0);
    env = call(GROWTH, "{\"account\":\"kiwi\",\"start_date\":\"2025-01-01\","
                       "\"end_date\":\"2025-01-31\"}");
    data = data_of(GROWTH, env);
    got = json_object_get_int64(kmjson_path(data, "growth", "list", "subscribed", NULL));
    ck_assert_int_eq(got, truth_events("kiwi", SUB_LIST, r, a->tz));
    ck_assert_int_ne(got, ev.count);
    json_object_put(env);
}
END_TEST

START_TEST(an_account_without_sms_metrics_gets_null_sms_and_a_warning)
{
    json_object *env, *data, *sms;
    kmrange      r = days("2025-02-01", "2025-04-30");

    service_up();
    ck_assert_int_eq(truth_events("nosms", "Subscribed to SMS Marketing", r, "UTC"), -1);
    env = call(GROWTH, "{\"account\":\"nosms\",\"start_date\":\"2025-02-01\","
                       "\"end_date\":\"2025-04-30\"}");
    data = data_of(GROWTH, env);
    sms = kmjson_path(data, "growth", "sms", NULL);
    assert_null(sms, "subscribed", "sms");
    assert_null(sms, "unsubscribed", "sms");
    assert_null(sms, "net", "sms");
    assert_growth(data, "nosms", r, acct("nosms")->tz);
    ck_assert(has_warning(env, "'Subscribed to SMS Marketing'"));
    ck_assert(has_warning(env, "'Unsubscribed from SMS Marketing'"));
    /* no aggregate is asked for a metric that does not exist */
    ck_assert_int_eq(sim_calls("POST /api/metric-aggregates"), 4);
    json_object_put(env);
}
END_TEST

START_TEST(a_failed_aggregate_degrades_its_side_to_null_with_a_warning)
{
    json_object *env, *data, *list, *email;
    kmrange      r = days("2025-03-01", "2025-03-31");
    const char  *tz;

    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    service_up();
    tz = acct("acme")->tz;
    /* the first aggregate asked for is "Subscribed to List" */
    sim_fail("POST", "/api/metric-aggregates", 1, 500);
    env = call(GROWTH, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                       "\"end_date\":\"2025-03-31\"}");
    data = data_of(GROWTH, env);
    list = kmjson_path(data, "growth", "list", NULL);
    assert_null(list, "subscribed", "list");
    assert_null(list, "net", "list");
    assert_int(list, "unsubscribed", truth_events("acme", UNSUB_LIST, r, tz), "list");
    email = kmjson_path(data, "growth", "email", NULL);
    assert_int(email, "subscribed", truth_events("acme", channels[1].sub, r, tz), "email");
    ck_assert(has_warning(env, "'Subscribed to List'"));
    ck_assert_int_eq(sim_total("faults_fired"), 1);
    json_object_put(env);
}
END_TEST

START_TEST(a_window_over_a_year_is_chunked_and_summed)
{
    json_object *env, *data;
    kmrange      r = days("2023-01-01", "2024-12-31");   /* 731 days, 2024 a leap year */

    service_up();
    env = call(GROWTH, "{\"account\":\"acme\",\"start_date\":\"2023-01-01\","
                       "\"end_date\":\"2024-12-31\"}");
    data = data_of(GROWTH, env);
    assert_growth(data, "acme", r, acct("acme")->tz);
    /* three chunks (365 + 365 + 1 days) of six metrics; the simulator refuses > 1 year */
    ck_assert_int_eq(sim_calls("POST /api/metric-aggregates"), 18);
    ck_assert(has_warning(env, "chunks"));
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* klaviyo_get_list_growth_by_list                                                             */

struct want_row {
    const char *name;
    int64_t     sub, unsub;
};

static int
want_cmp(const void *x, const void *y)
{
    const struct want_row *a = x, *b = y;

    if (a->sub != b->sub)
        return a->sub > b->sub ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The expected rows: every name with an event on either side, subscribed descending then
 * name. Returns the count; *out is new. */
static size_t
want_rows(const struct simtruth_named *s, long ns, const struct simtruth_named *u, long nu,
          struct want_row **out)
{
    struct want_row *w = km_xcalloc((size_t)(ns + nu) + 1, sizeof(*w));
    size_t           n = 0;

    for (long i = 0; i < ns + nu; i++) {
        const char *name = i < ns ? s[i].name : u[i - ns].name;
        int         seen = 0;

        for (size_t j = 0; j < n; j++)
            seen |= strcmp(w[j].name, name) == 0;
        if (seen)
            continue;
        w[n].name = name;
        w[n].sub = named_count(s, ns, name);
        w[n].unsub = named_count(u, nu, name);
        n++;
    }
    qsort(w, n, sizeof(*w), want_cmp);
    *out = w;
    return n;
}

static void
check_by_list(const char *account, const char *from, const char *to, json_object **envp)
{
    const struct simacct  *a = acct(account);
    kmrange                r = days(from, to);
    struct simtruth_named *s = NULL, *u = NULL;
    struct want_row       *w = NULL;
    long                   ns = truth_by_list(account, SUB_LIST, r, &s);
    long                   nu = truth_by_list(account, UNSUB_LIST, r, &u);
    size_t                 n = want_rows(s, ns, u, nu, &w);
    json_object           *env, *data, *rows;
    int64_t                tsub = 0, tunsub = 0;

    env = call(BY_LIST, "{\"account\":\"%s\",\"start_date\":\"%s\",\"end_date\":\"%s\"}",
               account, from, to);
    data = data_of(BY_LIST, env);
    rows = kmjson_get(data, "lists");
    ck_assert_uint_gt(n, 1);
    ck_assert_uint_eq(json_object_array_length(rows), n);
    assert_int(data, "list_count", (int64_t)n, "data");
    for (size_t i = 0; i < n; i++) {
        json_object          *row = json_object_array_get_idx(rows, i);
        const struct simlist *l = first_list_named(a, w[i].name);

        ck_assert_str_eq(kmjson_str(row, "name"), w[i].name);
        ck_assert_ptr_nonnull(l);
        ck_assert_str_eq(kmjson_str(row, "list_id"), l->id);
        assert_int(row, "subscribed", w[i].sub, w[i].name);
        assert_int(row, "unsubscribed", w[i].unsub, w[i].name);
        assert_int(row, "net", w[i].sub - w[i].unsub, w[i].name);
        tsub += w[i].sub;
        tunsub += w[i].unsub;
    }
    assert_int(kmjson_get(data, "totals"), "subscribed", tsub, "totals");
    assert_int(kmjson_get(data, "totals"), "unsubscribed", tunsub, "totals");
    assert_int(kmjson_get(data, "totals"), "net", tsub - tunsub, "totals");
    /* the totals are the account-wide counts of klaviyo_get_list_growth */
    ck_assert_int_eq(tsub, truth_events(account, SUB_LIST, r, a->tz));
    ck_assert(has_warning(env, "lists sharing a name may not be distinguishable"));
    free(s);
    free(u);
    free(w);
    *envp = env;
}

START_TEST(growth_by_list_rows_are_joined_to_list_ids_busiest_first)
{
    json_object *env = NULL;

    service_up();
    check_by_list("acme", "2025-03-01", "2025-05-31", &env);
    /* quiet lists have no row */
    for (size_t i = 0; i < json_object_array_length(kmjson_get(kmjson_get(env, "data"),
                                                                "lists")); i++) {
        json_object *row = json_object_array_get_idx(kmjson_path(env, "data", "lists", NULL),
                                                      i);
        ck_assert(json_object_get_int64(kmjson_get(row, "subscribed")) > 0 ||
                  json_object_get_int64(kmjson_get(row, "unsubscribed")) > 0);
    }
    ck_assert_int_eq(sim_calls("POST /api/metric-aggregates"), 2);
    json_object_put(env);
}
END_TEST

START_TEST(a_shared_list_name_is_joined_to_the_first_list_with_a_warning)
{
    const struct simacct *a;
    const struct simlist *last;
    json_object          *env = NULL;
    char                  part[128];

    service_up();
    a = acct("kiwi");
    last = &a->lists[a->n_lists - 1];
    ck_assert_ptr_ne(first_list_named(a, last->name), last);   /* kiwi repeats a name */
    check_by_list("kiwi", "2025-01-01", "2025-06-30", &env);
    snprintf(part, sizeof(part), "lists are named '%s'", last->name);
    ck_assert_msg(has_warning(env, part), "no warning about the shared name: %s",
                  kmjson_text(kmjson_get(env, "warnings")));
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* klaviyo_get_list_breakdown                                                                  */

START_TEST(breakdown_lists_every_list_with_zeros_for_quiet_ones)
{
    const struct simacct  *a;
    kmrange                r = days("2025-03-01", "2025-05-31");
    struct simtruth_named *s = NULL, *u = NULL;
    long                   ns, nu;
    json_object           *env, *data, *rows, *totals;
    int64_t                profiles = 0, tsub = 0, tunsub = 0;
    int                    quiet = 0;

    service_up();
    a = acct("acme");
    ns = truth_by_list("acme", SUB_LIST, r, &s);
    nu = truth_by_list("acme", UNSUB_LIST, r, &u);
    env = call(BREAKDOWN, "{\"account\":\"acme\",\"start_date\":\"2025-03-01\","
                          "\"end_date\":\"2025-05-31\"}");
    data = data_of(BREAKDOWN, env);
    rows = kmjson_get(data, "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    assert_int(data, "list_count", (int64_t)a->n_lists, "data");
    for (size_t i = 0; i < a->n_lists; i++) {
        json_object          *row = json_object_array_get_idx(rows, i);
        const struct simlist *l = &a->lists[i];
        int64_t               sub = named_count(s, ns, l->name);
        int64_t               unsub = named_count(u, nu, l->name);

        ck_assert_str_eq(kmjson_str(row, "list_id"), l->id);
        ck_assert_str_eq(kmjson_str(row, "opt_in_process"), l->opt_in_process);
        assert_int(row, "profile_count", l->profile_count, l->id);
        assert_int(row, "subscribed", sub, l->id);
        assert_int(row, "unsubscribed", unsub, l->id);
        assert_int(row, "net", sub - unsub, l->id);
        quiet += l->sub_rate == 0.0;
        profiles += l->profile_count;
        tsub += sub;
        tunsub += unsub;
    }
    ck_assert_int_gt(quiet, 0);   /* the quiet lists showed 0, not null */
    totals = kmjson_get(data, "totals");
    assert_int(totals, "profile_count", profiles, "totals");
    assert_int(totals, "subscribed", tsub, "totals");
    assert_int(totals, "unsubscribed", tunsub, "totals");
    assert_int(totals, "net", tsub - tunsub, "totals");
    ck_assert(has_warning(env, "not deduplicated profiles"));
    free(s);
    free(u);
    json_object_put(env);
}
END_TEST

START_TEST(breakdown_gives_a_shared_names_growth_to_its_first_list)
{
    const struct simacct  *a;
    const struct simlist  *first, *last;
    kmrange                r = days("2025-01-01", "2025-06-30");
    struct simtruth_named *s = NULL;
    long                   ns;
    json_object           *env, *rows;
    size_t                 ifirst;

    service_up();
    a = acct("kiwi");
    last = &a->lists[a->n_lists - 1];
    first = first_list_named(a, last->name);
    ck_assert_ptr_ne(first, last);
    ifirst = (size_t)(first - a->lists);
    ns = truth_by_list("kiwi", SUB_LIST, r, &s);
    env = call(BREAKDOWN, "{\"account\":\"kiwi\",\"start_date\":\"2025-01-01\","
                          "\"end_date\":\"2025-06-30\"}");
    rows = kmjson_get(data_of(BREAKDOWN, env), "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    ck_assert_int_gt(named_count(s, ns, last->name), 0);
    assert_int(json_object_array_get_idx(rows, ifirst), "subscribed",
               named_count(s, ns, last->name), first->id);
    assert_int(json_object_array_get_idx(rows, a->n_lists - 1), "subscribed", 0, last->id);
    ck_assert(has_warning(env, "attributed to the first"));
    free(s);
    json_object_put(env);
}
END_TEST

START_TEST(breakdown_keeps_a_list_whose_size_lookup_failed)
{
    const struct simacct *a;
    json_object          *env, *data, *rows;
    char                  path[64];

    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    service_up();
    a = acct("acme");
    snprintf(path, sizeof(path), "/api/lists/%s", a->lists[0].id);
    sim_fail("GET", path, 1, 503);
    env = call(BREAKDOWN, "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}");
    data = data_of(BREAKDOWN, env);
    rows = kmjson_get(data, "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    assert_null(json_object_array_get_idx(rows, 0), "profile_count", a->lists[0].id);
    assert_int(json_object_array_get_idx(rows, 1), "profile_count", a->lists[1].profile_count,
               a->lists[1].id);
    ck_assert(has_warning(env, "could not be fetched"));
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* arguments                                                                                   */

static const char *const windowed[] = { GROWTH, BY_LIST, BREAKDOWN };

/* Each is INVALID_ARGUMENT for every windowed list tool. */
static const char *const bad_windows[] = {
    "{\"account\":\"acme\"}",                                                 /* no window */
    "{\"account\":\"acme\",\"start_date\":\"2025-01-01\"}",                   /* half a pair */
    "{\"account\":\"acme\",\"end_date\":\"2025-01-31\"}",
    "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"start_date\":\"2025-01-01\","
    "\"end_date\":\"2025-01-31\"}",                                           /* both forms */
    "{\"account\":\"acme\",\"start_date\":\"2025/01/01\",\"end_date\":\"2025-01-31\"}",
    "{\"account\":\"acme\",\"start_date\":\"2025-02-30\",\"end_date\":\"2025-03-31\"}",
    "{\"account\":\"acme\",\"start_date\":\"2025-03-31\",\"end_date\":\"2025-03-01\"}",
    "{\"account\":\"acme\",\"start_date\":\"2019-01-01\",\"end_date\":\"2025-01-31\"}",
    "{\"account\":\"acme\",\"timeframe\":\"last_week\"}",                     /* bad enum */
    "{\"account\":\"acme\",\"timeframe\":\"last_7_days\",\"list_id\":\"AbC123\"}",
    "{\"account\":\"acme\",\"timeframe\":7}",                                 /* wrong type */
    "{\"account\":\"Acme Inc\",\"timeframe\":\"last_7_days\"}",               /* account slug */
    "{\"timeframe\":\"last_7_days\"}",                           /* several accounts, none */
};
#define N_BAD_WINDOWS (sizeof(bad_windows) / sizeof(bad_windows[0]))

START_TEST(every_invalid_window_is_refused_before_klaviyo_is_asked)
{
    const char  *tool = windowed[_i / (int)N_BAD_WINDOWS];
    const char  *args = bad_windows[_i % (int)N_BAD_WINDOWS];
    json_object *env;

    service_up();
    env = call(tool, "%s", args);
    ck_assert_msg(last_status == 400, "%s %s: status %d", tool, args, last_status);
    ck_assert_str_eq(error_code(env), "INVALID_ARGUMENT");
    ck_assert_ptr_nonnull(kmjson_str(kmjson_get(env, "error"), "message"));
    /* at most the account's timezone was looked up: no list, metric or aggregate call */
    ck_assert_int_eq(sim_total("total_calls"), sim_calls("GET /api/accounts"));
    json_object_put(env);
}
END_TEST

static const char *const bad_health[] = {
    "{\"account\":\"acme\",\"list_id\":\"abc-12\"}",
    "{\"account\":\"acme\",\"list_id\":\"\"}",
    "{\"account\":\"acme\",\"list_id\":123456}",
    "{\"account\":\"acme\",\"timeframe\":\"last_7_days\"}",   /* health has no window */
    "{\"account\":\"acme\",\"verbose\":true}",
    "{\"account\":\"acme\",\"list_id\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAA\"}",                                      /* 65 characters */
    "{}",
};
#define N_BAD_HEALTH (sizeof(bad_health) / sizeof(bad_health[0]))

START_TEST(every_invalid_health_argument_is_refused_before_klaviyo_is_asked)
{
    json_object *env;

    service_up();
    env = call(HEALTH, "%s", bad_health[_i]);
    ck_assert_msg(last_status == 400, "%s: status %d", bad_health[_i], last_status);
    ck_assert_str_eq(error_code(env), "INVALID_ARGUMENT");
    ck_assert_int_eq(sim_total("total_calls"), 0);
    json_object_put(env);
}
END_TEST

START_TEST(a_preset_window_resolves_in_the_accounts_timezone)
{
    json_object *env, *period;
    kmday        today, start, end;
    kmerr        err = { 0 };

    service_up();
    env = call(GROWTH, "{\"account\":\"kiwi\",\"timeframe\":\"last_7_days\"}");
    data_of(GROWTH, env);
    ck_assert_int_eq(kmdate_today("Pacific/Auckland", time(NULL), &today, &err), KM_OK);
    period = kmjson_path(env, "metadata", "period", NULL);
    ck_assert_int_eq(kmdate_parse(kmjson_str(period, "start_date"), &start), 0);
    ck_assert_int_eq(kmdate_parse(kmjson_str(period, "end_date"), &end), 0);
    /* today can change between the call and this line; allow that one day only */
    ck_assert(end == today - 1 || end == today - 2);
    ck_assert_int_eq(end - start, 6);
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* Klaviyo's limits: the XS tier of list sizes                                                 */

START_TEST(list_health_over_the_xs_minute_limit_waits_for_slots_and_is_never_throttled)
{
    const struct simacct *a;
    json_object          *env, *rows;

    setenv("RATE_LIMIT_SCALE", "0.02", 1);   /* the simulator's --time-scale */
    service_up();
    a = acct("acme");
    ck_assert_uint_gt(a->n_lists, 15);       /* more than one minute of XS lookups */
    env = call(HEALTH, "{\"account\":\"acme\"}");
    rows = kmjson_get(data_of(HEALTH, env), "lists");
    ck_assert_uint_eq(json_object_array_length(rows), a->n_lists);
    for (size_t i = 0; i < a->n_lists; i++)
        assert_int(json_object_array_get_idx(rows, i), "profile_count",
                   a->lists[i].profile_count, a->lists[i].id);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), (int)a->n_lists);
    ck_assert_int_eq(sim_total("total_throttled"), 0);
    json_object_put(env);
}
END_TEST

START_TEST(list_health_that_cannot_finish_by_the_deadline_is_refused_before_any_lookup)
{
    const struct simacct *a;
    json_object          *env, *details;

    /* one second for 23 lookups at one per (scaled) 100 ms: cannot fit */
    setenv("REQUEST_DEADLINE_SECONDS", "1", 1);
    setenv("RATE_LIMIT_SCALE", "0.1", 1);
    service_up();
    a = acct("acme");
    env = call(HEALTH, "{\"account\":\"acme\"}");
    /* it can never fit the deadline: no retry helps, so it is not a rate limit */
    ck_assert_int_eq(last_status, 400);
    ck_assert_str_eq(error_code(env), "INVALID_ARGUMENT");
    details = kmjson_path(env, "error", "details", NULL);
    ck_assert_msg(details != NULL, "no details: %s", kmjson_text(env));
    ck_assert_int_eq((int)kmjson_num(details, "calls_needed", -1), (int)a->n_lists);
    ck_assert_int_lt((int)kmjson_num(details, "calls_that_fit", -1), (int)a->n_lists);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), 0);
    json_object_put(env);
}
END_TEST

/* ========================================================================================= */
/* a canned Klaviyo: the second page of metric aggregates                                      */

#define CANNED_HEAD                                                                           \
    "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.api+json\r\nContent-Length: %LEN%\r\n"   \
    "Connection: close\r\n\r\n"

START_TEST(a_second_page_of_aggregates_is_followed_and_summed)
{
    static const char *const resp[] = {
        CANNED_HEAD "{\"data\":[{\"type\":\"account\",\"id\":\"AbC123\",\"attributes\":{"
        "\"timezone\":\"America/New_York\",\"preferred_currency\":\"USD\"}}],"
        "\"links\":{\"self\":\"%BASE%/api/accounts/\",\"next\":null,\"prev\":null}}",
        CANNED_HEAD "{\"data\":[{\"type\":\"metric\",\"id\":\"SubL01\",\"attributes\":{"
        "\"name\":\"Subscribed to List\",\"integration\":{\"name\":\"Klaviyo\"}}}],"
        "\"links\":{\"self\":\"%BASE%/api/metrics/\",\"next\":null,\"prev\":null}}",
        CANNED_HEAD "{\"data\":{\"type\":\"metric-aggregate\",\"id\":\"1\",\"attributes\":{"
        "\"dates\":[\"2025-03-01T05:00:00+00:00\",\"2025-03-02T05:00:00+00:00\"],"
        "\"data\":[{\"dimensions\":[],\"measurements\":{\"count\":[3.0,4.0]}}]},"
        "\"links\":{\"self\":\"%BASE%/api/metric-aggregates/\",\"next\":"
        "\"%BASE%/api/metric-aggregates/?page_cursor=agg%2D1\"}},"
        "\"links\":{\"self\":\"%BASE%/api/metric-aggregates/\"}}",
        CANNED_HEAD "{\"data\":{\"type\":\"metric-aggregate\",\"id\":\"2\",\"attributes\":{"
        "\"dates\":[\"2025-03-01T05:00:00+00:00\",\"2025-03-02T05:00:00+00:00\"],"
        "\"data\":[{\"dimensions\":[],\"measurements\":{\"count\":[10.0,0.0]}}]},"
        "\"links\":{\"self\":\"%BASE%/api/metric-aggregates/\",\"next\":null}},"
        "\"links\":{\"self\":\"%BASE%/api/metric-aggregates/\"}}",
    };
    kmfix_canned *srv = kmfix_canned_start(resp, 4);
    char          path[600];
    FILE         *f;
    json_object  *env, *list;
    char         *req;

    ck_assert_ptr_nonnull(srv);
    snprintf(path, sizeof(path), "%s/canned.toml", tcdir);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("[canned]\napi_key_env = \"KLAVIYO_CANNED_KEY\"\nconversion_metric_id = \"Ord001\"\n"
          "label = \"Canned\"\n", f);
    fclose(f);
    setenv("ACCOUNTS_FILE", path, 1);
    setenv("KLAVIYO_CANNED_KEY", "pk_a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7", 1);
    setenv("KLAVIYO_BASE_URL", kmfix_canned_url(srv), 1);
    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    service_up();
    env = call(GROWTH, "{\"start_date\":\"2025-03-01\",\"end_date\":\"2025-03-02\"}");
    list = kmjson_path(data_of(GROWTH, env), "growth", "list", NULL);
    assert_int(list, "subscribed", 17, "list");
    assert_null(list, "unsubscribed", "list");
    assert_null(list, "net", "list");
    ck_assert(has_warning(env, "'Unsubscribed from List'"));
    ck_assert_int_eq(kmfix_canned_count(srv), 4);
    /* the first page was asked in the account's timezone, the second with its cursor */
    req = kmfix_canned_request(srv, 2);
    ck_assert_ptr_nonnull(req);
    ck_assert_msg(strstr(req, "New_York") && !strstr(req, "page_cursor"), "%s", req);
    ck_assert(strstr(req, "less-than(datetime,2025-03-03T00:00:00)"));
    free(req);
    req = kmfix_canned_request(srv, 3);
    ck_assert_ptr_nonnull(req);
    ck_assert_msg(strstr(req, "\"page_cursor\":\"agg-1\""), "%s", req);
    free(req);
    json_object_put(env);
    kmfix_canned_stop(srv);
}
END_TEST

/* ========================================================================================= */

static Suite *
tools_lists_suite(void)
{
    Suite *s = suite_create("tools_lists");
    TCase *tc;

    tc = tcase_create("health");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, every_list_across_pages_carries_its_true_size_in_klaviyos_order);
    tcase_add_test(tc, one_list_by_id_is_fetched_alone);
    tcase_add_test(tc, an_unknown_list_id_is_not_found);
    tcase_add_test(tc, a_failed_size_lookup_leaves_that_list_null_and_keeps_the_others);
    tcase_add_test(tc, a_repeat_takes_every_size_from_the_cache);
    suite_add_tcase(s, tc);

    tc = tcase_create("growth");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, growth_per_channel_equals_the_simulator_over_an_explicit_window);
    tcase_add_test(tc, kiwi_growth_is_counted_in_the_accounts_timezone_not_utc);
    tcase_add_test(tc, a_repeated_metric_name_resolves_to_klaviyos_own_metric);
    tcase_add_test(tc, an_account_without_sms_metrics_gets_null_sms_and_a_warning);
    tcase_add_test(tc, a_failed_aggregate_degrades_its_side_to_null_with_a_warning);
    tcase_add_test(tc, a_window_over_a_year_is_chunked_and_summed);
    tcase_add_test(tc, a_preset_window_resolves_in_the_accounts_timezone);
    suite_add_tcase(s, tc);

    tc = tcase_create("growth_by_list");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, growth_by_list_rows_are_joined_to_list_ids_busiest_first);
    tcase_add_test(tc, a_shared_list_name_is_joined_to_the_first_list_with_a_warning);
    suite_add_tcase(s, tc);

    tc = tcase_create("breakdown");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, breakdown_lists_every_list_with_zeros_for_quiet_ones);
    tcase_add_test(tc, breakdown_gives_a_shared_names_growth_to_its_first_list);
    tcase_add_test(tc, breakdown_keeps_a_list_whose_size_lookup_failed);
    suite_add_tcase(s, tc);

    tc = tcase_create("arguments");
    tcase_add_unchecked_fixture(tc, sim_up, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, every_invalid_window_is_refused_before_klaviyo_is_asked, 0,
                        (int)(N_BAD_WINDOWS * (sizeof(windowed) / sizeof(windowed[0]))));
    tcase_add_loop_test(tc, every_invalid_health_argument_is_refused_before_klaviyo_is_asked,
                        0, (int)N_BAD_HEALTH);
    suite_add_tcase(s, tc);

    tc = tcase_create("xs_tier");
    tcase_add_unchecked_fixture(tc, sim_up_scaled, all_down);
    tcase_add_checked_fixture(tc, test_up, test_down);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc,
                   list_health_over_the_xs_minute_limit_waits_for_slots_and_is_never_throttled);
    tcase_add_test(tc,
                   list_health_that_cannot_finish_by_the_deadline_is_refused_before_any_lookup);
    suite_add_tcase(s, tc);

    tc = tcase_create("aggregate_pages");
    tcase_add_unchecked_fixture(tc, canned_dir_up, all_down);
    tcase_add_checked_fixture(tc, canned_test_up, test_down);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, a_second_page_of_aggregates_is_followed_and_summed);
    suite_add_tcase(s, tc);

    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(tools_lists_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
