/* conn.c — client connections and the whole-request bound (see conn.h). */
#include "conn.h"
#include "log.h"
#include "util.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>

#define SLOW_LOG_MS 10000   /* one request_timeout line per this long at most */
#define WRITE_MAX   (1024 * 1024)   /* bytes one write() may take: an answer in one go */

/* What is known of the connection on one descriptor number. */
struct slot {
    struct bufferevent *bev;        /* the connection it was last seen for */
    int64_t             started;    /* km_now_ms of the first byte of the request being
                                       received; 0 when none is */
};

struct kmconn_pool {
    int64_t      limit_ms;          /* REST_TIMEOUT_SECONDS in ms */
    struct slot *slots;             /* by descriptor number */
    size_t       nslots;
    int64_t      logged;            /* km_now_ms of the last request_timeout line */
    unsigned     cut;               /* connections cut since that line */

    size_t       open;              /* connections made and not yet closed */
    struct bufferevent **fresh;     /* made since the last settle; each holds one reference */
    size_t       nfresh, capfresh;
    struct event *settle;           /* counts the fresh ones in (active when nfresh > 0) */
    void       (*watch)(void *arg, size_t open);
    void        *watch_arg;
};

/* The pool of a connection's callback: each bufferevent's callback argument is the bufferevent
 * itself (it lives exactly as long as its buffers), so the pool is found here. One pool per
 * worker process, loop thread only. */
static kmconn_pool *the_pool;

static void on_settle(evutil_socket_t fd, short what, void *arg);

kmconn_pool *
kmconn_pool_new(struct event_base *base, int request_timeout_s)
{
    kmconn_pool *p = km_xcalloc(1, sizeof(*p));

    p->limit_ms = (int64_t)(request_timeout_s > 0 ? request_timeout_s : 30) * 1000;
    p->logged = -SLOW_LOG_MS;
    p->settle = event_new(base, -1, 0, on_settle, p);
    if (!p->settle) {
        free(p);
        return NULL;
    }
    the_pool = p;
    return p;
}

void
kmconn_pool_free(kmconn_pool *p)
{
    if (!p)
        return;
    if (the_pool == p)
        the_pool = NULL;
    /* connections evhttp freed before they were counted: drop the reference they hold */
    for (size_t i = 0; i < p->nfresh; i++)
        bufferevent_decref(p->fresh[i]);
    event_free(p->settle);
    free(p->fresh);
    free(p->slots);
    free(p);
}

void
kmconn_watch(kmconn_pool *p, void (*watch)(void *arg, size_t open), void *arg)
{
    p->watch = watch;
    p->watch_arg = arg;
}

static void
count(kmconn_pool *p, int delta)
{
    if (delta < 0 && p->open == 0)
        return;
    p->open = delta > 0 ? p->open + 1 : p->open - 1;
    if (p->watch)
        p->watch(p->watch_arg, p->open);
}

/* evhttp's close callback: the connection is going away (its descriptor is still open). */
static void
on_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    count(arg, -1);
}

/* The turn of the loop after new connections were made: evhttp has set each bufferevent's
 * callback argument to its connection by now, so the close callback can be attached. One
 * whose callbacks are gone was freed by evhttp meanwhile (bufferevent_free clears them; the
 * reference taken in kmconn_bev keeps the memory readable until it is dropped here). */
static void
on_settle(evutil_socket_t fd, short what, void *arg)
{
    kmconn_pool *p = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < p->nfresh; i++) {
        struct bufferevent *bev = p->fresh[i];
        void               *evcon = NULL;

        bufferevent_getcb(bev, NULL, NULL, NULL, &evcon);
        if (evcon)
            evhttp_connection_set_closecb(evcon, on_closed, p);
        else
            count(p, -1);
        bufferevent_decref(bev);
    }
    p->nfresh = 0;
}

/* The slot of bev's descriptor, made fresh when it last belonged to another connection. */
static struct slot *
slot_of(kmconn_pool *p, struct bufferevent *bev)
{
    evutil_socket_t fd = bufferevent_getfd(bev);
    struct slot    *s;

    if (fd < 0)
        return NULL;
    if ((size_t)fd >= p->nslots) {
        size_t n = p->nslots ? p->nslots : 256;

        while (n <= (size_t)fd)
            n *= 2;
        p->slots = km_xrealloc(p->slots, n * sizeof(*p->slots));
        for (size_t i = p->nslots; i < n; i++)
            p->slots[i] = (struct slot){ NULL, 0 };
        p->nslots = n;
    }
    s = &p->slots[fd];
    if (s->bev != bev) {
        int on = 1;

        s->bev = bev;
        s->started = 0;
        /* a new connection: an answer's last segment must not wait for the client's delayed
         * ACK of the one before (Nagle); fails harmlessly on the Unix socket */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
    return s;
}

static void
cut_slow(kmconn_pool *p, int64_t now)
{
    p->cut++;
    if (now - p->logged < SLOW_LOG_MS)
        return;
    kmlogf(KMLOG_INFO, "request_timeout", "a request did not arrive whole within "
           "REST_TIMEOUT_SECONDS (%lld s) of its first byte: connection closed (%u since the "
           "last line)", (long long)(p->limit_ms / 1000), p->cut);
    p->logged = now;
    p->cut = 0;
}

/* Bytes came in (or were consumed): runs before evhttp reads them. */
static void
on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct bufferevent *bev = arg;
    kmconn_pool        *p = the_pool;
    struct slot        *s;
    struct timeval      rd, wr;
    int64_t             now, left;

    (void)buf;
    if (!p || info->n_added == 0)
        return;
    s = slot_of(p, bev);
    if (!s)
        return;
    now = km_now_ms();
    if (s->started == 0)
        s->started = now;
    left = p->limit_ms - (now - s->started);
    if (left <= 0) {
        /* past the deadline: end the connection on the next turn of the loop */
        cut_slow(p, now);
        left = 1;
    }
    /* silence may last only as long as the request has left */
    rd.tv_sec = (time_t)(left / 1000);
    rd.tv_usec = (suseconds_t)(left % 1000) * 1000;
    wr.tv_sec = (time_t)(p->limit_ms / 1000);
    wr.tv_usec = 0;
    bufferevent_set_timeouts(bev, &rd, &wr);
}

struct bufferevent *
kmconn_bev(struct event_base *base, void *pool)
{
    kmconn_pool        *p = pool;
    struct bufferevent *bev;

    bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL;
    /* libevent writes at most 16 KiB per turn of the loop by default */
    bufferevent_set_max_single_write(bev, WRITE_MAX);
    if (!evbuffer_add_cb(bufferevent_get_input(bev), on_input, bev)) {
        bufferevent_free(bev);
        return NULL;
    }
    if (p->nfresh == p->capfresh) {
        p->capfresh = p->capfresh ? 2 * p->capfresh : 16;
        p->fresh = km_xrealloc(p->fresh, p->capfresh * sizeof(*p->fresh));
    }
    bufferevent_incref(bev);
    p->fresh[p->nfresh++] = bev;
    if (p->nfresh == 1)
        event_active(p->settle, EV_TIMEOUT, 0);
    /* counted now, so a listener accepting many in one go can stop at the cap */
    count(p, +1);
    return bev;
}

void
kmconn_request_done(kmconn_pool *p, struct bufferevent *bev)
{
    struct slot *s = bev ? slot_of(p, bev) : NULL;

    if (s)
        s->started = 0;
}
