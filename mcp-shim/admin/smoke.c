/* smoke.c — `klaviyo-mcp-admin smoke [--account NAME]`: the earlier implementation's live
 * checks through the service: the account listing, campaign performance over the last 30
 * days, the flow listing, the structure of the first flow listed, and a weekly flow series
 * over the last 90 days. PASS / WARN / FAIL per check; exit 1 when any check failed.
 *
 * A key without a scope a check needs is a WARN (the seed's rule for the flow checks): the
 * account works for what its key allows. Every other error is a FAIL. */
#include "admin.h"
#include "conn.h"
#include "json.h"
#include "util.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum verdict { PASS, WARN, FAIL };

struct tally {
    int n[3];
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin smoke [--account NAME]\n"
            "\n"
            "Live checks against Klaviyo through klaviyo-restd (the one on\n"
            "KLAVIYO_MCP_SOCKET, else a private one): accounts, campaign performance (last 30\n"
            "days), flows, the structure of the first flow, a weekly flow series (last 90\n"
            "days). Prints PASS, WARN or FAIL per check. A key lacking a scope a check needs\n"
            "is a WARN. They make a handful of Klaviyo requests, two of them report requests\n"
            "(the reports allow 2 a minute and 225 a day per account).\n"
            "\n"
            "  --account NAME  the account to check (default: the first in accounts.toml)\n"
            "\n"
            "Exit 0 when nothing failed, 1 when a check failed, 69 no service, 78\n"
            "configuration error, 130 interrupted.\n");
}

static void
report(struct tally *t, enum verdict v, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
report(struct tally *t, enum verdict v, const char *check, const char *fmt, ...)
{
    static const char *const names[] = { "PASS", "WARN", "FAIL" };
    va_list                  ap;

    printf("%s  %-22s ", names[v], check);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    t->n[v]++;
}

/* Run one tool; on a success *data is borrowed from *env (the caller puts env). A failure is
 * reported (WARN for a missing scope) and 0 returned. */
static int
run(kmadm_conn *conn, struct tally *t, const char *check, const char *tool, json_object *args,
    json_object **env, json_object **data, kmcode *transport)
{
    kmerr  err = { 0 };
    int    status = 0;
    kmcode rc = kmadm_conn_call(conn, tool, args, &status, env, &err);

    json_object_put(args);
    *data = NULL;
    *transport = rc;
    if (rc != KM_OK) {
        report(t, FAIL, check, "%s: %s", kmerr_name(rc), err.msg);
        kmerr_clear(&err);
        return 0;
    }
    kmerr_clear(&err);
    if (kmjson_get(*env, "error")) {
        json_object *e = kmjson_get(*env, "error");
        json_object *ks = kmjson_path(e, "details", "klaviyo_status", NULL);
        report(t, ks && json_object_get_int(ks) == 403 ? WARN : FAIL, check, "%s: %s",
               kmjson_str(e, "code"), kmjson_str(e, "message"));
        return 0;
    }
    *data = kmjson_get(*env, "data");
    return 1;
}

static json_object *
args_for(const char *account, const char *json_tail)
{
    json_object *a = NULL;
    char        *text = km_xasprintf("{\"account\":\"%s\"%s}", account, json_tail);

    kmjson_parse(text, strlen(text), KM_INTERNAL_ERROR, &a, NULL);
    free(text);
    return a;
}

static int
smoke(kmadm_conn *conn, const char *account)
{
    struct tally t = { { 0 } };
    json_object *env = NULL, *data, *list;
    const char  *flow_id = NULL;
    char         flow[65] = "";
    kmcode       tr = KM_OK;

    printf("smoke: account %s\n", account);
    /* 1. the account is listed */
    if (run(conn, &t, "accounts", "klaviyo_list_accounts", json_object_new_object(), &env,
            &data, &tr)) {
        int found = 0;
        list = kmjson_get(data, "accounts");
        for (size_t i = 0; i < json_object_array_length(list); i++)
            found |= strcmp(kmjson_str(json_object_array_get_idx(list, i), "name"), account) == 0;
        if (found)
            report(&t, PASS, "accounts", "%s listed (%zu accounts)", account,
                   json_object_array_length(list));
        else
            report(&t, FAIL, "accounts", "%s is not among the %zu accounts listed", account,
                   json_object_array_length(list));
    }
    json_object_put(env);
    if (tr == KM_CANCELLED)
        goto out;

    /* 2. campaign performance, last 30 days */
    if (run(conn, &t, "campaign performance", "klaviyo_get_campaign_performance",
            args_for(account, ",\"timeframe\":\"last_30_days\""), &env, &data, &tr))
        report(&t, PASS, "campaign performance", "%zu campaign rows, last 30 days",
               json_object_array_length(kmjson_get(data, "campaigns")));
    json_object_put(env);
    if (tr == KM_CANCELLED)
        goto out;

    /* 3. flows */
    if (run(conn, &t, "flows", "klaviyo_get_flows", args_for(account, ""), &env, &data, &tr)) {
        list = kmjson_get(data, "flows");
        if (json_object_array_length(list) == 0) {
            report(&t, WARN, "flows", "the account has no flows");
        } else {
            flow_id = kmjson_str(json_object_array_get_idx(list, 0), "flow_id");
            if (flow_id)
                km_strlcpy(flow, flow_id, sizeof(flow));
            report(&t, PASS, "flows", "%zu flows", json_object_array_length(list));
        }
    }
    json_object_put(env);
    if (tr == KM_CANCELLED)
        goto out;

    /* 4. the structure of the first flow */
    if (!flow[0]) {
        report(&t, WARN, "flow structure", "skipped: no flow listed");
    } else {
        json_object *a = args_for(account, "");
        json_object_object_add(a, "flow_id", json_object_new_string(flow));
        if (run(conn, &t, "flow structure", "klaviyo_get_flow_structure", a, &env, &data, &tr))
            report(&t, PASS, "flow structure", "flow %s: %d actions", flow,
                   (int)kmjson_num(data, "action_count", 0));
        json_object_put(env);
        if (tr == KM_CANCELLED)
            goto out;
    }

    /* 5. a weekly flow series, last 90 days */
    if (run(conn, &t, "weekly series", "klaviyo_get_performance_over_time",
            args_for(account, ",\"entity\":\"flow\",\"interval\":\"weekly\","
                     "\"timeframe\":\"last_90_days\""), &env, &data, &tr))
        report(&t, PASS, "weekly series", "%zu series over %zu weeks",
               json_object_array_length(kmjson_get(data, "series")),
               json_object_array_length(kmjson_get(data, "date_times")));
    json_object_put(env);
out:
    if (tr == KM_CANCELLED) {
        fprintf(stderr, "klaviyo-mcp-admin: interrupted; the call was cancelled\n");
        return KMADM_EXIT_INTERRUPTED;
    }
    printf("smoke: %d passed, %d warned, %d failed\n", t.n[PASS], t.n[WARN], t.n[FAIL]);
    return t.n[FAIL] ? KMADM_EXIT_FAIL : KMADM_EXIT_OK;
}

int
kmadm_smoke(int argc, char **argv)
{
    static const struct option opts[] = { { "account", required_argument, NULL, 'a' },
                                           { "help", no_argument, NULL, 'h' },
                                           { NULL, 0, NULL, 0 } };
    struct kmadm_config c;
    kmadm_conn         *conn;
    const char         *account = NULL;
    kmerr               err = { 0 };
    int                 o, rc;

    optind = 1;
    for (o = getopt_long(argc, argv, "ha:", opts, NULL); o != -1;
         o = getopt_long(argc, argv, "ha:", opts, NULL)) {
        if (o == 'a') {
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
        fprintf(stderr, "klaviyo-mcp-admin smoke: unexpected argument '%.40s'\n", argv[optind]);
        return KMADM_EXIT_USAGE;
    }
    if (kmadm_config_load(&c, &err) != KM_OK) {
        fprintf(stderr, "CONFIG_ERROR: %s\n", err.msg);
        kmerr_clear(&err);
        return KM_EXIT_CONFIG;
    }
    if (account && !kmacct_find(c.accounts, account)) {
        fprintf(stderr, "klaviyo-mcp-admin smoke: no account '%.64s' in %s (accounts: ",
                kmacct_name_valid(account) ? account : "(invalid name)",
                kmacct_path(c.accounts));
        for (size_t i = 0; i < kmacct_count(c.accounts); i++)
            fprintf(stderr, "%s%s", i ? ", " : "", kmacct_at(c.accounts, i)->name);
        fprintf(stderr, ")\n");
        kmadm_config_free(&c);
        return KMADM_EXIT_USAGE;
    }
    if (!account)
        account = kmacct_at(c.accounts, 0)->name;
    conn = kmadm_conn_open(c.cfg.socket_path, (c.cfg.request_deadline_s + 30) * 1000L, 1);
    rc = smoke(conn, account);
    kmadm_conn_close(conn);
    kmadm_config_free(&c);
    return rc;
}
