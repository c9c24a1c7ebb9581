/* check_metrics.c — the shared counter table behind GET /metrics, and the strict text-format
 * parser the restd suite scrapes with. Each test runs in its own forked process (Check), so
 * each maps a fresh table. */
#include "kl.h"
#include "metrics.h"
#include "promtext.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const routes[] = { "/health", "/metrics", "/v1/flows" };

static json_object *
scrape(void)
{
    size_t       len;
    char        *text = kmmet_render(&len);
    char         why[256];
    json_object *series = NULL;

    ck_assert_uint_eq(strlen(text), len);
    ck_assert_msg(promtext_parse(text, &series, why, sizeof(why)) == 0, "%s\n%s", why, text);
    free(text);
    return series;
}

START_TEST(without_a_table_every_hook_is_a_no_op_and_the_text_is_empty)
{
    size_t len = 99;
    char  *text;

    kmmet_request("/health", 200, 1);
    kmmet_klaviyo(KMT_REPORTS, 200);
    kmmet_report_budget("acme", 3);
    text = kmmet_render(&len);
    ck_assert_str_eq(text, "");
    ck_assert_uint_eq(len, 0);
    free(text);
}
END_TEST

START_TEST(counts_from_forked_children_add_up_in_one_table)
{
    json_object *s;

    ck_assert_int_eq(kmmet_init(routes, 3, NULL), KM_OK);
    for (int c = 0; c < 3; c++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            for (int i = 0; i < 1000; i++) {
                kmmet_request("/v1/flows", 200, 2);
                kmmet_cache(KMMET_CACHE_HIT);
            }
            kmmet_klaviyo(KMT_S, 200);
            _exit(0);
        }
    }
    for (int c = 0; c < 3; c++) {
        int st;
        ck_assert_int_gt(wait(&st), 0);
        ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    kmmet_request("/v1/flows", 200, 2);
    s = scrape();
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_http_requests_total"
                                          "{route=\"/v1/flows\",status=\"200\"}"), 3001);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_cache_lookups_total{result=\"hit\"}"),
                        3000);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_klaviyo_requests_total"
                                          "{status=\"200\",tier=\"S\"}"), 3);
    json_object_put(s);
    kmmet_free();
}
END_TEST

START_TEST(unknown_routes_and_statuses_are_counted_as_other)
{
    json_object *s;

    ck_assert_int_eq(kmmet_init(routes, 3, NULL), KM_OK);
    kmmet_request("/no/such/route", 404, 1);
    kmmet_request("/health", 418, 1);
    kmmet_klaviyo(KMT_REPORTS, 0);
    kmmet_klaviyo(KMT_REPORTS, 429);
    kmmet_klaviyo(KMT_REPORTS, 418);
    kmmet_klaviyo(KMT_COUNT, 200);          /* out of range: ignored */
    s = scrape();
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_http_requests_total"
                                          "{route=\"other\",status=\"404\"}"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_http_requests_total"
                                          "{route=\"/health\",status=\"other\"}"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_klaviyo_requests_total"
                                          "{status=\"transport\",tier=\"reports\"}"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_klaviyo_requests_total"
                                          "{status=\"other\",tier=\"reports\"}"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_klaviyo_throttled_total"
                                          "{tier=\"reports\"}"), 1);
    json_object_put(s);
    kmmet_free();
}
END_TEST

START_TEST(latencies_land_in_cumulative_buckets_and_the_sum)
{
    json_object *s;

    ck_assert_int_eq(kmmet_init(routes, 3, NULL), KM_OK);
    kmmet_request("/v1/flows", 200, 3);
    kmmet_request("/v1/flows", 200, 300);
    kmmet_request("/v1/flows", 200, 70000);
    s = scrape();
#define B(le) promtext_value(s, "klaviyo_mcp_http_request_duration_seconds_bucket" \
                                "{le=\"" le "\",route=\"/v1/flows\"}")
    ck_assert_double_eq(B("0.005"), 1);
    ck_assert_double_eq(B("0.25"), 1);
    ck_assert_double_eq(B("0.5"), 2);
    ck_assert_double_eq(B("60"), 2);
    ck_assert_double_eq(B("+Inf"), 3);
#undef B
    ck_assert_double_eq_tol(promtext_value(s, "klaviyo_mcp_http_request_duration_seconds_sum"
                                              "{route=\"/v1/flows\"}"), 70.303, 1e-9);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_http_request_duration_seconds_count"
                                          "{route=\"/v1/flows\"}"), 3);
    json_object_put(s);
    kmmet_free();
}
END_TEST

START_TEST(supervision_counters_and_the_budget_gauge_are_reported)
{
    json_object *s;

    ck_assert_int_eq(kmmet_init(routes, 3, NULL), KM_OK);
    kmmet_workers_alive(4);
    kmmet_respawn();
    kmmet_reload(1);
    kmmet_reload(0);
    kmmet_reload(0);
    kmmet_report_budget("acme", 220);
    kmmet_report_budget("acme", 219);
    kmmet_report_budget("odd\"name\\x", 7);
    kmmet_coalesced();
    kmmet_answer_cache(1);
    kmmet_answer_cache(0);
    kmmet_answer_cache(1);
    s = scrape();
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_workers_alive"), 4);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_worker_respawns_total"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_reloads_total{result=\"ok\"}"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_reloads_total{result=\"failed\"}"), 2);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_report_budget_remaining"
                                          "{account=\"acme\"}"), 219);
    /* the escaped label value parses back to the name */
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_report_budget_remaining"
                                          "{account=\"odd\"name\\x\"}"), 7);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_coalesced_waits_total"), 1);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_answer_cache_lookups_total"
                                          "{result=\"hit\"}"), 2);
    ck_assert_double_eq(promtext_value(s, "klaviyo_mcp_answer_cache_lookups_total"
                                          "{result=\"miss\"}"), 1);
    json_object_put(s);
    kmmet_free();
}
END_TEST

/* The parser is strict: each of these texts is refused. */
static const char *const bad_texts[] = {
    "a 1",                                                    /* no final newline */
    "1a 1\n",                                                 /* bad metric name */
    "a{1b=\"x\"} 1\n",                                        /* bad label name */
    "a{b=\"\\t\"} 1\n",                                       /* unknown escape */
    "a{b=\"x\" 1\n",                                          /* unterminated labels */
    "a one\n",                                                /* not a number */
    "a 1 2 3\n",                                              /* trailing text */
    "a 1\n# TYPE a counter\n",                                /* TYPE after a sample */
    "# TYPE a counter\n# TYPE a counter\na 1\n",             /* TYPE twice */
    "# TYPE a wibble\na 1\n",                                 /* unknown type */
    "a 1\nb 1\na{x=\"y\"} 2\n",                               /* not contiguous */
    "a 1\na 2\n",                                             /* duplicate series */
    "# TYPE a counter\na -1\n",                               /* negative counter */
    "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
    "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n",
    "# TYPE h histogram\nh_bucket{x=\"1\"} 2\n",
};

START_TEST(the_parser_refuses_what_the_format_does_not_allow)
{
    json_object *s = NULL;
    char         why[256] = "";

    ck_assert_msg(promtext_parse(bad_texts[_i], &s, why, sizeof(why)) == -1,
                  "accepted: %s", bad_texts[_i]);
    ck_assert_ptr_null(s);
    ck_assert(why[0] != '\0');
}
END_TEST

START_TEST(the_parser_accepts_a_well_formed_text)
{
    const char *ok = "# HELP h A histogram.\n# TYPE h histogram\n"
                     "h_bucket{le=\"0.5\",r=\"a\"} 1\nh_bucket{le=\"+Inf\",r=\"a\"} 2\n"
                     "h_sum{r=\"a\"} 0.7\nh_count{r=\"a\"} 2\n"
                     "# a comment\n\n# TYPE c counter\nc_total{x=\"q\\\"\\\\\\n\"} 3 1700000000\n"
                     "g NaN\ng2 +Inf\n";
    json_object *s = NULL;
    char         why[256] = "";

    ck_assert_msg(promtext_parse(ok, &s, why, sizeof(why)) == 0, "%s", why);
    ck_assert_double_eq(promtext_value(s, "h_count{r=\"a\"}"), 2);
    ck_assert_double_eq(promtext_value(s, "c_total{x=\"q\"\\\n\"}"), 3);
    ck_assert_double_eq(promtext_value(s, "absent"), 0);
    json_object_put(s);
}
END_TEST

static Suite *
metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("table");

    tcase_add_test(tc, without_a_table_every_hook_is_a_no_op_and_the_text_is_empty);
    tcase_add_test(tc, counts_from_forked_children_add_up_in_one_table);
    tcase_add_test(tc, unknown_routes_and_statuses_are_counted_as_other);
    tcase_add_test(tc, latencies_land_in_cumulative_buckets_and_the_sum);
    tcase_add_test(tc, supervision_counters_and_the_budget_gauge_are_reported);
    suite_add_tcase(s, tc);
    tc = tcase_create("parser");
    tcase_add_loop_test(tc, the_parser_refuses_what_the_format_does_not_allow, 0,
                        (int)(sizeof(bad_texts) / sizeof(bad_texts[0])));
    tcase_add_test(tc, the_parser_accepts_a_well_formed_text);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
