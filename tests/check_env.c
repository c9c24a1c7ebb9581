/* check_env.c — .env lines, files, and the search path's precedence. */
#include "env.h"
#include "sandbox.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- one line ---------------------------------------------------------------------- */

/* Parse `line`; assert it gives key `k` and value `v` (both NULL for nothing). */
static void
assert_line(const char *line, const char *k, const char *v)
{
    char  *key = (char *)1, *val = (char *)1;
    kmerr  err = { 0 };
    kmcode rc = kmenv_parse_line(line, "t:1", &key, &val, &err);

    ck_assert_msg(rc == KM_OK, "'%s' failed: %s", line, err.msg);
    if (!k) {
        ck_assert_ptr_null(key);
        ck_assert_ptr_null(val);
        return;
    }
    ck_assert_ptr_nonnull(key);
    ck_assert_ptr_nonnull(val);
    ck_assert_str_eq(key, k);
    ck_assert_msg(strcmp(val, v) == 0, "'%s' gave value '%s', want '%s'", line, val, v);
    free(key);
    free(val);
}

/* Parse `line`; assert it is a CONFIG_ERROR whose message starts with "t:7: ". Returns
 * nothing; `hidden` (may be NULL) must not appear in the message. */
static void
assert_bad_line(const char *line, const char *hidden)
{
    char  *key = (char *)1, *val = (char *)1;
    kmerr  err = { 0 };

    ck_assert_int_eq(kmenv_parse_line(line, "t:7", &key, &val, &err), KM_CONFIG_ERROR);
    ck_assert_int_eq(err.code, KM_CONFIG_ERROR);
    ck_assert_msg(strncmp(err.msg, "t:7: ", 5) == 0, "'%s': %s", line, err.msg);
    ck_assert_ptr_null(key);
    ck_assert_ptr_null(val);
    if (hidden)
        ck_assert_msg(strstr(err.msg, hidden) == NULL, "message echoes '%s': %s", hidden,
                      err.msg);
    kmerr_clear(&err);
}

START_TEST(blank_lines_and_comments_set_nothing)
{
    assert_line("", NULL, NULL);
    assert_line("   \t ", NULL, NULL);
    assert_line("# a comment", NULL, NULL);
    assert_line("   # indented comment with KEY=value", NULL, NULL);
    assert_line("#KEY=value", NULL, NULL);
}
END_TEST

START_TEST(a_plain_assignment_is_read)
{
    assert_line("KLAVIYO_ACME_KEY=pk_abc", "KLAVIYO_ACME_KEY", "pk_abc");
    assert_line("_X1=2", "_X1", "2");
    assert_line("  SPACED  =  value with spaces  ", "SPACED", "value with spaces");
    assert_line("EMPTY=", "EMPTY", "");
    assert_line("EMPTY2=   ", "EMPTY2", "");
}
END_TEST

START_TEST(an_export_prefix_is_ignored)
{
    assert_line("export REST_API_KEY=tok", "REST_API_KEY", "tok");
    assert_line("export\tA=1", "A", "1");
    assert_line("  export   B = 2", "B", "2");
    /* a variable may itself be called export… */
    assert_line("exported=1", "exported", "1");
    assert_line("export=1", "export", "1");
}
END_TEST

START_TEST(single_quotes_keep_the_text_literally)
{
    assert_line("A='a b # not a comment'", "A", "a b # not a comment");
    assert_line("B='back\\nslash \"dq\"'", "B", "back\\nslash \"dq\"");
    assert_line("C=''", "C", "");
    assert_line("D='x' # trailing comment", "D", "x");
    assert_line("E='  padded  '", "E", "  padded  ");
}
END_TEST

START_TEST(double_quotes_understand_escapes)
{
    assert_line("A=\"a b # not a comment\"", "A", "a b # not a comment");
    assert_line("B=\"line\\nnext\\ttab \\\"q\\\" \\\\ end\"", "B",
                "line\nnext\ttab \"q\" \\ end");
    assert_line("C=\"it's\"", "C", "it's");
    assert_line("D=\"\"   # empty", "D", "");
}
END_TEST

START_TEST(equals_signs_inside_values_are_kept)
{
    assert_line("REDIS_URL=redis://:p=w@127.0.0.1:6379/0?a=b", "REDIS_URL",
                "redis://:p=w@127.0.0.1:6379/0?a=b");
    assert_line("A=\"x=y\"", "A", "x=y");
    assert_line("B='=='", "B", "==");
    assert_line("C==", "C", "=");
}
END_TEST

START_TEST(an_inline_comment_ends_an_unquoted_value)
{
    assert_line("A=value # comment", "A", "value");
    assert_line("B=value\t# comment", "B", "value");
    assert_line("C=val#ue", "C", "val#ue");
    assert_line("D=https://x/#frag", "D", "https://x/#frag");
    assert_line("E= # only a comment", "E", "");
    assert_line("F=\t#only a comment", "F", "");
    assert_line("G=#not-a-comment", "G", "#not-a-comment");
}
END_TEST

START_TEST(a_malformed_line_is_a_config_error_naming_where)
{
    assert_bad_line("=value", NULL);
    assert_bad_line("1KEY=v", NULL);
    assert_bad_line("KEY value", NULL);
    assert_bad_line("KEY", NULL);
    assert_bad_line("K-X=1", NULL);
    assert_bad_line("export =v", NULL);
    assert_bad_line("A=\"unterminated", "unterminated\"");
    assert_bad_line("A='unterminated", NULL);
    assert_bad_line("A=\"x\" trailing", NULL);
    assert_bad_line("A='x'y", NULL);
}
END_TEST

START_TEST(an_error_never_echoes_a_value)
{
    /* a key pasted on a line of its own, or an unterminated secret */
    assert_bad_line("correcthorsebatterystaple", "horse");
    assert_bad_line("REST_API_KEY=\"s3cr3t-token", "s3cr3t");
    assert_bad_line("REST_API_KEY='s3cr3t-token' junk", "s3cr3t");
}
END_TEST

/* --- files and the search path ------------------------------------------------------ */

static void
base_setup(void)
{
    sandbox_base_setup_named("check_env");  /* one base per test case */
}

/* The sandbox (sandbox.h) with none of the test variables set. */
static void
setup(void)
{
    sandbox_setup();
    unsetenv("KMT_A");
    unsetenv("KMT_B");
    unsetenv("KMT_C");
    unsetenv("KMT_D");
}

static void
teardown(void)
{
    sandbox_teardown();
}

/* Write `text` to sandbox_root/rel, creating the parent directories. */
static void
put(const char *rel, const char *text)
{
    char  path[1200];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", sandbox_root, rel);
    for (char *p = path + strlen(sandbox_root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);  /* may exist */
            *p = '/';
        }
    }
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static const char *
abs_path(const char *rel)
{
    static char path[1200];

    snprintf(path, sizeof(path), "%s/%s", sandbox_root, rel);
    return path;
}

START_TEST(a_file_sets_each_variable_it_defines)
{
    kmerr err = { 0 };

    put("cwd/.env", "# settings\n"
                     "\n"
                     "export KMT_A=alpha\n"
                     "KMT_B='two words'\n"
                     "KMT_C=\"x=y\" # note\n");
    ck_assert_int_eq(kmenv_load_file("./.env", &err), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "alpha");
    ck_assert_str_eq(getenv("KMT_B"), "two words");
    ck_assert_str_eq(getenv("KMT_C"), "x=y");
}
END_TEST

START_TEST(crlf_line_ends_and_a_byte_order_mark_are_tolerated)
{
    put("cwd/.env", "\xEF\xBB\xBFKMT_A=1\r\nKMT_B=two\r\n");
    ck_assert_int_eq(kmenv_load_file(".env", NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "1");
    ck_assert_str_eq(getenv("KMT_B"), "two");
}
END_TEST

START_TEST(a_variable_already_in_the_environment_wins)
{
    setenv("KMT_A", "from-env", 1);
    setenv("KMT_B", "", 1);
    put("cwd/.env", "KMT_A=from-file\nKMT_B=from-file\nKMT_C=from-file\n");
    ck_assert_int_eq(kmenv_load_file(".env", NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "from-env");
    ck_assert_str_eq(getenv("KMT_B"), "from-file");   /* empty means unset */
    ck_assert_str_eq(getenv("KMT_C"), "from-file");
}
END_TEST

/* .env.example's `REST_API_KEY=`: copying it must not count as a credential, nor hide the
 * value a later file on the search path gives. */
START_TEST(an_empty_value_in_a_file_sets_nothing_and_hides_nothing)
{
    unsetenv("KMT_A");
    put("cwd/.env", "KMT_A=\nKMT_A=later\n");
    ck_assert_int_eq(kmenv_load_file(".env", NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "later");
    unsetenv("KMT_A");
    put("cwd/.env", "KMT_A=\"\"\n");
    ck_assert_int_eq(kmenv_load_file(".env", NULL), KM_OK);
    ck_assert_ptr_null(getenv("KMT_A"));
}
END_TEST

START_TEST(the_first_definition_in_a_file_wins)
{
    put("cwd/.env", "KMT_A=first\nKMT_A=second\n");
    ck_assert_int_eq(kmenv_load_file(".env", NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "first");
}
END_TEST

START_TEST(a_malformed_line_names_the_file_and_line)
{
    kmerr err = { 0 };

    put("cwd/.env", "KMT_A=1\n# fine\nKMT_B 2\nKMT_C=3\n");
    ck_assert_int_eq(kmenv_load_file("./.env", &err), KM_CONFIG_ERROR);
    ck_assert_msg(strncmp(err.msg, "./.env:3: ", 10) == 0, "%s", err.msg);
    ck_assert_ptr_null(getenv("KMT_C"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_missing_file_is_not_found)
{
    kmerr err = { 0 };

    ck_assert_int_eq(kmenv_load_file("./nope.env", &err), KM_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "./nope.env"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(the_search_path_is_the_user_directory_then_the_working_directory)
{
    char   paths[4][KMENV_PATH_MAX];
    char   want[1200];
    size_t n = kmenv_search_paths(".env", paths, 4);

    ck_assert_uint_eq(n, 2);
    snprintf(want, sizeof(want), "%s/xdg/klaviyo-mcp/.env", sandbox_root);
    ck_assert_str_eq(paths[0], want);
    ck_assert_str_eq(paths[1], "./.env");
    ck_assert_uint_eq(kmenv_search_paths("accounts.toml", paths, 1), 1);
    snprintf(want, sizeof(want), "%s/xdg/klaviyo-mcp/accounts.toml", sandbox_root);
    ck_assert_str_eq(paths[0], want);
}
END_TEST

START_TEST(without_xdg_config_home_the_user_directory_is_under_home)
{
    char   paths[4][KMENV_PATH_MAX];
    char   want[1200];
    size_t n;

    snprintf(want, sizeof(want), "%s/home/.config/klaviyo-mcp/.env", sandbox_root);
    unsetenv("XDG_CONFIG_HOME");
    n = kmenv_search_paths(".env", paths, 4);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(paths[0], want);
    /* a relative XDG_CONFIG_HOME is ignored, as the XDG spec says */
    setenv("XDG_CONFIG_HOME", "relative/dir", 1);
    n = kmenv_search_paths(".env", paths, 4);
    ck_assert_str_eq(paths[0], want);
}
END_TEST

START_TEST(the_per_user_file_wins_over_the_working_directory)
{
    char *loaded = NULL;
    char  want[2500];
    kmerr err = { 0 };

    setenv("KMT_D", "from-env", 1);
    put("xdg/klaviyo-mcp/.env", "KMT_A=user\nKMT_B=user\nKMT_D=user\n");
    put("cwd/.env", "KMT_A=cwd\nKMT_C=cwd\nKMT_D=cwd\n");
    ck_assert_int_eq(kmenv_load(&loaded, &err), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "user");
    ck_assert_str_eq(getenv("KMT_B"), "user");
    ck_assert_str_eq(getenv("KMT_C"), "cwd");
    ck_assert_str_eq(getenv("KMT_D"), "from-env");
    snprintf(want, sizeof(want), "%s,./.env", abs_path("xdg/klaviyo-mcp/.env"));
    ck_assert_str_eq(loaded, want);
    free(loaded);
}
END_TEST

START_TEST(the_home_config_file_is_used_without_xdg_config_home)
{
    char *loaded = NULL;

    unsetenv("XDG_CONFIG_HOME");
    put("home/.config/klaviyo-mcp/.env", "KMT_A=home\n");
    put("cwd/.env", "KMT_A=cwd\nKMT_B=cwd\n");
    ck_assert_int_eq(kmenv_load(&loaded, NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_A"), "home");
    ck_assert_str_eq(getenv("KMT_B"), "cwd");
    ck_assert_ptr_nonnull(loaded);
    free(loaded);
}
END_TEST

START_TEST(only_the_working_directory_file_is_fine)
{
    char *loaded = NULL;

    put("cwd/.env", "KMT_C=cwd\n");
    ck_assert_int_eq(kmenv_load(&loaded, NULL), KM_OK);
    ck_assert_str_eq(getenv("KMT_C"), "cwd");
    ck_assert_str_eq(loaded, "./.env");
    free(loaded);
}
END_TEST

START_TEST(no_env_file_anywhere_is_fine)
{
    char *loaded = (char *)1;

    ck_assert_int_eq(kmenv_load(&loaded, NULL), KM_OK);
    ck_assert_ptr_null(loaded);
}
END_TEST

START_TEST(a_malformed_per_user_file_stops_loading_with_its_path)
{
    char *loaded = (char *)1;
    kmerr err = { 0 };
    char  want[1300];

    put("xdg/klaviyo-mcp/.env", "KMT_A=1\n\"oops\n");
    put("cwd/.env", "KMT_C=cwd\n");
    ck_assert_int_eq(kmenv_load(&loaded, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(loaded);
    snprintf(want, sizeof(want), "%s:2: ", abs_path("xdg/klaviyo-mcp/.env"));
    ck_assert_msg(strncmp(err.msg, want, strlen(want)) == 0, "%s", err.msg);
    ck_assert_ptr_null(getenv("KMT_C"));
    kmerr_clear(&err);
}
END_TEST

static Suite *
env_suite(void)
{
    Suite *s = suite_create("env");
    TCase *tc;

    tc = tcase_create("line");
    tcase_add_test(tc, blank_lines_and_comments_set_nothing);
    tcase_add_test(tc, a_plain_assignment_is_read);
    tcase_add_test(tc, an_export_prefix_is_ignored);
    tcase_add_test(tc, single_quotes_keep_the_text_literally);
    tcase_add_test(tc, double_quotes_understand_escapes);
    tcase_add_test(tc, equals_signs_inside_values_are_kept);
    tcase_add_test(tc, an_inline_comment_ends_an_unquoted_value);
    tcase_add_test(tc, a_malformed_line_is_a_config_error_naming_where);
    tcase_add_test(tc, an_error_never_echoes_a_value);
    suite_add_tcase(s, tc);

    tc = tcase_create("file");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, a_file_sets_each_variable_it_defines);
    tcase_add_test(tc, crlf_line_ends_and_a_byte_order_mark_are_tolerated);
    tcase_add_test(tc, a_variable_already_in_the_environment_wins);
    tcase_add_test(tc, an_empty_value_in_a_file_sets_nothing_and_hides_nothing);
    tcase_add_test(tc, the_first_definition_in_a_file_wins);
    tcase_add_test(tc, a_malformed_line_names_the_file_and_line);
    tcase_add_test(tc, a_missing_file_is_not_found);
    suite_add_tcase(s, tc);

    tc = tcase_create("search path");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_search_path_is_the_user_directory_then_the_working_directory);
    tcase_add_test(tc, without_xdg_config_home_the_user_directory_is_under_home);
    tcase_add_test(tc, the_per_user_file_wins_over_the_working_directory);
    tcase_add_test(tc, the_home_config_file_is_used_without_xdg_config_home);
    tcase_add_test(tc, only_the_working_directory_file_is_fine);
    tcase_add_test(tc, no_env_file_anywhere_is_fine);
    tcase_add_test(tc, a_malformed_per_user_file_stops_loading_with_its_path);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(env_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
