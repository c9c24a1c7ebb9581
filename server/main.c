/* main.c — klaviyo-restd: command line, configuration, then the master.
 *
 * Configuration comes from the process environment, the .env files on the search path and
 * accounts.toml (README, Configuration). On SIGHUP the master calls load_config again: the
 * variables that came from .env files are dropped and the files re-read, so an edited .env
 * (new or revoked REST tokens, new account keys) and an edited accounts.toml take effect in
 * the new generation of workers. Variables of the real environment still win, as at start.
 */
#include "accounts.h"
#include "env.h"
#include "log.h"
#include "master.h"
#include "reg.h"
#include "settings.h"
#include "store.h"
#include "util.h"

#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Names of the non-empty variables of the real environment, as the process started (an empty
 * variable means unset: a .env file may fill it, and a reload forgets that again). */
struct loader {
    char  **names;
    size_t  n;
    int     loaded_once;
};

static void
snapshot_env(struct loader *ld)
{
    size_t n = 0;

    for (char **e = environ; *e; e++)
        n++;
    ld->names = km_xcalloc(n + 1, sizeof(*ld->names));
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || !eq[1])
            continue;
        ld->names[ld->n++] = km_xstrndup(*e, (size_t)(eq - *e));
    }
}

static int
in_snapshot(const struct loader *ld, const char *name, size_t len)
{
    for (size_t i = 0; i < ld->n; i++) {
        if (strlen(ld->names[i]) == len && strncmp(ld->names[i], name, len) == 0)
            return 1;
    }
    return 0;
}

/* Unset every variable a .env file set, so the files can be read afresh. */
static void
forget_env_files(const struct loader *ld)
{
    char  **drop;
    size_t  n = 0, k = 0;

    for (char **e = environ; *e; e++)
        n++;
    drop = km_xcalloc(n + 1, sizeof(*drop));
    for (char **e = environ; *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t      len = eq ? (size_t)(eq - *e) : strlen(*e);
        if (!in_snapshot(ld, *e, len))
            drop[k++] = km_xstrndup(*e, len);
    }
    for (size_t i = 0; i < k; i++) {
        unsetenv(drop[i]);
        free(drop[i]);
    }
    free(drop);
}

static void
free_loader(struct loader *ld)
{
    for (size_t i = 0; i < ld->n; i++)
        free(ld->names[i]);
    free(ld->names);
}

/* kmmaster_load_fn: .env files, settings and accounts. */
static kmcode
load_config(void *arg, kmcfg *cfg, kmaccounts **accounts, kmerr *err)
{
    struct loader *ld = arg;
    char          *loaded = NULL, *path = NULL;
    kmcode         rc;

    memset(cfg, 0, sizeof(*cfg));
    *accounts = NULL;
    if (ld->loaded_once)
        forget_env_files(ld);
    ld->loaded_once = 1;
    rc = kmenv_load(&loaded, err);
    if (rc != KM_OK)
        goto out;
    rc = kmcfg_load(cfg, err);
    if (rc != KM_OK)
        goto out;
    kmlog_set_level(cfg->log_level);
    rc = kmacct_locate(&path, err);
    if (rc == KM_NOT_FOUND) {
        /* no manifest is a configuration error for the service (the message says where) */
        rc = KM_CONFIG_ERROR;
        if (err)
            err->code = rc;
    }
    if (rc != KM_OK)
        goto out;
    rc = kmacct_load(path, accounts, err);
    if (rc != KM_OK)
        goto out;
    if (loaded)
        kmlogf(KMLOG_DEBUG, "env_loaded", "read %s", loaded);
out:
    if (rc != KM_OK) {
        kmcfg_free(cfg);
        kmacct_free(*accounts);
        *accounts = NULL;
    }
    free(loaded);
    free(path);
    return rc;
}

/* Open and close the store once, so an unusable STORE_DIR or REDIS_URL stops the start
 * instead of every worker. Nothing of it crosses the fork. */
static kmcode
probe_store(const kmcfg *cfg, kmerr *err)
{
    kmstore_opts so;
    kmstore     *st = NULL;
    kmcode       rc;

    memset(&so, 0, sizeof(so));
    so.redis_url = cfg->redis_url;
    so.dir = cfg->store_dir;
    so.max_bytes = (size_t)cfg->cache_max_mb * 1024 * 1024;
    so.stale_grace_s = cfg->stale_grace_s;
    rc = kmstore_open(&so, &st, err);
    kmstore_close(st);
    return rc;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-restd [--socket-only] [--pid-file FILE] [--check-config]\n"
            "                     [--version] [--help]\n"
            "\n"
            "Serves the Klaviyo reporting tools over REST: a master process and WORKERS\n"
            "preforked workers on REST_HOST:REST_PORT (bearer tokens) and on the Unix socket\n"
            "KLAVIYO_MCP_SOCKET (mode 0600, no token). Runs in the foreground; logs are JSON\n"
            "lines on stderr.\n"
            "\n"
            "  --socket-only      serve the Unix socket only (no TCP, no REST credential needed)\n"
            "  --pid-file FILE    write the master's pid to FILE (removed on exit)\n"
            "  --check-config     validate the configuration and exit (0, or 78 on an error)\n"
            "  --version          print the version and exit\n"
            "  --help             print this help and exit\n"
            "\n"
            "Signals: TERM/INT drain and exit 0, HUP reloads .env, tokens and accounts.\n"
            "\n"
            "Settings (environment or .env):\n");
    for (const struct kmcfg_doc *d = kmcfg_docs; d->name; d++)
        fprintf(f, "  %-26s %s (default %s)\n", d->name, d->help, d->dflt);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "socket-only", no_argument, NULL, 's' },
        { "pid-file", required_argument, NULL, 'p' },
        { "check-config", no_argument, NULL, 'c' },
        { "version", no_argument, NULL, 'V' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct kmmaster_opts mo;
    struct loader        ld;
    kmcfg                cfg;
    kmaccounts          *accounts = NULL;
    kmerr                err = { 0 };
    int                  check_only = 0, status;
    kmcode               rc;

    memset(&mo, 0, sizeof(mo));
    memset(&ld, 0, sizeof(ld));
    for (;;) {
        int c = getopt_long(argc, argv, "", longopts, NULL);
        if (c == -1)
            break;
        switch (c) {
        case 's':
            mo.socket_only = 1;
            break;
        case 'p':
            mo.pid_file = optarg;
            break;
        case 'c':
            check_only = 1;
            break;
        case 'V':
            printf("klaviyo-restd %s\n", PACKAGE_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 64;  /* EX_USAGE */
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 64;
    }

    snapshot_env(&ld);
    rc = load_config(&ld, &cfg, &accounts, &err);
    if (rc == KM_OK && kmmaster_tcp_enabled(&cfg, &mo) && cfg.n_rest_tokens == 0)
        rc = kmerr_set(&err, KM_CONFIG_ERROR,
                       "no REST credential configured: set REST_API_KEY or REST_API_TOKENS "
                       "(or serve the Unix socket only: --socket-only or REST_PORT=0)");
    if (rc == KM_OK)
        rc = probe_store(&cfg, &err);
    if (rc != KM_OK) {
        kmlogf(KMLOG_ERROR, "config_error", "%s: %s", kmerr_name(rc), err.msg);
        status = rc == KM_CONFIG_ERROR ? KM_EXIT_CONFIG : 1;
        goto out;
    }
    if (check_only) {
        kmlogf(KMLOG_INFO, "config_ok", "configuration is valid: %zu account(s), %zu REST "
               "credential(s), %d worker(s)", kmacct_count(accounts), cfg.n_rest_tokens,
               cfg.workers);
        status = 0;
        goto out;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    kmreg_init();
    mo.reload = load_config;
    mo.reload_arg = &ld;
    status = kmmaster_run(&cfg, accounts, &mo);   /* owns cfg and accounts from here */
    accounts = NULL;
    kmreg_free();
    curl_global_cleanup();
out:
    kmcfg_free(&cfg);
    kmacct_free(accounts);
    kmerr_clear(&err);
    free_loader(&ld);
    return status;
}
