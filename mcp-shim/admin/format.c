/* format.c — tool answers as aligned tables, RFC 4180 CSV or JSON. */
#include "format.h"
#include "json.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
kmadm_format_parse(const char *name, kmadm_format *out)
{
    if (!name)
        return -1;
    if (strcmp(name, "table") == 0)
        *out = KMADM_TABLE;
    else if (strcmp(name, "csv") == 0)
        *out = KMADM_CSV;
    else if (strcmp(name, "json") == 0)
        *out = KMADM_JSON;
    else
        return -1;
    return 0;
}

/* --- rows -------------------------------------------------------------------------------- */

static void
add_col(struct kmadm_rows *r, const char *name)
{
    for (size_t i = 0; i < r->ncols; i++) {
        if (strcmp(r->cols[i], name) == 0)
            return;
    }
    r->cols = km_xrealloc(r->cols, (r->ncols + 1) * sizeof(*r->cols));
    r->cols[r->ncols++] = km_xstrdup(name);
}

/* Set row[name] = v (a new reference is taken) and note the column. */
static void
put(struct kmadm_rows *r, json_object *row, const char *name, json_object *v)
{
    if (json_object_is_type(v, json_type_array))
        v = json_object_new_string(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    else
        v = json_object_get(v);
    json_object_object_add(row, name, v);
    add_col(r, name);
}

static void
flatten(struct kmadm_rows *r, json_object *row, const char *prefix, json_object *o)
{
    json_object_object_foreach(o, key, val) {
        char *name = prefix ? km_xasprintf("%s.%s", prefix, key) : km_xstrdup(key);

        if (json_object_is_type(val, json_type_object))
            flatten(r, row, name, val);
        else
            put(r, row, name, val);
        free(name);
    }
}

/* A series answer: one row per series and date, the statistics as columns. */
static int
series_rows(struct kmadm_rows *r, json_object *data)
{
    json_object *dates = kmjson_get(data, "date_times"), *series = kmjson_get(data, "series");

    if (!json_object_is_type(dates, json_type_array) ||
        !json_object_is_type(series, json_type_array))
        return 0;
    for (size_t s = 0; s < json_object_array_length(series); s++) {
        json_object *one = json_object_array_get_idx(series, s);
        json_object *groupings = kmjson_get(one, "groupings");
        json_object *stats = kmjson_get(one, "statistics");

        for (size_t i = 0; i < json_object_array_length(dates); i++) {
            json_object *row = json_object_new_object();

            put(r, row, "date_time", json_object_array_get_idx(dates, i));
            if (json_object_is_type(groupings, json_type_object))
                flatten(r, row, NULL, groupings);
            if (json_object_is_type(stats, json_type_object)) {
                json_object_object_foreach(stats, name, vals) {
                    json_object *v = json_object_is_type(vals, json_type_array)
                                         ? json_object_array_get_idx(vals, i)
                                         : NULL;
                    put(r, row, name, v);
                }
            }
            json_object_array_add(r->rows, row);
        }
    }
    return 1;
}

static int
is_object_array(json_object *v)
{
    if (!json_object_is_type(v, json_type_array))
        return 0;
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_object))
            return 0;
    }
    return 1;
}

void
kmadm_rows_from_data(json_object *data, struct kmadm_rows *out)
{
    memset(out, 0, sizeof(*out));
    out->rows = json_object_new_array();
    if (!json_object_is_type(data, json_type_object))
        return;
    if (series_rows(out, data))
        return;
    {
        json_object_object_foreach(data, key, val) {
            (void)key;
            if (!is_object_array(val))
                continue;
            for (size_t i = 0; i < json_object_array_length(val); i++) {
                json_object *row = json_object_new_object();
                flatten(out, row, NULL, json_object_array_get_idx(val, i));
                json_object_array_add(out->rows, row);
            }
            return;
        }
    }
    {
        json_object *row = json_object_new_object();
        flatten(out, row, NULL, data);
        json_object_array_add(out->rows, row);
    }
}

void
kmadm_rows_free(struct kmadm_rows *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ncols; i++)
        free(r->cols[i]);
    free(r->cols);
    json_object_put(r->rows);
    memset(r, 0, sizeof(*r));
}

/* --- cells ------------------------------------------------------------------------------- */

static int
ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);

    return n >= m && strcmp(s + n - m, tail) == 0;
}

static const char *
last_part(const char *col)
{
    const char *dot = strrchr(col, '.');

    return dot ? dot + 1 : col;
}

static int
is_rate(const char *col)
{
    const char *k = last_part(col);

    return ends_with(k, "_rate") || strcmp(k, "pct_change") == 0 ||
           (strstr(col, "_rate.") != NULL && strcmp(k, "absolute") == 0);
}

static int
is_money(const char *col)
{
    return strcmp(last_part(col), "conversion_value") == 0 ||
           strstr(col, "conversion_value.") != NULL;
}

static int
numeric(json_object *v)
{
    return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

/* The shortest decimal text that reads back as exactly d ("13", "0.1538"), for CSV. */
static char *
shortest(double d)
{
    for (int prec = 1; prec < 17; prec++) {
        char *s = km_xasprintf("%.*g", prec, d);
        if (strtod(s, NULL) == d)
            return s;
        free(s);
    }
    return km_xasprintf("%.17g", d);
}

char *
kmadm_cell(const char *col, json_object *v, int table, const char *currency)
{
    if (!v || json_object_is_type(v, json_type_null))
        return km_xstrdup(table ? "-" : "");
    if (json_object_is_type(v, json_type_string))
        return km_xstrdup(json_object_get_string(v));
    if (json_object_is_type(v, json_type_boolean))
        return km_xstrdup(json_object_get_boolean(v) ? "true" : "false");
    if (!table && json_object_is_type(v, json_type_double))
        return shortest(json_object_get_double(v));
    if (!table || !numeric(v))
        return km_xstrdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    if (is_rate(col))
        return km_xasprintf("%.2f%%", json_object_get_double(v) * 100.0);
    if (is_money(col))
        return currency ? km_xasprintf("%.2f %s", json_object_get_double(v), currency)
                        : km_xasprintf("%.2f", json_object_get_double(v));
    if (json_object_is_type(v, json_type_int))
        return km_xasprintf("%" PRId64, json_object_get_int64(v));
    return km_xasprintf("%.10g", json_object_get_double(v));
}

/* --- rendering --------------------------------------------------------------------------- */

void
kmadm_csv_field(kmbuf *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        kmbuf_append(out, s, strlen(s));
        return;
    }
    kmbuf_append(out, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            kmbuf_append(out, "\"", 1);
        kmbuf_append(out, p, 1);
    }
    kmbuf_append(out, "\"", 1);
}

static void
render_csv(const struct kmadm_rows *r, kmbuf *out)
{
    if (r->ncols == 0)
        return;
    for (size_t c = 0; c < r->ncols; c++) {
        if (c)
            kmbuf_append(out, ",", 1);
        kmadm_csv_field(out, r->cols[c]);
    }
    kmbuf_append(out, "\r\n", 2);
    for (size_t i = 0; i < json_object_array_length(r->rows); i++) {
        json_object *row = json_object_array_get_idx(r->rows, i);
        for (size_t c = 0; c < r->ncols; c++) {
            char *cell = kmadm_cell(r->cols[c], kmjson_get(row, r->cols[c]), 0, NULL);
            if (c)
                kmbuf_append(out, ",", 1);
            kmadm_csv_field(out, cell);
            free(cell);
        }
        kmbuf_append(out, "\r\n", 2);
    }
}

/* Display width of UTF-8 text: code points, not bytes. */
static size_t
width(const char *s)
{
    size_t n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void
pad(kmbuf *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        kmbuf_append(out, " ", 1);
}

static void
render_table(const struct kmadm_rows *r, const char *currency, kmbuf *out)
{
    size_t  nrows = json_object_array_length(r->rows);
    char  **cells = km_xcalloc(nrows * r->ncols + 1, sizeof(*cells));
    int    *right = km_xcalloc(r->ncols + 1, sizeof(*right));
    size_t *w = km_xcalloc(r->ncols + 1, sizeof(*w));

    for (size_t c = 0; c < r->ncols; c++)
        w[c] = width(r->cols[c]);
    for (size_t i = 0; i < nrows; i++) {
        json_object *row = json_object_array_get_idx(r->rows, i);
        for (size_t c = 0; c < r->ncols; c++) {
            json_object *v = kmjson_get(row, r->cols[c]);
            char        *cell = kmadm_cell(r->cols[c], v, 1, currency);
            if (numeric(v))
                right[c] = 1;
            if (width(cell) > w[c])
                w[c] = width(cell);
            cells[i * r->ncols + c] = cell;
        }
    }
    for (size_t c = 0; c < r->ncols; c++) {
        size_t gap = w[c] - width(r->cols[c]);
        if (c)
            kmbuf_append(out, "  ", 2);
        if (right[c])
            pad(out, gap);
        kmbuf_append(out, r->cols[c], strlen(r->cols[c]));
        if (!right[c] && c + 1 < r->ncols)
            pad(out, gap);
    }
    kmbuf_append(out, "\n", 1);
    for (size_t i = 0; i < nrows; i++) {
        for (size_t c = 0; c < r->ncols; c++) {
            const char *cell = cells[i * r->ncols + c];
            size_t      gap = w[c] - width(cell);
            if (c)
                kmbuf_append(out, "  ", 2);
            if (right[c])
                pad(out, gap);
            kmbuf_append(out, cell, strlen(cell));
            if (!right[c] && c + 1 < r->ncols)
                pad(out, gap);
        }
        kmbuf_append(out, "\n", 1);
    }
    if (nrows == 0)
        kmbuf_appendf(out, "(no rows)\n");
    for (size_t i = 0; i < nrows * r->ncols; i++)
        free(cells[i]);
    free(cells);
    free(right);
    free(w);
}

/* One row with many columns reads better turned on its side: field, value. */
static void
render_vertical(const struct kmadm_rows *r, const char *currency, kmbuf *out)
{
    json_object *row = json_object_array_get_idx(r->rows, 0);
    size_t       w = 0;

    for (size_t c = 0; c < r->ncols; c++) {
        if (width(r->cols[c]) > w)
            w = width(r->cols[c]);
    }
    for (size_t c = 0; c < r->ncols; c++) {
        char *cell = kmadm_cell(r->cols[c], kmjson_get(row, r->cols[c]), 1, currency);
        kmbuf_append(out, r->cols[c], strlen(r->cols[c]));
        pad(out, w - width(r->cols[c]) + 2);
        kmbuf_appendf(out, "%s\n", cell);
        free(cell);
    }
}

void
kmadm_render(json_object *envelope, kmadm_format f, kmbuf *out)
{
    struct kmadm_rows r;
    json_object      *warnings = kmjson_get(envelope, "warnings");

    if (f == KMADM_JSON) {
        kmbuf_appendf(out, "%s\n", json_object_to_json_string_ext(envelope,
                      JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                      JSON_C_TO_STRING_NOSLASHESCAPE));
        return;
    }
    kmadm_rows_from_data(kmjson_get(envelope, "data"), &r);
    if (f == KMADM_CSV) {
        render_csv(&r, out);
    } else {
        const char *currency = kmjson_str(kmjson_get(envelope, "metadata"), "currency");
        if (json_object_array_length(r.rows) == 1 && r.ncols > KMADM_WIDE)
            render_vertical(&r, currency, out);
        else
            render_table(&r, currency, out);
        if (json_object_is_type(warnings, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(warnings); i++)
                kmbuf_appendf(out, "warning: %s\n",
                              json_object_get_string(json_object_array_get_idx(warnings, i)));
        }
    }
    kmadm_rows_free(&r);
}
