/* promtext.h — a strict parser of the Prometheus text exposition format (version 0.0.4), for
 * tests that scrape GET /metrics.
 *
 * Owns:    *out of promtext_parse is a new json object the caller puts.
 * Threads: no shared state.
 * Fails:   -1 and a reason naming the line for anything the format does not allow: a bad
 *          metric or label name, an unknown escape, a value that is not a float, a missing
 *          final newline, a TYPE after the family's first sample or given twice, a family
 *          whose samples are not contiguous, a duplicate series, a negative counter, and for
 *          histograms buckets without le, not cumulative, or a +Inf bucket that is not _count.
 *
 * Each series is keyed `name{l1="v1",l2="v2"}` with its labels sorted by name (just `name`
 * without labels); the value is a double.
 */
#ifndef KM_PROMTEXT_H
#define KM_PROMTEXT_H

#include <json-c/json.h>
#include <stddef.h>

int promtext_parse(const char *text, json_object **out, char *why, size_t cap);

/* The value of series `key` in a parse result, or 0 when it is absent. */
double promtext_value(json_object *series, const char *key);

#endif
