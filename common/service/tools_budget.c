/* tools_budget.c — klaviyo_get_budget: what each account has left of Klaviyo's limits.
 *
 * Per account: report calls used and left today (the busiest report endpoint's daily window,
 * 225 a day at Klaviyo) and, per rate-limit tier of the client's table, the seconds until a
 * request on that tier could be sent now. Everything is read from the shared store's rate
 * windows (kmkl_budget_read) without taking a slot and without calling Klaviyo, so a model can
 * look before a large question and an operator's `budget` command can print the same numbers.
 */
#include "json.h"
#include "tools.h"
#include "svc.h"

static kmcode
account_budget(kmctx *ctx, const struct kmaccount *a, json_object **out, kmerr *err)
{
    kmtier_budget b;
    json_object *o, *tiers;
    kmcode       rc = kmkl_budget_read(ctx->kl, a, &b, err);

    if (rc != KM_OK)
        return rc;
    o = json_object_new_object();
    json_object_object_add(o, "account", json_object_new_string(a->name));
    json_object_object_add(o, "report_calls_used_today", json_object_new_int(b.report_calls_used));
    json_object_object_add(o, "report_calls_left_today", json_object_new_int(b.report_calls_left));
    json_object_object_add(o, "daily_report_cap", json_object_new_int(b.daily_report_cap));
    tiers = json_object_new_array();
    for (int t = 0; t < KMT_COUNT; t++) {
        json_object *row = json_object_new_object();

        json_object_object_add(row, "tier", json_object_new_string(kmtier_name((kmtier)t)));
        /* seconds, to the millisecond the store keeps */
        json_object_object_add(row, "next_free_slot_s",
                               kmjson_double(kmjson_round((double)b.next_free_ms[t] / 1000.0, 3)));
        json_object_array_add(tiers, row);
    }
    json_object_object_add(o, "tiers", tiers);
    *out = o;
    return KM_OK;
}

kmcode
kmtool_get_budget(kmctx *ctx, json_object *args, json_object **data, kmerr *err)
{
    const char  *name = kmjson_str(args, "account");
    json_object *list = json_object_new_array();
    kmcode       rc = KM_OK;

    *data = NULL;
    if (name) {
        const struct kmaccount *a = NULL;
        json_object            *o = NULL;

        rc = kmacct_resolve(ctx->accounts, name, &a, err);
        if (rc == KM_OK)
            rc = account_budget(ctx, a, &o, err);
        if (rc != KM_OK)
            goto out;
        json_object_array_add(list, o);
    } else {
        for (size_t i = 0; i < kmacct_count(ctx->accounts); i++) {
            json_object *o = NULL;

            rc = account_budget(ctx, kmacct_at(ctx->accounts, i), &o, err);
            if (rc != KM_OK)
                goto out;
            json_object_array_add(list, o);
        }
    }
    *data = json_object_new_object();
    json_object_object_add(*data, "accounts", list);
    list = NULL;
out:
    json_object_put(list);
    return rc;
}
