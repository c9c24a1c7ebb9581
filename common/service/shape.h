/* shape.h — answers bounded for their reader: sorting, paging and top-N series, applied to a
 * tool's finished `data` after the tool has computed everything (so totals stay over all rows).
 *
 * Owns:    a kmshape_spec is static registry metadata (borrowed for the life of the process).
 *          kmshape_apply changes `data` in place; the kmshape_info it fills owns `totals`
 *          (kmshape_info_clear releases it).
 * Threads: no state; safe from any service thread (a json tree belongs to one thread).
 * Fails:   KM_INVALID_ARGUMENT when sort_by names a statistic the series does not carry
 *          (the input schema checks everything else); `data` is then unchanged.
 *
 * Two audiences (kmshape_view): REST keeps the seed's full answers unless the caller passes
 * limit / offset / sort_by; a model (MCP) gets the defaults below for what it did not pass.
 * limit 0 always means "every row".
 */
#ifndef KM_SHAPE_H
#define KM_SHAPE_H

#include "err.h"

#include <json-c/json.h>
#include <stddef.h>

/* Who reads the answer. */
typedef enum { KMSHAPE_REST = 0, KMSHAPE_MODEL = 1 } kmshape_view;

/* How a transport says it serves a model: this request header with this value (the stdio
 * shim sends it; REST clients do not, so REST answers stay the seed's). */
#define KMSHAPE_VIEW_HEADER "X-Answer-For"
#define KMSHAPE_VIEW_MODEL "model"

/* The model's defaults, in one place: rows of a list tool, series of a series tool. */
#define KMSHAPE_MODEL_ROWS 25
#define KMSHAPE_MODEL_SERIES 10

/* The most a caller may ask for in one page (limit's schema maximum); 0 still means all. */
#define KMSHAPE_MAX_LIMIT 10000

/* How one tool's answer is shaped. A list tool has `rows`; a series tool has series = 1. */
struct kmshape_spec {
    const char        *rows;        /* the array of row objects in data ("campaigns") */
    const char        *count;       /* its count field ("campaign_count"), or NULL */
    const char        *noun;        /* "campaigns", for people */
    const char *const *sortable;    /* NULL-terminated fields sort_by accepts */
    const char        *model_sort;  /* sort_by when a model passed none (NULL: tool order) */
    const char *const *columns;     /* the text table's columns (NULL-terminated) */
    int                metric_rows; /* rows carry the metric block: totals are summed */
    int                series;      /* data.series: top N by a statistic, the rest "other" */
};

/* What shaping did, for the text summary. */
struct kmshape_info {
    int          paged;         /* limit/offset/sort applied (data has truncated, total_count) */
    size_t       total;         /* rows (or series) before paging */
    size_t       offset;
    size_t       shown;         /* rows (or series, "other" not counted) left in data */
    size_t       limit;         /* 0: no limit */
    int          truncated;     /* rows were left out */
    const char  *sort_by;       /* borrowed (args or spec), NULL: tool order */
    int          desc;          /* 1: highest first */
    size_t       other;         /* series summed into the "other" series */
    json_object *totals;        /* metric_rows: the metric block summed over ALL rows; owned */
};

/* 1 when a series statistic can be summed across series ("opens"), 0 for ratios
 * ("open_rate", "average_order_value", "revenue_per_recipient"). */
int kmshape_additive(const char *statistic);

/* Shape `data` (a tool's answer, changed in place) by `args` (limit, offset, sort_by,
 * sort_order) and the view's defaults. spec NULL: nothing to do (KM_OK, info zeroed). */
kmcode kmshape_apply(const struct kmshape_spec *spec, json_object *args, kmshape_view view,
                     json_object *data, struct kmshape_info *info, kmerr *err);

/* Refuse, before any Klaviyo request, arguments that shaping would refuse afterwards: a
 * series sort_by outside the statistics the caller asked for. */
kmcode kmshape_check(const struct kmshape_spec *spec, json_object *args, kmerr *err);

/* Release info->totals. NULL ok. */
void kmshape_info_clear(struct kmshape_info *info);

#endif
