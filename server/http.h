/* http.h — the REST surface of one worker: evhttp listeners, routing from the registry,
 * auth, HTTP hygiene, the access log, and the hand-off of tool calls to service threads.
 *
 * Owns:    a kmhttp owns its evhttp servers (and so the connections and its copies of the
 *          listening sockets), the request contexts and their jobs. It borrows the event base,
 *          the settings and the job queue, which must outlive it.
 * Threads: everything here runs on the worker's loop thread; service threads only see jobs,
 *          through the kmjobq.
 * Fails:   kmhttp_new / kmhttp_listen return KM_INTERNAL_ERROR when libevent refuses; every
 *          request gets exactly one answer, an envelope with the code's status.
 *
 * Routes: POST/GET/DELETE /mcp (the MCP Streamable HTTP endpoint: mcphttp.h; its own
 * Host/Origin/credential checks), GET /health (open, answered on the loop), GET /metrics
 * (Prometheus text, counters of metrics.h, token-protected like REST), GET /v1/tools,
 * POST /v1/tools/<name>
 * (streams progress as NDJSON when the request says Accept: application/x-ndjson) and every
 * registry route (kmroute_find; GET query strings coerced by the input schema). A request on
 * the TCP listener needs a REST credential (auth.h); one on the Unix socket does not (its
 * 0600 mode is the gate). Every response carries X-Request-Id (a sane incoming one echoed,
 * else a new one) and is logged as one JSON line: method, path without query, status, bytes,
 * ms, request id, transport — never a header.
 */
#ifndef KM_HTTP_H
#define KM_HTTP_H

#include "err.h"
#include "jobq.h"
#include "settings.h"
#include "store.h"
#include "svc.h"

#include <event2/event.h>
#include <stddef.h>

typedef struct kmhttp kmhttp;

struct kmhttp_opts {
    const kmcfg *cfg;          /* tokens, REST_MAX_BODY_BYTES, REST_TIMEOUT_SECONDS */
    kmjobq      *q;            /* where tool calls are queued */
    kmstore     *store;        /* the shared store: MCP sessions live there */
    kmsvc       *svc;          /* the service: answers it kept are served on the loop (NULL:
                                  every call goes to a service thread) */
    int          generation;   /* reported by /health */
    size_t       max_conns;    /* open client connections that pause the TCP listener (the
                                  Unix socket may have UNIX_EXTRA_CONNS more); 0: the
                                  configuration's WORKER_CONNECTIONS */
    void       (*grow)(void *arg);   /* may be NULL: called on the loop when a call was queued
                                        and no service thread was idle */
    void        *grow_arg;
};

kmcode kmhttp_new(struct event_base *base, const struct kmhttp_opts *o, kmhttp **out,
                  kmerr *err);

/* Serve connections accepted on the listening socket `fd` (non-blocking; the kmhttp closes
 * its copy when it stops accepting). `trusted` is 1 for the Unix socket: no token needed. */
kmcode kmhttp_listen(kmhttp *h, int fd, int trusted, kmerr *err);

/* Stop accepting connections. Requests already read are answered (with Connection: close),
 * and `idle(arg)` is called once no request is left (at once if none is). */
void kmhttp_drain(kmhttp *h, void (*idle)(void *arg), void *arg);

/* Requests read and not yet fully answered. */
size_t kmhttp_live(const kmhttp *h);

/* Free the servers and their connections. Call only when kmhttp_live() is 0. NULL ok. */
void kmhttp_free(kmhttp *h);

/* 1 when `id` may be echoed as X-Request-Id: 1-64 bytes of [A-Za-z0-9._:-]. */
int kmhttp_request_id_ok(const char *id);

#endif
