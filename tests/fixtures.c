/* fixtures.c — test helpers: ports, temporary directories, child processes, loopback HTTP. */
#include "fixtures.h"
#include "buf.h"
#include "json.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_WAIT_MS 15000

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

int
kmfix_free_port(void)
{
    struct sockaddr_in a;
    socklen_t          len = sizeof(a);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    int                port = -1;

    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

char *
kmfix_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char       *path;
    size_t      n;

    if (!base || !*base)
        base = "/tmp";
    n = strlen(base) + strlen(tag) + 32;
    path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/km-%s-XXXXXX", base, tag);
    if (!mkdtemp(path)) {
        fprintf(stderr, "fixtures: mkdtemp %s: %s\n", path, strerror(errno));
        free(path);
        return NULL;
    }
    return path;
}

static int
rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (type == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void
kmfix_rmtree(const char *path)
{
    if (path && *path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* fork + exec argv[0] with stdout/stderr to `log`; the child dies with us. */
static pid_t
spawn(const char *const *argv, const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);

        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            close(nul);
        }
    }
    {
        /* exec wants char *const[]: hand it copies (this process is replaced anyway) */
        size_t n = 0;
        char **v;

        while (argv[n])
            n++;
        v = calloc(n + 1, sizeof(*v));
        if (!v)
            _exit(127);
        for (size_t i = 0; i < n; i++)
            v[i] = strdup(argv[i]);
        execvp(v[0], v);
    }
    _exit(127);
}

/* 1 while the child runs; 0 (reaped) once it exited. */
static int
alive(kmfix_proc *p)
{
    int st;

    if (p->pid <= 0)
        return 0;
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
        p->pid = 0;
        return 0;
    }
    return 1;
}

static void
show_log(const kmfix_proc *p, const char *name)
{
    char  path[300];
    char  line[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", p->dir, name);
    f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof(line), f))
        fprintf(stderr, "  | %s", line);
    fclose(f);
}

static int
set_dir(kmfix_proc *p, const char *tag)
{
    char *d = kmfix_tmpdir(tag);

    memset(p, 0, sizeof(*p));
    if (!d)
        return -1;
    snprintf(p->dir, sizeof(p->dir), "%s", d);
    free(d);
    return 0;
}

int
kmfix_start_sim(kmfix_proc *p, const char *const *args)
{
    const char *sim = getenv("KLAVIYO_SIM");
    char        portfile[300], log[300];
    const char *argv[32];
    int         n = 0;
    long long   until;

    if (set_dir(p, "sim") != 0)
        return -1;
    if (!sim || !*sim || access(sim, X_OK) != 0) {
        fprintf(stderr, "fixtures: KLAVIYO_SIM is not set to the simulator binary (%s)\n",
                sim ? sim : "unset");
        kmfix_stop(p);
        return -1;
    }
    snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
    snprintf(log, sizeof(log), "%s/sim.log", p->dir);
    argv[n++] = sim;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--port-file";
    argv[n++] = portfile;
    for (int i = 0; args && args[i] && n < 30; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    p->pid = spawn(argv, log);
    if (p->pid < 0) {
        p->pid = 0;
        kmfix_stop(p);
        return -1;
    }
    until = now_ms() + START_WAIT_MS;
    while (now_ms() < until && alive(p)) {
        FILE *f = fopen(portfile, "r");
        int   port = 0;

        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0) {
            p->port = port;
            snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", port);
            if (kmfix_http(p->url, "GET", "/__sim/accounts", NULL, NULL) == 200)
                return 0;
        }
        nap(20);
    }
    fprintf(stderr, "fixtures: the simulator did not start; its log:\n");
    show_log(p, "sim.log");
    kmfix_stop(p);
    return -1;
}

static int
redis_ping(int port)
{
    struct timeval tv = { 1, 0 };
    redisContext  *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply    *r;
    int            ok = 0;

    if (!c)
        return 0;
    if (!c->err) {
        r = redisCommand(c, "PING");
        ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return ok;
}

int
kmfix_start_redis(kmfix_proc *p)
{
    const char *bin = getenv("REDIS_SERVER");

    if (!bin || !*bin)
        bin = "redis-server";
    if (set_dir(p, "redis") != 0)
        return -1;
    /* a free port may be taken between the probe and the bind: try a few */
    for (int attempt = 0; attempt < 3; attempt++) {
        char      port[16], log[300];
        const char *argv[20];
        int         n = 0;
        long long until;

        p->port = kmfix_free_port();
        if (p->port <= 0)
            break;
        snprintf(port, sizeof(port), "%d", p->port);
        snprintf(log, sizeof(log), "%s/redis.log", p->dir);
        argv[n++] = bin;
        argv[n++] = "--port";
        argv[n++] = port;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--appendonly";
        argv[n++] = "no";
        argv[n++] = "--daemonize";
        argv[n++] = "no";
        argv[n++] = "--dir";
        argv[n++] = p->dir;
        argv[n] = NULL;
        p->pid = spawn(argv, log);
        if (p->pid < 0) {
            p->pid = 0;
            break;
        }
        until = now_ms() + START_WAIT_MS;
        while (now_ms() < until && alive(p)) {
            if (redis_ping(p->port)) {
                snprintf(p->url, sizeof(p->url), "redis://127.0.0.1:%d", p->port);
                return 0;
            }
            nap(20);
        }
        if (alive(p)) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->pid = 0;
        }
    }
    fprintf(stderr, "fixtures: redis-server did not start; its log:\n");
    show_log(p, "redis.log");
    kmfix_stop(p);
    return -1;
}

void
kmfix_stop(kmfix_proc *p)
{
    if (p->pid > 0) {
        long long until = now_ms() + 2000;

        kill(p->pid, SIGTERM);
        while (alive(p) && now_ms() < until)
            nap(10);
        if (p->pid > 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        p->pid = 0;
    }
    if (p->dir[0])
        kmfix_rmtree(p->dir);
    p->dir[0] = '\0';
}

static size_t
collect(char *ptr, size_t size, size_t n, void *arg)
{
    return kmbuf_append(arg, ptr, size * n) == 0 ? size * n : 0;
}

long
kmfix_http(const char *base, const char *method, const char *path, const char *body,
           char **resp)
{
    CURL              *h;
    struct curl_slist *hdrs = NULL;
    kmbuf              b;
    char               url[1024];
    long               status = -1;

    if (resp)
        *resp = NULL;
    /* loopback only: these helpers never talk to anything else */
    if (strncmp(base, "http://127.0.0.1:", 17) != 0)
        return -1;
    h = curl_easy_init();
    if (!h)
        return -1;
    kmbuf_init(&b, (size_t)64 << 20);
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (body) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    }
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    if (resp && status >= 0)
        *resp = kmbuf_take(&b, NULL);
    kmbuf_free(&b);
    if (resp && status >= 0 && !*resp)
        *resp = calloc(1, 1);
    return status;
}

long
kmfix_http_json(const char *base, const char *method, const char *path, const char *body,
                json_object **doc)
{
    char *text = NULL;
    long  status = kmfix_http(base, method, path, body, &text);

    *doc = NULL;
    if (text && kmjson_parse(text, strlen(text), KM_INVALID_ARGUMENT, doc, NULL) != KM_OK)
        *doc = NULL;
    free(text);
    return status;
}

int
kmfix_redis_flush(const char *url)
{
    struct timeval tv = { 2, 0 };
    int            port = 0;
    redisContext  *c;
    redisReply    *r;
    int            ok = 0;

    if (sscanf(url, "redis://127.0.0.1:%d", &port) != 1)
        return -1;
    c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c)
        return -1;
    if (!c->err) {
        r = redisCommand(c, "FLUSHALL");
        ok = r && r->type == REDIS_REPLY_STATUS;
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return ok ? 0 : -1;
}

/* --- the canned server ------------------------------------------------------------------- */

#define CANNED_MAX_REQ 64

struct kmfix_canned {
    int             fd;
    pthread_t       th;
    atomic_int      stop;
    char            url[64];
    char          **resp;
    size_t          nresp;
    pthread_mutex_t mu;
    char           *req[CANNED_MAX_REQ];
    int             count;
};

static char *
subst_base(const char *text, const char *base)
{
    const char *tag = "%BASE%";
    size_t      n = 0, tl = strlen(tag), bl = strlen(base);
    char       *out, *o;

    for (const char *p = strstr(text, tag); p; p = strstr(p + tl, tag))
        n++;
    out = malloc(strlen(text) + n * bl + 1);
    if (!out)
        abort();
    o = out;
    for (const char *p = text;;) {
        const char *q = strstr(p, tag);

        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, base, bl);
        o += bl;
        p = q + tl;
    }
    return out;
}

/* Replace "%LEN%" with the length of the body (what follows the blank line). Takes text. */
static char *
fill_length(char *text)
{
    char       *tag = strstr(text, "%LEN%");
    const char *body = strstr(text, "\r\n\r\n");
    char        num[24];
    char       *out;
    size_t      nl;

    if (!tag || !body || tag > body)
        return text;
    snprintf(num, sizeof(num), "%zu", strlen(body + 4));
    nl = strlen(num);
    out = malloc(strlen(text) + nl + 1);
    if (!out)
        abort();
    memcpy(out, text, (size_t)(tag - text));
    memcpy(out + (tag - text), num, nl);
    strcpy(out + (tag - text) + nl, tag + 5);
    free(text);
    return out;
}

/* Read one request: the head, then Content-Length bytes of body. */
static char *
read_request(int fd)
{
    kmbuf     b;
    char      chunk[4096];
    long long until = now_ms() + 10000;

    kmbuf_init(&b, (size_t)1 << 20);
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        char         *end;
        ssize_t       got;

        if (b.data) {
            end = strstr(b.data, "\r\n\r\n");
            if (end) {
                const char *cl = strcasestr(b.data, "\r\nContent-Length:");
                size_t      head = (size_t)(end - b.data) + 4;
                size_t      want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;

                if (b.len >= head + want)
                    break;
            }
        }
        if (now_ms() > until || poll(&pfd, 1, 100) < 0)
            break;
        if (!(pfd.revents & (POLLIN | POLLHUP)))
            continue;
        got = read(fd, chunk, sizeof(chunk));
        if (got <= 0 || kmbuf_append(&b, chunk, (size_t)got) != 0)
            break;
    }
    return kmbuf_take(&b, NULL);
}

static void
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *
canned_loop(void *arg)
{
    kmfix_canned *c = arg;

    while (!atomic_load(&c->stop)) {
        struct pollfd pfd = { c->fd, POLLIN, 0 };
        int           cfd;
        char         *req;
        const char   *resp;
        int           i;

        if (poll(&pfd, 1, 50) <= 0)
            continue;
        cfd = accept(c->fd, NULL, NULL);
        if (cfd < 0)
            continue;
        req = read_request(cfd);
        /* recorded before the answer goes out: a client that has its answer sees it */
        pthread_mutex_lock(&c->mu);
        i = c->count++;
        if (i < CANNED_MAX_REQ)
            c->req[i] = req;
        else
            free(req);
        resp = c->resp[(size_t)i < c->nresp ? (size_t)i : c->nresp - 1];
        pthread_mutex_unlock(&c->mu);
        write_all(cfd, resp, strlen(resp));
        shutdown(cfd, SHUT_WR);
        close(cfd);
    }
    return NULL;
}

kmfix_canned *
kmfix_canned_start(const char *const *responses, size_t n)
{
    kmfix_canned      *c;
    struct sockaddr_in a;
    socklen_t          len = sizeof(a);
    int                one = 1;

    if (n == 0)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(c->fd, 16) != 0 || getsockname(c->fd, (struct sockaddr *)&a, &len) != 0) {
        fprintf(stderr, "fixtures: canned server: %s\n", strerror(errno));
        if (c->fd >= 0)
            close(c->fd);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    c->resp = calloc(n, sizeof(*c->resp));
    if (!c->resp)
        abort();
    c->nresp = n;
    for (size_t i = 0; i < n; i++)
        c->resp[i] = fill_length(subst_base(responses[i], c->url));
    if (pthread_create(&c->th, NULL, canned_loop, c) != 0) {
        c->th = 0;
        kmfix_canned_stop(c);
        return NULL;
    }
    return c;
}

void
kmfix_canned_stop(kmfix_canned *c)
{
    if (!c)
        return;
    atomic_store(&c->stop, 1);
    if (c->th)
        pthread_join(c->th, NULL);
    close(c->fd);
    for (size_t i = 0; i < c->nresp; i++)
        free(c->resp[i]);
    free(c->resp);
    for (int i = 0; i < CANNED_MAX_REQ; i++)
        free(c->req[i]);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const char *
kmfix_canned_url(const kmfix_canned *c)
{
    return c->url;
}

int
kmfix_canned_count(kmfix_canned *c)
{
    int n;

    pthread_mutex_lock(&c->mu);
    n = c->count;
    pthread_mutex_unlock(&c->mu);
    return n;
}

char *
kmfix_canned_request(kmfix_canned *c, int i)
{
    char *r = NULL;

    pthread_mutex_lock(&c->mu);
    if (i >= 0 && i < CANNED_MAX_REQ && i < c->count && c->req[i])
        r = strdup(c->req[i]);
    pthread_mutex_unlock(&c->mu);
    return r;
}
