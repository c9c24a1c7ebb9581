/* simfilter.c — a recursive-descent parser for Klaviyo filter expressions. */
#include "simfilter.h"
#include "util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONDS 64
#define MAX_ITEMS 1000
#define MAX_DEPTH 8

struct parser {
    const char       *p;
    struct simfilter *f;
    char             *why;
    size_t            whylen;
    int               failed;
};

static int
fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct parser *ps, const char *fmt, ...)
{
    va_list ap;

    if (!ps->failed) {
        va_start(ap, fmt);
        vsnprintf(ps->why, ps->whylen, fmt, ap);
        va_end(ap);
    }
    ps->failed = 1;
    return -1;
}

static void
skip_ws(struct parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

static int
expect(struct parser *ps, char c)
{
    skip_ws(ps);
    if (*ps->p != c)
        return fail(ps, "expected '%c' at '%.20s'", c, ps->p);
    ps->p++;
    return 0;
}

static int
ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == '$';
}

static void
val_free(struct simfval *v)
{
    free(v->s);
    for (size_t i = 0; i < v->n; i++)
        val_free(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

static int
two(const char *s)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]))
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

int
simfilter_datetime(const char *s, struct simfval *out)
{
    char   date[11];
    kmday  day;
    int    h = 0, mi = 0, se = 0;
    size_t n = strlen(s);

    memset(out, 0, sizeof(*out));
    if (n < 10)
        return -1;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (kmdate_parse(date, &day) != 0)
        return -1;
    s += 10;
    if (*s == 'T' || *s == ' ') {
        s++;
        h = two(s);
        if (h < 0 || h > 23 || s[2] != ':')
            return -1;
        mi = two(s + 3);
        if (mi < 0 || mi > 59)
            return -1;
        s += 5;
        if (*s == ':') {
            se = two(s + 1);
            if (se < 0 || se > 59)
                return -1;
            s += 3;
            if (*s == '.') {
                s++;
                if (!isdigit((unsigned char)*s))
                    return -1;
                while (isdigit((unsigned char)*s))
                    s++;
            }
        }
        if (*s == 'Z') {
            out->has_off = 1;
            s++;
        } else if (*s == '+' || *s == '-') {
            int sign = *s == '-' ? -1 : 1, oh = two(s + 1), om, colon;

            if (oh < 0 || oh > 14)
                return -1;
            colon = s[3] == ':';   /* +HH:MM or +HHMM */
            om = two(s + 3 + colon);
            s += 5 + colon;
            if (om < 0 || om > 59)
                return -1;
            out->has_off = 1;
            out->off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*s)
        return -1;
    out->kind = SFV_DATETIME;
    out->day = day;
    out->sec = h * 3600 + mi * 60 + se;
    return 0;
}

static int parse_value(struct parser *ps, struct simfval *v, int depth);

static int
parse_string(struct parser *ps, struct simfval *v)
{
    char   q = *ps->p++;
    size_t cap = 32, n = 0;
    char  *s = km_xmalloc(cap);

    for (;;) {
        char c = *ps->p;
        if (!c) {
            free(s);
            return fail(ps, "unterminated string");
        }
        ps->p++;
        if (c == q)
            break;
        if (c == '\\' && *ps->p)
            c = *ps->p++;
        if (n + 2 > cap) {
            cap *= 2;
            s = km_xrealloc(s, cap);
        }
        s[n++] = c;
    }
    s[n] = '\0';
    v->kind = SFV_STRING;
    v->s = s;
    return 0;
}

static int
parse_bare(struct parser *ps, struct simfval *v)
{
    const char *start = ps->p;
    char        buf[64];
    size_t      n;
    char       *end;

    while (*ps->p && *ps->p != ',' && *ps->p != ')' && *ps->p != ']' && *ps->p != '(' &&
           *ps->p != '[')
        ps->p++;
    n = (size_t)(ps->p - start);
    while (n && isspace((unsigned char)start[n - 1]))
        n--;
    if (!n || n >= sizeof(buf))
        return fail(ps, "expected a value at '%.20s'", start);
    memcpy(buf, start, n);
    buf[n] = '\0';
    if (strcmp(buf, "true") == 0 || strcmp(buf, "false") == 0) {
        v->kind = SFV_BOOL;
        v->b = buf[0] == 't';
        return 0;
    }
    if (strcmp(buf, "null") == 0) {
        v->kind = SFV_NULL;
        return 0;
    }
    if (simfilter_datetime(buf, v) == 0)
        return 0;
    v->num = strtod(buf, &end);
    if (*end == '\0') {
        v->kind = SFV_NUMBER;
        return 0;
    }
    return fail(ps, "'%s' is not a valid value (strings must be quoted)", buf);
}

static int
parse_value(struct parser *ps, struct simfval *v, int depth)
{
    skip_ws(ps);
    memset(v, 0, sizeof(*v));
    if (*ps->p == '\'' || *ps->p == '"')
        return parse_string(ps, v);
    if (*ps->p == '[') {
        size_t cap = 8;

        if (depth > 1)
            return fail(ps, "nested lists are not allowed");
        ps->p++;
        v->kind = SFV_LIST;
        v->items = km_xcalloc(cap, sizeof(*v->items));
        skip_ws(ps);
        if (*ps->p == ']') {
            ps->p++;
            return 0;
        }
        for (;;) {
            if (v->n == MAX_ITEMS)
                return fail(ps, "too many values in a list");
            if (v->n == cap) {
                cap *= 2;
                v->items = km_xrealloc(v->items, cap * sizeof(*v->items));
            }
            if (parse_value(ps, &v->items[v->n], depth + 1) != 0)
                return -1;
            v->n++;
            skip_ws(ps);
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            return expect(ps, ']');
        }
    }
    return parse_bare(ps, v);
}

static int
parse_ident(struct parser *ps, char *out, size_t cap)
{
    size_t n = 0;

    skip_ws(ps);
    while (ident_char(*ps->p)) {
        if (n + 1 >= cap)
            return fail(ps, "name too long at '%.20s'", ps->p);
        out[n++] = *ps->p++;
    }
    out[n] = '\0';
    if (!n)
        return fail(ps, "expected a name at '%.20s'", ps->p);
    return 0;
}

static int parse_expr(struct parser *ps, int depth);

static int
parse_list_of_exprs(struct parser *ps, int depth)
{
    for (;;) {
        if (parse_expr(ps, depth) != 0)
            return -1;
        skip_ws(ps);
        if (*ps->p != ',')
            return 0;
        ps->p++;
    }
}

static int
parse_expr(struct parser *ps, int depth)
{
    char            op[24];
    struct simcond *c;

    if (depth > MAX_DEPTH)
        return fail(ps, "filter nested too deeply");
    if (parse_ident(ps, op, sizeof(op)) != 0)
        return -1;
    if (expect(ps, '(') != 0)
        return -1;
    if (strcmp(op, "and") == 0) {
        ps->f->used_and = 1;
        if (parse_list_of_exprs(ps, depth + 1) != 0)
            return -1;
        return expect(ps, ')');
    }
    if (strcmp(op, "or") == 0 || strcmp(op, "not") == 0)
        return fail(ps, "'%s' is not supported; combine conditions with and(...)", op);
    if (ps->f->n == MAX_CONDS)
        return fail(ps, "too many conditions");
    c = &ps->f->c[ps->f->n];
    memset(c, 0, sizeof(*c));
    km_strlcpy(c->op, op, sizeof(c->op));
    ps->f->n++;
    if (parse_ident(ps, c->field, sizeof(c->field)) != 0)
        return -1;
    if (expect(ps, ',') != 0)
        return -1;
    if (parse_value(ps, &c->val, 0) != 0)
        return -1;
    return expect(ps, ')');
}

int
simfilter_parse(const char *text, struct simfilter *f, char *why, size_t whylen)
{
    struct parser ps = { text ? text : "", f, why, whylen, 0 };

    memset(f, 0, sizeof(*f));
    f->c = km_xcalloc(MAX_CONDS, sizeof(*f->c));
    skip_ws(&ps);
    if (!*ps.p) {
        fail(&ps, "the filter is empty");
        goto out;
    }
    for (;;) {
        f->top_level++;
        if (parse_expr(&ps, 0) != 0)
            goto out;
        skip_ws(&ps);
        if (*ps.p == ',') {
            ps.p++;
            continue;
        }
        if (*ps.p)
            fail(&ps, "unexpected '%.20s'", ps.p);
        break;
    }
out:
    if (ps.failed) {
        simfilter_free(f);
        return -1;
    }
    return 0;
}

void
simfilter_free(struct simfilter *f)
{
    if (!f)
        return;
    for (size_t i = 0; f->c && i < f->n; i++)
        val_free(&f->c[i].val);
    free(f->c);
    memset(f, 0, sizeof(*f));
}

static int
has_word(const char *words, const char *w)
{
    size_t n = strlen(w);

    for (const char *p = words; p && *p;) {
        const char *e = strchr(p, ' ');
        size_t      len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, w, n) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static const char *
kind_name(enum simfv_kind k)
{
    static const char *const names[] = { "a quoted string", "a boolean", "a number",
                                         "a bare datetime", "null", "a list" };

    return names[k];
}

int
simfilter_check(const struct simfilter *f, const struct simfrule *rules, char *why,
                size_t whylen)
{
    for (size_t i = 0; i < f->n; i++) {
        const struct simcond  *c = &f->c[i];
        const struct simfrule *r = NULL;
        int                    list_op;

        for (size_t j = 0; rules[j].field; j++) {
            if (strcmp(rules[j].field, c->field) == 0) {
                r = &rules[j];
                break;
            }
        }
        if (!r) {
            snprintf(why, whylen, "'%s' is not a valid field for this filter", c->field);
            return -1;
        }
        if (!has_word(r->ops, c->op)) {
            snprintf(why, whylen, "'%s' is not a valid operator for '%s'; use one of: %s",
                     c->op, c->field, r->ops);
            return -1;
        }
        list_op = strcmp(c->op, "any") == 0 || strcmp(c->op, "contains-any") == 0 ||
                  strcmp(c->op, "contains-all") == 0;
        if (list_op) {
            if (c->val.kind != SFV_LIST || c->val.n == 0) {
                snprintf(why, whylen, "'%s' on '%s' takes a non-empty list", c->op, c->field);
                return -1;
            }
            for (size_t k = 0; k < c->val.n; k++) {
                if (c->val.items[k].kind != r->type) {
                    snprintf(why, whylen, "values for '%s' must be %s", c->field,
                             kind_name(r->type));
                    return -1;
                }
            }
        } else if (c->val.kind != r->type) {
            snprintf(why, whylen, "the value for '%s' must be %s, not %s", c->field,
                     kind_name(r->type), kind_name(c->val.kind));
            return -1;
        }
    }
    return 0;
}

int64_t
simfilter_utc(const struct simfval *v)
{
    return (int64_t)v->day * 86400 + v->sec - (v->has_off ? v->off : 0);
}

static int
str_op(const char *op, const char *value, const char *want)
{
    size_t vl = strlen(value), wl = strlen(want);

    if (strcmp(op, "equals") == 0 || strcmp(op, "any") == 0)
        return strcmp(value, want) == 0;
    if (strcmp(op, "contains") == 0 || strcmp(op, "contains-any") == 0)
        return strstr(value, want) != NULL;
    if (strcmp(op, "starts-with") == 0)
        return strncmp(value, want, wl) == 0;
    if (strcmp(op, "ends-with") == 0)
        return vl >= wl && strcmp(value + vl - wl, want) == 0;
    return 0;
}

int
simfilter_match_str(const struct simcond *c, const char *value)
{
    if (!value)
        return 0;
    if (c->val.kind == SFV_LIST) {
        const char *op = strcmp(c->op, "contains-any") == 0 ? "contains" : "equals";
        for (size_t i = 0; i < c->val.n; i++) {
            if (c->val.items[i].s && str_op(op, value, c->val.items[i].s))
                return 1;
        }
        return 0;
    }
    return c->val.s && str_op(c->op, value, c->val.s);
}

int
simfilter_match_bool(const struct simcond *c, int value)
{
    return c->val.kind == SFV_BOOL && (!!value) == c->val.b;
}

int
simfilter_match_time(const struct simcond *c, int has, int64_t t)
{
    int64_t b;

    if (!has || c->val.kind != SFV_DATETIME)
        return 0;
    b = simfilter_utc(&c->val);
    if (strcmp(c->op, "equals") == 0)
        return t == b;
    if (strcmp(c->op, "greater-than") == 0)
        return t > b;
    if (strcmp(c->op, "greater-or-equal") == 0)
        return t >= b;
    if (strcmp(c->op, "less-than") == 0)
        return t < b;
    if (strcmp(c->op, "less-or-equal") == 0)
        return t <= b;
    return 0;
}
