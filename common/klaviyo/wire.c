/* wire.c — one Klaviyo HTTP exchange on a curl easy handle: options, headers, the capped
 * body and the Retry-After / RateLimit-Reset headers.
 */
#include "wire.h"

#include "reply.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define CONNECT_MS 5000

void
kmwire_init(struct kmwire *w)
{
    memset(w, 0, sizeof(*w));
    kmbuf_init(&w->resp, KMWIRE_MAX_BODY);
    w->retry_after_s = -1;
    w->reset_s = -1;
}

void
kmwire_free(struct kmwire *w)
{
    kmbuf_free(&w->resp);
    curl_slist_free_all(w->hdrs);
    w->hdrs = NULL;
}

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
    struct kmwire *w = arg;

    if (kmbuf_append(&w->resp, p, size * n) != 0) {
        w->too_big = 1;
        return 0;  /* CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct kmwire *w = arg;
    size_t         len = size * n;

    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        /* a new response (after a 100 Continue): forget the previous one's headers */
        w->retry_after_s = -1;
        w->reset_s = -1;
        return len;
    }
    while (len > 0 && (p[len - 1] == '\r' || p[len - 1] == '\n'))
        len--;
    if (len > 12 && strncasecmp(p, "Retry-After:", 12) == 0)
        w->retry_after_s = kmreply_header_seconds(p + 12, len - 12);
    else if (len > 16 && strncasecmp(p, "RateLimit-Reset:", 16) == 0) {
        size_t m = 16;

        while (m < len && p[m] != ',')
            m++;
        w->reset_s = kmreply_header_seconds(p + 16, m - 16);
    }
    return size * n;
}

kmcode
kmwire_start(struct kmwire *w, CURL *h, const struct kmwire_req *q, void *priv, kmerr *err)
{
    int64_t timeout = q->timeout_ms < 1 ? 1 : q->timeout_ms;
    char   *auth, *rev;

    curl_easy_reset(h);
    if (curl_easy_setopt(h, CURLOPT_URL, q->url) != CURLE_OK)
        return kmerr_set(err, KM_INTERNAL_ERROR, "the Klaviyo URL was refused");

    /* the key goes only into this list, which is freed as soon as the transfer ends */
    auth = km_xasprintf("Authorization: Klaviyo-API-Key %s", q->key ? q->key : "");
    w->hdrs = curl_slist_append(w->hdrs, auth);
    explicit_bzero(auth, strlen(auth));
    free(auth);
    rev = km_xasprintf("revision: %s", q->revision);
    w->hdrs = curl_slist_append(w->hdrs, rev);
    free(rev);
    w->hdrs = curl_slist_append(w->hdrs, "Accept: application/vnd.api+json");
    if (q->body)
        w->hdrs = curl_slist_append(w->hdrs, "Content-Type: application/vnd.api+json");
    w->hdrs = curl_slist_append(w->hdrs, "Expect:");
    if (!w->hdrs)
        return kmerr_set(err, KM_INTERNAL_ERROR, "could not build the request headers");

    curl_easy_setopt(h, CURLOPT_HTTPHEADER, w->hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "klaviyo-mcp/" PACKAGE_VERSION);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < CONNECT_MS ? timeout
                                                                              : CONNECT_MS));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)KMWIRE_MAX_BODY);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, w);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, w);
    curl_easy_setopt(h, CURLOPT_PRIVATE, priv);
    if (q->body) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    kmbuf_reset(&w->resp);
    w->too_big = 0;
    w->retry_after_s = -1;
    w->reset_s = -1;
    return KM_OK;
}

void
kmwire_end(struct kmwire *w, CURL *h)
{
    if (h)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(w->hdrs);
    w->hdrs = NULL;
}
