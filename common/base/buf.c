/* buf.c — capped growable buffer. */
#include "buf.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
kmbuf_init(kmbuf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

int
kmbuf_append(kmbuf *b, const void *p, size_t n)
{
    size_t need;

    if (b->max && (n > b->max || b->len > b->max - n))
        return -1;
    need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < need)
            cap *= 2;
        b->data = km_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
kmbuf_appendf(kmbuf *b, const char *fmt, ...)
{
    va_list ap;
    char    small[256];
    char   *big = NULL;
    int     n, rc;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return kmbuf_append(b, small, (size_t)n);
    big = km_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rc = kmbuf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void
kmbuf_reset(kmbuf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *
kmbuf_take(kmbuf *b, size_t *len)
{
    char *p = b->data ? b->data : km_xstrdup("");

    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void
kmbuf_free(kmbuf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
