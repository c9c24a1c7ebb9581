/* http_call.c — a tool call's way through a worker: its arguments (query string or JSON body),
 * its answer from the answer cache on the loop, else the job queue and the answer the service
 * thread sends back (see http_impl.h). */
#include "http_impl.h"

/* --- arguments ----------------------------------------------------------------------- */

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

/* Who reads the answer: a model when the transport says so (shape.h). */
static kmshape_view
view_of(struct kmreq *r)
{
    const char *v = kmh_header(r, KMSHAPE_VIEW_HEADER);

    return v && strcmp(v, KMSHAPE_VIEW_MODEL) == 0 ? KMSHAPE_MODEL : KMSHAPE_REST;
}

/* A call answered without a service thread: `text` (len bytes) is its envelope with HTTP
 * status `status`; a stream gets it as its one result line. */
static void
reply_at_once(struct kmreq *r, int status, const char *text, size_t len)
{
    struct evbuffer *buf;
    char            *line;

    if (!r->stream) {
        kmh_reply_text(r, status, text, len, NULL);
        return;
    }
    /* a stream's whole answer: its result line, with status 200 for the stream itself */
    buf = evbuffer_new();
    line = km_xasprintf("{\"status\":%d,\"result\":%.*s}\n", status, (int)len, text);
    evbuffer_add(buf, line, strlen(line));
    free(line);
    r->stream = 0;      /* answered at once: no progress, no keep-alive */
    kmh_common_headers(r, NDJSON);
    r->status = 200;
    r->bytes = evbuffer_get_length(buf);
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(r->req, kmh_on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), kmh_on_conn_close, r);
    evhttp_send_reply(r->req, 200, NULL, buf);
    evbuffer_free(buf);
}

/* --- identical calls share one computation -----------------------------------------------
 * When a kept answer is missing (it expired, or was never made), the first call for it on
 * this worker runs and leads; identical calls that arrive while its job is queued or running
 * follow it: they wait on the loop, holding no service thread, and get its answer, each with
 * its own latency (kmans_share_text). Without this, every caller of a hot answer that expired took
 * a service thread to wait for the same Klaviyo requests (peers in the Klaviyo client), and
 * the worker added threads up to SERVICE_THREADS_MAX, then refused calls with 503. A leader
 * whose client leaves goes on while others follow it. Streams (which get progress of their
 * own job) neither lead nor follow. */

/* The call this worker is computing for `key`, or NULL. */
static struct kmreq *
leader_of(kmhttp *h, const char *key)
{
    struct kmreq *l;

    LIST_FOREACH(l, &h->leaders, lead_link) {
        if (strcmp(l->ckey, key) == 0 && !atomic_load(&l->job.cancelled))
            return l;
    }
    return NULL;
}

/* r waits for an answer made elsewhere (its job, R_QUEUED, or its leader's, R_FOLLOWING):
 * no read timeout meanwhile, a client that leaves is noticed, and it counts as in flight. */
static void
await_answer(struct kmreq *r, enum rstate state)
{
    r->state = state;
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), kmh_on_conn_close, r);
    kmh_suspend_read_timeout(r);
    kmh_watch_eof(r);
    r->h->in_flight++;
}

static void
follow(struct kmreq *r, struct kmreq *lead)
{
    r->leader = lead;
    TAILQ_INSERT_TAIL(&lead->followers, r, follow_link);
    await_answer(r, R_FOLLOWING);
}

void
kmh_unfollow(struct kmreq *r)
{
    TAILQ_REMOVE(&r->leader->followers, r, follow_link);
    r->leader = NULL;
    r->h->in_flight--;
    kmh_unwatch_eof(r);
    if (r->orphan)
        evhttp_request_free(r->orphan);
    r->orphan = NULL;
    r->req = NULL;
    r->gone = 1;
    r->status = 499;
    kmh_finish(r);
}

/* A call whose kept answer is missing: it follows the identical call this worker computes,
 * else it runs, and leads. `key` (the kept answer's, may be NULL) is taken. */
static void
run_or_follow(struct kmreq *r, char *key)
{
    kmhttp       *h = r->h;
    int           shares = key && !r->stream && !r->solo;
    struct kmreq *lead = shares ? leader_of(h, key) : NULL;
    json_object  *args = r->job.args;

    if (lead) {
        free(key);
        follow(r, lead);
        return;
    }
    r->job.args = NULL;
    r->state = R_NEW;
    if (!kmh_queue_job(r, r->job.tool, args)) {
        free(key);              /* refused (503): r is gone */
        return;
    }
    if (!shares) {
        free(key);
        return;
    }
    r->ckey = key;
    LIST_INSERT_HEAD(&h->leaders, r, lead_link);
}

/* Whether the answer of lead's finished job is its followers' too: not when it was cancelled
 * (it stopped before an answer) or ran out of its deadline (theirs comes later). */
static int
answer_fits_followers(const struct kmreq *lead)
{
    int64_t deadline_ms = (int64_t)lead->h->cfg->request_deadline_s * 1000;

    if (!lead->job.envelope || lead->job.status == kmerr_http_status(KM_CANCELLED))
        return 0;
    return !(lead->job.status == kmerr_http_status(KM_UPSTREAM_TIMEOUT) && deadline_ms > 0 &&
             km_now_ms() - lead->t0 >= deadline_ms);
}

/* lead's job is done: its followers get its answer, or run their own job when it does not fit
 * them. */
static void
answer_followers(struct kmreq *lead)
{
    kmhttp       *h = lead->h;
    int           fits = answer_fits_followers(lead);
    kmans_share  *sh = NULL;
    struct kmreq *f;

    if (lead->ckey) {
        LIST_REMOVE(lead, lead_link);
        free(lead->ckey);
        lead->ckey = NULL;
    }
    while ((f = TAILQ_FIRST(&lead->followers)) != NULL) {
        TAILQ_REMOVE(&lead->followers, f, follow_link);
        f->leader = NULL;
        h->in_flight--;
        kmh_unwatch_eof(f);
        if (fits) {
            size_t len = 0;
            char  *text;

            if (!sh)
                sh = kmans_share_new(lead->job.envelope);  /* its parts serialized once */
            text = kmans_share_text(sh, (double)(km_now_ms() - f->t0), &len);

            f->shared = 1;
            kmh_restore_timeouts(f);
            kmh_note_error(f, lead->job.envelope);
            kmh_reply_text(f, lead->job.status, text, len, NULL);
            free(text);
        } else {
            json_object *args = f->job.args;

            f->job.args = NULL;
            f->solo = 1;
            f->state = R_NEW;
            kmh_queue_job(f, f->job.tool, args);
        }
    }
    kmans_share_free(sh);
}

/* The answer cache's entry (or a miss) for a call in R_LOOKUP. */
static void
on_kept(void *arg, const kmstore_loop_reply *rep)
{
    struct kmreq *r = arg;
    kmhttp       *h = r->h;
    char         *text = NULL, *key = NULL;
    size_t        len = 0;
    int           due = 0;

    if (rep->found)
        text = kmsvc_probe_answer(h->svc, &r->probe, rep->body, rep->len, rep->remaining,
                                  r->t0, &len, &due);
    if (text && due && r->req && !r->gone)
        /* a hot answer about to expire: a service thread makes it again meanwhile */
        kmrefresh_ask(h->refresh, r->probe.key, r->job.tool, r->job.args, view_of(r), r->rid,
                      kmsvc_refresh_window(h->svc));
    if (!text && r->probe.key)
        key = km_xstrdup(r->probe.key);
    kmsvc_probe_clear(&r->probe);
    if (r->gone || !r->req) {
        /* the client left while the store answered */
        free(text);
        free(key);
        if (r->orphan)
            evhttp_request_free(r->orphan);
        r->orphan = NULL;
        r->gone = 1;
        r->status = 499;
        kmh_finish(r);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), NULL, NULL);
    if (!text) {
        run_or_follow(r, key);
        return;
    }
    r->kept = 1;
    reply_at_once(r, 200, text, len);
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
        kmh_queue_job(r, tool, args);
        return;
    }
    if (tool->local) {
        /* the configuration answers it: here, on the loop */
        int          status = 0;
        json_object *env = kmsvc_call_local(h->svc, tool, args, view_of(r), r->t0, &status);
        const char  *text = kmjson_text(env);

        r->tool = tool->name;
        json_object_put(args);
        kmh_note_error(r, env);
        reply_at_once(r, status, text, strlen(text));
        json_object_put(env);
        return;
    }
    rc = kmsvc_probe_call(h->svc, tool, args, view_of(r), &r->probe, &err);
    r->tool = tool->name;
    if (rc != KM_OK && r->stream) {
        /* a stream says even a refusal in its result line: the service thread writes it */
        kmsvc_probe_clear(&r->probe);
        kmerr_clear(&err);
        kmh_queue_job(r, tool, args);
        return;
    }
    if (rc != KM_OK) {
        kmsvc_probe_clear(&r->probe);
        json_object_put(args);
        kmh_reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    if (!r->probe.key) {
        kmh_queue_job(r, tool, args);
        return;
    }
    r->job.tool = tool;
    r->job.args = args;
    r->state = R_LOOKUP;
    evhttp_connection_set_closecb(evhttp_request_get_connection(r->req), kmh_on_conn_close, r);
    kmstore_loop_get(h->reader, r->probe.key, r->probe.budget, r->probe.nbudget,
                     &r->probe.budget_lim, r->probe.budget_win, on_kept, r);
}

static void
job_done(struct kmreq *r)
{
    kmhttp                *h = r->h;
    struct evhttp_request *req = r->req;
    json_object           *line;

    h->in_flight--;
    kmh_unwatch_eof(r);
    answer_followers(r);    /* before r itself: r may be gone, they are not */
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
        kmh_finish(r);
        return;
    }
    kmh_restore_timeouts(r);
    if (!r->job.envelope) {
        kmerr e = { 0 };
        kmerr_set(&e, KM_INTERNAL_ERROR, "the tool call produced no answer");
        r->job.envelope = kmerr_envelope(&e);
        r->job.status = kmerr_http_status(KM_INTERNAL_ERROR);
        kmerr_clear(&e);
    }
    if (!r->stream) {
        kmh_reply_json(r, r->job.status, r->job.envelope);
        return;
    }
    kmh_note_error(r, r->job.envelope);
    if (r->mcp) {
        /* the response ends the stream; a cancelled request gets none */
        if (!r->mcp_cancelled) {
            json_object *msg = kmproto_call_answer(r->mcp->id, r->mcp->stateless,
                                                   json_object_get(r->job.envelope),
                                                   KMMCP_DEFAULT_MAX_MESSAGE);
            char        *ev = kmmcph_event(msg);

            kmh_send_raw(r, ev, strlen(ev));
            free(ev);
            json_object_put(msg);
        }
        r->status = 200;
        r->state = R_REPLYING;
        evhttp_request_set_on_complete_cb(req, kmh_on_complete, r);
        evhttp_connection_set_closecb(evhttp_request_get_connection(req), kmh_on_conn_close, r);
        evhttp_send_reply_end(req);
        return;
    }
    line = json_object_new_object();
    json_object_object_add(line, "status", json_object_new_int(r->job.status));
    json_object_object_add(line, "result", json_object_get(r->job.envelope));
    kmh_send_line(r, line);
    json_object_put(line);
    r->status = 200;
    r->state = R_REPLYING;
    evhttp_request_set_on_complete_cb(req, kmh_on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), kmh_on_conn_close, r);
    evhttp_send_reply_end(req);
}

void
kmh_on_notes(evutil_socket_t fd, short what, void *arg)
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
        if (kmrefresh_done(h->refresh, n->job))
            continue;           /* a refresh ended: no request waits on it */
        r = n->job->owner;
        if (n->final) {
            job_done(r);        /* the note is part of the job: do not touch it again */
        } else {
            kmh_send_progress(r, n->done, n->total, 0);
            free(n);
        }
    }
}

int
kmh_queue_job(struct kmreq *r, const struct kmtool *tool, json_object *args)
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
        kmh_reply_error(r, KM_SERVICE_UNAVAILABLE, NULL, "this worker is at capacity: %d "
                    "calls wait for one of its threads (QUEUE_MAX); retry in a moment",
                    h->cfg->queue_max);
        return 0;
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
        kmh_common_headers(r, "text/event-stream");
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "X-Accel-Buffering", "no");
        evhttp_send_reply_start(r->req, 200, NULL);
        kmh_start_beat(r);
    } else if (r->stream) {
        kmh_common_headers(r, NDJSON);
        evhttp_send_reply_start(r->req, 200, NULL);
        kmh_start_beat(r);
    }
    await_answer(r, R_QUEUED);
    return 1;
}

/* The JSON object in the body; an empty body is {}. */
static kmcode
body_args(struct kmreq *r, json_object **out, kmerr *err)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t           len = evbuffer_get_length(in);
    size_t           max = (size_t)r->h->cfg->max_body_bytes;
    const char      *ct = kmh_header(r, "Content-Type");
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

void
kmh_route_tool_call(struct kmreq *r, const char *name)
{
    const struct kmtool *tool = kmreg_find(name);
    const char          *accept = kmh_header(r, "Accept");
    json_object         *args = NULL;
    kmerr                err = { 0 };

    if (!tool) {
        static const char ok[] = "abcdefghijklmnopqrstuvwxyz0123456789_";
        size_t            len = strlen(name);
        int               printable = len <= 64 && strspn(name, ok) == len;

        kmh_reply_error(r, KM_UNKNOWN_TOOL, NULL, "unknown tool '%s' (GET /v1/tools lists them)",
                    printable ? name : "?");
        return;
    }
    if (strcmp(r->method, "POST") != 0) {
        kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, "POST", "%s %s is not allowed; use POST",
                    r->method, r->path);
        return;
    }
    if (body_args(r, &args, &err) != KM_OK) {
        kmh_reply_kmerr(r, &err);
        kmerr_clear(&err);
        return;
    }
    r->stream = accept && strcasestr(accept, NDJSON) != NULL;
    run_call(r, tool, args);
}

void
kmh_route_registry(struct kmreq *r, const char *path)
{
    json_object         *path_args = NULL, *args = NULL;
    const char          *allow = NULL;
    const struct kmtool *tool = kmroute_find(r->method, path, &path_args, &allow);
    kmerr                err = { 0 };
    kmcode               rc;

    if (!tool) {
        if (allow)
            kmh_reply_error(r, KM_METHOD_NOT_ALLOWED, allow, "%s %s is not allowed; use %s",
                        r->method, r->path, allow);
        else
            kmh_reply_error(r, KM_NOT_FOUND, NULL, "no route %s %s", r->method, r->path);
        return;
    }
    if (strcmp(tool->method, "GET") == 0)
        rc = query_args(r, &args, &err);
    else
        rc = body_args(r, &args, &err);
    if (rc != KM_OK) {
        json_object_put(path_args);
        kmh_reply_kmerr(r, &err);
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
