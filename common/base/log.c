/* log.c — JSON lines on stderr, redacted. */
#include "log.h"
#include "secret.h"
#include "util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* A kmlogf message longer than this many bytes is cut. */
#define MAX_MESSAGE 1023

static atomic_int log_level = KMLOG_INFO;
static atomic_int log_fd = 2;
/* The request the calling thread is working for (klaviyo-restd's X-Request-Id). */
static _Thread_local char thread_rid[65];

static const char *const level_names[] = { "debug", "info", "warning", "error", "off" };

void
kmlog_set_level(kmlog_level level)
{
    atomic_store(&log_level, (int)level);
}

kmlog_level
kmlog_get_level(void)
{
    return (kmlog_level)atomic_load(&log_level);
}

int
kmlog_parse_level(const char *name, kmlog_level *out)
{
    static const struct {
        const char *name;
        kmlog_level level;
    } names[] = { { "debug", KMLOG_DEBUG },  { "info", KMLOG_INFO },   { "warning", KMLOG_WARN },
                  { "warn", KMLOG_WARN },    { "error", KMLOG_ERROR }, { "off", KMLOG_OFF } };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

int
kmlog_enabled(kmlog_level level)
{
    return level >= kmlog_get_level() && level < KMLOG_OFF;
}

void
kmlog_set_request_id(const char *rid)
{
    if (rid)
        km_strlcpy(thread_rid, rid, sizeof(thread_rid));
    else
        thread_rid[0] = '\0';
}

void
kmlog_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void
kmlog(kmlog_level level, const char *event, json_object *fields)
{
    json_object    *line;
    struct timespec ts;
    struct tm       tm;
    char            when[64];
    const char     *text;
    char           *safe;
    size_t          n;

    if (!kmlog_enabled(level)) {
        json_object_put(fields);
        return;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));

    line = json_object_new_object();
    json_object_object_add(line, "time", json_object_new_string(when));
    json_object_object_add(line, "level", json_object_new_string(level_names[level]));
    json_object_object_add(line, "event", json_object_new_string(event));
    json_object_object_add(line, "pid", json_object_new_int((int)getpid()));
    if (thread_rid[0])
        json_object_object_add(line, "request_id", json_object_new_string(thread_rid));
    if (fields) {
        json_object_object_foreach(fields, k, v) {
            json_object_object_add(line, k, json_object_get(v));
        }
        json_object_put(fields);
    }
    text = json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
    safe = kmsecret_redact(text);
    n = strlen(safe);
    safe = km_xrealloc(safe, n + 2);
    safe[n++] = '\n';
    /* One write per line: lines from threads and processes sharing stderr stay whole. */
    if (write(atomic_load(&log_fd), safe, n) < 0) {
        /* nowhere left to report it */
    }
    free(safe);
    json_object_put(line);
}

void
kmlogf(kmlog_level level, const char *event, const char *fmt, ...)
{
    json_object *fields;
    va_list      ap;
    char        *full, *msg;
    int          n;
    size_t       cut;

    if (!kmlog_enabled(level))
        return;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    full = km_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(full, (size_t)n + 1, fmt, ap);
    va_end(ap);
    /* Redact before bounding the message: cutting first could leave a secret's first bytes,
     * too few to be recognised. Then cut on a UTF-8 character boundary. */
    msg = kmsecret_redact(full);
    free(full);
    cut = strlen(msg);
    if (cut > MAX_MESSAGE) {
        cut = MAX_MESSAGE;
        while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80)
            cut--;
        msg[cut] = '\0';
    }
    km_utf8_repair(msg);     /* quoted input may hold bytes that are not text */
    fields = json_object_new_object();
    json_object_object_add(fields, "message", json_object_new_string(msg));
    free(msg);
    kmlog(level, event, fields);
}
