/* fuzz_accounts.c — libFuzzer harness: `accounts.toml` parsing. Every input goes through
 * kmacct_parse, the parser kmacct_load hands the file's bytes to; one input in 256 is also
 * written to a file (a memfd reached through /proc/self/fd, so nothing touches the disk) and
 * read back with kmacct_load, which must come to the same result and message. The warnings the
 * parser logs (unknown keys) are built and redacted as always, then written to /dev/null: on
 * stderr they would fill the run's log with millions of lines. */
#include "accounts.h"
#include "log.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define FILE_EVERY 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int  fd = -1;     /* the memfd */
static char path[64];    /* its name, in every message of both paths */

static void
use(kmaccounts *a)
{
    kmerr err = { 0 };

    for (size_t i = 0; i < kmacct_count(a); i++) {
        const struct kmaccount *ac = kmacct_at(a, i);
        const struct kmaccount *r = NULL;

        (void)kmacct_find(a, ac->name);
        (void)kmacct_resolve(a, ac->name, &r, &err);
        kmerr_clear(&err);
    }
}

/* The same input as a file through kmacct_load: the same code, count and message. */
static void
load_as_file(const uint8_t *data, size_t size, kmcode want, const kmaccounts *parsed,
             const kmerr *parse_err)
{
    kmaccounts *a = NULL;
    kmerr       err = { 0 };
    kmcode      rc;

    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    rc = kmacct_load(path, &a, &err);
    if (rc != want || kmacct_count(a) != kmacct_count(parsed) ||
        strcmp(err.msg, parse_err->msg) != 0)
        abort();
    kmacct_free(a);
    kmerr_clear(&err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned long runs;
    kmaccounts          *a = NULL;
    kmerr                err = { 0 };
    kmcode               rc;

    if (fd < 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        fd = memfd_create("accounts.toml", 0);
        if (null < 0 || fd < 0)
            abort();
        kmlog_set_fd(null);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    rc = kmacct_parse(path, (const char *)data, size, &a, &err);
    if (rc == KM_OK)
        use(a);
    if (runs++ % FILE_EVERY == 0)
        load_as_file(data, size, rc, a, &err);
    kmacct_free(a);
    kmerr_clear(&err);
    return 0;
}
