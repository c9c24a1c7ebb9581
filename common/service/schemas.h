/* schemas.h — the built-in JSON Schemas as text: every .json file of common/service/schemas/,
 * embedded when the program is built (scripts/embed-schemas writes schemas.c).
 *
 * Owns:    static read-only text, for the life of the process.
 * Threads: read-only data: safe from any thread.
 * Fails:   nothing here fails; kmreg_init stops the process when a schema it needs is
 *          missing or malformed.
 *
 * A file's name without ".json" names its text: "<tool>.input" and "<tool>.output" are a
 * tool's input schema and the schema of its answer's `data`; "envelope" is the success
 * envelope every tool's output schema is wrapped in (its properties.data stands for the
 * tool's). The files are pretty-printed JSON, one schema each, so they can be linted and
 * diffed; the text here is theirs, byte for byte.
 */
#ifndef KM_SCHEMAS_H
#define KM_SCHEMAS_H

#include <stddef.h>

struct kmschemas_file {
    const char *name;   /* "klaviyo_get_flows.input" */
    const char *text;   /* the file's JSON text */
};

extern const struct kmschemas_file kmschemas_files[];
extern const size_t                kmschemas_count;

#endif
