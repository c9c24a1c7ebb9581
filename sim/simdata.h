/* simdata.h — the simulator's deterministic world: accounts, metrics, lists, campaigns, flows,
 * flow actions and flow messages, generated from one seed number. No HTTP here.
 *
 * Owns:    a simdata owns every account and entity in it; simdata_free releases all. Every
 *          pointer it hands out (accounts, entities, strings) is borrowed until simdata_free.
 * Threads: immutable after simdata_new; share it freely between threads.
 * Fails:   simdata_new cannot fail (allocation failure aborts, see util.h).
 *
 * Same seed, same world, on every run and every machine: all randomness comes from a hash of
 * (seed, account, entity), never from the clock. Activity (statistics and metric events) is not
 * stored; simstats.h computes it on demand from a hash of (seed, entity, local hour), so years
 * of hourly numbers cost nothing until a report asks for them. The world does not depend on
 * "now": a flow that is live stays active on every later day, whatever the date.
 *
 * Accounts (names fixed, data varies with the seed):
 *   acme  — America/New_York, USD, email + SMS campaigns and flows, more than one page of
 *           every collection (23 lists, 60+ flows, hundreds of campaigns per channel).
 *   kiwi  — Pacific/Auckland (UTC+12/+13, DST in the southern summer), NZD; two lists share
 *           a name, and an "API" duplicate of "Subscribed to List" is listed before Klaviyo's.
 *   nosms — Europe/London, GBP, no SMS at all (no SMS campaigns, flow messages or metrics).
 */
#ifndef SIM_DATA_H
#define SIM_DATA_H

#include "dates.h"
#include "simtz.h"

#include <stddef.h>
#include <stdint.h>

/* Local hours are counted as day * 24 + hour in the account's wall-clock time (kmday days). */
typedef int64_t simhour;

/* Campaigns before this day and after the last one have no sends. */
#define SIM_FIRST_CAMPAIGN_DAY "2023-06-01"
#define SIM_LAST_CAMPAIGN_DAY  "2026-11-15"
/* A campaign's activity lasts this many hours from its send hour. */
#define SIM_CAMPAIGN_HOURS 336
/* Metric events (subscriptions, orders, ...) happen from this day on. */
#define SIM_EVENTS_FROM "2022-01-01"
/* A flow or list that never stops is active until this day (far beyond any test). */
#define SIM_FOREVER_DAY 200000
/* acme's first flow and first list carry the ids of the seed README's curl examples, so the
 * README's commands answer with data against the demo */
#define SIM_EXAMPLE_FLOW_ID "PPF7K3ABCD"
#define SIM_EXAMPLE_LIST_ID "SrEULb"

enum simchan { SIM_EMAIL = 0, SIM_SMS = 1, SIM_CHAN_COUNT };

/* What a metric's events are: the list pair is per list (by:["List"] gives the list name). */
enum simmetric_kind {
    SIM_MK_SUB_LIST = 0,
    SIM_MK_UNSUB_LIST,
    SIM_MK_SUB_EMAIL,
    SIM_MK_UNSUB_EMAIL,
    SIM_MK_SUB_SMS,
    SIM_MK_UNSUB_SMS,
    SIM_MK_ORDER,       /* has a value (sum_value) */
    SIM_MK_OTHER
};

struct simmetric {
    char                id[8];
    const char         *name;               /* exact Klaviyo name, e.g. "Subscribed to List" */
    const char         *integration_name;   /* "Klaviyo", "Shopify", "API" */
    const char         *integration_key;    /* "klaviyo", "shopify", "api" */
    const char         *integration_category; /* "Internal", "eCommerce", "API" */
    char                integration_id[8];
    enum simmetric_kind kind;
    double              rate;               /* mean events per hour (non-list kinds) */
    int64_t             created, updated;   /* unix seconds */
    uint64_t            hkey;
};

struct simlist {
    char        id[8];
    char        name[64];
    const char *opt_in_process;            /* "single_opt_in" | "double_opt_in" */
    int64_t     created, updated;          /* unix seconds */
    kmday       created_day;               /* local day of `created`: events start here */
    int64_t     profile_count;
    double      sub_rate;                  /* mean subscriptions per hour; 0 = a quiet list */
    uint64_t    hkey;
};

struct simcampaign {
    char         id[28];                   /* 26-char ULID */
    char         name[96];
    enum simchan channel;
    const char  *status;                   /* "Sent", "Draft", "Cancelled", ... */
    const char  *send_method;              /* send_strategy.method */
    int          archived;
    int          active;                   /* 1 when it has statistics */
    int64_t      created_at, updated_at;   /* unix microseconds */
    int64_t      scheduled_at, send_time;  /* unix microseconds; -1 = null */
    simhour      send_hour;                /* local hour index of send_time (when active) */
    double       audience;                 /* about how many recipients in total */
    size_t       list;                     /* index of the audience list */
    uint64_t     hkey;
};

struct simflow {
    char        id[16];                    /* 6 alphanumerics; the README example's is 10 */
    char        name[96];
    const char *status;                    /* "live" | "draft" | "manual" */
    const char *trigger_type;              /* "Added to List", "Metric", ... */
    int         archived;
    int64_t     created, updated;          /* unix seconds */
    kmday       act_start, act_end;        /* local days with activity, inclusive; empty when
                                            * act_end < act_start */
    size_t      first_action, n_actions;   /* its actions: actions[first .. first + n) in order */
};

struct simaction {
    char        id[16];                    /* numeric string */
    size_t      flow;                      /* index into flows */
    const char *action_type;               /* SEND_EMAIL, SEND_SMS, TIME_DELAY, BOOLEAN_BRANCH */
    const char *status;                    /* the flow's status */
    int64_t     created, updated;          /* unix seconds */
    long        message;                   /* index into msgs, or -1 (not a send action) */
    int         delay_hours;               /* TIME_DELAY only */
};

struct simmsg {
    char         id[8];
    char         name[96];                 /* "" for an unnamed message (id starts with a digit) */
    enum simchan channel;
    size_t       flow, action;             /* indexes */
    int64_t      created, updated;         /* unix seconds */
    char         subject[96];              /* email subject, or the SMS body */
    double       rate;                     /* mean recipients per hour while the flow is active */
    uint64_t     hkey;
};

struct simacct {
    char               name[16];
    char               label[64];
    char               id[8];              /* = public_api_key */
    char               tz[40];
    const simtz       *zone;
    char               currency[4];
    char               key[40];            /* "pk_" + 34 alphanumerics, every scope */
    char               limited_key[40];    /* acme only ("" otherwise): campaigns + accounts */
    int                has_sms;
    const char        *org, *sender_email, *website, *city, *region, *country, *zip, *street;
    const char        *industry, *locale;
    kmday              events_from;        /* first local day with metric events */

    struct simmetric   *metrics;   size_t n_metrics;
    size_t              conversion_metric;  /* index of the "Placed Order" used for reports */
    struct simlist     *lists;     size_t n_lists;
    struct simcampaign *campaigns; size_t n_campaigns;
    struct simflow     *flows;     size_t n_flows;
    struct simaction   *actions;   size_t n_actions;
    struct simmsg      *msgs;      size_t n_msgs;
};

typedef struct simdata simdata;

simdata *simdata_new(uint64_t seed);
void simdata_free(simdata *sd);
uint64_t simdata_seed(const simdata *sd);

size_t simdata_account_count(const simdata *sd);
const struct simacct *simdata_account(const simdata *sd, size_t i);
const struct simacct *simdata_account_by_name(const simdata *sd, const char *name);

/* The account a key belongs to and whether it is the limited key; NULL when unknown. The
 * comparison does not stop at the first differing byte. */
const struct simacct *simdata_account_by_key(const simdata *sd, const char *key, int *limited);

/* Lookups by id within an account; NULL when absent. */
const struct simmetric *simdata_metric(const struct simacct *a, const char *id);
const struct simlist *simdata_list(const struct simacct *a, const char *id);
const struct simcampaign *simdata_campaign(const struct simacct *a, const char *id);
const struct simflow *simdata_flow(const struct simacct *a, const char *id);
const struct simaction *simdata_action(const struct simacct *a, const char *id);
const struct simmsg *simdata_msg(const struct simacct *a, const char *id);

/* The metric of that exact name the tools should pick when names repeat: the Klaviyo
 * integration's, else Shopify's (the store platform), else the first; NULL when none. */
const struct simmetric *simdata_metric_by_name(const struct simacct *a, const char *name);

/* "email" / "sms", as report rows write send_channel. */
const char *simdata_channel_name(enum simchan ch);

/* Local hour index of local day + hour. */
simhour simdata_hour(kmday day, int hour);

/* A 64-bit mix of a value (splitmix64's finaliser); the simulator's only hash. */
uint64_t simdata_mix(uint64_t x);

#endif
