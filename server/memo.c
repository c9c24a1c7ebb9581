/* memo.c — recent answers by call (see memo.h): a chained hash table with lazy expiry. */
#include "memo.h"
#include "buf.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define NBUCKETS 1024      /* a power of two */

struct entry {
    struct entry *next;
    uint64_t      hash;
    char         *key;
    char         *text;      /* the envelope with the latency value cut out */
    size_t        at;        /* where the latency value was */
    size_t        len;       /* of text */
    int64_t       expires_ms;
};

struct kmmemo {
    struct entry *buckets[NBUCKETS];
    size_t        count, bytes;
    size_t        max_entries, max_bytes;
};

kmmemo *
kmmemo_new(size_t max_entries, size_t max_bytes)
{
    kmmemo *m = km_xcalloc(1, sizeof(*m));

    m->max_entries = max_entries;
    m->max_bytes = max_bytes;
    return m;
}

static void
entry_free(kmmemo *m, struct entry *e)
{
    m->count--;
    m->bytes -= e->len + strlen(e->key);
    free(e->key);
    free(e->text);
    free(e);
}

void
kmmemo_free(kmmemo *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < NBUCKETS; i++) {
        while (m->buckets[i]) {
            struct entry *e = m->buckets[i];
            m->buckets[i] = e->next;
            entry_free(m, e);
        }
    }
    free(m);
}

size_t
kmmemo_count(const kmmemo *m)
{
    return m->count;
}

/* --- keys ------------------------------------------------------------------------------ */

static int
cmp_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void
canonical(kmbuf *b, json_object *v)
{
    if (json_object_is_type(v, json_type_object)) {
        size_t       n = (size_t)json_object_object_length(v), i = 0;
        const char **keys = km_xcalloc(n + 1, sizeof(*keys));

        json_object_object_foreach(v, k, val) {
            (void)val;
            keys[i++] = k;
        }
        qsort(keys, n, sizeof(*keys), cmp_keys);
        kmbuf_append(b, "{", 1);
        for (i = 0; i < n; i++) {
            json_object *key = json_object_new_string(keys[i]);
            if (i > 0)
                kmbuf_append(b, ",", 1);
            kmbuf_appendf(b, "%s:", json_object_to_json_string_ext(key, JSON_C_TO_STRING_PLAIN));
            json_object_put(key);
            canonical(b, json_object_object_get(v, keys[i]));
        }
        kmbuf_append(b, "}", 1);
        free(keys);
    } else if (json_object_is_type(v, json_type_array)) {
        kmbuf_append(b, "[", 1);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            if (i > 0)
                kmbuf_append(b, ",", 1);
            canonical(b, json_object_array_get_idx(v, i));
        }
        kmbuf_append(b, "]", 1);
    } else {
        kmbuf_appendf(b, "%s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

char *
kmmemo_key(const char *tool, json_object *args)
{
    kmbuf b;

    kmbuf_init(&b, 0);
    kmbuf_appendf(&b, "%s\n", tool);
    canonical(&b, args);
    return kmbuf_take(&b, NULL);
}

/* --- lookups --------------------------------------------------------------------------- */

static struct entry **
slot(kmmemo *m, const char *key, uint64_t h)
{
    struct entry **pp = &m->buckets[h & (NBUCKETS - 1)];

    while (*pp && !((*pp)->hash == h && strcmp((*pp)->key, key) == 0))
        pp = &(*pp)->next;
    return pp;
}

int
kmmemo_get(kmmemo *m, const char *key, int64_t now_ms, const char **before,
           size_t *before_len, const char **after, size_t *after_len)
{
    uint64_t       h = km_fnv1a64(KM_FNV64_INIT, key, strlen(key));
    struct entry **pp = slot(m, key, h);
    struct entry  *e = *pp;

    if (!e)
        return 0;
    if (e->expires_ms <= now_ms) {
        *pp = e->next;
        entry_free(m, e);
        return 0;
    }
    *before = e->text;
    *before_len = e->at;
    *after = e->text + e->at;
    *after_len = e->len - e->at;
    return 1;
}

/* Drop every expired entry. */
static void
sweep(kmmemo *m, int64_t now_ms)
{
    for (size_t i = 0; i < NBUCKETS; i++) {
        struct entry **pp = &m->buckets[i];
        while (*pp) {
            struct entry *e = *pp;
            if (e->expires_ms <= now_ms) {
                *pp = e->next;
                entry_free(m, e);
            } else {
                pp = &e->next;
            }
        }
    }
}

void
kmmemo_put(kmmemo *m, const char *key, const char *text, size_t len, size_t at, size_t skip,
           int64_t now_ms, int64_t expires_ms)
{
    uint64_t       h = km_fnv1a64(KM_FNV64_INIT, key, strlen(key));
    struct entry **pp = slot(m, key, h);
    struct entry  *e;
    size_t         need;

    if (at + skip > len || expires_ms <= now_ms)
        return;
    if (*pp) {
        e = *pp;
        *pp = e->next;
        entry_free(m, e);
    }
    need = len - skip + strlen(key);
    if (m->count >= m->max_entries || m->bytes + need > m->max_bytes)
        sweep(m, now_ms);
    if (m->count >= m->max_entries || m->bytes + need > m->max_bytes)
        return;
    e = km_xcalloc(1, sizeof(*e));
    e->hash = h;
    e->key = km_xstrdup(key);
    e->len = len - skip;
    e->text = km_xmalloc(e->len + 1);
    memcpy(e->text, text, at);
    memcpy(e->text + at, text + at + skip, len - at - skip);
    e->text[e->len] = '\0';
    e->at = at;
    e->expires_ms = expires_ms;
    pp = slot(m, key, h);
    e->next = *pp;
    *pp = e;
    m->count++;
    m->bytes += need;
}
