/* simagg.c — the simulator's metric aggregates endpoint (REFERENCE.md §6.2): counts, sums
 * and unique counts of one metric's events between a greater-or-equal and a less-than bound in
 * the request's timezone, by interval and by dimensions, with buckets aligned in that timezone
 * and written in UTC; the messages' events come from the same day counts as the reports. */
#include "json.h"
#include "simfilter.h"
#include "simint.h"
#include "simstats.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const agg_fields[] = { "metric_id", "measurements", "interval", "filter",
                                          "by", "timezone", "page_size", "page_cursor", "sort",
                                          "return_fields", NULL };

static const char *const by_dims[] = {
    "$attributed_channel", "$attributed_flow", "$attributed_message", "$attributed_variation",
    "$campaign_channel", "$flow", "$flow_channel", "$message", "$message_send_cohort",
    "$value_currency", "$variation", "$variation_send_cohort", "Bot Click", "Bounce Type",
    "Campaign Name", "Client Canonical", "Client Name", "Client Type", "Email Domain",
    "Failure Source", "Failure Type", "From Number", "From Phone Region", "Inbox Provider",
    "List", "Message Name", "Message Type", "Method", "Subject", "To Number", "To Phone Region",
    "URL", "form_id", NULL
};

enum { M_COUNT = 0, M_SUM, M_UNIQUE, M_N };
static const char *const measurement_names[M_N] = { "count", "sum_value", "unique" };

struct aggrow {
    char   dim[80];          /* the List or message value ("" when the row has none) */
    double *v[M_N];          /* per bucket */
    double total[M_N];
};

/* Metrics whose events come from messages: with by $message (or $attributed_message for the
 * conversion metric) each campaign message's events are a row of their own, counted from the
 * campaign's hourly activity at the hour's event instant (by event time). */
struct msgmetric {
    const char   *name;
    int           channel;     /* enum simchan, or -1 for both (orders) */
    enum simcount count, unique, value;   /* value: SIMC_COUNT for none */
};

static const struct msgmetric msg_metrics[] = {
    { "Received Email", SIM_EMAIL, SIMC_DELIVERED, SIMC_DELIVERED, SIMC_COUNT },
    { "Opened Email", SIM_EMAIL, SIMC_OPENS, SIMC_OPENS_UNIQUE, SIMC_COUNT },
    { "Clicked Email", SIM_EMAIL, SIMC_CLICKS, SIMC_CLICKS_UNIQUE, SIMC_COUNT },
    { "Bounced Email", SIM_EMAIL, SIMC_BOUNCED, SIMC_BOUNCED, SIMC_COUNT },
    { "Unsubscribed", SIM_EMAIL, SIMC_UNSUBSCRIBES, SIMC_UNSUBSCRIBE_UNIQUES, SIMC_COUNT },
    { "Received SMS", SIM_SMS, SIMC_DELIVERED, SIMC_DELIVERED, SIMC_COUNT },
    { "Clicked SMS", SIM_SMS, SIMC_CLICKS, SIMC_CLICKS_UNIQUE, SIMC_COUNT },
    { "Failed to Deliver SMS", SIM_SMS, SIMC_BOUNCED, SIMC_BOUNCED, SIMC_COUNT },
};
static const struct msgmetric order_metric = { "Placed Order", -1, SIMC_CONVERSIONS,
                                               SIMC_CONVERSION_UNIQUES, SIMC_CONVERSION_CENTS };

struct agg {
    const simtz *zone;
    int64_t      ge, lt;
    int64_t     *bounds;     /* nb + 1 instants */
    size_t       nb;
    int          want[M_N];
    int          by_list;
    int          by_msg;     /* by $message or $attributed_message */
    size_t       nby;
    struct aggrow *rows;
    size_t         nrows, caprows;
};

static int64_t
bound_instant(const simtz *z, const struct simfval *v)
{
    if (v->has_off)
        return simfilter_utc(v);
    return simtz_local_to_utc(z, v->day, v->sec);
}

/* Bucket starts aligned to the interval in zone z, from the one holding ge to past lt. */
static void
agg_bounds(struct agg *g, const char *interval)
{
    kmday  day;
    int    sec, y, m, d;
    size_t cap = 64;

    g->bounds = km_xcalloc(cap, sizeof(*g->bounds));
    simtz_utc_to_local(g->zone, g->ge, &day, &sec);
    kmdate_to_ymd(day, &y, &m, &d);
    g->nb = 0;
    for (;;) {
        int64_t b;
        if (strcmp(interval, "hour") == 0) {
            b = g->nb == 0 ? simtz_local_to_utc(g->zone, day, sec - sec % 3600)
                           : g->bounds[g->nb - 1] + 3600;
        } else if (strcmp(interval, "day") == 0) {
            b = simtz_local_to_utc(g->zone, day + (kmday)g->nb, 0);
        } else if (strcmp(interval, "week") == 0) {
            b = simtz_local_to_utc(g->zone, day - kmdate_weekday(day) + 7 * (kmday)g->nb, 0);
        } else {
            int mm = m - 1 + (int)g->nb;
            b = simtz_local_to_utc(g->zone, kmdate_from_ymd(y + mm / 12, mm % 12 + 1, 1), 0);
        }
        if (g->nb + 1 >= cap) {
            cap *= 2;
            g->bounds = km_xrealloc(g->bounds, cap * sizeof(*g->bounds));
        }
        g->bounds[g->nb] = b;
        if (b >= g->lt && g->nb > 0)
            break;
        g->nb++;
    }
}

static size_t
bucket_of(const struct agg *g, int64_t t)
{
    size_t lo = 0, hi = g->nb;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->bounds[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

static struct aggrow *
agg_row(struct agg *g, const char *dim)
{
    struct aggrow *row;

    for (size_t i = 0; i < g->nrows; i++) {
        if (strcmp(g->rows[i].dim, dim) == 0)
            return &g->rows[i];
    }
    if (g->nrows == g->caprows) {
        g->caprows = g->caprows ? g->caprows * 2 : 8;
        g->rows = km_xrealloc(g->rows, g->caprows * sizeof(*g->rows));
    }
    row = &g->rows[g->nrows++];
    memset(row, 0, sizeof(*row));
    km_strlcpy(row->dim, dim, sizeof(row->dim));
    for (int k = 0; k < M_N; k++)
        row->v[k] = km_xcalloc(g->nb ? g->nb : 1, sizeof(double));
    return row;
}

/* Add the events of metric m (list l) in [ge, lt) to the row named dim. */
static void
agg_collect(struct agg *g, const struct simacct *a, const struct simmetric *m,
            const struct simlist *l, const char *dim)
{
    kmday          d0, d1;
    int            sec;
    struct aggrow *row = NULL;

    simtz_utc_to_local(a->zone, g->ge, &d0, &sec);
    simtz_utc_to_local(a->zone, g->lt, &d1, &sec);
    for (simhour h = simdata_hour(d0, 0); h <= simdata_hour(d1, 23); h++) {
        struct simevents ev;
        int64_t          t;
        size_t           k;

        simstat_events(a, m, l, h, &ev);
        if (!ev.count)
            continue;
        t = simstat_event_instant(a, h);
        if (t < g->ge || t >= g->lt)
            continue;
        if (!row)
            row = agg_row(g, dim);
        k = bucket_of(g, t);
        row->v[M_COUNT][k] += (double)ev.count;
        row->v[M_UNIQUE][k] += (double)ev.unique;
        row->v[M_SUM][k] += (double)ev.value_cents / 100.0;
    }
}

/* Add each campaign's events of message metric mm in [ge, lt) to the row of its message. */
static void
agg_collect_messages(struct agg *g, const struct simacct *a, const struct msgmetric *mm)
{
    for (size_t i = 0; i < a->n_campaigns; i++) {
        const struct simcampaign *c = &a->campaigns[i];
        struct aggrow            *row = NULL;
        simhour                   lo, hi;
        char                      mid[28];

        if (!c->active || (mm->channel >= 0 && (int)c->channel != mm->channel))
            continue;
        simstat_campaign_span(c, &lo, &hi);
        simapi_campaign_message_id(c, mid);
        for (simhour h = lo; h <= hi; h++) {
            struct simcounts cnt;
            int64_t          t = simstat_event_instant(a, h);
            size_t           k;

            if (t < g->ge || t >= g->lt)
                continue;
            memset(&cnt, 0, sizeof(cnt));
            simstat_campaign(a, c, h, h, &cnt);
            if (!cnt.v[mm->count])
                continue;
            if (!row)
                row = agg_row(g, mid);
            k = bucket_of(g, t);
            row->v[M_COUNT][k] += (double)cnt.v[mm->count];
            row->v[M_UNIQUE][k] += (double)cnt.v[mm->unique];
            if (mm->value != SIMC_COUNT)
                row->v[M_SUM][k] += (double)cnt.v[mm->value] / 100.0;
        }
    }
}

/* The message metric `m` is, for a by with $message ($attributed_message for the conversion
 * metric); NULL when its events have no message. */
static const struct msgmetric *
msg_metric_of(const struct simacct *a, const struct simmetric *m, json_object *by)
{
    int attributed = 0, plain = 0;

    for (size_t i = 0; by && i < json_object_array_length(by); i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(by, i));

        attributed |= v && strcmp(v, "$attributed_message") == 0;
        plain |= v && strcmp(v, "$message") == 0;
    }
    if (attributed && m == &a->metrics[a->conversion_metric])
        return &order_metric;
    if (!plain || strcmp(m->integration_key, "klaviyo") != 0)
        return NULL;
    for (size_t i = 0; i < sizeof(msg_metrics) / sizeof(msg_metrics[0]); i++) {
        if (strcmp(m->name, msg_metrics[i].name) == 0)
            return &msg_metrics[i];
    }
    return NULL;
}

static void
agg_free(struct agg *g)
{
    for (size_t i = 0; i < g->nrows; i++) {
        for (int k = 0; k < M_N; k++)
            free(g->rows[i].v[k]);
    }
    free(g->rows);
    free(g->bounds);
}

static int
agg_bounds_filter(struct simreq *r, json_object *fl, const simtz *z, int64_t *ge, int64_t *lt)
{
    int  have_ge = 0, have_lt = 0;
    char why[300], detail[400];

    if (!fl) {
        sim_required(r, "filter");
        return -1;
    }
    if (!json_object_is_type(fl, json_type_array)) {
        sim_invalid(r, "filter must be a list of expressions.", "pointer",
                    "/data/attributes/filter");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(fl); i++) {
        json_object     *e = json_object_array_get_idx(fl, i);
        struct simfilter f;

        if (!json_object_is_type(e, json_type_string) ||
            simfilter_parse(json_object_get_string(e), &f, why, sizeof(why)) != 0) {
            snprintf(detail, sizeof(detail), "Invalid filter provided: %s",
                     json_object_is_type(e, json_type_string) ? why : "expected a string");
            sim_invalid(r, detail, "pointer", "/data/attributes/filter");
            return -1;
        }
        for (size_t k = 0; k < f.n; k++) {
            const struct simcond *c = &f.c[k];
            int                   is_ge = strcmp(c->op, "greater-or-equal") == 0;
            int                   is_lt = strcmp(c->op, "less-than") == 0;

            if (strcmp(c->field, "datetime") != 0 || (!is_ge && !is_lt) ||
                c->val.kind != SFV_DATETIME || (is_ge && have_ge) || (is_lt && have_lt)) {
                snprintf(detail, sizeof(detail), "Invalid filter provided: the simulator "
                         "accepts one greater-or-equal(datetime,...) and one "
                         "less-than(datetime,...) with bare datetimes (got %.40s on %.40s).",
                         c->op, c->field);
                simfilter_free(&f);
                sim_invalid(r, detail, "pointer", "/data/attributes/filter");
                return -1;
            }
            if (is_ge) {
                have_ge = 1;
                *ge = bound_instant(z, &c->val);
            } else {
                have_lt = 1;
                *lt = bound_instant(z, &c->val);
            }
        }
        simfilter_free(&f);
    }
    if (!have_ge || !have_lt) {
        sim_invalid(r, "The filter must bound datetime with greater-or-equal and less-than.",
                    "pointer", "/data/attributes/filter");
        return -1;
    }
    if (*ge >= *lt) {
        sim_invalid(r, "The start of the datetime range must be before its end.", "pointer",
                    "/data/attributes/filter");
        return -1;
    }
    {
        kmday day;
        int   sec;
        simtz_utc_to_local(z, *ge, &day, &sec);
        if (*lt > simtz_local_to_utc(z, sim_add_year(day), sec)) {
            sim_invalid(r, "The datetime range may not be longer than 1 year.", "pointer",
                        "/data/attributes/filter");
            return -1;
        }
    }
    return 0;
}

/* page_cursor for aggregate rows: base64 is not needed, the offset is opaque enough */
static int
agg_offset(struct simreq *r, json_object *at, size_t nrows, size_t *off)
{
    const char *c = kmjson_str(at, "page_cursor");
    char       *end = NULL;
    long        v;

    if (!c)
        c = sim_q(r, "page_cursor");
    *off = 0;
    if (!c)
        return 0;
    v = strncmp(c, "agg-", 4) == 0 ? strtol(c + 4, &end, 10) : -1;
    if (v < 0 || !end || *end || (size_t)v >= nrows) {
        sim_invalid(r, "Invalid cursor provided.", "pointer", "/data/attributes/page_cursor");
        return -1;
    }
    *off = (size_t)v;
    return 0;
}

/* sort = "count" or "-count" (descending) */
static int
cmp_rows(const void *x, const void *y, void *arg)
{
    const struct aggrow *a = x, *b = y;
    const char          *sort = *(const char **)arg;
    int                  desc = sort[0] == '-', k = M_COUNT;
    double               d;

    for (int i = 0; i < M_N; i++) {
        if (strcmp(measurement_names[i], sort + desc) == 0)
            k = i;
    }
    d = a->total[k] - b->total[k];
    if (desc)
        d = -d;
    return d < 0 ? -1 : d > 0 ? 1 : strcmp(a->dim, b->dim);
}

void
simagg_metric_aggregates(struct simreq *r)
{
    static const char *const allowed[] = { "page_cursor", NULL };
    const struct simacct    *a = r->acct;
    const struct simmetric  *m;
    json_object             *at, *arr, *by, *attrs, *data, *rows, *links;
    const char              *tzname, *interval, *metric_id, *sort;
    struct agg               g;
    size_t                   page_size = 500, off = 0;
    char                     detail[300], id[32];

    memset(&g, 0, sizeof(g));
    if (sim_q_allow(r, allowed) != 0)
        return;
    at = sim_attributes(r, "metric-aggregate", agg_fields);
    if (!at)
        return;
    metric_id = kmjson_str(at, "metric_id");
    if (!kmjson_get(at, "metric_id")) {
        sim_required(r, "metric_id");
        return;
    }
    m = metric_id ? simdata_metric(a, metric_id) : NULL;
    if (!m) {
        snprintf(detail, sizeof(detail), "Metric IDs ['%.40s'] do not exist.",
                 metric_id ? metric_id : "");
        sim_invalid(r, detail, "pointer", "/data/attributes/metric_id");
        return;
    }
    arr = kmjson_get(at, "measurements");
    if (!arr || !json_object_is_type(arr, json_type_array) ||
        json_object_array_length(arr) == 0) {
        sim_invalid(r, "measurements is required: a non-empty list of count, sum_value, "
                       "unique.", "pointer", "/data/attributes/measurements");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(arr, i));
        int         k = -1;
        for (int j = 0; j < M_N; j++) {
            if (v && strcmp(v, measurement_names[j]) == 0)
                k = j;
        }
        if (k < 0) {
            char ptr[64];
            snprintf(detail, sizeof(detail), "'%.40s' is not a valid choice for "
                     "'measurements'.", v ? v : "");
            snprintf(ptr, sizeof(ptr), "/data/attributes/measurements/%zu", i);
            sim_invalid(r, detail, "pointer", ptr);
            continue;
        }
        g.want[k] = 1;
    }
    interval = kmjson_get(at, "interval") ? kmjson_str(at, "interval") : "day";
    if (!interval || (strcmp(interval, "hour") != 0 && strcmp(interval, "day") != 0 &&
                      strcmp(interval, "week") != 0 && strcmp(interval, "month") != 0)) {
        sim_invalid(r, "interval is one of hour, day, week, month.", "pointer",
                    "/data/attributes/interval");
    }
    tzname = kmjson_get(at, "timezone") ? kmjson_str(at, "timezone") : "UTC";
    /* Klaviyo refuses a few names the tz database has */
    if (tzname && strcmp(tzname, "Factory") != 0 && strcmp(tzname, "Europe/Kyiv") != 0 &&
        strcmp(tzname, "Pacific/Kanton") != 0)
        g.zone = simtz_get(tzname);
    if (!g.zone) {
        snprintf(detail, sizeof(detail), "'%.60s' is not a valid timezone.",
                 tzname ? tzname : "");
        sim_invalid(r, detail, "pointer", "/data/attributes/timezone");
    }
    by = kmjson_get(at, "by");
    if (by) {
        if (!json_object_is_type(by, json_type_array)) {
            sim_invalid(r, "by must be a list.", "pointer", "/data/attributes/by");
        } else {
            for (size_t i = 0; i < json_object_array_length(by); i++) {
                const char *v = json_object_get_string(json_object_array_get_idx(by, i));
                int         ok = 0;
                for (size_t j = 0; by_dims[j]; j++) {
                    if (v && strcmp(v, by_dims[j]) == 0)
                        ok = 1;
                }
                if (!ok) {
                    char ptr[64];
                    snprintf(detail, sizeof(detail), "'%.40s' is not a valid choice for 'by'.",
                             v ? v : "");
                    snprintf(ptr, sizeof(ptr), "/data/attributes/by/%zu", i);
                    sim_invalid(r, detail, "pointer", ptr);
                } else if (strcmp(v, "List") == 0) {
                    g.by_list = 1;
                } else if (strcmp(v, "$message") == 0 ||
                           strcmp(v, "$attributed_message") == 0) {
                    g.by_msg = 1;
                }
            }
            g.nby = json_object_array_length(by);
        }
    }
    if (kmjson_get(at, "page_size")) {
        json_object *ps = kmjson_get(at, "page_size");
        int64_t      v = json_object_is_type(ps, json_type_int) ? json_object_get_int64(ps) : 0;
        if (v < 1 || v > 500)
            sim_invalid(r, "page_size must be an integer from 1 to 500.", "pointer",
                        "/data/attributes/page_size");
        else
            page_size = (size_t)v;
    }
    sort = kmjson_str(at, "sort");
    if (sort) {
        const char *k = sort[0] == '-' ? sort + 1 : sort;
        int         ok = 0;
        for (int j = 0; j < M_N; j++) {
            if (strcmp(k, measurement_names[j]) == 0 && g.want[j])
                ok = 1;
        }
        if (!ok)
            sim_invalid(r, "sort must name one of the requested measurements, optionally with "
                           "a leading '-'.", "pointer", "/data/attributes/sort");
    }
    if (sim_failed(r) ||
        agg_bounds_filter(r, kmjson_get(at, "filter"), g.zone, &g.ge, &g.lt) != 0)
        return;

    agg_bounds(&g, interval);
    if (simstat_metric_per_list(m)) {
        for (size_t i = 0; i < a->n_lists; i++)
            agg_collect(&g, a, m, &a->lists[i], g.by_list ? a->lists[i].name : "");
    } else {
        const struct msgmetric *mm = g.by_msg ? msg_metric_of(a, m, by) : NULL;

        /* the metric's own stream has no message: it counts under the empty value */
        agg_collect(&g, a, m, NULL, "");
        if (mm)
            agg_collect_messages(&g, a, mm);
    }
    if (g.nby == 0 && g.nrows == 0)
        (void)agg_row(&g, "");   /* without `by` there is always one row */
    for (size_t i = 0; i < g.nrows; i++) {
        for (int k = 0; k < M_N; k++) {
            for (size_t b = 0; b < g.nb; b++)
                g.rows[i].total[k] += g.rows[i].v[k][b];
        }
    }
    if (sort)
        qsort_r(g.rows, g.nrows, sizeof(*g.rows), cmp_rows, &sort);
    if (agg_offset(r, at, g.nrows, &off) != 0)
        goto out;

    attrs = json_object_new_object();
    arr = json_object_new_array();
    for (size_t b = 0; b < g.nb; b++) {
        char t[32];
        simtz_format_utc(g.bounds[b], t);
        json_object_array_add(arr, json_object_new_string(t));
    }
    json_object_object_add(attrs, "dates", arr);
    rows = json_object_new_array();
    for (size_t i = off; i < g.nrows && i < off + page_size; i++) {
        json_object *row = json_object_new_object(), *dims = json_object_new_array();
        json_object *ms = json_object_new_object();

        for (size_t d = 0; d < g.nby; d++) {
            const char *dim = json_object_get_string(json_object_array_get_idx(by, d));
            int mine = strcmp(dim, "List") == 0 || strcmp(dim, "$message") == 0 ||
                       strcmp(dim, "$attributed_message") == 0;

            json_object_array_add(dims, json_object_new_string(mine ? g.rows[i].dim : ""));
        }
        for (int k = 0; k < M_N; k++) {
            json_object *vals;
            if (!g.want[k])
                continue;
            vals = json_object_new_array();
            for (size_t b = 0; b < g.nb; b++)
                json_object_array_add(vals, kmjson_double(kmjson_round(g.rows[i].v[k][b], 2)));
            json_object_object_add(ms, measurement_names[k], vals);
        }
        json_object_object_add(row, "dimensions", dims);
        json_object_object_add(row, "measurements", ms);
        json_object_array_add(rows, row);
    }
    json_object_object_add(attrs, "data", rows);
    data = json_object_new_object();
    json_object_object_add(data, "type", json_object_new_string("metric-aggregate"));
    /* a long digit string, like Klaviyo's */
    snprintf(id, sizeof(id), "%llu",
             (unsigned long long)(simdata_mix(++r->sim->serial ^ 0xa66ULL) %
                                      9000000000000000000ULL +
                                  1000000000000000000ULL));
    json_object_object_add(data, "id", json_object_new_string(id));
    json_object_object_add(data, "attributes", attrs);
    links = sim_self_links(r, "/api/metric-aggregates");
    if (off + page_size < g.nrows) {
        char *u = km_xasprintf("%s/api/metric-aggregates/?page_cursor=agg-%zu",
                               r->sim->base_url, off + page_size);
        json_object_object_add(links, "next", json_object_new_string(u));
        free(u);
    }
    json_object_object_add(data, "links", links);
    r->doc = json_object_new_object();
    json_object_object_add(r->doc, "data", data);
    json_object_object_add(r->doc, "links", sim_self_links(r, "/api/metric-aggregates"));
out:
    agg_free(&g);
}
