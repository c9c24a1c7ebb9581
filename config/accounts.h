/* accounts.h — the account manifest (accounts.toml) and account resolution.
 *
 * Owns:    a kmaccounts owns every account, string and key in it; kmacct_free releases
 *          all. kmacct_at / kmacct_resolve / kmacct_find return borrowed pointers, valid
 *          until kmacct_free. The API key is a kmsecret: only the Klaviyo client reveals it.
 * Threads: immutable after kmacct_load; share it freely between threads.
 * Fails:   KM_CONFIG_ERROR naming the file, the line and the fix (load);
 *          KM_INVALID_ARGUMENT / KM_UNKNOWN_ACCOUNT with available_accounts (resolve).
 *
 * Format (the seed's, parsed with inih): one [name] section per account with string keys
 * api_key_env, conversion_metric_id and label, each a quoted TOML string (a bare value is
 * refused, as TOML refuses it, naming the line), # starts a comment and indentation is ignored; a line longer than inih's line buffer (199
 * characters) is refused rather than split. Names are slugs [a-z0-9][a-z0-9_-]{0,63}.
 * Unknown keys are warned about in the log; every api_key_env must name a set, non-empty
 * environment variable (fail fast).
 */
#ifndef KM_ACCOUNTS_H
#define KM_ACCOUNTS_H

#include "err.h"
#include "secret.h"

#include <stddef.h>

struct kmaccount {
    char      name[65];
    char     *label;
    char     *api_key_env;          /* the variable's name, not its value */
    char     *conversion_metric_id;
    kmsecret *api_key;
    int       line;                 /* where the section starts in the file */
};

typedef struct kmaccounts kmaccounts;

/* The largest manifest read, in bytes (a line is at most 199 characters: thousands of
 * accounts). */
#define KMACCT_MAX_FILE (1024 * 1024)

/* Load and validate the manifest at `path`: read it whole (KM_CONFIG_ERROR when it cannot be
 * read or is larger than KMACCT_MAX_FILE), then kmacct_parse. On failure *out is NULL. */
kmcode kmacct_load(const char *path, kmaccounts **out, kmerr *err);

/* Parse and validate a manifest held in memory: text[0..len), which may hold NUL bytes and
 * need not end in one; `path` names it in messages. Exactly what kmacct_load does with the
 * file's bytes. On failure *out is NULL. */
kmcode kmacct_parse(const char *path, const char *text, size_t len, kmaccounts **out,
                    kmerr *err);

/* Find the manifest: ACCOUNTS_FILE when set (it must exist), else the first accounts.toml on
 * the .env search path. KM_NOT_FOUND (with a message listing where it looked) when none. */
kmcode kmacct_locate(char **path, kmerr *err);

void kmacct_free(kmaccounts *a);

size_t kmacct_count(const kmaccounts *a);
const struct kmaccount *kmacct_at(const kmaccounts *a, size_t i);
const char *kmacct_path(const kmaccounts *a);

/* The account named `name`, or NULL. */
const struct kmaccount *kmacct_find(const kmaccounts *a, const char *name);

/* The account a tool call means: `name` when given (KM_UNKNOWN_ACCOUNT with details
 * available_accounts when it is not configured); the only account when name is NULL and
 * exactly one is configured; KM_INVALID_ARGUMENT when several are and none is named. */
kmcode kmacct_resolve(const kmaccounts *a, const char *name, const struct kmaccount **out,
                      kmerr *err);

/* 1 when s is a valid account name slug. */
int kmacct_name_valid(const char *s);

#endif
