/* store_loop.c — non-blocking store reads for an event loop (see store_loop.h). */
#include "store_loop.h"
#include "log.h"
#include "store_impl.h"
#include "util.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define RECONNECT_MS 1000   /* after a failed or dropped connection, wait this long */

struct read {
    kmstore_loop     *l;
    kmstore_loop_fn  *cb;
    void             *arg;
    int               due;        /* replies still to come */
    int               got;        /* replies seen */
    int               delivered;
    int               found;
    char             *body;
    size_t            len;
    int               remaining;
    int               peek_bad;   /* a window could not be read: remaining unknown */
    struct event     *timer;
    LIST_ENTRY(read)  link;
};

struct kmstore_loop {
    kmstore            *st;
    struct event_base  *base;
    redisAsyncContext  *ac;         /* NULL when there is no connection */
    int64_t             retry_at;   /* no new connection before this (km_now_ms) */
    int                 freeing;
    int64_t             logged;     /* last store_loop_unavailable line */
    LIST_HEAD(, read)   reads;      /* sent, some reply still due */
};

static void
say(kmstore_loop *l, const char *why)
{
    int64_t now = km_now_ms();

    /* one line a minute at most: the requests themselves still succeed */
    if (now - l->logged < 60000)
        return;
    l->logged = now;
    kmlogf(KMLOG_WARN, "store_loop_unavailable", "answer cache reads on the event loop: %s; "
           "calls run on service threads until it answers", why);
}

static void
deliver(struct read *r)
{
    kmstore_loop_reply rep;

    if (r->delivered)
        return;
    r->delivered = 1;
    if (r->timer)
        event_del(r->timer);
    if (r->l->freeing)
        return;
    rep.found = r->found;
    rep.body = r->found ? r->body : NULL;
    rep.len = r->found ? r->len : 0;
    rep.remaining = r->remaining;
    r->cb(r->arg, &rep);
}

static void
read_free(struct read *r)
{
    if (r->timer)
        event_free(r->timer);
    free(r->body);
    free(r);
}

/* Answer a read at once without touching Redis. */
static void
answer_now(kmstore_loop *l, kmstore_loop_fn *cb, void *arg, int found, const char *body,
           size_t len, int remaining)
{
    kmstore_loop_reply rep = { found, found ? body : NULL, found ? len : 0, remaining };

    (void)l;
    cb(arg, &rep);
}

/* --- LMDB: memory-mapped reads, answered before returning ------------------------------ */

static void
get_sync(kmstore_loop *l, const char *key, const char *const *peek, size_t npeek,
         const kmlimit *lim, int win, kmstore_loop_fn *cb, void *arg)
{
    char   *body = NULL;
    size_t  len = 0;
    int64_t age = 0, reset = 0;
    int     fresh = 0, found = 0, least = -1;
    kmerr   e = { 0 };

    if (kmstore_cache_get(l->st, key, &body, &len, &age, &fresh, &e) == KM_OK && fresh)
        found = 1;
    kmerr_clear(&e);
    for (size_t i = 0; found && i < npeek; i++) {
        int left = 0;

        if (kmstore_remaining(l->st, peek[i], lim, win, &left, &reset, &e) != KM_OK) {
            least = -1;
            kmerr_clear(&e);
            break;
        }
        if (least < 0 || left < least)
            least = left;
    }
    answer_now(l, cb, arg, found, body, len, least);
    free(body);
}

/* --- Redis: hiredis async on the loop --------------------------------------------------- */

static int64_t
reply_num(const redisReply *r)
{
    if (r->type == REDIS_REPLY_INTEGER)
        return (int64_t)r->integer;
    if (r->type == REDIS_REPLY_STRING)
        return strtoll(r->str, NULL, 10);
    return 0;
}

static void
on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct read *r = priv;
    redisReply  *rep = reply;
    int          idx = r->got++;

    (void)ac;
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        /* the connection went away, or the server refused (NOSCRIPT, LOADING...): a miss */
        if (idx == 0)
            r->found = 0;
        r->peek_bad = 1;
    } else if (idx == 0) {
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 5 &&
            rep->element[4]->type == REDIS_REPLY_STRING &&
            reply_num(rep->element[0]) < reply_num(rep->element[2])) {
            r->found = 1;
            r->len = rep->element[4]->len;
            r->body = km_xmalloc(r->len + 1);
            memcpy(r->body, rep->element[4]->str, r->len);
            r->body[r->len] = '\0';
        }
    } else if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        int left = (int)reply_num(rep->element[0]);

        if (r->remaining < 0 || left < r->remaining)
            r->remaining = left;
    } else {
        r->peek_bad = 1;
    }
    if (--r->due > 0)
        return;
    if (r->peek_bad)
        r->remaining = -1;
    LIST_REMOVE(r, link);
    deliver(r);
    read_free(r);
}

static void
on_setup(redisAsyncContext *ac, void *reply, void *priv)
{
    redisReply   *rep = reply;
    kmstore_loop *l = priv;

    if (rep && rep->type == REDIS_REPLY_ERROR) {
        say(l, "Redis refused the login or database (check REDIS_URL)");
        l->retry_at = km_now_ms() + RECONNECT_MS;
        redisAsyncDisconnect(ac);
    }
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    kmstore_loop *l = ac->data;

    if (status != REDIS_OK) {
        /* hiredis frees the context after this */
        say(l, ac->errstr[0] ? ac->errstr : "cannot connect to Redis");
        if (l->ac == ac)
            l->ac = NULL;
        l->retry_at = km_now_ms() + RECONNECT_MS;
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    kmstore_loop *l = ac->data;

    (void)status;
    if (l->ac == ac)
        l->ac = NULL;
}

/* A connection, made when there is none (at most once a RECONNECT_MS after a failure). */
static redisAsyncContext *
connection(kmstore_loop *l)
{
    struct kmredis_info info;
    redisAsyncContext  *ac;

    if (l->ac)
        return l->ac;
    if (km_now_ms() < l->retry_at)
        return NULL;
    kmredis_info(kmstore_be_of(l->st), &info);
    ac = redisAsyncConnect(info.host, info.port);
    if (!ac)
        goto fail;
    if (ac->err) {
        say(l, ac->errstr);
        redisAsyncFree(ac);
        goto fail;
    }
    ac->data = l;
    if (redisLibeventAttach(ac, l->base) != REDIS_OK) {
        redisAsyncFree(ac);
        goto fail;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    if (info.pass) {
        if (info.user)
            redisAsyncCommand(ac, on_setup, l, "AUTH %s %s", info.user, info.pass);
        else
            redisAsyncCommand(ac, on_setup, l, "AUTH %s", info.pass);
    }
    if (info.db != 0)
        redisAsyncCommand(ac, on_setup, l, "SELECT %d", info.db);
    l->ac = ac;
    return ac;
fail:
    l->retry_at = km_now_ms() + RECONNECT_MS;
    return NULL;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct read  *r = arg;
    kmstore_loop *l = r->l;

    (void)fd;
    (void)what;
    r->found = 0;
    deliver(r);
    /* a connection that stays silent this long is not to be trusted: drop it (every read
     * still on it is answered "not found", and freed, by its callback) */
    if (l->ac) {
        redisAsyncContext *ac = l->ac;

        say(l, "Redis did not answer in time");
        l->ac = NULL;
        l->retry_at = km_now_ms() + RECONNECT_MS;
        redisAsyncFree(ac);
    }
}

/* Send one script call: EVALSHA when the scripts are loaded, else EVAL (which loads it). */
static int
send_script(kmstore_loop *l, redisAsyncContext *ac, enum kmredis_script s, int argc,
            const char **argv, size_t *lens, struct read *r)
{
    char        sha[41];
    const char *text = kmredis_script(kmstore_be_of(l->st), s, sha);

    if (sha[0]) {
        argv[0] = "EVALSHA";
        argv[1] = sha;
    } else {
        argv[0] = "EVAL";
        argv[1] = text;
    }
    lens[0] = strlen(argv[0]);
    lens[1] = strlen(argv[1]);
    /* hiredis copies the arguments into its output buffer before returning */
    return redisAsyncCommandArgv(ac, on_reply, r, argc, argv, lens);
}

static void
get_async(kmstore_loop *l, const char *key, const char *const *peek, size_t npeek,
          const kmlimit *lim, int win, kmstore_loop_fn *cb, void *arg)
{
    redisAsyncContext *ac = connection(l);
    struct read       *r;
    struct timeval     tv = { 0, KMSTORE_LOOP_TIMEOUT_MS * 1000 };
    const char        *argv[8 + 2 * 3];
    size_t             lens[8 + 2 * 3];
    char               nums[4 + 2 * 3][24];
    char              *name;
    int                argc;

    if (!ac) {
        answer_now(l, cb, arg, 0, NULL, 0, -1);
        return;
    }
    r = km_xcalloc(1, sizeof(*r));
    r->l = l;
    r->cb = cb;
    r->arg = arg;
    r->remaining = -1;
    r->timer = evtimer_new(l->base, on_timeout, r);
    LIST_INSERT_HEAD(&l->reads, r, link);

    name = km_xasprintf("km:c:%s", key);
    argv[2] = "1";
    argv[3] = name;
    lens[2] = 1;
    lens[3] = strlen(name);
    r->due++;
    if (send_script(l, ac, KMREDIS_GET, 4, argv, lens, r) != REDIS_OK)
        r->due--;
    free(name);
    for (size_t i = 0; i < npeek && r->due > 0; i++) {
        name = km_xasprintf("km:r:%s", peek[i]);
        argc = 2;
        argv[argc++] = "1";
        argv[argc++] = name;
        argv[argc++] = "peek";
        snprintf(nums[0], sizeof(nums[0]), "%d", win + 1);
        argv[argc++] = nums[0];
        argv[argc++] = "-";
        snprintf(nums[1], sizeof(nums[1]), "%d", lim->nwin);
        argv[argc++] = nums[1];
        for (int w = 0; w < lim->nwin && w < 3; w++) {
            snprintf(nums[2 + 2 * w], sizeof(nums[0]), "%lld",
                     (long long)lim->win[w].window_ms);
            snprintf(nums[3 + 2 * w], sizeof(nums[0]), "%d", lim->win[w].max);
            argv[argc++] = nums[2 + 2 * w];
            argv[argc++] = nums[3 + 2 * w];
        }
        for (int a = 2; a < argc; a++)
            lens[a] = strlen(argv[a]);
        r->due++;
        if (send_script(l, ac, KMREDIS_RATE, argc, argv, lens, r) != REDIS_OK)
            r->due--;
        free(name);
    }
    if (r->due == 0) {
        LIST_REMOVE(r, link);
        deliver(r);
        read_free(r);
        return;
    }
    if (r->timer)
        evtimer_add(r->timer, &tv);
}

/* --- the interface ---------------------------------------------------------------------- */

kmstore_loop *
kmstore_loop_new(kmstore *st, struct event_base *base)
{
    kmstore_loop *l = km_xcalloc(1, sizeof(*l));

    l->st = st;
    l->base = base;
    l->logged = -60000;
    LIST_INIT(&l->reads);
    return l;
}

void
kmstore_loop_free(kmstore_loop *l)
{
    if (!l)
        return;
    l->freeing = 1;
    if (l->ac) {
        redisAsyncContext *ac = l->ac;

        l->ac = NULL;
        redisAsyncFree(ac);      /* answers every pending read's callback with NULL */
    }
    while (!LIST_EMPTY(&l->reads)) {
        struct read *r = LIST_FIRST(&l->reads);

        LIST_REMOVE(r, link);
        read_free(r);
    }
    free(l);
}

void
kmstore_loop_get(kmstore_loop *l, const char *key, const char *const *peek, size_t npeek,
                 const kmlimit *lim, int win, kmstore_loop_fn *cb, void *arg)
{
    if (npeek > KMSTORE_LOOP_PEEK_MAX)
        npeek = KMSTORE_LOOP_PEEK_MAX;
    if (kmstore_down(l->st)) {
        answer_now(l, cb, arg, 0, NULL, 0, -1);
        return;
    }
    if (kmstore_is_redis(l->st))
        get_async(l, key, peek, npeek, lim, win, cb, arg);
    else
        get_sync(l, key, peek, npeek, lim, win, cb, arg);
}
