/* metrics.h — the counters behind GET /metrics, shared by every process of klaviyo-restd.
 *
 * Design: one table in anonymous shared memory (mmap MAP_SHARED|MAP_ANONYMOUS), made by the
 * master before it forks the first worker. Every worker, and every service thread in it,
 * adds to the same lock-free _Atomic counters, so a scrape of any worker reads the sum over
 * all workers (and over worker respawns and reloads: the table lives as long as the master).
 * No store round trip and no lock on the request path; a counter update is one relaxed
 * atomic add. Replicas (containers, hosts) each have their own table: Prometheus sums those.
 *
 * Owns:    the table (kmmet_init maps it, kmmet_free unmaps it in the process that mapped it).
 *          kmmet_render's text belongs to the caller (free()).
 * Threads: every kmmet_* hook is safe from any thread of any process that inherited the
 *          table; kmmet_init/kmmet_free only in the master, before the first fork / at exit.
 * Fork:    the mapping is inherited; children never map or unmap it.
 * Fails:   kmmet_init returns KM_INTERNAL_ERROR when mmap fails (the reason in err->msg).
 *          Without a table (tests, the shim) every hook is a no-op and kmmet_render gives an
 *          empty text.
 *
 * Label values are bounded: routes are the fixed names given to kmmet_init (anything else
 * counts as "other"), statuses a fixed list (anything else is "other"), tiers the client's,
 * accounts at most KMMET_MAX_ACCOUNTS (later ones are not tracked).
 */
#ifndef KM_METRICS_H
#define KM_METRICS_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

#define KMMET_MAX_ROUTES   48
#define KMMET_MAX_ACCOUNTS 64

enum kmmet_cache { KMMET_CACHE_HIT = 0, KMMET_CACHE_MISS, KMMET_CACHE_STALE, KMMET_CACHE_N };

/* Map the table and name its routes (copied; at most KMMET_MAX_ROUTES - 1, "other" is
 * added). Called again, it keeps the existing table (and its counts). */
kmcode kmmet_init(const char *const *routes, size_t n_routes, kmerr *err);
void kmmet_free(void);

/* One HTTP answer: its route name (one given to kmmet_init, else "other"), status and
 * duration in milliseconds. */
void kmmet_request(const char *route, int status, int64_t ms);
/* A lookup in the answer cache (answers.h) of a call whose answer may be kept: served from
 * it (hit 1) or computed (hit 0). */
void kmmet_answer_cache(int hit);
/* A kept answer computed again ahead of its expiry: kept anew (1) or failed (0). */
void kmmet_answer_refresh(int kept);
/* A lookup in the shared Klaviyo response cache: fresh hit, miss, or an expired answer
 * served because Klaviyo failed. */
void kmmet_cache(enum kmmet_cache result);
/* A request that waited for an identical one in flight instead of calling Klaviyo. */
void kmmet_coalesced(void);
/* A finished Klaviyo request of tier `tier` (a kmtier) with HTTP `status` (0: no answer —
 * transport error or timeout). A 429 also counts as throttled. */
void kmmet_klaviyo(int tier, long status);
/* The reports budget (the 225/day window) left to `account`, as last seen. */
void kmmet_report_budget(const char *account, int remaining);
/* Supervision, from the master. */
void kmmet_workers_alive(int n);
void kmmet_respawn(void);
void kmmet_reload(int ok);

/* The whole table in the Prometheus text exposition format (version 0.0.4). A new
 * NUL-terminated string the caller frees; *len its length. */
char *kmmet_render(size_t *len);

#endif
