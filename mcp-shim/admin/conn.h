/* conn.h — klaviyo-mcp-admin's way to the service: the shared klaviyo-restd listening on
 * KLAVIYO_MCP_SOCKET, else a private one started as the shim starts it (spawn.h), and tool
 * calls through it (forward.h) with a progress bar on a terminal and Ctrl-C cancelling.
 *
 * Owns:    a kmadm_conn owns its kmmcp_svc (a private service is stopped by kmadm_conn_close)
 *          and its signal thread; envelopes and tool lists returned are the caller's
 *          (json_object_put).
 * Threads: kmadm_conn_open blocks SIGINT, SIGTERM and SIGHUP in the calling thread before any
 *          thread starts, so every thread inherits the mask; one thread takes them from a
 *          signalfd and cancels the call in flight. Calls run on the caller's thread, one at a
 *          time. curl_global_init must have run in main().
 * Fails:   KM_SERVICE_UNAVAILABLE (no service and none could start), KM_CONFIG_ERROR (the
 *          service refused its configuration), KM_CANCELLED (Ctrl-C: the connection is closed,
 *          so the service stops before its next Klaviyo request), or the transport errors of
 *          forward.h; a tool's own error is an envelope with its HTTP status, not a failure.
 */
#ifndef KM_ADMIN_CONN_H
#define KM_ADMIN_CONN_H

#include "err.h"

#include <json-c/json.h>

typedef struct kmadm_conn kmadm_conn;

/* Start looking for a service on `socket_path` (starting a private one if none answers).
 * `timeout_ms` bounds each call (0: none). `progress`: draw a bar on stderr while a call
 * runs (only ever when stderr is a terminal). */
kmadm_conn *kmadm_conn_open(const char *socket_path, long timeout_ms, int progress);

/* GET /v1/tools: on KM_OK *tools is the array of tool descriptions. */
kmcode kmadm_conn_tools(kmadm_conn *c, json_object **tools, kmerr *err);

/* Run tool `name` with `args` (borrowed). On KM_OK *status is the HTTP status of the answer
 * and *envelope the envelope (success or {"error":...}). */
kmcode kmadm_conn_call(kmadm_conn *c, const char *name, json_object *args, int *status,
                       json_object **envelope, kmerr *err);

/* 1 once SIGINT/SIGTERM/SIGHUP arrived. */
int kmadm_conn_interrupted(kmadm_conn *c);

/* Stop the private service (if one was started) and the signal thread. NULL ok. */
void kmadm_conn_close(kmadm_conn *c);

#endif
