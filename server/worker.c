/* worker.c — a worker process: loop, heartbeat, service threads, graceful stop.
 *
 * Service threads: SERVICE_THREADS always run. A call may hold its thread for minutes while it
 * waits on Klaviyo (a rate window, a slow answer), so when a call is queued and no thread is
 * idle the loop adds one, up to SERVICE_THREADS_MAX; an added thread leaves after
 * EXTRA_IDLE_MS with nothing to do. Waiting calls so never hold the capacity a cheap call
 * needs, and a full queue (QUEUE_MAX) is refused at once by the HTTP layer. */
#include "worker.h"
#include "http.h"
#include "jobq.h"
#include "log.h"
#include "svc.h"
#include "util.h"

#include <event2/event.h>
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define EXTRA_IDLE_MS 30000   /* an added service thread leaves after this long idle */

struct worker;

struct svcthr {
    struct worker *w;
    kmsvc_thread  *th;
    pthread_t      tid;
    int            started;
};

struct worker {
    const struct kmworker_args *a;
    struct event_base          *base;
    kmsvc                      *svc;
    kmjobq                     *q;
    kmhttp                     *http;
    struct svcthr              *thr;
    int                         nthr;
    pthread_mutex_t             xmu;     /* guards nextra; xcv signals a leaving thread */
    pthread_cond_t              xcv;
    int                         nextra;  /* added threads alive */
    struct event               *beat, *sigterm, *sigint, *grace;
    unsigned                    beats;   /* heartbeats so far */
    int                         stopping;
    atomic_bool                 quit;    /* the threads stop: a refresh a thread runs after
                                            its call (refresh_after) ends */
};

/* --- service threads --------------------------------------------------------------------- */

struct progress_arg {
    kmjobq       *q;
    struct kmjob *job;
};

static void
on_progress(void *arg, int done, int total)
{
    struct progress_arg *p = arg;

    kmjobq_progress(p->q, p->job, done, total);
}

/* Finish `job` (answered from a kept answer in its refresh window, read on this thread) and
 * then, the caller answered, compute that answer again here (kmsvc_refresh). */
static void
refresh_after(struct worker *w, kmsvc_thread *th, struct kmjob *job)
{
    const struct kmtool *tool = job->tool;
    kmshape_view         view = (kmshape_view)job->view;
    json_object         *args = NULL;

    if (json_object_deep_copy(job->args, &args, NULL) != 0)
        args = NULL;
    kmjobq_finish(w->q, job);   /* the job is the loop's again: not touched after this */
    if (args && !kmjobq_stopping(w->q))
        kmsvc_refresh(th, tool, args, view, &w->quit);
    json_object_put(args);
}

/* A call that parsed a big Klaviyo document (a year of daily figures per flow is tens of
 * thousands of small allocations) leaves its thread's arena full of freed chunks scattered
 * among live ones; glibc keeps them and gives back only what is free at the arena's top, so
 * a worker's memory followed the biggest calls of its life and how they happened to
 * interleave (+7 MB a worker in 45 s of abandoned two-year daily series, with 2 MB live).
 * malloc_trim after such a call returns the free pages of every arena to the system; it runs
 * after the caller has its answer, and takes 0.2 to 0.4 ms (measured) beside a call of tens. */
#define TRIM_AFTER_BYTES (64 * 1024)

/* malloc_trim, logged (debug) with why (after a call, or the loop's periodic one; parsed:
 * the call's bytes of Klaviyo documents) and how long it took. */
static void
give_back(const char *why, size_t parsed)
{
#ifdef HAVE_MALLOC_TRIM
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    malloc_trim(0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    kmlogf(KMLOG_DEBUG, "memory_given_back", "malloc_trim %s (%zu bytes of Klaviyo documents "
           "parsed): %lld us", why, parsed,
           (long long)((b.tv_sec - a.tv_sec) * 1000000LL + (b.tv_nsec - a.tv_nsec) / 1000));
#else
    (void)why;
    (void)parsed;
#endif
}

/* Run jobs until the queue stops (`extra`: or until idle for EXTRA_IDLE_MS). */
static void
serve_jobs(struct worker *w, kmsvc_thread *th, int extra)
{
    kmjobq *q = w->q;

    for (;;) {
        struct kmjob       *job = extra ? kmjobq_pop_idle(q, EXTRA_IDLE_MS) : kmjobq_pop(q);
        struct progress_arg p;
        size_t              parsed;

        if (!job)
            break;
        parsed = kmsvc_thread_parsed(th);
        p.q = q;
        p.job = job;
        kmlog_set_request_id(job->rid);
        if (job->background) {
            /* a refresh (refresh.h); a stopping worker starts none (its status stays
             * KMSVC_REFRESH_FAILED, set when it was asked) */
            if (!atomic_load(&job->cancelled) && !kmjobq_stopping(q))
                job->status = kmsvc_refresh(th, job->tool, job->args,
                                            (kmshape_view)job->view, &job->cancelled);
        } else if (atomic_load(&job->cancelled)) {
            /* the client left while the job waited for a thread */
            job->envelope = NULL;
            job->status = 499;
        } else {
            job->envelope = kmsvc_call_at(th, job->tool, job->args, (kmshape_view)job->view,
                                          job->arrived_ms, &job->cancelled,
                                          job->stream ? on_progress : NULL, &p, &job->status);
            if (kmsvc_thread_due(th)) {
                refresh_after(w, th, job);      /* finishes the job first */
                job = NULL;
            }
        }
        if (job)
            kmjobq_finish(q, job);  /* the job is the loop's again: not touched after this */
        parsed = kmsvc_thread_parsed(th) - parsed;
        if (parsed >= TRIM_AFTER_BYTES)
            give_back("after a call", parsed);  /* logged with the call's request id */
        kmlog_set_request_id(NULL);
    }
}

static void *
service_main(void *arg)
{
    struct svcthr *t = arg;

    serve_jobs(t->w, t->th, 0);
    return NULL;
}

/* An added thread: its own Klaviyo client; it leaves when idle or when the queue stops. */
static void *
extra_main(void *arg)
{
    struct worker *w = arg;
    kmsvc_thread  *th = NULL;
    kmerr          err = { 0 };

    if (kmsvc_thread_new(w->svc, &th, &err) == KM_OK)
        serve_jobs(w, th, 1);
    else
        kmlogf(KMLOG_WARN, "service_thread_failed", "%s", err.msg);
    kmsvc_thread_free(th);
    kmerr_clear(&err);
    pthread_mutex_lock(&w->xmu);
    kmlogf(KMLOG_INFO, "service_thread_left", "an added service thread left (%d ms idle, or "
           "the worker stops); %d added thread(s) remain", EXTRA_IDLE_MS, w->nextra - 1);
    w->nextra--;
    pthread_cond_broadcast(&w->xcv);
    pthread_mutex_unlock(&w->xmu);
    return NULL;
}

/* The loop queued a call and no thread was idle: add one, within SERVICE_THREADS_MAX. */
static void
grow(void *arg)
{
    struct worker *w = arg;
    pthread_attr_t attr;
    pthread_t      tid;
    sigset_t       all, old;
    int            e, extra;

    pthread_mutex_lock(&w->xmu);
    if (w->stopping || w->nthr + w->nextra >= w->a->cfg->service_threads_max) {
        pthread_mutex_unlock(&w->xmu);
        return;
    }
    w->nextra++;
    extra = w->nextra;
    pthread_mutex_unlock(&w->xmu);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    e = pthread_create(&tid, &attr, extra_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e != 0) {
        kmlogf(KMLOG_WARN, "service_thread_failed", "pthread_create: %s", strerror(e));
        pthread_mutex_lock(&w->xmu);
        w->nextra--;
        pthread_mutex_unlock(&w->xmu);
        return;
    }
    kmlogf(KMLOG_INFO, "service_thread_added", "a call found every service thread busy: "
           "added thread %d of %d (SERVICE_THREADS %d, SERVICE_THREADS_MAX); %zu call(s) wait",
           w->nthr + extra, w->a->cfg->service_threads_max, w->nthr, kmjobq_waiting(w->q));
}

static kmcode
start_threads(struct worker *w, kmerr *err)
{
    sigset_t all, old;
    kmcode   rc = KM_OK;

    w->nthr = w->a->cfg->service_threads;
    w->thr = km_xcalloc((size_t)w->nthr, sizeof(*w->thr));
    /* service threads take no signals: libevent's handlers run on the loop thread */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < w->nthr; i++) {
        int e;

        w->thr[i].w = w;
        rc = kmsvc_thread_new(w->svc, &w->thr[i].th, err);
        if (rc != KM_OK)
            break;
        e = pthread_create(&w->thr[i].tid, NULL, service_main, &w->thr[i]);
        if (e != 0) {
            rc = kmerr_set(err, KM_INTERNAL_ERROR, "pthread_create: %s", strerror(e));
            break;
        }
        w->thr[i].started = 1;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void
stop_threads(struct worker *w)
{
    atomic_store(&w->quit, true);
    if (w->q)
        kmjobq_stop(w->q);
    /* added threads are detached: wait until the last has left (they use w->svc) */
    pthread_mutex_lock(&w->xmu);
    while (w->nextra > 0)
        pthread_cond_wait(&w->xcv, &w->xmu);
    pthread_mutex_unlock(&w->xmu);
    for (int i = 0; i < w->nthr; i++) {
        if (w->thr[i].started)
            pthread_join(w->thr[i].tid, NULL);
        kmsvc_thread_free(w->thr[i].th);
    }
    free(w->thr);
    w->thr = NULL;
    w->nthr = 0;
}

/* --- loop events ------------------------------------------------------------------------- */

/* Every TRIM_EVERY_BEATS heartbeats (seconds) the loop gives back what the allocator keeps
 * free: the memory of the loop's own requests and answers and of calls under
 * TRIM_AFTER_BYTES. Without it a worker's resident memory depended on how its first minute
 * happened to fragment the arenas (a soak: the same load, workers of the same age, 9.2 to
 * 10.2 MB for two). It takes 0.1 to 0.5 ms of the loop every 10 s (measured at 30,000
 * requests a second). */
#define TRIM_EVERY_BEATS 10

static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    atomic_store(&w->a->slot->heartbeat_ms, km_now_ms());
    if (++w->beats % TRIM_EVERY_BEATS == 0)
        give_back("on the loop, every 10 s", 0);
}

static void
on_idle(void *arg)
{
    struct worker *w = arg;

    event_base_loopexit(w->base, NULL);
}

static void
on_grace(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;

    (void)fd;
    (void)what;
    kmlogf(KMLOG_WARN, "worker_grace_expired",
           "%zu request(s) still in flight after GRACEFUL_TIMEOUT_SECONDS=%d; exiting",
           kmhttp_live(w->http), w->a->cfg->graceful_timeout_s);
    /* service threads may be inside a Klaviyo call: leave without unwinding them */
    _exit(1);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct worker *w = arg;
    struct timeval tv = { w->a->cfg->graceful_timeout_s, 0 };
    json_object   *f;

    (void)what;
    if (w->stopping)
        return;
    w->stopping = 1;
    f = json_object_new_object();
    json_object_object_add(f, "signal", json_object_new_string(sig == SIGINT ? "INT" : "TERM"));
    json_object_object_add(f, "in_flight", json_object_new_int64((int64_t)kmhttp_live(w->http)));
    kmlog(KMLOG_INFO, "worker_stopping", f);
    w->grace = evtimer_new(w->base, on_grace, w);
    if (w->grace)
        evtimer_add(w->grace, &tv);
    kmhttp_drain(w->http, on_idle, w);
    /* the master waits for this before it calls a reload done */
    atomic_store(&w->a->slot->accepting, 0);
}

/* --- the process ------------------------------------------------------------------------- */

/* libevent's own messages ("Error from accept() call", ...) as JSON log lines like ours, at
 * most one a second (a condition that repeats must not flood the log); the number left out
 * is said on the next line. */
static void
on_libevent_log(int severity, const char *msg)
{
    static _Atomic int64_t last;
    static atomic_uint     dropped;
    int64_t                now = km_now_ms(), prev = atomic_load(&last);
    kmlog_level            lvl = severity >= EVENT_LOG_ERR ? KMLOG_ERROR
                                 : severity >= EVENT_LOG_WARN ? KMLOG_WARN
                                 : severity >= EVENT_LOG_MSG ? KMLOG_INFO : KMLOG_DEBUG;

    if (now - prev < 1000 || !atomic_compare_exchange_strong(&last, &prev, now)) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    kmlogf(lvl, "libevent", "%s (%u similar line(s) left out)", msg, atomic_exchange(&dropped, 0));
}

/* glibc gives a thread that meets contention an allocation arena of its own, up to 8 per core,
 * and keeps what it freed there: a worker's memory then followed how many service threads it
 * had added while calls waited (SERVICE_THREADS_MAX). WORKER_ARENAS arenas (the loop's, and
 * the service threads share the others) keep it flat. MALLOC_ARENA_MAX, when set, decides. */
#define WORKER_ARENAS 4

static void
cap_arenas(void)
{
#ifdef M_ARENA_MAX
    /* another allocator (a sanitizer's) refuses: nothing to cap then */
    if (!getenv("MALLOC_ARENA_MAX") && mallopt(M_ARENA_MAX, WORKER_ARENAS) != 1)
        kmlogf(KMLOG_DEBUG, "malloc_arenas", "the allocator does not take M_ARENA_MAX=%d",
               WORKER_ARENAS);
#endif
}

/* Use the hard limit on descriptors: every connection costs one. */
static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            kmlogf(KMLOG_WARN, "nofile_limit", "cannot raise the descriptor limit: %s",
                   strerror(errno));
    }
}

/* Descriptors a worker keeps for other things than client connections: listeners, logs, the
 * store, the event base and job queue, and the Unix socket's UNIX_EXTRA_CONNS connections past
 * the cap (FD_RESERVE_BASE), and each service thread's curl multi
 * handle with up to 16 Klaviyo connections and its wake-up pair (FD_PER_THREAD). */
#define FD_RESERVE_BASE 64
#define FD_PER_THREAD   18

/* WORKER_CONNECTIONS, lowered so connections cannot take the descriptors the reserve keeps
 * (a limit too small for the reserve is shared half and half). */
static size_t
connection_cap(const kmcfg *cfg)
{
    struct rlimit rl;
    size_t        want = (size_t)cfg->worker_connections, nofile, reserve, fit;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return want;
    nofile = (size_t)rl.rlim_cur;
    reserve = FD_RESERVE_BASE + FD_PER_THREAD * (size_t)cfg->service_threads_max;
    fit = nofile > reserve && nofile - reserve >= nofile / 2 ? nofile - reserve : nofile / 2;
    if (fit == 0)
        fit = 1;
    if (fit >= want)
        return want;
    kmlogf(KMLOG_INFO, "connections_limited", "WORKER_CONNECTIONS %zu lowered to %zu: the "
           "descriptor limit is %zu and up to %zu are kept for Klaviyo, the store and the logs "
           "(raise it with ulimit -n / LimitNOFILE)", want, fit, nofile, nofile - fit);
    return fit;
}

static void
reset_signals(void)
{
    static const int dfl[] = { SIGTERM, SIGINT, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2 };
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (size_t i = 0; i < sizeof(dfl) / sizeof(dfl[0]); i++)
        sigaction(dfl[i], &sa, NULL);
    /* the master reloads by replacing workers; a terminal hang-up is its business */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGPIPE, &sa, NULL);
}

/* An event base whose epoll changes are batched per loop iteration: evhttp turns read and
 * write interest on and off several times per request, and the changelist folds those into
 * at most one epoll_ctl per socket. (Its caveat, dup()ed descriptors sharing one file, does
 * not arise: every socket here is accepted or inherited once, never duplicated.) */
static struct event_base *
new_base(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base   *base = NULL;

    if (cfg) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    return base ? base : event_base_new();
}

static void
cleanup(struct worker *w)
{
    stop_threads(w);
    kmhttp_free(w->http);
    kmjobq_free(w->q);
    kmsvc_close(w->svc);
    if (w->beat)
        event_free(w->beat);
    if (w->sigterm)
        event_free(w->sigterm);
    if (w->sigint)
        event_free(w->sigint);
    if (w->grace)
        event_free(w->grace);
    if (w->base)
        event_base_free(w->base);
}

int
kmworker_run(const struct kmworker_args *a)
{
    struct worker     w;
    struct kmhttp_opts ho;
    struct timeval     second = { 1, 0 };
    sigset_t           none;
    kmerr              err = { 0 };
    kmcode             rc;
    json_object       *f;

    memset(&w, 0, sizeof(w));
    w.a = a;
    pthread_mutex_init(&w.xmu, NULL);
    pthread_cond_init(&w.xcv, NULL);
    /* Signals stay blocked (as the master left them) until our handlers are in place. */
    reset_signals();
    /* die with the master, even when it is killed */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != a->master) {
        kmlogf(KMLOG_ERROR, "worker_orphaned", "the master is gone; not starting");
        return 1;
    }

    event_set_log_callback(on_libevent_log);
    raise_nofile();
    cap_arenas();
    w.base = new_base();
    if (!w.base) {
        rc = kmerr_set(&err, KM_INTERNAL_ERROR, "event_base_new failed");
        goto fail;
    }
    rc = kmsvc_open(a->cfg, a->accounts, &w.svc, &err);
    if (rc != KM_OK)
        goto fail;
    rc = kmjobq_new(&w.q, &err);
    if (rc != KM_OK)
        goto fail;
    memset(&ho, 0, sizeof(ho));
    ho.cfg = a->cfg;
    ho.q = w.q;
    ho.generation = a->slot->generation;
    ho.grow = grow;
    ho.grow_arg = &w;
    kmjobq_set_limit(w.q, (size_t)a->cfg->queue_max);
    ho.store = kmsvc_store(w.svc);
    ho.svc = w.svc;
    ho.max_conns = connection_cap(a->cfg);
    /* the tool list is built here, before any service thread shares the registry */
    rc = kmhttp_new(w.base, &ho, &w.http, &err);
    if (rc != KM_OK)
        goto fail;
    rc = start_threads(&w, &err);
    if (rc != KM_OK)
        goto fail;
    if (a->tcp_fd >= 0) {
        rc = kmhttp_listen(w.http, a->tcp_fd, 0, &err);
        if (rc != KM_OK)
            goto fail;
    }
    if (a->unix_fd >= 0) {
        rc = kmhttp_listen(w.http, a->unix_fd, 1, &err);
        if (rc != KM_OK)
            goto fail;
    }
    w.beat = event_new(w.base, -1, EV_PERSIST, on_beat, &w);
    w.sigterm = evsignal_new(w.base, SIGTERM, on_stop, &w);
    w.sigint = evsignal_new(w.base, SIGINT, on_stop, &w);
    if (!w.beat || !w.sigterm || !w.sigint || event_add(w.beat, &second) != 0 ||
        event_add(w.sigterm, NULL) != 0 || event_add(w.sigint, NULL) != 0) {
        rc = kmerr_set(&err, KM_INTERNAL_ERROR, "cannot set up the worker's events");
        goto fail;
    }
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    atomic_store(&a->slot->heartbeat_ms, km_now_ms());
    atomic_store(&a->slot->accepting, 1);
    atomic_store(&a->slot->ready, 1);
    f = json_object_new_object();
    json_object_object_add(f, "generation", json_object_new_int(a->slot->generation));
    json_object_object_add(f, "index", json_object_new_int(a->slot->index));
    json_object_object_add(f, "service_threads", json_object_new_int(w.nthr));
    json_object_object_add(f, "store", json_object_new_string(kmstore_backend(kmsvc_store(w.svc))));
    kmlog(KMLOG_INFO, "worker_started", f);

    /* A request can still arrive on a kept-alive connection in the iteration that saw the
     * last one end; run again until none is left (the grace timer bounds this). */
    for (;;) {
        event_base_dispatch(w.base);
        if (kmhttp_live(w.http) == 0)
            break;
    }
    cleanup(&w);
    kmlog(KMLOG_INFO, "worker_stopped", NULL);
    return 0;

fail:
    kmlogf(KMLOG_ERROR, "worker_start_failed", "%s: %s", kmerr_name(rc), err.msg);
    /* a configuration error stays whatever the master does: say so, and why, so that it stops
     * respawning (the master reads the slot once it has reaped us) */
    if (rc == KM_CONFIG_ERROR)
        km_strlcpy(a->slot->fatal, err.msg, sizeof(a->slot->fatal));
    kmerr_clear(&err);
    /* stop the threads before freeing what they use */
    cleanup(&w);
    return rc == KM_CONFIG_ERROR ? KM_EXIT_CONFIG : 1;
}
