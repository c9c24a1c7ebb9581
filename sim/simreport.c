/* simreport.c — the simulator's POST endpoints: campaign and flow values reports, the flow
 * series report (REFERENCE.md §5) and metric aggregates (§6.2). Windows are read as Klaviyo
 * reads them: report timeframes in the account's timezone, offsets ignored, both ends
 * inclusive and the end rounded up to the end of its hour; aggregates between a
 * greater-or-equal and a less-than bound in the request's timezone, buckets aligned there and
 * written in UTC. */
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

/* data.attributes of a body whose data.type must be `type`; NULL after recording the error */
static json_object *
attributes(struct simreq *r, const char *type, const char *const *known)
{
    json_object *data = kmjson_get(r->body, "data");
    json_object *at = kmjson_get(data, "attributes");
    const char  *t = kmjson_str(data, "type");
    char         detail[200];

    if (!data || !json_object_is_type(data, json_type_object)) {
        sim_invalid(r, "The request body must have a 'data' object.", "pointer", "/data");
        return NULL;
    }
    if (!t) {
        sim_invalid(r, "'type' is required.", "pointer", "/data/type");
        return NULL;
    }
    if (strcmp(t, type) != 0) {
        snprintf(detail, sizeof(detail), "The resource type '%.60s' does not match the "
                 "endpoint's type '%s'.", t, type);
        sim_error(r, 409, "conflict", "Conflict.", detail, "pointer", "/data/type");
        return NULL;
    }
    if (!at || !json_object_is_type(at, json_type_object)) {
        sim_invalid(r, "'attributes' is required.", "pointer", "/data/attributes");
        return NULL;
    }
    json_object_object_foreach(at, k, v) {
        int ok = 0;
        (void)v;
        for (size_t i = 0; known[i]; i++) {
            if (strcmp(known[i], k) == 0)
                ok = 1;
        }
        if (!ok) {
            char ptr[120];
            snprintf(detail, sizeof(detail), "'%.60s' is not a valid field for the resource "
                     "'%s'.", k, type);
            snprintf(ptr, sizeof(ptr), "/data/attributes/%.80s", k);
            sim_invalid(r, detail, "pointer", ptr);
        }
    }
    return sim_failed(r) ? NULL : at;
}

static void
required(struct simreq *r, const char *field)
{
    char ptr[120];

    snprintf(ptr, sizeof(ptr), "/data/attributes/%s", field);
    sim_invalid(r, "This field is required.", "pointer", ptr);
}

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

static kmday
add_year(kmday d)
{
    int y, m, dd, dim;

    kmdate_to_ymd(d, &y, &m, &dd);
    dim = kmdate_days_in_month(y + 1, m);
    return kmdate_from_ymd(y + 1, m, dd > dim ? dim : dd);
}

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
        required(r, "timeframe");
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
    if (w->end > (int64_t)add_year(sv.day) * DAY + sv.sec) {
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
        required(r, "statistics");
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
        required(r, "conversion_metric_id");
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
    at = attributes(r, type, fields);
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
        required(r, "interval");
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

/* --- metric aggregates ----------------------------------------------------------------------- */

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
        required(r, "filter");
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
        if (*lt > simtz_local_to_utc(z, add_year(day), sec)) {
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
simreport_metric_aggregates(struct simreq *r)
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
    at = attributes(r, "metric-aggregate", agg_fields);
    if (!at)
        return;
    metric_id = kmjson_str(at, "metric_id");
    if (!kmjson_get(at, "metric_id")) {
        required(r, "metric_id");
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
