/* store_impl.h — private to the store: the backend table and the window arithmetic that
 * store.c and the backends (store_lmdb*.c, store_redis.c) share. Nothing outside common/store/
 * includes it.
 *
 * Owns:    a backend owns its connection state (LMDB env reference, hiredis contexts); its
 *          close function releases it and accepts NULL.
 * Threads: every backend function is safe from any thread of the process that opened it.
 * Fails:   backend functions return the codes of store.h, plus KM_STORE_UNREACHABLE when the backend
 *          cannot be reached at all (Redis I/O error): store.c then serves the call from the
 *          process-local fallback and marks the store degraded. LMDB never returns it.
 */
#ifndef KM_STORE_IMPL_H
#define KM_STORE_IMPL_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>


/* Longest marker owner token (host:pid:tid:nonce), NUL included. */
#define KMSTORE_TOKEN_MAX 128

typedef struct kmstore_be kmstore_be;

struct kmstore_ops {
    const char *name;

    /* On KM_OK *out is a backend the caller closes. A Redis backend opens even when the
     * server is down (the first call reports KM_STORE_UNREACHABLE); only bad settings fail. */
    kmcode (*open)(const kmstore_opts *o, kmstore_be **out, kmerr *err);
    void (*close)(kmstore_be *be);

    kmcode (*cache_get)(kmstore_be *be, const char *key, char **body, size_t *len,
                        int64_t *age_ms, int *fresh, kmerr *err);
    kmcode (*cache_put)(kmstore_be *be, const char *key, const char *body, size_t len,
                        int ttl_s, kmerr *err);
    kmcode (*cache_clear)(kmstore_be *be, kmerr *err);

    /* lim is validated by store.c. On KM_RATE_LIMITED *wait_ms > 0 and nothing is recorded
     * in the window. ticket NULL: a plain take (store.h); else the take in turn, lease_ms > 0
     * (kmstore_queue_turn says what happens to the queue). */
    kmcode (*take)(kmstore_be *be, const char *bucket, const kmlimit *lim, const char *ticket,
                   int lease_ms, int64_t *wait_ms, kmerr *err);
    /* Remove `ticket` from the queue of `bucket` (no-op when absent). */
    kmcode (*leave)(kmstore_be *be, const char *bucket, const char *ticket, kmerr *err);
    kmcode (*remaining)(kmstore_be *be, const char *bucket, const kmlimit *lim, int win,
                        int *remaining, int64_t *reset_ms, kmerr *err);

    /* `token` names the owner (one thread of one process); unlock deletes only its own. */
    kmcode (*lock)(kmstore_be *be, const char *key, int ttl_ms, const char *token,
                   int *acquired, kmerr *err);
    kmcode (*unlock)(kmstore_be *be, const char *key, const char *token, kmerr *err);

    /* Reconnect if needed and check the backend answers: KM_OK or KM_STORE_UNREACHABLE. NULL for a
     * backend that cannot go away. */
    kmcode (*probe)(kmstore_be *be, kmerr *err);

    /* Where the backend lives, for logs ("127.0.0.1:6379/0"); never holds a password. */
    const char *(*where)(const kmstore_be *be);
};

extern const struct kmstore_ops kmstore_lmdb_ops;
extern const struct kmstore_ops kmstore_redis_ops;

/* --- for store_loop.c -------------------------------------------------------------------- */

/* The backend of st, and whether it is Redis. */
kmstore_be *kmstore_be_of(kmstore *st);
int kmstore_is_redis(const kmstore *st);
/* kmstore_degraded without trying to reconnect (which may block): for a loop thread. */
int kmstore_down(kmstore *st);

/* Where a Redis backend connects and how it logs in (borrowed from the backend). */
struct kmredis_info {
    const char *host;
    int         port;
    const char *user;       /* NULL: AUTH with the password alone */
    const char *pass;       /* NULL: no AUTH */
    int         db;
    const char *where;      /* host:port/db, for logs */
};
void kmredis_info(const kmstore_be *be, struct kmredis_info *out);

/* The Redis scripts a reader runs: the cache read (KEYS km:c:<key> -> {now, s, f, g, body})
 * and the rate windows (see store_redis.c). Returns the script's text; sha receives its
 * SHA-1 once a connection has loaded the scripts, else "". */
enum kmredis_script { KMREDIS_GET, KMREDIS_RATE };
const char *kmredis_script(kmstore_be *be, enum kmredis_script s, char sha[41]);

/* The Lua scripts of the Redis backend (store_redis_lua.c); each says its KEYS and ARGV. */
enum kmredis_lua_id {
    KMLUA_GET, KMLUA_PUT, KMLUA_CLEAR, KMLUA_RATE, KMLUA_UNLOCK, KMLUA_LEAVE, KMLUA_COUNT
};
extern const char *const kmredis_lua[KMLUA_COUNT];

/* --- window arithmetic (store.h: sliding windows, enforced exactly as given) ------------- */

/* The longest window of lim, and the largest max of its windows. */
int64_t kmstore_win_longest(const kmlimit *lim);
int kmstore_win_maxcount(const kmlimit *lim);

/* Over the recorded times ts[0..n) (ascending, none later than now): 0 when every window
 * of lim has room at `now`, otherwise how many ms until every window has room (> 0). */
int64_t kmstore_win_wait(const int64_t *ts, size_t n, int64_t now, const kmlimit *lim);

/* Room left in window `win` at `now`, and ms until the oldest counted entry leaves it (0 when
 * none is counted). */
void kmstore_win_remaining(const int64_t *ts, size_t n, int64_t now, const kmlimit *lim,
                           int win, int *remaining, int64_t *reset_ms);

/* Drop the entries of ts[0..*n) that no window of lim counts any more (older than the
 * longest window at now) and, beyond that, all but the newest kmstore_win_maxcount entries.
 * Keeps order; updates *n. */
void kmstore_win_prune(int64_t *ts, size_t *n, int64_t now, const kmlimit *lim);

/* --- the queue of waiters of a bucket (store.h: waiting in arrival order) --------------- */

/* One queued ticket: its lease ends at `until` (the backend's clock, ms). */
struct kmstore_qent {
    int64_t until;
    char    ticket[KMSTORE_TICKET_MAX];
};

/* The decision of a take at `now` over the window log ts[0..nts) (pruned) and the queue
 * q[0..*n) in ticket order (arrival order, store.h), which has room for one more entry:
 * drops expired tickets, then answers 0 when the caller may take now (the caller records the
 * take; `ticket`, when given, has left q), else the wait (> 0) with `ticket`, when given,
 * queued in its place if it was not (and fewer than KMSTORE_QUEUE_MAX are) and its lease
 * renewed to now + wait + lease_ms.
 * *changed is 1 when q was modified. ticket NULL or "": a plain take, q only pruned. */
int64_t kmstore_queue_turn(struct kmstore_qent *q, size_t *n, const int64_t *ts, size_t nts,
                           int64_t now, const kmlimit *lim, const char *ticket, int lease_ms,
                           int *changed);

/* Remove `ticket` from q[0..*n); 1 when it was there. */
int kmstore_queue_leave(struct kmstore_qent *q, size_t *n, const char *ticket);

#endif
