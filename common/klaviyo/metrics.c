/* metrics.c — the shared counter table and its Prometheus rendering (see metrics.h). */
#include "metrics.h"
#include "buf.h"
#include "kl.h"
#include "util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define NAME_MAX_LEN 64
#define PREFIX       "klaviyo_mcp_"

/* HTTP statuses counted by value; the last slot is "other". */
static const int http_statuses[] = { 200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429,
                                     499, 500, 502, 503, 504 };
#define N_HTTP (sizeof(http_statuses) / sizeof(http_statuses[0]) + 1)

/* Klaviyo answers counted by value; 0 is "no answer" (transport), the last slot "other". */
static const long kl_statuses[] = { 0, 200, 400, 401, 403, 404, 429, 500, 502, 503, 504 };
#define N_KL (sizeof(kl_statuses) / sizeof(kl_statuses[0]) + 1)

/* Latency bucket bounds in milliseconds (le, in seconds, when rendered); +Inf is the count. */
static const int64_t bucket_ms[] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
                                     30000, 60000 };
#define N_BUCKETS (sizeof(bucket_ms) / sizeof(bucket_ms[0]))

static const char *const cache_names[KMMET_CACHE_N] = { "hit", "miss", "stale" };

typedef _Atomic uint64_t counter;

struct route_row {
    char    name[NAME_MAX_LEN];
    counter by_status[N_HTTP];
    counter bucket[N_BUCKETS];     /* not cumulative: the first bound the duration fits */
    counter count;
    counter sum_ms;
};

struct account_row {
    _Atomic int     state;         /* 0 free, 1 being claimed, 2 named */
    char            name[NAME_MAX_LEN];
    _Atomic int64_t remaining;
};

struct table {
    size_t             n_routes;   /* written before the fork, read-only afterwards */
    struct route_row   routes[KMMET_MAX_ROUTES];
    counter            answer_hits;
    counter            answer_misses;
    counter            answer_refreshes[2];   /* [0] failed, [1] kept */
    counter            cache[KMMET_CACHE_N];
    counter            coalesced;
    counter            klaviyo[KMT_COUNT][N_KL];
    counter            throttled[KMT_COUNT];
    struct account_row accounts[KMMET_MAX_ACCOUNTS];
    _Atomic int64_t    workers_alive;
    counter            respawns;
    counter            reloads_ok, reloads_failed;
};

static struct table *tab;

kmcode
kmmet_init(const char *const *routes, size_t n_routes, kmerr *err)
{
    void *p;

    if (tab)
        return KM_OK;
    p = mmap(NULL, sizeof(*tab), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return kmerr_set(err, KM_INTERNAL_ERROR, "mmap for the metrics table: %s",
                         strerror(errno));
    tab = p;            /* anonymous mappings are zero-filled: every counter starts at 0 */
    for (size_t i = 0; i < n_routes && tab->n_routes < KMMET_MAX_ROUTES - 1; i++) {
        int dup = 0;

        for (size_t j = 0; j < tab->n_routes; j++)
            dup |= strcmp(tab->routes[j].name, routes[i]) == 0;
        if (!dup && strcmp(routes[i], "other") != 0)
            km_strlcpy(tab->routes[tab->n_routes++].name, routes[i], NAME_MAX_LEN);
    }
    km_strlcpy(tab->routes[tab->n_routes++].name, "other", NAME_MAX_LEN);
    return KM_OK;
}

void
kmmet_free(void)
{
    if (tab)
        munmap(tab, sizeof(*tab));
    tab = NULL;
}

static void
add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t
get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static struct route_row *
route_row(const char *route)
{
    for (size_t i = 0; route && i + 1 < tab->n_routes; i++) {
        if (strcmp(tab->routes[i].name, route) == 0)
            return &tab->routes[i];
    }
    return &tab->routes[tab->n_routes - 1];
}

void
kmmet_request(const char *route, int status, int64_t ms)
{
    struct route_row *row;
    size_t            s, b;

    if (!tab)
        return;
    row = route_row(route);
    for (s = 0; s + 1 < N_HTTP && http_statuses[s] != status; s++)
        ;
    if (ms < 0)
        ms = 0;
    for (b = 0; b < N_BUCKETS && ms > bucket_ms[b]; b++)
        ;
    add(&row->by_status[s], 1);
    if (b < N_BUCKETS)
        add(&row->bucket[b], 1);
    add(&row->sum_ms, (uint64_t)ms);
    add(&row->count, 1);
}

void
kmmet_answer_cache(int hit)
{
    if (tab)
        add(hit ? &tab->answer_hits : &tab->answer_misses, 1);
}

void
kmmet_answer_refresh(int kept)
{
    if (tab)
        add(&tab->answer_refreshes[kept ? 1 : 0], 1);
}

void
kmmet_cache(enum kmmet_cache result)
{
    if (tab && result < KMMET_CACHE_N)
        add(&tab->cache[result], 1);
}

void
kmmet_coalesced(void)
{
    if (tab)
        add(&tab->coalesced, 1);
}

void
kmmet_klaviyo(int tier, long status)
{
    size_t s;

    if (!tab || tier < 0 || tier >= KMT_COUNT)
        return;
    for (s = 0; s + 1 < N_KL && kl_statuses[s] != status; s++)
        ;
    add(&tab->klaviyo[tier][s], 1);
    if (status == 429)
        add(&tab->throttled[tier], 1);
}

void
kmmet_report_budget(const char *account, int remaining)
{
    if (!tab || !account)
        return;
    for (size_t i = 0; i < KMMET_MAX_ACCOUNTS; i++) {
        struct account_row *a = &tab->accounts[i];
        int                 expect = 0;

        if (atomic_load(&a->state) == 2 && strcmp(a->name, account) == 0) {
            atomic_store(&a->remaining, remaining);
            return;
        }
        /* claim a free row: the name is written before the row reads as named */
        if (atomic_load(&a->state) == 0 && atomic_compare_exchange_strong(&a->state, &expect, 1)) {
            km_strlcpy(a->name, account, NAME_MAX_LEN);
            atomic_store(&a->remaining, remaining);
            atomic_store(&a->state, 2);
            return;
        }
    }
}

void
kmmet_workers_alive(int n)
{
    if (tab)
        atomic_store(&tab->workers_alive, n);
}

void
kmmet_respawn(void)
{
    if (tab)
        add(&tab->respawns, 1);
}

void
kmmet_reload(int ok)
{
    if (tab)
        add(ok ? &tab->reloads_ok : &tab->reloads_failed, 1);
}

/* --- rendering ----------------------------------------------------------------------- */

/* A label value with \, " and newline escaped, as the text format requires. */
static void
label_value(kmbuf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            kmbuf_append(b, "\\\\", 2);
        else if (*p == '"')
            kmbuf_append(b, "\\\"", 2);
        else if (*p == '\n')
            kmbuf_append(b, "\\n", 2);
        else
            kmbuf_append(b, p, 1);
    }
}

static void
head(kmbuf *b, const char *name, const char *type, const char *help)
{
    kmbuf_appendf(b, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name, help, name, type);
}

static void
status_text(char *out, size_t cap, long status, int known)
{
    if (!known)
        snprintf(out, cap, "other");
    else if (status == 0)
        snprintf(out, cap, "transport");
    else
        snprintf(out, cap, "%ld", status);
}

static void
render_requests(kmbuf *b)
{
    head(b, "http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (size_t i = 0; i < tab->n_routes; i++) {
        struct route_row *row = &tab->routes[i];

        for (size_t s = 0; s < N_HTTP; s++) {
            uint64_t n = get(&row->by_status[s]);
            char     st[16];

            if (n == 0)
                continue;
            status_text(st, sizeof(st), s + 1 < N_HTTP ? http_statuses[s] : -1, s + 1 < N_HTTP);
            kmbuf_appendf(b, PREFIX "http_requests_total{route=\"");
            label_value(b, row->name);
            kmbuf_appendf(b, "\",status=\"%s\"} %llu\n", st, (unsigned long long)n);
        }
    }
    head(b, "http_request_duration_seconds", "histogram",
         "Time from a complete request to its answer, by route.");
    for (size_t i = 0; i < tab->n_routes; i++) {
        struct route_row *row = &tab->routes[i];
        uint64_t          count = get(&row->count), cum = 0;

        if (count == 0)
            continue;
        for (size_t k = 0; k <= N_BUCKETS; k++) {
            kmbuf_appendf(b, PREFIX "http_request_duration_seconds_bucket{route=\"");
            label_value(b, row->name);
            if (k < N_BUCKETS) {
                cum += get(&row->bucket[k]);
                kmbuf_appendf(b, "\",le=\"%g\"} %llu\n", (double)bucket_ms[k] / 1000.0,
                              (unsigned long long)cum);
            } else {
                kmbuf_appendf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)count);
            }
        }
        kmbuf_appendf(b, PREFIX "http_request_duration_seconds_sum{route=\"");
        label_value(b, row->name);
        kmbuf_appendf(b, "\"} %.3f\n", (double)get(&row->sum_ms) / 1000.0);
        kmbuf_appendf(b, PREFIX "http_request_duration_seconds_count{route=\"");
        label_value(b, row->name);
        kmbuf_appendf(b, "\"} %llu\n", (unsigned long long)count);
    }
}

static void
render_klaviyo(kmbuf *b)
{
    head(b, "answer_cache_lookups_total", "counter",
         "Lookups in the shared answer cache of calls whose answers are kept: served from it "
         "(hit) or computed (miss).");
    kmbuf_appendf(b, PREFIX "answer_cache_lookups_total{result=\"hit\"} %llu\n",
                  (unsigned long long)get(&tab->answer_hits));
    kmbuf_appendf(b, PREFIX "answer_cache_lookups_total{result=\"miss\"} %llu\n",
                  (unsigned long long)get(&tab->answer_misses));
    head(b, "answer_cache_refreshes_total", "counter",
         "Kept answers computed again shortly before they expire because they were asked "
         "for (CACHE_REFRESH_AHEAD_SECONDS): kept anew, or failed (the answer then expires).");
    kmbuf_appendf(b, PREFIX "answer_cache_refreshes_total{result=\"kept\"} %llu\n",
                  (unsigned long long)get(&tab->answer_refreshes[1]));
    kmbuf_appendf(b, PREFIX "answer_cache_refreshes_total{result=\"failed\"} %llu\n",
                  (unsigned long long)get(&tab->answer_refreshes[0]));
    head(b, "cache_lookups_total", "counter",
         "Lookups in the shared Klaviyo response cache: fresh hit, miss, or stale answer "
         "served because Klaviyo failed.");
    for (int i = 0; i < KMMET_CACHE_N; i++)
        kmbuf_appendf(b, PREFIX "cache_lookups_total{result=\"%s\"} %llu\n", cache_names[i],
                      (unsigned long long)get(&tab->cache[i]));
    head(b, "coalesced_waits_total", "counter",
         "Klaviyo requests that waited for an identical request in flight instead of calling.");
    kmbuf_appendf(b, PREFIX "coalesced_waits_total %llu\n",
                  (unsigned long long)get(&tab->coalesced));
    head(b, "klaviyo_requests_total", "counter",
         "Requests sent to Klaviyo, by rate-limit tier and HTTP status (transport: no answer).");
    for (int t = 0; t < KMT_COUNT; t++) {
        for (size_t s = 0; s < N_KL; s++) {
            uint64_t n = get(&tab->klaviyo[t][s]);
            char     st[16];

            if (n == 0)
                continue;
            status_text(st, sizeof(st), s + 1 < N_KL ? kl_statuses[s] : -1, s + 1 < N_KL);
            kmbuf_appendf(b, PREFIX "klaviyo_requests_total{tier=\"%s\",status=\"%s\"} %llu\n",
                          kmtier_name((kmtier)t), st, (unsigned long long)n);
        }
    }
    head(b, "klaviyo_throttled_total", "counter", "429 answers received from Klaviyo, by tier.");
    for (int t = 0; t < KMT_COUNT; t++)
        kmbuf_appendf(b, PREFIX "klaviyo_throttled_total{tier=\"%s\"} %llu\n",
                      kmtier_name((kmtier)t), (unsigned long long)get(&tab->throttled[t]));
    head(b, "report_budget_remaining", "gauge",
         "Reports requests (225/day window) left per account, as of its last reports request.");
    for (size_t i = 0; i < KMMET_MAX_ACCOUNTS; i++) {
        struct account_row *a = &tab->accounts[i];
        int                 seen = 0;

        if (atomic_load(&a->state) != 2)
            continue;
        for (size_t j = 0; j < i; j++)   /* two threads may have claimed a row for one name */
            seen |= atomic_load(&tab->accounts[j].state) == 2 &&
                    strcmp(tab->accounts[j].name, a->name) == 0;
        if (seen)
            continue;
        kmbuf_appendf(b, PREFIX "report_budget_remaining{account=\"");
        label_value(b, a->name);
        kmbuf_appendf(b, "\"} %lld\n", (long long)atomic_load(&a->remaining));
    }
}

static void
render_master(kmbuf *b)
{
    head(b, "workers_alive", "gauge", "Worker processes running.");
    kmbuf_appendf(b, PREFIX "workers_alive %lld\n", (long long)atomic_load(&tab->workers_alive));
    head(b, "worker_respawns_total", "counter", "Workers replaced after they died or hung.");
    kmbuf_appendf(b, PREFIX "worker_respawns_total %llu\n",
                  (unsigned long long)get(&tab->respawns));
    head(b, "reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
    kmbuf_appendf(b, PREFIX "reloads_total{result=\"ok\"} %llu\n",
                  (unsigned long long)get(&tab->reloads_ok));
    kmbuf_appendf(b, PREFIX "reloads_total{result=\"failed\"} %llu\n",
                  (unsigned long long)get(&tab->reloads_failed));
}

char *
kmmet_render(size_t *len)
{
    kmbuf b;
    char *text;

    kmbuf_init(&b, 0);
    if (tab) {
        render_requests(&b);
        render_klaviyo(&b);
        render_master(&b);
    }
    text = kmbuf_take(&b, len);
    if (!text) {
        text = km_xstrdup("");
        *len = 0;
    }
    return text;
}
