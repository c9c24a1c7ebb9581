/* kl.c — the Klaviyo client: one request state machine (cache, coalescing, rate slots,
 * transfer, retries, error mapping, stale answers) driven by one loop over a curl multi
 * handle, for a single request and for a fan-out alike.
 *
 * A request moves START → (PEER) → SLOT → XFER → DONE:
 *   START  fresh cache hit → DONE; else take the in-flight marker ("l:" + key): held → SLOT,
 *          held by another process or thread → PEER.
 *   PEER   every 25 ms: a fresh entry appeared → DONE; the marker is free → take it → SLOT.
 *   SLOT   take a slot from every bucket the request is charged to (REFERENCE.md §4); a
 *          refusal is waited out only within a short budget, else KM_RATE_LIMITED.
 *   XFER   on the wire; its outcome is DONE, or back to SLOT after a backoff (retry).
 * The loop (run_batch) sleeps at most 50 ms at a time, so cancellation is seen promptly.
 */
#include "kl.h"
#include "metrics.h"
#include "buf.h"
#include "json.h"
#include "log.h"
#include "secret.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define KL_MAX_BODY        ((size_t)16 << 20)  /* cap on one decompressed response */
#define KL_MAX_PAGES       100                 /* links.next guard */
#define KL_MAX_PAR         16                  /* easy handles a fan-out may use at once */
#define KL_CONNECT_MS      5000
#define KL_DEFAULT_WAIT_MS 5000                /* default bound on waiting for a rate slot */
#define KL_PEER_POLL_MS    25                  /* coalescing: how often a waiter looks */
#define KL_TICK_MS         50                  /* longest sleep between cancellation checks */
#define KL_BACKOFF_BASE_MS 500
#define KL_BACKOFF_CAP_MS  30000
#define KL_DAILY_CAP_MS    60000               /* a 429 asking for longer is not slept on */
#define KL_TRANSIT_MS      250                 /* added to every window we charge, see below */
#define KL_PATH_MAX        4096
#define KL_BUCKET_MAX      128
#define KL_MAX_TOLD_S      1e7                 /* a Retry-After past this (~115 days) is read
                                                  as this: it is a refusal, not a wait */
#define KL_FAIL_TTL_S      1                   /* a shared failure is for current waiters */

#define STORE_DEGRADED_WARNING                                                                \
    "The shared store (Redis) is unreachable; answering from fresh Klaviyo calls with a "     \
    "local rate limiter."

struct kmkl {
    const kmcfg *cfg;
    kmstore     *store;
    CURLM       *multi;
    CURL        *easy[KL_MAX_PAR];  /* easy[0] made by kmkl_new; the rest on first fan-out */
    char        *base;              /* KLAVIYO_BASE_URL without a trailing '/' */
    double       scale;             /* RATE_LIMIT_SCALE */
    uint64_t     rng;               /* jitter */
};

/* --- tiers and buckets ----------------------------------------------------------------- */

static const char *const tier_names[KMT_COUNT] = {
    [KMT_REPORTS] = "reports", [KMT_XS] = "XS", [KMT_S] = "S", [KMT_M] = "M", [KMT_L] = "L",
};

/* REFERENCE.md §4: {window seconds, max} for the burst, steady and (reports) daily windows. */
static const struct {
    int nwin;
    struct {
        int64_t s;
        int     max;
    } win[3];
} tier_limits[KMT_COUNT] = {
    [KMT_REPORTS] = { 3, { { 1, 1 }, { 60, 2 }, { 86400, 225 } } },
    [KMT_XS] = { 2, { { 1, 1 }, { 60, 15 } } },
    [KMT_S] = { 2, { { 1, 3 }, { 60, 60 } } },
    [KMT_M] = { 2, { { 1, 10 }, { 60, 150 } } },
    [KMT_L] = { 2, { { 1, 75 }, { 60, 700 } } },
};

static const char *const report_endpoints[] = {
    "campaign-values-reports", "flow-values-reports", "flow-series-reports",
};

/* RATE_LIMIT_SCALE: a float in (0, 1] multiplying every window length, so tests can run a
 * minute's worth of rate limiting in a second (against a simulator scaled the same way).
 * Anything else is 1. Test-only: production leaves it unset. */
static double
scale_from_env(int *bad)
{
    const char *v = getenv("RATE_LIMIT_SCALE");
    char       *end;
    double      s;

    *bad = 0;
    if (!v || !*v)
        return 1.0;
    errno = 0;
    s = strtod(v, &end);
    if (errno || end == v || *end != '\0' || !isfinite(s) || s <= 0.0 || s > 1.0) {
        *bad = 1;
        return 1.0;
    }
    return s;
}

static void
limit_scaled(kmtier t, double scale, kmlimit *out)
{
    memset(out, 0, sizeof(*out));
    if (t < 0 || t >= KMT_COUNT)
        t = KMT_XS;
    out->nwin = tier_limits[t].nwin;
    for (int i = 0; i < out->nwin; i++) {
        double ms = (double)tier_limits[t].win[i].s * 1000.0 * scale;

        out->win[i].window_ms = ms < 1.0 ? 1 : (int64_t)llround(ms);
        out->win[i].max = tier_limits[t].win[i].max;
    }
}

/* The windows a request is charged to: Klaviyo's, scaled, each KL_TRANSIT_MS longer. A slot
 * is taken when the request leaves; Klaviyo counts it when it arrives, and that delay varies
 * (a fresh TLS connection arrives later than a reused one), so two requests a window apart
 * here could land in one of Klaviyo's fixed windows. The allowance absorbs that variation. It
 * is not scaled: network delays do not shrink with RATE_LIMIT_SCALE. */
static void
limit_charged(kmtier t, double scale, kmlimit *out)
{
    limit_scaled(t, scale, out);
    for (int i = 0; i < out->nwin; i++)
        out->win[i].window_ms += KL_TRANSIT_MS;
}

void
kmkl_tier_limit(kmtier t, kmlimit *out)
{
    int bad;

    limit_scaled(t, scale_from_env(&bad), out);
}

const char *
kmkl_tier_name(kmtier t)
{
    if (t < 0 || t >= KMT_COUNT)
        return "unknown";
    return tier_names[t];
}

/* The first path segment after "/api/" (e.g. "lists"), as [*seg, *seg + *len). */
static int
api_segment(const char *path, const char **seg, size_t *len)
{
    if (!path || strncmp(path, "/api/", 5) != 0)
        return 0;
    *seg = path + 5;
    *len = strcspn(*seg, "/?#");
    return *len > 0;
}

static int
seg_is(const char *seg, size_t len, const char *name)
{
    return strlen(name) == len && strncmp(seg, name, len) == 0;
}

/* A GET /api/lists/{id} asking for additional-fields[list]=profile_count (raw or encoded). */
static int
wants_profile_count(const char *path)
{
    const char *q = strchr(path, '?');

    return q && strstr(q, "additional-fields") && strstr(q, "profile_count");
}

kmtier
kmkl_tier(const char *method, const char *path)
{
    const char *seg;
    size_t      len;

    (void)method;
    if (!api_segment(path, &seg, &len))
        return KMT_XS;
    for (size_t i = 0; i < sizeof(report_endpoints) / sizeof(report_endpoints[0]); i++) {
        if (seg_is(seg, len, report_endpoints[i]))
            return KMT_REPORTS;
    }
    if (seg_is(seg, len, "metric-aggregates") || seg_is(seg, len, "flows") ||
        seg_is(seg, len, "flow-actions") || seg_is(seg, len, "flow-messages"))
        return KMT_S;
    if (seg_is(seg, len, "campaigns") || seg_is(seg, len, "metrics"))
        return KMT_M;
    if (seg_is(seg, len, "lists"))
        return wants_profile_count(path) ? KMT_XS : KMT_L;
    /* /api/accounts, and anything not in REFERENCE.md §4: the strictest ordinary tier */
    return KMT_XS;
}

struct bucket {
    char    name[KL_BUCKET_MAX];
    kmlimit lim;
};

/* The buckets a request is charged to. Reports: "<acct>:<endpoint>"; other tiers
 * "<acct>:<tier>"; a profile_count lookup "<acct>:L" and "<acct>:profile_count" (XS) — the
 * loosest first: after a refusal every bucket is taken again (a recorded slot must match the
 * moment the request leaves), so only slots of the cheap bucket are ever spent in vain. */
static int
buckets_of(double scale, const char *acct, const char *method, const char *path,
           struct bucket *b)
{
    kmtier      t = kmkl_tier(method, path);
    const char *seg = "";
    size_t      len = 0;

    if (t == KMT_REPORTS) {
        api_segment(path, &seg, &len);
        snprintf(b[0].name, sizeof(b[0].name), "%s:%.*s", acct, (int)len, seg);
        limit_charged(KMT_REPORTS, scale, &b[0].lim);
        return 1;
    }
    if (t == KMT_XS && api_segment(path, &seg, &len) && seg_is(seg, len, "lists")) {
        snprintf(b[0].name, sizeof(b[0].name), "%s:%s", acct, tier_names[KMT_L]);
        limit_charged(KMT_L, scale, &b[0].lim);
        snprintf(b[1].name, sizeof(b[1].name), "%s:profile_count", acct);
        limit_charged(KMT_XS, scale, &b[1].lim);
        return 2;
    }
    snprintf(b[0].name, sizeof(b[0].name), "%s:%s", acct, tier_names[t]);
    limit_charged(t, scale, &b[0].lim);
    return 1;
}

/* --- small helpers ----------------------------------------------------------------------- */

/* Uniform in [0, n] (n >= 0). xorshift64*: jitter needs spread, not secrecy. */
static int64_t
rand_upto(kmkl *kl, int64_t n)
{
    uint64_t x = kl->rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    kl->rng = x;
    if (n <= 0)
        return 0;
    return (int64_t)((x * 0x2545F4914F6CDD1DULL) % (uint64_t)(n + 1));
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts;

    if (ms <= 0)
        return;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
is_cancelled(const kmkl_call *call)
{
    return call->cancelled && atomic_load(call->cancelled);
}

static int
secs_up(int64_t ms)
{
    if (ms <= 0)
        return 1;
    if (ms > (int64_t)INT32_MAX * 1000)
        return INT32_MAX;
    return (int)((ms + 999) / 1000);
}

/* Paths go into a URL as they are: they must be ours ("/api/…"), printable, without
 * spaces, fragments or dot segments (ids were validated by the caller; this is the net). */
static int
path_ok(const char *path)
{
    size_t n;

    if (!path || strncmp(path, "/api/", 5) != 0)
        return 0;
    n = strlen(path);
    if (n >= KL_PATH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];

        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\')
            return 0;
    }
    n = strcspn(path, "?");
    for (size_t i = 0; i + 1 < n; i++) {
        if (path[i] == '/' && path[i + 1] == '.' &&
            (i + 2 >= n || path[i + 2] == '/' || (path[i + 2] == '.' &&
                                                   (i + 3 >= n || path[i + 3] == '/'))))
            return 0;
    }
    return 1;
}

static void
add_warning(kmkl_call *call, const char *text)
{
    size_t n;

    call->degraded = 1;
    if (!call->warnings)
        return;
    n = json_object_array_length(call->warnings);
    for (size_t i = 0; i < n; i++) {
        const char *w = json_object_get_string(json_object_array_get_idx(call->warnings, i));

        if (w && strcmp(w, text) == 0)
            return;
    }
    json_object_array_add(call->warnings, json_object_new_string(text));
}

/* --- one request ------------------------------------------------------------------------- */

enum phase { PH_START, PH_PEER, PH_SLOT, PH_XFER, PH_DONE };

/* Why the last attempt failed, for the retry decision and the stale fallback. */
enum cause { C_NONE, C_THROTTLED, C_SERVER, C_TIMEOUT, C_TRANSPORT, C_BUDGET, C_MALFORMED,
             C_TRUNCATED };

struct req {
    /* what */
    const char        *method;
    char              *path;
    char              *body;        /* POST text, or NULL */
    size_t             body_len;
    char               key[KL_BUCKET_MAX + 24];   /* cache key, "" when caching is off */
    char               mark[KL_BUCKET_MAX + 26];  /* in-flight marker "l:" + key */
    char               failkey[KL_BUCKET_MAX + 26];  /* shared failure "f:" + key */
    struct bucket      b[2];
    int                nb;

    /* where it is */
    enum phase         ph;
    int64_t            not_before;  /* km_now_ms(): nothing happens to it before this */
    int64_t            slot_since;  /* when a bucket first refused this attempt, or 0 */
    int                attempt;     /* network attempts made */
    int                locked;      /* holds the in-flight marker */
    int64_t            peer_since;  /* when it began waiting for another fetcher, or 0 */
    int                share;       /* its failure is Klaviyo's answer: waiters may take it */

    /* the transfer */
    CURL              *h;
    struct curl_slist *hdrs;        /* holds the key: freed as soon as the transfer ends */
    kmbuf              resp;
    int                too_big;
    int                deadline_bound;  /* this attempt's timeout is the call's deadline */
    double             retry_after_s;   /* from the response headers; < 0 when absent */
    double             reset_s;
    int64_t            sent_ms;

    /* how it ended */
    enum cause         cause;
    CURLcode           last_cc;     /* the last transport failure, for the message */
    json_object       *doc;
    kmcode             rc;
    kmerr              err;
};

/* The cache key of a request into out: "c:<account>:<FNV-1a 64 of revision, method, path,
 * body>". 0 (out empty) when caching is off. */
static int
cache_key(const kmkl *kl, const char *acct, const char *method, const char *path,
          const char *body, char *out, size_t size)
{
    uint64_t    h = KM_FNV64_INIT;
    const char *rev = kl->cfg->klaviyo_revision ? kl->cfg->klaviyo_revision : "";

    out[0] = '\0';
    if (kl->cfg->cache_ttl_s <= 0)
        return 0;
    /* the revision shapes the answer, so it is part of what is asked */
    h = km_fnv1a64(h, rev, strlen(rev) + 1);
    h = km_fnv1a64(h, method, strlen(method) + 1);
    h = km_fnv1a64(h, path, strlen(path) + 1);
    if (body)
        h = km_fnv1a64(h, body, strlen(body));
    snprintf(out, size, "c:%s:%016llx", acct, (unsigned long long)h);
    return 1;
}

static void
req_init(struct req *r, const kmkl *kl, const kmkl_call *call, const char *method,
         const char *path, const char *body)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->path = km_xstrdup(path);
    if (body) {
        r->body = km_xstrdup(body);
        r->body_len = strlen(body);
    }
    r->nb = buckets_of(kl->scale, call->acct->name, method, path, r->b);
    kmbuf_init(&r->resp, KL_MAX_BODY);
    r->retry_after_s = -1;
    r->reset_s = -1;
    if (cache_key(kl, call->acct->name, method, path, body, r->key, sizeof(r->key))) {
        snprintf(r->mark, sizeof(r->mark), "l:%s", r->key);
        snprintf(r->failkey, sizeof(r->failkey), "f:%s", r->key);
    }
}

static void
req_free(struct req *r)
{
    free(r->path);
    free(r->body);
    kmbuf_free(&r->resp);
    curl_slist_free_all(r->hdrs);
    json_object_put(r->doc);
    kmerr_clear(&r->err);
}

/* The path for logs: no query string (its values are ids and dates, but need not be there). */
static json_object *
log_path(const char *path)
{
    return json_object_new_string_len(path, (int)strcspn(path, "?"));
}

static void
release_mark(kmkl *kl, struct req *r)
{
    kmerr e = { 0 };

    if (!r->locked)
        return;
    r->locked = 0;
    if (kmstore_unlock(kl->store, r->mark, &e) != KM_OK)
        kmlogf(KMLOG_WARN, "klaviyo_unlock_failed", "releasing an in-flight marker: %s", e.msg);
    kmerr_clear(&e);
}

static void
finish(kmkl *kl, kmkl_call *call, struct req *r, kmcode rc)
{
    r->rc = rc;
    if (rc != KM_OK) {
        json_object_put(r->doc);
        r->doc = NULL;
    }
    r->ph = PH_DONE;
    release_mark(kl, r);
    if (kmstore_degraded(kl->store))
        add_warning(call, STORE_DEGRADED_WARNING);
}

/* A fresh (want_stale 0) or any (want_stale 1) cache entry, parsed. 1 when found. */
static int
cache_lookup(kmkl *kl, struct req *r, int want_stale, json_object **doc, int64_t *age_ms)
{
    char   *body = NULL;
    size_t  len = 0;
    int     fresh = 0;
    kmerr   e = { 0 };
    kmcode  rc;
    int     found = 0;

    *doc = NULL;
    if (!r->key[0])
        return 0;
    rc = kmstore_cache_get(kl->store, r->key, &body, &len, age_ms, &fresh, &e);
    if (rc == KM_OK && (fresh || want_stale)) {
        if (kmjson_parse(body, len, KM_UPSTREAM_ERROR, doc, NULL) == KM_OK &&
            json_object_is_type(*doc, json_type_object))
            found = 1;
        else {
            json_object_put(*doc);
            *doc = NULL;
        }
    } else if (rc != KM_OK && rc != KM_NOT_FOUND) {
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "cache read failed: %s", e.msg);
    }
    free(body);
    kmerr_clear(&e);
    return found;
}

static void
cache_hit(kmkl *kl, kmkl_call *call, struct req *r, json_object *doc, int64_t age_ms)
{
    r->doc = doc;
    call->cache_hits++;
    if (age_ms > call->oldest_ms)
        call->oldest_ms = age_ms;
    kmmet_cache(KMMET_CACHE_HIT);
    finish(kl, call, r, KM_OK);
}

/* The fetcher's failure, for the requests waiting on its marker (defect: identical failing
 * calls were serialized, each waiter fetching again after the one before it failed). Stored
 * under "f:" + key just before the marker is released: {code, message, retry_after_s, stale}
 * where stale says whether the cause allows an expired answer. Only failures that are
 * Klaviyo's answer are shared (r->share), never this call's own deadline or cancellation. */
static void
share_failure(kmkl *kl, const struct req *r, kmcode rc)
{
    json_object *o;
    const char  *text;
    kmerr        e = { 0 };

    if (!r->share || !r->locked || !r->failkey[0] || r->attempt == 0)
        return;
    o = json_object_new_object();
    json_object_object_add(o, "code", json_object_new_string(kmerr_name(rc)));
    json_object_object_add(o, "message", json_object_new_string(r->err.msg));
    json_object_object_add(o, "retry_after_s", json_object_new_int(r->err.retry_after_s));
    json_object_object_add(o, "stale", json_object_new_boolean(r->cause != C_NONE));
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (kmstore_cache_put(kl->store, r->failkey, text, strlen(text), KL_FAIL_TTL_S, &e) != KM_OK)
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "sharing a failure failed: %s", e.msg);
    kmerr_clear(&e);
    json_object_put(o);
}

/* A failure shared by the fetcher this request has been waiting on since r->peer_since: 1
 * with r->err filled and *stale set, else 0 (none, or one from before this wait began). */
static int
shared_failure(kmkl *kl, struct req *r, int64_t now, int *stale)
{
    char        *body = NULL;
    size_t       len = 0;
    int64_t      age_ms = 0;
    int          fresh = 0, found = 0;
    json_object *o = NULL;
    kmerr        e = { 0 };
    kmcode       code;
    const char  *msg;

    if (!r->failkey[0] || r->peer_since == 0 ||
        kmstore_cache_get(kl->store, r->failkey, &body, &len, &age_ms, &fresh, &e) != KM_OK)
        goto out;
    if (now - age_ms < r->peer_since)
        goto out;  /* an earlier failure: not the one this request waited for */
    if (kmjson_parse(body, len, KM_UPSTREAM_ERROR, &o, NULL) != KM_OK)
        goto out;
    code = kmerr_from_name(kmjson_str(o, "code"));
    msg = kmjson_str(o, "message");
    if (code == KM_CODE_COUNT || code == KM_OK || !msg)
        goto out;
    kmerr_set(&r->err, code, "%s", msg);
    r->err.retry_after_s = (int)kmjson_num(o, "retry_after_s", 0);
    *stale = json_object_get_boolean(kmjson_get(o, "stale"));
    found = 1;
out:
    json_object_put(o);
    free(body);
    kmerr_clear(&e);
    return found;
}

/* A final failure. When the cause is one Klaviyo (or the budget) may get over and an expired
 * answer is still kept, that answer is returned with a warning naming its age. */
static void
fail(kmkl *kl, kmkl_call *call, struct req *r, kmcode rc)
{
    json_object *doc;
    int64_t      age_ms = 0;

    share_failure(kl, r, rc);
    if (r->cause != C_NONE && cache_lookup(kl, r, 1, &doc, &age_ms)) {
        char w[256];

        snprintf(w, sizeof(w),
                 "Klaviyo is unavailable (%s); this answer is from the cache and is %lld "
                 "seconds old.", kmerr_name(rc), (long long)(age_ms / 1000));
        add_warning(call, w);
        kmlogf(KMLOG_WARN, "klaviyo_stale_answer", "account '%s': %s; serving a cached answer "
               "%lld s old", call->acct->name, kmerr_name(rc), (long long)(age_ms / 1000));
        kmmet_cache(KMMET_CACHE_STALE);
        r->doc = doc;
        kmerr_clear(&r->err);
        finish(kl, call, r, KM_OK);
        return;
    }
    r->err.code = rc;
    finish(kl, call, r, rc);
}

/* START and PEER: the cache and the in-flight marker. */
static void
step_cache(kmkl *kl, kmkl_call *call, struct req *r, int64_t now)
{
    json_object *doc;
    int64_t      age;
    int          acquired = 0;
    kmerr        e = { 0 };
    int          ttl_ms;

    if (!r->key[0]) {
        r->ph = PH_SLOT;
        return;
    }
    if (cache_lookup(kl, r, 0, &doc, &age)) {
        cache_hit(kl, call, r, doc, age);
        return;
    }
    if (r->ph == PH_PEER) {
        int stale = 0;

        if (shared_failure(kl, r, now, &stale)) {
            kmcode rc = r->err.code;

            r->cause = stale ? C_SERVER : C_NONE;
            fail(kl, call, r, rc);
            return;
        }
    }
    if (r->ph == PH_PEER && call->deadline_ms > 0 && now >= call->deadline_ms) {
        kmerr_set(&r->err, KM_UPSTREAM_TIMEOUT, "the call's deadline (REQUEST_DEADLINE_SECONDS) "
                  "passed while an "
                  "identical Klaviyo request was in progress");
        fail(kl, call, r, KM_UPSTREAM_TIMEOUT);
        return;
    }
    /* the marker outlives one attempt's timeout only if the fetcher died: then it frees */
    ttl_ms = kl->cfg->klaviyo_timeout_s > 0 ? kl->cfg->klaviyo_timeout_s * 1000 : 30000;
    if (kmstore_lock(kl->store, r->mark, ttl_ms, &acquired, &e) != KM_OK) {
        /* no coalescing without a working marker; the request still goes out */
        kmlogf(KMLOG_WARN, "klaviyo_marker_unavailable", "in-flight marker failed: %s", e.msg);
        kmerr_clear(&e);
        kmmet_cache(KMMET_CACHE_MISS);
        r->ph = PH_SLOT;
        return;
    }
    if (!acquired) {
        if (r->ph != PH_PEER) {
            kmmet_coalesced();
            r->peer_since = now;
        }
        r->ph = PH_PEER;
        r->not_before = now + KL_PEER_POLL_MS;
        return;
    }
    r->locked = 1;
    /* the previous holder may have stored its answer between our look and our lock */
    if (cache_lookup(kl, r, 0, &doc, &age)) {
        cache_hit(kl, call, r, doc, age);
        return;
    }
    kmmet_cache(KMMET_CACHE_MISS);
    r->ph = PH_SLOT;
}

/* SLOT: a slot from every bucket, all taken in one step right before the request leaves.
 * 1 when all are held (ready to send). */
static int
step_slot(kmkl *kl, kmkl_call *call, struct req *r, int64_t now)
{
    int64_t budget = call->max_wait_ms > 0 ? call->max_wait_ms : KL_DEFAULT_WAIT_MS;

    if (call->deadline_ms > 0 && now >= call->deadline_ms) {
        kmerr_set(&r->err, KM_UPSTREAM_TIMEOUT, "the call's deadline (REQUEST_DEADLINE_SECONDS) "
                  "passed before Klaviyo "
                  "answered");
        r->cause = r->attempt > 0 ? C_TIMEOUT : C_NONE;
        fail(kl, call, r, KM_UPSTREAM_TIMEOUT);
        return 0;
    }
    for (int i = 0; i < r->nb; i++) {
        int64_t wait = 0;
        kmerr   e = { 0 };
        kmcode  rc;

        rc = kmstore_take(kl->store, r->b[i].name, &r->b[i].lim, &wait, &e);
        if (rc == KM_OK) {
            kmerr_clear(&e);
            continue;
        }
        if (rc != KM_RATE_LIMITED) {
            kmerr_copy(&r->err, &e);
            kmerr_clear(&e);
            fail(kl, call, r, rc);
            return 0;
        }
        kmerr_clear(&e);
        /* slots already taken in this step are spent; next time all are taken again */
        if (wait < 1)
            wait = 1;
        if (r->slot_since == 0)
            r->slot_since = now;
        if (now - r->slot_since + wait > budget ||
            (call->deadline_ms > 0 && now + wait > call->deadline_ms)) {
            kmerr_set(&r->err, KM_RATE_LIMITED, "Klaviyo's rate limit for account '%s' "
                      "(%s requests) is used up; try again in %d s", call->acct->name,
                      kmkl_tier_name(kmkl_tier(r->method, r->path)), secs_up(wait));
            r->err.retry_after_s = secs_up(wait);
            r->cause = C_BUDGET;
            fail(kl, call, r, KM_RATE_LIMITED);
            return 0;
        }
        r->not_before = now + wait;
        return 0;
    }
    return 1;
}

/* --- the transfer ------------------------------------------------------------------------ */

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;

    if (kmbuf_append(&r->resp, p, size * n) != 0) {
        r->too_big = 1;
        return 0;  /* CURLE_WRITE_ERROR */
    }
    return size * n;
}

/* A header's number: Retry-After is seconds (fractions allowed, for a time-scaled fake);
 * RateLimit-Reset's leading integer is the seconds until its window resets. */
double
kmkl_header_seconds(const char *v, size_t n)
{
    char   tmp[32];
    char  *end;
    double d;

    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    errno = 0;
    d = strtod(tmp, &end);
    if (errno == ERANGE && end != tmp && d > 0)
        return KL_MAX_TOLD_S;  /* too large to hold: as long as we ever read */
    if (errno || end == tmp || !isfinite(d) || d < 0)
        return -1;
    /* 99999999999999999999 s would overflow the milliseconds it becomes (and once read as
     * about one second): anything past the bound is the bound, a refusal to come back soon */
    return d > KL_MAX_TOLD_S ? KL_MAX_TOLD_S : d;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t      len = size * n;

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue): forget the previous one's headers */
        r->retry_after_s = -1;
        r->reset_s = -1;
        return len;
    }
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        r->retry_after_s = kmkl_header_seconds(p + 12, len - 12);
    else if (len > 16 && strncasecmp(p, "RateLimit-Reset:", 16) == 0) {
        size_t m = 16;

        while (m < len && p[m] != ',')
            m++;
        r->reset_s = kmkl_header_seconds(p + 16, m - 16);
    }
    return size * n;
}

static CURL *
free_handle(kmkl *kl, const struct req *rs, size_t n)
{
    for (int i = 0; i < KL_MAX_PAR; i++) {
        int busy = 0;

        if (!kl->easy[i]) {
            kl->easy[i] = curl_easy_init();
            return kl->easy[i];
        }
        for (size_t j = 0; j < n && !busy; j++)
            busy = rs[j].ph == PH_XFER && rs[j].h == kl->easy[i];
        if (!busy)
            return kl->easy[i];
    }
    return NULL;
}

static kmcode
start_xfer(kmkl *kl, kmkl_call *call, struct req *r, CURL *h, int64_t now)
{
    int64_t     timeout = (int64_t)kl->cfg->klaviyo_timeout_s * 1000;
    char       *url, *auth, *rev;
    const char *key = kmsecret_reveal(call->acct->api_key);
    CURLcode    cc;

    if (timeout <= 0)
        timeout = 30000;
    r->deadline_bound = 0;
    if (call->deadline_ms > 0 && call->deadline_ms - now < timeout) {
        timeout = call->deadline_ms - now;
        r->deadline_bound = 1;
    }
    if (timeout < 1)
        timeout = 1;

    curl_easy_reset(h);
    url = km_xasprintf("%s%s", kl->base, r->path);
    cc = curl_easy_setopt(h, CURLOPT_URL, url);
    free(url);
    if (cc != CURLE_OK)
        return kmerr_set(&r->err, KM_INTERNAL_ERROR, "the Klaviyo URL was refused");

    /* the key goes only into this list, which is freed as soon as the transfer ends */
    auth = km_xasprintf("Authorization: Klaviyo-API-Key %s", key ? key : "");
    r->hdrs = curl_slist_append(r->hdrs, auth);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    rev = km_xasprintf("revision: %s", kl->cfg->klaviyo_revision);
    r->hdrs = curl_slist_append(r->hdrs, rev);
    free(rev);
    r->hdrs = curl_slist_append(r->hdrs, "Accept: application/vnd.api+json");
    if (r->body)
        r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/vnd.api+json");
    r->hdrs = curl_slist_append(r->hdrs, "Expect:");
    if (!r->hdrs)
        return kmerr_set(&r->err, KM_INTERNAL_ERROR, "could not build the request headers");

    curl_easy_setopt(h, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "klaviyo-mcp/" PACKAGE_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < KL_CONNECT_MS ? timeout
                                                                                 : KL_CONNECT_MS));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KL_MAX_BODY);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)r);
    if (r->body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }

    kmbuf_reset(&r->resp);
    r->too_big = 0;
    r->retry_after_s = -1;
    r->reset_s = -1;
    r->h = h;
    r->sent_ms = now;
    if (curl_multi_add_handle(kl->multi, h) != CURLM_OK) {
        curl_slist_free_all(r->hdrs);
        r->hdrs = NULL;
        r->h = NULL;
        return kmerr_set(&r->err, KM_INTERNAL_ERROR, "could not start a Klaviyo request");
    }
    r->ph = PH_XFER;
    r->attempt++;
    return KM_OK;
}

/* Detach the handle and drop the key-bearing header list. */
static void
end_xfer(kmkl *kl, struct req *r)
{
    if (!r->h)
        return;
    curl_multi_remove_handle(kl->multi, r->h);
    curl_easy_setopt(r->h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(r->hdrs);
    r->hdrs = NULL;
    r->h = NULL;
}

/* Klaviyo's errors[0] (REFERENCE.md §3) as "detail (at pointer)", redacted; "" when the
 * body is not a JSON:API error document (an HTML page from Cloudflare, say). */
void
kmkl_error_detail(const char *body, size_t len, char *out, size_t size, double *expected_s)
{
    json_object *doc = NULL, *errs, *e0, *src;
    const char  *detail, *ptr, *param;
    char        *clean, *raw;

    out[0] = '\0';
    if (expected_s)
        *expected_s = -1;
    if (!body || len == 0 || kmjson_parse(body, len, KM_UPSTREAM_ERROR, &doc, NULL) != KM_OK)
        return;
    errs = kmjson_get(doc, "errors");
    e0 = json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0
             ? json_object_array_get_idx(errs, 0)
             : NULL;
    if (!json_object_is_type(e0, json_type_object)) {
        json_object_put(doc);
        return;
    }
    detail = kmjson_str(e0, "detail");
    if (!detail)
        detail = kmjson_str(e0, "title");
    src = kmjson_get(e0, "source");
    ptr = kmjson_str(src, "pointer");
    param = kmjson_str(src, "parameter");
    if (!detail) {
        json_object_put(doc);
        return;
    }
    if (expected_s) {
        const char *p = strstr(detail, "Expected available in ");

        if (p)
            *expected_s = kmkl_header_seconds(p + 22, strcspn(p + 22, " "));
    }
    if (ptr && *ptr)
        raw = km_xasprintf("%.180s (at %.60s)", detail, ptr);
    else if (param && *param)
        raw = km_xasprintf("%.180s (parameter %.60s)", detail, param);
    else
        raw = km_xasprintf("%.200s", detail);
    clean = kmsecret_redact(raw);
    km_strlcpy(out, clean, size);
    free(clean);
    free(raw);
    json_object_put(doc);
}

static const char *
cause_text(enum cause c)
{
    switch (c) {
    case C_THROTTLED:
        return "throttled by Klaviyo";
    case C_SERVER:
        return "Klaviyo server error";
    case C_TIMEOUT:
        return "no answer in time";
    case C_TRANSPORT:
        return "connection failed";
    case C_MALFORMED:
        return "answer was not JSON";
    case C_TRUNCATED:
        return "answer was cut short";
    default:
        return "failed";
    }
}

/* The wait before retrying after `c`. Klaviyo's own word wins (Retry-After, then for 429
 * RateLimit-Reset and the "Expected available in N second(s)" detail); otherwise
 * exponential backoff with full jitter. *told is 1 when Klaviyo said how long. */
static int64_t
retry_wait(kmkl *kl, const struct req *r, enum cause c, double expected_s, int *told)
{
    double  s = -1;
    int64_t ceiling;

    if (r->retry_after_s >= 0)
        s = r->retry_after_s;
    else if (c == C_THROTTLED && r->reset_s > 0)
        s = r->reset_s;
    else if (c == C_THROTTLED && expected_s >= 0)
        s = expected_s;
    *told = s >= 0;
    if (*told) {
        int64_t ms = (int64_t)ceil(s * 1000.0);

        /* a little spread so that waiters do not all come back on the same millisecond */
        return ms + rand_upto(kl, ms / 10 < 250 ? ms / 10 : 250);
    }
    ceiling = KL_BACKOFF_BASE_MS;
    for (int i = 1; i < r->attempt && ceiling < KL_BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > KL_BACKOFF_CAP_MS)
        ceiling = KL_BACKOFF_CAP_MS;
    return rand_upto(kl, ceiling);
}

static void
progress(kmkl_call *call)
{
    int total = call->calls_total;

    call->calls_done++;
    /* every progress report carries a total: before the tool has planned its calls it is
     * "at least one more" (the total may grow; it never falls below what is done) */
    if (total < call->calls_done)
        total = total > 0 ? call->calls_done : call->calls_done + 1;
    if (call->progress)
        call->progress(call->progress_arg, call->calls_done, total);
}

/* What went wrong on the wire, for a person: DNS, refused, TLS, timeout or a dropped
 * connection, then libcurl's own words (which never hold a header or a key). */
static void
transport_cause(CURLcode cc, char *buf, size_t cap)
{
    const char *what;

    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        what = "DNS lookup failed";
        break;
    case CURLE_COULDNT_CONNECT:
        what = "connection refused or host unreachable";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        what = "TLS failed";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        what = "timeout";
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        what = "the connection was dropped";
        break;
    default:
        what = "transport error";
        break;
    }
    snprintf(buf, cap, "%s (%s)", what, curl_easy_strerror(cc));
}

/* The message of a final failure of cause c. */
static kmcode
final_error(kmkl *kl, const kmkl_call *call, struct req *r, enum cause c, long status,
            const char *detail, int64_t wait_ms)
{
    int tries = r->attempt;

    switch (c) {
    case C_THROTTLED:
        r->err.retry_after_s = secs_up(wait_ms);
        return kmerr_set(&r->err, KM_RATE_LIMITED, "Klaviyo is throttling account '%s' "
                         "(%d attempt%s); try again in %d s", call->acct->name, tries,
                         tries == 1 ? "" : "s", r->err.retry_after_s);
    case C_TIMEOUT:
        return kmerr_set(&r->err, KM_UPSTREAM_TIMEOUT, "Klaviyo did not answer in time "
                         "(%d attempt%s, %d s each at most)", tries, tries == 1 ? "" : "s",
                         kl->cfg->klaviyo_timeout_s);
    case C_SERVER:
        return kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo had a server error "
                         "(%d attempt%s)%s%s", tries, tries == 1 ? "" : "s",
                         detail[0] ? ": " : "", detail);
    case C_MALFORMED:
        return kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo's answer was not a JSON document "
                         "(%d attempt%s)", tries, tries == 1 ? "" : "s");
    case C_TRUNCATED:
        return kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo's answer was cut short "
                         "(%d attempt%s)", tries, tries == 1 ? "" : "s");
    case C_TRANSPORT:
    default: {
        char why[160];
        (void)status;
        transport_cause(r->last_cc, why, sizeof(why));
        return kmerr_set(&r->err, KM_UPSTREAM_ERROR, "could not reach Klaviyo (%d attempt%s): "
                         "%s", tries, tries == 1 ? "" : "s", why);
    }
    }
}

static void
log_request(const kmkl_call *call, const struct req *r, long status, const char *outcome,
            int64_t now)
{
    json_object *f;

    if (!kmlog_enabled(KMLOG_DEBUG))
        return;
    f = json_object_new_object();
    json_object_object_add(f, "account", json_object_new_string(call->acct->name));
    json_object_object_add(f, "method", json_object_new_string(r->method));
    json_object_object_add(f, "path", log_path(r->path));
    json_object_object_add(f, "status", json_object_new_int((int)status));
    json_object_object_add(f, "outcome", json_object_new_string(outcome));
    json_object_object_add(f, "attempt", json_object_new_int(r->attempt));
    json_object_object_add(f, "ms", json_object_new_int64(now - r->sent_ms));
    json_object_object_add(f, "bytes", json_object_new_int64((int64_t)r->resp.len));
    kmlog(KMLOG_DEBUG, "klaviyo_request", f);
}

static void
log_retry(const kmkl_call *call, const struct req *r, enum cause c, long status, int64_t wait)
{
    json_object *f = json_object_new_object();

    json_object_object_add(f, "account", json_object_new_string(call->acct->name));
    json_object_object_add(f, "method", json_object_new_string(r->method));
    json_object_object_add(f, "path", log_path(r->path));
    json_object_object_add(f, "attempt", json_object_new_int(r->attempt));
    json_object_object_add(f, "reason", json_object_new_string(cause_text(c)));
    if (status > 0)
        json_object_object_add(f, "status", json_object_new_int((int)status));
    json_object_object_add(f, "wait_ms", json_object_new_int64(wait));
    kmlog(KMLOG_WARN, "klaviyo_retry", f);
}

/* A 2xx: the document, cached when caching is on. -1 when it is not a JSON object (a proxy's
 * page, a body cut short): the caller retries it like a server error. */
static int
on_success(kmkl *kl, kmkl_call *call, struct req *r)
{
    json_object *doc = NULL;
    kmerr        e = { 0 };

    if (kmjson_parse(r->resp.data ? r->resp.data : "", r->resp.len, KM_UPSTREAM_ERROR, &doc,
                     &e) != KM_OK || !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        kmerr_clear(&e);
        return -1;
    }
    if (r->key[0] &&
        kmstore_cache_put(kl->store, r->key, r->resp.data, r->resp.len, kl->cfg->cache_ttl_s,
                          &e) != KM_OK)
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "cache write failed: %s", e.msg);
    kmerr_clear(&e);
    r->doc = doc;
    finish(kl, call, r, KM_OK);
    return 0;
}

/* Metrics: the request by tier and status, and for a reports request the budget left. */
static void
count_request(kmkl *kl, const kmkl_call *call, const struct req *r, long status)
{
    kmtier  t = kmkl_tier(r->method, r->path);
    int     left = 0;
    int64_t reset = 0;
    kmerr   e = { 0 };

    kmmet_klaviyo((int)t, status);
    if (t == KMT_REPORTS && kmkl_report_budget(kl, call->acct, &left, &reset, &e) == KM_OK)
        kmmet_report_budget(call->acct->name, left);
    kmerr_clear(&e);
}

/* The transfer of r ended with cc: success, a final error, or a retry after a wait. */
static void
on_done(kmkl *kl, kmkl_call *call, struct req *r, CURLcode cc)
{
    long       status = 0;
    int64_t    now = km_now_ms(), wait;
    enum cause c = C_NONE;
    char       detail[256];
    double     expected_s = -1;
    int        told = 0;
    kmcode     code;

    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &status);
    end_xfer(kl, r);
    count_request(kl, call, r, cc == CURLE_OK ? status : 0);
    progress(call);
    r->slot_since = 0;
    r->share = 1;  /* whatever ends here is Klaviyo's answer, unless said otherwise below */
    detail[0] = '\0';

    if (cc != CURLE_OK) {
        log_request(call, r, status, "transport", now);
        r->last_cc = cc;
        if (r->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo's answer was larger than %zu MB",
                      KL_MAX_BODY >> 20);
            fail(kl, call, r, KM_UPSTREAM_ERROR);
            return;
        }
        switch (cc) {
        case CURLE_OPERATION_TIMEDOUT:
            c = C_TIMEOUT;
            break;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
            c = C_TRANSPORT;
            break;
        case CURLE_PARTIAL_FILE:
            c = C_TRUNCATED;
            break;
        default: {
            char why[160];
            transport_cause(cc, why, sizeof(why));
            kmlogf(KMLOG_WARN, "klaviyo_transport_error", "account '%s' %s: %s",
                   call->acct->name, r->method, why);
            kmerr_set(&r->err, KM_UPSTREAM_ERROR, "could not talk to Klaviyo: %s", why);
            fail(kl, call, r, KM_UPSTREAM_ERROR);
            return;
        }
        }
        if (c == C_TIMEOUT && r->deadline_bound) {
            r->cause = C_TIMEOUT;
            r->share = 0;  /* this call's deadline, not Klaviyo's answer */
            kmerr_set(&r->err, KM_UPSTREAM_TIMEOUT, "the call's deadline "
                      "(REQUEST_DEADLINE_SECONDS) passed before "
                      "Klaviyo answered");
            fail(kl, call, r, KM_UPSTREAM_TIMEOUT);
            return;
        }
    } else {
        log_request(call, r, status, status >= 200 && status < 300 ? "ok" : "http_error", now);
        if (status >= 200 && status < 300 && on_success(kl, call, r) == 0)
            return;
        kmkl_error_detail(r->resp.data, r->resp.len, detail, sizeof(detail), &expected_s);
        if (status >= 200 && status < 300)
            c = C_MALFORMED;
        else if (status == 429)
            c = C_THROTTLED;
        else if (status >= 500)
            c = C_SERVER;
        else if (status == 401 || status == 403) {
            /* 401: the key itself; 403: a key without the endpoint's scope. klaviyo_status
             * lets a caller (klaviyo-mcp-admin check --api) tell them apart. */
            if (status == 403)
                kmerr_set(&r->err, KM_INVALID_API_KEY, "the API key of account '%s' lacks a "
                          "scope this needs%s%s", call->acct->name, detail[0] ? ": " : "",
                          detail);
            else
                kmerr_set(&r->err, KM_INVALID_API_KEY, "Klaviyo rejected the API key for "
                          "account '%s'%s%s", call->acct->name, detail[0] ? ": " : "", detail);
            kmerr_detail(&r->err, "klaviyo_status", json_object_new_int((int)status));
            fail(kl, call, r, KM_INVALID_API_KEY);
            return;
        } else if (status == 404) {
            kmerr_set(&r->err, KM_NOT_FOUND, "Klaviyo has no such resource%s%s",
                      detail[0] ? ": " : "", detail);
            fail(kl, call, r, KM_NOT_FOUND);
            return;
        } else if (status >= 400) {
            kmerr_set(&r->err, KM_INVALID_ARGUMENT, "Klaviyo rejected the request: %s",
                      detail[0] ? detail : "no reason given");
            fail(kl, call, r, KM_INVALID_ARGUMENT);
            return;
        } else {
            kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo gave an unexpected answer");
            fail(kl, call, r, KM_UPSTREAM_ERROR);
            return;
        }
    }

    /* retryable: throttled, server error, a 2xx that is not JSON or cut short, timeout,
     * connection failure */
    r->cause = c;
    wait = retry_wait(kl, r, c, expected_s, &told);
    if (told && wait > KL_DAILY_CAP_MS) {
        /* a daily cap (or a 5xx asking for hours): say when instead of sleeping */
        code = final_error(kl, call, r, c, status, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    if (r->attempt > kl->cfg->max_retries) {
        code = final_error(kl, call, r, c, status, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    if (call->deadline_ms > 0 && now + wait >= call->deadline_ms) {
        /* the wait would end past the deadline: fail now (a 429 says when to come back) */
        code = final_error(kl, call, r, c, status, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    log_retry(call, r, c, status, wait);
    r->not_before = now + wait;
    r->share = 0;  /* what ends the next attempt decides */
    r->ph = PH_SLOT;
}

/* --- the loop ---------------------------------------------------------------------------- */

static void
abort_all(kmkl *kl, kmkl_call *call, struct req *rs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct req *r = &rs[i];

        if (r->ph == PH_DONE)
            continue;
        end_xfer(kl, r);
        kmerr_set(&r->err, KM_CANCELLED, "the call was cancelled");
        r->cause = C_NONE;
        finish(kl, call, r, KM_CANCELLED);
    }
}

/* Drive rs[0..n) to PH_DONE with at most max_par transfers at once. Returns KM_CANCELLED
 * when the call was cancelled (every unfinished request is then cancelled too), else KM_OK;
 * each request carries its own result. */
static kmcode
run_batch(kmkl *kl, kmkl_call *call, struct req *rs, size_t n, int max_par, kmerr *err)
{
    int inflight = 0;

    if (max_par < 1)
        max_par = 1;
    if (max_par > KL_MAX_PAR)
        max_par = KL_MAX_PAR;
    for (;;) {
        int64_t now = km_now_ms();
        int64_t wake = now + KL_TICK_MS;
        size_t  pending = 0;
        int     ended = 0;

        if (is_cancelled(call)) {
            abort_all(kl, call, rs, n);
            return kmerr_set(err, KM_CANCELLED, "the call was cancelled");
        }
        for (size_t i = 0; i < n; i++) {
            struct req *r = &rs[i];

            if (r->ph == PH_START || r->ph == PH_PEER) {
                if (r->not_before <= now)
                    step_cache(kl, call, r, now);
            }
            if (r->ph == PH_SLOT && r->not_before <= now && inflight < max_par) {
                CURL *h = free_handle(kl, rs, n);

                if (!h) {
                    kmerr_set(&r->err, KM_INTERNAL_ERROR, "no curl handle available");
                    fail(kl, call, r, KM_INTERNAL_ERROR);
                } else if (step_slot(kl, call, r, now)) {
                    if (start_xfer(kl, call, r, h, now) == KM_OK)
                        inflight++;
                    else
                        fail(kl, call, r, r->err.code);
                }
            }
            if (r->ph == PH_DONE)
                continue;
            pending++;
            if (r->ph != PH_XFER && r->not_before > now && r->not_before < wake)
                wake = r->not_before;
        }
        if (pending == 0)
            return KM_OK;
        if (inflight > 0) {
            int running = 0;

            curl_multi_perform(kl->multi, &running);
            for (;;) {
                int      left = 0;
                CURLMsg *m = curl_multi_info_read(kl->multi, &left);
                void    *priv = NULL;

                if (!m)
                    break;
                if (m->msg != CURLMSG_DONE)
                    continue;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
                if (!priv)
                    continue;
                on_done(kl, call, (struct req *)priv, m->data.result);
                inflight--;
                ended = 1;
            }
            if (!ended) {
                int64_t t = wake - km_now_ms();

                if (t > KL_TICK_MS)
                    t = KL_TICK_MS;
                if (t > 0)
                    curl_multi_poll(kl->multi, NULL, 0, (int)t, NULL);
            }
        } else {
            int64_t t = wake - km_now_ms();

            sleep_ms(t > KL_TICK_MS ? KL_TICK_MS : t < 1 ? 1 : t);
        }
    }
}

/* --- the interface ----------------------------------------------------------------------- */

kmcode
kmkl_new(const kmcfg *cfg, kmstore *store, kmkl **out, kmerr *err)
{
    kmkl  *kl = km_xcalloc(1, sizeof(*kl));
    kmcode rc = KM_INTERNAL_ERROR;
    size_t n;
    int    bad = 0;

    *out = NULL;
    if (!cfg || !store || !cfg->klaviyo_base_url || !cfg->klaviyo_revision) {
        kmerr_set(err, KM_INTERNAL_ERROR, "the Klaviyo client needs settings and a store");
        goto out;
    }
    kl->cfg = cfg;
    kl->store = store;
    kl->base = km_xstrdup(cfg->klaviyo_base_url);
    n = strlen(kl->base);
    while (n > 0 && kl->base[n - 1] == '/')
        kl->base[--n] = '\0';
    kl->scale = scale_from_env(&bad);
    if (bad)
        kmlogf(KMLOG_WARN, "rate_limit_scale_ignored",
               "RATE_LIMIT_SCALE must be a number in (0, 1]; using 1");
    if (getrandom(&kl->rng, sizeof(kl->rng), GRND_NONBLOCK) != (ssize_t)sizeof(kl->rng))
        kl->rng = (uint64_t)km_wall_ms() ^ ((uint64_t)getpid() << 32);
    kl->rng ^= (uint64_t)(uintptr_t)kl;
    if (kl->rng == 0)
        kl->rng = 0x9e3779b97f4a7c15ULL;
    kl->multi = curl_multi_init();
    kl->easy[0] = curl_easy_init();
    if (!kl->multi || !kl->easy[0]) {
        kmerr_set(err, KM_INTERNAL_ERROR, "could not create the HTTP client");
        goto out;
    }
    /* connections are kept alive across calls by the multi handle's pool */
    curl_multi_setopt(kl->multi, CURLMOPT_MAXCONNECTS, (long)KL_MAX_PAR);
    rc = KM_OK;
out:
    if (rc != KM_OK) {
        kmkl_free(kl);
        kl = NULL;
    }
    *out = kl;
    return rc;
}

void
kmkl_free(kmkl *kl)
{
    if (!kl)
        return;
    for (int i = 0; i < KL_MAX_PAR; i++) {
        if (kl->easy[i])
            curl_easy_cleanup(kl->easy[i]);
    }
    if (kl->multi)
        curl_multi_cleanup(kl->multi);
    free(kl->base);
    free(kl);
}

static kmcode
check_call(const kmkl_call *call, const char *path, kmerr *err)
{
    if (!call || !call->acct || !call->acct->api_key)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a Klaviyo request needs an account");
    if (!path_ok(path))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "not a valid Klaviyo API path");
    return KM_OK;
}

/* One request through the whole machine. */
static kmcode
request(kmkl *kl, kmkl_call *call, const char *method, const char *path, const char *body,
        json_object **out, kmerr *err)
{
    struct req r;
    kmcode     rc;

    *out = NULL;
    rc = check_call(call, path, err);
    if (rc != KM_OK)
        return rc;
    req_init(&r, kl, call, method, path, body);
    rc = run_batch(kl, call, &r, 1, 1, err);
    if (rc == KM_OK) {
        rc = r.rc;
        if (rc == KM_OK) {
            *out = r.doc;
            r.doc = NULL;
        } else if (err) {
            kmerr_copy(err, &r.err);
            err->code = rc;
        }
    }
    req_free(&r);
    return rc;
}

kmcode
kmkl_get(kmkl *kl, kmkl_call *call, const char *path, json_object **out, kmerr *err)
{
    return request(kl, call, "GET", path, NULL, out, err);
}

/* A POST body as sent (and as hashed into its cache key); borrowed from body. */
static const char *
body_text(json_object *body)
{
    return json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
}

kmcode
kmkl_post(kmkl *kl, kmkl_call *call, const char *path, json_object *body, json_object **out,
          kmerr *err)
{
    const char *text;

    if (!body) {
        *out = NULL;
        return kmerr_set(err, KM_INTERNAL_ERROR, "a Klaviyo POST needs a body");
    }
    text = body_text(body);
    return request(kl, call, "POST", path, text, out, err);
}

int
kmkl_cached(kmkl *kl, const struct kmaccount *acct, const char *method, const char *path,
            json_object *body)
{
    char    key[KL_BUCKET_MAX + 24];
    char   *val = NULL;
    size_t  len = 0;
    int64_t age = 0;
    int     fresh = 0;
    kmerr   e = { 0 };
    kmcode  rc;

    if (!acct || !path || !method)
        return 0;
    if (!cache_key(kl, acct->name, method, path, body ? body_text(body) : NULL, key,
                   sizeof(key)))
        return 0;
    rc = kmstore_cache_get(kl->store, key, &val, &len, &age, &fresh, &e);
    free(val);
    kmerr_clear(&e);
    return rc == KM_OK && fresh;
}

/* links.next as a path of ours: the configured base is stripped; a link anywhere else is
 * refused (the key must never travel to another host). New string, or NULL with *bad set. */
char *
kmkl_next_path(const char *base, json_object *doc, int *bad)
{
    json_object *next = kmjson_get(kmjson_get(doc, "links"), "next");
    const char  *s;
    size_t       n = strlen(base);

    *bad = 0;
    if (!next || !json_object_is_type(next, json_type_string))
        return NULL;
    s = json_object_get_string(next);
    if (!*s)
        return NULL;
    if (strncasecmp(s, base, n) != 0 || s[n] != '/' || !path_ok(s + n)) {
        *bad = 1;
        return NULL;
    }
    return km_xstrdup(s + n);
}

kmcode
kmkl_get_all(kmkl *kl, kmkl_call *call, const char *path, json_object **out, kmerr *err)
{
    json_object *all = json_object_new_array();
    char        *cur = km_xstrdup(path);
    kmcode       rc = KM_OK;
    int          pages = 0;

    *out = NULL;
    while (cur) {
        json_object *doc = NULL, *data;
        char        *next;
        int          bad = 0;

        if (pages == KL_MAX_PAGES) {
            char w[160];

            snprintf(w, sizeof(w), "Stopped after %d pages of %.60s; the list may be "
                     "incomplete.", KL_MAX_PAGES, path);
            add_warning(call, w);
            kmlogf(KMLOG_WARN, "klaviyo_page_limit", "stopped after %d pages", KL_MAX_PAGES);
            break;
        }
        rc = kmkl_get(kl, call, cur, &doc, err);
        free(cur);
        cur = NULL;
        if (rc != KM_OK)
            break;
        pages++;
        data = kmjson_get(doc, "data");
        if (json_object_is_type(data, json_type_array)) {
            size_t m = json_object_array_length(data);

            for (size_t i = 0; i < m; i++)
                json_object_array_add(all, json_object_get(json_object_array_get_idx(data, i)));
        } else if (json_object_is_type(data, json_type_object)) {
            json_object_array_add(all, json_object_get(data));
        } else {
            json_object_put(doc);
            rc = kmerr_set(err, KM_UPSTREAM_ERROR, "Klaviyo's answer had no data");
            break;
        }
        next = kmkl_next_path(kl->base, doc, &bad);
        json_object_put(doc);
        if (bad) {
            rc = kmerr_set(err, KM_UPSTREAM_ERROR, "Klaviyo's next-page link points outside "
                           "the configured API");
            break;
        }
        cur = next;
    }
    free(cur);
    if (rc != KM_OK) {
        json_object_put(all);
        return rc;
    }
    *out = all;
    return KM_OK;
}

kmcode
kmkl_get_many(kmkl *kl, kmkl_call *call, const char *const *paths, size_t n, json_object **outs,
              kmcode *codes, kmerr *errs, kmerr *err)
{
    struct req *rs;
    kmcode      rc;
    int         par = KL_MAX_PAR;

    for (size_t i = 0; i < n; i++) {
        outs[i] = NULL;
        codes[i] = KM_INTERNAL_ERROR;
        if (errs)
            kmerr_clear(&errs[i]);
    }
    if (n == 0)
        return KM_OK;
    if (!call || !call->acct || !call->acct->api_key)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a Klaviyo request needs an account");
    if (is_cancelled(call))
        return kmerr_set(err, KM_CANCELLED, "the call was cancelled");
    if (call->deadline_ms > 0 && km_now_ms() >= call->deadline_ms)
        return kmerr_set(err, KM_UPSTREAM_TIMEOUT,
                         "the call's deadline (REQUEST_DEADLINE_SECONDS) passed");

    rs = km_xcalloc(n, sizeof(*rs));
    for (size_t i = 0; i < n; i++) {
        if (!path_ok(paths[i])) {
            rs[i].ph = PH_DONE;
            rs[i].rc = kmerr_set(&rs[i].err, KM_INVALID_ARGUMENT, "not a valid Klaviyo API path");
            kmbuf_init(&rs[i].resp, KL_MAX_BODY);
            continue;
        }
        req_init(&rs[i], kl, call, "GET", paths[i], NULL);
        /* never more in flight than the strictest tier's one-second burst */
        for (int b = 0; b < rs[i].nb; b++) {
            if (rs[i].b[b].lim.win[0].max < par)
                par = rs[i].b[b].lim.win[0].max;
        }
    }
    rc = run_batch(kl, call, rs, n, par, err);
    for (size_t i = 0; i < n; i++) {
        codes[i] = rs[i].rc;
        if (rs[i].rc == KM_OK) {
            outs[i] = rs[i].doc;
            rs[i].doc = NULL;
        } else if (errs) {
            kmerr_copy(&errs[i], &rs[i].err);
            errs[i].code = rs[i].rc;
        }
        req_free(&rs[i]);
    }
    free(rs);
    return rc;
}

/* --- planning and budget ----------------------------------------------------------------- */

kmcode
kmkl_plan(kmkl *kl, const struct kmaccount *acct, const char *method, const char *path,
          int n_calls, int64_t deadline_ms, kmerr *err)
{
    struct bucket b[2];
    int           nb;
    int64_t       est_ms = 0, est_empty_ms = 0, retry_ms = 0;
    int           never = 0, fit = INT_MAX, daily_max = 0, daily_left = 0;
    int64_t       now = km_now_ms();
    const char   *tier;
    kmcode        rc;

    if (!acct || !path || n_calls < 0)
        return kmerr_set(err, KM_INTERNAL_ERROR, "kmkl_plan needs an account and a path");
    if (n_calls == 0)
        return KM_OK;
    method = method ? method : "GET";
    tier = kmkl_tier_name(kmkl_tier(method, path));
    nb = buckets_of(kl->scale, acct->name, method, path, b);
    for (int i = 0; i < nb; i++) {
        for (int w = 0; w < b[i].lim.nwin; w++) {
            int64_t win = b[i].lim.win[w].window_ms;
            int     max = b[i].lim.win[w].max;
            int     left = 0;
            int64_t reset = 0, t, t_empty;
            int     extra;

            rc = kmstore_remaining(kl->store, b[i].name, &b[i].lim, w, &left, &reset, err);
            if (rc != KM_OK)
                return rc;
            if (win >= 3600000) {
                /* a daily cap is not waited for within a call */
                daily_max = max;
                daily_left = left;
                if (left < fit)
                    fit = left;
                if (n_calls > max)
                    never = 1;
                else if (n_calls > left && reset > retry_ms)
                    retry_ms = reset;
                continue;
            }
            /* the first `left` go now; every request counted now has left the window one
             * window length from now, and each window after that admits `max` more */
            extra = n_calls - left;
            t = extra <= 0 ? 0 : (int64_t)((extra + max - 1) / max) * win;
            t_empty = n_calls <= max ? 0 : (int64_t)((n_calls - 1) / max) * win;
            if (t > est_ms)
                est_ms = t;
            if (t_empty > est_empty_ms)
                est_empty_ms = t_empty;
            if (deadline_ms > 0) {
                /* how many could go before the deadline at this window's pace */
                int64_t span = deadline_ms - now;
                int64_t can = span < 0 ? 0 : (int64_t)left + span / win * max;

                if (can < fit)
                    fit = can > INT_MAX ? INT_MAX : (int)can;
            }
        }
    }
    if (!never && retry_ms == 0 && (deadline_ms <= 0 || now + est_ms <= deadline_ms))
        return KM_OK;

    kmerr_detail(err, "calls_needed", json_object_new_int(n_calls));
    kmerr_detail(err, "calls_that_fit", json_object_new_int(fit == INT_MAX ? n_calls : fit));
    kmerr_detail(err, "estimated_seconds", json_object_new_int64(secs_up(est_ms)));
    kmerr_detail(err, "tier", json_object_new_string(tier));
    /* A request that can never fit is not a rate limit: no retry would help, only a smaller
     * request. It is refused as an argument problem, with what would fit. */
    if (never) {
        kmerr_detail(err, "daily_cap", json_object_new_int(daily_max));
        return kmerr_set(err, KM_INVALID_ARGUMENT, "this needs %d uncached Klaviyo %s "
                         "requests, more than the %d Klaviyo allows account '%s' in a day; no "
                         "retry can answer it: narrow the request", n_calls, tier, daily_max,
                         acct->name);
    }
    if (deadline_ms > 0 && now + est_empty_ms > deadline_ms) {
        return kmerr_set(err, KM_INVALID_ARGUMENT, "this needs %d uncached Klaviyo %s "
                         "requests, about %d s at Klaviyo's rate limit, longer than a call may "
                         "take even with the rate windows idle; no retry can answer it: narrow "
                         "the request", n_calls, tier, secs_up(est_empty_ms));
    }
    if (retry_ms > 0) {
        if (err)
            err->retry_after_s = secs_up(retry_ms);
        return kmerr_set(err, KM_RATE_LIMITED, "account '%s' has %d Klaviyo report calls left "
                         "today and this needs %d uncached ones; a slot frees in %d s, or ask "
                         "for something that needs at most %d", acct->name, daily_left, n_calls,
                         secs_up(retry_ms), fit == INT_MAX ? 0 : fit);
    }
    if (err)
        err->retry_after_s = secs_up(est_ms - est_empty_ms);
    return kmerr_set(err, KM_RATE_LIMITED, "Klaviyo's rate limit for account '%s' is busy: %d "
                     "requests would take about %d s; try again in %d s", acct->name, n_calls,
                     secs_up(est_ms), secs_up(est_ms - est_empty_ms));
}

void
kmkl_budget_buckets(const char *account, char names[][KMKL_BUCKET_NAME_MAX], kmlimit *lim,
                    int *win)
{
    int bad = 0;

    _Static_assert(sizeof(report_endpoints) / sizeof(report_endpoints[0]) == KMKL_BUDGET_BUCKETS,
                   "one budget bucket per report endpoint");
    limit_charged(KMT_REPORTS, scale_from_env(&bad), lim);
    for (size_t i = 0; i < KMKL_BUDGET_BUCKETS; i++)
        snprintf(names[i], KMKL_BUCKET_NAME_MAX, "%s:%s", account, report_endpoints[i]);
    *win = 2;
}

kmcode
kmkl_report_budget(kmkl *kl, const struct kmaccount *acct, int *remaining, int64_t *reset_ms,
                   kmerr *err)
{
    kmlimit lim;
    int     best = -1;
    int64_t best_reset = 0;

    if (!acct)
        return kmerr_set(err, KM_INTERNAL_ERROR, "kmkl_report_budget needs an account");
    limit_charged(KMT_REPORTS, kl->scale, &lim);
    for (size_t i = 0; i < sizeof(report_endpoints) / sizeof(report_endpoints[0]); i++) {
        char    name[KL_BUCKET_MAX];
        int     left = 0;
        int64_t reset = 0;
        kmcode  rc;

        snprintf(name, sizeof(name), "%s:%s", acct->name, report_endpoints[i]);
        rc = kmstore_remaining(kl->store, name, &lim, 2, &left, &reset, err);
        if (rc != KM_OK)
            return rc;
        if (best < 0 || left < best) {
            best = left;
            best_reset = reset;
        }
    }
    *remaining = best;
    *reset_ms = best_reset;
    return KM_OK;
}

/* The earliest moment (ms from now) every window of `bucket` admits one more request. */
static kmcode
next_free_ms(kmkl *kl, const char *bucket, const kmlimit *lim, int64_t *out, kmerr *err)
{
    *out = 0;
    for (int w = 0; w < lim->nwin; w++) {
        int     left = 0;
        int64_t reset = 0;
        kmcode  rc = kmstore_remaining(kl->store, bucket, lim, w, &left, &reset, err);

        if (rc != KM_OK)
            return rc;
        if (left <= 0 && reset > *out)
            *out = reset;
    }
    return KM_OK;
}

kmcode
kmkl_budget_read(kmkl *kl, const struct kmaccount *acct, kmkl_budget *out, kmerr *err)
{
    kmlimit lim;
    char    name[KL_BUCKET_MAX];
    int64_t ms;
    kmcode  rc;

    memset(out, 0, sizeof(*out));
    if (!acct)
        return kmerr_set(err, KM_INTERNAL_ERROR, "kmkl_budget_read needs an account");
    rc = kmkl_report_budget(kl, acct, &out->report_calls_left, &ms, err);
    if (rc != KM_OK)
        return rc;
    out->daily_report_cap = tier_limits[KMT_REPORTS].win[2].max;
    out->report_calls_used = out->daily_report_cap - out->report_calls_left;
    for (int t = 0; t < KMT_COUNT; t++) {
        int64_t worst = 0;

        limit_charged((kmtier)t, kl->scale, &lim);
        if (t == KMT_REPORTS) {
            /* each report endpoint has its own windows: the tier is free when all are */
            for (size_t i = 0; i < sizeof(report_endpoints) / sizeof(report_endpoints[0]);
                 i++) {
                snprintf(name, sizeof(name), "%s:%s", acct->name, report_endpoints[i]);
                rc = next_free_ms(kl, name, &lim, &ms, err);
                if (rc != KM_OK)
                    return rc;
                if (ms > worst)
                    worst = ms;
            }
        } else {
            snprintf(name, sizeof(name), "%s:%s", acct->name, tier_names[t]);
            rc = next_free_ms(kl, name, &lim, &worst, err);
            if (rc != KM_OK)
                return rc;
            if (t == KMT_XS) {
                /* list sizes are charged to their own XS bucket (buckets_of) */
                snprintf(name, sizeof(name), "%s:profile_count", acct->name);
                rc = next_free_ms(kl, name, &lim, &ms, err);
                if (rc != KM_OK)
                    return rc;
                if (ms > worst)
                    worst = ms;
            }
        }
        out->next_free_ms[t] = worst;
    }
    return KM_OK;
}
