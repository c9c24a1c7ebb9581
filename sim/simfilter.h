/* simfilter.h — Klaviyo's filter expressions: parse, check against an endpoint's rules, match.
 *
 * Owns:    a simfilter owns its conditions and values; simfilter_free releases them.
 * Threads: no shared state.
 * Fails:   parse and check return -1 with a reason for a person in `why` (never a secret:
 *          only the filter text the caller sent).
 *
 * Grammar (REFERENCE.md §2): expr := op '(' field ',' value ')' | 'and' '(' expr {',' expr} ')';
 * a filter is one or more exprs separated by commas (an implicit AND). Values: 'single' or
 * "double" quoted strings, bare true/false/null/numbers/datetimes (a datetime must be bare:
 * a quoted one is a string and is refused where a datetime is expected), lists [v, ...].
 * Datetimes: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.ffffff]] with an optional Z or +-HH:MM offset.
 */
#ifndef SIM_FILTER_H
#define SIM_FILTER_H

#include "dates.h"

#include <stddef.h>
#include <stdint.h>

enum simfv_kind { SFV_STRING = 0, SFV_BOOL, SFV_NUMBER, SFV_DATETIME, SFV_NULL, SFV_LIST };

struct simfval {
    enum simfv_kind kind;
    char           *s;          /* SFV_STRING: the unquoted text */
    int             b;          /* SFV_BOOL */
    double          num;        /* SFV_NUMBER */
    kmday           day;        /* SFV_DATETIME: the wall time as written ... */
    int             sec;        /* ... seconds into that day */
    int             has_off;    /* 1 when an offset (or Z) was written */
    int             off;        /* seconds east of UTC when has_off */
    struct simfval *items;      /* SFV_LIST */
    size_t          n;
};

struct simcond {
    char           op[24];      /* "equals", "any", "greater-or-equal", ... */
    char           field[64];
    struct simfval val;
};

struct simfilter {
    struct simcond *c;
    size_t          n;
    int             top_level;  /* number of comma-separated top-level expressions */
    int             used_and;   /* 1 when and(...) appeared */
};

/* Parse `text`. On success 0 and *f filled (free with simfilter_free); on failure -1, *f
 * empty, and `why` says what is wrong. */
int simfilter_parse(const char *text, struct simfilter *f, char *why, size_t whylen);
void simfilter_free(struct simfilter *f);

/* What one endpoint accepts for a field: the operators (space-separated names) and the type
 * of the value ("any"/"contains-any" take a list of that type). */
struct simfrule {
    const char     *field;
    const char     *ops;
    enum simfv_kind type;
};

/* Check every condition against rules (terminated by a NULL field). -1 with a reason when a
 * field, operator or value type is not allowed. */
int simfilter_check(const struct simfilter *f, const struct simfrule *rules, char *why,
                    size_t whylen);

/* The UTC instant of a datetime value; one without an offset is read in UTC. */
int64_t simfilter_utc(const struct simfval *v);

/* Does a string / boolean / instant (unix seconds; has=0 for null) satisfy the condition?
 * Operators: equals, any, contains, starts-with, ends-with, contains-any (strings);
 * equals (booleans); equals, greater-than, greater-or-equal, less-than, less-or-equal
 * (instants; a null value never matches). */
int simfilter_match_str(const struct simcond *c, const char *value);
int simfilter_match_bool(const struct simcond *c, int value);
int simfilter_match_time(const struct simcond *c, int has, int64_t t);

/* Parse a datetime as the grammar does (also for report timeframes and aggregate bounds).
 * 0 on success. */
int simfilter_datetime(const char *s, struct simfval *out);

#endif
