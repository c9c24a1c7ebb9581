/* buf.h — a growable byte buffer with a hard cap (curl's dynbuf `toobig` idea).
 *
 * Owns:    the buffer owns `data`; kmbuf_free releases it. kmbuf_take hands `data` to the
 *          caller (free()) and resets the buffer.
 * Threads: one buffer, one thread.
 * Fails:   kmbuf_append returns -1 (and keeps what it had) when the cap would be passed.
 */
#ifndef KM_BUF_H
#define KM_BUF_H

#include <stddef.h>

typedef struct kmbuf {
    char  *data;   /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    size_t max;    /* hard limit on len; 0 means no limit */
} kmbuf;

void kmbuf_init(kmbuf *b, size_t max);
int kmbuf_append(kmbuf *b, const void *p, size_t n);
int kmbuf_appendf(kmbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kmbuf_reset(kmbuf *b);
char *kmbuf_take(kmbuf *b, size_t *len);
void kmbuf_free(kmbuf *b);

#endif
