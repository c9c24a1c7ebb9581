/* cache.h — the client's Klaviyo response cache in the shared store: keys, fresh and stale
 * reads, writes, and the failures a fetcher leaves for the requests that waited on it.
 *
 * Owns:    documents returned through *doc belong to the caller (json_object_put); the store
 *          is borrowed.
 * Threads: safe from any thread, as the store is.
 * Fails:   never: a store that cannot be read or written is a miss (logged as a warning,
 *          "klaviyo_cache_unavailable"), never a reason to fail a request.
 *
 * Keys: "c:<account>:<FNV-1a 64 of revision, method, path, body>"; the in-flight marker of
 * a key is "l:" + key (kl.c), its shared failure "f:" + key (here).
 */
#ifndef KM_CACHE_H
#define KM_CACHE_H

#include "err.h"
#include "store.h"
#include "tier.h"

#include <json-c/json.h>
#include <stdint.h>

#define KMCACHE_KEY_MAX (KMTIER_BUCKET_MAX + 24)   /* a key; 2 more with "l:" or "f:" */

/* The key of a request into out[size]: 1, or 0 with out empty when caching is off
 * (ttl_s <= 0). `body` is a POST's text or NULL; revision may be NULL (""). */
int kmcache_key(const char *revision, int ttl_s, const char *acct, const char *method,
                const char *path, const char *body, char *out, size_t size);

/* A fresh entry (want_stale 0) or any still kept (want_stale 1), parsed as a JSON object:
 * the size of the text parsed (> 0) with *doc (new) and *age_ms, or 0 with *doc NULL. */
size_t kmcache_lookup(kmstore *st, const char *key, int want_stale, json_object **doc,
                      int64_t *age_ms);

/* 1 when a fresh entry is kept under key (reads only). */
int kmcache_fresh(kmstore *st, const char *key);

/* Store a 2xx body under key for ttl_s seconds. */
void kmcache_put(kmstore *st, const char *key, const char *body, size_t len, int ttl_s);

/* Leave a final failure (code, message, retry_after_s, and whether an expired answer may
 * stand in for it) under failkey for one second, for the requests waiting on the fetcher. */
void kmcache_share_failure(kmstore *st, const char *failkey, const kmerr *e, kmcode rc,
                           int stale);

/* The failure left under failkey by a fetcher this request has waited on since `since`
 * (km_now_ms time; an older one is not it): 1 with *e filled and *stale set, else 0. */
int kmcache_shared_failure(kmstore *st, const char *failkey, int64_t since, int64_t now,
                           kmerr *e, int *stale);

#endif
