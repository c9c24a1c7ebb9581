/* tools_activity.h — campaign trends: the per-campaign bucket table both bases fill, and the
 * activity basis (when the opens, clicks and orders happened, from metric aggregates).
 *
 * Owns:    a kmt_trend owns its series, their ids and value arrays; kmt_trend_free releases
 *          them (and accepts an empty trend).
 * Threads: no shared state; safe from any service thread.
 * Fails:   kmt_activity_trend returns an envelope code with err->msg (KM_INVALID_ARGUMENT for a
 *          statistic the activity basis cannot give, plan refusals, Klaviyo failures).
 *
 * The activity basis asks metric aggregates (REFERENCE.md §6.2) for Klaviyo's message metrics
 * (Received, Opened, Clicked, Bounced Email and Unsubscribed; Received, Clicked and Failed to
 * Deliver SMS) grouped by $message, and for the account's conversion metric (Placed Order,
 * count and value) grouped by $attributed_message: daily, in the account's timezone, one call
 * per metric per 365 days, on the S tier (no report budget). Each day lands in the bucket
 * holding it; campaign messages map to campaigns through GET /api/campaigns (per channel,
 * archived and not, cached; relationships.campaign-messages). Events of other messages (flows) are left out.
 * Aggregates count by event time, so these numbers do not match Klaviyo's campaign reports.
 */
#ifndef KM_TOOLS_ACTIVITY_H
#define KM_TOOLS_ACTIVITY_H

#include "dates.h"
#include "svc.h"

#include <json-c/json.h>

/* One campaign (and channel) of a trend: nstats x nb values, statistic-major. */
struct kmt_cseries {
    char   *id, *channel;
    double *v;
};

typedef struct kmt_trend {
    struct kmt_cseries *v;
    size_t              n, cap;
    size_t              nstats, nb;   /* set before the first kmt_trend_of */
} kmt_trend;

/* The series of (id, channel), created with zeros when new. channel may be NULL. */
struct kmt_cseries *kmt_trend_of(kmt_trend *t, const char *id, const char *channel);
void kmt_trend_free(kmt_trend *t);

/* 1 when the activity basis can give statistic `name`. */
int kmt_activity_supports(const char *name);

/* Fill t (nstats = length of stats, nb = the buckets kmdate_buckets gives for r and iv) with
 * each campaign's activity per bucket; only_campaign (a validated id, or NULL) narrows to one
 * campaign. Plans its aggregate calls (uncached ones) before the first. */
kmcode kmt_activity_trend(kmctx *ctx, kmrange r, kminterval iv, json_object *stats,
                          const char *only_campaign, kmt_trend *t, kmerr *err);

#endif
