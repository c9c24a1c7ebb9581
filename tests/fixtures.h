/* fixtures.h — helpers for tests that run against real processes: free loopback ports,
 * temporary directories, the Klaviyo simulator and redis-server, and small HTTP calls to a
 * loopback server.
 *
 * Owns:    a kmfix_proc owns its child process and its directory; kmfix_stop stops the child
 *          (SIGTERM, then SIGKILL after two seconds), reaps it and removes the directory.
 *          A kmfix_canned owns its thread and socket; kmfix_canned_stop releases them.
 *          Strings returned by kmfix_tmpdir, kmfix_http and kmfix_canned_request are the
 *          caller's (free()).
 * Threads: start and stop from one thread (the one that owns the test); the canned server's
 *          counters may be read from any thread.
 * Fails:   functions return 0 (or a value) on success and -1 with a line on stderr, so a test
 *          can ck_assert on them.
 *
 * Children bind 127.0.0.1 only and die with the process that started them (PR_SET_PDEATHSIG),
 * so a crashed or failed test never leaves a simulator or redis-server behind. With Check,
 * start them in an unchecked fixture (it runs in the runner process, and its teardown runs
 * even when a test fails) and reset their state in each test.
 *
 * The simulator binary is taken from $KLAVIYO_SIM (set by `make check` through
 * AM_TESTS_ENVIRONMENT); redis-server from $REDIS_SERVER or the PATH.
 */
#ifndef KM_FIXTURES_H
#define KM_FIXTURES_H

#include <json-c/json.h>
#include <sys/types.h>

typedef struct kmfix_proc {
    pid_t pid;         /* 0 when not running */
    int   port;
    char  dir[256];    /* private temporary directory (logs, port file, data) */
    char  url[64];     /* "http://127.0.0.1:PORT" for the simulator, "redis://127.0.0.1:PORT" */
} kmfix_proc;

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. */
int kmfix_free_port(void);

/* A new directory under $TMPDIR (or /tmp) named after `tag`; the caller frees the path and
 * removes the tree with kmfix_rmtree. NULL on failure. */
char *kmfix_tmpdir(const char *tag);

/* Remove `path` and everything under it (no symlinks are followed). */
void kmfix_rmtree(const char *path);

/* Start the simulator ($KLAVIYO_SIM) on a port it picks itself (--port 0 --port-file), with
 * `args` (NULL-terminated, may be NULL) added, e.g. {"--no-limits", NULL}. Waits until it
 * answers GET /__sim/accounts (at most 15 s). */
int kmfix_start_sim(kmfix_proc *p, const char *const *args);

/* Start redis-server on a free port with no persistence; waits until it answers PING. */
int kmfix_start_redis(kmfix_proc *p);

/* Stop the process and remove its directory. Safe to call twice or on a zeroed struct. */
void kmfix_stop(kmfix_proc *p);

/* One HTTP request to a loopback server: `base` + `path`, with `body` (JSON, may be NULL).
 * Returns the HTTP status (or -1 when nothing was answered); *resp (may be NULL) receives the
 * body as a new string. */
long kmfix_http(const char *base, const char *method, const char *path, const char *body,
                char **resp);

/* The same, with the body parsed as JSON (*doc NULL when it is not JSON). */
long kmfix_http_json(const char *base, const char *method, const char *path, const char *body,
                     json_object **doc);

/* Delete every key in the redis at `url` ("redis://127.0.0.1:PORT"). 0 or -1. */
int kmfix_redis_flush(const char *url);

/* --- a canned HTTP server ---------------------------------------------------------------
 * A loopback server on a thread of the calling process. Each connection gets the next of the
 * raw HTTP responses it was given (the last one is repeated), then is closed; the raw request
 * (head and body) is recorded. Responses are sent as written: include Content-Length.
 * "%BASE%" in a response is replaced by the server's own base URL, and "%LEN%" (in the head)
 * by the length of the body. */
typedef struct kmfix_canned kmfix_canned;

kmfix_canned *kmfix_canned_start(const char *const *responses, size_t n);
void kmfix_canned_stop(kmfix_canned *c);          /* NULL ok; joins the thread */
const char *kmfix_canned_url(const kmfix_canned *c);
int kmfix_canned_count(kmfix_canned *c);          /* requests received so far */
char *kmfix_canned_request(kmfix_canned *c, int i);  /* copy of request i, or NULL */

#endif
