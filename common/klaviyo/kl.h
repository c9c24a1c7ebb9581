/* kl.h — the Klaviyo client: libcurl, auth and revision headers, pagination, retries,
 * error mapping, the shared cache, rate-limit windows and coalescing, and fan-out.
 *
 * Owns:    a kmkl owns its curl handles (easy + multi) and borrows the settings and the
 *          store (both must outlive it). JSON returned through *out belongs to the caller
 *          (json_object_put). A kmkl_call is caller memory; its `warnings` array is borrowed.
 * Threads: one kmkl per service thread (curl handles are not shared); the store it uses
 *          is the process's, shared by all threads. curl_global_init must have run in main().
 * Fails:   every failure is an envelope code — KM_INVALID_API_KEY (Klaviyo 401/403),
 *          KM_NOT_FOUND (404), KM_INVALID_ARGUMENT (other 4xx, with Klaviyo's detail),
 *          KM_RATE_LIMITED (budget or 429 after retries; retry_after_s set),
 *          KM_UPSTREAM_ERROR (5xx, bad JSON, transport), KM_UPSTREAM_TIMEOUT, KM_CANCELLED.
 *          Nothing libcurl- or HTTP-specific leaks upward, and never the key.
 *
 * Every request carries Authorization: Klaviyo-API-Key <key>, revision: $KLAVIYO_REVISION,
 * Accept: application/vnd.api+json (and that Content-Type on POSTs). Before each request a
 * slot is taken from the account × tier window (REFERENCE.md §4); when none frees within a
 * short bounded wait the call fails with KM_RATE_LIMITED instead of queueing.
 *
 * Cache: key "c:<account>:<FNV-1a 64 of revision, method, path, body>", fresh for
 * CACHE_TTL_SECONDS (0: no cache and no coalescing), successes only. While one process or
 * thread fetches a key (marker "l:" + key) identical requests wait for its answer; when the
 * fetcher ends in a failure that is Klaviyo's answer (a 404, a 400, errors after retries), it
 * leaves that failure under "f:" + key for a second and the requests already waiting take it
 * instead of asking again. When Klaviyo still fails after retries (5xx, 429, timeout,
 * transport, a 2xx that is not JSON or is cut short) or the budget is used up, an expired
 * entry still in its grace period is returned and a warning names its age.
 * Retries: 429, 5xx, a 2xx that is not JSON or is cut short, timeouts and dropped
 * connections, at most KLAVIYO_MAX_RETRIES, with Retry-After / RateLimit-Reset / "Expected
 * available in N second(s)" honoured, else exponential backoff with full jitter (500 ms base,
 * 30 s cap); never past the deadline; an answer asking for more than 60 s (a 429's daily cap,
 * a 5xx's long Retry-After) is not slept on.
 * RATE_LIMIT_SCALE (test-only, a float in (0, 1], default 1) multiplies every window length.
 * The client is kl.c (the request machine) with tier.c (tiers, windows, the one margin),
 * reply.c (reading Klaviyo's answers), cache.c (the response cache) and path.c (paths,
 * queries, next links: the part of the interface the tools build requests with).
 */
#ifndef KM_KL_H
#define KM_KL_H

#include "accounts.h"
#include "err.h"
#include "settings.h"
#include "path.h"
#include "store.h"
#include "tier.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct kmkl kmkl;

/* Progress callback: `done` of `total` Klaviyo calls made (from a service thread). */
typedef void kmkl_progress_fn(void *arg, int done, int total);

/* One tool call's context, shared by every request made for it. */
typedef struct kmkl_call {
    const struct kmaccount *acct;
    atomic_bool            *cancelled;    /* may be NULL; checked before each request */
    int64_t                 deadline_ms;  /* km_now_ms() time the call must end by; 0 none */
    int64_t                 arrived_wall_ms;  /* km_wall_ms() time the call arrived: its
                                             requests wait for rate slots in this order
                                             (kmstore_ticket); 0: each request's own start */
    json_object            *warnings;     /* array; stale-cache and degraded-store notes */
    kmkl_progress_fn       *progress;     /* may be NULL */
    void                   *progress_arg;
    int                     calls_done;   /* Klaviyo requests made so far (not cache hits) */
    int                     calls_total;  /* planned total for progress, 0 when unknown */
    int                     cache_hits;
    int                     degraded;     /* set with a stale-cache or degraded-store note:
                                             the answer is not one to keep (answers.h) */
    int64_t                 oldest_ms;    /* age of the oldest cached response used */
    int64_t                 max_age_ms;   /* > 0: a cached response older than this is not
                                             used, it is fetched again (a refresh ahead of
                                             expiry); 0: any fresh one */
    int64_t                 max_wait_ms;  /* longest wait for a rate slot per request; 0 means
                                             the default short bound (5 s). A tool that planned
                                             its calls with kmkl_plan sets it to the time left
                                             before its deadline. */
} kmkl_call;

kmcode kmkl_new(const kmcfg *cfg, kmstore *store, kmkl **out, kmerr *err);
void kmkl_free(kmkl *kl);

/* Bytes of Klaviyo documents kl has parsed since it was made (fetched, or read from the
 * cache): a measure of the memory its calls' parsed documents took, and freed. */
size_t kmkl_parsed_bytes(const kmkl *kl);

/* GET `path` (built with kmpath_query / kmpath_id, path.h). *out is the whole JSON:API
 * document. */
kmcode kmkl_get(kmkl *kl, kmkl_call *call, const char *path, json_object **out, kmerr *err);

/* GET `path` and follow the next-page links (kmpath_next) to the end (at most 100 pages;
 * past that a warning says the list may be incomplete); *out is a new array of every `data`
 * item in order. A next link outside KLAVIYO_BASE_URL is refused (KM_UPSTREAM_ERROR). The one
 * pagination path for GETs; a POST that pages (metric aggregates) puts kmpath_cursor's
 * cursor into its next body. */
kmcode kmkl_get_all(kmkl *kl, kmkl_call *call, const char *path, json_object **out,
                    kmerr *err);

/* POST `body` (a JSON:API document, borrowed) to `path`; *out is the whole response
 * document. */
kmcode kmkl_post(kmkl *kl, kmkl_call *call, const char *path, json_object *body,
                 json_object **out, kmerr *err);

/* Fan-out: GET each of paths[0..n) concurrently (curl multi) within the tier's rate.
 * outs[i] / codes[i] / errs[i] receive each request's own result (errs may be NULL), so one
 * failure never hides the others. Returns KM_OK unless the whole batch could not run
 * (cancelled, deadline). */
kmcode kmkl_get_many(kmkl *kl, kmkl_call *call, const char *const *paths, size_t n,
                     json_object **outs, kmcode *codes, kmerr *errs, kmerr *err);

/* Plan `n_calls` requests of the kind `method` `path` (one tier/bucket) for `acct` before the
 * first is made. Count only the requests the cache will not answer (kmkl_cached): a cached
 * answer costs no slot. KM_OK when they fit the remaining daily budget and, at the tier's
 * steady rate, finish before `deadline_ms` (km_now_ms time; 0 = no deadline). Otherwise
 * details calls_needed, calls_that_fit (how many would fit now), estimated_seconds and tier,
 * and:
 *   KM_INVALID_ARGUMENT when they can never fit — more than the daily cap, or longer than the
 *     deadline allows even with idle windows: no retry helps, only a smaller request;
 *   KM_RATE_LIMITED with retry_after_s > 0 when they would fit later (today's budget or the
 *     windows are in use).
 * Nothing is taken from the budget. */
kmcode kmkl_plan(kmkl *kl, const struct kmaccount *acct, const char *method, const char *path,
                 int n_calls, int64_t deadline_ms, kmerr *err);

/* 1 when the shared cache holds a fresh answer to `method` `path` (+ `body`, a POST's
 * JSON:API document, borrowed; NULL for a GET) for `acct`, so that request would cost no
 * Klaviyo call; 0 otherwise, and always 0 when caching is off. Reads only: takes no rate slot
 * and no in-flight marker. A hit may still expire before the request is made. */
int kmkl_cached(kmkl *kl, const struct kmaccount *acct, const char *method, const char *path,
                json_object *body);

/* What an account has left of Klaviyo's limits (kmtier_budget_read in tier.h). */
kmcode kmkl_budget_read(kmkl *kl, const struct kmaccount *acct, kmtier_budget *out, kmerr *err);

/* Remaining report budget of `acct` today (the 225/day window) and seconds until a slot
 * frees; for metadata and operators. */
kmcode kmkl_report_budget(kmkl *kl, const struct kmaccount *acct, int *remaining,
                          int64_t *reset_ms, kmerr *err);

#endif
