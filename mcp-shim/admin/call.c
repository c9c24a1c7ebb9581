/* call.c — `klaviyo-mcp-admin call TOOL [key=value ...] [--format table|csv|json]`: any tool
 * through the running service (or a private one), its arguments typed by the tool's input
 * schema, the answer as a table, CSV or the JSON envelope. */
#include "admin.h"
#include "conn.h"
#include "format.h"
#include "forward.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin call TOOL [key=value ...] [--format table|csv|json]\n"
            "\n"
            "Run one tool through klaviyo-restd (the one on KLAVIYO_MCP_SOCKET, else a private\n"
            "one started for this call). TOOL is a tool name (klaviyo_get_flows) or the same\n"
            "without its klaviyo_ prefix (get_flows); `call --list` lists them. Each key=value\n"
            "is an argument, typed by the tool's input schema (integers, numbers, true/false,\n"
            "comma-separated lists).\n"
            "\n"
            "  --format table   aligned columns: numbers right-aligned, rates as percentages,\n"
            "                   money with the account's currency (the default)\n"
            "  --format csv     RFC 4180 CSV of the same rows, values as JSON has them\n"
            "  --format json    the whole envelope: data, metadata, warnings\n"
            "  --list           list the tools and their arguments\n"
            "\n"
            "On a terminal, a call that needs many Klaviyo requests shows a progress bar on\n"
            "stderr. Ctrl-C cancels the call: the service stops before its next Klaviyo\n"
            "request. Exit 0, 1 when the tool answered an error (CODE: message on stderr; with\n"
            "--format json also the error envelope on stdout),\n"
            "69 no service, 78 configuration error, 130 interrupted.\n\n"
            "example: klaviyo-mcp-admin call get_campaign_performance account=acme \\\n"
            "             timeframe=last_30_days --format csv > campaigns.csv\n");
}

static json_object *
find_tool(json_object *tools, const char *name)
{
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        if (kmjson_str(t, "name") && strcmp(kmjson_str(t, "name"), name) == 0)
            return t;
    }
    return NULL;
}

/* The first non-null type of a property schema. */
static const char *
prop_type(json_object *prop)
{
    json_object *t = kmjson_get(prop, "type");

    if (json_object_is_type(t, json_type_string))
        return json_object_get_string(t);
    if (json_object_is_type(t, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(t); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(t, i));
            if (s && strcmp(s, "null") != 0)
                return s;
        }
    }
    return "string";
}

/* value text -> JSON of the schema's type; NULL with *why set when it does not parse */
static json_object *
typed(const char *type, const char *v, const char **why)
{
    char *end;

    errno = 0;
    if (strcmp(type, "integer") == 0) {
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno) {
            *why = "an integer";
            return NULL;
        }
        return json_object_new_int64(n);
    }
    if (strcmp(type, "number") == 0) {
        double d = strtod(v, &end);
        if (!*v || *end || errno) {
            *why = "a number";
            return NULL;
        }
        return json_object_new_double(d);
    }
    if (strcmp(type, "boolean") == 0) {
        if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "1") == 0)
            return json_object_new_boolean(1);
        if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0 || strcmp(v, "0") == 0)
            return json_object_new_boolean(0);
        *why = "true or false";
        return NULL;
    }
    if (strcmp(type, "array") == 0) {
        json_object *a = json_object_new_array();
        char        *copy = km_xstrdup(v), *save = NULL;
        for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
            json_object_array_add(a, json_object_new_string(p));
        free(copy);
        return a;
    }
    return json_object_new_string(v);
}

static void
list_tools(json_object *tools)
{
    for (size_t i = 0; i < json_object_array_length(tools); i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        json_object *props = kmjson_path(t, "inputSchema", "properties", NULL);
        printf("%s", kmjson_str(t, "name"));
        if (json_object_is_type(props, json_type_object)) {
            json_object_object_foreach(props, key, val) {
                printf(" %s=<%s>", key, prop_type(val));
            }
        }
        printf("\n");
    }
}

int
kmadm_call(int argc, char **argv)
{
    static const struct option opts[] = { { "format", required_argument, NULL, 'f' },
                                           { "list", no_argument, NULL, 'l' },
                                           { "help", no_argument, NULL, 'h' },
                                           { NULL, 0, NULL, 0 } };
    struct kmadm_config c;
    kmadm_format        fmt = KMADM_TABLE;
    kmadm_conn         *conn = NULL;
    json_object        *tools = NULL, *tool, *args = NULL, *env = NULL, *props;
    char               *name = NULL;
    kmerr               err = { 0 };
    kmbuf               out;
    int                 o, list = 0, status = 0, rc = KMADM_EXIT_OK, have_config = 0;
    kmcode              code;

    kmbuf_init(&out, 0);
    optind = 1;
    for (o = getopt_long(argc, argv, "hf:", opts, NULL); o != -1;
         o = getopt_long(argc, argv, "hf:", opts, NULL)) {
        if (o == 'f' && kmadm_format_parse(optarg, &fmt) == 0) {
            continue;
        } else if (o == 'f') {
            fprintf(stderr, "klaviyo-mcp-admin call: --format must be table, csv or json\n");
            return KMADM_EXIT_USAGE;
        } else if (o == 'l') {
            list = 1;
        } else if (o == 'h') {
            usage(stdout);
            return KMADM_EXIT_OK;
        } else {
            usage(stderr);
            return KMADM_EXIT_USAGE;
        }
    }
    if (!list && optind >= argc) {
        fprintf(stderr, "klaviyo-mcp-admin call: which tool? (call --list lists them)\n");
        return KMADM_EXIT_USAGE;
    }
    if (kmadm_config_load(&c, &err) != KM_OK) {
        fprintf(stderr, "CONFIG_ERROR: %s\n", err.msg);
        kmerr_clear(&err);
        return KM_EXIT_CONFIG;
    }
    have_config = 1;
    conn = kmadm_conn_open(c.cfg.socket_path, (c.cfg.request_deadline_s + 30) * 1000L, 1);
    code = kmadm_conn_tools(conn, &tools, &err);
    if (code != KM_OK) {
        fprintf(stderr, "klaviyo-mcp-admin: %s: %s\n", kmerr_name(code), err.msg);
        rc = kmadm_exit_for(code);
        goto out;
    }
    if (list) {
        list_tools(tools);
        goto out;
    }

    tool = find_tool(tools, argv[optind]);
    if (!tool) {
        char *longer = km_xasprintf("klaviyo_%s", argv[optind]);
        tool = find_tool(tools, longer);
        free(longer);
    }
    if (!tool) {
        fprintf(stderr, "klaviyo-mcp-admin call: no tool named '%.64s' (call --list lists "
                "them)\n", argv[optind]);
        rc = KMADM_EXIT_USAGE;
        goto out;
    }
    name = km_xstrdup(kmjson_str(tool, "name"));
    props = kmjson_path(tool, "inputSchema", "properties", NULL);
    args = json_object_new_object();
    for (int i = optind + 1; i < argc; i++) {
        const char  *eq = strchr(argv[i], '='), *why = NULL;
        char        *key;
        json_object *v;

        if (!eq || eq == argv[i]) {
            fprintf(stderr, "klaviyo-mcp-admin call: '%.64s' is not key=value\n", argv[i]);
            rc = KMADM_EXIT_USAGE;
            goto out;
        }
        key = km_xstrndup(argv[i], (size_t)(eq - argv[i]));
        /* an argument the schema does not know goes as text: the service names the field */
        v = typed(prop_type(kmjson_get(props, key)), eq + 1, &why);
        if (!v) {
            fprintf(stderr, "klaviyo-mcp-admin call: %s must be %s\n", key, why);
            free(key);
            rc = KMADM_EXIT_USAGE;
            goto out;
        }
        json_object_object_add(args, key, v);
        free(key);
    }

    code = kmadm_conn_call(conn, name, args, &status, &env, &err);
    if (code == KM_CANCELLED) {
        fprintf(stderr, "klaviyo-mcp-admin: interrupted; the call was cancelled\n");
        rc = KMADM_EXIT_INTERRUPTED;
        goto out;
    }
    if (code != KM_OK) {
        fprintf(stderr, "klaviyo-mcp-admin: %s: %s\n", kmerr_name(code), err.msg);
        rc = kmadm_exit_for(code);
        goto out;
    }
    if (kmjson_get(env, "error")) {
        /* scripts asking for JSON get the error envelope too */
        if (fmt == KMADM_JSON)
            kmadm_render(env, fmt, &out);
        kmadm_print_error(env);
        rc = KMADM_EXIT_FAIL;
    } else {
        kmadm_render(env, fmt, &out);
    }
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = KMADM_EXIT_FAIL;
out:
    kmadm_conn_close(conn);
    json_object_put(tools);
    json_object_put(args);
    json_object_put(env);
    free(name);
    kmbuf_free(&out);
    kmerr_clear(&err);
    if (have_config)
        kmadm_config_free(&c);
    return rc;
}
