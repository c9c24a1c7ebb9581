/* worker.h — one klaviyo-restd worker process: an event loop serving the inherited
 * listeners, a heartbeat, and a small pool of service threads that run the tool calls.
 *
 * Owns:    everything it makes after fork(): the event base, the evhttp servers, the
 *          service (store, Klaviyo clients) and its threads. It borrows the settings, the
 *          accounts and its slot in the master's shared table.
 * Threads: kmworker_run runs on the process's main thread (the loop thread) and starts the
 *          service threads itself; call it in the child right after fork().
 * Fork:    nothing it owns existed before the fork; it restores the signal mask and the
 *          default dispositions before anything else.
 * Fails:   kmworker_run returns the process's exit status: 0 after a graceful stop;
 *          KM_EXIT_CONFIG (78) when it could not start because of its configuration (a
 *          KM_CONFIG_ERROR: REDIS_URL unparsable, STORE_DIR not a usable directory or refused
 *          for permission), which no respawn can mend — the reason is logged and left in
 *          slot->fatal for the master; 1 when it could not start for a reason that may pass
 *          (the store file locked or broken, no memory or descriptors), also logged.
 *
 * Stopping: SIGTERM or SIGINT stop accepting, answer what is in flight (with Connection:
 * close), then exit 0; after GRACEFUL_TIMEOUT_SECONDS the worker exits anyway. SIGHUP is
 * ignored (the master reloads by replacing workers).
 */
#ifndef KM_WORKER_H
#define KM_WORKER_H

#include "accounts.h"
#include "settings.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

/* One entry of the master's worker table, in MAP_SHARED memory: the worker writes
 * heartbeat_ms, ready, accepting and fatal, the master everything else. */
struct kmslot {
    _Atomic int64_t heartbeat_ms;  /* km_now_ms() of the last beat (every second) */
    _Atomic int     ready;         /* 1 once the worker serves */
    _Atomic int     accepting;     /* 1 while it accepts new connections */
    pid_t           pid;           /* 0: the slot is free */
    int             generation;
    int             index;         /* position in its generation */
    int64_t         started_ms;
    int64_t         abort_ms;      /* SIGABRT sent for a stale heartbeat; 0: not yet */
    int64_t         kill_at_ms;    /* told to stop: SIGKILL at this time; 0: not stopping */
    char            fatal[200];    /* the worker: why it exits KM_EXIT_CONFIG; "" otherwise */
};

struct kmworker_args {
    const kmcfg      *cfg;
    const kmaccounts *accounts;
    int               tcp_fd;      /* listening sockets, -1 when absent */
    int               unix_fd;
    struct kmslot    *slot;
    pid_t             master;
};

int kmworker_run(const struct kmworker_args *a);

#endif
