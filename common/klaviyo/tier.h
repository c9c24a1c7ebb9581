/* tier.h — Klaviyo's rate-limit tiers (REFERENCE.md §4): the tier of a request, the windows
 * of each tier, RATE_LIMIT_SCALE, the one transit margin, the buckets a request is charged
 * to, and reads of an account's windows (a plan's estimate, the budget left).
 *
 * Owns:    nothing: the tables are static; reads go through a borrowed kmstore.
 * Threads: every function is safe from any thread (pure, or as safe as the store is).
 * Fails:   kmtier_plan, kmtier_report_budget and kmtier_budget_read return the store's code
 *          with err->msg (kmtier_plan also its own refusals, below); the rest cannot fail
 *          (an unknown tier reads as KMT_XS, the strictest ordinary one).
 *
 * The margin. A slot is taken when a request leaves; Klaviyo counts it when it arrives, and
 * that delay varies (a fresh TLS connection arrives later than a reused one), so two requests
 * a window apart here could land in one of Klaviyo's fixed windows. Every window a request is
 * charged to is therefore KMTIER_TRANSIT_MS longer than Klaviyo's (kmtier_charged); nothing
 * else adds a margin — the store enforces the windows it is given exactly. The allowance is
 * not scaled (network delays do not shrink with RATE_LIMIT_SCALE) and is the same for every
 * window: 1 s becomes 1.25 s, a minute 60.25 s, and the 225/day report cap a day and 250 ms.
 */
#ifndef KM_TIER_H
#define KM_TIER_H

#include "err.h"
#include "store.h"

#include <stdint.h>

#define KMTIER_TRANSIT_MS  250   /* the one rate-limit margin, see above */
#define KMTIER_BUCKET_MAX  128   /* a bucket name, "<account>:<tier or endpoint>" */

/* Klaviyo rate-limit tiers (REFERENCE.md §4). */
typedef enum {
    KMT_REPORTS = 0,   /* campaign/flow values and flow series: 1/s, 2/min, 225/day */
    KMT_XS,            /* 1/s 15/min: /api/accounts, lists with profile_count */
    KMT_S,             /* 3/s 60/min: flows, flow actions, flow messages, metric aggregates */
    KMT_M,             /* 10/s 150/min: campaigns, metrics */
    KMT_L,             /* 75/s 700/min: lists */
    KMT_COUNT
} kmtier;

/* The tier of a request, from its method and path (query string included). A list lookup
 * with additional-fields[list]=profile_count is KMT_XS (it is charged to the lists bucket
 * too); paths not in REFERENCE.md §4 are KMT_XS, the strictest ordinary tier. */
kmtier kmtier_of(const char *method, const char *path);

/* "reports", "XS", "S", "M", "L"; "unknown" out of range. Static. */
const char *kmtier_name(kmtier t);

/* RATE_LIMIT_SCALE: a float in (0, 1] multiplying every window length, so tests can run a
 * minute's worth of rate limiting in a second (against a simulator scaled the same way).
 * Unset: 1. Anything else is 1 with *bad set (the caller warns once). Test-only. */
double kmtier_scale_from_env(int *bad);

/* The window limits of a tier as Klaviyo publishes them, scaled by RATE_LIMIT_SCALE. */
void kmtier_limit(kmtier t, kmlimit *out);

/* The windows a request of tier t is charged to: Klaviyo's, scaled by `scale`, each
 * KMTIER_TRANSIT_MS longer (the margin above). */
void kmtier_charged(kmtier t, double scale, kmlimit *out);

/* ms as whole seconds rounded up, at least 1: how a wait is told (retry_after_s). */
int kmtier_secs_up(int64_t ms);

/* One rate bucket a request is charged to: its store name and its charged windows. */
struct kmtier_bucket {
    char    name[KMTIER_BUCKET_MAX];
    kmlimit lim;
};

/* The buckets (1 or 2) of a request of account `acct` into b[0..2), returned count. Reports:
 * "<acct>:<endpoint>" (each report endpoint has its own windows); other tiers "<acct>:<tier>";
 * a profile_count lookup "<acct>:L" and "<acct>:profile_count" (XS) — the loosest first:
 * after a refusal every bucket is taken again, so only slots of the cheap bucket are ever
 * spent in vain. */
int kmtier_buckets(double scale, const char *acct, const char *method, const char *path,
                   struct kmtier_bucket b[2]);

/* Plan `n_calls` requests of the kind `method` `path` (one tier/bucket) for account `acct`
 * before the first is made (see kmkl_plan in kl.h for the contract). Nothing is taken. */
kmcode kmtier_plan(kmstore *st, double scale, const char *acct, const char *method,
                   const char *path, int n_calls, int64_t deadline_ms, kmerr *err);

/* What an account has left of Klaviyo's limits, read from the store's rate windows without
 * taking a slot. next_free_ms[t]: ms until a request on tier t could be sent (0 when one
 * could go now); for the reports tier, until one could go to every report endpoint (each has
 * its own windows). Report calls: the busiest report endpoint's daily window. */
typedef struct kmtier_budget {
    int     report_calls_used;
    int     report_calls_left;
    int     daily_report_cap;
    int64_t next_free_ms[KMT_COUNT];
} kmtier_budget;

kmcode kmtier_budget_read(kmstore *st, double scale, const char *acct, kmtier_budget *out,
                          kmerr *err);

/* The buckets the report budget is read from, for a reader without a client (an answer from
 * the answer cache, on a worker's loop): KMTIER_BUDGET_BUCKETS names for `acct`, the limit
 * they are charged with (RATE_LIMIT_SCALE applied) and the window that is the day's budget.
 * The budget is the least room left in that window over the buckets, as
 * kmtier_report_budget computes it. */
#define KMTIER_BUDGET_BUCKETS 3
void kmtier_budget_buckets(const char *acct, char names[][KMTIER_BUCKET_MAX], kmlimit *lim,
                           int *win);

/* Report calls `acct` has left today (the busiest report endpoint's 225/day window) and ms
 * until a slot of it frees. */
kmcode kmtier_report_budget(kmstore *st, double scale, const char *acct, int *remaining,
                            int64_t *reset_ms, kmerr *err);

#endif
