/* simcoll.c — the simulator's collections: which items of one kind pass a ?filter=, in what
 * order ?sort= puts them, how large a page is, and one page of them as a JSON:API document
 * (REFERENCE.md §2, §7). Field values are read from the simulated account, so filters and
 * sorting agree with what the endpoints show. */
#include "simfilter.h"
#include "simint.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- field values shared by filters and sorting -------------------------------------------- */

enum fvtype { FV_STR = 0, FV_TIME, FV_BOOL, FV_NULL };

struct fv {
    enum fvtype type;
    const char *s;
    int64_t     t;
    int         b;
};

static struct fv
fv_str(const char *s)
{
    struct fv v = { FV_STR, s, 0, 0 };
    return v;
}

static struct fv
fv_time(int64_t t)
{
    struct fv v = { t < 0 ? FV_NULL : FV_TIME, NULL, t, 0 };
    return v;
}

static struct fv
fv_bool(int b)
{
    struct fv v = { FV_BOOL, NULL, 0, b };
    return v;
}

static struct fv
getv(const struct simacct *a, enum simkind k, size_t i, const char *f)
{
    struct fv none = { FV_NULL, NULL, 0, 0 };

    switch (k) {
    case SIMK_CAMPAIGN: {
        const struct simcampaign *c = &a->campaigns[i];
        if (strcmp(f, "id") == 0) return fv_str(c->id);
        if (strcmp(f, "name") == 0) return fv_str(c->name);
        if (strcmp(f, "status") == 0) return fv_str(c->status);
        if (strcmp(f, "archived") == 0) return fv_bool(c->archived);
        if (strcmp(f, "messages.channel") == 0) return fv_str(simdata_channel_name(c->channel));
        if (strcmp(f, "created_at") == 0) return fv_time(c->created_at / 1000000);
        if (strcmp(f, "updated_at") == 0) return fv_time(c->updated_at / 1000000);
        if (strcmp(f, "scheduled_at") == 0)
            return fv_time(c->scheduled_at < 0 ? -1 : c->scheduled_at / 1000000);
        return none;
    }
    case SIMK_FLOW: {
        const struct simflow *x = &a->flows[i];
        if (strcmp(f, "id") == 0) return fv_str(x->id);
        if (strcmp(f, "name") == 0) return fv_str(x->name);
        if (strcmp(f, "status") == 0) return fv_str(x->status);
        if (strcmp(f, "archived") == 0) return fv_bool(x->archived);
        if (strcmp(f, "trigger_type") == 0) return fv_str(x->trigger_type);
        if (strcmp(f, "created") == 0) return fv_time(x->created);
        if (strcmp(f, "updated") == 0) return fv_time(x->updated);
        return none;
    }
    case SIMK_ACTION: {
        const struct simaction *x = &a->actions[i];
        if (strcmp(f, "id") == 0) return fv_str(x->id);
        if (strcmp(f, "action_type") == 0) return fv_str(x->action_type);
        if (strcmp(f, "status") == 0) return fv_str(x->status);
        if (strcmp(f, "created") == 0) return fv_time(x->created);
        if (strcmp(f, "updated") == 0) return fv_time(x->updated);
        return none;
    }
    case SIMK_MSG: {
        const struct simmsg *x = &a->msgs[i];
        if (strcmp(f, "id") == 0) return fv_str(x->id);
        if (strcmp(f, "name") == 0) return fv_str(x->name);
        if (strcmp(f, "created") == 0) return fv_time(x->created);
        if (strcmp(f, "updated") == 0) return fv_time(x->updated);
        return none;
    }
    case SIMK_LIST: {
        const struct simlist *x = &a->lists[i];
        if (strcmp(f, "id") == 0) return fv_str(x->id);
        if (strcmp(f, "name") == 0) return fv_str(x->name);
        if (strcmp(f, "created") == 0) return fv_time(x->created);
        if (strcmp(f, "updated") == 0) return fv_time(x->updated);
        return none;
    }
    case SIMK_METRIC: {
        const struct simmetric *x = &a->metrics[i];
        if (strcmp(f, "integration.name") == 0) return fv_str(x->integration_name);
        if (strcmp(f, "integration.category") == 0) return fv_str(x->integration_category);
        return none;
    }
    }
    return none;
}

static int
cond_match(const struct simacct *a, enum simkind k, size_t i, const struct simcond *c)
{
    struct fv v = getv(a, k, i, c->field);

    switch (v.type) {
    case FV_STR: return simfilter_match_str(c, v.s);
    case FV_BOOL: return simfilter_match_bool(c, v.b);
    case FV_TIME: return simfilter_match_time(c, 1, v.t);
    default: return 0;
    }
}

static int
all_match(const struct simacct *a, enum simkind k, size_t i, const struct simfilter *f)
{
    for (size_t j = 0; f && j < f->n; j++) {
        if (!cond_match(a, k, i, &f->c[j]))
            return 0;
    }
    return 1;
}

int
simcoll_filter(struct simreq *r, const struct simfrule *rules, struct simfilter *f, int *present)
{
    const char *text = sim_q(r, "filter");
    char        why[300], detail[400];

    memset(f, 0, sizeof(*f));
    *present = text != NULL;
    if (!text)
        return 0;
    if (simfilter_parse(text, f, why, sizeof(why)) != 0 ||
        simfilter_check(f, rules, why, sizeof(why)) != 0) {
        simfilter_free(f);
        snprintf(detail, sizeof(detail), "Invalid filter provided: %s", why);
        sim_invalid(r, detail, "parameter", "filter");
        return -1;
    }
    return 0;
}

/* --- sorting ---------------------------------------------------------------------------- */

struct sortctx {
    const struct simacct *a;
    enum simkind          k;
    const char           *field;
    int                   desc;
};

static int
cmp_idx(const void *x, const void *y, void *arg)
{
    const struct sortctx *sc = arg;
    size_t                i = *(const size_t *)x, j = *(const size_t *)y;
    struct fv             a = getv(sc->a, sc->k, i, sc->field);
    struct fv             b = getv(sc->a, sc->k, j, sc->field);
    int                   c = 0;

    if (a.type == FV_NULL || b.type == FV_NULL)
        c = (a.type == FV_NULL) - (b.type == FV_NULL);
    else if (a.type == FV_STR)
        c = strcmp(a.s, b.s);
    else if (a.type == FV_TIME)
        c = a.t < b.t ? -1 : a.t > b.t;
    else
        c = a.b - b.b;
    if (sc->desc)
        c = -c;
    if (c == 0)
        c = i < j ? -1 : i > j;
    return c;
}

int
simcoll_sort(struct simreq *r, enum simkind k, const char *const *allowed, size_t *idx, size_t n)
{
    const char    *s = sim_q(r, "sort");
    struct sortctx sc = { r->acct, k, NULL, 0 };
    char           detail[200];

    if (!s)
        return 0;
    if (*s == '-') {
        sc.desc = 1;
        s++;
    }
    for (size_t i = 0; allowed[i]; i++) {
        if (strcmp(allowed[i], s) == 0)
            sc.field = allowed[i];
    }
    if (!sc.field) {
        snprintf(detail, sizeof(detail), "'%.60s' is not a valid sort field for this endpoint.",
                 s);
        sim_invalid(r, detail, "parameter", "sort");
        return -1;
    }
    qsort_r(idx, n, sizeof(*idx), cmp_idx, &sc);
    return 0;
}

/* --- pages and selection ----------------------------------------------------------------- */

int
simcoll_page_size(struct simreq *r, int dflt, int max, size_t *out)
{
    const char *v = sim_q(r, "page[size]");
    char       *end = NULL;
    long        n;
    char        detail[160];

    *out = (size_t)dflt;
    if (!v)
        return 0;
    n = strtol(v, &end, 10);
    if (max == 0 || !*v || *end || n < 1 || n > max) {
        if (max == 0)
            snprintf(detail, sizeof(detail), "'page[size]' is not a valid query parameter for "
                     "this endpoint.");
        else
            snprintf(detail, sizeof(detail), "page[size] must be an integer from 1 to %d.", max);
        sim_invalid(r, detail, "parameter", "page[size]");
        return -1;
    }
    *out = (size_t)n;
    return 0;
}

void
simcoll_page(struct simreq *r, const size_t *idx, size_t n, size_t size, simcoll_build *build)
{
    json_object *data = json_object_new_array();
    size_t       off;

    if (sim_page_start(r, n, &off) != 0) {
        json_object_put(data);
        return;
    }
    for (size_t i = off; i < n && i < off + size; i++) {
        json_object_array_add(data, build(r, idx[i]));
        if (sim_failed(r)) {
            /* a bad fields[...] is reported once, for the whole request */
            json_object_put(data);
            return;
        }
    }
    r->doc = json_object_new_object();
    json_object_object_add(r->doc, "data", data);
    json_object_object_add(r->doc, "links", sim_page_links(r, off, size, n));
}

size_t *
simcoll_select(struct simreq *r, enum simkind k, size_t first, size_t n, const struct simfilter *f,
             size_t *out_n)
{
    size_t *idx = km_xcalloc(n ? n : 1, sizeof(*idx));
    size_t  m = 0;

    for (size_t i = first; i < first + n; i++) {
        if (all_match(r->acct, k, i, f))
            idx[m++] = i;
    }
    *out_n = m;
    return idx;
}

int
simcoll_has_cond(const struct simfilter *f, const char *field)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->c[i].field, field) == 0)
            return 1;
    }
    return 0;
}
