/* session.h — MCP sessions of the 2025 Streamable HTTP revisions (Mcp-Session-Id), kept in
 * the shared store so that every worker (and, with Redis, every host) knows them.
 *
 * Owns:    nothing but what its callers pass; ids are written into caller buffers.
 * Threads: the worker's loop thread (the store is safe from any thread; an LMDB call takes
 *          microseconds, a Redis one a round trip on the loopback or LAN).
 * Fails:   kmsess_new: KM_RATE_LIMITED when MCP_MAX_SESSIONS sessions were created within
 *          the last idle period; KM_INTERNAL_ERROR when the store cannot record it.
 *          kmsess_use: KM_NOT_FOUND for an unknown, ended, idle-expired or malformed id, and
 *          for a session used with another credential than the one that created it.
 *
 * A session is a record under "mcp-session:<id>" (id: 32 random hex digits) holding its
 * negotiated revision, its creation time and a salted fingerprint of the credential that
 * created it (never the credential); it expires MCP_SESSION_IDLE_SECONDS after its last use
 * (each use re-stores it), KMSESS_MAX_AGE_S after its creation however busy, and DELETE ends it
 * (a tombstone). Creations are limited to MCP_MAX_SESSIONS in any window of one idle period,
 * across workers (a sliding window in the store), so at most MCP_MAX_SESSIONS ×
 * ceil(KMSESS_MAX_AGE_S / MCP_SESSION_IDLE_SECONDS) sessions are ever alive at once.
 */
#ifndef KM_SESSION_H
#define KM_SESSION_H

#include "err.h"
#include "store.h"

#include <json-c/json.h>

#include <stddef.h>

#define KMSESS_ID_LEN 32
#define KMSESS_MAX_AGE_S 86400   /* a session ends a day after it began; the client starts
                                    another (a 404 tells it to) */

/* Create a session for `version`, bound to the credential cred[0..len) (NULL/0 on the
 * trusted Unix socket). On KM_OK id holds KMSESS_ID_LEN hex digits and a NUL. */
kmcode kmsess_new(kmstore *st, int max_sessions, int idle_s, const char *version,
                  const char *cred, size_t cred_len, char id[KMSESS_ID_LEN + 1], kmerr *err);

/* Look up and refresh session `id` for this credential; one older than max_age_s (0: no
 * limit; /mcp passes KMSESS_MAX_AGE_S) is KM_NOT_FOUND. On KM_OK version (size vlen) receives
 * its negotiated revision. */
kmcode kmsess_use(kmstore *st, int idle_s, int max_age_s, const char *id, const char *cred,
                  size_t cred_len, char *version, size_t vlen, kmerr *err);

/* End session `id` (when this credential may use it). KM_NOT_FOUND as kmsess_use. */
kmcode kmsess_end(kmstore *st, int idle_s, const char *id, const char *cred, size_t cred_len,
                  kmerr *err);

/* notifications/cancelled for request `rid` (a JSON-RPC id) of session `sid`, which may be
 * running on another worker: kmsess_cancel records it in the store for a few minutes, and
 * kmsess_cancelled tells whether it was recorded. The caller has checked the session. */
void kmsess_cancel(kmstore *st, const char *sid, json_object *rid);
int kmsess_cancelled(kmstore *st, const char *sid, json_object *rid);

/* 1 when `id` has the form of a session id (so it may be used as a store key). */
int kmsess_id_ok(const char *id);

#endif
