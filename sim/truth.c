/* truth.c — expected numbers straight from simdata/simstats. */
#include "truth.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static void
push_row(struct simtruth_row **rows, size_t *n, size_t *cap, const char *entity,
         const char *message, enum simchan ch, const struct simcounts *c)
{
    struct simtruth_row *r;

    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *rows = km_xrealloc(*rows, *cap * sizeof(**rows));
    }
    r = &(*rows)[(*n)++];
    memset(r, 0, sizeof(*r));
    km_strlcpy(r->entity_id, entity, sizeof(r->entity_id));
    km_strlcpy(r->message_id, message, sizeof(r->message_id));
    r->channel = ch;
    r->counts = *c;
}

/* Campaign rows over local hours [from, to]: by send date (values reports) or by event time
 * (the activity metric aggregates count). */
static long
campaign_rows(const simdata *sd, const char *acct, simhour from, simhour to, const char *only_id,
              int by_send, struct simtruth_row **rows)
{
    const struct simacct *a = simdata_account_by_name(sd, acct);
    size_t                n = 0, cap = 0;

    *rows = NULL;
    if (!a)
        return -1;
    for (size_t i = 0; i < a->n_campaigns; i++) {
        const struct simcampaign *c = &a->campaigns[i];
        struct simcounts          cnt;

        if (only_id && strcmp(only_id, c->id) != 0)
            continue;
        memset(&cnt, 0, sizeof(cnt));
        if (by_send)
            simstat_campaign_sent(a, c, from, to, &cnt);
        else
            simstat_campaign(a, c, from, to, &cnt);
        if (!simstat_is_zero(&cnt))
            push_row(rows, &n, &cap, c->id, c->id, c->channel, &cnt);
    }
    return (long)n;
}

long
simtruth_campaign_values_hours(const simdata *sd, const char *acct, simhour from, simhour to,
                               const char *only_id, struct simtruth_row **rows)
{
    return campaign_rows(sd, acct, from, to, only_id, 1, rows);
}

long
simtruth_campaign_activity(const simdata *sd, const char *acct, kmrange days,
                           const char *only_id, struct simtruth_row **rows)
{
    return campaign_rows(sd, acct, simdata_hour(days.start, 0), simdata_hour(days.end, 23),
                         only_id, 0, rows);
}

long
simtruth_flow_values_hours(const simdata *sd, const char *acct, simhour from, simhour to,
                           const char *only_flow_id, struct simtruth_row **rows)
{
    const struct simacct *a = simdata_account_by_name(sd, acct);
    size_t                n = 0, cap = 0;

    *rows = NULL;
    if (!a)
        return -1;
    for (size_t i = 0; i < a->n_msgs; i++) {
        const struct simmsg *m = &a->msgs[i];
        const char          *fid = a->flows[m->flow].id;
        struct simcounts     cnt;

        if (only_flow_id && strcmp(only_flow_id, fid) != 0)
            continue;
        memset(&cnt, 0, sizeof(cnt));
        simstat_msg(a, m, from, to, &cnt);
        if (!simstat_is_zero(&cnt))
            push_row(rows, &n, &cap, fid, m->id, m->channel, &cnt);
    }
    return (long)n;
}

long
simtruth_campaign_values(const simdata *sd, const char *acct, kmrange days, const char *only_id,
                         struct simtruth_row **rows)
{
    return simtruth_campaign_values_hours(sd, acct, simdata_hour(days.start, 0),
                                          simdata_hour(days.end, 23), only_id, rows);
}

long
simtruth_flow_values(const simdata *sd, const char *acct, kmrange days, const char *only_flow_id,
                     struct simtruth_row **rows)
{
    return simtruth_flow_values_hours(sd, acct, simdata_hour(days.start, 0),
                                      simdata_hour(days.end, 23), only_flow_id, rows);
}

void
simtruth_sum(const struct simtruth_row *rows, size_t n, struct simcounts *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++)
        simstat_add(out, &rows[i].counts);
}

long
simtruth_flow_series(const simdata *sd, const char *acct, kmrange days, kminterval iv,
                     const char *only_flow_id, struct simtruth_series *out)
{
    const struct simacct *a = simdata_account_by_name(sd, acct);
    simhour              *b;
    size_t                nb, cap = 0;

    memset(out, 0, sizeof(*out));
    if (!a || days.end < days.start)
        return -1;
    /* bucket k covers local hours [b[k], b[k + 1]) */
    if (iv == KMI_HOURLY) {
        nb = (size_t)kmdate_range_days(days) * 24;
        b = km_xcalloc(nb + 1, sizeof(*b));
        for (size_t k = 0; k <= nb; k++)
            b[k] = simdata_hour(days.start, 0) + (simhour)k;
    } else {
        kmday *d;

        nb = kmdate_buckets(days, iv, NULL, 0);
        d = km_xcalloc(nb ? nb : 1, sizeof(*d));
        kmdate_buckets(days, iv, d, nb);
        b = km_xcalloc(nb + 1, sizeof(*b));
        for (size_t k = 0; k < nb; k++)
            b[k] = simdata_hour(d[k], 0);
        b[nb] = simdata_hour(days.end + 1, 0);
        free(d);
    }
    out->n_buckets = nb;
    out->date_times = km_xcalloc(nb ? nb : 1, sizeof(*out->date_times));
    for (size_t k = 0; k < nb; k++) {
        kmday day = (kmday)(b[k] / 24);

        simtz_format_wall(a->zone, day, (int)(b[k] - simdata_hour(day, 0)) * 3600,
                          out->date_times[k]);
    }
    for (size_t i = 0; i < a->n_msgs; i++) {
        const struct simmsg        *m = &a->msgs[i];
        const char                 *fid = a->flows[m->flow].id;
        struct simcounts           *cnt;
        struct simtruth_series_row *row;
        int                         any = 0;

        if (only_flow_id && strcmp(only_flow_id, fid) != 0)
            continue;
        cnt = km_xcalloc(nb ? nb : 1, sizeof(*cnt));
        for (size_t k = 0; k < nb; k++) {
            simstat_msg(a, m, b[k], b[k + 1] - 1, &cnt[k]);
            any |= !simstat_is_zero(&cnt[k]);
        }
        if (!any) {
            free(cnt);
            continue;
        }
        if (out->n_rows == cap) {
            cap = cap ? cap * 2 : 16;
            out->rows = km_xrealloc(out->rows, cap * sizeof(*out->rows));
        }
        row = &out->rows[out->n_rows++];
        memset(row, 0, sizeof(*row));
        km_strlcpy(row->flow_id, fid, sizeof(row->flow_id));
        km_strlcpy(row->message_id, m->id, sizeof(row->message_id));
        row->channel = m->channel;
        row->buckets = cnt;
    }
    free(b);
    return (long)out->n_rows;
}

void
simtruth_series_free(struct simtruth_series *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_rows; i++)
        free(s->rows[i].buckets);
    free(s->rows);
    free(s->date_times);
    memset(s, 0, sizeof(*s));
}

/* --- metric events ---------------------------------------------------------------------- */

/* Call fn for every event hour of metric m (list l) whose instant is in [ge, lt). */
typedef void event_fn(void *arg, int64_t t, const struct simevents *ev);

static void
each_event(const struct simacct *a, const struct simmetric *m, const struct simlist *l,
           int64_t ge, int64_t lt, event_fn *fn, void *arg)
{
    kmday d0, d1;
    int   sec;

    simtz_utc_to_local(a->zone, ge, &d0, &sec);
    simtz_utc_to_local(a->zone, lt, &d1, &sec);
    for (simhour h = simdata_hour(d0, 0); h <= simdata_hour(d1, 23); h++) {
        struct simevents ev;
        int64_t          t;

        simstat_events(a, m, l, h, &ev);
        if (!ev.count)
            continue;
        t = simstat_event_instant(a, h);
        if (t >= ge && t < lt)
            fn(arg, t, &ev);
    }
}

static void
add_events(void *arg, int64_t t, const struct simevents *ev)
{
    struct simevents *sum = arg;

    (void)t;
    sum->count += ev->count;
    sum->unique += ev->unique;
    sum->value_cents += ev->value_cents;
}

static int
resolve(const simdata *sd, const char *acct, const char *metric_id, const char *tz, kmrange days,
        const struct simacct **a, const struct simmetric **m, int64_t *ge, int64_t *lt,
        const simtz **zone)
{
    *a = simdata_account_by_name(sd, acct);
    if (!*a)
        return -1;
    *m = simdata_metric(*a, metric_id);
    *zone = simtz_get(tz);
    if (!*m || !*zone || days.end < days.start)
        return -1;
    *ge = simtz_local_to_utc(*zone, days.start, 0);
    *lt = simtz_local_to_utc(*zone, days.end + 1, 0);
    return 0;
}

int
simtruth_metric_events(const simdata *sd, const char *acct, const char *metric_id, kmrange days,
                       const char *tz, const char *list_name, struct simevents *out)
{
    const struct simacct   *a;
    const struct simmetric *m;
    const simtz            *zone;
    int64_t                 ge, lt;

    memset(out, 0, sizeof(*out));
    if (resolve(sd, acct, metric_id, tz, days, &a, &m, &ge, &lt, &zone) != 0)
        return -1;
    if (!simstat_metric_per_list(m)) {
        if (!list_name)
            each_event(a, m, NULL, ge, lt, add_events, out);
        return 0;
    }
    for (size_t i = 0; i < a->n_lists; i++) {
        if (list_name && strcmp(list_name, a->lists[i].name) != 0)
            continue;
        each_event(a, m, &a->lists[i], ge, lt, add_events, out);
    }
    return 0;
}

long
simtruth_metric_by_list(const simdata *sd, const char *acct, const char *metric_id, kmrange days,
                        const char *tz, struct simtruth_named **out)
{
    const struct simacct   *a;
    const struct simmetric *m;
    const simtz            *zone;
    int64_t                 ge, lt;
    size_t                  n = 0;

    *out = NULL;
    if (resolve(sd, acct, metric_id, tz, days, &a, &m, &ge, &lt, &zone) != 0)
        return -1;
    *out = km_xcalloc(a->n_lists + 1, sizeof(**out));
    if (!simstat_metric_per_list(m)) {
        /* no list dimension: every event is under the empty name */
        struct simevents ev = { 0, 0, 0 };
        each_event(a, m, NULL, ge, lt, add_events, &ev);
        if (ev.count) {
            (*out)[0].events = ev;
            n = 1;
        }
        return (long)n;
    }
    for (size_t i = 0; i < a->n_lists; i++) {
        struct simevents ev = { 0, 0, 0 };
        size_t           j;

        each_event(a, m, &a->lists[i], ge, lt, add_events, &ev);
        if (!ev.count)
            continue;
        for (j = 0; j < n; j++) {
            if (strcmp((*out)[j].name, a->lists[i].name) == 0)
                break;
        }
        if (j == n) {
            km_strlcpy((*out)[n].name, a->lists[i].name, sizeof((*out)[n].name));
            n++;
        }
        add_events(&(*out)[j].events, 0, &ev);
    }
    return (long)n;
}

struct daily {
    const simtz *zone;
    kmday        first;
    int64_t     *counts;
};

static void
add_daily(void *arg, int64_t t, const struct simevents *ev)
{
    struct daily *d = arg;
    kmday         day;
    int           sec;

    simtz_utc_to_local(d->zone, t, &day, &sec);
    d->counts[day - d->first] += ev->count;
}

long
simtruth_metric_daily(const simdata *sd, const char *acct, const char *metric_id, kmrange days,
                      const char *tz, int64_t **counts)
{
    const struct simacct   *a;
    const struct simmetric *m;
    struct daily            d;
    int64_t                 ge, lt;

    *counts = NULL;
    if (resolve(sd, acct, metric_id, tz, days, &a, &m, &ge, &lt, &d.zone) != 0)
        return -1;
    d.first = days.start;
    d.counts = km_xcalloc((size_t)kmdate_range_days(days), sizeof(*d.counts));
    if (!simstat_metric_per_list(m)) {
        each_event(a, m, NULL, ge, lt, add_daily, &d);
    } else {
        for (size_t i = 0; i < a->n_lists; i++)
            each_event(a, m, &a->lists[i], ge, lt, add_daily, &d);
    }
    *counts = d.counts;
    return kmdate_range_days(days);
}

long
simtruth_flow_actions(const struct simacct *a, const char *flow_id, const struct simaction **out)
{
    const struct simflow *f = simdata_flow(a, flow_id);

    *out = NULL;
    if (!f)
        return -1;
    if (f->n_actions)
        *out = &a->actions[f->first_action];
    return (long)f->n_actions;
}

int64_t
simtruth_list_size(const struct simacct *a, const char *list_id)
{
    const struct simlist *l = simdata_list(a, list_id);

    return l ? l->profile_count : -1;
}
