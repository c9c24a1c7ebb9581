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

/* The seed's time-basis warning, carried by every performance report. */
#define KMT_TIME_BASIS_WARNING                                                              \
    "Engagement and conversion statistics are attributed by event time, while 'sent' is "  \
    "anchored to the campaign send date; counts in a short window may not align."

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

#endif
