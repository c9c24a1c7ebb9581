/* http_listen.c — the listening sockets: evhttp on each, a pause while the worker has as
 * many connections as it keeps, and a pause when accept() fails for want of descriptors or
 * memory (see http_impl.h). */
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
    if (l->bound && !l->capped)
        evconnlistener_enable(evhttp_bound_socket_get_listener(l->bound));
}

/* The count of open connections changed (kmconn_watch). A listener stops accepting while the
 * worker holds max_conns connections (the Unix socket UNIX_EXTRA_CONNS more, so a flood of TCP
 * clients does not shut the MCP shim out), and accepts again when one closes. Connections
 * beyond wait in the kernel's queue, where another worker may take them; the descriptors
 * left are kept for Klaviyo, the store and the logs. */
void
kmh_on_conns(void *arg, size_t open)
{
    kmhttp *h = arg;

    for (size_t i = 0; i < h->n_lis; i++) {
        struct listener       *l = &h->lis[i];
        size_t                 limit = h->max_conns + (l->trusted ? UNIX_EXTRA_CONNS : 0);
        struct evconnlistener *el;
        int64_t                now;

        if (!l->bound)
            continue;
        el = evhttp_bound_socket_get_listener(l->bound);
        if (!l->capped && open >= limit) {
            l->capped = 1;
            evconnlistener_disable(el);
            h->full_pauses++;
            now = km_now_ms();
            if (now - h->full_logged >= ACCEPT_LOG_MS) {
                kmlogf(KMLOG_WARN, "connections_full", "%zu client connections open, the most "
                       "this worker keeps (WORKER_CONNECTIONS, within the descriptor limit): the "
                       "%s listener waits until one closes (%u pause(s) since the last line)",
                       open, l->trusted ? "Unix socket" : "TCP", h->full_pauses);
                h->full_logged = now;
                h->full_pauses = 0;
            }
        } else if (l->capped && open < limit) {
            l->capped = 0;
            if (!l->resume || !evtimer_pending(l->resume, NULL))
                evconnlistener_enable(el);
        }
    }
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

