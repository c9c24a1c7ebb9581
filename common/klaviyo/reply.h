/* reply.h — reading Klaviyo's answers: Retry-After and RateLimit-Reset values, JSON:API error
 * documents, what kind of failure an attempt ended in, the wait before the next attempt, and
 * the message of a final failure (REFERENCE.md §3), and the log lines of each request.
 *
 * Owns:    nothing; text goes into the caller's buffers and kmerr.
 * Threads: every function is pure but for the jitter state, which is the caller's.
 * Fails:   a parser that cannot read its input says so in its result (-1, ""); the message
 *          builders return the code they set. No message ever holds a header or the key.
 */
#ifndef KM_REPLY_H
#define KM_REPLY_H

#include "err.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

/* Why an attempt failed, for the retry decision and the stale fallback. */
enum kmreply_cause {
    KMR_NONE,        /* not a failure Klaviyo may get over: no retry, no stale answer */
    KMR_THROTTLED,   /* 429 */
    KMR_SERVER,      /* 5xx */
    KMR_TIMEOUT,
    KMR_TRANSPORT,   /* refused, DNS, dropped */
    KMR_BUDGET,      /* our own rate windows refused */
    KMR_MALFORMED,   /* a 2xx that is not a JSON object */
    KMR_TRUNCATED    /* a body cut short */
};

/* A header value of seconds (Retry-After, RateLimit-Reset's first number), `n` bytes of `v`
 * (not NUL-terminated; spaces before it skipped); fractions are allowed (a time-scaled fake).
 * -1 when it is not a number >= 0. A value past 10^7 s — 99999999999999999999 included — is
 * read as 10^7 s: a refusal to be asked again soon, never a short wait. */
double kmreply_header_seconds(const char *v, size_t n);

/* Klaviyo's errors[0] (REFERENCE.md §3) of a response body as "detail (at pointer)",
 * redacted, into out[size]; "" when the body is not a JSON:API error document. When
 * expected_s is not NULL it receives N of "Expected available in N second(s)", or -1. */
void kmreply_error_detail(const char *body, size_t len, char *out, size_t size,
                          double *expected_s);

/* A cause for logs ("throttled by Klaviyo"); static. */
const char *kmreply_cause_text(enum kmreply_cause c);

/* The wait in ms before retrying attempt number `attempt` (1 = the first) that ended in
 * cause c. Klaviyo's own word wins: retry_after_s, then for a 429 reset_s (RateLimit-Reset)
 * and expected_s (the error detail's "Expected available in N second(s)"); each < 0 when
 * absent. *told is 1 when one of them said how long. Otherwise exponential backoff with full
 * jitter (500 ms base, 30 s cap). *rng is xorshift64* state (never 0), advanced. */
int64_t kmreply_retry_wait(double retry_after_s, double reset_s, double expected_s,
                           enum kmreply_cause c, int attempt, uint64_t *rng, int *told);

/* The cause of a transfer that ended in libcurl error cc: KMR_TIMEOUT, KMR_TRANSPORT
 * (refused, unresolved, dropped), KMR_TRUNCATED (a body cut short), or KMR_NONE for one no
 * retry can help (TLS, a protocol error: reported at once). */
enum kmreply_cause kmreply_transport_kind(CURLcode cc);

/* What went wrong on the wire, for a person: DNS, refused, TLS, timeout or a dropped
 * connection, then libcurl's own words, into buf[cap]. */
void kmreply_transport_cause(CURLcode cc, char *buf, size_t cap);

/* The failure of a final answer that is not retried: 401/403 KM_INVALID_API_KEY (detail
 * klaviyo_status), 404 KM_NOT_FOUND, other 4xx KM_INVALID_ARGUMENT with Klaviyo's detail,
 * anything else KM_UPSTREAM_ERROR. Sets *e; returns its code. */
kmcode kmreply_http_error(kmerr *e, long status, const char *acct, const char *detail);

/* The failure after the last attempt of cause c: `tries` attempts were made, the last one's
 * transport error was last_cc; a 429 tells retry_after_s from wait_ms. Sets *e; returns its
 * code (KM_RATE_LIMITED, KM_UPSTREAM_TIMEOUT or KM_UPSTREAM_ERROR). */
kmcode kmreply_final_error(kmerr *e, enum kmreply_cause c, int tries, const char *acct,
                           int timeout_s, const char *detail, int64_t wait_ms,
                           CURLcode last_cc);

/* One "klaviyo_request" debug line (method, path without its query, status, outcome,
 * attempt, ms, bytes), only when LOG_LEVEL=debug; and one "klaviyo_retry" warning. */
void kmreply_log_request(const char *acct, const char *method, const char *path, long status,
                         const char *outcome, int attempt, int64_t ms, size_t bytes);
void kmreply_log_retry(const char *acct, const char *method, const char *path, int attempt,
                       enum kmreply_cause c, long status, int64_t wait_ms);

#endif
