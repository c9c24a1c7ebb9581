/* settings.c — the settings table and its loader. */
#include "settings.h"
#include "env.h"
#include "dates.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>
#include <unistd.h>

const struct kmcfg_doc kmcfg_docs[] = {
    { "KLAVIYO_BASE_URL", "https://a.klaviyo.com", "Klaviyo API base URL (http:// only for loopback hosts)" },
    { "KLAVIYO_REVISION", "2025-04-15", "Klaviyo API revision header sent on every request" },
    { "KLAVIYO_MAX_RETRIES", "3", "retries for 429, 5xx and timeouts (0-10)" },
    { "KLAVIYO_TIMEOUT_SECONDS", "30", "total time for one Klaviyo request (1-300)" },
    { "REQUEST_DEADLINE_SECONDS", "600", "longest a tool call may take, planned before the first call (1-3600)" },
    { "CACHE_TTL_SECONDS", "300", "response cache time-to-live; 0 disables caching (0-86400)" },
    { "CACHE_REFRESH_AHEAD_SECONDS", "30", "a kept answer asked for this close to its expiry is computed again in the background; 0 never (0-3600)" },
    { "CACHE_MAX_MB", "256", "size bound of the shared store (16-65536)" },
    { "STALE_GRACE_SECONDS", "86400", "how long an expired answer is kept to serve when Klaviyo fails (0-604800)" },
    { "REST_HOST", "127.0.0.1", "interface the REST listener binds" },
    { "REST_PORT", "8080", "REST listener port; 0 disables TCP (socket only)" },
    { "REST_API_KEY", "(none)", "a REST credential (Bearer or X-API-Key)" },
    { "REST_API_TOKENS", "(none)", "comma-separated REST credentials, one per client" },
    { "ACCOUNTS_FILE", "(search path)", "explicit path to accounts.toml" },
    { "WORKERS", "(CPU count)", "klaviyo-restd worker processes (1-64)" },
    { "SERVICE_THREADS", "4", "threads per worker that run tool calls (1-64)" },
    { "SERVICE_THREADS_MAX", "64", "threads a worker may add while calls wait on Klaviyo (SERVICE_THREADS-256)" },
    { "QUEUE_MAX", "256", "calls a worker lets wait for a thread; past it 503 with Retry-After (1-65536)" },
    { "WORKER_TIMEOUT_SECONDS", "30", "a worker whose heartbeat is this old is killed and replaced (2-3600)" },
    { "GRACEFUL_TIMEOUT_SECONDS", "30", "on stop or reload, how long requests in flight may take to finish (0-3600)" },
    { "REST_TIMEOUT_SECONDS", "30", "how long a client may take to send a request, read a reply or stay idle (1-3600)" },
    { "WORKER_CONNECTIONS", "1024", "client connections one worker keeps open; lowered to fit the descriptor limit (1-1000000)" },
    { "KLAVIYO_MCP_SOCKET", "$XDG_RUNTIME_DIR/klaviyo-mcp.sock", "Unix socket shared by klaviyo-restd and klaviyo-mcp" },
    { "REDIS_URL", "(none: LMDB)", "redis://[:password@]host[:port][/db] to share the store across hosts" },
    { "STORE_DIR", "~/.cache/klaviyo-mcp", "directory of the LMDB store" },
    { "LOG_LEVEL", "info", "debug, info, warning or error" },
    { "REST_MAX_BODY_BYTES", "65536", "largest accepted request body (1024-10485760)" },
    { "KLAVIYO_DEMO", "0", "1 marks every answer as demo data (set by the demo runner)" },
    { "MCP_ALLOWED_ORIGINS", "(none: loopback only)", "comma-separated Origins /mcp accepts besides http(s)://localhost, 127.0.0.1 and [::1]" },
    { "MCP_ALLOWED_HOSTS", "(none: loopback only)", "comma-separated Host names /mcp accepts besides localhost, 127.0.0.1 and [::1]" },
    { "MCP_MAX_SESSIONS", "256", "MCP sessions (2025 revisions) created per idle period, all workers together (1-100000)" },
    { "MCP_SESSION_IDLE_SECONDS", "1800", "an MCP session unused this long ends (10-86400)" },
    { NULL, NULL, NULL },
};

static const char *
env(const char *name)
{
    const char *v = kmenv_get(name);

    return v && *v ? v : NULL;
}

static kmcode
int_setting(const char *name, int dflt, int lo, int hi, int *out, kmerr *err)
{
    const char *v = env(name);
    char       *end;
    long        n;

    if (!v) {
        *out = dflt;
        return KM_OK;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end != '\0' || n < lo || n > hi)
        return kmerr_set(err, KM_CONFIG_ERROR, "%s=%.40s is invalid: expected an integer from %d to %d",
                         name, v, lo, hi);
    *out = (int)n;
    return KM_OK;
}

static char *
str_setting(const char *name, const char *dflt)
{
    const char *v = env(name);

    return v ? km_xstrdup(v) : dflt ? km_xstrdup(dflt) : NULL;
}

static char *
home_path(const char *xdg_var, const char *fallback, const char *leaf)
{
    const char *x = kmenv_get(xdg_var);
    const char *home = kmenv_get("HOME");

    if (x && x[0] == '/')
        return km_xasprintf("%s/%s", x, leaf);
    if (home && *home)
        return km_xasprintf("%s/%s/%s", home, fallback, leaf);
    return km_xasprintf("/tmp/klaviyo-mcp-%ld/%s", (long)getuid(), leaf);
}

char *
kmcfg_default_socket(void)
{
    const char *run = kmenv_get("XDG_RUNTIME_DIR");

    if (run && run[0] == '/')
        return km_xasprintf("%s/klaviyo-mcp.sock", run);
    return home_path("XDG_CACHE_HOME", ".cache", "klaviyo-mcp/klaviyo-mcp.sock");
}

char *
kmcfg_default_store_dir(void)
{
    return home_path("XDG_CACHE_HOME", ".cache", "klaviyo-mcp");
}

/* 1 when host[0..len) is this machine: localhost, [::1] or an IPv4 address in 127/8. */
static int
is_loopback(const char *host, size_t len)
{
    char           ip[16];
    struct in_addr a;

    if ((len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
        (len == 5 && strncmp(host, "[::1]", 5) == 0))
        return 1;
    if (len >= sizeof(ip))
        return 0;
    memcpy(ip, host, len);
    ip[len] = '\0';
    return inet_pton(AF_INET, ip, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

static kmcode
check_url(const char *name, const char *url, kmerr *err)
{
    const char *host, *end, *auth_end;
    int         plain;

    if (strncmp(url, "https://", 8) == 0) {
        host = url + 8;
        plain = 0;
    } else if (strncmp(url, "http://", 7) == 0) {
        host = url + 7;
        plain = 1;
    } else {
        return kmerr_set(err, KM_CONFIG_ERROR, "%s=%.80s is not an http(s):// URL", name,
                         strchr(url, '@') ? "(not shown: it holds '@')" : url);
    }
    /* the authority is [userinfo@]host[:port]; the host is what decides loopback, so
     * "http://127.0.0.1@evil.example" or "http://127.evil.example" must not pass */
    auth_end = host + strcspn(host, "/?#");
    if (memchr(host, '@', (size_t)(auth_end - host)))
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "%s: credentials in the URL (user@host) are not allowed", name);
    if (*host == '[') {
        end = memchr(host, ']', (size_t)(auth_end - host));
        end = end ? end + 1 : host;
    } else {
        end = host + strcspn(host, ":/?#");
    }
    if (end == host || (end < auth_end && *end != ':'))
        return kmerr_set(err, KM_CONFIG_ERROR, "%s=%.80s has no valid host", name, url);
    if (*end == ':' && (end + 1 == auth_end || strspn(end + 1, "0123456789") !=
                                                   (size_t)(auth_end - end - 1)))
        return kmerr_set(err, KM_CONFIG_ERROR, "%s=%.80s has an invalid port", name, url);
    /* plain HTTP only to this machine (the simulator, a local proxy) */
    if (plain && !is_loopback(host, (size_t)(end - host)))
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "%s: http:// is only allowed for loopback hosts; use https://", name);
    return KM_OK;
}

/* s without leading and trailing blanks: *len bytes from the returned pointer. */
static const char *
trim(const char *s, size_t *len)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}

/* A registered secret from the n bytes at p; the temporary copy is wiped. */
static kmsecret *
secret_from(const char *p, size_t n)
{
    char     *copy = km_xstrndup(p, n);
    kmsecret *s = kmsecret_new(copy);

    memset(copy, 0, n);
    free(copy);
    return s;
}

static kmcode
load_tokens(kmcfg *c, kmerr *err)
{
    const char *key = env("REST_API_KEY");
    const char *list = env("REST_API_TOKENS");
    size_t      cap = 1;

    if (list)
        for (const char *p = list; *p; p++)
            cap += *p == ',';
    cap += 1;
    c->rest_tokens = km_xcalloc(cap, sizeof(*c->rest_tokens));
    if (key) {
        /* trimmed like each REST_API_TOKENS entry: HTTP header values lose their blanks */
        size_t      n;
        const char *k = trim(key, &n);
        if (n == 0)
            return kmerr_set(err, KM_CONFIG_ERROR, "REST_API_KEY is set but blank");
        c->rest_tokens[c->n_rest_tokens++] = secret_from(k, n);
    }
    if (list) {
        char *copy = km_xstrdup(list), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            size_t      n;
            const char *tok = trim(t, &n);
            if (n)
                c->rest_tokens[c->n_rest_tokens++] = secret_from(tok, n);
        }
        memset(copy, 0, strlen(list));
        free(copy);
        if (c->n_rest_tokens == (key ? 1u : 0u))
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "REST_API_TOKENS is set but holds no token (comma-separated list)");
    }
    return KM_OK;
}

/* The integer settings: name, default (-1: the CPU count), range, field. */
static const struct {
    const char *name;
    int         dflt, lo, hi;
    size_t      off;
} ints[] = {
    { "KLAVIYO_MAX_RETRIES", 3, 0, 10, offsetof(kmcfg, max_retries) },
    { "KLAVIYO_TIMEOUT_SECONDS", 30, 1, 300, offsetof(kmcfg, klaviyo_timeout_s) },
    { "REQUEST_DEADLINE_SECONDS", 600, 1, 3600, offsetof(kmcfg, request_deadline_s) },
    { "CACHE_TTL_SECONDS", 300, 0, 86400, offsetof(kmcfg, cache_ttl_s) },
    { "CACHE_REFRESH_AHEAD_SECONDS", 30, 0, 3600, offsetof(kmcfg, refresh_ahead_s) },
    { "CACHE_MAX_MB", 256, 16, 65536, offsetof(kmcfg, cache_max_mb) },
    { "STALE_GRACE_SECONDS", 86400, 0, 604800, offsetof(kmcfg, stale_grace_s) },
    { "REST_PORT", 8080, 0, 65535, offsetof(kmcfg, rest_port) },
    { "WORKERS", -1, 1, 64, offsetof(kmcfg, workers) },
    { "SERVICE_THREADS", 4, 1, 64, offsetof(kmcfg, service_threads) },
    { "SERVICE_THREADS_MAX", 64, 1, 256, offsetof(kmcfg, service_threads_max) },
    { "QUEUE_MAX", 256, 1, 65536, offsetof(kmcfg, queue_max) },
    { "WORKER_TIMEOUT_SECONDS", 30, 2, 3600, offsetof(kmcfg, worker_timeout_s) },
    { "GRACEFUL_TIMEOUT_SECONDS", 30, 0, 3600, offsetof(kmcfg, graceful_timeout_s) },
    { "REST_TIMEOUT_SECONDS", 30, 1, 3600, offsetof(kmcfg, rest_timeout_s) },
    { "WORKER_CONNECTIONS", 1024, 1, 1000000, offsetof(kmcfg, worker_connections) },
    { "REST_MAX_BODY_BYTES", 65536, 1024, 10485760, offsetof(kmcfg, max_body_bytes) },
    { "KLAVIYO_DEMO", 0, 0, 1, offsetof(kmcfg, demo) },
    { "MCP_MAX_SESSIONS", 256, 1, 100000, offsetof(kmcfg, mcp_max_sessions) },
    { "MCP_SESSION_IDLE_SECONDS", 1800, 10, 86400, offsetof(kmcfg, mcp_session_idle_s) },
};

kmcode
kmcfg_load(kmcfg *c, kmerr *err)
{
    kmcode      rc;
    const char *v;
    long        ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    memset(c, 0, sizeof(*c));
    c->klaviyo_base_url = str_setting("KLAVIYO_BASE_URL", "https://a.klaviyo.com");
    rc = check_url("KLAVIYO_BASE_URL", c->klaviyo_base_url, err);
    if (rc != KM_OK)
        goto out;
    /* no trailing slash: paths are appended as "/api/..." */
    for (size_t n = strlen(c->klaviyo_base_url); n > 0 && c->klaviyo_base_url[n - 1] == '/';)
        c->klaviyo_base_url[--n] = '\0';

    c->klaviyo_revision = str_setting("KLAVIYO_REVISION", "2025-04-15");
    {
        const char *r = c->klaviyo_revision;
        char        date[11];
        kmday       day;
        int         ok = strlen(r) >= 10;
        /* a revision is a real calendar date, optionally suffixed */
        km_strlcpy(date, r, sizeof(date));
        ok = ok && kmdate_parse(date, &day) == 0;
        /* Klaviyo also has suffixed revisions such as 2025-04-15.pre */
        if (ok && r[10] && (r[10] != '.' || strlen(r) > 20))
            ok = 0;
        if (!ok) {
            rc = kmerr_set(err, KM_CONFIG_ERROR,
                           "KLAVIYO_REVISION=%.30s is invalid: expected a date like 2025-04-15",
                           r);
            goto out;
        }
    }
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        int dflt = ints[i].dflt;
        if (dflt < 0)  /* the CPU count */
            dflt = ncpu > 0 && ncpu <= 64 ? (int)ncpu : 2;
        rc = int_setting(ints[i].name, dflt, ints[i].lo, ints[i].hi,
                         (int *)((char *)c + ints[i].off), err);
        if (rc != KM_OK)
            goto out;
    }
    if (c->service_threads_max < c->service_threads) {
        rc = kmerr_set(err, KM_CONFIG_ERROR, "SERVICE_THREADS_MAX (%d) must be at least "
                       "SERVICE_THREADS (%d)", c->service_threads_max, c->service_threads);
        goto out;
    }

    c->rest_host = str_setting("REST_HOST", "127.0.0.1");
    c->accounts_file = str_setting("ACCOUNTS_FILE", NULL);
    c->socket_path = env("KLAVIYO_MCP_SOCKET") ? km_xstrdup(env("KLAVIYO_MCP_SOCKET"))
                                               : kmcfg_default_socket();
    if (strlen(c->socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        rc = kmerr_set(err, KM_CONFIG_ERROR,
                       "KLAVIYO_MCP_SOCKET: the path is %zu bytes; a Unix socket path must be "
                       "under %zu",
                       strlen(c->socket_path), sizeof(((struct sockaddr_un *)0)->sun_path));
        goto out;
    }
    c->mcp_allowed_origins = str_setting("MCP_ALLOWED_ORIGINS", NULL);
    c->mcp_allowed_hosts = str_setting("MCP_ALLOWED_HOSTS", NULL);
    c->redis_url = str_setting("REDIS_URL", NULL);
    if (c->redis_url && strncmp(c->redis_url, "redis://", 8) != 0) {
        rc = kmerr_set(err, KM_CONFIG_ERROR,
                       "REDIS_URL must look like redis://[:password@]host[:port][/db]");
        goto out;
    }
    c->store_dir = env("STORE_DIR") ? km_xstrdup(env("STORE_DIR")) : kmcfg_default_store_dir();

    c->log_level = KMLOG_INFO;
    v = env("LOG_LEVEL");
    if (v && kmlog_parse_level(v, &c->log_level) != 0) {
        rc = kmerr_set(err, KM_CONFIG_ERROR,
                       "LOG_LEVEL=%.20s is invalid: expected debug, info, warning or error", v);
        goto out;
    }
    rc = load_tokens(c, err);
out:
    if (rc != KM_OK)
        kmcfg_free(c);
    return rc;
}

void
kmcfg_free(kmcfg *c)
{
    if (!c)
        return;
    free(c->klaviyo_base_url);
    free(c->klaviyo_revision);
    free(c->rest_host);
    free(c->accounts_file);
    for (size_t i = 0; i < c->n_rest_tokens; i++)
        kmsecret_free(c->rest_tokens[i]);
    free(c->rest_tokens);
    free(c->socket_path);
    free(c->redis_url);
    free(c->mcp_allowed_origins);
    free(c->mcp_allowed_hosts);
    free(c->store_dir);
    memset(c, 0, sizeof(*c));
}
