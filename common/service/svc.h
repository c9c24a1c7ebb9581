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

/* Append a warning string to the call's warnings. */
void kmctx_warn(kmctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
