/* proto.h — the MCP protocol of klaviyo-mcp, one copy for both transports: the stdio shim
 * (mcp-shim/main.c) and klaviyo-restd's Streamable HTTP endpoint (server/mcphttp.c).
 *
 * What lives here: the protocol revisions and how a request picks one, server info,
 * capabilities and instructions, the initialize / server/discover / tools/list results, the
 * MCP tool list made from the registry's listing, tool results shaped from the service's
 * envelope (and the rule that an unknown tool is -32602, not a tool result), the checks of
 * tools/call and tools/list params, and progress notifications (with the keep-alive rule).
 * What does not: framing, transports, threads, HTTP. Both programs link this with
 * jsonrpc.c as libkmproto.a (base + json-c only: no libcurl, no threads).
 *
 * Owns:    every json_object returned is new (json_object_put). Functions documented as
 *          "takes ownership" consume their argument; the others only borrow.
 * Threads: no shared state; call from any thread (a kmproto_progress belongs to one call).
 * Fails:   nothing fails; protocol faults come back as whole JSON-RPC error messages.
 *
 * Revisions, chosen per request by what the client sends:
 * - handshake revisions 2025-11-25, 2025-06-18, 2025-03-26: `initialize` negotiates one
 *   (per stdio process, or per HTTP session); until then any other request but ping is
 *   refused with -32600 "server not initialized" (not -32002: 2026-07-28 reserves it).
 * - the stateless revision 2026-07-28: a request whose params._meta names it (with
 *   clientCapabilities) stands on its own; every result carries resultType "complete" and
 *   _meta[serverInfo]; tools/list and server/discover carry ttlMs/cacheScope; a version the
 *   request may not name gets -32022 with data {supported, requested}.
 *
 * Tool results: a success is the envelope as structuredContent and a text block (the
 * envelope's `summary` when the service sends one, else the envelope as pretty JSON); a tool
 * error is isError with the text "CODE: message" (plus retry_after_s and details) and no
 * structuredContent (it would not match the tool's outputSchema).
 */
#ifndef KM_MCP_PROTO_H
#define KM_MCP_PROTO_H

#include "err.h"

#include <json-c/json.h>

#define KMPROTO_META_VERSION "io.modelcontextprotocol/protocolVersion"
#define KMPROTO_META_CAPS    "io.modelcontextprotocol/clientCapabilities"
#define KMPROTO_META_CLIENT  "io.modelcontextprotocol/clientInfo"
#define KMPROTO_META_SERVER  "io.modelcontextprotocol/serverInfo"

#define KMPROTO_STATELESS    "2026-07-28"
#define KMPROTO_LIST_TTL_MS  3600000   /* the tool list is fixed per service build */
#define KMPROTO_HEADER_MISMATCH (-32020)   /* 2026-07-28 Streamable HTTP: HeaderMismatch */

/* 1 when v is a revision negotiated by initialize / the stateless one. */
int kmproto_is_handshake(const char *v);
int kmproto_is_stateless(const char *v);

/* The revision initialize answers when the client asks for `want`: `want` when it is a
 * handshake revision, else the newest. A static string. */
const char *kmproto_choose(const char *want);

/* NULL when initialize params are well formed (*want: the requested revision, borrowed),
 * else the -32602 error message. */
json_object *kmproto_check_initialize(json_object *id, json_object *params, const char **want);

/* The methods served: initialize, ping, server/discover, tools/list, tools/call. */
int kmproto_known_method(const char *method);

/* The setup problem (NULL: none) is appended to the instructions with its fix. */
json_object *kmproto_server_info(void);
json_object *kmproto_initialize_result(const char *chosen, const kmerr *setup);
json_object *kmproto_discover_result(const kmerr *setup);

/* For a stateless request: adds resultType and _meta[serverInfo]. Takes ownership of result
 * and returns it. */
json_object *kmproto_finish(int stateless, json_object *result);

/* The gate every request but initialize passes. `negotiated` is the handshake revision this
 * client negotiated (NULL: none yet). Returns NULL when the request may be served (*stateless
 * says how), else the whole JSON-RPC error message to answer: -32601 for an unknown method,
 * -32602 for bad _meta, -32022 for a version the request may not name, -32600 before
 * initialize. */
json_object *kmproto_gate(json_object *id, const char *method, json_object *params,
                          const char *negotiated, int *stateless);

/* --- tools ------------------------------------------------------------------------------ */

/* The MCP tool list from the registry's listing (GET /v1/tools "tools": borrowed): name,
 * title, description, inputSchema, outputSchema, annotations (readOnly and openWorld). */
json_object *kmproto_tools(json_object *raw);

/* A one-tool list that carries a setup problem (no service, bad configuration). */
json_object *kmproto_standin_tools(const kmerr *why);

/* tools/list result; takes ownership of tools. */
json_object *kmproto_list_result(int stateless, json_object *tools, int ttl_ms);

/* NULL when tools/list params are acceptable, else the error message (a cursor: -32602). */
json_object *kmproto_check_list(json_object *id, json_object *params);

/* The parts of tools/call params, borrowed from params. */
struct kmproto_call {
    const char  *name;
    json_object *args;      /* an object, or NULL (none given) */
    json_object *token;     /* _meta.progressToken, or NULL */
};

/* NULL when the params are well formed (*c filled), else the -32602 error message. */
json_object *kmproto_check_call(json_object *id, json_object *params, struct kmproto_call *c);

/* The -32602 message for a tool the server does not have. */
json_object *kmproto_unknown_tool(json_object *id, const char *name);

/* The tool result for an envelope ({"data",...} or {"error":{...}}). Takes ownership. A
 * success's text block is the service's summary and the message stays within `cap` bytes
 * (result.h: KMMCP_DEFAULT_MAX_MESSAGE unless configured). */
json_object *kmproto_tool_result(json_object *envelope, size_t cap);

/* The tool result for an error made by the transport (not the service). */
json_object *kmproto_error_result(const kmerr *err);

/* The whole answer to a tools/call from the service's envelope (takes ownership): a result
 * message, or -32602 when the envelope says UNKNOWN_TOOL. */
json_object *kmproto_call_answer(json_object *id, int stateless, json_object *envelope,
                                 size_t cap);

/* --- progress --------------------------------------------------------------------------- */

/* One call's progress: each Klaviyo call done is a notification ("Klaviyo call k of n");
 * each keep-alive while the call waits is one too, with a value between k and k+1 that still
 * increases, so a client that resets its timeout on progress keeps waiting for a live call. */
typedef struct kmproto_progress {
    json_object *token;     /* borrowed: the request's progressToken */
    long         last_done;
    long         beats;
    double       last_sent;
} kmproto_progress;

/* The notifications/progress message for this step, or NULL when there is nothing new to
 * say (no token, or no progress). `waiting` marks a keep-alive. */
json_object *kmproto_progress_note(kmproto_progress *p, long done, long total, int waiting);

#endif
