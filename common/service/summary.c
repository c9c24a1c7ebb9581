/* summary.c — the Markdown text of a tool answer (see summary.h). */
#include "summary.h"
#include "buf.h"
#include "json.h"
#include "util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room kept for what follows a table (the paging line, warnings). */
#define FOOTER_RESERVE 6000
/* The longest cell: names beyond it end in "...". */
#define CELL_MAX 48
/* Per-bucket rows of a series table. */
#define MAX_BUCKET_ROWS 120
/* Columns of a series table. */
#define MAX_STAT_COLUMNS 8

/* --- cells ----------------------------------------------------------------------------- */

static int
is_ratio_name(const char *field)
{
    return !kmshape_additive(field);
}

/* 1234567.891 -> "1,234,567.89"; integral values get no decimals. */
static void
put_number(kmbuf *b, double v)
{
    char   digits[64], *p = digits;
    size_t n, lead;
    int    integral = fabs(v - round(v)) < 1e-9;

    if (!isfinite(v)) {
        kmbuf_appendf(b, "-");
        return;
    }
    snprintf(digits, sizeof(digits), integral ? "%.0f" : "%.2f", v);
    if (*p == '-') {
        kmbuf_append(b, "-", 1);
        p++;
    }
    n = strcspn(p, ".");
    lead = n % 3 ? n % 3 : 3;
    kmbuf_append(b, p, lead);
    for (size_t i = lead; i < n; i += 3) {
        kmbuf_append(b, ",", 1);
        kmbuf_append(b, p + i, 3);
    }
    kmbuf_appendf(b, "%s", p + n);
}

/* A value as a table cell: rates as percentages, counts with separators, text escaped. */
static void
put_cell(kmbuf *b, const char *field, json_object *v)
{
    if (!v) {
        kmbuf_append(b, "-", 1);
        return;
    }
    switch (json_object_get_type(v)) {
    case json_type_int:
    case json_type_double:
        if (is_ratio_name(field) && strstr(field, "rate")) {
            kmbuf_appendf(b, "%.1f%%", json_object_get_double(v) * 100.0);
            return;
        }
        put_number(b, json_object_get_double(v));
        return;
    case json_type_boolean:
        kmbuf_appendf(b, "%s", json_object_get_boolean(v) ? "yes" : "no");
        return;
    case json_type_string: {
        const char *s = json_object_get_string(v);
        size_t      n = 0;

        for (; *s && n < CELL_MAX; s++, n++) {
            if (*s == '|')
                kmbuf_append(b, "\\|", 2);
            else if (*s == '\n' || *s == '\r' || *s == '\t')
                kmbuf_append(b, " ", 1);
            else
                kmbuf_append(b, s, 1);
        }
        /* never stop inside a UTF-8 sequence */
        while (*s && ((unsigned char)*s & 0xC0) == 0x80)
            kmbuf_append(b, s++, 1);
        if (*s)
            kmbuf_append(b, "...", 3);
        return;
    }
    default:
        kmbuf_appendf(b, "%s", kmjson_text(v));
        return;
    }
}

static void
table_head(kmbuf *b, const char *first, const char *const *cols, size_t ncols)
{
    if (first)
        kmbuf_appendf(b, "| %s ", first);
    for (size_t i = 0; i < ncols; i++)
        kmbuf_appendf(b, "| %s ", cols[i]);
    kmbuf_append(b, "|\n", 2);
    if (first)
        kmbuf_append(b, "|---", 4);
    for (size_t i = 0; i < ncols; i++)
        kmbuf_append(b, "|---", 4);
    kmbuf_append(b, "|\n", 2);
}

static size_t
count_of(const char *const *list)
{
    size_t n = 0;

    while (list && list[n])
        n++;
    return n;
}

/* --- header and footer ----------------------------------------------------------------- */

static void
put_header(kmbuf *b, const struct kmtool *tool, json_object *env)
{
    json_object *meta = kmjson_get(env, "metadata");
    json_object *period = kmjson_get(meta, "period");
    const char  *acct = kmjson_str(meta, "account");
    const char  *cur = kmjson_str(meta, "currency");

    kmbuf_appendf(b, "## %s", tool->title);
    if (acct)
        kmbuf_appendf(b, " - account `%s`", acct);
    if (period)
        kmbuf_appendf(b, ", %s to %s", kmjson_str(period, "start_date"),
                      kmjson_str(period, "end_date"));
    kmbuf_append(b, "\n", 1);
    if (cur)
        kmbuf_appendf(b, "Money in %s.\n", cur);
    kmbuf_append(b, "\n", 1);
}

static void
put_warnings(kmbuf *b, json_object *env)
{
    json_object *w = kmjson_get(env, "warnings");
    size_t       n = json_object_array_length(w);

    if (!w || n == 0)
        return;
    kmbuf_appendf(b, "\nWarnings:\n");
    for (size_t i = 0; i < n; i++)
        kmbuf_appendf(b, "- %s\n", json_object_get_string(json_object_array_get_idx(w, i)));
}

/* --- list tools ------------------------------------------------------------------------ */

static void
put_totals(kmbuf *b, const struct kmshape_spec *spec, json_object *data,
           const struct kmshape_info *info)
{
    json_object *totals = info && info->totals ? info->totals : kmjson_get(data, "totals");
    json_object *profiles = kmjson_get(data, "total_profiles");
    size_t       total = info && info->paged ? info->total
                         : json_object_array_length(kmjson_get(data, spec->rows));
    int          first = 1;

    kmbuf_appendf(b, "%zu %s in all.", total, spec->noun);
    if (profiles) {
        kmbuf_appendf(b, " Profiles summed over all lists (not deduplicated): ");
        put_cell(b, "total_profiles", profiles);
        kmbuf_append(b, ".", 1);
    }
    if (totals && json_object_is_type(totals, json_type_object)) {
        kmbuf_appendf(b, "\nTotals over all %zu %s: ", total, spec->noun);
        json_object_object_foreach(totals, key, val) {
            kmbuf_appendf(b, "%s%s ", first ? "" : " · ", key);
            put_cell(b, key, val);
            first = 0;
        }
        kmbuf_append(b, ".", 1);
    }
    kmbuf_append(b, "\n\n", 2);
}

static void
put_paging(kmbuf *b, const struct kmshape_spec *spec, const struct kmshape_info *info)
{
    if (!info || !info->paged)
        return;
    if (info->shown == 0) {
        kmbuf_appendf(b, "No %s in this page (%zu in all).", spec->noun, info->total);
    } else if (!info->truncated) {
        kmbuf_appendf(b, "All %zu %s shown", info->total, spec->noun);
    } else {
        kmbuf_appendf(b, "Showing %zu-%zu of %zu %s", info->offset + 1,
                      info->offset + info->shown, info->total, spec->noun);
    }
    if (info->shown > 0 && info->sort_by)
        kmbuf_appendf(b, " by %s, %s first", info->sort_by,
                      info->desc ? "highest" : "lowest");
    if (info->shown > 0)
        kmbuf_append(b, ".", 1);
    if (info->truncated) {
        kmbuf_appendf(b, " %zu left out: pass offset=%zu for the next page, limit (0 for all) "
                      "or sort_by (", info->total - info->shown, info->offset + info->shown);
        for (size_t i = 0; spec->sortable && spec->sortable[i]; i++)
            kmbuf_appendf(b, "%s%s", i ? ", " : "", spec->sortable[i]);
        kmbuf_appendf(b, ") for others.");
    }
    kmbuf_append(b, "\n", 1);
}

static void
render_rows(kmbuf *b, const struct kmshape_spec *spec, json_object *data,
            const struct kmshape_info *info)
{
    json_object *rows = kmjson_get(data, spec->rows);
    size_t       n = json_object_array_length(rows), ncols = count_of(spec->columns), i;

    put_totals(b, spec, data, info);
    if (n > 0) {
        table_head(b, NULL, spec->columns, ncols);
        for (i = 0; i < n && b->len < KMSUMMARY_MAX_CHARS - FOOTER_RESERVE; i++) {
            json_object *r = json_object_array_get_idx(rows, i);

            for (size_t c = 0; c < ncols; c++) {
                kmbuf_append(b, "| ", 2);
                put_cell(b, spec->columns[c], kmjson_get(r, spec->columns[c]));
                kmbuf_append(b, " ", 1);
            }
            kmbuf_append(b, "|\n", 2);
        }
        if (i < n)
            kmbuf_appendf(b, "(table cut after %zu of these %zu rows to keep this text short; "
                          "structuredContent holds them all)\n", i, n);
        kmbuf_append(b, "\n", 1);
    }
    put_paging(b, spec, info);
}

/* --- series ---------------------------------------------------------------------------- */

static void
put_series_label(kmbuf *b, json_object *groupings)
{
    int first = 1;

    if (kmjson_get(groupings, "other")) {
        kmbuf_appendf(b, "other (%lld series)",
                      (long long)kmjson_num(groupings, "series_count", 0));
        return;
    }
    json_object_object_foreach(groupings, key, val) {
        if (!val)
            continue;
        kmbuf_appendf(b, "%s%s=", first ? "" : ", ", key);
        put_cell(b, key, val);
        first = 0;
    }
    if (first)
        kmbuf_append(b, "(all)", 5);
}

/* The statistic's value over a series: the sum of its buckets, or for a ratio their mean. */
static json_object *
series_value(json_object *arr, const char *stat)
{
    double s = 0;
    size_t k = 0;

    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        if (v) {
            s += json_object_get_double(v);
            k++;
        }
    }
    if (k == 0)
        return NULL;
    return kmjson_double(is_ratio_name(stat) ? s / (double)k : s);
}

static void
render_series(kmbuf *b, json_object *data, const struct kmshape_info *info)
{
    json_object *series = kmjson_get(data, "series");
    json_object *dates = kmjson_get(data, "date_times");
    json_object *stats0 = kmjson_get(json_object_array_get_idx(series, 0), "statistics");
    size_t       ns = json_object_array_length(series), nb = json_object_array_length(dates);
    const char  *cols[MAX_STAT_COLUMNS], *add[MAX_STAT_COLUMNS];
    char         heads[MAX_STAT_COLUMNS][48];
    const char  *hp[MAX_STAT_COLUMNS];
    size_t       ncols = 0, nadd = 0, nstats = 0, i;
    size_t       total = info && info->paged ? info->total : ns;

    if (ns == 0 || !stats0) {
        kmbuf_appendf(b, "Entity %s, %s buckets: %zu; no series: no activity in this window.\n",
                      kmjson_str(data, "entity"), kmjson_str(data, "interval"), nb);
        return;
    }
    json_object_object_foreach(stats0, key, val) {
        (void)val;
        nstats++;
        if (ncols < MAX_STAT_COLUMNS)
            cols[ncols++] = key;
        if (nadd < MAX_STAT_COLUMNS && kmshape_additive(key))
            add[nadd++] = key;
    }
    kmbuf_appendf(b, "Entity %s, %s buckets: %zu", kmjson_str(data, "entity"),
                  kmjson_str(data, "interval"), nb);
    if (nb > 0)
        kmbuf_appendf(b, " (%s to %s)", json_object_get_string(json_object_array_get_idx(dates, 0)),
                      json_object_get_string(json_object_array_get_idx(dates, nb - 1)));
    kmbuf_appendf(b, "; %zu series in all.\n\n", total);
    if (nstats > ncols)
        kmbuf_appendf(b, "(%zu statistics; the tables show the first %zu, structuredContent "
                      "has them all)\n", nstats, ncols);

    /* the window's totals over every series: "other" holds the ones not listed */
    if (nadd > 0) {
        kmbuf_appendf(b, "Totals over all %zu series: ", total);
        for (size_t c = 0; c < nadd; c++) {
            double s = 0;
            for (i = 0; i < ns; i++) {
                json_object *a = kmjson_get(kmjson_get(json_object_array_get_idx(series, i),
                                                       "statistics"), add[c]);
                json_object *v = series_value(a, add[c]);
                s += v ? json_object_get_double(v) : 0;
                json_object_put(v);
            }
            kmbuf_appendf(b, "%s%s ", c ? " · " : "", add[c]);
            put_number(b, s);
        }
        kmbuf_append(b, ".\n\n", 3);
    }

    for (size_t c = 0; c < ncols; c++) {
        snprintf(heads[c], sizeof(heads[c]), "%s%s", cols[c],
                 is_ratio_name(cols[c]) ? " (mean)" : "");
        hp[c] = heads[c];
    }
    kmbuf_appendf(b, "Per series, over the window:\n");
    table_head(b, "series", hp, ncols);
    for (i = 0; i < ns && b->len < KMSUMMARY_MAX_CHARS / 2; i++) {
        json_object *s = json_object_array_get_idx(series, i);

        kmbuf_append(b, "| ", 2);
        put_series_label(b, kmjson_get(s, "groupings"));
        for (size_t c = 0; c < ncols; c++) {
            json_object *v = series_value(kmjson_get(kmjson_get(s, "statistics"), cols[c]),
                                          cols[c]);
            kmbuf_append(b, " | ", 3);
            put_cell(b, cols[c], v);
            json_object_put(v);
        }
        kmbuf_append(b, " |\n", 3);
    }
    if (i < ns)
        kmbuf_appendf(b, "(table cut after %zu of %zu series; structuredContent holds them "
                      "all)\n", i, ns);

    if (nadd > 0 && nb > 0) {
        size_t rows = nb < MAX_BUCKET_ROWS ? nb : MAX_BUCKET_ROWS;

        kmbuf_appendf(b, "\nPer bucket, all series together:\n");
        table_head(b, "bucket", add, nadd);
        for (i = 0; i < rows && b->len < KMSUMMARY_MAX_CHARS - FOOTER_RESERVE; i++) {
            json_object *d = json_object_array_get_idx(dates, i);

            kmbuf_appendf(b, "| %.10s", json_object_get_string(d));
            for (size_t c = 0; c < nadd; c++) {
                double s = 0;
                for (size_t k = 0; k < ns; k++) {
                    json_object *a = kmjson_get(kmjson_get(json_object_array_get_idx(series, k),
                                                           "statistics"), add[c]);
                    json_object *v = json_object_array_get_idx(a, i);
                    s += v ? json_object_get_double(v) : 0;
                }
                kmbuf_append(b, " | ", 3);
                put_number(b, s);
            }
            kmbuf_append(b, " |\n", 3);
        }
        if (i < nb)
            kmbuf_appendf(b, "(%zu more buckets in structuredContent)\n", nb - i);
    }
    kmbuf_append(b, "\n", 1);
    if (info && info->paged) {
        if (info->other > 0)
            kmbuf_appendf(b, "Showing the top %zu of %zu series by %s; the other %zu are summed "
                          "into one \"other\" series (ratios there are null). Pass limit (0 for "
                          "all), sort_by or statistics to change this, or entity_id for one "
                          "%s.\n", info->shown, info->total, info->sort_by ? info->sort_by : "-",
                          info->other, kmjson_str(data, "entity"));
        else
            kmbuf_appendf(b, "All %zu series shown%s%s.\n", info->total,
                          info->sort_by ? ", largest first by " : "",
                          info->sort_by ? info->sort_by : "");
    }
}

/* --- the other tools ------------------------------------------------------------------- */

static void
render_compare(kmbuf *b, json_object *data)
{
    json_object *cur = kmjson_get(data, "current_totals");
    json_object *prior = kmjson_get(data, "prior_totals");
    json_object *deltas = kmjson_get(data, "deltas");
    json_object *cp = kmjson_get(data, "current_period"), *pp = kmjson_get(data, "prior_period");
    static const char *const cols[] = { "current", "prior", "change", "% change" };

    kmbuf_appendf(b, "Entity %s: current %s to %s (%lld entities) against prior %s to %s "
                  "(%lld entities).\n\n", kmjson_str(data, "entity"),
                  kmjson_str(cp, "start_date"), kmjson_str(cp, "end_date"),
                  (long long)kmjson_num(data, "current_entity_count", 0),
                  kmjson_str(pp, "start_date"), kmjson_str(pp, "end_date"),
                  (long long)kmjson_num(data, "prior_entity_count", 0));
    table_head(b, "metric", cols, 4);
    json_object_object_foreach(cur, key, val) {
        json_object *d = kmjson_get(deltas, key);
        json_object *pct = kmjson_get(d, "pct_change");

        kmbuf_appendf(b, "| %s | ", key);
        put_cell(b, key, val);
        kmbuf_append(b, " | ", 3);
        put_cell(b, key, kmjson_get(prior, key));
        kmbuf_append(b, " | ", 3);
        put_cell(b, key, kmjson_get(d, "absolute"));
        kmbuf_append(b, " | ", 3);
        if (pct)
            kmbuf_appendf(b, "%+.1f%%", json_object_get_double(pct) * 100.0);
        else
            kmbuf_append(b, "-", 1);
        kmbuf_append(b, " |\n", 3);
    }
}

static void
render_growth(kmbuf *b, json_object *data)
{
    static const char *const cols[] = { "subscribed", "unsubscribed", "net" };

    table_head(b, "channel", cols, 3);
    json_object_object_foreach(kmjson_get(data, "growth"), key, val) {
        kmbuf_appendf(b, "| %s", key);
        for (size_t c = 0; c < 3; c++) {
            kmbuf_append(b, " | ", 3);
            put_cell(b, cols[c], kmjson_get(val, cols[c]));
        }
        kmbuf_append(b, " |\n", 3);
    }
}

static void
render_structure(kmbuf *b, json_object *data)
{
    static const char *const cols[] = { "action_type", "message_name", "channel", "message_id" };
    json_object *steps = kmjson_get(data, "steps");
    size_t       n = json_object_array_length(steps), i;
    int          first = 1;

    kmbuf_appendf(b, "Flow `%s`: %lld steps (", kmjson_str(data, "flow_id"),
                  (long long)kmjson_num(data, "action_count", 0));
    json_object_object_foreach(kmjson_get(data, "summary"), key, val) {
        kmbuf_appendf(b, "%s%s %d", first ? "" : ", ", key, json_object_get_int(val));
        first = 0;
    }
    kmbuf_appendf(b, ").\n\n");
    table_head(b, "#", cols, 4);
    for (i = 0; i < n && b->len < KMSUMMARY_MAX_CHARS - FOOTER_RESERVE; i++) {
        json_object *s = json_object_array_get_idx(steps, i);

        kmbuf_appendf(b, "| %zu", i + 1);
        for (size_t c = 0; c < 4; c++) {
            kmbuf_append(b, " | ", 3);
            put_cell(b, cols[c], kmjson_get(s, cols[c]));
        }
        kmbuf_append(b, " |\n", 3);
    }
    if (i < n)
        kmbuf_appendf(b, "(table cut after %zu of %zu steps; structuredContent holds them "
                      "all)\n", i, n);
}

static void
render_accounts(kmbuf *b, json_object *data)
{
    json_object *list = kmjson_get(data, "accounts");

    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *a = json_object_array_get_idx(list, i);
        kmbuf_appendf(b, "- `%s`: %s\n", kmjson_str(a, "name"), kmjson_str(a, "label"));
    }
}

/* klaviyo_get_budget: one row per account, the report calls and each tier's wait. */
static void
render_budget(kmbuf *b, json_object *data)
{
    json_object *list = kmjson_get(data, "accounts");

    kmbuf_appendf(b, "| account | report calls used | left today | daily cap | next free slot "
                     "(s) per tier |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < json_object_array_length(list); i++) {
        json_object *a = json_object_array_get_idx(list, i);
        json_object *tiers = kmjson_get(a, "tiers");

        kmbuf_appendf(b, "| %s | %d | %d | %d | ", kmjson_str(a, "account"),
                      (int)kmjson_num(a, "report_calls_used_today", 0),
                      (int)kmjson_num(a, "report_calls_left_today", 0),
                      (int)kmjson_num(a, "daily_report_cap", 0));
        for (size_t t = 0; t < json_object_array_length(tiers); t++) {
            json_object *x = json_object_array_get_idx(tiers, t);
            const char  *name = kmjson_str(x, "tier");

            kmbuf_appendf(b, "%s%s %.1f", t ? ", " : "", name ? name : "?",
                          kmjson_num(x, "next_free_slot_s", 0));
        }
        kmbuf_appendf(b, " |\n");
    }
}

/* Anything else: its compact JSON, cut to fit. */
static void
render_json(kmbuf *b, json_object *data)
{
    const char *t = kmjson_text(data);
    size_t      n = strlen(t), room = KMSUMMARY_MAX_CHARS - FOOTER_RESERVE;

    if (n <= room) {
        kmbuf_appendf(b, "%s\n", t);
        return;
    }
    while (room > 0 && ((unsigned char)t[room] & 0xC0) == 0x80)
        room--;
    kmbuf_append(b, t, room);
    kmbuf_appendf(b, "\n(cut at %zu of %zu characters; structuredContent holds it all)\n", room,
                  n);
}

char *
kmsummary_render(const struct kmtool *tool, json_object *envelope,
                 const struct kmshape_info *info)
{
    json_object *data = kmjson_get(envelope, "data");
    kmbuf        b;

    kmbuf_init(&b, 0);
    put_header(&b, tool, envelope);
    if (tool->shape && tool->shape->series)
        render_series(&b, data, info);
    else if (tool->shape)
        render_rows(&b, tool->shape, data, info);
    else if (kmjson_get(data, "deltas"))
        render_compare(&b, data);
    else if (kmjson_get(data, "growth"))
        render_growth(&b, data);
    else if (kmjson_get(data, "steps"))
        render_structure(&b, data);
    else if (kmjson_get(json_object_array_get_idx(kmjson_get(data, "accounts"), 0),
                        "report_calls_left_today"))
        render_budget(&b, data);
    else if (kmjson_get(data, "accounts"))
        render_accounts(&b, data);
    else
        render_json(&b, data);
    put_warnings(&b, envelope);
    kmbuf_appendf(&b, "\nThe same answer as JSON is in structuredContent.\n");
    if (b.len > KMSUMMARY_MAX_CHARS) {
        /* only many long warnings get here: end cleanly on a character boundary */
        size_t cut = KMSUMMARY_MAX_CHARS - 64;
        while (cut > 0 && ((unsigned char)b.data[cut] & 0xC0) == 0x80)
            cut--;
        b.len = cut;
        b.data[cut] = '\0';
        kmbuf_appendf(&b, "\n(text cut to %d characters)\n", KMSUMMARY_MAX_CHARS - 64);
    }
    return kmbuf_take(&b, NULL);
}
