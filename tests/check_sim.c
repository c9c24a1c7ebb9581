/* check_sim.c — the Klaviyo simulator, tested through its real binary over loopback HTTP and
 * compared with its ground truth library (truth.h). */
#include "accounts.h"
#include "buf.h"
#include "env.h"
#include "fixtures.h"
#include "json.h"
#include "simdata.h"
#include "simstats.h"
#include "truth.h"
#include "util.h"

#include <check.h>
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REV "2025-04-15"

static kmfix_proc            sim;      /* the simulator of the current test case */
static simdata              *world;    /* the same world, for truth */
static const struct simacct *acme, *kiwi, *nosms;
static char                  config_dir[256];

/* --- HTTP ------------------------------------------------------------------------------- */

struct resp {
    long         status;       /* 0 when nothing was answered */
    char        *body;
    json_object *doc;          /* NULL when the body is not JSON */
    char         retry_after[32];
    char         rl_limit[96];
    char         rl_remaining[32];
    char         revision[32];
    char         ctype[96];
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    kmbuf *b = arg;

    return kmbuf_append(b, p, size * n) == 0 ? size * n : 0;
}

static void
header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name), vl;

    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    line += nl + 1;
    len -= nl + 1;
    while (len && *line == ' ') {
        line++;
        len--;
    }
    vl = len;
    while (vl && (line[vl - 1] == '\r' || line[vl - 1] == '\n'))
        vl--;
    if (vl >= cap)
        vl = cap - 1;
    memcpy(out, line, vl);
    out[vl] = '\0';
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t       len = size * n;

    header_value(p, len, "Retry-After", r->retry_after, sizeof(r->retry_after));
    header_value(p, len, "RateLimit-Limit", r->rl_limit, sizeof(r->rl_limit));
    header_value(p, len, "RateLimit-Remaining", r->rl_remaining, sizeof(r->rl_remaining));
    header_value(p, len, "X-Klaviyo-API-Revision", r->revision, sizeof(r->revision));
    header_value(p, len, "Content-Type", r->ctype, sizeof(r->ctype));
    return len;
}

static void
resp_free(struct resp *r)
{
    free(r->body);
    json_object_put(r->doc);
    memset(r, 0, sizeof(*r));
}

/* One request. `target` is a path ("/api/...") or a full URL from a links object; auth is
 * the whole Authorization value (NULL = none); rev NULL = no revision header; ctype NULL with
 * a body = application/vnd.api+json. */
static void
call_full(const char *method, const char *target, const char *auth, const char *rev,
          const char *ctype, const char *body, struct resp *r)
{
    CURL              *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    kmbuf              b;
    char               url[4096], line[512];

    memset(r, 0, sizeof(*r));
    ck_assert_ptr_nonnull(h);
    kmbuf_init(&b, (size_t)64 << 20);
    if (strncmp(target, "http://", 7) == 0)
        snprintf(url, sizeof(url), "%s", target);
    else
        snprintf(url, sizeof(url), "%s%s", sim.url, target);
    ck_assert_msg(strncmp(url, "http://127.0.0.1:", 17) == 0, "not loopback: %s", url);
    if (auth) {
        snprintf(line, sizeof(line), "Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (rev) {
        snprintf(line, sizeof(line), "revision: %s", rev);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Accept: application/vnd.api+json");
    if (body) {
        snprintf(line, sizeof(line), "Content-Type: %s",
                 ctype ? ctype : "application/vnd.api+json");
        hdrs = curl_slist_append(hdrs, line);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    r->body = kmbuf_take(&b, NULL);
    if (!r->body)
        r->body = km_xstrdup("");
    kmbuf_free(&b);
    if (kmjson_parse(r->body, strlen(r->body), KM_INVALID_ARGUMENT, &r->doc, NULL) != KM_OK)
        r->doc = NULL;
}

static char *
auth_of(const char *key)
{
    return km_xasprintf("Klaviyo-API-Key %s", key);
}

/* GET or POST as account `a` with revision REV */
static void
call(const struct simacct *a, const char *method, const char *target, const char *body,
     struct resp *r)
{
    char *auth = auth_of(a->key);

    call_full(method, target, auth, REV, NULL, body, r);
    free(auth);
}

static json_object *
control(const char *method, const char *path, const char *body)
{
    json_object *doc = NULL;
    long         st = kmfix_http_json(sim.url, method, path, body, &doc);

    ck_assert_int_eq(st, 200);
    return doc;
}

static void
sim_reset(void)
{
    json_object_put(control("POST", "/__sim/reset", NULL));
}

static void
add_fault(const char *json)
{
    json_object_put(control("POST", "/__sim/faults", json));
}

static int64_t
stat_count(const char *group, const char *key)
{
    json_object *doc = control("GET", "/__sim/stats", NULL);
    json_object *v = kmjson_path(doc, group, key, NULL);
    int64_t      n = v ? json_object_get_int64(v) : 0;

    json_object_put(doc);
    return n;
}

static void
nap_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* the one error object of an error answer */
static json_object *
the_error(const struct resp *r)
{
    json_object *errs = kmjson_get(r->doc, "errors");

    ck_assert_msg(errs && json_object_array_length(errs) >= 1, "no errors[] in %s", r->body);
    return json_object_array_get_idx(errs, 0);
}

static void
assert_error(const struct resp *r, int status, const char *code)
{
    json_object *e;

    ck_assert_msg(r->status == status, "status %ld, wanted %d: %s", r->status, status, r->body);
    e = the_error(r);
    ck_assert_int_eq(json_object_get_int(kmjson_get(e, "status")), status);
    ck_assert(json_object_is_type(kmjson_get(e, "status"), json_type_int));
    ck_assert_str_eq(kmjson_str(e, "code"), code);
    ck_assert_ptr_nonnull(kmjson_str(e, "id"));
    ck_assert_ptr_nonnull(kmjson_str(e, "title"));
    ck_assert_ptr_nonnull(kmjson_str(e, "detail"));
    ck_assert_ptr_nonnull(kmjson_get(e, "source"));
}

static const char *
source_of(const struct resp *r, const char *kind)
{
    return kmjson_str(kmjson_get(the_error(r), "source"), kind);
}

/* --- fixtures --------------------------------------------------------------------------- */

static void
load_world(void)
{
    world = simdata_new(1);
    acme = simdata_account_by_name(world, "acme");
    kiwi = simdata_account_by_name(world, "kiwi");
    nosms = simdata_account_by_name(world, "nosms");
}

static void
start_with(const char *const *args)
{
    load_world();
    ck_assert_int_eq(kmfix_start_sim(&sim, args), 0);
}

static void
start_unlimited(void)
{
    static const char *const args[] = { "--no-limits", "--quiet", NULL };

    start_with(args);
}

static void
start_limited(void)
{
    /* windows at a tenth: burst 0.1 s, steady 6 s, daily 2.4 h */
    static const char *const args[] = { "--time-scale", "0.1", "--quiet", NULL };

    start_with(args);
}

static void
start_with_config(void)
{
    char                    *dir = kmfix_tmpdir("simcfg");
    const char              *args[] = { "--no-limits", "--quiet", "--write-config", NULL, NULL };

    ck_assert_ptr_nonnull(dir);
    km_strlcpy(config_dir, dir, sizeof(config_dir));
    free(dir);
    args[3] = config_dir;
    start_with(args);
}

static void
start_unscaled(void)
{
    static const char *const args[] = { "--quiet", NULL };   /* burst = 1 s, steady = 60 s */

    start_with(args);
}

static void
stop_sim(void)
{
    kmfix_stop(&sim);
    simdata_free(world);
    world = NULL;
    if (config_dir[0]) {
        kmfix_rmtree(config_dir);
        config_dir[0] = '\0';
    }
}

static void
each_reset(void)
{
    sim_reset();
}

/* --- the demo configuration --------------------------------------------------------------- */

START_TEST(write_config_makes_files_that_kmacct_load_accepts)
{
    char              *path = km_xasprintf("%s/accounts.toml", config_dir);
    char              *envp = km_xasprintf("%s/.env", config_dir);
    char               line[256];
    FILE              *f = fopen(envp, "r");
    struct stat        st;
    kmaccounts        *accts = NULL;
    kmerr              err = { 0 };
    int                keys = 0;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(stat(envp, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    while (fgets(line, sizeof(line), f)) {
        char *eq = strchr(line, '=');
        if (line[0] == '#' || !eq)
            continue;
        *eq = '\0';
        eq[strcspn(eq + 1, "\n") + 1] = '\0';
        ck_assert_int_eq(setenv(line, eq + 1, 1), 0);
        keys++;
    }
    fclose(f);
    ck_assert_int_eq(keys, 3);
    ck_assert_int_eq(kmacct_load(path, &accts, &err), KM_OK);
    ck_assert_uint_eq(kmacct_count(accts), 3);
    for (size_t i = 0; i < simdata_account_count(world); i++) {
        const struct simacct   *a = simdata_account(world, i);
        const struct kmaccount *k = kmacct_find(accts, a->name);
        char                    label[96];

        ck_assert_ptr_nonnull(k);
        ck_assert_str_eq(k->conversion_metric_id, a->metrics[a->conversion_metric].id);
        ck_assert_str_eq(getenv(k->api_key_env), a->key);
        snprintf(label, sizeof(label), "%s (demo)", a->label);
        ck_assert_str_eq(k->label, label);
    }
    kmacct_free(accts);
    free(path);
    free(envp);
}
END_TEST

START_TEST(control_accounts_match_the_world_of_the_same_seed)
{
    json_object *doc = control("GET", "/__sim/accounts", NULL);
    json_object *arr = kmjson_get(doc, "accounts");

    ck_assert_uint_eq(json_object_array_length(arr), 3);
    for (size_t i = 0; i < 3; i++) {
        json_object          *o = json_object_array_get_idx(arr, i);
        const struct simacct *a = simdata_account_by_name(world, kmjson_str(o, "name"));

        ck_assert_ptr_nonnull(a);
        ck_assert_str_eq(kmjson_str(o, "key"), a->key);
        ck_assert_str_eq(kmjson_str(o, "id"), a->id);
        ck_assert_str_eq(kmjson_str(o, "timezone"), a->tz);
        ck_assert_str_eq(kmjson_str(o, "currency"), a->currency);
        ck_assert_int_eq(strlen(a->key), 37);
        ck_assert(km_is_alnum_id(a->key + 3, 64));
        ck_assert_int_eq(strncmp(a->key, "pk_", 3), 0);
        ck_assert_int_eq(kmjson_get(o, "limited_key") != NULL, a == acme);
    }
    ck_assert_str_eq(acme->tz, "America/New_York");
    ck_assert_str_eq(kiwi->tz, "Pacific/Auckland");
    ck_assert_str_eq(nosms->currency, "GBP");
    json_object_put(doc);
}
END_TEST

START_TEST(the_same_seed_gives_the_same_world_and_another_seed_another)
{
    simdata              *again = simdata_new(1), *other = simdata_new(2);
    const struct simacct *a2 = simdata_account_by_name(again, "acme");
    const struct simacct *a3 = simdata_account_by_name(other, "acme");

    ck_assert_str_eq(a2->key, acme->key);
    ck_assert_uint_eq(a2->n_campaigns, acme->n_campaigns);
    for (size_t i = 0; i < acme->n_campaigns; i++)
        ck_assert_str_eq(a2->campaigns[i].id, acme->campaigns[i].id);
    ck_assert_str_ne(a3->key, acme->key);
    /* flows[0] carries the README example's fixed id in every world */
    ck_assert_str_eq(a3->flows[0].id, SIM_EXAMPLE_FLOW_ID);
    ck_assert_str_ne(a3->flows[1].id, acme->flows[1].id);
    simdata_free(again);
    simdata_free(other);
}
END_TEST

/* --- pagination --------------------------------------------------------------------------- */

/* Follow links.next from `first`; returns every data id in order (a JSON array of strings)
 * and counts the pages. */
static json_object *
walk(const struct simacct *a, const char *first, int *pages)
{
    json_object *ids = json_object_new_array();
    char        *next = km_xstrdup(first);

    *pages = 0;
    while (next) {
        struct resp  r;
        json_object *data, *links, *nx;

        call(a, "GET", next, NULL, &r);
        ck_assert_msg(r.status == 200, "%s -> %ld %s", next, r.status, r.body);
        data = kmjson_get(r.doc, "data");
        links = kmjson_get(r.doc, "links");
        ck_assert_ptr_nonnull(links);
        /* next and prev are present even when null */
        ck_assert(json_object_object_get_ex(links, "next", &nx));
        ck_assert(json_object_object_get_ex(links, "prev", NULL));
        ck_assert_int_eq(kmjson_str(links, "self")[strlen(sim.url)], '/');
        for (size_t i = 0; i < json_object_array_length(data); i++) {
            json_object *it = json_object_array_get_idx(data, i);
            const char  *self = kmjson_str(kmjson_get(it, "links"), "self");
            ck_assert_int_eq(self[strlen(self) - 1], '/');
            json_object_array_add(ids, json_object_new_string(kmjson_str(it, "id")));
        }
        free(next);
        next = nx ? km_xstrdup(json_object_get_string(nx)) : NULL;
        (*pages)++;
        resp_free(&r);
        ck_assert_int_lt(*pages, 200);
    }
    return ids;
}

static void
assert_ids(json_object *ids, const char *const *want, size_t n)
{
    ck_assert_uint_eq(json_object_array_length(ids), n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(ids, i)), want[i]);
}

START_TEST(lists_walk_every_list_once_ten_a_page)
{
    int          pages;
    json_object *ids = walk(acme, "/api/lists", &pages);
    const char **want = km_xcalloc(acme->n_lists, sizeof(*want));

    for (size_t i = 0; i < acme->n_lists; i++)
        want[i] = acme->lists[i].id;
    ck_assert_uint_gt(acme->n_lists, 15);
    assert_ids(ids, want, acme->n_lists);
    ck_assert_int_eq(pages, (int)((acme->n_lists + 9) / 10));
    free(want);
    json_object_put(ids);
}
END_TEST

START_TEST(flows_walk_every_flow_once_with_page_size_five)
{
    int          pages;
    json_object *ids = walk(acme, "/api/flows/?page%5Bsize%5D=5", &pages);
    const char **want = km_xcalloc(acme->n_flows, sizeof(*want));

    for (size_t i = 0; i < acme->n_flows; i++)
        want[i] = acme->flows[i].id;
    assert_ids(ids, want, acme->n_flows);
    ck_assert_int_eq(pages, (int)((acme->n_flows + 4) / 5));
    json_object_put(ids);
    /* the default page is 50, and acme has more flows than that */
    ids = walk(acme, "/api/flows", &pages);
    ck_assert_uint_gt(acme->n_flows, 50);
    ck_assert_int_eq(pages, 2);
    assert_ids(ids, want, acme->n_flows);
    free(want);
    json_object_put(ids);
}
END_TEST

START_TEST(campaigns_walk_every_campaign_of_a_channel_once)
{
    static const char *const chans[] = { "email", "sms" };

    for (int c = 0; c < 2; c++) {
        for (int archived = 0; archived < 2; archived++) {
            char        *path = km_xasprintf("/api/campaigns?filter=and(equals(messages.channel,"
                                             "'%s'),equals(archived,%s))",
                                             chans[c], archived ? "true" : "false");
            char        *enc;
            int          pages;
            json_object *ids;
            const char **want = km_xcalloc(acme->n_campaigns, sizeof(*want));
            size_t       n = 0;

            /* curl wants the filter percent-encoded */
            enc = curl_easy_escape(NULL, strchr(path, '=') + 1, 0);
            *strchr(path, '=') = '\0';
            {
                char *full = km_xasprintf("%s=%s", path, enc);
                ids = walk(acme, full, &pages);
                free(full);
            }
            for (size_t i = 0; i < acme->n_campaigns; i++) {
                if ((int)acme->campaigns[i].channel == c && acme->campaigns[i].archived == archived)
                    want[n++] = acme->campaigns[i].id;
            }
            ck_assert_uint_gt(n, archived ? 0 : 10);
            assert_ids(ids, want, n);
            ck_assert_int_eq(pages, (int)((n + 9) / 10));
            curl_free(enc);
            free(path);
            free(want);
            json_object_put(ids);
        }
    }
}
END_TEST

START_TEST(a_bad_cursor_is_400_invalid_cursor)
{
    struct resp r;

    call(acme, "GET", "/api/lists/?page%5Bcursor%5D=bm90LWEtY3Vyc29y", NULL, &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(kmjson_str(the_error(&r), "detail"), "Invalid cursor provided.");
    ck_assert_str_eq(source_of(&r, "parameter"), "page[cursor]");
    resp_free(&r);
}
END_TEST

START_TEST(flow_actions_come_in_order_and_page_by_page_size)
{
    const struct simflow    *f = NULL;
    const struct simaction  *acts;
    long                     n;
    int                      pages;
    char                    *path;
    json_object             *ids;
    const char             **want;

    for (size_t i = 0; i < acme->n_flows && !f; i++) {
        if (acme->flows[i].n_actions >= 4)
            f = &acme->flows[i];
    }
    ck_assert_ptr_nonnull(f);
    n = simtruth_flow_actions(acme, f->id, &acts);
    want = km_xcalloc((size_t)n, sizeof(*want));
    for (long i = 0; i < n; i++)
        want[i] = acts[i].id;
    path = km_xasprintf("/api/flows/%s/flow-actions/?page%%5Bsize%%5D=1", f->id);
    ids = walk(acme, path, &pages);
    assert_ids(ids, want, (size_t)n);
    ck_assert_int_eq(pages, (int)n);
    free(path);
    free(want);
    json_object_put(ids);
}
END_TEST

START_TEST(a_send_action_lists_its_message_and_the_message_names_its_channel)
{
    const struct simaction *ac = NULL;
    const struct simmsg    *m;
    struct resp             r;
    char                   *path;
    json_object            *item;

    for (size_t i = 0; i < acme->n_actions && !ac; i++) {
        if (strcmp(acme->actions[i].action_type, "SEND_SMS") == 0)
            ac = &acme->actions[i];
    }
    ck_assert_ptr_nonnull(ac);
    m = &acme->msgs[ac->message];
    path = km_xasprintf("/api/flow-actions/%s/flow-messages", ac->id);
    call(acme, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    item = json_object_array_get_idx(kmjson_get(r.doc, "data"), 0);
    ck_assert_str_eq(kmjson_str(item, "id"), m->id);
    ck_assert_str_eq(kmjson_str(kmjson_get(item, "attributes"), "channel"), "sms");
    ck_assert_str_eq(kmjson_str(kmjson_get(item, "attributes"), "name"), m->name);
    resp_free(&r);
    free(path);
    path = km_xasprintf("/api/flow-messages/%s/", m->id);
    call(acme, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(kmjson_str(kmjson_path(r.doc, "data", "relationships", "flow-action",
                                            "data", NULL), "id"), ac->id);
    resp_free(&r);
    free(path);
}
END_TEST

START_TEST(a_list_by_id_with_profile_count_has_its_size)
{
    const struct simlist *l = &acme->lists[3];
    struct resp           r;
    char                 *path = km_xasprintf("/api/lists/%s?additional-fields%%5Blist%%5D="
                                              "profile_count", l->id);

    call(acme, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(json_object_get_int64(kmjson_path(r.doc, "data", "attributes",
                                                       "profile_count", NULL)),
                     simtruth_list_size(acme, l->id));
    ck_assert_int_gt(l->profile_count, 0);
    ck_assert_str_eq(r.revision, REV);
    ck_assert_int_eq(strncmp(r.ctype, "application/vnd.api+json", 24), 0);
    resp_free(&r);
    free(path);
    /* without the extra field there is no profile_count */
    path = km_xasprintf("/api/lists/%s", l->id);
    call(acme, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(kmjson_path(r.doc, "data", "attributes", "profile_count", NULL));
    resp_free(&r);
    free(path);
}
END_TEST

START_TEST(sparse_fieldsets_and_sort_shape_a_collection)
{
    struct resp  r;
    json_object *data;
    const char  *prev = NULL;

    call(acme, "GET", "/api/flows?fields%5Bflow%5D=name,status&sort=-name&page%5Bsize%5D=50",
         NULL, &r);
    ck_assert_int_eq(r.status, 200);
    data = kmjson_get(r.doc, "data");
    ck_assert_uint_eq(json_object_array_length(data), 50);
    for (size_t i = 0; i < json_object_array_length(data); i++) {
        json_object *at = kmjson_get(json_object_array_get_idx(data, i), "attributes");
        const char  *name = kmjson_str(at, "name");

        ck_assert_int_eq(json_object_object_length(at), 2);
        ck_assert_ptr_nonnull(kmjson_str(at, "status"));
        if (prev)
            ck_assert_int_le(strcmp(name, prev), 0);
        prev = name;
    }
    resp_free(&r);
    call(acme, "GET", "/api/flows?fields%5Bflow%5D=colour", NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call(acme, "GET", "/api/flows?sort=colour", NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
}
END_TEST

START_TEST(revision_2025_10_15_describes_actions_with_a_definition)
{
    const struct simflow *f = NULL;
    struct resp           r;
    char                 *auth = auth_of(acme->key), *path;
    json_object          *at;

    for (size_t i = 0; i < acme->n_flows && !f; i++) {
        if (acme->flows[i].n_actions > 0)
            f = &acme->flows[i];
    }
    ck_assert_ptr_nonnull(f);
    path = km_xasprintf("/api/flows/%s/flow-actions", f->id);
    call_full("GET", path, auth, "2025-10-15", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    at = kmjson_get(json_object_array_get_idx(kmjson_get(r.doc, "data"), 0), "attributes");
    ck_assert_ptr_null(kmjson_get(at, "action_type"));
    ck_assert_ptr_nonnull(kmjson_str(kmjson_get(at, "definition"), "type"));
    resp_free(&r);
    call_full("GET", path, auth, REV, NULL, NULL, &r);
    at = kmjson_get(json_object_array_get_idx(kmjson_get(r.doc, "data"), 0), "attributes");
    ck_assert_str_eq(kmjson_str(at, "action_type"), acme->actions[f->first_action].action_type);
    resp_free(&r);
    free(path);
    free(auth);
}
END_TEST

/* --- errors (REFERENCE.md §3) -------------------------------------------------------------- */

static const char *
values_body(const char *type, const char *stats, const char *timeframe, const char *metric,
            const char *extra)
{
    static char buf[4096];

    snprintf(buf, sizeof(buf),
             "{\"data\":{\"type\":\"%s\",\"attributes\":{\"statistics\":%s,\"timeframe\":%s,"
             "\"conversion_metric_id\":\"%s\"%s}}}",
             type, stats, timeframe, metric, extra ? extra : "");
    return buf;
}

static const char *
conv(const struct simacct *a)
{
    return a->metrics[a->conversion_metric].id;
}

START_TEST(missing_wrong_and_bearer_keys_are_401_not_authenticated)
{
    struct resp r;
    char       *bearer = km_xasprintf("Bearer %s", acme->key);

    call_full("GET", "/api/flows", NULL, REV, NULL, NULL, &r);
    assert_error(&r, 401, "not_authenticated");
    ck_assert_str_eq(kmjson_str(the_error(&r), "detail"), "Missing or invalid private key.");
    ck_assert_str_eq(source_of(&r, "pointer"), "/data/");
    resp_free(&r);
    call_full("GET", "/api/flows", "Klaviyo-API-Key pk_notarealkey000000000000000000000000",
              REV, NULL, NULL, &r);
    assert_error(&r, 401, "not_authenticated");
    resp_free(&r);
    call_full("GET", "/api/flows", bearer, REV, NULL, NULL, &r);
    assert_error(&r, 401, "not_authenticated");
    /* the key never comes back */
    ck_assert_ptr_null(strstr(r.body, acme->key));
    resp_free(&r);
    free(bearer);
}
END_TEST

START_TEST(the_limited_key_reads_campaigns_but_gets_403_on_flows)
{
    struct resp r;
    char       *auth = auth_of(acme->limited_key);

    call_full("GET", "/api/flows", auth, REV, NULL, NULL, &r);
    assert_error(&r, 403, "permission_denied");
    ck_assert_ptr_nonnull(strstr(kmjson_str(the_error(&r), "detail"), "flows:read"));
    resp_free(&r);
    call_full("GET", "/api/campaigns?filter=equals(messages.channel,%27email%27)", auth, REV,
              NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    free(auth);
}
END_TEST

START_TEST(a_missing_revision_is_400_and_an_unsupported_one_is_refused)
{
    struct resp r;
    char       *auth = auth_of(acme->key);

    call_full("GET", "/api/lists", auth, NULL, NULL, NULL, &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "parameter"), "revision");
    resp_free(&r);
    call_full("GET", "/api/lists", auth, "2023-01-01", NULL, NULL, &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    call_full("GET", "/api/lists", auth, "yesterday", NULL, NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call_full("GET", "/api/lists", auth, "2025-07-15", NULL, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.revision, "2025-07-15");
    resp_free(&r);
    free(auth);
}
END_TEST

START_TEST(each_bad_statistic_is_its_own_error_with_its_index)
{
    struct resp  r;
    json_object *errs;

    call(acme, "POST", "/api/campaign-values-reports",
         values_body("campaign-values-report", "[\"recipients\",\"revenue\",\"opens\",\"x\"]",
                     "{\"key\":\"last_30_days\"}", conv(acme), NULL),
         &r);
    assert_error(&r, 400, "invalid");
    errs = kmjson_get(r.doc, "errors");
    ck_assert_uint_eq(json_object_array_length(errs), 2);
    ck_assert_str_eq(kmjson_str(kmjson_get(json_object_array_get_idx(errs, 0), "source"),
                                "pointer"), "/data/attributes/statistics/1");
    ck_assert_str_eq(kmjson_str(json_object_array_get_idx(errs, 0), "detail"),
                     "'revenue' is not a valid choice for 'statistics'.");
    ck_assert_str_eq(kmjson_str(kmjson_get(json_object_array_get_idx(errs, 1), "source"),
                                "pointer"), "/data/attributes/statistics/3");
    resp_free(&r);
}
END_TEST

START_TEST(a_timeframe_over_a_year_is_400)
{
    struct resp r;

    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]",
                     "{\"start\":\"2024-01-01T00:00:00\",\"end\":\"2025-01-02T00:00:00\"}",
                     conv(acme), NULL),
         &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "pointer"), "/data/attributes/timeframe");
    resp_free(&r);
    /* 365 whole days across a leap day is fine */
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]",
                     "{\"start\":\"2024-01-01T00:00:00\",\"end\":\"2024-12-30T23:59:59\"}",
                     conv(acme), NULL),
         &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(series_intervals_are_capped_daily_60_days_weekly_52_weeks)
{
    struct resp r;

    call(acme, "POST", "/api/flow-series-reports",
         values_body("flow-series-report", "[\"recipients\"]",
                     "{\"start\":\"2025-01-01T00:00:00\",\"end\":\"2025-03-05T23:59:59\"}",
                     conv(acme), ",\"interval\":\"daily\""),
         &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call(acme, "POST", "/api/flow-series-reports",
         values_body("flow-series-report", "[\"recipients\"]", "{\"key\":\"last_365_days\"}",
                     conv(acme), ",\"interval\":\"weekly\""),
         &r);
    assert_error(&r, 400, "invalid");
    ck_assert_ptr_nonnull(strstr(kmjson_str(the_error(&r), "detail"), "52 weeks"));
    resp_free(&r);
    call(acme, "POST", "/api/flow-series-reports",
         values_body("flow-series-report", "[\"recipients\"]",
                     "{\"start\":\"2025-01-01T00:00:00\",\"end\":\"2025-01-08T23:59:59\"}",
                     conv(acme), ",\"interval\":\"hourly\""),
         &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call(acme, "POST", "/api/flow-series-reports",
         values_body("flow-series-report", "[\"recipients\"]",
                     "{\"start\":\"2025-01-01T00:00:00\",\"end\":\"2025-03-01T23:59:59\"}",
                     conv(acme), ",\"interval\":\"daily\""),
         &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    call(acme, "POST", "/api/flow-series-reports",
         values_body("flow-series-report", "[\"recipients\"]", "{\"key\":\"last_30_days\"}",
                     conv(acme), ",\"interval\":\"fortnightly\""),
         &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "pointer"), "/data/attributes/interval");
    resp_free(&r);
}
END_TEST

START_TEST(an_unknown_conversion_metric_is_400)
{
    struct resp r;

    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     "XXXXXX", NULL),
         &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "pointer"), "/data/attributes/conversion_metric_id");
    resp_free(&r);
    /* another account's metric does not exist here either */
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     conv(kiwi), NULL),
         &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
}
END_TEST

START_TEST(malformed_and_disallowed_report_filters_are_400)
{
    static const char *const bad[] = {
        ",\"filter\":\"equals(flow_id,\\\"abc\\\"\"",                      /* unclosed */
        ",\"filter\":\"greater-than(flow_id,\\\"abc\\\")\"",                /* operator */
        ",\"filter\":\"equals(campaign_id,\\\"abc\\\")\"",                  /* field */
        ",\"filter\":\"equals(send_channel,\\\"push\\\")\"",                /* enum */
        ",\"filter\":\"and(equals(flow_id,\\\"a\\\"),equals(flow_id,\\\"b\\\"))\"",  /* twice */
        ",\"filter\":\"or(equals(flow_id,\\\"a\\\"),equals(send_channel,\\\"sms\\\"))\"",
        ",\"filter\":\"equals(flow_id,abc)\"",                            /* bare string */
    };
    struct resp r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        call(acme, "POST", "/api/flow-values-reports",
             values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                         conv(acme), bad[i]),
             &r);
        assert_error(&r, 400, "invalid");
        ck_assert_str_eq(source_of(&r, "pointer"), "/data/attributes/filter");
        resp_free(&r);
    }
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     conv(acme),
                     ",\"filter\":\"and(contains-any(flow_id,[\\\"a\\\",\\\"b\\\"]),"
                     "equals(send_channel,\\\"sms\\\"))\""),
         &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(a_wrong_content_type_is_415)
{
    struct resp r;
    char       *auth = auth_of(acme->key);

    call_full("POST", "/api/flow-values-reports", auth, REV, "text/plain",
              values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                          conv(acme), NULL),
              &r);
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    call_full("POST", "/api/flow-values-reports", auth, REV, "application/json",
              values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                          conv(acme), NULL),
              &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    free(auth);
}
END_TEST

START_TEST(unknown_paths_and_unknown_ids_are_404)
{
    struct resp r;

    call(acme, "GET", "/api/catalogs/", NULL, &r);
    assert_error(&r, 404, "not_found");
    ck_assert_str_eq(kmjson_str(the_error(&r), "detail"),
                     "The path /api/catalogs/ could not be found");
    resp_free(&r);
    call(acme, "GET", "/api/flows/ZZZZZZ", NULL, &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    /* an id of another account is unknown here */
    {
        char *p = km_xasprintf("/api/lists/%s/", kiwi->lists[0].id);
        call(acme, "GET", p, NULL, &r);
        assert_error(&r, 404, "not_found");
        resp_free(&r);
        free(p);
    }
}
END_TEST

START_TEST(campaigns_need_one_channel_filter_and_no_future_bound)
{
    struct resp r;

    call(acme, "GET", "/api/campaigns", NULL, &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "parameter"), "filter");
    resp_free(&r);
    call(acme, "GET", "/api/campaigns?filter=equals(messages.channel,%27push%27)", NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call(acme, "GET",
         "/api/campaigns?filter=and(equals(messages.channel,%27email%27),"
         "less-than(updated_at,2999-01-01T00:00:00Z))",
         NULL, &r);
    assert_error(&r, 400, "invalid");
    ck_assert_ptr_nonnull(strstr(kmjson_str(the_error(&r), "detail"),
                                 "End date may not be in the future"));
    resp_free(&r);
    /* a quoted datetime is a string, not a datetime */
    call(acme, "GET",
         "/api/campaigns?filter=and(equals(messages.channel,%27email%27),"
         "greater-than(created_at,%272024-01-01T00:00:00%27))",
         NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
}
END_TEST

START_TEST(lists_refuse_additional_fields_and_page_size_on_the_collection)
{
    struct resp r;

    call(acme, "GET", "/api/lists?additional-fields%5Blist%5D=profile_count", NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    call(acme, "GET", "/api/lists?page%5Bsize%5D=5", NULL, &r);
    assert_error(&r, 400, "invalid");
    ck_assert_str_eq(source_of(&r, "parameter"), "page[size]");
    resp_free(&r);
    call(acme, "GET", "/api/flows?page%5Bsize%5D=51", NULL, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
}
END_TEST

START_TEST(the_nosms_account_has_no_sms_metrics_or_messages)
{
    ck_assert_ptr_null(simdata_metric_by_name(nosms, "Subscribed to SMS Marketing"));
    ck_assert_ptr_nonnull(simdata_metric_by_name(acme, "Subscribed to SMS Marketing"));
    for (size_t i = 0; i < nosms->n_msgs; i++)
        ck_assert_int_eq(nosms->msgs[i].channel, SIM_EMAIL);
    for (size_t i = 0; i < nosms->n_campaigns; i++)
        ck_assert_int_eq(nosms->campaigns[i].channel, SIM_EMAIL);
}
END_TEST

/* --- values and series equal the truth -------------------------------------------------- */

static const char *const STATS[] = { "recipients", "delivered", "opens_unique", "clicks_unique",
                                     "bounced", "unsubscribes", "conversions",
                                     "conversion_value", "open_rate", "click_rate",
                                     "bounce_rate", "revenue_per_recipient" };
#define N_STATS (sizeof(STATS) / sizeof(STATS[0]))

static char *
stats_json(void)
{
    kmbuf b;

    kmbuf_init(&b, 0);
    kmbuf_append(&b, "[", 1);
    for (size_t i = 0; i < N_STATS; i++)
        kmbuf_appendf(&b, "%s\"%s\"", i ? "," : "", STATS[i]);
    kmbuf_append(&b, "]", 1);
    return kmbuf_take(&b, NULL);
}

static kmday
day_of(const char *ymd)
{
    kmday d = 0;

    ck_assert_int_eq(kmdate_parse(ymd, &d), 0);
    return d;
}

/* POST a values report and return its document (caller puts). */
static json_object *
values(const struct simacct *a, int flows, const char *start, const char *end,
       const char *filter)
{
    char       *st = stats_json(), *tf = km_xasprintf("{\"start\":\"%s\",\"end\":\"%s\"}", start,
                                                      end);
    char       *extra = filter ? km_xasprintf(",\"filter\":\"%s\"", filter) : NULL;
    struct resp r;
    json_object *doc;

    call(a, "POST", flows ? "/api/flow-values-reports/" : "/api/campaign-values-reports",
         values_body(flows ? "flow-values-report" : "campaign-values-report", st, tf, conv(a),
                     extra),
         &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    ck_assert_ptr_null(kmjson_path(r.doc, "links", "next", NULL));
    doc = json_object_get(r.doc);
    resp_free(&r);
    free(st);
    free(tf);
    free(extra);
    return doc;
}

/* every row of the report equals the truth row with the same ids, and no row is missing */
static void
assert_rows_equal(json_object *doc, const struct simtruth_row *rows, long n, int flows)
{
    json_object *res = kmjson_path(doc, "data", "attributes", "results", NULL);

    ck_assert_int_eq((long)json_object_array_length(res), n);
    for (long i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(res, (size_t)i);
        json_object *g = kmjson_get(row, "groupings");
        json_object *s = kmjson_get(row, "statistics");

        ck_assert_str_eq(kmjson_str(g, flows ? "flow_id" : "campaign_id"), rows[i].entity_id);
        ck_assert_str_eq(kmjson_str(g, flows ? "flow_message_id" : "campaign_message_id"),
                         rows[i].message_id);
        ck_assert_str_eq(kmjson_str(g, "send_channel"), simdata_channel_name(rows[i].channel));
        for (size_t k = 0; k < N_STATS; k++) {
            double want = simstat_value(&rows[i].counts, simstat_find(STATS[k]));
            double got = kmjson_num(s, STATS[k], NAN);
            ck_assert_msg(fabs(got - want) < 1e-9, "%s: %f != %f", STATS[k], got, want);
        }
        /* counts are floats, and the email chain holds */
        ck_assert(json_object_is_type(kmjson_get(s, "recipients"), json_type_double));
        ck_assert(kmjson_num(s, "recipients", 0) >= kmjson_num(s, "delivered", 0));
        if (rows[i].channel == SIM_EMAIL) {
            ck_assert(kmjson_num(s, "delivered", 0) >= kmjson_num(s, "opens_unique", 0));
            ck_assert(kmjson_num(s, "opens_unique", 0) >= kmjson_num(s, "clicks_unique", 0));
        } else {
            ck_assert(kmjson_num(s, "opens_unique", 1) == 0.0);
        }
        ck_assert(kmjson_num(s, "bounced", -1) ==
                  kmjson_num(s, "recipients", 0) - kmjson_num(s, "delivered", 0));
    }
}

static double
report_total(json_object *doc, const char *stat)
{
    json_object *res = kmjson_path(doc, "data", "attributes", "results", NULL);
    double       t = 0;

    for (size_t i = 0; i < json_object_array_length(res); i++)
        t += kmjson_num(kmjson_get(json_object_array_get_idx(res, i), "statistics"), stat, 0);
    return t;
}

START_TEST(a_flow_values_report_equals_the_truth_for_whole_local_days)
{
    kmrange              days = { day_of("2025-03-03"), day_of("2025-03-09") };
    struct simtruth_row *rows;
    long                 n = simtruth_flow_values(world, "acme", days, NULL, &rows);
    json_object         *doc = values(acme, 1, "2025-03-03T00:00:00", "2025-03-09T23:59:59", NULL);

    ck_assert_int_gt(n, 10);
    assert_rows_equal(doc, rows, n, 1);
    ck_assert_uint_eq(json_object_array_length(kmjson_path(doc, "data", "relationships",
                                                           "flow-messages", "data", NULL)),
                      (size_t)n);
    json_object_put(doc);
    free(rows);
}
END_TEST

START_TEST(a_campaign_values_report_equals_the_truth_and_skips_quiet_campaigns)
{
    kmrange              days = { day_of("2024-11-01"), day_of("2024-12-15") };
    struct simtruth_row *rows;
    long                 n = simtruth_campaign_values(world, "acme", days, NULL, &rows);
    json_object         *doc = values(acme, 0, "2024-11-01", "2024-12-15T23:59:59", NULL);

    ck_assert_int_gt(n, 3);
    ck_assert_int_lt(n, (long)acme->n_campaigns);
    assert_rows_equal(doc, rows, n, 0);
    /* by send date: every row is a campaign sent inside the window */
    for (long i = 0; i < n; i++) {
        const struct simcampaign *c = simdata_campaign(acme, rows[i].entity_id);

        ck_assert_int_ge(c->send_hour, simdata_hour(days.start, 0));
        ck_assert_int_le(c->send_hour, simdata_hour(days.end, 23));
    }
    json_object_put(doc);
    free(rows);
}
END_TEST

START_TEST(a_campaign_sent_before_the_window_brings_nothing_though_its_opens_fall_in_it)
{
    const struct simcampaign *c = NULL;
    struct simtruth_row      *rows = NULL, *act = NULL;
    kmrange                   days;
    long                      n, na;
    json_object              *doc, *results;
    char                      from[11], to[24];

    for (size_t i = 0; i < acme->n_campaigns && !c; i++) {
        if (acme->campaigns[i].active && acme->campaigns[i].channel == SIM_EMAIL &&
            acme->campaigns[i].send_hour / 24 > day_of("2024-06-01"))
            c = &acme->campaigns[i];
    }
    ck_assert_ptr_nonnull(c);
    /* the three days after its send day: its opens go on there, its send does not */
    days.start = (kmday)(c->send_hour / 24) + 1;
    days.end = days.start + 2;
    n = simtruth_campaign_values(world, "acme", days, c->id, &rows);
    na = simtruth_campaign_activity(world, "acme", days, c->id, &act);
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(na, 1);
    ck_assert_int_gt(act[0].counts.v[SIMC_OPENS_UNIQUE], 0);
    kmdate_format(days.start, from);
    kmdate_format(days.end, to);
    strcat(to, "T23:59:59");
    doc = values(acme, 0, from, to, NULL);
    results = kmjson_path(doc, "data", "attributes", "results", NULL);
    for (size_t i = 0; i < json_object_array_length(results); i++) {
        json_object *g = kmjson_get(json_object_array_get_idx(results, i), "groupings");

        ck_assert_str_ne(kmjson_str(g, "campaign_id"), c->id);
    }
    json_object_put(doc);
    free(rows);
    free(act);
}
END_TEST

START_TEST(kiwi_reads_the_window_in_auckland_time_and_ignores_offsets)
{
    kmrange              days = { day_of("2025-01-10"), day_of("2025-01-12") };
    struct simtruth_row *rows;
    long                 n = simtruth_flow_values(world, "kiwi", days, NULL, &rows);
    json_object         *a = values(kiwi, 1, "2025-01-10T00:00:00", "2025-01-12T23:59:59", NULL);
    json_object         *b = values(kiwi, 1, "2025-01-10T00:00:00+00:00",
                                    "2025-01-12T23:59:59-05:00", NULL);

    ck_assert_int_gt(n, 0);
    assert_rows_equal(a, rows, n, 1);
    assert_rows_equal(b, rows, n, 1);
    json_object_put(a);
    json_object_put(b);
    free(rows);
}
END_TEST

START_TEST(a_filtered_report_has_only_the_rows_asked_for)
{
    const char          *fid = NULL;
    kmrange              days = { day_of("2025-02-01"), day_of("2025-02-28") };
    struct simtruth_row *rows;
    long                 n;
    char                *filter;
    json_object         *doc;

    for (size_t i = 0; i < acme->n_flows && !fid; i++) {
        if (strcmp(acme->flows[i].status, "live") == 0 && acme->flows[i].n_actions > 2)
            fid = acme->flows[i].id;
    }
    ck_assert_ptr_nonnull(fid);
    n = simtruth_flow_values(world, "acme", days, fid, &rows);
    filter = km_xasprintf("and(equals(flow_id,\\\"%s\\\"),equals(send_channel,\\\"email\\\"))",
                          fid);
    doc = values(acme, 1, "2025-02-01T00:00:00", "2025-02-28T23:59:59", filter);
    {
        /* keep the email rows of the truth */
        long m = 0;
        for (long i = 0; i < n; i++) {
            if (rows[i].channel == SIM_EMAIL)
                rows[m++] = rows[i];
        }
        ck_assert_int_gt(m, 0);
        assert_rows_equal(doc, rows, m, 1);
    }
    json_object_put(doc);
    free(filter);
    free(rows);
}
END_TEST

START_TEST(shifting_the_end_by_one_day_changes_the_numbers)
{
    json_object *a = values(acme, 1, "2025-05-01T00:00:00", "2025-05-10T23:59:59", NULL);
    json_object *b = values(acme, 1, "2025-05-01T00:00:00", "2025-05-11T23:59:59", NULL);
    struct simtruth_row *rows;
    struct simcounts     sum;
    kmrange              days = { day_of("2025-05-01"), day_of("2025-05-11") };
    long                 n = simtruth_flow_values(world, "acme", days, NULL, &rows);

    simtruth_sum(rows, (size_t)n, &sum);
    ck_assert(report_total(b, "recipients") > report_total(a, "recipients"));
    ck_assert(report_total(b, "recipients") == (double)sum.v[SIMC_RECIPIENTS]);
    json_object_put(a);
    json_object_put(b);
    free(rows);
}
END_TEST

START_TEST(an_end_at_next_midnight_includes_the_first_hour_of_the_next_day)
{
    kmday                d = day_of("2025-06-02"), start = day_of("2025-06-01");
    struct simtruth_row *rows;
    struct simcounts     with_hour, whole_days;
    long                 n;
    json_object         *a, *b;
    char                 end[40], ymd[11];

    /* find a day whose next day has activity in its first hour */
    for (;; d++) {
        n = simtruth_flow_values_hours(world, "acme", simdata_hour(d + 1, 0),
                                       simdata_hour(d + 1, 0), NULL, &rows);
        free(rows);
        if (n > 0)
            break;
        ck_assert_int_lt(d, start + 60);
    }
    n = simtruth_flow_values_hours(world, "acme", simdata_hour(start, 0),
                                   simdata_hour(d + 1, 0), NULL, &rows);
    simtruth_sum(rows, (size_t)n, &with_hour);
    free(rows);
    n = simtruth_flow_values(world, "acme", (kmrange){ start, d }, NULL, &rows);
    simtruth_sum(rows, (size_t)n, &whole_days);
    free(rows);
    kmdate_format(d + 1, ymd);
    snprintf(end, sizeof(end), "%sT00:00:00", ymd);
    a = values(acme, 1, "2025-06-01T00:00:00", end, NULL);
    kmdate_format(d, ymd);
    snprintf(end, sizeof(end), "%sT23:59:59", ymd);
    b = values(acme, 1, "2025-06-01T00:00:00", end, NULL);
    ck_assert(report_total(a, "recipients") == (double)with_hour.v[SIMC_RECIPIENTS]);
    ck_assert(report_total(b, "recipients") == (double)whole_days.v[SIMC_RECIPIENTS]);
    ck_assert(report_total(a, "recipients") != report_total(b, "recipients") ||
              report_total(a, "delivered") != report_total(b, "delivered") ||
              report_total(a, "clicks_unique") != report_total(b, "clicks_unique"));
    json_object_put(a);
    json_object_put(b);
}
END_TEST

static json_object *
series(const struct simacct *a, const char *interval, const char *start, const char *end,
       const char *flow_id)
{
    char       *st = stats_json(), *tf = km_xasprintf("{\"start\":\"%s\",\"end\":\"%s\"}", start,
                                                      end);
    char       *extra = km_xasprintf(",\"interval\":\"%s\",\"filter\":"
                                     "\"equals(flow_id,\\\"%s\\\")\"",
                                     interval, flow_id);
    struct resp r;
    json_object *doc;

    call(a, "POST", "/api/flow-series-reports", values_body("flow-series-report", st, tf,
                                                            conv(a), extra), &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    doc = json_object_get(r.doc);
    resp_free(&r);
    free(st);
    free(tf);
    free(extra);
    return doc;
}

static const char *
a_live_flow(const struct simacct *a)
{
    for (size_t i = 0; i < a->n_flows; i++) {
        if (strcmp(a->flows[i].status, "live") == 0 && a->flows[i].n_actions > 1)
            return a->flows[i].id;
    }
    return NULL;
}

/* the series equals the truth bucket by bucket, and its buckets sum to the values report */
static void
check_series(const struct simacct *a, kminterval iv, const char *ivname, const char *d1,
             const char *d2)
{
    const char            *fid = a_live_flow(a);
    char                   s[40], e[40];
    kmrange                days = { day_of(d1), day_of(d2) };
    struct simtruth_series ts;
    json_object           *doc, *vals, *res, *dates;

    snprintf(s, sizeof(s), "%sT00:00:00", d1);
    snprintf(e, sizeof(e), "%sT23:59:59", d2);
    doc = series(a, ivname, s, e, fid);
    ck_assert_int_gt(simtruth_flow_series(world, a->name, days, iv, fid, &ts), 0);
    dates = kmjson_path(doc, "data", "attributes", "date_times", NULL);
    res = kmjson_path(doc, "data", "attributes", "results", NULL);
    ck_assert_uint_eq(json_object_array_length(dates), ts.n_buckets);
    for (size_t k = 0; k < ts.n_buckets; k++)
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, k)),
                         ts.date_times[k]);
    ck_assert_uint_eq(json_object_array_length(res), ts.n_rows);
    vals = values(a, 1, s, e, NULL);
    for (size_t i = 0; i < ts.n_rows; i++) {
        json_object     *row = json_object_array_get_idx(res, i);
        json_object     *st = kmjson_get(row, "statistics");
        struct simcounts total;
        double           sum = 0, from_values = -1;
        json_object     *vres = kmjson_path(vals, "data", "attributes", "results", NULL);

        ck_assert_str_eq(kmjson_str(kmjson_get(row, "groupings"), "flow_message_id"),
                         ts.rows[i].message_id);
        memset(&total, 0, sizeof(total));
        for (size_t k = 0; k < ts.n_buckets; k++) {
            for (size_t q = 0; q < N_STATS; q++) {
                double want = simstat_value(&ts.rows[i].buckets[k], simstat_find(STATS[q]));
                double got = json_object_get_double(
                    json_object_array_get_idx(kmjson_get(st, STATS[q]), k));
                ck_assert_msg(fabs(got - want) < 1e-9, "%s[%zu]: %f != %f", STATS[q], k, got,
                              want);
            }
            sum += json_object_get_double(
                json_object_array_get_idx(kmjson_get(st, "recipients"), k));
            simstat_add(&total, &ts.rows[i].buckets[k]);
        }
        for (size_t v = 0; v < json_object_array_length(vres); v++) {
            json_object *vr = json_object_array_get_idx(vres, v);
            if (strcmp(kmjson_str(kmjson_get(vr, "groupings"), "flow_message_id"),
                       ts.rows[i].message_id) == 0)
                from_values = kmjson_num(kmjson_get(vr, "statistics"), "recipients", -2);
        }
        ck_assert(sum == from_values);
        ck_assert(sum == (double)total.v[SIMC_RECIPIENTS]);
    }
    simtruth_series_free(&ts);
    json_object_put(vals);
    json_object_put(doc);
}

START_TEST(a_daily_series_across_dst_equals_the_truth_and_sums_to_the_values_report)
{
    json_object *doc;
    json_object *dates;

    check_series(acme, KMI_DAILY, "daily", "2025-03-03", "2025-03-16");
    doc = series(acme, "daily", "2025-03-03T00:00:00", "2025-03-16T23:59:59", a_live_flow(acme));
    dates = kmjson_path(doc, "data", "attributes", "date_times", NULL);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 0)),
                     "2025-03-03T00:00:00-05:00");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 13)),
                     "2025-03-16T00:00:00-04:00");
    json_object_put(doc);
}
END_TEST

START_TEST(weekly_monthly_and_hourly_series_bucket_the_same_numbers)
{
    check_series(acme, KMI_WEEKLY, "weekly", "2025-03-05", "2025-04-20");
    check_series(kiwi, KMI_MONTHLY, "monthly", "2024-11-15", "2025-02-10");
    check_series(nosms, KMI_HOURLY, "hourly", "2025-03-29", "2025-03-31");
}
END_TEST

START_TEST(an_hourly_series_writes_each_wall_hour_once_across_a_dst_shift)
{
    json_object *doc = series(acme, "hourly", "2025-03-09T00:00:00", "2025-03-09T23:59:59",
                              a_live_flow(acme));
    json_object *dates = kmjson_path(doc, "data", "attributes", "date_times", NULL);

    ck_assert_uint_eq(json_object_array_length(dates), 24);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 1)),
                     "2025-03-09T01:00:00-05:00");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 2)),
                     "2025-03-09T02:00:00-05:00");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 3)),
                     "2025-03-09T03:00:00-04:00");
    json_object_put(doc);
}
END_TEST

/* --- metric aggregates ---------------------------------------------------------------------- */

static json_object *
aggregate(const struct simacct *a, const char *metric_id, const char *tz, const char *ge,
          const char *lt, const char *by)
{
    char        *body = km_xasprintf(
        "{\"data\":{\"type\":\"metric-aggregate\",\"attributes\":{\"metric_id\":\"%s\","
        "\"measurements\":[\"count\",\"unique\"],\"interval\":\"day\",\"page_size\":500,"
        "\"timezone\":\"%s\",\"filter\":[\"greater-or-equal(datetime,%s)\","
        "\"less-than(datetime,%s)\"]%s}}}",
        metric_id, tz, ge, lt, by ? by : "");
    struct resp  r;
    json_object *doc;

    call(a, "POST", "/api/metric-aggregates", body, &r);
    ck_assert_msg(r.status == 200, "%ld %s", r.status, r.body);
    doc = json_object_get(r.doc);
    resp_free(&r);
    free(body);
    return doc;
}

START_TEST(day_buckets_are_local_days_written_in_utc_and_count_like_the_truth)
{
    const struct simmetric *m = simdata_metric_by_name(acme, "Subscribed to List");
    kmrange                 days = { day_of("2025-01-06"), day_of("2025-01-12") };
    int64_t                *want;
    long                    n = simtruth_metric_daily(world, "acme", m->id, days,
                                                      "America/New_York", &want);
    json_object            *doc = aggregate(acme, m->id, "America/New_York", "2025-01-06T00:00:00",
                                            "2025-01-13T00:00:00", NULL);
    json_object            *dates = kmjson_path(doc, "data", "attributes", "dates", NULL);
    json_object            *rows = kmjson_path(doc, "data", "attributes", "data", NULL);
    json_object            *count;
    int64_t                 total = 0;

    ck_assert_int_eq(n, 7);
    ck_assert_uint_eq(json_object_array_length(dates), 7);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 0)),
                     "2025-01-06T05:00:00+00:00");
    ck_assert_uint_eq(json_object_array_length(rows), 1);
    ck_assert_uint_eq(json_object_array_length(
                          kmjson_get(json_object_array_get_idx(rows, 0), "dimensions")), 0);
    count = kmjson_path(json_object_array_get_idx(rows, 0), "measurements", "count", NULL);
    for (long i = 0; i < n; i++) {
        ck_assert(json_object_get_double(json_object_array_get_idx(count, (size_t)i)) ==
                  (double)want[i]);
        total += want[i];
    }
    ck_assert_int_gt(total, 0);
    json_object_put(doc);
    free(want);
    /* the same bounds written with an offset select the same events */
    doc = aggregate(acme, m->id, "UTC", "2025-01-06T00:00:00-05:00", "2025-01-13T00:00:00-05:00",
                    NULL);
    count = kmjson_path(json_object_array_get_idx(kmjson_path(doc, "data", "attributes", "data",
                                                              NULL), 0),
                        "measurements", "count", NULL);
    {
        double sum = 0;
        for (size_t i = 0; i < json_object_array_length(count); i++)
            sum += json_object_get_double(json_object_array_get_idx(count, i));
        ck_assert(sum == (double)total);
    }
    json_object_put(doc);
}
END_TEST

START_TEST(summer_buckets_in_new_york_start_at_four_utc)
{
    const struct simmetric *m = simdata_metric_by_name(acme, "Unsubscribed from List");
    json_object            *doc = aggregate(acme, m->id, "America/New_York", "2025-07-01T00:00:00",
                                            "2025-07-03T00:00:00", NULL);
    json_object            *dates = kmjson_path(doc, "data", "attributes", "dates", NULL);

    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(dates, 1)),
                     "2025-07-02T04:00:00+00:00");
    json_object_put(doc);
}
END_TEST

START_TEST(by_list_returns_list_names_with_the_truths_counts)
{
    const struct simmetric *m = simdata_metric_by_name(kiwi, "Subscribed to List");
    kmrange                 days = { day_of("2025-02-01"), day_of("2025-03-31") };
    struct simtruth_named  *want;
    long                    n = simtruth_metric_by_list(world, "kiwi", m->id, days,
                                                        "Pacific/Auckland", &want);
    json_object            *doc = aggregate(kiwi, m->id, "Pacific/Auckland",
                                            "2025-02-01T00:00:00", "2025-04-01T00:00:00",
                                            ",\"by\":[\"List\"]");
    json_object            *rows = kmjson_path(doc, "data", "attributes", "data", NULL);

    ck_assert_int_gt(n, 3);
    ck_assert_int_eq((long)json_object_array_length(rows), n);
    for (long i = 0; i < n; i++) {
        json_object *row = json_object_array_get_idx(rows, (size_t)i);
        json_object *cnt = kmjson_path(row, "measurements", "count", NULL);
        double       sum = 0;

        ck_assert_str_eq(json_object_get_string(
                             json_object_array_get_idx(kmjson_get(row, "dimensions"), 0)),
                         want[i].name);
        for (size_t k = 0; k < json_object_array_length(cnt); k++)
            sum += json_object_get_double(json_object_array_get_idx(cnt, k));
        ck_assert(sum == (double)want[i].events.count);
    }
    free(want);
    json_object_put(doc);
}
END_TEST

START_TEST(a_window_in_auckland_counts_differently_from_the_same_dates_in_utc)
{
    const struct simmetric *m = simdata_metric_by_name(kiwi, "Subscribed to Email Marketing");
    kmrange                 days = { day_of("2025-02-01"), day_of("2025-02-07") };
    struct simevents        nz, utc;

    ck_assert_int_eq(simtruth_metric_events(world, "kiwi", m->id, days, "Pacific/Auckland", NULL,
                                            &nz), 0);
    ck_assert_int_eq(simtruth_metric_events(world, "kiwi", m->id, days, "UTC", NULL, &utc), 0);
    ck_assert_int_ne(nz.count, utc.count);
}
END_TEST

START_TEST(aggregate_bodies_are_validated)
{
    const struct simmetric *m = simdata_metric_by_name(acme, "Subscribed to List");
    struct resp             r;
    char                   *body;

    body = km_xasprintf("{\"data\":{\"type\":\"metric-aggregate\",\"attributes\":{\"metric_id\":"
                        "\"%s\",\"measurements\":[\"count\"],\"timezone\":\"Europe/Kyiv\","
                        "\"filter\":[\"greater-or-equal(datetime,2025-01-01T00:00:00)\","
                        "\"less-than(datetime,2025-01-02T00:00:00)\"]}}}", m->id);
    call(acme, "POST", "/api/metric-aggregates", body, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    free(body);
    body = km_xasprintf("{\"data\":{\"type\":\"metric-aggregate\",\"attributes\":{\"metric_id\":"
                        "\"%s\",\"measurements\":[\"count\"],"
                        "\"filter\":[\"greater-or-equal(datetime,2024-01-01T00:00:00)\","
                        "\"less-than(datetime,2025-01-02T00:00:00)\"]}}}", m->id);
    call(acme, "POST", "/api/metric-aggregates", body, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    free(body);
    body = km_xasprintf("{\"data\":{\"type\":\"metric-aggregate\",\"attributes\":{\"metric_id\":"
                        "\"%s\",\"measurements\":[\"count\"],"
                        "\"filter\":[\"greater-or-equal(datetime,2024-01-01T00:00:00)\"]}}}",
                        m->id);
    call(acme, "POST", "/api/metric-aggregates", body, &r);
    assert_error(&r, 400, "invalid");
    resp_free(&r);
    free(body);
}
END_TEST

/* --- rate limits (time-scaled: burst 0.1 s, steady 6 s) ---------------------------------- */

static const char *
yesterday_report(void)
{
    return values_body("campaign-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                       conv(acme), NULL);
}

START_TEST(reports_allow_two_a_minute_and_the_third_is_429_throttled)
{
    struct resp r;
    json_object *e;

    call(acme, "POST", "/api/campaign-values-reports", yesterday_report(), &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.rl_limit, "1, 1;w=1, 2;w=60, 225;w=86400");
    resp_free(&r);
    nap_ms(250);   /* past the (scaled) one-second burst window */
    call(acme, "POST", "/api/campaign-values-reports", yesterday_report(), &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.rl_remaining, "0");
    resp_free(&r);
    nap_ms(250);
    call(acme, "POST", "/api/campaign-values-reports", yesterday_report(), &r);
    assert_error(&r, 429, "throttled");
    e = the_error(&r);
    ck_assert_str_eq(kmjson_str(e, "title"), "Request was throttled.");
    ck_assert_int_eq(strncmp(kmjson_str(e, "detail"), "Request was throttled. Expected available "
                             "in ", 41), 0);
    ck_assert_str_eq(source_of(&r, "pointer"), "/data");
    ck_assert_int_ge(atoi(r.retry_after), 1);
    ck_assert_int_le(atoi(r.retry_after), 6);
    ck_assert_str_eq(r.rl_limit, "");   /* no RateLimit-* on a 429 */
    resp_free(&r);
    /* another report endpoint has its own bucket */
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     conv(acme), NULL), &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_int_eq(stat_count("throttled", "POST /api/campaign-values-reports"), 1);
    ck_assert_int_eq(stat_count("calls", "POST /api/campaign-values-reports"), 3);
}
END_TEST

START_TEST(an_xs_endpoints_sixteenth_request_in_a_minute_is_429)
{
    struct resp r;
    char       *path = km_xasprintf("/api/lists/%s?additional-fields%%5Blist%%5D=profile_count",
                                    acme->lists[0].id);

    for (int i = 0; i < 15; i++) {
        call(acme, "GET", path, NULL, &r);
        ck_assert_msg(r.status == 200, "request %d: %ld", i + 1, r.status);
        resp_free(&r);
        nap_ms(120);
    }
    call(acme, "GET", path, NULL, &r);
    assert_error(&r, 429, "throttled");
    ck_assert_int_ge(atoi(r.retry_after), 1);
    resp_free(&r);
    /* the same list without profile_count is on the lists bucket, far from full */
    free(path);
    path = km_xasprintf("/api/lists/%s", acme->lists[0].id);
    call(acme, "GET", path, NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    free(path);
    /* the accounts endpoint (also XS) has its own bucket; other accounts too */
    call(acme, "GET", "/api/accounts", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(a_second_request_inside_the_burst_second_is_429)
{
    struct resp r;

    call(acme, "GET", "/api/accounts", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    call(acme, "GET", "/api/accounts", NULL, &r);
    assert_error(&r, 429, "throttled");
    ck_assert_str_eq(r.retry_after, "1");
    resp_free(&r);
    /* another account is not affected */
    call(kiwi, "GET", "/api/accounts", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(without_limits_nothing_is_ever_throttled)
{
    struct resp r;

    for (int i = 0; i < 20; i++) {
        call(acme, "POST", "/api/campaign-values-reports", yesterday_report(), &r);
        ck_assert_int_eq(r.status, 200);
        resp_free(&r);
    }
    ck_assert_int_eq(stat_count("calls", "POST /api/campaign-values-reports"), 20);
    {
        json_object *doc = control("GET", "/__sim/stats", NULL);
        ck_assert_int_eq(json_object_get_int(kmjson_get(doc, "total_throttled")), 0);
        json_object_put(doc);
    }
}
END_TEST

/* --- faults and stats --------------------------------------------------------------------- */

START_TEST(a_status_fault_fires_exactly_n_times_then_answers_resume)
{
    struct resp r;

    add_fault("{\"path\":\"/api/lists\",\"count\":2,\"mode\":\"status\",\"status\":503}");
    for (int i = 0; i < 2; i++) {
        call(acme, "GET", "/api/lists/", NULL, &r);
        assert_error(&r, 503, "service_unavailable");
        resp_free(&r);
    }
    call(acme, "GET", "/api/lists/", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_int_eq(stat_count("calls", "GET /api/lists"), 3);
    {
        json_object *doc = control("GET", "/__sim/stats", NULL);
        ck_assert_int_eq(json_object_get_int(kmjson_get(doc, "faults_fired")), 2);
        ck_assert_int_eq(json_object_get_int(kmjson_get(doc, "total_calls")), 3);
        json_object_put(doc);
    }
}
END_TEST

START_TEST(a_429_fault_carries_retry_after_and_the_throttled_body)
{
    struct resp r;

    add_fault("{\"method\":\"POST\",\"path\":\"/api/flow-values-reports\",\"count\":1,"
              "\"mode\":\"status\",\"status\":429,\"retry_after\":2}");
    /* a GET to the same prefix does not match the method */
    call(acme, "GET", "/api/flow-values-reports", NULL, &r);
    ck_assert_int_eq(r.status, 405);
    resp_free(&r);
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     conv(acme), NULL), &r);
    assert_error(&r, 429, "throttled");
    ck_assert_str_eq(r.retry_after, "2");
    resp_free(&r);
    call(acme, "POST", "/api/flow-values-reports",
         values_body("flow-values-report", "[\"recipients\"]", "{\"key\":\"yesterday\"}",
                     conv(acme), NULL), &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(a_delay_fault_delays_then_answers_normally)
{
    struct resp r;
    int64_t     t0;

    add_fault("{\"path\":\"/api/metrics\",\"count\":1,\"mode\":\"delay\",\"delay_ms\":400}");
    t0 = mono_ms();
    call(acme, "GET", "/api/metrics", NULL, &r);
    ck_assert_int_ge(mono_ms() - t0, 400);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(kmjson_get(r.doc, "data"));
    resp_free(&r);
    call(acme, "GET", "/api/metrics", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
}
END_TEST

START_TEST(malformed_and_truncated_faults_send_bodies_that_are_not_json)
{
    struct resp r;

    add_fault("{\"path\":\"/api/flows\",\"count\":1,\"mode\":\"malformed\"}");
    add_fault("{\"path\":\"/api/flows\",\"count\":1,\"mode\":\"truncated\"}");
    call(acme, "GET", "/api/flows", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(r.doc);
    ck_assert_uint_gt(strlen(r.body), 0);
    resp_free(&r);
    call(acme, "GET", "/api/flows", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_null(r.doc);
    ck_assert_int_eq(r.body[0], '{');
    resp_free(&r);
    call(acme, "GET", "/api/flows", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_ptr_nonnull(r.doc);
    resp_free(&r);
    ck_assert_int_eq(stat_count("calls", "GET /api/flows"), 3);
}
END_TEST

START_TEST(a_drop_fault_closes_the_connection_without_an_answer)
{
    struct resp r;

    add_fault("{\"path\":\"/api/accounts\",\"count\":2,\"mode\":\"drop\"}");
    for (int i = 0; i < 2; i++) {
        call(acme, "GET", "/api/accounts", NULL, &r);
        ck_assert_int_eq(r.status, 0);
        resp_free(&r);
    }
    call(acme, "GET", "/api/accounts", NULL, &r);
    ck_assert_int_eq(r.status, 200);
    resp_free(&r);
    ck_assert_int_eq(stat_count("calls", "GET /api/accounts"), 3);
}
END_TEST

START_TEST(stats_count_every_api_call_per_route_template_and_reset_clears_them)
{
    struct resp r;
    char       *p1 = km_xasprintf("/api/flows/%s/flow-actions/", acme->flows[0].id);
    char       *p2 = km_xasprintf("/api/flows/%s/flow-actions", acme->flows[1].id);

    call(acme, "GET", p1, NULL, &r);
    resp_free(&r);
    call(acme, "GET", p2, NULL, &r);
    resp_free(&r);
    call_full("GET", p1, NULL, REV, NULL, NULL, &r);   /* a 401 counts too */
    resp_free(&r);
    call(acme, "GET", "/api/nowhere", NULL, &r);
    resp_free(&r);
    json_object_put(control("GET", "/__sim/accounts", NULL));   /* not counted */
    ck_assert_int_eq(stat_count("calls", "GET /api/flows/{id}/flow-actions"), 3);
    ck_assert_int_eq(stat_count("calls", "GET /api/nowhere"), 1);
    sim_reset();
    ck_assert_int_eq(stat_count("calls", "GET /api/flows/{id}/flow-actions"), 0);
    free(p1);
    free(p2);
}
END_TEST

START_TEST(a_bad_fault_request_is_refused)
{
    json_object *doc = NULL;

    ck_assert_int_eq(kmfix_http_json(sim.url, "POST", "/__sim/faults",
                                     "{\"path\":\"/api/x\",\"mode\":\"explode\"}", &doc), 400);
    json_object_put(doc);
    ck_assert_int_eq(kmfix_http_json(sim.url, "POST", "/__sim/faults", "{\"mode\":\"drop\"}",
                                     &doc), 400);
    json_object_put(doc);
}
END_TEST

/* --- the suite ------------------------------------------------------------------------------ */

static TCase *
tcase(const char *name, void (*setup)(void), int reset_each)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, setup, stop_sim);
    if (reset_each)
        tcase_add_checked_fixture(tc, each_reset, NULL);
    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *
sim_suite(void)
{
    Suite *s = suite_create("klaviyo-sim");
    TCase *tc;

    tc = tcase("demo configuration", start_with_config, 0);
    tcase_add_test(tc, write_config_makes_files_that_kmacct_load_accepts);
    tcase_add_test(tc, control_accounts_match_the_world_of_the_same_seed);
    tcase_add_test(tc, the_same_seed_gives_the_same_world_and_another_seed_another);
    suite_add_tcase(s, tc);

    tc = tcase("pagination", start_unlimited, 0);
    tcase_add_test(tc, lists_walk_every_list_once_ten_a_page);
    tcase_add_test(tc, flows_walk_every_flow_once_with_page_size_five);
    tcase_add_test(tc, campaigns_walk_every_campaign_of_a_channel_once);
    tcase_add_test(tc, a_bad_cursor_is_400_invalid_cursor);
    tcase_add_test(tc, flow_actions_come_in_order_and_page_by_page_size);
    tcase_add_test(tc, a_send_action_lists_its_message_and_the_message_names_its_channel);
    tcase_add_test(tc, a_list_by_id_with_profile_count_has_its_size);
    tcase_add_test(tc, sparse_fieldsets_and_sort_shape_a_collection);
    tcase_add_test(tc, revision_2025_10_15_describes_actions_with_a_definition);
    suite_add_tcase(s, tc);

    tc = tcase("errors", start_unlimited, 0);
    tcase_add_test(tc, missing_wrong_and_bearer_keys_are_401_not_authenticated);
    tcase_add_test(tc, the_limited_key_reads_campaigns_but_gets_403_on_flows);
    tcase_add_test(tc, a_missing_revision_is_400_and_an_unsupported_one_is_refused);
    tcase_add_test(tc, each_bad_statistic_is_its_own_error_with_its_index);
    tcase_add_test(tc, a_timeframe_over_a_year_is_400);
    tcase_add_test(tc, series_intervals_are_capped_daily_60_days_weekly_52_weeks);
    tcase_add_test(tc, an_unknown_conversion_metric_is_400);
    tcase_add_test(tc, malformed_and_disallowed_report_filters_are_400);
    tcase_add_test(tc, a_wrong_content_type_is_415);
    tcase_add_test(tc, unknown_paths_and_unknown_ids_are_404);
    tcase_add_test(tc, campaigns_need_one_channel_filter_and_no_future_bound);
    tcase_add_test(tc, lists_refuse_additional_fields_and_page_size_on_the_collection);
    tcase_add_test(tc, the_nosms_account_has_no_sms_metrics_or_messages);
    suite_add_tcase(s, tc);

    tc = tcase("values and series", start_unlimited, 0);
    tcase_add_test(tc, a_flow_values_report_equals_the_truth_for_whole_local_days);
    tcase_add_test(tc, a_campaign_values_report_equals_the_truth_and_skips_quiet_campaigns);
    tcase_add_test(tc, a_campaign_sent_before_the_window_brings_nothing_though_its_opens_fall_in_it);
    tcase_add_test(tc, kiwi_reads_the_window_in_auckland_time_and_ignores_offsets);
    tcase_add_test(tc, a_filtered_report_has_only_the_rows_asked_for);
    tcase_add_test(tc, shifting_the_end_by_one_day_changes_the_numbers);
    tcase_add_test(tc, an_end_at_next_midnight_includes_the_first_hour_of_the_next_day);
    tcase_add_test(tc, a_daily_series_across_dst_equals_the_truth_and_sums_to_the_values_report);
    tcase_add_test(tc, weekly_monthly_and_hourly_series_bucket_the_same_numbers);
    tcase_add_test(tc, an_hourly_series_writes_each_wall_hour_once_across_a_dst_shift);
    suite_add_tcase(s, tc);

    tc = tcase("metric aggregates", start_unlimited, 0);
    tcase_add_test(tc, day_buckets_are_local_days_written_in_utc_and_count_like_the_truth);
    tcase_add_test(tc, summer_buckets_in_new_york_start_at_four_utc);
    tcase_add_test(tc, by_list_returns_list_names_with_the_truths_counts);
    tcase_add_test(tc, a_window_in_auckland_counts_differently_from_the_same_dates_in_utc);
    tcase_add_test(tc, aggregate_bodies_are_validated);
    suite_add_tcase(s, tc);

    tc = tcase("rate limits", start_limited, 1);
    tcase_add_test(tc, reports_allow_two_a_minute_and_the_third_is_429_throttled);
    tcase_add_test(tc, an_xs_endpoints_sixteenth_request_in_a_minute_is_429);
    suite_add_tcase(s, tc);

    tc = tcase("burst limit", start_unscaled, 1);
    tcase_add_test(tc, a_second_request_inside_the_burst_second_is_429);
    suite_add_tcase(s, tc);

    tc = tcase("no limits", start_unlimited, 1);
    tcase_add_test(tc, without_limits_nothing_is_ever_throttled);
    suite_add_tcase(s, tc);

    tc = tcase("faults and stats", start_unlimited, 1);
    tcase_add_test(tc, a_status_fault_fires_exactly_n_times_then_answers_resume);
    tcase_add_test(tc, a_429_fault_carries_retry_after_and_the_throttled_body);
    tcase_add_test(tc, a_delay_fault_delays_then_answers_normally);
    tcase_add_test(tc, malformed_and_truncated_faults_send_bodies_that_are_not_json);
    tcase_add_test(tc, a_drop_fault_closes_the_connection_without_an_answer);
    tcase_add_test(tc, stats_count_every_api_call_per_route_template_and_reset_clears_them);
    tcase_add_test(tc, a_bad_fault_request_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr;
    int      failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    sr = srunner_create(sim_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
