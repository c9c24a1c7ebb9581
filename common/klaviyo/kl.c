/* kl.c — the Klaviyo client: one request state machine (cache, coalescing, rate slots,
 * transfer, retries, error mapping, stale answers) driven by one loop over a curl multi
 * handle, for a single request and for a fan-out alike.
 *
 * A request moves START → (PEER) → SLOT → XFER → DONE:
 *   START  fresh cache hit → DONE; else take the in-flight marker ("l:" + key): held → SLOT,
 *          held by another process or thread → PEER.
 *   PEER   every 25 ms: a fresh entry appeared → DONE; the marker is free → take it → SLOT.
 *   SLOT   take a slot from every bucket the request is charged to (REFERENCE.md §4) in
 *          turn: slots go in the order requests began to wait, across workers and hosts
 *          (store.h, kmstore_take_turn); a refusal is waited out within the call's budget.
 *   XFER   on the wire; its outcome is DONE, or back to SLOT after a backoff (retry).
 * The loop (run_batch) sleeps at most 50 ms at a time, so cancellation is seen promptly.
 * Beside it: tier.c (buckets and their windows), cache.c (entries and shared failures),
 * wire.c (one transfer's options and headers), reply.c (what an answer means), path.c.
 */
#include "kl.h"
#include "cache.h"
#include "metrics.h"
#include "reply.h"
#include "json.h"
#include "log.h"
#include "secret.h"
#include "util.h"
#include "wire.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define KL_MAX_PAGES       100                 /* links.next guard */
#define KL_MAX_PAR         16                  /* easy handles a fan-out may use at once */
#define KL_DEFAULT_WAIT_MS 5000                /* default bound on waiting for a rate slot */
#define KL_PEER_POLL_MS    25                  /* coalescing: how often a waiter looks */
#define KL_TICK_MS         50                  /* longest sleep between cancellation checks */
#define KL_DAILY_CAP_MS    60000               /* a 429 asking for longer is not slept on */
#define KL_LEASE_MS        2000                /* a waiter late this long loses its place */

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
    size_t       parsed;            /* bytes of documents parsed (kmkl_parsed_bytes) */
};

/* --- small helpers ----------------------------------------------------------------------- */

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

struct req {
    /* what */
    const char        *method;
    char              *path;
    char              *body;        /* POST text, or NULL */
    size_t             body_len;
    char               key[KMCACHE_KEY_MAX];      /* cache key, "" when caching is off */
    char               mark[KMCACHE_KEY_MAX + 2];     /* in-flight marker "l:" + key */
    char               failkey[KMCACHE_KEY_MAX + 2];  /* shared failure "f:" + key */
    struct kmtier_bucket b[2];
    int                nb;
    char               ticket[KMSTORE_TICKET_MAX];  /* its place in the buckets' queues */
    unsigned           queued;      /* bit i: b[i]'s queue may hold the ticket */

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
    struct kmwire      w;           /* headers (with the key), body, Retry-After */
    int                deadline_bound;  /* this attempt's timeout is the call's deadline */
    int64_t            sent_ms;

    /* how it ended */
    enum kmreply_cause         cause;
    CURLcode           last_cc;     /* the last transport failure, for the message */
    json_object       *doc;
    kmcode             rc;
    kmerr              err;
};

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
    r->nb = kmtier_buckets(kl->scale, call->acct->name, method, path, r->b);
    kmstore_ticket(kl->store, call->arrived_wall_ms, r->ticket);
    kmwire_init(&r->w);
    if (kmcache_key(kl->cfg->klaviyo_revision, kl->cfg->cache_ttl_s, call->acct->name, method,
                    path, body, r->key, sizeof(r->key))) {
        snprintf(r->mark, sizeof(r->mark), "l:%s", r->key);
        snprintf(r->failkey, sizeof(r->failkey), "f:%s", r->key);
    }
}

static void
req_free(struct req *r)
{
    free(r->path);
    free(r->body);
    kmwire_free(&r->w);
    json_object_put(r->doc);
    kmerr_clear(&r->err);
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

/* A request that stops waiting (answered, failed, cancelled) gives up its places. */
static void
leave_queues(kmkl *kl, struct req *r)
{
    for (int i = 0; i < r->nb; i++) {
        kmerr e = { 0 };

        if (!(r->queued & (1u << i)))
            continue;
        if (kmstore_leave(kl->store, r->b[i].name, r->ticket, &e) != KM_OK)
            kmlogf(KMLOG_WARN, "klaviyo_queue_leave_failed", "%s (its lease ends it): %s",
                   r->b[i].name, e.msg);
        kmerr_clear(&e);
    }
    r->queued = 0;
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
    leave_queues(kl, r);
    if (kmstore_degraded(kl->store))
        add_warning(call, STORE_DEGRADED_WARNING);
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

/* Only failures that are Klaviyo's answer are shared (r->share), never this call's own
 * deadline or cancellation; stale says whether the cause allows an expired answer. */
static void
share_failure(kmkl *kl, const struct req *r, kmcode rc)
{
    if (!r->share || !r->locked || r->attempt == 0)
        return;
    kmcache_share_failure(kl->store, r->failkey, &r->err, rc, r->cause != KMR_NONE);
}

/* A final failure. When the cause is one Klaviyo (or the budget) may get over and an expired
 * answer is still kept, that answer is returned with a warning naming its age. */
static void
fail(kmkl *kl, kmkl_call *call, struct req *r, kmcode rc)
{
    json_object *doc;
    int64_t      age_ms = 0;
    size_t       len = 0;

    share_failure(kl, r, rc);
    if (r->cause != KMR_NONE && (len = kmcache_lookup(kl->store, r->key, 1, &doc, &age_ms))) {
        char w[256];

        kl->parsed += len;
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

/* A fresh cached response this call may use: 1 with *doc (new) and *age_ms. A call that
 * refreshes (max_age_ms) does not use one older than that. */
static int
fresh_enough(kmkl *kl, const kmkl_call *call, const struct req *r, json_object **doc,
             int64_t *age_ms)
{
    size_t len = kmcache_lookup(kl->store, r->key, 0, doc, age_ms);

    if (!len)
        return 0;
    kl->parsed += len;
    if (call->max_age_ms > 0 && *age_ms > call->max_age_ms) {
        json_object_put(*doc);
        *doc = NULL;
        return 0;
    }
    return 1;
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
    if (fresh_enough(kl, call, r, &doc, &age)) {
        cache_hit(kl, call, r, doc, age);
        return;
    }
    if (r->ph == PH_PEER) {
        int stale = 0;

        if (kmcache_shared_failure(kl->store, r->failkey, r->peer_since, now, &r->err,
                                   &stale)) {
            kmcode rc = r->err.code;

            r->cause = stale ? KMR_SERVER : KMR_NONE;
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
    if (fresh_enough(kl, call, r, &doc, &age)) {
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
                  "passed before Klaviyo answered");
        r->cause = r->attempt > 0 ? KMR_TIMEOUT : KMR_NONE;
        fail(kl, call, r, KM_UPSTREAM_TIMEOUT);
        return 0;
    }
    if (r->slot_since != 0 && r->attempt == 0 && r->key[0]) {
        /* while this request waited for its slot, an identical one may have fetched the
         * answer: one that came before it in the queue, its in-flight marker having run out
         * during a long wait (a report's 2-per-minute window outlasts the marker's
         * KLAVIYO_TIMEOUT_SECONDS). Take that answer, not a slot. */
        json_object *doc;
        int64_t      age;

        if (fresh_enough(kl, call, r, &doc, &age)) {
            cache_hit(kl, call, r, doc, age);
            return 0;
        }
    }
    for (int i = 0; i < r->nb; i++) {
        int64_t wait = 0;
        kmerr   e = { 0 };
        kmcode  rc;

        rc = kmstore_take_turn(kl->store, r->b[i].name, &r->b[i].lim, r->ticket, KL_LEASE_MS,
                               &wait, &e);
        if (rc == KM_OK) {
            r->queued &= ~(1u << i);    /* a granted take leaves the queue */
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
        r->queued |= 1u << i;
        /* slots already taken in this step are spent; next time all are taken again */
        if (wait < 1)
            wait = 1;
        if (r->slot_since == 0)
            r->slot_since = now;
        if (now - r->slot_since + wait > budget ||
            (call->deadline_ms > 0 && now + wait > call->deadline_ms)) {
            kmerr_set(&r->err, KM_RATE_LIMITED, "Klaviyo's rate limit for account '%s' "
                      "(%s requests) is used up; try again in %d s", call->acct->name,
                      kmtier_name(kmtier_of(r->method, r->path)), kmtier_secs_up(wait));
            r->err.retry_after_s = kmtier_secs_up(wait);
            r->cause = KMR_BUDGET;
            fail(kl, call, r, KM_RATE_LIMITED);
            return 0;
        }
        r->not_before = now + wait;
        return 0;
    }
    return 1;
}

/* --- the transfer ------------------------------------------------------------------------ */

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
    int64_t           timeout = (int64_t)kl->cfg->klaviyo_timeout_s * 1000;
    struct kmwire_req q;
    char             *url;
    kmcode            rc;

    if (timeout <= 0)
        timeout = 30000;
    r->deadline_bound = 0;
    if (call->deadline_ms > 0 && call->deadline_ms - now < timeout) {
        timeout = call->deadline_ms - now;
        r->deadline_bound = 1;
    }
    if (timeout < 1)
        timeout = 1;

    url = km_xasprintf("%s%s", kl->base, r->path);
    q.url = url;
    q.key = kmsecret_reveal(call->acct->api_key);
    q.revision = kl->cfg->klaviyo_revision;
    q.body = r->body;
    q.body_len = r->body_len;
    q.timeout_ms = timeout;
    rc = kmwire_start(&r->w, h, &q, r, &r->err);
    free(url);
    if (rc != KM_OK) {
        kmwire_end(&r->w, h);
        return rc;
    }
    r->h = h;
    r->sent_ms = now;
    if (curl_multi_add_handle(kl->multi, h) != CURLM_OK) {
        kmwire_end(&r->w, h);
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
    kmwire_end(&r->w, r->h);
    r->h = NULL;
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

/* A final failure of cause c after r's attempts, into r->err. */
static kmcode
final_error(kmkl *kl, const kmkl_call *call, struct req *r, enum kmreply_cause c,
            const char *detail, int64_t wait_ms)
{
    return kmreply_final_error(&r->err, c, r->attempt, call->acct->name,
                               kl->cfg->klaviyo_timeout_s, detail, wait_ms, r->last_cc);
}

/* A 2xx: the document, cached when caching is on. -1 when it is not a JSON object (a proxy's
 * page, a body cut short): the caller retries it like a server error. */
static int
on_success(kmkl *kl, kmkl_call *call, struct req *r)
{
    json_object *doc = NULL;
    kmerr        e = { 0 };

    if (kmjson_parse(r->w.resp.data ? r->w.resp.data : "", r->w.resp.len, KM_UPSTREAM_ERROR, &doc,
                     &e) != KM_OK || !json_object_is_type(doc, json_type_object)) {
        json_object_put(doc);
        kmerr_clear(&e);
        return -1;
    }
    kl->parsed += r->w.resp.len;
    kmcache_put(kl->store, r->key, r->w.resp.data, r->w.resp.len, kl->cfg->cache_ttl_s);
    r->doc = doc;
    finish(kl, call, r, KM_OK);
    return 0;
}

/* Metrics: the request by tier and status, and for a reports request the budget left. */
static void
count_request(kmkl *kl, const kmkl_call *call, const struct req *r, long status)
{
    kmtier  t = kmtier_of(r->method, r->path);
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
    enum kmreply_cause c = KMR_NONE;
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
        kmreply_log_request(call->acct->name, r->method, r->path, status, "transport", r->attempt,
                            now - r->sent_ms, r->w.resp.len);
        r->last_cc = cc;
        if (r->w.too_big || cc == CURLE_FILESIZE_EXCEEDED) {
            kmerr_set(&r->err, KM_UPSTREAM_ERROR, "Klaviyo's answer was larger than %zu MB",
                      KMWIRE_MAX_BODY >> 20);
            fail(kl, call, r, KM_UPSTREAM_ERROR);
            return;
        }
        c = kmreply_transport_kind(cc);
        if (c == KMR_NONE) {
            char why[160];
            kmreply_transport_cause(cc, why, sizeof(why));
            kmlogf(KMLOG_WARN, "klaviyo_transport_error", "account '%s' %s: %s",
                   call->acct->name, r->method, why);
            kmerr_set(&r->err, KM_UPSTREAM_ERROR, "could not talk to Klaviyo: %s", why);
            fail(kl, call, r, KM_UPSTREAM_ERROR);
            return;
        }
        if (c == KMR_TIMEOUT && r->deadline_bound) {
            r->cause = KMR_TIMEOUT;
            r->share = 0;  /* this call's deadline, not Klaviyo's answer */
            kmerr_set(&r->err, KM_UPSTREAM_TIMEOUT, "the call's deadline "
                      "(REQUEST_DEADLINE_SECONDS) passed before "
                      "Klaviyo answered");
            fail(kl, call, r, KM_UPSTREAM_TIMEOUT);
            return;
        }
    } else {
        kmreply_log_request(call->acct->name, r->method, r->path, status,
                            status >= 200 && status < 300 ? "ok" : "http_error", r->attempt,
                            now - r->sent_ms, r->w.resp.len);
        if (status >= 200 && status < 300 && on_success(kl, call, r) == 0)
            return;
        kmreply_error_detail(r->w.resp.data, r->w.resp.len, detail, sizeof(detail), &expected_s);
        if (status >= 200 && status < 300)
            c = KMR_MALFORMED;
        else if (status == 429)
            c = KMR_THROTTLED;
        else if (status >= 500)
            c = KMR_SERVER;
        else {
            /* Klaviyo's answer, final: a refused key, an unknown id, a bad request */
            fail(kl, call, r, kmreply_http_error(&r->err, status, call->acct->name, detail));
            return;
        }
    }

    /* retryable: throttled, server error, a 2xx that is not JSON or cut short, timeout,
     * connection failure */
    r->cause = c;
    wait = kmreply_retry_wait(r->w.retry_after_s, r->w.reset_s, expected_s, c, r->attempt, &kl->rng,
                              &told);
    if (told && wait > KL_DAILY_CAP_MS) {
        /* a daily cap (or a 5xx asking for hours): say when instead of sleeping */
        code = final_error(kl, call, r, c, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    if (r->attempt > kl->cfg->max_retries) {
        code = final_error(kl, call, r, c, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    if (call->deadline_ms > 0 && now + wait >= call->deadline_ms) {
        /* the wait would end past the deadline: fail now (a 429 says when to come back) */
        code = final_error(kl, call, r, c, detail, wait);
        fail(kl, call, r, code);
        return;
    }
    kmreply_log_retry(call->acct->name, r->method, r->path, r->attempt, c, status, wait);
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
        r->cause = KMR_NONE;
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
    kl->scale = kmtier_scale_from_env(&bad);
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

size_t
kmkl_parsed_bytes(const kmkl *kl)
{
    return kl->parsed;
}

static kmcode
check_call(const kmkl_call *call, const char *path, kmerr *err)
{
    if (!call || !call->acct || !call->acct->api_key)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a Klaviyo request needs an account");
    if (!kmpath_ok(path))
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
    char key[KMCACHE_KEY_MAX];

    if (!acct || !path || !method)
        return 0;
    if (!kmcache_key(kl->cfg->klaviyo_revision, kl->cfg->cache_ttl_s, acct->name, method, path,
                     body ? body_text(body) : NULL, key, sizeof(key)))
        return 0;
    return kmcache_fresh(kl->store, key);
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
        next = kmpath_next(kl->base, doc, &bad);
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
        if (!kmpath_ok(paths[i])) {
            rs[i].ph = PH_DONE;
            rs[i].rc = kmerr_set(&rs[i].err, KM_INVALID_ARGUMENT, "not a valid Klaviyo API path");
            kmwire_init(&rs[i].w);
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

/* --- planning and budget: reads of the rate windows (tier.c) ----------------------------- */

kmcode
kmkl_plan(kmkl *kl, const struct kmaccount *acct, const char *method, const char *path,
          int n_calls, int64_t deadline_ms, kmerr *err)
{
    return kmtier_plan(kl->store, kl->scale, acct ? acct->name : NULL, method, path, n_calls,
                       deadline_ms, err);
}

kmcode
kmkl_report_budget(kmkl *kl, const struct kmaccount *acct, int *remaining, int64_t *reset_ms,
                   kmerr *err)
{
    return kmtier_report_budget(kl->store, kl->scale, acct ? acct->name : NULL, remaining,
                                reset_ms, err);
}

kmcode
kmkl_budget_read(kmkl *kl, const struct kmaccount *acct, kmtier_budget *out, kmerr *err)
{
    return kmtier_budget_read(kl->store, kl->scale, acct ? acct->name : NULL, out, err);
}
