/* answers.h — the answer cache's entries: the key of a call and a finished answer kept as
 * text, so an identical call is answered without running its tool again.
 *
 * Owns:    every string returned is new and the caller frees it (free()); kmans_entry
 *          pointers borrow from the entry text given to kmans_parse, which must outlive them.
 * Threads: no state; safe from any thread, the worker's loop thread included.
 * Fails:   kmans_parse returns 0 for text that is not an entry of this format (a store that
 *          holds something else under the key, or a hash collision): the caller treats it
 *          as a miss.
 *
 * A key names everything an answer depends on: the reader (REST or a model: shaped answers
 * and their summary differ), the account, the tool, today's date in the account's zone, the
 * revision, whether the answer is demo data, and the arguments in canonical form (object keys
 * sorted) with the window resolved — `timeframe`, `start_date` and `end_date` are replaced by
 * the dates they mean, so a preset and the explicit dates it stands for share one entry.
 * The store key is a 128-bit hash of that text; the text itself is kept in the entry and
 * compared on every read, so a collision is a miss, never someone else's answer.
 *
 * An entry keeps the envelope's parts that do not change between identical calls: `data`,
 * `warnings` and `summary` as JSON text, and the metadata's account, period and currency and
 * how many Klaviyo responses the answer was built from. kmans_render rebuilds the envelope
 * around them with what belongs to this request: its latency, the report budget now, and
 * klaviyo_calls 0 (no Klaviyo request was made) with cache_hits counting those responses.
 */
#ifndef KM_ANSWERS_H
#define KM_ANSWERS_H

#include "dates.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>

struct kmtool;

/* Store keys start with this; nothing else in the store does. */
#define KMANS_PREFIX "a:"

/* The canonical text of a call (see above). `args` is borrowed and not changed; `window`
 * is the resolved window of a date-scoped tool (NULL otherwise); `account` the resolved
 * account name (NULL for a tool without one). */
char *kmans_canon(const struct kmtool *tool, json_object *args, int model_view,
                  const char *account, kmday today, const kmrange *window,
                  const char *revision, int demo);

/* The store key of a canonical text: KMANS_PREFIX and 32 hex digits. */
char *kmans_key(const char *canon);

/* The entry of a successful envelope {"data","metadata","warnings"[,"summary"]} computed
 * for `canon` from `responses` Klaviyo responses (fetched or cached), fresh until the
 * wall-clock time expires_ms (km_wall_ms). */
char *kmans_pack(const char *canon, json_object *envelope, int responses, int64_t expires_ms,
                 size_t *len);

/* An entry read back: pieces borrowed from the entry text. */
typedef struct kmans_entry {
    const char *data, *warnings, *summary;  /* JSON text; summary NULL when absent */
    size_t      data_len, warnings_len, summary_len;
    int64_t     expires_ms;                 /* km_wall_ms time it stops being fresh; 0 unknown */
    json_object *head;                      /* account, period, currency, responses: the
                                               caller puts it (kmans_entry_clear) */
} kmans_entry;

/* Parse `text` (len bytes) as the entry of `canon`: 1 on success (e filled), else 0. */
int kmans_parse(const char *text, size_t len, const char *canon, kmans_entry *e);
void kmans_entry_clear(kmans_entry *e);

/* The envelope text of an entry for a request that arrived latency_ms ago. budget is the
 * account's report budget now (< 0: unknown, left out). The text is exactly what the service
 * would have serialised (same keys, same order, same number format). *len its length. */
char *kmans_render(const kmans_entry *e, const char *revision, double latency_ms, int budget,
                   size_t *len);

/* The envelope a call computed, prepared for the identical calls that waited for it: its
 * parts serialized once; kmans_share_text then writes it for one of them, arrived latency_ms
 * ago: in its metadata latency_ms is that call's, klaviyo_calls 0 (it made none) and
 * cache_hits counts the Klaviyo responses the answer stands on (the computing call's
 * klaviyo_calls and cache_hits), as kmans_render says them; the rest, and an envelope without
 * metadata (an error), as they are. The same text kmjson_text would give, for the cost of a
 * copy and of the small metadata. kmans_share_new borrows `env` (not changed, not kept);
 * kmans_share_free frees (NULL ok); kmans_share_text returns a new string, *len its length. */
typedef struct kmans_share kmans_share;

kmans_share *kmans_share_new(json_object *env);
char        *kmans_share_text(kmans_share *sh, double latency_ms, size_t *len);
void         kmans_share_free(kmans_share *sh);

#endif
