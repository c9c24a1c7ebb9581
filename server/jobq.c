/* jobq.c — the loop ⇄ service-thread queues (see jobq.h). */
#include "jobq.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* A thread waiting for a job, on its own condition variable: a new job wakes the one that
 * became idle last (see pop_until). */
struct waiter {
    pthread_cond_t     cond;
    int                listed;      /* in q->waiters: no job was handed to it yet */
    LIST_ENTRY(waiter) link;
};

struct kmjobq {
    pthread_mutex_t todo_lock;
    pthread_condattr_t cattr;   /* waiters' conditions: timed on the monotonic clock */
    LIST_HEAD(, waiter) waiters; /* the last to become idle first */
    STAILQ_HEAD(, kmjob) todo;
    size_t          ntodo;      /* jobs on todo */
    size_t          max;        /* limit on ntodo; 0 none */
    size_t          idle;       /* threads waiting in pop */
    int             stopping;

    pthread_mutex_t    done_lock;
    struct kmjob_notes done;
    int                efd;
};

kmcode
kmjobq_new(kmjobq **out, kmerr *err)
{
    kmjobq *q = km_xcalloc(1, sizeof(*q));

    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        kmerr_set(err, KM_INTERNAL_ERROR, "eventfd: %s", strerror(errno));
        free(q);
        *out = NULL;
        return KM_INTERNAL_ERROR;
    }
    pthread_mutex_init(&q->todo_lock, NULL);
    /* timed waits measure idleness on the monotonic clock */
    pthread_condattr_init(&q->cattr);
    pthread_condattr_setclock(&q->cattr, CLOCK_MONOTONIC);
    LIST_INIT(&q->waiters);
    STAILQ_INIT(&q->todo);
    pthread_mutex_init(&q->done_lock, NULL);
    STAILQ_INIT(&q->done);
    *out = q;
    return KM_OK;
}

void
kmjobq_free(kmjobq *q)
{
    if (!q)
        return;
    /* progress notes nobody took are ours to free; final notes belong to their jobs */
    for (;;) {
        struct kmjob_note *n = STAILQ_FIRST(&q->done);
        if (!n)
            break;
        STAILQ_REMOVE_HEAD(&q->done, link);
        if (!n->final)
            free(n);
    }
    close(q->efd);
    pthread_mutex_destroy(&q->todo_lock);
    pthread_condattr_destroy(&q->cattr);
    pthread_mutex_destroy(&q->done_lock);
    free(q);
}

int
kmjobq_fd(const kmjobq *q)
{
    return q->efd;
}

void
kmjobq_set_limit(kmjobq *q, size_t max)
{
    pthread_mutex_lock(&q->todo_lock);
    q->max = max;
    pthread_mutex_unlock(&q->todo_lock);
}

/* Hand a job to the thread that became idle last (todo_lock held): the threads a burst added
 * then stay idle while the others keep up, and leave (kmjobq_pop_idle); woken in turn (one
 * condition variable for all), each got a job every few seconds and none ever left. */
static void
wake_one(kmjobq *q)
{
    struct waiter *w = LIST_FIRST(&q->waiters);

    if (!w)
        return;
    LIST_REMOVE(w, link);
    w->listed = 0;
    pthread_cond_signal(&w->cond);
}

enum kmjobq_push_result
kmjobq_push(kmjobq *q, struct kmjob *job)
{
    enum kmjobq_push_result r;

    pthread_mutex_lock(&q->todo_lock);
    if (q->max > 0 && q->ntodo >= q->max) {
        pthread_mutex_unlock(&q->todo_lock);
        return KMJOBQ_FULL;
    }
    STAILQ_INSERT_TAIL(&q->todo, job, link);
    q->ntodo++;
    /* an idle thread takes this job unless jobs already queued use up the idle threads */
    r = q->idle >= q->ntodo ? KMJOBQ_QUEUED : KMJOBQ_NO_IDLE;
    wake_one(q);
    pthread_mutex_unlock(&q->todo_lock);
    return r;
}

size_t
kmjobq_waiting(kmjobq *q)
{
    size_t n;

    pthread_mutex_lock(&q->todo_lock);
    n = q->ntodo;
    pthread_mutex_unlock(&q->todo_lock);
    return n;
}

size_t
kmjobq_idle(kmjobq *q)
{
    size_t n;

    pthread_mutex_lock(&q->todo_lock);
    n = q->idle;
    pthread_mutex_unlock(&q->todo_lock);
    return n;
}

/* Wait for a job until `until` (a CLOCK_MONOTONIC time; NULL: no limit). */
static struct kmjob *
pop_until(kmjobq *q, const struct timespec *until)
{
    struct kmjob *job;
    struct waiter w = { .listed = 0 };

    pthread_cond_init(&w.cond, &q->cattr);
    pthread_mutex_lock(&q->todo_lock);
    q->idle++;
    while (STAILQ_EMPTY(&q->todo) && !q->stopping) {
        /* (again, when another thread took the job it was woken for) */
        if (!w.listed) {
            LIST_INSERT_HEAD(&q->waiters, &w, link);
            w.listed = 1;
        }
        if (!until) {
            pthread_cond_wait(&w.cond, &q->todo_lock);
        } else if (pthread_cond_timedwait(&w.cond, &q->todo_lock, until) == ETIMEDOUT) {
            break;
        }
    }
    if (w.listed)
        LIST_REMOVE(&w, link);
    q->idle--;
    job = STAILQ_FIRST(&q->todo);
    if (job) {
        STAILQ_REMOVE_HEAD(&q->todo, link);
        q->ntodo--;
    }
    pthread_mutex_unlock(&q->todo_lock);
    pthread_cond_destroy(&w.cond);
    return job;
}

struct kmjob *
kmjobq_pop(kmjobq *q)
{
    return pop_until(q, NULL);
}

struct kmjob *
kmjobq_pop_idle(kmjobq *q, int64_t idle_ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(idle_ms / 1000);
    until.tv_nsec += (long)(idle_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pop_until(q, &until);
}

int
kmjobq_stopping(kmjobq *q)
{
    int s;

    pthread_mutex_lock(&q->todo_lock);
    s = q->stopping;
    pthread_mutex_unlock(&q->todo_lock);
    return s;
}

void
kmjobq_stop(kmjobq *q)
{
    pthread_mutex_lock(&q->todo_lock);
    q->stopping = 1;
    while (!LIST_EMPTY(&q->waiters))
        wake_one(q);
    pthread_mutex_unlock(&q->todo_lock);
}

/* Append a note; wake the loop only when the list was empty: a non-empty list means a wake-up
 * is already on its way and the loop will take this note with the others. */
static void
post(kmjobq *q, struct kmjob_note *n)
{
    int      was_empty;
    uint64_t one = 1;

    pthread_mutex_lock(&q->done_lock);
    was_empty = STAILQ_EMPTY(&q->done);
    STAILQ_INSERT_TAIL(&q->done, n, link);
    pthread_mutex_unlock(&q->done_lock);
    if (was_empty && write(q->efd, &one, sizeof(one)) < 0) {
        /* EAGAIN only when the counter is saturated: the loop is already woken */
    }
}

void
kmjobq_progress(kmjobq *q, struct kmjob *job, int done, int total)
{
    struct kmjob_note *n = km_xcalloc(1, sizeof(*n));

    n->job = job;
    n->done = done;
    n->total = total;
    post(q, n);
}

void
kmjobq_finish(kmjobq *q, struct kmjob *job)
{
    memset(&job->final, 0, sizeof(job->final));
    job->final.job = job;
    job->final.final = 1;
    post(q, &job->final);
}

void
kmjobq_take(kmjobq *q, struct kmjob_notes *out)
{
    uint64_t count;

    /* Reset the eventfd before splicing: a note posted after the splice finds the list empty
     * and writes the eventfd again, so no note is ever left without a wake-up. */
    if (read(q->efd, &count, sizeof(count)) < 0) {
        /* EAGAIN: nothing was signalled; the list may still hold notes */
    }
    pthread_mutex_lock(&q->done_lock);
    STAILQ_CONCAT(out, &q->done);
    pthread_mutex_unlock(&q->done_lock);
}
