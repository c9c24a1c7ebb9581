/* env.c — `.env` parsing and the search path. */
#include "env.h"
#include "buf.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t
kmenv_search_paths(const char *filename, char out[][KMENV_PATH_MAX], size_t cap)
{
    const char *home = getenv("HOME");
    size_t      n = 0;

#ifdef __APPLE__
    if (home && *home && n < cap)
        snprintf(out[n++], KMENV_PATH_MAX, "%s/Library/Application Support/klaviyo-mcp/%s",
                 home, filename);
#else
    const char *xdg = getenv("XDG_CONFIG_HOME");
    if (xdg && *xdg && xdg[0] == '/' && n < cap)
        snprintf(out[n++], KMENV_PATH_MAX, "%s/klaviyo-mcp/%s", xdg, filename);
    else if (home && *home && n < cap)
        snprintf(out[n++], KMENV_PATH_MAX, "%s/.config/klaviyo-mcp/%s", home, filename);
#endif
    if (n < cap)
        snprintf(out[n++], KMENV_PATH_MAX, "./%s", filename);
    return n;
}

static int
is_key_start(int c)
{
    return isalpha(c) || c == '_';
}

static int
is_key_char(int c)
{
    return isalnum(c) || c == '_';
}

kmcode
kmenv_parse_line(const char *line, const char *what, char **key, char **val, kmerr *err)
{
    const char *p = line, *k0;
    kmbuf       v;
    size_t      klen;
    int         blank;

    *key = *val = NULL;
    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0' || *p == '#')
        return KM_OK;
    if (strncmp(p, "export", 6) == 0 && (p[6] == ' ' || p[6] == '\t')) {
        p += 6;
        while (*p == ' ' || *p == '\t')
            p++;
    }
    k0 = p;
    if (!is_key_start((unsigned char)*p))
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "%s: expected NAME=value (a name starts with a letter or _)", what);
    while (is_key_char((unsigned char)*p))
        p++;
    klen = (size_t)(p - k0);
    while (*p == ' ' || *p == '\t')
        p++;
    /* the name is not echoed: a line without '=' may be a pasted key */
    if (*p != '=')
        return kmerr_set(err, KM_CONFIG_ERROR,
                         "%s: expected NAME=value (no '=' after the name)", what);
    p++;
    blank = *p == ' ' || *p == '\t';
    while (*p == ' ' || *p == '\t')
        p++;

    kmbuf_init(&v, 0);
    kmbuf_append(&v, "", 0);
    if (*p == '"' || *p == '\'') {
        char q = *p++;
        for (;;) {
            if (*p == '\0') {
                kmbuf_free(&v);
                return kmerr_set(err, KM_CONFIG_ERROR, "%s: unterminated %s-quoted value",
                                 what, q == '"' ? "double" : "single");
            }
            if (*p == q) {
                p++;
                break;
            }
            if (q == '"' && *p == '\\' && p[1]) {
                char c = p[1];
                char o = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
                kmbuf_append(&v, &o, 1);
                p += 2;
                continue;
            }
            kmbuf_append(&v, p, 1);
            p++;
        }
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0' && *p != '#') {
            kmbuf_free(&v);
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "%s: unexpected text after the closing quote", what);
        }
    } else {
        const char *e = p;
        /* an unquoted value ends at " #" (an inline comment) or the end of the line; a '#'
         * right after "= " starts a comment too (NAME= # note is empty) */
        while (*e && !(*e == '#' && (e > p ? e[-1] == ' ' || e[-1] == '\t' : blank)))
            e++;
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        kmbuf_append(&v, p, (size_t)(e - p));
    }
    *key = km_xstrndup(k0, klen);
    *val = kmbuf_take(&v, NULL);
    return KM_OK;
}

/* An empty variable means unset: `REST_API_KEY=` (as in .env.example) neither counts as a
 * value nor hides a later file's value. */
static int
nonempty_env(const char *key)
{
    const char *v = getenv(key);

    return v && *v;
}

kmcode
kmenv_load_file(const char *path, kmerr *err)
{
    FILE  *f = fopen(path, "r");
    char  *line = NULL;
    size_t cap = 0;
    long   lineno = 0;
    kmcode rc = KM_OK;

    if (!f) {
        if (errno == ENOENT || errno == ENOTDIR)
            return kmerr_set(err, KM_NOT_FOUND, "%s: no such file", path);
        return kmerr_set(err, KM_CONFIG_ERROR, "%s: cannot read: %s", path, strerror(errno));
    }
    for (;;) {
        ssize_t n = getline(&line, &cap, f);
        char    what[KMENV_PATH_MAX + 32];
        char   *key, *val;

        if (n < 0)
            break;
        lineno++;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (lineno == 1 && strncmp(line, "\xEF\xBB\xBF", 3) == 0)
            memmove(line, line + 3, strlen(line + 3) + 1);
        snprintf(what, sizeof(what), "%s:%ld", path, lineno);
        rc = kmenv_parse_line(line, what, &key, &val, err);
        if (rc != KM_OK)
            break;
        if (key && val[0] && !nonempty_env(key))
            setenv(key, val, 1);
        free(key);
        if (val) {
            memset(val, 0, strlen(val));
            free(val);
        }
    }
    if (line)
        memset(line, 0, cap);
    free(line);
    fclose(f);
    return rc;
}

kmcode
kmenv_load(char **loaded, kmerr *err)
{
    char   paths[4][KMENV_PATH_MAX];
    size_t n = kmenv_search_paths(".env", paths, 4);
    kmbuf  list;
    kmcode rc = KM_OK;

    kmbuf_init(&list, 0);
    for (size_t i = 0; i < n; i++) {
        kmerr e = { 0 };
        kmcode r = kmenv_load_file(paths[i], &e);
        if (r == KM_NOT_FOUND) {
            kmerr_clear(&e);
            continue;
        }
        if (r != KM_OK) {
            kmerr_copy(err, &e);
            kmerr_clear(&e);
            rc = r;
            break;
        }
        kmbuf_appendf(&list, "%s%s", list.len ? "," : "", paths[i]);
    }
    if (loaded)
        *loaded = list.len && rc == KM_OK ? kmbuf_take(&list, NULL) : NULL;
    kmbuf_free(&list);
    return rc;
}
