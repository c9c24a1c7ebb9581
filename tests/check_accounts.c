/* check_accounts.c — accounts.toml: the seed format, validation, search, resolution. */
#include "accounts.h"
#include "json.h"
#include "log.h"
#include "sandbox.h"

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ACME_KEY "pk_acme0123456789abcdef0123456789ab"
#define BETA_KEY "pk_beta0123456789abcdef0123456789ab"

/* The sample from the seed README, byte for byte. */
static const char seed_sample[] = "[acme]\n"
                                  "api_key_env = \"KLAVIYO_ACME_KEY\"\n"
                                  "conversion_metric_id = \"ABC123\"\n"
                                  "label = \"Acme Storefront\"\n";

static char file_path[1200];
static char log_path[1200];
static int  log_fd = -1;

static void
base_setup(void)
{
    sandbox_base_setup_named("check_accounts");  /* one base per test case */
}

/* The sandbox (sandbox.h), the two keys in the environment, and the log going to a file in
 * the root. */
static void
setup(void)
{
    sandbox_setup();
    unsetenv("ACCOUNTS_FILE");
    setenv("KLAVIYO_ACME_KEY", ACME_KEY, 1);
    setenv("KLAVIYO_BETA_KEY", BETA_KEY, 1);
    snprintf(file_path, sizeof(file_path), "%s/cwd/accounts.toml", sandbox_root);
    snprintf(log_path, sizeof(log_path), "%s/log", sandbox_root);
    log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(log_fd, 0);
    kmlog_set_fd(log_fd);
}

static void
teardown(void)
{
    kmlog_set_fd(2);
    close(log_fd);
    sandbox_teardown();
}

/* Write `text` as accounts.toml in the working directory. */
static void
put(const char *text)
{
    FILE *f = fopen(file_path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static char *
log_text(void)
{
    FILE  *f = fopen(log_path, "r");
    char  *buf = calloc(1, 65536);
    size_t n;

    ck_assert_ptr_nonnull(f);
    n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Load `text`; assert a CONFIG_ERROR whose message begins "<file>:<line>: " and contains
 * every string of the NULL-terminated list that follows. */
static void
assert_load_fails(const char *text, int line, ...)
{
    kmaccounts *a = (kmaccounts *)1;
    kmerr       err = { 0 };
    char        prefix[1300];
    va_list     ap;
    const char *part;

    put(text);
    ck_assert_int_eq(kmacct_load(file_path, &a, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(a);
    ck_assert_int_eq(err.code, KM_CONFIG_ERROR);
    if (line > 0) {
        snprintf(prefix, sizeof(prefix), "%s:%d: ", file_path, line);
        ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "want '%s...', got '%s'",
                      prefix, err.msg);
    }
    va_start(ap, line);
    for (part = va_arg(ap, const char *); part; part = va_arg(ap, const char *))
        ck_assert_msg(strstr(err.msg, part) != NULL, "'%s' not in '%s'", part, err.msg);
    va_end(ap);
    /* no error ever carries a key */
    ck_assert_ptr_null(strstr(err.msg, "0123456789abcdef"));
    kmerr_clear(&err);
}

static kmaccounts *
load_ok(const char *text)
{
    kmaccounts *a = NULL;
    kmerr       err = { 0 };

    put(text);
    ck_assert_msg(kmacct_load(file_path, &a, &err) == KM_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(a);
    return a;
}

/* --- the format -------------------------------------------------------------------- */

START_TEST(the_seed_sample_loads_unchanged)
{
    kmaccounts             *a = load_ok(seed_sample);
    const struct kmaccount *acc = kmacct_at(a, 0);

    ck_assert_uint_eq(kmacct_count(a), 1);
    ck_assert_str_eq(acc->name, "acme");
    ck_assert_str_eq(acc->api_key_env, "KLAVIYO_ACME_KEY");
    ck_assert_str_eq(acc->conversion_metric_id, "ABC123");
    ck_assert_str_eq(acc->label, "Acme Storefront");
    ck_assert_str_eq(kmsecret_reveal(acc->api_key), ACME_KEY);
    ck_assert_int_eq(acc->line, 1);
    ck_assert_str_eq(kmacct_path(a), file_path);
    ck_assert_ptr_null(kmacct_at(a, 1));
    kmacct_free(a);
}
END_TEST

START_TEST(several_accounts_with_comments_and_both_quote_styles_load)
{
    kmaccounts *a = load_ok("# Accounts for the team\n"
                            "\n"
                            "[acme]  # the main store\n"
                            "api_key_env = \"KLAVIYO_ACME_KEY\"   # in .env\n"
                            "conversion_metric_id = 'ABC123'\n"
                            "label = \"Acme #1 Storefront\" # a comment after a hash\n"
                            "\n"
                            "  # an indented comment\n"
                            "[beta-shop_2]\n"
                            "label = 'Beta \"Shop\"'\n"
                            "api_key_env = 'KLAVIYO_BETA_KEY'\n"
                            "conversion_metric_id = \"XyZ789\"\n");
    const struct kmaccount *acme = kmacct_find(a, "acme");
    const struct kmaccount *beta = kmacct_find(a, "beta-shop_2");

    ck_assert_uint_eq(kmacct_count(a), 2);
    ck_assert_ptr_eq(kmacct_at(a, 0), acme);
    ck_assert_ptr_eq(kmacct_at(a, 1), beta);
    ck_assert_str_eq(acme->label, "Acme #1 Storefront");
    ck_assert_str_eq(acme->api_key_env, "KLAVIYO_ACME_KEY");
    ck_assert_str_eq(acme->conversion_metric_id, "ABC123");
    ck_assert_int_eq(acme->line, 3);
    ck_assert_str_eq(beta->label, "Beta \"Shop\"");
    ck_assert_str_eq(kmsecret_reveal(beta->api_key), BETA_KEY);
    ck_assert_int_eq(beta->line, 9);
    ck_assert_ptr_null(kmacct_find(a, "gamma"));
    ck_assert_ptr_null(kmacct_find(a, NULL));
    kmacct_free(a);
}
END_TEST

START_TEST(indented_keys_are_keys_not_continuations)
{
    kmaccounts *a = load_ok("[acme]\n"
                            "    api_key_env = \"KLAVIYO_ACME_KEY\"\n"
                            "    conversion_metric_id = \"ABC123\"\n"
                            "\tlabel = \"Acme\"\n"
                            "  [beta]\n"
                            "  api_key_env = \"KLAVIYO_BETA_KEY\"\n"
                            "  conversion_metric_id = \"DEF456\"\n"
                            "  label = \"Beta\"\n");

    ck_assert_uint_eq(kmacct_count(a), 2);
    ck_assert_str_eq(kmacct_at(a, 0)->conversion_metric_id, "ABC123");
    ck_assert_str_eq(kmacct_at(a, 0)->label, "Acme");
    ck_assert_str_eq(kmacct_at(a, 1)->name, "beta");
    ck_assert_str_eq(kmacct_at(a, 1)->label, "Beta");
    kmacct_free(a);
}
END_TEST

START_TEST(a_byte_order_mark_is_tolerated)
{
    char        text[512];
    kmaccounts *a;

    snprintf(text, sizeof(text), "\xEF\xBB\xBF%s", seed_sample);
    a = load_ok(text);
    ck_assert_str_eq(kmacct_at(a, 0)->name, "acme");
    kmacct_free(a);
}
END_TEST

START_TEST(the_api_key_is_registered_for_redaction)
{
    kmaccounts *a = load_ok(seed_sample);

    ck_assert(kmsecret_leaks("x " ACME_KEY " y"));
    kmacct_free(a);
}
END_TEST

/* Issue 17: a key that no pattern recognises (not pk_-shaped) is redacted only because loading
 * registered it; the test above would pass on the pattern alone. */
START_TEST(a_key_no_pattern_recognises_is_registered_for_redaction)
{
    static const char odd[] = "Zq9xLmN4vR7tY2wB8kJ5hF3dS6gA1cE0";
    char             *red;
    kmaccounts       *a;

    setenv("KLAVIYO_ODD_KEY", odd, 1);
    ck_assert_msg(!kmsecret_leaks("x Zq9xLmN4vR7tY2wB8kJ5hF3dS6gA1cE0 y"),
                  "the pattern alone already catches this key: the test would prove nothing");
    a = load_ok("[odd]\napi_key_env = \"KLAVIYO_ODD_KEY\"\n"
                "conversion_metric_id = \"ABC123\"\nlabel = \"Odd\"\n");
    ck_assert(kmsecret_leaks("x Zq9xLmN4vR7tY2wB8kJ5hF3dS6gA1cE0 y"));
    red = kmsecret_redact("key=Zq9xLmN4vR7tY2wB8kJ5hF3dS6gA1cE0;");
    ck_assert_ptr_null(strstr(red, odd));
    ck_assert_ptr_nonnull(strstr(red, "[REDACTED]"));
    free(red);
    kmacct_free(a);
    unsetenv("KLAVIYO_ODD_KEY");
}
END_TEST

/* --- names ------------------------------------------------------------------------- */

START_TEST(slug_names_follow_the_rule)
{
    char n64[65], n65[66];

    memset(n64, 'a', 64);
    n64[64] = '\0';
    memset(n65, 'a', 65);
    n65[65] = '\0';
    ck_assert(kmacct_name_valid("acme"));
    ck_assert(kmacct_name_valid("a"));
    ck_assert(kmacct_name_valid("0shop"));
    ck_assert(kmacct_name_valid("a_b-c9"));
    ck_assert(kmacct_name_valid(n64));
    ck_assert(!kmacct_name_valid(n65));
    ck_assert(!kmacct_name_valid("Acme"));
    ck_assert(!kmacct_name_valid("-x"));
    ck_assert(!kmacct_name_valid("_x"));
    ck_assert(!kmacct_name_valid("a.b"));
    ck_assert(!kmacct_name_valid("a b"));
    ck_assert(!kmacct_name_valid("\"acme\""));
    ck_assert(!kmacct_name_valid(""));
    ck_assert(!kmacct_name_valid(NULL));
}
END_TEST

static void
assert_bad_name(const char *name)
{
    char text[512];

    snprintf(text, sizeof(text),
             "# header\n[%s]\napi_key_env = \"KLAVIYO_ACME_KEY\"\n"
             "conversion_metric_id = \"ABC123\"\nlabel = \"x\"\n",
             name);
    assert_load_fails(text, 2, "not a valid slug", "[a-z0-9][a-z0-9_-]{0,63}", NULL);
}

START_TEST(a_bad_name_in_the_file_is_refused_at_its_line)
{
    char n65[66];

    memset(n65, 'a', 65);
    n65[65] = '\0';
    assert_bad_name("Acme");
    assert_bad_name("-x");
    assert_bad_name("acme store");
    assert_bad_name(n65);
}
END_TEST

START_TEST(a_64_character_name_is_kept_whole)
{
    char        n64[65], text[512];
    kmaccounts *a;

    memset(n64, 'b', 64);
    n64[64] = '\0';
    snprintf(text, sizeof(text),
             "[%s]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = \"ABC123\"\n"
             "label = \"x\"\n",
             n64);
    a = load_ok(text);
    ck_assert_str_eq(kmacct_at(a, 0)->name, n64);
    kmacct_free(a);
}
END_TEST

/* --- required keys and values ------------------------------------------------------ */

static const char *const required[] = { "api_key_env", "conversion_metric_id", "label" };

START_TEST(each_missing_required_key_is_named_with_the_section_line)
{
    const char *lines[] = { "api_key_env = \"KLAVIYO_ACME_KEY\"\n",
                            "conversion_metric_id = \"ABC123\"\n", "label = \"Acme\"\n" };
    char        text[1024];
    char        what[64];

    snprintf(text, sizeof(text), "%s\n# second\n[shop]\n", seed_sample);
    for (int i = 0; i < 3; i++) {
        if (i != _i)
            strcat(text, lines[i]);
    }
    snprintf(what, sizeof(what), "missing required key %s", required[_i]);
    assert_load_fails(text, 7, "[shop]", what, NULL);
}
END_TEST

START_TEST(an_empty_section_is_missing_its_keys)
{
    char text[512];

    snprintf(text, sizeof(text), "%s[empty]\n", seed_sample);
    assert_load_fails(text, 5, "[empty]", "missing required key api_key_env", NULL);
}
END_TEST

START_TEST(a_file_without_accounts_is_refused)
{
    assert_load_fails("# nothing here\n\n", 0, "no accounts defined", NULL);
    assert_load_fails("", 0, "no accounts defined", NULL);
}
END_TEST

START_TEST(a_key_outside_any_section_is_refused)
{
    assert_load_fails("# top\nlabel = \"x\"\n[acme]\n", 2, "outside any [account] section",
                      NULL);
}
END_TEST

START_TEST(a_line_that_is_not_toml_is_refused_at_its_line)
{
    char text[512];

    snprintf(text, sizeof(text), "%sjust some words\n", seed_sample);
    assert_load_fails(text, 5, "not a valid line", NULL);
    assert_load_fails("[acme\napi_key_env = \"X\"\n", 1, NULL);
}
END_TEST

START_TEST(an_unterminated_or_trailing_quote_is_refused)
{
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\nconversion_metric_id = "
                      "\"ABC123\"\nlabel = \"x\"\n",
                      2, "api_key_env must be a quoted string", NULL);
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = "
                      "\"ABC123\" junk\nlabel = \"x\"\n",
                      3, "conversion_metric_id must be a quoted string", NULL);
}
END_TEST

/* the seed's parser let `api_key_env = KLAVIYO_ACME_KEY` through; TOML does not */
START_TEST(an_unquoted_string_is_refused_as_toml_does_naming_its_line)
{
    assert_load_fails("[acme]\n# key\napi_key_env = KLAVIYO_ACME_KEY\nconversion_metric_id = "
                      "\"ABC123\"\nlabel = \"x\"\n",
                      3, "api_key_env must be a quoted string (this is not valid TOML)",
                      "api_key_env = \"KLAVIYO_ACME_KEY\"", NULL);
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = "
                      "\"ABC123\"\nlabel = Acme Store # shop\n",
                      4, "label must be a quoted string", NULL);
}
END_TEST

START_TEST(a_conversion_metric_id_must_be_alphanumeric)
{
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = "
                      "\"ABC/../123\"\nlabel = \"x\"\n",
                      1, "conversion_metric_id", NULL);
}
END_TEST

START_TEST(a_line_too_long_to_read_whole_is_refused_at_its_line)
{
    char text[2048], label[600];

    memset(label, 'L', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    snprintf(text, sizeof(text),
             "[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nlabel = \"%s\"\n"
             "conversion_metric_id = \"ABC123\"\n",
             label);
    assert_load_fails(text, 3, "too long", NULL);
    /* a long comment is no way to smuggle a section in */
    memset(label, ' ', sizeof(label) - 1);
    snprintf(text, sizeof(text), "%s#%s[evil]\n", seed_sample, label);
    assert_load_fails(text, 5, "too long", NULL);
}
END_TEST

START_TEST(a_line_of_199_characters_is_read_whole_and_200_is_too_long)
{
    char        text[1024], label[200];
    kmaccounts *a;

    /* label = "LLL…L" is 9 + n + 1 characters */
    memset(label, 'L', 189);
    label[189] = '\0';
    snprintf(text, sizeof(text), "%slabel = \"%s\"\n", seed_sample, label);
    a = load_ok(text);
    ck_assert_uint_eq(strlen(kmacct_at(a, 0)->label), 189);
    kmacct_free(a);
    strcat(label, "L");
    snprintf(text, sizeof(text), "%slabel = \"%s\"\n", seed_sample, label);
    assert_load_fails(text, 5, "too long (more than 199 characters)", NULL);
}
END_TEST

START_TEST(a_manifest_in_memory_parses_as_the_file_does_without_a_final_newline_or_a_nul)
{
    /* a NUL byte inside a comment, and no newline at the end: kmacct_parse reads exactly len
     * bytes, as kmacct_load reads the file's */
    static const char text[] = "[acme]\n"
                               "# a comment\0 with a NUL byte\n"
                               "api_key_env = \"KLAVIYO_ACME_KEY\"\n"
                               "conversion_metric_id = \"ABC123\"\n"
                               "label = \"Acme\"";
    kmaccounts             *a = NULL;
    kmerr                   err = { 0 };
    const struct kmaccount *acc;

    ck_assert_msg(kmacct_parse("mem.toml", text, sizeof(text) - 1, &a, &err) == KM_OK, "%s",
                  err.msg);
    acc = kmacct_at(a, 0);
    ck_assert_uint_eq(kmacct_count(a), 1);
    ck_assert_str_eq(acc->label, "Acme");
    ck_assert_str_eq(kmacct_path(a), "mem.toml");
    kmacct_free(a);
    /* only the first len bytes count: cut inside the label's quotes, the value is unterminated */
    a = (kmaccounts *)1;
    ck_assert_int_eq(kmacct_parse("mem.toml", text, sizeof(text) - 3, &a, &err),
                     KM_CONFIG_ERROR);
    ck_assert_ptr_null(a);
    ck_assert_msg(strncmp(err.msg, "mem.toml:5: label must be a quoted string", 41) == 0, "%s",
                  err.msg);
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_manifest_larger_than_the_cap_is_refused_naming_the_file)
{
    FILE       *f = fopen(file_path, "w");
    kmaccounts *a = (kmaccounts *)1;
    kmerr       err = { 0 };

    ck_assert_ptr_nonnull(f);
    fputs(seed_sample, f);
    for (size_t n = sizeof(seed_sample) - 1; n <= KMACCT_MAX_FILE; n += 2)
        fputs("#\n", f);
    fclose(f);
    ck_assert_int_eq(kmacct_load(file_path, &a, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(err.msg, file_path));
    ck_assert_ptr_nonnull(strstr(err.msg, "larger than 1048576 bytes"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(a_missing_manifest_is_a_config_error_with_its_path)
{
    kmaccounts *a = (kmaccounts *)1;
    kmerr       err = { 0 };

    ck_assert_int_eq(kmacct_load("./no-such.toml", &a, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(a);
    ck_assert_ptr_nonnull(strstr(err.msg, "./no-such.toml"));
    kmerr_clear(&err);
}
END_TEST

/* --- duplicates and unknown keys --------------------------------------------------- */

START_TEST(a_name_defined_twice_far_apart_is_refused)
{
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = "
                      "\"ABC123\"\nlabel = \"A\"\n"
                      "[beta]\napi_key_env = \"KLAVIYO_BETA_KEY\"\nconversion_metric_id = "
                      "\"DEF456\"\nlabel = \"B\"\n"
                      "[acme]\nlabel = \"again\"\n",
                      9, "[acme] is defined twice", "first at line 1", NULL);
}
END_TEST

START_TEST(a_name_defined_twice_in_a_row_is_refused)
{
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\n"
                      "[acme]\nconversion_metric_id = \"ABC123\"\nlabel = \"A\"\n",
                      3, "[acme] is defined twice", NULL);
    assert_load_fails("[acme]\n[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\n"
                      "conversion_metric_id = \"ABC123\"\nlabel = \"A\"\n",
                      2, "[acme] is defined twice", NULL);
}
END_TEST

START_TEST(an_unknown_key_is_warned_about_and_ignored)
{
    char        text[512];
    kmaccounts *a;
    char       *log;

    snprintf(text, sizeof(text), "%stimezone = \"UTC\"\n", seed_sample);
    a = load_ok(text);
    ck_assert_uint_eq(kmacct_count(a), 1);
    log = log_text();
    ck_assert_ptr_nonnull(strstr(log, "\"level\":\"warning\""));
    ck_assert_ptr_nonnull(strstr(log, "\"event\":\"accounts_unknown_key\""));
    ck_assert_ptr_nonnull(strstr(log, "accounts.toml:5: unknown key 'timezone' in [acme]"));
    ck_assert_ptr_null(strstr(log, "0123456789abcdef"));
    free(log);
    kmacct_free(a);
}
END_TEST

/* --- keys from the environment ----------------------------------------------------- */

START_TEST(an_unset_key_variable_names_the_variable_and_the_account)
{
    unsetenv("KLAVIYO_ACME_KEY");
    assert_load_fails(seed_sample, 0, "KLAVIYO_ACME_KEY", "'acme'", "is not set",
                      "accounts.toml:1", NULL);
}
END_TEST

START_TEST(an_empty_key_variable_is_as_good_as_unset)
{
    setenv("KLAVIYO_ACME_KEY", "", 1);
    assert_load_fails(seed_sample, 0, "KLAVIYO_ACME_KEY", "'acme'", NULL);
}
END_TEST

START_TEST(the_second_account_key_is_checked_too)
{
    unsetenv("KLAVIYO_BETA_KEY");
    assert_load_fails("[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\nconversion_metric_id = "
                      "\"ABC123\"\nlabel = \"A\"\n"
                      "[beta]\napi_key_env = \"KLAVIYO_BETA_KEY\"\nconversion_metric_id = "
                      "\"DEF456\"\nlabel = \"B\"\n",
                      0, "KLAVIYO_BETA_KEY", "'beta'", NULL);
}
END_TEST

/* --- locating the manifest --------------------------------------------------------- */

START_TEST(accounts_file_overrides_the_search_path)
{
    char *path = NULL;
    char  other[1300];
    FILE *f;

    snprintf(other, sizeof(other), "%s/elsewhere.toml", sandbox_root);
    f = fopen(other, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    put(seed_sample);
    setenv("ACCOUNTS_FILE", other, 1);
    ck_assert_int_eq(kmacct_locate(&path, NULL), KM_OK);
    ck_assert_str_eq(path, other);
    free(path);
}
END_TEST

START_TEST(a_missing_accounts_file_is_a_config_error_naming_the_variable)
{
    char *path = (char *)1;
    kmerr err = { 0 };

    put(seed_sample);
    setenv("ACCOUNTS_FILE", "./missing/accounts.toml", 1);
    ck_assert_int_eq(kmacct_locate(&path, &err), KM_CONFIG_ERROR);
    ck_assert_ptr_null(path);
    ck_assert_ptr_nonnull(strstr(err.msg, "ACCOUNTS_FILE=./missing/accounts.toml"));
    kmerr_clear(&err);
}
END_TEST

START_TEST(the_user_directory_comes_before_the_working_directory)
{
    char *path = NULL;
    char  user[1300];
    FILE *f;

    put(seed_sample);
    ck_assert_int_eq(kmacct_locate(&path, NULL), KM_OK);
    ck_assert_str_eq(path, "./accounts.toml");
    free(path);

    snprintf(user, sizeof(user), "%s/xdg/klaviyo-mcp", sandbox_root);
    ck_assert_int_eq(mkdir(user, 0700), 0);
    strcat(user, "/accounts.toml");
    f = fopen(user, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(kmacct_locate(&path, NULL), KM_OK);
    ck_assert_str_eq(path, user);
    free(path);
}
END_TEST

START_TEST(no_manifest_anywhere_is_not_found_listing_where_it_looked)
{
    char *path = (char *)1;
    kmerr err = { 0 };
    char  user[1300];

    snprintf(user, sizeof(user), "%s/xdg/klaviyo-mcp/accounts.toml", sandbox_root);
    ck_assert_int_eq(kmacct_locate(&path, &err), KM_NOT_FOUND);
    ck_assert_ptr_null(path);
    ck_assert_ptr_nonnull(strstr(err.msg, user));
    ck_assert_ptr_nonnull(strstr(err.msg, "./accounts.toml"));
    ck_assert_ptr_nonnull(strstr(err.msg, "ACCOUNTS_FILE"));
    kmerr_clear(&err);
}
END_TEST

/* --- resolution -------------------------------------------------------------------- */

static const char two_accounts[] = "[acme]\napi_key_env = \"KLAVIYO_ACME_KEY\"\n"
                                   "conversion_metric_id = \"ABC123\"\nlabel = \"A\"\n"
                                   "[beta]\napi_key_env = \"KLAVIYO_BETA_KEY\"\n"
                                   "conversion_metric_id = \"DEF456\"\nlabel = \"B\"\n";

static void
assert_available(const kmerr *err)
{
    json_object *names = kmjson_get(err->details, "available_accounts");

    ck_assert_ptr_nonnull(names);
    ck_assert_uint_eq(json_object_array_length(names), 2);
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 0)), "acme");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 1)), "beta");
}

START_TEST(with_one_account_the_name_is_optional)
{
    kmaccounts             *a = load_ok(seed_sample);
    const struct kmaccount *acc = NULL;

    ck_assert_int_eq(kmacct_resolve(a, NULL, &acc, NULL), KM_OK);
    ck_assert_str_eq(acc->name, "acme");
    acc = NULL;
    ck_assert_int_eq(kmacct_resolve(a, "acme", &acc, NULL), KM_OK);
    ck_assert_str_eq(acc->name, "acme");
    kmacct_free(a);
}
END_TEST

START_TEST(with_several_accounts_a_name_is_required)
{
    kmaccounts             *a = load_ok(two_accounts);
    const struct kmaccount *acc = (const struct kmaccount *)1;
    kmerr                   err = { 0 };

    ck_assert_int_eq(kmacct_resolve(a, NULL, &acc, &err), KM_INVALID_ARGUMENT);
    ck_assert_ptr_null(acc);
    ck_assert_str_eq(err.msg, "account is required when multiple accounts are configured");
    assert_available(&err);
    kmerr_clear(&err);
    ck_assert_int_eq(kmacct_resolve(a, "beta", &acc, &err), KM_OK);
    ck_assert_str_eq(acc->label, "B");
    kmacct_free(a);
}
END_TEST

START_TEST(a_wrong_name_is_an_unknown_account_listing_the_names)
{
    kmaccounts             *a = load_ok(two_accounts);
    const struct kmaccount *acc = (const struct kmaccount *)1;
    kmerr                   err = { 0 };
    json_object            *env;

    ck_assert_int_eq(kmacct_resolve(a, "foo", &acc, &err), KM_UNKNOWN_ACCOUNT);
    ck_assert_ptr_null(acc);
    ck_assert_str_eq(err.msg, "unknown account 'foo'");
    assert_available(&err);
    env = kmerr_envelope(&err);
    ck_assert_str_eq(kmjson_text(env),
                     "{\"error\":{\"code\":\"UNKNOWN_ACCOUNT\",\"message\":\"unknown account "
                     "'foo'\",\"details\":{\"available_accounts\":[\"acme\",\"beta\"]}}}");
    json_object_put(env);
    kmerr_clear(&err);
    /* a name that is not even a slug is not echoed */
    ck_assert_int_eq(kmacct_resolve(a, "x'\"<script>", &acc, &err), KM_UNKNOWN_ACCOUNT);
    ck_assert_str_eq(err.msg, "unknown account '(invalid name)'");
    assert_available(&err);
    kmerr_clear(&err);
    ck_assert_int_eq(kmacct_resolve(a, "", &acc, &err), KM_UNKNOWN_ACCOUNT);
    kmerr_clear(&err);
    kmacct_free(a);
}
END_TEST

START_TEST(a_wrong_name_with_one_account_is_still_unknown)
{
    kmaccounts             *a = load_ok(seed_sample);
    const struct kmaccount *acc = NULL;
    kmerr                   err = { 0 };

    ck_assert_int_eq(kmacct_resolve(a, "Acme", &acc, &err), KM_UNKNOWN_ACCOUNT);
    ck_assert_ptr_null(acc);
    kmerr_clear(&err);
    /* the wrong case is named as such, with the list */
    ck_assert_int_eq(kmacct_resolve(a, "ACME", &acc, &err), KM_UNKNOWN_ACCOUNT);
    ck_assert_str_eq(err.msg, "unknown account 'ACME': account names are lower-case; did you "
                     "mean 'acme'?");
    ck_assert_ptr_nonnull(err.details);
    ck_assert_ptr_nonnull(strstr(kmjson_text(err.details),
                                 "\"available_accounts\":[\"acme\"]"));
    kmerr_clear(&err);
    kmacct_free(a);
}
END_TEST

START_TEST(resolving_against_no_registry_is_a_config_error)
{
    const struct kmaccount *acc = NULL;

    ck_assert_int_eq(kmacct_resolve(NULL, "acme", &acc, NULL), KM_CONFIG_ERROR);
    ck_assert_uint_eq(kmacct_count(NULL), 0);
    ck_assert_ptr_null(kmacct_at(NULL, 0));
    kmacct_free(NULL);
}
END_TEST

static Suite *
accounts_suite(void)
{
    Suite *s = suite_create("accounts");
    TCase *tc;

    tc = tcase_create("format");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, the_seed_sample_loads_unchanged);
    tcase_add_test(tc, several_accounts_with_comments_and_both_quote_styles_load);
    tcase_add_test(tc, indented_keys_are_keys_not_continuations);
    tcase_add_test(tc, a_byte_order_mark_is_tolerated);
    tcase_add_test(tc, the_api_key_is_registered_for_redaction);
    tcase_add_test(tc, a_key_no_pattern_recognises_is_registered_for_redaction);
    suite_add_tcase(s, tc);

    tc = tcase_create("names");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, slug_names_follow_the_rule);
    tcase_add_test(tc, a_bad_name_in_the_file_is_refused_at_its_line);
    tcase_add_test(tc, a_64_character_name_is_kept_whole);
    suite_add_tcase(s, tc);

    tc = tcase_create("validation");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, each_missing_required_key_is_named_with_the_section_line, 0, 3);
    tcase_add_test(tc, an_empty_section_is_missing_its_keys);
    tcase_add_test(tc, a_file_without_accounts_is_refused);
    tcase_add_test(tc, a_key_outside_any_section_is_refused);
    tcase_add_test(tc, a_line_that_is_not_toml_is_refused_at_its_line);
    tcase_add_test(tc, an_unterminated_or_trailing_quote_is_refused);
    tcase_add_test(tc, an_unquoted_string_is_refused_as_toml_does_naming_its_line);
    tcase_add_test(tc, a_conversion_metric_id_must_be_alphanumeric);
    tcase_add_test(tc, a_line_too_long_to_read_whole_is_refused_at_its_line);
    tcase_add_test(tc, a_line_of_199_characters_is_read_whole_and_200_is_too_long);
    tcase_add_test(tc, a_missing_manifest_is_a_config_error_with_its_path);
    tcase_add_test(tc, a_manifest_in_memory_parses_as_the_file_does_without_a_final_newline_or_a_nul);
    tcase_add_test(tc, a_manifest_larger_than_the_cap_is_refused_naming_the_file);
    tcase_add_test(tc, a_name_defined_twice_far_apart_is_refused);
    tcase_add_test(tc, a_name_defined_twice_in_a_row_is_refused);
    tcase_add_test(tc, an_unknown_key_is_warned_about_and_ignored);
    suite_add_tcase(s, tc);

    tc = tcase_create("keys");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, an_unset_key_variable_names_the_variable_and_the_account);
    tcase_add_test(tc, an_empty_key_variable_is_as_good_as_unset);
    tcase_add_test(tc, the_second_account_key_is_checked_too);
    suite_add_tcase(s, tc);

    tc = tcase_create("locate");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, accounts_file_overrides_the_search_path);
    tcase_add_test(tc, a_missing_accounts_file_is_a_config_error_naming_the_variable);
    tcase_add_test(tc, the_user_directory_comes_before_the_working_directory);
    tcase_add_test(tc, no_manifest_anywhere_is_not_found_listing_where_it_looked);
    suite_add_tcase(s, tc);

    tc = tcase_create("resolve");
    tcase_add_unchecked_fixture(tc, base_setup, sandbox_base_teardown);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, with_one_account_the_name_is_optional);
    tcase_add_test(tc, with_several_accounts_a_name_is_required);
    tcase_add_test(tc, a_wrong_name_is_an_unknown_account_listing_the_names);
    tcase_add_test(tc, a_wrong_name_with_one_account_is_still_unknown);
    tcase_add_test(tc, resolving_against_no_registry_is_a_config_error);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(accounts_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
