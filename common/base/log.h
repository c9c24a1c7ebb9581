/* log.h — structured logging: one JSON object per line on stderr.
 *
 * Owns:    kmlog takes ownership of `fields` (it is put after writing). Nothing else.
 * Threads: thread-safe; each line is written with one write(2) so lines never interleave.
 * Fails:   never; a line that cannot be written is dropped.
 *
 * Line shape: {"time":"2026-11-29T03:40:42.123Z","level":"info","event":"worker_started",
 * "pid":123, ...fields}. Every line passes through kmsecret_redact before it is written, so
 * a Klaviyo key or REST token can never reach the log, whatever a caller puts in it.
 * Only the shim's JSON-RPC writes stdout; logs always go to stderr.
 */
#ifndef KM_LOG_H
#define KM_LOG_H

#include <json-c/json.h>

typedef enum { KMLOG_DEBUG = 0, KMLOG_INFO, KMLOG_WARN, KMLOG_ERROR, KMLOG_OFF } kmlog_level;

/* Lines below `level` are dropped. Default KMLOG_INFO. */
void kmlog_set_level(kmlog_level level);
kmlog_level kmlog_get_level(void);

/* Parse "debug", "info", "warning"/"warn", "error", "off" (any case). Returns 0 on success,
 * -1 for an unknown name (*out unchanged). */
int kmlog_parse_level(const char *name, kmlog_level *out);

/* 1 when a line at `level` would be written (to skip building fields). */
int kmlog_enabled(kmlog_level level);

/* Write one line. `fields` may be NULL; its keys are merged after time/level/event. */
void kmlog(kmlog_level level, const char *event, json_object *fields);

/* Write one line with a "message" built printf-style. */
void kmlogf(kmlog_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Tag every line the calling thread writes from now on with "request_id": rid (copied, at
 * most 64 bytes); NULL or "" stops tagging. A field named request_id given to kmlog wins. */
void kmlog_set_request_id(const char *rid);

/* Redirect output to `fd` instead of stderr (tests). */
void kmlog_set_fd(int fd);

#endif
