/* tools_activity.c — campaign trends by activity: metric aggregates per message, bucketed by
 * the service, mapped from campaign messages to campaigns. See tools_activity.h. */
#include "tools_activity.h"
#include "json.h"
#include "tools_common.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define METRICS_PATH    "/api/metrics/"
#define AGGREGATES_PATH "/api/metric-aggregates/"
#define CAMPAIGNS_PATH  "/api/campaigns/"
#define AGG_MAX_PAGES   20     /* 500 messages a page: far more than a year of campaigns */
#define CONVERSION      NULL   /* the account's conversion metric, by id */

enum { CH_EMAIL = 0, CH_SMS = 1, CH_ANY = 2 };
static const char *const channel_names[] = { "email", "sms" };

/* Where a statistic comes from: a measurement of a metric (summed when several rows name the
 * same statistic, e.g. recipients = received + bounced). */
static const struct source {
    const char *stat;
    const char *metric;        /* exact Klaviyo name; CONVERSION for the conversion metric */
    int         channel;
    const char *measurement;   /* count, unique or sum_value */
} sources[] = {
    { "recipients", "Received Email", CH_EMAIL, "count" },
    { "recipients", "Bounced Email", CH_EMAIL, "count" },
    { "recipients", "Received SMS", CH_SMS, "count" },
    { "recipients", "Failed to Deliver SMS", CH_SMS, "count" },
    { "delivered", "Received Email", CH_EMAIL, "count" },
    { "delivered", "Received SMS", CH_SMS, "count" },
    { "bounced", "Bounced Email", CH_EMAIL, "count" },
    { "bounced", "Failed to Deliver SMS", CH_SMS, "count" },
    { "opens", "Opened Email", CH_EMAIL, "count" },
    { "opens_unique", "Opened Email", CH_EMAIL, "unique" },
    { "clicks", "Clicked Email", CH_EMAIL, "count" },
    { "clicks", "Clicked SMS", CH_SMS, "count" },
    { "clicks_unique", "Clicked Email", CH_EMAIL, "unique" },
    { "clicks_unique", "Clicked SMS", CH_SMS, "unique" },
    { "unsubscribes", "Unsubscribed", CH_EMAIL, "count" },
    { "conversions", CONVERSION, CH_ANY, "count" },
    { "conversion_value", CONVERSION, CH_ANY, "sum_value" },
};
#define NSOURCES (sizeof(sources) / sizeof(sources[0]))

/* --- the trend table ---------------------------------------------------------------------- */

struct kmt_cseries *
kmt_trend_of(kmt_trend *t, const char *id, const char *channel)
{
    for (size_t k = 0; k < t->n; k++) {
        if (strcmp(t->v[k].id, id) == 0 &&
            ((!channel && !t->v[k].channel) ||
             (channel && t->v[k].channel && strcmp(channel, t->v[k].channel) == 0)))
            return &t->v[k];
    }
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->v = km_xrealloc(t->v, t->cap * sizeof(*t->v));
    }
    t->v[t->n].id = km_xstrdup(id);
    t->v[t->n].channel = channel ? km_xstrdup(channel) : NULL;
    t->v[t->n].v = km_xcalloc(t->nstats * t->nb + 1, sizeof(double));
    return &t->v[t->n++];
}

void
kmt_trend_free(kmt_trend *t)
{
    for (size_t k = 0; k < t->n; k++) {
        free(t->v[k].id);
        free(t->v[k].channel);
        free(t->v[k].v);
    }
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
}

int
kmt_activity_supports(const char *name)
{
    for (size_t i = 0; i < NSOURCES; i++) {
        if (strcmp(sources[i].stat, name) == 0)
            return 1;
    }
    return 0;
}

/* --- metrics -------------------------------------------------------------------------------- */

/* One metric to aggregate: which of its measurements are needed. */
struct want {
    const char *metric;     /* CONVERSION for the conversion metric */
    char       *id;         /* resolved id, or NULL when the account has none */
    int         klaviyo;    /* the resolved one is Klaviyo's own */
    int         count, unique, sum;
};

static size_t
wants_of(json_object *stats, struct want *w, size_t cap)
{
    size_t n = 0;

    for (size_t j = 0; j < json_object_array_length(stats); j++) {
        const char *stat = json_object_get_string(json_object_array_get_idx(stats, j));

        for (size_t i = 0; i < NSOURCES; i++) {
            const struct source *s = &sources[i];
            size_t               k;

            if (strcmp(s->stat, stat) != 0)
                continue;
            for (k = 0; k < n; k++) {
                if ((!w[k].metric && !s->metric) ||
                    (w[k].metric && s->metric && strcmp(w[k].metric, s->metric) == 0))
                    break;
            }
            if (k == n) {
                if (n == cap)
                    continue;
                memset(&w[n], 0, sizeof(w[n]));
                w[n++].metric = s->metric;
            }
            w[k].count |= strcmp(s->measurement, "count") == 0;
            w[k].unique |= strcmp(s->measurement, "unique") == 0;
            w[k].sum |= strcmp(s->measurement, "sum_value") == 0;
        }
    }
    return n;
}

/* Resolve every wanted metric's id: the conversion metric is the account's; the others by
 * exact name over GET /api/metrics, Klaviyo's own when names repeat. */
static kmcode
resolve(kmctx *ctx, struct want *w, size_t n, kmerr *err)
{
    json_object *all = NULL;
    kmcode       rc;

    for (size_t k = 0; k < n; k++) {
        if (!w[k].metric && km_is_alnum_id(ctx->acct->conversion_metric_id, KMT_ID_MAX))
            w[k].id = km_xstrdup(ctx->acct->conversion_metric_id);
    }
    rc = kmkl_get_all(ctx->kl, ctx->call, METRICS_PATH, &all, err);
    if (rc != KM_OK)
        return rc;
    for (size_t i = 0; i < json_object_array_length(all); i++)
        for (size_t k = 0; k < n; k++)
            kmt_metric_offer(w[k].metric, json_object_array_get_idx(all, i), &w[k].id,
                             &w[k].klaviyo);
    json_object_put(all);
    return KM_OK;
}

static json_object *
aggregate_body(kmctx *ctx, const struct want *w, kmrange chunk, const char *cursor)
{
    json_object *body = json_object_new_object(), *data = json_object_new_object();
    json_object *attrs = json_object_new_object(), *meas = json_object_new_array();
    json_object *by = json_object_new_array();

    json_object_object_add(attrs, "metric_id", json_object_new_string(w->id));
    if (w->count)
        json_object_array_add(meas, json_object_new_string("count"));
    if (w->unique)
        json_object_array_add(meas, json_object_new_string("unique"));
    if (w->sum)
        json_object_array_add(meas, json_object_new_string("sum_value"));
    json_object_object_add(attrs, "measurements", meas);
    json_object_object_add(attrs, "interval", json_object_new_string("day"));
    /* orders are attributed to the message that drove them; sends, opens... carry it */
    json_object_array_add(by, json_object_new_string(w->metric ? "$message"
                                                               : "$attributed_message"));
    json_object_object_add(attrs, "by", by);
    json_object_object_add(attrs, "page_size", json_object_new_int(500));
    if (cursor)
        json_object_object_add(attrs, "page_cursor", json_object_new_string(cursor));
    json_object_object_add(attrs, "timezone", json_object_new_string(ctx->tz));
    json_object_object_add(attrs, "filter", kmt_aggregate_filter(chunk));
    json_object_object_add(data, "type", json_object_new_string("metric-aggregate"));
    json_object_object_add(data, "attributes", attrs);
    json_object_object_add(body, "data", data);
    return body;
}

/* --- per message ---------------------------------------------------------------------------- */

struct msgrow {
    char   *id;
    double *v;             /* nstats x nb */
};

struct msgs {
    struct msgrow *v;
    size_t         n, cap;
};

static struct msgrow *
msg_of(struct msgs *m, const char *id, size_t cells)
{
    for (size_t i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].id, id) == 0)
            return &m->v[i];
    }
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 32;
        m->v = km_xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    m->v[m->n].id = km_xstrdup(id);
    m->v[m->n].v = km_xcalloc(cells + 1, sizeof(double));
    return &m->v[m->n++];
}

static void
msgs_free(struct msgs *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->v[i].id);
        free(m->v[i].v);
    }
    free(m->v);
}

/* Add one aggregates answer of metric w into the message rows: each date to its bucket
 * (dates are local bucket starts written in UTC), each measurement to the statistics it
 * feeds. */
static kmcode
add_answer(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, const struct want *w,
           json_object *doc, struct msgs *m, size_t nb, kmerr *err)
{
    json_object *attrs = kmjson_path(doc, "data", "attributes", NULL);
    json_object *dates = kmjson_get(attrs, "dates"), *rows = kmjson_get(attrs, "data");
    size_t       nd, nstats = json_object_array_length(stats);
    long        *bucket;

    if (!json_object_is_type(dates, json_type_array) ||
        !json_object_is_type(rows, json_type_array))
        return kmerr_set(err, KM_UPSTREAM_ERROR, "Klaviyo's metric-aggregates answer has no "
                         "dates or data");
    nd = json_object_array_length(dates);
    bucket = km_xcalloc(nd + 1, sizeof(*bucket));
    for (size_t k = 0; k < nd; k++) {
        int64_t at;
        kmday   day;
        int     sod;
        kmerr   e = { 0 };

        bucket[k] = -1;
        if (kmt_parse_instant(json_object_get_string(json_object_array_get_idx(dates, k)),
                              &at) == 0 &&
            kmdate_utc_to_local(ctx->tz, (time_t)at, &day, &sod, &e) == KM_OK)
            bucket[k] = kmdate_bucket_of(r, iv, day);
        kmerr_clear(&e);
    }
    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object   *row = json_object_array_get_idx(rows, i);
        json_object   *dim = json_object_array_get_idx(kmjson_get(row, "dimensions"), 0);
        json_object   *meas = kmjson_get(row, "measurements");
        const char    *mid = json_object_get_string(dim);
        struct msgrow *mr;

        if (!json_object_is_type(dim, json_type_string) || !mid[0] ||
            !km_is_alnum_id(mid, KMT_ID_MAX))
            continue;   /* events without a message: not a campaign's */
        mr = msg_of(m, mid, nstats * nb);
        for (size_t s = 0; s < NSOURCES; s++) {
            const struct source *src = &sources[s];
            json_object         *vals = kmjson_get(meas, src->measurement);

            if ((src->metric == NULL) != (w->metric == NULL) ||
                (src->metric && strcmp(src->metric, w->metric) != 0) ||
                !json_object_is_type(vals, json_type_array))
                continue;
            for (size_t j = 0; j < nstats; j++) {
                if (strcmp(json_object_get_string(json_object_array_get_idx(stats, j)),
                           src->stat) != 0)
                    continue;
                for (size_t k = 0; k < nd && k < json_object_array_length(vals); k++) {
                    if (bucket[k] >= 0)
                        mr->v[j * nb + (size_t)bucket[k]] +=
                            json_object_get_double(json_object_array_get_idx(vals, k));
                }
            }
        }
    }
    free(bucket);
    return KM_OK;
}

/* --- campaign messages to campaigns --------------------------------------------------------- */

/* Every campaign of `channel` (archived or not: Klaviyo lists archived ones only when asked)
 * with its message ids, into map (a JSON object message id -> [campaign id, channel]). */
static kmcode
map_channel(kmctx *ctx, int channel, int archived, json_object *map, kmerr *err)
{
    char        *filter = km_xasprintf("and(equals(messages.channel,'%s'),equals(archived,%s))",
                                       channel_names[channel], archived ? "true" : "false");
    char        *path;
    json_object *items = NULL;
    kmcode       rc;

    rc = kmpath_query(CAMPAIGNS_PATH, (const char *const[]){ "filter", filter, NULL }, &path,
                      err);
    free(filter);
    if (rc != KM_OK)
        return rc;
    rc = kmkl_get_all(ctx->kl, ctx->call, path, &items, err);
    free(path);
    if (rc != KM_OK)
        return rc;
    for (size_t i = 0; i < json_object_array_length(items); i++) {
        json_object *item = json_object_array_get_idx(items, i);
        json_object *msgs = kmjson_path(item, "relationships", "campaign-messages", "data",
                                        NULL);
        const char  *cid = kmjson_str(item, "id");

        if (!cid || !km_is_alnum_id(cid, KMT_ID_MAX))
            continue;
        for (size_t k = 0; k < json_object_array_length(msgs); k++) {
            const char  *mid = kmjson_str(json_object_array_get_idx(msgs, k), "id");
            json_object *to;

            if (!mid)
                continue;
            to = json_object_new_array();
            json_object_array_add(to, json_object_new_string(cid));
            json_object_array_add(to, json_object_new_string(channel_names[channel]));
            json_object_object_add(map, mid, to);
        }
    }
    json_object_put(items);
    return KM_OK;
}

kmcode
kmt_activity_trend(kmctx *ctx, kmrange r, kminterval iv, json_object *stats,
                   const char *only_campaign, kmt_trend *t, kmerr *err)
{
    struct want  w[NSOURCES];
    size_t       nw = wants_of(stats, w, NSOURCES), nch, uncached = 0, unmapped = 0;
    kmrange     *chunks = NULL;
    struct msgs  m = { 0 };
    json_object *map = NULL;
    char        *missing = NULL;
    kmcode       rc;

    nch = kmdate_split(r, KMDATE_CHUNK_DAYS, NULL, 0);
    chunks = km_xcalloc(nch ? nch : 1, sizeof(*chunks));
    kmdate_split(r, KMDATE_CHUNK_DAYS, chunks, nch);
    rc = resolve(ctx, w, nw, err);
    if (rc != KM_OK)
        goto out;
    for (size_t k = 0; k < nw; k++) {
        if (!w[k].id) {
            char *s = missing ? km_xasprintf("%s, %s", missing, w[k].metric)
                              : km_xstrdup(w[k].metric ? w[k].metric : "the conversion metric");
            free(missing);
            missing = s;
            continue;
        }
        for (size_t c = 0; c < nch; c++) {
            json_object *body = aggregate_body(ctx, &w[k], chunks[c], NULL);

            uncached += !kmkl_cached(ctx->kl, ctx->acct, "POST", AGGREGATES_PATH, body);
            json_object_put(body);
        }
    }
    rc = kmt_plan(ctx, "POST", AGGREGATES_PATH, (int)uncached, err);
    if (rc != KM_OK)
        goto out;
    for (size_t k = 0; k < nw; k++) {
        for (size_t c = 0; w[k].id && c < nch; c++) {
            char *cursor = NULL;
            int   pages = 0;

            do {
                json_object *body = aggregate_body(ctx, &w[k], chunks[c], cursor);
                json_object *doc = NULL;

                free(cursor);
                cursor = NULL;
                rc = kmkl_post(ctx->kl, ctx->call, AGGREGATES_PATH, body, &doc, err);
                json_object_put(body);
                if (rc == KM_OK)
                    rc = add_answer(ctx, r, iv, stats, &w[k], doc, &m, t->nb, err);
                if (rc == KM_OK)
                    cursor = kmpath_cursor(doc);
                json_object_put(doc);
                if (rc != KM_OK)
                    goto out;
            } while (cursor && ++pages < AGG_MAX_PAGES);
            if (cursor)
                kmctx_warn(ctx, "More than %d pages of messages for one metric; the rest was "
                           "left out.", AGG_MAX_PAGES);
            free(cursor);
        }
    }

    map = json_object_new_object();
    for (int ch = CH_EMAIL; ch <= CH_SMS && m.n > 0; ch++) {
        for (int archived = 0; archived <= 1; archived++) {
            rc = map_channel(ctx, ch, archived, map, err);
            if (rc != KM_OK)
                goto out;
        }
    }
    for (size_t i = 0; i < m.n; i++) {
        json_object        *to = kmjson_get(map, m.v[i].id);
        const char         *cid = json_object_get_string(json_object_array_get_idx(to, 0));
        const char         *chan = json_object_get_string(json_object_array_get_idx(to, 1));
        struct kmt_cseries *cs;

        if (!to) {
            unmapped++;   /* a flow message's */
            continue;
        }
        if (only_campaign && strcmp(only_campaign, cid) != 0)
            continue;
        cs = kmt_trend_of(t, cid, chan);
        for (size_t x = 0; x < t->nstats * t->nb; x++)
            cs->v[x] += m.v[i].v[x];
    }
    if (missing)
        kmctx_warn(ctx, "Klaviyo metric%s not found on this account: %.200s; the statistics "
                   "that need %s are 0.", strchr(missing, ',') ? "s" : "", missing,
                   strchr(missing, ',') ? "them" : "it");
    if (unmapped > 0 && !only_campaign)
        kmctx_warn(ctx, "%zu messages with activity in the window are not campaign messages "
                   "(flow messages) and are left out.", unmapped);
out:
    for (size_t k = 0; k < nw; k++)
        free(w[k].id);
    json_object_put(map);
    msgs_free(&m);
    free(missing);
    free(chunks);
    return rc;
}
