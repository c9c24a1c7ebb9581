/* reg.h — the one tool registry: every tool's name, title, description, schemas, REST route
 * and handler; the listing of them and the validation of a tool's arguments.
 *
 * Owns:    the table is static and immutable; every pointer returned is borrowed for the
 *          life of the process. Objects returned by kmreg_*_json are new (json_object_put).
 * Threads: kmreg_init once in main() before any thread; afterwards everything is safe from
 *          any thread (schema patterns are compiled once and shared; kmreg_free only after
 *          the last thread is done).
 * Fails:   kmreg_init aborts on a built-in schema that is not JSON or that the validator
 *          cannot honour (a bug); kmreg_validate returns KM_INVALID_ARGUMENT naming the field
 *          and the rule.
 *
 * REST routes (route.h), GET /v1/tools, POST /v1/tools/<name>, MCP tools/list and validation
 * (schema.h) all come from this table, so both transports call the same entry and return the
 * same data.
 */
#ifndef KM_REG_H
#define KM_REG_H

#include "err.h"

#include <json-c/json.h>
#include <stddef.h>

struct kmctx;
struct kmshape_spec;

/* A tool's handler: pure service code. `args` is validated against the input schema (and
 * borrowed). On KM_OK *data is a new object (the envelope's `data`); on failure *data is
 * NULL and err says why. The handler fills ctx->period (or leaves it unset) and may append
 * warnings through ctx. */
typedef kmcode kmtool_fn(struct kmctx *ctx, json_object *args, json_object **data, kmerr *err);

struct kmtool {
    const char *name;           /* the seed's name, e.g. "klaviyo_get_flows" */
    const char *title;
    const char *description;    /* written for a model choosing tools */
    const char *method;         /* "GET" or "POST" */
    const char *route;          /* "/v1/flows/{flow_id}/structure" */
    kmtool_fn  *run;
    int         needs_account;  /* 0 only for klaviyo_list_accounts */
    int         date_scoped;    /* takes timeframe or start_date+end_date */
    int         live;           /* answers from live state (rate windows): never kept in
                                   the answer cache (answers.h) */
    int         local;          /* answers from the configuration alone: no Klaviyo request,
                                   no store, no wait (kmsvc_call_local, on the loop) */
    const struct kmshape_spec *shape;   /* how a list or series answer is bounded (shape.h);
                                           NULL: the answer is small by nature */
    /* parsed once by kmreg_init from schemas/<name>.input.json and <name>.output.json */
    json_object *input;
    json_object *output;        /* the schema of the envelope's `data` */
};

/* Parse every schema and compile its patterns; aborts the process on a malformed built-in
 * schema or one using a keyword the validator does not implement (a bug). */
void kmreg_init(void);
void kmreg_free(void);

size_t kmreg_count(void);
const struct kmtool *kmreg_at(size_t i);
const struct kmtool *kmreg_find(const char *name);

/* Validate args, which must be a JSON object, against the tool's input schema (schema.h;
 * messages name the field without a root: "flow_id is required"). */
kmcode kmreg_validate(const struct kmtool *t, json_object *args, kmerr *err);

/* {"tools":[{name,title,description,method,route,inputSchema,outputSchema,annotations}]}
 * in registry order, for GET /v1/tools and the shim's tools/list. */
json_object *kmreg_list_json(void);

#endif
