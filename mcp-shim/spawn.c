/* spawn.c — find a shared klaviyo-restd or start a private one, and stop it with the shim. */
#include "spawn.h"
#include "forward.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define PROBE_MS 1000L

enum state { S_IDLE, S_CHECKING, S_READY, S_FAILED };

struct kmmcp_svc {
    struct kmmcp_svc_opts o;
    char                  configured[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char                 *restd;          /* the override, copied */

    pthread_t             thread;
    pthread_mutex_t       mu;
    pthread_cond_t        cv;
    enum state            state;
    int                   want;           /* a check was asked for */
    atomic_int            stopping;
    int                   joined;         /* kmmcp_svc_stop has run */
    unsigned              gen;            /* bumped by every finished check */
    char                  sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    kmerr                 err;            /* S_FAILED: why */

    /* manager thread only (read under mu by kmmcp_svc_child) */
    pid_t                 child;
    char                  child_sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char                  privdir[PATH_MAX];
};

/* --- finding things ---------------------------------------------------------------------- */

static int
executable(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *
kmmcp_find_restd(const char *override, kmerr *err)
{
    char        self[PATH_MAX];
    ssize_t     n;
    const char *path;

    if (override && *override) {
        if (executable(override))
            return km_xstrdup(override);
        kmerr_set(err, KM_SERVICE_UNAVAILABLE, "KLAVIYO_RESTD=%.200s is not an executable file",
                  override);
        return NULL;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        char *slash, *cand;

        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            cand = km_xasprintf("%s/klaviyo-restd", self);
            if (executable(cand))
                return cand;
            free(cand);
        }
    }
    path = getenv("PATH");
    if (path) {
        char *copy = km_xstrdup(path), *save = NULL;

        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
            char *cand = km_xasprintf("%s/klaviyo-restd", *d ? d : ".");

            if (executable(cand)) {
                free(copy);
                return cand;
            }
            free(cand);
        }
        free(copy);
    }
    kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-restd was not found next to klaviyo-mcp or "
              "on PATH; install it or set KLAVIYO_RESTD to its path");
    return NULL;
}

/* mkdir -p with mode 0700 for the missing parts. 0 or -1. */
static int
mkdirs(const char *dir)
{
    char   tmp[PATH_MAX];
    size_t n = km_strlcpy(tmp, dir, sizeof(tmp));

    if (n >= sizeof(tmp))
        return -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int
kmmcp_socket_usable(const char *path)
{
    struct stat st;
    char        dir[PATH_MAX];
    char       *slash;

    if (!path || path[0] != '/' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return 0;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return 0;
    if (km_strlcpy(dir, path, sizeof(dir)) >= sizeof(dir))
        return 0;
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0 && mkdirs(dir) != 0)
        return 0;
    return stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && access(dir, W_OK | X_OK) == 0;
}

/* A new 0700 directory for a private socket, under $XDG_RUNTIME_DIR, $TMPDIR or /tmp. */
static int
make_privdir(char *out, size_t cap)
{
    const char *bases[] = { getenv("XDG_RUNTIME_DIR"), getenv("TMPDIR"), "/tmp" };

    for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        if (!bases[i] || bases[i][0] != '/')
            continue;
        if ((size_t)snprintf(out, cap, "%s/klaviyo-mcp-XXXXXX", bases[i]) >= cap)
            continue;
        /* the socket path must fit sun_path */
        if (strlen(out) + sizeof("/restd.sock") > sizeof(((struct sockaddr_un *)0)->sun_path))
            continue;
        if (mkdtemp(out))
            return 0;
    }
    out[0] = '\0';
    return -1;
}

/* --- the child ------------------------------------------------------------------------- */

static int
is_replaced(const char *entry)
{
    static const char *const names[] = { "WORKERS=", "REST_PORT=", "KLAVIYO_MCP_SOCKET=" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return 1;
    return 0;
}

/* Fork and exec `path --socket-only` serving `sock`. Returns the pid or -1. Everything the
 * child needs is built before fork(): after it only async-signal-safe calls run. */
static pid_t
start_child(const char *path, const char *sock, const char *log_level)
{
    size_t n = 0, k = 0;
    char **envp;
    char  *argv[3];
    char  *sockvar = km_xasprintf("KLAVIYO_MCP_SOCKET=%s", sock);
    char  *levelvar = log_level && !getenv("LOG_LEVEL") ?
                      km_xasprintf("LOG_LEVEL=%s", log_level) : NULL;
    pid_t  parent = getpid(), pid;
    long   maxfd = sysconf(_SC_OPEN_MAX);
    int    saved;

    if (maxfd < 0 || maxfd > 65536)
        maxfd = 65536;

    while (environ[n])
        n++;
    envp = km_xcalloc(n + 5, sizeof(*envp));
    for (size_t i = 0; i < n; i++)
        if (!is_replaced(environ[i]))
            envp[k++] = environ[i];
    envp[k++] = (char *)(uintptr_t)"WORKERS=1";
    envp[k++] = (char *)(uintptr_t)"REST_PORT=0";
    envp[k++] = sockvar;
    if (levelvar)
        envp[k++] = levelvar;
    envp[k] = NULL;
    argv[0] = (char *)(uintptr_t)path;
    argv[1] = (char *)(uintptr_t)"--socket-only";
    argv[2] = NULL;

    pid = fork();
    if (pid == 0) {
        sigset_t         none;
        struct sigaction dfl;
        int              devnull;

        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        /* ignored signals stay ignored across exec: give the service the defaults */
        sigaction(SIGPIPE, &dfl, NULL);
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGHUP, &dfl, NULL);
        sigaction(SIGCHLD, &dfl, NULL);
        /* die with the shim, even a SIGKILLed one; the check closes the race with its exit */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
            _exit(1);
        setpgid(0, 0);
        devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0)
            _exit(126);
#ifdef SYS_close_range
        if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
#endif
            for (long fd = 3; fd < maxfd; fd++)
                close((int)fd);
        execve(path, argv, envp);
        _exit(127);
    }
    saved = errno;
    free(envp);
    free(sockvar);
    free(levelvar);
    errno = saved;
    return pid;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void
log_exit(const char *event, pid_t pid, int status)
{
    json_object *f = json_object_new_object();

    json_object_object_add(f, "pid", json_object_new_int(pid));
    if (WIFEXITED(status))
        json_object_object_add(f, "exit_status", json_object_new_int(WEXITSTATUS(status)));
    else if (WIFSIGNALED(status))
        json_object_object_add(f, "signal", json_object_new_int(WTERMSIG(status)));
    kmlog(KMLOG_INFO, event, f);
}

/* SIGTERM, wait up to the grace period, then SIGKILL (the whole process group: the service's
 * workers too); reap. Removes the private directory. Manager thread only. */
static void
stop_child(kmmcp_svc *s)
{
    int     status = 0;
    pid_t   pid = s->child;
    int64_t deadline;

    if (pid > 0) {
        kill(pid, SIGTERM);
        deadline = km_now_ms() + s->o.grace_ms;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);

            if (r == pid || (r < 0 && errno == ECHILD))
                break;
            if (km_now_ms() >= deadline) {
                kmlogf(KMLOG_WARN, "restd_kill", "klaviyo-restd (pid %ld) ignored SIGTERM for "
                       "%d ms; sending SIGKILL", (long)pid, s->o.grace_ms);
                kill(-pid, SIGKILL);
                kill(pid, SIGKILL);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                    ;
                break;
            }
            sleep_ms(20);
        }
        log_exit("restd_stopped", pid, status);
        pthread_mutex_lock(&s->mu);
        s->child = 0;
        pthread_mutex_unlock(&s->mu);
    }
    if (s->privdir[0]) {
        char *sock = km_xasprintf("%s/restd.sock", s->privdir);

        unlink(sock);
        free(sock);
        rmdir(s->privdir);
        s->privdir[0] = '\0';
    }
}

/* Start the service on `sock` and wait until it answers. Manager thread only. */
static kmcode
start_and_wait(kmmcp_svc *s, const char *path, const char *sock, kmerr *err)
{
    pid_t   pid = start_child(path, sock, s->o.log_level);
    int64_t deadline = km_now_ms() + s->o.start_ms;
    long    pause = 20;

    if (pid < 0)
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "cannot start klaviyo-restd: %s",
                         strerror(errno));
    kmlogf(KMLOG_INFO, "restd_starting", "started %s --socket-only (pid %ld) on %s", path,
           (long)pid, sock);
    pthread_mutex_lock(&s->mu);
    s->child = pid;
    km_strlcpy(s->child_sock, sock, sizeof(s->child_sock));
    pthread_mutex_unlock(&s->mu);
    for (;;) {
        int   status;
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid) {
            log_exit("restd_exited", pid, status);
            pthread_mutex_lock(&s->mu);
            s->child = 0;
            pthread_mutex_unlock(&s->mu);
            if (WIFEXITED(status) && WEXITSTATUS(status) == KM_EXIT_CONFIG)
                return kmerr_set(err, KM_CONFIG_ERROR, "klaviyo-restd refused the "
                                 "configuration (exit 78); its log on stderr says why");
            if (WIFEXITED(status))
                return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-restd exited with "
                                 "status %d before it answered", WEXITSTATUS(status));
            return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-restd died (signal %d) "
                             "before it answered", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        }
        if (kmmcp_health(sock, 500, NULL) == KM_OK) {
            kmlogf(KMLOG_INFO, "restd_ready", "private klaviyo-restd (pid %ld) answers on %s",
                   (long)pid, sock);
            return KM_OK;
        }
        if (atomic_load(&s->stopping) || km_now_ms() >= deadline) {
            stop_child(s);
            if (atomic_load(&s->stopping))
                return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-mcp is stopping");
            return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-restd did not answer on %s "
                             "within %.1f s", sock, s->o.start_ms / 1000.0);
        }
        sleep_ms(pause);
        if (pause < 200)
            pause *= 2;
    }
}

/* One check: find or start a service. On KM_OK `sock` holds its socket. */
static kmcode
ensure(kmmcp_svc *s, char *sock, size_t cap, kmerr *err)
{
    char  *path = NULL;
    kmcode rc;

    if (s->child == 0 && s->privdir[0])
        stop_child(s);   /* a private service that died (kmmcp_svc_reap): its directory */

    if (s->child > 0) {
        int   status;
        pid_t r = waitpid(s->child, &status, WNOHANG);

        if (r == 0) {
            if (kmmcp_health(s->child_sock, PROBE_MS, NULL) == KM_OK) {
                km_strlcpy(sock, s->child_sock, cap);
                return KM_OK;
            }
            kmlogf(KMLOG_WARN, "restd_unresponsive", "private klaviyo-restd (pid %ld) does "
                   "not answer; replacing it", (long)s->child);
            stop_child(s);
        } else {
            log_exit("restd_exited", s->child, status);
            pthread_mutex_lock(&s->mu);
            s->child = 0;
            pthread_mutex_unlock(&s->mu);
            stop_child(s);   /* removes a private directory */
        }
    }
    if (kmmcp_health(s->configured, PROBE_MS, NULL) == KM_OK) {
        kmlogf(KMLOG_INFO, "restd_shared", "using the klaviyo-restd listening on %s",
               s->configured);
        km_strlcpy(sock, s->configured, cap);
        return KM_OK;
    }
    if (!s->o.spawn)
        return kmerr_set(err, KM_SERVICE_UNAVAILABLE, "no klaviyo-restd answers on %s",
                         s->configured);
    path = kmmcp_find_restd(s->restd, err);
    if (!path)
        return err ? err->code : KM_SERVICE_UNAVAILABLE;

    if (kmmcp_socket_usable(s->configured)) {
        rc = start_and_wait(s, path, s->configured, err);
        if (rc == KM_OK || rc == KM_CONFIG_ERROR || atomic_load(&s->stopping)) {
            if (rc == KM_OK)
                km_strlcpy(sock, s->configured, cap);
            goto out;
        }
        /* another shim may have started one on the same socket at the same moment */
        if (kmmcp_health(s->configured, PROBE_MS, NULL) == KM_OK) {
            kmerr_clear(err);
            km_strlcpy(sock, s->configured, cap);
            rc = KM_OK;
            goto out;
        }
        kmlogf(KMLOG_WARN, "restd_retry", "klaviyo-restd could not serve %s (%s); trying a "
               "private socket", s->configured, err ? err->msg : "");
        kmerr_clear(err);
    } else {
        kmlogf(KMLOG_WARN, "socket_unusable", "KLAVIYO_MCP_SOCKET=%s cannot be created; using a "
               "private socket", s->configured);
    }
    if (make_privdir(s->privdir, sizeof(s->privdir)) != 0) {
        rc = kmerr_set(err, KM_SERVICE_UNAVAILABLE, "cannot create a private socket directory");
        goto out;
    }
    {
        char *priv = km_xasprintf("%s/restd.sock", s->privdir);

        rc = start_and_wait(s, path, priv, err);
        if (rc == KM_OK)
            km_strlcpy(sock, priv, cap);
        free(priv);
    }
    if (rc != KM_OK)
        stop_child(s);
out:
    free(path);
    return rc;
}

static void *
manager(void *arg)
{
    kmmcp_svc *s = arg;

    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stopping)) {
        char   sock[sizeof(s->sock)];
        kmerr  e = { 0 };
        kmcode rc;

        if (!s->want) {
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        s->want = 0;
        s->state = S_CHECKING;
        pthread_mutex_unlock(&s->mu);
        rc = ensure(s, sock, sizeof(sock), &e);
        pthread_mutex_lock(&s->mu);
        if (rc == KM_OK) {
            s->state = S_READY;
            km_strlcpy(s->sock, sock, sizeof(s->sock));
        } else {
            s->state = S_FAILED;
            kmerr_copy(&s->err, &e);
            kmlogf(KMLOG_ERROR, "restd_unavailable", "%s", e.msg);
        }
        s->gen++;
        pthread_cond_broadcast(&s->cv);
        kmerr_clear(&e);
    }
    pthread_mutex_unlock(&s->mu);
    stop_child(s);
    return NULL;
}

kmmcp_svc *
kmmcp_svc_start(const struct kmmcp_svc_opts *o)
{
    kmmcp_svc *s = km_xcalloc(1, sizeof(*s));

    s->o = *o;
    km_strlcpy(s->configured, o->socket_path ? o->socket_path : "", sizeof(s->configured));
    s->restd = o->restd ? km_xstrdup(o->restd) : NULL;
    s->o.socket_path = s->configured;
    s->o.restd = s->restd;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    atomic_init(&s->stopping, 0);
    s->state = S_IDLE;
    s->want = 1;
    if (pthread_create(&s->thread, NULL, manager, s) != 0) {
        kmlogf(KMLOG_ERROR, "thread_failed", "cannot start the service manager thread");
        abort();
    }
    return s;
}

kmcode
kmmcp_svc_get(kmmcp_svc *s, char *sock, size_t cap, unsigned *gen, kmerr *err)
{
    kmcode   rc;
    unsigned seen;

    pthread_mutex_lock(&s->mu);
    if (s->state == S_IDLE || s->state == S_FAILED) {
        s->want = 1;
        s->state = S_CHECKING;
        pthread_cond_broadcast(&s->cv);
    }
    seen = s->gen;
    while (s->state == S_CHECKING && s->gen == seen && !atomic_load(&s->stopping))
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->state == S_READY) {
        km_strlcpy(sock, s->sock, cap);
        *gen = s->gen;
        rc = KM_OK;
    } else if (atomic_load(&s->stopping)) {
        rc = kmerr_set(err, KM_SERVICE_UNAVAILABLE, "klaviyo-mcp is stopping");
    } else {
        rc = kmerr_set(err, s->err.code ? s->err.code : KM_SERVICE_UNAVAILABLE, "%s",
                       s->err.msg);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void
kmmcp_svc_lost(kmmcp_svc *s, unsigned gen)
{
    pthread_mutex_lock(&s->mu);
    if (s->state == S_READY && s->gen == gen) {
        s->want = 1;
        s->state = S_CHECKING;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

pid_t
kmmcp_svc_reap(kmmcp_svc *s, char *why, size_t cap)
{
    int   status = 0, died = 0;
    pid_t pid;

    pthread_mutex_lock(&s->mu);
    pid = s->child;
    if (s->state == S_READY && pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        died = 1;
        s->child = 0;
        s->state = S_IDLE;
        s->gen++;
        if (WIFSIGNALED(status))
            snprintf(why, cap, "the private klaviyo-restd (pid %ld) was killed by signal %d "
                     "during the call; it is started again for the next call", (long)pid,
                     WTERMSIG(status));
        else
            snprintf(why, cap, "the private klaviyo-restd (pid %ld) exited with status %d "
                     "during the call; it is started again for the next call", (long)pid,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    pthread_mutex_unlock(&s->mu);
    if (!died)
        return 0;
    log_exit("restd_died", pid, status);
    kmlogf(KMLOG_ERROR, "restd_died", "%s", why);
    return pid;
}

void
kmmcp_svc_kill_group(pid_t pid)
{
    /* its workers (same process group) serve nothing without their master */
    if (pid > 0)
        kill(-pid, SIGKILL);
}

pid_t
kmmcp_svc_child(kmmcp_svc *s)
{
    pid_t pid;

    pthread_mutex_lock(&s->mu);
    pid = s->child;
    pthread_mutex_unlock(&s->mu);
    return pid;
}

void
kmmcp_svc_stop(kmmcp_svc *s)
{
    if (!s || s->joined)
        return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stopping, 1);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    s->joined = 1;
}

void
kmmcp_svc_free(kmmcp_svc *s)
{
    if (!s)
        return;
    kmmcp_svc_stop(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    kmerr_clear(&s->err);
    free(s->restd);
    free(s);
}
