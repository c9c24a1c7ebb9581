/* store_loop.h — reading the store from an event loop without blocking it: one cache entry
 * and the room left in a few rate windows, answered by a callback.
 *
 * Owns:    a kmstore_loop borrows its kmstore and event base (both outlive it) and owns its
 *          own Redis connection, made lazily on the base. Text handed to a callback is
 *          borrowed for the duration of the callback only.
 * Threads: the loop thread of `base` only.
 * Fails:   never: a read that cannot be made (Redis away or slow, a broken entry) answers
 *          "not found" and the caller does the work the entry would have saved.
 *
 * With LMDB the reads are memory-mapped and answered before kmstore_loop_get returns. With
 * Redis they are sent on hiredis's asynchronous API, attached to the loop's event base, as one
 * pipelined round trip (the entry and every window), and answered when the replies arrive —
 * or after KMSTORE_LOOP_TIMEOUT_MS, whichever comes first; a connection that stays silent
 * that long is dropped and made again on a later read. While the store runs on its local
 * fallback (kmstore_degraded), every read is "not found".
 */
#ifndef KM_STORE_LOOP_H
#define KM_STORE_LOOP_H

#include "store.h"

#include <stddef.h>

struct event_base;

typedef struct kmstore_loop kmstore_loop;

#define KMSTORE_LOOP_TIMEOUT_MS 250
#define KMSTORE_LOOP_PEEK_MAX   4

typedef struct kmstore_loop_reply {
    int         found;      /* a fresh entry was read: body, len */
    const char *body;
    size_t      len;
    int         remaining;  /* least room left over the windows asked for; -1 unknown */
} kmstore_loop_reply;

typedef void kmstore_loop_fn(void *arg, const kmstore_loop_reply *rep);

kmstore_loop *kmstore_loop_new(kmstore *st, struct event_base *base);

/* Outstanding reads are dropped without their callbacks: free only once nothing waits on
 * one (a draining worker frees it after its last request). NULL is fine. */
void kmstore_loop_free(kmstore_loop *l);

/* Read the fresh entry of `key` and, for each of peek[0..npeek) (npeek at most
 * KMSTORE_LOOP_PEEK_MAX), the room left in window `win` of `lim`. `cb` is called exactly
 * once, possibly before this returns. */
void kmstore_loop_get(kmstore_loop *l, const char *key, const char *const *peek, size_t npeek,
                      const kmlimit *lim, int win, kmstore_loop_fn *cb, void *arg);

#endif
