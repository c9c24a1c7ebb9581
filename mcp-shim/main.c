/* main.c — klaviyo-mcp: the MCP stdio server in front of klaviyo-restd.
 *
 * Reads newline-delimited JSON-RPC on stdin, writes only protocol messages on stdout (logs go
 * to stderr), answers initialize / server/discover / ping / tools/list itself and forwards
 * each tools/call as POST /v1/tools/<name> over the service's Unix socket.
 *
 * Protocol generations, chosen per request by what the client sends:
 * - handshake revisions 2025-03-26, 2025-06-18, 2025-11-25: `initialize` negotiates the
 *   revision for this stdio process; until it has been answered, any other request but ping
 *   gets -32600 "server not initialized" (not -32002: 2026-07-28 reserves that code). Batches
 *   (JSON arrays) are served for 2025-03-26 only and refused with -32600 otherwise.
 * - the stateless revision 2026-07-28: a request whose params._meta holds
 *   io.modelcontextprotocol/protocolVersion (with io.modelcontextprotocol/clientCapabilities)
 *   is served on its own, whatever came before; every result carries resultType "complete" and
 *   _meta["io.modelcontextprotocol/serverInfo"]; tools/list and server/discover carry
 *   ttlMs/cacheScope; an unknown version gets -32022 with data {supported, requested}.
 *
 * Tool results: a success is the service's envelope as structuredContent and its Markdown
 * summary as the text block, under the message cap (result.h); a tool error is isError with
 * the text "CODE: message" (and the details, when there are any) — protocol faults stay
 * JSON-RPC errors, and so does an unknown tool (-32602, as the spec's tools page says for
 * 2025-11-25 and 2026-07-28).
 *
 * Progress: with a progressToken, each Klaviyo call made is a notification ("Klaviyo call k of
 * n", total always present), and each keep-alive the service sends while the call waits (a
 * rate window, a slow answer) is one too, with a progress value between k and k+1 that still
 * increases, so a client that resets its timeout on progress keeps waiting for a live call.
 *
 * Threads: the main thread reads stdin and answers what needs no service. tools/call (and
 * tools/list until the list is known) runs on a thread of its own, so stdin is still read
 * while it runs: notifications/cancelled reaches the call, which aborts its HTTP transfer (the
 * service then abandons the work) and sends nothing. Finished threads are joined by the main
 * thread. stdout writes are whole lines under one lock (jsonrpc.h).
 *
 * Shutdown: end of input, SIGTERM, SIGINT and SIGHUP cancel every call in flight (its HTTP
 * transfer is closed, so the service stops before its next Klaviyo request; no answer is
 * written), stop the private service (if the shim started one) and exit 0.
 *
 * The private service: SIGCHLD is taken on the same signalfd; when the private klaviyo-restd
 * dies, the calls it was running are answered at once with an error that says so, and the
 * next call starts a new one.
 */
#include "accounts.h"
#include "env.h"
#include "err.h"
#include "forward.h"
#include "result.h"
#include "json.h"
#include "jsonrpc.h"
#include "log.h"
#include "proto.h"
#include "settings.h"
#include "spawn.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0"
#endif

#define MAX_LINE         (4u * 1024u * 1024u)   /* the longest message accepted */
#define MAX_JOBS         64                     /* calls in flight at once */
#define START_MS         10000                  /* a private service must answer by then */
#define GRACE_MS         5000                   /* SIGTERM → SIGKILL for the private service */
#define LIST_TIMEOUT_MS  10000L
#define LIST_TTL_MS      3600000                /* the tool list is fixed per service build */

/* The most bytes one result may take on stdout (KLAVIYO_MCP_MAX_MESSAGE_BYTES); set in main
 * before any thread starts. */
static size_t message_cap = KMMCP_DEFAULT_MAX_MESSAGE;


struct batch {
    json_object *replies;   /* array, filled as the members finish */
    int          pending;   /* members still to answer, plus one while it is being read */
};

enum job_kind { JOB_CALL, JOB_LIST };

struct job {
    struct shim  *sh;
    enum job_kind kind;
    json_object  *id;          /* a private copy */
    char          rid[72];     /* the id as text, for the log */
    int           stateless;   /* 2026-07-28: resultType and _meta on the result */
    struct batch *batch;
    char          tool[72];
    json_object  *args;        /* a private copy */
    json_object  *token;       /* a private copy of _meta.progressToken, or NULL */
    kmproto_progress progress; /* its token is `token` */

    kmmcp_call   *http;        /* under sh->mu: the transfer in progress */
    int           cancelled;   /* under sh->mu */
    char         *died;        /* under sh->mu: the service died; why (answered as an error) */
    int           done;        /* under sh->mu: finished, to be joined */
    pthread_t     thread;
    struct job   *next;
};

struct shim {
    kmmcp_out       out;
    kmmcp_svc      *svc;
    int             config_ok;
    kmerr           config_err;
    long            call_timeout_ms;
    int             wake_fd;       /* eventfd: a job finished, or the output broke */

    pthread_mutex_t mu;
    struct job     *jobs;
    size_t          njobs;
    json_object    *tools;         /* the MCP tool list, once known; read-only after */
    int             initialized;
    char            version[16];   /* the negotiated handshake revision */
};

/* --- replies ----------------------------------------------------------------------------- */

static void
wake_main(struct shim *sh)
{
    uint64_t one = 1;

    if (write(sh->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        kmlogf(KMLOG_ERROR, "wake_failed", "eventfd write: %s", strerror(errno));
}

/* Send one message, or file it in its batch. Takes ownership of msg; msg NULL means "this
 * member needs no answer after all" (a cancelled call). */
static void
reply(struct shim *sh, struct batch *b, json_object *msg)
{
    if (!b) {
        if (msg && kmmcp_write(&sh->out, msg) != 0)
            wake_main(sh);
        json_object_put(msg);
        return;
    }
    pthread_mutex_lock(&sh->mu);
    if (msg)
        json_object_array_add(b->replies, msg);
    if (--b->pending == 0) {
        /* a batch answers with one array, or nothing when it held only notifications */
        if (json_object_array_length(b->replies) > 0 && kmmcp_write(&sh->out, b->replies) != 0)
            wake_main(sh);
        json_object_put(b->replies);
        free(b);
    }
    pthread_mutex_unlock(&sh->mu);
}

static void
reply_error(struct shim *sh, struct batch *b, json_object *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
reply_error(struct shim *sh, struct batch *b, json_object *id, int code, const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(sh, b, kmmcp_error(id, code, msg, NULL));
}

/* --- the tool list ----------------------------------------------------------------------- */

/* A copy of the cached list, or NULL when it is not known yet. */
static json_object *
cached_tools(struct shim *sh)
{
    json_object *copy = NULL;

    pthread_mutex_lock(&sh->mu);
    if (sh->tools)
        copy = kmjson_copy(sh->tools);
    pthread_mutex_unlock(&sh->mu);
    return copy;
}

/* --- jobs (threads) ---------------------------------------------------------------------- */

static int
job_cancelled(struct job *j)
{
    int c;

    pthread_mutex_lock(&j->sh->mu);
    c = j->cancelled;
    pthread_mutex_unlock(&j->sh->mu);
    return c;
}

static void
on_progress(void *arg, long done, long total, int waiting)
{
    struct job  *j = arg;
    json_object *msg;

    if (job_cancelled(j))
        return;
    msg = kmproto_progress_note(&j->progress, done, total, waiting);
    if (msg && kmmcp_write(&j->sh->out, msg) != 0)
        wake_main(j->sh);
    json_object_put(msg);
}

static int
job_died(struct job *j)
{
    int d;

    pthread_mutex_lock(&j->sh->mu);
    d = j->died != NULL;
    pthread_mutex_unlock(&j->sh->mu);
    return d;
}

static void
nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static json_object *
run_call(struct job *j)
{
    struct shim *sh = j->sh;
    char         sock[256];
    unsigned     gen = 0;
    kmerr        err = { 0 };
    json_object *env = NULL, *res;
    int          status = 0;
    kmcode       rc = KM_OK;

    for (int attempt = 0; attempt < 2; attempt++) {
        kmmcp_call *http;

        kmerr_clear(&err);
        rc = kmmcp_svc_get(sh->svc, sock, sizeof(sock), &gen, &err);
        if (rc != KM_OK)
            break;
        http = kmmcp_call_new(sock, j->tool, j->args, j->token != NULL, sh->call_timeout_ms,
                              on_progress, j);
        pthread_mutex_lock(&sh->mu);
        j->http = http;
        if (j->cancelled)
            kmmcp_call_cancel(http);
        pthread_mutex_unlock(&sh->mu);
        rc = kmmcp_call_run(http, &status, &env, &err);
        pthread_mutex_lock(&sh->mu);
        j->http = NULL;
        pthread_mutex_unlock(&sh->mu);
        kmmcp_call_free(http);
        if (rc != KM_SERVICE_UNAVAILABLE)
            break;
        /* nothing accepted the request: the service may have gone; look again, once */
        kmmcp_svc_lost(sh->svc, gen);
    }
    if (rc == KM_UPSTREAM_ERROR && strcmp(err.msg, KMMCP_SERVICE_STOPPED) == 0 &&
        kmmcp_svc_child(sh->svc) > 0) {
        /* the connection closed: when the private service died, its SIGCHLD is a moment
         * behind; wait briefly for it so the answer names the real cause */
        for (int i = 0; i < 25 && !job_died(j); i++)
            nap_ms(20);
    }
    pthread_mutex_lock(&sh->mu);
    if (j->died) {
        /* the private service died under the call: say so, whatever the transfer saw */
        kmerr_set(&err, KM_UPSTREAM_ERROR, "%s", j->died);
        rc = KM_UPSTREAM_ERROR;
        json_object_put(env);
        env = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
    if (rc == KM_CANCELLED || (rc == KM_OK && job_cancelled(j)) ||
        (rc != KM_UPSTREAM_ERROR && job_cancelled(j))) {
        json_object_put(env);
        kmerr_clear(&err);
        return NULL;
    }
    if (rc != KM_OK) {
        kmlogf(KMLOG_WARN, "call_failed", "%s: %s: %s", j->tool, kmerr_name(rc), err.msg);
        res = kmmcp_result(j->id, kmproto_finish(j->stateless, kmproto_error_result(&err)));
    } else {
        kmlogf(KMLOG_DEBUG, "call_done", "%s answered HTTP %d", j->tool, status);
        res = kmproto_call_answer(j->id, j->stateless, env, message_cap);
    }
    kmerr_clear(&err);
    return res;
}

static json_object *
run_list(struct job *j)
{
    struct shim *sh = j->sh;
    char         sock[256];
    unsigned     gen = 0;
    kmerr        err = { 0 };
    json_object *raw = NULL, *tools;
    kmcode       rc = KM_OK;

    for (int attempt = 0; attempt < 2; attempt++) {
        kmerr_clear(&err);
        rc = kmmcp_svc_get(sh->svc, sock, sizeof(sock), &gen, &err);
        if (rc != KM_OK)
            break;
        rc = kmmcp_fetch_tools(sock, LIST_TIMEOUT_MS, &raw, &err);
        if (rc != KM_SERVICE_UNAVAILABLE)
            break;
        kmmcp_svc_lost(sh->svc, gen);
    }
    if (rc == KM_OK) {
        tools = kmproto_tools(raw);
        json_object_put(raw);
        pthread_mutex_lock(&sh->mu);
        if (!sh->tools)
            sh->tools = kmjson_copy(tools);
        pthread_mutex_unlock(&sh->mu);
        return kmproto_list_result(j->stateless, tools, KMPROTO_LIST_TTL_MS);
    }
    if (rc == KM_UPSTREAM_ERROR || rc == KM_UPSTREAM_TIMEOUT) {
        json_object *m = kmmcp_error(j->id, KMMCP_INTERNAL_ERROR, err.msg, NULL);

        kmerr_clear(&err);
        return m;
    }
    /* no service: the stand-in carries the reason (not cached: the next list looks again) */
    if (!sh->config_ok)
        kmerr_copy(&err, &sh->config_err);
    tools = kmproto_standin_tools(&err);
    kmerr_clear(&err);
    return kmproto_list_result(j->stateless, tools, 0);
}

static void *
job_main(void *arg)
{
    struct job  *j = arg;
    struct shim *sh = j->sh;
    json_object *res, *msg = NULL;

    kmlog_set_request_id(j->rid);
    res = j->kind == JOB_CALL ? run_call(j) : run_list(j);
    if (res && kmjson_get(res, "jsonrpc"))
        msg = res;                     /* already a whole (error) response */
    else if (res)
        msg = kmmcp_result(j->id, res);
    pthread_mutex_lock(&sh->mu);
    if (j->cancelled && !j->died) {
        kmlogf(KMLOG_INFO, "request_cancelled", "%s: no answer is sent",
               j->kind == JOB_CALL ? j->tool : "tools/list");
        json_object_put(msg);
        msg = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
    reply(sh, j->batch, msg);
    kmlog_set_request_id(NULL);
    pthread_mutex_lock(&sh->mu);
    j->done = 1;
    pthread_mutex_unlock(&sh->mu);
    wake_main(sh);
    return NULL;
}

static void
job_free(struct job *j)
{
    free(j->died);
    json_object_put(j->id);
    json_object_put(j->args);
    json_object_put(j->token);
    free(j);
}

/* Start a job on its own thread; it answers (through reply) when done. */
static void
job_start(struct shim *sh, struct job *j)
{
    pthread_mutex_lock(&sh->mu);
    j->next = sh->jobs;
    sh->jobs = j;
    sh->njobs++;
    pthread_mutex_unlock(&sh->mu);
    if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
        kmlogf(KMLOG_ERROR, "thread_failed", "cannot start a thread for a request");
        abort();
    }
}

static size_t
jobs_running(struct shim *sh)
{
    size_t n;

    pthread_mutex_lock(&sh->mu);
    n = sh->njobs;
    pthread_mutex_unlock(&sh->mu);
    return n;
}

/* Join and free every finished job. */
static void
reap_jobs(struct shim *sh)
{
    for (;;) {
        struct job *j = NULL, **pp;

        pthread_mutex_lock(&sh->mu);
        for (pp = &sh->jobs; *pp; pp = &(*pp)->next) {
            if ((*pp)->done) {
                j = *pp;
                *pp = j->next;
                sh->njobs--;
                break;
            }
        }
        pthread_mutex_unlock(&sh->mu);
        if (!j)
            return;
        pthread_join(j->thread, NULL);
        job_free(j);
    }
}

/* Cancel the jobs answering `id` (all of them when id is NULL). With `died` (the service
 * died) the tool calls are answered with that error instead of nothing. Returns how many. */
static int
cancel_jobs(struct shim *sh, json_object *id, const char *died)
{
    int n = 0;

    pthread_mutex_lock(&sh->mu);
    for (struct job *j = sh->jobs; j; j = j->next) {
        if (j->done || (id && !kmmcp_id_equal(j->id, id)))
            continue;
        if (died && j->kind != JOB_CALL)
            continue;
        if (died && !j->died)
            j->died = km_xstrdup(died);
        j->cancelled = 1;
        if (j->http)
            kmmcp_call_cancel(j->http);
        n++;
    }
    pthread_mutex_unlock(&sh->mu);
    return n;
}

static struct job *
job_new(struct shim *sh, enum job_kind kind, json_object *id, int stateless, struct batch *b)
{
    struct job *j = km_xcalloc(1, sizeof(*j));

    j->sh = sh;
    j->kind = kind;
    /* private copies: json-c reference counts are not atomic, so a job shares nothing with
     * the message the main thread frees */
    j->id = kmjson_copy(id);
    km_strlcpy(j->rid, json_object_get_string(j->id), sizeof(j->rid));
    j->stateless = stateless;
    j->batch = b;
    return j;
}

/* --- methods ----------------------------------------------------------------------------- */

static void
do_initialize(struct shim *sh, struct kmmcp_msg *m, struct batch *b)
{
    json_object *client = kmjson_get(m->params, "clientInfo");
    json_object *r, *bad;
    const char  *want, *chosen;

    bad = kmproto_check_initialize(m->id, m->params, &want);
    if (bad) {
        reply(sh, b, bad);
        return;
    }
    chosen = kmproto_choose(want);
    pthread_mutex_lock(&sh->mu);
    if (sh->initialized) {
        pthread_mutex_unlock(&sh->mu);
        reply_error(sh, b, m->id, KMMCP_INVALID_REQUEST,
                    "already initialized (protocol %s)", sh->version);
        return;
    }
    sh->initialized = 1;
    km_strlcpy(sh->version, chosen, sizeof(sh->version));
    pthread_mutex_unlock(&sh->mu);
    kmlogf(KMLOG_INFO, "initialize", "client %.64s %.32s asked for protocol %.32s; using %s",
           kmjson_str(client, "name") ? kmjson_str(client, "name") : "?",
           kmjson_str(client, "version") ? kmjson_str(client, "version") : "?", want, chosen);

    r = kmproto_initialize_result(chosen, sh->config_ok ? NULL : &sh->config_err);
    reply(sh, b, kmmcp_result(m->id, r));
}

static void
do_tools_list(struct shim *sh, struct kmmcp_msg *m, int stateless, struct batch *b)
{
    json_object *tools;

    json_object *bad = kmproto_check_list(m->id, m->params);

    if (bad) {
        reply(sh, b, bad);
        return;
    }
    tools = cached_tools(sh);
    if (tools) {
        reply(sh, b, kmmcp_result(m->id, kmproto_list_result(stateless, tools,
                                                             KMPROTO_LIST_TTL_MS)));
        return;
    }
    if (jobs_running(sh) >= MAX_JOBS) {
        reply_error(sh, b, m->id, KMMCP_INTERNAL_ERROR,
                    "too many requests in flight (%d); retry when some have finished", MAX_JOBS);
        return;
    }
    job_start(sh, job_new(sh, JOB_LIST, m->id, stateless, b));
}

/* 0 when the tool list is known and does not name `tool` (1 while it is not known: the
 * service then says, and an unknown tool still becomes -32602). */
static int
tool_listed(struct shim *sh, const char *tool)
{
    int found = 1;

    pthread_mutex_lock(&sh->mu);
    if (sh->tools) {
        found = 0;
        for (size_t i = 0; i < json_object_array_length(sh->tools) && !found; i++)
            found = strcmp(kmjson_str(json_object_array_get_idx(sh->tools, i), "name") ?
                           kmjson_str(json_object_array_get_idx(sh->tools, i), "name") : "",
                           tool) == 0;
    }
    pthread_mutex_unlock(&sh->mu);
    return found;
}

static void
do_tools_call(struct shim *sh, struct kmmcp_msg *m, int stateless, struct batch *b)
{
    struct kmproto_call c;
    json_object        *bad = kmproto_check_call(m->id, m->params, &c);
    struct job         *j;
    kmerr               err = { 0 };

    if (bad) {
        reply(sh, b, bad);
        return;
    }
    if (!kmmcp_tool_name_ok(c.name) || !tool_listed(sh, c.name)) {
        reply(sh, b, kmproto_unknown_tool(m->id, c.name));
        return;
    }
    if (!sh->config_ok)
        kmerr_copy(&err, &sh->config_err);
    else if (jobs_running(sh) >= MAX_JOBS)
        kmerr_set(&err, KM_SERVICE_UNAVAILABLE, "too many calls in flight (%d); retry when some "
                  "have finished", MAX_JOBS);
    if (err.code != KM_OK) {
        reply(sh, b, kmmcp_result(m->id, kmproto_finish(stateless, kmproto_error_result(&err))));
        kmerr_clear(&err);
        return;
    }
    j = job_new(sh, JOB_CALL, m->id, stateless, b);
    km_strlcpy(j->tool, c.name, sizeof(j->tool));
    j->args = c.args ? kmjson_copy(c.args) : json_object_new_object();
    j->token = c.token ? kmjson_copy(c.token) : NULL;
    j->progress.token = j->token;
    job_start(sh, j);
}

static void
handle_request(struct shim *sh, struct kmmcp_msg *m, struct batch *b)
{
    const char  *method = m->method;
    json_object *bad;
    char         negotiated[16];
    int          stateless = 0;

    if (strcmp(method, "initialize") == 0) {
        do_initialize(sh, m, b);
        return;
    }
    pthread_mutex_lock(&sh->mu);
    km_strlcpy(negotiated, sh->initialized ? sh->version : "", sizeof(negotiated));
    pthread_mutex_unlock(&sh->mu);
    bad = kmproto_gate(m->id, method, m->params, negotiated, &stateless);
    if (bad) {
        reply(sh, b, bad);
        return;
    }
    if (strcmp(method, "ping") == 0)
        reply(sh, b, kmmcp_result(m->id, kmproto_finish(stateless, json_object_new_object())));
    else if (strcmp(method, "server/discover") == 0)
        reply(sh, b, kmmcp_result(m->id, kmproto_discover_result(sh->config_ok ? NULL
                                                                             : &sh->config_err)));
    else if (strcmp(method, "tools/list") == 0)
        do_tools_list(sh, m, stateless, b);
    else
        do_tools_call(sh, m, stateless, b);
}

static void
handle_notification(struct shim *sh, struct kmmcp_msg *m)
{
    if (m->code) {
        kmlogf(KMLOG_WARN, "notification_dropped", "%.100s: %s", m->method, m->why);
        return;
    }
    if (strcmp(m->method, "notifications/cancelled") == 0) {
        json_object *id = kmjson_get(m->params, "requestId");
        int          n = id ? cancel_jobs(sh, id, NULL) : 0;

        kmlogf(KMLOG_INFO, "cancel", "notifications/cancelled for %s: %d request(s) stopped",
               id ? json_object_to_json_string(id) : "(no requestId)", n);
    } else if (strcmp(m->method, "notifications/initialized") == 0) {
        kmlogf(KMLOG_DEBUG, "initialized", "the client is ready");
    } else {
        kmlogf(KMLOG_DEBUG, "notification_ignored", "%.100s", m->method);
    }
}

/* One message (a whole line, or a member of a batch). */
static void
handle_message(struct shim *sh, json_object *o, struct batch *b)
{
    struct kmmcp_msg m;

    kmmcp_classify(o, &m);
    if (b && (m.kind == KMMCP_REQUEST || m.kind == KMMCP_INVALID)) {
        pthread_mutex_lock(&sh->mu);
        b->pending++;
        pthread_mutex_unlock(&sh->mu);
    }
    switch (m.kind) {
    case KMMCP_INVALID:
        reply(sh, b, kmmcp_error(m.id, m.code, m.why, NULL));
        break;
    case KMMCP_REQUEST:
        handle_request(sh, &m, b);
        break;
    case KMMCP_NOTIFICATION:
        handle_notification(sh, &m);
        break;
    case KMMCP_RESPONSE:
        kmlogf(KMLOG_DEBUG, "response_ignored", "the client sent a response; none was asked");
        break;
    }
}

static void
handle_line(struct shim *sh, const char *line, size_t len)
{
    json_object *o = NULL;
    kmerr        err = { 0 };
    char         version[16];
    struct batch *b;

    if (kmmcp_parse(line, len, &o, &err) != KM_OK) {
        reply_error(sh, NULL, NULL, KMMCP_PARSE_ERROR, "Parse error: %s", err.msg);
        kmerr_clear(&err);
        return;
    }
    if (!json_object_is_type(o, json_type_array)) {
        handle_message(sh, o, NULL);
        json_object_put(o);
        return;
    }
    pthread_mutex_lock(&sh->mu);
    km_strlcpy(version, sh->initialized ? sh->version : "", sizeof(version));
    pthread_mutex_unlock(&sh->mu);
    if (strcmp(version, "2025-03-26") != 0) {
        reply_error(sh, NULL, NULL, KMMCP_INVALID_REQUEST, "JSON-RPC batches are not supported "
                    "by protocol %s; send one message per line", version[0] ? version : "(none)");
    } else if (json_object_array_length(o) == 0) {
        reply_error(sh, NULL, NULL, KMMCP_INVALID_REQUEST, "empty batch");
    } else {
        b = km_xcalloc(1, sizeof(*b));
        b->replies = json_object_new_array();
        b->pending = 1;    /* held while the members are read */
        for (size_t i = 0; i < json_object_array_length(o); i++)
            handle_message(sh, json_object_array_get_idx(o, i), b);
        reply(sh, b, NULL);
    }
    json_object_put(o);
}

/* --- configuration ----------------------------------------------------------------------- */

/* Load .env, the settings and the account manifest as the service does. On failure err says
 * why (always KM_CONFIG_ERROR) and cfg is zeroed. */
static kmcode
load_config(kmcfg *cfg, size_t *naccounts, kmerr *err)
{
    char       *loaded = NULL, *path = NULL;
    kmaccounts *acc = NULL;
    kmcode      rc;

    memset(cfg, 0, sizeof(*cfg));
    *naccounts = 0;
    rc = kmenv_load(&loaded, err);
    free(loaded);
    if (rc != KM_OK)
        goto out;
    rc = kmcfg_load(cfg, err);
    if (rc != KM_OK)
        goto out;
    rc = kmacct_locate(&path, err);
    if (rc == KM_OK)
        rc = kmacct_load(path, &acc, err);
    if (rc == KM_OK)
        *naccounts = kmacct_count(acc);
    else
        kmcfg_free(cfg);
out:
    if (rc != KM_OK && err)
        err->code = KM_CONFIG_ERROR;    /* "no accounts.toml found" is a config error here */
    kmacct_free(acc);
    free(path);
    return rc != KM_OK ? KM_CONFIG_ERROR : KM_OK;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp [--check-config] [--version] [--help]\n"
            "\n"
            "The Klaviyo reports MCP server: JSON-RPC on stdin/stdout for Claude Desktop and\n"
            "Claude Code. It forwards tool calls to klaviyo-restd over KLAVIYO_MCP_SOCKET and\n"
            "starts a private klaviyo-restd (found next to this program, on PATH, or at\n"
            "$KLAVIYO_RESTD) when none is listening. Logs go to stderr.\n"
            "\n"
            "  --check-config  validate .env, the settings and accounts.toml, then exit\n"
            "                  (0 when valid, 78 with the problem on stderr otherwise)\n");
}

/* --- main loop --------------------------------------------------------------------------- */

static int
process_input(struct shim *sh, kmmcp_reader *rd)
{
    char  *line;
    size_t len;

    for (;;) {
        enum kmmcp_event ev = kmmcp_reader_next(rd, &line, &len);

        if (ev == KMMCP_NEED_MORE)
            return 0;
        if (ev == KMMCP_TOO_LONG) {
            kmlogf(KMLOG_WARN, "line_too_long", "a message over %u bytes was dropped", MAX_LINE);
            reply_error(sh, NULL, NULL, KMMCP_PARSE_ERROR, "Parse error: message longer than %u "
                        "bytes; it was dropped", MAX_LINE);
            continue;
        }
        handle_line(sh, line, len);
    }
}

/* Stop everything in flight: cancel the calls, and stop the service manager so calls waiting
 * for a service give up at once. */
static void
stop_all(struct shim *sh)
{
    cancel_jobs(sh, NULL, NULL);
    kmmcp_svc_stop(sh->svc);
}

static int
serve(struct shim *sh, int sigfd)
{
    kmmcp_reader rd;
    int          eof = 0, quit = 0;

    kmmcp_reader_init(&rd, MAX_LINE);
    for (;;) {
        struct pollfd pfd[3];
        int           n;

        reap_jobs(sh);
        if (kmmcp_out_broken(&sh->out) && !quit) {
            kmlogf(KMLOG_INFO, "stdout_closed", "the client closed stdout; stopping");
            quit = 1;
            stop_all(sh);
        }
        if ((eof || quit) && jobs_running(sh) == 0)
            break;
        pfd[0].fd = sigfd;
        pfd[0].events = POLLIN;
        pfd[1].fd = sh->wake_fd;
        pfd[1].events = POLLIN;
        pfd[2].fd = eof || quit ? -1 : 0;
        pfd[2].events = POLLIN;
        n = poll(pfd, 3, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            kmlogf(KMLOG_ERROR, "poll_failed", "%s", strerror(errno));
            quit = 1;
            stop_all(sh);
            continue;
        }
        if (pfd[0].revents & POLLIN) {
            struct signalfd_siginfo si;

            if (read(sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                char why[200];

                if (si.ssi_signo == SIGCHLD) {
                    pid_t dead = kmmcp_svc_reap(sh->svc, why, sizeof(why));

                    if (dead > 0) {
                        /* the calls learn why before their connections close */
                        kmlogf(KMLOG_WARN, "calls_cut", "%d call(s) answered with an error",
                               cancel_jobs(sh, NULL, why));
                        kmmcp_svc_kill_group(dead);
                    }
                } else if (!quit) {
                    kmlogf(KMLOG_INFO, "signal", "signal %u: cancelling %zu request(s) and "
                           "stopping", si.ssi_signo, jobs_running(sh));
                    quit = 1;
                    stop_all(sh);
                }
            }
        }
        if (pfd[1].revents & POLLIN) {
            uint64_t v;

            if (read(sh->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                kmlogf(KMLOG_ERROR, "wake_failed", "eventfd read: %s", strerror(errno));
        }
        if (pfd[2].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
            ssize_t got = kmmcp_reader_fill(&rd, 0);

            if (got < 0 && errno != EINTR && errno != EAGAIN) {
                kmlogf(KMLOG_ERROR, "stdin_failed", "%s", strerror(errno));
                rd.eof = 1;
            }
            process_input(sh, &rd);
            if (rd.eof) {
                eof = 1;
                /* the client is gone: nothing more can be answered, so stop the work now
                 * (the service stops before its next Klaviyo request) */
                kmlogf(KMLOG_INFO, "stdin_closed", "end of input; cancelling %zu request(s) "
                       "and stopping", jobs_running(sh));
                if (!quit) {
                    quit = 1;
                    stop_all(sh);
                }
            }
        }
    }
    kmmcp_reader_free(&rd);
    return 0;
}

int
main(int argc, char **argv)
{
    struct shim            sh;
    struct kmmcp_svc_opts  so;
    kmcfg                  cfg;
    size_t                 naccounts = 0;
    sigset_t               sigs;
    struct sigaction       ign;
    char                  *socket_path = NULL;
    int                    check_only = 0, sigfd, rc;
    kmlog_level            lvl;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("klaviyo-mcp %s\n", PACKAGE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--check-config") == 0) {
            check_only = 1;
        } else {
            fprintf(stderr, "klaviyo-mcp: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    if (kmenv_get("LOG_LEVEL") && kmlog_parse_level(kmenv_get("LOG_LEVEL"), &lvl) == 0)
        kmlog_set_level(lvl);
    memset(&sh, 0, sizeof(sh));
    sh.config_ok = load_config(&cfg, &naccounts, &sh.config_err) == KM_OK;
    if (sh.config_ok && kmmcp_result_cap_parse(kmenv_get("KLAVIYO_MCP_MAX_MESSAGE_BYTES"),
                                               &message_cap, &sh.config_err) != KM_OK) {
        sh.config_ok = 0;           /* like any configuration error: every call says so */
        kmcfg_free(&cfg);
    }
    if (check_only) {
        if (!sh.config_ok) {
            fprintf(stderr, "CONFIG_ERROR: %s\n", sh.config_err.msg);
            kmerr_clear(&sh.config_err);
            return KM_EXIT_CONFIG;
        }
        fprintf(stderr, "klaviyo-mcp: configuration OK (%zu account%s; socket %s)\n", naccounts,
                naccounts == 1 ? "" : "s", cfg.socket_path);
        kmcfg_free(&cfg);
        return 0;
    }
    if (sh.config_ok) {
        kmlog_set_level(cfg.log_level);
        socket_path = km_xstrdup(cfg.socket_path);
        sh.call_timeout_ms = (cfg.request_deadline_s + 30) * 1000L;
    } else {
        kmlogf(KMLOG_ERROR, "config_error", "%s (tool calls will answer CONFIG_ERROR)",
               sh.config_err.msg);
        socket_path = kmenv_get("KLAVIYO_MCP_SOCKET") ? km_xstrdup(kmenv_get("KLAVIYO_MCP_SOCKET"))
                                                   : kmcfg_default_socket();
        sh.call_timeout_ms = 630000L;
    }

    /* signals: taken synchronously from a signalfd; every thread inherits the mask */
    memset(&ign, 0, sizeof(ign));
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    sh.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sigfd < 0 || sh.wake_fd < 0) {
        kmlogf(KMLOG_ERROR, "startup_failed", "signalfd/eventfd: %s", strerror(errno));
        return 1;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        kmlogf(KMLOG_ERROR, "startup_failed", "curl_global_init failed");
        return 1;
    }
    kmmcp_out_init(&sh.out, 1);
    pthread_mutex_init(&sh.mu, NULL);

    memset(&so, 0, sizeof(so));
    so.socket_path = socket_path;
    so.restd = kmenv_get("KLAVIYO_RESTD");
    so.start_ms = START_MS;
    so.grace_ms = GRACE_MS;
    so.spawn = sh.config_ok;
    kmlogf(KMLOG_INFO, "shim_started", "klaviyo-mcp %s (pid %ld), socket %s, %s",
           PACKAGE_VERSION, (long)getpid(), socket_path,
           sh.config_ok ? "configuration OK" : "configuration error");
    sh.svc = kmmcp_svc_start(&so);

    rc = serve(&sh, sigfd);

    kmmcp_svc_free(sh.svc);
    reap_jobs(&sh);
    json_object_put(sh.tools);
    pthread_mutex_destroy(&sh.mu);
    kmmcp_out_destroy(&sh.out);
    kmerr_clear(&sh.config_err);
    if (sh.config_ok)
        kmcfg_free(&cfg);
    free(socket_path);
    close(sigfd);
    close(sh.wake_fd);
    curl_global_cleanup();
    kmlogf(KMLOG_INFO, "shim_stopped", "bye");
    return rc;
}
