/* wire.h — one Klaviyo HTTP exchange on a curl easy handle: its options (timeouts, TLS,
 * protocols, size cap), its headers (the key, the revision, JSON:API), and what it reads back
 * (the body, capped, and the headers that say when to come back).
 *
 * Owns:    a kmwire is caller memory. Its header list holds the key and is freed by
 *          kmwire_end as soon as the transfer ends; its body buffer by kmwire_free.
 * Threads: a kmwire and its handle belong to one thread (the client's).
 * Fails:   kmwire_start returns KM_INTERNAL_ERROR with err->msg when libcurl refuses the URL
 *          or the headers cannot be built; nothing is attached then.
 */
#ifndef KM_WIRE_H
#define KM_WIRE_H

#include "buf.h"
#include "err.h"

#include <curl/curl.h>
#include <stdint.h>

#define KMWIRE_MAX_BODY ((size_t)16 << 20)  /* cap on one decompressed response */

struct kmwire {
    struct curl_slist *hdrs;           /* holds the key: freed as soon as the transfer ends */
    kmbuf              resp;           /* the body read so far */
    int                too_big;        /* the body passed KMWIRE_MAX_BODY */
    double             retry_after_s;  /* from the response headers; < 0 when absent */
    double             reset_s;        /* RateLimit-Reset's first number; < 0 when absent */
};

/* What to send: url = base + path; body NULL for a GET. */
struct kmwire_req {
    const char *url;
    const char *key;       /* revealed API key; copied into the header list only */
    const char *revision;
    const char *body;      /* borrowed until the transfer ends */
    size_t      body_len;
    int64_t     timeout_ms;
};

void kmwire_init(struct kmwire *w);
void kmwire_free(struct kmwire *w);

/* Reset h and set it up for q, reading into w; CURLOPT_PRIVATE is priv. */
kmcode kmwire_start(struct kmwire *w, CURL *h, const struct kmwire_req *q, void *priv,
                    kmerr *err);

/* Drop the key-bearing header list (from h too). NULL-safe for h. */
void kmwire_end(struct kmwire *w, CURL *h);

#endif
