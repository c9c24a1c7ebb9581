/* promtext.c — the strict text-format parser of promtext.h. */
#include "promtext.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 16
#define MAX_NAME   200
#define MAX_VALUE  400

struct label {
    char name[MAX_NAME];
    char value[MAX_VALUE];
};

struct family {
    char name[MAX_NAME];
    char type[16];
    int  has_help, has_type, sampled, closed;
};

struct parser {
    struct family fam[256];
    size_t        n_fam;
    struct family *current;     /* the family of the last sample */
    json_object  *series;
    char         *why;
    size_t        cap;
    int           line;
};

static int
fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    int     n = snprintf(p->why, p->cap, "line %d: ", p->line);

    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < p->cap)
        vsnprintf(p->why + n, p->cap - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int
name_start(char c, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static int
name_char(char c, int colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

/* A name at *s (metric names allow ':'); 0 or -1. */
static int
take_name(struct parser *p, const char **s, int colon, char *out)
{
    size_t n = 0;

    if (!name_start(**s, colon))
        return fail(p, "a name must start with a letter or '_'");
    while (name_char(**s, colon)) {
        if (n + 1 >= MAX_NAME)
            return fail(p, "name too long");
        out[n++] = *(*s)++;
    }
    out[n] = '\0';
    return 0;
}

static int
take_float(struct parser *p, const char *s, const char **end, double *v)
{
    char *e;

    if (strncmp(s, "+Inf", 4) == 0 || strncmp(s, "-Inf", 4) == 0) {
        *v = s[0] == '+' ? INFINITY : -INFINITY;
        *end = s + 4;
        return 0;
    }
    if (strncmp(s, "NaN", 3) == 0) {
        *v = NAN;
        *end = s + 3;
        return 0;
    }
    if (!((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.'))
        return fail(p, "not a number: '%.20s'", s);
    *v = strtod(s, &e);
    if (e == s)
        return fail(p, "not a number: '%.20s'", s);
    *end = e;
    return 0;
}

static struct family *
family(struct parser *p, const char *name)
{
    for (size_t i = 0; i < p->n_fam; i++) {
        if (strcmp(p->fam[i].name, name) == 0)
            return &p->fam[i];
    }
    if (p->n_fam >= sizeof(p->fam) / sizeof(p->fam[0]))
        return NULL;
    memset(&p->fam[p->n_fam], 0, sizeof(p->fam[0]));
    snprintf(p->fam[p->n_fam].name, MAX_NAME, "%s", name);
    return &p->fam[p->n_fam++];
}

static int
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);

    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* The family a sample name belongs to: a histogram's _bucket/_sum/_count go to their base. */
static struct family *
family_of_sample(struct parser *p, const char *name)
{
    static const char *const sfx[] = { "_bucket", "_sum", "_count" };

    for (size_t i = 0; i < 3; i++) {
        if (ends_with(name, sfx[i])) {
            char base[MAX_NAME];
            size_t n = strlen(name) - strlen(sfx[i]);

            memcpy(base, name, n);
            base[n] = '\0';
            for (size_t j = 0; j < p->n_fam; j++) {
                if (strcmp(p->fam[j].name, base) == 0 &&
                    (strcmp(p->fam[j].type, "histogram") == 0 ||
                     strcmp(p->fam[j].type, "summary") == 0))
                    return &p->fam[j];
            }
        }
    }
    return family(p, name);
}

static int
cmp_label(const void *a, const void *b)
{
    return strcmp(((const struct label *)a)->name, ((const struct label *)b)->name);
}

static int
comment(struct parser *p, const char *s)
{
    char           kw[8], name[MAX_NAME];
    struct family *f;

    if (strncmp(s, "# HELP ", 7) != 0 && strncmp(s, "# TYPE ", 7) != 0)
        return 0;   /* any other comment is allowed */
    memcpy(kw, s + 2, 4);
    kw[4] = '\0';
    s += 7;
    if (take_name(p, &s, 1, name) != 0)
        return -1;
    f = family(p, name);
    if (!f)
        return fail(p, "too many families");
    if (strcmp(kw, "HELP") == 0) {
        if (f->has_help)
            return fail(p, "second HELP for %s", name);
        if (*s != ' ' && *s != '\0')
            return fail(p, "HELP name must be followed by a space");
        f->has_help = 1;
        return 0;
    }
    if (f->has_type)
        return fail(p, "second TYPE for %s", name);
    if (f->sampled)
        return fail(p, "TYPE for %s after its first sample", name);
    if (*s++ != ' ')
        return fail(p, "TYPE needs a type");
    if (strcmp(s, "counter") != 0 && strcmp(s, "gauge") != 0 && strcmp(s, "histogram") != 0 &&
        strcmp(s, "summary") != 0 && strcmp(s, "untyped") != 0)
        return fail(p, "unknown type '%.20s'", s);
    snprintf(f->type, sizeof(f->type), "%s", s);
    f->has_type = 1;
    return 0;
}

static int
sample(struct parser *p, const char *s)
{
    char           name[MAX_NAME], key[4096];
    struct label   lab[MAX_LABELS];
    size_t         nl = 0, k;
    double         v, ts;
    struct family *f;
    const char    *e;

    if (take_name(p, &s, 1, name) != 0)
        return -1;
    if (*s == '{') {
        s++;
        while (*s != '}') {
            size_t n = 0;

            if (nl >= MAX_LABELS)
                return fail(p, "too many labels");
            if (take_name(p, &s, 0, lab[nl].name) != 0)
                return -1;
            if (*s++ != '=' || *s++ != '"')
                return fail(p, "label %s: expected =\"", lab[nl].name);
            while (*s != '"') {
                char c = *s++;
                if (c == '\0')
                    return fail(p, "unterminated label value");
                if (c == '\\') {
                    c = *s++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        return fail(p, "unknown escape \\%c", c ? c : '0');
                }
                if (n + 1 >= MAX_VALUE)
                    return fail(p, "label value too long");
                lab[nl].value[n++] = c;
            }
            lab[nl].value[n] = '\0';
            s++;
            for (size_t i = 0; i < nl; i++) {
                if (strcmp(lab[i].name, lab[nl].name) == 0)
                    return fail(p, "label %s given twice", lab[nl].name);
            }
            nl++;
            if (*s == ',')
                s++;
            else if (*s != '}')
                return fail(p, "expected , or } after a label");
        }
        s++;
    }
    if (*s++ != ' ')
        return fail(p, "expected a space before the value");
    if (take_float(p, s, &e, &v) != 0)
        return -1;
    s = e;
    if (*s == ' ') {
        s++;
        if (take_float(p, s, &e, &ts) != 0)
            return -1;
        s = e;
    }
    if (*s != '\0')
        return fail(p, "trailing characters '%.20s'", s);

    f = family_of_sample(p, name);
    if (!f)
        return fail(p, "too many families");
    if (f->closed || (f->sampled && p->current != f))
        return fail(p, "samples of %s are not contiguous", f->name);
    if (p->current && p->current != f)
        p->current->closed = 1;
    p->current = f;
    f->sampled = 1;
    if (strcmp(f->type, "counter") == 0 && !(v >= 0))
        return fail(p, "counter %s is negative or NaN", name);
    if (strcmp(f->type, "histogram") == 0 && ends_with(name, "_bucket")) {
        int has_le = 0;
        for (size_t i = 0; i < nl; i++)
            has_le |= strcmp(lab[i].name, "le") == 0;
        if (!has_le)
            return fail(p, "histogram bucket without le");
    }
    qsort(lab, nl, sizeof(lab[0]), cmp_label);
    k = (size_t)snprintf(key, sizeof(key), "%s", name);
    for (size_t i = 0; i < nl && k < sizeof(key); i++)
        k += (size_t)snprintf(key + k, sizeof(key) - k, "%s%s=\"%s\"%s", i ? "," : "{",
                              lab[i].name, lab[i].value, i + 1 == nl ? "}" : "");
    if (json_object_object_get_ex(p->series, key, NULL))
        return fail(p, "duplicate series %s", key);
    json_object_object_add(p->series, key, json_object_new_double(v));
    return 0;
}

/* Histograms: per label set (without le), buckets rise with le, and the +Inf bucket equals
 * the _count series of the same labels. */
struct bucket {
    char   group[4096];     /* base{labels without le} */
    double le, v;
};

static int
cmp_bucket(const void *a, const void *b)
{
    const struct bucket *x = a, *y = b;
    int                  c = strcmp(x->group, y->group);

    if (c)
        return c;
    return x->le < y->le ? -1 : x->le > y->le;
}

/* Split `key` (a _bucket series) into its group and le; 0, or -1 when it has no le. (Keys
 * hold unescaped values: a histogram's label values must not contain '"'.) */
static int
bucket_of(const char *key, struct bucket *b)
{
    const char *brace = strchr(key, '{'), *q;
    size_t      n = 0, bn;

    if (!brace)
        return -1;
    bn = (size_t)(brace - key) - strlen("_bucket");
    n = (size_t)snprintf(b->group, sizeof(b->group), "%.*s_count", (int)bn, key);
    b->le = NAN;
    for (q = brace + 1; *q && *q != '}';) {
        const char *eq = strchr(q, '='), *end = eq ? strchr(eq + 2, '"') : NULL;

        if (!eq || !end)
            return -1;
        if ((size_t)(eq - q) == 2 && strncmp(q, "le", 2) == 0)
            b->le = strncmp(eq + 2, "+Inf", 4) == 0 ? INFINITY : strtod(eq + 2, NULL);
        else
            n += (size_t)snprintf(b->group + n, sizeof(b->group) - n, "%s%.*s",
                                  strchr(b->group, '{') ? "," : "{", (int)(end + 1 - q), q);
        q = end + 1;
        if (*q == ',')
            q++;
    }
    if (strchr(b->group, '{'))
        snprintf(b->group + n, sizeof(b->group) - n, "}");
    return isnan(b->le) ? -1 : 0;
}

static int
check_histograms(struct parser *p)
{
    struct bucket *bs = NULL;
    size_t         n = 0, cap = 0;
    int            rc = 0;

    for (size_t i = 0; i < p->n_fam; i++) {
        if (strcmp(p->fam[i].type, "histogram") != 0)
            continue;
        json_object_object_foreach(p->series, key, val) {
            size_t fl = strlen(p->fam[i].name);
            if (strncmp(key, p->fam[i].name, fl) != 0 || strncmp(key + fl, "_bucket{", 8) != 0)
                continue;
            if (n == cap) {
                cap = cap ? 2 * cap : 64;
                bs = realloc(bs, cap * sizeof(*bs));
            }
            if (bucket_of(key, &bs[n]) != 0) {
                rc = fail(p, "bucket %s has no le", key);
                goto out;
            }
            bs[n++].v = json_object_get_double(val);
        }
    }
    if (n > 0)
        qsort(bs, n, sizeof(*bs), cmp_bucket);
    for (size_t i = 0; i < n; i++) {
        int first = i == 0 || strcmp(bs[i].group, bs[i - 1].group) != 0;

        if (!first && bs[i].v < bs[i - 1].v) {
            rc = fail(p, "buckets of %s are not cumulative", bs[i].group);
            goto out;
        }
        if (i + 1 == n || strcmp(bs[i].group, bs[i + 1].group) != 0) {
            json_object *c;
            if (!isinf(bs[i].le)) {
                rc = fail(p, "%s has no +Inf bucket", bs[i].group);
                goto out;
            }
            if (!json_object_object_get_ex(p->series, bs[i].group, &c) ||
                json_object_get_double(c) != bs[i].v) {
                rc = fail(p, "the +Inf bucket differs from %s", bs[i].group);
                goto out;
            }
        }
    }
out:
    free(bs);
    return rc;
}

int
promtext_parse(const char *text, json_object **out, char *why, size_t cap)
{
    struct parser p;
    const char   *s = text;
    int           rc = 0;

    memset(&p, 0, sizeof(p));
    p.series = json_object_new_object();
    p.why = why;
    p.cap = cap;
    *out = NULL;
    if (*text && text[strlen(text) - 1] != '\n') {
        p.line = 0;
        rc = fail(&p, "the text does not end with a newline");
    }
    while (rc == 0 && *s) {
        const char *nl = strchr(s, '\n');
        size_t      len = nl ? (size_t)(nl - s) : strlen(s);
        char       *line = strndup(s, len);

        p.line++;
        if (len == 0 || strspn(line, " \t") == len)
            rc = 0;    /* empty lines are allowed */
        else if (line[0] == '#')
            rc = comment(&p, line);
        else
            rc = sample(&p, line);
        free(line);
        s += len + (nl ? 1 : 0);
    }
    if (rc == 0)
        rc = check_histograms(&p);
    if (rc != 0) {
        json_object_put(p.series);
        return -1;
    }
    *out = p.series;
    return 0;
}

double
promtext_value(json_object *series, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(series, key, &v))
        return 0;
    return json_object_get_double(v);
}
