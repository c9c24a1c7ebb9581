/* secret.c — opaque secrets, constant-time comparison, and redaction. */
#include "secret.h"
#include "util.h"

#include <ctype.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Shorter registered values are not redacted by value: a two-letter token would blank out
 * ordinary words. Such values are still never logged by any code path. */
#define MIN_REDACT_LEN 4
#define REDACTED "[REDACTED]"

struct kmsecret {
    char            *value;
    size_t           len;
    /* the value as it appears inside JSON text (quote, backslash, control characters and,
     * by default, '/' escaped), when that differs: log lines are redacted after they are
     * serialised. NULL when the same as value. */
    char            *in_json[2];
    struct kmsecret *next;      /* redaction registry */
};

/* The JSON-escaped form of s with `flags`, without the quotes; NULL when it equals s. */
static char *
json_form(const char *s, size_t len, int flags)
{
    json_object *o = json_object_new_string_len(s, (int)len);
    const char  *t = json_object_to_json_string_ext(o, flags);
    size_t       n = strlen(t);
    char        *res = NULL;

    if (n >= 2 && (n - 2 != len || memcmp(t + 1, s, len) != 0))
        res = km_xstrndup(t + 1, n - 2);
    json_object_put(o);
    return res;
}

static void
wipe_free(char *p)
{
    if (!p)
        return;
    /* volatile so the wipe is not optimised away */
    for (volatile char *q = p; *q; q++)
        *q = 0;
    free(p);
}

/* The registry is a list that only kmsecret_new/free touch (under reg_lock). What redaction
 * reads is an immutable snapshot of it — every registered form to hide, longest first — made
 * anew on each change and swapped in; a reader holds a reference while it scans, so scanning a
 * log line never waits for a writer nor blocks one, and the lock around the pointer swap and
 * the reference count is held for a few instructions only. */
struct snap {
    int     refs;               /* under snap_lock */
    size_t  n;
    char  **form;               /* values and their JSON forms to hide (each wiped on free) */
    size_t *len;
    unsigned char first[256];   /* 1 for a byte that begins one of the forms */
};

static pthread_mutex_t   reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kmsecret  *reg_head;
static pthread_mutex_t   snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snap      *snap_cur;

static void wipe_free(char *p);

static void
snap_unref(struct snap *s)
{
    int last;

    if (!s)
        return;
    pthread_mutex_lock(&snap_lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&snap_lock);
    if (!last)
        return;
    for (size_t i = 0; i < s->n; i++)
        wipe_free(s->form[i]);
    free(s->form);
    free(s->len);
    free(s);
}

static struct snap *
snap_get(void)
{
    struct snap *s;

    pthread_mutex_lock(&snap_lock);
    s = snap_cur;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&snap_lock);
    return s;
}

static int
longer_first(const void *a, const void *b)
{
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Make the snapshot of the registry and swap it in. Call with reg_lock held. */
static void
snap_rebuild(void)
{
    struct snap *s = km_xcalloc(1, sizeof(*s)), *old;
    size_t       cap = 0;

    for (struct kmsecret *k = reg_head; k; k = k->next)
        cap += 3;
    s->form = km_xcalloc(cap ? cap : 1, sizeof(*s->form));
    s->len = km_xcalloc(cap ? cap : 1, sizeof(*s->len));
    for (struct kmsecret *k = reg_head; k; k = k->next) {
        if (k->len < MIN_REDACT_LEN)
            continue;
        s->form[s->n++] = km_xstrdup(k->value);
        for (int f = 0; f < 2; f++)
            if (k->in_json[f])
                s->form[s->n++] = km_xstrdup(k->in_json[f]);
    }
    /* the longest match wins at a position: try longer forms first */
    qsort(s->form, s->n, sizeof(*s->form), longer_first);
    for (size_t i = 0; i < s->n; i++) {
        s->len[i] = strlen(s->form[i]);
        s->first[(unsigned char)s->form[i][0]] = 1;
    }
    s->refs = 1;                /* the registry's own reference */
    pthread_mutex_lock(&snap_lock);
    old = snap_cur;
    snap_cur = s;
    pthread_mutex_unlock(&snap_lock);
    snap_unref(old);
}

kmsecret *
kmsecret_new(const char *value)
{
    kmsecret *s = km_xcalloc(1, sizeof(*s));

    s->value = km_xstrdup(value);
    s->len = strlen(value);
    s->in_json[0] = json_form(value, s->len, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    s->in_json[1] = json_form(value, s->len, JSON_C_TO_STRING_PLAIN);
    pthread_mutex_lock(&reg_lock);
    s->next = reg_head;
    reg_head = s;
    snap_rebuild();
    pthread_mutex_unlock(&reg_lock);
    return s;
}

void
kmsecret_free(kmsecret *s)
{
    struct kmsecret **pp;

    if (!s)
        return;
    pthread_mutex_lock(&reg_lock);
    for (pp = &reg_head; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    snap_rebuild();
    pthread_mutex_unlock(&reg_lock);
    wipe_free(s->value);
    wipe_free(s->in_json[0]);
    wipe_free(s->in_json[1]);
    free(s);
}

const char *
kmsecret_reveal(const kmsecret *s)
{
    return s->value;
}

int
kmsecret_equal(const kmsecret *s, const char *candidate, size_t len)
{
    /* Walk the candidate's full length whatever happens, comparing against the secret
     * cyclically, and fold the length difference in: no early exit anywhere. */
    volatile uint8_t diff = (uint8_t)(len != s->len);
    size_t           i;

    if (s->len == 0)
        return 0;
    for (i = 0; i < len; i++)
        diff |= (uint8_t)(candidate[i] ^ s->value[i % s->len]);
    return diff == 0;
}

/* 1 when a credential pattern of pattern_at may begin with byte c: every pattern starts with
 * one of these letters (any case), so most bytes of a line need no string comparison. */
static int
pattern_may_start(unsigned char c)
{
    switch (tolower(c)) {
    case 'p': case 'k': case 'b': case 'x': case 'a':
        return 1;
    default:
        return 0;
    }
}

/* A credential-shaped token starts at text[i]: returns how many bytes of prefix to keep
 * and sets *tok_end to the end of the token to hide; 0 when nothing starts here. */
static size_t
pattern_at(const char *text, size_t i, size_t *tok_end)
{
    static const char *const labels[] = { "Klaviyo-API-Key ", "Bearer ", "X-API-Key: ",
                                          "X-API-Key:", "x-api-key=", "api_key=" };
    const char *p = text + i;
    size_t      k, j;

    if (!pattern_may_start((unsigned char)p[0]))
        return 0;
    /* pk_ followed by 6+ alphanumerics, not inside a longer word */
    if (p[0] == 'p' && strncmp(p, "pk_", 3) == 0 &&
        (i == 0 || !isalnum((unsigned char)text[i - 1]))) {
        for (j = 3; isalnum((unsigned char)p[j]); j++)
            ;
        if (j >= 3 + 6) {
            *tok_end = i + j;
            return 3;
        }
    }
    for (k = 0; k < sizeof(labels) / sizeof(labels[0]); k++) {
        size_t ll;

        /* p[0] is not NUL, so p[1] can be read; every label is longer than two bytes */
        if (tolower((unsigned char)p[0]) != tolower((unsigned char)labels[k][0]) ||
            tolower((unsigned char)p[1]) != tolower((unsigned char)labels[k][1]))
            continue;
        ll = strlen(labels[k]);
        if (strncasecmp(p, labels[k], ll) != 0)
            continue;
        for (j = ll; p[j] == ' '; j++)
            ;
        size_t start = j;
        if (strncmp(p + start, REDACTED, sizeof(REDACTED) - 1) == 0)
            continue;
        while (p[j] && !isspace((unsigned char)p[j]) && p[j] != '"' && p[j] != '\'' &&
               p[j] != ',' && p[j] != '\\' && p[j] != '&')
            j++;
        if (j > start) {
            *tok_end = i + j;
            return start;
        }
    }
    return 0;
}

static char *
redact(const char *text, int *found)
{
    size_t       n = strlen(text), cap = n + 1, out = 0, i = 0;
    char        *res = km_xmalloc(cap);
    struct snap *sn = snap_get();

    *found = 0;
    while (i < n) {
        size_t hide_to = 0, keep = 0, best = 0, run = i;

        /* copy the bytes where nothing to hide can begin in one piece (this runs over every
         * log line) */
        while (run < n && !pattern_may_start((unsigned char)text[run]) &&
               !(sn && sn->first[(unsigned char)text[run]]))
            run++;
        if (run > i) {
            if (out + (run - i) + 1 > cap) {
                cap = (out + (run - i) + 1) * 2;
                res = km_xrealloc(res, cap);
            }
            memcpy(res + out, text + i, run - i);
            out += run - i;
            i = run;
            continue;
        }

        for (size_t k = 0; sn && k < sn->n && !best; k++) {
            if (sn->len[k] <= n - i && memcmp(text + i, sn->form[k], sn->len[k]) == 0)
                best = sn->len[k];
        }
        if (best) {
            hide_to = i + best;
        } else {
            keep = pattern_at(text, i, &hide_to);
        }
        if (hide_to) {
            size_t need = out + keep + sizeof(REDACTED) + (n - hide_to) + 1;
            if (need > cap) {
                cap = need * 2;
                res = km_xrealloc(res, cap);
            }
            memcpy(res + out, text + i, keep);
            out += keep;
            memcpy(res + out, REDACTED, sizeof(REDACTED) - 1);
            out += sizeof(REDACTED) - 1;
            i = hide_to;
            *found = 1;
            continue;
        }
        if (out + 2 > cap) {
            cap *= 2;
            res = km_xrealloc(res, cap);
        }
        res[out++] = text[i++];
    }
    snap_unref(sn);
    res[out] = '\0';
    return res;
}

char *
kmsecret_redact(const char *text)
{
    int found;

    return redact(text, &found);
}

int
kmsecret_leaks(const char *text)
{
    int   found;
    char *r = redact(text, &found);

    free(r);
    return found;
}
