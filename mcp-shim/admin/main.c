/* main.c — klaviyo-mcp-admin: dispatch to the subcommands, shared configuration loading. */
#include "admin.h"
#include "env.h"
#include "json.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0"
#endif

kmcode
kmadm_config_load(struct kmadm_config *c, kmerr *err)
{
    char  *path = NULL;
    kmcode rc;

    memset(c, 0, sizeof(*c));
    rc = kmenv_load(&c->env_files, err);
    if (rc == KM_OK)
        rc = kmcfg_load(&c->cfg, err);
    if (rc == KM_OK) {
        rc = kmacct_locate(&path, err);
        if (rc == KM_OK)
            rc = kmacct_load(path, &c->accounts, err);
        if (rc != KM_OK)
            kmcfg_free(&c->cfg);
    }
    free(path);
    if (rc != KM_OK) {
        free(c->env_files);
        memset(c, 0, sizeof(*c));
        if (err)
            err->code = KM_CONFIG_ERROR;    /* "no accounts.toml found" too */
        return KM_CONFIG_ERROR;
    }
    return KM_OK;
}

void
kmadm_config_free(struct kmadm_config *c)
{
    kmcfg_free(&c->cfg);
    kmacct_free(c->accounts);
    free(c->env_files);
    memset(c, 0, sizeof(*c));
}

void
kmadm_print_error(json_object *envelope)
{
    json_object *e = kmjson_get(envelope, "error");
    json_object *details = kmjson_get(e, "details");

    fprintf(stderr, "%s: %s\n", kmjson_str(e, "code") ? kmjson_str(e, "code") : "ERROR",
            kmjson_str(e, "message") ? kmjson_str(e, "message") : "(no message)");
    if (kmjson_get(e, "retry_after_s"))
        fprintf(stderr, "retry after: %s s\n", kmjson_text(kmjson_get(e, "retry_after_s")));
    if (details)
        fprintf(stderr, "details: %s\n", kmjson_text(details));
}

int
kmadm_exit_for(kmcode rc)
{
    switch (rc) {
    case KM_OK:
        return KMADM_EXIT_OK;
    case KM_CANCELLED:
        return KMADM_EXIT_INTERRUPTED;
    case KM_CONFIG_ERROR:
        return KM_EXIT_CONFIG;
    case KM_SERVICE_UNAVAILABLE:
        return KMADM_EXIT_UNAVAILABLE;
    default:
        return KMADM_EXIT_FAIL;
    }
}

int
kmadm_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin COMMAND [OPTIONS]\n"
            "\n"
            "Set up, check and use klaviyo-mcp from a terminal.\n"
            "\n"
            "  init     scaffold .env and accounts.toml, validate, print the MCP entries\n"
            "  check    validate the configuration; --api also asks Klaviyo about each key\n"
            "  smoke    live checks against Klaviyo: PASS / WARN / FAIL per check\n"
            "  call     run any tool: call TOOL [key=value ...] [--format table|csv|json]\n"
            "  budget   report calls used and left today, next free slot per tier\n"
            "\n"
            "klaviyo-mcp-admin COMMAND --help describes each. Exit status: 0 success, 1 a\n"
            "check or call failed, 2 usage, 69 no service, 78 configuration error, 130\n"
            "interrupted. See klaviyo-mcp-admin(1).\n");
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        { "init", kmadm_init },   { "check", kmadm_check },   { "smoke", kmadm_smoke },
        { "call", kmadm_call },   { "budget", kmadm_budget },
    };
    kmlog_level lvl = KMLOG_ERROR;
    int         rc = -1;

    if (argc < 2) {
        usage(stderr);
        return KMADM_EXIT_USAGE;
    }
    if (kmadm_is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("klaviyo-mcp-admin %s\n", PACKAGE_VERSION);
        return 0;
    }
    /* logs (JSON lines on stderr) only when asked for: the answers are the output here */
    if (getenv("LOG_LEVEL") && kmlog_parse_level(getenv("LOG_LEVEL"), &lvl) != 0)
        lvl = KMLOG_ERROR;
    kmlog_set_level(lvl);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "klaviyo-mcp-admin: curl_global_init failed\n");
        return 1;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0) {
            rc = cmds[i].fn(argc - 1, argv + 1);
            break;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "klaviyo-mcp-admin: unknown command '%.40s'\n", argv[1]);
        usage(stderr);
        rc = KMADM_EXIT_USAGE;
    }
    curl_global_cleanup();
    return rc;
}
