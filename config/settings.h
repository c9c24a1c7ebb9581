/* settings.h — every setting, read from the environment, with defaults and range checks.
 *
 * Owns:    a kmcfg owns its strings and REST tokens; kmcfg_free releases them (and accepts
 *          a zeroed struct).
 * Threads: fill once in main() (after kmenv_load); read-only afterwards.
 * Fails:   KM_CONFIG_ERROR naming the variable, its bad value and the accepted range
 *          (a REST token's value is never echoed).
 *
 * The table in settings.c is the single list of variables: README's settings table
 * documents the same rows.
 */
#ifndef KM_SETTINGS_H
#define KM_SETTINGS_H

#include "err.h"
#include "log.h"
#include "secret.h"

#include <stddef.h>

typedef struct kmcfg {
    char        *klaviyo_base_url;     /* KLAVIYO_BASE_URL */
    char        *klaviyo_revision;     /* KLAVIYO_REVISION */
    int          max_retries;          /* KLAVIYO_MAX_RETRIES */
    int          klaviyo_timeout_s;    /* KLAVIYO_TIMEOUT_SECONDS: one Klaviyo request */
    int          request_deadline_s;   /* REQUEST_DEADLINE_SECONDS: one tool call */
    int          cache_ttl_s;          /* CACHE_TTL_SECONDS; 0 disables the cache */
    int          refresh_ahead_s;      /* CACHE_REFRESH_AHEAD_SECONDS: refresh a kept answer
                                          asked for this close to its expiry; 0 never */
    int          cache_max_mb;         /* CACHE_MAX_MB: store size bound */
    int          stale_grace_s;        /* STALE_GRACE_SECONDS: keep expired entries this long */
    char        *rest_host;            /* REST_HOST */
    int          rest_port;            /* REST_PORT; 0 = no TCP listener */
    char        *accounts_file;        /* ACCOUNTS_FILE, or NULL for the search path */
    kmsecret   **rest_tokens;          /* REST_API_KEY then each REST_API_TOKENS entry */
    size_t       n_rest_tokens;
    int          workers;              /* WORKERS */
    int          worker_timeout_s;     /* WORKER_TIMEOUT_SECONDS: silent worker is replaced */
    int          graceful_timeout_s;   /* GRACEFUL_TIMEOUT_SECONDS: drain on stop and reload */
    int          rest_timeout_s;       /* REST_TIMEOUT_SECONDS: client read/write/idle timeout */
    int          worker_connections;   /* WORKER_CONNECTIONS: open client connections a worker
                                          keeps (before the descriptor limit lowers it) */
    int          service_threads;      /* SERVICE_THREADS per worker, always running */
    int          service_threads_max;  /* SERVICE_THREADS_MAX: more while calls wait */
    int          queue_max;            /* QUEUE_MAX calls may wait for a thread */
    char        *socket_path;          /* KLAVIYO_MCP_SOCKET */
    char        *redis_url;            /* REDIS_URL, or NULL for LMDB */
    char        *store_dir;            /* STORE_DIR */
    kmlog_level  log_level;            /* LOG_LEVEL */
    int          max_body_bytes;       /* REST_MAX_BODY_BYTES */
    int          demo;                 /* KLAVIYO_DEMO: label every answer as demo data */
    char        *mcp_allowed_origins;  /* MCP_ALLOWED_ORIGINS: comma list, or NULL */
    char        *mcp_allowed_hosts;    /* MCP_ALLOWED_HOSTS: comma list, or NULL */
    int          mcp_max_sessions;     /* MCP_MAX_SESSIONS per idle period */
    int          mcp_session_idle_s;   /* MCP_SESSION_IDLE_SECONDS */
} kmcfg;

/* Read every setting from the environment into c (zeroed first). On failure c holds
 * nothing to free. */
kmcode kmcfg_load(kmcfg *c, kmerr *err);
void kmcfg_free(kmcfg *c);

/* One row per variable, for documentation and --help: name, default (as text), meaning. */
struct kmcfg_doc {
    const char *name;
    const char *dflt;
    const char *help;
};
extern const struct kmcfg_doc kmcfg_docs[];

/* The default socket and store paths ($XDG_RUNTIME_DIR, $XDG_CACHE_HOME or ~/.cache);
 * new strings the caller frees. */
char *kmcfg_default_socket(void);
char *kmcfg_default_store_dir(void);

#endif
