/* http_impl.h — private to klaviyo-restd's HTTP layer (http.c and its http_*.c files): the
 * request context, the worker's HTTP state and the functions the files share.
 *
 * Owns:    a struct kmreq owns its job's arguments and envelope, its watchers and timers and
 *          its probe; kmh_finish frees it (once: every path that ends a request calls it
 *          exactly once). struct kmhttp is owned by http.c (kmhttp_new / kmhttp_free).
 * Threads: the worker's loop thread only; service threads reach a request only through its
 *          job (jobq.h).
 * Fails:   nothing here fails; errors become answers (kmh_reply_error, kmh_reply_kmerr).
 *
 * Files: http.c — the request's life (arrival, request ids, EOF and connection watchers,
 * timeouts, the end and the access log), the fixed routes, dispatch and setup;
 * http_call.c — a tool call's way (arguments from the query or body, the answer cache on the
 * loop, the job queue, the answer); http_reply.c — writing answers, streams and progress;
 * http_mcp.c — the /mcp endpoint's calls and cancellations; http_listen.c — the listening
 * sockets and the pause on accept errors.
 */
#ifndef KM_HTTP_IMPL_H
#define KM_HTTP_IMPL_H

#include "http.h"
#include "answers.h"
#include "auth.h"
#include "conn.h"
#include "json.h"
#include "log.h"
#include "jsonrpc.h"
#include "mcphttp.h"
#include "metrics.h"
#include "reg.h"
#include "refresh.h"
#include "route.h"
#include "result.h"
#include "shape.h"
#include "store_loop.h"
#include "svc.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_HEADERS_BYTES (32 * 1024)
#define LOG_PATH_MAX      200
#define TOOLS_PREFIX      "/v1/tools/"
#define NDJSON            "application/x-ndjson"
#define STREAM_KEEPALIVE_MS 10000   /* a streamed call is silent at most this long */
#define ACCEPT_PAUSE_MS   500       /* out of descriptors: stop accepting this long */
#define DRAIN_LINGER_MS   200       /* a draining worker ends this long after its last request */
#define ACCEPT_LOG_MS     10000     /* and say so at most this often */
#define UNIX_EXTRA_CONNS  16        /* the Unix socket (the MCP shim) may open this many past
                                       the cap that pauses the TCP listener */
#define MCP_MAX_STREAMS   256       /* MCP tool calls (SSE streams) open at once per worker */
#define MCP_CANCEL_POLL_MS 250      /* how often calls look for a cancellation sent elsewhere */

struct listener {
    kmhttp                     *h;
    struct evhttp              *http;
    struct evhttp_bound_socket *bound;    /* NULL once we stopped accepting */
    struct event               *resume;   /* re-enables accepting after a pause */
    int64_t                     logged;   /* km_now_ms of the last accept_paused line */
    unsigned                    pauses;   /* pauses since that line */
    int                         trusted;  /* the Unix socket: no token */
    int                         capped;   /* paused: the worker has its connections */
};

#define MAX_LISTENERS 4

struct kmhttp {
    struct event_base *base;
    const kmcfg       *cfg;
    kmjobq            *q;
    int                generation;
    void             (*grow)(void *);     /* no service thread was idle for a call */
    void              *grow_arg;
    struct event      *notes_ev;
    struct listener    lis[2];
    size_t             n_lis;
    char              *tools_json;        /* GET /v1/tools, built once */
    size_t             tools_len;
    kmsvc             *svc;               /* names kept answers (kmsvc_probe_call) */
    kmstore_loop      *reader;            /* reads them without blocking the loop */
    kmrefresh         *refresh;           /* computes hot ones again before they expire */
    kmmcph            *mcp;               /* the /mcp endpoint's decisions */
    LIST_HEAD(, kmreq) mcp_calls;         /* MCP tool calls queued or running */
    LIST_HEAD(, kmreq) leaders;           /* calls whose kept answer was missing, queued or
                                             running: identical calls wait for them */
    size_t             n_mcp_calls;
    kmstore           *store;
    struct event      *mcp_poll;          /* looks for cancellations other workers recorded */
    uint64_t           rid_seed, rid_seq;
    size_t             live;              /* request contexts alive */
    size_t             in_flight;         /* of which queued or running on a service thread */
    int                draining;
    int                early_close;       /* the backend reports EV_CLOSED */
    void             (*idle)(void *);
    void              *idle_arg;
    struct event      *linger;            /* draining: ends the worker once quiet */
    kmconn_pool       *conns;             /* connections: their count, the whole-request bound */
    size_t             max_conns;         /* open connections that pause the TCP listener */
    int64_t            full_logged;       /* km_now_ms of the last connections_full line */
    unsigned           full_pauses;       /* pauses since that line */
};

enum rstate { R_NEW, R_LOOKUP, R_QUEUED, R_FOLLOWING, R_REPLYING };

struct kmreq {
    struct kmjob           job;          /* job.owner points back here */
    kmhttp                *h;
    struct evhttp_request *req;          /* NULL once the connection is gone */
    struct evhttp_request *orphan;       /* detached from its dead connection; ours to free */
    struct event          *eof;          /* EV_CLOSED watcher while queued */
    struct event          *beat;         /* keep-alive timer of a streamed call: due a
                                            period after the last line sent */
    int                    done, total;  /* the last progress sent */
    const char            *closed_by;    /* why the connection ended early, for the log */
    enum rstate            state;
    int64_t                t0;
    const char            *method;
    const char            *tool;         /* for the log */
    kmsvc_probe            probe;        /* the kept answer being looked up (R_LOOKUP) */
    int                    kept;         /* answered from the answer cache, on the loop */
    char                   path[LOG_PATH_MAX + 1];
    char                   rid[65];
    int                    trusted;
    int                    stream;
    int                    gone;         /* the client left before the answer was written */
    int                    status;
    size_t                 bytes;
    char                   error[32];    /* envelope code of an error answer */
    char                   message[160]; /* its message, kept for 5xx lines */
    struct kmmcph_out     *mcp;          /* an MCP tool call (/mcp): answered as SSE */
    kmproto_progress       progress;     /* its progress notifications */
    int                    mcp_cancelled;/* notifications/cancelled named it: no answer */
    LIST_ENTRY(kmreq)      mcp_link;     /* in h->mcp_calls while queued */
    /* Identical calls (the same kept answer's key) on a worker share one computation: the
     * first whose answer was missing leads (its job runs), the others follow it on the loop,
     * holding no service thread, and get its answer (http_call.c). */
    char                  *ckey;         /* a leader's key (owned), while in h->leaders */
    LIST_ENTRY(kmreq)      lead_link;    /* in h->leaders */
    TAILQ_HEAD(, kmreq)    followers;    /* a leader's followers, in arrival order */
    TAILQ_ENTRY(kmreq)     follow_link;  /* a follower's place in leader->followers */
    struct kmreq          *leader;       /* R_FOLLOWING: whose job answers it */
    int                    solo;         /* runs its own job: its leader's answer did not fit
                                            it (cancelled, or the leader's deadline passed) */
    int                    shared;       /* answered with its leader's answer */
};


const char *kmh_header(struct kmreq *r, const char *name);
void kmh_finish(struct kmreq *r);
/* A follower whose client left: out of its leader's list, finished (499). */
void kmh_unfollow(struct kmreq *r);
void kmh_unwatch_eof(struct kmreq *r);
void kmh_watch_eof(struct kmreq *r);
void kmh_suspend_read_timeout(struct kmreq *r);
void kmh_restore_timeouts(struct kmreq *r);
void kmh_on_complete(struct evhttp_request *req, void *arg);
void kmh_on_conn_close(struct evhttp_connection *conn, void *arg);
void kmh_on_request(struct evhttp_request *req, void *arg);
void kmh_common_headers(struct kmreq *r, const char *ctype);
/* Send a complete answer made of `buf` (freed here). `r` must not be touched afterwards: it
 * may already be freed. */
void kmh_reply_buf(struct kmreq *r, int status, struct evbuffer *buf, const char *allow);
void kmh_reply_text(struct kmreq *r, int status, const char *text, size_t len, const char *allow);
void kmh_note_error(struct kmreq *r, json_object *env);
void kmh_reply_json(struct kmreq *r, int status, json_object *env);
void kmh_reply_kmerr(struct kmreq *r, const kmerr *e);
void kmh_send_raw(struct kmreq *r, const char *text, size_t n);
void kmh_send_line(struct kmreq *r, json_object *line);
void kmh_send_mcp_progress(struct kmreq *r, int done, int total, int waiting);
void kmh_send_progress(struct kmreq *r, int done, int total, int waiting);
void kmh_start_beat(struct kmreq *r);
void kmh_on_mcp_poll(evutil_socket_t fd, short what, void *arg);
void kmh_route_mcp(struct kmreq *r);
void kmh_forget_listener(struct listener *l);
void kmh_on_conns(void *arg, size_t open);
void kmh_on_notes(evutil_socket_t fd, short what, void *arg);
/* Queue r's call (args: taken). 0 when the queue is full: r was answered 503 and may be
 * freed already (not touched after), else 1. */
int kmh_queue_job(struct kmreq *r, const struct kmtool *tool, json_object *args);
void kmh_route_tool_call(struct kmreq *r, const char *name);
void kmh_route_registry(struct kmreq *r, const char *path);
void kmh_reply_error(struct kmreq *r, kmcode code, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
