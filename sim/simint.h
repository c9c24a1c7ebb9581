/* simint.h — what the simulator's HTTP files share: the server state, one request in flight,
 * the route table's shape, the reply helpers (simdoc.c), rate limits (simlimit.c), the control
 * endpoints (simctl.c), collections (simcoll.c) and the handlers (simapi.c, simreport.c,
 * simagg.c); sim.c runs the request through them.
 *
 * Owns:    a simreq owns its parsed query, body, document and errors; sim.c frees it after the
 *          one reply it sends.
 * Threads: everything runs on the one event loop thread.
 * Fails:   handlers never fail as C functions: they record a Klaviyo error on the request
 *          (sim_error and friends) or set a document.
 */
#ifndef SIM_INT_H
#define SIM_INT_H

#include "sim.h"
#include "simdata.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>
#include <stdint.h>
#include <sys/queue.h>

/* Rate-limit tiers of REFERENCE.md §4; every report endpoint is its own REPORT bucket. */
enum simtier { SIMT_XS = 0, SIMT_S, SIMT_M, SIMT_L, SIMT_REPORT, SIMT_COUNT };

struct simreq;
typedef void simhandler(struct simreq *r);

struct simroute {
    const char  *method;
    const char  *tmpl;       /* "/api/flows/{id}/flow-actions" */
    const char  *scope;      /* "flows:read" */
    enum simtier tier;
    simhandler  *fn;
};

/* One fixed window: it opens at the first request after the previous one closed. */
struct simwin {
    int64_t start_ms;
    int     count;
};

struct simbucket {
    struct simwin w[3];      /* burst (1 s), steady (60 s), daily (1 day; reports only) */
};

enum simfault_mode { SIMF_STATUS = 0, SIMF_DELAY, SIMF_MALFORMED, SIMF_TRUNCATED, SIMF_DROP };

struct simfault {
    char               method[12];   /* "" = any */
    char               path[256];    /* prefix of the request path */
    int                count;        /* still to fire */
    enum simfault_mode mode;
    int                status;
    int                retry_after;  /* seconds; 0 = none (429 uses 1) */
    int                delay_ms;
};

#define SIM_MAX_FAULTS 64

struct sim {
    struct event_base *base;
    struct evhttp     *http;
    simdata           *sd;
    struct simopts     opts;
    char               base_url[96];    /* "http://127.0.0.1:PORT", no trailing slash */
    int64_t            epoch_ms;        /* monotonic start, for windows */
    struct simbucket  *buckets;         /* [account][route, then the profile_count bucket] */
    size_t             n_routes;
    struct simfault    faults[SIM_MAX_FAULTS];
    size_t             n_faults;
    json_object       *calls, *throttled;
    int64_t            total_calls, total_throttled, faults_fired;
    uint64_t           serial;          /* for ids of errors and reports */
    struct event      *sigterm, *sigint;
    struct simreq     *waiting;         /* requests held by a delay or drop fault */
};

#define SIM_MAX_SEGS 8

struct simreq {
    struct sim             *sim;
    struct evhttp_request  *req;
    const struct simroute  *route;
    const struct simacct   *acct;
    int                     limited_key;
    char                    method[12];
    char                    raw_path[512];   /* as sent, without the query */
    char                    path[512];       /* decoded, without a trailing slash */
    char                   *seg[SIM_MAX_SEGS];
    int                     nseg;
    char                    segbuf[512];
    struct evkeyvalq        query;
    int                     query_ok;
    char                    revision[16];
    json_object            *body;
    int                     status;
    json_object            *errors;          /* array, when an error was recorded */
    json_object            *doc;             /* the success document */
    struct simfault         fault;           /* the fault being applied, when any */
    int                     faulted;
    int                     rl_limit, rl_remaining, rl_reset;   /* RateLimit-* on success */
    char                    rl_policy[96];
    int                     retry_after;     /* 429 */
    struct event           *timer;
    struct simreq          *wprev, *wnext;   /* in sim->waiting while the timer runs */
};

/* --- the server (sim.c) ------------------------------------------------------------------- */

/* Add one to the counter `key` of the JSON object `map` (created at 1). */
void sim_count(json_object *map, const char *key);
/* The reason phrase of an HTTP status ("Too Many Requests"); "Status" when unknown. */
const char *sim_reason(int status);

/* --- rate limits (simlimit.c) ------------------------------------------------------------- */

/* Take a slot for r (route and account set; route_ix its index in the route table) from its
 * endpoint's bucket and, for a profile_count, the account's XS bucket, and set the RateLimit-*
 * values of the answer: 0. When a window is full nothing is taken, a 429 with Retry-After is
 * recorded and counted in sim->throttled: -1. Always 0 with --no-limits. */
int simlimit_check(struct simreq *r, size_t route_ix);

/* --- control endpoints (simctl.c) --------------------------------------------------------- */

/* Answer one /__sim/ request (path without a trailing slash): GET accounts, GET stats,
 * POST reset, POST faults (a JSON body), DELETE faults; 404 for anything else, 400 for a bad
 * fault. Sends exactly one reply. */
void simctl_handle(struct sim *s, struct evhttp_request *req, const char *method,
                   const char *path);

/* --- errors (REFERENCE.md §3) ------------------------------------------------------------- */

/* Record one error object; the first call fixes the status. src_kind is "pointer",
 * "parameter" or NULL (no source). */
void sim_error(struct simreq *r, int status, const char *code, const char *title,
               const char *detail, const char *src_kind, const char *src_val);
/* 400 invalid / "Invalid input." */
void sim_invalid(struct simreq *r, const char *detail, const char *src_kind,
                 const char *src_val);
/* 404 for an unknown id. */
void sim_not_found(struct simreq *r);
int sim_failed(const struct simreq *r);

/* --- query ------------------------------------------------------------------------------ */

/* The decoded value of query parameter `key`, or NULL. */
const char *sim_q(struct simreq *r, const char *key);
/* Refuse (400, source.parameter) any parameter not in the NULL-terminated list. `include`
 * is refused with its own message. Returns 0 when every parameter is allowed. */
int sim_q_allow(struct simreq *r, const char *const *allowed);

/* --- documents -------------------------------------------------------------------------- */

/* Full URL of `path` (which starts with "/api/"), with a trailing slash added. New string. */
char *sim_url(struct simreq *r, const char *path);
/* {"self": url, "related": url} for "<path>" and "<path>/relationships/<rel>" style links. */
json_object *sim_rel_links(struct simreq *r, const char *type_path, const char *id,
                           const char *rel);
/* {"self": url-of-path} */
json_object *sim_self_links(struct simreq *r, const char *path);

/* Page the current collection: reads page[cursor] (400 "Invalid cursor provided." when bad)
 * and writes the first index of the page. Returns 0, or -1 after recording the error. */
int sim_page_start(struct simreq *r, size_t total, size_t *offset);
/* Top-level links of a collection page: self, next, prev (explicit nulls), each the full URL
 * of this path with every original query parameter. */
json_object *sim_page_links(struct simreq *r, size_t offset, size_t page, size_t total);

/* "2025-03-02T09:41:00+00:00" for unix seconds; "...:00.276417+00:00" for microseconds. */
void sim_time(int64_t unix_sec, char out[40]);
void sim_time_us(int64_t unix_us, char out[40]);
/* Add attribute `key` as a datetime string, or null when t < 0. */
void sim_add_time(json_object *o, const char *key, int64_t unix_sec);

/* A fresh UUID-shaped id (deterministic per simulator run). */
void sim_uuid(struct sim *s, char out[40]);

/* Seconds since the epoch now (the simulator's "now" is the wall clock). */
int64_t sim_now(void);

/* Apply fields[<type>] (sparse fieldsets) to an attributes object: 400 when a listed field is
 * not one of `known`; otherwise members not listed are removed. Returns 0 on success. */
int sim_fields(struct simreq *r, const char *type, const char *const *known,
               json_object *attrs);

/* --- request bodies and the calendar (simdoc.c) ------------------------------------------- */

/* data.attributes of the JSON:API body, whose data.type must be `type` (409 otherwise) and whose
 * attributes must all be in the NULL-terminated `known` (400 per unknown one). Borrowed from
 * r->body; NULL after recording the error. */
json_object *sim_attributes(struct simreq *r, const char *type, const char *const *known);
/* Record 400 "This field is required." pointing at /data/attributes/<field>. */
void sim_required(struct simreq *r, const char *field);
/* The same day a year later; the 29th of February becomes the 28th. */
kmday sim_add_year(kmday d);

/* --- collections (simcoll.c) -------------------------------------------------------------- */

struct simfilter;
struct simfrule;

/* The kinds of item a collection endpoint lists, each an array of the account (simdata.h). */
enum simkind { SIMK_CAMPAIGN = 0, SIMK_FLOW, SIMK_ACTION, SIMK_MSG, SIMK_LIST, SIMK_METRIC };

/* Builds the JSON:API resource of item i (a new object); may record an error on r. */
typedef json_object *simcoll_build(struct simreq *r, size_t i);

/* Parse ?filter= and check it against `rules`: 0 with *f (empty when absent; *present says
 * which) that the caller releases with simfilter_free, or -1 after recording a 400 (nothing to
 * release). */
int simcoll_filter(struct simreq *r, const struct simfrule *rules, struct simfilter *f,
                   int *present);
/* The indexes of the items first..first+n of kind k that pass f (NULL: all), in order: a new
 * array the caller frees, never NULL; *out_n of them are used. */
size_t *simcoll_select(struct simreq *r, enum simkind k, size_t first, size_t n,
                       const struct simfilter *f, size_t *out_n);
/* 1 when f has a condition on `field`. */
int simcoll_has_cond(const struct simfilter *f, const char *field);
/* Apply ?sort= (one field of the NULL-terminated `allowed`, '-' for descending; ties keep the
 * item order) to idx[0..n): 0, or -1 after recording a 400. No ?sort=: 0, order unchanged. */
int simcoll_sort(struct simreq *r, enum simkind k, const char *const *allowed, size_t *idx,
                 size_t n);
/* page[size] into *out: `dflt` when absent, else 1..max; 0, or -1 after a 400 (also when
 * max is 0: the endpoint takes no page[size]). */
int simcoll_page_size(struct simreq *r, int dflt, int max, size_t *out);
/* Set r->doc to the page of idx[0..n) that page[cursor] selects, `size` items built by
 * `build`, with the self/next/prev links; on a bad cursor or a build error r->doc stays NULL
 * and the error is recorded once. */
void simcoll_page(struct simreq *r, const size_t *idx, size_t n, size_t size,
                  simcoll_build *build);

/* --- handlers (simapi.c, simreport.c, simagg.c) ------------------------------------------- */

/* The id of a campaign's one campaign message (a second ULID sharing the campaign's
 * timestamp part): what campaigns list under relationships.campaign-messages and what metric
 * aggregates give as the $message of its events. */
void simapi_campaign_message_id(const struct simcampaign *c, char out[28]);

simhandler simapi_accounts, simapi_campaigns, simapi_campaign, simapi_flows, simapi_flow,
    simapi_flow_actions, simapi_flow_action, simapi_action_messages, simapi_flow_message,
    simapi_lists, simapi_list, simapi_metrics, simapi_metric;
simhandler simreport_campaign_values, simreport_flow_values, simreport_flow_series;
simhandler simagg_metric_aggregates;

#endif
