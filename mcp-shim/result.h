/* result.h — the MCP result of a successful tool call, under a hard size cap.
 *
 * The text block is the service's "summary" (rendered by the service for a model, see
 * common/service/summary.h: no rendering here); structuredContent is the envelope without it, so
 * its `data` equals what REST answers for the same arguments. A result whose message would
 * pass the cap is cut, never broken: the largest arrays of objects in `data` lose their tail
 * until it fits (still valid against the tool's outputSchema), `data.truncated` is set and
 * the text and warnings say what was cut.
 *
 * Owns:    kmmcp_result_success takes ownership of the envelope and returns a new result.
 * Threads: no state; safe from any thread (a json tree belongs to one thread).
 * Fails:   never: when nothing can be cut to fit, the result is an isError result saying so.
 */
#ifndef KM_MCP_RESULT_H
#define KM_MCP_RESULT_H

#include "err.h"

#include <json-c/json.h>
#include <stddef.h>

/* The official SDK client drops a connection past 10 MiB; stay well below it. */
#define KMMCP_DEFAULT_MAX_MESSAGE (8u * 1024u * 1024u)
/* The smallest cap accepted: room for a summary and the JSON-RPC frame. */
#define KMMCP_MIN_MAX_MESSAGE (64u * 1024u)
/* Room kept for the JSON-RPC frame around the result (id, _meta). */
#define KMMCP_FRAME_RESERVE 4096u

/* A tool result's content: one text block holding `text` (a new array). */
json_object *kmmcp_text_content(const char *text);

/* KLAVIYO_MCP_MAX_MESSAGE_BYTES: a decimal byte count between KMMCP_MIN_MAX_MESSAGE and
 * KMMCP_DEFAULT_MAX_MESSAGE. NULL or empty gives the default. KM_CONFIG_ERROR otherwise. */
kmcode kmmcp_result_cap_parse(const char *text, size_t *cap, kmerr *err);

/* The CallToolResult for a success envelope {"data","metadata","warnings"[,"summary"]},
 * serialized within `cap` bytes (with KMMCP_FRAME_RESERVE kept for the frame). Takes
 * ownership of envelope. Without a summary (an older service) the text is the envelope's
 * pretty JSON. */
json_object *kmmcp_result_success(json_object *envelope, size_t cap);

#endif
