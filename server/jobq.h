/* jobq.h — the hand-off between a worker's event loop and its service threads.
 *
 * Owns:    a kmjobq owns its locks and eventfd, never a job (a waiting thread's condition
 *          variable is its own, on its stack). A job belongs
 *          to the loop until kmjobq_push, then to the one service thread that pops it until
 *          kmjobq_finish, then to the loop again once kmjobq_take hands back its final note.
 *          Progress notes are made by kmjobq_progress and freed by the loop (free()); a job's
 *          final note is part of the job.
 * Threads: kmjobq_push, kmjobq_take and kmjobq_fd on the loop thread; kmjobq_pop,
 *          kmjobq_pop_idle, kmjobq_progress and kmjobq_finish on service threads;
 *          kmjobq_stop from any thread.
 * Fails:   kmjobq_new returns KM_INTERNAL_ERROR when no eventfd can be made; kmjobq_push
 *          refuses a job (KMJOBQ_FULL) when the queue holds its limit; nothing else fails.
 *
 * Capacity: jobs wait in arrival order; kmjobq_push says when no service thread was idle to
 * take the job (KMJOBQ_NO_IDLE), so the owner can add a thread; threads added that way leave
 * with kmjobq_pop_idle once they have had nothing to do for a while: a job goes to the thread
 * that became idle last, so threads beyond what the load needs stay idle and do leave.
 *
 * Shape (memcached thread.c): the loop pushes onto `todo` (a mutex; each idle service thread
 * sleeps on its own condvar, in a stack of waiters); a service thread appends its notes to `done` and writes the eventfd only when
 * the list was empty; the loop, woken by the eventfd, splices the whole `done` list out under
 * the lock and handles it outside. A job's notes arrive in the order they were posted, so every
 * progress note of a job comes before its final note.
 */
#ifndef KM_JOBQ_H
#define KM_JOBQ_H

#include "err.h"
#include "reg.h"

#include <json-c/json.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/queue.h>

typedef struct kmjobq kmjobq;
struct kmjob;

/* A message from a service thread to the loop: progress of a job, or its end. */
struct kmjob_note {
    struct kmjob *job;
    int           done, total;      /* progress notes: `done` of `total` Klaviyo calls */
    int           final;            /* 1: the job has finished (the job's own note) */
    STAILQ_ENTRY(kmjob_note) link;
};
STAILQ_HEAD(kmjob_notes, kmjob_note);

/* One tool call in flight. */
struct kmjob {
    int64_t              arrived_ms; /* km_now_ms() when the request arrived: its deadline and
                                        latency count from here, not from when a thread took it */
    const struct kmtool *tool;
    json_object         *args;      /* owned; the service thread reads it while it runs */
    json_object         *envelope;  /* the answer, set by the service thread; owned */
    int                  status;    /* its HTTP status (a refresh: enum kmsvc_refreshed) */
    int                  stream;    /* 1: post progress notes for this job */
    int                  view;      /* kmshape_view: KMSHAPE_MODEL bounds it for a model */
    char                 rid[65];   /* request id, tags the service thread's log lines */
    atomic_bool          cancelled; /* set by the loop when the client went away */
    void                *owner;     /* the loop's request context; loop thread only */
    int                  background; /* no client waits on it: a refresh of a kept answer
                                        (refresh.h), run with kmsvc_refresh */
    STAILQ_ENTRY(kmjob)  link;
    struct kmjob_note    final;
};

kmcode kmjobq_new(kmjobq **out, kmerr *err);

/* Free the queue; jobs still on it are not touched (the owner drains it first). NULL ok. */
void kmjobq_free(kmjobq *q);

/* The eventfd the loop watches for readability. */
int kmjobq_fd(const kmjobq *q);

/* At most `max` jobs wait for a thread (0: no limit, the default). */
void kmjobq_set_limit(kmjobq *q, size_t max);

enum kmjobq_push_result {
    KMJOBQ_QUEUED = 0,   /* queued, and a thread was idle to take it */
    KMJOBQ_NO_IDLE,      /* queued; every thread was busy (add one if you can) */
    KMJOBQ_FULL          /* not queued: the limit of waiting jobs is reached */
};

/* Queue a job for the service threads. */
enum kmjobq_push_result kmjobq_push(kmjobq *q, struct kmjob *job);

/* Jobs waiting for a thread now, and threads waiting for a job now. */
size_t kmjobq_waiting(kmjobq *q);
size_t kmjobq_idle(kmjobq *q);

/* Wait for the next job. Returns NULL once kmjobq_stop was called and no job is left. */
struct kmjob *kmjobq_pop(kmjobq *q);

/* kmjobq_pop that gives up after idle_ms with no job: NULL then too (kmjobq_stopping tells
 * the two apart). For threads that should leave when there is no work. */
struct kmjob *kmjobq_pop_idle(kmjobq *q, int64_t idle_ms);

/* 1 once kmjobq_stop was called. */
int kmjobq_stopping(kmjobq *q);

/* Tell waiting and future kmjobq_pop callers to return NULL once the queue is empty. */
void kmjobq_stop(kmjobq *q);

/* Post progress of `job` (a service thread, while it runs the job). */
void kmjobq_progress(kmjobq *q, struct kmjob *job, int done, int total);

/* Post the end of `job`; the job belongs to the loop again from here. */
void kmjobq_finish(kmjobq *q, struct kmjob *job);

/* Move every posted note, in order, onto the tail of `out` and reset the eventfd. */
void kmjobq_take(kmjobq *q, struct kmjob_notes *out);

#endif
