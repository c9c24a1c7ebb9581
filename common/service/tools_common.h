/* tools_common.h — what the tool handlers share: windows, the metric block, rates, deltas,
 * timeframes as Klaviyo reads them, and the warnings every report carries.
 *
 * Owns:    functions returning json_object * return new objects for the caller.
 * Threads: no state; safe from any service thread.
 * Fails:   KM_INVALID_ARGUMENT naming the field and the rule.
 */
#ifndef KM_TOOLS_COMMON_H
#define KM_TOOLS_COMMON_H

#include "dates.h"
#include "svc.h"

#include <json-c/json.h>

/* The time-basis warning every performance report carries. Klaviyo's reports count by send
 * date, as its UI does (REFERENCE.md §5.1); the seed's text said "by event time", which was
 * not true of the reports, so this one says what is. */
#define KMT_TIME_BASIS_WARNING                                                              \
    "Klaviyo's reports count by send date, as Klaviyo's UI does: a campaign or flow message " \
    "sent in the window brings all its opens, clicks and conversions, even those that "     \
    "happen after the window; activity in the window from earlier sends is not counted."

/* The statistics the seed requests from values reports, in metric-block order. */
#define KMT_VALUES_STATISTICS                                                               \
    "recipients", "delivered", "opens_unique", "clicks_unique", "bounced", "unsubscribes",   \
        "conversions", "conversion_value"

/* Summed counts of the 11-field metric block (rates are derived, never summed). */
typedef struct kmmetrics {
    double sent, delivered, opens, clicks, bounces, unsubscribes, conversions, conversion_value;
} kmmetrics;

/* Resolve the window of a date-scoped tool from args (timeframe or start_date+end_date)
 * relative to ctx->today, and record it as ctx->period. */
kmcode kmt_window(kmctx *ctx, json_object *args, kmrange *out, kmerr *err);

/* Klaviyo's timeframe for whole local days r.start..r.end: {"start":"D1T00:00:00",
 * "end":"D2T23:59:59"} (REFERENCE.md §5.1, §13: the seed lost the last day). */
json_object *kmt_timeframe(kmrange r);

/* The metric-aggregates datetime filter for whole local days: greater-or-equal D1T00:00:00,
 * less-than (D2+1)T00:00:00 — a new array of two strings. */
json_object *kmt_aggregate_filter(kmrange r);

/* A Klaviyo datetime ("2025-11-27T14:00:00+00:00"; fractions and "Z" allowed; no offset
 * reads as UTC) as unix seconds into *out. 0, or -1 when it is not one. */
int kmt_parse_instant(const char *s, int64_t *out);

/* Chunks of at most 365 days; adds the seed's chunking warning to ctx when r needed more
 * than one. Returns the count; *chunks is a new array the caller frees. */
size_t kmt_chunks(kmctx *ctx, kmrange r, kmrange **chunks);

/* Add a values-report row's statistics (as Klaviyo names them) into m. */
void kmt_metrics_add(kmmetrics *m, json_object *statistics);
void kmt_metrics_sum(kmmetrics *into, const kmmetrics *m);

/* Append the metric block (sent … conversion_value with derived rates) to obj. */
void kmt_metrics_put(json_object *obj, const kmmetrics *m);

/* num / den rounded to 4 places, or NULL (JSON null) when den is 0. */
json_object *kmt_rate(double num, double den);

/* {"absolute": cur - prior, "pct_change": (cur - prior) / prior or null} for two metric
 * blocks' same-named field (rates compared as rates; null when either is null). */
json_object *kmt_deltas(json_object *current, json_object *prior);

/* A filter value is quoted for Klaviyo's filter syntax; ids are validated alphanumerics
 * before they get here. Returns a new string: equals(field,"value"). */
char *kmt_filter_equals(const char *field, const char *value);

/* Longest id the tools put into a Klaviyo URL or filter (the schemas' own bound). */
#define KMT_ID_MAX 64

/* Offer one item of GET /api/metrics to a metric wanted by exact name `want` (NULL: not
 * wanted by name): when the names match and the item beats what *id holds, *id (freed and
 * replaced, a new string) and *klaviyo take it. Names can repeat (REFERENCE.md §6.1): the one
 * whose integration is Klaviyo's own wins, else the first seen. */
void kmt_metric_offer(const char *want, json_object *item, char **id, int *klaviyo);

/* The values-report paths (REFERENCE.md §5.1). */
#define KMT_CAMPAIGN_VALUES_PATH "/api/campaign-values-reports/"
#define KMT_FLOW_VALUES_PATH "/api/flow-values-reports/"

/* Plan `n` requests like `method path` before the first is made — count only the ones the
 * cache will not answer (kmt_uncached_*). kmkl_plan decides: KM_INVALID_ARGUMENT when they
 * can never fit, KM_RATE_LIMITED (retry_after_s > 0) when they fit later, both with
 * calls_needed and calls_that_fit; on KM_OK let the client wait for rate slots until the
 * deadline and count the n requests into the call's progress total. */
kmcode kmt_plan(kmctx *ctx, const char *method, const char *path, int n, kmerr *err);

/* 1 when the shared cache would answer that values report (kmt_values_report with the same
 * arguments) without a Klaviyo call; reads only. */
int kmt_values_cached(kmctx *ctx, const char *kind, kmrange r, json_object *statistics,
                      const char *filter);
/* How many of the values reports over chunks[0..n) (default statistics, `filter`) the cache
 * would not answer: what a plan must count. */
size_t kmt_uncached_values(kmctx *ctx, const char *kind, const kmrange *chunks, size_t n,
                           const char *filter);
/* How many GETs of paths[0..n) the cache would not answer. */
size_t kmt_uncached_gets(kmctx *ctx, const char *const *paths, size_t n);

/* POST one values report of `kind` ("campaign" or "flow") for whole local days r, with
 * `statistics` (borrowed array of names; NULL for KMT_VALUES_STATISTICS), the account's
 * conversion metric and `filter` (NULL for none). On KM_OK *results is a new reference to
 * the report's results array (one row per grouping). */
kmcode kmt_values_report(kmctx *ctx, const char *kind, kmrange r, json_object *statistics,
                         const char *filter, json_object **results, kmerr *err);

/* Values-report rows merged by their grouping key: every row of the same key (up to three
 * grouping values, compared as strings; NULL matches NULL) adds its counts into one kmt_row,
 * kept in first-seen order. A kmt_rows owns its keys; kmt_rows_free releases them. */
typedef struct kmt_row {
    char     *key[3];
    kmmetrics m;
} kmt_row;

typedef struct kmt_rows {
    kmt_row *v;
    size_t   n, cap;
} kmt_rows;

/* Add `statistics` (a values-report row's) into the row of `key`, creating it. Returns its
 * index. */
size_t kmt_rows_add(kmt_rows *rs, const char *const key[3], json_object *statistics);
/* Add summed counts into the row of `key`, creating it. Returns its index. */
size_t kmt_rows_merge(kmt_rows *rs, const char *const key[3], const kmmetrics *m);
/* Add every row of a values report's `results` (borrowed; anything but an array adds
 * nothing) keyed by the groupings named in key_fields; a row without its first grouping is
 * skipped. */
void kmt_rows_add_results(kmt_rows *rs, json_object *results, const char *const key_fields[3]);
void kmt_rows_free(kmt_rows *rs);

/* Run one values report of `kind` ("campaign" or "flow") per chunks[0..n) (already planned
 * by the caller; no plan is made here) and add every row into `rows`, keyed by the
 * groupings named in key_fields (a NULL field keeps that key part NULL); a row without its
 * first grouping is skipped. On failure `rows` keeps what was merged so far. */
kmcode kmt_fetch_chunks(kmctx *ctx, const char *kind, const kmrange *chunks, size_t n,
                        const char *filter, const char *const key_fields[3], kmt_rows *rows,
                        kmerr *err);

/* kmt_fetch_chunks over r: split into kmt_chunks, planned against the report budget first
 * when there is more than one chunk. */
kmcode kmt_fetch_values(kmctx *ctx, const char *kind, kmrange r, const char *filter,
                        const char *const key_fields[3], kmt_rows *rows, kmerr *err);

/* Look up the `attributes.name` of each of ids[0..n) (distinct) concurrently as GET
 * `prefix` + id + "/", within the tier's rate (planned; when the plan says no, nothing is
 * fetched and a warning says why). names[i] becomes a new string, or NULL when the id is not
 * a plain alphanumeric id, the lookup failed or the answer had no name (an empty name is no
 * name, and not a failure); a warning counts the
 * failures (`what` names the lookups, e.g. "campaign name"; `fallback` what such rows show
 * instead, e.g. "the send channel"). Only a batch that could not run at all (KM_CANCELLED,
 * the deadline) is an error. */
kmcode kmt_lookup_names(kmctx *ctx, const char *prefix, const char *what, const char *fallback,
                        const char *const *ids, size_t n, char **names, kmerr *err);

/* kmt_lookup_names for the distinct non-NULL values of key part `k` of rows (one lookup per
 * distinct id): on KM_OK row_names[i] becomes a new string with the name of row i's id, and
 * stays as it was (NULL) when the row has no id or its lookup found no name. */
kmcode kmt_lookup_row_names(kmctx *ctx, const kmt_rows *rows, int k, const char *prefix,
                            const char *what, const char *fallback, char **row_names,
                            kmerr *err);

#endif
