/* route.c — REST routes and query coercion, both read from the tool table. */
#include "route.h"
#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Match `path` against `route` ("/v1/flows/{flow_id}/structure"). On a match returns 1 and,
 * when the route has a parameter, sets *pname and *pval (both new strings). */
static int
route_match(const char *route, const char *path, char **pname, char **pval)
{
    const char *r = route, *p = path;

    *pname = *pval = NULL;
    while (*r && *p) {
        if (*r == '{') {
            const char *re = strchr(r, '}');
            const char *pe = strchr(p, '/');
            size_t      vlen = pe ? (size_t)(pe - p) : strlen(p);
            if (!re || vlen == 0) {
                free(*pname);
                free(*pval);
                *pname = *pval = NULL;
                return 0;
            }
            *pname = km_xstrndup(r + 1, (size_t)(re - r - 1));
            *pval = km_xstrndup(p, vlen);
            r = re + 1;
            p += vlen;
            continue;
        }
        if (*r != *p)
            break;
        r++;
        p++;
    }
    /* a single trailing slash on the request is tolerated */
    if (*r == '\0' && (*p == '\0' || (p[0] == '/' && p[1] == '\0')))
        return 1;
    free(*pname);
    free(*pval);
    *pname = *pval = NULL;
    return 0;
}

const struct kmtool *
kmroute_find(const char *method, const char *path, json_object **path_args,
             const char **allow)
{
    const char *allowed = NULL;

    if (path_args)
        *path_args = NULL;
    for (size_t i = 0; i < kmreg_count(); i++) {
        const struct kmtool *t = kmreg_at(i);
        char                *pname, *pval;

        if (!route_match(t->route, path, &pname, &pval))
            continue;
        if (strcmp(t->method, method) != 0) {
            allowed = t->method;
            free(pname);
            free(pval);
            continue;
        }
        if (pname && path_args) {
            *path_args = json_object_new_object();
            json_object_object_add(*path_args, pname, json_object_new_string(pval));
        }
        free(pname);
        free(pval);
        if (allow)
            *allow = NULL;
        return t;
    }
    if (allow)
        *allow = allowed;
    return NULL;
}

/* --- query coercion ------------------------------------------------------------------ */

static const char *
schema_type(json_object *schema)
{
    json_object *t = kmjson_get(schema, "type");

    if (t && json_object_is_type(t, json_type_string))
        return json_object_get_string(t);
    return NULL;
}

void
kmroute_coerce(const struct kmtool *t, json_object *args)
{
    json_object *props = kmjson_get(t->input, "properties");

    if (!args || !json_object_is_type(args, json_type_object))
        return;
    json_object_object_foreach(args, key, val) {
        json_object *ps = kmjson_get(props, key);
        const char  *type = schema_type(ps);
        const char  *s;

        if (!type || !json_object_is_type(val, json_type_string))
            continue;
        s = json_object_get_string(val);
        if (strcmp(type, "boolean") == 0) {
            if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
                json_object_object_add(args, key, json_object_new_boolean(1));
            else if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
                json_object_object_add(args, key, json_object_new_boolean(0));
        } else if (strcmp(type, "integer") == 0) {
            char *end;
            long  n = strtol(s, &end, 10);
            if (*s && *end == '\0')
                json_object_object_add(args, key, json_object_new_int64(n));
        } else if (strcmp(type, "array") == 0) {
            json_object *arr = json_object_new_array();
            char        *copy = km_xstrdup(s), *save = NULL;
            for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
                json_object_array_add(arr, json_object_new_string(tok));
            free(copy);
            json_object_object_add(args, key, arr);
        }
    }
}
