/* store_redis.c — the Redis backend (hiredis 0.14): shared by every host.
 *
 * Keys (one Redis database, "km:" namespace):
 *   km:c:<key>   hash {s: stored ms, f: fresh until ms, g: gone at ms, b: body},
 *                PEXPIRE ttl + grace
 *   km:cz        sorted set of cache entry names by store order (eviction order)
 *   km:cq        store order counter (scores of km:cz; ties in one ms stay ordered)
 *   km:cs        hash entry name -> its charge (kmstore_charge) counted in km:cb
 *   km:cb        running total of the charges of cached entries
 *   km:r:<name>  sorted set: one member per recorded take, scored by the server's ms time
 *   km:q:<name>  sorted set: the bucket's queue of waiting tickets, scored by their call's
 *                arrival (wall-clock ms, from the ticket; ties in the tickets' byte order)
 *   km:qt:<name> sorted set: the same tickets scored by the end of their lease (server ms)
 *   km:l:<key>   marker: owner token, SET NX PX
 * Every read-modify-write is one Lua script (store_redis_lua.c), run with EVALSHA (EVAL when
 * the server answers NOSCRIPT), and every time comes from the server's TIME so hosts with
 * skewed clocks agree.
 * Scripts touch entry names they read from km:cz, so this backend needs a single Redis
 * server (not Redis Cluster).
 *
 * Connections: a small locked pool; each call borrows one context for its duration, so no
 * context is ever used by two threads at once. An I/O error on a pooled context empties the
 * pool (the server may have restarted) and the call is tried once on a new connection; when
 * that fails too the call reports KM_STORE_UNREACHABLE and store.c takes over.
 */
#include "store_impl.h"
#include "util.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#define POOL_MAX 16
#define MAX_ARGS 24
#define TIMEOUT_MS 1000
/* Entries swept from the head of km:cz per put once they have expired in Redis. */
#define SWEEP_MAX "32"

struct kmstore_be {
    char              *host;
    int                port;
    char              *user;        /* NULL: AUTH with the password alone */
    char              *pass;        /* NULL: no AUTH */
    int                db;
    char               where[300];  /* host:port/db, for logs; no password */
    uint64_t           max_bytes;
    int64_t            grace_ms;
    unsigned long long nonce;
    atomic_ullong      seq;

    pthread_mutex_t mu;             /* guards everything below */
    redisContext   *idle[POOL_MAX];
    int             nidle;
    unsigned        gen;            /* bumped when the pool is emptied after an I/O error */
    char            sha[KMLUA_COUNT][41];
    int             have_sha;
};

/* One command: argv with binary-safe lengths. */
struct cmd {
    int         argc;
    const char *argv[MAX_ARGS];
    size_t      len[MAX_ARGS];
    char        num[MAX_ARGS][24];  /* storage for numeric arguments */
};

static void
arg(struct cmd *c, const char *s, size_t n)
{
    c->argv[c->argc] = s;
    c->len[c->argc] = n;
    c->argc++;
}

static void
arg_str(struct cmd *c, const char *s)
{
    arg(c, s, strlen(s));
}

static void
arg_num(struct cmd *c, long long v)
{
    int n = snprintf(c->num[c->argc], sizeof(c->num[0]), "%lld", v);

    arg(c, c->num[c->argc], (size_t)n);
}

/* --- REDIS_URL --------------------------------------------------------------------------- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into a new string; NULL when an escape is malformed. */
static char *
pct_decode(const char *s, size_t n)
{
    char  *out = km_xmalloc(n + 1);
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(s[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

/* redis://[[user]:password@]host[:port][/db]. Error messages never quote the URL: it may
 * hold the password. */
static kmcode
parse_url(kmstore_be *be, const char *url, kmerr *err)
{
    const char *p, *at, *end, *hs, *he, *slash;
    char       *stop;
    long        v;

    if (strncasecmp(url, "rediss://", 9) == 0)
        return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: TLS (rediss://) is not supported");
    if (strncasecmp(url, "redis://", 8) != 0)
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "REDIS_URL must look like redis://[:password@]host[:port][/db]");
    p = url + 8;
    slash = strchr(p, '/');
    end = slash ? slash : p + strlen(p);
    at = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '@')
            at = q;
    }
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));

        if (!colon)
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "REDIS_URL: credentials must be [user]:password@");
        if (colon > p) {
            be->user = pct_decode(p, (size_t)(colon - p));
            if (!be->user)
                return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: bad %%-escape in the user");
        }
        be->pass = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if (!be->pass)
            return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: bad %%-escape in the password");
        p = at + 1;
    }
    if (*p == '[') {
        hs = p + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (!he)
            return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: unclosed [ in the host");
        p = he + 1;
    } else {
        hs = p;
        he = memchr(p, ':', (size_t)(end - p));
        if (!he)
            he = end;
        p = he;
    }
    if (he == hs)
        return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: no host");
    be->host = km_xstrndup(hs, (size_t)(he - hs));
    be->port = 6379;
    if (p < end && *p == ':') {
        errno = 0;
        v = strtol(p + 1, &stop, 10);
        if (stop == p + 1 || stop != end || errno || v < 1 || v > 65535)
            return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: the port must be 1-65535");
        be->port = (int)v;
    } else if (p != end) {
        return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: unexpected text after the host");
    }
    be->db = 0;
    if (slash && slash[1]) {
        errno = 0;
        v = strtol(slash + 1, &stop, 10);
        if (stop == slash + 1 || *stop || errno || v < 0 || v > 65535)
            return kmerr_set(err, KM_CONFIG_ERROR, "REDIS_URL: the database must be a number");
        be->db = (int)v;
    }
    snprintf(be->where, sizeof(be->where), "%s:%d/%d", be->host, be->port, be->db);
    return KM_OK;
}

/* --- connections ------------------------------------------------------------------------- */

/* Error replies that mean "this server cannot serve now" rather than "this request is wrong". */
static int
transient_error(const redisReply *r)
{
    static const char *const prefixes[] = { "LOADING", "BUSY", "OOM", "READONLY",
                                            "MASTERDOWN", "NOAUTH", "WRONGPASS", "MISCONF",
                                            "TRYAGAIN", "CLUSTERDOWN", "NOPERM" };

    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t n = strlen(prefixes[i]);
        if (r->len >= n && strncmp(r->str, prefixes[i], n) == 0)
            return 1;
    }
    return 0;
}

/* A setup command on a new connection: OK, or KM_STORE_UNREACHABLE with the reason. */
static kmcode
setup_cmd(kmstore_be *be, redisContext *c, struct cmd *cm, redisReply **keep, kmerr *err)
{
    redisReply *r = redisCommandArgv(c, cm->argc, cm->argv, cm->len);

    if (!r)
        return kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: %s", be->where, c->errstr);
    if (r->type == REDIS_REPLY_ERROR) {
        /* the reply names the failure (WRONGPASS, NOAUTH, ...), never the password */
        kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: %s refused: %.*s", be->where, cm->argv[0],
                  (int)r->len, r->str);
        freeReplyObject(r);
        return KM_STORE_UNREACHABLE;
    }
    if (keep)
        *keep = r;
    else
        freeReplyObject(r);
    return KM_OK;
}

static kmcode
load_scripts(kmstore_be *be, redisContext *c, kmerr *err)
{
    char   sha[KMLUA_COUNT][41];
    kmcode rc = KM_OK;

    for (int i = 0; i < KMLUA_COUNT && rc == KM_OK; i++) {
        struct cmd  cm = { 0 };
        redisReply *r = NULL;

        arg_str(&cm, "SCRIPT");
        arg_str(&cm, "LOAD");
        arg_str(&cm, kmredis_lua[i]);
        rc = setup_cmd(be, c, &cm, &r, err);
        if (rc != KM_OK)
            break;
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
            rc = kmerr_set(err, KM_INTERNAL_ERROR, "redis %s: SCRIPT LOAD gave no sha",
                           be->where);
        } else {
            memcpy(sha[i], r->str, 40);
            sha[i][40] = '\0';
        }
        freeReplyObject(r);
    }
    if (rc == KM_OK) {
        pthread_mutex_lock(&be->mu);
        memcpy(be->sha, sha, sizeof(sha));
        be->have_sha = 1;
        pthread_mutex_unlock(&be->mu);
    }
    return rc;
}

static kmcode
connect_new(kmstore_be *be, redisContext **out, kmerr *err)
{
    struct timeval tv = { TIMEOUT_MS / 1000, (TIMEOUT_MS % 1000) * 1000 };
    redisContext  *c;
    kmcode         rc = KM_OK;
    int            have_sha;

    *out = NULL;
    c = redisConnectWithTimeout(be->host, be->port, tv);
    if (!c)
        return kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: cannot allocate a context", be->where);
    if (c->err) {
        rc = kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: %s", be->where, c->errstr);
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        rc = kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: cannot set the timeout", be->where);
        goto out;
    }
    redisEnableKeepAlive(c);
    if (be->pass) {
        struct cmd cm = { 0 };

        arg_str(&cm, "AUTH");
        if (be->user)
            arg_str(&cm, be->user);
        arg_str(&cm, be->pass);
        rc = setup_cmd(be, c, &cm, NULL, err);
        if (rc != KM_OK)
            goto out;
    }
    if (be->db != 0) {
        struct cmd cm = { 0 };

        arg_str(&cm, "SELECT");
        arg_num(&cm, be->db);
        rc = setup_cmd(be, c, &cm, NULL, err);
        if (rc != KM_OK)
            goto out;
    }
    pthread_mutex_lock(&be->mu);
    have_sha = be->have_sha;
    pthread_mutex_unlock(&be->mu);
    if (!have_sha)
        rc = load_scripts(be, c, err);
out:
    if (rc != KM_OK) {
        redisFree(c);
        c = NULL;
    }
    *out = c;
    return rc;
}

/* Borrow a context: an idle one (*reused = 1) or a new connection. */
static kmcode
borrow(kmstore_be *be, redisContext **c, unsigned *gen, int *reused, kmerr *err)
{
    pthread_mutex_lock(&be->mu);
    *gen = be->gen;
    if (be->nidle > 0) {
        *c = be->idle[--be->nidle];
        *reused = 1;
        pthread_mutex_unlock(&be->mu);
        return KM_OK;
    }
    pthread_mutex_unlock(&be->mu);
    *reused = 0;
    return connect_new(be, c, err);
}

/* Return a healthy context; one from before the pool was emptied is closed instead. */
static void
give_back(kmstore_be *be, redisContext *c, unsigned gen)
{
    pthread_mutex_lock(&be->mu);
    if (gen == be->gen && be->nidle < POOL_MAX) {
        be->idle[be->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&be->mu);
    if (c)
        redisFree(c);
}

/* Close every idle context: after an I/O error they probably all lead to a dead server. */
static void
empty_pool(kmstore_be *be)
{
    redisContext *old[POOL_MAX];
    int           n;

    pthread_mutex_lock(&be->mu);
    n = be->nidle;
    memcpy(old, be->idle, (size_t)n * sizeof(old[0]));
    be->nidle = 0;
    be->gen++;
    pthread_mutex_unlock(&be->mu);
    for (int i = 0; i < n; i++)
        redisFree(old[i]);
}

/* Run one command. On KM_OK *out is the reply (never an error reply; caller frees).
 * KM_STORE_UNREACHABLE when the server cannot be reached or cannot serve; KM_INTERNAL_ERROR for an
 * error reply that means a bug. NOSCRIPT replies are handed back through *noscript. */
static kmcode
run(kmstore_be *be, struct cmd *cm, redisReply **out, int *noscript, kmerr *err)
{
    redisContext *c;
    redisReply   *r;
    unsigned      gen;
    int           reused;
    kmcode        rc;

    *out = NULL;
    if (noscript)
        *noscript = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = borrow(be, &c, &gen, &reused, err);
        if (rc != KM_OK) {
            empty_pool(be);
            return rc;
        }
        r = redisCommandArgv(c, cm->argc, cm->argv, cm->len);
        if (!r) {
            /* the context is dead after an I/O or protocol error */
            kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: %s", be->where,
                      c->errstr[0] ? c->errstr : "connection lost");
            redisFree(c);
            empty_pool(be);
            /* a pooled connection may predate a server restart: one try on a new one */
            if (reused)
                continue;
            return KM_STORE_UNREACHABLE;
        }
        give_back(be, c, gen);
        if (r->type == REDIS_REPLY_ERROR) {
            if (noscript && r->len >= 8 && strncmp(r->str, "NOSCRIPT", 8) == 0) {
                *noscript = 1;
                rc = KM_OK;
            } else if (transient_error(r)) {
                rc = kmerr_set(err, KM_STORE_UNREACHABLE, "redis %s: %.*s", be->where, (int)r->len,
                               r->str);
            } else {
                rc = kmerr_set(err, KM_INTERNAL_ERROR, "redis %s: %.*s", be->where,
                               (int)r->len, r->str);
            }
            freeReplyObject(r);
            return rc;
        }
        *out = r;
        return KM_OK;
    }
    return KM_STORE_UNREACHABLE;
}

/* Run script `s` with the keys and arguments already in `cm` after its first three slots
 * (left free for EVALSHA sha nkeys). */
static kmcode
eval(kmstore_be *be, int s, struct cmd *cm, int nkeys, redisReply **out, kmerr *err)
{
    int    noscript = 0;
    kmcode rc;
    char   sha[41] = "";

    snprintf(cm->num[2], sizeof(cm->num[2]), "%d", nkeys);
    cm->argv[2] = cm->num[2];
    cm->len[2] = strlen(cm->num[2]);
    pthread_mutex_lock(&be->mu);
    if (be->have_sha)
        memcpy(sha, be->sha[s], sizeof(sha));
    pthread_mutex_unlock(&be->mu);
    if (sha[0]) {
        cm->argv[0] = "EVALSHA";
        cm->len[0] = 7;
        cm->argv[1] = sha;
        cm->len[1] = 40;
        rc = run(be, cm, out, &noscript, err);
        if (rc != KM_OK || !noscript)
            return rc;
    }
    /* the server forgot the script (restart, SCRIPT FLUSH): EVAL sends and caches it */
    cm->argv[0] = "EVAL";
    cm->len[0] = 4;
    cm->argv[1] = kmredis_lua[s];
    cm->len[1] = strlen(kmredis_lua[s]);
    return run(be, cm, out, NULL, err);
}

static void
eval_slots(struct cmd *cm)
{
    memset(cm, 0, sizeof(*cm));
    cm->argc = 3;
}

static kmcode
unexpected(kmstore_be *be, redisReply *r, kmerr *err)
{
    freeReplyObject(r);
    return kmerr_set(err, KM_INTERNAL_ERROR, "redis %s: unexpected reply", be->where);
}

static int64_t
reply_int(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

/* --- open / close / probe ---------------------------------------------------------------- */

static void
redis_close(kmstore_be *be)
{
    if (!be)
        return;
    for (int i = 0; i < be->nidle; i++)
        redisFree(be->idle[i]);
    pthread_mutex_destroy(&be->mu);
    free(be->host);
    if (be->pass) {
        /* do not leave the password in freed memory */
        volatile char *p = be->pass;
        while (*p)
            *p++ = '\0';
    }
    free(be->pass);
    free(be->user);
    free(be);
}

static kmcode
redis_open(const kmstore_opts *o, kmstore_be **out, kmerr *err)
{
    kmstore_be *be = km_xcalloc(1, sizeof(*be));
    kmcode      rc;

    pthread_mutex_init(&be->mu, NULL);
    be->max_bytes = o->max_bytes;
    be->grace_ms = (int64_t)o->stale_grace_s * 1000;
    atomic_init(&be->seq, 0);
    /* take members must be unique across processes forked in the same microsecond */
    if (getrandom(&be->nonce, sizeof(be->nonce), GRND_NONBLOCK) != (ssize_t)sizeof(be->nonce)) {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        be->nonce = ((unsigned long long)tv.tv_usec << 32) ^ (unsigned long long)tv.tv_sec ^
                    ((unsigned long long)getpid() << 44);
    }
    rc = parse_url(be, o->redis_url, err);
    if (rc != KM_OK) {
        redis_close(be);
        be = NULL;
    }
    *out = be;
    return rc;
}

static kmcode
redis_probe(kmstore_be *be, kmerr *err)
{
    struct cmd  cm = { 0 };
    redisReply *r;
    kmcode      rc;

    arg_str(&cm, "PING");
    rc = run(be, &cm, &r, NULL, err);
    if (rc != KM_OK)
        return KM_STORE_UNREACHABLE;
    freeReplyObject(r);
    return KM_OK;
}

static const char *
redis_where(const kmstore_be *be)
{
    return be->where;
}

void
kmredis_info(const kmstore_be *be, struct kmredis_info *out)
{
    out->host = be->host;
    out->port = be->port;
    out->user = be->user;
    out->pass = be->pass;
    out->db = be->db;
    out->where = be->where;
}

const char *
kmredis_script(kmstore_be *be, enum kmredis_script s, char sha[41])
{
    int i = s == KMREDIS_GET ? KMLUA_GET : KMLUA_RATE;

    pthread_mutex_lock(&be->mu);
    if (be->have_sha)
        memcpy(sha, be->sha[i], 41);
    else
        sha[0] = '\0';
    pthread_mutex_unlock(&be->mu);
    return kmredis_lua[i];
}

/* --- cache ------------------------------------------------------------------------------- */

static kmcode
redis_cache_get(kmstore_be *be, const char *key, char **body, size_t *len, int64_t *age_ms,
                int *fresh, kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    char       *name = km_xasprintf("km:c:%s", key);
    int64_t     now, stored, fresh_until, gone_at;
    kmcode      rc;

    eval_slots(&cm);
    arg_str(&cm, name);
    rc = eval(be, KMLUA_GET, &cm, 1, &r, err);
    free(name);
    if (rc != KM_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return unexpected(be, r, err);
    if (r->elements < 5 || r->element[4]->type != REDIS_REPLY_STRING) {
        freeReplyObject(r);
        return kmerr_set(err, KM_NOT_FOUND, "not cached");
    }
    now = reply_int(r->element[0]);
    stored = reply_int(r->element[1]);
    fresh_until = reply_int(r->element[2]);
    gone_at = reply_int(r->element[3]);
    if (now >= gone_at) {
        freeReplyObject(r);
        return kmerr_set(err, KM_NOT_FOUND, "not cached");
    }
    *len = r->element[4]->len;
    *body = km_xmalloc(*len + 1);
    memcpy(*body, r->element[4]->str, *len);
    (*body)[*len] = '\0';
    *age_ms = now > stored ? now - stored : 0;
    *fresh = now < fresh_until;
    freeReplyObject(r);
    return KM_OK;
}

static kmcode
redis_cache_put(kmstore_be *be, const char *key, const char *body, size_t len, int ttl_s,
                kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    char       *name;
    kmcode      rc;

    if (kmstore_charge(strlen(key), len) > be->max_bytes)
        return kmerr_set(err, KM_PAYLOAD_TOO_LARGE,
                         "a body of %zu bytes exceeds the cache bound of %llu bytes", len,
                         (unsigned long long)be->max_bytes);
    name = km_xasprintf("km:c:%s", key);
    eval_slots(&cm);
    arg_str(&cm, name);
    arg_str(&cm, "km:cz");
    arg_str(&cm, "km:cs");
    arg_str(&cm, "km:cb");
    arg_str(&cm, "km:cq");
    arg(&cm, body, len);
    arg_num(&cm, (long long)ttl_s * 1000);
    arg_num(&cm, (long long)be->grace_ms);
    arg_num(&cm, (long long)be->max_bytes);
    arg_str(&cm, SWEEP_MAX);
    arg_num(&cm, (long long)kmstore_charge(strlen(key), len));
    rc = eval(be, KMLUA_PUT, &cm, 5, &r, err);
    free(name);
    if (rc != KM_OK)
        return rc;
    if (r->type != REDIS_REPLY_INTEGER)
        return unexpected(be, r, err);
    freeReplyObject(r);
    return KM_OK;
}

static kmcode
redis_cache_clear(kmstore_be *be, kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    kmcode      rc;

    eval_slots(&cm);
    arg_str(&cm, "km:cz");
    arg_str(&cm, "km:cs");
    arg_str(&cm, "km:cb");
    rc = eval(be, KMLUA_CLEAR, &cm, 3, &r, err);
    if (rc != KM_OK)
        return rc;
    freeReplyObject(r);
    return KM_OK;
}

/* --- rate windows ------------------------------------------------------------------------ */

/* peek_win >= 0: a peek at that window; < 0: a take (in turn when ticket is set). */
static kmcode
rate_script(kmstore_be *be, const char *bucket, const kmlimit *lim, int peek_win,
            const char *ticket, int lease_ms, int64_t *a, int64_t *b, kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    char       *name = km_xasprintf("km:r:%s", bucket);
    char       *qname = km_xasprintf("km:q:%s", bucket);
    char       *lname = km_xasprintf("km:qt:%s", bucket);
    char        member[64];
    kmcode      rc;

    snprintf(member, sizeof(member), "%016llx:%llu", be->nonce,
             (unsigned long long)atomic_fetch_add(&be->seq, 1));
    eval_slots(&cm);
    arg_str(&cm, name);
    if (peek_win < 0) {
        arg_str(&cm, qname);
        arg_str(&cm, lname);
    }
    arg_str(&cm, peek_win < 0 ? "take" : "peek");
    arg_num(&cm, peek_win + 1);
    arg_str(&cm, member);
    arg_num(&cm, lim->nwin);
    for (int i = 0; i < lim->nwin; i++) {
        arg_num(&cm, (long long)lim->win[i].window_ms);
        arg_num(&cm, lim->win[i].max);
    }
    if (peek_win < 0) {
        arg_str(&cm, ticket ? ticket : "");
        arg_num(&cm, lease_ms);
        arg_num(&cm, KMSTORE_TURN_MS);
        arg_num(&cm, KMSTORE_QUEUE_MAX);
    }
    rc = eval(be, KMLUA_RATE, &cm, peek_win < 0 ? 3 : 1, &r, err);
    free(name);
    free(qname);
    free(lname);
    if (rc != KM_OK)
        return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return unexpected(be, r, err);
    *a = reply_int(r->element[0]);
    *b = reply_int(r->element[1]);
    freeReplyObject(r);
    return KM_OK;
}

static kmcode
redis_take(kmstore_be *be, const char *bucket, const kmlimit *lim, const char *ticket,
           int lease_ms, int64_t *wait_ms, kmerr *err)
{
    int64_t ok = 0, wait = 0;
    kmcode  rc;

    *wait_ms = 0;
    rc = rate_script(be, bucket, lim, -1, ticket, lease_ms, &ok, &wait, err);
    if (rc != KM_OK)
        return rc;
    if (ok)
        return KM_OK;
    *wait_ms = wait < 1 ? 1 : wait;
    return KM_RATE_LIMITED;
}

static kmcode
redis_remaining(kmstore_be *be, const char *bucket, const kmlimit *lim, int win,
                int *remaining, int64_t *reset_ms, kmerr *err)
{
    int64_t left = 0, reset = 0;
    kmcode  rc;

    rc = rate_script(be, bucket, lim, win, NULL, 0, &left, &reset, err);
    if (rc != KM_OK)
        return rc;
    *remaining = (int)left;
    *reset_ms = reset;
    return KM_OK;
}

static kmcode
redis_leave(kmstore_be *be, const char *bucket, const char *ticket, kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    char       *qname = km_xasprintf("km:q:%s", bucket);
    char       *lname = km_xasprintf("km:qt:%s", bucket);
    kmcode      rc;

    eval_slots(&cm);
    arg_str(&cm, qname);
    arg_str(&cm, lname);
    arg_str(&cm, ticket);
    rc = eval(be, KMLUA_LEAVE, &cm, 2, &r, err);
    free(qname);
    free(lname);
    if (rc != KM_OK)
        return rc;
    freeReplyObject(r);
    return KM_OK;
}

/* --- markers ----------------------------------------------------------------------------- */

static kmcode
redis_lock(kmstore_be *be, const char *key, int ttl_ms, const char *token, int *acquired,
           kmerr *err)
{
    struct cmd  cm = { 0 };
    redisReply *r;
    char       *name = km_xasprintf("km:l:%s", key);
    kmcode      rc;

    *acquired = 0;
    arg_str(&cm, "SET");
    arg_str(&cm, name);
    arg_str(&cm, token);
    arg_str(&cm, "NX");
    arg_str(&cm, "PX");
    arg_num(&cm, ttl_ms);
    rc = run(be, &cm, &r, NULL, err);
    free(name);
    if (rc != KM_OK)
        return rc;
    if (r->type == REDIS_REPLY_STATUS)
        *acquired = 1;
    else if (r->type != REDIS_REPLY_NIL)
        return unexpected(be, r, err);
    freeReplyObject(r);
    return KM_OK;
}

static kmcode
redis_unlock(kmstore_be *be, const char *key, const char *token, kmerr *err)
{
    struct cmd  cm;
    redisReply *r;
    char       *name = km_xasprintf("km:l:%s", key);
    kmcode      rc;

    eval_slots(&cm);
    arg_str(&cm, name);
    arg_str(&cm, token);
    rc = eval(be, KMLUA_UNLOCK, &cm, 1, &r, err);
    free(name);
    if (rc != KM_OK)
        return rc;
    freeReplyObject(r);
    return KM_OK;
}

const struct kmstore_ops kmstore_redis_ops = {
    .name = "redis",
    .open = redis_open,
    .close = redis_close,
    .cache_get = redis_cache_get,
    .cache_put = redis_cache_put,
    .cache_clear = redis_cache_clear,
    .take = redis_take,
    .leave = redis_leave,
    .remaining = redis_remaining,
    .lock = redis_lock,
    .unlock = redis_unlock,
    .probe = redis_probe,
    .where = redis_where,
};
