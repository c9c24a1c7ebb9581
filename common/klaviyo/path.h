/* path.h — Klaviyo API paths: what may go into a URL, the one query builder, id segments, and
 * the one reading of next-page links (a path to follow, or the page_cursor to hand back).
 * Part of the client's interface (kl.h includes it): tools build every path here and never
 * encode or parse a URL themselves.
 *
 * Owns:    strings returned through *out or as char * are new; the caller frees them. The
 *          json documents passed in are borrowed.
 * Threads: every function is safe from any thread (libcurl's URL API keeps no shared state).
 * Fails:   kmpath_query and kmpath_id return KM_INVALID_ARGUMENT for what must not go into a
 *          URL and KM_INTERNAL_ERROR when libcurl refuses, with err->msg; on failure *out is
 *          NULL. The link readers return NULL for "no next page".
 */
#ifndef KM_PATH_H
#define KM_PATH_H

#include "err.h"

#include <json-c/json.h>

#define KMPATH_MAX 4096   /* longest path (query included) sent to Klaviyo */

/* 1 when `path` may go into a URL as it is: ours ("/api/…"), shorter than KMPATH_MAX,
 * printable ASCII without spaces, '#' or '\', and no dot segments. The net under the ids the
 * tools validate. */
int kmpath_ok(const char *path);

/* `path` (an API path without a query, e.g. "/api/flows/") with each name=value pair of
 * params[] (name, value, name, value, …, NULL) appended to its query in order, both
 * percent-encoded by libcurl (curl_url_set with CURLU_APPENDQUERY | CURLU_URLENCODE; a pair
 * whose value is NULL is left out). *out is the new path, e.g.
 * "/api/flows/?filter=equals%28status%2c%27live%27%29&page%5bsize%5d=50". */
kmcode kmpath_query(const char *path, const char *const *params, char **out, kmerr *err);

/* prefix + id + suffix ("/api/flows/" "XVTP5Q" "/flow-actions/") when id is 1 to max letters
 * and digits; otherwise KM_INVALID_ARGUMENT ("not a valid Klaviyo id"). */
kmcode kmpath_id(const char *prefix, const char *id, size_t max, const char *suffix,
                 char **out, kmerr *err);

/* The next-page link of a Klaviyo document: data.links.next (a POST report's pages), else
 * links.next (a collection's). Borrowed from doc; NULL at the last page. */
const char *kmpath_next_link(json_object *doc);

/* The next-page link as a path under `base` (KLAVIYO_BASE_URL without a trailing '/'), to
 * follow with GET: a new string, or NULL at the last page, or NULL with *bad set for a link
 * elsewhere (the key never travels to another host) or a path that is not an API path. */
char *kmpath_next(const char *base, json_object *doc, int *bad);

/* The page_cursor of the next-page link, decoded, for a POST whose body carries it: a new
 * string, or NULL at the last page (no link, no page_cursor, or one longer than 1024). */
char *kmpath_cursor(json_object *doc);

#endif
