/* store_lmdb_env.c — the LMDB backend's environments and transactions: STORE_DIR made and
 * checked, the file <dir>/store.mdb opened (and started anew when it is unreadable), its named
 * databases, a per-process registry so one file is opened once per process, and transactions
 * that adopt a map another process grew (see store_lmdb.h). */
#include "log.h"
#include "store_lmdb.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Attempts to begin a transaction while other processes keep growing the map. */
#define RESIZE_TRIES 3

static pthread_mutex_t envs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kmstore_env *envs;

kmcode
kmstore_lmdb_fail(kmerr *err, int rc, const char *what)
{
    return kmerr_set(err, KM_INTERNAL_ERROR, "store: %s: %s", what, mdb_strerror(rc));
}

int
kmstore_txn_begin(struct kmstore_env *e, unsigned flags, MDB_txn **txn)
{
    int rc = MDB_MAP_RESIZED;

    for (int i = 0; i < RESIZE_TRIES && rc == MDB_MAP_RESIZED; i++) {
        pthread_rwlock_rdlock(&e->resize);
        rc = mdb_txn_begin(e->env, NULL, flags, txn);
        if (rc == MDB_SUCCESS)
            return rc;
        pthread_rwlock_unlock(&e->resize);
        if (rc == MDB_MAP_RESIZED) {
            /* another process grew the map: adopt its size */
            pthread_rwlock_wrlock(&e->resize);
            mdb_env_set_mapsize(e->env, 0);
            pthread_rwlock_unlock(&e->resize);
        }
    }
    return rc;
}

int
kmstore_txn_commit(struct kmstore_env *e, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);

    pthread_rwlock_unlock(&e->resize);
    return rc;
}

void
kmstore_txn_abort(struct kmstore_env *e, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&e->resize);
}

/* --- environment registry ---------------------------------------------------------------- */

/* How a failure to make or open the store is reported (store_lmdb.h, kmstore_env_get): errors
 * of the setting and of the deployment — permission, a read-only file system, a path that is
 * not a directory or cannot be resolved — stay until the operator changes STORE_DIR or the
 * directory: KM_CONFIG_ERROR. The rest (no space, memory or descriptors, an I/O error, the
 * store file locked, broken or something else in its place) is state that may have changed at
 * the next attempt, by the operator or by itself: KM_SERVICE_UNAVAILABLE. LMDB's own codes
 * (negative) are about the file's contents, never the setting. */
static kmcode
failure_class(int e)
{
    switch (e) {
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOTDIR:
    case ENAMETOOLONG:
    case ELOOP:
        return KM_CONFIG_ERROR;
    default:
        return KM_SERVICE_UNAVAILABLE;
    }
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int
make_dirs(const char *dir)
{
    char  *p = km_xstrdup(dir);
    size_t n = strlen(p);
    int    rc = 0;

    for (size_t i = 1; i <= n && rc == 0; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];

            p[i] = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                rc = -1;
            p[i] = c;
        }
    }
    free(p);
    return rc;
}

static int
env_open_file(const char *path, size_t map, MDB_env **out)
{
    MDB_env *env = NULL;
    int      rc;

    rc = mdb_env_create(&env);
    if (rc != MDB_SUCCESS)
        return rc;
    rc = mdb_env_set_maxdbs(env, 8);
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_mapsize(env, map);
    /* one slot per read transaction in flight: workers x service threads, with room */
    if (rc == MDB_SUCCESS)
        rc = mdb_env_set_maxreaders(env, 1024);
    /* MDB_NOSYNC: a cache and rate log need no fsync per request; LMDB stays consistent
     * after a process crash, and a system crash can only lose the last transactions. */
    if (rc == MDB_SUCCESS)
        rc = mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_NOSYNC, 0600);
    if (rc != MDB_SUCCESS) {
        mdb_env_close(env);
        env = NULL;
    }
    *out = env;
    return rc;
}

static kmcode
env_open_dbs(struct kmstore_env *e, kmerr *err)
{
    MDB_txn *txn;
    int      rc;

    rc = kmstore_txn_begin(e, 0, &txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "begin");
    rc = mdb_dbi_open(txn, "cache", MDB_CREATE, &e->cache);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "age", MDB_CREATE, &e->age);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &e->meta);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "rate", MDB_CREATE, &e->rate);
    if (rc == MDB_SUCCESS)
        rc = mdb_dbi_open(txn, "mark", MDB_CREATE, &e->mark);
    if (rc != MDB_SUCCESS) {
        kmstore_txn_abort(e, txn);
        return kmstore_lmdb_fail(err, rc, "open databases");
    }
    rc = kmstore_txn_commit(e, txn);
    if (rc != MDB_SUCCESS)
        return kmstore_lmdb_fail(err, rc, "open databases");
    return KM_OK;
}

void
kmstore_env_release(struct kmstore_env *e)
{
    struct kmstore_env **pp;

    pthread_mutex_lock(&envs_mu);
    if (--e->refs > 0) {
        pthread_mutex_unlock(&envs_mu);
        return;
    }
    for (pp = &envs; *pp; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    pthread_mutex_unlock(&envs_mu);
    /* an env inherited from the parent process belongs to the parent: leave it alone */
    if (e->env && e->pid == getpid())
        mdb_env_close(e->env);
    pthread_rwlock_destroy(&e->resize);
    free(e->path);
    free(e);
}

kmcode
kmstore_env_get(const char *dir, uint64_t max_bytes, struct kmstore_env **out, kmerr *err)
{
    struct kmstore_env *e = NULL;
    char           *real = NULL, *path = NULL, *lockpath = NULL;
    size_t          map;
    pid_t           pid = getpid();
    kmcode          rc = KM_OK;
    int             mrc, fd;
    struct stat     sb;

    *out = NULL;
    if (make_dirs(dir) != 0) {
        int e0 = errno;
        return kmerr_set(err, failure_class(e0), "STORE_DIR %s cannot be created: %s", dir,
                         strerror(e0));
    }
    real = realpath(dir, NULL);
    if (!real) {
        int e0 = errno;
        return kmerr_set(err, failure_class(e0), "STORE_DIR %s: %s", dir, strerror(e0));
    }
    /* mkdir -p accepts an existing file of that name; the store needs a directory */
    if (stat(real, &sb) != 0) {
        int e0 = errno;
        free(real);
        return kmerr_set(err, failure_class(e0), "STORE_DIR %s: %s", dir, strerror(e0));
    }
    if (!S_ISDIR(sb.st_mode)) {
        free(real);
        return kmerr_set(err, KM_CONFIG_ERROR, "STORE_DIR %s is not a directory", dir);
    }
    path = km_xasprintf("%s/store.mdb", real);
    lockpath = km_xasprintf("%s-lock", path);
    free(real);

    pthread_mutex_lock(&envs_mu);
    for (e = envs; e; e = e->next) {
        if (e->pid == pid && strcmp(e->path, path) == 0) {
            e->refs++;
            goto out;
        }
    }
    /* The bound counts bodies, keys and bookkeeping (kmstore_charge); the map adds room for
     * page rounding of large bodies, B-tree pages as little as a quarter full after deletes,
     * and 8 MiB for rate logs, markers and the pages of transactions in progress. It is
     * address space, not disk: the file grows with what is stored. If the map fills anyway
     * (fragmentation), MDB_MAP_FULL makes room by evicting (make_room). */
    map = max_bytes > (SIZE_MAX - ((size_t)8 << 20)) / 4
              ? SIZE_MAX / 2
              : (size_t)max_bytes * 4 + ((size_t)8 << 20);
    e = km_xcalloc(1, sizeof(*e));
    e->path = path;
    path = NULL;
    e->pid = pid;
    e->refs = 1;
    pthread_rwlock_init(&e->resize, NULL);
    mrc = env_open_file(e->path, map, &e->env);
    if (mrc == MDB_INVALID || mrc == MDB_CORRUPTED || mrc == MDB_VERSION_MISMATCH) {
        /* the store holds only a cache and recent request times: start a new file */
        kmlogf(KMLOG_WARN, "store_reset", "store file %s was unreadable (%s); starting anew",
               e->path, mdb_strerror(mrc));
        unlink(e->path);
        unlink(lockpath);
        mrc = env_open_file(e->path, map, &e->env);
    }
    if (mrc != MDB_SUCCESS) {
        rc = kmerr_set(err, mrc > 0 ? failure_class(mrc) : KM_SERVICE_UNAVAILABLE,
                       "store file %s cannot be opened: %s", e->path, mdb_strerror(mrc));
        goto out;
    }
    /* 0600 even when the file predates us or the umask was loose */
    if (mdb_env_get_fd(e->env, &fd) == MDB_SUCCESS)
        (void)fchmod(fd, 0600);
    (void)chmod(lockpath, 0600);
    {
        int dead = 0;
        /* free the reader slots of processes that died (a crashed worker) */
        mdb_reader_check(e->env, &dead);
    }
    rc = env_open_dbs(e, err);
    if (rc != KM_OK)
        goto out;
    e->next = envs;
    envs = e;
out:
    pthread_mutex_unlock(&envs_mu);
    if (rc != KM_OK && e) {
        if (e->env)
            mdb_env_close(e->env);
        pthread_rwlock_destroy(&e->resize);
        free(e->path);
        free(e);
        e = NULL;
    }
    free(path);
    free(lockpath);
    *out = e;
    return rc;
}

