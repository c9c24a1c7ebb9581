/* cache.c — the client's Klaviyo response cache: keys, reads (fresh or stale), writes, and
 * failures shared with waiters, over the shared store.
 */
#include "cache.h"

#include "json.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL_TTL_S 1   /* a shared failure is for the requests waiting now */

int
kmcache_key(const char *revision, int ttl_s, const char *acct, const char *method,
            const char *path, const char *body, char *out, size_t size)
{
    uint64_t    h = KM_FNV64_INIT;
    const char *rev = revision ? revision : "";

    out[0] = '\0';
    if (ttl_s <= 0)
        return 0;
    /* the revision shapes the answer, so it is part of what is asked */
    h = km_fnv1a64(h, rev, strlen(rev) + 1);
    h = km_fnv1a64(h, method, strlen(method) + 1);
    h = km_fnv1a64(h, path, strlen(path) + 1);
    if (body)
        h = km_fnv1a64(h, body, strlen(body));
    snprintf(out, size, "c:%s:%016llx", acct, (unsigned long long)h);
    return 1;
}

size_t
kmcache_lookup(kmstore *st, const char *key, int want_stale, json_object **doc,
               int64_t *age_ms)
{
    char   *body = NULL;
    size_t  len = 0;
    int     fresh = 0;
    kmerr   e = { 0 };
    kmcode  rc;
    size_t  found = 0;

    *doc = NULL;
    if (!key[0])
        return 0;
    rc = kmstore_cache_get(st, key, &body, &len, age_ms, &fresh, &e);
    if (rc == KM_OK && (fresh || want_stale)) {
        if (kmjson_parse(body, len, KM_UPSTREAM_ERROR, doc, NULL) == KM_OK &&
            json_object_is_type(*doc, json_type_object))
            found = len;
        else {
            json_object_put(*doc);
            *doc = NULL;
        }
    } else if (rc != KM_OK && rc != KM_NOT_FOUND) {
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "cache read failed: %s", e.msg);
    }
    free(body);
    kmerr_clear(&e);
    return found;
}

int
kmcache_fresh(kmstore *st, const char *key)
{
    char   *val = NULL;
    size_t  len = 0;
    int64_t age = 0;
    int     fresh = 0;
    kmerr   e = { 0 };
    kmcode  rc;

    if (!key[0])
        return 0;
    rc = kmstore_cache_get(st, key, &val, &len, &age, &fresh, &e);
    free(val);
    kmerr_clear(&e);
    return rc == KM_OK && fresh;
}

void
kmcache_put(kmstore *st, const char *key, const char *body, size_t len, int ttl_s)
{
    kmerr e = { 0 };

    if (!key[0])
        return;
    if (kmstore_cache_put(st, key, body, len, ttl_s, &e) != KM_OK)
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "cache write failed: %s", e.msg);
    kmerr_clear(&e);
}

/* Stored as {code, message, retry_after_s, stale} just before the fetcher releases its
 * marker (defect: identical failing calls were serialized, each waiter fetching again after
 * the one before it failed). */
void
kmcache_share_failure(kmstore *st, const char *failkey, const kmerr *e, kmcode rc, int stale)
{
    json_object *o;
    const char  *text;
    kmerr        pe = { 0 };

    if (!failkey[0])
        return;
    o = json_object_new_object();
    json_object_object_add(o, "code", json_object_new_string(kmerr_name(rc)));
    json_object_object_add(o, "message", json_object_new_string(e->msg));
    json_object_object_add(o, "retry_after_s", json_object_new_int(e->retry_after_s));
    json_object_object_add(o, "stale", json_object_new_boolean(stale));
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    if (kmstore_cache_put(st, failkey, text, strlen(text), FAIL_TTL_S, &pe) != KM_OK)
        kmlogf(KMLOG_WARN, "klaviyo_cache_unavailable", "sharing a failure failed: %s", pe.msg);
    kmerr_clear(&pe);
    json_object_put(o);
}

int
kmcache_shared_failure(kmstore *st, const char *failkey, int64_t since, int64_t now, kmerr *e,
                       int *stale)
{
    char        *body = NULL;
    size_t       len = 0;
    int64_t      age_ms = 0;
    int          fresh = 0, found = 0;
    json_object *o = NULL;
    kmerr        ge = { 0 };
    kmcode       code;
    const char  *msg;

    if (!failkey[0] || since == 0 ||
        kmstore_cache_get(st, failkey, &body, &len, &age_ms, &fresh, &ge) != KM_OK)
        goto out;
    if (now - age_ms < since)
        goto out;  /* an earlier failure: not the one this request waited for */
    if (kmjson_parse(body, len, KM_UPSTREAM_ERROR, &o, NULL) != KM_OK)
        goto out;
    code = kmerr_from_name(kmjson_str(o, "code"));
    msg = kmjson_str(o, "message");
    if (code == KM_CODE_COUNT || code == KM_OK || !msg)
        goto out;
    kmerr_set(e, code, "%s", msg);
    e->retry_after_s = (int)kmjson_num(o, "retry_after_s", 0);
    *stale = json_object_get_boolean(kmjson_get(o, "stale"));
    found = 1;
out:
    json_object_put(o);
    free(body);
    kmerr_clear(&ge);
    return found;
}
