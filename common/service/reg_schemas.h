/* reg_schemas.h — the tools' JSON Schemas, as text (private to reg.c).
 *
 * J() turns JSON written as C tokens into a string literal (the preprocessor escapes the
 * quotes), so the schemas read as JSON; adjacent literals join the shared fragments.
 */
#ifndef KM_REG_SCHEMAS_H
#define KM_REG_SCHEMAS_H

#define J(...) #__VA_ARGS__

/* --- inputs ---------------------------------------------------------------------------- */

#define IN_ACCOUNT J("account":{"type":"string","pattern":"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",  \
    "description":"Canonical account name (see klaviyo_list_accounts). Optional when one account is configured, required when several are."})

#define IN_WINDOW J("start_date":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",     \
    "description":"Inclusive start date, YYYY-MM-DD, in the account's timezone. Use with end_date, or use timeframe instead."}, \
  "end_date":{"type":"string","pattern":"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",                        \
    "description":"Inclusive end date, YYYY-MM-DD (the whole day counts)."},                     \
  "timeframe":{"type":"string","enum":["today","yesterday","last_7_days","last_30_days",         \
    "last_90_days","last_365_days","this_month","last_month","year_to_date"],                     \
    "description":"Named window resolved in the account's timezone: trailing last_N_days windows end yesterday; this_month and year_to_date run through today. Alternative to start_date+end_date."})

#define ID_PATTERN J("type":"string","pattern":"^[A-Za-z0-9]{1,64}$")

#define STATISTICS_ENUM J(["average_order_value","bounce_rate","bounced","bounced_or_failed", \
    "bounced_or_failed_rate","click_rate","click_to_open_rate","clicks","clicks_unique",         \
    "conversion_rate","conversion_uniques","conversion_value","conversions","delivered",        \
    "delivery_rate","failed","failed_rate","open_rate","opens","opens_unique","recipients",      \
    "revenue_per_recipient","spam_complaint_rate","spam_complaints","unsubscribe_rate",          \
    "unsubscribe_uniques","unsubscribes"])

/* Paging for list tools: IN_PAGE_HEAD <JSON array of sortable fields> IN_PAGE_TAIL. The
 * defaults live in shape.h (KMSHAPE_MODEL_ROWS, KMSHAPE_MAX_LIMIT). */
#define IN_PAGE_HEAD J("limit":{"type":"integer","minimum":0,"maximum":10000,                \
    "description":"Rows to return, 0 for all. Default: all over REST, 25 for a model (MCP); totals and counts always cover every row."}, \
  "offset":{"type":"integer","minimum":0,                                                    \
    "description":"Rows to skip after sorting (default 0): with limit, pages through the rest."}, \
  "sort_by":{"type":"string","enum":)
#define IN_PAGE_TAIL J(,"description":"Order rows by this field before paging: numbers highest first, names A to Z, missing values last, ties in the tool's order."}, \
  "sort_order":{"type":"string","enum":["asc","desc"],"description":"Reverse the natural order of sort_by."})

/* Top-N series: the rest are summed into one "other" series. */
#define IN_SERIES_LIMIT J("limit":{"type":"integer","minimum":0,"maximum":10000,          \
    "description":"Series to keep, ranked by sort_by summed over the window; the rest are summed into one series with groupings {\"other\":true,\"series_count\":N} (ratios there are null). 0 keeps all. Default: all over REST, 10 for a model (MCP)."}, \
  "sort_by":{"type":"string","enum":) STATISTICS_ENUM J(,                                    \
    "description":"The statistic that ranks series (default conversion_value when requested, else the first summable statistic); must be among statistics."}, \
  "sort_order":{"type":"string","enum":["asc","desc"],"description":"desc (default): the largest series first; asc: the smallest."})

#define OBJ_OPEN J({"type":"object","additionalProperties":false,"properties":{)
#define OBJ_CLOSE J(}})

/* What a paged answer adds to its data (present when limit, offset or sort_by applied). */
#define OUT_PAGED J("truncated":{"type":"boolean"},"total_count":{"type":"integer","minimum":0})

/* --- outputs --------------------------------------------------------------------------- */

#define NUM J({"type":"number"})
#define NUM_OR_NULL J({"type":["number","null"]})
#define STR_OR_NULL J({"type":["string","null"]})
#define INT J({"type":"integer","minimum":0})
#define INT_OR_NULL J({"type":["integer","null"]})
#define PERIOD J({"type":"object","required":["start_date","end_date"],"properties":{        \
    "start_date":{"type":"string"},"end_date":{"type":"string"}}})

#define METRIC_PROPS                                                                         \
    J("sent":) NUM J(,"delivered":) NUM J(,"opens":) NUM J(,"open_rate":) NUM_OR_NULL        \
    J(,"clicks":) NUM J(,"click_rate":) NUM_OR_NULL J(,"bounces":) NUM                        \
    J(,"bounce_rate":) NUM_OR_NULL J(,"unsubscribes":) NUM J(,"conversions":) NUM            \
    J(,"conversion_value":) NUM
#define METRIC_REQUIRED J("sent","delivered","opens","open_rate","clicks","click_rate",     \
    "bounces","bounce_rate","unsubscribes","conversions","conversion_value")
#define METRIC_BLOCK J({"type":"object","required":[) METRIC_REQUIRED J(],"properties":{)    \
    METRIC_PROPS J(}})

#define DELTA J({"type":"object","required":["absolute","pct_change"],"properties":{        \
    "absolute":{"type":["number","null"]},"pct_change":{"type":["number","null"]}}})

#define GROWTH J({"type":"object","required":["subscribed","unsubscribed","net"],"properties":{ \
    "subscribed":{"type":["integer","null"]},"unsubscribed":{"type":["integer","null"]},        \
    "net":{"type":["integer","null"]}}})

#endif
