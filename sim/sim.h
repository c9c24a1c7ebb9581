/* sim.h — the Klaviyo simulator's HTTP server: routing, auth, revision, content type,
 * pagination, errors, rate limits, fault injection and the /__sim/ control endpoints.
 *
 * Owns:    a sim owns its evhttp server, its listener, its simdata and its counters;
 *          sim_free releases them. The event base is the caller's and must outlive the sim.
 * Threads: one thread: the event loop's.
 * Fails:   sim_new returns NULL with a message on stderr when it cannot listen.
 *
 * The data comes from simdata.h (same seed, same world). Every request to /api/ is counted
 * per "<METHOD> <route template>" (also the ones answered 4xx, 429 or faulted); /__sim/ calls
 * are not. Rate limits are fixed windows per account and endpoint (REFERENCE.md §4), each
 * window opening at its first request; --time-scale multiplies every window length.
 */
#ifndef SIM_H
#define SIM_H

#include <event2/event.h>
#include <stdint.h>

struct simopts {
    const char *host;          /* default "127.0.0.1" */
    int         port;          /* 0 = pick a free one */
    uint64_t    seed;          /* default 1 */
    double      time_scale;    /* 0 < x <= 1; multiplies every window length */
    int         no_limits;     /* 1 = never 429 */
    int         quiet;         /* 1 = no request log lines */
};

typedef struct sim sim;

/* Build the world and listen on opts->host:opts->port on `base`. NULL on failure. */
sim *sim_new(struct event_base *base, const struct simopts *opts);
void sim_free(sim *s);

/* The port it listens on, and its base URL "http://HOST:PORT" (borrowed). */
int sim_port(const sim *s);
const char *sim_base_url(const sim *s);

/* Write DIR/accounts.toml and DIR/.env (0600) for every simulated account, each file through a
 * temporary name and rename(2). 0 on success, -1 with a message on stderr. */
int sim_write_config(const sim *s, const char *dir);

/* Stop the loop on SIGTERM or SIGINT (exit 0 follows in main). */
int sim_handle_signals(sim *s);

#endif
