/* simstats.c — hourly activity from a hash, and report statistics from counts. */
#include "simstats.h"

#include <math.h>
#include <string.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define CAMPAIGN_TAU 30.0    /* hours: a campaign's activity decays as exp(-k / tau) */

/* How busy each local hour is (mean 1.0); no hour is silent. */
static const double diurnal[24] = {
    0.48, 0.32, 0.21, 0.16, 0.16, 0.21, 0.37, 0.64, 0.96, 1.17, 1.28, 1.33,
    1.38, 1.33, 1.28, 1.28, 1.33, 1.44, 1.60, 1.70, 1.65, 1.38, 1.01, 0.69,
};
/* Monday first */
static const double weekday[7] = { 1.05, 1.0, 1.0, 1.0, 0.95, 0.88, 1.12 };

static const char *const stat_names[SIMSTAT_COUNT] = {
    "average_order_value", "bounce_rate", "bounced", "bounced_or_failed",
    "bounced_or_failed_rate", "click_rate", "click_to_open_rate", "clicks", "clicks_unique",
    "conversion_rate", "conversion_uniques", "conversion_value", "conversions", "delivered",
    "delivery_rate", "failed", "failed_rate", "open_rate", "opens", "opens_unique", "recipients",
    "revenue_per_recipient", "spam_complaint_rate", "spam_complaints", "unsubscribe_rate",
    "unsubscribe_uniques", "unsubscribes",
};

enum {
    S_AOV = 0, S_BOUNCE_RATE, S_BOUNCED, S_BOF, S_BOF_RATE, S_CLICK_RATE, S_CTOR, S_CLICKS,
    S_CLICKS_UNIQUE, S_CONV_RATE, S_CONV_UNIQUES, S_CONV_VALUE, S_CONVERSIONS, S_DELIVERED,
    S_DELIVERY_RATE, S_FAILED, S_FAILED_RATE, S_OPEN_RATE, S_OPENS, S_OPENS_UNIQUE,
    S_RECIPIENTS, S_RPR, S_SPAM_RATE, S_SPAM, S_UNSUB_RATE, S_UNSUB_UNIQUES, S_UNSUBS
};

int
simstat_find(const char *name)
{
    for (int i = 0; name && i < SIMSTAT_COUNT; i++) {
        if (strcmp(stat_names[i], name) == 0)
            return i;
    }
    return -1;
}

const char *
simstat_name(int stat)
{
    return stat >= 0 && stat < SIMSTAT_COUNT ? stat_names[stat] : "";
}

int
simstat_is_rate(int stat)
{
    switch (stat) {
    case S_AOV: case S_BOUNCE_RATE: case S_BOF_RATE: case S_CLICK_RATE: case S_CTOR:
    case S_CONV_RATE: case S_DELIVERY_RATE: case S_FAILED_RATE: case S_OPEN_RATE: case S_RPR:
    case S_SPAM_RATE: case S_UNSUB_RATE:
        return 1;
    default:
        return 0;
    }
}

static double
ratio(double num, int64_t den)
{
    return den > 0 ? num / (double)den : 0.0;
}

double
simstat_value(const struct simcounts *c, int stat)
{
    const int64_t *v = c->v;
    double         value = (double)v[SIMC_CONVERSION_CENTS] / 100.0;

    switch (stat) {
    case S_AOV: return ratio(value, v[SIMC_CONVERSIONS]);
    case S_BOUNCE_RATE: return ratio((double)v[SIMC_BOUNCED], v[SIMC_RECIPIENTS]);
    case S_BOUNCED: return (double)v[SIMC_BOUNCED];
    case S_BOF: return (double)(v[SIMC_BOUNCED] + v[SIMC_FAILED]);
    case S_BOF_RATE:
        return ratio((double)(v[SIMC_BOUNCED] + v[SIMC_FAILED]), v[SIMC_RECIPIENTS]);
    case S_CLICK_RATE: return ratio((double)v[SIMC_CLICKS_UNIQUE], v[SIMC_DELIVERED]);
    case S_CTOR: return ratio((double)v[SIMC_CLICKS_UNIQUE], v[SIMC_OPENS_UNIQUE]);
    case S_CLICKS: return (double)v[SIMC_CLICKS];
    case S_CLICKS_UNIQUE: return (double)v[SIMC_CLICKS_UNIQUE];
    case S_CONV_RATE: return ratio((double)v[SIMC_CONVERSION_UNIQUES], v[SIMC_DELIVERED]);
    case S_CONV_UNIQUES: return (double)v[SIMC_CONVERSION_UNIQUES];
    case S_CONV_VALUE: return value;
    case S_CONVERSIONS: return (double)v[SIMC_CONVERSIONS];
    case S_DELIVERED: return (double)v[SIMC_DELIVERED];
    case S_DELIVERY_RATE: return ratio((double)v[SIMC_DELIVERED], v[SIMC_RECIPIENTS]);
    case S_FAILED: return (double)v[SIMC_FAILED];
    case S_FAILED_RATE: return ratio((double)v[SIMC_FAILED], v[SIMC_RECIPIENTS]);
    case S_OPEN_RATE: return ratio((double)v[SIMC_OPENS_UNIQUE], v[SIMC_DELIVERED]);
    case S_OPENS: return (double)v[SIMC_OPENS];
    case S_OPENS_UNIQUE: return (double)v[SIMC_OPENS_UNIQUE];
    case S_RECIPIENTS: return (double)v[SIMC_RECIPIENTS];
    case S_RPR: return ratio(value, v[SIMC_DELIVERED]);
    case S_SPAM_RATE: return ratio((double)v[SIMC_SPAM_COMPLAINTS], v[SIMC_DELIVERED]);
    case S_SPAM: return (double)v[SIMC_SPAM_COMPLAINTS];
    case S_UNSUB_RATE: return ratio((double)v[SIMC_UNSUBSCRIBE_UNIQUES], v[SIMC_DELIVERED]);
    case S_UNSUB_UNIQUES: return (double)v[SIMC_UNSUBSCRIBE_UNIQUES];
    case S_UNSUBS: return (double)v[SIMC_UNSUBSCRIBES];
    default: return 0.0;
    }
}

void
simstat_add(struct simcounts *into, const struct simcounts *c)
{
    for (int i = 0; i < SIMC_COUNT; i++)
        into->v[i] += c->v[i];
}

int
simstat_is_zero(const struct simcounts *c)
{
    for (int i = 0; i < SIMC_COUNT; i++) {
        if (c->v[i])
            return 0;
    }
    return 1;
}

/* --- the hourly generator ------------------------------------------------------------- */

struct hrng {
    uint64_t s;
};

static double
unit(struct hrng *r)
{
    r->s += GOLDEN;
    return (double)(simdata_mix(r->s) >> 11) * (1.0 / 9007199254740992.0);
}

/* x rounded up or down at random, in proportion: the mean stays x */
static int64_t
sround(struct hrng *r, double x)
{
    return x <= 0 ? 0 : (int64_t)floor(x + unit(r));
}

static int64_t
cap(int64_t x, int64_t max)
{
    return x > max ? max : x;
}

static void
hour_counts(uint64_t key, simhour h, double expect, enum simchan ch, struct simcounts *c)
{
    struct hrng r = { key ^ ((uint64_t)h * GOLDEN) };
    int64_t     rec, bnc, dlv, fail, ou, op, cu, cl, un, unu, sp, cv, cvu, cents;
    int         sms = ch == SIM_SMS;

    rec = sround(&r, expect * (0.75 + 0.5 * unit(&r)));
    if (rec <= 0)
        return;
    bnc = cap(sround(&r, (double)rec * (sms ? 0.012 : 0.008) * (0.5 + unit(&r))), rec);
    dlv = rec - bnc;
    fail = sms ? sround(&r, (double)rec * 0.006 * (0.5 + unit(&r))) : 0;
    if (sms) {
        ou = op = 0;
        cu = cap(sround(&r, (double)dlv * 0.07 * (0.6 + 0.8 * unit(&r))), dlv);
    } else {
        ou = cap(sround(&r, (double)dlv * 0.42 * (0.7 + 0.6 * unit(&r))), dlv);
        op = ou + sround(&r, (double)ou * 0.35 * unit(&r));
        cu = cap(sround(&r, (double)ou * 0.11 * (0.6 + 0.8 * unit(&r))), ou);
    }
    cl = cu + sround(&r, (double)cu * 0.25 * unit(&r));
    un = cap(sround(&r, (double)dlv * (sms ? 0.004 : 0.0025) * (0.5 + unit(&r))), dlv);
    unu = un - (un > 1 && unit(&r) < 0.3 ? 1 : 0);
    sp = sms ? 0 : sround(&r, (double)dlv * 0.0002 * (0.5 + unit(&r)));
    cv = sround(&r, (double)cu * 0.09 * (0.5 + unit(&r)));
    cvu = cv - (cv > 1 && unit(&r) < 0.25 ? 1 : 0);
    cents = cv ? cv * (2500 + (int64_t)(unit(&r) * 12500.0)) + (int64_t)(unit(&r) * 100.0) : 0;

    c->v[SIMC_RECIPIENTS] += rec;
    c->v[SIMC_DELIVERED] += dlv;
    c->v[SIMC_BOUNCED] += bnc;
    c->v[SIMC_FAILED] += fail;
    c->v[SIMC_OPENS] += op;
    c->v[SIMC_OPENS_UNIQUE] += ou;
    c->v[SIMC_CLICKS] += cl;
    c->v[SIMC_CLICKS_UNIQUE] += cu;
    c->v[SIMC_UNSUBSCRIBES] += un;
    c->v[SIMC_UNSUBSCRIBE_UNIQUES] += unu;
    c->v[SIMC_SPAM_COMPLAINTS] += sp;
    c->v[SIMC_CONVERSIONS] += cv;
    c->v[SIMC_CONVERSION_UNIQUES] += cvu;
    c->v[SIMC_CONVERSION_CENTS] += cents;
}

static int
hour_of(simhour h)
{
    int x = (int)(h % 24);

    return x < 0 ? x + 24 : x;
}

static kmday
day_of(simhour h)
{
    simhour d = h / 24;

    if (h % 24 < 0)
        d--;
    return (kmday)d;
}

void
simstat_campaign_span(const struct simcampaign *c, simhour *from, simhour *to)
{
    if (!c->active) {
        *from = 1;
        *to = 0;
        return;
    }
    *from = c->send_hour;
    *to = c->send_hour + SIM_CAMPAIGN_HOURS - 1;
}

void
simstat_msg_span(const struct simacct *a, const struct simmsg *m, simhour *from, simhour *to)
{
    const struct simflow *f = &a->flows[m->flow];

    if (f->act_end < f->act_start) {
        *from = 1;
        *to = 0;
        return;
    }
    *from = simdata_hour(f->act_start, 0);
    *to = simdata_hour(f->act_end, 23);
}

void
simstat_campaign(const struct simacct *a, const struct simcampaign *c, simhour from, simhour to,
                 struct simcounts *out)
{
    simhour lo, hi;
    double  first = c->audience * (1.0 - exp(-1.0 / CAMPAIGN_TAU));

    (void)a;
    simstat_campaign_span(c, &lo, &hi);
    if (from > lo)
        lo = from;
    if (to < hi)
        hi = to;
    for (simhour h = lo; h <= hi; h++) {
        double k = (double)(h - c->send_hour);
        hour_counts(c->hkey, h, first * exp(-k / CAMPAIGN_TAU) * diurnal[hour_of(h)],
                    c->channel, out);
    }
}

void
simstat_campaign_sent(const struct simacct *a, const struct simcampaign *c, simhour from,
                      simhour to, struct simcounts *out)
{
    simhour lo, hi;

    simstat_campaign_span(c, &lo, &hi);
    if (hi < lo || c->send_hour < from || c->send_hour > to)
        return;
    simstat_campaign(a, c, lo, hi, out);
}

static double
season(kmday day)
{
    /* a gentle yearly swell, busiest in late autumn */
    return 1.0 + 0.2 * sin(2.0 * 3.14159265358979 * ((double)day - 200.0) / 365.25);
}

void
simstat_msg(const struct simacct *a, const struct simmsg *m, simhour from, simhour to,
            struct simcounts *out)
{
    simhour lo, hi;
    kmday   cur = 0;
    double  dayf = 0.0;

    simstat_msg_span(a, m, &lo, &hi);
    if (from > lo)
        lo = from;
    if (to < hi)
        hi = to;
    for (simhour h = lo; h <= hi; h++) {
        kmday d = day_of(h);
        if (h == lo || d != cur) {
            cur = d;
            dayf = m->rate * weekday[kmdate_weekday(d)] * season(d);
        }
        hour_counts(m->hkey, h, dayf * diurnal[hour_of(h)], m->channel, out);
    }
}

/* --- metric events ----------------------------------------------------------------------- */

int
simstat_metric_per_list(const struct simmetric *m)
{
    return m->kind == SIM_MK_SUB_LIST || m->kind == SIM_MK_UNSUB_LIST;
}

void
simstat_events(const struct simacct *a, const struct simmetric *m, const struct simlist *l,
               simhour h, struct simevents *out)
{
    kmday       d = day_of(h);
    double      rate;
    uint64_t    key = m->hkey;
    struct hrng r;

    memset(out, 0, sizeof(*out));
    if (simstat_metric_per_list(m)) {
        if (!l || d < l->created_day)
            return;
        rate = l->sub_rate * (m->kind == SIM_MK_UNSUB_LIST ? 0.3 : 1.0);
        key = simdata_mix(key ^ l->hkey);
    } else {
        if (d < a->events_from)
            return;
        rate = m->rate;
    }
    if (rate <= 0.0)
        return;
    r.s = key ^ ((uint64_t)h * GOLDEN);
    out->count = sround(&r, rate * weekday[kmdate_weekday(d)] * diurnal[hour_of(h)] *
                                (0.6 + 0.8 * unit(&r)));
    out->unique = out->count - (out->count > 1 && unit(&r) < 0.2 ? 1 : 0);
    if (m->kind == SIM_MK_ORDER && out->count)
        out->value_cents =
            out->count * (2500 + (int64_t)(unit(&r) * 15500.0)) + (int64_t)(unit(&r) * 100.0);
}

int64_t
simstat_event_instant(const struct simacct *a, simhour h)
{
    return simtz_local_to_utc(a->zone, day_of(h), hour_of(h) * 3600 + 17 * 60);
}
