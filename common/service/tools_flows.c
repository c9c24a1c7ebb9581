/* tools_flows.c — the flow tools: the catalogue (klaviyo_get_flows), performance per
 * (flow, message, channel) or rolled up per flow (klaviyo_get_flow_performance), and one
 * flow's ordered steps (klaviyo_get_flow_structure).
 *
 * Performance is one flow-values report per chunk of at most 365 days (more than one chunk is
 * planned against the report budget before the first call), merged by grouping with counts
 * summed and rates rederived. Enrichment — message names, the message of each send step — is
 * fetched concurrently within the flows tier, and a lookup that fails leaves its fields null
 * without failing the answer.
 */
#include "json.h"
#include "tools.h"
#include "tools_common.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define FLOWS_PATH "/api/flows/"
#define FLOW_MESSAGES_PATH "/api/flow-messages/"

/* --- klaviyo_get_flows ------------------------------------------------------------------- */

/* The catalogue's filter from the status / archived arguments, or NULL for none. */
static char *
flows_filter(json_object *args)
{
    const char  *status = kmjson_str(args, "status");
    json_object *archived = kmjson_get(args, "archived");
    char        *st = NULL, *ar = NULL, *f;

    if (status)
        st = km_xasprintf("equals(status,'%s')", status);
    if (archived)
        ar = km_xasprintf("equals(archived,%s)",
                          json_object_get_boolean(archived) ? "true" : "false");
    if (st && ar)
        f = km_xasprintf("and(%s,%s)", st, ar);
    else
        f = st ? km_xstrdup(st) : ar ? km_xstrdup(ar) : NULL;
    free(st);
    free(ar);
    return f;
}

/* A copy of attribute `key` when it has JSON type `type`; JSON null otherwise. */
static json_object *
attr_typed(json_object *attrs, const char *key, json_type type)
{
    json_object *v = kmjson_get(attrs, key);

    return json_object_is_type(v, type) ? json_object_get(v) : NULL;
}

kmcode
kmtool_get_flows(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    char        *filter = flows_filter(args);
    char        *path;
    json_object *items = NULL, *list;
    kmcode       rc;

    *data = NULL;
    /* the status value is schema-checked (an enum); the whole filter is encoded anyway */
    rc = kmpath_query(FLOWS_PATH, (const char *const[]){ "filter", filter, "page[size]", "50",
                                                         NULL }, &path, err);
    free(filter);
    if (rc != KM_OK)
        return rc;
    rc = kmkl_get_all(ctx->kl, ctx->call, path, &items, err);
    free(path);
    if (rc != KM_OK)
        return rc;

    list = json_object_new_array();
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *it = json_object_array_get_idx(items, i);
        json_object *attrs = kmjson_get(it, "attributes");
        const char  *id = kmjson_str(it, "id");
        json_object *o;

        if (!id)
            continue;
        o = json_object_new_object();
        json_object_object_add(o, "flow_id", json_object_new_string(id));
        json_object_object_add(o, "name", attr_typed(attrs, "name", json_type_string));
        json_object_object_add(o, "status", attr_typed(attrs, "status", json_type_string));
        json_object_object_add(o, "trigger_type",
                               attr_typed(attrs, "trigger_type", json_type_string));
        json_object_object_add(o, "archived", attr_typed(attrs, "archived", json_type_boolean));
        json_object_object_add(o, "created", attr_typed(attrs, "created", json_type_string));
        json_object_object_add(o, "updated", attr_typed(attrs, "updated", json_type_string));
        json_object_array_add(list, o);
    }
    json_object_put(items);
    *data = json_object_new_object();
    json_object_object_add(*data, "flow_count",
                           json_object_new_int((int)json_object_array_length(list)));
    json_object_object_add(*data, "flows", list);
    return KM_OK;
}

/* --- klaviyo_get_flow_performance -------------------------------------------------------- */

/* The grouping key of a flow row: (flow_id, flow_message_id, send_channel). */
static const char *const flow_key[3] = { "flow_id", "flow_message_id", "send_channel" };

static json_object *
str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* A name, or null for a missing or empty one (an unnamed message, as the seed gives it). */
static json_object *
name_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

kmcode
kmtool_flow_performance(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char  *flow = kmjson_str(args, "flow");
    int          resolve = json_object_get_boolean(kmjson_get(args, "resolve_message_names"));
    int          rollup = json_object_get_boolean(kmjson_get(args, "rollup"));
    kmt_rows     rows = { 0 }, flows = { 0 };
    kmt_rows    *out_rows = &rows;
    char        *filter = NULL;
    char       **names = NULL;
    json_object *list;
    kmrange      r;
    kmcode       rc;

    *data = NULL;
    rc = kmt_window(ctx, args, &r, err);
    if (rc != KM_OK)
        return rc;
    if (flow) {
        if (!km_is_alnum_id(flow, KMT_ID_MAX))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "flow: must be a Klaviyo flow id (1 to "
                             "%d letters and digits)", KMT_ID_MAX);
        filter = kmt_filter_equals("flow_id", flow);
    }
    rc = kmt_fetch_values(ctx, "flow", r, filter, flow_key, &rows, err);
    if (rc != KM_OK)
        goto out;

    if (rollup) {
        /* one row per flow; message identity is dropped, so names are moot (skipped) */
        for (size_t i = 0; i < rows.n; i++) {
            const char *key[3] = { rows.v[i].key[0], NULL, NULL };

            kmt_rows_merge(&flows, key, &rows.v[i].m);
        }
        out_rows = &flows;
    }
    names = km_xcalloc(out_rows->n ? out_rows->n : 1, sizeof(*names));
    if (resolve && !rollup && rows.n > 0) {
        rc = kmt_lookup_row_names(ctx, &rows, 1, FLOW_MESSAGES_PATH, "flow message name",
                                  "a null name", names, err);
        if (rc != KM_OK)
            goto out;
    }

    list = json_object_new_array();
    for (size_t i = 0; i < out_rows->n; i++) {
        const kmt_row *row = &out_rows->v[i];
        json_object   *o = json_object_new_object();

        json_object_object_add(o, "flow_id", json_object_new_string(row->key[0]));
        json_object_object_add(o, "flow_message_id", str_or_null(row->key[1]));
        json_object_object_add(o, "flow_message_name", str_or_null(names[i]));
        json_object_object_add(o, "send_channel", str_or_null(row->key[2]));
        kmt_metrics_put(o, &row->m);
        json_object_array_add(list, o);
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "flows", list);
    json_object_object_add(*data, "flow_count", json_object_new_int((int)out_rows->n));
    kmctx_warn(ctx, "%s", KMT_TIME_BASIS_WARNING);
out:
    if (names) {
        for (size_t i = 0; i < out_rows->n; i++)
            free(names[i]);
        free(names);
    }
    kmt_rows_free(&rows);
    kmt_rows_free(&flows);
    free(filter);
    return rc;
}

/* --- klaviyo_get_flow_structure ---------------------------------------------------------- */

struct step {
    const char  *action_id;    /* borrowed from the actions array; NULL when unusable */
    const char  *action_type;  /* borrowed, or "UNKNOWN" */
    json_object *message;      /* borrowed first flow-message of a send step, or NULL */
};

static int
is_send(const char *type)
{
    return strcmp(type, "SEND_EMAIL") == 0 || strcmp(type, "SEND_SMS") == 0;
}

/* The first message of every send step, concurrently; docs[i] receives step i's answer (or
 * NULL). A failed lookup leaves it NULL; a plan that says no skips them with a warning. */
static kmcode
fetch_step_messages(kmctx *ctx, struct step *steps, size_t n, json_object **docs, kmerr *err)
{
    char        **paths = km_xcalloc(n ? n : 1, sizeof(*paths));
    size_t       *slot = km_xcalloc(n ? n : 1, sizeof(*slot));
    json_object **outs = NULL;
    kmcode       *codes = NULL;
    size_t        m = 0, failed = 0;
    kmerr         perr = { 0 };
    kmcode        rc = KM_OK;

    for (size_t i = 0; i < n; i++) {
        if (!is_send(steps[i].action_type))
            continue;
        if (kmpath_id("/api/flow-actions/", steps[i].action_id, KMT_ID_MAX, "/flow-messages/",
                      &paths[m], NULL) != KM_OK) {
            failed++;
            continue;
        }
        slot[m++] = i;
    }
    if (m == 0)
        goto out;
    if (m > 1 && kmt_plan(ctx, "GET", paths[0],
                          (int)kmt_uncached_gets(ctx, (const char *const *)paths, m),
                          &perr) != KM_OK) {
        kmctx_warn(ctx, "The messages of %zu send steps were not looked up (their message "
                   "fields are null): %s", m, perr.msg);
        goto out;
    }
    outs = km_xcalloc(m, sizeof(*outs));
    codes = km_xcalloc(m, sizeof(*codes));
    rc = kmkl_get_many(ctx->kl, ctx->call, (const char *const *)paths, m, outs, codes, NULL,
                       err);
    if (rc != KM_OK)
        goto out;
    for (size_t j = 0; j < m; j++) {
        if (codes[j] == KM_OK) {
            docs[slot[j]] = outs[j];
            outs[j] = NULL;
        } else {
            failed++;
        }
    }
out:
    if (rc == KM_OK && failed > 0)
        kmctx_warn(ctx, "%zu send-step message lookups failed; those steps have null message "
                   "fields.", failed);
    for (size_t j = 0; j < m; j++) {
        free(paths[j]);
        if (outs)
            json_object_put(outs[j]);
    }
    free(paths);
    free(slot);
    free(outs);
    free(codes);
    kmerr_clear(&perr);
    return rc;
}

kmcode
kmtool_flow_structure(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char   *flow_id = kmjson_str(args, "flow_id");
    json_object  *actions = NULL, *list = NULL, *summary = NULL;
    json_object **docs = NULL;
    struct step  *steps = NULL;
    char         *path;
    size_t        n;
    kmcode        rc;

    *data = NULL;
    if (!flow_id || !km_is_alnum_id(flow_id, KMT_ID_MAX))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "flow_id: must be a Klaviyo flow id (1 to "
                         "%d letters and digits)", KMT_ID_MAX);
    rc = kmpath_id(FLOWS_PATH, flow_id, KMT_ID_MAX, "/flow-actions/", &path, err);
    if (rc != KM_OK)
        return rc;
    rc = kmkl_get_all(ctx->kl, ctx->call, path, &actions, err);
    free(path);
    if (rc == KM_NOT_FOUND)
        return kmerr_set(err, KM_NOT_FOUND, "flow '%s' was not found in account '%s' (see "
                         "klaviyo_get_flows)", flow_id, ctx->acct->name);
    if (rc != KM_OK)
        return rc;

    n = json_object_array_length(actions);
    steps = km_xcalloc(n ? n : 1, sizeof(*steps));
    docs = km_xcalloc(n ? n : 1, sizeof(*docs));
    for (size_t i = 0; i < n; i++) {
        json_object *a = json_object_array_get_idx(actions, i);
        const char  *type = kmjson_str(kmjson_get(a, "attributes"), "action_type");

        steps[i].action_id = kmjson_str(a, "id");
        steps[i].action_type = type && *type ? type : "UNKNOWN";
    }
    rc = fetch_step_messages(ctx, steps, n, docs, err);
    if (rc != KM_OK)
        goto out;

    list = json_object_new_array();
    summary = json_object_new_object();
    for (size_t i = 0; i < n; i++) {
        json_object *o, *msgs, *msg, *mattrs, *cnt;
        const char  *mid;

        if (!steps[i].action_id)
            continue;  /* not an action Klaviyo could name; nothing to show for it */
        o = json_object_new_object();
        msgs = kmjson_get(docs[i], "data");
        msg = json_object_is_type(msgs, json_type_array) ? json_object_array_get_idx(msgs, 0)
                                                           : NULL;
        mattrs = kmjson_get(msg, "attributes");
        mid = kmjson_str(msg, "id");
        cnt = kmjson_get(summary, steps[i].action_type);

        json_object_object_add(o, "action_id", json_object_new_string(steps[i].action_id));
        json_object_object_add(o, "action_type", json_object_new_string(steps[i].action_type));
        json_object_object_add(o, "message_id", str_or_null(mid));
        json_object_object_add(o, "message_name", mid ? name_or_null(kmjson_str(mattrs, "name"))
                                                      : NULL);
        json_object_object_add(o, "channel", mid ? str_or_null(kmjson_str(mattrs, "channel"))
                                                 : NULL);
        json_object_array_add(list, o);
        if (cnt)
            json_object_set_int(cnt, json_object_get_int(cnt) + 1);
        else
            json_object_object_add(summary, steps[i].action_type, json_object_new_int(1));
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "flow_id", json_object_new_string(flow_id));
    json_object_object_add(*data, "action_count",
                           json_object_new_int((int)json_object_array_length(list)));
    json_object_object_add(*data, "steps", list);
    json_object_object_add(*data, "summary", summary);
out:
    for (size_t i = 0; i < n; i++)
        json_object_put(docs[i]);
    free(docs);
    free(steps);
    json_object_put(actions);
    return rc;
}
