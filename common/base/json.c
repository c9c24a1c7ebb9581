/* json.c — helpers on json-c. */
#include "json.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

/* One parser per thread, made on the thread's first parse and freed when the thread exits:
 * making one allocates and clears its 64-level stack, which cost as much as parsing a
 * request line. It holds no value between calls (reset after each). */
static pthread_key_t  tok_key;
static pthread_once_t tok_once = PTHREAD_ONCE_INIT;
static int            tok_key_ok;

static void
tok_destroy(void *tok)
{
    json_tokener_free(tok);
}

static void
tok_key_init(void)
{
    tok_key_ok = pthread_key_create(&tok_key, tok_destroy) == 0;
}

/* This thread's parser, reset; NULL when none can be made. */
static json_tokener *
tok_get(void)
{
    json_tokener *tok;

    pthread_once(&tok_once, tok_key_init);
    if (!tok_key_ok)
        return NULL;
    tok = pthread_getspecific(tok_key);
    if (!tok) {
        tok = json_tokener_new_ex(MAX_DEPTH);
        if (tok && pthread_setspecific(tok_key, tok) != 0) {
            json_tokener_free(tok);
            tok = NULL;
        }
    }
    return tok;
}

kmcode
kmjson_parse(const char *text, size_t len, kmcode bad, json_object **out, kmerr *err)
{
    json_tokener *tok = tok_get();
    json_object  *obj = NULL;
    kmcode        rc = KM_OK;
    size_t        used;

    *out = NULL;
    if (!tok)
        return kmerr_set(err, KM_INTERNAL_ERROR, "cannot allocate a JSON parser");
    if (len > (size_t)INT32_MAX) {
        rc = kmerr_set(err, bad, "JSON text too large");
        goto out;
    }
    /* json-c stops at a NUL byte as if the text ended there: refuse it instead */
    if (memchr(text, '\0', len)) {
        rc = kmerr_set(err, bad, "malformed JSON: NUL byte at offset %zu",
                       (size_t)((const char *)memchr(text, '\0', len) - text));
        goto out;
    }
    /* json-c strict mode: no single quotes, trailing commas or comments (json-c 0.16 still
     * lets NaN, Infinity and "1." through) */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    obj = json_tokener_parse_ex(tok, text, (int)len);
    if (json_tokener_get_error(tok) == json_tokener_continue) {
        /* All of the text was read. json-c cannot tell that a top-level number (or true,
         * false, null) is complete until something follows it, so offer one space: a
         * finished value completes, a truncated one is still unfinished. */
        obj = json_tokener_parse_ex(tok, " ", 1);
        if (json_tokener_get_error(tok) == json_tokener_continue) {
            rc = kmerr_set(err, bad, "malformed JSON: unexpected end of input");
            goto out;
        }
        if (json_tokener_get_error(tok) != json_tokener_success) {
            rc = kmerr_set(err, bad, "malformed JSON at offset %zu: %s", len,
                           json_tokener_error_desc(json_tokener_get_error(tok)));
            goto out;
        }
        used = len;
    } else if (!obj && json_tokener_get_error(tok) != json_tokener_success) {
        rc = kmerr_set(err, bad, "malformed JSON at offset %zu: %s",
                       json_tokener_get_parse_end(tok),
                       json_tokener_error_desc(json_tokener_get_error(tok)));
        goto out;
    } else {
        used = json_tokener_get_parse_end(tok);
    }
    while (used < len && (text[used] == ' ' || text[used] == '\n' || text[used] == '\r' ||
                          text[used] == '\t'))
        used++;
    if (used < len) {
        rc = kmerr_set(err, bad, "malformed JSON: unexpected data after the value at offset %zu",
                       used);
        goto out;
    }
    if (!obj) {
        /* only a literal null parses to NULL: refuse it so *out is a value on KM_OK */
        rc = kmerr_set(err, bad, "JSON value is null");
        goto out;
    }
out:
    if (rc != KM_OK) {
        json_object_put(obj);
        obj = NULL;
    }
    if (tok)
        json_tokener_reset(tok);    /* drops what an unfinished parse holds */
    *out = obj;
    return rc;
}

json_object *
kmjson_get(json_object *o, const char *key)
{
    json_object *v = NULL;

    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    if (!json_object_object_get_ex(o, key, &v))
        return NULL;
    return v;
}

json_object *
kmjson_path(json_object *o, ...)
{
    va_list     ap;
    const char *key;

    va_start(ap, o);
    while (o && (key = va_arg(ap, const char *)) != NULL)
        o = kmjson_get(o, key);
    va_end(ap);
    return o;
}

const char *
kmjson_str(json_object *o, const char *key)
{
    json_object *v = kmjson_get(o, key);

    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

double
kmjson_num(json_object *o, const char *key, double dflt)
{
    json_object *v = kmjson_get(o, key);

    if (!v)
        return dflt;
    if (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))
        return json_object_get_double(v);
    return dflt;
}

json_object *
kmjson_double(double v)
{
    char buf[64];
    int  prec;

    if (!isfinite(v))
        return json_object_new_double(0.0);
    /* Integral values print as "12000.0": %g would choose "1.2e+04" as the shortest form.
     * Below 1e15 every integral double prints exactly in fixed notation. */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, sizeof(buf), "%.1f", v);
        return json_object_new_double_s(v, buf);
    }
    /* the shortest %g that reads back as the same double */
    for (prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn")) {
        size_t n = strlen(buf);
        if (n + 3 < sizeof(buf))
            memcpy(buf + n, ".0", 3);
    }
    return json_object_new_double_s(v, buf);
}

double
kmjson_round(double v, int places)
{
    double m = pow(10.0, places);

    return round(v * m) / m;
}

const char *
kmjson_text(json_object *o)
{
    return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
}

json_object *
kmjson_copy(json_object *o)
{
    json_object *dst = NULL;

    if (!o)
        return NULL;
    if (json_object_deep_copy(o, &dst, NULL) != 0)
        return NULL;
    return dst;
}
