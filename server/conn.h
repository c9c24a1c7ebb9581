/* conn.h — a worker's client connections: the bufferevent evhttp reads each one through, a
 * count of those open, and a bound on the whole time a request takes to arrive.
 *
 * Owns:    a kmconn_pool owns a table with one small record per open descriptor number; a
 *          record is reused by the next connection on the same number, so nothing is
 *          allocated per connection. Free the pool only after every evhttp that used it
 *          (kmconn_pool_free after evhttp_free).
 * Threads: the worker's loop thread only.
 * Fails:   kmconn_pool_new returns NULL when libevent cannot make an event; kmconn_bev
 *          returns NULL when it cannot make a bufferevent (evhttp then makes its own, without
 *          the bound, and the connection is not counted).
 *
 * Counting: evhttp 2.1 tells nobody when a server connection closes, except through a
 * connection's close callback, and the connection does not exist yet when its bufferevent is
 * made. So kmconn_bev counts the connection at once (a listener accepting a burst can stop at
 * the cap within it) and keeps a reference to the bufferevent; on the next turn of the loop,
 * when evhttp has made the connection the bufferevent's callback argument, the close callback
 * is attached (or the count taken back, if evhttp already freed it) and the reference dropped.
 * The watch function sees every change of the count (the listeners pause and resume on it).
 *
 * evhttp's read timeout is an idle timeout (REST_TIMEOUT_SECONDS of silence): a client that
 * sends one header line every few seconds would keep a request open for ever. Each
 * connection's input buffer carries a callback that sees every read: the first byte of a
 * request starts its clock, and after each read the read timeout is set to what is left of
 * the request's REST_TIMEOUT_SECONDS, so the silence that would pass the deadline ends the
 * connection, and bytes that arrive after it end it at once (evhttp answers nothing: the
 * request never arrived whole). The clock stops when the request has arrived
 * (kmconn_request_done, from the request callback).
 *
 * The first read of a connection also sets TCP_NODELAY on it (as nginx does), so the last
 * segment of an answer never waits for the client's delayed ACK, and each bufferevent may
 * write up to 1 MiB at a time (libevent's default is 16 KiB a turn of the loop).
 */
#ifndef KM_CONN_H
#define KM_CONN_H

#include <event2/event.h>
#include <stddef.h>

struct bufferevent;

typedef struct kmconn_pool kmconn_pool;

kmconn_pool *kmconn_pool_new(struct event_base *base, int request_timeout_s);
void kmconn_pool_free(kmconn_pool *p);

/* Call watch(arg, open) whenever the number of open connections changes (NULL: stop). */
void kmconn_watch(kmconn_pool *p, void (*watch)(void *arg, size_t open), void *arg);

/* evhttp_set_bevcb's callback (arg: the pool): a new connection's bufferevent. */
struct bufferevent *kmconn_bev(struct event_base *base, void *pool);

/* The request on the connection of `bev` has arrived whole: its clock stops. */
void kmconn_request_done(kmconn_pool *p, struct bufferevent *bev);

#endif
