/* fuzz_rest.c — libFuzzer harness: the REST path from a request to a tool's arguments, as
 * server/http.c takes it: the route (kmroute_find), the query string decoded by libevent into
 * string arguments, query coercion (kmroute_coerce), a JSON body (kmjson_parse) and schema
 * validation (kmreg_validate).
 *
 * Input: the request target ("/v1/flows?account=acme&archived=true") on the first line, the
 * body after it; no body means GET, a body means POST. The body is also validated against a
 * tool chosen by the target's length, so every schema sees hostile JSON.
 */
#include "err.h"
#include "json.h"
#include "reg.h"
#include "route.h"

#include <sys/queue.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_object *
query_args(const char *q)
{
    struct evkeyvalq kv;
    struct evkeyval *e;
    json_object     *args = json_object_new_object();

    TAILQ_INIT(&kv);
    if (evhttp_parse_query_str(q, &kv) != 0) {
        evhttp_clear_headers(&kv);
        json_object_put(args);
        return NULL;
    }
    TAILQ_FOREACH(e, &kv, next) {
        if (json_object_object_get_ex(args, e->key, NULL)) {
            json_object_put(args);
            args = NULL;
            break;
        }
        json_object_object_add(args, e->key, json_object_new_string(e->value));
    }
    evhttp_clear_headers(&kv);
    return args;
}

static void
merge(json_object *into, json_object *from)
{
    if (!into || !from)
        return;
    json_object_object_foreach(from, k, v) json_object_object_add(into, k, json_object_get(v));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int           ready;
    const uint8_t       *nl = memchr(data, '\n', size);
    size_t               tlen = nl ? (size_t)(nl - data) : size;
    const char          *body = nl ? (const char *)nl + 1 : "";
    size_t               blen = nl ? size - tlen - 1 : 0;
    char                *target, *q;
    const struct kmtool *t;
    json_object         *path_args = NULL, *args = NULL;
    const char          *allow = NULL;
    kmerr                err = { 0 };

    if (!ready) {
        kmreg_init();
        ready = 1;
    }
    if (tlen > 8192)
        return 0;
    target = malloc(tlen + 1);
    memcpy(target, data, tlen);
    target[tlen] = '\0';
    if (strlen(target) != tlen) {  /* a NUL in the target: evhttp never hands one over */
        free(target);
        return 0;
    }
    q = strchr(target, '?');
    if (q)
        *q++ = '\0';
    if (strncmp(target, "/v1/tools/", 10) == 0)
        t = kmreg_find(target + 10);  /* POST /v1/tools/<name>, as route_tool_call does */
    else
        t = kmroute_find(nl ? "POST" : "GET", target, &path_args, &allow);
    if (t && !nl) {
        args = query_args(q ? q : "");
        if (args) {
            merge(args, path_args);
            kmroute_coerce(t, args);
            (void)kmreg_validate(t, args, &err);
            kmerr_clear(&err);
        }
    }
    if (nl) {
        json_object *doc = NULL;

        if (kmjson_parse(body, blen, KM_INVALID_ARGUMENT, &doc, &err) == KM_OK) {
            const struct kmtool *any = kmreg_at(tlen % kmreg_count());

            kmerr_clear(&err);
            if (json_object_is_type(doc, json_type_object))
                merge(doc, path_args);
            (void)kmreg_validate(t ? t : any, doc, &err);
            kmerr_clear(&err);
            if (t && any != t) {
                (void)kmreg_validate(any, doc, &err);
                kmerr_clear(&err);
            }
        }
        json_object_put(doc);
    }
    kmerr_clear(&err);
    json_object_put(args);
    json_object_put(path_args);
    free(target);
    return 0;
}
