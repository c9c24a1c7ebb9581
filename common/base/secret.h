/* secret.h — API keys and REST tokens: held opaque, compared in constant time, redacted.
 *
 * Owns:    kmsecret_new copies the value; kmsecret_free wipes and frees it (NULL is fine).
 *          kmsecret_redact returns a new string the caller frees.
 * Threads: every function is thread-safe. Redaction reads an immutable snapshot of the
 *          registry (taken by reference, O(1) under a lock held for the swap only), so a
 *          thread that logs never waits for another's scan.
 * Fails:   nothing here fails; allocation failure aborts.
 *
 * Every secret made here is also registered for redaction, so kmsecret_redact (which the
 * logger runs over every line) removes it wherever it appears, also in the escaped form a
 * JSON string gives it (a quote or backslash in a token). Patterns that look like keys
 * or credentials (pk_…, "Klaviyo-API-Key …", "Bearer …", "X-API-Key: …") are removed too,
 * so a key never reaches a log line even when it was never registered.
 * Only kl.c (to build the Authorization header) calls kmsecret_reveal.
 */
#ifndef KM_SECRET_H
#define KM_SECRET_H

#include <stddef.h>

typedef struct kmsecret kmsecret;

kmsecret *kmsecret_new(const char *value);
void kmsecret_free(kmsecret *s);

/* The secret's bytes, borrowed until kmsecret_free. Only for the Klaviyo client. */
const char *kmsecret_reveal(const kmsecret *s);

/* 1 when `candidate` (len bytes) equals the secret, in time that depends only on the
 * lengths, never on where the bytes differ. */
int kmsecret_equal(const kmsecret *s, const char *candidate, size_t len);

/* A copy of `text` with every registered secret and every key-shaped pattern replaced by
 * "[REDACTED]". */
char *kmsecret_redact(const char *text);

/* 1 when `text` contains a registered secret or a key-shaped pattern. */
int kmsecret_leaks(const char *text);

#endif
