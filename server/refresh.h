/* refresh.h — a worker's refreshes of kept answers: when the loop serves a kept answer close
 * to its expiry (kmsvc_probe_answer says it is due), a background job computes it again on a
 * service thread (kmsvc_refresh), so that callers of a hot answer are never the ones who wait
 * for it to be made again.
 *
 * Owns:    a kmrefresh borrows its job queue (which outlives it) and owns every refresh job it
 *          made, from kmrefresh_ask until kmrefresh_done hands it back (or kmrefresh_free).
 *          kmrefresh_ask borrows `args` and queues its own copy.
 * Threads: the loop thread only (the service thread sees the job, struct kmjob, as any job).
 * Fails:   never: a refresh that cannot be queued now is not made (the answer then expires as
 *          it would have, and the next caller computes it).
 *
 * The loop may see a due answer thousands of times a second; a refresh is asked of the
 * service threads once per answer per window on this worker (a map of keys asked, each
 * forgotten when its window ends), and kmsvc_refresh makes it once per window across every
 * worker and host (a marker in the store). When another held the marker, the key is asked
 * again a second later (a holder that stops, a worker a reload replaces, gives it back). A refresh never takes more than half of the room
 * the queue leaves for calls (QUEUE_MAX).
 */
#ifndef KM_REFRESH_H
#define KM_REFRESH_H

#include "jobq.h"

#include <json-c/json.h>
#include <stdint.h>

typedef struct kmrefresh kmrefresh;

/* queue_max is the queue's limit (kmjobq_set_limit). A refresh never adds a service thread
 * (as a call does when none is idle): background work runs on the capacity calls leave. */
kmrefresh *kmrefresh_new(kmjobq *q, size_t queue_max);

/* Free what is left: refresh jobs handed back but not yet taken (call it once the service
 * threads have stopped and their notes were taken). NULL is fine. */
void kmrefresh_free(kmrefresh *rf);

/* Refresh the answer under `key` (the store key of the kept answer): `tool` with `args` for
 * `view`, tagged with request id `rid` in the log. Nothing is queued when this key was asked
 * for less than window_ms ago, or while draining. 1 when a job was queued. */
int kmrefresh_ask(kmrefresh *rf, const char *key, const struct kmtool *tool, json_object *args,
                  int view, const char *rid, int64_t window_ms);

/* A job the service threads handed back: 1 when it is a refresh (then freed here), 0 when
 * it is not one of ours. */
int kmrefresh_done(kmrefresh *rf, struct kmjob *job);

/* The worker drains: cancel every refresh queued or running, and ask for no more. */
void kmrefresh_stop(kmrefresh *rf);

#endif
