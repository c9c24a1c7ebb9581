/* simapi.c — the simulator's GET endpoints: accounts, campaigns, flows, flow actions, flow
 * messages, lists and metrics, with Klaviyo's JSON:API shapes, filters, sorting, sparse
 * fieldsets and cursor pagination (REFERENCE.md §2, §6.1, §7, §8, §9). Filtering, sorting and
 * paging a collection are simcoll.c's. */
#include "json.h"
#include "simfilter.h"
#include "simint.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- resources ---------------------------------------------------------------------------- */

static json_object *
resource(struct simreq *r, const char *type, const char *id, const char *type_path,
         json_object *attrs, json_object *rels)
{
    json_object *o = json_object_new_object();
    char        *self = km_xasprintf("%s/%s", type_path, id);

    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "id", json_object_new_string(id));
    json_object_object_add(o, "attributes", attrs);
    if (rels)
        json_object_object_add(o, "relationships", rels);
    json_object_object_add(o, "links", sim_self_links(r, self));
    free(self);
    return o;
}

static void
add_rel(struct simreq *r, json_object *rels, const char *type_path, const char *id,
        const char *rel, json_object *data)
{
    json_object *o = json_object_new_object();

    if (data)
        json_object_object_add(o, "data", data);
    json_object_object_add(o, "links", sim_rel_links(r, type_path, id, rel));
    json_object_object_add(rels, rel, o);
}

static json_object *
ref(const char *type, const char *id)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "type", json_object_new_string(type));
    json_object_object_add(o, "id", json_object_new_string(id));
    return o;
}

static json_object *
str_or_null(const char *s)
{
    return s && *s ? json_object_new_string(s) : NULL;
}

static const char *const account_fields[] = { "test_account", "contact_information",
                                              "industry", "timezone", "preferred_currency",
                                              "public_api_key", "locale", NULL };

static json_object *
account_item(struct simreq *r)
{
    const struct simacct *a = r->acct;
    json_object          *at = json_object_new_object(), *ci = json_object_new_object();
    json_object          *addr = json_object_new_object();

    json_object_object_add(at, "test_account", json_object_new_boolean(0));
    json_object_object_add(ci, "default_sender_name", json_object_new_string(a->label));
    json_object_object_add(ci, "default_sender_email", json_object_new_string(a->sender_email));
    json_object_object_add(ci, "website_url", json_object_new_string(a->website));
    json_object_object_add(ci, "organization_name", json_object_new_string(a->org));
    json_object_object_add(addr, "address1", json_object_new_string(a->street));
    json_object_object_add(addr, "address2", NULL);
    json_object_object_add(addr, "city", json_object_new_string(a->city));
    json_object_object_add(addr, "region", str_or_null(a->region));
    json_object_object_add(addr, "country", json_object_new_string(a->country));
    json_object_object_add(addr, "zip", json_object_new_string(a->zip));
    json_object_object_add(ci, "street_address", addr);
    json_object_object_add(at, "contact_information", ci);
    json_object_object_add(at, "industry", json_object_new_string(a->industry));
    json_object_object_add(at, "timezone", json_object_new_string(a->tz));
    json_object_object_add(at, "preferred_currency", json_object_new_string(a->currency));
    json_object_object_add(at, "public_api_key", json_object_new_string(a->id));
    json_object_object_add(at, "locale", json_object_new_string(a->locale));
    sim_fields(r, "account", account_fields, at);
    return resource(r, "account", a->id, "/api/accounts", at, NULL);
}

static const char *const campaign_fields[] = {
    "name", "status", "archived", "audiences", "send_options", "tracking_options",
    "send_strategy", "created_at", "scheduled_at", "updated_at", "send_time", NULL
};

/* the campaign's one message id: a second ULID sharing the campaign's timestamp part */
void
simapi_campaign_message_id(const struct simcampaign *c, char out[28])
{
    static const char crock[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    uint64_t          h = simdata_mix(c->hkey ^ 0x6d657373616765ULL);

    memcpy(out, c->id, 10);
    for (int i = 10; i < 26; i++) {
        out[i] = crock[h & 31];
        h >>= 5;
        if (i == 21)
            h = simdata_mix(c->hkey ^ 0x2ULL);
    }
    out[26] = '\0';
}

static json_object *
campaign_item(struct simreq *r, size_t i)
{
    const struct simcampaign *c = &r->acct->campaigns[i];
    const struct simlist     *l = r->acct->n_lists ? &r->acct->lists[c->list] : NULL;
    json_object              *at = json_object_new_object(), *o, *arr, *rels;
    char                      t[40], mid[28];

    json_object_object_add(at, "name", json_object_new_string(c->name));
    json_object_object_add(at, "status", json_object_new_string(c->status));
    json_object_object_add(at, "archived", json_object_new_boolean(c->archived));
    o = json_object_new_object();
    arr = json_object_new_array();
    if (l)
        json_object_array_add(arr, json_object_new_string(l->id));
    json_object_object_add(o, "included", arr);
    json_object_object_add(o, "excluded", json_object_new_array());
    json_object_object_add(at, "audiences", o);
    o = json_object_new_object();
    json_object_object_add(o, "use_smart_sending", json_object_new_boolean(1));
    json_object_object_add(at, "send_options", o);
    o = json_object_new_object();
    json_object_object_add(o, "add_tracking_params",
                           json_object_new_boolean(c->channel == SIM_EMAIL));
    json_object_object_add(o, "custom_tracking_params", json_object_new_array());
    json_object_object_add(o, "is_tracking_clicks", json_object_new_boolean(1));
    json_object_object_add(o, "is_tracking_opens",
                           json_object_new_boolean(c->channel == SIM_EMAIL));
    json_object_object_add(at, "tracking_options", o);
    o = json_object_new_object();
    json_object_object_add(o, "method", json_object_new_string(c->send_method));
    if (c->send_time >= 0) {
        sim_time(c->send_time / 1000000, t);
        json_object_object_add(o, "datetime", json_object_new_string(t));
    } else {
        json_object_object_add(o, "datetime", NULL);
    }
    arr = json_object_new_object();
    json_object_object_add(arr, "is_local", json_object_new_boolean(0));
    json_object_object_add(o, "options", arr);
    json_object_object_add(at, "send_strategy", o);
    sim_time_us(c->created_at, t);
    json_object_object_add(at, "created_at", json_object_new_string(t));
    sim_add_time(at, "scheduled_at", c->scheduled_at < 0 ? -1 : c->scheduled_at / 1000000);
    sim_add_time(at, "updated_at", c->updated_at / 1000000);
    sim_add_time(at, "send_time", c->send_time < 0 ? -1 : c->send_time / 1000000);
    sim_fields(r, "campaign", campaign_fields, at);
    rels = json_object_new_object();
    simapi_campaign_message_id(c, mid);
    arr = json_object_new_array();
    json_object_array_add(arr, ref("campaign-message", mid));
    add_rel(r, rels, "/api/campaigns", c->id, "campaign-messages", arr);
    add_rel(r, rels, "/api/campaigns", c->id, "tags", NULL);
    return resource(r, "campaign", c->id, "/api/campaigns", at, rels);
}

static const char *const flow_fields[] = { "name", "status", "archived", "created", "updated",
                                           "trigger_type", "definition", NULL };

static const char *
definition_type(const char *action_type)
{
    if (strcmp(action_type, "SEND_EMAIL") == 0)
        return "send-email";
    if (strcmp(action_type, "SEND_SMS") == 0)
        return "send-sms";
    if (strcmp(action_type, "TIME_DELAY") == 0)
        return "time-delay";
    return "conditional-split";
}

static const char *
trigger_kind(const char *trigger_type)
{
    if (strcmp(trigger_type, "Added to List") == 0)
        return "list";
    if (strcmp(trigger_type, "Metric") == 0)
        return "metric";
    return "other";
}

/* additional-fields[flow]=definition: the actions as a chain (a branch's false side ends) */
static json_object *
flow_definition(const struct simacct *a, const struct simflow *f)
{
    json_object *d = json_object_new_object(), *acts = json_object_new_array();
    json_object *trig = json_object_new_array(), *t = json_object_new_object();

    json_object_object_add(t, "type", json_object_new_string(trigger_kind(f->trigger_type)));
    json_object_array_add(trig, t);
    json_object_object_add(d, "triggers", trig);
    json_object_object_add(d, "profile_filter", NULL);
    for (size_t k = 0; k < f->n_actions; k++) {
        const struct simaction *ac = &a->actions[f->first_action + k];
        const char             *next = k + 1 < f->n_actions ? a->actions[ac - a->actions + 1].id
                                                            : NULL;
        json_object            *o = json_object_new_object(), *links = json_object_new_object();

        json_object_object_add(o, "id", json_object_new_string(ac->id));
        json_object_object_add(o, "type", json_object_new_string(definition_type(ac->action_type)));
        if (strcmp(ac->action_type, "BOOLEAN_BRANCH") == 0) {
            json_object_object_add(links, "next_if_true", str_or_null(next));
            json_object_object_add(links, "next_if_false", NULL);
        } else {
            json_object_object_add(links, "next", str_or_null(next));
        }
        json_object_object_add(o, "links", links);
        json_object_object_add(o, "data", json_object_new_object());
        json_object_array_add(acts, o);
    }
    json_object_object_add(d, "actions", acts);
    json_object_object_add(d, "entry_action_id",
                           f->n_actions ? json_object_new_string(a->actions[f->first_action].id)
                                        : NULL);
    return d;
}

static json_object *
flow_item(struct simreq *r, size_t i, int with_definition)
{
    const struct simflow *f = &r->acct->flows[i];
    json_object          *at = json_object_new_object(), *rels = json_object_new_object();

    json_object_object_add(at, "name", json_object_new_string(f->name));
    json_object_object_add(at, "status", json_object_new_string(f->status));
    json_object_object_add(at, "archived", json_object_new_boolean(f->archived));
    sim_add_time(at, "created", f->created);
    sim_add_time(at, "updated", f->updated);
    json_object_object_add(at, "trigger_type", json_object_new_string(f->trigger_type));
    if (with_definition)
        json_object_object_add(at, "definition", flow_definition(r->acct, f));
    sim_fields(r, "flow", flow_fields, at);
    add_rel(r, rels, "/api/flows", f->id, "flow-actions", NULL);
    add_rel(r, rels, "/api/flows", f->id, "tags", NULL);
    return resource(r, "flow", f->id, "/api/flows", at, rels);
}

/* revisions from 2025-10-15 describe actions and messages with a `definition` (§10) */
static int
new_shapes(const struct simreq *r)
{
    return strcmp(r->revision, "2025-10-15") >= 0;
}

static const char *const action_fields[] = { "action_type", "status", "created", "updated",
                                             "settings", "tracking_options", "send_options",
                                             "badge_options", "render_options", "definition",
                                             NULL };

static json_object *
action_item(struct simreq *r, size_t i, int with_data)
{
    const struct simaction *ac = &r->acct->actions[i];
    const struct simflow   *f = &r->acct->flows[ac->flow];
    json_object            *at = json_object_new_object(), *rels = json_object_new_object(), *o;
    int                     send = ac->message >= 0;

    if (new_shapes(r)) {
        json_object *d = json_object_new_object();
        sim_add_time(at, "created", ac->created);
        sim_add_time(at, "updated", ac->updated);
        json_object_object_add(d, "id", json_object_new_string(ac->id));
        json_object_object_add(d, "type", json_object_new_string(definition_type(ac->action_type)));
        json_object_object_add(d, "data", json_object_new_object());
        json_object_object_add(at, "definition", d);
    } else {
        json_object_object_add(at, "action_type", json_object_new_string(ac->action_type));
        json_object_object_add(at, "status", json_object_new_string(ac->status));
        sim_add_time(at, "created", ac->created);
        sim_add_time(at, "updated", ac->updated);
        o = json_object_new_object();
        if (strcmp(ac->action_type, "TIME_DELAY") == 0) {
            json_object_object_add(o, "unit", json_object_new_string("hours"));
            json_object_object_add(o, "value", json_object_new_int(ac->delay_hours));
        } else if (strcmp(ac->action_type, "BOOLEAN_BRANCH") == 0) {
            json_object_object_add(o, "is_joined", json_object_new_boolean(0));
        }
        json_object_object_add(at, "settings", o);
        if (send) {
            o = json_object_new_object();
            json_object_object_add(o, "add_utm", json_object_new_boolean(0));
            json_object_object_add(o, "utm_params", json_object_new_array());
            json_object_object_add(o, "is_tracking_opens",
                                   json_object_new_boolean(
                                       strcmp(ac->action_type, "SEND_EMAIL") == 0));
            json_object_object_add(o, "is_tracking_clicks", json_object_new_boolean(1));
            json_object_object_add(at, "tracking_options", o);
            o = json_object_new_object();
            json_object_object_add(o, "use_smart_sending", json_object_new_boolean(1));
            json_object_object_add(o, "is_transactional", json_object_new_boolean(0));
            json_object_object_add(at, "send_options", o);
        } else {
            json_object_object_add(at, "tracking_options", NULL);
            json_object_object_add(at, "send_options", NULL);
        }
        json_object_object_add(at, "badge_options", NULL);
        json_object_object_add(at, "render_options", NULL);
    }
    sim_fields(r, "flow-action", action_fields, at);
    add_rel(r, rels, "/api/flow-actions", ac->id, "flow",
            with_data ? ref("flow", f->id) : NULL);
    if (with_data) {
        json_object *arr = json_object_new_array();
        if (send)
            json_object_array_add(arr, ref("flow-message", r->acct->msgs[ac->message].id));
        add_rel(r, rels, "/api/flow-actions", ac->id, "flow-messages", arr);
    } else {
        add_rel(r, rels, "/api/flow-actions", ac->id, "flow-messages", NULL);
    }
    return resource(r, "flow-action", ac->id, "/api/flow-actions", at, rels);
}

static const char *const message_fields[] = { "name", "channel", "content", "created",
                                              "updated", "definition", NULL };

static json_object *
message_content(const struct simacct *a, const struct simmsg *m)
{
    json_object *c = json_object_new_object();

    if (m->channel == SIM_SMS) {
        char body[200];
        snprintf(body, sizeof(body), "%s: %s. Reply STOP to opt out.", a->label, m->subject);
        json_object_object_add(c, "body", json_object_new_string(body));
        json_object_object_add(c, "media_url", NULL);
        return c;
    }
    json_object_object_add(c, "subject", json_object_new_string(m->subject));
    json_object_object_add(c, "preview_text", json_object_new_string("A little something inside"));
    json_object_object_add(c, "from_email", json_object_new_string(a->sender_email));
    json_object_object_add(c, "from_label", json_object_new_string(a->label));
    json_object_object_add(c, "reply_to_email", NULL);
    json_object_object_add(c, "cc_email", NULL);
    json_object_object_add(c, "bcc_email", NULL);
    return c;
}

static void
template_id(const struct simmsg *m, char out[8])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    uint64_t          h = simdata_mix(m->hkey ^ 0x74656d706cULL);

    for (int i = 0; i < 6; i++) {
        out[i] = abc[h % 62];
        h /= 62;
    }
    out[6] = '\0';
}

static json_object *
message_item(struct simreq *r, size_t i, int with_data)
{
    const struct simacct *a = r->acct;
    const struct simmsg  *m = &a->msgs[i];
    json_object          *at = json_object_new_object(), *rels = json_object_new_object();
    char                  tid[8];

    if (new_shapes(r)) {
        json_object *d = json_object_new_object();
        json_object_object_add(d, "name", json_object_new_string(m->name));
        json_object_object_add(d, "content", message_content(a, m));
        json_object_object_add(at, "definition", d);
    } else {
        json_object_object_add(at, "name", json_object_new_string(m->name));
        json_object_object_add(at, "channel",
                               json_object_new_string(simdata_channel_name(m->channel)));
        json_object_object_add(at, "content", message_content(a, m));
    }
    sim_add_time(at, "created", m->created);
    sim_add_time(at, "updated", m->updated);
    sim_fields(r, "flow-message", message_fields, at);
    template_id(m, tid);
    add_rel(r, rels, "/api/flow-messages", m->id, "flow-action",
            with_data ? ref("flow-action", a->actions[m->action].id) : NULL);
    add_rel(r, rels, "/api/flow-messages", m->id, "template",
            with_data ? ref("template", tid) : NULL);
    return resource(r, "flow-message", m->id, "/api/flow-messages", at, rels);
}

static const char *const list_fields[] = { "name", "created", "updated", "opt_in_process",
                                           "profile_count", NULL };

static json_object *
list_item(struct simreq *r, size_t i, int with_count)
{
    const struct simlist *l = &r->acct->lists[i];
    json_object          *at = json_object_new_object(), *rels = json_object_new_object();

    json_object_object_add(at, "name", json_object_new_string(l->name));
    sim_add_time(at, "created", l->created);
    sim_add_time(at, "updated", l->updated);
    json_object_object_add(at, "opt_in_process", json_object_new_string(l->opt_in_process));
    if (with_count)
        json_object_object_add(at, "profile_count", json_object_new_int64(l->profile_count));
    sim_fields(r, "list", list_fields, at);
    add_rel(r, rels, "/api/lists", l->id, "profiles", NULL);
    add_rel(r, rels, "/api/lists", l->id, "tags", NULL);
    add_rel(r, rels, "/api/lists", l->id, "flow-triggers", NULL);
    return resource(r, "list", l->id, "/api/lists", at, rels);
}

static const char *const metric_fields[] = { "name", "created", "updated", "integration", NULL };

static json_object *
metric_item(struct simreq *r, size_t i)
{
    const struct simmetric *m = &r->acct->metrics[i];
    json_object            *at = json_object_new_object(), *rels = json_object_new_object();
    json_object            *in = json_object_new_object();

    json_object_object_add(at, "name", json_object_new_string(m->name));
    sim_add_time(at, "created", m->created);
    sim_add_time(at, "updated", m->updated);
    json_object_object_add(in, "object", json_object_new_string("integration"));
    json_object_object_add(in, "id", json_object_new_string(m->integration_id));
    json_object_object_add(in, "key", json_object_new_string(m->integration_key));
    json_object_object_add(in, "name", json_object_new_string(m->integration_name));
    json_object_object_add(in, "category", json_object_new_string(m->integration_category));
    json_object_object_add(at, "integration", in);
    sim_fields(r, "metric", metric_fields, at);
    add_rel(r, rels, "/api/metrics", m->id, "flow-triggers", NULL);
    return resource(r, "metric", m->id, "/api/metrics", at, rels);
}

/* --- documents ---------------------------------------------------------------------------- */

static void
single(struct simreq *r, json_object *item)
{
    r->doc = json_object_new_object();
    json_object_object_add(r->doc, "data", item);
    json_object_object_add(r->doc, "links",
                           json_object_get(json_object_object_get(item, "links")));
}


/* --- handlers --------------------------------------------------------------------------- */

void
simapi_accounts(struct simreq *r)
{
    static const char *const allowed[] = { "fields[account]", NULL };
    json_object             *data, *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    item = account_item(r);
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    data = json_object_new_array();
    json_object_array_add(data, item);
    r->doc = json_object_new_object();
    json_object_object_add(r->doc, "data", data);
    {
        json_object *links = sim_self_links(r, "/api/accounts");
        json_object_object_add(links, "next", NULL);
        json_object_object_add(links, "prev", NULL);
        json_object_object_add(r->doc, "links", links);
    }
}

static json_object *
build_campaign(struct simreq *r, size_t i)
{
    return campaign_item(r, i);
}

static const struct simfrule campaign_rules[] = {
    { "messages.channel", "equals", SFV_STRING },
    { "name", "contains", SFV_STRING },
    { "status", "any equals", SFV_STRING },
    { "archived", "equals", SFV_BOOL },
    { "id", "any", SFV_STRING },
    { "created_at", "greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { "scheduled_at", "greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { "updated_at", "greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { NULL, NULL, SFV_STRING },
};

void
simapi_campaigns(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "sort", "page[cursor]", "fields[campaign]",
                                           "fields[campaign-message]", "fields[tag]", NULL };
    static const char *const sorts[] = { "created_at", "id", "name", "scheduled_at",
                                         "updated_at", NULL };
    struct simfilter f;
    size_t          *idx = NULL, n = 0, size;
    int              present, chan = 0;
    char             detail[300];

    if (sim_q_allow(r, allowed) != 0 || simcoll_page_size(r, 10, 0, &size) != 0 ||
        sim_fields(r, "campaign", campaign_fields, NULL) != 0 ||
        simcoll_filter(r, campaign_rules, &f, &present) != 0)
        return;
    for (size_t i = 0; i < f.n; i++) {
        const struct simcond *c = &f.c[i];
        if (strcmp(c->field, "messages.channel") == 0) {
            const char *v = c->val.s;
            if (strcmp(v, "email") != 0 && strcmp(v, "sms") != 0 &&
                strcmp(v, "mobile_push") != 0) {
                snprintf(detail, sizeof(detail), "Invalid filter provided: '%.40s' is not a "
                         "valid channel; use 'email', 'sms' or 'mobile_push'.", v);
                sim_invalid(r, detail, "parameter", "filter");
                goto out;
            }
            chan++;
        }
        if (c->val.kind == SFV_DATETIME && simfilter_utc(&c->val) > sim_now()) {
            snprintf(detail, sizeof(detail), "End date may not be in the future: %s on %s.",
                     c->op, c->field);
            sim_invalid(r, detail, "parameter", "filter");
            goto out;
        }
    }
    if (chan != 1) {
        sim_invalid(r, chan ? "Only one channel filter is allowed."
                            : "A channel filter is required: filter by "
                              "equals(messages.channel,'email'), 'sms' or 'mobile_push'.",
                    "parameter", "filter");
        goto out;
    }
    idx = simcoll_select(r, SIMK_CAMPAIGN, 0, r->acct->n_campaigns, &f, &n);
    /* without an archived condition, archived campaigns are left out (ask with
     * equals(archived,true) to see them, as Airbyte does) */
    if (!simcoll_has_cond(&f, "archived")) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (!r->acct->campaigns[idx[i]].archived)
                idx[m++] = idx[i];
        }
        n = m;
    }
    if (simcoll_sort(r, SIMK_CAMPAIGN, sorts, idx, n) != 0)
        goto out;
    simcoll_page(r, idx, n, size, build_campaign);
out:
    (void)present;
    free(idx);
    simfilter_free(&f);
}

void
simapi_campaign(struct simreq *r)
{
    static const char *const allowed[] = { "fields[campaign]", "fields[campaign-message]",
                                           "fields[tag]", NULL };
    const struct simcampaign *c;
    json_object              *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    c = simdata_campaign(r->acct, r->seg[2]);
    if (!c) {
        sim_not_found(r);
        return;
    }
    item = campaign_item(r, (size_t)(c - r->acct->campaigns));
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}

static json_object *
build_flow(struct simreq *r, size_t i)
{
    return flow_item(r, i, 0);
}

static const struct simfrule flow_rules[] = {
    { "id", "any", SFV_STRING },
    { "name", "contains ends-with equals starts-with", SFV_STRING },
    { "status", "equals", SFV_STRING },
    { "archived", "equals", SFV_BOOL },
    { "trigger_type", "equals", SFV_STRING },
    { "created", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { "updated", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { NULL, NULL, SFV_STRING },
};

void
simapi_flows(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "sort", "page[size]", "page[cursor]",
                                           "fields[flow]", "fields[flow-action]", "fields[tag]",
                                           NULL };
    static const char *const sorts[] = { "created", "id", "name", "status", "trigger_type",
                                         "updated", NULL };
    struct simfilter f;
    size_t          *idx, n, size;
    int              present;

    if (sim_q_allow(r, allowed) != 0 || simcoll_page_size(r, 50, 50, &size) != 0 ||
        sim_fields(r, "flow", flow_fields, NULL) != 0 ||
        simcoll_filter(r, flow_rules, &f, &present) != 0)
        return;
    idx = simcoll_select(r, SIMK_FLOW, 0, r->acct->n_flows, &f, &n);
    if (simcoll_sort(r, SIMK_FLOW, sorts, idx, n) == 0)
        simcoll_page(r, idx, n, size, build_flow);
    free(idx);
    simfilter_free(&f);
}

void
simapi_flow(struct simreq *r)
{
    static const char *const allowed[] = { "fields[flow]", "fields[flow-action]", "fields[tag]",
                                           "additional-fields[flow]", NULL };
    const struct simflow *f;
    const char           *af;
    json_object          *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    af = sim_q(r, "additional-fields[flow]");
    if (af && strcmp(af, "definition") != 0) {
        sim_invalid(r, "'additional-fields[flow]' accepts only 'definition'.", "parameter",
                    "additional-fields[flow]");
        return;
    }
    f = simdata_flow(r->acct, r->seg[2]);
    if (!f) {
        sim_not_found(r);
        return;
    }
    item = flow_item(r, (size_t)(f - r->acct->flows), af != NULL);
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}

static json_object *
build_action(struct simreq *r, size_t i)
{
    return action_item(r, i, 0);
}

static const struct simfrule action_rules[] = {
    { "id", "any", SFV_STRING },
    { "action_type", "any equals", SFV_STRING },
    { "status", "equals", SFV_STRING },
    { "created", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { "updated", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { NULL, NULL, SFV_STRING },
};

void
simapi_flow_actions(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "sort", "page[size]", "page[cursor]",
                                           "fields[flow-action]", NULL };
    static const char *const sorts[] = { "action_type", "created", "id", "status", "updated",
                                         NULL };
    const struct simflow *fl;
    struct simfilter      f;
    size_t               *idx, n, size;
    int                   present;

    if (sim_q_allow(r, allowed) != 0 || simcoll_page_size(r, 50, 50, &size) != 0 ||
        sim_fields(r, "flow-action", action_fields, NULL) != 0)
        return;
    fl = simdata_flow(r->acct, r->seg[2]);
    if (!fl) {
        sim_not_found(r);
        return;
    }
    if (simcoll_filter(r, action_rules, &f, &present) != 0)
        return;
    idx = simcoll_select(r, SIMK_ACTION, fl->first_action, fl->n_actions, &f, &n);
    if (simcoll_sort(r, SIMK_ACTION, sorts, idx, n) == 0)
        simcoll_page(r, idx, n, size, build_action);
    free(idx);
    simfilter_free(&f);
}

void
simapi_flow_action(struct simreq *r)
{
    static const char *const allowed[] = { "fields[flow-action]", "fields[flow]",
                                           "fields[flow-message]", NULL };
    const struct simaction *ac;
    json_object            *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    ac = simdata_action(r->acct, r->seg[2]);
    if (!ac) {
        sim_not_found(r);
        return;
    }
    item = action_item(r, (size_t)(ac - r->acct->actions), 1);
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}

static json_object *
build_message(struct simreq *r, size_t i)
{
    return message_item(r, i, 0);
}

static const struct simfrule message_rules[] = {
    { "id", "any", SFV_STRING },
    { "name", "contains ends-with equals starts-with", SFV_STRING },
    { "created", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { "updated", "equals greater-or-equal greater-than less-or-equal less-than", SFV_DATETIME },
    { NULL, NULL, SFV_STRING },
};

void
simapi_action_messages(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "sort", "page[size]", "page[cursor]",
                                           "fields[flow-message]", NULL };
    static const char *const sorts[] = { "created", "id", "name", "updated", NULL };
    const struct simaction *ac;
    struct simfilter        f;
    size_t                 *idx, n = 0, size;
    int                     present;

    if (sim_q_allow(r, allowed) != 0 || simcoll_page_size(r, 50, 50, &size) != 0 ||
        sim_fields(r, "flow-message", message_fields, NULL) != 0)
        return;
    ac = simdata_action(r->acct, r->seg[2]);
    if (!ac) {
        sim_not_found(r);
        return;
    }
    if (simcoll_filter(r, message_rules, &f, &present) != 0)
        return;
    if (ac->message >= 0)
        idx = simcoll_select(r, SIMK_MSG, (size_t)ac->message, 1, &f, &n);
    else
        idx = km_xcalloc(1, sizeof(*idx));
    if (simcoll_sort(r, SIMK_MSG, sorts, idx, n) == 0)
        simcoll_page(r, idx, n, size, build_message);
    free(idx);
    simfilter_free(&f);
}

void
simapi_flow_message(struct simreq *r)
{
    static const char *const allowed[] = { "fields[flow-message]", "fields[flow-action]",
                                           "fields[template]", NULL };
    const struct simmsg *m;
    json_object         *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    m = simdata_msg(r->acct, r->seg[2]);
    if (!m) {
        sim_not_found(r);
        return;
    }
    item = message_item(r, (size_t)(m - r->acct->msgs), 1);
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}

static json_object *
build_list(struct simreq *r, size_t i)
{
    return list_item(r, i, 0);
}

static const struct simfrule list_rules[] = {
    { "name", "any equals", SFV_STRING },
    { "id", "any equals", SFV_STRING },
    { "created", "greater-than", SFV_DATETIME },
    { "updated", "greater-than", SFV_DATETIME },
    { NULL, NULL, SFV_STRING },
};

void
simapi_lists(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "sort", "page[cursor]", "fields[list]",
                                           "fields[tag]", "fields[flow]", NULL };
    static const char *const sorts[] = { "created", "id", "name", "updated", NULL };
    static const char *const coll_fields[] = { "name", "created", "updated", "opt_in_process",
                                               NULL };
    struct simfilter f;
    size_t          *idx, n, size;
    int              present;

    if (sim_q(r, "additional-fields[list]")) {
        sim_invalid(r, "'additional-fields[list]' is not a valid query parameter for this "
                       "endpoint; request profile_count from GET /api/lists/{id}.",
                    "parameter", "additional-fields[list]");
        return;
    }
    if (sim_q_allow(r, allowed) != 0 || simcoll_page_size(r, 10, 0, &size) != 0 ||
        sim_fields(r, "list", coll_fields, NULL) != 0 ||
        simcoll_filter(r, list_rules, &f, &present) != 0)
        return;
    idx = simcoll_select(r, SIMK_LIST, 0, r->acct->n_lists, &f, &n);
    if (simcoll_sort(r, SIMK_LIST, sorts, idx, n) == 0)
        simcoll_page(r, idx, n, size, build_list);
    free(idx);
    simfilter_free(&f);
}

void
simapi_list(struct simreq *r)
{
    static const char *const allowed[] = { "fields[list]", "additional-fields[list]",
                                           "fields[tag]", "fields[flow]", NULL };
    const struct simlist *l;
    const char           *af;
    json_object          *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    af = sim_q(r, "additional-fields[list]");
    if (af && strcmp(af, "profile_count") != 0) {
        sim_invalid(r, "'additional-fields[list]' accepts only 'profile_count'.", "parameter",
                    "additional-fields[list]");
        return;
    }
    l = simdata_list(r->acct, r->seg[2]);
    if (!l) {
        sim_not_found(r);
        return;
    }
    item = list_item(r, (size_t)(l - r->acct->lists), af != NULL);
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}

static json_object *
build_metric(struct simreq *r, size_t i)
{
    return metric_item(r, i);
}

static const struct simfrule metric_rules[] = {
    { "integration.name", "equals", SFV_STRING },
    { "integration.category", "equals", SFV_STRING },
    { NULL, NULL, SFV_STRING },
};

void
simapi_metrics(struct simreq *r)
{
    static const char *const allowed[] = { "filter", "page[cursor]", "fields[metric]",
                                           "fields[flow]", NULL };
    struct simfilter f;
    size_t          *idx, n;
    int              present;

    if (sim_q_allow(r, allowed) != 0 || sim_fields(r, "metric", metric_fields, NULL) != 0 ||
        simcoll_filter(r, metric_rules, &f, &present) != 0)
        return;
    idx = simcoll_select(r, SIMK_METRIC, 0, r->acct->n_metrics, &f, &n);
    simcoll_page(r, idx, n, 200, build_metric);
    free(idx);
    simfilter_free(&f);
}

void
simapi_metric(struct simreq *r)
{
    static const char *const allowed[] = { "fields[metric]", "fields[flow]", NULL };
    const struct simmetric *m;
    json_object            *item;

    if (sim_q_allow(r, allowed) != 0)
        return;
    m = simdata_metric(r->acct, r->seg[2]);
    if (!m) {
        sim_not_found(r);
        return;
    }
    item = metric_item(r, (size_t)(m - r->acct->metrics));
    if (sim_failed(r)) {
        json_object_put(item);
        return;
    }
    single(r, item);
}
