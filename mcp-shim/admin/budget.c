/* budget.c — `klaviyo-mcp-admin budget [--format table|csv|json]`: per account, the report
 * calls used and left today and the next free slot per rate-limit tier, from the service's
 * klaviyo_get_budget tool (which reads the shared store: it makes no Klaviyo request). */
#include "admin.h"
#include "conn.h"
#include "format.h"
#include "json.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUDGET_TOOL "klaviyo_get_budget"

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin budget [--account NAME] [--format table|csv|json]\n"
            "\n"
            "Per account: report calls used and left today (Klaviyo allows 225 a day), the\n"
            "daily cap, and seconds until the next free slot of each rate-limit tier, as the\n"
            "service's shared store has them. Makes no Klaviyo request.\n"
            "\n"
            "  --account NAME   only this account\n"
            "  --format F       table (default), csv or json (the service's envelope;\n"
            "                   with --account, that account's row)\n");
}

/* One row per account: the counts, then next_free_slot_s.<tier> columns. */
static json_object *
budget_rows(json_object *data, const char *only)
{
    json_object *accounts = kmjson_get(data, "accounts"), *rows = json_object_new_array();
    static const char *const keys[] = { "account", "report_calls_used_today",
                                        "report_calls_left_today", "daily_report_cap" };

    for (size_t i = 0; i < json_object_array_length(accounts); i++) {
        json_object *a = json_object_array_get_idx(accounts, i), *row = json_object_new_object();
        json_object *tiers = kmjson_get(a, "tiers");

        if (only && (!kmjson_str(a, "account") || strcmp(kmjson_str(a, "account"), only) != 0)) {
            json_object_put(row);
            continue;
        }
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            json_object_object_add(row, keys[k], json_object_get(kmjson_get(a, keys[k])));
        for (size_t k = 0; k < json_object_array_length(tiers); k++) {
            json_object *tier = json_object_array_get_idx(tiers, k);
            char        *col = km_xasprintf("next_free_slot_s.%s",
                                            kmjson_str(tier, "tier") ? kmjson_str(tier, "tier")
                                                                     : "?");
            json_object_object_add(row, col,
                                   json_object_get(kmjson_get(tier, "next_free_slot_s")));
            free(col);
        }
        json_object_array_add(rows, row);
    }
    return rows;
}

int
kmadm_budget(int argc, char **argv)
{
    static const struct option opts[] = { { "format", required_argument, NULL, 'f' },
                                           { "account", required_argument, NULL, 'a' },
                                           { "help", no_argument, NULL, 'h' },
                                           { NULL, 0, NULL, 0 } };
    struct kmadm_config c;
    kmadm_format        fmt = KMADM_TABLE;
    kmadm_conn         *conn;
    json_object        *args, *env = NULL, *view;
    const char         *account = NULL;
    kmerr               err = { 0 };
    kmbuf               out;
    int                 o, status = 0, rc = KMADM_EXIT_OK;
    kmcode              code;

    optind = 1;
    for (o = getopt_long(argc, argv, "hf:a:", opts, NULL); o != -1;
         o = getopt_long(argc, argv, "hf:a:", opts, NULL)) {
        if (o == 'f' && kmadm_format_parse(optarg, &fmt) == 0) {
            continue;
        } else if (o == 'f') {
            fprintf(stderr, "klaviyo-mcp-admin budget: --format must be table, csv or json\n");
            return KMADM_EXIT_USAGE;
        } else if (o == 'a') {
            account = optarg;
        } else if (o == 'h') {
            usage(stdout);
            return KMADM_EXIT_OK;
        } else {
            usage(stderr);
            return KMADM_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "klaviyo-mcp-admin budget: unexpected argument '%.40s'\n", argv[optind]);
        return KMADM_EXIT_USAGE;
    }
    if (kmadm_config_load(&c, &err) != KM_OK) {
        fprintf(stderr, "CONFIG_ERROR: %s\n", err.msg);
        kmerr_clear(&err);
        return KM_EXIT_CONFIG;
    }
    kmbuf_init(&out, 0);
    args = json_object_new_object();   /* every account; --account filters the answer */
    conn = kmadm_conn_open(c.cfg.socket_path, (c.cfg.request_deadline_s + 30) * 1000L, 0);
    code = kmadm_conn_call(conn, BUDGET_TOOL, args, &status, &env, &err);
    if (code != KM_OK) {
        fprintf(stderr, "klaviyo-mcp-admin: %s: %s\n", kmerr_name(code), err.msg);
        rc = kmadm_exit_for(code);
    } else if (kmjson_get(env, "error")) {
        kmadm_print_error(env);
        if (kmjson_str(kmjson_get(env, "error"), "code") &&
            strcmp(kmjson_str(kmjson_get(env, "error"), "code"), "UNKNOWN_TOOL") == 0)
            fprintf(stderr, "klaviyo-mcp-admin: this klaviyo-restd has no %s tool; budget needs "
                    "a newer klaviyo-restd\n", BUDGET_TOOL);
        rc = KMADM_EXIT_FAIL;
    } else if (fmt == KMADM_JSON && !account) {
        kmadm_render(env, fmt, &out);
    } else {
        /* the per-tier array becomes columns: one line per account */
        view = json_object_new_object();
        json_object_object_add(view, "data", json_object_new_object());
        json_object_object_add(json_object_object_get(view, "data"), "accounts",
                               budget_rows(kmjson_get(env, "data"), account));
        json_object_object_add(view, "warnings", json_object_get(kmjson_get(env, "warnings")));
        kmadm_render(view, fmt, &out);
        json_object_put(view);
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = KMADM_EXIT_FAIL;
    kmadm_conn_close(conn);
    json_object_put(args);
    json_object_put(env);
    kmbuf_free(&out);
    kmerr_clear(&err);
    kmadm_config_free(&c);
    return rc;
}
