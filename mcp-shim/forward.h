/* forward.h — HTTP to klaviyo-restd over its Unix socket (libcurl): the health check, the tool
 * list, and tool calls with streamed progress and prompt cancellation.
 *
 * Owns:    a kmmcp_call owns its curl handles and its copy of the request body;
 *          *tools and *envelope are new objects for the caller (json_object_put).
 * Threads: every transfer blocks the calling thread. kmmcp_call_cancel may be called from any
 *          other thread while kmmcp_call_run runs (it wakes the transfer at once).
 *          curl_global_init must have run in main() before any thread calls these.
 * Fails:   KM_SERVICE_UNAVAILABLE when nothing accepts on the socket (the request was not
 *          sent: the caller may start a service and retry); KM_UPSTREAM_ERROR when the service
 *          answered something unusable or went away during the call; KM_CANCELLED after
 *          kmmcp_call_cancel; KM_UPSTREAM_TIMEOUT when the call outlived its timeout.
 *          Messages name the socket and the HTTP status, never a request body.
 *
 * The service's surface (server/http.h): GET /health, GET /v1/tools, POST /v1/tools/<name>
 * with the arguments object as body. With `Accept: application/x-ndjson` the answer is 200
 * and one JSON object per line: {"progress":{"done":k,"total":n}} lines (with "waiting":true
 * on the keep-alive lines sent every 10 s while nothing else is), then one
 * {"status":<http>,"result":<envelope>}. Without it, or when the service refuses the request
 * before running the tool (unknown tool, bad body), the answer is the envelope itself with its
 * HTTP status. Closing the connection cancels the call on the service side.
 */
#ifndef KM_MCP_FORWARD_H
#define KM_MCP_FORWARD_H

#include "err.h"

#include <json-c/json.h>

/* The most a response (or one NDJSON line) may hold. */
#define KMMCP_MAX_RESPONSE (64u * 1024u * 1024u)

/* The message of a call the service did not finish because it went away. */
#define KMMCP_SERVICE_STOPPED "klaviyo-restd closed the connection before it answered (it " \
    "stopped or restarted; its log says why)"

/* 1 when `name` may go into the URL: 1-64 bytes of [a-z_]. */
int kmmcp_tool_name_ok(const char *name);

/* KM_OK when GET /health on `sock` answers 200 within timeout_ms. */
kmcode kmmcp_health(const char *sock, long timeout_ms, kmerr *err);

/* GET /v1/tools: on KM_OK *tools is the "tools" array (a new reference). */
kmcode kmmcp_fetch_tools(const char *sock, long timeout_ms, json_object **tools, kmerr *err);

/* Called on the calling thread for each progress line, in order. `waiting` is 1 for the
 * service's keep-alive lines (nothing new finished; the call is alive and waiting). */
typedef void kmmcp_progress_fn(void *arg, long done, long total, int waiting);

typedef struct kmmcp_call kmmcp_call;

/* A call of tool `name` with `args` (serialized now; borrowed only during this call).
 * `stream` asks for NDJSON progress, delivered to fn(arg, ...) (fn may be NULL).
 * timeout_ms bounds the whole call (0: none). */
kmmcp_call *kmmcp_call_new(const char *sock, const char *name, json_object *args, int stream,
                           long timeout_ms, kmmcp_progress_fn *fn, void *arg);

/* Run the call. On KM_OK *status is the service's HTTP status for the tool's answer and
 * *envelope its envelope ({"data",...} or {"error":{...}}); otherwise both are 0/NULL and
 * err says what went wrong. Run once per call. */
kmcode kmmcp_call_run(kmmcp_call *c, int *status, json_object **envelope, kmerr *err);

/* Abort the transfer (closing the connection): kmmcp_call_run returns KM_CANCELLED soon
 * after. Safe before, during and after kmmcp_call_run. */
void kmmcp_call_cancel(kmmcp_call *c);

/* Free a call that is not running. NULL ok. */
void kmmcp_call_free(kmmcp_call *c);

#endif
