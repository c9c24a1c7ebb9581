/* tools_lists.c — the list tools: current sizes (klaviyo_get_list_health), subscribe and
 * unsubscribe growth per channel (klaviyo_get_list_growth), per list
 * (klaviyo_get_list_growth_by_list), and sizes joined with per-list growth
 * (klaviyo_get_list_breakdown).
 *
 * Sizes come from GET /api/lists/{id}?additional-fields[list]=profile_count, one request per
 * list on Klaviyo's XS tier (15 a minute): the fan-out is planned against the account's
 * budget before the first lookup, waits for slots up to the call's deadline, and a failed
 * lookup leaves that list's profile_count null. Growth comes from metric-aggregates `count`
 * of Klaviyo's subscribe/unsubscribe system metrics, found by exact name, in the account's
 * timezone (the seed sent UTC, so its day edges disagreed with Klaviyo's own reports). An
 * absent metric or a failed aggregate makes the counts that need it null, with a warning,
 * instead of failing the answer.
 */
#include "json.h"
#include "tools.h"
#include "tools_common.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEALTH_WARNING                                                                        \
    "total_profiles is the sum of per-list profile_count values; a profile in several "      \
    "lists is counted once per list, so this is not a deduplicated audience size."

#define BY_LIST_WARNING                                                                       \
    "Counts are subscribe/unsubscribe events over the window, not deduplicated profiles; "   \
    "per-list rows are keyed by Klaviyo's list name and joined to the list id, so lists "     \
    "sharing a name may not be distinguishable."

#define LISTS_PATH "/api/lists/"
#define METRICS_PATH "/api/metrics/"
#define AGGREGATES_PATH "/api/metric-aggregates/"

/* Longest id we put into a URL (the schema's own bound). */
#define ID_MAX 64
/* Bound on metric-aggregates continuation pages per request (kmkl_get_all's bound too). */
#define AGG_MAX_PAGES 100

/* --- lists and their sizes --------------------------------------------------------------- */

struct list_row {
    json_object *item;       /* borrowed from lists.doc */
    const char  *id;         /* borrowed; always a valid alphanumeric id */
    const char  *name;       /* borrowed; NULL when Klaviyo sent none */
    int          has_count;  /* profile_count known */
    int64_t      count;
};

struct lists {
    json_object     *doc;            /* owns every item */
    struct list_row *rows;
    size_t           n;
    size_t           sizes_failed;   /* lookups that failed */
    kmerr            first_failure;  /* why the first of them failed */
};

static void
lists_free(struct lists *ls)
{
    json_object_put(ls->doc);
    free(ls->rows);
    kmerr_clear(&ls->first_failure);
    memset(ls, 0, sizeof(*ls));
}

/* attributes.profile_count when it is a non-negative number; 0 when absent or null. */
static int
profile_count_of(json_object *item, int64_t *out)
{
    json_object *pc = kmjson_path(item, "attributes", "profile_count", NULL);
    double       v;

    if (!pc)
        return 0;
    if (!json_object_is_type(pc, json_type_int) && !json_object_is_type(pc, json_type_double))
        return 0;
    v = json_object_get_double(pc);
    if (!isfinite(v) || v < 0)
        return 0;
    *out = (int64_t)llround(v);
    return 1;
}

/* One row per list item. An item without a usable id cannot be reported (list_id is its
 * key) nor put into a size URL, so it is left out. */
static void
lists_index(struct lists *ls, json_object *items)
{
    size_t n = json_object_array_length(items);

    ls->rows = km_xcalloc(n ? n : 1, sizeof(*ls->rows));
    for (size_t i = 0; i < n; i++) {
        json_object     *item = json_object_array_get_idx(items, i);
        const char      *id = kmjson_str(item, "id");
        struct list_row *r;

        if (!id || !km_is_alnum_id(id, ID_MAX))
            continue;
        r = &ls->rows[ls->n++];
        r->item = item;
        r->id = id;
        r->name = kmjson_str(kmjson_get(item, "attributes"), "name");
    }
}

static kmcode
list_enumerate(kmctx *ctx, struct lists *ls, kmerr *err)
{
    kmcode rc = kmkl_get_all(ctx->kl, ctx->call, LISTS_PATH, &ls->doc, err);

    if (rc != KM_OK)
        return rc;
    lists_index(ls, ls->doc);
    return KM_OK;
}

/* GET /api/lists/{id}/ asking for its profile_count (XS tier): a new path, or NULL for an id
 * that is not 1 to ID_MAX letters and digits (callers validated it already). */
static char *
size_path(const char *id)
{
    char *base = NULL, *path = NULL;

    if (kmpath_id(LISTS_PATH, id, ID_MAX, "/", &base, NULL) == KM_OK)
        kmpath_query(base, (const char *const[]){ "additional-fields[list]", "profile_count",
                                                  NULL }, &path, NULL);
    free(base);
    return path;
}

/* Plan `n` requests like `method path` against the account's budget before the first one is
 * made (RATE_LIMITED at once when they cannot finish before the deadline), then let the
 * client wait for rate slots as long as the deadline allows instead of its short default. */
static kmcode
plan_calls(kmctx *ctx, const char *method, const char *path, size_t n, kmerr *err)
{
    kmcode rc;

    if (n == 0)
        return KM_OK;
    rc = kmkl_plan(ctx->kl, ctx->acct, method, path, (int)n, ctx->call->deadline_ms, err);
    if (rc != KM_OK)
        return rc;
    if (ctx->call->deadline_ms > 0) {
        int64_t left = ctx->call->deadline_ms - km_now_ms();
        ctx->call->max_wait_ms = left > 1 ? left : 1;
    }
    return KM_OK;
}

/* How many of the rows' size lookups the cache would not answer: what a plan counts. */
static size_t
uncached_sizes(kmctx *ctx, const struct lists *ls)
{
    size_t n = 0;

    for (size_t i = 0; i < ls->n; i++) {
        char *path = size_path(ls->rows[i].id);

        n += !kmkl_cached(ctx->kl, ctx->acct, "GET", path, NULL);
        free(path);
    }
    return n;
}

/* The size of every row, fetched concurrently within the XS tier. Planning happened before
 * (plan_calls with ls->n). A failed lookup leaves has_count 0 and is counted; only a batch
 * that could not run at all (cancelled, deadline) fails. */
static kmcode
fetch_sizes(kmctx *ctx, struct lists *ls, kmerr *err)
{
    char        **paths;
    json_object **outs;
    kmcode       *codes;
    kmerr        *errs;
    kmcode        rc = KM_OK;

    if (ls->n == 0)
        return KM_OK;
    paths = km_xcalloc(ls->n, sizeof(*paths));
    outs = km_xcalloc(ls->n, sizeof(*outs));
    codes = km_xcalloc(ls->n, sizeof(*codes));
    errs = km_xcalloc(ls->n, sizeof(*errs));
    for (size_t i = 0; i < ls->n; i++)
        paths[i] = size_path(ls->rows[i].id);

    rc = kmkl_get_many(ctx->kl, ctx->call, (const char *const *)paths, ls->n, outs, codes, errs,
                       err);
    if (rc != KM_OK)
        goto out;
    for (size_t i = 0; i < ls->n; i++) {
        struct list_row *r = &ls->rows[i];

        if (codes[i] != KM_OK) {
            if (ls->sizes_failed++ == 0)
                kmerr_copy(&ls->first_failure, &errs[i]);
            continue;
        }
        /* profile_count may be null in Klaviyo's answer: then it stays unknown (null),
         * which is not a failed lookup. */
        r->has_count = profile_count_of(kmjson_get(outs[i], "data"), &r->count);
    }
out:
    for (size_t i = 0; i < ls->n; i++) {
        free(paths[i]);
        json_object_put(outs[i]);
        kmerr_clear(&errs[i]);
    }
    free(paths);
    free(outs);
    free(codes);
    free(errs);
    return rc;
}

static void
warn_failed_sizes(kmctx *ctx, const struct lists *ls)
{
    if (ls->sizes_failed == 0)
        return;
    kmctx_warn(ctx,
               "The size of %zu of %zu list(s) could not be fetched from Klaviyo (%s: %s); "
               "their profile_count is null and totals sum the known sizes only.",
               ls->sizes_failed, ls->n, kmerr_name(ls->first_failure.code),
               ls->first_failure.msg);
}

/* Sum of the known sizes; *known says how many rows had one. */
static int64_t
lists_total(const struct lists *ls, size_t *known)
{
    int64_t sum = 0;

    *known = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->rows[i].has_count) {
            sum += ls->rows[i].count;
            (*known)++;
        }
    }
    return sum;
}

static json_object *
str_or_null(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

/* list_id, name, opt_in_process, profile_count (health and breakdown rows). */
static void
put_list_fields(json_object *o, const struct list_row *r)
{
    json_object *attrs = kmjson_get(r->item, "attributes");

    json_object_object_add(o, "list_id", json_object_new_string(r->id));
    json_object_object_add(o, "name", str_or_null(r->name));
    json_object_object_add(o, "opt_in_process", str_or_null(kmjson_str(attrs,
                                                                        "opt_in_process")));
    json_object_object_add(o, "profile_count",
                           r->has_count ? json_object_new_int64(r->count) : NULL);
}

/* --- metrics and aggregates -------------------------------------------------------------- */

/* Counts per dimension value (the list name with by:["List"]; one "" entry without). */
struct tally_entry {
    char  *name;
    double count;
};

struct tally {
    struct tally_entry *e;
    size_t              n, cap;
    double              total;
};

static void
tally_free(struct tally *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->e[i].name);
    free(t->e);
    memset(t, 0, sizeof(*t));
}

static struct tally_entry *
tally_find(const struct tally *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->e[i].name, name) == 0)
            return &t->e[i];
    }
    return NULL;
}

static void
tally_add(struct tally *t, const char *name, double v)
{
    struct tally_entry *e = tally_find(t, name);

    if (!e) {
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 16;
            t->e = km_xrealloc(t->e, t->cap * sizeof(*t->e));
        }
        e = &t->e[t->n++];
        e->name = km_xstrdup(name);
        e->count = 0;
    }
    e->count += v;
    t->total += v;
}

static int64_t
tally_get(const struct tally *t, const char *name)
{
    struct tally_entry *e = tally_find(t, name);

    return e ? (int64_t)llround(e->count) : 0;
}

/* One side of a growth figure: a Klaviyo system metric and what was counted for it. */
struct side {
    const char  *metric;   /* exact Klaviyo metric name */
    char        *id;       /* resolved id, or NULL when the account has no such metric */
    int          klaviyo;  /* the resolved metric's integration is Klaviyo's own */
    int          ok;       /* every aggregate call for it succeeded */
    struct tally t;
};

static void
sides_free(struct side *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(s[i].id);
        s[i].id = NULL;
        tally_free(&s[i].t);
    }
}

/* Find each side's metric id by exact name over every page of GET /api/metrics. Names can
 * repeat (REFERENCE.md §6.1): the one whose integration is Klaviyo's wins, else the first. */
static kmcode
resolve_metrics(kmctx *ctx, struct side *sides, size_t n, kmerr *err)
{
    json_object *all = NULL;
    kmcode       rc = kmkl_get_all(ctx->kl, ctx->call, METRICS_PATH, &all, err);

    if (rc != KM_OK)
        return rc;
    for (size_t i = 0; i < json_object_array_length(all); i++)
        for (size_t k = 0; k < n; k++)
            kmt_metric_offer(sides[k].metric, json_object_array_get_idx(all, i), &sides[k].id,
                             &sides[k].klaviyo);
    json_object_put(all);
    return KM_OK;
}

/* {"data":{"type":"metric-aggregate","attributes":{...}}} for one chunk. The timezone is the
 * account's, so day edges match Klaviyo's own reports (the seed sent UTC). */
static json_object *
aggregate_body(kmctx *ctx, const char *metric_id, int by_list, kmrange chunk,
               const char *cursor)
{
    json_object *body = json_object_new_object();
    json_object *data = json_object_new_object();
    json_object *attrs = json_object_new_object();
    json_object *meas = json_object_new_array();

    json_object_object_add(attrs, "metric_id", json_object_new_string(metric_id));
    json_object_array_add(meas, json_object_new_string("count"));
    json_object_object_add(attrs, "measurements", meas);
    json_object_object_add(attrs, "interval", json_object_new_string("day"));
    if (by_list) {
        json_object *by = json_object_new_array();
        json_object_array_add(by, json_object_new_string("List"));
        json_object_object_add(attrs, "by", by);
    }
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

/* Add every row of one metric-aggregates answer to t. */
static kmcode
tally_doc(json_object *doc, int by_list, struct tally *t, kmerr *err)
{
    json_object *rows = kmjson_path(doc, "data", "attributes", "data", NULL);
    size_t       n;

    if (!rows || !json_object_is_type(rows, json_type_array))
        return kmerr_set(err, KM_UPSTREAM_ERROR,
                         "Klaviyo's metric-aggregates answer has no data rows");
    n = json_object_array_length(rows);
    for (size_t i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(rows, i);
        json_object *counts = kmjson_path(row, "measurements", "count", NULL);
        json_object *dim0 = json_object_array_get_idx(kmjson_get(row, "dimensions"), 0);
        const char  *name = "";
        double       sum = 0;
        size_t       nc;

        if (!counts || !json_object_is_type(counts, json_type_array))
            return kmerr_set(err, KM_UPSTREAM_ERROR,
                             "Klaviyo's metric-aggregates row %zu has no count measurement", i);
        nc = json_object_array_length(counts);
        for (size_t k = 0; k < nc; k++) {
            json_object *v = json_object_array_get_idx(counts, k);
            if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))
                sum += json_object_get_double(v);
        }
        if (by_list && dim0 && json_object_is_type(dim0, json_type_string))
            name = json_object_get_string(dim0);
        tally_add(t, name, sum);
    }
    return KM_OK;
}

/* Count `metric_id` events over every chunk (summed) into t. */
static kmcode
aggregate(kmctx *ctx, const char *metric_id, int by_list, const kmrange *chunks, size_t nch,
          struct tally *t, kmerr *err)
{
    for (size_t c = 0; c < nch; c++) {
        char *cursor = NULL;
        int   pages = 0;

        do {
            json_object *body = aggregate_body(ctx, metric_id, by_list, chunks[c], cursor);
            json_object *doc = NULL;
            kmcode       rc = kmkl_post(ctx->kl, ctx->call, AGGREGATES_PATH, body, &doc, err);

            json_object_put(body);
            free(cursor);
            cursor = NULL;
            if (rc == KM_OK)
                rc = tally_doc(doc, by_list, t, err);
            if (rc == KM_OK)
                cursor = kmpath_cursor(doc);
            json_object_put(doc);
            if (rc != KM_OK)
                return rc;
        } while (cursor && ++pages < AGG_MAX_PAGES);
        free(cursor);
    }
    return KM_OK;
}

/* The window's growth job: its chunks and its sides. */
struct growth {
    struct side *sides;
    size_t       n;
    int          by_list;
    kmrange     *chunks;
    size_t       nch;
    size_t       ncalls;   /* aggregate calls planned (resolved sides × chunks) */
};

/* Resolve the window, chunk it, resolve the metrics and plan the aggregate calls — all
 * before the first aggregate is sent. */
static kmcode
growth_prepare(kmctx *ctx, json_object *args, struct growth *g, kmerr *err)
{
    kmrange r;
    kmcode  rc = kmt_window(ctx, args, &r, err);
    size_t  found = 0;

    if (rc != KM_OK)
        return rc;
    rc = resolve_metrics(ctx, g->sides, g->n, err);
    if (rc != KM_OK)
        return rc;
    g->nch = kmt_chunks(ctx, r, &g->chunks);
    for (size_t i = 0; i < g->n; i++)
        found += g->sides[i].id != NULL;
    g->ncalls = found * g->nch;
    /* one call per metric per chunk; a single call needs no plan; cached ones cost none */
    if (g->ncalls > 1) {
        size_t uncached = 0;

        for (size_t i = 0; i < g->n; i++) {
            for (size_t c = 0; g->sides[i].id && c < g->nch; c++) {
                json_object *body = aggregate_body(ctx, g->sides[i].id, g->by_list,
                                                   g->chunks[c], NULL);

                uncached += !kmkl_cached(ctx->kl, ctx->acct, "POST", AGGREGATES_PATH, body);
                json_object_put(body);
            }
        }
        rc = plan_calls(ctx, "POST", AGGREGATES_PATH, uncached, err);
    }
    return rc;
}

/* Run the planned aggregates. A failed one degrades its side to null with a warning; only
 * cancellation fails the call. Missing metrics are named in one warning. */
static kmcode
growth_run(kmctx *ctx, struct growth *g, kmerr *err)
{
    char   missing[400] = "";
    size_t nmissing = 0, used = 0;

    for (size_t i = 0; i < g->n; i++) {
        struct side *s = &g->sides[i];
        kmerr        e = { 0 };
        kmcode       rc;

        if (!s->id) {
            int w = snprintf(missing + used, sizeof(missing) - used, "%s'%s'",
                             nmissing ? ", " : "", s->metric);
            if (w > 0 && (size_t)w < sizeof(missing) - used)
                used += (size_t)w;
            nmissing++;
            continue;
        }
        rc = aggregate(ctx, s->id, g->by_list, g->chunks, g->nch, &s->t, &e);
        if (rc == KM_CANCELLED) {
            kmerr_copy(err, &e);
            kmerr_clear(&e);
            return rc;
        }
        if (rc != KM_OK) {
            tally_free(&s->t);
            kmctx_warn(ctx,
                       "Counting '%s' events failed (%s: %s); the counts that need it, and "
                       "their net, are null.",
                       s->metric, kmerr_name(rc), e.msg);
            kmerr_clear(&e);
            continue;
        }
        s->ok = 1;
    }
    if (nmissing > 0)
        kmctx_warn(ctx,
                   "Klaviyo metric%s not found on this account: %s; the counts that need %s, "
                   "and their net, are null.",
                   nmissing > 1 ? "s" : "", missing, nmissing > 1 ? "them" : "it");
    return KM_OK;
}

static void
growth_free(struct growth *g)
{
    sides_free(g->sides, g->n);
    free(g->chunks);
    g->chunks = NULL;
}

static json_object *
count_or_null(int ok, int64_t v)
{
    return ok ? json_object_new_int64(v) : NULL;
}

/* {"subscribed","unsubscribed","net"}; net is null unless both sides are known. */
static json_object *
growth_json(int sok, int64_t sub, int uok, int64_t unsub)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "subscribed", count_or_null(sok, sub));
    json_object_object_add(o, "unsubscribed", count_or_null(uok, unsub));
    json_object_object_add(o, "net", count_or_null(sok && uok, sub - unsub));
    return o;
}

static json_object *
side_total_json(const struct side *sub, const struct side *unsub)
{
    return growth_json(sub->ok, (int64_t)llround(sub->t.total), unsub->ok,
                       (int64_t)llround(unsub->t.total));
}

/* --- klaviyo_get_list_health ------------------------------------------------------------- */

static kmcode
health_one(kmctx *ctx, const char *list_id, struct lists *ls, kmerr *err)
{
    char  *path;
    kmcode rc;

    if (!km_is_alnum_id(list_id, ID_MAX))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "list_id must be 1-64 letters or digits");
    path = size_path(list_id);
    rc = kmkl_get(ctx->kl, ctx->call, path, &ls->doc, err);
    free(path);
    if (rc == KM_NOT_FOUND)
        return kmerr_set(err, KM_NOT_FOUND, "Klaviyo has no list with id '%s' in account '%s'",
                         list_id, ctx->acct->name);
    if (rc != KM_OK)
        return rc;
    ls->rows = km_xcalloc(1, sizeof(*ls->rows));
    ls->rows[0].item = kmjson_get(ls->doc, "data");
    ls->rows[0].id = list_id;
    ls->rows[0].name = kmjson_str(kmjson_get(ls->rows[0].item, "attributes"), "name");
    ls->rows[0].has_count = profile_count_of(ls->rows[0].item, &ls->rows[0].count);
    ls->n = 1;
    return KM_OK;
}

/* Every list, in Klaviyo's order, with its size: the fan-out is planned first, counting only
 * the lookups the cache will not answer (kmkl_cached), so a warm repeat is never refused. */
static kmcode
health_all(kmctx *ctx, struct lists *ls, kmerr *err)
{
    char  *probe;
    kmcode rc = list_enumerate(ctx, ls, err);

    if (rc != KM_OK || ls->n == 0)
        return rc;
    probe = size_path(ls->rows[0].id);
    rc = plan_calls(ctx, "GET", probe, uncached_sizes(ctx, ls), err);
    free(probe);
    if (rc != KM_OK)
        return rc;
    ctx->call->calls_total = ctx->call->calls_done + (int)ls->n;
    return fetch_sizes(ctx, ls, err);
}

kmcode
kmtool_list_health(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    struct lists ls = { 0 };
    const char  *list_id = kmjson_str(args, "list_id");
    json_object *rows;
    int64_t      total;
    size_t       known;
    kmcode       rc;

    *data = NULL;
    rc = list_id ? health_one(ctx, list_id, &ls, err) : health_all(ctx, &ls, err);
    if (rc != KM_OK)
        goto out;

    /* rows in Klaviyo's list order */
    rows = json_object_new_array();
    for (size_t i = 0; i < ls.n; i++) {
        json_object *o = json_object_new_object();
        json_object *attrs = kmjson_get(ls.rows[i].item, "attributes");

        put_list_fields(o, &ls.rows[i]);
        json_object_object_add(o, "created", str_or_null(kmjson_str(attrs, "created")));
        json_object_object_add(o, "updated", str_or_null(kmjson_str(attrs, "updated")));
        json_object_array_add(rows, o);
    }
    total = lists_total(&ls, &known);
    *data = json_object_new_object();
    json_object_object_add(*data, "lists", rows);
    json_object_object_add(*data, "list_count", json_object_new_int64((int64_t)ls.n));
    json_object_object_add(*data, "total_profiles", json_object_new_int64(total));
    kmctx_warn(ctx, "%s", HEALTH_WARNING);
    warn_failed_sizes(ctx, &ls);
out:
    lists_free(&ls);
    return rc;
}

/* --- klaviyo_get_list_growth -------------------------------------------------------------- */

static const struct channel {
    const char *key;
    const char *subscribed;
    const char *unsubscribed;
} channels[] = {
    { "list", "Subscribed to List", "Unsubscribed from List" },
    { "email", "Subscribed to Email Marketing", "Unsubscribed from Email Marketing" },
    { "sms", "Subscribed to SMS Marketing", "Unsubscribed from SMS Marketing" },
};

#define NCHANNELS (sizeof(channels) / sizeof(channels[0]))

kmcode
kmtool_list_growth(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    struct side   sides[2 * NCHANNELS];
    struct growth g = { 0 };
    json_object  *growth;
    kmcode        rc;

    *data = NULL;
    memset(sides, 0, sizeof(sides));
    for (size_t c = 0; c < NCHANNELS; c++) {
        sides[2 * c].metric = channels[c].subscribed;
        sides[2 * c + 1].metric = channels[c].unsubscribed;
    }
    g.sides = sides;
    g.n = 2 * NCHANNELS;
    rc = growth_prepare(ctx, args, &g, err);
    if (rc != KM_OK)
        goto out;
    ctx->call->calls_total = ctx->call->calls_done + (int)g.ncalls;
    rc = growth_run(ctx, &g, err);
    if (rc != KM_OK)
        goto out;

    growth = json_object_new_object();
    for (size_t c = 0; c < NCHANNELS; c++)
        json_object_object_add(growth, channels[c].key,
                               side_total_json(&sides[2 * c], &sides[2 * c + 1]));
    *data = json_object_new_object();
    json_object_object_add(*data, "growth", growth);
out:
    growth_free(&g);
    return rc;
}

/* --- per-list growth (growth by list, breakdown) ------------------------------------------ */

/* The first list named `name`, and how many lists carry that name. */
static const struct list_row *
list_by_name(const struct lists *ls, const char *name, size_t *same)
{
    const struct list_row *first = NULL;

    *same = 0;
    for (size_t i = 0; i < ls->n; i++) {
        if (ls->rows[i].name && strcmp(ls->rows[i].name, name) == 0) {
            if (!first)
                first = &ls->rows[i];
            (*same)++;
        }
    }
    return first;
}

static void
warn_shared_name(kmctx *ctx, const char *name, size_t same, const char *first_id)
{
    kmctx_warn(ctx,
               "%zu lists are named '%s'; Klaviyo reports growth by list name, so all of it "
               "is attributed to the first of them (list_id %s).",
               same, name, first_id);
}

/* Set up the "Subscribed to List" / "Unsubscribed from List" pair, grouped by list name. */
static void
list_pair(struct side sides[2], struct growth *g)
{
    memset(sides, 0, 2 * sizeof(*sides));
    sides[0].metric = channels[0].subscribed;
    sides[1].metric = channels[0].unsubscribed;
    memset(g, 0, sizeof(*g));
    g->sides = sides;
    g->n = 2;
    g->by_list = 1;
}

struct by_list_row {
    const char *name;      /* the List dimension value ("" when Klaviyo sent none) */
    const char *list_id;   /* joined by name; NULL when no current list has it */
    int64_t     sub, unsub;
};

/* Subscribed descending, then name ascending: the busiest lists first, ties stable. */
static int
by_list_cmp(const void *a, const void *b)
{
    const struct by_list_row *x = a, *y = b;

    if (x->sub != y->sub)
        return x->sub > y->sub ? -1 : 1;
    return strcmp(x->name, y->name);
}

kmcode
kmtool_list_growth_by_list(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    struct side         sides[2];
    struct growth       g;
    struct lists        ls = { 0 };
    struct by_list_row *rows = NULL;
    size_t              nrows = 0;
    json_object        *arr;
    kmcode              rc;

    *data = NULL;
    list_pair(sides, &g);
    rc = growth_prepare(ctx, args, &g, err);
    if (rc != KM_OK)
        goto out;
    rc = list_enumerate(ctx, &ls, err);
    if (rc != KM_OK)
        goto out;
    ctx->call->calls_total = ctx->call->calls_done + (int)g.ncalls;
    rc = growth_run(ctx, &g, err);
    if (rc != KM_OK)
        goto out;

    /* one row per name seen by either metric; a null side counts as 0 for activity and
     * order, and is reported as null */
    rows = km_xcalloc(sides[0].t.n + sides[1].t.n + 1, sizeof(*rows));
    for (size_t k = 0; k < 2; k++) {
        for (size_t i = 0; i < sides[k].t.n; i++) {
            const char *name = sides[k].t.e[i].name;
            int         seen = 0;

            for (size_t j = 0; j < nrows && !seen; j++)
                seen = strcmp(rows[j].name, name) == 0;
            if (seen)
                continue;
            rows[nrows].name = name;
            rows[nrows].sub = tally_get(&sides[0].t, name);
            rows[nrows].unsub = tally_get(&sides[1].t, name);
            if (rows[nrows].sub == 0 && rows[nrows].unsub == 0)
                continue;   /* only lists with activity appear */
            nrows++;
        }
    }
    /* row order: subscribed descending, then name (by_list_cmp) */
    qsort(rows, nrows, sizeof(*rows), by_list_cmp);

    arr = json_object_new_array();
    for (size_t i = 0; i < nrows; i++) {
        json_object           *o = json_object_new_object();
        size_t                 same = 0;
        const struct list_row *lr = rows[i].name[0] ? list_by_name(&ls, rows[i].name, &same)
                                                    : NULL;

        if (same > 1)
            warn_shared_name(ctx, rows[i].name, same, lr->id);
        json_object_object_add(o, "list_id", lr ? json_object_new_string(lr->id) : NULL);
        json_object_object_add(o, "name",
                               rows[i].name[0] ? json_object_new_string(rows[i].name) : NULL);
        json_object_object_add(o, "subscribed", count_or_null(sides[0].ok, rows[i].sub));
        json_object_object_add(o, "unsubscribed", count_or_null(sides[1].ok, rows[i].unsub));
        json_object_object_add(o, "net", count_or_null(sides[0].ok && sides[1].ok,
                                                       rows[i].sub - rows[i].unsub));
        json_object_array_add(arr, o);
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "lists", arr);
    json_object_object_add(*data, "list_count", json_object_new_int64((int64_t)nrows));
    json_object_object_add(*data, "totals", side_total_json(&sides[0], &sides[1]));
    kmctx_warn(ctx, "%s", BY_LIST_WARNING);
out:
    free(rows);
    lists_free(&ls);
    growth_free(&g);
    return rc;
}

/* --- klaviyo_get_list_breakdown ----------------------------------------------------------- */

/* Events whose list name matches no current list (deleted or renamed lists): they are in
 * the totals but in no row, which the answer must say. */
static void
warn_unmatched(kmctx *ctx, const struct lists *ls, const struct side sides[2])
{
    int64_t sub = 0, unsub = 0;

    for (size_t k = 0; k < 2; k++) {
        if (!sides[k].ok)
            continue;
        for (size_t i = 0; i < sides[k].t.n; i++) {
            const struct tally_entry *e = &sides[k].t.e[i];
            size_t                    same;

            if (e->name[0] && list_by_name(ls, e->name, &same))
                continue;
            if (k == 0)
                sub += (int64_t)llround(e->count);
            else
                unsub += (int64_t)llround(e->count);
        }
    }
    if (sub != 0 || unsub != 0)
        kmctx_warn(ctx,
                   "%lld subscribe and %lld unsubscribe events belong to list names that no "
                   "current list has (deleted or renamed lists); they are counted in totals "
                   "but appear in no row.",
                   (long long)sub, (long long)unsub);
}

kmcode
kmtool_list_breakdown(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    struct side   sides[2];
    struct growth g;
    struct lists  ls = { 0 };
    json_object  *arr, *totals;
    size_t        known;
    int64_t       total;
    char         *probe = NULL;
    kmcode        rc;

    *data = NULL;
    list_pair(sides, &g);
    rc = growth_prepare(ctx, args, &g, err);
    if (rc != KM_OK)
        goto out;
    rc = list_enumerate(ctx, &ls, err);
    if (rc != KM_OK)
        goto out;
    if (ls.n > 0) {
        probe = size_path(ls.rows[0].id);
        rc = plan_calls(ctx, "GET", probe, uncached_sizes(ctx, &ls), err);
        if (rc != KM_OK)
            goto out;
    }
    ctx->call->calls_total = ctx->call->calls_done + (int)(ls.n + g.ncalls);
    rc = fetch_sizes(ctx, &ls, err);
    if (rc != KM_OK)
        goto out;
    rc = growth_run(ctx, &g, err);
    if (rc != KM_OK)
        goto out;

    /* rows in Klaviyo's list order; a quiet list shows 0 when its metric resolved */
    arr = json_object_new_array();
    for (size_t i = 0; i < ls.n; i++) {
        const struct list_row *r = &ls.rows[i];
        json_object           *o = json_object_new_object();
        size_t                 same = 0;
        const struct list_row *first = r->name ? list_by_name(&ls, r->name, &same) : NULL;
        int64_t                sub = 0, unsub = 0;

        /* growth is keyed by name: it belongs to the first list of that name */
        if (first == r) {
            sub = tally_get(&sides[0].t, r->name);
            unsub = tally_get(&sides[1].t, r->name);
            if (same > 1 && (sub != 0 || unsub != 0))
                warn_shared_name(ctx, r->name, same, r->id);
        }
        put_list_fields(o, r);
        json_object_object_add(o, "subscribed", count_or_null(sides[0].ok, sub));
        json_object_object_add(o, "unsubscribed", count_or_null(sides[1].ok, unsub));
        json_object_object_add(o, "net", count_or_null(sides[0].ok && sides[1].ok,
                                                       sub - unsub));
        json_object_array_add(arr, o);
    }
    total = lists_total(&ls, &known);
    totals = side_total_json(&sides[0], &sides[1]);
    /* null when there are lists but not one size is known: 0 would be a false answer */
    json_object_object_add(totals, "profile_count",
                           known > 0 || ls.n == 0 ? json_object_new_int64(total) : NULL);
    *data = json_object_new_object();
    json_object_object_add(*data, "lists", arr);
    json_object_object_add(*data, "list_count", json_object_new_int64((int64_t)ls.n));
    json_object_object_add(*data, "totals", totals);
    kmctx_warn(ctx, "%s", BY_LIST_WARNING);
    warn_unmatched(ctx, &ls, sides);
    warn_failed_sizes(ctx, &ls);
out:
    free(probe);
    lists_free(&ls);
    growth_free(&g);
    return rc;
}
