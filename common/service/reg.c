/* reg.c — the tool table: names, routes, schemas, handlers, and the listing of them. */
#include "reg.h"
#include "json.h"
#include "schema.h"
#include "schemas.h"
#include "shape.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How each list or series tool is bounded (shape.h); the text table's columns too. */
#define METRIC_FIELDS "sent", "delivered", "opens", "open_rate", "clicks", "click_rate",      \
    "bounces", "bounce_rate", "unsubscribes", "conversions", "conversion_value"

static const char *const campaign_sortable[] = { "campaign_name", "campaign_id", METRIC_FIELDS,
                                                 NULL };
static const char *const campaign_columns[] = { "campaign_name", "campaign_id", "sent",
                                                "open_rate", "click_rate", "conversions",
                                                "conversion_value", NULL };
static const struct kmshape_spec campaign_shape = {
    .rows = "campaigns", .count = "campaign_count", .noun = "campaigns",
    .sortable = campaign_sortable, .model_sort = "conversion_value",
    .columns = campaign_columns, .metric_rows = 1,
};

static const char *const flows_sortable[] = { "name", "flow_id", "status", "trigger_type",
                                              "created", "updated", NULL };
static const char *const flows_columns[] = { "name", "flow_id", "status", "trigger_type",
                                             "archived", "updated", NULL };
static const struct kmshape_spec flows_shape = {
    .rows = "flows", .count = "flow_count", .noun = "flows", .sortable = flows_sortable,
    .columns = flows_columns,
};

static const char *const flow_perf_sortable[] = { "flow_id", "flow_message_name",
                                                  "send_channel", METRIC_FIELDS, NULL };
static const char *const flow_perf_columns[] = { "flow_id", "flow_message_name", "send_channel",
                                                 "sent", "open_rate", "click_rate",
                                                 "conversions", "conversion_value", NULL };
static const struct kmshape_spec flow_perf_shape = {
    .rows = "flows", .count = "flow_count", .noun = "flow rows",
    .sortable = flow_perf_sortable, .model_sort = "conversion_value",
    .columns = flow_perf_columns, .metric_rows = 1,
};

static const struct kmshape_spec series_shape = { .noun = "series", .series = 1 };

static const char *const health_sortable[] = { "name", "list_id", "profile_count", "created",
                                               "updated", NULL };
static const char *const health_columns[] = { "name", "list_id", "profile_count",
                                              "opt_in_process", NULL };
static const struct kmshape_spec health_shape = {
    .rows = "lists", .count = "list_count", .noun = "lists", .sortable = health_sortable,
    .model_sort = "profile_count", .columns = health_columns,
};

static const char *const by_list_sortable[] = { "name", "list_id", "subscribed",
                                                "unsubscribed", "net", NULL };
static const char *const by_list_columns[] = { "name", "list_id", "subscribed",
                                               "unsubscribed", "net", NULL };
static const struct kmshape_spec by_list_shape = {
    .rows = "lists", .count = "list_count", .noun = "lists", .sortable = by_list_sortable,
    .model_sort = "net", .columns = by_list_columns,
};

static const char *const breakdown_sortable[] = { "name", "list_id", "profile_count",
                                                  "subscribed", "unsubscribed", "net", NULL };
static const char *const breakdown_columns[] = { "name", "list_id", "profile_count",
                                                 "subscribed", "unsubscribed", "net", NULL };
static const struct kmshape_spec breakdown_shape = {
    .rows = "lists", .count = "list_count", .noun = "lists", .sortable = breakdown_sortable,
    .model_sort = "profile_count", .columns = breakdown_columns,
};

/* The seed's guidance that every windowed tool shares. */
#define WINDOW_HELP                                                                          \
    " The window is either start_date+end_date (inclusive dates) or a timeframe preset, "  \
    "never both; dates are read in the account's timezone and the resolved window is "     \
    "echoed in metadata.period. Ranges over a year are split and merged automatically "    \
    "(up to about 5 years)."

static struct kmtool tools[] = {
    {
        .name = "klaviyo_list_accounts",
        .title = "List Klaviyo accounts",
        .description =
            "List the Klaviyo accounts this server can report on, by canonical name and label. "
            "Call this first when unsure which `account` to pass; it never returns API keys.",
        .method = "GET",
        .route = "/v1/accounts",
        .run = kmtool_list_accounts,
        .needs_account = 0,
        .local = 1,
    },
    {
        .name = "klaviyo_get_campaign_performance",
        .title = "Campaign performance",
        .description =
            "Per-campaign email and SMS performance over a window: sent, delivered, opens, "
            "clicks, bounces, unsubscribes, conversions and conversion value, with open, click "
            "and bounce rates derived from the counts. Use for 'how did last month's campaigns "
            "do?'. Set resolve_campaign_names to get real campaign names (one lookup per "
            "campaign); `campaign` narrows to one campaign id." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/campaigns/performance",
        .run = kmtool_campaign_performance,
        .shape = &campaign_shape,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_flows",
        .title = "List flows",
        .description =
            "List an account's flows (automations) with status, trigger type, archived flag "
            "and timestamps. No performance numbers: use klaviyo_get_flow_performance for "
            "those, and this tool to find flow ids and names.",
        .method = "GET",
        .route = "/v1/flows",
        .run = kmtool_get_flows,
        .shape = &flows_shape,
        .needs_account = 1,
    },
    {
        .name = "klaviyo_get_flow_performance",
        .title = "Flow performance",
        .description =
            "Flow performance per (flow, message, channel) over a window, with the same metric "
            "block as campaigns. Use to find which flow message is losing opens or clicks. "
            "resolve_message_names adds each message's name; rollup sums rows into one total "
            "per flow; `flow` narrows to one flow id." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/flows/performance",
        .run = kmtool_flow_performance,
        .shape = &flow_perf_shape,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_flow_structure",
        .title = "Flow structure",
        .description =
            "The ordered steps of one flow (sends, time delays, branches), with each send "
            "step's message id, name and channel, and a count of steps per type. Use to "
            "understand a flow's logic or to map message ids from flow performance to names.",
        .method = "GET",
        .route = "/v1/flows/{flow_id}/structure",
        .run = kmtool_flow_structure,
        .needs_account = 1,
    },
    {
        .name = "klaviyo_get_performance_over_time",
        .title = "Performance over time",
        .description =
            "A statistic bucketed over time (hourly, daily, weekly or monthly) for flows "
            "(Klaviyo's native series, passed through verbatim) or campaigns (daily, weekly or "
            "monthly, at most 53 buckets). Weekly buckets are 7 days from the window start. "
            "Returns date_times and one series per flow message or campaign, each statistic an "
            "array aligned to date_times. Campaign trends have two bases. basis \"send_date\" "
            "(default) counts each campaign by its send date, as Klaviyo's UI and campaign "
            "reports do: all its numbers sit in the bucket it was sent in (one report call for "
            "up to a year, plus one cached lookup per campaign); use it to match Klaviyo. "
            "basis \"activity\" counts when the opens, clicks and orders happened (metric "
            "aggregates, no report budget): use it for 'when did people engage?'; it will not "
            "match Klaviyo's campaign reports. Use for trends ('is flow revenue growing week "
            "over week?')." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/performance/over-time",
        .run = kmtool_over_time,
        .shape = &series_shape,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_compare_periods",
        .title = "Compare periods",
        .description =
            "Aggregate campaign or flow totals for a current window against a prior window "
            "(by default the equal-length window just before it), with absolute and percent "
            "change per metric; rates are rederived from the summed counts. Use for 'how does "
            "this month compare to last?'. entity_id narrows both periods to one id. "
            "current_entity_count/prior_entity_count count report rows (campaign or flow "
            "message x channel); current_campaign_count or current_flow_count (and prior_) "
            "count distinct campaigns or flows." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/performance/compare",
        .run = kmtool_compare_periods,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_list_health",
        .title = "List health",
        .description =
            "Current size (profile_count) and opt-in process of each list, with the list "
            "count and summed profiles (not deduplicated across lists). Use for 'how big are "
            "my lists?'. list_id returns one list. Sizes cost one slow lookup per list.",
        .method = "GET",
        .route = "/v1/lists/health",
        .run = kmtool_list_health,
        .shape = &health_shape,
        .needs_account = 1,
    },
    {
        .name = "klaviyo_get_list_growth",
        .title = "List growth",
        .description =
            "Subscribed, unsubscribed and net growth over a window for each channel: list "
            "membership, email marketing consent and SMS marketing consent. Counts are events, "
            "not deduplicated profiles. Use for 'how fast are my lists growing?'." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/lists/growth",
        .run = kmtool_list_growth,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_list_growth_by_list",
        .title = "List growth by list",
        .description =
            "Subscribed, unsubscribed and net per list over a window (only lists with "
            "activity), with account-wide totals. Use for 'which lists are growing or "
            "shrinking?'. Rows are matched to list ids by name." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/lists/growth-by-list",
        .run = kmtool_list_growth_by_list,
        .shape = &by_list_shape,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_list_breakdown",
        .title = "List breakdown",
        .description =
            "Every list's current size and opt-in process together with its subscribed, "
            "unsubscribed and net growth over a window, plus totals: list health and per-list "
            "growth in one view. Sizes cost one slow lookup per list." WINDOW_HELP,
        .method = "POST",
        .route = "/v1/lists/breakdown",
        .run = kmtool_list_breakdown,
        .shape = &breakdown_shape,
        .needs_account = 1,
        .date_scoped = 1,
    },
    {
        .name = "klaviyo_get_budget",
        .title = "Klaviyo budget",
        .description =
            "What each account has left of Klaviyo's rate limits right now: report calls used "
            "and left today (Klaviyo allows 225 a day per account, shared by every integration "
            "on the key) and, per rate-limit tier, the seconds until a request could be sent. "
            "Read-only and free: it makes no Klaviyo call. Call it before a large question "
            "(a multi-year trend or comparison) to see whether it fits today; answers the "
            "cache already holds cost nothing. Omit account for every account.",
        .method = "GET",
        .route = "/v1/budget",
        .run = kmtool_get_budget,
        .needs_account = 0,
        .live = 1,
    },
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

/* envelope.json: the success envelope every tool's output schema is wrapped in */
static json_object *envelope;

/* Parse the built-in schema `name` ("klaviyo_get_flows.input": schemas/<name>.json) and check
 * that the validator honours all of it. Failing either is a bug in the program: the process
 * stops. */
static json_object *
parse_builtin(const char *name)
{
    const char  *text = NULL;
    json_object *o = NULL;
    kmerr        err = { 0 };

    for (size_t i = 0; i < kmschemas_count && !text; i++) {
        if (strcmp(kmschemas_files[i].name, name) == 0)
            text = kmschemas_files[i].text;
    }
    if (!text) {
        fprintf(stderr, "klaviyo-mcp: no built-in schema %s (schemas/%s.json)\n", name, name);
        abort();
    }
    if (kmjson_parse(text, strlen(text), KM_INTERNAL_ERROR, &o, &err) != KM_OK ||
        !json_object_is_type(o, json_type_object)) {
        fprintf(stderr, "klaviyo-mcp: built-in schema %s is not a JSON object: %s\n", name,
                err.msg);
        abort();
    }
    if (kmschema_prepare(o, name, &err) != KM_OK) {
        fprintf(stderr, "klaviyo-mcp: built-in schema %s\n", err.msg);
        abort();
    }
    return o;
}

void
kmreg_init(void)
{
    char name[128];

    if (!envelope)
        envelope = parse_builtin("envelope");
    for (size_t i = 0; i < NTOOLS; i++) {
        if (tools[i].input)
            continue;
        snprintf(name, sizeof(name), "%s.input", tools[i].name);
        tools[i].input = parse_builtin(name);
        snprintf(name, sizeof(name), "%s.output", tools[i].name);
        tools[i].output = parse_builtin(name);
    }
}

void
kmreg_free(void)
{
    for (size_t i = 0; i < NTOOLS; i++) {
        json_object_put(tools[i].input);
        json_object_put(tools[i].output);
        tools[i].input = tools[i].output = NULL;
    }
    json_object_put(envelope);
    envelope = NULL;
    kmschema_forget();
}

size_t
kmreg_count(void)
{
    return NTOOLS;
}

const struct kmtool *
kmreg_at(size_t i)
{
    return i < NTOOLS ? &tools[i] : NULL;
}

const struct kmtool *
kmreg_find(const char *name)
{
    for (size_t i = 0; name && i < NTOOLS; i++) {
        if (strcmp(tools[i].name, name) == 0)
            return &tools[i];
    }
    return NULL;
}

kmcode
kmreg_validate(const struct kmtool *t, json_object *args, kmerr *err)
{
    if (!args || !json_object_is_type(args, json_type_object))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "arguments must be a JSON object");
    return kmschema_validate(t->input, args, "arguments", err);
}

/* The schema of a success envelope around a tool's `data` schema: what MCP's
 * structuredContent holds. It is envelope.json with properties.data replaced; the other parts
 * are shared with the parsed file (json-c counts references). */
static json_object *
envelope_schema(json_object *data)
{
    json_object *env = json_object_new_object();

    json_object_object_foreach(envelope, key, val) {
        if (strcmp(key, "properties") == 0) {
            json_object *props = json_object_new_object();

            json_object_object_foreach(val, pkey, pval) {
                json_object_object_add(props, pkey,
                                       json_object_get(strcmp(pkey, "data") == 0 ? data : pval));
            }
            json_object_object_add(env, key, props);
        } else {
            json_object_object_add(env, key, json_object_get(val));
        }
    }
    return env;
}

json_object *
kmreg_list_json(void)
{
    json_object *list = json_object_new_array();
    json_object *root = json_object_new_object();

    for (size_t i = 0; i < NTOOLS; i++) {
        json_object *t = json_object_new_object();
        json_object *ann = json_object_new_object();

        json_object_object_add(t, "name", json_object_new_string(tools[i].name));
        json_object_object_add(t, "title", json_object_new_string(tools[i].title));
        json_object_object_add(t, "description", json_object_new_string(tools[i].description));
        json_object_object_add(t, "method", json_object_new_string(tools[i].method));
        json_object_object_add(t, "route", json_object_new_string(tools[i].route));
        json_object_object_add(t, "inputSchema", json_object_get(tools[i].input));
        json_object_object_add(t, "outputSchema", envelope_schema(tools[i].output));
        json_object_object_add(ann, "title", json_object_new_string(tools[i].title));
        json_object_object_add(ann, "readOnlyHint", json_object_new_boolean(1));
        json_object_object_add(ann, "openWorldHint", json_object_new_boolean(1));
        json_object_object_add(t, "annotations", ann);
        json_object_array_add(list, t);
    }
    json_object_object_add(root, "tools", list);
    return root;
}
