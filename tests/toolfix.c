/* toolfix.c — the service against the simulator, for the report-tool suites. */
#include "toolfix.h"
#include "accounts.h"
#include "env.h"
#include "json.h"
#include "log.h"
#include "reg.h"
#include "schema.h"
#include "settings.h"
#include "simtz.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

kmfix_proc  toolfix_sim;
const char *toolfix_rate_scale = "0.001";

static char *confdir;   /* runner process: accounts.toml and .env of the simulator */

/* test process */
static char          storedir[512];
static kmcfg         cfg;
static kmaccounts   *accounts;
static kmsvc        *svc;
static kmsvc_thread *th;

static void
sim_start(const char *scale)
{
    const char *args[8];
    int         n = 0;

    confdir = kmfix_tmpdir("toolcfg");
    ck_assert_ptr_nonnull(confdir);
    args[n++] = "--quiet";
    args[n++] = "--write-config";
    args[n++] = confdir;
    if (scale) {
        args[n++] = "--time-scale";
        args[n++] = scale;
    } else {
        args[n++] = "--no-limits";
    }
    args[n] = NULL;
    ck_assert_int_eq(kmfix_start_sim(&toolfix_sim, args), 0);
}

void
toolfix_sim_up(void)
{
    sim_start(NULL);
}

void
toolfix_sim_up_scaled(const char *scale)
{
    sim_start(scale);
}

void
toolfix_sim_down(void)
{
    kmfix_stop(&toolfix_sim);
    if (confdir) {
        kmfix_rmtree(confdir);
        free(confdir);
        confdir = NULL;
    }
}

void
toolfix_up(void)
{
    kmerr  err = { 0 };
    char  *path, *d;
    long   st;

    kmlog_set_level(KMLOG_OFF);
    st = kmfix_http(toolfix_sim.url, "POST", "/__sim/reset", NULL, NULL);
    ck_assert(st == 200 || st == 204);

    d = km_xasprintf("%s/storeXXXXXX", confdir);
    ck_assert_ptr_nonnull(mkdtemp(d));
    km_strlcpy(storedir, d, sizeof(storedir));
    free(d);

    path = km_xasprintf("%s/.env", confdir);
    ck_assert_msg(kmenv_load_file(path, &err) == KM_OK, "%s", err.msg);
    free(path);
    path = km_xasprintf("%s/accounts.toml", confdir);
    setenv("ACCOUNTS_FILE", path, 1);
    setenv("KLAVIYO_BASE_URL", toolfix_sim.url, 1);
    setenv("KLAVIYO_REVISION", "2025-04-15", 1);
    setenv("KLAVIYO_MAX_RETRIES", "2", 1);
    setenv("KLAVIYO_TIMEOUT_SECONDS", "20", 1);
    setenv("CACHE_TTL_SECONDS", "300", 1);
    setenv("STORE_DIR", storedir, 1);
    setenv("RATE_LIMIT_SCALE", toolfix_rate_scale, 1);
    unsetenv("REDIS_URL");
    unsetenv("REQUEST_DEADLINE_SECONDS");
    unsetenv("KLAVIYO_DEMO");

    ck_assert_msg(kmcfg_load(&cfg, &err) == KM_OK, "%s", err.msg);
    ck_assert_msg(kmacct_load(path, &accounts, &err) == KM_OK, "%s", err.msg);
    free(path);
    kmreg_init();
    ck_assert_msg(kmsvc_open(&cfg, accounts, &svc, &err) == KM_OK, "%s", err.msg);
    ck_assert_msg(kmsvc_thread_new(svc, &th, &err) == KM_OK, "%s", err.msg);
    kmerr_clear(&err);
}

void
toolfix_down(void)
{
    kmsvc_thread_free(th);
    th = NULL;
    kmsvc_close(svc);
    svc = NULL;
    kmacct_free(accounts);
    accounts = NULL;
    kmcfg_free(&cfg);
    kmreg_free();
    if (storedir[0])
        kmfix_rmtree(storedir);
    storedir[0] = '\0';
}

kmsvc *
toolfix_svc(void)
{
    return svc;
}

json_object *
toolfix_call(const char *tool, const char *args_json, int *status)
{
    return toolfix_call_progress(tool, args_json, NULL, NULL, status);
}

json_object *
toolfix_call_progress(const char *tool, const char *args_json, kmsvc_progress_fn *fn, void *arg,
                      int *status)
{
    const struct kmtool *t = kmreg_find(tool);
    json_object         *args = NULL, *env;
    kmerr                err = { 0 };

    ck_assert_msg(t != NULL, "no tool %s", tool);
    ck_assert_msg(kmjson_parse(args_json, strlen(args_json), KM_INVALID_ARGUMENT, &args, &err) ==
                      KM_OK,
                  "test arguments: %s", err.msg);
    env = kmsvc_call(th, t, args, NULL, fn, arg, status);
    json_object_put(args);
    kmerr_clear(&err);
    ck_assert_ptr_nonnull(env);
    return env;
}

json_object *
toolfix_ok(const char *tool, const char *args_json)
{
    const struct kmtool *t = kmreg_find(tool);
    int                  status = 0;
    json_object         *env = toolfix_call(tool, args_json, &status);
    kmerr                err = { 0 };

    ck_assert_msg(status == 200, "%s %s: status %d: %s", tool, args_json, status,
                  kmjson_text(env));
    ck_assert_msg(kmjson_get(env, "data") != NULL, "%s: no data", tool);
    ck_assert_msg(kmschema_validate(t->output, kmjson_get(env, "data"), "data", &err) == KM_OK,
                  "%s: data does not match its output schema: %s", tool, err.msg);
    kmerr_clear(&err);
    return env;
}

json_object *
toolfix_fail(const char *tool, const char *args_json, kmcode code, const char *needle)
{
    int          status = 0;
    json_object *env = toolfix_call(tool, args_json, &status);
    json_object *e = kmjson_get(env, "error");
    const char  *name = kmjson_str(e, "code");
    const char  *msg = kmjson_str(e, "message");

    ck_assert_msg(e != NULL, "%s %s: expected %s, got %s", tool, args_json, kmerr_name(code),
                  kmjson_text(env));
    ck_assert_msg(name && strcmp(name, kmerr_name(code)) == 0, "%s %s: expected %s, got %s",
                  tool, args_json, kmerr_name(code), kmjson_text(env));
    ck_assert_int_eq(status, kmerr_http_status(code));
    if (needle)
        ck_assert_msg(msg && strstr(msg, needle), "%s: message '%s' lacks '%s'", tool,
                      msg ? msg : "(none)", needle);
    return env;
}

int
toolfix_sim_calls(const char *route)
{
    json_object *doc = NULL;
    long         st = kmfix_http_json(toolfix_sim.url, "GET", "/__sim/stats", NULL, &doc);
    int          n;

    ck_assert_int_eq(st, 200);
    n = (int)kmjson_num(kmjson_get(doc, "calls"), route, 0);
    json_object_put(doc);
    return n;
}

void
toolfix_fault(const char *method, const char *path, int count, int status)
{
    char body[512];
    long st;

    snprintf(body, sizeof(body),
             "{\"method\":\"%s\",\"path\":\"%s\",\"count\":%d,\"mode\":\"status\","
             "\"status\":%d}",
             method, path, count, status);
    st = kmfix_http(toolfix_sim.url, "POST", "/__sim/faults", body, NULL);
    ck_assert_msg(st >= 200 && st < 300, "fault not accepted: %ld", st);
}

const char *
toolfix_day(int slot, kmday d)
{
    static char buf[4][11];

    ck_assert(slot >= 0 && slot < 4);
    kmdate_format(d, buf[slot]);
    return buf[slot];
}

kmday
toolfix_parse_day(const char *s)
{
    kmday d = 0;

    ck_assert_msg(s && kmdate_parse(s, &d) == 0, "not a day: %s", s ? s : "(null)");
    return d;
}

int
toolfix_close(double a, double b)
{
    double diff = fabs(a - b);

    return diff <= 1e-6 || diff <= 1e-9 * fmax(fabs(a), fabs(b));
}

void
toolfix_assert_num(json_object *v, double want, const char *what)
{
    ck_assert_msg(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int),
                  "%s: not a number (%s)", what, v ? json_object_to_json_string(v) : "null");
    ck_assert_msg(toolfix_close(json_object_get_double(v), want), "%s: got %.6f, want %.6f",
                  what, json_object_get_double(v), want);
}

void
toolfix_assert_rate(json_object *v, double num, double den, const char *what)
{
    if (den == 0) {
        ck_assert_msg(v == NULL, "%s: want null (denominator 0), got %s", what,
                      json_object_to_json_string(v));
        return;
    }
    toolfix_assert_num(v, kmjson_round(num / den, 4), what);
}

const simdata *
toolfix_world(void)
{
    static simdata *sd;

    if (!sd)
        sd = simdata_new(1);
    return sd;
}

double
toolfix_stat(const struct simcounts *c, const char *name)
{
    int s = simstat_find(name);

    ck_assert_msg(s >= 0, "no statistic %s", name);
    return simstat_value(c, s);
}

void
toolfix_assert_block(json_object *o, const struct simcounts *c, const char *what)
{
    static const struct {
        const char *field, *stat;
    } counts[] = {
        { "sent", "recipients" }, { "delivered", "delivered" }, { "opens", "opens_unique" },
        { "clicks", "clicks_unique" }, { "bounces", "bounced" },
        { "unsubscribes", "unsubscribes" }, { "conversions", "conversions" },
    };
    char   name[160];
    double sent = toolfix_stat(c, "recipients"), delivered = toolfix_stat(c, "delivered");

    ck_assert_msg(json_object_is_type(o, json_type_object), "%s: not an object", what);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        snprintf(name, sizeof(name), "%s.%s", what, counts[i].field);
        toolfix_assert_num(kmjson_get(o, counts[i].field), toolfix_stat(c, counts[i].stat), name);
    }
    snprintf(name, sizeof(name), "%s.conversion_value", what);
    toolfix_assert_num(kmjson_get(o, "conversion_value"),
                       kmjson_round(toolfix_stat(c, "conversion_value"), 2), name);
    snprintf(name, sizeof(name), "%s.open_rate", what);
    toolfix_assert_rate(kmjson_get(o, "open_rate"), toolfix_stat(c, "opens_unique"), delivered,
                        name);
    snprintf(name, sizeof(name), "%s.click_rate", what);
    toolfix_assert_rate(kmjson_get(o, "click_rate"), toolfix_stat(c, "clicks_unique"),
                        delivered, name);
    snprintf(name, sizeof(name), "%s.bounce_rate", what);
    toolfix_assert_rate(kmjson_get(o, "bounce_rate"), toolfix_stat(c, "bounced"), sent, name);
}

kmday
toolfix_today(const char *acct)
{
    const struct simacct *a = simdata_account_by_name(toolfix_world(), acct);
    kmday                 day;
    int                   sec;

    ck_assert_ptr_nonnull(a);
    simtz_utc_to_local(a->zone, (int64_t)time(NULL), &day, &sec);
    return day;
}

int
toolfix_has_warning(json_object *env, const char *needle)
{
    json_object *w = kmjson_get(env, "warnings");

    for (size_t i = 0; i < json_object_array_length(w); i++) {
        const char *s = json_object_get_string(json_object_array_get_idx(w, i));

        if (s && strstr(s, needle))
            return 1;
    }
    return 0;
}
