/* admin.h — klaviyo-mcp-admin: set-up, checks, smoke test, ad-hoc tool calls and the report
 * budget from a terminal. One function per subcommand; main.c dispatches.
 *
 * Owns:    a kmadm_config owns its settings and accounts (kmadm_config_free).
 * Threads: subcommands run on the main thread; conn.h adds a signal thread and spawn.h a
 *          manager thread for the service.
 * Fails:   every subcommand returns the program's exit status: KMADM_EXIT_* below, or
 *          KM_EXIT_CONFIG (78) for a configuration error. Messages go to stderr; only
 *          answers (tables, CSV, JSON, check and smoke reports) go to stdout. No key or REST
 *          token is ever printed.
 */
#ifndef KM_ADMIN_H
#define KM_ADMIN_H

#include "accounts.h"
#include "err.h"
#include "settings.h"

#include <json-c/json.h>

#define KMADM_EXIT_OK          0
#define KMADM_EXIT_FAIL        1     /* a check failed, or the tool answered an error */
#define KMADM_EXIT_USAGE       2
#define KMADM_EXIT_UNAVAILABLE 69    /* no service could be reached or started (EX_UNAVAILABLE) */
#define KMADM_EXIT_INTERRUPTED 130   /* Ctrl-C */

struct kmadm_config {
    kmcfg       cfg;
    kmaccounts *accounts;
    char       *env_files;   /* the .env files read, comma-separated, or NULL */
};

/* The service's configuration, loaded as klaviyo-restd loads it (.env search path, settings,
 * accounts.toml): KM_OK, or KM_CONFIG_ERROR with the message (and nothing to free). */
kmcode kmadm_config_load(struct kmadm_config *c, kmerr *err);
void kmadm_config_free(struct kmadm_config *c);

/* Print "CODE: message" (and the details, when any) of an error envelope on stderr. */
void kmadm_print_error(json_object *envelope);

/* The exit status for a failure code from conn.h. */
int kmadm_exit_for(kmcode rc);

/* 1 when `arg` is -h or --help. */
int kmadm_is_help(const char *arg);

int kmadm_init(int argc, char **argv);     /* init.c */
int kmadm_check(int argc, char **argv);    /* check.c */
int kmadm_smoke(int argc, char **argv);    /* smoke.c */
int kmadm_call(int argc, char **argv);     /* call.c */
int kmadm_budget(int argc, char **argv);   /* budget.c */

#endif
