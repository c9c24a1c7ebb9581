/* forward.c — HTTP to klaviyo-restd over its Unix socket. */
#include "forward.h"
#include "shape.h"
#include "buf.h"
#include "json.h"
#include "util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECT_TIMEOUT_MS 2000L
#define POLL_MS            1000

int
kmmcp_tool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;

    return n > 0 && n <= 64 && strspn(name, "abcdefghijklmnopqrstuvwxyz_") == n;
}

/* Options every request to the service shares. */
static void
common_opts(CURL *h, const char *sock, const char *url, long timeout_ms)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    if (timeout_ms > 0)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    /* the socket is the service's, never a proxy's */
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_USERAGENT, "klaviyo-mcp");
}

static size_t
collect(char *p, size_t size, size_t nmemb, void *arg)
{
    kmbuf *b = arg;
    size_t n = size * nmemb;

    if (kmbuf_append(b, p, n) != 0)
        return 0;     /* over the cap: CURLE_WRITE_ERROR */
    return n;
}

/* The error for a transfer that failed with `cc` (not cancelled). */
static kmcode
transfer_error(CURL *h, CURLcode cc, const char *sock, long timeout_ms, kmerr *err)
{
    curl_off_t connected = 0;

    curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "nothing accepts connections on %s",
                         sock);
    case CURLE_OPERATION_TIMEDOUT:
        if (connected == 0)
            return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "connecting to %s timed out", sock);
        return kmerr_set(err, KM_UPSTREAM_TIMEOUT,
                         "klaviyo-restd did not finish the call within %ld s (the shim's "
                         "bound: REQUEST_DEADLINE_SECONDS + 30 s)", timeout_ms / 1000);
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
        return kmerr_set(err, KM_UPSTREAM_ERROR, KMMCP_SERVICE_STOPPED);
    case CURLE_WRITE_ERROR:
        return kmerr_set(err, KM_UPSTREAM_ERROR,
                         "klaviyo-restd sent an answer larger than %u bytes",
                         KMMCP_MAX_RESPONSE);
    default:
        return kmerr_set(err, KM_UPSTREAM_ERROR, "talking to klaviyo-restd failed: %s",
                         curl_easy_strerror(cc));
    }
}

/* GET `path`; on KM_OK *status is the HTTP status and *body the parsed body (or NULL when it
 * is not JSON). */
static kmcode
http_get(const char *sock, const char *path, long timeout_ms, long *status, json_object **body,
         kmerr *err)
{
    CURL    *h = curl_easy_init();
    kmbuf    b;
    char     url[128];
    CURLcode cc;
    kmcode   rc = KM_OK;

    *status = 0;
    *body = NULL;
    kmbuf_init(&b, KMMCP_MAX_RESPONSE);
    if (!h)
        return kmerr_set(err, KM_INTERNAL_ERROR, "curl_easy_init failed");
    snprintf(url, sizeof(url), "http://localhost%s", path);
    common_opts(h, sock, url, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        rc = transfer_error(h, cc, sock, timeout_ms, err);
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (b.len > 0)
        kmjson_parse(b.data, b.len, KM_UPSTREAM_ERROR, body, NULL);
out:
    kmbuf_free(&b);
    curl_easy_cleanup(h);
    return rc;
}

kmcode
kmmcp_health(const char *sock, long timeout_ms, kmerr *err)
{
    long         status;
    json_object *body;
    kmcode       rc = http_get(sock, "/health", timeout_ms, &status, &body, err);

    if (rc != KM_OK)
        return rc;
    json_object_put(body);
    if (status != 200)
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE,
                         "klaviyo-restd on %s is not serving (GET /health answered %ld)", sock,
                         status);
    return KM_OK;
}

kmcode
kmmcp_fetch_tools(const char *sock, long timeout_ms, json_object **tools, kmerr *err)
{
    long         status;
    json_object *body, *list;
    kmcode       rc = http_get(sock, "/v1/tools", timeout_ms, &status, &body, err);

    *tools = NULL;
    if (rc != KM_OK)
        return rc;
    list = kmjson_get(body, "tools");
    if (status != 200 || !list || !json_object_is_type(list, json_type_array)) {
        json_object_put(body);
        return kmerr_set(err, KM_UPSTREAM_ERROR,
                         "GET /v1/tools on %s answered %ld without a tool list", sock, status);
    }
    *tools = json_object_get(list);
    json_object_put(body);
    return KM_OK;
}

/* --- tool calls -------------------------------------------------------------------------- */

struct kmmcp_call {
    char               sock[256];
    char               url[128];
    char              *body;
    int                stream;
    long               timeout_ms;
    kmmcp_progress_fn *fn;
    void              *arg;

    pthread_mutex_t    mu;        /* guards multi and cancelled */
    CURLM             *multi;     /* set while the transfer runs */
    int                cancelled;
    int                ran;

    /* the answer */
    CURL              *easy;
    kmbuf              resp;
    int                typed;     /* the content type has been looked at */
    int                ndjson;
    int                final_status;
    json_object       *final;
    kmerr              bad;       /* a line the service sent made no sense */
};

kmmcp_call *
kmmcp_call_new(const char *sock, const char *name, json_object *args, int stream,
               long timeout_ms, kmmcp_progress_fn *fn, void *arg)
{
    kmmcp_call *c = km_xcalloc(1, sizeof(*c));

    km_strlcpy(c->sock, sock, sizeof(c->sock));
    snprintf(c->url, sizeof(c->url), "http://localhost/v1/tools/%s",
             kmmcp_tool_name_ok(name) ? name : "");
    c->body = km_xstrdup(args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN |
                                                               JSON_C_TO_STRING_NOSLASHESCAPE)
                              : "{}");
    c->stream = stream;
    c->timeout_ms = timeout_ms;
    c->fn = fn;
    c->arg = arg;
    pthread_mutex_init(&c->mu, NULL);
    kmbuf_init(&c->resp, KMMCP_MAX_RESPONSE);
    return c;
}

void
kmmcp_call_free(kmmcp_call *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    kmbuf_free(&c->resp);
    json_object_put(c->final);
    kmerr_clear(&c->bad);
    free(c->body);
    free(c);
}

void
kmmcp_call_cancel(kmmcp_call *c)
{
    pthread_mutex_lock(&c->mu);
    c->cancelled = 1;
    if (c->multi)
        curl_multi_wakeup(c->multi);
    pthread_mutex_unlock(&c->mu);
}

static int
is_cancelled(kmmcp_call *c)
{
    int v;

    pthread_mutex_lock(&c->mu);
    v = c->cancelled;
    pthread_mutex_unlock(&c->mu);
    return v;
}

/* One NDJSON line from the service. Returns 0, or -1 to stop the transfer. */
static int
stream_line(kmmcp_call *c, const char *line, size_t len)
{
    json_object *o = NULL, *p;
    kmerr        e = { 0 };

    if (len == 0)
        return 0;
    if (c->final) {
        kmerr_set(&c->bad, KM_UPSTREAM_ERROR, "klaviyo-restd sent data after the result line");
        return -1;
    }
    if (kmjson_parse(line, len, KM_UPSTREAM_ERROR, &o, &e) != KM_OK ||
        !json_object_is_type(o, json_type_object)) {
        kmerr_set(&c->bad, KM_UPSTREAM_ERROR, "klaviyo-restd sent a line that is not a JSON "
                  "object (%s)", e.code ? e.msg : "wrong type");
        kmerr_clear(&e);
        json_object_put(o);
        return -1;
    }
    p = kmjson_get(o, "progress");
    if (p) {
        if (c->fn && !is_cancelled(c))
            c->fn(c->arg, (long)kmjson_num(p, "done", 0), (long)kmjson_num(p, "total", 0),
                  json_object_get_boolean(kmjson_get(p, "waiting")));
        json_object_put(o);
        return 0;
    }
    if (kmjson_get(o, "result") && json_object_is_type(kmjson_get(o, "status"), json_type_int)) {
        c->final_status = json_object_get_int(kmjson_get(o, "status"));
        c->final = json_object_get(kmjson_get(o, "result"));
        json_object_put(o);
        return 0;
    }
    json_object_put(o);
    kmerr_set(&c->bad, KM_UPSTREAM_ERROR, "klaviyo-restd sent a line that is neither progress "
              "nor a result");
    return -1;
}

static size_t
on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    kmmcp_call *c = arg;
    size_t      n = size * nmemb, start = 0;
    char       *nl;

    if (!c->typed) {
        char *ct = NULL;

        curl_easy_getinfo(c->easy, CURLINFO_CONTENT_TYPE, &ct);
        c->ndjson = ct && strncasecmp(ct, "application/x-ndjson", 20) == 0;
        c->typed = 1;
    }
    if (kmbuf_append(&c->resp, p, n) != 0)
        return 0;
    if (!c->ndjson)
        return n;
    /* hand over every complete line, keep the rest */
    for (;;) {
        nl = memchr(c->resp.data + start, '\n', c->resp.len - start);
        if (!nl)
            break;
        if (stream_line(c, c->resp.data + start, (size_t)(nl - (c->resp.data + start))) != 0)
            return 0;
        start = (size_t)(nl - c->resp.data) + 1;
    }
    if (start > 0) {
        memmove(c->resp.data, c->resp.data + start, c->resp.len - start);
        c->resp.len -= start;
        c->resp.data[c->resp.len] = '\0';
    }
    return n;
}

/* The transfer finished (CURLE_OK): turn what arrived into (status, envelope). */
static kmcode
finish(kmmcp_call *c, int *status, json_object **envelope, kmerr *err)
{
    long         code = 0;
    json_object *o = NULL;

    if (c->ndjson) {
        if (c->resp.len > 0 && stream_line(c, c->resp.data, c->resp.len) != 0)
            return kmerr_set(err, c->bad.code, "%s", c->bad.msg);
        if (!c->final)
            return kmerr_set(err, KM_UPSTREAM_ERROR, KMMCP_SERVICE_STOPPED);
        *status = c->final_status;
        *envelope = c->final;
        c->final = NULL;
        return KM_OK;
    }
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &code);
    if (c->resp.len == 0 ||
        kmjson_parse(c->resp.data, c->resp.len, KM_UPSTREAM_ERROR, &o, NULL) != KM_OK ||
        !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return kmerr_set(err, KM_UPSTREAM_ERROR,
                         "klaviyo-restd answered HTTP %ld without a JSON envelope", code);
    }
    *status = (int)code;
    *envelope = o;
    return KM_OK;
}

kmcode
kmmcp_call_run(kmmcp_call *c, int *status, json_object **envelope, kmerr *err)
{
    struct curl_slist *hdr = NULL;
    CURLM             *multi = NULL;
    CURLMsg           *msg;
    CURLcode           cc = CURLE_OK;
    kmcode             rc = KM_OK;
    int                running = 1, left;

    *status = 0;
    *envelope = NULL;
    if (c->ran)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a call runs once");
    c->ran = 1;
    if (c->url[strlen(c->url) - 1] == '/')
        return kmerr_set(err, KM_UNKNOWN_TOOL, "invalid tool name");

    c->easy = curl_easy_init();
    multi = curl_multi_init();
    if (!c->easy || !multi) {
        rc = kmerr_set(err, KM_INTERNAL_ERROR, "cannot set up a curl transfer");
        goto out;
    }
    common_opts(c->easy, c->sock, c->url, c->timeout_ms);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, c->stream ? "Accept: application/x-ndjson"
                                           : "Accept: application/json");
    hdr = curl_slist_append(hdr, "Expect:");
    /* the answer is for a model: bounded, with its Markdown summary (common/service/shape.h) */
    hdr = curl_slist_append(hdr, KMSHAPE_VIEW_HEADER ": " KMSHAPE_VIEW_MODEL);
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(c->body));
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_multi_add_handle(multi, c->easy);

    pthread_mutex_lock(&c->mu);
    c->multi = multi;
    pthread_mutex_unlock(&c->mu);

    while (running && !is_cancelled(c)) {
        CURLMcode mc = curl_multi_perform(multi, &running);

        if (mc != CURLM_OK) {
            rc = kmerr_set(err, KM_INTERNAL_ERROR, "curl: %s", curl_multi_strerror(mc));
            goto out;
        }
        if (running)
            curl_multi_poll(multi, NULL, 0, POLL_MS, NULL);
    }

    pthread_mutex_lock(&c->mu);
    c->multi = NULL;
    pthread_mutex_unlock(&c->mu);

    if (is_cancelled(c)) {
        rc = kmerr_set(err, KM_CANCELLED, "the call was cancelled");
        goto out;
    }
    msg = curl_multi_info_read(multi, &left);
    if (msg && msg->msg == CURLMSG_DONE)
        cc = msg->data.result;
    if (cc == CURLE_WRITE_ERROR && c->bad.code != KM_OK) {
        rc = kmerr_set(err, c->bad.code, "%s", c->bad.msg);
        goto out;
    }
    if (cc != CURLE_OK) {
        rc = transfer_error(c->easy, cc, c->sock, c->timeout_ms, err);
        goto out;
    }
    rc = finish(c, status, envelope, err);
out:
    pthread_mutex_lock(&c->mu);
    c->multi = NULL;
    pthread_mutex_unlock(&c->mu);
    if (multi && c->easy)
        curl_multi_remove_handle(multi, c->easy);
    /* removing the handle mid-transfer closes the connection: the service cancels */
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdr);
    return rc;
}
