/* conn.c — the service for klaviyo-mcp-admin: find or start it, call tools, draw progress,
 * cancel on Ctrl-C. */
#include "conn.h"
#include "forward.h"
#include "spawn.h"
#include "util.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/un.h>
#include <unistd.h>

#define START_MS        10000   /* a private service must answer /health by then */
#define GRACE_MS        5000    /* SIGTERM, then SIGKILL, for the private service */
#define LIST_TIMEOUT_MS 10000L
#define BAR_WIDTH       30

struct kmadm_conn {
    kmmcp_svc      *svc;
    long            timeout_ms;
    int             progress;

    pthread_t       sig_thread;
    int             sig_fd, stop_fd, sig_started;
    pthread_mutex_t mu;
    kmmcp_call     *current;       /* the call in flight, under mu */
    int             interrupted;   /* under mu */

    int64_t         started_ms;    /* the bar's clock */
    int             drawn;
};

static void *
signal_main(void *arg)
{
    kmadm_conn   *c = arg;
    struct pollfd p[2] = { { .fd = c->sig_fd, .events = POLLIN },
                           { .fd = c->stop_fd, .events = POLLIN } };

    for (;;) {
        struct signalfd_siginfo si;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents)
            break;
        if (!p[0].revents || read(c->sig_fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
            continue;
        pthread_mutex_lock(&c->mu);
        c->interrupted = 1;
        if (c->current)
            kmmcp_call_cancel(c->current);
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

kmadm_conn *
kmadm_conn_open(const char *socket_path, long timeout_ms, int progress)
{
    kmadm_conn           *c = km_xcalloc(1, sizeof(*c));
    struct kmmcp_svc_opts so;
    sigset_t              sigs;

    c->timeout_ms = timeout_ms;
    c->progress = progress && isatty(STDERR_FILENO);
    c->sig_fd = c->stop_fd = -1;
    pthread_mutex_init(&c->mu, NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    c->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
    c->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (c->sig_fd >= 0 && c->stop_fd >= 0 &&
        pthread_create(&c->sig_thread, NULL, signal_main, c) == 0)
        c->sig_started = 1;

    /* a private service logs to our stderr: only its errors, unless LOG_LEVEL says more */
    setenv("LOG_LEVEL", "error", 0);
    memset(&so, 0, sizeof(so));
    so.socket_path = socket_path;
    so.restd = getenv("KLAVIYO_RESTD");
    so.start_ms = START_MS;
    so.grace_ms = GRACE_MS;
    so.spawn = 1;
    c->svc = kmmcp_svc_start(&so);
    return c;
}

int
kmadm_conn_interrupted(kmadm_conn *c)
{
    int v;

    pthread_mutex_lock(&c->mu);
    v = c->interrupted;
    pthread_mutex_unlock(&c->mu);
    return v;
}

kmcode
kmadm_conn_tools(kmadm_conn *c, json_object **tools, kmerr *err)
{
    char     sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned gen = 0;
    kmcode   rc;

    *tools = NULL;
    rc = kmmcp_svc_get(c->svc, sock, sizeof(sock), &gen, err);
    if (rc != KM_OK)
        return rc;
    return kmmcp_fetch_tools(sock, LIST_TIMEOUT_MS, tools, err);
}

/* The bar: "[#####.....] 3/10 Klaviyo calls, 12 s" redrawn in place, "(waiting)" while the
 * service's keep-alive lines say the call waits (a rate window, a slow Klaviyo); without a
 * total only the count and the time. */
static void
on_progress(void *arg, long done, long total, int waiting)
{
    const char *note = waiting ? " (waiting)" : "";

    kmadm_conn *c = arg;
    long        secs = (long)((km_now_ms() - c->started_ms) / 1000);

    if (!c->progress)
        return;
    if (total > 0) {
        int  fill = (int)(done * BAR_WIDTH / (total > done ? total : done));
        char bar[BAR_WIDTH + 1];
        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(BAR_WIDTH - fill));
        bar[BAR_WIDTH] = '\0';
        fprintf(stderr, "\r[%s] %ld/%ld Klaviyo calls, %ld s%s\033[K", bar, done, total, secs,
                note);
    } else {
        fprintf(stderr, "\r%ld Klaviyo call%s, %ld s%s\033[K", done, done == 1 ? "" : "s", secs,
                note);
    }
    fflush(stderr);
    c->drawn = 1;
}

kmcode
kmadm_conn_call(kmadm_conn *c, const char *name, json_object *args, int *status,
                json_object **envelope, kmerr *err)
{
    char     sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
    unsigned gen = 0;
    kmcode   rc = KM_SERVICE_UNAVAILABLE;

    *status = 0;
    *envelope = NULL;
    c->started_ms = km_now_ms();
    c->drawn = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        kmmcp_call *call;

        kmerr_clear(err);
        rc = kmmcp_svc_get(c->svc, sock, sizeof(sock), &gen, err);
        if (rc != KM_OK)
            break;
        call = kmmcp_call_new(sock, name, args, 1, c->timeout_ms, on_progress, c);
        pthread_mutex_lock(&c->mu);
        c->current = call;
        if (c->interrupted)
            kmmcp_call_cancel(call);
        pthread_mutex_unlock(&c->mu);
        rc = kmmcp_call_run(call, status, envelope, err);
        pthread_mutex_lock(&c->mu);
        c->current = NULL;
        pthread_mutex_unlock(&c->mu);
        kmmcp_call_free(call);
        if (rc != KM_SERVICE_UNAVAILABLE)
            break;
        /* nothing accepted the request: the service may have gone; look again, once */
        kmmcp_svc_lost(c->svc, gen);
    }
    if (c->drawn) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    if (rc == KM_OK && kmadm_conn_interrupted(c)) {
        json_object_put(*envelope);
        *envelope = NULL;
        *status = 0;
        rc = kmerr_set(err, KM_CANCELLED, "interrupted");
    }
    return rc;
}

void
kmadm_conn_close(kmadm_conn *c)
{
    uint64_t one = 1;

    if (!c)
        return;
    kmmcp_svc_free(c->svc);
    if (c->sig_started) {
        if (write(c->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            pthread_cancel(c->sig_thread);
        pthread_join(c->sig_thread, NULL);
    }
    if (c->sig_fd >= 0)
        close(c->sig_fd);
    if (c->stop_fd >= 0)
        close(c->stop_fd);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
