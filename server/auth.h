/* auth.h — REST credentials: `Authorization: Bearer <token>` or `X-API-Key: <token>`.
 *
 * Owns:    nothing; the tokens are borrowed from the settings.
 * Threads: no state; call from the loop thread (or anywhere).
 * Fails:   KM_MISSING_API_KEY when no credential was presented, KM_INVALID_API_KEY when it
 *          matches none of the configured tokens. Messages never echo the presented value.
 *
 * The presented token is compared with every configured token, each in constant time and
 * without stopping at a match (kmsecret_equal), so neither whether a token matched nor which
 * one can be told from the time taken (TRD NFR-S3).
 */
#ifndef KM_AUTH_H
#define KM_AUTH_H

#include "err.h"
#include "secret.h"

#include <stddef.h>

/* Check the two header values (either may be NULL: header absent). A Bearer credential wins
 * over X-API-Key when both are sent; an Authorization header of another scheme counts as no
 * credential. */
kmcode kmauth_check(kmsecret *const *tokens, size_t n_tokens, const char *authorization,
                    const char *x_api_key, kmerr *err);

/* The credential presented (Bearer wins over X-API-Key), borrowed from the header value and
 * *len bytes long, or NULL when there is none. Never log it. */
const char *kmauth_presented(const char *authorization, const char *x_api_key, size_t *len);

#endif
