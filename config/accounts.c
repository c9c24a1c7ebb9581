/* accounts.c — accounts.toml through inih, validation, resolution. */
#include "accounts.h"
#include "env.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct kmaccounts {
    char             *path;
    struct kmaccount *items;
    size_t            n, cap;
};

struct parse_ctx {
    kmaccounts *a;
    const char *p;            /* the text not yet handed to inih */
    size_t      left;
    int         line;         /* line last handed to inih by reader() */
    long        cur;          /* index of the account whose [section] is open, or -1 */
    kmerr      *err;
    kmcode      rc;
};

int
kmacct_name_valid(const char *s)
{
    size_t i;

    if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (i = 1; s[i]; i++) {
        char c = s[i];
        if (i > 63)
            return 0;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int fail(struct parse_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct parse_ctx *ctx, const char *fmt, ...)
{
    char    msg[200];
    va_list ap;

    if (ctx->rc == KM_OK) {
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kmerr_set(ctx->err, KM_CONFIG_ERROR, "%s:%d: %s", ctx->a->path, ctx->line, msg);
        ctx->rc = KM_CONFIG_ERROR;
    }
    return 0;
}

/* Start account `name` at the current line; sets ctx->rc on a bad or repeated name. */
static void
open_section(struct parse_ctx *ctx, const char *name)
{
    kmaccounts *a = ctx->a;

    ctx->cur = -1;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->items[i].name, name) == 0) {
            ctx->rc = kmerr_set(ctx->err, KM_CONFIG_ERROR,
                                "%s:%d: account [%s] is defined twice (first at line %d); "
                                "remove or rename one",
                                a->path, ctx->line, name, a->items[i].line);
            return;
        }
    }
    if (!kmacct_name_valid(name)) {
        ctx->rc = kmerr_set(ctx->err, KM_CONFIG_ERROR,
                            "%s:%d: account name [%.64s] is not a valid slug; use "
                            "lower-case letters, digits, _ and - ([a-z0-9][a-z0-9_-]{0,63})",
                            a->path, ctx->line, name);
        return;
    }
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->items = km_xrealloc(a->items, a->cap * sizeof(*a->items));
    }
    memset(&a->items[a->n], 0, sizeof(a->items[0]));
    km_strlcpy(a->items[a->n].name, name, sizeof(a->items[0].name));
    a->items[a->n].line = ctx->line;
    ctx->cur = (long)a->n++;
}

/* fgets(3) on the text: up to num - 1 bytes, through the first newline; NULL at the end. */
static char *
text_gets(struct parse_ctx *ctx, char *str, int num)
{
    size_t      n = ctx->left < (size_t)num - 1 ? ctx->left : (size_t)num - 1;
    const char *nl;

    if (ctx->left == 0)
        return NULL;
    nl = memchr(ctx->p, '\n', n);
    if (nl)
        n = (size_t)(nl - ctx->p) + 1;
    memcpy(str, ctx->p, n);
    str[n] = '\0';
    ctx->p += n;
    ctx->left -= n;
    return str;
}

/* getc(3) on the text. */
static int
text_getc(struct parse_ctx *ctx)
{
    if (ctx->left == 0)
        return EOF;
    ctx->left--;
    return (unsigned char)*ctx->p++;
}

/* inih hands us lines through this reader, which also covers what inih gets wrong for
 * TOML: it counts lines (so each callback knows its line); it strips leading blanks (inih
 * reads an indented line as the continuation of the previous value); it takes [section]
 * headers itself (inih truncates names to 49 bytes and says nothing about a section without
 * keys); and it refuses a line longer than inih's buffer (inih would read the rest of it as
 * a line of its own). After the first error it ends the input. */
static char *
reader(char *str, int num, void *stream)
{
    struct parse_ctx *ctx = stream;
    char             *p, *close, *name;
    size_t            n;

    if (ctx->rc != KM_OK || !text_gets(ctx, str, num))
        return NULL;
    ctx->line++;
    n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int c = text_getc(ctx);
        if (c != EOF && c != '\n') {
            fail(ctx, "the line is too long (more than %d characters); shorten it", num - 1);
            return NULL;
        }
    }
    if (ctx->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0)
        memmove(str, str + 3, strlen(str + 3) + 1);
    for (p = str; *p == ' ' || *p == '\t'; p++)
        ;
    memmove(str, p, strlen(p) + 1);
    if (str[0] != '[')
        return str;

    close = strchr(str, ']');
    if (!close) {
        fail(ctx, "a section header needs a closing ']', e.g. [acme]");
        return NULL;
    }
    for (p = close + 1; *p == ' ' || *p == '\t'; p++)
        ;
    if (*p && *p != '#' && *p != '\n' && *p != '\r') {
        fail(ctx, "unexpected text after the section header; only a # comment may follow");
        return NULL;
    }
    /* TOML ignores blanks around the name inside the brackets */
    for (p = str + 1; *p == ' ' || *p == '\t'; p++)
        ;
    for (n = (size_t)(close - p); n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'); n--)
        ;
    name = km_xstrndup(p, n);
    open_section(ctx, name);
    free(name);
    return ctx->rc == KM_OK ? str : NULL;
}

/* Strip TOML string quotes from an inih value (inih has already trimmed whitespace and
 * ';' comments). A '#' after the closing quote starts a comment. *out is new. */
static int
toml_string(const char *raw, char **out)
{
    size_t n = strlen(raw);
    char   q = raw[0];

    if (q == '"' || q == '\'') {
        const char *end = NULL;
        char       *res = km_xmalloc(n + 1);
        size_t      o = 0;
        for (const char *p = raw + 1; *p; p++) {
            if (*p == q) {
                end = p;
                break;
            }
            if (q == '"' && *p == '\\' && p[1]) {
                p++;
                res[o++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                continue;
            }
            res[o++] = *p;
        }
        res[o] = '\0';
        if (!end) {
            free(res);
            return -1;
        }
        for (const char *p = end + 1; *p; p++) {
            if (*p == '#')
                break;
            if (*p != ' ' && *p != '\t') {
                free(res);
                return -1;
            }
        }
        *out = res;
        return 0;
    }
    /* a bare value (api_key_env = KLAVIYO_ACME_KEY) is not valid TOML: refuse what TOML
     * refuses, so a file this service accepts is one every TOML reader accepts */
    return -1;
}

static int
handler(void *user, const char *sect, const char *key, const char *value)
{
    struct parse_ctx *ctx = user;
    struct kmaccount *acc;
    char             *v = NULL;
    char            **slot;

    if (ctx->rc != KM_OK)
        return 0;
    /* the section is the reader's (inih's copy of the name may be truncated) */
    (void)sect;
    if (ctx->cur < 0)
        return fail(ctx, "'%.64s' is outside any [account] section; put it under a [name] header",
                    key);
    acc = &ctx->a->items[ctx->cur];
    if (strcmp(key, "api_key_env") == 0)
        slot = &acc->api_key_env;
    else if (strcmp(key, "conversion_metric_id") == 0)
        slot = &acc->conversion_metric_id;
    else if (strcmp(key, "label") == 0)
        slot = &acc->label;
    else {
        kmlogf(KMLOG_WARN, "accounts_unknown_key",
               "%s:%d: unknown key '%.64s' in [%s] is ignored (known keys: api_key_env, "
               "conversion_metric_id, label)",
               ctx->a->path, ctx->line, key, acc->name);
        return 1;
    }
    if (toml_string(value, &v) != 0) {
        if (value[0] != '"' && value[0] != '\'' && value[0])
            return fail(ctx, "%s must be a quoted string (this is not valid TOML), e.g. "
                        "%s = \"%.64s\"", key, key, value);
        return fail(ctx, "%s must be a quoted string, e.g. %s = \"...\"", key, key);
    }
    if (*slot)
        free(*slot);
    *slot = v;
    return 1;
}

static kmcode
validate(kmaccounts *a, kmerr *err)
{
    if (a->n == 0)
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "%s: no accounts defined; add a section such as [acme] with "
                         "api_key_env, conversion_metric_id and label",
                         a->path);
    for (size_t i = 0; i < a->n; i++) {
        struct kmaccount *acc = &a->items[i];
        const char       *missing = !acc->api_key_env            ? "api_key_env"
                                    : !acc->conversion_metric_id ? "conversion_metric_id"
                                    : !acc->label                ? "label"
                                                                 : NULL;
        const char *key;

        if (missing)
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "%s:%d: account [%s] is missing required key %s", a->path,
                             acc->line, acc->name, missing);
        if (!km_is_alnum_id(acc->conversion_metric_id, 64))
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "%s:%d: account [%s]: conversion_metric_id must be a Klaviyo "
                             "metric id (letters and digits)",
                             a->path, acc->line, acc->name);
        key = kmenv_get(acc->api_key_env);
        if (!key || !*key)
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "environment variable %.64s for account '%s' is not set "
                             "(%s:%d); add it to .env or the environment",
                             acc->api_key_env, acc->name, a->path, acc->line);
        acc->api_key = kmsecret_new(key);
    }
    return KM_OK;
}

kmcode
kmacct_parse(const char *path, const char *text, size_t len, kmaccounts **out, kmerr *err)
{
    kmaccounts      *a = km_xcalloc(1, sizeof(*a));
    struct parse_ctx ctx = { .a = a, .p = text, .left = len, .cur = -1, .err = err,
                             .rc = KM_OK };
    kmcode           rc = KM_OK;
    int              r;

    a->path = km_xstrdup(path);
    r = ini_parse_stream(reader, &ctx, handler, &ctx);
    if (ctx.rc != KM_OK) {
        rc = ctx.rc;
        goto out;
    }
    if (r != 0) {
        rc = kmerr_set(err, KM_CONFIG_ERROR,
                       "%s:%d: not a valid line; expected [name] or key = \"value\"", path, r);
        goto out;
    }
    rc = validate(a, err);
out:
    if (rc != KM_OK) {
        kmacct_free(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

kmcode
kmacct_load(const char *path, kmaccounts **out, kmerr *err)
{
    FILE  *f = fopen(path, "r");
    char  *text = NULL;
    size_t len = 0, got;
    kmcode rc;

    *out = NULL;
    if (!f)
        return kmerr_set(err, KM_CONFIG_ERROR, "%s: cannot read the account manifest: %s",
                         path, strerror(errno));
    /* read one byte past the cap to tell a file of exactly the cap from a longer one */
    text = km_xmalloc(KMACCT_MAX_FILE + 1);
    while (len <= KMACCT_MAX_FILE) {
        got = fread(text + len, 1, KMACCT_MAX_FILE + 1 - len, f);
        if (got == 0)
            break;
        len += got;
    }
    if (ferror(f)) {
        rc = kmerr_set(err, KM_CONFIG_ERROR, "%s: cannot read the account manifest: %s",
                       path, strerror(errno));
        goto out;
    }
    if (len > KMACCT_MAX_FILE) {
        rc = kmerr_set(err, KM_CONFIG_ERROR, "%s: the account manifest is larger than %d "
                       "bytes; is this the right file?", path, KMACCT_MAX_FILE);
        goto out;
    }
    rc = kmacct_parse(path, text, len, out, err);
out:
    free(text);
    fclose(f);
    return rc;
}

kmcode
kmacct_locate(char **path, kmerr *err)
{
    const char *env = kmenv_get("ACCOUNTS_FILE");
    char        paths[4][KMENV_PATH_MAX];
    size_t      n;
    FILE       *f;

    *path = NULL;
    if (env && *env) {
        f = fopen(env, "r");
        if (!f)
            return kmerr_set(err, KM_CONFIG_ERROR, "ACCOUNTS_FILE=%.200s cannot be read: %s",
                             env, strerror(errno));
        fclose(f);
        *path = km_xstrdup(env);
        return KM_OK;
    }
    n = kmenv_search_paths("accounts.toml", paths, 4);
    for (size_t i = 0; i < n; i++) {
        f = fopen(paths[i], "r");
        if (f) {
            fclose(f);
            *path = km_xstrdup(paths[i]);
            return KM_OK;
        }
    }
    return kmerr_set(err, KM_NOT_FOUND,
                     "no accounts.toml found (looked in %s%s%s); set ACCOUNTS_FILE or create one",
                     paths[0], n > 1 ? " and " : "", n > 1 ? paths[1] : "");
}

void
kmacct_free(kmaccounts *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->items[i].label);
        free(a->items[i].api_key_env);
        free(a->items[i].conversion_metric_id);
        kmsecret_free(a->items[i].api_key);
    }
    free(a->items);
    free(a->path);
    free(a);
}

size_t
kmacct_count(const kmaccounts *a)
{
    return a ? a->n : 0;
}

const struct kmaccount *
kmacct_at(const kmaccounts *a, size_t i)
{
    return a && i < a->n ? &a->items[i] : NULL;
}

const char *
kmacct_path(const kmaccounts *a)
{
    return a->path;
}

const struct kmaccount *
kmacct_find(const kmaccounts *a, const char *name)
{
    for (size_t i = 0; a && name && i < a->n; i++) {
        if (strcmp(a->items[i].name, name) == 0)
            return &a->items[i];
    }
    return NULL;
}

static json_object *
names(const kmaccounts *a)
{
    json_object *arr = json_object_new_array();

    for (size_t i = 0; i < a->n; i++)
        json_object_array_add(arr, json_object_new_string(a->items[i].name));
    return arr;
}

kmcode
kmacct_resolve(const kmaccounts *a, const char *name, const struct kmaccount **out,
               kmerr *err)
{
    *out = NULL;
    if (!a || a->n == 0)
        return kmerr_set(err, KM_CONFIG_ERROR, "no accounts are configured");
    if (!name) {
        if (a->n == 1) {
            *out = &a->items[0];
            return KM_OK;
        }
        kmerr_set(err, KM_INVALID_ARGUMENT,
                  "account is required when multiple accounts are configured");
        kmerr_detail(err, "available_accounts", names(a));
        return KM_INVALID_ARGUMENT;
    }
    *out = kmacct_find(a, name);
    if (*out)
        return KM_OK;
    /* names are lower-case slugs; "ACME" is a near miss worth naming, not a pattern error */
    for (size_t i = 0; i < a->n; i++) {
        if (strcasecmp(a->items[i].name, name) == 0) {
            kmerr_set(err, KM_UNKNOWN_ACCOUNT, "unknown account '%.64s': account names are "
                      "lower-case; did you mean '%s'?", name, a->items[i].name);
            kmerr_detail(err, "available_accounts", names(a));
            return KM_UNKNOWN_ACCOUNT;
        }
    }
    kmerr_set(err, KM_UNKNOWN_ACCOUNT, "unknown account '%.64s'",
              kmacct_name_valid(name) ? name : "(invalid name)");
    kmerr_detail(err, "available_accounts", names(a));
    return KM_UNKNOWN_ACCOUNT;
}
