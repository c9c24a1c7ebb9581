/* simctl.c — the simulator's control endpoints under /__sim/, for tests and the demo: the
 * accounts with their keys, the call and throttle counters, a reset, and the fault queue that
 * sim.c takes from. They are never counted and never rate limited. */
#include "json.h"
#include "simint.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <string.h>

static void
send_json(struct evhttp_request *req, int status, json_object *doc)
{
    struct evbuffer *buf = evbuffer_new();
    const char      *text = doc ? json_object_to_json_string_ext(
                                      doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
                                : "";

    evbuffer_add(buf, text, strlen(text));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evhttp_send_reply(req, status, sim_reason(status), buf);
    evbuffer_free(buf);
}

static json_object *
accounts_doc(struct sim *s)
{
    json_object *arr = json_object_new_array(), *doc = json_object_new_object();

    for (size_t i = 0; i < simdata_account_count(s->sd); i++) {
        const struct simacct *a = simdata_account(s->sd, i);
        json_object          *o = json_object_new_object();
        char                  label[96];

        snprintf(label, sizeof(label), "%s (demo)", a->label);
        json_object_object_add(o, "name", json_object_new_string(a->name));
        json_object_object_add(o, "key", json_object_new_string(a->key));
        if (a->limited_key[0])
            json_object_object_add(o, "limited_key", json_object_new_string(a->limited_key));
        json_object_object_add(o, "id", json_object_new_string(a->id));
        json_object_object_add(o, "timezone", json_object_new_string(a->tz));
        json_object_object_add(o, "currency", json_object_new_string(a->currency));
        json_object_object_add(o, "conversion_metric_id",
                               json_object_new_string(a->metrics[a->conversion_metric].id));
        json_object_object_add(o, "label", json_object_new_string(label));
        json_object_object_add(o, "has_sms", json_object_new_boolean(a->has_sms));
        json_object_array_add(arr, o);
    }
    json_object_object_add(doc, "accounts", arr);
    return doc;
}

static json_object *
stats_doc(struct sim *s)
{
    json_object *doc = json_object_new_object();

    json_object_object_add(doc, "calls", json_object_get(s->calls));
    json_object_object_add(doc, "throttled", json_object_get(s->throttled));
    json_object_object_add(doc, "total_calls", json_object_new_int64(s->total_calls));
    json_object_object_add(doc, "total_throttled", json_object_new_int64(s->total_throttled));
    json_object_object_add(doc, "faults_fired", json_object_new_int64(s->faults_fired));
    json_object_object_add(doc, "faults_pending", json_object_new_int64((int64_t)s->n_faults));
    return doc;
}

static void
reset(struct sim *s)
{
    size_t n = simdata_account_count(s->sd) * (s->n_routes + 1);

    memset(s->buckets, 0, n * sizeof(*s->buckets));
    json_object_put(s->calls);
    json_object_put(s->throttled);
    s->calls = json_object_new_object();
    s->throttled = json_object_new_object();
    s->total_calls = s->total_throttled = s->faults_fired = 0;
    s->n_faults = 0;
}

static json_object *
control_error(const char *msg)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

static int
add_fault(struct sim *s, struct evhttp_request *req, char *msg, size_t msglen)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t           len = evbuffer_get_length(in);
    json_object     *body = NULL;
    struct simfault  f;
    const char      *mode, *method, *path;
    kmerr            err = { 0 };
    int              rc = -1;

    memset(&f, 0, sizeof(f));
    if (kmjson_parse(len ? (const char *)evbuffer_pullup(in, -1) : "", len, KM_INVALID_ARGUMENT,
                     &body, &err) != KM_OK ||
        !json_object_is_type(body, json_type_object)) {
        snprintf(msg, msglen, "the body must be a JSON object");
        goto out;
    }
    path = kmjson_str(body, "path");
    method = kmjson_str(body, "method");
    mode = kmjson_str(body, "mode");
    if (!path || path[0] != '/' || strlen(path) >= sizeof(f.path)) {
        snprintf(msg, msglen, "path is required and starts with '/'");
        goto out;
    }
    km_strlcpy(f.path, path, sizeof(f.path));
    if (method)
        km_strlcpy(f.method, method, sizeof(f.method));
    f.count = (int)kmjson_num(body, "count", 1);
    f.status = (int)kmjson_num(body, "status", 503);
    f.retry_after = (int)kmjson_num(body, "retry_after", 0);
    f.delay_ms = (int)kmjson_num(body, "delay_ms", 1000);
    if (!mode || strcmp(mode, "status") == 0)
        f.mode = SIMF_STATUS;
    else if (strcmp(mode, "delay") == 0)
        f.mode = SIMF_DELAY;
    else if (strcmp(mode, "malformed") == 0)
        f.mode = SIMF_MALFORMED;
    else if (strcmp(mode, "truncated") == 0)
        f.mode = SIMF_TRUNCATED;
    else if (strcmp(mode, "drop") == 0)
        f.mode = SIMF_DROP;
    else {
        snprintf(msg, msglen, "mode is one of status, delay, malformed, truncated, drop");
        goto out;
    }
    if (f.count < 1 || f.count > 100000 || f.status < 100 || f.status > 599 ||
        f.delay_ms < 0 || f.delay_ms > 600000 || f.retry_after < 0) {
        snprintf(msg, msglen, "count 1-100000, status 100-599, delay_ms 0-600000, "
                 "retry_after >= 0");
        goto out;
    }
    if (s->n_faults == SIM_MAX_FAULTS) {
        snprintf(msg, msglen, "too many pending faults (reset first)");
        goto out;
    }
    s->faults[s->n_faults++] = f;
    rc = 0;
out:
    kmerr_clear(&err);
    json_object_put(body);
    return rc;
}

void
simctl_handle(struct sim *s, struct evhttp_request *req, const char *method, const char *path)
{
    char         msg[200];
    json_object *doc = NULL;
    int          status = 200;

    if (strcmp(path, "/__sim/accounts") == 0 && strcmp(method, "GET") == 0) {
        doc = accounts_doc(s);
    } else if (strcmp(path, "/__sim/stats") == 0 && strcmp(method, "GET") == 0) {
        doc = stats_doc(s);
    } else if (strcmp(path, "/__sim/reset") == 0 && strcmp(method, "POST") == 0) {
        reset(s);
        doc = json_object_new_object();
        json_object_object_add(doc, "ok", json_object_new_boolean(1));
    } else if (strcmp(path, "/__sim/faults") == 0 && strcmp(method, "POST") == 0) {
        if (add_fault(s, req, msg, sizeof(msg)) != 0) {
            status = 400;
            doc = control_error(msg);
        } else {
            doc = json_object_new_object();
            json_object_object_add(doc, "ok", json_object_new_boolean(1));
            json_object_object_add(doc, "pending", json_object_new_int((int)s->n_faults));
        }
    } else if (strcmp(path, "/__sim/faults") == 0 && strcmp(method, "DELETE") == 0) {
        s->n_faults = 0;
        doc = json_object_new_object();
        json_object_object_add(doc, "ok", json_object_new_boolean(1));
    } else {
        status = 404;
        doc = control_error("unknown control endpoint; see GET /__sim/accounts, GET "
                            "/__sim/stats, POST /__sim/reset, POST /__sim/faults");
    }
    send_json(req, status, doc);
    json_object_put(doc);
}
