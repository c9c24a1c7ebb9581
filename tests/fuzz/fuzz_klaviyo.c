/* fuzz_klaviyo.c — libFuzzer harness: the parsers of Klaviyo's answers: Retry-After and
 * RateLimit-Reset values (kmreply_header_seconds), error documents (kmreply_error_detail), the
 * next-page link of a collection (kmpath_next) and a values report's rows and metric blocks
 * (kmt_rows_add_results, kmt_metrics_put), all on the same bytes. */
#include "json.h"
#include "kl.h"
#include "reply.h"
#include "tools_common.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[][3] = {
        { "campaign_id", "send_channel", NULL },
        { "flow_id", "flow_message_id", "send_channel" },
        { "flow_id", NULL, NULL },
    };
    const char  *text = (const char *)data;
    char         detail[256];
    double       expected = 0, secs;
    json_object *doc = NULL;

    secs = kmreply_header_seconds(text, size < 48 ? size : 48);
    if (!(secs == -1 || (secs >= 0 && secs <= 1e7)))
        abort();
    kmreply_error_detail(text, size, detail, sizeof(detail), &expected);
    if (strlen(detail) >= sizeof(detail))
        abort();
    if (kmjson_parse(text, size, KM_UPSTREAM_ERROR, &doc, NULL) == KM_OK) {
        int          bad = 0;
        char        *next = kmpath_next("https://a.klaviyo.com", doc, &bad);
        json_object *results = kmjson_path(doc, "data", "attributes", "results", NULL);

        if (next && (bad || strncmp(next, "/api/", 5) != 0))
            abort();
        free(next);
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            kmt_rows rows = { 0 };

            kmt_rows_add_results(&rows, results, keys[k]);
            for (size_t i = 0; i < rows.n; i++) {
                json_object *o = json_object_new_object();

                kmt_metrics_put(o, &rows.v[i].m);
                (void)json_object_to_json_string(o);
                json_object_put(o);
            }
            kmt_rows_free(&rows);
        }
    }
    json_object_put(doc);
    return 0;
}
