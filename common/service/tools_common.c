/* tools_common.c — windows, the metric block, rates and deltas. */
#include "tools_common.h"
#include "json.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

kmcode
kmt_window(kmctx *ctx, json_object *args, kmrange *out, kmerr *err)
{
    kmcode rc = kmdate_window(kmjson_str(args, "timeframe"), kmjson_str(args, "start_date"),
                              kmjson_str(args, "end_date"), ctx->today, out, err);

    if (rc != KM_OK)
        return rc;
    ctx->period = *out;
    ctx->has_period = 1;
    if (out->start > ctx->today && ctx->call && ctx->call->warnings) {
        char s[11], e[11], t[11], msg[200];
        kmdate_format(out->start, s);
        kmdate_format(out->end, e);
        kmdate_format(ctx->today, t);
        snprintf(msg, sizeof(msg), "the window %s..%s lies wholly in the future (today is %s "
                 "in the account's timezone): Klaviyo has no data for it yet", s, e, t);
        json_object_array_add(ctx->call->warnings, json_object_new_string(msg));
    }
    return KM_OK;
}

json_object *
kmt_timeframe(kmrange r)
{
    json_object *tf = json_object_new_object();
    char         d[11], buf[32];

    kmdate_format(r.start, d);
    snprintf(buf, sizeof(buf), "%sT00:00:00", d);
    json_object_object_add(tf, "start", json_object_new_string(buf));
    kmdate_format(r.end, d);
    snprintf(buf, sizeof(buf), "%sT23:59:59", d);
    json_object_object_add(tf, "end", json_object_new_string(buf));
    return tf;
}

json_object *
kmt_aggregate_filter(kmrange r)
{
    json_object *f = json_object_new_array();
    char         d[11], buf[80];

    kmdate_format(r.start, d);
    snprintf(buf, sizeof(buf), "greater-or-equal(datetime,%sT00:00:00)", d);
    json_object_array_add(f, json_object_new_string(buf));
    kmdate_format(r.end + 1, d);
    snprintf(buf, sizeof(buf), "less-than(datetime,%sT00:00:00)", d);
    json_object_array_add(f, json_object_new_string(buf));
    return f;
}

/* A Klaviyo datetime ("2025-11-27T14:00:00+00:00", fractions and "Z" allowed) as unix
 * seconds. -1 when it is not one. */
int
kmt_parse_instant(const char *s, int64_t *out)
{
    int         y, mo, d, h, mi, sec, n = 0, oh = 0, om = 0, sign = 1;
    const char *p;
    kmday       day;

    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 ||
        n != 19 || mo < 1 || mo > 12 || d < 1 || d > kmdate_days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    p = s + n;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5)
            return -1;
        p += 6;
    }
    if (*p)
        return -1;
    day = kmdate_from_ymd(y, mo, d);
    *out = (int64_t)day * 86400 + h * 3600 + mi * 60 + sec - sign * (oh * 3600 + om * 60);
    return 0;
}

size_t
kmt_chunks(kmctx *ctx, kmrange r, kmrange **chunks)
{
    size_t n = kmdate_split(r, KMDATE_CHUNK_DAYS, NULL, 0);

    *chunks = km_xcalloc(n ? n : 1, sizeof(**chunks));
    kmdate_split(r, KMDATE_CHUNK_DAYS, *chunks, n);
    if (n > 1)
        kmctx_warn(ctx,
                   "The window spans %d days, more than Klaviyo's one-year report limit; it "
                   "was fetched in %zu consecutive chunks and merged (counts summed, rates "
                   "rederived from the sums).",
                   kmdate_range_days(r), n);
    return n;
}

void
kmt_metrics_add(kmmetrics *m, json_object *s)
{
    m->sent += kmjson_num(s, "recipients", 0);
    m->delivered += kmjson_num(s, "delivered", 0);
    m->opens += kmjson_num(s, "opens_unique", 0);
    m->clicks += kmjson_num(s, "clicks_unique", 0);
    m->bounces += kmjson_num(s, "bounced", 0);
    m->unsubscribes += kmjson_num(s, "unsubscribes", 0);
    m->conversions += kmjson_num(s, "conversions", 0);
    m->conversion_value += kmjson_num(s, "conversion_value", 0);
}

void
kmt_metrics_sum(kmmetrics *into, const kmmetrics *m)
{
    into->sent += m->sent;
    into->delivered += m->delivered;
    into->opens += m->opens;
    into->clicks += m->clicks;
    into->bounces += m->bounces;
    into->unsubscribes += m->unsubscribes;
    into->conversions += m->conversions;
    into->conversion_value += m->conversion_value;
}

json_object *
kmt_rate(double num, double den)
{
    if (den == 0)
        return NULL;
    return kmjson_double(kmjson_round(num / den, 4));
}

void
kmt_metrics_put(json_object *o, const kmmetrics *m)
{
    json_object_object_add(o, "sent", kmjson_double(m->sent));
    json_object_object_add(o, "delivered", kmjson_double(m->delivered));
    json_object_object_add(o, "opens", kmjson_double(m->opens));
    json_object_object_add(o, "open_rate", kmt_rate(m->opens, m->delivered));
    json_object_object_add(o, "clicks", kmjson_double(m->clicks));
    json_object_object_add(o, "click_rate", kmt_rate(m->clicks, m->delivered));
    json_object_object_add(o, "bounces", kmjson_double(m->bounces));
    json_object_object_add(o, "bounce_rate", kmt_rate(m->bounces, m->sent));
    json_object_object_add(o, "unsubscribes", kmjson_double(m->unsubscribes));
    json_object_object_add(o, "conversions", kmjson_double(m->conversions));
    /* money: cents are enough, and sums of floats otherwise print long tails */
    json_object_object_add(o, "conversion_value",
                           kmjson_double(kmjson_round(m->conversion_value, 2)));
}

json_object *
kmt_deltas(json_object *current, json_object *prior)
{
    json_object *d = json_object_new_object();

    json_object_object_foreach(current, key, cur) {
        json_object *pri = kmjson_get(prior, key);
        json_object *one = json_object_new_object();

        if (!cur || !pri) {
            json_object_object_add(one, "absolute", NULL);
            json_object_object_add(one, "pct_change", NULL);
        } else {
            double c = json_object_get_double(cur), p = json_object_get_double(pri);
            json_object_object_add(one, "absolute", kmjson_double(kmjson_round(c - p, 4)));
            json_object_object_add(one, "pct_change",
                                   p == 0 ? NULL : kmjson_double(kmjson_round((c - p) / p, 4)));
        }
        json_object_object_add(d, key, one);
    }
    return d;
}

char *
kmt_filter_equals(const char *field, const char *value)
{
    return km_xasprintf("equals(%s,\"%s\")", field, value);
}

kmcode
kmt_plan(kmctx *ctx, const char *method, const char *path, int n, kmerr *err)
{
    kmcode rc;

    if (n <= 0)
        return KM_OK;
    rc = kmkl_plan(ctx->kl, ctx->acct, method, path, n, ctx->call->deadline_ms, err);
    if (rc != KM_OK)
        return rc;
    if (ctx->call->deadline_ms > 0) {
        int64_t left = ctx->call->deadline_ms - km_now_ms();

        ctx->call->max_wait_ms = left > 1 ? left : 1;
    }
    ctx->call->calls_total = ctx->call->calls_done + n;
    return KM_OK;
}

/* The JSON:API body of one values report (a new object). */
static json_object *
values_body(kmctx *ctx, const char *kind, kmrange r, json_object *statistics,
            const char *filter)
{
    static const char *const dflt[] = { KMT_VALUES_STATISTICS };
    json_object *body = json_object_new_object();
    json_object *data = json_object_new_object();
    json_object *attrs = json_object_new_object();
    char        *type = km_xasprintf("%s-values-report", kind);

    if (statistics) {
        json_object_object_add(attrs, "statistics", json_object_get(statistics));
    } else {
        json_object *s = json_object_new_array();

        for (size_t i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
            json_object_array_add(s, json_object_new_string(dflt[i]));
        json_object_object_add(attrs, "statistics", s);
    }
    json_object_object_add(attrs, "timeframe", kmt_timeframe(r));
    json_object_object_add(attrs, "conversion_metric_id",
                           json_object_new_string(ctx->acct->conversion_metric_id));
    if (filter)
        json_object_object_add(attrs, "filter", json_object_new_string(filter));
    json_object_object_add(data, "type", json_object_new_string(type));
    json_object_object_add(data, "attributes", attrs);
    json_object_object_add(body, "data", data);
    free(type);
    return body;
}

static const char *
values_path(const char *kind)
{
    return strcmp(kind, "flow") == 0 ? KMT_FLOW_VALUES_PATH : KMT_CAMPAIGN_VALUES_PATH;
}

int
kmt_values_cached(kmctx *ctx, const char *kind, kmrange r, json_object *statistics,
                  const char *filter)
{
    json_object *body = values_body(ctx, kind, r, statistics, filter);
    int          hit = kmkl_cached(ctx->kl, ctx->acct, "POST", values_path(kind), body);

    json_object_put(body);
    return hit;
}

size_t
kmt_uncached_values(kmctx *ctx, const char *kind, const kmrange *chunks, size_t n,
                    const char *filter)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (!kmt_values_cached(ctx, kind, chunks[i], NULL, filter))
            m++;
    }
    return m;
}

size_t
kmt_uncached_gets(kmctx *ctx, const char *const *paths, size_t n)
{
    size_t m = 0;

    for (size_t i = 0; i < n; i++) {
        if (!kmkl_cached(ctx->kl, ctx->acct, "GET", paths[i], NULL))
            m++;
    }
    return m;
}

kmcode
kmt_values_report(kmctx *ctx, const char *kind, kmrange r, json_object *statistics,
                  const char *filter, json_object **results, kmerr *err)
{
    json_object *body = values_body(ctx, kind, r, statistics, filter);
    json_object *doc = NULL, *res;
    const char  *path = values_path(kind);
    kmcode       rc;

    *results = NULL;
    rc = kmkl_post(ctx->kl, ctx->call, path, body, &doc, err);
    json_object_put(body);
    if (rc != KM_OK)
        return rc;
    res = kmjson_path(doc, "data", "attributes", "results", NULL);
    if (!json_object_is_type(res, json_type_array)) {
        json_object_put(doc);
        return kmerr_set(err, KM_UPSTREAM_ERROR, "Klaviyo's %s values report had no results "
                         "array", kind);
    }
    *results = json_object_get(res);
    json_object_put(doc);
    return KM_OK;
}

static int
key_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static size_t
rows_find(kmt_rows *rs, const char *const key[3])
{
    for (size_t i = 0; i < rs->n; i++) {
        if (key_eq(rs->v[i].key[0], key[0]) && key_eq(rs->v[i].key[1], key[1]) &&
            key_eq(rs->v[i].key[2], key[2]))
            return i;
    }
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 16;
        rs->v = km_xrealloc(rs->v, rs->cap * sizeof(*rs->v));
    }
    memset(&rs->v[rs->n], 0, sizeof(rs->v[rs->n]));
    for (int k = 0; k < 3; k++)
        rs->v[rs->n].key[k] = key[k] ? km_xstrdup(key[k]) : NULL;
    return rs->n++;
}

size_t
kmt_rows_add(kmt_rows *rs, const char *const key[3], json_object *statistics)
{
    size_t i = rows_find(rs, key);

    kmt_metrics_add(&rs->v[i].m, statistics);
    return i;
}

size_t
kmt_rows_merge(kmt_rows *rs, const char *const key[3], const kmmetrics *m)
{
    size_t i = rows_find(rs, key);

    kmt_metrics_sum(&rs->v[i].m, m);
    return i;
}

void
kmt_rows_add_results(kmt_rows *rs, json_object *results, const char *const key_fields[3])
{
    if (!json_object_is_type(results, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(results); i++) {
        json_object *row = json_object_array_get_idx(results, i);
        json_object *g = kmjson_get(row, "groupings");
        const char  *key[3];

        for (int k = 0; k < 3; k++)
            key[k] = key_fields[k] ? kmjson_str(g, key_fields[k]) : NULL;
        if (!key[0])
            continue;
        kmt_rows_add(rs, key, kmjson_get(row, "statistics"));
    }
}

void
kmt_rows_free(kmt_rows *rs)
{
    if (!rs)
        return;
    for (size_t i = 0; i < rs->n; i++) {
        for (int k = 0; k < 3; k++)
            free(rs->v[i].key[k]);
    }
    free(rs->v);
    memset(rs, 0, sizeof(*rs));
}

kmcode
kmt_fetch_chunks(kmctx *ctx, const char *kind, const kmrange *chunks, size_t n,
                 const char *filter, const char *const key_fields[3], kmt_rows *rows,
                 kmerr *err)
{
    for (size_t c = 0; c < n; c++) {
        json_object *results = NULL;
        kmcode       rc;

        rc = kmt_values_report(ctx, kind, chunks[c], NULL, filter, &results, err);
        if (rc != KM_OK)
            return rc;
        kmt_rows_add_results(rows, results, key_fields);
        json_object_put(results);
    }
    return KM_OK;
}

kmcode
kmt_fetch_values(kmctx *ctx, const char *kind, kmrange r, const char *filter,
                 const char *const key_fields[3], kmt_rows *rows, kmerr *err)
{
    kmrange *chunks = NULL;
    size_t   n = kmt_chunks(ctx, r, &chunks);
    kmcode   rc = KM_OK;

    if (n > 1) {
        rc = kmt_plan(ctx, "POST", values_path(kind),
                      (int)kmt_uncached_values(ctx, kind, chunks, n, filter), err);
        if (rc != KM_OK)
            goto out;
    }
    rc = kmt_fetch_chunks(ctx, kind, chunks, n, filter, key_fields, rows, err);
out:
    free(chunks);
    return rc;
}

kmcode
kmt_lookup_names(kmctx *ctx, const char *prefix, const char *what, const char *fallback,
                 const char *const *ids, size_t n, char **names, kmerr *err)
{
    char        **paths = km_xcalloc(n ? n : 1, sizeof(*paths));
    size_t       *slot = km_xcalloc(n ? n : 1, sizeof(*slot));
    json_object **outs = NULL;
    kmcode       *codes = NULL;
    size_t        m = 0, failed = 0;
    kmerr         perr = { 0 };
    kmcode        rc = KM_OK;

    for (size_t i = 0; i < n; i++) {
        names[i] = NULL;
        if (kmpath_id(prefix, ids[i], KMT_ID_MAX, "/", &paths[m], NULL) != KM_OK) {
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
        kmctx_warn(ctx, "No %s was looked up (%zu needed; rows show %s instead): %s", what,
                   m, fallback, perr.msg);
        failed = 0;
        goto out;
    }
    outs = km_xcalloc(m, sizeof(*outs));
    codes = km_xcalloc(m, sizeof(*codes));
    rc = kmkl_get_many(ctx->kl, ctx->call, (const char *const *)paths, m, outs, codes, NULL,
                       err);
    if (rc != KM_OK)
        goto out;
    for (size_t j = 0; j < m; j++) {
        const char *name = NULL;

        if (codes[j] == KM_OK)
            name = kmjson_str(kmjson_path(outs[j], "data", "attributes", NULL), "name");
        /* an unnamed entity (Klaviyo's empty name) has no name: null, as the seed gives it,
         * and not a failed lookup */
        if (name && *name)
            names[slot[j]] = km_xstrdup(name);
        else if (!name)
            failed++;
    }
out:
    if (rc == KM_OK && failed > 0)
        kmctx_warn(ctx, "%zu of %zu %s lookups failed; those rows show %s instead.", failed, n,
                   what, fallback);
    for (size_t j = 0; j < m; j++) {
        free(paths[j]);
        if (outs)
            json_object_put(outs[j]);
    }
    if (rc != KM_OK) {
        for (size_t i = 0; i < n; i++) {
            free(names[i]);
            names[i] = NULL;
        }
    }
    free(paths);
    free(slot);
    free(outs);
    free(codes);
    kmerr_clear(&perr);
    return rc;
}

kmcode
kmt_lookup_row_names(kmctx *ctx, const kmt_rows *rows, int k, const char *prefix,
                     const char *what, const char *fallback, char **row_names, kmerr *err)
{
    const char **ids = km_xcalloc(rows->n ? rows->n : 1, sizeof(*ids));
    long        *of_row = km_xcalloc(rows->n ? rows->n : 1, sizeof(*of_row));
    char       **names;
    size_t       n = 0;
    kmcode       rc;

    for (size_t i = 0; i < rows->n; i++) {
        const char *id = rows->v[i].key[k];
        size_t      j;

        of_row[i] = -1;
        if (!id)
            continue;
        for (j = 0; j < n; j++) {
            if (strcmp(ids[j], id) == 0)
                break;
        }
        if (j == n)
            ids[n++] = id;
        of_row[i] = (long)j;
    }
    names = km_xcalloc(n ? n : 1, sizeof(*names));
    rc = kmt_lookup_names(ctx, prefix, what, fallback, ids, n, names, err);
    if (rc == KM_OK) {
        for (size_t i = 0; i < rows->n; i++) {
            if (of_row[i] >= 0 && names[of_row[i]])
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

void
kmt_metric_offer(const char *want, json_object *item, char **id, int *klaviyo)
{
    json_object *attrs = kmjson_get(item, "attributes");
    const char  *mid = kmjson_str(item, "id"), *name = kmjson_str(attrs, "name");
    const char  *integ = kmjson_str(kmjson_get(attrs, "integration"), "name");
    int          is_klaviyo = integ && strcmp(integ, "Klaviyo") == 0;

    if (!want || !mid || !name || !km_is_alnum_id(mid, KMT_ID_MAX) || strcmp(want, name) != 0)
        return;
    if (*id && (*klaviyo || !is_klaviyo))
        return;
    free(*id);
    *id = km_xstrdup(mid);
    *klaviyo = is_klaviyo;
}
