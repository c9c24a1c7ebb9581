/* http_reply.c — writing answers: whole replies, error envelopes, streamed lines, progress
 * and keep-alives (see http_impl.h). */
#include "http_impl.h"

void
kmh_common_headers(struct kmreq *r, const char *ctype)
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
void
kmh_reply_buf(struct kmreq *r, int status, struct evbuffer *buf, const char *allow)
{
    struct evhttp_request *req = r->req;

    kmh_common_headers(r, "application/json");
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
    evhttp_request_set_on_complete_cb(req, kmh_on_complete, r);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), kmh_on_conn_close, r);
    evhttp_send_reply(req, status, NULL, buf);
    evbuffer_free(buf);
}

void
kmh_reply_text(struct kmreq *r, int status, const char *text, size_t len, const char *allow)
{
    struct evbuffer *buf = evbuffer_new();

    evbuffer_add(buf, text, len);
    kmh_reply_buf(r, status, buf, allow);
}

void
kmh_note_error(struct kmreq *r, json_object *env)
{
    const char *code = kmjson_str(kmjson_get(env, "error"), "code");
    const char *msg = kmjson_str(kmjson_get(env, "error"), "message");

    if (code)
        km_strlcpy(r->error, code, sizeof(r->error));
    if (msg)
        km_strlcpy(r->message, msg, sizeof(r->message));
}

void
kmh_reply_json(struct kmreq *r, int status, json_object *env)
{
    const char *text = kmjson_text(env);

    kmh_note_error(r, env);
    kmh_reply_text(r, status, text, strlen(text), NULL);
}

void
kmh_reply_error(struct kmreq *r, kmcode code, const char *allow, const char *fmt, ...)
{
    kmerr        e = { 0 };
    json_object *env;
    const char  *text;
    va_list      ap;

    va_start(ap, fmt);
    kmerr_vset(&e, code, fmt, ap);
    va_end(ap);
    env = kmerr_envelope(&e);
    kmh_note_error(r, env);
    text = kmjson_text(env);
    kmh_reply_text(r, kmerr_http_status(code), text, strlen(text), allow);
    json_object_put(env);
    kmerr_clear(&e);
}

void
kmh_reply_kmerr(struct kmreq *r, const kmerr *e)
{
    json_object *env = kmerr_envelope(e);

    kmh_reply_json(r, kmerr_http_status(e->code), env);
    json_object_put(env);
}

/* Send bytes of a streamed answer (an NDJSON line, an SSE event or comment). */
void
kmh_send_raw(struct kmreq *r, const char *text, size_t n)
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

void
kmh_send_line(struct kmreq *r, json_object *line)
{
    char *text = km_xasprintf("%s\n", kmjson_text(line));

    kmh_send_raw(r, text, strlen(text));
    free(text);
}

/* An MCP call's progress: a notifications/progress event when the client asked for them,
 * else (for a keep-alive) an SSE comment, so a quiet call still shows it is alive. */
void
kmh_send_mcp_progress(struct kmreq *r, int done, int total, int waiting)
{
    json_object *msg = kmproto_progress_note(&r->progress, done, total, waiting);

    if (msg) {
        char *ev = kmmcph_event(msg);

        kmh_send_raw(r, ev, strlen(ev));
        free(ev);
        json_object_put(msg);
    } else if (waiting) {
        kmh_send_raw(r, ":\n\n", 3);
    }
}

/* A progress line; `waiting` marks a keep-alive (nothing new: the call still waits). */
void
kmh_send_progress(struct kmreq *r, int done, int total, int waiting)
{
    json_object *line, *p;

    if (!r->req || !r->stream)
        return;
    r->done = done;
    r->total = total;
    if (r->mcp) {
        kmh_send_mcp_progress(r, done, total, waiting);
        return;
    }
    line = json_object_new_object();
    p = json_object_new_object();
    json_object_object_add(p, "done", json_object_new_int(done));
    json_object_object_add(p, "total", json_object_new_int(total));
    if (waiting)
        json_object_object_add(p, "waiting", json_object_new_boolean(1));
    json_object_object_add(line, "progress", p);
    kmh_send_line(r, line);
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
        kmh_send_progress(r, r->done, r->total, 1);
}

void
kmh_start_beat(struct kmreq *r)
{
    struct timeval tv = { STREAM_KEEPALIVE_MS / 1000, (STREAM_KEEPALIVE_MS % 1000) * 1000 };

    r->beat = event_new(r->h->base, -1, EV_PERSIST, on_beat, r);
    if (r->beat && event_add(r->beat, &tv) != 0) {
        event_free(r->beat);
        r->beat = NULL;
    }
}
