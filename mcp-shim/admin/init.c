/* init.c — `klaviyo-mcp-admin init`: scaffold the per-user configuration (.env mode 0600 and
 * accounts.toml, from flags or answers at a terminal; an existing file is kept unless
 * --force), validate it as the service would, and print the MCP entries for Claude Code and
 * Claude Desktop with this machine's installed path of klaviyo-mcp. */
#include "admin.h"
#include "env.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

struct answers {
    char *dir, *account, *label, *metric, *key;
    int   force, key_stdin, no_scaffold;
};

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-mcp-admin init [--config-dir DIR] [--account NAME] [--label TEXT]\n"
            "                              [--metric ID] [--key-stdin] [--force] [--no-scaffold]\n"
            "\n"
            "Write accounts.toml and .env (mode 0600) for one Klaviyo account into the per-user\n"
            "configuration directory ($XDG_CONFIG_HOME/klaviyo-mcp, else ~/.config/klaviyo-mcp),\n"
            "validate them as klaviyo-restd does, and print the MCP server entries for Claude\n"
            "Code (.mcp.json) and Claude Desktop with the installed path of klaviyo-mcp.\n"
            "Missing answers are asked for at a terminal (the key without echo).\n"
            "\n"
            "  --config-dir DIR  write there instead (the entries then set ACCOUNTS_FILE)\n"
            "  --account NAME    account name, a slug: [a-z0-9][a-z0-9_-]{0,63}\n"
            "  --label TEXT      a label for people (\"Acme Storefront\")\n"
            "  --metric ID       the conversion metric id (Klaviyo's \"Placed Order\" metric)\n"
            "  --key-stdin       read the private Klaviyo API key from the first line of stdin\n"
            "                    (never from the command line, where other users could see it)\n"
            "  --force           replace existing files (otherwise they are kept)\n"
            "  --no-scaffold     write nothing: validate and print the entries only\n"
            "\n"
            "Without a key the .env holds an empty KLAVIYO_<NAME>_KEY= to fill in; validation\n"
            "then says so (exit 78). .env also gets a random REST_API_KEY for klaviyo-restd's\n"
            "TCP listener; it is never printed.\n");
}

static char *
read_line(FILE *in)
{
    char   *line = NULL;
    size_t  cap = 0;
    ssize_t n = getline(&line, &cap, in);

    if (n < 0) {
        free(line);
        return NULL;
    }
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    return line;
}

/* Ask at the terminal; `secret` turns echo off. NULL when stdin is not a terminal. */
static char *
ask(const char *question, int secret)
{
    struct termios old, quiet;
    int            restore = 0;
    char          *a;

    if (!isatty(STDIN_FILENO))
        return NULL;
    fprintf(stderr, "%s: ", question);
    fflush(stderr);
    if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        restore = tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
    }
    a = read_line(stdin);
    if (restore) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    return a ? a : km_xstrdup("");
}

/* A value for a .env line or a TOML string: printable, no quotes or backslashes. */
static int
plain(const char *s, int spaces)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\'' || *p == '\\' ||
            (!spaces && (*p == ' ' || *p == '#')))
            return 0;
    }
    return 1;
}

static char *
key_env_name(const char *account)
{
    char *v = km_xasprintf("KLAVIYO_%s_KEY", account);

    for (char *p = v; *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
        else if (*p == '-')
            *p = '_';
    }
    return v;
}

/* Write `text` to `path` unless it exists (then keep it, unless force). mode applies. */
static int
write_file(const char *path, const char *text, mode_t mode, int force)
{
    int     fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL), mode);
    size_t  len = strlen(text);
    ssize_t w;

    if (fd < 0 && errno == EEXIST) {
        printf("kept      %s (it exists; --force replaces it)\n", path);
        return 0;
    }
    if (fd < 0) {
        fprintf(stderr, "klaviyo-mcp-admin init: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    w = write(fd, text, len);
    if (w != (ssize_t)len || fchmod(fd, mode) != 0 || close(fd) != 0) {
        fprintf(stderr, "klaviyo-mcp-admin init: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    printf("wrote     %s\n", path);
    return 0;
}

static int
gather(struct answers *a)
{
    if (!a->account)
        a->account = ask("Account name (a slug, e.g. acme)", 0);
    if (!a->account) {
        fprintf(stderr, "klaviyo-mcp-admin init: --account is required when stdin is not a "
                "terminal\n");
        return -1;
    }
    if (!kmacct_name_valid(a->account)) {
        fprintf(stderr, "klaviyo-mcp-admin init: account name '%.64s' is not a slug; use "
                "lower-case letters, digits, _ and - ([a-z0-9][a-z0-9_-]{0,63})\n", a->account);
        return -1;
    }
    if (!a->label)
        a->label = ask("Label (e.g. Acme Storefront)", 0);
    if (!a->label || !a->label[0]) {
        free(a->label);
        a->label = km_xstrdup(a->account);
    }
    if (!plain(a->label, 1)) {
        fprintf(stderr, "klaviyo-mcp-admin init: the label may not hold quotes, backslashes or "
                "control characters\n");
        return -1;
    }
    if (!a->metric)
        a->metric = ask("Conversion metric id (Klaviyo's \"Placed Order\" metric id)", 0);
    if (!a->metric) {
        fprintf(stderr, "klaviyo-mcp-admin init: --metric is required when stdin is not a "
                "terminal\n");
        return -1;
    }
    if (!km_is_alnum_id(a->metric, 64)) {
        fprintf(stderr, "klaviyo-mcp-admin init: the conversion metric id must be letters and "
                "digits (a Klaviyo metric id)\n");
        return -1;
    }
    if (a->key_stdin)
        a->key = read_line(stdin);
    else
        a->key = ask("Private Klaviyo API key (pk_..., not shown; empty to fill in later)", 1);
    if (!a->key)
        a->key = km_xstrdup("");
    if (!plain(a->key, 0)) {
        fprintf(stderr, "klaviyo-mcp-admin init: the key may not hold blanks, quotes or '#'\n");
        return -1;
    }
    return 0;
}

static int
scaffold(struct answers *a, const char *toml, const char *envp)
{
    unsigned char raw[32];
    char          rest[65], *var = key_env_name(a->account), *text;
    int           rc = 0;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        fprintf(stderr, "klaviyo-mcp-admin init: getrandom: %s\n", strerror(errno));
        free(var);
        return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(rest + 2 * i, 3, "%02x", raw[i]);
    if (mkdir(a->dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "klaviyo-mcp-admin init: cannot create %s: %s\n", a->dir,
                strerror(errno));
        free(var);
        return -1;
    }
    text = km_xasprintf("# klaviyo-mcp account manifest, written by klaviyo-mcp-admin init.\n"
                        "# Safe to commit: it names the key's variable, never the key.\n"
                        "[%s]\napi_key_env = \"%s\"\nconversion_metric_id = \"%s\"\n"
                        "label = \"%s\"\n", a->account, var, a->metric, a->label);
    rc = write_file(toml, text, 0644, a->force);
    free(text);
    text = km_xasprintf("# klaviyo-mcp secrets, written by klaviyo-mcp-admin init. Keep it private "
                        "(mode 0600).\n# The private Klaviyo API key of account %s "
                        "(accounts.toml names this variable).\n%s=%s\n"
                        "# The REST credential of klaviyo-restd's TCP listener (X-API-Key or "
                        "Bearer).\nREST_API_KEY=%s\n", a->account, var, a->key, rest);
    if (rc == 0)
        rc = write_file(envp, text, 0600, a->force);
    memset(text, 0, strlen(text));
    memset(rest, 0, sizeof(rest));
    free(text);
    free(var);
    return rc;
}

/* The installed klaviyo-mcp: next to this program, else on PATH, else the bare name. */
static char *
shim_path(void)
{
    char        self[PATH_MAX];
    ssize_t     n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    const char *path = getenv("PATH");

    if (n > 0) {
        char *slash, *cand;
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            cand = km_xasprintf("%s/klaviyo-mcp", self);
            if (access(cand, X_OK) == 0)
                return cand;
            free(cand);
        }
    }
    while (path && *path) {
        const char *colon = strchr(path, ':');
        size_t      len = colon ? (size_t)(colon - path) : strlen(path);
        char       *cand = km_xasprintf("%.*s/klaviyo-mcp", (int)len, path);
        if (len && cand[0] == '/' && access(cand, X_OK) == 0)
            return cand;
        free(cand);
        path = colon ? colon + 1 : NULL;
    }
    return km_xstrdup("klaviyo-mcp");
}

static void
print_entries(const char *toml, int on_search_path)
{
    char        *shim = shim_path();
    json_object *code = json_object_new_object(), *desk = json_object_new_object();
    json_object *srv, *env;
    const int    pretty = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                       JSON_C_TO_STRING_NOSLASHESCAPE;

    srv = json_object_new_object();
    json_object_object_add(srv, "command", json_object_new_string(shim));
    json_object_object_add(srv, "args", json_object_new_array());
    if (!on_search_path) {
        env = json_object_new_object();
        json_object_object_add(env, "ACCOUNTS_FILE", json_object_new_string(toml));
        json_object_object_add(srv, "env", env);
    }
    json_object_object_add(code, "mcpServers", json_object_new_object());
    json_object_object_add(json_object_object_get(code, "mcpServers"), "klaviyo-api", srv);

    srv = json_object_new_object();
    json_object_object_add(srv, "command", json_object_new_string(shim));
    json_object_object_add(srv, "args", json_object_new_array());
    env = json_object_new_object();
    json_object_object_add(env, "ACCOUNTS_FILE", json_object_new_string(toml));
    json_object_object_add(srv, "env", env);
    json_object_object_add(desk, "mcpServers", json_object_new_object());
    json_object_object_add(json_object_object_get(desk, "mcpServers"), "klaviyo-api", srv);

    printf("\nClaude Code: put this in .mcp.json (or run: claude mcp add klaviyo-api -- %s)\n%s\n",
           shim, json_object_to_json_string_ext(code, pretty));
    printf("\nClaude Desktop: merge this into claude_desktop_config.json, then restart it\n%s\n",
           json_object_to_json_string_ext(desk, pretty));
    if (!on_search_path)
        printf("\nnote: %s is not on the .env search path; klaviyo-mcp reads .env from "
               "~/.config/klaviyo-mcp/ or the working directory, so keep the keys there or in "
               "the environment\n", toml);
    json_object_put(code);
    json_object_put(desk);
    free(shim);
}

/* Validate as the service will: the directory's .env, the settings, its accounts.toml. */
static int
validate(const char *toml, const char *envp)
{
    kmcfg       cfg;
    kmaccounts *acc = NULL;
    kmerr       err = { 0 };
    kmcode      rc = kmenv_load_file(envp, &err);

    if (rc == KM_NOT_FOUND) {
        kmerr_clear(&err);
        rc = KM_OK;
    }
    if (rc == KM_OK)
        rc = kmenv_load(NULL, &err);
    if (rc == KM_OK) {
        rc = kmcfg_load(&cfg, &err);
        if (rc == KM_OK) {
            rc = kmacct_load(toml, &acc, &err);
            kmcfg_free(&cfg);
        }
    }
    if (rc != KM_OK) {
        printf("\nCONFIG_ERROR: %s\n", err.msg);
        kmerr_clear(&err);
        return KM_EXIT_CONFIG;
    }
    printf("\nconfiguration OK: %zu account%s in %s\n", kmacct_count(acc),
           kmacct_count(acc) == 1 ? "" : "s", toml);
    kmacct_free(acc);
    return KMADM_EXIT_OK;
}

int
kmadm_init(int argc, char **argv)
{
    static const struct option opts[] = {
        { "config-dir", required_argument, NULL, 'd' }, { "account", required_argument, NULL, 'a' },
        { "label", required_argument, NULL, 'l' },      { "metric", required_argument, NULL, 'm' },
        { "key-stdin", no_argument, NULL, 'k' },         { "force", no_argument, NULL, 'f' },
        { "no-scaffold", no_argument, NULL, 'n' },       { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct answers a = { 0 };
    char           user_env[1][KMENV_PATH_MAX];
    char          *toml = NULL, *envp = NULL;
    int            o, rc = KMADM_EXIT_OK, on_search_path;

    optind = 1;
    for (o = getopt_long(argc, argv, "h", opts, NULL); o != -1;
         o = getopt_long(argc, argv, "h", opts, NULL)) {
        if (o == 'd' || o == 'a' || o == 'l' || o == 'm') {
            char **slot = o == 'd' ? &a.dir : o == 'a' ? &a.account : o == 'l' ? &a.label
                                                                          : &a.metric;
            free(*slot);
            *slot = km_xstrdup(optarg);
        } else if (o == 'k') {
            a.key_stdin = 1;
        } else if (o == 'f') {
            a.force = 1;
        } else if (o == 'n') {
            a.no_scaffold = 1;
        } else if (o == 'h') {
            usage(stdout);
            goto out;
        } else {
            usage(stderr);
            rc = KMADM_EXIT_USAGE;
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "klaviyo-mcp-admin init: unexpected argument '%.40s'\n", argv[optind]);
        rc = KMADM_EXIT_USAGE;
        goto out;
    }
    /* the per-user directory: the first entry of the .env search path */
    kmenv_search_paths(".env", user_env, 1);
    *strrchr(user_env[0], '/') = '\0';
    on_search_path = !a.dir || strcmp(a.dir, user_env[0]) == 0;
    if (!a.dir)
        a.dir = km_xstrdup(user_env[0]);
    toml = km_xasprintf("%s/accounts.toml", a.dir);
    envp = km_xasprintf("%s/.env", a.dir);
    if (!a.no_scaffold) {
        char *parent = km_xstrdup(a.dir), *slash = strrchr(parent, '/');
        /* ~/.config may not exist yet on a fresh machine */
        if (slash && slash != parent) {
            *slash = '\0';
            if (mkdir(parent, 0700) != 0 && errno != EEXIST)
                fprintf(stderr, "klaviyo-mcp-admin init: cannot create %s: %s\n", parent,
                        strerror(errno));
        }
        free(parent);
        if (gather(&a) != 0 || scaffold(&a, toml, envp) != 0) {
            rc = KMADM_EXIT_FAIL;
            goto out;
        }
    }
    if (!on_search_path)
        setenv("ACCOUNTS_FILE", toml, 1);
    rc = validate(toml, envp);
    print_entries(toml, on_search_path);
out:
    if (a.key) {
        memset(a.key, 0, strlen(a.key));
        free(a.key);
    }
    free(a.dir);
    free(a.account);
    free(a.label);
    free(a.metric);
    free(toml);
    free(envp);
    return rc;
}
