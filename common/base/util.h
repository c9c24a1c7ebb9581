/* util.h — allocation that cannot fail, and small string and time helpers.
 *
 * Owns:    km_x* return memory the caller frees with free().
 * Threads: all functions are thread-safe.
 * Fails:   allocation failure logs one line on stderr and aborts the process: sizes from
 *          outside are capped before anything is allocated, and the master respawns a
 *          worker that died (STYLE.md §4).
 */
#ifndef KM_UTIL_H
#define KM_UTIL_H

#include <stddef.h>
#include <stdint.h>

void *km_xmalloc(size_t n);
void *km_xcalloc(size_t nmemb, size_t size);
void *km_xrealloc(void *p, size_t n);
char *km_xstrdup(const char *s);
char *km_xstrndup(const char *s, size_t n);
/* printf into a new string. */
char *km_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Milliseconds from CLOCK_MONOTONIC, and from CLOCK_REALTIME. */
int64_t km_now_ms(void);
int64_t km_wall_ms(void);

/* Copy at most size-1 bytes of src into dst and NUL-terminate; returns strlen(src), so a
 * result >= size means truncation (BSD strlcpy). */
size_t km_strlcpy(char *dst, const char *src, size_t size);

/* 1 when s is non-empty and every byte is [A-Za-z0-9]; the rule for ids that go into a
 * Klaviyo URL path (REFERENCE.md §2: ids are alphanumeric). */
int km_is_alnum_id(const char *s, size_t maxlen);

/* 64-bit FNV-1a: fold the n bytes at p into h (start from KM_FNV64_INIT); for hash tables
 * and cache keys, not for anything that must resist an adversary. */
#define KM_FNV64_INIT 0xcbf29ce484222325ULL
uint64_t km_fnv1a64(uint64_t h, const void *p, size_t n);

/* 1 when s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or code points past
 * U+10FFFF); else 0 and *bad (may be NULL) is the offset of the first offending byte. */
int km_utf8_valid(const char *s, size_t n, size_t *bad);

/* Make the NUL-terminated s valid UTF-8 in place: a character cut short at the very end is
 * dropped (a message truncated mid-character), every other offending byte becomes '?'.
 * Returns the number of bytes replaced. */
size_t km_utf8_repair(char *s);

#endif
