/* spawn.h — the service the shim talks to: a shared klaviyo-restd already listening on the
 * configured socket, or a private one started here (socket only, one worker) and stopped with
 * the shim.
 *
 * Owns:    a kmmcp_svc owns its manager thread, its private child process (when it started
 *          one) and the private socket directory (when the configured socket was unusable);
 *          kmmcp_svc_stop stops and reaps the child and removes that directory, kmmcp_svc_free
 *          releases the rest. A shared service is never stopped.
 * Threads: the child is forked by the manager thread, which lives until kmmcp_svc_stop, so
 *          PR_SET_PDEATHSIG (tied to the thread that forked) fires only when the shim itself
 *          dies. kmmcp_svc_get, kmmcp_svc_lost and kmmcp_svc_reap may be called from any
 *          thread. The manager waits for its child only while it checks (state CHECKING);
 *          kmmcp_svc_reap only while a check is not running (READY), so never both.
 * Fork:    between fork and exec the child only resets its signal mask and dispositions, asks
 *          for SIGTERM on the shim's death, moves to its own process group, points stdin at
 *          /dev/null and stdout at stderr (the shim's stdout is the protocol channel), closes
 *          every other descriptor and execs — nothing that is unsafe after fork.
 * Fails:   kmmcp_svc_get returns KM_SERVICE_UNAVAILABLE (no binary, no answer in time, or no
 *          shared service when starting one is not allowed) or KM_CONFIG_ERROR (the service
 *          exited 78), with a message for a person.
 *
 * The check runs in the background from kmmcp_svc_start on, so a service is usually up by the
 * time the client lists tools; kmmcp_svc_get waits for it. A check first asks GET /health on
 * the configured socket (a shared service); if nothing answers it starts
 * `klaviyo-restd --socket-only` with WORKERS=1 and REST_PORT=0, on the configured socket when
 * that path is usable, else on a private one in a new 0700 directory, and waits (bounded) for
 * GET /health to answer.
 */
#ifndef KM_MCP_SPAWN_H
#define KM_MCP_SPAWN_H

#include "err.h"

#include <stddef.h>
#include <sys/types.h>

struct kmmcp_svc_opts {
    const char *socket_path;   /* the configured KLAVIYO_MCP_SOCKET */
    const char *restd;         /* KLAVIYO_RESTD, or NULL: next to this program, then PATH */
    int         start_ms;      /* how long a started service may take to answer /health */
    int         grace_ms;      /* SIGTERM, then SIGKILL after this long */
    int         spawn;         /* 0: only use a shared service, never start one */
    const char *log_level;     /* NULL, or LOG_LEVEL for a private service when the
                                  environment sets none */
};

typedef struct kmmcp_svc kmmcp_svc;

/* Start the manager (it checks for a service at once). Copies the options. */
kmmcp_svc *kmmcp_svc_start(const struct kmmcp_svc_opts *o);

/* Wait until a service answers and copy its socket path into sock (cap bytes). *gen names
 * this service for kmmcp_svc_lost. A failed check is retried by the next kmmcp_svc_get. */
kmcode kmmcp_svc_get(kmmcp_svc *s, char *sock, size_t cap, unsigned *gen, kmerr *err);

/* A connection to service `gen` was refused: check again (a private service that died is
 * started anew). Later kmmcp_svc_get calls wait for that check. */
void kmmcp_svc_lost(kmmcp_svc *s, unsigned gen);

/* The shim got SIGCHLD: when the private service is up and has exited, reap it at once and
 * forget it (the next kmmcp_svc_get starts a new one). Returns its pid and a sentence for the
 * calls it cut in `why` when it had died, else 0. What is left of its process group (its
 * workers) still runs: the caller answers the calls first, then kmmcp_svc_kill_group, so a call
 * never sees its connection close before it knows why. Call from any thread; never waits. */
pid_t kmmcp_svc_reap(kmmcp_svc *s, char *why, size_t cap);

/* SIGKILL the process group of a reaped private service (its orphaned workers). */
void kmmcp_svc_kill_group(pid_t pid);

/* The private child's pid, or 0 when none runs (a shared service, or none yet). */
pid_t kmmcp_svc_child(kmmcp_svc *s);

/* Stop the private child (if any) and join the manager: from then on kmmcp_svc_get fails at
 * once. Safe to call twice. NULL ok. */
void kmmcp_svc_stop(kmmcp_svc *s);

/* Free a stopped kmmcp_svc (stopping it first if needed). NULL ok. */
void kmmcp_svc_free(kmmcp_svc *s);

/* The klaviyo-restd to start: `override` when given (it must be executable), else the one
 * next to the running program (/proc/self/exe), else the first on $PATH. A new string, or
 * NULL with err set. */
char *kmmcp_find_restd(const char *override, kmerr *err);

/* 1 when a service could create its socket at `path`: the path is absent or a socket, and its
 * directory exists (or can be created, mode 0700) and is writable. */
int kmmcp_socket_usable(const char *path);

#endif
