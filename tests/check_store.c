/* check_store.c — the shared store on both backends.
 *
 * Most tests are loop tests: iteration 0 runs on LMDB, iteration 1 on Redis. Each TCase
 * starts its own redis-server (unchecked fixture: it runs in the runner, so the server is
 * stopped even when a test fails) on a free loopback port; if redis-server cannot be started,
 * every Redis iteration fails. Servers also die with their parent (PR_SET_PDEATHSIG).
 * Times asserted are lower bounds only; waits are generous and never asserted as upper bounds.
 */
#include "err.h"
#include "log.h"
#include "store.h"
#include "util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { BE_LMDB = 0, BE_REDIS = 1, BE_COUNT = 2 };

static const char *const be_names[BE_COUNT] = { "lmdb", "redis" };

static char  base_dir[512];
static pid_t redis_pid = -1;
static int   redis_port;
static char  redis_url[64];

/* The options of the store a test opens; children of fork tests reuse them. */
static kmstore_opts opts;
static char         store_dir[PATH_MAX];

/* --- helpers ----------------------------------------------------------------------------- */

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int
free_port(void)
{
    struct sockaddr_in a = { 0 };
    socklen_t          len = sizeof(a);
    int                fd = socket(AF_INET, SOCK_STREAM, 0);
    int                port = 0;

    if (fd < 0)
        return 0;
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Start redis-server on 127.0.0.1:port (with a password when pass is set). It dies with the
 * thread that starts it. */
static pid_t
redis_start(int port, const char *pass)
{
    char  p[16];
    pid_t pid;

    snprintf(p, sizeof(p), "%d", port);
    pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
    }
    if (pass)
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", "--requirepass", pass, (char *)NULL);
    else
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--daemonize", "no", (char *)NULL);
    _exit(127);
}

/* A connection to the test's server, or NULL. */
static redisContext *
redis_raw(int port, const char *pass)
{
    struct timeval tv = { 1, 0 };
    redisContext  *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    redisReply    *r;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (pass) {
        r = redisCommand(c, "AUTH %s", pass);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

/* 1 once the server answers PING (up to ~10 s), 0 when it exited or never answered. */
static int
redis_wait(pid_t pid, int port, const char *pass)
{
    for (int i = 0; i < 200; i++) {
        redisContext *c = redis_raw(port, pass);

        if (c) {
            redisReply *r = redisCommand(c, "PING");
            int         ok = r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;

            if (r)
                freeReplyObject(r);
            redisFree(c);
            if (ok)
                return 1;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return 0;
        sleep_ms(50);
    }
    return 0;
}

static void
redis_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
suite_up(void)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(base_dir, sizeof(base_dir), "%s/check_store.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base_dir))
        base_dir[0] = '\0';
    redis_port = free_port();
    redis_pid = redis_port ? redis_start(redis_port, NULL) : -1;
    if (redis_pid <= 0 || !redis_wait(redis_pid, redis_port, NULL)) {
        redis_stop(redis_pid);
        redis_pid = -1;
        redis_port = 0;
    }
    snprintf(redis_url, sizeof(redis_url), "redis://127.0.0.1:%d", redis_port);
}

static void
suite_down(void)
{
    redis_stop(redis_pid);
    redis_pid = -1;
    if (base_dir[0])
        nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Fill `opts` for backend `which` with an empty store: a new LMDB directory, or a flushed
 * Redis database. */
static void
prepare(int which, size_t max_bytes, int grace_s)
{
    memset(&opts, 0, sizeof(opts));
    opts.max_bytes = max_bytes;
    opts.stale_grace_s = grace_s;
    opts.local_share = 50;
    if (which == BE_REDIS) {
        redisContext *c;
        redisReply   *r;

        ck_assert_msg(redis_port > 0, "redis-server could not be started (is it installed?)");
        c = redis_raw(redis_port, NULL);
        ck_assert_ptr_nonnull(c);
        r = redisCommand(c, "FLUSHALL");
        ck_assert_ptr_nonnull(r);
        freeReplyObject(r);
        redisFree(c);
        opts.redis_url = redis_url;
    } else {
        ck_assert_msg(base_dir[0], "no temporary directory");
        snprintf(store_dir, sizeof(store_dir), "%s/s.XXXXXX", base_dir);
        ck_assert_ptr_nonnull(mkdtemp(store_dir));
        opts.dir = store_dir;
    }
}

static kmstore *
open_store(int which)
{
    kmstore *st = NULL;
    kmerr    err = { 0 };

    ck_assert_int_eq(kmstore_open(&opts, &st, &err), KM_OK);
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(kmstore_backend(st), be_names[which]);
    ck_assert_int_eq(kmstore_degraded(st), 0);
    return st;
}

static kmstore *
fresh_store(int which, size_t max_bytes, int grace_s)
{
    prepare(which, max_bytes, grace_s);
    return open_store(which);
}

static kmcode
get(kmstore *st, const char *key, char **body, size_t *len, int64_t *age, int *fresh)
{
    kmerr  err = { 0 };
    kmcode rc = kmstore_cache_get(st, key, body, len, age, fresh, &err);

    kmerr_clear(&err);
    return rc;
}

static kmcode
put(kmstore *st, const char *key, const char *body, size_t len, int ttl_s)
{
    kmerr  err = { 0 };
    kmcode rc = kmstore_cache_put(st, key, body, len, ttl_s, &err);

    kmerr_clear(&err);
    return rc;
}

/* The body cached under key must be exactly `want` (len bytes). */
static void
expect_body(kmstore *st, const char *key, const char *want, size_t want_len)
{
    char   *body = NULL;
    size_t  len = 0;
    int64_t age = -1;
    int     fresh = -1;

    ck_assert_int_eq(get(st, key, &body, &len, &age, &fresh), KM_OK);
    ck_assert_ptr_nonnull(body);
    ck_assert_uint_eq(len, want_len);
    ck_assert_int_eq(memcmp(body, want, len), 0);
    ck_assert_int_eq(body[len], '\0');
    ck_assert_int_eq(fresh, 1);
    ck_assert_int_ge(age, 0);
    free(body);
}

static void
expect_missing(kmstore *st, const char *key)
{
    char  *body = (char *)1;
    size_t len = 0;

    ck_assert_int_eq(get(st, key, &body, &len, NULL, NULL), KM_NOT_FOUND);
    ck_assert_ptr_null(body);
}

static kmcode
take(kmstore *st, const char *bucket, const kmlimit *lim, int64_t *wait, int *retry_after)
{
    kmerr  err = { 0 };
    kmcode rc = kmstore_take(st, bucket, lim, wait, &err);

    if (retry_after)
        *retry_after = err.retry_after_s;
    kmerr_clear(&err);
    return rc;
}

static kmlimit
limit2(int64_t w0, int m0, int64_t w1, int m1)
{
    kmlimit l = { 0 };

    l.nwin = 2;
    l.win[0].window_ms = w0;
    l.win[0].max = m0;
    l.win[1].window_ms = w1;
    l.win[1].max = m1;
    return l;
}

static kmlimit
limit1(int64_t w0, int m0)
{
    kmlimit l = { 0 };

    l.nwin = 1;
    l.win[0].window_ms = w0;
    l.win[0].max = m0;
    return l;
}

/* Deterministic bytes, NULs included. */
static char *
pattern(size_t n, unsigned seed)
{
    char *p = km_xmalloc(n ? n : 1);

    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (char)(seed >> 16);
    }
    return p;
}

/* A take recorded at an unknown time r with b <= r <= a (wall-clock ms). */
struct span {
    int64_t b, a;
};

static int
by_b(const void *x, const void *y)
{
    const struct span *p = x, *q = y;

    return (p->b > q->b) - (p->b < q->b);
}

/* No interval of window_ms may hold more than max recorded takes: any max+1 takes are spread
 * over at least window_ms, so for the max+1 takes starting earliest from each one, the
 * latest end minus the earliest start is at least window_ms. Sorts s. */
static void
assert_sliding(struct span *s, int n, int64_t window_ms, int max)
{
    qsort(s, (size_t)n, sizeof(*s), by_b);
    for (int i = 0; i + max < n; i++) {
        int64_t last = 0;

        for (int j = i; j <= i + max; j++) {
            if (s[j].a > last)
                last = s[j].a;
        }
        ck_assert_msg(last - s[i].b >= window_ms,
                      "%d takes within %lld ms, the window of %lld ms allows %d", max + 1,
                      (long long)(last - s[i].b), (long long)window_ms, max);
    }
}

/* --- cache ------------------------------------------------------------------------------- */

START_TEST(a_stored_body_comes_back_byte_for_byte)
{
    kmstore *st = fresh_store(_i, 4 << 20, 2);
    char    *big = pattern(1 << 20, 7);
    char     nuls[5] = { 'a', '\0', 'b', '\0', 'c' };

    ck_assert_int_eq(put(st, "acme:GET:/api/flows/", big, 1 << 20, 60), KM_OK);
    ck_assert_int_eq(put(st, "acme:GET:/api/nuls/", nuls, sizeof(nuls), 60), KM_OK);
    ck_assert_int_eq(put(st, "acme:GET:/api/empty/", "", 0, 60), KM_OK);
    expect_body(st, "acme:GET:/api/flows/", big, 1 << 20);
    expect_body(st, "acme:GET:/api/nuls/", nuls, sizeof(nuls));
    expect_body(st, "acme:GET:/api/empty/", "", 0);
    free(big);
    kmstore_close(st);
}
END_TEST

START_TEST(an_unknown_key_is_not_found_and_an_empty_key_is_refused)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmerr    err = { 0 };
    char    *body = NULL;

    expect_missing(st, "never-stored");
    ck_assert_int_eq(kmstore_cache_get(st, "", &body, NULL, NULL, NULL, &err),
                     KM_INVALID_ARGUMENT);
    ck_assert_int_eq(kmstore_cache_put(st, "k", "x", 1, 0, &err), KM_INVALID_ARGUMENT);
    expect_missing(st, "k");
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

START_TEST(an_entry_is_fresh_then_stale_with_its_age_then_gone)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    char    *body = NULL;
    size_t   len = 0;
    int64_t  age = -1, t0, t1, t2;
    int      fresh = -1;
    kmcode   rc;

    /* ttl 1 s, grace 2 s: the entry is stored at some time in [t0, t1] */
    t0 = km_now_ms();
    ck_assert_int_eq(put(st, "report", "{\"v\":1}", 7, 1), KM_OK);
    t1 = km_now_ms();
    expect_body(st, "report", "{\"v\":1}", 7);

    sleep_ms(t1 + 1300 - km_now_ms());
    t2 = km_now_ms();
    rc = get(st, "report", &body, &len, &age, &fresh);
    if (t2 < t0 + 3000) {
        /* past the ttl, inside the grace period: stale, with its age */
        ck_assert_int_eq(rc, KM_OK);
        ck_assert_int_eq(fresh, 0);
        ck_assert_int_ge(age, 1000);
        ck_assert_uint_eq(len, 7);
        ck_assert_str_eq(body, "{\"v\":1}");
    }
    free(body);
    body = NULL;

    sleep_ms(t1 + 3400 - km_now_ms());
    expect_missing(st, "report");
    kmstore_close(st);
}
END_TEST

START_TEST(overwriting_a_key_keeps_only_the_new_body)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);

    ck_assert_int_eq(put(st, "k", "first body", 10, 60), KM_OK);
    ck_assert_int_eq(put(st, "k", "second", 6, 60), KM_OK);
    expect_body(st, "k", "second", 6);
    kmstore_close(st);
}
END_TEST

START_TEST(clearing_drops_every_entry)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmerr    err = { 0 };
    char     key[32];

    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ck_assert_int_eq(put(st, key, "body", 4, 60), KM_OK);
    }
    ck_assert_int_eq(kmstore_cache_clear(st, &err), KM_OK);
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        expect_missing(st, key);
    }
    /* the store still works, with its size accounting reset */
    ck_assert_int_eq(put(st, "after", "x", 1, 60), KM_OK);
    expect_body(st, "after", "x", 1);
    kmstore_close(st);
}
END_TEST

START_TEST(long_keys_that_differ_only_at_the_end_stay_apart)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    char     a[1001], b[1001];

    memset(a, 'q', 1000);
    a[1000] = '\0';
    memcpy(b, a, sizeof(a));
    b[999] = 'r';
    ck_assert_int_eq(put(st, a, "AAA", 3, 60), KM_OK);
    ck_assert_int_eq(put(st, b, "BB", 2, 60), KM_OK);
    expect_body(st, a, "AAA", 3);
    expect_body(st, b, "BB", 2);
    kmstore_close(st);
}
END_TEST

START_TEST(the_oldest_entries_go_first_when_the_size_bound_is_passed)
{
    /* each entry is charged 8000 + 2 * 3 + 128 = 8134 bytes: exactly 8 fit in 65536 */
    enum { N = 20, SIZE = 8000, BOUND = 65536, FIT = 8 };
    kmstore *st = fresh_store(_i, BOUND, 2);
    char    *body = pattern(SIZE, 3);
    char     key[32];

    ck_assert_uint_eq(kmstore_charge(3, SIZE) * FIT, 65072);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        body[0] = (char)i;
        ck_assert_int_eq(put(st, key, body, SIZE, 60), KM_OK);
    }
    /* the 8 newest stay, every older one went */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "k%02d", i);
        body[0] = (char)i;
        if (i >= N - FIT)
            expect_body(st, key, body, SIZE);
        else
            expect_missing(st, key);
    }
    free(body);
    kmstore_close(st);
}
END_TEST

START_TEST(many_empty_bodies_under_long_keys_are_bounded_by_their_keys)
{
    /* an empty body under a 398-byte key is charged 924 bytes: 17 fit in 16384 */
    enum { N = 3000, BOUND = 16384, FIT = 17 };
    kmstore *st = fresh_store(_i, BOUND, 2);
    char     key[400];
    int      failed = 0;

    ck_assert_uint_eq(kmstore_charge(398, 0), 924);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "%0390d%08d", 0, i);
        if (put(st, key, "", 0, 600) != KM_OK)
            failed++;
    }
    ck_assert_int_eq(failed, 0);
    for (int i = N - FIT - 3; i < N; i++) {
        snprintf(key, sizeof(key), "%0390d%08d", 0, i);
        if (i >= N - FIT)
            expect_body(st, key, "", 0);
        else
            expect_missing(st, key);
    }
    snprintf(key, sizeof(key), "%0390d%08d", 0, 0);
    expect_missing(st, key);
    kmstore_close(st);
}
END_TEST

START_TEST(bodies_of_mixed_sizes_keep_the_total_under_the_bound)
{
    enum { N = 60, BOUND = 100000 };
    kmstore *st = fresh_store(_i, BOUND, 2);
    size_t   sizes[N], total = 0;
    char     key[32];
    int      first_present = -1;
    unsigned seed = 11;

    for (int i = 0; i < N; i++) {
        char *body;

        seed = seed * 1103515245u + 12345u;
        sizes[i] = 1 + (seed >> 8) % 20000;
        body = pattern(sizes[i], (unsigned)i);
        snprintf(key, sizeof(key), "m%02d", i);
        ck_assert_int_eq(put(st, key, body, sizes[i], 60), KM_OK);
        free(body);
    }
    /* what is left is the newest entries, without a gap, and within the bound */
    for (int i = 0; i < N; i++) {
        char  *got = NULL;
        size_t len = 0;
        kmcode rc;

        snprintf(key, sizeof(key), "m%02d", i);
        rc = get(st, key, &got, &len, NULL, NULL);
        if (rc == KM_OK) {
            if (first_present < 0)
                first_present = i;
            ck_assert_uint_eq(len, sizes[i]);
            total += kmstore_charge(strlen(key), len);
        } else {
            ck_assert_int_eq(rc, KM_NOT_FOUND);
            ck_assert_msg(first_present < 0, "m%02d is gone but an older entry stayed", i);
        }
        free(got);
    }
    ck_assert_int_eq(first_present >= 0 && first_present < N, 1);
    ck_assert_int_gt(first_present, 0);
    ck_assert_uint_le(total, BOUND);
    /* the newest is there, and the one before the first kept would not have fitted */
    ck_assert_uint_gt(total + kmstore_charge(3, sizes[first_present - 1]), BOUND);
    kmstore_close(st);
}
END_TEST

START_TEST(a_body_larger_than_the_bound_is_refused_and_nothing_changes)
{
    /* "exact" (5 bytes) with a body of 65536 - 138 bytes is charged exactly the bound */
    enum { BOUND = 65536, EXACT = 65536 - 138 };
    kmstore *st = fresh_store(_i, BOUND, 2);
    char    *big = pattern(BOUND + 1, 5);
    kmerr    err = { 0 };

    ck_assert_uint_eq(kmstore_charge(5, EXACT), BOUND);
    ck_assert_int_eq(put(st, "small", "kept", 4, 60), KM_OK);
    ck_assert_int_eq(kmstore_cache_put(st, "big", big, BOUND + 1, 60, &err),
                     KM_PAYLOAD_TOO_LARGE);
    ck_assert_int_eq(err.code, KM_PAYLOAD_TOO_LARGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "65537"));
    ck_assert_int_eq(put(st, "exact", big, EXACT + 1, 60), KM_PAYLOAD_TOO_LARGE);
    expect_missing(st, "big");
    expect_missing(st, "exact");
    expect_body(st, "small", "kept", 4);
    /* exactly the bound still fits, and pushes the small entry out */
    ck_assert_int_eq(put(st, "exact", big, EXACT, 60), KM_OK);
    expect_body(st, "exact", big, EXACT);
    expect_missing(st, "small");
    kmerr_clear(&err);
    free(big);
    kmstore_close(st);
}
END_TEST

START_TEST(the_lmdb_file_and_its_new_directory_are_private_to_the_owner)
{
    kmstore    *st;
    struct stat sb;
    char        dir[PATH_MAX + 32], file[PATH_MAX + 64];
    kmerr       err = { 0 };
    mode_t      old = umask(0);

    prepare(BE_LMDB, 1 << 20, 2);
    /* a directory that does not exist yet, two levels deep */
    snprintf(dir, sizeof(dir), "%s/new/store", store_dir);
    opts.dir = dir;
    ck_assert_int_eq(kmstore_open(&opts, &st, &err), KM_OK);
    umask(old);
    snprintf(file, sizeof(file), "%s/store.mdb", dir);
    ck_assert_int_eq(stat(file, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(dir, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0700);
    snprintf(file, sizeof(file), "%s/store.mdb-lock", dir);
    ck_assert_int_eq(stat(file, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0600);
    kmstore_close(st);
}
END_TEST

START_TEST(two_stores_on_one_file_in_one_process_share_it_and_close_independently)
{
    kmstore *a, *b;

    a = fresh_store(BE_LMDB, 1 << 20, 2);
    b = open_store(BE_LMDB);
    ck_assert_int_eq(put(a, "shared", "from a", 6, 60), KM_OK);
    expect_body(b, "shared", "from a", 6);
    kmstore_close(a);
    /* closing one must not pull the environment from under the other */
    ck_assert_int_eq(put(b, "later", "from b", 6, 60), KM_OK);
    expect_body(b, "later", "from b", 6);
    expect_body(b, "shared", "from a", 6);
    kmstore_close(b);
}
END_TEST

START_TEST(the_cache_survives_closing_and_reopening_the_lmdb_store)
{
    kmstore *st = fresh_store(BE_LMDB, 1 << 20, 2);

    ck_assert_int_eq(put(st, "persist", "still here", 10, 60), KM_OK);
    kmstore_close(st);
    st = open_store(BE_LMDB);
    expect_body(st, "persist", "still here", 10);
    kmstore_close(st);
}
END_TEST

/* In a child process: open the store file with the LMDB API and fill a database of its own
 * until the map is full. Exits 0 once MDB_MAP_FULL was met. */
static void
fill_map(const char *path, size_t map)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi  junk;
    char    *chunk = pattern(65536, 9);
    int      rc;

    if (mdb_env_create(&env) || mdb_env_set_maxdbs(env, 8) || mdb_env_set_mapsize(env, map) ||
        mdb_env_open(env, path, MDB_NOSUBDIR, 0600))
        _exit(2);
    if (mdb_txn_begin(env, NULL, 0, &txn) || mdb_dbi_open(txn, "junk", MDB_CREATE, &junk) ||
        mdb_txn_commit(txn))
        _exit(3);
    for (unsigned i = 0;; i++) {
        MDB_val k = { sizeof(i), &i }, v = { 65536, chunk };

        if (mdb_txn_begin(env, NULL, 0, &txn))
            _exit(4);
        rc = mdb_put(txn, junk, &k, &v, 0);
        if (rc == MDB_SUCCESS) {
            rc = mdb_txn_commit(txn);
        } else {
            mdb_txn_abort(txn);
        }
        if (rc == MDB_MAP_FULL)
            break;
        if (rc != MDB_SUCCESS)
            _exit(5);
    }
    mdb_env_close(env);
    free(chunk);
    _exit(0);
}

START_TEST(a_full_lmdb_map_makes_room_by_evicting_instead_of_failing)
{
    /* 8 MiB bound: four 1.2 MB bodies fit it, so only a full map can push one out. The map
     * is 4 x bound + 8 MiB (store_lmdb_env.c). */
    enum { BIG = 1200000 };
    size_t   bound = (size_t)8 << 20;
    kmstore *st;
    char    *body = pattern(BIG, 13), key[16], path[PATH_MAX + 16];
    kmlimit  lim = limit1(60000, 1);
    pid_t    kid;
    int      status = 0;
    int64_t  wait;

    st = fresh_store(BE_LMDB, bound, 2);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "e%d", i);
        body[0] = (char)i;
        ck_assert_int_eq(put(st, key, body, BIG, 600), KM_OK);
    }
    kmstore_close(st);
    snprintf(path, sizeof(path), "%s/store.mdb", store_dir);
    kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        free(body);  /* the child never returns here: no leak report for the parent's copy */
        fill_map(path, bound * 4 + ((size_t)8 << 20));
    }
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_int_eq(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);

    st = open_store(BE_LMDB);
    body[0] = 'n';
    ck_assert_int_eq(put(st, "new", body, BIG, 600), KM_OK);
    expect_body(st, "new", body, BIG);
    expect_missing(st, "e0");
    ck_assert_int_eq(take(st, "still-writes", &lim, &wait, NULL), KM_OK);
    free(body);
    kmstore_close(st);
}
END_TEST

/* --- rate windows ------------------------------------------------------------------------ */

START_TEST(exactly_the_allowed_number_succeed_in_a_tight_loop)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmlimit  lim = limit1(60000, 5);
    int64_t  wait = 0;
    int      ok = 0, limited = 0, retry = 0;

    for (int i = 0; i < 20; i++) {
        kmcode rc = take(st, "acme:reports", &lim, &wait, &retry);

        if (rc == KM_OK) {
            ok++;
        } else {
            ck_assert_int_eq(rc, KM_RATE_LIMITED);
            ck_assert_int_gt(wait, 0);
            ck_assert_int_ge(retry, 1);
            limited++;
        }
    }
    ck_assert_int_eq(ok, 5);
    ck_assert_int_eq(limited, 15);
    kmstore_close(st);
}
END_TEST

START_TEST(a_full_window_refuses_with_a_wait_and_frees_after_it)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmlimit  lim = limit2(200, 1, 2000, 3);
    int64_t  wait = 0;
    int      retry = 0;

    /* the burst window: one, then a refusal that names a wait within its 200 ms */
    ck_assert_int_eq(take(st, "b", &lim, &wait, &retry), KM_OK);
    ck_assert_int_eq(wait, 0);
    ck_assert_int_eq(take(st, "b", &lim, &wait, &retry), KM_RATE_LIMITED);
    ck_assert_int_gt(wait, 0);
    ck_assert_int_le(wait, 200);   /* the window as given: the store adds no margin */
    ck_assert_int_eq(retry, 1);

    /* waiting as long as told makes room, twice more */
    for (int i = 0; i < 2; i++) {
        sleep_ms(wait + 5);
        ck_assert_int_eq(take(st, "b", &lim, &wait, &retry), KM_OK);
        ck_assert_int_eq(take(st, "b", &lim, &wait, &retry), KM_RATE_LIMITED);
        ck_assert_int_gt(wait, 0);
    }
    /* three taken: the 2 s window is full, so the last refusal waits past the burst window */
    ck_assert_int_gt(wait, 200);
    ck_assert_int_eq(retry, (int)((wait + 999) / 1000));
    ck_assert_int_ge(retry, 1);
    sleep_ms(wait + 5);
    ck_assert_int_eq(take(st, "b", &lim, &wait, &retry), KM_OK);
    kmstore_close(st);
}
END_TEST

START_TEST(remaining_and_reset_are_reported_without_taking)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmlimit  lim = limit2(1000, 2, 10000, 3);
    kmerr    err = { 0 };
    int      left = -1;
    int64_t  reset = -1, wait;

    ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 1, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 3);
    ck_assert_int_eq(reset, 0);
    ck_assert_int_eq(take(st, "r", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 0, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 1);
    ck_assert_int_gt(reset, 0);
    ck_assert_int_le(reset, 1000);
    ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 1, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 2);
    ck_assert_int_gt(reset, 1000);
    ck_assert_int_le(reset, 10000);
    /* asking did not take anything: still exactly two more before the 10 s window is full */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 0, &left, &reset, &err), KM_OK);
        if (left == 0)
            sleep_ms(reset + 5);
        ck_assert_int_eq(take(st, "r", &lim, &wait, NULL), KM_OK);
    }
    ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 1, &left, &reset, &err), KM_OK);
    ck_assert_int_eq(left, 0);
    ck_assert_int_eq(take(st, "r", &lim, &wait, NULL), KM_RATE_LIMITED);
    ck_assert_int_eq(kmstore_remaining(st, "r", &lim, 2, &left, &reset, &err),
                     KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

START_TEST(windows_slide_rather_than_reset_at_a_boundary)
{
    kmstore    *st = fresh_store(_i, 1 << 20, 2);
    kmlimit     lim = limit2(200, 1, 2000, 3);
    struct span s[64];
    int         n = 0;
    int64_t     end = km_now_ms() + 4600, wait;

    /* try every 50 ms for 4.6 s: the attempts cross every possible window boundary */
    while (km_now_ms() < end && n < 64) {
        int64_t b = km_wall_ms();
        kmcode  rc = take(st, "slide", &lim, &wait, NULL);
        int64_t a = km_wall_ms();

        if (rc == KM_OK) {
            s[n].b = b;
            s[n].a = a;
            n++;
        } else {
            ck_assert_int_eq(rc, KM_RATE_LIMITED);
        }
        sleep_ms(50);
    }
    /* a second batch after the first left the 2 s window: at least 3 + 1 */
    ck_assert_int_ge(n, 4);
    assert_sliding(s, n, 2000, 3);
    assert_sliding(s, n, 200, 1);
    kmstore_close(st);
}
END_TEST

START_TEST(buckets_are_independent)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmlimit  lim = limit1(60000, 1);
    int64_t  wait;

    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_RATE_LIMITED);
    ck_assert_int_eq(take(st, "globex:reports", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "acme:xs", &lim, &wait, NULL), KM_OK);
    kmstore_close(st);
}
END_TEST

START_TEST(a_malformed_limit_is_an_invalid_argument)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmlimit  none = { 0 };
    kmlimit  zero = limit1(1000, 0);
    kmlimit  neg = limit1(-5, 1);
    int64_t  wait;

    ck_assert_int_eq(take(st, "x", &none, &wait, NULL), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(take(st, "x", &zero, &wait, NULL), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(take(st, "x", &neg, &wait, NULL), KM_INVALID_ARGUMENT);
    ck_assert_int_eq(take(st, "", &zero, &wait, NULL), KM_INVALID_ARGUMENT);
    kmstore_close(st);
}
END_TEST

/* --- several processes x threads --------------------------------------------------------- */

#define HAMMER_PROCS 3
#define HAMMER_THREADS 4
#define HAMMER_MS 2000
#define HAMMER_MAX 4096

struct hammer {
    atomic_int      ready;
    atomic_int      go;
    atomic_int      errors;
    atomic_int      n;
    _Atomic int64_t first_b;
    _Atomic int64_t last_a;
    struct span     ok[HAMMER_MAX];
};

static struct hammer *hm;
static kmlimit        hammer_lim;

static void *
hammer_thread(void *arg)
{
    kmstore *st = arg;
    int64_t  end, wait;

    while (!atomic_load(&hm->go))
        sleep_ms(1);
    end = km_now_ms() + HAMMER_MS;
    while (km_now_ms() < end) {
        kmerr   err = { 0 };
        int64_t b = km_wall_ms();
        kmcode  rc = kmstore_take(st, "acme:reports", &hammer_lim, &wait, &err);
        int64_t a = km_wall_ms();
        int64_t cur = atomic_load(&hm->first_b);

        kmerr_clear(&err);
        while (b < cur && !atomic_compare_exchange_weak(&hm->first_b, &cur, b)) {
        }
        cur = atomic_load(&hm->last_a);
        while (a > cur && !atomic_compare_exchange_weak(&hm->last_a, &cur, a)) {
        }
        if (rc == KM_OK) {
            int i = atomic_fetch_add(&hm->n, 1);
            if (i < HAMMER_MAX) {
                hm->ok[i].b = b;
                hm->ok[i].a = a;
            }
        } else if (rc != KM_RATE_LIMITED || wait <= 0) {
            atomic_fetch_add(&hm->errors, 1);
        }
        if (rc != KM_OK)
            usleep(200);
    }
    return NULL;
}

static void
hammer_child(void)
{
    kmstore  *st = NULL;
    kmerr     err = { 0 };
    pthread_t th[HAMMER_THREADS];
    int       bad = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (kmstore_open(&opts, &st, &err) != KM_OK) {
        atomic_fetch_add(&hm->errors, 1);
        atomic_fetch_add(&hm->ready, 1);
        _exit(2);
    }
    if (kmstore_degraded(st))
        bad = 1;
    atomic_fetch_add(&hm->ready, 1);
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_create(&th[i], NULL, hammer_thread, st);
    for (int i = 0; i < HAMMER_THREADS; i++)
        pthread_join(th[i], NULL);
    if (kmstore_degraded(st))
        bad = 1;
    kmstore_close(st);
    _exit(bad ? 3 : 0);
}

START_TEST(several_processes_and_threads_never_exceed_the_windows_together)
{
    pid_t   kids[HAMMER_PROCS];
    int     n;
    int64_t elapsed;

    prepare(_i, 1 << 20, 2);
    hammer_lim = limit2(100, 2, 1000, 5);
    hm = mmap(NULL, sizeof(*hm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(hm, MAP_FAILED);
    memset(hm, 0, sizeof(*hm));
    atomic_store(&hm->first_b, INT64_MAX);
    /* the test process opens nothing before fork(): each child opens its own store */
    for (int p = 0; p < HAMMER_PROCS; p++) {
        kids[p] = fork();
        ck_assert_int_ge(kids[p], 0);
        if (kids[p] == 0)
            hammer_child();
    }
    for (int i = 0; i < 400 && atomic_load(&hm->ready) < HAMMER_PROCS; i++)
        sleep_ms(25);
    atomic_store(&hm->go, 1);
    for (int p = 0; p < HAMMER_PROCS; p++) {
        int status = 0;

        ck_assert_int_eq(waitpid(kids[p], &status, 0), kids[p]);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "child %d failed (status %d)", p, status);
    }
    ck_assert_int_eq(atomic_load(&hm->errors), 0);
    n = atomic_load(&hm->n);
    ck_assert_int_le(n, HAMMER_MAX);
    elapsed = atomic_load(&hm->last_a) - atomic_load(&hm->first_b);
    ck_assert_int_gt(elapsed, 0);
    /* any span of E ms is covered by floor(E / W) + 1 windows of W ms, each holding <= max */
    for (int w = 0; w < hammer_lim.nwin; w++) {
        int64_t bound = hammer_lim.win[w].max * (elapsed / hammer_lim.win[w].window_ms + 1);

        ck_assert_msg(n <= bound, "%d takes in %lld ms; window %d allows at most %lld", n,
                      (long long)elapsed, w, (long long)bound);
    }
    ck_assert_int_ge(n, 2);
    assert_sliding(hm->ok, n, 1000, 5);
    assert_sliding(hm->ok, n, 100, 2);
    munmap(hm, sizeof(*hm));
}
END_TEST

/* --- markers ----------------------------------------------------------------------------- */

#define MARK_PROCS 5

struct marks {
    atomic_int ready;
    atomic_int go;
    atomic_int acquired;
    atomic_int errors;
};

START_TEST(only_one_of_several_processes_acquires_a_marker)
{
    struct marks *m;
    pid_t         kids[MARK_PROCS];

    prepare(_i, 1 << 20, 2);
    m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    memset(m, 0, sizeof(*m));
    for (int p = 0; p < MARK_PROCS; p++) {
        kids[p] = fork();
        ck_assert_int_ge(kids[p], 0);
        if (kids[p] == 0) {
            kmstore *st = NULL;
            kmerr    err = { 0 };
            int      got = 0;

            prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (kmstore_open(&opts, &st, &err) != KM_OK)
                atomic_fetch_add(&m->errors, 1);
            atomic_fetch_add(&m->ready, 1);
            while (!atomic_load(&m->go))
                usleep(100);
            if (st && kmstore_lock(st, "acme:GET:/api/flows/", 10000, &got, &err) != KM_OK)
                atomic_fetch_add(&m->errors, 1);
            atomic_fetch_add(&m->acquired, got);
            kmstore_close(st);
            _exit(0);
        }
    }
    for (int i = 0; i < 400 && atomic_load(&m->ready) < MARK_PROCS; i++)
        sleep_ms(25);
    atomic_store(&m->go, 1);
    for (int p = 0; p < MARK_PROCS; p++)
        ck_assert_int_eq(waitpid(kids[p], NULL, 0), kids[p]);
    ck_assert_int_eq(atomic_load(&m->errors), 0);
    ck_assert_int_eq(atomic_load(&m->acquired), 1);
    munmap(m, sizeof(*m));
}
END_TEST

static int
lock_once(kmstore *st, const char *key, int ttl_ms)
{
    kmerr err = { 0 };
    int   got = -1;

    ck_assert_int_eq(kmstore_lock(st, key, ttl_ms, &got, &err), KM_OK);
    kmerr_clear(&err);
    return got;
}

START_TEST(unlocking_releases_a_marker_but_only_its_holder_can)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmerr    err = { 0 };
    pid_t    kid;
    int      status = 0;

    ck_assert_int_eq(lock_once(st, "k", 10000), 1);
    ck_assert_int_eq(lock_once(st, "k", 10000), 0);
    /* another process cannot release it, and cannot take it */
    kid = fork();
    ck_assert_int_ge(kid, 0);
    if (kid == 0) {
        kmstore *other = NULL;
        int      got = -1;

        if (kmstore_open(&opts, &other, &err) != KM_OK)
            _exit(2);
        if (kmstore_unlock(other, "k", &err) != KM_OK)
            _exit(3);
        if (kmstore_lock(other, "k", 10000, &got, &err) != KM_OK || got != 0)
            _exit(4);
        kmstore_close(other);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(kid, &status, 0), kid);
    ck_assert_int_eq(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0);
    ck_assert_int_eq(lock_once(st, "k", 10000), 0);
    /* its holder can */
    ck_assert_int_eq(kmstore_unlock(st, "k", &err), KM_OK);
    ck_assert_int_eq(lock_once(st, "k", 10000), 1);
    /* unlocking what nobody holds is fine */
    ck_assert_int_eq(kmstore_unlock(st, "nobody-holds-this", &err), KM_OK);
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

START_TEST(an_expired_marker_can_be_taken_again)
{
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    int64_t  t1;

    ck_assert_int_eq(lock_once(st, "short", 300), 1);
    t1 = km_now_ms();
    ck_assert_int_eq(lock_once(st, "short", 300), 0);
    sleep_ms(t1 + 450 - km_now_ms());
    ck_assert_int_eq(lock_once(st, "short", 300), 1);
    kmstore_close(st);
}
END_TEST

START_TEST(thousands_of_live_markers_never_make_a_lock_fail)
{
    enum { N = 5000 };
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    kmerr    err = { 0 };
    char     key[400];
    int      granted = 0, failed = 0;

    /* more live markers than the LMDB store records (4096): every lock still answers */
    for (int i = 0; i < N; i++) {
        int got = 0;

        snprintf(key, sizeof(key), "%0390d%08d", 0, i);
        if (kmstore_lock(st, key, 600000, &got, &err) != KM_OK)
            failed++;
        granted += got;
    }
    ck_assert_int_eq(failed, 0);
    ck_assert_int_eq(granted, N);
    /* the first ones were recorded and still hold */
    snprintf(key, sizeof(key), "%0390d%08d", 0, 0);
    ck_assert_int_eq(lock_once(st, key, 600000), 0);
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

START_TEST(expired_markers_make_room_for_new_ones)
{
    enum { N = 4200 };
    kmstore *st = fresh_store(_i, 1 << 20, 2);
    char     key[64];
    int64_t  t1;

    /* more than the LMDB store records (4096), all live for 3 s */
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "short-%d", i);
        ck_assert_int_eq(lock_once(st, key, 3000), 1);
    }
    t1 = km_now_ms();
    sleep_ms(t1 + 3100 - km_now_ms());
    /* all of them expired: a new marker is recorded again, so a second lock is refused */
    ck_assert_int_eq(lock_once(st, "fresh", 60000), 1);
    ck_assert_int_eq(lock_once(st, "fresh", 60000), 0);
    kmstore_close(st);
}
END_TEST

/* --- Redis: configuration and outage ----------------------------------------------------- */

START_TEST(a_bad_redis_url_is_a_config_error_that_never_shows_the_password)
{
    static const char *const bad[] = {
        "rediss://:s3cretpw@127.0.0.1:6379",  "redis://:s3cretpw@127.0.0.1:99999",
        "redis://:s3cretpw@:6379",            "redis://:s3cr%zzpw@127.0.0.1",
        "redis://:s3cretpw@127.0.0.1:6379/x", "redis://:s3cretpw@127.0.0.1:63a9",
        "redis://s3cretpw@127.0.0.1",         "http://127.0.0.1:6379",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kmstore_opts o = { 0 };
        kmstore     *st = (kmstore *)1;
        kmerr        err = { 0 };

        o.redis_url = bad[i];
        ck_assert_msg(kmstore_open(&o, &st, &err) == KM_CONFIG_ERROR, "%zu accepted", i);
        ck_assert_ptr_null(st);
        ck_assert_ptr_null(strstr(err.msg, "s3cr"));
        ck_assert_int_gt((int)strlen(err.msg), 0);
        kmerr_clear(&err);
    }
}
END_TEST

START_TEST(a_redis_that_is_down_at_start_leaves_the_store_degraded_but_answering)
{
    kmstore_opts o = { 0 };
    kmstore     *st = NULL;
    kmerr        err = { 0 };
    char         url[64];
    char        *body = NULL;
    kmlimit      lim = limit1(60000, 4);
    int64_t      wait;
    int          got = 0;

    /* nothing listens on a port just released */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", free_port());
    o.redis_url = url;
    o.max_bytes = 1 << 20;
    o.local_share = 50;
    kmlog_set_level(KMLOG_OFF);
    ck_assert_int_eq(kmstore_open(&o, &st, &err), KM_OK);
    ck_assert_str_eq(kmstore_backend(st), "redis");
    ck_assert_int_eq(kmstore_degraded(st), 1);
    ck_assert_int_eq(kmstore_cache_put(st, "k", "v", 1, 60, &err), KM_OK);
    ck_assert_int_eq(kmstore_cache_get(st, "k", &body, NULL, NULL, NULL, &err), KM_NOT_FOUND);
    /* the local limiter allows half of each window: 2 of 4 */
    ck_assert_int_eq(take(st, "b", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "b", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "b", &lim, &wait, NULL), KM_RATE_LIMITED);
    ck_assert_int_gt(wait, 0);
    ck_assert_int_eq(kmstore_lock(st, "m", 5000, &got, &err), KM_OK);
    ck_assert_int_eq(got, 1);
    ck_assert_int_eq(kmstore_lock(st, "m", 5000, &got, &err), KM_OK);
    ck_assert_int_eq(got, 0);
    ck_assert_int_eq(kmstore_unlock(st, "m", &err), KM_OK);
    ck_assert_int_eq(kmstore_lock(st, "m", 5000, &got, &err), KM_OK);
    ck_assert_int_eq(got, 1);
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

/* Count the lines of the log file holding `needle`. */
static int
log_count(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char  line[4096];
    int   n = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle))
            n++;
    }
    fclose(f);
    return n;
}

START_TEST(a_redis_restart_is_survived_and_recovery_is_seen)
{
    static const char pass[] = "pw-9f3kq";
    kmstore          *st = NULL;
    kmerr             err = { 0 };
    char              url[96], logpath[PATH_MAX], where[64];
    char             *body = NULL;
    size_t            len = 0;
    kmlimit           lim = limit1(60000, 4);
    int64_t           wait, deadline;
    int               port = free_port(), logfd, ok = 0, got = 0;
    pid_t             pid;

    ck_assert_int_gt(port, 0);
    pid = redis_start(port, pass);
    ck_assert_msg(pid > 0 && redis_wait(pid, port, pass),
                  "redis-server could not be started (is it installed?)");
    snprintf(logpath, sizeof(logpath), "%s/outage.log.XXXXXX", base_dir);
    logfd = mkstemp(logpath);
    ck_assert_int_ge(logfd, 0);
    kmlog_set_fd(logfd);

    /* with a password and a database number */
    snprintf(url, sizeof(url), "redis://:%s@127.0.0.1:%d/2", pass, port);
    snprintf(where, sizeof(where), "127.0.0.1:%d/2", port);
    memset(&opts, 0, sizeof(opts));
    opts.redis_url = url;
    opts.max_bytes = 1 << 20;
    opts.stale_grace_s = 60;
    opts.local_share = 50;
    st = open_store(BE_REDIS);
    ck_assert_int_eq(put(st, "before", "served by redis", 15, 60), KM_OK);
    expect_body(st, "before", "served by redis", 15);

    redis_stop(pid);
    /* every call still answers: cache misses, the local limiter, local markers */
    ck_assert_int_eq(get(st, "before", &body, &len, NULL, NULL), KM_NOT_FOUND);
    ck_assert_int_eq(kmstore_degraded(st), 1);
    ck_assert_int_eq(put(st, "during", "x", 1, 60), KM_OK);
    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_RATE_LIMITED);
    ck_assert_int_eq(kmstore_lock(st, "m", 5000, &got, &err), KM_OK);
    ck_assert_int_eq(got, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(get(st, "before", &body, &len, NULL, NULL), KM_NOT_FOUND);

    /* the same server comes back (empty: it saved nothing) */
    pid = redis_start(port, pass);
    ck_assert_msg(pid > 0 && redis_wait(pid, port, pass), "redis-server did not restart");
    deadline = km_now_ms() + 10000;
    while (km_now_ms() < deadline) {
        if (!kmstore_degraded(st)) {
            ok = 1;
            break;
        }
        sleep_ms(100);
    }
    ck_assert_msg(ok, "the store never went back to redis");
    ck_assert_int_eq(put(st, "after", "served by redis again", 21, 60), KM_OK);
    expect_body(st, "after", "served by redis again", 21);
    ck_assert_int_eq(take(st, "acme:reports", &lim, &wait, NULL), KM_OK);

    kmlog_set_fd(2);
    close(logfd);
    /* one warning naming the server, one recovery, and never the password */
    ck_assert_int_eq(log_count(logpath, "\"store_degraded\""), 1);
    ck_assert_int_eq(log_count(logpath, "\"store_recovered\""), 1);
    ck_assert_int_ge(log_count(logpath, where), 2);
    ck_assert_int_eq(log_count(logpath, pass), 0);
    kmerr_clear(&err);
    kmstore_close(st);
    redis_stop(pid);
}
END_TEST

/* --- waiting in arrival order ------------------------------------------------------------ */

/* The queue tests run on LMDB, Redis and the process-local fallback (Redis away). */
enum { Q_LMDB = BE_LMDB, Q_REDIS = BE_REDIS, Q_FALLBACK, Q_COUNT };

static kmstore *
queue_store(int which)
{
    kmstore_opts o = { 0 };
    kmstore     *st = NULL;
    kmerr        err = { 0 };
    static char  url[64];

    if (which != Q_FALLBACK)
        return fresh_store(which, 1 << 20, 2);
    /* nothing listens on a port just released: the fallback serves */
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d/3", free_port());
    o.redis_url = url;
    o.max_bytes = 1 << 20;
    o.local_share = 50;
    opts = o;
    kmlog_set_level(KMLOG_OFF);
    ck_assert_int_eq(kmstore_open(&o, &st, &err), KM_OK);
    ck_assert_int_eq(kmstore_degraded(st), 1);
    return st;
}

static kmcode
turn(kmstore *st, const char *bucket, const kmlimit *lim, const char *ticket, int lease_ms,
     int64_t *wait)
{
    kmerr  err = { 0 };
    kmcode rc = kmstore_take_turn(st, bucket, lim, ticket, lease_ms, wait, &err);

    kmerr_clear(&err);
    return rc;
}

START_TEST(tickets_take_slots_in_arrival_order_and_newcomers_wait_behind_them)
{
    kmstore *st = queue_store(_i);
    kmstore *other = _i == Q_FALLBACK ? st : open_store(_i);  /* as a second process */
    kmlimit  lim = limit1(300, 1);
    char     a[KMSTORE_TICKET_MAX], b[KMSTORE_TICKET_MAX], c[KMSTORE_TICKET_MAX];
    int64_t  wait = 0, w;
    int64_t  t0 = km_wall_ms();

    /* three calls that arrived 1 ms apart */
    kmstore_ticket(st, t0, a);
    kmstore_ticket(other, t0 + 1, b);
    kmstore_ticket(st, t0 + 2, c);
    ck_assert_str_ne(a, b);
    ck_assert_str_ne(a, c);
    /* nobody waits: a take in turn is one step, as a plain take */
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &wait), KM_OK);
    /* the window is full: a, b, c begin to wait in that order */
    ck_assert_int_eq(turn(st, "q", &lim, a, 1000, &w), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(other, "q", &lim, b, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_gt(w, 0);
    ck_assert_int_le(w, 300);
    sleep_ms(w + 10);
    /* a slot is free: the last and the middle ticket, and a plain take, are told to come back
     * soon; the first takes it */
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_gt(wait, 0);
    ck_assert_int_le(wait, KMSTORE_TURN_MS);
    ck_assert_int_eq(turn(other, "q", &lim, b, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(take(other, "q", &lim, &wait, NULL), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "q", &lim, a, 1000, &w), KM_OK);
    /* the next slot: c is refused again, b takes it; then c */
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &w), KM_RATE_LIMITED);
    ck_assert_int_gt(w, KMSTORE_TURN_MS);
    sleep_ms(w + 10);
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(other, "q", &lim, b, 1000, &wait), KM_OK);
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &w), KM_RATE_LIMITED);
    sleep_ms(w + 10);
    ck_assert_int_eq(turn(st, "q", &lim, c, 1000, &wait), KM_OK);
    /* the queue is empty again: a plain take is one step when the window has room */
    sleep_ms(310);
    ck_assert_int_eq(take(other, "q", &lim, &wait, NULL), KM_OK);
    if (other != st)
        kmstore_close(other);
    kmstore_close(st);
}
END_TEST

/* The order is the calls' arrival, not the moment each began to wait: a call that arrived
 * first but reached the queue last (its first request took longer to prepare, or it needed a
 * second request) is served before those that arrived after it. */
START_TEST(an_earlier_arrival_that_queues_later_is_served_first)
{
    kmstore *st = queue_store(_i);
    kmstore *other = _i == Q_FALLBACK ? st : open_store(_i);  /* as a second process */
    kmlimit  lim = limit1(300, 1);
    char     early[KMSTORE_TICKET_MAX], late1[KMSTORE_TICKET_MAX], late2[KMSTORE_TICKET_MAX];
    int64_t  wait = 0, w, t0 = km_wall_ms();

    kmstore_ticket(st, t0 - 500, early);
    kmstore_ticket(other, t0 - 200, late1);
    kmstore_ticket(st, t0 - 100, late2);
    ck_assert_int_eq(take(st, "e", &lim, &wait, NULL), KM_OK);
    /* the window is full: the late ones queue first, the early one last */
    ck_assert_int_eq(turn(other, "e", &lim, late1, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "e", &lim, late2, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "e", &lim, early, 1000, &w), KM_RATE_LIMITED);
    ck_assert_int_gt(w, 0);
    sleep_ms(w + 10);
    /* the slot goes to the early one, though late1 asks first */
    ck_assert_int_eq(turn(other, "e", &lim, late1, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_le(wait, KMSTORE_TURN_MS);
    ck_assert_int_eq(turn(st, "e", &lim, late2, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "e", &lim, early, 1000, &w), KM_OK);
    /* then late1 before late2 */
    ck_assert_int_eq(turn(other, "e", &lim, late1, 1000, &w), KM_RATE_LIMITED);
    sleep_ms(w + 10);
    ck_assert_int_eq(turn(st, "e", &lim, late2, 1000, &wait), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(other, "e", &lim, late1, 1000, &wait), KM_OK);
    ck_assert_int_eq(turn(st, "e", &lim, late2, 1000, &w), KM_RATE_LIMITED);
    sleep_ms(w + 10);
    ck_assert_int_eq(turn(st, "e", &lim, late2, 1000, &wait), KM_OK);
    if (other != st)
        kmstore_close(other);
    kmstore_close(st);
}
END_TEST

START_TEST(a_ticket_whose_holder_vanished_stops_blocking_after_its_lease)
{
    kmstore *st = queue_store(_i);
    kmlimit  lim = limit1(200, 1);
    char     gone[KMSTORE_TICKET_MAX], live[KMSTORE_TICKET_MAX];
    int64_t  wait = 0, w;

    kmstore_ticket(st, 0, gone);
    kmstore_ticket(st, 0, live);
    ck_assert_int_eq(take(st, "q", &lim, &wait, NULL), KM_OK);
    /* `gone` waits first with a 300 ms lease, then is never heard from again */
    ck_assert_int_eq(turn(st, "q", &lim, gone, 300, &w), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "q", &lim, live, 5000, &wait), KM_RATE_LIMITED);
    sleep_ms(w + 10);
    /* the slot is free, but the lease of `gone` lasts until its wait plus 300 ms */
    ck_assert_int_eq(turn(st, "q", &lim, live, 5000, &wait), KM_RATE_LIMITED);
    ck_assert_int_le(wait, KMSTORE_TURN_MS);
    sleep_ms(150);
    ck_assert_int_eq(turn(st, "q", &lim, live, 5000, &wait), KM_RATE_LIMITED);
    sleep_ms(200);
    /* past the lease: `gone` blocks nobody */
    ck_assert_int_eq(turn(st, "q", &lim, live, 5000, &wait), KM_OK);
    kmstore_close(st);
}
END_TEST

START_TEST(a_waiter_that_gives_up_leaves_the_queue_at_once)
{
    kmstore *st = queue_store(_i);
    kmlimit  lim = limit1(200, 1);
    char     quit[KMSTORE_TICKET_MAX], next[KMSTORE_TICKET_MAX];
    int64_t  wait = 0, w;
    kmerr    err = { 0 };

    kmstore_ticket(st, 0, quit);
    kmstore_ticket(st, 0, next);
    ck_assert_int_eq(take(st, "q", &lim, &wait, NULL), KM_OK);
    ck_assert_int_eq(turn(st, "q", &lim, quit, 60000, &w), KM_RATE_LIMITED);
    ck_assert_int_eq(turn(st, "q", &lim, next, 60000, &wait), KM_RATE_LIMITED);
    /* cancelled: its minute-long lease no longer matters */
    ck_assert_int_eq(kmstore_leave(st, "q", quit, &err), KM_OK);
    ck_assert_int_eq(kmstore_leave(st, "q", quit, &err), KM_OK);   /* twice is harmless */
    sleep_ms(w + 10);
    ck_assert_int_eq(turn(st, "q", &lim, next, 60000, &wait), KM_OK);
    /* and a ticket that leaves after its take changes nothing */
    ck_assert_int_eq(kmstore_leave(st, "q", next, &err), KM_OK);
    ck_assert_int_eq(kmstore_take_turn(st, "q", &lim, "", 1000, &wait, &err),
                     KM_INVALID_ARGUMENT);
    kmerr_clear(&err);
    kmstore_close(st);
}
END_TEST

/* --- the suite --------------------------------------------------------------------------- */

static TCase *
tcase(const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);

    tcase_add_unchecked_fixture(tc, suite_up, suite_down);
    tcase_set_timeout(tc, timeout_s);
    return tc;
}

static Suite *
store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc;

    tc = tcase("cache", 60);
    tcase_add_loop_test(tc, a_stored_body_comes_back_byte_for_byte, 0, BE_COUNT);
    tcase_add_loop_test(tc, an_unknown_key_is_not_found_and_an_empty_key_is_refused, 0,
                        BE_COUNT);
    tcase_add_loop_test(tc, an_entry_is_fresh_then_stale_with_its_age_then_gone, 0, BE_COUNT);
    tcase_add_loop_test(tc, overwriting_a_key_keeps_only_the_new_body, 0, BE_COUNT);
    tcase_add_loop_test(tc, clearing_drops_every_entry, 0, BE_COUNT);
    tcase_add_loop_test(tc, long_keys_that_differ_only_at_the_end_stay_apart, 0, BE_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("size bound", 60);
    tcase_add_loop_test(tc, the_oldest_entries_go_first_when_the_size_bound_is_passed, 0,
                        BE_COUNT);
    tcase_add_loop_test(tc, bodies_of_mixed_sizes_keep_the_total_under_the_bound, 0, BE_COUNT);
    tcase_add_loop_test(tc, many_empty_bodies_under_long_keys_are_bounded_by_their_keys, 0,
                        BE_COUNT);
    tcase_add_loop_test(tc, a_body_larger_than_the_bound_is_refused_and_nothing_changes, 0,
                        BE_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("lmdb file", 60);
    tcase_add_test(tc, the_lmdb_file_and_its_new_directory_are_private_to_the_owner);
    tcase_add_test(tc, two_stores_on_one_file_in_one_process_share_it_and_close_independently);
    tcase_add_test(tc, the_cache_survives_closing_and_reopening_the_lmdb_store);
    tcase_add_test(tc, a_full_lmdb_map_makes_room_by_evicting_instead_of_failing);
    suite_add_tcase(s, tc);

    tc = tcase("rate windows", 60);
    tcase_add_loop_test(tc, exactly_the_allowed_number_succeed_in_a_tight_loop, 0, BE_COUNT);
    tcase_add_loop_test(tc, a_full_window_refuses_with_a_wait_and_frees_after_it, 0, BE_COUNT);
    tcase_add_loop_test(tc, remaining_and_reset_are_reported_without_taking, 0, BE_COUNT);
    tcase_add_loop_test(tc, windows_slide_rather_than_reset_at_a_boundary, 0, BE_COUNT);
    tcase_add_loop_test(tc, buckets_are_independent, 0, BE_COUNT);
    tcase_add_loop_test(tc, a_malformed_limit_is_an_invalid_argument, 0, BE_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("arrival order", 60);
    tcase_add_loop_test(tc, tickets_take_slots_in_arrival_order_and_newcomers_wait_behind_them,
                        0, Q_COUNT);
    tcase_add_loop_test(tc, an_earlier_arrival_that_queues_later_is_served_first, 0, Q_COUNT);
    tcase_add_loop_test(tc, a_ticket_whose_holder_vanished_stops_blocking_after_its_lease, 0,
                        Q_COUNT);
    tcase_add_loop_test(tc, a_waiter_that_gives_up_leaves_the_queue_at_once, 0, Q_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("processes and threads", 120);
    tcase_add_loop_test(tc, several_processes_and_threads_never_exceed_the_windows_together, 0,
                        BE_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("markers", 60);
    tcase_add_loop_test(tc, only_one_of_several_processes_acquires_a_marker, 0, BE_COUNT);
    tcase_add_loop_test(tc, unlocking_releases_a_marker_but_only_its_holder_can, 0, BE_COUNT);
    tcase_add_loop_test(tc, an_expired_marker_can_be_taken_again, 0, BE_COUNT);
    tcase_add_loop_test(tc, thousands_of_live_markers_never_make_a_lock_fail, 0, BE_COUNT);
    tcase_add_loop_test(tc, expired_markers_make_room_for_new_ones, 0, BE_COUNT);
    suite_add_tcase(s, tc);

    tc = tcase("redis outage", 120);
    tcase_add_test(tc, a_bad_redis_url_is_a_config_error_that_never_shows_the_password);
    tcase_add_test(tc, a_redis_that_is_down_at_start_leaves_the_store_degraded_but_answering);
    tcase_add_test(tc, a_redis_restart_is_survived_and_recovery_is_seen);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(store_suite());
    int      failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
