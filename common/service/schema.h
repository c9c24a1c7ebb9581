/* schema.h — a JSON Schema validator for the subset of the 2020-12 vocabulary the tools use.
 *
 * Owns:    nothing of the caller's: schemas and values are borrowed for the call. Each
 *          compiled `pattern` is kept in one process-wide cache until kmschema_forget.
 * Threads: every function is safe from any thread at any time, except kmschema_forget: call
 *          it only after the last thread that validates is done.
 * Fails:   kmschema_validate returns KM_INVALID_ARGUMENT naming the value and the rule, or
 *          KM_INTERNAL_ERROR for a schema pattern that does not compile; kmschema_prepare
 *          returns KM_INVALID_ARGUMENT naming the first part of a schema it cannot honour.
 *
 * Keywords validated: type, enum, required, properties, additionalProperties, minimum,
 * maximum, minLength, maxLength, pattern, items (one schema for every item), minItems,
 * maxItems, uniqueItems. Annotations accepted and ignored: $schema, $comment, title,
 * description, default, examples. Anything else (a $ref, allOf, format, a boolean schema
 * outside additionalProperties, ...) is refused by kmschema_prepare rather than silently
 * ignored by kmschema_validate.
 *
 * Deliberate differences from JSON Schema (README, Development): a string holding a NUL
 * character is refused whatever the schema says, because the service hands strings to C
 * code that would stop at the NUL; `pattern` is a POSIX extended regular expression, not
 * ECMA-262 (the two agree on the anchors, classes and counts the tools' patterns use).
 */
#ifndef KM_SCHEMA_H
#define KM_SCHEMA_H

#include "err.h"

#include <json-c/json.h>

/* Check that `schema` uses only the keywords above, each with a value of the right shape,
 * and compile its patterns ahead of the first validation. `where` names the schema in the
 * message ("klaviyo_get_flows.input"). KM_OK, or KM_INVALID_ARGUMENT with err->msg naming
 * the keyword's place in the schema. */
kmcode kmschema_prepare(json_object *schema, const char *where, kmerr *err);

/* Validate `value` against `schema`. `where` names the root in messages: "data" gives
 * "data.accounts[0].label is required"; the root "arguments" is left out of the names
 * ("flow_id is required", "statistics[0]: 'x' is not one of ..."). The first violation found
 * is reported. A schema that kmschema_prepare would refuse is applied as far as its
 * supported keywords go. */
kmcode kmschema_validate(json_object *schema, json_object *value, const char *where,
                         kmerr *err);

/* Free every compiled pattern (the cache refills on the next use). */
void kmschema_forget(void);

#endif
