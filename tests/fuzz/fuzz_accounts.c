/* fuzz_accounts.c — libFuzzer harness: `accounts.toml` parsing (kmacct_load) on the input as a
 * file. The file is a memfd reached through /proc/self/fd, so nothing touches the disk. The
 * warnings the loader logs (unknown keys) are built and redacted as always, then written to
 * /dev/null: on stderr they would fill the run's log with millions of lines. */
#include "accounts.h"
#include "log.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int  fd = -1;
    static char path[64];
    kmaccounts *a = NULL;
    kmerr       err = { 0 };

    if (fd < 0) {
        int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

        if (null < 0)
            abort();
        kmlog_set_fd(null);
        fd = memfd_create("accounts.toml", 0);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    if (kmacct_load(path, &a, &err) == KM_OK) {
        for (size_t i = 0; i < kmacct_count(a); i++) {
            const struct kmaccount *ac = kmacct_at(a, i);
            const struct kmaccount *r = NULL;

            (void)kmacct_find(a, ac->name);
            (void)kmacct_resolve(a, ac->name, &r, &err);
            kmerr_clear(&err);
        }
        kmacct_free(a);
    }
    kmerr_clear(&err);
    return 0;
}
