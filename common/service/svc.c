/* svc.c — one tool call from arguments to envelope. */
#include "svc.h"
#include "answers.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "summary.h"
#include "util.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEMO_WARNING                                                                          \
    "Demo data: this answer comes from the bundled Klaviyo simulator, not a real Klaviyo "   \
    "account."

/* What GET /api/accounts says of an account; fetched once per process. */
struct acct_info {
    int  known;
    char tz[65];
    char currency[8];
};

/* Where an account's report budget is read (kmtier_budget_buckets), made once. */
struct acct_budget {
    char    names[KMTIER_BUDGET_BUCKETS][KMTIER_BUCKET_MAX];
    kmlimit lim;
    int     win;
};

struct kmsvc {
    const kmcfg        *cfg;
    const kmaccounts   *accounts;
    kmstore            *store;
    pthread_mutex_t     lock;       /* guards info[] and shared_ms[] */
    struct acct_info   *info;       /* one per account, same order as the manifest */
    int64_t            *shared_ms;  /* one per account: km_now_ms when the store's copy of
                                       info[i] was written, as far as this worker knows */
    struct acct_budget *budget;     /* one per account, same order; immutable */
};

struct kmsvc_thread {
    kmsvc *svc;
    kmkl  *kl;
    int    due;     /* its last call was answered from a kept answer due for a refresh */
};

/* The marker of an answer's refresh in the store: "r:" and the answer's key. */
#define REFRESH_MARK "r:"

static int shared_info(kmsvc *svc, const struct kmaccount *acct, struct acct_info *out,
                       int64_t *written_ms);

kmcode
kmsvc_open(const kmcfg *cfg, const kmaccounts *accounts, kmsvc **out, kmerr *err)
{
    kmsvc       *svc = km_xcalloc(1, sizeof(*svc));
    kmstore_opts so = { 0 };
    kmcode       rc;

    svc->cfg = cfg;
    svc->accounts = accounts;
    pthread_mutex_init(&svc->lock, NULL);
    svc->info = km_xcalloc(kmacct_count(accounts) + 1, sizeof(*svc->info));
    svc->shared_ms = km_xcalloc(kmacct_count(accounts) + 1, sizeof(*svc->shared_ms));
    svc->budget = km_xcalloc(kmacct_count(accounts) + 1, sizeof(*svc->budget));
    for (size_t i = 0; i < kmacct_count(accounts); i++) {
        struct acct_budget *b = &svc->budget[i];

        kmtier_budget_buckets(kmacct_at(accounts, i)->name, b->names, &b->lim, &b->win);
    }
    so.redis_url = cfg->redis_url;
    so.dir = cfg->store_dir;
    so.max_bytes = (size_t)cfg->cache_max_mb * 1024 * 1024;
    so.stale_grace_s = cfg->stale_grace_s;
    rc = kmstore_open(&so, &svc->store, err);
    if (rc != KM_OK) {
        kmsvc_close(svc);
        svc = NULL;
    } else {
        /* what other workers already learned: a worker started by a reload answers dated
         * calls from the answer cache on its loop at once, not after a first call per account
         * on a service thread */
        for (size_t i = 0; i < kmacct_count(accounts); i++)
            shared_info(svc, kmacct_at(accounts, i), &svc->info[i], &svc->shared_ms[i]);
    }
    *out = svc;
    return rc;
}

void
kmsvc_close(kmsvc *svc)
{
    if (!svc)
        return;
    kmstore_close(svc->store);
    pthread_mutex_destroy(&svc->lock);
    free(svc->info);
    free(svc->shared_ms);
    free(svc->budget);
    free(svc);
}

kmstore *
kmsvc_store(kmsvc *svc)
{
    return svc->store;
}

kmcode
kmsvc_thread_new(kmsvc *svc, kmsvc_thread **out, kmerr *err)
{
    kmsvc_thread *th = km_xcalloc(1, sizeof(*th));
    kmcode        rc;

    th->svc = svc;
    rc = kmkl_new(svc->cfg, svc->store, &th->kl, err);
    if (rc != KM_OK) {
        free(th);
        th = NULL;
    }
    *out = th;
    return rc;
}

void
kmsvc_thread_free(kmsvc_thread *th)
{
    if (!th)
        return;
    kmkl_free(th->kl);
    free(th);
}

void
kmctx_warn(kmctx *ctx, const char *fmt, ...)
{
    va_list ap;
    char    msg[512];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_object_array_add(ctx->call->warnings, json_object_new_string(msg));
}

static size_t
account_index(const kmsvc *svc, const struct kmaccount *acct)
{
    for (size_t i = 0; i < kmacct_count(svc->accounts); i++) {
        if (kmacct_at(svc->accounts, i) == acct)
            return i;
    }
    return 0;
}

/* What one worker learned of an account, for the others (and other hosts): its time zone and
 * currency under "i:<account>" in the store, kept as long as a Klaviyo response, and written
 * again by the workers that use it every half of that (account_info), so that a worker a
 * reload starts finds it as long as the service is in use (when it expired, each new worker
 * sent every dated call to its service threads until one of them had asked Klaviyo: a soak saw
 * a new worker add ten threads in its first second). *written_ms: when it was written. */
static int
shared_info(kmsvc *svc, const struct kmaccount *acct, struct acct_info *out,
            int64_t *written_ms)
{
    char        *key = km_xasprintf("i:%s", acct->name), *body = NULL;
    size_t       len = 0;
    int64_t      age = 0;
    int          fresh = 0, ok = 0;
    kmerr        e = { 0 };
    json_object *o = NULL;
    const char  *tz, *cur;

    if (svc->cfg->cache_ttl_s > 0 &&
        kmstore_cache_get(svc->store, key, &body, &len, &age, &fresh, &e) == KM_OK && fresh &&
        kmjson_parse(body, len, KM_INTERNAL_ERROR, &o, NULL) == KM_OK) {
        tz = kmjson_str(o, "tz");
        cur = kmjson_str(o, "currency");
        if (tz && kmdate_tz_valid(tz) && strlen(tz) < sizeof(out->tz) &&
            (!cur || strlen(cur) < sizeof(out->currency))) {
            memset(out, 0, sizeof(*out));
            km_strlcpy(out->tz, tz, sizeof(out->tz));
            if (cur)
                km_strlcpy(out->currency, cur, sizeof(out->currency));
            out->known = ok = 1;
            *written_ms = km_now_ms() - age;
        }
    }
    json_object_put(o);
    kmerr_clear(&e);
    free(body);
    free(key);
    return ok;
}

static void
share_info(kmsvc *svc, const struct kmaccount *acct, const struct acct_info *info)
{
    char        *key;
    json_object *o;
    const char  *text;
    kmerr        e = { 0 };

    if (svc->cfg->cache_ttl_s <= 0)
        return;
    key = km_xasprintf("i:%s", acct->name);
    o = json_object_new_object();
    json_object_object_add(o, "tz", json_object_new_string(info->tz));
    if (info->currency[0])
        json_object_object_add(o, "currency", json_object_new_string(info->currency));
    text = kmjson_text(o);
    kmstore_cache_put(svc->store, key, text, strlen(text), svc->cfg->cache_ttl_s, &e);
    kmerr_clear(&e);
    json_object_put(o);
    free(key);
}

/* The account's timezone and currency from GET /api/accounts, fetched once per process (or
 * learned from another worker through the store). */
static kmcode
account_info(kmsvc_thread *th, kmctx *ctx, struct acct_info *out, kmerr *err)
{
    kmsvc       *svc = th->svc;
    size_t       i = account_index(svc, ctx->acct);
    int64_t      now = km_now_ms(), half = (int64_t)svc->cfg->cache_ttl_s * 1000 / 2, written = 0;
    int          renew = 0;
    json_object *doc = NULL, *attrs;
    const char  *tz, *cur;
    kmcode       rc;

    pthread_mutex_lock(&svc->lock);
    *out = svc->info[i];
    if (out->known && half > 0 && now - svc->shared_ms[i] >= half) {
        svc->shared_ms[i] = now;    /* this thread writes it; the others need not */
        renew = 1;
    }
    pthread_mutex_unlock(&svc->lock);
    if (renew)
        share_info(svc, ctx->acct, out);
    if (out->known)
        return KM_OK;
    if (shared_info(svc, ctx->acct, out, &written)) {
        pthread_mutex_lock(&svc->lock);
        svc->info[i] = *out;
        svc->shared_ms[i] = written;
        pthread_mutex_unlock(&svc->lock);
        return KM_OK;
    }

    rc = kmkl_get(th->kl, ctx->call, "/api/accounts/", &doc, err);
    if (rc != KM_OK)
        return rc;
    attrs = kmjson_path(json_object_array_get_idx(kmjson_get(doc, "data"), 0), "attributes",
                        NULL);
    tz = kmjson_str(attrs, "timezone");
    cur = kmjson_str(attrs, "preferred_currency");
    memset(out, 0, sizeof(*out));
    if (tz && kmdate_tz_valid(tz)) {
        km_strlcpy(out->tz, tz, sizeof(out->tz));
    } else {
        km_strlcpy(out->tz, "UTC", sizeof(out->tz));
        kmlogf(KMLOG_WARN, "account_timezone_unknown",
               "account '%s' reports timezone '%.64s' which this system does not know; using UTC",
               ctx->acct->name, tz ? tz : "(none)");
    }
    if (cur)
        km_strlcpy(out->currency, cur, sizeof(out->currency));
    out->known = 1;
    json_object_put(doc);
    share_info(svc, ctx->acct, out);
    pthread_mutex_lock(&svc->lock);
    svc->info[i] = *out;
    svc->shared_ms[i] = km_now_ms();
    pthread_mutex_unlock(&svc->lock);
    return KM_OK;
}

static json_object *
period_json(const kmrange *r)
{
    json_object *p = json_object_new_object();
    char         buf[11];

    kmdate_format(r->start, buf);
    json_object_object_add(p, "start_date", json_object_new_string(buf));
    kmdate_format(r->end, buf);
    json_object_object_add(p, "end_date", json_object_new_string(buf));
    return p;
}

static json_object *
error_envelope(kmerr *err, json_object *warnings, int *status)
{
    json_object *env = kmerr_envelope(err);

    *status = kmerr_http_status(err->code == KM_OK ? KM_INTERNAL_ERROR : err->code);
    /* Warnings gathered before the failure (stale data, degraded store) still matter. */
    if (warnings && json_object_array_length(warnings) > 0)
        json_object_object_add(kmjson_get(env, "error"), "warnings", json_object_get(warnings));
    return env;
}

json_object *
kmsvc_call(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
           atomic_bool *cancelled, kmsvc_progress_fn *progress, void *progress_arg, int *status)
{
    return kmsvc_call_view(th, tool, args, KMSHAPE_REST, cancelled, progress, progress_arg,
                           status);
}

json_object *
kmsvc_call_view(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
                kmshape_view view, atomic_bool *cancelled, kmsvc_progress_fn *progress,
                void *progress_arg, int *status)
{
    return kmsvc_call_at(th, tool, args, view, km_now_ms(), cancelled, progress, progress_arg,
                         status);
}

/* The checks every call passes before anything runs (no Klaviyo request, no lock held
 * long): arguments, shaping options, the account and the form of the window. */
static kmcode
check_call(kmsvc *svc, const struct kmtool *tool, json_object *args,
           const struct kmaccount **acct, kmerr *err)
{
    json_object *account_arg;
    kmcode       rc;

    *acct = NULL;
    rc = kmreg_validate(tool, args, err);
    if (rc == KM_OK)
        rc = kmshape_check(tool->shape, args, err);
    if (rc != KM_OK)
        return rc;
    if (tool->needs_account) {
        account_arg = kmjson_get(args, "account");
        rc = kmacct_resolve(svc->accounts, account_arg ? json_object_get_string(account_arg)
                                                       : NULL, acct, err);
        if (rc != KM_OK)
            return rc;
    }
    if (tool->date_scoped) {
        kmrange probe;
        /* A bad window costs no Klaviyo call: check it before the account lookup (presets
         * resolve against any day here; the real day comes from the account's timezone). */
        rc = kmdate_window(kmjson_str(args, "timeframe"), kmjson_str(args, "start_date"),
                           kmjson_str(args, "end_date"), 0, &probe, err);
        if (rc != KM_OK)
            return rc;
    }
    return KM_OK;
}

int64_t
kmsvc_refresh_window(const kmsvc *svc)
{
    int64_t ahead = (int64_t)svc->cfg->refresh_ahead_s * 1000;
    int64_t half = (int64_t)svc->cfg->cache_ttl_s * 1000 / 2;

    /* at most half the time-to-live: a refreshed answer is never due again at once */
    return ahead < half ? ahead : half;
}

/* Whether a kept answer is close enough to its expiry to be computed again. */
static int
refresh_due(const kmsvc *svc, const kmans_entry *e)
{
    int64_t win = kmsvc_refresh_window(svc);

    return win > 0 && e->expires_ms > 0 && e->expires_ms - km_wall_ms() <= win;
}

/* Whether answers of `tool` are kept at all. */
static int
keeps_answers(const kmsvc *svc, const struct kmtool *tool)
{
    return svc->cfg->cache_ttl_s > 0 && tool->needs_account && !tool->live;
}

/* The canonical text and key of a call on `today` in its account's zone: 0 when the window
 * does not resolve (the call then runs and says why). */
static int
answer_key(kmsvc *svc, const struct kmtool *tool, json_object *args, kmshape_view view,
           const struct kmaccount *acct, kmday today, char **canon, char **key)
{
    kmrange win;
    kmerr   e = { 0 };

    *canon = *key = NULL;
    if (tool->date_scoped &&
        kmdate_window(kmjson_str(args, "timeframe"), kmjson_str(args, "start_date"),
                      kmjson_str(args, "end_date"), today, &win, &e) != KM_OK) {
        kmerr_clear(&e);
        return 0;
    }
    *canon = kmans_canon(tool, args, view == KMSHAPE_MODEL, acct->name, today,
                         tool->date_scoped ? &win : NULL, svc->cfg->klaviyo_revision,
                         svc->cfg->demo);
    *key = kmans_key(*canon);
    return 1;
}

kmcode
kmsvc_probe_call(kmsvc *svc, const struct kmtool *tool, json_object *args, kmshape_view view,
                 kmsvc_probe *p, kmerr *err)
{
    const struct kmaccount *acct;
    struct acct_info        info;
    const char             *tz = "UTC";
    kmday                   today;
    kmerr                   e = { 0 };
    size_t                  i;
    kmcode                  rc;

    memset(p, 0, sizeof(*p));
    rc = check_call(svc, tool, args, &acct, err);
    if (rc != KM_OK || !keeps_answers(svc, tool))
        return rc;
    i = account_index(svc, acct);
    if (tool->date_scoped) {
        pthread_mutex_lock(&svc->lock);
        info = svc->info[i];
        pthread_mutex_unlock(&svc->lock);
        if (!info.known)
            return KM_OK;   /* a service thread learns the zone on the first call */
        tz = info.tz;
    }
    if (kmdate_today(tz, time(NULL), &today, &e) != KM_OK) {
        kmerr_clear(&e);
        return KM_OK;
    }
    if (!answer_key(svc, tool, args, view, acct, today, &p->canon, &p->key))
        return KM_OK;
    for (p->nbudget = 0; p->nbudget < KMTIER_BUDGET_BUCKETS; p->nbudget++)
        p->budget[p->nbudget] = svc->budget[i].names[p->nbudget];
    p->budget_lim = svc->budget[i].lim;
    p->budget_win = svc->budget[i].win;
    return KM_OK;
}

void
kmsvc_probe_clear(kmsvc_probe *p)
{
    free(p->key);
    free(p->canon);
    memset(p, 0, sizeof(*p));
}

char *
kmsvc_probe_answer(kmsvc *svc, const kmsvc_probe *p, const char *entry, size_t len, int budget,
                   int64_t arrived_ms, size_t *out_len, int *due)
{
    kmans_entry e;
    char       *text;

    if (due)
        *due = 0;
    if (!p->canon || !kmans_parse(entry, len, p->canon, &e))
        return NULL;
    if (due)
        *due = refresh_due(svc, &e);
    text = kmans_render(&e, svc->cfg->klaviyo_revision, (double)(km_now_ms() - arrived_ms),
                        budget, out_len);
    kmans_entry_clear(&e);
    kmmet_answer_cache(1);
    return text;
}

/* The kept answer of a call, read on this thread: the envelope, or NULL. */
static json_object *
kept_answer(kmsvc_thread *th, const char *canon, const char *key, const struct kmaccount *acct,
            int64_t arrived_ms)
{
    kmsvc       *svc = th->svc;
    char        *body = NULL, *text;
    size_t       len = 0, tlen = 0;
    int64_t      age = 0, reset = 0;
    int          fresh = 0, budget = -1;
    kmerr        e = { 0 };
    kmans_entry  ent;
    json_object *env = NULL;

    if (kmstore_cache_get(svc->store, key, &body, &len, &age, &fresh, &e) != KM_OK || !fresh ||
        !kmans_parse(body, len, canon, &ent))
        goto out;
    if (kmkl_report_budget(th->kl, acct, &budget, &reset, &e) != KM_OK)
        budget = -1;
    th->due = refresh_due(svc, &ent);
    text = kmans_render(&ent, svc->cfg->klaviyo_revision, (double)(km_now_ms() - arrived_ms),
                        budget, &tlen);
    kmans_entry_clear(&ent);
    if (kmjson_parse(text, tlen, KM_INTERNAL_ERROR, &env, NULL) != KM_OK)
        env = NULL;
    free(text);
    if (env)
        kmmet_answer_cache(1);
out:
    kmerr_clear(&e);
    free(body);
    return env;
}

/* Keep a finished answer for as long as the oldest Klaviyo response it stands on is fresh:
 * 1 when it was kept. */
static int
keep_answer(kmsvc *svc, const char *canon, const char *key, json_object *env,
            const kmkl_call *call)
{
    int64_t ttl_ms = (int64_t)svc->cfg->cache_ttl_s * 1000 - call->oldest_ms;
    int     ttl_s = (int)(ttl_ms / 1000), kept = 0;
    size_t  len;
    char   *entry;
    kmerr   e = { 0 };

    if (call->degraded || ttl_ms < 1000)
        return 0;
    /* the store keeps it ttl_s whole seconds: it stops being fresh then */
    entry = kmans_pack(canon, env, call->calls_done + call->cache_hits,
                       km_wall_ms() + (int64_t)ttl_s * 1000, &len);
    if (kmstore_cache_put(svc->store, key, entry, len, ttl_s, &e) == KM_OK)
        kept = 1;
    else if (e.code != KM_PAYLOAD_TOO_LARGE)
        kmlogf(KMLOG_WARN, "answer_cache_unavailable", "keeping an answer failed: %s", e.msg);
    kmerr_clear(&e);
    free(entry);
    return kept;
}

/* Whether this thread should compute the answer under key again now: it is still due (no
 * one refreshed it meanwhile) and this thread holds its refresh marker, which nobody else
 * can take for the rest of the window (the marker is left to expire, done or failed, so that
 * a failing refresh is tried once per window, not once per caller; a refresh cancelled
 * because its worker stops gives it back, release_refresh). The marker's name (free()), or
 * NULL when this thread is not to refresh. */
static char *
claim_refresh(kmsvc *svc, const char *canon, const char *key)
{
    char       *body = NULL, *mark;
    size_t      len = 0;
    int64_t     age = 0;
    int         fresh = 0, acquired = 0, still = 1;
    kmans_entry ent;
    kmerr       e = { 0 };

    if (kmstore_cache_get(svc->store, key, &body, &len, &age, &fresh, &e) == KM_OK && fresh &&
        kmans_parse(body, len, canon, &ent)) {
        still = refresh_due(svc, &ent);
        kmans_entry_clear(&ent);
    }
    free(body);
    kmerr_clear(&e);
    if (!still)
        return NULL;
    mark = km_xasprintf(REFRESH_MARK "%s", key);
    if (kmstore_lock(svc->store, mark, (int)kmsvc_refresh_window(svc), &acquired, &e) != KM_OK) {
        kmlogf(KMLOG_WARN, "answer_refresh_unavailable", "the refresh marker failed: %s",
               e.msg);
        acquired = 0;
    }
    kmerr_clear(&e);
    if (!acquired) {
        free(mark);
        mark = NULL;
    }
    return mark;
}

/* A refresh cancelled by its worker's stop gives its marker back, so that a worker that goes
 * on serving (the next generation, after a reload) can make it before the answer expires. */
static void
release_refresh(kmsvc *svc, const char *mark, const kmerr *err)
{
    kmerr e = { 0 };

    if (!mark || err->code != KM_CANCELLED)
        return;
    if (kmstore_unlock(svc->store, mark, &e) != KM_OK)
        kmlogf(KMLOG_WARN, "answer_refresh_unavailable", "giving back the refresh marker "
               "failed (it expires with the window): %s", e.msg);
    kmerr_clear(&e);
}

/* The envelope of a call whose tool computed `data` (taken) for ctx, its shaping described
 * by `shaped`: data, metadata, warnings (ctx->call's, taken) and, for a model, the summary.
 * `kl` reads the report budget of an account-scoped call (NULL: a call without account). */
static json_object *
success_envelope(kmsvc *svc, kmkl *kl, const struct kmtool *tool, kmshape_view view,
                 kmctx *ctx, json_object *data, const struct kmshape_info *shaped, int64_t t0)
{
    const kmcfg *cfg = svc->cfg;
    kmkl_call   *call = ctx->call;
    json_object *meta = json_object_new_object(), *env;

    if (cfg->demo)
        json_object_array_add(call->warnings, json_object_new_string(DEMO_WARNING));
    json_object_object_add(meta, "account",
                           ctx->acct ? json_object_new_string(ctx->acct->name) : NULL);
    json_object_object_add(meta, "period", ctx->has_period ? period_json(&ctx->period) : NULL);
    json_object_object_add(meta, "revision", json_object_new_string(cfg->klaviyo_revision));
    json_object_object_add(meta, "latency_ms",
                           kmjson_double(kmjson_round((double)(km_now_ms() - t0), 1)));
    if (ctx->acct) {
        int     remaining = -1;
        int64_t reset_ms = 0;
        kmerr   berr = { 0 };
        if (ctx->currency)
            json_object_object_add(meta, "currency", json_object_new_string(ctx->currency));
        if (kl && kmkl_report_budget(kl, ctx->acct, &remaining, &reset_ms, &berr) == KM_OK)
            json_object_object_add(meta, "report_budget_remaining",
                                   json_object_new_int(remaining));
        kmerr_clear(&berr);
        json_object_object_add(meta, "klaviyo_calls", json_object_new_int(call->calls_done));
        json_object_object_add(meta, "cache_hits", json_object_new_int(call->cache_hits));
    }
    env = json_object_new_object();
    json_object_object_add(env, "data", data);
    json_object_object_add(env, "metadata", meta);
    json_object_object_add(env, "warnings", call->warnings);
    if (view == KMSHAPE_MODEL) {
        char *text = kmsummary_render(tool, env, shaped);
        json_object_object_add(env, "summary", json_object_new_string(text));
        free(text);
    }
    return env;
}

/* The error envelope of a call that failed with err; what it had made (data, shaping, its
 * warnings, err's message) is released. */
static json_object *
failed_call(kmerr *err, kmkl_call *call, json_object *data, struct kmshape_info *shaped,
            int *status)
{
    json_object *env;

    kmshape_info_clear(shaped);
    json_object_put(data);
    env = error_envelope(err, call->warnings, status);
    json_object_put(call->warnings);
    kmerr_clear(err);
    return env;
}

enum call_mode {
    CALL_ANSWER,        /* a caller's: a kept answer serves it */
    CALL_REFRESH        /* kmsvc_refresh: compute the kept answer again (claim_refresh) */
};

/* One call (kmsvc_call_at) or one refresh (kmsvc_refresh: NULL when it is not this thread's
 * to make). *kept says whether the answer was kept in the answer cache. */
static json_object *
run_call(kmsvc_thread *th, const struct kmtool *tool, json_object *args, kmshape_view view,
         int64_t arrived_ms, atomic_bool *cancelled, kmsvc_progress_fn *progress,
         void *progress_arg, int *status, enum call_mode mode, int *kept)
{
    kmsvc           *svc = th->svc;
    const kmcfg     *cfg = svc->cfg;
    int64_t          t0 = arrived_ms;
    kmerr            err = { 0 };
    kmkl_call        call = { 0 };
    kmctx            ctx = { 0 };
    struct acct_info info = { 0 };
    struct kmshape_info shaped = { 0 };
    json_object     *data = NULL, *env = NULL;
    char            *canon = NULL, *key = NULL, *mark = NULL;
    kmcode           rc;

    th->due = 0;
    *kept = 0;
    call.warnings = json_object_new_array();
    call.cancelled = cancelled;
    call.progress = progress;
    call.progress_arg = progress_arg;
    call.deadline_ms = t0 + (int64_t)cfg->request_deadline_s * 1000;
    /* the same moment on the wall clock, which every worker and host shares */
    call.arrived_wall_ms = km_wall_ms() - (km_now_ms() - t0);
    /* a call whose next slot comes within its deadline waits for it (tools that plan their
     * calls set the same bound); only one that cannot finish in time is refused */
    call.max_wait_ms = call.deadline_ms - km_now_ms();
    if (call.max_wait_ms < 1)
        call.max_wait_ms = 1;
    ctx.cfg = cfg;
    ctx.accounts = svc->accounts;
    ctx.kl = th->kl;
    ctx.call = &call;
    ctx.tz = "UTC";

    rc = check_call(svc, tool, args, &ctx.acct, &err);
    if (rc != KM_OK)
        goto fail;
    call.acct = ctx.acct;
    if (tool->date_scoped) {
        rc = account_info(th, &ctx, &info, &err);
        if (rc != KM_OK)
            goto fail;
        ctx.tz = info.tz;
        ctx.currency = info.currency[0] ? info.currency : NULL;
    }
    rc = kmdate_today(ctx.tz, time(NULL), &ctx.today, &err);
    if (rc != KM_OK)
        goto fail;
    if (keeps_answers(svc, tool) &&
        answer_key(svc, tool, args, view, ctx.acct, ctx.today, &canon, &key)) {
        if (mode == CALL_ANSWER)
            env = kept_answer(th, canon, key, ctx.acct, t0);
        if (env) {
            json_object_put(call.warnings);
            *status = 200;
            goto done;
        }
        if (mode == CALL_ANSWER)
            kmmet_answer_cache(0);
    }
    if (mode == CALL_REFRESH) {
        if (!key || !(mark = claim_refresh(svc, canon, key))) {
            json_object_put(call.warnings);
            *status = 0;
            goto done;
        }
        /* responses as old as the answer would make it as short-lived: fetch those again */
        call.max_age_ms = kmsvc_refresh_window(svc);
    }

    rc = tool->run(&ctx, args, &data, &err);
    if (rc != KM_OK)
        goto fail;
    /* bounded after the tool computed everything, so totals cover every row */
    rc = kmshape_apply(tool->shape, args, view, data, &shaped, &err);
    if (rc != KM_OK)
        goto fail;

    env = success_envelope(svc, th->kl, tool, view, &ctx, data, &shaped, t0);
    if (key)
        *kept = keep_answer(svc, canon, key, env, &call);
    kmshape_info_clear(&shaped);
    *status = 200;
done:
    kmerr_clear(&err);
    free(canon);
    free(key);
    free(mark);
    return env;

fail:
    release_refresh(svc, mark, &err);
    env = failed_call(&err, &call, data, &shaped, status);
    free(canon);
    free(key);
    free(mark);
    return env;
}

json_object *
kmsvc_call_at(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
              kmshape_view view, int64_t arrived_ms, atomic_bool *cancelled,
              kmsvc_progress_fn *progress, void *progress_arg, int *status)
{
    int kept;

    return run_call(th, tool, args, view, arrived_ms, cancelled, progress, progress_arg, status,
                    CALL_ANSWER, &kept);
}

json_object *
kmsvc_call_local(kmsvc *svc, const struct kmtool *tool, json_object *args, kmshape_view view,
                 int64_t arrived_ms, int *status)
{
    kmerr               err = { 0 };
    kmkl_call           call = { 0 };
    kmctx               ctx = { 0 };
    struct kmshape_info shaped = { 0 };
    json_object        *data = NULL, *env;
    kmcode              rc;

    call.warnings = json_object_new_array();
    ctx.cfg = svc->cfg;
    ctx.accounts = svc->accounts;
    ctx.call = &call;
    ctx.tz = "UTC";
    if (!tool->local) {
        rc = kmerr_set(&err, KM_INTERNAL_ERROR, "%s needs a service thread", tool->name);
        goto fail;
    }
    rc = check_call(svc, tool, args, &ctx.acct, &err);
    if (rc == KM_OK)
        rc = kmdate_today(ctx.tz, time(NULL), &ctx.today, &err);
    if (rc == KM_OK)
        rc = tool->run(&ctx, args, &data, &err);
    if (rc == KM_OK)
        rc = kmshape_apply(tool->shape, args, view, data, &shaped, &err);
    if (rc != KM_OK)
        goto fail;
    env = success_envelope(svc, NULL, tool, view, &ctx, data, &shaped, arrived_ms);
    kmshape_info_clear(&shaped);
    *status = 200;
    return env;

fail:
    return failed_call(&err, &call, data, &shaped, status);
}

int
kmsvc_thread_due(const kmsvc_thread *th)
{
    return th->due;
}

size_t
kmsvc_thread_parsed(const kmsvc_thread *th)
{
    return kmkl_parsed_bytes(th->kl);
}

enum kmsvc_refreshed
kmsvc_refresh(kmsvc_thread *th, const struct kmtool *tool, json_object *args,
              kmshape_view view, atomic_bool *cancelled)
{
    int64_t      t0 = km_now_ms();
    int          status = 0, kept = 0;
    json_object *env = run_call(th, tool, args, view, t0, cancelled, NULL, NULL, &status,
                                CALL_REFRESH, &kept);
    json_object *error = kmjson_get(env, "error");
    const char  *account = kmjson_str(args, "account");

    if (!env)
        return KMSVC_REFRESH_NOT_OURS;
    th->due = 0;
    if (kept) {
        kmlogf(KMLOG_DEBUG, "answer_refreshed", "%s for account '%s' computed again ahead of "
               "its expiry in %lld ms", tool->name, account ? account : "(default)",
               (long long)(km_now_ms() - t0));
    } else if (status == kmerr_http_status(KM_CANCELLED)) {
        kmlogf(KMLOG_DEBUG, "answer_refresh_cancelled", "%s: the worker is stopping",
               tool->name);
        json_object_put(env);
        return KMSVC_REFRESH_FAILED;
    } else {
        /* the kept answer expires as it would have; its next caller computes it */
        kmlogf(KMLOG_WARN, "answer_refresh_failed", "%s for account '%s' could not be computed "
               "again ahead of its expiry: %s", tool->name, account ? account : "(default)",
               error ? kmjson_str(error, "message") : "the answer rests on stale or degraded "
               "data, which is not kept");
    }
    kmmet_answer_refresh(kept);
    json_object_put(env);
    return kept ? KMSVC_REFRESH_KEPT : KMSVC_REFRESH_FAILED;
}
