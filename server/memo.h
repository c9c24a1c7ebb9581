/* memo.h — a worker's memo of recent answers: an identical call repeated within a second is
 * answered on the loop thread, from memory, without waking a service thread.
 *
 * Owns:    its entries (keys and answer text); kmmemo_free releases them (NULL ok). Text
 *          returned by kmmemo_get is borrowed until the next kmmemo_put or kmmemo_free.
 * Threads: one memo per worker, used on the loop thread only.
 * Fails:   nothing fails; a full memo stores nothing more until entries expire.
 *
 * Only answers that needed no Klaviyo request (everything came from the shared cache) are
 * kept, each for at most a second (never longer than the cache TTL), so what a repeat gets is
 * what the service would have computed again from the same cache. The answer is kept in
 * two pieces around metadata.latency_ms, so a repeat reports its own (near-zero) latency, as
 * any cache hit does.
 */
#ifndef KM_MEMO_H
#define KM_MEMO_H

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kmmemo kmmemo;

/* A memo of at most max_entries answers and max_bytes of text. */
kmmemo *kmmemo_new(size_t max_entries, size_t max_bytes);
void kmmemo_free(kmmemo *m);

/* The key of a call: the tool's name and its arguments with every object's keys sorted, so
 * that the same arguments in any order give the same key. A new string (free()). */
char *kmmemo_key(const char *tool, json_object *args);

/* The answer remembered for `key` and still fresh at now_ms: 1 and its two pieces (the text
 * before the latency value and the text after it), or 0. */
int kmmemo_get(kmmemo *m, const char *key, int64_t now_ms, const char **before,
               size_t *before_len, const char **after, size_t *after_len);

/* Remember an answer until expires_ms: the envelope text `text` (len bytes) whose latency
 * value occupies [at, at + skip). Replaces an older answer for the same key. */
void kmmemo_put(kmmemo *m, const char *key, const char *text, size_t len, size_t at,
                size_t skip, int64_t now_ms, int64_t expires_ms);

/* Entries held (expired ones included until they are swept). */
size_t kmmemo_count(const kmmemo *m);

#endif
