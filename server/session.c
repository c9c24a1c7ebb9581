/* session.c — MCP sessions in the shared store (see session.h). */
#include "session.h"
#include "json.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define KEY_PREFIX "mcp-session:"
#define CANCEL_TTL_S 600      /* a cancellation outlives any call it can still reach */

int
kmsess_id_ok(const char *id)
{
    return id && strlen(id) == KMSESS_ID_LEN && strspn(id, "0123456789abcdef") == KMSESS_ID_LEN;
}

static int
random_hex(char *out, size_t bytes)
{
    unsigned char b[32];

    if (bytes > sizeof(b) || getrandom(b, bytes, 0) != (ssize_t)bytes)
        return -1;
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* A salted fingerprint of the credential (never the credential itself). */
static void
fingerprint(const char *salt, const char *cred, size_t len, char out[33])
{
    uint64_t a = km_fnv1a64(KM_FNV64_INIT, salt, strlen(salt));
    uint64_t b;

    a = km_fnv1a64(a, cred ? cred : "", cred ? len : 0);
    b = km_fnv1a64(a ^ 0x5bd1e9955bd1e995ULL, salt, strlen(salt));
    b = km_fnv1a64(b, cred ? cred : "", cred ? len : 0);
    snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, a, b);
}

/* Constant-time equality of two NUL-terminated strings of the same expected length. */
static int
same(const char *a, const char *b)
{
    size_t        na = strlen(a), nb = strlen(b);
    unsigned char d = na != nb;

    for (size_t i = 0; i < na && i < nb; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static kmcode
put(kmstore *st, const char *id, json_object *rec, int idle_s, kmerr *err)
{
    char        key[sizeof(KEY_PREFIX) + KMSESS_ID_LEN];
    const char *text = kmjson_text(rec);

    snprintf(key, sizeof(key), KEY_PREFIX "%s", id);
    return kmstore_cache_put(st, key, text, strlen(text), idle_s, err);
}

kmcode
kmsess_new(kmstore *st, int max_sessions, int idle_s, const char *version, const char *cred,
           size_t cred_len, char id[KMSESS_ID_LEN + 1], kmerr *err)
{
    kmlimit      lim = { 1, { { (int64_t)idle_s * 1000, max_sessions } } };
    int64_t      wait_ms = 0;
    char         salt[33], fp[33];
    json_object *rec;
    kmcode       rc;

    rc = kmstore_take(st, "mcp-sessions", &lim, &wait_ms, err);
    if (rc == KM_RATE_LIMITED)
        return kmerr_set(err, KM_RATE_LIMITED, "too many MCP sessions were started recently "
                         "(MCP_MAX_SESSIONS=%d per %d s); retry in %" PRId64 " s",
                         max_sessions, idle_s, (wait_ms + 999) / 1000);
    if (rc != KM_OK)
        return rc;
    if (random_hex(id, KMSESS_ID_LEN / 2) != 0 || random_hex(salt, 16) != 0)
        return kmerr_set(err, KM_INTERNAL_ERROR, "no randomness for a session id");
    fingerprint(salt, cred, cred_len, fp);
    rec = json_object_new_object();
    json_object_object_add(rec, "version", json_object_new_string(version));
    json_object_object_add(rec, "salt", json_object_new_string(salt));
    json_object_object_add(rec, "fp", json_object_new_string(fp));
    json_object_object_add(rec, "created", json_object_new_int64(km_wall_ms()));
    rc = put(st, id, rec, idle_s, err);
    json_object_put(rec);
    if (rc != KM_OK)
        return kmerr_set(err, KM_INTERNAL_ERROR, "the session cannot be recorded");
    return KM_OK;
}

/* The live record of `id` usable with this credential, not older than max_age_s (0: any
 * age), or NULL (KM_NOT_FOUND in err). */
static json_object *
lookup(kmstore *st, const char *id, const char *cred, size_t cred_len, int max_age_s,
       kmerr *err)
{
    char         key[sizeof(KEY_PREFIX) + KMSESS_ID_LEN], fp[33];
    char        *body = NULL;
    size_t       len = 0;
    int64_t      age = 0;
    int          fresh = 0;
    json_object *rec = NULL;
    kmerr        e = { 0 };
    const char  *salt, *want;

    if (!kmsess_id_ok(id))
        goto missing;
    snprintf(key, sizeof(key), KEY_PREFIX "%s", id);
    if (kmstore_cache_get(st, key, &body, &len, &age, &fresh, &e) != KM_OK || !fresh)
        goto missing;
    if (kmjson_parse(body, len, KM_INTERNAL_ERROR, &rec, &e) != KM_OK)
        goto missing;
    salt = kmjson_str(rec, "salt");
    want = kmjson_str(rec, "fp");
    if (!salt || !want || !kmjson_str(rec, "version"))
        goto missing;     /* a tombstone, or not ours */
    if (max_age_s > 0 &&
        km_wall_ms() - (int64_t)kmjson_num(rec, "created", 0) > (int64_t)max_age_s * 1000)
        goto missing;     /* too old, however busy: sessions are bounded in number */
    fingerprint(salt, cred, cred_len, fp);
    if (!same(fp, want))
        goto missing;
    free(body);
    kmerr_clear(&e);
    return rec;
missing:
    free(body);
    json_object_put(rec);
    kmerr_clear(&e);
    kmerr_set(err, KM_NOT_FOUND, "session not found: it ended, expired or belongs to another "
              "credential; send initialize again");
    return NULL;
}

kmcode
kmsess_use(kmstore *st, int idle_s, int max_age_s, const char *id, const char *cred,
           size_t cred_len, char *version, size_t vlen, kmerr *err)
{
    json_object *rec = lookup(st, id, cred, cred_len, max_age_s, err);
    kmerr        e = { 0 };

    if (!rec)
        return KM_NOT_FOUND;
    km_strlcpy(version, kmjson_str(rec, "version"), vlen);
    /* each use starts a new idle period; a failed refresh only shortens it */
    put(st, id, rec, idle_s, &e);
    kmerr_clear(&e);
    json_object_put(rec);
    return KM_OK;
}

kmcode
kmsess_end(kmstore *st, int idle_s, const char *id, const char *cred, size_t cred_len,
           kmerr *err)
{
    json_object *rec = lookup(st, id, cred, cred_len, 0, err);
    json_object *tomb;
    kmcode       rc;

    if (!rec)
        return KM_NOT_FOUND;
    json_object_put(rec);
    tomb = json_object_new_object();
    json_object_object_add(tomb, "ended", json_object_new_boolean(1));
    rc = put(st, id, tomb, idle_s, err);
    json_object_put(tomb);
    return rc;
}

static void
cancel_key(const char *sid, json_object *rid, char *key, size_t n)
{
    const char *text = json_object_to_json_string_ext(rid, JSON_C_TO_STRING_PLAIN);

    snprintf(key, n, "mcp-cancel:%s:%016" PRIx64, sid, km_fnv1a64(KM_FNV64_INIT, text,
                                                                  strlen(text)));
}

void
kmsess_cancel(kmstore *st, const char *sid, json_object *rid)
{
    char  key[96];
    kmerr e = { 0 };

    if (!kmsess_id_ok(sid) || !rid)
        return;
    cancel_key(sid, rid, key, sizeof(key));
    kmstore_cache_put(st, key, "1", 1, CANCEL_TTL_S, &e);
    kmerr_clear(&e);
}

int
kmsess_cancelled(kmstore *st, const char *sid, json_object *rid)
{
    char    key[96], *body = NULL;
    size_t  len = 0;
    int64_t age = 0;
    int     fresh = 0, found;
    kmerr   e = { 0 };

    if (!kmsess_id_ok(sid) || !rid)
        return 0;
    cancel_key(sid, rid, key, sizeof(key));
    found = kmstore_cache_get(st, key, &body, &len, &age, &fresh, &e) == KM_OK && fresh;
    free(body);
    kmerr_clear(&e);
    return found;
}
