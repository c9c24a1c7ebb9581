/* check.c — `klaviyo-mcp-admin check [--api]`: the service's fail-fast validation, and with
 * --api one cheap Klaviyo request per scope the tools need, per account.
 *
 * --api talks to Klaviyo with the service's own client (kl.h) and store (store.h), so its
 * requests take their slots from the same rate-limit windows as the service's; it never reads
 * or writes the response cache (a cached answer would prove nothing about the key now). */
#include "admin.h"
#include "buf.h"
#include "json.h"
#include "kl.h"
#include "store.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scopes the tools need, each with the cheapest request that needs it (REFERENCE.md §4);
 * the first also proves the key itself. */
static const struct {
    const char *scope, *path;
} probes[] = {
    { "accounts:read", "/api/accounts/" },
    { "campaigns:read", "/api/campaigns/?filter=equals%28messages.channel%2C%27email%27%29" },
    { "flows:read", "/api/flows/?page%5Bsize%5D=1" },
    { "lists:read", "/api/lists/" },
    { "metrics:read", "/api/metrics/" },
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin check [--api]\n"
            "\n"
            "Validate the configuration exactly as klaviyo-restd does at start-up: the .env\n"
            "files, every setting and accounts.toml (each account's key variable must be set).\n"
            "Prints what was found; exit 0, or 78 with the problem.\n"
            "\n"
            "  --api   also ask Klaviyo, per account, whether the key works and has the scopes\n"
            "          the tools need (accounts, campaigns, flows, lists, metrics :read): one\n"
            "          cheap request per scope. Prints OK, bad key or the missing scopes per\n"
            "          account; exit 1 when any account is not OK. Keys are never printed.\n");
}

static int
klaviyo_status(const kmerr *e)
{
    json_object *s = kmjson_get(e->details, "klaviyo_status");

    return s ? json_object_get_int(s) : 0;
}

/* One account: 0 when every probe passed. */
static int
check_account(kmkl *kl, const struct kmaccount *a)
{
    kmkl_call call = { 0 };
    kmbuf     missing;
    int       bad = 0;

    kmbuf_init(&missing, 0);
    call.acct = a;
    call.warnings = json_object_new_array();
    call.deadline_ms = km_now_ms() + 120000;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]) && bad >= 0; i++) {
        json_object *doc = NULL;
        kmerr        err = { 0 };
        kmcode       rc = kmkl_get(kl, &call, probes[i].path, &doc, &err);

        json_object_put(doc);
        if (rc == KM_OK) {
            /* fine */
        } else if (rc == KM_INVALID_API_KEY && klaviyo_status(&err) == 403) {
            kmbuf_appendf(&missing, "%s%s", missing.len ? ", " : "", probes[i].scope);
            bad = 1;
        } else if (rc == KM_INVALID_API_KEY) {
            printf("%-20s bad key: Klaviyo refused the key in %s\n", a->name, a->api_key_env);
            bad = -1;
        } else {
            printf("%-20s %s: %s\n", a->name, kmerr_name(rc), err.msg);
            bad = -1;
        }
        kmerr_clear(&err);
    }
    if (bad == 0)
        printf("%-20s OK\n", a->name);
    else if (bad > 0)
        printf("%-20s missing scope: %s (give the key read access to them)\n", a->name,
               missing.data);
    kmbuf_free(&missing);
    json_object_put(call.warnings);
    return bad != 0;
}

static int
check_api(struct kmadm_config *c)
{
    kmstore_opts o = { 0 };
    kmstore     *st = NULL;
    kmkl        *kl = NULL;
    kmerr        err = { 0 };
    int          failed = 0, rc = KMADM_EXIT_OK;

    /* no response cache for a key check; the rate windows are the service's */
    c->cfg.cache_ttl_s = 0;
    o.redis_url = c->cfg.redis_url;
    o.dir = c->cfg.store_dir;
    o.max_bytes = (size_t)c->cfg.cache_max_mb << 20;
    o.stale_grace_s = c->cfg.stale_grace_s;
    if (kmstore_open(&o, &st, &err) != KM_OK || kmkl_new(&c->cfg, st, &kl, &err) != KM_OK) {
        fprintf(stderr, "klaviyo-mcp-admin: %s: %s\n", kmerr_name(err.code), err.msg);
        rc = KMADM_EXIT_FAIL;
        goto out;
    }
    printf("Klaviyo at %s:\n", c->cfg.klaviyo_base_url);
    for (size_t i = 0; i < kmacct_count(c->accounts); i++)
        failed += check_account(kl, kmacct_at(c->accounts, i));
    if (failed)
        rc = KMADM_EXIT_FAIL;
out:
    kmerr_clear(&err);
    kmkl_free(kl);
    kmstore_close(st);
    return rc;
}

int
kmadm_check(int argc, char **argv)
{
    static const struct option opts[] = { { "api", no_argument, NULL, 'a' },
                                           { "help", no_argument, NULL, 'h' },
                                           { NULL, 0, NULL, 0 } };
    struct kmadm_config c;
    kmerr               err = { 0 };
    int                 api = 0, o, rc;

    optind = 1;
    for (o = getopt_long(argc, argv, "h", opts, NULL); o != -1;
         o = getopt_long(argc, argv, "h", opts, NULL)) {
        if (o == 'a') {
            api = 1;
        } else if (o == 'h') {
            usage(stdout);
            return KMADM_EXIT_OK;
        } else {
            usage(stderr);
            return KMADM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "klaviyo-mcp-admin check: unexpected argument '%.40s'\n", argv[optind]);
        return KMADM_EXIT_USAGE;
    }
    if (kmadm_config_load(&c, &err) != KM_OK) {
        fprintf(stderr, "CONFIG_ERROR: %s\n", err.msg);
        kmerr_clear(&err);
        return KM_EXIT_CONFIG;
    }
    printf("configuration OK\n");
    printf("  accounts.toml: %s\n", kmacct_path(c.accounts));
    printf("  accounts:      ");
    for (size_t i = 0; i < kmacct_count(c.accounts); i++)
        printf("%s%s", i ? ", " : "", kmacct_at(c.accounts, i)->name);
    printf("\n  .env read:     %s\n", c.env_files ? c.env_files : "(none)");
    printf("  socket:        %s\n", c.cfg.socket_path);
    if (c.cfg.rest_port)
        printf("  REST:          http://%s:%d (%zu credential%s)\n", c.cfg.rest_host,
               c.cfg.rest_port, c.cfg.n_rest_tokens, c.cfg.n_rest_tokens == 1 ? "" : "s");
    else
        printf("  REST:          off (REST_PORT=0)\n");
    if (c.cfg.rest_port && c.cfg.n_rest_tokens == 0)
        printf("  note: klaviyo-restd with TCP needs REST_API_KEY or REST_API_TOKENS; the MCP "
               "shim's private service does not\n");
    rc = api ? check_api(&c) : KMADM_EXIT_OK;
    kmadm_config_free(&c);
    return rc;
}
