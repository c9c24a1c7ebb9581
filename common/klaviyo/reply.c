/* reply.c — reading Klaviyo's answers and saying what they mean: header seconds, error
 * documents, the wait before a retry, and the messages of final failures.
 */
#include "reply.h"

#include "json.h"
#include "log.h"
#include "secret.h"
#include "tier.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_BASE_MS 500
#define BACKOFF_CAP_MS  30000
#define MAX_TOLD_S      1e7   /* a Retry-After past this (~115 days) is read as this: it is a
                                 refusal, not a wait */

/* Uniform in [0, n] (n >= 0). xorshift64*: jitter needs spread, not secrecy. */
static int64_t
rand_upto(uint64_t *rng, int64_t n)
{
    uint64_t x = *rng;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    if (n <= 0)
        return 0;
    return (int64_t)((x * 0x2545F4914F6CDD1DULL) % (uint64_t)(n + 1));
}

/* A header's number: Retry-After is seconds (fractions allowed, for a time-scaled fake);
 * RateLimit-Reset's leading integer is the seconds until its window resets. */
double
kmreply_header_seconds(const char *v, size_t n)
{
    char   tmp[32];
    char  *end;
    double d;

    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    errno = 0;
    d = strtod(tmp, &end);
    if (errno == ERANGE && end != tmp && d > 0)
        return MAX_TOLD_S;  /* too large to hold: as long as we ever read */
    if (errno || end == tmp || !isfinite(d) || d < 0)
        return -1;
    /* 99999999999999999999 s would overflow the milliseconds it becomes (and once read as
     * about one second): anything past the bound is the bound, a refusal to come back soon */
    return d > MAX_TOLD_S ? MAX_TOLD_S : d;
}

/* Klaviyo's errors[0] (REFERENCE.md §3) as "detail (at pointer)", redacted; "" when the
 * body is not a JSON:API error document (an HTML page from Cloudflare, say). */
void
kmreply_error_detail(const char *body, size_t len, char *out, size_t size, double *expected_s)
{
    json_object *doc = NULL, *errs, *e0, *src;
    const char  *detail, *ptr, *param;
    char        *clean, *raw;

    out[0] = '\0';
    if (expected_s)
        *expected_s = -1;
    if (!body || len == 0 || kmjson_parse(body, len, KM_UPSTREAM_ERROR, &doc, NULL) != KM_OK)
        return;
    errs = kmjson_get(doc, "errors");
    e0 = json_object_is_type(errs, json_type_array) && json_object_array_length(errs) > 0
             ? json_object_array_get_idx(errs, 0)
             : NULL;
    if (!json_object_is_type(e0, json_type_object)) {
        json_object_put(doc);
        return;
    }
    detail = kmjson_str(e0, "detail");
    if (!detail)
        detail = kmjson_str(e0, "title");
    src = kmjson_get(e0, "source");
    ptr = kmjson_str(src, "pointer");
    param = kmjson_str(src, "parameter");
    if (!detail) {
        json_object_put(doc);
        return;
    }
    if (expected_s) {
        const char *p = strstr(detail, "Expected available in ");

        if (p)
            *expected_s = kmreply_header_seconds(p + 22, strcspn(p + 22, " "));
    }
    if (ptr && *ptr)
        raw = km_xasprintf("%.180s (at %.60s)", detail, ptr);
    else if (param && *param)
        raw = km_xasprintf("%.180s (parameter %.60s)", detail, param);
    else
        raw = km_xasprintf("%.200s", detail);
    clean = kmsecret_redact(raw);
    km_strlcpy(out, clean, size);
    free(clean);
    free(raw);
    json_object_put(doc);
}

const char *
kmreply_cause_text(enum kmreply_cause c)
{
    switch (c) {
    case KMR_THROTTLED:
        return "throttled by Klaviyo";
    case KMR_SERVER:
        return "Klaviyo server error";
    case KMR_TIMEOUT:
        return "no answer in time";
    case KMR_TRANSPORT:
        return "connection failed";
    case KMR_MALFORMED:
        return "answer was not JSON";
    case KMR_TRUNCATED:
        return "answer was cut short";
    default:
        return "failed";
    }
}

int64_t
kmreply_retry_wait(double retry_after_s, double reset_s, double expected_s,
                   enum kmreply_cause c, int attempt, uint64_t *rng, int *told)
{
    double  s = -1;
    int64_t ceiling;

    if (retry_after_s >= 0)
        s = retry_after_s;
    else if (c == KMR_THROTTLED && reset_s > 0)
        s = reset_s;
    else if (c == KMR_THROTTLED && expected_s >= 0)
        s = expected_s;
    *told = s >= 0;
    if (*told) {
        int64_t ms = (int64_t)ceil(s * 1000.0);

        /* a little spread so that waiters do not all come back on the same millisecond */
        return ms + rand_upto(rng, ms / 10 < 250 ? ms / 10 : 250);
    }
    ceiling = BACKOFF_BASE_MS;
    for (int i = 1; i < attempt && ceiling < BACKOFF_CAP_MS; i++)
        ceiling *= 2;
    if (ceiling > BACKOFF_CAP_MS)
        ceiling = BACKOFF_CAP_MS;
    return rand_upto(rng, ceiling);
}

/* What went wrong on the wire, for a person: DNS, refused, TLS, timeout or a dropped
 * connection, then libcurl's own words (which never hold a header or a key). */
enum kmreply_cause
kmreply_transport_kind(CURLcode cc)
{
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return KMR_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return KMR_TRANSPORT;
    case CURLE_PARTIAL_FILE:
        return KMR_TRUNCATED;
    default:
        return KMR_NONE;
    }
}

void
kmreply_transport_cause(CURLcode cc, char *buf, size_t cap)
{
    const char *what;

    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        what = "DNS lookup failed";
        break;
    case CURLE_COULDNT_CONNECT:
        what = "connection refused or host unreachable";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
        what = "TLS failed";
        break;
    case CURLE_OPERATION_TIMEDOUT:
        what = "timeout";
        break;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        what = "the connection was dropped";
        break;
    default:
        what = "transport error";
        break;
    }
    snprintf(buf, cap, "%s (%s)", what, curl_easy_strerror(cc));
}

kmcode
kmreply_final_error(kmerr *e, enum kmreply_cause c, int tries, const char *acct,
                    int timeout_s, const char *detail, int64_t wait_ms, CURLcode last_cc)
{
    switch (c) {
    case KMR_THROTTLED:
        e->retry_after_s = kmtier_secs_up(wait_ms);
        return kmerr_set(e, KM_RATE_LIMITED, "Klaviyo is throttling account '%s' "
                         "(%d attempt%s); try again in %d s", acct, tries,
                         tries == 1 ? "" : "s", e->retry_after_s);
    case KMR_TIMEOUT:
        return kmerr_set(e, KM_UPSTREAM_TIMEOUT, "Klaviyo did not answer in time "
                         "(%d attempt%s, %d s each at most)", tries, tries == 1 ? "" : "s",
                         timeout_s);
    case KMR_SERVER:
        return kmerr_set(e, KM_UPSTREAM_ERROR, "Klaviyo had a server error "
                         "(%d attempt%s)%s%s", tries, tries == 1 ? "" : "s",
                         detail[0] ? ": " : "", detail);
    case KMR_MALFORMED:
        return kmerr_set(e, KM_UPSTREAM_ERROR, "Klaviyo's answer was not a JSON document "
                         "(%d attempt%s)", tries, tries == 1 ? "" : "s");
    case KMR_TRUNCATED:
        return kmerr_set(e, KM_UPSTREAM_ERROR, "Klaviyo's answer was cut short "
                         "(%d attempt%s)", tries, tries == 1 ? "" : "s");
    case KMR_TRANSPORT:
    default: {
        char why[160];
        kmreply_transport_cause(last_cc, why, sizeof(why));
        return kmerr_set(e, KM_UPSTREAM_ERROR, "could not reach Klaviyo (%d attempt%s): "
                         "%s", tries, tries == 1 ? "" : "s", why);
    }
    }
}

kmcode
kmreply_http_error(kmerr *e, long status, const char *acct, const char *detail)
{
    const char *sep = detail[0] ? ": " : "";

    if (status == 401 || status == 403) {
        /* 401: the key itself; 403: a key without the endpoint's scope. klaviyo_status
         * lets a caller (klaviyo-mcp-admin check --api) tell them apart. */
        if (status == 403)
            kmerr_set(e, KM_INVALID_API_KEY, "the API key of account '%s' lacks a scope this "
                      "needs%s%s", acct, sep, detail);
        else
            kmerr_set(e, KM_INVALID_API_KEY, "Klaviyo rejected the API key for account "
                      "'%s'%s%s", acct, sep, detail);
        kmerr_detail(e, "klaviyo_status", json_object_new_int((int)status));
        return KM_INVALID_API_KEY;
    }
    if (status == 404)
        return kmerr_set(e, KM_NOT_FOUND, "Klaviyo has no such resource%s%s", sep, detail);
    if (status >= 400 && status < 500)
        return kmerr_set(e, KM_INVALID_ARGUMENT, "Klaviyo rejected the request: %s",
                         detail[0] ? detail : "no reason given");
    return kmerr_set(e, KM_UPSTREAM_ERROR, "Klaviyo gave an unexpected answer");
}

/* The path for logs: no query string (its values are ids and dates, but need not be there). */
static json_object *
log_path(const char *path)
{
    return json_object_new_string_len(path, (int)strcspn(path, "?"));
}

void
kmreply_log_request(const char *acct, const char *method, const char *path, long status,
                    const char *outcome, int attempt, int64_t ms, size_t bytes)
{
    json_object *f;

    if (!kmlog_enabled(KMLOG_DEBUG))
        return;
    f = json_object_new_object();
    json_object_object_add(f, "account", json_object_new_string(acct));
    json_object_object_add(f, "method", json_object_new_string(method));
    json_object_object_add(f, "path", log_path(path));
    json_object_object_add(f, "status", json_object_new_int((int)status));
    json_object_object_add(f, "outcome", json_object_new_string(outcome));
    json_object_object_add(f, "attempt", json_object_new_int(attempt));
    json_object_object_add(f, "ms", json_object_new_int64(ms));
    json_object_object_add(f, "bytes", json_object_new_int64((int64_t)bytes));
    kmlog(KMLOG_DEBUG, "klaviyo_request", f);
}

void
kmreply_log_retry(const char *acct, const char *method, const char *path, int attempt,
                  enum kmreply_cause c, long status, int64_t wait_ms)
{
    json_object *f = json_object_new_object();

    json_object_object_add(f, "account", json_object_new_string(acct));
    json_object_object_add(f, "method", json_object_new_string(method));
    json_object_object_add(f, "path", log_path(path));
    json_object_object_add(f, "attempt", json_object_new_int(attempt));
    json_object_object_add(f, "reason", json_object_new_string(kmreply_cause_text(c)));
    if (status > 0)
        json_object_object_add(f, "status", json_object_new_int((int)status));
    json_object_object_add(f, "wait_ms", json_object_new_int64(wait_ms));
    kmlog(KMLOG_WARN, "klaviyo_retry", f);
}
