/* svc.h — the service: runs one tool call from validated arguments to the envelope.
 *
 * Owns:    a kmsvc owns its store and borrows the settings and accounts (they must outlive
 *          it). A kmsvc_thread owns its Klaviyo client. Envelopes returned by kmsvc_call are
 *          new objects for the caller.
 * Threads: one kmsvc per process (open it after fork); one kmsvc_thread per service thread.
 *          kmsvc_call is synchronous and may wait seconds on Klaviyo: never call it on an
 *          event-loop thread.
 * Fails:   kmsvc_call never fails: every failure becomes an error envelope, and *status is
 *          the HTTP status of its code.
 *
 * The service knows nothing of HTTP servers or JSON-RPC: transports hand it a tool and
 * arguments and get back {"data","metadata","warnings"} or {"error":{...}}. For a model
 * (KMSHAPE_MODEL) list and series answers are bounded by shape.h's defaults and a success
 * envelope also carries "summary", the Markdown text of summary.h.
 */
#ifndef KM_SVC_H
#define KM_SVC_H

#include "accounts.h"
#include "dates.h"
#include "err.h"
#include "kl.h"
#include "reg.h"
#include "settings.h"
#include "shape.h"
#include "store.h"

#include <json-c/json.h>
#include <stdatomic.h>

typedef struct kmsvc kmsvc;
typedef struct kmsvc_thread kmsvc_thread;

/* What a handler sees of one call. */
typedef struct kmctx {
    const kmcfg            *cfg;
    const kmaccounts       *accounts;
    const struct kmaccount *acct;       /* resolved account; NULL for list_accounts */
    const char             *tz;         /* the account's IANA timezone ("UTC" if unknown) */
    const char             *currency;   /* the account's currency, or NULL */
    kmday                   today;      /* today in tz */
    kmkl                   *kl;
    kmkl_call              *call;       /* cancellation, deadline, progress, warnings */
    int                     has_period; /* set by the handler with period */
    kmrange                 period;     /* echoed as metadata.period */
} kmctx;

/* Progress from a running call: `done` of `total` Klaviyo requests. */
typedef void kmsvc_progress_fn(void *arg, int done, int total);

kmcode kmsvc_open(const kmcfg *cfg, const kmaccounts *accounts, kmsvc **out, kmerr *err);
void kmsvc_close(kmsvc *svc);
kmstore *kmsvc_store(kmsvc *svc);

kmcode kmsvc_thread_new(kmsvc *svc, kmsvc_thread **out, kmerr *err);
void kmsvc_thread_free(kmsvc_thread *th);

/* Run `tool` with `args` (borrowed; validated here). cancelled / progress may be NULL.
 * Returns the envelope; *status receives its HTTP status (200 on success). */
json_object *kmsvc_call(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
                        atomic_bool *cancelled, kmsvc_progress_fn *progress, void *progress_arg,
                        int *status);

/* kmsvc_call for a reader: KMSHAPE_REST is kmsvc_call; KMSHAPE_MODEL applies the model's
 * default limits and adds the envelope's "summary" text. */
json_object *kmsvc_call_view(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
                             kmshape_view view, atomic_bool *cancelled,
                             kmsvc_progress_fn *progress, void *progress_arg, int *status);

/* kmsvc_call_view for a call that arrived at `arrived_ms` (km_now_ms time): its deadline
 * (REQUEST_DEADLINE_SECONDS) and metadata.latency_ms count from then, not from when a thread
 * took it up. Every Klaviyo request of the call may wait for its rate-limit slot as long as
 * the deadline allows; one that cannot get a slot before it is refused (RATE_LIMITED). */
json_object *kmsvc_call_at(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
                           kmshape_view view, int64_t arrived_ms, atomic_bool *cancelled,
                           kmsvc_progress_fn *progress, void *progress_arg, int *status);

/* kmsvc_call_at for a tool that answers from the configuration alone (tool->local: no
 * Klaviyo request, no store, no wait), safe on an event-loop thread: a worker answers
 * klaviyo_list_accounts without waking a service thread. Another tool is INTERNAL_ERROR. */
json_object *kmsvc_call_local(kmsvc *svc, const struct kmtool *tool, json_object *args,
                              kmshape_view view, int64_t arrived_ms, int *status);

/* --- the answer cache (answers.h) ---------------------------------------------------------
 * A finished answer is kept in the store under its call's key, fresh as long as the oldest
 * Klaviyo response it was built from, and an identical call is answered from it without
 * running the tool. kmsvc_call_at reads and writes it; a transport on an event loop can read
 * it first without a service thread: kmsvc_probe_call names the entry (validating the
 * arguments exactly as a call would), the transport reads the entry and the report budget's
 * windows from the store (store_loop.h) and kmsvc_probe_answer turns them into the envelope
 * text. Answers that are never kept: tools without an account, live tools (the budget),
 * answers built on stale or degraded data, and everything when CACHE_TTL_SECONDS is 0. */
typedef struct kmsvc_probe {
    char       *key;            /* the entry's store key; NULL: the call must run */
    char       *canon;          /* the call's canonical text (answers.h) */
    const char *budget[KMTIER_BUDGET_BUCKETS];    /* the account's report budget windows */
    size_t      nbudget;
    kmlimit     budget_lim;
    int         budget_win;
} kmsvc_probe;

/* Look at a call without running it or calling Klaviyo (safe on an event-loop thread).
 * KM_OK: p->key names the entry that may hold its answer, or is NULL when the call must run
 * (nothing to look up yet: e.g. the account's time zone is not known to this process).
 * Another code: the call is refused with err, as kmsvc_call_at would refuse it.
 * Clear p with kmsvc_probe_clear either way. */
kmcode kmsvc_probe_call(kmsvc *svc, const struct kmtool *tool, json_object *args,
                        kmshape_view view, kmsvc_probe *p, kmerr *err);
void kmsvc_probe_clear(kmsvc_probe *p);

/* The envelope text of `entry` (len bytes, read under p->key) for a call that arrived at
 * arrived_ms, with `budget` report calls left (< 0 unknown). NULL when the entry is not p's
 * call (then it is a miss). A new string (free()), *out_len its length. *due (may be NULL)
 * is set when the entry expires within kmsvc_refresh_window: the transport may then have a
 * service thread run kmsvc_refresh for the same call. */
char *kmsvc_probe_answer(kmsvc *svc, const kmsvc_probe *p, const char *entry, size_t len,
                         int budget, int64_t arrived_ms, size_t *out_len, int *due);

/* --- refreshing kept answers ahead of their expiry ------------------------------------------
 * A kept answer that is asked for within the refresh window before it expires
 * (CACHE_REFRESH_AHEAD_SECONDS, at most half of CACHE_TTL_SECONDS) is computed again in the
 * background, so that the callers of a hot answer never wait while it is made again: the
 * refresh runs the tool as a call would, except that it does not read the kept answer and
 * fetches again every Klaviyo response older than the window (else the new answer would
 * expire with the old one). It costs the Klaviyo requests the first caller after the expiry
 * would have made, at most a window sooner; an answer nobody asks for in its last window is
 * not refreshed. What a caller sees does not change: every answer served is fresh. */

/* The refresh window in ms; 0 when answers are never refreshed. */
int64_t kmsvc_refresh_window(const kmsvc *svc);

/* 1 when the last kmsvc_call_at on th was answered from a kept answer in its refresh window
 * (a call whose answer was read on a service thread): the thread may run kmsvc_refresh for
 * the same call once the caller has its answer. */
int kmsvc_thread_due(const kmsvc_thread *th);

/* Bytes of Klaviyo documents th's calls have parsed so far (kmkl_parsed_bytes): the growth
 * across a call says how much garbage it left. */
size_t kmsvc_thread_parsed(const kmsvc_thread *th);

/* What kmsvc_refresh did. */
enum kmsvc_refreshed {
    KMSVC_REFRESH_FAILED = -1,  /* it ran and failed or was cancelled: the marker stays for
                                   the window (a cancelled one gave it back) */
    KMSVC_REFRESH_NOT_OURS = 0, /* not due any more, or another thread, worker or host holds
                                   the marker: nothing ran (ask again soon: a holder that
                                   stops gives the marker back) */
    KMSVC_REFRESH_KEPT = 1      /* a new answer was kept */
};

/* Compute the kept answer of `tool` with `args` (borrowed) for `view` again and keep it. Made
 * once per answer per window across every thread, process and host sharing the store (a
 * marker in the store, left to expire); returns KMSVC_REFRESH_NOT_OURS at once when the answer
 * is no longer due or another one holds the marker. Waits on Klaviyo like a call (never call
 * it on an event-loop thread); `cancelled` (may be NULL) stops it. A failure is logged
 * (answer_refresh_failed) and the kept answer expires as it would have. */
enum kmsvc_refreshed kmsvc_refresh(kmsvc_thread *th, const struct kmtool *tool,
                                   json_object *args, kmshape_view view,
                                   atomic_bool *cancelled);

/* Append a warning string to the call's warnings. */
void kmctx_warn(kmctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
