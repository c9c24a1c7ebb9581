/* http_mcp.c — the /mcp endpoint on a worker: its tool calls as SSE streams, and
 * cancellations, local or recorded by another worker (see http_impl.h, mcphttp.h). */
#include "http_impl.h"

static void
cancel_one(struct kmreq *r)
{
    atomic_store(&r->job.cancelled, true);
    r->mcp_cancelled = 1;
    r->closed_by = "notifications/cancelled";
    kmlogf(KMLOG_INFO, "call_cancelled", "notifications/cancelled: the call (%s) stops before "
           "its next Klaviyo request", r->tool ? r->tool : "?");
}

/* notifications/cancelled: stop the call with that id in that session. The call may run on
 * another worker (each POST is its own connection): then the cancellation is recorded in the
 * store, where that worker's poll finds it. */
static void
cancel_mcp(kmhttp *h, const char *scope, json_object *id)
{
    struct kmreq *r;
    int           found = 0;

    if (!scope[0])
        return;
    LIST_FOREACH(r, &h->mcp_calls, mcp_link) {
        if (strcmp(r->mcp->scope, scope) == 0 && kmmcp_id_equal(r->mcp->id, id)) {
            cancel_one(r);
            found = 1;
        }
    }
    if (!found)
        kmsess_cancel(h->store, scope, id);
}

/* Every MCP_CANCEL_POLL_MS while session calls run: cancellations recorded by other workers. */
void
kmh_on_mcp_poll(evutil_socket_t fd, short what, void *arg)
{
    kmhttp       *h = arg;
    struct kmreq *r;

    (void)fd;
    (void)what;
    LIST_FOREACH(r, &h->mcp_calls, mcp_link) {
        if (r->mcp->scope[0] && !r->mcp_cancelled &&
            kmsess_cancelled(h->store, r->mcp->scope, r->mcp->id))
            cancel_one(r);
    }
}

/* POST/GET/DELETE /mcp: the MCP Streamable HTTP endpoint (mcphttp.h decides). */
void
kmh_route_mcp(struct kmreq *r)
{
    struct evbuffer   *in = evhttp_request_get_input_buffer(r->req);
    struct evkeyvalq  *hdrs = evhttp_request_get_output_headers(r->req);
    struct kmmcph_in   mi;
    struct kmmcph_out *out = km_xcalloc(1, sizeof(*out));
    json_object       *args;

    memset(&mi, 0, sizeof(mi));
    mi.method = r->method;
    mi.trusted = r->trusted;
    mi.host = kmh_header(r, "Host");
    mi.origin = kmh_header(r, "Origin");
    mi.accept = kmh_header(r, "Accept");
    mi.content_type = kmh_header(r, "Content-Type");
    mi.authorization = kmh_header(r, "Authorization");
    mi.x_api_key = kmh_header(r, "X-API-Key");
    mi.session = kmh_header(r, "Mcp-Session-Id");
    mi.version = kmh_header(r, "MCP-Protocol-Version");
    mi.mcp_method = kmh_header(r, "Mcp-Method");
    mi.mcp_name = kmh_header(r, "Mcp-Name");
    mi.body_len = evbuffer_get_length(in);
    mi.body = mi.body_len ? (const char *)evbuffer_pullup(in, -1) : "";
    kmmcph_handle(r->h->mcp, &mi, out);
    if (out->cancel_id)
        cancel_mcp(r->h, out->cancel_scope, out->cancel_id);
    if (out->tool && r->h->n_mcp_calls >= MCP_MAX_STREAMS) {
        json_object_put(out->body);
        out->body = kmmcp_error(out->id, -32603, "too many MCP calls in flight on this worker; "
                                "retry when some have finished", NULL);
        out->status = 503;
        out->tool = NULL;
    }
    if (out->tool) {
        r->mcp = out;
        r->progress.token = out->token;
        r->stream = 1;
        args = out->args;
        out->args = NULL;
        kmh_queue_job(r, out->tool, args);
        return;
    }
    if (out->session[0])
        evhttp_add_header(hdrs, "Mcp-Session-Id", out->session);
    if (out->unauthorized)
        evhttp_add_header(hdrs, "WWW-Authenticate", "Bearer realm=\"klaviyo-mcp\"");
    if (out->body) {
        const char *text = kmjson_text(out->body);

        kmh_reply_text(r, out->status, text, strlen(text), out->allow);
    } else {
        kmh_reply_buf(r, out->status, evbuffer_new(), out->allow);
    }
    kmmcph_out_clear(out);
    free(out);
}
