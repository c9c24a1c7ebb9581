/* simdoc.c — the simulator's reply helpers: Klaviyo error objects, query parameters, links,
 * cursor pagination, datetimes and sparse fieldsets. */
#include "json.h"
#include "simint.h"
#include "util.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- errors ------------------------------------------------------------------------------ */

void
sim_error(struct simreq *r, int status, const char *code, const char *title, const char *detail,
          const char *src_kind, const char *src_val)
{
    json_object *e = json_object_new_object();
    json_object *src = json_object_new_object();
    char         id[40];

    if (!r->errors) {
        r->errors = json_object_new_array();
        r->status = status;
    }
    /* several problems in one answer share one id, as Klaviyo's do */
    if (json_object_array_length(r->errors) > 0) {
        json_object *first = json_object_array_get_idx(r->errors, 0);
        km_strlcpy(id, kmjson_str(first, "id") ? kmjson_str(first, "id") : "", sizeof(id));
    } else {
        sim_uuid(r->sim, id);
    }
    json_object_object_add(e, "id", json_object_new_string(id));
    json_object_object_add(e, "status", json_object_new_int(status));
    json_object_object_add(e, "code", json_object_new_string(code));
    json_object_object_add(e, "title", json_object_new_string(title));
    json_object_object_add(e, "detail", json_object_new_string(detail));
    if (src_kind)
        json_object_object_add(src, src_kind, json_object_new_string(src_val ? src_val : ""));
    json_object_object_add(e, "source", src);
    json_object_object_add(e, "links", json_object_new_object());
    json_object_object_add(e, "meta", json_object_new_object());
    json_object_array_add(r->errors, e);
}

void
sim_invalid(struct simreq *r, const char *detail, const char *src_kind, const char *src_val)
{
    sim_error(r, 400, "invalid", "Invalid input.", detail, src_kind, src_val);
}

void
sim_not_found(struct simreq *r)
{
    sim_error(r, 404, "not_found", "Not found.", "A resource with the given id was not found.",
              NULL, NULL);
}

int
sim_failed(const struct simreq *r)
{
    return r->errors != NULL;
}

/* --- query parameters -------------------------------------------------------------------- */

const char *
sim_q(struct simreq *r, const char *key)
{
    return r->query_ok ? evhttp_find_header(&r->query, key) : NULL;
}

int
sim_q_allow(struct simreq *r, const char *const *allowed)
{
    struct evkeyval *kv;

    if (!r->query_ok)
        return 0;
    TAILQ_FOREACH(kv, &r->query, next) {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(kv->key, allowed[i]) == 0)
                ok = 1;
        }
        if (ok)
            continue;
        if (strcmp(kv->key, "include") == 0) {
            sim_invalid(r, "'include' is not supported by the Klaviyo simulator; fetch the "
                           "related resources with their own endpoints.",
                        "parameter", "include");
        } else {
            char detail[300];
            snprintf(detail, sizeof(detail), "'%.120s' is not a valid query parameter for "
                     "this endpoint.", kv->key);
            sim_invalid(r, detail, "parameter", kv->key);
        }
        return -1;
    }
    return 0;
}

/* --- links ----------------------------------------------------------------------------- */

char *
sim_url(struct simreq *r, const char *path)
{
    size_t n = strlen(path);

    return km_xasprintf("%s%s%s", r->sim->base_url, path, n && path[n - 1] == '/' ? "" : "/");
}

json_object *
sim_self_links(struct simreq *r, const char *path)
{
    json_object *o = json_object_new_object();
    char        *u = sim_url(r, path);

    json_object_object_add(o, "self", json_object_new_string(u));
    free(u);
    return o;
}

json_object *
sim_rel_links(struct simreq *r, const char *type_path, const char *id, const char *rel)
{
    json_object *o = json_object_new_object();
    char        *self = km_xasprintf("%s/%s/relationships/%s", type_path, id, rel);
    char        *related = km_xasprintf("%s/%s/%s", type_path, id, rel);
    char        *u1 = sim_url(r, self), *u2 = sim_url(r, related);

    json_object_object_add(o, "self", json_object_new_string(u1));
    json_object_object_add(o, "related", json_object_new_string(u2));
    free(self);
    free(related);
    free(u1);
    free(u2);
    return o;
}

/* --- cursors: base64url("next::<offset>::<check>") ------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
b64_encode(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in), o = 0;

    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
}

static int
b64_decode(const char *in, char *out, size_t cap)
{
    unsigned v = 0;
    int      bits = 0;
    size_t   o = 0;

    for (; *in; in++) {
        const char *p = strchr(b64, *in);
        if (!p || !*in)
            return -1;
        v = (v << 6) | (unsigned)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return -1;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return 0;
}

static unsigned
cursor_check(size_t offset)
{
    return (unsigned)(simdata_mix((uint64_t)offset ^ 0x5eedc0de5eedULL) & 0xfffff);
}

static void
cursor_make(const char *dir, size_t offset, char out[64])
{
    char plain[64];

    snprintf(plain, sizeof(plain), "%s::%zu::%05x", dir, offset, cursor_check(offset));
    b64_encode(plain, out, 64);
}

int
sim_page_start(struct simreq *r, size_t total, size_t *offset)
{
    const char *c = sim_q(r, "page[cursor]");
    char        plain[64], dir[8], extra;
    size_t      off;
    unsigned    chk;

    *offset = 0;
    if (!c)
        return 0;
    if (strlen(c) > 60 || b64_decode(c, plain, sizeof(plain)) != 0 ||
        sscanf(plain, "%4[a-z]::%zu::%x%c", dir, &off, &chk, &extra) != 3 ||
        (strcmp(dir, "next") != 0 && strcmp(dir, "prev") != 0) || chk != cursor_check(off) ||
        (off >= total && off != 0)) {
        sim_invalid(r, "Invalid cursor provided.", "parameter", "page[cursor]");
        return -1;
    }
    *offset = off;
    return 0;
}

/* this request's URL with every original query parameter except page[cursor], plus `cursor`
 * when given */
static char *
page_url(struct simreq *r, const char *cursor)
{
    struct evkeyval *kv;
    char            *path = km_xasprintf("%s%s", r->path, "/");
    char            *url = sim_url(r, path);
    size_t           cap = strlen(url) + 256, len = strlen(url);
    char            *out = km_xmalloc(cap);
    char             sep = '?';

    memcpy(out, url, len + 1);
    free(path);
    free(url);
    if (r->query_ok) {
        TAILQ_FOREACH(kv, &r->query, next) {
            char  *k, *v;
            size_t need;

            if (strcmp(kv->key, "page[cursor]") == 0)
                continue;
            k = evhttp_uriencode(kv->key, -1, 0);
            v = evhttp_uriencode(kv->value, -1, 0);
            need = len + strlen(k) + strlen(v) + 4;
            if (need > cap) {
                cap = need * 2;
                out = km_xrealloc(out, cap);
            }
            len += (size_t)snprintf(out + len, cap - len, "%c%s=%s", sep, k, v);
            sep = '&';
            free(k);
            free(v);
        }
    }
    if (cursor) {
        size_t need = len + strlen(cursor) + 20;
        if (need > cap) {
            cap = need;
            out = km_xrealloc(out, cap);
        }
        snprintf(out + len, cap - len, "%cpage%%5Bcursor%%5D=%s", sep, cursor);
    }
    return out;
}

json_object *
sim_page_links(struct simreq *r, size_t offset, size_t page, size_t total)
{
    json_object *o = json_object_new_object();
    const char  *cur = sim_q(r, "page[cursor]");
    char         c[64];
    char        *u;

    /* self is the page that was asked for, cursor included */
    u = page_url(r, cur);
    json_object_object_add(o, "self", json_object_new_string(u));
    free(u);
    if (offset + page < total) {
        cursor_make("next", offset + page, c);
        u = page_url(r, c);
        json_object_object_add(o, "next", json_object_new_string(u));
        free(u);
    } else {
        json_object_object_add(o, "next", NULL);
    }
    if (offset > 0) {
        cursor_make("prev", offset > page ? offset - page : 0, c);
        u = page_url(r, c);
        json_object_object_add(o, "prev", json_object_new_string(u));
        free(u);
    } else {
        json_object_object_add(o, "prev", NULL);
    }
    return o;
}

/* --- datetimes, ids, fields -------------------------------------------------------------- */

void
sim_time(int64_t unix_sec, char out[40])
{
    time_t    t = (time_t)unix_sec;
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

void
sim_time_us(int64_t unix_us, char out[40])
{
    time_t    t = (time_t)(unix_us / 1000000);
    struct tm tm;
    char      head[24];

    gmtime_r(&t, &tm);
    strftime(head, sizeof(head), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%06d+00:00", head, (int)(unix_us % 1000000));
}

void
sim_add_time(json_object *o, const char *key, int64_t unix_sec)
{
    char buf[40];

    if (unix_sec < 0) {
        json_object_object_add(o, key, NULL);
        return;
    }
    sim_time(unix_sec, buf);
    json_object_object_add(o, key, json_object_new_string(buf));
}

void
sim_uuid(struct sim *s, char out[40])
{
    uint64_t a = simdata_mix(++s->serial ^ 0xa11ce5eedULL ^ (uint64_t)s->epoch_ms);
    uint64_t b = simdata_mix(a ^ s->serial);

    snprintf(out, 40, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xfff,
             (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

int64_t
sim_now(void)
{
    return km_wall_ms() / 1000;
}

int
sim_fields(struct simreq *r, const char *type, const char *const *known, json_object *attrs)
{
    char        key[64];
    const char *want;
    char       *copy, *save = NULL;
    json_object *keep;
    int          rc = 0;

    snprintf(key, sizeof(key), "fields[%s]", type);
    want = sim_q(r, key);
    if (!want)
        return 0;
    keep = json_object_new_object();
    copy = km_xstrdup(want);
    for (char *f = strtok_r(copy, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        int ok = 0;
        for (size_t i = 0; known[i]; i++) {
            if (strcmp(known[i], f) == 0)
                ok = 1;
        }
        if (!ok) {
            char detail[200];
            snprintf(detail, sizeof(detail), "'%.60s' is not a valid field for the resource "
                     "'%s'.", f, type);
            sim_invalid(r, detail, "parameter", key);
            rc = -1;
            goto out;
        }
        if (attrs) {
            json_object *v = NULL;
            /* a dotted field keeps its top-level member */
            char *dot = strchr(f, '.');
            if (dot)
                *dot = '\0';
            if (json_object_object_get_ex(attrs, f, &v))
                json_object_object_add(keep, f, json_object_get(v));
        }
    }
    if (attrs) {
        /* replace the members of attrs with the kept ones */
        json_object_object_foreach(attrs, k, v) {
            (void)v;
            if (!json_object_object_get_ex(keep, k, NULL))
                json_object_object_del(attrs, k);
        }
    }
out:
    free(copy);
    json_object_put(keep);
    return rc;
}

/* --- request bodies ------------------------------------------------------------------------ */

json_object *
sim_attributes(struct simreq *r, const char *type, const char *const *known)
{
    json_object *data = kmjson_get(r->body, "data");
    json_object *at = kmjson_get(data, "attributes");
    const char  *t = kmjson_str(data, "type");
    char         detail[200];

    if (!data || !json_object_is_type(data, json_type_object)) {
        sim_invalid(r, "The request body must have a 'data' object.", "pointer", "/data");
        return NULL;
    }
    if (!t) {
        sim_invalid(r, "'type' is required.", "pointer", "/data/type");
        return NULL;
    }
    if (strcmp(t, type) != 0) {
        snprintf(detail, sizeof(detail), "The resource type '%.60s' does not match the "
                 "endpoint's type '%s'.", t, type);
        sim_error(r, 409, "conflict", "Conflict.", detail, "pointer", "/data/type");
        return NULL;
    }
    if (!at || !json_object_is_type(at, json_type_object)) {
        sim_invalid(r, "'attributes' is required.", "pointer", "/data/attributes");
        return NULL;
    }
    json_object_object_foreach(at, k, v) {
        int ok = 0;
        (void)v;
        for (size_t i = 0; known[i]; i++) {
            if (strcmp(known[i], k) == 0)
                ok = 1;
        }
        if (!ok) {
            char ptr[120];
            snprintf(detail, sizeof(detail), "'%.60s' is not a valid field for the resource "
                     "'%s'.", k, type);
            snprintf(ptr, sizeof(ptr), "/data/attributes/%.80s", k);
            sim_invalid(r, detail, "pointer", ptr);
        }
    }
    return sim_failed(r) ? NULL : at;
}

void
sim_required(struct simreq *r, const char *field)
{
    char ptr[120];

    snprintf(ptr, sizeof(ptr), "/data/attributes/%s", field);
    sim_invalid(r, "This field is required.", "pointer", ptr);
}

/* --- calendar ---------------------------------------------------------------------------- */

kmday
sim_add_year(kmday d)
{
    int y, m, dd, dim;

    kmdate_to_ymd(d, &y, &m, &dd);
    dim = kmdate_days_in_month(y + 1, m);
    return kmdate_from_ymd(y + 1, m, dd > dim ? dim : dd);
}
