/* simstats.h — the simulated activity: hourly message statistics and metric events, computed
 * on demand from a hash of (seed, entity, local hour), and Klaviyo's report statistics
 * derived from summed counts.
 *
 * Owns:    nothing; results are written into caller memory.
 * Threads: pure functions of their arguments; safe from any thread.
 * Fails:   nothing fails here; simstat_find returns -1 for an unknown statistic name.
 *
 * Hours are the account's local wall-clock hours (simdata.h, simhour). Per hour:
 * recipients >= delivered >= opens_unique >= clicks_unique (email), bounced = recipients -
 * delivered, opens <= ... only for email (SMS opens are 0), clicks >= clicks_unique,
 * unsubscribes >= unsubscribe_uniques, conversions >= conversion_uniques, conversion value in
 * whole cents. Sums keep every one of those relations, so every window does too.
 * A campaign is active for SIM_CAMPAIGN_HOURS from its send hour, decaying (simstat_campaign
 * counts that activity by event time, simstat_campaign_sent by send date); a flow message is
 * active every hour of its flow's act_start..act_end days. Every hour of the day (those right
 * after midnight and right before it included) can carry activity.
 */
#ifndef SIM_STATS_H
#define SIM_STATS_H

#include "simdata.h"

#include <stdint.h>

enum simcount {
    SIMC_RECIPIENTS = 0,
    SIMC_DELIVERED,
    SIMC_BOUNCED,
    SIMC_FAILED,
    SIMC_OPENS,
    SIMC_OPENS_UNIQUE,
    SIMC_CLICKS,
    SIMC_CLICKS_UNIQUE,
    SIMC_UNSUBSCRIBES,
    SIMC_UNSUBSCRIBE_UNIQUES,
    SIMC_SPAM_COMPLAINTS,
    SIMC_CONVERSIONS,
    SIMC_CONVERSION_UNIQUES,
    SIMC_CONVERSION_CENTS,     /* conversion_value in the account currency's cents */
    SIMC_COUNT
};

struct simcounts {
    int64_t v[SIMC_COUNT];
};

/* The 27 report statistics of REFERENCE.md §5.1, in that (alphabetical) order. */
#define SIMSTAT_COUNT 27

/* Index of a statistic name, or -1. */
int simstat_find(const char *name);
const char *simstat_name(int stat);
/* 1 for a rate or average (a quotient of counts), 0 for a count or conversion_value. */
int simstat_is_rate(int stat);

/* The statistic's value for summed counts, as a report writes it: counts as whole numbers,
 * conversion_value in currency units (cents / 100), rates from the sums with 0.0 when the
 * denominator is 0:
 *   open_rate = opens_unique / delivered          click_rate = clicks_unique / delivered
 *   click_to_open_rate = clicks_unique / opens_unique
 *   bounce_rate = bounced / recipients            delivery_rate = delivered / recipients
 *   failed_rate = failed / recipients             bounced_or_failed = bounced + failed
 *   bounced_or_failed_rate = bounced_or_failed / recipients
 *   conversion_rate = conversion_uniques / delivered
 *   unsubscribe_rate = unsubscribe_uniques / delivered
 *   spam_complaint_rate = spam_complaints / delivered
 *   revenue_per_recipient = conversion_value / delivered
 *   average_order_value = conversion_value / conversions */
double simstat_value(const struct simcounts *c, int stat);

void simstat_add(struct simcounts *into, const struct simcounts *c);
int simstat_is_zero(const struct simcounts *c);

/* Add the campaign's (or flow message's) counts over local hours [from, to] (inclusive) to
 * *out. Hours outside its activity add nothing. */
void simstat_campaign(const struct simacct *a, const struct simcampaign *c, simhour from,
                      simhour to, struct simcounts *out);
void simstat_msg(const struct simacct *a, const struct simmsg *m, simhour from, simhour to,
                 struct simcounts *out);

/* What a campaign-values report counts for a campaign over local hours [from, to]: by send
 * date, as Klaviyo's UI and Reporting API do (REFERENCE.md §5.1) — every count of its whole
 * activity when its send hour falls in [from, to], nothing otherwise. */
void simstat_campaign_sent(const struct simacct *a, const struct simcampaign *c, simhour from,
                           simhour to, struct simcounts *out);

/* The hours in which the campaign or message can have activity (inclusive); empty when
 * *to < *from. */
void simstat_campaign_span(const struct simcampaign *c, simhour *from, simhour *to);
void simstat_msg_span(const struct simacct *a, const struct simmsg *m, simhour *from,
                      simhour *to);

/* --- metric events ------------------------------------------------------------------------
 * A metric's events of one local hour all happen at one instant, minute 17 of that hour
 * (simstat_event_instant). The list pair (SIM_MK_SUB_LIST, SIM_MK_UNSUB_LIST) has events per
 * list, from the list's creation day; every other metric has one stream from
 * acct->events_from, with no list. */
struct simevents {
    int64_t count, unique, value_cents;
};

/* The events of metric m at local hour h (for the list pair: of list l; l is ignored for the
 * other kinds and may be NULL). Overwrites *out. */
void simstat_events(const struct simacct *a, const struct simmetric *m, const struct simlist *l,
                    simhour h, struct simevents *out);

/* 1 when the metric's events are per list. */
int simstat_metric_per_list(const struct simmetric *m);

/* The instant (unix seconds) at which the events of local hour h happen. */
int64_t simstat_event_instant(const struct simacct *a, simhour h);

#endif
