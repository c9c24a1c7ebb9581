/* check_settings.c — every setting: defaults, accepted values, and refused ones. */
#include "settings.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Fake locations: nothing is created there; the loader only builds paths from them. */
#define FAKE_HOME "/home/kmtest"
#define FAKE_RUNTIME "/run/user/4242"
#define FAKE_CACHE "/var/cache/kmtest"

/* Start every test from an environment with none of the settings in it. */
static void
setup(void)
{
    for (const struct kmcfg_doc *d = kmcfg_docs; d->name; d++)
        unsetenv(d->name);
    unsetenv("XDG_RUNTIME_DIR");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", FAKE_HOME, 1);
}

static void
teardown(void)
{
}

static kmcfg
load_ok(void)
{
    kmcfg c;
    kmerr err = { 0 };

    ck_assert_msg(kmcfg_load(&c, &err) == KM_OK, "%s", err.msg);
    return c;
}

static const char *
doc_default(const char *name)
{
    for (const struct kmcfg_doc *d = kmcfg_docs; d->name; d++) {
        if (strcmp(d->name, name) == 0)
            return d->dflt;
    }
    ck_abort_msg("%s is not documented", name);
    return NULL;
}

/* --- defaults ---------------------------------------------------------------------- */

START_TEST(every_setting_has_its_default)
{
    kmcfg c = load_ok();
    long  ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    ck_assert_str_eq(c.klaviyo_base_url, "https://a.klaviyo.com");
    ck_assert_str_eq(c.klaviyo_revision, "2025-04-15");
    ck_assert_int_eq(c.max_retries, 3);
    ck_assert_int_eq(c.klaviyo_timeout_s, 30);
    ck_assert_int_eq(c.request_deadline_s, 600);
    ck_assert_int_eq(c.cache_ttl_s, 300);
    ck_assert_int_eq(c.cache_max_mb, 256);
    ck_assert_int_eq(c.stale_grace_s, 86400);
    ck_assert_str_eq(c.rest_host, "127.0.0.1");
    ck_assert_int_eq(c.rest_port, 8080);
    ck_assert_ptr_null(c.accounts_file);
    ck_assert_uint_eq(c.n_rest_tokens, 0);
    ck_assert_int_eq(c.workers, ncpu > 0 && ncpu <= 64 ? (int)ncpu : 2);
    ck_assert_int_eq(c.service_threads, 4);
    ck_assert_str_eq(c.socket_path, FAKE_HOME "/.cache/klaviyo-mcp/klaviyo-mcp.sock");
    ck_assert_ptr_null(c.redis_url);
    ck_assert_str_eq(c.store_dir, FAKE_HOME "/.cache/klaviyo-mcp");
    ck_assert_int_eq(c.log_level, KMLOG_INFO);
    ck_assert_int_eq(c.max_body_bytes, 65536);
    ck_assert_int_eq(c.demo, 0);
    kmcfg_free(&c);
}
END_TEST

START_TEST(the_documented_defaults_match_the_loaded_ones)
{
    kmcfg c = load_ok();

    ck_assert_str_eq(doc_default("KLAVIYO_BASE_URL"), c.klaviyo_base_url);
    ck_assert_str_eq(doc_default("KLAVIYO_REVISION"), c.klaviyo_revision);
    ck_assert_int_eq(atoi(doc_default("KLAVIYO_MAX_RETRIES")), c.max_retries);
    ck_assert_int_eq(atoi(doc_default("KLAVIYO_TIMEOUT_SECONDS")), c.klaviyo_timeout_s);
    ck_assert_int_eq(atoi(doc_default("REQUEST_DEADLINE_SECONDS")), c.request_deadline_s);
    ck_assert_int_eq(atoi(doc_default("CACHE_TTL_SECONDS")), c.cache_ttl_s);
    ck_assert_int_eq(atoi(doc_default("CACHE_MAX_MB")), c.cache_max_mb);
    ck_assert_int_eq(atoi(doc_default("CACHE_REFRESH_AHEAD_SECONDS")), c.refresh_ahead_s);
    ck_assert_int_eq(atoi(doc_default("STALE_GRACE_SECONDS")), c.stale_grace_s);
    ck_assert_str_eq(doc_default("REST_HOST"), c.rest_host);
    ck_assert_int_eq(atoi(doc_default("REST_PORT")), c.rest_port);
    ck_assert_int_eq(atoi(doc_default("SERVICE_THREADS")), c.service_threads);
    ck_assert_str_eq(doc_default("LOG_LEVEL"), "info");
    ck_assert_int_eq(atoi(doc_default("REST_MAX_BODY_BYTES")), c.max_body_bytes);
    ck_assert_int_eq(atoi(doc_default("KLAVIYO_DEMO")), c.demo);
    kmcfg_free(&c);
}
END_TEST

START_TEST(the_seed_and_design_variables_are_all_documented)
{
    static const char *names[] = {
        "KLAVIYO_BASE_URL", "KLAVIYO_REVISION", "KLAVIYO_MAX_RETRIES", "CACHE_TTL_SECONDS",
        "REST_HOST",        "REST_PORT",        "ACCOUNTS_FILE",       "REST_API_KEY",
        "REST_API_TOKENS",  "WORKERS",          "KLAVIYO_MCP_SOCKET",  "REDIS_URL",
        "STORE_DIR",        "LOG_LEVEL",
    };
    size_t rows = 0;

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        ck_assert_ptr_nonnull(doc_default(names[i]));
    for (const struct kmcfg_doc *d = kmcfg_docs; d->name; d++, rows++) {
        ck_assert_ptr_nonnull(d->dflt);
        ck_assert_ptr_nonnull(d->help);
        ck_assert_uint_gt(strlen(d->help), 10);
        for (const struct kmcfg_doc *e = d + 1; e->name; e++)
            ck_assert_str_ne(d->name, e->name);
    }
    ck_assert_uint_ge(rows, sizeof(names) / sizeof(names[0]));
}
END_TEST

START_TEST(an_empty_variable_counts_as_unset)
{
    kmcfg c;

    setenv("KLAVIYO_MAX_RETRIES", "", 1);
    setenv("KLAVIYO_BASE_URL", "", 1);
    setenv("REDIS_URL", "", 1);
    c = load_ok();
    ck_assert_int_eq(c.max_retries, 3);
    ck_assert_str_eq(c.klaviyo_base_url, "https://a.klaviyo.com");
    ck_assert_ptr_null(c.redis_url);
    kmcfg_free(&c);
}
END_TEST

START_TEST(runtime_and_cache_directories_move_the_socket_and_store)
{
    kmcfg c;

    setenv("XDG_RUNTIME_DIR", FAKE_RUNTIME, 1);
    setenv("XDG_CACHE_HOME", FAKE_CACHE, 1);
    c = load_ok();
    ck_assert_str_eq(c.socket_path, FAKE_RUNTIME "/klaviyo-mcp.sock");
    ck_assert_str_eq(c.store_dir, FAKE_CACHE "/klaviyo-mcp");
    kmcfg_free(&c);
    /* relative XDG directories are ignored */
    setenv("XDG_RUNTIME_DIR", "run", 1);
    setenv("XDG_CACHE_HOME", "cache", 1);
    c = load_ok();
    ck_assert_str_eq(c.socket_path, FAKE_HOME "/.cache/klaviyo-mcp/klaviyo-mcp.sock");
    ck_assert_str_eq(c.store_dir, FAKE_HOME "/.cache/klaviyo-mcp");
    kmcfg_free(&c);
}
END_TEST

/* --- accepted values --------------------------------------------------------------- */

START_TEST(every_setting_reads_a_valid_value)
{
    kmcfg c;

    setenv("KLAVIYO_BASE_URL", "http://127.0.0.1:8931/", 1);
    setenv("KLAVIYO_REVISION", "2024-10-15", 1);
    setenv("KLAVIYO_MAX_RETRIES", "0", 1);
    setenv("KLAVIYO_TIMEOUT_SECONDS", "300", 1);
    setenv("REQUEST_DEADLINE_SECONDS", "1", 1);
    setenv("CACHE_TTL_SECONDS", "0", 1);
    setenv("CACHE_MAX_MB", "16", 1);
    setenv("STALE_GRACE_SECONDS", "604800", 1);
    setenv("REST_HOST", "0.0.0.0", 1);
    setenv("REST_PORT", "0", 1);
    setenv("ACCOUNTS_FILE", "conf/accounts.toml", 1);
    setenv("WORKERS", "64", 1);
    setenv("SERVICE_THREADS", "1", 1);
    setenv("KLAVIYO_MCP_SOCKET", "sock/km.sock", 1);
    setenv("REDIS_URL", "redis://:pw@127.0.0.1:6390/2", 1);
    setenv("STORE_DIR", "store", 1);
    setenv("LOG_LEVEL", "WARNING", 1);
    setenv("REST_MAX_BODY_BYTES", "10485760", 1);
    setenv("KLAVIYO_DEMO", "1", 1);
    c = load_ok();
    ck_assert_str_eq(c.klaviyo_base_url, "http://127.0.0.1:8931");
    ck_assert_str_eq(c.klaviyo_revision, "2024-10-15");
    ck_assert_int_eq(c.max_retries, 0);
    ck_assert_int_eq(c.klaviyo_timeout_s, 300);
    ck_assert_int_eq(c.request_deadline_s, 1);
    ck_assert_int_eq(c.cache_ttl_s, 0);
    ck_assert_int_eq(c.cache_max_mb, 16);
    ck_assert_int_eq(c.stale_grace_s, 604800);
    ck_assert_str_eq(c.rest_host, "0.0.0.0");
    ck_assert_int_eq(c.rest_port, 0);
    ck_assert_str_eq(c.accounts_file, "conf/accounts.toml");
    ck_assert_int_eq(c.workers, 64);
    ck_assert_int_eq(c.service_threads, 1);
    ck_assert_str_eq(c.socket_path, "sock/km.sock");
    ck_assert_str_eq(c.redis_url, "redis://:pw@127.0.0.1:6390/2");
    ck_assert_str_eq(c.store_dir, "store");
    ck_assert_int_eq(c.log_level, KMLOG_WARN);
    ck_assert_int_eq(c.max_body_bytes, 10485760);
    ck_assert_int_eq(c.demo, 1);
    kmcfg_free(&c);
}
END_TEST

static const char *const good_urls[][2] = {
    { "https://a.klaviyo.com", "https://a.klaviyo.com" },
    { "https://a.klaviyo.com/", "https://a.klaviyo.com" },
    { "https://proxy.example.test:8443/klaviyo//", "https://proxy.example.test:8443/klaviyo" },
    { "http://127.0.0.1:8931", "http://127.0.0.1:8931" },
    { "http://127.8.9.10", "http://127.8.9.10" },
    { "http://localhost:9000/", "http://localhost:9000" },
    { "http://localhost", "http://localhost" },
    { "http://[::1]:8080", "http://[::1]:8080" },
};

START_TEST(https_anywhere_and_http_to_loopback_are_accepted)
{
    for (size_t i = 0; i < sizeof(good_urls) / sizeof(good_urls[0]); i++) {
        kmcfg c;
        kmerr err = { 0 };

        setenv("KLAVIYO_BASE_URL", good_urls[i][0], 1);
        if (kmcfg_load(&c, &err) != KM_OK)
            ck_abort_msg("%s refused: %s", good_urls[i][0], err.msg);
        if (strcmp(c.klaviyo_base_url, good_urls[i][1]) != 0)
            ck_abort_msg("%s read as %s", good_urls[i][0], c.klaviyo_base_url);
        kmcfg_free(&c);
    }
}
END_TEST

START_TEST(a_suffixed_revision_is_accepted)
{
    kmcfg c;

    setenv("KLAVIYO_REVISION", "2025-04-15.pre", 1);
    c = load_ok();
    ck_assert_str_eq(c.klaviyo_revision, "2025-04-15.pre");
    kmcfg_free(&c);
}
END_TEST

START_TEST(log_levels_parse_in_any_case)
{
    static const struct {
        const char *v;
        kmlog_level l;
    } levels[] = { { "debug", KMLOG_DEBUG }, { "INFO", KMLOG_INFO }, { "warn", KMLOG_WARN },
                   { "Error", KMLOG_ERROR } };

    for (size_t i = 0; i < 4; i++) {
        kmcfg c;
        setenv("LOG_LEVEL", levels[i].v, 1);
        c = load_ok();
        ck_assert_int_eq(c.log_level, levels[i].l);
        kmcfg_free(&c);
    }
}
END_TEST

START_TEST(a_socket_path_just_under_the_limit_is_accepted)
{
    char  path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    kmcfg c;

    memset(path, 's', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    setenv("KLAVIYO_MCP_SOCKET", path, 1);
    c = load_ok();
    ck_assert_uint_eq(strlen(c.socket_path), sizeof(path) - 1);
    kmcfg_free(&c);
}
END_TEST

/* --- REST credentials -------------------------------------------------------------- */

START_TEST(rest_key_and_tokens_become_trimmed_credentials_in_order)
{
    kmcfg c;

    setenv("REST_API_KEY", "  key-one\t", 1);
    setenv("REST_API_TOKENS", " tok-a , tok-b,,\ttok-c\t, ", 1);
    c = load_ok();
    ck_assert_uint_eq(c.n_rest_tokens, 4);
    ck_assert(kmsecret_equal(c.rest_tokens[0], "key-one", 7));
    ck_assert(kmsecret_equal(c.rest_tokens[1], "tok-a", 5));
    ck_assert(kmsecret_equal(c.rest_tokens[2], "tok-b", 5));
    ck_assert(kmsecret_equal(c.rest_tokens[3], "tok-c", 5));
    ck_assert(!kmsecret_equal(c.rest_tokens[1], " tok-a ", 7));
    /* every credential is registered for redaction */
    ck_assert(kmsecret_leaks("x tok-c y"));
    ck_assert(kmsecret_leaks("x key-one y"));
    kmcfg_free(&c);
    ck_assert(!kmsecret_leaks("x tok-c y"));
}
END_TEST

START_TEST(tokens_alone_or_the_key_alone_are_enough)
{
    kmcfg c;

    setenv("REST_API_TOKENS", "only-token", 1);
    c = load_ok();
    ck_assert_uint_eq(c.n_rest_tokens, 1);
    ck_assert(kmsecret_equal(c.rest_tokens[0], "only-token", 10));
    kmcfg_free(&c);
    unsetenv("REST_API_TOKENS");
    setenv("REST_API_KEY", "only-key", 1);
    c = load_ok();
    ck_assert_uint_eq(c.n_rest_tokens, 1);
    ck_assert(kmsecret_equal(c.rest_tokens[0], "only-key", 8));
    kmcfg_free(&c);
}
END_TEST

/* --- refused values ---------------------------------------------------------------- */

static const struct {
    const char *var, *value;
} bad[] = {
    { "KLAVIYO_MAX_RETRIES", "abc" },
    { "KLAVIYO_MAX_RETRIES", "3x" },
    { "KLAVIYO_MAX_RETRIES", "1.5" },
    { "KLAVIYO_MAX_RETRIES", "-1" },
    { "KLAVIYO_MAX_RETRIES", "11" },
    { "KLAVIYO_MAX_RETRIES", "99999999999999999999" },
    { "KLAVIYO_MAX_RETRIES", "0x3" },
    { "KLAVIYO_TIMEOUT_SECONDS", "0" },
    { "KLAVIYO_TIMEOUT_SECONDS", "301" },
    { "REQUEST_DEADLINE_SECONDS", "0" },
    { "REQUEST_DEADLINE_SECONDS", "3601" },
    { "CACHE_TTL_SECONDS", "-1" },
    { "CACHE_TTL_SECONDS", "86401" },
    { "CACHE_REFRESH_AHEAD_SECONDS", "-1" },
    { "CACHE_REFRESH_AHEAD_SECONDS", "3601" },
    { "CACHE_MAX_MB", "15" },
    { "CACHE_MAX_MB", "65537" },
    { "STALE_GRACE_SECONDS", "-5" },
    { "STALE_GRACE_SECONDS", "604801" },
    { "REST_PORT", "-1" },
    { "REST_PORT", "65536" },
    { "REST_PORT", "http" },
    { "WORKERS", "0" },
    { "WORKERS", "65" },
    { "SERVICE_THREADS", "0" },
    { "SERVICE_THREADS", "65" },
    { "SERVICE_THREADS_MAX", "0" },
    { "SERVICE_THREADS_MAX", "257" },
    { "SERVICE_THREADS_MAX", "3" },      /* below SERVICE_THREADS (4) */
    { "QUEUE_MAX", "0" },
    { "QUEUE_MAX", "65537" },
    { "REST_MAX_BODY_BYTES", "1023" },
    { "REST_MAX_BODY_BYTES", "10485761" },
    { "KLAVIYO_DEMO", "2" },
    { "KLAVIYO_DEMO", "yes" },
    { "KLAVIYO_BASE_URL", "ftp://a.klaviyo.com" },
    { "KLAVIYO_BASE_URL", "a.klaviyo.com" },
    { "KLAVIYO_BASE_URL", "HTTPS//a.klaviyo.com" },
    { "KLAVIYO_BASE_URL", "https://" },
    { "KLAVIYO_BASE_URL", "https:///api" },
    { "KLAVIYO_BASE_URL", "http://a.klaviyo.com" },
    { "KLAVIYO_BASE_URL", "http://10.0.0.1:8080" },
    { "KLAVIYO_BASE_URL", "http://127.evil.example" },
    { "KLAVIYO_BASE_URL", "http://127.0.0.1.evil.example/" },
    { "KLAVIYO_BASE_URL", "http://localhost.evil.example" },
    { "KLAVIYO_BASE_URL", "http://localhostx:80" },
    { "KLAVIYO_BASE_URL", "http://127.0.0.1@evil.example" },
    { "KLAVIYO_BASE_URL", "http://[::1].evil.example" },
    { "KLAVIYO_BASE_URL", "https://user:pw@a.klaviyo.com" },
    { "KLAVIYO_REVISION", "latest" },
    { "KLAVIYO_REVISION", "2025-4-15" },
    { "KLAVIYO_REVISION", "20250415" },
    { "KLAVIYO_REVISION", "2025-04-15x" },
    { "KLAVIYO_REVISION", "2025-04-15.pre-release-x" },
    { "KLAVIYO_REVISION", "2025-13-45" },
    { "KLAVIYO_REVISION", "2025-02-30" },
    { "LOG_LEVEL", "verbose" },
    { "LOG_LEVEL", "2" },
    { "REDIS_URL", "localhost:6379" },
    { "REDIS_URL", "rediss://127.0.0.1:6379" },
    { "REDIS_URL", "http://127.0.0.1:6379" },
    { "REST_API_TOKENS", "," },
    { "REST_API_TOKENS", ",,,," },
    { "REST_API_TOKENS", " , \t ," },
    { "REST_API_KEY", "   " },
};

/* REST credentials that are set for every refused-value test; none may be echoed. */
#define SECRET_KEY "sekrit-key-4e1f"
#define SECRET_TOK "sekrit-tok-99a0"

START_TEST(each_bad_value_is_a_config_error_naming_the_variable)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kmcfg c;
        kmerr err = { 0 };
        int   ok;

        setenv("REST_API_KEY", SECRET_KEY, 1);
        setenv("REST_API_TOKENS", SECRET_TOK ",other-" SECRET_TOK, 1);
        setenv(bad[i].var, bad[i].value, 1);
        if (kmcfg_load(&c, &err) != KM_CONFIG_ERROR) {
            kmcfg_free(&c);
            ck_abort_msg("%s=%s was accepted", bad[i].var, bad[i].value);
        }
        ok = err.code == KM_CONFIG_ERROR && strstr(err.msg, bad[i].var) != NULL;
        if (!ok)
            ck_abort_msg("%s=%s: the message does not name it: '%s'", bad[i].var,
                         bad[i].value, err.msg);
        if (strstr(err.msg, "sekrit"))
            ck_abort_msg("%s=%s: a credential is echoed: '%s'", bad[i].var, bad[i].value,
                         err.msg);
        /* nothing is left to free */
        if (c.klaviyo_base_url || c.rest_tokens || c.n_rest_tokens)
            ck_abort_msg("%s=%s: the config still holds data", bad[i].var, bad[i].value);
        kmerr_clear(&err);
        unsetenv(bad[i].var);
    }
}
END_TEST

START_TEST(credentials_in_urls_are_never_echoed)
{
    kmcfg c;
    kmerr err = { 0 };

    setenv("KLAVIYO_BASE_URL", "https://user:" SECRET_KEY "@a.klaviyo.com", 1);
    ck_assert_int_eq(kmcfg_load(&c, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(strstr(err.msg, "sekrit"));
    kmerr_clear(&err);
    unsetenv("KLAVIYO_BASE_URL");
    setenv("REDIS_URL", "redis:/:" SECRET_KEY "@127.0.0.1", 1);
    ck_assert_int_eq(kmcfg_load(&c, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err.msg, "REDIS_URL"));
    ck_assert_ptr_null(strstr(err.msg, "sekrit"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_socket_path_at_the_limit_is_refused)
{
    char  path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
    kmcfg c;
    kmerr err = { 0 };

    memset(path, 's', sizeof(path) - 1);
    path[sizeof(path) - 1] = '\0';
    setenv("KLAVIYO_MCP_SOCKET", path, 1);
    ck_assert_int_eq(kmcfg_load(&c, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err.msg, "KLAVIYO_MCP_SOCKET"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(free_accepts_a_zeroed_config_twice)
{
    kmcfg c;

    memset(&c, 0, sizeof(c));
    kmcfg_free(&c);
    c = load_ok();
    kmcfg_free(&c);
    kmcfg_free(&c);
    kmcfg_free(NULL);
    ck_assert_ptr_null(c.store_dir);
}
END_TEST

static Suite *
settings_suite(void)
{
    Suite *s = suite_create("settings");
    TCase *tc;

    tc = tcase_create("defaults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_setting_has_its_default);
    tcase_add_test(tc, the_documented_defaults_match_the_loaded_ones);
    tcase_add_test(tc, the_seed_and_design_variables_are_all_documented);
    tcase_add_test(tc, an_empty_variable_counts_as_unset);
    tcase_add_test(tc, runtime_and_cache_directories_move_the_socket_and_store);
    suite_add_tcase(s, tc);

    tc = tcase_create("accepted");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, every_setting_reads_a_valid_value);
    tcase_add_test(tc, https_anywhere_and_http_to_loopback_are_accepted);
    tcase_add_test(tc, a_suffixed_revision_is_accepted);
    tcase_add_test(tc, log_levels_parse_in_any_case);
    tcase_add_test(tc, a_socket_path_just_under_the_limit_is_accepted);
    tcase_add_test(tc, free_accepts_a_zeroed_config_twice);
    suite_add_tcase(s, tc);

    tc = tcase_create("credentials");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rest_key_and_tokens_become_trimmed_credentials_in_order);
    tcase_add_test(tc, tokens_alone_or_the_key_alone_are_enough);
    tcase_add_test(tc, credentials_in_urls_are_never_echoed);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, each_bad_value_is_a_config_error_naming_the_variable);
    tcase_add_test(tc, a_socket_path_at_the_limit_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(settings_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
