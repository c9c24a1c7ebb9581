/* check_cache.c — the client's response cache over an LMDB store: keys, fresh and stale reads,
 * and the failures a fetcher leaves for the requests that waited on it. */
#include "cache.h"

#include "util.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static kmstore *
open_store(int grace_s)
{
    const char  *tmp = getenv("TMPDIR");
    kmstore_opts o = { 0 };
    kmstore     *st = NULL;
    kmerr        err = { 0 };

    snprintf(dir, sizeof(dir), "%s/check_cache.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    o.dir = dir;
    o.stale_grace_s = grace_s;
    ck_assert_int_eq(kmstore_open(&o, &st, &err), KM_OK);
    return st;
}

static void
close_store(kmstore *st)
{
    kmstore_close(st);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

START_TEST(a_key_names_the_account_and_hashes_everything_that_shapes_the_answer)
{
    char a[KMCACHE_KEY_MAX], b[KMCACHE_KEY_MAX];

    ck_assert_int_eq(kmcache_key("2025-10-15", 60, "acme", "GET", "/api/flows/", NULL, a,
                                 sizeof(a)), 1);
    ck_assert_int_eq(strncmp(a, "c:acme:", 7), 0);
    ck_assert_uint_eq(strlen(a), 7 + 16);
    kmcache_key("2025-10-15", 60, "acme", "GET", "/api/flows/", NULL, b, sizeof(b));
    ck_assert_str_eq(a, b);
    kmcache_key("2024-10-15", 60, "acme", "GET", "/api/flows/", NULL, b, sizeof(b));
    ck_assert_str_ne(a, b);
    kmcache_key("2025-10-15", 60, "acme", "POST", "/api/flows/", NULL, b, sizeof(b));
    ck_assert_str_ne(a, b);
    kmcache_key("2025-10-15", 60, "acme", "GET", "/api/flows/", "{}", b, sizeof(b));
    ck_assert_str_ne(a, b);
    kmcache_key("2025-10-15", 60, "beta", "GET", "/api/flows/", NULL, b, sizeof(b));
    ck_assert_str_ne(a, b);
    /* a TTL of zero: no cache, no key */
    ck_assert_int_eq(kmcache_key("2025-10-15", 0, "acme", "GET", "/api/flows/", NULL, b,
                                 sizeof(b)), 0);
    ck_assert_str_eq(b, "");
}
END_TEST

START_TEST(an_entry_is_fresh_then_only_a_stale_answer_then_gone)
{
    kmstore     *st = open_store(2);
    json_object *doc = NULL;
    int64_t      age = -1;
    const char  *body = "{\"data\":[1]}";

    kmcache_put(st, "c:acme:1", body, strlen(body), 1);
    ck_assert_int_eq(kmcache_fresh(st, "c:acme:1"), 1);
    /* the size of the text it parsed */
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:1", 0, &doc, &age), strlen(body));
    ck_assert_int_eq((int)json_object_array_length(json_object_object_get(doc, "data")), 1);
    json_object_put(doc);
    sleep_ms(1200);
    ck_assert_int_eq(kmcache_fresh(st, "c:acme:1"), 0);
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:1", 0, &doc, &age), 0);
    ck_assert_ptr_null(doc);
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:1", 1, &doc, &age), strlen(body));
    ck_assert_int_ge(age, 1000);
    json_object_put(doc);
    sleep_ms(2200);
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:1", 1, &doc, &age), 0);
    close_store(st);
}
END_TEST

START_TEST(a_body_that_is_not_a_json_object_is_no_answer)
{
    kmstore     *st = open_store(2);
    json_object *doc = NULL;
    int64_t      age = 0;

    kmcache_put(st, "c:acme:2", "[1,2]", 5, 60);
    kmcache_put(st, "c:acme:3", "<html>", 6, 60);
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:2", 1, &doc, &age), 0);
    ck_assert_uint_eq(kmcache_lookup(st, "c:acme:3", 1, &doc, &age), 0);
    ck_assert_uint_eq(kmcache_lookup(st, "", 1, &doc, &age), 0);
    ck_assert_ptr_null(doc);
    close_store(st);
}
END_TEST

START_TEST(a_shared_failure_reaches_the_requests_that_waited_for_it_only)
{
    kmstore *st = open_store(2);
    kmerr    fe = { 0 }, got = { 0 };
    int64_t  before = km_now_ms() - 50;
    int      stale = -1;

    kmerr_set(&fe, KM_RATE_LIMITED, "Klaviyo is throttling account 'acme'");
    fe.retry_after_s = 7;
    kmcache_share_failure(st, "f:c:acme:4", &fe, KM_RATE_LIMITED, 1);
    ck_assert_int_eq(kmcache_shared_failure(st, "f:c:acme:4", before, km_now_ms(), &got,
                                            &stale), 1);
    ck_assert_int_eq(got.code, KM_RATE_LIMITED);
    ck_assert_str_eq(got.msg, "Klaviyo is throttling account 'acme'");
    ck_assert_int_eq(got.retry_after_s, 7);
    ck_assert_int_eq(stale, 1);
    kmerr_clear(&got);
    /* a request that began waiting after the failure was left did not wait for it */
    sleep_ms(20);
    ck_assert_int_eq(kmcache_shared_failure(st, "f:c:acme:4", km_now_ms(), km_now_ms(), &got,
                                            &stale), 0);
    /* nor one that never waited */
    ck_assert_int_eq(kmcache_shared_failure(st, "f:c:acme:4", 0, km_now_ms(), &got, &stale),
                     0);
    kmerr_clear(&fe);
    close_store(st);
}
END_TEST

static Suite *
cache_suite(void)
{
    Suite *s = suite_create("cache");
    TCase *tc;

    tc = tcase_create("keys");
    tcase_add_test(tc, a_key_names_the_account_and_hashes_everything_that_shapes_the_answer);
    suite_add_tcase(s, tc);

    tc = tcase_create("entries");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, an_entry_is_fresh_then_only_a_stale_answer_then_gone);
    tcase_add_test(tc, a_body_that_is_not_a_json_object_is_no_answer);
    tcase_add_test(tc, a_shared_failure_reaches_the_requests_that_waited_for_it_only);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cache_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
