/* tools_series.c — klaviyo_get_performance_over_time: a statistic bucketed over time.
 *
 * entity=flow uses Klaviyo's flow-series report and passes its arrays through verbatim. The
 * report caps a window by the interval (hourly 7 days, daily 60, weekly and monthly 52 weeks;
 * REFERENCE.md §5.2, §13), so a longer window is split into chunks that end on bucket
 * boundaries (a chunk after the first starts a whole number of weeks after the window start
 * for weekly, on the 1st for monthly),
 * no bucket is ever split, and the chunks' date_times and arrays are concatenated; a series
 * absent from a chunk is padded there (0.0 for counts, null for rates).
 *
 * entity=campaign, basis "send_date" (the default): Klaviyo's reports count a campaign by its
 * send date (REFERENCE.md §5.1), so one campaign-values report per 365 days of window gives
 * every campaign sent in it with all its numbers, and each campaign's send_time (GET
 * /api/campaigns/{id}/, cached, shared with resolve_campaign_names) puts it in its bucket:
 * exactly what one report per bucket gives, for one report call instead of one per bucket.
 * Buckets: kmdate_buckets (the first at the window start, then every day / 7 days / 1st), at
 * most 53, no hourly, counts only; date_times as the flow series writes them.
 * basis "activity": metric aggregates by message, bucketed by event time (tools_activity.h).
 *
 * The calls the cache would not answer are planned against the account's budget before the
 * first; a request that can never fit says what would.
 */
#include "json.h"
#include "tools.h"
#include "tools_activity.h"
#include "tools_common.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLOW_SERIES_PATH "/api/flow-series-reports/"
/* The seed's cap on stitched campaign buckets (one report call each). */
#define CAMPAIGN_MAX_BUCKETS 53

static const char *const default_statistics[] = {
    "recipients", "delivered", "opens_unique", "clicks_unique", "conversions", "conversion_value",
};

/* 1 for a statistic Klaviyo derives as a quotient (a rate or an average): such values cannot
 * be summed, and a bucket without data has none (null) rather than 0. */
static int
is_rate(const char *name)
{
    size_t n = strlen(name);

    return (n > 5 && strcmp(name + n - 5, "_rate") == 0) ||
           strcmp(name, "average_order_value") == 0 ||
           strcmp(name, "revenue_per_recipient") == 0;
}

/* The requested statistics (a new array of strings). */
static json_object *
statistics_of(json_object *args)
{
    json_object *s = kmjson_get(args, "statistics");
    json_object *out;

    if (json_object_is_type(s, json_type_array) && json_object_array_length(s) > 0)
        return json_object_get(s);
    out = json_object_new_array();
    for (size_t i = 0; i < sizeof(default_statistics) / sizeof(default_statistics[0]); i++)
        json_object_array_add(out, json_object_new_string(default_statistics[i]));
    return out;
}

static const char *
stat_at(json_object *stats, size_t i)
{
    return json_object_get_string(json_object_array_get_idx(stats, i));
}

/* 1 when a bucket of a series starting at `start` begins on `day` (kmdate_buckets). */
static int
is_bucket_start(kmday start, kmday day, kminterval iv)
{
    int y, m, d;

    switch (iv) {
    case KMI_WEEKLY:
        return (day - start) % 7 == 0;
    case KMI_MONTHLY:
        kmdate_to_ymd(day, &y, &m, &d);
        return d == 1;
    default:
        return 1;
    }
}

/* Chunks of r no longer than the interval's limit, each ending on a bucket boundary. Returns
 * the count; *out is a new array. */
static size_t
series_chunks(kmrange r, kminterval iv, kmrange **out)
{
    int     max = kmdate_interval_max_days(iv);
    size_t  n = 0, cap = 4;
    kmday   s = r.start;
    kmrange *v = km_xcalloc(cap, sizeof(*v));

    while (s <= r.end) {
        kmday e = s + max - 1;

        if (e >= r.end) {
            e = r.end;
        } else {
            /* the next chunk must start a bucket; within a limit there is always one */
            while (e > s && !is_bucket_start(r.start, e + 1, iv))
                e--;
        }
        if (n == cap) {
            cap *= 2;
            v = km_xrealloc(v, cap * sizeof(*v));
        }
        v[n].start = s;
        v[n].end = e;
        n++;
        s = e + 1;
    }
    *out = v;
    return n;
}

/* --- one concatenated series ------------------------------------------------------------- */

struct series {
    char         *key[3];     /* identifying groupings (compared as strings) */
    json_object  *groupings;  /* owned */
    json_object **arrs;       /* one owned array per requested statistic */
};

struct serieset {
    struct series *v;
    size_t         n, cap;
    size_t         nstats;
};

static void
pad(json_object *arr, const char *stat, size_t k)
{
    for (size_t i = 0; i < k; i++)
        json_object_array_add(arr, is_rate(stat) ? NULL : kmjson_double(0.0));
}

static int
same(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* The series of `key`, created (padded with `before` empty buckets) when new. */
static struct series *
series_of(struct serieset *ss, json_object *stats, const char *const key[3],
          json_object *groupings, size_t before)
{
    struct series *s;

    for (size_t i = 0; i < ss->n; i++) {
        s = &ss->v[i];
        if (same(s->key[0], key[0]) && same(s->key[1], key[1]) && same(s->key[2], key[2]))
            return s;
    }
    if (ss->n == ss->cap) {
        ss->cap = ss->cap ? ss->cap * 2 : 16;
        ss->v = km_xrealloc(ss->v, ss->cap * sizeof(*ss->v));
    }
    s = &ss->v[ss->n++];
    for (int k = 0; k < 3; k++)
        s->key[k] = key[k] ? km_xstrdup(key[k]) : NULL;
    s->groupings = groupings;
    s->arrs = km_xcalloc(ss->nstats ? ss->nstats : 1, sizeof(*s->arrs));
    for (size_t j = 0; j < ss->nstats; j++) {
        s->arrs[j] = json_object_new_array();
        pad(s->arrs[j], stat_at(stats, j), before);
    }
    return s;
}

static void
serieset_free(struct serieset *ss)
{
    for (size_t i = 0; i < ss->n; i++) {
        for (int k = 0; k < 3; k++)
            free(ss->v[i].key[k]);
        json_object_put(ss->v[i].groupings);
        for (size_t j = 0; j < ss->nstats; j++)
            json_object_put(ss->v[i].arrs[j]);
        free(ss->v[i].arrs);
    }
    free(ss->v);
    memset(ss, 0, sizeof(*ss));
}

/* The `data` object: entity, interval, date_times (taken), series (taken from ss). */
static json_object *
series_data(const char *entity, kminterval iv, json_object *date_times, struct serieset *ss,
            json_object *stats)
{
    json_object *data = json_object_new_object();
    json_object *list = json_object_new_array();

    for (size_t i = 0; i < ss->n; i++) {
        json_object *o = json_object_new_object();
        json_object *st = json_object_new_object();

        for (size_t j = 0; j < ss->nstats; j++) {
            json_object_object_add(st, stat_at(stats, j), ss->v[i].arrs[j]);
            ss->v[i].arrs[j] = NULL;
        }
        json_object_object_add(o, "groupings", ss->v[i].groupings);
        ss->v[i].groupings = NULL;
        json_object_object_add(o, "statistics", st);
        json_object_array_add(list, o);
    }
    json_object_object_add(data, "entity", json_object_new_string(entity));
    json_object_object_add(data, "interval", json_object_new_string(kmdate_interval_name(iv)));
    json_object_object_add(data, "date_times", date_times);
    json_object_object_add(data, "series", list);
    return data;
}

/* A refused plan with what would fit for this series: details.suggestion, and for a request
 * that can never fit (KM_INVALID_ARGUMENT) the suggestion in the message too. */
static kmcode
never_fits(kmctx *ctx, kmcode rc, kmerr *err, const char *what)
{
    char plan[sizeof(err->msg)];

    (void)ctx;
    if (!err || (rc != KM_INVALID_ARGUMENT && rc != KM_RATE_LIMITED))
        return rc;
    kmerr_detail(err, "suggestion", json_object_new_string(what));
    if (rc == KM_RATE_LIMITED)
        return rc;  /* its message already says when, and how many calls would fit */
    km_strlcpy(plan, err->msg, sizeof(plan));
    return kmerr_set(err, rc, "%s. %s", plan, what);
}

/* --- entity=flow: native series, chunked by the interval's limit ------------------------- */

/* The JSON:API body of one flow-series report (a new object). */
static json_object *
flow_series_body(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, const char *filter)
{
    json_object *body = json_object_new_object();
    json_object *data = json_object_new_object();
    json_object *attrs = json_object_new_object();

    json_object_object_add(attrs, "statistics", json_object_get(stats));
    json_object_object_add(attrs, "timeframe", kmt_timeframe(r));
    json_object_object_add(attrs, "interval", json_object_new_string(kmdate_interval_name(iv)));
    json_object_object_add(attrs, "conversion_metric_id",
                           json_object_new_string(ctx->acct->conversion_metric_id));
    if (filter)
        json_object_object_add(attrs, "filter", json_object_new_string(filter));
    json_object_object_add(data, "type", json_object_new_string("flow-series-report"));
    json_object_object_add(data, "attributes", attrs);
    json_object_object_add(body, "data", data);
    return body;
}

static kmcode
flow_series_report(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, const char *filter,
                   json_object **doc, kmerr *err)
{
    json_object *body = flow_series_body(ctx, r, iv, stats, filter);
    kmcode       rc = kmkl_post(ctx->kl, ctx->call, FLOW_SERIES_PATH, body, doc, err);

    json_object_put(body);
    return rc;
}

/* Append one chunk's answer: its date_times, and every series' arrays (padding the series
 * this chunk lacks, and any array whose length does not match). */
static kmcode
append_chunk(struct serieset *ss, json_object *stats, json_object *date_times,
             json_object *doc, kmerr *err)
{
    json_object *attrs = kmjson_path(doc, "data", "attributes", NULL);
    json_object *dts = kmjson_get(attrs, "date_times");
    json_object *results = kmjson_get(attrs, "results");
    size_t       before = json_object_array_length(date_times);
    size_t       len, known = ss->n;
    char        *seen;

    if (!json_object_is_type(dts, json_type_array) ||
        !json_object_is_type(results, json_type_array))
        return kmerr_set(err, KM_UPSTREAM_ERROR, "Klaviyo's flow series report had no "
                         "date_times or results");
    len = json_object_array_length(dts);
    for (size_t i = 0; i < len; i++)
        json_object_array_add(date_times, json_object_get(json_object_array_get_idx(dts, i)));

    seen = km_xcalloc(known + json_object_array_length(results) + 1, 1);
    for (size_t i = 0; i < json_object_array_length(results); i++) {
        json_object   *row = json_object_array_get_idx(results, i);
        json_object   *g = kmjson_get(row, "groupings");
        json_object   *st = kmjson_get(row, "statistics");
        const char    *key[3] = { kmjson_str(g, "flow_id"), kmjson_str(g, "flow_message_id"),
                                  kmjson_str(g, "send_channel") };
        struct series *s;
        size_t         idx;

        if (!json_object_is_type(g, json_type_object))
            continue;
        s = series_of(ss, stats, key, NULL, before);
        idx = (size_t)(s - ss->v);
        if (!s->groupings)
            s->groupings = kmjson_copy(g);
        if (idx < known) {
            if (seen[idx])
                continue;  /* a duplicate grouping in one answer: the first one counts */
            seen[idx] = 1;
        } else if (json_object_array_length(s->arrs[0]) > before) {
            continue;      /* a duplicate of a series new in this chunk */
        }
        for (size_t j = 0; j < ss->nstats; j++) {
            json_object *a = kmjson_get(st, stat_at(stats, j));

            if (json_object_is_type(a, json_type_array) && json_object_array_length(a) == len) {
                for (size_t k = 0; k < len; k++)
                    json_object_array_add(s->arrs[j],
                                          json_object_get(json_object_array_get_idx(a, k)));
            } else {
                pad(s->arrs[j], stat_at(stats, j), len);
            }
        }
    }
    for (size_t i = 0; i < known; i++) {
        if (seen[i])
            continue;
        for (size_t j = 0; j < ss->nstats; j++)
            pad(ss->v[i].arrs[j], stat_at(stats, j), len);
    }
    free(seen);
    return KM_OK;
}

static kmcode
flow_over_time(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, const char *filter,
               json_object **data, kmerr *err)
{
    struct serieset ss = { 0 };
    json_object    *date_times = json_object_new_array();
    kmrange        *chunks = NULL;
    size_t          n = series_chunks(r, iv, &chunks);
    kmcode          rc = KM_OK;

    ss.nstats = json_object_array_length(stats);
    if (n > 1) {
        size_t uncached = 0;
        char   hint[160];

        for (size_t c = 0; c < n; c++) {
            json_object *body = flow_series_body(ctx, chunks[c], iv, stats, filter);

            uncached += !kmkl_cached(ctx->kl, ctx->acct, "POST", FLOW_SERIES_PATH, body);
            json_object_put(body);
        }
        rc = kmt_plan(ctx, "POST", FLOW_SERIES_PATH, (int)uncached, err);
        if (rc != KM_OK) {
            int fit = (int)kmjson_num(err ? err->details : NULL, "calls_that_fit", 0);

            snprintf(hint, sizeof(hint), "Would fit: a window of at most %d days at this "
                     "interval (one report per %d days), or a coarser interval.",
                     fit * kmdate_interval_max_days(iv), kmdate_interval_max_days(iv));
            rc = never_fits(ctx, rc, err, hint);
            goto out;
        }
    }
    for (size_t c = 0; c < n; c++) {
        json_object *doc = NULL;

        rc = flow_series_report(ctx, chunks[c], iv, stats, filter, &doc, err);
        if (rc != KM_OK)
            goto out;
        rc = append_chunk(&ss, stats, date_times, doc, err);
        json_object_put(doc);
        if (rc != KM_OK)
            goto out;
    }
    if (n > 1)
        kmctx_warn(ctx, "The window spans %d days, more than Klaviyo's %d-day limit for a %s "
                   "series; it was fetched in %zu consecutive chunks that end on bucket "
                   "boundaries and the series were concatenated.", kmdate_range_days(r),
                   kmdate_interval_max_days(iv), kmdate_interval_name(iv), n);
    *data = series_data("flow", iv, date_times, &ss, stats);
    date_times = NULL;
out:
    json_object_put(date_times);
    serieset_free(&ss);
    free(chunks);
    return rc;
}

/* --- entity=campaign --------------------------------------------------------------------- */

/* The bucket's start as Klaviyo's flow series writes it: local midnight with the account's
 * UTC offset at that moment ("2025-03-03T00:00:00-05:00"), so a campaign trend and a flow
 * series over the same window and interval have the same date_times. */
static kmcode
bucket_time(const char *tz, kmday day, char out[32], kmerr *err)
{
    time_t t;
    char   d[11];
    long   off;
    kmcode rc = kmdate_local_to_utc(tz, day, 0, &t, err);

    if (rc != KM_OK)
        return rc;
    off = (long)((int64_t)day * 86400 - (int64_t)t);
    kmdate_format(day, d);
    snprintf(out, 32, "%sT00:00:00%c%02ld:%02ld", d, off < 0 ? '-' : '+',
             (off < 0 ? -off : off) / 3600 % 100, (off < 0 ? -off : off) / 60 % 60);
    return KM_OK;
}

/* Send-date basis: one campaign-values report per 365-day chunk of r gives every campaign
 * sent in r with all its numbers (reports count by send date); each campaign's send time
 * (GET /api/campaigns/{id}/, the M tier, cached and shared with resolve_campaign_names) places
 * it in its bucket. Equal to one report per bucket, for 1 report call instead of nb. */
static kmcode
campaign_by_send(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, const char *filter,
                 kmt_trend *t, kmerr *err)
{
    kmrange      *chunks = NULL;
    size_t        nch = kmt_chunks(ctx, r, &chunks), m = 0, lost = 0;
    kmt_trend sums = { 0 };
    char        **paths = NULL;
    json_object **outs = NULL;
    kmcode       *codes = NULL;
    size_t        uncached = 0;
    kmcode        rc = KM_OK;

    sums.nstats = t->nstats;
    sums.nb = 1;
    for (size_t c = 0; c < nch; c++)
        uncached += !kmt_values_cached(ctx, "campaign", chunks[c], stats, filter);
    rc = kmt_plan(ctx, "POST", KMT_CAMPAIGN_VALUES_PATH, (int)uncached, err);
    if (rc != KM_OK) {
        rc = never_fits(ctx, rc, err, "Would fit: a shorter window (one report call per 365 "
                        "days) or basis \"activity\" (no report budget).");
        goto out;
    }
    for (size_t c = 0; c < nch; c++) {
        json_object *results = NULL;

        rc = kmt_values_report(ctx, "campaign", chunks[c], stats, filter, &results, err);
        if (rc != KM_OK)
            goto out;
        for (size_t i = 0; i < json_object_array_length(results); i++) {
            json_object    *row = json_object_array_get_idx(results, i);
            json_object    *g = kmjson_get(row, "groupings");
            json_object    *st = kmjson_get(row, "statistics");
            const char     *id = kmjson_str(g, "campaign_id");
            struct kmt_cseries *cs;

            if (!id || !km_is_alnum_id(id, KMT_ID_MAX))
                continue;
            cs = kmt_trend_of(&sums, id, kmjson_str(g, "send_channel"));
            for (size_t j = 0; j < t->nstats; j++)
                cs->v[j] += kmjson_num(st, stat_at(stats, j), 0);
        }
        json_object_put(results);
    }

    /* the send time of each distinct campaign */
    paths = km_xcalloc(sums.n + 1, sizeof(*paths));
    for (size_t k = 0; k < sums.n; k++) {
        size_t j;

        for (j = 0; j < k; j++) {
            if (strcmp(sums.v[j].id, sums.v[k].id) == 0)
                break;
        }
        /* an id Klaviyo gave that is not one is not looked up: no send time for it */
        if (j == k && kmpath_id("/api/campaigns/", sums.v[k].id, KMT_ID_MAX, "/", &paths[m],
                                NULL) == KM_OK)
            m++;
    }
    if (m > 0) {
        rc = kmt_plan(ctx, "GET", paths[0],
                      (int)kmt_uncached_gets(ctx, (const char *const *)paths, m), err);
        if (rc != KM_OK) {
            rc = never_fits(ctx, rc, err, "Would fit: a shorter window or one campaign "
                            "(entity_id): each campaign's send time is one lookup.");
            goto out;
        }
        outs = km_xcalloc(m, sizeof(*outs));
        codes = km_xcalloc(m, sizeof(*codes));
        rc = kmkl_get_many(ctx->kl, ctx->call, (const char *const *)paths, m, outs, codes,
                           NULL, err);
        if (rc != KM_OK)
            goto out;
    }
    for (size_t k = 0; k < sums.n; k++) {
        const char     *send_time = NULL;
        int64_t         at;
        kmday           day;
        int             sod;
        long            b = -1;
        struct kmt_cseries *cs;
        kmerr           e = { 0 };

        for (size_t j = 0; j < m; j++) {
            const char *pid = paths[j] + strlen("/api/campaigns/");

            if (codes[j] == KM_OK && strncmp(pid, sums.v[k].id, strlen(sums.v[k].id)) == 0 &&
                pid[strlen(sums.v[k].id)] == '/') {
                send_time = kmjson_str(kmjson_path(outs[j], "data", "attributes", NULL),
                                       "send_time");
                break;
            }
        }
        if (send_time && kmt_parse_instant(send_time, &at) == 0 &&
            kmdate_utc_to_local(ctx->tz, (time_t)at, &day, &sod, &e) == KM_OK)
            b = kmdate_bucket_of(r, iv, day);
        kmerr_clear(&e);
        if (b < 0) {
            lost++;
            continue;
        }
        cs = kmt_trend_of(t, sums.v[k].id, sums.v[k].channel);
        for (size_t j = 0; j < t->nstats; j++)
            cs->v[j * t->nb + (size_t)b] += sums.v[k].v[j];
    }
    if (lost > 0)
        kmctx_warn(ctx, "%zu of %zu campaigns in the report could not be placed in a bucket "
                   "(their send time could not be read) and are left out of the trend.", lost,
                   sums.n);
out:
    for (size_t j = 0; j < m; j++) {
        free(paths[j]);
        if (outs)
            json_object_put(outs[j]);
    }
    free(paths);
    free(outs);
    free(codes);
    kmt_trend_free(&sums);
    free(chunks);
    return rc;
}

static kmcode
campaign_over_time(kmctx *ctx, kmrange r, kminterval iv, json_object *stats, int activity,
                   const char *entity_id, const char *filter, json_object **data, kmerr *err)
{
    kmt_trend    t = { 0 };
    kmday       *starts = NULL;
    json_object *date_times = NULL, *list;
    char        *bad = NULL, *unknown = NULL;
    kmcode       rc = KM_OK;

    if (iv == KMI_HOURLY)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "interval: hourly is not available for "
                         "entity=campaign (a campaign is one send: it lands in one bucket); use "
                         "daily, weekly or monthly");
    t.nstats = json_object_array_length(stats);
    for (size_t j = 0; j < t.nstats; j++) {
        char *b;

        if (!is_rate(stat_at(stats, j)))
            continue;
        b = bad ? km_xasprintf("%s, %s", bad, stat_at(stats, j)) : km_xstrdup(stat_at(stats, j));
        free(bad);
        bad = b;
    }
    if (bad) {
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "statistics: rate statistics (%.120s) are not "
                       "available for campaign trends, whose buckets are sums; request counts "
                       "(e.g. delivered, opens_unique) instead", bad);
        free(bad);
        return rc;
    }
    for (size_t j = 0; activity && j < t.nstats; j++) {
        char *u;

        if (kmt_activity_supports(stat_at(stats, j)))
            continue;
        u = unknown ? km_xasprintf("%s, %s", unknown, stat_at(stats, j))
                    : km_xstrdup(stat_at(stats, j));
        free(unknown);
        unknown = u;
    }
    if (unknown) {
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "statistics: %.120s cannot be counted by "
                       "activity (metric aggregates); the activity basis gives recipients, "
                       "delivered, bounced, opens, opens_unique, clicks, clicks_unique, "
                       "unsubscribes, conversions and conversion_value", unknown);
        free(unknown);
        return rc;
    }
    t.nb = kmdate_buckets(r, iv, NULL, 0);
    if (t.nb > CAMPAIGN_MAX_BUCKETS)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "interval: a %s campaign trend over this "
                         "window has %zu buckets, more than the %d allowed; use a coarser "
                         "interval%s or a shorter window",
                         kmdate_interval_name(iv), t.nb, CAMPAIGN_MAX_BUCKETS,
                         iv == KMI_DAILY ? " (weekly or monthly)" : " (monthly)");
    starts = km_xcalloc(t.nb ? t.nb : 1, sizeof(*starts));
    kmdate_buckets(r, iv, starts, t.nb);

    if (activity)
        rc = kmt_activity_trend(ctx, r, iv, stats, entity_id, &t, err);
    else
        rc = campaign_by_send(ctx, r, iv, stats, filter, &t, err);
    if (rc != KM_OK)
        goto out;

    date_times = json_object_new_array();
    for (size_t b = 0; b < t.nb; b++) {
        char buf[32];

        rc = bucket_time(ctx->tz, starts[b], buf, err);
        if (rc != KM_OK)
            goto out;
        json_object_array_add(date_times, json_object_new_string(buf));
    }
    list = json_object_new_array();
    for (size_t k = 0; k < t.n; k++) {
        json_object *o = json_object_new_object();
        json_object *g = json_object_new_object();
        json_object *st = json_object_new_object();

        json_object_object_add(g, "campaign_id", json_object_new_string(t.v[k].id));
        json_object_object_add(g, "send_channel",
                               t.v[k].channel ? json_object_new_string(t.v[k].channel) : NULL);
        for (size_t j = 0; j < t.nstats; j++) {
            json_object *a = json_object_new_array();

            for (size_t b = 0; b < t.nb; b++)
                json_object_array_add(a, kmjson_double(t.v[k].v[j * t.nb + b]));
            json_object_object_add(st, stat_at(stats, j), a);
        }
        json_object_object_add(o, "groupings", g);
        json_object_object_add(o, "statistics", st);
        json_object_array_add(list, o);
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "entity", json_object_new_string("campaign"));
    json_object_object_add(*data, "interval", json_object_new_string(kmdate_interval_name(iv)));
    json_object_object_add(*data, "basis",
                           json_object_new_string(activity ? "activity" : "send_date"));
    json_object_object_add(*data, "date_times", date_times);
    date_times = NULL;
    json_object_object_add(*data, "series", list);
    if (activity) {
        kmctx_warn(ctx, "basis activity: counted by when the events happened (Klaviyo's "
                   "metric aggregates, daily in the account's timezone, summed into %s "
                   "buckets), so a campaign spreads over the buckets its opens, clicks and "
                   "orders fall in. This will not match Klaviyo's campaign reports or UI, "
                   "which count by send date; unique counts are sums of daily uniques.",
                   kmdate_interval_name(iv));
    } else {
        kmctx_warn(ctx, "%s", KMT_TIME_BASIS_WARNING);
        kmctx_warn(ctx, "Campaign trends count each campaign by its send date, as Klaviyo's "
                   "UI does: its numbers over the whole window (one campaign-values report) "
                   "sit in the %s bucket of its send time, including opens and orders that "
                   "came later. For when the activity happened, ask with basis \"activity\".",
                   kmdate_interval_name(iv));
    }
out:
    json_object_put(date_times);
    kmt_trend_free(&t);
    free(starts);
    return rc;
}

kmcode
kmtool_over_time(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char  *entity = kmjson_str(args, "entity");
    const char  *interval = kmjson_str(args, "interval");
    const char  *entity_id = kmjson_str(args, "entity_id");
    const char  *basis = kmjson_str(args, "basis");
    int          campaign = entity && strcmp(entity, "campaign") == 0;
    int          activity = basis && strcmp(basis, "activity") == 0;
    json_object *stats = NULL;
    char        *filter = NULL;
    kminterval   iv = KMI_WEEKLY;
    kmrange      r;
    kmcode       rc;

    *data = NULL;
    if (!entity || (!campaign && strcmp(entity, "flow") != 0))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "entity: must be flow or campaign");
    if (interval && kmdate_interval_parse(interval, &iv) != 0)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "interval: must be hourly, daily, weekly "
                         "or monthly");
    if (basis && !activity && strcmp(basis, "send_date") != 0)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "basis: must be send_date or activity");
    if (basis && !campaign)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "basis: only for entity=campaign (a flow "
                         "series is Klaviyo's own)");
    rc = kmt_window(ctx, args, &r, err);
    if (rc != KM_OK)
        return rc;
    if (entity_id) {
        if (!km_is_alnum_id(entity_id, KMT_ID_MAX))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "entity_id: must be a Klaviyo id (1 to "
                             "%d letters and digits)", KMT_ID_MAX);
        filter = kmt_filter_equals(campaign ? "campaign_id" : "flow_id", entity_id);
    }
    stats = statistics_of(args);
    if (campaign)
        rc = campaign_over_time(ctx, r, iv, stats, activity, entity_id, filter, data, err);
    else
        rc = flow_over_time(ctx, r, iv, stats, filter, data, err);
    json_object_put(stats);
    free(filter);
    return rc;
}
