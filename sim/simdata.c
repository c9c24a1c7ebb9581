/* simdata.c — generate the simulated accounts from a seed. */
#include "simdata.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY 86400

struct simdata {
    uint64_t        seed;
    struct simacct *accts;
    size_t          n_accts;
    uint64_t       *ids;      /* open-addressing set of id hashes, for unique ids */
    size_t          ids_cap;
};

/* --- randomness: splitmix64 seeded from (seed, account, purpose) ------------------------- */

struct rng {
    uint64_t s;
};

uint64_t
simdata_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t
hash_str(uint64_t h, const char *s)
{
    /* FNV-1a, then mixed */
    h ^= 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return simdata_mix(h);
}

static uint64_t
rnd(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return simdata_mix(r->s);
}

/* uniform in [0, 1) */
static double
unit(struct rng *r)
{
    return (double)(rnd(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* uniform integer in [lo, hi] */
static int64_t
range(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd(r) % (uint64_t)(hi - lo + 1));
}

static struct rng
rng_for(const simdata *sd, const char *acct, const char *purpose)
{
    struct rng r;

    r.s = hash_str(hash_str(sd->seed, acct), purpose);
    return r;
}

/* --- unique ids ----------------------------------------------------------------------- */

static int
id_claim(simdata *sd, const char *id)
{
    uint64_t h = hash_str(0, id) | 1;   /* 0 marks an empty slot */
    size_t   i = (size_t)(h % sd->ids_cap);

    while (sd->ids[i]) {
        if (sd->ids[i] == h)
            return 0;
        i = (i + 1) % sd->ids_cap;
    }
    sd->ids[i] = h;
    return 1;
}

static void
alnum_id(simdata *sd, struct rng *r, char out[8])
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    do {
        for (int i = 0; i < 6; i++)
            out[i] = abc[rnd(r) % 62];
        out[6] = '\0';
    } while (!id_claim(sd, out));
}

static void
numeric_id(simdata *sd, struct rng *r, char out[16])
{
    do {
        snprintf(out, 16, "%lld", (long long)range(r, 10000000, 99999999));
    } while (!id_claim(sd, out));
}

static void
ulid(simdata *sd, struct rng *r, int64_t ms, char out[28])
{
    static const char crock[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    do {
        uint64_t t = (uint64_t)ms;
        for (int i = 9; i >= 0; i--) {
            out[i] = crock[t & 31];
            t >>= 5;
        }
        for (int i = 10; i < 26; i++)
            out[i] = crock[rnd(r) & 31];
        out[26] = '\0';
    } while (!id_claim(sd, out));
}

static void
private_key(struct rng r, char out[40])
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

    memcpy(out, "pk_", 3);
    for (int i = 0; i < 34; i++)
        out[3 + i] = abc[rnd(&r) % 62];
    out[37] = '\0';
}

/* --- the three accounts ----------------------------------------------------------------- */

struct acct_spec {
    const char *name, *label, *tz, *currency;
    int         has_sms;
    const char *org, *sender, *website, *street, *city, *region, *country, *zip;
    const char *industry, *locale;
    int         n_lists, n_flows, email_every, sms_every;
    double      scale;
};

static const struct acct_spec specs[] = {
    { "acme", "Acme Outdoor", "America/New_York", "USD", 1, "Acme Outdoor Inc",
      "hello@acme.example", "https://acme.example", "125 Summer St", "Boston", "MA", "US",
      "02110", "Ecommerce, Apparel", "en-US", 23, 62, 4, 10, 1.0 },
    { "kiwi", "Kiwi Kitchenware", "Pacific/Auckland", "NZD", 1, "Kiwi Kitchenware Ltd",
      "kia.ora@kiwi.example", "https://kiwi.example", "12 Queen St", "Auckland", "Auckland",
      "NZ", "1010", "Ecommerce, Home & Garden", "en-NZ", 14, 14, 9, 20, 0.4 },
    { "nosms", "Northern Tea Co", "Europe/London", "GBP", 0, "Northern Tea Company Ltd",
      "hello@northerntea.example", "https://northerntea.example", "1 Tea Lane", "London",
      "", "GB", "EC1A 1BB", "Ecommerce, Food & Beverage", "en-GB", 12, 9, 8, 0, 0.5 },
};

/* --- metrics ---------------------------------------------------------------------------- */

struct metric_spec {
    const char         *name, *integration;
    enum simmetric_kind kind;
    double              rate;
    int                 sms;        /* only in accounts with SMS */
};

static const struct metric_spec metric_specs[] = {
    { "Placed Order", "API", SIM_MK_ORDER, 0.2, 0 },      /* acme only: a duplicate name */
    { "Placed Order", "Shopify", SIM_MK_ORDER, 1.6, 0 },  /* the conversion metric */
    { "Ordered Product", "Shopify", SIM_MK_OTHER, 2.4, 0 },
    { "Started Checkout", "Shopify", SIM_MK_OTHER, 3.1, 0 },
    { "Viewed Product", "Shopify", SIM_MK_OTHER, 14.0, 0 },
    { "Fulfilled Order", "Shopify", SIM_MK_OTHER, 1.5, 0 },
    { "Subscribed to List", "API", SIM_MK_OTHER, 0.15, 0 },  /* kiwi only: a duplicate */
    { "Subscribed to List", "Klaviyo", SIM_MK_SUB_LIST, 0, 0 },
    { "Unsubscribed from List", "Klaviyo", SIM_MK_UNSUB_LIST, 0, 0 },
    { "Subscribed to Email Marketing", "Klaviyo", SIM_MK_SUB_EMAIL, 1.2, 0 },
    { "Unsubscribed from Email Marketing", "Klaviyo", SIM_MK_UNSUB_EMAIL, 0.35, 0 },
    { "Subscribed to SMS Marketing", "Klaviyo", SIM_MK_SUB_SMS, 0.5, 1 },
    { "Unsubscribed from SMS Marketing", "Klaviyo", SIM_MK_UNSUB_SMS, 0.12, 1 },
    { "Received Email", "Klaviyo", SIM_MK_OTHER, 40.0, 0 },
    { "Opened Email", "Klaviyo", SIM_MK_OTHER, 18.0, 0 },
    { "Clicked Email", "Klaviyo", SIM_MK_OTHER, 2.2, 0 },
    { "Bounced Email", "Klaviyo", SIM_MK_OTHER, 0.4, 0 },
    { "Marked Email as Spam", "Klaviyo", SIM_MK_OTHER, 0.02, 0 },
    { "Dropped Email", "Klaviyo", SIM_MK_OTHER, 0.1, 0 },
    { "Unsubscribed", "Klaviyo", SIM_MK_OTHER, 0.3, 0 },
    { "Received SMS", "Klaviyo", SIM_MK_OTHER, 9.0, 1 },
    { "Clicked SMS", "Klaviyo", SIM_MK_OTHER, 1.1, 1 },
    { "Sent SMS", "Klaviyo", SIM_MK_OTHER, 9.2, 1 },
    { "Failed to Deliver SMS", "Klaviyo", SIM_MK_OTHER, 0.2, 1 },
    { "Active on Site", "API", SIM_MK_OTHER, 25.0, 0 },
};

static const char *
integration_key(const char *name)
{
    if (strcmp(name, "Shopify") == 0)
        return "shopify";
    if (strcmp(name, "Klaviyo") == 0)
        return "klaviyo";
    return "api";
}

static const char *
integration_category(const char *name)
{
    if (strcmp(name, "Shopify") == 0)
        return "eCommerce";
    if (strcmp(name, "Klaviyo") == 0)
        return "Internal";
    return "API";
}

static int64_t
day_seconds(const char *ymd)
{
    kmday d = 0;

    (void)kmdate_parse(ymd, &d);
    return (int64_t)d * DAY;
}

static void
gen_metrics(simdata *sd, struct simacct *a, const struct acct_spec *sp)
{
    struct rng r = rng_for(sd, sp->name, "metrics");
    char       integ_ids[3][8];
    size_t     n = 0;

    for (int i = 0; i < 3; i++)
        alnum_id(sd, &r, integ_ids[i]);
    a->metrics = km_xcalloc(sizeof(metric_specs) / sizeof(metric_specs[0]), sizeof(*a->metrics));
    for (size_t i = 0; i < sizeof(metric_specs) / sizeof(metric_specs[0]); i++) {
        const struct metric_spec *ms = &metric_specs[i];
        struct simmetric         *m;
        int                       acme = strcmp(sp->name, "acme") == 0;
        int                       kiwi = strcmp(sp->name, "kiwi") == 0;
        const char               *integ = ms->integration;

        if (ms->sms && !sp->has_sms)
            continue;
        if (i == 0 && !acme)
            continue;
        if (i == 6 && !kiwi)
            continue;
        m = &a->metrics[n];
        alnum_id(sd, &r, m->id);
        m->name = ms->name;
        m->integration_name = integ;
        m->integration_key = integration_key(integ);
        m->integration_category = integration_category(integ);
        km_strlcpy(m->integration_id,
                   integ_ids[strcmp(integ, "Klaviyo") == 0 ? 0
                             : strcmp(integ, "Shopify") == 0 ? 1 : 2],
                   sizeof(m->integration_id));
        m->kind = ms->kind;
        m->rate = ms->rate * sp->scale;
        m->created = day_seconds("2021-02-01") + range(&r, 0, 200) * DAY + range(&r, 0, DAY - 1);
        m->updated = m->created;
        m->hkey = hash_str(hash_str(sd->seed, sp->name), m->id);
        if (i == 1)
            a->conversion_metric = n;
        n++;
    }
    a->n_metrics = n;
}

/* --- lists ------------------------------------------------------------------------------ */

static const char *const list_names[] = {
    "Newsletter", "VIP Customers", "Holiday Shoppers", "Back in Stock Alerts", "Wholesale",
    "Test List", "SMS Subscribers", "Event RSVP", "Outlet Fans", "Blog Readers",
    "Loyalty Members", "Gift Guide", "Preview List", "Spring Launch Waitlist", "Footer Signup",
    "Popup Signup", "Contest Entrants", "Retail Store Signups", "Ambassadors",
    "Sustainability Club", "Trail Runners", "Cyber Monday Early Access", "Lapsed Customers",
    "Product Testers", "Sweepstakes 2024",
};

static void
gen_lists(simdata *sd, struct simacct *a, const struct acct_spec *sp)
{
    struct rng r = rng_for(sd, sp->name, "lists");
    int64_t    t = day_seconds("2021-06-01");
    size_t     names = sizeof(list_names) / sizeof(list_names[0]);

    a->n_lists = (size_t)sp->n_lists;
    a->lists = km_xcalloc(a->n_lists, sizeof(*a->lists));
    for (size_t i = 0; i < a->n_lists; i++) {
        struct simlist *l = &a->lists[i];
        int             sec;

        alnum_id(sd, &r, l->id);
        /* acme's first list carries the id the seed README's examples use, so that those
         * commands work verbatim against the demo */
        if (strcmp(sp->name, "acme") == 0 && i == 0 && id_claim(sd, SIM_EXAMPLE_LIST_ID))
            km_strlcpy(l->id, SIM_EXAMPLE_LIST_ID, sizeof(l->id));
        /* kiwi's last list repeats the name of its fourth: names are not keys */
        if (strcmp(sp->name, "kiwi") == 0 && i == a->n_lists - 1)
            km_strlcpy(l->name, a->lists[3].name, sizeof(l->name));
        else
            km_strlcpy(l->name, list_names[i % names], sizeof(l->name));
        l->opt_in_process = range(&r, 0, 2) == 0 ? "double_opt_in" : "single_opt_in";
        t += range(&r, 20, 70) * DAY + range(&r, 0, DAY - 1);
        l->created = t;
        l->updated = t + range(&r, 0, 400) * DAY;
        simtz_utc_to_local(a->zone, l->created, &l->created_day, &sec);
        /* every seventh list from the sixth is quiet: no subscription events at all */
        l->sub_rate = i % 7 == 5 ? 0.0 : (0.05 + 2.5 * unit(&r) * unit(&r)) * sp->scale;
        l->profile_count = strcmp(l->name, "Test List") == 0 ? 0 : range(&r, 40, 52000);
        l->hkey = hash_str(hash_str(sd->seed, sp->name), l->id);
    }
}

/* --- flows, actions, messages ------------------------------------------------------------ */

struct flow_tpl {
    const char *name, *trigger, *pattern;   /* pattern: E email, S sms, D delay, B branch */
    double      rate;                       /* recipients per hour of the first message */
};

static const struct flow_tpl flow_tpls[] = {
    { "Welcome Series", "Added to List", "EDEDBE", 9.0 },
    { "Abandoned Cart", "Metric", "DEDBS", 7.0 },
    { "Browse Abandonment", "Metric", "DE", 6.0 },
    { "Post-Purchase Thank You", "Metric", "EDE", 5.0 },
    { "Winback", "Metric", "DEDE", 3.0 },
    { "Birthday", "Date Based", "E", 1.5 },
    { "Back in Stock", "Low Inventory", "ES", 2.0 },
    { "Price Drop Alert", "Price Drop", "E", 1.8 },
    { "Sunset Unengaged", "Metric", "EDBE", 2.5 },
    { "VIP Upgrade", "Added to List", "ES", 0.9 },
    { "Replenishment Reminder", "Metric", "DE", 1.2 },
    { "Review Request", "Metric", "DEDE", 3.5 },
    { "SMS Welcome", "Added to List", "SDS", 2.2 },
    { "Draft Experiment", "Unconfigured", "", 0.0 },
    { "Checkout Abandonment", "Metric", "DEDS", 4.0 },
    { "Anniversary", "Date Based", "E", 0.7 },
    { "Cross-sell", "Metric", "DEBE", 1.6 },
};

static const char *const subjects[] = {
    "Welcome aboard", "You left something behind", "Still thinking it over?", "Thank you!",
    "We miss you", "A gift for your birthday", "It's back", "Prices just dropped",
    "Should we say goodbye?", "You're a VIP now", "Time to restock?", "How did we do?",
};

static void
gen_flows(simdata *sd, struct simacct *a, const struct acct_spec *sp)
{
    struct rng r = rng_for(sd, sp->name, "flows");
    size_t     ntpl = sizeof(flow_tpls) / sizeof(flow_tpls[0]);
    size_t     cap_actions = (size_t)sp->n_flows * 8, cap_msgs = (size_t)sp->n_flows * 8;
    int64_t    t = day_seconds("2021-09-01");
    int64_t    last_update = day_seconds("2026-11-01");

    a->n_flows = (size_t)sp->n_flows;
    a->flows = km_xcalloc(a->n_flows, sizeof(*a->flows));
    a->actions = km_xcalloc(cap_actions, sizeof(*a->actions));
    a->msgs = km_xcalloc(cap_msgs, sizeof(*a->msgs));
    for (size_t i = 0; i < a->n_flows; i++) {
        struct simflow        *f = &a->flows[i];
        const struct flow_tpl *tp = &flow_tpls[i % ntpl];
        size_t                 round = i / ntpl;
        int                    sends = 0, sec;
        kmday                  cday, uday;

        alnum_id(sd, &r, f->id);
        /* likewise acme's first flow and the README's flow structure example */
        if (strcmp(sp->name, "acme") == 0 && i == 0 && id_claim(sd, SIM_EXAMPLE_FLOW_ID))
            km_strlcpy(f->id, SIM_EXAMPLE_FLOW_ID, sizeof(f->id));
        if (round == 0)
            snprintf(f->name, sizeof(f->name), "%s", tp->name);
        else
            snprintf(f->name, sizeof(f->name), "%s - Variant %zu", tp->name, round + 1);
        f->trigger_type = tp->trigger;
        t += range(&r, 5, 22) * DAY + range(&r, 0, DAY - 1);
        f->created = t;
        if (!*tp->pattern || i % 10 == 1 || i % 10 == 8)
            f->status = "draft";
        else if (i % 10 == 4)
            f->status = "manual";
        else
            f->status = "live";
        f->archived = strcmp(f->status, "live") != 0 && i % 3 == 0;
        f->updated = f->created + range(&r, 30, 600) * DAY + range(&r, 0, DAY - 1);
        if (f->updated > last_update)
            f->updated = last_update - range(&r, 0, 30) * DAY;
        if (f->updated < f->created)
            f->updated = f->created;
        simtz_utc_to_local(a->zone, f->created, &cday, &sec);
        simtz_utc_to_local(a->zone, f->updated, &uday, &sec);
        if (strcmp(f->status, "live") == 0) {
            f->act_start = cday + 1;
            f->act_end = SIM_FOREVER_DAY;
        } else if (strcmp(f->status, "manual") == 0) {
            /* it ran until someone switched it to manual */
            f->act_start = cday + 1;
            f->act_end = uday;
        } else {
            f->act_start = 1;
            f->act_end = 0;
        }
        f->first_action = a->n_actions;
        for (const char *p = tp->pattern; *p; p++) {
            struct simaction *ac = &a->actions[a->n_actions];
            char              kind = *p;

            if (kind == 'S' && !sp->has_sms)
                kind = 'E';
            numeric_id(sd, &r, ac->id);
            ac->flow = i;
            ac->status = f->status;
            ac->created = f->created + range(&r, 60, 3600);
            ac->updated = f->updated;
            ac->message = -1;
            if (kind == 'D') {
                ac->action_type = "TIME_DELAY";
                ac->delay_hours = (int)range(&r, 1, 72);
            } else if (kind == 'B') {
                ac->action_type = "BOOLEAN_BRANCH";
            } else {
                struct simmsg *m = &a->msgs[a->n_msgs];

                ac->action_type = kind == 'S' ? "SEND_SMS" : "SEND_EMAIL";
                sends++;
                alnum_id(sd, &r, m->id);
                m->channel = kind == 'S' ? SIM_SMS : SIM_EMAIL;
                snprintf(m->name, sizeof(m->name), "%s %s %d", tp->name,
                         kind == 'S' ? "SMS" : "Email", sends);
                /* a message nobody named has an empty name in Klaviyo: about one in six
                 * here (those whose id starts with a digit), drawing nothing from r */
                if (m->id[0] >= '0' && m->id[0] <= '9')
                    m->name[0] = '\0';
                snprintf(m->subject, sizeof(m->subject), "%s",
                         subjects[(i + (size_t)sends) % (sizeof(subjects) / sizeof(*subjects))]);
                m->flow = i;
                m->action = a->n_actions;
                m->created = ac->created;
                m->updated = ac->updated;
                /* later messages reach fewer people (some convert or leave first) */
                m->rate = tp->rate * sp->scale * (0.6 + 0.8 * unit(&r));
                for (int s = 1; s < sends; s++)
                    m->rate *= 0.7;
                m->hkey = hash_str(hash_str(sd->seed, sp->name), m->id);
                ac->message = (long)a->n_msgs;
                a->n_msgs++;
            }
            a->n_actions++;
        }
        f->n_actions = a->n_actions - f->first_action;
    }
}

/* --- campaigns -------------------------------------------------------------------------- */

static const char *const themes[] = {
    "Spring Sale", "Summer Kickoff", "New Arrivals", "Weekend Flash Sale", "Free Shipping Days",
    "Staff Picks", "Back to School", "Fall Preview", "Black Friday Early Access",
    "Cyber Monday", "Holiday Gift Guide", "Last Call", "Customer Favourites", "Clearance",
    "Members Only", "Restock Alert", "Limited Edition Drop", "Year in Review",
};
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

static void
gen_channel(simdata *sd, struct simacct *a, const struct acct_spec *sp, enum simchan ch,
            struct simcampaign *out, size_t *n, size_t cap)
{
    struct rng r = rng_for(sd, sp->name, ch == SIM_SMS ? "campaigns-sms" : "campaigns-email");
    int        every = ch == SIM_SMS ? sp->sms_every : sp->email_every;
    kmday      first = 0, last = 0;
    kmday      archive_before = 0;

    if (every <= 0)
        return;
    (void)kmdate_parse(SIM_FIRST_CAMPAIGN_DAY, &first);
    (void)kmdate_parse(SIM_LAST_CAMPAIGN_DAY, &last);
    (void)kmdate_parse("2024-06-01", &archive_before);
    for (kmday d = first + (kmday)range(&r, 0, every - 1); d <= last && *n < cap;
         d += (kmday)range(&r, 1, 2 * every - 1)) {
        struct simcampaign *c = &out[(*n)++];
        int                 hour = (int)range(&r, 0, 23), minute = (int)(range(&r, 0, 3) * 15);
        int64_t             send = simtz_local_to_utc(a->zone, d, hour * 3600 + minute * 60);
        double              u = unit(&r);
        int                 y, m, dd;

        kmdate_to_ymd(d, &y, &m, &dd);
        c->channel = ch;
        snprintf(c->name, sizeof(c->name), "%s%s - %s %d", ch == SIM_SMS ? "SMS: " : "",
                 themes[rnd(&r) % (sizeof(themes) / sizeof(*themes))], months[m - 1], y);
        c->created_at = (send - range(&r, 1, 10) * DAY - range(&r, 0, DAY)) * 1000000 +
                        range(&r, 0, 999999);
        c->send_method = range(&r, 0, 9) == 0 ? "smart_send_time" : "static";
        c->list = a->n_lists ? (size_t)(rnd(&r) % a->n_lists) : 0;
        c->audience = (ch == SIM_SMS ? (double)range(&r, 800, 9000)
                                     : (double)range(&r, 3000, 40000)) * sp->scale;
        if (u < 0.03) {
            c->status = "Draft";
            c->scheduled_at = -1;
            c->send_time = -1;
            c->updated_at = c->created_at + range(&r, 60, 86400) * 1000000LL;
        } else {
            c->status = u < 0.05 ? "Cancelled" : u < 0.09 ? "Variations Sent" : "Sent";
            c->active = u >= 0.05;
            c->send_time = send * 1000000;
            c->scheduled_at = (send - range(&r, 3600, 4 * DAY)) * 1000000 + range(&r, 0, 999999);
            if (c->scheduled_at < c->created_at)
                c->scheduled_at = c->created_at + 1000000;
            c->updated_at = (send + range(&r, 60, 7200)) * 1000000 + range(&r, 0, 999999);
            c->send_hour = simdata_hour(d, hour);
        }
        c->archived = d < archive_before && c->active && range(&r, 0, 99) < 15;
    }
}

static int
cmp_created(const void *x, const void *y)
{
    const struct simcampaign *a = x, *b = y;

    return a->created_at < b->created_at ? -1 : a->created_at > b->created_at;
}

static void
gen_campaigns(simdata *sd, struct simacct *a, const struct acct_spec *sp)
{
    size_t cap = 2000;
    struct rng r = rng_for(sd, sp->name, "campaign-ids");

    a->campaigns = km_xcalloc(cap, sizeof(*a->campaigns));
    gen_channel(sd, a, sp, SIM_EMAIL, a->campaigns, &a->n_campaigns, cap);
    gen_channel(sd, a, sp, SIM_SMS, a->campaigns, &a->n_campaigns, cap);
    /* Klaviyo lists by creation: interleave the channels by created_at, then name them */
    qsort(a->campaigns, a->n_campaigns, sizeof(*a->campaigns), cmp_created);
    for (size_t i = 0; i < a->n_campaigns; i++) {
        struct simcampaign *c = &a->campaigns[i];

        ulid(sd, &r, c->created_at / 1000, c->id);
        c->hkey = hash_str(hash_str(sd->seed, sp->name), c->id);
    }
}

/* --- the world -------------------------------------------------------------------------- */

static void
gen_account(simdata *sd, struct simacct *a, const struct acct_spec *sp)
{
    struct rng r = rng_for(sd, sp->name, "account");

    km_strlcpy(a->name, sp->name, sizeof(a->name));
    km_strlcpy(a->label, sp->label, sizeof(a->label));
    km_strlcpy(a->tz, sp->tz, sizeof(a->tz));
    km_strlcpy(a->currency, sp->currency, sizeof(a->currency));
    a->zone = simtz_get(sp->tz);
    if (!a->zone) {
        fprintf(stderr, "simdata: the tz database lacks %s\n", sp->tz);
        abort();
    }
    a->has_sms = sp->has_sms;
    a->org = sp->org;
    a->sender_email = sp->sender;
    a->website = sp->website;
    a->street = sp->street;
    a->city = sp->city;
    a->region = sp->region;
    a->country = sp->country;
    a->zip = sp->zip;
    a->industry = sp->industry;
    a->locale = sp->locale;
    (void)kmdate_parse(SIM_EVENTS_FROM, &a->events_from);
    alnum_id(sd, &r, a->id);
    private_key(rng_for(sd, sp->name, "private-key"), a->key);
    if (strcmp(sp->name, "acme") == 0)
        private_key(rng_for(sd, sp->name, "limited-key"), a->limited_key);
    gen_metrics(sd, a, sp);
    gen_lists(sd, a, sp);
    gen_flows(sd, a, sp);
    gen_campaigns(sd, a, sp);
}

simdata *
simdata_new(uint64_t seed)
{
    simdata *sd = km_xcalloc(1, sizeof(*sd));

    sd->seed = seed;
    sd->ids_cap = 1 << 14;
    sd->ids = km_xcalloc(sd->ids_cap, sizeof(*sd->ids));
    sd->n_accts = sizeof(specs) / sizeof(specs[0]);
    sd->accts = km_xcalloc(sd->n_accts, sizeof(*sd->accts));
    for (size_t i = 0; i < sd->n_accts; i++)
        gen_account(sd, &sd->accts[i], &specs[i]);
    free(sd->ids);
    sd->ids = NULL;
    return sd;
}

void
simdata_free(simdata *sd)
{
    if (!sd)
        return;
    for (size_t i = 0; i < sd->n_accts; i++) {
        struct simacct *a = &sd->accts[i];

        free(a->metrics);
        free(a->lists);
        free(a->campaigns);
        free(a->flows);
        free(a->actions);
        free(a->msgs);
    }
    free(sd->accts);
    free(sd->ids);
    free(sd);
}

uint64_t
simdata_seed(const simdata *sd)
{
    return sd->seed;
}

size_t
simdata_account_count(const simdata *sd)
{
    return sd->n_accts;
}

const struct simacct *
simdata_account(const simdata *sd, size_t i)
{
    return i < sd->n_accts ? &sd->accts[i] : NULL;
}

const struct simacct *
simdata_account_by_name(const simdata *sd, const char *name)
{
    for (size_t i = 0; name && i < sd->n_accts; i++) {
        if (strcmp(sd->accts[i].name, name) == 0)
            return &sd->accts[i];
    }
    return NULL;
}

/* 1 when a equals b, looking at every byte of the known key whatever the candidate is */
static int
same_key(const char *known, const char *cand)
{
    size_t        kl = strlen(known), cl = strlen(cand);
    unsigned char diff = (unsigned char)(kl != cl);

    for (size_t i = 0; i < kl; i++)
        diff |= (unsigned char)(known[i] ^ (i < cl ? cand[i] : 0));
    return diff == 0 && kl > 0;
}

const struct simacct *
simdata_account_by_key(const simdata *sd, const char *key, int *limited)
{
    const struct simacct *found = NULL;

    if (limited)
        *limited = 0;
    for (size_t i = 0; key && i < sd->n_accts; i++) {
        if (same_key(sd->accts[i].key, key))
            found = &sd->accts[i];
        if (sd->accts[i].limited_key[0] && same_key(sd->accts[i].limited_key, key)) {
            found = &sd->accts[i];
            if (limited)
                *limited = 1;
        }
    }
    return found;
}

#define FIND(arr, n, idv)                                                                     \
    do {                                                                                      \
        for (size_t i_ = 0; (idv) && i_ < (n); i_++) {                                        \
            if (strcmp((arr)[i_].id, (idv)) == 0)                                             \
                return &(arr)[i_];                                                            \
        }                                                                                     \
        return NULL;                                                                          \
    } while (0)

const struct simmetric *
simdata_metric(const struct simacct *a, const char *id)
{
    FIND(a->metrics, a->n_metrics, id);
}

const struct simlist *
simdata_list(const struct simacct *a, const char *id)
{
    FIND(a->lists, a->n_lists, id);
}

const struct simcampaign *
simdata_campaign(const struct simacct *a, const char *id)
{
    FIND(a->campaigns, a->n_campaigns, id);
}

const struct simflow *
simdata_flow(const struct simacct *a, const char *id)
{
    FIND(a->flows, a->n_flows, id);
}

const struct simaction *
simdata_action(const struct simacct *a, const char *id)
{
    FIND(a->actions, a->n_actions, id);
}

const struct simmsg *
simdata_msg(const struct simacct *a, const char *id)
{
    FIND(a->msgs, a->n_msgs, id);
}

const struct simmetric *
simdata_metric_by_name(const struct simacct *a, const char *name)
{
    static const char *const pref[] = { "Klaviyo", "Shopify", NULL };

    for (int p = 0; pref[p]; p++) {
        for (size_t i = 0; name && i < a->n_metrics; i++) {
            if (strcmp(a->metrics[i].name, name) == 0 &&
                strcmp(a->metrics[i].integration_name, pref[p]) == 0)
                return &a->metrics[i];
        }
    }
    for (size_t i = 0; name && i < a->n_metrics; i++) {
        if (strcmp(a->metrics[i].name, name) == 0)
            return &a->metrics[i];
    }
    return NULL;
}

const char *
simdata_channel_name(enum simchan ch)
{
    return ch == SIM_SMS ? "sms" : "email";
}

simhour
simdata_hour(kmday day, int hour)
{
    return (simhour)day * 24 + hour;
}
