/* auth.c — REST credential check (see auth.h). */
#include "auth.h"

#include <string.h>
#include <strings.h>

/* Trim spaces and tabs around [*s, *s + *len). */
static void
trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* The token of "Bearer <token>" (scheme case-insensitive), or NULL. */
static const char *
bearer(const char *authorization, size_t *len)
{
    const char *p = authorization;
    size_t      n;

    while (*p == ' ' || *p == '\t')
        p++;
    if (strncasecmp(p, "Bearer", 6) != 0 || (p[6] != ' ' && p[6] != '\t'))
        return NULL;
    p += 6;
    n = strlen(p);
    trim(&p, &n);
    *len = n;
    return n > 0 ? p : NULL;
}

const char *
kmauth_presented(const char *authorization, const char *x_api_key, size_t *len)
{
    const char *cand = NULL;

    *len = 0;
    if (authorization)
        cand = bearer(authorization, len);
    if (!cand && x_api_key) {
        cand = x_api_key;
        *len = strlen(x_api_key);
        trim(&cand, len);
        if (*len == 0)
            cand = NULL;
    }
    return cand;
}

kmcode
kmauth_check(kmsecret *const *tokens, size_t n_tokens, const char *authorization,
             const char *x_api_key, kmerr *err)
{
    size_t      len = 0;
    const char *cand = kmauth_presented(authorization, x_api_key, &len);
    int         match = 0;

    if (!cand)
        return kmerr_set(err, KM_MISSING_API_KEY,
                         "missing credential: send Authorization: Bearer <token> or "
                         "X-API-Key: <token>");
    /* every token, every time: no early exit */
    for (size_t i = 0; i < n_tokens; i++)
        match |= kmsecret_equal(tokens[i], cand, len);
    if (!match)
        return kmerr_set(err, KM_INVALID_API_KEY, "invalid credential");
    return KM_OK;
}
