/* tier.c — Klaviyo's rate-limit tiers, their windows and the one transit margin, the buckets
 * a request is charged to, and reads of an account's windows (plans, budgets). tier.h says
 * why the margin is what it is.
 */
#include "tier.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define N_REPORT_ENDPOINTS (sizeof(report_endpoints) / sizeof(report_endpoints[0]))

static const char *const tier_names[KMT_COUNT] = {
    [KMT_REPORTS] = "reports", [KMT_XS] = "XS", [KMT_S] = "S", [KMT_M] = "M", [KMT_L] = "L",
};

/* REFERENCE.md §4: {window seconds, max} for the burst, steady and (reports) daily windows. */
static const struct {
    int nwin;
    struct {
        int64_t s;
        int     max;
    } win[3];
} tier_limits[KMT_COUNT] = {
    [KMT_REPORTS] = { 3, { { 1, 1 }, { 60, 2 }, { 86400, 225 } } },
    [KMT_XS] = { 2, { { 1, 1 }, { 60, 15 } } },
    [KMT_S] = { 2, { { 1, 3 }, { 60, 60 } } },
    [KMT_M] = { 2, { { 1, 10 }, { 60, 150 } } },
    [KMT_L] = { 2, { { 1, 75 }, { 60, 700 } } },
};

static const char *const report_endpoints[] = {
    "campaign-values-reports", "flow-values-reports", "flow-series-reports",
};

double
kmtier_scale_from_env(int *bad)
{
    const char *v = getenv("RATE_LIMIT_SCALE");
    char       *end;
    double      s;

    *bad = 0;
    if (!v || !*v)
        return 1.0;
    errno = 0;
    s = strtod(v, &end);
    if (errno || end == v || *end != '\0' || !isfinite(s) || s <= 0.0 || s > 1.0) {
        *bad = 1;
        return 1.0;
    }
    return s;
}

static void
limit_scaled(kmtier t, double scale, kmlimit *out)
{
    memset(out, 0, sizeof(*out));
    if (t < 0 || t >= KMT_COUNT)
        t = KMT_XS;
    out->nwin = tier_limits[t].nwin;
    for (int i = 0; i < out->nwin; i++) {
        double ms = (double)tier_limits[t].win[i].s * 1000.0 * scale;

        out->win[i].window_ms = ms < 1.0 ? 1 : (int64_t)llround(ms);
        out->win[i].max = tier_limits[t].win[i].max;
    }
}

/* The one margin (tier.h): added here and nowhere else. */
void
kmtier_charged(kmtier t, double scale, kmlimit *out)
{
    limit_scaled(t, scale, out);
    for (int i = 0; i < out->nwin; i++)
        out->win[i].window_ms += KMTIER_TRANSIT_MS;
}

void
kmtier_limit(kmtier t, kmlimit *out)
{
    int bad;

    limit_scaled(t, kmtier_scale_from_env(&bad), out);
}

const char *
kmtier_name(kmtier t)
{
    if (t < 0 || t >= KMT_COUNT)
        return "unknown";
    return tier_names[t];
}

/* The first path segment after "/api/" (e.g. "lists"), as [*seg, *seg + *len). */
static int
api_segment(const char *path, const char **seg, size_t *len)
{
    if (!path || strncmp(path, "/api/", 5) != 0)
        return 0;
    *seg = path + 5;
    *len = strcspn(*seg, "/?#");
    return *len > 0;
}

static int
seg_is(const char *seg, size_t len, const char *name)
{
    return strlen(name) == len && strncmp(seg, name, len) == 0;
}

/* A GET /api/lists/{id} asking for additional-fields[list]=profile_count (raw or encoded). */
static int
wants_profile_count(const char *path)
{
    const char *q = strchr(path, '?');

    return q && strstr(q, "additional-fields") && strstr(q, "profile_count");
}

kmtier
kmtier_of(const char *method, const char *path)
{
    const char *seg;
    size_t      len;

    (void)method;
    if (!api_segment(path, &seg, &len))
        return KMT_XS;
    for (size_t i = 0; i < N_REPORT_ENDPOINTS; i++) {
        if (seg_is(seg, len, report_endpoints[i]))
            return KMT_REPORTS;
    }
    if (seg_is(seg, len, "metric-aggregates") || seg_is(seg, len, "flows") ||
        seg_is(seg, len, "flow-actions") || seg_is(seg, len, "flow-messages"))
        return KMT_S;
    if (seg_is(seg, len, "campaigns") || seg_is(seg, len, "metrics"))
        return KMT_M;
    if (seg_is(seg, len, "lists"))
        return wants_profile_count(path) ? KMT_XS : KMT_L;
    /* /api/accounts, and anything not in REFERENCE.md §4: the strictest ordinary tier */
    return KMT_XS;
}

/* After a refusal every bucket is taken again (a recorded slot must match the moment the
 * request leaves), hence the loosest first. */
int
kmtier_buckets(double scale, const char *acct, const char *method, const char *path,
               struct kmtier_bucket b[2])
{
    kmtier      t = kmtier_of(method, path);
    const char *seg = "";
    size_t      len = 0;

    if (t == KMT_REPORTS) {
        api_segment(path, &seg, &len);
        snprintf(b[0].name, sizeof(b[0].name), "%s:%.*s", acct, (int)len, seg);
        kmtier_charged(KMT_REPORTS, scale, &b[0].lim);
        return 1;
    }
    if (t == KMT_XS && api_segment(path, &seg, &len) && seg_is(seg, len, "lists")) {
        snprintf(b[0].name, sizeof(b[0].name), "%s:%s", acct, tier_names[KMT_L]);
        kmtier_charged(KMT_L, scale, &b[0].lim);
        snprintf(b[1].name, sizeof(b[1].name), "%s:profile_count", acct);
        kmtier_charged(KMT_XS, scale, &b[1].lim);
        return 2;
    }
    snprintf(b[0].name, sizeof(b[0].name), "%s:%s", acct, tier_names[t]);
    kmtier_charged(t, scale, &b[0].lim);
    return 1;
}

int
kmtier_secs_up(int64_t ms)
{
    if (ms <= 0)
        return 1;
    if (ms > (int64_t)INT32_MAX * 1000)
        return INT32_MAX;
    return (int)((ms + 999) / 1000);
}

/* --- reads of an account's windows: plans and budgets ----------------------------------- */

kmcode
kmtier_plan(kmstore *st, double scale, const char *acct, const char *method,
            const char *path, int n_calls, int64_t deadline_ms, kmerr *err)
{
    struct kmtier_bucket b[2];
    int                  nb;
    int64_t              est_ms = 0, est_empty_ms = 0, retry_ms = 0;
    int                  never = 0, fit = INT_MAX, daily_max = 0, daily_left = 0;
    int64_t              now = km_now_ms();
    const char          *tier;
    kmcode               rc;

    if (!acct || !path || n_calls < 0)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a plan needs an account and a path");
    if (n_calls == 0)
        return KM_OK;
    method = method ? method : "GET";
    tier = kmtier_name(kmtier_of(method, path));
    nb = kmtier_buckets(scale, acct, method, path, b);
    for (int i = 0; i < nb; i++) {
        for (int w = 0; w < b[i].lim.nwin; w++) {
            int64_t win = b[i].lim.win[w].window_ms;
            int     max = b[i].lim.win[w].max;
            int     left = 0;
            int64_t reset = 0, t, t_empty;
            int     extra;

            rc = kmstore_remaining(st, b[i].name, &b[i].lim, w, &left, &reset, err);
            if (rc != KM_OK)
                return rc;
            if (win >= 3600000) {
                /* a daily cap is not waited for within a call */
                daily_max = max;
                daily_left = left;
                if (left < fit)
                    fit = left;
                if (n_calls > max)
                    never = 1;
                else if (n_calls > left && reset > retry_ms)
                    retry_ms = reset;
                continue;
            }
            /* the first `left` go now; every request counted now has left the window one
             * window length from now, and each window after that admits `max` more */
            extra = n_calls - left;
            t = extra <= 0 ? 0 : (int64_t)((extra + max - 1) / max) * win;
            t_empty = n_calls <= max ? 0 : (int64_t)((n_calls - 1) / max) * win;
            if (t > est_ms)
                est_ms = t;
            if (t_empty > est_empty_ms)
                est_empty_ms = t_empty;
            if (deadline_ms > 0) {
                /* how many could go before the deadline at this window's pace */
                int64_t span = deadline_ms - now;
                int64_t can = span < 0 ? 0 : (int64_t)left + span / win * max;

                if (can < fit)
                    fit = can > INT_MAX ? INT_MAX : (int)can;
            }
        }
    }
    if (!never && retry_ms == 0 && (deadline_ms <= 0 || now + est_ms <= deadline_ms))
        return KM_OK;

    kmerr_detail(err, "calls_needed", json_object_new_int(n_calls));
    kmerr_detail(err, "calls_that_fit", json_object_new_int(fit == INT_MAX ? n_calls : fit));
    kmerr_detail(err, "estimated_seconds", json_object_new_int64(kmtier_secs_up(est_ms)));
    kmerr_detail(err, "tier", json_object_new_string(tier));
    /* A request that can never fit is not a rate limit: no retry would help, only a smaller
     * request. It is refused as an argument problem, with what would fit. */
    if (never) {
        kmerr_detail(err, "daily_cap", json_object_new_int(daily_max));
        return kmerr_set(err, KM_INVALID_ARGUMENT, "this needs %d uncached Klaviyo %s "
                         "requests, more than the %d Klaviyo allows account '%s' in a day; no "
                         "retry can answer it: narrow the request", n_calls, tier, daily_max,
                         acct);
    }
    if (deadline_ms > 0 && now + est_empty_ms > deadline_ms) {
        return kmerr_set(err, KM_INVALID_ARGUMENT, "this needs %d uncached Klaviyo %s "
                         "requests, about %d s at Klaviyo's rate limit, longer than a call may "
                         "take even with the rate windows idle; no retry can answer it: narrow "
                         "the request", n_calls, tier, kmtier_secs_up(est_empty_ms));
    }
    if (retry_ms > 0) {
        if (err)
            err->retry_after_s = kmtier_secs_up(retry_ms);
        return kmerr_set(err, KM_RATE_LIMITED, "account '%s' has %d Klaviyo report calls left "
                         "today and this needs %d uncached ones; a slot frees in %d s, or ask "
                         "for something that needs at most %d", acct, daily_left, n_calls,
                         kmtier_secs_up(retry_ms), fit == INT_MAX ? 0 : fit);
    }
    if (err)
        err->retry_after_s = kmtier_secs_up(est_ms - est_empty_ms);
    return kmerr_set(err, KM_RATE_LIMITED, "Klaviyo's rate limit for account '%s' is busy: %d "
                     "requests would take about %d s; try again in %d s", acct, n_calls,
                     kmtier_secs_up(est_ms), kmtier_secs_up(est_ms - est_empty_ms));
}

void
kmtier_budget_buckets(const char *acct, char names[][KMTIER_BUCKET_MAX], kmlimit *lim, int *win)
{
    int bad = 0;

    _Static_assert(N_REPORT_ENDPOINTS == KMTIER_BUDGET_BUCKETS,
                   "one budget bucket per report endpoint");
    kmtier_charged(KMT_REPORTS, kmtier_scale_from_env(&bad), lim);
    for (size_t i = 0; i < KMTIER_BUDGET_BUCKETS; i++)
        snprintf(names[i], KMTIER_BUCKET_MAX, "%s:%s", acct, report_endpoints[i]);
    *win = 2;
}

kmcode
kmtier_report_budget(kmstore *st, double scale, const char *acct, int *remaining,
                     int64_t *reset_ms, kmerr *err)
{
    kmlimit lim;
    int     best = -1;
    int64_t best_reset = 0;

    if (!acct)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a budget read needs an account");
    kmtier_charged(KMT_REPORTS, scale, &lim);
    for (size_t i = 0; i < N_REPORT_ENDPOINTS; i++) {
        char    name[KMTIER_BUCKET_MAX];
        int     left = 0;
        int64_t reset = 0;
        kmcode  rc;

        snprintf(name, sizeof(name), "%s:%s", acct, report_endpoints[i]);
        rc = kmstore_remaining(st, name, &lim, 2, &left, &reset, err);
        if (rc != KM_OK)
            return rc;
        if (best < 0 || left < best) {
            best = left;
            best_reset = reset;
        }
    }
    *remaining = best;
    *reset_ms = best_reset;
    return KM_OK;
}

/* The earliest moment (ms from now) every window of `bucket` admits one more request. */
static kmcode
next_free_ms(kmstore *st, const char *bucket, const kmlimit *lim, int64_t *out, kmerr *err)
{
    *out = 0;
    for (int w = 0; w < lim->nwin; w++) {
        int     left = 0;
        int64_t reset = 0;
        kmcode  rc = kmstore_remaining(st, bucket, lim, w, &left, &reset, err);

        if (rc != KM_OK)
            return rc;
        if (left <= 0 && reset > *out)
            *out = reset;
    }
    return KM_OK;
}

kmcode
kmtier_budget_read(kmstore *st, double scale, const char *acct, kmtier_budget *out,
                   kmerr *err)
{
    kmlimit lim;
    char    name[KMTIER_BUCKET_MAX];
    int64_t ms;
    kmcode  rc;

    memset(out, 0, sizeof(*out));
    if (!acct)
        return kmerr_set(err, KM_INTERNAL_ERROR, "a budget read needs an account");
    rc = kmtier_report_budget(st, scale, acct, &out->report_calls_left, &ms, err);
    if (rc != KM_OK)
        return rc;
    out->daily_report_cap = tier_limits[KMT_REPORTS].win[2].max;
    out->report_calls_used = out->daily_report_cap - out->report_calls_left;
    for (int t = 0; t < KMT_COUNT; t++) {
        int64_t worst = 0;

        kmtier_charged((kmtier)t, scale, &lim);
        if (t == KMT_REPORTS) {
            /* each report endpoint has its own windows: the tier is free when all are */
            for (size_t i = 0; i < N_REPORT_ENDPOINTS; i++) {
                snprintf(name, sizeof(name), "%s:%s", acct, report_endpoints[i]);
                rc = next_free_ms(st, name, &lim, &ms, err);
                if (rc != KM_OK)
                    return rc;
                if (ms > worst)
                    worst = ms;
            }
        } else {
            snprintf(name, sizeof(name), "%s:%s", acct, tier_names[t]);
            rc = next_free_ms(st, name, &lim, &worst, err);
            if (rc != KM_OK)
                return rc;
            if (t == KMT_XS) {
                /* list sizes are charged to their own XS bucket (kmtier_buckets) */
                snprintf(name, sizeof(name), "%s:profile_count", acct);
                rc = next_free_ms(st, name, &lim, &ms, err);
                if (rc != KM_OK)
                    return rc;
                if (ms > worst)
                    worst = ms;
            }
        }
        out->next_free_ms[t] = worst;
    }
    return KM_OK;
}
