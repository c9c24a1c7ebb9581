/* tools_campaigns.c — klaviyo_get_campaign_performance: one row per campaign over a window.
 *
 * One campaign-values report per chunk of at most 365 days (a longer window is split and its
 * chunks are planned against the account's report budget before the first call); rows of the
 * same campaign and channel are merged across chunks, counts summed and rates rederived from
 * the sums. The report groups by id and channel, never by name, so campaign_name is the send
 * channel unless resolve_campaign_names asks for one GET /api/campaigns/{id} per distinct id
 * (concurrent, within the campaigns tier); a failed lookup keeps the channel.
 */
#include "json.h"
#include "tools.h"
#include "tools_common.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define CAMPAIGNS_PATH "/api/campaigns/"

/* The rows of every chunk merged by (campaign_id, send_channel). */
static kmcode
fetch_rows(kmctx *ctx, kmrange r, const char *filter, kmt_rows *rows, kmerr *err)
{
    kmrange *chunks = NULL;
    size_t   n = kmt_chunks(ctx, r, &chunks);
    kmcode   rc = KM_OK;

    if (n > 1) {
        rc = kmt_plan(ctx, "POST", KMT_CAMPAIGN_VALUES_PATH, (int)n, err);
        if (rc != KM_OK)
            goto out;
    }
    for (size_t c = 0; c < n; c++) {
        json_object *results = NULL;

        rc = kmt_values_report(ctx, "campaign", chunks[c], NULL, filter, &results, err);
        if (rc != KM_OK)
            goto out;
        for (size_t i = 0; i < json_object_array_length(results); i++) {
            json_object *row = json_object_array_get_idx(results, i);
            json_object *g = kmjson_get(row, "groupings");
            const char  *key[3] = { kmjson_str(g, "campaign_id"), kmjson_str(g, "send_channel"),
                                    NULL };

            if (!key[0])
                continue;
            kmt_rows_add(rows, key, kmjson_get(row, "statistics"));
        }
        json_object_put(results);
    }
out:
    free(chunks);
    return rc;
}

/* Distinct campaign ids of the rows, in order; names[i] for each row index. */
static kmcode
resolve_names(kmctx *ctx, const kmt_rows *rows, char **row_names, kmerr *err)
{
    const char **ids = km_xcalloc(rows->n ? rows->n : 1, sizeof(*ids));
    size_t      *of_row = km_xcalloc(rows->n ? rows->n : 1, sizeof(*of_row));
    char       **names;
    size_t       n = 0;
    kmcode       rc;

    for (size_t i = 0; i < rows->n; i++) {
        size_t j;

        for (j = 0; j < n; j++) {
            if (strcmp(ids[j], rows->v[i].key[0]) == 0)
                break;
        }
        if (j == n)
            ids[n++] = rows->v[i].key[0];
        of_row[i] = j;
    }
    names = km_xcalloc(n ? n : 1, sizeof(*names));
    rc = kmt_lookup_names(ctx, CAMPAIGNS_PATH, "campaign name", "the send channel", ids, n,
                          names, err);
    if (rc == KM_OK) {
        for (size_t i = 0; i < rows->n; i++) {
            if (names[of_row[i]])
                row_names[i] = km_xstrdup(names[of_row[i]]);
        }
    }
    for (size_t j = 0; j < n; j++)
        free(names[j]);
    free(names);
    free(ids);
    free(of_row);
    return rc;
}

kmcode
kmtool_campaign_performance(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char  *campaign = kmjson_str(args, "campaign");
    int          resolve = json_object_get_boolean(kmjson_get(args, "resolve_campaign_names"));
    kmt_rows     rows = { 0 };
    char        *filter = NULL;
    char       **names = NULL;
    json_object *list;
    kmrange      r;
    kmcode       rc;

    *data = NULL;
    rc = kmt_window(ctx, args, &r, err);
    if (rc != KM_OK)
        return rc;
    if (campaign) {
        if (!km_is_alnum_id(campaign, KMT_ID_MAX))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "campaign: must be a Klaviyo campaign "
                             "id (1 to %d letters and digits)", KMT_ID_MAX);
        filter = kmt_filter_equals("campaign_id", campaign);
    }
    rc = fetch_rows(ctx, r, filter, &rows, err);
    if (rc != KM_OK)
        goto out;
    names = km_xcalloc(rows.n ? rows.n : 1, sizeof(*names));
    if (resolve && rows.n > 0) {
        rc = resolve_names(ctx, &rows, names, err);
        if (rc != KM_OK)
            goto out;
    }

    list = json_object_new_array();
    for (size_t i = 0; i < rows.n; i++) {
        json_object *o = json_object_new_object();
        const char  *name = names[i] ? names[i] : rows.v[i].key[1];

        json_object_object_add(o, "campaign_id", json_object_new_string(rows.v[i].key[0]));
        json_object_object_add(o, "campaign_name", name ? json_object_new_string(name) : NULL);
        kmt_metrics_put(o, &rows.v[i].m);
        json_object_array_add(list, o);
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "campaigns", list);
    json_object_object_add(*data, "campaign_count", json_object_new_int((int)rows.n));
    kmctx_warn(ctx, "%s", KMT_TIME_BASIS_WARNING);
out:
    if (names) {
        for (size_t i = 0; i < rows.n; i++)
            free(names[i]);
        free(names);
    }
    kmt_rows_free(&rows);
    free(filter);
    return rc;
}
