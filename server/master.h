/* master.h — the klaviyo-restd master: listeners, preforked workers, supervision, reload.
 *
 * Owns:    the listening sockets, the Unix socket file it created, the pid file it wrote, the
 *          shared worker table, and — once kmmaster_run is called — the settings and accounts
 *          it was given (it frees them, and the ones it loads on reload).
 * Threads: single-threaded. Signals are blocked and taken synchronously with sigtimedwait:
 *          no handler code runs, so nothing async-signal-unsafe can happen.
 * Fork:    workers inherit the listeners, the settings and the accounts; everything else
 *          (event bases, threads, curl handles, the store) is made in the worker.
 * Fails:   kmmaster_run returns the process exit status: 0 after a graceful stop, 1 when the
 *          listeners cannot be opened (the reason is logged), KM_EXIT_CONFIG (78) when a
 *          configuration error stops it at start or when every worker of the serving
 *          generation exited with fatal code 78 (see SIGCHLD below).
 *
 * Signals: SIGTERM or SIGINT — close the listeners, let the workers finish what is in flight
 * within GRACEFUL_TIMEOUT_SECONDS, then exit 0 (a second one kills the workers at once).
 * SIGHUP — call the reload function; on success fork a new generation of workers with the
 * new configuration and, once every new worker serves, stop the old generation gracefully.
 * A configuration that fails to load, or new workers that fail to start, are logged and the
 * running generation is kept. The listeners never close during a reload, so no connection is
 * refused. SIGCHLD — reap; a worker of the running generation that died is replaced (with a
 * growing delay when it keeps dying) — unless it exited KM_EXIT_CONFIG: its configuration
 * cannot work, so it is logged once as "worker_fatal" (with the worker's reason) and never
 * respawned. The other workers, which share that configuration, serve on until they die too
 * or a reload (SIGHUP) brings a new generation; once none of the serving generation is left
 * and no reload is under way, "master_fatal" names the cause and the master stops and exits
 * 78. A worker of a new generation that exits 78 fails the reload (the running generation
 * stays). Every second — a worker whose heartbeat is older than
 * WORKER_TIMEOUT_SECONDS gets SIGABRT, then SIGKILL, and is replaced.
 */
#ifndef KM_MASTER_H
#define KM_MASTER_H

#include "accounts.h"
#include "err.h"
#include "settings.h"

/* Load a complete new configuration into *cfg and *accounts (on failure nothing to free). */
typedef kmcode kmmaster_load_fn(void *arg, kmcfg *cfg, kmaccounts **accounts, kmerr *err);

struct kmmaster_opts {
    int               socket_only;  /* no TCP listener, whatever REST_PORT says */
    const char       *pid_file;     /* NULL: none */
    kmmaster_load_fn *reload;       /* SIGHUP; NULL: SIGHUP is logged and ignored */
    void             *reload_arg;
};

/* 1 when this configuration opens a TCP listener. */
int kmmaster_tcp_enabled(const kmcfg *cfg, const struct kmmaster_opts *o);

/* Run until stopped. Takes ownership of *cfg's contents and of accounts. */
int kmmaster_run(kmcfg *cfg, kmaccounts *accounts, const struct kmmaster_opts *o);

#endif
