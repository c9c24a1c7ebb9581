/* proto.c — the MCP protocol shared by the stdio shim and the HTTP endpoint (see proto.h). */
#include "proto.h"
#include "result.h"
#include "json.h"
#include "jsonrpc.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0"
#endif

/* newest first: an initialize asking for something else gets the first */
static const char *const handshake_versions[] = { "2025-11-25", "2025-06-18", "2025-03-26" };
static const char *const stateless_versions[] = { KMPROTO_STATELESS };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char instructions_text[] =
    "Read-only Klaviyo marketing reports: campaigns, flows (automations) and lists.\n"
    "Choosing a tool: klaviyo_get_campaign_performance for sent campaigns and their metrics; "
    "klaviyo_get_flows to find flows, klaviyo_get_flow_performance for their metrics and "
    "klaviyo_get_flow_structure for their steps; klaviyo_get_performance_over_time for trends "
    "(a daily, weekly or monthly series); klaviyo_compare_periods for this-period-versus-the-"
    "previous questions; klaviyo_get_list_health, klaviyo_get_list_growth, "
    "klaviyo_get_list_growth_by_list and klaviyo_get_list_breakdown for audiences and "
    "subscriptions.\n"
    "Accounts: when you do not know which Klaviyo account the user means, or whether several "
    "are configured, call klaviyo_list_accounts first. When several accounts exist, pass "
    "`account` (the canonical name it returns) on every call; it may be left out only when "
    "exactly one account is configured.\n"
    "Windows: give either `timeframe` (today, yesterday, last_7_days, last_30_days, "
    "last_90_days, last_365_days, this_month, last_month, year_to_date) or both `start_date` "
    "and `end_date` (YYYY-MM-DD, both days included) -- never both forms, never neither. Days "
    "are calendar days in the account's own timezone, and the window used is echoed in "
    "metadata.period. Ranges over a year are split and merged for you (a warning says so).\n"
    "Reading answers: rates are null when their denominator is 0; `warnings` explain caveats "
    "(e.g. Klaviyo's reports count a campaign by its send date). Before a large question, "
    "klaviyo_get_budget shows the report calls left today. "
    "Errors come back as tool results with a code: UNKNOWN_ACCOUNT lists available_accounts, "
    "RATE_LIMITED says when to retry, INVALID_ARGUMENT for a request that can never fit says "
    "what would.";

static int
listed(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, list[i]) == 0)
            return 1;
    return 0;
}

int
kmproto_is_handshake(const char *v)
{
    return v && listed(v, handshake_versions, NELEM(handshake_versions));
}

int
kmproto_is_stateless(const char *v)
{
    return v && listed(v, stateless_versions, NELEM(stateless_versions));
}

const char *
kmproto_choose(const char *want)
{
    for (size_t i = 0; i < NELEM(handshake_versions); i++)
        if (want && strcmp(want, handshake_versions[i]) == 0)
            return handshake_versions[i];
    return handshake_versions[0];
}

int
kmproto_known_method(const char *method)
{
    static const char *const known[] = { "initialize", "ping", "server/discover", "tools/list",
                                         "tools/call" };

    return method && listed(method, known, NELEM(known));
}

static json_object *
errorf(json_object *id, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static json_object *
errorf(json_object *id, int code, const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kmmcp_error(id, code, msg, NULL);
}

json_object *
kmproto_check_initialize(json_object *id, json_object *params, const char **want)
{
    json_object *pv = kmjson_get(params, "protocolVersion");
    json_object *caps = kmjson_get(params, "capabilities");

    *want = NULL;
    if (!pv || !json_object_is_type(pv, json_type_string))
        return errorf(id, KMMCP_INVALID_PARAMS,
                      "initialize needs params.protocolVersion (a string)");
    if (caps && !json_object_is_type(caps, json_type_object))
        return errorf(id, KMMCP_INVALID_PARAMS, "params.capabilities must be an object");
    *want = json_object_get_string(pv);
    return NULL;
}

/* --- server description ------------------------------------------------------------------ */

json_object *
kmproto_server_info(void)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string("klaviyo-mcp"));
    json_object_object_add(o, "title", json_object_new_string("Klaviyo reports"));
    json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
    return o;
}

static json_object *
capabilities(void)
{
    json_object *caps = json_object_new_object();
    json_object *tools = json_object_new_object();

    json_object_object_add(tools, "listChanged", json_object_new_boolean(0));
    json_object_object_add(caps, "tools", tools);
    return caps;
}

static json_object *
instructions(const kmerr *setup)
{
    char        *text;
    json_object *o;

    if (!setup || setup->code == KM_OK)
        return json_object_new_string(instructions_text);
    text = km_xasprintf("%s\n\nSETUP PROBLEM -- every tool call fails until it is fixed: "
                        "CONFIG_ERROR: %s\nTell the user this message: the fix is in the "
                        "klaviyo-mcp configuration (.env and accounts.toml, e.g. in "
                        "~/.config/klaviyo-mcp/), then restart the MCP server.",
                        instructions_text, setup->msg);
    o = json_object_new_string(text);
    free(text);
    return o;
}

static json_object *
all_versions(void)
{
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < NELEM(stateless_versions); i++)
        json_object_array_add(a, json_object_new_string(stateless_versions[i]));
    for (size_t i = 0; i < NELEM(handshake_versions); i++)
        json_object_array_add(a, json_object_new_string(handshake_versions[i]));
    return a;
}

/* The versions a request may name in _meta: the stateless ones, and the handshake revision
 * this client negotiated (NULL: none yet). */
static json_object *
meta_versions(const char *negotiated)
{
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < NELEM(stateless_versions); i++)
        json_object_array_add(a, json_object_new_string(stateless_versions[i]));
    if (negotiated && *negotiated)
        json_object_array_add(a, json_object_new_string(negotiated));
    return a;
}

json_object *
kmproto_initialize_result(const char *chosen, const kmerr *setup)
{
    json_object *r = json_object_new_object();

    json_object_object_add(r, "protocolVersion", json_object_new_string(chosen));
    json_object_object_add(r, "capabilities", capabilities());
    json_object_object_add(r, "serverInfo", kmproto_server_info());
    json_object_object_add(r, "instructions", instructions(setup));
    return r;
}

json_object *
kmproto_discover_result(const kmerr *setup)
{
    json_object *r = json_object_new_object();

    json_object_object_add(r, "supportedVersions", all_versions());
    json_object_object_add(r, "capabilities", capabilities());
    json_object_object_add(r, "serverInfo", kmproto_server_info());
    json_object_object_add(r, "instructions", instructions(setup));
    json_object_object_add(r, "ttlMs", json_object_new_int(KMPROTO_LIST_TTL_MS));
    json_object_object_add(r, "cacheScope", json_object_new_string("public"));
    return kmproto_finish(1, r);
}

json_object *
kmproto_finish(int stateless, json_object *result)
{
    if (stateless) {
        json_object *meta = json_object_new_object();

        json_object_object_add(result, "resultType", json_object_new_string("complete"));
        json_object_object_add(meta, KMPROTO_META_SERVER, kmproto_server_info());
        json_object_object_add(result, "_meta", meta);
    }
    return result;
}

json_object *
kmproto_gate(json_object *id, const char *method, json_object *params, const char *negotiated,
             int *stateless)
{
    json_object *meta = kmjson_get(params, "_meta");
    json_object *pv = kmjson_get(meta, KMPROTO_META_VERSION);
    int          initialized = negotiated && *negotiated;

    *stateless = 0;
    if (!kmproto_known_method(method))
        return errorf(id, KMMCP_METHOD_NOT_FOUND, "method not found: %.100s", method);
    if (pv) {
        const char *v = json_object_get_string(pv);

        if (!json_object_is_type(pv, json_type_string))
            return errorf(id, KMMCP_INVALID_PARAMS, "_meta[\"%s\"] must be a string",
                          KMPROTO_META_VERSION);
        if (kmproto_is_stateless(v)) {
            json_object *caps = kmjson_get(meta, KMPROTO_META_CAPS);

            if (!caps || !json_object_is_type(caps, json_type_object))
                return errorf(id, KMMCP_INVALID_PARAMS, "_meta[\"%s\"] (an object) is "
                              "required with protocol %s", KMPROTO_META_CAPS, v);
            *stateless = 1;
        } else if (!(initialized && strcmp(v, negotiated) == 0)) {
            json_object *data = json_object_new_object();

            /* only versions a request of this form can name: a client that retries with one
             * of them is served (a handshake revision needs initialize first) */
            json_object_object_add(data, "supported", meta_versions(negotiated));
            json_object_object_add(data, "requested", json_object_new_string(v));
            return kmmcp_error(id, KMMCP_UNSUPPORTED_VERSION, "Unsupported protocol version",
                               data);
        }
    } else if (!initialized && strcmp(method, "ping") != 0) {
        if (strcmp(method, "server/discover") == 0)
            return errorf(id, KMMCP_INVALID_PARAMS, "server/discover needs params._meta[\"%s\"] "
                          "and [\"%s\"]", KMPROTO_META_VERSION, KMPROTO_META_CAPS);
        return errorf(id, KMMCP_INVALID_REQUEST, "server not initialized: send initialize "
                      "first, or use protocol %s with params._meta[\"%s\"]", KMPROTO_STATELESS,
                      KMPROTO_META_VERSION);
    }
    if (strcmp(method, "server/discover") == 0 && !*stateless)
        return errorf(id, KMMCP_INVALID_PARAMS, "server/discover needs params._meta[\"%s\"] "
                      "and [\"%s\"]", KMPROTO_META_VERSION, KMPROTO_META_CAPS);
    return NULL;
}

/* --- tools ------------------------------------------------------------------------------ */

json_object *
kmproto_tools(json_object *raw)
{
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < json_object_array_length(raw); i++) {
        json_object *t = json_object_array_get_idx(raw, i);
        json_object *o, *ann, *in = kmjson_get(t, "inputSchema");
        json_object *out = kmjson_get(t, "outputSchema"), *a = kmjson_get(t, "annotations");
        const char  *name = kmjson_str(t, "name");

        if (!name || !in || !json_object_is_type(in, json_type_object)) {
            kmlogf(KMLOG_WARN, "tool_skipped", "tool listing entry %zu has no name or "
                   "inputSchema", i);
            continue;
        }
        o = json_object_new_object();
        json_object_object_add(o, "name", json_object_new_string(name));
        if (kmjson_str(t, "title"))
            json_object_object_add(o, "title", json_object_new_string(kmjson_str(t, "title")));
        if (kmjson_str(t, "description"))
            json_object_object_add(o, "description",
                                   json_object_new_string(kmjson_str(t, "description")));
        json_object_object_add(o, "inputSchema", kmjson_copy(in));
        if (out && json_object_is_type(out, json_type_object))
            json_object_object_add(o, "outputSchema", kmjson_copy(out));
        ann = a && json_object_is_type(a, json_type_object) ? kmjson_copy(a)
                                                           : json_object_new_object();
        json_object_object_add(ann, "readOnlyHint", json_object_new_boolean(1));
        json_object_object_add(ann, "openWorldHint", json_object_new_boolean(1));
        json_object_object_add(o, "annotations", ann);
        json_object_array_add(list, o);
    }
    return list;
}

/* When there is no service to list tools from (a configuration error, or klaviyo-restd
 * cannot start) the list holds one stand-in under the name the instructions tell a model to
 * call first; calling it returns the problem and its fix. */
json_object *
kmproto_standin_tools(const kmerr *why)
{
    json_object *list = json_object_new_array();
    json_object *t = json_object_new_object();
    json_object *in = json_object_new_object();
    json_object *ann = json_object_new_object();
    char        *desc = km_xasprintf("klaviyo-mcp cannot serve Klaviyo reports right now -- "
                                     "%s: %s. Call this tool to get the problem and its fix, "
                                     "and tell the user.", kmerr_name(why->code), why->msg);

    json_object_object_add(t, "name", json_object_new_string("klaviyo_list_accounts"));
    json_object_object_add(t, "title", json_object_new_string("Klaviyo: setup problem"));
    json_object_object_add(t, "description", json_object_new_string(desc));
    json_object_object_add(in, "type", json_object_new_string("object"));
    json_object_object_add(in, "properties", json_object_new_object());
    json_object_object_add(t, "inputSchema", in);
    json_object_object_add(ann, "readOnlyHint", json_object_new_boolean(1));
    json_object_object_add(ann, "openWorldHint", json_object_new_boolean(1));
    json_object_object_add(t, "annotations", ann);
    json_object_array_add(list, t);
    free(desc);
    return list;
}

json_object *
kmproto_list_result(int stateless, json_object *tools, int ttl_ms)
{
    json_object *r = json_object_new_object();

    json_object_object_add(r, "tools", tools);
    if (stateless) {
        json_object_object_add(r, "ttlMs", json_object_new_int(ttl_ms));
        json_object_object_add(r, "cacheScope", json_object_new_string("public"));
    }
    return kmproto_finish(stateless, r);
}

json_object *
kmproto_check_list(json_object *id, json_object *params)
{
    if (kmjson_get(params, "cursor"))
        return errorf(id, KMMCP_INVALID_PARAMS, "unknown cursor: the tool list has one page");
    return NULL;
}

json_object *
kmproto_check_call(json_object *id, json_object *params, struct kmproto_call *c)
{
    json_object *name = kmjson_get(params, "name");
    json_object *args = kmjson_get(params, "arguments");
    json_object *token = kmjson_path(params, "_meta", "progressToken", NULL);

    memset(c, 0, sizeof(*c));
    if (!name || !json_object_is_type(name, json_type_string))
        return errorf(id, KMMCP_INVALID_PARAMS, "tools/call needs params.name (a string)");
    if (args && !json_object_is_type(args, json_type_null) &&
        !json_object_is_type(args, json_type_object))
        return errorf(id, KMMCP_INVALID_PARAMS, "params.arguments must be an object");
    if (token && !json_object_is_type(token, json_type_string) &&
        !json_object_is_type(token, json_type_int))
        return errorf(id, KMMCP_INVALID_PARAMS,
                      "_meta.progressToken must be a string or an integer");
    c->name = json_object_get_string(name);
    c->args = args && json_object_is_type(args, json_type_object) ? args : NULL;
    c->token = token;
    return NULL;
}

json_object *
kmproto_unknown_tool(json_object *id, const char *name)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
    size_t            len = name ? strlen(name) : 0;
    int               printable = len > 0 && len <= 64 && strspn(name, ok) == len;

    return errorf(id, KMMCP_INVALID_PARAMS, "Unknown tool: %.64s (tools/list names them)",
                  printable ? name : "(not a tool name)");
}

/* The MCP result for an error envelope {"error":{code,message,...}}; takes ownership.
 *
 * The code, the message and any details go in the text block, and there is no
 * structuredContent: a tool's outputSchema describes its success envelope, MCP requires
 * structuredContent to conform to it, and the official SDK client (1.x) rejects the whole
 * result when an error envelope stands there, so the model would never see the error. */
static json_object *
error_envelope_result(json_object *envelope)
{
    json_object *e = kmjson_get(envelope, "error");
    json_object *r = json_object_new_object();
    const char  *code = kmjson_str(e, "code");
    const char  *message = kmjson_str(e, "message");
    json_object *details = kmjson_get(e, "details");
    json_object *retry = kmjson_get(e, "retry_after_s");
    char        *text = km_xasprintf("%s: %s", code ? code : "INTERNAL_ERROR",
                                     message ? message : "the call failed");

    if (retry) {
        char *t = km_xasprintf("%s\nretry_after_s: %s", text, json_object_to_json_string(retry));
        free(text);
        text = t;
    }
    if (details) {
        char *t = km_xasprintf("%s\ndetails: %s", text, json_object_to_json_string_ext(
                                   details, JSON_C_TO_STRING_PLAIN |
                                   JSON_C_TO_STRING_NOSLASHESCAPE));
        free(text);
        text = t;
    }
    json_object_object_add(r, "content", kmmcp_text_content(text));
    json_object_object_add(r, "isError", json_object_new_boolean(1));
    json_object_put(envelope);
    free(text);
    return r;
}

json_object *
kmproto_error_result(const kmerr *err)
{
    return error_envelope_result(kmerr_envelope(err));
}

json_object *
kmproto_tool_result(json_object *envelope, size_t cap)
{
    json_object *r;

    if (kmjson_get(envelope, "error"))
        return error_envelope_result(envelope);
    if (!kmjson_get(envelope, "data")) {
        kmerr e = { 0 };

        json_object_put(envelope);
        kmerr_set(&e, KM_UPSTREAM_ERROR, "klaviyo-restd answered without data or error");
        r = kmproto_error_result(&e);
        kmerr_clear(&e);
        return r;
    }
    /* the service's summary as the text block, the rest as structuredContent, under the cap
     * (result.h) */
    return kmmcp_result_success(envelope, cap);
}

json_object *
kmproto_call_answer(json_object *id, int stateless, json_object *envelope, size_t cap)
{
    const char  *code = kmjson_str(kmjson_get(envelope, "error"), "code");
    json_object *m;

    if (code && strcmp(code, kmerr_name(KM_UNKNOWN_TOOL)) == 0) {
        /* the service has no such tool: a protocol error, not a tool result */
        m = kmmcp_error(id, KMMCP_INVALID_PARAMS,
                        kmjson_str(kmjson_get(envelope, "error"), "message"), NULL);
        json_object_put(envelope);
        return m;
    }
    return kmmcp_result(id, kmproto_finish(stateless, kmproto_tool_result(envelope, cap)));
}

/* --- progress --------------------------------------------------------------------------- */

json_object *
kmproto_progress_note(kmproto_progress *p, long done, long total, int waiting)
{
    json_object *params;
    char         text[160];
    double       value;

    if (!p->token)
        return NULL;
    if (done > p->last_done) {
        p->last_done = done;
        p->beats = 0;
        value = (double)done;
    } else if (waiting) {
        /* the same calls are done: a value between them and the next, still increasing */
        p->beats++;
        value = (double)p->last_done + 1.0 - 1.0 / (double)(p->beats + 1);
    } else {
        return NULL;
    }
    if (value <= p->last_sent)
        return NULL;
    p->last_sent = value;
    if (total < p->last_done + (waiting ? 1 : 0))
        total = p->last_done + (waiting ? 1 : 0);
    if (total < 1)
        total = 1;
    params = json_object_new_object();
    json_object_object_add(params, "progressToken", json_object_get(p->token));
    json_object_object_add(params, "progress", waiting ? kmjson_double(value)
                                                       : json_object_new_int64(done));
    json_object_object_add(params, "total", json_object_new_int64(total));
    if (waiting)
        snprintf(text, sizeof(text), "waiting on Klaviyo (a rate-limit window or a slow "
                 "answer); %ld of %ld calls done", p->last_done, total);
    else
        snprintf(text, sizeof(text), "Klaviyo call %ld of %ld", done, total);
    json_object_object_add(params, "message", json_object_new_string(text));
    return kmmcp_notification("notifications/progress", params);
}
