/* schema.c — the JSON Schema validator: keyword checks, compiled patterns, validation. */
#include "schema.h"
#include "json.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- compiled schema patterns ------------------------------------------------------------ */

/* Every `pattern` is compiled once and kept until kmschema_forget. kmschema_prepare compiles
 * a schema's patterns ahead; a schema validated without it adds its patterns on first use.
 * Entries are immutable once published at the head of the list, so lookups walk it
 * without a lock; adding takes the mutex, so a pattern is compiled at most once. regexec
 * on a shared compiled pattern is thread-safe (POSIX). */
struct pattern {
    struct pattern *next;
    char           *text;
    int             ok;     /* regcomp succeeded */
    regex_t         re;
};

static _Atomic(struct pattern *) patterns;
static pthread_mutex_t           patterns_lock = PTHREAD_MUTEX_INITIALIZER;

static struct pattern *
pattern_find(struct pattern *p, const char *text)
{
    for (; p; p = p->next) {
        if (strcmp(p->text, text) == 0)
            return p;
    }
    return NULL;
}

/* The compiled form of `text`, compiling it on first use. */
static const struct pattern *
pattern_get(const char *text)
{
    struct pattern *p = pattern_find(atomic_load(&patterns), text);

    if (p)
        return p;
    pthread_mutex_lock(&patterns_lock);
    p = pattern_find(atomic_load(&patterns), text);
    if (!p) {
        p = km_xcalloc(1, sizeof(*p));
        p->text = km_xstrdup(text);
        p->ok = regcomp(&p->re, text, REG_EXTENDED | REG_NOSUB) == 0;
        p->next = atomic_load(&patterns);
        atomic_store(&patterns, p);
    }
    pthread_mutex_unlock(&patterns_lock);
    return p;
}

void
kmschema_forget(void)
{
    struct pattern *p;

    pthread_mutex_lock(&patterns_lock);
    p = atomic_exchange(&patterns, NULL);
    pthread_mutex_unlock(&patterns_lock);
    while (p) {
        struct pattern *next = p->next;

        if (p->ok)
            regfree(&p->re);
        free(p->text);
        free(p);
        p = next;
    }
}

/* --- what the validator implements ------------------------------------------------------ */

/* Keywords with no effect on a verdict. */
static const char *const annotations[] = { "$schema", "$comment", "title", "description",
                                           "default", "examples", NULL };
static const char *const type_names[] = { "null", "boolean", "object", "array", "number",
                                          "string", "integer", NULL };

static int
listed(const char *const *list, const char *word)
{
    for (; *list; list++) {
        if (strcmp(*list, word) == 0)
            return 1;
    }
    return 0;
}

static int
is_type_name(json_object *v)
{
    return json_object_is_type(v, json_type_string) &&
           listed(type_names, json_object_get_string(v));
}

/* A non-negative whole number: the value of minLength, maxItems and the like (2.0 counts,
 * as in JSON Schema). */
static int
is_count(json_object *v)
{
    double d;

    if (json_object_is_type(v, json_type_int))
        return json_object_get_int64(v) >= 0;
    if (!json_object_is_type(v, json_type_double))
        return 0;
    d = json_object_get_double(v);
    return isfinite(d) && d >= 0 && d <= 2147483647.0 && d == trunc(d);
}

static kmcode prepare(json_object *schema, const char *where, kmerr *err);

/* Is `val` a proper value for `key`? Subschemas are prepared in turn. */
static kmcode
prepare_keyword(const char *key, json_object *val, const char *where, kmerr *err)
{
    char   sub[256];
    kmcode rc;
    int    ok = 1;

    if (strcmp(key, "type") == 0) {
        if (json_object_is_type(val, json_type_array)) {
            ok = json_object_array_length(val) > 0;
            for (size_t i = 0; ok && i < json_object_array_length(val); i++)
                ok = is_type_name(json_object_array_get_idx(val, i));
        } else {
            ok = is_type_name(val);
        }
    } else if (strcmp(key, "enum") == 0) {
        ok = json_object_is_type(val, json_type_array);
    } else if (strcmp(key, "required") == 0) {
        ok = json_object_is_type(val, json_type_array);
        for (size_t i = 0; ok && i < json_object_array_length(val); i++)
            ok = json_object_is_type(json_object_array_get_idx(val, i), json_type_string);
    } else if (strcmp(key, "properties") == 0) {
        if (!json_object_is_type(val, json_type_object))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s.properties: must be an object",
                             where);
        json_object_object_foreach(val, name, ps) {
            snprintf(sub, sizeof(sub), "%s.properties.%s", where, name);
            rc = prepare(ps, sub, err);
            if (rc != KM_OK)
                return rc;
        }
    } else if (strcmp(key, "additionalProperties") == 0 || strcmp(key, "items") == 0) {
        /* additionalProperties: false is the one boolean schema the validator knows */
        if (strcmp(key, "additionalProperties") == 0 &&
            json_object_is_type(val, json_type_boolean))
            return KM_OK;
        snprintf(sub, sizeof(sub), "%s.%s", where, key);
        return prepare(val, sub, err);
    } else if (strcmp(key, "minimum") == 0 || strcmp(key, "maximum") == 0) {
        ok = json_object_is_type(val, json_type_int) ||
             json_object_is_type(val, json_type_double);
    } else if (strcmp(key, "minLength") == 0 || strcmp(key, "maxLength") == 0 ||
               strcmp(key, "minItems") == 0 || strcmp(key, "maxItems") == 0) {
        ok = is_count(val);
    } else if (strcmp(key, "uniqueItems") == 0) {
        ok = json_object_is_type(val, json_type_boolean);
    } else if (strcmp(key, "pattern") == 0) {
        if (!json_object_is_type(val, json_type_string))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s.pattern: must be a string", where);
        if (!pattern_get(json_object_get_string(val))->ok)
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s.pattern: '%.60s' is not a POSIX "
                             "extended regular expression", where, json_object_get_string(val));
    } else if (!listed(annotations, key)) {
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: unsupported keyword '%.60s'", where,
                         key);
    }
    if (!ok)
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s.%s: not a value this keyword takes",
                         where, key);
    return KM_OK;
}

static kmcode
prepare(json_object *schema, const char *where, kmerr *err)
{
    if (!json_object_is_type(schema, json_type_object))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: a schema must be an object", where);
    json_object_object_foreach(schema, key, val) {
        kmcode rc = prepare_keyword(key, val, where, err);

        if (rc != KM_OK)
            return rc;
    }
    return KM_OK;
}

kmcode
kmschema_prepare(json_object *schema, const char *where, kmerr *err)
{
    return prepare(schema, where, err);
}

/* --- validation -------------------------------------------------------------------------- */

static int
type_is(json_object *v, const char *type)
{
    enum json_type jt = json_object_get_type(v);

    if (strcmp(type, "null") == 0)
        return v == NULL || jt == json_type_null;
    if (!v)
        return 0;
    if (strcmp(type, "string") == 0)
        return jt == json_type_string;
    if (strcmp(type, "boolean") == 0)
        return jt == json_type_boolean;
    if (strcmp(type, "integer") == 0) {
        if (jt == json_type_int)
            return 1;
        if (jt == json_type_double) {
            double d = json_object_get_double(v);

            /* a whole number within long long: converting anything else is undefined (found by
             * fuzz_rest: {"limit":8.9e73}) */
            return isfinite(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0 &&
                   d == trunc(d);
        }
        return 0;
    }
    if (strcmp(type, "number") == 0)
        return jt == json_type_int || jt == json_type_double;
    if (strcmp(type, "object") == 0)
        return jt == json_type_object;
    if (strcmp(type, "array") == 0)
        return jt == json_type_array;
    return 0;
}

static const char *
json_type_word(json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null:
        return "null";
    case json_type_boolean:
        return "a boolean";
    case json_type_int:
    case json_type_double:
        return "a number";
    case json_type_string:
        return "a string";
    case json_type_array:
        return "an array";
    case json_type_object:
        return "an object";
    }
    return "a value";
}

static kmcode validate(json_object *schema, json_object *v, const char *where, kmerr *err);

static kmcode
validate_type(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    json_object *t = kmjson_get(schema, "type");
    char         want[128] = "";

    if (!t)
        return KM_OK;
    if (json_object_is_type(t, json_type_string)) {
        if (type_is(v, json_object_get_string(t)))
            return KM_OK;
        snprintf(want, sizeof(want), "%s", json_object_get_string(t));
    } else {
        for (size_t i = 0; i < json_object_array_length(t); i++) {
            const char *ty = json_object_get_string(json_object_array_get_idx(t, i));
            if (type_is(v, ty))
                return KM_OK;
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? " or " : "",
                     ty);
        }
    }
    return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: must be %s, got %s", where, want,
                     json_type_word(v));
}

/* JSON equality as JSON Schema has it: numbers by value (1 and 1.0 are equal), objects
 * whatever the order of their members, arrays item by item. */
static int
same_value(json_object *a, json_object *b)
{
    enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
    int            na = ta == json_type_int || ta == json_type_double;
    int            nb = tb == json_type_int || tb == json_type_double;

    if (na && nb && ta != tb)
        return json_object_get_double(a) == json_object_get_double(b);
    if (ta != tb)
        return 0;
    if (ta == json_type_array) {
        size_t n = json_object_array_length(a);

        if (n != json_object_array_length(b))
            return 0;
        for (size_t i = 0; i < n; i++) {
            if (!same_value(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
                return 0;
        }
        return 1;
    }
    if (ta == json_type_object) {
        if (json_object_object_length(a) != json_object_object_length(b))
            return 0;
        json_object_object_foreach(a, key, av) {
            json_object *bv = NULL;

            if (!json_object_object_get_ex(b, key, &bv) || !same_value(av, bv))
                return 0;
        }
        return 1;
    }
    return json_object_equal(a, b);     /* strings, booleans, null, two integers */
}

/* A value as a message shows it: a string's text in quotes, anything else as JSON. */
static const char *
shown(json_object *v, char *buf, size_t size)
{
    if (json_object_is_type(v, json_type_string))
        snprintf(buf, size, "'%.40s'", json_object_get_string(v));
    else
        snprintf(buf, size, "%.40s", json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    return buf;
}

static kmcode
validate_enum(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    json_object *en = kmjson_get(schema, "enum");
    char         list[512] = "", val[48];
    size_t       n;

    if (!json_object_is_type(en, json_type_array))
        return KM_OK;
    n = json_object_array_length(en);
    for (size_t i = 0; i < n; i++) {
        if (same_value(json_object_array_get_idx(en, i), v))
            return KM_OK;
    }
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(en, i);

        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 json_object_is_type(it, json_type_string) ? json_object_get_string(it)
                     : json_object_to_json_string_ext(it, JSON_C_TO_STRING_PLAIN));
    }
    return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: %s is not one of %s", where,
                     shown(v, val, sizeof(val)), list);
}

/* The length JSON Schema means: Unicode code points, not bytes (json-c holds UTF-8, where
 * every code point has exactly one byte that is not a continuation byte 10xxxxxx). */
static size_t
code_points(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static kmcode
validate_string(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    const char  *s = json_object_get_string(v);
    json_object *pat = kmjson_get(schema, "pattern");
    json_object *mn = kmjson_get(schema, "minLength");
    json_object *mx = kmjson_get(schema, "maxLength");
    size_t       len = (size_t)json_object_get_string_len(v);
    kmcode       rc;

    /* C string functions would stop at a NUL and check only what is before it
     * ("northwind\u0000xyz" served as "northwind"): no argument may hold one */
    if (memchr(s, '\0', len))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: contains a NUL character", where);

    if (mn && code_points(s, len) < (size_t)json_object_get_int(mn))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: too short", where);
    if (mx && code_points(s, len) > (size_t)json_object_get_int(mx))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: too long", where);
    rc = validate_enum(schema, v, where, err);
    if (rc != KM_OK)
        return rc;
    if (pat) {
        const struct pattern *re = pattern_get(json_object_get_string(pat));
        int                   ok;

        if (!re->ok)
            return kmerr_set(err, KM_INTERNAL_ERROR, "%s: bad schema pattern", where);
        ok = regexec(&re->re, s, 0, NULL, 0) == 0;
        if (!ok)
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: '%.40s' does not match %s", where, s,
                             json_object_get_string(pat));
    }
    return KM_OK;
}

static kmcode
validate_object(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    json_object *props = kmjson_get(schema, "properties");
    json_object *req = kmjson_get(schema, "required");
    json_object *addl = kmjson_get(schema, "additionalProperties");
    char         sub[256];
    kmcode       rc;

    for (size_t i = 0; req && i < json_object_array_length(req); i++) {
        const char *k = json_object_get_string(json_object_array_get_idx(req, i));
        if (!kmjson_get(v, k) && !json_object_object_get_ex(v, k, NULL)) {
            if (strcmp(where, "arguments") == 0)
                return kmerr_set(err, KM_INVALID_ARGUMENT, "%s is required", k);
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s.%s is required", where, k);
        }
    }
    json_object_object_foreach(v, key, val) {
        json_object *ps = kmjson_get(props, key);
        if (strcmp(where, "arguments") == 0)
            snprintf(sub, sizeof(sub), "%s", key);
        else
            snprintf(sub, sizeof(sub), "%s.%s", where, key);
        if (ps) {
            rc = validate(ps, val, sub, err);
            if (rc != KM_OK)
                return rc;
        } else if (addl && json_object_is_type(addl, json_type_boolean) &&
                   !json_object_get_boolean(addl)) {
            char known[512] = "";
            json_object_object_foreach(props, pk, pv) {
                (void)pv;
                snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                         known[0] ? ", " : "", pk);
            }
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%.64s: unknown field (accepted: %s)", sub,
                             known[0] ? known : "none");
        } else if (addl && json_object_is_type(addl, json_type_object)) {
            rc = validate(addl, val, sub, err);
            if (rc != KM_OK)
                return rc;
        }
    }
    return KM_OK;
}

static kmcode
validate_array(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    json_object *items = kmjson_get(schema, "items");
    json_object *mn = kmjson_get(schema, "minItems");
    json_object *mx = kmjson_get(schema, "maxItems");
    json_object *uq = kmjson_get(schema, "uniqueItems");
    size_t       n = json_object_array_length(v);
    char         sub[256];

    if (mn && n < (size_t)json_object_get_int(mn))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: needs at least %d item(s)", where,
                         json_object_get_int(mn));
    if (mx && n > (size_t)json_object_get_int(mx))
        return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: at most %d items", where,
                         json_object_get_int(mx));
    for (size_t i = 0; i < n; i++) {
        json_object *it = json_object_array_get_idx(v, i);
        snprintf(sub, sizeof(sub), "%s[%zu]", where, i);
        if (items) {
            kmcode rc = validate(items, it, sub, err);
            if (rc != KM_OK)
                return rc;
        }
        if (uq && json_object_get_boolean(uq)) {
            for (size_t j = 0; j < i; j++) {
                if (same_value(it, json_object_array_get_idx(v, j)))
                    return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: duplicate item", sub);
            }
        }
    }
    return KM_OK;
}

static kmcode
validate(json_object *schema, json_object *v, const char *where, kmerr *err)
{
    json_object *mn = kmjson_get(schema, "minimum");
    json_object *mx = kmjson_get(schema, "maximum");
    kmcode       rc = validate_type(schema, v, where, err);

    if (rc != KM_OK)
        return rc;
    /* a string's enum is checked with its other rules, in their order */
    if (!json_object_is_type(v, json_type_string)) {
        rc = validate_enum(schema, v, where, err);
        if (rc != KM_OK)
            return rc;
    }
    if (!v || json_object_is_type(v, json_type_null))
        return KM_OK;
    switch (json_object_get_type(v)) {
    case json_type_string:
        return validate_string(schema, v, where, err);
    case json_type_object:
        return validate_object(schema, v, where, err);
    case json_type_array:
        return validate_array(schema, v, where, err);
    case json_type_int:
    case json_type_double:
        if (mn && json_object_get_double(v) < json_object_get_double(mn))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: must be at least %g", where,
                             json_object_get_double(mn));
        if (mx && json_object_get_double(v) > json_object_get_double(mx))
            return kmerr_set(err, KM_INVALID_ARGUMENT, "%s: must be at most %g", where,
                             json_object_get_double(mx));
        return KM_OK;
    default:
        return KM_OK;
    }
}

kmcode
kmschema_validate(json_object *schema, json_object *value, const char *where, kmerr *err)
{
    return validate(schema, value, where, err);
}
