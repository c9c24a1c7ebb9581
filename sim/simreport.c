/* simreport.c — the simulator's report endpoints: campaign and flow values reports and the flow
 * series report (REFERENCE.md §5). Windows are read as Klaviyo reads them: report timeframes in
 * the account's timezone, offsets ignored, both ends inclusive and the end rounded up to the
 * end of its hour. Metric aggregates (§6.2), the other POST endpoint, are simagg.c's. */
#include "json.h"
#include "simfilter.h"
#include "simint.h"
#include "simstats.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400
#define MAX_FILTER_VALUES 100

/* --- body ----------------------------------------------------------------------------------- */

static int
no_page_cursor(struct simreq *r)
{
    static const char *const allowed[] = { "page_cursor", NULL };

    if (sim_q_allow(r, allowed) != 0)
        return -1;
    if (sim_q(r, "page_cursor")) {
        sim_invalid(r, "Invalid cursor provided.", "parameter", "page_cursor");
        return -1;
    }
    return 0;
}

/* --- report windows ------------------------------------------------------------------------ */

struct window {
    simhour from, to;    /* local hours, inclusive */
    int64_t start, end;  /* local wall seconds (day * 86400 + sec) as sent */
};

static simhour
hour_floor(int64_t local_sec)
{
    int64_t h = local_sec / 3600;

    if (local_sec % 3600 < 0)
        h--;
    return h;
}

/* A timeframe key's days relative to `today` (REFERENCE.md §5.1 names); -1 when unknown. */
static int
key_days(const char *key, kmday today, kmday *s, kmday *e)
{
    int y, m, d, wd = kmdate_weekday(today);

    kmdate_to_ymd(today, &y, &m, &d);
    if (strcmp(key, "today") == 0) {
        *s = *e = today;
    } else if (strcmp(key, "yesterday") == 0) {
        *s = *e = today - 1;
    } else if (strcmp(key, "this_week") == 0) {
        *s = today - wd;
        *e = today;
    } else if (strcmp(key, "last_week") == 0) {
        *s = today - wd - 7;
        *e = today - wd - 1;
    } else if (strcmp(key, "last_7_days") == 0) {
        *s = today - 7;
        *e = today - 1;
    } else if (strcmp(key, "last_30_days") == 0) {
        *s = today - 30;
        *e = today - 1;
    } else if (strcmp(key, "last_90_days") == 0) {
        *s = today - 90;
        *e = today - 1;
    } else if (strcmp(key, "last_365_days") == 0) {
        *s = today - 365;
        *e = today - 1;
    } else if (strcmp(key, "this_month") == 0) {
        *s = kmdate_from_ymd(y, m, 1);
        *e = today;
    } else if (strcmp(key, "last_month") == 0 || strcmp(key, "last_3_months") == 0 ||
               strcmp(key, "last_12_months") == 0) {
        int back = key[5] == 'm' ? 1 : key[5] == '3' ? 3 : 12;
        int sy = y, sm = m - back;
        while (sm < 1) {
            sm += 12;
            sy--;
        }
        *s = kmdate_from_ymd(sy, sm, 1);
        *e = kmdate_from_ymd(y, m, 1) - 1;
    } else if (strcmp(key, "this_year") == 0) {
        *s = kmdate_from_ymd(y, 1, 1);
        *e = today;
    } else if (strcmp(key, "last_year") == 0) {
        *s = kmdate_from_ymd(y - 1, 1, 1);
        *e = kmdate_from_ymd(y, 1, 1) - 1;
    } else {
        return -1;
    }
    return 0;
}

/* Read attributes.timeframe into a local window; 0 or -1 after recording errors. */
static int
timeframe(struct simreq *r, json_object *at, struct window *w)
{
    json_object   *tf = kmjson_get(at, "timeframe");
    const char    *key, *s, *e;
    struct simfval sv, ev;
    char           detail[200];

    if (!tf) {
        sim_required(r, "timeframe");
        return -1;
    }
    if (!json_object_is_type(tf, json_type_object)) {
        sim_invalid(r, "timeframe must be an object with 'key', or 'start' and 'end'.",
                    "pointer", "/data/attributes/timeframe");
        return -1;
    }
    key = kmjson_str(tf, "key");
    if (key) {
        kmday today, sd, ed;
        int   sec;

        simtz_utc_to_local(r->acct->zone, sim_now(), &today, &sec);
        if (key_days(key, today, &sd, &ed) != 0) {
            snprintf(detail, sizeof(detail), "'%.40s' is not a valid choice for 'key'.", key);
            sim_invalid(r, detail, "pointer", "/data/attributes/timeframe/key");
            return -1;
        }
        w->start = (int64_t)sd * DAY;
        w->end = (int64_t)ed * DAY + DAY - 1;
        w->from = simdata_hour(sd, 0);
        w->to = simdata_hour(ed, 23);
        return 0;
    }
    s = kmjson_str(tf, "start");
    e = kmjson_str(tf, "end");
    if (!s || simfilter_datetime(s, &sv) != 0) {
        sim_invalid(r, "start must be a datetime such as 2025-03-01T00:00:00.", "pointer",
                    "/data/attributes/timeframe/start");
        return -1;
    }
    if (!e || simfilter_datetime(e, &ev) != 0) {
        sim_invalid(r, "end must be a datetime such as 2025-03-31T23:59:59.", "pointer",
                    "/data/attributes/timeframe/end");
        return -1;
    }
    /* offsets are ignored: the wall time is read in the account's timezone */
    w->start = (int64_t)sv.day * DAY + sv.sec;
    w->end = (int64_t)ev.day * DAY + ev.sec;
    if (w->start >= w->end) {
        sim_invalid(r, "The timeframe's start must be before its end.", "pointer",
                    "/data/attributes/timeframe");
        return -1;
    }
    if (w->end > (int64_t)sim_add_year(sv.day) * DAY + sv.sec) {
        sim_invalid(r, "The timeframe may not be longer than 1 year.", "pointer",
                    "/data/attributes/timeframe");
        return -1;
    }
    w->from = hour_floor(w->start);
    w->to = hour_floor(w->end);   /* the end is rounded up to hh:59:59: its hour counts */
    return 0;
}

static int
statistics(struct simreq *r, json_object *at, int *stats, size_t *n)
{
    json_object *arr = kmjson_get(at, "statistics");
    char         detail[200], ptr[80];

    *n = 0;
    if (!arr) {
        sim_required(r, "statistics");
        return -1;
    }
    if (!json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0) {
        sim_invalid(r, "statistics must be a non-empty list.", "pointer",
                    "/data/attributes/statistics");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        const char  *name = json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                     : NULL;
        int          st = simstat_find(name);

        if (st < 0) {
            snprintf(detail, sizeof(detail), "'%.60s' is not a valid choice for 'statistics'.",
                     name ? name : json_object_to_json_string(v));
            snprintf(ptr, sizeof(ptr), "/data/attributes/statistics/%zu", i);
            sim_invalid(r, detail, "pointer", ptr);
            continue;
        }
        if (*n < SIMSTAT_COUNT * 2)
            stats[(*n)++] = st;
    }
    return sim_failed(r) ? -1 : 0;
}

static int
conversion_metric(struct simreq *r, json_object *at)
{
    const char             *id = kmjson_str(at, "conversion_metric_id");
    const struct simmetric *m;
    char                    detail[200];

    if (!kmjson_get(at, "conversion_metric_id")) {
        sim_required(r, "conversion_metric_id");
        return -1;
    }
    m = id ? simdata_metric(r->acct, id) : NULL;
    if (!m) {
        snprintf(detail, sizeof(detail), "Metric IDs ['%.40s'] do not exist.", id ? id : "");
        sim_invalid(r, detail, "pointer", "/data/attributes/conversion_metric_id");
        return -1;
    }
    if (m->kind != SIM_MK_ORDER) {
        sim_invalid(r, "Passed in conversion metric does not support querying for values data",
                    "pointer", "/data/attributes/conversion_metric_id");
        return -1;
    }
    return 0;
}

/* The report filter (§5.1): equals / contains-any on the entity's fields, one condition per
 * field, only and(...), <= 100 values, send_channel from its enum. */
static int
report_filter(struct simreq *r, json_object *at, int flows, struct simfilter *f)
{
    static const struct simfrule campaign_rules[] = {
        { "campaign_id", "equals contains-any", SFV_STRING },
        { "campaign_message_id", "equals contains-any", SFV_STRING },
        { "send_channel", "equals contains-any", SFV_STRING },
        { NULL, NULL, SFV_STRING },
    };
    static const struct simfrule flow_rules[] = {
        { "flow_id", "equals contains-any", SFV_STRING },
        { "flow_message_id", "equals contains-any", SFV_STRING },
        { "send_channel", "equals contains-any", SFV_STRING },
        { NULL, NULL, SFV_STRING },
    };
    json_object *fv = kmjson_get(at, "filter");
    char         why[300], detail[400];

    memset(f, 0, sizeof(*f));
    if (!fv)
        return 0;
    if (!json_object_is_type(fv, json_type_string)) {
        sim_invalid(r, "filter must be a string.", "pointer", "/data/attributes/filter");
        return -1;
    }
    if (simfilter_parse(json_object_get_string(fv), f, why, sizeof(why)) != 0 ||
        simfilter_check(f, flows ? flow_rules : campaign_rules, why, sizeof(why)) != 0)
        goto bad;
    if (f->top_level > 1) {
        snprintf(why, sizeof(why), "combine conditions with and(...), not commas");
        goto bad;
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct simcond *c = &f->c[i];
        for (size_t j = 0; j < i; j++) {
            if (strcmp(f->c[j].field, c->field) == 0) {
                snprintf(why, sizeof(why), "only one condition per field ('%s' repeats)",
                         c->field);
                goto bad;
            }
        }
        if (c->val.kind == SFV_LIST && c->val.n > MAX_FILTER_VALUES) {
            snprintf(why, sizeof(why), "at most %d values for '%s'", MAX_FILTER_VALUES,
                     c->field);
            goto bad;
        }
        if (strcmp(c->field, "send_channel") == 0) {
            size_t n = c->val.kind == SFV_LIST ? c->val.n : 1;
            for (size_t k = 0; k < n; k++) {
                const char *v = c->val.kind == SFV_LIST ? c->val.items[k].s : c->val.s;
                if (strcmp(v, "email") != 0 && strcmp(v, "sms") != 0 &&
                    strcmp(v, "push-notification") != 0) {
                    snprintf(why, sizeof(why), "'%.40s' is not a valid send_channel", v);
                    goto bad;
                }
            }
        }
    }
    return 0;
bad:
    simfilter_free(f);
    snprintf(detail, sizeof(detail), "Invalid filter provided: %s", why);
    sim_invalid(r, detail, "pointer", "/data/attributes/filter");
    return -1;
}

/* does a row with these groupings pass the report filter? */
static int
row_passes(const struct simfilter *f, const char *id_field, const char *id,
           const char *msg_field, const char *msg, const char *chan)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct simcond *c = &f->c[i];
        const char           *v = strcmp(c->field, id_field) == 0    ? id
                                  : strcmp(c->field, msg_field) == 0 ? msg
                                                                     : chan;
        struct simcond        eq = *c;

        /* contains-any on ids means "any of" here: ids match whole */
        if (strcmp(c->op, "contains-any") == 0)
            km_strlcpy(eq.op, "any", sizeof(eq.op));
        if (!simfilter_match_str(&eq, v))
            return 0;
    }
    return 1;
}

static int
group_by(struct simreq *r, json_object *at, int flows)
{
    json_object *g = kmjson_get(at, "group_by");
    const char  *id = flows ? "flow_id" : "campaign_id";
    const char  *msg = flows ? "flow_message_id" : "campaign_message_id";
    int          has_id = 0, has_msg = 0;

    if (!g)
        return 0;
    if (strcmp(r->revision, "2025-10-15") < 0) {
        sim_invalid(r, "'group_by' is not a valid field for this revision.", "pointer",
                    "/data/attributes/group_by");
        return -1;
    }
    if (!json_object_is_type(g, json_type_array))
        goto bad;
    for (size_t i = 0; i < json_object_array_length(g); i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(g, i));
        if (!v || (strcmp(v, id) != 0 && strcmp(v, msg) != 0 && strcmp(v, "send_channel") != 0))
            goto bad;
        has_id |= strcmp(v, id) == 0;
        has_msg |= strcmp(v, msg) == 0;
    }
    if (has_id && has_msg)
        return 0;
bad:
    sim_invalid(r, flows ? "group_by takes flow_id, flow_message_id (both required) and "
                           "send_channel."
                         : "group_by takes campaign_id, campaign_message_id (both required) and "
                           "send_channel.",
                "pointer", "/data/attributes/group_by");
    return -1;
}

/* --- rows ------------------------------------------------------------------------------- */

static json_object *
stat_object(const struct simcounts *c, const int *stats, size_t n)
{
    json_object *o = json_object_new_object();

    for (size_t i = 0; i < n; i++)
        json_object_object_add(o, simstat_name(stats[i]),
                               kmjson_double(simstat_value(c, stats[i])));
    return o;
}

static json_object *
groupings(const char *id_field, const char *id, const char *msg_field, const char *msg,
          const char *chan)
{
    json_object *g = json_object_new_object();

    json_object_object_add(g, id_field, json_object_new_string(id));
    json_object_object_add(g, "send_channel", json_object_new_string(chan));
    json_object_object_add(g, msg_field, json_object_new_string(msg));
    return g;
}

static void
add_ref_once(json_object *arr, const char *type, const char *id)
{
    json_object *o;

    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        if (strcmp(kmjson_str(json_object_array_get_idx(arr, i), "id"), id) == 0)
            return;
    }
    o = json_object_new_object();
    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_array_add(arr, o);
}

static json_object *
rel_data(json_object *arr)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "data", arr);
    return o;
}

static void
report_doc(struct simreq *r, const char *type, const char *path, json_object *attrs,
           json_object *rels)
{
    json_object *data = json_object_new_object(), *links;
    char         id[40];

    sim_uuid(r->sim, id);
    json_object_object_add(data, "type", json_object_new_string(type));
    json_object_object_add(data, "id", json_object_new_string(id));
    json_object_object_add(data, "attributes", attrs);
    json_object_object_add(data, "relationships", rels);
    r->doc = json_object_new_object();
    json_object_object_add(r->doc, "data", data);
    links = sim_self_links(r, path);
    json_object_object_add(links, "next", NULL);
    json_object_object_add(links, "prev", NULL);
    json_object_object_add(r->doc, "links", links);
}

static const char *const report_fields[] = { "statistics", "timeframe", "conversion_metric_id",
                                             "filter", "group_by", NULL };
static const char *const series_fields[] = { "statistics", "timeframe", "conversion_metric_id",
                                             "filter", "group_by", "interval", NULL };

/* Shared validation of a values/series body; 0 when everything is valid. */
static int
read_report(struct simreq *r, const char *type, int flows, const char *const *fields,
            int *stats, size_t *nstats, struct window *w, struct simfilter *f,
            json_object **at_out)
{
    json_object *at;

    memset(f, 0, sizeof(*f));
    if (no_page_cursor(r) != 0)
        return -1;
    at = sim_attributes(r, type, fields);
    if (!at)
        return -1;
    /* collect every problem, as Klaviyo lists several errors at once */
    (void)statistics(r, at, stats, nstats);
    (void)timeframe(r, at, w);
    (void)conversion_metric(r, at);
    (void)group_by(r, at, flows);
    if (report_filter(r, at, flows, f) != 0)
        return -1;
    *at_out = at;
    if (sim_failed(r)) {
        simfilter_free(f);
        return -1;
    }
    return 0;
}

void
simreport_campaign_values(struct simreq *r)
{
    const struct simacct *a = r->acct;
    int                   stats[SIMSTAT_COUNT * 2];
    size_t                n;
    struct window         w;
    struct simfilter      f;
    json_object          *at, *results, *camps, *attrs, *rels;

    if (read_report(r, "campaign-values-report", 0, report_fields, stats, &n, &w, &f, &at) != 0)
        return;
    results = json_object_new_array();
    camps = json_object_new_array();
    for (size_t i = 0; i < a->n_campaigns; i++) {
        const struct simcampaign *c = &a->campaigns[i];
        const char               *chan = simdata_channel_name(c->channel);
        struct simcounts          cnt;
        json_object              *row;

        if (!c->active || !row_passes(&f, "campaign_id", c->id, "campaign_message_id", c->id,
                                      chan))
            continue;
        memset(&cnt, 0, sizeof(cnt));
        /* by send date: a campaign sent in the window brings all its numbers */
        simstat_campaign_sent(a, c, w.from, w.to, &cnt);
        if (simstat_is_zero(&cnt))
            continue;
        row = json_object_new_object();
        /* campaign_message_id equals campaign_id in report rows, as Klaviyo's do */
        json_object_object_add(row, "groupings", groupings("campaign_id", c->id,
                                                           "campaign_message_id", c->id, chan));
        json_object_object_add(row, "statistics", stat_object(&cnt, stats, n));
        json_object_array_add(results, row);
        add_ref_once(camps, "campaign", c->id);
    }
    attrs = json_object_new_object();
    json_object_object_add(attrs, "results", results);
    rels = json_object_new_object();
    json_object_object_add(rels, "campaigns", rel_data(camps));
    report_doc(r, "campaign-values-report", "/api/campaign-values-reports", attrs, rels);
    simfilter_free(&f);
}

static int
msg_passes(const struct simacct *a, const struct simmsg *m, const struct simfilter *f)
{
    return row_passes(f, "flow_id", a->flows[m->flow].id, "flow_message_id", m->id,
                      simdata_channel_name(m->channel));
}

void
simreport_flow_values(struct simreq *r)
{
    const struct simacct *a = r->acct;
    int                   stats[SIMSTAT_COUNT * 2];
    size_t                n;
    struct window         w;
    struct simfilter      f;
    json_object          *at, *results, *flows, *msgs, *attrs, *rels;

    if (read_report(r, "flow-values-report", 1, report_fields, stats, &n, &w, &f, &at) != 0)
        return;
    results = json_object_new_array();
    flows = json_object_new_array();
    msgs = json_object_new_array();
    for (size_t i = 0; i < a->n_msgs; i++) {
        const struct simmsg *m = &a->msgs[i];
        const char          *fid = a->flows[m->flow].id;
        struct simcounts     cnt;
        json_object         *row;

        if (!msg_passes(a, m, &f))
            continue;
        memset(&cnt, 0, sizeof(cnt));
        simstat_msg(a, m, w.from, w.to, &cnt);
        if (simstat_is_zero(&cnt))
            continue;
        row = json_object_new_object();
        json_object_object_add(row, "groupings",
                               groupings("flow_id", fid, "flow_message_id", m->id,
                                         simdata_channel_name(m->channel)));
        json_object_object_add(row, "statistics", stat_object(&cnt, stats, n));
        json_object_array_add(results, row);
        add_ref_once(flows, "flow", fid);
        add_ref_once(msgs, "flow-message", m->id);
    }
    attrs = json_object_new_object();
    json_object_object_add(attrs, "results", results);
    rels = json_object_new_object();
    json_object_object_add(rels, "flows", rel_data(flows));
    json_object_object_add(rels, "flow-messages", rel_data(msgs));
    report_doc(r, "flow-values-report", "/api/flow-values-reports", attrs, rels);
    simfilter_free(&f);
}

/* Buckets of a series over window w: bucket k covers local hours [b[k], b[k+1]). Returns the
 * count; *starts is a new array of count + 1 hour marks (the last is w.to + 1). */
static size_t
series_buckets(struct window w, kminterval iv, simhour **starts)
{
    size_t n;

    if (iv == KMI_HOURLY) {
        n = (size_t)(w.to - w.from + 1);
        *starts = km_xcalloc(n + 1, sizeof(**starts));
        for (size_t i = 0; i <= n; i++)
            (*starts)[i] = w.from + (simhour)i;
        return n;
    }
    {
        kmrange days = { (kmday)(w.from / 24), (kmday)(w.to / 24) };
        kmday  *d;

        n = kmdate_buckets(days, iv, NULL, 0);
        d = km_xcalloc(n ? n : 1, sizeof(*d));
        kmdate_buckets(days, iv, d, n);
        *starts = km_xcalloc(n + 1, sizeof(**starts));
        for (size_t i = 0; i < n; i++)
            (*starts)[i] = i == 0 ? w.from : simdata_hour(d[i], 0);
        (*starts)[n] = w.to + 1;
        free(d);
    }
    return n;
}

void
simreport_flow_series(struct simreq *r)
{
    const struct simacct *a = r->acct;
    int                   stats[SIMSTAT_COUNT * 2];
    size_t                n, nb;
    struct window         w;
    struct simfilter      f;
    json_object          *at, *results, *flows, *msgs, *attrs, *rels, *dates;
    const char           *ivs;
    kminterval            iv;
    simhour              *b = NULL;
    struct simcounts     *cnt = NULL;
    char                  detail[200];

    if (read_report(r, "flow-series-report", 1, series_fields, stats, &n, &w, &f, &at) != 0) {
        /* an interval problem is reported with the others */
        return;
    }
    ivs = kmjson_str(at, "interval");
    if (!kmjson_get(at, "interval")) {
        sim_required(r, "interval");
        goto out;
    }
    if (!ivs || kmdate_interval_parse(ivs, &iv) != 0) {
        snprintf(detail, sizeof(detail), "'%.40s' is not a valid choice for 'interval'.",
                 ivs ? ivs : json_object_to_json_string(kmjson_get(at, "interval")));
        sim_invalid(r, detail, "pointer", "/data/attributes/interval");
        goto out;
    }
    if (w.end - w.start > (int64_t)kmdate_interval_max_days(iv) * DAY) {
        if (iv == KMI_WEEKLY || iv == KMI_MONTHLY)
            snprintf(detail, sizeof(detail), "Cannot pass in an interval longer than 52 weeks "
                     "for use with %s interval", ivs);
        else
            snprintf(detail, sizeof(detail), "Cannot pass in an interval longer than %d days "
                     "for use with %s interval", kmdate_interval_max_days(iv), ivs);
        sim_invalid(r, detail, "pointer", "/data/attributes/timeframe");
        goto out;
    }
    nb = series_buckets(w, iv, &b);
    dates = json_object_new_array();
    for (size_t k = 0; k < nb; k++) {
        char t[32];

        /* a skipped hour (spring forward) is still written as its own wall time */
        simtz_format_wall(a->zone, (kmday)(b[k] / 24), (int)(b[k] % 24) * 3600, t);
        json_object_array_add(dates, json_object_new_string(t));
    }
    results = json_object_new_array();
    flows = json_object_new_array();
    msgs = json_object_new_array();
    cnt = km_xcalloc(nb ? nb : 1, sizeof(*cnt));
    for (size_t i = 0; i < a->n_msgs; i++) {
        const struct simmsg *m = &a->msgs[i];
        const char          *fid = a->flows[m->flow].id;
        json_object         *row, *so;
        int                  any = 0;

        if (!msg_passes(a, m, &f))
            continue;
        memset(cnt, 0, (nb ? nb : 1) * sizeof(*cnt));
        for (size_t k = 0; k < nb; k++) {
            simstat_msg(a, m, b[k], b[k + 1] - 1, &cnt[k]);
            any |= !simstat_is_zero(&cnt[k]);
        }
        if (!any)
            continue;
        so = json_object_new_object();
        for (size_t s = 0; s < n; s++) {
            json_object *arr = json_object_new_array();
            for (size_t k = 0; k < nb; k++)
                json_object_array_add(arr, kmjson_double(simstat_value(&cnt[k], stats[s])));
            json_object_object_add(so, simstat_name(stats[s]), arr);
        }
        row = json_object_new_object();
        json_object_object_add(row, "groupings",
                               groupings("flow_id", fid, "flow_message_id", m->id,
                                         simdata_channel_name(m->channel)));
        json_object_object_add(row, "statistics", so);
        json_object_array_add(results, row);
        add_ref_once(flows, "flow", fid);
        add_ref_once(msgs, "flow-message", m->id);
    }
    attrs = json_object_new_object();
    json_object_object_add(attrs, "date_times", dates);
    json_object_object_add(attrs, "results", results);
    rels = json_object_new_object();
    json_object_object_add(rels, "flows", rel_data(flows));
    json_object_object_add(rels, "flow-messages", rel_data(msgs));
    report_doc(r, "flow-series-report", "/api/flow-series-reports", attrs, rels);
out:
    free(b);
    free(cnt);
    simfilter_free(&f);
}
