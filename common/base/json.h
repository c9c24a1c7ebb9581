/* json.h — helpers on json-c: strict parsing, borrowed lookups, numbers that print well.
 *
 * Owns:    kmjson_parse's *out belongs to the caller (json_object_put). Lookups borrow: the
 *          result lives as long as the containing object. kmjson_text borrows from the
 *          object (valid until it changes or is put).
 * Threads: a json tree belongs to one thread at a time; kmjson_parse keeps one parser per
 *          thread (freed when the thread exits), nothing shared between threads.
 * Fails:   kmjson_parse returns KM_INVALID_ARGUMENT (or `bad`) with the position.
 */
#ifndef KM_JSON_H
#define KM_JSON_H

#include "err.h"

#include <json-c/json.h>
#include <stddef.h>

/* Parse exactly one JSON value from text[0..len) (trailing whitespace allowed, nothing
 * else); nesting deeper than 64 is refused, and so is a bare `null`, so *out is never NULL
 * on KM_OK. On failure *out is NULL and err says where;
 * the code is `bad` (KM_INVALID_ARGUMENT for caller input, KM_UPSTREAM_ERROR for Klaviyo). */
kmcode kmjson_parse(const char *text, size_t len, kmcode bad, json_object **out, kmerr *err);

/* Borrowed member `key` of an object, or NULL (also when o is not an object). */
json_object *kmjson_get(json_object *o, const char *key);

/* Borrowed member reached through the NULL-terminated key path, or NULL. */
json_object *kmjson_path(json_object *o, ...);

/* Member string, borrowed, or NULL when absent or not a string. */
const char *kmjson_str(json_object *o, const char *key);

/* Member as a double (ints and doubles; NULL/absent/other gives `dflt`). */
double kmjson_num(json_object *o, const char *key, double dflt);

/* A double that prints as the shortest form that round-trips, always with a decimal point
 * for integral values (12000 prints "12000.0", 0.3 prints "0.3"). */
json_object *kmjson_double(double v);

/* Round to `places` decimals (half away from zero). */
double kmjson_round(double v, int places);

/* Plain compact text of o, borrowed from o. */
const char *kmjson_text(json_object *o);

/* Deep copy (json_object_deep_copy with the custom double printer kept). */
json_object *kmjson_copy(json_object *o);

#endif
