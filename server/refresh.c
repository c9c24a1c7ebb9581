/* refresh.c — background refreshes of kept answers (see refresh.h). */
#include "refresh.h"
#include "svc.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define ASKED_TRIM 1024     /* past this many keys, forget those whose window has ended */
#define ASKED_MAX  8192     /* past this many still in their window, ask nothing more */
#define REASK_MS   1000     /* a refresh another holds: ask again this soon, not a window on */

struct rjob {
    struct kmjob     job;   /* job.owner is the kmrefresh */
    char            *key;   /* the kept answer's key */
    LIST_ENTRY(rjob) link;
};

struct kmrefresh {
    kmjobq      *q;
    size_t       queue_max;
    json_object *asked;     /* key -> km_now_ms until which it is not asked again */
    LIST_HEAD(, rjob) jobs;
    int          stopped;
};

kmrefresh *
kmrefresh_new(kmjobq *q, size_t queue_max)
{
    kmrefresh *rf = km_xcalloc(1, sizeof(*rf));

    rf->q = q;
    rf->queue_max = queue_max;
    rf->asked = json_object_new_object();
    LIST_INIT(&rf->jobs);
    return rf;
}

static void
rjob_free(struct rjob *j)
{
    json_object_put(j->job.args);
    json_object_put(j->job.envelope);
    free(j->key);
    free(j);
}

void
kmrefresh_free(kmrefresh *rf)
{
    struct rjob *j;

    if (!rf)
        return;
    while ((j = LIST_FIRST(&rf->jobs)) != NULL) {
        LIST_REMOVE(j, link);
        rjob_free(j);
    }
    json_object_put(rf->asked);
    free(rf);
}

/* Forget the keys whose window has ended. */
static void
trim(kmrefresh *rf, int64_t now)
{
    size_t       n = (size_t)json_object_object_length(rf->asked), k = 0;
    const char **gone = km_xcalloc(n + 1, sizeof(*gone));

    json_object_object_foreach(rf->asked, key, until) {
        if (json_object_get_int64(until) <= now)
            gone[k++] = key;
    }
    /* the keys belong to the map: delete them only after the walk */
    for (size_t i = 0; i < k; i++) {
        char *copy = km_xstrdup(gone[i]);

        json_object_object_del(rf->asked, copy);
        free(copy);
    }
    free(gone);
}

int
kmrefresh_ask(kmrefresh *rf, const char *key, const struct kmtool *tool, json_object *args,
              int view, const char *rid, int64_t window_ms)
{
    int64_t      now = km_now_ms();
    json_object *until;
    struct rjob *j;
    size_t       limit = rf->queue_max / 2;

    if (rf->stopped || !key || window_ms <= 0)
        return 0;
    if (json_object_object_get_ex(rf->asked, key, &until) &&
        json_object_get_int64(until) > now)
        return 0;
    if ((size_t)json_object_object_length(rf->asked) >= ASKED_TRIM)
        trim(rf, now);
    if ((size_t)json_object_object_length(rf->asked) >= ASKED_MAX)
        return 0;
    /* calls come first: a refresh takes at most half of the queue's room */
    if (rf->queue_max > 0 && kmjobq_waiting(rf->q) >= limit)
        return 0;

    j = km_xcalloc(1, sizeof(*j));
    /* a deep copy: the service thread reads it while the loop may drop the request's */
    if (json_object_deep_copy(args, &j->job.args, NULL) != 0) {
        json_object_put(j->job.args);
        free(j);
        return 0;
    }
    j->key = km_xstrdup(key);
    j->job.status = KMSVC_REFRESH_FAILED;  /* until a service thread says what it did */
    j->job.arrived_ms = now;
    j->job.tool = tool;
    j->job.view = view;
    j->job.owner = rf;
    j->job.background = 1;
    atomic_init(&j->job.cancelled, false);
    km_strlcpy(j->job.rid, rid ? rid : "", sizeof(j->job.rid));
    /* no idle thread (KMJOBQ_NO_IDLE): it waits for one; only calls add threads */
    if (kmjobq_push(rf->q, &j->job) == KMJOBQ_FULL) {
        rjob_free(j);
        return 0;           /* not asked: the next hit may try again */
    }
    LIST_INSERT_HEAD(&rf->jobs, j, link);
    json_object_object_add(rf->asked, key, json_object_new_int64(now + window_ms));
    return 1;
}

int
kmrefresh_done(kmrefresh *rf, struct kmjob *job)
{
    struct rjob *j = (struct rjob *)job;

    if (!rf || !job->background || job->owner != rf)
        return 0;
    /* Another held the marker. Most often a peer is making it; but a worker that a reload
     * replaces gives the marker of the refresh it was making back when it stops, and the next
     * generation asked while it still held it: asked again only a window later, the answer
     * would expire unrefreshed and every caller of it would wait for its recomputation. */
    if (job->status == KMSVC_REFRESH_NOT_OURS && !rf->stopped)
        json_object_object_add(rf->asked, j->key, json_object_new_int64(km_now_ms() + REASK_MS));
    LIST_REMOVE(j, link);
    rjob_free(j);
    return 1;
}

void
kmrefresh_stop(kmrefresh *rf)
{
    struct rjob *j;

    if (!rf)
        return;
    rf->stopped = 1;
    LIST_FOREACH(j, &rf->jobs, link)
        atomic_store(&j->job.cancelled, true);
}
