/* simlimit.c — the simulator's rate limits (REFERENCE.md §4): one fixed-window bucket per
 * account and endpoint, and one more per account for lists' profile_count; the 429 answer with
 * its Retry-After, and the RateLimit-* headers of an answer that passed. Each window opens at
 * its first request; --time-scale multiplies every window length. */
#include "simint.h"
#include "util.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define RATE_DOCS "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling"

/* burst per second, steady per minute, per day (0 = none): REFERENCE.md §4 */
static const int tier_limits[SIMT_COUNT][3] = {
    [SIMT_XS] = { 1, 15, 0 },  [SIMT_S] = { 3, 60, 0 },         [SIMT_M] = { 10, 150, 0 },
    [SIMT_L] = { 75, 700, 0 }, [SIMT_REPORT] = { 1, 2, 225 },
};
static const int64_t window_ms[3] = { 1000, 60000, 86400000 };
static const int     window_s[3] = { 1, 60, 86400 };

static int64_t
mono_ms(const struct sim *s)
{
    return km_now_ms() - s->epoch_ms;
}

static size_t
acct_index(const struct sim *s, const struct simacct *a)
{
    for (size_t i = 0; i < simdata_account_count(s->sd); i++) {
        if (simdata_account(s->sd, i) == a)
            return i;
    }
    return 0;
}

static int64_t
win_len(const struct sim *s, int w)
{
    int64_t len = (int64_t)llround((double)window_ms[w] * s->opts.time_scale);

    return len < 1 ? 1 : len;
}

/* ms until the bucket can take one more request; 0 when it can now */
static int64_t
bucket_wait(const struct sim *s, struct simbucket *b, const int *lim, int64_t now)
{
    int64_t wait = 0;

    for (int w = 0; w < 3; w++) {
        struct simwin *x = &b->w[w];
        if (!lim[w])
            continue;
        if (x->count && now >= x->start_ms + win_len(s, w))
            x->count = 0;
        if (x->count >= lim[w]) {
            int64_t left = x->start_ms + win_len(s, w) - now;
            if (left > wait)
                wait = left;
        }
    }
    return wait;
}

static void
bucket_take(struct simbucket *b, const int *lim, int64_t now)
{
    for (int w = 0; w < 3; w++) {
        if (!lim[w])
            continue;
        if (b->w[w].count == 0)
            b->w[w].start_ms = now;
        b->w[w].count++;
    }
}

/* RateLimit-* for the endpoint's own bucket after taking: the window closest to exhaustion
 * leads (fewest remaining; the shorter one on a tie), as in "10, 10;w=1, 150;w=60". */
static void
bucket_headers(struct simreq *r, struct simbucket *b, const int *lim, int64_t now)
{
    int    best = -1, best_rem = 0;
    size_t len = 0;

    r->rl_policy[0] = '\0';
    for (int w = 0; w < 3; w++) {
        int rem;
        if (!lim[w])
            continue;
        rem = lim[w] - b->w[w].count;
        if (best < 0 || rem < best_rem) {
            best = w;
            best_rem = rem;
        }
        len += (size_t)snprintf(r->rl_policy + len, sizeof(r->rl_policy) - len, "%s%d;w=%d",
                                len ? ", " : "", lim[w], window_s[w]);
    }
    if (best < 0)
        return;
    r->rl_limit = lim[best];
    r->rl_remaining = best_rem < 0 ? 0 : best_rem;
    r->rl_reset = (int)((b->w[best].start_ms + win_len(r->sim, best) - now) / 1000);
    if (r->rl_reset < 0)
        r->rl_reset = 0;
}

static int
wants_profile_count(struct simreq *r)
{
    const char *af = sim_q(r, "additional-fields[list]");

    return af && strstr(af, "profile_count") != NULL;
}

int
simlimit_check(struct simreq *r, size_t route_ix)
{
    struct sim       *s = r->sim;
    size_t            ai = acct_index(s, r->acct);
    struct simbucket *own = &s->buckets[ai * (s->n_routes + 1) + route_ix];
    struct simbucket *extra = NULL;
    const int        *lim = tier_limits[r->route->tier];
    const int        *xs = tier_limits[SIMT_XS];
    int64_t           now = mono_ms(s), wait;
    char              detail[160], key[160];

    if (s->opts.no_limits)
        return 0;
    /* profile_count is charged to the lists bucket and to its own XS bucket */
    if (strcmp(r->route->tmpl, "/api/lists/{id}") == 0 && wants_profile_count(r))
        extra = &s->buckets[ai * (s->n_routes + 1) + s->n_routes];
    wait = bucket_wait(s, own, lim, now);
    if (extra) {
        int64_t w2 = bucket_wait(s, extra, xs, now);
        if (w2 > wait)
            wait = w2;
    }
    if (wait <= 0) {
        bucket_take(own, lim, now);
        if (extra)
            bucket_take(extra, xs, now);
        bucket_headers(r, own, lim, now);
        if (extra) {
            struct simreq tmp;
            memset(&tmp, 0, sizeof(tmp));
            tmp.sim = s;
            bucket_headers(&tmp, extra, xs, now);
            if (tmp.rl_remaining < r->rl_remaining) {
                r->rl_limit = tmp.rl_limit;
                r->rl_remaining = tmp.rl_remaining;
                r->rl_reset = tmp.rl_reset;
                km_strlcpy(r->rl_policy, tmp.rl_policy, sizeof(r->rl_policy));
            }
        }
        return 0;
    }
    r->retry_after = (int)((wait + 999) / 1000);
    if (r->retry_after < 1)
        r->retry_after = 1;
    snprintf(detail, sizeof(detail), "Request was throttled. Expected available in %d second%s.",
             r->retry_after, r->retry_after == 1 ? "" : "s");
    sim_error(r, 429, "throttled", "Request was throttled.", detail, "pointer", "/data");
    {
        json_object *e = json_object_array_get_idx(r->errors, 0);
        json_object *links = json_object_new_object();
        json_object_object_add(links, "type", json_object_new_string(RATE_DOCS));
        json_object_object_add(e, "links", links);
    }
    snprintf(key, sizeof(key), "%s %s", r->method, r->route->tmpl);
    sim_count(s->throttled, key);
    s->total_throttled++;
    return -1;
}
