/* tools_accounts.c — klaviyo_list_accounts: names and labels, never keys. */
#include "tools.h"
#include "svc.h"

kmcode
kmtool_list_accounts(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    json_object *list = json_object_new_array();

    (void)args;
    (void)err;
    for (size_t i = 0; i < kmacct_count(ctx->accounts); i++) {
        const struct kmaccount *a = kmacct_at(ctx->accounts, i);
        json_object            *row = json_object_new_object();

        json_object_object_add(row, "name", json_object_new_string(a->name));
        json_object_object_add(row, "label", json_object_new_string(a->label));
        json_object_array_add(list, row);
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "accounts", list);
    return KM_OK;
}
