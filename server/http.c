/* http.c — routing, auth, hygiene, streaming and the access log of one worker (see http.h).
 *
 * A request context (struct kmreq) lives from the moment evhttp hands us a complete request
 * until its answer has been written (on_complete) or its connection is gone. In between it is
 * in one of three states:
 *   R_NEW       being routed on the loop thread; a synchronous answer goes straight out;
 *   R_QUEUED    its job is with the service threads; an EV_CLOSED watcher on the socket
 *               notices a client that leaves, sets the job's `cancelled` flag and frees the
 *               connection, so no answer is ever attempted for it;
 *   R_REPLYING  the answer is being written; on_complete or the connection's close callback,
 *               whichever comes first, ends the context and writes the access log line.
 * libevent 2.1 stops reading a connection while a request is pending, so without the watcher a
 * disconnect would only be seen when the answer is written.
 *
 * Timeouts tell an idle peer from a busy service. REST_TIMEOUT_SECONDS bounds reading a request
 * and writing an answer; while a call is queued or running the read timeout is off (a client
 * waiting for an answer sends nothing, and a call may wait minutes for Klaviyo's rate windows)
 * and is restored when the answer starts. A streamed call also gets a keep-alive progress line
 * every STREAM_KEEPALIVE_MS when nothing else was sent, so proxies and clients that time out on
 * silence see a live call. A call ends only by finishing, by its deadline (the service's),
 * by its client leaving or by cancellation; the access log names which.
 */
#include "http.h"
#include "auth.h"
#include "json.h"
#include "log.h"
#include "jsonrpc.h"
#include "mcphttp.h"
#include "metrics.h"
#include "reg.h"
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
};

/* evhttp keeps the evconnlistener's callback argument for itself, so an accept error is
 * traced back to its listener here. Loop thread only; one kmhttp per worker process. */
#define MAX_LISTENERS 4
static struct {
    struct evconnlistener *el;
    struct listener       *l;
} accepting[MAX_LISTENERS];

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
    kmmcph            *mcp;               /* the /mcp endpoint's decisions */
    LIST_HEAD(, kmreq) mcp_calls;         /* MCP tool calls queued or running */
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
};

enum rstate { R_NEW, R_LOOKUP, R_QUEUED, R_REPLYING };

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
};

/* --- small helpers ---------------------------------------------------------------------- */

static uint64_t
mix64(uint64_t x)
{
    /* splitmix64 finaliser: consecutive inputs give unrelated-looking outputs */
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int
kmhttp_request_id_ok(const char *id)
{
    size_t n = 0;

    if (!id)
        return 0;
    for (const char *p = id; *p; p++, n++) {
        char c = *p;
        if (n >= 64)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return 0;
    }
    return n > 0;
}

static const char *
method_name(enum evhttp_cmd_type c)
{
    switch (c) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "OTHER";
}

static const char *
header(struct kmreq *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

/* application/json or application/<anything>+json, parameters allowed. */
static int
is_json_type(const char *ct)
{
    const char *end;
    size_t      n;

    while (*ct == ' ' || *ct == '\t')
        ct++;
    end = ct + strcspn(ct, "; \t");
    n = (size_t)(end - ct);
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(end - 5, "+json", 5) == 0;
}

/* --- ending a request ---------------------------------------------------------------- */

static void
access_log(struct kmreq *r)
{
    kmlog_level  lvl = r->status >= 500 ? KMLOG_WARN : KMLOG_INFO;
    json_object *f;

    if (!kmlog_enabled(lvl))
        return;
    f = json_object_new_object();
    json_object_object_add(f, "method", json_object_new_string(r->method));
    json_object_object_add(f, "path", json_object_new_string(r->path));
    json_object_object_add(f, "status", json_object_new_int(r->status));
    json_object_object_add(f, "bytes", json_object_new_int64((int64_t)r->bytes));
    json_object_object_add(f, "ms", json_object_new_int64(km_now_ms() - r->t0));
    json_object_object_add(f, "request_id", json_object_new_string(r->rid));
    json_object_object_add(f, "transport", json_object_new_string(r->trusted ? "unix" : "tcp"));
    if (r->tool)
        json_object_object_add(f, "tool", json_object_new_string(r->tool));
    if (r->stream)
        json_object_object_add(f, "stream", json_object_new_boolean(1));
    if (r->gone)
        json_object_object_add(f, "client_closed", json_object_new_boolean(1));
    if (r->closed_by)
        json_object_object_add(f, "closed_by", json_object_new_string(r->closed_by));
    if (r->kept)
        json_object_object_add(f, "answer_cache", json_object_new_boolean(1));
    if (r->error[0])
        json_object_object_add(f, "error", json_object_new_string(r->error));
    if (r->status >= 500 && r->message[0])
        json_object_object_add(f, "message", json_object_new_string(r->message));
    kmlog(lvl, "request", f);
}

static void
on_linger(evutil_socket_t fd, short what, void *arg)
{
    kmhttp *h = arg;

    (void)fd;
    (void)what;
    if (h->live == 0 && h->idle)
        h->idle(h->idle_arg);
}

/* A draining worker with nothing left to answer ends DRAIN_LINGER_MS after its last request:
 * a keep-alive client whose next request is already on its way (it had its previous answer
 * before the drain began, without Connection: close) is answered too, with Connection: close,
 * instead of finding its connection closed under it. Each request that ends restarts it. */
static void
linger(kmhttp *h)
{
    struct timeval tv = { DRAIN_LINGER_MS / 1000, (DRAIN_LINGER_MS % 1000) * 1000 };

    if (!h->linger || evtimer_add(h->linger, &tv) != 0) {
        if (h->idle)
            h->idle(h->idle_arg);
    }
}

/* The metrics route of a request: a fixed route, a tool's REST route (whichever path reached
 * the tool, and for a request refused before routing, the route its path matches), or
 * "other". A bounded set of names, so the metrics table stays small. */
static const char *
metrics_route(const struct kmreq *r)
{
    const struct kmtool *t;
    json_object         *path_args = NULL;
    const char          *allow = NULL;

    if (strcmp(r->path, "/health") == 0 || strcmp(r->path, "/metrics") == 0 ||
        strcmp(r->path, "/v1/tools") == 0)
        return r->path;
    t = r->tool ? kmreg_find(r->tool) : kmroute_find(r->method, r->path, &path_args, &allow);
    json_object_put(path_args);
    return t ? t->route : "other";
}

/* The request is over: log it, count it and free its context. */
static void
finish(struct kmreq *r)
{
    kmhttp *h = r->h;

    access_log(r);
    kmmet_request(metrics_route(r), r->status, km_now_ms() - r->t0);
    json_object_put(r->job.args);
    json_object_put(r->job.envelope);
    if (r->mcp) {
        kmmcph_out_clear(r->mcp);
        free(r->mcp);
    }
    kmsvc_probe_clear(&r->probe);
    free(r);
    h->live--;
    if (h->draining && h->live == 0)
        linger(h);
}

static void
unwatch_eof(struct kmreq *r)
{
    if (r->eof) {
        event_free(r->eof);
        r->eof = NULL;
    }
    if (r->beat) {
        event_free(r->beat);
        r->beat = NULL;
    }
}

/* While a call is queued or running its client sends nothing: no read timeout then (the
 * write timeout stays, for a client that stops reading a stream). */
static void
suspend_read_timeout(struct kmreq *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct timeval            tv = { r->h->cfg->rest_timeout_s, 0 };

    if (conn)
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(conn), NULL, &tv);
}

/* The answer is about to be written: REST_TIMEOUT_SECONDS bounds it, and the next request on
 * the connection, again. */
static void
restore_timeouts(struct kmreq *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);

    if (conn)
        evhttp_connection_set_timeout(conn, r->h->cfg->rest_timeout_s);
}

/* The answer has been written completely. */
static void
on_complete(struct evhttp_request *req, void *arg)
{
    struct kmreq             *r = arg;
    struct evhttp_connection *conn = evhttp_request_get_connection(req);

    evhttp_connection_set_closecb(conn, NULL, NULL);
    if (strcmp(r->method, "CONNECT") == 0 && conn) {
        /* libevent keeps a CONNECT connection open whatever the headers say: end it; the
         * answer is already with the kernel, and libevent frees the connection on EOF */
        evutil_socket_t fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));

        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    r->req = NULL;
    finish(r);
}

/* libevent is freeing the connection: a write failed or timed out, or the server is freed. */
static void
on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct kmreq *r = arg;

    (void)conn;
    r->gone = 1;
    if (!r->closed_by)
        r->closed_by = r->state == R_REPLYING ? "during_answer" : "write_failed_or_timed_out";
    if (r->state == R_QUEUED || r->state == R_LOOKUP) {
        /* A failed streaming write: libevent detached the request (it is not freed with the
         * connection) and the job still runs. Abandon it; the final note frees everything. */
        atomic_store(&r->job.cancelled, true);
        unwatch_eof(r);
        r->orphan = r->req;
        r->req = NULL;
        return;
    }
    /* R_REPLYING: the request is freed with the connection. */
    r->req = NULL;
    finish(r);
}

/* The client closed its end while the job was queued or running. */
static void
on_eof(evutil_socket_t fd, short what, void *arg)
{
    struct kmreq             *r = arg;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);

    (void)fd;
    (void)what;
    unwatch_eof(r);
    atomic_store(&r->job.cancelled, true);
    r->gone = 1;
    r->closed_by = "client";
    kmlogf(KMLOG_INFO, "call_cancelled", "the client closed its connection after %.1f s; the "
           "call (%s) stops before its next Klaviyo request", (double)(km_now_ms() - r->t0) / 1e3,
           r->tool ? r->tool : "?");
    r->req = NULL;
    if (conn) {
        /* frees the pending request with it; nothing is written */
        evhttp_connection_set_closecb(conn, NULL, NULL);
        evhttp_connection_free(conn);
    }
}

static void
watch_eof(struct kmreq *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    evutil_socket_t           fd;

    if (!r->h->early_close || !conn)
        return;
    fd = bufferevent_getfd(evhttp_connection_get_bufferevent(conn));
    if (fd < 0)
        return;
    r->eof = event_new(r->h->base, fd, EV_CLOSED, on_eof, r);
    if (r->eof && event_add(r->eof, NULL) != 0)
        unwatch_eof(r);
}

/* --- answers ------------------------------------------------------------------------- */

static void
common_headers(struct kmreq *r, const char *ctype)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);

    evhttp_add_header(out, "Content-Type", ctype);
    evhttp_add_header(out, "X-Request-Id", r->rid);
    evhttp_add_header(out, "Cache-Control", "no-store");
    if (r->h->draining)
        evhttp_add_header(out, "Connection", "close");
}

/* Send a complete answer made of `buf` (freed here). `r` must not be touched afterwards: it
 * may already be freed. */
static void
reply_buf(struct kmreq *r, int status, struct evbuffer *buf, const char *allow)
{
    struct evhttp_request *req = r->req;

    common_headers(r, "application/json");
    if (allow)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    if (strcmp(r->method, "HEAD") == 0 || strcmp(r->method, "CONNECT") == 0) {
        /* libevent adds no length to these; HEAD gets GET's headers and no body, CONNECT an
         * answer with its length, and the connection closes after it */
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        char              len[24];

        snprintf(len, sizeof(len), "%zu", evbuffer_get_length(buf));
        evhttp_add_header(out, "Content-Length", len);
        if (r->method[0] == 'H')
            evbuffer_drain(buf, evbuffer_get_length(buf));
        else if (!evhttp_find_header(out, "Connection"))
            evhttp_add_header(out, "Connection", "close");
    }
    r->status = status;
    r->bytes = evbuffer_get_length(buf);
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(req, on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_conn_close, r);
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

static void
reply_text(struct kmreq *r, int status, const char *text, size_t len, const char *allow)
{
    struct evbuffer *buf = evbuffer_new();

    evbuffer_add(buf, text, len);
    reply_buf(r, status, buf, allow);
}

static void
note_error(struct kmreq *r, json_object *env)
{
    const char *code = kmjson_str(kmjson_get(env, "error"), "code");
    const char *msg = kmjson_str(kmjson_get(env, "error"), "message");

    if (code)
        km_strlcpy(r->error, code, sizeof(r->error));
    if (msg)
        km_strlcpy(r->message, msg, sizeof(r->message));
}

static void
reply_json(struct kmreq *r, int status, json_object *env)
{
    const char *text = kmjson_text(env);

    note_error(r, env);
    reply_text(r, status, text, strlen(text), NULL);
}

/* An error envelope for `code`, with the code's HTTP status (err.c's one table). */
static void
reply_error(struct kmreq *r, kmcode code, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
reply_error(struct kmreq *r, kmcode code, const char *allow, const char *fmt, ...)
{
    kmerr        e = { 0 };
    json_object *env;
    const char  *text;
    va_list      ap;

    va_start(ap, fmt);
    kmerr_vset(&e, code, fmt, ap);
    va_end(ap);
    env = kmerr_envelope(&e);
    note_error(r, env);
    text = kmjson_text(env);
    reply_text(r, kmerr_http_status(code), text, strlen(text), allow);
    json_object_put(env);
    kmerr_clear(&e);
}

static void
reply_kmerr(struct kmreq *r, const kmerr *e)
{
    json_object *env = kmerr_envelope(e);

    reply_json(r, kmerr_http_status(e->code), env);
    json_object_put(env);
}

/* --- streaming ----------------------------------------------------------------------- */

/* Send bytes of a streamed answer (an NDJSON line, an SSE event or comment). */
static void
send_raw(struct kmreq *r, const char *text, size_t n)
{
    struct evbuffer *buf = evbuffer_new();

    evbuffer_add(buf, text, n);
    r->bytes += n;
    evhttp_send_reply_chunk(r->req, buf);
    evbuffer_free(buf);
    if (r->beat) {
        /* the next keep-alive is due a whole period after this line */
        struct timeval tv = { STREAM_KEEPALIVE_MS / 1000, (STREAM_KEEPALIVE_MS % 1000) * 1000 };

        event_add(r->beat, &tv);
    }
}

static void
send_line(struct kmreq *r, json_object *line)
{
    char *text = km_xasprintf("%s\n", kmjson_text(line));

    send_raw(r, text, strlen(text));
    free(text);
}

/* An MCP call's progress: a notifications/progress event when the client asked for them,
 * else (for a keep-alive) an SSE comment, so a quiet call still shows it is alive. */
static void
send_mcp_progress(struct kmreq *r, int done, int total, int waiting)
{
    json_object *msg = kmproto_progress_note(&r->progress, done, total, waiting);

    if (msg) {
        char *ev = kmmcph_event(msg);

        send_raw(r, ev, strlen(ev));
        free(ev);
        json_object_put(msg);
    } else if (waiting) {
        send_raw(r, ":\n\n", 3);
    }
}

/* A progress line; `waiting` marks a keep-alive (nothing new: the call still waits). */
static void
send_progress(struct kmreq *r, int done, int total, int waiting)
{
    json_object *line, *p;

    if (!r->req || !r->stream)
        return;
    r->done = done;
    r->total = total;
    if (r->mcp) {
        send_mcp_progress(r, done, total, waiting);
        return;
    }
    line = json_object_new_object();
    p = json_object_new_object();
    json_object_object_add(p, "done", json_object_new_int(done));
    json_object_object_add(p, "total", json_object_new_int(total));
    if (waiting)
        json_object_object_add(p, "waiting", json_object_new_boolean(1));
    json_object_object_add(line, "progress", p);
    send_line(r, line);
    json_object_put(line);
}

/* Every STREAM_KEEPALIVE_MS of silence on a streamed call: the call is alive, say so. */
static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct kmreq *r = arg;

    (void)fd;
    (void)what;
    if (r->req)
        send_progress(r, r->done, r->total, 1);
}

static void
start_beat(struct kmreq *r)
{
    struct timeval tv = { STREAM_KEEPALIVE_MS / 1000, (STREAM_KEEPALIVE_MS % 1000) * 1000 };

    r->beat = event_new(r->h->base, -1, EV_PERSIST, on_beat, r);
    if (r->beat && event_add(r->beat, &tv) != 0) {
        event_free(r->beat);
        r->beat = NULL;
    }
}

/* --- kept answers -------------------------------------------------------------------- */

/* Who reads the answer: a model when the transport says so (shape.h). */
static kmshape_view
view_of(struct kmreq *r)
{
    const char *v = header(r, KMSHAPE_VIEW_HEADER);

    return v && strcmp(v, KMSHAPE_VIEW_MODEL) == 0 ? KMSHAPE_MODEL : KMSHAPE_REST;
}

static void queue_job(struct kmreq *r, const struct kmtool *tool, json_object *args);

/* The answer cache's entry (or a miss) for a call in R_LOOKUP. */
static void
on_kept(void *arg, const kmstore_loop_reply *rep)
{
    struct kmreq *r = arg;
    kmhttp       *h = r->h;
    char         *text = NULL, *line;
    size_t        len = 0;

    if (rep->found)
        text = kmsvc_probe_answer(h->svc, &r->probe, rep->body, rep->len, rep->remaining,
                                  r->t0, &len);
    kmsvc_probe_clear(&r->probe);
    if (r->gone || !r->req) {
        /* the client left while the store answered */
        free(text);
        if (r->orphan)
            evhttp_request_free(r->orphan);
        r->orphan = NULL;
        r->gone = 1;
        r->status = 499;
        finish(r);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
    if (!text) {
        json_object *args = r->job.args;

        r->job.args = NULL;
        r->state = R_NEW;
        queue_job(r, r->job.tool, args);
        return;
    }
    r->kept = 1;
    if (!r->stream) {
        reply_text(r, 200, text, len, NULL);
    } else {
        /* a stream's whole answer: its result line */
        struct evbuffer *buf = evbuffer_new();

        line = km_xasprintf("{\"status\":200,\"result\":%s}\n", text);
        evbuffer_add(buf, line, strlen(line));
        free(line);
        r->stream = 0;      /* answered at once: no progress, no keep-alive */
        common_headers(r, NDJSON);
        r->status = 200;
        r->bytes = evbuffer_get_length(buf);
        r->state = R_REPLYING;
        evhttp_request_set_on_complete_cb(r->req, on_complete, r);
        evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), on_conn_close, r);
        evhttp_send_reply(r->req, 200, NULL, buf);
        evbuffer_free(buf);
    }
    free(text);
}

/* Run a call: its answer from the answer cache when the service kept one (read here, on the
 * loop, without waking a service thread), else on a service thread. Arguments the service
 * would refuse are refused here, with the same answer. `args` is the request's from here. */
static void
run_call(struct kmreq *r, const struct kmtool *tool, json_object *args)
{
    kmhttp *h = r->h;
    kmerr   err = { 0 };
    kmcode  rc;

    if (r->mcp || !h->svc) {
        queue_job(r, tool, args);
        return;
    }
    rc = kmsvc_probe_call(h->svc, tool, args, view_of(r), &r->probe, &err);
    r->tool = tool->name;
    if (rc != KM_OK && r->stream) {
        /* a stream says even a refusal in its result line: the service thread writes it */
        kmsvc_probe_clear(&r->probe);
        kmerr_clear(&err);
        queue_job(r, tool, args);
        return;
    }
    if (rc != KM_OK) {
        kmsvc_probe_clear(&r->probe);
        json_object_put(args);
        reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    if (!r->probe.key) {
        queue_job(r, tool, args);
        return;
    }
    r->job.tool = tool;
    r->job.args = args;
    r->state = R_LOOKUP;
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), on_conn_close, r);
    kmstore_loop_get(h->reader, r->probe.key, r->probe.budget, r->probe.nbudget,
                     &r->probe.budget_lim, r->probe.budget_win, on_kept, r);
}

/* --- the job came back --------------------------------------------------------------- */

static void
job_done(struct kmreq *r)
{
    kmhttp                *h = r->h;
    struct evhttp_request *req = r->req;
    json_object           *line;

    h->in_flight--;
    unwatch_eof(r);
    if (r->mcp) {
        LIST_REMOVE(r, mcp_link);
        if (--h->n_mcp_calls == 0 && h->mcp_poll)
            event_del(h->mcp_poll);
    }
    if (r->gone || !req) {
        /* the client left: nothing is sent */
        if (r->orphan)
            evhttp_request_free(r->orphan);
        r->orphan = NULL;
        r->gone = 1;
        r->status = 499;
        finish(r);
        return;
    }
    restore_timeouts(r);
    if (!r->job.envelope) {
        kmerr e = { 0 };
        kmerr_set(&e, KM_INTERNAL_ERROR, "the tool call produced no answer");
        r->job.envelope = kmerr_envelope(&e);
        r->job.status = kmerr_http_status(KM_INTERNAL_ERROR);
        kmerr_clear(&e);
    }
    if (!r->stream) {
        reply_json(r, r->job.status, r->job.envelope);
        return;
    }
    note_error(r, r->job.envelope);
    if (r->mcp) {
        /* the response ends the stream; a cancelled request gets none */
        if (!r->mcp_cancelled) {
            json_object *msg = kmproto_call_answer(r->mcp->id, r->mcp->stateless,
                                                   json_object_get(r->job.envelope),
                                                   KMMCP_DEFAULT_MAX_MESSAGE);
            char        *ev = kmmcph_event(msg);

            send_raw(r, ev, strlen(ev));
            free(ev);
            json_object_put(msg);
        }
        r->status = 200;
        r->state = R_REPLYING;
        evhttp_request_set_on_complete_cb(req, on_complete, r);
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_conn_close, r);
        evhttp_send_reply_end(req);
        return;
    }
    line = json_object_new_object();
    json_object_object_add(line, "status", json_object_new_int(r->job.status));
    json_object_object_add(line, "result", json_object_get(r->job.envelope));
    send_line(r, line);
    json_object_put(line);
    r->status = 200;
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(req, on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_conn_close, r);
    evhttp_send_reply_end(req);
}

static void
on_notes(evutil_socket_t fd, short what, void *arg)
{
    kmhttp            *h = arg;
    struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
    struct kmjob_note *n;

    (void)fd;
    (void)what;
    kmjobq_take(h->q, &notes);
    for (;;) {
        struct kmreq *r;

        n = STAILQ_FIRST(&notes);
        if (!n)
            break;
        STAILQ_REMOVE_HEAD(&notes, link);
        r = n->job->owner;
        if (n->final) {
            job_done(r);        /* the note is part of the job: do not touch it again */
        } else {
            send_progress(r, n->done, n->total, 0);
            free(n);
        }
    }
}

/* --- queueing a tool call ------------------------------------------------------------ */

static void
queue_job(struct kmreq *r, const struct kmtool *tool, json_object *args)
{
    kmhttp *h = r->h;

    r->tool = tool->name;
    r->job.tool = tool;
    r->job.args = args;
    r->job.stream = r->stream;
    /* MCP over HTTP is read by a model, like the shim's calls */
    r->job.view = r->mcp ? KMSHAPE_MODEL : view_of(r);
    r->job.owner = r;
    r->job.arrived_ms = r->t0;
    atomic_init(&r->job.cancelled, false);
    km_strlcpy(r->job.rid, r->rid, sizeof(r->job.rid));
    switch (kmjobq_push(h->q, &r->job)) {
    case KMJOBQ_FULL:
        /* every thread is busy and QUEUE_MAX calls already wait: say so at once */
        r->job.args = NULL;            /* still ours: freed with the context */
        json_object_put(args);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", "1");
        reply_error(r, KM_SERVICE_UNAVAILABLE, NULL, "this worker is at capacity: %d "
                    "calls wait for one of its threads (QUEUE_MAX); retry in a moment",
                    h->cfg->queue_max);
        return;
    case KMJOBQ_NO_IDLE:
        if (h->grow)
            h->grow(h->grow_arg);
        break;
    case KMJOBQ_QUEUED:
        break;
    }
    if (r->mcp) {
        LIST_INSERT_HEAD(&h->mcp_calls, r, mcp_link);
        if (h->n_mcp_calls++ == 0 && h->mcp_poll) {
            struct timeval tv = { 0, MCP_CANCEL_POLL_MS * 1000 };

            event_add(h->mcp_poll, &tv);
        }
        common_headers(r, "text/event-stream");
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "X-Accel-Buffering", "no");
        evhttp_send_reply_start(r->req, 200, NULL);
        start_beat(r);
    } else if (r->stream) {
        common_headers(r, NDJSON);
        evhttp_send_reply_start(r->req, 200, NULL);
        start_beat(r);
    }
    r->state = R_QUEUED;
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), on_conn_close, r);
    suspend_read_timeout(r);
    watch_eof(r);
    h->in_flight++;
}

/* The JSON object in the body; an empty body is {}. */
static kmcode
body_args(struct kmreq *r, json_object **out, kmerr *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t           len = evbuffer_get_length(in);
    size_t           max = (size_t)r->h->cfg->max_body_bytes;
    const char      *ct = header(r, "Content-Type");
    kmcode           rc;

    *out = NULL;
    if (len > max)
        return kmerr_set(err, KM_PAYLOAD_TOO_LARGE,
                         "the request body is %zu bytes; the limit is %zu (REST_MAX_BODY_BYTES)",
                         len, max);
    if (ct && !is_json_type(ct))
        return kmerr_set(err, KM_UNSUPPORTED_MEDIA_TYPE,
                         "the request body must be JSON: send Content-Type: application/json");
    if (len == 0) {
        *out = json_object_new_object();
        return KM_OK;
    }
    if (!ct)
        return kmerr_set(err, KM_UNSUPPORTED_MEDIA_TYPE,
                         "the request body must be JSON: send Content-Type: application/json");
    rc = kmjson_parse((const char *)evbuffer_pullup(in, -1), len, KM_INVALID_ARGUMENT, out, err);
    if (rc != KM_OK) {
        /* kmjson_parse says "malformed JSON[ at offset N]: why"; name the body once */
        static const char lead[] = "malformed JSON";
        char              why[sizeof(err->msg)];
        const char       *rest = why;
        km_strlcpy(why, err->msg, sizeof(why));
        if (strncmp(why, lead, sizeof(lead) - 1) == 0)
            rest += sizeof(lead) - 1;
        return kmerr_set(err, KM_INVALID_ARGUMENT, "malformed JSON body%s%s",
                         rest[0] == ' ' || rest[0] == ':' ? "" : ": ", rest);
    }
    if (!json_object_is_type(*out, json_type_object)) {
        json_object_put(*out);
        *out = NULL;
        return kmerr_set(err, KM_INVALID_ARGUMENT, "the request body must be a JSON object");
    }
    return KM_OK;
}

/* The query string as an object of strings. */
static kmcode
query_args(struct kmreq *r, json_object **out, kmerr *err)
{
    const char      *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(r->req));
    struct evkeyvalq kv;
    struct evkeyval *e;
    kmcode           rc = KM_OK;

    *out = json_object_new_object();
    if (!q || !*q)
        return KM_OK;
    TAILQ_INIT(&kv);
    if (strcasestr(q, "%00")) {
        /* decoding would end the value at the NUL and validate only what is before it */
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "a query parameter contains a NUL character "
                       "(%%00)");
        goto out;
    }
    if (evhttp_parse_query_str(q, &kv) != 0) {
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "malformed query string");
        goto out;
    }
    TAILQ_FOREACH(e, &kv, next) {
        if (json_object_object_get_ex(*out, e->key, NULL)) {
            rc = kmerr_set(err, KM_INVALID_ARGUMENT, "query parameter '%.64s' is given twice",
                           e->key);
            goto out;
        }
        json_object_object_add(*out, e->key, json_object_new_string(e->value));
    }
out:
    evhttp_clear_headers(&kv);
    if (rc != KM_OK) {
        json_object_put(*out);
        *out = NULL;
    }
    return rc;
}

/* --- routes -------------------------------------------------------------------------- */

static void
route_health(struct kmreq *r)
{
    kmhttp *h = r->h;
    char    body[160];
    int     n;

    n = snprintf(body, sizeof(body),
                 "{\"status\":\"%s\",\"pid\":%ld,\"generation\":%d,\"in_flight\":%zu}",
                 h->draining ? "draining" : "ok", (long)getpid(), h->generation, h->in_flight);
    reply_text(r, h->draining ? 503 : 200, body, (size_t)n, NULL);
}

/* GET /metrics: the shared counter table in the Prometheus text format. */
static void
route_metrics(struct kmreq *r)
{
    struct evhttp_request *req = r->req;
    struct evbuffer       *buf;
    size_t                 len;
    char                  *text;

    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
        reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, HEAD",
                    "%s /metrics is not allowed; use GET", r->method);
        return;
    }
    text = kmmet_render(&len);
    buf = evbuffer_new();
    evbuffer_add(buf, text, len);
    free(text);
    common_headers(r, "text/plain; version=0.0.4; charset=utf-8");
    r->status = 200;
    r->bytes = len;
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(req, on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_conn_close, r);
    evhttp_send_reply(req, 200, NULL, buf);
    evbuffer_free(buf);
}

static void
route_tool_call(struct kmreq *r, const char *name)
{
    const struct kmtool *tool = kmreg_find(name);
    const char          *accept = header(r, "Accept");
    json_object         *args = NULL;
    kmerr                err = { 0 };

    if (!tool) {
        static const char ok[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
        size_t            len = strlen(name);
        int               printable = len <= 64 && strspn(name, ok) == len;

        reply_error(r, KM_UNKNOWN_TOOL, NULL, "unknown tool '%s' (GET /v1/tools lists them)",
                    printable ? name : "?");
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        reply_error(r, KM_METHOD_NOT_ALLOWED, "POST", "%s %s is not allowed; use POST",
                    r->method, r->path);
        return;
    }
    if (body_args(r, &args, &err) != KM_OK) {
        reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    r->stream = accept && strcasestr(accept, NDJSON) != NULL;
    run_call(r, tool, args);
}

static void
route_registry(struct kmreq *r, const char *path)
{
    json_object         *path_args = NULL, *args = NULL;
    const char          *allow = NULL;
    const struct kmtool *tool = kmroute_find(r->method, path, &path_args, &allow);
    kmerr                err = { 0 };
    kmcode               rc;

    if (!tool) {
        if (allow)
            reply_error(r, KM_METHOD_NOT_ALLOWED, allow, "%s %s is not allowed; use %s",
                        r->method, r->path, allow);
        else
            reply_error(r, KM_NOT_FOUND, NULL, "no route %s %s", r->method, r->path);
        return;
    }
    if (strcmp(tool->method, "GET") == 0)
        rc = query_args(r, &args, &err);
    else
        rc = body_args(r, &args, &err);
    if (rc != KM_OK) {
        json_object_put(path_args);
        reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    if (path_args) {
        json_object_object_foreach(path_args, k, v) {
            json_object_object_add(args, k, json_object_get(v));
        }
        json_object_put(path_args);
    }
    if (strcmp(tool->method, "GET") == 0)
        kmroute_coerce(tool, args);
    run_call(r, tool, args);
}

/* 1 when the request carries Content-Length more than once with different values (a
 * request smuggling shape: which one framed the body?). */
static int
conflicting_lengths(struct kmreq *r)
{
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->req);
    struct evkeyval  *e;
    const char       *first = NULL;

    TAILQ_FOREACH(e, in, next) {
        if (strcasecmp(e->key, "Content-Length") != 0)
            continue;
        if (!first)
            first = e->value;
        else if (strcmp(first, e->value) != 0)
            return 1;
    }
    return 0;
}

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
static void
on_mcp_poll(evutil_socket_t fd, short what, void *arg)
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
static void
route_mcp(struct kmreq *r)
{
    struct evbuffer   *in = evhttp_request_get_input_buffer(r->req);
    struct evkeyvalq  *hdrs = evhttp_request_get_output_headers(r->req);
    struct kmmcph_in   mi;
    struct kmmcph_out *out = km_xcalloc(1, sizeof(*out));
    json_object       *args;

    memset(&mi, 0, sizeof(mi));
    mi.method = r->method;
    mi.trusted = r->trusted;
    mi.host = header(r, "Host");
    mi.origin = header(r, "Origin");
    mi.accept = header(r, "Accept");
    mi.content_type = header(r, "Content-Type");
    mi.authorization = header(r, "Authorization");
    mi.x_api_key = header(r, "X-API-Key");
    mi.session = header(r, "Mcp-Session-Id");
    mi.version = header(r, "MCP-Protocol-Version");
    mi.mcp_method = header(r, "Mcp-Method");
    mi.mcp_name = header(r, "Mcp-Name");
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
        queue_job(r, out->tool, args);
        return;
    }
    if (out->session[0])
        evhttp_add_header(hdrs, "Mcp-Session-Id", out->session);
    if (out->unauthorized)
        evhttp_add_header(hdrs, "WWW-Authenticate", "Bearer realm=\"klaviyo-mcp\"");
    if (out->body) {
        const char *text = kmjson_text(out->body);

        reply_text(r, out->status, text, strlen(text), out->allow);
    } else {
        reply_buf(r, out->status, evbuffer_new(), out->allow);
    }
    kmmcph_out_clear(out);
    free(out);
}

static void
dispatch(struct kmreq *r, const char *path)
{
    kmhttp *h = r->h;
    kmerr   err = { 0 };

    if (conflicting_lengths(r)) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
        reply_error(r, KM_INVALID_ARGUMENT, NULL,
                    "the request has two different Content-Length headers");
        return;
    }
    if (strcmp(r->method, "CONNECT") == 0) {
        reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, POST", "CONNECT is not allowed: this is "
                    "not a proxy");
        return;
    }

    if (strcmp(path, "/health") == 0) {
        if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
            route_health(r);
        else
            reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, HEAD",
                        "%s /health is not allowed; use GET", r->method);
        return;
    }
    if (strcmp(path, "/mcp") == 0) {
        route_mcp(r);
        return;
    }
    if (!r->trusted &&
        kmauth_check(h->cfg->rest_tokens, h->cfg->n_rest_tokens, header(r, "Authorization"),
                     header(r, "X-API-Key"), &err) != KM_OK) {
        reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        route_metrics(r);
        return;
    }
    if (strcmp(path, "/v1/tools") == 0 || strcmp(path, "/v1/tools/") == 0) {
        if (strcmp(r->method, "GET") == 0)
            reply_text(r, 200, h->tools_json, h->tools_len, NULL);
        else
            reply_error(r, KM_METHOD_NOT_ALLOWED, "GET", "%s /v1/tools is not allowed; use GET",
                        r->method);
        return;
    }
    if (strncmp(path, TOOLS_PREFIX, strlen(TOOLS_PREFIX)) == 0) {
        route_tool_call(r, path + strlen(TOOLS_PREFIX));
        return;
    }
    route_registry(r, path);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct listener *l = arg;
    kmhttp          *h = l->h;
    struct kmreq    *r = km_xcalloc(1, sizeof(*r));
    const char      *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char      *rid;

    h->live++;
    r->h = h;
    r->req = req;
    r->t0 = km_now_ms();
    r->trusted = l->trusted;
    r->state = R_NEW;
    r->method = method_name(evhttp_request_get_command(req));
    if (!path)
        path = "";
    km_strlcpy(r->path, path, sizeof(r->path));
    /* the path goes into the access log and error messages: text only */
    km_utf8_repair(r->path);
    rid = header(r, "X-Request-Id");
    if (kmhttp_request_id_ok(rid)) {
        km_strlcpy(r->rid, rid, sizeof(r->rid));
    } else {
        uint64_t n = 2 * h->rid_seq++;
        snprintf(r->rid, sizeof(r->rid), "%016" PRIx64 "%016" PRIx64, mix64(h->rid_seed + n),
                 mix64(h->rid_seed + n + 1));
    }
    dispatch(r, path);
}

/* --- setup --------------------------------------------------------------------------- */

kmcode
kmhttp_new(struct event_base *base, const struct kmhttp_opts *o, kmhttp **out, kmerr *err)
{
    kmhttp      *h = km_xcalloc(1, sizeof(*h));
    json_object *tools;
    const char  *text;
    kmcode       rc = KM_OK;

    h->base = base;
    h->cfg = o->cfg;
    h->q = o->q;
    h->generation = o->generation;
    h->grow = o->grow;
    h->grow_arg = o->grow_arg;
    h->early_close = (event_base_get_features(base) & EV_FEATURE_EARLY_CLOSE) != 0;
    if (getrandom(&h->rid_seed, sizeof(h->rid_seed), 0) != (ssize_t)sizeof(h->rid_seed))
        h->rid_seed = (uint64_t)km_wall_ms() ^ ((uint64_t)getpid() << 32);
    tools = kmreg_list_json();
    text = kmjson_text(tools);
    h->tools_len = strlen(text);
    h->tools_json = km_xstrdup(text);
    json_object_put(tools);
    h->svc = o->svc;
    h->reader = kmstore_loop_new(o->store, base);
    h->mcp = kmmcph_new(o->cfg, o->store);
    h->store = o->store;
    LIST_INIT(&h->mcp_calls);
    h->mcp_poll = event_new(base, -1, EV_PERSIST, on_mcp_poll, h);
    h->notes_ev = event_new(base, kmjobq_fd(o->q), EV_READ | EV_PERSIST, on_notes, h);
    if (!h->notes_ev || event_add(h->notes_ev, NULL) != 0) {
        rc = kmerr_set(err, KM_INTERNAL_ERROR, "cannot watch the job queue");
        kmhttp_free(h);
        h = NULL;
    }
    *out = h;
    return rc;
}

static void
forget_listener(struct listener *l)
{
    for (size_t i = 0; i < MAX_LISTENERS; i++)
        if (accepting[i].l == l)
            accepting[i].el = NULL, accepting[i].l = NULL;
    if (l->resume) {
        event_free(l->resume);
        l->resume = NULL;
    }
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    if (l->bound)
        evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
}

/* accept() failed for a reason that is not "try again": out of descriptors (EMFILE, ENFILE)
 * or memory. Retrying at once would spin (the socket stays readable), so stop accepting for
 * ACCEPT_PAUSE_MS, as nginx does; connections already open are served meanwhile and free
 * descriptors as they end. One log line per ACCEPT_LOG_MS at most. */
static void
on_accept_error(struct evconnlistener *el, void *arg)
{
    int              e = EVUTIL_SOCKET_ERROR();
    struct timeval   tv = { ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000 };
    struct listener *l = NULL;
    int64_t          now = km_now_ms();

    (void)arg;
    for (size_t i = 0; i < MAX_LISTENERS && !l; i++)
        if (accepting[i].el == el)
            l = accepting[i].l;
    evconnlistener_disable(el);
    if (!l) {
        kmlogf(KMLOG_ERROR, "accept_failed", "accept(): %s", strerror(e));
        return;
    }
    evtimer_add(l->resume, &tv);
    l->pauses++;
    if (now - l->logged >= ACCEPT_LOG_MS) {
        kmlogf(KMLOG_WARN, "accept_paused", "accept() on the %s listener failed: %s; not "
               "accepting for %d ms at a time (%u pause(s) since the last line). Raise the "
               "descriptor limit (ulimit -n / LimitNOFILE) or lower the number of clients",
               l->trusted ? "Unix socket" : "TCP", strerror(e), ACCEPT_PAUSE_MS, l->pauses);
        l->logged = now;
        l->pauses = 0;
    }
}

kmcode
kmhttp_listen(kmhttp *h, int fd, int trusted, kmerr *err)
{
    struct listener *l;

    if (h->n_lis >= sizeof(h->lis) / sizeof(h->lis[0]))
        return kmerr_set(err, KM_INTERNAL_ERROR, "too many listeners");
    l = &h->lis[h->n_lis];
    l->h = h;
    l->trusted = trusted;
    l->http = evhttp_new(h->base);
    if (!l->http)
        return kmerr_set(err, KM_INTERNAL_ERROR, "evhttp_new failed");
    h->n_lis++;
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(l->http, h->cfg->rest_timeout_s);
    /* Bodies up to twice the limit are read and answered with our own 413 envelope; beyond
     * that libevent refuses them itself (before any callback of ours runs), which bounds the
     * memory one connection can hold. */
    evhttp_set_max_body_size(l->http, (ev_ssize_t)h->cfg->max_body_bytes * 2);
    evhttp_set_max_headers_size(l->http, MAX_HEADERS_BYTES);
    evhttp_set_flags(l->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(l->http, on_request, l);
    l->bound = evhttp_accept_socket_with_handle(l->http, fd);
    if (!l->bound)
        return kmerr_set(err, KM_INTERNAL_ERROR, "evhttp cannot accept on fd %d", fd);
    l->resume = evtimer_new(h->base, on_resume, l);
    if (!l->resume)
        return kmerr_set(err, KM_INTERNAL_ERROR, "cannot make the accept-resume timer");
    for (size_t i = 0; i < MAX_LISTENERS; i++) {
        if (!accepting[i].el) {
            accepting[i].el = evhttp_bound_socket_get_listener(l->bound);
            accepting[i].l = l;
            evconnlistener_set_error_cb(accepting[i].el, on_accept_error);
            break;
        }
    }
    return KM_OK;
}

void
kmhttp_drain(kmhttp *h, void (*idle)(void *arg), void *arg)
{
    h->draining = 1;
    h->idle = idle;
    h->idle_arg = arg;
    h->linger = evtimer_new(h->base, on_linger, h);
    for (size_t i = 0; i < h->n_lis; i++) {
        forget_listener(&h->lis[i]);
        if (h->lis[i].bound) {
            evhttp_del_accept_socket(h->lis[i].http, h->lis[i].bound);
            h->lis[i].bound = NULL;
        }
    }
    if (h->live == 0)
        linger(h);
}

size_t
kmhttp_live(const kmhttp *h)
{
    return h->live;
}

void
kmhttp_free(kmhttp *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n_lis; i++) {
        forget_listener(&h->lis[i]);
        evhttp_free(h->lis[i].http);
    }
    if (h->notes_ev)
        event_free(h->notes_ev);
    if (h->linger)
        event_free(h->linger);
    if (h->mcp_poll)
        event_free(h->mcp_poll);
    free(h->tools_json);
    kmstore_loop_free(h->reader);
    kmmcph_free(h->mcp);
    free(h);
}
