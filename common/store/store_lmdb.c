/* store_lmdb.c — the LMDB backend: one file <dir>/store.mdb (0600) shared by every process on
 * the host.
 *
 * Layout (named databases in one environment):
 *   cache  dbkey -> entry header + full key + body
 *   age    big-endian store sequence + dbkey -> ""   (eviction order: oldest stored first)
 *   meta   "bytes" -> total charge (kmstore_charge) cached; "seq" -> last store sequence
 *   rate   dbkey -> ascending wall-clock ms of the takes the longest window still counts;
 *          dbkey of "?" + bucket -> its queue of waiters (struct kmstore_qent, arrival order)
 *   mark   dbkey -> expiry (wall-clock ms) + owner token; at most MARKS_MAX live ones
 * A dbkey is "=" + key for keys up to KEY_DIRECT bytes, else "#" + a prefix + a 64-bit hash
 * (LMDB keys are at most 511 bytes); the cache keeps the full key to tell collisions apart.
 *
 * Processes: LMDB's lock file serialises writers and tracks readers across processes. Threads:
 * every call runs in its own short transaction. Opening the file, the per-process registry of
 * envs and the transactions are store_lmdb_env.c's (store_lmdb.h); this file holds the records.
 * Times are CLOCK_REALTIME because several processes (and restarts) must agree on them.
 */
#include "log.h"
#include "store_lmdb.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define KEY_DIRECT 400
#define KEY_PREFIX 380
#define DBKEY_MAX (1 + KEY_DIRECT)
#define AGEKEY_MAX (8 + DBKEY_MAX)
/* Expired entries dropped from the front of the age index on each put, at most. */
#define SWEEP_MAX 64
/* Attempts of a write that meets MDB_MAP_FULL, evicting more before each retry. */
#define FULL_TRIES 6
/* Markers recorded at most; beyond it expired ones are swept, then a lock is granted without
 * a marker (a duplicate fetch beats a failed request). Klaviyo's limits keep the real number
 * of concurrent fetches far below it. */
#define MARKS_MAX 4096

struct kmstore_be {
    struct kmstore_env *e;
    uint64_t            max_bytes;
    int64_t             grace_ms;
    char                where[PATH_MAX + 8];
};

/* Cache value header; the full key and then the body follow it. */
struct centry {
    uint64_t seq;            /* store order: its age index key */
    int64_t  stored_ms;
    int64_t  fresh_until_ms;
    int64_t  gone_at_ms;     /* past this, not even stale: deleted when met */
    uint64_t body_len;
    uint32_t key_len;
    uint32_t pad;
};

/* Warnings about a full store repeat on every request while it lasts: one a minute each. */
enum { WARN_FULL, WARN_MARKS, WARN_COUNT };
static _Atomic int64_t warned_ms[WARN_COUNT];

static void
warn_rarely(int kind, const char *event, const char *msg)
{
    int64_t now = km_now_ms();
    int64_t last = atomic_load(&warned_ms[kind]);

    if (last != 0 && now - last < 60000)
        return;
    if (atomic_compare_exchange_strong(&warned_ms[kind], &last, now))
        kmlogf(KMLOG_WARN, event, "%s", msg);
}

/* --- keys -------------------------------------------------------------------------------- */

/* buf has DBKEY_MAX bytes. */
static MDB_val
db_key(const char *key, char *buf)
{
    size_t  n = strlen(key);
    MDB_val v;

    if (n <= KEY_DIRECT) {
        buf[0] = '=';
        memcpy(buf + 1, key, n);
        v.mv_size = n + 1;
    } else {
        buf[0] = '#';
        memcpy(buf + 1, key, KEY_PREFIX);
        snprintf(buf + 1 + KEY_PREFIX, DBKEY_MAX - 1 - KEY_PREFIX, "%016llx",
                 (unsigned long long)km_fnv1a64(KM_FNV64_INIT, key, n));
        v.mv_size = 1 + KEY_PREFIX + 16;
    }
    v.mv_data = buf;
    return v;
}

static MDB_val
age_key(uint64_t seq, const MDB_val *dbk, char *buf)
{
    uint64_t t = seq;
    MDB_val  v;

    for (int i = 7; i >= 0; i--) {
        buf[i] = (char)(t & 0xff);
        t >>= 8;
    }
    memcpy(buf + 8, dbk->mv_data, dbk->mv_size);
    v.mv_data = buf;
    v.mv_size = 8 + dbk->mv_size;
    return v;
}

/* --- open / close ------------------------------------------------------------------------ */

static kmcode
lmdb_open(const kmstore_opts *o, kmstore_be **out, kmerr *err)
{
    kmstore_be *be;
    kmcode      rc;

    *out = NULL;
    if (!o->dir || !o->dir[0])
        return kmerr_set(err, KM_CONFIG_ERROR, "STORE_DIR is empty");
    be = km_xcalloc(1, sizeof(*be));
    be->max_bytes = o->max_bytes;
    be->grace_ms = (int64_t)o->stale_grace_s * 1000;
    rc = kmstore_env_get(o->dir, be->max_bytes, &be->e, err);
    if (rc != KM_OK) {
        free(be);
        return rc;
    }
    snprintf(be->where, sizeof(be->where), "%s", be->e->path);
    *out = be;
    return KM_OK;
}

static void
lmdb_close(kmstore_be *be)
{
    if (!be)
        return;
    if (be->e)
        kmstore_env_release(be->e);
    free(be);
}

static const char *
lmdb_where(const kmstore_be *be)
{
    return be->where;
}

/* --- cache ------------------------------------------------------------------------------- */

static uint64_t
get_meta(struct kmstore_env *e, MDB_txn *txn, const char *name)
{
    MDB_val  k = { strlen(name), (void *)(uintptr_t)name }, v;
    uint64_t n = 0;

    if (mdb_get(txn, e->meta, &k, &v) == MDB_SUCCESS && v.mv_size == sizeof(n))
        memcpy(&n, v.mv_data, sizeof(n));
    return n;
}

static int
set_meta(struct kmstore_env *e, MDB_txn *txn, const char *name, uint64_t n)
{
    MDB_val k = { strlen(name), (void *)(uintptr_t)name }, v = { sizeof(n), &n };

    return mdb_put(txn, e->meta, &k, &v, 0);
}

static uint64_t
get_total(struct kmstore_env *e, MDB_txn *txn)
{
    return get_meta(e, txn, "bytes");
}

static int
set_total(struct kmstore_env *e, MDB_txn *txn, uint64_t total)
{
    return set_meta(e, txn, "bytes", total);
}

static int
read_header(const MDB_val *v, struct centry *h)
{
    if (v->mv_size < sizeof(*h))
        return -1;
    memcpy(h, v->mv_data, sizeof(*h));
    if (v->mv_size != sizeof(*h) + h->key_len + h->body_len)
        return -1;
    return 0;
}

/* Delete the cache entry under dbk (and its age index entry); subtract its body bytes from
 * *total. MDB_NOTFOUND when there is none. */
static int
drop_entry(struct kmstore_env *e, MDB_txn *txn, MDB_val *dbk, uint64_t *total)
{
    MDB_val       v, ak;
    struct centry h;
    char          abuf[AGEKEY_MAX];
    int           rc;

    rc = mdb_get(txn, e->cache, dbk, &v);
    if (rc != MDB_SUCCESS)
        return rc;
    if (read_header(&v, &h) == 0) {
        ak = age_key(h.seq, dbk, abuf);
        rc = mdb_del(txn, e->age, &ak, NULL);
        if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
            return rc;
        uint64_t c = kmstore_charge(h.key_len, h.body_len);

        *total = *total > c ? *total - c : 0;
    }
    return mdb_del(txn, e->cache, dbk, NULL);
}

/* What one pass over the age index (oldest first) removes. */
struct evict_goal {
    uint64_t target;  /* evict while the cached bytes exceed this */
    size_t   count;   /* ... or until this many more entries went */
    size_t   limit;   /* at most this many deletions in this transaction */
    int      sweep;   /* then drop up to this many entries already past their grace period */
    int64_t  now;     /* wall-clock ms, for the sweep */
    int      empty;   /* out: nothing is left */
};

static int
evict(struct kmstore_env *e, MDB_txn *txn, uint64_t *total, struct evict_goal *g)
{
    MDB_cursor *cur;
    MDB_val     ak, av, dbk, v;
    int         rc;

    rc = mdb_cursor_open(txn, e->age, &cur);
    if (rc != MDB_SUCCESS)
        return rc;
    while (g->limit > 0) {
        struct centry h;
        int           gone, must;

        rc = mdb_cursor_get(cur, &ak, &av, MDB_FIRST);
        if (rc == MDB_NOTFOUND) {
            /* nothing left: no bytes can be counted (repairs any drift) */
            *total = 0;
            g->empty = 1;
            rc = MDB_SUCCESS;
            break;
        }
        if (rc != MDB_SUCCESS)
            break;
        if (ak.mv_size <= 8) {
            /* not an index key this module writes: drop it */
            g->limit--;
            rc = mdb_cursor_del(cur, 0);
            if (rc != MDB_SUCCESS)
                break;
            continue;
        }
        dbk.mv_data = (char *)ak.mv_data + 8;
        dbk.mv_size = ak.mv_size - 8;
        rc = mdb_get(txn, e->cache, &dbk, &v);
        gone = rc != MDB_SUCCESS || read_header(&v, &h) != 0 || h.gone_at_ms <= g->now;
        must = *total > g->target || g->count > 0;
        if (!must && !(gone && g->sweep > 0)) {
            rc = MDB_SUCCESS;
            break;
        }
        if (!must)
            g->sweep--;
        else if (g->count > 0)
            g->count--;
        g->limit--;
        if (rc == MDB_SUCCESS) {
            char keep[DBKEY_MAX];

            /* dbk points into the cursor's page; copy it before deleting under it */
            memcpy(keep, dbk.mv_data, dbk.mv_size);
            dbk.mv_data = keep;
            rc = drop_entry(e, txn, &dbk, total);
        } else if (rc == MDB_NOTFOUND) {
            rc = mdb_cursor_del(cur, 0);    /* an index entry without its entry */
        }
        if (rc != MDB_SUCCESS)
            break;
    }
    mdb_cursor_close(cur);
    return rc;
}

/* One committed batch of evictions. */
static int
evict_batch(struct kmstore_env *e, struct evict_goal *g)
{
    MDB_txn *txn;
    uint64_t total;
    int      rc;

    rc = kmstore_txn_begin(e, 0, &txn);
    if (rc != MDB_SUCCESS)
        return rc;
    total = get_total(e, txn);
    rc = evict(e, txn, &total, g);
    if (rc == MDB_SUCCESS)
        rc = set_total(e, txn, total);
    if (rc == MDB_SUCCESS)
        return kmstore_txn_commit(e, txn);
    kmstore_txn_abort(e, txn);
    return rc;
}

/* Drop every cache entry and its age index and zero the byte count, in one transaction. */
static int
empty_cache(struct kmstore_env *e)
{
    MDB_txn *txn;
    int      rc;

    rc = kmstore_txn_begin(e, 0, &txn);
    if (rc != MDB_SUCCESS)
        return rc;
    rc = mdb_drop(txn, e->cache, 0);
    if (rc == MDB_SUCCESS)
        rc = mdb_drop(txn, e->age, 0);
    if (rc == MDB_SUCCESS)
        rc = set_total(e, txn, 0);
    if (rc == MDB_SUCCESS)
        rc = kmstore_txn_commit(e, txn);
    else
        kmstore_txn_abort(e, txn);
    return rc;
}

/* MDB_MAP_FULL: drop the oldest quarter of the cache entries and at least a quarter of its
 * bytes (everything on the last tries), so that the write that failed can be retried.
 * Counting entries matters: many small bodies under long keys fill the map before their
 * bytes reach the bound. Deleting needs copy-on-write pages too, which a full map lacks, so
 * the work goes in small committed batches (halved when even a batch meets a full map); the
 * pages each batch frees serve the next ones (LMDB reuses a page two commits after it was
 * freed). */
static void
make_room(struct kmstore_env *e, int attempt, uint64_t need)
{
    struct evict_goal g = { 0 };
    MDB_txn          *txn;
    MDB_stat          ms;
    uint64_t          total = 0;
    size_t            batch = 64;
    int               all = attempt >= FULL_TRIES - 2;
    int               rc = MDB_SUCCESS;

    if (kmstore_txn_begin(e, MDB_RDONLY, &txn) != MDB_SUCCESS)
        return;
    total = get_total(e, txn);
    if (mdb_stat(txn, e->cache, &ms) == MDB_SUCCESS)
        g.count = all ? ms.ms_entries : ms.ms_entries / 4 + 1;
    kmstore_txn_abort(e, txn);
    g.target = all ? 0 : total - total / 4;
    g.target = g.target > need ? g.target - need : 0;
    g.now = INT64_MAX;
    /* every batch deletes at least one entry or finds the cache empty; the bound on rounds
     * only guards against a store that other processes refill as fast */
    for (int round = 0; round < 100000 && !g.empty && (g.count > 0 || total > g.target);
         round++) {
        struct evict_goal before = g;

        g.limit = batch;
        rc = evict_batch(e, &g);
        if (rc == MDB_MAP_FULL && batch > 1) {
            g = before;
            batch /= 2;
            continue;
        }
        if (rc != MDB_SUCCESS)
            break;
        if (batch < 256)
            batch *= 2;
        /* re-read the bytes left: other processes write too */
        if (kmstore_txn_begin(e, MDB_RDONLY, &txn) != MDB_SUCCESS)
            break;
        total = get_total(e, txn);
        kmstore_txn_abort(e, txn);
    }
    if (rc != MDB_MAP_FULL)
        return;
    /* not even one deletion fits: empty the cache databases outright */
    rc = empty_cache(e);
    warn_rarely(WARN_FULL, "store_full",
                rc == MDB_SUCCESS ? "store map full: cache emptied"
                                  : "store map full: even emptying the cache failed");
}

/* The entry under dbk is past its grace period: delete it unless it changed meanwhile. */
static void
drop_if_gone(struct kmstore_env *e, MDB_val *dbk)
{
    MDB_txn      *txn;
    MDB_val       v;
    struct centry h;
    uint64_t      total;
    int           rc;

    if (kmstore_txn_begin(e, 0, &txn) != MDB_SUCCESS)
        return;
    rc = mdb_get(txn, e->cache, dbk, &v);
    if (rc == MDB_SUCCESS && read_header(&v, &h) == 0 && h.gone_at_ms <= km_wall_ms()) {
        total = get_total(e, txn);
        rc = drop_entry(e, txn, dbk, &total);
        if (rc == MDB_SUCCESS)
            rc = set_total(e, txn, total);
        if (rc == MDB_SUCCESS) {
            kmstore_txn_commit(e, txn);
            return;
        }
    }
    /* MAP_FULL or nothing to do: eviction will get to it */
    kmstore_txn_abort(e, txn);
}

static kmcode
lmdb_cache_get(kmstore_be *be, const char *key, char **body, size_t *len, int64_t *age_ms,
               int *fresh, kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk, v;
    struct centry   h;
    char            kbuf[DBKEY_MAX];
    size_t          klen = strlen(key);
    int64_t         now = km_wall_ms();
    int             rc, gone = 0;
    kmcode          code = KM_NOT_FOUND;

    dbk = db_key(key, kbuf);
    rc = kmstore_txn_begin(e, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "read");
    rc = mdb_get(txn, e->cache, &dbk, &v);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND) {
        kmstore_txn_abort(e, txn);
        return kmstore_lmdb_fail(err, rc, "read");
    }
    /* a different key with the same hashed dbkey is a miss */
    if (rc == MDB_SUCCESS && read_header(&v, &h) == 0 && h.key_len == klen &&
        memcmp((char *)v.mv_data + sizeof(h), key, klen) == 0) {
        if (h.gone_at_ms <= now) {
            gone = 1;
        } else {
            *body = km_xmalloc(h.body_len + 1);
            memcpy(*body, (char *)v.mv_data + sizeof(h) + klen, h.body_len);
            (*body)[h.body_len] = '\0';
            *len = h.body_len;
            *age_ms = now > h.stored_ms ? now - h.stored_ms : 0;
            *fresh = now < h.fresh_until_ms;
            code = KM_OK;
        }
    }
    kmstore_txn_abort(e, txn);
    if (gone)
        drop_if_gone(e, &dbk);
    if (code != KM_OK)
        return kmerr_set(err, code, "not cached");
    return KM_OK;
}

static int
put_in(kmstore_be *be, MDB_txn *txn, MDB_val *dbk, const char *key, const char *body,
       size_t len, int ttl_s)
{
    struct kmstore_env   *e = be->e;
    struct centry     h = { 0 };
    struct evict_goal goal = { 0 };
    MDB_val           v, ak, empty = { 0, NULL };
    char              abuf[AGEKEY_MAX];
    size_t            klen = strlen(key);
    uint64_t          total = get_total(e, txn);
    int64_t           now = km_wall_ms();
    int               rc;

    rc = drop_entry(e, txn, dbk, &total);
    if (rc != MDB_SUCCESS && rc != MDB_NOTFOUND)
        return rc;
    goal.target = be->max_bytes - kmstore_charge(klen, len);
    goal.limit = SIZE_MAX;
    goal.sweep = SWEEP_MAX;
    goal.now = now;
    rc = evict(e, txn, &total, &goal);
    if (rc != MDB_SUCCESS)
        return rc;
    h.seq = get_meta(e, txn, "seq") + 1;
    rc = set_meta(e, txn, "seq", h.seq);
    if (rc != MDB_SUCCESS)
        return rc;
    h.stored_ms = now;
    h.fresh_until_ms = now + (int64_t)ttl_s * 1000;
    h.gone_at_ms = h.fresh_until_ms + be->grace_ms;
    h.body_len = len;
    h.key_len = (uint32_t)klen;
    v.mv_size = sizeof(h) + klen + len;
    v.mv_data = NULL;
    rc = mdb_put(txn, e->cache, dbk, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return rc;
    memcpy(v.mv_data, &h, sizeof(h));
    memcpy((char *)v.mv_data + sizeof(h), key, klen);
    memcpy((char *)v.mv_data + sizeof(h) + klen, body, len);
    ak = age_key(h.seq, dbk, abuf);
    rc = mdb_put(txn, e->age, &ak, &empty, 0);
    if (rc != MDB_SUCCESS)
        return rc;
    return set_total(e, txn, total + kmstore_charge(klen, len));
}

static kmcode
lmdb_cache_put(kmstore_be *be, const char *key, const char *body, size_t len, int ttl_s,
               kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk;
    char            kbuf[DBKEY_MAX];
    int             rc = MDB_SUCCESS;

    if (kmstore_charge(strlen(key), len) > be->max_bytes || strlen(key) > UINT32_MAX)
        return kmerr_set(err, KM_PAYLOAD_TOO_LARGE,
                         "a body of %zu bytes exceeds the cache bound of %llu bytes", len,
                         (unsigned long long)be->max_bytes);
    dbk = db_key(key, kbuf);
    for (int attempt = 0; attempt < FULL_TRIES; attempt++) {
        rc = kmstore_txn_begin(e, 0, &txn);
        if (rc != MDB_SUCCESS)
            return kmstore_lmdb_fail(err, rc, "write");
        rc = put_in(be, txn, &dbk, key, body, len, ttl_s);
        if (rc == MDB_SUCCESS)
            rc = kmstore_txn_commit(e, txn);
        else
            kmstore_txn_abort(e, txn);
        if (rc != MDB_MAP_FULL)
            break;
        make_room(e, attempt, len);
    }
    if (rc == MDB_MAP_FULL) {
        /* a full map never fails a request: this body is simply not cached */
        warn_rarely(WARN_FULL, "store_full", "store map full: a body could not be cached");
        return KM_OK;
    }
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "write");
    return KM_OK;
}

static kmcode
lmdb_cache_clear(kmstore_be *be, kmerr *err)
{
    struct kmstore_env *e = be->e;
    int             rc;

    rc = empty_cache(e);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "clear");
    return KM_OK;
}

/* --- rate windows ------------------------------------------------------------------------ */

/* Read the log of a bucket into a new array; n = 0 when absent. Returns an MDB code. */
static int
read_log(struct kmstore_env *e, MDB_txn *txn, MDB_val *dbk, int64_t **ts, size_t *n, size_t extra)
{
    MDB_val v;
    int     rc;

    *n = 0;
    rc = mdb_get(txn, e->rate, dbk, &v);
    if (rc == MDB_NOTFOUND) {
        *ts = km_xmalloc((extra ? extra : 1) * sizeof(**ts));
        return MDB_SUCCESS;
    }
    if (rc != MDB_SUCCESS)
        return rc;
    *n = v.mv_size / sizeof(**ts);
    *ts = km_xmalloc((*n + extra + 1) * sizeof(**ts));
    memcpy(*ts, v.mv_data, *n * sizeof(**ts));
    return MDB_SUCCESS;
}

/* The clock a log is read at: wall time, but never before its newest entry (a small step
 * back of the clock); a log whose newest entry is further ahead than any window is from
 * before a large step back and counts nothing. */
static int64_t
log_now(int64_t *ts, size_t *n, const kmlimit *lim)
{
    int64_t now = km_wall_ms();

    if (*n && ts[*n - 1] > now) {
        if (ts[*n - 1] - now > kmstore_win_longest(lim))
            *n = 0;
        else
            now = ts[*n - 1];
    }
    return now;
}

/* The queue of a bucket (its key in qk, a buffer of DBKEY_MAX) into a new array with room for
 * one more entry; *n = 0 when absent. Returns an MDB code. */
static int
read_queue(struct kmstore_env *e, MDB_txn *txn, const char *bucket, char *qk, MDB_val *qdbk,
           struct kmstore_qent **q, size_t *n)
{
    char   *name = km_xasprintf("?%s", bucket);
    MDB_val v;
    int     rc;

    *qdbk = db_key(name, qk);
    free(name);
    *n = 0;
    rc = mdb_get(txn, e->rate, qdbk, &v);
    if (rc == MDB_SUCCESS)
        *n = v.mv_size / sizeof(**q);
    else if (rc != MDB_NOTFOUND)
        return rc;
    *q = km_xmalloc((*n + 1) * sizeof(**q));
    if (*n)
        memcpy(*q, v.mv_data, *n * sizeof(**q));
    return MDB_SUCCESS;
}

static int
write_queue(struct kmstore_env *e, MDB_txn *txn, MDB_val *qdbk, struct kmstore_qent *q,
            size_t n)
{
    MDB_val v = { n * sizeof(*q), q };
    int     rc;

    if (n > 0)
        return mdb_put(txn, e->rate, qdbk, &v, 0);
    rc = mdb_del(txn, e->rate, qdbk, NULL);
    return rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
}

/* One take (kmstore_queue_turn over the window and the queue). *dirty: something to commit. */
static int
take_in(struct kmstore_env *e, MDB_txn *txn, MDB_val *dbk, const char *bucket,
        const kmlimit *lim, const char *ticket, int lease_ms, int64_t *wait_ms, int *dirty)
{
    int64_t             *ts = NULL;
    struct kmstore_qent *q = NULL;
    size_t               n, nq;
    int64_t              now;
    MDB_val              v, qdbk;
    char                 qk[DBKEY_MAX];
    int                  rc, changed = 0;

    *dirty = 0;
    rc = read_log(e, txn, dbk, &ts, &n, 1);
    if (rc != MDB_SUCCESS)
        goto out;
    rc = read_queue(e, txn, bucket, qk, &qdbk, &q, &nq);
    if (rc != MDB_SUCCESS)
        goto out;
    now = log_now(ts, &n, lim);
    kmstore_win_prune(ts, &n, now, lim);
    *wait_ms = kmstore_queue_turn(q, &nq, ts, n, now, lim, ticket, lease_ms, &changed);
    if (changed) {
        rc = write_queue(e, txn, &qdbk, q, nq);
        if (rc != MDB_SUCCESS)
            goto out;
        *dirty = 1;
    }
    if (*wait_ms > 0)
        goto out;
    ts[n++] = now;
    v.mv_size = n * sizeof(*ts);
    v.mv_data = ts;
    rc = mdb_put(txn, e->rate, dbk, &v, 0);
    *dirty = 1;
out:
    free(ts);
    free(q);
    return rc;
}

static kmcode
lmdb_take(kmstore_be *be, const char *bucket, const kmlimit *lim, const char *ticket,
          int lease_ms, int64_t *wait_ms, kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk;
    char            kbuf[DBKEY_MAX];
    int             rc = MDB_SUCCESS, dirty = 0;

    dbk = db_key(bucket, kbuf);
    for (int attempt = 0; attempt < FULL_TRIES; attempt++) {
        *wait_ms = 0;
        rc = kmstore_txn_begin(e, 0, &txn);
        if (rc != MDB_SUCCESS)
            return kmstore_lmdb_fail(err, rc, "rate write");
        rc = take_in(e, txn, &dbk, bucket, lim, ticket, lease_ms, wait_ms, &dirty);
        if (rc == MDB_SUCCESS && dirty) {
            rc = kmstore_txn_commit(e, txn);
        } else {
            kmstore_txn_abort(e, txn);
        }
        if (rc != MDB_MAP_FULL)
            break;
        make_room(e, attempt, 0);
    }
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "rate write");
    return *wait_ms > 0 ? KM_RATE_LIMITED : KM_OK;
}

static kmcode
lmdb_leave(kmstore_be *be, const char *bucket, const char *ticket, kmerr *err)
{
    struct kmstore_env  *e = be->e;
    struct kmstore_qent *q = NULL;
    MDB_txn             *txn;
    MDB_val              qdbk;
    char                 qk[DBKEY_MAX];
    size_t               nq = 0;
    int                  rc;

    rc = kmstore_txn_begin(e, 0, &txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "queue write");
    rc = read_queue(e, txn, bucket, qk, &qdbk, &q, &nq);
    if (rc == MDB_SUCCESS && kmstore_queue_leave(q, &nq, ticket)) {
        rc = write_queue(e, txn, &qdbk, q, nq);
        if (rc == MDB_SUCCESS)
            rc = kmstore_txn_commit(e, txn);
        else
            kmstore_txn_abort(e, txn);
    } else {
        kmstore_txn_abort(e, txn);
    }
    free(q);
    /* MAP_FULL while shrinking the queue: the ticket's lease removes it */
    if (rc != MDB_SUCCESS && rc != MDB_MAP_FULL)
        return kmstore_lmdb_fail(err, rc, "queue write");
    return KM_OK;
}

static kmcode
lmdb_remaining(kmstore_be *be, const char *bucket, const kmlimit *lim, int win,
               int *remaining, int64_t *reset_ms, kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk;
    char            kbuf[DBKEY_MAX];
    int64_t        *ts = NULL;
    size_t          n;
    int64_t         now;
    int             rc;

    dbk = db_key(bucket, kbuf);
    rc = kmstore_txn_begin(e, MDB_RDONLY, &txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "rate read");
    rc = read_log(e, txn, &dbk, &ts, &n, 0);
    kmstore_txn_abort(e, txn);
    if (rc != MDB_SUCCESS) {
        free(ts);
        return kmstore_lmdb_fail(err, rc, "rate read");
    }
    now = log_now(ts, &n, lim);
    kmstore_win_prune(ts, &n, now, lim);
    kmstore_win_remaining(ts, n, now, lim, win, remaining, reset_ms);
    free(ts);
    return KM_OK;
}

/* --- markers ----------------------------------------------------------------------------- */

/* Delete every expired marker. */
static int
sweep_marks(struct kmstore_env *e, MDB_txn *txn, int64_t now)
{
    MDB_cursor *cur;
    MDB_val     k, v;
    char      (*gone)[DBKEY_MAX] = NULL;
    size_t     *lens = NULL, n = 0, cap = 0;
    int         rc;

    rc = mdb_cursor_open(txn, e->mark, &cur);
    if (rc != MDB_SUCCESS)
        return rc;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == MDB_SUCCESS;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        int64_t until = 0;

        if (v.mv_size >= sizeof(until))
            memcpy(&until, v.mv_data, sizeof(until));
        if (until > now || k.mv_size > DBKEY_MAX)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            gone = km_xrealloc(gone, cap * sizeof(*gone));
            lens = km_xrealloc(lens, cap * sizeof(*lens));
        }
        memcpy(gone[n], k.mv_data, k.mv_size);
        lens[n++] = k.mv_size;
    }
    mdb_cursor_close(cur);
    rc = rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
    for (size_t i = 0; i < n && rc == MDB_SUCCESS; i++) {
        MDB_val d = { lens[i], gone[i] };

        rc = mdb_del(txn, e->mark, &d, NULL);
    }
    free(gone);
    free(lens);
    return rc;
}

static size_t
mark_count(struct kmstore_env *e, MDB_txn *txn)
{
    MDB_stat ms;

    return mdb_stat(txn, e->mark, &ms) == MDB_SUCCESS ? ms.ms_entries : 0;
}

/* *acquired as kmstore_lock; *recorded 0 when granted without a marker (MARKS_MAX). */
static int
lock_in(struct kmstore_env *e, MDB_txn *txn, MDB_val *dbk, int ttl_ms, const char *token,
        int *acquired, int *recorded)
{
    MDB_val v;
    int64_t until, now = km_wall_ms();
    size_t  tlen = strlen(token);
    int     rc;

    *recorded = 0;
    rc = mdb_get(txn, e->mark, dbk, &v);
    if (rc == MDB_SUCCESS && v.mv_size >= sizeof(until)) {
        memcpy(&until, v.mv_data, sizeof(until));
        if (until > now) {
            *acquired = 0;
            return MDB_SUCCESS;
        }
    } else if (rc == MDB_NOTFOUND) {
        if (mark_count(e, txn) >= MARKS_MAX) {
            rc = sweep_marks(e, txn, now);
            if (rc != MDB_SUCCESS)
                return rc;
            if (mark_count(e, txn) >= MARKS_MAX) {
                *acquired = 1;
                return MDB_SUCCESS;
            }
        }
    } else if (rc != MDB_SUCCESS) {
        return rc;
    }
    until = now + ttl_ms;
    v.mv_size = sizeof(until) + tlen;
    v.mv_data = NULL;
    rc = mdb_put(txn, e->mark, dbk, &v, MDB_RESERVE);
    if (rc != MDB_SUCCESS)
        return rc;
    memcpy(v.mv_data, &until, sizeof(until));
    memcpy((char *)v.mv_data + sizeof(until), token, tlen);
    *acquired = 1;
    *recorded = 1;
    return MDB_SUCCESS;
}

static kmcode
lmdb_lock(kmstore_be *be, const char *key, int ttl_ms, const char *token, int *acquired,
          kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk;
    char            kbuf[DBKEY_MAX];
    int             rc = MDB_SUCCESS, recorded = 0;

    dbk = db_key(key, kbuf);
    for (int attempt = 0; attempt < FULL_TRIES; attempt++) {
        *acquired = 0;
        rc = kmstore_txn_begin(e, 0, &txn);
        if (rc != MDB_SUCCESS)
            return kmstore_lmdb_fail(err, rc, "marker write");
        rc = lock_in(e, txn, &dbk, ttl_ms, token, acquired, &recorded);
        if (rc == MDB_SUCCESS && *acquired)
            rc = kmstore_txn_commit(e, txn);
        else
            kmstore_txn_abort(e, txn);
        if (rc != MDB_MAP_FULL)
            break;
        make_room(e, attempt, 0);
    }
    if (rc == MDB_SUCCESS && *acquired && !recorded)
        warn_rarely(WARN_MARKS, "store_markers_full",
                    "too many live markers: fetching without coalescing");
    if (rc == MDB_MAP_FULL) {
        /* no room even after evicting: fetch without a marker rather than fail */
        warn_rarely(WARN_FULL, "store_full", "no room for a marker: fetching without coalescing");
        *acquired = 1;
        return KM_OK;
    }
    if (rc != MDB_SUCCESS) {
        *acquired = 0;
        return kmstore_lmdb_fail(err, rc, "marker write");
    }
    return KM_OK;
}

static kmcode
lmdb_unlock(kmstore_be *be, const char *key, const char *token, kmerr *err)
{
    struct kmstore_env *e = be->e;
    MDB_txn        *txn;
    MDB_val         dbk, v;
    char            kbuf[DBKEY_MAX];
    size_t          tlen = strlen(token);
    int             rc;

    dbk = db_key(key, kbuf);
    rc = kmstore_txn_begin(e, 0, &txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "marker write");
    rc = mdb_get(txn, e->mark, &dbk, &v);
    if (rc == MDB_SUCCESS && v.mv_size == sizeof(int64_t) + tlen &&
        memcmp((char *)v.mv_data + sizeof(int64_t), token, tlen) == 0) {
        rc = mdb_del(txn, e->mark, &dbk, NULL);
        if (rc == MDB_SUCCESS)
            rc = kmstore_txn_commit(e, txn);
        else
            kmstore_txn_abort(e, txn);
    } else {
        kmstore_txn_abort(e, txn);
        rc = rc == MDB_NOTFOUND ? MDB_SUCCESS : rc;
    }
    /* MAP_FULL while deleting: the marker's TTL releases it */
    if (rc != MDB_SUCCESS && rc != MDB_MAP_FULL)
        return kmstore_lmdb_fail(err, rc, "marker write");
    return KM_OK;
}

const struct kmstore_ops kmstore_lmdb_ops = {
    .name = "lmdb",
    .open = lmdb_open,
    .close = lmdb_close,
    .cache_get = lmdb_cache_get,
    .cache_put = lmdb_cache_put,
    .cache_clear = lmdb_cache_clear,
    .take = lmdb_take,
    .leave = lmdb_leave,
    .remaining = lmdb_remaining,
    .lock = lmdb_lock,
    .unlock = lmdb_unlock,
    .probe = NULL,
    .where = lmdb_where,
};
