/* master.c — listeners, prefork, supervision, graceful stop and reload (see master.h).
 *
 * Read top to bottom: the listeners, the worker table and forking, the events the loop
 * reacts to (a child exited, a heartbeat went stale, a reload is ready), and the loop itself,
 * which takes its signals synchronously with sigtimedwait.
 */
#include "master.h"
#include "log.h"
#include "metrics.h"
#include "reg.h"
#include "util.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS         64
#define MAX_SLOTS           (2 * MAX_WORKERS + 2)  /* two generations overlap during a reload */
#define LISTEN_BACKLOG      511
#define KILL_AFTER_ABORT_MS 2000    /* SIGABRT, then SIGKILL this much later */
#define STOP_MARGIN_MS      2000    /* past the workers' own grace period: SIGKILL */
#define QUICK_DEATH_MS      2000    /* a worker dying younger than this counts as failing */
#define MAX_BACKOFF_MS      30000
#define RELOAD_MIN_WAIT_MS  30000   /* new workers get at least this long to start serving */

/* A configuration and the workers that run it. id 0 means "none". */
struct gen {
    int         id;
    kmcfg       cfg;
    kmaccounts *accounts;
};

struct kmmaster {
    const struct kmmaster_opts *o;
    pid_t                       pid;
    struct gen                  cur;         /* the generation serving */
    struct gen                  next;        /* started by a reload, not yet serving */
    int64_t                     next_deadline;
    int                         last_gen;
    int                         tcp_fd, unix_fd;
    char                       *sock_path;   /* the socket file we created */
    dev_t                       sock_dev;
    ino_t                       sock_ino;
    int                         pid_written;
    struct kmslot              *slots;       /* MAP_SHARED, MAX_SLOTS entries */
    struct {
        int64_t due_ms;
        int     fails;                        /* consecutive quick deaths */
        int     pending;
        int     fatal;                        /* exited KM_EXIT_CONFIG: never respawned */
    } respawn[MAX_WORKERS];
    int     switching;                        /* reload: waiting for the old to stop accepting */
    int     stopping;
    int     exit_status;                      /* of the master once it has stopped */
    char    fatal_why[200];                   /* the last fatal worker's reason */
};

static void
free_gen(struct gen *g)
{
    kmcfg_free(&g->cfg);
    kmacct_free(g->accounts);
    memset(g, 0, sizeof(*g));
}

int
kmmaster_tcp_enabled(const kmcfg *cfg, const struct kmmaster_opts *o)
{
    return !o->socket_only && cfg->rest_port != 0;
}

/* --- listeners ----------------------------------------------------------------------- */

/* What a second instance on the same machine must change, said once whichever listener
 * collided first: both, or the second collides on the other. */
#define SECOND_INSTANCE "to run a second instance set both REST_PORT and KLAVIYO_MCP_SOCKET " \
    "(e.g. REST_PORT=8081 KLAVIYO_MCP_SOCKET=$XDG_RUNTIME_DIR/klaviyo-mcp-8081.sock)"

static kmcode
open_tcp(const char *host, int port, int *out, kmerr *err)
{
    struct addrinfo  hints, *res = NULL, *ai;
    char             ps[16];
    int              fd = -1, e, saved = 0;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(ps, sizeof(ps), "%d", port);
    e = getaddrinfo(host, ps, &hints, &res);
    if (e != 0)
        return kmerr_set(err, KM_CONFIG_ERROR, "REST_HOST=%.80s cannot be resolved: %s", host,
                         gai_strerror(e));
    for (ai = res; ai; ai = ai->ai_next) {
        int one = 1;

        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    *out = fd;
    if (fd < 0 && saved == EADDRINUSE)
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "cannot listen on %.80s:%d: it is in use "
                         "(another klaviyo-restd?); %s", host, port, SECOND_INSTANCE);
    if (fd < 0)
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "cannot listen on %.80s:%d: %s", host,
                         port, strerror(saved));
    return KM_OK;
}

/* Create the missing parent directories of `path`, mode 0700. */
static kmcode
make_parents(const char *path, kmerr *err)
{
    char *dir = km_xstrdup(path);
    int   rc = KM_OK;

    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            rc = kmerr_set(err, KM_CONFIG_ERROR, "KLAVIYO_MCP_SOCKET: cannot create %.200s: %s",
                           dir, strerror(errno));
            break;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* Open the Unix socket at `path` (0600). A socket file nobody listens on is stale and
 * replaced; one somebody listens on, or a file that is not a socket, is left alone. */
static kmcode
open_unix(struct kmmaster *m, const char *path, kmerr *err)
{
    struct sockaddr_un sa;
    struct stat        st;
    mode_t             old;
    int                fd, r;
    kmcode             rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    km_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    rc = make_parents(path, err);
    if (rc != KM_OK)
        return rc;
    if (lstat(path, &st) == 0) {
        int probe;

        if (!S_ISSOCK(st.st_mode))
            return kmerr_set(err, KM_CONFIG_ERROR,
                             "KLAVIYO_MCP_SOCKET=%.200s exists and is not a socket", path);
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return kmerr_set(err, KM_INTERNAL_ERROR, "socket: %s", strerror(errno));
        r = connect(probe, (struct sockaddr *)&sa, sizeof(sa));
        rc = r == 0 ? KM_SERVICE_UNAVAILABLE : errno == ECONNREFUSED ? KM_OK : KM_INTERNAL_ERROR;
        if (rc == KM_INTERNAL_ERROR)
            kmerr_set(err, rc, "KLAVIYO_MCP_SOCKET=%.200s: %s", path, strerror(errno));
        close(probe);
        if (rc == KM_SERVICE_UNAVAILABLE)
            return kmerr_set(err, rc, "another service is listening on %.100s; %s", path,
                             SECOND_INSTANCE);
        if (rc != KM_OK)
            return rc;
        if (unlink(path) != 0 && errno != ENOENT)
            return kmerr_set(err, KM_INTERNAL_ERROR, "cannot remove the stale socket %.200s: %s",
                             path, strerror(errno));
        kmlogf(KMLOG_INFO, "stale_socket_removed", "replaced the stale socket %s", path);
    } else if (errno != ENOENT) {
        return kmerr_set(err, KM_CONFIG_ERROR, "KLAVIYO_MCP_SOCKET=%.200s: %s", path,
                         strerror(errno));
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return kmerr_set(err, KM_INTERNAL_ERROR, "socket: %s", strerror(errno));
    /* created 0600 from the start: no moment where another user could connect */
    old = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (r != 0 || chmod(path, 0600) != 0 || listen(fd, LISTEN_BACKLOG) != 0 ||
        stat(path, &st) != 0) {
        rc = kmerr_set(err, KM_SERVICE_UNAVAILABLE, "cannot listen on %.200s: %s", path,
                       strerror(errno));
        if (r == 0)
            unlink(path);
        close(fd);
        return rc;
    }
    m->unix_fd = fd;
    m->sock_path = km_xstrdup(path);
    m->sock_dev = st.st_dev;
    m->sock_ino = st.st_ino;
    return KM_OK;
}

/* Remove the socket file if it is still the one we made. */
static void
remove_socket(struct kmmaster *m)
{
    struct stat st;

    if (!m->sock_path)
        return;
    if (stat(m->sock_path, &st) == 0 && st.st_dev == m->sock_dev && st.st_ino == m->sock_ino)
        unlink(m->sock_path);
    free(m->sock_path);
    m->sock_path = NULL;
}

static void
close_listeners(struct kmmaster *m)
{
    if (m->tcp_fd >= 0)
        close(m->tcp_fd);
    if (m->unix_fd >= 0)
        close(m->unix_fd);
    m->tcp_fd = m->unix_fd = -1;
}

static kmcode
write_pid_file(struct kmmaster *m, kmerr *err)
{
    char buf[32];
    int  fd, n;

    if (!m->o->pid_file)
        return KM_OK;
    fd = open(m->o->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return kmerr_set(err, KM_CONFIG_ERROR, "--pid-file %.200s: %s", m->o->pid_file,
                         strerror(errno));
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)m->pid);
    if (write(fd, buf, (size_t)n) != n) {
        close(fd);
        return kmerr_set(err, KM_CONFIG_ERROR, "--pid-file %.200s: %s", m->o->pid_file,
                         strerror(errno));
    }
    close(fd);
    m->pid_written = 1;
    return KM_OK;
}

static void
remove_pid_file(struct kmmaster *m)
{
    char  buf[32] = "";
    FILE *f;

    if (!m->pid_written)
        return;
    f = fopen(m->o->pid_file, "re");
    if (f) {
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        if (strtol(buf, NULL, 10) == (long)m->pid)
            unlink(m->o->pid_file);
    }
    m->pid_written = 0;
}

/* --- workers ------------------------------------------------------------------------- */

static struct kmslot *
slot_of(struct kmmaster *m, pid_t pid)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (m->slots[i].pid == pid)
            return &m->slots[i];
    }
    return NULL;
}

static int
live_workers(const struct kmmaster *m)
{
    int n = 0;

    for (int i = 0; i < MAX_SLOTS; i++)
        n += m->slots[i].pid != 0;
    return n;
}

static void
log_worker(kmlog_level lvl, const char *event, const struct kmslot *s, json_object *f)
{
    if (!f)
        f = json_object_new_object();
    json_object_object_add(f, "worker_pid", json_object_new_int((int)s->pid));
    json_object_object_add(f, "generation", json_object_new_int(s->generation));
    json_object_object_add(f, "index", json_object_new_int(s->index));
    kmlog(lvl, event, f);
}

/* Metrics: worker processes alive, from the slot table. */
static void
count_alive(struct kmmaster *m)
{
    int n = 0;

    for (int i = 0; i < MAX_SLOTS; i++)
        n += m->slots[i].pid != 0;
    kmmet_workers_alive(n);
}

/* Fork worker `index` of generation `g`. */
static kmcode
spawn(struct kmmaster *m, struct gen *g, int index, kmerr *err)
{
    struct kmslot *s = slot_of(m, 0);
    pid_t          pid;

    if (!s)
        return kmerr_set(err, KM_INTERNAL_ERROR, "no free worker slot");
    s->generation = g->id;
    s->index = index;
    s->started_ms = km_now_ms();
    s->abort_ms = 0;
    s->kill_at_ms = 0;
    atomic_store(&s->ready, 0);
    atomic_store(&s->accepting, 0);
    atomic_store(&s->heartbeat_ms, s->started_ms);
    s->fatal[0] = '\0';
    pid = fork();
    if (pid < 0)
        return kmerr_set(err, KM_INTERNAL_ERROR, "fork: %s", strerror(errno));
    if (pid == 0) {
        struct kmworker_args a;

        a.cfg = &g->cfg;
        a.accounts = g->accounts;
        a.tcp_fd = m->tcp_fd;
        a.unix_fd = m->unix_fd;
        a.slot = s;
        a.master = m->pid;
        exit(kmworker_run(&a));
    }
    s->pid = pid;
    count_alive(m);
    return KM_OK;
}

/* Ask a worker to finish what it has and exit; SIGKILL if it is still there after the grace
 * period. */
static void
stop_worker(struct kmmaster *m, struct kmslot *s, const kmcfg *cfg)
{
    if (!s->pid || s->kill_at_ms)
        return;
    kill(s->pid, SIGTERM);
    s->kill_at_ms = km_now_ms() + (int64_t)cfg->graceful_timeout_s * 1000 + STOP_MARGIN_MS;
}

static void
schedule_respawn(struct kmmaster *m, int index, int64_t lived_ms)
{
    int64_t delay = 0;
    int     fails;

    if (index < 0 || index >= MAX_WORKERS)
        return;
    fails = lived_ms < QUICK_DEATH_MS ? m->respawn[index].fails + 1 : 0;
    if (fails >= 2) {
        int shift = fails - 2 < 8 ? fails - 2 : 8;
        delay = (int64_t)250 << shift;
        if (delay > MAX_BACKOFF_MS)
            delay = MAX_BACKOFF_MS;
    }
    m->respawn[index].fails = fails;
    m->respawn[index].pending = 1;
    m->respawn[index].due_ms = km_now_ms() + delay;
    if (delay > 0)
        kmlogf(KMLOG_WARN, "worker_backoff",
               "worker %d keeps dying (%d times in a row); respawning in %lld ms", index, fails,
               (long long)delay);
}

static void
respawn_due(struct kmmaster *m)
{
    int64_t now = km_now_ms();

    for (int i = 0; i < m->cur.cfg.workers && i < MAX_WORKERS; i++) {
        kmerr err = { 0 };

        if (!m->respawn[i].pending || m->respawn[i].due_ms > now)
            continue;
        m->respawn[i].pending = 0;
        if (spawn(m, &m->cur, i, &err) != KM_OK) {
            kmlogf(KMLOG_ERROR, "worker_spawn_failed", "%s", err.msg);
            m->respawn[i].pending = 1;
            m->respawn[i].due_ms = now + 1000;
        } else {
            kmmet_respawn();
        }
        kmerr_clear(&err);
    }
}

static void abort_reload(struct kmmaster *m, const char *why);
static void begin_stop(struct kmmaster *m, int sig);

/* When no worker of the serving generation can be respawned (each exited KM_EXIT_CONFIG) and
 * no reload is on its way to replace them, nothing will ever serve: stop, and exit with the
 * workers' status. */
static void
stop_if_all_fatal(struct kmmaster *m)
{
    if (m->stopping || m->next.id)
        return;
    for (int i = 0; i < m->cur.cfg.workers && i < MAX_WORKERS; i++) {
        if (!m->respawn[i].fatal)
            return;
    }
    kmlogf(KMLOG_ERROR, "master_fatal", "every worker exited with fatal code %d (CONFIG_ERROR) "
           "and cannot be respawned: %s; stopping with status %d", KM_EXIT_CONFIG,
           m->fatal_why, KM_EXIT_CONFIG);
    m->exit_status = KM_EXIT_CONFIG;
    begin_stop(m, 0);
}

/* Worker `index` (process `pid`, reaped) of the serving generation exited with KM_EXIT_CONFIG:
 * its configuration cannot work (nginx: "exited with fatal code 2 and cannot be respawned").
 * It is not respawned; the others, which share that configuration, serve on until they die
 * too, a reload (SIGHUP) brings a new generation, or the master is restarted. */
static void
worker_fatal(struct kmmaster *m, pid_t pid, int index, const char *why)
{
    json_object *f = json_object_new_object();
    int          left = 0;
    char         msg[512];

    if (index >= 0 && index < MAX_WORKERS) {
        m->respawn[index].fatal = 1;
        m->respawn[index].pending = 0;
    }
    for (int i = 0; i < m->cur.cfg.workers && i < MAX_WORKERS; i++)
        left += !m->respawn[i].fatal;
    km_strlcpy(m->fatal_why, why, sizeof(m->fatal_why));
    snprintf(msg, sizeof(msg), "worker %d exited with fatal code %d (CONFIG_ERROR) and cannot be "
             "respawned: %s; %d of %d worker(s) can still serve", index, KM_EXIT_CONFIG, why,
             left, m->cur.cfg.workers);
    json_object_object_add(f, "message", json_object_new_string(msg));
    json_object_object_add(f, "worker_pid", json_object_new_int((int)pid));
    json_object_object_add(f, "generation", json_object_new_int(m->cur.id));
    json_object_object_add(f, "index", json_object_new_int(index));
    json_object_object_add(f, "status", json_object_new_int(KM_EXIT_CONFIG));
    json_object_object_add(f, "cause", json_object_new_string(why));
    json_object_object_add(f, "workers_left", json_object_new_int(left));
    kmlog(KMLOG_ERROR, "worker_fatal", f);
    stop_if_all_fatal(m);
}

static void
reap(struct kmmaster *m)
{
    for (;;) {
        int            status;
        pid_t          pid = waitpid(-1, &status, WNOHANG);
        struct kmslot *s;
        json_object   *f;
        int            gen, index, stopping, fatal;
        int64_t        lived;
        char           why[sizeof(s->fatal)];

        if (pid <= 0)
            break;
        s = slot_of(m, pid);
        if (!s)
            continue;
        f = json_object_new_object();
        if (WIFSIGNALED(status))
            json_object_object_add(f, "signal", json_object_new_int(WTERMSIG(status)));
        else
            json_object_object_add(f, "status", json_object_new_int(WEXITSTATUS(status)));
        stopping = s->kill_at_ms != 0 || m->stopping;
        log_worker(stopping ? KMLOG_INFO : KMLOG_WARN, "worker_exited", s, f);
        gen = s->generation;
        index = s->index;
        lived = km_now_ms() - s->started_ms;
        fatal = WIFEXITED(status) && WEXITSTATUS(status) == KM_EXIT_CONFIG;
        km_strlcpy(why, s->fatal[0] ? s->fatal : "a configuration error", sizeof(why));
        s->pid = 0;
        count_alive(m);
        if (stopping)
            continue;
        if (fatal && gen == m->cur.id)
            worker_fatal(m, pid, index, why);
        if (m->next.id && gen == m->next.id) {
            char msg[300];

            if (fatal)
                snprintf(msg, sizeof(msg), "a worker of the new generation exited with fatal "
                         "code %d (CONFIG_ERROR): %s", KM_EXIT_CONFIG, why);
            else
                snprintf(msg, sizeof(msg), "a worker of the new generation exited before "
                         "serving");
            abort_reload(m, msg);
        } else if (gen == m->cur.id && !fatal) {
            schedule_respawn(m, index, lived);
        }
    }
}

/* A heartbeat older than WORKER_TIMEOUT_SECONDS means a blocked loop thread: SIGABRT (a core
 * to look at), then SIGKILL (gunicorn's murder_workers). Workers told to stop get SIGKILL once
 * their grace period is over. */
static void
check_workers(struct kmmaster *m)
{
    int64_t now = km_now_ms();
    int64_t timeout = (int64_t)m->cur.cfg.worker_timeout_s * 1000;

    for (int i = 0; i < MAX_SLOTS; i++) {
        struct kmslot *s = &m->slots[i];
        int64_t        silent;

        if (!s->pid)
            continue;
        if (s->kill_at_ms && now >= s->kill_at_ms) {
            log_worker(KMLOG_WARN, "worker_killed", s, NULL);
            kill(s->pid, SIGKILL);
            s->kill_at_ms = now + KILL_AFTER_ABORT_MS;
            continue;
        }
        silent = now - atomic_load(&s->heartbeat_ms);
        if (silent <= timeout)
            continue;
        if (!s->abort_ms) {
            json_object *f = json_object_new_object();
            json_object_object_add(f, "silent_ms", json_object_new_int64(silent));
            log_worker(KMLOG_ERROR, "worker_timeout", s, f);
            kill(s->pid, SIGABRT);
            s->abort_ms = now;
        } else if (now - s->abort_ms >= KILL_AFTER_ABORT_MS) {
            log_worker(KMLOG_ERROR, "worker_killed", s, NULL);
            kill(s->pid, SIGKILL);
            s->abort_ms = now;
        }
    }
}

/* --- metrics ------------------------------------------------------------------------- */

/* The shared counter table, mapped before the first fork so every worker adds to it. Its
 * routes: the fixed ones and each tool's REST route. */
static kmcode
open_metrics(kmerr *err)
{
    const char *routes[KMMET_MAX_ROUTES];
    size_t      n = 0;

    routes[n++] = "/health";
    routes[n++] = "/metrics";
    routes[n++] = "/v1/tools";
    for (size_t i = 0; i < kmreg_count() && n < KMMET_MAX_ROUTES; i++)
        routes[n++] = kmreg_at(i)->route;
    return kmmet_init(routes, n, err);
}

/* --- reload -------------------------------------------------------------------------- */

static void
abort_reload(struct kmmaster *m, const char *why)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (m->slots[i].pid && m->slots[i].generation == m->next.id)
            stop_worker(m, &m->slots[i], &m->next.cfg);
    }
    kmlogf(KMLOG_ERROR, "reload_failed", "%s; generation %d keeps serving", why, m->cur.id);
    kmmet_reload(0);
    free_gen(&m->next);
    /* the serving generation may have gone fatal while the reload was on its way */
    stop_if_all_fatal(m);
}

static void
warn_kept_settings(const kmcfg *a, const kmcfg *b)
{
    if (strcmp(a->rest_host, b->rest_host) != 0 || a->rest_port != b->rest_port ||
        strcmp(a->socket_path, b->socket_path) != 0)
        kmlogf(KMLOG_WARN, "reload_listeners_kept",
               "REST_HOST, REST_PORT and KLAVIYO_MCP_SOCKET changed; the listeners stay as they "
               "are until a restart");
}

static void
reload(struct kmmaster *m)
{
    struct gen g;
    kmerr      err = { 0 };
    kmcode     rc;

    if (m->stopping)
        return;
    if (!m->o->reload) {
        kmlogf(KMLOG_WARN, "reload_unsupported", "SIGHUP ignored");
        return;
    }
    if (m->next.id || m->switching) {
        kmlogf(KMLOG_WARN, "reload_busy", "a reload is still in progress; SIGHUP ignored");
        return;
    }
    kmlogf(KMLOG_INFO, "reload_started", "reloading settings, tokens and accounts");
    memset(&g, 0, sizeof(g));
    rc = m->o->reload(m->o->reload_arg, &g.cfg, &g.accounts, &err);
    if (rc == KM_OK && m->tcp_fd >= 0 && g.cfg.n_rest_tokens == 0) {
        rc = kmerr_set(&err, KM_CONFIG_ERROR, "no REST credential configured");
        free_gen(&g);
    }
    if (rc != KM_OK) {
        kmlogf(KMLOG_ERROR, "reload_failed", "%s: %s; generation %d keeps serving",
               kmerr_name(rc), err.msg, m->cur.id);
        kmmet_reload(0);
        kmerr_clear(&err);
        return;
    }
    warn_kept_settings(&m->cur.cfg, &g.cfg);
    g.id = ++m->last_gen;
    m->next = g;
    m->next_deadline = km_now_ms() + (int64_t)m->next.cfg.worker_timeout_s * 1000;
    if (m->next_deadline < km_now_ms() + RELOAD_MIN_WAIT_MS)
        m->next_deadline = km_now_ms() + RELOAD_MIN_WAIT_MS;
    for (int i = 0; i < m->next.cfg.workers; i++) {
        if (spawn(m, &m->next, i, &err) != KM_OK) {
            abort_reload(m, err.msg);
            kmerr_clear(&err);
            return;
        }
    }
}

static void
log_reload_done(struct kmmaster *m)
{
    json_object *f = json_object_new_object();

    json_object_object_add(f, "generation", json_object_new_int(m->cur.id));
    json_object_object_add(f, "workers", json_object_new_int(m->cur.cfg.workers));
    json_object_object_add(f, "rest_tokens", json_object_new_int((int)m->cur.cfg.n_rest_tokens));
    json_object_object_add(f, "accounts",
                           json_object_new_int((int)kmacct_count(m->cur.accounts)));
    kmmet_reload(1);
    kmlog(KMLOG_INFO, "reload_done", f);
}

/* Once every worker of the new generation serves, stop the old ones; once none of those
 * accepts connections any more, every new connection meets the new configuration: the
 * reload is done. */
static void
check_reload(struct kmmaster *m)
{
    int ready = 0;

    if (m->switching) {
        for (int i = 0; i < MAX_SLOTS; i++) {
            const struct kmslot *s = &m->slots[i];
            if (s->pid && s->generation != m->cur.id && atomic_load(&s->accepting))
                return;
        }
        m->switching = 0;
        log_reload_done(m);
        return;
    }
    if (!m->next.id)
        return;
    for (int i = 0; i < MAX_SLOTS; i++) {
        const struct kmslot *s = &m->slots[i];
        if (s->pid && s->generation == m->next.id && atomic_load(&s->ready))
            ready++;
    }
    if (ready < m->next.cfg.workers) {
        if (km_now_ms() > m->next_deadline)
            abort_reload(m, "the new workers did not start serving in time");
        return;
    }
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct kmslot *s = &m->slots[i];
        if (s->pid && s->generation != m->next.id)
            stop_worker(m, s, &m->cur.cfg);
    }
    free_gen(&m->cur);
    m->cur = m->next;
    memset(&m->next, 0, sizeof(m->next));
    memset(m->respawn, 0, sizeof(m->respawn));
    kmlog_set_level(m->cur.cfg.log_level);
    m->switching = 1;
    kmlogf(KMLOG_INFO, "reload_switching",
           "generation %d serves; the previous generation finishes its requests", m->cur.id);
}

/* --- stop ---------------------------------------------------------------------------- */

/* Stop on signal `sig` (SIGTERM or SIGINT), or 0: every worker is fatal. */
static void
begin_stop(struct kmmaster *m, int sig)
{
    json_object *f;

    if (m->stopping) {
        kmlogf(KMLOG_WARN, "stop_forced", "second stop signal: killing the workers");
        for (int i = 0; i < MAX_SLOTS; i++) {
            if (m->slots[i].pid) {
                kill(m->slots[i].pid, SIGKILL);
                m->slots[i].kill_at_ms = km_now_ms() + KILL_AFTER_ABORT_MS;
            }
        }
        return;
    }
    m->stopping = 1;
    /* New clients of the socket find no file (and can start their own service); the workers'
     * copies of the listeners close as each of them stops accepting. */
    remove_socket(m);
    close_listeners(m);
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct kmslot *s = &m->slots[i];
        stop_worker(m, s, s->generation == m->next.id && m->next.id ? &m->next.cfg : &m->cur.cfg);
    }
    f = json_object_new_object();
    if (sig)
        json_object_object_add(f, "signal",
                               json_object_new_string(sig == SIGINT ? "INT" : "TERM"));
    else
        json_object_object_add(f, "cause", json_object_new_string("every worker is fatal"));
    json_object_object_add(f, "workers", json_object_new_int(live_workers(m)));
    json_object_object_add(f, "grace_s", json_object_new_int(m->cur.cfg.graceful_timeout_s));
    kmlog(KMLOG_INFO, "stopping", f);
}

/* --- the loop ------------------------------------------------------------------------ */

/* Milliseconds until something is due: a respawn, or the one-second tick. */
static int64_t
next_wait(const struct kmmaster *m)
{
    int64_t now = km_now_ms(), wait = 1000;

    /* a reload in progress is watched closely: it ends when shared flags change */
    if (m->next.id || m->switching)
        wait = 50;

    for (int i = 0; !m->stopping && i < MAX_WORKERS; i++) {
        if (m->respawn[i].pending && m->respawn[i].due_ms - now < wait)
            wait = m->respawn[i].due_ms - now;
    }
    return wait < 0 ? 0 : wait;
}

static int
serve(struct kmmaster *m, const sigset_t *managed)
{
    for (;;) {
        int64_t         wait = next_wait(m);
        struct timespec ts = { (time_t)(wait / 1000), (long)(wait % 1000) * 1000000L };
        int             sig = sigtimedwait(managed, NULL, &ts);

        if (sig == SIGTERM || sig == SIGINT)
            begin_stop(m, sig);
        else if (sig == SIGHUP)
            reload(m);
        /* SIGCHLD, a timeout or EINTR: every pass reaps and checks */
        reap(m);
        if (m->stopping && live_workers(m) == 0)
            break;
        if (!m->stopping) {
            respawn_due(m);
            check_reload(m);
        }
        check_workers(m);
    }
    kmlog(KMLOG_INFO, "stopped", NULL);
    return m->exit_status;
}

int
kmmaster_run(kmcfg *cfg, kmaccounts *accounts, const struct kmmaster_opts *o)
{
    struct kmmaster m;
    sigset_t        managed, old;
    struct sigaction sa;
    kmerr           err = { 0 };
    kmcode          rc = KM_OK;
    int             status = 1;
    json_object    *f;

    memset(&m, 0, sizeof(m));
    m.o = o;
    m.pid = getpid();
    m.tcp_fd = m.unix_fd = -1;
    m.cur.id = m.last_gen = 1;
    m.cur.cfg = *cfg;
    m.cur.accounts = accounts;
    memset(cfg, 0, sizeof(*cfg));

    /* Blocked from here on, taken only by sigtimedwait; workers unblock after fork. */
    sigemptyset(&managed);
    sigaddset(&managed, SIGCHLD);
    sigaddset(&managed, SIGTERM);
    sigaddset(&managed, SIGINT);
    sigaddset(&managed, SIGHUP);
    sigprocmask(SIG_BLOCK, &managed, &old);
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    m.slots = mmap(NULL, sizeof(struct kmslot) * MAX_SLOTS, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m.slots == MAP_FAILED) {
        m.slots = NULL;
        rc = kmerr_set(&err, KM_INTERNAL_ERROR, "mmap: %s", strerror(errno));
        goto out;
    }
    memset(m.slots, 0, sizeof(struct kmslot) * MAX_SLOTS);
    rc = open_metrics(&err);
    if (rc != KM_OK)
        goto out;

    if (kmmaster_tcp_enabled(&m.cur.cfg, o)) {
        rc = open_tcp(m.cur.cfg.rest_host, m.cur.cfg.rest_port, &m.tcp_fd, &err);
        if (rc != KM_OK)
            goto out;
    }
    rc = open_unix(&m, m.cur.cfg.socket_path, &err);
    if (rc != KM_OK)
        goto out;
    rc = write_pid_file(&m, &err);
    if (rc != KM_OK)
        goto out;

    for (int i = 0; i < m.cur.cfg.workers; i++) {
        rc = spawn(&m, &m.cur, i, &err);
        if (rc != KM_OK)
            goto out;
    }
    f = json_object_new_object();
    json_object_object_add(f, "workers", json_object_new_int(m.cur.cfg.workers));
    if (m.tcp_fd >= 0) {
        char where[300];
        snprintf(where, sizeof(where), "%s:%d", m.cur.cfg.rest_host, m.cur.cfg.rest_port);
        json_object_object_add(f, "tcp", json_object_new_string(where));
    } else {
        json_object_object_add(f, "tcp", NULL);
    }
    json_object_object_add(f, "socket", json_object_new_string(m.cur.cfg.socket_path));
    json_object_object_add(f, "accounts", json_object_new_int((int)kmacct_count(accounts)));
    kmlog(KMLOG_INFO, "master_started", f);

    status = serve(&m, &managed);

out:
    if (rc != KM_OK) {
        kmlogf(KMLOG_ERROR, "start_failed", "%s: %s", kmerr_name(rc), err.msg);
        status = rc == KM_CONFIG_ERROR ? KM_EXIT_CONFIG : 1;
        /* workers already forked (a spawn failed midway) are stopped and reaped */
        for (int i = 0; m.slots && i < MAX_SLOTS; i++) {
            if (m.slots[i].pid) {
                kill(m.slots[i].pid, SIGKILL);
                waitpid(m.slots[i].pid, NULL, 0);
            }
        }
    }
    kmerr_clear(&err);
    remove_socket(&m);
    close_listeners(&m);
    remove_pid_file(&m);
    if (m.slots)
        munmap(m.slots, sizeof(struct kmslot) * MAX_SLOTS);
    kmmet_free();
    free_gen(&m.cur);
    free_gen(&m.next);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return status;
}
