/* mcphttp.h — the MCP Streamable HTTP endpoint of klaviyo-restd (/mcp): what to answer.
 *
 * This module decides; server/http_mcp.c does the I/O. For each request to /mcp it fills a
 * struct kmmcph_in from the request and kmmcph_handle fills a struct kmmcph_out: either an
 * immediate answer (status, headers, JSON body or none) or a tool call to run on a service
 * thread, answered later as a text/event-stream (progress notifications, keep-alives, then
 * the response, built by proto.h's kmproto_progress_note and kmproto_call_answer and framed by
 * kmmcph_event). The protocol itself (revisions,
 * results, shaping) is mcp-shim/proto.h, shared with the stdio shim.
 *
 * Owns:    a kmmcph owns the MCP tool list; it borrows the settings and the store. A
 *          kmmcph_out owns its body, id, args and token until kmmcph_out_clear (http.c moves
 *          them out as it uses them).
 * Threads: the worker's loop thread.
 * Fails:   never: every refusal is an answer with the status the spec gives.
 *
 * Per request (revisions chosen as the spec says):
 *  - Host must be loopback or in MCP_ALLOWED_HOSTS, and Origin (when sent) loopback or in
 *    MCP_ALLOWED_ORIGINS, else 403 (DNS rebinding). On TCP, a REST credential, else 401 with
 *    WWW-Authenticate: Bearer. The Unix socket needs neither.
 *  - GET is 405 (no standalone stream is offered); DELETE ends a 2025 session (204, 404).
 *  - POST: Accept must list application/json and text/event-stream (406), the body must be
 *    JSON (415) within REST_MAX_BODY_BYTES (413), one message (400 -32700 / -32600).
 *    Notifications and responses: 202 (notifications/cancelled, within a session the
 *    credential may use, names the call to cancel: out->cancel_id / cancel_scope).
 *  - initialize: a 2025 handshake; the answer carries a new Mcp-Session-Id. A request with
 *    Mcp-Session-Id uses that session (missing: 400, unknown/expired/other credential: 404);
 *    MCP-Protocol-Version, when sent, must be the session's revision (400).
 *  - 2026-07-28 (params._meta names it): no session; MCP-Protocol-Version, Mcp-Method and
 *    (tools/call) Mcp-Name must match the body (400 -32020); unknown method 404 -32601;
 *    unsupported version 400 -32022.
 */
#ifndef KM_MCPHTTP_H
#define KM_MCPHTTP_H

#include "proto.h"
#include "reg.h"
#include "settings.h"
#include "store.h"
#include "session.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct kmmcph kmmcph;

struct kmmcph_in {
    const char *method;            /* HTTP method */
    int         trusted;           /* the Unix socket */
    const char *host, *origin, *accept, *content_type;
    const char *authorization, *x_api_key;
    const char *session;           /* Mcp-Session-Id */
    const char *version;           /* MCP-Protocol-Version */
    const char *mcp_method, *mcp_name;
    const char *body;
    size_t      body_len;
};

struct kmmcph_out {
    int          status;           /* of an immediate answer; 200 for a tool call's stream */
    json_object *body;             /* JSON body of an immediate answer, or NULL (none) */
    const char  *allow;            /* Allow header (405) */
    int          unauthorized;     /* 401: add WWW-Authenticate */
    char         session[KMSESS_ID_LEN + 1];   /* Mcp-Session-Id to send, or "" */
    /* a tool call to run (tool != NULL) */
    const struct kmtool *tool;
    json_object *args;
    json_object *id;
    json_object *token;            /* progressToken, or NULL */
    int          stateless;
    /* notifications/cancelled: the id to cancel (a new reference) within `cancel_scope` */
    json_object *cancel_id;
    char         cancel_scope[KMSESS_ID_LEN + 1];
    char         scope[KMSESS_ID_LEN + 1];     /* the session of this call, or "" */
};

kmmcph *kmmcph_new(const kmcfg *cfg, kmstore *store);
void kmmcph_free(kmmcph *ep);

void kmmcph_handle(kmmcph *ep, const struct kmmcph_in *in, struct kmmcph_out *out);
void kmmcph_out_clear(struct kmmcph_out *out);

/* One SSE event carrying msg (borrowed), as "event: message\ndata: <json>\n\n"; a new string
 * the caller frees. */
char *kmmcph_event(json_object *msg);

#endif
