/* reg.c — the tool table: names, routes, schemas, handlers, and the listing of them. */
#include "reg.h"
#include "json.h"
#include "reg_schemas.h"
#include "schema.h"
#include "shape.h"
#include "tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The seed's guidance that every windowed tool shares. */
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

#define METRIC_SORT J("sent","delivered","opens","open_rate","clicks","click_rate","bounces", \
    "bounce_rate","unsubscribes","conversions","conversion_value")

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
        .input_schema = OBJ_OPEN OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["accounts"],"properties":{
            "accounts":{"type":"array","items":{"type":"object","required":["name","label"],
            "properties":{"name":{"type":"string"},"label":{"type":"string"}}}}}}),
        .run = kmtool_list_accounts,
        .needs_account = 0,
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,) IN_WINDOW J(,"campaign":{) ID_PATTERN
            J(,"description":"Klaviyo campaign id: only this campaign."},
              "resolve_campaign_names":{"type":"boolean","default":false,
              "description":"Resolve each campaign id to its name (default false: the name falls back to the send channel)."},)
            IN_PAGE_HEAD J(["campaign_name","campaign_id",) METRIC_SORT J(]) IN_PAGE_TAIL
            OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["campaigns","campaign_count"],
            "properties":{"campaign_count":{"type":"integer","minimum":0},
            "campaigns":{"type":"array","items":{"type":"object","required":["campaign_id",
            "campaign_name",) METRIC_REQUIRED J(],"properties":{"campaign_id":{"type":"string"},
            "campaign_name":{"type":["string","null"]},) METRIC_PROPS J(}}},) OUT_PAGED J(}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,"status":{"type":"string",
            "enum":["draft","manual","live"],"description":"Only flows with this status."},
            "archived":{"type":"boolean","description":"Only archived (true) or active (false) flows."},)
            IN_PAGE_HEAD J(["name","flow_id","status","trigger_type","created","updated"])
            IN_PAGE_TAIL OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["flows","flow_count"],"properties":{
            "flow_count":{"type":"integer","minimum":0},
            "flows":{"type":"array","items":{"type":"object","required":["flow_id","name",
            "status","trigger_type","archived","created","updated"],"properties":{
            "flow_id":{"type":"string"},"name":{"type":["string","null"]},
            "status":{"type":["string","null"]},"trigger_type":{"type":["string","null"]},
            "archived":{"type":["boolean","null"]},"created":{"type":["string","null"]},
            "updated":{"type":["string","null"]}}}},) OUT_PAGED J(}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,) IN_WINDOW J(,"flow":{) ID_PATTERN
            J(,"description":"Klaviyo flow id: only this flow."},
              "resolve_message_names":{"type":"boolean","default":false,
              "description":"Attach each flow message's name (one lookup per message)."},
              "rollup":{"type":"boolean","default":false,
              "description":"One summed row per flow; message fields become null."},)
            IN_PAGE_HEAD J(["flow_id","flow_message_name","send_channel",) METRIC_SORT J(])
            IN_PAGE_TAIL OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["flows","flow_count"],"properties":{
            "flow_count":{"type":"integer","minimum":0},
            "flows":{"type":"array","items":{"type":"object","required":["flow_id",
            "flow_message_id","flow_message_name","send_channel",) METRIC_REQUIRED
            J(],"properties":{"flow_id":{"type":"string"},
            "flow_message_id":{"type":["string","null"]},
            "flow_message_name":{"type":["string","null"]},
            "send_channel":{"type":["string","null"]},) METRIC_PROPS J(}}},) OUT_PAGED J(}}),
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
        .input_schema = J({"type":"object","additionalProperties":false,"required":["flow_id"],
            "properties":{) IN_ACCOUNT J(,"flow_id":{) ID_PATTERN
            J(,"description":"The Klaviyo flow id (see klaviyo_get_flows)."}}}),
        .output_schema = J({"type":"object","required":["flow_id","action_count","steps",
            "summary"],"properties":{"flow_id":{"type":"string"},
            "action_count":{"type":"integer","minimum":0},
            "steps":{"type":"array","items":{"type":"object","required":["action_id",
            "action_type","message_id","message_name","channel"],"properties":{
            "action_id":{"type":"string"},"action_type":{"type":"string"},
            "message_id":{"type":["string","null"]},"message_name":{"type":["string","null"]},
            "channel":{"type":["string","null"]}}}},
            "summary":{"type":"object","additionalProperties":{"type":"integer"}}}}),
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
        .input_schema = J({"type":"object","additionalProperties":false,"required":["entity"],
            "properties":{) IN_ACCOUNT J(,) IN_WINDOW J(,"entity":{"type":"string",
            "enum":["flow","campaign"],"description":"flow (native series) or campaign (bucketed by basis)."},
            "basis":{"type":"string","enum":["send_date","activity"],"default":"send_date",
            "description":"Campaigns only: send_date (as Klaviyo's reports and UI count, the default) or activity (when events happened, from metric aggregates)."},
            "interval":{"type":"string","enum":["hourly","daily","weekly","monthly"],
            "default":"weekly","description":"Bucket size; campaigns take daily, weekly or monthly."},
            "entity_id":{) ID_PATTERN J(,"description":"Only this flow or campaign id."},
            "statistics":{"type":"array","minItems":1,"maxItems":27,"uniqueItems":true,
            "items":{"type":"string","enum":) STATISTICS_ENUM J(},
            "description":"Klaviyo statistic names (default recipients, delivered, opens_unique, clicks_unique, conversions, conversion_value)."},)
            IN_SERIES_LIMIT J(}}),
        .output_schema = J({"type":"object","required":["entity","interval","date_times",
            "series"],"properties":{"entity":{"type":"string"},"interval":{"type":"string"},
            "basis":{"type":"string","enum":["send_date","activity"]},
            "date_times":{"type":"array","items":{"type":"string"}},
            "series":{"type":"array","items":{"type":"object","required":["groupings",
            "statistics"],"properties":{"groupings":{"type":"object"},
            "statistics":{"type":"object","additionalProperties":{"type":"array",
            "items":{"type":["number","null"]}}}}}},) OUT_PAGED J(}}),
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
        .input_schema = J({"type":"object","additionalProperties":false,"required":["entity"],
            "properties":{) IN_ACCOUNT J(,) IN_WINDOW J(,"entity":{"type":"string",
            "enum":["campaign","flow"],"description":"campaign or flow totals."},
            "prior_start_date":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description":"Explicit prior-period start (with prior_end_date)."},
            "prior_end_date":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
            "description":"Explicit prior-period end, inclusive (with prior_start_date)."},
            "entity_id":{) ID_PATTERN J(,"description":"Only this campaign or flow id."}}}),
        .output_schema = J({"type":"object","required":["entity","current_period",
            "prior_period","current_totals","prior_totals","deltas","current_entity_count",
            "prior_entity_count"],"properties":{"entity":{"type":"string"},
            "current_period":) PERIOD J(,"prior_period":) PERIOD J(,"current_totals":)
            METRIC_BLOCK J(,"prior_totals":) METRIC_BLOCK J(,"deltas":{"type":"object",
            "additionalProperties":) DELTA J(},"current_entity_count":{"type":"integer"},
            "prior_entity_count":{"type":"integer"},
            "current_campaign_count":{"type":"integer"},"prior_campaign_count":{"type":"integer"},
            "current_flow_count":{"type":"integer"},"prior_flow_count":{"type":"integer"}}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,"list_id":{) ID_PATTERN
            J(,"description":"Only this Klaviyo list id."},) IN_PAGE_HEAD
            J(["name","list_id","profile_count","created","updated"]) IN_PAGE_TAIL OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["lists","list_count",
            "total_profiles"],"properties":{"list_count":{"type":"integer","minimum":0},
            "total_profiles":{"type":"integer","minimum":0},
            "lists":{"type":"array","items":{"type":"object","required":["list_id","name",
            "opt_in_process","profile_count","created","updated"],"properties":{
            "list_id":{"type":"string"},"name":{"type":["string","null"]},
            "opt_in_process":{"type":["string","null"]},
            "profile_count":{"type":["integer","null"]},"created":{"type":["string","null"]},
            "updated":{"type":["string","null"]}}}},) OUT_PAGED J(}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,) IN_WINDOW OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["growth"],"properties":{
            "growth":{"type":"object","required":["list","email","sms"],"properties":{
            "list":) GROWTH J(,"email":) GROWTH J(,"sms":) GROWTH J(}}}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,) IN_WINDOW J(,) IN_PAGE_HEAD
            J(["name","list_id","subscribed","unsubscribed","net"]) IN_PAGE_TAIL OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["lists","list_count","totals"],
            "properties":{"list_count":{"type":"integer","minimum":0},
            "lists":{"type":"array","items":{"type":"object","required":["list_id","name",
            "subscribed","unsubscribed","net"],"properties":{
            "list_id":{"type":["string","null"]},"name":{"type":["string","null"]},
            "subscribed":{"type":["integer","null"]},"unsubscribed":{"type":["integer","null"]},
            "net":{"type":["integer","null"]}}}},"totals":) GROWTH J(,) OUT_PAGED J(}}),
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
        .input_schema = OBJ_OPEN IN_ACCOUNT J(,) IN_WINDOW J(,) IN_PAGE_HEAD
            J(["name","list_id","profile_count","subscribed","unsubscribed","net"])
            IN_PAGE_TAIL OBJ_CLOSE,
        .output_schema = J({"type":"object","required":["lists","list_count","totals"],
            "properties":{"list_count":{"type":"integer","minimum":0},
            "lists":{"type":"array","items":{"type":"object","required":["list_id","name",
            "opt_in_process","profile_count","subscribed","unsubscribed","net"],"properties":{
            "list_id":{"type":"string"},"name":{"type":["string","null"]},
            "opt_in_process":{"type":["string","null"]},
            "profile_count":{"type":["integer","null"]},
            "subscribed":{"type":["integer","null"]},"unsubscribed":{"type":["integer","null"]},
            "net":{"type":["integer","null"]}}}},
            "totals":{"type":"object","required":["profile_count","subscribed","unsubscribed",
            "net"],"properties":{"profile_count":{"type":["integer","null"]},
            "subscribed":{"type":["integer","null"]},"unsubscribed":{"type":["integer","null"]},
            "net":{"type":["integer","null"]}}},) OUT_PAGED J(}}),
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
        .input_schema = J({"type":"object","additionalProperties":false,"properties":{
            "account":{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
            "description":"Canonical account name; omit for every configured account."}}}),
        .output_schema = J({"type":"object","required":["accounts"],"properties":{
            "accounts":{"type":"array","items":{"type":"object","required":["account",
            "report_calls_used_today","report_calls_left_today","daily_report_cap","tiers"],
            "properties":{"account":{"type":"string"},
            "report_calls_used_today":{"type":"integer","minimum":0},
            "report_calls_left_today":{"type":"integer","minimum":0},
            "daily_report_cap":{"type":"integer","minimum":1},
            "tiers":{"type":"array","items":{"type":"object","required":["tier",
            "next_free_slot_s"],"properties":{"tier":{"type":"string"},
            "next_free_slot_s":{"type":"number","minimum":0}}}}}}}}}),
        .run = kmtool_get_budget,
        .needs_account = 0,
        .live = 1,
    },
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

/* Parse a built-in schema and check that the validator honours all of it; either failing
 * is a bug in the program, so the process stops. */
static json_object *
parse_builtin(const char *name, const char *what, const char *text)
{
    json_object *o = NULL;
    kmerr        err = { 0 };
    char         where[128];

    if (kmjson_parse(text, strlen(text), KM_INTERNAL_ERROR, &o, &err) != KM_OK ||
        !json_object_is_type(o, json_type_object)) {
        fprintf(stderr, "klaviyo-mcp: built-in %s schema of %s is not valid JSON: %s\n", what,
                name, err.msg);
        abort();
    }
    snprintf(where, sizeof(where), "%s.%s", name, what);
    if (kmschema_prepare(o, where, &err) != KM_OK) {
        fprintf(stderr, "klaviyo-mcp: built-in schema %s\n", err.msg);
        abort();
    }
    return o;
}

void
kmreg_init(void)
{
    for (size_t i = 0; i < NTOOLS; i++) {
        if (tools[i].input)
            continue;
        tools[i].input = parse_builtin(tools[i].name, "input", tools[i].input_schema);
        tools[i].output = parse_builtin(tools[i].name, "output", tools[i].output_schema);
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
 * structuredContent holds. */
static json_object *
envelope_schema(json_object *data)
{
    static const char meta[] = J({"type":"object","required":["account","period","revision",
        "latency_ms"],"properties":{"account":{"type":["string","null"]},
        "period":{"type":["object","null"],"properties":{"start_date":{"type":"string"},
        "end_date":{"type":"string"}}},"revision":{"type":"string"},
        "latency_ms":{"type":["number","null"]}}});
    json_object *env = json_object_new_object();
    json_object *props = json_object_new_object();
    json_object *req = json_object_new_array();
    json_object *warn = json_object_new_object();
    json_object *witems = json_object_new_object();

    json_object_object_add(env, "type", json_object_new_string("object"));
    json_object_array_add(req, json_object_new_string("data"));
    json_object_array_add(req, json_object_new_string("metadata"));
    json_object_array_add(req, json_object_new_string("warnings"));
    json_object_object_add(env, "required", req);
    json_object_object_add(props, "data", json_object_get(data));
    json_object_object_add(props, "metadata", parse_builtin("envelope", "metadata", meta));
    json_object_object_add(witems, "type", json_object_new_string("string"));
    json_object_object_add(warn, "type", json_object_new_string("array"));
    json_object_object_add(warn, "items", witems);
    json_object_object_add(props, "warnings", warn);
    json_object_object_add(env, "properties", props);
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
