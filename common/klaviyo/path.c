/* path.c — Klaviyo API paths: validation, the query builder (libcurl's URL API), id segments,
 * and next-page links.
 */
#include "path.h"

#include "json.h"
#include "util.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CURSOR_MAX 1024
/* A host for libcurl's parser; only the path and query are ever read back. */
#define PARSE_BASE "http://klaviyo.invalid"

int
kmpath_ok(const char *path)
{
    size_t n;

    if (!path || strncmp(path, "/api/", 5) != 0)
        return 0;
    n = strlen(path);
    if (n >= KMPATH_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];

        if (c <= 0x20 || c >= 0x7f || c == '#' || c == '\\')
            return 0;
    }
    n = strcspn(path, "?");
    for (size_t i = 0; i + 1 < n; i++) {
        if (path[i] == '/' && path[i + 1] == '.' &&
            (i + 2 >= n || path[i + 2] == '/' || (path[i + 2] == '.' &&
                                                   (i + 3 >= n || path[i + 3] == '/'))))
            return 0;
    }
    return 1;
}

kmcode
kmpath_query(const char *path, const char *const *params, char **out, kmerr *err)
{
    CURLU *u = NULL;
    char  *url = NULL, *p = NULL, *q = NULL;
    kmcode rc = KM_INTERNAL_ERROR;

    *out = NULL;
    if (!kmpath_ok(path) || strchr(path, '?')) {
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "not a valid Klaviyo API path");
        goto out;
    }
    u = curl_url();
    url = km_xasprintf(PARSE_BASE "%s", path);
    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        kmerr_set(err, rc, "the Klaviyo URL was refused");
        goto out;
    }
    for (size_t i = 0; params && params[i]; i += 2) {
        char *pair;
        int   refused;

        if (!params[i + 1])
            continue;
        pair = km_xasprintf("%s=%s", params[i], params[i + 1]);
        /* the first '=' stays as it is; everything else not unreserved is percent-encoded */
        refused = curl_url_set(u, CURLUPART_QUERY, pair,
                               CURLU_APPENDQUERY | CURLU_URLENCODE) != CURLUE_OK;
        free(pair);
        if (refused) {
            kmerr_set(err, rc, "the query parameter '%s' was refused", params[i]);
            goto out;
        }
    }
    if (curl_url_get(u, CURLUPART_PATH, &p, 0) != CURLUE_OK) {
        kmerr_set(err, rc, "the Klaviyo URL was refused");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &q, 0) != CURLUE_OK)
        q = NULL;  /* no pair: no query */
    *out = q ? km_xasprintf("%s?%s", p, q) : km_xstrdup(p);
    if (!kmpath_ok(*out)) {
        free(*out);
        *out = NULL;
        rc = kmerr_set(err, KM_INVALID_ARGUMENT, "the Klaviyo path would be too long");
        goto out;
    }
    rc = KM_OK;
out:
    curl_free(p);
    curl_free(q);
    free(url);
    curl_url_cleanup(u);
    return rc;
}

kmcode
kmpath_id(const char *prefix, const char *id, size_t max, const char *suffix, char **out,
          kmerr *err)
{
    *out = NULL;
    if (!id || !km_is_alnum_id(id, max))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "not a valid Klaviyo id");
    *out = km_xasprintf("%s%s%s", prefix, id, suffix ? suffix : "");
    if (!kmpath_ok(*out)) {
        free(*out);
        *out = NULL;
        return kmerr_set(err, KM_INVALID_ARGUMENT, "not a valid Klaviyo API path");
    }
    return KM_OK;
}

const char *
kmpath_next_link(json_object *doc)
{
    const char *next = kmjson_str(kmjson_path(doc, "data", "links", NULL), "next");

    if (!next)
        next = kmjson_str(kmjson_get(doc, "links"), "next");
    return next && *next ? next : NULL;
}

/* links.next as a path of ours: the configured base is stripped; a link anywhere else is
 * refused (the key must never travel to another host). */
char *
kmpath_next(const char *base, json_object *doc, int *bad)
{
    const char *s = kmpath_next_link(doc);
    size_t      n = strlen(base);

    *bad = 0;
    if (!s)
        return NULL;
    if (strncasecmp(s, base, n) != 0 || s[n] != '/' || !kmpath_ok(s + n)) {
        *bad = 1;
        return NULL;
    }
    return km_xstrdup(s + n);
}

char *
kmpath_cursor(json_object *doc)
{
    const char *next = kmpath_next_link(doc);
    CURLU      *u = NULL;
    char       *q = NULL, *cursor = NULL;
    const char *p;

    if (!next)
        return NULL;
    u = curl_url();
    /* an absolute link replaces the parse base; a relative one is resolved against it */
    if (!u || curl_url_set(u, CURLUPART_URL, PARSE_BASE "/", 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, next, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_QUERY, &q, 0) != CURLUE_OK)
        goto out;
    for (p = q; *p; p += strcspn(p, "&"), p += *p == '&') {
        size_t len = strcspn(p, "&");
        char  *raw;
        int    outlen = 0;

        if (len <= 12 || strncmp(p, "page_cursor=", 12) != 0)
            continue;
        len -= 12;
        if (len > CURSOR_MAX)
            break;
        raw = curl_easy_unescape(NULL, p + 12, (int)len, &outlen);
        if (raw && outlen > 0)
            cursor = km_xstrndup(raw, (size_t)outlen);
        curl_free(raw);
        break;
    }
out:
    curl_free(q);
    curl_url_cleanup(u);
    return cursor;
}
