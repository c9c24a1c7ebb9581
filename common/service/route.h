/* route.h — REST over the tool registry: which tool a method and path name, and query-string
 * values turned into the types the tool's input schema asks for.
 *
 * Owns:    nothing: tools are the registry's (borrowed for the life of the process); the
 *          path arguments kmroute_find returns are new (json_object_put).
 * Threads: safe from any thread once kmreg_init has run (reads the immutable table only).
 * Fails:   kmroute_find returns NULL for a path no route matches, saying which method the
 *          path does accept; kmroute_coerce does not fail (validation names what it left).
 */
#ifndef KM_ROUTE_H
#define KM_ROUTE_H

#include "reg.h"

#include <json-c/json.h>

/* Match a REST request. On a match returns the tool and, for routes with a {param}, adds
 * the path parameter to *path_args (a new object, or NULL when the route has none).
 * Returns NULL when no route matches the path; *allow (may be NULL) is then set to the
 * methods the path does accept ("GET", "POST", or NULL when the path is unknown). A single
 * trailing slash on the path is tolerated. */
const struct kmtool *kmroute_find(const char *method, const char *path,
                                  json_object **path_args, const char **allow);

/* Coerce query-string values (strings) to the schema's types: "true"/"false" to booleans,
 * digits to integers, comma lists to arrays. Modifies args in place; a value that cannot be
 * coerced is left as is (validation then names it). */
void kmroute_coerce(const struct kmtool *t, json_object *args);

#endif
