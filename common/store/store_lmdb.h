/* store_lmdb.h — private to the LMDB backend: one environment per store file per process, and
 * the transactions every record operation runs in. store_lmdb_env.c implements it; only
 * store_lmdb.c (the records: cache, rate windows, markers) includes it.
 *
 * Owns:    the registry owns each kmstore_env; kmstore_env_get hands out a reference that the
 *          caller gives back with kmstore_env_release (the last one closes the env).
 * Threads: every function is safe from any thread. The env is opened MDB_NOTLS; each call runs
 *          in its own short transaction begun with kmstore_txn_begin and ended with exactly one
 *          kmstore_txn_commit or kmstore_txn_abort on the same thread.
 * Fork:    LMDB forbids opening one file twice in a process (closing the second breaks the
 *          first's locks), hence the registry; an env inherited across fork() is never used
 *          or closed by the child: it opens its own.
 * Fails:   kmstore_env_get returns KM_OK or a code with err->msg (see there); the transaction
 *          functions return LMDB codes (MDB_SUCCESS or an error for kmstore_lmdb_fail).
 */
#ifndef KM_STORE_LMDB_H
#define KM_STORE_LMDB_H

#include "store_impl.h"

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

/* One open store file of this process. */
struct kmstore_env {
    char               *path;    /* <STORE_DIR resolved>/store.mdb */
    pid_t               pid;     /* the process that opened it */
    int                 refs;
    MDB_env            *env;
    MDB_dbi             cache, age, meta, rate, mark;
    /* Held shared by every transaction, exclusively to adopt a map another process grew
     * (mdb_env_set_mapsize needs no transaction active in this process). */
    pthread_rwlock_t    resize;
    struct kmstore_env *next;
};

/* A reference to the env of <dir>/store.mdb, opened (dir created 0700, the file 0600, its
 * databases made) on first use in this process; max_bytes sizes the map. An unreadable file
 * (not LMDB, corrupted, another LMDB version) is logged and started anew. On failure *out is
 * NULL and the code says whether retrying can help:
 *   KM_CONFIG_ERROR        STORE_DIR cannot work as configured: it cannot be created or
 *                          resolved, is not a directory, or the store file is refused for
 *                          permission (EACCES, EPERM, EROFS) — nothing heals by retrying;
 *   KM_SERVICE_UNAVAILABLE the store file cannot be opened now (something else in its place,
 *                          locked, no space or memory): a later attempt may succeed. */
kmcode kmstore_env_get(const char *dir, uint64_t max_bytes, struct kmstore_env **out,
                       kmerr *err);
/* Give back a reference (NULL not allowed). */
void kmstore_env_release(struct kmstore_env *e);

/* Begin a transaction (flags as mdb_txn_begin), adopting a map another process grew. */
int kmstore_txn_begin(struct kmstore_env *e, unsigned flags, MDB_txn **txn);
int kmstore_txn_commit(struct kmstore_env *e, MDB_txn *txn);
void kmstore_txn_abort(struct kmstore_env *e, MDB_txn *txn);

/* KM_INTERNAL_ERROR with "store: <what>: <LMDB's message for rc>". */
kmcode kmstore_lmdb_fail(kmerr *err, int rc, const char *what);

#endif
