/* store.c — the store's public functions: argument checks, the choice of backend, the window
 * arithmetic both backends share, and the process-local fallback that serves while Redis is
 * unreachable (no cache, a limiter at local_share percent of each window, local markers). */
#include "store.h"
#include "log.h"
#include "store_impl.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* While degraded, try the backend again at most this often. */
#define RETRY_MS 1000
#define DEFAULT_MAX_BYTES ((size_t)256 << 20)
#define DEFAULT_SHARE 50
#define LOCAL_SLOTS 64

/* --- the process-local fallback ---------------------------------------------------------- */

struct local_log {
    char                *name;
    int64_t             *ts;      /* ascending km_now_ms() times of recorded takes */
    size_t               n, cap;
    struct kmstore_qent *q;       /* the bucket's queue of waiters, in arrival order */
    size_t               nq, qcap;
    struct local_log    *next;
};

struct local_mark {
    char              *key;
    char               token[KMSTORE_TOKEN_MAX];
    int64_t            until;  /* km_now_ms() */
    struct local_mark *next;
};

struct local {
    pthread_mutex_t    mu;
    struct local_log  *logs[LOCAL_SLOTS];
    struct local_mark *marks[LOCAL_SLOTS];
};

struct kmstore {
    const struct kmstore_ops *ops;
    kmstore_be               *be;
    atomic_int                degraded;
    atomic_ullong             tickets;    /* kmstore_ticket's counter */
    _Atomic int64_t           last_probe_ms;
    int                       local_share;
    unsigned long long        nonce;
    char                      host[64];
    struct local              local;
};

static unsigned
slot_of(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h % LOCAL_SLOTS;
}

static void
local_init(struct local *l)
{
    memset(l, 0, sizeof(*l));
    pthread_mutex_init(&l->mu, NULL);
}

static void
local_free(struct local *l)
{
    for (int i = 0; i < LOCAL_SLOTS; i++) {
        struct local_log  *g = l->logs[i];
        struct local_mark *m = l->marks[i];

        while (g) {
            struct local_log *next = g->next;
            free(g->name);
            free(g->ts);
            free(g->q);
            free(g);
            g = next;
        }
        while (m) {
            struct local_mark *next = m->next;
            free(m->key);
            free(m);
            m = next;
        }
    }
    pthread_mutex_destroy(&l->mu);
}

/* The share of lim this process may use alone: share percent of each max, rounded down, but
 * at least 1. */
static void
local_limit(const kmlimit *lim, int share, kmlimit *out)
{
    *out = *lim;
    for (int i = 0; i < out->nwin; i++) {
        int64_t m = (int64_t)lim->win[i].max * share / 100;
        out->win[i].max = m < 1 ? 1 : (int)m;
    }
}

/* The log of `name`; when missing, a new one, or NULL when !create. Called with l->mu held. */
static struct local_log *
local_find(struct local *l, const char *name, int create)
{
    unsigned          s = slot_of(name);
    struct local_log *g;

    for (g = l->logs[s]; g; g = g->next) {
        if (strcmp(g->name, name) == 0)
            return g;
    }
    if (!create)
        return NULL;
    g = km_xcalloc(1, sizeof(*g));
    g->name = km_xstrdup(name);
    g->next = l->logs[s];
    l->logs[s] = g;
    return g;
}

/* The same queue as the backends', for this process's waiters alone. */
static kmcode
local_take(kmstore *st, const char *bucket, const kmlimit *lim, const char *ticket,
           int lease_ms, int64_t *wait_ms)
{
    struct local_log *g;
    kmlimit           mine;
    int64_t           now = km_now_ms();
    int               changed = 0;
    kmcode            rc = KM_OK;

    local_limit(lim, st->local_share, &mine);
    pthread_mutex_lock(&st->local.mu);
    g = local_find(&st->local, bucket, 1);
    kmstore_win_prune(g->ts, &g->n, now, &mine);
    if (g->nq == g->qcap) {
        g->qcap = g->qcap ? g->qcap * 2 : 4;
        g->q = km_xrealloc(g->q, g->qcap * sizeof(*g->q));
    }
    *wait_ms = kmstore_queue_turn(g->q, &g->nq, g->ts, g->n, now, &mine, ticket, lease_ms,
                                  &changed);
    if (*wait_ms > 0) {
        rc = KM_RATE_LIMITED;
        goto out;
    }
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 8;
        g->ts = km_xrealloc(g->ts, g->cap * sizeof(*g->ts));
    }
    g->ts[g->n++] = now;
out:
    pthread_mutex_unlock(&st->local.mu);
    return rc;
}

static void
local_leave(kmstore *st, const char *bucket, const char *ticket)
{
    struct local_log *g;

    pthread_mutex_lock(&st->local.mu);
    g = local_find(&st->local, bucket, 0);
    if (g)
        kmstore_queue_leave(g->q, &g->nq, ticket);
    pthread_mutex_unlock(&st->local.mu);
}

static void
local_remaining(kmstore *st, const char *bucket, const kmlimit *lim, int win, int *remaining,
                int64_t *reset_ms)
{
    struct local_log *g;
    kmlimit           mine;
    int64_t           now = km_now_ms();

    local_limit(lim, st->local_share, &mine);
    pthread_mutex_lock(&st->local.mu);
    g = local_find(&st->local, bucket, 1);
    kmstore_win_prune(g->ts, &g->n, now, &mine);
    kmstore_win_remaining(g->ts, g->n, now, &mine, win, remaining, reset_ms);
    pthread_mutex_unlock(&st->local.mu);
}

static void
local_lock(kmstore *st, const char *key, int ttl_ms, const char *token, int *acquired)
{
    unsigned            s = slot_of(key);
    struct local_mark **pp, *m;
    int64_t             now = km_now_ms();

    pthread_mutex_lock(&st->local.mu);
    pp = &st->local.marks[s];
    while (*pp) {
        m = *pp;
        if (m->until <= now) {
            /* expired markers go as soon as a lookup passes them */
            *pp = m->next;
            free(m->key);
            free(m);
            continue;
        }
        if (strcmp(m->key, key) == 0) {
            *acquired = 0;
            goto out;
        }
        pp = &m->next;
    }
    m = km_xcalloc(1, sizeof(*m));
    m->key = km_xstrdup(key);
    km_strlcpy(m->token, token, sizeof(m->token));
    m->until = now + ttl_ms;
    m->next = st->local.marks[s];
    st->local.marks[s] = m;
    *acquired = 1;
out:
    pthread_mutex_unlock(&st->local.mu);
}

static void
local_unlock(kmstore *st, const char *key, const char *token)
{
    struct local_mark **pp;

    pthread_mutex_lock(&st->local.mu);
    for (pp = &st->local.marks[slot_of(key)]; *pp; pp = &(*pp)->next) {
        struct local_mark *m = *pp;

        if (strcmp(m->key, key) == 0 && strcmp(m->token, token) == 0) {
            *pp = m->next;
            free(m->key);
            free(m);
            break;
        }
    }
    pthread_mutex_unlock(&st->local.mu);
}

/* --- window arithmetic ------------------------------------------------------------------- */

int64_t
kmstore_win_longest(const kmlimit *lim)
{
    int64_t longest = 0;

    for (int i = 0; i < lim->nwin; i++) {
        int64_t len = lim->win[i].window_ms;
        if (len > longest)
            longest = len;
    }
    return longest;
}

int
kmstore_win_maxcount(const kmlimit *lim)
{
    int most = 0;

    for (int i = 0; i < lim->nwin; i++) {
        if (lim->win[i].max > most)
            most = lim->win[i].max;
    }
    return most;
}

/* Index of the first entry the window of length len counts at now (ts > now - len). */
static size_t
first_counted(const int64_t *ts, size_t n, int64_t now, int64_t len)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts[mid] > now - len)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

int64_t
kmstore_win_wait(const int64_t *ts, size_t n, int64_t now, const kmlimit *lim)
{
    int64_t wait = 0;

    for (int i = 0; i < lim->nwin; i++) {
        int64_t len = lim->win[i].window_ms;
        size_t  first = first_counted(ts, n, now, len);
        size_t  count = n - first;
        size_t  max = (size_t)lim->win[i].max;

        if (count >= max) {
            /* count - max + 1 entries must leave; the last of them is the one to wait for */
            int64_t w = ts[first + count - max] + len - now;
            if (w < 1)
                w = 1;
            if (w > wait)
                wait = w;
        }
    }
    return wait;
}

void
kmstore_win_remaining(const int64_t *ts, size_t n, int64_t now, const kmlimit *lim, int win,
                      int *remaining, int64_t *reset_ms)
{
    int64_t len = lim->win[win].window_ms;
    size_t  first = first_counted(ts, n, now, len);
    size_t  count = n - first;
    int64_t left = (int64_t)lim->win[win].max - (int64_t)count;

    *remaining = left < 0 ? 0 : (int)left;
    *reset_ms = count ? ts[first] + len - now : 0;
}

void
kmstore_win_prune(int64_t *ts, size_t *n, int64_t now, const kmlimit *lim)
{
    size_t first = first_counted(ts, *n, now, kmstore_win_longest(lim));
    size_t keep = (size_t)kmstore_win_maxcount(lim);

    if (*n - first > keep)
        first = *n - keep;
    if (first > 0) {
        memmove(ts, ts + first, (*n - first) * sizeof(*ts));
        *n -= first;
    }
}

/* The least room any window of lim has left at now (0 when one is full). */
static int64_t
win_room(const int64_t *ts, size_t n, int64_t now, const kmlimit *lim)
{
    int64_t room = INT64_MAX;

    for (int i = 0; i < lim->nwin; i++) {
        size_t  count = n - first_counted(ts, n, now, lim->win[i].window_ms);
        int64_t left = (int64_t)lim->win[i].max - (int64_t)count;

        if (left < room)
            room = left;
    }
    return room < 0 ? 0 : room;
}

/* --- the queue of waiters ---------------------------------------------------------------- */

int64_t
kmstore_queue_turn(struct kmstore_qent *q, size_t *n, const int64_t *ts, size_t nts,
                   int64_t now, const kmlimit *lim, const char *ticket, int lease_ms,
                   int *changed)
{
    size_t  live = 0, pos;
    int     queued = 0;
    int64_t wait;

    *changed = 0;
    for (size_t i = 0; i < *n; i++) {
        if (q[i].until > now)
            q[live++] = q[i];
    }
    if (live != *n)
        *changed = 1;
    *n = live;
    if (!ticket || !ticket[0])
        ticket = NULL;
    /* a caller without a ticket stands behind everyone queued; a ticket not yet queued stands
     * where its arrival puts it (q is in ticket order) */
    pos = *n;
    for (size_t i = 0; ticket && i < *n; i++) {
        int c = strcmp(q[i].ticket, ticket);

        if (c == 0) {
            pos = i;
            queued = 1;
            break;
        }
        if (c > 0 && pos == *n)
            pos = i;
    }
    if ((int64_t)pos < win_room(ts, nts, now, lim)) {
        if (queued) {
            memmove(q + pos, q + pos + 1, (*n - pos - 1) * sizeof(*q));
            (*n)--;
            *changed = 1;
        }
        return 0;
    }
    wait = kmstore_win_wait(ts, nts, now, lim);
    if (wait <= 0)
        wait = KMSTORE_TURN_MS;    /* a slot is free, but an older ticket comes first */
    if (ticket && !queued && *n < KMSTORE_QUEUE_MAX) {
        memmove(q + pos + 1, q + pos, (*n - pos) * sizeof(*q));
        memset(&q[pos], 0, sizeof(q[pos]));
        km_strlcpy(q[pos].ticket, ticket, sizeof(q[pos].ticket));
        (*n)++;
        queued = 1;
    }
    if (queued) {
        q[pos].until = now + wait + lease_ms;
        *changed = 1;
    }
    return wait;
}

int
kmstore_queue_leave(struct kmstore_qent *q, size_t *n, const char *ticket)
{
    for (size_t i = 0; ticket && i < *n; i++) {
        if (strcmp(q[i].ticket, ticket) == 0) {
            memmove(q + i, q + i + 1, (*n - i - 1) * sizeof(*q));
            (*n)--;
            return 1;
        }
    }
    return 0;
}

/* --- degraded mode ----------------------------------------------------------------------- */

static void
went_down(kmstore *st, const char *why)
{
    atomic_store(&st->last_probe_ms, km_now_ms());
    if (atomic_exchange(&st->degraded, 1) == 0) {
        json_object *f = json_object_new_object();

        json_object_object_add(f, "backend", json_object_new_string(st->ops->name));
        json_object_object_add(f, "redis", json_object_new_string(st->ops->where(st->be)));
        json_object_object_add(f, "message", json_object_new_string(why));
        kmlog(KMLOG_WARN, "store_degraded", f);
    }
}

/* While degraded, one caller at a time and at most every RETRY_MS asks the backend again. */
static void
try_recover(kmstore *st)
{
    int64_t now = km_now_ms();
    int64_t last = atomic_load(&st->last_probe_ms);
    kmerr   e = { 0 };

    if (now - last < RETRY_MS)
        return;
    if (!atomic_compare_exchange_strong(&st->last_probe_ms, &last, now))
        return;
    if (st->ops->probe(st->be, &e) == KM_OK) {
        if (atomic_exchange(&st->degraded, 0) == 1) {
            json_object *f = json_object_new_object();

            json_object_object_add(f, "backend", json_object_new_string(st->ops->name));
            json_object_object_add(f, "redis", json_object_new_string(st->ops->where(st->be)));
            kmlog(KMLOG_INFO, "store_recovered", f);
        }
    } else {
        atomic_store(&st->last_probe_ms, km_now_ms());
    }
    kmerr_clear(&e);
}

/* 1 when the call should go to the backend, 0 when the fallback serves it. */
static int
use_backend(kmstore *st)
{
    if (!atomic_load(&st->degraded))
        return 1;
    try_recover(st);
    return !atomic_load(&st->degraded);
}

/* Hand a backend's error to the caller: copies code and message, then clears `from`. */
static kmcode
pass_err(kmerr *to, kmerr *from, kmcode rc)
{
    if (rc != KM_OK && to)
        kmerr_set(to, rc, "%s", from->msg);
    kmerr_clear(from);
    return rc;
}

/* --- open and close ---------------------------------------------------------------------- */

static unsigned long long
make_nonce(void)
{
    unsigned long long n = 0;

    if (getrandom(&n, sizeof(n), GRND_NONBLOCK) != (ssize_t)sizeof(n)) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        n = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec ^
            ((unsigned long long)getpid() << 40);
    }
    return n;
}

kmcode
kmstore_open(const kmstore_opts *o, kmstore **out, kmerr *err)
{
    kmstore     *st = km_xcalloc(1, sizeof(*st));
    kmstore_opts opts = *o;
    kmerr        e = { 0 };
    kmcode       rc;

    if (opts.max_bytes == 0)
        opts.max_bytes = DEFAULT_MAX_BYTES;
    if (opts.stale_grace_s < 0)
        opts.stale_grace_s = 0;
    st->local_share = opts.local_share <= 0 ? DEFAULT_SHARE : opts.local_share;
    if (st->local_share > 100)
        st->local_share = 100;
    st->nonce = make_nonce();
    if (gethostname(st->host, sizeof(st->host)) != 0)
        km_strlcpy(st->host, "host", sizeof(st->host));
    st->host[sizeof(st->host) - 1] = '\0';
    local_init(&st->local);
    st->ops = opts.redis_url && opts.redis_url[0] ? &kmstore_redis_ops : &kmstore_lmdb_ops;

    rc = st->ops->open(&opts, &st->be, err);
    if (rc != KM_OK)
        goto out;
    /* A Redis that is down at start-up is not fatal: the fallback serves until it answers. */
    if (st->ops->probe && st->ops->probe(st->be, &e) != KM_OK)
        went_down(st, e.msg);
    kmerr_clear(&e);
out:
    if (rc != KM_OK) {
        kmstore_close(st);
        st = NULL;
    }
    *out = st;
    return rc;
}

void
kmstore_close(kmstore *st)
{
    if (!st)
        return;
    if (st->be)
        st->ops->close(st->be);
    local_free(&st->local);
    free(st);
}

kmstore_be *
kmstore_be_of(kmstore *st)
{
    return st->be;
}

int
kmstore_down(kmstore *st)
{
    return atomic_load(&st->degraded);
}

int
kmstore_is_redis(const kmstore *st)
{
    return st->ops == &kmstore_redis_ops;
}

const char *
kmstore_backend(const kmstore *st)
{
    return st->ops->name;
}

int
kmstore_degraded(kmstore *st)
{
    if (atomic_load(&st->degraded))
        try_recover(st);
    return atomic_load(&st->degraded);
}

/* --- cache ------------------------------------------------------------------------------- */

size_t
kmstore_charge(size_t key_len, size_t body_len)
{
    return body_len + 2 * key_len + 128;
}

kmcode
kmstore_cache_get(kmstore *st, const char *key, char **body, size_t *len, int64_t *age_ms,
                  int *fresh, kmerr *err)
{
    kmerr   e = { 0 };
    size_t  n = 0;
    int64_t age = 0;
    int     f = 0;
    kmcode  rc;

    *body = NULL;
    if (!key || !key[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "empty cache key");
    if (use_backend(st)) {
        rc = st->ops->cache_get(st->be, key, body, &n, &age, &f, &e);
        if (rc != KM_STORE_UNREACHABLE)
            goto out;
        went_down(st, e.msg);
    }
    /* the local fallback keeps no cache: every lookup misses */
    rc = kmerr_set(&e, KM_NOT_FOUND, "not cached");
out:
    if (rc == KM_OK) {
        if (len)
            *len = n;
        if (age_ms)
            *age_ms = age;
        if (fresh)
            *fresh = f;
    }
    return pass_err(err, &e, rc);
}

kmcode
kmstore_cache_put(kmstore *st, const char *key, const char *body, size_t len, int ttl_s,
                  kmerr *err)
{
    kmerr  e = { 0 };
    kmcode rc = KM_OK;

    if (!key || !key[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "empty cache key");
    if (ttl_s <= 0)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "cache ttl must be positive");
    if (!body && len)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "no body");
    if (!body)
        body = "";
    if (use_backend(st)) {
        rc = st->ops->cache_put(st->be, key, body, len, ttl_s, &e);
        if (rc == KM_STORE_UNREACHABLE) {
            went_down(st, e.msg);
            rc = KM_OK;     /* nothing is cached while degraded; that is not an error */
        }
    }
    return pass_err(err, &e, rc);
}

kmcode
kmstore_cache_clear(kmstore *st, kmerr *err)
{
    kmerr  e = { 0 };
    kmcode rc = KM_OK;

    if (use_backend(st)) {
        rc = st->ops->cache_clear(st->be, &e);
        if (rc == KM_STORE_UNREACHABLE) {
            went_down(st, e.msg);
            rc = KM_OK;
        }
    }
    return pass_err(err, &e, rc);
}

/* --- rate limits ------------------------------------------------------------------------- */

static kmcode
check_limit(const char *bucket, const kmlimit *lim, kmerr *err)
{
    if (!bucket || !bucket[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "empty rate bucket name");
    if (!lim || lim->nwin < 1 || lim->nwin > 3)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "a limit needs 1 to 3 windows");
    for (int i = 0; i < lim->nwin; i++) {
        /* a day is the longest window Klaviyo has; a year bounds any sane configuration */
        if (lim->win[i].window_ms <= 0 || lim->win[i].window_ms > 366LL * 86400 * 1000 ||
            lim->win[i].max <= 0 || lim->win[i].max > 1000000)
            return kmerr_set(err, KM_INVALID_ARGUMENT, "window %d of %s is out of range", i,
                             bucket);
    }
    return KM_OK;
}

static kmcode
take(kmstore *st, const char *bucket, const kmlimit *lim, const char *ticket, int lease_ms,
     int64_t *wait_ms, kmerr *err)
{
    kmerr   e = { 0 };
    int64_t wait = 0;
    kmcode  rc;

    if (wait_ms)
        *wait_ms = 0;
    rc = check_limit(bucket, lim, err);
    if (rc != KM_OK)
        return rc;
    if (use_backend(st)) {
        rc = st->ops->take(st->be, bucket, lim, ticket, lease_ms, &wait, &e);
        if (rc != KM_STORE_UNREACHABLE)
            goto out;
        went_down(st, e.msg);
        kmerr_clear(&e);
    }
    rc = local_take(st, bucket, lim, ticket, lease_ms, &wait);
out:
    if (rc == KM_RATE_LIMITED) {
        if (wait < 1)
            wait = 1;
        kmerr_set(&e, rc, "rate limit of %s reached; the next slot frees in %lld ms", bucket,
                  (long long)wait);
        if (err)
            err->retry_after_s = (int)((wait + 999) / 1000);
        if (wait_ms)
            *wait_ms = wait;
    }
    return pass_err(err, &e, rc);
}

kmcode
kmstore_take(kmstore *st, const char *bucket, const kmlimit *lim, int64_t *wait_ms,
             kmerr *err)
{
    return take(st, bucket, lim, NULL, 0, wait_ms, err);
}

void
kmstore_ticket(kmstore *st, int64_t arrived_wall_ms, char *ticket)
{
    unsigned long long at = (unsigned long long)(arrived_wall_ms > 0 ? arrived_wall_ms
                                                                     : km_wall_ms());

    /* 12 hex digits hold every ms until the year 10889: the bytes order as the arrivals */
    snprintf(ticket, KMSTORE_TICKET_MAX, "%012llx.%016llx:%llx", at & 0xffffffffffffULL,
             st->nonce, atomic_fetch_add(&st->tickets, 1));
}

kmcode
kmstore_take_turn(kmstore *st, const char *bucket, const kmlimit *lim, const char *ticket,
                  int lease_ms, int64_t *wait_ms, kmerr *err)
{
    if (wait_ms)
        *wait_ms = 0;
    if (!ticket || !ticket[0] || strlen(ticket) >= KMSTORE_TICKET_MAX)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "a take in turn needs a ticket");
    if (lease_ms <= 0)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "a ticket's lease must be positive");
    return take(st, bucket, lim, ticket, lease_ms, wait_ms, err);
}

kmcode
kmstore_leave(kmstore *st, const char *bucket, const char *ticket, kmerr *err)
{
    kmerr  e = { 0 };
    kmcode rc;

    if (!bucket || !bucket[0] || !ticket || !ticket[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "leaving a queue needs a bucket and ticket");
    /* a place taken while degraded is in the local queue: give it up there too */
    local_leave(st, bucket, ticket);
    if (use_backend(st)) {
        rc = st->ops->leave(st->be, bucket, ticket, &e);
        if (rc != KM_STORE_UNREACHABLE)
            return pass_err(err, &e, rc);
        went_down(st, e.msg);
        kmerr_clear(&e);
    }
    return KM_OK;
}

kmcode
kmstore_remaining(kmstore *st, const char *bucket, const kmlimit *lim, int win, int *remaining,
                  int64_t *reset_ms, kmerr *err)
{
    kmerr   e = { 0 };
    int     left = 0;
    int64_t reset = 0;
    kmcode  rc;

    rc = check_limit(bucket, lim, err);
    if (rc != KM_OK)
        return rc;
    if (win < 0 || win >= lim->nwin)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "no window %d in the limit of %s", win,
                         bucket);
    if (use_backend(st)) {
        rc = st->ops->remaining(st->be, bucket, lim, win, &left, &reset, &e);
        if (rc != KM_STORE_UNREACHABLE)
            goto out;
        went_down(st, e.msg);
        kmerr_clear(&e);
    }
    local_remaining(st, bucket, lim, win, &left, &reset);
    rc = KM_OK;
out:
    if (rc == KM_OK) {
        *remaining = left;
        *reset_ms = reset;
    }
    return pass_err(err, &e, rc);
}

/* --- markers ----------------------------------------------------------------------------- */

/* The owner of a marker is one thread of one process of one host; the nonce tells apart
 * processes that reuse a pid (containers, restarts). */
static void
owner_token(const kmstore *st, char *buf, size_t size)
{
    snprintf(buf, size, "%s:%ld:%ld:%016llx", st->host, (long)getpid(),
             (long)syscall(SYS_gettid), st->nonce);
}

kmcode
kmstore_lock(kmstore *st, const char *key, int ttl_ms, int *acquired, kmerr *err)
{
    char   token[KMSTORE_TOKEN_MAX];
    kmerr  e = { 0 };
    kmcode rc;

    *acquired = 0;
    if (!key || !key[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "empty marker key");
    if (ttl_ms <= 0)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "marker ttl must be positive");
    owner_token(st, token, sizeof(token));
    if (use_backend(st)) {
        rc = st->ops->lock(st->be, key, ttl_ms, token, acquired, &e);
        if (rc != KM_STORE_UNREACHABLE)
            return pass_err(err, &e, rc);
        went_down(st, e.msg);
        kmerr_clear(&e);
    }
    local_lock(st, key, ttl_ms, token, acquired);
    return KM_OK;
}

kmcode
kmstore_unlock(kmstore *st, const char *key, kmerr *err)
{
    char   token[KMSTORE_TOKEN_MAX];
    kmerr  e = { 0 };
    kmcode rc;

    if (!key || !key[0])
        return kmerr_set(err, KM_INVALID_ARGUMENT, "empty marker key");
    owner_token(st, token, sizeof(token));
    /* a marker taken while degraded lives in the local table: release it there too */
    local_unlock(st, key, token);
    if (use_backend(st)) {
        rc = st->ops->unlock(st->be, key, token, &e);
        if (rc != KM_STORE_UNREACHABLE)
            return pass_err(err, &e, rc);
        went_down(st, e.msg);
        kmerr_clear(&e);
    }
    return KM_OK;
}
