/* jsonrpc.h — JSON-RPC 2.0 over newline-delimited stdio: line framing with a cap, strict
 * parsing, message classification, message builders and whole-line writes.
 *
 * Owns:    a kmmcp_reader owns its buffer; a line it hands out is borrowed until the next
 *          kmmcp_reader_* call. The builders return new objects (json_object_put); they take
 *          ownership of `result`, `data` and `params` and take their own reference on `id`.
 *          kmmcp_classify borrows everything it points at from the message object.
 * Threads: a reader belongs to one thread. kmmcp_write may be called from any thread: one
 *          lock per kmmcp_out serializes whole lines, so messages never interleave.
 * Fails:   kmmcp_parse returns KM_INVALID_ARGUMENT with the reason (a JSON-RPC parse error);
 *          kmmcp_classify reports an invalid message as KMMCP_INVALID with the JSON-RPC code
 *          and a message; kmmcp_write returns -1 once the output is gone (the peer closed it)
 *          and keeps returning -1.
 *
 * Framing (MCP stdio transport): one message per line, no embedded newlines; a trailing CR is
 * dropped; blank lines are skipped. A line longer than the cap is dropped whole — the reader
 * reports it once, as soon as the cap is passed, then discards bytes up to the next newline,
 * so the stream stays in step however long the line is and memory stays bounded.
 */
#ifndef KM_MCP_JSONRPC_H
#define KM_MCP_JSONRPC_H

#include "err.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

/* JSON-RPC 2.0 and MCP error codes. */
#define KMMCP_PARSE_ERROR          (-32700)
#define KMMCP_INVALID_REQUEST      (-32600)
#define KMMCP_METHOD_NOT_FOUND     (-32601)
#define KMMCP_INVALID_PARAMS       (-32602)
#define KMMCP_INTERNAL_ERROR       (-32603)
#define KMMCP_UNSUPPORTED_VERSION  (-32022)   /* 2026-07-28: UnsupportedProtocolVersion */

/* --- line framing ---------------------------------------------------------------------- */

enum kmmcp_event {
    KMMCP_NEED_MORE = 0,   /* no complete line buffered: read more (or stop at EOF) */
    KMMCP_LINE,            /* *line / *len hold one line */
    KMMCP_TOO_LONG         /* a line passed the cap; it is being discarded */
};

typedef struct kmmcp_reader {
    char  *buf;
    size_t start;      /* first unconsumed byte */
    size_t len;        /* bytes held */
    size_t scanned;    /* bytes after start already searched for a newline */
    size_t cap;        /* allocated */
    size_t max;        /* the longest line accepted, in bytes, without the newline */
    int    skipping;   /* inside an over-long line: drop bytes up to the next newline */
    int    eof;        /* kmmcp_reader_fill saw end of input */
} kmmcp_reader;

void kmmcp_reader_init(kmmcp_reader *r, size_t max_line);
void kmmcp_reader_free(kmmcp_reader *r);

/* Read once from fd (call it when poll says the fd is readable). Returns the bytes read, 0 at
 * end of input (r->eof is set), or -1 with errno (EINTR/EAGAIN: try again later). */
ssize_t kmmcp_reader_fill(kmmcp_reader *r, int fd);

/* Append bytes as if read (tests, and callers that read themselves). */
void kmmcp_reader_push(kmmcp_reader *r, const void *p, size_t n);

/* The next event. On KMMCP_LINE, *line is NUL-terminated (an embedded NUL byte stays in and is
 * counted in *len) and valid until the next call. After end of input an unterminated last
 * line is returned as a line. */
enum kmmcp_event kmmcp_reader_next(kmmcp_reader *r, char **line, size_t *len);

/* --- parsing and classification --------------------------------------------------------- */

/* Parse one message: valid UTF-8, no NUL byte, strict JSON, nesting at most 64 deep. The
 * literal `null` is refused too (it is no message). On failure *out is NULL. */
kmcode kmmcp_parse(const char *text, size_t len, json_object **out, kmerr *err);

/* 1 when s[0..n) is well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF);
 * *bad (may be NULL) receives the offset of the first bad byte otherwise. */
int kmmcp_utf8_valid(const char *s, size_t n, size_t *bad);

enum kmmcp_kind {
    KMMCP_REQUEST,         /* method + id */
    KMMCP_NOTIFICATION,    /* method, no id: never answered */
    KMMCP_RESPONSE,        /* result or error + id: the client answering (we ask nothing) */
    KMMCP_INVALID          /* answer with code/why, id when it could be read */
};

struct kmmcp_msg {
    enum kmmcp_kind kind;
    json_object    *id;         /* borrowed; a string or an integer, else NULL */
    const char     *method;     /* borrowed */
    json_object    *params;     /* borrowed; an object, or NULL when absent */
    int             code;       /* KMMCP_INVALID, or a notification with bad params */
    char            why[160];
};

/* Classify one parsed JSON-RPC message (an element of a batch, or a whole line). MCP rules:
 * the id is a string or an integer (never null), jsonrpc is "2.0", params is an object. A
 * notification with bad params is KMMCP_NOTIFICATION with code set (it is dropped, never
 * answered). */
void kmmcp_classify(json_object *o, struct kmmcp_msg *m);

/* 1 when two ids are the same JSON-RPC id (same type and value). */
int kmmcp_id_equal(json_object *a, json_object *b);

/* --- builders --------------------------------------------------------------------------- */

/* {"jsonrpc":"2.0","id":id,"result":result}. */
json_object *kmmcp_result(json_object *id, json_object *result);

/* {"jsonrpc":"2.0","id":id,"error":{"code","message","data"?}}; without an id (NULL: it could
 * not be read) the member is left out, never null. */
json_object *kmmcp_error(json_object *id, int code, const char *message, json_object *data);

/* {"jsonrpc":"2.0","method":method,"params":params?}. */
json_object *kmmcp_notification(const char *method, json_object *params);

/* --- output ------------------------------------------------------------------------------ */

typedef struct kmmcp_out {
    int             fd;
    int             broken;    /* a write failed: the peer is gone */
    pthread_mutex_t mu;
} kmmcp_out;

void kmmcp_out_init(kmmcp_out *o, int fd);
void kmmcp_out_destroy(kmmcp_out *o);

/* Write msg as one compact line (plus "\n") with nothing else in between. Does not take
 * ownership of msg. Returns 0, or -1 when the output is gone. */
int kmmcp_write(kmmcp_out *o, json_object *msg);

/* 1 once a write has failed. */
int kmmcp_out_broken(kmmcp_out *o);

#endif
