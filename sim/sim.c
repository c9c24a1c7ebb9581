/* sim.c — the simulator's server: one evhttp callback that counts, injects faults, routes,
 * authenticates, checks the revision, the scope and the rate limits (simlimit.c), then runs the
 * handler and sends exactly one reply (or drops the connection when a fault says so); /__sim/
 * goes to the control endpoints (simctl.c). */
#include "json.h"
#include "log.h"
#include "simfilter.h"
#include "simint.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BODY (5 * 1024 * 1024)
#define MAX_STAT_KEYS 400

static const struct simroute routes[] = {
    { "GET", "/api/accounts", "accounts:read", SIMT_XS, simapi_accounts },
    { "GET", "/api/campaigns", "campaigns:read", SIMT_M, simapi_campaigns },
    { "GET", "/api/campaigns/{id}", "campaigns:read", SIMT_M, simapi_campaign },
    { "POST", "/api/campaign-values-reports", "campaigns:read", SIMT_REPORT,
      simreport_campaign_values },
    { "GET", "/api/flows", "flows:read", SIMT_S, simapi_flows },
    { "GET", "/api/flows/{id}", "flows:read", SIMT_S, simapi_flow },
    { "GET", "/api/flows/{id}/flow-actions", "flows:read", SIMT_S, simapi_flow_actions },
    { "GET", "/api/flow-actions/{id}", "flows:read", SIMT_S, simapi_flow_action },
    { "GET", "/api/flow-actions/{id}/flow-messages", "flows:read", SIMT_S,
      simapi_action_messages },
    { "GET", "/api/flow-messages/{id}", "flows:read", SIMT_S, simapi_flow_message },
    { "POST", "/api/flow-values-reports", "flows:read", SIMT_REPORT, simreport_flow_values },
    { "POST", "/api/flow-series-reports", "flows:read", SIMT_REPORT, simreport_flow_series },
    { "GET", "/api/lists", "lists:read", SIMT_L, simapi_lists },
    { "GET", "/api/lists/{id}", "lists:read", SIMT_L, simapi_list },
    { "GET", "/api/metrics", "metrics:read", SIMT_M, simapi_metrics },
    { "GET", "/api/metrics/{id}", "metrics:read", SIMT_M, simapi_metric },
    { "POST", "/api/metric-aggregates", "metrics:read", SIMT_S, simagg_metric_aggregates },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* revisions this simulator answers (with the 2025-04-15 shapes) */
static const char *const revisions[] = { "2024-10-15", "2025-01-15", "2025-04-15", "2025-07-15",
                                         "2025-10-15", NULL };

/* the limited key's scopes */
static const char *const limited_scopes[] = { "campaigns:read", "accounts:read", NULL };

/* --- small things ---------------------------------------------------------------------- */

void
sim_count(json_object *map, const char *key)
{
    json_object *v = NULL;

    if (json_object_object_get_ex(map, key, &v))
        json_object_set_int64(v, json_object_get_int64(v) + 1);
    else
        json_object_object_add(map, key, json_object_new_int64(1));
}

const char *
sim_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

static const char *
method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* --- requests ----------------------------------------------------------------------------- */

static void
req_free(struct simreq *r)
{
    if (!r)
        return;
    if (r->query_ok)
        evhttp_clear_headers(&r->query);
    if (r->timer)
        event_free(r->timer);
    json_object_put(r->body);
    json_object_put(r->errors);
    json_object_put(r->doc);
    free(r);
}

/* Split the decoded path into segments; 0 on success. */
static int
split_path(struct simreq *r)
{
    char *save = NULL;

    km_strlcpy(r->segbuf, r->path, sizeof(r->segbuf));
    r->nseg = 0;
    for (char *p = strtok_r(r->segbuf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
        if (r->nseg == SIM_MAX_SEGS)
            return -1;
        r->seg[r->nseg++] = p;
    }
    return 0;
}

/* The route whose template matches the path, and whether the method matches too. */
static const struct simroute *
match_route(struct simreq *r, int *method_ok)
{
    const struct simroute *any = NULL;

    *method_ok = 0;
    for (size_t i = 0; i < N_ROUTES; i++) {
        char  tmpl[128], *save = NULL;
        int   n = 0, ok = 1;

        km_strlcpy(tmpl, routes[i].tmpl, sizeof(tmpl));
        for (char *t = strtok_r(tmpl, "/", &save); t; t = strtok_r(NULL, "/", &save), n++) {
            if (n >= r->nseg || (strcmp(t, "{id}") != 0 && strcmp(t, r->seg[n]) != 0)) {
                ok = 0;
                break;
            }
        }
        if (!ok || n != r->nseg)
            continue;
        if (strcmp(routes[i].method, r->method) == 0) {
            *method_ok = 1;
            return &routes[i];
        }
        if (!any)
            any = &routes[i];
    }
    return any;
}

/* --- auth, revision, scope, content type ----------------------------------------------- */

static int
check_auth(struct simreq *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req),
                                       "Authorization");
    const char *scheme = "Klaviyo-API-Key ";
    size_t      sl = strlen(scheme);

    if (h && strncasecmp(h, scheme, sl) == 0) {
        const char *k = h + sl;
        while (*k == ' ')
            k++;
        r->acct = simdata_account_by_key(r->sim->sd, k, &r->limited_key);
    }
    if (r->acct)
        return 0;
    sim_error(r, 401, "not_authenticated", "Authentication credentials were not provided.",
              "Missing or invalid private key.", "pointer", "/data/");
    return -1;
}

static int
check_revision(struct simreq *r)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(r->req), "revision");
    struct simfval v;
    char           detail[200];

    if (!h || !*h) {
        sim_invalid(r, "The revision header is required; send a supported API revision such as "
                       "'revision: 2025-04-15'.",
                    "parameter", "revision");
        return -1;
    }
    for (size_t i = 0; revisions[i]; i++) {
        if (strcmp(h, revisions[i]) == 0) {
            km_strlcpy(r->revision, h, sizeof(r->revision));
            return 0;
        }
    }
    if (strlen(h) != 10 || simfilter_datetime(h, &v) != 0) {
        snprintf(detail, sizeof(detail), "'%.40s' is not a valid revision; use a date such as "
                 "2025-04-15.", h);
        sim_invalid(r, detail, "parameter", "revision");
        return -1;
    }
    sim_error(r, 404, "not_found", "Not found.", "No valid revisions found for method", "parameter",
              "revision");
    return -1;
}

static int
check_scope(struct simreq *r)
{
    char detail[200];

    if (!r->limited_key)
        return 0;
    for (size_t i = 0; limited_scopes[i]; i++) {
        if (strcmp(limited_scopes[i], r->route->scope) == 0)
            return 0;
    }
    snprintf(detail, sizeof(detail), "This API key does not have the scope required for this "
             "endpoint: %s.", r->route->scope);
    sim_error(r, 403, "permission_denied", "You do not have permission to perform this action.",
              detail, "pointer", "/data/");
    return -1;
}

static int
read_body(struct simreq *r)
{
    const char      *ct = evhttp_find_header(evhttp_request_get_input_headers(r->req),
                                             "Content-Type");
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t           len = evbuffer_get_length(in);
    const char      *text;
    kmerr            err = { 0 };
    char             detail[400];

    if (!ct || (strncasecmp(ct, "application/vnd.api+json", 24) != 0 &&
                strncasecmp(ct, "application/json", 16) != 0)) {
        sim_error(r, 415, "unsupported_media_type", "Unsupported media type.",
                  "Unsupported media type in request; use 'application/vnd.api+json'.",
                  "parameter", "Content-Type");
        return -1;
    }
    text = len ? (const char *)evbuffer_pullup(in, -1) : "";
    if (kmjson_parse(text, len, KM_INVALID_ARGUMENT, &r->body, &err) != KM_OK ||
        !json_object_is_type(r->body, json_type_object)) {
        snprintf(detail, sizeof(detail), "The request body is not a JSON object: %s",
                 err.code ? err.msg : "expected an object");
        sim_invalid(r, detail, "pointer", "/data/");
        kmerr_clear(&err);
        return -1;
    }
    return 0;
}

/* --- replying ---------------------------------------------------------------------------- */

static void
log_request(struct simreq *r, int status)
{
    json_object *f;

    if (!kmlog_enabled(KMLOG_INFO))
        return;
    f = json_object_new_object();
    json_object_object_add(f, "method", json_object_new_string(r->method));
    json_object_object_add(f, "path", json_object_new_string(r->raw_path));
    json_object_object_add(f, "status", json_object_new_int(status));
    if (r->acct)
        json_object_object_add(f, "account", json_object_new_string(r->acct->name));
    if (r->faulted)
        json_object_object_add(f, "fault", json_object_new_boolean(1));
    kmlog(KMLOG_INFO, "request", f);
}

/* Send the one reply for r and free it. `truncate` cuts the body in half (a fault). */
static void
finish(struct simreq *r, int truncate)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(r->req);
    struct evbuffer  *buf = evbuffer_new();
    json_object      *doc = r->errors ? json_object_new_object() : json_object_get(r->doc);
    int               status = r->errors ? r->status : (r->status ? r->status : 200);
    const char       *text;
    size_t            len;
    char              num[32];

    if (r->errors)
        json_object_object_add(doc, "errors", json_object_get(r->errors));
    text = doc ? json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE)
               : "";
    len = strlen(text);
    if (truncate) {
        status = 200;
        len /= 2;
    }
    evbuffer_add(buf, text, len);
    evhttp_add_header(out, "Content-Type", "application/vnd.api+json");
    if (r->revision[0])
        evhttp_add_header(out, "X-Klaviyo-API-Revision", r->revision);
    if (status == 429) {
        snprintf(num, sizeof(num), "%d", r->retry_after > 0 ? r->retry_after : 1);
        evhttp_add_header(out, "Retry-After", num);
    } else if (r->rl_policy[0]) {
        char lim[128];
        snprintf(lim, sizeof(lim), "%d, %s", r->rl_limit, r->rl_policy);
        evhttp_add_header(out, "RateLimit-Limit", lim);
        snprintf(num, sizeof(num), "%d", r->rl_remaining);
        evhttp_add_header(out, "RateLimit-Remaining", num);
        snprintf(num, sizeof(num), "%d", r->rl_reset);
        evhttp_add_header(out, "RateLimit-Reset", num);
    }
    log_request(r, status);
    evhttp_send_reply(r->req, status, sim_reason(status), buf);
    evbuffer_free(buf);
    json_object_put(doc);
    req_free(r);
}

/* Everything after faults: route, auth, revision, scope, limits, body, handler. */
static void
process(struct simreq *r)
{
    int  method_ok = 0;
    char detail[700];

    r->route = match_route(r, &method_ok);
    if (!r->route) {
        snprintf(detail, sizeof(detail), "The path %.600s could not be found", r->raw_path);
        sim_error(r, 404, "not_found", "Not found.", detail, NULL, NULL);
        return;
    }
    if (!method_ok) {
        snprintf(detail, sizeof(detail), "Method \"%s\" not allowed.", r->method);
        sim_error(r, 405, "method_not_allowed", "Method not allowed.", detail, NULL, NULL);
        r->route = NULL;
        return;
    }
    if (check_auth(r) != 0 || check_revision(r) != 0 || check_scope(r) != 0 ||
        simlimit_check(r, (size_t)(r->route - routes)) != 0)
        return;
    if (strcmp(r->method, "POST") == 0 && read_body(r) != 0)
        return;
    r->route->fn(r);
    if (!r->errors && !r->doc)
        sim_error(r, 500, "error", "A server error occurred.", "The handler gave no answer.",
                  NULL, NULL);
}

/* --- faults ------------------------------------------------------------------------------ */

static int
take_fault(struct sim *s, struct simreq *r)
{
    for (size_t i = 0; i < s->n_faults; i++) {
        struct simfault *f = &s->faults[i];
        if (f->count <= 0)
            continue;
        if (f->method[0] && strcasecmp(f->method, r->method) != 0)
            continue;
        if (strncmp(r->raw_path, f->path, strlen(f->path)) != 0)
            continue;
        r->fault = *f;
        r->faulted = 1;
        f->count--;
        s->faults_fired++;
        if (f->count == 0) {
            memmove(f, f + 1, (s->n_faults - i - 1) * sizeof(*f));
            s->n_faults--;
        }
        return 1;
    }
    return 0;
}

static void
status_fault(struct simreq *r)
{
    int  st = r->fault.status;
    char detail[160];

    if (st == 429) {
        r->retry_after = r->fault.retry_after > 0 ? r->fault.retry_after : 1;
        snprintf(detail, sizeof(detail),
                 "Request was throttled. Expected available in %d second%s.", r->retry_after,
                 r->retry_after == 1 ? "" : "s");
        sim_error(r, 429, "throttled", "Request was throttled.", detail, "pointer", "/data");
        return;
    }
    if (r->fault.retry_after > 0) {
        char num[16];
        snprintf(num, sizeof(num), "%d", r->fault.retry_after);
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", num);
    }
    if (st >= 500)
        sim_error(r, st, st == 503 ? "service_unavailable" : "error",
                  st == 503 ? "Service unavailable." : "A server error occurred.",
                  "Injected by the simulator's fault control.", NULL, NULL);
    else
        sim_error(r, st, "error", "Request failed.", "Injected by the simulator's fault control.",
                  NULL, NULL);
}

/* Requests held by a timer are listed, so shutting down can release them. */
static void
hold(struct simreq *r)
{
    struct sim *s = r->sim;

    r->wprev = NULL;
    r->wnext = s->waiting;
    if (s->waiting)
        s->waiting->wprev = r;
    s->waiting = r;
}

static void
unhold(struct simreq *r)
{
    if (r->wprev)
        r->wprev->wnext = r->wnext;
    else
        r->sim->waiting = r->wnext;
    if (r->wnext)
        r->wnext->wprev = r->wprev;
    r->wprev = r->wnext = NULL;
}

static void
drop_cb(evutil_socket_t fd, short what, void *arg)
{
    struct simreq            *r = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);

    (void)fd;
    (void)what;
    unhold(r);
    log_request(r, 0);
    if (evcon) {
        /* frees the pending request with the connection: answer nothing */
        evhttp_connection_free(evcon);
    } else {
        /* the client left first: the request is ours; a reply on it only frees it */
        evhttp_send_reply(r->req, 500, "Dropped", NULL);
    }
    req_free(r);
}

static void
delay_cb(evutil_socket_t fd, short what, void *arg)
{
    struct simreq *r = arg;

    (void)fd;
    (void)what;
    unhold(r);
    process(r);
    finish(r, 0);
}

static void
apply_fault(struct simreq *r)
{
    struct timeval tv = { 0, 0 };

    switch (r->fault.mode) {
    case SIMF_STATUS:
        status_fault(r);
        finish(r, 0);
        return;
    case SIMF_MALFORMED: {
        struct evbuffer *buf = evbuffer_new();
        const char      *junk = "<html><body>upstream hiccup: this is not JSON {\"data\":";
        evbuffer_add(buf, junk, strlen(junk));
        evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type",
                          "application/vnd.api+json");
        log_request(r, 200);
        evhttp_send_reply(r->req, 200, "OK", buf);
        evbuffer_free(buf);
        req_free(r);
        return;
    }
    case SIMF_TRUNCATED:
        process(r);
        finish(r, 1);
        return;
    case SIMF_DELAY:
        tv.tv_sec = r->fault.delay_ms / 1000;
        tv.tv_usec = (r->fault.delay_ms % 1000) * 1000;
        r->timer = evtimer_new(r->sim->base, delay_cb, r);
        evtimer_add(r->timer, &tv);
        hold(r);
        return;
    case SIMF_DROP:
        r->timer = evtimer_new(r->sim->base, drop_cb, r);
        evtimer_add(r->timer, &tv);
        hold(r);
        return;
    }
}

/* --- the callback ------------------------------------------------------------------------- */

static void
count_call(struct simreq *r)
{
    struct sim *s = r->sim;
    int         ok;
    const struct simroute *rt = match_route(r, &ok);
    char        key[600];

    if (rt)
        snprintf(key, sizeof(key), "%s %s", r->method, rt->tmpl);
    else if (json_object_object_length(s->calls) < MAX_STAT_KEYS)
        snprintf(key, sizeof(key), "%s %.500s", r->method, r->raw_path);
    else
        snprintf(key, sizeof(key), "%s (other)", r->method);
    sim_count(s->calls, key);
    s->total_calls++;
}

/* evhttp decodes query values but not keys: "page%5Bsize%5D" must read "page[size]" */
static void
decode_keys(struct evkeyvalq *q)
{
    struct evkeyval *kv;

    TAILQ_FOREACH(kv, q, next) {
        char *k = evhttp_uridecode(kv->key, 0, NULL);
        if (k) {
            free(kv->key);
            kv->key = k;
        }
    }
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct sim            *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char            *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    const char            *q = uri ? evhttp_uri_get_query(uri) : NULL;
    const char            *method = method_name(evhttp_request_get_command(req));
    struct simreq         *r;
    char                  *dec;
    size_t                 n;

    if (!raw || !*raw)
        raw = "/";
    if (strncmp(raw, "/__sim/", 7) == 0) {
        char p[64];
        km_strlcpy(p, raw, sizeof(p));
        n = strlen(p);
        if (n > 7 && p[n - 1] == '/')
            p[n - 1] = '\0';
        simctl_handle(s, req, method, p);
        return;
    }
    r = km_xcalloc(1, sizeof(*r));
    r->sim = s;
    r->req = req;
    km_strlcpy(r->method, method, sizeof(r->method));
    km_strlcpy(r->raw_path, raw, sizeof(r->raw_path));
    dec = evhttp_uridecode(raw, 0, &n);
    km_strlcpy(r->path, dec ? dec : raw, sizeof(r->path));
    free(dec);
    n = strlen(r->path);
    while (n > 1 && r->path[n - 1] == '/')
        r->path[--n] = '\0';
    TAILQ_INIT(&r->query);
    r->query_ok = evhttp_parse_query_str(q ? q : "", &r->query) == 0;
    if (!r->query_ok)
        evhttp_clear_headers(&r->query);
    else
        decode_keys(&r->query);
    if (split_path(r) != 0)
        r->nseg = 0;
    if (strncmp(raw, "/api/", 5) == 0 || strcmp(raw, "/api") == 0)
        count_call(r);
    if (take_fault(s, r)) {
        apply_fault(r);
        return;
    }
    if (!r->query_ok)
        sim_invalid(r, "The query string could not be parsed.", NULL, NULL);
    else
        process(r);
    finish(r, 0);
}

/* --- lifecycle --------------------------------------------------------------------------- */

sim *
sim_new(struct event_base *base, const struct simopts *opts)
{
    sim                       *s = km_xcalloc(1, sizeof(*s));
    struct evhttp_bound_socket *h;
    struct sockaddr_storage    ss;
    socklen_t                  sl = sizeof(ss);

    s->base = base;
    s->opts = *opts;
    if (!s->opts.host)
        s->opts.host = "127.0.0.1";
    if (s->opts.time_scale <= 0 || s->opts.time_scale > 1)
        s->opts.time_scale = 1.0;
    s->epoch_ms = km_now_ms() - 1;
    s->sd = simdata_new(s->opts.seed);
    s->n_routes = N_ROUTES;
    s->buckets = km_xcalloc(simdata_account_count(s->sd) * (N_ROUTES + 1), sizeof(*s->buckets));
    s->calls = json_object_new_object();
    s->throttled = json_object_new_object();
    s->http = evhttp_new(base);
    if (!s->http)
        goto fail;
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_max_body_size(s->http, MAX_BODY);
    evhttp_set_gencb(s->http, on_request, s);
    h = evhttp_bind_socket_with_handle(s->http, s->opts.host, (ev_uint16_t)s->opts.port);
    if (!h) {
        fprintf(stderr, "klaviyo-sim: cannot listen on %s:%d: %s\n", s->opts.host,
                s->opts.port, strerror(errno));
        goto fail;
    }
    if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) != 0)
        goto fail;
    if (ss.ss_family == AF_INET)
        s->opts.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        s->opts.port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    snprintf(s->base_url, sizeof(s->base_url), "http://%s:%d", s->opts.host, s->opts.port);
    return s;
fail:
    sim_free(s);
    return NULL;
}

void
sim_free(sim *s)
{
    if (!s)
        return;
    if (s->sigterm)
        event_free(s->sigterm);
    if (s->sigint)
        event_free(s->sigint);
    /* requests still held by a fault: one whose client left is ours to free; the others go
     * with their connections in evhttp_free */
    while (s->waiting) {
        struct simreq *r = s->waiting;
        unhold(r);
        if (!evhttp_request_get_connection(r->req))
            evhttp_request_free(r->req);
        req_free(r);
    }
    if (s->http)
        evhttp_free(s->http);
    simdata_free(s->sd);
    free(s->buckets);
    json_object_put(s->calls);
    json_object_put(s->throttled);
    free(s);
}

int
sim_port(const sim *s)
{
    return s->opts.port;
}

const char *
sim_base_url(const sim *s)
{
    return s->base_url;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
    sim *s = arg;

    (void)sig;
    (void)what;
    event_base_loopexit(s->base, NULL);
}

int
sim_handle_signals(sim *s)
{
    s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_signal, s);
    if (!s->sigterm || !s->sigint || evsignal_add(s->sigterm, NULL) != 0 ||
        evsignal_add(s->sigint, NULL) != 0)
        return -1;
    return 0;
}

/* Write `text` to dir/name through dir/.name.tmp and rename(2). */
static int
write_atomic(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *tmp = km_xasprintf("%s/.%s.tmp", dir, name);
    char *dst = km_xasprintf("%s/%s", dir, name);
    FILE *f = NULL;
    int   rc = -1, fd;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    if (fd < 0)
        goto out;
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        goto out;
    }
    if (fchmod(fd, mode) != 0 || fputs(text, f) < 0)
        goto out;
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    if (rename(tmp, dst) != 0)
        goto out;
    rc = 0;
out:
    if (f)
        fclose(f);
    if (rc != 0) {
        fprintf(stderr, "klaviyo-sim: cannot write %s: %s\n", dst, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(dst);
    return rc;
}

static void
env_name(const char *acct, char out[64])
{
    size_t n = 0;

    n += (size_t)snprintf(out, 64, "KLAVIYO_");
    for (const char *p = acct; *p && n < 56; p++)
        out[n++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : (*p == '-' ? '_' : *p));
    snprintf(out + n, 64 - n, "_KEY");
}

int
sim_write_config(const sim *s, const char *dir)
{
    char  *toml = km_xasprintf("# Demo accounts served by the Klaviyo simulator "
                               "(sim), seed %llu.\n"
                               "# Generated by klaviyo-sim --write-config; the keys are in .env "
                               "beside this file.\n",
                               (unsigned long long)s->opts.seed);
    char  *env = km_xstrdup("# Keys of the Klaviyo simulator's demo accounts (not real keys).\n");
    int    rc;

    for (size_t i = 0; i < simdata_account_count(s->sd); i++) {
        const struct simacct *a = simdata_account(s->sd, i);
        char                  var[64], *t;

        env_name(a->name, var);
        t = km_xasprintf("%s\n[%s]\napi_key_env = \"%s\"\nconversion_metric_id = \"%s\"\n"
                         "label = \"%s (demo)\"\n",
                         toml, a->name, var, a->metrics[a->conversion_metric].id, a->label);
        free(toml);
        toml = t;
        t = km_xasprintf("%s%s=%s\n", env, var, a->key);
        free(env);
        env = t;
    }
    rc = write_atomic(dir, "accounts.toml", toml, 0644);
    if (rc == 0)
        rc = write_atomic(dir, ".env", env, 0600);
    free(toml);
    free(env);
    return rc;
}
