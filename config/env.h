/* env.h — `.env` files: the seed's search path and a strict parser.
 *
 * Owns:    kmenv_search_paths fills caller memory; kmenv_load's *loaded (when asked for) is a
 *          new string the caller frees. What the files say is kept in an overlay that
 *          kmenv_get reads under the real environment; the process environment is never
 *          written (libcurl and the C library read it on other threads).
 * Threads: kmenv_load, kmenv_load_file and kmenv_clear change the overlay: call them from the
 *          thread that configures, while no other thread calls kmenv_get (main() before
 *          threads start, or the single-threaded master on SIGHUP).
 * Fails:   KM_CONFIG_ERROR naming the file and line of a malformed entry.
 *
 * Search order, highest priority first (the seed's): the per-user directory —
 * $XDG_CONFIG_HOME/klaviyo-mcp/.env or ~/.config/klaviyo-mcp/.env on Linux,
 * ~/Library/Application Support/klaviyo-mcp/.env on macOS — then ./.env in the working
 * directory. Every file found is read; a variable already set (in the real environment, or
 * by a file earlier in the order) always wins.
 */
#ifndef KM_ENV_H
#define KM_ENV_H

#include "err.h"

#include <stddef.h>

#define KMENV_PATH_MAX 1024

/* Candidate paths for `filename` (".env", "accounts.toml") in priority order. Returns the
 * number written (at most cap). */
size_t kmenv_search_paths(const char *filename, char out[][KMENV_PATH_MAX], size_t cap);

/* Parse one .env file and add each variable not already set (in the real environment or the
 * overlay) to the overlay. A missing file is KM_NOT_FOUND (not an error for the search path);
 * a malformed line is KM_CONFIG_ERROR. */
kmcode kmenv_load_file(const char *path, kmerr *err);

/* Forget the overlay, then load every .env on the search path into it (so a reload forgets
 * what the files no longer say). *loaded (may be NULL) receives a comma-separated list of the
 * files read, or NULL when there were none. */
kmcode kmenv_load(char **loaded, kmerr *err);

/* The value of variable `name`: the real environment's when set and non-empty (empty means
 * unset), else what a loaded .env file gave it, else NULL. Borrowed until the next load. */
const char *kmenv_get(const char *name);

/* Forget everything the .env files gave (the values are wiped). */
void kmenv_clear(void);

/* Parse a single .env line (no newline). On KM_OK, *key and *val are new strings (the caller
 * frees both) or both NULL for a blank or comment line. `what` prefixes error messages
 * ("path:line"). */
kmcode kmenv_parse_line(const char *line, const char *what, char **key, char **val,
                        kmerr *err);

#endif
