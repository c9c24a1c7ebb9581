/* answers.c — answer cache entries (see answers.h).
 *
 * Entry text: "KMANS1\n" canon "\n" head "\n" data warnings summary, where head is a compact
 * JSON object {"d":n,"w":n,"s":n|-1,"r":responses,"x":expires,"account":..,"period":..,
 * "currency":..} giving the byte lengths of the three JSON texts that follow it and the
 * wall-clock ms at which the entry stops being fresh.
 */
#include "answers.h"
#include "buf.h"
#include "json.h"
#include "reg.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "KMANS1\n"

/* --- keys --------------------------------------------------------------------------- */

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* v in canonical form: object keys sorted, no space. Arrays keep their order. */
static void
canonical(kmbuf *b, json_object *v, int top)
{
    if (json_object_is_type(v, json_type_object)) {
        size_t       n = (size_t)json_object_object_length(v), i = 0, out = 0;
        const char **names = km_xcalloc(n + 1, sizeof(*names));

        json_object_object_foreach(v, k, val) {
            (void)val;
            /* the account and the window are named by the key's own fields */
            if (top && (strcmp(k, "account") == 0 || strcmp(k, "timeframe") == 0 ||
                        strcmp(k, "start_date") == 0 || strcmp(k, "end_date") == 0))
                continue;
            names[i++] = k;
        }
        n = i;
        qsort(names, n, sizeof(*names), cmp_names);
        kmbuf_append(b, "{", 1);
        for (i = 0; i < n; i++) {
            json_object *name = json_object_new_string(names[i]);

            if (out++ > 0)
                kmbuf_append(b, ",", 1);
            kmbuf_appendf(b, "%s:", kmjson_text(name));
            json_object_put(name);
            canonical(b, json_object_object_get(v, names[i]), 0);
        }
        kmbuf_append(b, "}", 1);
        free(names);
    } else if (json_object_is_type(v, json_type_array)) {
        kmbuf_append(b, "[", 1);
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            if (i > 0)
                kmbuf_append(b, ",", 1);
            canonical(b, json_object_array_get_idx(v, i), 0);
        }
        kmbuf_append(b, "]", 1);
    } else if (v) {
        kmbuf_appendf(b, "%s", kmjson_text(v));
    } else {
        kmbuf_append(b, "null", 4);
    }
}

char *
kmans_canon(const struct kmtool *tool, json_object *args, int model_view, const char *account,
            kmday today, const kmrange *window, const char *revision, int demo)
{
    kmbuf b;
    char  d[11], s[11], e[11];

    kmdate_format(today, d);
    kmbuf_init(&b, 0);
    kmbuf_appendf(&b, "%s %s %s %s %s %s", model_view ? "model" : "rest", tool->name,
                  account ? account : "-", d, revision, demo ? "demo" : "live");
    if (window) {
        kmdate_format(window->start, s);
        kmdate_format(window->end, e);
        kmbuf_appendf(&b, " %s..%s", s, e);
    }
    kmbuf_append(&b, " ", 1);
    canonical(&b, args, 1);
    return kmbuf_take(&b, NULL);
}

char *
kmans_key(const char *canon)
{
    size_t   n = strlen(canon);
    /* two FNV-1a runs from different offsets: 128 bits; the entry keeps the text anyway */
    uint64_t h1 = km_fnv1a64(0xcbf29ce484222325ULL, canon, n);
    uint64_t h2 = km_fnv1a64(0x84222325cbf29ce4ULL ^ (uint64_t)n, canon, n);

    return km_xasprintf(KMANS_PREFIX "%016llx%016llx", (unsigned long long)h1,
                        (unsigned long long)h2);
}

/* --- entries ------------------------------------------------------------------------ */

char *
kmans_pack(const char *canon, json_object *envelope, int responses, int64_t expires_ms,
           size_t *len)
{
    json_object *meta = kmjson_get(envelope, "metadata");
    json_object *head = json_object_new_object();
    json_object *sum = kmjson_get(envelope, "summary");
    const char  *data = kmjson_text(kmjson_get(envelope, "data"));
    char        *data_copy = km_xstrdup(data);      /* the texts below reuse json-c's buffer */
    char        *warn_copy = km_xstrdup(kmjson_text(kmjson_get(envelope, "warnings")));
    char        *sum_copy = sum ? km_xstrdup(kmjson_text(sum)) : NULL;
    kmbuf        b;

    json_object_object_add(head, "d", json_object_new_int64((int64_t)strlen(data_copy)));
    json_object_object_add(head, "w", json_object_new_int64((int64_t)strlen(warn_copy)));
    json_object_object_add(head, "s",
                           json_object_new_int64(sum_copy ? (int64_t)strlen(sum_copy) : -1));
    json_object_object_add(head, "r", json_object_new_int(responses));
    json_object_object_add(head, "x", json_object_new_int64(expires_ms));
    json_object_object_add(head, "account", json_object_get(kmjson_get(meta, "account")));
    json_object_object_add(head, "period", json_object_get(kmjson_get(meta, "period")));
    if (kmjson_get(meta, "currency"))
        json_object_object_add(head, "currency", json_object_get(kmjson_get(meta, "currency")));
    kmbuf_init(&b, 0);
    kmbuf_appendf(&b, MAGIC "%s\n%s\n", canon, kmjson_text(head));
    kmbuf_append(&b, data_copy, strlen(data_copy));
    kmbuf_append(&b, warn_copy, strlen(warn_copy));
    if (sum_copy)
        kmbuf_append(&b, sum_copy, strlen(sum_copy));
    json_object_put(head);
    free(data_copy);
    free(warn_copy);
    free(sum_copy);
    return kmbuf_take(&b, len);
}

int
kmans_parse(const char *text, size_t len, const char *canon, kmans_entry *e)
{
    size_t      n = strlen(canon), mlen = strlen(MAGIC);
    const char *p = text, *end = text + len, *nl;
    int64_t     d, w, s;

    memset(e, 0, sizeof(*e));
    if (len < mlen + n + 2 || memcmp(p, MAGIC, mlen) != 0)
        return 0;
    p += mlen;
    if (memcmp(p, canon, n) != 0 || p[n] != '\n')
        return 0;
    p += n + 1;
    nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || kmjson_parse(p, (size_t)(nl - p), KM_INTERNAL_ERROR, &e->head, NULL) != KM_OK)
        return 0;
    p = nl + 1;
    d = (int64_t)kmjson_num(e->head, "d", -1);
    w = (int64_t)kmjson_num(e->head, "w", -1);
    s = (int64_t)kmjson_num(e->head, "s", -1);
    if (d <= 0 || w <= 0 || d + w + (s > 0 ? s : 0) != (int64_t)(end - p)) {
        kmans_entry_clear(e);
        return 0;
    }
    e->expires_ms = (int64_t)kmjson_num(e->head, "x", 0);
    e->data = p;
    e->data_len = (size_t)d;
    e->warnings = p + d;
    e->warnings_len = (size_t)w;
    if (s > 0) {
        e->summary = p + d + w;
        e->summary_len = (size_t)s;
    }
    return 1;
}

void
kmans_entry_clear(kmans_entry *e)
{
    json_object_put(e->head);
    memset(e, 0, sizeof(*e));
}

char *
kmans_render(const kmans_entry *e, const char *revision, double latency_ms, int budget,
             size_t *len)
{
    json_object *meta = json_object_new_object();
    json_object *account = kmjson_get(e->head, "account");
    kmbuf        b;

    /* the order and content of svc.c's metadata */
    json_object_object_add(meta, "account", json_object_get(account));
    json_object_object_add(meta, "period", json_object_get(kmjson_get(e->head, "period")));
    json_object_object_add(meta, "revision", json_object_new_string(revision));
    json_object_object_add(meta, "latency_ms", kmjson_double(kmjson_round(latency_ms, 1)));
    if (account) {
        if (kmjson_get(e->head, "currency"))
            json_object_object_add(meta, "currency",
                                   json_object_get(kmjson_get(e->head, "currency")));
        if (budget >= 0)
            json_object_object_add(meta, "report_budget_remaining", json_object_new_int(budget));
        json_object_object_add(meta, "klaviyo_calls", json_object_new_int(0));
        json_object_object_add(meta, "cache_hits",
                               json_object_new_int((int)kmjson_num(e->head, "r", 0)));
    }
    kmbuf_init(&b, 0);
    kmbuf_append(&b, "{\"data\":", 8);
    kmbuf_append(&b, e->data, e->data_len);
    kmbuf_appendf(&b, ",\"metadata\":%s,\"warnings\":", kmjson_text(meta));
    kmbuf_append(&b, e->warnings, e->warnings_len);
    if (e->summary) {
        kmbuf_append(&b, ",\"summary\":", 11);
        kmbuf_append(&b, e->summary, e->summary_len);
    }
    kmbuf_append(&b, "}", 1);
    json_object_put(meta);
    return kmbuf_take(&b, len);
}

struct kmans_share {
    char        *before, *after;    /* the text before and after the metadata's value */
    json_object *meta;              /* the metadata, latency_ms set per call; NULL: none */
};

kmans_share *
kmans_share_new(json_object *env)
{
    kmans_share *sh = km_xcalloc(1, sizeof(*sh));
    json_object *meta = kmjson_get(env, "metadata");
    kmbuf        b;
    int          responses, first = 1;

    if (!json_object_is_type(meta, json_type_object)) {
        sh->before = km_xstrdup(kmjson_text(env));
        return sh;
    }
    responses = (int)kmjson_num(meta, "klaviyo_calls", 0) + (int)kmjson_num(meta, "cache_hits", 0);
    sh->meta = json_object_new_object();
    json_object_object_foreach(meta, mk, mv) {
        if (strcmp(mk, "klaviyo_calls") == 0)
            json_object_object_add(sh->meta, mk, json_object_new_int(0));
        else if (strcmp(mk, "cache_hits") == 0)
            json_object_object_add(sh->meta, mk, json_object_new_int(responses));
        else
            json_object_object_add(sh->meta, mk, kmjson_copy(mv));
    }
    /* the same keys in the same order, as kmjson_text writes them: only metadata differs */
    kmbuf_init(&b, 0);
    kmbuf_append(&b, "{", 1);
    json_object_object_foreach(env, k, v) {
        json_object *key = json_object_new_string(k);

        if (!first)
            kmbuf_append(&b, ",", 1);
        first = 0;
        kmbuf_appendf(&b, "%s:", kmjson_text(key));
        json_object_put(key);
        if (strcmp(k, "metadata") == 0) {
            sh->before = kmbuf_take(&b, NULL);
            kmbuf_init(&b, 0);
        } else {
            kmbuf_appendf(&b, "%s", kmjson_text(v));
        }
    }
    kmbuf_append(&b, "}", 1);
    sh->after = kmbuf_take(&b, NULL);
    return sh;
}

char *
kmans_share_text(kmans_share *sh, double latency_ms, size_t *len)
{
    kmbuf b;

    if (!sh->meta) {
        *len = strlen(sh->before);
        return km_xstrdup(sh->before);
    }
    /* latency_ms keeps its place: json-c replaces a key's value where it stands */
    json_object_object_add(sh->meta, "latency_ms", kmjson_double(kmjson_round(latency_ms, 1)));
    kmbuf_init(&b, 0);
    kmbuf_appendf(&b, "%s%s%s", sh->before, kmjson_text(sh->meta), sh->after);
    return kmbuf_take(&b, len);
}

void
kmans_share_free(kmans_share *sh)
{
    if (!sh)
        return;
    free(sh->before);
    free(sh->after);
    json_object_put(sh->meta);
    free(sh);
}
