/* check_log.c — JSON log lines: shape, levels, and redaction of every secret. */
#include "json.h"
#include "log.h"
#include "secret.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY "pk_4f9a1c2b3d4e5f60718293a4b5c6d7e8f9"

static int  cap_fd = -1;
static char cap_path[256];

/* The capture files live in one base directory that the parent process makes and removes
 * (an unchecked fixture): a failing check ends the test's process without running its
 * teardown, and the base's removal still cleans up after it. */
static char base_dir[] = "/tmp/check_log.XXXXXX";

static void
base_setup(void)
{
    strcpy(base_dir, "/tmp/check_log.XXXXXX");  /* one base per test case */
    ck_assert_ptr_nonnull(mkdtemp(base_dir));
}

static void
base_teardown(void)
{
    DIR           *d = opendir(base_dir);
    struct dirent *e;
    char           path[512];

    for (e = d ? readdir(d) : NULL; e; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", base_dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(base_dir);
}

/* Send log lines to a fresh temporary file (each test runs in its own process). */
static void
setup(void)
{
    snprintf(cap_path, sizeof(cap_path), "%s/log.XXXXXX", base_dir);
    cap_fd = mkstemp(cap_path);
    ck_assert_int_ge(cap_fd, 0);
    kmlog_set_fd(cap_fd);
}

static void
teardown(void)
{
    kmlog_set_fd(2);
    close(cap_fd);
    unlink(cap_path);
    cap_fd = -1;
}

/* Everything logged so far, as one new string. */
static char *
captured(void)
{
    off_t  size = lseek(cap_fd, 0, SEEK_END);
    char  *buf = malloc((size_t)size + 1);
    size_t got = 0;

    ck_assert_int_ge(size, 0);
    while (got < (size_t)size) {
        ssize_t n = pread(cap_fd, buf + got, (size_t)size - got, (off_t)got);
        ck_assert_int_gt(n, 0);
        got += (size_t)n;
    }
    buf[got] = '\0';
    return buf;
}

static int
count_lines(const char *text)
{
    int n = 0;

    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

/* The single line logged so far, parsed; asserts there is exactly one and it is JSON. */
static json_object *
only_line(char **raw)
{
    char        *text = captured();
    json_object *o = NULL;
    kmerr        err = { 0 };
    size_t       n = strlen(text);

    ck_assert_int_eq(count_lines(text), 1);
    ck_assert_int_eq(text[n - 1], '\n');
    ck_assert_int_eq(kmjson_parse(text, n, KM_INVALID_ARGUMENT, &o, &err), KM_OK);
    ck_assert(json_object_is_type(o, json_type_object));
    if (raw)
        *raw = text;
    else
        free(text);
    return o;
}

/* --- line shape -------------------------------------------------------------------- */

START_TEST(a_line_is_one_json_object_with_time_level_event_and_pid)
{
    json_object *o, *f = json_object_new_object();
    const char  *t;

    json_object_object_add(f, "account", json_object_new_string("acme"));
    json_object_object_add(f, "ms", json_object_new_int(12));
    kmlog(KMLOG_INFO, "request_done", f);
    o = only_line(NULL);
    t = kmjson_str(o, "time");
    ck_assert_ptr_nonnull(t);
    /* 2026-11-29T03:40:42.123Z */
    ck_assert_uint_eq(strlen(t), 24);
    ck_assert_int_eq(t[10], 'T');
    ck_assert_int_eq(t[19], '.');
    ck_assert_int_eq(t[23], 'Z');
    ck_assert_str_eq(kmjson_str(o, "level"), "info");
    ck_assert_str_eq(kmjson_str(o, "event"), "request_done");
    ck_assert_int_eq(json_object_get_int(kmjson_get(o, "pid")), (int)getpid());
    ck_assert_str_eq(kmjson_str(o, "account"), "acme");
    ck_assert_int_eq(json_object_get_int(kmjson_get(o, "ms")), 12);
    json_object_put(o);
}
END_TEST

START_TEST(the_first_four_keys_come_in_a_fixed_order)
{
    char        *raw = NULL;
    json_object *o;

    kmlog(KMLOG_WARN, "x", NULL);
    o = only_line(&raw);
    ck_assert(strncmp(raw, "{\"time\":\"", 9) == 0);
    ck_assert_ptr_nonnull(strstr(raw, "\",\"level\":\"warning\",\"event\":\"x\",\"pid\":"));
    json_object_put(o);
    free(raw);
}
END_TEST

START_TEST(a_message_with_newlines_stays_on_one_line)
{
    json_object *o;

    kmlogf(KMLOG_ERROR, "upstream_error", "line one\nline two\r\n\tend %d", 3);
    o = only_line(NULL);
    ck_assert_str_eq(kmjson_str(o, "level"), "error");
    ck_assert_str_eq(kmjson_str(o, "message"), "line one\nline two\r\n\tend 3");
    json_object_put(o);
}
END_TEST

START_TEST(each_call_writes_exactly_one_line)
{
    char *text;

    kmlog(KMLOG_INFO, "a", NULL);
    kmlogf(KMLOG_INFO, "b", "%s", "two");
    kmlog(KMLOG_ERROR, "c", json_object_new_object());
    text = captured();
    ck_assert_int_eq(count_lines(text), 3);
    free(text);
}
END_TEST

/* --- levels ------------------------------------------------------------------------ */

START_TEST(the_default_level_is_info)
{
    char *text;

    ck_assert_int_eq(kmlog_get_level(), KMLOG_INFO);
    ck_assert(!kmlog_enabled(KMLOG_DEBUG));
    ck_assert(kmlog_enabled(KMLOG_INFO));
    kmlog(KMLOG_DEBUG, "hidden", NULL);
    kmlogf(KMLOG_DEBUG, "hidden", "x");
    text = captured();
    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(lines_below_the_level_are_dropped)
{
    char *text;

    kmlog_set_level(KMLOG_WARN);
    ck_assert_int_eq(kmlog_get_level(), KMLOG_WARN);
    kmlog(KMLOG_DEBUG, "dropped_debug", NULL);
    kmlog(KMLOG_INFO, "dropped_info", json_object_new_object());
    kmlog(KMLOG_WARN, "kept_warn", NULL);
    kmlogf(KMLOG_ERROR, "kept_error", "boom");
    text = captured();
    ck_assert_int_eq(count_lines(text), 2);
    ck_assert_ptr_null(strstr(text, "dropped"));
    ck_assert_ptr_nonnull(strstr(text, "\"kept_warn\""));
    ck_assert_ptr_nonnull(strstr(text, "\"kept_error\""));
    free(text);
}
END_TEST

START_TEST(level_off_writes_nothing)
{
    char *text;

    kmlog_set_level(KMLOG_OFF);
    ck_assert(!kmlog_enabled(KMLOG_ERROR));
    ck_assert(!kmlog_enabled(KMLOG_OFF));
    kmlog(KMLOG_ERROR, "e", NULL);
    kmlogf(KMLOG_ERROR, "e", "x");
    text = captured();
    ck_assert_str_eq(text, "");
    free(text);
}
END_TEST

START_TEST(level_debug_writes_everything)
{
    char *text;

    kmlog_set_level(KMLOG_DEBUG);
    kmlog(KMLOG_DEBUG, "d", NULL);
    kmlog(KMLOG_INFO, "i", NULL);
    text = captured();
    ck_assert_int_eq(count_lines(text), 2);
    ck_assert_ptr_nonnull(strstr(text, "\"level\":\"debug\""));
    free(text);
}
END_TEST

START_TEST(level_names_parse_in_any_case)
{
    static const struct {
        const char *name;
        kmlog_level level;
    } names[] = {
        { "debug", KMLOG_DEBUG }, { "info", KMLOG_INFO },   { "warning", KMLOG_WARN },
        { "warn", KMLOG_WARN },   { "error", KMLOG_ERROR }, { "off", KMLOG_OFF },
        { "DEBUG", KMLOG_DEBUG }, { "Warning", KMLOG_WARN }, { "ERROR", KMLOG_ERROR },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        kmlog_level l = KMLOG_OFF;
        if (names[i].level == KMLOG_OFF)
            l = KMLOG_DEBUG;
        ck_assert_int_eq(kmlog_parse_level(names[i].name, &l), 0);
        ck_assert_int_eq(l, names[i].level);
    }
}
END_TEST

START_TEST(an_unknown_level_name_fails_and_leaves_the_output_alone)
{
    kmlog_level l = KMLOG_ERROR;

    ck_assert_int_eq(kmlog_parse_level("verbose", &l), -1);
    ck_assert_int_eq(kmlog_parse_level("", &l), -1);
    ck_assert_int_eq(kmlog_parse_level("info ", &l), -1);
    ck_assert_int_eq(l, KMLOG_ERROR);
}
END_TEST

/* --- redaction --------------------------------------------------------------------- */

/* Log `text` as a message and as a field value; the output must not contain `part`. */
static void
assert_never_logged(const char *text, const char *part)
{
    json_object *f = json_object_new_object();
    char        *out;

    json_object_object_add(f, "detail", json_object_new_string(text));
    kmlog(KMLOG_ERROR, "with_field", f);
    kmlogf(KMLOG_ERROR, "with_message", "failed: %s", text);
    out = captured();
    ck_assert_int_eq(count_lines(out), 2);
    ck_assert_msg(strstr(out, part) == NULL, "'%s' reached the log: %s", part, out);
    ck_assert_ptr_nonnull(strstr(out, "[REDACTED]"));
    free(out);
}

START_TEST(a_klaviyo_key_in_a_url_never_reaches_the_log)
{
    assert_never_logged("GET https://x/?api_key=" KEY "&page=2", "4f9a1c2b");
}
END_TEST

START_TEST(a_klaviyo_key_in_an_authorization_header_never_reaches_the_log)
{
    assert_never_logged("Authorization: Klaviyo-API-Key " KEY, "4f9a1c2b");
}
END_TEST

START_TEST(a_bearer_token_never_reaches_the_log)
{
    assert_never_logged("Authorization: Bearer tok-8be1", "tok-8be1");
}
END_TEST

START_TEST(an_x_api_key_token_never_reaches_the_log)
{
    assert_never_logged("X-API-Key: tok-8be1", "tok-8be1");
}
END_TEST

START_TEST(a_key_in_a_json_string_never_reaches_the_log)
{
    assert_never_logged("{\"errors\":[{\"detail\":\"key " KEY " is invalid\"}]}", "4f9a1c2b");
}
END_TEST

START_TEST(a_key_in_an_error_text_never_reaches_the_log)
{
    kmerr e = { 0 };

    kmerr_set(&e, KM_INVALID_API_KEY, "Klaviyo refused %s with 401", KEY);
    assert_never_logged(e.msg, "4f9a1c2b");
    kmerr_clear(&e);
}
END_TEST

START_TEST(a_registered_token_never_reaches_the_log_in_values_or_keys)
{
    kmsecret    *s = kmsecret_new("correct-horse-battery");
    json_object *f = json_object_new_object();
    json_object *nested = json_object_new_object();
    json_object *arr = json_object_new_array();
    char        *out;

    json_object_object_add(f, "plain", json_object_new_string("correct-horse-battery"));
    json_object_object_add(f, "inside", json_object_new_string("a-correct-horse-battery-b"));
    json_object_object_add(f, "correct-horse-battery", json_object_new_int(1));
    json_object_array_add(arr, json_object_new_string("correct-horse-battery"));
    json_object_object_add(nested, "deep", arr);
    json_object_object_add(f, "nested", nested);
    kmlog(KMLOG_WARN, "auth_failed", f);
    kmlogf(KMLOG_WARN, "auth_failed", "token correct-horse-battery rejected");
    kmlog(KMLOG_WARN, "correct-horse-battery", NULL);
    out = captured();
    ck_assert_int_eq(count_lines(out), 3);
    ck_assert_ptr_null(strstr(out, "correct-horse"));
    ck_assert_ptr_null(strstr(out, "horse-battery"));
    ck_assert_ptr_nonnull(strstr(out, "\"a-[REDACTED]-b\""));
    free(out);
    kmsecret_free(s);
}
END_TEST

START_TEST(a_registered_token_with_json_special_characters_never_reaches_the_log)
{
    /* JSON escapes quote and backslash, so the line holds an escaped form of the token */
    kmsecret    *s = kmsecret_new("ab\"cd\\ef/gh");
    json_object *f = json_object_new_object();
    char        *out;

    json_object_object_add(f, "token", json_object_new_string("ab\"cd\\ef/gh"));
    kmlog(KMLOG_WARN, "auth_failed", f);
    kmlogf(KMLOG_WARN, "auth_failed", "got ab\"cd\\ef/gh");
    out = captured();
    ck_assert_int_eq(count_lines(out), 2);
    ck_assert_ptr_null(strstr(out, "cd\\\\ef"));
    ck_assert_ptr_null(strstr(out, "ef/gh"));
    ck_assert_ptr_null(strstr(out, "ab\\\"cd"));
    free(out);
    kmsecret_free(s);
}
END_TEST

START_TEST(a_token_at_the_message_size_limit_is_not_cut_into_a_visible_prefix)
{
    /* kmlogf bounds its message; a token that straddles the bound must still be hidden,
     * not cut into a prefix ("corr") that is too short to be recognised */
    kmsecret *s = kmsecret_new("correct-horse-battery");
    char      pad[1100];
    char     *out, *line, *save = NULL;
    int       lines = 0;

    for (size_t n = 990; n < 1030; n++) {
        memset(pad, 'p', n);
        pad[n] = '\0';
        kmlogf(KMLOG_WARN, "long", "%s correct-horse-battery", pad);
    }
    out = captured();
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = NULL;
        const char  *msg;

        ck_assert_int_eq(kmjson_parse(line, strlen(line), KM_INVALID_ARGUMENT, &o, NULL), KM_OK);
        msg = kmjson_str(o, "message");
        ck_assert_ptr_nonnull(msg);
        /* the padding is all 'p': any visible part of the token starts with " c" */
        ck_assert_msg(strstr(msg, " c") == NULL, "token prefix logged: ...%s",
                      msg + strlen(msg) - 12);
        json_object_put(o);
        lines++;
    }
    ck_assert_int_eq(lines, 40);
    free(out);
    kmsecret_free(s);
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc;

    tc = tcase_create("shape");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_line_is_one_json_object_with_time_level_event_and_pid);
    tcase_add_test(tc, the_first_four_keys_come_in_a_fixed_order);
    tcase_add_test(tc, a_message_with_newlines_stays_on_one_line);
    tcase_add_test(tc, each_call_writes_exactly_one_line);
    suite_add_tcase(s, tc);

    tc = tcase_create("levels");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_default_level_is_info);
    tcase_add_test(tc, lines_below_the_level_are_dropped);
    tcase_add_test(tc, level_off_writes_nothing);
    tcase_add_test(tc, level_debug_writes_everything);
    tcase_add_test(tc, level_names_parse_in_any_case);
    tcase_add_test(tc, an_unknown_level_name_fails_and_leaves_the_output_alone);
    suite_add_tcase(s, tc);

    tc = tcase_create("redaction");
    tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_klaviyo_key_in_a_url_never_reaches_the_log);
    tcase_add_test(tc, a_klaviyo_key_in_an_authorization_header_never_reaches_the_log);
    tcase_add_test(tc, a_bearer_token_never_reaches_the_log);
    tcase_add_test(tc, an_x_api_key_token_never_reaches_the_log);
    tcase_add_test(tc, a_key_in_a_json_string_never_reaches_the_log);
    tcase_add_test(tc, a_key_in_an_error_text_never_reaches_the_log);
    tcase_add_test(tc, a_registered_token_never_reaches_the_log_in_values_or_keys);
    tcase_add_test(tc, a_registered_token_with_json_special_characters_never_reaches_the_log);
    tcase_add_test(tc, a_token_at_the_message_size_limit_is_not_cut_into_a_visible_prefix);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
