/* http.c — a request's life on one worker: arrival, routing, auth, hygiene, timeouts and
 * the access log (see http.h; the other http_*.c files are listed in http_impl.h).
 *
 * A request context (struct kmreq) lives from the moment evhttp hands us a complete request
 * until its answer has been written (kmh_on_complete) or its connection is gone. In between
 * it is in one of these states:
 *   R_NEW       being routed on the loop thread; a synchronous answer goes straight out;
 *   R_LOOKUP    its answer is being read from the answer cache (store_loop.h); a connection
 *               that fails meanwhile is handled as in R_QUEUED;
 *   R_QUEUED    its job is with the service threads; an EV_CLOSED watcher on the socket
 *               notices a client that leaves, sets the job's `cancelled` flag (unless
 *               identical calls follow it) and frees the connection, so no answer is ever
 *               attempted for it;
 *   R_FOLLOWING it waits, without a job, for the answer of an identical call's job (its
 *               leader, http_call.c); a client that leaves ends it at once;
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
#include "http_impl.h"

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

const char *
kmh_header(struct kmreq *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
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
    if (r->shared)
        json_object_object_add(f, "shared", json_object_new_boolean(1));
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
void
kmh_finish(struct kmreq *r)
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
    if (r->ckey)
        LIST_REMOVE(r, lead_link);
    free(r->ckey);
    free(r);
    h->live--;
    if (h->draining && h->live == 0)
        linger(h);
}

void
kmh_unwatch_eof(struct kmreq *r)
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
void
kmh_suspend_read_timeout(struct kmreq *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    struct timeval            tv = { r->h->cfg->rest_timeout_s, 0 };

    if (conn)
        bufferevent_set_timeouts(evhttp_connection_get_bufferevent(conn), NULL, &tv);
}

/* The answer is about to be written: REST_TIMEOUT_SECONDS bounds it, and the next request on
 * the connection, again. */
void
kmh_restore_timeouts(struct kmreq *r)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);

    if (conn)
        evhttp_connection_set_timeout(conn, r->h->cfg->rest_timeout_s);
}

/* The answer has been written completely. */
void
kmh_on_complete(struct evhttp_request *req, void *arg)
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
    kmh_finish(r);
}

/* libevent is freeing the connection: a write failed or timed out, or the server is freed. */
void
kmh_on_conn_close(struct evhttp_connection *conn, void *arg)
{
    struct kmreq *r = arg;

    (void)conn;
    r->gone = 1;
    if (!r->closed_by)
        r->closed_by = r->state == R_REPLYING ? "during_answer" : "write_failed_or_timed_out";
    if (r->state == R_QUEUED || r->state == R_LOOKUP || r->state == R_FOLLOWING) {
        /* A failed streaming write: libevent detached the request (it is not freed with the
         * connection) and the job still runs. Abandon it (unless identical calls wait for
         * it); the final note frees everything. A follower has no job: it ends here. */
        if (TAILQ_EMPTY(&r->followers))
            atomic_store(&r->job.cancelled, true);
        kmh_unwatch_eof(r);
        r->orphan = r->req;
        r->req = NULL;
        if (r->state == R_FOLLOWING)
            kmh_unfollow(r);
        return;
    }
    /* R_REPLYING: the request is freed with the connection. */
    r->req = NULL;
    kmh_finish(r);
}

/* The client closed its end while the job was queued or running. */
static void
on_eof(evutil_socket_t fd, short what, void *arg)
{
    struct kmreq             *r = arg;
    struct evhttp_connection *conn = evhttp_request_get_connection(r->req);
    size_t                    waiting = 0;
    struct kmreq             *f;
    double                    after = (double)(km_now_ms() - r->t0) / 1e3;
    const char               *tool = r->tool ? r->tool : "?";

    (void)fd;
    (void)what;
    kmh_unwatch_eof(r);
    TAILQ_FOREACH(f, &r->followers, follow_link)
        waiting++;
    r->gone = 1;
    r->closed_by = "client";
    if (r->state == R_FOLLOWING)
        kmlogf(KMLOG_INFO, "call_cancelled", "the client closed its connection after %.1f s; "
               "the call (%s) waited for an identical call's answer", after, tool);
    else if (waiting > 0)
        kmlogf(KMLOG_INFO, "call_cancelled", "the client closed its connection after %.1f s; "
               "the call (%s) goes on for the %zu identical call(s) waiting for it", after,
               tool, waiting);
    else
        kmlogf(KMLOG_INFO, "call_cancelled", "the client closed its connection after %.1f s; "
               "the call (%s) stops before its next Klaviyo request", after, tool);
    if (waiting == 0)
        atomic_store(&r->job.cancelled, true);
    r->req = NULL;
    if (conn) {
        /* frees the pending request with it; nothing is written */
        evhttp_connection_set_closecb(conn, NULL, NULL);
        evhttp_connection_free(conn);
    }
    if (r->state == R_FOLLOWING)
        kmh_unfollow(r);    /* it has no job whose note would end it */
}

void
kmh_watch_eof(struct kmreq *r)
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
        kmh_unwatch_eof(r);
}

/* An error envelope for `code`, with the code's HTTP status (err.c's one table). */
/* --- fixed routes and dispatch ----------------------------------------------------------- */

static void
route_health(struct kmreq *r)
{
    kmhttp *h = r->h;
    char    body[160];
    int     n;

    n = snprintf(body, sizeof(body),
                 "{\"status\":\"%s\",\"pid\":%ld,\"generation\":%d,\"in_flight\":%zu}",
                 h->draining ? "draining" : "ok", (long)getpid(), h->generation, h->in_flight);
    kmh_reply_text(r, h->draining ? 503 : 200, body, (size_t)n, NULL);
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
        kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, HEAD",
                    "%s /metrics is not allowed; use GET", r->method);
        return;
    }
    text = kmmet_render(&len);
    buf = evbuffer_new();
    evbuffer_add(buf, text, len);
    free(text);
    kmh_common_headers(r, "text/plain; version=0.0.4; charset=utf-8");
    r->status = 200;
    r->bytes = len;
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(req, kmh_on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), kmh_on_conn_close, r);
    evhttp_send_reply(req, 200, NULL, buf);
    evbuffer_free(buf);
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
dispatch(struct kmreq *r, const char *path)
{
    kmhttp *h = r->h;
    kmerr   err = { 0 };

    if (conflicting_lengths(r)) {
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Connection", "close");
        kmh_reply_error(r, KM_INVALID_ARGUMENT, NULL,
                    "the request has two different Content-Length headers");
        return;
    }
    if (strcmp(r->method, "CONNECT") == 0) {
        kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, POST", "CONNECT is not allowed: this is "
                    "not a proxy");
        return;
    }

    if (strcmp(path, "/health") == 0) {
        if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
            route_health(r);
        else
            kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, "GET, HEAD",
                        "%s /health is not allowed; use GET", r->method);
        return;
    }
    if (strcmp(path, "/mcp") == 0) {
        kmh_route_mcp(r);
        return;
    }
    if (!r->trusted &&
        kmauth_check(h->cfg->rest_tokens, h->cfg->n_rest_tokens, kmh_header(r, "Authorization"),
                     kmh_header(r, "X-API-Key"), &err) != KM_OK) {
        kmh_reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    if (strcmp(path, "/metrics") == 0) {
        route_metrics(r);
        return;
    }
    if (strcmp(path, "/v1/tools") == 0 || strcmp(path, "/v1/tools/") == 0) {
        if (strcmp(r->method, "GET") == 0)
            kmh_reply_text(r, 200, h->tools_json, h->tools_len, NULL);
        else
            kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, "GET", "%s /v1/tools is not allowed; use GET",
                        r->method);
        return;
    }
    if (strncmp(path, TOOLS_PREFIX, strlen(TOOLS_PREFIX)) == 0) {
        kmh_route_tool_call(r, path + strlen(TOOLS_PREFIX));
        return;
    }
    kmh_route_registry(r, path);
}

void
kmh_on_request(struct evhttp_request *req, void *arg)
{
    struct listener *l = arg;
    kmhttp          *h = l->h;
    struct kmreq    *r = km_xcalloc(1, sizeof(*r));
    const char      *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char      *rid;

    TAILQ_INIT(&r->followers);
    h->live++;
    if (evhttp_request_get_connection(req))
        kmconn_request_done(h->conns,
                            evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)));
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
    rid = kmh_header(r, "X-Request-Id");
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
    h->conns = kmconn_pool_new(base, o->cfg->rest_timeout_s);
    h->max_conns = o->max_conns ? o->max_conns : (size_t)o->cfg->worker_connections;
    h->full_logged = -ACCEPT_LOG_MS;
    h->svc = o->svc;
    h->reader = kmstore_loop_new(o->store, base);
    h->refresh = kmrefresh_new(o->q, (size_t)o->cfg->queue_max);
    h->mcp = kmmcph_new(o->cfg, o->store);
    h->store = o->store;
    LIST_INIT(&h->mcp_calls);
    LIST_INIT(&h->leaders);
    h->mcp_poll = event_new(base, -1, EV_PERSIST, kmh_on_mcp_poll, h);
    h->notes_ev = event_new(base, kmjobq_fd(o->q), EV_READ | EV_PERSIST, kmh_on_notes, h);
    if (h->conns)
        kmconn_watch(h->conns, kmh_on_conns, h);
    if (!h->conns || !h->notes_ev || event_add(h->notes_ev, NULL) != 0) {
        rc = kmerr_set(err, KM_INTERNAL_ERROR, "cannot watch the job queue or the connections");
        kmhttp_free(h);
        h = NULL;
    }
    *out = h;
    return rc;
}

void
kmhttp_drain(kmhttp *h, void (*idle)(void *arg), void *arg)
{
    h->draining = 1;
    kmrefresh_stop(h->refresh);
    h->idle = idle;
    h->idle_arg = arg;
    h->linger = evtimer_new(h->base, on_linger, h);
    for (size_t i = 0; i < h->n_lis; i++) {
        kmh_forget_listener(&h->lis[i]);
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
    if (h->conns)
        kmconn_watch(h->conns, NULL, NULL);   /* the listeners go first */
    for (size_t i = 0; i < h->n_lis; i++) {
        kmh_forget_listener(&h->lis[i]);
        evhttp_free(h->lis[i].http);
    }
    if (h->notes_ev)
        event_free(h->notes_ev);
    if (h->q) {
        /* what the stopped service threads handed back last: refreshes (no request is left) */
        struct kmjob_notes notes = STAILQ_HEAD_INITIALIZER(notes);
        struct kmjob_note *n;

        kmjobq_take(h->q, &notes);
        while ((n = STAILQ_FIRST(&notes)) != NULL) {
            STAILQ_REMOVE_HEAD(&notes, link);
            if (!n->final)
                free(n);
            else
                kmrefresh_done(h->refresh, n->job);
        }
    }
    kmrefresh_free(h->refresh);
    if (h->linger)
        event_free(h->linger);
    if (h->mcp_poll)
        event_free(h->mcp_poll);
    free(h->tools_json);
    kmstore_loop_free(h->reader);
    kmconn_pool_free(h->conns);     /* after evhttp_free: its connections are gone */
    kmmcph_free(h->mcp);
    free(h);
}
