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

/* The grouping key of a campaign row: (campaign_id, send_channel). */
static const char *const campaign_key[3] = { "campaign_id", "send_channel", NULL };

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
    rc = kmt_fetch_values(ctx, "campaign", r, filter, campaign_key, &rows, err);
    if (rc != KM_OK)
        goto out;
    names = km_xcalloc(rows.n ? rows.n : 1, sizeof(*names));
    if (resolve && rows.n > 0) {
        rc = kmt_lookup_row_names(ctx, &rows, 0, CAMPAIGNS_PATH, "campaign name",
                                  "the send channel", names, err);
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
