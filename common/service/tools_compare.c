/* tools_compare.c — klaviyo_compare_periods: campaign or flow totals for a current window
 * against a prior one, with absolute and relative change per metric.
 *
 * Campaigns are one-shot, so the comparison is on period totals: every values-report row of a
 * period (chunked like the performance tools) is summed and the rates are rederived from the
 * sums. The prior window is the explicit prior_start_date+prior_end_date pair, or the
 * equal-length window that ends the day before the current one starts. All report calls of
 * both periods that the cache would not answer are planned against the account's report
 * budget before the first.
 *
 * current_entity_count / prior_entity_count are the seed's: report rows (campaign or flow
 * message x channel). current_campaign_count / current_flow_count (and prior_) count distinct
 * campaigns or flows.
 */
#include "json.h"
#include "tools.h"
#include "tools_common.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* One period: the summed counts, how many report rows it had (the seed's entity count: one
 * per campaign or flow message and channel) and how many distinct campaigns or flows. */
struct period {
    kmrange   r;
    kmrange  *chunks;
    size_t    nchunks;
    kmmetrics total;
    size_t    rows;
    size_t    distinct;
};

static json_object *
period_json(kmrange r)
{
    json_object *p = json_object_new_object();
    char         buf[11];

    kmdate_format(r.start, buf);
    json_object_object_add(p, "start_date", json_object_new_string(buf));
    kmdate_format(r.end, buf);
    json_object_object_add(p, "end_date", json_object_new_string(buf));
    return p;
}

/* The prior window from the arguments, or the equal-length window before `cur`. */
static kmcode
prior_window(json_object *args, kmrange cur, kmrange *out, kmerr *err)
{
    const char *ps = kmjson_str(args, "prior_start_date");
    const char *pe = kmjson_str(args, "prior_end_date");
    kmrange     r;

    if (!ps && !pe) {
        int days = kmdate_range_days(cur);

        out->end = cur.start - 1;
        out->start = cur.start - days;
        return KM_OK;
    }
    if (!ps || !pe)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s is required with %s: explicit prior "
                         "dates come as a pair (or omit both for the window just before)",
                         ps ? "prior_end_date" : "prior_start_date",
                         ps ? "prior_start_date" : "prior_end_date");
    if (kmdate_parse(ps, &r.start) != 0)
        return kmdate_refuse("prior_start_date", ps, err);
    if (kmdate_parse(pe, &r.end) != 0)
        return kmdate_refuse("prior_end_date", pe, err);
    if (r.end < r.start)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "prior_end_date %s is before "
                         "prior_start_date %s", pe, ps);
    if (kmdate_range_days(r) > KMDATE_MAX_RANGE_DAYS)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "the prior window %s..%s spans %d days; the "
                         "limit is %d days (about 5 years)", ps, pe, kmdate_range_days(r),
                         KMDATE_MAX_RANGE_DAYS);
    *out = r;
    return KM_OK;
}

/* Sum every row of every chunk of the period (planned by the caller); count its rows (merged
 * across chunks by id, message and channel) and its distinct entity ids. */
static kmcode
fetch_period(kmctx *ctx, const char *entity, const char *filter, struct period *p, kmerr *err)
{
    int               flow = strcmp(entity, "flow") == 0;
    const char *const key[3] = { flow ? "flow_id" : "campaign_id",
                                 flow ? "flow_message_id" : "campaign_message_id",
                                 "send_channel" };
    kmt_rows          rows = { 0 };
    kmcode            rc;

    rc = kmt_fetch_chunks(ctx, entity, p->chunks, p->nchunks, filter, key, &rows, err);
    if (rc != KM_OK)
        goto out;
    for (size_t i = 0; i < rows.n; i++) {
        size_t j;

        kmt_metrics_sum(&p->total, &rows.v[i].m);
        for (j = 0; j < i; j++) {
            if (strcmp(rows.v[j].key[0], rows.v[i].key[0]) == 0)
                break;
        }
        if (j == i)
            p->distinct++;
    }
    p->rows = rows.n;
out:
    kmt_rows_free(&rows);
    return rc;
}

kmcode
kmtool_compare_periods(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char   *entity = kmjson_str(args, "entity");
    const char   *entity_id = kmjson_str(args, "entity_id");
    struct period cur = { 0 }, pri = { 0 };
    json_object  *ct, *pt, *deltas;
    char         *filter = NULL;
    int           flow;
    kmcode        rc;

    *data = NULL;
    if (!entity || (strcmp(entity, "campaign") != 0 && strcmp(entity, "flow") != 0))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "entity: must be campaign or flow");
    rc = kmt_window(ctx, args, &cur.r, err);
    if (rc != KM_OK)
        return rc;
    rc = prior_window(args, cur.r, &pri.r, err);
    if (rc != KM_OK)
        return rc;
    if (entity_id) {
        if (!km_is_alnum_id(entity_id, KMT_ID_MAX))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "entity_id: must be a Klaviyo id (1 to "
                             "%d letters and digits)", KMT_ID_MAX);
        filter = kmt_filter_equals(strcmp(entity, "flow") == 0 ? "flow_id" : "campaign_id",
                                   entity_id);
    }
    cur.nchunks = kmt_chunks(ctx, cur.r, &cur.chunks);
    pri.nchunks = kmt_chunks(ctx, pri.r, &pri.chunks);
    rc = kmt_plan(ctx, "POST", strcmp(entity, "flow") == 0 ? KMT_FLOW_VALUES_PATH
                                                           : KMT_CAMPAIGN_VALUES_PATH,
                  (int)(kmt_uncached_values(ctx, entity, cur.chunks, cur.nchunks, filter) +
                        kmt_uncached_values(ctx, entity, pri.chunks, pri.nchunks, filter)),
                  err);
    if (rc != KM_OK)
        goto out;
    rc = fetch_period(ctx, entity, filter, &cur, err);
    if (rc != KM_OK)
        goto out;
    rc = fetch_period(ctx, entity, filter, &pri, err);
    if (rc != KM_OK)
        goto out;

    ct = json_object_new_object();
    kmt_metrics_put(ct, &cur.total);
    pt = json_object_new_object();
    kmt_metrics_put(pt, &pri.total);
    *data = json_object_new_object();
    json_object_object_add(*data, "entity", json_object_new_string(entity));
    json_object_object_add(*data, "current_period", period_json(cur.r));
    json_object_object_add(*data, "prior_period", period_json(pri.r));
    deltas = kmt_deltas(ct, pt);
    json_object_object_add(*data, "current_totals", ct);
    json_object_object_add(*data, "prior_totals", pt);
    json_object_object_add(*data, "deltas", deltas);
    json_object_object_add(*data, "current_entity_count", json_object_new_int((int)cur.rows));
    json_object_object_add(*data, "prior_entity_count", json_object_new_int((int)pri.rows));
    flow = strcmp(entity, "flow") == 0;
    json_object_object_add(*data, flow ? "current_flow_count" : "current_campaign_count",
                           json_object_new_int((int)cur.distinct));
    json_object_object_add(*data, flow ? "prior_flow_count" : "prior_campaign_count",
                           json_object_new_int((int)pri.distinct));
    kmctx_warn(ctx, "%s", KMT_TIME_BASIS_WARNING);
out:
    free(cur.chunks);
    free(pri.chunks);
    free(filter);
    return rc;
}
