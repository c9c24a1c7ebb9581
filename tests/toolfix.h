/* toolfix.h — the service against the simulator, for the report-tool suites
 * (check_tools_campaigns, check_tools_flows, check_tools_series, check_tools_compare).
 *
 * Owns:    the simulator process and its config directory (per TCase, started in the runner
 *          process by an unchecked fixture), and the service of one test (settings, accounts,
 *          store in a fresh directory, one service thread; made and freed by the checked
 *          fixture in the test's own process). Envelopes returned by toolfix_call are the
 *          caller's (json_object_put).
 * Threads: one test thread.
 * Fails:   every helper asserts (ck_assert) instead of returning an error.
 *
 * The simulator writes accounts.toml and .env (--write-config) into the TCase directory; each
 * test points ACCOUNTS_FILE at it, loads the keys, sets KLAVIYO_BASE_URL to the simulator and
 * RATE_LIMIT_SCALE so the client's own report pacing (2 a minute) does not make a chunked
 * range take minutes. The simulator is reset (counts, windows, faults) before every test.
 */
#ifndef KM_TOOLFIX_H
#define KM_TOOLFIX_H

#include "err.h"
#include "fixtures.h"
#include "simdata.h"
#include "simstats.h"
#include "svc.h"
#include "truth.h"

#include <json-c/json.h>

extern kmfix_proc toolfix_sim;

/* Unchecked fixtures: the simulator with --no-limits, or with limits on and every window
 * scaled by `scale` ("--time-scale"); down stops it and removes the directory. */
void toolfix_sim_up(void);
void toolfix_sim_up_scaled(const char *scale);
void toolfix_sim_down(void);

/* Checked fixture: reset the simulator, fresh store, env, settings, accounts, registry,
 * service and one service thread. The client's windows are scaled by RATE_LIMIT_SCALE
 * (toolfix_rate_scale, default "0.001"; set it before the fixture runs). */
extern const char *toolfix_rate_scale;
void toolfix_up(void);
void toolfix_down(void);

/* The service of the current test. */
kmsvc *toolfix_svc(void);

/* Run `tool` with arguments given as JSON text; returns the envelope, *status its status. */
json_object *toolfix_call(const char *tool, const char *args_json, int *status);

/* The same, with a progress callback (kmsvc_progress_fn). */
json_object *toolfix_call_progress(const char *tool, const char *args_json,
                                   kmsvc_progress_fn *fn, void *arg, int *status);

/* Run `tool` expecting success: asserts status 200, that `data` validates against the tool's
 * output schema, and returns the envelope (caller puts it). */
json_object *toolfix_ok(const char *tool, const char *args_json);

/* Run `tool` expecting failure with `code`; asserts the envelope's code and that its message
 * contains `needle` (when not NULL). Returns the envelope (caller puts it). */
json_object *toolfix_fail(const char *tool, const char *args_json, kmcode code,
                          const char *needle);

/* Requests the simulator counted for a route ("POST /api/campaign-values-reports"). */
int toolfix_sim_calls(const char *route);

/* Make the next `count` requests whose path starts with `path` fail with HTTP `status`. */
void toolfix_fault(const char *method, const char *path, int count, int status);

/* "YYYY-MM-DD" of a day, into a static buffer per call slot (0..3). */
const char *toolfix_day(int slot, kmday d);

/* Parse "YYYY-MM-DD" (asserts). */
kmday toolfix_parse_day(const char *s);

/* 1 when a and b agree to within a relative 1e-9 (or absolute 1e-6 near zero). */
int toolfix_close(double a, double b);

/* Assert JSON value `v` is a number equal (toolfix_close) to `want`, naming `what`. */
void toolfix_assert_num(json_object *v, double want, const char *what);

/* Assert JSON value `v` is the rate num/den rounded to 4 places, or null when den is 0. */
void toolfix_assert_rate(json_object *v, double num, double den, const char *what);

/* The simulated world the simulator serves (seed 1), made once per process. */
const simdata *toolfix_world(void);

/* The value of Klaviyo statistic `name` for truth counts c (simstat_value). */
double toolfix_stat(const struct simcounts *c, const char *name);

/* Assert the 11-field metric block in `o` equals truth counts `c`: sent = recipients,
 * delivered, opens = opens_unique, clicks = clicks_unique, bounces = bounced, unsubscribes,
 * conversions, conversion_value (to the cent), and the rates derived from those counts. */
void toolfix_assert_block(json_object *o, const struct simcounts *c, const char *what);

/* Today in the account's timezone, from the simulator's own zone tables (not dates.c). */
kmday toolfix_today(const char *acct);

/* 1 when the envelope's warnings contain a string containing `needle`. */
int toolfix_has_warning(json_object *env, const char *needle);

#endif
