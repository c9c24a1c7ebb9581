/* check_restd.c — klaviyo-restd as real processes: the master, its workers, the simulator
 * and (for the Redis store) redis-server.
 *
 * Each TCase starts the simulator (--no-limits) and, where needed, redis-server in an unchecked
 * fixture: they run in the runner process and are stopped even when a test fails. Each test
 * starts its own klaviyo-restd ($KLAVIYO_RESTD) in a private directory under the TCase's
 * temporary directory, with its own free port, Unix socket, store, .env and accounts.toml,
 * and stops it at the end; a restd left by a failed test dies with the test process
 * (PR_SET_PDEATHSIG), and its workers with it. Waits are bounded (WAIT_MS) so a broken
 * service fails a test instead of hanging it; no assertion is about how long anything took.
 */
#include "buf.h"
#include "fixtures.h"
#include "json.h"
#include "promtext.h"
#include "util.h"

#include <check.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS    30000    /* bound on any wait; never asserted as a duration */
#define TOKEN_A    "restd-test-token-a-5e1f"
#define TOKEN_B    "restd-test-token-b-77c2"
#define DEMO_TOKEN "your-rest-secret"

enum { BE_LMDB = 0, BE_REDIS = 1 };

static kmfix_proc sim, redis;
static char       tcdir[512];
static int        restd_seq;

struct simacct {
    char name[32];
    char key[128];
    char metric[64];
    char label[96];
};
static struct simacct accts[8];
static int            naccts;

/* --- small helpers -------------------------------------------------------------------- */

static void
nap(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int64_t
now_ms(void)
{
    return km_now_ms();
}

static char *
slurp(const char *path)
{
    FILE  *f = fopen(path, "r");
    kmbuf  b;
    char   chunk[8192];
    size_t n;

    if (!f)
        return km_xstrdup("");
    kmbuf_init(&b, 0);
    for (;;) {
        n = fread(chunk, 1, sizeof(chunk), f);
        if (n == 0)
            break;
        kmbuf_append(&b, chunk, n);
    }
    fclose(f);
    if (!b.data)
        return km_xstrdup("");
    return kmbuf_take(&b, NULL);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    char tmp[700];
    int  fd;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_msg(fd >= 0, "cannot write %s: %s", tmp, strerror(errno));
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    ck_assert_int_eq(rename(tmp, path), 0);
}

/* --- the simulator's accounts ------------------------------------------------------------ */

static void
load_sim_accounts(void)
{
    json_object *doc = NULL, *list;

    ck_assert_int_eq(kmfix_http_json(sim.url, "GET", "/__sim/accounts", NULL, &doc), 200);
    list = kmjson_get(doc, "accounts");
    ck_assert(json_object_is_type(list, json_type_array));
    naccts = 0;
    for (size_t i = 0; i < json_object_array_length(list) && naccts < 8; i++) {
        json_object    *a = json_object_array_get_idx(list, i);
        struct simacct *s = &accts[naccts++];
        const char     *v;

        memset(s, 0, sizeof(*s));
        km_strlcpy(s->name, kmjson_str(a, "name"), sizeof(s->name));
        km_strlcpy(s->key, kmjson_str(a, "key"), sizeof(s->key));
        v = kmjson_str(a, "conversion_metric_id");
        km_strlcpy(s->metric, v ? v : "XXXXXX", sizeof(s->metric));
        v = kmjson_str(a, "label");
        km_strlcpy(s->label, v ? v : s->name, sizeof(s->label));
    }
    json_object_put(doc);
    ck_assert_int_ge(naccts, 3);
}

static void
sim_reset(void)
{
    long st = kmfix_http(sim.url, "POST", "/__sim/reset", NULL, NULL);

    ck_assert_msg(st == 200 || st == 204, "simulator reset answered %ld", st);
}

/* Make the next `count` `method` requests to `path` wait delay_ms before answering. */
static void
sim_delay_method(const char *method, const char *path, int count, int delay_ms)
{
    char body[256];
    long st;

    snprintf(body, sizeof(body),
             "{\"method\":\"%s\",\"path\":\"%s\",\"count\":%d,\"mode\":\"delay\","
             "\"delay_ms\":%d}",
             method, path, count, delay_ms);
    st = kmfix_http(sim.url, "POST", "/__sim/faults", body, NULL);
    ck_assert_msg(st >= 200 && st < 300, "the simulator refused a fault (%ld)", st);
}

static void
sim_delay(const char *path, int count, int delay_ms)
{
    sim_delay_method("GET", path, count, delay_ms);
}

/* Requests the simulator counted for a route ("GET /api/lists/{id}"). */
static int
sim_calls(const char *route)
{
    json_object *doc = NULL;
    int          n;

    ck_assert_int_eq(kmfix_http_json(sim.url, "GET", "/__sim/stats", NULL, &doc), 200);
    n = (int)kmjson_num(kmjson_get(doc, "calls"), route, 0);
    json_object_put(doc);
    return n;
}

/* Requests the simulator counted in all. */
static int
sim_total_calls(void)
{
    json_object *doc = NULL;
    int          n;

    ck_assert_int_eq(kmfix_http_json(sim.url, "GET", "/__sim/stats", NULL, &doc), 200);
    n = (int)kmjson_num(doc, "total_calls", -1);
    json_object_put(doc);
    return n;
}

/* --- fixtures ------------------------------------------------------------------------ */

static void
tc_up(int with_redis)
{
    const char *const args[] = { "--no-limits", NULL };
    char             *d = kmfix_tmpdir("restd");

    ck_assert_ptr_nonnull(d);
    km_strlcpy(tcdir, d, sizeof(tcdir));
    free(d);
    ck_assert_int_eq(kmfix_start_sim(&sim, args), 0);
    if (with_redis)
        ck_assert_int_eq(kmfix_start_redis(&redis), 0);
}

static void
tc_up_plain(void)
{
    tc_up(0);
}

static void
tc_up_redis(void)
{
    tc_up(1);
}

static void
tc_down(void)
{
    kmfix_stop(&sim);
    kmfix_stop(&redis);
    /* RESTD_TEST_KEEP=1 keeps the daemons' directories (logs) to look at */
    if (getenv("RESTD_TEST_KEEP"))
        fprintf(stderr, "check_restd: kept %s\n", tcdir);
    else
        kmfix_rmtree(tcdir);
    tcdir[0] = '\0';
}

static void
test_up(void)
{
    sim_reset();
    if (redis.pid > 0)
        ck_assert_int_eq(kmfix_redis_flush(redis.url), 0);
    load_sim_accounts();
}

/* --- a klaviyo-restd under test ------------------------------------------------------------ */

struct restd {
    pid_t pid;             /* the master; 0 once reaped */
    int   status;          /* wait status once reaped, -1 before */
    int   port;            /* TCP port, 0 when TCP is off */
    char  dir[600];
    char  sock[700];
    char  log[700];
    char  envfile[700];
    char  pidfile[700];
    char  base[64];
};

struct restd_opts {
    int                workers;        /* default 2 */
    int                threads;        /* SERVICE_THREADS, default 4 */
    const char        *tokens;         /* REST_API_TOKENS in .env; NULL: TOKEN_A,TOKEN_B */
    const char        *api_key;        /* REST_API_KEY in .env */
    int                no_tokens;      /* 1: no REST credential at all */
    int                no_tcp;         /* 1: REST_PORT=0 */
    int                backend;        /* BE_LMDB or BE_REDIS */
    int                grace_s;        /* default 20 */
    int                worker_timeout_s;  /* default 30 */
    int                rest_timeout_s;    /* default 30 */
    int                max_body;       /* default 65536 */
    int                demo;
    int                no_wait;        /* do not wait for the workers (start failures) */
    const char        *sock;           /* KLAVIYO_MCP_SOCKET; default DIR/run/restd.sock */
    const char *const *env;            /* NAME=value entries, replacing the defaults */
    const char *const *args;           /* extra arguments */
    int                nofile;         /* RLIMIT_NOFILE (soft and hard) of the service */
};

/* Set NAME=value in env, replacing an earlier NAME (getenv would see the first one). */
static void
env_put(char **env, int *n, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t      k = eq ? (size_t)(eq - entry) + 1 : strlen(entry);

    for (int i = 0; i < *n; i++) {
        if (strncmp(env[i], entry, k) == 0) {
            free(env[i]);
            env[i] = km_xstrdup(entry);
            return;
        }
    }
    env[(*n)++] = km_xstrdup(entry);
}

static void
env_add(char **env, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
env_add(char **env, int *n, const char *fmt, ...)
{
    va_list ap;
    char    buf[1024];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    env_put(env, n, buf);
}

/* The variable holding an account's key: KLAVIYO_<NAME>_KEY. */
static void
key_var(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "KLAVIYO_%.31s_KEY", name);
    for (char *p = out; *p; p++) {
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    }
}

/* The .env file the restd reads (XDG_CONFIG_HOME/klaviyo-mcp/.env): account keys and the
 * REST credentials `cred` ("REST_API_TOKENS=a,b\n" etc., may be ""). */
static void
write_dotenv(const struct restd *d, const char *cred)
{
    kmbuf b;

    kmbuf_init(&b, 0);
    kmbuf_appendf(&b, "# written by check_restd\n");
    for (int i = 0; i < naccts; i++) {
        char var[64];
        key_var(accts[i].name, var, sizeof(var));
        kmbuf_appendf(&b, "%s=%s\n", var, accts[i].key);
    }
    kmbuf_appendf(&b, "%s", cred);
    write_file(d->envfile, b.data, 0600);
    kmbuf_free(&b);
}

static void
write_accounts(const struct restd *d)
{
    kmbuf b;
    char  path[700];

    kmbuf_init(&b, 0);
    for (int i = 0; i < naccts; i++) {
        char var[64];
        key_var(accts[i].name, var, sizeof(var));
        kmbuf_appendf(&b, "[%s]\napi_key_env = \"%s\"\nconversion_metric_id = \"%s\"\n"
                      "label = \"%s\"\n\n", accts[i].name, var, accts[i].metric,
                      accts[i].label);
    }
    snprintf(path, sizeof(path), "%s/accounts.toml", d->dir);
    write_file(path, b.data, 0644);
    kmbuf_free(&b);
}

/* --- no configured secret in any log or answer (issue 17) ---------------------------------
 * Every key and token a restd of this suite was given is remembered; each answer (call_on)
 * and each restd's whole log (restd_stop) must hold none of them. Messages name the secret's
 * index, never the secret. */
static char secrets[32][160];
static int  nsecrets;

static void
secret_add(const char *s, size_t len)
{
    if (len < 8 || len >= sizeof(secrets[0]))
        return;
    for (int i = 0; i < nsecrets; i++) {
        if (strlen(secrets[i]) == len && memcmp(secrets[i], s, len) == 0)
            return;
    }
    if (nsecrets < (int)(sizeof(secrets) / sizeof(secrets[0]))) {
        memcpy(secrets[nsecrets], s, len);
        secrets[nsecrets++][len] = '\0';
    }
}

static void
secret_add_list(const char *list)
{
    while (list && *list) {
        size_t n = strcspn(list, ",");

        secret_add(list, n);
        list += n + (list[n] == ',');
    }
}

static void
assert_no_secret(const char *what, const char *text, size_t len)
{
    for (int i = 0; text && i < nsecrets; i++)
        ck_assert_msg(!memmem(text, len, secrets[i], strlen(secrets[i])),
                      "%s holds configured secret #%d", what, i);
}

static int
count_events(const char *log, const char *event)
{
    char        pat[128];
    int         n = 0;
    const char *p = log;

    snprintf(pat, sizeof(pat), "\"event\":\"%s\"", event);
    for (p = strstr(p, pat); p; p = strstr(p + strlen(pat), pat))
        n++;
    return n;
}

static int
log_count(const struct restd *d, const char *event)
{
    char *text = slurp(d->log);
    int   n = count_events(text, event);

    free(text);
    return n;
}

/* 1 when the log holds `needle`. */
static int
log_has(const struct restd *d, const char *needle)
{
    char *text = slurp(d->log);
    int   found = strstr(text, needle) != NULL;

    free(text);
    return found;
}

/* Reap the master if it has exited. */
static int
restd_alive(struct restd *d)
{
    int st;

    if (d->pid <= 0)
        return 0;
    if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
        d->pid = 0;
        d->status = st;
        return 0;
    }
    return 1;
}

/* Wait until `event` was logged n times; 0 when the master exited first or WAIT_MS passed. */
static int
log_wait(struct restd *d, const char *event, int n)
{
    int64_t until = now_ms() + WAIT_MS;

    while (now_ms() < until) {
        if (log_count(d, event) >= n)
            return 1;
        if (!restd_alive(d))
            return log_count(d, event) >= n;
        nap(20);
    }
    return 0;
}

static void
restd_start(struct restd *d, const struct restd_opts *o)
{
    const char *bin = getenv("KLAVIYO_RESTD");
    const char *pass[] = { "PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TMPDIR" };
    char       *env[64], *argv[16];
    int         n = 0, a = 0, workers = o->workers ? o->workers : 2;
    char        cred[256] = "";
    pid_t       pid;

    ck_assert_msg(bin && access(bin, X_OK) == 0, "KLAVIYO_RESTD is not set to klaviyo-restd");
    memset(d, 0, sizeof(*d));
    d->status = -1;
    /* tests are forked: the test's pid keeps the directories of different tests apart */
    snprintf(d->dir, sizeof(d->dir), "%s/restd-%ld-%d", tcdir, (long)getpid(), ++restd_seq);
    ck_assert_int_eq(mkdir(d->dir, 0700), 0);
    {
        char xdg[700];
        snprintf(xdg, sizeof(xdg), "%s/xdg", d->dir);
        ck_assert_int_eq(mkdir(xdg, 0700), 0);
        snprintf(xdg, sizeof(xdg), "%s/xdg/klaviyo-mcp", d->dir);
        ck_assert_int_eq(mkdir(xdg, 0700), 0);
    }
    /* the socket's directory does not exist yet: restd creates it 0700 */
    if (o->sock)
        km_strlcpy(d->sock, o->sock, sizeof(d->sock));
    else
        snprintf(d->sock, sizeof(d->sock), "%s/run/restd.sock", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/restd.log", d->dir);
    snprintf(d->envfile, sizeof(d->envfile), "%s/xdg/klaviyo-mcp/.env", d->dir);
    snprintf(d->pidfile, sizeof(d->pidfile), "%s/restd.pid", d->dir);
    if (!o->no_tokens) {
        if (o->api_key)
            snprintf(cred, sizeof(cred), "REST_API_KEY=%s\n", o->api_key);
        else
            snprintf(cred, sizeof(cred), "REST_API_TOKENS=%s\n",
                     o->tokens ? o->tokens : TOKEN_A "," TOKEN_B);
    }
    write_dotenv(d, cred);
    write_accounts(d);
    secret_add_list(TOKEN_A "," TOKEN_B "," DEMO_TOKEN);
    secret_add_list(o->tokens);
    if (o->api_key)
        secret_add(o->api_key, strlen(o->api_key));
    for (int i = 0; i < naccts; i++)
        secret_add(accts[i].key, strlen(accts[i].key));
    if (!o->no_tcp) {
        d->port = kmfix_free_port();
        ck_assert_int_gt(d->port, 0);
        snprintf(d->base, sizeof(d->base), "http://127.0.0.1:%d", d->port);
    }

    for (size_t i = 0; i < sizeof(pass) / sizeof(pass[0]); i++) {
        const char *v = getenv(pass[i]);
        if (v)
            env_add(env, &n, "%s=%s", pass[i], v);
    }
    env_add(env, &n, "HOME=%s", d->dir);
    env_add(env, &n, "XDG_CONFIG_HOME=%s/xdg", d->dir);
    env_add(env, &n, "ACCOUNTS_FILE=%s/accounts.toml", d->dir);
    env_add(env, &n, "KLAVIYO_BASE_URL=%s", sim.url);
    env_add(env, &n, "REST_HOST=127.0.0.1");
    env_add(env, &n, "REST_PORT=%d", d->port);
    env_add(env, &n, "KLAVIYO_MCP_SOCKET=%s", d->sock);
    env_add(env, &n, "STORE_DIR=%s/store", d->dir);
    env_add(env, &n, "WORKERS=%d", workers);
    env_add(env, &n, "SERVICE_THREADS=%d", o->threads ? o->threads : 4);
    env_add(env, &n, "GRACEFUL_TIMEOUT_SECONDS=%d", o->grace_s ? o->grace_s : 20);
    env_add(env, &n, "WORKER_TIMEOUT_SECONDS=%d", o->worker_timeout_s ? o->worker_timeout_s : 30);
    env_add(env, &n, "REST_TIMEOUT_SECONDS=%d", o->rest_timeout_s ? o->rest_timeout_s : 30);
    env_add(env, &n, "REST_MAX_BODY_BYTES=%d", o->max_body ? o->max_body : 65536);
    env_add(env, &n, "KLAVIYO_DEMO=%d", o->demo);
    env_add(env, &n, "LOG_LEVEL=info");
    /* the simulator runs without limits; shrink the client's windows to match */
    env_add(env, &n, "RATE_LIMIT_SCALE=0.001");
    env_add(env, &n, "KLAVIYO_TIMEOUT_SECONDS=20");
    if (o->backend == BE_REDIS)
        env_add(env, &n, "REDIS_URL=%s", redis.url);
    for (int i = 0; o->env && o->env[i]; i++)
        env_put(env, &n, o->env[i]);
    env[n] = NULL;

    argv[a++] = km_xstrdup(bin);
    argv[a++] = km_xstrdup("--pid-file");
    argv[a++] = km_xstrdup(d->pidfile);
    for (int i = 0; o->args && o->args[i]; i++)
        argv[a++] = km_xstrdup(o->args[i]);
    argv[a] = NULL;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDWR);

        int         via_prlimit = 0;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (o->nofile > 0) {
            struct rlimit rl = { (rlim_t)o->nofile, (rlim_t)o->nofile };

            /* under valgrind (make check-valgrind) this process's limit is virtual and cannot
             * be set: prlimit(1), run natively, sets it for the service instead */
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                via_prlimit = 1;
        }
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
        if (nul >= 0) {
            dup2(nul, STDIN_FILENO);
            dup2(nul, STDOUT_FILENO);
        }
        if (chdir(d->dir) != 0)
            _exit(126);
        if (via_prlimit) {
            char  prog[] = "prlimit", dashes[] = "--", lim[64], *pargv[20];
            int   k = 0;

            snprintf(lim, sizeof(lim), "--nofile=%d:%d", o->nofile, o->nofile);
            pargv[k++] = prog;
            pargv[k++] = lim;
            pargv[k++] = dashes;
            for (int i = 0; i < a; i++)
                pargv[k++] = argv[i];
            pargv[k] = NULL;
            environ = env;
            execvp("prlimit", pargv);
            _exit(125);
        }
        execve(argv[0], argv, env);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < n; i++)
        free(env[i]);
    for (int i = 0; i < a; i++)
        free(argv[i]);
    if (!o->no_wait && !log_wait(d, "worker_started", workers)) {
        char *text = slurp(d->log);
        ck_abort_msg("klaviyo-restd did not start %d workers; log:\n%.3000s", workers, text);
    }
}

/* Wait for the master to exit; its wait status, or -1 after WAIT_MS. */
static int
restd_wait(struct restd *d)
{
    int64_t until = now_ms() + WAIT_MS;

    while (now_ms() < until) {
        if (!restd_alive(d))
            return d->status;
        nap(20);
    }
    return -1;
}

static void
restd_stop(struct restd *d)
{
    char *text;

    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        if (restd_wait(d) == -1) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, &d->status, 0);
            d->pid = 0;
        }
    }
    text = d->log[0] ? slurp(d->log) : NULL;
    if (text)
        assert_no_secret("the klaviyo-restd log", text, strlen(text));
    free(text);
}

/* Live children of `ppid` (from /proc). */
static int
children_of(pid_t ppid, pid_t *out, int max)
{
    DIR           *dir = opendir("/proc");
    struct dirent *e;
    int            n = 0;

    if (!dir)
        return 0;
    for (e = readdir(dir); e && n < max; e = readdir(dir)) {
        char  path[300], buf[512], *rp;
        FILE *f;
        int   parent;
        char  state;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(buf, sizeof(buf), f)) {
            fclose(f);
            continue;
        }
        fclose(f);
        rp = strrchr(buf, ')');
        if (rp && sscanf(rp + 1, " %c %d", &state, &parent) == 2 && parent == ppid &&
            state != 'Z')
            out[n++] = (pid_t)atoi(e->d_name);
    }
    closedir(dir);
    return n;
}

/* --- HTTP through libcurl ----------------------------------------------------------------- */

struct reply {
    long         status;          /* 0: no answer */
    CURLcode     cc;
    kmbuf        body;
    char         rid[80];
    char         allow[80];
    char         ctype[80];
    char         conn[40];
    char         retry_after[40];
    long         connects;        /* connections opened for this transfer */
    json_object *doc;             /* the body parsed, or NULL */
};

struct call {
    const char *method;
    const char *path;
    const char *body;
    const char *ctype;            /* with a body: default application/json; "" sends none */
    const char *token;            /* sent as X-API-Key */
    const char *auth;             /* the whole Authorization value */
    const char *rid;              /* X-Request-Id to send */
    const char *accept;
    int         socket;           /* 1: over the Unix socket */
    long        timeout_ms;       /* default 60000 */
};

static size_t
on_body(char *p, size_t sz, size_t n, void *arg)
{
    struct reply *r = arg;

    kmbuf_append(&r->body, p, sz * n);
    return sz * n;
}

static void
grab(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    size_t vlen;

    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    line += nl + 1;
    len -= nl + 1;
    while (len > 0 && (*line == ' ' || *line == '\t')) {
        line++;
        len--;
    }
    vlen = len;
    while (vlen > 0 && (line[vlen - 1] == '\r' || line[vlen - 1] == '\n'))
        vlen--;
    if (vlen >= cap)
        vlen = cap - 1;
    memcpy(dst, line, vlen);
    dst[vlen] = '\0';
}

static size_t
on_header(char *p, size_t sz, size_t n, void *arg)
{
    struct reply *r = arg;
    size_t        len = sz * n;

    grab(p, len, "X-Request-Id", r->rid, sizeof(r->rid));
    grab(p, len, "Allow", r->allow, sizeof(r->allow));
    grab(p, len, "Content-Type", r->ctype, sizeof(r->ctype));
    grab(p, len, "Connection", r->conn, sizeof(r->conn));
    grab(p, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    return len;
}

static void
reply_free(struct reply *r)
{
    kmbuf_free(&r->body);
    json_object_put(r->doc);
    memset(r, 0, sizeof(*r));
}

/* One request on handle `h` (NULL: a fresh handle); the reply in *r (reply_free it). */
static void
call_on(CURL *h, const struct restd *d, const struct call *c, struct reply *r)
{
    CURL              *own = NULL;
    struct curl_slist *hd = NULL;
    char               url[1024], line[512];
    kmerr              e = { 0 };

    memset(r, 0, sizeof(*r));
    kmbuf_init(&r->body, 0);
    if (!h) {
        own = curl_easy_init();
        h = own;
    }
    ck_assert_ptr_nonnull(h);
    curl_easy_reset(h);
    if (c->socket) {
        snprintf(url, sizeof(url), "http://localhost%s", c->path);
        curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, d->sock);
    } else {
        snprintf(url, sizeof(url), "%s%s", d->base, c->path);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms ? c->timeout_ms : 60000L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    if (strcmp(c->method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
        if (!c->ctype || *c->ctype) {
            snprintf(line, sizeof(line), "Content-Type: %s",
                     c->ctype ? c->ctype : "application/json");
            hd = curl_slist_append(hd, line);
        } else {
            hd = curl_slist_append(hd, "Content-Type:");
        }
    }
    /* no 100-continue round trip: the bodies here are small */
    hd = curl_slist_append(hd, "Expect:");
    if (c->token) {
        snprintf(line, sizeof(line), "X-API-Key: %s", c->token);
        hd = curl_slist_append(hd, line);
    }
    if (c->auth) {
        snprintf(line, sizeof(line), "Authorization: %s", c->auth);
        hd = curl_slist_append(hd, line);
    }
    if (c->rid) {
        snprintf(line, sizeof(line), "X-Request-Id: %s", c->rid);
        hd = curl_slist_append(hd, line);
    }
    if (c->accept) {
        snprintf(line, sizeof(line), "Accept: %s", c->accept);
        hd = curl_slist_append(hd, line);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    r->cc = curl_easy_perform(h);
    if (r->cc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->connects);
    assert_no_secret("an answer", r->body.data, r->body.len);
    if (r->body.len > 0 &&
        kmjson_parse(r->body.data, r->body.len, KM_INVALID_ARGUMENT, &r->doc, &e) != KM_OK)
        r->doc = NULL;
    kmerr_clear(&e);
    curl_slist_free_all(hd);
    if (own)
        curl_easy_cleanup(own);
}

static void
call(const struct restd *d, const struct call *c, struct reply *r)
{
    call_on(NULL, d, c, r);
}

static void
get(const struct restd *d, const char *path, const char *token, struct reply *r)
{
    struct call c = { .method = "GET", .path = path, .token = token };

    call(d, &c, r);
}

static void
post(const struct restd *d, const char *path, const char *body, const char *token,
     struct reply *r)
{
    struct call c = { .method = "POST", .path = path, .body = body, .token = token };

    call(d, &c, r);
}

static const char *
error_code(const struct reply *r)
{
    return kmjson_str(kmjson_get(r->doc, "error"), "code");
}

static void
assert_error(const struct reply *r, long status, const char *code)
{
    ck_assert_msg(r->status == status, "expected %ld, got %ld: %.400s", status, r->status,
                  r->body.data ? r->body.data : "");
    ck_assert_msg(error_code(r) && strcmp(error_code(r), code) == 0,
                  "expected %s: %.400s", code, r->body.data ? r->body.data : "");
    ck_assert_msg(kmjson_str(kmjson_get(r->doc, "error"), "message") != NULL,
                  "no message: %.400s", r->body.data ? r->body.data : "");
    ck_assert_msg(r->rid[0], "no X-Request-Id on a %ld", status);
    ck_assert_msg(strncmp(r->ctype, "application/json", 16) == 0, "content type %s",
                  r->ctype);
}

static json_object *
assert_ok(const struct reply *r)
{
    ck_assert_msg(r->status == 200, "expected 200, got %ld (curl %d): %.600s", r->status,
                  (int)r->cc, r->body.data ? r->body.data : "");
    ck_assert_msg(json_object_is_type(kmjson_get(r->doc, "data"), json_type_object),
                  "no data object: %.400s", r->body.data ? r->body.data : "");
    ck_assert_ptr_nonnull(kmjson_get(r->doc, "metadata"));
    ck_assert(json_object_is_type(kmjson_get(r->doc, "warnings"), json_type_array));
    ck_assert_msg(r->rid[0], "no X-Request-Id");
    return kmjson_get(r->doc, "data");
}

/* The access-log line of request `rid`, or NULL (a new reference). */
static json_object *
access_line(const struct restd *d, const char *rid)
{
    char        *text = slurp(d->log);
    json_object *found = NULL;
    char        *save = NULL;

    for (char *line = strtok_r(text, "\n", &save); line && !found;
         line = strtok_r(NULL, "\n", &save)) {
        json_object *o = NULL;
        kmerr        e = { 0 };

        if (!strstr(line, rid) || kmjson_parse(line, strlen(line), KM_INVALID_ARGUMENT, &o,
                                               &e) != KM_OK) {
            kmerr_clear(&e);
            continue;
        }
        if (kmjson_str(o, "event") && strcmp(kmjson_str(o, "event"), "request") == 0 &&
            kmjson_str(o, "request_id") && strcmp(kmjson_str(o, "request_id"), rid) == 0)
            found = o;
        else
            json_object_put(o);
    }
    free(text);
    return found;
}

static json_object *
access_line_wait(const struct restd *d, const char *rid)
{
    int64_t until = now_ms() + WAIT_MS;

    while (now_ms() < until) {
        json_object *o = access_line(d, rid);
        if (o)
            return o;
        nap(20);
    }
    return NULL;
}

/* in_flight reported by GET /health over the socket (WORKERS=1: the whole service). */
static int
health_in_flight(const struct restd *d)
{
    struct call  c = { .method = "GET", .path = "/health", .socket = 1 };
    struct reply r;
    int          n;

    call(d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    n = (int)kmjson_num(r.doc, "in_flight", -1);
    reply_free(&r);
    return n;
}

static int
wait_in_flight(const struct restd *d, int n)
{
    int64_t until = now_ms() + WAIT_MS;

    while (now_ms() < until) {
        if (health_in_flight(d) >= n)
            return 1;
        nap(20);
    }
    return 0;
}

/* --- a table of every route with arguments that work against the simulator ---------------- */

struct route {
    const char *tool;
    const char *method;
    const char *path;     /* for GET: with the query string */
    const char *args;     /* the same arguments as a JSON object */
};

static const struct route routes[] = {
    { "klaviyo_list_accounts", "GET", "/v1/accounts", "{}" },
    { "klaviyo_get_campaign_performance", "POST", "/v1/campaigns/performance",
      "{\"account\":\"acme\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}" },
    { "klaviyo_get_flows", "GET", "/v1/flows?account=acme&status=live",
      "{\"account\":\"acme\",\"status\":\"live\"}" },
    { "klaviyo_get_flow_performance", "POST", "/v1/flows/performance",
      "{\"account\":\"acme\",\"start_date\":\"2025-03-01\",\"end_date\":\"2025-03-31\"}" },
    { "klaviyo_get_flow_structure", "GET", NULL, NULL },   /* needs a real flow id */
    { "klaviyo_get_performance_over_time", "POST", "/v1/performance/over-time",
      "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-01-01\","
      "\"end_date\":\"2025-03-31\",\"interval\":\"weekly\"}" },
    { "klaviyo_compare_periods", "POST", "/v1/performance/compare",
      "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_30_days\"}" },
    { "klaviyo_get_list_health", "GET", "/v1/lists/health?account=acme",
      "{\"account\":\"acme\"}" },
    { "klaviyo_get_list_growth", "POST", "/v1/lists/growth",
      "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
    { "klaviyo_get_list_growth_by_list", "POST", "/v1/lists/growth-by-list",
      "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
    { "klaviyo_get_list_breakdown", "POST", "/v1/lists/breakdown",
      "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

/* An existing flow id of acme (from GET /v1/flows). */
static void
some_flow_id(const struct restd *d, char *out, size_t cap)
{
    struct reply r;
    json_object *flows;

    get(d, "/v1/flows?account=acme", TOKEN_A, &r);
    flows = kmjson_get(assert_ok(&r), "flows");
    ck_assert_int_gt((int)json_object_array_length(flows), 0);
    km_strlcpy(out, kmjson_str(json_object_array_get_idx(flows, 0), "flow_id"), cap);
    reply_free(&r);
}

/* Call route i over REST; *path_out/args_out filled for the structure route. */
static void
call_route(const struct restd *d, size_t i, const char *flow_id, struct reply *r,
           char *args, size_t cap)
{
    const struct route *rt = &routes[i];
    char                path[256];

    if (!rt->path) {
        snprintf(path, sizeof(path), "/v1/flows/%s/structure?account=acme", flow_id);
        snprintf(args, cap, "{\"account\":\"acme\",\"flow_id\":\"%s\"}", flow_id);
        get(d, path, TOKEN_A, r);
        return;
    }
    km_strlcpy(args, rt->args, cap);
    if (strcmp(rt->method, "GET") == 0)
        get(d, rt->path, TOKEN_B, r);
    else
        post(d, rt->path, rt->args, TOKEN_B, r);
}

/* === routes ============================================================================ */

START_TEST(every_seed_route_answers_with_an_envelope)
{
    struct restd_opts o = { .backend = _i };
    struct restd      d;
    char              flow_id[64], args[512];

    test_up();
    restd_start(&d, &o);
    some_flow_id(&d, flow_id, sizeof(flow_id));
    for (size_t i = 0; i < NROUTES; i++) {
        struct reply r;
        json_object *meta;

        call_route(&d, i, flow_id, &r, args, sizeof(args));
        ck_assert_msg(r.status == 200, "%s answered %ld: %.600s", routes[i].tool, r.status,
                      r.body.data ? r.body.data : "");
        assert_ok(&r);
        meta = kmjson_get(r.doc, "metadata");
        ck_assert_str_eq(kmjson_str(meta, "revision"), "2025-04-15");
        if (i > 0)
            ck_assert_str_eq(kmjson_str(meta, "account"), "acme");
        reply_free(&r);
    }
    {
        struct reply r;
        get(&d, "/v1/accounts", TOKEN_A, &r);
        ck_assert_int_eq((int)json_object_array_length(kmjson_get(assert_ok(&r), "accounts")),
                         naccts);
        reply_free(&r);
    }
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

/* The report calls acme used today, from GET /v1/budget?account=acme. */
static int
budget_used(const struct restd *d)
{
    struct reply r;
    json_object *list;
    int          used;

    get(d, "/v1/budget?account=acme", TOKEN_A, &r);
    list = kmjson_get(assert_ok(&r), "accounts");
    ck_assert_int_eq((int)json_object_array_length(list), 1);
    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(list, 0), "account"), "acme");
    ck_assert_int_eq((int)json_object_array_length(kmjson_get(json_object_array_get_idx(list, 0),
                                                              "tiers")),
                     5);
    used = (int)kmjson_num(json_object_array_get_idx(list, 0), "report_calls_used_today", -1);
    reply_free(&r);
    return used;
}

START_TEST(the_budget_route_follows_the_rate_windows_and_is_never_a_kept_answer)
{
    struct restd_opts o = { .backend = BE_LMDB };
    struct restd      d;
    struct reply      r;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(budget_used(&d), 0);
    post(&d, "/v1/campaigns/performance", "{\"account\":\"acme\",\"start_date\":"
         "\"2025-01-01\",\"end_date\":\"2025-01-31\"}", TOKEN_A, &r);
    assert_ok(&r);
    reply_free(&r);
    /* asked again within the recent-answer memo's second: a fresh reading, not a kept one */
    ck_assert_int_eq(budget_used(&d), 1);
    get(&d, "/v1/budget", TOKEN_A, &r);
    ck_assert_int_eq((int)json_object_array_length(kmjson_get(assert_ok(&r), "accounts")),
                     naccts);
    reply_free(&r);
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

START_TEST(each_rest_route_returns_the_same_data_as_its_tool_call)
{
    struct restd_opts o = { .backend = _i };
    struct restd      d;
    char              flow_id[64], args[512];

    test_up();
    restd_start(&d, &o);
    some_flow_id(&d, flow_id, sizeof(flow_id));
    for (size_t i = 0; i < NROUTES; i++) {
        struct reply rest, tool;
        char         path[128];

        call_route(&d, i, flow_id, &rest, args, sizeof(args));
        snprintf(path, sizeof(path), "/v1/tools/%s", routes[i].tool);
        post(&d, path, args, TOKEN_A, &tool);
        assert_ok(&rest);
        assert_ok(&tool);
        ck_assert_msg(json_object_equal(kmjson_get(rest.doc, "data"), kmjson_get(tool.doc, "data")),
                      "%s: REST and tool data differ:\n%.500s\n%.500s", routes[i].tool,
                      rest.body.data, tool.body.data);
        reply_free(&rest);
        reply_free(&tool);
    }
    restd_stop(&d);
}
END_TEST

START_TEST(get_v1_tools_lists_every_tool_with_its_schemas)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    json_object      *tools;

    test_up();
    restd_start(&d, &o);
    get(&d, "/v1/tools", TOKEN_A, &r);
    ck_assert_int_eq(r.status, 200);
    tools = kmjson_get(r.doc, "tools");
    /* the seed's routes, and GET /v1/budget (its own test: its data changes by the second) */
    ck_assert_int_eq((int)json_object_array_length(tools), (int)NROUTES + 1);
    for (size_t i = 0; i < NROUTES; i++) {
        int found = 0;
        for (size_t j = 0; j < json_object_array_length(tools); j++) {
            json_object *t = json_object_array_get_idx(tools, j);
            if (strcmp(kmjson_str(t, "name"), routes[i].tool) != 0)
                continue;
            found = 1;
            ck_assert_str_eq(kmjson_str(t, "method"), routes[i].method);
            ck_assert(json_object_is_type(kmjson_get(t, "inputSchema"), json_type_object));
            ck_assert(json_object_is_type(kmjson_get(t, "outputSchema"), json_type_object));
        }
        ck_assert_msg(found, "%s is not listed", routes[i].tool);
    }
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(query_values_are_coerced_by_the_input_schema)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;

    test_up();
    restd_start(&d, &o);
    /* archived is a boolean in the schema: "false" becomes false */
    get(&d, "/v1/flows?account=acme&archived=false", TOKEN_A, &r);
    assert_ok(&r);
    reply_free(&r);
    get(&d, "/v1/flows?account=acme&archived=maybe", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    ck_assert_ptr_nonnull(strstr(r.body.data, "archived"));
    reply_free(&r);
    /* a parameter twice is refused, not silently resolved */
    get(&d, "/v1/flows?account=acme&account=kiwi", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    reply_free(&r);
    /* the path parameter is validated like any argument */
    get(&d, "/v1/flows/not-an-id!/structure?account=acme", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

struct example {
    const char *method, *path, *body;
    const char *tool, *args;  /* the same question through POST /v1/tools/<tool> */
};

/* Every README example's data is the data of the same question asked as a tool call with
 * canonical arguments (issue 17: the examples were only checked for a 200 and a warning), and
 * the facts the simulator fixes are checked against it. */
static void
check_example_data(const struct restd *d, const struct example *ex, json_object *doc)
{
    json_object *data = kmjson_get(doc, "data"), *period;
    char         path[128];
    struct reply t;

    ck_assert_msg(json_object_is_type(data, json_type_object), "%s %s: no data", ex->method,
                  ex->path);
    snprintf(path, sizeof(path), "/v1/tools/%s", ex->tool);
    post(d, path, ex->args, DEMO_TOKEN, &t);
    ck_assert_msg(t.status == 200, "%s answered %ld: %.300s", path, t.status,
                  t.body.data ? t.body.data : "");
    ck_assert_msg(json_object_equal(data, kmjson_get(t.doc, "data")),
                  "%s %s: its data differs from %s %s:\n%.600s\n---\n%.600s", ex->method,
                  ex->path, ex->tool, ex->args, json_object_to_json_string(data),
                  json_object_to_json_string(kmjson_get(t.doc, "data")));
    reply_free(&t);

    /* explicit dates are the period answered */
    period = kmjson_get(kmjson_get(doc, "metadata"), "period");
    if (ex->body && strstr(ex->body, "\"start_date\": \"2025-01-01\"")) {
        ck_assert_str_eq(kmjson_str(period, "start_date"), "2025-01-01");
        ck_assert_str_eq(kmjson_str(period, "end_date"), strstr(ex->body, "2025-03-31")
                                                             ? "2025-03-31" : "2025-01-31");
    }
    if (strcmp(ex->tool, "klaviyo_list_accounts") == 0) {
        json_object *list = kmjson_get(data, "accounts");

        ck_assert_int_eq((int)json_object_array_length(list), naccts);
        for (int i = 0; i < naccts; i++)
            ck_assert_str_eq(kmjson_str(json_object_array_get_idx(list, (size_t)i), "name"),
                             accts[i].name);
    } else if (strcmp(ex->tool, "klaviyo_get_flows") == 0) {
        json_object *flows = kmjson_get(data, "flows");

        ck_assert_int_gt((int)json_object_array_length(flows), 0);
        ck_assert_int_eq((int)kmjson_num(data, "flow_count", -1),
                         (int)json_object_array_length(flows));
        for (size_t i = 0; i < json_object_array_length(flows); i++)
            ck_assert_str_eq(kmjson_str(json_object_array_get_idx(flows, i), "status"), "live");
    } else if (strcmp(ex->tool, "klaviyo_get_campaign_performance") == 0) {
        json_object *c = kmjson_get(data, "campaigns");
        double       sent = 0;

        ck_assert_int_eq((int)kmjson_num(data, "campaign_count", -1),
                         (int)json_object_array_length(c));
        for (size_t i = 0; i < json_object_array_length(c); i++) {
            json_object *row = json_object_array_get_idx(c, i);

            ck_assert(kmjson_num(row, "delivered", -1) <= kmjson_num(row, "sent", -1));
            sent += kmjson_num(row, "sent", 0);
        }
        ck_assert_msg(sent > 0, "%s: nothing was sent", ex->body);
    } else if (strcmp(ex->tool, "klaviyo_get_flow_structure") == 0) {
        ck_assert_str_eq(kmjson_str(data, "flow_id"), "PPF7K3ABCD");
        ck_assert_int_eq((int)kmjson_num(data, "action_count", -1),
                         (int)json_object_array_length(kmjson_get(data, "steps")));
        ck_assert_int_gt((int)kmjson_num(data, "action_count", -1), 0);
    } else if (strcmp(ex->tool, "klaviyo_get_list_health") == 0 && strstr(ex->path, "SrEULb")) {
        json_object *lists = kmjson_get(data, "lists");

        ck_assert_int_eq((int)json_object_array_length(lists), 1);
        ck_assert_str_eq(kmjson_str(json_object_array_get_idx(lists, 0), "list_id"), "SrEULb");
        ck_assert(kmjson_num(data, "total_profiles", -1) ==
                  kmjson_num(json_object_array_get_idx(lists, 0), "profile_count", -2));
    }
}

/* Run the examples against a demo-mode restd with the README's credential. */
static void
run_examples(const struct example *ex, size_t n)
{
    struct restd_opts o = { .api_key = DEMO_TOKEN, .demo = 1 };
    struct restd      d;
    struct reply      r;

    test_up();
    restd_start(&d, &o);
    {
        struct call c = { .method = "GET", .path = "/health" };
        call(&d, &c, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(kmjson_str(r.doc, "status"), "ok");
        reply_free(&r);
    }
    for (size_t i = 0; i < n; i++) {
        struct call c = { .method = ex[i].method, .path = ex[i].path, .body = ex[i].body,
                          .token = DEMO_TOKEN };
        json_object *w;
        int          demo = 0;

        call(&d, &c, &r);
        ck_assert_msg(r.status == 200, "%s %s answered %ld: %.500s", ex[i].method, ex[i].path,
                      r.status, r.body.data ? r.body.data : "");
        /* every demo answer says so */
        w = kmjson_get(r.doc, "warnings");
        for (size_t j = 0; j < json_object_array_length(w); j++)
            demo |= strstr(json_object_get_string(json_object_array_get_idx(w, j)), "emo") != NULL;
        ck_assert_msg(demo, "%s %s: no demo warning: %.300s", ex[i].method, ex[i].path,
                      r.body.data);
        check_example_data(&d, &ex[i], r.doc);
        reply_free(&r);
    }
    restd_stop(&d);
}

START_TEST(the_seed_readme_examples_work_verbatim)
{
    static const struct example ex[] = {
        { "GET", "/v1/accounts", NULL, "klaviyo_list_accounts", "{}" },
        { "POST", "/v1/campaigns/performance",
          "{\"account\": \"acme\", \"start_date\": \"2025-01-01\", \"end_date\": \"2025-01-31\"}",
          "klaviyo_get_campaign_performance",
          "{\"account\":\"acme\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}" },
        { "GET", "/v1/flows?account=acme&status=live", NULL, "klaviyo_get_flows",
          "{\"account\":\"acme\",\"status\":\"live\"}" },
        { "POST", "/v1/flows/performance",
          "{\"account\": \"acme\", \"start_date\": \"2025-01-01\", \"end_date\": \"2025-01-31\"}",
          "klaviyo_get_flow_performance",
          "{\"account\":\"acme\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\"}" },
        { "POST", "/v1/flows/performance",
          "{\"account\": \"acme\", \"start_date\": \"2025-01-01\", \"end_date\": \"2025-01-31\", "
          "\"resolve_message_names\": true}", "klaviyo_get_flow_performance",
          "{\"account\":\"acme\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-31\","
          "\"resolve_message_names\":true}" },
        { "POST", "/v1/performance/over-time",
          "{\"account\": \"acme\", \"entity\": \"flow\", \"start_date\": \"2025-01-01\", "
          "\"end_date\": \"2025-03-31\", \"interval\": \"weekly\"}",
          "klaviyo_get_performance_over_time",
          "{\"account\":\"acme\",\"entity\":\"flow\",\"start_date\":\"2025-01-01\","
          "\"end_date\":\"2025-03-31\",\"interval\":\"weekly\"}" },
        { "POST", "/v1/campaigns/performance",
          "{\"account\": \"acme\", \"timeframe\": \"last_30_days\"}",
          "klaviyo_get_campaign_performance",
          "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
        { "POST", "/v1/performance/over-time",
          "{\"account\": \"acme\", \"entity\": \"campaign\", \"timeframe\": \"last_90_days\", "
          "\"interval\": \"monthly\"}", "klaviyo_get_performance_over_time",
          "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"last_90_days\","
          "\"interval\":\"monthly\"}" },
        { "POST", "/v1/performance/compare",
          "{\"account\": \"acme\", \"entity\": \"campaign\", \"timeframe\": \"this_month\"}",
          "klaviyo_compare_periods",
          "{\"account\":\"acme\",\"entity\":\"campaign\",\"timeframe\":\"this_month\"}" },
        { "GET", "/v1/lists/health?account=acme", NULL, "klaviyo_get_list_health",
          "{\"account\":\"acme\"}" },
        { "POST", "/v1/lists/growth", "{\"account\": \"acme\", \"timeframe\": \"last_30_days\"}",
          "klaviyo_get_list_growth", "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
        { "POST", "/v1/lists/breakdown",
          "{\"account\": \"acme\", \"timeframe\": \"last_30_days\"}", "klaviyo_get_list_breakdown",
          "{\"account\":\"acme\",\"timeframe\":\"last_30_days\"}" },
    };

    run_examples(ex, sizeof(ex) / sizeof(ex[0]));
}
END_TEST

/* The two examples that name fixed ids: the simulator's acme must have them. */
START_TEST(the_seed_readme_examples_with_fixed_ids_work_verbatim)
{
    static const struct example ex[] = {
        { "GET", "/v1/flows/PPF7K3ABCD/structure?account=acme", NULL,
          "klaviyo_get_flow_structure", "{\"account\":\"acme\",\"flow_id\":\"PPF7K3ABCD\"}" },
        { "GET", "/v1/lists/health?account=acme&list_id=SrEULb", NULL, "klaviyo_get_list_health",
          "{\"account\":\"acme\",\"list_id\":\"SrEULb\"}" },
    };

    run_examples(ex, sizeof(ex) / sizeof(ex[0]));
}
END_TEST

/* === HTTP hygiene ======================================================================== */

START_TEST(every_error_status_has_an_envelope_and_a_request_id)
{
    struct restd_opts o = { .max_body = 1024 };
    struct restd      d;
    struct reply      r;
    char              big[1600];

    test_up();
    restd_start(&d, &o);

    /* 400: malformed JSON, a body that is not an object, an argument the schema refuses */
    post(&d, "/v1/campaigns/performance", "{\"account\": ", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    ck_assert_ptr_nonnull(strstr(r.body.data, "malformed JSON body"));
    ck_assert_ptr_null(strstr(strstr(r.body.data, "malformed JSON") + 1, "malformed JSON"));
    reply_free(&r);
    /* a name in the wrong case is an unknown account with the list, not a pattern error */
    post(&d, "/v1/campaigns/performance", "{\"account\":\"ACME\",\"timeframe\":\"last_30_days\"}",
         TOKEN_A, &r);
    assert_error(&r, 404, "UNKNOWN_ACCOUNT");
    ck_assert_ptr_nonnull(strstr(r.body.data, "did you mean 'acme'"));
    ck_assert_ptr_nonnull(strstr(r.body.data, "available_accounts"));
    reply_free(&r);
    post(&d, "/v1/campaigns/performance", "[1, 2]", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    reply_free(&r);
    post(&d, "/v1/campaigns/performance", "{\"account\":\"acme\",\"timeframe\":\"last_30_days\","
         "\"colour\":\"blue\"}", TOKEN_A, &r);
    assert_error(&r, 400, "INVALID_ARGUMENT");
    ck_assert_ptr_nonnull(strstr(r.body.data, "colour"));
    reply_free(&r);
    /* 401 and 403 */
    get(&d, "/v1/accounts", NULL, &r);
    assert_error(&r, 401, "MISSING_API_KEY");
    reply_free(&r);
    get(&d, "/v1/accounts", "not-a-token", &r);
    assert_error(&r, 403, "INVALID_API_KEY");
    reply_free(&r);
    /* 404: unknown route, unknown tool, unknown account (with the accounts that exist) */
    get(&d, "/v1/nothing-here", TOKEN_A, &r);
    assert_error(&r, 404, "NOT_FOUND");
    reply_free(&r);
    post(&d, "/v1/tools/klaviyo_make_coffee", "{}", TOKEN_A, &r);
    assert_error(&r, 404, "UNKNOWN_TOOL");
    reply_free(&r);
    get(&d, "/v1/flows?account=nobody", TOKEN_A, &r);
    assert_error(&r, 404, "UNKNOWN_ACCOUNT");
    ck_assert_ptr_nonnull(strstr(r.body.data, "available_accounts"));
    reply_free(&r);
    /* 405 with Allow */
    {
        struct call c = { .method = "DELETE", .path = "/v1/accounts", .token = TOKEN_A };
        call(&d, &c, &r);
        assert_error(&r, 405, "METHOD_NOT_ALLOWED");
        ck_assert_str_eq(r.allow, "GET");
        reply_free(&r);
    }
    get(&d, "/v1/campaigns/performance", TOKEN_A, &r);
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert_str_eq(r.allow, "POST");
    reply_free(&r);
    get(&d, "/v1/tools/klaviyo_list_accounts", TOKEN_A, &r);
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert_str_eq(r.allow, "POST");
    reply_free(&r);
    post(&d, "/health", "{}", NULL, &r);
    assert_error(&r, 405, "METHOD_NOT_ALLOWED");
    ck_assert_str_eq(r.allow, "GET, HEAD");
    reply_free(&r);
    /* 413: over REST_MAX_BODY_BYTES */
    memset(big, ' ', sizeof(big) - 3);
    big[0] = '{';
    big[sizeof(big) - 3] = '}';
    big[sizeof(big) - 2] = '\0';
    post(&d, "/v1/campaigns/performance", big, TOKEN_A, &r);
    assert_error(&r, 413, "PAYLOAD_TOO_LARGE");
    reply_free(&r);
    /* 415: a body that is not JSON */
    {
        struct call c = { .method = "POST", .path = "/v1/lists/growth", .token = TOKEN_A,
                          .body = "account=acme", .ctype = "application/x-www-form-urlencoded" };
        call(&d, &c, &r);
        assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
        reply_free(&r);
        c.ctype = "";
        call(&d, &c, &r);
        assert_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE");
        reply_free(&r);
    }
    /* application/json with parameters is JSON */
    {
        struct call c = { .method = "POST", .path = "/v1/tools/klaviyo_list_accounts",
                          .token = TOKEN_A, .body = "{}",
                          .ctype = "application/json; charset=utf-8" };
        call(&d, &c, &r);
        assert_ok(&r);
        reply_free(&r);
    }
    restd_stop(&d);
}
END_TEST

START_TEST(a_sane_request_id_is_echoed_and_an_odd_one_replaced)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r, r2;

    test_up();
    restd_start(&d, &o);
    {
        struct call c = { .method = "GET", .path = "/v1/accounts", .token = TOKEN_A,
                          .rid = "client-42.abc_DEF:7" };
        call(&d, &c, &r);
        assert_ok(&r);
        ck_assert_str_eq(r.rid, "client-42.abc_DEF:7");
        reply_free(&r);
        c.rid = "has spaces and <tags>";
        call(&d, &c, &r);
        assert_ok(&r);
        ck_assert_str_ne(r.rid, "has spaces and <tags>");
        ck_assert_int_ge((int)strlen(r.rid), 16);
        reply_free(&r);
    }
    /* generated ids differ from request to request */
    get(&d, "/health", NULL, &r);
    get(&d, "/health", NULL, &r2);
    ck_assert(r.rid[0] && r2.rid[0]);
    ck_assert_str_ne(r.rid, r2.rid);
    reply_free(&r);
    reply_free(&r2);
    restd_stop(&d);
}
END_TEST

START_TEST(every_request_is_logged_once_as_json_without_headers)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    json_object      *line;
    char             *text;

    test_up();
    restd_start(&d, &o);
    {
        struct call c = { .method = "GET", .path = "/v1/flows?account=acme&status=live",
                          .auth = "Bearer " TOKEN_B, .rid = "log-check-1" };
        call(&d, &c, &r);
        assert_ok(&r);
        reply_free(&r);
    }
    get(&d, "/v1/accounts", "wrong-token-value-123", &r);
    ck_assert_int_eq(r.status, 403);
    line = access_line_wait(&d, r.rid);
    ck_assert_ptr_nonnull(line);
    ck_assert_int_eq((int)kmjson_num(line, "status", 0), 403);
    json_object_put(line);
    reply_free(&r);

    line = access_line_wait(&d, "log-check-1");
    ck_assert_ptr_nonnull(line);
    ck_assert_str_eq(kmjson_str(line, "method"), "GET");
    ck_assert_str_eq(kmjson_str(line, "path"), "/v1/flows");      /* no query string */
    ck_assert_int_eq((int)kmjson_num(line, "status", 0), 200);
    ck_assert_int_gt((int)kmjson_num(line, "bytes", 0), 0);
    ck_assert_ptr_nonnull(kmjson_get(line, "ms"));
    ck_assert_ptr_nonnull(kmjson_get(line, "pid"));
    ck_assert_str_eq(kmjson_str(line, "tool"), "klaviyo_get_flows");
    json_object_put(line);

    restd_stop(&d);
    text = slurp(d.log);
    /* exactly one line per request, and no credential or header value anywhere */
    ck_assert_int_eq(count_events(text, "request"), 2);
    ck_assert_ptr_null(strstr(text, TOKEN_B));
    ck_assert_ptr_null(strstr(text, "wrong-token-value-123"));
    ck_assert_ptr_null(strstr(text, "Bearer"));
    ck_assert_ptr_null(strstr(text, "status=live"));
    for (int i = 0; i < naccts; i++)
        ck_assert_ptr_null(strstr(text, accts[i].key));
    free(text);
}
END_TEST

START_TEST(the_service_log_lines_of_a_request_carry_its_id)
{
    static const char *const debug[] = { "LOG_LEVEL=debug", NULL };
    struct restd_opts o = { .env = debug };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/flows?account=nosms",
                            .token = TOKEN_A, .rid = "trace-me-7" };
    char             *text, *save = NULL;
    int               tagged = 0;

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &r);                 /* cold: the client logs its Klaviyo request */
    assert_ok(&r);
    reply_free(&r);
    restd_stop(&d);
    text = slurp(d.log);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, "\"event\":\"klaviyo_request\"") &&
            strstr(line, "\"request_id\":\"trace-me-7\""))
            tagged++;
    }
    free(text);
    ck_assert_int_ge(tagged, 1);
}
END_TEST

/* The lines of one event whose request_id is rid (none when rid is NULL). */
static int
log_count_for(const struct restd *d, const char *event, const char *rid)
{
    char  ev[96], id[96];
    char *text = slurp(d->log), *save = NULL;
    int   n = 0;

    snprintf(ev, sizeof(ev), "\"event\":\"%s\"", event);
    snprintf(id, sizeof(id), "\"request_id\":\"%s\"", rid ? rid : "");
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strstr(line, ev) && (rid ? strstr(line, id) != NULL : !strstr(line, "request_id")))
            n++;
    }
    free(text);
    return n;
}

/* A call that parsed a big Klaviyo document (a two-year daily series: ~90 KB, a tree of
 * megabytes) gives its freed memory back to the system once its caller has the answer; a
 * call over small documents does not pay for it; the loop gives back what is free every 10 s. */
START_TEST(a_call_over_a_big_document_gives_its_memory_back)
{
    static const char *const debug[] = { "LOG_LEVEL=debug", NULL };
    struct restd_opts o = { .env = debug, .workers = 1 };
    struct restd      d;
    struct reply      r;
    struct call       big = { .method = "POST", .path = "/v1/performance/over-time",
                              .body = "{\"account\":\"acme\",\"entity\":\"flow\","
                                      "\"start_date\":\"2023-07-01\",\"end_date\":"
                                      "\"2025-06-30\",\"interval\":\"daily\"}",
                              .token = TOKEN_A, .rid = "big-series-1" };
    struct call       small = { .method = "GET", .path = "/v1/flows?account=nosms",
                                .token = TOKEN_A, .rid = "small-flows-1" };

    test_up();
    restd_start(&d, &o);
    call(&d, &small, &r);
    assert_ok(&r);
    reply_free(&r);
    call(&d, &big, &r);
    assert_ok(&r);
    reply_free(&r);
    /* the trim follows the answer: wait for its line; and the loop's own, every 10 s (real
     * time), without a request id */
    for (int i = 0; i < 600 && (log_count_for(&d, "memory_given_back", big.rid) < 1 ||
                                log_count_for(&d, "memory_given_back", NULL) < 1); i++)
        nap(25);
    restd_stop(&d);
    ck_assert_int_eq(log_count_for(&d, "memory_given_back", big.rid), 1);
    ck_assert(log_has(&d, "malloc_trim after a call ("));
    ck_assert(log_has(&d, "malloc_trim on the loop, every 10 s"));
    ck_assert_int_ge(log_count_for(&d, "memory_given_back", NULL), 1);
    ck_assert_int_eq(log_count_for(&d, "memory_given_back", small.rid), 0);
    /* the cold small call did fetch from Klaviyo: it was measured, and found small */
    ck_assert_int_ge(log_count_for(&d, "klaviyo_request", small.rid), 1);
}
END_TEST

START_TEST(keep_alive_reuses_one_connection)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/accounts", .token = TOKEN_A };
    CURL             *h = curl_easy_init();

    test_up();
    restd_start(&d, &o);
    call_on(h, &d, &c, &r);
    assert_ok(&r);
    ck_assert_int_eq(r.connects, 1);
    reply_free(&r);
    for (int i = 0; i < 5; i++) {
        call_on(h, &d, &c, &r);
        assert_ok(&r);
        ck_assert_int_eq(r.connects, 0);
        reply_free(&r);
    }
    curl_easy_cleanup(h);
    restd_stop(&d);
}
END_TEST

/* Loop: 0 stalls inside the headers, 1 inside the body. */
START_TEST(a_client_that_stalls_mid_request_is_disconnected)
{
    static const char *const parts[] = {
        "GET /health HTTP/1.1\r\nHost: x\r\n",
        "POST /v1/tools/klaviyo_list_accounts HTTP/1.1\r\nHost: x\r\nX-API-Key: " TOKEN_A
        "\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"acc",
    };
    struct restd_opts  o = { .rest_timeout_s = 1 };
    struct restd       d;
    struct sockaddr_in a;
    int                fd;
    char               buf[256];
    ssize_t            n;
    struct timeval     tv = { WAIT_MS / 1000, 0 };
    const char        *part = parts[_i];

    test_up();
    restd_start(&d, &o);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)d.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(write(fd, part, strlen(part)), (ssize_t)strlen(part));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    /* the server gives up on the unfinished request and closes: EOF, not a reply */
    n = read(fd, buf, sizeof(buf));
    ck_assert_msg(n == 0 || (n < 0 && errno == ECONNRESET), "read returned %zd", n);
    close(fd);
    restd_stop(&d);
}
END_TEST

/* REST_TIMEOUT_SECONDS bounds an idle client, not a busy call (real time, both with and
 * without streaming): a call that waits on Klaviyo longer than it is answered on a kept-alive
 * connection, which then times out once it is idle again. Loop: 0 plain JSON, 1 NDJSON. */
START_TEST(the_rest_timeout_cuts_idle_clients_not_long_calls)
{
    struct restd_opts o = { .rest_timeout_s = 2 };
    struct restd      d;
    struct reply      r;
    struct call       slow = { .method = "POST", .path = "/v1/tools/klaviyo_get_flows",
                               .body = "{\"account\":\"nosms\"}", .token = TOKEN_A,
                               .accept = _i ? "application/x-ndjson" : NULL };
    struct call       health = { .method = "GET", .path = "/health" };
    CURL             *h = curl_easy_init();
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/flows", 1, 4500);
    t0 = km_now_ms();
    call_on(h, &d, &slow, &r);
    ck_assert_int_eq(r.cc, CURLE_OK);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(km_now_ms() - t0, 4500);
    if (_i) {
        /* the last line is the result: the call was not cut */
        ck_assert_ptr_nonnull(strstr(r.body.data, "{\"status\":200,\"result\":{\"data\""));
    } else {
        assert_ok(&r);
    }
    reply_free(&r);
    /* the same connection serves the next request... */
    call_on(h, &d, &health, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 0);
    reply_free(&r);
    /* ...and, idle for longer than REST_TIMEOUT_SECONDS, it is closed by the service */
    nap(3200);
    call_on(h, &d, &health, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.connects, 1);
    reply_free(&r);
    curl_easy_cleanup(h);
    restd_stop(&d);
}
END_TEST

/* Write `req` on a new TCP connection and read until the service closes it or timeout_ms
 * pass. Returns the bytes read (NUL-terminated in buf); *closed is 1 when EOF came. */
static size_t
raw_exchange(const struct restd *d, const char *req, size_t reqlen, char *buf, size_t cap,
             int timeout_ms, int *closed)
{
    struct sockaddr_in a;
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t             got = 0;
    int64_t            until = now_ms() + timeout_ms;

    *closed = 0;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)d->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(write(fd, req, reqlen), (ssize_t)reqlen);
    while (got + 1 < cap && now_ms() < until) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t       n;

        if (poll(&p, 1, (int)(until - now_ms())) <= 0)
            break;
        n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0) {
            *closed = 1;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return got;
}

/* HEAD answers GET's headers (with its Content-Length) and no body; CONNECT gets a 405 with
 * its length and the connection closes at once. */
START_TEST(head_has_no_body_and_connect_is_refused_and_closed)
{
    static const char two[] = "HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    static const char con[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    struct restd_opts o = { 0 };
    struct restd      d;
    char              buf[8192];
    const char       *cl, *end, *second, *body;
    int               closed;
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    raw_exchange(&d, two, strlen(two), buf, sizeof(buf), 5000, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 200", 12) == 0, "%s", buf);
    end = strstr(buf, "\r\n\r\n");
    ck_assert_ptr_nonnull(end);
    cl = strcasestr(buf, "Content-Length: ");
    ck_assert_msg(cl && cl < end, "HEAD without Content-Length: %s", buf);
    /* no body: the GET's answer follows the HEAD's headers at once */
    second = end + 4;
    ck_assert_msg(strncmp(second, "HTTP/1.1 200", 12) == 0, "bytes after HEAD: %s", second);
    body = strstr(second, "\r\n\r\n");
    ck_assert_ptr_nonnull(body);
    ck_assert_int_eq(atoi(cl + 16), (int)strlen(body + 4));

    t0 = now_ms();
    raw_exchange(&d, con, strlen(con), buf, sizeof(buf), 10000, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 405", 12) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strcasestr(buf, "Content-Length: "));
    ck_assert_int_eq(closed, 1);
    ck_assert_int_lt(now_ms() - t0, 5000);
    restd_stop(&d);
}
END_TEST

/* Parser edges: two different Content-Length headers are refused; a NUL in a query value or a
 * JSON string is refused (it used to end the value early); answers are valid UTF-8 even when
 * they quote bytes that are not (a raw path) or cut a quoted value mid-character. */
START_TEST(parser_edges_are_refused_and_answers_stay_utf8)
{
    static const char dup[] = "POST /v1/tools/klaviyo_list_accounts HTTP/1.1\r\nHost: x\r\n"
                              "X-API-Key: " TOKEN_A "\r\nContent-Type: application/json\r\n"
                              "Content-Length: 2\r\nContent-Length: 3\r\n\r\n{} ";
    static const char raw[] = "GET /v1/\xff\xfe\xc3 HTTP/1.1\r\nHost: x\r\nX-API-Key: "
                              TOKEN_A "\r\nConnection: close\r\n\r\n";
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       body = { .method = "POST", .path = "/v1/tools/klaviyo_get_flows",
                               .body = "{\"account\":\"acme\\u0000x\"}", .token = TOKEN_A };
    /* 20 two-byte characters: a 40-byte cut lands inside the 21st when it is longer */
    struct call       cut = { .method = "POST", .path = "/v1/tools/klaviyo_get_flows",
                              .body = "{\"account\":\"a\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                                      "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                                      "\u00e9\u00e9\u00e9\u00e9\u00e9\"}", .token = TOKEN_A };
    char              buf[8192];
    int               closed;

    test_up();
    restd_start(&d, &o);
    raw_exchange(&d, dup, strlen(dup), buf, sizeof(buf), 5000, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400", 12) == 0, "%s", buf);

    get(&d, "/v1/flows?account=acme%00xx", TOKEN_A, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(r.doc, "error"), "message"), "NUL"));
    reply_free(&r);
    call(&d, &body, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(r.doc, "error"), "message"), "NUL"));
    reply_free(&r);

    call(&d, &cut, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_msg(km_utf8_valid(r.body.data, r.body.len, NULL), "not UTF-8: %s", r.body.data);
    reply_free(&r);
    raw_exchange(&d, raw, sizeof(raw) - 1, buf, sizeof(buf), 5000, &closed);
    ck_assert_msg(strncmp(buf, "HTTP/1.1 404", 12) == 0, "%s", buf);
    ck_assert_msg(km_utf8_valid(buf, strlen(buf), NULL), "not UTF-8: %s", buf);
    restd_stop(&d);
    /* nor any log line */
    {
        char *text = slurp(d.log);

        ck_assert_ptr_nonnull(text);
        ck_assert(km_utf8_valid(text, strlen(text), NULL));
        free(text);
    }
}
END_TEST

/* CPU time (user + system) of `pid` so far, in clock ticks. */
static long
cpu_ticks(pid_t pid)
{
    char  path[64], buf[1024], *rp;
    long  ut = 0, st = 0;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof(buf), f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    rp = strrchr(buf, ')');
    /* fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime */
    if (!rp || sscanf(rp + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %ld %ld", &ut,
                      &st) != 2)
        return -1;
    return ut + st;
}

/* A TCP connection to the service (the test fails when it cannot be made). */
static int
tcp_connect(const struct restd *d)
{
    struct sockaddr_in a;
    int                fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)d->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* 1 when the peer closed fd (EOF or reset) within ms; 0 when it is still open. */
static int
closed_within(int fd, int ms)
{
    int64_t until = now_ms() + ms;
    char    buf[512];

    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int64_t       left = until - now_ms();

        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return 0;
        if (read(fd, buf, sizeof(buf)) <= 0)
            return 1;
    }
}

START_TEST(a_request_sent_a_line_at_a_time_is_cut_when_its_time_is_up)
{
    struct restd_opts o = { .rest_timeout_s = 3 };
    struct restd      d;
    struct reply      r;
    struct call       health = { .method = "GET", .path = "/health" };
    int               fd, cut = 0;
    int64_t           t0, t_cut = 0;

    test_up();
    restd_start(&d, &o);
    /* one header line a second, each well inside the 3 s idle timeout: the whole request
     * has 3 s from its first byte, so the connection ends at about 3 s, not after 8 lines */
    fd = tcp_connect(&d);
    t0 = now_ms();
    ck_assert_int_eq(write(fd, "GET /health HTTP/1.1\r\n", 22), 22);
    for (int i = 0; i < 8 && !cut; i++) {
        char line[40];
        int  n = snprintf(line, sizeof(line), "X-Trickle-%d: %d\r\n", i, i);

        if (closed_within(fd, 1000)) {
            cut = 1;
            t_cut = now_ms();
            break;
        }
        if (write(fd, line, (size_t)n) != n) {
            cut = 1;
            t_cut = now_ms();
        }
    }
    close(fd);
    ck_assert_msg(cut, "a request trickling for 8 s was still open");
    ck_assert_int_ge(t_cut - t0, 2900);
    ck_assert_int_le(t_cut - t0, 5500);
    /* a request that arrives in time is served, on a fresh connection and a kept-alive one */
    call(&d, &health, &r);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

/* Open `n` idle TCP connections to d (the kernel completes them even when the worker does not
 * accept); returns how many were made. */
static int
idle_flood(const struct restd *d, int *fds, int n)
{
    int made = 0;

    for (int i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a;

        if (fd < 0)
            break;
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)d->port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
            close(fd);
            break;
        }
        fds[made++] = fd;
    }
    return made;
}

/* Every log line is JSON; returns how many carry "event". */
static int
json_lines_with(const struct restd *d, const char *event)
{
    char  needle[96];
    char *text = slurp(d->log), *line, *save = NULL;
    int   n = 0;

    ck_assert_ptr_nonnull(text);
    snprintf(needle, sizeof(needle), "\"%s\"", event);
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(line[0] == '{', "a log line that is not JSON: %.200s", line);
        if (strstr(line, needle))
            n++;
    }
    free(text);
    return n;
}

/* A small descriptor limit (RLIMIT_NOFILE 128, 120 idle connections): the worker keeps half
 * the limit for connections (the rest for Klaviyo, the store and logs) and stops accepting there
 * instead of spinning on accept(), says so in one JSON line instead of flooding the log, and
 * serves again once connections are gone. (Real time: 3 s at the cap.) */
START_TEST(running_out_of_descriptors_pauses_accepting_without_spinning)
{
    struct restd_opts o = { .workers = 1, .nofile = 128 };
    struct restd      d;
    struct reply      r;
    pid_t             worker;
    int               fds[120], nfd, ok = 0;
    long              t0, t1;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(children_of(d.pid, &worker, 1), 1);
    nfd = idle_flood(&d, fds, 120);
    ck_assert_int_gt(nfd, 80);
    nap(500);
    t0 = cpu_ticks(worker);
    nap(3000);
    t1 = cpu_ticks(worker);
    ck_assert_int_ge(t0, 0);
    /* a spinning worker would burn ~3 s; allow a third of that */
    ck_assert_msg(t1 - t0 < sysconf(_SC_CLK_TCK), "the worker used %ld ticks in 3 s",
                  t1 - t0);
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    /* accepting again as connections close */
    for (int i = 0; i < 100 && !ok; i++) {
        struct call c = { .method = "GET", .path = "/health", .timeout_ms = 2000 };

        call(&d, &c, &r);
        ok = r.status == 200;
        reply_free(&r);
        if (!ok)
            nap(100);
    }
    ck_assert(ok);
    restd_stop(&d);
    ck_assert_int_eq(json_lines_with(&d, "connections_limited"), 1);
    ck_assert_int_eq(json_lines_with(&d, "connections_full"), 1);
    ck_assert_int_eq(json_lines_with(&d, "accept_paused"), 0);
}
END_TEST

/* RLIMIT_NOFILE 128 and 200 idle clients: the worker stops at its connection cap, so a call
 * that needs Klaviyo, on a connection opened before the flood, still gets the descriptors it
 * needs (without the cap the clients took them all and curl could not open a socket); a new
 * client waits in the kernel's queue and is served once idle clients are cut. */
START_TEST(a_klaviyo_call_keeps_its_descriptors_while_clients_hold_every_connection)
{
    struct restd_opts o = { .workers = 1, .nofile = 128, .rest_timeout_s = 2 };
    struct restd      d;
    struct reply      r;
    struct call       health = { .method = "GET", .path = "/health" };
    struct call       flows = { .method = "GET", .path = "/v1/flows?account=acme",
                                .token = TOKEN_A };
    struct call       late = { .method = "GET", .path = "/health", .timeout_ms = 20000 };
    CURL             *kept = curl_easy_init();
    int               fds[200], nfd;
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    ck_assert_ptr_nonnull(kept);
    call_on(kept, &d, &health, &r);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    nfd = idle_flood(&d, fds, 200);
    ck_assert_int_gt(nfd, 150);
    nap(300);
    /* the kept-alive connection carries a call that opens a connection to Klaviyo */
    call_on(kept, &d, &flows, &r);
    ck_assert_int_eq(r.connects, 0);
    assert_ok(&r);
    reply_free(&r);
    /* a new client: queued by the kernel, served once the idle ones are cut (2 s a wave) */
    t0 = now_ms();
    call(&d, &late, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(now_ms() - t0, 1000);
    reply_free(&r);
    for (int i = 0; i < nfd; i++)
        close(fds[i]);
    curl_easy_cleanup(kept);
    restd_stop(&d);
    ck_assert_int_eq(json_lines_with(&d, "connections_full"), 1);
}
END_TEST

/* metadata.klaviyo_calls of an answer (-1: none). */
static int
klaviyo_calls_of(const struct reply *r)
{
    return (int)kmjson_num(kmjson_get(r->doc, "metadata"), "klaviyo_calls", -1);
}

/* The access-log line of request `rid`, and whether it says the answer cache answered. */
static int
kept_answer(struct restd *d, const char *rid)
{
    json_object *line = access_line_wait(d, rid);
    int          kept;

    ck_assert_ptr_nonnull(line);
    kept = json_object_get_boolean(kmjson_get(line, "answer_cache"));
    json_object_put(line);
    return kept;
}

/* A worker a reload starts knows the accounts' time zones from the store, so it answers a kept
 * dated answer from its loop at once: the workers that use the store's copy write it again
 * every half of CACHE_TTL_SECONDS (4 s here), so it outlives its first time-to-live (before,
 * it expired 4 s after the first call, and every new worker sent its dated calls to service
 * threads until one had asked Klaviyo: a soak saw a new worker add ten threads). Real time. */
START_TEST(a_worker_started_by_a_reload_knows_the_time_zones_in_use)
{
    static const char *const env[] = { "CACHE_TTL_SECONDS=4", "CACHE_REFRESH_AHEAD_SECONDS=0",
                                       NULL };
    struct restd_opts o = { .workers = 1, .env = env };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "POST", .path = "/v1/campaigns/performance",
                            .token = TOKEN_A };
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    t0 = now_ms();
    /* the first dated call: the worker asks Klaviyo for kiwi's zone and shares it */
    c.body = "{\"account\":\"kiwi\",\"start_date\":\"2025-01-01\",\"end_date\":\"2025-01-28\"}";
    c.rid = "first";
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    /* 2.5 s on: another, computed on a service thread (which writes the zone again), kept */
    nap((int)(t0 + 2500 - now_ms()));
    c.body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\",\"end_date\":\"2025-02-28\"}";
    c.rid = "second";
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    /* past the first copy's time-to-live, a new worker */
    nap((int)(t0 + 4500 - now_ms()));
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert_msg(log_wait(&d, "reload_done", 1), "no reload_done");
    c.rid = "after-reload";
    call(&d, &c, &r);
    assert_ok(&r);
    ck_assert_int_eq(klaviyo_calls_of(&r), 0);
    reply_free(&r);
    ck_assert_int_lt(now_ms() - t0, 6300);     /* the second answer is still kept */
    ck_assert_msg(kept_answer(&d, "after-reload"), "the new worker did not answer from its "
                  "loop: it did not know kiwi's time zone");
    restd_stop(&d);
}
END_TEST

START_TEST(a_repeated_call_is_answered_from_the_answer_cache_with_the_same_data)
{
    struct restd_opts o = { .workers = 2, .backend = _i };
    struct restd      d;
    struct reply      cold, r;
    struct call       c = { .method = "POST", .path = "/v1/campaigns/performance",
                            .token = TOKEN_A, .rid = "cold",
                            .body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
                                    "\"end_date\":\"2025-02-28\"}" };
    json_object      *meta;
    int               responses, on_loop = 0;
    char              body[256], start[11], end[11];

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &cold);                  /* cold: computed on a service thread, kept */
    assert_ok(&cold);
    meta = kmjson_get(cold.doc, "metadata");
    ck_assert_int_gt((int)kmjson_num(meta, "klaviyo_calls", 0), 0);
    responses = (int)kmjson_num(meta, "klaviyo_calls", 0) + (int)kmjson_num(meta, "cache_hits", 0);
    ck_assert(!kept_answer(&d, "cold"));
    /* every repeat, on either worker, is answered from the kept answer on the loop: the same
     * data and warnings, no Klaviyo call, the responses it stood on counted as cache hits,
     * and its own request id and latency */
    for (int i = 0; i < 6; i++) {
        char rid[32];

        snprintf(rid, sizeof(rid), "kept-%d", i);
        c.rid = rid;
        call(&d, &c, &r);
        assert_ok(&r);
        ck_assert_str_eq(r.rid, rid);
        ck_assert(json_object_equal(kmjson_get(r.doc, "data"), kmjson_get(cold.doc, "data")));
        ck_assert(json_object_equal(kmjson_get(r.doc, "warnings"),
                                    kmjson_get(cold.doc, "warnings")));
        meta = kmjson_get(r.doc, "metadata");
        ck_assert_int_eq((int)kmjson_num(meta, "klaviyo_calls", -1), 0);
        ck_assert_int_eq((int)kmjson_num(meta, "cache_hits", -1), responses);
        ck_assert(json_object_equal(kmjson_get(meta, "period"),
                                    kmjson_get(kmjson_get(cold.doc, "metadata"), "period")));
        ck_assert(kmjson_get(meta, "latency_ms") != NULL);
        on_loop += kept_answer(&d, rid);
        reply_free(&r);
    }
    /* a worker learns an account's time zone on its first dated call (read on a service
     * thread, from the kept answer too); after that its loop answers */
    ck_assert_int_ge(on_loop, 4);
    reply_free(&cold);

    /* a preset and the explicit dates it stands for share one kept answer */
    c.body = "{\"account\":\"kiwi\",\"timeframe\":\"last_30_days\"}";
    c.rid = "preset";
    call(&d, &c, &r);
    assert_ok(&r);
    meta = kmjson_get(kmjson_get(r.doc, "metadata"), "period");
    km_strlcpy(start, kmjson_str(meta, "start_date"), sizeof(start));
    km_strlcpy(end, kmjson_str(meta, "end_date"), sizeof(end));
    reply_free(&r);
    snprintf(body, sizeof(body), "{\"end_date\":\"%s\",\"account\":\"kiwi\","
             "\"start_date\":\"%s\"}", end, start);
    c.body = body;
    /* no Klaviyo call: the preset's answer. On the loop once the worker that takes the call
     * knows kiwi's time zone: the one that answered the preset does; the other learns it on
     * its first kiwi call (a service thread, which reads the same kept answer) */
    on_loop = 0;
    for (int i = 0; i < 4 && !on_loop; i++) {
        char rid[32];

        snprintf(rid, sizeof(rid), "explicit-%d", i);
        c.rid = rid;
        call(&d, &c, &r);
        assert_ok(&r);
        ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1), 0);
        on_loop = kept_answer(&d, rid);
        reply_free(&r);
    }
    ck_assert(on_loop);

    /* other arguments are another call */
    c.body = "{\"account\":\"kiwi\",\"timeframe\":\"last_30_days\",\"limit\":1}";
    c.rid = "other";
    call(&d, &c, &r);
    assert_ok(&r);
    ck_assert(!kept_answer(&d, "other"));
    reply_free(&r);

    /* arguments the service refuses are refused before any lookup, the same way */
    c.body = "{\"account\":\"kiwi\",\"timeframe\":\"last_3_eons\"}";
    c.rid = "bad";
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(kmjson_str(kmjson_get(r.doc, "error"), "code"), "INVALID_ARGUMENT");
    reply_free(&r);

    /* workers started by a reload know kiwi's time zone from the store when they start: the
     * loop answers their very first kiwi call */
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert_msg(log_wait(&d, "reload_done", 1), "no reload_done");
    c.body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
             "\"end_date\":\"2025-02-28\"}";
    for (int i = 0; i < 4; i++) {
        char rid[32];

        snprintf(rid, sizeof(rid), "reloaded-%d", i);
        c.rid = rid;
        call(&d, &c, &r);
        assert_ok(&r);
        ck_assert_msg(kept_answer(&d, rid), "%s was not answered on the loop", rid);
        reply_free(&r);
    }
    restd_stop(&d);
}
END_TEST

/* === auth ============================================================================= */

START_TEST(bearer_and_x_api_key_tokens_are_both_accepted)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/accounts" };

    test_up();
    restd_start(&d, &o);
    c.auth = "Bearer " TOKEN_A;
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    c.auth = "bearer " TOKEN_B;
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    c.auth = NULL;
    c.token = TOKEN_B;
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(a_missing_credential_is_401_and_a_wrong_one_403)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/tools" };

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &r);
    assert_error(&r, 401, "MISSING_API_KEY");
    reply_free(&r);
    c.auth = "Basic dXNlcjpwYXNz";
    call(&d, &c, &r);
    assert_error(&r, 401, "MISSING_API_KEY");
    reply_free(&r);
    c.auth = "Bearer " TOKEN_A "x";
    call(&d, &c, &r);
    assert_error(&r, 403, "INVALID_API_KEY");
    ck_assert_ptr_null(strstr(r.body.data, TOKEN_A));
    reply_free(&r);
    c.auth = NULL;
    c.token = "restd-test-token-a";
    call(&d, &c, &r);
    assert_error(&r, 403, "INVALID_API_KEY");
    reply_free(&r);
    /* an unknown route says nothing to a client without a credential */
    c.token = NULL;
    c.path = "/v1/secret-route";
    call(&d, &c, &r);
    assert_error(&r, 401, "MISSING_API_KEY");
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(health_is_open_without_a_token)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "HEAD", .path = "/health" };

    test_up();
    restd_start(&d, &o);
    get(&d, "/health", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(kmjson_str(r.doc, "status"), "ok");
    ck_assert_int_gt((int)kmjson_num(r.doc, "pid", 0), 0);
    reply_free(&r);
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)r.body.len, 0);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(the_unix_socket_serves_every_route_without_a_token)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/accounts", .socket = 1 };

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    /* a wrong token on the socket does not matter: the 0600 mode is the gate */
    c.token = "whatever";
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    c.method = "POST";
    c.path = "/v1/tools/klaviyo_get_flows";
    c.body = "{\"account\":\"kiwi\"}";
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    c.method = "GET";
    c.path = "/v1/tools";
    c.body = NULL;
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(a_socket_only_service_needs_no_credential)
{
    const char *const args[] = { "--socket-only", NULL };
    struct restd_opts o = { .no_tokens = 1, .args = args };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "GET", .path = "/v1/accounts", .socket = 1 };

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    /* and it opened no TCP listener */
    ck_assert_int_eq(log_count(&d, "master_started"), 1);
    ck_assert(log_has(&d, "\"tcp\":null"));
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

/* === streaming and cancellation ===================================================== */

START_TEST(a_tool_call_streams_progress_lines_then_the_result)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct reply      r, plain;
    struct call       c = { .method = "POST", .path = "/v1/tools/klaviyo_get_list_health",
                            .token = TOKEN_A, .body = "{\"account\":\"nosms\"}",
                            .accept = "application/x-ndjson" };
    char             *save = NULL, *text;
    json_object      *last = NULL;
    int               lines = 0, progress = 0, prev_done = 0;

    test_up();
    restd_start(&d, &o);
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.ctype, "application/x-ndjson");
    ck_assert_ptr_nonnull(r.body.data);
    ck_assert_int_eq(r.body.data[r.body.len - 1], '\n');
    text = km_xstrdup(r.body.data);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o2 = NULL;
        kmerr        e = { 0 };

        ck_assert_msg(kmjson_parse(line, strlen(line), KM_INVALID_ARGUMENT, &o2, &e) == KM_OK,
                      "line %d is not JSON: %s", lines, line);
        ck_assert_msg(!last, "a line after the result: %s", line);
        if (kmjson_get(o2, "progress")) {
            int done = (int)kmjson_num(kmjson_get(o2, "progress"), "done", -1);
            int total = (int)kmjson_num(kmjson_get(o2, "progress"), "total", -1);
            ck_assert_int_gt(done, prev_done);
            ck_assert_int_ge(total, done);
            prev_done = done;
            progress++;
            json_object_put(o2);
        } else {
            last = o2;
        }
        lines++;
    }
    free(text);
    /* a cold list-health call makes several Klaviyo requests: each reported */
    ck_assert_int_ge(progress, 2);
    ck_assert_ptr_nonnull(last);
    ck_assert_int_eq((int)kmjson_num(last, "status", 0), 200);
    /* the final line holds the same envelope the plain call answers */
    c.accept = NULL;
    call(&d, &c, &plain);
    assert_ok(&plain);
    ck_assert_str_eq(plain.ctype, "application/json");
    ck_assert(json_object_equal(kmjson_get(kmjson_get(last, "result"), "data"),
                                kmjson_get(plain.doc, "data")));
    json_object_put(last);
    reply_free(&plain);
    reply_free(&r);

    /* an error streams too: one final line carrying the error's status */
    c.accept = "application/x-ndjson";
    c.body = "{\"account\":\"nobody\"}";
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)kmjson_num(r.doc, "status", 0), 404);
    ck_assert_str_eq(kmjson_str(kmjson_get(kmjson_get(r.doc, "result"), "error"), "code"),
                     "UNKNOWN_ACCOUNT");
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

/* A streamed call that waits on Klaviyo longer than REST_TIMEOUT_SECONDS between two lines
 * (a report slot at 2 a minute is a wait of up to a minute) is not cut off by that idle
 * timeout: the stream runs to its result. Timed in real time: a 2 s idle timeout, a 3.5 s
 * Klaviyo answer. */
START_TEST(a_stream_outlives_the_idle_timeout_while_klaviyo_is_slow)
{
    struct restd_opts o = { .workers = 1, .rest_timeout_s = 2 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "POST", .path = "/v1/tools/klaviyo_get_list_health",
                            .token = TOKEN_A, .body = "{\"account\":\"kiwi\"}",
                            .accept = "application/x-ndjson" };

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/lists", 1, 3500);
    call(&d, &c, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(r.body.data);
    ck_assert_msg(strstr(r.body.data, "{\"status\":200,\"result\":{\"data\""),
                  "no result line: %.300s", r.body.data);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

/* Loop: 0 plain, 1 streaming. The client gives up while the first Klaviyo call of a
 * list-health is held by the simulator; the service must abandon the call before the
 * per-list requests, and write nothing back. */
START_TEST(a_client_that_disconnects_cancels_the_work)
{
    struct restd_opts o = { .workers = 1 };
    struct restd      d;
    struct reply      r;
    struct call       c = { .method = "POST", .path = "/v1/tools/klaviyo_get_list_health",
                            .token = TOKEN_A, .body = "{\"account\":\"kiwi\"}",
                            .rid = _i ? "cancel-stream" : "cancel-plain",
                            .accept = _i ? "application/x-ndjson" : NULL };
    json_object      *line;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/lists", 1, 3000);
    c.timeout_ms = 1000;
    call(&d, &c, &r);
    ck_assert_int_eq(r.cc, CURLE_OPERATION_TIMEDOUT);
    reply_free(&r);
    line = access_line_wait(&d, c.rid);
    ck_assert_msg(line != NULL, "no access line for the abandoned call");
    ck_assert(json_object_get_boolean(kmjson_get(line, "client_closed")));
    ck_assert_int_eq((int)kmjson_num(line, "status", 0), 499);
    json_object_put(line);
    ck_assert_int_eq(sim_calls("GET /api/lists/{id}"), 0);
    /* the worker is fine afterwards */
    c.timeout_ms = 0;
    c.rid = NULL;
    c.accept = NULL;
    call(&d, &c, &r);
    assert_ok(&r);
    reply_free(&r);
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

struct slow_call {
    const struct restd *d;
    const char         *path;
    struct reply        r;
    pthread_t           tid;
};

static void *
slow_call_main(void *arg)
{
    struct slow_call *s = arg;

    get(s->d, s->path, TOKEN_A, &s->r);
    return NULL;
}

/* One campaign-performance call (one campaign-values report) started at a set time. */
struct timed_call {
    const struct restd *d;
    char                body[160];
    int64_t             start_at, done_at;   /* now_ms() */
    struct reply        r;
    pthread_t           tid;
};

static void *
timed_call_main(void *arg)
{
    struct timed_call *c = arg;

    nap((int)(c->start_at - now_ms()));
    post(c->d, "/v1/campaigns/performance", c->body, TOKEN_A, &c->r);
    c->done_at = now_ms();
    return NULL;
}

/* Five calls on one account, each needing one report slot of the same bucket (one per 251 ms
 * here: RATE_LIMIT_SCALE plus the transit margin), started 50 ms apart across two workers:
 * all but the first wait for the bucket together, and each slot that frees goes to the one
 * that has waited longest, so they finish in the order they came (LMDB: the workers of one
 * host; Redis: the store that hosts share). */
START_TEST(calls_waiting_for_one_report_bucket_are_answered_in_arrival_order)
{
    enum { N = 5 };
    struct restd_opts o = { .backend = _i, .workers = 2 };
    struct restd      d;
    struct timed_call c[N];
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    t0 = now_ms() + 200;
    for (int i = 0; i < N; i++) {
        memset(&c[i], 0, sizeof(c[i]));
        c[i].d = &d;
        snprintf(c[i].body, sizeof(c[i].body),
                 "{\"account\":\"acme\",\"start_date\":\"2025-%02d-01\","
                 "\"end_date\":\"2025-%02d-28\"}", i + 1, i + 1);
        c[i].start_at = t0 + 50 * i;
        ck_assert_int_eq(pthread_create(&c[i].tid, NULL, timed_call_main, &c[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(c[i].tid, NULL);
        assert_ok(&c[i].r);
    }
    for (int i = 1; i < N; i++)
        ck_assert_msg(c[i].done_at > c[i - 1].done_at,
                      "call %d (started %lld ms after the first) finished at %lld ms, before "
                      "call %d at %lld ms", i, (long long)(c[i].start_at - t0),
                      (long long)(c[i].done_at - t0), i - 1,
                      (long long)(c[i - 1].done_at - t0));
    /* one report each: the order above is the order of their slots */
    ck_assert_int_eq(sim_calls("POST /api/campaign-values-reports"), N);
    for (int i = 0; i < N; i++)
        reply_free(&c[i].r);
    restd_stop(&d);
}
END_TEST

/* Head-of-line blocking: with one service thread and eight calls held by a slow Klaviyo,
 * a call that needs no Klaviyo request is still answered at once (a thread is added for it),
 * and its latency counts from its arrival. */
START_TEST(calls_waiting_on_klaviyo_never_hold_up_the_others)
{
    static const char *const env[] = { "SERVICE_THREADS_MAX=16", NULL };
    static const char *const paths[8] = {
        "/v1/flows?account=acme", "/v1/flows?account=kiwi", "/v1/flows?account=nosms",
        "/v1/flows?account=acme&status=live", "/v1/flows?account=kiwi&status=live",
        "/v1/flows?account=nosms&status=live", "/v1/flows?account=acme&status=draft",
        "/v1/flows?account=kiwi&status=draft",
    };
    struct restd_opts o = { .workers = 1, .threads = 1, .env = env };
    struct restd      d;
    struct reply      r;
    struct slow_call  slow[8];

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/flows", 8, 6000);
    for (int i = 0; i < 8; i++) {
        slow[i].d = &d;
        slow[i].path = paths[i];
        ck_assert_int_eq(pthread_create(&slow[i].tid, NULL, slow_call_main, &slow[i]), 0);
    }
    ck_assert(wait_in_flight(&d, 8));
    get(&d, "/v1/accounts", TOKEN_A, &r);
    assert_ok(&r);
    ck_assert_double_lt(kmjson_num(kmjson_get(r.doc, "metadata"), "latency_ms", 1e9), 2000.0);
    reply_free(&r);
    /* answered while all eight were still waiting on Klaviyo */
    ck_assert_int_eq(health_in_flight(&d), 8);
    for (int i = 0; i < 8; i++) {
        pthread_join(slow[i].tid, NULL);
        assert_ok(&slow[i].r);
        reply_free(&slow[i].r);
    }
    restd_stop(&d);
}
END_TEST

/* One of several concurrent calls, started at t0 + start_ms. */
struct twin_call {
    const struct restd *d;
    struct call         c;
    char                rid[32];
    int64_t             start_at;
    struct reply        r;
    pthread_t           tid;
};

static void *
twin_call_main(void *arg)
{
    struct twin_call *t = arg;

    nap((int)(t->start_at - now_ms()));
    call(t->d, &t->c, &t->r);
    return NULL;
}

/* n list-health calls for kiwi, the i-th to start at t0 + i * spacing_ms, tagged tag-i
 * (twins_go starts them). */
static void
twins_init(struct twin_call *t, int n, const struct restd *d, const char *tag, int64_t t0,
           int spacing_ms)
{
    for (int i = 0; i < n; i++) {
        memset(&t[i], 0, sizeof(t[i]));
        t[i].d = d;
        snprintf(t[i].rid, sizeof(t[i].rid), "%s-%d", tag, i);
        t[i].c.method = "POST";
        t[i].c.path = "/v1/tools/klaviyo_get_list_health";
        t[i].c.token = TOKEN_A;
        t[i].c.body = "{\"account\":\"kiwi\"}";
        t[i].c.rid = t[i].rid;
        t[i].start_at = t0 + (int64_t)i * spacing_ms;
    }
}

static void
twins_go(struct twin_call *t, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_create(&t[i].tid, NULL, twin_call_main, &t[i]), 0);
}

/* Identical calls share one computation. Twelve concurrent calls for an answer not kept yet,
 * whose first Klaviyo request the simulator holds 1.5 s, on a worker with one service thread
 * that may add none and lets two calls wait: one runs, the eleven others wait on the loop for
 * its answer (no thread, no place in the queue: none is refused, where nine were 503 before),
 * each gets the same data with no Klaviyo request of its own, and the access log says shared.
 * A different call meanwhile still gets a place in the queue. */
START_TEST(identical_calls_share_one_computation_without_a_thread_each)
{
    enum { N = 12 };
    static const char *const env[] = { "SERVICE_THREADS_MAX=1", "QUEUE_MAX=2", NULL };
    struct restd_opts o = { .workers = 1, .threads = 1, .env = env };
    struct restd      d;
    struct twin_call  t[N];
    struct reply      other;
    char             *data0 = NULL;
    int               calls0, leaders = 0, klaviyo = 0, shared = 0;

    test_up();
    restd_start(&d, &o);
    calls0 = sim_total_calls();
    sim_delay("/api/lists", 1, 1500);
    twins_init(t, N, &d, "twin", now_ms() + 100, 10);
    twins_go(t, N);
    nap(600);
    get(&d, "/v1/flows?account=nosms", TOKEN_A, &other);
    assert_ok(&other);
    reply_free(&other);
    for (int i = 0; i < N; i++) {
        const char *data;

        pthread_join(t[i].tid, NULL);
        assert_ok(&t[i].r);
        data = kmjson_text(kmjson_get(t[i].r.doc, "data"));
        if (!data0)
            data0 = strdup(data);
        ck_assert_str_eq(data, data0);
        if (klaviyo_calls_of(&t[i].r) > 0) {
            leaders++;
            klaviyo = klaviyo_calls_of(&t[i].r);
        } else {
            ck_assert_int_eq(klaviyo_calls_of(&t[i].r), 0);
        }
    }
    ck_assert_int_eq(leaders, 1);
    /* the leader's Klaviyo requests, and the flows call's */
    ck_assert_int_ge(sim_total_calls() - calls0, klaviyo);
    ck_assert_int_le(sim_total_calls() - calls0, klaviyo + 2);
    for (int i = 0; i < N; i++) {
        json_object *line = access_line_wait(&d, t[i].rid);

        ck_assert_msg(line != NULL, "no access line for %s", t[i].rid);
        shared += json_object_get_boolean(kmjson_get(line, "shared"));
        json_object_put(line);
        reply_free(&t[i].r);
    }
    ck_assert_int_eq(shared, N - 1);
    free(data0);
    restd_stop(&d);
}
END_TEST

/* A call that others follow goes on when its own client leaves: they get its answer (the
 * same call alone is abandoned before its per-list requests: a_client_that_disconnects_...). */
START_TEST(a_call_whose_client_leaves_goes_on_for_the_calls_that_follow_it)
{
    struct restd_opts o = { .workers = 1 };
    struct restd      d;
    struct twin_call  t[4];
    json_object      *line;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/lists", 1, 1500);
    twins_init(t, 4, &d, "left", now_ms() + 100, 100);
    t[0].c.timeout_ms = 600;    /* the first gives up while the others follow it */
    twins_go(t, 4);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i].tid, NULL);
    ck_assert_int_eq(t[0].r.cc, CURLE_OPERATION_TIMEDOUT);
    for (int i = 1; i < 4; i++) {
        assert_ok(&t[i].r);
        ck_assert_int_eq(klaviyo_calls_of(&t[i].r), 0);
    }
    ck_assert_int_gt(sim_calls("GET /api/lists/{id}"), 0);
    ck_assert(log_has(&d, "goes on for the 3 identical call(s) waiting for it"));
    line = access_line_wait(&d, t[0].rid);
    ck_assert_msg(line != NULL, "no access line for the call that left");
    ck_assert_int_eq((int)kmjson_num(line, "status", 0), 499);
    json_object_put(line);
    for (int i = 0; i < 4; i++)
        reply_free(&t[i].r);
    restd_stop(&d);
}
END_TEST

/* A call that followed one whose deadline ran out (REQUEST_DEADLINE_SECONDS, real time: the
 * simulator holds the first flows request 4 s against a 2 s deadline) runs on its own when
 * that one fails: its deadline comes a second later, and its own Klaviyo request is answered. */
START_TEST(a_call_following_one_past_its_deadline_runs_on_its_own)
{
    static const char *const env[] = { "REQUEST_DEADLINE_SECONDS=2", NULL };
    struct restd_opts o = { .workers = 1, .env = env };
    struct restd      d;
    struct twin_call  t[2];
    json_object      *line;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/flows", 1, 4000);
    twins_init(t, 2, &d, "late", now_ms() + 100, 1000);
    for (int i = 0; i < 2; i++) {
        /* one Klaviyo request: a call the 2 s deadline leaves room for */
        t[i].c.method = "GET";
        t[i].c.path = "/v1/flows?account=kiwi";
        t[i].c.body = NULL;
    }
    twins_go(t, 2);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i].tid, NULL);
    ck_assert_int_eq(t[0].r.status, 504);
    ck_assert_str_eq(kmjson_str(kmjson_get(t[0].r.doc, "error"), "code"), "UPSTREAM_TIMEOUT");
    assert_ok(&t[1].r);
    ck_assert_int_gt(klaviyo_calls_of(&t[1].r), 0);
    line = access_line_wait(&d, t[1].rid);
    ck_assert_msg(line != NULL, "no access line for the follower");
    ck_assert(!json_object_get_boolean(kmjson_get(line, "shared")));
    json_object_put(line);
    for (int i = 0; i < 2; i++)
        reply_free(&t[i].r);
    restd_stop(&d);
}
END_TEST

/* A bounded queue: with every thread busy and QUEUE_MAX calls waiting, the next call is
 * refused at once with 503 and Retry-After, and the waiting ones still finish. */
START_TEST(a_full_queue_is_refused_at_once_with_retry_after)
{
    static const char *const env[] = { "SERVICE_THREADS_MAX=1", "QUEUE_MAX=1", NULL };
    struct restd_opts o = { .workers = 1, .threads = 1, .env = env };
    struct restd      d;
    struct reply      r;
    struct slow_call  a = { .path = "/v1/flows?account=acme" };
    struct slow_call  b = { .path = "/v1/flows?account=kiwi" };
    int64_t           t0;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/flows", 2, 4000);
    a.d = b.d = &d;
    ck_assert_int_eq(pthread_create(&a.tid, NULL, slow_call_main, &a), 0);
    ck_assert(wait_in_flight(&d, 1));
    ck_assert_int_eq(pthread_create(&b.tid, NULL, slow_call_main, &b), 0);
    ck_assert(wait_in_flight(&d, 2));
    t0 = now_ms();
    get(&d, "/v1/flows?account=nosms", TOKEN_A, &r);
    ck_assert_int_lt(now_ms() - t0, 2000);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq(kmjson_str(kmjson_get(r.doc, "error"), "code"), "SERVICE_UNAVAILABLE");
    ck_assert_ptr_nonnull(strstr(kmjson_str(kmjson_get(r.doc, "error"), "message"),
                                 "QUEUE_MAX"));
    ck_assert_str_eq(r.retry_after, "1");
    reply_free(&r);
    /* the accounts list needs no thread (the configuration answers it, on the loop): even
     * now it is answered, as a route, as a tool call, streamed, and refused the same way */
    get(&d, "/v1/accounts", TOKEN_A, &r);
    assert_ok(&r);
    ck_assert_int_eq((int)json_object_array_length(kmjson_get(kmjson_get(r.doc, "data"),
                                                              "accounts")), 3);
    ck_assert_ptr_null(kmjson_get(kmjson_get(r.doc, "metadata"), "klaviyo_calls"));
    reply_free(&r);
    {
        struct call c = { .method = "POST", .path = "/v1/tools/klaviyo_list_accounts",
                          .body = "{}", .token = TOKEN_A, .accept = "application/x-ndjson" };

        call(&d, &c, &r);
        ck_assert_int_eq(r.status, 200);
        ck_assert_str_eq(r.ctype, "application/x-ndjson");
        ck_assert_ptr_nonnull(r.doc);           /* one line: the result */
        ck_assert_int_eq((int)kmjson_num(r.doc, "status", 0), 200);
        ck_assert_ptr_nonnull(kmjson_get(kmjson_get(kmjson_get(r.doc, "result"), "data"),
                                         "accounts"));
        reply_free(&r);
        c.accept = NULL;
        c.body = "{\"surprise\":1}";
        call(&d, &c, &r);
        assert_error(&r, 400, "INVALID_ARGUMENT");
        reply_free(&r);
    }
    pthread_join(a.tid, NULL);
    pthread_join(b.tid, NULL);
    assert_ok(&a.r);
    assert_ok(&b.r);
    reply_free(&a.r);
    reply_free(&b.r);
    restd_stop(&d);
}
END_TEST

START_TEST(a_slow_report_does_not_block_health_or_a_cache_hit)
{
    struct restd_opts o = { .workers = 1, .threads = 2 };
    struct restd      d;
    struct reply      r;
    struct slow_call  slow = { .path = "/v1/flows?account=acme" };

    test_up();
    restd_start(&d, &o);
    /* warm the cache for kiwi's flows */
    get(&d, "/v1/flows?account=kiwi", TOKEN_A, &r);
    assert_ok(&r);
    reply_free(&r);
    sim_delay("/api/flows", 1, 8000);
    slow.d = &d;
    ck_assert_int_eq(pthread_create(&slow.tid, NULL, slow_call_main, &slow), 0);
    ck_assert(wait_in_flight(&d, 1));
    /* while it is held: health answers, and so does a cached call on the same worker */
    get(&d, "/health", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq((int)kmjson_num(r.doc, "in_flight", -1), 1);
    reply_free(&r);
    get(&d, "/v1/flows?account=kiwi", TOKEN_A, &r);
    assert_ok(&r);
    ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1), 0);
    reply_free(&r);
    /* ...and the slow one was still in flight all along */
    ck_assert_int_eq(health_in_flight(&d), 1);
    pthread_join(slow.tid, NULL);
    assert_ok(&slow.r);
    reply_free(&slow.r);
    restd_stop(&d);
}
END_TEST

/* === the process ===================================================================== */

START_TEST(the_socket_is_0600_in_a_0700_directory_and_the_pid_file_is_kept)
{
    struct restd_opts o = { 0 };
    struct restd      d;
    struct stat       st;
    char              dir[700], *pidtext;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(lstat(d.sock, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    snprintf(dir, sizeof(dir), "%s/run", d.dir);
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    pidtext = slurp(d.pidfile);
    ck_assert_int_eq(atoi(pidtext), (int)d.pid);
    free(pidtext);
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
    /* a clean stop removes both */
    ck_assert_int_ne(access(d.sock, F_OK), 0);
    ck_assert_int_ne(access(d.pidfile, F_OK), 0);
}
END_TEST

START_TEST(a_stale_socket_file_is_replaced_but_a_live_one_is_not)
{
    struct restd_opts  o = { 0 };
    struct restd       d, d2;
    struct reply       r;
    struct sockaddr_un sa;
    int                fd;
    char               run[700];
    struct call        c = { .method = "GET", .path = "/health", .socket = 1 };

    test_up();
    restd_start(&d, &o);
    restd_stop(&d);
    /* leave a socket file nobody listens on where the next restd wants its socket */
    snprintf(run, sizeof(run), "%s/run", d.dir);
    mkdir(run, 0700);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    km_strlcpy(sa.sun_path, d.sock, sizeof(sa.sun_path));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    ck_assert_int_eq(access(d.sock, F_OK), 0);
    {
        char sock[700];

        km_strlcpy(sock, d.sock, sizeof(sock));
        o.sock = sock;
        restd_start(&d2, &o);
        call(&d2, &c, &r);
        ck_assert_int_eq(r.status, 200);
        reply_free(&r);
        ck_assert(log_has(&d2, "stale_socket_removed"));

        /* a third one on the same, live socket refuses to start and leaves it alone */
        o.no_wait = 1;
        restd_start(&d, &o);
        ck_assert_int_ne(restd_wait(&d), -1);
        ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 1);
        ck_assert(log_has(&d, "another service is listening"));
        ck_assert(log_has(&d, "set both REST_PORT and KLAVIYO_MCP_SOCKET"));
        call(&d2, &c, &r);
        ck_assert_int_eq(r.status, 200);
        reply_free(&r);
    }
    restd_stop(&d2);
    ck_assert(WIFEXITED(d2.status) && WEXITSTATUS(d2.status) == 0);
}
END_TEST

START_TEST(a_configuration_error_exits_78)
{
    static const char *const bad_workers[] = { "WORKERS=0", NULL };
    static const char *const bad_accounts[] = { "ACCOUNTS_FILE=/nonexistent/accounts.toml",
                                                NULL };
    static const char *const check[] = { "--check-config", NULL };
    struct restd_opts o = { .no_wait = 1 };
    struct restd      d;

    test_up();
    o.env = bad_workers;
    restd_start(&d, &o);
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 78);
    ck_assert(log_has(&d, "CONFIG_ERROR"));
    ck_assert(log_has(&d, "WORKERS"));

    o.env = bad_accounts;
    restd_start(&d, &o);
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 78);

    /* --check-config: 0 for a good configuration, 78 for a bad one, and nothing served */
    o.args = check;
    o.env = NULL;
    restd_start(&d, &o);
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
    ck_assert_int_eq(log_count(&d, "worker_started"), 0);
    o.env = bad_workers;
    restd_start(&d, &o);
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 78);
}
END_TEST

START_TEST(with_tcp_and_no_credential_it_refuses_to_start)
{
    struct restd_opts o = { .no_tokens = 1, .no_wait = 1 };
    struct restd      d;
    char             *text;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 78);
    text = slurp(d.log);
    ck_assert_ptr_nonnull(strstr(text, "no REST credential configured"));
    ck_assert_int_eq(count_events(text, "worker_started"), 0);
    free(text);
    /* REST_PORT=0 turns TCP off: then no credential is needed */
    o.no_tcp = 1;
    o.no_wait = 0;
    restd_start(&d, &o);
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

/* === supervision ====================================================================== */

struct loader {
    const struct restd *d;
    const char         *token;
    int                 with_health;   /* attribute failures to workers through /health */
    atomic_int         *stop;
    _Atomic pid_t      *killed;        /* the worker killed on purpose, 0 before */
    pthread_t           tid;
    atomic_int          ok;            /* read by the test thread while the load runs */
    int                 failed, unexplained, ok_after_kill;
    char                why[256];
};

static void *
loader_main(void *arg)
{
    struct loader *l = arg;
    CURL          *h = curl_easy_init();
    pid_t          conn_pid = 0;     /* the worker behind the current connection, 0 unknown */

    while (!atomic_load(l->stop)) {
        struct call  hc = { .method = "GET", .path = "/health" };
        struct call  c = { .method = "GET", .path = "/v1/accounts", .token = l->token };
        struct reply r;

        for (int step = 0; step < 2; step++) {
            if (step == 0 && !l->with_health)
                continue;
            call_on(h, l->d, step == 0 ? &hc : &c, &r);
            if (r.connects > 0)
                conn_pid = 0;
            if (r.status == 200) {
                atomic_fetch_add(&l->ok, 1);
                if (atomic_load(l->killed))
                    l->ok_after_kill++;
                if (step == 0)
                    conn_pid = (pid_t)kmjson_num(r.doc, "pid", 0);
            } else {
                pid_t k = atomic_load(l->killed);
                l->failed++;
                /* allowed only on a connection that the killed worker held */
                if (!k || (conn_pid != 0 && conn_pid != k)) {
                    l->unexplained++;
                    snprintf(l->why, sizeof(l->why), "status %ld curl %d on worker %d: %.100s",
                             r.status, (int)r.cc, (int)conn_pid,
                             r.body.data ? r.body.data : "");
                }
                conn_pid = 0;
            }
            reply_free(&r);
        }
    }
    curl_easy_cleanup(h);
    return NULL;
}

#define NLOADERS 4

static void
load_start(struct loader *ls, const struct restd *d, const char *token, int with_health,
           atomic_int *stop, _Atomic pid_t *killed)
{
    for (int i = 0; i < NLOADERS; i++) {
        memset(&ls[i], 0, sizeof(ls[i]));
        ls[i].d = d;
        ls[i].token = token;
        ls[i].with_health = with_health;
        ls[i].stop = stop;
        ls[i].killed = killed;
        ck_assert_int_eq(pthread_create(&ls[i].tid, NULL, loader_main, &ls[i]), 0);
    }
}

static int
load_total_ok(struct loader *ls)
{
    int n = 0;

    for (int i = 0; i < NLOADERS; i++)
        n += atomic_load(&ls[i].ok);
    return n;
}

static void
load_stop(struct loader *ls, atomic_int *stop)
{
    atomic_store(stop, 1);
    for (int i = 0; i < NLOADERS; i++)
        pthread_join(ls[i].tid, NULL);
}

START_TEST(a_worker_killed_with_sigkill_during_a_load_is_respawned)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    struct loader     ls[NLOADERS];
    atomic_int        stop = 0;
    _Atomic pid_t     killed = 0;
    pid_t             before[8], after[8];
    int               nb, na, fresh = 0, target_ok;

    test_up();
    restd_start(&d, &o);
    nb = children_of(d.pid, before, 8);
    ck_assert_int_eq(nb, 2);
    load_start(ls, &d, TOKEN_A, 1, &stop, &killed);
    /* let the load run a little, then kill one worker in the middle of it */
    while (load_total_ok(ls) < 40)
        nap(10);
    atomic_store(&killed, before[0]);
    ck_assert_int_eq(kill(before[0], SIGKILL), 0);
    /* a new worker appears */
    {
        int64_t until = now_ms() + WAIT_MS;
        while (now_ms() < until && !fresh) {
            na = children_of(d.pid, after, 8);
            for (int i = 0; i < na; i++)
                fresh |= after[i] != before[0] && after[i] != before[1];
            if (!fresh)
                nap(20);
        }
    }
    ck_assert_msg(fresh, "no worker replaced %d", (int)before[0]);
    /* and the load keeps being served */
    target_ok = load_total_ok(ls) + 40;
    {
        int64_t until = now_ms() + WAIT_MS;
        while (now_ms() < until && load_total_ok(ls) < target_ok)
            nap(10);
    }
    load_stop(ls, &stop);
    for (int i = 0; i < NLOADERS; i++) {
        ck_assert_msg(ls[i].unexplained == 0, "loader %d: a request failed on a live worker: %s",
                      i, ls[i].why);
        ck_assert_int_le(ls[i].failed, 2);
        ck_assert_int_gt(ls[i].ok_after_kill, 0);
    }
    ck_assert_int_eq(children_of(d.pid, after, 8), 2);
    {
        char *text = slurp(d.log);
        char  pat[64];
        snprintf(pat, sizeof(pat), "\"signal\":9,\"worker_pid\":%d", (int)before[0]);
        ck_assert_msg(strstr(text, pat), "no worker_exited line for %d", (int)before[0]);
        free(text);
    }
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

/* A keep-alive client that never retries (like wrk): it writes its next request a few
 * milliseconds after an answer is complete, and counts a request lost when the connection
 * ends before its answer. (curl would hide such a loss: it resends on a reused connection that died.) */
struct kaclient {
    const struct restd *d;
    atomic_int         *stop;
    pthread_t           tid;
    int                 ok, lost, refused;
    char                why[200];
};

static void *
kaclient_main(void *arg)
{
    static const char req[] = "GET /v1/accounts HTTP/1.1\r\nHost: x\r\nX-API-Key: " TOKEN_A
                              "\r\n\r\n";
    struct kaclient *c = arg;
    int              fd = -1;
    char             buf[16384];

    while (!atomic_load(c->stop)) {
        size_t      got = 0;
        const char *end = NULL, *cl;

        if (fd < 0) {
            struct sockaddr_in a;

            fd = socket(AF_INET, SOCK_STREAM, 0);
            memset(&a, 0, sizeof(a));
            a.sin_family = AF_INET;
            a.sin_port = htons((uint16_t)c->d->port);
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                c->refused++;
                close(fd);
                fd = -1;
                nap(5);
                continue;
            }
        }
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
            c->lost++;
            snprintf(c->why, sizeof(c->why), "send failed: %s", strerror(errno));
            close(fd);
            fd = -1;
            continue;
        }
        for (;;) {
            ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            end = strstr(buf, "\r\n\r\n");
            cl = end ? strcasestr(buf, "Content-Length: ") : NULL;
            if (end && cl && got >= (size_t)(end + 4 - buf) + (size_t)atoi(cl + 16))
                break;
            end = NULL;
        }
        if (!end) {
            c->lost++;
            snprintf(c->why, sizeof(c->why), "the connection ended before the answer (%zu "
                     "bytes)", got);
            close(fd);
            fd = -1;
            continue;
        }
        c->ok++;
        if (strcasestr(buf, "Connection: close")) {
            close(fd);
            fd = -1;
        }
        /* a client thinks a little between requests: its connection sits idle, kept
         * alive, when a drain begins */
        nap(1 + c->ok % 5);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* Reloads (SIGHUP) under keep-alive load: a request that has arrived is answered (with
 * Connection: close by a draining worker), none is lost. */
START_TEST(sighup_under_keep_alive_load_loses_no_request)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    struct kaclient   kc[16];
    atomic_int        stop = 0;
    int               ok = 0;

    test_up();
    restd_start(&d, &o);
    for (int i = 0; i < 16; i++) {
        memset(&kc[i], 0, sizeof(kc[i]));
        kc[i].d = &d;
        kc[i].stop = &stop;
        ck_assert_int_eq(pthread_create(&kc[i].tid, NULL, kaclient_main, &kc[i]), 0);
    }
    nap(500);
    for (int k = 1; k <= 2; k++) {
        ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
        ck_assert(log_wait(&d, "reload_done", k));
        nap(700);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 16; i++) {
        pthread_join(kc[i].tid, NULL);
        ck_assert_msg(kc[i].lost == 0, "client %d lost %d request(s): %s", i, kc[i].lost,
                      kc[i].why);
        ck_assert_int_eq(kc[i].refused, 0);
        ok += kc[i].ok;
    }
    ck_assert_int_gt(ok, 100);
    restd_stop(&d);
}
END_TEST

START_TEST(a_worker_that_keeps_dying_is_respawned_with_a_growing_delay)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    pid_t             before[8], now[8];
    char              file[800], aside[800];
    int               n = 0;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(children_of(d.pid, before, 8), 2);
    /* break the store for workers yet to start (the running ones keep their open file) */
    snprintf(file, sizeof(file), "%s/store/store.mdb", d.dir);
    snprintf(aside, sizeof(aside), "%s/store/store.mdb.aside", d.dir);
    ck_assert_int_eq(rename(file, aside), 0);
    ck_assert_int_eq(mkdir(file, 0700), 0);
    ck_assert_int_eq(kill(before[0], SIGKILL), 0);
    /* every replacement dies at start: the master backs off, longer each time */
    ck_assert_msg(log_wait(&d, "worker_backoff", 2), "no backoff logged");
    ck_assert_int_ge(log_count(&d, "worker_start_failed"), 2);
    ck_assert(log_has(&d, "respawning in 250 ms"));
    ck_assert(log_has(&d, "respawning in 500 ms"));
    /* mend the store: the next replacement serves */
    ck_assert_int_eq(rmdir(file), 0);
    ck_assert_int_eq(rename(aside, file), 0);
    {
        int64_t until = now_ms() + WAIT_MS;
        while (now_ms() < until) {
            n = children_of(d.pid, now, 8);
            if (n == 2 && log_count(&d, "worker_started") >= 3)
                break;
            nap(50);
        }
    }
    ck_assert_int_eq(n, 2);
    ck_assert_int_ge(log_count(&d, "worker_started"), 3);
    {
        struct reply r;
        get(&d, "/v1/accounts", TOKEN_A, &r);
        assert_ok(&r);
        reply_free(&r);
    }
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

/* A configuration only a worker can find wrong: STORE_DIR turns into a plain file after the
 * master checked it at start. A worker that meets it exits with fatal code 78 and is not
 * respawned (each says so once); with every worker fatal the master stops and exits 78. */
START_TEST(a_fatal_worker_is_not_respawned_and_the_master_exits_78)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    pid_t             before[8];
    char              dir[800], aside[800];
    int64_t           t0, took;

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(children_of(d.pid, before, 8), 2);
    snprintf(dir, sizeof(dir), "%s/store", d.dir);
    snprintf(aside, sizeof(aside), "%s/store.aside", d.dir);
    ck_assert_int_eq(rename(dir, aside), 0);
    write_file(dir, "not a directory\n", 0600);
    t0 = now_ms();
    ck_assert_int_eq(kill(before[0], SIGKILL), 0);
    ck_assert_int_eq(kill(before[1], SIGKILL), 0);
    ck_assert_msg(restd_wait(&d) != -1, "the master did not stop");
    took = now_ms() - t0;
    ck_assert_msg(took < 5000, "the master took %lld ms to stop", (long long)took);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 78);
    /* one replacement each, which failed for good: no backoff, no further respawn */
    ck_assert_int_eq(log_count(&d, "worker_start_failed"), 2);
    ck_assert_int_eq(log_count(&d, "worker_fatal"), 2);
    ck_assert_int_eq(log_count(&d, "worker_backoff"), 0);
    ck_assert_int_eq(log_count(&d, "worker_started"), 2);
    ck_assert(log_has(&d, "exited with fatal code 78 (CONFIG_ERROR) and cannot be respawned"));
    ck_assert(log_has(&d, "is not a directory"));
    /* the master's own line, once, naming the cause */
    ck_assert_int_eq(log_count(&d, "master_fatal"), 1);
    ck_assert(log_has(&d, "every worker exited with fatal code 78"));
    ck_assert_int_eq(access(d.sock, F_OK), -1);
    restd_stop(&d);
}
END_TEST

START_TEST(a_worker_whose_heartbeat_stops_is_killed_and_replaced)
{
    struct restd_opts o = { .workers = 2, .worker_timeout_s = 2 };
    struct restd      d;
    pid_t             before[8], after[8];
    int               na = 0, gone = 0;
    char             *text, pat[64];

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(children_of(d.pid, before, 8), 2);
    /* a stopped process writes no heartbeat: it looks exactly like a blocked loop */
    ck_assert_int_eq(kill(before[1], SIGSTOP), 0);
    {
        int64_t until = now_ms() + WAIT_MS;
        while (now_ms() < until) {
            na = children_of(d.pid, after, 8);
            gone = 1;
            for (int i = 0; i < na; i++)
                gone &= after[i] != before[1];
            if (gone && na == 2)
                break;
            nap(50);
        }
    }
    ck_assert_msg(gone && na == 2, "the stopped worker %d was not replaced", (int)before[1]);
    text = slurp(d.log);
    snprintf(pat, sizeof(pat), "\"event\":\"worker_timeout\"");
    ck_assert_ptr_nonnull(strstr(text, pat));
    snprintf(pat, sizeof(pat), "\"worker_pid\":%d", (int)before[1]);
    ck_assert_ptr_nonnull(strstr(text, pat));
    free(text);
    /* the service answers on */
    {
        struct reply r;
        get(&d, "/v1/accounts", TOKEN_A, &r);
        assert_ok(&r);
        reply_free(&r);
    }
    restd_stop(&d);
}
END_TEST

struct flows_call {
    const struct restd *d;
    char                path[128];
    struct reply        r;
    pthread_t           tid;
};

static void *
flows_call_main(void *arg)
{
    struct flows_call *f = arg;

    get(f->d, f->path, TOKEN_A, &f->r);
    return NULL;
}

START_TEST(sigterm_during_a_load_lets_in_flight_requests_finish_and_exits_0)
{
    static const char *const paths[] = {
        "/v1/flows?account=acme&status=live", "/v1/flows?account=acme&status=draft",
        "/v1/flows?account=kiwi&status=live", "/v1/flows?account=nosms&status=manual",
    };
    struct restd_opts o = { .workers = 1, .threads = 4, .grace_s = 30 };
    struct restd      d;
    struct flows_call fc[4];
    struct reply      r;

    test_up();
    restd_start(&d, &o);
    sim_delay("/api/flows", 4, 2500);
    for (int i = 0; i < 4; i++) {
        memset(&fc[i], 0, sizeof(fc[i]));
        fc[i].d = &d;
        km_strlcpy(fc[i].path, paths[i], sizeof(fc[i].path));
        ck_assert_int_eq(pthread_create(&fc[i].tid, NULL, flows_call_main, &fc[i]), 0);
    }
    ck_assert(wait_in_flight(&d, 4));
    ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(fc[i].tid, NULL);
        assert_ok(&fc[i].r);
        ck_assert(json_object_is_type(kmjson_get(kmjson_get(fc[i].r.doc, "data"), "flows"),
                                      json_type_array));
        reply_free(&fc[i].r);
    }
    ck_assert_int_ne(restd_wait(&d), -1);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
    /* nothing listens any more */
    get(&d, "/health", NULL, &r);
    ck_assert_int_eq(r.status, 0);
    reply_free(&r);
    ck_assert_int_ne(access(d.sock, F_OK), 0);
}
END_TEST

START_TEST(sighup_dropping_a_token_revokes_it_at_once_without_failing_a_request)
{
    struct restd_opts o = { .workers = 2, .tokens = TOKEN_A "," TOKEN_B };
    struct restd      d;
    struct loader     ls[NLOADERS];
    atomic_int        stop = 0;
    _Atomic pid_t     none = 0;
    struct reply      r;
    int               ok_at_reload;

    test_up();
    restd_start(&d, &o);
    get(&d, "/v1/accounts", TOKEN_B, &r);
    assert_ok(&r);
    reply_free(&r);
    load_start(ls, &d, TOKEN_A, 0, &stop, &none);
    while (load_total_ok(ls) < 40)
        nap(10);
    write_dotenv(&d, "REST_API_TOKENS=" TOKEN_A "\n");
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert_msg(log_wait(&d, "reload_done", 1), "no reload_done");
    /* at once: the very next request with the dropped token is refused... */
    get(&d, "/v1/accounts", TOKEN_B, &r);
    assert_error(&r, 403, "INVALID_API_KEY");
    reply_free(&r);
    /* ...the kept token works, and so does the socket */
    get(&d, "/v1/accounts", TOKEN_A, &r);
    assert_ok(&r);
    reply_free(&r);
    {
        struct call c = { .method = "GET", .path = "/v1/accounts", .socket = 1 };
        call(&d, &c, &r);
        assert_ok(&r);
        reply_free(&r);
    }
    /* the load went on through the reload, and until the old generation is gone */
    ok_at_reload = load_total_ok(ls);
    ck_assert(log_wait(&d, "worker_exited", 2));
    while (load_total_ok(ls) < ok_at_reload + 40)
        nap(10);
    load_stop(ls, &stop);
    for (int i = 0; i < NLOADERS; i++)
        ck_assert_msg(ls[i].failed == 0, "loader %d: %d request(s) failed during the reload",
                      i, ls[i].failed);
    ck_assert_int_eq(children_of(d.pid, (pid_t[8]){ 0 }, 8), 2);
    restd_stop(&d);
    ck_assert(WIFEXITED(d.status) && WEXITSTATUS(d.status) == 0);
}
END_TEST

START_TEST(a_bad_configuration_on_sighup_keeps_the_running_generation)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    struct reply      r;
    pid_t             before[8], after[8];

    test_up();
    restd_start(&d, &o);
    ck_assert_int_eq(children_of(d.pid, before, 8), 2);
    write_file(d.envfile, "REST_API_TOKENS=" TOKEN_A "\nthis line is not an assignment\n",
               0600);
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert(log_wait(&d, "reload_failed", 1));
    /* the same workers, the same tokens */
    ck_assert_int_eq(children_of(d.pid, after, 8), 2);
    ck_assert((after[0] == before[0] && after[1] == before[1]) ||
              (after[0] == before[1] && after[1] == before[0]));
    get(&d, "/v1/accounts", TOKEN_B, &r);
    assert_ok(&r);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

/* === metrics (issue 14) ================================================================== */

static json_object *
scrape(const struct restd *d)
{
    struct reply r;
    json_object *series = NULL;
    char         why[256];

    get(d, "/metrics", TOKEN_A, &r);
    ck_assert_msg(r.status == 200, "GET /metrics answered %ld", r.status);
    ck_assert_msg(strncmp(r.ctype, "text/plain; version=0.0.4", 25) == 0, "content type %s",
                  r.ctype);
    ck_assert_msg(promtext_parse(r.body.data ? r.body.data : "", &series, why, sizeof(why)) == 0,
                  "%s\n%s", why, r.body.data ? r.body.data : "");
    reply_free(&r);
    return series;
}

static double
delta(json_object *before, json_object *after, const char *key)
{
    return promtext_value(after, key) - promtext_value(before, key);
}

#define REQS(route, status) \
    "klaviyo_mcp_http_requests_total{route=\"" route "\",status=\"" status "\"}"

START_TEST(metrics_count_known_traffic_across_workers)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    struct reply      r;
    json_object      *before, *after;
    const char       *body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
                             "\"end_date\":\"2025-02-28\"}";
    /* the same Klaviyo requests, another answer (its first row only) */
    const char       *body_top = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
                                 "\"end_date\":\"2025-02-28\",\"limit\":1}";
    int               calls0, calls_cold, reports, hits, cold_hits;

    test_up();
    restd_start(&d, &o);
    /* token-protected like every REST route */
    get(&d, "/metrics", NULL, &r);
    assert_error(&r, 401, "MISSING_API_KEY");
    reply_free(&r);
    get(&d, "/metrics", "wrong-token", &r);
    assert_error(&r, 403, "INVALID_API_KEY");
    reply_free(&r);

    before = scrape(&d);
    ck_assert_double_eq(promtext_value(before, "klaviyo_mcp_workers_alive"), 2);
    calls0 = sim_total_calls();
    /* 20 health checks on fresh connections: both workers take some, the table has them all */
    for (int i = 0; i < 20; i++) {
        get(&d, "/health", NULL, &r);
        ck_assert_int_eq(r.status, 200);
        reply_free(&r);
    }
    get(&d, "/v1/flows", NULL, &r);                  /* no credential: 401, on its route */
    ck_assert_int_eq(r.status, 401);
    reply_free(&r);
    get(&d, "/no/such/route", TOKEN_A, &r);          /* counted as "other" */
    ck_assert_int_eq(r.status, 404);
    reply_free(&r);
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);   /* cold: Klaviyo calls */
    assert_ok(&r);
    hits = cold_hits = (int)kmjson_num(kmjson_get(r.doc, "metadata"), "cache_hits", -1);
    reply_free(&r);
    calls_cold = sim_total_calls() - calls0;
    ck_assert_int_gt(calls_cold, 0);
    post(&d, "/v1/campaigns/performance", body_top, TOKEN_A, &r);   /* warm: the cache */
    assert_ok(&r);
    hits += (int)kmjson_num(kmjson_get(r.doc, "metadata"), "cache_hits", -1);
    reply_free(&r);
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);   /* again: the kept answer */
    assert_ok(&r);
    /* answered from the answer cache: no Klaviyo response looked up again; its cache_hits
     * count the responses the kept answer was built from */
    ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "cache_hits", -1),
                     calls_cold + cold_hits);
    reply_free(&r);
    ck_assert_int_eq(sim_total_calls() - calls0, calls_cold);
    after = scrape(&d);

    ck_assert_double_eq(delta(before, after, REQS("/health", "200")), 20);
    ck_assert_double_eq(delta(before, after, REQS("/v1/flows", "401")), 1);
    ck_assert_double_eq(delta(before, after, REQS("other", "404")), 1);
    ck_assert_double_eq(delta(before, after, REQS("/v1/campaigns/performance", "200")), 3);
    ck_assert_double_eq(delta(before, after, REQS("/metrics", "200")), 1);   /* `before` */
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_http_request_duration_seconds_count"
                                             "{route=\"/health\"}"), 20);
    /* every request the simulator saw was counted, by tier, and was a cache miss; every cache
     * hit the two answers report in their metadata was counted */
    reports = sim_calls("POST /api/campaign-values-reports");
    ck_assert_int_gt(reports, 0);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_klaviyo_requests_total"
                                             "{status=\"200\",tier=\"reports\"}"), reports);
    {
        double total = 0;
        json_object_object_foreach(after, key, val) {
            if (strncmp(key, "klaviyo_mcp_klaviyo_requests_total{", 35) == 0)
                total += json_object_get_double(val) - promtext_value(before, key);
        }
        ck_assert_double_eq(total, calls_cold);
    }
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_cache_lookups_total{result=\"miss\"}"),
                        calls_cold);
    ck_assert_int_gt(hits, 0);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_cache_lookups_total{result=\"hit\"}"),
                        hits);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_answer_cache_lookups_total"
                                             "{result=\"miss\"}"), 2);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_answer_cache_lookups_total"
                                             "{result=\"hit\"}"), 1);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_klaviyo_throttled_total"
                                             "{tier=\"reports\"}"), 0);
    /* the reports budget: 225 a day, less what this store has spent */
    ck_assert_double_eq(promtext_value(after, "klaviyo_mcp_report_budget_remaining"
                                              "{account=\"kiwi\"}"), 225 - reports);
    ck_assert_double_eq(promtext_value(after, "klaviyo_mcp_workers_alive"), 2);
    json_object_put(before);
    json_object_put(after);
    restd_stop(&d);
}
END_TEST

/* A kept answer asked for in its last CACHE_REFRESH_AHEAD_SECONDS is computed again in the
 * background (once, whichever worker saw it: a marker in the store), so a caller after its
 * first expiry is still answered from the answer cache. _i: LMDB, Redis, or LMDB with
 * refreshing off (the control: the same caller then waits for a new answer). */
START_TEST(a_hot_answer_is_computed_again_before_it_expires)
{
    static const char *const on[] = { "CACHE_TTL_SECONDS=6", "CACHE_REFRESH_AHEAD_SECONDS=2",
                                      NULL };
    static const char *const off[] = { "CACHE_TTL_SECONDS=6", "CACHE_REFRESH_AHEAD_SECONDS=0",
                                       NULL };
    int               refresh = _i != 2;
    struct restd_opts o = { .workers = 2, .backend = _i == BE_REDIS ? BE_REDIS : BE_LMDB,
                            .env = refresh ? on : off };
    struct restd      d;
    struct reply      cold, r;
    const char       *body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
                             "\"end_date\":\"2025-02-28\"}";
    json_object      *before, *after, *meta;
    int64_t           t_kept;
    int               calls0, calls_cold, calls_refreshed = 0;

    test_up();
    restd_start(&d, &o);
    before = scrape(&d);
    calls0 = sim_total_calls();
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &cold);
    t_kept = now_ms();                      /* the answer was kept just before: 6 s fresh */
    assert_ok(&cold);
    calls_cold = sim_total_calls() - calls0;
    ck_assert_int_gt(calls_cold, 0);
    /* far from its expiry: answered from the answer cache, nothing refreshed */
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
    assert_ok(&r);
    ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1), 0);
    reply_free(&r);
    ck_assert_int_eq(sim_total_calls() - calls0, calls_cold);
    /* in its last two seconds: still the kept answer, on both workers, a few times */
    while (now_ms() - t_kept < 4300)
        usleep(50 * 1000);
    for (int i = 0; i < 6; i++) {
        post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
        assert_ok(&r);
        ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1),
                         0);
        reply_free(&r);
    }
    if (refresh) {
        /* one refresh, made in the background: the Klaviyo requests again (the account's
         * time zone is known by then), once */
        after = scrape(&d);
        for (int i = 0; i < 100 && delta(before, after, "klaviyo_mcp_answer_cache_refreshes_"
                                                        "total{result=\"kept\"}") < 1; i++) {
            json_object_put(after);
            usleep(50 * 1000);
            after = scrape(&d);
        }
        ck_assert_double_eq(delta(before, after, "klaviyo_mcp_answer_cache_refreshes_total"
                                                 "{result=\"kept\"}"), 1);
        ck_assert_double_eq(delta(before, after, "klaviyo_mcp_answer_cache_refreshes_total"
                                                 "{result=\"failed\"}"), 0);
        json_object_put(after);
        calls_refreshed = sim_total_calls() - calls0 - calls_cold;
        ck_assert_int_gt(calls_refreshed, 0);
    }
    /* past the first answer's expiry (and not yet in the new one's last two seconds) */
    while (now_ms() - t_kept < 6600)
        usleep(50 * 1000);
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
    assert_ok(&r);
    meta = kmjson_get(r.doc, "metadata");
    ck_assert(json_object_equal(kmjson_get(r.doc, "data"), kmjson_get(cold.doc, "data")));
    if (refresh) {
        ck_assert_int_eq((int)kmjson_num(meta, "klaviyo_calls", -1), 0);
        ck_assert_int_eq(sim_total_calls() - calls0, calls_cold + calls_refreshed);
    } else {
        ck_assert_int_gt((int)kmjson_num(meta, "klaviyo_calls", -1), 0);
        after = scrape(&d);
        ck_assert_double_eq(delta(before, after, "klaviyo_mcp_answer_cache_refreshes_total"
                                                 "{result=\"kept\"}"), 0);
        json_object_put(after);
    }
    reply_free(&r);
    reply_free(&cold);
    json_object_put(before);
    restd_stop(&d);
}
END_TEST

/* A refresh that its worker's stop cuts short (a reload) gives its marker back: the next
 * generation makes it before the answer expires (refresh.c asks again a second after finding
 * the marker held). The first refresh's report is held 4 s by
 * the simulator; the reload comes meanwhile. (Kept, the marker would block every worker for
 * the rest of the window, and the answer would expire.) */
START_TEST(a_refresh_cut_short_by_a_reload_is_made_by_the_next_generation)
{
    static const char *const env[] = { "CACHE_TTL_SECONDS=10", "CACHE_REFRESH_AHEAD_SECONDS=5",
                                       NULL };
    struct restd_opts o = { .workers = 2, .env = env };
    struct restd      d;
    struct reply      r;
    const char       *body = "{\"account\":\"kiwi\",\"start_date\":\"2025-02-01\","
                             "\"end_date\":\"2025-02-28\"}";
    int64_t           t_kept;

    test_up();
    restd_start(&d, &o);
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
    t_kept = now_ms();
    assert_ok(&r);
    reply_free(&r);
    while (now_ms() - t_kept < 5300)
        usleep(50 * 1000);
    sim_delay_method("POST", "/api/campaign-values-reports", 1, 4000);
    /* in the window: the hits start a refresh, whose report the simulator holds */
    for (int i = 0; i < 4; i++) {
        post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
        assert_ok(&r);
        ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1),
                         0);
        reply_free(&r);
    }
    usleep(300 * 1000);
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert_msg(log_wait(&d, "reload_done", 1), "no reload_done");
    ck_assert_int_lt(now_ms() - t_kept, 9500);
    /* the new generation: still the kept answer, and a refresh of its own. Callers go on
     * asking, as real ones do: a new worker that asked while the old one still held the
     * marker (a busy machine lets the new generation serve before the old one stops) asks
     * again a second later, once the stopping worker gave it back */
    while (now_ms() - t_kept < 9400) {
        post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
        assert_ok(&r);
        reply_free(&r);
        nap(200);
    }
    /* past the first answer's expiry: the new generation's refresh answers */
    while (now_ms() - t_kept < 10600)
        usleep(50 * 1000);
    post(&d, "/v1/campaigns/performance", body, TOKEN_A, &r);
    assert_ok(&r);
    ck_assert_int_eq((int)kmjson_num(kmjson_get(r.doc, "metadata"), "klaviyo_calls", -1), 0);
    reply_free(&r);
    restd_stop(&d);
}
END_TEST

START_TEST(metrics_count_respawns_and_reloads)
{
    struct restd_opts o = { .workers = 2 };
    struct restd      d;
    json_object      *before, *after;
    pid_t             kids[8];

    test_up();
    restd_start(&d, &o);
    before = scrape(&d);
    ck_assert_int_eq(children_of(d.pid, kids, 8), 2);
    ck_assert_int_eq(kill(kids[0], SIGKILL), 0);
    ck_assert(log_wait(&d, "worker_started", 3));
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    ck_assert(log_wait(&d, "reload_done", 1));
    after = scrape(&d);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_worker_respawns_total"), 1);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_reloads_total{result=\"ok\"}"), 1);
    ck_assert_double_eq(delta(before, after, "klaviyo_mcp_reloads_total{result=\"failed\"}"), 0);
    json_object_put(before);
    json_object_put(after);
    restd_stop(&d);
}
END_TEST

/* === the suite ======================================================================== */

static TCase *
tcase(Suite *s, const char *name, void (*up)(void))
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, up, tc_down);
    tcase_set_timeout(tc, 240);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *
restd_suite(void)
{
    Suite *s = suite_create("restd");
    TCase *tc;

    tc = tcase(s, "routes", tc_up_redis);
    tcase_add_loop_test(tc, every_seed_route_answers_with_an_envelope, BE_LMDB, BE_REDIS + 1);
    tcase_add_loop_test(tc, each_rest_route_returns_the_same_data_as_its_tool_call, BE_LMDB,
                        BE_REDIS + 1);
    tcase_add_loop_test(tc, a_repeated_call_is_answered_from_the_answer_cache_with_the_same_data,
                        BE_LMDB, BE_REDIS + 1);
    tcase_add_loop_test(tc, a_hot_answer_is_computed_again_before_it_expires, 0, 3);
    tcase_add_test(tc, a_refresh_cut_short_by_a_reload_is_made_by_the_next_generation);
    tcase_add_test(tc, a_worker_started_by_a_reload_knows_the_time_zones_in_use);
    tcase_add_test(tc, get_v1_tools_lists_every_tool_with_its_schemas);
    tcase_add_test(tc, the_budget_route_follows_the_rate_windows_and_is_never_a_kept_answer);
    tcase_add_test(tc, query_values_are_coerced_by_the_input_schema);
    tcase_add_test(tc, the_seed_readme_examples_work_verbatim);
    tcase_add_test(tc, the_seed_readme_examples_with_fixed_ids_work_verbatim);
    tcase_add_loop_test(tc, calls_waiting_for_one_report_bucket_are_answered_in_arrival_order,
                        BE_LMDB, BE_REDIS + 1);

    tc = tcase(s, "http", tc_up_plain);
    tcase_add_test(tc, every_error_status_has_an_envelope_and_a_request_id);
    tcase_add_test(tc, a_sane_request_id_is_echoed_and_an_odd_one_replaced);
    tcase_add_test(tc, every_request_is_logged_once_as_json_without_headers);
    tcase_add_test(tc, keep_alive_reuses_one_connection);
    tcase_add_test(tc, the_service_log_lines_of_a_request_carry_its_id);
    tcase_add_test(tc, a_call_over_a_big_document_gives_its_memory_back);
    tcase_add_loop_test(tc, a_client_that_stalls_mid_request_is_disconnected, 0, 2);
    tcase_add_loop_test(tc, the_rest_timeout_cuts_idle_clients_not_long_calls, 0, 2);
    tcase_add_test(tc, head_has_no_body_and_connect_is_refused_and_closed);
    tcase_add_test(tc, parser_edges_are_refused_and_answers_stay_utf8);
    tcase_add_test(tc, running_out_of_descriptors_pauses_accepting_without_spinning);
    tcase_add_test(tc, a_klaviyo_call_keeps_its_descriptors_while_clients_hold_every_connection);
    tcase_add_test(tc, a_request_sent_a_line_at_a_time_is_cut_when_its_time_is_up);

    tc = tcase(s, "auth", tc_up_plain);
    tcase_add_test(tc, bearer_and_x_api_key_tokens_are_both_accepted);
    tcase_add_test(tc, a_missing_credential_is_401_and_a_wrong_one_403);
    tcase_add_test(tc, health_is_open_without_a_token);
    tcase_add_test(tc, the_unix_socket_serves_every_route_without_a_token);
    tcase_add_test(tc, a_socket_only_service_needs_no_credential);

    tc = tcase(s, "streaming", tc_up_plain);
    tcase_add_test(tc, a_tool_call_streams_progress_lines_then_the_result);
    tcase_add_test(tc, a_stream_outlives_the_idle_timeout_while_klaviyo_is_slow);
    tcase_add_loop_test(tc, a_client_that_disconnects_cancels_the_work, 0, 2);
    tcase_add_test(tc, a_slow_report_does_not_block_health_or_a_cache_hit);
    tcase_add_test(tc, calls_waiting_on_klaviyo_never_hold_up_the_others);
    tcase_add_test(tc, identical_calls_share_one_computation_without_a_thread_each);
    tcase_add_test(tc, a_call_whose_client_leaves_goes_on_for_the_calls_that_follow_it);
    tcase_add_test(tc, a_call_following_one_past_its_deadline_runs_on_its_own);
    tcase_add_test(tc, a_full_queue_is_refused_at_once_with_retry_after);

    tc = tcase(s, "process", tc_up_plain);
    tcase_add_test(tc, the_socket_is_0600_in_a_0700_directory_and_the_pid_file_is_kept);
    tcase_add_test(tc, a_stale_socket_file_is_replaced_but_a_live_one_is_not);
    tcase_add_test(tc, a_configuration_error_exits_78);
    tcase_add_test(tc, with_tcp_and_no_credential_it_refuses_to_start);

    tc = tcase(s, "supervision", tc_up_plain);
    tcase_add_test(tc, a_worker_killed_with_sigkill_during_a_load_is_respawned);
    tcase_add_test(tc, sighup_under_keep_alive_load_loses_no_request);
    tcase_add_test(tc, a_worker_that_keeps_dying_is_respawned_with_a_growing_delay);
    tcase_add_test(tc, a_fatal_worker_is_not_respawned_and_the_master_exits_78);
    tcase_add_test(tc, a_worker_whose_heartbeat_stops_is_killed_and_replaced);
    tcase_add_test(tc, sigterm_during_a_load_lets_in_flight_requests_finish_and_exits_0);
    tcase_add_test(tc, sighup_dropping_a_token_revokes_it_at_once_without_failing_a_request);
    tcase_add_test(tc, a_bad_configuration_on_sighup_keeps_the_running_generation);

    tc = tcase(s, "metrics", tc_up_plain);
    tcase_add_test(tc, metrics_count_known_traffic_across_workers);
    tcase_add_test(tc, metrics_count_respawns_and_reloads);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int      failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
    sr = srunner_create(restd_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
