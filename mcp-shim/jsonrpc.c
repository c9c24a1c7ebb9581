/* jsonrpc.c — JSON-RPC 2.0 framing, parsing and output for the MCP stdio transport. */
#include "jsonrpc.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#define READ_CHUNK  65536
#define MAX_DEPTH   64

/* --- line framing ---------------------------------------------------------------------- */

void
kmmcp_reader_init(kmmcp_reader *r, size_t max_line)
{
    memset(r, 0, sizeof(*r));
    r->max = max_line;
}

void
kmmcp_reader_free(kmmcp_reader *r)
{
    if (!r)
        return;
    free(r->buf);
    memset(r, 0, sizeof(*r));
}

/* Make room for n more bytes after r->len (and a NUL), first moving the unconsumed bytes to
 * the front when the room is not there already: a caller pushing a few bytes at a time does
 * not move a long partial line on every push. */
static void
reserve(kmmcp_reader *r, size_t n)
{
    if (r->start > 0 && r->len + n + 1 > r->cap) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    if (r->len + n + 1 > r->cap) {
        /* start small: a caller that pushes a few bytes needs no 64 KiB buffer; a fill asks
         * for READ_CHUNK and gets it by doubling */
        size_t cap = r->cap ? r->cap : 256;

        while (cap < r->len + n + 1)
            cap *= 2;
        r->buf = km_xrealloc(r->buf, cap);
        r->cap = cap;
    }
}

ssize_t
kmmcp_reader_fill(kmmcp_reader *r, int fd)
{
    ssize_t n;

    reserve(r, READ_CHUNK);
    n = read(fd, r->buf + r->len, READ_CHUNK);
    if (n > 0)
        r->len += (size_t)n;
    else if (n == 0)
        r->eof = 1;
    return n;
}

void
kmmcp_reader_push(kmmcp_reader *r, const void *p, size_t n)
{
    reserve(r, n);
    memcpy(r->buf + r->len, p, n);
    r->len += n;
}

/* Drop everything buffered (the tail of an over-long line). */
static void
discard_all(kmmcp_reader *r)
{
    r->start = 0;
    r->len = 0;
    r->scanned = 0;
}

enum kmmcp_event
kmmcp_reader_next(kmmcp_reader *r, char **line, size_t *len)
{
    if (!r->buf)
        return KMMCP_NEED_MORE;  /* nothing was ever read (NULL + 0 is undefined behaviour) */
    for (;;) {
        size_t held = r->len - r->start;
        char  *base = r->buf + r->start;
        char  *nl = held > r->scanned ? memchr(base + r->scanned, '\n', held - r->scanned)
                                      : NULL;
        size_t n;

        if (!nl) {
            if (r->skipping) {
                discard_all(r);
                if (r->eof)
                    r->skipping = 0;
                return KMMCP_NEED_MORE;
            }
            if (held > r->max) {
                /* report the over-long line once, now, and drop it up to its newline */
                r->skipping = 1;
                discard_all(r);
                return KMMCP_TOO_LONG;
            }
            r->scanned = held;
            if (!r->eof || held == 0)
                return KMMCP_NEED_MORE;
            /* end of input: the unterminated last line is still a line */
            reserve(r, 0);
            base = r->buf + r->start;
            n = held;
            r->start = r->len;
            r->scanned = 0;
        } else {
            n = (size_t)(nl - base);
            r->start += n + 1;
            r->scanned = 0;
            if (r->skipping) {
                /* the end of the over-long line: it was reported already */
                r->skipping = 0;
                continue;
            }
            if (n > r->max) {
                /* a whole over-long line arrived in one read */
                return KMMCP_TOO_LONG;
            }
        }
        base[n] = '\0';
        if (n > 0 && base[n - 1] == '\r')
            base[--n] = '\0';
        if (strspn(base, " \t") == n)
            continue;   /* a blank line is no message */
        *line = base;
        *len = n;
        return KMMCP_LINE;
    }
}

/* --- parsing ---------------------------------------------------------------------------- */

int
kmmcp_utf8_valid(const char *s, size_t n, size_t *bad)
{
    return km_utf8_valid(s, n, bad);
}

kmcode
kmmcp_parse(const char *text, size_t len, json_object **out, kmerr *err)
{
    size_t at;

    *out = NULL;
    /* binary bytes on stdin get their own message; the grammar is kmjson_parse's */
    if (!kmmcp_utf8_valid(text, len, &at))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "invalid UTF-8 at byte %zu", at);
    return kmjson_parse(text, len, KM_INVALID_ARGUMENT, out, err);
}

/* --- classification --------------------------------------------------------------------- */

static void
invalid(struct kmmcp_msg *m, int code, const char *why)
{
    m->kind = KMMCP_INVALID;
    m->code = code;
    km_strlcpy(m->why, why, sizeof(m->why));
}

/* json-c reads an integer beyond 64 bits as the nearest bound (10^30 as 2^64-1, -10^30 as
 * -2^63), so an id at a bound may not be the one sent: it cannot be echoed exactly. */
static int
id_saturated(json_object *id)
{
    return json_object_is_type(id, json_type_int) &&
           (json_object_get_int64(id) == INT64_MIN || json_object_get_uint64(id) == UINT64_MAX);
}

void
kmmcp_classify(json_object *o, struct kmmcp_msg *m)
{
    json_object *id = NULL, *ver, *method, *params = NULL;
    int          has_id;

    memset(m, 0, sizeof(*m));
    if (!o || !json_object_is_type(o, json_type_object)) {
        invalid(m, KMMCP_INVALID_REQUEST, "a JSON-RPC message must be an object");
        return;
    }
    has_id = json_object_object_get_ex(o, "id", &id);
    if (has_id && (json_object_is_type(id, json_type_string) ||
                   (json_object_is_type(id, json_type_int) && !id_saturated(id))))
        m->id = id;

    ver = NULL;
    json_object_object_get_ex(o, "jsonrpc", &ver);
    method = NULL;
    json_object_object_get_ex(o, "method", &method);
    json_object_object_get_ex(o, "params", &params);

    if (!ver || !json_object_is_type(ver, json_type_string) ||
        strcmp(json_object_get_string(ver), "2.0") != 0) {
        invalid(m, KMMCP_INVALID_REQUEST, "jsonrpc must be \"2.0\"");
        return;
    }
    if (!method) {
        if (m->id && (json_object_object_get_ex(o, "result", NULL) ||
                      json_object_object_get_ex(o, "error", NULL))) {
            m->kind = KMMCP_RESPONSE;
            return;
        }
        invalid(m, KMMCP_INVALID_REQUEST, "a request needs a method");
        return;
    }
    if (!json_object_is_type(method, json_type_string)) {
        invalid(m, KMMCP_INVALID_REQUEST, "method must be a string");
        return;
    }
    if (has_id && id_saturated(id)) {
        invalid(m, KMMCP_INVALID_REQUEST, "id is out of range: integer ids from -(2^63-1) to "
                "2^64-2 are echoed exactly; use a string for others");
        return;
    }
    if (has_id && !m->id) {
        invalid(m, KMMCP_INVALID_REQUEST, "id must be a string or an integer (not null)");
        return;
    }
    m->method = json_object_get_string(method);
    m->kind = has_id ? KMMCP_REQUEST : KMMCP_NOTIFICATION;
    if (params && !json_object_is_type(params, json_type_null)) {
        if (!json_object_is_type(params, json_type_object)) {
            m->code = KMMCP_INVALID_PARAMS;
            km_strlcpy(m->why, "params must be an object", sizeof(m->why));
            if (m->kind == KMMCP_REQUEST)
                m->kind = KMMCP_INVALID;
            return;
        }
        m->params = params;
    }
}

int
kmmcp_id_equal(json_object *a, json_object *b)
{
    if (!a || !b)
        return 0;
    if (json_object_is_type(a, json_type_int) && json_object_is_type(b, json_type_int))
        return json_object_get_int64(a) == json_object_get_int64(b) &&
               json_object_get_uint64(a) == json_object_get_uint64(b);
    if (json_object_is_type(a, json_type_string) && json_object_is_type(b, json_type_string))
        return json_object_get_string_len(a) == json_object_get_string_len(b) &&
               memcmp(json_object_get_string(a), json_object_get_string(b),
                      (size_t)json_object_get_string_len(a)) == 0;
    return 0;
}

/* --- builders --------------------------------------------------------------------------- */

static json_object *
envelope(json_object *id)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    /* an error to a message whose id could not be read has no id at all: the schema's
     * JSONRPCErrorResponse makes id optional, and a RequestId is never null */
    if (id)
        json_object_object_add(o, "id", json_object_get(id));
    return o;
}

json_object *
kmmcp_result(json_object *id, json_object *result)
{
    json_object *o = envelope(id);

    json_object_object_add(o, "result", result ? result : json_object_new_object());
    return o;
}

json_object *
kmmcp_error(json_object *id, int code, const char *message, json_object *data)
{
    json_object *o = envelope(id);
    json_object *e = json_object_new_object();

    json_object_object_add(e, "code", json_object_new_int(code));
    json_object_object_add(e, "message", json_object_new_string(message));
    if (data)
        json_object_object_add(e, "data", data);
    json_object_object_add(o, "error", e);
    return o;
}

json_object *
kmmcp_notification(const char *method, json_object *params)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "method", json_object_new_string(method));
    if (params)
        json_object_object_add(o, "params", params);
    return o;
}

/* --- output ------------------------------------------------------------------------------ */

void
kmmcp_out_init(kmmcp_out *o, int fd)
{
    o->fd = fd;
    o->broken = 0;
    pthread_mutex_init(&o->mu, NULL);
}

void
kmmcp_out_destroy(kmmcp_out *o)
{
    pthread_mutex_destroy(&o->mu);
}

int
kmmcp_write(kmmcp_out *o, json_object *msg)
{
    /* json-c escapes control characters inside strings, so the text holds no newline */
    const char *text = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
                                                      JSON_C_TO_STRING_NOSLASHESCAPE);
    size_t      n = strlen(text);
    struct iovec iov[2];
    int          rc = 0;

    iov[0].iov_base = (void *)(uintptr_t)text;
    iov[0].iov_len = n;
    iov[1].iov_base = (void *)(uintptr_t)"\n";
    iov[1].iov_len = 1;
    pthread_mutex_lock(&o->mu);
    if (o->broken) {
        rc = -1;
        goto out;
    }
    while (iov[0].iov_len + iov[1].iov_len > 0) {
        ssize_t w = writev(o->fd, iov[0].iov_len ? iov : iov + 1, iov[0].iov_len ? 2 : 1);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            o->broken = 1;
            rc = -1;
            goto out;
        }
        if ((size_t)w >= iov[0].iov_len) {
            w -= (ssize_t)iov[0].iov_len;
            iov[0].iov_len = 0;
            iov[1].iov_base = (char *)iov[1].iov_base + w;
            iov[1].iov_len -= (size_t)w;
        } else {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= (size_t)w;
        }
    }
out:
    pthread_mutex_unlock(&o->mu);
    return rc;
}

int
kmmcp_out_broken(kmmcp_out *o)
{
    int b;

    pthread_mutex_lock(&o->mu);
    b = o->broken;
    pthread_mutex_unlock(&o->mu);
    return b;
}
