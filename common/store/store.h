/* store.h — the shared store: response cache, rate-limit windows and their queues of waiters,
 * in-flight markers.
 *
 * Owns:    a kmstore owns its backend connection(s); kmstore_close releases them (NULL ok).
 *          Bodies returned by kmstore_cache_get are new buffers the caller frees (free()).
 * Threads: one kmstore per process, opened after fork(); every call is safe from any of
 *          its threads (the backend serialises as it must: LMDB transactions, one hiredis
 *          context per thread or a lock — never a context shared unlocked).
 * Fork:    never carry a kmstore across fork(); open it in the child.
 * Fails:   KM_OK or a code with err->msg. A missing cache key is KM_NOT_FOUND, not an error.
 *          With Redis, a lost connection is not an error either: the store switches to a
 *          process-local fallback (local cache miss, local limiter at a conservative share of
 *          the budget), logs one warning, reports it through kmstore_degraded(), and goes
 *          back to Redis when it answers again. Queued tickets do not cross that switch: a
 *          waiter whose backend changed joins the other one's queue anew.
 *
 * Backends: LMDB (default; a file under STORE_DIR, mode 0600, shared by every process on
 * the host) or Redis (REDIS_URL; shared by every host; rate windows as atomic Lua scripts).
 */
#ifndef KM_STORE_H
#define KM_STORE_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

typedef struct kmstore kmstore;

typedef struct kmstore_opts {
    const char *redis_url;      /* NULL: LMDB */
    const char *dir;            /* LMDB directory (created 0700 if missing) */
    size_t      max_bytes;      /* bound on the cache, counted with kmstore_charge; least
                                   recently stored go first (0 means the default, 256 MiB) */
    int         stale_grace_s;  /* expired entries stay readable as stale this long */
    int         local_share;    /* fallback limiter: percent of each limit used locally when
                                   Redis is away (0 means the default, 50) */
} kmstore_opts;

/* Open the store o describes; on KM_OK *out is the caller's (kmstore_close). On failure *out
 * is NULL and the code says whether retrying can help: KM_CONFIG_ERROR when the settings
 * cannot work as given (REDIS_URL unparsable or rediss://; STORE_DIR empty, not a directory,
 * refused for permission or on a read-only file system) — a process that meets it at start
 * exits 78; KM_SERVICE_UNAVAILABLE when the LMDB file cannot be opened now (locked, broken,
 * something else in its place, no space): a later attempt may succeed. A Redis that does not
 * answer is not a failure (see Fails). */
kmcode kmstore_open(const kmstore_opts *o, kmstore **out, kmerr *err);
void kmstore_close(kmstore *st);

/* "lmdb" or "redis". */
const char *kmstore_backend(const kmstore *st);

/* 1 while Redis is configured but unreachable (the local fallback is serving). */
int kmstore_degraded(kmstore *st);

/* --- response cache ------------------------------------------------------------------ */

/* Look up `key`. On KM_OK *body is a new buffer (NUL-terminated, *len bytes), *age_ms how
 * long ago it was stored, and *fresh 1 when within its TTL or 0 when expired but still in
 * its stale grace period. KM_NOT_FOUND when absent or past the grace period. */
kmcode kmstore_cache_get(kmstore *st, const char *key, char **body, size_t *len,
                         int64_t *age_ms, int *fresh, kmerr *err);

/* Store `body` under `key`, fresh for ttl_s seconds (ttl_s > 0). Evicts the oldest entries
 * when the size bound would be passed. An entry whose charge exceeds the bound is not stored:
 * KM_PAYLOAD_TOO_LARGE, and the cache is unchanged. A cache that cannot be written is never a
 * reason to fail a request: callers treat a failed put as "not cached". */
kmcode kmstore_cache_put(kmstore *st, const char *key, const char *body, size_t len, int ttl_s,
                         kmerr *err);

/* What an entry counts against max_bytes: its body, its key twice (the entry and its place
 * in the eviction order) and 128 bytes of bookkeeping, so that many small bodies under long
 * keys cannot outgrow the store while their bodies alone look small. */
size_t kmstore_charge(size_t key_len, size_t body_len);

/* Drop every cache entry (tests, operators). */
kmcode kmstore_cache_clear(kmstore *st, kmerr *err);

/* --- rate limits ------------------------------------------------------------------------ */

/* A limit is up to three windows, each "at most `max` requests in any `window_ms`". The
 * windows slide: no interval of that length, wherever it starts, holds more than max
 * requests, so Klaviyo's fixed windows (whatever their alignment) are never exceeded. The
 * store enforces window_ms exactly as given and adds no margin of its own: the one margin for
 * the delay before Klaviyo counts a request is in the windows the client passes (tier.h). */
typedef struct kmlimit {
    int nwin;
    struct {
        int64_t window_ms;
        int     max;
    } win[3];
} kmlimit;

/* Take one request from `bucket` (e.g. "acme:reports") if every window allows it now, with
 * room left for the callers queued on it (kmstore_take_turn). On KM_OK the request is
 * recorded. KM_RATE_LIMITED when a window is full: nothing is recorded, *wait_ms says when
 * the first slot frees (err->retry_after_s is set, rounded up). */
kmcode kmstore_take(kmstore *st, const char *bucket, const kmlimit *lim, int64_t *wait_ms,
                    kmerr *err);

/* --- waiting in arrival order ---------------------------------------------------------- */

/* A caller that will wait for a slot holds a ticket, and calls that wait on one bucket are
 * served in the order they arrived, across the threads, processes and hosts that share the
 * store. A ticket carries its call's arrival (wall-clock ms) and tickets order by it, then by
 * issue; the order is the ticket's bytes (kmstore_ticket writes the arrival first, in fixed
 * width hex). Each bucket has a queue of tickets in that order (LMDB: a record beside its
 * window, changed in the take's write transaction; Redis: sorted sets touched by the take's
 * Lua script, scored by the arrival); a ticket takes its place on its first refusal and leaves
 * the queue when its take succeeds. A take succeeds only when the window has room for every
 * live ticket ahead of the caller and for the caller (so a bucket nobody waits on is one
 * step, as before). A call that arrived earlier but reaches the queue later is placed ahead
 * of those that arrived after it. Every refusal renews the ticket's
 * lease until the moment its wait ends plus lease_ms: a waiter that died or stopped calling
 * stops blocking the queue lease_ms after it should have taken its turn. A waiter that gives
 * up (cancelled, deadline passed) calls kmstore_leave. While Redis is away the fallback keeps
 * the same queue per process (see Fails). A queue holds at most KMSTORE_QUEUE_MAX tickets;
 * beyond that a ticket waits without a place, like a plain kmstore_take. */
#define KMSTORE_TICKET_MAX 48
#define KMSTORE_QUEUE_MAX  1024
#define KMSTORE_TURN_MS    50    /* a slot is free, older tickets come first: look again */

/* A new ticket in ticket[KMSTORE_TICKET_MAX] for a call that arrived at `arrived_wall_ms`
 * (km_wall_ms time; <= 0: now): the arrival as 12 hex digits, then a name no other caller of
 * any process or host will hold (a random number per opened store, then a counter). */
void kmstore_ticket(kmstore *st, int64_t arrived_wall_ms, char *ticket);

/* kmstore_take in turn: as kmstore_take, for the holder of `ticket` (kmstore_ticket) that
 * keeps its place in the queue of `bucket` as described above (lease_ms > 0). On
 * KM_RATE_LIMITED *wait_ms is when to call again: when the next slot frees, or a short turn
 * (KMSTORE_TURN_MS) when a slot is free but older tickets come first. kmstore_take is the
 * same without a ticket: it respects the queue (succeeds only when the window has room for
 * everyone queued and itself) but never joins it. */
kmcode kmstore_take_turn(kmstore *st, const char *bucket, const kmlimit *lim,
                         const char *ticket, int lease_ms, int64_t *wait_ms, kmerr *err);

/* Give up the place of `ticket` in the queue of `bucket` (no-op when it holds none). */
kmcode kmstore_leave(kmstore *st, const char *bucket, const char *ticket, kmerr *err);

/* How many requests window `win` of `bucket` still allows now (no request recorded), and in
 * how many ms the oldest counted request leaves that window (0 when it is empty). */
kmcode kmstore_remaining(kmstore *st, const char *bucket, const kmlimit *lim, int win,
                         int *remaining, int64_t *reset_ms, kmerr *err);

/* --- in-flight markers (coalescing) ----------------------------------------------------- */

/* Try to become the one fetcher of `key` for up to ttl_ms. *acquired is 1 when this caller
 * holds the marker, 0 when another process or thread does. A marker belongs to the calling
 * thread: lock again from the same thread answers 0, and only that thread can unlock it.
 * When markers cannot be recorded (an LMDB store holding thousands of live markers), the
 * answer is 1 without a marker: the caller fetches itself rather than fail. */
kmcode kmstore_lock(kmstore *st, const char *key, int ttl_ms, int *acquired, kmerr *err);

/* Release a marker this caller holds (no-op when it expired or is not held). */
kmcode kmstore_unlock(kmstore *st, const char *key, kmerr *err);

#endif
