/* result.c — success results under the message cap (see result.h). */
#include "result.h"
#include "json.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

kmcode
kmmcp_result_cap_parse(const char *text, size_t *cap, kmerr *err)
{
    char              *end;
    unsigned long long v;

    *cap = KMMCP_DEFAULT_MAX_MESSAGE;
    if (!text || !*text)
        return KM_OK;
    errno = 0;
    v = strtoull(text, &end, 10);
    if (errno || *end || text[0] == '-' || v < KMMCP_MIN_MAX_MESSAGE ||
        v > KMMCP_DEFAULT_MAX_MESSAGE)
        return kmerr_set(err, KM_CONFIG_ERROR, "KLAVIYO_MCP_MAX_MESSAGE_BYTES must be a byte "
                         "count from %u to %u", KMMCP_MIN_MAX_MESSAGE, KMMCP_DEFAULT_MAX_MESSAGE);
    *cap = (size_t)v;
    return KM_OK;
}

static size_t
size_of(json_object *o)
{
    /* the form kmmcp_write sends */
    return strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE));
}

json_object *
kmmcp_text_content(const char *text)
{
    json_object *content = json_object_new_array();
    json_object *block = json_object_new_object();

    json_object_object_add(block, "type", json_object_new_string("text"));
    json_object_object_add(block, "text", json_object_new_string(text));
    json_object_array_add(content, block);
    return content;
}

/* The member of data that is a non-empty array of objects with the longest text, or NULL. */
static json_object *
largest_array(json_object *data, const char **name, size_t *bytes)
{
    json_object *best = NULL;

    *bytes = 0;
    json_object_object_foreach(data, key, val) {
        size_t n;

        if (!json_object_is_type(val, json_type_array) || json_object_array_length(val) == 0 ||
            !json_object_is_type(json_object_array_get_idx(val, 0), json_type_object))
            continue;
        n = size_of(val);
        if (n > *bytes) {
            best = val;
            *bytes = n;
            *name = key;
        }
    }
    return best;
}

static json_object *
too_large(size_t size, size_t cap)
{
    json_object *r = json_object_new_object();
    char        *text = km_xasprintf("INTERNAL_ERROR: the answer is %zu bytes and cannot be cut "
                                     "below the %zu-byte message cap "
                                     "(KLAVIYO_MCP_MAX_MESSAGE_BYTES); ask for a shorter window "
                                     "or a smaller limit", size, cap);

    json_object_object_add(r, "content", kmmcp_text_content(text));
    json_object_object_add(r, "isError", json_object_new_boolean(1));
    free(text);
    return r;
}

json_object *
kmmcp_result_success(json_object *envelope, size_t cap)
{
    json_object *r = json_object_new_object();
    json_object *data = kmjson_get(envelope, "data");
    json_object *block;
    const char  *summary = kmjson_str(envelope, "summary");
    char        *text, *note = NULL;
    size_t       budget = cap > KMMCP_FRAME_RESERVE ? cap - KMMCP_FRAME_RESERVE : 0;
    size_t       size, fit, cut_from = 0, cut_to = 0;
    json_object *warnings = kmjson_get(envelope, "warnings");
    const char  *cut_name = NULL;

    if (summary) {
        text = km_xstrdup(summary);
        json_object_object_del(envelope, "summary");
    } else {
        text = km_xstrdup(json_object_to_json_string_ext(envelope, JSON_C_TO_STRING_PRETTY |
                                                         JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE));
    }
    json_object_object_add(r, "content", kmmcp_text_content(text));
    json_object_object_add(r, "structuredContent", envelope);
    json_object_object_add(r, "isError", json_object_new_boolean(0));
    size = size_of(r);

    /* over the cap: drop the tail of the largest arrays of rows until it fits, with room
     * left for the note that says so */
    fit = budget > 1024 ? budget - 1024 : 0;
    while (data && size > fit) {
        const char  *name = NULL;
        size_t       bytes, n, keep, other;
        json_object *arr = largest_array(data, &name, &bytes);

        if (!arr)
            break;
        n = json_object_array_length(arr);
        other = size - bytes;
        keep = fit > other ? (size_t)((double)n * (double)(fit - other) / (double)bytes *
                                         0.9) : 0;
        if (keep >= n)
            keep = n - 1;
        if (!cut_name || strcmp(cut_name, name) != 0) {
            cut_name = name;
            cut_from = n;
        }
        json_object_array_del_idx(arr, keep, n - keep);
        cut_to = keep;
        json_object_object_add(data, "truncated", json_object_new_boolean(1));
        size = size_of(r);
    }
    if (cut_name) {
        note = km_xasprintf("Cut to fit the %zu-byte message cap: data.%s holds the first %zu "
                            "of %zu items. Ask for fewer (limit, offset) or a shorter window.",
                            cap, cut_name, cut_to, cut_from);
        if (json_object_is_type(warnings, json_type_array))
            json_object_array_add(warnings, json_object_new_string(note));
        block = json_object_array_get_idx(kmjson_get(r, "content"), 0);
        {
            char *t = km_xasprintf("**%s**\n\n%s", note, text);
            free(text);
            text = t;
        }
        json_object_object_add(block, "text", json_object_new_string(text));
        size = size_of(r);
    }
    free(note);
    free(text);
    if (size > budget) {
        json_object_put(r);
        return too_large(size, cap);
    }
    return r;
}
