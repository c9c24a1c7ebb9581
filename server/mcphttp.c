/* mcphttp.c — the MCP Streamable HTTP endpoint's decisions (see mcphttp.h). */
#include "mcphttp.h"
#include "auth.h"
#include "json.h"
#include "jsonrpc.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct kmmcph {
    const kmcfg *cfg;
    kmstore     *store;
    json_object *tools;     /* the MCP tool list, built once from the registry */
};

kmmcph *
kmmcph_new(const kmcfg *cfg, kmstore *store)
{
    kmmcph      *ep = km_xcalloc(1, sizeof(*ep));
    json_object *listing = kmreg_list_json();

    ep->cfg = cfg;
    ep->store = store;
    ep->tools = kmproto_tools(kmjson_get(listing, "tools"));
    json_object_put(listing);
    return ep;
}

void
kmmcph_free(kmmcph *ep)
{
    if (!ep)
        return;
    json_object_put(ep->tools);
    free(ep);
}

void
kmmcph_out_clear(struct kmmcph_out *out)
{
    json_object_put(out->body);
    json_object_put(out->args);
    json_object_put(out->id);
    json_object_put(out->token);
    json_object_put(out->cancel_id);
    memset(out, 0, sizeof(*out));
}

char *
kmmcph_event(json_object *msg)
{
    return km_xasprintf("event: message\ndata: %s\n\n", kmjson_text(msg));
}

/* --- small helpers ---------------------------------------------------------------------- */

static void
answer(struct kmmcph_out *out, int status, json_object *body)
{
    out->status = status;
    json_object_put(out->body);
    out->body = body;
}

static void
fail(struct kmmcph_out *out, int status, json_object *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
fail(struct kmmcph_out *out, int status, json_object *id, int code, const char *fmt, ...)
{
    char    msg[400];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    answer(out, status, kmmcp_error(id, code, msg, NULL));
}

/* 1 when the n bytes at p name a loopback host: localhost, 127.0.0.1, [::1] (or ::1). */
static int
loopback_name(const char *p, size_t n)
{
    return (n == 9 && strncasecmp(p, "localhost", 9) == 0) ||
           (n == 9 && strncmp(p, "127.0.0.1", 9) == 0) ||
           (n == 5 && strncmp(p, "[::1]", 5) == 0) || (n == 3 && strncmp(p, "::1", 3) == 0);
}

/* 1 when the n bytes at p equal (case-insensitively) an entry of the comma list. */
static int
in_list(const char *list, const char *p, size_t n)
{
    while (list && *list) {
        const char *end = strchr(list, ',');
        const char *a = list, *b = end ? end : list + strlen(list);

        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if ((size_t)(b - a) == n && n > 0 && strncasecmp(a, p, n) == 0)
            return 1;
        list = end ? end + 1 : NULL;
    }
    return 0;
}

/* The host part of "host[:port]" or "[v6]:port". */
static size_t
host_part(const char *hp, size_t n)
{
    if (n > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', n);

        return close ? (size_t)(close - hp) + 1 : n;
    }
    for (size_t i = 0; i < n; i++)
        if (hp[i] == ':')
            return i;
    return n;
}

static int
host_ok(const kmcfg *cfg, const char *host)
{
    size_t n;

    if (!host || !*host)
        return 0;
    n = host_part(host, strlen(host));
    return loopback_name(host, n) || in_list(cfg->mcp_allowed_hosts, host, n);
}

static int
origin_ok(const kmcfg *cfg, const char *origin)
{
    const char *hp;
    size_t      n;

    if (!origin)
        return 1;           /* not a browser: nothing to rebind */
    if (in_list(cfg->mcp_allowed_origins, origin, strlen(origin)))
        return 1;
    if (strncasecmp(origin, "http://", 7) == 0)
        hp = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        hp = origin + 8;
    else
        return 0;           /* "null", or another scheme */
    n = strcspn(hp, "/?#");
    if (hp[n] && strcmp(hp + n, "/") != 0)
        return 0;
    return loopback_name(hp, host_part(hp, n));
}

static int
accepts(const char *accept, const char *type)
{
    return accept && strcasestr(accept, type) != NULL;
}

static int
is_json(const char *ct)
{
    size_t n;

    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    n = strcspn(ct, "; \t");
    return n == 16 && strncasecmp(ct, "application/json", 16) == 0;
}

/* The value of a header that may be in the "=?base64?...?=" form (new string), or NULL
 * when it is malformed. */
static char *
header_value(const char *v)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t   n = strlen(v), len, o = 0;
    char    *out;
    unsigned acc = 0;
    int      bits = 0;

    if (n < 11 || strncmp(v, "=?base64?", 9) != 0 || strcmp(v + n - 2, "?=") != 0)
        return km_xstrdup(v);
    len = n - 11;
    out = km_xcalloc(1, len + 1);
    for (size_t i = 0; i < len; i++) {
        char        c = v[9 + i];
        const char *at;

        if (c == '=')
            break;
        at = c ? strchr(alpha, c) : NULL;
        if (!at) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)(at - alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (memchr(out, '\0', o)) {
        free(out);
        return NULL;
    }
    return out;
}

/* --- methods ---------------------------------------------------------------------------- */

static void
do_request(kmmcph *ep, struct kmmcph_out *out, const struct kmmcp_msg *m, int stateless)
{
    const char *method = m->method;

    if (strcmp(method, "ping") == 0) {
        answer(out, 200, kmmcp_result(m->id, kmproto_finish(stateless,
                                                             json_object_new_object())));
    } else if (strcmp(method, "server/discover") == 0) {
        answer(out, 200, kmmcp_result(m->id, kmproto_discover_result(NULL)));
    } else if (strcmp(method, "tools/list") == 0) {
        json_object *bad = kmproto_check_list(m->id, m->params);

        if (bad)
            answer(out, 200, bad);
        else
            answer(out, 200, kmmcp_result(m->id, kmproto_list_result(
                                              stateless, kmjson_copy(ep->tools),
                                              KMPROTO_LIST_TTL_MS)));
    } else {
        struct kmproto_call  c;
        json_object         *bad = kmproto_check_call(m->id, m->params, &c);
        const struct kmtool *tool;

        if (bad) {
            answer(out, 200, bad);
            return;
        }
        tool = kmreg_find(c.name);
        if (!tool) {
            answer(out, 200, kmproto_unknown_tool(m->id, c.name));
            return;
        }
        out->status = 200;
        out->tool = tool;
        out->args = c.args ? kmjson_copy(c.args) : json_object_new_object();
        out->id = kmjson_copy(m->id);
        out->token = c.token ? kmjson_copy(c.token) : NULL;
        out->stateless = stateless;
    }
}

/* The status a gate refusal gets on HTTP. */
static int
gate_status(json_object *msg, int stateless_form)
{
    int code = (int)kmjson_num(kmjson_get(msg, "error"), "code", 0);

    if (code == KMMCP_METHOD_NOT_FOUND)
        return stateless_form ? 404 : 200;
    if (code == KMMCP_UNSUPPORTED_VERSION || code == KMMCP_INVALID_REQUEST)
        return 400;
    return 200;
}

static void
do_initialize(kmmcph *ep, struct kmmcph_out *out, const struct kmmcp_msg *m, const char *cred,
              size_t cred_len)
{
    json_object *bad;
    const char  *want, *chosen;
    kmerr        err = { 0 };

    bad = kmproto_check_initialize(m->id, m->params, &want);
    if (bad) {
        answer(out, 200, bad);
        return;
    }
    chosen = kmproto_choose(want);
    if (kmsess_new(ep->store, ep->cfg->mcp_max_sessions, ep->cfg->mcp_session_idle_s, chosen,
                   cred, cred_len, out->session, &err) != KM_OK) {
        fail(out, err.code == KM_RATE_LIMITED ? 503 : 500, m->id, KMMCP_INTERNAL_ERROR, "%s",
             err.msg);
        out->session[0] = '\0';
        kmerr_clear(&err);
        return;
    }
    kmlogf(KMLOG_INFO, "mcp_session", "a session started (protocol %s)", chosen);
    answer(out, 200, kmmcp_result(m->id, kmproto_initialize_result(chosen, NULL)));
}

/* A request in the stateless revision: its headers must mirror its body. */
static int
headers_match(const struct kmmcph_in *in, struct kmmcph_out *out, const struct kmmcp_msg *m,
              const char *body_version)
{
    char *name;
    int   ok;

    if (!in->version || strcmp(in->version, body_version) != 0) {
        fail(out, 400, m->id, KMPROTO_HEADER_MISMATCH, "Header mismatch: MCP-Protocol-Version "
             "must be sent and equal _meta[\"%s\"]", KMPROTO_META_VERSION);
        return 0;
    }
    if (!in->mcp_method || strcmp(in->mcp_method, m->method) != 0) {
        fail(out, 400, m->id, KMPROTO_HEADER_MISMATCH, "Header mismatch: Mcp-Method must be "
             "sent and equal the method");
        return 0;
    }
    if (strcmp(m->method, "tools/call") != 0)
        return 1;
    name = in->mcp_name ? header_value(in->mcp_name) : NULL;
    ok = name && kmjson_str(m->params, "name") && strcmp(name, kmjson_str(m->params, "name")) == 0;
    free(name);
    if (!ok)
        fail(out, 400, m->id, KMPROTO_HEADER_MISMATCH, "Header mismatch: Mcp-Name must be "
             "sent and equal params.name");
    return ok;
}

static void
do_post(kmmcph *ep, const struct kmmcph_in *in, struct kmmcph_out *out, const char *cred,
        size_t cred_len)
{
    json_object     *o = NULL, *bad, *pv;
    struct kmmcp_msg m;
    kmerr            err = { 0 };
    char             negotiated[16] = "";
    int              stateless = 0;

    if (!accepts(in->accept, "application/json") || !accepts(in->accept, "text/event-stream")) {
        fail(out, 406, NULL, KMMCP_INVALID_REQUEST, "Not Acceptable: Accept must list "
             "application/json and text/event-stream");
        return;
    }
    if (!is_json(in->content_type)) {
        fail(out, 415, NULL, KMMCP_INVALID_REQUEST, "Unsupported Media Type: send "
             "Content-Type: application/json");
        return;
    }
    if (in->body_len > (size_t)ep->cfg->max_body_bytes) {
        fail(out, 413, NULL, KMMCP_INVALID_REQUEST, "the body is %zu bytes; the limit is %d "
             "(REST_MAX_BODY_BYTES)", in->body_len, ep->cfg->max_body_bytes);
        return;
    }
    if (kmmcp_parse(in->body, in->body_len, &o, &err) != KM_OK) {
        fail(out, 400, NULL, KMMCP_PARSE_ERROR, "Parse error: %s", err.msg);
        kmerr_clear(&err);
        return;
    }
    if (json_object_is_type(o, json_type_array)) {
        fail(out, 400, NULL, KMMCP_INVALID_REQUEST, "JSON-RPC batches are not supported; send "
             "one message per POST");
        goto out;
    }
    kmmcp_classify(o, &m);
    if (m.kind == KMMCP_INVALID) {
        fail(out, 400, m.id, m.code, "%s", m.why);
        goto out;
    }
    if (m.kind == KMMCP_RESPONSE) {
        answer(out, 202, NULL);
        goto out;
    }
    if (m.kind == KMMCP_NOTIFICATION) {
        if (!m.code && strcmp(m.method, "notifications/cancelled") == 0 &&
            kmjson_get(m.params, "requestId")) {
            /* only within a session this credential may use: ids are per session */
            if (in->session && kmsess_use(ep->store, ep->cfg->mcp_session_idle_s,
                                          KMSESS_MAX_AGE_S, in->session, cred, cred_len,
                                          negotiated, sizeof(negotiated), &err) == KM_OK) {
                out->cancel_id = kmjson_copy(kmjson_get(m.params, "requestId"));
                km_strlcpy(out->cancel_scope, in->session, sizeof(out->cancel_scope));
            }
            kmerr_clear(&err);
        }
        answer(out, 202, NULL);
        goto out;
    }

    /* a request */
    if (strcmp(m.method, "initialize") == 0) {
        do_initialize(ep, out, &m, cred, cred_len);
        goto out;
    }
    pv = kmjson_path(m.params, "_meta", KMPROTO_META_VERSION, NULL);
    if (in->session) {
        if (kmsess_use(ep->store, ep->cfg->mcp_session_idle_s, KMSESS_MAX_AGE_S, in->session,
                       cred, cred_len, negotiated, sizeof(negotiated), &err) != KM_OK) {
            fail(out, 404, m.id, -32001, "Session not found: %s", err.msg);
            kmerr_clear(&err);
            goto out;
        }
        if (in->version && strcmp(in->version, negotiated) != 0 &&
            !(pv && kmproto_is_stateless(in->version))) {
            fail(out, 400, m.id, KMMCP_INVALID_REQUEST, "Bad Request: MCP-Protocol-Version %.20s "
                 "is not this session's protocol (%s)", in->version, negotiated);
            goto out;
        }
        km_strlcpy(out->scope, in->session, sizeof(out->scope));
    } else if (!pv) {
        if (in->version && kmproto_is_stateless(in->version))
            fail(out, 400, m.id, KMPROTO_HEADER_MISMATCH, "Header mismatch: "
                 "MCP-Protocol-Version is %s but params._meta[\"%s\"] is missing",
                 in->version, KMPROTO_META_VERSION);
        else
            fail(out, 400, m.id, KMMCP_INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is "
                 "required (send initialize first, or use protocol %s with params._meta)",
                 KMPROTO_STATELESS);
        goto out;
    }
    if (pv && !in->session && json_object_is_type(pv, json_type_string) &&
        !headers_match(in, out, &m, json_object_get_string(pv)))
        goto out;
    bad = kmproto_gate(m.id, m.method, m.params, negotiated, &stateless);
    if (bad) {
        answer(out, gate_status(bad, pv != NULL), bad);
        goto out;
    }
    do_request(ep, out, &m, stateless);
out:
    json_object_put(o);
}

void
kmmcph_handle(kmmcph *ep, const struct kmmcph_in *in, struct kmmcph_out *out)
{
    const char *cred = NULL;
    size_t      cred_len = 0;
    kmerr       err = { 0 };

    memset(out, 0, sizeof(*out));
    if ((!in->trusted && !host_ok(ep->cfg, in->host)) || !origin_ok(ep->cfg, in->origin)) {
        fail(out, 403, NULL, KMMCP_INVALID_REQUEST, "Forbidden: this Host or Origin is not "
             "allowed (MCP_ALLOWED_HOSTS, MCP_ALLOWED_ORIGINS)");
        return;
    }
    if (!in->trusted) {
        if (kmauth_check(ep->cfg->rest_tokens, ep->cfg->n_rest_tokens, in->authorization,
                         in->x_api_key, &err) != KM_OK) {
            fail(out, 401, NULL, KMMCP_INVALID_REQUEST, "Unauthorized: %s", err.msg);
            out->unauthorized = 1;
            kmerr_clear(&err);
            return;
        }
        cred = kmauth_presented(in->authorization, in->x_api_key, &cred_len);
    }
    if (strcmp(in->method, "POST") == 0) {
        do_post(ep, in, out, cred, cred_len);
    } else if (strcmp(in->method, "DELETE") == 0) {
        if (!in->session) {
            fail(out, 400, NULL, KMMCP_INVALID_REQUEST, "Bad Request: DELETE needs "
                 "Mcp-Session-Id");
        } else if (kmsess_end(ep->store, ep->cfg->mcp_session_idle_s, in->session, cred,
                              cred_len, &err) != KM_OK) {
            fail(out, 404, NULL, -32001, "Session not found");
            kmerr_clear(&err);
        } else {
            answer(out, 204, NULL);
        }
    } else {
        out->allow = "POST, DELETE";
        fail(out, 405, NULL, KMMCP_INVALID_REQUEST, "Method Not Allowed: POST JSON-RPC "
             "messages to /mcp (no standalone stream is offered)");
    }
}
