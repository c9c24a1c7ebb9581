/* err.c — the code table and the error envelope. */
#include "err.h"
#include "util.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int         status;
} codes[KM_CODE_COUNT] = {
    [KM_OK]                     = { "OK", 200 },
    [KM_INVALID_ARGUMENT]       = { "INVALID_ARGUMENT", 400 },
    [KM_MISSING_API_KEY]        = { "MISSING_API_KEY", 401 },
    [KM_INVALID_API_KEY]        = { "INVALID_API_KEY", 403 },
    [KM_UNKNOWN_ACCOUNT]        = { "UNKNOWN_ACCOUNT", 404 },
    [KM_NOT_FOUND]              = { "NOT_FOUND", 404 },
    [KM_METHOD_NOT_ALLOWED]     = { "METHOD_NOT_ALLOWED", 405 },
    [KM_PAYLOAD_TOO_LARGE]      = { "PAYLOAD_TOO_LARGE", 413 },
    [KM_UNSUPPORTED_MEDIA_TYPE] = { "UNSUPPORTED_MEDIA_TYPE", 415 },
    [KM_RATE_LIMITED]           = { "RATE_LIMITED", 429 },
    /* an unknown resource, like an unknown route or account; MCP makes it -32602 */
    [KM_UNKNOWN_TOOL]           = { "UNKNOWN_TOOL", 404 },
    [KM_CANCELLED]              = { "CANCELLED", 499 },
    [KM_CONFIG_ERROR]           = { "CONFIG_ERROR", 500 },
    [KM_INTERNAL_ERROR]         = { "INTERNAL_ERROR", 500 },
    [KM_UPSTREAM_ERROR]         = { "UPSTREAM_ERROR", 502 },
    [KM_SERVICE_UNAVAILABLE]    = { "SERVICE_UNAVAILABLE", 503 },
    [KM_UPSTREAM_TIMEOUT]       = { "UPSTREAM_TIMEOUT", 504 },
    [KM_STORE_UNREACHABLE]      = { "STORE_UNREACHABLE", 503 },
};

void
kmerr_clear(kmerr *e)
{
    if (!e)
        return;
    json_object_put(e->details);
    memset(e, 0, sizeof(*e));
}

kmcode
kmerr_vset(kmerr *e, kmcode c, const char *fmt, va_list ap)
{
    if (!e)
        return c;
    e->code = c;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    /* messages quote user input cut at a byte count, and are cut to the buffer: every
     * message that reaches an answer or a log is valid UTF-8 */
    km_utf8_repair(e->msg);
    return c;
}

kmcode
kmerr_set(kmerr *e, kmcode c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kmerr_vset(e, c, fmt, ap);
    va_end(ap);
    return c;
}

void
kmerr_detail(kmerr *e, const char *key, json_object *val)
{
    if (!e) {
        json_object_put(val);
        return;
    }
    if (!e->details)
        e->details = json_object_new_object();
    json_object_object_add(e->details, key, val);
}

void
kmerr_copy(kmerr *dst, const kmerr *src)
{
    if (!dst)
        return;
    kmerr_clear(dst);
    *dst = *src;
    if (dst->details)
        json_object_get(dst->details);
}

const char *
kmerr_name(kmcode c)
{
    if ((unsigned)c >= KM_CODE_COUNT)
        return "INTERNAL_ERROR";
    return codes[c].name;
}

int
kmerr_http_status(kmcode c)
{
    if ((unsigned)c >= KM_CODE_COUNT)
        return 500;
    return codes[c].status;
}

kmcode
kmerr_from_name(const char *name)
{
    for (int i = 0; i < KM_CODE_COUNT; i++) {
        if (name && strcmp(codes[i].name, name) == 0)
            return (kmcode)i;
    }
    return KM_CODE_COUNT;
}

json_object *
kmerr_envelope(const kmerr *e)
{
    json_object *err = json_object_new_object();
    json_object *env = json_object_new_object();
    kmcode       c = e->code == KM_OK ? KM_INTERNAL_ERROR : e->code;

    json_object_object_add(err, "code", json_object_new_string(kmerr_name(c)));
    json_object_object_add(err, "message",
                           json_object_new_string(e->msg[0] ? e->msg : kmerr_name(c)));
    if (c == KM_RATE_LIMITED)
        json_object_object_add(err, "retry_after_s", json_object_new_int(e->retry_after_s));
    if (e->details)
        json_object_object_add(err, "details", json_object_get(e->details));
    json_object_object_add(env, "error", err);
    return env;
}
