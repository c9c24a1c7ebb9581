/* shape.c — sorting, paging and top-N series over a finished answer (see shape.h). */
#include "shape.h"
#include "json.h"
#include "tools_common.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

int
kmshape_additive(const char *statistic)
{
    size_t n = statistic ? strlen(statistic) : 0;

    if (n == 0)
        return 0;
    if (n >= 5 && strcmp(statistic + n - 5, "_rate") == 0)
        return 0;
    return strcmp(statistic, "average_order_value") != 0 &&
           strcmp(statistic, "revenue_per_recipient") != 0;
}

void
kmshape_info_clear(struct kmshape_info *info)
{
    if (!info)
        return;
    json_object_put(info->totals);
    info->totals = NULL;
}

/* --- arguments ------------------------------------------------------------------------- */

struct paging {
    int         has_limit, has_offset;
    size_t      limit, offset;
    const char *sort_by;
    int         order;          /* 0: the field's natural order, 1: asc, 2: desc */
};

static void
paging_of(json_object *args, struct paging *p)
{
    json_object *v;
    const char  *order = kmjson_str(args, "sort_order");

    memset(p, 0, sizeof(*p));
    if (json_object_object_get_ex(args, "limit", &v) && v) {
        int64_t n = json_object_get_int64(v);
        p->has_limit = 1;
        p->limit = n > 0 ? (size_t)n : 0;
    }
    if (json_object_object_get_ex(args, "offset", &v) && v) {
        int64_t n = json_object_get_int64(v);
        p->has_offset = 1;
        p->offset = n > 0 ? (size_t)n : 0;
    }
    p->sort_by = kmjson_str(args, "sort_by");
    if (order)
        p->order = strcmp(order, "asc") == 0 ? 1 : 2;
}

/* --- sorting --------------------------------------------------------------------------- */

struct keyed {
    json_object *v;         /* the row or series (borrowed) */
    size_t       idx;       /* its place in the tool's order: ties keep it */
    int          null;      /* no value: always last */
    double       num;
    const char  *str;
};

/* Nulls last whatever the direction; ties keep the tool's order (a stable sort). */
static int
cmp_keyed(const void *pa, const void *pb, void *arg)
{
    const struct keyed *a = pa, *b = pb;
    int                 sort_desc = *(const int *)arg;
    int                 c = 0;

    if (a->null != b->null)
        return a->null ? 1 : -1;
    if (!a->null) {
        if (a->str || b->str)
            c = strcasecmp(a->str ? a->str : "", b->str ? b->str : "");
        else
            c = a->num < b->num ? -1 : a->num > b->num ? 1 : 0;
        if (sort_desc)
            c = -c;
    }
    if (c == 0)
        c = a->idx < b->idx ? -1 : a->idx > b->idx ? 1 : 0;
    return c;
}

static void
sort_keyed(struct keyed *k, size_t n, int desc)
{
    qsort_r(k, n, sizeof(*k), cmp_keyed, &desc);
}

/* --- list tools ------------------------------------------------------------------------ */

static json_object *
metric_totals(json_object *rows)
{
    kmmetrics    m = { 0 };
    json_object *o = json_object_new_object();

    for (size_t i = 0; i < json_object_array_length(rows); i++) {
        json_object *r = json_object_array_get_idx(rows, i);

        m.sent += kmjson_num(r, "sent", 0);
        m.delivered += kmjson_num(r, "delivered", 0);
        m.opens += kmjson_num(r, "opens", 0);
        m.clicks += kmjson_num(r, "clicks", 0);
        m.bounces += kmjson_num(r, "bounces", 0);
        m.unsubscribes += kmjson_num(r, "unsubscribes", 0);
        m.conversions += kmjson_num(r, "conversions", 0);
        m.conversion_value += kmjson_num(r, "conversion_value", 0);
    }
    kmt_metrics_put(o, &m);
    return o;
}

static int
listed(const char *const *list, const char *s)
{
    for (size_t i = 0; list && list[i]; i++) {
        if (strcmp(list[i], s) == 0)
            return 1;
    }
    return 0;
}

static kmcode
shape_rows(const struct kmshape_spec *spec, const struct paging *p, kmshape_view view,
           json_object *data, struct kmshape_info *info, kmerr *err)
{
    json_object  *rows = kmjson_get(data, spec->rows);
    json_object  *out;
    struct keyed *k;
    size_t        n, end;
    int           numeric = 0;

    if (!rows || !json_object_is_type(rows, json_type_array))
        return KM_OK;
    n = json_object_array_length(rows);
    info->total = info->shown = n;
    if (spec->metric_rows)
        info->totals = metric_totals(rows);
    info->limit = p->has_limit ? p->limit : view == KMSHAPE_MODEL ? KMSHAPE_MODEL_ROWS : 0;
    info->offset = p->offset;
    info->sort_by = p->sort_by ? p->sort_by : view == KMSHAPE_MODEL ? spec->model_sort : NULL;
    info->paged = view == KMSHAPE_MODEL || p->has_limit || p->has_offset || p->sort_by;
    if (!info->paged)
        return KM_OK;
    if (info->sort_by && !listed(spec->sortable, info->sort_by))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "sort_by: '%.40s' is not a field of %s",
                         info->sort_by, spec->noun);

    k = km_xcalloc(n ? n : 1, sizeof(*k));
    for (size_t i = 0; i < n; i++) {
        json_object *r = json_object_array_get_idx(rows, i);
        json_object *v = info->sort_by ? kmjson_get(r, info->sort_by) : NULL;

        k[i].v = r;
        k[i].idx = i;
        k[i].null = info->sort_by && !v;
        if (json_object_is_type(v, json_type_string)) {
            k[i].str = json_object_get_string(v);
        } else if (v) {
            k[i].num = json_object_get_double(v);
            numeric = 1;
        }
    }
    if (info->sort_by) {
        /* numbers read best highest first, names A to Z */
        info->desc = p->order ? p->order == 2 : numeric;
        sort_keyed(k, n, info->desc);
    }
    end = info->offset < n ? info->offset : n;
    end = info->limit && n - end > info->limit ? end + info->limit : n;
    out = json_object_new_array_ext((int)(end > info->offset ? end - info->offset : 0));
    for (size_t i = info->offset; i < end; i++)
        json_object_array_add(out, json_object_get(k[i].v));
    free(k);
    info->shown = json_object_array_length(out);
    info->truncated = info->shown < n;
    json_object_object_add(data, spec->rows, out);
    json_object_object_add(data, "truncated", json_object_new_boolean(info->truncated));
    json_object_object_add(data, "total_count", json_object_new_int64((int64_t)n));
    return KM_OK;
}

/* --- series ---------------------------------------------------------------------------- */

/* The statistic that ranks series when the caller named none. */
static const char *
default_rank(json_object *stats)
{
    const char *first = NULL;

    if (!stats)
        return NULL;
    if (kmjson_get(stats, "conversion_value"))
        return "conversion_value";
    json_object_object_foreach(stats, key, val) {
        (void)val;
        if (!first && kmshape_additive(key))
            first = key;
    }
    return first;
}

static double
sum_of(json_object *arr)
{
    double s = 0;

    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (v)
            s += json_object_get_double(v);
    }
    return s;
}

/* One series summing k[from..n): additive statistics added bucket by bucket (null only
 * where every series is null), ratios null (a sum of rates means nothing). */
static json_object *
other_series(json_object *stats0, const struct keyed *k, size_t from, size_t n)
{
    json_object *o = json_object_new_object();
    json_object *g = json_object_new_object();
    json_object *st = json_object_new_object();

    json_object_object_add(g, "other", json_object_new_boolean(1));
    json_object_object_add(g, "series_count", json_object_new_int64((int64_t)(n - from)));
    json_object_object_foreach(stats0, name, arr0) {
        size_t       nb = json_object_array_length(arr0);
        json_object *sum = json_object_new_array_ext((int)nb);

        for (size_t b = 0; b < nb; b++) {
            double s = 0;
            int    any = 0;

            for (size_t i = from; kmshape_additive(name) && i < n; i++) {
                json_object *a = kmjson_get(kmjson_get(k[i].v, "statistics"), name);
                json_object *v = json_object_array_get_idx(a, b);
                if (v) {
                    s += json_object_get_double(v);
                    any = 1;
                }
            }
            json_object_array_add(sum, any ? kmjson_double(kmjson_round(s, 4)) : NULL);
        }
        json_object_object_add(st, name, sum);
    }
    json_object_object_add(o, "groupings", g);
    json_object_object_add(o, "statistics", st);
    return o;
}

static kmcode
shape_series(const struct paging *p, kmshape_view view, json_object *data,
             struct kmshape_info *info, kmerr *err)
{
    json_object  *series = kmjson_get(data, "series");
    json_object  *stats0, *out;
    struct keyed *k;
    size_t        n, keep;

    if (!series || !json_object_is_type(series, json_type_array))
        return KM_OK;
    n = json_object_array_length(series);
    info->total = info->shown = n;
    info->limit = p->has_limit ? p->limit : view == KMSHAPE_MODEL ? KMSHAPE_MODEL_SERIES : 0;
    info->paged = view == KMSHAPE_MODEL || p->has_limit || p->sort_by;
    if (!info->paged)
        return KM_OK;
    stats0 = kmjson_get(json_object_array_get_idx(series, 0), "statistics");
    info->sort_by = p->sort_by ? p->sort_by : default_rank(stats0);
    if (n > 0 && p->sort_by && !kmjson_get(stats0, p->sort_by))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "sort_by: '%.40s' is not among the "
                         "statistics of this series (add it to statistics)", p->sort_by);
    info->desc = p->order ? p->order == 2 : 1;

    k = km_xcalloc(n ? n : 1, sizeof(*k));
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(series, i);
        json_object *a = info->sort_by ? kmjson_get(kmjson_get(s, "statistics"), info->sort_by)
                                       : NULL;
        k[i].v = s;
        k[i].idx = i;
        k[i].null = info->sort_by && !a;
        k[i].num = sum_of(a);
    }
    if (info->sort_by)
        sort_keyed(k, n, info->desc);
    keep = info->limit && n > info->limit ? info->limit : n;
    out = json_object_new_array_ext((int)(keep + 1));
    for (size_t i = 0; i < keep; i++)
        json_object_array_add(out, json_object_get(k[i].v));
    if (keep < n)
        json_object_array_add(out, other_series(stats0, k, keep, n));
    free(k);
    info->shown = keep;
    info->other = n - keep;
    info->truncated = keep < n;
    json_object_object_add(data, "series", out);
    json_object_object_add(data, "truncated", json_object_new_boolean(info->truncated));
    json_object_object_add(data, "total_count", json_object_new_int64((int64_t)n));
    return KM_OK;
}

kmcode
kmshape_check(const struct kmshape_spec *spec, json_object *args, kmerr *err)
{
    const char  *sort_by = kmjson_str(args, "sort_by");
    json_object *stats = kmjson_get(args, "statistics");

    if (!spec || !spec->series || !sort_by || !stats)
        return KM_OK;
    for (size_t i = 0; i < json_object_array_length(stats); i++) {
        if (strcmp(json_object_get_string(json_object_array_get_idx(stats, i)), sort_by) == 0)
            return KM_OK;
    }
    return kmerr_set(err, KM_INVALID_ARGUMENT, "sort_by: '%.40s' must be one of statistics",
                     sort_by);
}

kmcode
kmshape_apply(const struct kmshape_spec *spec, json_object *args, kmshape_view view,
              json_object *data, struct kmshape_info *info, kmerr *err)
{
    struct paging p;

    memset(info, 0, sizeof(*info));
    if (!spec || !data)
        return KM_OK;
    paging_of(args, &p);
    if (spec->series)
        return shape_series(&p, view, data, info, err);
    return shape_rows(spec, &p, view, data, info, err);
}
