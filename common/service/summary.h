/* summary.h — the Markdown text a model reads for one tool answer: the window and account,
 * the totals, the top rows as a table of that tool's key columns, the warnings, and a line
 * saying what was left out and how to ask for it.
 *
 * Owns:    kmsummary_render returns a new NUL-terminated string (free()); it only reads the
 *          envelope and the shaping info.
 * Threads: no state; safe from any thread.
 * Fails:   never: an answer it has no renderer for gets a compact JSON rendering, and text
 *          past KMSUMMARY_MAX_CHARS is cut at a row boundary with a line saying so.
 *
 * Rendered by the service (svc.c) for the model view, so every transport that serves a model
 * (the stdio shim today, MCP over HTTP later) shows the same text. structuredContent keeps
 * the full data; this text is never parsed back.
 */
#ifndef KM_SUMMARY_H
#define KM_SUMMARY_H

#include "reg.h"
#include "shape.h"

#include <json-c/json.h>

/* The most characters (bytes) the text holds, everything included: well under the 40,000
 * characters (about 10k tokens) a model's client takes without complaint. */
#define KMSUMMARY_MAX_CHARS 30000

/* Markdown for a success envelope {"data","metadata","warnings"} of `tool`, shaped as
 * `info` says (info may be NULL: nothing was shaped). */
char *kmsummary_render(const struct kmtool *tool, json_object *envelope,
                       const struct kmshape_info *info);

#endif
