/* check_shim.c — the MCP shim's parts: stdio framing, strict parsing, message classification,
 * whole-line output, forwarding to a fake service over a Unix socket (progress, errors, a
 * service that dies mid-call, cancellation), and the private service's start and stop.
 *
 * The spawn cases need something to start in place of klaviyo-restd: this very binary, run
 * with KMTEST_FAKE_RESTD=1, serves GET /health and GET /v1/tools on $KLAVIYO_MCP_SOCKET and
 * appends one line describing how it was started to $KMTEST_FAKE_LOG.
 */
#include "err.h"
#include "forward.h"
#include "json.h"
#include "jsonrpc.h"
#include "spawn.h"
#include "util.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* --- helpers ----------------------------------------------------------------------------- */

/* short enough that every path built from it fits (a socket path must fit sun_path) */
static char tmpdir[64];

static void
make_tmpdir(void)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

    if (strlen(base) > 40)
        base = "/tmp";
    snprintf(tmpdir, sizeof(tmpdir), "%.40s/check_shim.XXXXXX", base);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
rm_tree(const char *path)
{
    DIR           *d = opendir(path);
    struct dirent *e;

    if (!d) {
        unlink(path);
        return;
    }
    for (;;) {
        char sub[PATH_MAX + 256];

        e = readdir(d);
        if (!e)
            break;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        rm_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

/* 1 while `pid` exists and is not a zombie. */
static int
process_alive(pid_t pid)
{
    char  path[64], buf[512];
    FILE *f;
    char *rp;
    int   alive = 0;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fgets(buf, sizeof(buf), f)) {
        rp = strrchr(buf, ')');
        alive = rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
    }
    fclose(f);
    return alive;
}

/* Wait (bounded, generously) for a process to go away. */
static int
wait_gone(pid_t pid)
{
    for (int i = 0; i < 3000; i++) {
        if (!process_alive(pid))
            return 1;
        sleep_ms(10);
    }
    return 0;
}

/* --- a fake klaviyo-restd: a tiny HTTP server on a Unix socket ---------------------------- */

enum fake_mode {
    FAKE_STREAM,      /* NDJSON: two progress lines, then the result */
    FAKE_PLAIN_404,   /* a plain JSON error envelope with status 404 */
    FAKE_DIE,         /* one progress line, then the connection closes */
    FAKE_HANG,        /* one progress line, then wait for the client to hang up */
    FAKE_BAD_LINE,    /* a line that is not JSON */
    FAKE_HEALTH_503   /* /health answers 503 */
};

struct fake {
    char            path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int             lfd;
    pthread_t       thread;
    atomic_int      mode;
    atomic_int      stop;
    atomic_int      requests;
    atomic_int      client_closed;   /* FAKE_HANG: the client hung up */
    atomic_int      progress_sent;
    pthread_mutex_t mu;
    char            last[8192];      /* the last request, head and body */
};

static const char tools_body[] =
    "{\"tools\":[{\"name\":\"klaviyo_get_flows\",\"title\":\"Flows\",\"description\":\"d\","
    "\"method\":\"GET\",\"route\":\"/v1/flows\",\"inputSchema\":{\"type\":\"object\"},"
    "\"outputSchema\":{\"type\":\"object\"},\"annotations\":{\"readOnlyHint\":true}}]}";

static int
listen_unix(const char *path)
{
    struct sockaddr_un sa;
    int                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    km_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 16) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void
send_chunk(int fd, const char *line)
{
    char head[32];

    snprintf(head, sizeof(head), "%zx\r\n", strlen(line));
    send_all(fd, head, strlen(head));
    send_all(fd, line, strlen(line));
    send_all(fd, "\r\n", 2);
}

static void
send_plain(int fd, int status, const char *body)
{
    char head[256];

    snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n", status, strlen(body));
    send_all(fd, head, strlen(head));
    send_all(fd, body, strlen(body));
}

static const char stream_head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
                                  "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";

/* Read one request (head and Content-Length body) into buf. Returns its length or -1. */
static ssize_t
read_request(int fd, char *buf, size_t cap)
{
    size_t      got = 0;
    const char *end = NULL, *cl;
    size_t      need = 0;

    while (got + 1 < cap) {
        ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);

        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        if (!end) {
            end = strstr(buf, "\r\n\r\n");
            if (!end)
                continue;
            cl = strcasestr(buf, "Content-Length:");
            need = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0);
        }
        if (got >= need)
            return (ssize_t)got;
    }
    return (ssize_t)got;
}

static void
serve_one(struct fake *f, int fd)
{
    char buf[8192];
    int  mode = atomic_load(&f->mode);

    if (read_request(fd, buf, sizeof(buf)) < 0)
        return;
    atomic_fetch_add(&f->requests, 1);
    pthread_mutex_lock(&f->mu);
    km_strlcpy(f->last, buf, sizeof(f->last));
    pthread_mutex_unlock(&f->mu);

    if (strncmp(buf, "GET /health ", 12) == 0) {
        if (mode == FAKE_HEALTH_503)
            send_plain(fd, 503, "{\"status\":\"draining\"}");
        else
            send_plain(fd, 200, "{\"status\":\"ok\"}");
        return;
    }
    if (strncmp(buf, "GET /v1/tools ", 14) == 0) {
        send_plain(fd, 200, tools_body);
        return;
    }
    switch (mode) {
    case FAKE_PLAIN_404:
        send_plain(fd, 404, "{\"error\":{\"code\":\"UNKNOWN_TOOL\",\"message\":\"unknown tool\"}}");
        return;
    case FAKE_BAD_LINE:
        send_all(fd, stream_head, strlen(stream_head));
        send_chunk(fd, "this is not json\n");
        send_all(fd, "0\r\n\r\n", 5);
        return;
    case FAKE_DIE:
        send_all(fd, stream_head, strlen(stream_head));
        send_chunk(fd, "{\"progress\":{\"done\":1,\"total\":4}}\n");
        return;   /* the connection closes without the result */
    case FAKE_HANG: {
        char c;

        send_all(fd, stream_head, strlen(stream_head));
        send_chunk(fd, "{\"progress\":{\"done\":1,\"total\":9}}\n");
        atomic_store(&f->progress_sent, 1);
        while (recv(fd, &c, 1, 0) > 0)
            ;
        atomic_store(&f->client_closed, 1);
        return;
    }
    default:
        if (!strcasestr(buf, "Accept: application/x-ndjson")) {
            send_plain(fd, 200, "{\"data\":{\"x\":1},\"metadata\":{},\"warnings\":[]}");
            return;
        }
        send_all(fd, stream_head, strlen(stream_head));
        send_chunk(fd, "{\"progress\":{\"done\":1,\"total\":2}}\n");
        /* a line split over two chunks must still arrive whole */
        send_chunk(fd, "{\"progress\":{\"done\":2,");
        send_chunk(fd, "\"total\":2}}\n");
        /* a keep-alive: the call still waits, nothing new is done */
        send_chunk(fd, "{\"progress\":{\"done\":2,\"total\":2,\"waiting\":true}}\n");
        send_chunk(fd, "{\"status\":200,\"result\":{\"data\":{\"x\":1},\"metadata\":{},"
                   "\"warnings\":[]}}\n");
        send_all(fd, "0\r\n\r\n", 5);
        return;
    }
}

static void *
fake_loop(void *arg)
{
    struct fake *f = arg;

    while (!atomic_load(&f->stop)) {
        int fd = accept(f->lfd, NULL, NULL);

        if (fd < 0)
            continue;
        if (atomic_load(&f->stop)) {
            close(fd);
            break;
        }
        serve_one(f, fd);
        close(fd);
    }
    return NULL;
}

static struct fake *
fake_start(const char *path, enum fake_mode mode)
{
    struct fake *f = calloc(1, sizeof(*f));

    km_strlcpy(f->path, path, sizeof(f->path));
    atomic_init(&f->mode, mode);
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = listen_unix(path);
    ck_assert_int_ge(f->lfd, 0);
    ck_assert_int_eq(pthread_create(&f->thread, NULL, fake_loop, f), 0);
    return f;
}

static void
fake_stop(struct fake *f)
{
    int fd;
    struct sockaddr_un sa;

    atomic_store(&f->stop, 1);
    /* wake accept() */
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    km_strlcpy(sa.sun_path, f->path, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->thread, NULL);
    close(fd);
    close(f->lfd);
    unlink(f->path);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static char *
fake_last(struct fake *f)
{
    char *s;

    pthread_mutex_lock(&f->mu);
    s = strdup(f->last);
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* The process that stands in for klaviyo-restd (KMTEST_FAKE_RESTD=1). */
static int
fake_restd_main(int argc, char **argv)
{
    const char *sock = getenv("KLAVIYO_MCP_SOCKET");
    const char *mode = getenv("KMTEST_FAKE_MODE") ? getenv("KMTEST_FAKE_MODE") : "ok";
    const char *logp = getenv("KMTEST_FAKE_LOG");
    struct stat s0, sn, s1, s2;
    struct fake f;
    int         extra = 0, lfd;
    DIR        *d;
    struct dirent *e;

    /* how were we started? */
    d = opendir("/proc/self/fd");
    for (e = d ? readdir(d) : NULL; e; e = readdir(d))
        if (atoi(e->d_name) > 2 && atoi(e->d_name) != dirfd(d))
            extra++;
    if (d)
        closedir(d);
    if (logp) {
        FILE *lf = fopen(logp, "a");

        if (lf) {
            fprintf(lf, "pid=%ld arg=%s workers=%s rest_port=%s socket=%s stdin_null=%d "
                    "stdout_stderr=%d extra_fds=%d\n", (long)getpid(), argc > 1 ? argv[1] : "",
                    getenv("WORKERS") ? getenv("WORKERS") : "", getenv("REST_PORT") ?
                    getenv("REST_PORT") : "", sock ? sock : "",
                    fstat(0, &s0) == 0 && stat("/dev/null", &sn) == 0 &&
                    s0.st_rdev == sn.st_rdev,
                    fstat(1, &s1) == 0 && fstat(2, &s2) == 0 && s1.st_ino == s2.st_ino &&
                    s1.st_dev == s2.st_dev, extra);
            fclose(lf);
        }
    }
    if (strcmp(mode, "exit78") == 0)
        return 78;
    if (strcmp(mode, "ignore_term") == 0)
        signal(SIGTERM, SIG_IGN);
    if (strcmp(mode, "never_ready") == 0) {
        for (;;)
            pause();
    }
    if (!sock)
        return 1;
    lfd = listen_unix(sock);
    if (lfd < 0)
        return 1;
    memset(&f, 0, sizeof(f));
    atomic_init(&f.mode, FAKE_STREAM);
    pthread_mutex_init(&f.mu, NULL);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0)
            continue;
        serve_one(&f, fd);
        close(fd);
    }
}

/* --- framing ----------------------------------------------------------------------------- */

static enum kmmcp_event
next_line(kmmcp_reader *r, char **line, size_t *len)
{
    return kmmcp_reader_next(r, line, len);
}

START_TEST(a_line_split_across_reads_is_one_message)
{
    kmmcp_reader r;
    char        *line;
    size_t       len;

    kmmcp_reader_init(&r, 1024);
    kmmcp_reader_push(&r, "{\"a\":", 5);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    kmmcp_reader_push(&r, "1}\n{\"b\"", 7);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "{\"a\":1}");
    ck_assert_uint_eq(len, 7);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    kmmcp_reader_push(&r, ":2}\n", 4);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "{\"b\":2}");
    kmmcp_reader_free(&r);
}
END_TEST

START_TEST(crlf_endings_are_stripped_and_blank_lines_skipped)
{
    kmmcp_reader r;
    char        *line;
    size_t       len;

    kmmcp_reader_init(&r, 1024);
    kmmcp_reader_push(&r, "\n  \r\n[1]\r\n\t\n[2]\n", 17);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "[1]");
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "[2]");
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    kmmcp_reader_free(&r);
}
END_TEST

START_TEST(a_five_megabyte_line_is_reported_once_and_the_next_line_still_parses)
{
    kmmcp_reader r;
    char        *line, *chunk = malloc(65536);
    size_t       len;
    int          too_long = 0, lines = 0;

    memset(chunk, 'x', 65536);
    kmmcp_reader_init(&r, 4u * 1024u * 1024u);
    kmmcp_reader_push(&r, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"", 34);
    for (int i = 0; i < 80; i++) {   /* 80 x 64 KiB = 5 MiB, no newline yet */
        enum kmmcp_event ev;

        kmmcp_reader_push(&r, chunk, 65536);
        for (ev = next_line(&r, &line, &len); ev != KMMCP_NEED_MORE;
             ev = next_line(&r, &line, &len)) {
            too_long += ev == KMMCP_TOO_LONG;
            lines += ev == KMMCP_LINE;
        }
        /* memory stays bounded while the line is dropped */
        ck_assert_uint_le(r.cap, 16u * 1024u * 1024u);
    }
    kmmcp_reader_push(&r, "\"}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}\n", 45);
    for (;;) {
        enum kmmcp_event ev = next_line(&r, &line, &len);

        if (ev == KMMCP_NEED_MORE)
            break;
        too_long += ev == KMMCP_TOO_LONG;
        if (ev == KMMCP_LINE) {
            lines++;
            ck_assert_str_eq(line, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}");
        }
    }
    ck_assert_int_eq(too_long, 1);
    ck_assert_int_eq(lines, 1);
    kmmcp_reader_free(&r);
    free(chunk);
}
END_TEST

START_TEST(an_overlong_line_arriving_whole_is_reported_once)
{
    kmmcp_reader r;
    char        *line;
    size_t       len;

    kmmcp_reader_init(&r, 8);
    kmmcp_reader_push(&r, "0123456789abcdef\n[7]\n", 21);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_TOO_LONG);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "[7]");
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    kmmcp_reader_free(&r);
}
END_TEST

START_TEST(the_last_line_without_a_newline_counts_at_end_of_input)
{
    kmmcp_reader r;
    char        *line;
    size_t       len;
    int          p[2];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "[1]\n[2]", 7), 7);
    close(p[1]);
    kmmcp_reader_init(&r, 64);
    while (kmmcp_reader_fill(&r, p[0]) > 0)
        ;
    ck_assert_int_eq(r.eof, 1);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "[1]");
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_str_eq(line, "[2]");
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    close(p[0]);
    kmmcp_reader_free(&r);
}
END_TEST

/* Found by fuzz_mcp: asking a reader that never held a byte computed NULL + 0. */
START_TEST(a_reader_that_never_read_asks_for_more)
{
    kmmcp_reader r;
    char        *line = NULL;
    size_t       len = 0;

    kmmcp_reader_init(&r, 64);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    r.eof = 1;
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_NEED_MORE);
    ck_assert_ptr_null(line);
    kmmcp_reader_free(&r);
}
END_TEST

START_TEST(a_nul_byte_stays_in_the_line)
{
    kmmcp_reader r;
    char        *line;
    size_t       len;

    kmmcp_reader_init(&r, 64);
    kmmcp_reader_push(&r, "[1\0002]\n", 6);
    ck_assert_int_eq(next_line(&r, &line, &len), KMMCP_LINE);
    ck_assert_uint_eq(len, 5);
    kmmcp_reader_free(&r);
}
END_TEST

/* --- parsing ----------------------------------------------------------------------------- */

static kmcode
parse(const char *s, size_t n, json_object **o, kmerr *e)
{
    return kmmcp_parse(s, n, o, e);
}

START_TEST(malformed_json_is_refused_with_where)
{
    json_object *o;
    kmerr        e = { 0 };

    ck_assert_int_eq(parse("{\"a\":", 5, &o, &e), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    ck_assert_ptr_nonnull(strstr(e.msg, "end of input"));
    kmerr_clear(&e);
    ck_assert_int_eq(parse("{\"a\":1,}", 8, &o, &e), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "offset"));
    kmerr_clear(&e);
    ck_assert_int_eq(parse("[1,]", 4, &o, &e), KM_INVALID_ARGUMENT);
    kmerr_clear(&e);
    ck_assert_int_eq(parse("{\"a\":01}", 8, &o, &e), KM_INVALID_ARGUMENT);
    kmerr_clear(&e);
    ck_assert_int_eq(parse("{} {}", 5, &o, &e), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(o);
    kmerr_clear(&e);
    ck_assert_int_eq(parse("null", 4, &o, &e), KM_INVALID_ARGUMENT);
    kmerr_clear(&e);
}
END_TEST

START_TEST(binary_bytes_and_bad_utf8_are_refused)
{
    static const char *const bad[] = {
        "{\"a\":\"\xff\"}",          /* not UTF-8 at all */
        "{\"a\":\"\xc0\x80\"}",      /* overlong NUL */
        "{\"a\":\"\xed\xa0\x80\"}",  /* a surrogate */
        "{\"a\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"a\":\"\xe2\x82\"}",      /* truncated */
        "\x89PNG\r\n\x1a\n",
    };
    json_object *o;
    kmerr        e = { 0 };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(parse(bad[i], strlen(bad[i]), &o, &e), KM_INVALID_ARGUMENT);
        ck_assert_ptr_null(o);
        kmerr_clear(&e);
    }
    ck_assert_int_eq(parse("{\"a\":1}\0", 8, &o, &e), KM_INVALID_ARGUMENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "NUL"));
    kmerr_clear(&e);
}
END_TEST

START_TEST(multibyte_utf8_is_accepted)
{
    const char   s[] = "{\"a\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}";
    json_object *o;

    ck_assert_int_eq(parse(s, strlen(s), &o, NULL), KM_OK);
    ck_assert_str_eq(kmjson_str(o, "a"), "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80");
    json_object_put(o);
}
END_TEST

START_TEST(nesting_deeper_than_64_is_refused)
{
    char         s[300];
    json_object *o;
    kmerr        e = { 0 };

    memset(s, '[', 100);
    memset(s + 100, ']', 100);
    ck_assert_int_eq(parse(s, 200, &o, &e), KM_INVALID_ARGUMENT);
    kmerr_clear(&e);
    ck_assert_int_eq(parse(s + 40, 120, &o, &e), KM_OK);   /* 60 deep is fine */
    json_object_put(o);
}
END_TEST

/* --- classification ---------------------------------------------------------------------- */

static void
classify(const char *text, struct kmmcp_msg *m, json_object **o)
{
    ck_assert_int_eq(kmmcp_parse(text, strlen(text), o, NULL), KM_OK);
    kmmcp_classify(*o, m);
}

START_TEST(requests_notifications_and_responses_are_told_apart)
{
    struct kmmcp_msg m;
    json_object     *o;

    classify("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/list\",\"params\":{}}", &m, &o);
    ck_assert_int_eq(m.kind, KMMCP_REQUEST);
    ck_assert_str_eq(m.method, "tools/list");
    ck_assert_str_eq(json_object_get_string(m.id), "a");
    ck_assert_ptr_nonnull(m.params);
    json_object_put(o);

    classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, &o);
    ck_assert_int_eq(m.kind, KMMCP_NOTIFICATION);
    ck_assert_ptr_null(m.id);
    json_object_put(o);

    classify("{\"jsonrpc\":\"2.0\",\"id\":4,\"result\":{}}", &m, &o);
    ck_assert_int_eq(m.kind, KMMCP_RESPONSE);
    json_object_put(o);
}
END_TEST

START_TEST(bad_ids_versions_and_shapes_are_invalid_requests)
{
    static const char *const bad[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",
        "{\"id\":1,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",
        "{\"jsonrpc\":\"2.0\",\"id\":1}",
        "[]",
        "42",
        "\"ping\"",
    };
    struct kmmcp_msg m;
    json_object     *o;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        classify(bad[i], &m, &o);
        ck_assert_msg(m.kind == KMMCP_INVALID, "%s", bad[i]);
        ck_assert_int_eq(m.code, KMMCP_INVALID_REQUEST);
        ck_assert(m.why[0] != '\0');
        json_object_put(o);
    }
    /* a readable id is kept for the error response */
    classify("{\"jsonrpc\":\"1.0\",\"id\":9,\"method\":\"ping\"}", &m, &o);
    ck_assert_int_eq(json_object_get_int(m.id), 9);
    json_object_put(o);
}
END_TEST

START_TEST(params_that_are_not_an_object_are_invalid_params)
{
    struct kmmcp_msg m;
    json_object     *o;

    classify("{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":[1]}", &m, &o);
    ck_assert_int_eq(m.kind, KMMCP_INVALID);
    ck_assert_int_eq(m.code, KMMCP_INVALID_PARAMS);
    ck_assert_int_eq(json_object_get_int(m.id), 3);
    json_object_put(o);
    /* a notification with bad params is still a notification: never answered */
    classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":3}", &m, &o);
    ck_assert_int_eq(m.kind, KMMCP_NOTIFICATION);
    ck_assert_int_eq(m.code, KMMCP_INVALID_PARAMS);
    json_object_put(o);
}
END_TEST

START_TEST(ids_are_equal_only_with_the_same_type_and_value)
{
    json_object *a = json_object_new_int(5), *b = json_object_new_int(5);
    json_object *s = json_object_new_string("5"), *t = json_object_new_string("5");
    json_object *u = json_object_new_string("6");

    ck_assert(kmmcp_id_equal(a, b));
    ck_assert(kmmcp_id_equal(s, t));
    ck_assert(!kmmcp_id_equal(a, s));
    ck_assert(!kmmcp_id_equal(s, u));
    ck_assert(!kmmcp_id_equal(a, NULL));
    json_object_put(a);
    json_object_put(b);
    json_object_put(s);
    json_object_put(t);
    json_object_put(u);
}
END_TEST

/* --- builders and output ----------------------------------------------------------------- */

/* MCP 2025-11-25 schema: "export interface JSONRPCErrorResponse { jsonrpc: typeof
 * JSONRPC_VERSION; id?: RequestId; error: Error; }" and "export type RequestId = string |
 * number;" -- an id that could not be read is left out, never null. */
START_TEST(an_error_without_a_readable_id_has_no_id_member)
{
    json_object *e = kmmcp_error(NULL, KMMCP_PARSE_ERROR, "Parse error: x", NULL);

    ck_assert_str_eq(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN),
                     "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32700,"
                     "\"message\":\"Parse error: x\"}}");
    json_object_put(e);
}
END_TEST

struct writer_arg {
    kmmcp_out *out;
    int        n;
    int        tag;
};

static void *
writer(void *arg)
{
    struct writer_arg *w = arg;

    for (int i = 0; i < w->n; i++) {
        json_object *p = json_object_new_object();
        json_object *msg;
        char         big[3000];

        memset(big, 'a' + w->tag, sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        json_object_object_add(p, "tag", json_object_new_int(w->tag));
        json_object_object_add(p, "text", json_object_new_string(big));
        json_object_object_add(p, "nl", json_object_new_string("line\nbreak"));
        msg = kmmcp_notification("notifications/progress", p);
        kmmcp_write(w->out, msg);
        json_object_put(msg);
    }
    return NULL;
}

START_TEST(concurrent_writers_never_interleave_lines)
{
    char              path[PATH_MAX];
    int               fd;
    kmmcp_out         out;
    pthread_t         th[4];
    struct writer_arg wa[4];
    FILE             *f;
    char             *line = NULL;
    size_t            cap = 0;
    int               count = 0;

    make_tmpdir();
    snprintf(path, sizeof(path), "%s/out", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    kmmcp_out_init(&out, fd);
    for (int i = 0; i < 4; i++) {
        wa[i].out = &out;
        wa[i].n = 200;
        wa[i].tag = i;
        pthread_create(&th[i], NULL, writer, &wa[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    close(fd);
    kmmcp_out_destroy(&out);
    f = fopen(path, "r");
    while (getline(&line, &cap, f) > 0) {
        json_object *o;

        ck_assert_int_eq(kmmcp_parse(line, strlen(line), &o, NULL), KM_OK);
        ck_assert_str_eq(kmjson_str(kmjson_get(o, "params"), "nl"), "line\nbreak");
        json_object_put(o);
        count++;
    }
    ck_assert_int_eq(count, 800);
    free(line);
    fclose(f);
    rm_tree(tmpdir);
}
END_TEST

START_TEST(writing_to_a_closed_output_marks_it_broken)
{
    int          p[2];
    kmmcp_out    out;
    json_object *msg = kmmcp_notification("x", NULL);

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    kmmcp_out_init(&out, p[1]);
    ck_assert_int_eq(kmmcp_out_broken(&out), 0);
    ck_assert_int_eq(kmmcp_write(&out, msg), -1);
    ck_assert_int_eq(kmmcp_out_broken(&out), 1);
    ck_assert_int_eq(kmmcp_write(&out, msg), -1);
    kmmcp_out_destroy(&out);
    close(p[1]);
    json_object_put(msg);
}
END_TEST

/* --- forwarding -------------------------------------------------------------------------- */

static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

static void
fwd_setup(void)
{
    make_tmpdir();
    snprintf(sock_path, sizeof(sock_path), "%s/restd.sock", tmpdir);
}

static void
fwd_teardown(void)
{
    rm_tree(tmpdir);
}

struct progress_log {
    long done[8];
    long total[8];
    int  waiting[8];
    int  n;
};

static void
log_progress(void *arg, long done, long total, int waiting)
{
    struct progress_log *p = arg;

    if (p->n < 8) {
        p->done[p->n] = done;
        p->total[p->n] = total;
        p->waiting[p->n] = waiting;
    }
    p->n++;
}

START_TEST(tool_names_must_be_lowercase_letters_and_underscores)
{
    ck_assert(kmmcp_tool_name_ok("klaviyo_get_flows"));
    ck_assert(!kmmcp_tool_name_ok(""));
    ck_assert(!kmmcp_tool_name_ok(NULL));
    ck_assert(!kmmcp_tool_name_ok("../health"));
    ck_assert(!kmmcp_tool_name_ok("Klaviyo"));
    ck_assert(!kmmcp_tool_name_ok("a b"));
    ck_assert(!kmmcp_tool_name_ok("tool2"));
}
END_TEST

START_TEST(a_streamed_call_delivers_progress_then_the_envelope)
{
    struct fake        *f = fake_start(sock_path, FAKE_STREAM);
    struct progress_log pl = { { 0 }, { 0 }, { 0 }, 0 };
    json_object        *args = json_object_new_object(), *env = NULL;
    kmmcp_call         *c;
    kmerr               e = { 0 };
    int                 status = 0;
    char               *req;

    json_object_object_add(args, "status", json_object_new_string("live"));
    c = kmmcp_call_new(sock_path, "klaviyo_get_flows", args, 1, 10000, log_progress, &pl);
    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, &e), KM_OK);
    ck_assert_int_eq(status, 200);
    ck_assert_int_eq((int)kmjson_num(kmjson_get(env, "data"), "x", 0), 1);
    ck_assert_int_eq(pl.n, 3);
    ck_assert_int_eq(pl.done[0], 1);
    ck_assert_int_eq(pl.done[1], 2);
    ck_assert_int_eq(pl.total[1], 2);
    ck_assert_int_eq(pl.waiting[1], 0);
    /* the keep-alive line reaches the caller marked as waiting */
    ck_assert_int_eq(pl.done[2], 2);
    ck_assert_int_eq(pl.waiting[2], 1);
    req = fake_last(f);
    ck_assert_ptr_nonnull(strstr(req, "POST /v1/tools/klaviyo_get_flows HTTP/1.1"));
    ck_assert_ptr_nonnull(strcasestr(req, "Accept: application/x-ndjson"));
    ck_assert_ptr_nonnull(strstr(req, "\r\n\r\n{\"status\":\"live\"}"));
    free(req);
    json_object_put(env);
    json_object_put(args);
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

START_TEST(without_a_progress_token_the_call_is_plain_json)
{
    struct fake *f = fake_start(sock_path, FAKE_STREAM);
    json_object *env = NULL;
    kmmcp_call  *c = kmmcp_call_new(sock_path, "klaviyo_get_flows", NULL, 0, 10000, NULL, NULL);
    int          status = 0;
    char        *req;

    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, NULL), KM_OK);
    ck_assert_int_eq(status, 200);
    ck_assert_ptr_nonnull(kmjson_get(env, "data"));
    req = fake_last(f);
    ck_assert_ptr_null(strcasestr(req, "x-ndjson"));
    ck_assert_ptr_nonnull(strstr(req, "\r\n\r\n{}"));
    free(req);
    json_object_put(env);
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

START_TEST(an_error_answered_before_streaming_keeps_its_status_and_envelope)
{
    struct fake *f = fake_start(sock_path, FAKE_PLAIN_404);
    json_object *env = NULL;
    kmmcp_call  *c = kmmcp_call_new(sock_path, "nope", NULL, 1, 10000, NULL, NULL);
    int          status = 0;

    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, NULL), KM_OK);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(kmjson_str(kmjson_get(env, "error"), "code"), "UNKNOWN_TOOL");
    json_object_put(env);
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

START_TEST(a_service_that_dies_mid_call_is_an_upstream_error_saying_so)
{
    struct fake        *f = fake_start(sock_path, FAKE_DIE);
    struct progress_log pl = { { 0 }, { 0 }, { 0 }, 0 };
    json_object        *env = NULL;
    kmmcp_call         *c = kmmcp_call_new(sock_path, "klaviyo_get_flows", NULL, 1, 10000,
                                           log_progress, &pl);
    kmerr               e = { 0 };
    int                 status = 0;

    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, &e), KM_UPSTREAM_ERROR);
    ck_assert_str_eq(e.msg, KMMCP_SERVICE_STOPPED);
    ck_assert_ptr_null(env);
    ck_assert_int_eq(pl.n, 1);
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

START_TEST(a_line_that_is_not_json_is_an_upstream_error)
{
    struct fake *f = fake_start(sock_path, FAKE_BAD_LINE);
    json_object *env = NULL;
    kmmcp_call  *c = kmmcp_call_new(sock_path, "klaviyo_get_flows", NULL, 1, 10000, NULL, NULL);
    kmerr        e = { 0 };
    int          status = 0;

    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, &e), KM_UPSTREAM_ERROR);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a JSON object"));
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

struct cancel_arg {
    struct fake *f;
    kmmcp_call  *c;
};

static void *
canceller(void *arg)
{
    struct cancel_arg *a = arg;

    while (!atomic_load(&a->f->progress_sent))
        sleep_ms(5);
    kmmcp_call_cancel(a->c);
    return NULL;
}

START_TEST(cancelling_a_call_hangs_up_on_the_service)
{
    struct fake      *f = fake_start(sock_path, FAKE_HANG);
    json_object      *env = NULL;
    kmmcp_call       *c = kmmcp_call_new(sock_path, "klaviyo_get_flows", NULL, 1, 0, NULL, NULL);
    struct cancel_arg ca = { f, c };
    pthread_t         th;
    kmerr             e = { 0 };
    int               status = 0;

    pthread_create(&th, NULL, canceller, &ca);
    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, &e), KM_CANCELLED);
    pthread_join(th, NULL);
    ck_assert_ptr_null(env);
    /* the service sees the connection close: that is how it learns to stop */
    for (int i = 0; i < 3000 && !atomic_load(&f->client_closed); i++)
        sleep_ms(10);
    ck_assert_int_eq(atomic_load(&f->client_closed), 1);
    kmmcp_call_free(c);
    fake_stop(f);
}
END_TEST

START_TEST(nothing_listening_is_service_unavailable)
{
    json_object *env = NULL;
    kmmcp_call  *c = kmmcp_call_new(sock_path, "klaviyo_get_flows", NULL, 1, 10000, NULL, NULL);
    kmerr        e = { 0 };
    int          status = 0;

    ck_assert_int_eq(kmmcp_call_run(c, &status, &env, &e), KM_SERVICE_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(e.msg, sock_path));
    kmmcp_call_free(c);
    ck_assert_int_eq(kmmcp_health(sock_path, 500, NULL), KM_SERVICE_UNAVAILABLE);
}
END_TEST

START_TEST(health_is_ok_only_when_the_service_answers_200)
{
    struct fake *f = fake_start(sock_path, FAKE_STREAM);

    ck_assert_int_eq(kmmcp_health(sock_path, 2000, NULL), KM_OK);
    atomic_store(&f->mode, FAKE_HEALTH_503);
    ck_assert_int_eq(kmmcp_health(sock_path, 2000, NULL), KM_SERVICE_UNAVAILABLE);
    fake_stop(f);
}
END_TEST

START_TEST(the_tool_list_is_the_tools_array)
{
    struct fake *f = fake_start(sock_path, FAKE_STREAM);
    json_object *tools = NULL;

    ck_assert_int_eq(kmmcp_fetch_tools(sock_path, 2000, &tools, NULL), KM_OK);
    ck_assert(json_object_is_type(tools, json_type_array));
    ck_assert_uint_eq(json_object_array_length(tools), 1);
    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(tools, 0), "name"),
                     "klaviyo_get_flows");
    json_object_put(tools);
    fake_stop(f);
}
END_TEST

/* --- the private service ----------------------------------------------------------------- */

static char self_exe[PATH_MAX];
static char fake_log[PATH_MAX];

static void
spawn_setup(void)
{
    fwd_setup();
    snprintf(fake_log, sizeof(fake_log), "%s/fake.log", tmpdir);
    setenv("KMTEST_FAKE_RESTD", "1", 1);
    setenv("KMTEST_FAKE_LOG", fake_log, 1);
    setenv("KMTEST_FAKE_MODE", "ok", 1);
}

static void
spawn_teardown(void)
{
    unsetenv("KMTEST_FAKE_RESTD");
    fwd_teardown();
}

static struct kmmcp_svc_opts
opts(const char *sock)
{
    struct kmmcp_svc_opts o;

    memset(&o, 0, sizeof(o));
    o.socket_path = sock;
    o.restd = self_exe;
    o.start_ms = 15000;
    o.grace_ms = 3000;
    o.spawn = 1;
    return o;
}

/* The n-th line (from 0) the fake service logged, as a new string, or NULL. */
static char *
fake_line(int n)
{
    FILE  *f = fopen(fake_log, "r");
    char  *line = NULL;
    size_t cap = 0;
    int    i = 0;

    if (!f)
        return NULL;
    while (getline(&line, &cap, f) > 0) {
        if (i++ == n) {
            fclose(f);
            return line;
        }
    }
    free(line);
    fclose(f);
    return NULL;
}

START_TEST(a_private_service_gets_one_worker_no_tcp_and_clean_descriptors)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s = kmmcp_svc_start(&o);
    char                  got[256], want[512], *line;
    unsigned              gen;
    kmerr                 e = { 0 };
    pid_t                 pid;

    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, &e), KM_OK);
    ck_assert_str_eq(got, sock_path);
    pid = kmmcp_svc_child(s);
    ck_assert_int_gt(pid, 0);
    ck_assert(process_alive(pid));
    line = fake_line(0);
    ck_assert_ptr_nonnull(line);
    snprintf(want, sizeof(want), "pid=%ld arg=--socket-only workers=1 rest_port=0 socket=%s "
             "stdin_null=1 stdout_stderr=1 extra_fds=0\n", (long)pid, sock_path);
    ck_assert_str_eq(line, want);
    free(line);
    /* the same service is handed out again */
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, &e), KM_OK);
    ck_assert_int_eq(kmmcp_svc_child(s), pid);
    kmmcp_svc_free(s);
    ck_assert(!process_alive(pid));
    ck_assert_ptr_null(fake_line(1));
}
END_TEST

START_TEST(a_shared_service_is_used_and_never_stopped)
{
    struct fake          *f = fake_start(sock_path, FAKE_STREAM);
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s = kmmcp_svc_start(&o);
    char                  got[256];
    unsigned              gen;

    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, NULL), KM_OK);
    ck_assert_str_eq(got, sock_path);
    ck_assert_int_eq(kmmcp_svc_child(s), 0);
    kmmcp_svc_free(s);
    ck_assert_ptr_null(fake_line(0));            /* nothing was started */
    ck_assert_int_eq(kmmcp_health(sock_path, 2000, NULL), KM_OK);   /* still serving */
    fake_stop(f);
}
END_TEST

START_TEST(without_spawning_a_missing_service_is_unavailable)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s;
    char                  got[256];
    unsigned              gen;
    kmerr                 e = { 0 };

    o.spawn = 0;
    s = kmmcp_svc_start(&o);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, &e), KM_SERVICE_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(e.msg, "no klaviyo-restd answers"));
    kmerr_clear(&e);
    kmmcp_svc_free(s);
    ck_assert_ptr_null(fake_line(0));
}
END_TEST

START_TEST(a_service_that_ignores_sigterm_is_killed_after_the_grace_period)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s;
    char                  got[256];
    unsigned              gen;
    pid_t                 pid;

    setenv("KMTEST_FAKE_MODE", "ignore_term", 1);
    o.grace_ms = 300;
    s = kmmcp_svc_start(&o);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, NULL), KM_OK);
    pid = kmmcp_svc_child(s);
    ck_assert_int_gt(pid, 0);
    kmmcp_svc_free(s);
    ck_assert(!process_alive(pid));
}
END_TEST

START_TEST(exit_78_from_the_service_is_a_config_error)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s;
    char                  got[256];
    unsigned              gen;
    kmerr                 e = { 0 };

    setenv("KMTEST_FAKE_MODE", "exit78", 1);
    s = kmmcp_svc_start(&o);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, &e), KM_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(e.msg, "exit 78"));
    kmerr_clear(&e);
    kmmcp_svc_free(s);
}
END_TEST

START_TEST(a_service_that_never_answers_is_stopped_after_the_start_timeout)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s;
    char                  got[256], *line;
    unsigned              gen;
    kmerr                 e = { 0 };
    long                  pid;

    setenv("KMTEST_FAKE_MODE", "never_ready", 1);
    o.start_ms = 500;
    s = kmmcp_svc_start(&o);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, &e), KM_SERVICE_UNAVAILABLE);
    ck_assert_ptr_nonnull(strstr(e.msg, "did not answer"));
    kmerr_clear(&e);
    ck_assert_int_eq(kmmcp_svc_child(s), 0);
    line = fake_line(0);
    ck_assert_ptr_nonnull(line);
    pid = strtol(line + 4, NULL, 10);
    free(line);
    ck_assert(!process_alive((pid_t)pid));
    kmmcp_svc_free(s);
}
END_TEST

START_TEST(an_unusable_socket_path_falls_back_to_a_private_socket)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s;
    char                  got[256], dir[256], *slash;
    unsigned              gen;
    struct stat           st;
    int                   fd;

    /* a regular file where the socket should be: a service could not bind there */
    fd = open(sock_path, O_WRONLY | O_CREAT, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(kmmcp_socket_usable(sock_path), 0);
    s = kmmcp_svc_start(&o);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, NULL), KM_OK);
    ck_assert_str_ne(got, sock_path);
    ck_assert_ptr_nonnull(strstr(got, "/klaviyo-mcp-"));
    km_strlcpy(dir, got, sizeof(dir));
    slash = strrchr(dir, '/');
    *slash = '\0';
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    kmmcp_svc_free(s);
    ck_assert_int_ne(stat(dir, &st), 0);      /* removed with the service */
}
END_TEST

START_TEST(a_private_service_that_died_is_started_again)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s = kmmcp_svc_start(&o);
    char                  got[256];
    unsigned              gen, gen2;
    pid_t                 first, second;

    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, NULL), KM_OK);
    first = kmmcp_svc_child(s);
    kill(first, SIGKILL);
    for (int i = 0; i < 1000 && kmmcp_health(sock_path, 200, NULL) == KM_OK; i++)
        sleep_ms(10);
    kmmcp_svc_lost(s, gen);
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen2, NULL), KM_OK);
    second = kmmcp_svc_child(s);
    ck_assert_int_gt(second, 0);
    ck_assert_int_ne(second, first);
    ck_assert_uint_ne(gen2, gen);
    kmmcp_svc_free(s);
    ck_assert(!process_alive(second));
}
END_TEST

START_TEST(a_private_service_that_dies_is_reaped_at_once_and_says_how)
{
    struct kmmcp_svc_opts o = opts(sock_path);
    kmmcp_svc            *s = kmmcp_svc_start(&o);
    char                  got[256], why[200] = "";
    unsigned              gen, gen2;
    pid_t                 first, second;
    int                   reaped = 0;

    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen, NULL), KM_OK);
    first = kmmcp_svc_child(s);
    ck_assert_int_gt(first, 0);
    /* nothing died yet: nothing is reaped */
    ck_assert_int_eq(kmmcp_svc_reap(s, why, sizeof(why)), 0);
    kill(first, SIGKILL);
    for (int i = 0; i < 500 && !reaped; i++) {
        pid_t dead = kmmcp_svc_reap(s, why, sizeof(why));

        reaped = dead == first;
        if (dead > 0)
            kmmcp_svc_kill_group(dead);
        else
            sleep_ms(10);
    }
    ck_assert_int_eq(reaped, 1);
    ck_assert_ptr_nonnull(strstr(why, "killed by signal 9"));
    ck_assert_int_eq(kmmcp_svc_child(s), 0);
    ck_assert(!process_alive(first));
    /* no kmmcp_svc_lost needed: the next get starts a new one */
    ck_assert_int_eq(kmmcp_svc_get(s, got, sizeof(got), &gen2, NULL), KM_OK);
    second = kmmcp_svc_child(s);
    ck_assert_int_gt(second, 0);
    ck_assert_int_ne(second, first);
    ck_assert_uint_ne(gen2, gen);
    kmmcp_svc_free(s);
    ck_assert(!process_alive(second));
}
END_TEST

START_TEST(the_private_service_dies_with_a_sigkilled_shim)
{
    int   p[2];
    pid_t helper, child = 0;

    ck_assert_int_eq(pipe(p), 0);
    helper = fork();
    if (helper == 0) {
        struct kmmcp_svc_opts o = opts(sock_path);
        kmmcp_svc            *s;
        char                  got[256];
        unsigned              gen;
        pid_t                 c = 0;

        close(p[0]);
        s = kmmcp_svc_start(&o);
        if (kmmcp_svc_get(s, got, sizeof(got), &gen, NULL) == KM_OK)
            c = kmmcp_svc_child(s);
        if (write(p[1], &c, sizeof(c)) != (ssize_t)sizeof(c))
            _exit(1);
        for (;;)
            pause();
    }
    close(p[1]);
    ck_assert_int_eq(read(p[0], &child, sizeof(child)), (ssize_t)sizeof(child));
    close(p[0]);
    ck_assert_int_gt(child, 0);
    ck_assert(process_alive(child));
    kill(helper, SIGKILL);
    waitpid(helper, NULL, 0);
    ck_assert_msg(wait_gone(child), "klaviyo-restd stand-in %ld outlived the shim", (long)child);
}
END_TEST

START_TEST(the_restd_binary_is_found_by_override_then_path)
{
    char        bin[128], exe[PATH_MAX], *found, *old_path;
    kmerr       e = { 0 };
    int         fd;

    snprintf(bin, sizeof(bin), "%s/bin", tmpdir);      /* the fixture's directory */
    mkdir(bin, 0700);
    snprintf(exe, sizeof(exe), "%s/klaviyo-restd", bin);
    fd = open(exe, O_WRONLY | O_CREAT, 0700);
    ck_assert_int_ge(fd, 0);
    close(fd);

    found = kmmcp_find_restd(exe, &e);
    ck_assert_str_eq(found, exe);
    free(found);
    ck_assert_ptr_null(kmmcp_find_restd("/nonexistent/klaviyo-restd", &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "KLAVIYO_RESTD"));
    kmerr_clear(&e);

    old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", bin, 1);
    found = kmmcp_find_restd(NULL, &e);
    ck_assert_str_eq(found, exe);
    free(found);
    setenv("PATH", "/nonexistent", 1);
    ck_assert_ptr_null(kmmcp_find_restd(NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "not found"));
    kmerr_clear(&e);
    if (old_path)
        setenv("PATH", old_path, 1);
    free(old_path);
}
END_TEST

START_TEST(a_socket_path_is_usable_when_its_directory_can_be_made)
{
    char        path[PATH_MAX], dir[PATH_MAX];
    struct stat st;

    snprintf(path, sizeof(path), "%s/a/b/restd.sock", tmpdir);   /* the fixture's directory */
    ck_assert_int_eq(kmmcp_socket_usable(path), 1);
    snprintf(dir, sizeof(dir), "%s/a/b", tmpdir);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(kmmcp_socket_usable("relative.sock"), 0);
    snprintf(path, sizeof(path), "%s/a", tmpdir);
    ck_assert_int_eq(kmmcp_socket_usable(path), 0);      /* a directory, not a socket */
}
END_TEST

static Suite *
shim_suite(void)
{
    Suite *s = suite_create("shim");
    TCase *tc;

    tc = tcase_create("framing");
    tcase_add_test(tc, a_line_split_across_reads_is_one_message);
    tcase_add_test(tc, crlf_endings_are_stripped_and_blank_lines_skipped);
    tcase_add_test(tc, a_five_megabyte_line_is_reported_once_and_the_next_line_still_parses);
    tcase_add_test(tc, an_overlong_line_arriving_whole_is_reported_once);
    tcase_add_test(tc, the_last_line_without_a_newline_counts_at_end_of_input);
    tcase_add_test(tc, a_reader_that_never_read_asks_for_more);
    tcase_add_test(tc, a_nul_byte_stays_in_the_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("parsing");
    tcase_add_test(tc, malformed_json_is_refused_with_where);
    tcase_add_test(tc, binary_bytes_and_bad_utf8_are_refused);
    tcase_add_test(tc, multibyte_utf8_is_accepted);
    tcase_add_test(tc, nesting_deeper_than_64_is_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("classification");
    tcase_add_test(tc, requests_notifications_and_responses_are_told_apart);
    tcase_add_test(tc, bad_ids_versions_and_shapes_are_invalid_requests);
    tcase_add_test(tc, params_that_are_not_an_object_are_invalid_params);
    tcase_add_test(tc, ids_are_equal_only_with_the_same_type_and_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("output");
    tcase_add_test(tc, an_error_without_a_readable_id_has_no_id_member);
    tcase_add_test(tc, concurrent_writers_never_interleave_lines);
    tcase_add_test(tc, writing_to_a_closed_output_marks_it_broken);
    suite_add_tcase(s, tc);

    tc = tcase_create("forwarding");
    tcase_add_checked_fixture(tc, fwd_setup, fwd_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, tool_names_must_be_lowercase_letters_and_underscores);
    tcase_add_test(tc, a_streamed_call_delivers_progress_then_the_envelope);
    tcase_add_test(tc, without_a_progress_token_the_call_is_plain_json);
    tcase_add_test(tc, an_error_answered_before_streaming_keeps_its_status_and_envelope);
    tcase_add_test(tc, a_service_that_dies_mid_call_is_an_upstream_error_saying_so);
    tcase_add_test(tc, a_line_that_is_not_json_is_an_upstream_error);
    tcase_add_test(tc, cancelling_a_call_hangs_up_on_the_service);
    tcase_add_test(tc, nothing_listening_is_service_unavailable);
    tcase_add_test(tc, health_is_ok_only_when_the_service_answers_200);
    tcase_add_test(tc, the_tool_list_is_the_tools_array);
    suite_add_tcase(s, tc);

    tc = tcase_create("private service");
    tcase_add_checked_fixture(tc, spawn_setup, spawn_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, a_private_service_gets_one_worker_no_tcp_and_clean_descriptors);
    tcase_add_test(tc, a_shared_service_is_used_and_never_stopped);
    tcase_add_test(tc, without_spawning_a_missing_service_is_unavailable);
    tcase_add_test(tc, a_service_that_ignores_sigterm_is_killed_after_the_grace_period);
    tcase_add_test(tc, exit_78_from_the_service_is_a_config_error);
    tcase_add_test(tc, a_service_that_never_answers_is_stopped_after_the_start_timeout);
    tcase_add_test(tc, an_unusable_socket_path_falls_back_to_a_private_socket);
    tcase_add_test(tc, a_private_service_that_died_is_started_again);
    tcase_add_test(tc, a_private_service_that_dies_is_reaped_at_once_and_says_how);
    tcase_add_test(tc, the_private_service_dies_with_a_sigkilled_shim);
    tcase_add_test(tc, the_restd_binary_is_found_by_override_then_path);
    tcase_add_test(tc, a_socket_path_is_usable_when_its_directory_can_be_made);
    suite_add_tcase(s, tc);
    return s;
}

int
main(int argc, char **argv)
{
    SRunner *sr;
    int      failed;
    ssize_t  n;

    if (getenv("KMTEST_FAKE_RESTD"))
        return fake_restd_main(argc, argv);
    n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(shim_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
