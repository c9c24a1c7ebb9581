/* fuzz_mcp.c — libFuzzer harness: the MCP stdio line reader, strict parsing, classification
 * and the replies built from what was read (mcp-shim/jsonrpc.c).
 *
 * The input is a byte stream as stdin would deliver it, pushed in pieces whose sizes come from
 * the input's first byte, so lines split across reads are exercised too. Every line is parsed;
 * a message (or each element of a batch) is classified, and an answer is built and serialized
 * with the id that was read. Run by `make fuzz` (README, "Hardening and fuzzing").
 */
#include "jsonrpc.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
answer(json_object *o)
{
    struct kmmcp_msg m;
    json_object     *reply;

    kmmcp_classify(o, &m);
    if (m.kind == KMMCP_INVALID)
        reply = kmmcp_error(m.id, m.code, m.why, NULL);
    else
        reply = kmmcp_result(m.id, json_object_new_object());
    (void)json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN);
    if (m.id)
        (void)kmmcp_id_equal(m.id, m.id);
    json_object_put(reply);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    kmmcp_reader r;
    size_t       step, off;
    char        *line;
    size_t       len;

    if (size == 0)
        return 0;
    step = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    kmmcp_reader_init(&r, 4096);
    for (off = 0; off <= size; off += step) {
        enum kmmcp_event ev;
        size_t           n = size - off < step ? size - off : step;

        if (n > 0)
            kmmcp_reader_push(&r, data + off, n);
        else
            r.eof = 1;
        while ((ev = kmmcp_reader_next(&r, &line, &len)) != KMMCP_NEED_MORE) {
            json_object *o = NULL;
            kmerr        err = { 0 };

            if (ev != KMMCP_LINE)
                continue;
            if (kmmcp_parse(line, len, &o, &err) == KM_OK) {
                if (json_object_is_type(o, json_type_array)) {
                    for (size_t i = 0; i < json_object_array_length(o); i++)
                        answer(json_object_array_get_idx(o, i));
                } else {
                    answer(o);
                }
            }
            json_object_put(o);
            kmerr_clear(&err);
        }
        if (n == 0)
            break;
    }
    kmmcp_reader_free(&r);
    return 0;
}
