/* err.h — the one error model: codes, the error record, and the response envelopes.
 *
 * Owns:    a kmerr owns its `details` object (json-c, refcounted); kmerr_clear releases it.
 *          Envelopes returned by kmerr_envelope belong to the caller (json_object_put).
 * Threads: no shared state; the code table is read-only.
 * Fails:   functions here do not fail; allocation failure aborts (see util.h).
 *
 * Codes are the seed's (TRD §8) plus the ones the service adds; each has one name and one
 * HTTP status, written once in err.c. A message never holds a secret: messages are built
 * from ids and names, never from keys or tokens.
 */
#ifndef KM_ERR_H
#define KM_ERR_H

#include <json-c/json.h>
#include <stdarg.h>

typedef enum {
    KM_OK = 0,
    KM_INVALID_ARGUMENT,        /* 400: bad or contradictory caller input */
    KM_MISSING_API_KEY,         /* 401: no REST credential presented */
    KM_INVALID_API_KEY,         /* 403: wrong REST credential, or Klaviyo refused the key */
    KM_UNKNOWN_ACCOUNT,         /* 404: account name not configured */
    KM_NOT_FOUND,               /* 404: unknown route, or Klaviyo says the id does not exist */
    KM_METHOD_NOT_ALLOWED,      /* 405 */
    KM_PAYLOAD_TOO_LARGE,       /* 413 */
    KM_UNSUPPORTED_MEDIA_TYPE,  /* 415 */
    KM_RATE_LIMITED,            /* 429: budget exhausted; retry_after_s says when */
    KM_UNKNOWN_TOOL,            /* 400: no tool of that name */
    KM_CANCELLED,               /* 499: the caller went away; nothing is sent */
    KM_CONFIG_ERROR,            /* 500: misconfiguration; programs exit 78 */
    KM_INTERNAL_ERROR,          /* 500: a bug or an impossible state */
    KM_UPSTREAM_ERROR,          /* 502: Klaviyo 5xx, unparseable or unexpected answer */
    KM_SERVICE_UNAVAILABLE,     /* 503: draining, or no capacity to take the request */
    KM_UPSTREAM_TIMEOUT,        /* 504: Klaviyo did not answer in time after retries */
    KM_STORE_UNREACHABLE,       /* 503: the shared store (Redis) cannot be reached. Inside
                                   common/store only: the store then serves from its local
                                   fallback, so no caller ever sees this code */
    KM_CODE_COUNT
} kmcode;

/* Exit status for a configuration error (sysexits.h EX_CONFIG). */
#define KM_EXIT_CONFIG 78

typedef struct kmerr {
    kmcode       code;
    int          retry_after_s;  /* KM_RATE_LIMITED: seconds until a retry can succeed */
    json_object *details;        /* optional extra fields for the envelope; owned */
    char         msg[256];       /* for a person; never holds a secret */
} kmerr;

/* Reset `e` to KM_OK with no message, releasing any details. e may be NULL. */
void kmerr_clear(kmerr *e);

/* Record code `c` with a printf-style message (truncated to fit). Returns c, so a caller can
 * write `return kmerr_set(err, KM_INVALID_ARGUMENT, "...")`. e may be NULL. Existing details
 * are kept, so details may be attached before or after. */
kmcode kmerr_set(kmerr *e, kmcode c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
kmcode kmerr_vset(kmerr *e, kmcode c, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Attach detail `key` = `val` to e (takes ownership of val). e may be NULL: val is freed. */
void kmerr_detail(kmerr *e, const char *key, json_object *val);

/* Copy src into dst (details shared by reference). dst is cleared first. */
void kmerr_copy(kmerr *dst, const kmerr *src);

/* The envelope name ("INVALID_ARGUMENT") and HTTP status of a code. */
const char *kmerr_name(kmcode c);
int kmerr_http_status(kmcode c);

/* Parse an envelope name back to a code; returns KM_CODE_COUNT when unknown. */
kmcode kmerr_from_name(const char *name);

/* {"error":{"code","message","retry_after_s"?,"details"?}} — a new object for the caller. */
json_object *kmerr_envelope(const kmerr *e);

#endif
