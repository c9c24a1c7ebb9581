/* http_listen.c — the listening sockets: evhttp on each, and a pause when accept() fails for
 * want of descriptors or memory (see http_impl.h). */
#include "http_impl.h"

/* evhttp keeps the evconnlistener's callback argument for itself, so an accept error is
 * traced back to its listener here. Loop thread only; one kmhttp per worker process. */
static struct {
    struct evconnlistener *el;
    struct listener       *l;
} accepting[MAX_LISTENERS];

void
kmh_forget_listener(struct listener *l)
{
    for (size_t i = 0; i < MAX_LISTENERS; i++)
        if (accepting[i].l == l)
            accepting[i].el = NULL, accepting[i].l = NULL;
    if (l->resume) {
        event_free(l->resume);
        l->resume = NULL;
    }
}

static void
on_resume(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;

    (void)fd;
    (void)what;
    if (l->bound)
        evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
}

/* accept() failed for a reason that is not "try again": out of descriptors (EMFILE, ENFILE)
 * or memory. Retrying at once would spin (the socket stays readable), so stop accepting for
 * ACCEPT_PAUSE_MS, as nginx does; connections already open are served meanwhile and free
 * descriptors as they end. One log line per ACCEPT_LOG_MS at most. */
static void
on_accept_error(struct evconnlistener *el, void *arg)
{
    int              e = EVUTIL_SOCKET_ERROR();
    struct timeval   tv = { ACCEPT_PAUSE_MS / 1000, (ACCEPT_PAUSE_MS % 1000) * 1000 };
    struct listener *l = NULL;
    int64_t          now = km_now_ms();

    (void)arg;
    for (size_t i = 0; i < MAX_LISTENERS && !l; i++)
        if (accepting[i].el == el)
            l = accepting[i].l;
    evconnlistener_disable(el);
    if (!l) {
        kmlogf(KMLOG_ERROR, "accept_failed", "accept(): %s", strerror(e));
        return;
    }
    evtimer_add(l->resume, &tv);
    l->pauses++;
    if (now - l->logged >= ACCEPT_LOG_MS) {
        kmlogf(KMLOG_WARN, "accept_paused", "accept() on the %s listener failed: %s; not "
               "accepting for %d ms at a time (%u pause(s) since the last line). Raise the "
               "descriptor limit (ulimit -n / LimitNOFILE) or lower the number of clients",
               l->trusted ? "Unix socket" : "TCP", strerror(e), ACCEPT_PAUSE_MS, l->pauses);
        l->logged = now;
        l->pauses = 0;
    }
}

kmcode
kmhttp_listen(kmhttp *h, int fd, int trusted, kmerr *err)
{
    struct listener *l;

    if (h->n_lis >= sizeof(h->lis) / sizeof(h->lis[0]))
        return kmerr_set(err, KM_INTERNAL_ERROR, "too many listeners");
    l = &h->lis[h->n_lis];
    l->h = h;
    l->trusted = trusted;
    l->http = evhttp_new(h->base);
    if (!l->http)
        return kmerr_set(err, KM_INTERNAL_ERROR, "evhttp_new failed");
    h->n_lis++;
    evhttp_set_allowed_methods(l->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(l->http, h->cfg->rest_timeout_s);
    /* Bodies up to twice the limit are read and answered with our own 413 envelope; beyond
     * that libevent refuses them itself (before any callback of ours runs), which bounds the
     * memory one connection can hold. */
    evhttp_set_max_body_size(l->http, (ev_ssize_t)h->cfg->max_body_bytes * 2);
    evhttp_set_max_headers_size(l->http, MAX_HEADERS_BYTES);
    evhttp_set_flags(l->http, EVHTTP_SERVER_LINGERING_CLOSE);
    evhttp_set_gencb(l->http, kmh_on_request, l);
    evhttp_set_bevcb(l->http, kmconn_bev, h->conns);
    l->bound = evhttp_accept_socket_with_handle(l->http, fd);
    if (!l->bound)
        return kmerr_set(err, KM_INTERNAL_ERROR, "evhttp cannot accept on fd %d", fd);
    l->resume = evtimer_new(h->base, on_resume, l);
    if (!l->resume)
        return kmerr_set(err, KM_INTERNAL_ERROR, "cannot make the accept-resume timer");
    for (size_t i = 0; i < MAX_LISTENERS; i++) {
        if (!accepting[i].el) {
            accepting[i].el = evhttp_bound_socket_get_listener(l->bound);
            accepting[i].l = l;
            evconnlistener_set_error_cb(accepting[i].el, on_accept_error);
            break;
        }
    }
    return KM_OK;
}

