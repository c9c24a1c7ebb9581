/* sandbox.c — temp configuration directories for the config suites. */
#define _XOPEN_SOURCE 700
#include "sandbox.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char        sandbox_root[512];
static char base_dir[256];
static char old_cwd[1024];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
sandbox_base_setup_named(const char *name)
{
    snprintf(base_dir, sizeof(base_dir), "/tmp/%s.XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(base_dir));
}

void
sandbox_base_teardown(void)
{
    nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
subdir(const char *leaf, const char *env)
{
    char path[600];

    snprintf(path, sizeof(path), "%s/%s", sandbox_root, leaf);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    if (env)
        setenv(env, path, 1);
    else
        ck_assert_int_eq(chdir(path), 0);
}

void
sandbox_setup(void)
{
    snprintf(sandbox_root, sizeof(sandbox_root), "%s/t.XXXXXX", base_dir);
    ck_assert_ptr_nonnull(mkdtemp(sandbox_root));
    ck_assert_ptr_nonnull(getcwd(old_cwd, sizeof(old_cwd)));
    subdir("home", "HOME");
    subdir("xdg", "XDG_CONFIG_HOME");
    subdir("cwd", NULL);
}

void
sandbox_teardown(void)
{
    if (chdir(old_cwd) != 0)
        perror("chdir");
    nftw(sandbox_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
