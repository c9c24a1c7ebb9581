/* format.h — a tool's answer as text: an aligned table for a person, RFC 4180 CSV for a
 * spreadsheet, or the JSON envelope itself.
 *
 * Owns:    kmadm_rows_from_data fills caller memory with new objects released by
 *          kmadm_rows_free; the render functions append to the caller's kmbuf.
 * Threads: no shared state.
 * Fails:   nothing here fails; an answer with no rows renders as a header (table) or nothing
 *          (CSV).
 *
 * Rows: a series answer (date_times[] + series[]) becomes one row per series and date; else
 * the first member of `data` that is an array of objects gives one row per element; else
 * `data` itself is one row. Nested objects become dotted columns ("deltas.opens.absolute");
 * arrays inside a row become their JSON text. Columns keep the order they first appear in.
 *
 * Cells: CSV holds the values as JSON has them (numbers in JSON's form, null empty, true and
 * false), so the CSV parses back to the same data. The table is for reading: numbers are
 * right-aligned, rates (`*_rate`, `pct_change`) are percentages with two decimals, money
 * (`conversion_value`) has two decimals and the account's currency, null is "-". CSV
 * numbers are the shortest text that reads back as the same value ("13", "0.1538").
 */
#ifndef KM_ADMIN_FORMAT_H
#define KM_ADMIN_FORMAT_H

#include "buf.h"

#include <json-c/json.h>
#include <stddef.h>

typedef enum { KMADM_TABLE = 0, KMADM_CSV, KMADM_JSON } kmadm_format;

/* A single row with more columns than this is shown as a table turned on its side
 * (one "field  value" line per column). */
#define KMADM_WIDE 8

/* "table", "csv" or "json": 0 and *out set, or -1. */
int kmadm_format_parse(const char *name, kmadm_format *out);

struct kmadm_rows {
    char       **cols;    /* column names, in order */
    size_t       ncols;
    json_object *rows;    /* array of flat objects: column name -> scalar */
};

/* The rows of a `data` object (borrowed). */
void kmadm_rows_from_data(json_object *data, struct kmadm_rows *out);
void kmadm_rows_free(struct kmadm_rows *r);

/* One RFC 4180 field: quoted (with "" for ") when it holds a comma, quote, CR or LF. */
void kmadm_csv_field(kmbuf *out, const char *s);

/* A success envelope ({"data","metadata","warnings"}) as `f`. Table and CSV render `data`;
 * the table is followed by the warnings, one a line. JSON is the envelope, pretty-printed. */
void kmadm_render(json_object *envelope, kmadm_format f, kmbuf *out);

/* The text of one cell: as CSV holds it (table 0) or as the table shows it (table 1).
 * `currency` may be NULL. A new string. */
char *kmadm_cell(const char *col, json_object *v, int table, const char *currency);

#endif
